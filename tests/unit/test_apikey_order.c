/* test_apikey_order.c - the API-key principal against
 * tests/tools/issuer.py: every row of the interpretation order with its
 * outcome, its breaker count and one introspection request. */

#include "config.h"

#include "test_apikey.h"

typedef struct {
    const char *what, *key_json, *key;
    m8_apikey_need need;
    const char *outcome;
    int failure_delta; /* breaker count change: 1 failure, 0 none, -1 reset (success) */
} row;

static void run_rows(m8_apikey *k, const row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        if (r->key_json)
            add_key(r->key_json);
        unsigned before = stats(k).failures;
        long calls = iss_count("apikey");
        resolve(k, r->key, r->need);
        is_str(outcome(), r->outcome, "%s -> %s", r->what, r->outcome);
        unsigned after = stats(k).failures;
        bool bok = r->failure_delta < 0 ? after == 0 : after == before + (unsigned)r->failure_delta;
        ok(bok, "%s: breaker %s (%u -> %u)", r->what,
           r->failure_delta < 0   ? "success"
           : r->failure_delta > 0 ? "failure"
                                  : "not counted",
           before, after);
        is_int(iss_count("apikey") - calls, 1, "%s: one introspection request", r->what);
    }
}

void test_rows(void)
{
    snprintf(intro_url, sizeof intro_url, "%s/private/v1/jti-status", iss_base);
    m8_settings *s = settings(intro_url);
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    /* A failure first, so each success row proves it resets the count. */
    static const row rows[] = {
        {"row 13: an active reader key, reader route", "{\"key\":\"k-reader\",\"role\":\"reader\"}",
         "k-reader", M8_APIKEY_READER, "0 ok", -1},
        {"row 13: the bare principal", NULL, "k-reader", M8_APIKEY_PRINCIPAL, "0 ok", -1},
        {"capability: a reader key on a writer route", NULL, "k-reader", M8_APIKEY_WRITER,
         "403 insufficient_capability", -1},
        {"capability: a read_only writer on a writer route",
         "{\"key\":\"k-writer-ro\",\"role\":\"writer\",\"access_mode\":\"read_only\"}",
         "k-writer-ro", M8_APIKEY_WRITER, "403 insufficient_capability", -1},
        {"capability: a read_write writer on a writer route",
         "{\"key\":\"k-writer\",\"role\":\"writer\",\"capabilities\":[\"read\",\"write\"]}",
         "k-writer", M8_APIKEY_WRITER, "0 ok", -1},
        {"capability: a user-role key on a reader route", "{\"key\":\"k-user\",\"role\":\"user\"}",
         "k-user", M8_APIKEY_READER, "403 insufficient_capability", -1},
        {"capability: a superadmin key on a writer route",
         "{\"key\":\"k-sa\",\"role\":\"superadmin\",\"access_mode\":\"read_write\"}", "k-sa",
         M8_APIKEY_WRITER, "0 ok", -1},
        {"row 11: an unknown key", NULL, "k-unknown", M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: a revoked key", "{\"key\":\"k-revoked\",\"state\":\"revoked\"}", "k-revoked",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: an expired key", "{\"key\":\"k-expired\",\"state\":\"expired\"}", "k-expired",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: expires_at passed", "{\"key\":\"k-past\",\"expires_in\":-5}", "k-past",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: owner inactive", "{\"key\":\"k-oi\",\"state\":\"owner_inactive\"}", "k-oi",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: owner missing", "{\"key\":\"k-om\",\"state\":\"owner_missing\"}", "k-om",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: audience not bound", "{\"key\":\"k-aud\",\"audiences\":[\"other\"]}", "k-aud",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: audience bound", "{\"key\":\"k-aud2\",\"audiences\":[\"" CLIENT "\"]}", "k-aud2",
         M8_APIKEY_READER, "0 ok", -1},
        {"row 12: another audience_id echoed", "{\"key\":\"k-mis\",\"audience_id\":\"other\"}",
         "k-mis", M8_APIKEY_READER, "503 audience_mismatch", -1},
        {"row 5: the key's 429", "{\"key\":\"k-429\",\"state\":\"rate_limited\"}", "k-429",
         M8_APIKEY_READER, "429 quota_exceeded", 0},
        {"row 9: schema_version 2 in the answer",
         "{\"key\":\"k-v2\",\"override\":{\"schema_version\":\"2\"}}", "k-v2", M8_APIKEY_READER,
         "503 malformed_response", 0},
        {"row 9: principal null", "{\"key\":\"k-np\",\"override\":{\"principal\":null}}", "k-np",
         M8_APIKEY_READER, "503 malformed_response", 0},
        {"row 9: superadmin without the flag",
         "{\"key\":\"k-bad-pair\",\"role\":\"superadmin\",\"is_superuser\":false}", "k-bad-pair",
         M8_APIKEY_READER, "503 malformed_response", 0},
        {"row 9: key_expires_at not a date",
         "{\"key\":\"k-bad-exp\",\"override\":{\"key_expires_at\":\"tomorrow\"}}", "k-bad-exp",
         M8_APIKEY_READER, "503 malformed_response", 0},
        {"row 8: 418 from the issuer",
         "{\"key\":\"k-418\",\"status\":418,\"body\":{\"detail\":\"teapot\"}}", "k-418",
         M8_APIKEY_READER, "503 unexpected_status", 1},
        {"row 8: 201 from the issuer",
         "{\"key\":\"k-201\",\"status\":201,\"body\":{\"active\":false}}", "k-201",
         M8_APIKEY_READER, "503 unexpected_status", 1},
        {"row 7: 500 with a body", "{\"key\":\"k-500\",\"status\":500,\"body\":{\"detail\":\"x\"}}",
         "k-500", M8_APIKEY_READER, "503 issuer_unavailable", 1},
        {"row 10: a success closes the count", NULL, "k-reader", M8_APIKEY_READER, "0 ok", -1},
    };
    run_rows(k, rows, M8_ARRAY_LEN(rows));

    /* The principal and the request of doc/wire.md#introspection-request. */
    add_key("{\"key\":\"k-full\",\"user_id\":\"6f1c2a9e-0000-4000-8000-000000000001\","
            "\"role\":\"writer\",\"access_mode\":\"read_write\",\"expires_at\":"
            "\"2031-05-06T07:08:09Z\"}");
    ok(resolve(k, "k-full", M8_APIKEY_WRITER), "principal: a writer key resolves");
    const m8_apikey_principal *p = &ans.principal;
    is_str(p->user_id, "6f1c2a9e-0000-4000-8000-000000000001", "principal: the owner");
    is_str(p->role, "writer", "principal: the role");
    is_str(p->access_mode, "read_write", "principal: the access mode");
    ok(p->can_read && p->can_write, "principal: reader and writer capabilities");
    is_str(p->audience_id, CLIENT, "principal: audience_id = INTERNAL_CLIENT_ID");
    is_int(p->auth_generation, 1, "principal: auth_generation");
    is_str(p->key_expires_at, "2031-05-06T07:08:09Z", "principal: key_expires_at");
    ok(p->key_expires_ts == 1935817689.0, "principal: key_expires_at parsed (%.0f)",
       p->key_expires_ts);
    ok(strlen(p->key_id) == 19 && strncmp(p->key_id, "ak_", 3) == 0 &&
           strspn(p->key_id + 3, "0123456789abcdef") == 16,
       "principal: key_id is ak_ + 16 hex digits (%s)", p->key_id);
    ok(ans.detail == NULL && ans.status == 0, "principal: no answer to send");

    json_object *st = iss_control("/_test/stats", NULL), *last = NULL, *v;
    bool got = st && json_object_object_get_ex(st, "last", &last) &&
               json_object_object_get_ex(last, "apikey", &last);
    const char *body =
        got && json_object_object_get_ex(last, "body", &v) ? json_object_get_string(v) : "";
    is_str(body, "{\"api_key\":\"k-full\",\"schema_version\":\"1\"}",
           "request: the body of doc/wire.md#introspection-request, compact");
    const char *method =
        got && json_object_object_get_ex(last, "method", &v) ? json_object_get_string(v) : "";
    is_str(method, "POST", "request: POST");
    const char *path =
        got && json_object_object_get_ex(last, "path", &v) ? json_object_get_string(v) : "";
    is_str(path, "/private/v1/api-keys/introspect",
           "request: the URL derived from INTROSPECTION_URL; the key is not in it");
    json_object *hd = NULL;
    got = got && json_object_object_get_ex(last, "headers", &hd);
    const char *ct =
        got && json_object_object_get_ex(hd, "Content-Type", &v) ? json_object_get_string(v) : "";
    is_str(ct, "application/json", "request: Content-Type application/json");
    const char *cid = got && json_object_object_get_ex(hd, "X-Internal-Client", &v)
                          ? json_object_get_string(v)
                          : "";
    is_str(cid, CLIENT, "request: bootstrap mode sends X-Internal-Client (doc/wire.md#modes)");
    ok(got && json_object_object_get_ex(hd, "X-Internal-Token", NULL),
       "request: ... and X-Internal-Token");
    json_object_put(st);

    /* Nothing cached. */
    long calls = iss_count("apikey");
    resolve(k, "k-full", M8_APIKEY_READER);
    resolve(k, "k-full", M8_APIKEY_READER);
    is_int(iss_count("apikey") - calls, 2, "no cache: every resolution asks the issuer");
    add_key("{\"key\":\"k-full\",\"state\":\"revoked\"}");
    resolve(k, "k-full", M8_APIKEY_READER);
    is_str(outcome(), "401 inactive", "no cache: a key revoked at the issuer is refused at once");

    /* Row 5 details: Retry-After passed through verbatim, or absent. */
    resolve(k, "k-429", M8_APIKEY_READER);
    is_str(ans.retry_after, "30", "row 5: Retry-After passed through");
    is_str(ans.detail, "API key rate limit exceeded", "row 5: the 429 detail");
    add_key("{\"key\":\"k-429b\",\"state\":\"rate_limited\",\"retry_after\":null}");
    resolve(k, "k-429b", M8_APIKEY_READER);
    ok(ans.status == 429 && ans.retry_after[0] == '\0', "row 5: 429 without Retry-After -> none");
    add_key("{\"key\":\"k-429c\",\"state\":\"rate_limited\","
            "\"retry_after\":\"Wed, 21 Oct 2015 07:28:00 GMT\"}");
    resolve(k, "k-429c", M8_APIKEY_READER);
    is_str(ans.retry_after, "Wed, 21 Oct 2015 07:28:00 GMT", "row 5: an HTTP-date copied as is");
    add_key("{\"key\":\"k-quota\",\"quota\":{\"limit\":1,\"period\":\"minute\"}}");
    resolve(k, "k-quota", M8_APIKEY_READER);
    resolve(k, "k-quota", M8_APIKEY_READER);
    ok(ans.status == 429 && ans.retry_after[0] >= '1' && ans.retry_after[0] <= '9',
       "row 5: the key's own quota, 429 with the computed Retry-After (%s)", ans.retry_after);
    fault("{\"target\":\"apikey\",\"mode\":\"status:429\",\"count\":1}");
    resolve(k, "k-reader", M8_APIKEY_READER);
    ok(ans.status == 429 && strcmp(ans.retry_after, "60") == 0,
       "row 5: the per-consumer limit, 429 with Retry-After: 60");

    /* Faults: rows 3, 6, 7, 8, 9. */
    static const struct {
        const char *mode, *outcome;
        int failure;
    } faults[] = {
        {"status:500", "503 issuer_unavailable", 1},
        {"status:502", "503 issuer_unavailable", 1},
        {"status:503", "503 issuer_unavailable", 1},
        {"status:301", "503 unexpected_status", 1},
        {"status:302", "503 unexpected_status", 1},
        {"status:204", "503 unexpected_status", 1},
        {"status:404", "503 unexpected_status", 1},
        {"status:400", "503 unexpected_status", 1},
        {"status:401", "503 consumer_unauthorized", 0},
        {"status:403", "503 consumer_unauthorized", 0},
        {"malformed:json", "503 malformed_response", 0},
        {"malformed:schema", "503 malformed_response", 0},
        {"malformed:version", "503 malformed_response", 0},
        {"malformed:inconsistent", "503 malformed_response", 0},
        {"malformed:method", "503 malformed_response", 0},
        {"down", "503 transport", 1},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(faults); i++) {
        char f[160];
        snprintf(f, sizeof f, "{\"target\":\"apikey\",\"mode\":\"%s\",\"count\":1}",
                 faults[i].mode);
        fault(f);
        /* "down" hangs up after reading the request.  On a kept-alive
         * connection libcurl takes that for a connection closed while idle
         * and sends the request again on a new one (see below), so this row
         * starts on a fresh connection. */
        if (strcmp(faults[i].mode, "down") == 0)
            m8_httpc_thread_cleanup();
        unsigned before = stats(k).failures;
        long n = iss_count("apikey");
        resolve(k, "k-reader", M8_APIKEY_READER);
        is_str(outcome(), faults[i].outcome, "fault %s -> %s", faults[i].mode, faults[i].outcome);
        is_int(stats(k).failures - before, faults[i].failure, "fault %s: breaker %s",
               faults[i].mode, faults[i].failure ? "failure" : "not counted");
        is_int(iss_count("apikey") - n, 1, "fault %s: one request, never retried", faults[i].mode);
    }
    ok(resolve(k, "k-reader", M8_APIKEY_READER) && stats(k).failures == 0,
       "faults cleared: the next success resets the count");
    /* The same on a kept-alive connection: still a transport failure, and
     * the request is not re-sent on a new connection (it may have used
     * quota; doc/wire.md#interpretation-order). */
    fault("{\"target\":\"apikey\",\"mode\":\"down\",\"count\":2}");
    long n0 = iss_count("apikey");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 transport", "fault down on a kept-alive connection -> 503 transport");
    is_int(iss_count("apikey") - n0, 1,
           "down on a kept-alive connection: the issuer saw the request once (never re-sent)");
    fault("{\"target\":\"apikey\",\"mode\":\"ok\"}");
    resolve(k, "k-reader", M8_APIKEY_READER);
    drop(k, s);
}
