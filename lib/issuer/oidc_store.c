/* oidc_store.c - the database side of SSO (oidc_store.h,
 * doc/issuer.md#sso-oidc-and-google): the one-shot login sessions
 * (fa-auth-m8's oauth_session:<state>) and auth codes (auth_code:<uuid>)
 * as rows with an expiry, taken once by a DELETE that must remove exactly
 * one row; and the binding of a provider identity to a user, with the
 * just-in-time creation and the rule for an email a local account holds. */
#include "issuer/oidc_store.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "issuer/schema.h"

/* ------------------------------------------------------------ one-shot rows */

int m8_oidc_state_put(m8_db *db, const char *prefix, const char *state, const char *flow,
                      const char *payload, int64_t expires_at, int64_t now)
{
    if (!state || strlen(state) > 64 || !flow || !payload || strlen(payload) > M8_OIDC_SESSION_MAX)
        return M8_EINVAL;
    m8_db_param gone = M8_DB_INT(now);
    int rc = m8_issuer_exec(db, prefix, "DELETE FROM {p}_m8_oauth_state WHERE expires_at <= ?",
                            &gone, 1, NULL);
    if (rc != 0)
        return rc;
    m8_db_param p[] = {M8_DB_TEXT(state), M8_DB_TEXT(flow), M8_DB_TEXT(payload),
                       M8_DB_INT(expires_at)};
    return m8_issuer_exec(db, prefix,
                          "INSERT INTO {p}_m8_oauth_state (state, flow, payload, expires_at) "
                          "VALUES (?, ?, ?, ?)",
                          p, M8_ARRAY_LEN(p), NULL);
}

/* SELECT then a DELETE that must remove the one row: of two concurrent
 * takers only one gets it. */
static int take(m8_db *db, const char *prefix, const char *sel, const char *del, const char *key,
                int64_t now, m8_arena *a, const char **c0, const char **c1)
{
    m8_db_param p[] = {M8_DB_TEXT(key), M8_DB_INT(now)};
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, prefix, sel, p, 2, &r);
    if (rc != 0)
        return rc;
    if (m8_db_nrows(r) != 1) {
        m8_db_result_free(r);
        return M8_ENOTFOUND;
    }
    size_t n0 = 0, n1 = 0;
    const char *v0 = m8_db_get_text(r, 0, 0, &n0);
    const char *v1 = c1 ? m8_db_get_text(r, 0, 1, &n1) : NULL;
    *c0 = v0 ? m8_arena_strndup(a, v0, n0) : NULL;
    if (c1)
        *c1 = v1 ? m8_arena_strndup(a, v1, n1) : NULL;
    m8_db_result_free(r);
    if (!*c0 || (c1 && !*c1))
        return M8_ENOMEM;
    rc = m8_issuer_exec(db, prefix, del, p, 1, &r);
    if (rc != 0)
        return rc;
    int64_t gone = m8_db_affected(r);
    m8_db_result_free(r);
    return gone == 1 ? 0 : M8_ENOTFOUND;
}

int m8_oidc_state_take(m8_db *db, const char *prefix, const char *state, int64_t now, m8_arena *a,
                       const char **flow, const char **payload)
{
    if (!state || !*state || strlen(state) > 64)
        return M8_ENOTFOUND;
    return take(db, prefix,
                "SELECT flow, payload FROM {p}_m8_oauth_state WHERE state = ? AND expires_at > ?",
                "DELETE FROM {p}_m8_oauth_state WHERE state = ?", state, now, a, flow, payload);
}

