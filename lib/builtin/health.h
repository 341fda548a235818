/* health.h - {API_PREFIX}/health/ (doc/responses.md#health): checks run
 * concurrently with a per-check timeout, LENIENT/STRICT aggregation, result
 * cache, detail gating, scrubbing and redaction. */
#ifndef M8_HEALTH_H
#define M8_HEALTH_H

#include "core/common.h" /* config.h first: feature macros before system headers */

#include <pthread.h>

#include "config/settings.h"
#include "http/http.h"

typedef struct m8_health_check {
    char *name;
    m8_health_fn fn;
    void *data;
    struct m8_health_inflight *inflight; /* a run still going past its timeout */
} m8_health_check;

typedef struct m8_health {
    m8_health_check *checks;
    size_t n;
    double timeout_s;        /* default 0.5 */
    m8_health_policy policy; /* default lenient */
    double cache_ttl_s;      /* default 2.0 */
    bool detail_public;
    m8_health_authorizer authorizer;
    void *authorizer_data;
    const char *service_name, *service_version; /* borrowed from the app, may be NULL */
    const m8_settings *settings;
    pthread_mutex_t lock; /* guards the cache and inflight */
    double cache_time;
    bool cache_valid;
    m8_health_status cache_status;
    char *cache_checks_json; /* rendered "checks" array */
} m8_health;

M8_INTERNAL void m8_health_init(m8_health *h);
M8_INTERNAL void m8_health_free(m8_health *h);
M8_INTERNAL int m8_health_add(m8_health *h, const char *name, m8_health_fn fn, void *data);

/* The LENIENT/STRICT aggregation (doc/responses.md#health) of n statuses. */
M8_INTERNAL m8_health_status m8_health_aggregate(const m8_health_status *st, size_t n,
                                                 m8_health_policy policy);
M8_INTERNAL const char *m8_health_status_name(m8_health_status st);

/* Scrubbing (doc/responses.md#health-detail): masks the user and password of
 * "scheme://user:pass@host" as ***:*** (returns a new malloc'd string); key
 * redaction test for meta keys. */
M8_INTERNAL char *m8_health_scrub(const char *s);
M8_INTERNAL bool m8_health_key_is_secret(const char *key);

/* Handles GET {API_PREFIX}/health/: ready says whether startup finished.
 * Before ready: 503 initializing.  After: runs the checks (one detached
 * thread each, abandoned past timeout_s) through the result cache and
 * answers {"status":...} or, for a caller allowed detail, the detailed body
 * (doc/responses.md#health-detail); 503 iff the aggregate is fail. */
M8_INTERNAL int m8_health_handle(m8_health *h, m8_request *req, bool ready);

#endif
