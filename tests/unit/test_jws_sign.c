/* test_jws_sign.c - signing (auth/jws_sign.h) and JWK export
 * (auth/jwk_export.h): tokens we sign verify with our own verifier, with
 * PyJWT and with `openssl dgst`; exported JWKs load back into the same key
 * (ours and PyJWT's from_jwk); fixed-width EC coordinates and R||S halves;
 * the SPKI kid matches `openssl pkey -outform DER | sha256sum`; jti values
 * are distinct UUID4s.  The PyJWT parts are skipped when /usr/bin/python3
 * lacks jwt/cryptography. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/jwk_export.h"
#include "auth/jws_sign.h"
#include "auth/jwt.h"
#include "tap.h"

static char dir[64];
static int have_python;

static const char secret[] = "Test-Signing-Secret-0123456789abcdef!";

/* Runs a shell command built from fmt; returns its exit status (-1 when it
 * did not exit normally). */
__attribute__((format(printf, 1, 2))) static int run(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Output of a shell command (first line, newline dropped) into out. */
static int capture(char *out, size_t cap, const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    out[0] = '\0';
    if (!fgets(out, (int)cap, f))
        out[0] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return pclose(f) == 0 ? 0 : -1;
}

static void path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int write_file(const char *name, const void *p, size_t n)
{
    char fn[128];
    path(fn, sizeof fn, name);
    FILE *f = fopen(fn, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* PEM text of pk (private or public); caller frees. */
static char *pem_of(EVP_PKEY *pk, int private_key, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    int ok = private_key ? PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL)
                         : PEM_write_bio_PUBKEY(b, pk);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *copy = NULL;
    if (ok && n > 0 && (copy = malloc((size_t)n + 1))) {
        memcpy(copy, data, (size_t)n);
        copy[n] = '\0';
        *len = (size_t)n;
    }
    BIO_free(b);
    return copy;
}

static int write_pem(const char *name, EVP_PKEY *pk, int private_key)
{
    size_t n = 0;
    char *p = pem_of(pk, private_key, &n);
    int rc = p ? write_file(name, p, n) : -1;
    free(p);
    return rc;
}

static m8_sign_key *sign_key(EVP_PKEY *pk, m8_alg alg)
{
    size_t n = 0;
    char *p = pem_of(pk, 1, &n);
    char err[256];
    m8_sign_key *k = m8_sign_key_from_pem(p, n, alg, err, sizeof err);
    if (!k)
        diag("sign key: %s", err);
    free(p);
    return k;
}

static m8_key *verify_key(EVP_PKEY *pk, m8_alg alg)
{
    size_t n = 0;
    char *p = pem_of(pk, 0, &n);
    char err[256];
    m8_key *k = m8_key_from_pem(p, n, alg, err, sizeof err);
    if (!k)
        diag("verify key: %s", err);
    free(p);
    return k;
}

/* Our verifier's verdict on a compact token. */
static int our_verify(const char *tok, m8_alg alg, const m8_key *k)
{
    m8_jws j;
    if (m8_jws_parse(tok, strlen(tok), &j) != M8_JWT_OK)
        return 0;
    int good = m8_jws_verify(&j, alg, k) == M8_JWT_OK;
    m8_jws_free(&j);
    m8_jwt_thread_release();
    return good;
}

/* Writes the signing input and the signature (DER for ES256) of tok to
 * in.bin and sig.bin for `openssl dgst -verify`. */
static int split_for_openssl(const char *tok, m8_alg alg)
{
    const char *d2 = strrchr(tok, '.');
    unsigned char sig[1024];
    long n = m8_b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig);
    if (n <= 0 || write_file("in.bin", tok, (size_t)(d2 - tok)) != 0)
        return -1;
    if (alg != M8_ALG_ES256)
        return write_file("sig.bin", sig, (size_t)n);
    if (n != 64)
        return -1;
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
    unsigned char *der = NULL;
    int dl = i2d_ECDSA_SIG(es, &der);
    int rc = dl > 0 ? write_file("sig.bin", der, (size_t)dl) : -1;
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return rc;
}

static int openssl_verify(const char *tok, m8_alg alg, const char *pub)
{
    if (split_for_openssl(tok, alg) != 0)
        return -1;
    return run("openssl dgst -sha256 -verify %s/%s -signature %s/sig.bin %s/in.bin >/dev/null 2>&1",
               dir, pub, dir, dir);
}

static int pyjwt_verify(const char *tok, const char *alg, const char *keyfile)
{
    return run("/usr/bin/python3 -c 'import sys, jwt; c = jwt.decode(sys.argv[1], "
               "open(sys.argv[2], \"rb\").read(), algorithms=[sys.argv[3]]); "
               "assert c[\"sub\"] == \"signer\" and c[\"path\"] == \"a/b\"' %s %s/%s %s 2>&1",
               tok, dir, keyfile, alg);
}

static json_object *payload(void)
{
    json_object *p = json_object_new_object();
    json_object_object_add(p, "sub", json_object_new_string("signer"));
    json_object_object_add(p, "path", json_object_new_string("a/b"));
    json_object_object_add(p, "n", json_object_new_int(7));
    return p;
}

/* A token minted by PyJWT with the secret in keyfile, for our verifier. */
static int pyjwt_mint(char *out, size_t cap, const char *keyfile)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -W ignore -c 'import sys, jwt; print(jwt.encode({\"sub\": "
             "\"signer\"}, open(sys.argv[1], \"rb\").read(), algorithm=\"HS256\"))' %s/%s",
             dir, keyfile);
    return capture(out, cap, cmd);
}

