/* test_confighealth.c - check_config_health (doc/settings.md#config-health)
 * in normal and strict mode, and the credential-reuse guard
 * (doc/settings.md#credential-reuse). */
#include "config.h"

#include "tap.h"
#include "testenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/confighealth.h"

static m8_settings *S;
static m8_errlist E;
static m8_config_report R;
static size_t NF;

/* A production deployment with no finding. */
#define PROD                                                                                       \
    "ENVIRONMENT=production", "FRONTEND_HOST=https://app.example.com",                             \
        "BACKEND_CORS_ORIGINS=https://app.example.com", "SET_DOCS=false", "SET_OPEN_API=false",    \
        "TOKEN_ISSUER=https://auth.example.com", "TOKEN_AUDIENCE=items",                           \
        "ALLOWED_HOSTS=api.example.com"
/* The same under STRICT_PRODUCTION_MODE. */
#define STRICT PROD, "STRICT_PRODUCTION_MODE=true"

static void run(char **env)
{
    m8_settings_free(S);
    m8_errlist_free(&E);
    m8_config_report_free(&R);
    S = m8t_settings(env, &E);
    if (!S) {
        for (size_t i = 0; i < E.n; i++)
            diag("load: %s", E.lines[i]);
        memset(&R, 0, sizeof R);
        NF = 0;
        return;
    }
    NF = m8_config_health(S, &R);
}

/* Re-runs the checks after a hand edit of S (for states the service-role rule makes unloadable). */
static void rerun(void)
{
    m8_config_report_free(&R);
    NF = S ? m8_config_health(S, &R) : 0;
}

#define RUN(...) run(m8t_env(__VA_ARGS__, NULL))

static int find(const m8_errlist *l, const char *needle)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strstr(l->lines[i], needle))
            return (int)i;
    }
    return -1;
}

static bool warn(const char *needle)
{
    return find(&R.warnings, needle) >= 0;
}

static bool fatal(const char *needle)
{
    return find(&R.fatals, needle) >= 0;
}

/* Checks every line starts with "CONFIG: " and contains no secret. */
static bool well_formed(const char *secret)
{
    const m8_errlist *ls[] = {&R.warnings, &R.fatals};
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < ls[k]->n; i++) {
            if (strncmp(ls[k]->lines[i], "CONFIG: ", 8) != 0)
                return false;
            if (secret && strstr(ls[k]->lines[i], secret))
                return false;
        }
    }
    return true;
}

static void dump(void)
{
    for (size_t i = 0; i < R.warnings.n; i++)
        diag("W %s", R.warnings.lines[i]);
    for (size_t i = 0; i < R.fatals.n; i++)
        diag("F %s", R.fatals.lines[i]);
}

/* Exactly one finding, as a warning (fatal=false) or fatal containing needle. */
static void only(bool is_fatal, const char *needle, const char *what)
{
    bool good = S && (is_fatal ? (R.fatals.n == 1 && R.warnings.n == 0 && fatal(needle))
                               : (R.warnings.n == 1 && R.fatals.n == 0 && warn(needle)));
    ok(good, "%s: %s naming %s", what, is_fatal ? "fatal" : "warning", needle);
    if (!good)
        dump();
}

static void none(const char *what)
{
    bool good = S && R.warnings.n == 0 && R.fatals.n == 0;
    ok(good, "%s: no finding", what);
    if (!good)
        dump();
}

static void test_clean(void)
{
    RUN("-NOTHING");
    none("the local testenv base");
    RUN(PROD);
    none("a clean production deployment");
    RUN(STRICT);
    none("a clean strict production deployment");
    is_int(NF, 0, "m8_config_health returns 0 fatals");
}

