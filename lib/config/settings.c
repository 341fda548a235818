/* settings.c - loading, validation and computed values of the consumer
 * settings (settings.h; CONTRACT.md Part A 1, Decisions D1-D5).
 *
 * Order of work: find and parse the .env file; gather one raw text per field
 * from NAME_FILE > process environment > .env (D1); parse every field and
 * report every field-level error together; then run the model checks of 1.3
 * in order, stopping at the first failure; then the computed values of 1.4.
 * No error line ever contains a value: only names and file paths.  The value
 * grammar and the pattern matchers live in settings_values.c. */
#include "config/settings.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/dotenv.h"
#include "auth/keys.h"

/* ------------------------------------------------------------ error lists */

void m8_errlist_add(m8_errlist *e, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **nl = realloc(e->lines, (e->n + 1) * sizeof *nl);
    if (!nl)
        return;
    e->lines = nl;
    if ((e->lines[e->n] = strdup(line)) != NULL)
        e->n++;
}

void m8_errlist_free(m8_errlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->lines[i]);
    free(e->lines);
    e->lines = NULL;
    e->n = 0;
}

/* ------------------------------------------------------------ the fields */

enum { F_STR, F_SECRET, F_PATH, F_BOOL, F_INT, F_FLOAT, F_ENUM, F_URL, F_LIST };
enum {
    V_NONE,
    V_HOST,
    V_KEY,
    V_SLUG,
    V_API_PREFIX,
    V_PROJECT,
    V_EMAIL,
    V_ORIGINS,
    V_HTTP,
    V_ROLE,
    V_STATUS
};
#define REQ 1u         /* required */
#define REQ_DB 2u      /* required when the service uses a database (D4) */
#define EMPTY_UNSET 4u /* a list whose empty value means unset */

typedef struct field {
    const char *name;
    unsigned char type, check, flags;
    size_t off;
    const char *def;          /* default as text, NULL = unset */
    long long lo, hi;         /* int bounds */
    double fmax;              /* float bounds: > 0 and <= fmax */
    const char *const *names; /* enum values; the index is the C value */
} field;

static const char *const env_names[] = {"local", "development", "staging", "production", NULL};
static const char *const alg_names[] = {"RS256", "ES256", "HS256", NULL};
static const char *const mode_names[] = {"stateless", "stateful", "hybrid", NULL};
static const char *const role_names[] = {"consumer", "issuer", NULL};
static const char *const fail_names[] = {"fail_closed", "fail_open", NULL};
static const char *const db_names[] = {"Mysql", "Postgres", NULL};

#define OFF(m) offsetof(m8_settings, m)
#define NOB LLONG_MIN, LLONG_MAX
/* clang-format off */
#define STR(N, m, d, fl, v) {N, F_STR, v, fl, OFF(m), d, 0, 0, 0, NULL}
#define SEC(N, m, fl) {N, F_SECRET, V_NONE, fl, OFF(m), NULL, 0, 0, 0, NULL}
#define PTH(N, m) {N, F_PATH, V_NONE, 0, OFF(m), NULL, 0, 0, 0, NULL}
#define BOO(N, m, d) {N, F_BOOL, V_NONE, 0, OFF(m), d, 0, 0, 0, NULL}
#define INT(N, m, d, fl, ...) {N, F_INT, V_NONE, fl, OFF(m), d, __VA_ARGS__, 0, NULL}
#define FLT(N, m, d, mx) {N, F_FLOAT, V_NONE, 0, OFF(m), d, 0, 0, mx, NULL}
#define ENU(N, m, d, e, v) {N, F_ENUM, v, 0, OFF(m), d, 0, 0, 0, e}
#define URL(N, m, fl) {N, F_URL, V_NONE, fl, OFF(m), NULL, 0, 0, 0, NULL}
#define LST(N, m, d, fl) {N, F_LIST, V_NONE, fl, OFF(m), d, 0, 0, 0, NULL}
/* clang-format on */

