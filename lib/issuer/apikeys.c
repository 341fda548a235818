/* apikeys.c - the owner routes /profile/api-keys/ and the superuser routes
 * /api-keys/ of the issuer (apikeys.h, doc/issuer.md#api-keys). */
#include "issuer/apikeys.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/jws_sign.h"
#include "core/log.h"
#include "issuer/apikey_scopes.h"
#include "issuer/audit.h"
#include "issuer/clientip.h"
#include "issuer/revoke.h"
#include "issuer/service_accounts.h"
#include "issuer/users_body.h"

#define ARENA_MAX (1u << 20)
#define KEY_NAME_MIN 3u
#define KEY_NAME_MAX 100u
#define AUDIENCE_MAX 255u
/* The most keys one list answers (a user's revoked keys stay listed). */
#define LIST_MAX 1000
/* ttl_hours: fa-auth-m8 sets no upper bound; 100 years keeps expires_at a
 * date every database stores (doc/issuer.md#api-keys). */
#define TTL_HOURS_MAX 876000LL

#define D_USER_GONE "User not found"
#define D_AUD_EMPTY "Audience ids must be non-empty strings"
#define D_AUD_WILDCARD "Wildcard audiences are not allowed"
#define D_AUD_CASE "Audiences that differ only in case cannot be bound to one API key"
#define D_USER_INACTIVE "User is inactive"

/* ------------------------------------------------------------ helpers */

void m8_apikey_hash(const char *key, size_t len, char out[M8_APIKEY_HASH_LEN + 1])
{
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)key, len);
    sodium_bin2hex(out, M8_APIKEY_HASH_LEN + 1, d, sizeof d);
}
const char *m8_apikey_mode(const m8_db_result *r, size_t row)
{
    size_t n = 0;
    const char *v = m8_db_get_text(r, row, M8_AK_MODE, &n);
    return v && n == 10 && strncmp(v, "READ_WRITE", 10) == 0 ? "read_write" : "read_only";
}
static json_object *id_json(const m8_db_result *r, size_t row, size_t col)
{
    char id[M8_UUID_STR_LEN + 1];
    return m8_issuer_id_text(r, row, col, id) ? json_object_new_string(id) : NULL;
}

/* The audience ids of key (its database encoding), sorted. */
static json_object *audiences(m8_db *db, const char *prefix, const char *key, int *rc)
{
    m8_db_param p = M8_DB_TEXT(key);
    m8_db_result *r = NULL;
    *rc = m8_issuer_exec(db, prefix,
                         "SELECT audience_id FROM {p}_api_key_audiences WHERE api_key_id = ? "
                         "ORDER BY audience_id",
                         &p, 1, &r);
    if (*rc != 0)
        return NULL;
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < m8_db_nrows(r); i++) {
        size_t n = 0;
        const char *v = m8_db_get_text(r, i, 0, &n);
        if (v)
            json_object_array_add(a, json_object_new_string_len(v, (int)n));
    }
    m8_db_result_free(r);
    return a;
}

json_object *m8_apikey_public(m8_db *db, const char *prefix, const m8_db_result *r, size_t i,
                              int *rc)
{
    size_t n = 0;
    const char *raw = m8_db_get_text(r, i, M8_AK_ID, &n);
    char key[M8_UUID_STR_LEN + 1];
    snprintf(key, sizeof key, "%.*s", (int)(n < sizeof key ? n : sizeof key - 1), raw ? raw : "");
    json_object *aud = audiences(db, prefix, key, rc);
    if (!aud)
        return NULL;
    int revoked = 0;
    m8_db_get_bool(r, i, M8_AK_REVOKED, &revoked);
    const char *name = m8_db_get_text(r, i, M8_AK_NAME, &n);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "created_at", m8_issuer_time_json(r, i, M8_AK_CREATED));
    json_object_object_add(o, "updated_at", m8_issuer_time_json(r, i, M8_AK_UPDATED));
    json_object_object_add(o, "name", name ? json_object_new_string_len(name, (int)n) : NULL);
    json_object_object_add(o, "expires_at", m8_issuer_time_json(r, i, M8_AK_EXPIRES));
    json_object_object_add(o, "revoked", json_object_new_boolean(revoked != 0));
    json_object_object_add(o, "id", id_json(r, i, M8_AK_ID));
    json_object_object_add(o, "last_used_at", m8_issuer_time_json(r, i, M8_AK_LAST));
    json_object_object_add(o, "access_mode", json_object_new_string(m8_apikey_mode(r, i)));
    json_object_object_add(o, "audiences", aud);
    /* only on a key that has scopes: an unscoped key answers as fa-auth-m8's
     * (doc/issuer.md#api-key-scopes-and-format) */
    json_object *sc = NULL;
    *rc = m8_apikey_scopes_read(db, prefix, key, &sc);
    if (*rc != 0) {
        json_object_put(o);
        return NULL;
    }
    if (json_object_array_length(sc) > 0)
        json_object_object_add(o, "scopes", sc);
    else
        json_object_put(sc);
    return o;
}

