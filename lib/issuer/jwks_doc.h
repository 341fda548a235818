/* jwks_doc.h - the issuer's JWKS document (doc/issuer.md#tokens-and-jwks):
 * the body byte for byte as fa-auth-m8 serves it, its ETag, the
 * Cache-Control value, and the If-None-Match test for a 304.  Keys are
 * exported by auth/jwk_export.h.  No I/O. */
#ifndef M8_ISSUER_JWKS_DOC_H
#define M8_ISSUER_JWKS_DOC_H

#include "auth/jwk_export.h"
#include "config/settings.h" /* m8_alg */

struct evp_pkey_st;

/* The quoted ETag: '"' + 64 lower-case hex digits + '"'. */
#define M8_JWKS_ETAG_LEN 66

/* A built document: body[0..body_len) (NUL-terminated, caller clears). */
typedef struct m8_jwks_doc {
    char *body;
    size_t body_len;
    char etag[M8_JWKS_ETAG_LEN + 1]; /* "<sha-256 hex of body>" with the quotes */
} m8_jwks_doc;

/* Builds {"keys":[current, old]} for alg: each key's public JWK (RS256: an
 * RSA key, kty, n, e and key_ops ["verify"]; ES256: an EC P-256 key, kty,
 * crv, x, y, each coordinate 32 bytes) plus use "sig", alg and kid, members
 * sorted, compact, UTF-8 unescaped.  kid / old_kid NULL or "": m8_jwk_kid
 * of the key.  old may be NULL (no rotation overlap).  HS256, or current
 * NULL, gives {"keys":[]}.  0, or M8_EINVAL (a key of the wrong type for
 * alg, old without current, a kid that is not UTF-8) with the reason in err,
 * or M8_ENOMEM. */
M8_INTERNAL int m8_jwks_doc_build(m8_alg alg, const struct evp_pkey_st *current, const char *kid,
                                  const struct evp_pkey_st *old, const char *old_kid,
                                  m8_jwks_doc *out, char *err, size_t errlen);
M8_INTERNAL void m8_jwks_doc_clear(m8_jwks_doc *d);

/* The Cache-Control value "public, max-age=<max(0, ttl_seconds)>" into out;
 * 0, or M8_ETOOBIG when cap is too small. */
M8_INTERNAL int m8_jwks_cache_control(long long ttl_seconds, char *out, size_t cap);

/* True when an If-None-Match value h[0..len) matches etag (the quoted
 * form): a comma-separated list, each entry trimmed of whitespace; "*"
 * matches; a "W/" or "w/" prefix is dropped (weak comparison) and the rest
 * trimmed again; then an entry matches when it equals etag exactly.  A NULL
 * or empty h never matches.  The caller answers 304 on true. */
M8_INTERNAL bool m8_jwks_if_none_match(const char *h, size_t len, const char *etag);

#endif
