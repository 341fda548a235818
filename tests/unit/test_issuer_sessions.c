/* test_issuer_sessions.c - the issuer's /sessions/ routes and the superuser
 * probe (lib/issuer/sessions_admin.c; doc/issuer.md#sessions-and-security-routes)
 * driven through the in-process app harness, in issuer mode with
 * TOKEN_MODE=stateful, against a real PostgreSQL and a real MariaDB started
 * on loopback by the helpers of tests/integration/lib.sh (ports
 * 19340-19379; a server that is not installed is skipped with the reason). */
#include "config.h"

#include <json-c/json.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "db/db.h"
#include "issuer/service.h"
#include "issuer/sessions.h"
#include "issuer/sessions_admin.h"
#include "issuer/store.h"
#include "issuer_call.h"
#include "issuer_db.h"
#include "tap.h"

#define PASSWORD "Iss-Sessions-Db-Pa55!"
#define ISS_DB "iss_sessions"
#define ISS_USER "iss_sessions"
#define ACCESS_SECRET "Test-Access-Secret-Key-0123456789abcdef!"

/* session ids and jtis of the fixtures */
#define SID_A "aaaaaaaa-0000-4000-8000-00000000000a"
#define SID_B1 "bbbbbbbb-0000-4000-8000-0000000000b1"
#define SID_B2 "bbbbbbbb-0000-4000-8000-0000000000b2"
#define SID_B3 "bbbbbbbb-0000-4000-8000-0000000000b3"
#define JTI_A "11111111-aaaa-4aaa-8aaa-111111111111"
#define JTI_B1 "22222222-bbbb-4bbb-8bbb-222222222221"
#define JTI_B2 "22222222-bbbb-4bbb-8bbb-222222222222"
#define JTI_B3 "22222222-bbbb-4bbb-8bbb-222222222223"
#define NO_SUCH "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d"

static const idb_servers g_srv = {
    "test_issuer_sessions", 19340, 19379, ISS_DB, ISS_USER, PASSWORD, false};

/* ------------------------------------------------------------ harness */

typedef struct tctx {
    m8_db_kind kind;
    const char *name;
    m8_app *app;
    m8_db *db;
    m8_issuer iss;
    m8_issuer_user su, alice, bob, carol;
    char su_tok[2048], alice_tok[2048], alice_a_tok[2048], bob_tok[2048];
} tctx;

static iresp *req(tctx *t, const char *method, const char *path, const char *tok)
{
    icall c = {.method = method, .base = "/api", .path = path, .bearer = tok};
    return icall_do(t->app, &c);
}

static const char *uid(tctx *t, const char *id, char out[37])
{
    m8_issuer_uuid_param(t->db, id, out);
    return out;
}

static m8_arena g_arena;

static void add_user(tctx *t, m8_issuer_user *u, const char *email, const char *role, char *tok)
{
    idb_user_add(t->db, &g_arena, u, email, role, false);
    if (tok)
        idb_mint(&t->iss, u, NULL, tok);
}

/* A session row sid of user id with jti, its access token expiring in
 * exp_in seconds, created created_off seconds from now, and the jti's
 * refresh allowlist entry. */
static void add_session(tctx *t, const char *sid, const char *id, const char *jti, long long exp_in,
                        long long created_off)
{
    char u[37];
    int64_t now = m8_db_now(), created = now + created_off * 1000000, exp = now + exp_in * 1000000;
    m8_db_param p[] = {M8_DB_TEXT(sid),
                       M8_DB_TIME(created),
                       M8_DB_TIME(created),
                       M8_DB_TEXT(uid(t, id, u)),
                       M8_DB_TEXT(jti),
                       M8_DB_TIME(exp),
                       M8_DB_TIME(now + 86400000000LL)};
    if (m8_db_exec(t->db,
                   "INSERT INTO auth_client_session (id, created_at, updated_at, user_id, "
                   "provider, jwt_jti, refresh_token_hash, jwt_expires_at, refresh_expires_at, "
                   "revoked, auth_generation) VALUES (?, ?, ?, ?, 'PASSWORD', ?, "
                   "'0000000000000000000000000000000000000000000000000000000000000000', ?, ?, "
                   "FALSE, 1)",
                   p, M8_ARRAY_LEN(p), NULL) != 0)
        diag("session insert: %s", m8_db_last_error(t->db)->message);
    m8_issuer_allow_put(t->db, "auth", jti, id, (int64_t)time(NULL) + 86400);
}