static int message(m8_request *req, const char *text)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message", json_object_new_string(text));
    return m8_res_json(req, 200, o);
}

/* The caller's id in the database's encoding; false when the token's sub
 * is no UUID (then nothing of the caller can exist). */
static bool caller_param(m8_request *req, m8_db *db, char out[M8_UUID_STR_LEN + 1])
{
    const m8_user *c = m8_req_user(req);
    char id[M8_UUID_STR_LEN + 1];
    if (!c || !c->id || !m8_uuid_canon(c->id, strlen(c->id), id))
        return false;
    m8_issuer_uuid_param(db, id, out);
    return out[0] != '\0';
}

/* ------------------------------------------------------------ create */

static void body_error(m8_ub *b, const char *type, const char *field, const char *msg,
                       json_object *input, json_object *ctx)
{
    json_object *e = json_object_new_object(), *loc = json_object_new_array();
    json_object_array_add(loc, json_object_new_string("body"));
    json_object_array_add(loc, json_object_new_string(field));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "loc", loc);
    json_object_object_add(e, "msg", json_object_new_string(msg));
    json_object_object_add(e, "input", json_object_get(input));
    if (ctx)
        json_object_object_add(e, "ctx", ctx);
    json_object_array_add(b->errs, e);
}

/* ttl_hours: an integer (a JSON integer, an integral number or a decimal
 * string, as pydantic's lax mode) > 0, default 24. */
static void ttl_field(m8_ub *b, long long *out)
{
    json_object *v = NULL;
    *out = 24;
    if (!json_object_object_get_ex(b->body, "ttl_hours", &v) ||
        json_object_is_type(v, json_type_null))
        return;
    long long t = 0;
    bool okv = false;
    if (json_object_is_type(v, json_type_int)) {
        t = (long long)json_object_get_int64(v);
        okv = true;
    } else if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        okv = d == (double)(long long)d && d > -1e15 && d < 1e15;
        t = (long long)d;
    } else if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        size_t n = strlen(s);
        okv = n > 0 && n < 16 && strspn(s, "0123456789") == n;
        for (size_t i = 0; okv && i < n; i++)
            t = t * 10 + (s[i] - '0');
    }
    if (!okv && json_object_is_type(v, json_type_string)) {
        body_error(b, "int_parsing", "ttl_hours",
                   "Input should be a valid integer, unable to parse string as an integer", v,
                   NULL);
    } else if (!okv && json_object_is_type(v, json_type_double)) {
        body_error(b, "int_from_float", "ttl_hours",
                   "Input should be a valid integer, got a number with a fractional part", v, NULL);
    } else if (!okv) {
        body_error(b, "int_type", "ttl_hours", "Input should be a valid integer", v, NULL);
    } else if (t <= 0) {
        json_object *ctx = json_object_new_object();
        json_object_object_add(ctx, "gt", json_object_new_int(0));
        body_error(b, "greater_than", "ttl_hours", "Input should be greater than 0", v, ctx);
    } else if (t > TTL_HOURS_MAX) {
        json_object *ctx = json_object_new_object();
        json_object_object_add(ctx, "le", json_object_new_int64(TTL_HOURS_MAX));
        body_error(b, "less_than_equal", "ttl_hours",
                   "Input should be less than or equal to 876000", v, ctx);
    } else {
        *out = t;
    }
}

