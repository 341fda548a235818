/* test_http.c - the request/response model (lib/http/request.c, codec.c, response.c). */
#include "http/http.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "reqbuild.h"
#include "tap.h"

/* Builds a request from "NAME=VALUE" strings (NULL-terminated). */
static int from_kv(m8_request *req, const char *const *kv, const char *body, size_t blen)
{
    return m8t_req_kv(req, NULL, kv, body, blen);
}

static m8_request *new_req(void)
{
    m8_request *req = malloc(sizeof *req);
    m8_req_init(req, NULL);
    return req;
}

static void del_req(m8_request *req)
{
    m8_req_free(req);
    free(req);
}

static char *render(const m8_request *req, bool head_only)
{
    m8_buf b;
    m8_buf_init(&b, 1u << 20);
    m8_res_render(req, head_only, &b);
    return m8_buf_steal(&b);
}

static void test_basic_request(void)
{
    char uri[] = "/api/items/a%20b?x=1";
    char idv[] = "abc-123";
    m8_pair ps[] = {
        {"REQUEST_METHOD", "POST"},           {"REQUEST_URI", uri},
        {"QUERY_STRING", "x=1&y=two+words"},  {"DOCUMENT_URI", "/api/items/a b"},
        {"CONTENT_TYPE", "application/json"}, {"CONTENT_LENGTH", "2"},
        {"HTTP_X_REQUEST_ID", idv},           {"HTTP_HOST", "example.com"},
        {"REMOTE_ADDR", "127.0.0.1"},
    };
    char body[] = "{}";
    m8_request *req = new_req();
    is_int(m8_req_from_params(req, ps, M8_ARRAY_LEN(ps), body, 2), 0,
           "from_params accepts nginx params");
    /* the request owns copies: scribble over the sources */
    memset(uri, 'Z', sizeof uri - 1);
    memset(idv, 'Z', sizeof idv - 1);
    body[0] = 'X';
    is_str(m8_req_method(req), "POST", "method from REQUEST_METHOD");
    is_str(m8_req_path(req), "/api/items/a b", "path is REQUEST_URI up to '?', percent-decoded");
    is_str(m8_req_query_string(req), "x=1&y=two+words", "raw query string from QUERY_STRING");
    is_str(m8_req_query(req, "y"), "two words", "query value decoded ('+' is space)");
    is_str(m8_req_header(req, "X-Request-ID"), "abc-123",
           "HTTP_X_REQUEST_ID -> x-request-id, copied");
    is_str(m8_req_header(req, "x-request-id"), "abc-123", "header lookup is case-insensitive");
    is_str(m8_req_header(req, "CONTENT-TYPE"), "application/json", "CONTENT_TYPE -> content-type");
    is_str(m8_req_header(req, "Content-Length"), "2", "CONTENT_LENGTH -> content-length");
    is_str(m8_req_header(req, "host"), "example.com", "HTTP_HOST -> host");
    ok(m8_req_header(req, "remote-addr") == NULL, "non-HTTP_ params are not headers");
    is_str(m8_req_param(req, "REMOTE_ADDR"), "127.0.0.1", "raw param by name");
    ok(m8_req_param(req, "remote_addr") == NULL, "raw params are case-sensitive");
    size_t blen = 0;
    const char *b = m8_req_body(req, &blen);
    ok(blen == 2 && memcmp(b, "{}", 2) == 0, "body copied into the request");
    ok(req->headers[0].name && strcmp(req->headers[0].name, "content-type") == 0,
       "stored header names are lower-case with '-'");
    ok(req->t_start > 0, "t_start set on arrival");
    is_str(m8_req_route(req), NULL, "no route before matching");
    ok(m8_req_app(req) == NULL, "m8_req_app returns the app");
    ok(m8_req_alloc(req, 100) != NULL, "m8_req_alloc allocates from the arena");
    del_req(req);
}

