/* test_events.c - signed auth events (lib/stream/events.c): the envelope of
 * doc/wire.md#signed-envelope (good signature, wrong key, flipped bytes,
 * unsigned with and without the rollout flag, no key), malformed data, every
 * event type and the payload rules of doc/wire.md#applying-events and
 * doc/wire.md#revocation-table, the limits, the names used for counting and
 * the backoff of doc/wire.md#reconnect-backoff. */
#include "shm/shm.h"
#include "stream/events.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/canon.h"
#include "tap.h"

#define KEY_EX "Example-Event-Signing-Key_2026!xyz"
#define KEY_SDK "Abcdef-1234_XYZ-abcdef-ghijkl-mnopqr-stuvwx"
#define UID "550e8400-e29b-41d4-a716-446655440000"

/* The issuer's frames of the worked examples (Python's default json.dumps:
 * ", " and ": "). */
#define WIRE_A                                                                                     \
    "{\"payload\": {\"event_type\": \"session.revoked\", \"version\": \"v2\", \"user_id\": \"" UID \
    "\", \"jti\": null, \"auth_generation\": 3, \"event_id\": \"" UID                              \
    ":3:publish:user-wide\"}, \"sig\": "                                                           \
    "\"35e54bd7e735594b02d4120a69d66f454a94a1352b4c20e9be5c4460ace9130c\"}"
#define WIRE_B                                                                                     \
    "{\"payload\": {\"event_type\": \"user.deleted\", \"version\": \"v1\", \"user_id\": \"" UID    \
    "\"}, \"sig\": \"50491c60ee726cedbee7eb15ac01df5786588429297f5f9c30ee2ef8034403fb\"}"
#define WIRE_C                                                                                     \
    "{\"payload\": {\"event_type\": \"session.revoked\", \"version\": \"v1\", \"user_id\": "       \
    "\"u-1\", \"jti\": \"jti-0001\", \"auth_generation\": null, \"event_id\": null}, \"sig\": "    \
    "\"0b12bad4936d9af100ea1b3a51e7f5a4ef9efdd81d13a920fb49ca4349684220\"}"
#define WIRE_D                                                                                     \
    "{\"payload\": {\"b\": \"\\u00e9\\u2603\\ud83d\\ude00\\u0001\\u007f/\\\"\\\\\\n\\t\", \"a\": " \
    "[1.0, 1e-07, 0.0001, 1e+16, 1.2345678901234568e+17, 2.5, -0.0, true, false, null, "           \
    "100000000000000000000], \"B\": {\"z\": 1, \"y\": 2}, \"\\u00e9\": 1, \"_\": 0}, \"sig\": "    \
    "\"c80cdf8a008141320af3bf04250f5b7f6180b80dfc82e85dd81a4469119a834a\"}"
#define WIRE_E                                                                                     \
    "{\"payload\": {}, \"sig\": "                                                                  \
    "\"791cb9f2afd2b29aae435dc0153fff509a380e75d2df603fb3738b6f4a748bc3\"}"
#define WIRE_F                                                                                     \
    "{\"payload\": {\"event_type\": \"session.revoked\", \"user_id\": \"u1\", \"jti\": \"j1\"}, "  \
    "\"sig\": \"88d5cc7640c46e2cc13a44c129b9c7f94f466bb11b8d274a187c772d3e957eb4\"}"

static m8_settings *settings(const char *key, bool accept_unsigned)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->event_signing_key = key ? strdup(key) : NULL;
    s->event_signing_accept_unsigned = accept_unsigned;
    s->event_signing_enabled = key != NULL;
    return s;
}

static void settings_free(m8_settings *s)
{
    free(s->event_signing_key);
    free(s);
}

static m8_event_result dec(const m8_settings *s, const char *name, const char *data, const char *id,
                           m8_event *ev)
{
    m8_sse_event sse = {.kind = M8_SSE_EVENT, .retry_ms = -1};
    sse.event = name;
    sse.event_len = strlen(name);
    sse.data = data;
    sse.data_len = strlen(data);
    sse.id = id;
    sse.id_len = id ? strlen(id) : 0;
    return m8_event_decode(s, &sse, 1751000000.5, ev);
}