static void test_jwt(void)
{
    /* 1: only reachable by hand, since load refuses it (doc/settings.md#model-checks). */
    RUN("-NOTHING");
    if (S) {
        S->access_token_algorithm = M8_ALG_RS256;
        rerun();
    }
    only(true, "ACCESS_TOKEN_ALGORITHM=RS256", "#1 asymmetric without key (normal)");
    ok(fatal("JWKS_URI") && fatal("ACCESS_PUBLIC_KEY_FILE"), "#1 names both key sources");
    RUN(STRICT);
    if (S) {
        S->access_token_algorithm = M8_ALG_ES256;
        rerun();
    }
    only(true, "ACCESS_TOKEN_ALGORITHM=ES256", "#1 asymmetric without key (strict)");
    is_int(NF, 1, "the return value counts the fatals");
    /* 2 */
    RUN("JWKS_URI=https://auth.example.com/jwks");
    only(false, "JWKS_URI", "#2 JWKS with HS256 (normal)");
    RUN(STRICT, "JWKS_URI=https://auth.example.com/jwks");
    only(false, "ACCESS_TOKEN_ALGORITHM=HS256", "#2 JWKS with HS256 (strict)");
    /* 3 */
    RUN("ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://a.example.com/jwks",
        "JWKS_CACHE_TTL_SECONDS=29");
    only(false, "JWKS_CACHE_TTL_SECONDS", "#3 TTL 29 (normal)");
    RUN(STRICT, "ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://a.example.com/jwks",
        "JWKS_CACHE_TTL_SECONDS=29");
    only(false, "JWKS_CACHE_TTL_SECONDS", "#3 TTL 29 (strict)");
    RUN("ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://a.example.com/jwks",
        "JWKS_CACHE_TTL_SECONDS=30");
    none("#3 TTL 30");
    RUN("JWKS_CACHE_TTL_SECONDS=0");
    none("#3 low TTL without JWKS_URI");
}

static void test_role(void)
{
    char *key = NULL;
    char path[] = "/tmp/m8chXXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        FILE *f = fdopen(fd, "w");
        fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
        fclose(f);
        size_t n = strlen(path) + 32;
        key = malloc(n);
        snprintf(key, n, "ACCESS_PRIVATE_KEY_FILE=%s", path);
    }
    /* 4 */
    RUN(key);
    only(true, "ACCESS_PRIVATE_KEY_FILE", "#4 consumer with a private key (normal)");
    RUN(STRICT, key);
    only(true, "ACCESS_PRIVATE_KEY_FILE", "#4 consumer with a private key (strict)");
    unlink(path);
    free(key);
    /* 5, 6, 8: role=issuer cannot load (doc/settings.md#service-role); set by hand. */
    RUN("ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://a.example.com/jwks");
    if (S) {
        S->auth_service_role = M8_ROLE_ISSUER;
        S->jwks_uri[0] = '\0';
        free(S->jwks_uri);
        S->jwks_uri = NULL;
        S->access_public_key = strdup("pem");
        rerun();
    }
    only(true, "ACCESS_PRIVATE_KEY_FILE", "#5 issuer RS256 without a private key (normal)");
    if (S) {
        S->strict_production_mode = true;
        S->allowed_hosts.n = 0;
        rerun();
        ok(fatal("AUTH_SERVICE_ROLE=issuer"), "#5 issuer RS256 without a private key (strict)");
        S->strict_production_mode = false;
    }
    RUN("JWKS_URI=https://a.example.com/jwks");
    if (S) {
        S->auth_service_role = M8_ROLE_ISSUER;
        rerun();
        ok(warn("JWKS_URI is set on an issuer") && !fatal("issuer"),
           "#6 issuer with JWKS (normal): warning");
    }
    RUN(STRICT, "JWKS_URI=https://a.example.com/jwks");
    if (S) {
        S->auth_service_role = M8_ROLE_ISSUER;
        rerun();
        ok(fatal("JWKS_URI is set on an issuer"), "#6 issuer with JWKS (strict): fatal");
    }
    RUN("TOKEN_MODE=hybrid");
    if (S) {
        S->auth_service_role = M8_ROLE_ISSUER;
        rerun();
    }
    only(true, "REDIS_HOST", "#8 stateful issuer without Redis (normal)");
    if (S) {
        S->redis_host = strdup("redis");
        S->redis_password = strdup("Redis-Passw0rd");
        rerun();
        none("#8 issuer with REDIS_HOST and REDIS_PASSWORD");
        S->token_mode = M8_MODE_STATELESS;
        free(S->redis_host);
        S->redis_host = NULL;
        rerun();
        none("#8 stateless issuer needs no Redis");
    }
    RUN(STRICT, "TOKEN_MODE=hybrid");
    if (S) {
        S->auth_service_role = M8_ROLE_ISSUER;
        rerun();
    }
    only(true, "REDIS_PASSWORD", "#8 stateful issuer without Redis (strict)");
    /* 7 (only when DB_HOST is set) */
    RUN("DB_HOST=db");
    only(false, "DB_HOST", "#7 stateless consumer with DB_HOST (normal)");
    RUN(STRICT, "DB_HOST=db");
    only(false, "DB_HOST", "#7 stateless consumer with DB_HOST (strict)");
    RUN("-DB_HOST");
    none("#7 stateless consumer without DB_HOST");
    RUN("DB_HOST=db", "TOKEN_MODE=hybrid");
    none("#7 hybrid consumer with DB_HOST");
}

