/* fernet.c - Fernet tokens (fernet.h, doc/issuer.md#stored-google-tokens):
 * AES-128-CBC through OpenSSL's EVP, HMAC-SHA256, the random IV and the
 * base64 through libsodium. */
#include "issuer/fernet.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define FERNET_VERSION 0x80
#define HDR 25u /* version, timestamp, IV */
#define MAC 32u
#define MAX_CLOCK_SKEW_S 60 /* as cryptography.fernet */

void m8_fernet_key_derive(const char *secret, size_t n, m8_fernet_key *k)
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)secret, n);
    memcpy(k->sign, d, 16);
    memcpy(k->enc, d + 16, 16);
    sodium_memzero(d, sizeof d);
}

int m8_fernet_key_parse(const char *b64, size_t n, m8_fernet_key *k)
{
    unsigned char raw[M8_FERNET_KEY_BYTES + 3];
    size_t len = 0;
    const char *end = NULL;
    if (!b64 || n != 44 ||
        sodium_base642bin(raw, sizeof raw, b64, n, NULL, &len, &end,
                          sodium_base64_VARIANT_URLSAFE) != 0 ||
        end != b64 + n || len != M8_FERNET_KEY_BYTES) {
        sodium_memzero(raw, sizeof raw);
        return M8_EPARSE;
    }
    memcpy(k->sign, raw, 16);
    memcpy(k->enc, raw + 16, 16);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

void m8_fernet_key_wipe(m8_fernet_key *k)
{
    sodium_memzero(k, sizeof *k);
}

/* HMAC-SHA256 under the 16-byte signing key (crypto_auth_hmacsha256 itself
 * takes a 32-byte key: the init form takes any length). */
static void hmac(const m8_fernet_key *k, const unsigned char *in, size_t n, unsigned char out[MAC])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, k->sign, sizeof k->sign);
    crypto_auth_hmacsha256_update(&st, in, n);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

/* AES-128-CBC with PKCS7 padding: in (n bytes) into out (room for n + 16);
 * *outlen the bytes written.  0, M8_EPARSE (decrypt: a bad padding) or
 * M8_EIO. */
