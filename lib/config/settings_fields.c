/* settings_fields.c - the table of settings fields (name, type, default,
 * rule), the parsing of one field's text into m8_settings, and the text of
 * each field for m8_setting(). */
#include "config/settings_int.h"

#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/alg.h"

/* ------------------------------------------------------------ the fields */

static const char *const env_names[] = {"local", "development", "staging", "production", NULL};
static const char *const mode_names[] = {"stateless", "stateful", "hybrid", NULL};
static const char *const role_names[] = {"consumer", "issuer", NULL};
static const char *const fail_names[] = {"fail_closed", "fail_open", NULL};
static const char *const db_names[] = {"Mysql", "Postgres", NULL};
/* API_KEY_FORMAT (doc/issuer.md#api-key-scopes-and-format) */
static const char *const akfmt_names[] = {"m8", "legacy", NULL};

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
/* fcgim8-issuer only (doc/issuer.md#settings) */
#define IST(N, m, d, fl, v) STR(N, m, d, ISS | (fl), v)
#define ISE(N, m, fl) SEC(N, m, ISS | (fl))
#define IPT(N, m) {N, F_PATH, V_NONE, ISS, OFF(m), NULL, 0, 0, 0, NULL}
#define IBO(N, m, d) {N, F_BOOL, V_NONE, ISS, OFF(m), d, 0, 0, 0, NULL}
#define IIN(N, m, d, lo, hi) {N, F_INT, V_NONE, ISS, OFF(m), d, lo, hi, 0, NULL}
#define IFL(N, m, d, mx) {N, F_FLOAT, V_NONE, ISS, OFF(m), d, 0, 0, mx, NULL}
#define ILS(N, m, d) {N, F_LIST, V_NONE, ISS, OFF(m), d, 0, 0, 0, NULL}
#define ANY LLONG_MAX
/* clang-format on */

