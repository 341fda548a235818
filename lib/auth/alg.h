/* alg.h - the one table of JOSE algorithm names ("RS256", "ES256",
 * "HS256") for m8_alg: settings, keys, tokens and the tools read and write
 * the names through it.  Pure. */
#ifndef M8_ALG_H
#define M8_ALG_H

#include "config/settings.h" /* m8_alg */

/* The names indexed by m8_alg value, NULL-terminated. */
M8_INTERNAL extern const char *const m8_alg_names[];
/* The name of alg; NULL for a value outside m8_alg. */
M8_INTERNAL const char *m8_alg_name(m8_alg alg);
/* The algorithm named exactly (case-sensitive) name: 0, or M8_EINVAL. */
M8_INTERNAL int m8_alg_parse(const char *name, m8_alg *alg);

#endif
