/* test_middleware.c - trusted host, CORS, security headers, request id
 * (lib/http/middleware.c).  Settings are built by hand. */
#include "http/middleware.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reqbuild.h"
#include "tap.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define SORTED_HEADERS                                                                             \
    "Accept, Accept-Language, Authorization, Content-Language, Content-Type, X-Requested-With"
#define DEFAULT_CSP                                                                                \
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#define DEFAULT_PP                                                                                 \
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "                 \
    "microphone=(), payment=(), usb=()"

static char *origins_list[] = {"https://app.example.com", "http://localhost:3000"};

/* Settings as a default local service would have them. */
static m8_settings *mk_settings(void)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->environment = M8_ENV_LOCAL;
    s->security_headers_enabled = true;
    s->hsts_enabled = true;
    s->hsts_max_age = 31536000;
    s->hsts_include_subdomains = true;
    s->content_security_policy_enabled = false;
    s->referrer_policy = "strict-origin-when-cross-origin";
    s->permissions_policy = DEFAULT_PP;
    s->allowed_origins.items = origins_list;
    s->allowed_origins.n = 2;
    return s;
}

static void set_hosts(m8_settings *s, char **hosts, size_t n)
{
    s->allowed_hosts.items = hosts;
    s->allowed_hosts.n = n;
}

/* A request from "NAME=VALUE" params (NULL-terminated). */
static m8_request *mk_req(const char *const *kv)
{
    m8_request *req = malloc(sizeof *req);
    m8_req_init(req, NULL);
    int rc = m8t_req_kv(req, NULL, kv, NULL, 0);
    if (rc)
        diag("m8_req_from_params: %d", rc);
    return req;
}

static void del_req(m8_request *req)
{
    m8_req_free(req);
    free(req);
}

static const char *body_of(const m8_request *req)
{
    return req->body_out.data ? req->body_out.data : "";
}

/* "Name: value\n" for every response header, in order. */
static char *header_dump(const m8_request *req)
{
    m8_buf b;
    m8_buf_init(&b, 1u << 16);
    m8_buf_puts(&b, "");
    for (size_t i = 0; i < req->n_res_headers; i++)
        m8_buf_printf(&b, "%s: %s\n", req->res_headers[i].name, req->res_headers[i].value);
    return m8_buf_steal(&b);
}

/* ------------------------------------------------------------ trusted host */

