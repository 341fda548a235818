/* test_app - the in-process harness: boots an app from an environment and
 * drives requests through the whole pipeline without sockets. */
#include "config.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "core/log.h"
#include "tap.h"
#include "testenv.h"

typedef struct resp {
    int status;
    char head[8192];
    char body[65536];
} resp;

/* Finds header `name` (case-insensitive) in the rendered head; NULL if absent. */
static const char *hdr(const resp *r, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (const char *line = r->head; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > nl + 1 && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t vl = len - (size_t)(v - line);
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        line = eol ? eol + 2 : NULL;
    }
    return NULL;
}

/* Sends method+uri with extra "NAME=value" params (NULL-terminated). */
static resp *send_req(m8_app *app, const char *method, const char *uri, const char *body,
                      const char *const *extra)
{
    static resp r;
    m8_pair p[64];
    size_t n = 0;
    p[n++] = (m8_pair){"REQUEST_METHOD", method};
    p[n++] = (m8_pair){"REQUEST_URI", uri};
    const char *q = strchr(uri, '?');
    p[n++] = (m8_pair){"QUERY_STRING", q ? q + 1 : ""};
    p[n++] = (m8_pair){"HTTP_HOST", "localhost"};
    char *owned[32];
    size_t n_owned = 0;
    for (; extra && *extra && n < 60; extra++) {
        const char *eq = strchr(*extra, '=');
        char *name = strndup(*extra, (size_t)(eq - *extra));
        owned[n_owned++] = name;
        p[n++] = (m8_pair){name, eq + 1};
    }
    char cl[32];
    if (body) {
        snprintf(cl, sizeof cl, "%zu", strlen(body));
        p[n++] = (m8_pair){"CONTENT_LENGTH", cl};
        p[n++] = (m8_pair){"CONTENT_TYPE", "application/json"};
    }
    m8_buf out;
    m8_buf_init(&out, 1 << 24);
    m8_app_handle_params(app, p, n, body, body ? strlen(body) : 0, &out);
    memset(&r, 0, sizeof r);
    const char *sep = out.data ? strstr(out.data, "\r\n\r\n") : NULL;
    if (sep) {
        size_t hl = (size_t)(sep - out.data) + 2;
        memcpy(r.head, out.data, hl < sizeof r.head - 1 ? hl : sizeof r.head - 1);
        snprintf(r.body, sizeof r.body, "%s", sep + 4);
        if (strncmp(out.data, "Status: ", 8) == 0)
            r.status = (int)strtol(out.data + 8, NULL, 10);
    }
    m8_buf_free(&out);
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    return &r;
}

static int h_hello(m8_request *req, void *data)
{
    (void)data;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "hello", json_object_new_string(m8_req_path_param(req, "name")));
    const char *q = m8_req_query(req, "q");
    if (q)
        json_object_object_add(o, "q", json_object_new_string(q));
    return m8_res_json(req, 200, o);
}

static int h_echo(m8_request *req, void *data)
{
    (void)data;
    return m8_res_json(req, 201, json_object_get(m8_req_json(req)));
}

static int h_fail(m8_request *req, void *data)
{
    (void)data;
    return m8_req_fail(req, "db password hunter2 rejected");
}

static int h_nothing(m8_request *req, void *data)
{
    (void)req;
    (void)data;
    return 0;
}

static const m8_route routes[] = {
    {"GET", "/hello/{name}", M8_PUBLIC, h_hello, NULL, "Hello", "t", 0},
    {"POST", "/echo", M8_PUBLIC, h_echo, NULL, "Echo", "t", M8_ROUTE_JSON_BODY},
    {"GET", "/fail", M8_PUBLIC, h_fail, NULL, NULL, NULL, 0},
    {"GET", "/nothing", M8_PUBLIC, h_nothing, NULL, NULL, NULL, 0},
    {"DELETE", "/hello/{name}", M8_ADMIN, h_hello, NULL, "Delete", "t", 0},
};

