/* service_accounts.c - the superuser's /service-accounts/ routes
 * (service_accounts.h, doc/issuer.md#service-accounts-and-client-credentials):
 * create (the client secret shown once), list, read, change the role,
 * deactivate (its API keys revoked, its tokens' generation bumped), rotate
 * the secret, and the account's API keys through the API-key routes. */
#include "issuer/service_accounts.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "core/log.h"
#include "issuer/clientip.h"
#include "issuer/form_cc.h"
#include "issuer/revoke.h"
#include "issuer/users_body.h"

#define D_NOT_FOUND "Service account not found"
#define D_NAME_TAKEN "A service account with this name already exists"
#define D_INACTIVE "Service account is deactivated"
#define D_ALREADY_INACTIVE "Service account is already deactivated"

#define SA_COLS                                                                                    \
    "sa.user_id, sa.name, sa.description, sa.scopes, sa.created_at, sa.updated_at, "               \
    "sa.deactivated_at, u.role, u.is_active"
enum { C_ID, C_NAME, C_DESC, C_SCOPES, C_CREATED, C_UPDATED, C_DEACT, C_ROLE, C_ACTIVE };
#define SA_FROM "{p}_service_account sa JOIN {p}_user u ON u.id = sa.user_id"

/* ------------------------------------------------------------ rows */

void m8_issuer_sa_hash(const char *secret, size_t n, char out[M8_SA_HASH_LEN + 1])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)secret, n);
    sodium_bin2hex(out, M8_SA_HASH_LEN + 1, d, sizeof d);
    sodium_memzero(d, sizeof d);
}
int m8_issuer_sa_read(m8_db *db, const char *prefix, m8_arena *a, const char *id, m8_issuer_sa *out)
{
    memset(out, 0, sizeof *out);
    char p[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(db, id, p);
    if (!p[0])
        return M8_ENOTFOUND;
    m8_db_param v = M8_DB_TEXT(p);
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, prefix,
                            "SELECT user_id, name, description, scopes, secret_hash, "
                            "deactivated_at FROM {p}_service_account WHERE user_id = ?",
                            &v, 1, &r);
    if (rc == 0 && m8_db_nrows(r) != 1)
        rc = M8_ENOTFOUND;
    size_t n = 0;
    const char *s;
    if (rc == 0 && !m8_issuer_id_text(r, 0, 0, out->id))
        rc = M8_EPARSE;
    if (rc == 0) {
        s = m8_db_get_text(r, 0, 1, &n);
        snprintf(out->name, sizeof out->name, "%.*s", (int)(s ? n : 0), s ? s : "");
        s = m8_db_get_text(r, 0, 2, &n);
        out->description = s ? m8_arena_strndup(a, s, n) : NULL;
        if (s && !out->description)
            rc = M8_ENOMEM;
        s = m8_db_get_text(r, 0, 3, &n);
        out->scopes = m8_arena_strndup(a, s ? s : "", s ? n : 0);
        if (!out->scopes)
            rc = M8_ENOMEM;
        s = m8_db_get_text(r, 0, 4, &n);
        if (!s || n != M8_SA_HASH_LEN)
            rc = rc ? rc : M8_EPARSE;
        else
            memcpy(out->secret_hash, s, n), out->secret_hash[n] = '\0';
        if (!m8_db_is_null(r, 0, 5) && m8_db_get_time(r, 0, 5, &out->deactivated_us) != 0)
            rc = rc ? rc : M8_EPARSE;
    }
    m8_db_result_free(r);
    return rc;
}

