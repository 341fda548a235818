/* test_issuer_audit.c - the privileged-action audit log, the /security/
 * audit-log and purge routes and the dashboard (lib/issuer/audit.c,
 * lib/issuer/dashboard.c; doc/issuer.md#audit-and-security-routes,
 * doc/issuer.md#dashboard) driven through the in-process app harness
 * against a real MariaDB and a real PostgreSQL (tests/unit/issuer_db.h,
 * ports 21340-21379; a server that is not installed is skipped). */
#include "config.h"

#include <json-c/json.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "db/db.h"
#include "issuer/audit.h"
#include "issuer/dashboard.h"
#include "issuer/service.h"
#include "issuer/sessions_admin.h"
#include "issuer/store.h"
#include "issuer_call.h"
#include "issuer_db.h"
#include "tap.h"

#define PASSWORD "Iss-Audit-Db-Pa55!"
#define ISS_DB "iss_audit"
#define ISS_USER "iss_audit"
#define ACCESS_SECRET "Test-Access-Secret-Key-0123456789abcdef!"
#define NEW_PASSWORD "Dave-Secret-Pa55word!"
#define SID "cccccccc-0000-4000-8000-00000000000c"
#define JTI "33333333-cccc-4ccc-8ccc-333333333333"
#define KEY_ID "dddddddd-0000-4000-8000-00000000000d"
#define NO_SUCH "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d"
#define DAY 86400LL
#define D_PRIV "The user doesn't have enough privileges"

static const idb_servers g_srv = {
    "test_issuer_audit", 21340, 21379, ISS_DB, ISS_USER, PASSWORD, false};

typedef struct tctx {
    const char *name;
    m8_app *app;
    m8_db *db;
    m8_issuer iss;
    m8_issuer_user su, adm, adm2, bob, carol;
    char su_tok[2048], adm_tok[2048], adm2_tok[2048], bob_tok[2048];
    char seed[4][37]; /* audit rows seeded at fixed ages (test_log) */
} tctx;

static m8_arena g_arena;

static iresp *req(tctx *t, const char *method, const char *path, const char *body, const char *tok)
{
    icall c = {.method = method,
               .base = "/api",
               .path = path,
               .peer = "192.0.2.7",
               .bearer = tok,
               .body = body,
               .ctype = body ? "application/json" : NULL};
    return icall_do(t->app, &c);
}

static int64_t audit_count(tctx *t)
{
    return iint(t->db, "SELECT COUNT(*) FROM auth_privileged_action_audit", NULL);
}

/* A stored id (either encoding) as 8-4-4-4-12 into out. */
static void canon(const char *v, size_t n, char out[37])
{
    char h[37];
    out[0] = '\0';
    if (n == 32) {
        snprintf(h, sizeof h, "%.8s-%.4s-%.4s-%.4s-%.12s", v, v + 8, v + 12, v + 16, v + 20);
        m8_uuid_canon(h, 36, out);
    } else if (v && !m8_uuid_canon(v, n, out)) {
        snprintf(out, 37, "%.*s", (int)(n < 36 ? n : 36), v);
    }
}

/* The newest audit row as "action table row_pk owner actor role". */
static const char *newest(tctx *t, char *out, size_t outlen)
{
    m8_db_result *r = NULL;
    out[0] = '\0';
    if (m8_db_exec(t->db,
                   "SELECT action, table_name, row_pk, target_owner_id, actor_user_id, actor_role "
                   "FROM auth_privileged_action_audit ORDER BY created_at DESC, id DESC LIMIT 1",
                   NULL, 0, &r) == 0 &&
        m8_db_nrows(r) == 1) {
        size_t n[6];
        const char *v[6];
        for (size_t c = 0; c < 6; c++)
            v[c] = m8_db_get_text(r, 0, c, &n[c]);
        char actor[37];
        canon(v[4], n[4], actor);
        snprintf(out, outlen, "%.*s %.*s %.*s %.*s %s %.*s", (int)n[0], v[0], (int)n[1], v[1],
                 (int)n[2], v[2], v[3] ? (int)n[3] : 1, v[3] ? v[3] : "-", actor, (int)n[5], v[5]);
    }
    m8_db_result_free(r);
    return out;
}

static void user(tctx *t, m8_issuer_user *u, const char *email, const char *role, char *tok)
{
    idb_user_add(t->db, &g_arena, u, email, role, false);
    if (!tok)
        return;
    idb_mint(&t->iss, u, NULL, tok);
}

