/* fcgim8-gate - fcgi-m8 token checks in front of any backend (PHP, static
 * files, CGI scripts) that nobody will rewrite.  It answers authorization
 * questions in two forms (PITFALLS 19):
 *
 *   nginx auth_request: a FastCGI RESPONDER request carrying X-Original-URI
 *     (and X-Original-Method); 200 with X-Auth-User-Id, X-Auth-Email,
 *     X-Auth-Role, X-Auth-Is-Superuser for auth_request_set, or 401/403
 *     with the D6 bodies and WWW-Authenticate, or 503.
 *   the FastCGI AUTHORIZER role (Apache mod_fcgid, lighttpd): 200 with
 *     Variable-AUTH_USER_ID etc. for the application's environment, or the
 *     denial.
 *
 * Which rule applies comes from a policy file (lib/policy.h); the token is
 * checked by the library exactly as an fcgi-m8 service checks it (m8_auth).
 * A RESPONDER request without X-Original-URI is no question: it goes to the
 * gate's own routes (/ping, {API_PREFIX}/health/, {API_PREFIX}/metrics).
 * See fcgim8-gate(8). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "fcgi_proto.h"
#include "http.h"
#include "log.h"
#include "policy.h"

#define EX_USAGE_ 64
#define EX_CONFIG_ 78
#define MAX_COOKIE_NAME 128u /* --cookie, --csrf-cookie, --csrf-header */
#define MAX_LOGGED_PATH 512u /* bytes of the path written to a decision log line */

typedef struct gate {
    m8_app *app;
    m8_policy policy;
    const char *policy_path;
    const char *cookie;      /* access token cookie, or NULL (off) */
    const char *csrf_cookie; /* double-submit CSRF: this cookie ... */
    const char *csrf_header; /* ... must equal this header on unsafe methods */
    char **cors_origins;     /* taken from the middleware at boot (see gate_boot) */
    size_t n_cors_origins;
} gate;

/* ------------------------------------------------------------ answers */

typedef struct decision {
    const char *mode;   /* "auth_request" or "authorizer" */
    const char *method; /* the original request's */
    const char *path;   /* normalized, or NULL */
    size_t path_len;
    const m8_policy_rule *rule;
    const char *why; /* a short reason for the log, or NULL */
} decision;

static void log_decision(const m8_request *req, const decision *d)
{
    if (!m8_log_enabled(M8_LOG_INFO))
        return;
    m8_buf b;
    m8_buf_init(&b, 4096);
    const char *outcome = req->status == 200 ? "allow" : req->status >= 500 ? "error" : "deny";
    m8_buf_puts(&b, "\"mode\":");
    m8_buf_json_str(&b, d->mode, strlen(d->mode));
    m8_buf_puts(&b, ",\"rule\":");
    const char *rule = d->rule ? d->rule->name : "";
    m8_buf_json_str(&b, rule, strlen(rule));
    if (d->rule) {
        const char *a = m8_policy_access_name(d->rule->access);
        m8_buf_puts(&b, ",\"access\":");
        m8_buf_json_str(&b, a, strlen(a));
    }
    m8_buf_printf(&b, ",\"decision\":\"%s\",\"status\":%d,\"method\":", outcome, req->status);
    const char *m = d->method ? d->method : "";
    m8_buf_json_str(&b, m, strlen(m) > 32 ? 32 : strlen(m));
    m8_buf_puts(&b, ",\"path\":");
    if (d->path)
        m8_buf_json_str(&b, d->path, d->path_len > MAX_LOGGED_PATH ? MAX_LOGGED_PATH : d->path_len);
    else
        m8_buf_puts(&b, "null");
    if (req->user && req->status == 200) {
        m8_buf_puts(&b, ",\"user\":");
        m8_buf_json_str(&b, req->user->id, strlen(req->user->id));
        m8_buf_puts(&b, ",\"role\":");
        m8_buf_json_str(&b, req->user->role, strlen(req->user->role));
    }
    /* The reason the library recorded (never the token), or ours. */
    const char *why = req->fail_reason ? req->fail_reason : d->why;
    if (why) {
        m8_buf_puts(&b, ",\"reason\":");
        m8_buf_json_str(&b, why, strlen(why));
    }
    m8_buf_puts(&b, ",\"request_id\":");
    const char *rid = req->request_id ? req->request_id : "";
    m8_buf_json_str(&b, rid, strlen(rid));
    m8_log_fields(req->status >= 500 ? M8_LOG_ERROR : M8_LOG_INFO, "gate.decision", b.data);
    m8_buf_free(&b);
}

/* A denial: status and {"detail": ...}; the detail again as X-Auth-Detail
 * so that an nginx error_page can rebuild the body (auth_request passes on
 * only the status and WWW-Authenticate). */
