/* metrics.h - Prometheus metrics of the service (doc/metrics.md#endpoint,
 * doc/metrics.md#metrics, doc/metrics.md#how-the-numbers-are-kept).  Requests are recorded into the
 * calling worker's slot of the shared segment (lib/shm/shm.h) with atomic adds; any worker, and the
 * daemon, renders the sum over every slot.  Labels live as strings in the series, so rendering
 * needs no route table.
 *
 * Families rendered ({pfx} is derived from API_PREFIX, see m8_metrics_prefix;
 * every counter X_total also has X_created, as prometheus_client does):
 *
 *   traffic      {pfx}http_requests_total{method,endpoint,status_code}
 *   performance  {pfx}http_request_duration_seconds{method,endpoint}
 *                  histogram, le 0.005 ... 10.0, +Inf
 *   reliability  {pfx}http_errors_total{method,endpoint,status_class} (status >= 400)
 *   health       {pfx}http_status_total{status_code}
 *   auth         every series of doc/metrics.md#metrics: unlabelled ones at 0,
 *                {pfx}auth_token_validation_failures_total{reason} from the
 *                slots' auth_failures (reasons with a non-zero count only),
 *                labelled ones without data as HELP/TYPE only.
 *   pool         (an fcgi-m8 group; `all` includes it)
 *                {pfx}fcgim8_workers{state="starting"|"busy"|"idle"} gauge: worker
 *                  slots STARTING, or READY/RETIRING with at least one / no busy thread
 *                {pfx}fcgim8_threads{state="busy"|"idle"} gauge: registered threads
 *                  of READY/RETIRING workers
 *                {pfx}fcgim8_workers_target gauge (the daemon's target pool size)
 *                {pfx}fcgim8_generation gauge (pool generation, bumped by SIGHUP)
 *                {pfx}fcgim8_worker_restarts_total{cause="crash"|"max_requests"|
 *                  "timeout"|"reload"|"scale_down"}
 *                {pfx}fcgim8_slow_requests_total
 *                {pfx}fcgim8_reloads_total{result="ok"|"failed"}
 *                {pfx}fcgim8_listen_queue, {pfx}fcgim8_listen_queue_max gauges
 *                {pfx}fcgim8_ready gauge (1 once the pool is ready)
 *                {pfx}fcgim8_metric_series_dropped_total (requests not recorded
 *                  because a worker's series table was full, overflow included)
 *
 * Request labels: method is the request's method when it is one of GET,
 * HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH (as sent, case
 * included), else "other", so a client cannot make up series.  A worker
 * holds M8_SHM_SERIES series; once all but M8_METRICS_OVERFLOW_RESERVE are
 * taken, a request with new labels is counted in the overflow series
 * {method="other",endpoint="overflow",status_code=<its status>} instead.
 *
 * METRICS_GROUPS: a comma list or a JSON array of group names, matched
 * case-insensitively after trimming; `all` selects every group; unknown
 * names are ignored; no valid name gives an empty body (doc/metrics.md#metrics). */
#ifndef M8_METRICS_H
#define M8_METRICS_H

#include "core/common.h"

#include "config/settings.h"
#include "shm/shm.h"

/* Content-Type of the exposition (doc/responses.md#built-in-routes; the body
 * is text format 0.0.4). */
#define M8_METRICS_CONTENT_TYPE "text/plain; version=1.0.0; charset=utf-8"

/* Longest metric name prefix derived from API_PREFIX, NUL included. */
#define M8_METRICS_MAX_PREFIX 256u

/* Groups (bit mask). */
enum {
    M8_METRICS_TRAFFIC = 1u << 0,
    M8_METRICS_PERFORMANCE = 1u << 1,
    M8_METRICS_RELIABILITY = 1u << 2,
    M8_METRICS_HEALTH = 1u << 3,
    M8_METRICS_AUTH = 1u << 4,
    M8_METRICS_POOL = 1u << 5,
    M8_METRICS_ALL = (1u << 6) - 1,
};

/* Token validation failure reasons, by index in a slot's auth_failures:
 * invalid, expired, wrong_type, invalid_payload,
 * inconsistent_privilege_claims (the m8_jwt_reason names), revoked,
 * inactive.  Latency buckets: 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
 * 1.0, 2.5, 5.0, 10.0 (+Inf), per doc/metrics.md#metrics. */

/* The group mask named by METRICS_GROUPS text (NULL means "all"); 0 when
 * no valid group is named. */
M8_INTERNAL unsigned m8_metrics_groups(const char *text);

/* The metric name prefix of doc/metrics.md#metrics ("/api" -> "api_", "/api/v1" -> "api_v1_",
 * "/my-service" -> "my_service_", "/" -> "").  M8_ECONFIG when the result is
 * not a valid Prometheus name start (e.g. a '.' or '~' in API_PREFIX, or a
 * leading digit): the reference fails create_app then, so the caller should
 * refuse to start while METRICS_ENABLED.  M8_ETOOBIG past outlen. */
M8_INTERNAL int m8_metrics_prefix(const char *api_prefix, char *out, size_t outlen);

/* The method label of a request (see above): a standard method, "other",
 * or "" for none.  Static storage. */
#define M8_METRICS_OTHER_METHOD "other"
#define M8_METRICS_OVERFLOW_ENDPOINT "overflow" /* never a route template (no '/') */
#define M8_METRICS_OVERFLOW_RESERVE 16u         /* series of a slot kept for the overflow */
M8_INTERNAL const char *m8_metrics_method_label(const char *method);

/* Records one request: method (raw), endpoint (route template, or
 * "unmatched"; NULL means "unmatched"), status, duration in seconds.  Safe
 * from every thread of the slot's owner; a full series table only counts
 * series_dropped.  slot NULL is a no-op. */
M8_INTERNAL void m8_metrics_record(m8_shm_slot *slot, const char *method, const char *endpoint,
                                   unsigned status, double seconds);

/* Counts one token validation failure by reason name (an unknown name
 * counts as "invalid").  slot NULL is a no-op. */
M8_INTERNAL void m8_metrics_auth_failure(m8_shm_slot *slot, const char *reason);

/* Appends the exposition of the groups selected by s->metrics_groups, summed
 * over every slot of shm, to out (bounded by out->max).  0, M8_ECONFIG (bad
 * prefix, see m8_metrics_prefix), M8_ETOOBIG or M8_ENOMEM; on error out may
 * hold a partial body that must not be sent. */
M8_INTERNAL int m8_metrics_render(const m8_shm *shm, const m8_settings *s, m8_buf *out);

/* The scrape credential rule of GET /metrics (doc/responses.md#built-in-routes,
 * doc/wire.md#secret-comparison): with METRICS_SCRAPE_CREDENTIAL unset (NULL or ""), every scrape
 * is allowed. Otherwise authorization (the first Authorization header, NULL if absent) must be
 * longer than 7 bytes, start with "bearer " case-insensitively, and its rest, trimmed, must equal
 * the credential (constant time).  0 allowed, M8_EINVAL refused (answer 401
 * {"detail":"Unauthorized"} with WWW-Authenticate: Bearer). */
M8_INTERNAL int m8_metrics_check_scrape(const m8_settings *s, const char *authorization);

#endif
