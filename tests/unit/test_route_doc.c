/* test_route_doc.c - m8_app_describe_route (fcgim8(3), "Query parameters
 * and forms"): what a declaration accepts and refuses, the boot checks, and
 * the described parameters in an app's GET {API_PREFIX}/openapi.json
 * (doc/responses.md#docs). */
#include "config.h"

#include "tap.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "core/log.h"
#include "issuer/openapi_doc.h"
#include "testenv.h"

static int h_ok(m8_request *req, void *data)
{
    (void)data;
    return m8_res_body(req, 200, "text/plain", "ok", 2);
}

static const m8_route g_routes[] = {
    {"GET", "/items/", M8_PUBLIC, h_ok, NULL, "List Items", "items", 0},
    {"POST", "/login", M8_PUBLIC, h_ok, NULL, "Login", "login", 0},
    {"POST", "/items/", M8_USER, h_ok, NULL, "Create Item", "items", M8_ROUTE_JSON_BODY},
    {"GET", "/hidden", M8_PUBLIC, h_ok, NULL, NULL, NULL, M8_ROUTE_HIDDEN},
};

static const m8_route_param LIST[] = {
    {"skip", M8_PARAM_IN_QUERY, M8_PARAM_INTEGER, 0, "Rows to skip", "0"},
    {"limit", M8_PARAM_IN_QUERY, M8_PARAM_INTEGER, 0, NULL, "100"},
};
static const m8_route_param FORM[] = {
    {"username", M8_PARAM_IN_FORM, M8_PARAM_STRING, 1, "The email", NULL},
    {"password", M8_PARAM_IN_FORM, M8_PARAM_PASSWORD, 1, NULL, NULL},
    {"remember", M8_PARAM_IN_FORM, M8_PARAM_BOOLEAN, 0, NULL, "false"},
};

/* A declaration of the one param p on GET /items/ (or method); its result. */
static int one(const char *method, m8_route_param p)
{
    m8_app *app = m8_app_new("svc", "1.0.0");
    int rc = m8_app_describe_route(app, method, "/items/", &p, 1);
    m8_app_free(app);
    return rc;
}

