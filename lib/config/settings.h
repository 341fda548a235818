/* settings.h - the consumer settings (doc/settings.md#settings): loading (NAME_FILE > process
 * environment > .env), validation of every field, and the computed values.  Pure except for reading
 * the .env file and NAME_FILE secret files.
 *
 * Strings are owned by the m8_settings (freed by m8_settings_free); secrets
 * are wiped with sodium_memzero when freed.  An unset optional string is
 * NULL; "" is kept where the contract says an empty value is a value. */
#ifndef M8_SETTINGS_H
#define M8_SETTINGS_H

#include "core/common.h"

typedef enum { M8_ENV_LOCAL, M8_ENV_DEVELOPMENT, M8_ENV_STAGING, M8_ENV_PRODUCTION } m8_environment;
typedef enum { M8_ALG_RS256, M8_ALG_ES256, M8_ALG_HS256 } m8_alg;
typedef enum { M8_MODE_STATELESS, M8_MODE_STATEFUL, M8_MODE_HYBRID } m8_token_mode;
typedef enum { M8_ROLE_CONSUMER, M8_ROLE_ISSUER } m8_service_role;
typedef enum { M8_FAIL_CLOSED, M8_FAIL_OPEN } m8_failure_mode;
typedef enum { M8_DB_MYSQL, M8_DB_POSTGRES } m8_db_kind;

/* A list setting (JSON array or comma form, doc/settings.md#value-grammar). */
typedef struct m8_strlist {
    char **items;
    size_t n;
} m8_strlist;

struct m8_settings {
    /* Core and routing */
    char *domain;
    m8_environment environment;
    char *api_prefix;   /* leading '/', no trailing '/' */
    char *project_name; /* doc/settings.md#core-and-routing */
    char *stack_name;
    bool set_open_api, set_docs, set_redoc, serve_docs_in_production;
    char *backend_host;         /* normalised URL */
    char *frontend_host;        /* normalised URL */
    char *backend_cors_origins; /* raw text as given */
    m8_strlist allowed_hosts;   /* n == 0 means unset */
    m8_strlist cors_allowed_origin_schemes;
    m8_strlist oauth_allowed_redirect_schemes;
    m8_strlist oauth_allowed_redirect_prefixes;

    /* Tokens, keys, binding */
    m8_alg access_token_algorithm;
    char *access_secret_key;      /* secret, raw untrimmed */
    char *access_public_key_file; /* path */
    char *access_public_key;      /* trimmed PEM text of the file; in fcgim8-issuer
                                   * without the file, the private key's public half */
    char *access_private_key_file;
    char *refresh_secret_key;     /* secret */
    char *refresh_secret_key_old; /* secret */
    char *refresh_token_algorithm;
    char *secret_key; /* secret (deprecated) */
    m8_token_mode token_mode;
    bool token_strict_validation;
    char *token_issuer; /* NULL or "" = unset */
    char *token_audience;
    char *jwks_uri;                 /* NULL or "" = unset */
    char *access_token_cookie_name; /* fcgi-m8: the cookie credential kind; NULL or "" = off */
    long long jwks_cache_ttl_seconds;
    long long jwks_max_stale_seconds; /* fcgi-m8: last good set's longest use (doc/settings.md) */
    char *access_key_id;
    m8_service_role auth_service_role;   /* always consumer (doc/settings.md#service-role) */
    long long auth_invalid_token_status; /* 401 (default) or 403 (doc/responses.md#auth-failures) */
    long long access_token_expire_minutes;
    long long refresh_token_expire_minutes;
    long long refresh_token_cookie_expire_seconds;

    /* Production posture, headers, event signing */
    bool strict_production_mode;
    bool allow_internal_http;
    bool session_cookie_secure;
    bool security_headers_enabled;
    bool hsts_enabled;
    long long hsts_max_age;
    bool hsts_include_subdomains;
    bool content_security_policy_enabled;
    char *content_security_policy; /* NULL/"" = default CSP */
    char *referrer_policy;
    char *permissions_policy;
    bool event_signing_enabled;
    char *event_signing_key; /* secret */
    bool event_signing_accept_unsigned;
    char *sentry_dsn;

    /* Degradation policy */
    bool auth_strict_mode;
    m8_failure_mode access_revocation_failure_mode;
    m8_failure_mode refresh_validation_failure_mode;
    m8_failure_mode session_write_failure_mode;
    m8_failure_mode rate_limit_failure_mode;

    /* Database (doc/settings.md#database: required only when a DB is used or SELECTED_DB is set) */
    m8_db_kind selected_db;
    bool selected_db_set; /* SELECTED_DB given explicitly */
    char *db_host;
    long long db_port; /* 0 = unset */
    char *db_database;
    char *db_user;
    char *db_password; /* secret */
    char *db_engine;
    char *db_charset;
    char *tables_prefix;