static void test_path_sources(void)
{
    m8_request *req = new_req();
    const char *a[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/a/b?q=1", NULL};
    is_int(from_kv(req, a, NULL, 0), 0, "REQUEST_URI with query");
    is_str(m8_req_path(req), "/a/b", "path stops at '?'");
    is_str(m8_req_query_string(req), "q=1", "query from REQUEST_URI when QUERY_STRING is absent");
    is_str(m8_req_query(req, "q"), "1", "query parsed from REQUEST_URI");
    m8_req_reset(req);

    const char *b[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x?a=1", "QUERY_STRING=b=2", NULL};
    is_int(from_kv(req, b, NULL, 0), 0, "QUERY_STRING present");
    is_str(m8_req_query_string(req), "b=2", "QUERY_STRING wins over REQUEST_URI's query");
    m8_req_reset(req);

    const char *c[] = {"REQUEST_METHOD=GET", "SCRIPT_NAME=/cgi/app", "PATH_INFO=/items/%41 b",
                       NULL};
    is_int(from_kv(req, c, NULL, 0), 0, "CGI without REQUEST_URI");
    is_str(m8_req_path(req), "/cgi/app/items/%41 b",
           "path is SCRIPT_NAME + PATH_INFO, not decoded again");
    is_str(m8_req_query_string(req), "", "query string empty when none");
    m8_req_reset(req);

    const char *d[] = {"REQUEST_METHOD=GET", NULL};
    is_int(from_kv(req, d, NULL, 0), 0, "no path params at all");
    is_str(m8_req_path(req), "/", "path defaults to /");
    m8_req_reset(req);

    const char *e[] = {"REQUEST_METHOD=GET", "REQUEST_URI=http://h.example:8080/p%2Fq?z=1", NULL};
    is_int(from_kv(req, e, NULL, 0), 0, "absolute-form REQUEST_URI");
    is_str(m8_req_path(req), "/p/q", "absolute-form: path only, decoded");
    is_str(m8_req_query(req, "z"), "1", "absolute-form: query kept");
    m8_req_reset(req);

    const char *f[] = {"REQUEST_METHOD=GET", "REQUEST_URI=?a=1", NULL};
    is_int(from_kv(req, f, NULL, 0), 0, "REQUEST_URI with empty path");
    is_str(m8_req_path(req), "/", "empty path is /");
    m8_req_reset(req);

    const char *g[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/caf%C3%A9/%FF", NULL};
    is_int(from_kv(req, g, NULL, 0), 0, "UTF-8 and invalid bytes in path");
    is_str(m8_req_path(req), "/caf\xC3\xA9/\xEF\xBF\xBD", "invalid UTF-8 in path becomes U+FFFD");
    m8_req_reset(req);

    const char *h[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x", "HTTP_AUTHORIZATION=Bearer a",
                       "REDIRECT_HTTP_AUTHORIZATION=Bearer b", NULL};
    is_int(from_kv(req, h, NULL, 0), 0, "both authorization params");
    is_str(m8_req_header(req, "authorization"), "Bearer a", "HTTP_AUTHORIZATION wins");
    m8_req_reset(req);

    const char *i[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x",
                       "REDIRECT_HTTP_AUTHORIZATION=Bearer b", NULL};
    is_int(from_kv(req, i, NULL, 0), 0, "Apache REDIRECT_HTTP_AUTHORIZATION");
    is_str(m8_req_header(req, "Authorization"), "Bearer b",
           "REDIRECT_HTTP_AUTHORIZATION used when HTTP_AUTHORIZATION is absent");
    m8_req_reset(req);

    /* Each CGI variable is read once, from its first param; names that only
     * start like one are something else. */
    const char *j[] = {"REQUEST_METHOD=GET",
                       "REQUEST_URI=/first?a=1",
                       "QUERY_STRING=b=2",
                       "REQUEST_METHOD=POST",
                       "REQUEST_URI=/second",
                       "QUERY_STRING=c=3",
                       "REDIRECT_HTTP_AUTHORIZATION=Bearer one",
                       "REDIRECT_HTTP_AUTHORIZATION=Bearer two",
                       "HTTP_=x",
                       "CONTENT_TYPES=text/plain",
                       "REQUEST_URIS=/third",
                       "HTTP_CONTENT_TYPE=text/csv",
                       NULL};
    is_int(from_kv(req, j, NULL, 0), 0, "repeated CGI variables");
    is_str(m8_req_method(req), "GET", "the first REQUEST_METHOD is the method");
    is_str(m8_req_path(req), "/first", "the first REQUEST_URI is the path");
    is_str(m8_req_query_string(req), "b=2", "the first QUERY_STRING is the query");
    is_str(m8_req_header(req, "authorization"), "Bearer one",
           "the first REDIRECT_HTTP_AUTHORIZATION is the authorization");
    is_int((long)req->n_headers, 2,
           "HTTP_ alone and CONTENT_TYPES are no headers; HTTP_CONTENT_TYPE is one");
    is_str(m8_req_header(req, "content-type"), "text/csv", "HTTP_CONTENT_TYPE -> content-type");
    del_req(req);
}

static void test_bad_requests(void)
{
    m8_request *req = new_req();
    struct {
        const char *kv[4];
        int want;
        const char *what;
    } cases[] = {
        {{"REQUEST_URI=/x", NULL}, M8_EPARSE, "missing REQUEST_METHOD is EPARSE"},
        {{"REQUEST_METHOD=", "REQUEST_URI=/x", NULL}, M8_EPARSE, "empty method is EPARSE"},
        {{"REQUEST_METHOD=G T", "REQUEST_URI=/x", NULL},
         M8_EPARSE,
         "method with a space is EPARSE"},
        {{"REQUEST_METHOD=GET", "REQUEST_URI=/a%00b", NULL}, M8_EPARSE, "%00 in path is EPARSE"},
        {{"REQUEST_METHOD=GET", "REQUEST_URI=/a%zzb", NULL},
         M8_EPARSE,
         "malformed escape is EPARSE"},
        {{"REQUEST_METHOD=GET", "REQUEST_URI=/a%4", NULL}, M8_EPARSE, "truncated escape is EPARSE"},
        {{"REQUEST_METHOD=GET", "REQUEST_URI=/a%", NULL}, M8_EPARSE, "lone % is EPARSE"},
        {{"REQUEST_METHOD=GET", "REQUEST_URI=a/b", NULL},
         M8_EPARSE,
         "path without leading / is EPARSE"},
        {{"REQUEST_METHOD=OPTIONS", "REQUEST_URI=*", NULL}, M8_EPARSE, "asterisk-form is EPARSE"},
        {{"REQUEST_METHOD=GET", "SCRIPT_NAME=x", NULL}, M8_EPARSE, "CGI path without / is EPARSE"},
        {{"REQUEST_METHOD=GET", "REQUEST_URI=/x", "QUERY_STRING=a=%00", NULL},
         M8_EPARSE,
         "%%00 in the query is EPARSE"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(cases); i++) {
        is_int(from_kv(req, cases[i].kv, NULL, 0), cases[i].want, "%s", cases[i].what);
        m8_req_reset(req);
    }
    del_req(req);
}

static void test_limits(void)
{
    m8_request *req = new_req();
    /* param count */
    size_t np = M8_MAX_PARAMS + 1;
    m8_pair *ps = calloc(np, sizeof *ps);
    char(*names)[16] = calloc(np, 16);
    ps[0].name = "REQUEST_METHOD";
    ps[0].value = "GET";
    for (size_t i = 1; i < np; i++) {
        snprintf(names[i], 16, "P%zu", i);
        ps[i].name = names[i];
        ps[i].value = "";
    }
    is_int(m8_req_from_params(req, ps, M8_MAX_PARAMS, NULL, 0), 0, "M8_MAX_PARAMS params accepted");
    m8_req_reset(req);
    is_int(m8_req_from_params(req, ps, M8_MAX_PARAMS + 1, NULL, 0), M8_ETOOBIG,
           "M8_MAX_PARAMS + 1 params is ETOOBIG");
    m8_req_reset(req);

    /* param bytes: names + values */
    size_t fixed = strlen("REQUEST_METHOD") + 3 + strlen("BIG");
    char *big = malloc(M8_MAX_PARAMS_BYTES + 2);
    memset(big, 'v', M8_MAX_PARAMS_BYTES + 1);
    big[M8_MAX_PARAMS_BYTES - fixed] = '\0';
    m8_pair pb[] = {{"REQUEST_METHOD", "GET"}, {"BIG", big}};
    is_int(m8_req_from_params(req, pb, 2, NULL, 0), 0, "exactly M8_MAX_PARAMS_BYTES accepted");
    m8_req_reset(req);
    big[M8_MAX_PARAMS_BYTES - fixed] = 'v';
    big[M8_MAX_PARAMS_BYTES - fixed + 1] = '\0';
    is_int(m8_req_from_params(req, pb, 2, NULL, 0), M8_ETOOBIG,
           "M8_MAX_PARAMS_BYTES + 1 is ETOOBIG");
    m8_req_reset(req);

    /* path bytes, REQUEST_URI */
    char *path = malloc(M8_MAX_PATH_BYTES + 8);
    memset(path, 'p', M8_MAX_PATH_BYTES + 1);
    path[0] = '/';
    path[M8_MAX_PATH_BYTES] = '\0';
    m8_pair pp[] = {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", path}};
    is_int(m8_req_from_params(req, pp, 2, NULL, 0), 0, "path of M8_MAX_PATH_BYTES accepted");
    is_int(strlen(m8_req_path(req)), M8_MAX_PATH_BYTES, "path kept whole");
    m8_req_reset(req);
    path[M8_MAX_PATH_BYTES] = 'p';
    path[M8_MAX_PATH_BYTES + 1] = '\0';
    is_int(m8_req_from_params(req, pp, 2, NULL, 0), M8_ETOOBIG,
           "path of M8_MAX_PATH_BYTES + 1 is ETOOBIG");
    m8_req_reset(req);
    /* the query does not count towards the path */
    path[M8_MAX_PATH_BYTES] = '?';
    is_int(m8_req_from_params(req, pp, 2, NULL, 0), 0, "query after a full-size path accepted");
    m8_req_reset(req);

    /* path bytes, SCRIPT_NAME + PATH_INFO */
    path[M8_MAX_PATH_BYTES] = '\0';
    m8_pair pc[] = {{"REQUEST_METHOD", "GET"}, {"SCRIPT_NAME", path}, {"PATH_INFO", ""}};
    is_int(m8_req_from_params(req, pc, 3, NULL, 0), 0, "CGI path of M8_MAX_PATH_BYTES accepted");
    m8_req_reset(req);
    pc[2].value = "/";
    is_int(m8_req_from_params(req, pc, 3, NULL, 0), M8_ETOOBIG,
           "CGI path of M8_MAX_PATH_BYTES + 1 is ETOOBIG");
    m8_req_reset(req);

    /* query pairs */
    m8_buf q;
    m8_buf_init(&q, 1u << 20);
    for (unsigned i = 0; i < M8_MAX_QUERY_PARAMS; i++)
        m8_buf_printf(&q, "%sk%u=v", i ? "&" : "", i);
    m8_pair pq[] = {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/"}, {"QUERY_STRING", q.data}};
    is_int(m8_req_from_params(req, pq, 3, NULL, 0), 0, "M8_MAX_QUERY_PARAMS query pairs accepted");
    is_int(req->n_query, M8_MAX_QUERY_PARAMS, "all query pairs kept");
    m8_req_reset(req);
    m8_buf_puts(&q, "&last=1");
    pq[2].value = q.data;
    is_int(m8_req_from_params(req, pq, 3, NULL, 0), M8_ETOOBIG,
           "M8_MAX_QUERY_PARAMS + 1 query pairs is ETOOBIG");
    m8_req_reset(req);
    m8_buf_free(&q);

    free(path);
    free(big);
    free(names);
    free(ps);
    del_req(req);
}

static void test_parse_query(void)
{
    m8_arena a;
    m8_arena_init(&a, 0);
    m8_pair *p;
    size_t n;
#define Q(s) m8_parse_query(&a, s, strlen(s), &p, &n)
    is_int(Q("a=&b"), 0, "'a=&b' parses");
    ok(n == 2 && strcmp(p[0].name, "a") == 0 && strcmp(p[0].value, "") == 0 &&
           strcmp(p[1].name, "b") == 0 && strcmp(p[1].value, "") == 0,
       "empty values kept: a=\"\", b=\"\"");
    is_int(Q("&&a=1&&"), 0, "blank pairs");
    ok(n == 1 && strcmp(p[0].value, "1") == 0, "blank pairs skipped");
    is_int(Q(""), 0, "empty query");
    ok(n == 0 && p == NULL, "empty query has no pairs");
    is_int(Q("a+b=c+d%20e"), 0, "plus and %%20");
    ok(n == 1 && strcmp(p[0].name, "a b") == 0 && strcmp(p[0].value, "c d e") == 0,
       "'+' is space in names and values, %%20 decoded");
    is_int(Q("x=%2B%26%3D"), 0, "escaped specials");
    is_str(p[0].value, "+&=", "%%2B %%26 %%3D decode to + & =");
    is_int(Q("x=%zz%4%"), 0, "malformed escapes");
    is_str(p[0].value, "%zz%4%", "malformed escapes kept literally");
    is_int(Q("x=a=b"), 0, "second '='");
    is_str(p[0].value, "a=b", "value keeps later '='");
    is_int(Q("=v"), 0, "empty name");
    ok(n == 1 && strcmp(p[0].name, "") == 0 && strcmp(p[0].value, "v") == 0, "empty name kept");
    is_int(Q("x=%C3%A9"), 0, "UTF-8 escape");
    is_str(p[0].value, "\xC3\xA9", "UTF-8 decoded");
    is_int(Q("x=%FFa"), 0, "invalid byte");
    is_str(p[0].value,
           "\xEF\xBF\xBD"
           "a",
           "invalid byte becomes U+FFFD");
    is_int(Q("x=%E2%82z"), 0, "truncated sequence");
    is_str(p[0].value,
           "\xEF\xBF\xBD"
           "z",
           "truncated sequence becomes one U+FFFD (Python)");
    is_int(Q("x=%ED%A0%80"), 0, "surrogate bytes");
    is_str(p[0].value, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", "encoded surrogate is 3 x U+FFFD");
    is_int(Q("x=%00"), M8_EPARSE, "%%00 in the query is EPARSE");
    is_int(m8_parse_query(&a, "a\0b", 3, &p, &n), M8_EPARSE, "raw NUL in the query is EPARSE");
    is_int(Q("a=1&a=2"), 0, "repeated name");
    ok(n == 2, "both repeated values kept in order");
#undef Q
    m8_arena_free(&a);

    m8_request *req = new_req();
    const char *kv[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/", "QUERY_STRING=a=1&a=2&b", NULL};
    from_kv(req, kv, NULL, 0);
    is_str(m8_req_query(req, "a"), "1", "first value wins for m8_req_query");
    is_str(m8_req_query(req, "b"), "", "name without '=' has value \"\"");
    ok(m8_req_query(req, "c") == NULL, "absent query name is NULL");
    ok(m8_req_query(req, "A") == NULL, "query names are case-sensitive");
    del_req(req);
}

static void test_decode_path(void)
{
    m8_arena a;
    m8_arena_init(&a, 0);
    char *out;
    is_int(m8_decode_path(&a, "/a%2Fb+c", 8, &out), 0, "decode");
    is_str(out, "/a/b+c", "%%2F decoded, '+' stays in a path");
    is_int(m8_decode_path(&a, "/%41%62", 7, &out), 0, "hex case");
    is_str(out, "/Ab", "upper and lower hex digits");
    is_int(m8_decode_path(&a, "/%00", 4, &out), M8_EPARSE, "%%00 rejected");
    is_int(m8_decode_path(&a, "/%0", 3, &out), M8_EPARSE, "short escape rejected");
    is_int(m8_decode_path(&a, "/%g0", 4, &out), M8_EPARSE, "non-hex escape rejected");
    is_int(m8_decode_path(&a, "/a\0b", 4, &out), M8_EPARSE, "raw NUL rejected");
    is_int(m8_decode_path(&a, "/a%C0%AF", 8, &out), 0, "overlong");
    is_str(out, "/a\xEF\xBF\xBD\xEF\xBF\xBD", "overlong encoding replaced per byte");
    m8_arena_free(&a);
}

static const char *res_body(const m8_request *req)
{
    return req->body_out.data ? req->body_out.data : "";
}

static void test_json_body(void)
{
    m8_request *req = new_req();
    const char *kv[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/x", NULL};
    struct {
        const char *body;
        size_t len;
        const char *want;
        const char *what;
    } bad[] = {
        {"{\"a\" 1}", 7,
         "{\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",5],\"msg\":\"JSON decode "
         "error\","
         "\"input\":{},\"ctx\":{\"error\":\"object property name separator ':' expected\"}}]}",
         "a syntax error gives the FastAPI 422 body with the byte offset"},
        {"[1 2]", 5,
         "{\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",3],\"msg\":\"JSON decode "
         "error\","
         "\"input\":{},\"ctx\":{\"error\":\"array value separator ',' expected\"}}]}",
         "missing comma: offset 3"},
        {"{\"a\":", 5,
         "{\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",5],\"msg\":\"JSON decode "
         "error\","
         "\"input\":{},\"ctx\":{\"error\":\"unexpected end of data\"}}]}",
         "truncated body: offset is the body length"},
        {"{} x", 4,
         "{\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",3],\"msg\":\"JSON decode "
         "error\","
         "\"input\":{},\"ctx\":{\"error\":\"unexpected character\"}}]}",
         "trailing data after the value is 422"},
        {"{}\0", 3,
         "{\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",2],\"msg\":\"JSON decode "
         "error\","
         "\"input\":{},\"ctx\":{\"error\":\"Extra data\"}}]}",
         "a NUL after the value is Extra data"},
        {"  ", 2,
         "{\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\",2],\"msg\":\"JSON decode "
         "error\","
         "\"input\":{},\"ctx\":{\"error\":\"unexpected end of data\"}}]}",
         "whitespace-only body is json_invalid (non-empty)"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        from_kv(req, kv, bad[i].body, bad[i].len);
        is_int(m8_req_parse_json(req), M8_EPARSE, "invalid JSON returns EPARSE (%zu)", i);
        is_int(req->status, 422, "invalid JSON is 422 (%zu)", i);
        is_str(req->content_type, "application/json", "422 is application/json (%zu)", i);
        is_str(res_body(req), bad[i].want, "%s", bad[i].what);
        ok(m8_req_json(req) == NULL, "no JSON on failure (%zu)", i);
        m8_req_reset(req);
    }
    const char *other[] = {"'a'", "/*c*/1", "[1,]", "{\"a\":1,}", "\"\xff\"", "01", "tru"};
    for (size_t i = 0; i < M8_ARRAY_LEN(other); i++) {
        from_kv(req, kv, other[i], strlen(other[i]));
        is_int(m8_req_parse_json(req), M8_EPARSE, "strict JSON refuses non-JSON input (%zu)", i);
        m8_req_reset(req);
    }

    from_kv(req, kv, NULL, 0);
    is_int(m8_req_parse_json(req), M8_EPARSE, "empty body returns EPARSE");
    is_int(req->status, 422, "empty body is 422");
    is_str(res_body(req),
           "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\"],\"msg\":\"Field required\","
           "\"input\":null}]}",
           "empty body gives the FastAPI missing body");
    m8_req_reset(req);

    const char *good[] = {
        "{\"a\":[1,2,{\"b\":null}]}", "1", "12 \r\n\t", "\"s\"", "true", "-1.5e3", " [] "};
    for (size_t i = 0; i < M8_ARRAY_LEN(good); i++) {
        from_kv(req, kv, good[i], strlen(good[i]));
        is_int(m8_req_parse_json(req), 0, "valid JSON parses (%zu)", i);
        ok(m8_req_json(req) != NULL, "m8_req_json returns the value (%zu)", i);
        is_int(req->status, 0, "no response set on success (%zu)", i);
        m8_req_reset(req);
    }
    from_kv(req, kv, "{\"k\":\"v\"}", 9);
    m8_req_parse_json(req);
    is_str(json_object_get_string(json_object_object_get(m8_req_json(req), "k")), "v",
           "parsed object content");
    m8_req_reset(req);

    /* depth: M8_MAX_JSON_DEPTH nested arrays at and one past */
    char deep[2 * (M8_MAX_JSON_DEPTH + 1)];
    for (int d = M8_MAX_JSON_DEPTH; d <= M8_MAX_JSON_DEPTH + 1; d++) {
        size_t n = 0;
        for (int i = 0; i < d; i++)
            deep[n++] = '[';
        for (int i = 0; i < d; i++)
            deep[n++] = ']';
        from_kv(req, kv, deep, n);
        int rc = m8_req_parse_json(req);
        if (d == M8_MAX_JSON_DEPTH) {
            is_int(rc, 0, "nesting depth M8_MAX_JSON_DEPTH accepted");
        } else {
            is_int(rc, M8_EPARSE, "nesting depth M8_MAX_JSON_DEPTH + 1 refused");
            like(res_body(req), "\"ctx\":{\"error\":\"nesting too deep\"}", "depth failure reason");
            like(res_body(req), "\"loc\":[\"body\",64]", "depth failure offset");
        }
        m8_req_reset(req);
    }
    del_req(req);
}

static void test_responses(void)
{
    m8_request *req = new_req();
    json_object *o = json_object_new_object();
    json_object_object_add(o, "url", json_object_new_string("a/b"));
    json_object_object_add(o, "n", json_object_new_int(1));
    is_int(m8_res_json(req, 201, o), 0, "m8_res_json");
    is_int(req->status, 201, "status set");
    is_str(res_body(req), "{\"url\":\"a/b\",\"n\":1}", "plain JSON, no slash escaping");
    is_str(m8_res_get_header(req, "content-type"), "application/json", "JSON content type");
    is_int(m8_res_json(req, 200, NULL), 0, "NULL object");
    is_str(res_body(req), "null", "NULL object is null");
    is_int(m8_res_json(req, 99, json_object_new_int(1)), M8_EINVAL,
           "status 99 refused (obj freed)");
    is_int(m8_res_json(req, 600, json_object_new_int(1)), M8_EINVAL, "status 600 refused");

    is_int(m8_res_error(req, 404, "Not \"Found\"\n"), 0, "m8_res_error");
    is_str(res_body(req), "{\"detail\":\"Not \\\"Found\\\"\\n\"}", "detail escaped as JSON");
    is_int(req->status, 404, "error status");

    is_int(m8_res_body(req, 200, "text/plain", "hi", 2), 0, "m8_res_body");
    is_str(res_body(req), "hi", "body replaced (last call wins)");
    is_str(req->content_type, "text/plain", "content type replaced");
    is_int(m8_res_body(req, 200, "text/plain\r\nX: y", "hi", 2), M8_EINVAL,
           "content type with CRLF refused");
    is_int(m8_res_body(req, 200, NULL, NULL, 1), M8_EINVAL, "NULL data with a length refused");
    is_int(m8_res_body(req, 204, NULL, NULL, 0), 0, "empty body");
    ok(req->content_type == NULL, "NULL content type clears it");

    /* headers */
    is_int(m8_res_header(req, "X-A", "1"), 0, "m8_res_header");
    is_int(m8_res_header(req, "X-A", "2"), 0, "m8_res_header accumulates");
    is_int(req->n_res_headers, 2, "two X-A headers");
    is_int(m8_res_header(req, "X-B", "a\r\nInjected: 1"), M8_EINVAL, "CRLF in value refused");
    is_int(m8_res_header(req, "X-B", "a\nb"), M8_EINVAL, "LF in value refused");
    is_int(m8_res_header(req, "X-B", "a\x01"), M8_EINVAL, "control char in value refused");
    is_int(m8_res_header(req, "X-B", "a\tb \x80"), 0, "tab and obs-text allowed in value");
    is_int(m8_res_header(req, "X B", "v"), M8_EINVAL, "space in name refused");
    is_int(m8_res_header(req, "X:B", "v"), M8_EINVAL, "colon in name refused");
    is_int(m8_res_header(req, "X\r\nB", "v"), M8_EINVAL, "CRLF in name refused");
    is_int(m8_res_header(req, "", "v"), M8_EINVAL, "empty name refused");
    is_int(m8_res_header(req, "X-C", NULL), M8_EINVAL, "NULL value refused");
    is_int(m8_res_header(req, "content-length", "5"), M8_EINVAL, "Content-Length refused");
    is_int(m8_res_header(req, "Status", "200"), M8_EINVAL, "Status refused");
    is_int(m8_res_header(req, "Content-Type", "text/html"), 0, "Content-Type via header");
    is_str(req->content_type, "text/html", "Content-Type header sets the content type");
    is_int(m8_res_set_header(req, "x-a", "3"), 0, "set_header replaces");
    is_int(req->n_res_headers, 2, "duplicates removed by set_header");
    is_str(m8_res_get_header(req, "X-A"), "3", "replaced value, case-insensitive lookup");
    is_int(m8_res_add_vary(req, "Origin"), 0, "add_vary without Vary");
    is_str(m8_res_get_header(req, "vary"), "Origin", "Vary set");
    is_int(m8_res_add_vary(req, "Accept"), 0, "add_vary with Vary");
    is_str(m8_res_get_header(req, "Vary"), "Origin, Accept", "Vary appended with ', '");
    m8_res_remove_header(req, "VARY");
    ok(m8_res_get_header(req, "Vary") == NULL, "remove_header");
    m8_req_reset(req);

    /* header count limit */
    int rc = 0;
    char name[32];
    for (unsigned i = 0; i < M8_MAX_RESPONSE_HEADERS && !rc; i++) {
        snprintf(name, sizeof name, "X-H%u", i);
        rc = m8_res_header(req, name, "v");
    }
    is_int(rc, 0, "M8_MAX_RESPONSE_HEADERS headers accepted");
    is_int(m8_res_header(req, "X-Over", "v"), M8_ETOOBIG, "M8_MAX_RESPONSE_HEADERS + 1 is ETOOBIG");
    is_int(m8_res_set_header(req, "X-Request-ID", "r"), 0,
           "library headers still fit past a full handler set");
    m8_req_reset(req);

    /* response body limit */
    char *huge = malloc(M8_MAX_RESPONSE_BYTES + 1);
    memset(huge, 'x', M8_MAX_RESPONSE_BYTES + 1);
    is_int(m8_res_body(req, 200, NULL, huge, M8_MAX_RESPONSE_BYTES), 0,
           "body of M8_MAX_RESPONSE_BYTES accepted");
    is_int(m8_res_body(req, 200, NULL, huge, M8_MAX_RESPONSE_BYTES + 1), M8_ETOOBIG,
           "body of M8_MAX_RESPONSE_BYTES + 1 is ETOOBIG");
    is_int(req->body_out.len, M8_MAX_RESPONSE_BYTES, "refused body leaves the previous one");
    free(huge);
    m8_req_reset(req);

    /* fail reason */
    is_int(m8_req_fail(req, "db %s failed (%d)", "query", 7), -1, "m8_req_fail returns -1");
    is_str(req->fail_reason, "db query failed (7)", "reason stored for the access log");
    is_int(req->status, 0, "m8_req_fail sets no response");
    m8_req_reset(req);
    ok(req->fail_reason == NULL, "reset clears the reason");
    del_req(req);
}

static void test_render(void)
{
    m8_request *req = new_req();
    m8_res_json(req, 200, json_object_new_object());
    m8_res_header(req, "X-Request-ID", "abc");
    m8_res_header(req, "Set-Cookie", "a=1");
    char *s = render(req, false);
    is_str(s,
           "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
           "X-Request-ID: abc\r\nSet-Cookie: a=1\r\n\r\n{}",
           "CGI rendering");
    free(s);
    s = render(req, true);
    is_str(s,
           "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
           "X-Request-ID: abc\r\nSet-Cookie: a=1\r\n\r\n",
           "head_only omits the body, keeps Content-Length");
    free(s);
    m8_req_reset(req);

    m8_res_body(req, 204, NULL, NULL, 0);
    s = render(req, false);
    is_str(s, "Status: 204 No Content\r\n\r\n", "204: no Content-Length, no body");
    free(s);
    m8_req_reset(req);

    m8_res_body(req, 307, NULL, NULL, 0);
    m8_res_set_header(req, "Location", "/x/");
    s = render(req, false);
    is_str(s, "Status: 307 Temporary Redirect\r\nContent-Length: 0\r\nLocation: /x/\r\n\r\n",
           "redirect: no content type, Content-Length 0");
    free(s);
    m8_req_reset(req);

    s = render(req, false);
    is_str(s, "Status: 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
           "unset status renders as 500");
    free(s);
    m8_res_body(req, 599, "text/plain", "x", 1);
    s = render(req, false);
    like(s, "Status: 599\r\n", "unknown status has no reason phrase");
    free(s);
    del_req(req);

    is_str(m8_status_reason(404), "Not Found", "reason 404");
    is_str(m8_status_reason(405), "Method Not Allowed", "reason 405");
    is_str(m8_status_reason(422), "Unprocessable Content", "reason 422");
    is_str(m8_status_reason(503), "Service Unavailable", "reason 503");
    is_str(m8_status_reason(799), "", "unknown reason is empty");
}

static void test_quote(void)
{
    m8_buf b;
    m8_buf_init(&b, 4096);
    const char *u = "http://www.example.com:8080/a b/%41?x=\xC3\xA9&y=\"<>\"#f";
    m8_redirect_quote(&b, u, strlen(u));
    is_str(b.data, "http://www.example.com:8080/a%20b/%41?x=%C3%A9&y=%22%3C%3E%22#f",
           "Location quoted like Starlette's RedirectResponse");
    m8_buf_reset(&b);
    m8_redirect_quote(&b, "/a\r\nb", 5);
    is_str(b.data, "/a%0D%0Ab", "CR/LF are percent-encoded");
    m8_buf_free(&b);
}

static void test_null_and_reuse(void)
{
    ok(m8_req_method(NULL) == NULL && m8_req_path(NULL) == NULL &&
           m8_req_header(NULL, "x") == NULL && m8_req_query(NULL, "x") == NULL &&
           m8_req_id(NULL) == NULL && m8_req_json(NULL) == NULL,
       "accessors accept NULL");
    is_int(m8_res_header(NULL, "a", "b"), M8_EINVAL, "m8_res_header(NULL) is EINVAL");
    is_int(m8_req_fail(NULL, "x"), -1, "m8_req_fail(NULL) returns -1");

    m8_request *req = new_req();
    const char *kv[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/a?b=1", "HTTP_X_A=1", NULL};
    for (int i = 0; i < 3; i++) {
        from_kv(req, kv, "{}", 2);
        m8_req_parse_json(req);
        m8_res_error(req, 400, "x");
        m8_res_header(req, "X-Y", "z");
        m8_req_reset(req);
    }
    ok(req->method == NULL && req->n_headers == 0 && req->n_res_headers == 0 && req->status == 0 &&
           req->json == NULL && req->body_out.len == 0 &&
           strcmp(req->route_label, "unmatched") == 0,
       "reset clears input and output for the next request");
    del_req(req);
}

/* m8_req_adopt_params: the serving loops' no-copy path. */
static void test_adopt(void)
{
    m8_request req;
    m8_req_init(&req, NULL);
    char method[] = "POST", uri[] = "/api/echo?x=1";
    m8_pair ps[] = {{"REQUEST_METHOD", method}, {"REQUEST_URI", uri}, {"HTTP_X_A", "b"}};
    const char body[] = "{\"k\":1}";
    ok(m8_req_adopt_params(&req, ps, 3, body, sizeof body - 1) == 0, "adopt: a request is built");
    ok(req.params[0].value == method && req.body == body, "adopt: params and body are not copied");
    is_str(m8_req_path(&req), "/api/echo", "adopt: the path is parsed as with a copy");
    is_str(m8_req_header(&req, "X-A"), "b", "adopt: headers are found");
    m8_req_reset(&req);
    const char unterminated[3] = {'{', '}', 'x'};
    is_int(m8_req_adopt_params(&req, ps, 3, unterminated, 2), M8_EINVAL,
           "adopt: a body not NUL-terminated at its length is refused");
    m8_req_free(&req);
}

int main(void)
{
    test_adopt();
    test_basic_request();
    test_path_sources();
    test_bad_requests();
    test_limits();
    test_parse_query();
    test_decode_path();
    test_json_body();
    test_responses();
    test_render();
    test_quote();
    test_null_and_reuse();
    return done_testing();
}
