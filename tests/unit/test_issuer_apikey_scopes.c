/* test_issuer_apikey_scopes.c - scopes, the m8 key format, a superuser's key
 * for another user, the four quota windows and the API-key metrics of the
 * issuer (lib/issuer/apikeys.c, apikeys_use.c, apikey_scopes.c;
 * doc/issuer.md#api-key-scopes-and-format) driven through the in-process
 * app harness against a real PostgreSQL and a real MariaDB started on
 * loopback by the helpers of tests/integration/lib.sh (ports 19780-19799; a
 * server that is not installed is skipped with the reason). */
#include "config.h"

#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "auth/apikey_format.h"
#include "core/log.h"
#include "db/db.h"
#include "issuer/apikey_scopes.h"
#include "issuer/private.h"
#include "issuer/service.h"
#include "issuer/store.h"
#include "issuer_call.h"
#include "issuer_db.h"
#include "tap.h"

#define PASSWORD "Iss-Akscopes-Db-Pa55!"
#define ISS_DB "iss_akscopes"
#define ISS_USER "iss_akscopes"
#define ACCESS_SECRET "Test-Access-Secret-Key-0123456789abcdef!"
#define CONSUMERS                                                                                  \
    "PRIVATE_API_CONSUMERS={\"item-service\":{\"secret\":\"item-secret-0123456789\","              \
    "\"scopes\":[\"api-key-introspection\"]},\"other\":{\"secret\":\"other-secret-0123456789\","   \
    "\"scopes\":[\"api-key-introspection\"]},\"noscope\":{\"secret\":\"noscope-secret-012345\","   \
    "\"scopes\":[\"introspection\"]},\"Item-Service\":{\"secret\":\"upper-secret-0123456789\","    \
    "\"scopes\":[\"api-key-introspection\"]}}"
#define NO_SUCH "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d"

static const idb_servers g_srv = {
    "test_issuer_apikey_scopes", 19780, 19799, ISS_DB, ISS_USER, PASSWORD, false};

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

/* An X-Forwarded-For header every request sends while set (NULL: none). */
static const char *g_xff;

/* One request: tok a bearer token, key an X-API-Key, client/secret the
 * consumer pair, body a JSON body. */