static int th_status(const m8_middleware *m, const char *host)
{
    char hh[256];
    snprintf(hh, sizeof hh, "HTTP_HOST=%s", host ? host : "");
    const char *kv[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x", host ? hh : NULL, NULL};
    m8_request *req = mk_req(kv);
    int st = m8_mw_trusted_host(m, req) ? 0 : req->status;
    del_req(req);
    return st;
}

static void test_trusted_host(void)
{
    m8_settings *s = mk_settings();
    m8_middleware m;
    char err[256];

    is_int(m8_middleware_init(&m, s, err, sizeof err), 0, "init without ALLOWED_HOSTS");
    ok(!m.th_enabled, "trusted host disabled when ALLOWED_HOSTS is empty");
    is_int(th_status(&m, "evil.example"), 0, "any host passes when disabled");
    m8_middleware_free(&m);

    char *exact[] = {"api.example.com"};
    set_hosts(s, exact, 1);
    is_int(m8_middleware_init(&m, s, err, sizeof err), 0, "init with one host");
    ok(m.th_enabled, "enabled when ALLOWED_HOSTS is non-empty");
    is_int(m.th_n, 2, "testserver appended outside production");
    is_str(m.th_patterns[1], "testserver", "testserver is last");
    is_int(th_status(&m, "api.example.com"), 0, "exact host allowed");
    is_int(th_status(&m, "api.example.com:8443"), 0, "host cut at the first ':'");
    is_int(th_status(&m, "testserver"), 0, "testserver allowed outside production");
    is_int(th_status(&m, "API.example.com"), 400, "comparison is case-sensitive");
    is_int(th_status(&m, "evil.example"), 400, "other host refused");
    is_int(th_status(&m, "api.example.com.evil"), 400, "suffix garbage refused");
    is_int(th_status(&m, NULL), 400, "missing Host refused (counts as empty)");
    is_int(th_status(&m, "[::1]:8080"), 400, "IPv6 literal cut at the first ':' (reference quirk)");
    const char *kv[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x", "HTTP_HOST=evil", NULL};
    m8_request *req = mk_req(kv);
    ok(!m8_mw_trusted_host(&m, req), "refused request does not go on");
    is_int(req->status, 400, "400");
    is_str(req->content_type, TEXT_PLAIN, "text/plain; charset=utf-8");
    is_str(body_of(req), "Invalid host header", "body Invalid host header");
    del_req(req);
    m8_middleware_free(&m);

    s->production_gate = true;
    is_int(m8_middleware_init(&m, s, err, sizeof err), 0, "init in production");
    is_int(m.th_n, 1, "testserver never added under the production gate");
    is_int(th_status(&m, "testserver"), 400, "testserver refused in production");
    m8_middleware_free(&m);
    s->production_gate = false;

    char *with_ts[] = {"testserver", "a.example"};
    set_hosts(s, with_ts, 2);
    m8_middleware_init(&m, s, err, sizeof err);
    is_int(m.th_n, 2, "testserver not appended twice");
    m8_middleware_free(&m);

    char *wild[] = {"*.example.com"};
    set_hosts(s, wild, 1);
    is_int(m8_middleware_init(&m, s, err, sizeof err), 0, "wildcard pattern accepted");
    is_int(th_status(&m, "a.example.com"), 0, "*.example.com matches a subdomain");
    is_int(th_status(&m, "a.b.example.com:80"), 0, "*.example.com matches a deeper subdomain");
    is_int(th_status(&m, "example.com"), 400, "*.example.com does not match the apex");
    is_int(th_status(&m, "badexample.com"), 400, "*.example.com needs the dot");
    is_int(th_status(&m, "a.example.com.evil"), 400, "suffix must end the host");
    m8_middleware_free(&m);

    char *star[] = {"a.example", "*"};
    set_hosts(s, star, 2);
    is_int(m8_middleware_init(&m, s, err, sizeof err), 0, "'*' accepted");
    ok(!m.th_enabled, "'*' makes trusted host a no-op");
    is_int(th_status(&m, "anything.at.all"), 0, "'*' lets every host through");
    is_int(th_status(&m, NULL), 0, "'*' lets a missing host through");
    m8_middleware_free(&m);

    const char *bad[] = {"*example.com", "a.*.com", "example.*", "**.example.com", "*a"};
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        char *one[] = {(char *)bad[i], "*"};
        set_hosts(s, one, 2);
        is_int(m8_middleware_init(&m, s, err, sizeof err), M8_ECONFIG,
               "invalid pattern %s refused at init (even with '*')", bad[i]);
        like(err, "ALLOWED_HOSTS: invalid pattern", "reason names ALLOWED_HOSTS (%zu)", i);
        like(err, bad[i], "reason names the pattern (%zu)", i);
    }
    free(s);
}

static void test_www_redirect(void)
{
    m8_settings *s = mk_settings();
    m8_middleware m;
    char err[256];
    char *hosts[] = {"www.example.com"};
    set_hosts(s, hosts, 1);
    m8_middleware_init(&m, s, err, sizeof err);

    const char *kv[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/a%20b/c d?q=1&r=%2F",
                        "HTTP_HOST=example.com", NULL};
    m8_request *req = mk_req(kv);
    ok(!m8_mw_trusted_host(&m, req), "apex host with a www pattern does not go on");
    is_int(req->status, 307, "307 www redirect");
    is_str(m8_res_get_header(req, "Location"), "http://www.example.com/a%20b/c%20d?q=1&r=%2F",
           "Location: same URL with www., quoted like Starlette");
    is_int(req->body_out.len, 0, "empty body");
    ok(req->content_type == NULL, "no content type");
    del_req(req);

    const char *kv2[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/x", "HTTP_HOST=example.com:8443",
                         "HTTPS=on", NULL};
    req = mk_req(kv2);
    m8_mw_trusted_host(&m, req);
    is_str(m8_res_get_header(req, "Location"), "https://www.example.com:8443/x",
           "port kept, https from HTTPS=on");
    del_req(req);

    const char *kv3[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/", "HTTP_HOST=example.com",
                         "REQUEST_SCHEME=https", NULL};
    req = mk_req(kv3);
    m8_mw_trusted_host(&m, req);
    is_str(m8_res_get_header(req, "Location"), "https://www.example.com/",
           "scheme from REQUEST_SCHEME");
    del_req(req);

    const char *kv4[] = {"REQUEST_METHOD=GET", "SCRIPT_NAME=/p q", "QUERY_STRING=a=1",
                         "HTTP_HOST=example.com", NULL};
    req = mk_req(kv4);
    m8_mw_trusted_host(&m, req);
    is_str(m8_res_get_header(req, "Location"), "http://www.example.com/p%20q?a=1",
           "without REQUEST_URI: path and query");
    del_req(req);

    is_int(th_status(&m, "sub.example.com"), 400, "other hosts still 400");
    is_int(th_status(&m, "www.example.com"), 0, "www host allowed");

    /* Only host[:digits] reaches the Location: "example.com:@evil.com"
     * would make the browser go to evil.com (userinfo "www.example.com:"). */
    const char *not_host_port[] = {"example.com:@evil.com",
                                   "example.com:80@evil.com",
                                   "example.com:/evil.com",
                                   "example.com:8a",
                                   "example.com:",
                                   "example.com:123456",
                                   "example.com:80:80",
                                   "example.com:\\evil.com",
                                   "example.com:%40evil.com",
                                   "example.com: 80"};
    for (size_t i = 0; i < M8_ARRAY_LEN(not_host_port); i++) {
        char hh[128];
        snprintf(hh, sizeof hh, "HTTP_HOST=%s", not_host_port[i]);
        const char *kvb[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x", hh, NULL};
        req = mk_req(kvb);
        ok(!m8_mw_trusted_host(&m, req), "Host %s does not go on", not_host_port[i]);
        is_int(req->status, 400, "Host %s: 400, not a www redirect", not_host_port[i]);
        ok(m8_res_get_header(req, "Location") == NULL, "Host %s: no Location", not_host_port[i]);
        del_req(req);
    }
    is_int(th_status(&m, "example.com:65535"), 307, "Host example.com:65535 still redirects");
    m8_middleware_free(&m);

    char *both[] = {"example.com", "www.example.com"};
    set_hosts(s, both, 2);
    m8_middleware_init(&m, s, err, sizeof err);
    is_int(th_status(&m, "example.com"), 0, "apex allowed itself: no redirect");
    m8_middleware_free(&m);
    free(s);
}

/* ------------------------------------------------------------ CORS */

static m8_request *preflight(const m8_middleware *m, const char *origin, const char *method,
                             const char *headers, bool pna, bool *answered)
{
    char o[256], am[128], ah[256];
    snprintf(o, sizeof o, "HTTP_ORIGIN=%s", origin);
    snprintf(am, sizeof am, "HTTP_ACCESS_CONTROL_REQUEST_METHOD=%s", method);
    snprintf(ah, sizeof ah, "HTTP_ACCESS_CONTROL_REQUEST_HEADERS=%s", headers ? headers : "");
    const char *kv[8] = {"REQUEST_METHOD=OPTIONS", "REQUEST_URI=/api/items", o, am};
    size_t n = 4;
    if (headers)
        kv[n++] = ah;
    if (pna)
        kv[n++] = "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK=true";
    kv[n] = NULL;
    m8_request *req = mk_req(kv);
    *answered = m8_mw_cors_preflight(m, req);
    return req;
}

static void test_cors_preflight(void)
{
    m8_settings *s = mk_settings();
    m8_middleware m;
    char err[256];
    m8_middleware_init(&m, s, err, sizeof err);
    bool ans;

    m8_request *req = preflight(&m, "https://app.example.com", "POST",
                                "Authorization, Content-Type", false, &ans);
    ok(ans, "preflight answered by the middleware");
    is_int(req->status, 200, "allowed preflight is 200");
    is_str(body_of(req), "OK", "body OK");
    is_str(req->content_type, TEXT_PLAIN, "text/plain; charset=utf-8");
    char *d = header_dump(req);
    is_str(d,
           "Vary: Origin\n"
           "Access-Control-Allow-Methods: GET, POST, PUT, PATCH, DELETE, OPTIONS\n"
           "Access-Control-Max-Age: 3600\n"
           "Access-Control-Allow-Headers: " SORTED_HEADERS "\n"
           "Access-Control-Allow-Credentials: true\n"
           "Access-Control-Allow-Origin: https://app.example.com\n",
           "preflight headers, exact values and order");
    free(d);
    del_req(req);

    req = preflight(&m, "http://localhost:3000", "DELETE", NULL, false, &ans);
    is_int(req->status, 200, "second origin, no requested headers: 200");
    is_str(m8_res_get_header(req, "Access-Control-Allow-Origin"), "http://localhost:3000",
           "origin echoed");
    del_req(req);

    req = preflight(&m, "https://app.example.com", "GET",
                    " accept ,ACCEPT-LANGUAGE,content-language,X-Requested-With,content-type",
                    false, &ans);
    is_int(req->status, 200, "requested headers are lower-cased and trimmed");
    del_req(req);

    /* every combination of the four failure names, in the fixed order */
    static const char *const names[] = {"origin", "method", "headers", "private-network"};
    for (unsigned mask = 1; mask < 16; mask++) {
        req = preflight(&m, mask & 1 ? "https://evil.example" : "https://app.example.com",
                        mask & 2 ? "TRACE" : "PUT", mask & 4 ? "X-API-Key" : "authorization",
                        mask & 8, &ans);
        char want[128] = "Disallowed CORS ";
        bool first = true;
        for (unsigned k = 0; k < 4; k++) {
            if (mask & (1u << k)) {
                if (!first)
                    strncat(want, ", ", sizeof want - strlen(want) - 1);
                strncat(want, names[k], sizeof want - strlen(want) - 1);
                first = false;
            }
        }
        ok(ans && req->status == 400, "failure mask %u is 400", mask);
        is_str(body_of(req), want, "failure mask %u body", mask);
        is_str(req->content_type, TEXT_PLAIN, "failure mask %u text/plain", mask);
        ok((m8_res_get_header(req, "Access-Control-Allow-Origin") != NULL) == !(mask & 1),
           "failure mask %u: Allow-Origin only for an allowed origin", mask);
        is_str(m8_res_get_header(req, "Access-Control-Allow-Credentials"), "true",
               "failure mask %u: credentials header", mask);
        is_str(m8_res_get_header(req, "Vary"), "Origin", "failure mask %u: Vary", mask);
        del_req(req);
    }

    struct {
        const char *origin, *method, *headers;
        const char *want;
        const char *what;
    } cases[] = {
        {"https://app.example.com/", "GET", NULL, "Disallowed CORS origin", "trailing / on origin"},
        {"HTTPS://app.example.com", "GET", NULL, "Disallowed CORS origin", "origin case matters"},
        {"https://app.example.com:443", "GET", NULL, "Disallowed CORS origin",
         "origin port matters"},
        {"null", "GET", NULL, "Disallowed CORS origin", "origin null"},
        {"https://app.example.com", "HEAD", NULL, "Disallowed CORS method", "HEAD not allowed"},
        {"https://app.example.com", "get", NULL, "Disallowed CORS method", "method case-sensitive"},
        {"https://app.example.com", "", NULL, "Disallowed CORS method", "empty method"},
        {"https://app.example.com", "GET", "x-internal-token", "Disallowed CORS headers",
         "X-Internal-Token not allowed"},
        {"https://app.example.com", "GET", "X-API-Key", "Disallowed CORS headers",
         "X-API-Key not allowed"},
        {"https://app.example.com", "GET", "", "Disallowed CORS headers",
         "empty header list fails"},
        {"https://app.example.com", "GET", "authorization,", "Disallowed CORS headers",
         "trailing comma (empty item) fails"},
        {"https://app.example.com", "GET", "authorization,,content-type", "Disallowed CORS headers",
         "empty middle item fails"},
        {"https://app.example.com", "GET", "cookie", "Disallowed CORS headers",
         "cookie not allowed"},
        {"https://evil.example", "HEAD", "X-API-Key", "Disallowed CORS origin, method, headers",
         "three failures in order"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(cases); i++) {
        req = preflight(&m, cases[i].origin, cases[i].method, cases[i].headers, false, &ans);
        ok(ans && req->status == 400, "%s: 400", cases[i].what);
        is_str(body_of(req), cases[i].want, "%s", cases[i].what);
        del_req(req);
    }

    /* not preflights */
    const char *no_origin[] = {"REQUEST_METHOD=OPTIONS", "REQUEST_URI=/x",
                               "HTTP_ACCESS_CONTROL_REQUEST_METHOD=GET", NULL};
    req = mk_req(no_origin);
    ok(!m8_mw_cors_preflight(&m, req), "no Origin: not answered");
    is_int(req->status, 0, "no Origin: response untouched");
    is_int(req->n_res_headers, 0, "no Origin: no headers");
    del_req(req);
    const char *no_acrm[] = {"REQUEST_METHOD=OPTIONS", "REQUEST_URI=/x",
                             "HTTP_ORIGIN=https://app.example.com", NULL};
    req = mk_req(no_acrm);
    ok(!m8_mw_cors_preflight(&m, req), "OPTIONS without Access-Control-Request-Method goes on");
    del_req(req);
    const char *get[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x",
                         "HTTP_ORIGIN=https://app.example.com",
                         "HTTP_ACCESS_CONTROL_REQUEST_METHOD=GET", NULL};
    req = mk_req(get);
    ok(!m8_mw_cors_preflight(&m, req), "GET with the preflight headers is not a preflight");
    del_req(req);
    m8_middleware_free(&m);
    free(s);
}

static void test_cors_simple(void)
{
    m8_settings *s = mk_settings();
    m8_middleware m;
    char err[256];
    m8_middleware_init(&m, s, err, sizeof err);

    const char *allowed[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x",
                             "HTTP_ORIGIN=https://app.example.com", NULL};
    m8_request *req = mk_req(allowed);
    m8_res_error(req, 404, "Not Found");
    m8_mw_cors_response(&m, req);
    char *d = header_dump(req);
    is_str(d,
           "Access-Control-Allow-Credentials: true\n"
           "Access-Control-Allow-Origin: https://app.example.com\n"
           "Vary: Origin\n",
           "allowed origin: credentials, origin, Vary");
    free(d);
    del_req(req);

    req = mk_req(allowed);
    m8_res_body(req, 200, "text/plain", "x", 1);
    m8_res_header(req, "Vary", "Accept-Encoding");
    m8_res_header(req, "Access-Control-Allow-Credentials", "false");
    m8_mw_cors_response(&m, req);
    is_str(m8_res_get_header(req, "Vary"), "Accept-Encoding, Origin", "Origin appended to Vary");
    is_str(m8_res_get_header(req, "Access-Control-Allow-Credentials"), "true",
           "credentials header replaces the handler's");
    is_int(req->status, 200, "status untouched");
    del_req(req);

    const char *denied[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/x",
                            "HTTP_ORIGIN=https://evil.example", NULL};
    req = mk_req(denied);
    m8_res_body(req, 200, NULL, NULL, 0);
    m8_mw_cors_response(&m, req);
    d = header_dump(req);
    is_str(d, "Access-Control-Allow-Credentials: true\n",
           "disallowed origin still gets Allow-Credentials, nothing else");
    free(d);
    del_req(req);

    const char *none[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x", NULL};
    req = mk_req(none);
    m8_mw_cors_response(&m, req);
    is_int(req->n_res_headers, 0, "no Origin: no CORS headers");
    del_req(req);

    const char *opt[] = {"REQUEST_METHOD=OPTIONS", "REQUEST_URI=/x",
                         "HTTP_ORIGIN=https://app.example.com", NULL};
    req = mk_req(opt);
    m8_mw_cors_response(&m, req);
    is_str(m8_res_get_header(req, "Access-Control-Allow-Origin"), "https://app.example.com",
           "OPTIONS without the request-method header is a simple request");
    del_req(req);
    m8_middleware_free(&m);
    free(s);
}

/* ------------------------------------------------------------ security headers */

static char *sec_dump(const m8_settings *s)
{
    m8_middleware m;
    char err[256];
    if (m8_middleware_init(&m, s, err, sizeof err) != 0)
        return strdup("(init failed)");
    const char *kv[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x", NULL};
    m8_request *req = mk_req(kv);
    m8_res_body(req, 200, NULL, NULL, 0);
    m8_mw_security_headers(&m, req);
    char *d = header_dump(req);
    del_req(req);
    m8_middleware_free(&m);
    return d;
}

#define T1 "X-Content-Type-Options: nosniff\nX-Frame-Options: DENY\n"
#define T2 "Referrer-Policy: strict-origin-when-cross-origin\nPermissions-Policy: " DEFAULT_PP "\n"
#define HSTS "Strict-Transport-Security: max-age=31536000; includeSubDomains\n"
#define CSP "Content-Security-Policy: " DEFAULT_CSP "\n"

static void test_security_tiers(void)
{
    static const char *const env_names[] = {"local", "development", "staging", "production"};
    for (int env = M8_ENV_LOCAL; env <= M8_ENV_PRODUCTION; env++) {
        for (int strict = 0; strict <= 1; strict++) {
            m8_settings *s = mk_settings();
            s->environment = (m8_environment)env;
            s->strict_production_mode = strict;
            s->production_gate = strict || env == M8_ENV_PRODUCTION;
            s->hsts_enabled = true;
            s->content_security_policy_enabled = true;
            char want[2048];
            snprintf(want, sizeof want, "%s%s%s%s", T1, s->production_gate ? T2 : "",
                     env != M8_ENV_LOCAL ? HSTS : "", env != M8_ENV_LOCAL ? CSP : "");
            char *d = sec_dump(s);
            is_str(d, want, "ENVIRONMENT=%s STRICT_PRODUCTION_MODE=%s: all tiers enabled",
                   env_names[env], strict ? "true" : "false");
            free(d);

            s->hsts_enabled = false;
            s->content_security_policy_enabled = false;
            snprintf(want, sizeof want, "%s%s", T1, s->production_gate ? T2 : "");
            d = sec_dump(s);
            is_str(d, want, "ENVIRONMENT=%s STRICT_PRODUCTION_MODE=%s: HSTS and CSP off",
                   env_names[env], strict ? "true" : "false");
            free(d);

            s->security_headers_enabled = false;
            s->hsts_enabled = true;
            s->content_security_policy_enabled = true;
            d = sec_dump(s);
            is_str(d, "",
                   "ENVIRONMENT=%s STRICT_PRODUCTION_MODE=%s: "
                   "SECURITY_HEADERS_ENABLED=false suppresses every tier",
                   env_names[env], strict ? "true" : "false");
            free(d);
            free(s);
        }
    }

    m8_settings *s = mk_settings();
    s->environment = M8_ENV_STAGING;
    s->hsts_max_age = 0;
    char *d = sec_dump(s);
    is_str(d, T1, "HSTS_MAX_AGE=0: no HSTS");
    free(d);
    s->hsts_max_age = 600;
    s->hsts_include_subdomains = false;
    d = sec_dump(s);
    is_str(d, T1 "Strict-Transport-Security: max-age=600\n", "HSTS without includeSubDomains");
    free(d);
    s->hsts_enabled = false;
    s->content_security_policy_enabled = true;
    s->content_security_policy = "default-src 'self'";
    d = sec_dump(s);
    is_str(d, T1 "Content-Security-Policy: default-src 'self'\n", "custom CSP emitted verbatim");
    free(d);
    s->content_security_policy = "";
    d = sec_dump(s);
    is_str(d, T1 CSP, "empty CSP uses the default");
    free(d);
    s->production_gate = true;
    s->content_security_policy_enabled = false;
    s->referrer_policy = "no-referrer";
    s->permissions_policy = "camera=()";
    d = sec_dump(s);
    is_str(d, T1 "Referrer-Policy: no-referrer\nPermissions-Policy: camera=()\n",
           "custom Referrer-Policy and Permissions-Policy verbatim");
    free(d);
    s->referrer_policy = NULL;
    s->permissions_policy = NULL;
    d = sec_dump(s);
    is_str(d, T1 T2, "unset policies use the defaults");
    free(d);

    m8_middleware m;
    char err[256];
    s->referrer_policy = "no-referrer\r\nX-Evil: 1";
    is_int(m8_middleware_init(&m, s, err, sizeof err), M8_ECONFIG,
           "a control character in REFERRER_POLICY is refused at init");
    like(err, "REFERRER_POLICY", "reason names the setting");
    s->referrer_policy = NULL;

    /* handler values are replaced; emission order kept */
    s->environment = M8_ENV_PRODUCTION;
    s->hsts_enabled = true;
    s->hsts_max_age = 31536000;
    s->hsts_include_subdomains = true;
    m8_middleware_init(&m, s, err, sizeof err);
    const char *kv[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x", NULL};
    m8_request *req = mk_req(kv);
    m8_res_json(req, 200, NULL);
    m8_res_header(req, "x-frame-options", "SAMEORIGIN");
    m8_res_header(req, "X-Custom", "1");
    m8_res_header(req, "strict-transport-security", "max-age=1");
    m8_mw_security_headers(&m, req);
    d = header_dump(req);
    is_str(d, "X-Custom: 1\n" T1 T2 HSTS, "handler values replaced, canonical names, tier order");
    free(d);
    m8_mw_security_headers(&m, req);
    d = header_dump(req);
    is_str(d, "X-Custom: 1\n" T1 T2 HSTS, "applying twice changes nothing");
    free(d);
    del_req(req);
    m8_middleware_free(&m);
    free(s);
}

/* ------------------------------------------------------------ request id */

static const char *rid_for(m8_request **out, const char *client)
{
    char h[256];
    snprintf(h, sizeof h, "HTTP_X_REQUEST_ID=%s", client ? client : "");
    const char *kv[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x", client ? h : NULL, NULL};
    m8_request *req = mk_req(kv);
    m8_mw_request_id(req);
    *out = req;
    return req->request_id;
}

static bool is_generated(const char *id)
{
    if (!id || strlen(id) != 32)
        return false;
    for (const char *p = id; *p; p++) {
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    }
    return true;
}

static void *thread_rid(void *arg)
{
    m8_request *req;
    const char *id = rid_for(&req, NULL);
    memcpy(arg, id, 33);
    del_req(req);
    return NULL;
}

static void test_request_id(void)
{
    m8_request *req;
    char max[M8_MAX_REQUEST_ID + 2];
    memset(max, 'a', sizeof max);
    max[M8_MAX_REQUEST_ID] = '\0';

    is_str(rid_for(&req, "abc-DEF_1.2"), "abc-DEF_1.2", "valid client id accepted");
    is_str(m8_res_get_header(req, "X-Request-ID"), "abc-DEF_1.2", "echoed as X-Request-ID");
    is_str(m8_req_id(req), "abc-DEF_1.2", "m8_req_id");
    del_req(req);
    is_str(rid_for(&req, "a"), "a", "one-character id accepted");
    del_req(req);
    is_str(rid_for(&req, max), max, "id of M8_MAX_REQUEST_ID chars accepted");
    del_req(req);
    max[M8_MAX_REQUEST_ID] = 'a';
    max[M8_MAX_REQUEST_ID + 1] = '\0';
    ok(is_generated(rid_for(&req, max)), "id of M8_MAX_REQUEST_ID + 1 chars replaced");
    del_req(req);
    const char *bad[] = {"", "a b", "a/b", "a:b", "caf\xC3\xA9", "<script>", "a\tb"};
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        ok(is_generated(rid_for(&req, bad[i])), "invalid client id replaced (%zu)", i);
        is_str(m8_res_get_header(req, "X-Request-ID"), req->request_id,
               "generated id set as X-Request-ID (%zu)", i);
        del_req(req);
    }
    char a[33], b[33];
    const char *id = rid_for(&req, NULL);
    ok(is_generated(id), "no client id: 32 hex chars generated");
    memcpy(a, id, 33);
    del_req(req);
    memcpy(b, rid_for(&req, NULL), 33);
    del_req(req);
    ok(strcmp(a, b) != 0, "two generated ids differ");
    ok(memcmp(a, b, 16) == 0, "same thread: same random prefix, counter differs");

    char t[33];
    pthread_t th;
    pthread_create(&th, NULL, thread_rid, t);
    pthread_join(th, NULL);
    ok(is_generated(t) && memcmp(t, a, 16) != 0, "another thread draws another prefix");

    int fds[2];
    if (pipe(fds) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            m8_request *creq;
            const char *cid = rid_for(&creq, NULL);
            ssize_t w = write(fds[1], cid, 33);
            _exit(w == 33 ? 0 : 1);
        }
        char c[33] = "";
        ssize_t r = read(fds[0], c, 33);
        waitpid(pid, NULL, 0);
        close(fds[0]);
        close(fds[1]);
        ok(r == 33 && is_generated(c) && memcmp(c, a, 16) != 0,
           "a forked child draws a new prefix (no duplicate ids across workers)");
    }
}

int main(void)
{
    test_trusted_host();
    test_www_redirect();
    test_cors_preflight();
    test_cors_simple();
    test_security_tiers();
    test_request_id();
    return done_testing();
}
