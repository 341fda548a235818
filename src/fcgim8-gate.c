/* fcgim8-gate - fcgi-m8 token checks in front of any backend (PHP, static
 * files, CGI scripts) that nobody will rewrite.  It answers authorization
 * questions in two forms (doc/design.md#authorizer-role):
 *
 *   nginx auth_request: a FastCGI RESPONDER request carrying X-Original-URI
 *     (and X-Original-Method); 200 with X-Auth-User-Id, X-Auth-Email,
 *     X-Auth-Role, X-Auth-Is-Superuser for auth_request_set, or 401/403
 *     with the bodies of doc/responses.md#auth-failures and WWW-Authenticate, or 503.
 *   the FastCGI AUTHORIZER role (Apache mod_fcgid, lighttpd): 200 with
 *     Variable-AUTH_USER_ID etc. for the application's environment, or the
 *     denial.
 *
 * Which rule applies comes from a policy file (lib/auth/policy.h); the token is
 * checked by the library exactly as an fcgi-m8 service checks it (m8_auth).
 * A RESPONDER request without X-Original-URI is no question: it goes to the
 * gate's own routes (/ping, {API_PREFIX}/health/, {API_PREFIX}/metrics).
 * See fcgim8-gate(8). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "app/app.h"
#include "auth/apikey.h"
#include "auth/credential.h"
#include "auth/csrf.h"
#include "auth/policy.h"
#include "core/exitcodes.h"
#include "core/log.h"
#include "http/http.h"

#define MAX_NO_CSRF_REASON 200u /* bytes of the --no-csrf reason */
#define MAX_LOGGED_PATH 512u    /* bytes of the path written to a decision log line */

typedef struct gate {
    m8_app *app;
    m8_policy policy;
    const char *policy_path;
    m8_cred_config cred;       /* cred.cookie: the access-token cookie, or NULL (off) */
    const char *csrf_key_file; /* --csrf-key-file */
    const char *csrf_header;   /* the header an unsafe cookie request carries its CSRF token in */
    const char *no_csrf;       /* --no-csrf REASON: cookie mode without CSRF checks */
    const char *csrf_cookie;   /* --csrf-cookie: the old double submit, refused at boot */
    m8_csrf *csrf;             /* the CSRF key, loaded before boot */
    m8_route routes[1];        /* GET {API_PREFIX}/csrf, with the key */
    char *const *cors_origins; /* ALLOWED_ORIGINS with CORS off (see gate_boot): where */
    size_t n_cors_origins;     /* else an unsafe cookie request may come from (borrowed) */
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
    /* A denial is what a client can cause once per request (a token spray):
     * those lines are rate-limited per status, the metrics stay exact. */
    int status = m8_req_status(req);
    const m8_user *u = m8_req_user(req);
    if (status != 200) {
        char key[32];
        snprintf(key, sizeof key, "gate.decision.%d", status);
        if (!m8_log_limit_take(key, status >= 500 ? M8_LOG_ERROR : M8_LOG_INFO))
            return;
    }
    m8_buf b;
    m8_buf_init(&b, 4096);
    const char *outcome = status == 200 ? "allow" : status >= 500 ? "error" : "deny";
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
    m8_buf_printf(&b, ",\"decision\":\"%s\",\"status\":%d,\"method\":", outcome, status);
    const char *m = d->method ? d->method : "";
    m8_buf_json_str(&b, m, strlen(m) > 32 ? 32 : strlen(m));
    m8_buf_puts(&b, ",\"path\":");
    if (d->path)
        m8_buf_json_str(&b, d->path, d->path_len > MAX_LOGGED_PATH ? MAX_LOGGED_PATH : d->path_len);
    else
        m8_buf_puts(&b, "null");
    if (u && status == 200) {
        m8_buf_puts(&b, ",\"user\":");
        m8_buf_json_str(&b, u->id, strlen(u->id));
        m8_buf_puts(&b, ",\"role\":");
        m8_buf_json_str(&b, u->role, strlen(u->role));
    }
    /* The reason the library recorded (never the token), or ours. */
    const char *why = m8_req_fail_reason(req) ? m8_req_fail_reason(req) : d->why;
    if (why) {
        m8_buf_puts(&b, ",\"reason\":");
        m8_buf_json_str(&b, why, strlen(why));
    }
    m8_buf_puts(&b, ",\"request_id\":");
    const char *rid = m8_req_id(req) ? m8_req_id(req) : "";
    m8_buf_json_str(&b, rid, strlen(rid));
    m8_log_fields(status >= 500 ? M8_LOG_ERROR : M8_LOG_INFO, "gate.decision", b.data);
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
    const char *body = m8_res_body_text(req);
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
    const char *const *n = names[m8_req_is_authorizer(req) ? 1 : 0];
    m8_res_header(req, n[0], u->id);
    if (u->email) /* an API key's owner has none */
        m8_res_header(req, n[1], u->email);
    m8_res_header(req, n[2], u->role);
    m8_res_header(req, n[3], u->is_superuser ? "true" : "false");
    if (u->tenant_id)
        m8_res_header(req, n[4], u->tenant_id);
}

