/* test_apikey.c - the API-key principal (apikey.h; CONTRACT B 4) against
 * tests/tools/issuer.py: every row of the B 4.5 order with its reason code
 * and the answers of B 4.7 (401/403/429 with Retry-After passed through/
 * 503), the v1 schema of B 4.4 (table of malformed answers), the capability
 * decision of B 4.6, the circuit breaker (fake clock and real clock), the
 * concurrency limit, bounded time against a slow or absent issuer, the
 * service-token mode with the re-mint after a 401, nothing cached, the boot
 * audit, and logs (one line per refusal, never the key or a secret).
 * Skips the issuer part when /usr/bin/python3 lacks jwt/cryptography. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/apikey.h"
#include "core/log.h"
#include "issuerproc.h"
#include "net/httpc.h"
#include "tap.h"

extern char **environ;

#define SECRET "Item-Service-Bootstrap-Secret-0123456789!"
#define CLIENT "item-service"
#define CLOSED_URL "http://127.0.0.1:9/private/v1/jti-status" /* nothing listens on 9 */

static char *scope_items[] = {"introspection", "api-key-introspection"};
static char intro_url[256]; /* INTROSPECTION_URL of the issuer under test */
static m8_arena arena;
static unsigned long refusals_total; /* refusals of every freed resolver */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Settings of an enabled API-key consumer, by hand (B 4.1 defaults, short
 * timeouts). */
static m8_settings *settings(const char *introspection_url)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->api_key_introspection_enabled = true;
    s->introspection_url = (char *)introspection_url;
    s->private_api_secret = SECRET;
    s->internal_client_id = CLIENT;
    s->api_key_introspection_schema_version = "1";
    s->api_key_introspection_connect_timeout = 0.5;
    s->api_key_introspection_read_timeout = 1.0;
    s->api_key_introspection_pool_timeout = 0.5;
    s->api_key_introspection_max_concurrency = 20;
    s->api_key_introspection_max_response_bytes = 8192;
    s->api_key_introspection_circuit_failure_threshold = 1000;
    s->api_key_introspection_circuit_reset_seconds = 30.0;
    s->service_token_refresh_leeway_seconds = 30;
    s->service_token_scopes.items = scope_items;
    s->service_token_scopes.n = M8_ARRAY_LEN(scope_items);
    return s;
}

static m8_apikey *make(const m8_settings *s)
{
    char err[256];
    m8_apikey *k = m8_apikey_new(s, err, sizeof err);
    if (!k)
        diag("new: %s", err);
    return k;
}

static void drop(m8_apikey *k, m8_settings *s)
{
    if (k) {
        m8_apikey_stats st;
        m8_apikey_get_stats(k, &st);
        refusals_total += st.refusals;
    }
    m8_apikey_free(k);
    free(s);
}

static m8_apikey_stats stats(m8_apikey *k)
{
    m8_apikey_stats st;
    m8_apikey_get_stats(k, &st);
    return st;
}

static m8_apikey_answer ans;

/* One resolution of a NUL-terminated key at the real clock. */
static bool resolve(m8_apikey *k, const char *key, m8_apikey_need need)
{
    m8_arena_reset(&arena);
    return m8_apikey_resolve(k, key, key ? strlen(key) : 0, need, m8_now_mono(), &arena, &ans);
}

/* "status reason" of the last answer, e.g. "503 transport". */
static const char *outcome(void)
{
    static char b[64];
    snprintf(b, sizeof b, "%d %s", ans.status, m8_apikey_reason_name(ans.reason));
    return b;
}

/* ------------------------------------------------------------ pure parts */

static void test_names(void)
{
    static const struct {
        m8_apikey_reason r;
        const char *name;
    } names[] = {
        {M8_AK_OK, "ok"},
        {M8_AK_MISSING, "missing"},
        {M8_AK_TOO_LONG, "key_too_long"},
        {M8_AK_INACTIVE, "inactive"},
        {M8_AK_QUOTA_EXCEEDED, "quota_exceeded"},
        {M8_AK_CIRCUIT_OPEN, "circuit_open"},
        {M8_AK_LOAD_SHED, "load_shed"},
        {M8_AK_TRANSPORT, "transport"},
        {M8_AK_RESPONSE_TOO_LARGE, "response_too_large"},
        {M8_AK_CONSUMER_UNAUTHORIZED, "consumer_unauthorized"},
        {M8_AK_ISSUER_UNAVAILABLE, "issuer_unavailable"},
        {M8_AK_UNEXPECTED_STATUS, "unexpected_status"},
        {M8_AK_MALFORMED_RESPONSE, "malformed_response"},
        {M8_AK_AUDIENCE_MISMATCH, "audience_mismatch"},
        {M8_AK_INTERNAL, "internal"},
        {M8_AK_INSUFFICIENT_CAPABILITY, "insufficient_capability"},
    };
    bool all = true;
    for (size_t i = 0; i < M8_ARRAY_LEN(names); i++)
        all = all && strcmp(m8_apikey_reason_name(names[i].r), names[i].name) == 0;
    ok(all, "names: every reason has the code of B 4.5 (circuit_open, load_shed, ...)");
    ok(m8_apikey_need_role(M8_APIKEY_PRINCIPAL) == NULL, "names: the bare principal needs no role");
    is_str(m8_apikey_need_role(M8_APIKEY_READER), "reader", "names: reader");
    is_str(m8_apikey_need_role(M8_APIKEY_WRITER), "writer", "names: writer");
}

static void test_capability(void)
{
    /* role, superuser, mode, required, expected */
    static const struct {
        const char *role;
        bool su;
        const char *mode, *need;
        int want;
    } rows[] = {
        {"reader", false, "read_only", "reader", 1},
        {"reader", false, "read_write", "writer", 0}, /* role below writer */
        {"writer", false, "read_only", "writer", 0},  /* rule 4: read_write needed */
        {"writer", false, "read_write", "writer", 1},
        {"writer", false, "read_only", "reader", 1},
        {"admin", false, "read_write", "writer", 1},
        {"admin", false, "read_only", "reader", 1},
        {"superadmin", true, "read_write", "writer", 1},
        {"superadmin", false, "read_write", "reader", 0}, /* rule 2: inconsistent */
        {"admin", true, "read_write", "reader", 0},       /* rule 2: inconsistent */
        {"user", false, "read_write", "reader", 0},       /* rule 3 */
        {"user", false, "read_write", "user", 1},
        {"nobody", false, "read_write", "reader", 0}, /* unknown owner role */
        {"writer", false, NULL, "writer", 0},
        {"writer", false, "read_write", "admin", M8_EINVAL}, /* rule 1 */
        {"superadmin", true, "read_write", "superadmin", M8_EINVAL},
        {"writer", false, "read_write", "owner", M8_EINVAL},
        {"writer", false, "read_write", NULL, M8_EINVAL},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(rows); i++)
        is_int(m8_apikey_has_capability(rows[i].role, rows[i].su, rows[i].mode, rows[i].need),
               rows[i].want, "capability (B 4.6): %s%s %s, required %s -> %d", rows[i].role,
               rows[i].su ? "+superuser" : "", rows[i].mode ? rows[i].mode : "(none)",
               rows[i].need ? rows[i].need : "(none)", rows[i].want);
}

