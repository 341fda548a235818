/* test_issuer_users.c - the issuer's self-service and /users/ routes
 * (lib/issuer/profile.c, users.c, revoke.c; doc/issuer.md#users-and-profile)
 * driven through the in-process app harness against a real PostgreSQL and
 * a real MariaDB, started on loopback by the helpers of
 * tests/integration/lib.sh (ports 19740-19779; a server that is not
 * installed is skipped with the reason).  This half: the harness, the
 * reads, the password change with its revocation transaction and event,
 * the profile update and the self deletion; the /users/ routes are in
 * test_issuer_users_admin.c. */

#define M8T_MAIN 1
#include "test_issuer_users.h"

#include "issuer_db.h"

#include <signal.h>
#include <sodium.h>

#include "issuer/users_body.h"

#define PASSWORD "Iss-Users-Db-Pa55!"
#define ISS_DB "iss_users"
#define ISS_USER "iss_users"
#define ACCESS_SECRET "Test-Access-Secret-Key-0123456789abcdef!"

static const idb_servers g_srv = {
    "test_issuer_users", 19740, 19779, ISS_DB, ISS_USER, PASSWORD, false};

/* ------------------------------------------------------------ harness */

static const m8_route *g_routes;

iresp *t_req(tctx *t, const char *method, const char *path, const char *body, const char *tok)
{
    icall c = {.method = method,
               .base = "/api",
               .path = path,
               .bearer = tok,
               .body = body,
               .ctype = body ? "application/json" : NULL};
    return icall_do(t->app, &c);
}

const char *t_uid(tctx *t, const char *id, char out[37])
{
    m8_issuer_uuid_param(t->db, id, out);
    return out;
}

static m8_arena g_arena;

void t_user(tctx *t, m8_issuer_user *u, const char *email, const char *role, const char *provider,
            const char *password, char *tok)
{
    char hash[M8_PW_HASH_MAX] = "";
    memset(u, 0, sizeof *u);
    u->email = m8_arena_strdup(&g_arena, email);
    snprintf(u->role, sizeof u->role, "%s", role);
    snprintf(u->provider, sizeof u->provider, "%s", provider);
    u->is_active = true;
    if (password && m8_pw_hash(t->iss.pw, password, strlen(password), hash) == 0)
        u->hashed_password = hash;
    int rc = m8_issuer_user_insert(t->db, "auth", u);
    u->hashed_password = NULL;
    if (rc != 0)
        diag("insert %s: %d %s", email, rc, m8_db_last_error(t->db)->message);
    idb_mint(&t->iss, u, NULL, tok);
}

void t_session(tctx *t, const char *id, const char *jti, long long exp_in)
{
    char uid[37], sid[37];
    m8_jti_new(sid);
    int64_t now = m8_db_now(), exp = now + exp_in * 1000000;
    m8_db_param p[] = {
        M8_DB_TEXT(sid), M8_DB_TIME(now), M8_DB_TIME(now), M8_DB_TEXT(t_uid(t, id, uid)),
        M8_DB_TEXT(jti), M8_DB_TIME(exp), M8_DB_TIME(exp)};
    if (m8_db_exec(t->db,
                   "INSERT INTO auth_client_session (id, created_at, updated_at, user_id, "
                   "provider, jwt_jti, refresh_token_hash, jwt_expires_at, refresh_expires_at, "
                   "revoked, auth_generation) VALUES (?, ?, ?, ?, 'PASSWORD', ?, "
                   "'0000000000000000000000000000000000000000000000000000000000000000', ?, ?, "
                   "FALSE, 1)",
                   p, M8_ARRAY_LEN(p), NULL) != 0)
        diag("session insert: %s", m8_db_last_error(t->db)->message);
}

/* ------------------------------------------------------------ the routes */

#define R(m, p, acc, h, fl)                                                                        \
    {                                                                                              \
        m, p, acc, h, NULL, NULL, NULL, fl                                                         \
    }