const field m8__settings_fields[] = {
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
    ENU("ACCESS_TOKEN_ALGORITHM", access_token_algorithm, "RS256", m8_alg_names, V_NONE),
    SEC("ACCESS_SECRET_KEY", access_secret_key, 0),
    PTH("ACCESS_PUBLIC_KEY_FILE", access_public_key_file),
    PTH("ACCESS_PRIVATE_KEY_FILE", access_private_key_file),
    /* issuer-only, never required in a consumer (doc/settings.md#names) */
    SEC("REFRESH_SECRET_KEY", refresh_secret_key, REQ_ISS),
    SEC("REFRESH_SECRET_KEY_OLD", refresh_secret_key_old, 0),
    STR("REFRESH_TOKEN_ALGORITHM", refresh_token_algorithm, "HS256", 0, V_NONE),
    SEC("SECRET_KEY", secret_key, 0),
    ENU("TOKEN_MODE", token_mode, "stateful", mode_names, V_NONE),
    BOO("TOKEN_STRICT_VALIDATION", token_strict_validation, "true"),
    STR("TOKEN_ISSUER", token_issuer, NULL, 0, V_NONE),
    STR("TOKEN_AUDIENCE", token_audience, NULL, 0, V_NONE),
    STR("JWKS_URI", jwks_uri, NULL, 0, V_HTTP),
    /* fcgi-m8 only: the cookie of M8_ROUTE_CRED_COOKIE routes (checked at boot) */
    STR("ACCESS_TOKEN_COOKIE_NAME", access_token_cookie_name, NULL, 0, V_NONE),
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
    SEC("PRIVATE_API_SECRET", private_api_secret, REQ_ISS),
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
    /* Meta (doc/settings.md#service-meta) */
    STR("SERVICE_VERSION", service_version, NULL, REQ, V_NONE),
    STR("API_VERSION", api_version, "v1", 0, V_NONE),
    STR("CONTRACT_NAME", contract_name, NULL, 0, V_NONE),
    STR("CONTRACT_VERSION", contract_version, NULL, REQ, V_NONE),
    STR("CONTRACT_RANGE", contract_range, NULL, REQ, V_NONE),
    /* fcgim8-issuer only (doc/issuer.md#settings): core */
    IIN("TRUSTED_PROXY_COUNT", trusted_proxy_count, "1", 0, ANY),
    IST("FIRST_SUPERUSER", first_superuser, NULL, REQ_ISS, V_EMAIL),
    ISE("FIRST_SUPERUSER_PASSWORD", first_superuser_password, REQ_ISS),
    ISE("SESSION_SECRET", session_secret, REQ_ISS),
    ISE("TOKENS_ENCRYPTION_KEY", tokens_encryption_key, REQ_ISS),
    ISE("TOKENS_ENCRYPTION_KEY_OLD", tokens_encryption_key_old, 0),
    /* tokens and keys */
    IBO("ACCESS_KEY_ID_ALLOW_UNBOUND", access_key_id_allow_unbound, "false"),
    IPT("ACCESS_PUBLIC_KEY_OLD_FILE", access_public_key_old_file),
    IPT("CSRF_KEY_FILE", csrf_key_file), /* browser sessions (doc/issuer.md#browser-sessions) */
    IST("ACCESS_KEY_ID_OLD", access_key_id_old, NULL, 0, V_NONE),
    /* rate limits, private API */
    IIN("LOGIN_IP_RATE_LIMIT_REQUESTS", login_ip_rate_limit_requests, "50", 1, ANY),
    IST("PRIVATE_API_CONSUMERS", private_api_consumers, "{}", 0, V_NONE),
    IIN("SERVICE_TOKEN_TTL_SECONDS", service_token_ttl_seconds, "300", 30, 3600),
    /* events */
    IBO("EVENT_STREAM_ENABLED", event_stream_enabled, "true"),
    IIN("EVENT_STREAM_BUFFER_SIZE", event_stream_buffer_size, "256", 1, 100000),
    IFL("EVENT_STREAM_HEARTBEAT_SECONDS", event_stream_heartbeat_seconds, "15.0", 300),
    IIN("EVENT_STREAM_MAX_QUEUE", event_stream_max_queue, "64", 1, 100000),
    /* outbox and tombstones */
    IBO("OUTBOX_WORKER_ENABLED", outbox_worker_enabled, "true"),
    IFL("OUTBOX_DRAIN_INTERVAL_SECONDS", outbox_drain_interval_seconds, "1.0", 3600),
    IIN("OUTBOX_BATCH_SIZE", outbox_batch_size, "50", 1, 100000),
    IIN("OUTBOX_LEASE_SECONDS", outbox_lease_seconds, "30", 1, 86400),
    IIN("OUTBOX_MAX_ATTEMPTS", outbox_max_attempts, "5", 1, 1000),
    IFL("OUTBOX_BACKOFF_BASE_SECONDS", outbox_backoff_base_seconds, "2.0", 86400),
    IFL("OUTBOX_BACKOFF_CAP_SECONDS", outbox_backoff_cap_seconds, "300.0", 86400),
    IIN("OUTBOX_COMPLETED_RETENTION_SECONDS", outbox_completed_retention_seconds, "3600", 0, ANY),
    IIN("TOMBSTONE_CONSUMER_HORIZON_SECONDS", tombstone_consumer_horizon_seconds, "3600", 0,
        2592000),
    /* audit */
    IIN("AUDIT_PURGE_MIN_RETENTION_SECONDS", audit_purge_min_retention_seconds, "7776000", 0, ANY),
    IIN("AUDIT_PURGE_BATCH_SIZE", audit_purge_batch_size, "500", 1, 100000),
    /* API keys */
    IBO("API_KEY_STRICT_RATE_LIMIT", api_key_strict_rate_limit, "false"),
    IIN("API_KEY_DEFAULT_LIMIT_MINUTE", api_key_default_limit_minute, "60", 1, ANY),
    IIN("API_KEY_DEFAULT_LIMIT_HOUR", api_key_default_limit_hour, "1000", 1, ANY),
    IIN("API_KEY_DEFAULT_LIMIT_DAY", api_key_default_limit_day, "10000", 1, ANY),
    IIN("API_KEY_DEFAULT_LIMIT_MONTH", api_key_default_limit_month, "200000", 1, ANY),
    IIN("API_KEY_MAX_PER_USER", api_key_max_per_user, "10", 1, ANY),
    IIN("API_KEY_MAX_AUDIENCES", api_key_max_audiences, "3", 1, 50),
    IIN("API_KEY_PURGE_MIN_RETENTION_SECONDS", api_key_purge_min_retention_seconds, "7776000", 0,
        ANY),
    IIN("API_KEY_PURGE_BATCH_SIZE", api_key_purge_batch_size, "500", 1, 100000),
    IIN("API_KEY_INTROSPECTION_ANTIABUSE_PER_MINUTE", api_key_introspection_antiabuse_per_minute,
        "600", 1, ANY),
    {"API_KEY_FORMAT", F_ENUM, V_NONE, ISS, OFF(api_key_format), "m8", 0, 0, 0, akfmt_names},
    /* Google */
    IST("GOOGLE_CLIENT_ID", google_client_id, NULL, 0, V_NONE),
    ISE("GOOGLE_CLIENT_SECRET", google_client_secret, 0),
    IST("GOOGLE_OAUTH_REDIRECT_URI", google_oauth_redirect_uri, NULL, 0, V_NONE),
    IBO("GOOGLE_OAUTH_ENABLED", google_oauth_enabled, NULL),
    /* SSO: the Google endpoints for tests and private deployments, the
     * generic OpenID provider (doc/issuer.md#sso-oidc-and-google) */
    IST("GOOGLE_OIDC_ISSUER", google_oidc_issuer, NULL, 0, V_NONE),
    IBO("GOOGLE_LINK_VERIFIED_EMAIL", google_link_verified_email, "false"),
    IST("OIDC_ISSUER_URL", oidc_issuer_url, NULL, 0, V_NONE),
    IST("OIDC_CLIENT_ID", oidc_client_id, NULL, 0, V_NONE),
    ISE("OIDC_CLIENT_SECRET", oidc_client_secret, 0),
    IST("OIDC_REDIRECT_URI", oidc_redirect_uri, NULL, 0, V_NONE),
    IST("OIDC_DEFAULT_ROLE", oidc_default_role, "user", 0, V_NONE),
    IBO("OIDC_LINK_VERIFIED_EMAIL", oidc_link_verified_email, "false"),
    /* login flags and account lifecycle */
    IBO("PASSWORD_LOGIN_ENABLED", password_login_enabled, "true"),
    IBO("PUBLIC_SIGNUP_ENABLED", public_signup_enabled, "false"),
    ILS("PUBLIC_SIGNUP_ALLOWED_EMAIL_DOMAINS", public_signup_allowed_email_domains, "[]"),
    IBO("MAIL_ENABLED", mail_enabled, "false"),
    IST("EMAIL_VERIFICATION_MODE", email_verification_mode, "off", 0, V_NONE),
    IBO("PASSWORD_RESET_ENABLED", password_reset_enabled, "false"),
    IST("PUBLIC_UI_URL", public_ui_url, "", 0, V_NONE),
    IST("SMTP_USER", smtp_user, NULL, 0, V_NONE),
    ISE("SMTP_PASSWORD", smtp_password, 0),
    IST("SMTP_TLS_MODE", smtp_tls_mode, "starttls", 0, V_NONE),
    IIN("SMTP_TIMEOUT_SECONDS", smtp_timeout_seconds, "10", 1, 300),
    IIN("EMAIL_VERIFICATION_TTL_MINUTES", email_verification_ttl_minutes, "1440", 15, 1440),
    IIN("PASSWORD_RESET_TTL_MINUTES", password_reset_ttl_minutes, "30", 5, 30),
    IIN("EMAIL_CHANGE_TTL_MINUTES", email_change_ttl_minutes, "60", 10, 60),
    IIN("UNVERIFIED_SIGNUP_EXPIRY_DAYS", unverified_signup_expiry_days, "7", 1, ANY),
    IIN("MAIL_RECIPIENT_COOLDOWN_SECONDS", mail_recipient_cooldown_seconds, "60", 0, ANY),
    IIN("MAIL_RECIPIENT_DAILY_CAP", mail_recipient_daily_cap, "10", 1, ANY),
    IIN("ACCOUNT_ACTION_RATE_LIMIT_WINDOW_MINUTES", account_action_rate_limit_window_minutes, "15",
        1, 1440),
    IIN("ACCOUNT_ACTION_IP_RATE_LIMIT_REQUESTS", account_action_ip_rate_limit_requests, "20", 1,
        ANY),
    IIN("ACCOUNT_ACTION_EMAIL_RATE_LIMIT_REQUESTS", account_action_email_rate_limit_requests, "5",
        1, ANY),
};
_Static_assert(sizeof m8__settings_fields / sizeof m8__settings_fields[0] == NFIELDS,
               "NFIELDS in settings_int.h counts the table");

