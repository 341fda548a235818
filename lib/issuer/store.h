/* store.h - the issuer's shared state in the database instead of Redis
 * (doc/issuer.md#storage): fixed-window rate counters, the refresh-token
 * allowlist with its atomic rotation, the access-token blacklist, and the
 * event outbox whose ids every worker and every issuer instance share.
 *
 * Every function takes a handle (one per thread, db.h) and the table prefix
 * (NULL = M8_ISSUER_PREFIX_DEFAULT) of tables m8_issuer_schema_apply made.
 * Times are passed in by the caller: `now` in Unix seconds, `now_us` in
 * microseconds, so expiry is testable without sleeping; an entry whose
 * expiry is not after now counts as absent, as a Redis key past its TTL.
 *
 * Errors: 0; M8_EINVAL for an argument out of its bounds (below); M8_EAGAIN
 * when the database is unavailable (the caller answers as its fail_open /
 * fail_closed setting says); M8_EIO when the database refused a statement
 * (m8_db_last_error says why); M8_ENOMEM. */
#ifndef M8_ISSUER_STORE_H
#define M8_ISSUER_STORE_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "db/db.h"
#include "fcgim8.h"
#include "issuer/schema.h"

/* A jti or user id: 1..64 bytes of printable ASCII (no space). */
#define M8_ISSUER_ID_MAX 64
/* A rate-limit key: 1..320 bytes of UTF-8 without control characters
 * (e.g. "login:attempts:" and an email of up to 255 characters). */
#define M8_ISSUER_RATE_KEY_MAX 320
/* An event's type (printable ASCII) and its payload (UTF-8, no NUL). */
#define M8_ISSUER_EVENT_TYPE_MAX 64
#define M8_ISSUER_EVENT_MAX (64u << 10)
/* The most events one read returns. */
#define M8_ISSUER_EVENT_READ_MAX 1000

/* ---- rate limits: fixed windows (login per email and per IP, refresh per
 * user, API keys) ---- */

/* Counts one hit on key: a window that ended (window end <= now) or a new
 * key starts over at 1 with window end now + window_s; otherwise the count
 * goes up by one.  Atomic across connections.  *count (required) receives
 * the count including this hit; *window_end (may be NULL) the window's end.
 * window_s 1..31622400 (a year). */
M8_INTERNAL int m8_issuer_rate_hit(m8_db *db, const char *prefix, const char *key, size_t keylen,
                                   int64_t window_s, int64_t now, int64_t *count,
                                   int64_t *window_end);

/* Forgets key's window (a successful login clears the per-email counter). */
M8_INTERNAL int m8_issuer_rate_clear(m8_db *db, const char *prefix, const char *key, size_t keylen);

/* ---- the refresh allowlist (one entry per live refresh token) ---- */

/* Allows jti (of user_id) until expires_at; replaces an entry of that jti. */
M8_INTERNAL int m8_issuer_allow_put(m8_db *db, const char *prefix, const char *jti,
                                    const char *user_id, int64_t expires_at);

/* *present = whether jti is allowed at now. */
M8_INTERNAL int m8_issuer_allow_has(m8_db *db, const char *prefix, const char *jti, int64_t now,
                                    bool *present);

/* The rotation of a refresh: removes old_jti and allows new_jti until
 * expires_at, in one transaction (the caller's, when one is open; else its
 * own).  M8_ENOTFOUND, with nothing changed, when old_jti is not allowed at
 * now (already rotated by a concurrent refresh, a replay, or revoked):
 * exactly one of two concurrent rotations of the same old_jti succeeds. */
M8_INTERNAL int m8_issuer_allow_rotate(m8_db *db, const char *prefix, const char *old_jti,
                                       const char *new_jti, const char *user_id, int64_t expires_at,
                                       int64_t now);

/* Removes jti's entry (logout); *removed (may be NULL) says whether one was
 * there. */
M8_INTERNAL int m8_issuer_allow_remove(m8_db *db, const char *prefix, const char *jti,
                                       bool *removed);

/* Removes every entry of user_id (revocation of all the user's sessions). */
M8_INTERNAL int m8_issuer_allow_remove_user(m8_db *db, const char *prefix, const char *user_id);

/* ---- the access blacklist ---- */

/* Blacklists jti until expires_at (the access token's exp); an existing
 * entry keeps the later of the two expiries. */
M8_INTERNAL int m8_issuer_blacklist_put(m8_db *db, const char *prefix, const char *jti,
                                        int64_t expires_at);

/* *listed = whether jti is blacklisted at now. */
M8_INTERNAL int m8_issuer_blacklist_has(m8_db *db, const char *prefix, const char *jti, int64_t now,
                                        bool *listed);

/* ---- the event outbox: the ids of the signed SSE stream ---- */

/* Appends an event; *id (may be NULL) receives its id, assigned by the
 * database, larger than every id committed before.  Call it outside a long
 * transaction (readers hold back rows behind an uncommitted id, see
 * m8_issuer_event_read). */
M8_INTERNAL int m8_issuer_event_append(m8_db *db, const char *prefix, const char *type,
                                       const char *payload, size_t payload_len, int64_t now_us,
                                       int64_t *id);

typedef struct m8_issuer_event {
    int64_t id;
    int64_t created_us; /* the appender's now_us */
    const char *type;   /* NUL-terminated, borrowed from the batch */
    const char *payload;
    size_t payload_len;
} m8_issuer_event;

typedef struct m8_issuer_events {
    m8_issuer_event *ev; /* n events in id order */
    size_t n;
    int64_t next_after; /* pass as after_id to the next read */
    size_t skipped;     /* ids given up as lost (a rolled-back append) */
    bool held;          /* rows are held back behind a gap that is still young */
    m8_db_result *res_; /* owns the strings */
} m8_issuer_events;

/* Reads up to max (1..M8_ISSUER_EVENT_READ_MAX) events with ids after
 * after_id, in id order, into *out (free with m8_issuer_events_free).
 *
 * Ids come from a sequence (PostgreSQL identity, MariaDB AUTO_INCREMENT):
 * they increase in the order appends START, but appends commit in any
 * order, and a rolled-back append leaves a hole for ever.  So a missing id
 * (the next row is not id+1) may be an append still in flight: the read
 * stops before it, sets held, and returns what came before, unless the row
 * after the hole was appended more than grace_us before now_us, in which
 * case the hole is taken as permanent (counted in skipped) and the read goes
 * on.  Readers thus never skip an event committed within grace_us of its
 * successor. */
M8_INTERNAL int m8_issuer_event_read(m8_db *db, const char *prefix, int64_t after_id, size_t max,
                                     int64_t now_us, int64_t grace_us, m8_issuer_events *out);
M8_INTERNAL void m8_issuer_events_free(m8_issuer_events *out);

/* The largest id appended so far (0 when none): where a new tail starts. */
M8_INTERNAL int m8_issuer_event_last_id(m8_db *db, const char *prefix, int64_t *id);

/* The smallest id still kept (0 when none): a Last-Event-ID below it minus
 * one has lost events (a stream signals the gap). */
M8_INTERNAL int m8_issuer_event_first_id(m8_db *db, const char *prefix, int64_t *id);

/* ---- housekeeping ---- */

/* Deletes expired allowlist and blacklist entries and ended rate windows
 * (at now), and events appended before keep_events_before_us, always
 * keeping the newest event so that MariaDB servers that recompute
 * AUTO_INCREMENT at restart never hand out an id again. */
M8_INTERNAL int m8_issuer_store_reap(m8_db *db, const char *prefix, int64_t now,
                                     int64_t keep_events_before_us);

#endif