static void test_production(void)
{
    /* 9 */
    RUN(PROD, "BACKEND_CORS_ORIGINS=https://app.example.com,http://localhost:3000");
    only(true, "localhost", "#9 localhost origin in production (normal)");
    RUN(STRICT, "BACKEND_CORS_ORIGINS=http://127.0.0.1:8080");
    only(true, "ALLOWED_ORIGINS", "#9 127.0.0.1 origin in production (strict)");
    RUN(PROD, "FRONTEND_HOST=https://localhost.example.com");
    only(true, "localhost", "#9 is a substring test (FRONTEND_HOST counts)");
    RUN(PROD, "ENVIRONMENT=staging", "BACKEND_CORS_ORIGINS=http://localhost:3000");
    none("#9 not in staging");
    RUN(PROD, "ENVIRONMENT=local", "STRICT_PRODUCTION_MODE=true",
        "BACKEND_CORS_ORIGINS=http://localhost:3000", "FRONTEND_HOST=http://localhost:3000");
    none("#9 only for ENVIRONMENT=production, even under strict");
    /* 10, 11 */
    RUN(PROD, "SET_DOCS=true");
    only(false, "SET_DOCS", "#10 SET_DOCS in production (normal)");
    RUN(STRICT, "SET_DOCS=true");
    only(true, "SET_DOCS", "#10 SET_DOCS in production (strict)");
    RUN(PROD, "SET_OPEN_API=true");
    only(false, "SET_OPEN_API", "#11 SET_OPEN_API in production (normal)");
    RUN(STRICT, "SET_OPEN_API=true");
    only(true, "SET_OPEN_API", "#11 SET_OPEN_API in production (strict)");
    RUN(PROD, "SET_REDOC=true");
    none("SET_REDOC is not checked");
    /* 12 */
    RUN(PROD, "SERVE_DOCS_IN_PRODUCTION=true", "SET_REDOC=true");
    only(false, "SERVE_DOCS_IN_PRODUCTION", "#12 docs published on purpose (normal)");
    RUN(STRICT, "SERVE_DOCS_IN_PRODUCTION=true", "SET_DOCS=true");
    only(false, "SERVE_DOCS_IN_PRODUCTION", "#12 docs published on purpose (strict: never fatal)");
    RUN(PROD, "SERVE_DOCS_IN_PRODUCTION=true", "SET_REDOC=false");
    none("#12 no SET_* flag on");
    RUN("SERVE_DOCS_IN_PRODUCTION=true");
    none("#12 only in production");
}

static void test_strict(void)
{
    /* 13: unreachable from settings (HTTP_HOST forbids '*'); set by hand. */
    RUN(STRICT);
    if (S) {
        free(S->allowed_origins.items[0]);
        S->allowed_origins.items[0] = strdup("*");
        rerun();
    }
    only(true, "ALLOWED_ORIGINS contains the wildcard", "#13 wildcard origin (strict)");
    RUN(PROD);
    if (S) {
        free(S->allowed_origins.items[0]);
        S->allowed_origins.items[0] = strdup("*");
        rerun();
    }
    none("#13 wildcard origin is not checked in normal mode");
    /* 14 */
    RUN(STRICT, "SESSION_COOKIE_SECURE=false");
    only(true, "SESSION_COOKIE_SECURE", "#14 insecure cookie (strict, production)");
    RUN(STRICT, "ENVIRONMENT=staging", "SESSION_COOKIE_SECURE=false");
    only(true, "SESSION_COOKIE_SECURE", "#14 insecure cookie (strict, staging)");
    RUN(STRICT, "ENVIRONMENT=local", "SESSION_COOKIE_SECURE=false");
    none("#14 not for ENVIRONMENT=local");
    RUN(PROD, "SESSION_COOKIE_SECURE=false");
    none("#14 not in normal mode");
}

