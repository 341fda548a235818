/* keys.h - key material: strength checks (doc/settings.md#key-strength), and
 * verification keys parsed once (PEM, HMAC secret, JWK) and kept
 * (doc/wire.md#keys-and-algorithms, doc/wire.md#key-filtering). */
#ifndef M8_KEYS_H
#define M8_KEYS_H

#include "config/settings.h"

struct json_object;
struct evp_pkey_st;

/* The largest RSA key accepted for verification: its signature must fit
 * m8_jws.sig (512 bytes), and bigger keys only make verification slower. */
#define M8_MAX_RSA_BITS 4096

/* Key strength of a PEM for alg: 0, or M8_ECONFIG with a message in err:
 * "Cannot parse PEM key material..." (certificates and encrypted keys too),
 * "RS256 requires an RSA key; got EC", "RS256 requires a minimum 2048-bit RSA
 * key; loaded key is 1024 bits", "ES256 requires an EC key; got RSA",
 * "ES256 requires a P-256 (secp256r1) EC curve; got secp384r1".
 * HS256 is skipped (returns 0). */
M8_INTERNAL int m8_key_strength(const char *pem, size_t len, m8_alg alg, char *err, size_t errlen);

/* A key from PEM text (at most M8_MAX_PEM_BYTES; neither a certificate nor
 * an encrypted key), never prompting for a pass phrase.  With private_only,
 * only a private key is accepted; otherwise a public key ("PUBLIC KEY" or
 * PKCS#1 "RSA PUBLIC KEY") too.  NULL with "Cannot parse PEM key
 * material: <why>" in err.  Caller frees with EVP_PKEY_free. */
M8_INTERNAL struct evp_pkey_st *m8_pem_load_pkey(const char *pem, size_t len, bool private_only,
                                                 char *err, size_t errlen);

/* The public half of a PEM private key, as PEM ("PUBLIC KEY") text without
 * its final newline (caller frees; no secret in it), or NULL with the
 * reason in err: how fcgim8-issuer verifies its own tokens when
 * ACCESS_PUBLIC_KEY_FILE is unset (doc/issuer.md#settings). */
M8_INTERNAL char *m8_pem_public_half(const char *pem, size_t len, char *err, size_t errlen);

/* A verification key, labelled with the ONE configured algorithm
 * (doc/wire.md#keys-and-algorithms).
 * Immutable once built; shared between threads by reference count. */
typedef struct m8_key {
    m8_alg alg;
    struct evp_pkey_st *pkey; /* RS256/ES256 */
    unsigned char *secret;    /* HS256: the raw ACCESS_SECRET_KEY bytes (wiped on free) */
    size_t secret_len;
    char *kid; /* NULL when the JWK had none */
    _Atomic int refs;
} m8_key;

/* A public key from PEM for alg (RSA 2048..M8_MAX_RSA_BITS for RS256, P-256
 * for ES256), parsed once.  A private key PEM is accepted but only its
 * public half is kept.  The reason for a refusal is in err. */
M8_INTERNAL m8_key *m8_key_from_pem(const char *pem, size_t len, m8_alg alg, char *err,
                                    size_t errlen);
/* An HS256 key from the secret bytes (copied).  A secret that looks like a
 * PEM or SSH public key is refused (HS/RS confusion). */
M8_INTERNAL m8_key *m8_key_from_secret(const char *secret, size_t len, char *err, size_t errlen);
/* A key from one JWK object for alg: kty RSA (n, e) or EC (crv P-256, x, y);
 * skipped (NULL, reason in err) when use is present and not "sig", when kty
 * does not fit alg, when it carries private members ("d", "p", ...), or when
 * it is too weak (doc/wire.md#key-filtering). */
M8_INTERNAL m8_key *m8_key_from_jwk(struct json_object *jwk, m8_alg alg, char *err, size_t errlen);
M8_INTERNAL m8_key *m8_key_ref(m8_key *k);
M8_INTERNAL void m8_key_unref(m8_key *k);
/* True when a and b hold the same key material for the same algorithm
 * (the kid is not compared). */
M8_INTERNAL bool m8_key_equal(const m8_key *a, const m8_key *b);

/* Checks sig over msg with k, by k's label: RS256 RSASSA-PKCS1-v1_5 with
 * SHA-256 (sig of the modulus size), ES256 ECDSA P-256 with SHA-256 (sig
 * the DER ECDSA-Sig-Value), HS256 HMAC-SHA256 (32 bytes, compared in
 * constant time).  Uses a context per key and thread made on first use;
 * while a thread holds one it holds a reference to k, dropped once nobody
 * else holds k, at thread exit, or by m8_key_thread_release. */
M8_INTERNAL bool m8_key_verify(const m8_key *k, const unsigned char *msg, size_t len,
                               const unsigned char *sig, size_t sig_len);
/* Frees the calling thread's verification contexts (and their key
 * references) now rather than at thread exit. */
M8_INTERNAL void m8_key_thread_release(void);

#endif
