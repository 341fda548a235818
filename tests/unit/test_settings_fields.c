/* test_settings_fields.c - settings one by one: defaults, required
 * names, the value grammar, CORS origins, bounds, patterns, roles,
 * algorithms and the database. */

#include "config.h"

#include "test_settings.h"

void test_base_and_defaults(void)
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
    is_int(S->auth_service_role, M8_ROLE_CONSUMER,
           "AUTH_SERVICE_ROLE defaults to consumer (doc/settings.md#service-role)");
    is_int(S->auth_invalid_token_status, 401,
           "AUTH_INVALID_TOKEN_STATUS defaults to 401 (doc/responses.md#auth-failures)");
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
    is_int(S->revocation_cache_ttl_seconds, 0,
           "REVOCATION_CACHE_TTL_SECONDS default 0 (doc/wire.md#revocation-table)");
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

void test_required(void)
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
       "REFRESH_SECRET_KEY is issuer-only: never required (doc/settings.md#names)");
    ok(LOAD("-PROJECT_NAME", "PROJET_NAME=x", "SET_DOCS=maybe") == NULL && E.n == 2,
       "unknown environment names are ignored; only field errors reported");
    ok(LOAD("SERVICE_VERSION=") != NULL,
       "an empty SERVICE_VERSION passes settings (doc/settings.md#service-meta)");
    ok(LOAD("CONTRACT_NAME=Items") != NULL && !strcmp(S->contract_name, "Items"),
       "CONTRACT_NAME is read");
}

void test_value_grammar(void)
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

    /* Empty values (doc/settings.md#value-grammar). */
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

    /* Lists (doc/settings.md#value-grammar). */
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
       "CORS_ALLOWED_ORIGIN_SCHEMES accepts the comma form (the list widening of "
       "doc/settings.md#value-grammar)");
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

void test_cors_origins(void)
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

void test_bounds(void)
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

void test_patterns(void)
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

    /* PROJECT_NAME (doc/settings.md#core-and-routing) */
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

void test_roles_algorithms_db(void)
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

    /* DB_* only with a database (doc/settings.md#database) */
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