/* ------------------------------------------------------------ credentials and CSRF */

static m8_access role_access(m8_policy_access a);

/* What a CSRF token is bound to: the verified token's jti, or the token
 * itself when it has none. */
static void session_identity(const m8_user *u, const m8_credential *c, const char **id, size_t *len)
{
    if (u && u->jti && *u->jti) {
        *id = u->jti;
        *len = strlen(u->jti);
    } else {
        *id = c->value;
        *len = c->len;
    }
}

/* A cookie credential on an unsafe method (the browser sends the cookie by
 * itself, whoever made the page): the request must not come from another
 * site and must carry a CSRF token minted for this session (csrf.h).
 * Returns NULL when it may go on, else the reason (for the log). */
static const char *csrf_refusal(gate *g, m8_request *req, const m8_credential *c)
{
    m8_csrf_origin o = m8_csrf_check_origin(req, g->cors_origins, g->n_cors_origins);
    if (o != M8_CSRF_ORIGIN_OK)
        return m8_csrf_origin_reason(o);
    const char *h = m8_req_header(req, g->csrf_header);
    if (!h || !*h)
        return "csrf: no token header";
    const char *id;
    size_t idlen;
    session_identity(m8_req_user(req), c, &id, &idlen);
    if (!m8_csrf_verify(g->csrf, id, idlen, h, strlen(h)))
        return "csrf: the token is not valid for this session";
    return NULL;
}

/* The credential kinds of a rule: its cred=, else an X-API-Key for the
 * apikey rules and the Authorization header (then the cookie, with
 * --cookie) for the others. */
static unsigned rule_kinds(const gate *g, const m8_policy_rule *r)
{
    if (r->creds)
        return r->creds;
    if (r->access == M8_POLICY_APIKEY_READER || r->access == M8_POLICY_APIKEY_WRITER)
        return M8_ROUTE_CRED_API_KEY;
    return M8_ROUTE_CRED_BEARER | (g->cred.cookie ? M8_ROUTE_CRED_COOKIE : 0u);
}

/* The rule's credential, of the kinds it accepts, resolved to a user by the
 * library, then the CSRF checks of a cookie on an unsafe method.  True when
 * the request may go through (m8_req_user set); otherwise the refusal is
 * set. */
static bool credential_allows(gate *g, m8_request *req, decision *d)
{
    m8_credential c;
    m8_req_set_api_key_scope(req, d->rule->scope); /* scope=: keys only */
    if (!m8_app_authenticate(req, role_access(d->rule->access), rule_kinds(g, d->rule),
                             g->cred.cookie, &c)) {
        if (m8_req_status(req) == 0)
            deny(req, 500, "Internal Server Error");
        mirror_detail(req);
        return false;
    }
    if (c.kind == M8_CRED_COOKIE && g->csrf && !m8_http_method_safe(d->method)) {
        const char *why = csrf_refusal(g, req, &c);
        if (why) {
            d->why = why;
            deny(req, 403, "CSRF token missing or incorrect.");
            return false;
        }
    }
    return true;
}

/* GET {API_PREFIX}/csrf (with --csrf-key-file): a CSRF token for the
 * session of the request's credential, for a browser application to send
 * back in the CSRF header of its unsafe requests (fcgim8-gate(8), COOKIES
 * AND CSRF).  Refused to another site, like an unsafe request. */
