/* test_apikey_client.c - the introspection client against
 * tests/tools/issuer.py: size and time bounds, load shedding, the circuit
 * breaker, the service token, key handling, many threads. */

#include "config.h"

#include "test_apikey.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Row 4: the response cap, exactly at and one past, whatever the status. */
void test_too_large(void)
{
    m8_settings *s = settings(intro_url);
    s->api_key_introspection_max_response_bytes = 1024;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    add_key("{\"key\":\"k-pad\",\"pad\":1024}");
    ok(resolve(k, "k-pad", M8_APIKEY_READER), "row 4: an answer of exactly 1024 bytes is read");
    add_key("{\"key\":\"k-pad\",\"pad\":1025}");
    resolve(k, "k-pad", M8_APIKEY_READER);
    is_str(outcome(), "503 response_too_large", "row 4: 1025 bytes -> 503 response_too_large");
    is_int(stats(k).failures, 0, "row 4: no breaker count");
    char big[1400];
    memset(big, 'x', 1100);
    big[1100] = '\0';
    char json[1600];
    snprintf(json, sizeof json, "{\"key\":\"k-big500\",\"status\":500,\"body\":\"%s\"}", big);
    add_key(json);
    resolve(k, "k-big500", M8_APIKEY_READER);
    is_str(outcome(), "503 response_too_large",
           "row 4 before row 7: a 500 with an oversized body is response_too_large");
    is_int(stats(k).failures, 0, "row 4: ... and not a breaker failure");
    fault("{\"target\":\"apikey\",\"mode\":\"big:5000\",\"count\":1}");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 response_too_large", "row 4: fault big:5000");
    drop(k, s);
}

/* Row 3 with time bounds: a slow issuer. */
void test_slow(void)
{
    m8_settings *s = settings(intro_url);
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    fault("{\"target\":\"apikey\",\"mode\":\"slow:2.5\",\"count\":1}");
    long n = iss_count("apikey");
    double t0 = m8_now_mono();
    resolve(k, "k-reader", M8_APIKEY_READER);
    double took = m8_now_mono() - t0;
    is_str(outcome(), "503 transport", "slow issuer: 503 transport");
    ok(took >= 1.2 && took < 2.5,
       "slow issuer: bounded by connect + read timeouts (0.5 + 1.0 s; took %.2f s)", took);
    is_int(stats(k).failures, 1, "slow issuer: a breaker failure");
    is_int(iss_count("apikey") - n, 1, "slow issuer: not retried (the request may have arrived)");
    sleep_ms(1000); /* let the slow handler finish */
    drop(k, s);
}

/* Row 2: the concurrency limit. */
typedef struct {
    m8_apikey *k;
    bool ok;
    m8_apikey_answer a;
} slow_call;

static void *slow_thread(void *data)
{
    slow_call *c = data;
    m8_arena a;
    m8_arena_init(&a, 1 << 16);
    c->ok = m8_apikey_resolve(c->k, "k-reader", 8, M8_APIKEY_READER, m8_now_mono(), &a, &c->a);
    m8_arena_free(&a);
    m8_httpc_thread_cleanup();
    return NULL;
}

void test_load_shed(void)
{
    m8_settings *s = settings(intro_url);
    s->api_key_introspection_max_concurrency = 1;
    s->api_key_introspection_pool_timeout = 0.3;
    s->api_key_introspection_read_timeout = 5.0;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    fault("{\"target\":\"apikey\",\"mode\":\"slow:1.2\",\"count\":1}");
    slow_call c = {.k = k};
    pthread_t th;
    pthread_create(&th, NULL, slow_thread, &c);
    sleep_ms(300);
    double t0 = m8_now_mono();
    resolve(k, "k-reader", M8_APIKEY_READER);
    double took = m8_now_mono() - t0;
    is_str(outcome(), "503 load_shed", "row 2: no slot within POOL_TIMEOUT -> 503 load_shed");
    ok(took >= 0.25 && took < 0.8, "row 2: ... after POOL_TIMEOUT (0.3 s; took %.2f s)", took);
    pthread_join(th, NULL);
    ok(c.ok, "row 2: the call holding the slot succeeds");
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "row 2: the slot is given back");
    is_int(stats(k).failures, 0, "row 2: load shedding is not a breaker failure");
    drop(k, s);
}