/* HS256 keys of every length class (HMAC pads keys up to the 64-byte SHA-256
 * block and hashes longer ones first): the MAC of a token we sign equals
 * OpenSSL's HMAC-SHA256 of its signing input, our verifier (libsodium's
 * HMAC from a state keyed once per thread) accepts it and PyJWT's, and
 * refuses it with one MAC bit flipped. */
static void test_hmac_key_lengths(void)
{
    static const size_t lens[] = {1, 32, 63, 64, 65, 200};
    char key[200], err[256];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < M8_ARRAY_LEN(lens); i++) {
        size_t kl = lens[i];
        m8_sign_key *sk = m8_sign_key_from_secret(key, kl, err, sizeof err);
        m8_key *vk = m8_key_from_secret(key, kl, err, sizeof err);
        json_object *p = payload();
        m8_buf tok;
        m8_buf_init(&tok, 1 << 16);
        if (!ok(sk && vk && m8_jws_sign_json(sk, NULL, NULL, p, &tok) == 0,
                "HS256 %zu-byte secret: signs", kl)) {
            m8_sign_key_free(sk);
            m8_key_unref(vk);
            json_object_put(p);
            m8_buf_free(&tok);
            continue;
        }
        const char *t = tok.data, *d2 = strrchr(t, '.');
        unsigned char mac[EVP_MAX_MD_SIZE], ours[64];
        size_t ml = 0;
        long ol = m8_b64url_decode(d2 + 1, strlen(d2 + 1), ours, sizeof ours);
        ok(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, kl, (const unsigned char *)t,
                     (size_t)(d2 - t), mac, sizeof mac, &ml) != NULL &&
               ml == 32 && ol == 32 && memcmp(mac, ours, 32) == 0,
           "HS256 %zu-byte secret: the MAC equals OpenSSL's HMAC-SHA256", kl);
        ok(our_verify(t, M8_ALG_HS256, vk), "HS256 %zu-byte secret: our verifier accepts the token",
           kl);
        char *bad = m8_strdup0(t);
        size_t bl = strlen(bad);
        bad[bl - 3] = bad[bl - 3] == 'A' ? 'B' : 'A'; /* a bit of the MAC's last bytes */
        ok(!our_verify(bad, M8_ALG_HS256, vk),
           "HS256 %zu-byte secret: a MAC with a changed byte is refused", kl);
        free(bad);
        if (have_python && kl >= 32) {
            char pyt[1024];
            write_file("hs-len.secret", key, kl);
            ok(pyjwt_mint(pyt, sizeof pyt, "hs-len.secret") == 0 &&
                   our_verify(pyt, M8_ALG_HS256, vk),
               "HS256 %zu-byte secret: a token minted by PyJWT verifies", kl);
        }
        m8_buf_free(&tok);
        json_object_put(p);
        m8_sign_key_free(sk);
        m8_key_unref(vk);
    }
}

/* Parse, signature and payload of an HS256 token we sign over raw payload
 * bytes: 1 when the payload is accepted as a JSON object. */
