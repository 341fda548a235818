/* users_db.c - the issuer's user rows (doc/issuer.md#tables): reads by email
 * and by id, insert, hash update, the token fields and UserPublic.  Roles
 * and providers are stored as fa-auth-m8's upper-case member names and
 * handed out as the lower-case wire values; ids are native uuid on
 * PostgreSQL and 32 hex digits on MariaDB, always 8-4-4-4-12 lower-case
 * here. */
#include "issuer/service.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/jws_sign.h"
#include "core/log.h"

#define USER_COLUMNS                                                                               \
    "id, email, full_name, avatar, hashed_password, provider, role, is_active, email_verified, "   \
    "is_superuser, tenant_id, auth_generation, created_at, updated_at"

void m8_issuer_uuid_param(const m8_db *db, const char *id, char out[M8_UUID_STR_LEN + 1])
{
    char canon[M8_UUID_STR_LEN + 1];
    if (!id || !m8_uuid_canon(id, strlen(id), canon)) {
        out[0] = '\0';
        return;
    }
    if (m8_db_get_dialect(db) == M8_DB_DIALECT_POSTGRES) {
        memcpy(out, canon, sizeof canon);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; canon[i]; i++) {
        if (canon[i] != '-')
            out[k++] = canon[i];
    }
    out[k] = '\0';
}

/* A stored id (either encoding) in the 8-4-4-4-12 form; false when it is
 * neither. */
static bool id_from_db(const char *v, size_t n, char out[M8_UUID_STR_LEN + 1])
{
    if (!v)
        return false;
    if (n == 32) {
        char h[M8_UUID_STR_LEN + 1];
        static const int cut[] = {8, 12, 16, 20};
        size_t k = 0, c = 0;
        for (size_t i = 0; i < 32; i++) {
            if (c < 4 && (int)i == cut[c]) {
                h[k++] = '-';
                c++;
            }
            h[k++] = v[i];
        }
        h[k] = '\0';
        return m8_uuid_canon(h, k, out);
    }
    return m8_uuid_canon(v, n, out);
}

static const char *const ROLES[][2] = {{"SUPERADMIN", "superadmin"},
                                       {"ADMIN", "admin"},
                                       {"WRITER", "writer"},
                                       {"READER", "reader"},
                                       {"USER", "user"}};

/* The wire value of a stored enum member (either case), or NULL. */
static const char *role_wire(const char *v)
{
    for (size_t i = 0; v && i < M8_ARRAY_LEN(ROLES); i++) {
        if (m8_strcaseeq(v, ROLES[i][0]))
            return ROLES[i][1];
    }
    return NULL;
}

static const char *role_stored(const char *wire)
{
    for (size_t i = 0; wire && i < M8_ARRAY_LEN(ROLES); i++) {
        if (strcmp(wire, ROLES[i][1]) == 0)
            return ROLES[i][0];
    }
    return NULL;
}

static const char *dup_text(m8_arena *a, const m8_db_result *r, size_t col)
{
    size_t n = 0;
    const char *v = m8_db_get_text(r, 0, col, &n);
    if (!v)
        return NULL;
    char *c = m8_arena_alloc(a, n + 1);
    if (c) {
        memcpy(c, v, n);
        c[n] = '\0';
    }
    return c;
}

/* Row 0 of r (USER_COLUMNS) into *u; M8_EPARSE for a row the issuer cannot
 * read (an unknown role, a malformed id), M8_ENOMEM. */
