/* test_health.c - {API_PREFIX}/health/ (doc/responses.md#health). */
#include "builtin/health.h"

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap.h"

/* ------------------------------------------------------------ fixtures */

typedef struct fixed_check {
    m8_health_status status;
    const char *error;     /* set with m8_health_set_error when non-NULL */
    const char *meta_json; /* set with m8_health_set_meta when non-NULL */
    int sleep_ms;
    atomic_int calls;
} fixed_check;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static m8_health_status fixed_fn(m8_health_report *r, void *data)
{
    fixed_check *c = data;
    atomic_fetch_add(&c->calls, 1);
    if (c->sleep_ms)
        sleep_ms(c->sleep_ms);
    if (c->error)
        m8_health_set_error(r, "%s", c->error);
    if (c->meta_json)
        m8_health_set_meta(r, json_tokener_parse(c->meta_json));
    return c->status;
}

/* Blocks until its gate opens; static so it outlives any m8_health. */
typedef struct hang_check {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    atomic_int calls;
    atomic_int finished;
} hang_check;

static m8_health_status hang_fn(m8_health_report *r, void *data)
{
    hang_check *g = data;
    atomic_fetch_add(&g->calls, 1);
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    m8_health_set_error(r, "late result");
    atomic_fetch_add(&g->finished, 1);
    return M8_HEALTH_OK;
}

static void hang_set(hang_check *g, bool open)
{
    pthread_mutex_lock(&g->mu);
    g->open = open;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static bool hang_wait_finished(hang_check *g, int want)
{
    for (int i = 0; i < 400 && atomic_load(&g->finished) < want; i++)
        sleep_ms(5);
    return atomic_load(&g->finished) >= want;
}

typedef struct resp {
    int rc, status;
    char body[16384];
    char ctype[64];
    char cache_control[64];
} resp;

static resp call(m8_health *h, bool ready, const char *token)
{
    static resp r;
    memset(&r, 0, sizeof r);
    m8_request req;
    m8_req_init(&req, NULL);
    if (token) {
        m8_pair *hd = m8_arena_alloc(&req.arena, sizeof *hd);
        hd->name = "x-internal-token";
        hd->value = m8_arena_strdup(&req.arena, token);
        req.headers = hd;
        req.n_headers = 1;
    }
    r.rc = m8_health_handle(h, &req, ready);
    r.status = req.status;
    snprintf(r.body, sizeof r.body, "%.*s", (int)req.body_out.len,
             req.body_out.data ? req.body_out.data : "");
    snprintf(r.ctype, sizeof r.ctype, "%s", req.content_type ? req.content_type : "");
    const char *cc = m8_res_get_header(&req, "Cache-Control");
    snprintf(r.cache_control, sizeof r.cache_control, "%s", cc ? cc : "");
    m8_req_free(&req);
    return r;
}

static m8_settings *settings_new(const char *cred, const char *private_secret, bool production)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->health_detail_credential = cred ? strdup(cred) : NULL;
    s->private_api_secret = private_secret ? strdup(private_secret) : NULL;
    s->production_gate = production;
    s->environment = production ? M8_ENV_PRODUCTION : M8_ENV_LOCAL;
    return s;
}

static void settings_del(m8_settings *s)
{
    free(s->health_detail_credential);
    free(s->private_api_secret);
    free(s);
}

/* A fresh m8_health with no cache, so every call runs the checks. */
static void health_new(m8_health *h, const m8_settings *s, m8_health_policy policy)
{
    m8_health_init(h);
    h->settings = s;
    h->policy = policy;
    h->cache_ttl_s = 0;
}

/* The keys of a JSON object, comma-joined, in their order. */
static void key_order(json_object *o, char *out, size_t cap)
{
    out[0] = '\0';
    size_t len = 0;
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", key);
        if (len >= cap)
            break;
    }
}

/* ------------------------------------------------------------ pure parts */