int m8_issuer_sa_exists(m8_db *db, const char *prefix, const char *id, bool *is)
{
    char p[M8_UUID_STR_LEN + 1];
    *is = false;
    m8_issuer_uuid_param(db, id, p);
    if (!p[0])
        return 0;
    m8_db_param v = M8_DB_TEXT(p);
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, prefix, "SELECT 1 FROM {p}_service_account WHERE user_id = ?", &v,
                            1, &r);
    if (rc == 0)
        *is = m8_db_nrows(r) > 0;
    m8_db_result_free(r);
    return rc;
}
/* ServiceAccountPublic of row i of a SELECT SA_COLS. */
static json_object *sa_json(const m8_db_result *r, size_t i)
{
    char id[M8_UUID_STR_LEN + 1];
    if (!m8_issuer_id_text(r, i, C_ID, id))
        return NULL;
    json_object *o = json_object_new_object();
    size_t n = 0;
    const char *s = m8_db_get_text(r, i, C_NAME, &n);
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "client_id", json_object_new_string(id));
    json_object_object_add(o, "name", json_object_new_string_len(s ? s : "", s ? (int)n : 0));
    s = m8_db_get_text(r, i, C_DESC, &n);
    json_object_object_add(o, "description", s ? json_object_new_string_len(s, (int)n) : NULL);
    char role[16] = ""; /* stored as the upper-case member name, handed out lower-case */
    s = m8_db_get_text(r, i, C_ROLE, &n);
    for (size_t k = 0; s && k < n && k + 1 < sizeof role; k++) {
        role[k] = (char)(s[k] >= 'A' && s[k] <= 'Z' ? s[k] + 32 : s[k]);
        role[k + 1] = '\0';
    }
    json_object_object_add(o, "role", json_object_new_string(role));
    json_object *sc = json_object_new_array();
    s = m8_db_get_text(r, i, C_SCOPES, &n);
    for (size_t k = 0; s && k < n;) {
        size_t e = k;
        while (e < n && s[e] != ' ')
            e++;
        if (e > k)
            json_object_array_add(sc, json_object_new_string_len(s + k, (int)(e - k)));
        k = e + 1;
    }
    json_object_object_add(o, "scopes", sc);
    int active = 0;
    m8_db_get_bool(r, i, C_ACTIVE, &active);
    json_object_object_add(o, "is_active", json_object_new_boolean(active));
    json_object_object_add(o, "created_at", m8_issuer_time_json(r, i, C_CREATED));
    json_object_object_add(o, "updated_at", m8_issuer_time_json(r, i, C_UPDATED));
    json_object_object_add(o, "deactivated_at", m8_issuer_time_json(r, i, C_DEACT));
    return o;
}

/* The public form of account id: 0 with *out, M8_ENOTFOUND, or an error. */
static int sa_public(m8_db *db, const char *prefix, const char *id, json_object **out)
{
    char p[M8_UUID_STR_LEN + 1];
    *out = NULL;
    m8_issuer_uuid_param(db, id, p);
    m8_db_param v = M8_DB_TEXT(p);
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, prefix, "SELECT " SA_COLS " FROM " SA_FROM " WHERE sa.user_id = ?",
                            &v, 1, &r);
    if (rc == 0 && m8_db_nrows(r) != 1)
        rc = M8_ENOTFOUND;
    if (rc == 0 && !(*out = sa_json(r, 0)))
        rc = M8_EPARSE;
    m8_db_result_free(r);
    return rc;
}

static int answer_account(m8_request *req, const m8_issuer *iss, m8_db *db, const char *id,
                          int status, const char *secret)
{
    json_object *o = NULL;
    int rc = sa_public(db, iss->prefix, id, &o);
    if (rc == M8_ENOTFOUND)
        return m8_res_error(req, 404, D_NOT_FOUND);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "reading a service account");
    if (secret) {
        json_object_object_add(o, "client_secret", json_object_new_string(secret));
        m8_res_header(req, "Cache-Control", "no-store");
    }
    return m8_res_json(req, status, o);
}

/* A fresh client secret and its hash. */
static void new_secret(char out[M8_SA_SECRET_LEN + 1], char hash[M8_SA_HASH_LEN + 1])
{
    unsigned char rnd[32];
    randombytes_buf(rnd, sizeof rnd);
    size_t pl = sizeof M8_SA_SECRET_PREFIX - 1;
    memcpy(out, M8_SA_SECRET_PREFIX, pl);
    sodium_bin2base64(out + pl, M8_SA_SECRET_LEN + 1 - pl, rnd, sizeof rnd,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(rnd, sizeof rnd);
    m8_issuer_sa_hash(out, M8_SA_SECRET_LEN, hash);
}

/* ------------------------------------------------------------ create */

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > M8_SA_NAME_MAX || s[0] == '-' || s[0] == '_')
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

/* scopes: absent/null = none, else a list of at most M8_SA_SCOPES_MAX valid
 * scope tokens, joined with single spaces into the arena (*out). */
static void scopes_field(m8_ub *b, m8_arena *a, const char **out)
{
    json_object *v = NULL;
    *out = "";
    if (!json_object_object_get_ex(b->body, "scopes", &v) || json_object_is_type(v, json_type_null))
        return;
    size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
    if (!json_object_is_type(v, json_type_array) || n > M8_SA_SCOPES_MAX) {
        m8_ub_model_error(b, "scopes must be a list of at most 32 scope names");
        return;
    }
    char *j = m8_arena_alloc(a, n * (M8_SA_SCOPE_MAX + 1) + 1);
    if (!j)
        return;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        const char *s = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : "";
        size_t len = strlen(s);
        if (len > M8_SA_SCOPE_MAX || (size_t)json_object_get_string_len(e) != len ||
            !m8_cc_scope_valid(s, len) || memchr(s, ' ', len)) {
            m8_ub_model_error(b, "each scope must be 1-64 characters of RFC 6749 section 3.3 "
                                 "(printable ASCII without space, '\"' or '\\\\')");
            return;
        }
        if (o)
            j[o++] = ' ';
        memcpy(j + o, s, len);
        o += len;
    }
    j[o] = '\0';
    *out = j;
}

