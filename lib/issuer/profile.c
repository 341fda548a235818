/* profile.c - the self-service routes of the issuer
 * (doc/issuer.md#users-and-profile): POST /login/test-token/, GET
 * /profile/get/me/, PATCH /profile/update/me/, PATCH /profile/me/password/,
 * DELETE /profile/delete/me/.  The caller is the token's subject; every
 * answer reads its row (decision: not the claims). */
#include "issuer/service.h"

#include <json-c/json.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "app/stream.h"
#include "core/log.h"
#include "issuer/clientip.h"
#include "issuer/revoke.h"
#include "issuer/service_accounts.h"
#include "issuer/users_body.h"

#define ARENA_MAX (256u << 10)

#define D_NOT_FOUND "User not found"
#define D_INCORRECT "Incorrect password"
#define D_NO_PASSWORD_OPS "Password operations are not available for this account"

typedef int (*profile_fn)(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a);

/* Runs fn with the request's database and an arena for the rows it reads. */
static int with_arena(m8_request *req, void *data, profile_fn fn)
{
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_arena a;
    m8_arena_init(&a, ARENA_MAX);
    int r = fn(req, data, db, &a);
    if (m8_db_in_transaction(db))
        m8_db_rollback(db);
    m8_arena_free(&a);
    return r;
}

/* The caller's row (for_update inside a transaction): 0, or 1 after the
 * answer (404, 403 for a row deactivated since the token was issued, or a
 * failure). */
static int self_row(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a, bool for_update,
                    m8_issuer_user *u)
{
    int rc = m8_issuer_user_by_id(db, iss->prefix, a, m8_req_user(req)->id, for_update, u);
    if (rc == 0 && u->is_active)
        return 0;
    if (m8_db_in_transaction(db))
        m8_db_rollback(db);
    if (rc == 0) /* deactivated since the token was issued */
        m8_res_error(req, 403, "Inactive user");
    else if (rc == M8_ENOTFOUND)
        m8_res_error(req, 404, D_NOT_FOUND);
    else
        m8_issuer_fail(req, db, rc, "reading the caller's row");
    return 1;
}

/* Checks pwd against hash: 0 on a match, else 1 after the answer (400
 * Incorrect password, 503 when every hashing slot stayed busy). */
static int check_password(m8_request *req, m8_issuer *iss, const char *hash, const char *pwd)
{
    /* a hash (and a new one next): m8_pw_verify hands the rest over */
    m8_pw_result r = m8_pw_verify(iss->pw, hash, pwd, strlen(pwd));
    if (r == M8_PW_MATCH)
        return 0;
    if (r == M8_PW_NO_MATCH)
        m8_res_error(req, 400, D_INCORRECT);
    else if (r == M8_PW_BUSY)
        m8_res_error(req, 503, M8_ISSUER_DETAIL_AUTH_DOWN);
    else
        m8_issuer_fail(req, NULL, M8_EIO, "checking a password");
    return 1;
}

static bool canonical_su(const char *role, bool is_superuser)
{
    return is_superuser && strcmp(role, "superadmin") == 0;
}

/* ------------------------------------------------------------ reads */

static int me(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a)
{
    m8_issuer_user u;
    if (self_row(req, iss, db, a, false, &u))
        return 0;
    return m8_res_json(req, 200, m8_issuer_user_public(&u));
}

int m8_issuer_h_test_token(m8_request *req, void *data)
{
    return with_arena(req, data, me);
}

int m8_issuer_h_me(m8_request *req, void *data)
{
    return with_arena(req, data, me);
}

/* ------------------------------------------------------------ password */

