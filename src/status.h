/* status.h - fcgim8d's own status endpoint (--status-listen): plain
 * HTTP/1.0 served by a thread of the supervisor, so it answers even when
 * every worker is busy.  GET /status (JSON pool status), GET /metrics and
 * GET {API_PREFIX}/metrics (Prometheus text, summed over all workers). */
#ifndef FCGIM8D_STATUS_H
#define FCGIM8D_STATUS_H

#include "settings.h"
#include "shm.h"

typedef struct m8_status_server m8_status_server;

m8_status_server *m8_status_start(const char *addr, m8_shm *shm, const m8_settings *s,
                                  char *err, size_t errlen);
/* Swaps the settings (reload); the caller frees the old ones afterwards. */
void m8_status_set_settings(m8_status_server *st, const m8_settings *s);
void m8_status_stop(m8_status_server *st);
/* Renders the JSON status document of the pool into out. */
int m8_status_render(const m8_shm *shm, m8_buf *out);

#endif