static void test_audit(void)
{
    char buf[512];
    const char *m = m8_apikey_audit_route("GET", "/api/items/", NULL, NULL, buf, sizeof buf);
    ok(m != NULL, "audit: a route wired to the bare principal is refused at boot");
    like(m ? m : "", "GET /api/items/", "audit: ... the message names the route");
    like(m ? m : "", "bare API-key principal", "audit: ... and says why");
    static const char *const exempt[] = {"/api/whoami", NULL};
    ok(m8_apikey_audit_route("GET", "/api/whoami", NULL, exempt, buf, sizeof buf) == NULL,
       "audit: an exempted path may use the bare principal");
    ok(m8_apikey_audit_route("GET", "/api/items/", NULL, exempt, buf, sizeof buf) != NULL,
       "audit: ... other paths still may not");
    ok(m8_apikey_audit_route("GET", "/api/items/", "reader", NULL, buf, sizeof buf) == NULL,
       "audit: a reader route passes");
    ok(m8_apikey_audit_route("POST", "/api/items/", "writer", NULL, buf, sizeof buf) == NULL,
       "audit: a writer route passes");
    m = m8_apikey_audit_route("DELETE", "/api/items/{id}", "admin", NULL, buf, sizeof buf);
    ok(m != NULL, "audit: an API-key admin requirement is a wiring error (B 4.6 rule 1)");
    like(m ? m : "", "admin", "audit: ... named");
    ok(m8_apikey_audit_route("GET", "/x", "superadmin", NULL, buf, sizeof buf) != NULL,
       "audit: superadmin too");
    ok(m8_apikey_audit_route("GET", "/x", "owner", NULL, buf, sizeof buf) != NULL,
       "audit: an unknown role too");
    char small[16];
    m = m8_apikey_audit_route("GET", "/a-very-long-path/for/truncation", NULL, NULL, small,
                              sizeof small);
    ok(m && strlen(m) == sizeof small - 1, "audit: the message is truncated to the buffer");
}

#define ACTIVE_HEAD "{\"active\":true,\"schema_version\":\"1\",\"audience_id\":\"svc\","
#define PRINCIPAL(extra)                                                                           \
    "\"principal\":{\"user_id\":\"u1\",\"role\":\"writer\",\"is_superuser\":false,"                \
    "\"access_mode\":\"read_write\",\"authentication_method\":\"api_key\","                        \
    "\"auth_generation\":3" extra "}"