    /* Redis (validated, never used by a consumer) */
    char *redis_host;
    long long redis_port;
    bool redis_port_set;
    char *redis_user;
    char *redis_password; /* secret */
    bool redis_ssl;
    char *redis_ssl_ca, *redis_ssl_cert, *redis_ssl_key;

    /* Issuer-only knobs (validated) */
    long long login_rate_limit_requests, login_rate_limit_window_minutes;
    long long refresh_rate_limit_requests, refresh_rate_limit_window_minutes;
    char *smtp_host;
    long long smtp_port;
    char *emails_from_email, *emails_from_name, *email_test_user;

    /* ConsumerAuthMixin */
    char *introspection_url;  /* normalised URL */
    char *private_api_secret; /* secret; "" is a value */

    /* Observability */
    bool metrics_enabled;
    char *metrics_groups; /* raw text, default "all" */

    /* ConsumerServiceSettings */
    char *auth_prefix;
    double event_stream_connect_timeout, event_stream_read_timeout;
    long long revocation_cache_ttl_seconds;
    char *internal_client_id;
    bool service_token_exchange_enabled;
    m8_strlist service_token_scopes; /* n == 0 = unset */
    long long service_token_refresh_leeway_seconds;
    bool api_key_introspection_enabled;
    char *api_key_introspection_url; /* as given, or NULL */
    double api_key_introspection_connect_timeout;
    double api_key_introspection_read_timeout;
    double api_key_introspection_pool_timeout;
    long long api_key_introspection_max_concurrency;
    long long api_key_introspection_max_response_bytes;
    char *api_key_introspection_schema_version;
    long long api_key_introspection_circuit_failure_threshold;
    double api_key_introspection_circuit_reset_seconds;
    char *health_detail_credential;  /* secret */
    char *metrics_scrape_credential; /* secret */
    char *service_version;
    char *api_version;
    char *contract_name; /* NULL/"" = PROJECT_NAME (see meta) */
    char *contract_version;
    char *contract_range;

    /* ---- fcgim8-issuer only (doc/issuer.md#settings): set only when the
     * source's issuer flag is on; in a consumer these names are unknown ---- */
    bool issuer; /* loaded with m8_settings_source.issuer */
    long long trusted_proxy_count;
    char *first_superuser;          /* an e-mail address */
    char *first_superuser_password; /* secret */
    char *session_secret;           /* secret */
    char *tokens_encryption_key;    /* secret */
    char *tokens_encryption_key_old;
    bool access_key_id_allow_unbound;
    char *access_public_key_old_file; /* path */
    char *csrf_key_file;              /* path: browser sessions' CSRF key */
    char *access_key_id_old;
    long long login_ip_rate_limit_requests;
    char *private_api_consumers; /* JSON object text, default "{}" */
    long long service_token_ttl_seconds;
    bool event_stream_enabled;
    long long event_stream_buffer_size;
    double event_stream_heartbeat_seconds;
    long long event_stream_max_queue;
    bool outbox_worker_enabled;
    double outbox_drain_interval_seconds;
    long long outbox_batch_size, outbox_lease_seconds, outbox_max_attempts;
    double outbox_backoff_base_seconds, outbox_backoff_cap_seconds;
    long long outbox_completed_retention_seconds;
    long long tombstone_consumer_horizon_seconds;
    long long audit_purge_min_retention_seconds, audit_purge_batch_size;
    bool api_key_strict_rate_limit; /* effective: production/strict imply it */
    long long api_key_default_limit_minute, api_key_default_limit_hour;
    long long api_key_default_limit_day, api_key_default_limit_month;
    long long api_key_max_per_user, api_key_max_audiences;
    long long api_key_purge_min_retention_seconds, api_key_purge_batch_size;
    long long api_key_introspection_antiabuse_per_minute;
    int api_key_format; /* API_KEY_FORMAT: 0 m8 (m8ak_, with a checksum), 1 legacy (ak_) */
    char *google_client_id;
    char *google_client_secret; /* secret */
    char *google_oauth_redirect_uri;
    bool google_oauth_enabled; /* effective: unset = both credentials set */
    bool google_oauth_enabled_set;
    /* SSO (doc/issuer.md#sso-oidc-and-google) */
    char *google_oidc_issuer;        /* NULL = Google's own endpoints (testing, private) */
    bool google_link_verified_email; /* link a verified Google email to a local account */
    char *oidc_issuer_url;           /* NULL = no generic OpenID provider */
    char *oidc_client_id;
    char *oidc_client_secret; /* secret */
    char *oidc_redirect_uri;
    char *oidc_default_role; /* a JIT user's role: admin, writer, reader or user */
    bool oidc_link_verified_email;
    bool password_login_enabled;
    bool public_signup_enabled;
    m8_strlist public_signup_allowed_email_domains;
    bool mail_enabled;
    char *email_verification_mode; /* off, optional or required */
    bool password_reset_enabled;
    char *public_ui_url;
    char *smtp_user;
    char *smtp_password; /* secret */
    char *smtp_tls_mode;
    long long smtp_timeout_seconds;
    long long email_verification_ttl_minutes, password_reset_ttl_minutes;
    long long email_change_ttl_minutes, unverified_signup_expiry_days;
    long long mail_recipient_cooldown_seconds, mail_recipient_daily_cap;
    long long account_action_rate_limit_window_minutes;
    long long account_action_ip_rate_limit_requests, account_action_email_rate_limit_requests;