int m8_oidc_code_put(m8_db *db, const char *prefix, const char *code, const char *payload,
                     int64_t expires_at, int64_t now)
{
    if (!code || strlen(code) != 36 || !payload || strlen(payload) > M8_OIDC_AUTHCODE_MAX)
        return M8_EINVAL;
    m8_db_param gone = M8_DB_INT(now);
    int rc = m8_issuer_exec(db, prefix, "DELETE FROM {p}_m8_auth_code WHERE expires_at <= ?", &gone,
                            1, NULL);
    if (rc != 0)
        return rc;
    m8_db_param p[] = {M8_DB_TEXT(code), M8_DB_TEXT(payload), M8_DB_INT(expires_at)};
    return m8_issuer_exec(
        db, prefix, "INSERT INTO {p}_m8_auth_code (code, payload, expires_at) VALUES (?, ?, ?)", p,
        M8_ARRAY_LEN(p), NULL);
}

int m8_oidc_code_take(m8_db *db, const char *prefix, const char *code, int64_t now, m8_arena *a,
                      const char **payload)
{
    if (!code || strlen(code) != 36)
        return M8_ENOTFOUND;
    return take(db, prefix,
                "SELECT payload FROM {p}_m8_auth_code WHERE code = ? AND expires_at > ?",
                "DELETE FROM {p}_m8_auth_code WHERE code = ?", code, now, a, payload, NULL);
}

/* ------------------------------------------------------------ provider tokens */

/* The Fernet form of t into b (NULL t: left empty, *param NULL). */
static int seal(const m8_fernet_key *k, const char *t, int64_t now, m8_buf *b, m8_db_param *param)
{
    if (!t) {
        *param = M8_DB_NULL;
        return 0;
    }
    size_t n = strlen(t);
    if (n == 0 || n > M8_OIDC_EXT_TOKEN_MAX)
        return M8_EINVAL;
    int rc = m8_fernet_encrypt(k, t, n, now, b);
    *param = M8_DB_TEXTN(b->data, b->len);
    return rc != 0 ? rc : b->len > M8_OIDC_EXT_COLUMN_MAX ? M8_EINVAL : 0;
}

int m8_oidc_ext_store(m8_db *db, const char *prefix, const m8_fernet_key *keys, size_t nkeys,
                      const char *user_id, const char *jti, const m8_oidc_ext_write *w,
                      int64_t *updated)
{
    if (updated)
        *updated = 0;
    char uid[M8_UUID_STR_LEN + 1];
    if (!db || !keys || nkeys == 0 || !user_id || !jti || !w)
        return M8_EINVAL;
    m8_issuer_uuid_param(db, user_id, uid);
    if (!uid[0])
        return M8_EINVAL;
    if (!w->set_access && !w->set_refresh && !w->set_expires)
        return 0;
    m8_buf a, r;
    m8_buf_init(&a, M8_OIDC_EXT_COLUMN_MAX + 1);
    m8_buf_init(&r, M8_OIDC_EXT_COLUMN_MAX + 1);
    int64_t now = (int64_t)time(NULL);
    m8_db_param p[6];
    size_t np = 0;
    p[np++] = M8_DB_TIME(m8_db_now());
    int rc = 0;
    if (w->set_access)
        rc = seal(&keys[0], w->access, now, &a, &p[np++]);
    if (rc == 0 && w->set_refresh)
        rc = seal(&keys[0], w->refresh, now, &r, &p[np++]);
    if (rc == 0 && w->set_expires)
        p[np++] = w->expires_us ? M8_DB_TIME(w->expires_us) : M8_DB_NULL;
    p[np++] = M8_DB_TEXT(uid);
    p[np++] = M8_DB_TEXT(jti);
    char sql[320];
    snprintf(sql, sizeof sql,
             "UPDATE {p}_client_session SET updated_at = ?%s%s%s WHERE user_id = ? AND "
             "jwt_jti = ?",
             w->set_access ? ", external_access_token = ?" : "",
             w->set_refresh ? ", external_refresh_token = ?" : "",
             w->set_expires ? ", external_token_expires_at = ?" : "");
    m8_db_result *res = NULL;
    if (rc == 0)
        rc = m8_issuer_exec(db, prefix, sql, p, np, &res);
    if (rc == 0 && updated)
        *updated = m8_db_affected(res);
    m8_db_result_free(res);
    m8_buf_free(&a); /* ciphertext: nothing to wipe */
    m8_buf_free(&r);
    return rc;
}

