/* oidc_routes.c - the SSO routes (oidc.h, doc/issuer.md#sso-oidc-and-google):
 * the login URL, the provider's callback and the exchange of the one-minute
 * auth code, for Google (fa-auth-m8's paths, statuses and texts) and for the
 * generic provider, one code path with the provider as a parameter. */
#include "issuer/oidc.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "auth/jws_sign.h"
#include "core/b64url.h"
#include "core/json.h"
#include "core/log.h"
#include "issuer/clientip.h"
#include "issuer/mint.h"
#include "issuer/oidc_store.h"
#include "issuer/service.h"
#include "issuer/sessions.h"
#include "issuer/store.h"

#define D_UNAVAILABLE "feature_unavailable"
#define D_CHALLENGE "Invalid code_challenge."
#define D_PROVIDER_DOWN "Identity provider unavailable."
#define D_STATE "Invalid or expired state parameter"
#define D_NO_ID_TOKEN "Missing id_token in token response."
#define D_BAD_ID_TOKEN "Invalid id_token"
#define D_AUTH_ERROR "Authentication error."
#define D_RATE "Too many requests."
#define D_VERIFIER "Invalid code_verifier."
#define D_CODE "Invalid or expired auth code."
#define D_ORIGIN "Origin not allowed."
#define D_PKCE "PKCE verification failed."

static long long now_s(void)
{
    return (long long)time(NULL);
}

/* n random bytes as unpadded base64url into out (cap > 2n). */
static int random_b64(size_t n, char *out, size_t cap)
{
    unsigned char r[32];
    m8_buf b;
    m8_buf_init(&b, cap);
    randombytes_buf(r, n);
    int rc = m8_b64url_encode(&b, r, n);
    if (rc == 0 && b.len < cap)
        memcpy(out, b.data, b.len + 1);
    else
        rc = M8_ETOOBIG;
    sodium_memzero(r, sizeof r);
    m8_buf_free(&b);
    return rc;
}