static void test_aggregate(void)
{
    m8_health_status none[1] = {M8_HEALTH_OK};
    is_int(m8_health_aggregate(none, 0, M8_HEALTH_LENIENT), M8_HEALTH_OK,
           "aggregate: no checks is ok");
    is_int(m8_health_aggregate(none, 0, M8_HEALTH_STRICT), M8_HEALTH_OK,
           "aggregate: no checks is ok under strict");
    m8_health_status ok2[] = {M8_HEALTH_OK, M8_HEALTH_OK};
    is_int(m8_health_aggregate(ok2, 2, M8_HEALTH_LENIENT), M8_HEALTH_OK, "aggregate: all ok is ok");
    m8_health_status deg[] = {M8_HEALTH_OK, M8_HEALTH_DEGRADED};
    is_int(m8_health_aggregate(deg, 2, M8_HEALTH_LENIENT), M8_HEALTH_DEGRADED,
           "aggregate: degraded beats ok");
    is_int(m8_health_aggregate(deg, 2, M8_HEALTH_STRICT), M8_HEALTH_DEGRADED,
           "aggregate: strict leaves degraded alone");
    m8_health_status unk[] = {M8_HEALTH_DEGRADED, M8_HEALTH_UNKNOWN, M8_HEALTH_OK};
    is_int(m8_health_aggregate(unk, 3, M8_HEALTH_LENIENT), M8_HEALTH_UNKNOWN,
           "aggregate: unknown beats degraded under lenient");
    is_int(m8_health_aggregate(unk, 3, M8_HEALTH_STRICT), M8_HEALTH_FAIL,
           "aggregate: strict turns unknown into fail");
    m8_health_status fail[] = {M8_HEALTH_UNKNOWN, M8_HEALTH_FAIL, M8_HEALTH_DEGRADED};
    is_int(m8_health_aggregate(fail, 3, M8_HEALTH_LENIENT), M8_HEALTH_FAIL,
           "aggregate: any fail is fail");
    is_str(m8_health_status_name(M8_HEALTH_OK), "ok", "status name ok");
    is_str(m8_health_status_name(M8_HEALTH_DEGRADED), "degraded", "status name degraded");
    is_str(m8_health_status_name(M8_HEALTH_FAIL), "fail", "status name fail");
    is_str(m8_health_status_name(M8_HEALTH_UNKNOWN), "unknown", "status name unknown");
}

static const char *printable(const char *s, char *out, size_t cap);

static void scrub_is(const char *in, const char *want)
{
    char *got = m8_health_scrub(in);
    char shown[128];
    is_str(got, want, "scrub: \"%s\"", printable(in, shown, sizeof shown));
    free(got);
}

static void test_scrub(void)
{
    scrub_is("postgres://user:password@db:5432/app", "postgres://***:***@db:5432/app");
    scrub_is("://user@host", "://user@host");
    scrub_is("connect to mysql://u:p@h1/a failed; retry redis://x:y@h2:6379",
             "connect to mysql://***:***@h1/a failed; retry redis://***:***@h2:6379");
    scrub_is("http://user:@host", "http://user:@host");
    scrub_is("http://:pass@host", "http://:pass@host");
    scrub_is("redis://u:p:q@h", "redis://***:***@h");
    scrub_is("http://u:p/x@h", "http://u:p/x@h");
    scrub_is("http://u:p q@h", "http://u:p q@h");
    scrub_is("http://u p:q@h", "http://u p:q@h");
    scrub_is("http://u:p@h@i", "http://***:***@h@i");
    scrub_is("http://u\x1cx:p@h", "http://u\x1cx:p@h");
    scrub_is("http://u:p\xc2\xa0x@h", "http://u:p\xc2\xa0x@h");
    scrub_is("http://u:p\xe3\x80\x80x@h", "http://u:p\xe3\x80\x80x@h");
    scrub_is("http://\xc3\xa9:p\xc3\xa9@h", "http://***:***@h");
    scrub_is("no url here", "no url here");
    scrub_is("", "");
    ok(m8_health_scrub(NULL) == NULL, "scrub: NULL stays NULL");
}

