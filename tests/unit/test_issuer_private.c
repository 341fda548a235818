/* test_issuer_private.c - the issuer's private API (lib/issuer/private.c,
 * private_jti.c; doc/issuer.md#private-api): the consumer registry,
 * consumer authentication with its exact 401/403 answers, the
 * service-token exchange (tokens checked by PyJWT), jti-status v1 and v2
 * and POST /private/users/, driven in process through an m8_app.  The
 * database parts run against a real PostgreSQL and a real MariaDB started
 * on loopback by the helpers of tests/integration/lib.sh (ports
 * 19900-19939); a server that is not installed is skipped with the reason. */

#define M8T_MAIN 1 /* this file holds main() (tap.h) */
#include "test_issuer_private.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "issuer_db.h"
#include "testenv.h"

#define PASSWORD "Iss-Private-Db-Pa55!"
#define ISS_DB "iss_private"
#define ISS_USER "iss_private_user"

static const idb_servers g_srv = {
    "test_issuer_private", 19900, 19939, ISS_DB, ISS_USER, PASSWORD, false};

/* ------------------------------------------------------------ harness */

void send_req(tp *t, const icall *r, resp *out)
{
    icall c = *r;
    c.method = "POST";
    c.peer = "127.0.0.1";
    c.ctype = r->ctype ? r->ctype : "application/json";
    c.length_always = true;
    const iresp *a = icall_do(t->app, &c);
    memset(out, 0, sizeof *out);
    out->status = a->status;
    snprintf(out->body, sizeof out->body, "%.*s", (int)sizeof out->body - 1, a->body);
    icookie(a, "refresh_token", out->cookie, sizeof out->cookie);
}

#define CONSUMERS                                                                                  \
    "{\"item-service\":{\"secret\":\"item-secret-0123456789\",\"scopes\":[\"introspection\","      \
    "\"user-create\"]},"                                                                           \
    "\"stream-only\":{\"secret\":\"%s\",\"scopes\":[\"event-stream\"]},"                           \
    "\"nothing\":{\"secret\":\"nothing-secret-012345\",\"scopes\":[]}}"

/* The registry: item-service (plaintext secret), stream-only (the hashed
 * form of "stream-secret-0123456"), nothing (no scope). */
static int load_registry(m8_settings *s, char *err, size_t errlen)
{
    static char json[1024];
    char hashed[160];
    if (m8_issuer_private_hash("stream-secret-0123456", 21, hashed, sizeof hashed) != 0)
        return -1;
    snprintf(json, sizeof json, CONSUMERS, hashed);
    s->private_api_consumers = json;
    s->private_api_secret = SERVICE_SECRET;
    s->service_token_ttl_seconds = 300;
    return m8_issuer_private_load(s, err, errlen, NULL);
}

static m8_route g_routes[] = {
    {"POST", "/login/access-token", M8_PUBLIC, m8_issuer_h_login, NULL, NULL, NULL, 0},
    {"POST", "/login/logout/", M8_PUBLIC, m8_issuer_h_logout, NULL, NULL, NULL, 0},
    {"POST", "/private/v1/service-token", M8_PUBLIC, m8_issuer_h_service_token, NULL, NULL, NULL,
     M8_ROUTE_HIDDEN},
    {"POST", "/private/v1/jti-status", M8_PUBLIC, m8_issuer_h_jti_status, NULL, NULL, NULL,
     M8_ROUTE_HIDDEN},
    {"POST", "/private/users/", M8_PUBLIC, m8_issuer_h_private_users, NULL, NULL, NULL,
     M8_ROUTE_HIDDEN},
};