#define R(m, p, acc, h, fl)                                                                        \
    {                                                                                              \
        m, p, acc, h, NULL, NULL, NULL, fl                                                         \
    }
static m8_route g_table[] = {
    R("GET", "/sessions/", M8_SUPERUSER, m8_issuer_h_sessions_list, 0),
    R("GET", "/sessions/get/{session_id}/", M8_SUPERUSER, m8_issuer_h_sessions_get, 0),
    R("GET", "/sessions/get-by-user/{user_id}/", M8_SUPERUSER, m8_issuer_h_sessions_by_user, 0),
    R("GET", "/sessions/get-current/", M8_USER, m8_issuer_h_sessions_current, 0),
    R("DELETE", "/sessions/delete-by-user/{user_id}/", M8_SUPERUSER,
      m8_issuer_h_sessions_delete_user, 0),
    R("DELETE", "/sessions/delete/{session_id}/", M8_SUPERUSER, m8_issuer_h_sessions_delete, 0),
    R("GET", "/security/superuser-probe", M8_SUPERUSER, m8_issuer_h_superuser_probe,
      M8_ROUTE_HIDDEN),
};
#undef R

static char **app_env(m8_db_kind kind)
{
    static const char *base[] = {IDB_ENV_SITE("iss-sessions"),
                                 "ACCESS_SECRET_KEY=" ACCESS_SECRET,
                                 "REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!",
                                 "TOKEN_MODE=stateful",
                                 "TOKEN_STRICT_VALIDATION=false",
                                 IDB_ENV_ISSUER_SECRETS,
                                 "FIRST_SUPERUSER=admin@example.com",
                                 "FIRST_SUPERUSER_PASSWORD=Adm1n-Passw0rd!",
                                 "SERVICE_VERSION=2.2.3",
                                 "CONTRACT_VERSION=2.0",
                                 "CONTRACT_RANGE=>=2.0.0 <3.0.0",
                                 NULL};
    return idb_env(kind, idb_port(kind), base);
}

static int setup(tctx *t, m8_db_kind kind)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->name = kind == M8_DB_POSTGRES ? "PostgreSQL" : "MariaDB";
    t->db = idb_open(kind, idb_port(kind), NULL, 5, 30);
    char err[256] = "";
    if (!t->db || m8_issuer_schema_apply(t->db, "auth", NULL, err, sizeof err) != 0) {
        diag("schema: %s", err);
        return -1;
    }
    if (idb_issuer_keys(&t->iss, ACCESS_SECRET, NULL, false, err, sizeof err) != 0) {
        diag("keys: %s", err);
        return -1;
    }
    /* The own-route revocation check is service.c's: the blacklist. */
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
    add_user(t, &t->su, "root@example.com", "superadmin", t->su_tok);
    add_user(t, &t->alice, "alice@example.com", "user", t->alice_tok);
    add_user(t, &t->bob, "bob@example.com", "user", t->bob_tok);
    add_user(t, &t->carol, "carol@example.com", "user", NULL);
    idb_mint(&t->iss, &t->alice, JTI_A, t->alice_a_tok);
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

/* ------------------------------------------------------------ reads */