static void test_declare(void)
{
    m8_route_param q = {"skip", M8_PARAM_IN_QUERY, M8_PARAM_INTEGER, 0, NULL, "0"};
    is_int(one("GET", q), 0, "declare: an integer query parameter with a default");
    m8_route_param p = q;
    p.name = "";
    is_int(one("GET", p), M8_EINVAL, "declare: an empty name is refused");
    p.name = "1st";
    is_int(one("GET", p), M8_EINVAL, "declare: a name starting with a digit is refused");
    p.name = "a b";
    is_int(one("GET", p), M8_EINVAL, "declare: a space in a name is refused");
    p.name = "a\"b";
    is_int(one("GET", p), M8_EINVAL, "declare: a quote in a name is refused");
    p.name = NULL;
    is_int(one("GET", p), M8_EINVAL, "declare: a NULL name is refused");
    char name[80];
    memset(name, 'a', 64);
    name[64] = '\0';
    p.name = name;
    is_int(one("GET", p), 0, "declare: a 64-byte name is taken");
    name[64] = 'a';
    name[65] = '\0';
    is_int(one("GET", p), M8_EINVAL, "declare: a 65-byte name is refused");
    p.name = "page.size-max_2";
    is_int(one("GET", p), 0, "declare: letters, digits, '.', '-', '_' after the first");

    p = q;
    p.in = M8_PARAM_IN_UNSET;
    is_int(one("GET", p), M8_EINVAL, "declare: a param without a place is refused");
    p.in = (m8_param_in)7;
    is_int(one("GET", p), M8_EINVAL, "declare: an unknown place is refused");
    p = q;
    p.type = M8_PARAM_TYPE_UNSET;
    is_int(one("GET", p), M8_EINVAL, "declare: a param without a type is refused");
    p.type = (m8_param_type)9;
    is_int(one("GET", p), M8_EINVAL, "declare: an unknown type is refused");

    p = q;
    p.default_value = "12x";
    is_int(one("GET", p), M8_EINVAL, "declare: an integer default that is not one is refused");
    p.default_value = "99999999999999999999";
    is_int(one("GET", p), M8_EINVAL, "declare: an integer default past int64 is refused");
    p.default_value = " 1";
    is_int(one("GET", p), M8_EINVAL, "declare: an integer default with a space is refused");
    p.default_value = "-5";
    is_int(one("GET", p), 0, "declare: a negative integer default is taken");
    p.type = M8_PARAM_BOOLEAN;
    p.default_value = "yes";
    is_int(one("GET", p), M8_EINVAL, "declare: a boolean default other than true/false is refused");
    p.default_value = "true";
    is_int(one("GET", p), 0, "declare: a boolean default true");
    p.required = 1;
    is_int(one("GET", p), M8_EINVAL, "declare: a default on a required param is refused");
    p = (m8_route_param){"pw", M8_PARAM_IN_QUERY, M8_PARAM_PASSWORD, 0, NULL, "secret"};
    is_int(one("GET", p), M8_EINVAL, "declare: a default on a password param is refused");

    p = q;
    char desc[600];
    memset(desc, 'd', 512);
    desc[512] = '\0';
    p.description = desc;
    is_int(one("GET", p), 0, "declare: a 512-byte description is taken");
    desc[512] = 'd';
    desc[513] = '\0';
    is_int(one("GET", p), M8_EINVAL, "declare: a 513-byte description is refused");
    p.description = "line\nbreak";
    is_int(one("GET", p), M8_EINVAL, "declare: a control character in a description is refused");
    p.description = "caf\xc3\xa9 \xe2\x82\xac";
    is_int(one("GET", p), 0, "declare: a UTF-8 description is taken");
    p.description = "bad \xc3";
    is_int(one("GET", p), M8_EINVAL, "declare: a truncated UTF-8 sequence is refused");
    p.description = "over \xc0\xaf";
    is_int(one("GET", p), M8_EINVAL, "declare: an overlong UTF-8 form is refused");
    p.description = "surrogate \xed\xa0\x80";
    is_int(one("GET", p), M8_EINVAL, "declare: a UTF-16 surrogate is refused");
    p.description = "del \x7f";
    is_int(one("GET", p), M8_EINVAL, "declare: DEL in a description is refused");
    p.description = "next line \xc2\x85";
    is_int(one("GET", p), M8_EINVAL,
           "declare: a C1 control character (U+0085) in a description is refused");
    p.description = "nbsp\xc2\xa0"
                    "and \xc2\x9f";
    is_int(one("GET", p), M8_EINVAL, "declare: ... also U+009F, the last C1 control character");
    p.description = "nbsp\xc2\xa0only";
    is_int(one("GET", p), 0, "declare: U+00A0, right after the C1 range, is taken");

    p = (m8_route_param){"sort", M8_PARAM_IN_QUERY, M8_PARAM_STRING, 0, NULL, NULL};
    char dflt[200];
    memset(dflt, 'v', 128);
    dflt[128] = '\0';
    p.default_value = dflt;
    is_int(one("GET", p), 0, "declare: a 128-byte string default is taken");
    dflt[128] = 'v';
    dflt[129] = '\0';
    is_int(one("GET", p), M8_EINVAL, "declare: a 129-byte string default is refused");
    p.default_value = "tab\there";
    is_int(one("GET", p), M8_EINVAL, "declare: a control character in a default is refused");
    p.default_value = "\xc2\x85";
    is_int(one("GET", p), M8_EINVAL, "declare: a C1 control character in a default is refused");

    p = (m8_route_param){"note", M8_PARAM_IN_FORM, M8_PARAM_STRING, 0, NULL, NULL};
    is_int(one("GET", p), M8_EINVAL, "declare: a form field on GET is refused (no body)");
    is_int(one("HEAD", p), M8_EINVAL, "declare: ... and on HEAD");
    is_int(one("OPTIONS", p), M8_EINVAL, "declare: ... and on OPTIONS");
    is_int(one("POST", p), 0, "declare: a form field on POST is taken");

    m8_app *app = m8_app_new("svc", "1.0.0");
    m8_route_param two[] = {q, q};
    is_int(m8_app_describe_route(app, "GET", "/items/", two, 2), M8_EINVAL,
           "declare: a name given twice in one place is refused");
    two[1].in = M8_PARAM_IN_FORM;
    two[1].type = M8_PARAM_STRING;
    two[1].default_value = NULL;
    is_int(m8_app_describe_route(app, "POST", "/items/", two, 2), 0,
           "declare: the same name as a query parameter and a form field is taken");
    is_int(m8_app_describe_route(app, "GET", "/items/", LIST, 0), M8_EINVAL,
           "declare: no params is refused");
    is_int(m8_app_describe_route(app, "GET", "/items/", NULL, 1), M8_EINVAL,
           "declare: NULL params is refused");
    is_int(m8_app_describe_route(NULL, "GET", "/items/", LIST, 2), M8_EINVAL,
           "declare: NULL app is refused");
    is_int(m8_app_describe_route(app, NULL, "/items/", LIST, 2), M8_EINVAL,
           "declare: NULL method is refused");
    m8_route_param many[M8_APP_MAX_ROUTE_PARAMS + 1];
    char names[M8_APP_MAX_ROUTE_PARAMS + 1][8];
    for (size_t i = 0; i <= M8_APP_MAX_ROUTE_PARAMS; i++) {
        snprintf(names[i], sizeof names[i], "p%zu", i);
        many[i] = (m8_route_param){names[i], M8_PARAM_IN_QUERY, M8_PARAM_STRING, 0, NULL, NULL};
    }
    is_int(m8_app_describe_route(app, "GET", "/a", many, M8_APP_MAX_ROUTE_PARAMS), 0,
           "declare: 32 params on one route are taken");
    is_int(m8_app_describe_route(app, "GET", "/b", many, M8_APP_MAX_ROUTE_PARAMS + 1), M8_ETOOBIG,
           "declare: 33 params are refused (M8_ETOOBIG)");
    is_int(m8_app_describe_route(app, "GET", "/items/", LIST, 2), 0, "declare: GET /items/");
    is_int(m8_app_describe_route(app, "GET", "/items/", LIST, 1), M8_EINVAL,
           "declare: a second description of the route is refused");
    m8_app_free(app);

    app = m8_app_new("svc", "1.0.0");
    int rc = 0;
    size_t i;
    char path[32];
    for (i = 0; rc == 0 && i <= M8_APP_MAX_ROUTE_DOCS; i++) {
        snprintf(path, sizeof path, "/r%zu", i);
        rc = m8_app_describe_route(app, "GET", path, LIST, 1);
    }
    ok(rc == M8_ETOOBIG && i == M8_APP_MAX_ROUTE_DOCS + 1,
       "declare: 1024 described routes are taken, the 1025th is refused (M8_ETOOBIG)");
    m8_app_free(app);
}