static int payload_accepted(const m8_sign_key *sk, const m8_key *vk, const char *pl, size_t n)
{
    static const char hdr[] = "{\"alg\":\"HS256\"}";
    m8_buf tok;
    m8_buf_init(&tok, 1 << 16);
    int good = 0;
    m8_jws j;
    if (m8_jws_sign(sk, hdr, sizeof hdr - 1, pl, n, &tok) == 0 &&
        m8_jws_parse(tok.data, tok.len, &j) == M8_JWT_OK) {
        good = m8_jws_verify(&j, M8_ALG_HS256, vk) == M8_JWT_OK &&
               m8_jws_parse_payload(&j) == M8_JWT_OK &&
               json_object_is_type(j.payload, json_type_object);
        m8_jws_free(&j);
    }
    m8_buf_free(&tok);
    return good;
}

/* The payload text checks next to json-c: UTF-8 per RFC 3629 (json-c's own
 * check, off for tokens, takes overlong forms, surrogates and code points
 * past U+10FFFF), and duplicate names with and without nested containers. */
static void test_payload_text(void)
{
    static const struct {
        const char *text;
        int want;
        const char *why;
    } cases[] = {
        {"{\"n\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"}", 1,
         "2-, 3- and 4-byte UTF-8 up to U+10FFFF in a string is accepted"},
        {"{\"caf\xc3\xa9\":1}", 1, "UTF-8 in a member name is accepted"},
        {"{\"n\":\"\xc0\xaf\"}", 0, "an overlong 2-byte form (C0 AF) is refused"},
        {"{\"n\":\"\xe0\x80\xaf\"}", 0, "an overlong 3-byte form (E0 80 AF) is refused"},
        {"{\"n\":\"\xf0\x80\x80\xaf\"}", 0, "an overlong 4-byte form is refused"},
        {"{\"n\":\"\xed\xa0\x80\"}", 0, "a UTF-16 surrogate in UTF-8 (ED A0 80) is refused"},
        {"{\"n\":\"\xf4\x90\x80\x80\"}", 0, "a code point past U+10FFFF is refused"},
        {"{\"n\":\"\xf5\x80\x80\x80\"}", 0, "a lead byte F5 is refused"},
        {"{\"n\":\"\x80\"}", 0, "a lone continuation byte is refused"},
        {"{\"n\":\"\xe2\x82\"}", 0, "a sequence cut short by the closing quote is refused"},
        {"{\"n\":\"\xff\"}", 0, "a byte FF is refused"},
        {"{\"n\":1}\xc3\xa9", 0, "UTF-8 after the object is refused"},
        {"{\"a\":\"{[\",\"b\":\"[{\"}", 1, "'{' and '[' inside strings are not containers"},
        {"{\"a\":\"{\",\"a\":1}", 0, "a duplicate name next to a '{' in a string is refused"},
        {"{\"a\":{\"b\":1,\"c\":[{\"d\":2}]},\"e\":[1,[2]]}", 1,
         "nested objects and arrays without duplicates are accepted"},
        {"{\"a\":{\"b\":1},\"c\":[{\"d\":1,\"d\":2}]}", 0,
         "a duplicate name in an object inside an array is refused"},
        {"{\"a\":[1],\"a\":[2]}", 0, "a duplicate top-level name with array values is refused"},
    };
    char err[256];
    m8_sign_key *sk = m8_sign_key_from_secret(secret, strlen(secret), err, sizeof err);
    m8_key *vk = m8_key_from_secret(secret, strlen(secret), err, sizeof err);
    for (size_t i = 0; i < M8_ARRAY_LEN(cases); i++)
        is_int(payload_accepted(sk, vk, cases[i].text, strlen(cases[i].text)), cases[i].want,
               "payload text: %s", cases[i].why);
    m8_sign_key_free(sk);
    m8_key_unref(vk);
    m8_jwt_thread_release();
}

/* ------------------------------------------------------------ signing */

