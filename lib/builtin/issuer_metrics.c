/* issuer_metrics.c - the table of fcgim8-issuer's series and their
 * counting (issuer_metrics.h, doc/issuer.md#metrics). */
#include "builtin/issuer_metrics.h"

#include <stdatomic.h>

_Static_assert(M8_IM_OUTBOX_BUCKETS <= M8_SHM_HIST_BUCKETS, "histogram buckets");
_Static_assert(M8_IH__COUNT <= M8_SHM_ISSUER_HISTS, "issuer histograms");

const double m8_im_outbox_bounds[M8_IM_OUTBOX_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0};

static const char *const v_login[] = {"success", "wrong_credentials", "inactive_user",
                                      "rate_limited"};
static const char *const v_refresh[] = {"success", "invalid", "revoked", "rate_limited"};
static const char *const v_operation[] = {"access_blacklist", "refresh_allowlist", "db_session"};
static const char *const v_control[] = {"rate_limit", "refresh_validation", "session_write",
                                        "access_revocation", "api_key_rate_limit"};
static const char *const v_mode[] = {"fail_closed", "fail_open"}; /* m8_failure_mode order */
static const char *const v_reason[] = {"redis_unavailable", "revocation_failed"};
static const char *const v_trigger[] = {"reuse_detected"};
static const char *const v_akv[] = {"success", "invalid", "revoked", "expired"};
static const char *const v_akrl[] = {"checked", "allowed", "blocked"};
static const char *const v_period[] = {"minute", "hour", "day", "month"};
static const char *const v_lifecycle[] = {"created", "revoked"};
static const char *const v_event[] = {"session-revoked", "user-deleted"};
static const char *const v_disc[] = {"client", "backpressure", "shutdown"};
static const char *const v_effect[] = {"blacklist", "publish"};

#define L1(n, v)                                                                                   \
    1, {n}, {v},                                                                                   \
    {                                                                                              \
        M8_ARRAY_LEN(v)                                                                            \
    }
#define OUTBOX(name, help)                                                                         \
    {                                                                                              \
        name, help, true, L1("effect_type", v_effect)                                              \
    }

static const m8_im_desc table[M8_IM__FAMILIES] = {
    {"auth_login_attempts",
     "Login attempts (result: success | wrong_credentials | inactive_user | rate_limited)", false,
     L1("result", v_login)},
    {"auth_token_refresh",
     "Token refresh attempts (result: success | invalid | revoked | rate_limited)", false,
     L1("result", v_refresh)},
    {"auth_logout", "Logout requests", false, 0, {NULL}, {NULL}, {0}},
    {"auth_revocation_failure",
     "Token revocation failures by operation (operation: access_blacklist | refresh_allowlist "
     "| db_session)",
     false, L1("operation", v_operation)},
    {"auth_degraded_decision",
     "Degraded-mode decisions when a Redis-dependent control is unavailable (control, mode, "
     "reason)",
     false,
     3,
     {"control", "mode", "reason"},
     {v_control, v_mode, v_reason},
     {M8_ARRAY_LEN(v_control), M8_ARRAY_LEN(v_mode), M8_ARRAY_LEN(v_reason)}},
    {"auth_session_integrity_denial",
     "Token reuse attacks that triggered full session chain invalidation (trigger)", false,
     L1("trigger", v_trigger)},
    {"auth_api_key_validations",
     "API key validation results (result: success | invalid | revoked | expired)", false,
     L1("result", v_akv)},
    {"auth_api_key_rate_limit_checks", "Rate limit enforcement checks (result: allowed | blocked)",
     false, L1("result", v_akrl)},
    {"auth_api_key_rate_limit_hits",
     "Rate limit window exceeded by period (period: minute | hour | day | month)", false,
     L1("period", v_period)},
    {"auth_api_key_lifecycle", "API key lifecycle events (action: created | revoked)", false,
     L1("action", v_lifecycle)},
    {"auth_events_published", "Revocation events appended to the event outbox, by type", true,
     L1("event_type", v_event)},
    {"auth_event_stream_disconnects",
     "Event streams ended by the issuer, by reason (client | backpressure | shutdown)", true,
     L1("reason", v_disc)},
    OUTBOX("revocation_outbox_enqueued",
           "Revocation outbox rows written by an account-wide change, by effect type"),
    OUTBOX("revocation_outbox_completed",
           "Revocation outbox rows whose effect was delivered, by effect type"),
    OUTBOX("revocation_outbox_retried",
           "Revocation outbox deliveries that failed and will be tried again, by effect type"),
    OUTBOX("revocation_outbox_dead",
           "Revocation outbox rows given up after the last attempt, by effect type"),
};

