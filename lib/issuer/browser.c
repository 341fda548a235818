/* browser.c - browser sessions of fcgim8-issuer (browser.h;
 * doc/issuer.md#browser-sessions). */
#include "issuer/browser.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "auth/auth.h"
#include "auth/credential.h"
#include "auth/csrf.h"
#include "auth/jwt.h"
#include "core/log.h"

/* The process's browser-session state: set at boot, read-only after. */
static struct {
    m8_csrf *csrf;     /* NULL: browser sessions off */
    char *cookie;      /* ACCESS_TOKEN_COOKIE_NAME */
    bool secure;       /* Secure on the cookie */
    long long max_age; /* the access token's lifetime, seconds */
} g;

int m8_issuer_browser_load(const m8_settings *s, char *err, size_t errlen, void *data)
{
    (void)data;
    m8_issuer_browser_free(NULL, NULL);
    const char *name = s->access_token_cookie_name, *key = s->csrf_key_file;
    bool on = name && *name;
    if (!on) {
        if (key && *key)
            m8_log(M8_LOG_WARNING, "CSRF_KEY_FILE is set but ACCESS_TOKEN_COOKIE_NAME is not: "
                                   "browser sessions stay off");
        return 0;
    }
    if (!key || !*key) {
        snprintf(err, errlen,
                 "ACCESS_TOKEN_COOKIE_NAME turns browser sessions on: CSRF_KEY_FILE (the key "
                 "file fcgim8-gate reads with --csrf-key-file) is required with it");
        return 1;
    }
    g.csrf = m8_csrf_load(key, err, errlen);
    g.cookie = g.csrf ? strdup(name) : NULL;
    if (g.csrf && !g.cookie) {
        snprintf(err, errlen, "out of memory");
        m8_issuer_browser_free(NULL, NULL);
    }
    /* Secure whenever the name's prefix demands it (__Host-, __Secure-),
     * else outside ENVIRONMENT=local as the refresh cookie */
    g.secure = s->environment != M8_ENV_LOCAL || strncmp(name, "__Host-", 7) == 0 ||
               strncmp(name, "__Secure-", 9) == 0;
    g.max_age = s->access_token_expire_minutes * 60;
    return g.csrf ? 0 : 1;
}

void m8_issuer_browser_free(m8_app *app, void *data)
{
    (void)app;
    (void)data;
    m8_csrf_free(g.csrf);
    free(g.cookie);
    g.csrf = NULL;
    g.cookie = NULL;
}

static const char *cookie_name(void)
{
    return g.csrf ? g.cookie : NULL;
}

int m8_issuer_browser_wanted(m8_request *req)
{
    const char *h = m8_req_header(req, M8_ISSUER_SESSION_HEADER);
    if (!h)
        return 0;
    if (strcmp(h, "cookie") != 0) {
        m8_res_error(req, 400, M8_ISSUER_DETAIL_BAD_SESSION);
        return -1;
    }
    if (!cookie_name()) {
        m8_res_error(req, 400, M8_ISSUER_DETAIL_NO_BROWSER);
        return -1;
    }
    return 1;
}

int m8_issuer_browser_answer(m8_request *req, const m8_buf *access, const char *jti)
{
    const char *name = cookie_name();
    char csrf[M8_CSRF_TOKEN_LEN + 1];
    if (!name || !jti || m8_csrf_mint(g.csrf, jti, strlen(jti), csrf) != 0)
        return m8_req_fail(req, "issuer: the browser session could not be set up");
    long long max_age = g.max_age;
    m8_buf c;
    m8_buf_init(&c, 16384);
    int rc = m8_buf_printf(&c, "%s=%.*s; HttpOnly; Max-Age=%lld; Path=/; SameSite=strict%s", name,
                           (int)access->len, access->data, max_age, g.secure ? "; Secure" : "");
    if (rc == 0)
        rc = m8_res_header(req, "Set-Cookie", c.data);
    if (c.data)
        sodium_memzero(c.data, c.len);
    m8_buf_free(&c);
    json_object *o = rc == 0 ? json_object_new_object() : NULL;
    if (!o)
        return m8_req_fail(req, "issuer: the access cookie could not be set");
    json_object_object_add(o, "token_type", json_object_new_string("cookie"));
    json_object_object_add(o, "expires_in", json_object_new_int64(max_age));
    json_object_object_add(o, "csrf_token", json_object_new_string(csrf));
    json_object_object_add(o, "csrf_header", json_object_new_string(M8_ISSUER_CSRF_HEADER));
    m8_res_header(req, "Cache-Control", "no-store");
    return m8_res_json(req, 200, o);
}

static int refuse(m8_request *req, const char *why)
{
    m8_log_limited("issuer-browser-logout", M8_LOG_WARNING, "issuer: browser logout refused: %s",
                   why);
    m8_res_error(req, 403, M8_ISSUER_DETAIL_CSRF);
    return -1;
}

int m8_issuer_browser_logout_token(m8_request *req, const char **tok, size_t *len)
{
    const char *name = cookie_name();
    if (!name)
        return 0;
    int rc = m8_cookie_get(req, name, tok, len);
    if (rc == M8_EPARSE) /* two different values: neither is taken */
        return refuse(req, "the access cookie appears twice with different values");
    if (rc != 1 || *len == 0)
        return 0;
    size_t n = 0;
    char *const *allowed = m8_app_cors_origins(m8_req_app(req), &n);
    m8_csrf_origin o = m8_csrf_check_origin(req, allowed, n);
    if (o != M8_CSRF_ORIGIN_OK)
        return refuse(req, m8_csrf_origin_reason(o));
    const char *h = m8_req_header(req, M8_ISSUER_CSRF_HEADER);
    if (!h || !*h)
        return refuse(req, "no CSRF token");
    /* the token's jti, from a verified token only */
    m8_app *app = m8_req_app(req);
    m8_principal p;
    memset(&p, 0, sizeof p);
    int v = app && app->auth ? m8_auth_verify(app->auth, *tok, *len, m8_now_wall(), &p, NULL) : -1;
    bool good =
        v == M8_JWT_OK && p.jti && m8_csrf_verify(g.csrf, p.jti, strlen(p.jti), h, strlen(h));
    m8_principal_clear(&p);
    if (v != M8_JWT_OK)
        return 0; /* not a valid session: answered as a missing bearer */
    return good ? 1 : refuse(req, "the CSRF token is not valid for this session");
}

void m8_issuer_browser_clear(m8_request *req)
{
    const char *name = cookie_name(), *v;
    size_t n;
    if (!name || m8_cookie_get(req, name, &v, &n) == 0)
        return;
    char h[256];
    snprintf(h, sizeof h, "%s=\"\"; HttpOnly; Max-Age=0; Path=/; SameSite=strict%s", name,
             g.secure ? "; Secure" : "");
    m8_res_header(req, "Set-Cookie", h);
}
