/* metrics_int.h - private to metrics.c, metrics_series.c and prometheus.c:
 * the label tables shared by recording and rendering, and the summed
 * series that the Prometheus text is written from. */
#ifndef M8_METRICS_INT_H
#define M8_METRICS_INT_H

#include "builtin/metrics.h"

#include <stdint.h>

/* The upper bounds of the request latency buckets (seconds). */
M8_INTERNAL extern const double m8__metrics_latency_bounds[M8_SHM_BUCKETS];
/* The token validation failure reasons, by counter index (append only). */
#define M8__METRICS_AUTH_REASONS 7
M8_INTERNAL extern const char *const m8__metrics_auth_reasons[M8__METRICS_AUTH_REASONS];

/* Sums of the series sharing one label set.  Which labels count depends on
 * the family: (method, endpoint, status) for the traffic counter,
 * (method, endpoint) for the histogram (status 0), (method, endpoint, class)
 * for errors, (status) for the status counter (method = endpoint = ""). */
typedef struct agg {
    const char *method, *endpoint; /* point into the snapshot labels */
    unsigned status;
    uint64_t count, dur_ns;
    uint64_t buckets[M8_SHM_BUCKETS]; /* per bucket, not cumulative */
    double created;                   /* earliest; 0 = unknown */
} agg;

typedef struct aggmap {
    agg *v;
    size_t n, cap;
    uint32_t *tab; /* index + 1; 0 = empty */
    size_t mask;
} aggmap;

typedef struct labels {
    char method[M8_SHM_METHOD_BYTES];
    char endpoint[M8_SHM_LABEL_BYTES];
} labels;

typedef struct series_set {
    labels *lab;
    aggmap full, hist, errs, status;
} series_set;

/* Snapshots the READY series of every slot (a series stays after its owner
 * dies: counters never go down) and merges equal label sets. */
M8_INTERNAL int m8__metrics_series_collect(const m8_shm *shm, uint32_t nslots, series_set *ss);
M8_INTERNAL void m8__metrics_series_free(series_set *ss);

#endif
