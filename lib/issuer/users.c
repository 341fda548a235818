/* users.c - the canonical superuser's /users/ routes of the issuer
 * (doc/issuer.md#users-and-profile): list, create (new_user, signup), read,
 * update (with the account revocation and the last-superuser rule) and
 * delete. */
#include "issuer/service.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "issuer/audit.h"
#include "issuer/clientip.h"
#include "issuer/revoke.h"
#include "issuer/users_body.h"

#define ARENA_MAX (1u << 20)
/* The most rows one GET /users/ returns (decision: fa-auth-m8 has no cap). */
#define LIST_MAX 1000

#define D_NOT_FOUND "User not found"
#define D_NO_SUCH_ID "The user with this id does not exist in the system"
#define D_EMAIL_TAKEN "User with this email already exists"
#define D_NO_PASSWORD_OPS "Password operations are not available for this account"

static const char *const PROVIDERS[] = {"password", "google"};

typedef int (*users_fn)(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a);

static int with_arena(m8_request *req, void *data, users_fn fn)
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

static int message(m8_request *req, const char *text)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message", json_object_new_string(text));
    return m8_res_json(req, 200, o);
}

static bool canonical_su(const m8_issuer_user *u)
{
    return u->is_superuser && strcmp(u->role, "superadmin") == 0;
}

/* A stored id (36 or 32 characters) in the 8-4-4-4-12 form. */
static bool id_text(const char *v, size_t n, char out[M8_UUID_STR_LEN + 1])
{
    if (n == 32) {
        char h[M8_UUID_STR_LEN + 1];
        snprintf(h, sizeof h, "%.8s-%.4s-%.4s-%.4s-%.12s", v, v + 8, v + 12, v + 16, v + 20);
        return m8_uuid_canon(h, M8_UUID_STR_LEN, out);
    }
    return m8_uuid_canon(v, n, out);
}

/* ------------------------------------------------------------ list, get */

static int users_list(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a)
{
    json_object *errs = json_object_new_array();
    long long skip = 0, limit = 100;
    m8_ub_query_int(req, errs, "skip", 0, 0, &skip);
    m8_ub_query_int(req, errs, "limit", 100, 0, &limit);
    if (json_object_array_length(errs) > 0)
        return m8_ub_unprocessable(req, errs);
    json_object_put(errs);
    if (limit > LIST_MAX)
        limit = LIST_MAX;
    m8_db_result *ids = NULL, *cnt = NULL;
    m8_db_param p[] = {M8_DB_INT(limit), M8_DB_INT(skip)};
    int64_t count = 0;
    int rc = m8_issuer_exec(db, iss->prefix, "SELECT COUNT(*) FROM {p}_user", NULL, 0, &cnt);
    if (rc == 0 && m8_db_get_int(cnt, 0, 0, &count) != 0)
        rc = M8_EIO;
    m8_db_result_free(cnt);
    if (rc == 0)
        rc = m8_issuer_exec(db, iss->prefix,
                            "SELECT id FROM {p}_user ORDER BY created_at, id LIMIT ? OFFSET ?", p,
                            2, &ids);
    json_object *data = json_object_new_array();
    for (size_t i = 0; rc == 0 && i < m8_db_nrows(ids); i++) {
        size_t n = 0;
        const char *v = m8_db_get_text(ids, i, 0, &n);
        char id[M8_UUID_STR_LEN + 1];
        m8_issuer_user u;
        if (!v || !id_text(v, n, id))
            continue;
        rc = m8_issuer_user_by_id(db, iss->prefix, a, id, false, &u);
        if (rc == M8_ENOTFOUND) { /* deleted meanwhile */
            rc = 0;
            continue;
        }
        if (rc == 0)
            json_object_array_add(data, m8_issuer_user_public(&u));
        m8_arena_reset(a);
    }
    m8_db_result_free(ids);
    if (rc != 0) {
        json_object_put(data);
        return m8_issuer_fail(req, db, rc, "listing users");
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "data", data);
    json_object_object_add(o, "count", json_object_new_int64(count));
    return m8_res_json(req, 200, o);
}

