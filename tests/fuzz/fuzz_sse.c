/* fuzz_sse.c - libFuzzer target for the SSE parser (lib/stream/sse.c).  The first
 * byte picks how the rest is cut into pushes; the stream is parsed once at
 * once and once in pieces, and both must give the same events (a hash of
 * every callback).  Invariants per callback: the limits hold, a too_big
 * event has no data, strings are NUL-terminated at their length, an id
 * holds no NUL.  Each event also goes through m8_event_decode. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream/events.h"
#include "stream/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct ctx {
    uint64_t h;
    const m8_settings *s;
} ctx;

static void mix(ctx *c, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        c->h = (c->h ^ b[i]) * 0x100000001b3ull;
}

static int on_event(const m8_sse_event *ev, void *arg)
{
    ctx *c = arg;
    if (!ev->event || !ev->data || ev->event[ev->event_len] != '\0' ||
        ev->data[ev->data_len] != '\0' || ev->event_len > M8_MAX_SSE_LINE_BYTES)
        abort();
    if (ev->kind == M8_SSE_COMMENT) {
        if (ev->data_len >= M8_MAX_SSE_LINE_BYTES)
            abort();
    } else {
        if (ev->data_len > M8_MAX_SSE_EVENT_BYTES || (ev->too_big && ev->data_len) ||
            ev->event_len == 0)
            abort();
        if (ev->id && (ev->id_len > M8_MAX_SSE_LINE_BYTES || ev->id[ev->id_len] != '\0' ||
                       memchr(ev->id, '\0', ev->id_len)))
            abort();
    }
    mix(c, &ev->kind, sizeof ev->kind);
    mix(c, &ev->too_big, sizeof ev->too_big);
    mix(c, ev->event, ev->event_len + 1);
    mix(c, ev->data, ev->data_len + 1);
    mix(c, &ev->retry_ms, sizeof ev->retry_ms);
    if (ev->id)
        mix(c, ev->id, ev->id_len + 1);
    m8_event e;
    m8_event_result r = m8_event_decode(c->s, ev, 0, &e);
    if ((unsigned)r >= M8_EVR__COUNT || (unsigned)e.type >= M8_EVT__COUNT ||
        (r != M8_EVR_DELIVERED && (e.payload || e.sse_id || e.user_id)))
        abort();
    m8_event_clear(&e);
    return 0;
}

static uint64_t parse(const char *s, size_t n, unsigned mode)
{
    static m8_settings settings;
    settings.event_signing_key = (char *)"Fuzz-Event-Signing-Key_2026!xyz";
    ctx c = {0xcbf29ce484222325ull, &settings};
    m8_sse p;
    m8_sse_init(&p);
    if (mode == 0) {
        if (m8_sse_push(&p, s, n, on_event, &c) != 0)
            abort();
    } else {
        /* pieces of 1..16 bytes, the sizes cycling from the mode byte */
        size_t i = 0, k = mode;
        while (i < n) {
            size_t piece = 1 + (k % 16);
            k = k * 7 + 3;
            if (piece > n - i)
                piece = n - i;
            if (m8_sse_push(&p, s + i, piece, on_event, &c) != 0)
                abort();
            i += piece;
        }
    }
    if (m8_sse_last_id(&p, NULL) && p.last_id.len > M8_MAX_SSE_LINE_BYTES)
        abort();
    m8_sse_free(&p);
    return c.h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned mode = data[0] | 1u;
    const char *s = (const char *)data + 1;
    if (parse(s, size - 1, 0) != parse(s, size - 1, mode))
        abort(); /* the split changed the events */
    return 0;
}
