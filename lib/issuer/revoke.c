/* revoke.c - the account-wide revocation transaction, its events, the audit
 * row and the last-superuser guard (doc/issuer.md#users-and-profile). */
#include "issuer/revoke.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth/jws_sign.h"
#include "core/log.h"
#include "issuer/audit.h"
#include "issuer/outbox.h"
#include "issuer/store.h"

static bool is_pg(const m8_db *db)
{
    return m8_db_get_dialect(db) == M8_DB_DIALECT_POSTGRES;
}

/* ------------------------------------------------------------ answers */

int m8_issuer_envelope(m8_request *req, int status, const char *msg, const char *from_error,
                       const char *table, const char *field, const char *error)
{
    json_object *o = json_object_new_object();
    json_object *errs = json_object_new_array();
    json_object *e = json_object_new_object();
    json_object_object_add(e, "table", table ? json_object_new_string(table) : NULL);
    json_object_object_add(e, "field_name", field ? json_object_new_string(field) : NULL);
    json_object_object_add(e, "error", json_object_new_string(error));
    json_object_array_add(errs, e);
    json_object_object_add(o, "success", json_object_new_boolean(false));
    json_object_object_add(o, "msg", json_object_new_string(msg));
    json_object_object_add(o, "from_error", json_object_new_string(from_error));
    json_object_object_add(o, "errors", errs);
    json_object_object_add(o, "status_code", json_object_new_int(status));
    return m8_res_json(req, status, o);
}

int m8_issuer_fail(m8_request *req, m8_db *db, int rc, const char *what)
{
    if (db && m8_db_in_transaction(db))
        m8_db_rollback(db);
    if (rc == M8_EAGAIN)
        return m8_res_error(req, 503, M8_ISSUER_DETAIL_DB_DOWN);
    unsigned char rnd[6];
    char ref[sizeof rnd * 2 + 1], text[96];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(ref, sizeof ref, rnd, sizeof rnd);
    /* the server's reason only when the failure came from it */
    const m8_db_error *e = db && rc == M8_EIO ? m8_db_last_error(db) : NULL;
    m8_log(M8_LOG_ERROR, "issuer: %s failed (%d%s%s), reference %s", what, rc,
           e && e->message[0] ? ": " : "", e ? e->message : "", ref);
    snprintf(text, sizeof text, "An internal error occurred. Reference: %s.", ref);
    return m8_issuer_envelope(req, 500, "An unexpected error occurred.", "Exception", NULL, NULL,
                              text);
}

/* ------------------------------------------------------------ audit, guard */

int m8_issuer_audit(m8_db *db, const char *prefix, const char *actor_id, const char *actor_role,
                    const char *action, const char *row_pk)
{
    m8_issuer_audit_entry e = {.actor_id = actor_id,
                               .actor_role = actor_role,
                               .action = action,
                               .table = "user",
                               .row_pk = row_pk,
                               .owner = row_pk};
    return m8_issuer_audit_row(db, prefix, &e, NULL);
}

int m8_issuer_su_lock(m8_db *db, const char *prefix, int64_t *active)
{
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(
        db, prefix,
        "SELECT revision FROM {p}_security_policy WHERE policy_key = 'superuser_set' "
        "FOR UPDATE",
        NULL, 0, &r);
    bool have = rc == 0 && m8_db_nrows(r) == 1;
    m8_db_result_free(r);
    if (rc == 0 && !have) /* a database whose seed row was removed */
        rc = m8_issuer_exec(db, prefix,
                            "INSERT INTO {p}_security_policy (policy_key, revision) VALUES "
                            "('superuser_set', 0)",
                            NULL, 0, NULL);
    if (rc == 0) {
        m8_db_param t = M8_DB_TIME(m8_db_now());
        rc = m8_issuer_exec(
            db, prefix,
            "UPDATE {p}_security_policy SET revision = revision + 1, updated_at = ? WHERE "
            "policy_key = 'superuser_set'",
            &t, 1, NULL);
    }
    if (rc == 0)
        rc = m8_issuer_exec(
            db, prefix,
            "SELECT id FROM {p}_user WHERE role = 'SUPERADMIN' AND is_superuser = TRUE AND "
            "is_active = TRUE FOR UPDATE",
            NULL, 0, &r);
    if (rc == 0)
        *active = (int64_t)m8_db_nrows(r);
    m8_db_result_free(r);
    return rc;
}