static void session(tctx *t, const char *sid, const char *id, const char *jti, int64_t at_us)
{
    char u[37];
    m8_issuer_uuid_param(t->db, id, u);
    m8_db_param p[] = {M8_DB_TEXT(sid),
                       M8_DB_TIME(at_us),
                       M8_DB_TIME(at_us),
                       M8_DB_TEXT(u),
                       M8_DB_TEXT(jti),
                       M8_DB_TIME(at_us + 600000000),
                       M8_DB_TIME(at_us + 86400000000LL)};
    if (m8_db_exec(t->db,
                   "INSERT INTO auth_client_session (id, created_at, updated_at, user_id, "
                   "provider, jwt_jti, refresh_token_hash, jwt_expires_at, refresh_expires_at, "
                   "revoked, auth_generation) VALUES (?, ?, ?, ?, 'PASSWORD', ?, "
                   "'0000000000000000000000000000000000000000000000000000000000000000', ?, ?, "
                   "FALSE, 1)",
                   p, M8_ARRAY_LEN(p), NULL) != 0)
        diag("session insert: %s", m8_db_last_error(t->db)->message);
}

/* An API key of user id: revoked or not, updated upd_s seconds ago, expiring
 * exp_s seconds from now (0: never); its hash is derived from its id. */
static void key(tctx *t, const char *kid, const char *id, bool revoked, long long upd_s,
                long long exp_s)
{
    char k[37], u[37], hash[65];
    m8_issuer_uuid_param(t->db, kid, k);
    m8_issuer_uuid_param(t->db, id, u);
    unsigned char h[32];
    crypto_hash_sha256(h, (const unsigned char *)kid, strlen(kid));
    sodium_bin2hex(hash, sizeof hash, h, sizeof h);
    int64_t now = m8_db_now(), upd = now - upd_s * 1000000;
    m8_db_param p[] = {M8_DB_TEXT(k),       M8_DB_TIME(upd),
                       M8_DB_TIME(upd),     exp_s ? M8_DB_TIME(now + exp_s * 1000000) : M8_DB_NULL,
                       M8_DB_BOOL(revoked), M8_DB_TEXT(hash),
                       M8_DB_TEXT(u)};
    if (m8_db_exec(t->db,
                   "INSERT INTO auth_api_key (id, created_at, updated_at, name, expires_at, "
                   "revoked, key_hash, user_id, access_mode) VALUES (?, ?, ?, 'key', ?, ?, ?, ?, "
                   "'READ_ONLY')",
                   p, M8_ARRAY_LEN(p), NULL) != 0)
        diag("key insert: %s", m8_db_last_error(t->db)->message);
}

/* ------------------------------------------------------------ setup */

#define R(m, p, acc, h, fl)                                                                        \
    {                                                                                              \
        m, p, acc, h, NULL, NULL, NULL, fl                                                         \
    }
static m8_route g_table[] = {
    R("POST", "/users/new_user/", M8_SUPERUSER, m8_issuer_h_users_new, M8_ROUTE_JSON_BODY),
    R("PATCH", "/users/update/{user_id}/", M8_SUPERUSER, m8_issuer_h_users_update,
      M8_ROUTE_JSON_BODY),
    R("DELETE", "/users/delete/{user_id}/", M8_SUPERUSER, m8_issuer_h_users_delete, 0),
    R("DELETE", "/sessions/delete-by-user/{user_id}/", M8_SUPERUSER,
      m8_issuer_h_sessions_delete_user, 0),
    R("DELETE", "/sessions/delete/{session_id}/", M8_SUPERUSER, m8_issuer_h_sessions_delete, 0),
    R("POST", "/api-keys/revoke/{key_id}/", M8_SUPERUSER, m8_issuer_h_apikeys_su_revoke, 0),
    R("GET", "/security/audit-log", M8_ADMIN, m8_issuer_h_audit_log, M8_ROUTE_HIDDEN),
    R("POST", "/security/audit-log/purge", M8_SUPERUSER, m8_issuer_h_audit_purge,
      M8_ROUTE_HIDDEN | M8_ROUTE_JSON_BODY),
    R("POST", "/security/api-keys/purge", M8_SUPERUSER, m8_issuer_h_apikeys_purge,
      M8_ROUTE_HIDDEN | M8_ROUTE_JSON_BODY),
    R("GET", "/dashboard/users/activity/", M8_USER, m8_issuer_h_dashboard_activity, 0),
    R("GET", "/dashboard/users/activity/current/", M8_USER, m8_issuer_h_dashboard_current, 0),
};
#undef R