/* s with control and non-ASCII bytes as \xNN, for a one-line TAP description. */
static const char *printable(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f)
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    out[n] = '\0';
    return out;
}

static void test_key_redaction(void)
{
    const char *secret[] = {"access_key",  "dsn",      "db_password", "password_hash",  "x_token_y",
                            "DB_PASSWORD", "Token",    "api_key",     "my_private_key", "secret",
                            "credential",  "passwd_x", "token\n",     "\305\277ecret"};
    const char *plain[] = {"secretKey", "credentials", "auth-token", "apikey",    "host",
                           "bucket",    "tokens",      "xsecret",    "token\n\n", ""};
    char shown[64];
    for (size_t i = 0; i < M8_ARRAY_LEN(secret); i++)
        ok(m8_health_key_is_secret(secret[i]), "meta key \"%s\" is redacted",
           printable(secret[i], shown, sizeof shown));
    for (size_t i = 0; i < M8_ARRAY_LEN(plain); i++)
        ok(!m8_health_key_is_secret(plain[i]), "meta key \"%s\" is kept",
           printable(plain[i], shown, sizeof shown));
}

/* ------------------------------------------------------------ endpoint */

static void test_not_ready(void)
{
    m8_health h;
    health_new(&h, NULL, M8_HEALTH_LENIENT);
    static fixed_check c = {.status = M8_HEALTH_OK};
    m8_health_add(&h, "db", fixed_fn, &c);
    resp r = call(&h, false, NULL);
    is_int(r.status, 503, "before ready: 503");
    is_str(r.body, "{\"status\":\"initializing\",\"ready\":false}",
           "before ready: initializing body");
    is_str(r.ctype, "application/json", "before ready: application/json");
    is_int(atomic_load(&c.calls), 0, "before ready: no check runs");
    m8_health_free(&h);
}

static void public_case(m8_health_policy policy, m8_health_status a, m8_health_status b,
                        int want_status, const char *want_body)
{
    m8_health h;
    health_new(&h, NULL, policy);
    fixed_check ca = {.status = a}, cb = {.status = b};
    m8_health_add(&h, "a", fixed_fn, &ca);
    m8_health_add(&h, "b", fixed_fn, &cb);
    resp r = call(&h, true, NULL);
    const char *pn = policy == M8_HEALTH_STRICT ? "strict" : "lenient";
    is_int(r.status, want_status, "public %s %s+%s: status %d", pn, m8_health_status_name(a),
           m8_health_status_name(b), want_status);
    is_str(r.body, want_body, "public %s %s+%s: aggregate body", pn, m8_health_status_name(a),
           m8_health_status_name(b));
    is_int(atomic_load(&ca.calls) + atomic_load(&cb.calls), 2, "public %s: the checks ran", pn);
    m8_health_free(&h);
}

static void test_public(void)
{
    m8_health h;
    health_new(&h, NULL, M8_HEALTH_LENIENT);
    resp r = call(&h, true, NULL);
    is_int(r.status, 200, "public, no checks: 200");
    is_str(r.body, "{\"status\":\"ok\"}", "public, no checks: {\"status\":\"ok\"}");
    is_str(r.ctype, "application/json", "public: application/json");
    m8_health_free(&h);

    public_case(M8_HEALTH_LENIENT, M8_HEALTH_OK, M8_HEALTH_OK, 200, "{\"status\":\"ok\"}");
    public_case(M8_HEALTH_LENIENT, M8_HEALTH_OK, M8_HEALTH_DEGRADED, 200,
                "{\"status\":\"degraded\"}");
    public_case(M8_HEALTH_LENIENT, M8_HEALTH_DEGRADED, M8_HEALTH_UNKNOWN, 200,
                "{\"status\":\"unknown\"}");
    public_case(M8_HEALTH_LENIENT, M8_HEALTH_OK, M8_HEALTH_FAIL, 503, "{\"status\":\"fail\"}");
    public_case(M8_HEALTH_STRICT, M8_HEALTH_OK, M8_HEALTH_OK, 200, "{\"status\":\"ok\"}");
    public_case(M8_HEALTH_STRICT, M8_HEALTH_OK, M8_HEALTH_DEGRADED, 200,
                "{\"status\":\"degraded\"}");
    public_case(M8_HEALTH_STRICT, M8_HEALTH_OK, M8_HEALTH_UNKNOWN, 503, "{\"status\":\"fail\"}");
    public_case(M8_HEALTH_STRICT, M8_HEALTH_FAIL, M8_HEALTH_OK, 503, "{\"status\":\"fail\"}");
}