/* ------------------------------------------------------------ the change */

/* Captures and deletes the user's session rows, blacklisting each JTI
 * that has not expired until its expiry. */
static int drop_sessions(m8_db *db, const char *prefix, const char *uid, m8_issuer_acct *a,
                         int64_t now)
{
    m8_db_param p = M8_DB_TEXT(uid);
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(
        db, prefix,
        "SELECT jwt_jti, jwt_expires_at FROM {p}_client_session WHERE user_id = ? FOR "
        "UPDATE",
        &p, 1, &r);
    for (size_t i = 0; rc == 0 && i < m8_db_nrows(r); i++) {
        const char *jti = m8_db_get_text(r, i, 0, NULL);
        int64_t exp_us = 0;
        if (!jti || m8_db_get_time(r, i, 1, &exp_us) != 0)
            continue;
        int64_t exp = exp_us / 1000000;
        if (exp <= now) /* already expired: nothing to blacklist */
            continue;
        rc = m8_issuer_blacklist_put(db, prefix, jti, exp);
        if (rc == M8_EINVAL) { /* not a JTI this issuer minted (over 64 bytes) */
            m8_log(M8_LOG_WARNING, "issuer: a session JTI of user %s cannot be blacklisted",
                   a->user_id);
            rc = 0;
        }
    }
    m8_db_result_free(r);
    if (rc == 0)
        rc = m8_issuer_exec(db, prefix, "DELETE FROM {p}_client_session WHERE user_id = ?", &p, 1,
                            &r);
    if (rc == 0)
        a->sessions = (size_t)(m8_db_affected(r) > 0 ? m8_db_affected(r) : 0);
    m8_db_result_free(r);
    return rc;
}

static int outbox_row(m8_db *db, const char *prefix, const char *uid, const m8_issuer_acct *a)
{
    char id[M8_UUID_STR_LEN + 1], idp[M8_UUID_STR_LEN + 1], payload[512];
    m8_jti_new(id);
    m8_issuer_uuid_param(db, id, idp);
    int rc = m8_issuer_event_v2(payload, sizeof payload, a->user_id, a->new_generation);
    if (rc)
        return rc;
    int64_t t = m8_db_now();
    m8_db_param p[] = {M8_DB_TEXT(idp),
                       M8_DB_TIME(t),
                       M8_DB_TIME(t),
                       M8_DB_TEXT(uid),
                       M8_DB_INT(a->new_generation),
                       M8_DB_TEXT(payload)};
    return m8_issuer_exec(
        db, prefix,
        "INSERT INTO {p}_revocation_outbox (id, created_at, updated_at, user_id, "
        "auth_generation, effect_type, target_digest, payload, status, attempts) VALUES "
        "(?, ?, ?, ?, ?, 'publish', 'user-wide', ?, 'pending', 0)",
        p, M8_ARRAY_LEN(p), NULL);
}

static int tombstone(m8_db *db, const char *prefix, const char *uid, int64_t gen)
{
    int64_t t = m8_db_now();
    m8_db_param p[] = {M8_DB_TEXT(uid), M8_DB_INT(gen), M8_DB_TIME(t), M8_DB_TIME(t)};
    return m8_issuer_exec(
        db, prefix,
        is_pg(db) ? "INSERT INTO {p}_tombstone AS t (user_id, terminal_generation, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id) DO "
                    "UPDATE SET terminal_generation = GREATEST(t.terminal_generation, "
                    "EXCLUDED.terminal_generation), updated_at = EXCLUDED.updated_at"
                  : "INSERT INTO {p}_tombstone (user_id, terminal_generation, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE "
                    "terminal_generation = GREATEST(terminal_generation, "
                    "VALUES(terminal_generation)), updated_at = VALUES(updated_at)",
        p, M8_ARRAY_LEN(p), NULL);
}

