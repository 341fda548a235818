/* test_docs.c - the OpenAPI document and the docs pages (doc/responses.md#docs). */
#include "builtin/docs.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static int noop(m8_request *req, void *data)
{
    (void)req;
    (void)data;
    return 0;
}

#define ROUTE(m, p, acc, sum, tg, fl)                                                              \
    {                                                                                              \
        .method = (char *)(m), .template = (char *)(p), .access = (acc), .handler = noop,          \
        .summary = (sum), .tag = (tg), .flags = (fl)                                               \
    }

static m8_route_entry routes[] = {
    ROUTE("GET", "/api/health/", M8_PUBLIC, NULL, NULL, M8_ROUTE_HIDDEN),
    ROUTE("GET", "/api/meta", M8_PUBLIC, "Service meta", "meta", 0),
    ROUTE("GET", "/api/ping", M8_PUBLIC, NULL, NULL, 0),
    ROUTE("GET", "/api/items", M8_READER, "List items", "items", 0),
    ROUTE("POST", "/api/items", M8_WRITER, "Create item", "items", M8_ROUTE_JSON_BODY),
    ROUTE("GET", "/api/items/{item_id}", M8_USER, "Read item", "items", 0),
    ROUTE("DELETE", "/api/items/{item_id}/tags/{tag}", M8_ADMIN, NULL, "items", 0),
    ROUTE("PUT", "/api/a-b", M8_SUPERUSER, NULL, NULL, M8_ROUTE_JSON_BODY),
    ROUTE("PUT", "/api/a_b", M8_SUPERUSER, NULL, NULL, 0),
    ROUTE("GET", "/status", M8_PUBLIC, NULL, NULL, M8_ROUTE_ABSOLUTE),
};

static m8_settings settings(void)
{
    m8_settings s;
    memset(&s, 0, sizeof s);
    s.project_name = "test-service";
    s.service_version = "1.0.0";
    s.api_prefix = "/api";
    s.auth_prefix = "/auth";
    return s;
}

/* The value at a '/'-separated path of object keys (no array steps). */
static json_object *at(json_object *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL;
    for (char *k = strtok_r(buf, "|", &save); k && o; k = strtok_r(NULL, "|", &save)) {
        json_object *next = NULL;
        if (!json_object_object_get_ex(o, k, &next))
            return NULL;
        o = next;
    }
    return o;
}