    /* ---- computed (doc/settings.md#computed-values) ---- */
    m8_strlist allowed_origins;               /* BACKEND_CORS_ORIGINS + FRONTEND_HOST */
    bool production_gate;                     /* ENVIRONMENT=production or STRICT_PRODUCTION_MODE */
    bool docs_openapi, docs_docs, docs_redoc; /* effective docs flags */
    char *api_key_introspection_url_effective; /* derived when unset */
    char *env_file_used;                       /* path of the .env read, or NULL */

    /* name -> text for m8_setting(); owned */
    char **kv_names;
    char **kv_values;
    size_t kv_n;
};

/* One source variable, as (name, value). */
typedef struct m8_kv {
    const char *name;
    const char *value;
} m8_kv;

/* Where values come from.  env is the process environment (NULL-terminated
 * "NAME=value" strings, e.g. environ); env_file is the explicit --env-file
 * (a missing file is an error) or NULL for the search of doc/settings.md#where-values-come-from
 * (M8_ENV_FILE, then walk up from cwd; missing is fine); cwd NULL means getcwd(). */
typedef struct m8_settings_source {
    char *const *env;
    const char *env_file;
    const char *cwd;
    bool uses_database; /* the service opens m8_db (doc/settings.md#database) */
    bool issuer;        /* the app is fcgim8-issuer: its own settings are known
                         * and checked (doc/issuer.md#settings) */
} m8_settings_source;

/* Accumulated error lines: one per finding, never containing a secret. */
typedef struct m8_errlist {
    char **lines;
    size_t n;
} m8_errlist;

M8_INTERNAL void m8_errlist_add(m8_errlist *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
M8_INTERNAL void m8_errlist_free(m8_errlist *e);

/* Loads and validates.  On failure returns NULL and fills errs with one line
 * per problem, each naming the variable. */
M8_INTERNAL m8_settings *m8_settings_load(const m8_settings_source *src, m8_errlist *errs);
M8_INTERNAL void m8_settings_free(m8_settings *s);

/* The value of a field by name (case-insensitive), as text; NULL when unset
 * or unknown (same as the public m8_setting()). */
M8_INTERNAL const char *m8_settings_get(const m8_settings *s, const char *name);

/* True when name (any case) is a known setting, computed names excluded. */
M8_INTERNAL bool m8_settings_known(const char *name);

/* ---- settings_values.c: value grammar and pattern matchers
 * (doc/settings.md#value-grammar) ---- */

/* Bool: 1/0 true/false t/f yes/no y/n on/off, any case, no blanks. */
M8_INTERNAL int m8_parse_bool(const char *v, bool *out);
/* Int: blanks, sign, '_' separators, "5.0"; rejects "5.5", "0x10", "1e3". */
M8_INTERNAL int m8_parse_int(const char *v, long long *out);
/* Float: as Python float(): "1e3", "inf", "nan", '_' separators. */
M8_INTERNAL int m8_parse_float(const char *v, double *out);
/* HttpUrl normalisation (http/https only); *out is malloc'd. */
M8_INTERNAL int m8_normalize_url(const char *in, char **out);
/* A JSON array of strings or a comma list; items trimmed, empties dropped. */
M8_INTERNAL int m8_parse_list(const char *v, m8_strlist *out);
/* BACKEND_CORS_ORIGINS items; *why gets the reason on failure. */
M8_INTERNAL int m8_parse_origins(const char *v, m8_strlist *out, const char **why);
M8_INTERNAL void m8_strlist_free(m8_strlist *l);

M8_INTERNAL bool m8_match_host(const char *s);         /* HOST */
M8_INTERNAL bool m8_match_http_host(const char *s);    /* HTTP_HOST (a CORS origin) */
M8_INTERNAL bool m8_match_url_path(const char *s);     /* URL_PATH_STR */
M8_INTERNAL bool m8_match_key(const char *s);          /* KEY */
M8_INTERNAL bool m8_match_slug(const char *s);         /* SLUG */
M8_INTERNAL bool m8_match_password(const char *s);     /* PASSWORD */
M8_INTERNAL bool m8_match_secret_key(const char *s);   /* SECRET_KEY */
M8_INTERNAL bool m8_match_project_name(const char *s); /* doc/settings.md#core-and-routing */
M8_INTERNAL bool m8_match_email(const char *s);

#endif