static void test_rate_limits(void)
{
    RUN("LOGIN_RATE_LIMIT_REQUESTS=76", "LOGIN_RATE_LIMIT_WINDOW_MINUTES=15");
    only(false, "5.1 login attempts per minute", "#15 76/15 login rate (normal)");
    RUN(STRICT, "LOGIN_RATE_LIMIT_REQUESTS=76", "LOGIN_RATE_LIMIT_WINDOW_MINUTES=15");
    only(false, "LOGIN_RATE_LIMIT_REQUESTS", "#15 76/15 login rate (strict)");
    RUN("LOGIN_RATE_LIMIT_REQUESTS=75", "LOGIN_RATE_LIMIT_WINDOW_MINUTES=15");
    none("#15 exactly 5.0 per minute");
    RUN("TOKEN_MODE=hybrid", "REFRESH_RATE_LIMIT_REQUESTS=101",
        "REFRESH_RATE_LIMIT_WINDOW_MINUTES=5");
    only(false, "20.2 refreshes per minute", "#16 101/5 refresh rate (normal)");
    RUN(STRICT, "TOKEN_MODE=hybrid", "REFRESH_RATE_LIMIT_REQUESTS=101",
        "REFRESH_RATE_LIMIT_WINDOW_MINUTES=5");
    only(false, "REFRESH_RATE_LIMIT_REQUESTS", "#16 101/5 refresh rate (strict)");
    RUN("TOKEN_MODE=hybrid", "REFRESH_RATE_LIMIT_REQUESTS=100",
        "REFRESH_RATE_LIMIT_WINDOW_MINUTES=5");
    none("#16 exactly 20.0 per minute");
    RUN("REFRESH_RATE_LIMIT_REQUESTS=1000", "REFRESH_RATE_LIMIT_WINDOW_MINUTES=1");
    none("#16 not for stateless services");
}

static void test_boundary_hosts(void)
{
    /* 17, 18 */
    RUN(PROD, "-TOKEN_ISSUER");
    only(false, "TOKEN_ISSUER", "#17 no issuer in production (normal)");
    RUN(STRICT, "TOKEN_ISSUER=");
    only(true, "TOKEN_ISSUER", "#17 empty issuer in production (strict)");
    RUN(PROD, "-TOKEN_AUDIENCE");
    only(false, "TOKEN_AUDIENCE", "#18 no audience in production (normal)");
    RUN(STRICT, "-TOKEN_AUDIENCE");
    only(true, "TOKEN_AUDIENCE", "#18 no audience in production (strict)");
    RUN("-TOKEN_ISSUER", "-TOKEN_AUDIENCE");
    none("#17/#18 only in production");
    /* 19 */
    RUN(STRICT, "ALLOWED_HOSTS=*");
    only(true, "ALLOWED_HOSTS contains the wildcard", "#19 wildcard host (strict)");
    RUN(PROD, "ALLOWED_HOSTS=*");
    none("#19 wildcard host not checked in normal mode");
    /* 20 */
    RUN(PROD, "-ALLOWED_HOSTS");
    only(false, "ALLOWED_HOSTS is not set", "#20 no ALLOWED_HOSTS in production (normal)");
    RUN(STRICT, "ALLOWED_HOSTS=");
    only(true, "ALLOWED_HOSTS is not set", "#20 no ALLOWED_HOSTS in production (strict)");
    RUN("STRICT_PRODUCTION_MODE=true");
    only(true, "ALLOWED_HOSTS", "#20 strict makes it fatal even when ENVIRONMENT=local");
    RUN("ENVIRONMENT=staging");
    none("#20 not in staging without strict");
}