static void deny(m8_request *req, int status, const char *detail)
{
    m8_res_error(req, status, detail);
    m8_res_header(req, "X-Auth-Detail", detail);
}

/* After m8_auth_check refused: the detail of its JSON answer, copied into
 * X-Auth-Detail (the library's details are fixed ASCII strings). */
static void mirror_detail(m8_request *req)
{
    const char *body = req->body_out.data;
    const char *key = "{\"detail\":\"";
    if (!body || strncmp(body, key, strlen(key)) != 0)
        return;
    const char *s = body + strlen(key);
    const char *e = strchr(s, '"');
    if (!e || (size_t)(e - s) > 128)
        return;
    char detail[129];
    memcpy(detail, s, (size_t)(e - s));
    detail[e - s] = '\0';
    m8_res_header(req, "X-Auth-Detail", detail);
}

/* 200 with the caller's identity (none on public rules). */
static void allow(m8_request *req, const m8_user *u)
{
    m8_res_body(req, 200, NULL, "", 0);
    if (!u)
        return;
    const char *names[2][5] = {
        {"X-Auth-User-Id", "X-Auth-Email", "X-Auth-Role", "X-Auth-Is-Superuser",
         "X-Auth-Tenant-Id"},
        {"Variable-AUTH_USER_ID", "Variable-AUTH_EMAIL", "Variable-AUTH_ROLE",
         "Variable-AUTH_IS_SUPERUSER", "Variable-AUTH_TENANT_ID"},
    };
    const char *const *n = names[req->authorizer ? 1 : 0];
    m8_res_header(req, n[0], u->id);
    if (u->email) /* an API key's owner has none */
        m8_res_header(req, n[1], u->email);
    m8_res_header(req, n[2], u->role);
    m8_res_header(req, n[3], u->is_superuser ? "true" : "false");
    if (u->tenant_id)
        m8_res_header(req, n[4], u->tenant_id);
}

/* ------------------------------------------------------------ cookie credential */

static bool safe_method(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 ||
           strcmp(m, "TRACE") == 0;
}

/* The value of cookie name in the Cookie header (RFC 6265 5.4: "a=b; c=d"),
 * unquoted, into the request's arena; NULL when absent. */
static const char *cookie_value(m8_request *req, const char *name)
{
    const char *h = m8_req_header(req, "Cookie");
    size_t nl = strlen(name);
    while (h && *h) {
        while (*h == ' ' || *h == '\t' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        const char *eq = memchr(h, '=', len);
        if (eq) {
            const char *k = h;
            size_t kl = m8_trim(&k, (size_t)(eq - h));
            if (kl == nl && memcmp(k, name, nl) == 0) {
                const char *v = eq + 1;
                size_t vl = m8_trim(&v, len - (size_t)(eq + 1 - h));
                if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                    v++;
                    vl -= 2;
                }
                char *out = m8_req_alloc(req, vl + 1);
                if (!out)
                    return NULL;
                memcpy(out, v, vl);
                out[vl] = '\0';
                return out;
            }
        }
        h = end;
    }
    return NULL;
}

/* Without an Authorization header, the access token may come from the
 * configured cookie; then an unsafe method needs the double-submit CSRF
 * check.  Returns false when it answered (403). */
static bool cookie_credential(gate *g, m8_request *req, const char *method, const char **why)
{
    const char *tok;
    size_t len;
    if (!g->cookie || m8_auth_bearer(req, &tok, &len) || m8_req_header(req, "Authorization"))
        return true;
    const char *v = cookie_value(req, g->cookie);
    if (!v || !*v)
        return true; /* no credential at all: the D6 401 follows */
    if (!safe_method(method) && g->csrf_cookie) {
        const char *c = cookie_value(req, g->csrf_cookie);
        const char *h = m8_req_header(req, g->csrf_header);
        if (!m8_secret_eq(c, h)) {
            *why = "csrf: the header does not match the cookie";
            deny(req, 403, "CSRF token missing or incorrect.");
            return false;
        }
    }
    /* Hand the token to the library as the Bearer credential it reads. */
    size_t vl = strlen(v);
    m8_pair *hs = m8_req_alloc(req, (req->n_headers + 1) * sizeof *hs);
    char *bearer = m8_req_alloc(req, vl + 8);
    if (!hs || !bearer)
        return true; /* the 401 follows */
    if (req->n_headers)
        memcpy(hs, req->headers, req->n_headers * sizeof *hs);
    memcpy(bearer, "Bearer ", 7);
    memcpy(bearer + 7, v, vl + 1);
    hs[req->n_headers].name = "authorization";
    hs[req->n_headers].value = bearer;
    req->headers = hs;
    req->n_headers++;
    return true;
}

/* ------------------------------------------------------------ the question */