static const char *str_at(json_object *o, const char *path)
{
    json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static void test_document(void)
{
    m8_settings s = settings();
    m8_router r = {routes, M8_ARRAY_LEN(routes)};
    m8_docs d;
    is_int(m8_docs_init(&d, &s, &r, NULL, NULL), 0, "docs: init");
    json_object *doc = json_tokener_parse(d.openapi);
    ok(doc != NULL, "openapi: valid JSON");
    is_int(d.openapi_len, strlen(d.openapi), "openapi: length recorded");
    is_str(str_at(doc, "openapi"), "3.1.0", "openapi: version 3.1.0");
    is_str(str_at(doc, "info|title"), "test-service", "openapi: title is PROJECT_NAME");
    is_str(str_at(doc, "info|version"), "1.0.0", "openapi: version is SERVICE_VERSION");
    ok(strstr(d.openapi, "\\/") == NULL, "openapi: slashes not escaped");
    ok(strncmp(d.openapi, "{\"openapi\":\"3.1.0\",\"info\":{", 26) == 0,
       "openapi: compact, openapi then info first");

    json_object *paths = at(doc, "paths");
    ok(paths != NULL, "openapi: has paths");
    ok(at(paths, "/api/health/") == NULL, "openapi: hidden route left out");
    ok(at(paths, "/api/meta|get") != NULL, "openapi: /api/meta get");
    ok(at(paths, "/api/ping|get") != NULL, "openapi: /api/ping get");
    ok(at(paths, "/api/items|get") && at(paths, "/api/items|post"),
       "openapi: two methods under one path");
    ok(at(paths, "/api/items/{item_id}|get") != NULL, "openapi: templated path kept as is");
    ok(at(paths, "/status|get") != NULL, "openapi: absolute route present");
    is_int(json_object_object_length(paths), 8, "openapi: one path item per visible template");

    /* operationIds, summaries, tags */
    is_str(str_at(paths, "/api/items|get|operationId"), "items-get__api_items",
           "operationId: <tag>-<method>_<path>");
    is_str(str_at(paths, "/api/ping|get|operationId"), "default-get__api_ping",
           "operationId: 'default' without a tag");
    is_str(str_at(paths, "/api/items/{item_id}|get|operationId"), "items-get__api_items__item_id_",
           "operationId: braces become _");
    is_str(str_at(paths, "/api/a-b|put|operationId"), "default-put__api_a_b",
           "operationId: first of two colliding ids");
    is_str(str_at(paths, "/api/a_b|put|operationId"), "default-put__api_a_b_2",
           "operationId: the collision gets _2 (ids unique)");
    is_str(str_at(paths, "/api/items|get|summary"), "List items", "summary from the route");
    is_str(str_at(paths, "/api/ping|get|summary"), "GET /api/ping", "summary fallback");
    json_object *tags = at(paths, "/api/items|get|tags");
    ok(tags && json_object_array_length(tags) == 1 &&
           strcmp(json_object_get_string(json_object_array_get_idx(tags, 0)), "items") == 0,
       "tags: [tag]");
    ok(at(paths, "/api/ping|get|tags") == NULL, "tags: none without a tag");

    /* path parameters */
    json_object *params = at(paths, "/api/items/{item_id}/tags/{tag}|delete|parameters");
    ok(params && json_object_array_length(params) == 2, "params: two captures, two parameters");
    json_object *p0 = params ? json_object_array_get_idx(params, 0) : NULL;
    json_object *p1 = params ? json_object_array_get_idx(params, 1) : NULL;
    is_str(str_at(p0, "name"), "item_id", "params: first name");
    is_str(str_at(p1, "name"), "tag", "params: second name");
    is_str(str_at(p0, "in"), "path", "params: in path");
    ok(at(p0, "required") && json_object_get_boolean(at(p0, "required")), "params: required");
    is_str(str_at(p0, "schema|type"), "string", "params: schema string");
    ok(at(paths, "/api/items|get|parameters") == NULL, "params: none without captures");

    /* bodies and responses */
    ok(at(paths, "/api/items|post|requestBody|content|application/json|schema") != NULL,
       "requestBody: application/json on a JSON-body route");
    is_str(str_at(paths, "/api/items|post|requestBody|content|application/json|schema|type"),
           "object", "requestBody: any object");
    ok(at(paths, "/api/items|get|requestBody") == NULL, "requestBody: none otherwise");
    ok(at(paths, "/api/items|post|responses|422") != NULL, "422: on a JSON-body route");
    is_str(str_at(paths, "/api/items|post|responses|422|content|application/json|schema|$ref"),
           "#/components/schemas/HTTPValidationError", "422: HTTPValidationError schema");
    ok(at(paths, "/api/items|get|responses|422") == NULL, "422: not on other routes");
    is_str(str_at(paths, "/api/ping|get|responses|200|description"), "Successful Response",
           "200: Successful Response everywhere");
    ok(at(doc, "components|schemas|HTTPValidationError") &&
           at(doc, "components|schemas|ValidationError"),
       "components: validation schemas present");

    /* security */
    const char *protected_ops[] = {"/api/items|get", "/api/items|post", "/api/items/{item_id}|get",
                                   "/api/items/{item_id}/tags/{tag}|delete", "/api/a-b|put"};
    for (size_t i = 0; i < M8_ARRAY_LEN(protected_ops); i++) {
        char path[128];
        snprintf(path, sizeof path, "%s|security", protected_ops[i]);
        json_object *sec = at(paths, path);
        ok(sec && json_object_array_length(sec) == 1 &&
               at(json_object_array_get_idx(sec, 0), "OAuth2PasswordBearer") != NULL,
           "security: protected %s has OAuth2PasswordBearer", protected_ops[i]);
    }
    const char *public_ops[] = {"/api/meta|get", "/api/ping|get", "/status|get"};
    for (size_t i = 0; i < M8_ARRAY_LEN(public_ops); i++) {
        char path[128];
        snprintf(path, sizeof path, "%s|security", public_ops[i]);
        ok(at(paths, path) == NULL, "security: public %s has none", public_ops[i]);
    }
    is_str(str_at(doc, "components|securitySchemes|OAuth2PasswordBearer|type"), "oauth2",
           "securitySchemes: oauth2");
    is_str(str_at(doc, "components|securitySchemes|OAuth2PasswordBearer|flows|password|tokenUrl"),
           "/auth/login/access-token",
           "securitySchemes: tokenUrl {AUTH_PREFIX}/login/access-token");
    ok(at(doc, "components|securitySchemes|OAuth2PasswordBearer|flows|password|scopes") != NULL,
       "securitySchemes: scopes {}");
    like(d.openapi,
         "\"securitySchemes\":{\"OAuth2PasswordBearer\":{\"type\":\"oauth2\",\"flows\":{"
         "\"password\":"
         "{\"scopes\":{},\"tokenUrl\":\"/auth/login/access-token\"}}}}",
         "securitySchemes: exact form");
    json_object_put(doc);
    m8_docs_free(&d);
    ok(d.openapi == NULL && d.docs_html == NULL, "docs: free clears");
}

static void test_variants(void)
{
    m8_settings s = settings();
    s.auth_prefix = "/identity/v2";
    m8_router r = {routes, M8_ARRAY_LEN(routes)};
    m8_docs d;
    is_int(m8_docs_init(&d, &s, &r, "item-service", "9.9.9"), 0, "docs: init with names");
    json_object *doc = json_tokener_parse(d.openapi);
    is_str(str_at(doc, "info|title"), "item-service",
           "title: service_name wins (doc/design.md#boot)");
    is_str(str_at(doc, "info|version"), "9.9.9",
           "version: service_version wins (doc/design.md#boot)");
    is_str(str_at(doc, "components|securitySchemes|OAuth2PasswordBearer|flows|password|tokenUrl"),
           "/identity/v2/login/access-token", "tokenUrl follows AUTH_PREFIX");
    json_object_put(doc);
    m8_docs_free(&d);

    s.auth_prefix = NULL;
    m8_docs_init(&d, &s, &r, "", "");
    doc = json_tokener_parse(d.openapi);
    is_str(str_at(doc, "info|title"), "test-service",
           "title: empty service_name uses PROJECT_NAME");
    is_str(str_at(doc, "components|securitySchemes|OAuth2PasswordBearer|flows|password|tokenUrl"),
           "/auth/login/access-token", "tokenUrl: AUTH_PREFIX default /auth");
    json_object_put(doc);
    m8_docs_free(&d);

    /* only public routes: no security scheme, no validation schemas */
    m8_router pub = {routes, 3};
    s = settings();
    m8_docs_init(&d, &s, &pub, NULL, NULL);
    doc = json_tokener_parse(d.openapi);
    ok(at(doc, "components") == NULL, "public-only document has no components");
    is_int(json_object_object_length(at(doc, "paths")), 2, "public-only document: two paths");
    json_object_put(doc);
    m8_docs_free(&d);

    /* empty router */
    m8_router none = {NULL, 0};
    is_int(m8_docs_init(&d, &s, &none, NULL, NULL), 0, "docs: empty router");
    like(d.openapi, "\"paths\":{}", "docs: empty paths object");
    m8_docs_free(&d);

    s.project_name = NULL;
    is_int(m8_docs_init(&d, &s, &none, NULL, NULL), M8_ECONFIG, "docs: no title refused");
}

/* ---- described query parameters and form fields (m8_app_describe_route) */

static m8_doc_param list_params[] = {
    {"skip", NULL, "0", M8_PARAM_IN_QUERY, M8_PARAM_INTEGER, false},
    {"limit", "Rows to return", "100", M8_PARAM_IN_QUERY, M8_PARAM_INTEGER, false},
    {"verbose", NULL, "false", M8_PARAM_IN_QUERY, M8_PARAM_BOOLEAN, false},
    {"q", NULL, NULL, M8_PARAM_IN_QUERY, M8_PARAM_STRING, true},
};
static m8_route_doc list_doc = {"GET", "/items", list_params, M8_ARRAY_LEN(list_params), true};

static m8_doc_param login_params[] = {
    {"grant_type", "password or client_credentials", NULL, M8_PARAM_IN_FORM, M8_PARAM_STRING,
     false},
    {"username", NULL, NULL, M8_PARAM_IN_FORM, M8_PARAM_STRING, true},
    {"password", NULL, NULL, M8_PARAM_IN_FORM, M8_PARAM_PASSWORD, true},
    {"scope", NULL, "", M8_PARAM_IN_FORM, M8_PARAM_STRING, false},
    {"next", NULL, NULL, M8_PARAM_IN_QUERY, M8_PARAM_STRING, false},
};
static m8_route_doc login_doc = {"POST", "/login/{realm}", login_params, M8_ARRAY_LEN(login_params),
                                 true};

static m8_doc_param optional_form[] = {
    {"note", NULL, NULL, M8_PARAM_IN_FORM, M8_PARAM_STRING, false},
};
static m8_route_doc optional_doc = {"PUT", "/notes", optional_form, 1, true};

/* The first element of arr whose "name" is name. */
static json_object *named(json_object *arr, const char *name)
{
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *p = json_object_array_get_idx(arr, i);
        const char *n = str_at(p, "name");
        if (n && strcmp(n, name) == 0)
            return p;
    }
    return NULL;
}

