/* item-service - the seed's "Complete Example" service in C.
 *
 * It serves what fcgi-m8 assembles for every service (meta, both pings,
 * health, docs), one public route, the seed's token-protected routes and,
 * with a database, the items of their owners:
 *
 *   GET    {API_PREFIX}/items/info             public: what this service offers
 *   POST   {API_PREFIX}/items/                 writer: create an item, owner = caller
 *   GET    {API_PREFIX}/items/?limit=&offset=  user: the caller's items and their total
 *   GET    {API_PREFIX}/items/{item_id}        user: the owner's or, for an admin, any
 *   PATCH  {API_PREFIX}/items/{item_id}        writer: the owner changes name/description
 *   DELETE {API_PREFIX}/items/{item_id}/admin  admin: delete an item
 *   GET    {API_PREFIX}/profile                user: the caller
 *   POST   {API_PREFIX}/admin/bootstrap        superuser
 *
 * The database is optional (SELECTED_DB / DB_* in the settings; MariaDB or
 * PostgreSQL, the same code on both).  Without one, GET items/ answers
 * {"owner": <email>}, DELETE .../admin echoes the id (the seed's skeleton),
 * and the other storage routes answer 503 "Database not configured.".
 * With one, the table {TABLES_PREFIX}_items (id, name, description,
 * owner_id, created_at, updated_at in UTC: the seed's TimestampMixin) is
 * created at startup when missing, and the library adds the "database"
 * health check.  An item's name is unique per owner: a second one is a 409
 * naming the field "name".
 *
 *   item-service --env-file .env --listen unix:/run/item-service.sock
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fcgim8.h"

#define NAME_MAX_CHARS 255
#define DESCRIPTION_MAX_CHARS 1000
#define LIMIT_DEFAULT 100
#define LIMIT_MAX 100

static const char COLUMNS[] = "id, name, description, owner_id, created_at, updated_at";

/* The statements, built once at startup around the table name (the only
 * part of SQL that cannot be a parameter); read-only once ready. */
static struct {
    char create[1024], index[256];
    char insert[512], by_id[256], list[512], count[256], lock[256], update[512], del[256];
} q;

/* ------------------------------------------------------------ validation
 * 422 bodies as FastAPI/pydantic v2 write them: {"detail": [{"type", "loc",
 * "msg", "input"[, "ctx"]}, ...]}. */

static void add_error(json_object *list, const char *type, const char *where, const char *field,
                      const char *msg, json_object *input, json_object *ctx)
{
    json_object *e = json_object_new_object();
    json_object *loc = json_object_new_array();
    json_object_array_add(loc, json_object_new_string(where));
    if (field)
        json_object_array_add(loc, json_object_new_string(field));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "loc", loc);
    json_object_object_add(e, "msg", json_object_new_string(msg));
    json_object_object_add(e, "input", input ? json_object_get(input) : NULL);
    if (ctx)
        json_object_object_add(e, "ctx", ctx);
    json_object_array_add(list, e);
}

static json_object *ctx_int(const char *key, long v)
{
    json_object *c = json_object_new_object();
    json_object_object_add(c, key, json_object_new_int64(v));
    return c;
}

/* Characters (code points) of valid UTF-8, as pydantic counts them. */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Checks the string field `name` of body: 1 when valid (*out set), 0 when
 * absent (or null and nullable), -1 after adding an error. */
static int text_field(json_object *body, json_object *errs, const char *name, size_t min,
                      size_t max, bool nullable, const char **out, size_t *outlen)
{
    json_object *v;
    if (!json_object_object_get_ex(body, name, &v))
        return 0;
    if (!v && nullable) {
        *out = NULL;
        *outlen = 0;
        return 1;
    }
    if (!json_object_is_type(v, json_type_string)) {
        add_error(errs, "string_type", "body", name, "Input should be a valid string", v, NULL);
        return -1;
    }
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    size_t chars = utf8_chars(s, n);
    char msg[96];
    if (chars < min) {
        snprintf(msg, sizeof msg, "String should have at least %zu character%s", min,
                 min == 1 ? "" : "s");
        add_error(errs, "string_too_short", "body", name, msg, v, ctx_int("min_length", (long)min));
        return -1;
    }
    if (chars > max) {
        snprintf(msg, sizeof msg, "String should have at most %zu characters", max);
        add_error(errs, "string_too_long", "body", name, msg, v, ctx_int("max_length", (long)max));
        return -1;
    }
    if (memchr(s, '\0', n)) { /* a database text cannot hold one */
        json_object *ctx = json_object_new_object();
        json_object_object_add(ctx, "error", json_object_new_string("NUL character"));
        add_error(errs, "value_error", "body", name, "Value error, NUL character", v, ctx);
        return -1;
    }
    *out = s;
    *outlen = n;
    return 1;
}