static m8_access role_access(m8_policy_access a)
{
    switch (a) {
    case M8_POLICY_USER: return M8_USER;
    case M8_POLICY_READER: return M8_READER;
    case M8_POLICY_WRITER: return M8_WRITER;
    case M8_POLICY_ADMIN: return M8_ADMIN;
    case M8_POLICY_SUPERUSER: return M8_SUPERUSER;
    case M8_POLICY_APIKEY_READER: return M8_API_KEY_READER;
    case M8_POLICY_APIKEY_WRITER: return M8_API_KEY_WRITER;
    default: return M8_ACCESS_UNSET;
    }
}

static bool is_token(const char *s)
{
    if (!s || !*s || strlen(s) > M8_POLICY_MAX_METHOD)
        return false;
    for (; *s; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
            return false;
    }
    return true;
}

static int gate_hook(m8_request *req, void *data)
{
    gate *g = data;
    decision d = {.mode = req->authorizer ? "authorizer" : "auth_request"};
    const char *uri = NULL;
    if (req->authorizer) {
        /* The web server asks about the request it holds: its own
         * REQUEST_URI and REQUEST_METHOD (never headers a client sent). */
        uri = m8_req_param(req, "REQUEST_URI");
        d.method = req->method;
    } else {
        uri = m8_req_header(req, "X-Original-URI");
        if (!uri)
            return 0; /* not a question: the gate's own routes */
        d.method = m8_req_header(req, "X-Original-Method");
        if (!d.method)
            d.method = req->method;
        /* In an nginx auth_request subrequest REQUEST_URI and
         * REQUEST_METHOD are the client's original ones ($request_uri,
         * $request_method).  A difference means the headers did not come
         * from nginx (a client's own, passed on by a site without the
         * fastcgi_param lines): never let a client pick the rule. */
        const char *ru = m8_req_param(req, "REQUEST_URI");
        if ((ru && strcmp(ru, uri) != 0) || strcmp(d.method, req->method) != 0) {
            d.why = "X-Original-URI/X-Original-Method differ from REQUEST_URI/REQUEST_METHOD: "
                    "set them with fastcgi_param (fcgim8-gate(8))";
            m8_req_fail(req, "%s", d.why);
            deny(req, 500, "Internal Server Error");
            req->route_label = "misconfigured";
            log_decision(req, &d);
            return 1;
        }
    }
    size_t ulen = uri ? strlen(uri) : 0;
    char *path = uri ? m8_req_alloc(req, ulen + 1) : NULL;
    if (!uri || !path || !is_token(d.method) ||
        m8_policy_normalize(uri, ulen, path, ulen + 1, &d.path_len) != 0) {
        d.why = !uri ? "no REQUEST_URI" : "the request path or method cannot be matched safely";
        deny(req, 400, "Bad Request");
        req->route_label = "bad_request";
        log_decision(req, &d);
        return 1;
    }
    d.path = path;
    d.rule = m8_policy_match(&g->policy, d.method, path, d.path_len);
    req->route_label = d.rule->name; /* the metrics' endpoint label */
    switch (d.rule->access) {
    case M8_POLICY_PUBLIC: allow(req, NULL); break;
    case M8_POLICY_DENY: deny(req, 403, "Forbidden"); break;
    default:
        if (d.rule->access != M8_POLICY_APIKEY_READER && d.rule->access != M8_POLICY_APIKEY_WRITER &&
            !cookie_credential(g, req, d.method, &d.why))
            break;
        if (m8_auth_check(g->app->auth, req, role_access(d.rule->access))) {
            allow(req, req->user);
        } else {
            if (req->status == 0)
                deny(req, 500, "Internal Server Error");
            mirror_detail(req);
        }
        break;
    }
    log_decision(req, &d);
    return 1;
}

/* ------------------------------------------------------------ boot */

/* A startup validator (runs after the middleware is built, before serving).
 * CORS preflights are answered by the middleware before the request hook
 * sees them: left as they are, an OPTIONS request with Origin and
 * Access-Control-Request-Method from a listed origin would be answered 200
 * - "allowed" - whatever the policy says.  The gate takes the origin list
 * away, so every preflight is refused (400: denied); CORS stays the
 * protected application's business. */