static m8_app *boot(char **env, int *rc_out)
{
    m8_app *app = m8_app_new("svc", "9.9.9");
    m8_app_add_routes(app, routes, M8_ARRAY_LEN(routes));
    m8_app_set_max_body(app, 64);
    m8_settings_source src = {.env = env, .env_file = "/dev/null", .cwd = "/"};
    int rc = m8_app_boot(app, &src);
    if (rc_out)
        *rc_out = rc;
    if (rc) {
        m8_app_free(app);
        return NULL;
    }
    return app;
}

static int refuse(const m8_settings *s, char *err, size_t errlen, void *data)
{
    (void)s;
    (void)data;
    snprintf(err, errlen, "no coffee");
    return 1;
}

static void test_boot_failures(void)
{
    int rc;
    ok(boot(m8t_env("-SERVICE_VERSION", NULL), &rc) == NULL && rc == 78,
       "boot: missing SERVICE_VERSION exits 78");
    ok(boot(m8t_env("ACCESS_PRIVATE_KEY_FILE=/dev/null", NULL), &rc) == NULL && rc == 78,
       "boot: a fatal config-health finding exits 78");

    static const m8_route bad[] = {{"GET", "/x", M8_ACCESS_UNSET, h_hello, NULL, NULL, NULL, 0}};
    m8_app *app = m8_app_new(NULL, NULL);
    m8_app_add_routes(app, bad, 1);
    m8_settings_source src = {.env = m8t_env0(), .env_file = "/dev/null", .cwd = "/"};
    is_int(m8_app_boot(app, &src), 78, "boot: a route that declares no access is refused");
    m8_app_free(app);

    app = m8_app_new(NULL, NULL);
    m8_app_add_validator(app, "coffee", refuse, NULL);
    is_int(m8_app_boot(app, &src), 78, "boot: a failing startup validator exits 78");
    m8_app_free(app);
}