/* port 0: no database (the routes that need none). */
static int tp_init(tp *t, m8_db_kind kind, unsigned port)
{
    memset(t, 0, sizeof *t);
    t->pg = kind == M8_DB_POSTGRES;
    char **base = port ? m8t_env("TABLES_PREFIX=auth", NULL) : m8t_env0();
    idb_app a = {.name = "issuer-private-test",
                 .version = "1.0.0",
                 .routes = g_routes,
                 .nroutes = M8_ARRAY_LEN(g_routes),
                 .iss = &t->iss,
                 .connect_s = port ? 3 : 0,
                 .io_s = 5,
                 .env = port ? idb_env(kind, port, (const char *const *)base) : base};
    if (!(t->app = idb_app_boot(&a)))
        return -1;
    t->s = *m8_app_settings(t->app);
    t->s.trusted_proxy_count = 1;
    t->s.login_ip_rate_limit_requests = 50;
    t->s.password_login_enabled = true;
    t->iss.app = t->app;
    t->iss.s = &t->s;
    char err[256] = "";
    if (idb_issuer_keys(&t->iss, ACCESS_SECRET, REFRESH_SECRET, true, err, sizeof err) != 0 ||
        load_registry(&t->s, err, sizeof err)) {
        diag("issuer: %s", err);
        return -1;
    }
    if (!port)
        return 0;
    t->admin = idb_open(kind, port, "auth", 3, 10);
    return t->admin ? 0 : -1;
}

static void tp_free(tp *t)
{
    m8_app_free(t->app);
    idb_issuer_free(&t->iss);
    m8_db_close(t->admin);
    m8_issuer_private_free(NULL, NULL);
}

void post(tp *t, const char *path, const char *body, const char *client, const char *token,
          resp *out)
{
    icall r = {.path = path, .body = body, .client = client, .secret = token};
    send_req(t, &r, out);
}

/* A service token of ITEM for body (NULL: no body) into tok. */
bool exchange(tp *t, const char *body, char *tok, size_t toklen)
{
    resp r;
    post(t, "/api/private/v1/service-token", body, ITEM, ITEM_SECRET, &r);
    return r.status == 200 && imember(r.body, "access_token", tok, toklen)[0] != '\0';
}

/* Runs python3 with PyJWT: decodes tok (env M8T_TOK) with SERVICE_SECRET
 * and the service audience; prints the claim names in order, the scope and
 * exp - iat. */
static bool pyjwt_service(const char *tok, char *out, size_t outlen)
{
    setenv("M8T_TOK", tok, 1);
    FILE *f = popen("/usr/bin/python3 -c 'import jwt, os; c = jwt.decode(os.environ[\"M8T_TOK\"], "
                    "\"" SERVICE_SECRET "\", algorithms=[\"HS256\"], "
                    "audience=\"fa-auth-m8/internal-service\"); "
                    "print(\",\".join(c), c[\"scope\"], c[\"exp\"] - c[\"iat\"], c[\"type\"])' "
                    "2>/dev/null",
                    "r");
    out[0] = '\0';
    bool got = f && fgets(out, (int)outlen, f) != NULL;
    if (f)
        pclose(f);
    out[strcspn(out, "\n")] = '\0';
    return got && out[0];
}

/* A token signed by PyJWT with SERVICE_SECRET (or key) from python claims. */
static bool pyjwt_mint(const char *claims, const char *key, char *out, size_t outlen)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import jwt, time, uuid; now = int(time.time()); "
             "print(jwt.encode(%s, \"%s\", algorithm=\"HS256\"))' 2>/dev/null",
             claims, key);
    FILE *f = popen(cmd, "r");
    out[0] = '\0';
    bool got = f && fgets(out, (int)outlen, f) != NULL;
    if (f)
        pclose(f);
    out[strcspn(out, "\n")] = '\0';
    return got && out[0];
}