static bool is_detail(const resp *r)
{
    return strstr(r->body, "\"checks\":") != NULL;
}

static int authorizer_calls;
static int authorizer_yes(const m8_request *req, void *data)
{
    authorizer_calls++;
    return req != NULL && data == (void *)&authorizer_calls;
}
static int authorizer_no(const m8_request *req, void *data)
{
    (void)req;
    (void)data;
    authorizer_calls++;
    return 0;
}

static void test_detail_gate(void)
{
    m8_health h;
    static fixed_check c = {.status = M8_HEALTH_OK};
    m8_settings *s = settings_new("health-cred-0123456789", "private-secret-0123456789", false);
    health_new(&h, s, M8_HEALTH_LENIENT);
    m8_health_add(&h, "db", fixed_fn, &c);

    resp r = call(&h, true, "health-cred-0123456789");
    ok(is_detail(&r), "detail: correct HEALTH_DETAIL_CREDENTIAL shows detail");
    is_int(r.status, 200, "detail: 200 when ok");
    r = call(&h, true, "health-cred-012345678");
    ok(!is_detail(&r), "detail: credential one byte short is refused");
    is_str(r.body, "{\"status\":\"ok\"}", "detail: refused caller gets the public body");
    r = call(&h, true, "health-cred-0123456789x");
    ok(!is_detail(&r), "detail: credential one byte long is refused");
    r = call(&h, true, "wrong");
    ok(!is_detail(&r), "detail: wrong credential is refused");
    r = call(&h, true, "");
    ok(!is_detail(&r), "detail: empty header is refused");
    r = call(&h, true, NULL);
    ok(!is_detail(&r), "detail: no header is refused");
    r = call(&h, true, "private-secret-0123456789");
    ok(!is_detail(&r), "detail: PRIVATE_API_SECRET refused when HEALTH_DETAIL_CREDENTIAL is set");
    settings_del(s);

    s = settings_new(NULL, "private-secret-0123456789", false);
    h.settings = s;
    r = call(&h, true, "private-secret-0123456789");
    ok(is_detail(&r), "detail: PRIVATE_API_SECRET opens detail outside production "
                      "(doc/responses.md#health-detail)");
    r = call(&h, true, "private-secret-wrong");
    ok(!is_detail(&r), "detail: wrong PRIVATE_API_SECRET refused outside production");
    settings_del(s);

    s = settings_new("", "private-secret-0123456789", false);
    h.settings = s;
    r = call(&h, true, "private-secret-0123456789");
    ok(is_detail(&r), "detail: empty HEALTH_DETAIL_CREDENTIAL counts as unset");
    r = call(&h, true, "");
    ok(!is_detail(&r), "detail: empty token never matches");
    settings_del(s);

    s = settings_new(NULL, "private-secret-0123456789", true);
    h.settings = s;
    r = call(&h, true, "private-secret-0123456789");
    ok(!is_detail(&r), "detail: PRIVATE_API_SECRET refused in production");
    settings_del(s);

    s = settings_new(NULL, "", false);
    h.settings = s;
    r = call(&h, true, "");
    ok(!is_detail(&r), "detail: empty PRIVATE_API_SECRET and empty token never match");
    settings_del(s);

    s = settings_new(NULL, NULL, false);
    h.settings = s;
    h.detail_public = true;
    r = call(&h, true, NULL);
    ok(is_detail(&r), "detail: detail_public shows detail without a credential");
    h.detail_public = false;

    h.authorizer = authorizer_yes;
    h.authorizer_data = &authorizer_calls;
    authorizer_calls = 0;
    r = call(&h, true, NULL);
    ok(is_detail(&r), "detail: custom authorizer saying yes shows detail");
    is_int(authorizer_calls, 1, "detail: the authorizer is asked once per request");
    h.authorizer = authorizer_no;
    r = call(&h, true, NULL);
    ok(!is_detail(&r), "detail: custom authorizer saying no keeps the public body");
    settings_del(s);

    s = settings_new("health-cred-0123456789", NULL, true);
    h.settings = s;
    r = call(&h, true, "health-cred-0123456789");
    ok(is_detail(&r), "detail: the credential still works when the authorizer says no");
    settings_del(s);
    m8_health_free(&h);
}

