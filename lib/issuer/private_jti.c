/* private_jti.c - POST /private/v1/jti-status (v1 and v2) and POST
 * /private/users/ of the issuer's private API (doc/issuer.md#private-api). */
#include "issuer/private.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "http/http.h"
#include "issuer/revoke.h"
#include "issuer/service.h"
#include "issuer/store.h"
#include "issuer/users_body.h"

#define ARENA_MAX (1u << 20)
/* Longest jti the route takes (422 string_too_long past it); a jti the
 * issuer never mints (over 128 bytes, the column's width) is inactive. */
#define JTI_FIELD_MAX 4096u
#define JTI_STORED_MAX 128u
#define SCHEMA_VERSION_MAX 64u
#define SESSION_ROWS_MAX 16

/* ------------------------------------------------------------ answers */

static int v1_answer(m8_request *req, bool active)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "active", json_object_new_boolean(active));
    return m8_res_json(req, 200, o);
}

static int inactive(m8_request *req)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "active", json_object_new_boolean(0));
    json_object_object_add(o, "schema_version", json_object_new_string("2"));
    return m8_res_json(req, 200, o);
}

static int active(m8_request *req, const char *user_id, int64_t generation)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "active", json_object_new_boolean(1));
    json_object_object_add(o, "user_id", json_object_new_string(user_id));
    json_object_object_add(o, "auth_generation", json_object_new_int64(generation));
    json_object_object_add(o, "schema_version", json_object_new_string("2"));
    return m8_res_json(req, 200, o);
}

static int unavailable(m8_request *req, int rc, const char *what)
{
    m8_log_limited("issuer.jti_status", M8_LOG_WARNING, "issuer: jti-status: %s: database error %d",
                   what, rc);
    return m8_res_error(req, 503, M8_PRIVATE_DETAIL_INTROSPECTION_DOWN);
}

/* ------------------------------------------------------------ body */

/* A UUID as pydantic reads a string: 8-4-4-4-12, 32 hex digits, in braces,
 * or after "urn:uuid:"; the lower-case 8-4-4-4-12 form into out. */
static bool uuid_text(const char *s, size_t n, char out[M8_UUID_STR_LEN + 1])
{
    if (n > 9 && strncasecmp(s, "urn:uuid:", 9) == 0) {
        s += 9;
        n -= 9;
    } else if (n == 38 && s[0] == '{' && s[37] == '}') {
        s++;
        n -= 2;
    }
    if (n == 32) {
        char h[M8_UUID_STR_LEN + 1];
        if (strspn(s, "0123456789abcdefABCDEF") < 32)
            return false;
        snprintf(h, sizeof h, "%.8s-%.4s-%.4s-%.4s-%.12s", s, s + 8, s + 12, s + 16, s + 20);
        return m8_uuid_canon(h, M8_UUID_STR_LEN, out);
    }
    return n == M8_UUID_STR_LEN && m8_uuid_canon(s, n, out);
}

static void add_error(json_object *errs, const char *type, const char *field, const char *msg,
                      json_object *input)
{
    json_object *e = json_object_new_object(), *loc = json_object_new_array();
    json_object_array_add(loc, json_object_new_string("body"));
    json_object_array_add(loc, json_object_new_string(field));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "loc", loc);
    json_object_object_add(e, "msg", json_object_new_string(msg));
    json_object_object_add(e, "input", json_object_get(input));
    json_object_array_add(errs, e);
}

typedef struct jti_req {
    const char *jti, *schema_version;
    bool has_expected;
    char expected[M8_UUID_STR_LEN + 1];
} jti_req;

/* The request model: 0, or -1 after the 422. */
static int read_body(m8_request *req, jti_req *r)
{
    memset(r, 0, sizeof *r);
    if (m8_req_parse_json(req) != 0)
        return -1;
    m8_ub b;
    if (m8_ub_begin(req, &b) != 0)
        return -1;
    m8_ub_str(&b, "jti", 1, JTI_FIELD_MAX, false, true, &r->jti);
    json_object *v = NULL;
    if (json_object_object_get_ex(b.body, "expected_user_id", &v) &&
        !json_object_is_type(v, json_type_null)) {
        if (!json_object_is_type(v, json_type_string))
            add_error(b.errs, "uuid_type", "expected_user_id",
                      "UUID input should be a string, bytes or UUID object", v);
        else if (!uuid_text(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                            r->expected))
            add_error(b.errs, "uuid_parsing", "expected_user_id", "Input should be a valid UUID",
                      v);
        else
            r->has_expected = true;
    }
    m8_ub_str(&b, "schema_version", 0, SCHEMA_VERSION_MAX, true, false, &r->schema_version);
    return m8_ub_end(&b);
}

