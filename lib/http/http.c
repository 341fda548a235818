/* http.c - the request and response model (http.h): a request built from
 * FastCGI/CGI params, query/path decoding, the JSON body, the response and
 * its CGI rendering.  Pure: no I/O. */
#include "http/http.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "http/router.h"

/* Headers the library itself may add (security tiers, CORS, request id) on
 * top of the M8_MAX_RESPONSE_HEADERS a handler may set. */
#define RES_HEADERS_RESERVE 16u
/* Response buffers up to this size are kept across requests. */
#define RES_BODY_KEEP (1u << 20)
/* Longest m8_req_fail() reason kept (longer ones are cut). */
#define FAIL_REASON_MAX 512u

/* ------------------------------------------------------------ lifecycle */

static void req_clear(m8_request *req)
{
    req->params = req->headers = req->query = req->path_params = NULL;
    req->n_params = req->n_headers = req->n_query = req->n_path_params = 0;
    req->method = req->path = NULL;
    req->query_string = "";
    req->body = "";
    req->body_len = 0;
    req->json = NULL;
    req->route = NULL;
    req->route_label = "unmatched";
    req->request_id = NULL;
    req->t_start = 0;
    req->status = 0;
    req->res_headers = NULL;
    req->n_res_headers = req->cap_res_headers = 0;
    req->content_type = NULL;
    req->fail_reason = NULL;
    req->authorizer = false;
    req->user = NULL; /* lived in the arena: never carried to the next request */
}

void m8_req_init(m8_request *req, struct m8_app *app)
{
    memset(req, 0, sizeof *req);
    m8_arena_init(&req->arena, 0);
    m8_buf_init(&req->body_out, M8_MAX_RESPONSE_BYTES);
    req->app = app;
    req_clear(req);
}

void m8_req_reset(m8_request *req)
{
    if (req->json)
        json_object_put(req->json);
    m8_arena_reset(&req->arena);
    /* keep a modest allocation for the next request; give a big one back */
    if (req->body_out.cap > RES_BODY_KEEP)
        m8_buf_free(&req->body_out);
    else
        m8_buf_reset(&req->body_out);
    req_clear(req);
}

void m8_req_free(m8_request *req)
{
    if (req->json)
        json_object_put(req->json);
    m8_arena_free(&req->arena);
    m8_buf_free(&req->body_out);
    req_clear(req);
}

/* ------------------------------------------------------------ decoding */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Bytes to consume at p: a whole valid UTF-8 sequence (*valid = true), or
 * the maximal invalid subpart that Python's "replace" handler turns into one
 * U+FFFD (*valid = false). */
static size_t utf8_step(const unsigned char *p, size_t n, bool *valid)
{
    unsigned char c = p[0];
    *valid = true;
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *valid = false;
        return 1;
    }
    size_t i = 1;
    for (; i < len && i < n; i++) {
        unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (p[i] < lo_i || p[i] > hi_i)
            break;
    }
    if (i < len)
        *valid = false;
    return i;
}

/* Replaces invalid UTF-8 in s[0..n) by U+FFFD, like Python's unquote();
 * returns s itself when it is valid. */
