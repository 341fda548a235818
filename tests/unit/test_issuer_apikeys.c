/* test_issuer_apikeys.c - the issuer's API keys (lib/issuer/apikeys.c,
 * apikeys_use.c; doc/issuer.md#api-keys) driven through the in-process app
 * harness against a real PostgreSQL and a real MariaDB started on loopback
 * by the helpers of tests/integration/lib.sh (ports 19420-19459; a server
 * that is not installed is skipped with the reason): the owner routes, the
 * superuser routes, X-API-Key on /profile/api-keys/verify with the per-key
 * quotas, and POST /private/v1/api-keys/introspect for consumers. */
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
#include "issuer/private.h"
#include "issuer/service.h"
#include "issuer/store.h"
#include "issuer_call.h"
#include "issuer_db.h"
#include "tap.h"

#define PASSWORD "Iss-Apikeys-Db-Pa55!"
#define ISS_DB "iss_apikeys"
#define ISS_USER "iss_apikeys"
#define ACCESS_SECRET "Test-Access-Secret-Key-0123456789abcdef!"
#define CONSUMERS                                                                                  \
    "PRIVATE_API_CONSUMERS={\"item-service\":{\"secret\":\"item-secret-0123456789\","              \
    "\"scopes\":[\"api-key-introspection\"]},\"other\":{\"secret\":\"other-secret-0123456789\","   \
    "\"scopes\":[\"api-key-introspection\"]},\"noscope\":{\"secret\":\"noscope-secret-012345\","   \
    "\"scopes\":[\"introspection\"]}}"
#define NO_SUCH "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d"

static const idb_servers g_srv = {
    "test_issuer_apikeys", 19420, 19459, ISS_DB, ISS_USER, PASSWORD, false};

/* ------------------------------------------------------------ harness */

typedef struct tctx {
    m8_db_kind kind;
    const char *name;
    m8_app *app;
    m8_db *db;
    m8_issuer iss;
    m8_issuer_user su, alice, bob, wr;
    char su_tok[2048], alice_tok[2048], bob_tok[2048], wr_tok[2048];
} tctx;

/* One request: tok a bearer token, key an X-API-Key, client/secret the
 * consumer pair, body a JSON body. */
static iresp *call(tctx *t, const char *method, const char *path, const char *tok, const char *key,
                   const char *client, const char *secret, const char *body)
{
    icall c = {.method = method,
               .base = "/api",
               .path = path,
               .peer = "127.0.0.1",
               .body = body,
               .ctype = body ? "application/json" : NULL,
               .bearer = tok,
               .api_key = key,
               .client = client,
               .secret = secret};
    return icall_do(t->app, &c);
}

static iresp *owner(tctx *t, const char *method, const char *path, const char *tok,
                    const char *body)
{
    return call(t, method, path, tok, NULL, NULL, NULL, body);
}

static iresp *introspect(tctx *t, const char *client, const char *secret, const char *body)
{
    return call(t, "POST", "/private/v1/api-keys/introspect", NULL, NULL, client, secret, body);
}

static iresp *item_introspect(tctx *t, const char *key)
{
    char body[256];
    snprintf(body, sizeof body, "{\"api_key\":\"%s\",\"schema_version\":\"1\"}", key);
    return introspect(t, "item-service", "item-secret-0123456789", body);
}

/* Whether no cell of any auth_api_key or auth_api_key_audiences row holds
 * text. */
static bool stored_nowhere(tctx *t, const char *text)
{
    const char *q[] = {"SELECT * FROM auth_api_key", "SELECT * FROM auth_api_key_audiences"};
    bool clean = true;
    for (size_t k = 0; k < 2; k++) {
        m8_db_result *r = NULL;
        if (m8_db_exec(t->db, q[k], NULL, 0, &r) != 0)
            return false;
        for (size_t i = 0; i < m8_db_nrows(r); i++)
            for (size_t c = 0; c < m8_db_ncols(r); c++) {
                const char *v = m8_db_get_text(r, i, c, NULL);
                clean = clean && !(v && strstr(v, text));
            }
        m8_db_result_free(r);
    }
    return clean;
}

static void exec1(tctx *t, const char *sql, const char *param)
{
    m8_db_param p = M8_DB_TEXT(param);
    if (m8_db_exec(t->db, sql, param ? &p : NULL, param ? 1 : 0, NULL) != 0)
        diag("%s: %s", sql, m8_db_last_error(t->db)->message);
}