static iresp *call(tctx *t, const char *method, const char *path, const char *tok, const char *key,
                   const char *client, const char *secret, const char *body)
{
    icall c = {.method = method,
               .base = "/api",
               .path = path,
               .peer = "127.0.0.1",
               .xff = g_xff,
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

/* Whether no cell of any auth_api_key, auth_api_key_audiences or
 * auth_api_key_scopes row holds text. */
static bool stored_nowhere(tctx *t, const char *text)
{
    const char *q[] = {"SELECT * FROM auth_api_key", "SELECT * FROM auth_api_key_audiences",
                       "SELECT * FROM auth_api_key_scopes"};
    bool clean = true;
    for (size_t k = 0; k < 3; k++) {
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
    R("POST", "/api-keys/by-user/{user_id}/", M8_SUPERUSER, m8_issuer_h_apikeys_su_create,
      M8_ROUTE_JSON_BODY),
    R("POST", "/private/v1/api-keys/introspect", M8_PUBLIC, m8_issuer_h_apikeys_introspect,
      M8_ROUTE_HIDDEN),
};
#undef R

static char **app_env(m8_db_kind kind)
{
    static const char *base[] = {IDB_ENV_SITE("iss-akscopes"),
                                 "ACCESS_SECRET_KEY=" ACCESS_SECRET,
                                 "REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!",
                                 "TOKEN_MODE=stateful",
                                 "TOKEN_STRICT_VALIDATION=false",
                                 IDB_ENV_ISSUER_SECRETS,
                                 CONSUMERS,
                                 "FIRST_SUPERUSER=admin@example.com",
                                 "FIRST_SUPERUSER_PASSWORD=Adm1n-Passw0rd!",
                                 "API_KEY_MAX_PER_USER=6",
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

static uint64_t metric(m8_ak_metric m)
{
    return m8_apikey_metric_get(m);
}

/* Creation with scopes in the m8 format; *key and *kid of alice's scoped key
 * bound to item-service. */
static void test_scoped_create(tctx *t, char *key, char *kid)
{
    const char *n = t->name;
    char buf[512];
    uint64_t created = metric(M8_AKM_CREATED);
    iresp *r = owner(t, "POST", "/profile/api-keys/", t->alice_tok,
                     "{\"name\":\"scoped\",\"audiences\":[\"item-service\"],\"scopes\":"
                     "[\"items:read\",\"audit:read\",\"items:read\"]}");
    is_int(r->status, 201, "%s: POST /profile/api-keys/ with scopes: 201", n);
    is_str(imembers(r->body, buf, sizeof buf),
           "created_at,updated_at,name,expires_at,revoked,id,last_used_at,access_mode,plaintext,"
           "audiences,scopes",
           "%s: ApiKeyCreated: scopes after audiences", n);
    is_str(imember(r->body, "scopes", buf, sizeof buf), "[ \"audit:read\", \"items:read\" ]",
           "%s: the scopes, each once, sorted", n);
    imember(r->body, "plaintext", key, 64);
    imember(r->body, "id", kid, 40);
    ok(strlen(key) == 45 && strncmp(key, "m8ak_", 5) == 0 &&
           strspn(key + 5, "0123456789abcdef") == 40 &&
           m8_apikey_shape_of(key, strlen(key)) == M8_AKS_M8,
       "%s: by default a new key is m8ak_ + 32 hex + an 8-digit checksum that matches", n);
    unsigned char d[32];
    char hex[65];
    crypto_hash_sha256(d, (const unsigned char *)key, strlen(key));
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_api_key WHERE key_hash = ?", hex), 1,
           "%s: the stored key_hash is the SHA-256 hex of the whole plaintext", n);
    ok(stored_nowhere(t, key + 5), "%s: the plaintext's digits are stored nowhere", n);
    char k[40];
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_api_key_scopes WHERE api_key_id = ?",
                dbid(t, kid, k)),
           2, "%s: two auth_api_key_scopes rows", n);
    is_int((long long)(metric(M8_AKM_CREATED) - created), 1,
           "%s: auth_api_key_lifecycle_total{action=created} + 1", n);
    idetail(owner(t, "POST", "/profile/api-keys/", t->alice_tok,
                  "{\"name\":\"two\",\"audiences\":[\"item-service\",\"Item-Service\"]}"),
            409, "Audiences that differ only in case cannot be bound to one API key",
            "two audiences that differ only in case: 409 (MariaDB would take them for one row)");

    r = owner(t, "GET", "/profile/api-keys/", t->alice_tok, NULL);
    ok(r->status == 200 && strstr(r->body, "\"scopes\":[\"audit:read\",\"items:read\"]") &&
           !strstr(r->body, key),
       "%s: the list shows the scopes, never the plaintext", n);
    char path[128];
    snprintf(path, sizeof path, "/profile/api-keys/%s", kid);
    is_str(imember(owner(t, "GET", path, t->alice_tok, NULL)->body, "scopes", buf, sizeof buf),
           "[ \"audit:read\", \"items:read\" ]", "%s: GET one shows the scopes", n);
    r = owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{\"name\":\"plain\"}");
    is_str(imembers(r->body, buf, sizeof buf),
           "created_at,updated_at,name,expires_at,revoked,id,last_used_at,access_mode,plaintext,"
           "audiences",
           "%s: an unscoped key answers exactly as fa-auth-m8 (no scopes member)", n);
    r = owner(t, "POST", "/profile/api-keys/", t->bob_tok, "{\"scopes\":[]}");
    ok(r->status == 201 && !strstr(r->body, "scopes"), "%s: scopes [] is an unscoped key", n);
}

static void test_scopes_refused(tctx *t)
{
    const char *n = t->name;
    static const struct {
        const char *body, *type, *name;
    } cases[] = {
        {"{\"scopes\":\"items:read\"}", "list_type", "scopes as a string"},
        {"{\"scopes\":[\"Items:Read\"]}", "string_pattern_mismatch", "an upper-case scope"},
        {"{\"scopes\":[\"items:\"]}", "string_pattern_mismatch", "an empty part"},
        {"{\"scopes\":[\"a:b:c:d\"]}", "string_pattern_mismatch", "four parts"},
        {"{\"scopes\":[\"items:*\"]}", "string_pattern_mismatch", "a wildcard"},
        {"{\"scopes\":[7]}", "string_type", "a number"},
        {"{\"scopes\":[\"s0\",\"s1\",\"s2\",\"s3\",\"s4\",\"s5\",\"s6\",\"s7\",\"s8\",\"s9\","
         "\"s10\",\"s11\",\"s12\",\"s13\",\"s14\",\"s15\",\"s16\"]}",
         "too_long", "17 scopes (over 16)"},
    };
    int64_t before = iint(t->db, "SELECT COUNT(*) FROM auth_api_key", NULL);
    for (size_t i = 0; i < M8_ARRAY_LEN(cases); i++) {
        iresp *r = owner(t, "POST", "/profile/api-keys/", t->bob_tok, cases[i].body);
        char want[64];
        snprintf(want, sizeof want, "\"type\":\"%s\"", cases[i].type);
        ok(r->status == 422 && strstr(r->body, want) && strstr(r->body, "\"scopes\""),
           "%s: %s: 422 %s", n, cases[i].name, cases[i].type);
        if (r->status != 422)
            diag("got %d %s", r->status, r->body);
    }
    char s64[80], s65[80], body[200];
    memset(s64, 'a', 64);
    s64[64] = '\0';
    memset(s65, 'a', 65);
    s65[65] = '\0';
    snprintf(body, sizeof body, "{\"scopes\":[\"%s\"]}", s65);
    is_int(owner(t, "POST", "/profile/api-keys/", t->bob_tok, body)->status, 422,
           "%s: a 65-byte scope: 422", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_api_key", NULL), before,
           "%s: no key row was written by a refused body", n);
    snprintf(body, sizeof body, "{\"scopes\":[\"%s\"]}", s64);
    is_int(owner(t, "POST", "/profile/api-keys/", t->bob_tok, body)->status, 201,
           "%s: a 64-byte scope: 201", n);
}

/* The answers list a key's scopes in byte order on both engines (the
 * database's ORDER BY follows the column's collation: MariaDB's
 * utf8mb4_general_ci puts "aab" before "a_b"). */
static void test_scope_order(tctx *t)
{
    const char *n = t->name;
    char buf[512], key[64];
    iresp *r = owner(t, "POST", "/profile/api-keys/", t->bob_tok,
                     "{\"name\":\"order\",\"audiences\":[\"item-service\"],\"scopes\":"
                     "[\"aab\",\"a_b\",\"a-b\",\"a.b:c\"]}");
    is_str(imember(r->body, "scopes", buf, sizeof buf), "[ \"a-b\", \"a.b:c\", \"a_b\", \"aab\" ]",
           "%s: scopes in byte order on creation ('_' before 'a', as strcmp)", n);
    imember(r->body, "plaintext", key, sizeof key);
    r = item_introspect(t, key);
    ok(r->status == 200 && strstr(r->body, "\"scopes\":[\"a-b\",\"a.b:c\",\"a_b\",\"aab\"]}"),
       "%s: principal.scopes of the introspection answer in the same byte order", n);
    if (r->status != 200 || !strstr(r->body, "\"a_b\",\"aab\""))
        diag("got %d %s", r->status, r->body);
}

static void test_use(tctx *t, const char *key, const char *kid)
{
    const char *n = t->name;
    char buf[1024], want[1024];
    uint64_t ok_before = metric(M8_AKM_VALID_SUCCESS), bad_before = metric(M8_AKM_VALID_INVALID);
    iresp *r = call(t, "GET", "/profile/api-keys/verify", NULL, key, NULL, NULL, NULL);
    ok(r->status == 200 && strcmp(imember(r->body, "id", buf, sizeof buf), kid) == 0 &&
           strstr(r->body, "\"scopes\":[\"audit:read\",\"items:read\"]"),
       "%s: verify with the m8 key: 200, its id and scopes", n);
    r = item_introspect(t, key);
    snprintf(want, sizeof want,
             "\"principal\":{\"user_id\":\"%s\",\"role\":\"reader\",\"is_superuser\":false,"
             "\"access_mode\":\"read_only\",\"authentication_method\":\"api_key\","
             "\"auth_generation\":1,\"scopes\":[\"audit:read\",\"items:read\"]}",
             t->alice.id);
    ok(r->status == 200 && strstr(r->body, want),
       "%s: introspection: principal.scopes after auth_generation", n);
    if (!strstr(r->body, want))
        diag("got %d %s", r->status, r->body);
    is_int((long long)(metric(M8_AKM_VALID_SUCCESS) - ok_before), 2,
           "%s: auth_api_key_validations_total{result=success} + 2", n);
    /* a consumer whose id differs from the key's audience only in case */
    char body[256];
    snprintf(body, sizeof body, "{\"api_key\":\"%s\",\"schema_version\":\"1\"}", key);
    ianswer(introspect(t, "Item-Service", "upper-secret-0123456789", body), 200,
            "{\"active\":false,\"schema_version\":\"1\"}",
            "introspection by consumer Item-Service of a key bound to item-service: inactive (ids "
            "compared byte for byte, also on MariaDB)");
    /* one digit changed, and one cut off: refused before any lookup */
    char typo[64];
    snprintf(typo, sizeof typo, "%s", key);
    typo[12] = typo[12] == '0' ? '1' : '0';
    idetail(call(t, "GET", "/profile/api-keys/verify", NULL, typo, NULL, NULL, NULL), 401,
            "Invalid or expired API key", "verify with a one-digit typo: 401");
    typo[12] = key[12];
    typo[44] = '\0';
    idetail(call(t, "GET", "/profile/api-keys/verify", NULL, typo, NULL, NULL, NULL), 401,
            "Invalid or expired API key", "verify with the key's last digit cut: 401");
    ianswer(item_introspect(t, typo), 200, "{\"active\":false,\"schema_version\":\"1\"}",
            "introspection of the truncated key: inactive");
    is_int((long long)(metric(M8_AKM_VALID_INVALID) - bad_before), 3,
           "%s: auth_api_key_validations_total{result=invalid} + 3", n);

    /* an unscoped key: no principal.scopes */
    r = owner(t, "POST", "/profile/api-keys/", t->alice_tok,
              "{\"name\":\"unscoped\",\"audiences\":[\"item-service\"]}");
    char k2[64];
    imember(r->body, "plaintext", k2, sizeof k2);
    r = item_introspect(t, k2);
    ok(r->status == 200 && strstr(r->body, "\"auth_generation\":1},") && !strstr(r->body, "scopes"),
       "%s: introspection of an unscoped key: fa-auth-m8's body (no scopes)", n);

    /* a key as fa-auth-m8 made it (a migrated table): still accepted */
    char legacy[M8_APIKEY_LEGACY_LEN + 1], id[37], idp[37], up[37], hex[65];
    unsigned char d[32];
    m8_apikey_make_legacy(legacy);
    crypto_hash_sha256(d, (const unsigned char *)legacy, strlen(legacy));
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    m8_jti_new(id);
    dbid(t, id, idp);
    dbid(t, t->alice.id, up);
    m8_db_param p[] = {M8_DB_TEXT(idp), M8_DB_TEXT(hex), M8_DB_TEXT(up)};
    if (m8_db_exec(t->db,
                   "INSERT INTO auth_api_key (id, name, revoked, key_hash, user_id, access_mode) "
                   "VALUES (?, 'migrated', FALSE, ?, ?, 'READ_ONLY')",
                   p, 3, NULL) != 0)
        diag("insert: %s", m8_db_last_error(t->db)->message);
    r = call(t, "GET", "/profile/api-keys/verify", NULL, legacy, NULL, NULL, NULL);
    ok(r->status == 200 && strcmp(imember(r->body, "id", buf, sizeof buf), id) == 0,
       "%s: a legacy ak_ key of a migrated fa-auth-m8 table verifies: 200", n);
}

static void test_windows(tctx *t, const char *key, const char *kid)
{
    const char *n = t->name;
    char k[40], sql[256], h[64];
    dbid(t, kid, k);
    const char *lim = t->kind == M8_DB_POSTGRES ? "\"limit\"" : "`limit`";
    /* the minute window generous, the hour window at its limit */
    snprintf(sql, sizeof sql,
             "INSERT INTO auth_rate_limit (api_key_id, period, %s) VALUES (?, 'MINUTE', 1000)",
             lim);
    exec1(t, sql, k);
    snprintf(sql, sizeof sql,
             "INSERT INTO auth_rate_limit (api_key_id, period, %s) VALUES (?, 'HOUR', 3)", lim);
    exec1(t, sql, k);
    uint64_t hits = metric(M8_AKM_HIT_HOUR), blocked = metric(M8_AKM_RATE_BLOCKED);
    /* the key was used this hour already (test_use): within 4 more uses the
     * hour window (3) is exceeded, the minute window (1000) never */
    iresp *r = NULL;
    int passed = 0;
    bool minute_headers = true;
    for (int i = 0; i < 4; i++) {
        r = call(t, "GET", "/profile/api-keys/verify", NULL, key, NULL, NULL, NULL);
        if (r->status != 200)
            break;
        passed++;
        minute_headers =
            minute_headers && strcmp(iheader(r, "X-RateLimit-Limit", h, sizeof h), "1000") == 0;
    }
    ok(passed >= 1 && passed <= 2 && minute_headers,
       "%s: the uses under the hour limit pass (%d); their headers describe the minute window", n,
       passed);
    idetail(r, 429, "Rate limit exceeded for period: hour", "the use over it: 429 for period hour");
    long long ra = strtoll(iheader(r, "Retry-After", h, sizeof h), NULL, 10);
    ok(ra >= 1 && ra <= 3601 && !strstr(r->head, "X-RateLimit"),
       "%s: Retry-After is the seconds to the next UTC hour + 1 (%lld), no X-RateLimit-*", n, ra);
    is_int((long long)(metric(M8_AKM_HIT_HOUR) - hits), 1,
           "%s: auth_api_key_rate_limit_hits_total{period=hour} + 1", n);
    is_int((long long)(metric(M8_AKM_RATE_BLOCKED) - blocked), 1,
           "%s: auth_api_key_rate_limit_checks_total{result=blocked} + 1", n);
    r = item_introspect(t, key);
    ok(r->status == 429 && strstr(r->body, "period: hour"),
       "%s: introspection meets the same hour window: 429", n);
    exec1(t, "DELETE FROM auth_rate_limit WHERE api_key_id = ?", k);
}

static void test_admin_create(tctx *t)
{
    const char *n = t->name;
    char path[128], kid[40], key[64], k[40];
    snprintf(path, sizeof path, "/api-keys/by-user/%s/", t->wr.id);
    const char *body = "{\"name\":\"ci-deploy\",\"ttl_hours\":2160,\"access_mode\":\"read_write\","
                       "\"audiences\":[\"item-service\"],\"scopes\":[\"items:write\"]}";
    is_int(owner(t, "POST", path, t->alice_tok, body)->status, 403,
           "%s: POST /api-keys/by-user/{id}/ by a non-superuser: 403", n);
    int64_t audits = iint(t->db,
                          "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE table_name = "
                          "'auth_api_key' AND action = 'add'",
                          NULL);
    iresp *r = owner(t, "POST", path, t->su_tok, body);
    is_int(r->status, 201, "%s: the superuser issues a key for the writer: 201", n);
    imember(r->body, "id", kid, sizeof kid);
    imember(r->body, "plaintext", key, sizeof key);
    ok(strstr(r->body, "\"scopes\":[\"items:write\"]") &&
           strstr(r->body, "\"access_mode\":\"read_write\"") &&
           m8_apikey_shape_of(key, strlen(key)) == M8_AKS_M8,
       "%s: ... with its scopes, access mode and an m8 plaintext", n);
    char uid[40];
    dbid(t, t->wr.id, uid);
    dbid(t, kid, k);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_api_key WHERE user_id = ?", uid), 1,
           "%s: the key belongs to the writer", n);
    is_int(iint(t->db,
                "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE table_name = "
                "'auth_api_key' AND action = 'add'",
                NULL),
           audits + 1, "%s: one add audit row on auth_api_key", n);
    m8_db_param ap[] = {M8_DB_TEXT(kid), M8_DB_TEXT(t->wr.id)};
    m8_db_result *res = NULL;
    int64_t match = 0;
    if (m8_db_exec(t->db,
                   "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE row_pk = ? AND "
                   "target_owner_id = ? AND action = 'add'",
                   ap, 2, &res) == 0)
        m8_db_get_int(res, 0, 0, &match);
    m8_db_result_free(res);
    is_int(match, 1, "%s: ... naming the key and its owner", n);
    snprintf(path, sizeof path, "/profile/api-keys/%s", kid);
    r = owner(t, "GET", path, t->wr_tok, NULL);
    ok(r->status == 200 && strstr(r->body, "ci-deploy"), "%s: the owner sees the key as hers", n);
    r = item_introspect(t, key);
    ok(r->status == 200 && strstr(r->body, "\"role\":\"writer\"") &&
           strstr(r->body, "\"scopes\":[\"items:write\"]"),
       "%s: the key works for its owner (introspection: the writer, items:write)", n);
    /* the owner's live role, capped by the key's access mode */
    exec1(t, "UPDATE auth_user SET role = 'READER' WHERE id = ?", uid);
    r = item_introspect(t, key);
    ok(r->status == 200 && strstr(r->body, "\"role\":\"reader\""),
       "%s: the owner demoted to reader: the next introspection says reader", n);
    exec1(t, "UPDATE auth_user SET role = 'WRITER' WHERE id = ?", uid);
    snprintf(path, sizeof path, "/api-keys/by-user/%s/", t->wr.id);
    r = owner(t, "GET", path, t->su_tok, NULL);
    ok(strstr(r->body, "\"scopes\":[\"items:write\"]") != NULL,
       "%s: the superuser's list shows the scopes", n);
    snprintf(path, sizeof path, "/api-keys/by-user/%s/", NO_SUCH);
    idetail(owner(t, "POST", path, t->su_tok, "{}"), 404, "User not found",
            "for an unknown user: 404 User not found");
    is_int(owner(t, "POST", "/api-keys/by-user/not-a-uuid/", t->su_tok, "{}")->status, 422,
           "%s: a user_id that is no UUID: 422", n);
    snprintf(path, sizeof path, "/api-keys/by-user/%s/", t->wr.id);
    is_int(owner(t, "POST", path, t->su_tok, "{\"scopes\":[\"X\"]}")->status, 422,
           "%s: the same body checks: a bad scope 422", n);
    /* revocation metric, and a revoked key's validation */
    uint64_t revoked = metric(M8_AKM_REVOKED), rv = metric(M8_AKM_VALID_REVOKED);
    snprintf(path, sizeof path, "/api-keys/revoke/%s/", kid);
    is_int(owner(t, "POST", path, t->su_tok, NULL)->status, 200, "%s: the superuser revokes it", n);
    is_int((long long)(metric(M8_AKM_REVOKED) - revoked), 1,
           "%s: auth_api_key_lifecycle_total{action=revoked} + 1", n);
    idetail(call(t, "GET", "/profile/api-keys/verify", NULL, key, NULL, NULL, NULL), 401,
            "Invalid or expired API key", "verify with the revoked key: 401");
    is_int((long long)(metric(M8_AKM_VALID_REVOKED) - rv), 1,
           "%s: auth_api_key_validations_total{result=revoked} + 1", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_api_key_scopes WHERE api_key_id = ?", k), 1,
           "%s: the revoked key's scope row stays with the row", n);
}

/* POST /api-keys/by-user/{id}/ and its target: an inactive user is
 * refused, the target's live-key cap holds, each key made writes one audit
 * row, and the audit log line names the client as the other audited routes
 * do (X-Forwarded-For with TRUSTED_PROXY_COUNT=1). */
static void test_admin_target(tctx *t)
{
    const char *n = t->name;
    char path[128], uid[40], tok[2048];
    m8_issuer_user carol, dave;
    add_user(t, &carol, "carol@example.com", "writer", tok);
    add_user(t, &dave, "dave@example.com", "writer", tok);
    const char *addq = "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE table_name = "
                       "'auth_api_key' AND action = 'add'";
    int64_t audits = iint(t->db, addq, NULL);
    dbid(t, carol.id, uid);
    exec1(t, "UPDATE auth_user SET is_active = FALSE WHERE id = ?", uid);
    snprintf(path, sizeof path, "/api-keys/by-user/%s/", carol.id);
    idetail(owner(t, "POST", path, t->su_tok, "{\"name\":\"for-inactive\"}"), 409,
            "User is inactive", "a key for an inactive user: 409 User is inactive");
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_api_key WHERE user_id = ?", uid), 0,
           "%s: ... no key row for her", n);
    is_int(iint(t->db, addq, NULL), audits, "%s: ... and no audit row", n);

    /* dave's cap (API_KEY_MAX_PER_USER=6) counts the keys made for him */
    snprintf(path, sizeof path, "/api-keys/by-user/%s/", dave.id);
    int made = 0;
    for (int i = 0; i < 6; i++)
        made += owner(t, "POST", path, t->su_tok, "{}")->status == 201;
    is_int(made, 6, "%s: six keys for dave by the superuser: 201 each", n);
    idetail(owner(t, "POST", path, t->su_tok, "{}"), 409,
            "Maximum of 6 active API keys reached. Revoke an existing key before creating a new "
            "one.",
            "the seventh: 409, the target's live-key cap");
    is_int(iint(t->db, addq, NULL), audits + 6, "%s: six add audit rows, none for the refused one",
           n);

    /* the log line of the audit row names the client address */
    char logpath[] = "/tmp/test_akscopes_log_XXXXXX";
    int fd = mkstemp(logpath);
    char logbuf[8192] = "";
    if (fd >= 0) {
        exec1(t, "UPDATE auth_api_key SET revoked = TRUE WHERE user_id = ?", dbid(t, dave.id, uid));
        m8_log_set_fd(fd);
        g_xff = "203.0.113.7";
        is_int(owner(t, "POST", path, t->su_tok, "{}")->status, 201,
               "%s: a key for dave with X-Forwarded-For: 201", n);
        g_xff = NULL;
        m8_log_set_fd(2);
        ssize_t got = pread(fd, logbuf, sizeof logbuf - 1, 0);
        logbuf[got > 0 ? got : 0] = '\0';
        close(fd);
        unlink(logpath);
    }
    ok(strstr(logbuf, "client=203.0.113.7") != NULL,
       "%s: the audit log line names the client from X-Forwarded-For, not the proxy", n);
    if (!strstr(logbuf, "client=203.0.113.7"))
        diag("log: %s", logbuf);
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
        test_scoped_create(&t, key, kid);
        test_scopes_refused(&t);
        test_scope_order(&t);
        test_use(&t, key, kid);
        test_windows(&t, key, kid);
        test_admin_create(&t);
        test_admin_target(&t);
        teardown(&t);
    }
    idb_stop();
    m8_arena_free(&g_arena);
    return done_testing();
}