static char *utf8_fix(m8_arena *a, char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t bad = 0;
    bool valid;
    for (size_t i = 0; i < n;) {
        i += utf8_step(p + i, n - i, &valid);
        if (!valid)
            bad++;
    }
    if (!bad)
        return s;
    char *out = m8_arena_alloc(a, n + 2 * bad + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_step(p + i, n - i, &valid);
        if (valid) {
            memcpy(out + o, s + i, k);
            o += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i += k;
    }
    out[o] = '\0';
    return out;
}

/* Percent-decodes s[0..n) into the arena; %00 and a raw NUL are M8_EPARSE.
 * A query component (query=true) reads '+' as a space and keeps a malformed
 * escape as it is (Starlette); a path refuses a malformed escape.  Invalid
 * UTF-8 becomes U+FFFD. */
static int percent_decode(m8_arena *a, const char *s, size_t n, bool query, char **out)
{
    char *d = m8_arena_alloc(a, n + 1);
    if (!d)
        return M8_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\0')
            return M8_EPARSE;
        int hi = -1, lo = -1;
        if (c == '%' && n - i >= 3) {
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
        }
        if (c == '+' && query) {
            d[o++] = ' ';
        } else if (c == '%' && hi >= 0 && lo >= 0) {
            if (hi == 0 && lo == 0)
                return M8_EPARSE;
            d[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '%' && !query) {
            return M8_EPARSE;
        } else {
            d[o++] = (char)c;
        }
    }
    d[o] = '\0';
    char *fixed = utf8_fix(a, d, o);
    if (!fixed)
        return M8_ENOMEM;
    *out = fixed;
    return 0;
}

static int decode_component(m8_arena *a, const char *s, size_t n, const char **out)
{
    char *d;
    int rc = percent_decode(a, s, n, true, &d);
    if (rc == 0)
        *out = d;
    return rc;
}

int m8_parse_query(m8_arena *a, const char *qs, size_t n, m8_pair **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        const char *amp = memchr(qs + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - qs) : n;
        if (end > i)
            count++;
        i = end + 1;
    }
    if (count > M8_MAX_QUERY_PARAMS)
        return M8_ETOOBIG;
    if (!count)
        return 0;
    m8_pair *pairs = m8_arena_alloc(a, count * sizeof *pairs);
    if (!pairs)
        return M8_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const char *amp = memchr(qs + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - qs) : n;
        if (end > i) {
            const char *seg = qs + i;
            size_t len = end - i;
            const char *eq = memchr(seg, '=', len);
            size_t nlen = eq ? (size_t)(eq - seg) : len;
            int rc = decode_component(a, seg, nlen, &pairs[k].name);
            if (!rc) {
                if (eq)
                    rc = decode_component(a, eq + 1, len - nlen - 1, &pairs[k].value);
                else
                    pairs[k].value = "";
            }
            if (rc)
                return rc;
            k++;
        }
        i = end + 1;
    }
    *out = pairs;
    *nout = k;
    return 0;
}

int m8_decode_path(m8_arena *a, const char *p, size_t n, char **out)
{
    *out = NULL;
    return percent_decode(a, p, n, false, out);
}

/* Appends url[0..n) quoted the way Starlette's RedirectResponse quotes its
 * Location (Python quote() with safe ":/%#?=@[]!$&'()*+,;"). */
int m8_redirect_quote(m8_buf *out, const char *url, size_t n)
{
    static const char safe[] = ":/%#?=@[]!$&'()*+,;_.-~";
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)url[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            (c && strchr(safe, c))) {
            rc = m8_buf_putc(out, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = m8_buf_append(out, esc, 3);
        }
    }
    return rc;
}

/* ------------------------------------------------------------ request input */

static const char *param_get(const m8_pair *params, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (params[i].name && strcmp(params[i].name, name) == 0)
            return params[i].value;
    }
    return NULL;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (!is_tchar((unsigned char)*s))
            return false;
    }
    return true;
}

/* "HTTP_X_REQUEST_ID" -> "x-request-id" in the arena. */
static char *header_name(m8_arena *a, const char *cgi)
{
    size_t n = strlen(cgi);
    char *h = m8_arena_alloc(a, n + 1);
    if (!h)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = cgi[i];
        h[i] = c == '_' ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    h[n] = '\0';
    return h;
}

