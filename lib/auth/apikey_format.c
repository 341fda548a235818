/* apikey_format.c - the shapes of an API key and of a scope
 * (apikey_format.h). */
#include "auth/apikey_format.h"

#include <sodium.h>
#include <string.h>

#define M8_HEAD_LEN (sizeof M8_APIKEY_M8_PREFIX - 1 + M8_APIKEY_M8_BODY) /* 37 */

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

void m8_apikey_checksum(const char *head, char out[M8_APIKEY_M8_CHECK + 1])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)head, M8_HEAD_LEN);
    sodium_bin2hex(out, M8_APIKEY_M8_CHECK + 1, d, M8_APIKEY_M8_CHECK / 2);
}

m8_apikey_shape m8_apikey_shape_of(const char *key, size_t len)
{
    const size_t lp = sizeof M8_APIKEY_LEGACY_PREFIX - 1, mp = sizeof M8_APIKEY_M8_PREFIX - 1;
    if (!key)
        return M8_AKS_OTHER;
    if (len >= mp && memcmp(key, M8_APIKEY_M8_PREFIX, mp) == 0) {
        if (len != M8_APIKEY_M8_LEN || !lower_hex(key + mp, len - mp))
            return M8_AKS_M8_BROKEN;
        char sum[M8_APIKEY_M8_CHECK + 1];
        m8_apikey_checksum(key, sum);
        /* not a secret: anyone can compute it from the key's head */
        return memcmp(sum, key + M8_HEAD_LEN, M8_APIKEY_M8_CHECK) == 0 ? M8_AKS_M8
                                                                       : M8_AKS_M8_BROKEN;
    }
    if (len >= lp && memcmp(key, M8_APIKEY_LEGACY_PREFIX, lp) == 0)
        return len == M8_APIKEY_LEGACY_LEN && lower_hex(key + lp, len - lp) ? M8_AKS_LEGACY
                                                                            : M8_AKS_LEGACY_BAD;
    return M8_AKS_OTHER;
}

bool m8_apikey_shape_refused(m8_apikey_shape s)
{
    return s == M8_AKS_M8_BROKEN;
}

void m8_apikey_make_m8(char out[M8_APIKEY_M8_LEN + 1])
{
    unsigned char rnd[M8_APIKEY_M8_BODY / 2];
    const size_t mp = sizeof M8_APIKEY_M8_PREFIX - 1;
    randombytes_buf(rnd, sizeof rnd);
    memcpy(out, M8_APIKEY_M8_PREFIX, mp);
    sodium_bin2hex(out + mp, M8_APIKEY_M8_BODY + 1, rnd, sizeof rnd);
    sodium_memzero(rnd, sizeof rnd);
    m8_apikey_checksum(out, out + M8_HEAD_LEN);
    out[M8_APIKEY_M8_LEN] = '\0';
}

void m8_apikey_make_legacy(char out[M8_APIKEY_LEGACY_LEN + 1])
{
    unsigned char u[16];
    randombytes_buf(u, sizeof u);
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* a UUID4's hex, as fa-auth-m8 */
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    memcpy(out, M8_APIKEY_LEGACY_PREFIX, 3);
    sodium_bin2hex(out + 3, M8_APIKEY_LEGACY_LEN - 3 + 1, u, sizeof u);
    sodium_memzero(u, sizeof u);
}

static bool name_start(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

bool m8_apikey_scope_valid(const char *s, size_t n)
{
    if (!s || n == 0 || n > M8_APIKEY_SCOPE_MAX)
        return false;
    unsigned parts = 1;
    bool at_start = true;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ':') {
            if (at_start || ++parts > 3)
                return false;
            at_start = true;
        } else if (at_start) {
            if (!name_start(c))
                return false;
            at_start = false;
        } else if (!name_char(c)) {
            return false;
        }
    }
    return !at_start;
}
