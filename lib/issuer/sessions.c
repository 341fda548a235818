/* sessions.c - the issuer's session rows and the v1 revocation events
 * (sessions.h, doc/issuer.md#login-refresh-and-logout). */
#include "issuer/sessions.h"

#include <sodium.h>
#include <string.h>

#include "auth/jws_sign.h"
#include "core/log.h"
#include "issuer/service.h"
#include "issuer/store.h"

/* Expands tmpl with prefix (NULL = default) and runs it. */
/* A jti as the row holds it: 1..128 bytes of printable ASCII. */
static bool jti_ok(const char *jti)
{
    if (!jti)
        return false;
    size_t n = 0;
    for (; jti[n]; n++) {
        if (n >= 128 || (unsigned char)jti[n] <= 0x20 || (unsigned char)jti[n] >= 0x7f)
            return false;
    }
    return n > 0;
}

static const char *provider_stored(const char *wire)
{
    return wire && strcmp(wire, "google") == 0 ? "GOOGLE" : "PASSWORD";
}

int m8_issuer_session_upsert(m8_db *db, const char *prefix, const m8_issuer_session *s)
{
    char uid[M8_UUID_STR_LEN + 1];
    if (!db || !s || !jti_ok(s->jti) || !s->refresh_tok || s->refresh_len == 0)
        return M8_EINVAL;
    m8_issuer_uuid_param(db, s->user_id, uid);
    if (!uid[0])
        return M8_EINVAL;
    /* The refresh token is never stored: its lower-case hex SHA-256 is. */
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];
    crypto_hash_sha256(digest, (const unsigned char *)s->refresh_tok, s->refresh_len);
    sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
    int64_t now_us = m8_db_now();
    m8_db_param u[] = {
        M8_DB_TEXT(s->jti),
        M8_DB_TEXT(hex),
        M8_DB_TIME(s->jwt_expires_at * 1000000),
        M8_DB_TIME(s->refresh_expires_at * 1000000),
        M8_DB_TEXT(provider_stored(s->provider)),
        M8_DB_INT(s->auth_generation),
        M8_DB_TIME(now_us),
        M8_DB_TEXT(uid),
    };
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(
        db, prefix,
        "UPDATE {p}_client_session SET jwt_jti = ?, refresh_token_hash = ?, "
        "jwt_expires_at = ?, refresh_expires_at = ?, provider = ?, auth_generation = ?, "
        "revoked = FALSE, updated_at = ? WHERE user_id = ?",
        u, M8_ARRAY_LEN(u), &r);
    int64_t n = rc == 0 ? m8_db_affected(r) : 0;
    m8_db_result_free(r);
    if (rc != 0 || n > 0)
        return rc;
    char id[M8_UUID_STR_LEN + 1];
    m8_jti_new(id);
    m8_db_param i[] = {
        M8_DB_TEXT(id),
        M8_DB_TIME(now_us),
        M8_DB_TIME(now_us),
        M8_DB_TEXT(uid),
        M8_DB_TEXT(provider_stored(s->provider)),
        M8_DB_TEXT(s->jti),
        M8_DB_TEXT(hex),
        M8_DB_TIME(s->jwt_expires_at * 1000000),
        M8_DB_TIME(s->refresh_expires_at * 1000000),
        M8_DB_INT(s->auth_generation),
    };
    return m8_issuer_exec(
        db, prefix,
        "INSERT INTO {p}_client_session (id, created_at, updated_at, user_id, provider, "
        "jwt_jti, refresh_token_hash, jwt_expires_at, refresh_expires_at, revoked, "
        "auth_generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?)",
        i, M8_ARRAY_LEN(i), NULL);
}

int m8_issuer_session_current(m8_db *db, const char *prefix, const char *user_id, const char *jti,
                              int64_t generation, bool *current)
{
    if (!current)
        return M8_EINVAL;
    *current = false;
    char uid[M8_UUID_STR_LEN + 1];
    if (!db || !jti_ok(jti))
        return M8_EINVAL;
    m8_issuer_uuid_param(db, user_id, uid);
    if (!uid[0])
        return M8_EINVAL;
    m8_db_param p[] = {M8_DB_TEXT(uid), M8_DB_TEXT(jti), M8_DB_INT(generation)};
    m8_db_result *r = NULL;
    /* A NULL stamp never equals: a revoked row is stale. */
    int rc =
        m8_issuer_exec(db, prefix,
                       "SELECT 1 FROM {p}_client_session WHERE user_id = ? AND jwt_jti = ? AND "
                       "auth_generation = ?",
                       p, M8_ARRAY_LEN(p), &r);
    if (rc == 0)
        *current = m8_db_nrows(r) > 0;
    m8_db_result_free(r);
    return rc;
}

