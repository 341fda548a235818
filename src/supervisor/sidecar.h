/* sidecar.h - fcgim8d's sidecar thread (doc/design.md#sidecar):
 * fetches JWKS_URI once for all workers and publishes the document in the
 * shared segment (every JWKS_CACHE_TTL_SECONDS, and when a worker asks,
 * with a cooldown that counts failed fetches; the last good document stays
 * when a fetch fails), and in a stateful consumer holds the auth event
 * stream (evclient.h) whose revocations every worker sees at once in the
 * shared revocation table. */
#ifndef FCGIM8D_SIDECAR_H
#define FCGIM8D_SIDECAR_H

#include "config/settings.h"
#include "shm/shm.h"

typedef struct m8_sidecar m8_sidecar;

/* NULL when there is nothing to do (no JWKS_URI, stateless) or on error
 * (logged). */
m8_sidecar *m8_sidecar_start(m8_shm *shm, const m8_settings *s);
void m8_sidecar_stop(m8_sidecar *sc);

#endif
