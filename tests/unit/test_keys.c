/* test_keys.c - PEM key strength (doc/settings.md#key-strength) and
 * verification keys from a PEM or an HMAC secret, with their reference counts,
 * key equality and signature checks through per-thread contexts.
 * Keys are made with the openssl command in a temporary directory.  JWK keys
 * are tested in test_jwt.c with keys minted by tests/tools/mint.py. */
#include "config.h"

#include "tap.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "auth/jwt.h" /* m8_b64url_encode */
#include "auth/keys.h"

static char dir[64];
static char err[256];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

/* m8_key_from_pem on the file name for alg; NULL with err on a refusal. */
static m8_key *from_pem(const char *name, m8_alg alg)
{
    size_t len = 0;
    char *pem = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (m8_read_file(path, 1u << 20, true, &pem, &len) != 0) {
        snprintf(err, sizeof err, "(missing %s)", name);
        return NULL;
    }
    m8_key *k = m8_key_from_pem(pem, len, alg, err, sizeof err);
    free(pem);
    return k;
}

static void *ref_storm(void *arg)
{
    m8_key *k = arg;
    for (int i = 0; i < 100000; i++) {
        m8_key_ref(k);
        m8_key_unref(k);
    }
    return NULL;
}

static void test_from_pem(void)
{
    static const struct {
        const char *file;
        m8_alg alg;
    } good[] = {
        {"rsa2048.pub", M8_ALG_RS256},   {"rsa2048.pkcs1.pub", M8_ALG_RS256},
        {"rsa2048.pem", M8_ALG_RS256},   {"rsa2048.trad.pem", M8_ALG_RS256},
        {"p256.pub", M8_ALG_ES256},      {"p256.pem", M8_ALG_ES256},
        {"p256.sec1.pem", M8_ALG_ES256},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(good); i++) {
        m8_key *k = from_pem(good[i].file, good[i].alg);
        ok(k && k->pkey && k->alg == good[i].alg && !k->secret && !k->kid,
           "m8_key_from_pem: %s accepted for %s", good[i].file,
           good[i].alg == M8_ALG_RS256 ? "RS256" : "ES256");
        if (!k)
            diag("%s", err);
        /* Only the public half is kept, even from a private key file. */
        BIGNUM *bn = NULL;
        const char *priv =
            good[i].alg == M8_ALG_RS256 ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY;
        ok(k && !EVP_PKEY_get_bn_param(k->pkey, priv, &bn),
           "m8_key_from_pem: %s keeps no "
           "private component",
           good[i].file);
        BN_free(bn);
        m8_key_unref(k);
    }
    static const struct {
        const char *file;
        m8_alg alg;
        const char *msg;
    } bad[] = {
        {"rsa2047.pub", M8_ALG_RS256, "minimum 2048-bit"},
        {"rsa1024.pem", M8_ALG_RS256, "minimum 2048-bit"},
        {"p256.pub", M8_ALG_RS256, "requires an RSA key; got EC"},
        {"ed.pem", M8_ALG_RS256, "requires an RSA key"},
        {"p384.pub", M8_ALG_ES256, "P-256"},
        {"k256.pub", M8_ALG_ES256, "P-256"},
        {"rsa2048.pub", M8_ALG_ES256, "requires an EC key; got RSA"},
        {"cert.pem", M8_ALG_RS256, "certificate"},
        {"enc.pem", M8_ALG_RS256, "encrypted"},
        {"rsa2048.pub", M8_ALG_HS256, "HS256 uses a secret"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        m8_key *k = from_pem(bad[i].file, bad[i].alg);
        ok(k == NULL, "m8_key_from_pem refuses %s for %s", bad[i].file,
           bad[i].alg == M8_ALG_RS256   ? "RS256"
           : bad[i].alg == M8_ALG_ES256 ? "ES256"
                                        : "HS256");
        like(err, bad[i].msg, "m8_key_from_pem says why: %s", bad[i].msg);
        m8_key_unref(k);
    }
    ok(m8_key_from_pem(NULL, 0, M8_ALG_RS256, err, sizeof err) == NULL, "m8_key_from_pem(NULL)");

    /* Reference counts: atomic, the last unref frees (ASan checks both). */
    m8_key *k = from_pem("rsa2048.pub", M8_ALG_RS256);
    ok(k && m8_key_ref(k) == k, "m8_key_ref returns the key");
    is_int(k ? k->refs : 0, 2, "m8_key_ref counts");
    m8_key_unref(k);
    is_int(k ? k->refs : 0, 1, "m8_key_unref counts down");
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, ref_storm, k);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    is_int(k ? k->refs : 0, 1, "400000 concurrent ref/unref pairs leave the count at 1");
    m8_key_unref(k);
    ok(m8_key_ref(NULL) == NULL, "m8_key_ref(NULL) is NULL");
    m8_key_unref(NULL);
    ok(1, "m8_key_unref(NULL) is a no-op");
}