static int csrf_route(m8_request *req, void *data)
{
    gate *g = data;
    m8_csrf_origin o = m8_csrf_check_origin(req, g->cors_origins, g->n_cors_origins);
    if (o != M8_CSRF_ORIGIN_OK) {
        m8_req_fail(req, "%s", m8_csrf_origin_reason(o));
        m8_res_error(req, 403, "Forbidden");
        return 0;
    }
    m8_credential c;
    if (!m8_app_authenticate(req, M8_USER, M8_ROUTE_CRED_BEARER | M8_ROUTE_CRED_COOKIE,
                             g->cred.cookie, &c)) {
        if (m8_req_status(req) == 0)
            m8_res_error(req, 500, "Internal Server Error");
        return 0;
    }
    const char *id;
    size_t idlen;
    char tok[M8_CSRF_TOKEN_LEN + 1];
    session_identity(m8_req_user(req), &c, &id, &idlen);
    if (m8_csrf_mint(g->csrf, id, idlen, tok) != 0)
        return m8_req_fail(req, "cannot mint a CSRF token");
    char body[M8_CSRF_TOKEN_LEN + M8_MAX_COOKIE_NAME + 64];
    int n = snprintf(body, sizeof body, "{\"csrf_token\":\"%s\",\"header_name\":\"%s\"}", tok,
                     g->csrf_header);
    sodium_memzero(tok, sizeof tok);
    if (n < 0 || (size_t)n >= sizeof body)
        return m8_req_fail(req, "the CSRF answer does not fit");
    m8_res_body(req, 200, "application/json", body, (size_t)n);
    sodium_memzero(body, sizeof body);
    m8_res_header(req, "Cache-Control", "no-store");
    m8_res_header(req, "Vary", "Cookie, Authorization");
    return 0;
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
    bool authorizer = m8_req_is_authorizer(req);
    const char *method = m8_req_method(req);
    decision d = {.mode = authorizer ? "authorizer" : "auth_request"};
    const char *uri = NULL;
    if (authorizer) {
        /* The web server asks about the request it holds: its own
         * REQUEST_URI and REQUEST_METHOD (never headers a client sent). */
        uri = m8_req_param(req, "REQUEST_URI");
        d.method = method;
    } else {
        uri = m8_req_header(req, "X-Original-URI");
        if (!uri)
            return 0; /* not a question: the gate's own routes */
        d.method = m8_req_header(req, "X-Original-Method");
        if (!d.method)
            d.method = method;
        /* In an nginx auth_request subrequest REQUEST_URI and
         * REQUEST_METHOD are the client's original ones ($request_uri,
         * $request_method).  A difference means the headers did not come
         * from nginx (a client's own, passed on by a site without the
         * fastcgi_param lines): never let a client pick the rule. */
        const char *ru = m8_req_param(req, "REQUEST_URI");
        if ((ru && strcmp(ru, uri) != 0) || strcmp(d.method, method) != 0) {
            d.why = "X-Original-URI/X-Original-Method differ from REQUEST_URI/REQUEST_METHOD: "
                    "set them with fastcgi_param (fcgim8-gate(8))";
            m8_req_fail(req, "%s", d.why);
            deny(req, 500, "Internal Server Error");
            m8_req_set_route_label(req, "misconfigured");
            log_decision(req, &d);
            return 1;
        }
    }
    size_t ulen = uri ? strlen(uri) : 0;
    char *path = uri ? m8_req_alloc(req, ulen + 1) : NULL;
    /* The path must mean the same to every backend that may read the raw
     * target, or it is refused (fcgim8-gate(8), REQUEST PATHS). */
    const char *bad = NULL;
    if (!uri || !path || !is_token(d.method) ||
        m8_policy_decide(&g->policy, d.method, uri, ulen, path, ulen + 1, &d.path_len, &d.rule,
                         &bad) != 0) {
        d.why = !uri  ? "no REQUEST_URI"
                : bad ? bad
                      : "the request path or method cannot be matched safely";
        char detail[160];
        snprintf(detail, sizeof detail, "Bad Request: %s", d.why);
        deny(req, 400, detail);
        m8_req_set_route_label(req, "bad_request");
        d.rule = NULL;
        log_decision(req, &d);
        return 1;
    }
    d.path = path;
    m8_req_set_route_label(req, d.rule->name); /* the metrics' endpoint label */
    switch (d.rule->access) {
    case M8_POLICY_PUBLIC: allow(req, NULL); break;
    case M8_POLICY_DENY: deny(req, 403, "Forbidden"); break;
    default:
        if (credential_allows(g, req, &d))
            allow(req, m8_req_user(req));
        break;
    }
    log_decision(req, &d);
    return 1;
}

/* ------------------------------------------------------------ boot */

/* A startup validator (runs after the middleware is built, before serving).
 * CORS preflights are answered by the middleware before the request hook
 * sees them: left on, an OPTIONS request with Origin and
 * Access-Control-Request-Method from a listed origin would be answered 200
 * - "allowed" - whatever the policy says.  The gate runs with CORS off
 * (m8_app_set_cors), so every preflight is refused (400: denied); CORS
 * stays the protected application's business.  The origin list is still
 * where else an unsafe cookie request may come from. */
