/* test_revocation.c - the revocation check of a stateful consumer
 * (revocation.h; doc/wire.md#jti-status, doc/wire.md#revocation-table,
 * doc/metrics.md#revocation-metrics) against
 * tests/tools/stub_http.py: every outcome row of doc/wire.md#jti-status-outcomes in fail_closed,
 * fail_open and AUTH_STRICT_MODE, 4xx as 503 in both modes, bounded
 * timeouts, the shared table before the call, the positive cache (on, off,
 * skipped by role checks), the 401 re-mint, keep-alive, counters, and logs
 * without identifiers or secrets. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/revocation.h"
#include "auth/revtable.h"
#include "core/log.h"
#include "issuerproc.h"
#include "net/httpc.h"
#include "shm/shm.h"
#include "stubhttp.h"
#include "tap.h"

#define SECRET "Private-Api-Secret-0123456789abcdef!"
#define SUB "550e8400-e29b-41d4-a716-446655440000"
#define JTI_PATH "/user/private/v1/jti-status"
#define EXCHANGE "/user/private/v1/service-token"
#define ACTIVE(gen)                                                                                \
    "{\"status\":200,\"json\":{\"active\":true,\"user_id\":\"" SUB "\","                           \
    "\"auth_generation\":" #gen ",\"schema_version\":\"2\"}}"
#define INACTIVE "{\"status\":200,\"json\":{\"active\":false,\"schema_version\":\"2\"}}"

static char url[256];
static m8_shm *shm;
static int jti_n;

static m8_settings *settings(bool fail_open, bool strict, long long ttl)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->token_mode = M8_MODE_STATEFUL;
    s->auth_service_role = M8_ROLE_CONSUMER;
    s->introspection_url = url;
    s->private_api_secret = SECRET;
    s->internal_client_id = "item-service";
    s->access_revocation_failure_mode = fail_open ? M8_FAIL_OPEN : M8_FAIL_CLOSED;
    s->auth_strict_mode = strict;
    s->revocation_cache_ttl_seconds = ttl;
    s->service_token_refresh_leeway_seconds = 30;
    return s;
}

static m8_revocation *make(const m8_settings *s)
{
    char err[256];
    m8_revocation *r = m8_revocation_new(s, shm, err, sizeof err);
    if (!r)
        diag("new: %s", err);
    else
        m8_revocation_set_timeouts(r, 0.5, 1.0);
    return r;
}

static void script_jti(const char *responses)
{
    size_t n = strlen(responses) + 64;
    char *js = malloc(n);
    snprintf(js, n, "{\"routes\":{\"" JTI_PATH "\":[%s]}}", responses);
    stub_script(js);
    free(js);
}

/* A fresh token each time (so no earlier answer is cached for it). */
static m8_rev_token token(char *jti, size_t cap)
{
    snprintf(jti, cap, "jti-%d", ++jti_n);
    m8_rev_token t = {.jti = jti, .sub = SUB, .iat = 1000, .exp = 4000000000LL};
    return t;
}

/* One check with a fresh checker against the scripted answer. */
static m8_rev_result one(const char *response, bool fail_open, bool strict)
{
    script_jti(response);
    m8_settings *s = settings(fail_open, strict, 0);
    m8_revocation *r = make(s);
    char jti[32];
    m8_rev_token t = token(jti, sizeof jti);
    m8_rev_result res = r ? m8_revocation_check(r, &t, true, m8_now_wall()) : (m8_rev_result)-1;
    m8_revocation_free(r);
    free(s);
    return res;
}

static uint64_t ctr(unsigned i)
{
    return atomic_load(&shm->counters[i]);
}