/* ------------------------------------------------------------ decisions */

/* The stateful v2 decision (doc/issuer.md#jti-status), in fa-auth-m8's
 * order: tombstone, session row of (jti, user), owner live and
 * consistent, row generation == owner's, then the access blacklist. */
static int decide_stateful(m8_request *req, m8_issuer *iss, m8_db *db, const jti_req *r)
{
    char uid[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(db, r->expected, uid);
    m8_db_param tp = M8_DB_TEXT(uid);
    m8_db_result *res = NULL;
    int rc = m8_issuer_exec(db, iss->prefix, "SELECT 1 FROM {p}_tombstone WHERE user_id = ?", &tp,
                            1, &res);
    size_t tomb = rc == 0 ? m8_db_nrows(res) : 0;
    m8_db_result_free(res);
    if (rc != 0)
        return unavailable(req, rc, "tombstone");
    if (tomb > 0 || strlen(r->jti) > JTI_STORED_MAX)
        return inactive(req);
    m8_db_param sp[] = {M8_DB_TEXT(r->jti), M8_DB_TEXT(uid)};
    rc = m8_issuer_exec(
        db, iss->prefix,
        "SELECT COALESCE(auth_generation, 0) FROM {p}_client_session WHERE jwt_jti = ? "
        "AND user_id = ? LIMIT 16",
        sp, 2, &res);
    int64_t gens[SESSION_ROWS_MAX];
    size_t ngens = 0;
    for (size_t i = 0; rc == 0 && i < m8_db_nrows(res) && ngens < SESSION_ROWS_MAX; i++) {
        if (m8_db_get_int(res, i, 0, &gens[ngens]) == 0)
            ngens++;
    }
    m8_db_result_free(res);
    if (rc != 0)
        return unavailable(req, rc, "session row");
    if (ngens == 0)
        return inactive(req); /* never issued, superseded, logged out or revoked */
    m8_arena a;
    m8_arena_init(&a, ARENA_MAX);
    m8_issuer_user u;
    rc = m8_issuer_user_by_id(db, iss->prefix, &a, r->expected, false, &u);
    bool live = rc == 0 && u.is_active && u.is_superuser == (strcmp(u.role, "superadmin") == 0);
    char owner[M8_UUID_STR_LEN + 1];
    int64_t gen = rc == 0 ? u.auth_generation : 0;
    memcpy(owner, rc == 0 ? u.id : "", rc == 0 ? sizeof owner : 1);
    m8_arena_free(&a);
    if (rc != 0 && rc != M8_ENOTFOUND)
        return unavailable(req, rc, "owner");
    bool current = false;
    for (size_t i = 0; live && i < ngens; i++)
        current = current || (gens[i] >= 1 && gens[i] == gen);
    if (!live || !current)
        return inactive(req);
    bool listed = false;
    rc = m8_issuer_blacklist_has(db, iss->prefix, r->jti, (int64_t)time(NULL), &listed);
    if (rc != 0 && rc != M8_EINVAL) /* the row's answer stands, as with Redis down */
        m8_log_limited("issuer.jti_status.blacklist", M8_LOG_WARNING,
                       "issuer: jti-status: blacklist unavailable (error %d): "
                       "answering from the session row",
                       rc);
    return listed ? inactive(req) : active(req, owner, gen);
}

int m8_issuer_h_jti_status(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    m8_private_caller who;
    jti_req r;
    if (m8_issuer_private_auth(req, M8_SCOPE_INTROSPECTION, &who) != 0 || read_body(req, &r) != 0)
        return 0;
    bool stateful = !iss->stateless && !iss->hybrid;
    m8_db *db = m8_req_db(req);
    if (!r.has_expected) {
        /* v1: the blacklist alone; a store failure answers by the mode */
        if (!stateful)
            return v1_answer(req, true);
        const m8_settings *s = iss->s;
        bool open = s && !s->auth_strict_mode && s->access_revocation_failure_mode == M8_FAIL_OPEN;
        bool listed = false;
        int rc = db ? m8_issuer_blacklist_has(db, iss->prefix, r.jti, (int64_t)time(NULL), &listed)
                    : M8_EAGAIN;
        if (rc == M8_EINVAL) /* a jti the issuer cannot have listed */
            rc = 0;
        if (rc != 0)
            m8_log_limited("issuer.jti_status.v1", M8_LOG_WARNING,
                           "issuer: jti-status v1: blacklist unavailable (error %d)", rc);
        return v1_answer(req, rc == 0 ? !listed : open);
    }
    if (!r.schema_version || strcmp(r.schema_version, "2") != 0)
        return inactive(req);
    if (!db)
        return unavailable(req, M8_EAGAIN, "no database");
    if (stateful)
        return decide_stateful(req, iss, db, &r);
    /* hybrid and stateless: the owner's generation whatever the jti */
    m8_arena a;
    m8_arena_init(&a, ARENA_MAX);
    m8_issuer_user u;
    int rc = m8_issuer_user_by_id(db, iss->prefix, &a, r.expected, false, &u);
    int out = rc == 0              ? active(req, u.id, u.auth_generation)
              : rc == M8_ENOTFOUND ? inactive(req)
                                   : unavailable(req, rc, "owner");
    m8_arena_free(&a);
    return out;
}

/* ------------------------------------------------------------ users */

#define D_TAKEN "The user with this email already exists in the system."

int m8_issuer_h_private_users(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    m8_private_caller who;
    if (m8_issuer_private_auth(req, M8_SCOPE_USER_CREATE, &who) != 0 || m8_req_parse_json(req) != 0)
        return 0;
    m8_ub b;
    const char *email = NULL, *pwd = NULL, *name = NULL;
    bool verified = false;
    if (m8_ub_begin(req, &b) != 0)
        return 0;
    m8_ub_email(&b, "email", false, true, &email);
    m8_ub_str(&b, "password", M8_ISSUER_PASSWORD_MIN, M8_ISSUER_PASSWORD_MAX, false, true, &pwd);
    m8_ub_str(&b, "full_name", 0, M8_ISSUER_FULL_NAME_MAX, false, true, &name);
    m8_ub_bool(&b, "is_verified", &verified);
    if (m8_ub_end(&b) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_arena a;
    m8_arena_init(&a, ARENA_MAX);
    m8_issuer_user u;
    int rc = m8_issuer_user_by_email(db, iss->prefix, &a, email, &u);
    m8_arena_free(&a);
    if (rc == 0)
        return m8_res_error(req, 409, D_TAKEN);
    if (rc != M8_ENOTFOUND)
        return m8_issuer_fail(req, db, rc, "email lookup");
    char hash[M8_PW_HASH_MAX] = "";
    rc = m8_pw_hash(iss->pw, pwd, strlen(pwd), hash);
    if (rc == M8_EAGAIN)
        return m8_res_error(req, 503, M8_ISSUER_DETAIL_AUTH_DOWN);
    if (rc != 0)
        return m8_issuer_fail(req, NULL, rc, "hashing a password");
    memset(&u, 0, sizeof u);
    u.email = email;
    u.full_name = name;
    u.hashed_password = hash;
    memcpy(u.provider, "password", 9);
    memcpy(u.role, "user", 5);
    u.is_active = true;
    u.email_verified = verified;
    rc = m8_issuer_user_insert(db, iss->prefix, &u);
    sodium_memzero(hash, sizeof hash);
    u.hashed_password = NULL;
    if (rc == M8_EIO && m8_db_last_error(db)->kind == M8_DB_ERR_UNIQUE)
        return m8_res_error(req, 409, D_TAKEN); /* a concurrent creation won */
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "creating a user");
    m8_log(M8_LOG_INFO, "event=user.created user_id=%s by_consumer=%s", u.id, who.id);
    return m8_res_json(req, 200, m8_issuer_user_public(&u));
}
