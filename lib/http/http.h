/* http.h - the request and response model (doc/design.md#http-and-routing).
 * A request is built from FastCGI/CGI params and body bytes; everything it
 * owns lives in its arena and dies with it.  Pure: no I/O. */
#ifndef M8_HTTP_H
#define M8_HTTP_H

#include "core/common.h"

struct json_object;
struct m8_route_entry;

typedef struct m8_str {
    const char *p;
    size_t n;
} m8_str;

typedef struct m8_pair {
    const char *name; /* params: as sent; headers: lower-case with '-' ("content-type") */
    const char *value;
} m8_pair;

typedef struct m8_hdr {
    const char *name; /* canonical capitalisation, e.g. "Content-Type" */
    const char *value;
} m8_hdr;

struct m8_request {
    m8_arena arena;
    struct m8_app *app;

    /* input */
    m8_pair *params;
    size_t n_params; /* raw FastCGI/CGI params */
    m8_pair *headers;
    size_t n_headers; /* from HTTP_*, CONTENT_TYPE, CONTENT_LENGTH */
    m8_pair *query;
    size_t n_query; /* decoded query parameters, in order */
    m8_pair *path_params;
    size_t n_path_params;
    const char *method;
    const char *path;         /* percent-decoded path, no query */
    const char *query_string; /* raw, "" when none */
    /* The first CONTENT_LENGTH and REDIRECT_HTTP_AUTHORIZATION params, or NULL. */
    const char *cgi_content_length, *cgi_redirect_auth;
    const char *body;
    size_t body_len;
    struct json_object *json;           /* parsed body (M8_ROUTE_JSON_BODY), owned */
    const struct m8_route_entry *route; /* matched route, or NULL */
    const char *route_label;            /* route template or "unmatched" */
    const char *request_id;
    double t_start;  /* m8_now_mono() at arrival */
    bool cgi;        /* CGI: route by PATH_INFO (SCRIPT_NAME is the mount point) */
    bool authorizer; /* FastCGI AUTHORIZER role: no body; a 200 passes the request
                        on (with Variable-* headers), anything else denies it */
    m8_user *user;   /* the caller of a protected route (arena), or NULL */
    /* The scope an API key must hold here (the route's, fcgim8(3)
     * m8_app_require_scope, or a gate rule's scope=), or NULL; JWT callers
     * are not concerned (doc/issuer.md#api-key-scopes-and-format). */
    const char *api_key_scope;
    /* Set by an engine that can stream an answer (app/stream.h), else NULL. */
    struct m8_stream *stream;

    /* output */
    int status; /* 0 = not set yet */
    m8_hdr *res_headers;
    size_t n_res_headers, cap_res_headers;
    const char *content_type; /* NULL = none */
    m8_buf body_out;
    char *fail_reason; /* m8_req_fail(), logged never sent */
};

/* Initialises req (arena, buffers) for the app. */
M8_INTERNAL void m8_req_init(m8_request *req, struct m8_app *app);
/* Frees everything the request owns and resets it for reuse. */
M8_INTERNAL void m8_req_reset(m8_request *req);
M8_INTERNAL void m8_req_free(m8_request *req);

/* Fills params/headers/method/path/query from raw name-value params and the
 * body.  Copies into the arena.  Path: REQUEST_URI up to '?' (percent-decoded),
 * else SCRIPT_NAME + PATH_INFO (already decoded by the CGI server).  Query:
 * QUERY_STRING, else the part of REQUEST_URI after '?'.  Headers: HTTP_*,
 * CONTENT_TYPE, CONTENT_LENGTH, and REDIRECT_HTTP_AUTHORIZATION as
 * "authorization" when HTTP_AUTHORIZATION is absent (Apache).
 * Limits: more than M8_MAX_PARAMS params, more than M8_MAX_PARAMS_BYTES of
 * names+values, a raw path over M8_MAX_PATH_BYTES, more than
 * M8_MAX_QUERY_PARAMS query pairs: M8_ETOOBIG.  M8_EPARSE (bad
 * percent-encoding, %00, a path not starting with '/', a missing or invalid
 * REQUEST_METHOD): the caller answers 400. */