static const char *jget(json_object *o, const char *name)
{
    json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* ------------------------------------------------------------ login URL */

static int login_url(m8_request *req, m8_issuer *iss, m8_oidc_kind kind)
{
    m8_oidc_provider *p = m8_oidc_get(kind);
    if (!p)
        return m8_res_error(req, 404, D_UNAVAILABLE);
    const char *target = m8_req_query(req, "redirect_target");
    const char *bad = m8_oidc_target_check(iss->s, target, target ? strlen(target) : 0);
    if (bad)
        return m8_res_error(req, 400, bad);
    const char *cc = m8_req_query(req, "code_challenge");
    if (!cc || !m8_oidc_challenge_ok(cc, strlen(cc)))
        return m8_res_error(req, 400, D_CHALLENGE);

    char state[40], verifier[48], challenge[44], nonce[40];
    if (random_b64(16, state, sizeof state) || random_b64(32, verifier, sizeof verifier) ||
        random_b64(16, nonce, sizeof nonce))
        return m8_req_fail(req, "issuer: no random state");
    m8_oidc_s256(verifier, strlen(verifier), challenge);

    m8_buf url;
    m8_buf_init(&url, 16384);
    int rc = m8_oidc_auth_url(p, state, challenge, nonce, &url);
    if (rc == M8_EAGAIN) {
        m8_buf_free(&url);
        return m8_res_error(req, 503, D_PROVIDER_DOWN);
    }
    long long now = now_s();
    json_object *sess = json_object_new_object();
    json_object_object_add(sess, "pkce_verifier", json_object_new_string(verifier));
    json_object_object_add(sess, "redirect_target", json_object_new_string(target));
    json_object_object_add(sess, "code_challenge", json_object_new_string(cc));
    json_object_object_add(sess, "created_at", json_object_new_int64(now));
    json_object_object_add(sess, "flow", json_object_new_string(p->label));
    json_object_object_add(sess, "nonce", json_object_new_string(nonce));
    const char *text = json_object_to_json_string_ext(sess, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    int out;
    if (rc != 0 || !text || strlen(text) > M8_OIDC_SESSION_MAX) {
        out = m8_req_fail(req, "issuer: sso: the login session does not fit (%d)", rc);
    } else {
        rc = m8_oidc_state_put(m8_req_db(req), iss->prefix, state, p->label, text,
                               now + M8_OIDC_STATE_TTL_S, now);
        if (rc != 0) {
            out = m8_issuer_db_fail(req, rc, "sso: state write");
        } else {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "url", json_object_new_string_len(url.data, (int)url.len));
            m8_res_header(req, "Cache-Control", "no-store");
            out = m8_res_json(req, 200, o);
        }
    }
    sodium_memzero(verifier, sizeof verifier);
    json_object_put(sess);
    m8_buf_free(&url);
    return out;
}

/* ------------------------------------------------------------ callback */

static int add_cookie(m8_request *req, const m8_issuer *iss, const char *name, const m8_buf *v,
                      long long max_age)
{
    m8_buf c;
    m8_buf_init(&c, 16384);
    int rc = m8_buf_printf(&c, "%s=%.*s; HttpOnly; Max-Age=%lld; Path=/; SameSite=lax%s", name,
                           (int)v->len, v->data, max_age, iss->cookie_secure ? "; Secure" : "");
    if (rc == 0)
        rc = m8_res_header(req, "Set-Cookie", c.data);
    if (c.data)
        sodium_memzero(c.data, c.len);
    m8_buf_free(&c);
    return rc;
}

static void wipe_buf(m8_buf *b)
{
    if (b->data)
        sodium_memzero(b->data, b->len);
    m8_buf_free(b);
}

/* The provider's tokens on the new session row of a Google account, in the
 * caller's transaction (doc/issuer.md#stored-google-tokens): the access
 * token and its expiry replaced, the refresh token only when the provider
 * sent one (Google sends it on consent only). */
static int store_ext(m8_request *req, const m8_issuer *iss, const m8_issuer_user *u,
                     const char *jti, const m8_oidc_ext_tokens *ext, long long now)
{
    size_t nkeys = 0;
    const m8_fernet_key *keys = m8_oidc_token_keys(&nkeys);
    if (!ext || strcmp(u->provider, "google") != 0)
        return 0;
    if (ext->too_long)
        m8_log_limited("issuer.sso.ext", M8_LOG_WARNING,
                       "issuer: a Google token longer than %u bytes was not stored",
                       M8_OIDC_EXT_TOKEN_MAX);
    m8_oidc_ext_write w = {
        .set_access = true,
        .set_refresh = ext->refresh[0] != '\0',
        .set_expires = true,
        .access = ext->access[0] ? ext->access : NULL,
        .refresh = ext->refresh,
        .expires_us = ext->access[0] && ext->expires_in ? (now + ext->expires_in) * 1000000 : 0};
    return m8_oidc_ext_store(m8_req_db(req), iss->prefix, keys, nkeys, u->id, jti, &w, NULL);
}

/* The session row and the allowlist entry, as a password login writes them;
 * a Google account's row also keeps the provider's tokens. */
static int write_session(m8_request *req, const m8_issuer *iss, const m8_issuer_user *u,
                         const char *jti, const m8_buf *refresh, const m8_oidc_ext_tokens *ext,
                         long long now)
{
    m8_db *db = m8_req_db(req);
    m8_issuer_session s = {u->id,
                           u->provider,
                           jti,
                           refresh->data,
                           refresh->len,
                           now + iss->access_cfg.expire_minutes * 60,
                           now + iss->refresh_minutes * 60,
                           u->auth_generation};
    m8_issuer_user locked;
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = m8_issuer_user_by_id(db, iss->prefix, &req->arena, u->id, true, &locked);
    if (rc == 0) {
        s.auth_generation = locked.auth_generation;
        rc = m8_issuer_session_upsert(db, iss->prefix, &s);
    }
    if (rc == 0)
        rc = store_ext(req, iss, u, jti, ext, now);
    if (rc == 0)
        rc = m8_issuer_allow_put(db, iss->prefix, jti, u->id, s.refresh_expires_at);
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0 && m8_db_in_transaction(db))
        m8_db_rollback(db);
    return rc;
}

/* The auth code's payload: what the exchange hands to the client. */
static char *code_payload(m8_request *req, const m8_oidc_provider *p, const m8_issuer_user *u,
                          const m8_buf *access, long long exp, const char *challenge)
{
    json_object *o = json_object_new_object(), *user = json_object_new_object();
    json_object_object_add(o, "version", json_object_new_int(1));
    json_object_object_add(o, "auth_provider", json_object_new_string(p->label));
    json_object_object_add(o, "access_token",
                           json_object_new_string_len(access->data, (int)access->len));
    json_object_object_add(o, "expires_at", json_object_new_int64(exp * 1000));
    json_object_object_add(user, "name",
                           u->full_name ? json_object_new_string(u->full_name) : NULL);
    json_object_object_add(user, "email", json_object_new_string(u->email));
    json_object_object_add(user, "avatar", u->avatar ? json_object_new_string(u->avatar) : NULL);
    json_object_object_add(o, "user", user);
    json_object_object_add(o, "code_challenge", json_object_new_string(challenge));
    const char *t =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    char *copy = t ? m8_arena_strdup(&req->arena, t) : NULL;
    json_object_put(o);
    return copy;
}