static int cbc(bool enc, const unsigned char key[16], const unsigned char iv[16],
               const unsigned char *in, size_t n, unsigned char *out, size_t *outlen)
{
    if (n > (size_t)INT32_MAX - 32)
        return M8_EIO;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int a = 0, b = 0, rc = M8_EIO;
    if (c && EVP_CipherInit_ex(c, EVP_aes_128_cbc(), NULL, key, iv, enc ? 1 : 0) == 1 &&
        EVP_CIPHER_CTX_set_padding(c, 1) == 1 && EVP_CipherUpdate(c, out, &a, in, (int)n) == 1) {
        if (EVP_CipherFinal_ex(c, out + a, &b) == 1) {
            *outlen = (size_t)a + (size_t)b;
            rc = 0;
        } else {
            rc = enc ? M8_EIO : M8_EPARSE; /* decrypt: the padding is wrong */
        }
    }
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int m8_fernet_encrypt_iv(const m8_fernet_key *k, const void *plain, size_t n, int64_t now,
                         const unsigned char iv[16], m8_buf *out)
{
    if (!k || (!plain && n) || !iv || !out)
        return M8_EINVAL;
    if (n > M8_FERNET_TOKEN_MAX || M8_FERNET_TOKEN_LEN(n) > M8_FERNET_TOKEN_MAX)
        return M8_ETOOBIG;
    size_t ctmax = (n / 16 + 1) * 16, rawmax = HDR + ctmax + MAC;
    unsigned char *raw = malloc(rawmax);
    if (!raw)
        return M8_ENOMEM;
    raw[0] = FERNET_VERSION;
    uint64_t t = (uint64_t)now;
    for (int i = 0; i < 8; i++)
        raw[1 + i] = (unsigned char)(t >> (56 - 8 * i));
    memcpy(raw + 9, iv, 16);
    size_t ct = 0;
    int rc = cbc(true, k->enc, iv, plain, n, raw + HDR, &ct);
    if (rc == 0 && ct != ctmax)
        rc = M8_EIO;
    if (rc == 0) {
        hmac(k, raw, HDR + ct, raw + HDR + ct);
        size_t b64len = sodium_base64_ENCODED_LEN(HDR + ct + MAC, sodium_base64_VARIANT_URLSAFE);
        char *text = malloc(b64len);
        if (!text) {
            rc = M8_ENOMEM;
        } else {
            sodium_bin2base64(text, b64len, raw, HDR + ct + MAC, sodium_base64_VARIANT_URLSAFE);
            rc = m8_buf_append(out, text, strlen(text));
            free(text);
        }
    }
    sodium_memzero(raw, rawmax);
    free(raw);
    return rc;
}

int m8_fernet_encrypt(const m8_fernet_key *k, const void *plain, size_t n, int64_t now, m8_buf *out)
{
    unsigned char iv[16];
    randombytes_buf(iv, sizeof iv);
    return m8_fernet_encrypt_iv(k, plain, n, now, iv, out);
}

/* The HMAC of raw's first len bytes under k equals mac (constant time). */
static bool mac_ok(const m8_fernet_key *k, const unsigned char *raw, size_t len,
                   const unsigned char *mac)
{
    unsigned char want[MAC];
    hmac(k, raw, len, want);
    bool same = sodium_memcmp(want, mac, MAC) == 0;
    sodium_memzero(want, sizeof want);
    return same;
}

int m8_fernet_decrypt(const m8_fernet_key *keys, size_t nkeys, const char *token, size_t n,
                      int64_t ttl, int64_t now, m8_buf *out, size_t *which)
{
    if (!keys || !out || (!token && n))
        return M8_EINVAL;
    if (n > M8_FERNET_TOKEN_MAX)
        return M8_ETOOBIG;
    /* the shortest token: one block of ciphertext */
    if (n < M8_FERNET_TOKEN_LEN(0) || n % 4 != 0)
        return M8_EPARSE;
    size_t cap = n / 4 * 3;
    unsigned char *raw = malloc(cap), *plain = NULL;
    if (!raw)
        return M8_ENOMEM;
    size_t len = 0, ptlen = 0;
    const char *end = NULL;
    int rc = M8_EPARSE;
    /* strict: the urlsafe alphabet with its padding, nothing else */
    if (sodium_base642bin(raw, cap, token, n, NULL, &len, &end, sodium_base64_VARIANT_URLSAFE) !=
            0 ||
        end != token + n || len < HDR + 16 + MAC || (len - HDR - MAC) % 16 != 0 ||
        raw[0] != FERNET_VERSION)
        goto done;
    size_t body = len - MAC, k = 0;
    while (k < nkeys && !mac_ok(&keys[k], raw, body, raw + body))
        k++;
    if (k == nkeys)
        goto done;
    if (ttl > 0) {
        uint64_t t = 0;
        for (int i = 0; i < 8; i++)
            t = t << 8 | raw[1 + i];
        if (t > (uint64_t)INT64_MAX - MAX_CLOCK_SKEW_S || (int64_t)t > now + MAX_CLOCK_SKEW_S ||
            now - (int64_t)t > ttl)
            goto done;
    }
    if (!(plain = malloc(body - HDR + 16))) {
        rc = M8_ENOMEM;
        goto done;
    }
    rc = cbc(false, keys[k].enc, raw + 9, raw + HDR, body - HDR, plain, &ptlen);
    if (rc == 0)
        rc = m8_buf_append(out, plain, ptlen);
    if (rc == 0 && which)
        *which = k;
    sodium_memzero(plain, body - HDR + 16);
done:
    free(plain);
    sodium_memzero(raw, cap);
    free(raw);
    return rc;
}