static const field fields[] = {
    /* Core and routing */
    STR("DOMAIN", domain, NULL, REQ, V_HOST),
    {"ENVIRONMENT", F_ENUM, V_NONE, REQ, OFF(environment), NULL, 0, 0, 0, env_names},
    STR("API_PREFIX", api_prefix, NULL, REQ, V_API_PREFIX),
    STR("PROJECT_NAME", project_name, NULL, REQ, V_PROJECT),
    STR("STACK_NAME", stack_name, NULL, REQ, V_SLUG),
    BOO("SET_OPEN_API", set_open_api, "true"),
    BOO("SET_DOCS", set_docs, "true"),
    BOO("SET_REDOC", set_redoc, "true"),
    BOO("SERVE_DOCS_IN_PRODUCTION", serve_docs_in_production, "false"),
    URL("BACKEND_HOST", backend_host, REQ),
    URL("FRONTEND_HOST", frontend_host, REQ),
    STR("BACKEND_CORS_ORIGINS", backend_cors_origins, NULL, REQ, V_ORIGINS),
    LST("ALLOWED_HOSTS", allowed_hosts, NULL, EMPTY_UNSET),
    LST("CORS_ALLOWED_ORIGIN_SCHEMES", cors_allowed_origin_schemes, "[]", 0),
    LST("OAUTH_ALLOWED_REDIRECT_SCHEMES", oauth_allowed_redirect_schemes,
        "[\"chrome-extension://\"]", 0),
    LST("OAUTH_ALLOWED_REDIRECT_PREFIXES", oauth_allowed_redirect_prefixes, "[]", 0),
    /* Tokens, keys, binding */
    ENU("ACCESS_TOKEN_ALGORITHM", access_token_algorithm, "RS256", alg_names, V_NONE),
    SEC("ACCESS_SECRET_KEY", access_secret_key, 0),
    PTH("ACCESS_PUBLIC_KEY_FILE", access_public_key_file),
    PTH("ACCESS_PRIVATE_KEY_FILE", access_private_key_file),
    SEC("REFRESH_SECRET_KEY", refresh_secret_key, 0), /* D2: issuer-only, never required */
    SEC("REFRESH_SECRET_KEY_OLD", refresh_secret_key_old, 0),
    STR("REFRESH_TOKEN_ALGORITHM", refresh_token_algorithm, "HS256", 0, V_NONE),
    SEC("SECRET_KEY", secret_key, 0),
    ENU("TOKEN_MODE", token_mode, "stateful", mode_names, V_NONE),
    BOO("TOKEN_STRICT_VALIDATION", token_strict_validation, "true"),
    STR("TOKEN_ISSUER", token_issuer, NULL, 0, V_NONE),
    STR("TOKEN_AUDIENCE", token_audience, NULL, 0, V_NONE),
    STR("JWKS_URI", jwks_uri, NULL, 0, V_HTTP),
    INT("JWKS_CACHE_TTL_SECONDS", jwks_cache_ttl_seconds, "300", 0, NOB),
    /* fcgi-m8 only: how long the last good set serves while the issuer is
     * unreachable, then 503 (1 s to a year) */
    INT("JWKS_MAX_STALE_SECONDS", jwks_max_stale_seconds, "86400", 0, 1, 31536000),
    STR("ACCESS_KEY_ID", access_key_id, NULL, 0, V_NONE),
    ENU("AUTH_SERVICE_ROLE", auth_service_role, "consumer", role_names, V_ROLE),
    {"AUTH_INVALID_TOKEN_STATUS", F_INT, V_STATUS, 0, OFF(auth_invalid_token_status), "401", 401,
     403, 0, NULL},
    INT("ACCESS_TOKEN_EXPIRE_MINUTES", access_token_expire_minutes, "30", 0, NOB),
    INT("REFRESH_TOKEN_EXPIRE_MINUTES", refresh_token_expire_minutes, "120", 0, NOB),
    INT("REFRESH_TOKEN_COOKIE_EXPIRE_SECONDS", refresh_token_cookie_expire_seconds, "3600", 0, NOB),
    /* Production posture, headers, event signing */
    BOO("STRICT_PRODUCTION_MODE", strict_production_mode, "false"),
    BOO("ALLOW_INTERNAL_HTTP", allow_internal_http, "false"),
    BOO("SESSION_COOKIE_SECURE", session_cookie_secure, "true"),
    BOO("SECURITY_HEADERS_ENABLED", security_headers_enabled, "true"),
    BOO("HSTS_ENABLED", hsts_enabled, "false"),
    INT("HSTS_MAX_AGE", hsts_max_age, "31536000", 0, NOB),
    BOO("HSTS_INCLUDE_SUBDOMAINS", hsts_include_subdomains, "true"),
    BOO("CONTENT_SECURITY_POLICY_ENABLED", content_security_policy_enabled, "false"),
    STR("CONTENT_SECURITY_POLICY", content_security_policy, NULL, 0, V_NONE),
    STR("REFERRER_POLICY", referrer_policy, "strict-origin-when-cross-origin", 0, V_NONE),
    STR("PERMISSIONS_POLICY", permissions_policy,
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
        "microphone=(), payment=(), usb=()",
        0, V_NONE),
    BOO("EVENT_SIGNING_ENABLED", event_signing_enabled, "true"),
    SEC("EVENT_SIGNING_KEY", event_signing_key, 0),
    BOO("EVENT_SIGNING_ACCEPT_UNSIGNED", event_signing_accept_unsigned, "false"),
    URL("SENTRY_DSN", sentry_dsn, 0),
    /* Degradation policy */
    BOO("AUTH_STRICT_MODE", auth_strict_mode, "false"),
    ENU("ACCESS_REVOCATION_FAILURE_MODE", access_revocation_failure_mode, "fail_closed", fail_names,
        V_NONE),
    ENU("REFRESH_VALIDATION_FAILURE_MODE", refresh_validation_failure_mode, "fail_closed",
        fail_names, V_NONE),
    ENU("SESSION_WRITE_FAILURE_MODE", session_write_failure_mode, "fail_closed", fail_names,
        V_NONE),
    ENU("RATE_LIMIT_FAILURE_MODE", rate_limit_failure_mode, "fail_open", fail_names, V_NONE),
    /* Database */
    ENU("SELECTED_DB", selected_db, "Mysql", db_names, V_NONE),
    STR("DB_HOST", db_host, NULL, REQ_DB, V_HOST),
    INT("DB_PORT", db_port, NULL, REQ_DB, 1, 65535),
    STR("DB_DATABASE", db_database, NULL, REQ_DB, V_KEY),
    STR("DB_USER", db_user, NULL, REQ_DB, V_KEY),
    SEC("DB_PASSWORD", db_password, REQ_DB),
    STR("DB_ENGINE", db_engine, "InnoDB", 0, V_NONE),
    STR("DB_CHARSET", db_charset, "utf8mb4", 0, V_NONE),
    STR("TABLES_PREFIX", tables_prefix, "app", 0, V_NONE),
    /* Redis (validated only) */
    STR("REDIS_HOST", redis_host, NULL, 0, V_HOST),
    INT("REDIS_PORT", redis_port, NULL, 0, NOB),
    STR("REDIS_USER", redis_user, NULL, 0, V_KEY),
    SEC("REDIS_PASSWORD", redis_password, 0),
    BOO("REDIS_SSL", redis_ssl, "false"),
    PTH("REDIS_SSL_CA", redis_ssl_ca),
    PTH("REDIS_SSL_CERT", redis_ssl_cert),
    PTH("REDIS_SSL_KEY", redis_ssl_key),
    /* Issuer-only knobs (validated only) */
    INT("LOGIN_RATE_LIMIT_REQUESTS", login_rate_limit_requests, "5", 0, 1, 1000),
    INT("LOGIN_RATE_LIMIT_WINDOW_MINUTES", login_rate_limit_window_minutes, "15", 0, 1, 1440),
    INT("REFRESH_RATE_LIMIT_REQUESTS", refresh_rate_limit_requests, "10", 0, 1, 1000),
    INT("REFRESH_RATE_LIMIT_WINDOW_MINUTES", refresh_rate_limit_window_minutes, "5", 0, 1, 1440),
    STR("SMTP_HOST", smtp_host, NULL, 0, V_NONE),
    INT("SMTP_PORT", smtp_port, "587", 0, NOB),
    STR("EMAILS_FROM_EMAIL", emails_from_email, NULL, 0, V_EMAIL),
    STR("EMAILS_FROM_NAME", emails_from_name, NULL, 0, V_NONE),
    STR("EMAIL_TEST_USER", email_test_user, "test@example.com", 0, V_EMAIL),
    /* ConsumerAuthMixin */
    URL("INTROSPECTION_URL", introspection_url, 0),
    SEC("PRIVATE_API_SECRET", private_api_secret, 0),
    /* Observability */
    BOO("METRICS_ENABLED", metrics_enabled, "false"),
    STR("METRICS_GROUPS", metrics_groups, "all", 0, V_NONE),
    /* ConsumerServiceSettings */
    STR("AUTH_PREFIX", auth_prefix, "/auth", 0, V_NONE),
    FLT("EVENT_STREAM_CONNECT_TIMEOUT", event_stream_connect_timeout, "5.0", 300),
    FLT("EVENT_STREAM_READ_TIMEOUT", event_stream_read_timeout, "60.0", 3600),
    INT("REVOCATION_CACHE_TTL_SECONDS", revocation_cache_ttl_seconds, "0", 0, 0, LLONG_MAX),
    STR("INTERNAL_CLIENT_ID", internal_client_id, NULL, 0, V_NONE),
    BOO("SERVICE_TOKEN_EXCHANGE_ENABLED", service_token_exchange_enabled, "false"),
    LST("SERVICE_TOKEN_SCOPES", service_token_scopes, NULL, EMPTY_UNSET),
    INT("SERVICE_TOKEN_REFRESH_LEEWAY_SECONDS", service_token_refresh_leeway_seconds, "30", 0, 0,
        LLONG_MAX),
    BOO("API_KEY_INTROSPECTION_ENABLED", api_key_introspection_enabled, "false"),
    URL("API_KEY_INTROSPECTION_URL", api_key_introspection_url, 0),
    FLT("API_KEY_INTROSPECTION_CONNECT_TIMEOUT", api_key_introspection_connect_timeout, "2.0", 30),
    FLT("API_KEY_INTROSPECTION_READ_TIMEOUT", api_key_introspection_read_timeout, "3.0", 30),
    FLT("API_KEY_INTROSPECTION_POOL_TIMEOUT", api_key_introspection_pool_timeout, "2.0", 30),
    INT("API_KEY_INTROSPECTION_MAX_CONCURRENCY", api_key_introspection_max_concurrency, "20", 0, 1,
        1000),
    INT("API_KEY_INTROSPECTION_MAX_RESPONSE_BYTES", api_key_introspection_max_response_bytes,
        "8192", 0, 256, 1048576),
    STR("API_KEY_INTROSPECTION_SCHEMA_VERSION", api_key_introspection_schema_version, "1", 0,
        V_NONE),
    INT("API_KEY_INTROSPECTION_CIRCUIT_FAILURE_THRESHOLD",
        api_key_introspection_circuit_failure_threshold, "5", 0, 1, 1000),
    FLT("API_KEY_INTROSPECTION_CIRCUIT_RESET_SECONDS", api_key_introspection_circuit_reset_seconds,
        "30.0", 3600),
    SEC("HEALTH_DETAIL_CREDENTIAL", health_detail_credential, 0),
    SEC("METRICS_SCRAPE_CREDENTIAL", metrics_scrape_credential, 0),
    /* Meta (Part B 5.3) */
    STR("SERVICE_VERSION", service_version, NULL, REQ, V_NONE),
    STR("API_VERSION", api_version, "v1", 0, V_NONE),
    STR("CONTRACT_NAME", contract_name, NULL, 0, V_NONE),
    STR("CONTRACT_VERSION", contract_version, NULL, REQ, V_NONE),
    STR("CONTRACT_RANGE", contract_range, NULL, REQ, V_NONE),
};
#define NFIELDS M8_ARRAY_LEN(fields)