/* audiences: null/absent = none, else a list of strings. */
static json_object *audiences_field(m8_ub *b)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(b->body, "audiences", &v) ||
        json_object_is_type(v, json_type_null))
        return NULL;
    if (!json_object_is_type(v, json_type_array)) {
        body_error(b, "list_type", "audiences", "Input should be a valid list", v, NULL);
        return NULL;
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (!json_object_is_type(e, json_type_string)) {
            json_object *err = json_object_new_object(), *loc = json_object_new_array();
            json_object_array_add(loc, json_object_new_string("body"));
            json_object_array_add(loc, json_object_new_string("audiences"));
            json_object_array_add(loc, json_object_new_int((int)i));
            json_object_object_add(err, "type", json_object_new_string("string_type"));
            json_object_object_add(err, "loc", loc);
            json_object_object_add(err, "msg",
                                   json_object_new_string("Input should be a valid string"));
            json_object_object_add(err, "input", json_object_get(e));
            json_object_array_add(b->errs, err);
            return NULL;
        }
    }
    return v;
}

/* Whether id names a consumer of PRIVATE_API_CONSUMERS granted the
 * api-key-introspection scope (the registry text is read again: it is
 * small, bounded at boot, and read only when a key is created). */
static bool audience_known(const m8_settings *s, const char *id)
{
    if (!s || !s->private_api_consumers || !*s->private_api_consumers)
        return false;
    json_object *reg = json_tokener_parse(s->private_api_consumers), *c, *scopes;
    bool found = false;
    if (reg && json_object_object_get_ex(reg, id, &c) &&
        json_object_object_get_ex(c, "scopes", &scopes) &&
        json_object_is_type(scopes, json_type_array)) {
        for (size_t i = 0; !found && i < json_object_array_length(scopes); i++) {
            const char *sc = json_object_get_string(json_object_array_get_idx(scopes, i));
            found = sc && strcmp(sc, "api-key-introspection") == 0;
        }
    }
    json_object_put(reg);
    return found;
}

/* The audience checks, in order: count, then each id (empty, wildcard,
 * unknown).  0, or 1 after the 409. */
static int check_audiences(m8_request *req, const m8_settings *s, json_object *aud)
{
    size_t n = aud ? json_object_array_length(aud) : 0;
    long long cap = s ? s->api_key_max_audiences : 3;
    char text[400];
    if ((long long)n > cap) {
        snprintf(text, sizeof text, "At most %lld audiences may be bound to an API key", cap);
        return m8_res_error(req, 409, text), 1;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(aud, i);
        const char *id = json_object_get_string(e);
        size_t len = (size_t)json_object_get_string_len(e);
        if (len == 0 || strspn(id, " \t\r\n") == len)
            return m8_res_error(req, 409, D_AUD_EMPTY), 1;
        if (strchr(id, '*'))
            return m8_res_error(req, 409, D_AUD_WILDCARD), 1;
        if (len > AUDIENCE_MAX || strlen(id) != len || !audience_known(s, id)) {
            snprintf(text, sizeof text,
                     "Unknown audience: %.255s is not a consumer allowed to introspect API keys",
                     id);
            return m8_res_error(req, 409, text), 1;
        }
        /* two consumers whose ids differ only in case: MariaDB's collation
         * would take them for one row, so they are not bound together */
        for (size_t j = 0; j < i; j++) {
            const char *o = json_object_get_string(json_object_array_get_idx(aud, j));
            if (strcmp(o, id) != 0 && strcasecmp(o, id) == 0)
                return m8_res_error(req, 409, D_AUD_CASE), 1;
        }
    }
    return 0;
}

/* What a creation stores besides the key's hash. */
typedef struct new_key {
    const char *owner; /* 8-4-4-4-12 */
    const char *idp;   /* the key's id, database encoding */
    const char *name, *mode;
    int64_t now, exp;
    json_object *aud, *scopes;
    bool by_admin; /* a superuser's key for owner: an inactive owner is refused */
} new_key;

/* Inside the transaction: the owner's row locked, the live-key cap, the key
 * row, its audiences and its scopes. */