/* Steps 4-6 after the identity is bound: tokens, session, auth code, 307. */
static int finish(m8_request *req, m8_issuer *iss, const m8_oidc_provider *p, m8_issuer_user *u,
                  const char *target, const char *challenge, const m8_oidc_ext_tokens *ext)
{
    long long now = now_s();
    char jti[M8_UUID_STR_LEN + 1];
    m8_buf access, refresh;
    m8_buf_init(&access, M8_MINT_MAX_TOKEN + 1);
    m8_buf_init(&refresh, M8_MINT_MAX_TOKEN + 1);
    m8_mint_user mu;
    m8_issuer_user_mint(u, &mu);
    int rc = m8_mint_access(&iss->access_cfg, &mu, now, NULL, jti, &access);
    if (rc == 0)
        rc = m8_mint_refresh(iss->refresh_key, iss->refresh_minutes, u->id, jti, now, &refresh);
    int out = 0;
    if (rc != 0) {
        m8_log(M8_LOG_ERROR, "issuer: sso: tokens could not be minted for %s (%d)", u->id, rc);
        out = m8_res_error(req, 500, M8_MINT_DETAIL_FAILED);
        goto done;
    }
    rc = iss->stateless ? 0 : write_session(req, iss, u, jti, &refresh, ext, now);
    if (rc != 0) {
        out = m8_issuer_db_fail(req, rc, "sso: session write");
        goto done;
    }
    long long exp = now + iss->access_cfg.expire_minutes * 60;
    char *payload = code_payload(req, p, u, &access, exp, challenge);
    char code[M8_UUID_STR_LEN + 1];
    m8_jti_new(code);
    rc = payload ? m8_oidc_code_put(m8_req_db(req), iss->prefix, code, payload,
                                    now + M8_OIDC_CODE_TTL_S, now)
                 : M8_ENOMEM;
    if (payload)
        sodium_memzero(payload, strlen(payload));
    if (rc != 0) {
        out = m8_issuer_db_fail(req, rc, "sso: auth code write");
        goto done;
    }
    m8_buf loc;
    m8_buf_init(&loc, M8_OIDC_TARGET_MAX + 64);
    rc = m8_buf_printf(&loc, "%s#auth_code=%s", target, code);
    if (rc == 0)
        rc = add_cookie(req, iss, "access_token", &access, iss->access_cfg.expire_minutes * 60);
    if (rc == 0)
        rc = add_cookie(req, iss, M8_ISSUER_REFRESH_COOKIE, &refresh, iss->cookie_max_age);
    if (rc == 0)
        rc = m8_res_body(req, 307, NULL, "", 0);
    if (rc == 0)
        rc = m8_res_header(req, "Location", loc.data);
    if (rc == 0)
        rc = m8_res_header(req, "Cache-Control", "no-store");
    m8_buf_free(&loc);
    out = rc ? m8_req_fail(req, "issuer: sso: the redirect could not be built") : 0;
done:
    wipe_buf(&access);
    wipe_buf(&refresh);
    return out;
}