static void test_builtins(void)
{
    char h[512];
    m8_app *app = boot(m8t_env0(), NULL);
    resp *r = send_req(app, "GET", "/api/health/", NULL, NULL);
    is_int(r->status, 503, "health before ready: 503");
    is_str(r->body, "{\"status\":\"initializing\",\"ready\":false}", "health before ready: body");
    r = send_req(app, "GET", "/ping", NULL, NULL);
    ok(r->status == 200 && strcmp(r->body, "{\"status\":\"ok\"}") == 0,
       "/ping answers before ready");
    r = send_req(app, "GET", "/api/hello/x", NULL, NULL);
    is_int(r->status, 503, "a service route answers 503 before ready");
    is_int(m8_app_start(app), 0, "startup hooks pass");
    r = send_req(app, "GET", "/api/health/", NULL, NULL);
    ok(r->status == 200 && strcmp(r->body, "{\"status\":\"ok\"}") == 0,
       "health after ready: 200 ok");
    r = send_req(app, "GET", "/api/ping", NULL, NULL);
    ok(r->status == 200 && strcmp(r->body, "{\"status\":\"ok\"}") == 0,
       "{API_PREFIX}/ping answers");
    r = send_req(app, "GET", "/api/meta", NULL, NULL);
    is_str(
        r->body,
        "{\"service\":\"test-service\",\"version\":\"1.0.0\",\"api_version\":\"v1\",\"contract\":"
        "{\"name\":\"test-service\",\"version\":\"1.0\",\"range\":\">=1.0.0 <2.0.0\"}}",
        "meta body");
    is_str(hdr(r, "Cache-Control", h, sizeof h), "public, max-age=300", "meta Cache-Control");
    r = send_req(app, "GET", "/api/health", NULL, NULL);
    ok(r->status == 307 && hdr(r, "Location", h, sizeof h) && strcmp(h, "/api/health/") == 0,
       "GET /api/health redirects 307 to /api/health/");
    r = send_req(app, "GET", "/api/health?a=1&b=x%20y", NULL, NULL);
    ok(r->status == 307 && hdr(r, "Location", h, sizeof h) &&
           strcmp(h, "/api/health/?a=1&b=x%20y") == 0,
       "the 307 slash redirect keeps the query as sent");
    r = send_req(app, "GET", "/api/health?a=\x01\"<>", NULL, NULL);
    ok(r->status == 307 && hdr(r, "Location", h, sizeof h) &&
           strcmp(h, "/api/health/?a=%01%22%3C%3E") == 0,
       "the 307 slash redirect percent-encodes query bytes a header cannot carry (never drops "
       "the Location)");
    r = send_req(app, "GET", "/api/openapi.json", NULL, NULL);
    ok(r->status == 200 && strstr(r->body, "\"openapi\":\"3.1.0\"") != NULL,
       "openapi.json served outside production");
    r = send_req(app, "GET", "/api/docs", NULL, NULL);
    is_int(r->status, 200, "docs page served outside production");
    m8_app_free(app);

    app = boot(m8t_env("ENVIRONMENT=production", "BACKEND_CORS_ORIGINS=https://app.example.com",
                       "FRONTEND_HOST=https://app.example.com", "ALLOWED_HOSTS=localhost", NULL),
               NULL);
    ok(app != NULL, "production settings boot");
    if (app) {
        m8_app_start(app);
        r = send_req(app, "GET", "/api/openapi.json", NULL, NULL);
        is_int(r->status, 404, "openapi.json gated off in production");
        r = send_req(app, "GET", "/api/docs", NULL, NULL);
        is_int(r->status, 404, "docs gated off in production");
        r = send_req(app, "GET", "/api/redoc", NULL, NULL);
        is_int(r->status, 404, "redoc gated off in production");
        r = send_req(app, "GET", "/api/ping", NULL, NULL);
        is_str(hdr(r, "Referrer-Policy", h, sizeof h), "strict-origin-when-cross-origin",
               "production responses carry tier-2 headers");
        m8_app_free(app);
    }
}

static void test_errors(void)
{
    char h[512];
    m8_app *app = boot(m8t_env0(), NULL);
    m8_app_start(app);
    resp *r = send_req(app, "GET", "/api/nope", NULL, NULL);
    ok(r->status == 404 && strcmp(r->body, "{\"detail\":\"Not Found\"}") == 0,
       "unknown path: 404 Not Found");
    is_str(hdr(r, "X-Content-Type-Options", h, sizeof h), "nosniff",
           "a 404 carries the security headers");
    r = send_req(app, "PUT", "/api/hello/x", NULL, NULL);
    ok(r->status == 405 && strcmp(r->body, "{\"detail\":\"Method Not Allowed\"}") == 0,
       "wrong method: 405");
    is_str(hdr(r, "Allow", h, sizeof h), "GET, DELETE",
           "405 lists every method of the path in Allow");
    r = send_req(app, "HEAD", "/api/ping", NULL, NULL);
    ok(r->status == 405 && hdr(r, "Allow", h, sizeof h) && strcmp(h, "GET") == 0,
       "HEAD on a GET route: 405 with Allow: GET (no implicit HEAD)");
    r = send_req(app, "GET", "/api/hello/w%C3%B6rld?q=a+b", NULL, NULL);
    ok(r->status == 200 && strcmp(r->body, "{\"hello\":\"w\xc3\xb6rld\",\"q\":\"a b\"}") == 0,
       "path params and query are decoded");
    r = send_req(app, "POST", "/api/echo", "{\"a\":[1,2]}", NULL);
    ok(r->status == 201 && strcmp(r->body, "{\"a\":[1,2]}") == 0, "JSON body parsed and echoed");
    r = send_req(app, "POST", "/api/echo", "{\"a\":", NULL);
    ok(r->status == 422 && strstr(r->body, "json_invalid") != NULL,
       "invalid JSON body: 422 with a detail list");
    char big[66];
    memset(big, ' ', 65);
    big[65] = '\0';
    big[0] = '1';
    r = send_req(app, "POST", "/api/echo", big, NULL);
    is_int(r->status, 413, "a body one byte past the limit: 413");
    big[64] = '\0';
    r = send_req(app, "POST", "/api/echo", big, NULL);
    is_int(r->status, 201, "a body exactly at the limit is accepted");
    r = send_req(app, "GET", "/api/fail", NULL, NULL);
    ok(r->status == 500 && strcmp(r->body, "{\"detail\":\"Internal Server Error\"}") == 0,
       "a failing handler: 500 with the generic detail");
    ok(strstr(r->body, "hunter2") == NULL && strstr(r->head, "hunter2") == NULL,
       "the failure reason is never sent");
    r = send_req(app, "GET", "/api/nothing", NULL, NULL);
    is_int(r->status, 500, "a handler that sets no response: 500");
    r = send_req(app, "GET", "/api/hello/%00x", NULL, NULL);
    is_int(r->status, 400, "a path with %%00: 400");
    m8_app_free(app);
}