static void test_registry(void)
{
    m8_settings s;
    memset(&s, 0, sizeof s);
    char err[512];
    static const struct {
        const char *json, *why;
    } bad[] = {
        {"[]", "must be a JSON object"},
        {"{\"a\":\"plain-secret-value\"}", "must be an object"},
        {"{\"a\":{\"secret\":\"plain-secret-value\",\"scopes\":[],\"role\":\"x\"}}",
         "unknown member"},
        {"{\"a\":{\"scopes\":[\"introspection\"]}}", "\"secret\" must be a string"},
        {"{\"a\":{\"secret\":\"\"}}", "1-1024 bytes"},
        {"{\"a\":{\"secret\":\"sha256$zz$00\"}}", "sha256$<salt hex>"},
        {"{\"a\":{\"secret\":\"sha256$00112233$0011\"}}", "sha256$<salt hex>"},
        {"{\"a\":{\"secret\":\"plain-secret-value\",\"scopes\":\"introspection\"}}",
         "list of strings"},
        {"{\"a\":{\"secret\":\"plain-secret-value\",\"scopes\":[\"two words\"]}}",
         "without spaces"},
        {"{\"a b\":{\"secret\":\"plain-secret-value\"}}", "consumer id"},
    };
    s.private_api_secret = SERVICE_SECRET;
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        s.private_api_consumers = (char *)bad[i].json;
        err[0] = '\0';
        int rc = m8_issuer_private_load(&s, err, sizeof err, NULL);
        ok(rc != 0 && strstr(err, bad[i].why) && !strstr(err, "plain-secret-value"),
           "registry: %s is refused (%s), the secret not echoed", bad[i].json, err);
        is_int(m8_issuer_private_count(), 0, "registry: nothing is kept after a refusal");
    }
    s.private_api_consumers = "{}";
    is_int(m8_issuer_private_load(&s, err, sizeof err, NULL), 0, "registry: empty loads");
    s.auth_strict_mode = true;
    ok(m8_issuer_private_load(&s, err, sizeof err, NULL) != 0 && strstr(err, "AUTH_STRICT_MODE"),
       "registry: empty under AUTH_STRICT_MODE is a start-up error (%s)", err);
    s.auth_strict_mode = false;
    s.private_api_consumers = "{\"a\":{\"secret\":\"plain-secret-value\"}}";
    s.private_api_secret = NULL;
    ok(m8_issuer_private_load(&s, err, sizeof err, NULL) != 0 && strstr(err, "PRIVATE_API_SECRET"),
       "registry: consumers without PRIVATE_API_SECRET refused (%s)", err);
    char h[160];
    ok(m8_issuer_private_hash("abc", 3, h, sizeof h) == 0 && strncmp(h, "sha256$", 7) == 0 &&
           strlen(h) == 7 + 32 + 1 + 64,
       "registry: the hashed form is sha256$<16-byte salt hex>$<digest hex> (%s)", h);
    m8_issuer_private_free(NULL, NULL);
}

#define V2_OTHER "{\"jti\":\"j\",\"expected_user_id\":\"6f1c2a4e-0000-4000-8000-000000000001\""

