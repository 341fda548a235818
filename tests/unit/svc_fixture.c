/* svc_fixture - a test service for the integration tests: the built-ins plus
 * routes and a health check whose behaviour the tests steer from files.
 *
 *   GET  /api/hello/{name}  -> {"hello": name}
 *   POST /api/echo          -> the JSON body back (limit 4096 bytes)
 *   GET  /api/fail          -> handler failure (500, reason logged only)
 *   GET  /api/slow          -> answers after 1 s (drain tests)
 *   health check "dep": the word in $M8T_CHECK_FILE (ok, degraded, unknown,
 *     fail, hang = sleeps 5 s); missing file = ok.
 *   $M8T_READY_FILE: startup waits until that file exists.
 *   $M8T_HEALTH_POLICY=strict: STRICT aggregation.
 *   GET  /api/pid           -> {"pid": <the worker's pid>} (pool tests)
 *   GET  /api/sleep/{ms}    -> answers after ms milliseconds (at most 60000)
 *   $M8T_VALIDATOR_FAIL_FILE: the startup validator fails while that file exists.
 *   $M8T_CRASH_FILE: a startup hook exits the process (status 3) while it exists.
 *   $M8T_API_KEYS=1: also GET /api/keyed (X-API-Key reader) and POST
 *     /api/keyed (writer) -> {"owner": <key owner id>, "role": ...}, and
 *     GET /api/scoped (reader by bearer token or X-API-Key; a key needs the
 *     scope $M8T_API_KEY_SCOPE, default items:read) -> the same.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fcgim8.h"

static int hello(m8_request *req, void *data)
{
    (void)data;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "hello", json_object_new_string(m8_req_path_param(req, "name")));
    return m8_res_json(req, 200, o);
}

static int echo(m8_request *req, void *data)
{
    (void)data;
    return m8_res_json(req, 200, json_object_get(m8_req_json(req)));
}

static int fail(m8_request *req, void *data)
{
    (void)data;
    return m8_req_fail(req, "fixture failure: secret-detail-never-sent");
}

static int slow(m8_request *req, void *data)
{
    (void)data;
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    return m8_res_json(req, 200, json_object_new_string("slow"));
}

static m8_health_status dep_check(m8_health_report *rep, void *data)
{
    (void)data;
    const char *path = getenv("M8T_CHECK_FILE");
    char word[32] = "ok";
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        if (!fgets(word, sizeof word, f))
            word[0] = '\0';
        fclose(f);
        word[strcspn(word, "\r\n ")] = '\0';
    }
    if (strcmp(word, "hang") == 0) {
        struct timespec ts = {5, 0};
        nanosleep(&ts, NULL);
        return M8_HEALTH_OK;
    }
    if (strcmp(word, "fail") == 0) {
        m8_health_set_error(rep, "cannot reach postgres://app:hunter2@db:5432/app");
        return M8_HEALTH_FAIL;
    }
    if (strcmp(word, "degraded") == 0)
        return M8_HEALTH_DEGRADED;
    if (strcmp(word, "unknown") == 0)
        return M8_HEALTH_UNKNOWN;
    return M8_HEALTH_OK;
}

static int wait_ready_file(m8_app *app, void *data)
{
    (void)app;
    (void)data;
    const char *path = getenv("M8T_READY_FILE");
    while (path && access(path, F_OK) != 0) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int pid_route(m8_request *req, void *data)
{
    (void)data;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "pid", json_object_new_int64((int64_t)getpid()));
    return m8_res_json(req, 200, o);
}

static int sleep_route(m8_request *req, void *data)
{
    (void)data;
    const char *v = m8_req_path_param(req, "ms");
    char *end;
    long ms = v ? strtol(v, &end, 10) : -1;
    if (!v || *end || ms < 0 || ms > 60000)
        return m8_res_error(req, 422, "ms must be 0..60000");
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    return m8_res_json(req, 200, json_object_new_int64(ms));
}

static int validator(const m8_settings *s, char *err, size_t errlen, void *data)
{
    (void)s;
    (void)data;
    const char *path = getenv("M8T_VALIDATOR_FAIL_FILE");
    if (path && access(path, F_OK) == 0) {
        snprintf(err, errlen, "fixture validator: %s exists", path);
        return 1;
    }
    return 0;
}

static int crash_at_start(m8_app *app, void *data)
{
    (void)app;
    (void)data;
    const char *path = getenv("M8T_CRASH_FILE");
    if (path && access(path, F_OK) == 0)
        _exit(3);
    return 0;
}

static int keyed(m8_request *req, void *data)
{
    (void)data;
    const m8_user *u = m8_req_user(req);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "owner", json_object_new_string(u && u->id ? u->id : ""));
    json_object_object_add(o, "role", json_object_new_string(u && u->role ? u->role : ""));
    return m8_res_json(req, 200, o);
}

static const m8_route keyed_routes[] = {
    {"GET", "/keyed", M8_API_KEY_READER, keyed, NULL, "Read with an API key", "fixture", 0},
    {"POST", "/keyed", M8_API_KEY_WRITER, keyed, NULL, "Write with an API key", "fixture", 0},
    {"GET", "/scoped", M8_READER, keyed, NULL, "Read with a token or a scoped API key", "fixture",
     M8_ROUTE_CRED_BEARER | M8_ROUTE_CRED_API_KEY},
};

static const m8_route routes[] = {
    {"GET", "/pid", M8_PUBLIC, pid_route, NULL, "The worker's pid", "fixture", 0},
    {"GET", "/sleep/{ms}", M8_PUBLIC, sleep_route, NULL, "Sleep", "fixture", 0},
    {"GET", "/hello/{name}", M8_PUBLIC, hello, NULL, "Say hello", "fixture", 0},
    {"POST", "/echo", M8_PUBLIC, echo, NULL, "Echo a JSON body", "fixture", M8_ROUTE_JSON_BODY},
    {"GET", "/fail", M8_PUBLIC, fail, NULL, "Always fails", "fixture", 0},
    {"GET", "/slow", M8_PUBLIC, slow, NULL, "Answers after 1 s", "fixture", 0},
    {"GET", "/private", M8_USER, hello, NULL, "Needs a user", "fixture", 0},
};

int main(int argc, char **argv)
{
    m8_app *app = m8_app_new("fixture", "0.0.1");
    const char *policy = getenv("M8T_HEALTH_POLICY");
    int strict = policy && strcmp(policy, "strict") == 0;
    if (!app || m8_app_add_routes(app, routes, sizeof routes / sizeof routes[0]) ||
        m8_app_set_max_body(app, 4096) || m8_app_add_health_check(app, "dep", dep_check, NULL) ||
        m8_app_health_options(app, 0.5, strict ? M8_HEALTH_STRICT : M8_HEALTH_LENIENT, 2.0, 0) ||
        m8_app_on_startup(app, wait_ready_file, NULL) ||
        m8_app_on_startup(app, crash_at_start, NULL) ||
        m8_app_add_validator(app, "fixture", validator, NULL))
        return 70;
    const char *keys = getenv("M8T_API_KEYS");
    const char *scope = getenv("M8T_API_KEY_SCOPE");
    if (keys && strcmp(keys, "1") == 0 &&
        (m8_app_add_routes(app, keyed_routes, sizeof keyed_routes / sizeof keyed_routes[0]) ||
         m8_app_require_scope(app, "GET", "/scoped", scope && *scope ? scope : "items:read")))
        return 70;
    return m8_app_main(app, argc, argv);
}