static int from_params(m8_request *req, const m8_pair *params, size_t n, const char *body,
                       size_t body_len, bool copy)
{
    if (n && !params)
        return M8_EINVAL;
    if (body_len && !body)
        return M8_EINVAL;
    if (n > M8_MAX_PARAMS)
        return M8_ETOOBIG;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!params[i].name)
            return M8_EINVAL;
        size_t len = strlen(params[i].name) + (params[i].value ? strlen(params[i].value) : 0);
        if (len > M8_MAX_PARAMS_BYTES - total)
            return M8_ETOOBIG;
        total += len;
    }
    if (req->t_start == 0)
        req->t_start = m8_now_mono();
    m8_arena *a = &req->arena;

    /* params: copied unless the caller keeps them alive for the request */
    m8_pair *ps = NULL;
    if (n && !(ps = m8_arena_alloc(a, n * sizeof *ps)))
        return M8_ENOMEM;
    size_t n_headers = 0;
    for (size_t i = 0; i < n; i++) {
        const char *v = params[i].value ? params[i].value : "";
        ps[i].name = copy ? m8_arena_strdup(a, params[i].name) : params[i].name;
        ps[i].value = copy ? m8_arena_strdup(a, v) : v;
        if (!ps[i].name || !ps[i].value)
            return M8_ENOMEM;
        const char *nm = ps[i].name;
        if ((strncmp(nm, "HTTP_", 5) == 0 && nm[5]) || strcmp(nm, "CONTENT_TYPE") == 0 ||
            strcmp(nm, "CONTENT_LENGTH") == 0 || strcmp(nm, "REDIRECT_HTTP_AUTHORIZATION") == 0)
            n_headers++;
    }
    req->params = ps;
    req->n_params = n;

    /* headers: HTTP_*, CONTENT_TYPE, CONTENT_LENGTH; Apache may hand the
     * Authorization only as REDIRECT_HTTP_AUTHORIZATION (PITFALLS 9) */
    m8_pair *hs = NULL;
    if (n_headers && !(hs = m8_arena_alloc(a, n_headers * sizeof *hs)))
        return M8_ENOMEM;
    size_t nh = 0;
    const char *redirect_auth = NULL;
    bool have_auth = false;
    for (size_t i = 0; i < n; i++) {
        const char *nm = ps[i].name;
        const char *hn = NULL;
        if (strncmp(nm, "HTTP_", 5) == 0 && nm[5]) {
            hn = header_name(a, nm + 5);
            if (hn && strcmp(hn, "authorization") == 0)
                have_auth = true;
        } else if (strcmp(nm, "CONTENT_TYPE") == 0) {
            hn = "content-type";
        } else if (strcmp(nm, "CONTENT_LENGTH") == 0) {
            hn = "content-length";
        } else if (strcmp(nm, "REDIRECT_HTTP_AUTHORIZATION") == 0) {
            if (!redirect_auth)
                redirect_auth = ps[i].value;
            continue;
        } else {
            continue;
        }
        if (!hn)
            return M8_ENOMEM;
        hs[nh].name = hn;
        hs[nh].value = ps[i].value;
        nh++;
    }
    if (redirect_auth && !have_auth) {
        hs[nh].name = "authorization";
        hs[nh].value = redirect_auth;
        nh++;
    }
    req->headers = hs;
    req->n_headers = nh;

    /* method */
    const char *method = param_get(ps, n, "REQUEST_METHOD");
    if (!is_token(method))
        return M8_EPARSE;
    req->method = method;

    /* path: REQUEST_URI up to '?', percent-decoded; else SCRIPT_NAME +
     * PATH_INFO, which CGI servers pass already decoded.  A CGI program
     * routes by PATH_INFO alone: SCRIPT_NAME is where it is mounted. */
    const char *uri = req->cgi ? NULL : param_get(ps, n, "REQUEST_URI");
    const char *uri_query = NULL;
    if (uri && *uri) {
        const char *p = uri;
        if (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0) {
            /* absolute-form request target: keep the path only */
            p = strstr(p, "://") + 3;
            p += strcspn(p, "/?");
        }
        size_t plen = strcspn(p, "?");
        if (p[plen] == '?')
            uri_query = p + plen + 1;
        if (plen > M8_MAX_PATH_BYTES)
            return M8_ETOOBIG;
        if (plen == 0) {
            req->path = "/";
        } else {
            if (p[0] != '/')
                return M8_EPARSE;
            char *path;
            int rc = m8_decode_path(a, p, plen, &path);
            if (rc)
                return rc;
            req->path = path;
        }
    } else {
        const char *sn = req->cgi ? NULL : param_get(ps, n, "SCRIPT_NAME");
        const char *pi = param_get(ps, n, "PATH_INFO");
        sn = sn ? sn : "";
        pi = pi ? pi : "";
        size_t ls = strlen(sn), lp = strlen(pi);
        if (ls + lp > M8_MAX_PATH_BYTES)
            return M8_ETOOBIG;
        if (ls + lp == 0) {
            req->path = "/";
        } else {
            char *path = m8_arena_alloc(a, ls + lp + 1);
            if (!path)
                return M8_ENOMEM;
            memcpy(path, sn, ls);
            memcpy(path + ls, pi, lp);
            path[ls + lp] = '\0';
            if (path[0] != '/')
                return M8_EPARSE;
            char *fixed = utf8_fix(a, path, ls + lp);
            if (!fixed)
                return M8_ENOMEM;
            req->path = fixed;
        }
    }

    /* query: QUERY_STRING, else what REQUEST_URI carries after '?' */
    const char *qs = param_get(ps, n, "QUERY_STRING");
    if (!qs)
        qs = uri_query ? uri_query : "";
    req->query_string = qs;
    int rc = m8_parse_query(a, qs, strlen(qs), &req->query, &req->n_query);
    if (rc)
        return rc;

    /* body */
    if (body_len && !copy) {
        req->body = body;
    } else if (body_len) {
        char *b = m8_arena_alloc(a, body_len + 1);
        if (!b)
            return M8_ENOMEM;
        memcpy(b, body, body_len);
        b[body_len] = '\0';
        req->body = b;
    } else {
        req->body = "";
    }
    req->body_len = body_len;
    return 0;
}