static void test_parse(void)
{
    static const struct {
        const char *body;
        int rc;     /* 0 or M8_EPARSE */
        int active; /* when rc == 0 */
        const char *what;
    } rows[] = {
        {"{\"active\":false,\"schema_version\":\"1\"}", 0, 0, "inactive"},
        {"{\"active\":false}", 0, 0, "inactive, schema_version absent (defaults to \"1\")"},
        {"{\"active\":false,\"schema_version\":\"1\",\"x\":[1,{}]}", 0, 0,
         "inactive with extra members"},
        {ACTIVE_HEAD PRINCIPAL("") ",\"key_expires_at\":null}", 0, 1, "active"},
        {ACTIVE_HEAD PRINCIPAL("") "}", 0, 1, "active, key_expires_at absent"},
        {ACTIVE_HEAD PRINCIPAL(",\"extra\":1") ",\"more\":{\"a\":[]}}", 0, 1,
         "active with extra members"},
        {"{\"active\":true,\"audience_id\":\"svc\"," PRINCIPAL("") "}", 0, 1,
         "active, schema_version absent"},
        {ACTIVE_HEAD
         "\"principal\":{\"user_id\":\"u1\",\"role\":\"reader\",\"access_mode\":\"read_only\","
         "\"auth_generation\":1}}",
         0, 1, "active, is_superuser and authentication_method absent (defaults)"},
        {"", M8_EPARSE, 0, "empty body"},
        {"{\"active\": tru", M8_EPARSE, 0, "not JSON"},
        {"not json at all", M8_EPARSE, 0, "text"},
        {"[]", M8_EPARSE, 0, "an array"},
        {"null", M8_EPARSE, 0, "null"},
        {"{}", M8_EPARSE, 0, "no active"},
        {"{\"active\":\"true\",\"schema_version\":\"1\"}", M8_EPARSE, 0, "active as a string"},
        {"{\"active\":1,\"schema_version\":\"1\"}", M8_EPARSE, 0, "active as a number"},
        {"{\"active\":false,\"schema_version\":\"2\"}", M8_EPARSE, 0, "schema_version 2"},
        {"{\"active\":false,\"schema_version\":1}", M8_EPARSE, 0, "schema_version as a number"},
        {"{\"active\":false,\"schema_version\":null}", M8_EPARSE, 0, "schema_version null"},
        {"{\"active\":true,\"schema_version\":\"1\"}", M8_EPARSE, 0, "active alone"},
        {"{\"active\":true,\"schema_version\":\"1\",\"audience_id\":\"svc\"}", M8_EPARSE, 0,
         "active without principal"},
        {ACTIVE_HEAD "\"principal\":null}", M8_EPARSE, 0, "principal null"},
        {ACTIVE_HEAD "\"principal\":[]}", M8_EPARSE, 0, "principal an array"},
        {"{\"active\":true,\"schema_version\":\"1\",\"audience_id\":\"\"," PRINCIPAL("") "}",
         M8_EPARSE, 0, "empty audience_id"},
        {"{\"active\":true,\"schema_version\":\"1\",\"audience_id\":7," PRINCIPAL("") "}",
         M8_EPARSE, 0, "audience_id a number"},
        {"{\"active\":true,\"schema_version\":\"1\"," PRINCIPAL("") "}", M8_EPARSE, 0,
         "no audience_id"},
        {ACTIVE_HEAD "\"principal\":{\"user_id\":\"\",\"role\":\"reader\","
                     "\"access_mode\":\"read_only\",\"auth_generation\":1}}",
         M8_EPARSE, 0, "empty user_id"},
        {ACTIVE_HEAD "\"principal\":{\"user_id\":\"u\\u0000x\",\"role\":\"reader\","
                     "\"access_mode\":\"read_only\",\"auth_generation\":1}}",
         M8_EPARSE, 0, "user_id with an embedded NUL"},
        {ACTIVE_HEAD "\"principal\":{\"role\":\"reader\",\"access_mode\":\"read_only\","
                     "\"auth_generation\":1}}",
         M8_EPARSE, 0, "no user_id"},
        {ACTIVE_HEAD "\"principal\":{\"user_id\":\"u\",\"role\":\"Reader\","
                     "\"access_mode\":\"read_only\",\"auth_generation\":1}}",
         M8_EPARSE, 0, "role not lower-case"},
        {ACTIVE_HEAD "\"principal\":{\"user_id\":\"u\",\"access_mode\":\"read_only\","
                     "\"auth_generation\":1}}",
         M8_EPARSE, 0, "no role"},
        {ACTIVE_HEAD "\"principal\":{\"user_id\":\"u\",\"role\":\"superadmin\","
                     "\"access_mode\":\"read_only\",\"auth_generation\":1}}",
         M8_EPARSE, 0, "superadmin without is_superuser (7.3 truth table)"},
        {ACTIVE_HEAD "\"principal\":{\"user_id\":\"u\",\"role\":\"admin\",\"is_superuser\":true,"
                     "\"access_mode\":\"read_only\",\"auth_generation\":1}}",
         M8_EPARSE, 0, "admin with is_superuser"},
        {ACTIVE_HEAD
         "\"principal\":{\"user_id\":\"u\",\"role\":\"superadmin\",\"is_superuser\":true,"
         "\"access_mode\":\"read_only\",\"auth_generation\":1}}",
         0, 1, "superadmin with is_superuser"},
        {ACTIVE_HEAD
         "\"principal\":{\"user_id\":\"u\",\"role\":\"user\",\"is_superuser\":\"false\","
         "\"access_mode\":\"read_only\",\"auth_generation\":1}}",
         M8_EPARSE, 0, "is_superuser as a string"},
        {ACTIVE_HEAD "\"principal\":{\"user_id\":\"u\",\"role\":\"user\","
                     "\"access_mode\":\"write\",\"auth_generation\":1}}",
         M8_EPARSE, 0, "access_mode unknown"},
        {ACTIVE_HEAD "\"principal\":{\"user_id\":\"u\",\"role\":\"user\",\"auth_generation\":1}}",
         M8_EPARSE, 0, "no access_mode"},
        {ACTIVE_HEAD PRINCIPAL("") ",\"x\":1}", 0, 1, "(control) same principal"},
        {ACTIVE_HEAD
         "\"principal\":{\"user_id\":\"u\",\"role\":\"user\",\"access_mode\":\"read_only\","
         "\"authentication_method\":\"password\",\"auth_generation\":1}}",
         M8_EPARSE, 0, "authentication_method password"},
        {ACTIVE_HEAD
         "\"principal\":{\"user_id\":\"u\",\"role\":\"user\",\"access_mode\":\"read_only\","
         "\"authentication_method\":null,\"auth_generation\":1}}",
         M8_EPARSE, 0, "authentication_method null"},
        {ACTIVE_HEAD
         "\"principal\":{\"user_id\":\"u\",\"role\":\"user\",\"access_mode\":\"read_only\","
         "\"auth_generation\":0}}",
         M8_EPARSE, 0, "auth_generation 0"},
        {ACTIVE_HEAD
         "\"principal\":{\"user_id\":\"u\",\"role\":\"user\",\"access_mode\":\"read_only\","
         "\"auth_generation\":1.0}}",
         M8_EPARSE, 0, "auth_generation 1.0"},
        {ACTIVE_HEAD
         "\"principal\":{\"user_id\":\"u\",\"role\":\"user\",\"access_mode\":\"read_only\","
         "\"auth_generation\":\"1\"}}",
         M8_EPARSE, 0, "auth_generation a string"},
        {ACTIVE_HEAD
         "\"principal\":{\"user_id\":\"u\",\"role\":\"user\",\"access_mode\":\"read_only\"}}",
         M8_EPARSE, 0, "no auth_generation"},
        {ACTIVE_HEAD PRINCIPAL("") ",\"key_expires_at\":\"2030-01-02T03:04:05Z\"}", 0, 1,
         "key_expires_at with Z"},
        {ACTIVE_HEAD PRINCIPAL("") ",\"key_expires_at\":\"2030-01-02T03:04:05.123456+02:00\"}", 0,
         1, "key_expires_at with fraction and offset"},
        {ACTIVE_HEAD PRINCIPAL("") ",\"key_expires_at\":\"2030-01-02 03:04\"}", 0, 1,
         "key_expires_at without seconds or zone"},
        {ACTIVE_HEAD PRINCIPAL("") ",\"key_expires_at\":\"2030-02-30T00:00:00Z\"}", M8_EPARSE, 0,
         "key_expires_at February 30"},
        {ACTIVE_HEAD PRINCIPAL("") ",\"key_expires_at\":\"2030-01-02\"}", M8_EPARSE, 0,
         "key_expires_at a date only"},
        {ACTIVE_HEAD PRINCIPAL("") ",\"key_expires_at\":\"soon\"}", M8_EPARSE, 0,
         "key_expires_at text"},
        {ACTIVE_HEAD PRINCIPAL("") ",\"key_expires_at\":\"2030-01-02T03:04:05Zx\"}", M8_EPARSE, 0,
         "key_expires_at with trailing bytes"},
        {ACTIVE_HEAD PRINCIPAL("") ",\"key_expires_at\":1893456000}", M8_EPARSE, 0,
         "key_expires_at a number"},
        {"{\"active\":false} x", M8_EPARSE, 0, "trailing bytes after the object"},
    };
    m8_arena a;
    m8_arena_init(&a, 1 << 20);
    for (size_t i = 0; i < M8_ARRAY_LEN(rows); i++) {
        bool active = true;
        m8_apikey_principal p;
        const char *why = NULL;
        int rc = m8_apikey_parse(rows[i].body, strlen(rows[i].body), &a, &active, &p, &why);
        if (rows[i].rc == 0)
            ok(rc == 0 && active == (rows[i].active != 0), "parse (B 4.4): %s -> %s", rows[i].what,
               rows[i].active ? "active" : "inactive");
        else
            ok(rc == M8_EPARSE && why && *why, "parse (B 4.4): %s -> malformed (%s)", rows[i].what,
               why ? why : "");
    }
    /* Depth: M8_APIKEY_JSON_DEPTH levels accepted in an extra member, one more refused. */
    char deep[256];
    for (int extra = 0; extra < 2; extra++) {
        int levels = M8_APIKEY_JSON_DEPTH - 1 + extra; /* plus the top object */
        size_t n = (size_t)snprintf(deep, sizeof deep, "{\"active\":false,\"x\":");
        for (int i = 0; i < levels; i++)
            deep[n++] = '[';
        for (int i = 0; i < levels; i++)
            deep[n++] = ']';
        deep[n++] = '}';
        deep[n] = '\0';
        bool active = true;
        m8_apikey_principal p;
        int rc = m8_apikey_parse(deep, n, &a, &active, &p, NULL);
        is_int(rc, extra ? M8_EPARSE : 0, "parse: nesting %d deep %s", levels + 1,
               extra ? "refused" : "accepted");
    }
    /* The principal's fields. */
    const char *b =
        ACTIVE_HEAD PRINCIPAL("") ",\"key_expires_at\":\"2030-01-02T03:04:05.5+01:00\"}";
    bool active = false;
    m8_apikey_principal p;
    ok(m8_apikey_parse(b, strlen(b), &a, &active, &p, NULL) == 0 && active, "parse: active");
    is_str(p.user_id, "u1", "parse: user_id");
    is_str(p.role, "writer", "parse: role");
    ok(!p.is_superuser, "parse: is_superuser");
    is_str(p.access_mode, "read_write", "parse: access_mode");
    is_int(p.auth_generation, 3, "parse: auth_generation");
    is_str(p.audience_id, "svc", "parse: audience_id");
    is_str(p.key_expires_at, "2030-01-02T03:04:05.5+01:00", "parse: key_expires_at text");
    ok(p.key_expires_ts == 1893549845.5, "parse: key_expires_at in epoch seconds (%.1f)",
       p.key_expires_ts);
    ok(p.can_read && p.can_write, "parse: a read_write writer can read and write");
    m8_arena_free(&a);
}