/* The breaker on the real clock against the issuer. */
void test_breaker(void)
{
    m8_settings *s = settings(intro_url);
    s->api_key_introspection_circuit_failure_threshold = 2;
    s->api_key_introspection_circuit_reset_seconds = 0.4;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    fault("{\"target\":\"apikey\",\"mode\":\"status:503\",\"count\":3}");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_int(stats(k).breaker, M8_AK_BREAKER_CLOSED, "breaker (issuer): one 503, still closed");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_int(stats(k).breaker, M8_AK_BREAKER_OPEN, "breaker (issuer): two 503s open it");
    long n = iss_count("apikey");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 circuit_open", "breaker (issuer): open -> circuit_open");
    is_int(iss_count("apikey") - n, 0, "breaker (issuer): ... the issuer is not called");
    sleep_ms(450);
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 issuer_unavailable", "breaker (issuer): half-open after the reset time");
    is_int(stats(k).breaker, M8_AK_BREAKER_OPEN, "breaker (issuer): one failure re-opens it");
    sleep_ms(450);
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "breaker (issuer): half-open, then a success");
    m8_apikey_stats st = stats(k);
    ok(st.breaker == M8_AK_BREAKER_CLOSED && st.failures == 0, "breaker (issuer): ... closes it");
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "breaker (issuer): closed, calls go through");
    drop(k, s);
}

/* The service-token mode (doc/wire.md#service-token-exchange) with the 401 re-mint. */
void test_service_token(void)
{
    m8_settings *s = settings(intro_url);
    s->service_token_exchange_enabled = true;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    long minted = iss_count("token");
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "service token: a key resolves");
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "service token: again");
    is_int(iss_count("token") - minted, 1, "service token: minted once, reused");
    ctl("/_test/revoke_service_tokens", "{}");
    long n = iss_count("apikey");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 consumer_unauthorized",
           "service token: a 401 -> 503 consumer_unauthorized, no retry "
           "(doc/wire.md#service-token-exchange)");
    is_int(iss_count("apikey") - n, 1, "service token: ... one request");
    is_int(stats(k).failures, 0, "service token: ... no breaker count");
    ok(resolve(k, "k-reader", M8_APIKEY_READER),
       "service token: the next request re-mints and resolves");
    is_int(iss_count("token") - minted, 2, "service token: ... with one new exchange");
    fault("{\"target\":\"token\",\"mode\":\"status:403\"}");
    ctl("/_test/revoke_service_tokens", "{}");
    resolve(k, "k-reader", M8_APIKEY_READER); /* 401: drops the token */
    resolve(k, "k-reader", M8_APIKEY_READER);
    ok(ans.status == 503 && ans.reason == M8_AK_CONSUMER_UNAUTHORIZED && ans.issuer_status == 403,
       "service token: an exchange refused with 403 -> 503 consumer_unauthorized");
    fault("{\"target\":\"token\",\"mode\":\"down\"}");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 transport", "service token: the exchange cannot be made -> transport");
    is_int(stats(k).failures, 1, "service token: ... a breaker failure");
    fault("{\"target\":\"token\",\"mode\":\"ok\"}");
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "service token: the exchange is back");
    drop(k, s);

    /* Without the api-key-introspection scope, the issuer answers 403. */
    ctl("/_test/client",
        "{\"client_id\":\"noscope\",\"secret\":\"" SECRET "\",\"scopes\":[\"introspection\"]}");
    s = settings(intro_url);
    s->internal_client_id = "noscope";
    k = make(s);
    if (k) {
        resolve(k, "k-reader", M8_APIKEY_READER);
        ok(ans.status == 503 && ans.reason == M8_AK_CONSUMER_UNAUTHORIZED &&
               ans.issuer_status == 403,
           "row 6: no api-key-introspection scope (403) -> 503 consumer_unauthorized");
    }
    drop(k, s);
    s = settings(intro_url);
    s->private_api_secret = "Wrong-Bootstrap-Secret-0123456789abcdef";
    k = make(s);
    if (k) {
        resolve(k, "k-reader", M8_APIKEY_READER);
        ok(ans.status == 503 && ans.reason == M8_AK_CONSUMER_UNAUTHORIZED &&
               ans.issuer_status == 401,
           "row 6: a refused credential (401) -> 503 consumer_unauthorized");
    }
    drop(k, s);
}