static int unprocessable(m8_request *req, json_object *errs)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "detail", errs);
    return m8_res_json(req, 422, o);
}

/* An integer query parameter within [lo, hi]; 0 ok, -1 after an error. */
static int query_int(m8_request *req, json_object *errs, const char *name, long long def,
                     long long lo, long long hi, long long *out)
{
    const char *v = m8_req_query(req, name);
    *out = def;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    json_object *in = json_object_new_string(v);
    char msg[96];
    int rc = -1;
    if (!*v || *end || errno == ERANGE) {
        add_error(errs, "int_parsing", "query", name,
                  "Input should be a valid integer, unable to parse string as an integer", in,
                  NULL);
    } else if (x < lo) {
        snprintf(msg, sizeof msg, "Input should be greater than or equal to %lld", lo);
        add_error(errs, "greater_than_equal", "query", name, msg, in, ctx_int("ge", (long)lo));
    } else if (x > hi) {
        snprintf(msg, sizeof msg, "Input should be less than or equal to %lld", hi);
        add_error(errs, "less_than_equal", "query", name, msg, in, ctx_int("le", (long)hi));
    } else {
        *out = x;
        rc = 0;
    }
    json_object_put(in);
    return rc;
}

/* The {item_id} path parameter: 0 ok, else the 422 is set. */
static int item_id(m8_request *req, long long *id)
{
    const char *v = m8_req_path_param(req, "item_id");
    char *end;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (v && *v && !*end && errno == 0) {
        *id = x;
        return 0;
    }
    json_object *errs = json_object_new_array();
    json_object *in = json_object_new_string(v ? v : "");
    add_error(errs, "int_parsing", "path", "item_id",
              "Input should be a valid integer, unable to parse string as an integer", in, NULL);
    json_object_put(in);
    unprocessable(req, errs);
    return -1;
}

/* ------------------------------------------------------------ helpers */

static bool is_admin(const m8_user *u)
{
    return strcmp(u->role, "admin") == 0 || strcmp(u->role, "superadmin") == 0;
}

/* The caller's id as stored: the token's UUID in lower case. */
static void owner_of(const m8_user *u, char out[37])
{
    size_t i = 0;
    for (; u->id[i] && i < 36; i++)
        out[i] = (char)((u->id[i] >= 'A' && u->id[i] <= 'F') ? u->id[i] + 32 : u->id[i]);
    out[i] = '\0';
}

/* A database failure: the response (503, 409 or 500), after a rollback. */
static int db_fail(m8_request *req, m8_db *db, int rc)
{
    int r = m8_db_respond(req, db, rc);
    if (m8_db_in_transaction(db))
        m8_db_rollback(db);
    return r;
}

static json_object *time_json(const m8_db_result *r, size_t row, size_t col)
{
    int64_t us;
    char buf[40];
    if (m8_db_get_time(r, row, col, &us) != 0 || m8_db_format_time(us, buf, sizeof buf) != 0)
        return NULL;
    return json_object_new_string(buf);
}

/* Row `row` of a SELECT of COLUMNS as the item's JSON. */
static json_object *item_json(const m8_db_result *r, size_t row)
{
    json_object *o = json_object_new_object();
    int64_t id = 0;
    size_t n;
    m8_db_get_int(r, row, 0, &id);
    json_object_object_add(o, "id", json_object_new_int64(id));
    const char *s = m8_db_get_text(r, row, 1, &n);
    json_object_object_add(o, "name", json_object_new_string_len(s ? s : "", (int)n));
    s = m8_db_get_text(r, row, 2, &n);
    json_object_object_add(o, "description", s ? json_object_new_string_len(s, (int)n) : NULL);
    s = m8_db_get_text(r, row, 3, &n);
    json_object_object_add(o, "owner_id", json_object_new_string_len(s ? s : "", (int)n));
    json_object_object_add(o, "created_at", time_json(r, row, 4));
    json_object_object_add(o, "updated_at", time_json(r, row, 5));
    return o;
}