static void test_new(void)
{
    char err[256];
    m8_settings *s = settings(CLOSED_URL);
    s->api_key_introspection_enabled = false;
    ok(!m8_apikey_enabled(s), "new: disabled without API_KEY_INTROSPECTION_ENABLED");
    ok(m8_apikey_new(s, err, sizeof err) == NULL, "new: refused when disabled");
    s->api_key_introspection_enabled = true;
    ok(m8_apikey_enabled(s), "new: enabled");
    s->internal_client_id = "";
    ok(m8_apikey_new(s, err, sizeof err) == NULL, "new: no INTERNAL_CLIENT_ID (the audience)");
    like(err, "INTERNAL_CLIENT_ID", "new: ... named");
    s->internal_client_id = CLIENT;
    s->private_api_secret = NULL;
    ok(m8_apikey_new(s, err, sizeof err) == NULL, "new: no PRIVATE_API_SECRET");
    like(err, "PRIVATE_API_SECRET", "new: ... named");
    s->private_api_secret = SECRET;
    s->api_key_introspection_schema_version = "2";
    ok(m8_apikey_new(s, err, sizeof err) == NULL, "new: schema version 2 is not supported");
    s->api_key_introspection_schema_version = "1";
    s->introspection_url = NULL;
    ok(m8_apikey_new(s, err, sizeof err) == NULL, "new: no URL at all");
    like(err, "API_KEY_INTROSPECTION_URL", "new: ... named");
    s->api_key_introspection_url = "http://127.0.0.1:9/explicit";
    m8_apikey *k = make(s);
    ok(k != NULL, "new: the explicit API_KEY_INTROSPECTION_URL is enough");
    m8_apikey_free(k);
    s->api_key_introspection_url = NULL;
    s->introspection_url = CLOSED_URL;
    s->api_key_introspection_read_timeout = 31;
    ok(m8_apikey_new(s, err, sizeof err) == NULL, "new: a timeout out of (0, 30] is refused");
    s->api_key_introspection_read_timeout = 1.0;
    s->api_key_introspection_max_response_bytes = 255;
    ok(m8_apikey_new(s, err, sizeof err) == NULL, "new: MAX_RESPONSE_BYTES below 256 refused");
    s->api_key_introspection_max_response_bytes = 8192;
    ok(!strstr(err, SECRET), "new: errors never carry the secret");
    k = make(s);
    ok(k != NULL, "new: a valid configuration");
    drop(k, s);
}

/* Resolutions that never reach an issuer, and the breaker on a fake clock. */
static void test_local(void)
{
    m8_settings *s = settings(CLOSED_URL);
    s->api_key_introspection_circuit_failure_threshold = 3;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    m8_arena_reset(&arena);
    ok(!m8_apikey_resolve(k, NULL, 0, M8_APIKEY_READER, 1000, &arena, &ans), "no header: refused");
    is_str(outcome(), "401 missing", "no header: 401 missing (B 4.7)");
    is_str(ans.detail, "Invalid or expired API key", "no header: the detail");
    ok(!m8_apikey_resolve(k, "", 0, M8_APIKEY_READER, 1000, &arena, &ans) && ans.status == 401 &&
           ans.reason == M8_AK_MISSING,
       "empty header: 401 missing");
    char *big = malloc(M8_APIKEY_MAX_KEY_BYTES + 2);
    memset(big, 'k', M8_APIKEY_MAX_KEY_BYTES + 1);
    big[M8_APIKEY_MAX_KEY_BYTES + 1] = '\0';
    ok(!m8_apikey_resolve(k, big, M8_APIKEY_MAX_KEY_BYTES + 1, M8_APIKEY_READER, 1000, &arena,
                          &ans) &&
           ans.status == 401 && ans.reason == M8_AK_TOO_LONG,
       "a key of %u bytes: 401 key_too_long", M8_APIKEY_MAX_KEY_BYTES + 1);
    is_int(stats(k).requests, 0, "... none of these asked the issuer");
    free(big);

    /* Row 3 (connect refused: retried once), row 1 and the breaker. */
    double t0 = m8_now_mono();
    m8_arena_reset(&arena);
    m8_apikey_resolve(k, "key-1", 5, M8_APIKEY_READER, 1000, &arena, &ans);
    is_str(outcome(), "503 transport", "connect refused: 503 transport");
    is_str(ans.detail, "API key verification unavailable.", "connect refused: the detail");
    is_int(stats(k).requests, 2, "connect refused: the request never left, retried once");
    is_int(stats(k).failures, 1, "connect refused: one breaker failure");
    m8_apikey_resolve(k, "key-1", 5, M8_APIKEY_READER, 1001, &arena, &ans);
    is_int(stats(k).breaker, M8_AK_BREAKER_CLOSED, "breaker: closed below the threshold");
    m8_apikey_resolve(k, "key-1", 5, M8_APIKEY_READER, 1002, &arena, &ans);
    is_int(stats(k).breaker, M8_AK_BREAKER_OPEN, "breaker: open at the threshold (3)");
    is_int(stats(k).breaker_opens, 1, "breaker: opened once");
    unsigned long req = stats(k).requests;
    m8_apikey_resolve(k, "key-1", 5, M8_APIKEY_READER, 1002 + 29.9, &arena, &ans);
    is_str(outcome(), "503 circuit_open", "breaker: open -> 503 circuit_open");
    is_int(stats(k).requests, req, "breaker: ... without a request");
    /* (the clock of a failure is the call's start plus the time it took) */
    m8_apikey_resolve(k, "key-1", 5, M8_APIKEY_READER, 1002 + 30.5, &arena, &ans);
    is_str(outcome(), "503 transport", "breaker: after RESET_SECONDS the next call is admitted");
    is_int(stats(k).requests, req + 2, "breaker: ... and asks the issuer");
    is_int(stats(k).breaker, M8_AK_BREAKER_OPEN,
           "breaker: one more failure while half-open re-opens it at once");
    is_int(stats(k).breaker_opens, 2, "breaker: opened twice");
    m8_apikey_resolve(k, "key-1", 5, M8_APIKEY_READER, 1033, &arena, &ans);
    is_str(outcome(), "503 circuit_open", "breaker: ... for another RESET_SECONDS");
    ok(m8_now_mono() - t0 < 3.0, "connect failures are quick (%.2f s)", m8_now_mono() - t0);
    drop(k, s);
}

/* ------------------------------------------------------------ issuer.py */

static void ctl(const char *path, const char *body)
{
    json_object *o = iss_control(path, body);
    if (!o)
        diag("control %s %s failed", path, body ? body : "");
    json_object_put(o);
}

static void fault(const char *json)
{
    ctl("/_test/fault", json);
}

