/* oidc_provider.c - the providers of SSO (oidc.h,
 * doc/issuer.md#sso-oidc-and-google): built from the settings at boot,
 * their endpoints fixed (Google) or discovered on first use, the code
 * redeemed at the token endpoint through net/httpc, and the ID token
 * verified with auth/jwt against the provider's JWKS (auth/jwks). */
#include "issuer/oidc.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "core/json.h"
#include "core/log.h"
#include "net/httpc.h"

#define GOOGLE_ISSUER "https://accounts.google.com"
#define GOOGLE_ISSUER_ALT "accounts.google.com"
#define GOOGLE_AUTH "https://accounts.google.com/o/oauth2/v2/auth"
#define GOOGLE_TOKEN "https://oauth2.googleapis.com/token"
#define GOOGLE_JWKS "https://www.googleapis.com/oauth2/v3/certs"
#define DISCOVERY_PATH "/.well-known/openid-configuration"
#define RETRY_S 10.0
#define HTTP_TIMEOUT_S 10.0
#define JWKS_TTL_S 300.0

static m8_oidc_provider *g_prov[2];
/* TOKENS_ENCRYPTION_KEY, then TOKENS_ENCRYPTION_KEY_OLD */
static m8_fernet_key g_tok_keys[2];
static size_t g_ntok_keys;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool set(const char *s)
{
    return s && *s;
}

