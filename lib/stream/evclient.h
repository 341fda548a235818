/* evclient.h - the auth event stream client (doc/wire.md#event-stream,
 * doc/wire.md#signed-envelope): holds the issuer's SSE stream (derive(INTROSPECTION_URL) +
 * /events/stream) with the private-API headers of scope "event-stream", verifies each event
 * (events.h) and applies it to the shared revocation table (revtable.h),
 * so every worker sees a revocation at once.  Last-Event-ID resume, the
 * read timeout of EVENT_STREAM_READ_TIMEOUT, the backoff of doc/wire.md#reconnect-backoff, a 401
 * invalidating the service token; never fatal.  Counts events by type and
 * result, gaps, reconnects and the connected gauge in the segment.
 *
 * Run by fcgim8d's sidecar thread for the whole pool. */
#ifndef M8_EVCLIENT_H
#define M8_EVCLIENT_H

#include <stdatomic.h>

#include "config/settings.h"
#include "core/common.h"

struct m8_shm;
typedef struct m8_evclient m8_evclient;

/* True when the settings call for the stream (a stateful consumer). */
M8_INTERNAL bool m8_evclient_wanted(const m8_settings *s);
/* NULL with err filled when the settings cannot make a client. */
M8_INTERNAL m8_evclient *m8_evclient_new(const m8_settings *s, struct m8_shm *shm, char *err,
                                         size_t errlen);
/* Connects, reads, applies and reconnects until *stop becomes non-zero
 * (checked at least every M8_EVCLIENT_STOP_POLL_MS, also while connected). */
#define M8_EVCLIENT_STOP_POLL_MS 200
M8_INTERNAL void m8_evclient_run(m8_evclient *c, atomic_int *stop);
M8_INTERNAL void m8_evclient_free(m8_evclient *c);

#endif
