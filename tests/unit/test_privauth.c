/* test_privauth.c - private-API credentials (privauth.h,
 * doc/wire.md#private-api-auth) and the request side of the HTTP helper they use (httpc.h: POST,
 * extra headers, kept-alive per-thread handles, separate timeouts), against
 * tests/tools/stub_http.py. */
#include "config.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/privauth.h"
#include "core/log.h"
#include "net/httpc.h"
#include "stubhttp.h"
#include "tap.h"

#define SECRET "Private-Api-Secret-0123456789abcdef!"
#define EXCHANGE "/user/private/v1/service-token"

static char introspection_url[256];

/* Settings by hand: only the fields privauth reads. */
static m8_settings *settings(const char *client_id, bool exchange, const char *secret)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->introspection_url = introspection_url;
    s->private_api_secret = (char *)secret;
    s->internal_client_id = (char *)client_id;
    s->service_token_exchange_enabled = exchange;
    s->service_token_refresh_leeway_seconds = 30;
    return s;
}

static void test_derive(void)
{
    static const char *const cases[][3] = {
        {"http://auth:8000/private/v1/jti-status", "/events/stream",
         "http://auth:8000/private/v1/events/stream"},
        {"http://auth:8000/private/v1/jti-status/", "/events/stream",
         "http://auth:8000/private/v1/events/stream"},
        {"http://auth:8000/private/v1", "/events/stream",
         "http://auth:8000/private/v1/events/stream"},
        {"http://auth:8000/private/v1/", "/events/stream",
         "http://auth:8000/private/v1/events/stream"},
        {"http://auth:8000/user/private/v1/jti-status", "/service-token",
         "http://auth:8000/user/private/v1/service-token"},
        {"http://auth:8000/x?a=1", "/service-token", "http://auth:8000/x?a=1/service-token"},
        {"http://auth:8000/jti-status//", "/service-token", "http://auth:8000/service-token"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(cases); i++) {
        char *out = NULL;
        m8_privauth_derive_url(cases[i][0], cases[i][1], &out);
        is_str(out, cases[i][2], "derive the private URL: %s + %s", cases[i][0], cases[i][1]);
        free(out);
    }
}

static void test_new_errors(void)
{
    char err[256];
    m8_settings *s = settings(NULL, false, NULL);
    ok(m8_privauth_new(s, "introspection", err, sizeof err) == NULL,
       "new: no PRIVATE_API_SECRET is refused");
    like(err, "PRIVATE_API_SECRET", "new: ... naming the setting");
    s->private_api_secret = "";
    ok(m8_privauth_new(s, "introspection", err, sizeof err) == NULL,
       "new: an empty PRIVATE_API_SECRET is refused (never an empty header)");
    s->private_api_secret = "abc\r\nX-Evil: 1";
    ok(m8_privauth_new(s, "introspection", err, sizeof err) == NULL,
       "new: a secret with CR/LF is refused (header injection)");
    ok(strstr(err, "abc") == NULL, "new: ... and the error does not quote it");
    s->private_api_secret = SECRET;
    s->service_token_exchange_enabled = true;
    ok(m8_privauth_new(s, "introspection", err, sizeof err) == NULL,
       "new: exchange enabled without INTERNAL_CLIENT_ID is refused (doc/wire.md#modes)");
    s->internal_client_id = "svc\n";
    s->service_token_exchange_enabled = false;
    ok(m8_privauth_new(s, "introspection", err, sizeof err) == NULL,
       "new: a client id with a control character is refused");
    s->internal_client_id = "svc";
    s->service_token_exchange_enabled = true;
    s->introspection_url = NULL;
    ok(m8_privauth_new(s, "introspection", err, sizeof err) == NULL,
       "new: exchange without INTROSPECTION_URL is refused");
    free(s);
}

static void test_static_modes(void)
{
    char err[256];
    m8_privauth_hdrs h;
    m8_privauth_error e;
    m8_settings *s = settings(NULL, false, SECRET);
    m8_privauth *p = m8_privauth_new(s, "introspection", err, sizeof err);
    ok(p && m8_privauth_mode_of(p) == M8_PRIVAUTH_LEGACY, "mode: no client id -> legacy");
    is_str(m8_privauth_mode_name(M8_PRIVAUTH_LEGACY), "legacy", "mode name: legacy");
    is_int(m8_privauth_headers(p, 1, &h, &e), 0, "legacy: headers");
    ok(h.n == 1, "legacy: one header line");
    is_str(h.line[0], "X-Internal-Token: " SECRET, "legacy: X-Internal-Token carries the secret");
    m8_privauth_hdrs_clear(&h);
    ok(h.n == 0 && h.line[0] == NULL, "hdrs_clear: empties");
    ok(!m8_privauth_invalidate(p, 0), "legacy: a 401 is not worth a retry (static mode)");
    m8_privauth_free(p);

    s->internal_client_id = "";
    p = m8_privauth_new(s, "introspection", err, sizeof err);
    ok(p && m8_privauth_mode_of(p) == M8_PRIVAUTH_LEGACY, "mode: an empty client id -> legacy");
    m8_privauth_free(p);

    s->internal_client_id = "item-service";
    p = m8_privauth_new(s, "introspection", err, sizeof err);
    ok(p && m8_privauth_mode_of(p) == M8_PRIVAUTH_BOOTSTRAP,
       "mode: client id, no exchange -> bootstrap");
    is_int(m8_privauth_headers(p, 1, &h, &e), 0, "bootstrap: headers");
    ok(h.n == 2, "bootstrap: two header lines");
    is_str(h.line[0], "X-Internal-Client: item-service", "bootstrap: X-Internal-Client");
    is_str(h.line[1], "X-Internal-Token: " SECRET, "bootstrap: X-Internal-Token");
    m8_privauth_hdrs_clear(&h);
    ok(!m8_privauth_invalidate(p, 0), "bootstrap: no retry after a 401");
    is_int(m8_privauth_exchanges(p), 0, "bootstrap: no exchange ever");
    m8_privauth_free(p);
    free(s);
}

static void script_token(const char *token, const char *expires_json)
{
    char js[1024];
    snprintf(js, sizeof js,
             "{\"routes\":{\"" EXCHANGE "\":[{\"status\":200,\"json\":{\"access_token\":\"%s\","
             "\"token_type\":\"bearer\",\"expires_in\":%s,\"scope\":\"introspection\"}}]}}",
             token, expires_json);
    stub_script(js);
}

static m8_privauth *service_provider(m8_settings *s)
{
    char err[256];
    m8_privauth *p = m8_privauth_new(s, "introspection", err, sizeof err);
    if (!p)
        diag("new: %s", err);
    else
        m8_privauth_set_timeouts(p, 1.0, 1.0);
    return p;
}

static void test_exchange(void)
{
    m8_privauth_hdrs h;
    m8_privauth_error e;
    m8_settings *s = settings("item-service", true, SECRET);
    m8_privauth *p = service_provider(s);
    ok(p && m8_privauth_mode_of(p) == M8_PRIVAUTH_SERVICE_TOKEN,
       "mode: client id + exchange -> service_token");
    if (!p)
        return;

    script_token("tokA", "300");
    stub_clear_log();
    is_int(m8_privauth_headers(p, 1000, &h, &e), 0, "service token: headers after an exchange");
    ok(h.n == 1, "service token: one header line");
    is_str(h.line[0], "Authorization: Bearer tokA", "service token: Authorization: Bearer <token>");
    uint64_t gen1 = h.generation;
    m8_privauth_hdrs_clear(&h);
    json_object *log = stub_log();
    is_int(json_object_array_length(log), 1, "exchange: one request");
    is_str(stub_req_str(log, 0, "method"), "POST", "exchange: POST");
    is_str(stub_req_str(log, 0, "path"), EXCHANGE,
           "exchange: to INTROSPECTION_URL minus /jti-status plus /service-token");
    is_str(stub_req_header(log, 0, "x-internal-client"), "item-service",
           "exchange: X-Internal-Client");
    is_str(stub_req_header(log, 0, "x-internal-token"), SECRET, "exchange: X-Internal-Token");
    is_str(stub_req_header(log, 0, "content-type"), "application/json", "exchange: JSON body");
    is_str(stub_req_str(log, 0, "body"), "{\"scopes\":[\"introspection\"]}",
           "exchange: default scopes [\"introspection\"]");
    json_object_put(log);

    /* Reuse until fetched + expires_in - leeway (300 - 30 = 270 s). */
    is_int(m8_privauth_headers(p, 1269.999, &h, &e), 0, "leeway: headers just before the refresh");
    is_int(m8_privauth_exchanges(p), 1, "leeway: token reused until expires_in - leeway");
    m8_privauth_hdrs_clear(&h);
    script_token("tokB", "300");
    is_int(m8_privauth_headers(p, 1270, &h, &e), 0, "leeway: headers at the refresh point");
    is_int(m8_privauth_exchanges(p), 2, "leeway: re-exchanged exactly at expires_in - leeway");
    is_str(h.line[0], "Authorization: Bearer tokB", "leeway: ... and the new token is used");
    uint64_t gen2 = h.generation;
    m8_privauth_hdrs_clear(&h);
    ok(gen2 != gen1, "generation: a new token has a new generation");

    /* 401 handling: invalidate by generation. */
    ok(m8_privauth_invalidate(p, gen1), "invalidate: service-token mode says a retry helps");
    m8_privauth_headers(p, 1271, &h, &e);
    m8_privauth_hdrs_clear(&h);
    is_int(m8_privauth_exchanges(p), 2,
           "invalidate: a stale generation (another thread re-minted) keeps the new token");
    m8_privauth_invalidate(p, gen2);
    script_token("tokC", "300");
    m8_privauth_headers(p, 1272, &h, &e);
    is_int(m8_privauth_exchanges(p), 3, "invalidate: the current token is dropped, re-minted");
    is_str(h.line[0], "Authorization: Bearer tokC", "invalidate: ... with the fresh token");
    m8_privauth_hdrs_clear(&h);
    m8_privauth_free(p);

    /* expires_in <= leeway: a new exchange on every call. */
    p = service_provider(s);
    script_token("tokD", "30");
    m8_privauth_headers(p, 1, &h, &e);
    m8_privauth_hdrs_clear(&h);
    m8_privauth_headers(p, 1, &h, &e);
    m8_privauth_hdrs_clear(&h);
    is_int(m8_privauth_exchanges(p), 2, "leeway: expires_in == leeway exchanges on every call");
    m8_privauth_free(p);
    p = service_provider(s);
    script_token("tokE", "31");
    m8_privauth_headers(p, 1, &h, &e);
    m8_privauth_hdrs_clear(&h);
    m8_privauth_headers(p, 1.999, &h, &e);
    m8_privauth_hdrs_clear(&h);
    is_int(m8_privauth_exchanges(p), 1, "leeway: expires_in == leeway + 1 reuses for one second");
    m8_privauth_free(p);

    /* expires_in in the forms Python's int() reads. */
    p = service_provider(s);
    script_token("tokF", "\"300\"");
    is_int(m8_privauth_headers(p, 1, &h, &e), 0, "expires_in: a decimal string is read");
    m8_privauth_hdrs_clear(&h);
    m8_privauth_headers(p, 200, &h, &e);
    m8_privauth_hdrs_clear(&h);
    is_int(m8_privauth_exchanges(p), 1, "expires_in: ... as 300");
    m8_privauth_free(p);
    p = service_provider(s);
    script_token("tokG", "300.9");
    is_int(m8_privauth_headers(p, 1, &h, &e), 0, "expires_in: a float is truncated");
    m8_privauth_hdrs_clear(&h);
    m8_privauth_free(p);

    /* Scopes from SERVICE_TOKEN_SCOPES. */
    char *scopes[] = {"introspection", "event-stream"};
    s->service_token_scopes.items = scopes;
    s->service_token_scopes.n = 2;
    p = service_provider(s);
    script_token("tokH", "300");
    stub_clear_log();
    m8_privauth_headers(p, 1, &h, &e);
    m8_privauth_hdrs_clear(&h);
    log = stub_log();
    is_str(stub_req_str(log, 0, "body"), "{\"scopes\":[\"introspection\",\"event-stream\"]}",
           "exchange: body lists SERVICE_TOKEN_SCOPES in order");
    json_object_put(log);
    m8_privauth_free(p);
    s->service_token_scopes.n = 0;
    free(s);
}

typedef struct fail_case {
    const char *script; /* the exchange's RESPONSE */
    int kind;
    long status;
    const char *what;
} fail_case;

static void test_exchange_failures(void)
{
    char big[20000];
    snprintf(big, sizeof big,
             "{\"status\":200,\"body\":\"{\\\"access_token\\\":\\\"%0*d\\\","
             "\\\"expires_in\\\":300}\"}",
             (int)M8_PRIVAUTH_EXCHANGE_MAX_BYTES, 0);
    const fail_case cases[] = {
        {"{\"status\":401,\"json\":{\"detail\":\"Unauthorized\"}}", M8_ECONFIG, 401,
         "401 (bad bootstrap pair) is a refusal, not transport (doc/wire.md#jti-status-outcomes)"},
        {"{\"status\":403,\"json\":{\"detail\":\"Forbidden\"}}", M8_ECONFIG, 403,
         "403 (scopes) is a refusal"},
        {"{\"status\":404,\"json\":{\"detail\":\"Service-token exchange not enabled\"}}",
         M8_ECONFIG, 404, "404 (exchange not enabled) is a refusal"},
        {"{\"status\":302,\"headers\":{\"Location\":\"/x\"},\"body\":\"\"}", M8_ECONFIG, 302,
         "302 is not followed: a refusal"},
        {"{\"status\":500,\"body\":\"boom\"}", M8_EIO, 500, "500 is a transport failure"},
        {"{\"status\":503,\"body\":\"\"}", M8_EIO, 503, "503 is a transport failure"},
        {"{\"status\":200,\"body\":\"not json\"}", M8_EPARSE, 200, "a non-JSON 200 is EPARSE"},
        {"{\"status\":200,\"json\":[1]}", M8_EPARSE, 200, "a JSON array is EPARSE"},
        {"{\"status\":200,\"json\":{\"expires_in\":300}}", M8_EPARSE, 200,
         "no access_token is EPARSE"},
        {"{\"status\":200,\"json\":{\"access_token\":\"\",\"expires_in\":300}}", M8_EPARSE, 200,
         "an empty access_token is EPARSE"},
        {"{\"status\":200,\"json\":{\"access_token\":\"a\\r\\nX: y\",\"expires_in\":300}}",
         M8_EPARSE, 200, "an access_token with CR/LF is EPARSE (no header injection)"},
        {"{\"status\":200,\"json\":{\"access_token\":\"t\"}}", M8_EPARSE, 200,
         "no expires_in is EPARSE"},
        {"{\"status\":200,\"json\":{\"access_token\":\"t\",\"expires_in\":\"soon\"}}", M8_EPARSE,
         200, "a non-numeric expires_in is EPARSE"},
        {big, M8_EPARSE, 0, "an answer over M8_PRIVAUTH_EXCHANGE_MAX_BYTES is EPARSE"},
        {"{\"drop\":true}", M8_EIO, 0, "a dropped connection is a transport failure"},
        {"{\"delay\":3,\"status\":200,\"json\":{}}", M8_EIO, 0,
         "an answer slower than the timeout is a transport failure"},
    };
    m8_settings *s = settings("item-service", true, SECRET);
    for (size_t i = 0; i < M8_ARRAY_LEN(cases); i++) {
        char js[sizeof big + 128];
        snprintf(js, sizeof js, "{\"routes\":{\"" EXCHANGE "\":[%s]}}", cases[i].script);
        stub_script(js);
        m8_privauth *p = service_provider(s);
        m8_privauth_hdrs h;
        m8_privauth_error e;
        double t0 = m8_now_mono();
        int rc = m8_privauth_headers(p, 1, &h, &e);
        double took = m8_now_mono() - t0;
        ok(rc == cases[i].kind && e.kind == cases[i].kind && e.status == cases[i].status &&
               h.n == 0,
           "exchange failure: %s", cases[i].what);
        if (rc != cases[i].kind || e.status != cases[i].status)
            diag("rc %d kind %d status %ld msg %s", rc, e.kind, e.status, e.msg);
        ok(strstr(e.msg, SECRET) == NULL && took < 2.5,
           "exchange failure: ... in %.2f s, no secret in \"%s\"", took, e.msg);
        m8_privauth_free(p);
    }
    /* Nothing listening. */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/user/private/v1/jti-status", stub_dead_port());
    s->introspection_url = url;
    m8_privauth *p = service_provider(s);
    m8_privauth_hdrs h;
    m8_privauth_error e;
    is_int(m8_privauth_headers(p, 1, &h, &e), M8_EIO,
           "exchange failure: connection refused is a transport failure");
    m8_privauth_free(p);
    free(s);
}

typedef struct thr {
    m8_privauth *p;
    int rc;
} thr;

static void *thr_main(void *arg)
{
    thr *t = arg;
    for (int i = 0; i < 20; i++) {
        m8_privauth_hdrs h;
        m8_privauth_error e;
        t->rc |= m8_privauth_headers(t->p, 5, &h, &e);
        t->rc |= h.n == 1 ? 0 : 1;
        m8_privauth_hdrs_clear(&h);
    }
    m8_httpc_thread_cleanup();
    return NULL;
}

static void test_threads(void)
{
    m8_settings *s = settings("item-service", true, SECRET);
    stub_script("{\"routes\":{\"" EXCHANGE "\":[{\"delay\":0.2,\"status\":200,\"json\":"
                "{\"access_token\":\"shared\",\"expires_in\":300}}]}}");
    m8_privauth *p = service_provider(s);
    thr t[8];
    pthread_t id[8];
    for (int i = 0; i < 8; i++) {
        t[i] = (thr){.p = p};
        pthread_create(&id[i], NULL, thr_main, &t[i]);
    }
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(id[i], NULL);
        bad |= t[i].rc;
    }
    is_int(bad, 0, "threads: 8 threads x 20 calls all get headers");
    is_int(m8_privauth_exchanges(p), 1, "threads: one exchange at a time; the others reuse it");
    m8_privauth_free(p);
    free(s);
}

