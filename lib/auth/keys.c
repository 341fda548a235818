/* keys.c - key material (keys.h): PEM strength (doc/settings.md#key-strength)
 * and verification keys from a PEM, an HMAC secret or a JWK
 * (doc/wire.md#keys-and-algorithms, doc/wire.md#key-filtering). */
#include "auth/keys.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "auth/alg.h"
#include "core/b64url.h"

/* Never prompt for a pass phrase: an encrypted key simply fails to load. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static bool contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i <= n - k; i++) {
        if (memcmp(s + i, needle, k) == 0)
            return true;
    }
    return false;
}

static int parse_error(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "Cannot parse PEM key material: %s", why);
    return M8_ECONFIG;
}

/* A PKCS#1 "RSA PUBLIC KEY", which PEM_read_bio_PUBKEY does not read. */
static EVP_PKEY *decode_any_public(const char *pem, size_t len)
{
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx =
        OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    if (!dctx)
        return NULL;
    const unsigned char *p = (const unsigned char *)pem;
    size_t n = len;
    if (!OSSL_DECODER_from_data(dctx, &p, &n))
        pkey = NULL;
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

static EVP_PKEY *pem_refused(char *err, size_t errlen, const char *why)
{
    parse_error(err, errlen, why);
    ERR_clear_error();
    return NULL;
}

EVP_PKEY *m8_pem_load_pkey(const char *pem, size_t len, bool private_only, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!pem)
        return pem_refused(err, errlen, "no key");
    if (len > M8_MAX_PEM_BYTES || len > (size_t)INT_MAX)
        return pem_refused(err, errlen, "larger than the PEM size limit");
    if (!contains(pem, len, "-----BEGIN "))
        return pem_refused(err, errlen, "no PEM block found");
    if (contains(pem, len, "-----BEGIN CERTIFICATE") ||
        contains(pem, len, "-----BEGIN TRUSTED CERTIFICATE"))
        return pem_refused(err, errlen,
                           private_only ? "a certificate is not accepted; give the private key"
                                        : "a certificate is not accepted; give the public key");
    if (contains(pem, len, "ENCRYPTED"))
        return pem_refused(err, errlen, "encrypted private keys are not accepted");
    bool is_private = contains(pem, len, "PRIVATE KEY-----");
    if (private_only && !is_private)
        return pem_refused(err, errlen, "a private key is needed to sign");
    EVP_PKEY *pkey = NULL;
    if (is_private || contains(pem, len, "-----BEGIN PUBLIC KEY-----")) {
        BIO *bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
            return pem_refused(err, errlen, "out of memory");
        pkey = is_private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                          : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
    } else if (contains(pem, len, "-----BEGIN RSA PUBLIC KEY-----")) {
        pkey = decode_any_public(pem, len);
    }
    if (!pkey)
        return pem_refused(err, errlen, "not a valid PEM public or private key");
    ERR_clear_error();
    return pkey;
}

char *m8_pem_public_half(const char *pem, size_t len, char *err, size_t errlen)
{
    EVP_PKEY *pkey = m8_pem_load_pkey(pem, len, true, err, errlen);
    if (!pkey)
        return NULL;
    char *out = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = bio && PEM_write_bio_PUBKEY(bio, pkey) == 1 ? BIO_get_mem_data(bio, &data) : 0;
    if (n > 0 && data && (out = malloc((size_t)n + 1)) != NULL) {
        memcpy(out, data, (size_t)n);
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
            n--;
        out[n] = '\0';
    }
    if (!out)
        snprintf(err, errlen, "cannot write the public half of the private key");
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return out;
}

/* The strength rules (doc/settings.md#key-strength) on a loaded key. */
static int check_pkey(EVP_PKEY *pkey, m8_alg alg, char *err, size_t errlen)
{
    const char *type = EVP_PKEY_get0_type_name(pkey);
    if (!type)
        type = "unknown";
    bool is_rsa = EVP_PKEY_is_a(pkey, "RSA");
    bool is_ec = EVP_PKEY_is_a(pkey, "EC");
    if (alg == M8_ALG_RS256) {
        if (!is_rsa) {
            snprintf(err, errlen, "RS256 requires an RSA key; got %s", type);
            return M8_ECONFIG;
        }
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < 2048) {
            snprintf(err, errlen,
                     "RS256 requires a minimum 2048-bit RSA key; loaded key is %d bits", bits);
            return M8_ECONFIG;
        }
    } else if (alg == M8_ALG_ES256) {
        if (!is_ec) {
            snprintf(err, errlen, "ES256 requires an EC key; got %s", type);
            return M8_ECONFIG;
        }
        char group[80];
        size_t glen = 0;
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            &glen))
            snprintf(group, sizeof group, "explicit or unknown parameters");
        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0 &&
            strcmp(group, "secp256r1") != 0) {
            snprintf(err, errlen, "ES256 requires a P-256 (secp256r1) EC curve; got %s", group);
            return M8_ECONFIG;
        }
    }
    return 0;
}

