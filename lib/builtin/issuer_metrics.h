/* issuer_metrics.h - fcgim8-issuer's own Prometheus series
 * (doc/issuer.md#metrics): counters with fixed label values, kept in the
 * shared segment (shm.h: issuer[], issuer_hists[], a slot's issuer_streams)
 * so that every worker process and every thread adds to the same numbers;
 * /metrics renders them (prometheus.c) from the table of issuer_metrics.c.
 *
 * A label value is always one of the fixed lists below, never a JTI, a key
 * hash or a user id.  To add a family: a row in the table of
 * issuer_metrics.c, its value enum here, then count with m8_im_inc.
 *
 * The counting functions write to the segment bound by m8_im_bind (the
 * issuer's app binds its own at start); unbound they do nothing.  They are
 * safe from every thread. */
#ifndef M8_ISSUER_METRICS_H
#define M8_ISSUER_METRICS_H

#include "core/common.h"

#include "shm/shm.h"

/* Families, in the order of the table (issuer_metrics.c). */
typedef enum m8_im_family {
    M8_IM_LOGIN,              /* auth_login_attempts_total{result} */
    M8_IM_REFRESH,            /* auth_token_refresh_total{result} */
    M8_IM_LOGOUT,             /* auth_logout_total */
    M8_IM_REVOCATION_FAILURE, /* auth_revocation_failure_total{operation} */
    M8_IM_DEGRADED,           /* auth_degraded_decision_total{control,mode,reason} */
    M8_IM_INTEGRITY,          /* auth_session_integrity_denial_total{trigger} */
    M8_IM_APIKEY_VALIDATIONS, /* auth_api_key_validations_total{result} */
    M8_IM_APIKEY_RL_CHECKS,   /* auth_api_key_rate_limit_checks_total{result} */
    M8_IM_APIKEY_RL_HITS,     /* auth_api_key_rate_limit_hits_total{period} */
    M8_IM_APIKEY_LIFECYCLE,   /* auth_api_key_lifecycle_total{action} */
    M8_IM_EVENTS_PUBLISHED,   /* auth_events_published_total{event_type} */
    M8_IM_STREAM_DISCONNECTS, /* auth_event_stream_disconnects_total{reason} */
    M8_IM_OUTBOX_ENQUEUED,    /* revocation_outbox_enqueued_total{effect_type} */
    M8_IM_OUTBOX_COMPLETED,   /* revocation_outbox_completed_total{effect_type} */
    M8_IM_OUTBOX_RETRIED,     /* revocation_outbox_retried_total{effect_type} */
    M8_IM_OUTBOX_DEAD,        /* revocation_outbox_dead_total{effect_type} */
    M8_IM__FAMILIES
} m8_im_family;

/* Label values, by family (the value's index in its list). */
enum {
    M8_IM_LOGIN_SUCCESS,
    M8_IM_LOGIN_WRONG_CREDENTIALS,
    M8_IM_LOGIN_INACTIVE_USER,
    M8_IM_LOGIN_RATE_LIMITED
};
enum {
    M8_IM_REFRESH_SUCCESS,
    M8_IM_REFRESH_INVALID,
    M8_IM_REFRESH_REVOKED,
    M8_IM_REFRESH_RATE_LIMITED
};
enum { M8_IM_OP_ACCESS_BLACKLIST, M8_IM_OP_REFRESH_ALLOWLIST, M8_IM_OP_DB_SESSION };
/* auth_degraded_decision_total: control; mode is an m8_failure_mode
 * (fail_closed 0, fail_open 1); reason */
enum {
    M8_IM_CTL_RATE_LIMIT,
    M8_IM_CTL_REFRESH_VALIDATION,
    M8_IM_CTL_SESSION_WRITE,
    M8_IM_CTL_ACCESS_REVOCATION,
    M8_IM_CTL_API_KEY_RATE_LIMIT
};
enum { M8_IM_REASON_REDIS_UNAVAILABLE, M8_IM_REASON_REVOCATION_FAILED };
enum { M8_IM_TRIGGER_REUSE_DETECTED };
enum { M8_IM_AKV_SUCCESS, M8_IM_AKV_INVALID, M8_IM_AKV_REVOKED, M8_IM_AKV_EXPIRED };
enum { M8_IM_AKRL_CHECKED, M8_IM_AKRL_ALLOWED, M8_IM_AKRL_BLOCKED };
enum { M8_IM_PERIOD_MINUTE, M8_IM_PERIOD_HOUR, M8_IM_PERIOD_DAY, M8_IM_PERIOD_MONTH };
enum { M8_IM_AK_CREATED, M8_IM_AK_REVOKED };
enum { M8_IM_EV_SESSION_REVOKED, M8_IM_EV_USER_DELETED };
enum { M8_IM_DISC_CLIENT, M8_IM_DISC_BACKPRESSURE, M8_IM_DISC_SHUTDOWN };
enum { M8_IM_EFFECT_BLACKLIST, M8_IM_EFFECT_PUBLISH };

/* Histograms (shm issuer_hists[]). */
typedef enum m8_im_hist {
    M8_IH_OUTBOX_BLACKLIST, /* revocation_outbox_propagation_seconds{effect_type="blacklist"} */
    M8_IH_OUTBOX_PUBLISH,   /* revocation_outbox_propagation_seconds{effect_type="publish"} */
    M8_IH__COUNT
} m8_im_hist;

/* The buckets of revocation_outbox_propagation_seconds (prometheus_client's
 * defaults, as fa-auth-m8 registers it). */
#define M8_IM_OUTBOX_BUCKETS 14u
M8_INTERNAL extern const double m8_im_outbox_bounds[M8_IM_OUTBOX_BUCKETS];

/* One family of the table. */
typedef struct m8_im_desc {
    const char *name; /* without _total */
    const char *help;
    bool issuer_only; /* rendered only by fcgim8-issuer (the others are the SDK's too) */
    unsigned nlabels; /* 0..3 */
    const char *label[3];
    const char *const *values[3];
    unsigned nvalues[3];
} m8_im_desc;

/* The family's row; its counters are issuer[m8_im_base(f) ... + product of nvalues). */
M8_INTERNAL const m8_im_desc *m8_im_family_desc(m8_im_family f);
M8_INTERNAL unsigned m8_im_base(m8_im_family f);
/* Counters the table needs (at most M8_SHM_ISSUER_COUNTERS). */
M8_INTERNAL unsigned m8_im_total(void);

/* Binds the counting functions to shm and slot (slot: the stream gauge). */
M8_INTERNAL void m8_im_bind(m8_shm *shm, m8_shm_slot *slot);
/* Unbinds, when shm is the bound segment. */
M8_INTERNAL void m8_im_unbind(const m8_shm *shm);

/* Adds one to family f at label values (a, b, c) (unused ones 0); values
 * past their list are ignored. */
M8_INTERNAL void m8_im_inc3(m8_im_family f, unsigned a, unsigned b, unsigned c);
M8_INTERNAL void m8_im_inc(m8_im_family f, unsigned a);
/* Observes seconds in histogram h. */
M8_INTERNAL void m8_im_observe(m8_im_hist h, double seconds);
/* auth_event_stream_connections: delta +1 when a stream starts, -1 when it ends. */
M8_INTERNAL void m8_im_streams(int delta);

#endif