int m8_req_from_params(m8_request *req, const m8_pair *params, size_t n, const char *body,
                       size_t body_len)
{
    return from_params(req, params, n, body, body_len, true);
}

int m8_req_adopt_params(m8_request *req, const m8_pair *params, size_t n, const char *body,
                        size_t body_len)
{
    if (body_len && body && body[body_len] != '\0')
        return M8_EINVAL;
    return from_params(req, params, n, body, body_len, false);
}

/* ------------------------------------------------------------ JSON body */

static int json_fail(m8_request *req, size_t pos, const char *reason)
{
    json_object *item = json_object_new_object();
    json_object *loc = json_object_new_array();
    json_object *ctx = json_object_new_object();
    json_object *detail = json_object_new_array();
    json_object *root = json_object_new_object();
    if (!item || !loc || !ctx || !detail || !root) {
        json_object_put(item);
        json_object_put(loc);
        json_object_put(ctx);
        json_object_put(detail);
        json_object_put(root);
        return M8_ENOMEM;
    }
    json_object_array_add(loc, json_object_new_string("body"));
    json_object_array_add(loc, json_object_new_int64((int64_t)pos));
    json_object_object_add(ctx, "error", json_object_new_string(reason));
    json_object_object_add(item, "type", json_object_new_string("json_invalid"));
    json_object_object_add(item, "loc", loc);
    json_object_object_add(item, "msg", json_object_new_string("JSON decode error"));
    json_object_object_add(item, "input", json_object_new_object());
    json_object_object_add(item, "ctx", ctx);
    json_object_array_add(detail, item);
    json_object_object_add(root, "detail", detail);
    m8_res_json(req, 422, root);
    return M8_EPARSE;
}

int m8_req_parse_json(m8_request *req)
{
    if (req->json) {
        json_object_put(req->json);
        req->json = NULL;
    }
    if (req->body_len == 0) {
        static const char missing[] =
            "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\"],\"msg\":\"Field required\","
            "\"input\":null}]}";
        m8_res_body(req, 422, "application/json", missing, sizeof missing - 1);
        return M8_EPARSE;
    }
    size_t at = 0;
    const char *why = NULL;
    json_object *obj = m8_json_parse(req->body, req->body_len, M8_MAX_JSON_DEPTH, &at, &why);
    if (!obj && why)
        return json_fail(req, at, why);
    req->json = obj;
    return 0;
}

/* ------------------------------------------------------------ accessors */

static const char *pair_get_ci(const m8_pair *ps, size_t n, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (m8_strcaseeq(ps[i].name, name))
            return ps[i].value;
    }
    return NULL;
}

static const char *pair_get(const m8_pair *ps, size_t n, const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ps[i].name, name) == 0)
            return ps[i].value;
    }
    return NULL;
}

const char *m8_req_method(const m8_request *req)
{
    return req ? req->method : NULL;
}

const char *m8_req_path(const m8_request *req)
{
    return req ? req->path : NULL;
}

const char *m8_req_query_string(const m8_request *req)
{
    return req ? req->query_string : NULL;
}

const char *m8_req_header(const m8_request *req, const char *name)
{
    return req ? pair_get_ci(req->headers, req->n_headers, name) : NULL;
}

const char *m8_req_query(const m8_request *req, const char *name)
{
    return req ? pair_get(req->query, req->n_query, name) : NULL;
}

const char *m8_req_path_param(const m8_request *req, const char *name)
{
    return req ? pair_get(req->path_params, req->n_path_params, name) : NULL;
}

const char *m8_req_param(const m8_request *req, const char *name)
{
    return req ? pair_get(req->params, req->n_params, name) : NULL;
}

const void *m8_req_body(const m8_request *req, size_t *len)
{
    if (len)
        *len = req ? req->body_len : 0;
    return req ? req->body : NULL;
}

