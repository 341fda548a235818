/* test_issuer_fernet.c - Fernet tokens (lib/issuer/fernet.c;
 * doc/issuer.md#stored-google-tokens): the format's published vector, the
 * key fa-auth-m8 derives from TOKENS_ENCRYPTION_KEY, tokens made here and
 * read by Python's cryptography.fernet (MultiFernet new -> old) and the
 * reverse, with both keys, and every malformed token refused: tampered,
 * truncated, another version, a bad padding under a good HMAC, a text
 * outside the urlsafe alphabet, over the bound, too old with a ttl.  The
 * Python parts are skipped when /usr/bin/python3 lacks cryptography. */
#include "config.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "issuer/fernet.h"
#include "pyrun.h"
#include "tap.h"

#define NEW_SECRET "Test-Tokens-Encryption-Key-0123456789ab!"
#define OLD_SECRET "Old-Tokens-Encryption-Key-0123456789ab!"

static char g_dir[64];

static const char PY[] =
    "import base64, hashlib, sys\n"
    "from cryptography.fernet import Fernet, MultiFernet, InvalidToken\n"
    "def f(s):\n"
    "    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(s.encode()).digest()))\n"
    "a = sys.argv[1:]\n"
    "if a[0] == 'key':\n"
    "    print(base64.urlsafe_b64encode(hashlib.sha256(a[1].encode()).digest()).decode())\n"
    "elif a[0] == 'enc':\n"
    "    print(f(a[1]).encrypt(a[2].encode()).decode())\n"
    "elif a[0] == 'dec':\n"
    "    m = MultiFernet([f(s) for s in a[2:]])\n"
    "    try:\n"
    "        print(m.decrypt(a[1].encode()).decode())\n"
    "    except InvalidToken:\n"
    "        print('INVALID')\n";

/* Runs the helper with the NULL-terminated arguments; its stdout (one line,
 * the newline dropped) into out.  The exit status, or -1. */
static int py(char *out, size_t cap, ...)
{
    char script[128];
    snprintf(script, sizeof script, "%s/fernet.py", g_dir);
    va_list ap;
    va_start(ap, cap);
    int rc = m8t_py_va(script, out, cap, ap);
    va_end(ap);
    size_t got = strlen(out);
    if (got && out[got - 1] == '\n')
        out[got - 1] = '\0';
    return rc;
}

/* decrypt into a string: the return code; the plaintext in out */
static int dec(const m8_fernet_key *keys, size_t n, const char *tok, int64_t ttl, int64_t now,
               char *out, size_t cap, size_t *which)
{
    m8_buf b;
    m8_buf_init(&b, cap - 1);
    int rc = m8_fernet_decrypt(keys, n, tok, strlen(tok), ttl, now, &b, which);
    snprintf(out, cap, "%s", rc == 0 && b.data ? b.data : "");
    m8_buf_free(&b);
    return rc;
}

static void enc(const m8_fernet_key *k, const char *plain, int64_t now, char *out, size_t cap)
{
    m8_buf b;
    m8_buf_init(&b, cap - 1);
    out[0] = '\0';
    if (m8_fernet_encrypt(k, plain, strlen(plain), now, &b) == 0)
        snprintf(out, cap, "%s", b.data);
    m8_buf_free(&b);
}

/* The published vector of the Fernet specification (generate.json). */
static void test_vector(void)
{
    static const char tok[] = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhu"
                              "VUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
    m8_fernet_key k;
    is_int(m8_fernet_key_parse("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=", 44, &k), 0,
           "vector: the specification's key parses");
    unsigned char iv[16];
    for (int i = 0; i < 16; i++)
        iv[i] = (unsigned char)i;
    m8_buf b;
    m8_buf_init(&b, 4096);
    /* 1985-10-26T01:20:00-07:00 */
    is_int(m8_fernet_encrypt_iv(&k, "hello", 5, 499162800, iv, &b), 0, "vector: encrypt");
    is_str(b.data, tok, "vector: the token is the specification's, byte for byte");
    m8_buf_free(&b);
    char out[64];
    is_int(dec(&k, 1, tok, 60, 499162800 + 59, out, sizeof out, NULL), 0,
           "vector: decrypt with a ttl of 60 s, 59 s later");
    is_str(out, "hello", "vector: the plaintext");
    is_int(dec(&k, 1, tok, 60, 499162800 + 61, out, sizeof out, NULL), M8_EPARSE,
           "vector: 61 s later the ttl refuses it");
    is_int(dec(&k, 1, tok, 60, 499162800 - 61, out, sizeof out, NULL), M8_EPARSE,
           "vector: a token from more than 60 s in the future is refused with a ttl");
    is_int(dec(&k, 1, tok, 0, 2000000000, out, sizeof out, NULL), 0,
           "vector: no ttl, no time check");
    is_int(m8_fernet_key_parse("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4", 43, &k), M8_EPARSE,
           "a key without its padding is refused");
    is_int(m8_fernet_key_parse("cw/0x689RpI+jtRR7oE8h/eQsKImvJapLeSbXpwF4e4=", 44, &k), M8_EPARSE,
           "a key in the standard (not urlsafe) alphabet is refused");
    is_int(M8_FERNET_TOKEN_LEN(5), (int)strlen(tok), "M8_FERNET_TOKEN_LEN is the token's length");
}