static char **app_env(m8_db_kind kind)
{
    static const char *base[] = {
        IDB_ENV_SITE("iss-audit"), "ACCESS_SECRET_KEY=" ACCESS_SECRET,
        "REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!", "TOKEN_MODE=stateful",
        "TOKEN_STRICT_VALIDATION=false", IDB_ENV_ISSUER_SECRETS,
        "FIRST_SUPERUSER=admin@example.com", "FIRST_SUPERUSER_PASSWORD=Adm1n-Passw0rd!",
        "SERVICE_VERSION=2.2.3", "CONTRACT_VERSION=2.0", "CONTRACT_RANGE=>=2.0.0 <3.0.0",
        /* one row per batch: every purge runs several */
        "AUDIT_PURGE_BATCH_SIZE=1", "API_KEY_PURGE_BATCH_SIZE=1", NULL};
    return idb_env(kind, idb_port(kind), base);
}

static int setup(tctx *t, m8_db_kind kind)
{
    memset(t, 0, sizeof *t);
    t->name = kind == M8_DB_POSTGRES ? "PostgreSQL" : "MariaDB";
    ianswer_prefix = t->name; /* the database of the answers' test names */
    t->db = idb_open(kind, idb_port(kind), NULL, 5, 30);
    char err[256] = "";
    if (!t->db || m8_issuer_schema_apply(t->db, "auth", NULL, err, sizeof err) != 0) {
        diag("schema: %s", err);
        return -1;
    }
    if (idb_issuer_keys(&t->iss, ACCESS_SECRET, NULL, true, err, sizeof err) != 0) {
        diag("keys: %s", err);
        return -1;
    }
    idb_app a = {.name = "fa-auth-m8",
                 .version = "2.2.3",
                 .routes = g_table,
                 .nroutes = M8_ARRAY_LEN(g_table),
                 .iss = &t->iss,
                 .revoked = idb_revoked,
                 .revoked_data = &t->iss,
                 .connect_s = 5,
                 .io_s = 30,
                 .env = app_env(kind)};
    if (!(t->app = idb_app_boot(&a)))
        return -1;
    t->iss.app = t->app;
    t->iss.s = m8_app_settings(t->app);
    user(t, &t->su, "root@example.com", "superadmin", t->su_tok);
    user(t, &t->adm, "adm@example.com", "admin", t->adm_tok);
    user(t, &t->adm2, "adm2@example.com", "admin", t->adm2_tok);
    user(t, &t->bob, "bob@example.com", "user", t->bob_tok);
    user(t, &t->carol, "carol@example.com", "user", NULL);
    return 0;
}

static void teardown(tctx *t)
{
    if (t->app)
        m8_app_free(t->app);
    idb_issuer_free(&t->iss);
    if (t->db)
        m8_db_close(t->db);
}

/* ------------------------------------------------------------ JSON */

static json_object *g_doc;

/* Parses the body (kept until the next call): its "data" array, NULL when
 * the body has none; *count (may be NULL) its "count". */
static json_object *data_of(const iresp *r, int64_t *count)
{
    json_object_put(g_doc);
    g_doc = json_tokener_parse(r->body);
    json_object *d = NULL, *c = NULL;
    if (count)
        *count =
            g_doc && json_object_object_get_ex(g_doc, "count", &c) ? json_object_get_int64(c) : -1;
    if (!g_doc || !json_object_object_get_ex(g_doc, "data", &d) ||
        !json_object_is_type(d, json_type_array))
        return NULL;
    return d;
}

static const char *str_at(json_object *arr, size_t i, const char *name)
{
    json_object *e = arr ? json_object_array_get_idx(arr, i) : NULL, *v;
    if (!e || !json_object_object_get_ex(e, name, &v) || !json_object_is_type(v, json_type_string))
        return "";
    return json_object_get_string(v);
}

static int64_t int_at(json_object *arr, size_t i, const char *name)
{
    json_object *e = arr ? json_object_array_get_idx(arr, i) : NULL, *v;
    if (!e || !json_object_object_get_ex(e, name, &v))
        return -1;
    return json_object_get_int64(v);
}

/* ------------------------------------------------------------ actions */

/* Runs the request, then checks that exactly one audit row was added and
 * that the newest row reads want. */
static void one_row(tctx *t, const char *method, const char *path, const char *body, int status,
                    const char *want, const char *what)
{
    char got[512];
    int64_t before = audit_count(t);
    iresp *r = req(t, method, path, body, t->su_tok);
    if (!is_int(r->status, status, "%s: %s answers %d", t->name, what, status))
        diag("%s", r->body);
    is_int((int)(audit_count(t) - before), 1, "%s: %s writes exactly one audit row", t->name, what);
    is_str(newest(t, got, sizeof got), want, "%s: %s: its row names who, what, which and whose",
           t->name, what);
}

