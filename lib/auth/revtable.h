/* revtable.h - the revocation table in the shared segment (shm->revocation;
 * doc/design.md#shared-segment, doc/wire.md#revocation-table).  One table
 * for every worker of a pool (or for the threads of a lone worker, in
 * m8_shm_private memory):
 *
 *   - revoked JTIs, each kept until a given time (the token's exp) or until
 *     evicted;
 *   - users: a user-wide revocation time ("since": every token of the user
 *     with iat < since is revoked) and the generation watermark with
 *     the durable event ids applied at exactly that generation;
 *   - the positive cache of active introspection answers (JTI -> user,
 *     auth_generation, expiry), used only when REVOCATION_CACHE_TTL_SECONDS > 0.
 *
 * Every table is open-addressed on a keyed BLAKE2b digest of the id (the key
 * is random per segment), with a bounded probe window: lookups are O(1), a
 * full window evicts its oldest entry (cache: the nearest expiry), so the
 * whole thing never grows past M8_SHM_REVOCATION_BYTES.  Ids are never stored,
 * only digests, so no id length is limited here.
 *
 * Every call takes m8_shm_lock.  A writer that dies inside its critical
 * section leaves a mark; the next holder of the lock finds it and clears the
 * whole table (losing revocations is safe: the issuer stays the authority
 * and every lookup falls back to it), so a crash never leaves a torn table.
 *
 * Times: "now", "until", "expires" are wall-clock seconds (m8_now_wall());
 * since and iat are the token's integer seconds. */
#ifndef M8_REVTABLE_H
#define M8_REVTABLE_H

#include "core/common.h"

struct m8_shm;

#define M8_REVTABLE_JTIS 8192u   /* revoked JTIs kept */
#define M8_REVTABLE_USERS 4096u  /* users with a since-time and/or a watermark */
#define M8_REVTABLE_CACHE 8192u  /* cached active answers */
#define M8_REVTABLE_WINDOW 16u   /* probe window of every table */
#define M8_REVTABLE_EVENT_IDS 4u /* durable event ids remembered per user and generation */
/* Suggested since-time for a user-wide event received at wall time t:
 * (long long)t - M8_REVTABLE_SINCE_MARGIN_S.  The margin absorbs clock skew
 * between the issuer (which stamps iat) and this host, so a token issued
 * just after the revocation (a new login) is never refused locally; tokens
 * issued inside the margin are still refused through the issuer, as their
 * cached answers are evicted. */
#define M8_REVTABLE_SINCE_MARGIN_S 5

typedef enum m8_revt_verdict {
    M8_REVT_UNKNOWN = 0, /* nothing known: ask the issuer */
    M8_REVT_ACTIVE,      /* a cached active answer (or, from record_active, accepted) */
    M8_REVT_REVOKED,     /* revoked (jti, user-wide since-time, or generation below watermark) */
} m8_revt_verdict;

/* A session.revoked payload, already validated by the caller
 * (doc/wire.md#revocation-table, step 1). */
typedef struct m8_revt_event {
    const char *user_id;  /* required */
    const char *jti;      /* NULL: every session of the user (user-wide) */
    uint64_t generation;  /* auth_generation; 0 = null (a v1 event) */
    const char *event_id; /* durable dedup key, or NULL */
    /* User-wide only: tokens of the user with iat < since are refused from
     * now on without asking the issuer (0: only evict the cache). */
    long long since;
    /* Single JTI only: keep the revocation until then (0: until evicted). */
    double jti_until;
} m8_revt_event;

typedef struct m8_revt_stats {
    size_t jtis, users, cached; /* live entries */
    uint64_t evictions;         /* live entries pushed out by a full window */
    uint64_t recoveries;        /* table cleared after a writer died mid-write */
} m8_revt_stats;

/* Lays out the table if the segment has none yet (every other call does it
 * too, lazily).  Safe to call from several processes. */
M8_INTERNAL void m8_revtable_init(struct m8_shm *shm);

/* The verdict for a verified token: REVOKED when its jti is revoked or its
 * user has a since-time above iat or a watermark above the cached entry's
 * generation; ACTIVE when use_cache and an unexpired cached answer for this
 * jti and user exists (an expired one is deleted); UNKNOWN otherwise. */
M8_INTERNAL m8_revt_verdict m8_revtable_check(struct m8_shm *shm, const char *jti, const char *user,
                                              long long iat, bool use_cache, double now);

/* An active answer from the issuer for (jti, user) at generation (>= 1):
 * REVOKED when a revocation arrived meanwhile (jti, since-time) or the
 * generation is below the user's watermark (doc/wire.md#jti-status-outcomes);
 * otherwise ACTIVE, and the answer is cached for ttl seconds when ttl > 0. */
M8_INTERNAL m8_revt_verdict m8_revtable_record_active(struct m8_shm *shm, const char *jti,
                                                      const char *user, long long iat,
                                                      uint64_t generation, double ttl, double now);

/* Revokes one jti until `until` (0: until evicted) and drops its cached
 * answer. */
M8_INTERNAL void m8_revtable_revoke_jti(struct m8_shm *shm, const char *jti, double until,
                                        double now);

/* Revokes every token of user with iat < since (a since-time only grows;
 * LLONG_MAX refuses every token, e.g. a deleted user) and drops the user's
 * cached answers. */
M8_INTERNAL void m8_revtable_revoke_user(struct m8_shm *shm, const char *user, long long since,
                                         double now);

/* Applies a session.revoked event (doc/wire.md#revocation-table, steps 2-4,
 * atomically): v1 (generation 0) evicts every cached answer of the user; v2
 * goes through the watermark and event-id dedup, then evicts the jti, or the
 * user's answers below the generation.  Additionally a jti is revoked (until jti_until) and
 * a user-wide event sets the since-time.  Returns 1 when applied, 0 when
 * ignored (stale generation or an event id already applied), M8_EINVAL
 * without a user id. */
M8_INTERNAL int m8_revtable_session_revoked(struct m8_shm *shm, const m8_revt_event *ev,
                                            double now);

/* Drops every cached answer of user (user.deleted; watermarks stay). */
M8_INTERNAL void m8_revtable_evict_user(struct m8_shm *shm, const char *user);

/* Drops every cached answer (a gap).  Revocations and watermarks stay. */
M8_INTERNAL void m8_revtable_flush(struct m8_shm *shm);

/* Drops everything, revocations and watermarks included. */
M8_INTERNAL void m8_revtable_clear(struct m8_shm *shm);

M8_INTERNAL void m8_revtable_stats(struct m8_shm *shm, double now, m8_revt_stats *out);

/* Tests only: the first slot of id's probe window in a table of cap slots
 * (M8_REVTABLE_JTIS, _USERS or _CACHE), to build colliding ids. */
M8_INTERNAL size_t m8_revtable_home(struct m8_shm *shm, const char *id, size_t cap);

/* Tests only: where user's record keeps its two event-id counts (napplied,
 * then next_applied), NULL when the table has no record of user: a test
 * writes garbage there as a misbehaving process could. */
M8_INTERNAL uint32_t *m8_revtable_user_counts(struct m8_shm *shm, const char *user);

/* Tests only: when set, called inside every write's critical section, after
 * the table is marked as being written (a child that _exit()s there dies
 * mid-write holding the lock). */
M8_INTERNAL extern void (*m8_revtable_write_hook)(void);

#endif