int m8_key_strength(const char *pem, size_t len, m8_alg alg, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (alg == M8_ALG_HS256)
        return 0;
    EVP_PKEY *pkey = m8_pem_load_pkey(pem, len, false, err, errlen);
    if (!pkey)
        return M8_ECONFIG;
    int rc = check_pkey(pkey, alg, err, errlen);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

/* ---- verification keys ---- */

static const char *alg_name(m8_alg alg)
{
    const char *name = m8_alg_name(alg);
    return name ? name : "?";
}

static m8_key *key_new(m8_alg alg)
{
    m8_key *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->alg = alg;
    atomic_init(&k->refs, 1);
    return k;
}

static void key_free(m8_key *k)
{
    EVP_PKEY_free(k->pkey);
    if (k->secret) {
        sodium_memzero(k->secret, k->secret_len);
        free(k->secret);
    }
    free(k->kid);
    free(k);
}

m8_key *m8_key_ref(m8_key *k)
{
    if (k)
        atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void m8_key_unref(m8_key *k)
{
    if (k && atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) == 1)
        key_free(k);
}

/* Only the public half is kept, whatever the PEM held (a private key given
 * by mistake is not kept in the process). */
static EVP_PKEY *public_only(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(pkey, &der);
    if (n <= 0)
        return NULL;
    const unsigned char *p = der;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, n);
    OPENSSL_free(der);
    return pub;
}

/* Checks beyond strength that a verification key must pass: RSA at most
 * M8_MAX_RSA_BITS (the signature buffer of m8_jws), a valid public key. */