static void test_auth_and_middleware(void)
{
    char h[512];
    m8_app *app = boot(m8t_env("ALLOWED_HOSTS=api.example.com", NULL), NULL);
    m8_app_start(app);
    static const char *const bad_host[] = {"HTTP_HOST=evil.example.com",
                                           "HTTP_ORIGIN=http://localhost:3000", NULL};
    resp *r = send_req(app, "GET", "/api/ping", NULL, bad_host);
    ok(r->status == 400 && strcmp(r->body, "Invalid host header") == 0, "untrusted Host: 400");
    ok(!hdr(r, "Access-Control-Allow-Credentials", h, sizeof h),
       "the trusted-host 400 carries no CORS headers");
    is_str(hdr(r, "X-Frame-Options", h, sizeof h), "DENY",
           "the trusted-host 400 carries security headers");
    m8_app_free(app);

    app = boot(m8t_env0(), NULL);
    m8_app_start(app);
    r = send_req(app, "DELETE", "/api/hello/x", NULL, NULL);
    ok(r->status == 401 && strcmp(r->body, "{\"detail\":\"Not authenticated\"}") == 0,
       "protected route without a token: 401");
    is_str(hdr(r, "WWW-Authenticate", h, sizeof h), "Bearer",
           "401 carries WWW-Authenticate: Bearer");
    static const char *const tok[] = {"HTTP_AUTHORIZATION=Bearer abc.def.ghi", NULL};
    r = send_req(app, "DELETE", "/api/hello/x", NULL, tok);
    is_int(r->status, 401, "protected route with an unverifiable token: 401 (fails closed)");
    static const char *const pre[] = {"HTTP_ORIGIN=http://localhost:3000",
                                      "HTTP_ACCESS_CONTROL_REQUEST_METHOD=POST", NULL};
    r = send_req(app, "OPTIONS", "/api/echo", NULL, pre);
    ok(r->status == 200 && strcmp(r->body, "OK") == 0,
       "CORS preflight from an allowed origin: 200 OK");
    is_str(hdr(r, "Access-Control-Allow-Origin", h, sizeof h), "http://localhost:3000",
           "preflight allows the origin");
    static const char *const rid[] = {"HTTP_X_REQUEST_ID=abc-123", NULL};
    r = send_req(app, "GET", "/api/ping", NULL, rid);
    is_str(hdr(r, "X-Request-ID", h, sizeof h), "abc-123", "a valid client X-Request-ID is echoed");
    r = send_req(app, "GET", "/api/ping", NULL, NULL);
    ok(hdr(r, "X-Request-ID", h, sizeof h) && strlen(h) > 0, "a request id is generated otherwise");
    m8_app_free(app);
}