const m8_im_desc *m8_im_family_desc(m8_im_family f)
{
    return (unsigned)f < M8_IM__FAMILIES ? &table[f] : NULL;
}

static unsigned family_size(const m8_im_desc *d)
{
    unsigned n = 1;
    for (unsigned i = 0; i < d->nlabels; i++)
        n *= d->nvalues[i];
    return n;
}

unsigned m8_im_base(m8_im_family f)
{
    unsigned b = 0;
    for (unsigned i = 0; i < (unsigned)f && i < M8_IM__FAMILIES; i++)
        b += family_size(&table[i]);
    return b;
}

unsigned m8_im_total(void)
{
    return m8_im_base(M8_IM__FAMILIES);
}

static _Atomic(m8_shm *) g_shm;
static _Atomic(m8_shm_slot *) g_slot;

void m8_im_bind(m8_shm *shm, m8_shm_slot *slot)
{
    atomic_store(&g_slot, slot);
    atomic_store(&g_shm, shm);
}

void m8_im_unbind(const m8_shm *shm)
{
    m8_shm *cur = atomic_load(&g_shm);
    if (cur && cur == shm) {
        atomic_store(&g_shm, NULL);
        atomic_store(&g_slot, NULL);
    }
}

void m8_im_inc3(m8_im_family f, unsigned a, unsigned b, unsigned c)
{
    m8_shm *shm = atomic_load_explicit(&g_shm, memory_order_acquire);
    const m8_im_desc *d = m8_im_family_desc(f);
    if (!shm || !d)
        return;
    unsigned v[3] = {a, b, c}, idx = 0;
    for (unsigned i = 0; i < 3; i++) {
        unsigned n = i < d->nlabels ? d->nvalues[i] : 1;
        if (v[i] >= n)
            return;
        idx = idx * n + v[i];
    }
    idx += m8_im_base(f);
    if (idx < M8_SHM_ISSUER_COUNTERS)
        atomic_fetch_add_explicit(&shm->issuer[idx], 1, memory_order_relaxed);
}

void m8_im_inc(m8_im_family f, unsigned a)
{
    m8_im_inc3(f, a, 0, 0);
}

void m8_im_observe(m8_im_hist h, double seconds)
{
    m8_shm *shm = atomic_load_explicit(&g_shm, memory_order_acquire);
    if (!shm || (unsigned)h >= M8_IH__COUNT)
        return;
    m8_shm_hist *x = &shm->issuer_hists[h];
    if (!(seconds >= 0))
        seconds = 0;
    uint64_t ns = seconds < 1e10 ? (uint64_t)(seconds * 1e9 + 0.5) : (uint64_t)1e19;
    size_t b = 0;
    while (b < M8_IM_OUTBOX_BUCKETS && seconds > m8_im_outbox_bounds[b])
        b++; /* le: the first bound >= the value; past the last: +Inf */
    /* count first: a reader that sees a bucket (acquire) sees its count */
    atomic_fetch_add_explicit(&x->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&x->sum_ns, ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&x->buckets[b], 1, memory_order_release);
}

void m8_im_streams(int delta)
{
    m8_shm_slot *slot = atomic_load_explicit(&g_slot, memory_order_acquire);
    if (slot)
        atomic_fetch_add_explicit(&slot->issuer_streams, delta, memory_order_relaxed);
}