/* Keys at the length limit and with bytes >= 0x80. */
void test_keys(void)
{
    m8_settings *s = settings(intro_url);
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    char key[M8_APIKEY_MAX_KEY_BYTES + 2];
    memset(key, 'L', M8_APIKEY_MAX_KEY_BYTES);
    key[M8_APIKEY_MAX_KEY_BYTES] = '\0';
    char json[M8_APIKEY_MAX_KEY_BYTES + 64];
    snprintf(json, sizeof json, "{\"key\":\"%s\"}", key);
    add_key(json);
    ok(resolve(k, key, M8_APIKEY_READER), "key length: %u bytes are sent and resolve",
       M8_APIKEY_MAX_KEY_BYTES);
    long n = iss_count("apikey");
    key[M8_APIKEY_MAX_KEY_BYTES] = 'L';
    key[M8_APIKEY_MAX_KEY_BYTES + 1] = '\0';
    resolve(k, key, M8_APIKEY_READER);
    is_str(outcome(), "401 key_too_long", "key length: one more byte -> 401 without a call");
    is_int(iss_count("apikey") - n, 0, "key length: ... the issuer is not asked");
    /* The header's bytes read as Latin-1, as Starlette does: 0xE9 is U+00E9. */
    add_key("{\"key\":\"k-caf\\u00e9\\\"q\\\\\"}");
    ok(resolve(k, "k-caf\xe9\"q\\", M8_APIKEY_READER),
       "key bytes: a Latin-1 byte and JSON escapes reach the issuer as Python sends them");
    ok(!resolve(k, "k-caf\xc3\xa9\"q\\", M8_APIKEY_READER) && ans.reason == M8_AK_INACTIVE,
       "key bytes: ... the UTF-8 bytes are another key");
    ok(!resolve(k, " k-reader", M8_APIKEY_READER) && ans.reason == M8_AK_INACTIVE,
       "key bytes: the value is used as is (no trimming)");
    drop(k, s);
}

/* Many threads at once (the breaker and the slots under contention). */
typedef struct {
    m8_apikey *k;
    int okays;
} hammer;

static void *hammer_thread(void *data)
{
    hammer *h = data;
    m8_arena a;
    m8_arena_init(&a, 1 << 16);
    for (int i = 0; i < 10; i++) {
        m8_apikey_answer an;
        m8_arena_reset(&a);
        if (m8_apikey_resolve(h->k, "k-reader", 8, M8_APIKEY_READER, m8_now_mono(), &a, &an))
            h->okays++;
    }
    m8_arena_free(&a);
    m8_httpc_thread_cleanup();
    return NULL;
}

void test_threads(void)
{
    m8_settings *s = settings(intro_url);
    s->api_key_introspection_max_concurrency = 4;
    s->api_key_introspection_pool_timeout = 10;
    s->api_key_introspection_read_timeout = 5;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    long n = iss_count("apikey");
    hammer h[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (hammer){.k = k};
        pthread_create(&th[i], NULL, hammer_thread, &h[i]);
    }
    int total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        total += h[i].okays;
    }
    is_int(total, 80, "threads: 8 x 10 concurrent resolutions all succeed");
    is_int(iss_count("apikey") - n, 80, "threads: ... one request each");
    is_int(stats(k).resolutions, 80, "threads: ... counted");
    drop(k, s);
}