static void test_reads(tctx *t)
{
    const char *n = t->name;
    char path[256], buf[512];
    iresp *r = req(t, "GET", "/sessions/get-current/", t->alice_tok);
    idetail(r, 400, "The user session unavelable",
            "get-current without a session row is 400 The user session unavelable (sic)");

    add_session(t, SID_A, t->alice.id, JTI_A, 600, -40);
    add_session(t, SID_B1, t->bob.id, JTI_B1, 600, -30);
    add_session(t, SID_B2, t->bob.id, JTI_B2, 900, -20);
    add_session(t, SID_B3, t->bob.id, JTI_B3, -60, -10);

    r = req(t, "GET", "/sessions/get-current/", t->alice_tok);
    is_int(r->status, 200, "%s: get-current answers 200 with the caller's row", n);
    json_object *o = json_tokener_parse(r->body), *v;
    char keys[512] = "";
    size_t len = 0;
    json_object_object_foreach(o, k, val)
    {
        (void)val;
        len += (size_t)snprintf(keys + len, sizeof keys - len, "%s%s", len ? "," : "", k);
    }
    is_str(keys,
           "created_at,updated_at,id,provider,jwt_jti,jwt_expires_at,refresh_expires_at,revoked,"
           "external_token_expires_at",
           "%s: ClientSessionPublic members in fa-auth-m8's order", n);
    ok(!strstr(r->body, "refresh_token_hash") && !strstr(r->body, "external_access_token") &&
           !strstr(r->body, "user_id"),
       "%s: no refresh hash, Google token or user id in ClientSessionPublic", n);
    is_str(imember(r->body, "id", buf, sizeof buf), SID_A, "%s: get-current is the caller's row",
           n);
    is_str(imember(r->body, "jwt_jti", buf, sizeof buf), JTI_A, "%s: jwt_jti is the row's", n);
    is_str(imember(r->body, "provider", buf, sizeof buf), "password",
           "%s: provider is the wire value", n);
    ok(json_object_object_get_ex(o, "revoked", &v) && !json_object_get_boolean(v) &&
           json_object_object_get_ex(o, "external_token_expires_at", &v) && v == NULL,
       "%s: revoked false, external_token_expires_at null", n);
    json_object_put(o);

    r = req(t, "GET", "/sessions/", t->su_tok);
    o = json_tokener_parse(r->body);
    json_object *data = NULL, *cnt = NULL;
    ok(r->status == 200 && json_object_object_get_ex(o, "data", &data) &&
           json_object_object_get_ex(o, "count", &cnt) && json_object_get_int(cnt) == 4 &&
           json_object_array_length(data) == 4,
       "%s: GET /sessions/ lists every row with the count", n);
    json_object_put(o);
    r = req(t, "GET", "/sessions/?skip=1&limit=1", t->su_tok);
    o = json_tokener_parse(r->body);
    ok(r->status == 200 && json_object_object_get_ex(o, "data", &data) &&
           json_object_object_get_ex(o, "count", &cnt) && json_object_get_int(cnt) == 4 &&
           json_object_array_length(data) == 1 &&
           strcmp(json_object_get_string(
                      json_object_object_get(json_object_array_get_idx(data, 0), "id")),
                  SID_B1) == 0,
       "%s: skip=1&limit=1 gives the second row by creation, count still 4", n);
    json_object_put(o);
    r = req(t, "GET", "/sessions/?limit=-1", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "greater_than_equal query.limit",
           "%s: a negative limit is 422 greater_than_equal", n);
    r = req(t, "GET", "/sessions/?skip=x", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "int_parsing query.skip",
           "%s: a skip that is no integer is 422 int_parsing", n);
    r = req(t, "GET", "/sessions/", t->alice_tok);
    idetail(r, 403, "The user doesn't have enough privileges",
            "GET /sessions/ is the superuser's only (403)");

    r = req(t, "GET", "/sessions/get/" SID_B2 "/", t->su_tok);
    ok(r->status == 200 && strcmp(imember(r->body, "jwt_jti", buf, sizeof buf), JTI_B2) == 0,
       "%s: get/{session_id} answers that row", n);
    r = req(t, "GET", "/sessions/get/" NO_SUCH "/", t->su_tok);
    idetail(r, 404, "Session not found", "get/{session_id} of an unknown id is 404 (decision I7)");
    r = req(t, "GET", "/sessions/get/not-a-uuid/", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "uuid_parsing path.session_id",
           "%s: a session id that is no UUID is 422 uuid_parsing", n);
    snprintf(path, sizeof path, "/sessions/get-by-user/%s/", t->alice.id);
    r = req(t, "GET", path, t->su_tok);
    ok(r->status == 200 && strcmp(imember(r->body, "id", buf, sizeof buf), SID_A) == 0,
       "%s: get-by-user answers the user's row", n);
    snprintf(path, sizeof path, "/sessions/get-by-user/%s/", t->carol.id);
    r = req(t, "GET", path, t->su_tok);
    idetail(r, 404, "Session not found", "get-by-user of a user without sessions is 404 (I7)");
    snprintf(path, sizeof path, "/sessions/get-by-user/%s/", t->alice.id);
    r = req(t, "GET", path, t->bob_tok);
    idetail(r, 403, "The user doesn't have enough privileges", "get-by-user needs the superuser");
}

/* ------------------------------------------------------------ deletions */