int m8_issuer_h_sa_create(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    static const char *const roles[] = {"admin", "writer", "reader", "user"};
    m8_ub b;
    const char *name = NULL, *desc = NULL, *role = NULL, *scopes = "";
    if (m8_ub_begin(req, &b) != 0)
        return 0;
    if (m8_ub_str(&b, "name", 1, M8_SA_NAME_MAX, false, true, &name) == 1 && !name_ok(name))
        m8_ub_model_error(&b, "name must be 1-64 lower-case letters, digits, '-' or '_', "
                              "starting with a letter or a digit");
    m8_ub_str(&b, "description", 0, M8_SA_DESC_MAX, true, false, &desc);
    m8_ub_enum(&b, "role", roles, M8_ARRAY_LEN(roles), false, &role);
    scopes_field(&b, &req->arena, &scopes);
    if (m8_ub_end(&b) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    const m8_user *c = m8_req_user(req);
    char email[M8_SA_NAME_MAX + sizeof M8_SA_EMAIL_DOMAIN + 2];
    snprintf(email, sizeof email, "%s@%s", name, M8_SA_EMAIL_DOMAIN);
    m8_issuer_user u;
    memset(&u, 0, sizeof u);
    u.email = email;
    u.full_name = name;
    memcpy(u.provider, "password", 9);
    snprintf(u.role, sizeof u.role, "%s", role ? role : "user");
    u.is_active = true;
    char secret[M8_SA_SECRET_LEN + 1], hash[M8_SA_HASH_LEN + 1];
    new_secret(secret, hash);
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = m8_issuer_user_insert(db, iss->prefix, &u);
    char idp[M8_UUID_STR_LEN + 1], byp[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(db, u.id, idp);
    m8_issuer_uuid_param(db, c ? c->id : NULL, byp);
    int64_t now = m8_db_now();
    m8_db_param p[] = {M8_DB_TEXT(idp),    M8_DB_TEXT(name), desc ? M8_DB_TEXT(desc) : M8_DB_NULL,
                       M8_DB_TEXT(scopes), M8_DB_TEXT(hash), byp[0] ? M8_DB_TEXT(byp) : M8_DB_NULL,
                       M8_DB_TIME(now),    M8_DB_TIME(now)};
    if (rc == 0)
        rc = m8_issuer_exec(db, iss->prefix,
                            "INSERT INTO {p}_service_account (user_id, name, description, scopes, "
                            "secret_hash, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, "
                            "?, ?, ?, ?)",
                            p, M8_ARRAY_LEN(p), NULL);
    if (rc == 0 && c && c->id)
        rc = m8_issuer_audit(db, iss->prefix, c->id, c->role, "add", u.id);
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc == M8_EIO && m8_db_last_error(db)->kind == M8_DB_ERR_UNIQUE) {
        m8_db_rollback(db);
        sodium_memzero(secret, sizeof secret);
        return m8_res_error(req, 409, D_NAME_TAKEN);
    }
    if (rc != 0) {
        sodium_memzero(secret, sizeof secret);
        return m8_issuer_fail(req, db, rc, "creating a service account");
    }
    m8_log(M8_LOG_INFO, "event=service_account.created id=%s name=%s role=%s by=%s", u.id, name,
           u.role, c && c->id ? c->id : "");
    int out = answer_account(req, iss, db, u.id, 201, secret);
    sodium_memzero(secret, sizeof secret);
    return out;
}

/* ------------------------------------------------------------ reads */

int m8_issuer_h_sa_list(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    json_object *errs = json_object_new_array();
    long long skip = 0, limit = 100;
    m8_ub_query_int(req, errs, "skip", 0, 0, &skip);
    m8_ub_query_int(req, errs, "limit", 100, 1, &limit);
    if (json_object_array_length(errs) > 0)
        return m8_ub_unprocessable(req, errs);
    json_object_put(errs);
    if (limit > 1000)
        limit = 1000;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_db_param p[] = {M8_DB_INT(limit), M8_DB_INT(skip)};
    m8_db_result *r = NULL;
    int64_t total = 0; /* count is every account, as /users/ counts (a page's caller needs it) */
    int rc =
        m8_issuer_exec(db, iss->prefix, "SELECT COUNT(*) FROM {p}_service_account", NULL, 0, &r);
    if (rc == 0 && m8_db_get_int(r, 0, 0, &total) != 0)
        rc = M8_EIO;
    m8_db_result_free(r);
    r = NULL;
    if (rc == 0)
        rc = m8_issuer_exec(db, iss->prefix,
                            "SELECT " SA_COLS " FROM " SA_FROM
                            " ORDER BY sa.created_at, sa.user_id LIMIT ? OFFSET ?",
                            p, 2, &r);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "listing service accounts");
    json_object *list = json_object_new_array();
    for (size_t i = 0; i < m8_db_nrows(r); i++) {
        json_object *o = sa_json(r, i);
        if (o)
            json_object_array_add(list, o);
    }
    m8_db_result_free(r);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "data", list);
    json_object_object_add(o, "count", json_object_new_int64(total));
    return m8_res_json(req, 200, o);
}