/* Names that are computed, never set (an error in .env, ignored in env). */
static const char *const computed_names[] = {"ALLOWED_ORIGINS", "SQLALCHEMY_DATABASE_URI",
                                             "ACCESS_PUBLIC_KEY"};

#define AT(s, f, T) ((T *)(void *)((char *)(s) + (f)->off))

static int field_index(const char *name)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        if (m8_strcaseeq(fields[i].name, name))
            return (int)i;
    }
    return -1;
}

bool m8_settings_known(const char *name)
{
    return field_index(name) >= 0;
}

static bool blank(const char *s)
{
    if (!s)
        return true;
    return m8_trim(&s, strlen(s)) == 0;
}

static char *dup_trimmed(const char *v)
{
    const char *p = v;
    size_t n = m8_trim(&p, strlen(v));
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, p, n);
        out[n] = '\0';
    }
    return out;
}

static void wipe_free(char *p)
{
    if (p) {
        sodium_memzero(p, strlen(p));
        free(p);
    }
}

/* ------------------------------------------------------------ one field */

static const char *check_text(const field *f, const char *v)
{
    switch (f->check) {
    case V_HOST:
        return m8_match_host(v) ? NULL
                                : "must be localhost, an IPv4 address with an optional :port, a "
                                  "dotted host name or a single name of letters, digits, '_' "
                                  "and '-' (HOST pattern)";
    case V_KEY:
        return m8_match_key(v) ? NULL
                               : "may contain only letters, digits, '_' and '-' (KEY pattern)";
    case V_SLUG:
        return m8_match_slug(v) ? NULL
                                : "may contain only lower-case letters, digits and '-' (SLUG "
                                  "pattern)";
    case V_API_PREFIX:
        /* Empty is left to the required-value check (1.3 step 10). */
        if (!*v || (m8_match_url_path(v) && v[0] == '/' && v[strlen(v) - 1] != '/'))
            return NULL;
        return "must start with '/', must not end with '/', and may contain only letters, "
               "digits and - . _ ~ /";
    case V_PROJECT:
        return m8_match_project_name(v) ? NULL : "must be printable UTF-8 text of 1 to 128 bytes";
    case V_EMAIL: return m8_match_email(v) ? NULL : "must be an e-mail address";
    case V_HTTP: {
        const char *p = v;
        size_t n = m8_trim(&p, strlen(v));
        if (n == 0 || (n > 7 && m8_memcaseeq(p, 7, "http://")) ||
            (n > 8 && m8_memcaseeq(p, 8, "https://")))
            return NULL;
        return "must be an http or https URL";
    }
    default: return NULL;
    }
}