static bool bool_at(json_object *o, const char *path, bool want)
{
    json_object *v = at(o, path);
    return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v) == want;
}

static void test_described(void)
{
    m8_settings s = settings();
    m8_router r0 = {routes, M8_ARRAY_LEN(routes)};
    m8_docs before;
    is_int(m8_docs_init(&before, &s, &r0, NULL, NULL), 0,
           "described: the document without descriptions");

    m8_route_entry rs[M8_ARRAY_LEN(routes) + 2];
    memcpy(rs, routes, sizeof routes);
    size_t nr = M8_ARRAY_LEN(routes);
    rs[nr] = (m8_route_entry)ROUTE("POST", "/api/login/{realm}", M8_PUBLIC, "Login", "login", 0);
    rs[nr + 1] = (m8_route_entry)ROUTE("PUT", "/api/notes", M8_USER, NULL, NULL, 0);
    rs[3].doc = &list_doc; /* GET /api/items */
    rs[nr].doc = &login_doc;
    rs[nr + 1].doc = &optional_doc;
    m8_router r = {rs, M8_ARRAY_LEN(rs)};
    m8_docs d;
    is_int(m8_docs_init(&d, &s, &r, NULL, NULL), 0, "described: init");
    json_object *doc = json_tokener_parse(d.openapi);
    ok(doc != NULL, "described: valid JSON");
    json_object *paths = at(doc, "paths");

    /* query parameters, in the declared order, after the path ones */
    json_object *qp = at(paths, "/api/items|get|parameters");
    is_int(qp ? json_object_array_length(qp) : 0, 4, "query: one parameter each");
    like(d.openapi,
         "\"parameters\":[{\"name\":\"skip\",\"in\":\"query\",\"required\":false,\"schema\":{"
         "\"type\":\"integer\",\"default\":0}},{\"name\":\"limit\",\"in\":\"query\",\"required\":"
         "false,\"schema\":{\"type\":\"integer\",\"default\":100},\"description\":\"Rows to "
         "return\"},",
         "query: FastAPI's shape (name, in, required, schema with type and a typed default, "
         "description)");
    const char *vt = str_at(named(qp, "verbose"), "schema|type");
    ok(bool_at(named(qp, "verbose"), "schema|default", false) && vt && strcmp(vt, "boolean") == 0,
       "query: a boolean with a boolean default");
    ok(bool_at(named(qp, "q"), "required", true) && at(named(qp, "q"), "schema|default") == NULL,
       "query: a required string, no default");
    ok(at(paths, "/api/items|get|requestBody") == NULL, "query: no requestBody for query only");
    is_str(str_at(paths, "/api/items|get|responses|422|content|application/json|schema|$ref"),
           "#/components/schemas/HTTPValidationError", "query: the route gets the 422 response");

    json_object *lp = at(paths, "/api/login/{realm}|post|parameters");
    const char *in0 = lp ? str_at(json_object_array_get_idx(lp, 0), "in") : NULL;
    const char *n1 = lp ? str_at(json_object_array_get_idx(lp, 1), "name") : NULL;
    ok(lp && json_object_array_length(lp) == 2 && in0 && strcmp(in0, "path") == 0 && n1 &&
           strcmp(n1, "next") == 0,
       "query: after the path parameters; form fields are not parameters");

    /* the form body */
    const char *form = "/api/login/{realm}|post|requestBody|content|"
                       "application/x-www-form-urlencoded|schema";
    char path[256];
    snprintf(path, sizeof path, "%s|type", form);
    is_str(str_at(paths, path), "object", "form: an object schema");
    snprintf(path, sizeof path, "%s|properties|password|format", form);
    is_str(str_at(paths, path), "password", "form: a password field has format password");
    snprintf(path, sizeof path, "%s|properties|scope|default", form);
    is_str(str_at(paths, path), "", "form: an empty default is kept");
    snprintf(path, sizeof path, "%s|properties|grant_type|description", form);
    is_str(str_at(paths, path), "password or client_credentials",
           "form: a field's description is in its schema");
    snprintf(path, sizeof path, "%s|properties|next", form);
    ok(at(paths, path) == NULL, "form: a query parameter is not a form field");
    like(d.openapi,
         "\"requestBody\":{\"content\":{\"application/x-www-form-urlencoded\":{\"schema\":{"
         "\"type\":\"object\",\"properties\":{\"grant_type\":{\"type\":\"string\",\"description\":"
         "\"password or client_credentials\"},\"username\":{\"type\":\"string\"},\"password\":{"
         "\"type\":\"string\",\"format\":\"password\"},\"scope\":{\"type\":\"string\",\"default\":"
         "\"\"}},\"required\":[\"username\",\"password\"]}}},\"required\":true}",
         "form: requestBody exact form (fields in order, required names, body required)");
    ok(at(paths, "/api/login/{realm}|post|requestBody|content|application/json") == NULL,
       "form: no JSON body");
    ok(at(paths, "/api/login/{realm}|post|responses|422") != NULL, "form: the 422 response");
    like(d.openapi,
         "\"requestBody\":{\"content\":{\"application/x-www-form-urlencoded\":{\"schema\":{"
         "\"type\":\"object\",\"properties\":{\"note\":{\"type\":\"string\"}}}}},\"required\":"
         "false}",
         "form: only optional fields: no required list, body not required");
    ok(at(doc, "components|schemas|HTTPValidationError") != NULL,
       "components: validation schemas for the 422");

    /* a route without a description renders as before, byte for byte */
    json_object *b = json_tokener_parse(before.openapi);
    const char *ops[] = {"/api/meta", "/api/items/{item_id}", "/api/a-b", "/status"};
    for (size_t i = 0; i < M8_ARRAY_LEN(ops); i++) {
        json_object *x = at(at(b, "paths"), ops[i]), *y = at(paths, ops[i]);
        char xs[4096];
        snprintf(xs, sizeof xs, "%s",
                 x ? json_object_to_json_string_ext(x, JSON_C_TO_STRING_PLAIN) : "-");
        ok(x && y && strcmp(xs, json_object_to_json_string_ext(y, JSON_C_TO_STRING_PLAIN)) == 0,
           "undescribed: %s unchanged", ops[i]);
    }
    json_object_put(b);
    json_object_put(doc);
    m8_docs_free(&d);
    m8_docs_free(&before);

    /* a described route that is hidden stays out */
    rs[0].doc = &list_doc; /* GET /api/health/, hidden */
    m8_docs_init(&d, &s, &r, NULL, NULL);
    doc = json_tokener_parse(d.openapi);
    ok(at(doc, "paths|/api/health/") == NULL, "described: a hidden route stays hidden");
    json_object_put(doc);
    m8_docs_free(&d);
}

