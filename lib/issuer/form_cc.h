/* form_cc.h - the client-credentials request of the token endpoint
 * (doc/issuer.md#service-accounts-and-client-credentials): the form of
 * POST {API_PREFIX}/login/access-token with grant_type=client_credentials
 * (RFC 6749 section 4.4) and the client's authentication, either in the form
 * (client_id, client_secret) or in an Authorization: Basic header (RFC 6749
 * section 2.3.1), never both.  Pure: bytes in, fields or an OAuth error code
 * out; no I/O. */
#ifndef M8_ISSUER_FORM_CC_H
#define M8_ISSUER_FORM_CC_H

#include "core/common.h"

#include "issuer/form.h"

#define M8_CC_MAX_CLIENT_ID 64u     /* decoded client_id bytes */
#define M8_CC_MAX_SECRET 256u       /* decoded client_secret bytes */
#define M8_CC_MAX_SCOPE 1024u       /* scope bytes */
#define M8_CC_MAX_AUTH_HEADER 1024u /* Authorization header bytes read */

/* The errors of RFC 6749 section 5.2 the grant answers (plus OK). */
typedef enum m8_cc_error {
    M8_CC_OK = 0,
    M8_CC_INVALID_REQUEST,   /* 400: a malformed body, or two client authentications */
    M8_CC_INVALID_CLIENT,    /* 401: no, malformed or unknown client authentication */
    M8_CC_INVALID_GRANT,     /* 400: the client is deactivated */
    M8_CC_UNSUPPORTED_GRANT, /* 400: a grant type this endpoint does not serve */
    M8_CC_INVALID_SCOPE,     /* 400: a scope that is malformed or not the client's */
    M8_CC_TOO_LARGE,         /* 413: the body passed its limit */
} m8_cc_error;

/* The error code's wire name ("invalid_client", ...), "" for M8_CC_OK. */
M8_INTERNAL const char *m8_cc_error_name(m8_cc_error e);

/* A parsed client-credentials request.  Values live in the arena given to
 * m8_cc_parse, are NUL-terminated at [len] and may hold any bytes. */
typedef struct m8_cc_request {
    char *client_id;
    size_t client_id_len;
    char *client_secret;
    size_t client_secret_len;
    const char *scope; /* "" when absent */
    size_t scope_len;
    bool basic; /* the client authenticated with Authorization: Basic */
} m8_cc_request;

/* What the token endpoint's form asks for, decided before either grant's
 * parser runs: */
typedef enum m8_grant_kind {
    M8_GRANT_PASSWORD = 0,       /* fa-auth-m8's password grant (any other form) */
    M8_GRANT_CLIENT_CREDENTIALS, /* grant_type=client_credentials */
    M8_GRANT_UNSUPPORTED,        /* another grant_type from an OAuth client */
} m8_grant_kind;

/* The kind of a token-endpoint request: client_credentials when the form's
 * grant_type is exactly that; unsupported when grant_type is present, is
 * not "password", and the request carries client authentication (a Basic
 * Authorization header or a client_id field); password otherwise, including
 * every body the form reader refuses (the password grant answers it as
 * before).  authorization is the Authorization header or NULL. */
M8_INTERNAL m8_grant_kind m8_cc_grant_kind(m8_arena *a, const char *content_type, const char *body,
                                           size_t body_len, size_t max_body,
                                           const char *authorization);

/* Parses a client-credentials request: the form as m8_login_form_parse
 * reads it (media types, limits), then the client's credentials from the
 * form or the Basic header, and the scope's syntax (RFC 6749 section 3.3:
 * space-separated tokens of %x21 / %x23-5B / %x5D-7E).  Returns M8_CC_OK
 * with *out filled, an error code (*out cleared), or M8_ENOMEM (negative).
 * A non-Basic Authorization header is not client authentication and is
 * ignored.  Wipe *out with m8_cc_wipe. */
M8_INTERNAL int m8_cc_parse(m8_arena *a, const char *content_type, const char *body,
                            size_t body_len, size_t max_body, const char *authorization,
                            m8_cc_request *out);

/* Reads an Authorization header as HTTP Basic client authentication: the
 * scheme "Basic" (any case), one or more spaces, base64 (standard alphabet,
 * padding required) of "id:secret" split at the first ':', each part then
 * form-urlencoding-decoded (RFC 6749 section 2.3.1).  Returns 1 with the
 * parts in the arena, 0 when the header is not Basic, M8_EPARSE when it is
 * Basic but malformed, over M8_CC_MAX_AUTH_HEADER bytes, or a part is empty
 * or over its limit; M8_ENOMEM. */
M8_INTERNAL int m8_cc_basic(m8_arena *a, const char *h, char **id, size_t *id_len, char **secret,
                            size_t *secret_len);

/* True when s[0..n) is a valid RFC 6749 scope (one or more scope tokens
 * separated by single spaces, at most M8_CC_MAX_SCOPE bytes). */
M8_INTERNAL bool m8_cc_scope_valid(const char *s, size_t n);

/* Overwrites the secret (and the id) with zeros and clears r. */
M8_INTERNAL void m8_cc_wipe(m8_cc_request *r);

#endif
