/* test_apikey_local.c - the API-key principal without an issuer:
 * reason names, the capability decision, the boot audit, the v1 schema,
 * construction, the local refusals. */

#include "config.h"

#include "test_apikey.h"

#define CLOSED_URL "http://127.0.0.1:9/private/v1/jti-status" /* nothing listens on 9 */

/* ------------------------------------------------------------ pure parts */

void test_names(void)
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
    ok(all, "names: every reason has its documented code (circuit_open, load_shed, ...)");
    ok(m8_apikey_need_role(M8_APIKEY_PRINCIPAL) == NULL, "names: the bare principal needs no role");
    is_str(m8_apikey_need_role(M8_APIKEY_READER), "reader", "names: reader");
    is_str(m8_apikey_need_role(M8_APIKEY_WRITER), "writer", "names: writer");
}

void test_capability(void)
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
               rows[i].want, "capability: %s%s %s, required %s -> %d", rows[i].role,
               rows[i].su ? "+superuser" : "", rows[i].mode ? rows[i].mode : "(none)",
               rows[i].need ? rows[i].need : "(none)", rows[i].want);
}

void test_audit(void)
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
    ok(m != NULL,
       "audit: an API-key admin requirement is a wiring error (doc/wire.md#capabilities)");
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

void test_parse(void)
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
            ok(rc == 0 && active == (rows[i].active != 0), "parse: %s -> %s", rows[i].what,
               rows[i].active ? "active" : "inactive");
        else
            ok(rc == M8_EPARSE && why && *why, "parse: %s -> malformed (%s)", rows[i].what,
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

void test_new(void)
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
void test_local(void)
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
    is_str(outcome(), "401 missing", "no header: 401 missing (doc/responses.md#api-key-failures)");
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