int m8_issuer_h_users_list(m8_request *req, void *data)
{
    return with_arena(req, data, users_list);
}

static int users_get(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a)
{
    char id[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "user_id", id) != 0)
        return 0;
    m8_issuer_user u;
    int rc = m8_issuer_user_by_id(db, iss->prefix, a, id, false, &u);
    if (rc == M8_ENOTFOUND)
        return m8_res_error(req, 404, D_NOT_FOUND);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "reading a user");
    return m8_res_json(req, 200, m8_issuer_user_public(&u));
}

int m8_issuer_h_users_get(m8_request *req, void *data)
{
    return with_arena(req, data, users_get);
}

/* ------------------------------------------------------------ create */

/* Hashes pwd into hash: 0, or 1 after the answer. */
static int hash_password(m8_request *req, m8_issuer *iss, const char *pwd,
                         char hash[M8_PW_HASH_MAX])
{
    int rc = m8_pw_hash(iss->pw, pwd, strlen(pwd), hash);
    if (rc == 0)
        return 0;
    if (rc == M8_EAGAIN)
        m8_res_error(req, 503, M8_ISSUER_DETAIL_AUTH_DOWN);
    else
        m8_issuer_fail(req, NULL, rc, "hashing a password");
    return 1;
}

/* The audit row of the caller's action on user id, in the open
 * transaction (doc/issuer.md#audit-and-security-routes). */
static int audit(m8_request *req, m8_issuer *iss, m8_db *db, const char *action, const char *id)
{
    const m8_user *c = m8_req_user(req);
    char client[M8_ISSUER_CLIENT_IP_MAX];
    m8_issuer_client_ip(req, iss->s, client);
    m8_issuer_audit_entry e = {.actor_id = c->id,
                               .actor_role = c->role,
                               .action = action,
                               .table = "user",
                               .row_pk = id,
                               .owner = id,
                               .client = client};
    return m8_issuer_audit_row(db, iss->prefix, &e, NULL);
}

/* Inserts u (with password pwd and oauth_user_id sub, either may be NULL)
 * and its "add" audit row; dup is the 400 detail of a taken email. */
static int create(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a, m8_issuer_user *u,
                  const char *pwd, const char *sub, const char *dup)
{
    m8_issuer_user other;
    int rc = m8_issuer_user_by_email(db, iss->prefix, a, u->email, &other);
    if (rc == 0)
        return m8_res_error(req, 400, dup);
    if (rc != M8_ENOTFOUND)
        return m8_issuer_fail(req, db, rc, "email lookup");
    char hash[M8_PW_HASH_MAX] = "";
    if (pwd && hash_password(req, iss, pwd, hash))
        return 0;
    u->hashed_password = pwd ? hash : NULL;
    const m8_user *c = m8_req_user(req);
    rc = m8_db_begin(db);
    if (rc == 0)
        rc = m8_issuer_user_insert(db, iss->prefix, u);
    if (rc == 0 && sub)
        rc = m8_issuer_user_set_oauth(db, iss->prefix, u->id, sub);
    if (rc == 0)
        rc = audit(req, iss, db, "add", u->id);
    if (rc == 0)
        rc = m8_db_commit(db);
    sodium_memzero(hash, sizeof hash);
    u->hashed_password = NULL;
    if (rc == M8_EIO && m8_db_last_error(db)->kind == M8_DB_ERR_UNIQUE) {
        m8_db_error e = *m8_db_last_error(db);
        m8_db_rollback(db);
        bool email = strcmp(e.field, "email") == 0 || strstr(e.constraint, "email") ||
                     (!e.field[0] && !e.constraint[0]);
        if (email)
            return m8_res_error(req, 400, dup); /* a concurrent creation won */
        /* an integrity error: the envelope, with its stated status */
        return m8_issuer_envelope(req, 400, "Integrity error.", "IntegrityError",
                                  e.table[0] ? e.table : NULL, e.field,
                                  "A record with this value already exists.");
    }
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "creating a user");
    m8_log(M8_LOG_INFO, "event=user.created user_id=%s by=%s", u->id, c->id);
    return m8_res_json(req, 200, m8_issuer_user_public(u));
}

