/* audit.h - the issuer's privileged-action audit log and its /security/
 * routes (doc/issuer.md#audit-and-security-routes).
 *
 * Every privileged action appends exactly one row to
 * <prefix>_privileged_action_audit inside the transaction of the change it
 * records: who (actor id and role), what (add, edit, delete), which table
 * and row, whose (the owner of the row), when.  Never a secret: a row holds
 * ids, a role, a table name and, for a purge, its cutoff time.  The client
 * address is not a column of fa-auth-m8's table (a table taken over is never
 * altered): it goes to the log line event=audit, which carries the row's id. */
#ifndef M8_ISSUER_AUDIT_H
#define M8_ISSUER_AUDIT_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "auth/jws_sign.h" /* M8_UUID_STR_LEN */
#include "db/db.h"
#include "fcgim8.h"

/* GET /security/audit-log: the query bounds (422 outside them). */
#define M8_ISSUER_AUDIT_LIMIT_MAX 1000
#define M8_ISSUER_AUDIT_SKIP_MAX 1000000000LL
/* The /security/audit-log and purge limiters: per user and route, as the
 * superuser probe's (doc/issuer.md#audit-and-security-routes). */
#define M8_ISSUER_AUDIT_RATE_LIMIT 30
#define M8_ISSUER_AUDIT_RATE_WINDOW_S 60
/* Batches of one purge run at most this many times (each deletes up to the
 * batch size); a purge that has more to do stops and says so in the log. */
#define M8_ISSUER_PURGE_MAX_BATCHES 100000
/* A purge starts no new batch once it has run this many seconds (the table
 * has no index on its time column: each batch may scan it), so that one
 * request never holds a worker thread for minutes; a later purge removes
 * the rest.  M8_ISSUER_PURGE_SECONDS (0..3600) overrides it, for tests. */
#define M8_ISSUER_PURGE_BUDGET_S 10

/* One audit row. */
typedef struct m8_issuer_audit_entry {
    const char *actor_id;   /* the actor's user id (any UUID form); required */
    const char *actor_role; /* the actor's role value; NULL = "user" */
    const char *action;     /* "add", "edit" or "delete" */
    const char *table;      /* the table, without the prefix ("user", "api_key") */
    const char *row_pk;     /* the row (at most 128 bytes) */
    const char *owner;      /* target_owner_id; NULL = null */
    const char *client;     /* the client address, for the log line; NULL = none */
} m8_issuer_audit_entry;

/* Appends the row e inside the caller's transaction (any statement of it).
 * Its id is a time-ordered UUID (version 7), so that rows written within one
 * second (MariaDB's DATETIME) still sort newest first by (created_at, id).
 * id_out (may be NULL) receives the id (8-4-4-4-12).  0, M8_EINVAL for a
 * missing or invalid field, or a database error. */
M8_INTERNAL int m8_issuer_audit_row(m8_db *db, const char *prefix, const m8_issuer_audit_entry *e,
                                    char id_out[M8_UUID_STR_LEN + 1]);

/* A version 7 UUID (48-bit Unix milliseconds, then the sub-millisecond
 * microseconds and random bits) in the 8-4-4-4-12 lower-case form. */
M8_INTERNAL void m8_issuer_uuid7(char out[M8_UUID_STR_LEN + 1]);

/* The seconds of a purge window ("1w" 7 days, "1m" 30, "3m" 90, "6m" 180,
 * "1y" 365), or -1 for another text. */
M8_INTERNAL long long m8_issuer_purge_window_seconds(const char *window);

/* The route handlers are declared in service.h. */

#endif
