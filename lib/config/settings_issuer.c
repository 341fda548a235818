/* settings_issuer.c - the checks only fcgim8-issuer makes on its settings
 * (doc/issuer.md#settings): the secret rules of its own secrets, the
 * private API registry, Google login, the login methods, and the
 * verification key taken from the signing key.  Like the other model
 * checks, the first failure adds its line and stops, and no line ever
 * holds a value. */
#include "config/settings_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/keys.h"
#include "core/json.h"

static bool is_changethis(const char *v)
{
    const char *p = v;
    size_t n = m8_trim(&p, strlen(v));
    return m8_memcaseeq(p, n, "changethis") != 0;
}

static bool strong(const char *v, bool (*match)(const char *))
{
    char *t = m8__dup_trimmed(v);
    bool ok = t && match(t);
    m8__wipe_free(t);
    return ok;
}

/* The SDK's secret rules: "changethis" refused, then SECRET_KEY (at least 32
 * characters of four classes) or PASSWORD (at least 8). */
static int secrets(const m8_settings *s, m8_errlist *errs)
{
    const struct {
        const char *name;
        const char *v;
        bool password;
    } list[] = {
        {"FIRST_SUPERUSER_PASSWORD", s->first_superuser_password, true},
        {"SESSION_SECRET", s->session_secret, false},
        {"TOKENS_ENCRYPTION_KEY", s->tokens_encryption_key, false},
        {"TOKENS_ENCRYPTION_KEY_OLD", s->tokens_encryption_key_old, false},
        {"PRIVATE_API_SECRET", s->private_api_secret, false},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(list); i++) {
        if (!list[i].v)
            continue;
        if (is_changethis(list[i].v)) {
            m8_errlist_add(errs, "Insecure default value for '%s'", list[i].name);
            return M8_ECONFIG;
        }
        if (list[i].password && !strong(list[i].v, m8_match_password)) {
            m8_errlist_add(errs,
                           "%s must be a strong password: at least 8 characters with a "
                           "lower-case letter, an upper-case letter, a digit and a special "
                           "character, and no whitespace",
                           list[i].name);
            return M8_ECONFIG;
        }
        if (!list[i].password && !strong(list[i].v, m8_match_secret_key)) {
            m8_errlist_add(errs, "%s must be a valid secret key.", list[i].name);
            return M8_ECONFIG;
        }
    }
    return 0;
}

/* PRIVATE_API_CONSUMERS: a JSON object (consumer id -> credentials); an
 * empty one is refused under the production gate. */
static int consumers(const m8_settings *s, bool production, m8_errlist *errs)
{
    const char *v = s->private_api_consumers ? s->private_api_consumers : "{}";
    const char *why = NULL;
    struct json_object *o = m8_json_parse(v, strlen(v), 16, NULL, &why);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        m8_errlist_add(errs, "PRIVATE_API_CONSUMERS must be a JSON object");
        return M8_ECONFIG;
    }
    int n = json_object_object_length(o);
    json_object_put(o);
    if (production && n == 0) {
        m8_errlist_add(errs, "PRIVATE_API_CONSUMERS must name at least one consumer when "
                             "ENVIRONMENT=production or STRICT_PRODUCTION_MODE=true");
        return M8_ECONFIG;
    }
    return 0;
}

/* Google login: both credentials or neither, a redirect URI with them
 * (https unless local, no fragment); the effective GOOGLE_OAUTH_ENABLED. */
static int google(m8_settings *s, m8_errlist *errs)
{
    bool id = !m8__blank(s->google_client_id), secret = !m8__blank(s->google_client_secret);
    if (id != secret) {
        m8_errlist_add(errs, "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together");
        return M8_ECONFIG;
    }
    if (id) {
        const char *u = s->google_oauth_redirect_uri;
        if (m8__blank(u)) {
            m8_errlist_add(errs, "GOOGLE_CLIENT_ID requires GOOGLE_OAUTH_REDIRECT_URI");
            return M8_ECONFIG;
        }
        bool https = strncmp(u, "https://", 8) == 0 && u[8];
        bool http = strncmp(u, "http://", 7) == 0 && u[7];
        if (!https && !(http && s->environment == M8_ENV_LOCAL)) {
            m8_errlist_add(errs, "GOOGLE_OAUTH_REDIRECT_URI must be an https URL (http only "
                                 "with ENVIRONMENT=local)");
            return M8_ECONFIG;
        }
        if (strchr(u, '#')) {
            m8_errlist_add(errs, "GOOGLE_OAUTH_REDIRECT_URI must not have a fragment");
            return M8_ECONFIG;
        }
    }
    if (!s->google_oauth_enabled_set)
        s->google_oauth_enabled = id;
    else if (s->google_oauth_enabled && !id) {
        m8_errlist_add(errs, "GOOGLE_OAUTH_ENABLED=true requires GOOGLE_CLIENT_ID, "
                             "GOOGLE_CLIENT_SECRET and GOOGLE_OAUTH_REDIRECT_URI");
        return M8_ECONFIG;
    }
    return 0;
}

/* An identity provider's issuer URL: https, or http to a loopback host
 * (tests and private deployments); no fragment, no whitespace. */
static bool sso_url_ok(const char *u)
{
    for (const char *c = u; *c; c++) {
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '#')
            return false;
    }
    if (strncmp(u, "https://", 8) == 0)
        return u[8] != '\0' && u[8] != '/';
    if (strncmp(u, "http://", 7) != 0)
        return false;
    const char *h = u + 7;
    size_t n = strcspn(h, "/?");
    return (n >= 9 && strncmp(h, "127.0.0.1", 9) == 0 && (n == 9 || h[9] == ':')) ||
           (n >= 9 && strncmp(h, "localhost", 9) == 0 && (n == 9 || h[9] == ':')) ||
           (n >= 5 && strncmp(h, "[::1]", 5) == 0 && (n == 5 || h[5] == ':'));
}

