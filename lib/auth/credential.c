/* credential.c - credential kinds (credential.h). */
#include "auth/credential.h"

#include <string.h>

/* The Authorization header's value, or NULL when it is absent or holds
 * only whitespace; then the same for Apache's copy. */
static const char *authorization(const m8_request *req, size_t *len)
{
    for (int i = 0; i < 2; i++) {
        const char *v = i == 0 ? m8_req_header(req, "Authorization") : req->cgi_redirect_auth;
        const char *t = v;
        if (t && m8_trim(&t, strlen(t))) {
            *len = strlen(v);
            return v;
        }
    }
    return NULL;
}

void m8_credential_bearer(const m8_request *req, m8_credential *out)
{
    *out = (m8_credential){M8_CRED_NONE, NULL, 0};
    size_t n = 0;
    const char *h = authorization(req, &n);
    if (!h)
        return;
    /* The scheme is "bearer" case-insensitively, followed by a space; the
     * rest, trimmed, is the token (possibly empty: still a bearer
     * credential, refused as invalid). */
    const char *sp = memchr(h, ' ', n);
    if (!sp || !m8_memcaseeq(h, (size_t)(sp - h), "bearer")) {
        *out = (m8_credential){M8_CRED_OTHER, h, n};
        return;
    }
    const char *t = sp + 1;
    size_t tl = m8_trim(&t, n - (size_t)(t - h));
    *out = (m8_credential){M8_CRED_BEARER, t, tl};
}

void m8_credential_token(const m8_request *req, const m8_cred_config *cfg, m8_credential *out)
{
    m8_credential_take(req, M8_ROUTE_CRED_BEARER | M8_ROUTE_CRED_COOKIE, cfg ? cfg->cookie : NULL,
                       out);
}

void m8_credential_api_key(const m8_request *req, m8_credential *out)
{
    const char *k = m8_req_header(req, "X-API-Key");
    if (k)
        *out = (m8_credential){M8_CRED_API_KEY, k, strlen(k)};
    else
        *out = (m8_credential){M8_CRED_NONE, NULL, 0};
}

unsigned m8_credential_default_kinds(m8_access access)
{
    return access == M8_API_KEY_READER || access == M8_API_KEY_WRITER ? M8_ROUTE_CRED_API_KEY
                                                                      : M8_ROUTE_CRED_BEARER;
}

void m8_credential_take(const m8_request *req, unsigned kinds, const char *cookie,
                        m8_credential *out)
{
    *out = (m8_credential){M8_CRED_NONE, NULL, 0};
    if (!(kinds & M8_ROUTE_CRED_MASK))
        kinds = M8_ROUTE_CRED_BEARER;
    if (kinds & M8_ROUTE_CRED_BEARER) {
        m8_credential_bearer(req, out);
        if (out->kind != M8_CRED_NONE)
            return;
    }
    if ((kinds & M8_ROUTE_CRED_COOKIE) && cookie && *cookie) {
        const char *v;
        size_t n;
        int rc = m8_cookie_get(req, cookie, &v, &n);
        if (rc < 0) {
            *out = (m8_credential){M8_CRED_AMBIGUOUS, NULL, 0};
            return;
        }
        if (rc == 1 && n > 0) {
            *out = (m8_credential){M8_CRED_COOKIE, v, n};
            return;
        }
    }
    if (kinds & M8_ROUTE_CRED_API_KEY)
        m8_credential_api_key(req, out);
}

const char *m8_credential_kind_name(m8_cred_kind k)
{
    switch (k) {
    case M8_CRED_BEARER: return "bearer";
    case M8_CRED_COOKIE: return "cookie";
    case M8_CRED_API_KEY: return "api_key";
    case M8_CRED_OTHER: return "other_scheme";
    case M8_CRED_AMBIGUOUS: return "ambiguous_cookie";
    default: return "none";
    }
}

int m8_cookie_get(const m8_request *req, const char *name, const char **val, size_t *len)
{
    const char *h = m8_req_header(req, "Cookie");
    size_t nl = name ? strlen(name) : 0;
    int found = 0;
    if (!nl)
        return 0;
    while (h && *h) {
        while (*h == ' ' || *h == '\t' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t pl = end ? (size_t)(end - h) : strlen(h);
        const char *eq = memchr(h, '=', pl);
        if (eq) {
            const char *k = h;
            size_t kl = m8_trim(&k, (size_t)(eq - h));
            if (kl == nl && memcmp(k, name, nl) == 0) {
                const char *v = eq + 1;
                size_t vl = m8_trim(&v, pl - (size_t)(eq + 1 - h));
                if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                    v++;
                    vl -= 2;
                }
                if (found && (vl != *len || memcmp(v, *val, vl) != 0))
                    return M8_EPARSE;
                *val = v;
                *len = vl;
                found = 1;
            }
        }
        h = end;
    }
    return found;
}

bool m8_cookie_name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > M8_MAX_COOKIE_NAME)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", c))
            return false;
    }
    return true;
}

bool m8_cookie_name_host_prefixed(const char *name)
{
    return name && strncmp(name, "__Host-", 7) == 0 && name[7];
}
