/* schema.c - the issuer's tables, created and migrated at start (schema.h,
 * doc/issuer.md#storage).  All the DDL of both engines is in this file. */
#include "issuer/schema.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------ DDL */

/* PostgreSQL sessions run in UTC (db/pg.c), so TIMESTAMPTZ columns read back
 * as UTC; MariaDB's DATETIME is what fa-auth-m8 (SQLAlchemy) creates there. */
#define PG_TS "TIMESTAMPTZ"
#define PG_STAMPS                                                                                  \
    "created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP, "                                  \
    "updated_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP, "
#define MY_STAMPS                                                                                  \
    "created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, "                                     \
    "updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP, "
#define MY_TAIL ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
/* Keys compared byte for byte (jti, rate-limit keys). */
#define MY_ASCII "CHARACTER SET ascii COLLATE ascii_bin"
#define PG_PROVIDER "VARCHAR(8) NOT NULL CHECK (provider IN ('PASSWORD', 'GOOGLE'))"
#define MY_PROVIDER "ENUM('PASSWORD', 'GOOGLE') NOT NULL"

typedef struct table_ddl {
    const char *name;  /* without the prefix */
    const char *pg[4]; /* the statements that create it, NULL-terminated */
    const char *my[4];
} table_ddl;

/* In creation order (foreign keys point backwards).  Index and constraint
 * names start with the table's name so that two prefixes can share one
 * database; ck_user_superuser_role_consistency and ck_ratelimit_has_owner
 * keep fa-auth-m8's names. */