static void test_from_secret(void)
{
    const char *s = "AuthSdkM8-Fixture_TrustedTestKey-2026-DoNotUseInProd!";
    m8_key *k = m8_key_from_secret(s, strlen(s), err, sizeof err);
    ok(k && k->alg == M8_ALG_HS256 && k->secret_len == strlen(s) &&
           memcmp(k->secret, s, strlen(s)) == 0 && !k->pkey,
       "m8_key_from_secret copies the raw secret bytes");
    m8_key_unref(k);
    k = m8_key_from_secret("x", 1, err, sizeof err);
    ok(k != NULL, "a one-byte secret is a key (HMAC takes any length)");
    m8_key_unref(k);
    static const struct {
        const char *secret;
        const char *why;
    } bad[] = {
        {"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----\n",
         "a PEM public key"},
        {"-----BEGIN RSA PUBLIC KEY-----\nMIIB\n", "a PKCS#1 PEM"},
        {"-----BEGIN CERTIFICATE-----\nMIIB\n", "a certificate"},
        {"  -----BEGIN PUBLIC KEY-----", "a PEM after spaces"},
        {"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user@host", "an ssh-rsa key"},
        {"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= user@host", "an ecdsa-sha2 key"},
        {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI user@host", "an ssh-ed25519 key"},
        {"ssh-dss AAAAB3NzaC1kc3M user@host", "an ssh-dss key"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        k = m8_key_from_secret(bad[i].secret, strlen(bad[i].secret), err, sizeof err);
        ok(k == NULL, "m8_key_from_secret refuses %s", bad[i].why);
        like(err, "asymmetric key", "m8_key_from_secret says it is an asymmetric key");
        ok(strstr(err, "AAAA") == NULL && strstr(err, "BEGIN") == NULL,
           "the refusal does not echo the secret");
        m8_key_unref(k);
    }
    ok(m8_key_from_secret("", 0, err, sizeof err) == NULL, "an empty secret is refused");
    ok(m8_key_from_secret(NULL, 0, err, sizeof err) == NULL, "a NULL secret is refused");
    char *big = malloc(M8_MAX_SECRET_FILE_BYTES + 1);
    memset(big, 'k', M8_MAX_SECRET_FILE_BYTES + 1);
    k = m8_key_from_secret(big, M8_MAX_SECRET_FILE_BYTES, err, sizeof err);
    ok(k != NULL, "a secret of M8_MAX_SECRET_FILE_BYTES is accepted");
    m8_key_unref(k);
    ok(m8_key_from_secret(big, M8_MAX_SECRET_FILE_BYTES + 1, err, sizeof err) == NULL,
       "a secret of M8_MAX_SECRET_FILE_BYTES + 1 is refused");
    free(big);
}

/* ---- m8_key_equal and m8_key_verify (per-thread contexts) ---- */

/* A signature over msg made here with OpenSSL from the private key file
 * (DER for EC); its length, 0 on failure. */
static size_t sign_with(const char *name, const char *msg, unsigned char *sig, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    EVP_PKEY *pk = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t n = cap;
    if (!pk || !c || EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, pk) != 1 ||
        EVP_DigestSign(c, sig, &n, (const unsigned char *)msg, strlen(msg)) != 1)
        n = 0;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    return n;
}

typedef struct vjob {
    m8_key *k;
    const char *msg;
    const unsigned char *sig;
    size_t sig_len;
    int good;
} vjob;

static void *verify_many(void *arg)
{
    vjob *j = arg;
    for (int i = 0; i < 300; i++)
        j->good +=
            m8_key_verify(j->k, (const unsigned char *)j->msg, strlen(j->msg), j->sig, j->sig_len);
    return NULL; /* the thread's contexts (and key references) go at its exit */
}

static void test_verify(void)
{
    const char *msg = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0";
    const unsigned char *m = (const unsigned char *)msg;
    size_t ml = strlen(msg);
    unsigned char sig[600];

    m8_key *rs = from_pem("rsa2048.pub", M8_ALG_RS256);
    m8_key *rs_priv = from_pem("rsa2048.pem", M8_ALG_RS256);
    m8_key *rs_pkcs1 = from_pem("rsa2048.pkcs1.pub", M8_ALG_RS256);
    m8_key *rs_b = from_pem("rsa2048b.pub", M8_ALG_RS256);
    m8_key *ec = from_pem("p256.pub", M8_ALG_ES256);
    m8_key *ec_b = from_pem("p256b.pub", M8_ALG_ES256);
    const char *secret = "AuthSdkM8-Fixture_TrustedTestKey-2026-DoNotUseInProd!";
    m8_key *hs = m8_key_from_secret(secret, strlen(secret), err, sizeof err);
    m8_key *hs_same = m8_key_from_secret(secret, strlen(secret), err, sizeof err);
    m8_key *hs_b = m8_key_from_secret("another-secret", 14, err, sizeof err);
    if (!rs || !rs_priv || !rs_pkcs1 || !rs_b || !ec || !ec_b || !hs || !hs_same || !hs_b) {
        ok(0, "the keys for m8_key_verify load");
        return;
    }

    ok(m8_key_equal(rs, rs_priv) && m8_key_equal(rs, rs_pkcs1),
       "m8_key_equal: the same RSA key from SPKI, private and PKCS#1 PEM");
    ok(!m8_key_equal(rs, rs_b), "m8_key_equal: two RSA keys differ");
    ok(!m8_key_equal(ec, ec_b), "m8_key_equal: two P-256 keys differ");
    ok(m8_key_equal(hs, hs_same) && !m8_key_equal(hs, hs_b),
       "m8_key_equal: HMAC secrets compared by their bytes");
    ok(!m8_key_equal(rs, ec) && !m8_key_equal(rs, hs) && !m8_key_equal(rs, NULL),
       "m8_key_equal: different algorithms or NULL are not equal");

    size_t sl = sign_with("rsa2048.pem", msg, sig, sizeof sig);
    ok(sl == 256 && m8_key_verify(rs, m, ml, sig, sl), "m8_key_verify: RS256 by openssl verifies");
    ok(m8_key_verify(rs, m, ml, sig, sl), "m8_key_verify: ... again with the thread's context");
    is_int(rs->refs, 2, "m8_key_verify: the thread's context holds a reference to the key");
    ok(!m8_key_verify(rs, m, ml - 1, sig, sl), "m8_key_verify: RS256 over other bytes fails");
    ok(m8_key_verify(rs, m, ml, sig, sl), "m8_key_verify: ... and the context still works after");
    ok(!m8_key_verify(rs_b, m, ml, sig, sl), "m8_key_verify: RS256 under another key fails");
    ok(!m8_key_verify(rs, m, ml, sig, sl - 1), "m8_key_verify: a short RS256 signature fails");
    sig[10] ^= 1;
    ok(!m8_key_verify(rs, m, ml, sig, sl), "m8_key_verify: an altered RS256 signature fails");
    sig[10] ^= 1;

    sl = sign_with("p256.pem", msg, sig, sizeof sig);
    ok(sl > 0 && m8_key_verify(ec, m, ml, sig, sl), "m8_key_verify: ES256 (DER) verifies");
    ok(!m8_key_verify(ec_b, m, ml, sig, sl), "m8_key_verify: ES256 under another key fails");
    ok(!m8_key_verify(rs, m, ml, sig, sl), "m8_key_verify: an ES256 signature under RS256 fails");

    unsigned char mac[32];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, m, ml);
    crypto_auth_hmacsha256_final(&st, mac);
    ok(m8_key_verify(hs, m, ml, mac, 32), "m8_key_verify: HS256 (libsodium HMAC) verifies");
    ok(m8_key_verify(hs_same, m, ml, mac, 32), "m8_key_verify: ... under an equal secret");
    ok(!m8_key_verify(hs_b, m, ml, mac, 32), "m8_key_verify: HS256 under another secret fails");
    ok(!m8_key_verify(hs, m, ml, mac, 31), "m8_key_verify: a 31-byte HMAC fails");
    mac[31] ^= 1;
    ok(!m8_key_verify(hs, m, ml, mac, 32), "m8_key_verify: an altered HMAC fails");
    mac[31] ^= 1;
    ok(m8_key_verify(hs, m, ml, mac, 32), "m8_key_verify: ... the HMAC context resets each time");

    /* More keys than a thread keeps contexts for: evicted and rebuilt. */
    m8_key *many[12];
    int good = 0;
    for (int i = 0; i < 12; i++)
        many[i] = m8_key_from_secret(secret, strlen(secret), err, sizeof err);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 12; i++)
            good += many[i] && m8_key_verify(many[i], m, ml, mac, 32);
    is_int(good, 36, "m8_key_verify: 12 keys round-robin through 8 contexts per thread");
    for (int i = 0; i < 12; i++)
        m8_key_unref(many[i]); /* contexts of unheld keys go at the next check */
    ok(m8_key_verify(hs, m, ml, mac, 32), "m8_key_verify: contexts of released keys are dropped");

    /* Threads: each its own context; their references go with them. */
    sl = sign_with("rsa2048.pem", msg, sig, sizeof sig);
    ok(m8_key_verify(rs, m, ml, sig, sl), "m8_key_verify: RS256 again in this thread");
    is_int(rs->refs, 2, "m8_key_verify: ... a context (and a reference) for it again");
    pthread_t th[4];
    vjob jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (vjob){rs, msg, sig, sl, 0};
        pthread_create(&th[i], NULL, verify_many, &jobs[i]);
    }
    good = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        good += jobs[i].good;
    }
    is_int(good, 1200, "m8_key_verify: 4 threads x 300 RS256 checks with one shared key");
    is_int(rs->refs, 2, "m8_key_verify: thread exit released the threads' references");
    m8_key_thread_release();
    is_int(rs->refs, 1, "m8_key_thread_release drops this thread's reference");

    m8_key *all[] = {rs, rs_priv, rs_pkcs1, rs_b, ec, ec_b, hs, hs_same, hs_b};
    for (size_t i = 0; i < M8_ARRAY_LEN(all); i++)
        m8_key_unref(all[i]);
}

