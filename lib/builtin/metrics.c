/* metrics.c - the metric groups and name prefix, and recording into the
 * shared segment (see metrics.h; doc/metrics.md).  The series sums are in
 * metrics_series.c, the Prometheus text in prometheus.c. */
#include "builtin/metrics_int.h"

#include "stream/events.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "core/json.h"

const double m8__metrics_latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1.0,  2.5,   5.0,  10.0};
_Static_assert(M8_ARRAY_LEN(m8__metrics_latency_bounds) == M8_SHM_BUCKETS,
               "the shm bucket count matches the latency buckets of doc/metrics.md#metrics");

/* Indexes are shared by every process of one build: append only. */
const char *const m8__metrics_auth_reasons[] = {
    "invalid", "expired",  "wrong_type", "invalid_payload", "inconsistent_privilege_claims",
    "revoked", "inactive",
};
_Static_assert(M8_ARRAY_LEN(m8__metrics_auth_reasons) <= M8_SHM_AUTH_REASONS,
               "every auth failure reason has a counter in the slot");

/* ------------------------------------------------------------ groups */

static const struct {
    const char *name;
    unsigned bit;
} group_names[] = {
    {"traffic", M8_METRICS_TRAFFIC},
    {"performance", M8_METRICS_PERFORMANCE},
    {"reliability", M8_METRICS_RELIABILITY},
    {"health", M8_METRICS_HEALTH},
    {"auth", M8_METRICS_AUTH},
    {"pool", M8_METRICS_POOL},
    {"all", M8_METRICS_ALL},
};

static unsigned group_bit(const char *p, size_t n)
{
    n = m8_trim(&p, n);
    for (size_t i = 0; i < M8_ARRAY_LEN(group_names); i++) {
        if (m8_memcaseeq(p, n, group_names[i].name))
            return group_names[i].bit;
    }
    return 0;
}

unsigned m8_metrics_groups(const char *text)
{
    if (!text)
        return M8_METRICS_ALL;
    const char *p = text;
    size_t n = m8_trim(&p, strlen(text));
    unsigned bits = 0;
    if (n && p[0] == '[') { /* doc/settings.md#value-grammar: a list setting may be a JSON array */
        struct json_object *a = m8_json_parse(p, n, 2, NULL, NULL);
        if (a && json_object_is_type(a, json_type_array)) {
            size_t k = json_object_array_length(a);
            for (size_t i = 0; i < k; i++) {
                struct json_object *it = json_object_array_get_idx(a, i);
                if (json_object_is_type(it, json_type_string))
                    bits |= group_bit(json_object_get_string(it),
                                      (size_t)json_object_get_string_len(it));
            }
            json_object_put(a);
            return bits;
        }
        json_object_put(a);
    }
    while (n) {
        const char *c = memchr(p, ',', n);
        size_t len = c ? (size_t)(c - p) : n;
        bits |= group_bit(p, len);
        if (!c)
            break;
        p += len + 1;
        n -= len + 1;
    }
    return bits;
}

/* ------------------------------------------------------------ prefix */

int m8_metrics_prefix(const char *api_prefix, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return M8_ETOOBIG;
    out[0] = '\0';
    const char *p = api_prefix ? api_prefix : "";
    size_t n = m8_trim(&p, strlen(p));
    while (n && *p == '/') {
        p++;
        n--;
    }
    if (n == 0)
        return 0;
    if (n + 2 > outlen)
        return M8_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '-' || c == '/')
            c = '_';
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0)) {
            out[0] = '\0';
            return M8_ECONFIG;
        }
        out[i] = c;
    }
    out[n] = '_';
    out[n + 1] = '\0';
    return 0;
}

/* ------------------------------------------------------------ recording */

