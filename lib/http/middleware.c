/* middleware.c - trusted host, CORS, security headers and the request id
 * (middleware.h, doc/responses.md#trusted-host, doc/responses.md#cors,
 * doc/responses.md#security-headers). */
#include "http/middleware.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_PLAIN "text/plain; charset=utf-8"

#define DEFAULT_REFERRER_POLICY "strict-origin-when-cross-origin"
#define DEFAULT_PERMISSIONS_POLICY                                                                 \
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "                 \
    "microphone=(), payment=(), usb=()"
#define DEFAULT_CSP                                                                                \
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/* CORS options of create_app (doc/responses.md#cors). */
#define CORS_ALLOW_METHODS "GET, POST, PUT, PATCH, DELETE, OPTIONS"
#define CORS_ALLOW_HEADERS                                                                         \
    "Accept, Accept-Language, Authorization, Content-Language, Content-Type, X-Requested-With"
#define CORS_MAX_AGE "3600"
static const char *const cors_methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
static const char *const cors_headers[] = {"accept",        "accept-language",
                                           "authorization", "content-language",
                                           "content-type",  "x-requested-with"};

/* ------------------------------------------------------------ init */

void m8_middleware_free(m8_middleware *m)
{
    m8_strv_free(m->th_patterns, m->th_n);
    m8_strv_free(m->origins, m->n_origins);
    for (size_t i = 0; i < M8_ARRAY_LEN(m->sec_values); i++)
        free(m->sec_values[i]);
    memset(m, 0, sizeof *m);
}

/* Starlette's ENFORCE_DOMAIN_WILDCARD: '*' only first, and "*" or "*.x". */
static bool host_pattern_ok(const char *p)
{
    if (*p && strchr(p + 1, '*'))
        return false;
    return p[0] != '*' || p[1] == '\0' || p[1] == '.';
}

static bool value_ok(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7F)
            return false;
    }
    return true;
}

static int add_sec(m8_middleware *m, const char *name, const char *value, const char *setting,
                   char *err, size_t errlen)
{
    if (!value_ok(value)) {
        snprintf(err, errlen, "%s contains a control character", setting);
        return M8_ECONFIG;
    }
    char *v = strdup(value);
    if (!v)
        return M8_ENOMEM;
    m->sec_values[m->n_sec] = v;
    m->sec[m->n_sec].name = name;
    m->sec[m->n_sec].value = v;
    m->n_sec++;
    return 0;
}

static int init_sec(m8_middleware *m, const m8_settings *s, char *err, size_t errlen)
{
    if (!s->security_headers_enabled)
        return 0;
    int rc = add_sec(m, "X-Content-Type-Options", "nosniff", "", err, errlen);
    if (!rc)
        rc = add_sec(m, "X-Frame-Options", "DENY", "", err, errlen);
    if (!rc && s->production_gate) {
        rc = add_sec(m, "Referrer-Policy",
                     s->referrer_policy ? s->referrer_policy : DEFAULT_REFERRER_POLICY,
                     "REFERRER_POLICY", err, errlen);
        if (!rc)
            rc = add_sec(m, "Permissions-Policy",
                         s->permissions_policy ? s->permissions_policy : DEFAULT_PERMISSIONS_POLICY,
                         "PERMISSIONS_POLICY", err, errlen);
    }
    if (!rc && s->hsts_enabled && s->hsts_max_age > 0 && s->environment != M8_ENV_LOCAL) {
        char hsts[64];
        snprintf(hsts, sizeof hsts, "max-age=%lld%s", s->hsts_max_age,
                 s->hsts_include_subdomains ? "; includeSubDomains" : "");
        rc = add_sec(m, "Strict-Transport-Security", hsts, "HSTS_MAX_AGE", err, errlen);
        if (!rc)
            m->hsts_value = m->sec_values[m->n_sec - 1];
    }
    if (!rc && s->content_security_policy_enabled && s->environment != M8_ENV_LOCAL) {
        const char *csp = s->content_security_policy && *s->content_security_policy
                              ? s->content_security_policy
                              : DEFAULT_CSP;
        rc = add_sec(m, "Content-Security-Policy", csp, "CONTENT_SECURITY_POLICY", err, errlen);
    }
    return rc;
}

