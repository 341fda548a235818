/* revoke.h - the account-wide revocation of the issuer
 * (doc/issuer.md#users-and-profile): what a password, email, role or
 * activation change and a deletion do to a user's sessions in one
 * transaction, the events published after it, the privileged-action audit
 * row, the last-superuser guard, and the failure answers the user routes
 * share. */
#ifndef M8_ISSUER_REVOKE_H
#define M8_ISSUER_REVOKE_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "issuer/outbox.h"
#include "issuer/service.h"

/* The answer to a generation that cannot be bumped any more. */
#define M8_ISSUER_GENERATION_MAX INT64_MAX
/* The detail of a change that would leave no active canonical superuser. */
#define M8_ISSUER_DETAIL_LAST_SU "last_superuser_required"

/* One account-wide change. */
typedef struct m8_issuer_acct {
    /* in */
    const char *user_id;    /* the target, 8-4-4-4-12 lower-case */
    int64_t generation;     /* its auth_generation, read from the locked row */
    const char *actor_id;   /* who asks (the audit row) */
    const char *actor_role; /* the actor's role value */
    const char *client;     /* the actor's address, for the audit log line; NULL = none */
    bool revoke_api_keys;   /* deactivation: every API key of the user revoked */
    bool delete_user;       /* deletion: tombstone, audit "delete", row deleted */
    const char *google_sub; /* deletion of another Google account: its subject
                             * is blocked (identity_block); NULL = none */
    /* out */
    int64_t new_generation;
    size_t sessions; /* session rows deleted */
} m8_issuer_acct;

/* Runs the change inside the caller's open transaction: auth_generation + 1
 * (M8_ETOOBIG at M8_ISSUER_GENERATION_MAX, nothing changed), the user's
 * session rows captured and deleted, each captured JTI blacklisted until its
 * expiry, the refresh allowlist entries removed, the pending "publish" row
 * of <prefix>_revocation_outbox, API keys revoked (revoke_api_keys), the
 * audit row ("edit", or "delete" with the tombstone and the row deletion).
 * now is Unix seconds.  0, M8_ESTATE outside a transaction, or a database
 * error. */
M8_INTERNAL int m8_issuer_acct_revoke(m8_db *db, const char *prefix, m8_issuer_acct *a,
                                      int64_t now);

/* After the commit: appends the v2 user-wide session-revoked event (and
 * user-deleted for a deletion) to the event outbox and marks the outbox row
 * completed, in one transaction (issuer/outbox.h).  A failure is logged and
 * leaves the row pending for the housekeeping replay; the change itself
 * stands.  Returns 0 or the first error. */
M8_INTERNAL int m8_issuer_acct_publish(m8_db *db, const char *prefix, const m8_issuer_acct *a);

/* Appends one privileged-action audit row (action "add", "edit" or
 * "delete") about the user row_pk (table <prefix>_user, target_owner_id the
 * user): m8_issuer_audit_row of issuer/audit.h, which takes any table, the
 * owner and the client address. */
M8_INTERNAL int m8_issuer_audit(m8_db *db, const char *prefix, const char *actor_id,
                                const char *actor_role, const char *action, const char *row_pk);

/* The last-superuser guard, inside the caller's transaction: locks the
 * security_policy row superuser_set (FOR UPDATE), bumps its revision, and
 * counts the active canonical superusers with a locking read into *active. */
M8_INTERNAL int m8_issuer_su_lock(m8_db *db, const char *prefix, int64_t *active);

/* ---- user rows beyond users_db.c ---- */

/* Writes back the mutable columns of u (email, full_name, avatar,
 * hashed_password, provider, role, is_active, email_verified) with
 * is_superuser derived from role (also into u) and updated_at now. */
M8_INTERNAL int m8_issuer_user_save(m8_db *db, const char *prefix, m8_issuer_user *u);

/* The oauth_user_id of user id into out ("" for null). */
M8_INTERNAL int m8_issuer_user_oauth(m8_db *db, const char *prefix, const char *id, char *out,
                                     size_t outlen);

/* Sets the oauth_user_id of user id (NULL = null). */
M8_INTERNAL int m8_issuer_user_set_oauth(m8_db *db, const char *prefix, const char *id,
                                         const char *sub);

/* Answers a failure rc of the route (rolling back an open transaction):
 * M8_EAGAIN -> 503 with M8_ISSUER_DETAIL_DB_DOWN; anything else -> the SDK
 * envelope with status 500 and a reference logged with what.  Returns 0. */
M8_INTERNAL int m8_issuer_fail(m8_request *req, m8_db *db, int rc, const char *what);

/* The SDK envelope {"success":false,"msg","from_error","errors":[{"table",
 * "field_name","error"}],"status_code"} sent with status (the decision of
 * doc/issuer.md#users-and-profile: the HTTP status is the stated one). */
M8_INTERNAL int m8_issuer_envelope(m8_request *req, int status, const char *msg,
                                   const char *from_error, const char *table, const char *field,
                                   const char *error);

#endif
