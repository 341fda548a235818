/* test_app - the in-process harness: boots an app from an environment and
 * drives requests through the whole pipeline without sockets. */
#include "config.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/engine.h"
#include "core/b64url.h"
#include "core/log.h"
#include "hsmint.h"
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

/* ------------------------------------------------------------ credential kinds */

#define SECRET "Test-Access-Secret-Key-0123456789abcdef!"
#define SUB "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d"

/* An HS256 access token for role (tests/unit/hsmint.h). */
static const char *hs_token(char *out, size_t outlen, const char *role)
{
    char payload[512];
    return m8t_hs256_sign(out, outlen, SECRET,
                          m8t_access_payload(payload, sizeof payload, role, false, 600));
}

static int h_who(m8_request *req, void *data)
{
    (void)data;
    const m8_user *u = m8_req_user(req);
    return m8_res_body(req, 200, "text/plain", u ? u->id : "-", strlen(u ? u->id : "-"));
}

#define APIKEY_ENV                                                                                 \
    "API_KEY_INTROSPECTION_ENABLED=true",                                                          \
        "API_KEY_INTROSPECTION_URL=http://127.0.0.1:9/api/v1/internal/api-keys/introspect",        \
        "INTERNAL_CLIENT_ID=test-client", "PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789!"

static const m8_route cred_routes[] = {
    {"GET", "/c", M8_USER, h_who, NULL, NULL, NULL, M8_ROUTE_CRED_COOKIE},
    {"GET", "/b", M8_USER, h_who, NULL, NULL, NULL, 0},
    {"GET", "/bc", M8_USER, h_who, NULL, NULL, NULL, M8_ROUTE_CRED_BEARER | M8_ROUTE_CRED_COOKIE},
    {"GET", "/k", M8_READER, h_who, NULL, NULL, NULL, M8_ROUTE_CRED_API_KEY},
    {"GET", "/ak", M8_API_KEY_READER, h_who, NULL, NULL, NULL, 0},
    {"POST", "/w", M8_WRITER, h_who, NULL, NULL, NULL, M8_ROUTE_CRED_BEARER},
};

/* Boots one route (plus nothing else) under env; the exit status. */
static int boot_one(const m8_route *r, char **env)
{
    m8_app *app = m8_app_new("svc", "9.9.9");
    m8_app_add_routes(app, r, 1);
    m8_settings_source src = {.env = env, .env_file = "/dev/null", .cwd = "/"};
    int rc = m8_app_boot(app, &src);
    m8_app_free(app);
    return rc;
}