static const char *dbid(tctx *t, const char *id, char out[37])
{
    m8_issuer_uuid_param(t->db, id, out);
    return out;
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
    R("GET", "/profile/api-keys/verify", M8_PUBLIC, m8_issuer_h_apikeys_verify, 0),
    R("POST", "/profile/api-keys/", M8_USER, m8_issuer_h_apikeys_create, M8_ROUTE_JSON_BODY),
    R("GET", "/profile/api-keys/", M8_USER, m8_issuer_h_apikeys_list, 0),
    R("GET", "/profile/api-keys/{key_id}", M8_USER, m8_issuer_h_apikeys_get, 0),
    R("DELETE", "/profile/api-keys/{key_id}", M8_USER, m8_issuer_h_apikeys_delete, 0),
    R("GET", "/api-keys/by-user/{user_id}/", M8_SUPERUSER, m8_issuer_h_apikeys_by_user, 0),
    R("POST", "/api-keys/revoke/{key_id}/", M8_SUPERUSER, m8_issuer_h_apikeys_su_revoke, 0),
    R("POST", "/private/v1/api-keys/introspect", M8_PUBLIC, m8_issuer_h_apikeys_introspect,
      M8_ROUTE_HIDDEN),
};
#undef R

static char **app_env(m8_db_kind kind)
{
    static const char *base[] = {IDB_ENV_SITE("iss-apikeys"),
                                 "ACCESS_SECRET_KEY=" ACCESS_SECRET,
                                 "REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!",
                                 "TOKEN_MODE=stateful",
                                 "TOKEN_STRICT_VALIDATION=false",
                                 IDB_ENV_ISSUER_SECRETS,
                                 CONSUMERS,
                                 "FIRST_SUPERUSER=admin@example.com",
                                 "FIRST_SUPERUSER_PASSWORD=Adm1n-Passw0rd!",
                                 "API_KEY_MAX_PER_USER=3",
                                 "API_KEY_FORMAT=legacy", /* fa-auth-m8's ak_ keys */
                                 "API_KEY_INTROSPECTION_ANTIABUSE_PER_MINUTE=40",
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
    idb_app a = {.name = "fa-auth-m8",
                 .version = "2.2.3",
                 .routes = g_table,
                 .nroutes = M8_ARRAY_LEN(g_table),
                 .iss = &t->iss,
                 .revoked = idb_revoked,
                 .revoked_data = &t->iss,
                 .connect_s = 5,
                 .io_s = 30,
                 .validator_name = "issuer private API",
                 .validator = m8_issuer_private_load,
                 .env = app_env(kind)};
    if (!(t->app = idb_app_boot(&a)))
        return -1;
    t->iss.app = t->app;
    t->iss.s = m8_app_settings(t->app);
    add_user(t, &t->su, "root@example.com", "superadmin", t->su_tok);
    add_user(t, &t->alice, "alice@example.com", "reader", t->alice_tok);
    add_user(t, &t->bob, "bob@example.com", "user", t->bob_tok);
    add_user(t, &t->wr, "writer@example.com", "writer", t->wr_tok);
    return 0;
}

static void teardown(tctx *t)
{
    if (t->app)
        m8_app_free(t->app);
    m8_issuer_private_free(NULL, NULL);
    idb_issuer_free(&t->iss);
    if (t->db)
        m8_db_close(t->db);
}

/* ------------------------------------------------------------ tests */

static void test_create(tctx *t, char *key, char *kid)
{
    const char *n = t->name;
    char buf[512], b2[512];
    iresp *r = owner(t, "POST", "/profile/api-keys/", t->alice_tok,
                     "{\"name\":\"alice-key\",\"ttl_hours\":48,\"access_mode\":\"read_write\","
                     "\"audiences\":[\"item-service\",\"item-service\"]}");
    is_int(r->status, 201, "%s: POST /profile/api-keys/ answers 201", n);
    is_str(imembers(r->body, buf, sizeof buf),
           "created_at,updated_at,name,expires_at,revoked,id,last_used_at,access_mode,plaintext,"
           "audiences",
           "%s: ApiKeyCreated members in fa-auth-m8's order", n);
    imember(r->body, "plaintext", key, 64);
    imember(r->body, "id", kid, 40);
    ok(strlen(key) == 35 && strncmp(key, "ak_", 3) == 0 &&
           strspn(key + 3, "0123456789abcdef") == 32,
       "%s: the plaintext is ak_ and 32 lower-case hex digits (%s)", n, key);
    is_str(imember(r->body, "audiences", buf, sizeof buf), "[ \"item-service\" ]",
           "%s: audiences bound once (a repeated id is kept once)", n);
    is_str(imember(r->body, "access_mode", buf, sizeof buf), "read_write", "%s: access_mode", n);
    is_str(imember(r->body, "last_used_at", buf, sizeof buf), "null", "%s: last_used_at null", n);
    unsigned char d[32];
    char hex[65];
    crypto_hash_sha256(d, (const unsigned char *)key, strlen(key));
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_api_key WHERE key_hash = ?", hex), 1,
           "%s: the stored key_hash is the SHA-256 hex of the plaintext", n);
    ok(stored_nowhere(t, key + 3),
       "%s: the plaintext (nor its 32 hex digits) is stored in no "
       "column of any key row",
       n);
    r = owner(t, "GET", "/profile/api-keys/", t->alice_tok, NULL);
    ok(r->status == 200 && !strstr(r->body, key) && !strstr(r->body, "key_hash") &&
           !strstr(r->body, "plaintext"),
       "%s: the list never shows the plaintext or the hash again", n);
    is_str(imembers(r->body, buf, sizeof buf),
           "created_at,updated_at,name,expires_at,revoked,id,last_used_at,access_mode,audiences",
           "%s: ApiKeyPublic members", n);
    snprintf(b2, sizeof b2, "/profile/api-keys/%s", kid);
    r = owner(t, "GET", b2, t->alice_tok, NULL);
    is_str(imember(r->body, "name", buf, sizeof buf), "alice-key",
           "%s: GET one: its owner reads it", n);
    idetail(owner(t, "GET", b2, t->bob_tok, NULL), 404, "API key not found",
            "GET one of another user's key: 404 API key not found");
    idetail(owner(t, "GET", "/profile/api-keys/" NO_SUCH, t->alice_tok, NULL), 404,
            "API key not found", "GET one of an unknown id: 404");
    is_int(owner(t, "GET", "/profile/api-keys/not-a-uuid", t->alice_tok, NULL)->status, 422,
           "%s: GET one with a key_id that is no UUID: 422", n);
    r = owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{}");
    is_int(r->status, 201, "%s: an empty body creates a key with the defaults", n);
    imember(r->body, "name", buf, sizeof buf);
    ok(strlen(buf) == 12 && strncmp(buf, "key-", 4) == 0 &&
           strspn(buf + 4, "0123456789abcdef") == 8,
       "%s: default name key-<8 hex> (%s)", n, buf);
    is_str(imember(r->body, "access_mode", buf, sizeof buf), "read_only",
           "%s: default access_mode read_only", n);
    is_str(imember(r->body, "audiences", buf, sizeof buf), "[ ]", "%s: default audiences none", n);
}