/* JWK limits that need no real key: the RSA modulus size cap. */
static void test_jwk_limits(void)
{
    /* n of M8_MAX_RSA_BITS + 8 bits (odd, 513 bytes): refused for size. */
    unsigned char n[M8_MAX_RSA_BITS / 8 + 1];
    memset(n, 0xd5, sizeof n);
    m8_buf b;
    m8_buf_init(&b, 4096);
    m8_buf_puts(&b, "{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"");
    m8_b64url_encode(&b, n, sizeof n);
    m8_buf_puts(&b, "\"}");
    json_object *o = json_tokener_parse(b.data);
    m8_key *k = m8_key_from_jwk(o, M8_ALG_RS256, err, sizeof err);
    ok(k == NULL, "JWK RSA of 4104 bits (past M8_MAX_RSA_BITS) refused");
    like(err, "above 4096 bits", "JWK size refusal names the cap");
    m8_key_unref(k);
    json_object_put(o);
    m8_buf_free(&b);
    o = json_tokener_parse("{\"kty\":\"RSA\",\"e\":\"AQAB\"}");
    ok(m8_key_from_jwk(o, M8_ALG_RS256, err, sizeof err) == NULL, "JWK RSA without n refused");
    json_object_put(o);
    o = json_tokener_parse("{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQ==\"}");
    ok(m8_key_from_jwk(o, M8_ALG_RS256, err, sizeof err) == NULL,
       "JWK RSA with a padded (non-base64url) member refused");
    json_object_put(o);
    /* Coordinates of 33 bytes (one past P-256's 32): refused, never copied
     * past the point buffer (a fuzzer found this one). */
    o = json_tokener_parse("{\"kty\":\"EC\",\"crv\":\"P-256\","
                           "\"x\":\"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE\","
                           "\"y\":\"QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC\"}");
    ok(m8_key_from_jwk(o, M8_ALG_ES256, err, sizeof err) == NULL,
       "JWK EC with a 33-byte y refused");
    json_object_put(o);
    o = json_tokener_parse("{\"kty\":\"EC\",\"crv\":\"P-256\","
                           "\"x\":\"QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC\","
                           "\"y\":\"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE\"}");
    ok(m8_key_from_jwk(o, M8_ALG_ES256, err, sizeof err) == NULL,
       "JWK EC with a 33-byte x refused");
    json_object_put(o);
}

static char *slurp(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *out = NULL;
    if (m8_read_file(path, 1u << 20, true, &out, len) != 0)
        return NULL;
    return out;
}

/* Strength of the PEM in file name for alg; err holds the message. */
static int strength(const char *name, m8_alg alg)
{
    size_t len = 0;
    char *pem = slurp(name, &len);
    if (!pem) {
        snprintf(err, sizeof err, "(missing %s)", name);
        return 99;
    }
    int rc = m8_key_strength(pem, len, alg, err, sizeof err);
    free(pem);
    return rc;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/m8keysXXXXXX");
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return done_testing();
    }
    const char *q = ">/dev/null 2>&1";
    int gen = 0;
    gen |= sh(
        "cd %s && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2048.pem %s",
        dir, q);
    gen |= sh("cd %s && openssl pkey -in rsa2048.pem -pubout -out rsa2048.pub %s", dir, q);
    gen |= sh(
        "cd %s && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2047 -out rsa2047.pem %s",
        dir, q);
    gen |= sh("cd %s && openssl pkey -in rsa2047.pem -pubout -out rsa2047.pub %s", dir, q);
    gen |= sh(
        "cd %s && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.pem %s",
        dir, q);
    gen |= sh("cd %s && openssl pkey -in rsa1024.pem -pubout -out rsa1024.pub %s", dir, q);
    gen |= sh("cd %s && openssl rsa -in rsa2048.pem -RSAPublicKey_out -out rsa2048.pkcs1.pub %s",
              dir, q);
    gen |= sh("cd %s && openssl rsa -in rsa2048.pem -traditional -out rsa2048.trad.pem %s", dir, q);
    gen |= sh(
        "cd %s && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.pem %s",
        dir, q);
    gen |= sh("cd %s && openssl pkey -in p256.pem -pubout -out p256.pub %s", dir, q);
    gen |= sh(
        "cd %s && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256b.pem %s",
        dir, q);
    gen |= sh("cd %s && openssl pkey -in p256b.pem -pubout -out p256b.pub %s", dir, q);
    gen |= sh("cd %s && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "
              "rsa2048b.pem %s",
              dir, q);
    gen |= sh("cd %s && openssl pkey -in rsa2048b.pem -pubout -out rsa2048b.pub %s", dir, q);
    gen |= sh(
        "cd %s && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem %s",
        dir, q);
    gen |= sh("cd %s && openssl pkey -in p384.pem -pubout -out p384.pub %s", dir, q);
    gen |= sh("cd %s && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out "
              "k256.pem %s",
              dir, q);
    gen |= sh("cd %s && openssl pkey -in k256.pem -pubout -out k256.pub %s", dir, q);
    gen |= sh("cd %s && openssl ec -in p256.pem -out p256.sec1.pem %s", dir, q);
    gen |= sh("cd %s && openssl genpkey -algorithm ED25519 -out ed.pem %s", dir, q);
    gen |= sh("cd %s && openssl pkey -in rsa2048.pem -aes256 -passout pass:secret -out enc.pem %s",
              dir, q);
    gen |= sh("cd %s && openssl rsa -in rsa2048.pem -aes256 -traditional -passout pass:secret -out "
              "enc.trad.pem %s",
              dir, q);
    gen |= sh("cd %s && openssl req -x509 -key rsa2048.pem -subj /CN=x -days 1 -out cert.pem %s",
              dir, q);
    ok(gen == 0, "openssl generated the test keys in %s", dir);

    is_int(strength("rsa2048.pem", M8_ALG_RS256), 0, "RS256: RSA 2048 private key accepted");
    is_int(strength("rsa2048.pub", M8_ALG_RS256), 0, "RS256: RSA 2048 public key accepted");
    is_int(strength("rsa2048.pkcs1.pub", M8_ALG_RS256), 0, "RS256: PKCS#1 RSA PUBLIC KEY accepted");
    is_int(strength("rsa2048.trad.pem", M8_ALG_RS256), 0,
           "RS256: traditional RSA PRIVATE KEY accepted");
    is_int(strength("rsa2047.pem", M8_ALG_RS256), M8_ECONFIG,
           "RS256: RSA 2047 (one under) rejected");
    is_str(err, "RS256 requires a minimum 2048-bit RSA key; loaded key is 2047 bits",
           "RS256 size message with the bit count");
    is_int(strength("rsa2047.pub", M8_ALG_RS256), M8_ECONFIG,
           "RS256: RSA 2047 public key rejected");
    is_int(strength("rsa1024.pem", M8_ALG_RS256), M8_ECONFIG,
           "RS256: RSA 1024 private key rejected");
    is_str(err, "RS256 requires a minimum 2048-bit RSA key; loaded key is 1024 bits",
           "RS256 1024-bit message");
    is_int(strength("rsa1024.pub", M8_ALG_RS256), M8_ECONFIG,
           "RS256: RSA 1024 public key rejected");
    is_int(strength("p256.pub", M8_ALG_RS256), M8_ECONFIG, "RS256: EC key rejected");
    is_str(err, "RS256 requires an RSA key; got EC", "RS256 wrong-type message");
    is_int(strength("ed.pem", M8_ALG_RS256), M8_ECONFIG, "RS256: Ed25519 key rejected");
    like(err, "RS256 requires an RSA key; got ED25519", "RS256 names the Ed25519 type");

    is_int(strength("p256.pem", M8_ALG_ES256), 0, "ES256: P-256 private key accepted");
    is_int(strength("p256.pub", M8_ALG_ES256), 0, "ES256: P-256 public key accepted");
    is_int(strength("p256.sec1.pem", M8_ALG_ES256), 0, "ES256: SEC1 EC PRIVATE KEY accepted");
    is_int(strength("p384.pem", M8_ALG_ES256), M8_ECONFIG, "ES256: P-384 private key rejected");
    is_str(err, "ES256 requires a P-256 (secp256r1) EC curve; got secp384r1",
           "ES256 curve message");
    is_int(strength("p384.pub", M8_ALG_ES256), M8_ECONFIG, "ES256: P-384 public key rejected");
    is_int(strength("k256.pem", M8_ALG_ES256), M8_ECONFIG, "ES256: secp256k1 private key rejected");
    is_str(err, "ES256 requires a P-256 (secp256r1) EC curve; got secp256k1", "secp256k1 named");
    is_int(strength("k256.pub", M8_ALG_ES256), M8_ECONFIG, "ES256: secp256k1 public key rejected");
    is_int(strength("rsa2048.pub", M8_ALG_ES256), M8_ECONFIG, "ES256: RSA key rejected");
    is_str(err, "ES256 requires an EC key; got RSA", "ES256 wrong-type message");

    is_int(strength("cert.pem", M8_ALG_RS256), M8_ECONFIG, "a certificate PEM is not accepted");
    like(err, "Cannot parse PEM key material", "certificate: parse message");
    is_int(strength("enc.pem", M8_ALG_RS256), M8_ECONFIG,
           "an encrypted PKCS#8 key is not accepted");
    like(err, "Cannot parse PEM key material", "encrypted: parse message");
    is_int(strength("enc.trad.pem", M8_ALG_RS256), M8_ECONFIG,
           "an encrypted traditional key is not accepted");
    is_int(m8_key_strength("not a key", 9, M8_ALG_RS256, err, sizeof err), M8_ECONFIG,
           "garbage is not accepted");
    like(err, "Cannot parse PEM key material", "garbage: parse message");
    const char *broken = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    is_int(m8_key_strength(broken, strlen(broken), M8_ALG_ES256, err, sizeof err), M8_ECONFIG,
           "a corrupt PEM body is not accepted");
    like(err, "Cannot parse PEM key material", "corrupt: parse message");
    is_int(m8_key_strength("junk", 4, M8_ALG_HS256, err, sizeof err), 0, "HS256 skips the check");

    /* Size limit: the same key padded with trailing newlines, at and past M8_MAX_PEM_BYTES. */
    size_t len = 0;
    char *pem = slurp("rsa2048.pub", &len);
    if (pem) {
        char *big = malloc(M8_MAX_PEM_BYTES + 1);
        memcpy(big, pem, len);
        memset(big + len, '\n', M8_MAX_PEM_BYTES + 1 - len);
        is_int(m8_key_strength(big, M8_MAX_PEM_BYTES, M8_ALG_RS256, err, sizeof err), 0,
               "a PEM of exactly M8_MAX_PEM_BYTES is read");
        is_int(m8_key_strength(big, M8_MAX_PEM_BYTES + 1, M8_ALG_RS256, err, sizeof err),
               M8_ECONFIG, "a PEM of M8_MAX_PEM_BYTES + 1 is refused");
        like(err, "Cannot parse PEM key material", "too big: parse message");
        free(big);
        free(pem);
    }

    test_from_pem();
    test_from_secret();
    test_jwk_limits();
    test_verify();

    sh("rm -rf %s", dir);
    return done_testing();
}