/* {"payload": <payload>, "sig": "<HMAC of its canonical form>"} (caller frees). */
static char *sign(const char *key, const char *payload)
{
    json_object *v;
    m8_buf c, out;
    m8_buf_init(&c, 1u << 22);
    m8_buf_init(&out, 1u << 22);
    if (m8_canon_parse(payload, strlen(payload), &v, NULL) != 0 || m8_canon_write(&c, v) != 0)
        return NULL;
    json_object_put(v);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char hex[65];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)c.data, c.len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    m8_buf_printf(&out, "{\"payload\": %s, \"sig\": \"%s\"}", payload, hex);
    m8_buf_free(&c);
    return m8_buf_steal(&out);
}

static char *canon_text(json_object *v)
{
    m8_buf b;
    m8_buf_init(&b, 1u << 20);
    m8_buf_puts(&b, "");
    if (m8_canon_write(&b, v) != 0)
        m8_buf_puts(&b, "ERR");
    return m8_buf_steal(&b);
}

/* ---------------------------------------------------------------- worked-example frames */

static void test_vectors(void)
{
    m8_settings *s = settings(KEY_EX, false);
    m8_event ev;
    char *c;

    is_int(dec(s, "session-revoked", WIRE_A, "1751000000123456789-7", &ev), M8_EVR_DELIVERED,
           "A: v2 user-wide revocation verifies");
    is_int(ev.type, M8_EVT_SESSION_REVOKED, "A: type session-revoked");
    ok(!ev.invalid && ev.version == 2, "A: valid, version 2");
    is_str(ev.user_id, UID, "A: user_id");
    is_str(ev.jti, NULL, "A: jti null = every session of the user");
    is_int(ev.auth_generation, 3, "A: auth_generation");
    is_str(ev.event_id, UID ":3:publish:user-wide", "A: event_id (durable dedup key)");
    is_str(ev.sse_id, "1751000000123456789-7", "A: the SSE id to store as Last-Event-ID");
    is_int(ev.sse_id_len, 21, "A: its length");
    ok(ev.revoked_since == 1751000000.5, "A: revoked_since is the receipt time given");
    c = canon_text(ev.payload);
    like(c, "{\"auth_generation\":3,\"event_id\"", "A: the payload is the inner object");
    free(c);
    m8_event_clear(&ev);

    is_int(dec(s, "user-deleted", WIRE_B, NULL, &ev), M8_EVR_DELIVERED,
           "B: user deletion verifies");
    is_int(ev.type, M8_EVT_USER_DELETED, "B: type user-deleted");
    is_str(ev.user_id, UID, "B: user_id");
    is_str(ev.sse_id, NULL, "B: no SSE id, none to store");
    m8_event_clear(&ev);

    is_int(dec(s, "session-revoked", WIRE_C, "e-1", &ev), M8_EVR_DELIVERED, "C: v1 single session");
    ok(!ev.invalid && ev.version == 1 && ev.auth_generation == 0 && !ev.event_id,
       "C: version 1, generation null (0), event_id null");
    is_str(ev.jti, "jti-0001", "C: jti");
    is_str(ev.user_id, "u-1", "C: user_id");
    m8_event_clear(&ev);

    is_int(dec(s, "message", WIRE_D, NULL, &ev), M8_EVR_DELIVERED,
           "D: escapes, floats and a huge integer verify (canonical byte for byte)");
    is_int(ev.type, M8_EVT_OTHER, "D: a message event is type other");
    m8_event_clear(&ev);

    is_int(dec(s, "session-revoked", WIRE_E, NULL, &ev), M8_EVR_DELIVERED, "E: {} verifies");
    ok(ev.invalid && !ev.user_id, "E: as session-revoked it fails validation: flush everything");
    m8_event_clear(&ev);
    settings_free(s);

    s = settings(KEY_SDK, false);
    is_int(dec(s, "session-revoked", WIRE_F, NULL, &ev), M8_EVR_DELIVERED,
           "F: SDK key cross-check verifies");
    ok(!ev.invalid && ev.version == 1, "F: no version member means v1");
    is_str(ev.jti, "j1", "F: jti");
    m8_event_clear(&ev);
    is_int(dec(s, "session-revoked", WIRE_A, NULL, &ev), M8_EVR_DROPPED_SIG_FAIL,
           "A under another key: wrong key refused");
    is_str(ev.why, "signature mismatch", "... why says so");
    ok(!ev.payload && !ev.user_id && !ev.sse_id, "... and nothing of it is kept");
    m8_event_clear(&ev);
    settings_free(s);
}