static void test_actions(tctx *t)
{
    char path[256], want[512], dave[37] = "", key_hash[65];
    const char *su = t->su.id;
    int64_t before = audit_count(t);
    iresp *r = req(t, "POST", "/users/new_user/",
                   "{\"email\":\"dave@example.com\",\"password\":\"" NEW_PASSWORD
                   "\",\"full_name\":\"Dave\"}",
                   t->su_tok);
    json_object *o = json_tokener_parse(r->body), *v;
    if (o && json_object_object_get_ex(o, "id", &v))
        snprintf(dave, sizeof dave, "%s", json_object_get_string(v));
    json_object_put(o);
    ok(r->status == 200 && dave[0], "%s: the superuser creates a user", t->name);
    is_int((int)(audit_count(t) - before), 1, "%s: user creation writes exactly one audit row",
           t->name);
    snprintf(want, sizeof want, "add auth_user %s %s %s superadmin", dave, dave, su);
    char got[512];
    is_str(newest(t, got, sizeof got), want, "%s: an add row about the new user", t->name);

    snprintf(path, sizeof path, "/users/update/%s/", dave);
    snprintf(want, sizeof want, "edit auth_user %s %s %s superadmin", dave, dave, su);
    one_row(t, "PATCH", path, "{\"full_name\":\"Dave D\"}", 200, want, "a profile edit");
    one_row(t, "PATCH", path, "{\"role\":\"writer\"}", 200, want, "a role change");
    one_row(t, "PATCH", path, "{\"is_active\":false}", 200, want, "a deactivation");

    session(t, SID, t->carol.id, JTI, m8_db_now());
    snprintf(want, sizeof want, "delete auth_client_session %s %s %s superadmin", SID, t->carol.id,
             su);
    one_row(t, "DELETE", "/sessions/delete/" SID "/", NULL, 200, want, "a session deletion");
    snprintf(path, sizeof path, "/sessions/delete-by-user/%s/", t->carol.id);
    snprintf(want, sizeof want, "delete auth_client_session %s %s %s superadmin", t->carol.id,
             t->carol.id, su);
    one_row(t, "DELETE", path, NULL, 200, want, "deleting every session of a user");

    key(t, KEY_ID, t->carol.id, false, 0, 0);
    snprintf(want, sizeof want, "delete auth_api_key %s %s %s superadmin", KEY_ID, t->carol.id, su);
    one_row(t, "POST", "/api-keys/revoke/" KEY_ID "/", NULL, 200, want,
            "the superuser's API-key revocation");

    snprintf(path, sizeof path, "/users/delete/%s/", dave);
    snprintf(want, sizeof want, "delete auth_user %s %s %s superadmin", dave, dave, su);
    one_row(t, "DELETE", path, NULL, 200, want, "a user deletion");

    before = audit_count(t);
    r = req(t, "DELETE", "/users/delete/" NO_SUCH "/", NULL, t->su_tok);
    r = req(t, "POST", "/api-keys/revoke/" KEY_ID "/", NULL, t->su_tok);
    is_int((int)(audit_count(t) - before), 0,
           "%s: refused actions (404, 409 already revoked) write no row", t->name);

    /* never a secret: no password, hash, token or key material in any row */
    unsigned char h[32];
    crypto_hash_sha256(h, (const unsigned char *)KEY_ID, strlen(KEY_ID));
    sodium_bin2hex(key_hash, sizeof key_hash, h, sizeof h);
    m8_db_result *rows = NULL;
    int clean =
        m8_db_exec(t->db, "SELECT * FROM auth_privileged_action_audit", NULL, 0, &rows) == 0;
    for (size_t i = 0; clean && i < m8_db_nrows(rows); i++) {
        for (size_t c = 0; c < m8_db_ncols(rows); c++) {
            size_t n = 0;
            const char *s = m8_db_get_text(rows, i, c, &n);
            char cell[256];
            snprintf(cell, sizeof cell, "%.*s", s ? (int)n : 0, s ? s : "");
            if (strstr(cell, NEW_PASSWORD) || strstr(cell, "$2") || strstr(cell, "$argon") ||
                strstr(cell, key_hash) || strstr(cell, JTI) || strstr(cell, "eyJ") ||
                strstr(cell, "00000000000000000000000000000000")) {
                diag("a secret in row %zu column %zu: %s", i, c, cell);
                clean = 0;
            }
        }
    }
    ok(clean && m8_db_nrows(rows) >= 8, "%s: no audit row holds a secret (%zu rows read)", t->name,
       m8_db_nrows(rows));
    m8_db_result_free(rows);
}

/* ------------------------------------------------------------ audit-log */