static void enum_choices(const field *f, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; f->names[i] && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", f->names[i]);
}

/* Parses v into field f of s.  Returns an error reason or NULL. */
static const char *parse_field(m8_settings *s, const field *f, const char *v, char *buf,
                               size_t blen)
{
    const char *why = NULL;
    switch (f->type) {
    case F_STR:
        if ((why = check_text(f, v)) != NULL)
            return why;
        if (f->check == V_ORIGINS && m8_parse_origins(v, &s->allowed_origins, &why) != 0)
            return why;
        /* fallthrough */
    case F_SECRET: return (*AT(s, f, char *) = strdup(v)) ? NULL : "out of memory";
    case F_PATH:
        if (*v && !(*AT(s, f, char *) = strdup(v)))
            return "out of memory";
        return NULL;
    case F_BOOL:
        return m8_parse_bool(v, AT(s, f, bool))
                   ? "must be a boolean (true/false, 1/0, yes/no, on/off, t/f, y/n)"
                   : NULL;
    case F_INT: {
        long long x;
        if (m8_parse_int(v, &x))
            return "must be an integer";
        if (f->check == V_STATUS && x != 401 && x != 403)
            return "must be 401 or 403";
        if (x < f->lo || x > f->hi) {
            if (f->hi == LLONG_MAX)
                snprintf(buf, blen, "must be at least %lld", f->lo);
            else
                snprintf(buf, blen, "must be between %lld and %lld", f->lo, f->hi);
            return buf;
        }
        *AT(s, f, long long) = x;
        return NULL;
    }
    case F_FLOAT: {
        double x;
        if (m8_parse_float(v, &x))
            return "must be a number";
        if (!(x > 0 && x <= f->fmax)) {
            snprintf(buf, blen, "must be greater than 0 and at most %g", f->fmax);
            return buf;
        }
        *AT(s, f, double) = x;
        return NULL;
    }
    case F_ENUM:
        for (int i = 0; f->names[i]; i++) {
            if (strcmp(v, f->names[i]) == 0) {
                if (f->check == V_ROLE && i == M8_ROLE_ISSUER)
                    return "fcgi-m8 services validate tokens; they never issue them (use "
                           "AUTH_SERVICE_ROLE=consumer)";
                *AT(s, f, int) = i;
                return NULL;
            }
        }
        memcpy(buf, "must be one of: ", 17);
        enum_choices(f, buf + 16, blen - 16);
        return buf;
    case F_URL:
        return m8_normalize_url(v, AT(s, f, char *)) ? "must be an http or https URL" : NULL;
    case F_LIST:
        return m8_parse_list(v, AT(s, f, m8_strlist))
                   ? "must be a JSON array of strings or a comma-separated list"
                   : NULL;
    default: return "unknown field type";
    }
}

/* Python's repr() of a float: the shortest text that reads back the same. */
static void float_text(double x, char *buf, size_t len)
{
    if (isnan(x)) {
        snprintf(buf, len, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(buf, len, x < 0 ? "-inf" : "inf");
        return;
    }
    bool fixed = x == 0 || (fabs(x) >= 1e-4 && fabs(x) < 1e16);
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, fixed ? "%.*f" : "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    if (!strpbrk(buf, ".e"))
        snprintf(buf + strlen(buf), len - strlen(buf), ".0");
}

static char *join(const m8_strlist *l)
{
    m8_buf b;
    m8_buf_init(&b, SIZE_MAX / 2);
    int rc = m8_buf_puts(&b, "");
    for (size_t i = 0; !rc && i < l->n; i++) {
        if (i)
            rc = m8_buf_putc(&b, ',');
        if (!rc)
            rc = m8_buf_puts(&b, l->items[i]);
    }
    if (rc) {
        m8_buf_free(&b);
        return NULL;
    }
    return m8_buf_steal(&b);
}

/* The text of field f for m8_setting(); NULL when unset.  Caller frees. */
static char *field_text(const m8_settings *s, const field *f, bool has_value)
{
    char buf[64];
    switch (f->type) {
    case F_STR:
    case F_SECRET:
    case F_PATH:
    case F_URL: return m8_strdup0(*AT(s, f, char *));
    case F_BOOL: return strdup(*AT(s, f, bool) ? "true" : "false");
    case F_INT:
        if (!has_value)
            return NULL;
        snprintf(buf, sizeof buf, "%lld", *AT(s, f, long long));
        return strdup(buf);
    case F_FLOAT: float_text(*AT(s, f, double), buf, sizeof buf); return strdup(buf);
    case F_ENUM: return strdup(f->names[*AT(s, f, int)]);
    case F_LIST: {
        const m8_strlist *l = AT(s, f, m8_strlist);
        if (l->n == 0 && (f->flags & EMPTY_UNSET))
            return NULL;
        return join(l);
    }
    default: return NULL;
    }
}

/* ------------------------------------------------------------ sources */

/* The value of an exact "NAME=" entry of env, or NULL. */
static const char *env_exact(char *const *env, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; env && env[i]; i++) {
        if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=')
            return env[i] + nl + 1;
    }
    return NULL;
}

static const char *dotenv_lookup(const char *name, void *data)
{
    return env_exact(data, name);
}


/* D1: --env-file, else M8_ENV_FILE, else the first .env walking up from cwd.
 * Returns 0 with *path NULL when no file applies; <0 after an error line. */