M8_INTERNAL int m8_req_from_params(m8_request *req, const m8_pair *params, size_t n,
                                   const char *body, size_t body_len);

/* The same without copying: params, their strings and the body (which must
 * be NUL-terminated at body[body_len]) stay owned by the caller, who keeps
 * them alive until the request ends (the serving loops: FastCGI records,
 * the CGI environment).  Saves a copy of every param and of the body. */
M8_INTERNAL int m8_req_adopt_params(m8_request *req, const m8_pair *params, size_t n,
                                    const char *body, size_t body_len);

/* Parses a query string into decoded pairs ('&'-separated, '+' is space, %XX
 * decoded, invalid escapes kept literally like Starlette, invalid UTF-8
 * replaced by U+FFFD like Python; "a" and "a=" give a=""; blank pairs are
 * skipped).  %00 cannot be represented in a C string: M8_EPARSE.  More than
 * M8_MAX_QUERY_PARAMS pairs: M8_ETOOBIG.  Pure; arena-allocated. */
M8_INTERNAL int m8_parse_query(m8_arena *a, const char *qs, size_t n, m8_pair **out, size_t *nout);

/* Percent-decodes a path; rejects %00, raw NUL and malformed escapes
 * (M8_EPARSE); invalid UTF-8 becomes U+FFFD (Python's unquote). */
M8_INTERNAL int m8_decode_path(m8_arena *a, const char *p, size_t n, char **out);

/* Parses the body as JSON with depth <= M8_MAX_JSON_DEPTH.  On failure sets
 * a FastAPI-style 422 response on req ({"detail":[{"type":"json_invalid",
 * "loc":["body",<pos>],"msg":"JSON decode error","input":{},"ctx":{"error":...}}]})
 * and returns M8_EPARSE. */
M8_INTERNAL int m8_req_parse_json(m8_request *req);

/* Sets a header, replacing an existing one of the same name (case-insensitive,
 * in place; later duplicates are dropped).  "Content-Type" sets the content
 * type.  Has M8_MAX_RESPONSE_HEADERS plus a small reserve for the library's
 * own headers. */
M8_INTERNAL int m8_res_set_header(m8_request *req, const char *name, const char *value);
/* The same for a header its caller checked once for every request (a
 * token name that is not Content-Type, Content-Length or Status, a value
 * without control characters): neither is checked nor copied again, so both
 * must outlive the request. */
M8_INTERNAL int m8_res_set_checked(m8_request *req, const char *name, const char *value);
/* Removes every response header of that name (case-insensitive). */
M8_INTERNAL void m8_res_remove_header(m8_request *req, const char *name);
/* Appends a header value (for Vary: appends ", value" if present). */
M8_INTERNAL int m8_res_add_vary(m8_request *req, const char *value);
M8_INTERNAL const char *m8_res_get_header(const m8_request *req, const char *name);

/* The reason phrase of a status ("Not Found"). */
M8_INTERNAL const char *m8_status_reason(int status);

/* Renders the CGI response into out: "Status: 200 OK", Content-Type (when
 * set), Content-Length, the headers, a blank line, the body.  head_only omits
 * the body but keeps Content-Length.  Like Starlette, 1xx/204/304 get neither
 * Content-Length nor body.  An unset status (0) renders as 500. */
M8_INTERNAL int m8_res_render(const m8_request *req, bool head_only, m8_buf *out);

/* Appends url[0..n) percent-encoded the way Starlette's RedirectResponse
 * quotes a Location (Python quote(), safe ":/%#?=@[]!$&'()*+,;"); used for the
 * 307 slash and www redirects. */
M8_INTERNAL int m8_redirect_quote(m8_buf *out, const char *url, size_t n);

/* Whether a request method is safe in the HTTP sense (GET, HEAD, OPTIONS,
 * TRACE): one that an ambient credential (a cookie) may use without a CSRF
 * check.  NULL is not. */
M8_INTERNAL bool m8_http_method_safe(const char *m);

#endif