static void provider_free(m8_oidc_provider *p)
{
    if (!p)
        return;
    if (p->jwks)
        m8_jwks_free(p->jwks);
    m8_oidc_endpoints_clear(&p->ep);
    free(p->issuer);
    free(p->discovery_url);
    free(p->client_id);
    if (p->client_secret) {
        sodium_memzero(p->client_secret, strlen(p->client_secret));
        free(p->client_secret);
    }
    free(p->redirect_uri);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static m8_oidc_provider *provider_new(m8_oidc_kind kind, const char *issuer, bool discover,
                                      const char *id, const char *secret, const char *redirect)
{
    m8_oidc_provider *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->kind = kind;
    p->issuer = strdup(issuer);
    p->client_id = strdup(id);
    p->client_secret = strdup(secret);
    p->redirect_uri = strdup(redirect);
    if (discover && p->issuer) {
        size_t n = strlen(issuer);
        while (n && issuer[n - 1] == '/')
            n--;
        size_t cap = n + sizeof DISCOVERY_PATH;
        if ((p->discovery_url = malloc(cap)))
            snprintf(p->discovery_url, cap, "%.*s%s", (int)n, issuer, DISCOVERY_PATH);
    }
    if (!p->issuer || !p->client_id || !p->client_secret || !p->redirect_uri ||
        (discover && !p->discovery_url)) {
        provider_free(p);
        return NULL;
    }
    return p;
}

int m8_oidc_load(const m8_settings *s, char *err, size_t errlen, void *data)
{
    (void)data;
    m8_oidc_free(NULL, NULL);
    if (set(s->tokens_encryption_key)) {
        m8_fernet_key_derive(s->tokens_encryption_key, strlen(s->tokens_encryption_key),
                             &g_tok_keys[g_ntok_keys++]);
        if (set(s->tokens_encryption_key_old))
            m8_fernet_key_derive(s->tokens_encryption_key_old, strlen(s->tokens_encryption_key_old),
                                 &g_tok_keys[g_ntok_keys++]);
    }
    if (s->google_oauth_enabled) {
        bool custom = set(s->google_oidc_issuer);
        m8_oidc_provider *p = provider_new(
            M8_OIDC_GOOGLE, custom ? s->google_oidc_issuer : GOOGLE_ISSUER, custom,
            s->google_client_id, s->google_client_secret, s->google_oauth_redirect_uri);
        if (!p) {
            snprintf(err, errlen, "Google login: out of memory");
            return 1;
        }
        p->label = "google";
        p->user_kind = "google";
        p->auth_extra = "&access_type=offline&prompt=consent";
        p->issuer_alt = custom ? NULL : GOOGLE_ISSUER_ALT;
        snprintf(p->default_role, sizeof p->default_role, "user");
        p->link_verified = s->google_link_verified_email;
        p->sync_profile = false; /* as fa-auth-m8 */
        p->d_exchange_failed = "Token exchange with Google failed.";
        p->d_refused = "Google sign-in could not be completed for this account.";
        if (!custom) {
            p->ep.issuer = strdup(GOOGLE_ISSUER);
            p->ep.authorization = strdup(GOOGLE_AUTH);
            p->ep.token = strdup(GOOGLE_TOKEN);
            p->ep.jwks_uri = strdup(GOOGLE_JWKS);
            p->ep.alg = M8_ALG_RS256;
            p->jwks = m8_jwks_new(GOOGLE_JWKS, M8_ALG_RS256, JWKS_TTL_S, RETRY_S);
            if (!p->ep.issuer || !p->ep.authorization || !p->ep.token || !p->ep.jwks_uri ||
                !p->jwks) {
                provider_free(p);
                snprintf(err, errlen, "Google login: out of memory");
                return 1;
            }
            atomic_store(&p->ready, true);
        }
        g_prov[M8_OIDC_GOOGLE] = p;
    }
    if (set(s->oidc_issuer_url)) {
        m8_oidc_provider *p =
            provider_new(M8_OIDC_GENERIC, s->oidc_issuer_url, true, s->oidc_client_id,
                         s->oidc_client_secret, s->oidc_redirect_uri);
        if (!p) {
            snprintf(err, errlen, "OIDC login: out of memory");
            return 1;
        }
        p->label = "oidc";
        p->user_kind = "password"; /* the user table knows PASSWORD and GOOGLE only */
        p->auth_extra = "";
        snprintf(p->default_role, sizeof p->default_role, "%s",
                 set(s->oidc_default_role) ? s->oidc_default_role : "user");
        p->link_verified = s->oidc_link_verified_email;
        p->sync_profile = true;
        p->d_exchange_failed = "Token exchange with the identity provider failed.";
        p->d_refused = "Sign-in could not be completed for this account.";
        g_prov[M8_OIDC_GENERIC] = p;
    }
    return 0;
}

void m8_oidc_free(m8_app *app, void *data)
{
    (void)app;
    (void)data;
    for (size_t i = 0; i < 2; i++) {
        provider_free(g_prov[i]);
        g_prov[i] = NULL;
        m8_fernet_key_wipe(&g_tok_keys[i]);
    }
    g_ntok_keys = 0;
}

const m8_fernet_key *m8_oidc_token_keys(size_t *n)
{
    *n = g_ntok_keys;
    return g_tok_keys;
}

m8_oidc_provider *m8_oidc_get(m8_oidc_kind kind)
{
    return (unsigned)kind < 2 ? g_prov[kind] : NULL;
}

/* ------------------------------------------------------------ discovery */

int m8_oidc_ready(m8_oidc_provider *p)
{
    if (atomic_load(&p->ready))
        return 0;
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    double now = mono_now();
    if (atomic_load(&p->ready)) {
        rc = 0;
    } else if (now < p->next_try) {
        rc = M8_EAGAIN;
    } else {
        p->next_try = now + RETRY_S;
        m8_http_result res;
        memset(&res, 0, sizeof res);
        char err[256] = "";
        /* no redirect followed: the endpoints (and so the keys) come from
         * the configured issuer's own document only */
        m8_http_request rq = {.method = "GET",
                              .url = p->discovery_url,
                              .timeout_s = HTTP_TIMEOUT_S,
                              .max = M8_OIDC_DISCOVERY_MAX};
        int hr = m8_http_do(&rq, &res);
        m8_oidc_endpoints ep;
        memset(&ep, 0, sizeof ep);
        if (hr != 0 || res.status != 200) {
            snprintf(err, sizeof err, "status %ld, %s", res.status,
                     hr ? m8_httpc_err_name(res.err) : "ok");
            rc = M8_EAGAIN;
        } else if (m8_oidc_discovery_parse(res.body.data ? res.body.data : "", res.body.len,
                                           p->issuer, &ep, err, sizeof err) != 0) {
            rc = M8_EAGAIN;
        } else if (!(p->jwks = m8_jwks_new(ep.jwks_uri, ep.alg, JWKS_TTL_S, RETRY_S))) {
            snprintf(err, sizeof err, "cannot make the key resolver");
            m8_oidc_endpoints_clear(&ep);
            rc = M8_EAGAIN;
        } else {
            p->ep = ep;
            atomic_store(&p->ready, true);
        }
        m8_buf_free(&res.body);
        char shown[256];
        m8_http_display_url(p->discovery_url, shown, sizeof shown);
        if (rc != 0)
            m8_log_limited("issuer.oidc.discovery", M8_LOG_WARNING,
                           "issuer: %s discovery at %s failed (%s); next try in %.0f s", p->label,
                           shown, err, RETRY_S);
        else
            m8_log(M8_LOG_INFO, "issuer: %s provider discovered at %s", p->label, shown);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int m8_oidc_auth_url(m8_oidc_provider *p, const char *state, const char *challenge,
                     const char *nonce, m8_buf *out)
{
    int rc = m8_oidc_ready(p);
    if (rc != 0)
        return rc;
    const char *az = p->ep.authorization;
    rc = m8_buf_puts(out, az);
    if (rc == 0)
        rc = m8_buf_puts(out, strchr(az, '?') ? "&response_type=code&client_id="
                                              : "?response_type=code&client_id=");
    if (rc == 0)
        rc = m8_oidc_quote_plus(out, p->client_id, strlen(p->client_id));
    if (rc == 0)
        rc = m8_buf_puts(out, "&redirect_uri=");
    if (rc == 0)
        rc = m8_oidc_quote_plus(out, p->redirect_uri, strlen(p->redirect_uri));
    if (rc == 0)
        rc = m8_buf_puts(out, "&scope=openid+email+profile&state=");
    if (rc == 0)
        rc = m8_oidc_quote_plus(out, state, strlen(state));
    if (rc == 0)
        rc = m8_buf_puts(out, p->auth_extra);
    if (rc == 0)
        rc = m8_buf_puts(out, "&code_challenge=");
    if (rc == 0)
        rc = m8_oidc_quote_plus(out, challenge, strlen(challenge));
    if (rc == 0)
        rc = m8_buf_puts(out, "&code_challenge_method=S256&nonce=");
    if (rc == 0)
        rc = m8_oidc_quote_plus(out, nonce, strlen(nonce));
    return rc;
}

/* ------------------------------------------------------------ the code */

static int form_field(m8_buf *b, const char *name, const char *v)
{
    int rc = b->len ? m8_buf_putc(b, '&') : 0;
    if (rc == 0)
        rc = m8_buf_puts(b, name);
    if (rc == 0)
        rc = m8_buf_putc(b, '=');
    return rc ? rc : m8_oidc_quote_plus(b, v, strlen(v));
}

/* A string member of the token answer into out (cap bytes with the NUL);
 * left "" when absent, and *too_long set when it does not fit. */
static void ext_string(json_object *o, const char *name, char *out, size_t cap, bool *too_long)
{
    json_object *v = NULL;
    out[0] = '\0';
    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return;
    size_t n = (size_t)json_object_get_string_len(v);
    if (n == 0 || n >= cap || memchr(json_object_get_string(v), '\0', n)) {
        *too_long = *too_long || n >= cap;
        return;
    }
    memcpy(out, json_object_get_string(v), n + 1);
}

/* Wipes the text of o's string member name, if there is one. */
static void wipe_member(json_object *o, const char *name)
{
    json_object *v = NULL;
    if (json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string))
        sodium_memzero((char *)json_object_get_string(v), (size_t)json_object_get_string_len(v));
}

/* The provider's tokens of the answer o (doc/issuer.md#stored-google-tokens). */
static void ext_tokens(json_object *o, m8_oidc_ext_tokens *ext)
{
    json_object *v = NULL;
    ext_string(o, "access_token", ext->access, sizeof ext->access, &ext->too_long);
    ext_string(o, "refresh_token", ext->refresh, sizeof ext->refresh, &ext->too_long);
    ext->expires_in = 0;
    if (json_object_object_get_ex(o, "expires_in", &v) && json_object_is_type(v, json_type_int)) {
        int64_t e = json_object_get_int64(v);
        if (e > 0 && e <= M8_OIDC_EXT_EXPIRES_MAX)
            ext->expires_in = e;
    }
}

/* The id_token of the token endpoint's answer to the form post; with ext
 * also the provider's own tokens. */
static m8_oidc_outcome token_call(m8_oidc_provider *p, const char *code, const char *verifier,
                                  m8_arena *a, const char **id_token, m8_oidc_ext_tokens *ext,
                                  const char **why)
{
    m8_buf form;
    m8_buf_init(&form, 16384);
    int rc = form_field(&form, "grant_type", "authorization_code");
    if (rc == 0)
        rc = form_field(&form, "code", code);
    if (rc == 0)
        rc = form_field(&form, "redirect_uri", p->redirect_uri);
    if (rc == 0)
        rc = form_field(&form, "client_id", p->client_id);
    if (rc == 0)
        rc = form_field(&form, "client_secret", p->client_secret);
    if (rc == 0)
        rc = form_field(&form, "code_verifier", verifier);
    if (rc != 0) {
        if (form.data)
            sodium_memzero(form.data, form.len);
        m8_buf_free(&form);
        *why = "the token request does not fit";
        return M8_OIDC_ERROR;
    }
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                          "Accept: application/json", NULL};
    m8_http_request rq;
    memset(&rq, 0, sizeof rq);
    rq.method = "POST";
    rq.url = p->ep.token;
    rq.headers = headers;
    rq.body = form.data;
    rq.body_len = form.len;
    rq.timeout_s = HTTP_TIMEOUT_S;
    rq.max = M8_OIDC_TOKEN_RESP_MAX;
    rq.send_once = true;
    m8_http_result res;
    memset(&res, 0, sizeof res);
    int hr = m8_http_do(&rq, &res);
    sodium_memzero(form.data, form.len);
    m8_buf_free(&form);
    m8_oidc_outcome out = M8_OIDC_OK;
    json_object *o = NULL;
    if (hr != 0 || res.status != 200) {
        *why = hr ? m8_httpc_err_name(res.err) : "the token endpoint refused the code";
        out = M8_OIDC_EXCHANGE_FAILED;
    } else {
        const char *jwhy = NULL;
        o = m8_json_parse(res.body.data ? res.body.data : "", res.body.len, 8, NULL, &jwhy);
        json_object *t = NULL;
        if (!o || !json_object_is_type(o, json_type_object)) {
            *why = "the token endpoint's answer is not a JSON object";
            out = M8_OIDC_EXCHANGE_FAILED;
        } else if (!json_object_object_get_ex(o, "id_token", &t) ||
                   !json_object_is_type(t, json_type_string)) {
            *why = "no id_token";
            out = M8_OIDC_NO_ID_TOKEN;
        } else if (!(*id_token = m8_arena_strdup(a, json_object_get_string(t)))) {
            *why = "out of memory";
            out = M8_OIDC_ERROR;
        } else if (ext) {
            ext_tokens(o, ext);
        }
    }
    /* json-c frees without wiping: the parsed copies of the provider's
     * tokens (ext holds its own, wiped by the caller) go first */
    wipe_member(o, "access_token");
    wipe_member(o, "refresh_token");
    wipe_member(o, "id_token");
    json_object_put(o);
    if (res.body.data)
        sodium_memzero(res.body.data, res.body.len); /* the provider's tokens */
    m8_buf_free(&res.body);
    return out;
}

m8_oidc_outcome m8_oidc_redeem(m8_oidc_provider *p, const char *code, const char *verifier,
                               const char *nonce, long long now, m8_arena *a, m8_oidc_identity *id,
                               m8_oidc_ext_tokens *ext, const char **why)
{
    const char *dummy = NULL;
    if (!why)
        why = &dummy;
    memset(id, 0, sizeof *id);
    if (ext)
        memset(ext, 0, sizeof *ext);
    if (m8_oidc_ready(p) != 0) {
        *why = "the provider's endpoints are unknown (discovery failed)";
        return M8_OIDC_EXCHANGE_FAILED;
    }
    const char *tok = NULL;
    m8_oidc_outcome out = token_call(p, code, verifier, a, &tok, ext, why);
    if (out != M8_OIDC_OK)
        return out;
    m8_jws j;
    memset(&j, 0, sizeof j);
    if (m8_jws_parse(tok, strlen(tok), &j) != M8_JWT_OK) {
        *why = "the id_token is not a JWS";
        return M8_OIDC_BAD_ID_TOKEN;
    }
    int v = m8_jwks_verify(p->jwks, &j, p->ep.alg, mono_now(), NULL);
    if (v == -1) {
        *why = "the provider's keys cannot be fetched";
        out = M8_OIDC_ERROR;
    } else if (v != M8_JWT_OK) {
        *why = "signature, alg or kid";
        out = M8_OIDC_BAD_ID_TOKEN;
    } else if (m8_jws_parse_payload(&j) != M8_JWT_OK) {
        *why = "the id_token's payload";
        out = M8_OIDC_BAD_ID_TOKEN;
    } else {
        m8_oidc_expect e = {p->ep.issuer ? p->ep.issuer : p->issuer, p->issuer_alt, p->client_id,
                            nonce};
        const char *r = m8_oidc_claims_check(j.payload, &e, now, a, id);
        if (r) {
            *why = r;
            out = M8_OIDC_BAD_ID_TOKEN;
        }
    }
    m8_jws_free(&j);
    return out;
}