/* The token's HMAC: HMAC-SHA256 with the 16-byte signing key. */
static void mac16(const m8_fernet_key *k, const unsigned char *in, size_t n, unsigned char *out)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, k->sign, 16);
    crypto_auth_hmacsha256_update(&st, in, n);
    crypto_auth_hmacsha256_final(&st, out);
}

/* A token whose HMAC is good but whose last block decrypts to a bad PKCS7
 * padding (a last byte of 0). */
static void bad_padding(const m8_fernet_key *k, char *out, size_t cap)
{
    unsigned char raw[25 + 16 + 32], iv[16] = {0}, zero[16] = {0};
    raw[0] = 0x80;
    memset(raw + 1, 0, 8);
    memcpy(raw + 9, iv, 16);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int a = 0;
    EVP_EncryptInit_ex(c, EVP_aes_128_cbc(), NULL, k->enc, iv);
    EVP_CIPHER_CTX_set_padding(c, 0);
    EVP_EncryptUpdate(c, raw + 25, &a, zero, 16);
    EVP_CIPHER_CTX_free(c);
    mac16(k, raw, 41, raw + 41);
    sodium_bin2base64(out, cap, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE);
}

static void test_refusals(void)
{
    m8_fernet_key keys[2], other;
    m8_fernet_key_derive(NEW_SECRET, strlen(NEW_SECRET), &keys[0]);
    m8_fernet_key_derive(OLD_SECRET, strlen(OLD_SECRET), &keys[1]);
    m8_fernet_key_derive("another", 7, &other);
    char tok[512], t2[512], out[256];
    int64_t now = (int64_t)time(NULL);
    enc(&keys[0], "ya29.secret-access-token", now, tok, sizeof tok);
    size_t which = 9;
    is_int(dec(keys, 2, tok, 0, now, out, sizeof out, &which), 0, "round trip under the new key");
    ok(strcmp(out, "ya29.secret-access-token") == 0 && which == 0, "  the plaintext, key 0");
    enc(&keys[1], "1//old-refresh", now, t2, sizeof t2);
    is_int(dec(keys, 2, t2, 0, now, out, sizeof out, &which), 0,
           "a token of the old key decrypts with the pair (new -> old)");
    ok(strcmp(out, "1//old-refresh") == 0 && which == 1, "  the plaintext, key 1");
    is_int(dec(keys, 1, t2, 0, now, out, sizeof out, NULL), M8_EPARSE,
           "the old key's token is refused by the new key alone");
    is_int(dec(&other, 1, tok, 0, now, out, sizeof out, NULL), M8_EPARSE,
           "another key is refused (HMAC)");
    char bad[512];
    snprintf(bad, sizeof bad, "%s", tok);
    size_t mid = strlen(bad) / 2;
    bad[mid] = bad[mid] == 'A' ? 'B' : 'A';
    is_int(dec(keys, 2, bad, 0, now, out, sizeof out, NULL), M8_EPARSE,
           "a token with one character changed is refused");
    snprintf(bad, sizeof bad, "%s", tok);
    bad[strlen(bad) - 8] = '\0';
    is_int(dec(keys, 2, bad, 0, now, out, sizeof out, NULL), M8_EPARSE, "a truncated token");
    snprintf(bad, sizeof bad, "%.*s", (int)strlen(tok) - 4, tok);
    is_int(dec(keys, 2, bad, 0, now, out, sizeof out, NULL), M8_EPARSE,
           "a token four characters short (whole base64 quanta)");
    is_int(dec(keys, 2, "", 0, now, out, sizeof out, NULL), M8_EPARSE, "an empty token");
    {
        /* a token holding - or _ (random IVs: a few tries at most), so that
         * the same bytes in the standard alphabet are really tried */
        char urlsafe[512];
        enc(&keys[0], "ya29.secret-access-token", now, urlsafe, sizeof urlsafe);
        for (int i = 0; i < 64 && !strpbrk(urlsafe, "-_"); i++)
            enc(&keys[0], "ya29.secret-access-token", now, urlsafe, sizeof urlsafe);
        snprintf(bad, sizeof bad, "%s", urlsafe);
        for (char *p = bad; *p; p++)
            *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
        ok(strpbrk(urlsafe, "-_") && dec(keys, 2, urlsafe, 0, now, out, sizeof out, NULL) == 0 &&
               dec(keys, 2, bad, 0, now, out, sizeof out, NULL) == M8_EPARSE,
           "the standard alphabet (+ /) is refused");
    }
    snprintf(bad, sizeof bad, "%s", tok);
    bad[strcspn(bad, "=")] = '\0';
    ok(strlen(bad) == strlen(tok) || dec(keys, 2, bad, 0, now, out, sizeof out, NULL) == M8_EPARSE,
       "a token without its padding is refused");
    snprintf(bad, sizeof bad, " %s", tok);
    is_int(dec(keys, 2, bad, 0, now, out, sizeof out, NULL), M8_EPARSE,
           "a token with a leading space is refused");
    /* another version byte, HMAC recomputed: the version is checked itself */
    {
        unsigned char raw[512];
        size_t len = 0;
        sodium_base642bin(raw, sizeof raw, tok, strlen(tok), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE);
        raw[0] = 0x81;
        mac16(&keys[0], raw, len - 32, raw + len - 32);
        sodium_bin2base64(bad, sizeof bad, raw, len, sodium_base64_VARIANT_URLSAFE);
        is_int(dec(keys, 2, bad, 0, now, out, sizeof out, NULL), M8_EPARSE,
               "version 0x81 under a good HMAC is refused");
    }
    bad_padding(&keys[0], bad, sizeof bad);
    is_int(dec(keys, 2, bad, 0, now, out, sizeof out, NULL), M8_EPARSE,
           "a bad PKCS7 padding under a good HMAC is refused");
    char *huge = malloc(M8_FERNET_TOKEN_MAX + 8);
    memset(huge, 'A', M8_FERNET_TOKEN_MAX + 4);
    huge[M8_FERNET_TOKEN_MAX + 4] = '\0';
    is_int(dec(keys, 2, huge, 0, now, out, sizeof out, NULL), M8_ETOOBIG,
           "a token over M8_FERNET_TOKEN_MAX (%u) is refused before decoding", M8_FERNET_TOKEN_MAX);
    huge[M8_FERNET_TOKEN_MAX] = '\0';
    is_int(dec(keys, 2, huge, 0, now, out, sizeof out, NULL), M8_EPARSE,
           "one of exactly M8_FERNET_TOKEN_MAX characters is read (and refused: no HMAC)");
    free(huge);
    m8_buf b;
    m8_buf_init(&b, 1 << 20);
    char *plain = calloc(1, 8192);
    is_int(m8_fernet_encrypt(&keys[0], plain, 6000, now, &b), 0,
           "a plaintext whose token fits M8_FERNET_TOKEN_MAX");
    m8_buf_reset(&b);
    is_int(m8_fernet_encrypt(&keys[0], plain, 6200, now, &b), M8_ETOOBIG,
           "one whose token would not is refused");
    free(plain);
    m8_buf_free(&b);
    enc(&keys[0], "old", now - 1000, tok, sizeof tok);
    is_int(dec(keys, 2, tok, 999, now, out, sizeof out, NULL), M8_EPARSE,
           "a ttl of 999 s refuses a token made 1000 s ago");
    is_int(dec(keys, 2, tok, 1000, now, out, sizeof out, NULL), 0, "a ttl of 1000 s takes it");
}