/* An audit row authored by actor, age_s seconds old (whole seconds). */
static void seed(tctx *t, const char *actor, long long age_s, const char *row_pk, char id[37])
{
    char idp[37], a[37];
    m8_issuer_uuid7(id);
    m8_issuer_uuid_param(t->db, id, idp);
    m8_issuer_uuid_param(t->db, actor, a);
    int64_t at = ((int64_t)time(NULL) - age_s) * 1000000;
    m8_db_param p[] = {M8_DB_TEXT(idp), M8_DB_TIME(at), M8_DB_TEXT(a), M8_DB_TEXT(row_pk)};
    if (m8_db_exec(t->db,
                   "INSERT INTO auth_privileged_action_audit (id, created_at, actor_user_id, "
                   "actor_role, action, table_name, row_pk, target_owner_id) VALUES (?, ?, ?, "
                   "'admin', 'edit', 'auth_user', ?, NULL)",
                   p, M8_ARRAY_LEN(p), NULL) != 0)
        diag("audit insert: %s", m8_db_last_error(t->db)->message);
}

static void test_log(tctx *t)
{
    const char *n = t->name;
    char buf[256], want[1024], when[40];
    seed(t, t->adm.id, 400 * DAY, "r-400d", t->seed[0]);
    seed(t, t->adm.id, 100 * DAY, "r-100d", t->seed[1]);
    seed(t, t->adm.id, 100 * DAY + 10, "r-100d-10s", t->seed[2]);
    seed(t, t->adm2.id, 80 * DAY, "r-80d", t->seed[3]);
    int64_t total = audit_count(t), count = 0;

    iresp *r = req(t, "GET", "/security/audit-log?limit=1000", NULL, t->su_tok);
    json_object *d = data_of(r, &count);
    ok(r->status == 200 && count == total && d && (int64_t)json_object_array_length(d) == total,
       "%s: the superuser sees every row (%lld)", n, (long long)total);
    int newest_first = d != NULL;
    for (size_t i = 1; d && i < json_object_array_length(d); i++)
        newest_first &= strcmp(str_at(d, i - 1, "created_at"), str_at(d, i, "created_at")) >= 0;
    ok(newest_first, "%s: newest first", n);
    m8_db_result *nr = NULL;
    char top[37] = "";
    if (m8_db_exec(t->db,
                   "SELECT id FROM auth_privileged_action_audit WHERE row_pk <> '' ORDER BY "
                   "created_at DESC, id DESC LIMIT 1",
                   NULL, 0, &nr) == 0 &&
        m8_db_nrows(nr) == 1) {
        size_t len = 0;
        const char *v = m8_db_get_text(nr, 0, 0, &len);
        canon(v, len, top);
    }
    m8_db_result_free(nr);
    is_str(str_at(d, 0, "id"), top, "%s: the first row is the last written (the user deletion)", n);
    is_str(str_at(d, 0, "action"), "delete", "%s: ... a delete", n);

    r = req(t, "GET", "/security/audit-log", NULL, t->adm_tok);
    d = data_of(r, &count);
    ok(r->status == 200 && count == 3 && d && json_object_array_length(d) == 3,
       "%s: an admin sees only the rows they authored", n);
    ok(strcmp(str_at(d, 0, "id"), t->seed[1]) == 0 && strcmp(str_at(d, 1, "id"), t->seed[2]) == 0 &&
           strcmp(str_at(d, 2, "id"), t->seed[0]) == 0,
       "%s: ... newest first", n);
    json_object *first = d ? json_object_array_get_idx(d, 0) : NULL;
    json_object *c = NULL;
    if (first && json_object_object_get_ex(first, "created_at", &c))
        snprintf(when, sizeof when, "%s", json_object_get_string(c));
    snprintf(want, sizeof want,
             "{\"id\":\"%s\",\"created_at\":\"%s\",\"actor_user_id\":\"%s\",\"actor_role\":"
             "\"admin\",\"action\":\"edit\",\"table_name\":\"auth_user\",\"row_pk\":\"r-100d\","
             "\"target_owner_id\":null}",
             t->seed[1], when, t->adm.id);
    is_str(first ? json_object_to_json_string_ext(first, JSON_C_TO_STRING_PLAIN) : "", want,
           "%s: a row has the eight members, in order", n);

    r = req(t, "GET", "/security/audit-log?skip=1&limit=1", NULL, t->adm_tok);
    d = data_of(r, &count);
    ok(r->status == 200 && count == 3 && d && json_object_array_length(d) == 1 &&
           strcmp(str_at(d, 0, "id"), t->seed[2]) == 0,
       "%s: skip=1&limit=1 answers the second row, count still 3", n);
    r = req(t, "GET", "/security/audit-log?skip=5", NULL, t->adm_tok);
    d = data_of(r, &count);
    ok(r->status == 200 && count == 3 && d && json_object_array_length(d) == 0,
       "%s: a skip past the end answers no rows", n);
    static const struct {
        const char *q, *want;
    } bad[] = {{"limit=0", "greater_than_equal query.limit"},
               {"limit=1001", "less_than_equal query.limit"},
               {"skip=-1", "greater_than_equal query.skip"},
               {"skip=1000000001", "less_than_equal query.skip"},
               {"skip=x", "int_parsing query.skip"},
               {"limit=99999999999999999999", "int_parsing query.limit"}};
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        char path[128];
        snprintf(path, sizeof path, "/security/audit-log?%s", bad[i].q);
        r = req(t, "GET", path, NULL, t->adm_tok);
        is_str(i422(r, buf, sizeof buf), bad[i].want, "%s: %s is 422 %s", n, bad[i].q, bad[i].want);
    }

    r = req(t, "GET", "/security/audit-log", NULL, t->bob_tok);
    idetail(r, 403, D_PRIV, "a plain user may not read the audit log");
    r = req(t, "GET", "/security/audit-log", NULL, NULL);
    idetail(r, 401, "Not authenticated", "the audit log needs a bearer token");

    int good = 0;
    for (int i = 0; i < M8_ISSUER_AUDIT_RATE_LIMIT; i++)
        good += req(t, "GET", "/security/audit-log", NULL, t->adm2_tok)->status == 200;
    is_int(good, M8_ISSUER_AUDIT_RATE_LIMIT, "%s: 30 reads in a window are answered", n);
    r = req(t, "GET", "/security/audit-log", NULL, t->adm2_tok);
    idetail(r, 429, "Too many requests. Try again later.", "the 31st read in 60 s is 429");
    r = req(t, "GET", "/security/audit-log", NULL, t->adm_tok);
    is_int(r->status, 200, "%s: the limit is per user", n);
}

