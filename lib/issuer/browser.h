/* browser.h - browser sessions of fcgim8-issuer (doc/issuer.md#browser-sessions):
 * a login or refresh that asks with "X-Auth-Session: cookie" gets its access
 * token in an HttpOnly cookie (ACCESS_TOKEN_COOKIE_NAME, __Host- advised)
 * instead of the body, plus a signed CSRF token bound to the token's jti
 * (auth/csrf.h, the key file fcgim8-gate reads with --csrf-key-file); a
 * logout may then use that cookie instead of a bearer when it passes the
 * origin checks and carries the CSRF token. */
#ifndef M8_ISSUER_BROWSER_H
#define M8_ISSUER_BROWSER_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "config/settings.h"
#include "fcgim8.h"

#define M8_ISSUER_SESSION_HEADER "X-Auth-Session"
#define M8_ISSUER_CSRF_HEADER "X-CSRF-Token"
#define M8_ISSUER_DETAIL_NO_BROWSER "Browser sessions are not enabled."
#define M8_ISSUER_DETAIL_BAD_SESSION "X-Auth-Session must be cookie."
#define M8_ISSUER_DETAIL_CSRF "CSRF token missing or incorrect."

/* Startup validator: with ACCESS_TOKEN_COOKIE_NAME set, CSRF_KEY_FILE must
 * name a key file (auth/csrf.h rules) and it is loaded; without it browser
 * sessions are off.  The state is process-wide (one issuer per process),
 * built at boot and read-only while serving; data is unused. */
M8_INTERNAL int m8_issuer_browser_load(const m8_settings *s, char *err, size_t errlen, void *data);
/* Shutdown hook: the key wiped. */
M8_INTERNAL void m8_issuer_browser_free(m8_app *app, void *data);

/* Whether the request asks for a browser session: 0 no header, 1 asks and
 * they are on, -1 when the 400 is answered (sessions off, or a value other
 * than "cookie"). */
M8_INTERNAL int m8_issuer_browser_wanted(m8_request *req);

/* The answer of a browser-session login or refresh (the refresh cookie is
 * already set): the access cookie, then 200
 * {"token_type":"cookie","expires_in":N,"csrf_token":...,"csrf_header":...}. */
M8_INTERNAL int m8_issuer_browser_answer(m8_request *req, const m8_buf *access, const char *jti);

/* A logout without a bearer: 1 with (tok, len) the access cookie when
 * sessions are on, the cookie is there, the request passes the origin
 * checks and carries a CSRF token minted for that token's jti; 0 when
 * there is no such cookie (or sessions are off); -1 when 403 is answered. */
M8_INTERNAL int m8_issuer_browser_logout_token(m8_request *req, const char **tok, size_t *len);

/* Adds the deletion of the access cookie when sessions are on and the
 * request carries it. */
M8_INTERNAL void m8_issuer_browser_clear(m8_request *req);

#endif