static int insert_key(m8_request *req, m8_issuer *iss, m8_db *db, const new_key *nk,
                      const char *hash, bool *answered)
{
    const char *owner = nk->owner, *idp = nk->idp, *name = nk->name, *mode = nk->mode;
    int64_t now = nk->now, exp = nk->exp;
    json_object *aud = nk->aud;
    m8_arena a;
    m8_arena_init(&a, ARENA_MAX);
    m8_issuer_user u;
    int rc = m8_issuer_user_by_id(db, iss->prefix, &a, owner, true, &u);
    m8_arena_free(&a);
    if (rc == M8_ENOTFOUND) {
        *answered = true;
        return m8_res_error(req, 404, D_USER_GONE);
    }
    /* checked under the row lock: a key made for a deactivated user would
     * come to life if she were reactivated, after the deactivation revoked
     * her keys (doc/issuer.md#a-key-for-another-user) */
    if (rc == 0 && nk->by_admin && !u.is_active) {
        *answered = true;
        return m8_res_error(req, 409, D_USER_INACTIVE);
    }
    char up[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(db, owner, up);
    m8_db_param cp[] = {M8_DB_TEXT(up), M8_DB_TIME(now)};
    m8_db_result *r = NULL;
    int64_t live = 0;
    if (rc == 0)
        rc =
            m8_issuer_exec(db, iss->prefix,
                           "SELECT COUNT(*) FROM {p}_api_key WHERE user_id = ? AND revoked = FALSE "
                           "AND (expires_at IS NULL OR expires_at > ?)",
                           cp, 2, &r);
    if (rc == 0 && m8_db_get_int(r, 0, 0, &live) != 0)
        rc = M8_EIO;
    m8_db_result_free(r);
    long long cap = iss->s ? iss->s->api_key_max_per_user : 10;
    if (rc == 0 && live >= cap) {
        char text[200];
        snprintf(text, sizeof text,
                 "Maximum of %lld active API keys reached. Revoke an existing key before "
                 "creating a new one.",
                 cap);
        *answered = true;
        return m8_res_error(req, 409, text);
    }
    m8_db_param kp[] = {M8_DB_TEXT(idp), M8_DB_TIME(now),  M8_DB_TIME(now), M8_DB_TEXT(name),
                        M8_DB_TIME(exp), M8_DB_TEXT(hash), M8_DB_TEXT(up),  M8_DB_TEXT(mode)};
    if (rc == 0)
        rc = m8_issuer_exec(
            db, iss->prefix,
            "INSERT INTO {p}_api_key (id, created_at, updated_at, name, expires_at, "
            "revoked, key_hash, user_id, last_used_at, access_mode) VALUES (?, ?, ?, "
            "?, ?, FALSE, ?, ?, NULL, ?)",
            kp, M8_ARRAY_LEN(kp), NULL);
    size_t n = aud ? json_object_array_length(aud) : 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *id = json_object_get_string(json_object_array_get_idx(aud, i));
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(id, json_object_get_string(json_object_array_get_idx(aud, j))) == 0;
        if (dup)
            continue;
        m8_db_param ap[] = {M8_DB_TEXT(idp), M8_DB_TEXT(id), M8_DB_TIME(now)};
        rc = m8_issuer_exec(db, iss->prefix,
                            "INSERT INTO {p}_api_key_audiences (api_key_id, audience_id, "
                            "created_at) VALUES (?, ?, ?)",
                            ap, 3, NULL);
    }
    if (rc == 0)
        rc = m8_apikey_scopes_insert(db, iss->prefix, idp, nk->scopes, now);
    return rc;
}

/* A fresh key in the format API_KEY_FORMAT names into plain (wiped by the
 * caller) and its hash (doc/issuer.md#api-key-scopes-and-format). */
static void make_key(const m8_issuer *iss, char plain[M8_APIKEY_M8_LEN + 1],
                     char hash[M8_APIKEY_HASH_LEN + 1])
{
    if (iss->s && iss->s->api_key_format == 1)
        m8_apikey_make_legacy(plain);
    else
        m8_apikey_make_m8(plain);
    m8_apikey_hash(plain, strlen(plain), hash);
}

/* POST /profile/api-keys/ for the caller, or a superuser's POST
 * /api-keys/by-user/{user_id}/ for owner (then an "add" audit row on the
 * key in the same transaction). */