/* ------------------------------------------------------------ purges */

static bool row_exists(tctx *t, const char *id)
{
    char p[37];
    m8_issuer_uuid_param(t->db, id, p);
    return iint(t->db, "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE id = ?", p) == 1;
}

static void test_purge(tctx *t)
{
    const char *n = t->name, *path = "/security/audit-log/purge";
    char buf[256], got[512];
    iresp *r = req(t, "POST", path, "{\"window\":\"3m\"}", t->adm_tok);
    idetail(r, 403, D_PRIV, "an admin who is no superuser may not purge");
    r = req(t, "POST", path, "{\"window\":\"1m\"}", t->su_tok);
    idetail(r, 400, "The window 1m is shorter than the minimum retention of 7776000 seconds",
            "a window under AUDIT_PURGE_MIN_RETENTION_SECONDS is 400");
    r = req(t, "POST", path, "{\"window\":\"1w\"}", t->su_tok);
    is_int(r->status, 400, "%s: 1w is refused too", n);
    r = req(t, "POST", path, "{}", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "missing body.window", "%s: no window is 422 missing", n);
    r = req(t, "POST", path, "{\"window\":\"2w\"}", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "enum body.window", "%s: an unknown window is 422 enum", n);
    r = req(t, "POST", path, "{\"window\":90}", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "enum body.window", "%s: a number is 422 enum", n);
    r = req(t, "POST", path, "[\"3m\"]", t->su_tok);
    is_int(r->status, 422, "%s: a body that is no object is 422", n);
    ok(row_exists(t, t->seed[0]), "%s: refused purges removed nothing", n);

    int64_t before = audit_count(t);
    r = req(t, "POST", path, "{\"window\":\"1y\"}", t->su_tok);
    ianswer(r, 200, "{\"window\":\"1y\",\"removed\":1}", "1y removes the row older than a year");
    ok(!row_exists(t, t->seed[0]) && row_exists(t, t->seed[1]), "%s: ... that one only", n);
    is_int((int)(audit_count(t) - before), 0, "%s: ... and writes its own row (one in, one out)",
           n);
    like(newest(t, got, sizeof got), "delete auth_privileged_action_audit created_at<",
         "%s: the purge's row: delete on the audit table with its cutoff", n);
    setenv("M8_ISSUER_PURGE_SECONDS", "0", 1); /* no batch starts after the first */
    r = req(t, "POST", path, "{\"window\":\"3m\"}", t->su_tok);
    unsetenv("M8_ISSUER_PURGE_SECONDS");
    ianswer(r, 200, "{\"window\":\"3m\",\"removed\":1}",
            "a purge whose time budget is spent starts no further batch (1 of 2 removed)");
    r = req(t, "POST", path, "{\"window\":\"3m\"}", t->su_tok);
    ianswer(r, 200, "{\"window\":\"3m\",\"removed\":1}", "the next purge removes the other");
    ok(!row_exists(t, t->seed[1]) && !row_exists(t, t->seed[2]) && row_exists(t, t->seed[3]),
       "%s: the 80-day row stays", n);
    r = req(t, "POST", path, "{\"window\":\"6m\"}", t->su_tok);
    ianswer(r, 200, "{\"window\":\"6m\",\"removed\":0}", "nothing left over 180 days: removed 0");
}

