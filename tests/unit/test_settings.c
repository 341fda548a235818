/* test_settings.c - settings loading and validation (CONTRACT.md Part A 1,
 * Decisions D1-D5, Part B 5.3/5.4).  Temporary files live in a mkdtemp dir. */
#include "config.h"

#include "tap.h"
#include "testenv.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static m8_settings *S;
static m8_errlist E;
static char dir[64];

static const char *const SECRET = "Leak-Me-S3cret-Value-XYZ-0123456789!";

static void reset(void)
{
    m8_settings_free(S);
    S = NULL;
    m8_errlist_free(&E);
}

static m8_settings *load_src(const m8_settings_source *src)
{
    reset();
    S = m8_settings_load(src, &E);
    return S;
}

static m8_settings *load(char **env)
{
    reset();
    S = m8t_settings(env, &E);
    return S;
}

#define LOAD(...) load(m8t_env(__VA_ARGS__, NULL))

/* The error lines joined (for like()). */
static const char *errs(void)
{
    static char buf[8192];
    buf[0] = '\0';
    for (size_t i = 0; i < E.n; i++) {
        strncat(buf, E.lines[i], sizeof buf - strlen(buf) - 2);
        strncat(buf, "\n", sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

static bool leaks(const char *secret)
{
    for (size_t i = 0; i < E.n; i++) {
        if (strstr(E.lines[i], secret))
            return true;
    }
    return false;
}

static const char *put_file(const char *name, const char *text)
{
    static char path[8][256];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 256, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return p;
}

/* "NAME=value"; kept in a pool that main() frees at the end. */
static char **pool;
static size_t npool;

static char *ov(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s=%s", name, value);
    char **np = realloc(pool, (npool + 1) * sizeof *np);
    if (np) {
        pool = np;
        pool[npool++] = s;
    }
    return s;
}

/* One env-level case: NAME=value loads or fails. */
static void expect_ok(const char *name, const char *value)
{
    char *o = ov(name, value);
    ok(LOAD(o) != NULL, "%s=%s is accepted", name, value);
    if (!S)
        diag("%s", errs());
}

static void expect_bad(const char *name, const char *value, const char *needle)
{
    char *o = ov(name, value);
    ok(LOAD(o) == NULL, "%s=%s is rejected", name, value);
    like(errs(), needle, "  error names %s", needle);
}

static int sh(const char *cmd)
{
    return system(cmd);
}

static void test_base_and_defaults(void)
{
    ok(LOAD("-NOTHING") != NULL, "the testenv base environment loads");
    if (!S) {
        diag("%s", errs());
        return;
    }
    is_str(S->env_file_used, "/dev/null", "env_file_used is the explicit env file");
    ok(S->set_open_api && S->set_docs && S->set_redoc,
       "SET_OPEN_API/SET_DOCS/SET_REDOC default true");
    ok(!S->serve_docs_in_production, "SERVE_DOCS_IN_PRODUCTION defaults to false");
    is_int(S->auth_service_role, M8_ROLE_CONSUMER, "AUTH_SERVICE_ROLE defaults to consumer (D3)");
    is_int(S->auth_invalid_token_status, 401, "AUTH_INVALID_TOKEN_STATUS defaults to 401 (D6)");
    is_int(S->jwks_cache_ttl_seconds, 300, "JWKS_CACHE_TTL_SECONDS defaults to 300");
    is_int(S->jwks_max_stale_seconds, 86400, "JWKS_MAX_STALE_SECONDS defaults to 86400 (a day)");
    is_int(S->access_token_expire_minutes, 30, "ACCESS_TOKEN_EXPIRE_MINUTES defaults to 30");
    is_int(S->refresh_token_expire_minutes, 120, "REFRESH_TOKEN_EXPIRE_MINUTES defaults to 120");
    is_int(S->refresh_token_cookie_expire_seconds, 3600,
           "REFRESH_TOKEN_COOKIE_EXPIRE_SECONDS 3600");
    is_str(S->refresh_token_algorithm, "HS256", "REFRESH_TOKEN_ALGORITHM defaults to HS256");
    ok(!S->strict_production_mode && !S->allow_internal_http, "strict and internal-http off");
    ok(S->session_cookie_secure && S->security_headers_enabled, "cookie secure, headers on");
    ok(!S->hsts_enabled && S->hsts_include_subdomains, "HSTS off, include subdomains on");
    is_int(S->hsts_max_age, 31536000, "HSTS_MAX_AGE defaults to 31536000");
    ok(!S->content_security_policy_enabled && !S->content_security_policy, "CSP off and unset");
    is_str(S->referrer_policy, "strict-origin-when-cross-origin", "REFERRER_POLICY default");
    is_str(S->permissions_policy,
           "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
           "microphone=(), payment=(), usb=()",
           "PERMISSIONS_POLICY default");
    ok(S->event_signing_enabled && !S->event_signing_accept_unsigned, "event signing defaults");
    ok(!S->auth_strict_mode, "AUTH_STRICT_MODE defaults to false");
    is_int(S->access_revocation_failure_mode, M8_FAIL_CLOSED, "ACCESS_REVOCATION fail_closed");
    is_int(S->refresh_validation_failure_mode, M8_FAIL_CLOSED, "REFRESH_VALIDATION fail_closed");
    is_int(S->session_write_failure_mode, M8_FAIL_CLOSED, "SESSION_WRITE fail_closed");
    is_int(S->rate_limit_failure_mode, M8_FAIL_OPEN, "RATE_LIMIT fail_open");
    is_int(S->selected_db, M8_DB_MYSQL, "SELECTED_DB defaults to Mysql");
    ok(!S->selected_db_set, "SELECTED_DB not marked as set");
    is_str(S->db_engine, "InnoDB", "DB_ENGINE default");
    is_str(S->db_charset, "utf8mb4", "DB_CHARSET default");
    is_str(S->tables_prefix, "app", "TABLES_PREFIX default");
    ok(!S->redis_port_set && !S->redis_ssl, "Redis unset");
    is_int(S->login_rate_limit_requests, 5, "LOGIN_RATE_LIMIT_REQUESTS default 5");
    is_int(S->login_rate_limit_window_minutes, 15, "LOGIN_RATE_LIMIT_WINDOW_MINUTES default 15");
    is_int(S->refresh_rate_limit_requests, 10, "REFRESH_RATE_LIMIT_REQUESTS default 10");
    is_int(S->refresh_rate_limit_window_minutes, 5, "REFRESH_RATE_LIMIT_WINDOW_MINUTES default 5");
    is_int(S->smtp_port, 587, "SMTP_PORT default 587");
    is_str(S->email_test_user, "test@example.com", "EMAIL_TEST_USER default");
    ok(!S->metrics_enabled, "METRICS_ENABLED default false");
    is_str(S->metrics_groups, "all", "METRICS_GROUPS default all");
    is_str(S->auth_prefix, "/auth", "AUTH_PREFIX default /auth");
    ok(S->event_stream_connect_timeout == 5.0, "EVENT_STREAM_CONNECT_TIMEOUT default 5.0");
    ok(S->event_stream_read_timeout == 60.0, "EVENT_STREAM_READ_TIMEOUT default 60.0");
    is_int(S->revocation_cache_ttl_seconds, 0, "REVOCATION_CACHE_TTL_SECONDS default 0 (D16)");
    is_int(S->service_token_scopes.n, 0, "SERVICE_TOKEN_SCOPES unset");
    is_int(S->service_token_refresh_leeway_seconds, 30, "SERVICE_TOKEN_REFRESH_LEEWAY default 30");
    ok(S->api_key_introspection_connect_timeout == 2.0 &&
           S->api_key_introspection_read_timeout == 3.0 &&
           S->api_key_introspection_pool_timeout == 2.0,
       "API key introspection timeouts 2.0/3.0/2.0");
    is_int(S->api_key_introspection_max_concurrency, 20, "MAX_CONCURRENCY default 20");
    is_int(S->api_key_introspection_max_response_bytes, 8192, "MAX_RESPONSE_BYTES default 8192");
    is_str(S->api_key_introspection_schema_version, "1", "SCHEMA_VERSION default \"1\"");
    is_int(S->api_key_introspection_circuit_failure_threshold, 5, "CIRCUIT_FAILURE_THRESHOLD 5");
    ok(S->api_key_introspection_circuit_reset_seconds == 30.0, "CIRCUIT_RESET_SECONDS 30.0");
    is_str(S->api_version, "v1", "API_VERSION defaults to v1");
    ok(S->contract_name == NULL, "CONTRACT_NAME unset");
    is_int(S->cors_allowed_origin_schemes.n, 0, "CORS_ALLOWED_ORIGIN_SCHEMES defaults to []");
    is_int(S->oauth_allowed_redirect_schemes.n, 1,
           "OAUTH_ALLOWED_REDIRECT_SCHEMES has one default");
    is_str(S->oauth_allowed_redirect_schemes.items[0], "chrome-extension://",
           "  which is chrome-extension://");
    is_int(S->oauth_allowed_redirect_prefixes.n, 0, "OAUTH_ALLOWED_REDIRECT_PREFIXES defaults []");
    is_int(S->allowed_hosts.n, 0, "ALLOWED_HOSTS unset");
    ok(LOAD("-ACCESS_TOKEN_ALGORITHM", "ACCESS_PUBLIC_KEY_FILE=", "JWKS_URI=https://a.example/j") !=
           NULL,
       "ACCESS_TOKEN_ALGORITHM unset loads (with JWKS_URI)");
    if (S)
        is_int(S->access_token_algorithm, M8_ALG_RS256, "ACCESS_TOKEN_ALGORITHM defaults to RS256");
    ok(LOAD("-TOKEN_MODE", "INTROSPECTION_URL=https://auth.example.com/jti-status",
            "PRIVATE_API_SECRET=p") != NULL,
       "TOKEN_MODE unset loads");
    if (S)
        is_int(S->token_mode, M8_MODE_STATEFUL, "TOKEN_MODE defaults to stateful");
    ok(LOAD("-TOKEN_STRICT_VALIDATION") == NULL, "TOKEN_STRICT_VALIDATION defaults to true");
    like(errs(), "TOKEN_STRICT_VALIDATION=true requires", "  so issuer/audience are required");
}

static void test_required(void)
{
    static const char *const req[] = {"DOMAIN",           "ENVIRONMENT",          "API_PREFIX",
                                      "PROJECT_NAME",     "STACK_NAME",           "BACKEND_HOST",
                                      "FRONTEND_HOST",    "BACKEND_CORS_ORIGINS", "SERVICE_VERSION",
                                      "CONTRACT_VERSION", "CONTRACT_RANGE"};
    for (size_t i = 0; i < M8_ARRAY_LEN(req); i++) {
        char rm[64], want[80];
        snprintf(rm, sizeof rm, "-%s", req[i]);
        snprintf(want, sizeof want, "%s: field required", req[i]);
        ok(LOAD(rm) == NULL, "%s is required", req[i]);
        like(errs(), want, "  error says '%s'", want);
    }
    ok(LOAD("-DOMAIN", "-STACK_NAME", "SET_DOCS=maybe") == NULL, "several field errors");
    is_int(E.n, 3, "field-level errors are reported together");
    ok(LOAD("-SERVICE_VERSION", "REFRESH_TOKEN_ALGORITHM=RS256") == NULL,
       "a field error and a model error");
    is_int(E.n, 1, "model checks do not run after field errors");
    ok(LOAD("-CONTRACT_NAME", "-API_VERSION") != NULL, "API_VERSION and CONTRACT_NAME optional");
    ok(LOAD("-REFRESH_SECRET_KEY") != NULL && !S->refresh_secret_key,
       "REFRESH_SECRET_KEY is issuer-only: never required (D2)");
    ok(LOAD("-PROJECT_NAME", "PROJET_NAME=x", "SET_DOCS=maybe") == NULL && E.n == 2,
       "unknown environment names are ignored; only field errors reported");
    ok(LOAD("SERVICE_VERSION=") != NULL, "an empty SERVICE_VERSION passes settings (Part B 5.4)");
    ok(LOAD("CONTRACT_NAME=Items") != NULL && !strcmp(S->contract_name, "Items"),
       "CONTRACT_NAME is read");
}

static void test_value_grammar(void)
{
    static const char *const t[] = {"1", "true", "TRUE", "t", "yes", "Y", "on", "On"};
    static const char *const f[] = {"0", "false", "False", "f", "no", "N", "off", "OFF"};
    for (size_t i = 0; i < M8_ARRAY_LEN(t); i++) {
        ok(LOAD(ov("SET_DOCS", f[i]), ov("HSTS_ENABLED", t[i])) && !S->set_docs && S->hsts_enabled,
           "bool: '%s' is true and '%s' is false", t[i], f[i]);
    }
    static const char *const badb[] = {" true", "true ", "2", "", "enabled", "yess"};
    for (size_t i = 0; i < M8_ARRAY_LEN(badb); i++)
        expect_bad("SET_DOCS", badb[i], "SET_DOCS: must be a boolean");

    struct {
        const char *v;
        long long want;
    } ints[] = {{"5", 5},        {" 5 ", 5}, {"\t7\t", 7}, {"+5", 5}, {"-5", -5},
                {"1_000", 1000}, {"5.0", 5}, {"5.00", 5},  {"05", 5}};
    for (size_t i = 0; i < M8_ARRAY_LEN(ints); i++) {
        ok(LOAD(ov("JWKS_CACHE_TTL_SECONDS", ints[i].v)) &&
               S->jwks_cache_ttl_seconds == ints[i].want,
           "int: '%s' is %lld", ints[i].v, ints[i].want);
    }
    static const char *const badi[] = {
        "5.5", "0x10", "1e3", "", "1__0", "_1", "1_", "5.", "9223372036854775808", "five"};
    for (size_t i = 0; i < M8_ARRAY_LEN(badi); i++)
        expect_bad("JWKS_CACHE_TTL_SECONDS", badi[i], "JWKS_CACHE_TTL_SECONDS: must be an integer");

    struct {
        const char *v;
        double want;
    } fl[] = {{"1e2", 100}, {" 2.5 ", 2.5}, {"1_0.5", 10.5},
              {".5", 0.5},  {"5.", 5},      {"+.5e-1", 0.05}};
    for (size_t i = 0; i < M8_ARRAY_LEN(fl); i++) {
        ok(LOAD(ov("EVENT_STREAM_CONNECT_TIMEOUT", fl[i].v)) &&
               S->event_stream_connect_timeout == fl[i].want,
           "float: '%s' is %g", fl[i].v, fl[i].want);
    }
    expect_bad("EVENT_STREAM_CONNECT_TIMEOUT", "inf", "must be greater than 0 and at most 300");
    expect_bad("EVENT_STREAM_CONNECT_TIMEOUT", "nan", "must be greater than 0 and at most 300");
    expect_bad("EVENT_STREAM_CONNECT_TIMEOUT", "-inf", "must be greater than 0");
    expect_bad("EVENT_STREAM_CONNECT_TIMEOUT", "0x1p3",
               "EVENT_STREAM_CONNECT_TIMEOUT: must be a number");
    expect_bad("EVENT_STREAM_CONNECT_TIMEOUT", "",
               "EVENT_STREAM_CONNECT_TIMEOUT: must be a number");
    expect_bad("EVENT_STREAM_CONNECT_TIMEOUT", "abc", "must be a number");

    expect_bad("ENVIRONMENT", "Production",
               "ENVIRONMENT: must be one of: local, development, "
               "staging, production");
    expect_bad("ENVIRONMENT", "", "ENVIRONMENT: must be one of");
    expect_ok("ENVIRONMENT", "development");
    expect_ok("ENVIRONMENT", "staging");
    expect_bad("TOKEN_MODE", "Stateless",
               "TOKEN_MODE: must be one of: stateless, stateful, hybrid");
    expect_ok("TOKEN_MODE", "hybrid");
    expect_bad("SELECTED_DB", "mysql", "SELECTED_DB: must be one of: Mysql, Postgres");
    expect_bad("ACCESS_REVOCATION_FAILURE_MODE", "FAIL_OPEN",
               "must be one of: fail_closed, fail_open");
    expect_ok("ACCESS_REVOCATION_FAILURE_MODE", "fail_open");
    expect_ok("RATE_LIMIT_FAILURE_MODE", "fail_closed");
    expect_ok("REFRESH_VALIDATION_FAILURE_MODE", "fail_open");
    expect_ok("SESSION_WRITE_FAILURE_MODE", "fail_open");

    struct {
        const char *in, *out;
    } urls[] = {{"HTTP://Example.COM:80", "http://example.com/"},
                {" https://a.b:443/x ", "https://a.b/x"},
                {"http://a_b.c", "http://a_b.c/"},
                {"http://[::1]:8080", "http://[::1]:8080/"},
                {"http://a.com?x=1", "http://a.com/?x=1"},
                {"http://a.com#f", "http://a.com/#f"},
                {"https://a.com:80", "https://a.com:80/"},
                {"http://frontend:3000/app/", "http://frontend:3000/app/"}};
    for (size_t i = 0; i < M8_ARRAY_LEN(urls); i++) {
        ok(LOAD(ov("BACKEND_HOST", urls[i].in)) && !strcmp(S->backend_host, urls[i].out),
           "URL '%s' normalises to %s", urls[i].in, urls[i].out);
    }
    static const char *const badu[] = {"ftp://a.com",        "",      "http://",
                                       "http://a.com:65536", "a.com", "http://exa mple.com",
                                       "http://a.com:x"};
    for (size_t i = 0; i < M8_ARRAY_LEN(badu); i++)
        expect_bad("BACKEND_HOST", badu[i], "BACKEND_HOST: must be an http or https URL");

    /* Empty values (1.1). */
    expect_bad("HSTS_MAX_AGE", "", "HSTS_MAX_AGE: must be an integer");
    expect_bad("INTROSPECTION_URL", "", "INTROSPECTION_URL: must be an http or https URL");
    expect_bad("SENTRY_DSN", "", "SENTRY_DSN: must be an http or https URL");
    ok(LOAD("ALLOWED_HOSTS=") && S->allowed_hosts.n == 0 && !m8_setting(S, "ALLOWED_HOSTS"),
       "ALLOWED_HOSTS= means unset");
    ok(LOAD("TOKEN_ISSUER=") && S->token_issuer && !*S->token_issuer,
       "TOKEN_ISSUER= is kept as \"\"");
    ok(LOAD("JWKS_URI=") && S->jwks_uri && !*S->jwks_uri, "JWKS_URI= is kept as \"\"");
    ok(LOAD("REDIS_PASSWORD=") == NULL, "REDIS_PASSWORD= is an empty secret");
    like(errs(), "REDIS_PASSWORD must be a strong password", "  which fails the strength rule");
    ok(LOAD("ACCESS_PUBLIC_KEY_FILE=") && !S->access_public_key_file, "an empty path is unset");

    /* Lists (D2). */
    ok(LOAD("ALLOWED_HOSTS=a.example.com, b.example.com,,") && S->allowed_hosts.n == 2 &&
           !strcmp(S->allowed_hosts.items[1], "b.example.com"),
       "ALLOWED_HOSTS comma form: trimmed, empties dropped");
    ok(LOAD("ALLOWED_HOSTS=[\"a.example.com\", \" b \"]") && S->allowed_hosts.n == 2 &&
           !strcmp(S->allowed_hosts.items[1], "b"),
       "ALLOWED_HOSTS JSON array form");
    expect_bad("ALLOWED_HOSTS", "[\"a\", 1]", "ALLOWED_HOSTS: must be a JSON array of strings");
    expect_bad("ALLOWED_HOSTS", "[\"a\"", "ALLOWED_HOSTS: must be a JSON array");
    expect_bad("ALLOWED_HOSTS", "[\"a\"] x", "ALLOWED_HOSTS: must be a JSON array");
    ok(LOAD("CORS_ALLOWED_ORIGIN_SCHEMES=chrome-extension://") &&
           S->cors_allowed_origin_schemes.n == 1,
       "CORS_ALLOWED_ORIGIN_SCHEMES accepts the comma form (D2 widening)");
    ok(LOAD("OAUTH_ALLOWED_REDIRECT_SCHEMES=[\"a://\",\"b://\"]") &&
           S->oauth_allowed_redirect_schemes.n == 2,
       "OAUTH_ALLOWED_REDIRECT_SCHEMES JSON form");
    ok(LOAD("OAUTH_ALLOWED_REDIRECT_PREFIXES=https://a.example/cb,https://b.example/cb") &&
           S->oauth_allowed_redirect_prefixes.n == 2,
       "OAUTH_ALLOWED_REDIRECT_PREFIXES comma form");
    ok(LOAD("SERVICE_TOKEN_SCOPES=[\"introspection\"]") && S->service_token_scopes.n == 1,
       "SERVICE_TOKEN_SCOPES JSON form");
    ok(LOAD("SERVICE_TOKEN_SCOPES=introspection, events") && S->service_token_scopes.n == 2,
       "SERVICE_TOKEN_SCOPES comma form");
}

static void test_cors_origins(void)
{
    ok(LOAD("BACKEND_CORS_ORIGINS=http://localhost:3000/, https://app.example.com,, ") &&
           S->allowed_origins.n == 2 &&
           !strcmp(S->allowed_origins.items[0], "http://localhost:3000") &&
           !strcmp(S->allowed_origins.items[1], "https://app.example.com"),
       "BACKEND_CORS_ORIGINS: trimmed, trailing '/' removed, empties skipped");
    if (S)
        is_str(S->backend_cors_origins, "http://localhost:3000/, https://app.example.com,, ",
               "BACKEND_CORS_ORIGINS raw text kept");
    ok(LOAD("BACKEND_CORS_ORIGINS=[\"https://a.example.com/\"]") &&
           !strcmp(S->allowed_origins.items[0], "https://a.example.com"),
       "BACKEND_CORS_ORIGINS JSON array form");
    expect_bad("BACKEND_CORS_ORIGINS", "http://frontend:3000",
               "Invalid host in BACKEND_CORS_ORIGINS");
    expect_bad("BACKEND_CORS_ORIGINS", "https://a.example.com/app", "Invalid host");
    expect_bad("BACKEND_CORS_ORIGINS", "HTTPS://a.example.com", "Invalid host");
    expect_bad("BACKEND_CORS_ORIGINS", "*", "Invalid host");
    expect_bad("BACKEND_CORS_ORIGINS", " , ,",
               "BACKEND_CORS_ORIGINS: must contain at least one "
               "valid origin");
    expect_bad("BACKEND_CORS_ORIGINS", "", "must contain at least one valid origin");
}

static void test_bounds(void)
{
    struct {
        const char *name;
        const char *good[2];
        const char *bad[2];
        const char *msg;
    } t[] = {
        {"DB_PORT", {"1", "65535"}, {"0", "65536"}, "must be between 1 and 65535"},
        {"LOGIN_RATE_LIMIT_REQUESTS", {"1", "1000"}, {"0", "1001"}, "between 1 and 1000"},
        {"JWKS_MAX_STALE_SECONDS", {"1", "31536000"}, {"0", "31536001"}, "between 1 and 31536000"},
        {"LOGIN_RATE_LIMIT_WINDOW_MINUTES", {"1", "1440"}, {"0", "1441"}, "between 1 and 1440"},
        {"REFRESH_RATE_LIMIT_REQUESTS", {"1", "1000"}, {"0", "1001"}, "between 1 and 1000"},
        {"REFRESH_RATE_LIMIT_WINDOW_MINUTES", {"1", "1440"}, {"0", "1441"}, "between 1 and 1440"},
        {"REVOCATION_CACHE_TTL_SECONDS", {"0", "86400"}, {"-1", "-100"}, "must be at least 0"},
        {"SERVICE_TOKEN_REFRESH_LEEWAY_SECONDS", {"0", "30"}, {"-1", "-30"}, "at least 0"},
        {"API_KEY_INTROSPECTION_MAX_CONCURRENCY", {"1", "1000"}, {"0", "1001"}, "1 and 1000"},
        {"API_KEY_INTROSPECTION_MAX_RESPONSE_BYTES",
         {"256", "1048576"},
         {"255", "1048577"},
         "between 256 and 1048576"},
        {"API_KEY_INTROSPECTION_CIRCUIT_FAILURE_THRESHOLD",
         {"1", "1000"},
         {"0", "1001"},
         "1 and 1000"},
        {"AUTH_INVALID_TOKEN_STATUS", {"401", "403"}, {"402", "400"}, "must be 401 or 403"},
        {"EVENT_STREAM_CONNECT_TIMEOUT",
         {"0.000001", "300"},
         {"0", "300.000001"},
         "greater than 0 and at most 300"},
        {"EVENT_STREAM_READ_TIMEOUT", {"0.5", "3600"}, {"0", "3600.0001"}, "at most 3600"},
        {"API_KEY_INTROSPECTION_CONNECT_TIMEOUT", {"0.1", "30"}, {"-0.1", "30.001"}, "at most 30"},
        {"API_KEY_INTROSPECTION_READ_TIMEOUT", {"0.1", "30"}, {"0", "30.001"}, "at most 30"},
        {"API_KEY_INTROSPECTION_POOL_TIMEOUT", {"0.1", "30"}, {"0", "31"}, "at most 30"},
        {"API_KEY_INTROSPECTION_CIRCUIT_RESET_SECONDS",
         {"1", "3600"},
         {"0", "3601"},
         "at most 3600"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(t); i++) {
        for (int k = 0; k < 2; k++) {
            expect_ok(t[i].name, t[i].good[k]);
            expect_bad(t[i].name, t[i].bad[k], t[i].msg);
        }
    }
    /* Fields without bounds. */
    expect_ok("JWKS_CACHE_TTL_SECONDS", "0");
    expect_ok("JWKS_CACHE_TTL_SECONDS", "-5");
    expect_ok("HSTS_MAX_AGE", "0");
    expect_ok("HSTS_MAX_AGE", "-1");
    expect_ok("REDIS_PORT", "0");
    if (S)
        ok(S->redis_port_set, "REDIS_PORT marks redis_port_set");
    expect_ok("SMTP_PORT", "25");
    expect_ok("ACCESS_TOKEN_EXPIRE_MINUTES", "0");
}

static void test_patterns(void)
{
    static const char *const host_ok[] = {"localhost",
                                          "1.2.3.4",
                                          "1.2.3.4:5432",
                                          "999.999.999.999",
                                          "auth_user_service",
                                          "db-1",
                                          "a.b.c",
                                          "example.com",
                                          "a..b",
                                          "-"};
    static const char *const host_bad[] = {
        "",      "a.b:80", "exa mple",     "http://x", "1.2.3.4:123456",
        "[::1]", "a.b_c",  "localhost:80", "a.",       ".a"};
    for (size_t i = 0; i < M8_ARRAY_LEN(host_ok); i++)
        ok(m8_match_host(host_ok[i]), "HOST matches '%s'", host_ok[i]);
    for (size_t i = 0; i < M8_ARRAY_LEN(host_bad); i++)
        ok(!m8_match_host(host_bad[i]), "HOST rejects '%s'", host_bad[i]);
    static const char *const hh_ok[] = {
        "http://localhost",      "http://localhost:3000", "https://app.example.com",
        "http://127.0.0.1:8000", "https://a.b.co",        "https://my-app.example.io:65535"};
    static const char *const hh_bad[] = {
        "http://frontend:3000", "ftp://a.com",     "HTTP://a.com", "https://a.com/x", "https://a.c",
        "http://a.com:123456",  "https://*.a.com", "http://",      "https://a.com:",  "a.com",
        "https://a..com",       "https://a.com1"};
    for (size_t i = 0; i < M8_ARRAY_LEN(hh_ok); i++)
        ok(m8_match_http_host(hh_ok[i]), "HTTP_HOST matches '%s'", hh_ok[i]);
    for (size_t i = 0; i < M8_ARRAY_LEN(hh_bad); i++)
        ok(!m8_match_http_host(hh_bad[i]), "HTTP_HOST rejects '%s'", hh_bad[i]);
    ok(m8_match_url_path("") && m8_match_url_path("/api") && m8_match_url_path("api") &&
           m8_match_url_path("/a-b._~/c"),
       "URL_PATH_STR matches '', /api, api, /a-b._~/c");
    ok(!m8_match_url_path("/a b") && !m8_match_url_path("/a?x") && !m8_match_url_path("/a%20"),
       "URL_PATH_STR rejects blanks, '?' and '%%'");
    ok(m8_match_key("test-service") && m8_match_key("a_B9"), "KEY matches test-service, a_B9");
    ok(!m8_match_key("") && !m8_match_key("a b") && !m8_match_key("a.b"),
       "KEY rejects '', 'a b', 'a.b'");
    ok(m8_match_slug("local") && m8_match_slug("my-stack-1"), "SLUG matches local, my-stack-1");
    ok(!m8_match_slug("My") && !m8_match_slug("a_b") && !m8_match_slug(""),
       "SLUG rejects My, a_b, ''");

    ok(m8_match_password("Pass0rd!"), "PASSWORD: 8 characters accepted");
    ok(!m8_match_password("Pas0rd!"), "PASSWORD: 7 characters rejected");
    ok(m8_match_password("Passw0r_"), "PASSWORD: '_' counts as special");
    ok(m8_match_password("P\xc3\xa4ssw0rd"),
       "PASSWORD: non-ASCII counts as special (8 code points)");
    ok(!m8_match_password("Passw0rd"), "PASSWORD: no special rejected");
    ok(!m8_match_password("passw0rd!"), "PASSWORD: no upper rejected");
    ok(!m8_match_password("PASSW0RD!"), "PASSWORD: no lower rejected");
    ok(!m8_match_password("Password!"), "PASSWORD: no digit rejected");
    ok(!m8_match_password("Pass w0rd!"), "PASSWORD: whitespace rejected");
    const char *k32 = "Abcdefghijklmnopqrstuvwxyz0123-!";
    ok(strlen(k32) == 32 && m8_match_secret_key(k32), "SECRET_KEY: 32 characters accepted");
    ok(!m8_match_secret_key(k32 + 1), "SECRET_KEY: 31 characters rejected");
    ok(!m8_match_secret_key("abcdefghijklmnopqrstuvwxyz0123-!"), "SECRET_KEY: no upper rejected");
    ok(!m8_match_secret_key("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123-!"), "SECRET_KEY: no lower rejected");
    ok(!m8_match_secret_key("Abcdefghijklmnopqrstuvwxyzabcd-!"), "SECRET_KEY: no digit rejected");
    ok(!m8_match_secret_key("Abcdefghijklmnopqrstuvwxyz012345"), "SECRET_KEY: no special rejected");
    ok(!m8_match_secret_key("Abcdefghijklmnop rstuvwxyz0123-!"), "SECRET_KEY: whitespace rejected");
    ok(m8_match_secret_key("Abcdefghijklmnopqrstuvwxyz01234\xc3\xa9"),
       "SECRET_KEY: non-ASCII counts as special");

    /* Through the fields. */
    expect_bad("DOMAIN", "exa mple.com", "DOMAIN: must be localhost");
    expect_ok("DOMAIN", "api.example.com");
    expect_bad("STACK_NAME", "My_Stack", "STACK_NAME: may contain only lower-case");
    expect_bad("DB_DATABASE", "app.db", "DB_DATABASE: may contain only letters");
    expect_bad("DB_USER", "app user", "DB_USER: may contain only letters");
    expect_bad("DB_HOST", "db:5432", "DB_HOST: must be localhost");
    expect_bad("REDIS_HOST", "redis host", "REDIS_HOST:");
    expect_bad("REDIS_USER", "a.b", "REDIS_USER: may contain only letters");
    expect_ok("API_PREFIX", "/api/v1");
    static const char *const bad_prefix[] = {"api", "/api/", "/", "/a b", "/a?b"};
    for (size_t i = 0; i < M8_ARRAY_LEN(bad_prefix); i++)
        expect_bad("API_PREFIX", bad_prefix[i], "API_PREFIX: must start with '/'");
    expect_bad("API_PREFIX", "", "'API_PREFIX' must be provided and not be empty.");

    /* D5 */
    expect_ok("PROJECT_NAME", "Item Service");
    expect_ok("PROJECT_NAME", "Caf\xc3\xa9 \xe2\x98\x95");
    char name[140];
    memset(name, 'n', 128);
    name[128] = '\0';
    expect_ok("PROJECT_NAME", name);
    name[128] = 'n';
    name[129] = '\0';
    expect_bad("PROJECT_NAME", name,
               "PROJECT_NAME: must be printable UTF-8 text of 1 to 128 bytes");
    expect_bad("PROJECT_NAME", "", "PROJECT_NAME: must be printable");
    expect_bad("PROJECT_NAME", "a\tb", "PROJECT_NAME: must be printable");
    expect_bad("PROJECT_NAME", "a\x7f", "PROJECT_NAME: must be printable");
    expect_bad("PROJECT_NAME", "a\xc2\x85", "PROJECT_NAME: must be printable");
    expect_bad("PROJECT_NAME", "a\xff", "PROJECT_NAME: must be printable");

    expect_ok("EMAILS_FROM_EMAIL", "noreply@example.com");
    expect_bad("EMAILS_FROM_EMAIL", "noreply", "EMAILS_FROM_EMAIL: must be an e-mail address");
    expect_bad("EMAIL_TEST_USER", "a b@example.com", "EMAIL_TEST_USER: must be an e-mail");
    expect_ok("JWKS_URI", "https://auth.example.com/.well-known/jwks.json");
    expect_bad("JWKS_URI", "ftp://auth.example.com/jwks", "JWKS_URI: must be an http or https URL");
}

static void test_roles_algorithms_db(void)
{
    expect_bad("AUTH_SERVICE_ROLE", "issuer",
               "AUTH_SERVICE_ROLE: fcgi-m8 services validate tokens; they never issue them");
    expect_bad("AUTH_SERVICE_ROLE", "Consumer", "AUTH_SERVICE_ROLE: must be one of");
    expect_ok("AUTH_SERVICE_ROLE", "consumer");
    expect_bad("ACCESS_TOKEN_ALGORITHM", "HS512",
               "ACCESS_TOKEN_ALGORITHM: must be one of: RS256, "
               "ES256, HS256");
    expect_bad("ACCESS_TOKEN_ALGORITHM", "hs256", "ACCESS_TOKEN_ALGORITHM: must be one of");
    expect_bad("ACCESS_TOKEN_ALGORITHM", "none", "ACCESS_TOKEN_ALGORITHM: must be one of");

    /* D4 */
    ok(LOAD("-DB_HOST") != NULL, "no DB_* needed without a database");
    m8_settings_source src = {
        .env = m8t_env0(), .env_file = "/dev/null", .cwd = "/", .uses_database = true};
    ok(load_src(&src) == NULL, "uses_database without DB_* fails");
    is_int(E.n, 5, "five DB_* are required");
    like(errs(), "DB_HOST: field required", "DB_HOST required");
    like(errs(), "DB_PORT: field required", "DB_PORT required");
    like(errs(), "DB_DATABASE: field required", "DB_DATABASE required");
    like(errs(), "DB_USER: field required", "DB_USER required");
    like(errs(), "DB_PASSWORD: field required", "DB_PASSWORD required");
    ok(LOAD("SELECTED_DB=Postgres") == NULL, "SELECTED_DB set explicitly requires DB_*");
    like(errs(), "DB_PASSWORD: field required", "  DB_PASSWORD among them");
    src.env = m8t_env("DB_HOST=db", "DB_PORT=5432", "DB_DATABASE=app", "DB_USER=app_user",
                      "DB_PASSWORD=Db-Passw0rd!", NULL);
    ok(load_src(&src) != NULL, "a complete DB_* set loads with uses_database");
    if (S) {
        is_int(S->db_port, 5432, "DB_PORT read");
        is_str(S->db_password, "Db-Passw0rd!", "DB_PASSWORD kept raw");
        ok(!S->selected_db_set, "SELECTED_DB still not explicit");
    }
    ok(LOAD("SELECTED_DB=Postgres", "DB_HOST=db", "DB_PORT=5432", "DB_DATABASE=app", "DB_USER=app",
            "DB_PASSWORD=Db-Passw0rd!") &&
           S->selected_db == M8_DB_POSTGRES && S->selected_db_set,
       "SELECTED_DB=Postgres with DB_* loads and is marked explicit");
    expect_bad("DB_PASSWORD", "weakpass", "DB_PASSWORD must be a strong password");
    ok(LOAD("DB_PASSWORD=  Db-Passw0rd!  ") != NULL, "DB_PASSWORD strength uses the trimmed value");
}

static void test_model_checks(void)
{
    /* 1 */
    expect_bad("REFRESH_TOKEN_ALGORITHM", "RS256", "REFRESH_TOKEN_ALGORITHM must be HS256");
    ok(LOAD("REFRESH_TOKEN_ALGORITHM=hs256", "TOKEN_STRICT_VALIDATION=true") == NULL && E.n == 1 &&
           strstr(E.lines[0], "REFRESH_TOKEN_ALGORITHM"),
       "the first failing model check aborts (1 before 5)");
    /* 2 */
    ok(LOAD("ACCESS_PUBLIC_KEY_FILE=/nonexistent/pub.pem") == NULL, "missing public key file");
    like(errs(), "ACCESS_PUBLIC_KEY_FILE not found: /nonexistent/pub.pem", "  message and path");
    ok(LOAD("ACCESS_PRIVATE_KEY_FILE=/nonexistent/key.pem") == NULL, "missing private key file");
    like(errs(), "ACCESS_PRIVATE_KEY_FILE not found: /nonexistent/key.pem", "  message and path");
    /* 3 */
    const char *ca = put_file("ca.pem", "ca");
    expect_bad("REDIS_SSL", "true", "REDIS_SSL=true requires REDIS_SSL_CA");
    ok(LOAD("REDIS_SSL=true", ov("REDIS_SSL_CA", ca)) != NULL, "REDIS_SSL with a CA file loads");
    ok(LOAD(ov("REDIS_SSL_CERT", ca)) == NULL, "REDIS_SSL_CERT without REDIS_SSL_KEY");
    like(errs(), "REDIS_SSL_CERT and REDIS_SSL_KEY must be set together", "  pair message");
    ok(LOAD(ov("REDIS_SSL_CERT", ca), ov("REDIS_SSL_KEY", ca)) != NULL, "CERT and KEY together");
    expect_bad("REDIS_SSL_CA", "/nonexistent/ca.pem",
               "REDIS_SSL_CA not found: /nonexistent/ca.pem");
    /* 5 */
    ok(LOAD("TOKEN_STRICT_VALIDATION=true") == NULL, "strict binding without issuer/audience");
    like(errs(), "TOKEN_STRICT_VALIDATION=true requires TOKEN_ISSUER and TOKEN_AUDIENCE",
         "  message names both fields");
    ok(LOAD("TOKEN_STRICT_VALIDATION=true", "TOKEN_ISSUER=https://auth.example.com") == NULL,
       "issuer alone is not enough");
    ok(LOAD("TOKEN_STRICT_VALIDATION=true", "TOKEN_ISSUER=x", "TOKEN_AUDIENCE=  ") == NULL,
       "a blank audience is not enough");
    ok(LOAD("TOKEN_STRICT_VALIDATION=true", "TOKEN_ISSUER=x", "TOKEN_AUDIENCE=y") != NULL,
       "both set: loads");
    /* 6 */
    ok(LOAD("-EVENT_SIGNING_KEY") == NULL, "event signing enabled without a key");
    like(errs(), "EVENT_SIGNING_ENABLED=true requires EVENT_SIGNING_KEY", "  message");
    expect_bad("EVENT_SIGNING_KEY", "   ", "requires EVENT_SIGNING_KEY");
    expect_bad("EVENT_SIGNING_KEY", "short-key", "EVENT_SIGNING_KEY must be a valid secret key.");
    ok(LOAD("-EVENT_SIGNING_KEY", "EVENT_SIGNING_ENABLED=false") != NULL,
       "no key needed when signing is disabled");
    ok(LOAD("EVENT_SIGNING_KEY=weak", "EVENT_SIGNING_ENABLED=false") != NULL,
       "a weak key is not checked when signing is disabled");
    /* 7 */
    ok(LOAD("-ACCESS_SECRET_KEY") == NULL, "HS256 without ACCESS_SECRET_KEY");
    like(errs(), "ACCESS_TOKEN_ALGORITHM=HS256 requires ACCESS_SECRET_KEY", "  message");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256") == NULL, "RS256 without a key source");
    like(errs(), "ACCESS_TOKEN_ALGORITHM=RS256 requires a public key source", "  message");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=ES256", "JWKS_URI=  ") == NULL, "a blank JWKS_URI is unset");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://auth.example.com/jwks") != NULL,
       "RS256 with JWKS_URI loads");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://a.example.com/jwks",
            "-ACCESS_SECRET_KEY") != NULL,
       "ACCESS_SECRET_KEY is optional for RS256");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://a.example.com/jwks",
            "ACCESS_SECRET_KEY=weak") == NULL,
       "ACCESS_SECRET_KEY is checked under any algorithm when set");
    /* 8 */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "(cd %s && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out r2048.pem"
             " && openssl pkey -in r2048.pem -pubout -out r2048.pub"
             " && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out r1024.pem"
             " && openssl pkey -in r1024.pem -pubout -out r1024.pub"
             " && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem"
             " && openssl pkey -in p384.pem -pubout -out p384.pub) >/dev/null 2>&1",
             dir);
    ok(sh(cmd) == 0, "openssl made test keys");
    char p2048[128], p1024[128], k1024[128], p384[128], k2048[128];
    snprintf(p2048, sizeof p2048, "ACCESS_PUBLIC_KEY_FILE=%s/r2048.pub", dir);
    snprintf(k2048, sizeof k2048, "ACCESS_PRIVATE_KEY_FILE=%s/r2048.pem", dir);
    snprintf(p1024, sizeof p1024, "ACCESS_PUBLIC_KEY_FILE=%s/r1024.pub", dir);
    snprintf(k1024, sizeof k1024, "ACCESS_PRIVATE_KEY_FILE=%s/r1024.pem", dir);
    snprintf(p384, sizeof p384, "ACCESS_PUBLIC_KEY_FILE=%s/p384.pub", dir);
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", p2048) != NULL, "RS256 with a 2048-bit public key");
    if (S)
        like(S->access_public_key, "-----BEGIN PUBLIC KEY-----", "ACCESS_PUBLIC_KEY holds the PEM");
    if (S)
        ok(S->access_public_key[strlen(S->access_public_key) - 1] == '-', "  trimmed");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", p1024) == NULL, "RS256 with a 1024-bit public key");
    like(errs(),
         "ACCESS_PUBLIC_KEY_FILE: RS256 requires a minimum 2048-bit RSA key; loaded key is "
         "1024 bits",
         "  message");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", p2048, k1024) == NULL,
       "the private key is checked when loaded");
    like(errs(), "ACCESS_PRIVATE_KEY_FILE: RS256 requires a minimum 2048-bit", "  names the file");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", p1024, k2048) != NULL,
       "only the private key is checked when both are loaded");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=ES256", p384) == NULL, "ES256 with a P-384 key");
    like(errs(), "ES256 requires a P-256 (secp256r1) EC curve; got secp384r1", "  message");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=HS256", p1024) != NULL, "HS256 skips key strength");
    /* 9 */
    expect_bad("ACCESS_SECRET_KEY", "too-short-Key-1",
               "ACCESS_SECRET_KEY must be a valid secret key.");
    expect_bad("REFRESH_SECRET_KEY", "no-upper-case-0123456789abcdefghijkl",
               "REFRESH_SECRET_KEY must be a valid secret key.");
    expect_ok("ACCESS_SECRET_KEY", "  Test-Access-Secret-Key-0123456789abcdef!  ");
    if (S)
        is_str(S->access_secret_key, "  Test-Access-Secret-Key-0123456789abcdef!  ",
               "ACCESS_SECRET_KEY is kept raw (untrimmed)");
    expect_bad("REDIS_PASSWORD", "redispass", "REDIS_PASSWORD must be a strong password");
    expect_ok("REDIS_PASSWORD", "Redis-Passw0rd");
    /* 10 */
    expect_bad("ACCESS_SECRET_KEY", "changethis", "ACCESS_SECRET_KEY must be a valid secret key.");
    /* 11 */
    const char *dev1 = "ACCESS_SECRET_KEY=Abcdef-1234_XYZ-abcdef-ghijkl-mnopqr-stuvwx";
    const char *dev2 = "REFRESH_SECRET_KEY= Zyxwvu-9876_ABC-zyxwvu-tsrqpo-nmlkji-hgfedc ";
    const char *dev3 = "EVENT_SIGNING_KEY=Abcdef-1234_XYZ-abcdef-ghijkl-mnopqr-stuvwx";
    ok(LOAD(dev1) != NULL, "a dev key is fine outside production");
    ok(LOAD(dev1, "ENVIRONMENT=production") == NULL, "ACCESS_SECRET_KEY dev key in production");
    like(errs(), "ACCESS_SECRET_KEY contains a well-known development key", "  message");
    ok(LOAD(dev2, "STRICT_PRODUCTION_MODE=true") == NULL, "REFRESH_SECRET_KEY dev key, strict");
    like(errs(), "REFRESH_SECRET_KEY contains a well-known development key", "  trimmed match");
    ok(LOAD(dev3, "ENVIRONMENT=production") == NULL, "EVENT_SIGNING_KEY dev key in production");
    like(errs(), "EVENT_SIGNING_KEY contains a well-known development key", "  message");
    ok(LOAD("EVENT_SIGNING_KEY=DEV-ONLY-do-not-use-event-signing-key-Aa1!",
            "ENVIRONMENT=production") != NULL,
       "the .env.example event key is not on the list");
    /* 12 */
    ok(LOAD("TOKEN_MODE=stateful") == NULL, "stateful consumer without introspection");
    like(errs(),
         "Stateful consumer requires INTROSPECTION_URL and PRIVATE_API_SECRET (missing: "
         "INTROSPECTION_URL, PRIVATE_API_SECRET)",
         "  lists both");
    ok(LOAD("TOKEN_MODE=stateful", "PRIVATE_API_SECRET=x") == NULL, "only the URL missing");
    like(errs(), "(missing: INTROSPECTION_URL)", "  lists the URL");
    ok(LOAD("TOKEN_MODE=stateful", "INTROSPECTION_URL=https://a.example.com/jti-status") == NULL,
       "only the secret missing");
    like(errs(), "(missing: PRIVATE_API_SECRET)", "  lists the secret");
    ok(LOAD("TOKEN_MODE=stateful", "INTROSPECTION_URL=https://a.example.com/jti-status",
            "PRIVATE_API_SECRET=") != NULL,
       "an empty PRIVATE_API_SECRET passes the presence check");
    ok(LOAD("TOKEN_MODE=hybrid") != NULL, "hybrid needs no introspection");
    /* 13 */
    ok(LOAD("API_KEY_INTROSPECTION_ENABLED=true") == NULL, "API-key introspection without URL");
    like(errs(),
         "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires API_KEY_INTROSPECTION_URL or "
         "INTROSPECTION_URL",
         "  message");
    ok(LOAD("API_KEY_INTROSPECTION_ENABLED=true", "INTROSPECTION_URL=https://a.example.com/x") ==
           NULL,
       "without INTERNAL_CLIENT_ID");
    like(errs(), "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires INTERNAL_CLIENT_ID", "  msg");
    ok(LOAD("API_KEY_INTROSPECTION_ENABLED=true",
            "API_KEY_INTROSPECTION_URL=https://a.example.com/k", "INTERNAL_CLIENT_ID=svc") == NULL,
       "without PRIVATE_API_SECRET");
    like(errs(), "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires PRIVATE_API_SECRET", "  msg");
    ok(LOAD("API_KEY_INTROSPECTION_ENABLED=true",
            "API_KEY_INTROSPECTION_URL=https://a.example.com/k", "INTERNAL_CLIENT_ID=svc",
            "PRIVATE_API_SECRET=s", "API_KEY_INTROSPECTION_SCHEMA_VERSION=2") == NULL,
       "an unsupported schema version");
    like(errs(), "CONFIG: API_KEY_INTROSPECTION_SCHEMA_VERSION", "  msg");
    ok(LOAD("API_KEY_INTROSPECTION_ENABLED=true",
            "API_KEY_INTROSPECTION_URL=https://a.example.com/k", "INTERNAL_CLIENT_ID=svc",
            "PRIVATE_API_SECRET=s") != NULL,
       "a complete API-key introspection group loads");
    /* 14 */
    ok(LOAD("SERVICE_TOKEN_EXCHANGE_ENABLED=true") == NULL, "service tokens need a client id");
    like(errs(), "CONFIG: SERVICE_TOKEN_EXCHANGE_ENABLED=true requires INTERNAL_CLIENT_ID",
         "  msg");
    ok(LOAD("INTERNAL_CLIENT_ID=svc") == NULL, "a client id needs PRIVATE_API_SECRET");
    like(errs(), "CONFIG: INTERNAL_CLIENT_ID requires PRIVATE_API_SECRET", "  msg");
    ok(LOAD("ENVIRONMENT=production", "INTROSPECTION_URL=https://a.example.com/jti-status") == NULL,
       "legacy mode in production");
    like(errs(), "CONFIG: INTROSPECTION_URL without INTERNAL_CLIENT_ID", "  msg");
    ok(LOAD("ENVIRONMENT=local", "STRICT_PRODUCTION_MODE=true",
            "INTROSPECTION_URL=https://a.example.com/jti-status") == NULL,
       "legacy mode under STRICT_PRODUCTION_MODE");
    ok(LOAD("INTROSPECTION_URL=https://a.example.com/jti-status") != NULL,
       "legacy mode allowed outside production");
    ok(LOAD("ENVIRONMENT=production", "INTROSPECTION_URL=https://a.example.com/jti-status",
            "INTERNAL_CLIENT_ID=svc", "PRIVATE_API_SECRET=s") != NULL,
       "bootstrap mode in production loads");
}