static m8_route g_table[] = {
    R("POST", "/login/test-token/", M8_USER, m8_issuer_h_test_token, 0),
    R("GET", "/profile/get/me/", M8_USER, m8_issuer_h_me, 0),
    R("PATCH", "/profile/update/me/", M8_USER, m8_issuer_h_update_me, M8_ROUTE_JSON_BODY),
    R("PATCH", "/profile/me/password/", M8_USER, m8_issuer_h_password_me, M8_ROUTE_JSON_BODY),
    R("DELETE", "/profile/delete/me/", M8_USER, m8_issuer_h_delete_me, 0),
    R("GET", "/users/", M8_SUPERUSER, m8_issuer_h_users_list, 0),
    R("POST", "/users/new_user/", M8_SUPERUSER, m8_issuer_h_users_new, M8_ROUTE_JSON_BODY),
    R("POST", "/users/signup/", M8_SUPERUSER, m8_issuer_h_users_signup, M8_ROUTE_JSON_BODY),
    R("GET", "/users/get/{user_id}/", M8_SUPERUSER, m8_issuer_h_users_get, 0),
    R("PATCH", "/users/update/{user_id}/", M8_SUPERUSER, m8_issuer_h_users_update,
      M8_ROUTE_JSON_BODY),
    R("DELETE", "/users/delete/{user_id}/", M8_SUPERUSER, m8_issuer_h_users_delete, 0),
};
#undef R

static char **app_env(m8_db_kind kind)
{
    static const char *base[] = {IDB_ENV_SITE("iss-users"),
                                 "ACCESS_SECRET_KEY=" ACCESS_SECRET,
                                 "REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!",
                                 "TOKEN_MODE=stateless",
                                 "TOKEN_STRICT_VALIDATION=false",
                                 "AUTH_SERVICE_ROLE=consumer",
                                 "EVENT_SIGNING_KEY=Test-Event-Signing-Key-0123456789abcdef!",
                                 "SERVICE_VERSION=1.0.0",
                                 "CONTRACT_VERSION=1.0",
                                 "CONTRACT_RANGE=>=1.0.0 <2.0.0",
                                 NULL};
    return idb_env(kind, idb_port(kind), base);
}

/* Boots the app on kind's server with a fresh schema: 0 or -1. */
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
    if (idb_issuer_keys(&t->iss, ACCESS_SECRET, NULL, true, err, sizeof err) != 0) {
        diag("keys: %s", err);
        return -1;
    }
    g_routes = g_table;
    idb_app a = {.name = "fa-auth-m8",
                 .version = "2.0.0",
                 .routes = g_table,
                 .nroutes = M8_ARRAY_LEN(g_table),
                 .iss = &t->iss,
                 .connect_s = 5,
                 .io_s = 30,
                 .env = app_env(kind)};
    if (!(t->app = idb_app_boot(&a)))
        return -1;
    t->iss.app = t->app;
    t_user(t, &t->su, "root@example.com", "superadmin", "password", SU_PASSWORD, t->su_tok);
    t_user(t, &t->user, "alice@example.com", "user", "password", U_PASSWORD, t->user_tok);
    t_user(t, &t->google, "gina@example.com", "reader", "google", NULL, t->google_tok);
    m8_issuer_user_set_oauth(t->db, "auth", t->google.id, "google-sub-1");
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

/* ------------------------------------------------------------ self-service */

static void test_reads(tctx *t)
{
    const char *n = t->name;
    iresp *r = t_req(t, "GET", "/profile/get/me/", NULL, t->user_tok);
    is_int(r->status, 200, "%s: GET /profile/get/me/ answers 200", n);
    json_object *o = json_tokener_parse(r->body);
    char keys[512] = "";
    size_t len = 0;
    json_object_object_foreach(o, k, val)
    {
        (void)val;
        len += (size_t)snprintf(keys + len, sizeof keys - len, "%s%s", len ? "," : "", k);
    }
    is_str(keys,
           "created_at,updated_at,provider,email,full_name,avatar,is_active,email_verified,"
           "is_superuser,role,id",
           "%s: UserPublic members in fa-auth-m8's order", n);
    ok(!strstr(r->body, "hashed_password") && !strstr(r->body, "auth_generation"),
       "%s: no hashed_password nor auth_generation in UserPublic", n);
    json_object *v;
    ok(json_object_object_get_ex(o, "id", &v) && strcmp(json_object_get_string(v), t->user.id) == 0,
       "%s: get/me is the caller's row (read from the database)", n);
    ok(json_object_object_get_ex(o, "email", &v) &&
           strcmp(json_object_get_string(v), "alice@example.com") == 0,
       "%s: get/me carries the stored email", n);
    json_object_put(o);
    static char first[sizeof r->body];
    memcpy(first, r->body, sizeof first);
    r = t_req(t, "POST", "/login/test-token/", NULL, t->user_tok);
    ok(r->status == 200 && strcmp(r->body, first) == 0,
       "%s: POST /login/test-token/ answers the same body as get/me", n);
    r = t_req(t, "GET", "/profile/get/me/", NULL, t->google_tok);
    like(r->body, "\"provider\":\"google\"", "%s: get/me reports the stored provider", n);
}

