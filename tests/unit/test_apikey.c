/* test_apikey.c - the API-key principal (apikey.h;
 * doc/wire.md#api-key-introspection) against tests/tools/issuer.py: every
 * row of the interpretation order (doc/wire.md#interpretation-order) with
 * its reason code and the answers of doc/responses.md#api-key-failures
 * (401/403/429 with Retry-After passed through/503), the v1 schema of
 * doc/wire.md#introspection-response (table of malformed answers), the
 * capability decision of doc/wire.md#capabilities, the circuit breaker
 * (fake clock and real clock), the concurrency limit, bounded time against
 * a slow or absent issuer, the service-token mode with the re-mint after a
 * 401, nothing cached, the boot audit, and logs (one line per refusal,
 * never the key or a secret).
 * Skips the issuer part when /usr/bin/python3 lacks jwt/cryptography.
 *
 * This file holds main(), the issuer part and the shared helpers; the tests
 * are in test_apikey_local.c, test_apikey_order.c and test_apikey_client.c
 * (test_apikey.h). */

#include "config.h"

#define M8T_MAIN 1 /* this file holds main() (tap.h) */
#include "test_apikey.h"

extern char **environ;

static char *scope_items[] = {"introspection", "api-key-introspection"};
char intro_url[256]; /* INTROSPECTION_URL of the issuer under test */
m8_arena arena;
static unsigned long refusals_total; /* refusals of every freed resolver */

/* Settings of an enabled API-key consumer, by hand (the defaults of
 * doc/wire.md#enabling-api-keys, short timeouts). */
m8_settings *settings(const char *introspection_url)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->api_key_introspection_enabled = true;
    s->introspection_url = (char *)introspection_url;
    s->private_api_secret = SECRET;
    s->internal_client_id = CLIENT;
    s->api_key_introspection_schema_version = "1";
    s->api_key_introspection_connect_timeout = 0.5;
    s->api_key_introspection_read_timeout = 1.0;
    s->api_key_introspection_pool_timeout = 0.5;
    s->api_key_introspection_max_concurrency = 20;
    s->api_key_introspection_max_response_bytes = 8192;
    s->api_key_introspection_circuit_failure_threshold = 1000;
    s->api_key_introspection_circuit_reset_seconds = 30.0;
    s->service_token_refresh_leeway_seconds = 30;
    s->service_token_scopes.items = scope_items;
    s->service_token_scopes.n = M8_ARRAY_LEN(scope_items);
    return s;
}

m8_apikey *make(const m8_settings *s)
{
    char err[256];
    m8_apikey *k = m8_apikey_new(s, err, sizeof err);
    if (!k)
        diag("new: %s", err);
    return k;
}

void drop(m8_apikey *k, m8_settings *s)
{
    if (k) {
        m8_apikey_stats st;
        m8_apikey_get_stats(k, &st);
        refusals_total += st.refusals;
    }
    m8_apikey_free(k);
    free(s);
}

m8_apikey_stats stats(m8_apikey *k)
{
    m8_apikey_stats st;
    m8_apikey_get_stats(k, &st);
    return st;
}

m8_apikey_answer ans;

/* One resolution of a NUL-terminated key at the real clock. */
bool resolve(m8_apikey *k, const char *key, m8_apikey_need need)
{
    m8_arena_reset(&arena);
    return m8_apikey_resolve(k, key, key ? strlen(key) : 0, need, m8_now_mono(), &arena, &ans);
}

/* "status reason" of the last answer, e.g. "503 transport". */
const char *outcome(void)
{
    static char b[64];
    snprintf(b, sizeof b, "%d %s", ans.status, m8_apikey_reason_name(ans.reason));
    return b;
}

/* ------------------------------------------------------------ issuer.py */

void ctl(const char *path, const char *body)
{
    json_object *o = iss_control(path, body);
    if (!o)
        diag("control %s %s failed", path, body ? body : "");
    json_object_put(o);
}

void fault(const char *json)
{
    ctl("/_test/fault", json);
}

void add_key(const char *json)
{
    ctl("/_test/apikey", json);
}

static void test_issuer(void)
{
    if (iss_python_ok() != 0) {
        diag("SKIP the issuer part: /usr/bin/python3 lacks jwt/cryptography");
        return;
    }
    if (iss_start("apikey", (const char *const[]){"--client", CLIENT "=" SECRET, NULL}) != 0) {
        ok(0, "tests/tools/issuer.py starts");
        return;
    }
    char logpath[] = "/tmp/m8-apikey-log-XXXXXX";
    int fd = mkstemp(logpath);
    m8_log_set_fd(fd);
    m8_log_set_level(M8_LOG_INFO);
    m8_log_limit_config(1u << 30, 1e9, NULL); /* every line, to match them with refusals */
    unsigned long before = refusals_total;
    test_rows();
    test_too_large();
    test_slow();
    test_load_shed();
    test_breaker();
    test_service_token();
    test_keys();
    test_threads();
    m8_log_set_level(M8_LOG_CRITICAL);
    m8_log_set_fd(-1);
    size_t len = 0;
    char *buf = NULL;
    if (m8_read_file(logpath, 1 << 24, true, &buf, &len) != 0)
        buf = NULL;
    close(fd);
    unlink(logpath);
    const char *b = buf ? buf : "";
    unsigned long lines = 0;
    for (const char *p = b; (p = strstr(p, "\"api_key.refused\"")) != NULL; p++)
        lines++;
    is_int(lines, refusals_total - before, "logs: one api_key.refused line per refusal (%lu)",
           lines);
    like(b, "\"reason\":\"circuit_open\"", "logs: the line names the reason code");
    like(b, "\"expected_audience\":\"" CLIENT "\"", "logs: audience_mismatch names the audience");
    ok(!strstr(b, "k-reader") && !strstr(b, "k-caf") && !strstr(b, "k-429") &&
           !strstr(b, "LLLLLLLL") && !strstr(b, "k-full"),
       "logs: never a key");
    ok(!strstr(b, SECRET) && !strstr(b, "Wrong-Bootstrap"), "logs: never a secret");
    free(buf);
    iss_stop();
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    m8_httpc_global_init();
    m8_log_set_level(M8_LOG_CRITICAL);
    m8_arena_init(&arena, 1 << 20);
    test_names();
    test_capability();
    test_audit();
    test_parse();
    test_new();
    test_local();
    test_issuer();
    m8_arena_free(&arena);
    m8_httpc_thread_cleanup();
    return done_testing();
}