static void test_new(void)
{
    char err[256];
    m8_settings *s = settings(false, false, 0);
    ok(m8_revocation_wanted(s), "wanted: stateful consumer (doc/wire.md#jti-status)");
    s->token_mode = M8_MODE_STATELESS;
    ok(!m8_revocation_wanted(s), "wanted: not in stateless mode");
    ok(m8_revocation_new(s, shm, err, sizeof err) == NULL, "new: refused when not wanted");
    s->token_mode = M8_MODE_HYBRID;
    ok(!m8_revocation_wanted(s), "wanted: not in hybrid mode");
    s->token_mode = M8_MODE_STATEFUL;
    s->introspection_url = NULL;
    ok(m8_revocation_new(s, shm, err, sizeof err) == NULL, "new: no INTROSPECTION_URL");
    like(err, "INTROSPECTION_URL", "new: ... named");
    s->introspection_url = url;
    s->private_api_secret = NULL;
    ok(m8_revocation_new(s, shm, err, sizeof err) == NULL, "new: no PRIVATE_API_SECRET");
    s->private_api_secret = SECRET;
    m8_revocation *r = m8_revocation_new(s, NULL, err, sizeof err);
    ok(r != NULL, "new: without a segment it makes a private one");
    if (!r)
        diag("%s", err);
    m8_revocation_free(r);
    free(s);
    is_str(m8_revocation_detail(M8_REV_REVOKED), "Token has been revoked.", "detail: revoked");
    is_str(m8_revocation_detail(M8_REV_UNAVAILABLE), "Token revocation check unavailable.",
           "detail: unavailable");
    ok(m8_revocation_detail(M8_REV_ALLOW) == NULL, "detail: none for allow");
}

static void test_request(void)
{
    script_jti(ACTIVE(1));
    stub_clear_log();
    m8_settings *s = settings(false, false, 0);
    m8_revocation *r = make(s);
    m8_rev_token t = {.jti = "abc\"def", .sub = SUB, .iat = 1, .exp = 2};
    is_int(m8_revocation_check(r, &t, true, m8_now_wall()), M8_REV_ALLOW,
           "active, matching subject: allowed");
    json_object *log = stub_log();
    is_int(json_object_array_length(log), 1, "request: one POST");
    is_str(stub_req_str(log, 0, "method"), "POST", "request: POST");
    is_str(stub_req_str(log, 0, "path"), JTI_PATH, "request: to INTROSPECTION_URL as configured");
    is_str(stub_req_str(log, 0, "body"),
           "{\"jti\":\"abc\\\"def\",\"expected_user_id\":\"" SUB "\",\"schema_version\":\"2\"}",
           "request: v2 body, members in order, JSON-escaped "
           "(doc/wire.md#jti-status-request)");
    is_str(stub_req_header(log, 0, "content-type"), "application/json", "request: Content-Type");
    is_str(stub_req_header(log, 0, "x-internal-client"), "item-service",
           "request: bootstrap X-Internal-Client");
    is_str(stub_req_header(log, 0, "x-internal-token"), SECRET,
           "request: bootstrap X-Internal-Token");
    json_object_put(log);

    /* Keep-alive: later checks of this thread reuse the connection. */
    stub_clear_log();
    for (int i = 0; i < 4; i++) {
        char jti[32];
        m8_rev_token f = token(jti, sizeof jti);
        m8_revocation_check(r, &f, true, m8_now_wall());
    }
    log = stub_log();
    ok(json_object_array_length(log) == 4 &&
           strcmp(stub_req_str(log, 0, "conn"), stub_req_str(log, 3, "conn")) == 0,
       "keep-alive: 4 checks on one connection");
    json_object_put(log);
    m8_revocation_free(r);

    s->internal_client_id = NULL;
    r = make(s);
    stub_clear_log();
    m8_revocation_check(r, &t, true, m8_now_wall());
    log = stub_log();
    ok(stub_req_header(log, 0, "x-internal-client") == NULL &&
           stub_req_header(log, 0, "x-internal-token") &&
           strcmp(stub_req_header(log, 0, "x-internal-token"), SECRET) == 0,
       "request: legacy mode sends X-Internal-Token only");
    json_object_put(log);
    m8_revocation_free(r);
    free(s);
}

typedef struct row {
    const char *response;
    m8_rev_result closed, open;
    const char *what;
} row;