static int boot_with(const char *method, const char *path, const m8_route_param *p, size_t n)
{
    m8_app *app = m8_app_new("svc", "1.0.0");
    m8_app_add_routes(app, g_routes, M8_ARRAY_LEN(g_routes));
    int rc = m8_app_describe_route(app, method, path, p, n);
    m8_settings_source src = {.env = m8t_env0(), .env_file = "/dev/null", .cwd = "/"};
    if (rc == 0)
        rc = m8_app_boot(app, &src);
    m8_app_free(app);
    return rc;
}

static void test_boot(void)
{
    is_int(boot_with("GET", "/items/", LIST, 2), 0, "boot: a described route boots");
    is_int(boot_with("GET", "/nowhere", LIST, 2), 78,
           "boot: a description for a method and path no route has refuses to start");
    is_int(boot_with("PUT", "/items/", LIST, 2), 78, "boot: ... also when only the method differs");
    is_int(boot_with("GET", "/items", LIST, 2), 78,
           "boot: ... or the path differs by its trailing slash");
    is_int(boot_with("POST", "/items/", FORM, 1), 78,
           "boot: form fields on a JSON-body route refuse to start");
    is_int(boot_with("POST", "/items/", LIST, 1), 0,
           "boot: query parameters on a JSON-body route are fine");
    is_int(boot_with("GET", "/hidden", LIST, 1), 0, "boot: a hidden route may be described");
}

