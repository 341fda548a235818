/* test_router.c - route table and matching (lib/http/router.c). */
#include "http/router.h"

#include <stdlib.h>
#include <string.h>

#include "tap.h"

static int h_ok(m8_request *req, void *data)
{
    (void)req;
    (void)data;
    return 0;
}

static m8_route R(const char *method, const char *path)
{
    m8_route r = {method, path, M8_PUBLIC, h_ok, NULL, NULL, NULL, 0};
    return r;
}

/* Matches method+path against r; returns the result, *tmpl the template. */
static m8_match_result match(const m8_router *r, m8_request *req, const char *method,
                             const char *path, const char **tmpl, m8_buf *allow)
{
    m8_req_reset(req);
    req->method = method;
    req->path = path;
    const m8_route_entry *e = NULL;
    m8_match_result mr = m8_router_match(r, req, &e, allow);
    *tmpl = e ? e->template : NULL;
    req->route = e;
    return mr;
}

static void test_add(void)
{
    m8_router r;
    m8_router_init(&r);
    char err[256];
    m8_route a = R("GET", "/items/{item_id}");
    is_int(m8_router_add(&r, "/api", &a, err, sizeof err), 0, "route added");
    is_str(r.routes[0].template, "/api/items/{item_id}", "prefix applied to the template");
    is_int(r.routes[0].n_captures, 1, "one capture");
    is_str(r.routes[0].capture_names[0], "item_id", "capture name");
    ok(!r.routes[0].trailing_slash, "no trailing slash");
    m8_route b = R("GET", "/ping");
    b.flags = M8_ROUTE_ABSOLUTE;
    is_int(m8_router_add(&r, "/api", &b, err, sizeof err), 0, "absolute route added");
    is_str(r.routes[1].template, "/ping", "M8_ROUTE_ABSOLUTE ignores the prefix");
    m8_route c = R("GET", "/health/");
    is_int(m8_router_add(&r, "/api", &c, err, sizeof err), 0, "trailing-slash route added");
    ok(r.routes[2].trailing_slash, "trailing slash noted");
    m8_route d = R("POST", "/items/{item_id}");
    is_int(m8_router_add(&r, "/api", &d, err, sizeof err), 0,
           "same template with another method is fine");
    m8_route e = R("GET", "/");
    is_int(m8_router_add(&r, "", &e, err, sizeof err), 0, "root route with empty prefix");
    m8_route f = R("GET", "/x");
    is_int(m8_router_add(&r, NULL, &f, err, sizeof err), 0, "NULL prefix is no prefix");
    is_str(r.routes[5].template, "/x", "NULL prefix");
    for (size_t i = 0; i < 7; i++) {
        static const char *const ms[] = {"GET",    "POST", "PUT",    "PATCH",
                                         "DELETE", "HEAD", "OPTIONS"};
        m8_route g = R(ms[i], "/methods");
        is_int(m8_router_add(&r, "", &g, err, sizeof err), 0, "method %s accepted", ms[i]);
    }
    m8_router_free(&r);
    ok(r.routes == NULL && r.n == 0, "router freed");
}

static void refused(const m8_route *rt, const char *prefix, const char *want_err, const char *what)
{
    m8_router r;
    m8_router_init(&r);
    char err[256] = "";
    is_int(m8_router_add(&r, prefix, rt, err, sizeof err), M8_ECONFIG, "%s: ECONFIG", what);
    if (want_err)
        is_str(err, want_err, "%s: reason", what);
    else
        ok(err[0] != '\0', "%s: has a reason (%s)", what, err);
    is_int(r.n, 0, "%s: nothing added", what);
    m8_router_free(&r);
}