static void test_cred_kinds(void)
{
    m8_app *app = m8_app_new("svc", "9.9.9");
    m8_app_add_routes(app, cred_routes, M8_ARRAY_LEN(cred_routes));
    m8_settings_source src = {.env =
                                  m8t_env("ACCESS_TOKEN_COOKIE_NAME=__Host-at", APIKEY_ENV, NULL),
                              .env_file = "/dev/null",
                              .cwd = "/"};
    int rc = m8_app_boot(app, &src);
    is_int(rc, 0, "kinds: an app with cookie, bearer and API-key routes boots");
    if (rc) {
        m8_app_free(app);
        return;
    }
    m8_app_start(app);
    char tok[1024], bearer[1100], cookie[1100];
    hs_token(tok, sizeof tok, "writer");
    snprintf(bearer, sizeof bearer, "HTTP_AUTHORIZATION=Bearer %s", tok);
    snprintf(cookie, sizeof cookie, "HTTP_COOKIE=theme=dark; __Host-at=%s", tok);
    const char *const by_bearer[] = {bearer, NULL}, *const by_cookie[] = {cookie, NULL};
    const char *const by_key[] = {"HTTP_X_API_KEY=ak_test_0123456789", NULL};

    resp *r = send_req(app, "GET", "/api/c", NULL, by_cookie);
    ok(r->status == 200 && strcmp(r->body, SUB) == 0,
       "kinds: a cookie-only route takes the token from the cookie");
    r = send_req(app, "GET", "/api/c", NULL, by_bearer);
    ok(r->status == 401 && strcmp(r->body, "{\"detail\":\"Not authenticated\"}") == 0,
       "kinds: a cookie-only route refuses a valid bearer header: 401");
    r = send_req(app, "GET", "/api/b", NULL, by_cookie);
    ok(r->status == 401 && strcmp(r->body, "{\"detail\":\"Not authenticated\"}") == 0,
       "kinds: a default (bearer) route refuses the token cookie: 401");
    r = send_req(app, "GET", "/api/b", NULL, by_bearer);
    ok(r->status == 200 && strcmp(r->body, SUB) == 0, "kinds: a default route takes the bearer");
    r = send_req(app, "GET", "/api/bc", NULL, by_cookie);
    ok(r->status == 200 && strcmp(r->body, SUB) == 0,
       "kinds: a bearer+cookie route: the cookie resolves to the same user");
    r = send_req(app, "GET", "/api/bc", NULL, by_bearer);
    ok(r->status == 200 && strcmp(r->body, SUB) == 0,
       "kinds: a bearer+cookie route: the bearer resolves to the same user");
    r = send_req(app, "GET", "/api/k", NULL, by_bearer);
    ok(r->status == 401 && strcmp(r->body, SUB) != 0,
       "kinds: a reader route by API key refuses a valid bearer: 401");
    r = send_req(app, "GET", "/api/ak", NULL, by_bearer);
    ok(r->status == 401 && strcmp(r->body, SUB) != 0,
       "kinds: an M8_API_KEY_READER route refuses a valid bearer: 401");
    r = send_req(app, "GET", "/api/b", NULL, by_key);
    ok(r->status == 401 && strcmp(r->body, "{\"detail\":\"Not authenticated\"}") == 0,
       "kinds: a bearer route ignores an X-API-Key: 401");
    r = send_req(app, "POST", "/api/w", "{}", by_bearer);
    ok(r->status == 200 && strcmp(r->body, SUB) == 0,
       "kinds: an explicit M8_ROUTE_CRED_BEARER route takes the bearer");
    m8_app_free(app);

    char **env = m8t_env("ACCESS_TOKEN_COOKIE_NAME=__Host-at", APIKEY_ENV, NULL);
    const m8_route pub = {"GET", "/p", M8_PUBLIC, h_who, NULL, NULL, NULL, M8_ROUTE_CRED_BEARER};
    is_int(boot_one(&pub, env), 78, "kinds boot: M8_PUBLIC with a credential kind is refused");
    const m8_route akb = {"GET", "/p", M8_API_KEY_READER,   h_who, NULL,
                          NULL,  NULL, M8_ROUTE_CRED_BEARER};
    is_int(boot_one(&akb, env), 78, "kinds boot: M8_API_KEY_READER with a bearer kind is refused");
    const m8_route adk = {"GET", "/p", M8_ADMIN, h_who, NULL, NULL, NULL, M8_ROUTE_CRED_API_KEY};
    is_int(boot_one(&adk, env), 78, "kinds boot: an API key on an admin route is refused");
    const m8_route pc = {"POST", "/p", M8_USER, h_who, NULL, NULL, NULL, M8_ROUTE_CRED_COOKIE};
    is_int(boot_one(&pc, env), 78, "kinds boot: a cookie route on an unsafe method is refused");
    const m8_route gc = {"GET", "/p", M8_USER, h_who, NULL, NULL, NULL, M8_ROUTE_CRED_COOKIE};
    is_int(boot_one(&gc, env), 0, "kinds boot: a cookie route on GET boots");
    is_int(boot_one(&gc, m8t_env0()), 78,
           "kinds boot: a cookie route without ACCESS_TOKEN_COOKIE_NAME is refused");
    is_int(boot_one(&gc, m8t_env("ACCESS_TOKEN_COOKIE_NAME=a;b", NULL)), 78,
           "kinds boot: an ACCESS_TOKEN_COOKIE_NAME that is no cookie name is refused");
    const m8_route kr = {"GET", "/p", M8_READER, h_who, NULL, NULL, NULL, M8_ROUTE_CRED_API_KEY};
    is_int(boot_one(&kr, m8t_env0()), 78,
           "kinds boot: an API-key kind without API_KEY_INTROSPECTION_ENABLED is refused");
}

static void test_app_options(void)
{
    char h[512];
    static const char *const pre[] = {"HTTP_ORIGIN=http://localhost:3000",
                                      "HTTP_ACCESS_CONTROL_REQUEST_METHOD=POST", NULL};
    m8_app *app = m8_app_new("svc", "9.9.9");
    m8_app_add_routes(app, routes, M8_ARRAY_LEN(routes));
    m8_app_set_cors(app, false);
    m8_app_set_authorizer(app, true);
    m8_settings_source src = {.env = m8t_env0(), .env_file = "/dev/null", .cwd = "/"};
    is_int(m8_app_boot(app, &src), 0, "options: an app with CORS off boots");
    m8_app_start(app);
    resp *r = send_req(app, "OPTIONS", "/api/echo", NULL, pre);
    ok(r->status == 400 && !hdr(r, "Access-Control-Allow-Origin", h, sizeof h),
       "options: with CORS off a preflight from a configured origin is refused");
    size_t n = 0;
    char *const *o = m8_app_cors_origins(app, &n);
    ok(n == 1 && o && strcmp(o[0], "http://localhost:3000") == 0,
       "options: with CORS off the configured origins stay readable");
    m8_engine_opts eo;
    m8_app_engine_opts(app, &eo);
    ok(eo.authorizer, "options: m8_app_set_authorizer reaches the engine options");
    m8_app_free(app);

    app = boot(m8t_env0(), NULL);
    m8_app_engine_opts(app, &eo);
    ok(!eo.authorizer, "options: an app serves no AUTHORIZER role by default");
    ok(m8_app_cors_origins(app, &n) == NULL && n == 0,
       "options: with CORS on no origin list is handed out");
    m8_app_free(app);
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
    test_cred_kinds();
    test_app_options();
    return done_testing();
}