static int create_key(m8_request *req, m8_issuer *iss, const char *owner, bool by_admin)
{
    static const char *const modes[] = {"read_only", "read_write"};
    m8_ub b;
    const char *name = NULL, *mode = NULL;
    long long ttl = 24;
    if (m8_ub_begin(req, &b) != 0)
        return 0;
    m8_ub_str(&b, "name", KEY_NAME_MIN, KEY_NAME_MAX, true, false, &name);
    ttl_field(&b, &ttl);
    m8_ub_enum(&b, "access_mode", modes, 2, false, &mode);
    json_object *aud = audiences_field(&b);
    json_object *scopes = m8_apikey_scopes_field(&b);
    if (m8_ub_end(&b) != 0)
        return 0;
    if (check_audiences(req, iss->s, aud) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    /* only the key's hash is stored */
    char id[M8_UUID_STR_LEN + 1], idp[M8_UUID_STR_LEN + 1];
    char plain[M8_APIKEY_M8_LEN + 1], hash[M8_APIKEY_HASH_LEN + 1], defname[16];
    m8_jti_new(id);
    m8_issuer_uuid_param(db, id, idp);
    make_key(iss, plain, hash);
    if (!name) {
        unsigned char rnd[4];
        randombytes_buf(rnd, sizeof rnd);
        memcpy(defname, "key-", 4);
        sodium_bin2hex(defname + 4, sizeof defname - 4, rnd, sizeof rnd);
        name = defname;
    }
    new_key nk = {.owner = owner,
                  .idp = idp,
                  .name = name,
                  .mode = mode && strcmp(mode, "read_write") == 0 ? "READ_WRITE" : "READ_ONLY",
                  .now = m8_db_now(),
                  .aud = aud,
                  .scopes = scopes,
                  .by_admin = by_admin};
    nk.exp = nk.now + (int64_t)ttl * 3600 * 1000000;
    const m8_user *c = m8_req_user(req);
    bool answered = false;
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = insert_key(req, iss, db, &nk, hash, &answered);
    if (rc == 0 && !answered && by_admin) {
        char client[M8_ISSUER_CLIENT_IP_MAX];
        m8_issuer_client_ip(req, iss->s, client);
        m8_issuer_audit_entry e = {.actor_id = c ? c->id : NULL,
                                   .actor_role = c && c->role ? c->role : "superadmin",
                                   .action = "add",
                                   .table = "api_key",
                                   .row_pk = id,
                                   .owner = owner,
                                   .client = client};
        rc = m8_issuer_audit_row(db, iss->prefix, &e, NULL);
    }
    if (rc == 0 && !answered)
        rc = m8_db_commit(db);
    else if (m8_db_in_transaction(db))
        m8_db_rollback(db);
    if (answered || rc != 0) {
        sodium_memzero(plain, sizeof plain);
        return answered ? 0 : m8_issuer_fail(req, db, rc, "creating an API key");
    }
    m8_db_param p = M8_DB_TEXT(idp);
    m8_db_result *r = NULL;
    rc = m8_issuer_exec(db, iss->prefix, "SELECT " M8_APIKEY_COLS " FROM {p}_api_key WHERE id = ?",
                        &p, 1, &r);
    json_object *o =
        rc == 0 && m8_db_nrows(r) == 1 ? m8_apikey_public(db, iss->prefix, r, 0, &rc) : NULL;
    m8_db_result_free(r);
    if (!o) {
        sodium_memzero(plain, sizeof plain);
        return m8_issuer_fail(req, db, rc ? rc : M8_EIO, "reading a new API key");
    }
    /* ApiKeyCreated: ApiKeyPublic with plaintext before audiences (and
     * scopes, when the key has some) */
    json_object *audl = json_object_get(json_object_object_get(o, "audiences"));
    json_object *scl = json_object_get(json_object_object_get(o, "scopes"));
    json_object_object_del(o, "audiences");
    json_object_object_del(o, "scopes");
    json_object_object_add(o, "plaintext", json_object_new_string(plain));
    json_object_object_add(o, "audiences", audl);
    if (scl)
        json_object_object_add(o, "scopes", scl);
    sodium_memzero(plain, sizeof plain);
    m8_apikey_metric(M8_AKM_CREATED);
    m8_log(M8_LOG_INFO, "event=api_key.created key_id=%s user_id=%s access_mode=%s by=%s", id,
           owner, mode ? mode : "read_only", c && c->id ? c->id : "");
    return m8_res_json(req, 201, o);
}

int m8_issuer_h_apikeys_create(m8_request *req, void *data)
{
    const m8_user *c = m8_req_user(req);
    char owner[M8_UUID_STR_LEN + 1];
    if (!c || !c->id || !m8_uuid_canon(c->id, strlen(c->id), owner))
        return m8_res_error(req, 404, D_USER_GONE);
    m8_db *db = m8_req_db(req);
    if (db && m8_issuer_sa_refuse_self(req, data, db))
        return 0;
    return create_key(req, data, owner, false);
}

int m8_issuer_h_apikeys_su_create(m8_request *req, void *data)
{
    char owner[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "user_id", owner) != 0)
        return 0;
    return create_key(req, data, owner, true);
}