static int users_new(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a)
{
    m8_ub b;
    const char *email = NULL, *pwd = NULL, *name = NULL, *avatar = NULL, *role = NULL,
               *provider = NULL, *sub = NULL;
    bool active = true, verified = false;
    if (m8_ub_begin(req, &b) != 0)
        return 0;
    m8_ub_forbid(&b, "is_superuser");
    int ok_email = m8_ub_email(&b, "email", false, true, &email);
    int ok_pwd = m8_ub_str(&b, "password", M8_ISSUER_PASSWORD_MIN, M8_ISSUER_PASSWORD_MAX, true,
                           false, &pwd);
    m8_ub_str(&b, "full_name", 0, M8_ISSUER_FULL_NAME_MAX, true, false, &name);
    m8_ub_avatar(&b, "avatar", &avatar);
    m8_ub_enum(&b, "role", m8_issuer_roles, 5, false, &role);
    m8_ub_bool(&b, "is_active", &active);
    m8_ub_bool(&b, "email_verified", &verified);
    int ok_prov = m8_ub_enum(&b, "provider", PROVIDERS, 2, false, &provider);
    int ok_sub = m8_ub_str(&b, "oauth_user_id", 1, M8_ISSUER_OAUTH_ID_MAX, true, false, &sub);
    bool google = provider && strcmp(provider, "google") == 0;
    if (ok_email >= 0 && ok_pwd >= 0 && ok_prov >= 0 && ok_sub >= 0) {
        if (google && pwd)
            m8_ub_model_error(&b, "a Google account has no password");
        else if (google && !sub)
            m8_ub_model_error(&b, "oauth_user_id is required for a Google account");
        else if (!google && !pwd)
            m8_ub_model_error(&b, "password is required for a password account");
    }
    if (m8_ub_end(&b) != 0)
        return 0;
    m8_issuer_user u;
    memset(&u, 0, sizeof u);
    u.email = email;
    u.full_name = name;
    u.avatar = avatar;
    snprintf(u.role, sizeof u.role, "%s", role ? role : "user");
    snprintf(u.provider, sizeof u.provider, "%s", google ? "google" : "password");
    u.is_active = active;
    u.email_verified = verified;
    return create(req, iss, db, a, &u, pwd, sub,
                  "The user with this email already exists in the system.");
}

int m8_issuer_h_users_new(m8_request *req, void *data)
{
    return with_arena(req, data, users_new);
}

static int users_signup(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a)
{
    m8_ub b;
    const char *email = NULL, *pwd = NULL, *name = NULL;
    if (m8_ub_begin(req, &b) != 0)
        return 0;
    m8_ub_forbid(&b, "is_superuser");
    m8_ub_email(&b, "email", false, true, &email);
    m8_ub_str(&b, "password", M8_ISSUER_PASSWORD_MIN, M8_ISSUER_PASSWORD_MAX, false, true, &pwd);
    m8_ub_str(&b, "full_name", 0, M8_ISSUER_FULL_NAME_MAX, true, false, &name);
    if (m8_ub_end(&b) != 0)
        return 0;
    m8_issuer_user u;
    memset(&u, 0, sizeof u);
    u.email = email;
    u.full_name = name;
    memcpy(u.role, "user", 5);
    memcpy(u.provider, "password", 9);
    u.is_active = true;
    return create(req, iss, db, a, &u, pwd, NULL,
                  "The user with this email already exists in the system");
}

int m8_issuer_h_users_signup(m8_request *req, void *data)
{
    return with_arena(req, data, users_signup);
}

/* ------------------------------------------------------------ update */

typedef struct upd {
    const char *email, *name, *avatar, *pwd, *sub, *role, *provider;
    int has_name, has_avatar, has_sub, has_active;
    bool active;
} upd;