static int copy_list(char ***out, size_t *nout, char *const *items, size_t n, size_t extra)
{
    *out = NULL;
    *nout = 0;
    if (!n && !extra)
        return 0;
    char **v = calloc(n + extra, sizeof *v);
    if (!v)
        return M8_ENOMEM;
    *out = v;
    for (size_t i = 0; i < n; i++) {
        if (!(v[i] = strdup(items[i] ? items[i] : "")))
            return M8_ENOMEM;
        *nout = i + 1;
    }
    return 0;
}

int m8_middleware_init(m8_middleware *m, const m8_settings *s, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    memset(m, 0, sizeof *m);

    /* trusted host: patterns are checked at build time, like Starlette */
    const m8_strlist *ah = &s->allowed_hosts;
    for (size_t i = 0; i < ah->n; i++) {
        const char *p = ah->items[i] ? ah->items[i] : "";
        if (!host_pattern_ok(p)) {
            snprintf(err, errlen,
                     "ALLOWED_HOSTS: invalid pattern \"%s\": domain wildcard "
                     "patterns must be like '*.example.com'",
                     p);
            return M8_ECONFIG;
        }
    }
    int rc = 0;
    if (ah->n) {
        bool any = false, has_testserver = false;
        for (size_t i = 0; i < ah->n; i++) {
            const char *p = ah->items[i] ? ah->items[i] : "";
            any |= strcmp(p, "*") == 0;
            has_testserver |= strcmp(p, "testserver") == 0;
        }
        rc = copy_list(&m->th_patterns, &m->th_n, ah->items, ah->n, 1);
        if (!rc && !s->production_gate && !has_testserver) {
            if (!(m->th_patterns[m->th_n] = strdup("testserver")))
                rc = M8_ENOMEM;
            else
                m->th_n++;
        }
        m->th_enabled = !any;
    }
    if (!rc)
        rc = copy_list(&m->origins, &m->n_origins, s->allowed_origins.items, s->allowed_origins.n,
                       0);
    if (!rc)
        rc = init_sec(m, s, err, errlen);
    if (rc) {
        if (rc == M8_ENOMEM)
            snprintf(err, errlen, "out of memory");
        m8_middleware_free(m);
    }
    return rc;
}

/* ------------------------------------------------------------ trusted host */

static const char *redirect_scheme(const m8_request *req)
{
    const char *rs = m8_req_param(req, "REQUEST_SCHEME");
    if (rs && (strcmp(rs, "https") == 0 || strcmp(rs, "http") == 0))
        return rs;
    const char *https = m8_req_param(req, "HTTPS");
    if (https && (m8_strcaseeq(https, "on") || strcmp(https, "1") == 0))
        return "https";
    return "http";
}

static void www_redirect(m8_request *req, const char *host_header)
{
    m8_buf url, loc;
    m8_buf_init(&url, M8_MAX_PARAMS_BYTES + M8_MAX_PATH_BYTES);
    m8_buf_init(&loc, 3 * (M8_MAX_PARAMS_BYTES + M8_MAX_PATH_BYTES));
    int rc = m8_buf_printf(&url, "%s://www.%s", redirect_scheme(req), host_header);
    const char *uri = m8_req_param(req, "REQUEST_URI");
    if (!rc && uri && uri[0] == '/') {
        rc = m8_buf_puts(&url, uri);
    } else if (!rc) {
        rc = m8_buf_puts(&url, req->path ? req->path : "/");
        if (!rc && req->query_string && *req->query_string)
            rc = m8_buf_printf(&url, "?%s", req->query_string);
    }
    if (!rc)
        rc = m8_redirect_quote(&loc, url.data, url.len);
    if (!rc)
        rc = m8_res_body(req, 307, NULL, NULL, 0);
    if (!rc)
        rc = m8_res_set_header(req, "Location", loc.data);
    if (rc)
        m8_res_body(req, 400, TEXT_PLAIN, "Invalid host header", 19);
    m8_buf_free(&url);
    m8_buf_free(&loc);
}