static void test_delete_one(tctx *t)
{
    const char *n = t->name;
    char buf[512], type[64], want[512], u[37];
    iresp *r = req(t, "GET", "/sessions/get-current/", t->alice_a_tok);
    is_int(r->status, 200, "%s: the token of session A works before the deletion", n);
    r = req(t, "DELETE", "/sessions/delete/" NO_SUCH "/", t->su_tok);
    idetail(r, 404, "Session not found", "delete/{session_id} of an unknown id is 404");
    r = req(t, "DELETE", "/sessions/delete/" SID_A "/", t->alice_tok);
    idetail(r, 403, "The user doesn't have enough privileges", "delete/{session_id} needs the SU");
    int64_t ev0 = idb_last_event(t->db);
    r = req(t, "DELETE", "/sessions/delete/" SID_A "/", t->su_tok);
    ianswer(r, 200, "{\"message\":\"Session deleted successfully\"}",
            "delete/{session_id} answers 200 Session deleted successfully");
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_client_session WHERE id = ?", SID_A), 0,
           "%s: the session row is deleted", n);
    bool listed = false, allowed = true;
    int64_t now = (int64_t)time(NULL);
    m8_issuer_blacklist_has(t->db, "auth", JTI_A, now, &listed);
    m8_issuer_allow_has(t->db, "auth", JTI_A, now, &allowed);
    ok(listed && !allowed, "%s: its JTI is blacklisted and its refresh entry removed", n);
    snprintf(want, sizeof want,
             "{\"event_type\":\"session.revoked\",\"version\":\"v1\",\"user_id\":\"%s\","
             "\"jti\":\"" JTI_A "\"}",
             t->alice.id);
    is_str(idb_event(t->db, ev0, 0, type, sizeof type, buf, sizeof buf), want,
           "%s: one v1 session-revoked event with that JTI", n);
    is_str(type, "session-revoked", "%s: the event's type is session-revoked", n);
    idb_event(t->db, ev0, 1, type, sizeof type, buf, sizeof buf);
    is_str(buf, "", "%s: and no other event", n);
    is_int(iint(t->db,
                "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE action = 'delete' "
                "AND table_name = 'auth_client_session' AND row_pk = ?",
                SID_A),
           1, "%s: one delete audit row on auth_client_session for the session id", n);
    snprintf(want, sizeof want,
             "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE row_pk = '" SID_A
             "' AND target_owner_id = ? AND actor_user_id = '%s'",
             uid(t, t->su.id, u));
    is_int(iint(t->db, want, t->alice.id), 1, "%s: the audit row names the owner and the superuser",
           n);
    r = req(t, "GET", "/sessions/get-current/", t->alice_a_tok);
    idetail(r, 401, "Session revoked", "the deleted session's token is refused (Session revoked)");
    r = req(t, "DELETE", "/sessions/delete/" SID_A "/", t->su_tok);
    idetail(r, 404, "Session not found", "deleting it again is 404");
}

static void test_delete_user(tctx *t)
{
    const char *n = t->name;
    char path[256], buf[512], type[64], want[512], u[37];
    int64_t ev0 = idb_last_event(t->db);
    snprintf(path, sizeof path, "/sessions/delete-by-user/%s/", t->bob.id);
    iresp *r = req(t, "DELETE", path, t->alice_tok);
    idetail(r, 403, "The user doesn't have enough privileges", "delete-by-user needs the SU");
    r = req(t, "DELETE", path, t->su_tok);
    ianswer(r, 200, "{\"message\":\"User deleted successfully\"}",
            "delete-by-user answers 200 User deleted successfully (sic, I10)");
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_client_session WHERE user_id = ?",
                uid(t, t->bob.id, u)),
           0, "%s: every session row of the user is deleted", n);
    bool b1 = false, b2 = false, b3 = true, allowed = true;
    int64_t now = (int64_t)time(NULL);
    m8_issuer_blacklist_has(t->db, "auth", JTI_B1, now, &b1);
    m8_issuer_blacklist_has(t->db, "auth", JTI_B2, now, &b2);
    m8_issuer_blacklist_has(t->db, "auth", JTI_B3, now, &b3);
    ok(b1 && b2 && !b3, "%s: the live JTIs are blacklisted, the expired one is not", n);
    m8_issuer_allow_has(t->db, "auth", JTI_B1, now, &allowed);
    bool a2 = true;
    m8_issuer_allow_has(t->db, "auth", JTI_B2, now, &a2);
    ok(!allowed && !a2, "%s: the user's refresh entries are removed", n);
    snprintf(want, sizeof want,
             "{\"event_type\":\"session.revoked\",\"version\":\"v1\",\"user_id\":\"%s\","
             "\"jti\":null}",
             t->bob.id);
    is_str(idb_event(t->db, ev0, 0, type, sizeof type, buf, sizeof buf), want,
           "%s: one user-wide v1 event with jti null", n);
    idb_event(t->db, ev0, 1, type, sizeof type, buf, sizeof buf);
    is_str(buf, "", "%s: and no per-JTI events", n);
    is_int(iint(t->db,
                "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE action = 'delete' "
                "AND table_name = 'auth_client_session' AND row_pk = target_owner_id AND "
                "row_pk = ?",
                t->bob.id),
           1, "%s: one delete audit row keyed by the user id", n);
    r = req(t, "GET", "/sessions/get-current/", t->alice_tok);
    idetail(r, 400, "The user session unavelable", "alice has no session left either");
    /* no 404 branch here, as in fa-auth-m8 */
    snprintf(path, sizeof path, "/sessions/delete-by-user/%s/", t->carol.id);
    ev0 = idb_last_event(t->db);
    r = req(t, "DELETE", path, t->su_tok);
    ianswer(r, 200, "{\"message\":\"User deleted successfully\"}",
            "delete-by-user of a user without sessions is still 200");
    like(idb_event(t->db, ev0, 0, type, sizeof type, buf, sizeof buf), "\"jti\":null",
         "%s: and still announced user-wide", n);
    r = req(t, "DELETE", "/sessions/delete-by-user/12345/", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "uuid_parsing path.user_id",
           "%s: a user id that is no UUID is 422 uuid_parsing", n);
}