static void test_no_secret_in_errors(void)
{
    const char *s = SECRET;
    const char *fields_[] = {"DOMAIN",
                             "SET_DOCS",
                             "DB_PORT",
                             "ENVIRONMENT",
                             "BACKEND_HOST",
                             "ALLOWED_HOSTS",
                             "BACKEND_CORS_ORIGINS",
                             "EVENT_STREAM_READ_TIMEOUT",
                             "AUTH_SERVICE_ROLE",
                             "STACK_NAME",
                             "API_PREFIX",
                             "EMAILS_FROM_EMAIL",
                             "JWKS_URI",
                             "DB_USER"};
    for (size_t i = 0; i < M8_ARRAY_LEN(fields_); i++) {
        char *v = malloc(strlen(s) + 8);
        snprintf(v, strlen(s) + 8, "ftp:%s", s);
        if (!strcmp(fields_[i], "ALLOWED_HOSTS"))
            snprintf(v, strlen(s) + 8, "[\"%s", s);
        ok(LOAD(ov(fields_[i], v)) == NULL && !leaks(s), "a bad %s is not echoed", fields_[i]);
        free(v);
    }
    const char *weak = "leak-me-weak-secret";
    const char *sec_fields[] = {"ACCESS_SECRET_KEY", "REFRESH_SECRET_KEY", "EVENT_SIGNING_KEY",
                                "DB_PASSWORD", "REDIS_PASSWORD"};
    for (size_t i = 0; i < M8_ARRAY_LEN(sec_fields); i++) {
        ok(LOAD(ov(sec_fields[i], weak)) == NULL && E.n > 0 && !leaks(weak),
           "a weak %s is not echoed", sec_fields[i]);
    }
    ok(LOAD("ENVIRONMENT=production",
            "ACCESS_SECRET_KEY=Abcdef-1234_XYZ-abcdef-ghijkl-mnopqr-stuvwx") == NULL &&
           !leaks("Abcdef-1234_XYZ"),
       "the dev-key message does not echo the key");
    ok(LOAD("INTERNAL_CLIENT_ID=svc", "SERVICE_TOKEN_EXCHANGE_ENABLED=true",
            "HEALTH_DETAIL_CREDENTIAL=Leak-Me-S3cret-Value-XYZ-0123456789!") == NULL &&
           !leaks(s),
       "private-auth messages do not echo secrets");
    const char *f =
        put_file("dotenv-leak", "PRIVATE_API_SECRTE=Leak-Me-S3cret-Value-XYZ-0123456789!\n"
                                "S3cretWord\n");
    m8_settings_source src = {.env = m8t_env0(), .env_file = f, .cwd = "/"};
    ok(load_src(&src) == NULL && !leaks(s) && !leaks("S3cretWord"),
       ".env errors do not echo values or stray lines");
    f = put_file("dotenv-leak2", "PRIVATE_API_SECRTE=Leak-Me-S3cret-Value-XYZ-0123456789!\n");
    src.env_file = f;
    ok(load_src(&src) == NULL && !leaks(s), "an unknown .env key's value is not echoed");
    like(errs(), "unknown setting 'PRIVATE_API_SECRTE'; did you mean 'PRIVATE_API_SECRET'?",
         "  but the key is named, with a suggestion");
}