static int callback(m8_request *req, m8_issuer *iss, m8_oidc_kind kind)
{
    m8_oidc_provider *p = m8_oidc_get(kind);
    if (!p)
        return m8_res_error(req, 404, D_UNAVAILABLE);
    const char *qs = m8_req_query_string(req);
    m8_oidc_callback *cb = m8_req_alloc(req, sizeof *cb);
    if (!cb)
        return m8_req_fail(req, "issuer: out of memory");
    if (m8_oidc_callback_parse(qs ? qs : "", qs ? strlen(qs) : 0, cb) != 0 || !cb->has_state)
        return m8_res_error(req, 400, D_STATE);

    /* 1. the login session, taken once (doc/issuer.md#sso-oidc-and-google) */
    long long now = now_s();
    const char *flow = NULL, *text = NULL;
    int rc =
        m8_oidc_state_take(m8_req_db(req), iss->prefix, cb->state, now, &req->arena, &flow, &text);
    if (rc == M8_ENOTFOUND)
        return m8_res_error(req, 400, D_STATE);
    if (rc != 0)
        return m8_issuer_db_fail(req, rc, "sso: state read");
    const char *why = NULL;
    json_object *sess = m8_json_parse(text, strlen(text), 4, NULL, &why);
    const char *verifier = jget(sess, "pkce_verifier"), *target = jget(sess, "redirect_target"),
               *challenge = jget(sess, "code_challenge"), *nonce = jget(sess, "nonce");
    m8_oidc_ext_tokens *ext = NULL;
    int out;
    if (!sess || strcmp(flow, p->label) != 0 || !verifier || !target || !challenge || !nonce) {
        out = m8_res_error(req, 400, D_STATE);
        goto done;
    }
    /* 2. the code at the token endpoint, the ID token */
    if (cb->has_error || !cb->has_code || !cb->code[0]) {
        m8_log_limited("issuer.sso.callback", M8_LOG_INFO,
                       "issuer: %s callback without a code (error=%.64s)", p->label,
                       cb->has_error ? cb->error : "none");
        out = m8_res_error(req, 400, p->d_exchange_failed);
        goto done;
    }
    m8_oidc_identity id;
    /* only Google's tokens are kept (doc/issuer.md#stored-google-tokens) */
    ext = p->kind == M8_OIDC_GOOGLE ? m8_req_alloc(req, sizeof *ext) : NULL;
    m8_oidc_outcome oc =
        m8_oidc_redeem(p, cb->code, verifier, nonce, now, &req->arena, &id, ext, &why);
    if (oc != M8_OIDC_OK) {
        m8_log_limited("issuer.sso.refused", M8_LOG_WARNING, "issuer: %s sign-in refused: %s",
                       p->label, why ? why : "?");
        out = oc == M8_OIDC_EXCHANGE_FAILED ? m8_res_error(req, 400, p->d_exchange_failed)
              : oc == M8_OIDC_NO_ID_TOKEN   ? m8_res_error(req, 400, D_NO_ID_TOKEN)
              : oc == M8_OIDC_BAD_ID_TOKEN  ? m8_res_error(req, 400, D_BAD_ID_TOKEN)
                                            : m8_res_error(req, 500, D_AUTH_ERROR);
        goto done;
    }
    /* 3. identity binding, just-in-time provisioning */
    m8_issuer_user u;
    const char *refusal = NULL;
    rc = m8_oidc_bind_user(m8_req_db(req), iss->prefix, p, &id, &req->arena, &u, &refusal);
    if (rc == M8_ESTATE) {
        m8_log_limited("issuer.sso.account", M8_LOG_WARNING,
                       "issuer: %s sign-in refused for this account: %s", p->label,
                       refusal ? refusal : "?");
        out = m8_res_error(req, 400, p->d_refused);
        goto done;
    }
    if (rc != 0) {
        out = m8_issuer_db_fail(req, rc, "sso: identity binding");
        goto done;
    }
    out = finish(req, iss, p, &u, target, challenge, ext);
done:
    if (ext)
        sodium_memzero(ext, sizeof *ext);
    json_object_put(sess);
    return out;
}

/* ------------------------------------------------------------ exchange */

static int unprocessable(m8_request *req, const char *field, const char *msg)
{
    json_object *e = json_object_new_object(), *loc = json_object_new_array();
    json_object_array_add(loc, json_object_new_string("body"));
    json_object_array_add(loc, json_object_new_string(field));
    json_object_object_add(e, "type", json_object_new_string("value_error"));
    json_object_object_add(e, "loc", loc);
    json_object_object_add(e, "msg", json_object_new_string(msg));
    json_object *list = json_object_new_array(), *o = json_object_new_object();
    json_object_array_add(list, e);
    json_object_object_add(o, "detail", list);
    return m8_res_json(req, 422, o);
}

/* A chrome-extension origin as fa-auth-m8's CORS regex has it. */
static bool extension_origin(const char *o)
{
    if (strncmp(o, "chrome-extension://", 19) != 0 || strlen(o) != 19 + 32)
        return false;
    for (const char *c = o + 19; *c; c++) {
        if (*c < 'a' || *c > 'z')
            return false;
    }
    return true;
}

static bool origin_allowed(const m8_settings *s, const char *o)
{
    if (extension_origin(o))
        return true;
    for (size_t i = 0; i < s->allowed_origins.n; i++) {
        if (strcmp(s->allowed_origins.items[i], o) == 0)
            return true;
    }
    return false;
}