int m8__field_index(const char *name)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        if (m8_strcaseeq(m8__settings_fields[i].name, name))
            return (int)i;
    }
    return -1;
}

bool m8_settings_known(const char *name)
{
    int i = m8__field_index(name);
    return i >= 0 && !(m8__settings_fields[i].flags & ISS);
}

/* fcgim8-issuer defaults that differ from the consumer's (doc/issuer.md#settings). */
static const struct {
    const char *name, *def;
} issuer_defaults[] = {
    {"TABLES_PREFIX", "auth"},    {"AUTH_SERVICE_ROLE", "issuer"},
    {"SERVICE_VERSION", "2.0.0"}, {"CONTRACT_NAME", "fa-auth-m8"},
    {"CONTRACT_VERSION", "2.0"},  {"CONTRACT_RANGE", ">=2.0.0 <3.0.0"},
};

const char *m8__field_default(const field *f, bool issuer)
{
    for (size_t i = 0; issuer && i < M8_ARRAY_LEN(issuer_defaults); i++) {
        if (strcmp(f->name, issuer_defaults[i].name) == 0)
            return issuer_defaults[i].def;
    }
    return f->def;
}

bool m8__blank(const char *s)
{
    if (!s)
        return true;
    return m8_trim(&s, strlen(s)) == 0;
}