/* Only "host[:digits]" may be copied into a Location: anything after the
 * host (e.g. "example.com:@evil.com", which a browser reads as userinfo
 * before the host evil.com) makes the request a plain 400. */
static bool redirectable_host(const char *hh, size_t hl)
{
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)hh[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    if (hl == 0 || hh[hl] == '\0')
        return hl > 0;
    const char *port = hh + hl + 1;
    size_t pl = strlen(port);
    if (pl == 0 || pl > 5)
        return false;
    for (size_t i = 0; i < pl; i++) {
        if (port[i] < '0' || port[i] > '9')
            return false;
    }
    return true;
}

bool m8_mw_trusted_host(const m8_middleware *m, m8_request *req)
{
    if (!m->th_enabled)
        return true;
    const char *hh = m8_req_header(req, "host");
    if (!hh)
        hh = "";
    size_t hl = strcspn(hh, ":");
    bool found_www = false;
    for (size_t i = 0; i < m->th_n; i++) {
        const char *p = m->th_patterns[i];
        size_t pl = strlen(p);
        if (pl == hl && memcmp(p, hh, hl) == 0)
            return true;
        if (p[0] == '*' && hl >= pl - 1 && memcmp(hh + hl - (pl - 1), p + 1, pl - 1) == 0)
            return true;
        if (pl == hl + 4 && memcmp(p, "www.", 4) == 0 && memcmp(p + 4, hh, hl) == 0)
            found_www = true;
    }
    if (found_www && redirectable_host(hh, hl))
        www_redirect(req, hh);
    else
        m8_res_body(req, 400, TEXT_PLAIN, "Invalid host header", 19);
    return false;
}

/* ------------------------------------------------------------ CORS */

static bool origin_allowed(const m8_middleware *m, const char *origin)
{
    for (size_t i = 0; i < m->n_origins; i++) {
        if (strcmp(m->origins[i], origin) == 0)
            return true;
    }
    return false;
}

static bool is_py_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Each comma-separated item, lower-cased and trimmed, must be allowed; an
 * empty item fails (Starlette). */
static bool requested_headers_ok(const char *list)
{
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *item = p;
        size_t n = len;
        while (n && is_py_space(*item)) {
            item++;
            n--;
        }
        while (n && is_py_space(item[n - 1]))
            n--;
        bool ok = false;
        for (size_t i = 0; i < M8_ARRAY_LEN(cors_headers) && !ok; i++)
            ok = m8_memcaseeq(item, n, cors_headers[i]);
        if (!ok)
            return false;
        if (p[len] != ',')
            return true;
        p += len + 1;
    }
}