typedef struct resp {
    int status;
    char ctype[64];
    char body[4096];
} resp;

static resp serve(const m8_docs *d, int (*fn)(const m8_docs *, m8_request *))
{
    resp r;
    memset(&r, 0, sizeof r);
    m8_request req;
    m8_req_init(&req, NULL);
    fn(d, &req);
    r.status = req.status;
    snprintf(r.ctype, sizeof r.ctype, "%s", req.content_type ? req.content_type : "");
    snprintf(r.body, sizeof r.body, "%.*s", (int)req.body_out.len,
             req.body_out.data ? req.body_out.data : "");
    m8_req_free(&req);
    return r;
}

static void test_pages(void)
{
    m8_settings s = settings();
    m8_router r = {routes, M8_ARRAY_LEN(routes)};
    m8_docs d;
    m8_docs_init(&d, &s, &r, "Items <&> 'x'", NULL);

    resp o = serve(&d, m8_docs_openapi_handle);
    is_int(o.status, 200, "openapi.json: 200");
    is_str(o.ctype, "application/json", "openapi.json: application/json");
    ok(strncmp(o.body, d.openapi, 100) == 0, "openapi.json: serves the document");

    resp sw = serve(&d, m8_docs_swagger_handle);
    is_int(sw.status, 200, "docs: 200");
    is_str(sw.ctype, "text/html; charset=utf-8", "docs: text/html; charset=utf-8");
    like(sw.body, "<!DOCTYPE html>", "docs: an HTML page");
    like(sw.body, "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
         "docs: Swagger UI bundle from the CDN");
    like(sw.body, "swagger-ui.css", "docs: Swagger UI CSS");
    like(sw.body, "url: '/api/openapi.json'", "docs: points at {API_PREFIX}/openapi.json");
    like(sw.body, "<title>Items &lt;&amp;&gt; &#x27;x&#x27; - Swagger UI</title>",
         "docs: title HTML-escaped");

    resp rd = serve(&d, m8_docs_redoc_handle);
    is_int(rd.status, 200, "redoc: 200");
    is_str(rd.ctype, "text/html; charset=utf-8", "redoc: text/html; charset=utf-8");
    like(rd.body, "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js",
         "redoc: ReDoc bundle from the CDN");
    like(rd.body, "<redoc spec-url=\"/api/openapi.json\"></redoc>",
         "redoc: points at {API_PREFIX}/openapi.json");
    like(rd.body, "<title>Items &lt;&amp;&gt; &#x27;x&#x27; - ReDoc</title>",
         "redoc: title HTML-escaped");
    m8_docs_free(&d);

    s.api_prefix = "/v1/x'y";
    m8_docs_init(&d, &s, &r, NULL, NULL);
    like(d.docs_html, "url: '/v1/x\\u0027y/openapi.json'", "docs: the URL is a safe JS string");
    m8_docs_free(&d);
}

int main(void)
{
    test_document();
    test_variants();
    test_described();
    test_pages();
    return done_testing();
}