static void test_sign_alg(m8_alg alg, EVP_PKEY *pk)
{
    const char *name = alg == M8_ALG_RS256 ? "RS256" : alg == M8_ALG_ES256 ? "ES256" : "HS256";
    char err[256];
    m8_sign_key *sk = alg == M8_ALG_HS256
                          ? m8_sign_key_from_secret(secret, strlen(secret), err, sizeof err)
                          : sign_key(pk, alg);
    m8_key *vk = alg == M8_ALG_HS256 ? m8_key_from_secret(secret, strlen(secret), err, sizeof err)
                                     : verify_key(pk, alg);
    if (!ok(sk && vk, "%s: signing and verification keys load", name)) {
        m8_sign_key_free(sk);
        m8_key_unref(vk);
        return;
    }
    json_object *extra = json_object_new_object();
    json_object_object_add(extra, "cty", json_object_new_string("x"));
    json_object_object_add(extra, "alg", json_object_new_string("none"));
    json_object *p = payload();
    m8_buf tok;
    m8_buf_init(&tok, 1 << 16);
    is_int(m8_jws_sign_json(sk, "k1", extra, p, &tok), 0, "%s: m8_jws_sign_json signs", name);
    const char *t = tok.data ? tok.data : "";
    ok(our_verify(t, alg, vk), "%s: our verifier accepts the token", name);

    m8_jws j;
    if (m8_jws_parse(t, strlen(t), &j) == M8_JWT_OK) {
        is_str(json_object_to_json_string_ext(j.header, JSON_C_TO_STRING_PLAIN),
               alg == M8_ALG_HS256
                   ? "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\",\"cty\":\"x\"}"
               : alg == M8_ALG_RS256
                   ? "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k1\",\"cty\":\"x\"}"
                   : "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"k1\",\"cty\":\"x\"}",
               "%s: header alg, typ, kid then the extras (alg in the extras ignored)", name);
        is_int(j.sig_len,
               alg == M8_ALG_HS256   ? 32
               : alg == M8_ALG_ES256 ? 64
                                     : 256,
               "%s: signature length", name);
        m8_jws_free(&j);
    } else {
        ok(0, "%s: the token parses", name);
        ok(0, "%s: signature length", name);
    }

    /* a flipped signature bit is refused */
    char *bad = m8_strdup0(t);
    size_t bl = strlen(bad);
    bad[bl - 2] = bad[bl - 2] == 'A' ? 'B' : 'A';
    ok(!our_verify(bad, alg, vk), "%s: our verifier refuses a changed signature", name);
    free(bad);

    if (alg == M8_ALG_HS256) {
        write_file("hs.secret", secret, strlen(secret));
        /* HMAC over the signing input by openssl itself */
        const char *d2 = strrchr(t, '.');
        write_file("in.bin", t, (size_t)(d2 - t));
        char cmd[512], got[256];
        snprintf(cmd, sizeof cmd,
                 "openssl dgst -sha256 -hmac '%s' -binary %s/in.bin | openssl base64 -A | "
                 "tr '+/' '-_' | tr -d '='",
                 secret, dir);
        capture(got, sizeof got, cmd);
        is_str(got, d2 + 1, "HS256: the signature equals openssl's HMAC-SHA256");
        if (have_python)
            is_int(pyjwt_verify(t, "HS256", "hs.secret"), 0, "HS256: PyJWT verifies the token");
    } else {
        const char *pub = alg == M8_ALG_RS256 ? "rsa.pub" : "ec.pub";
        is_int(openssl_verify(t, alg, pub), 0, "%s: openssl dgst -verify accepts the signature",
               name);
        if (have_python)
            is_int(pyjwt_verify(t, name, pub), 0, "%s: PyJWT verifies the token", name);
    }
    m8_buf_free(&tok);
    json_object_put(p);
    json_object_put(extra);
    m8_sign_key_free(sk);
    m8_key_unref(vk);
}