static const table_ddl g_tables[] = {
    {"m8_schema_version",
     {"CREATE TABLE IF NOT EXISTS {p}_m8_schema_version (component VARCHAR(32) NOT NULL PRIMARY "
      "KEY, version INTEGER NOT NULL, applied_at BIGINT NOT NULL)"},
     {"CREATE TABLE IF NOT EXISTS {p}_m8_schema_version (component VARCHAR(32) NOT NULL PRIMARY "
      "KEY, version INT NOT NULL, applied_at BIGINT NOT NULL" MY_TAIL}},
    {"user",
     {"CREATE TABLE IF NOT EXISTS {p}_user (id UUID NOT NULL PRIMARY KEY, " PG_STAMPS
      "provider " PG_PROVIDER ", email VARCHAR(255) NOT NULL CONSTRAINT {p}_user_uq_email UNIQUE, "
      "full_name VARCHAR(100), avatar VARCHAR(255), is_active BOOLEAN NOT NULL DEFAULT TRUE, "
      "email_verified BOOLEAN NOT NULL DEFAULT FALSE, is_superuser BOOLEAN NOT NULL DEFAULT FALSE, "
      "role VARCHAR(10) NOT NULL DEFAULT 'USER' CHECK (role IN ('SUPERADMIN', 'ADMIN', 'WRITER', "
      "'READER', 'USER')), hashed_password VARCHAR(255), oauth_user_id VARCHAR(256) CONSTRAINT "
      "{p}_user_uq_oauth_user_id UNIQUE, telegram_id VARCHAR(256) CONSTRAINT "
      "{p}_user_uq_telegram_id UNIQUE, tenant_id UUID, auth_generation BIGINT NOT NULL DEFAULT 1, "
      "CONSTRAINT ck_user_superuser_role_consistency CHECK (is_superuser = (role = "
      "'SUPERADMIN')))",
      "CREATE INDEX IF NOT EXISTS {p}_user_ix_tenant_id ON {p}_user (tenant_id)"},
     {"CREATE TABLE IF NOT EXISTS {p}_user (id CHAR(32) NOT NULL PRIMARY KEY, " MY_STAMPS
      "provider " MY_PROVIDER ", email VARCHAR(255) NOT NULL, full_name VARCHAR(100), "
      "avatar VARCHAR(255), is_active BOOL NOT NULL DEFAULT TRUE, "
      "email_verified BOOL NOT NULL DEFAULT FALSE, is_superuser BOOL NOT NULL DEFAULT FALSE, "
      "role ENUM('SUPERADMIN', 'ADMIN', 'WRITER', 'READER', 'USER') NOT NULL DEFAULT 'USER', "
      "hashed_password VARCHAR(255), oauth_user_id VARCHAR(256), telegram_id VARCHAR(256), "
      "tenant_id CHAR(32), auth_generation BIGINT NOT NULL DEFAULT 1, "
      "UNIQUE KEY {p}_user_uq_email (email), UNIQUE KEY {p}_user_uq_oauth_user_id "
      "(oauth_user_id), UNIQUE KEY {p}_user_uq_telegram_id (telegram_id), "
      "KEY {p}_user_ix_tenant_id (tenant_id), CONSTRAINT ck_user_superuser_role_consistency "
      "CHECK (is_superuser = (role = 'SUPERADMIN'))" MY_TAIL}},
    {"client_session",
     {"CREATE TABLE IF NOT EXISTS {p}_client_session (id VARCHAR(36) NOT NULL PRIMARY "
      "KEY, " PG_STAMPS
      "user_id UUID NOT NULL REFERENCES {p}_user (id) ON DELETE CASCADE, provider " PG_PROVIDER
      ", jwt_jti VARCHAR(128) NOT NULL, refresh_token_hash VARCHAR(128) NOT NULL, "
      "jwt_expires_at " PG_TS " NOT NULL, refresh_expires_at " PG_TS " NOT NULL, "
      "revoked BOOLEAN NOT NULL DEFAULT FALSE, external_access_token VARCHAR(2048), "
      "external_refresh_token VARCHAR(2048), external_token_expires_at " PG_TS ", "
      "auth_generation BIGINT)",
      "CREATE INDEX IF NOT EXISTS {p}_client_session_ix_user_id ON {p}_client_session (user_id)",
      "CREATE INDEX IF NOT EXISTS {p}_client_session_ix_jwt_jti ON {p}_client_session (jwt_jti)"},
     {"CREATE TABLE IF NOT EXISTS {p}_client_session (id VARCHAR(36) NOT NULL PRIMARY "
      "KEY, " MY_STAMPS "user_id CHAR(32) NOT NULL, provider " MY_PROVIDER
      ", jwt_jti VARCHAR(128) NOT NULL, "
      "refresh_token_hash VARCHAR(128) NOT NULL, jwt_expires_at DATETIME NOT NULL, "
      "refresh_expires_at DATETIME NOT NULL, revoked BOOL NOT NULL DEFAULT FALSE, "
      "external_access_token VARCHAR(2048), external_refresh_token VARCHAR(2048), "
      "external_token_expires_at DATETIME, auth_generation BIGINT, "
      "KEY {p}_client_session_ix_user_id (user_id), KEY {p}_client_session_ix_jwt_jti (jwt_jti), "
      "CONSTRAINT {p}_client_session_fk_user FOREIGN KEY (user_id) REFERENCES {p}_user (id) "
      "ON DELETE CASCADE" MY_TAIL}},
    {"api_key",
     {"CREATE TABLE IF NOT EXISTS {p}_api_key (id UUID NOT NULL PRIMARY KEY, " PG_STAMPS
      "name VARCHAR(100) NOT NULL, expires_at " PG_TS ", revoked BOOLEAN NOT NULL DEFAULT FALSE, "
      "key_hash VARCHAR(128) NOT NULL CONSTRAINT {p}_api_key_uq_key_hash UNIQUE, "
      "user_id UUID NOT NULL REFERENCES {p}_user (id) ON DELETE CASCADE, last_used_at " PG_TS ", "
      "access_mode VARCHAR(10) NOT NULL DEFAULT 'READ_ONLY' CHECK (access_mode IN ('READ_ONLY', "
      "'READ_WRITE')))",
      "CREATE INDEX IF NOT EXISTS {p}_api_key_ix_user_id ON {p}_api_key (user_id)"},
     {"CREATE TABLE IF NOT EXISTS {p}_api_key (id CHAR(32) NOT NULL PRIMARY KEY, " MY_STAMPS
      "name VARCHAR(100) NOT NULL, expires_at DATETIME, revoked BOOL NOT NULL DEFAULT FALSE, "
      "key_hash VARCHAR(128) NOT NULL, user_id CHAR(32) NOT NULL, last_used_at DATETIME, "
      "access_mode ENUM('READ_ONLY', 'READ_WRITE') NOT NULL DEFAULT 'READ_ONLY', "
      "UNIQUE KEY {p}_api_key_uq_key_hash (key_hash), KEY {p}_api_key_ix_user_id (user_id), "
      "CONSTRAINT {p}_api_key_fk_user FOREIGN KEY (user_id) REFERENCES {p}_user (id) "
      "ON DELETE CASCADE" MY_TAIL}},
    {"api_key_audiences",
     {"CREATE TABLE IF NOT EXISTS {p}_api_key_audiences (api_key_id UUID NOT NULL REFERENCES "
      "{p}_api_key (id) ON DELETE CASCADE, audience_id VARCHAR(255) NOT NULL, created_at " PG_TS
      " NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (api_key_id, audience_id))"},
     {"CREATE TABLE IF NOT EXISTS {p}_api_key_audiences (api_key_id CHAR(32) NOT NULL, "
      "audience_id VARCHAR(255) NOT NULL, created_at DATETIME NOT NULL DEFAULT "
      "CURRENT_TIMESTAMP, PRIMARY KEY (api_key_id, audience_id), CONSTRAINT "
      "{p}_api_key_audiences_fk_key FOREIGN KEY (api_key_id) REFERENCES {p}_api_key (id) "
      "ON DELETE CASCADE" MY_TAIL}},
    /* not fa-auth-m8's: the scopes of a key (doc/issuer.md#api-key-scopes-and-format) */
    {"api_key_scopes",
     {"CREATE TABLE IF NOT EXISTS {p}_api_key_scopes (api_key_id UUID NOT NULL REFERENCES "
      "{p}_api_key (id) ON DELETE CASCADE, scope VARCHAR(64) NOT NULL, created_at " PG_TS
      " NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (api_key_id, scope))"},
     {"CREATE TABLE IF NOT EXISTS {p}_api_key_scopes (api_key_id CHAR(32) NOT NULL, "
      "scope VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, "
      "PRIMARY KEY (api_key_id, scope), CONSTRAINT {p}_api_key_scopes_fk_key FOREIGN KEY "
      "(api_key_id) REFERENCES {p}_api_key (id) ON DELETE CASCADE" MY_TAIL}},
    {"rate_limit",
     {"CREATE TABLE IF NOT EXISTS {p}_rate_limit (id SERIAL PRIMARY KEY, api_key_id UUID "
      "REFERENCES {p}_api_key (id) ON DELETE CASCADE, user_id UUID REFERENCES {p}_user (id) ON "
      "DELETE CASCADE, period VARCHAR(6) NOT NULL CHECK (period IN ('MINUTE', 'HOUR', 'DAY', "
      "'MONTH')), \"limit\" INTEGER NOT NULL CHECK (\"limit\" > 0), CONSTRAINT "
      "ck_ratelimit_has_owner CHECK (api_key_id IS NOT NULL OR user_id IS NOT NULL), "
      "CONSTRAINT {p}_rate_limit_uq_key_period UNIQUE (api_key_id, period), "
      "CONSTRAINT {p}_rate_limit_uq_user_period UNIQUE (user_id, period))"},
     {"CREATE TABLE IF NOT EXISTS {p}_rate_limit (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
      "api_key_id CHAR(32), user_id CHAR(32), period ENUM('MINUTE', 'HOUR', 'DAY', 'MONTH') NOT "
      "NULL, `limit` INT NOT NULL CHECK (`limit` > 0), CONSTRAINT ck_ratelimit_has_owner CHECK "
      "(api_key_id IS NOT NULL OR user_id IS NOT NULL), UNIQUE KEY {p}_rate_limit_uq_key_period "
      "(api_key_id, period), UNIQUE KEY {p}_rate_limit_uq_user_period (user_id, period), "
      "CONSTRAINT {p}_rate_limit_fk_key FOREIGN KEY (api_key_id) REFERENCES {p}_api_key (id) ON "
      "DELETE CASCADE, CONSTRAINT {p}_rate_limit_fk_user FOREIGN KEY (user_id) REFERENCES "
      "{p}_user (id) ON DELETE CASCADE" MY_TAIL}},
    {"tombstone",
     {"CREATE TABLE IF NOT EXISTS {p}_tombstone (user_id UUID NOT NULL PRIMARY KEY, "
      "terminal_generation BIGINT NOT NULL, " PG_STAMPS "CHECK (terminal_generation > 0))"},
     {"CREATE TABLE IF NOT EXISTS {p}_tombstone (user_id CHAR(32) NOT NULL PRIMARY KEY, "
      "terminal_generation BIGINT NOT NULL, " MY_STAMPS "CHECK (terminal_generation > 0)" MY_TAIL}},
    {"revocation_outbox",
     {"CREATE TABLE IF NOT EXISTS {p}_revocation_outbox (id UUID NOT NULL PRIMARY KEY, " PG_STAMPS
      "user_id UUID NOT NULL, auth_generation BIGINT NOT NULL, effect_type VARCHAR(16) NOT NULL, "
      "target_digest VARCHAR(128) NOT NULL, payload JSON NOT NULL, status VARCHAR(16) NOT NULL "
      "DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, lease_until " PG_TS ", "
      "next_attempt_at " PG_TS ", completed_at " PG_TS ", CONSTRAINT "
      "{p}_revocation_outbox_uq_effect_target UNIQUE (user_id, auth_generation, effect_type, "
      "target_digest))",
      "CREATE INDEX IF NOT EXISTS {p}_revocation_outbox_ix_user_id ON {p}_revocation_outbox "
      "(user_id)",
      "CREATE INDEX IF NOT EXISTS {p}_revocation_outbox_ix_status ON {p}_revocation_outbox "
      "(status)"},
     {"CREATE TABLE IF NOT EXISTS {p}_revocation_outbox (id CHAR(32) NOT NULL PRIMARY "
      "KEY, " MY_STAMPS
      "user_id CHAR(32) NOT NULL, auth_generation BIGINT NOT NULL, effect_type VARCHAR(16) NOT "
      "NULL, target_digest VARCHAR(128) NOT NULL, payload JSON NOT NULL, status VARCHAR(16) NOT "
      "NULL DEFAULT 'pending', attempts INT NOT NULL DEFAULT 0, lease_until DATETIME, "
      "next_attempt_at DATETIME, completed_at DATETIME, UNIQUE KEY "
      "{p}_revocation_outbox_uq_effect_target (user_id, auth_generation, effect_type, "
      "target_digest), KEY {p}_revocation_outbox_ix_user_id (user_id), "
      "KEY {p}_revocation_outbox_ix_status (status)" MY_TAIL}},
    {"security_policy",
     {"CREATE TABLE IF NOT EXISTS {p}_security_policy (policy_key VARCHAR(64) NOT NULL PRIMARY "
      "KEY, revision BIGINT NOT NULL DEFAULT 0, updated_at " PG_TS
      " NOT NULL DEFAULT CURRENT_TIMESTAMP)"},
     {"CREATE TABLE IF NOT EXISTS {p}_security_policy (policy_key VARCHAR(64) NOT NULL PRIMARY "
      "KEY, revision BIGINT NOT NULL DEFAULT 0, updated_at DATETIME NOT NULL DEFAULT "
      "CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP" MY_TAIL}},
    {"privileged_action_audit",
     {"CREATE TABLE IF NOT EXISTS {p}_privileged_action_audit (id UUID NOT NULL PRIMARY KEY, "
      "created_at " PG_TS " NOT NULL DEFAULT CURRENT_TIMESTAMP, actor_user_id UUID NOT NULL, "
      "actor_role VARCHAR(32) NOT NULL, action VARCHAR(8) NOT NULL CHECK (action IN ('add', "
      "'edit', 'delete')), table_name VARCHAR(128) NOT NULL, row_pk VARCHAR(128) NOT NULL, "
      "target_owner_id VARCHAR(128))",
      "CREATE INDEX IF NOT EXISTS {p}_privileged_action_audit_ix_actor ON "
      "{p}_privileged_action_audit (actor_user_id)"},
     {"CREATE TABLE IF NOT EXISTS {p}_privileged_action_audit (id CHAR(32) NOT NULL PRIMARY KEY, "
      "created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, actor_user_id CHAR(32) NOT NULL, "
      "actor_role VARCHAR(32) NOT NULL, action ENUM('add', 'edit', 'delete') NOT NULL, "
      "table_name VARCHAR(128) NOT NULL, row_pk VARCHAR(128) NOT NULL, "
      "target_owner_id VARCHAR(128), KEY {p}_privileged_action_audit_ix_actor "
      "(actor_user_id)" MY_TAIL}},
    {"identity_block",
     {"CREATE TABLE IF NOT EXISTS {p}_identity_block (identity_digest VARCHAR(64) NOT NULL "
      "PRIMARY KEY, user_id UUID NOT NULL, created_at " PG_TS
      " NOT NULL DEFAULT CURRENT_TIMESTAMP)",
      "CREATE INDEX IF NOT EXISTS {p}_identity_block_ix_user_id ON {p}_identity_block (user_id)"},
     {"CREATE TABLE IF NOT EXISTS {p}_identity_block (identity_digest VARCHAR(64) NOT NULL "
      "PRIMARY KEY, user_id CHAR(32) NOT NULL, created_at DATETIME NOT NULL DEFAULT "
      "CURRENT_TIMESTAMP, KEY {p}_identity_block_ix_user_id (user_id)" MY_TAIL}},
    /* ---- what replaces fa-auth-m8's Redis keys; times are Unix seconds
     * (microseconds for created_us) given by the caller ---- */
    {"m8_refresh_allow",
     {"CREATE TABLE IF NOT EXISTS {p}_m8_refresh_allow (jti VARCHAR(64) COLLATE \"C\" NOT NULL "
      "PRIMARY KEY, user_id VARCHAR(64) COLLATE \"C\" NOT NULL, expires_at BIGINT NOT NULL)",
      "CREATE INDEX IF NOT EXISTS {p}_m8_refresh_allow_ix_user ON {p}_m8_refresh_allow (user_id)",
      "CREATE INDEX IF NOT EXISTS {p}_m8_refresh_allow_ix_exp ON {p}_m8_refresh_allow "
      "(expires_at)"},
     {"CREATE TABLE IF NOT EXISTS {p}_m8_refresh_allow (jti VARCHAR(64) " MY_ASCII " NOT NULL "
      "PRIMARY KEY, user_id VARCHAR(64) " MY_ASCII " NOT NULL, expires_at BIGINT NOT NULL, "
      "KEY {p}_m8_refresh_allow_ix_user (user_id), KEY {p}_m8_refresh_allow_ix_exp "
      "(expires_at)" MY_TAIL}},
    {"m8_access_blacklist",
     {"CREATE TABLE IF NOT EXISTS {p}_m8_access_blacklist (jti VARCHAR(64) COLLATE \"C\" NOT NULL "
      "PRIMARY KEY, expires_at BIGINT NOT NULL)",
      "CREATE INDEX IF NOT EXISTS {p}_m8_access_blacklist_ix_exp ON {p}_m8_access_blacklist "
      "(expires_at)"},
     {"CREATE TABLE IF NOT EXISTS {p}_m8_access_blacklist (jti VARCHAR(64) " MY_ASCII " NOT NULL "
      "PRIMARY KEY, expires_at BIGINT NOT NULL, KEY {p}_m8_access_blacklist_ix_exp "
      "(expires_at)" MY_TAIL}},
    {"m8_rate_window",
     {"CREATE TABLE IF NOT EXISTS {p}_m8_rate_window (rkey VARCHAR(320) COLLATE \"C\" NOT NULL "
      "PRIMARY KEY, hits BIGINT NOT NULL, window_end BIGINT NOT NULL)",
      "CREATE INDEX IF NOT EXISTS {p}_m8_rate_window_ix_end ON {p}_m8_rate_window (window_end)"},
     {"CREATE TABLE IF NOT EXISTS {p}_m8_rate_window (rkey VARBINARY(320) NOT NULL PRIMARY KEY, "
      "hits BIGINT NOT NULL, window_end BIGINT NOT NULL, KEY {p}_m8_rate_window_ix_end "
      "(window_end)" MY_TAIL}},
    {"m8_event_outbox",
     {"CREATE TABLE IF NOT EXISTS {p}_m8_event_outbox (id BIGINT GENERATED ALWAYS AS IDENTITY "
      "PRIMARY KEY, created_us BIGINT NOT NULL, event_type VARCHAR(64) NOT NULL, payload TEXT NOT "
      "NULL)"},
     {"CREATE TABLE IF NOT EXISTS {p}_m8_event_outbox (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY "
      "KEY, created_us BIGINT NOT NULL, event_type VARCHAR(64) NOT NULL, payload MEDIUMTEXT NOT "
      "NULL" MY_TAIL}},
    /* SSO (doc/issuer.md#sso-oidc-and-google): the login sessions and auth
     * codes of fa-auth-m8's Redis, and the generic provider's identities */
    {"m8_oauth_state",
     {"CREATE TABLE IF NOT EXISTS {p}_m8_oauth_state (state VARCHAR(64) COLLATE \"C\" NOT NULL "
      "PRIMARY KEY, flow VARCHAR(16) NOT NULL, payload TEXT NOT NULL, expires_at BIGINT NOT NULL)",
      "CREATE INDEX IF NOT EXISTS {p}_m8_oauth_state_ix_exp ON {p}_m8_oauth_state (expires_at)"},
     {"CREATE TABLE IF NOT EXISTS {p}_m8_oauth_state (state VARCHAR(64) " MY_ASCII " NOT NULL "
      "PRIMARY KEY, flow VARCHAR(16) NOT NULL, payload TEXT NOT NULL, expires_at BIGINT NOT NULL, "
      "KEY {p}_m8_oauth_state_ix_exp (expires_at)" MY_TAIL}},
    {"m8_auth_code",
     {"CREATE TABLE IF NOT EXISTS {p}_m8_auth_code (code VARCHAR(36) COLLATE \"C\" NOT NULL "
      "PRIMARY KEY, payload TEXT NOT NULL, expires_at BIGINT NOT NULL)",
      "CREATE INDEX IF NOT EXISTS {p}_m8_auth_code_ix_exp ON {p}_m8_auth_code (expires_at)"},
     {"CREATE TABLE IF NOT EXISTS {p}_m8_auth_code (code VARCHAR(36) " MY_ASCII " NOT NULL "
      "PRIMARY KEY, payload TEXT NOT NULL, expires_at BIGINT NOT NULL, "
      "KEY {p}_m8_auth_code_ix_exp (expires_at)" MY_TAIL}},
    {"m8_oidc_identity",
     {"CREATE TABLE IF NOT EXISTS {p}_m8_oidc_identity (issuer VARCHAR(255) COLLATE \"C\" NOT "
      "NULL, sub VARCHAR(255) COLLATE \"C\" NOT NULL, user_id VARCHAR(36) NOT NULL, "
      "created_at BIGINT NOT NULL, PRIMARY KEY (issuer, sub))",
      "CREATE INDEX IF NOT EXISTS {p}_m8_oidc_identity_ix_user ON {p}_m8_oidc_identity "
      "(user_id)"},
     {"CREATE TABLE IF NOT EXISTS {p}_m8_oidc_identity (issuer VARCHAR(255) " MY_ASCII
      " NOT NULL, sub VARCHAR(255) " MY_ASCII " NOT NULL, user_id VARCHAR(36) NOT NULL, "
      "created_at BIGINT NOT NULL, PRIMARY KEY (issuer, sub), "
      "KEY {p}_m8_oidc_identity_ix_user (user_id)" MY_TAIL}},
    /* version 2: a service account is a user row plus this row
     * (doc/issuer.md#service-accounts-and-client-credentials) */
    {"service_account",
     {"CREATE TABLE IF NOT EXISTS {p}_service_account (user_id UUID NOT NULL PRIMARY KEY "
      "REFERENCES {p}_user (id) ON DELETE CASCADE, name VARCHAR(64) NOT NULL CONSTRAINT "
      "{p}_service_account_uq_name UNIQUE, description VARCHAR(255), scopes VARCHAR(1024) NOT "
      "NULL DEFAULT '', secret_hash CHAR(64) NOT NULL, created_by UUID, " PG_STAMPS
      "deactivated_at " PG_TS ")"},
     {"CREATE TABLE IF NOT EXISTS {p}_service_account (user_id CHAR(32) NOT NULL PRIMARY KEY, "
      "name VARCHAR(64) NOT NULL, description VARCHAR(255), scopes VARCHAR(1024) NOT NULL "
      "DEFAULT '', secret_hash CHAR(64) " MY_ASCII " NOT NULL, created_by CHAR(32), " MY_STAMPS
      "deactivated_at DATETIME, UNIQUE KEY {p}_service_account_uq_name (name), CONSTRAINT "
      "{p}_service_account_fk_user FOREIGN KEY (user_id) REFERENCES {p}_user (id) ON DELETE "
      "CASCADE" MY_TAIL}},
};
#define NTABLES (sizeof g_tables / sizeof g_tables[0])