static void add_key(const char *json)
{
    ctl("/_test/apikey", json);
}

typedef struct {
    const char *what, *key_json, *key;
    m8_apikey_need need;
    const char *outcome;
    int failure_delta; /* breaker count change: 1 failure, 0 none, -1 reset (success) */
} row;

static void run_rows(m8_apikey *k, const row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        if (r->key_json)
            add_key(r->key_json);
        unsigned before = stats(k).failures;
        long calls = iss_count("apikey");
        resolve(k, r->key, r->need);
        is_str(outcome(), r->outcome, "%s -> %s", r->what, r->outcome);
        unsigned after = stats(k).failures;
        bool bok = r->failure_delta < 0 ? after == 0 : after == before + (unsigned)r->failure_delta;
        ok(bok, "%s: breaker %s (%u -> %u)", r->what,
           r->failure_delta < 0   ? "success"
           : r->failure_delta > 0 ? "failure"
                                  : "not counted",
           before, after);
        is_int(iss_count("apikey") - calls, 1, "%s: one introspection request", r->what);
    }
}

static void test_rows(void)
{
    snprintf(intro_url, sizeof intro_url, "%s/private/v1/jti-status", iss_base);
    m8_settings *s = settings(intro_url);
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    /* A failure first, so each success row proves it resets the count. */
    static const row rows[] = {
        {"row 13: an active reader key, reader route", "{\"key\":\"k-reader\",\"role\":\"reader\"}",
         "k-reader", M8_APIKEY_READER, "0 ok", -1},
        {"row 13: the bare principal", NULL, "k-reader", M8_APIKEY_PRINCIPAL, "0 ok", -1},
        {"B 4.6: a reader key on a writer route", NULL, "k-reader", M8_APIKEY_WRITER,
         "403 insufficient_capability", -1},
        {"B 4.6: a read_only writer on a writer route",
         "{\"key\":\"k-writer-ro\",\"role\":\"writer\",\"access_mode\":\"read_only\"}",
         "k-writer-ro", M8_APIKEY_WRITER, "403 insufficient_capability", -1},
        {"B 4.6: a read_write writer on a writer route",
         "{\"key\":\"k-writer\",\"role\":\"writer\",\"capabilities\":[\"read\",\"write\"]}",
         "k-writer", M8_APIKEY_WRITER, "0 ok", -1},
        {"B 4.6: a user-role key on a reader route", "{\"key\":\"k-user\",\"role\":\"user\"}",
         "k-user", M8_APIKEY_READER, "403 insufficient_capability", -1},
        {"B 4.6: a superadmin key on a writer route",
         "{\"key\":\"k-sa\",\"role\":\"superadmin\",\"access_mode\":\"read_write\"}", "k-sa",
         M8_APIKEY_WRITER, "0 ok", -1},
        {"row 11: an unknown key", NULL, "k-unknown", M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: a revoked key", "{\"key\":\"k-revoked\",\"state\":\"revoked\"}", "k-revoked",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: an expired key", "{\"key\":\"k-expired\",\"state\":\"expired\"}", "k-expired",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: expires_at passed", "{\"key\":\"k-past\",\"expires_in\":-5}", "k-past",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: owner inactive", "{\"key\":\"k-oi\",\"state\":\"owner_inactive\"}", "k-oi",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: owner missing", "{\"key\":\"k-om\",\"state\":\"owner_missing\"}", "k-om",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: audience not bound", "{\"key\":\"k-aud\",\"audiences\":[\"other\"]}", "k-aud",
         M8_APIKEY_READER, "401 inactive", -1},
        {"row 11: audience bound", "{\"key\":\"k-aud2\",\"audiences\":[\"" CLIENT "\"]}", "k-aud2",
         M8_APIKEY_READER, "0 ok", -1},
        {"row 12: another audience_id echoed", "{\"key\":\"k-mis\",\"audience_id\":\"other\"}",
         "k-mis", M8_APIKEY_READER, "503 audience_mismatch", -1},
        {"row 5: the key's 429", "{\"key\":\"k-429\",\"state\":\"rate_limited\"}", "k-429",
         M8_APIKEY_READER, "429 quota_exceeded", 0},
        {"row 9: schema_version 2 in the answer",
         "{\"key\":\"k-v2\",\"override\":{\"schema_version\":\"2\"}}", "k-v2", M8_APIKEY_READER,
         "503 malformed_response", 0},
        {"row 9: principal null", "{\"key\":\"k-np\",\"override\":{\"principal\":null}}", "k-np",
         M8_APIKEY_READER, "503 malformed_response", 0},
        {"row 9: superadmin without the flag",
         "{\"key\":\"k-bad-pair\",\"role\":\"superadmin\",\"is_superuser\":false}", "k-bad-pair",
         M8_APIKEY_READER, "503 malformed_response", 0},
        {"row 9: key_expires_at not a date",
         "{\"key\":\"k-bad-exp\",\"override\":{\"key_expires_at\":\"tomorrow\"}}", "k-bad-exp",
         M8_APIKEY_READER, "503 malformed_response", 0},
        {"row 8: 418 from the issuer",
         "{\"key\":\"k-418\",\"status\":418,\"body\":{\"detail\":\"teapot\"}}", "k-418",
         M8_APIKEY_READER, "503 unexpected_status", 1},
        {"row 8: 201 from the issuer",
         "{\"key\":\"k-201\",\"status\":201,\"body\":{\"active\":false}}", "k-201",
         M8_APIKEY_READER, "503 unexpected_status", 1},
        {"row 7: 500 with a body", "{\"key\":\"k-500\",\"status\":500,\"body\":{\"detail\":\"x\"}}",
         "k-500", M8_APIKEY_READER, "503 issuer_unavailable", 1},
        {"row 10: a success closes the count", NULL, "k-reader", M8_APIKEY_READER, "0 ok", -1},
    };
    run_rows(k, rows, M8_ARRAY_LEN(rows));

    /* The principal and the request of B 4.3. */
    add_key("{\"key\":\"k-full\",\"user_id\":\"6f1c2a9e-0000-4000-8000-000000000001\","
            "\"role\":\"writer\",\"access_mode\":\"read_write\",\"expires_at\":"
            "\"2031-05-06T07:08:09Z\"}");
    ok(resolve(k, "k-full", M8_APIKEY_WRITER), "principal: a writer key resolves");
    const m8_apikey_principal *p = &ans.principal;
    is_str(p->user_id, "6f1c2a9e-0000-4000-8000-000000000001", "principal: the owner");
    is_str(p->role, "writer", "principal: the role");
    is_str(p->access_mode, "read_write", "principal: the access mode");
    ok(p->can_read && p->can_write, "principal: reader and writer capabilities");
    is_str(p->audience_id, CLIENT, "principal: audience_id = INTERNAL_CLIENT_ID");
    is_int(p->auth_generation, 1, "principal: auth_generation");
    is_str(p->key_expires_at, "2031-05-06T07:08:09Z", "principal: key_expires_at");
    ok(p->key_expires_ts == 1935817689.0, "principal: key_expires_at parsed (%.0f)",
       p->key_expires_ts);
    ok(strlen(p->key_id) == 19 && strncmp(p->key_id, "ak_", 3) == 0 &&
           strspn(p->key_id + 3, "0123456789abcdef") == 16,
       "principal: key_id is ak_ + 16 hex digits (%s)", p->key_id);
    ok(ans.detail == NULL && ans.status == 0, "principal: no answer to send");

    json_object *st = iss_control("/_test/stats", NULL), *last = NULL, *v;
    bool got = st && json_object_object_get_ex(st, "last", &last) &&
               json_object_object_get_ex(last, "apikey", &last);
    const char *body =
        got && json_object_object_get_ex(last, "body", &v) ? json_object_get_string(v) : "";
    is_str(body, "{\"api_key\":\"k-full\",\"schema_version\":\"1\"}",
           "request: the body of B 4.3, compact");
    const char *method =
        got && json_object_object_get_ex(last, "method", &v) ? json_object_get_string(v) : "";
    is_str(method, "POST", "request: POST");
    const char *path =
        got && json_object_object_get_ex(last, "path", &v) ? json_object_get_string(v) : "";
    is_str(path, "/private/v1/api-keys/introspect",
           "request: the URL derived from INTROSPECTION_URL; the key is not in it");
    json_object *hd = NULL;
    got = got && json_object_object_get_ex(last, "headers", &hd);
    const char *ct =
        got && json_object_object_get_ex(hd, "Content-Type", &v) ? json_object_get_string(v) : "";
    is_str(ct, "application/json", "request: Content-Type application/json");
    const char *cid = got && json_object_object_get_ex(hd, "X-Internal-Client", &v)
                          ? json_object_get_string(v)
                          : "";
    is_str(cid, CLIENT, "request: bootstrap mode sends X-Internal-Client (B 3.2)");
    ok(got && json_object_object_get_ex(hd, "X-Internal-Token", NULL),
       "request: ... and X-Internal-Token");
    json_object_put(st);

    /* Nothing cached. */
    long calls = iss_count("apikey");
    resolve(k, "k-full", M8_APIKEY_READER);
    resolve(k, "k-full", M8_APIKEY_READER);
    is_int(iss_count("apikey") - calls, 2, "no cache: every resolution asks the issuer");
    add_key("{\"key\":\"k-full\",\"state\":\"revoked\"}");
    resolve(k, "k-full", M8_APIKEY_READER);
    is_str(outcome(), "401 inactive", "no cache: a key revoked at the issuer is refused at once");

    /* Row 5 details: Retry-After passed through verbatim, or absent. */
    resolve(k, "k-429", M8_APIKEY_READER);
    is_str(ans.retry_after, "30", "row 5: Retry-After passed through");
    is_str(ans.detail, "API key rate limit exceeded", "row 5: the 429 detail");
    add_key("{\"key\":\"k-429b\",\"state\":\"rate_limited\",\"retry_after\":null}");
    resolve(k, "k-429b", M8_APIKEY_READER);
    ok(ans.status == 429 && ans.retry_after[0] == '\0', "row 5: 429 without Retry-After -> none");
    add_key("{\"key\":\"k-429c\",\"state\":\"rate_limited\","
            "\"retry_after\":\"Wed, 21 Oct 2015 07:28:00 GMT\"}");
    resolve(k, "k-429c", M8_APIKEY_READER);
    is_str(ans.retry_after, "Wed, 21 Oct 2015 07:28:00 GMT", "row 5: an HTTP-date copied as is");
    add_key("{\"key\":\"k-quota\",\"quota\":{\"limit\":1,\"period\":\"minute\"}}");
    resolve(k, "k-quota", M8_APIKEY_READER);
    resolve(k, "k-quota", M8_APIKEY_READER);
    ok(ans.status == 429 && ans.retry_after[0] >= '1' && ans.retry_after[0] <= '9',
       "row 5: the key's own quota, 429 with the computed Retry-After (%s)", ans.retry_after);
    fault("{\"target\":\"apikey\",\"mode\":\"status:429\",\"count\":1}");
    resolve(k, "k-reader", M8_APIKEY_READER);
    ok(ans.status == 429 && strcmp(ans.retry_after, "60") == 0,
       "row 5: the per-consumer limit, 429 with Retry-After: 60");

    /* Faults: rows 3, 6, 7, 8, 9. */
    static const struct {
        const char *mode, *outcome;
        int failure;
    } faults[] = {
        {"status:500", "503 issuer_unavailable", 1},
        {"status:502", "503 issuer_unavailable", 1},
        {"status:503", "503 issuer_unavailable", 1},
        {"status:301", "503 unexpected_status", 1},
        {"status:302", "503 unexpected_status", 1},
        {"status:204", "503 unexpected_status", 1},
        {"status:404", "503 unexpected_status", 1},
        {"status:400", "503 unexpected_status", 1},
        {"status:401", "503 consumer_unauthorized", 0},
        {"status:403", "503 consumer_unauthorized", 0},
        {"malformed:json", "503 malformed_response", 0},
        {"malformed:schema", "503 malformed_response", 0},
        {"malformed:version", "503 malformed_response", 0},
        {"malformed:inconsistent", "503 malformed_response", 0},
        {"malformed:method", "503 malformed_response", 0},
        {"down", "503 transport", 1},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(faults); i++) {
        char f[160];
        snprintf(f, sizeof f, "{\"target\":\"apikey\",\"mode\":\"%s\",\"count\":1}",
                 faults[i].mode);
        fault(f);
        /* "down" hangs up after reading the request.  On a kept-alive
         * connection libcurl takes that for a connection closed while idle
         * and sends the request again on a new one (see below), so this row
         * starts on a fresh connection. */
        if (strcmp(faults[i].mode, "down") == 0)
            m8_httpc_thread_cleanup();
        unsigned before = stats(k).failures;
        long n = iss_count("apikey");
        resolve(k, "k-reader", M8_APIKEY_READER);
        is_str(outcome(), faults[i].outcome, "fault %s -> %s", faults[i].mode, faults[i].outcome);
        is_int(stats(k).failures - before, faults[i].failure, "fault %s: breaker %s",
               faults[i].mode, faults[i].failure ? "failure" : "not counted");
        is_int(iss_count("apikey") - n, 1, "fault %s: one request, never retried", faults[i].mode);
    }
    ok(resolve(k, "k-reader", M8_APIKEY_READER) && stats(k).failures == 0,
       "faults cleared: the next success resets the count");
    /* The same on a kept-alive connection: still a transport failure, and
     * the request is not re-sent on a new connection (it may have used
     * quota: B 4.5 row 3). */
    fault("{\"target\":\"apikey\",\"mode\":\"down\",\"count\":2}");
    long n0 = iss_count("apikey");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 transport", "fault down on a kept-alive connection -> 503 transport");
    is_int(iss_count("apikey") - n0, 1,
           "down on a kept-alive connection: the issuer saw the request once (never re-sent)");
    fault("{\"target\":\"apikey\",\"mode\":\"ok\"}");
    resolve(k, "k-reader", M8_APIKEY_READER);
    drop(k, s);
}

/* Row 4: the response cap, exactly at and one past, whatever the status. */
static void test_too_large(void)
{
    m8_settings *s = settings(intro_url);
    s->api_key_introspection_max_response_bytes = 1024;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    add_key("{\"key\":\"k-pad\",\"pad\":1024}");
    ok(resolve(k, "k-pad", M8_APIKEY_READER), "row 4: an answer of exactly 1024 bytes is read");
    add_key("{\"key\":\"k-pad\",\"pad\":1025}");
    resolve(k, "k-pad", M8_APIKEY_READER);
    is_str(outcome(), "503 response_too_large", "row 4: 1025 bytes -> 503 response_too_large");
    is_int(stats(k).failures, 0, "row 4: no breaker count");
    char big[1400];
    memset(big, 'x', 1100);
    big[1100] = '\0';
    char json[1600];
    snprintf(json, sizeof json, "{\"key\":\"k-big500\",\"status\":500,\"body\":\"%s\"}", big);
    add_key(json);
    resolve(k, "k-big500", M8_APIKEY_READER);
    is_str(outcome(), "503 response_too_large",
           "row 4 before row 7: a 500 with an oversized body is response_too_large");
    is_int(stats(k).failures, 0, "row 4: ... and not a breaker failure");
    fault("{\"target\":\"apikey\",\"mode\":\"big:5000\",\"count\":1}");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 response_too_large", "row 4: fault big:5000");
    drop(k, s);
}

/* Row 3 with time bounds: a slow issuer. */
static void test_slow(void)
{
    m8_settings *s = settings(intro_url);
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    fault("{\"target\":\"apikey\",\"mode\":\"slow:2.5\",\"count\":1}");
    long n = iss_count("apikey");
    double t0 = m8_now_mono();
    resolve(k, "k-reader", M8_APIKEY_READER);
    double took = m8_now_mono() - t0;
    is_str(outcome(), "503 transport", "slow issuer: 503 transport");
    ok(took >= 1.2 && took < 2.5,
       "slow issuer: bounded by connect + read timeouts (0.5 + 1.0 s; took %.2f s)", took);
    is_int(stats(k).failures, 1, "slow issuer: a breaker failure");
    is_int(iss_count("apikey") - n, 1, "slow issuer: not retried (the request may have arrived)");
    sleep_ms(1000); /* let the slow handler finish */
    drop(k, s);
}

/* Row 2: the concurrency limit. */
typedef struct {
    m8_apikey *k;
    bool ok;
    m8_apikey_answer a;
} slow_call;

static void *slow_thread(void *data)
{
    slow_call *c = data;
    m8_arena a;
    m8_arena_init(&a, 1 << 16);
    c->ok = m8_apikey_resolve(c->k, "k-reader", 8, M8_APIKEY_READER, m8_now_mono(), &a, &c->a);
    m8_arena_free(&a);
    m8_httpc_thread_cleanup();
    return NULL;
}

static void test_load_shed(void)
{
    m8_settings *s = settings(intro_url);
    s->api_key_introspection_max_concurrency = 1;
    s->api_key_introspection_pool_timeout = 0.3;
    s->api_key_introspection_read_timeout = 5.0;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    fault("{\"target\":\"apikey\",\"mode\":\"slow:1.2\",\"count\":1}");
    slow_call c = {.k = k};
    pthread_t th;
    pthread_create(&th, NULL, slow_thread, &c);
    sleep_ms(300);
    double t0 = m8_now_mono();
    resolve(k, "k-reader", M8_APIKEY_READER);
    double took = m8_now_mono() - t0;
    is_str(outcome(), "503 load_shed", "row 2: no slot within POOL_TIMEOUT -> 503 load_shed");
    ok(took >= 0.25 && took < 0.8, "row 2: ... after POOL_TIMEOUT (0.3 s; took %.2f s)", took);
    pthread_join(th, NULL);
    ok(c.ok, "row 2: the call holding the slot succeeds");
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "row 2: the slot is given back");
    is_int(stats(k).failures, 0, "row 2: load shedding is not a breaker failure");
    drop(k, s);
}

/* The breaker on the real clock against the issuer. */
static void test_breaker(void)
{
    m8_settings *s = settings(intro_url);
    s->api_key_introspection_circuit_failure_threshold = 2;
    s->api_key_introspection_circuit_reset_seconds = 0.4;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    fault("{\"target\":\"apikey\",\"mode\":\"status:503\",\"count\":3}");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_int(stats(k).breaker, M8_AK_BREAKER_CLOSED, "breaker (issuer): one 503, still closed");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_int(stats(k).breaker, M8_AK_BREAKER_OPEN, "breaker (issuer): two 503s open it");
    long n = iss_count("apikey");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 circuit_open", "breaker (issuer): open -> circuit_open");
    is_int(iss_count("apikey") - n, 0, "breaker (issuer): ... the issuer is not called");
    sleep_ms(450);
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 issuer_unavailable", "breaker (issuer): half-open after the reset time");
    is_int(stats(k).breaker, M8_AK_BREAKER_OPEN, "breaker (issuer): one failure re-opens it");
    sleep_ms(450);
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "breaker (issuer): half-open, then a success");
    m8_apikey_stats st = stats(k);
    ok(st.breaker == M8_AK_BREAKER_CLOSED && st.failures == 0, "breaker (issuer): ... closes it");
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "breaker (issuer): closed, calls go through");
    drop(k, s);
}

/* The service-token mode (B 3.3) with the 401 re-mint. */
static void test_service_token(void)
{
    m8_settings *s = settings(intro_url);
    s->service_token_exchange_enabled = true;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    long minted = iss_count("token");
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "service token: a key resolves");
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "service token: again");
    is_int(iss_count("token") - minted, 1, "service token: minted once, reused");
    ctl("/_test/revoke_service_tokens", "{}");
    long n = iss_count("apikey");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 consumer_unauthorized",
           "service token: a 401 -> 503 consumer_unauthorized, no retry (B 3.3)");
    is_int(iss_count("apikey") - n, 1, "service token: ... one request");
    is_int(stats(k).failures, 0, "service token: ... no breaker count");
    ok(resolve(k, "k-reader", M8_APIKEY_READER),
       "service token: the next request re-mints and resolves");
    is_int(iss_count("token") - minted, 2, "service token: ... with one new exchange");
    fault("{\"target\":\"token\",\"mode\":\"status:403\"}");
    ctl("/_test/revoke_service_tokens", "{}");
    resolve(k, "k-reader", M8_APIKEY_READER); /* 401: drops the token */
    resolve(k, "k-reader", M8_APIKEY_READER);
    ok(ans.status == 503 && ans.reason == M8_AK_CONSUMER_UNAUTHORIZED && ans.issuer_status == 403,
       "service token: an exchange refused with 403 -> 503 consumer_unauthorized");
    fault("{\"target\":\"token\",\"mode\":\"down\"}");
    resolve(k, "k-reader", M8_APIKEY_READER);
    is_str(outcome(), "503 transport", "service token: the exchange cannot be made -> transport");
    is_int(stats(k).failures, 1, "service token: ... a breaker failure");
    fault("{\"target\":\"token\",\"mode\":\"ok\"}");
    ok(resolve(k, "k-reader", M8_APIKEY_READER), "service token: the exchange is back");
    drop(k, s);

    /* Without the api-key-introspection scope, the issuer answers 403. */
    ctl("/_test/client",
        "{\"client_id\":\"noscope\",\"secret\":\"" SECRET "\",\"scopes\":[\"introspection\"]}");
    s = settings(intro_url);
    s->internal_client_id = "noscope";
    k = make(s);
    if (k) {
        resolve(k, "k-reader", M8_APIKEY_READER);
        ok(ans.status == 503 && ans.reason == M8_AK_CONSUMER_UNAUTHORIZED &&
               ans.issuer_status == 403,
           "row 6: no api-key-introspection scope (403) -> 503 consumer_unauthorized");
    }
    drop(k, s);
    s = settings(intro_url);
    s->private_api_secret = "Wrong-Bootstrap-Secret-0123456789abcdef";
    k = make(s);
    if (k) {
        resolve(k, "k-reader", M8_APIKEY_READER);
        ok(ans.status == 503 && ans.reason == M8_AK_CONSUMER_UNAUTHORIZED &&
               ans.issuer_status == 401,
           "row 6: a refused credential (401) -> 503 consumer_unauthorized");
    }
    drop(k, s);
}