static void test_tampering(void)
{
    m8_settings *s = settings(KEY_EX, false);
    m8_event ev;
    char buf[1024];
    const char *sig = strstr(WIRE_C, "\"sig\": \"") + 8;
    size_t off = (size_t)(sig - WIRE_C);
    int refused = 0;
    for (size_t i = 0; i < 64; i++) {
        snprintf(buf, sizeof buf, "%s", WIRE_C);
        buf[off + i] = buf[off + i] == '0' ? '1' : '0';
        if (dec(s, "session-revoked", buf, NULL, &ev) == M8_EVR_DROPPED_SIG_FAIL)
            refused++;
        m8_event_clear(&ev);
    }
    is_int(refused, 64, "a changed digit at each of the 64 signature positions is refused");

    snprintf(buf, sizeof buf, "%s", WIRE_C);
    *strstr(buf, "u-1") = 'v';
    is_int(dec(s, "session-revoked", buf, NULL, &ev), M8_EVR_DROPPED_SIG_FAIL,
           "a changed payload byte (user id) is refused");
    m8_event_clear(&ev);
    snprintf(buf, sizeof buf, "%s", WIRE_C);
    memcpy(strstr(buf, "jti-0001"), "jti-0002", 8);
    is_int(dec(s, "session-revoked", buf, NULL, &ev), M8_EVR_DROPPED_SIG_FAIL,
           "a changed payload byte (jti) is refused");
    m8_event_clear(&ev);

    const char *reformatted =
        "{ \"sig\":\"0b12bad4936d9af100ea1b3a51e7f5a4ef9efdd81d13a920fb49ca4349684220\",\n"
        "\"payload\":{\"jti\":\"jti-0001\",\"user_id\":\"u\\u002d1\",\"version\":\"v1\","
        "\"event_type\":\"session.revoked\",\"event_id\":null,\"auth_generation\":null},"
        "\"extra\": 1}";
    is_int(dec(s, "session-revoked", reformatted, NULL, &ev), M8_EVR_DELIVERED,
           "the parsed payload is hashed, not the wire bytes: reordered, escaped, extra member");
    m8_event_clear(&ev);

    snprintf(buf, sizeof buf, "%s", WIRE_C);
    for (char *p = strstr(buf, "\"sig\": \"") + 8; *p != '"'; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    is_int(dec(s, "session-revoked", buf, NULL, &ev), M8_EVR_DROPPED_SIG_FAIL,
           "an upper-case hex signature is refused (exact string compare)");
    m8_event_clear(&ev);

    static const struct {
        const char *sig;
        m8_event_result want;
        const char *what;
    } sigs[] = {
        {"\"0b12bad4936d9af100ea1b3a51e7f5a4ef9efdd81d13a920fb49ca434968422\"",
         M8_EVR_DROPPED_SIG_FAIL, "63 hex digits"},
        {"\"0b12bad4936d9af100ea1b3a51e7f5a4ef9efdd81d13a920fb49ca43496842200\"",
         M8_EVR_DROPPED_SIG_FAIL, "65 hex digits"},
        {"\"\"", M8_EVR_DROPPED_SIG_FAIL, "an empty signature"},
        {"null", M8_EVR_DROPPED_SIG_FAIL, "a null signature"},
        {"12", M8_EVR_DROPPED_SIG_FAIL, "a number"},
        {"[\"0b12bad4936d9af100ea1b3a51e7f5a4ef9efdd81d13a920fb49ca4349684220\"]",
         M8_EVR_DROPPED_SIG_FAIL, "an array"},
        {"\"0b12bad4936d9af100ea1b3a51e7f5a4ef9efdd81d13a920fb49ca434968422\\u00e9\"",
         M8_EVR_DROPPED_MALFORMED, "non-ASCII (Python's compare raises: malformed)"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(sigs); i++) {
        snprintf(buf, sizeof buf,
                 "{\"payload\": {\"event_type\": \"session.revoked\", \"version\": \"v1\", "
                 "\"user_id\": \"u-1\", \"jti\": \"jti-0001\", \"auth_generation\": null, "
                 "\"event_id\": null}, \"sig\": %s}",
                 sigs[i].sig);
        is_int(dec(s, "session-revoked", buf, NULL, &ev), sigs[i].want, "signature as %s",
               sigs[i].what);
        m8_event_clear(&ev);
    }
    settings_free(s);
}

/* ---------------------------------------------------------------- unsigned events */

static void test_unsigned(void)
{
    const char *bare = "{\"event_type\": \"session.revoked\", \"version\": \"v1\", \"user_id\": "
                       "\"u-1\", \"jti\": \"jti-0001\"}";
    m8_event ev;
    m8_settings *s = settings(KEY_EX, false);
    is_int(dec(s, "session-revoked", bare, NULL, &ev), M8_EVR_DROPPED_SIG_FAIL,
           "signed envelope: an unsigned event is refused when a key is set");
    is_str(ev.why, "unsigned event refused", "... why says so");
    m8_event_clear(&ev);
    is_int(dec(s, "session-revoked", "{\"sig\": \"00\", \"user_id\": \"u\"}", NULL, &ev),
           M8_EVR_DROPPED_SIG_FAIL, "sig without payload is not an envelope: unsigned, refused");
    m8_event_clear(&ev);
    is_int(dec(s, "session-revoked", "[1]", NULL, &ev), M8_EVR_DROPPED_SIG_FAIL,
           "a non-object is unsigned: refused");
    m8_event_clear(&ev);
    settings_free(s);

    s = settings(KEY_EX, true);
    is_int(dec(s, "session-revoked", bare, "7", &ev), M8_EVR_DELIVERED,
           "signed envelope: EVENT_SIGNING_ACCEPT_UNSIGNED accepts a bare payload");
    ok(ev.why && strstr(ev.why, "EVENT_SIGNING_ACCEPT_UNSIGNED"), "... and says so for the log");
    ok(!ev.invalid && strcmp(ev.jti, "jti-0001") == 0 && strcmp(ev.sse_id, "7") == 0,
       "... its fields are used");
    m8_event_clear(&ev);
    char forged[1024];
    snprintf(forged, sizeof forged, "%s", WIRE_C);
    *strstr(forged, "u-1") = 'v';
    is_int(dec(s, "session-revoked", forged, NULL, &ev), M8_EVR_DROPPED_SIG_FAIL,
           "signed envelope: with the rollout flag a forged envelope is still refused");
    m8_event_clear(&ev);
    is_int(dec(s, "session-revoked", WIRE_C, NULL, &ev), M8_EVR_DELIVERED,
           "with the rollout flag a good envelope verifies");
    is_str(ev.why, NULL, "... with nothing to log");
    m8_event_clear(&ev);
    settings_free(s);

    for (int k = 0; k < 2; k++) {
        s = settings(k ? "" : NULL, false);
        const char *what = k ? "an empty key" : "no key";
        is_int(dec(s, "session-revoked", bare, NULL, &ev), M8_EVR_DELIVERED,
               "%s: a bare payload is delivered", what);
        ok(!ev.invalid && strcmp(ev.user_id, "u-1") == 0, "%s: its fields are used", what);
        m8_event_clear(&ev);
        is_int(dec(s, "session-revoked", WIRE_C, NULL, &ev), M8_EVR_DELIVERED,
               "%s: an envelope is delivered as it is (doc/wire.md#signed-envelope)", what);
        ok(ev.invalid, "%s: ... so as session-revoked it fails validation (flush)", what);
        m8_event_clear(&ev);
        is_int(dec(s, "session-revoked", "{", NULL, &ev), M8_EVR_DROPPED_MALFORMED,
               "%s: malformed is still malformed", what);
        m8_event_clear(&ev);
        settings_free(s);
    }
}

static void test_malformed(void)
{
    static const struct {
        const char *data, *what;
    } bad[] = {
        {"not json", "text"},
        {"{", "a truncated object"},
        {"", "empty data"},
        {"{\"a\":1} x", "trailing garbage"},
        {"\xff", "invalid UTF-8"},
        {"{'a':1}", "single quotes"},
        {"[1,]", "a trailing comma"},
        {"\"a\x01\"", "a raw control character in a string"},
        {"nul", "a cut literal"},
        {"{\"a\":1,\"a\":100000000000000000000}", "a huge integer beside a repeated name"},
    };
    m8_settings *keyed = settings(KEY_EX, true), *open_ = settings(NULL, false);
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        m8_event ev;
        is_int(dec(keyed, "session-revoked", bad[i].data, "5", &ev), M8_EVR_DROPPED_MALFORMED,
               "malformed data (%s) dropped with a key", bad[i].what);
        ok(!ev.sse_id && !ev.payload && ev.why, "... nothing kept, a reason given");
        m8_event_clear(&ev);
        is_int(dec(open_, "user-deleted", bad[i].data, NULL, &ev), M8_EVR_DROPPED_MALFORMED,
               "malformed data (%s) dropped without a key", bad[i].what);
        m8_event_clear(&ev);
    }
    settings_free(keyed);
    settings_free(open_);
}

/* ---------------------------------------------------------------- types */

static void test_types(void)
{
    m8_settings *s = settings(KEY_EX, false);
    m8_event ev;
    char *b = sign(KEY_EX, "{\"event_type\": \"user.deleted\", \"version\": \"v1\", "
                           "\"user_id\": \"u-9\"}");
    static const struct {
        const char *name;
        m8_event_type type;
    } names[] = {
        {"user-deleted", M8_EVT_USER_DELETED},
        {"user.deleted", M8_EVT_USER_DELETED},
        {" user-deleted\t", M8_EVT_USER_DELETED},
        {"session-revoked", M8_EVT_SESSION_REVOKED},
        {"session.revoked", M8_EVT_SESSION_REVOKED},
        {"session_revoked", M8_EVT_OTHER},
        {"User-Deleted", M8_EVT_OTHER},
        {"message", M8_EVT_OTHER},
        {"", M8_EVT_OTHER},
        {"user-deleted-x", M8_EVT_OTHER},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(names); i++) {
        is_int(dec(s, names[i].name, b, NULL, &ev), M8_EVR_DELIVERED,
               "name [%s]: verified and delivered", names[i].name);
        is_int(ev.type, names[i].type, "name [%s]: type %s", names[i].name,
               m8_event_type_name(names[i].type));
        m8_event_clear(&ev);
    }
    is_int(dec(s, "foo", "{\"user_id\": \"u\"}", NULL, &ev), M8_EVR_DROPPED_SIG_FAIL,
           "an unknown type is verified too: unsigned refused");
    is_int(ev.type, M8_EVT_OTHER, "... and counted as other");
    m8_event_clear(&ev);
    free(b);

    is_int(dec(s, "gap", "{}", "3", &ev), M8_EVR_DELIVERED, "gap delivered");
    ok(ev.type == M8_EVT_GAP && !ev.payload && !ev.sse_id, "gap: no payload, no id to store");
    m8_event_clear(&ev);
    is_int(dec(s, " gap ", "not json, never read", NULL, &ev), M8_EVR_DELIVERED,
           "gap data is never parsed or verified");
    m8_event_clear(&ev);

    m8_sse_event hb = {.kind = M8_SSE_COMMENT, .event = "", .data = "ping", .data_len = 4};
    is_int(m8_event_decode(s, &hb, 0, &ev), M8_EVR_DELIVERED, "a comment is a heartbeat");
    is_int(ev.type, M8_EVT_HEARTBEAT, "... of type heartbeat");
    m8_event_clear(&ev);

    m8_sse_event big = {.kind = M8_SSE_EVENT,
                        .too_big = true,
                        .event = "session-revoked",
                        .event_len = 15,
                        .data = "",
                        .id = "9",
                        .id_len = 1};
    is_int(m8_event_decode(s, &big, 0, &ev), M8_EVR_DROPPED_MALFORMED,
           "an event over the SSE limits is malformed");
    ok(ev.type == M8_EVT_SESSION_REVOKED && !ev.sse_id, "... counted under its type, no id kept");
    m8_event_clear(&ev);

    /* user-deleted without a usable user_id: nothing to evict, no flush */
    static const char *const ud[] = {"{\"event_type\": \"user.deleted\"}", "{\"user_id\": 5}",
                                     "[\"u\"]", "null", "{\"user_id\": \"a\\u0000b\"}"};
    for (size_t i = 0; i < M8_ARRAY_LEN(ud); i++) {
        char *e = sign(KEY_EX, ud[i]);
        is_int(dec(s, "user-deleted", e, NULL, &ev), M8_EVR_DELIVERED, "user-deleted %s: delivered",
               ud[i]);
        ok(!ev.user_id && !ev.invalid && ev.why, "user-deleted %s: no user_id, ignored", ud[i]);
        m8_event_clear(&ev);
        free(e);
    }
    settings_free(s);
}

static void test_session_rules(void)
{
    static const struct {
        const char *payload;
        bool valid;
        const char *what;
    } t[] = {
        {"{\"user_id\": \"u\"}", true, "user_id alone (defaults for the rest)"},
        {"{\"user_id\": \"\"}", true, "an empty user_id is a string"},
        {"{\"user_id\": \"u\", \"jti\": null, \"auth_generation\": null, \"event_id\": null}", true,
         "explicit nulls"},
        {"{\"user_id\": \"u\", \"auth_generation\": 1, \"version\": \"v2\", \"x\": [1]}", true,
         "generation 1, extra members ignored"},
        {"{\"user_id\": \"u\", \"auth_generation\": 9223372036854775806}", true,
         "a large int64 generation"},
        {"{}", false, "user_id missing"},
        {"{\"user_id\": null}", false, "user_id null"},
        {"{\"user_id\": 42}", false, "user_id a number"},
        {"{\"user_id\": \"a\\u0000b\"}", false, "user_id with NUL"},
        {"{\"user_id\": \"u\", \"jti\": 7}", false, "jti a number"},
        {"{\"user_id\": \"u\", \"jti\": [\"j\"]}", false, "jti an array"},
        {"{\"user_id\": \"u\", \"auth_generation\": 0}", false, "generation 0"},
        {"{\"user_id\": \"u\", \"auth_generation\": -1}", false, "generation -1"},
        {"{\"user_id\": \"u\", \"auth_generation\": \"3\"}", false, "generation a string"},
        {"{\"user_id\": \"u\", \"auth_generation\": 3.0}", false, "generation a float"},
        {"{\"user_id\": \"u\", \"auth_generation\": true}", false, "generation a boolean"},
        {"{\"user_id\": \"u\", \"auth_generation\": 100000000000000000000}", false,
         "generation past int64"},
        {"{\"user_id\": \"u\", \"event_id\": \"\"}", false, "an empty event_id"},
        {"{\"user_id\": \"u\", \"event_id\": 5}", false, "event_id a number"},
        {"{\"user_id\": \"u\", \"version\": 2}", false, "version not a string"},
        {"{\"user_id\": \"u\", \"event_type\": null}", true, "event_type null takes the default"},
        {"{\"user_id\": \"u\", \"event_type\": 1}", false, "event_type not a string"},
        {"[]", false, "an array payload"},
        {"\"u\"", false, "a string payload"},
        {"null", false, "a null payload"},
    };
    m8_settings *s = settings(KEY_EX, false);
    for (size_t i = 0; i < M8_ARRAY_LEN(t); i++) {
        char *e = sign(KEY_EX, t[i].payload);
        m8_event ev;
        m8_event_result r = dec(s, "session-revoked", e, "1-1", &ev);
        ok(r == M8_EVR_DELIVERED && ev.invalid == !t[i].valid &&
               (t[i].valid ? ev.user_id != NULL : (!ev.user_id && !ev.jti && !ev.event_id)),
           "revocation table event: %s -> %s", t[i].what, t[i].valid ? "valid" : "invalid (flush)");
        ok(ev.sse_id && strcmp(ev.sse_id, "1-1") == 0, "... delivered, so its id is stored");
        m8_event_clear(&ev);
        free(e);
    }
    char *e = sign(KEY_EX, "{\"user_id\": \"u\", \"jti\": \"j\", \"auth_generation\": 4, "
                           "\"event_id\": \"u:4:publish:j\", \"version\": \"v2\"}");
    m8_event ev;
    dec(s, "session-revoked", e, NULL, &ev);
    ok(ev.version == 2 && ev.auth_generation == 4 && strcmp(ev.jti, "j") == 0 &&
           strcmp(ev.event_id, "u:4:publish:j") == 0,
       "v2 single session: every field");
    m8_event_clear(&ev);
    free(e);
    settings_free(s);
}

/* ---------------------------------------------------------------- limits */

static void test_canon_limit(void)
{
    for (size_t extra = 0; extra <= 1; extra++) {
        /* a string payload: canonical = quotes + its bytes */
        size_t n = M8_MAX_EVENT_CANON_BYTES - 2 + extra;
        char *payload = malloc(n + 3);
        payload[0] = '"';
        memset(payload + 1, 'a', n);
        memcpy(payload + 1 + n, "\"", 2);
        char *env = sign(KEY_EX, payload);
        json_object *out = NULL;
        const char *why = NULL;
        m8_event_result r =
            m8_event_verify(KEY_EX, strlen(KEY_EX), false, env, strlen(env), &out, &why);
        if (!extra)
            ok(r == M8_EVR_DELIVERED && json_object_get_string_len(out) == (int)n,
               "a payload whose canonical form is exactly %u bytes verifies",
               M8_MAX_EVENT_CANON_BYTES);
        else
            ok(r == M8_EVR_DROPPED_MALFORMED && !out && strstr(why, "canonical"),
               "one byte more is malformed (no canonical form within the limit)");
        json_object_put(out);
        free(env);
        free(payload);
    }
    json_object *out = (json_object *)1;
    is_int(m8_event_verify(KEY_EX, 3, false, "{}", 2, &out, NULL), M8_EVR_DROPPED_SIG_FAIL,
           "verify works without a why");
    ok(out == NULL, "... and leaves no payload");
}

/* ---------------------------------------------------------------- stream */

typedef struct tally {
    const m8_settings *s;
    unsigned n[M8_EVT__COUNT][M8_EVR__COUNT];
    char last_id[64];
    int gaps;
} tally;

/* The consumer loop of doc/wire.md#applying-events in miniature. */
static int consume(const m8_sse_event *sse, void *ctx)
{
    tally *t = ctx;
    m8_event ev;
    m8_event_result r = m8_event_decode(t->s, sse, 0, &ev);
    t->n[ev.type][r]++;
    if (r == M8_EVR_DELIVERED && ev.type == M8_EVT_GAP) {
        t->last_id[0] = '\0';
        t->gaps++;
    } else if (r == M8_EVR_DELIVERED && ev.sse_id) {
        snprintf(t->last_id, sizeof t->last_id, "%s", ev.sse_id);
    }
    m8_event_clear(&ev);
    return 0;
}

static void test_stream(void)
{
    m8_settings *s = settings(KEY_EX, false);
    m8_buf b;
    m8_buf_init(&b, 1u << 16);
    m8_buf_printf(&b, ": ping\n\nid: e-1\nevent: session-revoked\ndata: %s\n\n", WIRE_A);
    m8_buf_printf(&b, "id: e-2\nevent: user-deleted\ndata: %s\n\n", WIRE_B);
    m8_buf_printf(&b, "id: e-3\nevent: session-revoked\ndata: {\"user_id\": \"x\"}\n\n");
    m8_buf_printf(&b, "id: e-4\nevent: session-revoked\ndata: {nope\n\n");
    m8_buf_printf(&b, "event: gap\ndata: {}\n\n");
    m8_buf_printf(&b, "id: e-5\nevent: session-revoked\ndata: %s\n\n", WIRE_C);
    m8_buf_printf(&b, "id: e-6\nevent: session-revoked\ndata: %s\n\n", WIRE_E);
    tally t = {.s = s};
    m8_sse p;
    m8_sse_init(&p);
    for (size_t i = 0; i < b.len; i += 13)
        m8_sse_push(&p, b.data + i, b.len - i < 13 ? b.len - i : 13, consume, &t);
    m8_sse_free(&p);
    is_int(t.n[M8_EVT_HEARTBEAT][M8_EVR_DELIVERED], 1, "stream: one heartbeat");
    is_int(t.n[M8_EVT_SESSION_REVOKED][M8_EVR_DELIVERED], 3, "stream: three revocations delivered");
    is_int(t.n[M8_EVT_SESSION_REVOKED][M8_EVR_DROPPED_SIG_FAIL], 1, "stream: one unsigned dropped");
    is_int(t.n[M8_EVT_SESSION_REVOKED][M8_EVR_DROPPED_MALFORMED], 1,
           "stream: one malformed dropped");
    is_int(t.n[M8_EVT_USER_DELETED][M8_EVR_DELIVERED], 1, "stream: one user deletion");
    is_int(t.gaps, 1, "stream: one gap");
    is_str(t.last_id, "e-6", "stream: Last-Event-ID is the last verified id");
    m8_buf_reset(&b);
    m8_buf_printf(&b, "id: e-7\nevent: session-revoked\ndata: {\"forged\": 1}\n\n");
    m8_sse_init(&p);
    m8_sse_push(&p, b.data, b.len, consume, &t);
    m8_sse_free(&p);
    is_str(t.last_id, "e-6", "stream: a dropped event does not move Last-Event-ID");
    m8_buf_free(&b);
    settings_free(s);
}

/* ---------------------------------------------------------------- names, backoff */

static void test_names(void)
{
    static const char *const types[] = {"session-revoked", "user-deleted", "gap", "heartbeat",
                                        "other"};
    for (unsigned i = 0; i < M8_ARRAY_LEN(types); i++)
        is_str(m8_event_type_name(i), types[i], "type %u is named %s", i, types[i]);
    is_str(m8_event_type_name(M8_EVT__COUNT), NULL, "no name past the last type");
    ok(M8_EVT__COUNT <= M8_SHM_EVENT_TYPES, "every type has a shm counter row");
    static const char *const results[] = {"delivered", "dropped_malformed", "dropped_sig_fail"};
    for (unsigned i = 0; i < M8_ARRAY_LEN(results); i++)
        is_str(m8_event_result_name(i), results[i],
               "result %u is %s (doc/metrics.md#event-stream-metrics)", i, results[i]);
    is_str(m8_event_result_name(M8_EVR__COUNT), NULL, "no name past the last result");
}

static void test_backoff(void)
{
    static const struct {
        unsigned n;
        uint32_t r;
        double want;
    } t[] = {
        {0, 1000, 1.0},  {0, 0, 0.75},          {0, 2000, 1.25},    {0, 1500, 1.125},
        {1, 1000, 2.0},  {2, 1000, 4.0},        {3, 1000, 8.0},     {4, 1000, 16.0},
        {5, 1000, 32.0}, {6, 1000, 60.0},       {7, 1000, 60.0},    {6, 0, 45.0},
        {6, 2000, 75.0}, {5, 0, 24.0},          {1000, 1000, 60.0}, {~0u, 2000, 75.0},
        {0, 2001, 1.25}, {0, UINT32_MAX, 1.25}, {1, 1, 1.5005},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(t); i++) {
        double d = m8_event_backoff(t[i].n, t[i].r);
        ok(d > t[i].want - 1e-9 && d < t[i].want + 1e-9, "backoff(n=%u, r=%u) = %g (got %g)",
           t[i].n, (unsigned)t[i].r, t[i].want, d);
    }
    double prev = 0;
    int mono = 1;
    for (unsigned n = 0; n < 12; n++) {
        double d = m8_event_backoff(n, 1000);
        mono &= d >= prev && d <= 60.0;
        prev = d;
    }
    ok(mono, "without jitter: 1, 2, 4, 8, 16, 32, 60, 60 ... never above 60");
    double lo = 1e9, hi = 0;
    for (uint32_t r = 0; r < M8_EVENT_JITTER_STEPS; r++) {
        double d = m8_event_backoff(3, r);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    ok(lo == 6.0 && hi == 10.0, "jitter spans +-25%% over the 2001 steps (8 s: 6 to 10)");
    ok(m8_event_backoff(0, randombytes_uniform(M8_EVENT_JITTER_STEPS)) >= 0.75,
       "works with randombytes_uniform(M8_EVENT_JITTER_STEPS)");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    test_vectors();
    test_tampering();
    test_unsigned();
    test_malformed();
    test_types();
    test_session_rules();
    test_canon_limit();
    test_stream();
    test_names();
    test_backoff();
    return done_testing();
}
