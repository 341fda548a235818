/* sse.h - an incremental Server-Sent Events parser (the WHATWG HTML
 * "event stream interpretation" rules; doc/wire.md#sse-framing).
 * Pure: push bytes in any split, get events through a callback; no I/O, no
 * libcurl.  Fuzzed by tests/fuzz/fuzz_sse.c.
 *
 * Rules: lines end at CR, LF or CRLF (also when the CR and the LF arrive
 * in different pushes); one UTF-8 BOM at the start of the stream is
 * dropped; a line starting with ':' is a comment (the issuer's heartbeat
 * ": ping"); "name:value" with one leading space of the value removed, a
 * line without ':' is a name with an empty value; field names are
 * case-sensitive; "event" sets the type, "data" appends value + LF, "id"
 * sets the id unless the value contains NUL, "retry" sets the reconnection
 * time when the value is all ASCII digits, anything else is ignored; a
 * blank line dispatches when at least one data line was seen (type
 * "message" when none was given, the final LF removed) and then clears the
 * data and the type.  An event not closed by a blank line is never
 * dispatched.  Bytes are passed through as they are (no UTF-8 decoding;
 * the JSON parser of the data refuses invalid UTF-8).
 *
 * Against Python's client the differences are: one leading space
 * is removed, not all surrounding whitespace (the issuer writes exactly
 * one); a field without ':' is a field (Python ignores the line); a BOM
 * only counts at the stream start.  The event id is per event:
 * m8_sse_event.id is the id field of this event only (which is what
 * doc/wire.md#last-event-id needs: Last-Event-ID moves only with a
 * verified event that carried an id), while m8_sse_last_id keeps the WHATWG sticky value.
 *
 * Limits: a line longer than M8_MAX_SSE_LINE_BYTES (terminator excluded)
 * is cut; if it is a data, id or event line, its event is delivered with
 * too_big set and no data (the consumer counts it as malformed) instead of
 * wrongly; other long lines (comments, retry, unknown) are ignored.  Event
 * data longer than M8_MAX_SSE_EVENT_BYTES (lines joined with LF) marks the
 * event too_big the same way.  The stream then goes on: skipping is better
 * than reconnecting, since a replay would send the same event again. */
#ifndef M8_SSE_H
#define M8_SSE_H

#include "core/common.h"

/* New limits (to move to common.h). */
#ifndef M8_MAX_SSE_LINE_BYTES
#define M8_MAX_SSE_LINE_BYTES 16384u /* one SSE line, terminator excluded */
#endif
#ifndef M8_MAX_SSE_EVENT_BYTES
#define M8_MAX_SSE_EVENT_BYTES 65536u /* the data of one SSE event (lines joined by LF) */
#endif

typedef enum m8_sse_kind {
    M8_SSE_EVENT,   /* a dispatched event */
    M8_SSE_COMMENT, /* a comment line (heartbeat); data is its text after ':' */
} m8_sse_kind;

/* What the callback sees.  Pointers are borrowed, valid during the
 * callback only; each is also NUL-terminated at its length (event and data
 * may hold NUL bytes themselves: use the lengths; an id never does). */
typedef struct m8_sse_event {
    m8_sse_kind kind;
    bool too_big;      /* a limit was passed: data is empty, drop the event */
    const char *event; /* event type; "message" when the event had none */
    size_t event_len;
    const char *data; /* data lines joined with LF (a comment: its text) */
    size_t data_len;
    const char *id; /* the id field of this event; NULL when it had none */
    size_t id_len;
    long long retry_ms; /* reconnection time from the last retry field; -1 if none */
} m8_sse_event;

/* Returns 0 to go on; anything else stops m8_sse_push, which returns it
 * (the rest of that push is dropped: reset before reusing the parser). */
typedef int (*m8_sse_fn)(const m8_sse_event *ev, void *ctx);

typedef struct m8_sse {
    m8_buf line;  /* the line being read (up to the limit) */
    m8_buf data;  /* data lines, each followed by LF */
    m8_buf event; /* event type buffer */
    m8_buf id;    /* id field of the current event */
    m8_buf last_id;
    bool line_long;   /* the current line passed the limit */
    bool after_cr;    /* the last terminator was a CR: skip one LF */
    unsigned bom;     /* bytes of a leading BOM matched; 3 when settled */
    bool has_data;    /* a data line was seen in the current event */
    bool has_id;      /* an id field was seen in the current event */
    bool has_last_id; /* an id field was ever seen (sticky) */
    bool too_big;     /* the current event passed a limit */
    long long retry_ms;
} m8_sse;

/* A parser at the start of a stream. */
M8_INTERNAL void m8_sse_init(m8_sse *p);
M8_INTERNAL void m8_sse_free(m8_sse *p);
/* Back to the start of a stream (a new connection): the partial line and
 * event are dropped, a BOM is looked for again; the sticky last id and the
 * retry time are kept. */
M8_INTERNAL void m8_sse_reset(m8_sse *p);
/* Feeds n bytes.  0, the callback's nonzero return, or M8_ENOMEM. */
M8_INTERNAL int m8_sse_push(m8_sse *p, const char *buf, size_t n, m8_sse_fn fn, void *ctx);
/* The WHATWG last event ID (sticky across events and resets); NULL if no
 * id field was ever seen.  Borrowed until the next push or reset. */
M8_INTERNAL const char *m8_sse_last_id(const m8_sse *p, size_t *len);

#endif