/* ------------------------------------------------------------ httpc */

static bool count_bytes(const char *p, size_t n, void *data)
{
    (void)p;
    *(size_t *)data += n;
    return true;
}

static void test_httpc(void)
{
    char u[256];
    m8_http_result res;
    stub_url(u, sizeof u, "/echo");
    stub_script("{\"routes\":{\"/echo\":[{\"status\":201,\"json\":{\"ok\":true},"
                "\"headers\":{\"Retry-After\":\"7\"}}],"
                "\"/redir\":[{\"status\":302,\"headers\":{\"Location\":\"/echo\"},\"body\":\"\"}],"
                "\"/slow\":[{\"delay\":3,\"status\":200,\"body\":\"late\"}],"
                "\"/trickle\":[{\"trickle\":1.5,\"status\":200,\"body\":\"abcd\"}],"
                "\"/bye\":[{\"status\":200,\"body\":\"x\",\"close\":true}]}}");
    stub_clear_log();
    const char *hdrs[] = {"X-One: 1", "Content-Type: application/json", NULL};
    m8_http_request rq = {
        .method = "POST",
        .url = u,
        .headers = hdrs,
        .body = "{\"a\":1}",
        .body_len = 7,
        .timeout_s = 2,
        .connect_timeout_s = 1,
        .max = 1024,
        .reuse = true,
        .capture_header = "retry-after",
    };
    unsigned long c0 = m8_httpc_connects();
    is_int(m8_http_do(&rq, &res), 0, "httpc POST: answered");
    ok(res.status == 201 && strcmp(res.body.data, "{\"ok\":true}") == 0,
       "httpc POST: status and body");
    is_str(res.header, "7", "httpc: capture_header reads a response header (any case)");
    m8_buf_free(&res.body);
    for (int i = 0; i < 4; i++) {
        m8_http_do(&rq, &res);
        m8_buf_free(&res.body);
    }
    is_int(m8_httpc_connects() - c0, 1, "httpc reuse: 5 requests on one kept-alive connection");
    json_object *log = stub_log();
    ok(json_object_array_length(log) == 5 &&
           strcmp(stub_req_str(log, 0, "conn"), stub_req_str(log, 4, "conn")) == 0,
       "httpc reuse: the server saw one connection");
    is_str(stub_req_str(log, 0, "body"), "{\"a\":1}", "httpc POST: the body arrives");
    is_str(stub_req_header(log, 0, "x-one"), "1", "httpc: extra headers arrive");
    ok(stub_req_header(log, 0, "expect") == NULL, "httpc POST: no Expect: 100-continue");
    json_object_put(log);

    /* The server closes the kept connection: the next call opens another. */
    stub_url(u, sizeof u, "/bye");
    rq.method = "GET";
    rq.body = NULL;
    rq.body_len = 0;
    m8_http_do(&rq, &res);
    m8_buf_free(&res.body);
    stub_url(u, sizeof u, "/echo");
    is_int(m8_http_do(&rq, &res), 0, "httpc reuse: a call after the server closed succeeds");
    m8_buf_free(&res.body);

    /* Redirects: handed back unless asked for. */
    stub_url(u, sizeof u, "/redir");
    m8_http_do(&rq, &res);
    is_int(res.status, 302, "httpc: follow_redirects false hands back the 3xx");
    m8_buf_free(&res.body);
    rq.follow_redirects = true;
    m8_http_do(&rq, &res);
    is_int(res.status, 201, "httpc: follow_redirects true follows");
    ok(strcmp(res.header, "7") == 0, "httpc: the captured header is the final response's");
    m8_buf_free(&res.body);
    rq.follow_redirects = false;

    /* Timeouts bound the call. */
    stub_url(u, sizeof u, "/slow");
    rq.timeout_s = 0.5;
    double t0 = m8_now_mono();
    is_int(m8_http_do(&rq, &res), M8_EIO, "httpc: a total timeout of 0.5 s fails a 3 s answer");
    double took = m8_now_mono() - t0;
    ok(took < 1.5, "httpc: ... after %.2f s", took);
    like(res.error, "imeout", "httpc: ... with a timeout error text");
    m8_buf_free(&res.body);
    snprintf(u, sizeof u, "http://127.0.0.1:%d/x", stub_dead_port());
    is_int(m8_http_do(&rq, &res), M8_EIO, "httpc: connection refused is M8_EIO");
    m8_buf_free(&res.body);

    /* Read timeout (silence between bytes), streaming receiver. */
    stub_url(u, sizeof u, "/trickle");
    size_t got = 0;
    rq.timeout_s = 30;
    rq.read_timeout_s = 1;
    rq.on_data = count_bytes;
    rq.data = &got;
    t0 = m8_now_mono();
    is_int(m8_http_do(&rq, &res), M8_EIO, "httpc: read_timeout_s 1 fails a body silent for 1.5 s");
    took = m8_now_mono() - t0;
    ok(took < 5, "httpc: ... well before the total timeout (%.2f s)", took);
    m8_buf_free(&res.body);
    rq.read_timeout_s = 0;
    rq.on_data = NULL;
    rq.timeout_s = 2;

    /* Header count: exactly the limit and one more. */
    const char *many[M8_HTTPC_MAX_HEADERS + 2];
    char lines[M8_HTTPC_MAX_HEADERS + 1][32];
    for (unsigned i = 0; i <= M8_HTTPC_MAX_HEADERS; i++) {
        snprintf(lines[i], sizeof lines[i], "X-H%u: %u", i, i);
        many[i] = lines[i];
    }
    many[M8_HTTPC_MAX_HEADERS] = NULL;
    stub_url(u, sizeof u, "/echo");
    rq.headers = many;
    is_int(m8_http_do(&rq, &res), 0, "httpc: %u extra headers are sent", M8_HTTPC_MAX_HEADERS);
    m8_buf_free(&res.body);
    many[M8_HTTPC_MAX_HEADERS] = lines[M8_HTTPC_MAX_HEADERS];
    many[M8_HTTPC_MAX_HEADERS + 1] = NULL;
    is_int(m8_http_do(&rq, &res), M8_EINVAL, "httpc: %u extra headers are refused",
           M8_HTTPC_MAX_HEADERS + 1);
    m8_buf_free(&res.body);
    rq.headers = NULL;
    rq.method = "PUT";
    is_int(m8_http_do(&rq, &res), M8_EINVAL, "httpc: a method other than GET/POST is refused");
    m8_buf_free(&res.body);
    rq.method = "GET";
    rq.connect_timeout_s = -1;
    is_int(m8_http_do(&rq, &res), M8_EINVAL, "httpc: a negative connect timeout is refused");
    m8_buf_free(&res.body);
    m8_httpc_thread_cleanup();
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    m8_httpc_global_init();
    m8_log_set_level(M8_LOG_ERROR);
    test_derive();
    test_new_errors();
    test_static_modes();
    if (stub_start() != 0) {
        diag("SKIP the HTTP part: no /usr/bin/python3 or the stub did not start");
        return done_testing();
    }
    snprintf(introspection_url, sizeof introspection_url,
             "http://127.0.0.1:%d/user/private/v1/jti-status", stub_port);
    test_exchange();
    test_exchange_failures();
    test_threads();
    test_httpc();
    stub_stop();
    return done_testing();
}