static void test_internal_http(void)
{
    RUN(PROD, "ENVIRONMENT=staging", "ACCESS_TOKEN_ALGORITHM=RS256",
        "JWKS_URI=http://auth:8000/jwks");
    only(false, "JWKS_URI uses plain http://", "#21 http JWKS in staging (normal)");
    RUN(PROD, "ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=HTTP://auth:8000/jwks");
    only(false, "ALLOW_INTERNAL_HTTP", "#21 http JWKS in production (normal)");
    RUN(STRICT, "ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=http://auth:8000/jwks");
    only(true, "JWKS_URI uses plain http://", "#21 http JWKS (strict)");
    RUN(STRICT, "ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=http://auth:8000/jwks",
        "ALLOW_INTERNAL_HTTP=true");
    none("#21 ALLOW_INTERNAL_HTTP=true allows it");
    RUN(PROD, "ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://auth.example.com/jwks");
    none("#21 https JWKS");
    RUN(PROD, "ENVIRONMENT=development", "STRICT_PRODUCTION_MODE=true",
        "ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=http://auth:8000/jwks");
    none("#21 never in development, even under strict");
    RUN(PROD, "ENVIRONMENT=staging", "INTROSPECTION_URL=http://auth:8000/jti-status");
    only(false, "INTROSPECTION_URL uses plain http://",
         "#22 http introspection in staging (normal)");
    RUN(STRICT, "INTROSPECTION_URL=http://auth:8000/jti-status", "INTERNAL_CLIENT_ID=svc",
        "PRIVATE_API_SECRET=s");
    only(true, "INTROSPECTION_URL uses plain http://", "#22 http introspection (strict)");
    RUN(STRICT, "INTROSPECTION_URL=http://auth:8000/jti-status", "INTERNAL_CLIENT_ID=svc",
        "PRIVATE_API_SECRET=s", "ALLOW_INTERNAL_HTTP=yes");
    none("#22 ALLOW_INTERNAL_HTTP=true allows it");
    RUN("INTROSPECTION_URL=http://auth:8000/jti-status");
    none("#22 never in local");
}

static void test_event_signing(void)
{
    RUN("EVENT_SIGNING_ENABLED=false");
    only(false, "EVENT_SIGNING_ENABLED=false", "#23 unsigned events (normal)");
    RUN(STRICT, "EVENT_SIGNING_ENABLED=false");
    only(true, "EVENT_SIGNING_ENABLED=false", "#23 unsigned events (strict)");
    RUN("EVENT_SIGNING_ACCEPT_UNSIGNED=true");
    only(false, "EVENT_SIGNING_ACCEPT_UNSIGNED", "#24 accept unsigned in local: warning");
    RUN(PROD, "EVENT_SIGNING_ACCEPT_UNSIGNED=true");
    only(true, "EVENT_SIGNING_ACCEPT_UNSIGNED", "#24 accept unsigned in production: fatal");
    RUN(STRICT, "ENVIRONMENT=local", "EVENT_SIGNING_ACCEPT_UNSIGNED=true");
    only(true, "EVENT_SIGNING_ACCEPT_UNSIGNED", "#24 accept unsigned under strict: fatal");
}

static void test_credential_reuse(void)
{
    const char *sec = "Reused-Secret-Value-77";
    RUN("PRIVATE_API_SECRET=Reused-Secret-Value-77",
        "HEALTH_DETAIL_CREDENTIAL=Reused-Secret-Value-77");
    only(true, "CONFIG: HEALTH_DETAIL_CREDENTIAL must not equal PRIVATE_API_SECRET", "2.4 health");
    ok(well_formed(sec), "2.4 message does not contain the secret");
    RUN(STRICT, "PRIVATE_API_SECRET=Reused-Secret-Value-77",
        "METRICS_SCRAPE_CREDENTIAL=Reused-Secret-Value-77");
    only(true, "CONFIG: METRICS_SCRAPE_CREDENTIAL must not equal PRIVATE_API_SECRET",
         "2.4 metrics");
    RUN("PRIVATE_API_SECRET=x", "HEALTH_DETAIL_CREDENTIAL=x", "METRICS_SCRAPE_CREDENTIAL=x");
    ok(R.fatals.n == 2 && find(&R.fatals, "HEALTH") == 0 && find(&R.fatals, "METRICS") == 1,
       "2.4 both reused: two fatals, health first");
    RUN("PRIVATE_API_SECRET=x", "HEALTH_DETAIL_CREDENTIAL= x");
    none("2.4 plain untrimmed equality");
    RUN("PRIVATE_API_SECRET=", "HEALTH_DETAIL_CREDENTIAL=");
    none("2.4 empty values are skipped");
    RUN("HEALTH_DETAIL_CREDENTIAL=a", "METRICS_SCRAPE_CREDENTIAL=a");
    none("2.4 health and metrics are not compared with each other");
    RUN("PRIVATE_API_SECRET=a", "HEALTH_DETAIL_CREDENTIAL=b", "METRICS_SCRAPE_CREDENTIAL=c");
    none("2.4 distinct credentials");
}