static int read_update(m8_request *req, upd *f)
{
    m8_ub b;
    memset(f, 0, sizeof *f);
    if (m8_ub_begin(req, &b) != 0)
        return -1;
    m8_ub_forbid(&b, "is_superuser");
    m8_ub_email(&b, "email", true, false, &f->email);
    f->has_name = m8_ub_str(&b, "full_name", 0, M8_ISSUER_FULL_NAME_MAX, true, false, &f->name);
    f->has_avatar = m8_ub_avatar(&b, "avatar", &f->avatar);
    m8_ub_str(&b, "password", M8_ISSUER_PASSWORD_MIN, M8_ISSUER_PASSWORD_MAX, true, false, &f->pwd);
    f->has_sub = m8_ub_str(&b, "oauth_user_id", 1, M8_ISSUER_OAUTH_ID_MAX, true, false, &f->sub);
    m8_ub_enum(&b, "role", m8_issuer_roles, 5, true, &f->role);
    f->has_active = m8_ub_bool(&b, "is_active", &f->active);
    m8_ub_enum(&b, "provider", PROVIDERS, 2, true, &f->provider);
    return m8_ub_end(&b);
}

static int users_update(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a)
{
    char id[M8_UUID_STR_LEN + 1], hash[M8_PW_HASH_MAX] = "";
    upd f;
    if (m8_ub_path_uuid(req, "user_id", id) != 0 || read_update(req, &f) != 0)
        return 0;
    if (f.pwd && hash_password(req, iss, f.pwd, hash))
        return 0;
    const m8_user *c = m8_req_user(req);
    int64_t active_su = 0;
    bool su_relevant = f.role || f.has_active == 1;
    int rc = m8_db_begin(db);
    if (rc == 0 && su_relevant)
        rc = m8_issuer_su_lock(db, iss->prefix, &active_su);
    m8_issuer_user u, other;
    memset(&u, 0, sizeof u);
    if (rc == 0)
        rc = m8_issuer_user_by_id(db, iss->prefix, a, id, true, &u);
    int status = 0;
    const char *detail = NULL;
    if (rc == M8_ENOTFOUND) {
        rc = 0;
        status = 404;
        detail = D_NO_SUCH_ID;
    }
    const char *role = f.role ? f.role : u.role;
    const char *provider = f.provider ? f.provider : u.provider;
    bool active = f.has_active == 1 ? f.active : u.is_active;
    char me[M8_UUID_STR_LEN + 1];
    bool self = status == 0 && m8_uuid_canon(c->id, strlen(c->id), me) && strcmp(me, u.id) == 0;
    if (rc == 0 && !status && self && m8_issuer_role_rank(role) < m8_issuer_role_rank(u.role)) {
        status = 403;
        detail = "A user may not raise their own role";
    }
    if (rc == 0 && !status && f.pwd && strcmp(provider, "password") != 0) {
        status = 403;
        detail = D_NO_PASSWORD_OPS;
    }
    bool email_change = rc == 0 && !status && f.email && strcmp(f.email, u.email) != 0;
    if (email_change) {
        rc = m8_issuer_user_by_email(db, iss->prefix, a, f.email, &other);
        if (rc == 0 && strcmp(other.id, u.id) != 0) {
            status = 409;
            detail = D_EMAIL_TAKEN;
        }
        if (rc == M8_ENOTFOUND || rc == 0)
            rc = 0;
    }
    bool now_su = strcmp(role, "superadmin") == 0 && active;
    if (rc == 0 && !status && canonical_su(&u) && u.is_active && !now_su && active_su <= 1) {
        status = 409;
        detail = M8_ISSUER_DETAIL_LAST_SU;
    }
    if (rc != 0 || status) {
        sodium_memzero(hash, sizeof hash);
        m8_db_rollback(db);
        return rc ? m8_issuer_fail(req, db, rc, "updating a user")
                  : m8_res_error(req, status, detail);
    }
    bool role_change = strcmp(role, u.role) != 0, active_change = active != u.is_active;
    bool provider_change = strcmp(provider, u.provider) != 0;
    char client[M8_ISSUER_CLIENT_IP_MAX];
    m8_issuer_client_ip(req, iss->s, client);
    m8_issuer_acct acct = {.user_id = u.id,
                           .generation = u.auth_generation,
                           .actor_id = c->id,
                           .actor_role = c->role,
                           .client = client,
                           .revoke_api_keys = active_change && !active};
    if (email_change)
        u.email = f.email;
    if (f.has_name == 1)
        u.full_name = f.name;
    if (f.has_avatar == 1)
        u.avatar = f.avatar;
    if (f.pwd)
        u.hashed_password = hash;
    if (f.role) /* else role is u.role itself */
        snprintf(u.role, sizeof u.role, "%s", f.role);
    if (f.provider)
        snprintf(u.provider, sizeof u.provider, "%s", f.provider);
    u.is_active = active;
    rc = m8_issuer_user_save(db, iss->prefix, &u);
    sodium_memzero(hash, sizeof hash);
    u.hashed_password = NULL;
    if (rc == M8_EIO && m8_db_last_error(db)->kind == M8_DB_ERR_UNIQUE) {
        m8_db_rollback(db);
        return m8_res_error(req, 409, D_EMAIL_TAKEN);
    }
    if (rc == 0 && f.has_sub == 1)
        rc = m8_issuer_user_set_oauth(db, iss->prefix, u.id, f.sub);
    bool revoke = role_change || active_change || email_change || f.pwd || provider_change;
    if (rc == 0)
        rc = revoke ? m8_issuer_acct_revoke(db, iss->prefix, &acct, (int64_t)time(NULL))
                    : audit(req, iss, db, "edit", u.id);
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "updating a user");
    if (revoke) {
        u.auth_generation = acct.new_generation;
        m8_issuer_acct_publish(db, iss->prefix, &acct);
    }
    json_object *o = m8_issuer_user_public(&u);
    json_object_object_add(o, "auth_generation", json_object_new_int64(u.auth_generation));
    json_object_object_add(o, "revocation_enqueued", json_object_new_boolean(revoke));
    return m8_res_json(req, 200, o);
}