const char *m8_metrics_method_label(const char *method)
{
    static const char *const standard[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                           "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    if (!method)
        return "";
    for (size_t i = 0; i < M8_ARRAY_LEN(standard); i++) {
        if (strcmp(method, standard[i]) == 0)
            return standard[i];
    }
    return *method ? M8_METRICS_OTHER_METHOD : "";
}

/* The series of a request, remembered per thread by its labels' addresses
 * (route templates and method labels are the service's constant strings):
 * a hit costs one hash and one comparison of the labels with the series
 * found, instead of copying them and scanning the slot's series.  The
 * comparison keeps a hit right even if an address is reused for another
 * label (an app freed and a new one made). */
#define MEMO_SIZE 64u
typedef struct memo_entry {
    const m8_shm_slot *slot;
    const char *method, *endpoint;
    unsigned status;
    m8_shm_series *series;
} memo_entry;
static _Thread_local memo_entry tl_memo[MEMO_SIZE];

static memo_entry *memo_at(const char *method, const char *endpoint, unsigned status)
{
    uint64_t h = (uint64_t)(uintptr_t)endpoint * 0x9E3779B97F4A7C15u ^
                 (uint64_t)(uintptr_t)method * 0xC2B2AE3D27D4EB4Fu ^ status * 0x165667B1u;
    return &tl_memo[(h >> 32) & (MEMO_SIZE - 1)];
}

static m8_shm_series *memo_get(const m8_shm_slot *slot, const char *method, const char *endpoint,
                               unsigned status)
{
    memo_entry *m = memo_at(method, endpoint, status);
    m8_shm_series *se = m->series;
    if (!se || m->slot != slot || m->method != method || m->endpoint != endpoint ||
        m->status != status)
        return NULL;
    if (atomic_load_explicit(&se->state, memory_order_acquire) != M8_SERIES_READY ||
        se->status != status || strncmp(se->method, method, sizeof se->method) != 0 ||
        strncmp(se->endpoint, endpoint, sizeof se->endpoint) != 0)
        return NULL; /* the overflow series, or a label cut to its field: no shortcut */
    return se;
}

static void memo_put(const m8_shm_slot *slot, const char *method, const char *endpoint,
                     unsigned status, m8_shm_series *se)
{
    *memo_at(method, endpoint, status) = (memo_entry){
        .slot = slot, .method = method, .endpoint = endpoint, .status = status, .series = se};
}

void m8_metrics_record(m8_shm_slot *slot, const char *method, const char *endpoint, unsigned status,
                       double seconds)
{
    if (!slot)
        return;
    /* Clients choose methods freely: only the standard ones become labels.
     * Route templates and statuses are the service's, but a big service can
     * still have more combinations than a slot holds: the last entries are
     * kept for the overflow series, so every request is counted. */
    const char *mlabel = m8_metrics_method_label(method);
    if (!endpoint)
        endpoint = "unmatched";
    m8_shm_series *se = memo_get(slot, mlabel, endpoint, status);
    if (!se) {
        se = m8_shm_series_claim(slot, mlabel, endpoint, status,
                                 M8_SHM_SERIES - M8_METRICS_OVERFLOW_RESERVE);
        if (!se)
            se = m8_shm_series_get(slot, M8_METRICS_OTHER_METHOD, M8_METRICS_OVERFLOW_ENDPOINT,
                                   status);
        if (!se)
            return;
        memo_put(slot, mlabel, endpoint, status, se);
    }
    uint64_t ns = 0;
    if (seconds > 0)
        ns = seconds < 1e10 ? (uint64_t)(seconds * 1e9 + 0.5) : (uint64_t)1e19;
    /* count before the bucket (release): a reader that sees the bucket
     * (acquire) sees the count, so no bucket ever exceeds +Inf. */
    atomic_fetch_add_explicit(&se->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&se->duration_ns, ns, memory_order_relaxed);
    for (size_t i = 0; i < M8_SHM_BUCKETS; i++) {
        if (seconds <= m8__metrics_latency_bounds[i]) { /* le: the first bound >= the value */
            atomic_fetch_add_explicit(&se->buckets[i], 1, memory_order_release);
            break;
        }
    }
}

void m8_metrics_auth_failure(m8_shm_slot *slot, const char *reason)
{
    if (!slot)
        return;
    size_t idx = 0; /* "invalid" */
    for (size_t i = 0; reason && i < M8_ARRAY_LEN(m8__metrics_auth_reasons); i++) {
        if (strcmp(reason, m8__metrics_auth_reasons[i]) == 0) {
            idx = i;
            break;
        }
    }
    atomic_fetch_add_explicit(&slot->auth_failures[idx], 1, memory_order_relaxed);
}

/* ------------------------------------------------------------ scrape credential */

int m8_metrics_check_scrape(const m8_settings *s, const char *authorization)
{
    const char *cred = s ? s->metrics_scrape_credential : NULL;
    if (!cred || !*cred)
        return 0;
    if (!authorization)
        return M8_EINVAL;
    size_t n = strlen(authorization);
    if (n <= 7 || !m8_memcaseeq(authorization, 7, "bearer "))
        return M8_EINVAL;
    const char *p = authorization + 7;
    size_t pn = m8_trim(&p, n - 7);
    return m8_secret_eq_n(p, pn, cred) ? 0 : M8_EINVAL;
}
