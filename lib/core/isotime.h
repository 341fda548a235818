/* isotime.h - ISO 8601 date-times as pydantic reads and the issuer writes
 * them, and the civil-date arithmetic under them.  Pure functions, shared by
 * the API-key introspection answer (lib/auth/apikey.c), the issuer's request
 * bodies and its dashboard. */
#ifndef M8_ISOTIME_H
#define M8_ISOTIME_H

#include "core/common.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
M8_INTERNAL int64_t m8_days_from_civil(int64_t y, int m, int d);

/* YYYY-MM-DD, then T, t or a space and HH:MM[:SS[.f...]] (1 to 9 fraction
 * digits, "." or ","), then nothing (UTC), Z, or +-HH, +-HHMM, +-HH:MM;
 * date_only also takes a bare date (midnight UTC).  Microseconds since the
 * epoch in *us (fraction digits past 6 dropped).  0, or -1 for anything
 * else: an impossible date, an hour past 23, a trailing byte. */
M8_INTERNAL int m8_iso_time_parse(const char *s, size_t n, bool date_only, int64_t *us);

#endif