static void test_outcomes(void)
{
    const m8_rev_result A = M8_REV_ALLOW, R = M8_REV_REVOKED, U = M8_REV_UNAVAILABLE;
    char big[M8_REVOCATION_MAX_RESPONSE_BYTES + 200], exact[M8_REVOCATION_MAX_RESPONSE_BYTES + 200];
    /* {"active":false,"pad":"..."}: 25 bytes around the padding. */
    snprintf(exact, sizeof exact,
             "{\"status\":200,\"body\":\"{\\\"active\\\":false,\\\"pad\\\":\\\"%0*d\\\"}\"}",
             (int)M8_REVOCATION_MAX_RESPONSE_BYTES - 25, 0);
    snprintf(big, sizeof big,
             "{\"status\":200,\"body\":\"{\\\"active\\\":false,\\\"pad\\\":\\\"%0*d\\\"}\"}",
             (int)M8_REVOCATION_MAX_RESPONSE_BYTES - 24, 0);
    const row rows[] = {
        /* doc/wire.md#jti-status-outcomes: inactive */
        {INACTIVE, R, R, "inactive -> revoked"},
        {"{\"status\":200,\"json\":{\"active\":false}}", R, R,
         "inactive without schema_version (defaults to \"2\") -> revoked"},
        {"{\"status\":200,\"json\":{\"active\":0}}", R, R, "active 0 (Python-lax) -> revoked"},
        {exact, R, R, "an answer of exactly the cap is read"},
        /* row 3: active */
        {ACTIVE(1), A, A, "active, matching subject -> allowed"},
        {"{\"status\":200,\"json\":{\"active\":1,\"user_id\":\"" SUB "\",\"auth_generation\":2}}",
         A, A, "active 1 without schema_version -> allowed"},
        {"{\"status\":200,\"json\":{\"active\":true,\"user_id\":\"550E8400-E29B-41D4-A716-"
         "446655440000\","
         "\"auth_generation\":1,\"extra\":[1,2]}}",
         A, A, "upper-case UUID user_id and extra members -> allowed"},
        {"{\"status\":204,\"body\":\"\"}", U, U, "204 without a body -> decision failure"},
        /* row 4: decision failures, 503 in both modes */
        {"{\"status\":200,\"body\":\"not json\"}", U, U, "non-JSON 2xx -> 503 in both modes"},
        {"{\"status\":200,\"json\":[true]}", U, U, "a JSON array -> 503"},
        {"{\"status\":200,\"json\":{\"active\":false,\"schema_version\":\"1\"}}", U, U,
         "schema_version \"1\" -> 503"},
        {"{\"status\":200,\"json\":{\"active\":false,\"schema_version\":2}}", U, U,
         "schema_version as a number -> 503"},
        {"{\"status\":200,\"json\":{\"active\":\"true\"}}", U, U, "active \"true\" -> 503"},
        {"{\"status\":200,\"json\":{\"active\":null}}", U, U, "active null -> 503"},
        {"{\"status\":200,\"json\":{\"active\":2}}", U, U, "active 2 -> 503"},
        {"{\"status\":200,\"json\":{\"schema_version\":\"2\"}}", U, U, "no active -> 503"},
        {"{\"status\":200,\"json\":{\"active\":true}}", U, U, "active alone (no user_id) -> 503"},
        {"{\"status\":200,\"json\":{\"active\":true,\"user_id\":\"" SUB "\"}}", U, U,
         "active without auth_generation -> 503"},
        {"{\"status\":200,\"json\":{\"active\":true,\"user_id\":\"" SUB
         "\",\"auth_generation\":0}}",
         U, U, "auth_generation 0 -> 503"},
        {"{\"status\":200,\"json\":{\"active\":true,\"user_id\":\"" SUB
         "\",\"auth_generation\":-1}}",
         U, U, "auth_generation -1 -> 503"},
        {"{\"status\":200,\"json\":{\"active\":true,\"user_id\":\"" SUB
         "\",\"auth_generation\":1.5}}",
         U, U, "auth_generation 1.5 -> 503"},
        {"{\"status\":200,\"json\":{\"active\":true,\"user_id\":\"\",\"auth_generation\":1}}", U, U,
         "empty user_id -> 503"},
        {"{\"status\":200,\"json\":{\"active\":true,\"user_id\":\"11111111-1111-4111-8111-"
         "111111111111\","
         "\"auth_generation\":1}}",
         U, U, "subject mismatch -> 503 in both modes"},
        {big, U, U, "an answer one byte over the cap -> 503"},
        /* 4xx (and 3xx) are configuration errors: 503 in both modes
         * (doc/wire.md#jti-status-outcomes) */
        {"{\"status\":400,\"json\":{}}", U, U,
         "400 -> 503 in both modes (doc/wire.md#jti-status-outcomes)"},
        {"{\"status\":401,\"json\":{\"detail\":\"Unauthorized\"}}", U, U,
         "401 (static mode: no retry) -> 503 in both modes"},
        {"{\"status\":403,\"json\":{\"detail\":\"Forbidden\"}}", U, U, "403 -> 503 in both modes"},
        {"{\"status\":404,\"json\":{\"detail\":\"Not Found\"}}", U, U, "404 -> 503 in both modes"},
        {"{\"status\":422,\"json\":{\"detail\":[]}}", U, U, "422 -> 503 in both modes"},
        {"{\"status\":302,\"headers\":{\"Location\":\"/x\"},\"body\":\"\"}", U, U,
         "302 (not followed) -> 503 in both modes"},
        /* row 5: transport failures */
        {"{\"status\":500,\"json\":{}}", U, A, "500 -> 503, fail_open lets it through"},
        {"{\"status\":502,\"body\":\"\"}", U, A, "502 -> 503 / fail_open"},
        {"{\"status\":503,\"json\":{\"detail\":\"Introspection temporarily unavailable\"}}", U, A,
         "503 from the issuer -> 503 / fail_open"},
        {"{\"drop\":true}", U, A, "connection dropped -> 503 / fail_open"},
        {"{\"delay\":3,\"status\":200,\"json\":{\"active\":false}}", U, A,
         "read timeout -> 503 / fail_open"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(rows); i++) {
        uint64_t fc = ctr(M8_CTR_REVOCATION_FAIL_CLOSED), fo = ctr(M8_CTR_REVOCATION_FAIL_OPEN);
        double t0 = m8_now_mono();
        m8_rev_result c = one(rows[i].response, false, false);
        m8_rev_result o = one(rows[i].response, true, false);
        m8_rev_result strict = one(rows[i].response, true, true);
        double took = m8_now_mono() - t0;
        ok(c == rows[i].closed && o == rows[i].open && strict == rows[i].closed,
           "outcome: %s (closed %d, open %d, strict+open %d)", rows[i].what, c, o, strict);
        int failures = (c == U) + (o == U) + (strict == U);
        int opened = rows[i].open == A && rows[i].closed == U;
        ok(ctr(M8_CTR_REVOCATION_FAIL_CLOSED) - fc == (uint64_t)failures &&
               ctr(M8_CTR_REVOCATION_FAIL_OPEN) - fo == (uint64_t)opened,
           "metrics: ... counted (fail_closed +%d, fail_open +%d)", failures, opened);
        ok(took < 4.5, "timeouts: ... three checks in %.2f s", took);
    }

    /* Nothing listening. */
    char saved[256];
    snprintf(saved, sizeof saved, "%s", url);
    snprintf(url, sizeof url, "http://127.0.0.1:%d" JTI_PATH, stub_dead_port());
    ok(one(INACTIVE, false, false) == U && one(INACTIVE, true, false) == A &&
           one(INACTIVE, true, true) == U,
       "outcome: connection refused -> 503 / fail_open allows / strict 503");
    snprintf(url, sizeof url, "%s", saved);
}

static void test_watermark(void)
{
    /* doc/wire.md#jti-status-outcomes: an active answer below the user's watermark. */
    m8_revt_event ev = {.user_id = SUB, .generation = 5, .event_id = "e5"};
    m8_revtable_session_revoked(shm, &ev, m8_now_wall());
    ok(one(ACTIVE(4), false, false) == M8_REV_REVOKED &&
           one(ACTIVE(4), true, false) == M8_REV_REVOKED,
       "outcome: active below the watermark -> revoked in both modes");
    ok(one(ACTIVE(5), false, false) == M8_REV_ALLOW, "outcome: active at the watermark -> allowed");
    m8_revtable_clear(shm);
}

static void test_table_first(void)
{
    script_jti(ACTIVE(1));
    m8_settings *s = settings(true, false, 0);
    m8_revocation *r = make(s);
    char jti[32];
    m8_rev_token t = token(jti, sizeof jti);
    m8_revtable_revoke_jti(shm, jti, 0, m8_now_wall());
    unsigned long calls = m8_revocation_calls(r);
    is_int(m8_revocation_check(r, &t, true, m8_now_wall()), M8_REV_REVOKED,
           "table: a jti revoked by an event is refused");
    is_int(m8_revocation_calls(r), calls, "table: ... without asking the issuer");
    m8_rev_token t2 = token(jti, sizeof jti);
    t2.iat = 100;
    m8_revtable_revoke_user(shm, SUB, 200, m8_now_wall());
    is_int(m8_revocation_check(r, &t2, false, m8_now_wall()), M8_REV_REVOKED,
           "table: a user-wide revocation refuses older tokens, role checks included");
    is_int(m8_revocation_calls(r), calls, "table: ... without asking the issuer");
    t2.iat = 300;
    is_int(m8_revocation_check(r, &t2, true, m8_now_wall()), M8_REV_ALLOW,
           "table: a token issued after it asks the issuer (active)");
    is_int(m8_revocation_calls(r), calls + 1, "table: ... one call");
    m8_revocation_free(r);
    free(s);
    m8_revtable_clear(shm);
}

static void test_cache(void)
{
    script_jti(ACTIVE(1));
    m8_settings *s = settings(false, false, 60);
    m8_revocation *r = make(s);
    char jti[32];
    m8_rev_token t = token(jti, sizeof jti);
    double now = m8_now_wall();
    uint64_t hit = ctr(M8_CTR_REVOCATION_HIT), miss = ctr(M8_CTR_REVOCATION_MISS);
    is_int(m8_revocation_check(r, &t, true, now), M8_REV_ALLOW, "cache on: first check asks");
    is_int(m8_revocation_calls(r), 1, "cache on: ... one call");
    is_int(m8_revocation_check(r, &t, true, now + 1), M8_REV_ALLOW, "cache on: second check");
    is_int(m8_revocation_calls(r), 1, "cache on: ... answered from the cache (no call)");
    ok(ctr(M8_CTR_REVOCATION_HIT) - hit == 1 && ctr(M8_CTR_REVOCATION_MISS) - miss == 1,
       "metrics: one miss then one hit counted");
    m8_revocation_check(r, &t, false, now + 2);
    is_int(m8_revocation_calls(r), 2,
           "cache on: a role-sensitive check skips the lookup (doc/wire.md#revocation-table)");
    ok(ctr(M8_CTR_REVOCATION_HIT) - hit == 1 && ctr(M8_CTR_REVOCATION_MISS) - miss == 1,
       "metrics: ... and counts no lookup");
    m8_revocation_check(r, &t, true, now + 59);
    is_int(m8_revocation_calls(r), 2, "cache on: still cached just before the TTL");
    m8_revocation_check(r, &t, true, now + 70);
    is_int(m8_revocation_calls(r), 3, "cache on: asks again once the TTL passed");

    /* An inactive answer is not cached. */
    script_jti(INACTIVE);
    m8_rev_token t3 = token(jti, sizeof jti);
    m8_revocation_check(r, &t3, true, now);
    m8_revocation_check(r, &t3, true, now);
    is_int(m8_revocation_calls(r), 5, "cache on: inactive answers are not cached");

    /* A user-wide event evicts at once (doc/wire.md#revocation-table). */
    script_jti(ACTIVE(1));
    m8_rev_token t4 = token(jti, sizeof jti);
    m8_revocation_check(r, &t4, true, now);
    m8_revtable_evict_user(shm, SUB);
    script_jti(INACTIVE);
    is_int(m8_revocation_check(r, &t4, true, now), M8_REV_REVOKED,
           "cache on: after an eviction the issuer's inactive answer refuses at once");
    m8_revocation_free(r);

    /* Cache off: every check asks, no lookup counted. */
    s->revocation_cache_ttl_seconds = 0;
    r = make(s);
    script_jti(ACTIVE(1));
    hit = ctr(M8_CTR_REVOCATION_HIT);
    miss = ctr(M8_CTR_REVOCATION_MISS);
    for (int i = 0; i < 3; i++)
        m8_revocation_check(r, &t, true, now);
    is_int(m8_revocation_calls(r), 3, "cache off (TTL 0): every check calls the issuer");
    ok(ctr(M8_CTR_REVOCATION_HIT) == hit && ctr(M8_CTR_REVOCATION_MISS) == miss,
       "cache off: no lookups counted");
    m8_revocation_free(r);
    free(s);
    m8_revtable_clear(shm);
}

static void test_service_token(void)
{
    m8_settings *s = settings(true, false, 0);
    s->service_token_exchange_enabled = true;
    const char *tok = "{\"status\":200,\"json\":{\"access_token\":\"svc-tok\",\"expires_in\":300}}";
    char js[2048];

    /* 401 then 200: one re-mint, one retry. */
    snprintf(js, sizeof js,
             "{\"routes\":{\"" EXCHANGE "\":[%s],\"" JTI_PATH
             "\":[{\"status\":401,\"json\":{}},%s]}}",
             tok, ACTIVE(1));
    stub_script(js);
    stub_clear_log();
    m8_revocation *r = make(s);
    char jti[32];
    m8_rev_token t = token(jti, sizeof jti);
    is_int(m8_revocation_check(r, &t, true, m8_now_wall()), M8_REV_ALLOW,
           "service token: 401 -> re-mint -> retried once -> allowed "
           "(doc/wire.md#jti-status-outcomes)");
    is_int(m8_revocation_calls(r), 2, "service token: ... two jti-status calls");
    json_object *log = stub_log();
    int exchanges = 0;
    for (size_t i = 0; i < json_object_array_length(log); i++)
        exchanges += strcmp(stub_req_str(log, i, "path"), EXCHANGE) == 0;
    is_int(exchanges, 2, "service token: ... and two exchanges");
    is_str(stub_req_header(log, 1, "authorization"), "Bearer svc-tok",
           "service token: jti-status carries Authorization: Bearer");
    ok(stub_req_header(log, 1, "x-internal-token") == NULL,
       "service token: ... and not the bootstrap secret");
    json_object_put(log);
    m8_revocation_free(r);

    /* 401 twice: no third attempt; a refusal even in fail_open. */
    snprintf(js, sizeof js,
             "{\"routes\":{\"" EXCHANGE "\":[%s],\"" JTI_PATH "\":[{\"status\":401,\"json\":{}}]}}",
             tok);
    stub_script(js);
    r = make(s);
    is_int(m8_revocation_check(r, &t, true, m8_now_wall()), M8_REV_UNAVAILABLE,
           "service token: 401 after the re-mint -> 503 even in fail_open "
           "(doc/wire.md#jti-status-outcomes)");
    is_int(m8_revocation_calls(r), 2, "service token: ... retried once only");
    m8_revocation_free(r);

    /* The exchange fails. */
    snprintf(js, sizeof js,
             "{\"routes\":{\"" EXCHANGE "\":[{\"status\":500,\"json\":{}}],"
             "\"" JTI_PATH "\":[%s]}}",
             INACTIVE);
    stub_script(js);
    r = make(s);
    is_int(m8_revocation_check(r, &t, true, m8_now_wall()), M8_REV_ALLOW,
           "exchange 500: a transport failure, fail_open lets it through");
    is_int(m8_revocation_calls(r), 0, "exchange 500: ... no jti-status call");
    m8_revocation_free(r);
    snprintf(js, sizeof js,
             "{\"routes\":{\"" EXCHANGE "\":[{\"status\":403,\"json\":{}}],"
             "\"" JTI_PATH "\":[%s]}}",
             INACTIVE);
    stub_script(js);
    r = make(s);
    is_int(m8_revocation_check(r, &t, true, m8_now_wall()), M8_REV_UNAVAILABLE,
           "exchange 403: refused -> 503 even in fail_open (doc/wire.md#jti-status-outcomes)");
    m8_revocation_free(r);
    free(s);
}

/* Logs of failures name no jti, user id, token or secret. */
static void test_logs(void)
{
    char path[] = "/tmp/m8-revlog-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        ok(0, "logs: temp file");
        return;
    }
    m8_log_set_level(M8_LOG_WARNING);
    m8_log_set_fd(fd);
    const char *answers[] = {
        "{\"status\":200,\"json\":{\"active\":true,\"user_id\":\"11111111-1111-4111-8111-"
        "111111111111\","
        "\"auth_generation\":1}}",
        "{\"status\":404,\"json\":{}}",
        "{\"status\":500,\"json\":{}}",
    };
    int first = jti_n + 1;
    for (size_t i = 0; i < M8_ARRAY_LEN(answers); i++) {
        one(answers[i], true, false);
        struct timespec ts = {1, 100000000}; /* past the one-a-second log limit */
        nanosleep(&ts, NULL);
    }
    m8_log_set_fd(-1);
    m8_log_set_level(M8_LOG_CRITICAL);
    char buf[8192] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    like(buf, "subject_mismatch", "logs: a subject mismatch is logged");
    like(buf, "answered 404", "logs: a 4xx names the status (doc/wire.md#jti-status-outcomes)");
    like(buf, "security.revocation_fail_open", "logs: fail_open warns");
    bool leak = strstr(buf, SUB) || strstr(buf, "11111111-1111") || strstr(buf, SECRET);
    for (int i = first; i <= jti_n; i++) {
        char jti[32];
        snprintf(jti, sizeof jti, "jti-%d", i);
        leak = leak || strstr(buf, jti);
    }
    ok(!leak, "logs: no user id, jti or secret in them");
}

