/* test_issuer_service_accounts.c - service accounts and the client-credentials
 * grant (lib/issuer/service_accounts.c, service_accounts_grant.c, form_cc.c;
 * doc/issuer.md#service-accounts-and-client-credentials) driven through the
 * in-process app harness against a real PostgreSQL and a real MariaDB
 * started on loopback by tests/integration/lib.sh (ports 21500-21539; a
 * server that is not installed is skipped with the reason): the superuser
 * routes, the secret shown once, the grant by form and by Basic, its
 * refusals (RFC 6749 section 5.2), the password login refused for an
 * account, the failure windows (keyed by client and address), deactivation
 * (final, also for a user row made active again elsewhere), no token for a
 * row given superadmin, the extra claims' place in the token, and the
 * schema migration from version 1 to 2 (also by two workers at once).  The
 * parser's own checks are in test_issuer_sa_parser.c. */
#include "config.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "db/db.h"
#include "issuer/service.h"
#include "issuer/service_accounts.h"
#include "issuer_db.h"
#define M8T_SHARED
#define M8T_MAIN
#include "tap.h"

#include "issuer_call.h" /* after tap.h: its checks count in this program's stream */

#define PASSWORD "Iss-Sa-Db-Pa55!"
#define ISS_DB "iss_sa"
#define ISS_USER "iss_sa"
#define ACCESS_SECRET "Test-Access-Secret-Key-0123456789abcdef!"
#define FORM "application/x-www-form-urlencoded"
#define NO_SUCH "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d"

static const idb_servers g_srv = {
    "test_issuer_service_accounts", 21500, 21539, ISS_DB, ISS_USER, PASSWORD, false};

/* ------------------------------------------------------------ harness */

typedef struct tctx {
    m8_db_kind kind;
    const char *name;
    m8_app *app;
    m8_db *db;
    m8_issuer iss;
    m8_issuer_user su, alice;
    char su_tok[2048], alice_tok[2048];
} tctx;

/* One request: ctype the body's media type (NULL: JSON when there is a
 * body), authz the whole Authorization value, ip the client address. */
static iresp *call(tctx *t, const char *method, const char *path, const char *ctype,
                   const char *authz, const char *ip, const char *body)
{
    icall c = {.method = method,
               .base = "/api",
               .path = path,
               .peer = ip ? ip : "127.0.0.1",
               .authz = authz,
               .body = body,
               .ctype = body ? (ctype ? ctype : "application/json") : NULL};
    return icall_do(t->app, &c);
}

static iresp *su(tctx *t, const char *method, const char *path, const char *body)
{
    char a[2100];
    snprintf(a, sizeof a, "Bearer %s", t->su_tok);
    return call(t, method, path, NULL, a, NULL, body);
}

/* The token endpoint with a form body; basic_id/basic_secret (when set) in
 * an Authorization: Basic header. */
static iresp *token(tctx *t, const char *form, const char *basic_id, const char *basic_secret,
                    const char *ip)
{
    char a[1024] = "", raw[512], b64[800];
    if (basic_id) {
        snprintf(raw, sizeof raw, "%s:%s", basic_id, basic_secret);
        sodium_bin2base64(b64, sizeof b64, (const unsigned char *)raw, strlen(raw),
                          sodium_base64_VARIANT_ORIGINAL);
        snprintf(a, sizeof a, "Basic %s", b64);
    }
    return call(t, "POST", "/login/access-token", FORM, basic_id ? a : NULL, ip, form);
}