/* SSO (doc/issuer.md#sso-oidc-and-google): GOOGLE_OIDC_ISSUER, and the
 * generic provider's settings, all or none. */
static int sso(m8_settings *s, m8_errlist *errs)
{
    if (!m8__blank(s->google_oidc_issuer) && !sso_url_ok(s->google_oidc_issuer)) {
        m8_errlist_add(errs, "GOOGLE_OIDC_ISSUER must be an https URL (http only to 127.0.0.1, "
                             "::1 or localhost)");
        return M8_ECONFIG;
    }
    bool on = !m8__blank(s->oidc_issuer_url);
    const struct {
        const char *name;
        const char *v;
    } need[] = {{"OIDC_CLIENT_ID", s->oidc_client_id},
                {"OIDC_CLIENT_SECRET", s->oidc_client_secret},
                {"OIDC_REDIRECT_URI", s->oidc_redirect_uri}};
    for (size_t i = 0; i < M8_ARRAY_LEN(need); i++) {
        if (on && m8__blank(need[i].v)) {
            m8_errlist_add(errs, "OIDC_ISSUER_URL requires %s", need[i].name);
            return M8_ECONFIG;
        }
        if (!on && !m8__blank(need[i].v)) {
            m8_errlist_add(errs, "%s requires OIDC_ISSUER_URL", need[i].name);
            return M8_ECONFIG;
        }
    }
    if (!on)
        return 0;
    if (!sso_url_ok(s->oidc_issuer_url)) {
        m8_errlist_add(errs, "OIDC_ISSUER_URL must be an https URL (http only to 127.0.0.1, ::1 "
                             "or localhost)");
        return M8_ECONFIG;
    }
    if (strlen(s->oidc_issuer_url) > 255) {
        /* the identity table's issuer column (doc/issuer.md#sso-oidc-and-google) */
        m8_errlist_add(errs, "OIDC_ISSUER_URL must be at most 255 characters");
        return M8_ECONFIG;
    }
    const char *u = s->oidc_redirect_uri;
    bool https = strncmp(u, "https://", 8) == 0 && u[8];
    bool http = strncmp(u, "http://", 7) == 0 && u[7];
    if ((!https && !(http && s->environment == M8_ENV_LOCAL)) || strchr(u, '#')) {
        m8_errlist_add(errs, "OIDC_REDIRECT_URI must be an https URL without a fragment (http "
                             "only with ENVIRONMENT=local)");
        return M8_ECONFIG;
    }
    const char *r = s->oidc_default_role ? s->oidc_default_role : "user";
    if (strcmp(r, "admin") != 0 && strcmp(r, "writer") != 0 && strcmp(r, "reader") != 0 &&
        strcmp(r, "user") != 0) {
        m8_errlist_add(errs, "OIDC_DEFAULT_ROLE must be one of: admin, writer, reader, user");
        return M8_ECONFIG;
    }
    return 0;
}

int m8__issuer_checks(m8_settings *s, m8_errlist *errs)
{
    bool production = s->environment == M8_ENV_PRODUCTION || s->strict_production_mode;
    if (secrets(s, errs) || consumers(s, production, errs) || google(s, errs) || sso(s, errs))
        return M8_ECONFIG;
    const char *evm = s->email_verification_mode;
    if (!evm ||
        (strcmp(evm, "off") != 0 && strcmp(evm, "optional") != 0 && strcmp(evm, "required") != 0)) {
        m8_errlist_add(errs, "EMAIL_VERIFICATION_MODE must be one of: off, optional, required");
        return M8_ECONFIG;
    }
    if (!s->password_login_enabled && !s->google_oauth_enabled && m8__blank(s->oidc_issuer_url)) {
        m8_errlist_add(errs, "no login method is enabled: set PASSWORD_LOGIN_ENABLED=true or "
                             "configure Google login (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, "
                             "GOOGLE_OAUTH_REDIRECT_URI) or an OpenID provider (OIDC_ISSUER_URL)");
        return M8_ECONFIG;
    }
    struct stat st;
    const char *old = s->access_public_key_old_file;
    if (old && (stat(old, &st) != 0 || !S_ISREG(st.st_mode))) {
        m8_errlist_add(errs, "ACCESS_PUBLIC_KEY_OLD_FILE not found: %s", old);
        return M8_ECONFIG;
    }
    if (production)
        s->api_key_strict_rate_limit = true;
    return 0;
}

int m8__issuer_public_key(m8_settings *s, const char *priv, m8_errlist *errs)
{
    char why[256] = "";
    if (!s->access_public_key) {
        s->access_public_key = m8_pem_public_half(priv, strlen(priv), why, sizeof why);
        if (!s->access_public_key) {
            m8_errlist_add(errs, "ACCESS_PRIVATE_KEY_FILE: %s", why);
            return M8_ECONFIG;
        }
        return 0;
    }
    /* Both files given: the public one must be the private one's half, or
     * no token the issuer signs would pass its own check. */
    m8_alg alg = s->access_token_algorithm;
    m8_key *a = m8_key_from_pem(priv, strlen(priv), alg, why, sizeof why);
    m8_key *b = a ? m8_key_from_pem(s->access_public_key, strlen(s->access_public_key), alg, why,
                                    sizeof why)
                  : NULL;
    bool same = a && b && m8_key_equal(a, b);
    m8_key_unref(a);
    m8_key_unref(b);
    if (!same) {
        m8_errlist_add(errs, "ACCESS_PUBLIC_KEY_FILE is not the public half of "
                             "ACCESS_PRIVATE_KEY_FILE");
        return M8_ECONFIG;
    }
    return 0;
}