struct json_object *m8_req_json(const m8_request *req)
{
    return req ? req->json : NULL;
}

const char *m8_req_route(const m8_request *req)
{
    return req && req->route ? req->route->template : NULL;
}

const char *m8_req_id(const m8_request *req)
{
    return req ? req->request_id : NULL;
}

m8_app *m8_req_app(const m8_request *req)
{
    return req ? req->app : NULL;
}

void *m8_req_alloc(m8_request *req, size_t n)
{
    return req ? m8_arena_alloc(&req->arena, n) : NULL;
}

int m8_req_fail(m8_request *req, const char *fmt, ...)
{
    if (!req || !fmt)
        return -1;
    char tmp[FAIL_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n >= 0) {
        char *r = m8_arena_strdup(&req->arena, tmp);
        if (r)
            req->fail_reason = r;
    }
    return -1;
}

/* ------------------------------------------------------------ response */

static bool valid_header_value(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7F)
            return false;
    }
    return true;
}

static bool valid_status(int status)
{
    return status >= 100 && status <= 599;
}

static int set_content_type(m8_request *req, const char *ct)
{
    if (!ct) {
        req->content_type = NULL;
        return 0;
    }
    if (!valid_header_value(ct))
        return M8_EINVAL;
    const char *c = m8_arena_strdup(&req->arena, ct);
    if (!c)
        return M8_ENOMEM;
    req->content_type = c;
    return 0;
}

/* Headers the renderer writes itself: a handler cannot set them. */
static bool reserved_header(const char *name)
{
    return m8_strcaseeq(name, "Content-Length") || m8_strcaseeq(name, "Status");
}

static int check_header(const char *name, const char *value)
{
    if (!is_token(name) || !value || !valid_header_value(value) || reserved_header(name))
        return M8_EINVAL;
    return 0;
}

static int append_header(m8_request *req, const char *name, const char *value, size_t limit)
{
    if (req->n_res_headers >= limit)
        return M8_ETOOBIG;
    if (!req->res_headers) {
        size_t cap = M8_MAX_RESPONSE_HEADERS + RES_HEADERS_RESERVE;
        req->res_headers = m8_arena_alloc(&req->arena, cap * sizeof *req->res_headers);
        if (!req->res_headers)
            return M8_ENOMEM;
        req->cap_res_headers = cap;
    }
    const char *n = m8_arena_strdup(&req->arena, name);
    const char *v = m8_arena_strdup(&req->arena, value);
    if (!n || !v)
        return M8_ENOMEM;
    req->res_headers[req->n_res_headers].name = n;
    req->res_headers[req->n_res_headers].value = v;
    req->n_res_headers++;
    return 0;
}

/* Validates a header for m8_res_header / m8_res_set_header and handles
 * Content-Type (one value, kept apart): negative = error, 1 = done, 0 = go on. */
static int header_prelude(m8_request *req, const char *name, const char *value)
{
    if (!req)
        return M8_EINVAL;
    int rc = check_header(name, value);
    if (rc)
        return rc;
    if (m8_strcaseeq(name, "Content-Type")) {
        rc = set_content_type(req, value);
        return rc ? rc : 1;
    }
    return 0;
}

int m8_res_header(m8_request *req, const char *name, const char *value)
{
    int rc = header_prelude(req, name, value);
    if (rc)
        return rc < 0 ? rc : 0;
    return append_header(req, name, value, M8_MAX_RESPONSE_HEADERS);
}

void m8_res_remove_header(m8_request *req, const char *name)
{
    size_t o = 0;
    for (size_t i = 0; i < req->n_res_headers; i++) {
        if (!m8_strcaseeq(req->res_headers[i].name, name))
            req->res_headers[o++] = req->res_headers[i];
    }
    req->n_res_headers = o;
}

int m8_res_set_header(m8_request *req, const char *name, const char *value)
{
    int rc = header_prelude(req, name, value);
    if (rc)
        return rc < 0 ? rc : 0;
    for (size_t i = 0; i < req->n_res_headers; i++) {
        if (m8_strcaseeq(req->res_headers[i].name, name)) {
            const char *n = m8_arena_strdup(&req->arena, name);
            const char *v = m8_arena_strdup(&req->arena, value);
            if (!n || !v)
                return M8_ENOMEM;
            req->res_headers[i].name = n;
            req->res_headers[i].value = v;
            /* drop later duplicates, as Starlette's MutableHeaders does */
            size_t o = i + 1;
            for (size_t j = i + 1; j < req->n_res_headers; j++) {
                if (!m8_strcaseeq(req->res_headers[j].name, name))
                    req->res_headers[o++] = req->res_headers[j];
            }
            req->n_res_headers = o;
            return 0;
        }
    }
    return append_header(req, name, value, M8_MAX_RESPONSE_HEADERS + RES_HEADERS_RESERVE);
}