static bool key_exists(tctx *t, const char *id)
{
    char p[37];
    m8_issuer_uuid_param(t->db, id, p);
    return iint(t->db, "SELECT COUNT(*) FROM auth_api_key WHERE id = ?", p) == 1;
}

static void test_key_purge(tctx *t)
{
    const char *n = t->name, *path = "/security/api-keys/purge";
    static const char *k[] = {
        "e0000000-0000-4000-8000-000000000001", "e0000000-0000-4000-8000-000000000002",
        "e0000000-0000-4000-8000-000000000003", "e0000000-0000-4000-8000-000000000004",
        "e0000000-0000-4000-8000-000000000005"};
    char got[512], buf[256];
    key(t, k[0], t->carol.id, true, 100 * DAY, 0);           /* revoked 100 days ago: dead */
    key(t, k[1], t->carol.id, false, 200 * DAY, -100 * DAY); /* expired 100 days ago: dead */
    key(t, k[2], t->carol.id, true, 10 * DAY, 0);            /* revoked 10 days ago */
    key(t, k[3], t->carol.id, false, 200 * DAY, 0);          /* live, never expires */
    key(t, k[4], t->carol.id, false, 200 * DAY, -10 * DAY);  /* expired 10 days ago */
    iresp *r = req(t, "POST", path, "{\"window\":\"3m\"}", t->adm_tok);
    idetail(r, 403, D_PRIV, "an admin who is no superuser may not purge API keys");
    r = req(t, "POST", path, "{\"window\":\"1m\"}", t->su_tok);
    idetail(r, 400, "The window 1m is shorter than the minimum retention of 7776000 seconds",
            "a window under API_KEY_PURGE_MIN_RETENTION_SECONDS is 400");
    r = req(t, "POST", path, "{\"window\":\"1d\"}", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "enum body.window", "%s: 1d is 422 enum", n);
    int64_t before = audit_count(t);
    r = req(t, "POST", path, "{\"window\":\"3m\"}", t->su_tok);
    ianswer(r, 200, "{\"window\":\"3m\",\"removed\":2}",
            "3m removes the key revoked and the key expired over 90 days ago");
    ok(!key_exists(t, k[0]) && !key_exists(t, k[1]), "%s: both dead keys are gone", n);
    ok(key_exists(t, k[2]) && key_exists(t, k[3]) && key_exists(t, k[4]) && key_exists(t, KEY_ID),
       "%s: recent dead keys and live keys stay", n);
    is_int((int)(audit_count(t) - before), 1, "%s: the key purge writes one audit row", n);
    like(newest(t, got, sizeof got), "delete auth_api_key dead<",
         "%s: ... delete on the key table with its cutoff", n);
}

/* ------------------------------------------------------------ dashboard */