static void test_sources(void)
{
    m8_settings_source src = {.env = NULL, .env_file = NULL, .cwd = "/"};
    /* .env < environment (D1) */
    const char *f =
        put_file("a.env", "PROJECT_NAME=from-dotenv\nexport STACK_NAME='dotenv-stack'\n");
    src.env = m8t_env("PROJECT_NAME=from-env", "-STACK_NAME", NULL);
    src.env_file = f;
    ok(load_src(&src) != NULL, "load with a .env file");
    if (S) {
        is_str(S->project_name, "from-env", "process environment beats .env (D1)");
        is_str(S->stack_name, "dotenv-stack", ".env supplies what the environment lacks");
        is_str(S->env_file_used, f, "env_file_used is the file read");
    }
    f = put_file("b.env", "PROJECT_NAME=\nSTACK_NAME=b\n");
    src.env_file = f;
    ok(load_src(&src) && !strcmp(S->project_name, "from-env"),
       "an empty .env value does not beat the environment (D1)");
    /* NAME_FILE > environment */
    const char *sf = put_file("pn.txt", "  from-file \n");
    char fo[300];
    snprintf(fo, sizeof fo, "PROJECT_NAME_FILE=%s", sf);
    src.env = m8t_env("PROJECT_NAME=from-env", fo, NULL);
    src.env_file = "/dev/null";
    ok(load_src(&src) && !strcmp(S->project_name, "from-file"),
       "PROJECT_NAME_FILE beats the environment, contents trimmed");
    src.env = m8t_env("PROJECT_NAME_FILE=/nonexistent/secret", NULL);
    ok(load_src(&src) == NULL, "a NAME_FILE pointing nowhere fails");
    like(errs(), "PROJECT_NAME_FILE points to a missing file", "  pinned message");
    is_int(E.n, 1, "  reported once (no 'field required' for PROJECT_NAME)");
    src.env = m8t_env("PROJECT_NAME_FILE=/nonexistent/secret", "SET_DOCS=maybe", NULL);
    ok(load_src(&src) == NULL && E.n == 2, "source errors and field errors are reported together");
    snprintf(fo, sizeof fo, "PROJECT_NAME_FILE=%s", dir);
    src.env = m8t_env(fo, NULL);
    ok(load_src(&src) == NULL, "a NAME_FILE pointing at a directory fails");
    like(errs(), "PROJECT_NAME_FILE points to a missing file", "  as missing");
    src.env = m8t_env("PROJECT_NAME_FILE=", NULL);
    ok(load_src(&src) != NULL, "an empty NAME_FILE is ignored");
    const char *ak = put_file("ak.txt", "Test-Access-Secret-Key-FROM-FILE-0123456789!\n");
    snprintf(fo, sizeof fo, "ACCESS_SECRET_KEY_FILE=%s", ak);
    src.env = m8t_env(fo, NULL);
    ok(load_src(&src) &&
           !strcmp(S->access_secret_key, "Test-Access-Secret-Key-FROM-FILE-0123456789!"),
       "secret from ACCESS_SECRET_KEY_FILE");
    snprintf(fo, sizeof fo, "access_secret_key_file=%s", ak);
    src.env = m8t_env(fo, NULL);
    ok(load_src(&src) &&
           strcmp(S->access_secret_key, "Test-Access-Secret-Key-FROM-FILE-0123456789!"),
       "NAME_FILE is looked up in exact upper case only");
    /* NAME_FILE size limit */
    char *big = malloc(M8_MAX_SECRET_FILE_BYTES + 2);
    memset(big, 'c', M8_MAX_SECRET_FILE_BYTES + 1);
    big[M8_MAX_SECRET_FILE_BYTES] = '\0';
    sf = put_file("csp-at", big);
    snprintf(fo, sizeof fo, "CONTENT_SECURITY_POLICY_FILE=%s", sf);
    src.env = m8t_env(fo, NULL);
    ok(load_src(&src) && strlen(S->content_security_policy) == M8_MAX_SECRET_FILE_BYTES,
       "a NAME_FILE of exactly M8_MAX_SECRET_FILE_BYTES is read");
    big[M8_MAX_SECRET_FILE_BYTES] = 'c';
    big[M8_MAX_SECRET_FILE_BYTES + 1] = '\0';
    sf = put_file("csp-past", big);
    snprintf(fo, sizeof fo, "CONTENT_SECURITY_POLICY_FILE=%s", sf);
    src.env = m8t_env(fo, NULL);
    ok(load_src(&src) == NULL, "a NAME_FILE of M8_MAX_SECRET_FILE_BYTES + 1 fails");
    like(errs(), "CONTENT_SECURITY_POLICY_FILE: the file exceeds", "  message names the variable");
    /* Environment value limit */
    big[M8_MAX_ENV_LINE_BYTES] = '\0';
    char *ev = ov("CONTENT_SECURITY_POLICY", big);
    ok(LOAD(ev) != NULL, "an environment value of M8_MAX_ENV_LINE_BYTES is accepted");
    big[M8_MAX_ENV_LINE_BYTES] = 'c';
    ev = ov("CONTENT_SECURITY_POLICY", big);
    ok(LOAD(ev) == NULL, "an environment value of M8_MAX_ENV_LINE_BYTES + 1 is refused");
    like(errs(), "CONTENT_SECURITY_POLICY: value exceeds", "  message");
    free(big);
    /* Names are case-insensitive (D2) */
    ok(LOAD("-PROJECT_NAME", "project_name=lower-case") && !strcmp(S->project_name, "lower-case"),
       "a lower-case name in the environment sets the field");
    ok(LOAD("Project_Name=mixed") && !strcmp(S->project_name, "test-service"),
       "the exact upper-case name wins over another spelling");
    ok(LOAD("FOO_BAR_UNKNOWN=1", "ALLOWED_ORIGINS=x", "SQLALCHEMY_DATABASE_URI=x") != NULL,
       "unknown and computed names in the environment are ignored");
    f = put_file("c.env", "environment=development\nSet_Docs=off\n");
    src.env = m8t_env("-ENVIRONMENT", NULL);
    src.env_file = f;
    ok(load_src(&src) && S->environment == M8_ENV_DEVELOPMENT && !S->set_docs,
       "names in .env are case-insensitive");
    f = put_file("c2.env", "SET_DOCS=off\nset_docs=on\n");
    src.env = m8t_env0();
    src.env_file = f;
    ok(load_src(&src) && S->set_docs, "in .env the later of two spellings wins");
    /* Unknown and forbidden keys in .env */
    f = put_file("d.env", "PROJET_NAME=x\nDB_PASSWORD_FILE=/run/secrets/db\nALLOWED_ORIGINS=x\n"
                          "SQLALCHEMY_DATABASE_URI=mysql://x\n");
    src.env_file = f;
    ok(load_src(&src) == NULL, "unknown keys in .env fail");
    like(errs(), "line 1: unknown setting 'PROJET_NAME'; did you mean 'PROJECT_NAME'?",
         "  unknown key named with the nearest known name");
    like(errs(), "line 2: unknown setting 'DB_PASSWORD_FILE'",
         "  NAME_FILE inside .env is unknown");
    like(errs(), "did you mean 'DB_PASSWORD'?", "  and suggests the field");
    like(errs(), "line 3: 'ALLOWED_ORIGINS' is computed and cannot be set", "  computed name");
    like(errs(), "line 4: 'SQLALCHEMY_DATABASE_URI' is computed", "  computed name");
    is_int(E.n, 4, "  each bad key has its own line");
    f = put_file("e.env", "REDIS_HOST=redis\nSMTP_HOST=smtp.example.com\nOAUTH_ALLOWED_REDIRECT_"
                          "SCHEMES=[\"x://\"]\nACCESS_KEY_ID=k1\nREFRESH_SECRET_KEY_OLD=old\n");
    src.env_file = f;
    ok(load_src(&src) != NULL, "issuer-only settings in .env are known names (D2)");
    /* .env syntax through the loader */
    f = put_file("f.env", "# comment\n\nexport PROJECT_NAME=\"${SVC}-svc\" # trailing\n"
                          "STACK_NAME=my-stack # comment\nCONTRACT_RANGE='>=1.0.0 <2.0.0'\n"
                          "CONTENT_SECURITY_POLICY=\"default-src 'self';\nimg-src *\"\n"
                          "STACK_NAME=second\n");
    src.env = m8t_env("-PROJECT_NAME", "-STACK_NAME", "-CONTRACT_RANGE", "SVC=items", NULL);
    src.env_file = f;
    ok(load_src(&src) != NULL, "a .env with comments, quotes, export and interpolation loads");
    if (S) {
        is_str(S->project_name, "items-svc", "${SVC} interpolated from the process environment");
        is_str(S->stack_name, "second", "repeated key: the last wins");
        is_str(S->contract_range, ">=1.0.0 <2.0.0", "single-quoted value");
        is_str(S->content_security_policy, "default-src 'self';\nimg-src *", "multi-line value");
    }
    f = put_file("g.env", "PROJECT_NAME=\"unterminated\n");
    src.env_file = f;
    ok(load_src(&src) == NULL, "a .env syntax error fails");
    like(errs(), "g.env: line 1: unterminated quoted value", "  with the file and line");
    /* .env size limits */
    char *text = malloc(M8_MAX_ENV_FILE_BYTES + 2);
    memset(text, '#', M8_MAX_ENV_FILE_BYTES + 1);
    for (size_t i = 1000; i < M8_MAX_ENV_FILE_BYTES; i += 1000)
        text[i] = '\n';
    text[M8_MAX_ENV_FILE_BYTES] = '\0';
    f = put_file("big.env", text);
    src.env_file = f;
    src.env = m8t_env0();
    ok(load_src(&src) != NULL, "a .env of exactly M8_MAX_ENV_FILE_BYTES loads");
    text[M8_MAX_ENV_FILE_BYTES] = '#';
    text[M8_MAX_ENV_FILE_BYTES + 1] = '\0';
    f = put_file("big2.env", text);
    src.env_file = f;
    ok(load_src(&src) == NULL, "a .env of M8_MAX_ENV_FILE_BYTES + 1 fails");
    like(errs(), "exceeds the size limit", "  size message");
    memset(text, 'x', M8_MAX_ENV_LINE_BYTES + 2);
    memcpy(text, "CONTENT_SECURITY_POLICY=", 24);
    text[M8_MAX_ENV_LINE_BYTES] = '\n';
    text[M8_MAX_ENV_LINE_BYTES + 1] = '\0';
    src.env_file = put_file("line.env", text);
    ok(load_src(&src) && strlen(S->content_security_policy) == M8_MAX_ENV_LINE_BYTES - 24,
       "a .env line of exactly M8_MAX_ENV_LINE_BYTES loads");
    text[M8_MAX_ENV_LINE_BYTES] = 'x';
    text[M8_MAX_ENV_LINE_BYTES + 1] = '\n';
    text[M8_MAX_ENV_LINE_BYTES + 2] = '\0';
    src.env_file = put_file("line2.env", text);
    ok(load_src(&src) == NULL, "a .env line of M8_MAX_ENV_LINE_BYTES + 1 fails");
    like(errs(), "line 1: line exceeds", "  line size message");
    free(text);
    /* Which file (D1) */
    src.env_file = "/nonexistent/.env";
    ok(load_src(&src) == NULL, "an explicit env file that is missing fails");
    like(errs(), "--env-file points to a missing file: /nonexistent/.env", "  message");
    src.env_file = NULL;
    char me[300];
    snprintf(me, sizeof me, "M8_ENV_FILE=%s", put_file("m.env", "PROJECT_NAME=via-m8-env-file\n"));
    src.env = m8t_env("-PROJECT_NAME", me, NULL);
    ok(load_src(&src) && !strcmp(S->project_name, "via-m8-env-file"), "M8_ENV_FILE names the file");
    src.env = m8t_env("M8_ENV_FILE=/nonexistent/m.env", NULL);
    ok(load_src(&src) == NULL, "a missing M8_ENV_FILE fails");
    like(errs(), "M8_ENV_FILE points to a missing file", "  message");
    char sub[256], top[256];
    snprintf(top, sizeof top, "%s/walk", dir);
    snprintf(sub, sizeof sub, "%s/walk/a/b", dir);
    char c2[600];
    snprintf(c2, sizeof c2, "mkdir -p %s && printf 'PROJECT_NAME=walked\\n' > %s/.env", sub, top);
    ok(sh(c2) == 0, "made a directory tree with a .env at the top");
    src.env = m8t_env("-PROJECT_NAME", NULL);
    src.cwd = sub;
    ok(load_src(&src) && !strcmp(S->project_name, "walked"),
       "the .env is found walking up from cwd");
    char want[300];
    snprintf(want, sizeof want, "%s/.env", top);
    char *rw = realpath(top, NULL);
    if (rw) {
        snprintf(want, sizeof want, "%s/.env", rw);
        free(rw);
    }
    if (S)
        is_str(S->env_file_used, want, "env_file_used is the found file");
    snprintf(c2, sizeof c2, "mkdir -p %s/e1/e2 && mkdir -p %s/e1/.env", dir, dir);
    sh(c2);
    snprintf(sub, sizeof sub, "%s/e1/e2", dir);
    struct stat st;
    if (stat("/.env", &st) != 0 && stat("/tmp/.env", &st) != 0) {
        src.env = m8t_env0();
        src.cwd = sub;
        ok(load_src(&src) && S->env_file_used == NULL,
           "no .env anywhere up the tree is fine (a directory named .env is skipped)");
    }
}

