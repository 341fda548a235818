/* credential.h - credential kinds: where a request's credential comes from.
 *
 * A credential is one value taken out of a request by one of its kinds:
 *   bearer   Authorization: Bearer TOKEN (or Apache's REDIRECT_HTTP_AUTHORIZATION)
 *   cookie   the access token in a named cookie (off unless a name is given)
 *   API key  the X-API-Key header
 * and auth.h resolves it to the same m8_user whichever kind carried it
 * (m8_auth_check_credential), so that a caller never builds request
 * headers of its own to hand a token to the library.
 *
 * Precedence for an access token: a non-empty Authorization header decides
 * (a Bearer token, or another scheme, which is no token and never falls
 * back to the cookie); an empty one counts as absent (nginx sends the param
 * empty when a site passes $http_authorization); then the cookie.
 *
 * Everything here is pure (no I/O) and borrows from the request: values
 * point into the request's params and are valid until the request ends. */
#ifndef M8_CREDENTIAL_H
#define M8_CREDENTIAL_H

#include "http/http.h"

#define M8_MAX_COOKIE_NAME 128u /* a configured cookie name */

typedef enum m8_cred_kind {
    M8_CRED_NONE = 0,  /* no credential of an enabled kind */
    M8_CRED_BEARER,    /* Authorization: Bearer TOKEN (TOKEN may be empty) */
    M8_CRED_COOKIE,    /* the access token from the configured cookie */
    M8_CRED_API_KEY,   /* X-API-Key */
    M8_CRED_OTHER,     /* an Authorization header of another scheme (Basic, ...) */
    M8_CRED_AMBIGUOUS, /* the token cookie appears more than once with different values */
} m8_cred_kind;

typedef struct m8_credential {
    m8_cred_kind kind;
    const char *value; /* borrowed from the request; not NUL-terminated at len */
    size_t len;
} m8_credential;

/* Which kinds a service accepts for access tokens. */
typedef struct m8_cred_config {
    const char *cookie; /* the access-token cookie's name, or NULL (no cookie kind) */
} m8_cred_config;

/* The bearer kind alone: Authorization, then REDIRECT_HTTP_AUTHORIZATION
 * when the header is absent or empty.  M8_CRED_BEARER, M8_CRED_OTHER or
 * M8_CRED_NONE. */
M8_INTERNAL void m8_credential_bearer(const m8_request *req, m8_credential *out);

/* The access-token credential under cfg (cfg may be NULL: bearer only). */
M8_INTERNAL void m8_credential_token(const m8_request *req, const m8_cred_config *cfg,
                                     m8_credential *out);

/* The X-API-Key header: M8_CRED_API_KEY (the value as sent, maybe empty) or
 * M8_CRED_NONE. */
M8_INTERNAL void m8_credential_api_key(const m8_request *req, m8_credential *out);

/* The kinds of a route (M8_ROUTE_CRED_* bits) when it states none: the
 * X-API-Key header for M8_API_KEY_READER / _WRITER, else the bearer header. */
M8_INTERNAL unsigned m8_credential_default_kinds(m8_access access);

/* The one credential of a request among kinds (M8_ROUTE_CRED_* bits; 0 =
 * bearer): the Authorization header when bearer is accepted (a non-empty
 * header of another scheme decides: M8_CRED_OTHER), then the cookie named
 * cookie when the cookie kind is accepted and cookie is not NULL, then
 * X-API-Key when the API-key kind is accepted; M8_CRED_NONE when none is
 * present.  A kind not in kinds is never looked at. */
M8_INTERNAL void m8_credential_take(const m8_request *req, unsigned kinds, const char *cookie,
                                    m8_credential *out);

/* A short name of a kind for logs ("bearer", "cookie", ...). */
M8_INTERNAL const char *m8_credential_kind_name(m8_cred_kind k);

/* The value of cookie name in the request's Cookie header (RFC 6265 5.4:
 * "a=b; c=d"; surrounding whitespace and one pair of double quotes
 * removed).  Returns 1 with (val, len) pointing into the request, 0 when
 * the cookie is absent, M8_EPARSE when it appears more than once with
 * different values (an injected cookie shadowing the real one: the caller
 * must not pick either). */
M8_INTERNAL int m8_cookie_get(const m8_request *req, const char *name, const char **val,
                              size_t *len);

/* A valid cookie name (an RFC 7230 token) of at most M8_MAX_COOKIE_NAME bytes. */
M8_INTERNAL bool m8_cookie_name_ok(const char *name);

/* The name has the __Host- prefix (exact case): browsers accept such a
 * cookie only with Secure, Path=/ and no Domain, so no sibling subdomain
 * and no plain-http page can set or shadow it. */
M8_INTERNAL bool m8_cookie_name_host_prefixed(const char *name);

#endif