static int check_verify_key(EVP_PKEY *pkey, m8_alg alg, char *err, size_t errlen)
{
    int rc = check_pkey(pkey, alg, err, errlen);
    if (rc)
        return rc;
    if (alg == M8_ALG_RS256 && EVP_PKEY_get_bits(pkey) > M8_MAX_RSA_BITS) {
        snprintf(err, errlen, "RS256 keys above %d bits are not supported; loaded key is %d bits",
                 M8_MAX_RSA_BITS, EVP_PKEY_get_bits(pkey));
        return M8_ECONFIG;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int good = ctx && EVP_PKEY_public_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    if (!good) {
        snprintf(err, errlen, "%s public key is not valid", alg_name(alg));
        return M8_ECONFIG;
    }
    return 0;
}

m8_key *m8_key_from_pem(const char *pem, size_t len, m8_alg alg, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (alg == M8_ALG_HS256) {
        snprintf(err, errlen, "HS256 uses a secret, not a PEM key");
        return NULL;
    }
    EVP_PKEY *loaded = m8_pem_load_pkey(pem, len, false, err, errlen);
    if (!loaded)
        return NULL;
    EVP_PKEY *pub = public_only(loaded);
    EVP_PKEY_free(loaded);
    ERR_clear_error();
    if (!pub) {
        parse_error(err, errlen, "cannot extract the public key");
        return NULL;
    }
    if (check_verify_key(pub, alg, err, errlen) != 0) {
        EVP_PKEY_free(pub);
        return NULL;
    }
    m8_key *k = key_new(alg);
    if (!k) {
        EVP_PKEY_free(pub);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->pkey = pub;
    return k;
}

/* PyJWT's HMAC defence: a "secret" that is really a PEM or SSH public key
 * means someone configured the RSA/EC key as the HMAC key. */
static const char *const not_a_secret[] = {
    "-----BEGIN",  "ssh-rsa",        "ssh-dss",        "ssh-ed25519",
    "ecdsa-sha2-", "sk-ssh-ed25519", "sk-ecdsa-sha2-",
};

m8_key *m8_key_from_secret(const char *secret, size_t len, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!secret || len == 0) {
        snprintf(err, errlen, "HS256 requires a non-empty secret");
        return NULL;
    }
    if (len > M8_MAX_SECRET_FILE_BYTES) {
        snprintf(err, errlen, "HS256 secret is longer than %u bytes", M8_MAX_SECRET_FILE_BYTES);
        return NULL;
    }
    for (size_t i = 0; i < M8_ARRAY_LEN(not_a_secret); i++) {
        if (contains(secret, len, not_a_secret[i])) {
            snprintf(err, errlen,
                     "The specified key is an asymmetric key or x509 certificate and should not "
                     "be used as an HMAC secret");
            return NULL;
        }
    }
    m8_key *k = key_new(M8_ALG_HS256);
    if (!k || !(k->secret = malloc(len))) {
        free(k);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(k->secret, secret, len);
    k->secret_len = len;
    return k;
}

/* ---- JWK (RFC 7517/7518) ---- */

/* Decodes the base64url string member name of jwk into out (at most cap
 * bytes); -1 when absent, not a string, or not base64url. */
static long jwk_bytes(struct json_object *jwk, const char *name, unsigned char *out, size_t cap)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(jwk, name, &v) || !json_object_is_type(v, json_type_string))
        return -1;
    return m8_b64url_decode(json_object_get_string(v), (size_t)json_object_get_string_len(v), out,
                            cap);
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *jwk_rsa(struct json_object *jwk, char *err, size_t errlen)
{
    /* n: up to M8_MAX_RSA_BITS plus leading zero bytes some encoders add. */
    unsigned char n[M8_MAX_RSA_BITS / 8 + 8], e[8];
    long nl = jwk_bytes(jwk, "n", n, sizeof n);
    long el = jwk_bytes(jwk, "e", e, sizeof e);
    if (nl <= 0 || el <= 0) {
        snprintf(err, errlen, "RSA JWK needs base64url members n and e (n of at most %d bits)",
                 M8_MAX_RSA_BITS);
        return NULL;
    }
    if ((e[el - 1] & 1) == 0 || (el == 1 && e[0] < 3) || (n[nl - 1] & 1) == 0) {
        snprintf(err, errlen, "RSA JWK has an invalid modulus or exponent");
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL);
    BIGNUM *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    if (!pkey)
        snprintf(err, errlen, "RSA JWK could not be loaded");
    return pkey;
}

static EVP_PKEY *jwk_ec(struct json_object *jwk, char *err, size_t errlen)
{
    struct json_object *crv = NULL;
    if (!json_object_object_get_ex(jwk, "crv", &crv) ||
        !json_object_is_type(crv, json_type_string)) {
        snprintf(err, errlen, "EC JWK needs a crv");
        return NULL;
    }
    if (strcmp(json_object_get_string(crv), "P-256") != 0) {
        snprintf(err, errlen, "ES256 requires a P-256 (secp256r1) EC curve; got %.32s",
                 json_object_get_string(crv));
        return NULL;
    }
    /* Uncompressed point 04 || x || y; each coordinate exactly 32 bytes (RFC 7518 6.2.1.2). */
    unsigned char pt[65], x[33], y[33]; /* one spare byte each: a 33-byte value is refused */
    if (jwk_bytes(jwk, "x", x, sizeof x) != 32 || jwk_bytes(jwk, "y", y, sizeof y) != 32) {
        snprintf(err, errlen, "EC JWK needs base64url members x and y of 32 bytes each");
        return NULL;
    }
    pt[0] = 0x04;
    memcpy(pt + 1, x, 32);
    memcpy(pt + 33, y, 32);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt))
        pkey = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    if (!pkey)
        snprintf(err, errlen, "EC JWK is not a point on P-256");
    return pkey;
}

/* Private members of RSA, EC and oct JWKs (RFC 7518 6.2.2, 6.3.2, 6.4). */
static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};