static int gate_boot(const m8_settings *s, char *err, size_t errlen, void *data)
{
    gate *g = data;
    for (size_t i = 0; i < g->policy.n; i++) {
        const m8_policy_rule *r = &g->policy.rules[i];
        if ((r->creds & M8_ROUTE_CRED_COOKIE) && !g->cred.cookie) {
            snprintf(err, errlen,
                     "%s: line %u: rule %s accepts cred=cookie but no --cookie is given",
                     g->policy_path, r->line, r->name);
            return 1;
        }
    }
    const m8_policy_rule *k = m8_policy_first_apikey(&g->policy);
    if (k && !m8_apikey_enabled(s)) {
        snprintf(err, errlen,
                 "%s: line %u: rule %s takes an X-API-Key (%s) but "
                 "API_KEY_INTROSPECTION_ENABLED is false",
                 g->policy_path, k->line, k->name, m8_policy_access_name(k->access));
        return 1;
    }
    g->cors_origins = m8_app_cors_origins(g->app, &g->n_cors_origins);
    m8_log(M8_LOG_INFO, "gate: policy %s, %zu rules; CORS preflights are denied", g->policy_path,
           g->policy.n);
    if (g->cred.cookie) {
        /* Never the key: only where it came from. */
        if (g->csrf)
            m8_log(M8_LOG_INFO,
                   "gate: access token cookie %s; unsafe methods need the CSRF "
                   "token (header %s, key from %s) and an allowed origin (their own, or one "
                   "of the %zu of BACKEND_CORS_ORIGINS and FRONTEND_HOST)",
                   g->cred.cookie, g->csrf_header, g->csrf_key_file, g->n_cors_origins);
        else
            m8_log(M8_LOG_WARNING,
                   "gate: access token cookie %s WITHOUT CSRF checks "
                   "(--no-csrf): %s",
                   g->cred.cookie, g->no_csrf);
        if (!m8_cookie_name_host_prefixed(g->cred.cookie))
            m8_log(M8_LOG_WARNING,
                   "gate: --cookie %s has no __Host- prefix: a sibling "
                   "subdomain or a plain-http page can set a cookie of that name for this "
                   "site; use __Host-%s (fcgim8-gate(8), COOKIES AND CSRF)",
                   g->cred.cookie, g->cred.cookie);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "Usage: fcgim8-gate --policy FILE [--cookie NAME (--csrf-key-file FILE\n"
               "                   [--csrf-header NAME] | --no-csrf REASON)] [service options]\n"
               "Answers nginx auth_request subrequests and FastCGI AUTHORIZER requests\n"
               "with the rules of FILE (see fcgim8-gate(8)).\n\n"
               "  --policy FILE        the policy (required; checked at boot, line by line)\n"
               "  --cookie NAME        also take the access token from this cookie when the\n"
               "                       Authorization header is absent or empty (off by\n"
               "                       default; use a __Host- name)\n"
               "  --csrf-key-file FILE with --cookie: the secret (32 bytes or more, not readable\n"
               "                       by others) that signs CSRF tokens; unsafe methods with\n"
               "                       the cookie need a token from GET {API_PREFIX}/csrf\n"
               "  --csrf-header NAME   the header that carries the token (X-CSRF-Token)\n"
               "  --no-csrf REASON     with --cookie: no CSRF checks, for the REASON given\n"
               "                       (logged at every boot)\n\n");
}

/* A --no-csrf reason: printable ASCII, not blank, bounded. */
static bool reason_ok(const char *s)
{
    const char *t = s;
    if (!s || !m8_trim(&t, strlen(s)) || strlen(s) > MAX_NO_CSRF_REASON)
        return false;
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    }
    return true;
}

/* The cookie and CSRF options agree, and the key loads.  Returns 0, or an
 * exit status after saying why. */
