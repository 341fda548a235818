/* keys.c - PEM key material and its strength (keys.h, CONTRACT.md Part A 2.3). */
#include "keys.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

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

static EVP_PKEY *load_pem(const char *pem, size_t len, char *err, size_t errlen)
{
    if (len > M8_MAX_PEM_BYTES) {
        parse_error(err, errlen, "larger than the PEM size limit");
        return NULL;
    }
    if (!contains(pem, len, "-----BEGIN ")) {
        parse_error(err, errlen, "no PEM block found");
        return NULL;
    }
    if (contains(pem, len, "-----BEGIN CERTIFICATE") ||
        contains(pem, len, "-----BEGIN TRUSTED CERTIFICATE")) {
        parse_error(err, errlen, "a certificate is not accepted; give the public key");
        return NULL;
    }
    if (contains(pem, len, "ENCRYPTED")) {
        parse_error(err, errlen, "encrypted private keys are not accepted");
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        parse_error(err, errlen, "out of memory");
        return NULL;
    }
    EVP_PKEY *pkey = NULL;
    if (contains(pem, len, "PRIVATE KEY-----"))
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    else if (contains(pem, len, "-----BEGIN PUBLIC KEY-----"))
        pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
    else if (contains(pem, len, "-----BEGIN RSA PUBLIC KEY-----"))
        pkey = decode_any_public(pem, len);
    BIO_free(bio);
    ERR_clear_error();
    if (!pkey)
        parse_error(err, errlen, "not a valid PEM public or private key");
    return pkey;
}

int m8_key_strength(const char *pem, size_t len, m8_alg alg, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (alg == M8_ALG_HS256)
        return 0;
    if (!pem)
        return parse_error(err, errlen, "no key");
    EVP_PKEY *pkey = load_pem(pem, len, err, errlen);
    if (!pkey)
        return M8_ECONFIG;
    int rc = 0;
    const char *type = EVP_PKEY_get0_type_name(pkey);
    if (!type)
        type = "unknown";
    bool is_rsa = EVP_PKEY_is_a(pkey, "RSA");
    bool is_ec = EVP_PKEY_is_a(pkey, "EC");
    if (alg == M8_ALG_RS256) {
        if (!is_rsa) {
            snprintf(err, errlen, "RS256 requires an RSA key; got %s", type);
            rc = M8_ECONFIG;
        } else {
            int bits = EVP_PKEY_get_bits(pkey);
            if (bits < 2048) {
                snprintf(err, errlen,
                         "RS256 requires a minimum 2048-bit RSA key; loaded key is %d bits", bits);
                rc = M8_ECONFIG;
            }
        }
    } else if (alg == M8_ALG_ES256) {
        if (!is_ec) {
            snprintf(err, errlen, "ES256 requires an EC key; got %s", type);
            rc = M8_ECONFIG;
        } else {
            char group[80];
            size_t glen = 0;
            if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                sizeof group, &glen))
                snprintf(group, sizeof group, "explicit or unknown parameters");
            if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0 &&
                strcmp(group, "secp256r1") != 0) {
                snprintf(err, errlen, "ES256 requires a P-256 (secp256r1) EC curve; got %s", group);
                rc = M8_ECONFIG;
            }
        }
    }
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}
