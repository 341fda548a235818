/* outbox.h - delivering the `publish` rows of <prefix>_revocation_outbox
 * (doc/issuer.md#the-revocation-outbox): the immediate publication after
 * an account-wide change commits, and the housekeeping replay of the rows
 * it left pending (a failed append, a process killed in between).
 *
 * A row's events are appended in the same transaction that marks it
 * `completed`, under the row's lock, so an event is published once even
 * when several workers and issuer instances race on the same row. */
#ifndef M8_ISSUER_OUTBOX_H
#define M8_ISSUER_OUTBOX_H

#include "core/common.h"

#include "db/db.h"

/* A pending row younger than this is left to the request that wrote it. */
#define M8_ISSUER_OUTBOX_MIN_AGE_S 5

/* The replay's knobs (the OUTBOX_* settings, doc/issuer.md#settings). */
typedef struct m8_issuer_outbox_cfg {
    int64_t min_age_s;    /* M8_ISSUER_OUTBOX_MIN_AGE_S */
    int64_t lease_s;      /* OUTBOX_LEASE_SECONDS */
    int64_t max_attempts; /* OUTBOX_MAX_ATTEMPTS */
    double backoff_base_s, backoff_cap_s;
    int64_t batch; /* OUTBOX_BATCH_SIZE */
} m8_issuer_outbox_cfg;

/* What one replay round did. */
typedef struct m8_issuer_outbox_stats {
    size_t claimed, completed, retried, dead;
} m8_issuer_outbox_stats;

/* The payload of the v2 user-wide event into out (for tests too). */
M8_INTERNAL int m8_issuer_event_v2(char *out, size_t outlen, const char *user_id,
                                   int64_t generation);

/* The immediate publication of the user-wide `publish` row of (user_id,
 * generation) written by m8_issuer_acct_revoke, after its commit: when the
 * row is still `pending`, appends the v2 session-revoked event (and, when
 * user_deleted, the user-deleted event) and marks it `completed`, in one
 * transaction.  Counts revocation_outbox_enqueued_total first.  0 (also when
 * another worker has the row), or the database's error (the row stays
 * pending for the replay). */
M8_INTERNAL int m8_issuer_outbox_publish_now(m8_db *db, const char *prefix, const char *user_id,
                                             int64_t generation, bool user_deleted);

/* One housekeeping round: claims up to cfg->batch `publish` rows that are
 * pending for at least cfg->min_age_s and due (next_attempt_at), or leased
 * with an expired lease, with SELECT ... FOR UPDATE SKIP LOCKED (attempts + 1,
 * status `leased`), then publishes each as above.  A failed row goes back to
 * `pending` with a backoff, or to `dead` once its attempts reach
 * cfg->max_attempts.  st (optional) receives the counts.  0, or the error of
 * the claim (the rows stay as they were). */
M8_INTERNAL int m8_issuer_outbox_replay(m8_db *db, const char *prefix,
                                        const m8_issuer_outbox_cfg *cfg, int64_t now_us,
                                        m8_issuer_outbox_stats *st);

/* Deletes up to limit `completed` rows whose completed_at is before
 * before_us (now - OUTBOX_COMPLETED_RETENTION_SECONDS); pending, leased and
 * dead rows stay.  removed (optional) receives the count.  0, or the
 * database's error. */
M8_INTERNAL int m8_issuer_outbox_reap(m8_db *db, const char *prefix, int64_t before_us,
                                      int64_t limit, int64_t *removed);

#endif