static int exchange(m8_request *req, m8_issuer *iss, m8_oidc_kind kind)
{
    m8_oidc_provider *p = m8_oidc_get(kind);
    if (!p)
        return m8_res_error(req, 404, D_UNAVAILABLE);
    json_object *b = m8_req_json(req);
    if (!b || !json_object_is_type(b, json_type_object))
        return unprocessable(req, "code", "Input should be a valid dictionary");
    const char *code = jget(b, "code"), *verifier = jget(b, "code_verifier");
    json_object *hint = NULL;
    if (!code)
        return unprocessable(req, "code", "Field required");
    if (!verifier)
        return unprocessable(req, "code_verifier", "Field required");
    if (json_object_object_get_ex(b, "client_hint", &hint) && hint &&
        (!json_object_is_type(hint, json_type_string) || json_object_get_string_len(hint) > 128))
        return unprocessable(req, "client_hint", "String should have at most 128 characters");

    m8_db *db = m8_req_db(req);
    long long now = now_s();
    char ip[M8_ISSUER_CLIENT_IP_MAX];
    size_t iplen = m8_issuer_client_ip(req, iss->s, ip);
    char key[sizeof "exchange:attempts:" + M8_ISSUER_CLIENT_IP_MAX];
    snprintf(key, sizeof key, "exchange:attempts:%.*s", (int)iplen, ip);
    int64_t count = 0;
    int rc = m8_issuer_rate_hit(db, iss->prefix, key, strlen(key), 60, now, &count, NULL);
    if (rc == M8_EAGAIN)
        return m8_res_error(req, 503, "Cache service unavailable.");
    if (rc != 0)
        return m8_issuer_db_fail(req, rc, "sso: exchange limiter");
    if (count > M8_OIDC_EXCHANGE_LIMIT)
        return m8_res_error(req, 429, D_RATE);
    if (!m8_oidc_verifier_ok(verifier, strlen(verifier)))
        return m8_res_error(req, 400, D_VERIFIER);
    char canon[M8_UUID_STR_LEN + 1];
    if (!m8_uuid_canon(code, strlen(code), canon))
        return m8_res_error(req, 400, D_CODE);
    const char *text = NULL;
    rc = m8_oidc_code_take(db, iss->prefix, canon, now, &req->arena, &text);
    if (rc == M8_ENOTFOUND)
        return m8_res_error(req, 400, D_CODE);
    if (rc != 0)
        return m8_issuer_db_fail(req, rc, "sso: auth code read");
    size_t tl = strlen(text);
    const char *why = NULL;
    json_object *o = tl <= M8_OIDC_AUTHCODE_MAX ? m8_json_parse(text, tl, 4, NULL, &why) : NULL;
    sodium_memzero((char *)text, tl);
    const char *stored = jget(o, "code_challenge"), *minted_by = jget(o, "auth_provider");
    const char *origin = m8_req_header(req, "Origin");
    int out;
    /* a code answers only at the exchange of the provider that minted it;
     * taken above either way, so it cannot be tried again at the other
     * (doc/issuer.md#sso-oidc-and-google) */
    if (!o || !stored || !minted_by || strcmp(minted_by, p->label) != 0) {
        if (minted_by && strcmp(minted_by, p->label) != 0)
            m8_log_limited("issuer.sso.crossed", M8_LOG_WARNING,
                           "issuer: an auth code of %.16s presented at the %s exchange: refused",
                           minted_by, p->label);
        out = m8_res_error(req, 400, D_CODE);
    } else if (origin && *origin && !origin_allowed(iss->s, origin)) {
        out = m8_res_error(req, 400, D_ORIGIN);
    } else {
        char got[44];
        m8_oidc_s256(verifier, strlen(verifier), got);
        if (strlen(stored) != 43 || sodium_memcmp(got, stored, 43) != 0) {
            out = m8_res_error(req, 400, D_PKCE);
        } else {
            json_object_object_del(o, "code_challenge");
            m8_res_header(req, "Cache-Control", "no-store");
            out = m8_res_json(req, 200, json_object_get(o));
        }
    }
    json_object_put(o);
    return out;
}

/* ------------------------------------------------------------ the routes */

int m8_issuer_h_google_login_url(m8_request *req, void *data)
{
    return login_url(req, data, M8_OIDC_GOOGLE);
}

int m8_issuer_h_google_callback(m8_request *req, void *data)
{
    return callback(req, data, M8_OIDC_GOOGLE);
}

int m8_issuer_h_google_exchange(m8_request *req, void *data)
{
    return exchange(req, data, M8_OIDC_GOOGLE);
}

int m8_issuer_h_oidc_login_url(m8_request *req, void *data)
{
    return login_url(req, data, M8_OIDC_GENERIC);
}

int m8_issuer_h_oidc_callback(m8_request *req, void *data)
{
    return callback(req, data, M8_OIDC_GENERIC);
}

int m8_issuer_h_oidc_exchange(m8_request *req, void *data)
{
    return exchange(req, data, M8_OIDC_GENERIC);
}
