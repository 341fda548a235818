/* schema.h - the issuer's tables on PostgreSQL and MariaDB/MySQL, created and
 * migrated at start (doc/issuer.md#storage).
 *
 * Two families of tables share one TABLES_PREFIX (default "auth"):
 *   - fa-auth-m8's own tables, with its names, columns and encodings (UUID
 *     native on PostgreSQL, CHAR(32) hex on MariaDB; enum columns hold the
 *     upper-case member names), so that a fa-auth-m8 database can be taken
 *     over: an existing table is never altered;
 *   - the tables that replace fa-auth-m8's Redis keys, named <prefix>_m8_*:
 *     the refresh allowlist, the access blacklist, the rate-limit windows,
 *     the event outbox, and the schema version.
 *
 * m8_issuer_schema_apply serialises concurrent callers with a lock held in
 * the database (PostgreSQL: a transaction-scoped advisory lock, the whole
 * apply in one transaction; MariaDB: GET_LOCK, since its DDL commits by
 * itself), so several workers or issuer instances may call it at once on a
 * fresh database. */
#ifndef M8_ISSUER_SCHEMA_H
#define M8_ISSUER_SCHEMA_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "db/db.h"
#include "fcgim8.h"

/* The schema version this build creates and understands. */
#define M8_ISSUER_SCHEMA_VERSION 2 /* 2: service accounts, API-key scopes */

/* The default TABLES_PREFIX of the issuer. */
#define M8_ISSUER_PREFIX_DEFAULT "auth"
/* The longest prefix: every derived table, index and constraint name stays
 * within PostgreSQL's 63 bytes. */
#define M8_ISSUER_PREFIX_MAX 24
/* A table name: the prefix, '_' and the longest table's own name. */
#define M8_ISSUER_TABLE_MAX 64
/* How long MariaDB's GET_LOCK waits for another applier, in seconds
 * (PostgreSQL waits for the advisory lock within the statement timeout). */
#define M8_ISSUER_SCHEMA_LOCK_WAIT_S 30

/* True when prefix is usable: a plain identifier (letters, digits, '_', not
 * starting with a digit) of 1 to M8_ISSUER_PREFIX_MAX bytes. */
M8_INTERNAL bool m8_issuer_prefix_valid(const char *prefix);

/* Expands "{p}" in tmpl to prefix into out (the issuer's SQL texts are
 * written with it).  0, M8_EINVAL for an invalid prefix, M8_ETOOBIG when
 * the text does not fit in outlen. */
M8_INTERNAL int m8_issuer_sql(char *out, size_t outlen, const char *tmpl, const char *prefix);

/* Expands "{p}" in tmpl to prefix (NULL = M8_ISSUER_PREFIX_DEFAULT) and runs
 * the statement with m8_db_exec: every issuer module's one way to run SQL.
 * *res (may be NULL) is set to NULL first.  M8_EINVAL for no db or an
 * invalid prefix, M8_ETOOBIG for a text over 4 KiB, else m8_db_exec's code. */
M8_INTERNAL int m8_issuer_exec(m8_db *db, const char *prefix, const char *tmpl,
                               const m8_db_param *p, size_t n, m8_db_result **res);

/* Creates every issuer table, index and seed row that is missing, then
 * records M8_ISSUER_SCHEMA_VERSION; a database already at this version is
 * left alone (a no-op).  prefix NULL = M8_ISSUER_PREFIX_DEFAULT.  Must not be
 * called inside a transaction.  *version_found (may be NULL) receives the
 * version recorded before the call (0 for none).
 * A table that exists already (e.g. made by fa-auth-m8) is never altered,
 * but must have the columns the issuer uses.
 * Returns 0; M8_ECONFIG when the database records a NEWER version than this
 * build knows (err names both), or an existing table lacks a column the
 * issuer uses (err names it); nothing is changed then; M8_EAGAIN when the
 * database is unavailable or another applier held the lock too long; M8_EIO
 * when the database refused a statement (err has its reason); M8_EINVAL for
 * a bad prefix or a transaction in progress.  err (one line) may be NULL. */
M8_INTERNAL int m8_issuer_schema_apply(m8_db *db, const char *prefix, int *version_found, char *err,
                                       size_t errlen);

/* The version recorded in the database into *version (0 when the version
 * table or its row is missing).  0, M8_EIO for a version that is not a
 * number, or an error as m8_db_exec. */
M8_INTERNAL int m8_issuer_schema_version(m8_db *db, const char *prefix, int *version);

/* The i-th table m8_issuer_schema_apply creates, without the prefix
 * ("m8_schema_version", "user", "client_session", ...), or NULL past the
 * last; for checks and tests. */
M8_INTERNAL const char *m8_issuer_schema_table(size_t i);

#endif
