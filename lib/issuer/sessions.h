/* sessions.h - the issuer's session rows (<prefix>_client_session,
 * doc/issuer.md#login-refresh-and-logout): the one row per user written at
 * login and at each refresh, the lineage check of a refresh, deletion by
 * jti (logout), the v1 revocation of every session of a user (a refresh
 * token reused in a race), and the v1 `session-revoked` event of the
 * outbox.
 *
 * Every function takes the request's handle and the table prefix (NULL =
 * M8_ISSUER_PREFIX_DEFAULT); user ids are 8-4-4-4-12 UUIDs (any case).
 * Errors as store.h: 0; M8_EINVAL for an argument out of bounds; M8_EAGAIN
 * when the database is unavailable; M8_EIO when it refused a statement;
 * M8_ENOMEM. */
#ifndef M8_ISSUER_SESSIONS_H
#define M8_ISSUER_SESSIONS_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "db/db.h"
#include "fcgim8.h"

/* The SSE event name stored as the outbox row's type, and the payload's
 * event_type, of a session revocation. */
#define M8_ISSUER_EV_SESSION_REVOKED "session-revoked"

/* What a login or a refresh writes into the user's session row. */
typedef struct m8_issuer_session {
    const char *user_id;        /* the user's id */
    const char *provider;       /* the wire value: "password" or "google" */
    const char *jti;            /* the access token's jti (= the refresh token's) */
    const char *refresh_tok;    /* the refresh JWT: only its SHA-256 is stored */
    size_t refresh_len;         /* its length */
    int64_t jwt_expires_at;     /* Unix seconds: now + ACCESS_TOKEN_EXPIRE_MINUTES */
    int64_t refresh_expires_at; /* Unix seconds: now + REFRESH_TOKEN_EXPIRE_MINUTES */
    int64_t auth_generation;    /* the user's current auth_generation */
} m8_issuer_session;

/* Writes the user's one session row: updates every row of s->user_id in
 * place (new jti, refresh hash, expiries, provider, generation, revoked
 * false, updated_at now), or inserts one (a fresh UUID4 id) when the user
 * has none.  Run it inside a transaction that holds the user's row lock
 * (two logins of one user at once would otherwise insert two rows). */
M8_INTERNAL int m8_issuer_session_upsert(m8_db *db, const char *prefix, const m8_issuer_session *s);

/* The refresh lineage check: *current = a row of user_id with jwt_jti ==
 * jti exists and its auth_generation equals generation (a NULL stamp is
 * stale). */
M8_INTERNAL int m8_issuer_session_current(m8_db *db, const char *prefix, const char *user_id,
                                          const char *jti, int64_t generation, bool *current);

/* Deletes the rows whose jwt_jti is jti; *deleted (may be NULL) receives
 * how many went. */
M8_INTERNAL int m8_issuer_session_delete_jti(m8_db *db, const char *prefix, const char *jti,
                                             int64_t *deleted);

/* Appends the v1 event {"event_type":"session.revoked","version":"v1",
 * "user_id":...,"jti":...} to the outbox; jti NULL writes "jti":null (every
 * session of the user).  now_us: microseconds since the epoch. */
M8_INTERNAL int m8_issuer_session_event_v1(m8_db *db, const char *prefix, const char *user_id,
                                           const char *jti, int64_t now_us);

/* The v1 revocation of every session of user_id (the refresh-reuse branch):
 * deletes the user's rows (one transaction, the caller must not hold one),
 * then blacklists each of their jtis until its jwt_expires_at (entries
 * already expired at now are skipped), removes the user's refresh
 * allowlist entries, and appends one v1 event with jti null.  Stops at the
 * first failure; *revoked (may be NULL) receives the rows deleted. */
M8_INTERNAL int m8_issuer_sessions_revoke_user(m8_db *db, const char *prefix, const char *user_id,
                                               int64_t now, int64_t *revoked);

#endif