/* Consumer authentication and the exchange (no database needed). */
static void test_auth(tp *t)
{
    resp r;
    const char *v2 = V2_OTHER ",\"schema_version\":\"2\"}";
    post(t, JTI, v2, "who-is-this", ITEM_SECRET, &r);
    ok(r.status == 401 && strcmp(r.body, UNAUTH) == 0, "auth: unknown consumer: 401 %s", r.body);
    post(t, JTI, v2, ITEM, "item-secret-012345678X", &r);
    ok(r.status == 401 && strcmp(r.body, UNAUTH) == 0, "auth: wrong secret: 401 %s", r.body);
    post(t, JTI, v2, ITEM, NULL, &r);
    is_int(r.status, 401, "auth: a client id without X-Internal-Token: 401");
    post(t, JTI, v2, ITEM, "", &r);
    is_int(r.status, 401, "auth: an empty X-Internal-Token: 401");
    post(t, JTI, v2, NULL, ITEM_SECRET, &r);
    ok(r.status == 401 && strcmp(r.body, UNAUTH) == 0, "auth: the legacy token-only shape: 401");
    post(t, JTI, v2, NULL, SERVICE_SECRET, &r);
    is_int(r.status, 401, "auth: PRIVATE_API_SECRET alone (legacy): 401");
    post(t, JTI, v2, NULL, NULL, &r);
    is_int(r.status, 401, "auth: no credential: 401");
    post(t, JTI, v2, "nothing", "nothing-secret-012345", &r);
    ok(r.status == 403 && strcmp(r.body, FORBID) == 0, "auth: missing scope: 403 %s", r.body);
    post(t, JTI, v2, "stream-only", "stream-secret-0123456", &r);
    ok(r.status == 403 && strcmp(r.body, FORBID) == 0,
       "auth: a sha256$ registry secret authenticates (403: scope event-stream only)");
    post(t, JTI, v2, "stream-only", "stream-secret-0123457", &r);
    is_int(r.status, 401, "auth: a sha256$ registry secret: a wrong one is 401");
    post(t, JTI, "not json", "who", ITEM_SECRET, &r);
    is_int(r.status, 401, "auth: 401 before body validation");
    post(t, JTI, "not json", "nothing", "nothing-secret-012345", &r);
    is_int(r.status, 403, "auth: 403 before body validation");
    post(t, JTI, "not json", ITEM, ITEM_SECRET, &r);
    is_int(r.status, 422, "jti-status: a body that is not JSON: 422");
    post(t, JTI, "{\"jti\":\"\"}", ITEM, ITEM_SECRET, &r);
    ok(r.status == 422 && strstr(r.body, "string_too_short"), "jti-status: empty jti: 422 %s",
       r.body);
    post(t, JTI, "{}", ITEM, ITEM_SECRET, &r);
    ok(r.status == 422 && strstr(r.body, "\"missing\""), "jti-status: no jti: 422 missing");
    post(t, JTI, "{\"jti\":\"a\",\"expected_user_id\":\"not-a-uuid\",\"schema_version\":\"2\"}",
         ITEM, ITEM_SECRET, &r);
    ok(r.status == 422 && strstr(r.body, "uuid_parsing") && strstr(r.body, "expected_user_id"),
       "jti-status: expected_user_id not a UUID: 422 uuid_parsing");
    post(t, JTI, V2_OTHER "}", ITEM, ITEM_SECRET, &r);
    ok(r.status == 200 && strcmp(r.body, "{\"active\":false,\"schema_version\":\"2\"}") == 0,
       "jti-status: v2 without schema_version: generic inactive %s", r.body);
    post(t, JTI, V2_OTHER ",\"schema_version\":\"3\"}", ITEM, ITEM_SECRET, &r);
    ok(r.status == 200 && strstr(r.body, "\"active\":false"),
       "jti-status: schema_version 3: generic inactive");
    post(t, JTI, v2, ITEM, ITEM_SECRET, &r);
    ok(r.status == 503 &&
           strcmp(r.body, "{\"detail\":\"Introspection temporarily unavailable\"}") == 0,
       "jti-status: v2 without a database: 503 %s", r.body);
    post(t, JTI, "{\"jti\":\"j\"}", ITEM, ITEM_SECRET, &r);
    is_str(r.body, "{\"active\":false}", "jti-status v1: store down, fail_closed: inactive");
    t->s.access_revocation_failure_mode = M8_FAIL_OPEN;
    post(t, JTI, "{\"jti\":\"j\"}", ITEM, ITEM_SECRET, &r);
    is_str(r.body, "{\"active\":true}", "jti-status v1: store down, fail_open: active");
    t->s.auth_strict_mode = true;
    post(t, JTI, "{\"jti\":\"j\"}", ITEM, ITEM_SECRET, &r);
    is_str(r.body, "{\"active\":false}", "jti-status v1: AUTH_STRICT_MODE forces fail_closed");
    t->s.auth_strict_mode = false;
    t->s.access_revocation_failure_mode = M8_FAIL_CLOSED;
    t->iss.hybrid = true;
    post(t, JTI, "{\"jti\":\"j\"}", ITEM, ITEM_SECRET, &r);
    is_str(r.body, "{\"active\":true}", "jti-status v1: hybrid: always active");
    t->iss.hybrid = false;

    /* the exchange */
    const char *X = "/api/private/v1/service-token";
    post(t, X, NULL, ITEM, ITEM_SECRET, &r);
    char scope[128] = "", tt[32] = "", exp[32] = "", tok[2048] = "";
    imember(r.body, "scope", scope, sizeof scope);
    imember(r.body, "token_type", tt, sizeof tt);
    imember(r.body, "expires_in", exp, sizeof exp);
    imember(r.body, "access_token", tok, sizeof tok);
    ok(r.status == 200 && strcmp(scope, "introspection user-create") == 0 &&
           strcmp(tt, "bearer") == 0 && strcmp(exp, "300") == 0,
       "exchange: no body: every granted scope, sorted (%s)", r.body);
    ok(strncmp(r.body, "{\"access_token\":", 16) == 0 && strstr(r.body, "\"token_type\"") &&
           strstr(r.body, "\"token_type\"") < strstr(r.body, "\"expires_in\"") &&
           strstr(r.body, "\"expires_in\"") < strstr(r.body, "\"scope\""),
       "exchange: members access_token, token_type, expires_in, scope in order");
    char py[512];
    ok(pyjwt_service(tok, py, sizeof py) &&
           strcmp(py, "sub,scope,type,aud,iat,nbf,exp,jti introspection user-create 300 service") ==
               0,
       "exchange: PyJWT verifies the token; claims in order (%s)", py);
    static const char *all[] = {"{}", "{\"scopes\":null}", "{\"scopes\":[]}"};
    for (size_t i = 0; i < 3; i++) {
        post(t, X, all[i], ITEM, ITEM_SECRET, &r);
        imember(r.body, "scope", scope, sizeof scope);
        ok(r.status == 200 && strcmp(scope, "introspection user-create") == 0,
           "exchange: %s means every granted scope", all[i]);
    }
    post(t, X, "{\"scopes\":[\"user-create\",\"user-create\"]}", ITEM, ITEM_SECRET, &r);
    imember(r.body, "scope", scope, sizeof scope);
    is_str(scope, "user-create", "exchange: a subset (duplicates once)");
    post(t, X, "{\"scopes\":[\"event-stream\"]}", ITEM, ITEM_SECRET, &r);
    ok(r.status == 403 && strcmp(r.body, FORBID) == 0, "exchange: a scope not granted: 403");
    post(t, X, NULL, "nothing", "nothing-secret-012345", &r);
    ok(r.status == 403 && strcmp(r.body, FORBID) == 0, "exchange: nothing granted: 403");
    post(t, X, NULL, ITEM, "bad", &r);
    ok(r.status == 401 && strcmp(r.body, UNAUTH) == 0, "exchange: a bad pair: 401");
    icall br = {.path = X, .bearer = tok};
    send_req(t, &br, &r);
    is_int(r.status, 401, "exchange: a service token does not mint another (pair only)");
    post(t, X, "{\"scopes\":\"introspection\"}", ITEM, ITEM_SECRET, &r);
    ok(r.status == 422 && strstr(r.body, "list_type"), "exchange: scopes not a list: 422");
    post(t, X, "{\"scopes\":[1]}", ITEM, ITEM_SECRET, &r);
    ok(r.status == 422 && strstr(r.body, "string_type"), "exchange: a scope not a string: 422");

    /* bearer service tokens */
    icall b = {.path = JTI, .body = v2, .bearer = tok};
    send_req(t, &b, &r);
    is_int(r.status, 503, "bearer: a minted token passes authentication (503: no database)");
    b.client = "who";
    b.secret = "bad";
    send_req(t, &b, &r);
    is_int(r.status, 503, "bearer: a bad X-Internal pair next to a good bearer is ignored");
    char bad[2048];
    snprintf(bad, sizeof bad, "%s", tok);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    icall g = {.path = JTI, .body = v2, .bearer = bad, .client = ITEM, .secret = ITEM_SECRET};
    send_req(t, &g, &r);
    ok(r.status == 401 && strcmp(r.body, UNAUTH) == 0,
       "bearer first: a bad bearer is 401 even with a valid pair");
    exchange(t, "{\"scopes\":[\"user-create\"]}", tok, sizeof tok);
    icall s1 = {.path = JTI, .body = v2, .bearer = tok};
    send_req(t, &s1, &r);
    ok(r.status == 403 && strcmp(r.body, FORBID) == 0, "bearer: scope not in the token: 403");
    static const struct {
        const char *claims, *key, *name;
    } forged[] = {
        {"{\"sub\":\"item-service\",\"scope\":\"introspection\",\"type\":\"service\","
         "\"aud\":\"fa-auth-m8/internal-service\",\"iat\":now-100,\"nbf\":now-100,\"exp\":now-1,"
         "\"jti\":str(uuid.uuid4())}",
         SERVICE_SECRET, "expired"},
        {"{\"sub\":\"item-service\",\"scope\":\"introspection\",\"type\":\"access\","
         "\"aud\":\"fa-auth-m8/internal-service\",\"iat\":now,\"nbf\":now,\"exp\":now+60}",
         SERVICE_SECRET, "type access"},
        {"{\"sub\":\"item-service\",\"scope\":\"introspection\",\"type\":\"service\","
         "\"aud\":\"other\",\"iat\":now,\"nbf\":now,\"exp\":now+60}",
         SERVICE_SECRET, "another audience"},
        {"{\"sub\":\"item-service\",\"scope\":\"introspection\",\"type\":\"service\","
         "\"iat\":now,\"nbf\":now,\"exp\":now+60}",
         SERVICE_SECRET, "no audience"},
        {"{\"sub\":\"\",\"scope\":\"introspection\",\"type\":\"service\","
         "\"aud\":\"fa-auth-m8/internal-service\",\"exp\":now+60}",
         SERVICE_SECRET, "empty sub"},
        {"{\"sub\":\"item-service\",\"scope\":\"introspection\",\"type\":\"service\","
         "\"aud\":\"fa-auth-m8/internal-service\",\"nbf\":now+100,\"exp\":now+600}",
         SERVICE_SECRET, "not yet valid"},
        {"{\"sub\":\"item-service\",\"scope\":\"introspection\",\"type\":\"service\","
         "\"aud\":\"fa-auth-m8/internal-service\",\"exp\":now+60}",
         "Another-Secret-Key-0123456789abcdef!", "another key"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(forged); i++) {
        char ft[2048];
        if (!pyjwt_mint(forged[i].claims, forged[i].key, ft, sizeof ft)) {
            ok(1, "bearer: %s # SKIP PyJWT unavailable", forged[i].name);
            continue;
        }
        icall f = {.path = JTI, .body = v2, .bearer = ft};
        send_req(t, &f, &r);
        ok(r.status == 401 && strcmp(r.body, UNAUTH) == 0, "bearer: %s: 401", forged[i].name);
    }
    char good[2048];
    if (pyjwt_mint("{\"sub\":\"someone-removed\",\"scope\":\"introspection\",\"type\":\"service\","
                   "\"aud\":\"fa-auth-m8/internal-service\",\"exp\":now+60}",
                   SERVICE_SECRET, good, sizeof good)) {
        icall f = {.path = JTI, .body = v2, .bearer = good};
        send_req(t, &f, &r);
        is_int(r.status, 503,
               "bearer: a valid token of a consumer not in the registry still works until exp");
    }

    /* an empty registry */
    m8_settings e = t->s;
    char err[256];
    e.private_api_consumers = "{}";
    m8_issuer_private_load(&e, err, sizeof err, NULL);
    post(t, JTI, v2, ITEM, ITEM_SECRET, &r);
    ok(r.status == 401 && strcmp(r.body, UNAUTH) == 0, "empty registry: jti-status 401");
    post(t, X, NULL, ITEM, ITEM_SECRET, &r);
    ok(r.status == 404 &&
           strcmp(r.body, "{\"detail\":\"Service-token exchange not enabled\"}") == 0,
       "empty registry: the exchange is 404 %s", r.body);
    load_registry(&t->s, err, sizeof err);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    test_registry();
    tp t;
    if (ok(tp_init(&t, M8_DB_POSTGRES, 0) == 0, "an issuer without a database boots"))
        test_auth(&t);
    tp_free(&t);
    idb_start(&g_srv);
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        const char *name = m8_db_kind_name(kind);
        const char *why = idb_unusable(kind);
        if (why) {
            ok(1, "%s: a real server # SKIP %s", name, why);
            continue;
        }
        int rc = tp_init(&t, kind, idb_port(kind));
        char err[512] = "";
        if (rc == 0)
            rc = m8_issuer_schema_apply(t.admin, "auth", NULL, err, sizeof err);
        if (ok(rc == 0, "%s: the issuer boots and its schema is applied (%s)", name, err))
            test_db(&t, name);
        tp_free(&t);
    }
    idb_stop();
    return done_testing();
}