/* Keys at the length limit and with bytes >= 0x80. */
static void test_keys(void)
{
    m8_settings *s = settings(intro_url);
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    char key[M8_APIKEY_MAX_KEY_BYTES + 2];
    memset(key, 'L', M8_APIKEY_MAX_KEY_BYTES);
    key[M8_APIKEY_MAX_KEY_BYTES] = '\0';
    char json[M8_APIKEY_MAX_KEY_BYTES + 64];
    snprintf(json, sizeof json, "{\"key\":\"%s\"}", key);
    add_key(json);
    ok(resolve(k, key, M8_APIKEY_READER), "key length: %u bytes are sent and resolve",
       M8_APIKEY_MAX_KEY_BYTES);
    long n = iss_count("apikey");
    key[M8_APIKEY_MAX_KEY_BYTES] = 'L';
    key[M8_APIKEY_MAX_KEY_BYTES + 1] = '\0';
    resolve(k, key, M8_APIKEY_READER);
    is_str(outcome(), "401 key_too_long", "key length: one more byte -> 401 without a call");
    is_int(iss_count("apikey") - n, 0, "key length: ... the issuer is not asked");
    /* The header's bytes read as Latin-1, as Starlette does: 0xE9 is U+00E9. */
    add_key("{\"key\":\"k-caf\\u00e9\\\"q\\\\\"}");
    ok(resolve(k, "k-caf\xe9\"q\\", M8_APIKEY_READER),
       "key bytes: a Latin-1 byte and JSON escapes reach the issuer as Python sends them");
    ok(!resolve(k, "k-caf\xc3\xa9\"q\\", M8_APIKEY_READER) && ans.reason == M8_AK_INACTIVE,
       "key bytes: ... the UTF-8 bytes are another key");
    ok(!resolve(k, " k-reader", M8_APIKEY_READER) && ans.reason == M8_AK_INACTIVE,
       "key bytes: the value is used as is (no trimming)");
    drop(k, s);
}