static void test_create_refused(tctx *t)
{
    const char *n = t->name;
    char buf[512];
    iresp *r = owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{\"ttl_hours\":0}");
    ok(r->status == 422 && strstr(r->body, "\"greater_than\"") && strstr(r->body, "ttl_hours"),
       "%s: ttl_hours 0: 422 greater_than", n);
    r = owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{\"ttl_hours\":\"x\"}");
    ok(r->status == 422 && strstr(r->body, "\"int_parsing\""), "%s: ttl_hours \"x\": 422", n);
    r = owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{\"name\":\"ab\"}");
    ok(r->status == 422 && strstr(r->body, "string_too_short"), "%s: a 2-character name: 422", n);
    r = owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{\"access_mode\":\"admin\"}");
    ok(r->status == 422 && strstr(r->body, "\"enum\""), "%s: an unknown access_mode: 422", n);
    idetail(owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{\"audiences\":[\"*\"]}"), 409,
            "Wildcard audiences are not allowed", "audience * : 409 Wildcard audiences ...");
    idetail(owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{\"audiences\":[\"\"]}"), 409,
            "Audience ids must be non-empty strings", "an empty audience: 409");
    idetail(owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{\"audiences\":[\"noscope\"]}"),
            409, "Unknown audience: noscope is not a consumer allowed to introspect API keys",
            "a consumer without api-key-introspection as audience: 409 Unknown audience");
    idetail(owner(t, "POST", "/profile/api-keys/", t->bob_tok,
                  "{\"audiences\":[\"other\",\"item-service\",\"a\",\"b\"]}"),
            409, "At most 3 audiences may be bound to an API key",
            "4 audiences over API_KEY_MAX_AUDIENCES 3: 409");
    /* bob holds 1 key (test_create); API_KEY_MAX_PER_USER=3 */
    owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{}");
    r = owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{}");
    char id[40];
    imember(r->body, "id", id, sizeof id);
    idetail(owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{}"), 409,
            "Maximum of 3 active API keys reached. Revoke an existing key before creating a new "
            "one.",
            "a 4th live key over API_KEY_MAX_PER_USER=3: 409 with fa-auth-m8's text");
    snprintf(buf, sizeof buf, "/profile/api-keys/%s", id);
    owner(t, "DELETE", buf, t->bob_tok, NULL);
    is_int(owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{}")->status, 201,
           "%s: after a revocation the cap counts only live keys: 201", n);
}