static void test_refused(void)
{
    m8_route a = R("GET", "/x");
    a.access = M8_ACCESS_UNSET;
    refused(&a, "", "route GET /x declares no access", "M8_ACCESS_UNSET");
    refused(&a, "/api", "route GET /api/x declares no access", "M8_ACCESS_UNSET under a prefix");
    m8_route b = R("FOO", "/x");
    refused(&b, "", NULL, "unknown method");
    m8_route b2 = R("get", "/x");
    refused(&b2, "", NULL, "lower-case method");
    m8_route b3 = R(NULL, "/x");
    refused(&b3, "", NULL, "NULL method");
    m8_route c = R("GET", "");
    refused(&c, "", "route GET: empty path", "empty path");
    m8_route c2 = R("GET", NULL);
    refused(&c2, "", "route GET: empty path", "NULL path");
    m8_route d = R("GET", "x");
    refused(&d, "", "route GET x: path must start with '/'", "path without leading /");
    const char *malformed[] = {"/items/{id",   "/items/id}",   "/items/{}",    "/items/{1a}",
                               "/items/{a-b}", "/items/x{id}", "/items/{id}x", "/items/{id:path}",
                               "/{{a}}",       "/items/{ id }"};
    for (size_t i = 0; i < M8_ARRAY_LEN(malformed); i++) {
        m8_route m = R("GET", malformed[i]);
        refused(&m, "", NULL, "malformed segment");
    }
    m8_route dupname = R("GET", "/{a}/{a}");
    refused(&dupname, "", "route GET /{a}/{a}: duplicate path parameter \"{a}\"",
            "duplicate capture name");
    m8_route nh = R("GET", "/x");
    nh.handler = NULL;
    refused(&nh, "", "route GET /x has no handler", "no handler");
    m8_route badpfx = R("GET", "/x");
    refused(&badpfx, "api", NULL, "prefix without leading /");
    refused(&badpfx, "/api/", NULL, "prefix with trailing /");
    m8_route badacc = R("GET", "/x");
    badacc.access = (m8_access)42;
    refused(&badacc, "", NULL, "out-of-range access");

    /* duplicates */
    m8_router r;
    m8_router_init(&r);
    char err[256];
    m8_route x = R("GET", "/items/{id}");
    m8_router_add(&r, "/api", &x, err, sizeof err);
    is_int(m8_router_add(&r, "/api", &x, err, sizeof err), M8_ECONFIG,
           "duplicate (method, template)");
    is_str(err, "duplicate route GET /api/items/{id}", "duplicate reason");
    m8_route y = R("GET", "/api/items/{id}");
    y.flags = M8_ROUTE_ABSOLUTE;
    is_int(m8_router_add(&r, "/api", &y, err, sizeof err), M8_ECONFIG,
           "duplicate after the prefix is applied");
    m8_route z = R("GET", "/items/{item_id}");
    is_int(m8_router_add(&r, "/api", &z, err, sizeof err), M8_ECONFIG,
           "same template up to capture names is a duplicate");
    is_str(err, "duplicate route GET /api/items/{item_id} (same as /api/items/{id})",
           "shape duplicate reason names the first route");
    m8_route w = R("GET", "/items/{id}/");
    is_int(m8_router_add(&r, "/api", &w, err, sizeof err), 0, "trailing slash makes it different");
    is_int(r.n, 2, "only distinct routes kept");
    m8_router_free(&r);

    /* path parameter count */
    m8_buf t;
    m8_buf_init(&t, 4096);
    for (unsigned i = 0; i < M8_MAX_PATH_PARAMS; i++)
        m8_buf_printf(&t, "/{p%u}", i);
    m8_router_init(&r);
    m8_route pm = R("GET", t.data);
    is_int(m8_router_add(&r, "", &pm, err, sizeof err), 0, "M8_MAX_PATH_PARAMS captures accepted");
    m8_buf_puts(&t, "/{last}");
    pm.path = t.data;
    is_int(m8_router_add(&r, "", &pm, err, sizeof err), M8_ECONFIG,
           "M8_MAX_PATH_PARAMS + 1 captures refused");
    like(err, "more than 16 path parameters", "capture count reason");
    m8_router_free(&r);
    m8_buf_free(&t);
}