/* ------------------------------------------------------------ binding */

/* SHA-256 hex of "google:<sub>" (fa-auth-m8's identity block) or
 * "oidc:<issuer>:<sub>". */
static void digest(const m8_oidc_provider *p, const char *sub, char hex[65])
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    if (p->kind == M8_OIDC_GOOGLE) {
        crypto_hash_sha256_update(&st, (const unsigned char *)"google:", 7);
    } else {
        crypto_hash_sha256_update(&st, (const unsigned char *)"oidc:", 5);
        crypto_hash_sha256_update(&st, (const unsigned char *)p->issuer, strlen(p->issuer));
        crypto_hash_sha256_update(&st, (const unsigned char *)":", 1);
    }
    crypto_hash_sha256_update(&st, (const unsigned char *)sub, strlen(sub));
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, 65, h, sizeof h);
}

static int blocked(m8_db *db, const char *prefix, const m8_oidc_provider *p, const char *sub,
                   bool *yes)
{
    char hex[65];
    digest(p, sub, hex);
    m8_db_param q = M8_DB_TEXT(hex);
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(
        db, prefix, "SELECT 1 FROM {p}_identity_block WHERE identity_digest = ?", &q, 1, &r);
    *yes = rc == 0 && m8_db_nrows(r) > 0;
    m8_db_result_free(r);
    return rc;
}

/* The id of the user bound to the identity, "" when none. */
static int bound_id(m8_db *db, const char *prefix, const m8_oidc_provider *p, const char *sub,
                    char id[M8_UUID_STR_LEN + 1])
{
    m8_db_result *r = NULL;
    int rc;
    id[0] = '\0';
    if (p->kind == M8_OIDC_GOOGLE) {
        /* MariaDB compares oauth_user_id without regard to case (the user
         * table's utf8mb4 collation): the match is checked here again,
         * byte for byte, so that "Ab" never finds the account of "ab" */
        m8_db_param q = M8_DB_TEXT(sub);
        rc = m8_issuer_exec(db, prefix,
                            "SELECT id, oauth_user_id FROM {p}_user WHERE "
                            "oauth_user_id = ?",
                            &q, 1, &r);
        size_t n = 0;
        const char *v = rc == 0 && m8_db_nrows(r) > 0 ? m8_db_get_text(r, 0, 1, &n) : NULL;
        if (v && (n != strlen(sub) || memcmp(v, sub, n) != 0)) {
            m8_db_result_free(r);
            return M8_ESTATE;
        }
    } else {
        m8_db_param q[] = {M8_DB_TEXT(p->issuer), M8_DB_TEXT(sub)};
        rc = m8_issuer_exec(db, prefix,
                            "SELECT user_id FROM {p}_m8_oidc_identity WHERE issuer = ? AND sub = ?",
                            q, 2, &r);
    }
    if (rc == 0 && m8_db_nrows(r) > 0) {
        size_t n = 0;
        const char *v = m8_db_get_text(r, 0, 0, &n);
        char canon[M8_UUID_STR_LEN + 1] = "";
        if (v && n == 32) { /* MariaDB: 32 hex digits */
            snprintf(canon, sizeof canon, "%.8s-%.4s-%.4s-%.4s-%.12s", v, v + 8, v + 12, v + 16,
                     v + 20);
        } else if (v && n == M8_UUID_STR_LEN) {
            memcpy(canon, v, n + 1);
        }
        snprintf(id, M8_UUID_STR_LEN + 1, "%s", canon);
    }
    m8_db_result_free(r);
    return rc;
}

/* Whether user uid already has an identity at the generic provider issuer. */
static int has_identity(m8_db *db, const char *prefix, const char *issuer, const char *uid,
                        bool *yes)
{
    m8_db_param q[] = {M8_DB_TEXT(issuer), M8_DB_TEXT(uid)};
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, prefix,
                            "SELECT 1 FROM {p}_m8_oidc_identity WHERE issuer = ? AND user_id = ?",
                            q, 2, &r);
    *yes = rc == 0 && m8_db_nrows(r) > 0;
    m8_db_result_free(r);
    return rc;
}