static int gate_boot(const m8_settings *s, char *err, size_t errlen, void *data)
{
    (void)s;
    gate *g = data;
    const m8_policy_rule *k = m8_policy_first_apikey(&g->policy);
    if (k && !g->app->apikey) {
        snprintf(err, errlen, "%s: line %u: rule %s takes an X-API-Key (%s) but "
                 "API_KEY_INTROSPECTION_ENABLED is false", g->policy_path, k->line, k->name,
                 m8_policy_access_name(k->access));
        return 1;
    }
    g->cors_origins = g->app->mw.origins;
    g->n_cors_origins = g->app->mw.n_origins;
    g->app->mw.origins = NULL;
    g->app->mw.n_origins = 0;
    m8_log(M8_LOG_INFO, "gate: policy %s, %zu rules; CORS preflights are denied", g->policy_path,
           g->policy.n);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: fcgim8-gate --policy FILE [--cookie NAME [--csrf-cookie NAME\n"
               "                   --csrf-header NAME]] [service options]\n"
               "Answers nginx auth_request subrequests and FastCGI AUTHORIZER requests\n"
               "with the rules of FILE (see fcgim8-gate(8)).\n\n"
               "  --policy FILE        the policy (required; checked at boot, line by line)\n"
               "  --cookie NAME        also take the access token from this cookie when there\n"
               "                       is no Authorization header (off by default)\n"
               "  --csrf-cookie NAME   with --cookie: on unsafe methods the header named by\n"
               "  --csrf-header NAME   --csrf-header must equal this cookie (double submit)\n\n");
}

static bool cookie_name_ok(const char *s)
{
    if (!s || !*s || strlen(s) > MAX_COOKIE_NAME)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", c))
            return false;
    }
    return true;
}

/* Takes the gate's options out of argv (the rest goes to m8_app_main).
 * Returns 0, or an exit status. */
static int gate_options(gate *g, int *argc, char **argv, bool *help)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *names[] = {"--policy", "--cookie", "--csrf-cookie", "--csrf-header"};
        const char **slots[] = {&g->policy_path, &g->cookie, &g->csrf_cookie, &g->csrf_header};
        const char *value = NULL;
        for (size_t k = 0; k < M8_ARRAY_LEN(names) && !slot; k++) {
            size_t nl = strlen(names[k]);
            if (strcmp(a, names[k]) == 0) {
                slot = slots[k];
                if (i + 1 >= *argc) {
                    fprintf(stderr, "fcgim8-gate: %s needs a value (see --help)\n", a);
                    return EX_USAGE_;
                }
                value = argv[++i];
            } else if (strncmp(a, names[k], nl) == 0 && a[nl] == '=') {
                slot = slots[k];
                value = a + nl + 1;
            }
        }
        if (slot) {
            *slot = value;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "--version") == 0)
            *help = true;
        argv[out++] = argv[i];
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

int main(int argc, char **argv)
{
    gate g = {0};
    bool help = false;
    int rc = gate_options(&g, &argc, argv, &help);
    if (rc)
        return rc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            break;
        }
    }
    if (!help) {
        if (!g.policy_path) {
            fprintf(stderr, "fcgim8-gate: --policy FILE is required (see --help)\n");
            return EX_USAGE_;
        }
        if (g.cookie && !cookie_name_ok(g.cookie)) {
            fprintf(stderr, "fcgim8-gate: --cookie: not a cookie name\n");
            return EX_USAGE_;
        }
        if ((g.csrf_cookie || g.csrf_header) &&
            !(g.cookie && cookie_name_ok(g.csrf_cookie) && cookie_name_ok(g.csrf_header))) {
            fprintf(stderr, "fcgim8-gate: --csrf-cookie and --csrf-header go together, with "
                            "--cookie, and name a cookie and a header\n");
            return EX_USAGE_;
        }
        char *text = NULL;
        size_t len = 0;
        rc = m8_read_file(g.policy_path, M8_POLICY_MAX_BYTES, true, &text, &len);
        if (rc) {
            fprintf(stderr, "fcgim8-gate: %s: %s\n", g.policy_path,
                    rc == M8_ETOOBIG     ? "larger than the policy limit (256 KiB)"
                    : rc == M8_ENOTFOUND ? "no such file"
                                         : "cannot read it");
            return EX_CONFIG_;
        }
        char err[512];
        rc = m8_policy_parse(text, len, &g.policy, err, sizeof err, NULL);
        free(text);
        if (rc) {
            fprintf(stderr, "fcgim8-gate: %s: %s\n", g.policy_path, err);
            return EX_CONFIG_;
        }
        m8_fcgi_accept_authorizer(true);
    }
    g.app = m8_app_new("fcgim8-gate", M8_VERSION_STRING);
    if (!g.app || m8_app_on_request(g.app, gate_hook, &g) != 0 ||
        m8_app_add_validator(g.app, "fcgim8-gate", gate_boot, &g) != 0) {
        fprintf(stderr, "fcgim8-gate: out of memory\n");
        m8_app_free(g.app);
        m8_policy_free(&g.policy);
        return 70;
    }
    rc = m8_app_main(g.app, argc, argv); /* frees the app */
    m8_strv_free(g.cors_origins, g.n_cors_origins);
    m8_policy_free(&g.policy);
    return rc;
}
