/* fuzz_events.c - libFuzzer target for event data (lib/stream/events.c, lib/stream/canon.c):
 * any bytes are verified with a key (with and without the rollout flag)
 * and without one, and decoded under each event type.  When the bytes are
 * JSON, their canonical form must be pure ASCII and a fixed point
 * (canonical(parse(canonical(x))) == canonical(x)), and an envelope signed
 * over it must verify and give back the same canonical payload. */
#include <json-c/json.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream/canon.h"
#include "stream/events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key[] = "Fuzz-Event-Signing-Key_2026!xyz";

static void check_result(m8_event_result r, json_object *payload)
{
    if ((unsigned)r >= M8_EVR__COUNT || (r != M8_EVR_DELIVERED && payload))
        abort();
    json_object_put(payload);
}

static int canonical(const char *s, size_t n, m8_buf *out)
{
    json_object *v;
    if (m8_canon_parse(s, n, &v, NULL) != 0)
        return -1;
    int rc = m8_canon_write(out, v);
    json_object_put(v);
    return rc;
}

static void roundtrip(const char *s, size_t n)
{
    m8_buf c1, c2, env;
    m8_buf_init(&c1, M8_MAX_EVENT_CANON_BYTES);
    m8_buf_init(&c2, M8_MAX_EVENT_CANON_BYTES);
    m8_buf_init(&env, 4 * 65536 + 256);
    if (canonical(s, n, &c1) != 0)
        goto out;
    for (size_t i = 0; i < c1.len; i++) {
        if ((unsigned char)c1.data[i] < 0x20 || (unsigned char)c1.data[i] > 0x7E)
            abort(); /* canonical JSON is printable ASCII */
    }
    if (canonical(c1.data, c1.len, &c2) != 0 || c2.len != c1.len ||
        memcmp(c1.data, c2.data, c1.len) != 0)
        abort(); /* not a fixed point */

    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char hex[65];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, sizeof key - 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)c1.data, c1.len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    m8_buf_puts(&env, "{\"payload\": ");
    m8_buf_append(&env, s, n);
    m8_buf_printf(&env, ", \"sig\": \"%s\"}", hex);
    json_object *p = NULL;
    m8_event_result r = m8_event_verify(key, sizeof key - 1, false, env.data, env.len, &p, NULL);
    if (r == M8_EVR_DROPPED_SIG_FAIL)
        abort(); /* our own signature over our own canonical form */
    if (r == M8_EVR_DELIVERED) {
        m8_buf_reset(&c2);
        if (m8_canon_write(&c2, p) != 0 || c2.len != c1.len || memcmp(c1.data, c2.data, c1.len))
            abort();
    }
    json_object_put(p);
out:
    m8_buf_free(&c1);
    m8_buf_free(&c2);
    m8_buf_free(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    json_object *p = NULL;
    for (int mode = 0; mode < 3; mode++) {
        m8_event_result r = m8_event_verify(mode == 2 ? NULL : key, mode == 2 ? 0 : sizeof key - 1,
                                            mode == 1, s, size, &p, NULL);
        check_result(r, p);
        p = NULL;
    }
    static const char *const names[] = {"session-revoked", "user-deleted", "gap", "x"};
    static m8_settings st;
    st.event_signing_key = NULL; /* no key: every JSON value reaches the typed decoding */
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        m8_sse_event ev = {.kind = M8_SSE_EVENT,
                           .event = names[i],
                           .event_len = strlen(names[i]),
                           .data = s,
                           .data_len = size,
                           .id = "1-1",
                           .id_len = 3};
        m8_event e;
        m8_event_result r = m8_event_decode(&st, &ev, 1.0, &e);
        if ((unsigned)r >= M8_EVR__COUNT)
            abort();
        if (e.type == M8_EVT_SESSION_REVOKED && r == M8_EVR_DELIVERED &&
            (e.invalid ? (e.user_id || e.jti || e.event_id)
                       : (!e.user_id || e.auth_generation < 0)))
            abort();
        m8_event_clear(&e);
    }
    if (size <= 65536)
        roundtrip(s, size);
    return 0;
}