/* Binds the identity to user uid (inside the caller's transaction). */
static int bind(m8_db *db, const char *prefix, const m8_oidc_provider *p, const char *sub,
                const char *uid)
{
    if (p->kind == M8_OIDC_GOOGLE) {
        char u[M8_UUID_STR_LEN + 1];
        m8_issuer_uuid_param(db, uid, u);
        m8_db_param q[] = {M8_DB_TEXT(sub), M8_DB_TEXT(u)};
        m8_db_result *r = NULL;
        int rc = m8_issuer_exec(
            db, prefix,
            "UPDATE {p}_user SET oauth_user_id = ? WHERE id = ? AND oauth_user_id IS NULL", q, 2,
            &r);
        int64_t n = rc == 0 ? m8_db_affected(r) : 0;
        m8_db_result_free(r);
        return rc ? rc : n == 1 ? 0 : M8_ENOTFOUND;
    }
    m8_db_param q[] = {M8_DB_TEXT(p->issuer), M8_DB_TEXT(sub), M8_DB_TEXT(uid),
                       M8_DB_INT(m8_db_now() / 1000000)};
    return m8_issuer_exec(db, prefix,
                          "INSERT INTO {p}_m8_oidc_identity (issuer, sub, user_id, created_at) "
                          "VALUES (?, ?, ?, ?)",
                          q, 4, NULL);
}

