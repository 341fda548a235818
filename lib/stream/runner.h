/* runner.h - the event-stream thread: one m8_evclient (evclient.h) run in a
 * thread of its own with every signal blocked.  fcgim8d's sidecar and a
 * stateful service running alone (FCGIM8_EVENT_STREAM=1) both start it
 * here. */
#ifndef M8_RUNNER_H
#define M8_RUNNER_H

#include "config/settings.h"
#include "core/common.h"

struct m8_shm;
typedef struct m8_evrunner m8_evrunner;

/* Makes the client from s and starts its thread; NULL when that fails (the
 * reason is logged: revocations then arrive through introspection only). */
M8_INTERNAL m8_evrunner *m8_evrunner_start(const m8_settings *s, struct m8_shm *shm);
/* Stops the thread, joins it and frees everything; NULL is fine. */
M8_INTERNAL void m8_evrunner_stop(m8_evrunner *r);

#endif