static void test_match(void)
{
    m8_router r;
    m8_router_init(&r);
    char err[256];
    m8_route table[] = {
        R("GET", "/items/{item_id}"),
        R("GET", "/items/special"),
        R("POST", "/items"),
        R("GET", "/health/"),
        R("GET", "/users/{uid}/posts/{pid}"),
        R("DELETE", "/items/{item_id}"),
        R("PUT", "/things/{a}"),
        R("PATCH", "/things/x"),
        R("PUT", "/things/y"),
        R("GET", "/plain"),
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(table); i++)
        m8_router_add(&r, "/api", &table[i], err, sizeof err);
    m8_route root = R("GET", "/");
    root.flags = M8_ROUTE_ABSOLUTE;
    m8_router_add(&r, "/api", &root, err, sizeof err);

    m8_request req;
    m8_req_init(&req, NULL);
    m8_buf allow;
    m8_buf_init(&allow, 4096);
    const char *t;

    is_int(match(&r, &req, "GET", "/api/items/42", &t, &allow), M8_MATCH_OK,
           "capture route matches");
    is_str(t, "/api/items/{item_id}", "matched template");
    is_str(m8_req_path_param(&req, "item_id"), "42", "path parameter captured");
    is_str(m8_req_route(&req), "/api/items/{item_id}", "m8_req_route gives the template");
    ok(m8_req_path_param(&req, "other") == NULL, "unknown path parameter is NULL");

    is_int(match(&r, &req, "GET", "/api/items/special", &t, &allow), M8_MATCH_OK, "literal path");
    is_str(t, "/api/items/{item_id}", "first registered route wins over a later literal");
    is_str(m8_req_path_param(&req, "item_id"), "special", "captured the literal text");

    is_int(match(&r, &req, "GET", "/api/items/a b", &t, &allow), M8_MATCH_OK, "decoded path");
    is_str(m8_req_path_param(&req, "item_id"), "a b", "capture holds the decoded segment");

    is_int(match(&r, &req, "GET", "/api/users/7/posts/9", &t, &allow), M8_MATCH_OK, "two captures");
    ok(req.n_path_params == 2 && strcmp(m8_req_path_param(&req, "uid"), "7") == 0 &&
           strcmp(m8_req_path_param(&req, "pid"), "9") == 0,
       "both captures filled");

    is_int(match(&r, &req, "GET", "/api/items/1/2", &t, &allow), M8_MATCH_NOT_FOUND,
           "a capture never spans '/'");
    is_int(match(&r, &req, "GET", "/api/items//", &t, &allow), M8_MATCH_NOT_FOUND,
           "empty segment does not match a capture");
    is_int(match(&r, &req, "GET", "/api/nothing", &t, &allow), M8_MATCH_NOT_FOUND, "404");
    is_int(match(&r, &req, "GET", "/API/plain", &t, &allow), M8_MATCH_NOT_FOUND,
           "literals are case-sensitive");
    is_int(match(&r, &req, "get", "/api/plain", &t, &allow), M8_MATCH_METHOD,
           "methods match exactly (case-sensitive)");

    is_int(match(&r, &req, "GET", "/", &t, &allow), M8_MATCH_OK, "root route");
    is_int(match(&r, &req, "GET", "//", &t, &allow), M8_MATCH_REDIRECT,
           "'//' redirects to '/' (its trailing slash removed matches)");
    is_str(allow.data, "/", "redirect to /");

    /* 405 */
    is_int(match(&r, &req, "PUT", "/api/items/5", &t, &allow), M8_MATCH_METHOD, "wrong method 405");
    is_str(allow.data, "GET, DELETE", "Allow lists every matching route's method in order");
    ok(t == NULL, "no entry on 405");
    is_int(match(&r, &req, "HEAD", "/api/plain", &t, &allow), M8_MATCH_METHOD,
           "no implicit HEAD: HEAD on a GET route is 405");
    is_str(allow.data, "GET", "Allow: GET");
    is_int(match(&r, &req, "OPTIONS", "/api/items", &t, &allow), M8_MATCH_METHOD,
           "OPTIONS is not implicit either");
    is_str(allow.data, "POST", "Allow: POST");
    is_int(match(&r, &req, "GET", "/api/things/x", &t, &allow), M8_MATCH_METHOD, "405 on things/x");
    is_str(allow.data, "PUT, PATCH", "Allow deduplicated, registration order (PUT via capture)");
    is_int(match(&r, &req, "DELETE", "/api/things/y", &t, &allow), M8_MATCH_METHOD, "405 things/y");
    is_str(allow.data, "PUT", "PUT listed once though two routes allow it");
    is_int(match(&r, &req, "PATCH", "/api/things/x", &t, &allow), M8_MATCH_OK,
           "a later route matches when the method fits");
    is_str(t, "/api/things/x", "the PATCH route");

    /* redirect_slashes */
    is_int(match(&r, &req, "GET", "/api/health", &t, &allow), M8_MATCH_REDIRECT,
           "/api/health redirects (307) to the slash form");
    is_str(allow.data, "/api/health/", "redirect target adds '/'");
    is_int(match(&r, &req, "POST", "/api/health", &t, &allow), M8_MATCH_REDIRECT,
           "redirect whatever the method");
    is_int(match(&r, &req, "GET", "/api/plain/", &t, &allow), M8_MATCH_REDIRECT,
           "trailing slash removed when that matches");
    is_str(allow.data, "/api/plain", "redirect target drops '/'");
    is_int(match(&r, &req, "GET", "/api/items/", &t, &allow), M8_MATCH_REDIRECT,
           "/api/items/ redirects to the POST-only /api/items");
    is_str(allow.data, "/api/items", "redirect to /api/items");
    is_int(match(&r, &req, "GET", "/api/nothing/", &t, &allow), M8_MATCH_NOT_FOUND,
           "no redirect when neither form matches");
    is_int(allow.len, 0, "allow empty on 404");
    is_int(match(&r, &req, "GET", "/api/health/", &t, &allow), M8_MATCH_OK, "slash form matches");

    /* odd inputs */
    is_int(match(&r, &req, "GET", NULL, &t, &allow), M8_MATCH_NOT_FOUND, "NULL path is 404");
    is_int(match(&r, &req, "GET", "api", &t, &allow), M8_MATCH_NOT_FOUND, "relative path is 404");
    is_int(match(&r, &req, NULL, "/api/plain", &t, &allow), M8_MATCH_METHOD, "NULL method is 405");

    m8_buf_free(&allow);
    m8_req_free(&req);
    m8_router_free(&r);

    /* a literal registered first wins over a later capture */
    m8_router_init(&r);
    m8_route lit = R("GET", "/items/special"), cap = R("GET", "/items/{id}");
    m8_router_add(&r, "", &lit, err, sizeof err);
    m8_router_add(&r, "", &cap, err, sizeof err);
    m8_req_init(&req, NULL);
    m8_buf_init(&allow, 4096);
    is_int(match(&r, &req, "GET", "/items/special", &t, &allow), M8_MATCH_OK, "literal first");
    is_str(t, "/items/special", "registration order decides");
    is_int(req.n_path_params, 0, "no captures for a literal route");
    is_int(match(&r, &req, "GET", "/items/other", &t, &allow), M8_MATCH_OK, "capture second");
    is_str(t, "/items/{id}", "falls through to the capture");
    m8_buf_free(&allow);
    m8_req_free(&req);
    m8_router_free(&r);
}

int main(void)
{
    test_add();
    test_refused();
    test_match();
    return done_testing();
}