/* Row 0 of res (freed here) as the response. */
static int item_response(m8_request *req, int status, m8_db_result *res)
{
    json_object *o = item_json(res, 0);
    m8_db_result_free(res);
    return m8_res_json(req, status, o);
}

/* The fields of an item in a request body, as text_field found them. */
typedef struct item_fields {
    const char *name, *desc;
    size_t name_n, desc_n;
    int has_name, has_desc; /* 1 given (desc may be null), 0 absent */
} item_fields;

/* Reads the JSON body's name and description (POST: the name is required):
 * 0, or -1 after the 422. */
static int read_fields(m8_request *req, bool name_required, item_fields *f)
{
    json_object *body = m8_req_json(req);
    json_object *errs = json_object_new_array();
    if (!json_object_is_type(body, json_type_object)) {
        add_error(errs, "model_attributes_type", "body", NULL,
                  "Input should be a valid dictionary or object to extract fields from", body,
                  NULL);
        unprocessable(req, errs);
        return -1;
    }
    *f = (item_fields){0};
    f->has_name = text_field(body, errs, "name", 1, NAME_MAX_CHARS, false, &f->name, &f->name_n);
    bool missing = name_required && f->has_name == 0;
    if (missing)
        add_error(errs, "missing", "body", "name", "Field required", body, NULL);
    f->has_desc =
        text_field(body, errs, "description", 0, DESCRIPTION_MAX_CHARS, true, &f->desc, &f->desc_n);
    if (missing || f->has_name < 0 || f->has_desc < 0) {
        unprocessable(req, errs);
        return -1;
    }
    json_object_put(errs);
    return 0;
}

/* Whether u owns the item in row 0 of res. */
static bool owns(const m8_user *u, const m8_db_result *res)
{
    char owner[37];
    owner_of(u, owner);
    const char *o_id = m8_db_get_text(res, 0, 3, NULL);
    return o_id && strcmp(o_id, owner) == 0;
}

static int not_found(m8_request *req)
{
    return m8_res_error(req, 404, "Item not found");
}

/* ------------------------------------------------------------ routes */

/* GET {API_PREFIX}/items/info: what this service offers, public. */
static int items_info(m8_request *req, void *data)
{
    (void)data;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "service", json_object_new_string("item-service"));
    json_object_object_add(o, "items_api", json_object_new_string(m8_req_route(req)));
    return m8_res_json(req, 200, o);
}

/* GET {API_PREFIX}/items/: any authenticated user (the seed's list_items),
 * the caller's own items, newest last, with their total. */
static int list_items(m8_request *req, void *data)
{
    (void)data;
    const m8_user *u = m8_req_user(req);
    json_object *errs = json_object_new_array();
    long long limit, offset;
    int bad = query_int(req, errs, "limit", LIMIT_DEFAULT, 1, LIMIT_MAX, &limit);
    bad |= query_int(req, errs, "offset", 0, 0, INT64_MAX, &offset);
    if (bad)
        return unprocessable(req, errs);
    json_object_put(errs);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "owner", json_object_new_string(u->email));
    m8_db *db = m8_req_db(req);
    if (!db) /* the seed's skeleton: no storage */
        return m8_res_json(req, 200, o);

    char owner[37];
    owner_of(u, owner);
    m8_db_param p[3] = {M8_DB_TEXT(owner), M8_DB_INT(limit), M8_DB_INT(offset)};
    m8_db_result *rows = NULL, *cnt = NULL;
    int rc = m8_db_exec(db, q.list, p, 3, &rows);
    if (rc == 0)
        rc = m8_db_exec(db, q.count, p, 1, &cnt);
    if (rc != 0) {
        json_object_put(o);
        m8_db_result_free(rows);
        return db_fail(req, db, rc);
    }
    json_object *items = json_object_new_array();
    for (size_t i = 0; i < m8_db_nrows(rows); i++)
        json_object_array_add(items, item_json(rows, i));
    int64_t total = 0;
    m8_db_get_int(cnt, 0, 0, &total);
    json_object_object_add(o, "items", items);
    json_object_object_add(o, "total", json_object_new_int64(total));
    json_object_object_add(o, "limit", json_object_new_int64(limit));
    json_object_object_add(o, "offset", json_object_new_int64(offset));
    m8_db_result_free(rows);
    m8_db_result_free(cnt);
    return m8_res_json(req, 200, o);
}