static void test_rs_leading_zero(EVP_PKEY *ec)
{
    /* sign until R or S has a leading zero byte (about 1 in 128), bounded */
    m8_sign_key *sk = sign_key(ec, M8_ALG_ES256);
    m8_key *vk = verify_key(ec, M8_ALG_ES256);
    json_object *p = payload();
    m8_buf tok;
    m8_buf_init(&tok, 1 << 16);
    int found = 0;
    for (int i = 0; i < 5000 && !found && sk; i++) {
        m8_buf_reset(&tok);
        if (m8_jws_sign_json(sk, NULL, NULL, p, &tok) != 0)
            break;
        const char *d2 = strrchr(tok.data, '.');
        unsigned char sig[128];
        long n = m8_b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig);
        if (n == 64 && (sig[0] == 0 || sig[32] == 0))
            found = 1;
    }
    if (ok(found, "ES256: a signature with a leading zero byte in R or S was made")) {
        ok(our_verify(tok.data, M8_ALG_ES256, vk),
           "ES256: R||S padded to 32 bytes verifies (ours)");
        is_int(openssl_verify(tok.data, M8_ALG_ES256, "ec.pub"), 0,
               "ES256: R||S padded to 32 bytes verifies (openssl)");
        if (have_python)
            is_int(pyjwt_verify(tok.data, "ES256", "ec.pub"), 0,
                   "ES256: R||S padded to 32 bytes verifies (PyJWT)");
    }
    m8_buf_free(&tok);
    json_object_put(p);
    m8_sign_key_free(sk);
    m8_key_unref(vk);

    /* DER with short integers: R = 1, S = 0x0100 */
    static const unsigned char der[] = {0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x01, 0x00};
    unsigned char out[64], want[64] = {0};
    want[31] = 1;
    want[62] = 1;
    is_int(m8_ecdsa_der_to_jose(der, sizeof der, out), 0, "DER -> R||S converts short integers");
    ok(memcmp(out, want, 64) == 0, "DER -> R||S left-pads each half to 32 bytes");
    static const unsigned char trailing[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x00};
    is_int(m8_ecdsa_der_to_jose(trailing, sizeof trailing, out), M8_EINVAL,
           "DER -> R||S refuses trailing bytes");
    unsigned char big[80] = {0x30, 0x46, 0x02, 0x21, 0x01};
    big[38] = 0x02;
    big[39] = 0x21;
    big[40] = 0x01;
    is_int(m8_ecdsa_der_to_jose(big, 72, out), M8_EINVAL,
           "DER -> R||S refuses integers longer than 32 bytes");
}

static void test_refusals(EVP_PKEY *rsa, EVP_PKEY *ec)
{
    char err[256];
    size_t n = 0;
    char *ec_pem = pem_of(ec, 1, &n);
    ok(!m8_sign_key_from_pem(ec_pem, n, M8_ALG_RS256, err, sizeof err),
       "RS256 refuses an EC private key");
    like(err, "RS256 requires an RSA key", "... and says why");
    ok(!m8_sign_key_from_pem(ec_pem, n, M8_ALG_HS256, err, sizeof err),
       "HS256 refuses a PEM key as the signing key");
    free(ec_pem);
    char *rsa_pem = pem_of(rsa, 1, &n);
    ok(!m8_sign_key_from_pem(rsa_pem, n, M8_ALG_ES256, err, sizeof err),
       "ES256 refuses an RSA private key");
    like(err, "ES256 requires an EC key", "... and says why");
    ok(!m8_sign_key_from_secret(rsa_pem, n, err, sizeof err),
       "HS256 refuses a PEM as the HMAC secret");
    free(rsa_pem);
    ok(!m8_sign_key_from_secret("", 0, err, sizeof err), "HS256 refuses an empty secret");
    char *rsa_pub = pem_of(rsa, 0, &n);
    ok(!m8_sign_key_from_pem(rsa_pub, n, M8_ALG_RS256, err, sizeof err),
       "RS256 refuses a public key for signing");
    like(err, "private key", "... and says a private key is needed");
    free(rsa_pub);

    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    char *p384_pem = pem_of(p384, 1, &n);
    ok(!m8_sign_key_from_pem(p384_pem, n, M8_ALG_ES256, err, sizeof err),
       "ES256 refuses a P-384 key");
    free(p384_pem);
    ok(!m8_jwk_export(p384, NULL, err, sizeof err), "JWK export refuses a P-384 key");
    EVP_PKEY_free(p384);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    ok(!m8_jwk_export(ed, NULL, err, sizeof err), "JWK export refuses an Ed25519 key");
    EVP_PKEY_free(ed);

    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, ec, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"pass");
    char *data = NULL;
    long bl = BIO_get_mem_data(b, &data);
    ok(!m8_sign_key_from_pem(data, (size_t)bl, M8_ALG_ES256, err, sizeof err),
       "an encrypted private key is refused (no pass phrase prompt)");
    BIO_free(b);
    ok(!m8_sign_key_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 58,
                             M8_ALG_RS256, err, sizeof err),
       "a malformed PEM is refused");

    m8_sign_key *hk = m8_sign_key_from_secret(secret, strlen(secret), err, sizeof err);
    unsigned char sig[64];
    size_t sl = 0;
    is_int(m8_jws_sign_raw(hk, (const unsigned char *)"x", 1, sig, 31, &sl), M8_ETOOBIG,
           "m8_jws_sign_raw refuses a signature buffer that is too small");
    m8_sign_key_free(hk);
    m8_sign_key *rk = sign_key(rsa, M8_ALG_RS256);
    is_int(m8_jws_sign_raw(rk, (const unsigned char *)"x", 1, sig, sizeof sig, &sl), M8_ETOOBIG,
           "m8_jws_sign_raw refuses a buffer smaller than the RSA modulus");
    m8_sign_key_free(rk);
}