/* Many threads at once (the breaker and the slots under contention). */
typedef struct {
    m8_apikey *k;
    int okays;
} hammer;

static void *hammer_thread(void *data)
{
    hammer *h = data;
    m8_arena a;
    m8_arena_init(&a, 1 << 16);
    for (int i = 0; i < 10; i++) {
        m8_apikey_answer an;
        m8_arena_reset(&a);
        if (m8_apikey_resolve(h->k, "k-reader", 8, M8_APIKEY_READER, m8_now_mono(), &a, &an))
            h->okays++;
    }
    m8_arena_free(&a);
    m8_httpc_thread_cleanup();
    return NULL;
}

static void test_threads(void)
{
    m8_settings *s = settings(intro_url);
    s->api_key_introspection_max_concurrency = 4;
    s->api_key_introspection_pool_timeout = 10;
    s->api_key_introspection_read_timeout = 5;
    m8_apikey *k = make(s);
    if (!k) {
        drop(k, s);
        return;
    }
    long n = iss_count("apikey");
    hammer h[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (hammer){.k = k};
        pthread_create(&th[i], NULL, hammer_thread, &h[i]);
    }
    int total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        total += h[i].okays;
    }
    is_int(total, 80, "threads: 8 x 10 concurrent resolutions all succeed");
    is_int(iss_count("apikey") - n, 80, "threads: ... one request each");
    is_int(stats(k).resolutions, 80, "threads: ... counted");
    drop(k, s);
}