static void test_detail_body(void)
{
    m8_health h;
    m8_settings *s = settings_new("cred-0123456789abcdef", NULL, false);
    health_new(&h, s, M8_HEALTH_LENIENT);
    h.service_name = "item-service";
    h.service_version = "2.3.4";
    static fixed_check db = {
        .status = M8_HEALTH_DEGRADED,
        .error = "cannot reach postgres://app:hunter2@db:5432/app",
        .meta_json = "{\"url\":\"mysql://a:b@h/db\",\"password\":\"x\",\"DSN\":{\"a\":1},"
                     "\"db_password\":5,\"count\":3,\"nested\":{\"password\":\"y\"},"
                     "\"list\":[\"redis://u:p@h\"],\"host\":\"db\",\"user_only\":\"http://u@h\"}",
    };
    static fixed_check cache = {.status = M8_HEALTH_OK};
    m8_health_add(&h, "database", fixed_fn, &db);
    m8_health_add(&h, "cache", fixed_fn, &cache);
    resp r = call(&h, true, "cred-0123456789abcdef");
    is_int(r.status, 200, "detail body: degraded is 200");
    json_object *doc = json_tokener_parse(r.body);
    ok(doc != NULL, "detail body: valid JSON");
    char keys[256];
    key_order(doc, keys, sizeof keys);
    is_str(keys, "status,checks,service,version,fcgi_m8", "detail body: top-level key order");
    json_object *checks = NULL, *v = NULL;
    json_object_object_get_ex(doc, "checks", &checks);
    is_int(json_object_array_length(checks), 2, "detail body: one entry per check");
    json_object *c0 = json_object_array_get_idx(checks, 0);
    json_object *c1 = json_object_array_get_idx(checks, 1);
    key_order(c0, keys, sizeof keys);
    is_str(keys, "name,status,latency_ms,error,meta,ok", "detail body: check key order");
    json_object_object_get_ex(c0, "name", &v);
    is_str(json_object_get_string(v), "database", "detail body: registration order (first)");
    json_object_object_get_ex(c1, "name", &v);
    is_str(json_object_get_string(v), "cache", "detail body: registration order (second)");
    json_object_object_get_ex(c0, "latency_ms", &v);
    ok(json_object_is_type(v, json_type_double),
       "detail body: latency_ms of a finished check is a float");
    json_object_object_get_ex(c0, "ok", &v);
    ok(json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v),
       "detail body: ok false for degraded");
    json_object_object_get_ex(c1, "ok", &v);
    ok(json_object_get_boolean(v), "detail body: ok true for ok");
    json_object_object_get_ex(c1, "error", &v);
    ok(v == NULL, "detail body: no error set gives null");
    json_object_object_get_ex(c1, "meta", &v);
    ok(v == NULL, "detail body: no meta set gives null");
    like(r.body, "\"error\":\"cannot reach postgres://***:***@db:5432/app\"",
         "detail body: error scrubbed of URL credentials");
    like(
        r.body,
        "\"meta\":{\"url\":\"mysql://***:***@h/db\",\"password\":\"REDACTED\",\"DSN\":\"REDACTED\","
        "\"db_password\":\"REDACTED\",\"count\":3,\"nested\":{\"password\":\"y\"},"
        "\"list\":[\"redis://u:p@h\"],\"host\":\"db\",\"user_only\":\"http://u@h\"}",
        "detail body: meta keys redacted whatever the type, strings scrubbed, nested kept");
    like(r.body, "\"service\":\"item-service\",\"version\":\"2.3.4\",\"fcgi_m8\":\"",
         "detail body: service, version, fcgi_m8");
    char want[64];
    snprintf(want, sizeof want, "\"fcgi_m8\":\"%s\"}", m8_version());
    like(r.body, want, "detail body: fcgi_m8 is m8_version()");
    ok(strstr(r.body, "hunter2") == NULL && strstr(r.body, "\"x\"") == NULL,
       "detail body: no secret leaks");
    json_object_put(doc);
    m8_health_free(&h);

    /* no service name/version, a failing check: 503 and nulls */
    health_new(&h, s, M8_HEALTH_LENIENT);
    static fixed_check bad = {.status = M8_HEALTH_FAIL, .error = ""};
    m8_health_add(&h, "queue", fixed_fn, &bad);
    r = call(&h, true, "cred-0123456789abcdef");
    is_int(r.status, 503, "detail body: fail is 503");
    like(r.body,
         "{\"status\":\"fail\",\"checks\":[{\"name\":\"queue\",\"status\":\"fail\",\"latency_ms\":",
         "detail body: failing check");
    like(r.body, ",\"error\":\"\",\"meta\":null,\"ok\":false}],\"service\":null,\"version\":null,",
         "detail body: empty error kept, service and version null");
    m8_health_free(&h);

    /* no checks */
    health_new(&h, s, M8_HEALTH_LENIENT);
    h.detail_public = true;
    r = call(&h, true, NULL);
    snprintf(want, sizeof want, "\"fcgi_m8\":\"%s\"}", m8_version());
    char exact[256];
    snprintf(exact, sizeof exact,
             "{\"status\":\"ok\",\"checks\":[],\"service\":null,\"version\":null,%s", want);
    is_str(r.body, exact, "detail body: no checks gives [] and ok (exact bytes)");
    m8_health_free(&h);
    settings_del(s);
}

