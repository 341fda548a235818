/* confighealth.c - check_config_health (doc/settings.md#config-health) and
 * the credential-reuse guard (doc/settings.md#credential-reuse).
 *
 * The 24 checks run in their table order.  That order already follows the
 * documented groups for both lists (warnings: jwt, role, production,
 * rate-limit, boundary, allowed-hosts, internal-http, event-signing; fatals:
 * jwt, role, redis, production, strict, boundary, hosts, internal-http,
 * event-signing), so appending as we go gives the output order.  The
 * credential-reuse guard runs after them and adds fatals at the end.  Role
 * "issuer" cannot load (doc/settings.md#service-role); its checks stay for
 * completeness. */
#include "config/confighealth.h"

#include "auth/alg.h"
#include "core/exitcodes.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

/* Adds a finding: a warning, or a fatal when fatal is true. */
#define FINDING(rep, fatal, ...)                                                                   \
    m8_errlist_add((fatal) ? &(rep)->fatals : &(rep)->warnings, "CONFIG: " __VA_ARGS__)

static bool unset(const char *s)
{
    return !s || m8_trim(&s, strlen(s)) == 0;
}

static bool in_list(const m8_strlist *l, const char *item)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i], item) == 0)
            return true;
    }
    return false;
}

static bool starts_http(const char *u)
{
    return u && strlen(u) >= 7 && m8_memcaseeq(u, 7, "http://");
}

/* Plain, untrimmed equality; an empty or unset credential never matches. */
static bool reuses(const char *cred, const char *secret)
{
    return cred && *cred && secret && *secret && m8_secret_eq(cred, secret);
}

