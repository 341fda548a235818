/* jwk_export.c - public JWKs and JWKS documents from keys, and the SPKI kid
 * (jwk_export.h).  What it writes, m8_key_from_jwk (auth/keys.h) reads. */
#include "auth/jwk_export.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "auth/alg.h"
#include "auth/jwt.h" /* m8_b64url_encode */

/* Adds member name = base64url(param of pk), left-padded to pad bytes when
 * pad is not 0 (a longer value is refused), minimal otherwise. */
static int add_bn(json_object *o, const char *name, const EVP_PKEY *pk, const char *param, int pad)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
        return M8_EINVAL;
    unsigned char buf[2048];
    int len = BN_num_bytes(bn);
    int n = -1;
    if (pad ? len <= pad : len > 0 && (size_t)len <= sizeof buf)
        n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
    BN_free(bn);
    if (n <= 0)
        return M8_EINVAL;
    m8_buf b;
    m8_buf_init(&b, 4096);
    int rc = m8_b64url_encode(&b, buf, (size_t)n);
    json_object *s = rc == 0 ? json_object_new_string_len(b.data, (int)b.len) : NULL;
    m8_buf_free(&b);
    if (!s)
        return M8_ENOMEM;
    json_object_object_add(o, name, s);
    return 0;
}

static bool is_p256(const EVP_PKEY *pk)
{
    char group[80];
    size_t glen = 0;
    if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen))
        return false;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0 ||
           strcmp(group, "secp256r1") == 0;
}

json_object *m8_jwk_export(const EVP_PKEY *pk, const char *kid, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!pk) {
        snprintf(err, errlen, "no key");
        return NULL;
    }
    json_object *k = json_object_new_object();
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int rc;
    if (EVP_PKEY_is_a(pk, "RSA")) {
        json_object_object_add(k, "kty", json_object_new_string("RSA"));
        json_object_object_add(k, "alg", json_object_new_string(m8_alg_name(M8_ALG_RS256)));
        rc = add_bn(k, "n", pk, OSSL_PKEY_PARAM_RSA_N, 0);
        if (rc == 0)
            rc = add_bn(k, "e", pk, OSSL_PKEY_PARAM_RSA_E, 0);
    } else if (EVP_PKEY_is_a(pk, "EC") && is_p256(pk)) {
        json_object_object_add(k, "kty", json_object_new_string("EC"));
        json_object_object_add(k, "alg", json_object_new_string(m8_alg_name(M8_ALG_ES256)));
        json_object_object_add(k, "crv", json_object_new_string("P-256"));
        rc = add_bn(k, "x", pk, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        if (rc == 0)
            rc = add_bn(k, "y", pk, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    } else {
        const char *type = EVP_PKEY_get0_type_name(pk);
        snprintf(err, errlen, "only RSA and EC P-256 keys have a JWK here; got %s",
                 type ? type : "unknown");
        json_object_put(k);
        return NULL;
    }
    ERR_clear_error();
    if (rc != 0) {
        snprintf(err, errlen, "cannot read the public key parameters");
        json_object_put(k);
        return NULL;
    }
    json_object_object_add(k, "use", json_object_new_string("sig"));
    if (kid)
        json_object_object_add(k, "kid", json_object_new_string(kid));
    return k;
}

int m8_jwk_kid(const EVP_PKEY *pk, char out[M8_JWK_KID_LEN + 1])
{
    out[0] = '\0';
    unsigned char *der = NULL;
    int n = pk ? i2d_PUBKEY(pk, &der) : -1;
    if (n <= 0) {
        ERR_clear_error();
        return M8_EINVAL;
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, der, (unsigned long long)n);
    OPENSSL_free(der);
    sodium_bin2hex(out, M8_JWK_KID_LEN + 1, h, M8_JWK_KID_LEN / 2);
    return 0;
}

json_object *m8_jwks_export(EVP_PKEY *const *keys, const char *const *kids, size_t n, char *err,
                            size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    json_object *arr = json_object_new_array();
    if (!arr) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *k = m8_jwk_export(keys[i], kids ? kids[i] : NULL, err, errlen);
        if (!k) {
            json_object_put(arr);
            return NULL;
        }
        json_object_array_add(arr, k);
    }
    json_object *doc = json_object_new_object();
    if (!doc) {
        json_object_put(arr);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_object_object_add(doc, "keys", arr);
    return doc;
}
