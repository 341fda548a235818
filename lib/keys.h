/* keys.h - PEM key material (CONTRACT.md Part A 2.3).  Issue 3 adds the
 * parsed-once EVP_PKEY cache and JWK conversion here. */
#ifndef M8_KEYS_H
#define M8_KEYS_H

#include "settings.h"

/* Key strength of a PEM for alg: 0, or M8_ECONFIG with a message in err:
 * "Cannot parse PEM key material..." (certificates and encrypted keys too),
 * "RS256 requires an RSA key; got EC", "RS256 requires a minimum 2048-bit RSA
 * key; loaded key is 1024 bits", "ES256 requires an EC key; got RSA",
 * "ES256 requires a P-256 (secp256r1) EC curve; got secp384r1".
 * HS256 is skipped (returns 0). */
M8_INTERNAL int m8_key_strength(const char *pem, size_t len, m8_alg alg, char *err, size_t errlen);

#endif
