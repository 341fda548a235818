/* request.c - the request model (http.h): lifecycle, a request built from
 * FastCGI/CGI params (method, path, query, headers, body), the JSON body and
 * the accessors.  Pure: no I/O. */
#include "http/http_int.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "http/router.h"

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
    req->cgi_content_length = req->cgi_redirect_auth = NULL;
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
    req->api_key_scope = NULL;
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

/* ------------------------------------------------------------ request input */

/* What from_params makes of a param's name: a request header, or one of
 * the CGI variables it reads (the first of each wins), or nothing. */
enum {
    P_OTHER,
    P_HEADER,         /* HTTP_x, CONTENT_TYPE */
    P_CONTENT_LENGTH, /* a header too */
    P_REDIRECT_AUTH,
    P_METHOD,
    P_URI,
    P_QUERY,
    P_SCRIPT,
    P_PATH_INFO,
    P_KINDS
};

/* The name's length and first byte settle all but one comparison, instead
 * of a scan of every param per variable (nginx sends 20 or more). */
static unsigned char param_kind(const char *nm, size_t len)
{
#define IS(lit) (len == sizeof lit - 1 && memcmp(nm, lit, sizeof lit - 1) == 0)
    switch (nm[0]) {
    case 'H': return len > 5 && memcmp(nm, "HTTP_", 5) == 0 ? P_HEADER : P_OTHER;
    case 'C':
        return IS("CONTENT_TYPE") ? P_HEADER : IS("CONTENT_LENGTH") ? P_CONTENT_LENGTH : P_OTHER;
    case 'R':
        return IS("REQUEST_METHOD")                ? P_METHOD
               : IS("REQUEST_URI")                 ? P_URI
               : IS("REDIRECT_HTTP_AUTHORIZATION") ? P_REDIRECT_AUTH
                                                   : P_OTHER;
    case 'Q': return IS("QUERY_STRING") ? P_QUERY : P_OTHER;
    case 'S': return IS("SCRIPT_NAME") ? P_SCRIPT : P_OTHER;
    case 'P': return IS("PATH_INFO") ? P_PATH_INFO : P_OTHER;
    default: return P_OTHER;
    }
#undef IS
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
    unsigned char kind[M8_MAX_PARAMS];
    const char *var[P_KINDS] = {NULL};
    size_t total = 0, n_headers = 0;
    for (size_t i = 0; i < n; i++) {
        if (!params[i].name)
            return M8_EINVAL;
        size_t nl = strlen(params[i].name);
        size_t len = nl + (params[i].value ? strlen(params[i].value) : 0);
        if (len > M8_MAX_PARAMS_BYTES - total)
            return M8_ETOOBIG;
        total += len;
        kind[i] = param_kind(params[i].name, nl);
        n_headers +=
            kind[i] == P_HEADER || kind[i] == P_CONTENT_LENGTH || kind[i] == P_REDIRECT_AUTH;
    }
    if (req->t_start == 0)
        req->t_start = m8_now_mono();
    m8_arena *a = &req->arena;

    /* params: copied unless the caller keeps them alive for the request */
    m8_pair *ps = NULL;
    if (n && !(ps = m8_arena_alloc(a, n * sizeof *ps)))
        return M8_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *v = params[i].value ? params[i].value : "";
        ps[i].name = copy ? m8_arena_strdup(a, params[i].name) : params[i].name;
        ps[i].value = copy ? m8_arena_strdup(a, v) : v;
        if (!ps[i].name || !ps[i].value)
            return M8_ENOMEM;
        if (kind[i] != P_OTHER && !var[kind[i]])
            var[kind[i]] = ps[i].value;
    }
    req->params = ps;
    req->n_params = n;
    req->cgi_content_length = var[P_CONTENT_LENGTH];
    req->cgi_redirect_auth = var[P_REDIRECT_AUTH];

    /* headers: HTTP_*, CONTENT_TYPE, CONTENT_LENGTH; Apache may hand the
     * Authorization only as REDIRECT_HTTP_AUTHORIZATION (doc/design.md#authorization-header) */
    m8_pair *hs = NULL;
    if (n_headers && !(hs = m8_arena_alloc(a, n_headers * sizeof *hs)))
        return M8_ENOMEM;
    size_t nh = 0;
    bool have_auth = false;
    for (size_t i = 0; i < n; i++) {
        if (kind[i] != P_HEADER && kind[i] != P_CONTENT_LENGTH)
            continue;
        const char *nm = ps[i].name;
        const char *hn;
        if (nm[0] == 'H') {
            hn = header_name(a, nm + 5);
            if (hn && strcmp(hn, "authorization") == 0)
                have_auth = true;
        } else {
            hn = kind[i] == P_CONTENT_LENGTH ? "content-length" : "content-type";
        }
        if (!hn)
            return M8_ENOMEM;
        hs[nh].name = hn;
        hs[nh].value = ps[i].value;
        nh++;
    }
    if (var[P_REDIRECT_AUTH] && !have_auth) {
        hs[nh].name = "authorization";
        hs[nh].value = var[P_REDIRECT_AUTH];
        nh++;
    }
    req->headers = hs;
    req->n_headers = nh;

    /* method */
    const char *method = var[P_METHOD];
    if (!m8__http_is_token(method))
        return M8_EPARSE;
    req->method = method;

    /* path: REQUEST_URI up to '?', percent-decoded; else SCRIPT_NAME +
     * PATH_INFO, which CGI servers pass already decoded.  A CGI program
     * routes by PATH_INFO alone: SCRIPT_NAME is where it is mounted. */
    const char *uri = req->cgi ? NULL : var[P_URI];
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
        const char *sn = req->cgi ? NULL : var[P_SCRIPT];
        const char *pi = var[P_PATH_INFO];
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
            char *fixed = m8__http_utf8_fix(a, path, ls + lp);
            if (!fixed)
                return M8_ENOMEM;
            req->path = fixed;
        }
    }

    /* query: QUERY_STRING, else what REQUEST_URI carries after '?' */
    const char *qs = var[P_QUERY];
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