int m8_issuer_h_sa_get(m8_request *req, void *data)
{
    char id[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "user_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    return answer_account(req, data, db, id, 200, NULL);
}

/* ------------------------------------------------------------ changes */

/* In a transaction: the account's user row locked into *u, its account
 * row into *sa.  0, or 1 after the 404 (rolled back), or a database
 * error. */
static int lock_account(m8_request *req, const m8_issuer *iss, m8_db *db, const char *id,
                        m8_issuer_user *u, m8_issuer_sa *sa)
{
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = m8_issuer_user_by_id(db, iss->prefix, &req->arena, id, true, u);
    if (rc == 0)
        rc = m8_issuer_sa_read(db, iss->prefix, &req->arena, id, sa);
    if (rc == M8_ENOTFOUND) {
        m8_db_rollback(db);
        m8_res_error(req, 404, D_NOT_FOUND);
        return 1;
    }
    return rc;
}

/* Saves u, bumps its generation (tokens minted before are stale for the
 * consumers that check it), revokes its keys when asked, commits and
 * publishes; then answers the account. */
static int change(m8_request *req, const m8_issuer *iss, m8_db *db, m8_issuer_user *u,
                  bool revoke_keys, const char *what)
{
    const m8_user *c = m8_req_user(req);
    char client[M8_ISSUER_CLIENT_IP_MAX];
    m8_issuer_client_ip(req, iss->s, client);
    m8_issuer_acct acct = {.user_id = u->id,
                           .generation = u->auth_generation,
                           .actor_id = c ? c->id : u->id,
                           .actor_role = c ? c->role : NULL,
                           .client = client,
                           .revoke_api_keys = revoke_keys};
    int rc = m8_issuer_user_save(db, iss->prefix, u);
    if (rc == 0 && revoke_keys) {
        char p[M8_UUID_STR_LEN + 1];
        m8_issuer_uuid_param(db, u->id, p);
        int64_t now = m8_db_now();
        m8_db_param v[] = {M8_DB_TIME(now), M8_DB_TIME(now), M8_DB_TEXT(p)};
        rc = m8_issuer_exec(db, iss->prefix,
                            "UPDATE {p}_service_account SET deactivated_at = ?, updated_at = ? "
                            "WHERE user_id = ?",
                            v, 3, NULL);
    }
    if (rc == 0)
        rc = m8_issuer_acct_revoke(db, iss->prefix, &acct, (int64_t)time(NULL));
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, what);
    m8_issuer_acct_publish(db, iss->prefix, &acct);
    m8_log(M8_LOG_INFO, "event=service_account.%s id=%s role=%s by=%s",
           revoke_keys ? "deactivated" : "role_changed", u->id, u->role, c && c->id ? c->id : "");
    return answer_account(req, iss, db, u->id, 200, NULL);
}

int m8_issuer_h_sa_role(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    static const char *const roles[] = {"admin", "writer", "reader", "user"};
    char id[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "user_id", id) != 0)
        return 0;
    m8_ub b;
    const char *role = NULL;
    if (m8_ub_begin(req, &b) != 0)
        return 0;
    m8_ub_enum(&b, "role", roles, M8_ARRAY_LEN(roles), false, &role);
    if (role == NULL && json_object_object_get_ex(b.body, "role", NULL) == 0)
        m8_ub_model_error(&b, "role is required");
    if (m8_ub_end(&b) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_issuer_user u;
    m8_issuer_sa sa;
    int rc = lock_account(req, iss, db, id, &u, &sa);
    if (rc != 0)
        return rc == 1 ? 0 : m8_issuer_fail(req, db, rc, "changing a service account's role");
    if (strcmp(u.role, role) == 0) {
        m8_db_rollback(db);
        return answer_account(req, iss, db, id, 200, NULL);
    }
    snprintf(u.role, sizeof u.role, "%s", role);
    return change(req, iss, db, &u, false, "changing a service account's role");
}