static void test_computed(void)
{
    ok(LOAD("-NOTHING") && S->allowed_origins.n == 1 &&
           !strcmp(S->allowed_origins.items[0], "http://localhost:3000"),
       "ALLOWED_ORIGINS: FRONTEND_HOST already present is not repeated");
    ok(LOAD("FRONTEND_HOST=HTTPS://App.Example.com/ui/") && S->allowed_origins.n == 2 &&
           !strcmp(S->allowed_origins.items[0], "http://localhost:3000") &&
           !strcmp(S->allowed_origins.items[1], "https://app.example.com/ui"),
       "ALLOWED_ORIGINS: FRONTEND_HOST normalised, final '/' removed, path kept, appended");
    if (S)
        is_str(m8_setting(S, "allowed_origins"), "http://localhost:3000,https://app.example.com/ui",
               "m8_setting(ALLOWED_ORIGINS) joins the list");
    ok(LOAD("FRONTEND_HOST=https://app.example.com", "BACKEND_CORS_ORIGINS=https://app.example.com,"
                                                     "http://localhost:3000") &&
           S->allowed_origins.n == 2 &&
           !strcmp(S->allowed_origins.items[0], "https://app.example.com"),
       "ALLOWED_ORIGINS keeps the BACKEND_CORS_ORIGINS order");
    struct {
        const char *env, *strict, *serve, *docs;
        bool gate, eff;
    } g[] = {
        {"local", "false", "false", "true", false, true},
        {"production", "false", "false", "true", true, false},
        {"production", "false", "true", "true", true, true},
        {"staging", "true", "false", "true", true, false},
        {"local", "true", "true", "true", true, true},
        {"local", "false", "false", "false", false, false},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(g); i++) {
        LOAD(ov("ENVIRONMENT", g[i].env), ov("STRICT_PRODUCTION_MODE", g[i].strict),
             ov("SERVE_DOCS_IN_PRODUCTION", g[i].serve), ov("SET_DOCS", g[i].docs),
             ov("SET_OPEN_API", g[i].docs), ov("SET_REDOC", g[i].docs));
        ok(S && S->production_gate == g[i].gate && S->docs_docs == g[i].eff &&
               S->docs_openapi == g[i].eff && S->docs_redoc == g[i].eff,
           "ENVIRONMENT=%s strict=%s serve=%s SET_*=%s: gate %d, effective docs %d", g[i].env,
           g[i].strict, g[i].serve, g[i].docs, g[i].gate, g[i].eff);
        if (!S)
            diag("%s", errs());
    }
    ok(LOAD("SET_REDOC=false") && S->docs_docs && S->docs_openapi && !S->docs_redoc,
       "each docs flag is computed on its own");
    struct {
        const char *in, *want;
    } u[] = {
        {"https://auth.example.com/api/v1/internal/jti-status",
         "https://auth.example.com/api/v1/internal/api-keys/introspect"},
        {"https://auth.example.com/api/v1/internal/jti-status/",
         "https://auth.example.com/api/v1/internal/api-keys/introspect"},
        {"https://auth.example.com/internal/",
         "https://auth.example.com/internal/api-keys/introspect"},
        {"https://auth.example.com", "https://auth.example.com/api-keys/introspect"},
        {"https://auth.example.com/internal//jti-status",
         "https://auth.example.com/internal/api-keys/introspect"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(u); i++) {
        ok(LOAD(ov("INTROSPECTION_URL", u[i].in)) &&
               !strcmp(S->api_key_introspection_url_effective, u[i].want),
           "API-key URL derived from %s", u[i].in);
    }
    ok(LOAD("INTROSPECTION_URL=https://a.example.com/jti-status",
            "API_KEY_INTROSPECTION_URL=https://keys.example.com/check") &&
           !strcmp(S->api_key_introspection_url_effective, "https://keys.example.com/check"),
       "an explicit API_KEY_INTROSPECTION_URL wins");
    ok(LOAD("-NOTHING") && S->api_key_introspection_url_effective == NULL,
       "no introspection URL: nothing derived");

    /* m8_setting() */
    ok(LOAD("-NOTHING") != NULL, "loaded for m8_setting");
    if (!S)
        return;
    is_str(m8_setting(S, "project_name"), "test-service", "m8_setting is case-insensitive");
    is_str(m8_setting(S, "SET_DOCS"), "true", "bool as text");
    is_str(m8_setting(S, "JWKS_CACHE_TTL_SECONDS"), "300", "int as text");
    is_str(m8_setting(S, "EVENT_STREAM_READ_TIMEOUT"), "60.0", "float as text (Python repr)");
    is_str(m8_setting(S, "ACCESS_TOKEN_ALGORITHM"), "HS256", "enum as text");
    is_str(m8_setting(S, "FRONTEND_HOST"), "http://localhost:3000/", "URL in normalised form");
    is_str(m8_setting(S, "OAUTH_ALLOWED_REDIRECT_SCHEMES"), "chrome-extension://", "list default");
    is_str(m8_setting(S, "CONTRACT_RANGE"), ">=1.0.0 <2.0.0", "free text");
    is_str(m8_setting(S, "REFERRER_POLICY"), "strict-origin-when-cross-origin", "default text");
    is_str(m8_setting(S, "ACCESS_SECRET_KEY"), "Test-Access-Secret-Key-0123456789abcdef!",
           "secrets are returned too");
    ok(m8_setting(S, "DB_PORT") == NULL, "an unset int is NULL");
    ok(m8_setting(S, "TOKEN_ISSUER") == NULL, "an unset string is NULL");
    ok(m8_setting(S, "NO_SUCH_SETTING") == NULL, "an unknown name is NULL");
    ok(m8_setting(NULL, "DOMAIN") == NULL, "NULL settings give NULL");
    ok(m8_settings_known("domain") && !m8_settings_known("ALLOWED_ORIGINS"),
       "m8_settings_known: fields yes, computed no");
    ok(LOAD("EVENT_STREAM_CONNECT_TIMEOUT=0.0001", "DB_PORT=3306") != NULL, "reload");
    if (S) {
        is_str(m8_setting(S, "EVENT_STREAM_CONNECT_TIMEOUT"), "0.0001", "small float text");
        is_str(m8_setting(S, "DB_PORT"), "3306", "a set int is text");
    }
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/m8setXXXXXX");
    if (!mkdtemp(dir))
        return ok(0, "mkdtemp"), done_testing();
    test_base_and_defaults();
    test_required();
    test_value_grammar();
    test_cors_origins();
    test_bounds();
    test_patterns();
    test_roles_algorithms_db();
    test_model_checks();
    test_no_secret_in_errors();
    test_computed();
    test_sources();
    reset();
    for (size_t i = 0; i < npool; i++)
        free(pool[i]);
    free(pool);
    char c[128];
    snprintf(c, sizeof c, "rm -rf %s", dir);
    sh(c);
    return done_testing();
}