static int password_me(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a)
{
    m8_ub b;
    const char *cur = NULL, *neu = NULL;
    if (m8_ub_begin(req, &b) != 0)
        return 0;
    m8_ub_str(&b, "current_password", M8_ISSUER_PASSWORD_MIN, M8_ISSUER_PASSWORD_MAX, false, true,
              &cur);
    m8_ub_str(&b, "new_password", M8_ISSUER_PASSWORD_MIN, M8_ISSUER_PASSWORD_MAX, false, true,
              &neu);
    if (m8_ub_end(&b) != 0)
        return 0;
    m8_issuer_user u;
    if (self_row(req, iss, db, a, false, &u))
        return 0;
    if (strcmp(u.provider, "password") != 0)
        return m8_res_error(req, 403, D_NO_PASSWORD_OPS);
    if (check_password(req, iss, u.hashed_password, cur))
        return 0;
    if (strlen(cur) == strlen(neu) && sodium_memcmp(cur, neu, strlen(cur)) == 0)
        return m8_res_error(req, 400, "New password cannot be the same as the current one");
    char hash[M8_PW_HASH_MAX];
    int rc = m8_pw_hash(iss->pw, neu, strlen(neu), hash);
    if (rc == M8_EAGAIN)
        return m8_res_error(req, 503, M8_ISSUER_DETAIL_AUTH_DOWN);
    if (rc != 0)
        return m8_issuer_fail(req, NULL, rc, "hashing a new password");

    const m8_user *c = m8_req_user(req);
    char client[M8_ISSUER_CLIENT_IP_MAX];
    m8_issuer_client_ip(req, iss->s, client);
    m8_issuer_acct acct = {.actor_id = c->id, .actor_role = c->role, .client = client};
    m8_issuer_user l;
    rc = m8_db_begin(db);
    if (rc != 0) {
        sodium_memzero(hash, sizeof hash);
        return m8_issuer_fail(req, db, rc, "password change");
    }
    if (self_row(req, iss, db, a, true, &l)) {
        sodium_memzero(hash, sizeof hash);
        return 0;
    }
    /* the hash checked above must still be the stored one */
    if (!l.hashed_password || !u.hashed_password || strcmp(l.hashed_password, u.hashed_password)) {
        sodium_memzero(hash, sizeof hash);
        m8_db_rollback(db);
        return m8_res_error(req, 400, D_INCORRECT);
    }
    rc = m8_issuer_user_set_hash(db, iss->prefix, l.id, hash);
    sodium_memzero(hash, sizeof hash);
    acct.user_id = l.id;
    acct.generation = l.auth_generation;
    if (rc == 0)
        rc = m8_issuer_acct_revoke(db, iss->prefix, &acct, (int64_t)time(NULL));
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "password change");
    m8_issuer_acct_publish(db, iss->prefix, &acct);
    m8_log(M8_LOG_INFO, "event=password.changed user_id=%s sessions_revoked=%zu", l.id,
           acct.sessions);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message", json_object_new_string("Password updated successfully"));
    return m8_res_json(req, 200, o);
}

int m8_issuer_h_password_me(m8_request *req, void *data)
{
    return with_arena(req, data, password_me);
}

/* ------------------------------------------------------------ update */