/* ------------------------------------------------------------ slashes */

static void test_slashes(tctx *t)
{
    const char *n = t->name;
    iresp *r = req(t, "GET", "/sessions?skip=1", t->su_tok);
    ok(r->status == 307 && strstr(r->head, "\r\nLocation: /api/sessions/?skip=1"),
       "%s: GET /sessions answers 307 to /api/sessions/ (query kept)", n);
    if (r->status != 307)
        diag("%d %s", r->status, r->head);
    r = req(t, "GET", "/sessions/get-current", t->alice_tok);
    ok(r->status == 307 && strstr(r->head, "\r\nLocation: /api/sessions/get-current/\r\n"),
       "%s: get-current without its slash answers 307 to the declared form", n);
    r = req(t, "GET", "/security/superuser-probe/", t->su_tok);
    ok(r->status == 307 && strstr(r->head, "\r\nLocation: /api/security/superuser-probe\r\n"),
       "%s: the probe with a trailing slash answers 307 to the form without", n);
    r = req(t, "DELETE", "/sessions/delete/" SID_A, t->su_tok);
    ok(r->status == 307 && strstr(r->head, "\r\nLocation: /api/sessions/delete/" SID_A "/\r\n"),
       "%s: a DELETE without the slash answers 307 too (the method is kept by 307)", n);
}

/* ------------------------------------------------------------ probe */

static void test_probe(tctx *t)
{
    const char *n = t->name;
    iresp *r = req(t, "GET", "/security/superuser-probe", t->bob_tok);
    idetail(r, 403, "The user doesn't have enough privileges", "the probe refuses a plain user");
    r = req(t, "GET", "/security/superuser-probe", NULL);
    idetail(r, 401, "Not authenticated", "the probe needs a bearer token");
    int good = 0;
    for (int i = 0; i < M8_ISSUER_PROBE_LIMIT; i++) {
        r = req(t, "GET", "/security/superuser-probe", t->su_tok);
        good += r->status == 200 && strcmp(r->body, "{\"authorized\":true}") == 0;
    }
    is_int(good, M8_ISSUER_PROBE_LIMIT,
           "%s: the probe answers {\"authorized\":true} 30 times in its window", n);
    r = req(t, "GET", "/security/superuser-probe", t->su_tok);
    idetail(r, 429, "Too many requests. Try again later.", "the 31st probe in 60 s is 429");
    char key[128];
    snprintf(key, sizeof key, "security:superuser_probe:%s", t->su.id);
    m8_issuer_rate_clear(t->db, "auth", key, strlen(key));
    r = req(t, "GET", "/security/superuser-probe", t->su_tok);
    is_int(r->status, 200, "%s: a new window answers again", n);
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
        test_slashes(&t);
        test_reads(&t);
        test_delete_one(&t);
        test_delete_user(&t);
        test_probe(&t);
        teardown(&t);
    }
    idb_stop();
    m8_arena_free(&g_arena);
    return done_testing();
}