static char *get_openapi(m8_app *app)
{
    m8_pair p[] = {{"REQUEST_METHOD", "GET"},
                   {"REQUEST_URI", "/api/openapi.json"},
                   {"QUERY_STRING", ""},
                   {"HTTP_HOST", "localhost"},
                   {"REMOTE_ADDR", "127.0.0.1"}};
    m8_buf out;
    m8_buf_init(&out, 1 << 20);
    m8_app_handle_params(app, p, M8_ARRAY_LEN(p), "", 0, &out);
    const char *sep = out.data ? strstr(out.data, "\r\n\r\n") : NULL;
    char *body = sep && strncmp(out.data, "Status: 200", 11) == 0 ? strdup(sep + 4) : NULL;
    m8_buf_free(&out);
    return body;
}

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static void test_served(void)
{
    m8_app *app = m8_app_new("svc", "1.0.0");
    m8_app_add_routes(app, g_routes, M8_ARRAY_LEN(g_routes));
    is_int(m8_app_describe_route(app, "GET", "/items/", LIST, M8_ARRAY_LEN(LIST)), 0,
           "served: describe GET /items/");
    is_int(m8_app_describe_route(app, "POST", "/login", FORM, M8_ARRAY_LEN(FORM)), 0,
           "served: describe POST /login");
    m8_settings_source src = {.env = m8t_env0(), .env_file = "/dev/null", .cwd = "/"};
    int rc = m8_app_boot(app, &src);
    is_int(rc, 0, "served: the app boots");
    is_int(m8_app_describe_route(app, "GET", "/hidden", LIST, 1), M8_ESTATE,
           "served: m8_app_describe_route after boot: M8_ESTATE");
    if (rc == 0) {
        m8_app_start(app);
        char *body = get_openapi(app);
        json_object *doc = body ? json_tokener_parse(body) : NULL;
        ok(doc != NULL, "served: GET /api/openapi.json answers a document");
        json_object *paths = get(doc, "paths");
        json_object *params = get(get(get(paths, "/api/items/"), "get"), "parameters");
        json_object *p0 = params ? json_object_array_get_idx(params, 0) : NULL;
        json_object *p1 = params ? json_object_array_get_idx(params, 1) : NULL;
        ok(params && json_object_array_length(params) == 2 &&
               strcmp(json_object_get_string(get(p0, "name")), "skip") == 0 &&
               strcmp(json_object_get_string(get(p0, "in")), "query") == 0 &&
               json_object_get_int(get(get(p1, "schema"), "default")) == 100,
           "served: GET /api/items/ lists skip and limit as query parameters");
        json_object *rb = get(get(get(paths, "/api/login"), "post"), "requestBody");
        json_object *schema =
            get(get(get(rb, "content"), "application/x-www-form-urlencoded"), "schema");
        json_object *props = get(schema, "properties");
        json_object *req = get(schema, "required");
        ok(props && json_object_object_length(props) == 3 && get(props, "remember") && req &&
               json_object_array_length(req) == 2,
           "served: POST /api/login has its form body (3 fields, 2 required)");
        ok(body && strstr(body, "\"/api/hidden\"") == NULL, "served: the hidden route stays out");
        json_object_put(doc);
        free(body);
    }
    m8_app_free(app);
}

/* fcgim8-issuer's descriptions (lib/issuer/openapi_doc.c) pass every check
 * of a declaration: a text over a limit would stop the issuer's boot. */
static void test_issuer_tables(void)
{
    m8_app *app = m8_app_new("fa-auth-m8", "2.0.0");
    is_int(m8_issuer_describe_routes(app), 0,
           "issuer: every description of fcgim8-issuer's routes is taken");
    m8_app_free(app);
}

int main(void)
{
    m8_log_set_level(M8_LOG_CRITICAL);
    test_declare();
    test_issuer_tables();
    test_boot();
    test_served();
    return done_testing();
}
