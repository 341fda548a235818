/* fuzz_jwks.c - libFuzzer target for the JWKS document parser (lib/auth/jwks.c,
 * with the JWK conversion of lib/auth/keys.c), for both asymmetric algorithms. */
#include <stddef.h>
#include <stdint.h>

#include "auth/jwks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const m8_alg algs[] = {M8_ALG_RS256, M8_ALG_ES256};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        m8_keyset ks;
        size_t skipped = 0;
        if (m8_jwks_parse((const char *)data, size, algs[i], &ks, &skipped) == 0) {
            if (ks.n > M8_MAX_JWKS_KEYS)
                __builtin_trap();
            m8_keyset_clear(&ks);
        }
    }
    return 0;
}
