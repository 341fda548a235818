/* dashboard.h - GET /dashboard/users/activity/ and
 * /dashboard/users/activity/current/ (any valid JWT): monthly activity
 * counts (doc/issuer.md#dashboard).
 *
 * The answer: {"range":"month","scope":"all"|"self","data":[{"month":
 * "YYYY-MM","new_users":N,"active_users":N}, ...],"count":N}, months in
 * UTC, oldest first, the current month last: the last
 * M8_ISSUER_DASHBOARD_MONTHS months, or the current one only.  new_users
 * counts the accounts created in the month; active_users the accounts whose
 * latest login or refresh (their session row's updated_at: the issuer keeps
 * one session row per user, no login history) falls in it.  The canonical
 * superuser counts every account (scope "all"); anyone else only their own
 * (scope "self"). */
#ifndef M8_ISSUER_DASHBOARD_H
#define M8_ISSUER_DASHBOARD_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include <stdint.h>

#define M8_ISSUER_DASHBOARD_MONTHS 12

/* The start of the month `back` months before the one holding now_s (Unix
 * seconds, UTC) into *start_s, and its "YYYY-MM" into ym (8 bytes). */
M8_INTERNAL void m8_issuer_month_start(int64_t now_s, int back, int64_t *start_s, char ym[8]);

/* The route handlers are declared in service.h. */

#endif
