/* auth.c - per-route access decisions (auth.h).  Token verification comes
 * with issue 3; until then protected routes fail closed. */
#include "auth.h"

#include <string.h>

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

bool m8_auth_bearer(const m8_request *req, const char **tok, size_t *len)
{
    const char *h = m8_req_header(req, "Authorization");
    if (!h)
        h = m8_req_param(req, "REDIRECT_HTTP_AUTHORIZATION"); /* Apache rewrite */
    if (!h)
        return false;
    /* Split at the first space; the scheme is "bearer" case-insensitively
     * (CONTRACT A 3.1); the rest, trimmed, is the token. */
    const char *sp = strchr(h, ' ');
    if (!sp || !m8_memcaseeq(h, (size_t)(sp - h), "bearer"))
        return false;
    const char *t = sp + 1;
    size_t n = strlen(t);
    while (n && is_ws(*t)) {
        t++;
        n--;
    }
    while (n && is_ws(t[n - 1]))
        n--;
    *tok = t;
    *len = n;
    return true;
}

bool m8_auth_check(const m8_settings *s, m8_request *req, m8_access access)
{
    (void)s;
    if (access == M8_PUBLIC)
        return true;
    const char *tok;
    size_t len;
    if (!m8_auth_bearer(req, &tok, &len)) {
        m8_res_error(req, 401, "Not authenticated");
        m8_res_set_header(req, "WWW-Authenticate", "Bearer");
        return false;
    }
    /* No verifier yet: every token is unverifiable, so refuse it (D6). */
    m8_req_fail(req, "token verification is not available in this build");
    m8_res_error(req, 401, "Could not validate credentials.");
    m8_res_set_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    return false;
}