static void test_verify(tctx *t, const char *key, const char *kid)
{
    const char *n = t->name;
    char buf[512], h[64];
    ianswer(call(t, "GET", "/profile/api-keys/verify", NULL, NULL, NULL, NULL, NULL), 422,
            "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"header\",\"x-api-key\"],\"msg\":"
            "\"Field required\",\"input\":null}]}",
            "verify without X-API-Key: 422 FastAPI list");
    idetail(call(t, "GET", "/profile/api-keys/verify", NULL, "ak_0000", NULL, NULL, NULL), 401,
            "Invalid or expired API key", "verify with an unknown key: 401");
    iresp *r = call(t, "GET", "/profile/api-keys/verify", NULL, key, NULL, NULL, NULL);
    ok(r->status == 200 && strcmp(imember(r->body, "id", buf, sizeof buf), kid) == 0,
       "%s: verify with the key: 200, its id", n);
    is_str(iheader(r, "X-RateLimit-Limit", h, sizeof h), "60",
           "%s: X-RateLimit-Limit of the minute window (default 60)", n);
    is_str(iheader(r, "X-RateLimit-Remaining", h, sizeof h), "59", "%s: X-RateLimit-Remaining 59",
           n);
    long long reset = strtoll(iheader(r, "X-RateLimit-Reset", h, sizeof h), NULL, 10);
    ok(reset % 60 == 0 && reset > (long long)time(NULL) - 1,
       "%s: X-RateLimit-Reset is the next UTC minute", n);
    ok(!strstr(owner(t, "GET", "/profile/api-keys/", t->alice_tok, NULL)->body,
               "\"last_used_at\":null"),
       "%s: a use sets last_used_at", n);
    /* a per-key row (2 a minute) overrides a per-user row (5) */
    char k[40], u[40], sql[256];
    dbid(t, kid, k);
    dbid(t, t->alice.id, u);
    snprintf(sql, sizeof sql,
             "INSERT INTO auth_rate_limit (user_id, period, %s) VALUES (?, 'MINUTE', 5)",
             t->kind == M8_DB_POSTGRES ? "\"limit\"" : "`limit`");
    exec1(t, sql, u);
    snprintf(sql, sizeof sql,
             "INSERT INTO auth_rate_limit (api_key_id, period, %s) VALUES (?, 'MINUTE', 2)",
             t->kind == M8_DB_POSTGRES ? "\"limit\"" : "`limit`");
    exec1(t, sql, k);
    r = call(t, "GET", "/profile/api-keys/verify", NULL, key, NULL, NULL, NULL);
    is_int(r->status, 200, "%s: the 2nd use this minute passes a per-key limit of 2", n);
    is_str(iheader(r, "X-RateLimit-Limit", h, sizeof h), "2",
           "%s: the per-key row wins over the per-user row", n);
    r = call(t, "GET", "/profile/api-keys/verify", NULL, key, NULL, NULL, NULL);
    idetail(r, 429, "Rate limit exceeded for period: minute", "the 3rd use: 429 for period minute");
    long long ra = strtoll(iheader(r, "Retry-After", h, sizeof h), NULL, 10);
    ok(ra >= 1 && ra <= 61 && !strstr(r->head, "X-RateLimit"),
       "%s: 429 with Retry-After 1..61 (%lld), no X-RateLimit headers", n, ra);
    exec1(t, "DELETE FROM auth_rate_limit WHERE api_key_id = ?", k);
    snprintf(sql, sizeof sql, "UPDATE auth_rate_limit SET %s = 100 WHERE user_id = ?",
             t->kind == M8_DB_POSTGRES ? "\"limit\"" : "`limit`");
    exec1(t, sql, u);
}