static int cookie_options(gate *g)
{
    if (g->csrf_cookie) {
        fprintf(stderr, "fcgim8-gate: --csrf-cookie is gone: a cookie compared with a header is "
                        "defeated by anyone who can set one cookie on the domain; CSRF tokens "
                        "are now signed (--csrf-key-file FILE, see fcgim8-gate(8))\n");
        return M8_EX_USAGE;
    }
    if (!g->cred.cookie) {
        if (g->csrf_key_file || g->csrf_header || g->no_csrf) {
            fprintf(stderr, "fcgim8-gate: --csrf-key-file, --csrf-header and --no-csrf go with "
                            "--cookie (see --help)\n");
            return M8_EX_USAGE;
        }
        return 0;
    }
    if (!m8_cookie_name_ok(g->cred.cookie)) {
        fprintf(stderr, "fcgim8-gate: --cookie: not a cookie name\n");
        return M8_EX_USAGE;
    }
    if (g->csrf_header && !m8_cookie_name_ok(g->csrf_header)) {
        fprintf(stderr, "fcgim8-gate: --csrf-header: not a header name\n");
        return M8_EX_USAGE;
    }
    if (g->no_csrf && g->csrf_key_file) {
        fprintf(stderr, "fcgim8-gate: --no-csrf and --csrf-key-file exclude each other\n");
        return M8_EX_USAGE;
    }
    if (g->no_csrf && !reason_ok(g->no_csrf)) {
        fprintf(stderr,
                "fcgim8-gate: --no-csrf needs the reason CSRF checks are not needed "
                "(printable text, at most %u bytes)\n",
                MAX_NO_CSRF_REASON);
        return M8_EX_USAGE;
    }
    if (!g->no_csrf && !g->csrf_key_file) {
        fprintf(stderr, "fcgim8-gate: --cookie needs CSRF checks: --csrf-key-file FILE (make "
                        "one with: openssl rand -hex 32 >FILE; chmod 600 FILE), or --no-csrf "
                        "REASON to say why this site needs none\n");
        return M8_EX_USAGE;
    }
    if (!g->csrf_header)
        g->csrf_header = "X-CSRF-Token";
    if (g->csrf_key_file) {
        char err[512];
        g->csrf = m8_csrf_load(g->csrf_key_file, err, sizeof err);
        if (!g->csrf) {
            fprintf(stderr, "fcgim8-gate: --csrf-key-file %s\n", err);
            return M8_EX_CONFIG;
        }
        g->routes[0] = (m8_route){"GET",     "/csrf",
                                  M8_PUBLIC, csrf_route,
                                  g,         "A CSRF token for the caller's session",
                                  "gate",    M8_ROUTE_HIDDEN};
    }
    return 0;
}

/* Takes the gate's options out of argv (the rest goes to m8_app_main).
 * Returns 0, or an exit status. */
static int gate_options(gate *g, int *argc, char **argv, bool *help)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char **slot = NULL;
        const char *names[] = {"--policy",        "--cookie",      "--csrf-cookie",
                               "--csrf-key-file", "--csrf-header", "--no-csrf"};
        const char **slots[] = {&g->policy_path,   &g->cred.cookie, &g->csrf_cookie,
                                &g->csrf_key_file, &g->csrf_header, &g->no_csrf};
        const char *value = NULL;
        for (size_t k = 0; k < M8_ARRAY_LEN(names) && !slot; k++) {
            size_t nl = strlen(names[k]);
            if (strcmp(a, names[k]) == 0) {
                slot = slots[k];
                if (i + 1 >= *argc) {
                    fprintf(stderr, "fcgim8-gate: %s needs a value (see --help)\n", a);
                    return M8_EX_USAGE;
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
            return M8_EX_USAGE;
        }
        rc = cookie_options(&g);
        if (rc)
            return rc;
        char *text = NULL;
        size_t len = 0;
        rc = m8_read_file(g.policy_path, M8_POLICY_MAX_BYTES, true, &text, &len);
        if (rc) {
            fprintf(stderr, "fcgim8-gate: %s: %s\n", g.policy_path,
                    rc == M8_ETOOBIG     ? "larger than the policy limit (256 KiB)"
                    : rc == M8_ENOTFOUND ? "no such file"
                                         : "cannot read it");
            m8_csrf_free(g.csrf);
            return M8_EX_CONFIG;
        }
        char err[512];
        rc = m8_policy_parse(text, len, &g.policy, err, sizeof err, NULL);
        free(text);
        if (rc) {
            fprintf(stderr, "fcgim8-gate: %s: %s\n", g.policy_path, err);
            m8_csrf_free(g.csrf);
            return M8_EX_CONFIG;
        }
    }
    g.app = m8_app_new("fcgim8-gate", M8_VERSION_STRING);
    if (g.app && !help) {
        m8_app_set_authorizer(g.app, true);
        m8_app_set_cors(g.app, false);
    }
    if (!g.app || m8_app_on_request(g.app, gate_hook, &g) != 0 ||
        m8_app_add_validator(g.app, "fcgim8-gate", gate_boot, &g) != 0 ||
        (g.csrf && m8_app_add_routes(g.app, g.routes, 1) != 0)) {
        fprintf(stderr, "fcgim8-gate: out of memory\n");
        m8_app_free(g.app);
        m8_policy_free(&g.policy);
        m8_csrf_free(g.csrf);
        return M8_EX_SOFTWARE;
    }
    rc = m8_app_main(g.app, argc, argv); /* frees the app */
    m8_policy_free(&g.policy);
    m8_csrf_free(g.csrf);
    return rc;
}
