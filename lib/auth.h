/* auth.h - per-route access decisions (DESIGN "auth").  Until token
 * verification lands (issue 3) every protected route fails closed: 401 "Not
 * authenticated" without a Bearer credential, 401 "Could not validate
 * credentials." (D6) with one, since no token can be verified yet. */
#ifndef M8_AUTH_H
#define M8_AUTH_H

#include "http.h"
#include "settings.h"

/* Returns true when the request may reach its handler; otherwise sets the
 * D6 answer on req. */
M8_INTERNAL bool m8_auth_check(const m8_settings *s, m8_request *req, m8_access access);

/* Extracts a Bearer token (HTTP_AUTHORIZATION, then REDIRECT_HTTP_AUTHORIZATION):
 * returns false when absent or another scheme; the token (tok, len) points into req. */
M8_INTERNAL bool m8_auth_bearer(const m8_request *req, const char **tok, size_t *len);

#endif