int m8_res_add_vary(m8_request *req, const char *value)
{
    if (!req || !value)
        return M8_EINVAL;
    const char *cur = m8_res_get_header(req, "Vary");
    if (!cur)
        return m8_res_set_header(req, "Vary", value);
    size_t lc = strlen(cur), lv = strlen(value);
    char *joined = m8_arena_alloc(&req->arena, lc + 2 + lv + 1);
    if (!joined)
        return M8_ENOMEM;
    memcpy(joined, cur, lc);
    memcpy(joined + lc, ", ", 2);
    memcpy(joined + lc + 2, value, lv + 1);
    return m8_res_set_header(req, "Vary", joined);
}

const char *m8_res_get_header(const m8_request *req, const char *name)
{
    if (!req || !name)
        return NULL;
    if (m8_strcaseeq(name, "Content-Type"))
        return req->content_type;
    for (size_t i = 0; i < req->n_res_headers; i++) {
        if (m8_strcaseeq(req->res_headers[i].name, name))
            return req->res_headers[i].value;
    }
    return NULL;
}

int m8_res_body(m8_request *req, int status, const char *content_type, const void *data, size_t len)
{
    if (!req || !valid_status(status) || (len && !data))
        return M8_EINVAL;
    if (len > M8_MAX_RESPONSE_BYTES)
        return M8_ETOOBIG;
    if (content_type && !valid_header_value(content_type))
        return M8_EINVAL;
    m8_buf_reset(&req->body_out);
    int rc = m8_buf_append(&req->body_out, data, len);
    if (rc)
        return rc;
    rc = set_content_type(req, content_type);
    if (rc)
        return rc;
    req->status = status;
    return 0;
}

int m8_res_json(m8_request *req, int status, struct json_object *obj)
{
    if (!req || !valid_status(status)) {
        json_object_put(obj);
        return M8_EINVAL;
    }
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    int rc = s ? m8_res_body(req, status, "application/json", s, len) : M8_ENOMEM;
    json_object_put(obj);
    return rc;
}

int m8_res_error(m8_request *req, int status, const char *detail)
{
    if (!req || !valid_status(status))
        return M8_EINVAL;
    m8_buf b;
    m8_buf_init(&b, M8_MAX_RESPONSE_BYTES);
    const char *d = detail ? detail : "";
    int rc = m8_buf_puts(&b, "{\"detail\":");
    if (!rc)
        rc = m8_buf_json_str(&b, d, strlen(d));
    if (!rc)
        rc = m8_buf_putc(&b, '}');
    if (!rc)
        rc = m8_res_body(req, status, "application/json", b.data, b.len);
    m8_buf_free(&b);
    return rc;
}

const char *m8_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 511: return "Network Authentication Required";
    default: return "";
    }
}

int m8_res_render(const m8_request *req, bool head_only, m8_buf *out)
{
    int status = req->status ? req->status : 500;
    const char *reason = m8_status_reason(status);
    int rc = m8_buf_printf(out, "Status: %d%s%s\r\n", status, *reason ? " " : "", reason);
    if (!rc && req->content_type)
        rc = m8_buf_printf(out, "Content-Type: %s\r\n", req->content_type);
    /* like Starlette: no Content-Length (and no body) on 1xx, 204, 304 */
    bool bodiless = status < 200 || status == 204 || status == 304;
    if (!rc && !bodiless)
        rc = m8_buf_printf(out, "Content-Length: %zu\r\n", req->body_out.len);
    for (size_t i = 0; !rc && i < req->n_res_headers; i++)
        rc = m8_buf_printf(out, "%s: %s\r\n", req->res_headers[i].name, req->res_headers[i].value);
    if (!rc)
        rc = m8_buf_puts(out, "\r\n");
    if (!rc && !head_only && !bodiless && req->body_out.len)
        rc = m8_buf_append(out, req->body_out.data, req->body_out.len);
    return rc;
}