/* ------------------------------------------------------------ issuer.py */

/* A minted token's jti and sub (copied into out; false on failure). */
static bool iss_mint(char *jti, char *sub, size_t cap)
{
    json_object *o = iss_control("/_test/mint", "{}"), *v;
    bool okay = o && json_object_object_get_ex(o, "jti", &v) &&
                snprintf(jti, cap, "%s", json_object_get_string(v)) > 0 &&
                json_object_object_get_ex(o, "sub", &v) &&
                snprintf(sub, cap, "%s", json_object_get_string(v)) > 0;
    json_object_put(o);
    return okay;
}

static void test_issuer(void)
{
    static const char *const args[] = {"--prefix", "/user/private/v1", "--client",
                                       "item-service=" SECRET, NULL};
    if (iss_python_ok() != 0 || iss_start("issuer", args) != 0) {
        diag("SKIP the issuer.py interop part: tests/tools/issuer.py did not start");
        return;
    }
    char saved[256];
    snprintf(saved, sizeof saved, "%s", url);
    snprintf(url, sizeof url, "%s/user/private/v1/jti-status", iss_base);
    m8_revtable_clear(shm);
    for (int mode = 0; mode < 2; mode++) {
        const char *mname = mode ? "service token" : "bootstrap";
        m8_settings *s = settings(true, false, 0);
        s->service_token_exchange_enabled = mode == 1;
        m8_revocation *r = make(s);
        m8_revocation_set_timeouts(r, 2.0, 5.0);
        char jti[64], sub[64];
        if (!r || !iss_mint(jti, sub, sizeof jti)) {
            ok(0, "issuer (%s): mint a token", mname);
            m8_revocation_free(r);
            free(s);
            continue;
        }
        m8_rev_token t = {.jti = jti, .sub = sub, .iat = (long long)m8_now_wall(), .exp = 0};
        is_int(m8_revocation_check(r, &t, true, m8_now_wall()), M8_REV_ALLOW,
               "issuer (%s): a freshly minted token is active", mname);
        m8_rev_token wrong = t;
        wrong.sub = SUB;
        is_int(m8_revocation_check(r, &wrong, true, m8_now_wall()), M8_REV_REVOKED,
               "issuer (%s): the same jti under another sub is inactive (v2 subject binding)",
               mname);
        char body[160];
        snprintf(body, sizeof body, "{\"jti\":\"%s\",\"emit\":false}", jti);
        json_object_put(iss_control("/_test/revoke", body));
        is_int(m8_revocation_check(r, &t, true, m8_now_wall()), M8_REV_REVOKED,
               "issuer (%s): revoked at the issuer -> revoked", mname);
        if (mode == 1) {
            char jti2[64], sub2[64];
            iss_mint(jti2, sub2, sizeof jti2);
            m8_rev_token t2 = {.jti = jti2, .sub = sub2, .iat = (long long)m8_now_wall()};
            json_object_put(iss_control("/_test/revoke_service_tokens", "{}"));
            unsigned long calls = m8_revocation_calls(r);
            is_int(m8_revocation_check(r, &t2, true, m8_now_wall()), M8_REV_ALLOW,
                   "issuer (service token): a revoked service token -> 401 -> re-mint -> active");
            is_int(m8_revocation_calls(r) - calls, 2, "issuer (service token): ... two calls");
            json_object_put(
                iss_control("/_test/fault", "{\"target\":\"token\",\"mode\":\"status:403\"}"));
            json_object_put(iss_control("/_test/revoke_service_tokens", "{}"));
            is_int(m8_revocation_check(r, &t2, true, m8_now_wall()), M8_REV_UNAVAILABLE,
                   "issuer (service token): exchange refused (403) -> 503 even in fail_open");
            json_object_put(iss_control("/_test/fault", "{\"target\":\"token\",\"mode\":\"ok\"}"));
        }
        /* Faults of the issuer. */
        char jti3[64], sub3[64];
        iss_mint(jti3, sub3, sizeof jti3);
        m8_rev_token t3 = {.jti = jti3, .sub = sub3, .iat = (long long)m8_now_wall()};
        json_object_put(
            iss_control("/_test/fault", "{\"target\":\"introspection\",\"mode\":\"status:404\"}"));
        is_int(m8_revocation_check(r, &t3, true, m8_now_wall()), M8_REV_UNAVAILABLE,
               "issuer (%s): 404 -> 503 in fail_open (doc/wire.md#jti-status-outcomes)", mname);
        json_object_put(
            iss_control("/_test/fault", "{\"target\":\"introspection\",\"mode\":\"status:503\"}"));
        is_int(m8_revocation_check(r, &t3, true, m8_now_wall()), M8_REV_ALLOW,
               "issuer (%s): 503 -> fail_open lets it through", mname);
        json_object_put(iss_control(
            "/_test/fault", "{\"target\":\"introspection\",\"mode\":\"malformed:subject\"}"));
        is_int(m8_revocation_check(r, &t3, true, m8_now_wall()), M8_REV_UNAVAILABLE,
               "issuer (%s): another user_id -> 503 even in fail_open", mname);
        json_object_put(
            iss_control("/_test/fault", "{\"target\":\"introspection\",\"mode\":\"slow:3\"}"));
        m8_revocation_set_timeouts(r, 1.0, 1.0);
        double t0 = m8_now_mono();
        m8_rev_result slow = m8_revocation_check(r, &t3, true, m8_now_wall());
        double took = m8_now_mono() - t0;
        ok(slow == M8_REV_ALLOW && took < 2.0,
           "issuer (%s): slow issuer -> timeout after %.2f s -> fail_open", mname, took);
        json_object_put(iss_control("/_test/fault", "{\"target\":\"all\",\"mode\":\"ok\"}"));
        m8_revocation_free(r);
        free(s);
    }
    snprintf(url, sizeof url, "%s", saved);
    iss_stop();
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    m8_httpc_global_init();
    m8_log_set_level(M8_LOG_CRITICAL);
    shm = m8_shm_private();
    if (!shm) {
        printf("1..0 # SKIP no private segment\n");
        return 0;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d" JTI_PATH, stub_dead_port());
    test_new();
    if (stub_start() != 0) {
        diag("SKIP the HTTP part: no /usr/bin/python3 or the stub did not start");
        return done_testing();
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d" JTI_PATH, stub_port);
    test_request();
    test_outcomes();
    test_watermark();
    test_table_first();
    test_cache();
    test_service_token();
    test_logs();
    stub_stop();
    test_issuer();
    m8_httpc_thread_cleanup();
    m8_shm_unmap(shm);
    return done_testing();
}