static int find_env_file(const m8_settings_source *src, char **path)
{
    *path = NULL;
    if (src->env_file) {
        if (!(*path = strdup(src->env_file)))
            return M8_ENOMEM;
        return 0;
    }
    const char *named = env_exact(src->env, "M8_ENV_FILE");
    if (named && *named) {
        if (!(*path = strdup(named)))
            return M8_ENOMEM;
        return 0;
    }
    char dir[PATH_MAX];
    char *real = realpath(src->cwd ? src->cwd : ".", NULL);
    if (!real) {
        return 0; /* an unreadable cwd has no .env to find */
    }
    snprintf(dir, sizeof dir, "%s", real);
    free(real);

    for (;;) {
        char cand[PATH_MAX + 8];
        snprintf(cand, sizeof cand, "%s/.env", strcmp(dir, "/") == 0 ? "" : dir);
        struct stat st;
        if (stat(cand, &st) == 0 && !S_ISDIR(st.st_mode))
            return (*path = strdup(cand)) ? 0 : M8_ENOMEM;
        char *slash = strrchr(dir, '/');
        if (!slash || strcmp(dir, "/") == 0)
            return 0;
        if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
    }
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64)
        la = 64;
    if (lb > 64)
        lb = 64;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            char ca = a[i - 1], cb = b[j - 1];
            if (ca >= 'a' && ca <= 'z')
                ca = (char)(ca - 32);
            size_t sub = prev[j - 1] + (ca != cb);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof prev);
    }
    return prev[lb];
}

static const char *nearest_name(const char *key)
{
    size_t best = SIZE_MAX;
    const char *name = fields[0].name;
    for (size_t i = 0; i < NFIELDS; i++) {
        size_t d = edit_distance(key, fields[i].name);
        if (d < best) {
            best = d;
            name = fields[i].name;
        }
    }
    return name;
}

/* A key as it may appear in a message: printable ASCII, at most 64 bytes. */
static void show_key(const char *key, char *buf, size_t len)
{
    size_t i = 0;
    for (; key[i] && i < 64 && i + 4 < len; i++)
        buf[i] = (key[i] > 0x20 && key[i] < 0x7f) ? key[i] : '?';
    buf[i] = '\0';
    if (key[i] && i + 4 < len)
        memcpy(buf + i, "...", 4);
}

/* Checks the keys of the .env file and records each field's value. */
static void take_dotenv(const m8_dotenv *d, const char *path, const char **raw, unsigned *rawline,
                        m8_errlist *errs)
{
    for (size_t i = 0; i < d->n; i++) {
        const m8_dotenv_pair *p = &d->pairs[i];
        char shown[72];
        show_key(p->key, shown, sizeof shown);
        int fi = field_index(p->key);
        if (fi >= 0) {
            /* Names differing only in case: the later line wins. */
            if (!raw[fi] || p->line >= rawline[fi]) {
                raw[fi] = p->value;
                rawline[fi] = p->line;
            }
            continue;
        }
        bool computed = false;
        for (size_t k = 0; k < M8_ARRAY_LEN(computed_names); k++)
            computed |= m8_strcaseeq(p->key, computed_names[k]) != 0;
        size_t kl = strlen(p->key);
        if (computed) {
            m8_errlist_add(errs, "%s line %u: '%s' is computed and cannot be set", path, p->line,
                           shown);
        } else if (kl > 5 && m8_strcaseeq(p->key + kl - 5, "_FILE")) {
            m8_errlist_add(errs,
                           "%s line %u: unknown setting '%s' (NAME_FILE secret files are read "
                           "only from the process environment); did you mean '%s'?",
                           path, p->line, shown, nearest_name(p->key));
        } else {
            m8_errlist_add(errs, "%s line %u: unknown setting '%s'; did you mean '%s'?", path,
                           p->line, shown, nearest_name(p->key));
        }
    }
}

/* Process environment: known names only, any case; an exact match wins. */
static void take_env(char *const *env, const char **raw, m8_errlist *errs)
{
    bool exact[NFIELDS] = {false};
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (!eq || eq == env[i] || (size_t)(eq - env[i]) > 64)
            continue;
        char name[72];
        memcpy(name, env[i], (size_t)(eq - env[i]));
        name[eq - env[i]] = '\0';
        int fi = field_index(name);
        if (fi < 0)
            continue;
        bool ex = strcmp(name, fields[fi].name) == 0;
        if (exact[fi] && !ex)
            continue;
        if (strlen(eq + 1) > M8_MAX_ENV_LINE_BYTES) {
            m8_errlist_add(errs, "%s: value exceeds %u bytes", fields[fi].name,
                           (unsigned)M8_MAX_ENV_LINE_BYTES);
            continue;
        }
        raw[fi] = eq + 1;
        exact[fi] = ex;
    }
}

/* NAME_FILE secret files (exact upper-case names, process environment only). */
static void take_files(char *const *env, const char **raw, char **owned, bool *failed,
                       m8_errlist *errs)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        char name[80];
        snprintf(name, sizeof name, "%s_FILE", fields[i].name);
        const char *path = env_exact(env, name);
        if (!path || !*path)
            continue;
        char *text = NULL;
        size_t len = 0;
        int rc = m8_read_file(path, M8_MAX_SECRET_FILE_BYTES, true, &text, &len);
        failed[i] = rc != 0;
        if (rc == M8_ENOTFOUND) {
            m8_errlist_add(errs, "%s points to a missing file", name);
        } else if (rc == M8_ETOOBIG) {
            m8_errlist_add(errs, "%s: the file exceeds %u bytes", name,
                           (unsigned)M8_MAX_SECRET_FILE_BYTES);
        } else if (rc) {
            m8_errlist_add(errs, "%s: the file cannot be read", name);
        } else if (memchr(text, '\0', len)) {
            m8_errlist_add(errs, "%s: the file contains a NUL byte", name);
            failed[i] = true;
        } else {
            owned[i] = dup_trimmed(text);
            raw[i] = owned[i];
        }
        if (failed[i])
            raw[i] = NULL; /* reported once, as NAME_FILE */
        if (text) {
            sodium_memzero(text, len);
            free(text);
        }
    }
}

/* ------------------------------------------------------------ model checks */

/* Reads a PEM file named by setting name into *pem (trimmed).  0 or an error line. */
static int load_pem(const char *name, const char *path, char **pem, m8_errlist *errs)
{
    char *text = NULL;
    size_t len = 0;
    int rc = m8_read_file(path, M8_MAX_PEM_BYTES, true, &text, &len);
    if (rc == M8_ENOTFOUND)
        m8_errlist_add(errs, "%s not found: %s", name, path);
    else if (rc == M8_ETOOBIG)
        m8_errlist_add(errs, "%s: the file exceeds %u bytes: %s", name, (unsigned)M8_MAX_PEM_BYTES,
                       path);
    else if (rc)
        m8_errlist_add(errs, "%s cannot be read: %s", name, path);
    if (rc)
        return rc;
    *pem = dup_trimmed(text);
    sodium_memzero(text, len);
    free(text);
    return *pem ? 0 : M8_ENOMEM;
}