char *m8__dup_trimmed(const char *v)
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

void m8__wipe_free(char *p)
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
        /* Empty is left to the required-value check (doc/settings.md#model-checks). */
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
const char *m8__parse_field(m8_settings *s, const field *f, const char *v, char *buf, size_t blen)
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
                if (f->check == V_ROLE && i == M8_ROLE_ISSUER && !s->issuer)
                    return "fcgi-m8 services validate tokens; they never issue them (use "
                           "AUTH_SERVICE_ROLE=consumer)";
                if (f->check == V_ROLE && i == M8_ROLE_CONSUMER && s->issuer)
                    return "fcgim8-issuer issues tokens (use AUTH_SERVICE_ROLE=issuer, or leave "
                           "it unset)";
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

int m8__build_kv(m8_settings *s, const bool *has_value)
{
    size_t n = NFIELDS + 1;
    s->kv_names = calloc(n, sizeof *s->kv_names);
    s->kv_values = calloc(n, sizeof *s->kv_values);
    if (!s->kv_names || !s->kv_values)
        return M8_ENOMEM;
    for (size_t i = 0; i < NFIELDS; i++) {
        if (!(s->kv_names[i] = strdup(m8__settings_fields[i].name)))
            return M8_ENOMEM;
        s->kv_n = i + 1;
        if (!(m8__settings_fields[i].flags & ISS) || s->issuer)
            s->kv_values[i] = field_text(s, &m8__settings_fields[i], has_value[i]);
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
