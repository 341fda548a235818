/* settings_model.c - the model checks that look at several settings at once
 * (run in order, the first failure stops), and the computed values
 * (ALLOWED_ORIGINS, the docs switches, the API-key introspection URL). */
#include "config/settings_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/alg.h"
#include "auth/keys.h"

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
    *pem = m8__dup_trimmed(text);
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
    char *t = m8__dup_trimmed(v);
    bool ok = t && match(t);
    m8__wipe_free(t);
    return ok;
}

/* The checks of doc/settings.md#model-checks in order; the first failure
 * adds its line and stops. */
int m8__model_checks(m8_settings *s, m8_errlist *errs)
{
    const char *alg = m8_alg_name(s->access_token_algorithm);
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
    /* 3: Redis TLS (4, issuer Redis, is unreachable under doc/settings.md#service-role) */
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
    if (s->token_strict_validation &&
        (m8__blank(s->token_issuer) || m8__blank(s->token_audience))) {
        m8_errlist_add(errs, "TOKEN_STRICT_VALIDATION=true requires TOKEN_ISSUER and "
                             "TOKEN_AUDIENCE to be set and not blank");
        goto out;
    }
    /* 6 */
    if (s->event_signing_enabled) {
        if (m8__blank(s->event_signing_key)) {
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
    } else if (s->issuer && !priv) {
        m8_errlist_add(errs,
                       "ACCESS_TOKEN_ALGORITHM=%s requires ACCESS_PRIVATE_KEY_FILE (fcgim8-issuer "
                       "signs the access tokens with it)",
                       alg);
        goto out;
    } else if (!s->issuer && !s->access_public_key && m8__blank(s->jwks_uri)) {
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
    /* fcgim8-issuer: it verifies its own tokens with its key's public half */
    if (s->issuer && priv && s->access_token_algorithm != M8_ALG_HS256 &&
        m8__issuer_public_key(s, priv, errs))
        goto out;
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
        if (m8__blank(required[i].v)) {
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
        if (m8__blank(s->internal_client_id)) {
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
    if (s->service_token_exchange_enabled && m8__blank(s->internal_client_id)) {
        m8_errlist_add(errs, "CONFIG: SERVICE_TOKEN_EXCHANGE_ENABLED=true requires "
                             "INTERNAL_CLIENT_ID");
        goto out;
    }
    if (!m8__blank(s->internal_client_id) && (!s->private_api_secret || !*s->private_api_secret)) {
        m8_errlist_add(errs, "CONFIG: INTERNAL_CLIENT_ID requires PRIVATE_API_SECRET");
        goto out;
    }
    if (production && s->introspection_url && m8__blank(s->internal_client_id)) {
        m8_errlist_add(errs, "CONFIG: INTROSPECTION_URL without INTERNAL_CLIENT_ID is the legacy "
                             "X-Internal-Token mode, which is allowed only outside production; "
                             "set INTERNAL_CLIENT_ID");
        goto out;
    }
    if (s->issuer && m8__issuer_checks(s, errs))
        goto out;
    rc = 0;
out:
    m8__wipe_free(priv);
    sodium_memzero(why, sizeof why);
    return rc;
}

/* ------------------------------------------------------------ computed */

int m8__computed(m8_settings *s)
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
    /* API_KEY_INTROSPECTION_URL, else INTROSPECTION_URL derived as doc/wire.md#private-urls
     * (trailing '/', a final "/jti-status", trailing '/' again) plus
     * "/api-keys/introspect" (doc/wire.md#enabling-api-keys). */
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
        while (n && u[n - 1] == '/') /* doc/wire.md#private-urls: "…//jti-status" */
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