bool m8_mw_cors_preflight(const m8_middleware *m, m8_request *req)
{
    const char *origin = m8_req_header(req, "origin");
    const char *acrm = m8_req_header(req, "access-control-request-method");
    if (!origin || !req->method || strcmp(req->method, "OPTIONS") != 0 || !acrm)
        return false;
    const char *acrh = m8_req_header(req, "access-control-request-headers");
    const char *pna = m8_req_header(req, "access-control-request-private-network");

    bool allowed = origin_allowed(m, origin);
    bool method_ok = false;
    for (size_t i = 0; i < M8_ARRAY_LEN(cors_methods); i++)
        method_ok |= strcmp(acrm, cors_methods[i]) == 0;
    const char *failures[4];
    size_t nf = 0;
    if (!allowed)
        failures[nf++] = "origin";
    if (!method_ok)
        failures[nf++] = "method";
    if (acrh && !requested_headers_ok(acrh))
        failures[nf++] = "headers";
    if (pna)
        failures[nf++] = "private-network";

    m8_res_set_header(req, "Vary", "Origin");
    m8_res_set_header(req, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    m8_res_set_header(req, "Access-Control-Max-Age", CORS_MAX_AGE);
    m8_res_set_header(req, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    m8_res_set_header(req, "Access-Control-Allow-Credentials", "true");
    if (allowed)
        m8_res_set_header(req, "Access-Control-Allow-Origin", origin);
    if (!nf) {
        m8_res_body(req, 200, TEXT_PLAIN, "OK", 2);
        return true;
    }
    char text[80];
    size_t o = (size_t)snprintf(text, sizeof text, "Disallowed CORS ");
    for (size_t i = 0; i < nf; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%s%s", i ? ", " : "", failures[i]);
    m8_res_body(req, 400, TEXT_PLAIN, text, o);
    return true;
}

void m8_mw_cors_response(const m8_middleware *m, m8_request *req)
{
    const char *origin = m8_req_header(req, "origin");
    if (!origin)
        return;
    if (req->method && strcmp(req->method, "OPTIONS") == 0 &&
        m8_req_header(req, "access-control-request-method"))
        return;
    m8_res_set_header(req, "Access-Control-Allow-Credentials", "true");
    if (origin_allowed(m, origin)) {
        if (m8_res_set_header(req, "Access-Control-Allow-Origin", origin) == 0)
            m8_res_add_vary(req, "Origin");
    }
}

/* ------------------------------------------------------------ security headers */

void m8_mw_security_headers(const m8_middleware *m, m8_request *req)
{
    /* remove then append, so the tiers keep their emission order */
    for (size_t i = 0; i < m->n_sec; i++) {
        m8_res_remove_header(req, m->sec[i].name);
        m8_res_set_checked(req, m->sec[i].name, m->sec[i].value); /* checked by add_sec */
    }
}

/* ------------------------------------------------------------ request id */

static _Thread_local bool rid_ready;
static _Thread_local char rid_prefix[17];
static _Thread_local uint64_t rid_counter;
static pthread_once_t rid_once = PTHREAD_ONCE_INIT;

/* A forked child must draw its own prefix: the parent's thread state is
 * copied into it. */
static void rid_after_fork(void)
{
    rid_ready = false;
}

static void rid_global_init(void)
{
    if (sodium_init() < 0)
        abort();
    pthread_atfork(NULL, NULL, rid_after_fork);
}

static bool valid_request_id(const char *id)
{
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        if (n >= M8_MAX_REQUEST_ID)
            return false;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

void m8_mw_request_id(m8_request *req)
{
    const char *client = m8_req_header(req, "x-request-id");
    const char *id = NULL;
    if (client && valid_request_id(client)) {
        id = client;
    } else {
        if (!rid_ready) {
            pthread_once(&rid_once, rid_global_init);
            unsigned char rnd[8];
            randombytes_buf(rnd, sizeof rnd);
            for (size_t i = 0; i < sizeof rnd; i++)
                snprintf(rid_prefix + 2 * i, 3, "%02x", rnd[i]);
            rid_counter = 0;
            rid_ready = true;
        }
        static const char hex[] = "0123456789abcdef";
        char buf[33];
        memcpy(buf, rid_prefix, 16);
        unsigned long long n = ++rid_counter;
        for (int i = 31; i >= 16; i--, n >>= 4)
            buf[i] = hex[n & 15];
        buf[32] = '\0';
        id = m8_arena_strndup(&req->arena, buf, 32);
    }
    if (!id)
        return;
    req->request_id = id;
    /* either the client's, checked by valid_request_id, or ours: both live
     * as long as the request */
    m8_res_set_checked(req, "X-Request-ID", id);
}