m8_key *m8_key_from_jwk(struct json_object *jwk, m8_alg alg, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!jwk || !json_object_is_type(jwk, json_type_object)) {
        snprintf(err, errlen, "JWK is not a JSON object");
        return NULL;
    }
    struct json_object *v = NULL;
    if (json_object_object_get_ex(jwk, "use", &v) &&
        (!json_object_is_type(v, json_type_string) ||
         strcmp(json_object_get_string(v), "sig") != 0)) {
        snprintf(err, errlen, "JWK use is not \"sig\"");
        return NULL;
    }
    for (size_t i = 0; i < M8_ARRAY_LEN(private_members); i++) {
        if (json_object_object_get_ex(jwk, private_members[i], NULL)) {
            snprintf(err, errlen, "JWK carries private key material (\"%s\")", private_members[i]);
            return NULL;
        }
    }
    const char *kid = NULL;
    size_t kid_len = 0;
    if (json_object_object_get_ex(jwk, "kid", &v)) {
        if (!json_object_is_type(v, json_type_string)) {
            snprintf(err, errlen, "JWK kid is not a string");
            return NULL;
        }
        kid = json_object_get_string(v);
        kid_len = (size_t)json_object_get_string_len(v);
        if (kid_len > M8_MAX_KID_BYTES || strlen(kid) != kid_len) {
            snprintf(err, errlen, "JWK kid is longer than %u bytes or holds a NUL",
                     M8_MAX_KID_BYTES);
            return NULL;
        }
    }
    const char *want = alg == M8_ALG_RS256 ? "RSA" : alg == M8_ALG_ES256 ? "EC" : NULL;
    if (!want) {
        snprintf(err, errlen, "%s does not use JWKS keys", alg_name(alg));
        return NULL;
    }
    const char *kty = NULL;
    if (json_object_object_get_ex(jwk, "kty", &v) && json_object_is_type(v, json_type_string))
        kty = json_object_get_string(v);
    if (!kty || strcmp(kty, want) != 0) {
        snprintf(err, errlen, "%s requires a JWK of kty %s; got %.16s", alg_name(alg), want,
                 kty ? kty : "(none)");
        return NULL;
    }
    EVP_PKEY *pkey = alg == M8_ALG_RS256 ? jwk_rsa(jwk, err, errlen) : jwk_ec(jwk, err, errlen);
    ERR_clear_error();
    if (!pkey)
        return NULL;
    if (check_verify_key(pkey, alg, err, errlen) != 0) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    m8_key *k = key_new(alg);
    if (!k || (kid && !(k->kid = strndup(kid, kid_len)))) {
        free(k);
        EVP_PKEY_free(pkey);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->pkey = pkey;
    return k;
}

bool m8_key_equal(const m8_key *a, const m8_key *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->alg != b->alg)
        return false;
    if (a->pkey || b->pkey) {
        bool eq = a->pkey && b->pkey && EVP_PKEY_eq(a->pkey, b->pkey) == 1;
        ERR_clear_error();
        return eq;
    }
    return a->secret && b->secret && a->secret_len == b->secret_len &&
           sodium_memcmp(a->secret, b->secret, a->secret_len) == 0;
}

/* ---- signature checks through per-thread contexts ----
 *
 * Building an EVP context per token costs a third of an RS256 check (the
 * provider fetch, DigestVerifyInit, locks).  Each thread keeps, per key it
 * has used, a context initialised once: EVP_PKEY_verify_init with the
 * padding and digest set (RS256/ES256; the token's SHA-256 is then checked
 * with EVP_PKEY_verify, what `openssl speed` measures), or an HMAC context
 * state keyed once (HS256, libsodium's HMAC-SHA256 as the project's stack
 * rule says: the keyed inner/outer state is copied per token, so the key
 * pads are hashed once per thread, not per token; OpenSSL's SHA-256 with
 * the CPU's SHA extensions measured ~3x faster on this machine).
 * A slot holds a reference to its key, so a pointer can never be reused
 * under it; slots whose key nobody else holds any more (rotated out of a
 * JWKS, or the verifier freed) are dropped at the thread's next check. */

#define KEY_SLOTS 8

typedef struct key_slot {
    m8_key *key; /* a reference; NULL = free */
    EVP_PKEY_CTX *pctx;
    crypto_auth_hmacsha256_state *hmac; /* HS256: keyed state, copied per check */
} key_slot;

typedef struct key_tls {
    EVP_MD_CTX *md;
    key_slot slot[KEY_SLOTS];
    unsigned next;
} key_tls;

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;
static bool tls_ready;
static EVP_MD *sha256_md;

static void slot_clear(key_slot *s)
{
    EVP_PKEY_CTX_free(s->pctx);
    if (s->hmac) {
        sodium_memzero(s->hmac, sizeof *s->hmac);
        free(s->hmac);
    }
    m8_key_unref(s->key);
    memset(s, 0, sizeof *s);
}

static void tls_free(void *p)
{
    key_tls *t = p;
    if (!t)
        return;
    for (size_t i = 0; i < KEY_SLOTS; i++)
        slot_clear(&t->slot[i]);
    EVP_MD_CTX_free(t->md);
    free(t);
}

static void tls_init(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    tls_ready = sha256_md && pthread_key_create(&tls_key, tls_free) == 0;
    ERR_clear_error();
}

static key_tls *thread_state(void)
{
    pthread_once(&tls_once, tls_init);
    if (!tls_ready)
        return NULL;
    key_tls *t = pthread_getspecific(tls_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t)
            return NULL;
        if (!(t->md = EVP_MD_CTX_new()) || pthread_setspecific(tls_key, t) != 0) {
            EVP_MD_CTX_free(t->md);
            free(t);
            return NULL;
        }
    }
    return t;
}