int m8_issuer_h_users_update(m8_request *req, void *data)
{
    return with_arena(req, data, users_update);
}

/* ------------------------------------------------------------ delete */

static int users_delete(m8_request *req, m8_issuer *iss, m8_db *db, m8_arena *a)
{
    char id[M8_UUID_STR_LEN + 1], sub[M8_ISSUER_OAUTH_ID_MAX + 1] = "",
                                                               me[M8_UUID_STR_LEN + 1] = "";
    if (m8_ub_path_uuid(req, "user_id", id) != 0)
        return 0;
    const m8_user *c = m8_req_user(req);
    int64_t active_su = 0;
    m8_issuer_user u;
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = m8_issuer_su_lock(db, iss->prefix, &active_su);
    if (rc == 0)
        rc = m8_issuer_user_by_id(db, iss->prefix, a, id, true, &u);
    if (rc == M8_ENOTFOUND) {
        m8_db_rollback(db);
        return m8_res_error(req, 404, D_NOT_FOUND);
    }
    if (rc == 0 && canonical_su(&u) && u.is_active && active_su <= 1) {
        m8_db_rollback(db);
        return m8_res_error(req, 409, M8_ISSUER_DETAIL_LAST_SU);
    }
    bool self = m8_uuid_canon(c->id, strlen(c->id), me) && rc == 0 && strcmp(me, u.id) == 0;
    if (rc == 0 && !self && strcmp(u.provider, "google") == 0)
        rc = m8_issuer_user_oauth(db, iss->prefix, u.id, sub, sizeof sub);
    char client[M8_ISSUER_CLIENT_IP_MAX];
    m8_issuer_client_ip(req, iss->s, client);
    m8_issuer_acct acct = {.user_id = u.id,
                           .generation = u.auth_generation,
                           .actor_id = c->id,
                           .actor_role = c->role,
                           .client = client,
                           .delete_user = true,
                           .google_sub = sub[0] ? sub : NULL};
    if (rc == 0)
        rc = m8_issuer_acct_revoke(db, iss->prefix, &acct, (int64_t)time(NULL));
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "deleting a user");
    m8_issuer_acct_publish(db, iss->prefix, &acct);
    m8_log(M8_LOG_INFO, "event=user.deleted user_id=%s by=%s", u.id, me);
    return message(req, "User deleted successfully");
}

int m8_issuer_h_users_delete(m8_request *req, void *data)
{
    return with_arena(req, data, users_delete);
}
