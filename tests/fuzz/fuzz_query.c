/* fuzz_query.c - libFuzzer target for query/path decoding and route matching
 * (lib/http/codec.c and request.c: m8_parse_query, m8_decode_path, m8_req_from_params,
 * m8_redirect_quote; lib/http/router.c m8_router_match over a small fixed table).
 * The whole input is fed to each as query, path and REQUEST_URI; its first
 * byte picks the method. */
#include "http/http.h"
#include "http/router.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int h(m8_request *req, void *d)
{
    (void)req;
    (void)d;
    return 0;
}

static m8_router *table(void)
{
    static m8_router r;
    static int ready;
    if (ready)
        return &r;
    static const m8_route routes[] = {
        {"GET", "/items/{item_id}", M8_PUBLIC, h, NULL, NULL, NULL, 0},
        {"GET", "/items/special", M8_PUBLIC, h, NULL, NULL, NULL, 0},
        {"POST", "/items", M8_USER, h, NULL, NULL, NULL, M8_ROUTE_JSON_BODY},
        {"GET", "/health/", M8_PUBLIC, h, NULL, NULL, NULL, 0},
        {"DELETE", "/users/{uid}/posts/{pid}", M8_ADMIN, h, NULL, NULL, NULL, 0},
        {"PUT", "/users/{uid}/posts/{pid}", M8_WRITER, h, NULL, NULL, NULL, 0},
        {"GET", "/ping", M8_PUBLIC, h, NULL, NULL, NULL, M8_ROUTE_ABSOLUTE},
        {"GET", "/", M8_PUBLIC, h, NULL, NULL, NULL, M8_ROUTE_ABSOLUTE},
    };
    char err[256];
    m8_router_init(&r);
    for (size_t i = 0; i < M8_ARRAY_LEN(routes); i++) {
        if (m8_router_add(&r, "/api", &routes[i], err, sizeof err) != 0)
            abort();
    }
    ready = 1;
    return &r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"};
    const char *s = (const char *)data;
    m8_router *r = table();

    /* the pure parsers on the raw bytes */
    m8_arena a;
    m8_arena_init(&a, 0);
    m8_pair *pairs;
    size_t np;
    char *decoded;
    m8_parse_query(&a, s, size, &pairs, &np);
    int prc = m8_decode_path(&a, s, size, &decoded);
    m8_buf q;
    m8_buf_init(&q, 4 * size + 16);
    m8_redirect_quote(&q, s, size);
    m8_buf_free(&q);

    /* a whole request: REQUEST_URI is the input up to its first NUL */
    m8_request req;
    m8_req_init(&req, NULL);
    char *uri = m8_arena_strndup(&a, s, size);
    if (!uri)
        abort();
    const char *method = methods[size ? data[0] % M8_ARRAY_LEN(methods) : 0];
    m8_pair params[] = {{"REQUEST_METHOD", method}, {"REQUEST_URI", uri}};
    if (m8_req_from_params(&req, params, 2, NULL, 0) == 0) {
        const m8_route_entry *e;
        m8_buf allow;
        m8_buf_init(&allow, 2 * M8_MAX_PATH_BYTES + 16);
        m8_match_result mr = m8_router_match(r, &req, &e, &allow);
        if (mr == M8_MATCH_OK && (!e || req.n_path_params != e->n_captures))
            abort();
        if (mr != M8_MATCH_OK && e)
            abort();
        m8_buf_free(&allow);
        m8_req_query(&req, "q");
    }
    m8_req_free(&req);

    /* a decoded path that starts with '/' goes straight to the router */
    if (prc == 0 && decoded[0] == '/') {
        m8_req_init(&req, NULL);
        req.method = method;
        req.path = decoded;
        const m8_route_entry *e;
        m8_buf allow;
        m8_buf_init(&allow, 4 * size + 16);
        m8_router_match(r, &req, &e, &allow);
        m8_buf_free(&allow);
        m8_req_free(&req);
    }
    m8_arena_free(&a);
    return 0;
}