/* ------------------------------------------------------------ JWK export */

static int jwk_member_len(json_object *jwk, const char *name)
{
    json_object *v;
    unsigned char buf[1024];
    if (!json_object_object_get_ex(jwk, name, &v))
        return -1;
    return (int)m8_b64url_decode(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                                 buf, sizeof buf);
}

/* Exported JWK -> m8_key_from_jwk equals the key from the PEM; PyJWT's
 * from_jwk gives the same public numbers. */
static void check_roundtrip(EVP_PKEY *pk, m8_alg alg, const char *what)
{
    char err[256];
    json_object *jwk = m8_jwk_export(pk, "kid-1", err, sizeof err);
    if (!ok(jwk != NULL, "%s: exported", what)) {
        diag("%s", err);
        return;
    }
    m8_key *back = m8_key_from_jwk(jwk, alg, err, sizeof err);
    m8_key *want = verify_key(pk, alg);
    ok(back && want && m8_key_equal(back, want), "%s: JWK import gives the same key", what);
    is_str(back ? back->kid : NULL, "kid-1", "%s: the kid is kept", what);
    m8_key_unref(back);
    m8_key_unref(want);
    json_object *v;
    ok(json_object_object_get_ex(jwk, "use", &v) && strcmp(json_object_get_string(v), "sig") == 0,
       "%s: use is sig", what);
    ok(!json_object_object_get_ex(jwk, "d", &v), "%s: no private member", what);
    if (alg == M8_ALG_ES256) {
        is_int(jwk_member_len(jwk, "x"), 32, "%s: x is 32 bytes", what);
        is_int(jwk_member_len(jwk, "y"), 32, "%s: y is 32 bytes", what);
    }
    if (have_python) {
        const char *s = json_object_to_json_string_ext(jwk, JSON_C_TO_STRING_PLAIN);
        write_file("jwk.json", s, strlen(s));
        write_pem("jwk.pub", pk, 0);
        is_int(run("/usr/bin/python3 -c 'import sys, json, jwt\n"
                   "from cryptography.hazmat.primitives.serialization import load_pem_public_key\n"
                   "j = open(sys.argv[1]).read()\n"
                   "a = jwt.algorithms.RSAAlgorithm if json.loads(j)[\"kty\"] == \"RSA\" else "
                   "jwt.algorithms.ECAlgorithm\n"
                   "k = a.from_jwk(j)\n"
                   "assert k.public_numbers() == load_pem_public_key(open(sys.argv[2], \"rb\")"
                   ".read()).public_numbers()' %s/jwk.json %s/jwk.pub 2>&1",
                   dir, dir),
               0, "%s: PyJWT from_jwk loads it as the same public key", what);
    }
    json_object_put(jwk);
}

static int coord_short(EVP_PKEY *pk)
{
    BIGNUM *x = NULL, *y = NULL;
    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x);
    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y);
    int s = x && y && (BN_num_bytes(x) < 32 || BN_num_bytes(y) < 32);
    BN_free(x);
    BN_free(y);
    return s;
}