static void test_password(tctx *t)
{
    const char *n = t->name;
    char buf[600], type[64], want[600], uid[37];
    iresp *r = t_req(t, "PATCH", "/profile/me/password/",
                     "{\"current_password\":\"Wrong-Passw0rd\",\"new_password\":\"New-Passw0rd!\"}",
                     t->user_tok);
    idetail(r, 400, "Incorrect password", "password: a wrong current password is 400");
    r = t_req(t, "PATCH", "/profile/me/password/",
              "{\"current_password\":\"" U_PASSWORD "\",\"new_password\":\"" U_PASSWORD "\"}",
              t->user_tok);
    idetail(r, 400, "New password cannot be the same as the current one",
            "password: the same password again is 400");
    r = t_req(t, "PATCH", "/profile/me/password/",
              "{\"current_password\":\"" U_PASSWORD "\",\"new_password\":\"short\"}", t->user_tok);
    is_str(i422(r, buf, sizeof buf), "string_too_short body.new_password",
           "password: a new password under 8 characters is 422 string_too_short");
    r = t_req(t, "PATCH", "/profile/me/password/", "{\"new_password\":\"New-Passw0rd!\"}",
              t->user_tok);
    is_str(i422(r, buf, sizeof buf), "missing body.current_password",
           "password: a missing current_password is 422 missing");
    r = t_req(t, "PATCH", "/profile/me/password/",
              "{\"current_password\":\"whatever-1\",\"new_password\":\"New-Passw0rd!\"}",
              t->google_tok);
    idetail(r, 403, "Password operations are not available for this account",
            "password: a Google account is 403");

    /* two live sessions, one expired, and a refresh allowlist entry */
    t_session(t, t->user.id, "11111111-1111-4111-8111-111111111111", 600);
    t_session(t, t->user.id, "22222222-2222-4222-8222-222222222222", 900);
    t_session(t, t->user.id, "33333333-3333-4333-8333-333333333333", -60);
    m8_issuer_allow_put(t->db, "auth", "11111111-1111-4111-8111-111111111111", t->user.id,
                        (int64_t)time(NULL) + 3600);
    int64_t ev0 = idb_last_event(t->db);
    r = t_req(t, "PATCH", "/profile/me/password/",
              "{\"current_password\":\"" U_PASSWORD "\",\"new_password\":\"New-Passw0rd!\"}",
              t->user_tok);
    ok(r->status == 200 && strcmp(r->body, "{\"message\":\"Password updated successfully\"}") == 0,
       "%s: password change answers 200 Password updated successfully", n);
    if (r->status != 200)
        diag("%d %s", r->status, r->body);
    t_uid(t, t->user.id, uid);
    is_int(iint(t->db, "SELECT auth_generation FROM auth_user WHERE id = ?", uid), 2,
           "%s: password change bumps auth_generation 1 -> 2", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_client_session WHERE user_id = ?", uid), 0,
           "%s: password change deletes every session row of the user", n);
    bool a = false, b = false, c = true, allowed = true;
    int64_t now = (int64_t)time(NULL);
    m8_issuer_blacklist_has(t->db, "auth", "11111111-1111-4111-8111-111111111111", now, &a);
    m8_issuer_blacklist_has(t->db, "auth", "22222222-2222-4222-8222-222222222222", now, &b);
    m8_issuer_blacklist_has(t->db, "auth", "33333333-3333-4333-8333-333333333333", now, &c);
    ok(a && b && !c, "%s: both live session JTIs are blacklisted, the expired one is not", n);
    m8_issuer_allow_has(t->db, "auth", "11111111-1111-4111-8111-111111111111", now, &allowed);
    ok(!allowed, "%s: the user's refresh allowlist entry is removed", n);
    m8_issuer_event_v2(want, sizeof want, t->user.id, 2);
    is_str(idb_event(t->db, ev0, 0, type, sizeof type, buf, sizeof buf), want,
           "%s: the v2 user-wide session-revoked event is in the outbox", n);
    is_str(type, "session-revoked", "%s: the event's type is session-revoked", n);
    like(want, "\"event_id\":\"", "%s: the v2 payload carries its event_id", n);
    is_int(iint(t->db,
                "SELECT COUNT(*) FROM auth_revocation_outbox WHERE user_id = ? AND "
                "auth_generation = 2 AND effect_type = 'publish' AND status = 'completed'",
                uid),
           1, "%s: the durable publish row is marked completed once published", n);
    is_int(iint(t->db,
                "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE row_pk = ? AND "
                "action = 'edit'",
                t->user.id),
           1, "%s: one edit audit row for the password change", n);
    m8_arena a2;
    m8_arena_init(&a2, 1 << 16);
    m8_issuer_user u;
    m8_issuer_user_by_id(t->db, "auth", &a2, t->user.id, false, &u);
    ok(u.hashed_password && strncmp(u.hashed_password, "$argon2id$", 10) == 0 &&
           m8_pw_verify(t->iss.pw, u.hashed_password, "New-Passw0rd!", 13) == M8_PW_MATCH,
       "%s: the new password is stored as argon2id and verifies", n);
    m8_arena_free(&a2);
}