int m8_issuer_h_sa_deactivate(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    char id[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "user_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_issuer_user u;
    m8_issuer_sa sa;
    int rc = lock_account(req, iss, db, id, &u, &sa);
    if (rc != 0)
        return rc == 1 ? 0 : m8_issuer_fail(req, db, rc, "deactivating a service account");
    /* the account's own mark decides: a user row made inactive by
     * /users/update can be made active again there, so it is deactivated
     * here all the same (keys revoked, deactivated_at set) */
    if (sa.deactivated_us) {
        m8_db_rollback(db);
        return m8_res_error(req, 409, D_ALREADY_INACTIVE);
    }
    u.is_active = false;
    return change(req, iss, db, &u, true, "deactivating a service account");
}

int m8_issuer_h_sa_secret(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    char id[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "user_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_issuer_user u;
    m8_issuer_sa sa;
    int rc = lock_account(req, iss, db, id, &u, &sa);
    if (rc != 0)
        return rc == 1 ? 0 : m8_issuer_fail(req, db, rc, "rotating a client secret");
    if (!u.is_active || sa.deactivated_us) {
        m8_db_rollback(db);
        return m8_res_error(req, 409, D_INACTIVE);
    }
    char secret[M8_SA_SECRET_LEN + 1], hash[M8_SA_HASH_LEN + 1], p[M8_UUID_STR_LEN + 1];
    new_secret(secret, hash);
    m8_issuer_uuid_param(db, id, p);
    m8_db_param v[] = {M8_DB_TEXT(hash), M8_DB_TIME(m8_db_now()), M8_DB_TEXT(p)};
    rc = m8_issuer_exec(db, iss->prefix,
                        "UPDATE {p}_service_account SET secret_hash = ?, updated_at = ? WHERE "
                        "user_id = ?",
                        v, 3, NULL);
    const m8_user *c = m8_req_user(req);
    if (rc == 0 && c && c->id)
        rc = m8_issuer_audit(db, iss->prefix, c->id, c->role, "edit", id);
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0) {
        sodium_memzero(secret, sizeof secret);
        return m8_issuer_fail(req, db, rc, "rotating a client secret");
    }
    m8_log(M8_LOG_INFO, "event=service_account.secret_rotated id=%s by=%s", id,
           c && c->id ? c->id : "");
    int out = answer_account(req, iss, db, id, 200, secret);
    sodium_memzero(secret, sizeof secret);
    return out;
}

/* ------------------------------------------------------------ API keys */

/* The account {user_id} must exist (and, to get a new key, be active);
 * then the superuser's API-key routes do the rest for that owner
 * (doc/issuer.md#api-keys). */
static int keys_route(m8_request *req, void *data, bool create)
{
    m8_issuer *iss = data;
    char id[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "user_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_issuer_user u;
    m8_issuer_sa sa;
    int rc = m8_issuer_user_by_id(db, iss->prefix, &req->arena, id, false, &u);
    if (rc == 0)
        rc = m8_issuer_sa_read(db, iss->prefix, &req->arena, id, &sa);
    if (rc == M8_ENOTFOUND)
        return m8_res_error(req, 404, D_NOT_FOUND);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "reading a service account");
    /* deactivation is final, even for a user row made active again */
    if (create && (!u.is_active || sa.deactivated_us))
        return m8_res_error(req, 409, D_INACTIVE);
    return create ? m8_issuer_h_apikeys_su_create(req, data)
                  : m8_issuer_h_apikeys_by_user(req, data);
}

int m8_issuer_h_sa_keys_create(m8_request *req, void *data)
{
    return keys_route(req, data, true);
}

int m8_issuer_h_sa_keys_list(m8_request *req, void *data)
{
    return keys_route(req, data, false);
}

int m8_issuer_sa_refuse_self(m8_request *req, const m8_issuer *iss, m8_db *db)
{
    const m8_user *c = m8_req_user(req);
    bool is = false;
    int rc = c && c->id ? m8_issuer_sa_exists(db, iss->prefix, c->id, &is) : 0;
    if (rc != 0) {
        m8_issuer_db_fail(req, rc, "service-account check");
        return 1;
    }
    if (!is)
        return 0;
    m8_res_error(req, 403, M8_SA_D_SELF);
    return 1;
}
