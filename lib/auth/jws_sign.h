/* jws_sign.h - signing compact JWS tokens (RFC 7515) with HS256, RS256 or
 * ES256, and jti values.  Services only verify (auth/jwt.h); signing is for
 * fcgim8-token(1) and an issuer built on this library. */
#ifndef M8_JWS_SIGN_H
#define M8_JWS_SIGN_H

#include "auth/keys.h"

struct json_object;
struct evp_pkey_st;

/* A signing key for one algorithm: the private key (RS256: RSA, ES256: EC
 * P-256) or the HMAC secret (HS256, wiped on free).  Immutable once made;
 * signing with it from several threads at once is safe. */
typedef struct m8_sign_key {
    m8_alg alg;
    struct evp_pkey_st *pkey; /* RS256/ES256: the private key */
    m8_key *hmac;             /* HS256: the secret, checked by m8_key_from_secret */
} m8_sign_key;

/* A signing key for alg from a private key PEM: RS256 wants an RSA key,
 * ES256 an EC key on P-256 (the JOSE R||S form has 32-byte halves).  Key
 * strength is not judged here: the verifier and m8_key_strength do that.
 * NULL with the reason in err. */
M8_INTERNAL m8_sign_key *m8_sign_key_from_pem(const char *pem, size_t len, m8_alg alg, char *err,
                                              size_t errlen);
/* An HS256 signing key from the secret bytes (copied): refused as
 * m8_key_from_secret refuses it (empty, too long, a PEM or SSH key). */
M8_INTERNAL m8_sign_key *m8_sign_key_from_secret(const char *secret, size_t len, char *err,
                                                 size_t errlen);
M8_INTERNAL void m8_sign_key_free(m8_sign_key *k);

/* The JWS signature of msg: HS256 HMAC-SHA256 (32 bytes), RS256
 * RSASSA-PKCS1-v1_5 with SHA-256 (the modulus size), ES256 ECDSA P-256 with
 * SHA-256 in the JOSE form R||S (64 bytes).  Writes at most cap bytes to
 * sig and the length to *sig_len; 0, M8_ETOOBIG (cap too small) or
 * M8_EINVAL (the crypto library refused the key or failed). */
M8_INTERNAL int m8_jws_sign_raw(const m8_sign_key *k, const unsigned char *msg, size_t len,
                                unsigned char *sig, size_t cap, size_t *sig_len);

/* Converts a DER ECDSA-Sig-Value to the 64-byte JOSE form R||S, each half
 * left-padded with zeros to 32 bytes.  0, or M8_EINVAL when der is not a
 * P-256 sized signature. */
M8_INTERNAL int m8_ecdsa_der_to_jose(const unsigned char *der, size_t len, unsigned char out[64]);

/* Appends the compact JWS base64url(header).base64url(payload).
 * base64url(signature) of the given JSON texts to out (header and payload
 * are taken as they are).  0 or a negative M8_E code. */
M8_INTERNAL int m8_jws_sign(const m8_sign_key *k, const char *header, size_t header_len,
                            const char *payload, size_t payload_len, m8_buf *out);

/* Like m8_jws_sign with the header {"alg": k's alg, "typ": "JWT", "kid":
 * kid (left out when NULL)} followed by the members of extra_header (may be
 * NULL; alg, typ and kid there are ignored) and payload serialised compact
 * without escaping slashes.  payload must be a JSON object. */
M8_INTERNAL int m8_jws_sign_json(const m8_sign_key *k, const char *kid,
                                 struct json_object *extra_header, struct json_object *payload,
                                 m8_buf *out);

/* A fresh random UUID (version 4, RFC 9562) for jti and sub values, in the
 * lower-case 8-4-4-4-12 form and NUL-terminated. */
#define M8_UUID_STR_LEN 36
M8_INTERNAL void m8_jti_new(char out[M8_UUID_STR_LEN + 1]);

#endif