static void test_update_me(tctx *t)
{
    const char *n = t->name;
    char uid[37], buf[256];
    t_uid(t, t->user.id, uid);
    iresp *r = t_req(t, "PATCH", "/profile/update/me/", "{\"full_name\":\"Alice A\"}", t->user_tok);
    ok(r->status == 200 && strncmp(r->body, "{\"success\":true,\"user\":{", 24) == 0 &&
           strstr(r->body, "\"full_name\":\"Alice A\""),
       "%s: update/me answers 200 ResponseUser with the new full_name", n);
    is_int(iint(t->db, "SELECT auth_generation FROM auth_user WHERE id = ?", uid), 2,
           "%s: a profile edit revokes nothing (generation unchanged)", n);
    r = t_req(t, "PATCH", "/profile/update/me/", "{\"avatar\":\"ftp://x.example/a.png\"}",
              t->user_tok);
    is_str(i422(r, buf, sizeof buf), "value_error body.avatar",
           "update/me: a non-http(s) avatar is 422");
    r = t_req(t, "PATCH", "/profile/update/me/", "{\"is_superuser\":true}", t->user_tok);
    is_str(i422(r, buf, sizeof buf), "extra_forbidden body.is_superuser",
           "update/me: an is_superuser key is 422");
    r = t_req(t, "PATCH", "/profile/update/me/", "[]", t->user_tok);
    is_str(i422(r, buf, sizeof buf), "model_attributes_type body",
           "update/me: a body that is not an object is 422");
    r = t_req(t, "PATCH", "/profile/update/me/", "{\"email\":\"alice2@example.com\"}", t->user_tok);
    idetail(r, 400, "current_password is required to change the email",
            "update/me: an email change without current_password is 400");
    r = t_req(t, "PATCH", "/profile/update/me/",
              "{\"email\":\"alice2@example.com\",\"current_password\":\"" U_PASSWORD "\"}",
              t->user_tok);
    idetail(r, 400, "Incorrect password",
            "update/me: an email change with a wrong password is 400");
    r = t_req(t, "PATCH", "/profile/update/me/",
              "{\"email\":\"Root@Example.com\",\"current_password\":\"New-Passw0rd!\"}",
              t->user_tok);
    idetail(r, 409, "User with this email already exists",
            "update/me: an email of another account is 409");
    r = t_req(t, "PATCH", "/profile/update/me/", "{\"email\":\"g2@example.com\"}", t->google_tok);
    idetail(r, 403, "The email of a Google account cannot be changed",
            "update/me: a Google account's email is 403");
    r = t_req(t, "PATCH", "/profile/update/me/", "{\"email\":null,\"full_name\":null}",
              t->user_tok);
    ok(r->status == 200 && strstr(r->body, "\"email\":\"alice@example.com\"") &&
           strstr(r->body, "\"full_name\":null"),
       "%s: update/me: email null leaves it, full_name null clears it", n);
    int64_t ev0 = idb_last_event(t->db);
    t_session(t, t->user.id, "44444444-4444-4444-8444-444444444444", 600);
    r = t_req(t, "PATCH", "/profile/update/me/",
              "{\"email\":\" Alice2@Example.COM \",\"current_password\":\"New-Passw0rd!\"}",
              t->user_tok);
    ok(r->status == 200 && strstr(r->body, "\"email\":\"alice2@example.com\"") &&
           strstr(r->body, "\"email_verified\":false"),
       "%s: update/me applies a normalised email, email_verified false", n);
    is_int(iint(t->db, "SELECT auth_generation FROM auth_user WHERE id = ?", uid), 3,
           "%s: an applied email change bumps the generation", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_client_session WHERE user_id = ?", uid), 0,
           "%s: an applied email change deletes the sessions", n);
    char type[64], want[600];
    m8_issuer_event_v2(want, sizeof want, t->user.id, 3);
    is_str(idb_event(t->db, ev0, 0, type, sizeof type, buf, sizeof buf), want,
           "%s: an applied email change emits the v2 event", n);
}