static void test_order(void)
{
    /* One warning from every warning group, normal production. */
    RUN(PROD, "ENVIRONMENT=production", "JWKS_URI=http://auth:8000/jwks", "DB_HOST=db",
        "SET_DOCS=true", "LOGIN_RATE_LIMIT_REQUESTS=100", "-TOKEN_ISSUER", "-ALLOWED_HOSTS",
        "EVENT_SIGNING_ENABLED=false");
    const char *w[] = {"JWKS_URI is set but", "DB_HOST",      "SET_DOCS",
                       "LOGIN_RATE_LIMIT",    "TOKEN_ISSUER", "ALLOWED_HOSTS",
                       "JWKS_URI uses plain", "EVENT_SIGNING"};
    bool inorder = S && R.warnings.n == M8_ARRAY_LEN(w) && R.fatals.n == 0;
    for (size_t i = 0; inorder && i < M8_ARRAY_LEN(w); i++)
        inorder = find(&R.warnings, w[i]) == (int)i;
    ok(inorder, "warnings in group order: jwt, role, production, rate-limit, boundary, "
                "allowed-hosts, internal-http, event-signing");
    if (!inorder)
        dump();
    ok(well_formed(NULL), "every warning starts with 'CONFIG: '");
    /* One fatal from every fatal group, strict. */
    RUN(STRICT, "JWKS_URI=http://auth:8000/jwks", "BACKEND_CORS_ORIGINS=http://localhost:3000",
        "SESSION_COOKIE_SECURE=false", "-TOKEN_AUDIENCE", "ALLOWED_HOSTS=*",
        "EVENT_SIGNING_ENABLED=false", "PRIVATE_API_SECRET=p", "HEALTH_DETAIL_CREDENTIAL=p");
    if (S) {
        S->access_token_algorithm = M8_ALG_RS256;
        free(S->jwks_uri);
        S->jwks_uri = NULL;
        S->auth_service_role = M8_ROLE_ISSUER;
        S->token_mode = M8_MODE_HYBRID;
        S->access_private_key_file = NULL;
        rerun();
    }
    const char *f[] = {"ACCESS_TOKEN_ALGORITHM=RS256 is asymmetric",
                       "AUTH_SERVICE_ROLE=issuer",
                       "REDIS_HOST",
                       "ALLOWED_ORIGINS",
                       "SESSION_COOKIE_SECURE",
                       "TOKEN_AUDIENCE",
                       "ALLOWED_HOSTS contains",
                       "EVENT_SIGNING_ENABLED",
                       "HEALTH_DETAIL_CREDENTIAL"};
    inorder = S && R.fatals.n == M8_ARRAY_LEN(f);
    for (size_t i = 0; inorder && i < M8_ARRAY_LEN(f); i++)
        inorder = find(&R.fatals, f[i]) == (int)i;
    ok(inorder, "fatals in group order: jwt, role, redis, production, strict, boundary, hosts, "
                "event-signing, then credential reuse");
    if (!inorder)
        dump();
    is_int(NF, R.fatals.n, "the return value is the number of fatals");
    ok(well_formed(NULL), "every fatal starts with 'CONFIG: '");
    RUN(STRICT, "JWKS_URI=http://auth:8000/jwks", "ACCESS_TOKEN_ALGORITHM=RS256",
        "-TOKEN_AUDIENCE");
    ok(R.fatals.n == 2 && find(&R.fatals, "TOKEN_AUDIENCE") == 0 &&
           find(&R.fatals, "JWKS_URI uses plain") == 1,
       "boundary fatals come before internal-http fatals");
}

int main(void)
{
    test_clean();
    test_jwt();
    test_role();
    test_production();
    test_strict();
    test_rate_limits();
    test_boundary_hosts();
    test_internal_http();
    test_event_signing();
    test_credential_reuse();
    test_order();
    m8_settings_free(S);
    m8_errlist_free(&E);
    m8_config_report_free(&R);
    return done_testing();
}