static int hook(m8_request *req, void *data)
{
    (void)data;
    const char *ra = m8_req_param(req, "REMOTE_ADDR");
    if (ra && strcmp(ra, "10.9.9.9") == 0)
        return m8_res_error(req, 403, "blocked") == 0 ? 1 : -1;
    return 0;
}

static void test_hook(void)
{
    m8_app *app = m8_app_new(NULL, NULL);
    m8_app_on_request(app, hook, NULL);
    m8_settings_source src = {.env = m8t_env0(), .env_file = "/dev/null", .cwd = "/"};
    m8_app_boot(app, &src);
    m8_app_start(app);
    static const char *const blocked[] = {"REMOTE_ADDR=10.9.9.9", NULL};
    resp *r = send_req(app, "GET", "/api/ping", NULL, blocked);
    is_int(r->status, 403, "the raw request hook can answer a request itself");
    r = send_req(app, "GET", "/api/ping", NULL, NULL);
    is_int(r->status, 200, "the raw request hook lets other requests through");
    m8_app_free(app);
}

/* A response too large for the output buffer: the fixed 500 written
 * instead must be a well-formed answer (a Content-Length past the body
 * leaves the web server waiting for bytes that never come). */
static void test_render_fallback(void)
{
    m8_app *app = boot(m8t_env0(), NULL);
    m8_app_start(app);
    m8_pair p[] = {{"REQUEST_METHOD", "GET"},
                   {"REQUEST_URI", "/api/openapi.json"},
                   {"HTTP_HOST", "localhost"}};
    m8_request req;
    m8_req_init(&req, app);
    m8_buf out;
    m8_buf_init(&out, 512); /* the OpenAPI document is larger */
    m8_app_respond(app, &req, p, M8_ARRAY_LEN(p), NULL, 0, 0, &out);
    const char *text = out.data ? out.data : "";
    const char *sep = strstr(text, "\r\n\r\n");
    const char *cl = strstr(text, "Content-Length: ");
    ok(strncmp(text, "Status: 500 ", 12) == 0 && sep && cl && cl < sep &&
           strtol(cl + 16, NULL, 10) == (long)strlen(sep + 4),
       "a response that cannot be rendered becomes a 500 whose Content-Length matches its body");
    m8_buf_free(&out);
    m8_req_free(&req);
    m8_app_free(app);
}

static int on_db_open(m8_app *app, void *data)
{
    (void)app;
    (void)data;
    return 0;
}

/* Each app owns its database pool: any number of apps can ask for a
 * database at once (no fixed table of apps shared by the process). */
static void test_many_apps_with_database(void)
{
    enum { N = 40 };
    m8_app *apps[N];
    int failed = 0;
    for (int i = 0; i < N; i++) {
        apps[i] = m8_app_new("svc", "1.0.0");
        if (!apps[i] || m8_app_use_database(apps[i], M8_DB_OPTIONAL, 1, 1) != 0 ||
            m8_app_on_database(apps[i], on_db_open, NULL) != 0)
            failed++;
    }
    ok(failed == 0,
       "%d apps in one process each take m8_app_use_database and "
       "m8_app_on_database (%d refused)",
       N, failed);
    ok(m8_app_db(apps[N - 1]) == NULL, "an app whose database is not booted has no handle");
    for (int i = 0; i < N; i++)
        m8_app_free(apps[i]);
    m8_app *bare = m8_app_new("svc", "1.0.0");
    ok(bare && m8_app_on_database(bare, on_db_open, NULL) == M8_ESTATE,
       "m8_app_on_database before m8_app_use_database is refused (M8_ESTATE)");
    m8_app_free(bare);
}

int main(void)
{
    m8_log_set_level(M8_LOG_CRITICAL); /* keep the TAP log readable */
    test_boot_failures();
    test_builtins();
    test_errors();
    test_auth_and_middleware();
    test_hook();
    test_render_fallback();
    test_many_apps_with_database();
    return done_testing();
}