static void test_delete_me(tctx *t)
{
    const char *n = t->name;
    char uid[37], buf[256], type[64], want[600];
    iresp *r = t_req(t, "DELETE", "/profile/delete/me/", NULL, t->su_tok);
    idetail(r, 403, "Super users are not allowed to delete themselves",
            "delete/me: the canonical superuser is 403");
    t_uid(t, t->user.id, uid);
    int64_t gen = iint(t->db, "SELECT auth_generation FROM auth_user WHERE id = ?", uid);
    int64_t ev0 = idb_last_event(t->db);
    r = t_req(t, "DELETE", "/profile/delete/me/", NULL, t->user_tok);
    ok(r->status == 200 && strcmp(r->body, "{\"message\":\"User deleted successfully\"}") == 0,
       "%s: delete/me answers 200 User deleted successfully", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_user WHERE id = ?", uid), 0,
           "%s: delete/me removes the row", n);
    is_int(iint(t->db, "SELECT terminal_generation FROM auth_tombstone WHERE user_id = ?", uid),
           gen + 1, "%s: delete/me writes the tombstone at generation + 1", n);
    m8_issuer_event_v2(want, sizeof want, t->user.id, gen + 1);
    is_str(idb_event(t->db, ev0, 0, type, sizeof type, buf, sizeof buf), want,
           "%s: delete/me emits the v2 session-revoked event first", n);
    snprintf(want, sizeof want,
             "{\"event_type\":\"user.deleted\",\"version\":\"v1\",\"user_id\":\"%s\"}", t->user.id);
    is_str(idb_event(t->db, ev0, 1, type, sizeof type, buf, sizeof buf), want,
           "%s: then the user-deleted event", n);
    is_str(type, "user-deleted", "%s: its type is user-deleted", n);
    is_int(iint(t->db,
                "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE row_pk = ? AND "
                "action = 'delete'",
                t->user.id),
           1, "%s: one delete audit row", n);
    r = t_req(t, "GET", "/profile/get/me/", NULL, t->user_tok);
    idetail(r, 404, "User not found", "get/me: a deleted caller is 404 User not found");
}

static void test_offline(void)
{
    char buf[600];
    is_int(m8_issuer_event_v2(buf, sizeof buf, "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d", 7), 0,
           "event v2: builds");
    is_str(buf,
           "{\"event_type\":\"session.revoked\",\"version\":\"v2\",\"user_id\":\"0b6f3c1e-7a52-"
           "4c4e-9a71-2f1d4e5b6c7d\",\"jti\":null,\"auth_generation\":7,\"event_id\":\"0b6f3c1e-"
           "7a52-4c4e-9a71-2f1d4e5b6c7d:7:publish:user-wide\"}",
           "event v2: the user-wide payload, fields in issuer order");
    ok(m8_issuer_role_rank("superadmin") < m8_issuer_role_rank("admin") &&
           m8_issuer_role_rank("reader") < m8_issuer_role_rank("user") &&
           m8_issuer_role_rank("root") == -1,
       "roles: superadmin > admin > writer > reader > user");
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
        test_reads(&t);
        test_password(&t);
        test_update_me(&t);
        test_admin(&t);
        test_delete_me(&t);
        teardown(&t);
    }
    idb_stop();
    m8_arena_free(&g_arena);
    return done_testing();
}