static void test_introspect(tctx *t, const char *key, const char *kid)
{
    const char *n = t->name;
    char want[1024], buf[256], u[40];
    /* alice (reader), her read_write key bound to item-service */
    iresp *r = item_introspect(t, key);
    snprintf(want, sizeof want,
             "{\"active\":true,\"schema_version\":\"1\",\"audience_id\":\"item-service\","
             "\"principal\":{\"user_id\":\"%s\",\"role\":\"reader\",\"is_superuser\":false,"
             "\"access_mode\":\"read_write\",\"authentication_method\":\"api_key\","
             "\"auth_generation\":1},\"key_expires_at\":",
             t->alice.id);
    ok(r->status == 200 && strncmp(r->body, want, strlen(want)) == 0 &&
           strstr(r->head, "X-RateLimit-Limit: "),
       "%s: introspect by the bound consumer: the active body, with X-RateLimit-*", n);
    if (r->status != 200 || strncmp(r->body, want, strlen(want)) != 0)
        diag("got %d %s", r->status, r->body);
    const char *inactive = "{\"active\":false,\"schema_version\":\"1\"}";
    ianswer(introspect(t, "other", "other-secret-0123456789",
                       "{\"api_key\":\"x\",\"schema_version\":\"1\"}"),
            200, inactive, "an unknown key: inactive");
    snprintf(buf, sizeof buf, "{\"api_key\":\"%s\"}", key);
    ianswer(introspect(t, "other", "other-secret-0123456789", buf), 200, inactive,
            "a consumer the key is not bound to: inactive");
    idetail(introspect(t, "noscope", "noscope-secret-012345", buf), 403, "Forbidden",
            "a consumer without api-key-introspection: 403 Forbidden");
    idetail(introspect(t, "item-service", "wrong-secret-0123456789", buf), 401, "Unauthorized",
            "a wrong consumer secret: 401 Unauthorized");
    idetail(introspect(t, "item-service", "wrong-secret-0123456789", "{"), 401, "Unauthorized",
            "decision I6: a bad body from an unauthenticated caller is 401, not 422");
    is_int(introspect(t, "item-service", "item-secret-0123456789", "{\"schema_version\":\"1\"}")
               ->status,
           422, "%s: no api_key: 422", n);
    snprintf(buf, sizeof buf, "{\"api_key\":\"%s\",\"schema_version\":\"2\"}", key);
    idetail(introspect(t, "item-service", "item-secret-0123456789", buf), 503,
            "Introspection temporarily unavailable", "schema_version 2: 503");
    /* the owner: inactive, then back */
    dbid(t, t->alice.id, u);
    exec1(t, "UPDATE auth_user SET is_active = FALSE WHERE id = ?", u);
    ianswer(item_introspect(t, key), 200, inactive, "an inactive owner: inactive");
    idetail(call(t, "GET", "/profile/api-keys/verify", NULL, key, NULL, NULL, NULL), 401,
            "Invalid or expired API key", "verify with an inactive owner's key: 401");
    exec1(t, "UPDATE auth_user SET is_active = TRUE WHERE id = ?", u);
    /* expired */
    char k[40];
    dbid(t, kid, k);
    exec1(t, "UPDATE auth_api_key SET expires_at = '2020-01-01 00:00:00' WHERE id = ?", k);
    ianswer(item_introspect(t, key), 200, inactive, "an expired key: inactive");
    idetail(call(t, "GET", "/profile/api-keys/verify", NULL, key, NULL, NULL, NULL), 401,
            "Invalid or expired API key", "verify with an expired key: 401");
    exec1(t, "UPDATE auth_api_key SET expires_at = NULL WHERE id = ?", k);
    r = item_introspect(t, key);
    ok(r->status == 200 && strstr(r->body, "\"key_expires_at\":null"),
       "%s: a key without expiry: key_expires_at null", n);
    /* the per-consumer anti-abuse allowance (40 a minute) */
    int status = 0;
    for (int i = 0; i < 45 && status != 429; i++)
        status = introspect(t, "other", "other-secret-0123456789", "{\"api_key\":\"x\"}")->status;
    r = introspect(t, "other", "other-secret-0123456789", "{\"api_key\":\"x\"}");
    idetail(r, 429, "Introspection rate limit exceeded",
            "over API_KEY_INTROSPECTION_ANTIABUSE_PER_MINUTE: 429");
    ok(strstr(r->head, "Retry-After: 60") != NULL, "%s: ... with Retry-After: 60", n);
    is_int(item_introspect(t, key)->status, 200, "%s: another consumer's allowance is its own", n);
}