/* ------------------------------------------------------------ owner reads */

int m8_issuer_h_apikeys_list(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    char up[M8_UUID_STR_LEN + 1];
    json_object *list = json_object_new_array();
    if (!caller_param(req, db, up))
        return m8_res_json(req, 200, list);
    m8_db_param p = M8_DB_TEXT(up);
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, iss->prefix,
                            "SELECT " M8_APIKEY_COLS " FROM {p}_api_key WHERE user_id = ? ORDER BY "
                            "created_at, id LIMIT 1000",
                            &p, 1, &r);
    for (size_t i = 0; rc == 0 && i < m8_db_nrows(r); i++) {
        json_object *o = m8_apikey_public(db, iss->prefix, r, i, &rc);
        if (o)
            json_object_array_add(list, o);
    }
    m8_db_result_free(r);
    if (rc != 0) {
        json_object_put(list);
        return m8_issuer_fail(req, db, rc, "listing API keys");
    }
    return m8_res_json(req, 200, list);
}

int m8_issuer_h_apikeys_get(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    char id[M8_UUID_STR_LEN + 1], idp[M8_UUID_STR_LEN + 1], up[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "key_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    if (!caller_param(req, db, up))
        return m8_res_error(req, 404, M8_APIKEY_D_NOT_FOUND);
    m8_issuer_uuid_param(db, id, idp);
    m8_db_param p[] = {M8_DB_TEXT(idp), M8_DB_TEXT(up)};
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(
        db, iss->prefix, "SELECT " M8_APIKEY_COLS " FROM {p}_api_key WHERE id = ? AND user_id = ?",
        p, 2, &r);
    if (rc == 0 && m8_db_nrows(r) == 0) {
        m8_db_result_free(r);
        return m8_res_error(req, 404, M8_APIKEY_D_NOT_FOUND);
    }
    json_object *o = rc == 0 ? m8_apikey_public(db, iss->prefix, r, 0, &rc) : NULL;
    m8_db_result_free(r);
    if (!o)
        return m8_issuer_fail(req, db, rc, "reading an API key");
    return m8_res_json(req, 200, o);
}

/* ------------------------------------------------------------ revocation */

/* Revokes key idp (of owner up, or of anyone when up is NULL): 404, 409 or
 * the message; the superuser's revocation writes its audit row in the same
 * transaction. */
static int revoke_key(m8_request *req, m8_issuer *iss, m8_db *db, const char *id, const char *up)
{
    char idp[M8_UUID_STR_LEN + 1], owner[M8_UUID_STR_LEN + 1] = "";
    m8_issuer_uuid_param(db, id, idp);
    m8_db_param p[] = {M8_DB_TEXT(idp), M8_DB_TEXT(up)};
    m8_db_result *r = NULL;
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = m8_issuer_exec(db, iss->prefix,
                            up ? "SELECT revoked, user_id FROM {p}_api_key WHERE id = ? AND "
                                 "user_id = ? FOR UPDATE"
                               : "SELECT revoked, user_id FROM {p}_api_key WHERE id = ? FOR UPDATE",
                            p, up ? 2 : 1, &r);
    int revoked = 0;
    if (rc == 0 && m8_db_nrows(r) == 1) {
        m8_db_get_bool(r, 0, 0, &revoked);
        m8_issuer_id_text(r, 0, 1, owner);
    }
    size_t found = rc == 0 ? m8_db_nrows(r) : 0;
    m8_db_result_free(r);
    if (rc == 0 && (found == 0 || revoked)) {
        m8_db_rollback(db);
        return found == 0 ? m8_res_error(req, 404, M8_APIKEY_D_NOT_FOUND)
                          : m8_res_error(req, 409, M8_APIKEY_D_ALREADY_REVOKED);
    }
    m8_db_param u[] = {M8_DB_TIME(m8_db_now()), M8_DB_TEXT(idp)};
    if (rc == 0)
        rc = m8_issuer_exec(db, iss->prefix,
                            "UPDATE {p}_api_key SET revoked = TRUE, updated_at = ? WHERE id = ?", u,
                            2, NULL);
    const m8_user *c = m8_req_user(req);
    if (rc == 0 && !up) { /* doc/issuer.md#audit-and-security-routes */
        char client[M8_ISSUER_CLIENT_IP_MAX];
        m8_issuer_client_ip(req, iss->s, client);
        m8_issuer_audit_entry e = {.actor_id = c ? c->id : NULL,
                                   .actor_role = c ? c->role : NULL,
                                   .action = "delete",
                                   .table = "api_key",
                                   .row_pk = id,
                                   .owner = owner[0] ? owner : NULL,
                                   .client = client};
        rc = m8_issuer_audit_row(db, iss->prefix, &e, NULL);
    }
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "revoking an API key");
    m8_apikey_metric(M8_AKM_REVOKED);
    m8_log(M8_LOG_INFO, "event=api_key.revoked key_id=%s user_id=%s by=%s", id, owner,
           c && c->id ? c->id : "");
    return message(req, M8_APIKEY_D_REVOKED_OK);
}