static m8_health_status bad_status_fn(m8_health_report *r, void *data)
{
    (void)data;
    m8_health_set_meta(r, json_object_new_string("not an object"));
    m8_health_set_error(r, "first");
    m8_health_set_error(r, "second %d", 2);
    return (m8_health_status)42;
}

static void test_report_api(void)
{
    m8_health h;
    health_new(&h, NULL, M8_HEALTH_LENIENT);
    h.detail_public = true;
    m8_health_add(&h, "odd", bad_status_fn, NULL);
    resp r = call(&h, true, NULL);
    like(r.body, "\"status\":\"fail\",\"latency_ms\":", "report: an out-of-range status is fail");
    like(r.body, "\"error\":\"second 2\",\"meta\":null",
         "report: last error wins; a non-object meta is dropped");
    is_int(r.status, 503, "report: out-of-range status gives 503");
    m8_health_free(&h);

    is_int(m8_health_add(&h, "", fixed_fn, NULL), M8_EINVAL, "add: empty name refused");
    is_int(m8_health_add(&h, "x", NULL, NULL), M8_EINVAL, "add: NULL function refused");
}

static void test_concurrency_and_timeout(void)
{
    m8_health h;
    health_new(&h, NULL, M8_HEALTH_LENIENT);
    h.detail_public = true;
    h.timeout_s = 0.5;
    static fixed_check slow = {.status = M8_HEALTH_OK, .sleep_ms = 200};
    static fixed_check fast = {.status = M8_HEALTH_OK, .sleep_ms = 10};
    static fixed_check slow2 = {.status = M8_HEALTH_OK, .sleep_ms = 200};
    m8_health_add(&h, "slow", fixed_fn, &slow);
    m8_health_add(&h, "fast", fixed_fn, &fast);
    m8_health_add(&h, "slow2", fixed_fn, &slow2);
    double t0 = m8_now_mono();
    resp r = call(&h, true, NULL);
    double el = m8_now_mono() - t0;
    ok(el < 0.35, "checks run concurrently (3 checks of 200+10+200 ms took %.0f ms)", el * 1000);
    ok(el >= 0.2, "the caller waits for the slowest check");
    is_int(r.status, 200, "concurrent: all ok");
    json_object *doc = json_tokener_parse(r.body), *checks = NULL, *v = NULL;
    json_object_object_get_ex(doc, "checks", &checks);
    const char *names[] = {"slow", "fast", "slow2"};
    for (int i = 0; i < 3; i++) {
        json_object_object_get_ex(json_object_array_get_idx(checks, (size_t)i), "name", &v);
        is_str(json_object_get_string(v), names[i], "results in registration order (%d)", i);
    }
    json_object_object_get_ex(json_object_array_get_idx(checks, 0), "latency_ms", &v);
    double lat = json_object_get_double(v);
    ok(lat >= 200.0 && lat < 450.0, "latency_ms is measured (%.3f ms for a 200 ms check)", lat);
    json_object_put(doc);
    m8_health_free(&h);

    /* timeout: a hanging check reports fail, "timeout <ms>ms", latency null */
    static hang_check g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0};
    health_new(&h, NULL, M8_HEALTH_LENIENT);
    h.detail_public = true;
    h.timeout_s = 0.05;
    m8_health_add(&h, "hang", hang_fn, &g);
    static fixed_check okc = {.status = M8_HEALTH_OK};
    m8_health_add(&h, "fine", fixed_fn, &okc);
    t0 = m8_now_mono();
    r = call(&h, true, NULL);
    el = m8_now_mono() - t0;
    ok(el >= 0.045 && el < 0.4, "timeout: the caller waits the timeout only (%.0f ms)", el * 1000);
    is_int(r.status, 503, "timeout: a timed-out check fails the aggregate (503)");
    like(r.body,
         "{\"name\":\"hang\",\"status\":\"fail\",\"latency_ms\":null,\"error\":\"timeout 50ms\","
         "\"meta\":null,\"ok\":false}",
         "timeout: fail, \"timeout 50ms\", latency_ms null");
    like(r.body, "{\"name\":\"fine\",\"status\":\"ok\",\"latency_ms\":",
         "timeout: the other check still reports");
    is_int(atomic_load(&g.calls), 1, "timeout: hanging check started once");

    /* next run, with a long timeout: the hung check is not started again and
     * reports the timeout at once */
    h.timeout_s = 1.0;
    t0 = m8_now_mono();
    r = call(&h, true, NULL);
    el = m8_now_mono() - t0;
    is_int(atomic_load(&g.calls), 1, "hanging check is not restarted while still running");
    like(r.body,
         "\"name\":\"hang\",\"status\":\"fail\",\"latency_ms\":null,\"error\":\"timeout 1000ms\"",
         "hanging check reports the timeout immediately");
    ok(el < 0.5, "the run with only the hung check pending does not wait (%.1f ms)", el * 1000);
    is_int(atomic_load(&okc.calls), 2, "the other check runs on every run");

    /* once it returns, it is started again (and its late result was discarded) */
    hang_set(&g, true);
    ok(hang_wait_finished(&g, 1), "the timed-out check's thread finishes later");
    h.timeout_s = 0.5;
    r = call(&h, true, NULL);
    is_int(atomic_load(&g.calls), 2, "a check that returned is started again on the next run");
    like(r.body, "{\"name\":\"hang\",\"status\":\"ok\",\"latency_ms\":",
         "the restarted check reports its own result");
    like(r.body, "\"error\":\"late result\"", "the restarted check's error is its own");
    is_int(r.status, 200, "all ok again: 200");

    /* timeout text rounds the milliseconds */
    hang_set(&g, false);
    h.timeout_s = 0.0304;
    r = call(&h, true, NULL);
    like(r.body, "\"error\":\"timeout 30ms\"", "timeout text: 30.4 ms rounds to 30ms");
    /* a thread still running when the m8_health is freed finishes safely */
    m8_health_free(&h);
    hang_set(&g, true);
    ok(hang_wait_finished(&g, 2), "a timed-out thread finishes after m8_health_free (ASan clean)");
    sleep_ms(20);
}

