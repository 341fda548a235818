/* events_stream.h - GET {API_PREFIX}/private/v1/events/stream
 * (doc/issuer.md#event-stream): the signed Server-Sent Events stream of the
 * issuer, fed from the database event outbox (store.h) that every worker
 * and every issuer instance shares, served as a streaming response
 * (app/stream.h) on the epoll engine.
 *
 * The pieces other than the route are exposed for the tests: the frame of
 * one outbox row, and where a stream starts for a Last-Event-ID. */
#ifndef M8_ISSUER_EVENTS_STREAM_H
#define M8_ISSUER_EVENTS_STREAM_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "fcgim8.h"
#include "issuer/store.h"

/* How often a stream looks for new outbox rows (doc/issuer.md#event-stream). */
#define M8_ISSUER_STREAM_POLL_MS 25
/* A hole in the outbox ids younger than this may still be an append in
 * flight: the stream waits for it (store.h m8_issuer_event_read). */
#define M8_ISSUER_STREAM_GRACE_US 2000000
/* The most rows one outbox read brings. */
#define M8_ISSUER_STREAM_BATCH 100

/* The frame sent for a gap (unresumable Last-Event-ID): no id, unsigned. */
#define M8_ISSUER_GAP_FRAME "event: gap\ndata: {}\n\n"
#define M8_ISSUER_PING_FRAME ": ping\n\n"

/* The frame of one outbox row, appended to out: "id: <id>", "event:
 * <type>", "data: " and the payload in Python's json.dumps default form
 * (", " and ": ", ASCII only, the stored member order), wrapped in the
 * signed envelope {"payload": ..., "sig": "<hex HMAC-SHA256(key,
 * canonical payload)>"} when key is set (NULL or "": the bare payload),
 * then a blank line.  0, M8_EPARSE when the stored payload is not JSON or
 * the type not a printable token, M8_ENOMEM / M8_ETOOBIG. */
M8_INTERNAL int m8_issuer_event_frame(const m8_issuer_event *ev, const char *key, m8_buf *out);

/* Where a stream starts (doc/issuer.md#event-stream).  lei: the
 * Last-Event-ID header (NULL: absent); first_id, last_id: the outbox's
 * smallest and largest ids (0: empty); buffer: EVENT_STREAM_BUFFER_SIZE,
 * the most events a resume replays.  *after: the id to read after; *gap:
 * whether the stream opens with the gap frame. */
M8_INTERNAL void m8_issuer_stream_start(const char *lei, int64_t first_id, int64_t last_id,
                                        long long buffer, int64_t *after, bool *gap);

/* The route's handler, m8_issuer_h_events_stream, is declared in
 * issuer/service.h with the other route groups. */

#endif