/* Seed rows, inserted when absent (the superuser_set policy row). */
static const char *const g_seed_pg[] = {
    "INSERT INTO {p}_security_policy (policy_key, revision) VALUES ('superuser_set', 0) "
    "ON CONFLICT (policy_key) DO NOTHING",
    NULL,
};
static const char *const g_seed_my[] = {
    "INSERT IGNORE INTO {p}_security_policy (policy_key, revision) VALUES ('superuser_set', 0)",
    NULL,
};

const char *m8_issuer_schema_table(size_t i)
{
    return i < NTABLES ? g_tables[i].name : NULL;
}

/* ------------------------------------------------------------ helpers */

bool m8_issuer_prefix_valid(const char *prefix)
{
    if (!prefix || !*prefix || (*prefix >= '0' && *prefix <= '9'))
        return false;
    size_t n = 0;
    for (const char *s = prefix; *s; s++, n++) {
        char c = *s;
        if (!(c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z')))
            return false;
    }
    return n <= M8_ISSUER_PREFIX_MAX;
}

int m8_issuer_sql(char *out, size_t outlen, const char *tmpl, const char *prefix)
{
    if (!out || !outlen || !tmpl || !m8_issuer_prefix_valid(prefix))
        return M8_EINVAL;
    size_t pl = strlen(prefix), w = 0;
    for (const char *s = tmpl; *s;) {
        const char *put = s;
        size_t n = 1;
        if (s[0] == '{' && s[1] == 'p' && s[2] == '}') {
            put = prefix;
            n = pl;
            s += 3;
        } else {
            s++;
        }
        if (w + n + 1 > outlen)
            return M8_ETOOBIG;
        memcpy(out + w, put, n);
        w += n;
    }
    out[w] = '\0';
    return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int m8_issuer_exec(m8_db *db, const char *prefix, const char *tmpl, const m8_db_param *p, size_t n,
                   m8_db_result **res)
{
    char sql[4096];
    if (res)
        *res = NULL;
    if (!db)
        return M8_EINVAL;
    int rc = m8_issuer_sql(sql, sizeof sql, tmpl, prefix ? prefix : M8_ISSUER_PREFIX_DEFAULT);
    return rc ? rc : m8_db_exec(db, sql, p, n, res);
}

/* Runs one template; the database's reason into err on failure. */
static int run(m8_db *db, const char *tmpl, const char *prefix, const m8_db_param *params, size_t n,
               m8_db_result **res, char *err, size_t errlen)
{
    int rc = m8_issuer_exec(db, prefix, tmpl, params, n, res);
    if (rc == M8_ETOOBIG) {
        set_err(err, errlen, "issuer schema: a statement does not fit in 4 KiB");
    } else if (rc != 0) {
        const m8_db_error *e = m8_db_last_error(db);
        set_err(err, errlen, "issuer schema: %s", e && e->message[0] ? e->message : "bad SQL");
    }
    return rc;
}

/* True (1) when the table prefix_name exists in the current database or
 * schema, 0 when not, or an error.  PostgreSQL folds unquoted names to lower
 * case. */
static int table_exists(m8_db *db, const char *prefix, const char *name, char *err, size_t errlen)
{
    char full[M8_ISSUER_TABLE_MAX + 1];
    int n = snprintf(full, sizeof full, "%s_%s", prefix, name);
    if (n < 0 || (size_t)n >= sizeof full)
        return M8_EINVAL;
    bool pg = m8_db_get_dialect(db) == M8_DB_DIALECT_POSTGRES;
    m8_db_param p = M8_DB_TEXT(full);
    m8_db_result *r = NULL;
    int rc = run(db,
                 pg ? "SELECT 1 FROM information_schema.tables WHERE table_schema = "
                      "current_schema() AND table_name = lower(?)"
                    : "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() "
                      "AND table_name = ?",
                 prefix, &p, 1, &r, err, errlen);
    if (rc != 0)
        return rc;
    int found = m8_db_nrows(r) > 0;
    m8_db_result_free(r);
    return found;
}

int m8_issuer_schema_version(m8_db *db, const char *prefix, int *version)
{
    if (!prefix)
        prefix = M8_ISSUER_PREFIX_DEFAULT;
    if (!db || !version || !m8_issuer_prefix_valid(prefix))
        return M8_EINVAL;
    *version = 0;
    int rc = table_exists(db, prefix, "m8_schema_version", NULL, 0);
    if (rc <= 0)
        return rc;
    m8_db_result *r = NULL;
    rc = run(db, "SELECT version FROM {p}_m8_schema_version WHERE component = 'issuer'", prefix,
             NULL, 0, &r, NULL, 0);
    if (rc != 0)
        return rc;
    int64_t v = 0;
    if (m8_db_nrows(r) > 0 && m8_db_get_int(r, 0, 0, &v) != 0)
        rc = M8_EIO; /* not a number: refuse rather than overwrite it */
    else if (v > 0)
        *version = v > INT_MAX ? INT_MAX : (int)v; /* huge = newer than any build */
    m8_db_result_free(r);
    return rc;
}

/* ------------------------------------------------------------ takeover */

/* The columns the issuer uses in a table it takes over (one that existed
 * before, e.g. made by fa-auth-m8): a table without one is refused, rather
 * than failing request by request later. */
static const struct {
    const char *table;
    const char *cols; /* space-separated */
} g_needed[] = {
    {"user", "id provider email full_name avatar is_active email_verified is_superuser role "
             "hashed_password tenant_id auth_generation"},
    {"client_session", "id user_id provider jwt_jti refresh_token_hash jwt_expires_at "
                       "refresh_expires_at revoked auth_generation"},
    {"api_key", "id name expires_at revoked key_hash user_id last_used_at access_mode"},
    {"tombstone", "user_id terminal_generation"},
    {"revocation_outbox", "id user_id auth_generation effect_type target_digest payload status "
                          "attempts lease_until next_attempt_at completed_at"},
    {"security_policy", "policy_key revision"},
    {"privileged_action_audit", "id actor_user_id actor_role action table_name row_pk"},
};

static bool has_column(const m8_db_result *r, const char *col, size_t n)
{
    for (size_t i = 0; i < m8_db_nrows(r); i++) {
        size_t len = 0;
        const char *c = m8_db_get_text(r, i, 0, &len);
        if (c && len == n && strncasecmp(c, col, n) == 0)
            return true;
    }
    return false;
}

static int check_columns(m8_db *db, bool pg, const char *prefix, const char *name, char *err,
                         size_t errlen)
{
    const char *cols = NULL;
    for (size_t i = 0; i < sizeof g_needed / sizeof g_needed[0]; i++) {
        if (strcmp(g_needed[i].table, name) == 0)
            cols = g_needed[i].cols;
    }
    if (!cols)
        return 0;
    char full[M8_ISSUER_TABLE_MAX + 1];
    snprintf(full, sizeof full, "%s_%s", prefix, name);
    m8_db_param p = M8_DB_TEXT(full);
    m8_db_result *r = NULL;
    int rc = run(db,
                 pg ? "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                      "current_schema() AND table_name = lower(?)"
                    : "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                      "DATABASE() AND table_name = ?",
                 prefix, &p, 1, &r, err, errlen);
    for (const char *c = cols; rc == 0 && *c;) {
        size_t n = strcspn(c, " ");
        if (!has_column(r, c, n)) {
            set_err(err, errlen,
                    "the existing table %s has no column %.*s: a fa-auth-m8 database older than "
                    "2.0 must be migrated by fa-auth-m8 first (the schema was left as it is)",
                    full, (int)n, c);
            rc = M8_ECONFIG;
        }
        c += n;
        c += *c == ' ';
    }
    m8_db_result_free(r);
    return rc;
}

/* ------------------------------------------------------------ locking */

/* PostgreSQL: an advisory lock held until the transaction ends (advisory
 * locks are per database; the key pairs a fixed class with the prefix).
 * MariaDB: a named lock of the connection, per database and prefix. */
static int lock_take(m8_db *db, bool pg, const char *prefix, char *err, size_t errlen)
{
    m8_db_param p[2] = {M8_DB_TEXT(prefix), M8_DB_INT(M8_ISSUER_SCHEMA_LOCK_WAIT_S)};
    if (pg)
        return run(db, "SELECT pg_advisory_xact_lock(1832457266, hashtext(?))", prefix, p, 1, NULL,
                   err, errlen);
    m8_db_result *r = NULL;
    int rc =
        run(db, "SELECT GET_LOCK(LEFT(CONCAT('m8-issuer-schema:', DATABASE(), ':', ?), 64), ?)",
            prefix, p, 2, &r, err, errlen);
    if (rc != 0)
        return rc;
    int64_t got = 0;
    if (m8_db_get_int(r, 0, 0, &got) != 0 || got != 1) {
        set_err(err, errlen,
                "issuer schema: another process held the schema lock for over %d s; try again",
                M8_ISSUER_SCHEMA_LOCK_WAIT_S);
        rc = M8_EAGAIN;
    }
    m8_db_result_free(r);
    return rc;
}

static void lock_release(m8_db *db, bool pg, const char *prefix)
{
    if (pg) {
        if (m8_db_in_transaction(db))
            m8_db_rollback(db); /* ends the transaction, and its lock */
        return;
    }
    /* A lost connection has released its named lock already. */
    m8_db_param p = M8_DB_TEXT(prefix);
    run(db, "SELECT RELEASE_LOCK(LEFT(CONCAT('m8-issuer-schema:', DATABASE(), ':', ?), 64))",
        prefix, &p, 1, NULL, NULL, 0);
}

/* ------------------------------------------------------------ apply */

/* Under the lock: reads the version, creates what is missing, records the
 * version. */
static int apply_locked(m8_db *db, bool pg, const char *prefix, int *found, char *err,
                        size_t errlen)
{
    /* The version first, so that a refusal changes nothing. */
    int rc = m8_issuer_schema_version(db, prefix, found);
    if (rc != 0) {
        set_err(err, errlen, "issuer schema: cannot read the version: %s",
                m8_db_last_error(db)->message);
        return rc;
    }
    if (*found > M8_ISSUER_SCHEMA_VERSION) {
        set_err(err, errlen,
                "the database's issuer schema (%s_m8_schema_version) is version %d, newer than "
                "version %d that this build of fcgi-m8 knows: run a newer fcgim8-issuer "
                "(the schema was left as it is)",
                prefix, *found, M8_ISSUER_SCHEMA_VERSION);
        return M8_ECONFIG;
    }
    if (*found == M8_ISSUER_SCHEMA_VERSION)
        return 0; /* already there: a no-op */
    /* Tables taken over are checked before anything is created. */
    bool present[NTABLES];
    for (size_t i = 0; i < NTABLES; i++) {
        int exists = table_exists(db, prefix, g_tables[i].name, err, errlen);
        if (exists < 0)
            return exists;
        present[i] = exists;
        if (exists && (rc = check_columns(db, pg, prefix, g_tables[i].name, err, errlen)) != 0)
            return rc;
    }
    for (size_t i = 0; i < NTABLES && rc == 0; i++) {
        const table_ddl *t = &g_tables[i];
        if (present[i])
            continue; /* an existing table is never altered */
        const char *const *stmts = pg ? t->pg : t->my;
        for (size_t k = 0; k < 4 && stmts[k] && rc == 0; k++)
            rc = run(db, stmts[k], prefix, NULL, 0, NULL, err, errlen);
    }
    /* Migrations from an older recorded version to this one go here, each
     * guarded by *found (version 1 is the first).  1 -> 2 only adds tables
     * (service_account, api_key_scopes), which the loop above creates as
     * missing ones; no existing table changes. */
    const char *const *seed = pg ? g_seed_pg : g_seed_my;
    for (size_t k = 0; seed[k] && rc == 0; k++)
        rc = run(db, seed[k], prefix, NULL, 0, NULL, err, errlen);
    if (rc != 0)
        return rc;
    m8_db_param p[2] = {M8_DB_INT(M8_ISSUER_SCHEMA_VERSION), M8_DB_INT((int64_t)time(NULL))};
    return run(db,
               pg ? "INSERT INTO {p}_m8_schema_version (component, version, applied_at) VALUES "
                    "('issuer', ?, ?) ON CONFLICT (component) DO UPDATE SET version = "
                    "EXCLUDED.version, applied_at = EXCLUDED.applied_at"
                  : "INSERT INTO {p}_m8_schema_version (component, version, applied_at) VALUES "
                    "('issuer', ?, ?) ON DUPLICATE KEY UPDATE version = VALUES(version), "
                    "applied_at = VALUES(applied_at)",
               prefix, p, 2, NULL, err, errlen);
}

int m8_issuer_schema_apply(m8_db *db, const char *prefix, int *version_found, char *err,
                           size_t errlen)
{
    int found_local = 0;
    int *found = version_found ? version_found : &found_local;
    *found = 0;
    if (err && errlen)
        err[0] = '\0';
    if (!prefix)
        prefix = M8_ISSUER_PREFIX_DEFAULT;
    if (!db || !m8_issuer_prefix_valid(prefix)) {
        set_err(err, errlen, "issuer schema: TABLES_PREFIX must be an identifier of 1-%d bytes",
                M8_ISSUER_PREFIX_MAX);
        return M8_EINVAL;
    }
    if (m8_db_in_transaction(db)) {
        set_err(err, errlen, "issuer schema: called inside a transaction");
        return M8_EINVAL;
    }
    bool pg = m8_db_get_dialect(db) == M8_DB_DIALECT_POSTGRES;
    int rc = 0;
    if (pg) { /* DDL is transactional: all or nothing */
        rc = m8_db_begin(db);
        if (rc != 0) {
            set_err(err, errlen, "issuer schema: %s", m8_db_last_error(db)->message);
            return rc;
        }
    }
    rc = lock_take(db, pg, prefix, err, errlen);
    if (rc != 0) {
        if (pg)
            m8_db_rollback(db);
        return rc;
    }
    rc = apply_locked(db, pg, prefix, found, err, errlen);
    if (rc == 0 && pg) {
        rc = m8_db_commit(db);
        if (rc != 0)
            set_err(err, errlen, "issuer schema: %s", m8_db_last_error(db)->message);
    }
    lock_release(db, pg, prefix);
    return rc;
}