static void test_revoke(tctx *t, const char *key, const char *kid)
{
    const char *n = t->name;
    char path[256], buf[1024];
    snprintf(path, sizeof path, "/profile/api-keys/%s", kid);
    idetail(owner(t, "DELETE", path, t->bob_tok, NULL), 404, "API key not found",
            "DELETE of another user's key: 404");
    ianswer(owner(t, "DELETE", path, t->alice_tok, NULL), 200,
            "{\"message\":\"API key revoked successfully\"}", "DELETE by the owner: 200 message");
    idetail(owner(t, "DELETE", path, t->alice_tok, NULL), 409, "API key is already revoked",
            "DELETE again: 409 API key is already revoked");
    idetail(call(t, "GET", "/profile/api-keys/verify", NULL, key, NULL, NULL, NULL), 401,
            "Invalid or expired API key", "verify with a revoked key: 401");
    ianswer(item_introspect(t, key), 200, "{\"active\":false,\"schema_version\":\"1\"}",
            "introspect a revoked key: inactive");
    is_str(imember(owner(t, "GET", path, t->alice_tok, NULL)->body, "revoked", buf, sizeof buf),
           "true", "%s: the row is kept, revoked true", n);
    /* the superuser */
    iresp *r = owner(t, "POST", "/profile/api-keys/", t->alice_tok, "{\"name\":\"second\"}");
    char k2[40];
    imember(r->body, "id", k2, sizeof k2);
    char kdb[40]; /* MariaDB's DATETIME keeps whole seconds: make the order unambiguous */
    exec1(t,
          t->kind == M8_DB_POSTGRES
              ? "UPDATE auth_api_key SET created_at = created_at - INTERVAL '1 hour' WHERE id = ?"
              : "UPDATE auth_api_key SET created_at = created_at - INTERVAL 1 HOUR WHERE id = ?",
          dbid(t, kid, kdb));
    snprintf(path, sizeof path, "/api-keys/by-user/%s/", t->alice.id);
    is_int(owner(t, "GET", path, t->alice_tok, NULL)->status, 403,
           "%s: by-user for a non-superuser: 403", n);
    r = owner(t, "GET", path, t->su_tok, NULL);
    is_str(imember(r->body, "count", buf, sizeof buf), "2", "%s: by-user: count 2", n);
    json_object *o = json_tokener_parse(r->body), *data = NULL;
    json_object_object_get_ex(o, "data", &data);
    snprintf(
        buf, sizeof buf, "%s",
        json_object_to_json_string_ext(json_object_array_get_idx(data, 0), JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    is_str(imembers(buf, path, sizeof path),
           "id,label,status,created_at,last_used_at,owner_id,access_mode,audiences",
           "%s: ApiKeyAdminPublic members", n);
    ok(strstr(buf, k2) && strstr(buf, "\"status\":\"active\"") &&
           strstr(buf, "\"label\":\"second\""),
       "%s: newest first: the second key, active", n);
    snprintf(path, sizeof path, "/api-keys/by-user/%s/", NO_SUCH);
    ianswer(owner(t, "GET", path, t->su_tok, NULL), 200, "{\"data\":[],\"count\":0}",
            "by-user of an unknown user: an empty list");
    snprintf(path, sizeof path, "/api-keys/revoke/%s/", k2);
    int64_t before =
        iint(t->db,
             "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE table_name = 'auth_api_key'",
             NULL);
    ianswer(owner(t, "POST", path, t->su_tok, NULL), 200,
            "{\"message\":\"API key revoked successfully\"}", "the superuser revokes: 200");
    is_int(iint(t->db,
                "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE table_name = "
                "'auth_api_key' AND action = 'delete'",
                NULL),
           before + 1, "%s: ... with one delete audit row", n);
    idetail(owner(t, "POST", path, t->su_tok, NULL), 409, "API key is already revoked",
            "the superuser revokes again: 409");
    idetail(owner(t, "POST", "/api-keys/revoke/" NO_SUCH "/", t->su_tok, NULL), 404,
            "API key not found", "the superuser revokes an unknown key: 404");
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
        char key[64] = "", kid[40] = "";
        test_create(&t, key, kid);
        test_create_refused(&t);
        test_verify(&t, key, kid);
        test_introspect(&t, key, kid);
        test_revoke(&t, key, kid);
        teardown(&t);
    }
    idb_stop();
    m8_arena_free(&g_arena);
    return done_testing();
}