/* Later logins of the generic provider update the profile. */
static void sync_profile(m8_db *db, const char *prefix, const m8_oidc_identity *id,
                         m8_issuer_user *u)
{
    bool same_name = (!id->name && !u->full_name) ||
                     (id->name && u->full_name && strcmp(id->name, u->full_name) == 0);
    bool same_pic = (!id->picture && !u->avatar) ||
                    (id->picture && u->avatar && strcmp(id->picture, u->avatar) == 0);
    if (same_name && same_pic)
        return;
    char uid[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(db, u->id, uid);
    m8_db_param q[] = {id->name ? M8_DB_TEXT(id->name) : M8_DB_NULL,
                       id->picture ? M8_DB_TEXT(id->picture) : M8_DB_NULL, M8_DB_TIME(m8_db_now()),
                       M8_DB_TEXT(uid)};
    int rc = m8_issuer_exec(db, prefix,
                            "UPDATE {p}_user SET full_name = ?, avatar = ?, updated_at = ? WHERE "
                            "id = ?",
                            q, 4, NULL);
    if (rc == 0) {
        u->full_name = id->name;
        u->avatar = id->picture;
    } else {
        m8_log(M8_LOG_WARNING, "issuer: the profile of user %s was not synced (%d)", u->id, rc);
    }
}

/* The new account: created and bound in one transaction.  *raced: the
 * insert or the binding met a unique violation (a concurrent first sign-in);
 * read before the rollback, which clears the connection's last error. */
static int provision(m8_db *db, const char *prefix, const m8_oidc_provider *p,
                     const m8_oidc_identity *id, m8_issuer_user *u, bool *raced)
{
    *raced = false;
    memset(u, 0, sizeof *u);
    u->email = id->email;
    u->full_name = id->name;
    u->avatar = id->picture;
    snprintf(u->provider, sizeof u->provider, "%s", p->user_kind);
    snprintf(u->role, sizeof u->role, "%s", p->default_role);
    u->is_active = true;
    u->email_verified = id->email_verified;
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = m8_issuer_user_insert(db, prefix, u);
    if (rc == 0)
        rc = bind(db, prefix, p, id->sub, u->id);
    if (rc == 0)
        rc = m8_db_commit(db);
    *raced = rc == M8_EIO && m8_db_last_error(db)->kind == M8_DB_ERR_UNIQUE;
    if (rc != 0 && m8_db_in_transaction(db))
        m8_db_rollback(db);
    return rc;
}

int m8_oidc_bind_user(m8_db *db, const char *prefix, const m8_oidc_provider *p,
                      const m8_oidc_identity *id, m8_arena *a, m8_issuer_user *u,
                      const char **refusal)
{
    *refusal = NULL;
    if (!id->sub || (p->kind == M8_OIDC_GOOGLE && !id->email_verified)) {
        *refusal = "email_not_verified";
        return M8_ESTATE;
    }
    bool blk = false;
    int rc = blocked(db, prefix, p, id->sub, &blk);
    if (rc != 0)
        return rc;
    if (blk) {
        *refusal = "identity_blocked";
        return M8_ESTATE;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        char uid[M8_UUID_STR_LEN + 1];
        if ((rc = bound_id(db, prefix, p, id->sub, uid)) == M8_ESTATE) {
            *refusal = "subject_mismatch"; /* another sub, equal but for case */
            return M8_ESTATE;
        }
        if (rc != 0)
            return rc;
        if (uid[0]) {
            rc = m8_issuer_user_by_id(db, prefix, a, uid, false, u);
            if (rc == M8_ENOTFOUND) {
                *refusal = "account_missing";
                return M8_ESTATE;
            }
            if (rc != 0)
                return rc;
            if (!u->is_active) {
                *refusal = "inactive";
                return M8_ESTATE;
            }
            if (p->sync_profile)
                sync_profile(db, prefix, id, u);
            return 0;
        }
        if (!id->email) {
            *refusal = "no_email";
            return M8_ESTATE;
        }
        if (m8_issuer_email_reserved(id->email, strlen(id->email))) {
            *refusal = "email_reserved"; /* a service account's address */
            return M8_ESTATE;
        }
        rc = m8_issuer_user_by_email(db, prefix, a, id->email, u);
        if (rc == 0 && attempt == 0) {
            /* a concurrent first sign-in of this identity may have created
             * and bound the account since bound_id looked: look again */
            if ((rc = bound_id(db, prefix, p, id->sub, uid)) != 0 && rc != M8_ESTATE)
                return rc;
            if (rc == 0 && uid[0])
                continue;
            rc = 0;
        }
        if (rc == 0) {
            /* The email belongs to an account not bound to this identity:
             * never linked silently (doc/issuer.md#sso-oidc-and-google). */
            bool google_holder = strcmp(u->provider, "google") == 0;
            if (p->kind == M8_OIDC_GOOGLE && google_holder) {
                *refusal = "subject_mismatch";
                return M8_ESTATE;
            }
            if (!p->link_verified || !id->email_verified || !u->is_active) {
                *refusal = "email_in_use";
                return M8_ESTATE;
            }
            bool other = false;
            if (p->kind == M8_OIDC_GENERIC &&
                (rc = has_identity(db, prefix, p->issuer, u->id, &other)) != 0)
                return rc;
            if (other) {
                /* already bound to another subject of this provider: the
                 * email moved, the account does not (as Google's rule) */
                *refusal = "subject_mismatch";
                return M8_ESTATE;
            }
            rc = bind(db, prefix, p, id->sub, u->id);
            if (rc == M8_ENOTFOUND) {
                *refusal = "subject_mismatch"; /* bound to another identity meanwhile */
                return M8_ESTATE;
            }
            if (rc == 0)
                m8_log(M8_LOG_INFO,
                       "issuer: %s identity linked to the existing account %s by "
                       "its verified email",
                       p->label, u->id);
            return rc;
        }
        if (rc != M8_ENOTFOUND)
            return rc;
        bool raced = false;
        rc = provision(db, prefix, p, id, u, &raced);
        if (rc == 0) {
            m8_log(M8_LOG_INFO, "issuer: %s user %s created on first sign-in", p->label, u->id);
            return 0;
        }
        if (!raced)
            return rc;
        /* another sign-in of the same identity or email won the race: look again */
    }
    *refusal = "conflict";
    return M8_ESTATE;
}
