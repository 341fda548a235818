/* jws_sign.c - signing compact JWS tokens (jws_sign.h): signing keys from a
 * private key PEM or an HMAC secret, the three signature forms, the compact
 * serialisation, and random UUID4 jti values.  See fcgim8-token(1). */
#include "auth/jws_sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "auth/alg.h"
#include "auth/jwt.h" /* m8_b64url_encode */

/* The largest signature made: RSA up to 16384 bits. */
#define SIG_MAX 2048

/* True when pkey is an EC key on P-256. */
static bool is_p256(const EVP_PKEY *pkey)
{
    char group[80];
    size_t glen = 0;
    if (!EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        &glen))
        return false;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 ||
           strcmp(group, "secp256r1") == 0;
}

m8_sign_key *m8_sign_key_from_pem(const char *pem, size_t len, m8_alg alg, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (alg != M8_ALG_RS256 && alg != M8_ALG_ES256) {
        snprintf(err, errlen, "%s",
                 alg == M8_ALG_HS256 ? "HS256 signs with a secret, not a PEM key"
                                     : "unknown algorithm");
        return NULL;
    }
    EVP_PKEY *pkey = m8_pem_load_pkey(pem, len, true, err, errlen);
    if (!pkey)
        return NULL;
    const char *type = EVP_PKEY_get0_type_name(pkey);
    if (!type)
        type = "unknown";
    if (alg == M8_ALG_RS256 && !EVP_PKEY_is_a(pkey, "RSA")) {
        snprintf(err, errlen, "RS256 requires an RSA key; got %s", type);
    } else if (alg == M8_ALG_ES256 && !EVP_PKEY_is_a(pkey, "EC")) {
        snprintf(err, errlen, "ES256 requires an EC key; got %s", type);
    } else if (alg == M8_ALG_ES256 && !is_p256(pkey)) {
        snprintf(err, errlen, "ES256 requires a P-256 (secp256r1) EC curve");
    } else if (EVP_PKEY_get_size(pkey) <= 0 || EVP_PKEY_get_size(pkey) > SIG_MAX) {
        snprintf(err, errlen, "%s key of an unsupported size", m8_alg_name(alg));
    } else {
        m8_sign_key *k = calloc(1, sizeof *k);
        if (k) {
            k->alg = alg;
            k->pkey = pkey;
            return k;
        }
        snprintf(err, errlen, "out of memory");
    }
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return NULL;
}

m8_sign_key *m8_sign_key_from_secret(const char *secret, size_t len, char *err, size_t errlen)
{
    m8_key *h = m8_key_from_secret(secret, len, err, errlen);
    if (!h)
        return NULL;
    m8_sign_key *k = calloc(1, sizeof *k);
    if (!k) {
        m8_key_unref(h);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->alg = M8_ALG_HS256;
    k->hmac = h;
    return k;
}

void m8_sign_key_free(m8_sign_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    m8_key_unref(k->hmac);
    free(k);
}

int m8_ecdsa_der_to_jose(const unsigned char *der, size_t len, unsigned char out[64])
{
    if (!der || len == 0 || len > 128)
        return M8_EINVAL;
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!es) {
        ERR_clear_error();
        return M8_EINVAL;
    }
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    int ok = p == der + len && BN_num_bytes(r) <= 32 && BN_num_bytes(s) <= 32 &&
             BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(s, out + 32, 32) == 32;
    ECDSA_SIG_free(es);
    ERR_clear_error();
    return ok ? 0 : M8_EINVAL;
}

int m8_jws_sign_raw(const m8_sign_key *k, const unsigned char *msg, size_t len, unsigned char *sig,
                    size_t cap, size_t *sig_len)
{
    if (!k || !sig_len)
        return M8_EINVAL;
    *sig_len = 0;
    if (k->alg == M8_ALG_HS256) {
        if (!k->hmac)
            return M8_EINVAL;
        if (cap < crypto_auth_hmacsha256_BYTES)
            return M8_ETOOBIG;
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, k->hmac->secret, k->hmac->secret_len);
        crypto_auth_hmacsha256_update(&st, msg, len);
        crypto_auth_hmacsha256_final(&st, sig);
        sodium_memzero(&st, sizeof st);
        *sig_len = crypto_auth_hmacsha256_BYTES;
        return 0;
    }
    if (!k->pkey)
        return M8_EINVAL;
    size_t need = k->alg == M8_ALG_ES256 ? 64 : (size_t)EVP_PKEY_get_size(k->pkey);
    if (cap < need)
        return M8_ETOOBIG;
    unsigned char der[128];
    unsigned char *dst = k->alg == M8_ALG_ES256 ? der : sig;
    size_t n = k->alg == M8_ALG_ES256 ? sizeof der : cap;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
             EVP_DigestSign(ctx, dst, &n, msg, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        return M8_EINVAL;
    if (k->alg == M8_ALG_ES256) {
        if (m8_ecdsa_der_to_jose(der, n, sig) != 0)
            return M8_EINVAL;
        n = 64;
    }
    *sig_len = n;
    return 0;
}

int m8_jws_sign(const m8_sign_key *k, const char *header, size_t header_len, const char *payload,
                size_t payload_len, m8_buf *out)
{
    if (!k || !header || !payload || !out)
        return M8_EINVAL;
    size_t start = out->len;
    int rc = m8_b64url_encode(out, (const unsigned char *)header, header_len);
    if (rc == 0)
        rc = m8_buf_putc(out, '.');
    if (rc == 0)
        rc = m8_b64url_encode(out, (const unsigned char *)payload, payload_len);
    unsigned char sig[SIG_MAX];
    size_t sig_len = 0;
    if (rc == 0)
        rc = m8_jws_sign_raw(k, (const unsigned char *)out->data + start, out->len - start, sig,
                             sizeof sig, &sig_len);
    if (rc == 0)
        rc = m8_buf_putc(out, '.');
    if (rc == 0)
        rc = m8_b64url_encode(out, sig, sig_len);
    if (rc != 0) { /* leave out as it was */
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

int m8_jws_sign_json(const m8_sign_key *k, const char *kid, struct json_object *extra_header,
                     struct json_object *payload, m8_buf *out)
{
    if (!k || !payload || !json_object_is_type(payload, json_type_object))
        return M8_EINVAL;
    if (extra_header && !json_object_is_type(extra_header, json_type_object))
        return M8_EINVAL;
    json_object *h = json_object_new_object();
    if (!h)
        return M8_ENOMEM;
    json_object_object_add(h, "alg", json_object_new_string(m8_alg_name(k->alg)));
    json_object_object_add(h, "typ", json_object_new_string("JWT"));
    if (kid)
        json_object_object_add(h, "kid", json_object_new_string(kid));
    if (extra_header) {
        json_object_object_foreach(extra_header, name, v)
        {
            if (strcmp(name, "alg") != 0 && strcmp(name, "typ") != 0 && strcmp(name, "kid") != 0)
                json_object_object_add(h, name, json_object_get(v));
        }
    }
    const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    size_t hl = 0, pl = 0;
    const char *hs = json_object_to_json_string_length(h, flags, &hl);
    const char *ps = json_object_to_json_string_length(payload, flags, &pl);
    int rc = hs && ps ? m8_jws_sign(k, hs, hl, ps, pl, out) : M8_ENOMEM;
    json_object_put(h);
    return rc;
}

void m8_jti_new(char out[M8_UUID_STR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10 */
    size_t o = 0;
    for (size_t i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}