static void test_timeout_500ms(void)
{
    static hang_check g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0};
    m8_health h;
    health_new(&h, NULL, M8_HEALTH_LENIENT);
    h.detail_public = true;
    ok(h.timeout_s == 0.5, "default timeout is 0.5 s");
    m8_health_add(&h, "hang", hang_fn, &g);
    resp r = call(&h, true, NULL);
    like(r.body, "\"error\":\"timeout 500ms\"", "default timeout text is \"timeout 500ms\"");
    hang_set(&g, true);
    ok(hang_wait_finished(&g, 1), "default-timeout thread finishes when released");
    m8_health_free(&h);
}

static void test_cache(void)
{
    m8_health h;
    static fixed_check c = {.status = M8_HEALTH_DEGRADED};
    m8_settings *s = settings_new("cred-cache-0123456789", NULL, false);
    m8_health_init(&h);
    h.settings = s;
    ok(h.cache_ttl_s == 2.0, "default cache TTL is 2.0 s");
    ok(h.policy == M8_HEALTH_LENIENT && !h.detail_public, "default policy lenient, detail private");
    h.cache_ttl_s = 0.3;
    m8_health_add(&h, "db", fixed_fn, &c);
    resp r = call(&h, true, NULL);
    is_str(r.body, "{\"status\":\"degraded\"}", "cache: first public call runs the checks");
    r = call(&h, true, NULL);
    is_int(atomic_load(&c.calls), 1, "cache: second call within TTL reuses the result");
    r = call(&h, true, "cred-cache-0123456789");
    is_int(atomic_load(&c.calls), 1, "cache: the detail path shares the public path's result");
    ok(is_detail(&r), "cache: detail body from the cache");
    like(r.body, "\"name\":\"db\",\"status\":\"degraded\"", "cache: cached checks rendered");
    sleep_ms(350);
    r = call(&h, true, "cred-cache-0123456789");
    is_int(atomic_load(&c.calls), 2, "cache: expired after the TTL, the checks run again");
    r = call(&h, true, NULL);
    is_int(atomic_load(&c.calls), 2, "cache: the new result is cached again");
    m8_health_free(&h);

    m8_health_init(&h);
    h.settings = s;
    h.cache_ttl_s = 0;
    m8_health_add(&h, "db", fixed_fn, &c);
    atomic_store(&c.calls, 0);
    for (int i = 0; i < 3; i++)
        call(&h, true, NULL);
    is_int(atomic_load(&c.calls), 3, "cache: TTL 0 disables the cache");
    m8_health_free(&h);
    settings_del(s);
}

int main(void)
{
    test_aggregate();
    test_scrub();
    test_key_redaction();
    test_not_ready();
    test_public();
    test_detail_gate();
    test_detail_body();
    test_report_api();
    test_concurrency_and_timeout();
    test_timeout_500ms();
    test_cache();
    return done_testing();
}
