/* test_keys.c - PEM key strength (CONTRACT.md Part A 2.3).  Keys are made
 * with the openssl command in a temporary directory. */
#include "config.h"

#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"

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

    sh("rm -rf %s", dir);
    return done_testing();
}
