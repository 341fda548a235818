/* status.h - fcgim8d's own status endpoint (--status-listen): plain
 * HTTP/1.0 served by a thread of the supervisor, so it answers even when
 * every worker is busy.  GET /status (JSON pool status), GET /metrics and
 * GET {API_PREFIX}/metrics (Prometheus text, summed over all workers).
 *
 * Rules (fcgim8d(8), "Status endpoint"): clients are served side by side,
 * each within a total deadline; with METRICS_SCRAPE_CREDENTIAL set, every
 * path needs it (Authorization: Bearer); a TCP address that is not
 * loopback needs the credential to be set. */
#ifndef FCGIM8D_STATUS_H
#define FCGIM8D_STATUS_H

#include "config/settings.h"
#include "shm/shm.h"

typedef struct m8_status_server m8_status_server;

/* M8_ECONFIG (err filled) when addr is a TCP address that is not loopback
 * (or binds every address) while s has no METRICS_SCRAPE_CREDENTIAL; 0
 * otherwise, including for an address m8_listen will refuse itself. */
int m8_status_check_listen(const char *addr, const m8_settings *s, char *err, size_t errlen);
/* Binds addr and starts the thread; NULL with err filled on failure
 * (including the case of m8_status_check_listen, checked on the bound
 * address). */
m8_status_server *m8_status_start(const char *addr, m8_shm *shm, const m8_settings *s, char *err,
                                  size_t errlen);
/* Swaps the settings (reload); the caller frees the old ones afterwards. */
void m8_status_set_settings(m8_status_server *st, const m8_settings *s);
void m8_status_stop(m8_status_server *st);
/* Renders the JSON status document of the pool into out. */
int m8_status_render(const m8_shm *shm, m8_buf *out);

#endif