static void test_jwk_export(EVP_PKEY *rsa, EVP_PKEY *ec)
{
    check_roundtrip(rsa, M8_ALG_RS256, "RSA JWK");
    check_roundtrip(ec, M8_ALG_ES256, "EC JWK");
    /* a key whose x or y has a leading zero byte (about 1 in 128), bounded */
    EVP_PKEY *z = NULL;
    for (int i = 0; i < 4000 && !z; i++) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (k && coord_short(k))
            z = k;
        else
            EVP_PKEY_free(k);
    }
    if (ok(z != NULL, "an EC key with a leading zero byte in x or y was made"))
        check_roundtrip(z, M8_ALG_ES256, "EC JWK, short coordinate");
    EVP_PKEY_free(z);

    /* JWKS of several keys, in order, kids as given */
    EVP_PKEY *keys[] = {rsa, ec};
    const char *kids[] = {"a", NULL};
    char err[256];
    json_object *doc = m8_jwks_export(keys, kids, 2, err, sizeof err);
    json_object *arr = NULL, *v;
    ok(doc && json_object_object_get_ex(doc, "keys", &arr) && json_object_array_length(arr) == 2,
       "JWKS: two keys");
    if (arr && json_object_array_length(arr) == 2) {
        json_object *k0 = json_object_array_get_idx(arr, 0);
        json_object *k1 = json_object_array_get_idx(arr, 1);
        is_str(json_object_object_get_ex(k0, "kty", &v) ? json_object_get_string(v) : NULL, "RSA",
               "JWKS: the RSA key first");
        is_str(json_object_object_get_ex(k0, "kid", &v) ? json_object_get_string(v) : NULL, "a",
               "JWKS: its kid");
        ok(!json_object_object_get_ex(k1, "kid", &v), "JWKS: no kid where none was given");
        is_str(json_object_object_get_ex(k1, "crv", &v) ? json_object_get_string(v) : NULL, "P-256",
               "JWKS: the EC key second");
    }
    json_object_put(doc);
    EVP_PKEY *bad[] = {rsa, NULL};
    ok(!m8_jwks_export(bad, NULL, 2, err, sizeof err),
       "JWKS: refused when a key cannot be exported");
}

static void test_kid(EVP_PKEY *pk, const char *pub, const char *what)
{
    char kid[M8_JWK_KID_LEN + 1], want[128], cmd[256];
    is_int(m8_jwk_kid(pk, kid), 0, "%s kid: computed", what);
    snprintf(cmd, sizeof cmd,
             "openssl pkey -pubin -in %s/%s -pubout -outform DER | sha256sum | cut -c1-16", dir,
             pub);
    capture(want, sizeof want, cmd);
    is_int(strlen(want), 16, "%s kid: openssl gave 16 hex digits", what);
    is_str(kid, want, "%s kid = first 16 hex of SHA-256 of the SPKI DER (openssl)", what);
    size_t n = 0;
    char *pem = pem_of(pk, 0, &n);
    char err[256], kid2[M8_JWK_KID_LEN + 1];
    EVP_PKEY *pubk = m8_pem_load_pkey(pem, n, false, err, sizeof err);
    ok(pubk && m8_jwk_kid(pubk, kid2) == 0 && strcmp(kid, kid2) == 0,
       "%s kid: the same from the public key alone", what);
    EVP_PKEY_free(pubk);
    free(pem);
}

/* ------------------------------------------------------------ jti */

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static int is_uuid4(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0') {
            return 0;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_jti(void)
{
    enum { N = 10000 };
    char(*v)[M8_UUID_STR_LEN + 1] = calloc(N, sizeof *v);
    int all_uuid4 = 1;
    for (int i = 0; i < N; i++) {
        m8_jti_new(v[i]);
        if (!is_uuid4(v[i])) {
            if (all_uuid4)
                diag("not a UUID4: %s", v[i]);
            all_uuid4 = 0;
        }
    }
    ok(all_uuid4, "jti: %d values are lower-case 8-4-4-4-12 UUID4s (version 4, variant 10)", N);
    qsort(v, N, sizeof *v, cmp_str);
    int distinct = 1;
    for (int i = 1; i < N; i++)
        distinct &= strcmp(v[i - 1], v[i]) != 0;
    ok(distinct, "jti: %d values are distinct", N);
    free(v);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    snprintf(dir, sizeof dir, "/tmp/m8-jws-sign-XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    have_python = run("/usr/bin/python3 -c 'import jwt, cryptography' >/dev/null 2>&1") == 0;
    if (!have_python)
        diag("SKIP the PyJWT parts: /usr/bin/python3 lacks jwt/cryptography");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!rsa || !ec || write_pem("rsa.pub", rsa, 0) || write_pem("ec.pub", ec, 0)) {
        printf("Bail out! key generation\n");
        return 1;
    }

    test_sign_alg(M8_ALG_HS256, NULL);
    test_sign_alg(M8_ALG_RS256, rsa);
    test_sign_alg(M8_ALG_ES256, ec);
    test_rs_leading_zero(ec);
    test_refusals(rsa, ec);
    test_jwk_export(rsa, ec);
    test_kid(rsa, "rsa.pub", "RSA");
    test_kid(ec, "ec.pub", "EC");
    test_jti();
    test_hmac_key_lengths();
    test_payload_text();

    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    run("rm -rf '%s'", dir);
    return done_testing();
}