size_t m8_config_health(const m8_settings *s, m8_config_report *rep)
{
    memset(rep, 0, sizeof *rep);
    const bool strict = s->strict_production_mode;
    const bool prod = s->environment == M8_ENV_PRODUCTION;
    const bool consumer = s->auth_service_role == M8_ROLE_CONSUMER;
    const bool issuer = s->auth_service_role == M8_ROLE_ISSUER;
    const bool hs256 = s->access_token_algorithm == M8_ALG_HS256;
    const bool stateless = s->token_mode == M8_MODE_STATELESS;
    const bool jwks = !unset(s->jwks_uri);
    const bool pub = !unset(s->access_public_key);
    const bool priv = !unset(s->access_private_key_file);
    const char *alg = m8_alg_name(s->access_token_algorithm);

    /* jwt */
    if (!hs256 && !pub && !jwks) /* 1 */
        FINDING(rep, true,
                "ACCESS_TOKEN_ALGORITHM=%s is asymmetric but neither ACCESS_PUBLIC_KEY_FILE nor "
                "JWKS_URI is set; token validation will fail",
                alg);
    if (jwks && hs256) /* 2 */
        FINDING(rep, false,
                "JWKS_URI is set but ACCESS_TOKEN_ALGORITHM=HS256; a JWKS only means something "
                "for RS256/ES256");
    if (jwks && s->jwks_cache_ttl_seconds < 30) /* 3 */
        FINDING(rep, false,
                "JWKS_CACHE_TTL_SECONDS=%lld is very low; the recommended minimum is 30 s "
                "(default 300 s)",
                s->jwks_cache_ttl_seconds);

    /* role */
    if (consumer && priv) /* 4 */
        FINDING(rep, true,
                "ACCESS_PRIVATE_KEY_FILE is set on a consumer; consumers must not hold a signing "
                "key (remove ACCESS_PRIVATE_KEY_FILE)");
    if (issuer && !hs256 && !priv) /* 5 */
        FINDING(rep, true,
                "AUTH_SERVICE_ROLE=issuer with ACCESS_TOKEN_ALGORITHM=%s needs "
                "ACCESS_PRIVATE_KEY_FILE",
                alg);
    if (issuer && jwks) /* 6 */
        FINDING(rep, strict, "JWKS_URI is set on an issuer; issuers validate with their own key");
    if (consumer && stateless && !unset(s->db_host)) /* 7 */
        FINDING(rep, false,
                "DB_HOST is set on a stateless consumer; a stateless consumer usually needs no "
                "database");

    /* redis */
    /* 8: fcgim8-issuer keeps revocation state in its database, not Redis
     * (doc/issuer.md#settings) */
    if (issuer && !s->issuer && !stateless && (unset(s->redis_host) || !s->redis_password))
        FINDING(rep, true,
                "REDIS_HOST and REDIS_PASSWORD are required for revocation on a stateful "
                "issuer");

    /* production */
    if (prod) {
        bool local = false;
        for (size_t i = 0; i < s->allowed_origins.n; i++) {
            const char *o = s->allowed_origins.items[i];
            local |= strstr(o, "localhost") || strstr(o, "127.0.0.1");
        }
        if (local) /* 9 */
            FINDING(rep, true,
                    "ALLOWED_ORIGINS (BACKEND_CORS_ORIGINS, FRONTEND_HOST) contains a localhost "
                    "origin in production; remove localhost origins");
        if (!s->serve_docs_in_production && s->set_docs) /* 10 */
            FINDING(rep, strict,
                    "SET_DOCS=true in production: Swagger UI would be publicly accessible; set "
                    "SET_DOCS=false (or SERVE_DOCS_IN_PRODUCTION=true to publish on purpose)");
        if (!s->serve_docs_in_production && s->set_open_api) /* 11 */
            FINDING(rep, strict,
                    "SET_OPEN_API=true in production: the OpenAPI endpoint would be publicly "
                    "accessible; set SET_OPEN_API=false");
        if (s->serve_docs_in_production && (s->set_docs || s->set_open_api || s->set_redoc))
            FINDING(rep, false, /* 12 */
                    "SERVE_DOCS_IN_PRODUCTION=true: API docs (SET_DOCS, SET_OPEN_API, SET_REDOC) "
                    "are intentionally published in production");
    }

    /* strict */
    if (strict && in_list(&s->allowed_origins, "*")) /* 13 */
        FINDING(rep, true,
                "ALLOWED_ORIGINS contains the wildcard '*' under STRICT_PRODUCTION_MODE");
    if (strict && s->environment != M8_ENV_LOCAL && !s->session_cookie_secure) /* 14 */
        FINDING(rep, true,
                "SESSION_COOKIE_SECURE=false under STRICT_PRODUCTION_MODE; set the Secure "
                "cookie flag");

    /* rate-limit */
    double login =
        (double)s->login_rate_limit_requests /
        (double)(s->login_rate_limit_window_minutes ? s->login_rate_limit_window_minutes : 1);
    if (login > 5.0) /* 15 */
        FINDING(rep, false,
                "LOGIN_RATE_LIMIT_REQUESTS / LOGIN_RATE_LIMIT_WINDOW_MINUTES allows %.1f login "
                "attempts per minute; this is permissive (recommended at most 5.0)",
                login);
    double refresh =
        (double)s->refresh_rate_limit_requests /
        (double)(s->refresh_rate_limit_window_minutes ? s->refresh_rate_limit_window_minutes : 1);
    if (!stateless && refresh > 20.0) /* 16 */
        FINDING(rep, false,
                "REFRESH_RATE_LIMIT_REQUESTS / REFRESH_RATE_LIMIT_WINDOW_MINUTES allows %.1f "
                "refreshes per minute; this is permissive (recommended at most 20.0)",
                refresh);

    /* boundary */
    if (prod && unset(s->token_issuer)) /* 17 */
        FINDING(rep, strict,
                "TOKEN_ISSUER is not set in production; tokens from any issuer would be "
                "accepted (no issuer boundary)");
    if (prod && unset(s->token_audience)) /* 18 */
        FINDING(rep, strict,
                "TOKEN_AUDIENCE is not set in production; tokens for any audience would be "
                "accepted (no audience boundary)");

    /* hosts */
    if (strict && in_list(&s->allowed_hosts, "*")) /* 19 */
        FINDING(rep, true, "ALLOWED_HOSTS contains the wildcard '*' under STRICT_PRODUCTION_MODE");
    if (s->allowed_hosts.n == 0 && (strict || prod)) /* 20 */
        FINDING(rep, strict,
                "ALLOWED_HOSTS is not set; set ALLOWED_HOSTS to the host names this service "
                "answers for");

    /* internal-http */
    bool exposed = (s->environment == M8_ENV_STAGING || prod) && !s->allow_internal_http;
    if (exposed && starts_http(s->jwks_uri)) /* 21 */
        FINDING(rep, strict,
                "JWKS_URI uses plain http:// outside development; use https:// or set "
                "ALLOW_INTERNAL_HTTP=true for a trusted internal network");
    if (exposed && starts_http(s->introspection_url)) /* 22 */
        FINDING(rep, strict,
                "INTROSPECTION_URL uses plain http:// outside development; use https:// or set "
                "ALLOW_INTERNAL_HTTP=true for a trusted internal network");

    /* event-signing */
    if (!s->event_signing_enabled) /* 23 */
        FINDING(rep, strict,
                "EVENT_SIGNING_ENABLED=false: auth events from the issuer are not "
                "authenticated");
    if (s->event_signing_accept_unsigned) /* 24 */
        FINDING(rep, strict || prod,
                "EVENT_SIGNING_ACCEPT_UNSIGNED=true: unsigned auth events are accepted; allowed "
                "only during a rollout outside production");

    /* 2.4: operational credentials must not reuse PRIVATE_API_SECRET. */
    if (reuses(s->health_detail_credential, s->private_api_secret))
        FINDING(rep, true,
                "HEALTH_DETAIL_CREDENTIAL must not equal PRIVATE_API_SECRET; give health detail "
                "its own credential");
    if (reuses(s->metrics_scrape_credential, s->private_api_secret))
        FINDING(rep, true,
                "METRICS_SCRAPE_CREDENTIAL must not equal PRIVATE_API_SECRET; give metrics "
                "scraping its own credential");
    return rep->fatals.n;
}

void m8_config_report_free(m8_config_report *rep)
{
    m8_errlist_free(&rep->warnings);
    m8_errlist_free(&rep->fatals);
}

static void log_lines(m8_log_level lvl, const m8_errlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        m8_log(lvl, "%s", e->lines[i]);
}

int m8_settings_load_checked(const m8_settings_source *src, m8_settings **out)
{
    *out = NULL;
    m8_errlist errs = {0};
    m8_settings *s = m8_settings_load(src, &errs);
    if (!s) {
        log_lines(M8_LOG_CRITICAL, &errs);
        m8_log(M8_LOG_CRITICAL, "Invalid settings: the service cannot start.");
        m8_errlist_free(&errs);
        return M8_EX_CONFIG;
    }
    m8_errlist_free(&errs);
    m8_config_report rep = {0};
    size_t fatals = m8_config_health(s, &rep);
    log_lines(M8_LOG_WARNING, &rep.warnings);
    log_lines(M8_LOG_CRITICAL, &rep.fatals);
    m8_config_report_free(&rep);
    if (fatals) {
        m8_log(M8_LOG_CRITICAL, "Fatal configuration errors detected during startup.");
        m8_settings_free(s);
        return M8_EX_CONFIG;
    }
    *out = s;
    return 0;
}