/* The identity block of a deleted Google account: SHA-256 hex of
 * "google:<sub>". */
static int block_google(m8_db *db, const char *prefix, const char *uid, const char *sub)
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[sizeof h * 2 + 1];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)"google:", 7);
    crypto_hash_sha256_update(&st, (const unsigned char *)sub, strlen(sub));
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    m8_db_param p[] = {M8_DB_TEXT(hex), M8_DB_TEXT(uid), M8_DB_TIME(m8_db_now())};
    return m8_issuer_exec(
        db, prefix,
        is_pg(db) ? "INSERT INTO {p}_identity_block (identity_digest, user_id, created_at) "
                    "VALUES (?, ?, ?) ON CONFLICT (identity_digest) DO NOTHING"
                  : "INSERT IGNORE INTO {p}_identity_block (identity_digest, user_id, "
                    "created_at) VALUES (?, ?, ?)",
        p, M8_ARRAY_LEN(p), NULL);
}

int m8_issuer_acct_revoke(m8_db *db, const char *prefix, m8_issuer_acct *a, int64_t now)
{
    char uid[M8_UUID_STR_LEN + 1];
    if (!db || !a || !a->user_id)
        return M8_EINVAL;
    if (!m8_db_in_transaction(db))
        return M8_ESTATE;
    m8_issuer_uuid_param(db, a->user_id, uid);
    if (!uid[0])
        return M8_EINVAL;
    /* a signed 64-bit generation never wraps: the change fails instead */
    if (a->generation < 0 || a->generation >= M8_ISSUER_GENERATION_MAX)
        return M8_ETOOBIG;
    a->new_generation = a->generation + 1;
    a->sessions = 0;
    m8_db_param g[] = {M8_DB_INT(a->new_generation), M8_DB_TIME(m8_db_now()), M8_DB_TEXT(uid)};
    int rc = m8_issuer_exec(db, prefix,
                            "UPDATE {p}_user SET auth_generation = ?, updated_at = ? WHERE id = ?",
                            g, M8_ARRAY_LEN(g), NULL);
    if (rc == 0)
        rc = drop_sessions(db, prefix, uid, a, now);
    if (rc == 0)
        rc = m8_issuer_allow_remove_user(db, prefix, a->user_id);
    if (rc == 0)
        rc = outbox_row(db, prefix, uid, a);
    if (rc == 0 && a->revoke_api_keys) {
        m8_db_param k[] = {M8_DB_TIME(m8_db_now()), M8_DB_TEXT(uid)};
        rc = m8_issuer_exec(
            db, prefix,
            "UPDATE {p}_api_key SET revoked = TRUE, updated_at = ? WHERE user_id = ? AND "
            "revoked = FALSE",
            k, 2, NULL);
    }
    if (rc == 0) {
        m8_issuer_audit_entry e = {.actor_id = a->actor_id,
                                   .actor_role = a->actor_role,
                                   .action = a->delete_user ? "delete" : "edit",
                                   .table = "user",
                                   .row_pk = a->user_id,
                                   .owner = a->user_id,
                                   .client = a->client};
        rc = m8_issuer_audit_row(db, prefix, &e, NULL);
    }
    if (rc == 0 && a->delete_user) {
        rc = tombstone(db, prefix, uid, a->new_generation);
        if (rc == 0 && a->google_sub && *a->google_sub)
            rc = block_google(db, prefix, uid, a->google_sub);
        m8_db_param d = M8_DB_TEXT(uid);
        if (rc == 0) /* cascades: sessions, API keys, rate limits */
            rc = m8_issuer_exec(db, prefix, "DELETE FROM {p}_user WHERE id = ?", &d, 1, NULL);
    }
    return rc;
}