static int take_row(m8_arena *a, const m8_db_result *r, m8_issuer_user *u)
{
    memset(u, 0, sizeof *u);
    size_t n = 0;
    const char *v = m8_db_get_text(r, 0, 0, &n);
    if (!id_from_db(v, n, u->id))
        return M8_EPARSE;
    u->email = dup_text(a, r, 1);
    u->full_name = dup_text(a, r, 2);
    u->avatar = dup_text(a, r, 3);
    u->hashed_password = dup_text(a, r, 4);
    if (!u->email || (!m8_db_is_null(r, 0, 2) && !u->full_name) ||
        (!m8_db_is_null(r, 0, 3) && !u->avatar) || (!m8_db_is_null(r, 0, 4) && !u->hashed_password))
        return M8_ENOMEM;
    v = m8_db_get_text(r, 0, 5, &n);
    if (v && m8_strcaseeq(v, "GOOGLE"))
        memcpy(u->provider, "google", 7);
    else if (v && m8_strcaseeq(v, "PASSWORD"))
        memcpy(u->provider, "password", 9);
    else
        return M8_EPARSE;
    const char *role = role_wire(m8_db_get_text(r, 0, 6, NULL));
    if (!role)
        return M8_EPARSE;
    memcpy(u->role, role, strlen(role) + 1);
    int b = 0;
    if (m8_db_get_bool(r, 0, 7, &b) != 0)
        return M8_EPARSE;
    u->is_active = b;
    if (m8_db_get_bool(r, 0, 8, &b) != 0)
        return M8_EPARSE;
    u->email_verified = b;
    if (m8_db_get_bool(r, 0, 9, &b) != 0)
        return M8_EPARSE;
    u->is_superuser = b;
    v = m8_db_get_text(r, 0, 10, &n);
    if (v && !id_from_db(v, n, u->tenant_id))
        return M8_EPARSE;
    if (m8_db_get_int(r, 0, 11, &u->auth_generation) != 0)
        return M8_EPARSE;
    if (m8_db_get_time(r, 0, 12, &u->created_us) != 0 ||
        m8_db_get_time(r, 0, 13, &u->updated_us) != 0)
        return M8_EPARSE;
    return 0;
}

static int read_one(m8_db *db, const char *prefix, m8_arena *a, const char *tmpl, m8_db_param p,
                    m8_issuer_user *out)
{
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, prefix, tmpl, &p, 1, &r);
    if (rc == 0) {
        if (m8_db_nrows(r) == 0) {
            rc = M8_ENOTFOUND;
        } else {
            rc = take_row(a, r, out);
            if (rc == M8_EPARSE)
                m8_log(M8_LOG_ERROR, "issuer: a user row cannot be read (role, provider or id)");
        }
    }
    m8_db_result_free(r);
    return rc;
}

int m8_issuer_user_by_email(m8_db *db, const char *prefix, m8_arena *a, const char *email,
                            m8_issuer_user *out)
{
    if (!email || strlen(email) > M8_ISSUER_EMAIL_MAX)
        return M8_ENOTFOUND;
    return read_one(db, prefix, a, "SELECT " USER_COLUMNS " FROM {p}_user WHERE email = ?",
                    M8_DB_TEXT(email), out);
}