static int file_exists(const char *name, const char *path, m8_errlist *errs)
{
    struct stat st;
    if (path && (stat(path, &st) != 0 || !S_ISREG(st.st_mode))) {
        m8_errlist_add(errs, "%s not found: %s", name, path);
        return M8_ECONFIG;
    }
    return 0;
}

static bool trimmed_eq_ci(const char *v, const char *lit)
{
    const char *p = v;
    size_t n = m8_trim(&p, strlen(v));
    return m8_memcaseeq(p, n, lit) != 0;
}

static bool trimmed_is(const char *v, const char *lit)
{
    const char *p = v;
    size_t n = m8_trim(&p, strlen(v));
    return n == strlen(lit) && memcmp(p, lit, n) == 0;
}

/* SECRET_KEY / PASSWORD on the trimmed value. */
static bool strong_trimmed(const char *v, bool (*match)(const char *))
{
    char *t = dup_trimmed(v);
    bool ok = t && match(t);
    wipe_free(t);
    return ok;
}

/* The checks of 1.3 in order; the first failure adds its line and stops. */
static int model_checks(m8_settings *s, m8_errlist *errs)
{
    static const char *const alg_text[] = {"RS256", "ES256", "HS256"};
    const char *alg = alg_text[s->access_token_algorithm];
    bool production = s->environment == M8_ENV_PRODUCTION || s->strict_production_mode;
    char *priv = NULL;
    int rc = M8_ECONFIG;
    char why[256];

    /* 1 */
    if (strcmp(s->refresh_token_algorithm, "HS256") != 0) {
        m8_errlist_add(errs, "REFRESH_TOKEN_ALGORITHM must be HS256");
        goto out;
    }
    /* 2: PEM files */
    if (s->access_private_key_file &&
        load_pem("ACCESS_PRIVATE_KEY_FILE", s->access_private_key_file, &priv, errs))
        goto out;
    if (s->access_public_key_file &&
        load_pem("ACCESS_PUBLIC_KEY_FILE", s->access_public_key_file, &s->access_public_key, errs))
        goto out;
    /* 3: Redis TLS (4, issuer Redis, is unreachable under D3) */
    if (s->redis_ssl && !s->redis_ssl_ca) {
        m8_errlist_add(errs, "REDIS_SSL=true requires REDIS_SSL_CA");
        goto out;
    }
    if (!s->redis_ssl_cert != !s->redis_ssl_key) {
        m8_errlist_add(errs, "REDIS_SSL_CERT and REDIS_SSL_KEY must be set together");
        goto out;
    }
    if (file_exists("REDIS_SSL_CA", s->redis_ssl_ca, errs) ||
        file_exists("REDIS_SSL_CERT", s->redis_ssl_cert, errs) ||
        file_exists("REDIS_SSL_KEY", s->redis_ssl_key, errs))
        goto out;
    /* 5 */
    if (s->token_strict_validation && (blank(s->token_issuer) || blank(s->token_audience))) {
        m8_errlist_add(errs, "TOKEN_STRICT_VALIDATION=true requires TOKEN_ISSUER and "
                             "TOKEN_AUDIENCE to be set and not blank");
        goto out;
    }
    /* 6 */
    if (s->event_signing_enabled) {
        if (blank(s->event_signing_key)) {
            m8_errlist_add(errs, "EVENT_SIGNING_ENABLED=true requires EVENT_SIGNING_KEY (set it "
                                 "to the issuer's event signing key, or set "
                                 "EVENT_SIGNING_ENABLED=false)");
            goto out;
        }
        if (!strong_trimmed(s->event_signing_key, m8_match_secret_key)) {
            m8_errlist_add(errs, "EVENT_SIGNING_KEY must be a valid secret key.");
            goto out;
        }
    }
    /* 7 */
    if (s->access_token_algorithm == M8_ALG_HS256) {
        if (!s->access_secret_key || !*s->access_secret_key) {
            m8_errlist_add(errs, "ACCESS_TOKEN_ALGORITHM=HS256 requires ACCESS_SECRET_KEY");
            goto out;
        }
    } else if (!s->access_public_key && blank(s->jwks_uri)) {
        m8_errlist_add(errs,
                       "ACCESS_TOKEN_ALGORITHM=%s requires a public key source: "
                       "ACCESS_PUBLIC_KEY_FILE or JWKS_URI",
                       alg);
        goto out;
    }
    /* 8 */
    if (priv || s->access_public_key) {
        const char *pem = priv ? priv : s->access_public_key;
        if (m8_key_strength(pem, strlen(pem), s->access_token_algorithm, why, sizeof why)) {
            m8_errlist_add(errs, "%s: %s",
                           priv ? "ACCESS_PRIVATE_KEY_FILE" : "ACCESS_PUBLIC_KEY_FILE", why);
            goto out;
        }
    }
    /* 9 */
    static const struct {
        const char *name;
        size_t off;
        bool password;
    } strength[] = {
        {"DB_PASSWORD", offsetof(m8_settings, db_password), true},
        {"REDIS_PASSWORD", offsetof(m8_settings, redis_password), true},
        {"ACCESS_SECRET_KEY", offsetof(m8_settings, access_secret_key), false},
        {"REFRESH_SECRET_KEY", offsetof(m8_settings, refresh_secret_key), false},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(strength); i++) {
        const char *v = *(char **)(void *)((char *)s + strength[i].off);
        if (!v)
            continue;
        if (strength[i].password && !strong_trimmed(v, m8_match_password)) {
            m8_errlist_add(errs,
                           "%s must be a strong password: at least 8 characters with a "
                           "lower-case letter, an upper-case letter, a digit and a special "
                           "character, and no whitespace",
                           strength[i].name);
            goto out;
        }
        if (!strength[i].password && !strong_trimmed(v, m8_match_secret_key)) {
            m8_errlist_add(errs, "%s must be a valid secret key.", strength[i].name);
            goto out;
        }
    }
    /* 10 */
    const struct {
        const char *name;
        const char *v;
    } required[] = {
        {"DOMAIN", s->domain},         {"ENVIRONMENT", "x"},
        {"API_PREFIX", s->api_prefix}, {"PROJECT_NAME", s->project_name},
        {"STACK_NAME", s->stack_name}, {"FRONTEND_HOST", s->frontend_host},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(required); i++) {
        if (blank(required[i].v)) {
            m8_errlist_add(errs, "'%s' must be provided and not be empty.", required[i].name);
            goto out;
        }
    }
    for (size_t i = 0; i < M8_ARRAY_LEN(strength); i++) {
        const char *v = *(char **)(void *)((char *)s + strength[i].off);
        if (v && trimmed_eq_ci(v, "changethis")) {
            m8_errlist_add(errs, "Insecure default value for '%s'", strength[i].name);
            goto out;
        }
    }
    /* 11 */
    if (production) {
        static const char *const dev_keys[] = {"Abcdef-1234_XYZ-abcdef-ghijkl-mnopqr-stuvwx",
                                               "Zyxwvu-9876_ABC-zyxwvu-tsrqpo-nmlkji-hgfedc"};
        const struct {
            const char *name;
            const char *v;
        } guarded[] = {{"ACCESS_SECRET_KEY", s->access_secret_key},
                       {"REFRESH_SECRET_KEY", s->refresh_secret_key},
                       {"EVENT_SIGNING_KEY", s->event_signing_key}};
        for (size_t i = 0; i < M8_ARRAY_LEN(guarded); i++) {
            for (size_t k = 0; guarded[i].v && k < M8_ARRAY_LEN(dev_keys); k++) {
                if (trimmed_is(guarded[i].v, dev_keys[k])) {
                    m8_errlist_add(errs,
                                   "%s contains a well-known development key; generate a "
                                   "new secret for production",
                                   guarded[i].name);
                    goto out;
                }
            }
        }
    }
    /* 12 */
    if (s->auth_service_role == M8_ROLE_CONSUMER && s->token_mode == M8_MODE_STATEFUL &&
        (!s->introspection_url || !s->private_api_secret)) {
        bool both = !s->introspection_url && !s->private_api_secret;
        m8_errlist_add(errs,
                       "Stateful consumer requires INTROSPECTION_URL and PRIVATE_API_SECRET "
                       "(missing: %s%s%s)",
                       s->introspection_url ? "" : "INTROSPECTION_URL", both ? ", " : "",
                       s->private_api_secret ? "" : "PRIVATE_API_SECRET");
        goto out;
    }
    /* 13 */
    if (s->api_key_introspection_enabled) {
        if (!s->api_key_introspection_url && !s->introspection_url) {
            m8_errlist_add(errs, "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires "
                                 "API_KEY_INTROSPECTION_URL or INTROSPECTION_URL");
            goto out;
        }
        if (blank(s->internal_client_id)) {
            m8_errlist_add(errs, "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires "
                                 "INTERNAL_CLIENT_ID");
            goto out;
        }
        if (!s->private_api_secret || !*s->private_api_secret) {
            m8_errlist_add(errs, "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires "
                                 "PRIVATE_API_SECRET");
            goto out;
        }
        if (strcmp(s->api_key_introspection_schema_version, "1") != 0) {
            m8_errlist_add(errs, "CONFIG: API_KEY_INTROSPECTION_SCHEMA_VERSION is not supported; "
                                 "supported versions: 1");
            goto out;
        }
    }
    /* 14 */
    if (s->service_token_exchange_enabled && blank(s->internal_client_id)) {
        m8_errlist_add(errs, "CONFIG: SERVICE_TOKEN_EXCHANGE_ENABLED=true requires "
                             "INTERNAL_CLIENT_ID");
        goto out;
    }
    if (!blank(s->internal_client_id) && (!s->private_api_secret || !*s->private_api_secret)) {
        m8_errlist_add(errs, "CONFIG: INTERNAL_CLIENT_ID requires PRIVATE_API_SECRET");
        goto out;
    }
    if (production && s->introspection_url && blank(s->internal_client_id)) {
        m8_errlist_add(errs, "CONFIG: INTROSPECTION_URL without INTERNAL_CLIENT_ID is the legacy "
                             "X-Internal-Token mode, which is allowed only outside production; "
                             "set INTERNAL_CLIENT_ID");
        goto out;
    }
    rc = 0;
out:
    wipe_free(priv);
    sodium_memzero(why, sizeof why);
    return rc;
}