int m8_issuer_acct_publish(m8_db *db, const char *prefix, const m8_issuer_acct *a)
{
    /* the events and the row's completion in one transaction; a failure
     * leaves the row pending for the housekeeping replay
     * (doc/issuer.md#the-revocation-outbox) */
    int rc =
        m8_issuer_outbox_publish_now(db, prefix, a->user_id, a->new_generation, a->delete_user);
    if (rc != 0)
        m8_log(M8_LOG_ERROR,
               "issuer: the revocation event of user %s (generation %lld) was not published "
               "(%d); its outbox row stays pending for the replay",
               a->user_id, (long long)a->new_generation, rc);
    return rc;
}

/* ------------------------------------------------------------ user rows */

int m8_issuer_user_save(m8_db *db, const char *prefix, m8_issuer_user *u)
{
    char id[M8_UUID_STR_LEN + 1], role[16];
    m8_issuer_uuid_param(db, u->id, id);
    size_t i = 0;
    for (; u->role[i] && i + 1 < sizeof role; i++)
        role[i] = (char)(u->role[i] >= 'a' && u->role[i] <= 'z' ? u->role[i] - 32 : u->role[i]);
    role[i] = '\0';
    if (!id[0] || !u->email || !role[0])
        return M8_EINVAL;
    u->is_superuser = strcmp(u->role, "superadmin") == 0; /* the CHECK's rule */
    u->updated_us = m8_db_now();
    m8_db_param p[] = {
        M8_DB_TEXT(u->email),
        u->full_name ? M8_DB_TEXT(u->full_name) : M8_DB_NULL,
        u->avatar ? M8_DB_TEXT(u->avatar) : M8_DB_NULL,
        u->hashed_password ? M8_DB_TEXT(u->hashed_password) : M8_DB_NULL,
        M8_DB_TEXT(strcmp(u->provider, "google") == 0 ? "GOOGLE" : "PASSWORD"),
        M8_DB_TEXT(role),
        M8_DB_BOOL(u->is_active),
        M8_DB_BOOL(u->email_verified),
        M8_DB_BOOL(u->is_superuser),
        M8_DB_TIME(u->updated_us),
        M8_DB_TEXT(id),
    };
    return m8_issuer_exec(
        db, prefix,
        "UPDATE {p}_user SET email = ?, full_name = ?, avatar = ?, hashed_password = ?, "
        "provider = ?, role = ?, is_active = ?, email_verified = ?, is_superuser = ?, "
        "updated_at = ? WHERE id = ?",
        p, M8_ARRAY_LEN(p), NULL);
}

int m8_issuer_user_oauth(m8_db *db, const char *prefix, const char *id, char *out, size_t outlen)
{
    char p[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(db, id, p);
    out[0] = '\0';
    m8_db_param v = M8_DB_TEXT(p);
    m8_db_result *r = NULL;
    int rc =
        m8_issuer_exec(db, prefix, "SELECT oauth_user_id FROM {p}_user WHERE id = ?", &v, 1, &r);
    const char *s = rc == 0 ? m8_db_get_text(r, 0, 0, NULL) : NULL;
    if (s)
        snprintf(out, outlen, "%s", s);
    m8_db_result_free(r);
    return rc;
}

int m8_issuer_user_set_oauth(m8_db *db, const char *prefix, const char *id, const char *sub)
{
    char p[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(db, id, p);
    m8_db_param v[] = {sub ? M8_DB_TEXT(sub) : M8_DB_NULL, M8_DB_TEXT(p)};
    return m8_issuer_exec(db, prefix, "UPDATE {p}_user SET oauth_user_id = ? WHERE id = ?", v, 2,
                          NULL);
}