int m8_issuer_user_by_id(m8_db *db, const char *prefix, m8_arena *a, const char *id,
                         bool for_update, m8_issuer_user *out)
{
    char p[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(db, id, p);
    if (!p[0])
        return M8_ENOTFOUND;
    return read_one(db, prefix, a,
                    for_update ? "SELECT " USER_COLUMNS " FROM {p}_user WHERE id = ? FOR UPDATE"
                               : "SELECT " USER_COLUMNS " FROM {p}_user WHERE id = ?",
                    M8_DB_TEXT(p), out);
}

int m8_issuer_user_insert(m8_db *db, const char *prefix, m8_issuer_user *u)
{
    const char *role = role_stored(u->role);
    if (!u->email || !role)
        return M8_EINVAL;
    if (!u->id[0])
        m8_jti_new(u->id);
    char id[M8_UUID_STR_LEN + 1], tenant[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(db, u->id, id);
    m8_issuer_uuid_param(db, u->tenant_id, tenant);
    if (!id[0] || (u->tenant_id[0] && !tenant[0]))
        return M8_EINVAL;
    int64_t now = m8_db_now();
    if (!u->created_us)
        u->created_us = now;
    if (!u->updated_us)
        u->updated_us = now;
    if (!u->auth_generation)
        u->auth_generation = 1;
    u->is_superuser = strcmp(u->role, "superadmin") == 0; /* the CHECK's rule */
    m8_db_param p[] = {
        M8_DB_TEXT(id),
        M8_DB_TIME(u->created_us),
        M8_DB_TIME(u->updated_us),
        M8_DB_TEXT(strcmp(u->provider, "google") == 0 ? "GOOGLE" : "PASSWORD"),
        M8_DB_TEXT(u->email),
        u->full_name ? M8_DB_TEXT(u->full_name) : M8_DB_NULL,
        u->avatar ? M8_DB_TEXT(u->avatar) : M8_DB_NULL,
        M8_DB_BOOL(u->is_active),
        M8_DB_BOOL(u->email_verified),
        M8_DB_BOOL(u->is_superuser),
        M8_DB_TEXT(role),
        u->hashed_password ? M8_DB_TEXT(u->hashed_password) : M8_DB_NULL,
        tenant[0] ? M8_DB_TEXT(tenant) : M8_DB_NULL,
        M8_DB_INT(u->auth_generation),
    };
    return m8_issuer_exec(
        db, prefix,
        "INSERT INTO {p}_user (id, created_at, updated_at, provider, email, full_name, "
        "avatar, is_active, email_verified, is_superuser, role, hashed_password, tenant_id, "
        "auth_generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        p, M8_ARRAY_LEN(p), NULL);
}

int m8_issuer_user_set_hash(m8_db *db, const char *prefix, const char *id, const char *hash)
{
    char p[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(db, id, p);
    if (!p[0] || !hash)
        return M8_EINVAL;
    m8_db_param v[] = {M8_DB_TEXT(hash), M8_DB_TIME(m8_db_now()), M8_DB_TEXT(p)};
    return m8_issuer_exec(db, prefix,
                          "UPDATE {p}_user SET hashed_password = ?, updated_at = ? WHERE id = ?", v,
                          3, NULL);
}

void m8_issuer_user_mint(const m8_issuer_user *u, m8_mint_user *out)
{
    memset(out, 0, sizeof *out);
    out->id = u->id;
    out->email = u->email;
    out->full_name = u->full_name;
    out->avatar = u->avatar;
    out->is_active = u->is_active;
    out->email_verified = u->email_verified;
    out->is_superuser = u->is_superuser;
    out->role = u->role;
    out->tenant_id = u->tenant_id[0] ? u->tenant_id : NULL;
}

static json_object *time_json(int64_t us)
{
    char t[40];
    if (m8_db_format_time(us, t, sizeof t) != 0)
        return NULL;
    /* FastAPI writes an aware datetime as 2024-05-01T12:34:56.123456Z */
    return json_object_new_string(t);
}

static json_object *str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

json_object *m8_issuer_user_public(const m8_issuer_user *u)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    json_object_object_add(o, "created_at", time_json(u->created_us));
    json_object_object_add(o, "updated_at", time_json(u->updated_us));
    json_object_object_add(o, "provider", json_object_new_string(u->provider));
    json_object_object_add(o, "email", str_or_null(u->email));
    json_object_object_add(o, "full_name", str_or_null(u->full_name));
    json_object_object_add(o, "avatar", str_or_null(u->avatar));
    json_object_object_add(o, "is_active", json_object_new_boolean(u->is_active));
    json_object_object_add(o, "email_verified", json_object_new_boolean(u->email_verified));
    json_object_object_add(o, "is_superuser", json_object_new_boolean(u->is_superuser));
    json_object_object_add(o, "role", json_object_new_string(u->role));
    json_object_object_add(o, "id", json_object_new_string(u->id));
    return o;
}

bool m8_issuer_email_reserved(const char *email, size_t n)
{
    const size_t dl = sizeof M8_SA_EMAIL_DOMAIN - 1;
    return email && n > dl + 1 && email[n - dl - 1] == '@' &&
           strncasecmp(email + n - dl, M8_SA_EMAIL_DOMAIN, dl) == 0;
}

bool m8_issuer_id_text(const m8_db_result *r, size_t row, size_t col, char out[M8_UUID_STR_LEN + 1])
{
    size_t n = 0;
    const char *v = m8_db_get_text(r, row, col, &n);
    if (!v)
        return false;
    if (n != 32)
        return m8_uuid_canon(v, n, out);
    char h[M8_UUID_STR_LEN + 1];
    snprintf(h, sizeof h, "%.8s-%.4s-%.4s-%.4s-%.12s", v, v + 8, v + 12, v + 16, v + 20);
    return m8_uuid_canon(h, M8_UUID_STR_LEN, out);
}

json_object *m8_issuer_time_json(const m8_db_result *r, size_t row, size_t col)
{
    int64_t us = 0;
    char t[40];
    if (m8_db_is_null(r, row, col) || m8_db_get_time(r, row, col, &us) != 0 ||
        m8_db_format_time(us, t, sizeof t) != 0)
        return NULL;
    return json_object_new_string(t);
}