int m8_issuer_session_delete_jti(m8_db *db, const char *prefix, const char *jti, int64_t *deleted)
{
    if (deleted)
        *deleted = 0;
    if (!db || !jti_ok(jti))
        return M8_EINVAL;
    m8_db_param p = M8_DB_TEXT(jti);
    m8_db_result *r = NULL;
    int rc =
        m8_issuer_exec(db, prefix, "DELETE FROM {p}_client_session WHERE jwt_jti = ?", &p, 1, &r);
    if (rc == 0 && deleted)
        *deleted = m8_db_affected(r);
    m8_db_result_free(r);
    return rc;
}

int m8_issuer_session_event_v1(m8_db *db, const char *prefix, const char *user_id, const char *jti,
                               int64_t now_us)
{
    char uid[M8_UUID_STR_LEN + 1];
    if (!db || !user_id || !m8_uuid_canon(user_id, strlen(user_id), uid) || (jti && !jti_ok(jti)))
        return M8_EINVAL;
    char payload[320];
    int n;
    if (jti)
        n = snprintf(payload, sizeof payload,
                     "{\"event_type\":\"session.revoked\",\"version\":\"v1\",\"user_id\":\"%s\","
                     "\"jti\":\"%s\"}",
                     uid, jti);
    else
        n = snprintf(payload, sizeof payload,
                     "{\"event_type\":\"session.revoked\",\"version\":\"v1\",\"user_id\":\"%s\","
                     "\"jti\":null}",
                     uid);
    /* A jti that would need escaping is refused (ours are UUIDs). */
    if (n < 0 || (size_t)n >= sizeof payload || (jti && strpbrk(jti, "\"\\")))
        return M8_EINVAL;
    return m8_issuer_event_append(db, prefix, M8_ISSUER_EV_SESSION_REVOKED, payload, (size_t)n,
                                  now_us, NULL);
}

/* The jtis and access expiries of the user's rows, deleted in one
 * transaction. */
static int take_rows(m8_db *db, const char *prefix, const char *uid, m8_db_result **rows,
                     int64_t *deleted)
{
    int rc = m8_db_begin(db);
    if (rc != 0)
        return rc;
    m8_db_param p = M8_DB_TEXT(uid);
    rc = m8_issuer_exec(
        db, prefix,
        "SELECT jwt_jti, jwt_expires_at FROM {p}_client_session WHERE user_id = ? FOR UPDATE", &p,
        1, rows);
    m8_db_result *d = NULL;
    if (rc == 0)
        rc = m8_issuer_exec(db, prefix, "DELETE FROM {p}_client_session WHERE user_id = ?", &p, 1,
                            &d);
    if (rc == 0)
        *deleted = m8_db_affected(d);
    m8_db_result_free(d);
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0) {
        if (m8_db_in_transaction(db))
            m8_db_rollback(db);
        m8_db_result_free(*rows);
        *rows = NULL;
    }
    return rc;
}

int m8_issuer_sessions_revoke_user(m8_db *db, const char *prefix, const char *user_id, int64_t now,
                                   int64_t *revoked)
{
    if (revoked)
        *revoked = 0;
    char uid[M8_UUID_STR_LEN + 1], canon[M8_UUID_STR_LEN + 1];
    if (!db || !user_id || !m8_uuid_canon(user_id, strlen(user_id), canon))
        return M8_EINVAL;
    if (m8_db_in_transaction(db))
        return M8_ESTATE;
    m8_issuer_uuid_param(db, canon, uid);
    m8_db_result *rows = NULL;
    int64_t deleted = 0;
    int rc = take_rows(db, prefix, uid, &rows, &deleted);
    if (rc != 0)
        return rc;
    if (revoked)
        *revoked = deleted;
    /* The rows are gone (the authority); the blacklist, the allowlist and
     * the event only make it take effect sooner. */
    for (size_t i = 0; rc == 0 && i < m8_db_nrows(rows); i++) {
        size_t len = 0;
        const char *jti = m8_db_get_text(rows, i, 0, &len);
        int64_t exp_us = 0;
        if (!jti || m8_db_get_time(rows, i, 1, &exp_us) != 0 || exp_us / 1000000 <= now ||
            !jti_ok(jti) || len > M8_ISSUER_ID_MAX)
            continue;
        rc = m8_issuer_blacklist_put(db, prefix, jti, exp_us / 1000000);
    }
    m8_db_result_free(rows);
    if (rc == 0)
        rc = m8_issuer_allow_remove_user(db, prefix, canon);
    if (rc == 0)
        rc = m8_issuer_session_event_v1(db, prefix, canon, NULL, m8_db_now());
    return rc;
}