static void test_issuer(void)
{
    if (iss_python_ok() != 0) {
        diag("SKIP the issuer part: /usr/bin/python3 lacks jwt/cryptography");
        return;
    }
    if (iss_start("apikey", (const char *const[]){"--client", CLIENT "=" SECRET, NULL}) != 0) {
        ok(0, "tests/tools/issuer.py starts");
        return;
    }
    char logpath[] = "/tmp/m8-apikey-log-XXXXXX";
    int fd = mkstemp(logpath);
    m8_log_set_fd(fd);
    m8_log_set_level(M8_LOG_INFO);
    m8_log_limit_config(1u << 30, 1e9, NULL); /* every line, to match them with refusals */
    unsigned long before = refusals_total;
    test_rows();
    test_too_large();
    test_slow();
    test_load_shed();
    test_breaker();
    test_service_token();
    test_keys();
    test_threads();
    m8_log_set_level(M8_LOG_CRITICAL);
    m8_log_set_fd(-1);
    size_t len = 0;
    char *buf = NULL;
    if (m8_read_file(logpath, 1 << 24, true, &buf, &len) != 0)
        buf = NULL;
    close(fd);
    unlink(logpath);
    const char *b = buf ? buf : "";
    unsigned long lines = 0;
    for (const char *p = b; (p = strstr(p, "\"api_key.refused\"")) != NULL; p++)
        lines++;
    is_int(lines, refusals_total - before, "logs: one api_key.refused line per refusal (%lu)",
           lines);
    like(b, "\"reason\":\"circuit_open\"", "logs: the line names the reason code");
    like(b, "\"expected_audience\":\"" CLIENT "\"", "logs: audience_mismatch names the audience");
    ok(!strstr(b, "k-reader") && !strstr(b, "k-caf") && !strstr(b, "k-429") &&
           !strstr(b, "LLLLLLLL") && !strstr(b, "k-full"),
       "logs: never a key");
    ok(!strstr(b, SECRET) && !strstr(b, "Wrong-Bootstrap"), "logs: never a secret");
    free(buf);
    iss_stop();
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    m8_httpc_global_init();
    m8_log_set_level(M8_LOG_CRITICAL);
    m8_arena_init(&arena, 1 << 20);
    test_names();
    test_capability();
    test_audit();
    test_parse();
    test_new();
    test_local();
    test_issuer();
    m8_arena_free(&arena);
    m8_httpc_thread_cleanup();
    return done_testing();
}