void m8_key_thread_release(void)
{
    pthread_once(&tls_once, tls_init);
    if (!tls_ready)
        return;
    key_tls *t = pthread_getspecific(tls_key);
    if (t) {
        pthread_setspecific(tls_key, NULL);
        tls_free(t);
    }
}

/* A context for key: false when the key's type does not fit its label. */
static bool slot_init(key_slot *s, m8_key *key)
{
    memset(s, 0, sizeof *s);
    if (key->alg == M8_ALG_HS256) {
        if (!key->secret || !key->secret_len || !(s->hmac = malloc(sizeof *s->hmac)) ||
            crypto_auth_hmacsha256_init(s->hmac, key->secret, key->secret_len) != 0)
            goto fail;
    } else {
        bool rsa = key->alg == M8_ALG_RS256;
        if (!key->pkey || !sha256_md || !EVP_PKEY_is_a(key->pkey, rsa ? "RSA" : "EC") ||
            !(s->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL)) ||
            EVP_PKEY_verify_init(s->pctx) <= 0 ||
            (rsa && EVP_PKEY_CTX_set_rsa_padding(s->pctx, RSA_PKCS1_PADDING) <= 0) ||
            EVP_PKEY_CTX_set_signature_md(s->pctx, sha256_md) <= 0)
            goto fail;
    }
    s->key = m8_key_ref(key);
    return true;
fail:
    slot_clear(s);
    ERR_clear_error();
    return false;
}

/* The calling thread's slot for key, made on first use; NULL when there is
 * no thread state (the caller then uses a temporary one). */
static key_slot *thread_slot(key_tls *t, m8_key *key, bool *unusable)
{
    key_slot *found = NULL, *free_slot = NULL;
    for (size_t i = 0; i < KEY_SLOTS; i++) {
        key_slot *s = &t->slot[i];
        if (s->key && s->key != key &&
            atomic_load_explicit(&s->key->refs, memory_order_acquire) == 1)
            slot_clear(s); /* only this slot still holds that key: it is gone */
        if (s->key == key)
            found = s;
        else if (!s->key && !free_slot)
            free_slot = s;
    }
    if (found)
        return found;
    key_slot *s = free_slot ? free_slot : &t->slot[t->next++ % KEY_SLOTS];
    if (s->key)
        slot_clear(s);
    if (!slot_init(s, key)) {
        *unusable = true;
        return NULL;
    }
    return s;
}

static bool digest(key_tls *t, const unsigned char *msg, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    if (t && sha256_md)
        return EVP_DigestInit_ex2(t->md, sha256_md, NULL) == 1 &&
               EVP_DigestUpdate(t->md, msg, len) == 1 && EVP_DigestFinal_ex(t->md, out, &n) == 1 &&
               n == 32;
    return EVP_Digest(msg, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
}

static bool slot_verify(key_tls *t, key_slot *s, const unsigned char *msg, size_t len,
                        const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[32];
    bool good = false;
    if (s->hmac) {
        crypto_auth_hmacsha256_state st = *s->hmac;
        good = sig_len == sizeof mac && crypto_auth_hmacsha256_update(&st, msg, len) == 0 &&
               crypto_auth_hmacsha256_final(&st, mac) == 0 &&
               sodium_memcmp(mac, sig, sizeof mac) == 0;
        sodium_memzero(&st, sizeof st);
    } else {
        good = digest(t, msg, len, mac) &&
               EVP_PKEY_verify(s->pctx, sig, sig_len, mac, sizeof mac) == 1;
    }
    sodium_memzero(mac, sizeof mac);
    if (!good)
        ERR_clear_error();
    return good;
}

bool m8_key_verify(const m8_key *key, const unsigned char *msg, size_t len,
                   const unsigned char *sig, size_t sig_len)
{
    if (!key || (!msg && len) || !sig)
        return false;
    m8_key *k = (m8_key *)key; /* a slot takes a reference: only the count changes */
    key_tls *t = thread_state();
    bool unusable = false;
    key_slot *s = t ? thread_slot(t, k, &unusable) : NULL;
    if (s)
        return slot_verify(t, s, msg, len, sig, sig_len);
    if (unusable)
        return false;
    key_slot tmp; /* no thread state (out of memory): a context for this check only */
    if (!slot_init(&tmp, k))
        return false;
    bool good = slot_verify(NULL, &tmp, msg, len, sig, sig_len);
    slot_clear(&tmp);
    return good;
}
