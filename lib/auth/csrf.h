/* csrf.h - signed double-submit CSRF tokens and the origin checks of an
 * unsafe request made with an ambient credential (a cookie).
 *
 * A plain double submit (a cookie equal to a header) is defeated by anyone
 * who can write one cookie on the domain: they choose both values.  Here
 * the token is
 *
 *     base64url(nonce[16] || HMAC-SHA256(key, "fcgim8-csrf/1" || id[32] || nonce))
 *
 * (64 characters, no padding), where id is a BLAKE2b-256 hash of the
 * session's identity: the access token's jti, or the token itself when it
 * has none.  Without the key nobody mints a token, and a token minted for
 * one session is worthless with another session's cookie.  The key is the
 * content of a secret file read once at boot (BLAKE2b-256 of it is kept;
 * neither is ever logged); every process that verifies must read the same
 * file.
 *
 * The origin checks (m8_csrf_check_origin): Sec-Fetch-Site: cross-site is
 * refused; an Origin header, when present, must name the request's own
 * origin (scheme from REQUEST_SCHEME or HTTPS, host from Host) or one of
 * the allowed origins; without Origin a Referer, when present, must do the
 * same.  A request with neither passes these checks (the token still has to
 * be right). */
#ifndef M8_CSRF_H
#define M8_CSRF_H

#include "http/http.h"

#define M8_CSRF_KEY_MIN 32u          /* bytes of key material, at least */
#define M8_CSRF_KEY_MIN_DISTINCT 10u /* distinct byte values in the key material, at least */
#define M8_CSRF_KEY_FILE_MAX 4096u   /* bytes of a key file */
#define M8_CSRF_NONCE_BYTES 16u
#define M8_CSRF_TOKEN_LEN 64u   /* characters of a token */
#define M8_CSRF_MAX_ORIGIN 512u /* bytes of an origin (or of the part of a Referer used) */

typedef struct m8_csrf m8_csrf;

/* A verifier from key material (whitespace at either end ignored).  NULL
 * with err filled when it is shorter than M8_CSRF_KEY_MIN bytes or has
 * fewer than M8_CSRF_KEY_MIN_DISTINCT distinct byte values. */
M8_INTERNAL m8_csrf *m8_csrf_new(const char *secret, size_t len, char *err, size_t errlen);

/* The same from a file: a regular file of at most M8_CSRF_KEY_FILE_MAX
 * bytes that others (not owner, not group) can neither read nor write.
 * NULL with err filled (naming the file, never its content). */
M8_INTERNAL m8_csrf *m8_csrf_load(const char *path, char *err, size_t errlen);

/* Wipes the key and frees. */
M8_INTERNAL void m8_csrf_free(m8_csrf *c);

/* Mints a token for the session identity (id, idlen) with a fresh random
 * nonce into out (M8_CSRF_TOKEN_LEN characters and a NUL).  0 or M8_EINVAL. */
M8_INTERNAL int m8_csrf_mint(const m8_csrf *c, const char *id, size_t idlen,
                             char out[M8_CSRF_TOKEN_LEN + 1]);

/* True when tok (tlen bytes) is a token minted with this key for the same
 * identity; constant time in the token's content. */
M8_INTERNAL bool m8_csrf_verify(const m8_csrf *c, const char *id, size_t idlen, const char *tok,
                                size_t tlen);

typedef enum m8_csrf_origin {
    M8_CSRF_ORIGIN_OK = 0,
    M8_CSRF_CROSS_SITE,  /* Sec-Fetch-Site: cross-site */
    M8_CSRF_BAD_ORIGIN,  /* Origin present and not allowed (or unreadable, or "null") */
    M8_CSRF_BAD_REFERER, /* no Origin; Referer present and not allowed */
} m8_csrf_origin;

/* The origin checks above; allowed holds n origins ("https://app.example.com",
 * compared with scheme and host case-insensitively and the default port
 * dropped). */
M8_INTERNAL m8_csrf_origin m8_csrf_check_origin(const m8_request *req, char *const *allowed,
                                                size_t n);

/* A fixed English sentence for a refusal, for logs. */
M8_INTERNAL const char *m8_csrf_origin_reason(m8_csrf_origin r);

#endif