static void test_dashboard(tctx *t)
{
    const char *n = t->name;
    char cur[8], back2[8], uidp[37];
    int64_t start = 0, now = (int64_t)time(NULL), count = 0;
    m8_issuer_month_start(now, 0, &start, cur);
    m8_issuer_month_start(now, 2, &start, back2);
    m8_issuer_user old;
    user(t, &old, "old@example.com", "user", NULL);
    m8_issuer_uuid_param(t->db, old.id, uidp);
    int64_t then = (start + 5 * DAY) * 1000000;
    m8_db_param p[] = {M8_DB_TIME(then), M8_DB_TIME(then), M8_DB_TEXT(uidp)};
    m8_db_exec(t->db, "UPDATE auth_user SET created_at = ?, updated_at = ? WHERE id = ?", p, 3,
               NULL);
    session(t, "f0000000-0000-4000-8000-00000000000f", old.id,
            "44444444-dddd-4ddd-8ddd-444444444444", then);
    session(t, "f0000000-0000-4000-8000-0000000000f1", t->bob.id,
            "44444444-dddd-4ddd-8ddd-444444444441", m8_db_now());
    int64_t fresh = iint(t->db, "SELECT COUNT(*) FROM auth_user", NULL) - 1;

    iresp *r = req(t, "GET", "/dashboard/users/activity/", NULL, t->su_tok);
    json_object *d = data_of(r, &count), *v;
    ok(r->status == 200 && count == 12 && d && json_object_array_length(d) == 12,
       "%s: the activity has twelve months", n);
    ok(g_doc && json_object_object_get_ex(g_doc, "scope", &v) &&
           strcmp(json_object_get_string(v), "all") == 0,
       "%s: the superuser's scope is all", n);
    is_str(str_at(d, 11, "month"), cur, "%s: the current month is last", n);
    is_str(str_at(d, 9, "month"), back2, "%s: two months back is the tenth", n);
    ok(int_at(d, 11, "new_users") == fresh && int_at(d, 9, "new_users") == 1 &&
           int_at(d, 10, "new_users") == 0,
       "%s: new_users counts the accounts created in each month", n);
    ok(int_at(d, 11, "active_users") == 1 && int_at(d, 9, "active_users") == 1 &&
           int_at(d, 0, "active_users") == 0,
       "%s: active_users counts the accounts last seen in each month", n);

    r = req(t, "GET", "/dashboard/users/activity/", NULL, t->bob_tok);
    d = data_of(r, &count);
    ok(r->status == 200 && g_doc && json_object_object_get_ex(g_doc, "scope", &v) &&
           strcmp(json_object_get_string(v), "self") == 0,
       "%s: anyone else's scope is self", n);
    ok(int_at(d, 11, "new_users") == 1 && int_at(d, 11, "active_users") == 1 &&
           int_at(d, 9, "new_users") == 0 && int_at(d, 9, "active_users") == 0,
       "%s: ... counting only themselves", n);
    r = req(t, "GET", "/dashboard/users/activity/", NULL, t->adm_tok);
    d = data_of(r, &count);
    ok(int_at(d, 11, "new_users") == 1 && int_at(d, 11, "active_users") == 0,
       "%s: an admin is no superuser here either", n);
    r = req(t, "GET", "/dashboard/users/activity/current/", NULL, t->su_tok);
    d = data_of(r, &count);
    ok(r->status == 200 && count == 1 && d && json_object_array_length(d) == 1 &&
           strcmp(str_at(d, 0, "month"), cur) == 0 && int_at(d, 0, "new_users") == fresh,
       "%s: current/ answers the current month only", n);
    r = req(t, "GET", "/dashboard/users/activity/current/", NULL, NULL);
    idetail(r, 401, "Not authenticated", "the dashboard needs a bearer token");
    json_object_put(g_doc);
    g_doc = NULL;
}

/* ------------------------------------------------------------ offline */

static void test_offline(void)
{
    int64_t start = 0;
    char ym[8];
    m8_issuer_month_start(1700000000, 0, &start, ym); /* 2023-11-14 */
    ok(start == 1698796800 && strcmp(ym, "2023-11") == 0,
       "month_start: the month holding the time starts on its first day, 00:00 UTC");
    m8_issuer_month_start(1700000000, 11, &start, ym);
    ok(start == 1669852800 && strcmp(ym, "2022-12") == 0,
       "month_start: eleven months back crosses the year");
    m8_issuer_month_start(1700000000, -2, &start, ym);
    ok(start == 1704067200 && strcmp(ym, "2024-01") == 0,
       "month_start: a negative count goes forward (the end bound)");
    is_int((int)m8_issuer_purge_window_seconds("3m"), 90 * 86400, "purge window 3m is 90 days");
    is_int((int)m8_issuer_purge_window_seconds("1y"), 365 * 86400, "purge window 1y is 365 days");
    ok(m8_issuer_purge_window_seconds("2w") == -1 && m8_issuer_purge_window_seconds(NULL) == -1,
       "an unknown purge window is -1");
    char a[37], b[37];
    m8_issuer_uuid7(a);
    int sorted = 1;
    for (int i = 0; i < 200; i++) {
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL); /* 2 ms: the next id is in a later millisecond */
        m8_issuer_uuid7(b);
        sorted &= strcmp(a, b) < 0 && b[14] == '7' && strchr("89ab", b[19]) != NULL;
        memcpy(a, b, sizeof a);
    }
    ok(sorted, "audit ids are version 7 UUIDs that sort in time order");
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (sodium_init() < 0)
        return 1;
    m8_arena_init(&g_arena, 0);
    test_offline();
    idb_start(&g_srv);
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        const char *name = m8_db_kind_name(kind);
        const char *why = idb_unusable(kind);
        if (why) {
            ok(1, "%s: a real server # SKIP %s", name, why);
            continue;
        }
        tctx t;
        if (setup(&t, kind) != 0) {
            ok(0, "%s: the app boots on a fresh schema", name);
            teardown(&t);
            continue;
        }
        test_actions(&t);
        test_log(&t);
        test_purge(&t);
        test_key_purge(&t);
        test_dashboard(&t);
        teardown(&t);
    }
    idb_stop();
    m8_arena_free(&g_arena);
    return done_testing();
}