int m8_issuer_h_apikeys_delete(m8_request *req, void *data)
{
    char id[M8_UUID_STR_LEN + 1], up[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "key_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    if (!caller_param(req, db, up))
        return m8_res_error(req, 404, M8_APIKEY_D_NOT_FOUND);
    return revoke_key(req, data, db, id, up);
}

int m8_issuer_h_apikeys_su_revoke(m8_request *req, void *data)
{
    char id[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "key_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    return revoke_key(req, data, db, id, NULL);
}

/* ------------------------------------------------------------ superuser list */

int m8_issuer_h_apikeys_by_user(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    char id[M8_UUID_STR_LEN + 1], up[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "user_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_issuer_uuid_param(db, id, up);
    m8_db_param p = M8_DB_TEXT(up);
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, iss->prefix,
                            "SELECT " M8_APIKEY_COLS " FROM {p}_api_key WHERE user_id = ? ORDER BY "
                            "created_at DESC, id LIMIT 1000",
                            &p, 1, &r);
    json_object *list = json_object_new_array();
    int64_t now = m8_db_now();
    for (size_t i = 0; rc == 0 && i < m8_db_nrows(r); i++) {
        json_object *pub = m8_apikey_public(db, iss->prefix, r, i, &rc);
        if (!pub)
            break;
        int revoked = 0;
        int64_t exp = 0;
        m8_db_get_bool(r, i, M8_AK_REVOKED, &revoked);
        bool expired = m8_db_get_time(r, i, M8_AK_EXPIRES, &exp) == 0 && exp <= now;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_get(json_object_object_get(pub, "id")));
        json_object_object_add(o, "label", json_object_get(json_object_object_get(pub, "name")));
        json_object_object_add(o, "status",
                               json_object_new_string(revoked   ? "revoked"
                                                      : expired ? "expired"
                                                                : "active"));
        json_object_object_add(o, "created_at",
                               json_object_get(json_object_object_get(pub, "created_at")));
        json_object_object_add(o, "last_used_at",
                               json_object_get(json_object_object_get(pub, "last_used_at")));
        json_object_object_add(o, "owner_id", json_object_new_string(id));
        json_object_object_add(o, "access_mode",
                               json_object_get(json_object_object_get(pub, "access_mode")));
        json_object_object_add(o, "audiences",
                               json_object_get(json_object_object_get(pub, "audiences")));
        json_object *sc = json_object_object_get(pub, "scopes");
        if (sc)
            json_object_object_add(o, "scopes", json_object_get(sc));
        json_object_put(pub);
        json_object_array_add(list, o);
    }
    m8_db_result_free(r);
    if (rc != 0) {
        json_object_put(list);
        return m8_issuer_fail(req, db, rc, "listing the API keys of a user");
    }
    size_t count = json_object_array_length(list);
    json_object *wrap = json_object_new_object();
    json_object_object_add(wrap, "data", list);
    json_object_object_add(wrap, "count", json_object_new_int64((int64_t)count));
    return m8_res_json(req, 200, wrap);
}