/* ------------------------------------------------------------ computed */

static int computed(m8_settings *s)
{
    /* ALLOWED_ORIGINS: the origin list, then FRONTEND_HOST without its final '/'. */
    const char *fh = s->frontend_host;
    size_t fl = strlen(fh);
    if (fl && fh[fl - 1] == '/')
        fl--;
    bool present = false;
    for (size_t i = 0; i < s->allowed_origins.n; i++) {
        const char *o = s->allowed_origins.items[i];
        present |= strlen(o) == fl && memcmp(o, fh, fl) == 0;
    }
    if (!present) {
        char **ni = realloc(s->allowed_origins.items, (s->allowed_origins.n + 1) * sizeof *ni);
        if (!ni)
            return M8_ENOMEM;
        s->allowed_origins.items = ni;
        if (!(ni[s->allowed_origins.n] = strndup(fh, fl)))
            return M8_ENOMEM;
        s->allowed_origins.n++;
    }
    s->production_gate = s->environment == M8_ENV_PRODUCTION || s->strict_production_mode;
    bool gated = s->production_gate && !s->serve_docs_in_production;
    s->docs_openapi = s->set_open_api && !gated;
    s->docs_docs = s->set_docs && !gated;
    s->docs_redoc = s->set_redoc && !gated;
    /* API_KEY_INTROSPECTION_URL, else INTROSPECTION_URL derived as B 1.1
     * (trailing '/', a final "/jti-status", trailing '/' again) plus
     * "/api-keys/introspect" (B 4.1). */
    if (s->api_key_introspection_url) {
        if (!(s->api_key_introspection_url_effective = strdup(s->api_key_introspection_url)))
            return M8_ENOMEM;
    } else if (s->introspection_url) {
        const char *u = s->introspection_url;
        size_t n = strlen(u);
        while (n && u[n - 1] == '/')
            n--;
        if (n >= 11 && memcmp(u + n - 11, "/jti-status", 11) == 0)
            n -= 11;
        while (n && u[n - 1] == '/') /* B 1.1 step 3: "…//jti-status" */
            n--;
        m8_buf b;
        m8_buf_init(&b, n + 32);
        if (m8_buf_append(&b, u, n) || m8_buf_puts(&b, "/api-keys/introspect")) {
            m8_buf_free(&b);
            return M8_ENOMEM;
        }
        s->api_key_introspection_url_effective = m8_buf_steal(&b);
    }
    return 0;
}