static void test_python(void)
{
    char out[1024], tok[1024], want[64];
    int64_t now = (int64_t)time(NULL);
    m8_fernet_key keys[2];
    m8_fernet_key_derive(NEW_SECRET, strlen(NEW_SECRET), &keys[0]);
    m8_fernet_key_derive(OLD_SECRET, strlen(OLD_SECRET), &keys[1]);
    {
        unsigned char raw[32];
        memcpy(raw, keys[0].sign, 16);
        memcpy(raw + 16, keys[0].enc, 16);
        sodium_bin2base64(want, sizeof want, raw, 32, sodium_base64_VARIANT_URLSAFE);
    }
    py(out, sizeof out, "key", NEW_SECRET, NULL);
    is_str(want, out,
           "the key is urlsafe_b64encode(sha256(TOKENS_ENCRYPTION_KEY)), as fa-auth-m8's");

    enc(&keys[0], "ya29.a0AfH6SMB-access", now, tok, sizeof tok);
    py(out, sizeof out, "dec", tok, NEW_SECRET, OLD_SECRET, NULL);
    is_str(out, "ya29.a0AfH6SMB-access", "C -> Python: MultiFernet(new, old) reads the new key's");
    enc(&keys[1], "1//0refresh-old", now, tok, sizeof tok);
    py(out, sizeof out, "dec", tok, NEW_SECRET, OLD_SECRET, NULL);
    is_str(out, "1//0refresh-old", "C -> Python: and the old key's");
    py(out, sizeof out, "dec", tok, NEW_SECRET, NULL);
    is_str(out, "INVALID", "C -> Python: the old key's token is invalid under the new key alone");
    char long_plain[1472];
    memset(long_plain, 'x', 1471);
    long_plain[1471] = '\0';
    char long_tok[2100];
    enc(&keys[0], long_plain, now, long_tok, sizeof long_tok);
    is_int(strlen(long_tok), 2040, "C: a 1471-byte plaintext makes a 2040-character token");
    char *big = malloc(4096);
    py(big, 4096, "dec", long_tok, NEW_SECRET, NULL);
    ok(strcmp(big, long_plain) == 0, "C -> Python: a 1471-byte token round-trips");
    free(big);

    py(tok, sizeof tok, "enc", NEW_SECRET, "ya29.from-python", NULL);
    size_t which = 9;
    is_int(dec(keys, 2, tok, 0, now, out, sizeof out, &which), 0,
           "Python -> C: a token of the new key decrypts");
    ok(strcmp(out, "ya29.from-python") == 0 && which == 0, "  the plaintext, key 0");
    is_int(dec(keys, 2, tok, 120, now, out, sizeof out, NULL), 0,
           "Python -> C: within a ttl of 120 s");
    py(tok, sizeof tok, "enc", OLD_SECRET, "1//from-python-old", NULL);
    is_int(dec(keys, 2, tok, 0, now, out, sizeof out, &which), 0,
           "Python -> C: a token of the old key decrypts with the pair");
    ok(strcmp(out, "1//from-python-old") == 0 && which == 1, "  the plaintext, key 1");
    is_int(dec(keys, 1, tok, 0, now, out, sizeof out, NULL), M8_EPARSE,
           "Python -> C: the old key's token is refused by the new key alone");
    size_t n = strlen(tok);
    tok[n / 2] = tok[n / 2] == 'a' ? 'b' : 'a';
    is_int(dec(keys, 2, tok, 0, now, out, sizeof out, NULL), M8_EPARSE,
           "Python -> C: a tampered token is refused");
    tok[n - 10] = '\0';
    is_int(dec(keys, 2, tok, 0, now, out, sizeof out, NULL), M8_EPARSE,
           "Python -> C: a truncated token is refused");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    test_vector();
    test_refusals();
    int have = system("/usr/bin/python3 -c 'import cryptography.fernet' >/dev/null 2>&1") == 0;
    snprintf(g_dir, sizeof g_dir, "/tmp/m8-fernet.XXXXXX");
    if (have && mkdtemp(g_dir)) {
        char path[128];
        snprintf(path, sizeof path, "%s/fernet.py", g_dir);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(PY, f);
            fclose(f);
            test_python();
            unlink(path);
        }
        rmdir(g_dir);
    } else {
        ok(1, "Python's cryptography.fernet # SKIP /usr/bin/python3 lacks cryptography");
    }
    return done_testing();
}