/* The item id's row (COLUMNS) into *res: 0, 1 when there is none, or a
 * database error code. */
static int load(m8_db *db, const char *sql, long long id, m8_db_result **res)
{
    m8_db_param p = M8_DB_INT(id);
    int rc = m8_db_exec(db, sql, &p, 1, res);
    if (rc == 0 && m8_db_nrows(*res) == 0) {
        m8_db_result_free(*res);
        *res = NULL;
        return 1;
    }
    return rc;
}

/* POST {API_PREFIX}/items/: writers create an item they own. */
static int create_item(m8_request *req, void *data)
{
    (void)data;
    item_fields f;
    if (read_fields(req, true, &f) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_db_respond(req, NULL, 0);

    char owner[37];
    owner_of(m8_req_user(req), owner);
    int64_t now = m8_db_now();
    m8_db_param p[5] = {M8_DB_TEXTN(f.name, f.name_n),
                        f.desc ? M8_DB_TEXTN(f.desc, f.desc_n) : M8_DB_NULL, M8_DB_TEXT(owner),
                        M8_DB_TIME(now), M8_DB_TIME(now)};
    m8_db_result *res = NULL;
    int rc = m8_db_exec(db, q.insert, p, 5, &res);
    if (rc == 0 && m8_db_get_dialect(db) == M8_DB_DIALECT_MYSQL) {
        /* No RETURNING in MySQL: read the row back by its new id. */
        long long id = m8_db_insert_id(res);
        m8_db_result_free(res);
        res = NULL;
        rc = load(db, q.by_id, id, &res);
        if (rc == 1)
            return m8_req_fail(req, "the new item %lld is not there", id);
    }
    if (rc != 0)
        return db_fail(req, db, rc);
    return item_response(req, 201, res);
}

/* GET {API_PREFIX}/items/{item_id}: the owner's item, any item for an admin;
 * someone else's is 404, as if it did not exist. */
static int get_item(m8_request *req, void *data)
{
    (void)data;
    long long id;
    if (item_id(req, &id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_db_respond(req, NULL, 0);
    const m8_user *u = m8_req_user(req);
    m8_db_result *res = NULL;
    int rc = load(db, q.by_id, id, &res);
    if (rc == 1)
        return not_found(req);
    if (rc != 0)
        return db_fail(req, db, rc);
    if (!is_admin(u) && !owns(u, res)) {
        m8_db_result_free(res);
        return not_found(req);
    }
    return item_response(req, 200, res);
}

/* PATCH {API_PREFIX}/items/{item_id}: a writer changes the name and/or the
 * description of an item they own (another's: 404, or 403 for an admin,
 * who may see it but not change it). */
static int update_item(m8_request *req, void *data)
{
    (void)data;
    long long id;
    if (item_id(req, &id) != 0)
        return 0;
    item_fields f;
    if (read_fields(req, false, &f) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_db_respond(req, NULL, 0);

    const m8_user *u = m8_req_user(req);
    m8_db_result *res = NULL;
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = load(db, q.lock, id, &res); /* SELECT ... FOR UPDATE */
    if (rc == 1) {
        m8_db_rollback(db);
        return not_found(req);
    }
    if (rc != 0)
        return db_fail(req, db, rc);
    bool mine = owns(u, res);
    m8_db_result_free(res);
    res = NULL;
    if (!mine) {
        m8_db_rollback(db);
        return is_admin(u) ? m8_res_error(req, 403, "Not enough permissions") : not_found(req);
    }
    if (f.has_name || f.has_desc) {
        m8_db_param p[6] = {
            M8_DB_BOOL(f.has_name),  f.has_name ? M8_DB_TEXTN(f.name, f.name_n) : M8_DB_NULL,
            M8_DB_BOOL(f.has_desc),  f.desc ? M8_DB_TEXTN(f.desc, f.desc_n) : M8_DB_NULL,
            M8_DB_TIME(m8_db_now()), M8_DB_INT(id)};
        rc = m8_db_exec(db, q.update, p, 6, NULL);
    }
    if (rc == 0)
        rc = load(db, q.by_id, id, &res);
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0) {
        m8_db_result_free(res);
        return rc == 1 ? m8_req_fail(req, "item %lld vanished", id) : db_fail(req, db, rc);
    }
    return item_response(req, 200, res);
}

/* DELETE {API_PREFIX}/items/{item_id}/admin: admins only. */
static int delete_item(m8_request *req, void *data)
{
    (void)data;
    const m8_user *u = m8_req_user(req);
    m8_db *db = m8_req_db(req);
    json_object *o = json_object_new_object();
    if (!db) { /* the seed's skeleton echoes the id */
        json_object_object_add(o, "deleted",
                               json_object_new_string(m8_req_path_param(req, "item_id")));
        json_object_object_add(o, "by", json_object_new_string(u->email));
        return m8_res_json(req, 200, o);
    }
    long long id;
    if (item_id(req, &id) != 0) {
        json_object_put(o);
        return 0;
    }
    m8_db_param p = M8_DB_INT(id);
    m8_db_result *res = NULL;
    int rc = m8_db_exec(db, q.del, &p, 1, &res);
    if (rc != 0) {
        json_object_put(o);
        return db_fail(req, db, rc);
    }
    int64_t n = m8_db_affected(res);
    m8_db_result_free(res);
    if (n == 0) {
        json_object_put(o);
        return not_found(req);
    }
    json_object_object_add(o, "deleted", json_object_new_int64(id));
    json_object_object_add(o, "by", json_object_new_string(u->email));
    return m8_res_json(req, 200, o);
}

/* GET {API_PREFIX}/profile: the caller, as the seed's get_profile. */
static int profile(m8_request *req, void *data)
{
    (void)data;
    const m8_user *u = m8_req_user(req);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(u->id));
    json_object_object_add(o, "email", json_object_new_string(u->email));
    json_object_object_add(o, "role", json_object_new_string(u->role));
    return m8_res_json(req, 200, o);
}

/* POST {API_PREFIX}/admin/bootstrap: superuser only. */
static int bootstrap(m8_request *req, void *data)
{
    (void)data;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "bootstrapped", json_object_new_boolean(1));
    json_object_object_add(o, "by", json_object_new_string(m8_req_user(req)->email));
    return m8_res_json(req, 200, o);
}

static const m8_route routes[] = {
    {"GET", "/items/info", M8_PUBLIC, items_info, NULL, "Item service information", "items", 0},
    {"GET", "/items/", M8_USER, list_items, NULL, "List the caller's items", "items", 0},
    {"POST", "/items/", M8_WRITER, create_item, NULL, "Create an item", "items",
     M8_ROUTE_JSON_BODY},
    {"GET", "/items/{item_id}", M8_USER, get_item, NULL, "Read an item", "items", 0},
    {"PATCH", "/items/{item_id}", M8_WRITER, update_item, NULL, "Change an item", "items",
     M8_ROUTE_JSON_BODY},
    {"DELETE", "/items/{item_id}/admin", M8_ADMIN, delete_item, NULL, "Delete an item (admin)",
     "items", 0},
    {"GET", "/profile", M8_USER, profile, NULL, "The caller's profile", "users", 0},
    {"POST", "/admin/bootstrap", M8_SUPERUSER, bootstrap, NULL, "Bootstrap (superuser)", "admin",
     0},
};

/* ------------------------------------------------------------ startup */

/* A DB_ENGINE / DB_CHARSET value usable in DDL (letters, digits, '_'). */
static const char *word_setting(const m8_settings *s, const char *name, const char *def)
{
    const char *v = m8_setting(s, name);
    if (!v || !*v || strlen(v) > 32)
        return def;
    for (const char *p = v; *p; p++) {
        if (!(*p == '_' || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z')))
            return def;
    }
    return v;
}

static int build_sql(m8_db *db, const m8_settings *s)
{
    char t[64];
    if (m8_db_table(db, "items", t, sizeof t) != 0)
        return -1;
    bool pg = m8_db_get_dialect(db) == M8_DB_DIALECT_POSTGRES;
    if (pg) {
        snprintf(q.create, sizeof q.create,
                 "CREATE TABLE IF NOT EXISTS %s (id BIGSERIAL PRIMARY KEY, name VARCHAR(%d) NOT "
                 "NULL, description VARCHAR(%d), owner_id UUID NOT NULL, created_at TIMESTAMP(6) "
                 "NOT NULL DEFAULT (now() AT TIME ZONE 'utc'), updated_at TIMESTAMP(6) NOT NULL "
                 "DEFAULT (now() AT TIME ZONE 'utc'), CONSTRAINT %s_name UNIQUE (owner_id, name))",
                 t, NAME_MAX_CHARS, DESCRIPTION_MAX_CHARS, t);
        snprintf(q.index, sizeof q.index,
                 "CREATE INDEX IF NOT EXISTS %s_owner ON %s (owner_id, id)", t, t);
        snprintf(q.insert, sizeof q.insert,
                 "INSERT INTO %s (name, description, owner_id, created_at, updated_at) VALUES (?, "
                 "?, ?, ?, ?) RETURNING %s",
                 t, COLUMNS);
    } else {
        const char *cs = word_setting(s, "DB_CHARSET", "utf8mb4");
        /* The unique key is named after the field it protects: MariaDB's
         * duplicate-entry error names the key. */
        snprintf(q.create, sizeof q.create,
                 "CREATE TABLE IF NOT EXISTS %s (id BIGINT NOT NULL AUTO_INCREMENT, name "
                 "VARCHAR(%d) NOT NULL, description VARCHAR(%d) NULL, owner_id CHAR(36) NOT NULL, "
                 "created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), updated_at "
                 "DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6), PRIMARY KEY (id), UNIQUE KEY "
                 "name (owner_id, name), KEY owner (owner_id, id)) ENGINE=%s DEFAULT CHARSET=%s "
                 "COLLATE=%s_bin",
                 t, NAME_MAX_CHARS, DESCRIPTION_MAX_CHARS, word_setting(s, "DB_ENGINE", "InnoDB"),
                 cs, cs);
        q.index[0] = '\0';
        snprintf(q.insert, sizeof q.insert,
                 "INSERT INTO %s (name, description, owner_id, created_at, updated_at) VALUES (?, "
                 "?, ?, ?, ?)",
                 t);
    }
    snprintf(q.by_id, sizeof q.by_id, "SELECT %s FROM %s WHERE id = ?", COLUMNS, t);
    snprintf(q.lock, sizeof q.lock, "SELECT %s FROM %s WHERE id = ? FOR UPDATE", COLUMNS, t);
    snprintf(q.list, sizeof q.list,
             "SELECT %s FROM %s WHERE owner_id = ? ORDER BY id LIMIT ? OFFSET ?", COLUMNS, t);
    snprintf(q.count, sizeof q.count, "SELECT COUNT(*) FROM %s WHERE owner_id = ?", t);
    snprintf(q.update, sizeof q.update,
             "UPDATE %s SET name = CASE WHEN ? THEN ? ELSE name END, description = CASE WHEN ? "
             "THEN ? ELSE description END, updated_at = ? WHERE id = ?",
             t);
    snprintf(q.del, sizeof q.del, "DELETE FROM %s WHERE id = ?", t);
    return 0;
}

/* Creates the table when it is missing (runs only with a database, so a
 * service without one starts as before).  Workers of a pool start together:
 * PostgreSQL may refuse concurrent CREATE TABLE IF NOT EXISTS, so a failure
 * is tried again (the table is then there). */
static int startup(m8_app *app, void *data)
{
    (void)data;
    m8_db *db = m8_app_db(app);
    if (!db)
        return 0;
    if (build_sql(db, m8_app_settings(app)) != 0)
        return -1;
    int rc = -1;
    for (int i = 0; i < 10 && rc != 0; i++) {
        if (i > 0) {
            struct timespec ts = {0, 300 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        rc = m8_db_exec(db, q.create, NULL, 0, NULL);
        if (rc == 0 && q.index[0])
            rc = m8_db_exec(db, q.index, NULL, 0, NULL);
        if (rc != 0)
            fprintf(stderr, "item-service: creating the items table: %s (try %d of 10)\n",
                    m8_db_last_error(db)->message, i + 1);
    }
    return rc;
}

int main(int argc, char **argv)
{
    m8_app *app = m8_app_new("Item Service", "1.0.0");
    if (!app || m8_app_add_routes(app, routes, sizeof routes / sizeof routes[0]) != 0 ||
        m8_app_use_database(app, M8_DB_OPTIONAL, 0, 0) != 0 ||
        m8_app_on_database(app, startup, NULL) != 0)
        return 70;
    return m8_app_main(app, argc, argv);
}