static int build_kv(m8_settings *s, const bool *has_value)
{
    size_t n = NFIELDS + 1;
    s->kv_names = calloc(n, sizeof *s->kv_names);
    s->kv_values = calloc(n, sizeof *s->kv_values);
    if (!s->kv_names || !s->kv_values)
        return M8_ENOMEM;
    for (size_t i = 0; i < NFIELDS; i++) {
        if (!(s->kv_names[i] = strdup(fields[i].name)))
            return M8_ENOMEM;
        s->kv_n = i + 1;
        s->kv_values[i] = field_text(s, &fields[i], has_value[i]);
    }
    if (!(s->kv_names[NFIELDS] = strdup("ALLOWED_ORIGINS")))
        return M8_ENOMEM;
    s->kv_values[NFIELDS] = join(&s->allowed_origins);
    s->kv_n = n;
    return 0;
}

const char *m8_settings_get(const m8_settings *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->kv_n; i++) {
        if (m8_strcaseeq(s->kv_names[i], name))
            return s->kv_values[i];
    }
    return NULL;
}

M8_EXTERN const char *m8_setting(const m8_settings *settings, const char *name)
{
    return m8_settings_get(settings, name);
}

/* ------------------------------------------------------------ load / free */

void m8_settings_free(m8_settings *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &fields[i];
        if (f->type == F_STR || f->type == F_SECRET || f->type == F_PATH || f->type == F_URL)
            wipe_free(*AT(s, f, char *));
        else if (f->type == F_LIST)
            m8_strlist_free(AT(s, f, m8_strlist));
    }
    wipe_free(s->access_public_key);
    m8_strlist_free(&s->allowed_origins);
    free(s->api_key_introspection_url_effective);
    free(s->env_file_used);
    for (size_t i = 0; i < s->kv_n; i++) {
        free(s->kv_names[i]);
        wipe_free(s->kv_values[i]);
    }
    free(s->kv_names);
    free(s->kv_values);
    sodium_memzero(s, sizeof *s);
    free(s);
}

m8_settings *m8_settings_load(const m8_settings_source *src, m8_errlist *errs)
{
    const char *raw[NFIELDS] = {NULL};
    unsigned rawline[NFIELDS] = {0};
    char *owned[NFIELDS] = {NULL};
    bool has_value[NFIELDS] = {false};
    bool file_failed[NFIELDS] = {false};
    m8_dotenv d = {0};
    char *path = NULL, *text = NULL;
    size_t len = 0, nerr = errs->n;
    m8_settings *s = calloc(1, sizeof *s);
    if (!s) {
        m8_errlist_add(errs, "settings: out of memory");
        return NULL;
    }

    /* The .env file (D1). */
    if (find_env_file(src, &path)) {
        m8_errlist_add(errs, "settings: out of memory");
        goto fail;
    }
    if (path) {
        int rc = m8_read_file(path, M8_MAX_ENV_FILE_BYTES, false, &text, &len);
        if (rc == M8_ENOTFOUND) {
            m8_errlist_add(errs, "%s points to a missing file: %s",
                           src->env_file ? "--env-file" : "M8_ENV_FILE", path);
            goto fail;
        }
        if (rc) {
            m8_errlist_add(errs, "env file %s: %s", path,
                           rc == M8_ETOOBIG ? "exceeds the size limit (M8_MAX_ENV_FILE_BYTES)"
                                            : "cannot be read");
            goto fail;
        }
        char why[160];
        rc = m8_dotenv_parse(text, len, dotenv_lookup, (void *)src->env, &d, why, sizeof why);
        sodium_memzero(text, len);
        free(text);
        if (rc) {
            m8_errlist_add(errs, "env file %s: %s", path, why);
            goto fail;
        }
        take_dotenv(&d, path, raw, rawline, errs);
    }
    take_env(src->env, raw, errs);
    take_files(src->env, raw, owned, file_failed, errs);

    /* Field level: every error is reported, with those of the sources. */
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &fields[i];
        if (file_failed[i])
            continue;
        const char *v = raw[i] ? raw[i] : f->def;
        has_value[i] = v != NULL;
        if (!v) {
            bool db_used = src->uses_database || raw[field_index("SELECTED_DB")];
            if ((f->flags & REQ) || ((f->flags & REQ_DB) && db_used))
                m8_errlist_add(errs, "%s: field required", f->name);
            continue;
        }
        char buf[200];
        const char *why = parse_field(s, f, v, buf, sizeof buf);
        if (why)
            m8_errlist_add(errs, "%s: %s", f->name, why);
    }
    if (errs->n > nerr)
        goto fail;
    s->selected_db_set = raw[field_index("SELECTED_DB")] != NULL;
    s->redis_port_set = raw[field_index("REDIS_PORT")] != NULL;

    if (model_checks(s, errs))
        goto fail;
    if (computed(s) || build_kv(s, has_value)) {
        m8_errlist_add(errs, "settings: out of memory");
        goto fail;
    }
    s->env_file_used = path;
    path = NULL;
    goto done;
fail:
    m8_settings_free(s);
    s = NULL;
done:
    for (size_t i = 0; i < NFIELDS; i++)
        wipe_free(owned[i]);
    m8_dotenv_free(&d);
    free(path);
    return s;
}