static int update_me(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a)
{
    if (m8_issuer_sa_refuse_self(req, iss, db))
        return 0;
    m8_ub b;
    const char *email = NULL, *full_name = NULL, *avatar = NULL, *cur = NULL;
    if (m8_ub_begin(req, &b) != 0)
        return 0;
    m8_ub_forbid(&b, "is_superuser");
    m8_ub_email(&b, "email", true, false, &email);
    int has_name = m8_ub_str(&b, "full_name", 0, M8_ISSUER_FULL_NAME_MAX, true, false, &full_name);
    int has_avatar = m8_ub_avatar(&b, "avatar", &avatar);
    m8_ub_str(&b, "current_password", M8_ISSUER_PASSWORD_MIN, M8_ISSUER_PASSWORD_MAX, true, false,
              &cur);
    if (m8_ub_end(&b) != 0)
        return 0;
    m8_issuer_user u;
    if (self_row(req, iss, db, a, false, &u))
        return 0;
    bool email_change = email && strcmp(email, u.email) != 0;
    if (email_change) {
        if (strcmp(u.provider, "google") == 0)
            return m8_res_error(req, 403, "The email of a Google account cannot be changed");
        if (!cur)
            return m8_res_error(req, 400, "current_password is required to change the email");
        if (check_password(req, iss, u.hashed_password, cur))
            return 0;
        m8_issuer_user other;
        int rc = m8_issuer_user_by_email(db, iss->prefix, a, email, &other);
        if (rc == 0 && strcmp(other.id, u.id) != 0)
            return m8_res_error(req, 409, "User with this email already exists");
        if (rc != 0 && rc != M8_ENOTFOUND)
            return m8_issuer_fail(req, db, rc, "email lookup");
    }
    int rc = m8_db_begin(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "profile update");
    if (self_row(req, iss, db, a, true, &u))
        return 0;
    /* only a change whose password was checked above is applied */
    email_change = email_change && strcmp(email, u.email) != 0;
    if (email_change) {
        u.email = email;
        u.email_verified = false;
    }
    if (has_name == 1)
        u.full_name = full_name;
    if (has_avatar == 1)
        u.avatar = avatar;
    const m8_user *c = m8_req_user(req);
    char client[M8_ISSUER_CLIENT_IP_MAX];
    m8_issuer_client_ip(req, iss->s, client);
    m8_issuer_acct acct = {.user_id = u.id,
                           .generation = u.auth_generation,
                           .actor_id = c->id,
                           .actor_role = c->role,
                           .client = client};
    rc = m8_issuer_user_save(db, iss->prefix, &u);
    if (rc == M8_EIO && m8_db_last_error(db)->kind == M8_DB_ERR_UNIQUE) {
        m8_db_rollback(db);
        return m8_res_error(req, 409, "User with this email already exists");
    }
    if (rc == 0 && email_change)
        rc = m8_issuer_acct_revoke(db, iss->prefix, &acct, (int64_t)time(NULL));
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "profile update");
    if (email_change) {
        u.auth_generation = acct.new_generation;
        m8_issuer_acct_publish(db, iss->prefix, &acct);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "success", json_object_new_boolean(true));
    json_object_object_add(o, "user", m8_issuer_user_public(&u));
    return m8_res_json(req, 200, o);
}

int m8_issuer_h_update_me(m8_request *req, void *data)
{
    return with_arena(req, data, update_me);
}

/* ------------------------------------------------------------ delete */

static int delete_me(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a)
{
    if (m8_issuer_sa_refuse_self(req, iss, db))
        return 0;
    const m8_user *c = m8_req_user(req);
    char client[M8_ISSUER_CLIENT_IP_MAX];
    m8_issuer_client_ip(req, iss->s, client);
    int rc = m8_db_begin(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "self deletion");
    m8_issuer_user u;
    if (self_row(req, iss, db, a, true, &u))
        return 0;
    if (canonical_su(c->role, c->is_superuser) || canonical_su(u.role, u.is_superuser)) {
        m8_db_rollback(db);
        return m8_res_error(req, 403, "Super users are not allowed to delete themselves");
    }
    m8_issuer_acct acct = {.user_id = u.id,
                           .generation = u.auth_generation,
                           .actor_id = c->id,
                           .actor_role = c->role,
                           .client = client,
                           .delete_user = true};
    rc = m8_issuer_acct_revoke(db, iss->prefix, &acct, (int64_t)time(NULL));
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "self deletion");
    m8_issuer_acct_publish(db, iss->prefix, &acct);
    m8_log(M8_LOG_INFO, "event=user.deleted user_id=%s by=self", u.id);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message", json_object_new_string("User deleted successfully"));
    return m8_res_json(req, 200, o);
}

int m8_issuer_h_delete_me(m8_request *req, void *data)
{
    return with_arena(req, data, delete_me);
}
