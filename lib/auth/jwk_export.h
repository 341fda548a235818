/* jwk_export.h - public JWKs (RFC 7517, RFC 7518 6) and JWKS documents from
 * keys, the mirror of m8_key_from_jwk, and the kid derived from a key. */
#ifndef M8_JWK_EXPORT_H
#define M8_JWK_EXPORT_H

#include "core/common.h"

struct json_object;
struct evp_pkey_st;

/* The public JWK of an RSA key ({"kty":"RSA","alg":"RS256","n","e"}, n and e
 * without leading zero bytes) or an EC P-256 key ({"kty":"EC","alg":"ES256",
 * "crv":"P-256","x","y"}, each coordinate the full 32 bytes), then "use":
 * "sig" and "kid" when kid is not NULL.  A private key gives only its
 * public members.  NULL with the reason in err for any other key.  Caller
 * frees with json_object_put. */
M8_INTERNAL struct json_object *m8_jwk_export(const struct evp_pkey_st *pk, const char *kid,
                                              char *err, size_t errlen);

/* The kid of a key: the first 16 hex digits (lower case) of the SHA-256 of
 * its DER SubjectPublicKeyInfo, i.e. of `openssl pkey -pubout -outform DER`.
 * 0, or M8_EINVAL when the key has no public encoding. */
#define M8_JWK_KID_LEN 16
M8_INTERNAL int m8_jwk_kid(const struct evp_pkey_st *pk, char out[M8_JWK_KID_LEN + 1]);

/* A JWKS document {"keys": [...]} of the n keys in order; kids[i] is the
 * kid of keys[i] (kids NULL or kids[i] NULL: none).  NULL with the reason in
 * err when a key cannot be exported. */
M8_INTERNAL struct json_object *m8_jwks_export(struct evp_pkey_st *const *keys,
                                               const char *const *kids, size_t n, char *err,
                                               size_t errlen);

#endif
