/* alg.c - the JOSE algorithm names of m8_alg (alg.h). */
#include "auth/alg.h"

#include <string.h>

/* Indexed by m8_alg: M8_ALG_RS256, M8_ALG_ES256, M8_ALG_HS256. */
const char *const m8_alg_names[] = {"RS256", "ES256", "HS256", NULL};
_Static_assert(M8_ALG_RS256 == 0 && M8_ALG_ES256 == 1 && M8_ALG_HS256 == 2, "m8_alg order");

const char *m8_alg_name(m8_alg alg)
{
    if ((unsigned)alg < M8_ARRAY_LEN(m8_alg_names) - 1)
        return m8_alg_names[alg];
    return NULL;
}

int m8_alg_parse(const char *name, m8_alg *alg)
{
    for (size_t i = 0; name && m8_alg_names[i]; i++) {
        if (strcmp(name, m8_alg_names[i]) == 0) {
            *alg = (m8_alg)i;
            return 0;
        }
    }
    return M8_EINVAL;
}
