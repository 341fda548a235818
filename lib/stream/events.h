/* events.h - one auth event from the issuer's stream (doc/wire.md#event-stream,
 * doc/wire.md#signed-envelope): the signed envelope verified over the canonical
 * JSON (canon.h) with HMAC-SHA256 (libsodium) and a constant-time compare,
 * then the payload turned into a typed event; plus the reconnect backoff.
 * Pure: no I/O, no clock (the caller passes now), no logging (the caller
 * logs m8_event.why).  Fuzzed by tests/fuzz/fuzz_events.c.
 *
 * What the consumer does with a decoded event (doc/wire.md#applying-events,
 * doc/wire.md#last-event-id, doc/wire.md#revocation-table):
 *   result != DELIVERED: count it (type, result), log why, change nothing,
 *     not even Last-Event-ID.
 *   GAP: forget Last-Event-ID, flush every cache (watermarks survive).
 *   SESSION_REVOKED: invalid -> flush every cache; else
 *     auth_generation 0 (v1) -> evict every entry of user_id; else the v2
 *     watermark rules with event_id, then jti NULL -> every session of
 *     user_id issued before the revocation (revoked_since), jti set -> that
 *     jti.
 *   USER_DELETED: user_id set -> evict every entry of that user.
 *   HEARTBEAT, OTHER: nothing.
 *   DELIVERED with sse_id set: store it as Last-Event-ID (before applying). */
#ifndef M8_EVENTS_H
#define M8_EVENTS_H

#include "config/settings.h"
#include "core/common.h"
#include "stream/sse.h"

struct json_object;

/* Upper bound of a canonical payload (canonical text can be a few times
 * longer than the wire text: 1e15 -> 1000000000000000.0). */
#ifndef M8_MAX_EVENT_CANON_BYTES
#define M8_MAX_EVENT_CANON_BYTES (8u * M8_MAX_SSE_EVENT_BYTES)
#endif

/* Event types: the index for counting in m8_shm.events[type][result]. */
typedef enum m8_event_type {
    M8_EVT_SESSION_REVOKED = 0, /* "session-revoked" (v1 and v2) */
    M8_EVT_USER_DELETED,        /* "user-deleted" */
    M8_EVT_GAP,                 /* "gap": unresumable, data never read */
    M8_EVT_HEARTBEAT,           /* a comment line (": ping") */
    M8_EVT_OTHER,               /* any other name, "message" included */
    M8_EVT__COUNT
} m8_event_type;

/* The metric label of type i (the SSE event name, "heartbeat", "other");
 * NULL for i >= M8_EVT__COUNT. */
M8_INTERNAL const char *m8_event_type_name(unsigned i);

/* Results, in the order of the m8_shm.events counters
 * (doc/metrics.md#event-stream-metrics). */
typedef enum m8_event_result {
    M8_EVR_DELIVERED = 0,
    M8_EVR_DROPPED_MALFORMED,
    M8_EVR_DROPPED_SIG_FAIL,
    M8_EVR__COUNT
} m8_event_result;

/* "delivered", "dropped_malformed", "dropped_sig_fail"; NULL past the end. */
M8_INTERNAL const char *m8_event_result_name(unsigned i);

/* A decoded event.  Strings are owned (m8_event_clear frees them). */
typedef struct m8_event {
    m8_event_type type;
    const char *why;           /* static reason of a drop or of invalid; no secret, no id */
    bool invalid;              /* SESSION_REVOKED whose verified payload fails its check */
    int version;               /* SESSION_REVOKED: 2 for "v2", else 1 */
    char *user_id;             /* SESSION_REVOKED (required), USER_DELETED (NULL if not a string) */
    char *jti;                 /* SESSION_REVOKED: NULL = every session of the user */
    long long auth_generation; /* SESSION_REVOKED: >= 1, 0 = null (a v1 event) */
    char *event_id;            /* SESSION_REVOKED: the durable dedup key, NULL = null */
    double revoked_since;      /* SESSION_REVOKED, USER_DELETED: the now given (receipt time) */
    char *sse_id;              /* id field of the SSE event, NULL when none */
    size_t sse_id_len;
    struct json_object *payload; /* the verified payload (owned; NULL for gap,
                                    heartbeat, a JSON null or a drop) */
} m8_event;

M8_INTERNAL void m8_event_clear(m8_event *ev);

/* The signed envelope (doc/wire.md#signed-envelope) of one data string:
 * parse (m8_canon_parse; failure -> MALFORMED); no key (NULL or empty) -> the parsed value as it
 * is; an object with both "sig" and "payload" -> HMAC-SHA256(key, canonical payload) as 64
 * lowercase hex compared in constant time with "sig" (equal -> its payload; different or not a
 * string -> SIG_FAIL; non-ASCII
 * -> MALFORMED); anything else -> the bare value when accept_unsigned,
 * SIG_FAIL otherwise.  *payload (caller puts) is set only when DELIVERED. */
M8_INTERNAL m8_event_result m8_event_verify(const char *key, size_t key_len, bool accept_unsigned,
                                            const char *data, size_t len,
                                            struct json_object **payload, const char **why);

/* Decodes one callback of the SSE parser with the key and the rollout flag
 * of s (event_signing_key, event_signing_accept_unsigned; the key is used
 * whenever it is set, as fastapi-m8 does).  Fills *out (clear it after,
 * whatever the result) and returns the result to count.  A gap and a
 * heartbeat are DELIVERED without reading data; an event over the SSE
 * limits is MALFORMED; names are matched with surrounding whitespace
 * trimmed and '-' read as '.'.  now is stored as revoked_since. */
M8_INTERNAL m8_event_result m8_event_decode(const m8_settings *s, const m8_sse_event *sse,
                                            double now, m8_event *out);

/* Reconnect backoff (doc/wire.md#reconnect-backoff): the seconds to sleep
 * before the next connection attempt.  n counts the sleeps since the last clean end of
 * stream: 0 at start and right after a clean end (base b = 1 s), then
 * b = 2, 4 ... capped at 60 s; the caller does n = clean ? 0 : n, sleeps
 * m8_event_backoff(n, r), then n++.  r is a uniform random integer in
 * [0, M8_EVENT_JITTER_STEPS), e.g. randombytes_uniform(M8_EVENT_JITTER_STEPS)
 * (larger values are clamped).  Returns max(0.1, b + b * 0.25 * (r / 1000 - 1)). */
#define M8_EVENT_JITTER_STEPS 2001u
M8_INTERNAL double m8_event_backoff(unsigned n, uint32_t r);

#endif