/* A claim of a token's payload as text ("" when absent). */
static const char *claim(const char *tok, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2)
        return out;
    unsigned char raw[4096];
    size_t n = 0;
    if (sodium_base642bin(raw, sizeof raw - 1, d1 + 1, (size_t)(d2 - d1 - 1), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return out;
    raw[n] = '\0';
    return imember((const char *)raw, name, out, outlen);
}

static bool oauth_error(const iresp *r, int status, const char *code)
{
    char e[64];
    return r->status == status && strcmp(imember(r->body, "error", e, sizeof e), code) == 0 &&
           strstr(r->body, "error_description");
}

static m8_arena g_arena;

static void add_user(tctx *t, m8_issuer_user *u, const char *email, const char *role, char *tok)
{
    idb_user_add(t->db, &g_arena, u, email, role, strcmp(role, "superadmin") == 0);
    idb_mint(&t->iss, u, NULL, tok);
}

#define R(m, p, acc, h, fl)                                                                        \
    {                                                                                              \
        m, p, acc, h, NULL, NULL, NULL, fl                                                         \
    }
static m8_route g_table[] = {
    R("POST", "/login/access-token", M8_PUBLIC, m8_issuer_h_login, 0),
    R("GET", "/profile/get/me/", M8_USER, m8_issuer_h_me, 0),
    R("POST", "/service-accounts/", M8_SUPERUSER, m8_issuer_h_sa_create, M8_ROUTE_JSON_BODY),
    R("GET", "/service-accounts/", M8_SUPERUSER, m8_issuer_h_sa_list, 0),
    R("GET", "/service-accounts/{user_id}/", M8_SUPERUSER, m8_issuer_h_sa_get, 0),
    R("PATCH", "/service-accounts/{user_id}/role/", M8_SUPERUSER, m8_issuer_h_sa_role,
      M8_ROUTE_JSON_BODY),
    R("POST", "/service-accounts/{user_id}/deactivate/", M8_SUPERUSER, m8_issuer_h_sa_deactivate,
      0),
    R("POST", "/service-accounts/{user_id}/secret/", M8_SUPERUSER, m8_issuer_h_sa_secret, 0),
    R("POST", "/service-accounts/{user_id}/api-keys/", M8_SUPERUSER, m8_issuer_h_sa_keys_create,
      M8_ROUTE_JSON_BODY),
    R("GET", "/service-accounts/{user_id}/api-keys/", M8_SUPERUSER, m8_issuer_h_sa_keys_list, 0),
};
#undef R

static char **app_env(m8_db_kind kind)
{
    static const char *base[] = {IDB_ENV_SITE("iss-sa"),
                                 "ACCESS_SECRET_KEY=" ACCESS_SECRET,
                                 "REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!",
                                 "TOKEN_MODE=stateful",
                                 "TOKEN_STRICT_VALIDATION=false",
                                 IDB_ENV_ISSUER_SECRETS,
                                 "FIRST_SUPERUSER=admin@example.com",
                                 "FIRST_SUPERUSER_PASSWORD=Adm1n-Passw0rd!",
                                 "LOGIN_RATE_LIMIT_REQUESTS=3",
                                 "LOGIN_IP_RATE_LIMIT_REQUESTS=12",
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
    if (idb_issuer_keys(&t->iss, ACCESS_SECRET, "Test-Refresh-Secret-Key-0123456789abcdef!", true,
                        err, sizeof err) != 0) {
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
    add_user(t, &t->su, "root@example.com", "superadmin", t->su_tok);
    add_user(t, &t->alice, "alice@example.com", "reader", t->alice_tok);
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

/* ------------------------------------------------------------ tests */

/* Creates an account: its id and secret out. */
static bool create(tctx *t, const char *body, char id[64], char secret[128])
{
    iresp *r = su(t, "POST", "/service-accounts/", body);
    imember(r->body, "id", id, 64);
    imember(r->body, "client_secret", secret, 128);
    return r->status == 201;
}

static void test_create(tctx *t, char *id, char *secret)
{
    const char *n = t->name;
    char buf[512], p[160];
    ok(create(t,
              "{\"name\":\"data-pipeline\",\"description\":\"nightly ETL job\",\"role\":"
              "\"reader\",\"scopes\":[\"items:read\",\"items:write\"]}",
              id, secret),
       "%s: POST /service-accounts/ answers 201", n);
    ok(strlen(secret) == M8_SA_SECRET_LEN && strncmp(secret, "m8sa_", 5) == 0,
       "%s: the client secret is m8sa_ and 43 base64url characters (%s)", n, secret);
    iresp *r = su(t, "GET", "/service-accounts/", NULL);
    ok(r->status == 200 && strstr(r->body, "data-pipeline") && !strstr(r->body, secret) &&
           !strstr(r->body, "client_secret"),
       "%s: the list shows the account, never its secret", n);
    snprintf(p, sizeof p, "/service-accounts/%s/", id);
    r = su(t, "GET", p, NULL);
    ok(r->status == 200 && !strstr(r->body, "client_secret"),
       "%s: GET one answers 200 without the secret (shown once)", n);
    is_str(imember(r->body, "role", buf, sizeof buf), "reader", "%s: its role", n);
    is_str(imember(r->body, "client_id", buf, sizeof buf), id, "%s: client_id is its id", n);
    is_str(imember(r->body, "scopes", buf, sizeof buf), "[ \"items:read\", \"items:write\" ]",
           "%s: its scopes", n);
    char hash[65], dp[40];
    m8_issuer_sa_hash(secret, strlen(secret), hash);
    m8_issuer_uuid_param(t->db, id, dp);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_service_account WHERE secret_hash = ?", hash), 1,
           "%s: the stored secret is its SHA-256 hex", n);
    is_int(
        iint(t->db, "SELECT COUNT(*) FROM auth_user WHERE id = ? AND hashed_password IS NULL", dp),
        1, "%s: the account's user row has no password", n);
    is_int(su(t, "GET", "/service-accounts/" NO_SUCH "/", NULL)->status, 404,
           "%s: GET an unknown account: 404", n);
    /* refusals */
    is_int(su(t, "POST", "/service-accounts/", "{\"name\":\"data-pipeline\"}")->status, 409,
           "%s: a name taken: 409", n);
    is_int(su(t, "POST", "/service-accounts/", "{\"name\":\"Bad Name\"}")->status, 422,
           "%s: a name outside [a-z0-9_-]: 422", n);
    is_int(su(t, "POST", "/service-accounts/", "{\"name\":\"x\",\"role\":\"superadmin\"}")->status,
           422, "%s: role superadmin: 422", n);
    is_int(su(t, "POST", "/service-accounts/", "{\"name\":\"y\",\"scopes\":[\"a b\"]}")->status,
           422, "%s: a scope with a space: 422", n);
    char a[2100];
    snprintf(a, sizeof a, "Bearer %s", t->alice_tok);
    is_int(call(t, "POST", "/service-accounts/", NULL, a, NULL, "{\"name\":\"z\"}")->status, 403,
           "%s: a reader may not create one: 403", n);
}

static void test_grant(tctx *t, const char *id, const char *secret)
{
    const char *n = t->name;
    char form[640], tok[2048], buf[256], a[2100];
    snprintf(form, sizeof form, "grant_type=client_credentials&client_id=%s&client_secret=%s", id,
             secret);
    iresp *r = token(t, form, NULL, NULL, NULL);
    is_int(r->status, 200, "%s: client credentials in the form: 200", n);
    imember(r->body, "access_token", tok, sizeof tok);
    is_str(imember(r->body, "token_type", buf, sizeof buf), "bearer", "%s: token_type bearer", n);
    is_str(imember(r->body, "expires_in", buf, sizeof buf), "1800", "%s: expires_in 1800", n);
    is_str(imember(r->body, "scope", buf, sizeof buf), "items:read items:write",
           "%s: no scope asked: the account's scopes granted", n);
    ok(!strstr(r->body, "refresh_token") && !strstr(r->head, "Set-Cookie"),
       "%s: no refresh token, no cookie (RFC 6749 4.4.3)", n);
    ok(strstr(r->head, "Cache-Control: no-store") != NULL, "%s: Cache-Control: no-store", n);
    is_str(claim(tok, "sub", buf, sizeof buf), id, "%s: sub is the account", n);
    is_str(claim(tok, "role", buf, sizeof buf), "reader", "%s: role is the account's", n);
    is_str(claim(tok, "principal_type", buf, sizeof buf), "service_account",
           "%s: principal_type marks a service account", n);
    is_str(claim(tok, "client_id", buf, sizeof buf), id, "%s: client_id claim", n);
    is_str(claim(tok, "type", buf, sizeof buf), "access", "%s: an access token", n);
    snprintf(a, sizeof a, "Bearer %s", tok);
    r = call(t, "GET", "/profile/get/me/", NULL, a, NULL, NULL);
    ok(r->status == 200 && strstr(r->body, "data-pipeline@service-account.internal"),
       "%s: lib/auth accepts the token on a user route (%d)", n, r->status);

    r = token(t, "grant_type=client_credentials&scope=items:read", id, secret, NULL);
    is_int(r->status, 200, "%s: client credentials by HTTP Basic: 200", n);
    is_str(imember(r->body, "scope", buf, sizeof buf), "items:read", "%s: the scope asked", n);
    r = token(t, "grant_type=client_credentials&scope=admin", id, secret, NULL);
    ok(oauth_error(r, 400, "invalid_scope"), "%s: a scope not the account's: 400 invalid_scope", n);
    r = token(t, "grant_type=client_credentials&scope=a%20%20b", id, secret, NULL);
    ok(oauth_error(r, 400, "invalid_scope"), "%s: a malformed scope: 400 invalid_scope", n);
    r = token(t, form, id, secret, NULL);
    ok(oauth_error(r, 400, "invalid_request"),
       "%s: Basic and form credentials together: 400 invalid_request", n);
    r = token(t, "grant_type=client_credentials", NULL, NULL, NULL);
    ok(oauth_error(r, 401, "invalid_client") && strstr(r->head, "WWW-Authenticate: Basic realm="),
       "%s: no client authentication: 401 invalid_client with WWW-Authenticate", n);
    r = call(t, "POST", "/login/access-token", FORM, "Basic !!!notbase64", NULL,
             "grant_type=client_credentials");
    ok(oauth_error(r, 401, "invalid_client"), "%s: a malformed Basic header: 401", n);
    r = token(t, "grant_type=refresh_token&client_id=x", NULL, NULL, NULL);
    ok(oauth_error(r, 400, "unsupported_grant_type"),
       "%s: another grant from an OAuth client: 400 unsupported_grant_type", n);
    r = token(t, "grant_type=implicit&username=a@b.cd&password=x", NULL, NULL, NULL);
    ok(r->status == 422 && strstr(r->body, "string_pattern_mismatch"),
       "%s: another grant without client authentication: fa-auth-m8's 422", n);
    r = token(t, "username=nobody@example.com&password=wrong-password", NULL, NULL, NULL);
    ok(r->status == 400 && strstr(r->body, "Invalid credentials or inactive user"),
       "%s: the password grant answers as before", n);
}

/* Wrong secrets fill the client's window at that address; then even the
 * right one is refused there until it ends; another client, and the same
 * client at another address, are not affected. */
static void test_rate(tctx *t, const char *id, const char *secret, const char *other_id,
                      const char *other_secret)
{
    const char *n = t->name;
    char buf[64];
    bool all401 = true;
    for (int i = 0; i < 3; i++)
        all401 = all401 && oauth_error(token(t, "grant_type=client_credentials", id, "m8sa_wrong",
                                             "10.0.0.1"),
                                       401, "invalid_client");
    ok(all401, "%s: a wrong secret: 401 invalid_client (3 times)", n);
    iresp *r = token(t, "grant_type=client_credentials", id, secret, "10.0.0.1");
    ok(oauth_error(r, 429, "slow_down") && iheader(r, "Retry-After", buf, sizeof buf)[0],
       "%s: then the right secret: 429 slow_down with Retry-After (per client id)", n);
    is_int(token(t, "grant_type=client_credentials", other_id, other_secret, "10.0.0.1")->status,
           200, "%s: another client from the same address still gets a token", n);
    /* the client id is public: wrong secrets sent from elsewhere must not
     * lock the machine out at its own address */
    is_int(token(t, "grant_type=client_credentials", id, secret, "10.0.0.5")->status, 200,
           "%s: failures from one address do not lock the client out at another address", n);
    r = token(t, "grant_type=client_credentials", id, secret, "10.0.0.1");
    ok(oauth_error(r, 429, "slow_down"), "%s: ... while its window at that address stays full", n);
    /* the per-address window: failures of random client ids */
    for (int i = 0; i < 12; i++) {
        char rid[40];
        m8_jti_new(rid);
        token(t, "grant_type=client_credentials", rid, "m8sa_x", "10.0.0.2");
    }
    r = token(t, "grant_type=client_credentials", other_id, other_secret, "10.0.0.2");
    ok(oauth_error(r, 429, "slow_down"), "%s: failures from one address fill its window: 429", n);
    is_int(token(t, "grant_type=client_credentials", other_id, other_secret, "10.0.0.3")->status,
           200, "%s: ... and another address is not affected", n);
}

static void test_password_login_refused(tctx *t, const char *id)
{
    const char *n = t->name;
    char h[M8_PW_HASH_MAX], dp[40];
    /* as if /users/update had given the account a password */
    int rc = m8_pw_hash(t->iss.pw, "Sa-Passw0rd!", 12, h);
    m8_issuer_uuid_param(t->db, id, dp);
    m8_db_param p[] = {M8_DB_TEXT(h), M8_DB_TEXT(dp)};
    ok(rc == 0 && m8_db_exec(t->db, "UPDATE auth_user SET hashed_password = ? WHERE id = ?", p, 2,
                             NULL) == 0,
       "%s: the account's row given a password", n);
    iresp *r = token(t, "username=data-pipeline@service-account.internal&password=Sa-Passw0rd!",
                     NULL, NULL, NULL);
    ok(r->status == 400 &&
           strcmp(r->body, "{\"detail\":\"Invalid credentials or inactive user\"}") == 0,
       "%s: password login as a service account: 400 with the generic error (%s)", n, r->body);
    m8_db_exec(t->db, "UPDATE auth_user SET email = 'renamed@example.com' WHERE id = ?", p + 1, 1,
               NULL);
    r = token(t, "username=renamed@example.com&password=Sa-Passw0rd!", NULL, NULL, NULL);
    ok(r->status == 400 &&
           strcmp(r->body, "{\"detail\":\"Invalid credentials or inactive user\"}") == 0,
       "%s: ... also after its email was changed to an ordinary one", n);
    m8_db_exec(t->db,
               "UPDATE auth_user SET hashed_password = NULL, email = "
               "'data-pipeline@service-account.internal' WHERE id = ?",
               p + 1, 1, NULL);
}

static void test_role_keys_deactivate(tctx *t, const char *id, const char *secret)
{
    const char *n = t->name;
    char p[160], buf[256], tok[2048], form[640], dp[40];
    m8_issuer_uuid_param(t->db, id, dp);
    int64_t gen = iint(t->db, "SELECT auth_generation FROM auth_user WHERE id = ?", dp);
    snprintf(p, sizeof p, "/service-accounts/%s/role/", id);
    iresp *r = su(t, "PATCH", p, "{\"role\":\"writer\"}");
    is_str(imember(r->body, "role", buf, sizeof buf), "writer", "%s: PATCH role: writer", n);
    ok(iint(t->db, "SELECT auth_generation FROM auth_user WHERE id = ?", dp) == gen + 1,
       "%s: ... its auth_generation bumped", n);
    snprintf(form, sizeof form, "grant_type=client_credentials&client_id=%s&client_secret=%s", id,
             secret);
    r = token(t, form, NULL, NULL, "10.0.0.9");
    imember(r->body, "access_token", tok, sizeof tok);
    is_str(claim(tok, "role", buf, sizeof buf), "writer", "%s: the next token has the new role", n);
    is_int(su(t, "PATCH", p, "{\"role\":\"superadmin\"}")->status, 422,
           "%s: PATCH role superadmin: 422", n);

    snprintf(p, sizeof p, "/service-accounts/%s/api-keys/", id);
    r = su(t, "POST", p, "{\"name\":\"prod-key\"}");
    is_int(r->status, 201, "%s: POST its api-keys: 201", n);
    char key[128];
    imember(r->body, "plaintext", key, sizeof key);
    r = su(t, "GET", p, NULL);
    ok(r->status == 200 && strstr(r->body, "prod-key"), "%s: GET its api-keys lists it", n);
    is_int(su(t, "GET", "/service-accounts/" NO_SUCH "/api-keys/", NULL)->status, 404,
           "%s: api-keys of an unknown account: 404", n);

    /* the user row made inactive elsewhere (as /users/update does): the
     * account is not deactivated yet, so the route still deactivates it */
    m8_db_param dpp = M8_DB_TEXT(dp);
    m8_db_exec(t->db, "UPDATE auth_user SET is_active = FALSE WHERE id = ?", &dpp, 1, NULL);
    gen = iint(t->db, "SELECT auth_generation FROM auth_user WHERE id = ?", dp);
    int64_t events =
        iint(t->db, "SELECT COUNT(*) FROM auth_revocation_outbox WHERE user_id = ?", dp);
    snprintf(p, sizeof p, "/service-accounts/%s/deactivate/", id);
    r = su(t, "POST", p, NULL);
    ok(r->status == 200 && strstr(r->body, "\"is_active\":false") &&
           !strstr(r->body, "\"deactivated_at\":null"),
       "%s: deactivate an account whose user row is inactive: 200 with deactivated_at (%d)", n,
       r->status);
    ok(iint(t->db, "SELECT auth_generation FROM auth_user WHERE id = ?", dp) == gen + 1,
       "%s: ... its auth_generation bumped", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_revocation_outbox WHERE user_id = ?", dp),
           events + 1, "%s: ... and a revocation event queued for the stateful consumers", n);
    is_int(
        iint(t->db, "SELECT COUNT(*) FROM auth_api_key WHERE user_id = ? AND revoked = FALSE", dp),
        0, "%s: ... its API keys are revoked", n);
    ok(oauth_error(token(t, form, NULL, NULL, "10.0.0.9"), 400, "invalid_grant"),
       "%s: a deactivated account: 400 invalid_grant", n);
    is_int(su(t, "POST", p, NULL)->status, 409, "%s: deactivating twice: 409", n);
    snprintf(p, sizeof p, "/service-accounts/%s/api-keys/", id);
    is_int(su(t, "POST", p, "{\"name\":\"late-key\"}")->status, 409,
           "%s: no new key for a deactivated account: 409", n);
    /* its user row made active again (as /users/update can): still final */
    m8_db_exec(t->db, "UPDATE auth_user SET is_active = TRUE WHERE id = ?", &dpp, 1, NULL);
    is_int(su(t, "POST", p, "{\"name\":\"late-key\"}")->status, 409,
           "%s: ... nor after its user row was made active again: 409", n);
    ok(oauth_error(token(t, form, NULL, NULL, "10.0.0.9"), 400, "invalid_grant"),
       "%s: ... and the grant still answers invalid_grant", n);
    snprintf(p, sizeof p, "/service-accounts/%s/secret/", id);
    is_int(su(t, "POST", p, NULL)->status, 409, "%s: ... and no new secret: 409", n);
}

static void test_secret_rotation(tctx *t, const char *id, const char *old)
{
    const char *n = t->name;
    char p[160], secret[128], form[640];
    snprintf(p, sizeof p, "/service-accounts/%s/secret/", id);
    iresp *r = su(t, "POST", p, NULL);
    imember(r->body, "client_secret", secret, sizeof secret);
    ok(r->status == 200 && strlen(secret) == M8_SA_SECRET_LEN && strcmp(secret, old) != 0,
       "%s: POST secret/ shows a new secret once", n);
    snprintf(form, sizeof form, "grant_type=client_credentials&client_id=%s&client_secret=%s", id,
             secret);
    is_int(token(t, form, NULL, NULL, "10.0.0.7")->status, 200, "%s: the new secret works", n);
    ok(oauth_error(token(t, "grant_type=client_credentials", id, old, "10.0.0.7"), 401,
                   "invalid_client"),
       "%s: the old one no longer does", n);
}

/* An account whose user row was given superadmin (only /users/update can):
 * the grant never mints a superuser's token for it. */
static void test_superadmin_refused(tctx *t)
{
    const char *n = t->name;
    char id[64], secret[128], dp[40], form[640];
    ok(create(t, "{\"name\":\"root-job\",\"role\":\"admin\"}", id, secret), "%s: an admin account",
       n);
    m8_issuer_uuid_param(t->db, id, dp);
    m8_db_param v = M8_DB_TEXT(dp);
    ok(m8_db_exec(t->db,
                  "UPDATE auth_user SET role = 'SUPERADMIN', is_superuser = TRUE WHERE id = ?", &v,
                  1, NULL) == 0,
       "%s: ... its user row given superadmin", n);
    snprintf(form, sizeof form, "grant_type=client_credentials&client_id=%s&client_secret=%s", id,
             secret);
    iresp *r = token(t, form, NULL, NULL, "10.0.0.11");
    ok(oauth_error(r, 400, "invalid_grant") && !strstr(r->body, "access_token"),
       "%s: the grant refuses a superadmin service account: 400 invalid_grant (%d)", n, r->status);
}

/* The tables version 2 added (service accounts, API-key scopes, SSO). */
static const char *const g_v2_tables[] = {"service_account", "api_key_scopes", "m8_oauth_state",
                                          "m8_auth_code", "m8_oidc_identity"};

/* Turns prefix mig2 back into a version-1 database: version 2's tables
 * dropped, version 1 recorded. */
static void make_v1(m8_db *db, const char *prefix)
{
    char sql[160];
    for (size_t i = 0; i < M8_ARRAY_LEN(g_v2_tables); i++) {
        snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s_%s", prefix, g_v2_tables[i]);
        m8_db_exec(db, sql, NULL, 0, NULL);
    }
    snprintf(sql, sizeof sql, "UPDATE %s_m8_schema_version SET version = 1", prefix);
    m8_db_exec(db, sql, NULL, 0, NULL);
}

/* One worker's start in a child process: 0 when its apply succeeded. */
static int migrate_child(m8_db_kind kind)
{
    m8_db *db = idb_open(kind, idb_port(kind), NULL, 5, 30);
    char err[256] = "";
    int rc = db ? m8_issuer_schema_apply(db, "mig", NULL, err, sizeof err) : -1;
    if (db)
        m8_db_close(db);
    return rc == 0 ? 0 : 1;
}

/* Two workers starting at once on a version-1 database: both succeed. */
static int migrate_race(m8_db_kind kind)
{
    int go[2];
    if (pipe(go) != 0)
        return -1;
    fflush(stdout);
    pid_t kids[2];
    int started = 0, fine = 0;
    for (int i = 0; i < 2; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(go[1]);
            char c;
            if (read(go[0], &c, 1) != 0) /* EOF: both are there */
                _exit(3);
            _exit(migrate_child(kind));
        }
        if (pid > 0)
            kids[started++] = pid;
    }
    close(go[0]);
    close(go[1]);
    for (int i = 0; i < started; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0)
            fine++;
    }
    return fine;
}

/* A version-1 database (the tables version 2 added missing, version 1
 * recorded) migrates in place, its rows kept; also with two workers
 * starting at once. */
static void test_migration(tctx *t)
{
    const char *n = t->name;
    char err[256] = "";
    int found = -1, v = 0;
    m8_db_exec(t->db, "DROP TABLE IF EXISTS mig_service_account", NULL, 0, NULL);
    ok(m8_issuer_schema_apply(t->db, "mig", NULL, err, sizeof err) == 0, "%s: mig schema", n);
    m8_issuer_user u;
    memset(&u, 0, sizeof u);
    u.email = "kept@example.com";
    memcpy(u.provider, "password", 9);
    memcpy(u.role, "user", 5);
    u.is_active = true;
    m8_issuer_user_insert(t->db, "mig", &u);
    make_v1(t->db, "mig");
    int rc = m8_issuer_schema_apply(t->db, "mig", &found, err, sizeof err);
    is_int(rc, 0, "%s: a version-1 database migrates (%s)", n, err);
    is_int(found, 1, "%s: ... version 1 found", n);
    m8_issuer_schema_version(t->db, "mig", &v);
    is_int(v, 2, "%s: ... version 2 recorded", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM mig_service_account", NULL), 0,
           "%s: ... the service_account table exists", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM mig_user", NULL), 1, "%s: ... the user rows are kept",
           n);
    bool all = true;
    for (size_t i = 0; i < M8_ARRAY_LEN(g_v2_tables); i++) {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM mig_%s", g_v2_tables[i]);
        all = all && iint(t->db, sql, NULL) == 0;
    }
    ok(all, "%s: ... every table of version 2 exists", n);
    make_v1(t->db, "mig");
    is_int(migrate_race(t->kind), 2,
           "%s: two workers starting at once on a version-1 database both succeed", n);
    m8_issuer_schema_version(t->db, "mig", &v);
    is_int(v, 2, "%s: ... version 2 recorded", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM mig_m8_schema_version", NULL), 1,
           "%s: ... in one version row", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM mig_service_account", NULL), 0,
           "%s: ... the service_account table exists", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM mig_user", NULL), 1, "%s: ... the user rows are kept",
           n);
}

/* The parser's tests (test_issuer_sa_parser.c): no database. */
void test_sa_parser(void);

/* The payload (second part) of a compact token, decoded, into out. */
static const char *payload_of(const char *tok, char *out, size_t outlen)
{
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    size_t n = 0;
    out[0] = '\0';
    if (d2 && sodium_base642bin((unsigned char *)out, outlen - 1, d1 + 1, (size_t)(d2 - d1 - 1),
                                NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0)
        out[n] = '\0';
    return out;
}

/* m8_mint_access_extra: a user's token is unchanged (the same bytes as
 * m8_mint_access), and the extra claims come after every standard claim,
 * so a service account's payload is a user's payload with them appended;
 * a standard claim's name is refused. */
static void test_mint_extra(tctx *t)
{
    const char *n = t->name;
    m8_mint_user mu = {.id = "6F1C2B3A-1111-4222-8333-944455556666",
                       .email = "machine@service-account.internal",
                       .full_name = "machine",
                       .is_active = true,
                       .role = "writer"};
    const char *jti = "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d";
    long long now = 1700000000;
    m8_buf a, b;
    m8_buf_init(&a, 8192);
    m8_buf_init(&b, 8192);
    int ra = m8_mint_access(&t->iss.access_cfg, &mu, now, jti, NULL, &a);
    int rb = m8_mint_access_extra(&t->iss.access_cfg, &mu, NULL, 0, now, jti, NULL, &b);
    ok(ra == 0 && rb == 0 && a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
       "%s: mint: no extra claim gives the user's token byte for byte", n);
    m8_mint_claim ex[] = {{M8_SA_CLAIM_PRINCIPAL, M8_SA_PRINCIPAL_VALUE},
                          {"client_id", "6f1c2b3a-1111-4222-8333-944455556666"},
                          {"scope", "items:read items:write"}};
    m8_buf c;
    m8_buf_init(&c, 8192);
    int rc = m8_mint_access_extra(&t->iss.access_cfg, &mu, ex, 3, now, jti, NULL, &c);
    char pa[4096], pc[4096], want[4096];
    payload_of(a.data ? a.data : "", pa, sizeof pa);
    payload_of(c.data ? c.data : "", pc, sizeof pc);
    size_t la = strlen(pa);
    snprintf(want, sizeof want,
             "%.*s,\"principal_type\":\"service_account\",\"client_id\":"
             "\"6f1c2b3a-1111-4222-8333-944455556666\",\"scope\":\"items:read items:write\"}",
             (int)(la ? la - 1 : 0), pa);
    ok(rc == 0 && la > 0 && strcmp(pc, want) == 0,
       "%s: mint: the extra claims follow every standard claim, in order (%s)", n, pc);
    m8_mint_claim bad[] = {{"sub", "x"}};
    m8_mint_claim upper[] = {{"Scope", "x"}};
    is_int(m8_mint_access_extra(&t->iss.access_cfg, &mu, bad, 1, now, jti, NULL, &c), M8_EINVAL,
           "%s: mint: an extra claim may not be a standard one", n);
    is_int(m8_mint_access_extra(&t->iss.access_cfg, &mu, upper, 1, now, jti, NULL, &c), M8_EINVAL,
           "%s: mint: an extra claim's name is lower-case", n);
    m8_buf_free(&a);
    m8_buf_free(&b);
    m8_buf_free(&c);
}

static void run(m8_db_kind kind)
{
    const char *n = kind == M8_DB_POSTGRES ? "PostgreSQL" : "MariaDB";
    if (idb_skip(kind)) {
        ok(1, "%s # SKIP %s", n, idb_skip(kind));
        return;
    }
    tctx t;
    if (setup(&t, kind) != 0) {
        ok(0, "%s: setup", n);
        teardown(&t);
        return;
    }
    char id[64], secret[128], id2[64], secret2[128];
    test_create(&t, id, secret);
    ok(create(&t, "{\"name\":\"other-job\"}", id2, secret2), "%s: a second account", n);
    test_grant(&t, id, secret);
    test_password_login_refused(&t, id);
    test_secret_rotation(&t, id2, secret2);
    /* id2's secret is now the rotated one: read it back through a rotation */
    char p[160];
    snprintf(p, sizeof p, "/service-accounts/%s/secret/", id2);
    imember(su(&t, "POST", p, NULL)->body, "client_secret", secret2, sizeof secret2);
    test_rate(&t, id, secret, id2, secret2);
    test_role_keys_deactivate(&t, id2, secret2);
    /* two accounts by now: a page of one still counts them all */
    iresp *lr = su(&t, "GET", "/service-accounts/?skip=0&limit=1", NULL);
    char cnt[32];
    json_object *lj = json_tokener_parse(lr->body), *ld = NULL;
    ok(lr->status == 200 && lj && json_object_object_get_ex(lj, "data", &ld) &&
           json_object_array_length(ld) == 1 &&
           strcmp(imember(lr->body, "count", cnt, sizeof cnt), "2") == 0,
       "%s: GET /service-accounts/?limit=1: one account, count of all (%s)", n, cnt);
    json_object_put(lj);
    test_superadmin_refused(&t);
    test_mint_extra(&t);
    test_migration(&t);
    teardown(&t);
}

int main(void)
{
    m8_arena_init(&g_arena, 0);
    test_sa_parser();
    idb_start(&g_srv);
    run(M8_DB_POSTGRES);
    run(M8_DB_MYSQL);
    idb_stop();
    m8_arena_free(&g_arena);
    return done_testing();
}
