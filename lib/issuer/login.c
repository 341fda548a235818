/* login.c - POST {API_PREFIX}/login/access-token, /login/refresh-token/
 * and /login/logout/ of fcgim8-issuer (service.h,
 * doc/issuer.md#login-refresh-and-logout): the password login with its
 * rate limits and the refresh cookie, the refresh with its processing
 * order, and the logout with its per-mode revocation. */
#include "issuer/service.h"

#include <json-c/json.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "app/stream.h"
#include "auth/auth.h"
#include "auth/credential.h"
#include "auth/jwt.h"
#include "builtin/issuer_metrics.h"
#include "core/log.h"
#include "issuer/browser.h"
#include "issuer/clientip.h"
#include "issuer/form.h"
#include "issuer/form_cc.h"
#include "issuer/service_accounts.h"
#include "issuer/sessions.h"
#include "issuer/store.h"

#define D_INVALID_CREDENTIALS "Invalid credentials or inactive user"
#define D_LOGIN_RATE "Too many login attempts. Try again in 15 minutes."
#define D_REFRESH_MISSING "Refresh token missing"
#define D_REFRESH_RATE "Too many refresh attempts. Try again later."
#define D_REVOKED_OR_REUSED "Token revoked or reused"
#define D_INVALID_USER "Invalid user or inactive user"
#define D_SUPERSEDED "Session revoked or superseded"
#define D_REUSE "Token reuse detected. All sessions revoked. Please log in again."
#define D_LOGOUT_FAILED "Logout failed: session could not be fully revoked. Please try again."
#define D_NOT_AUTHENTICATED "Not authenticated"

/* ------------------------------------------------------------ helpers */

static long long now_s(void)
{
    return (long long)time(NULL);
}

/* The refresh cookie of a login or a refresh (Starlette's attribute
 * order). */
static int set_refresh_cookie(m8_request *req, const m8_issuer *iss, const m8_buf *tok)
{
    m8_buf c;
    m8_buf_init(&c, 16384);
    int rc = m8_buf_printf(&c, "%s=%.*s; HttpOnly; Max-Age=%lld; Path=/; SameSite=strict%s",
                           M8_ISSUER_REFRESH_COOKIE, (int)tok->len, tok->data, iss->cookie_max_age,
                           iss->cookie_secure ? "; Secure" : "");
    if (rc == 0)
        rc = m8_res_header(req, "Set-Cookie", c.data);
    if (c.data)
        sodium_memzero(c.data, c.len);
    m8_buf_free(&c);
    return rc;
}

/* Starlette's delete_cookie: empty value, expires now, Max-Age=0, Path=/,
 * SameSite=lax. */
static int delete_refresh_cookie(m8_request *req)
{
    char date[64], v[160];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(v, sizeof v, "%s=\"\"; expires=%s; Max-Age=0; Path=/; SameSite=lax",
             M8_ISSUER_REFRESH_COOKIE, date);
    return m8_res_header(req, "Set-Cookie", v);
}

static int answer_detail(m8_request *req, int status, const char *detail, bool drop_cookie)
{
    if (drop_cookie)
        delete_refresh_cookie(req);
    return m8_res_error(req, status, detail);
}

/* {"access_token":...,"token_type":"bearer"} and the refresh cookie; a
 * browser session (X-Auth-Session, checked at the start of the handler)
 * gets the access token as a cookie instead (doc/issuer.md#browser-sessions). */
static int answer_tokens(m8_request *req, const m8_issuer *iss, const m8_buf *access,
                         const m8_buf *refresh, const char *jti)
{
    if (set_refresh_cookie(req, iss, refresh) != 0)
        return m8_req_fail(req, "issuer: the refresh cookie could not be set");
    if (m8_req_header(req, M8_ISSUER_SESSION_HEADER))
        return m8_issuer_browser_answer(req, access, jti);
    json_object *o = json_object_new_object();
    if (!o)
        return m8_req_fail(req, "issuer: out of memory");
    json_object_object_add(o, "access_token",
                           json_object_new_string_len(access->data, (int)access->len));
    json_object_object_add(o, "token_type", json_object_new_string("bearer"));
    return m8_res_json(req, 200, o);
}

/* The access and refresh tokens of u, sharing one fresh jti.  0, or the
 * 500 "Could not issue token." already answered (returns 1). */
static int mint_pair(m8_request *req, const m8_issuer *iss, const m8_issuer_user *u, long long now,
                     char jti[M8_UUID_STR_LEN + 1], m8_buf *access, m8_buf *refresh)
{
    m8_mint_user mu;
    m8_issuer_user_mint(u, &mu);
    int rc = m8_mint_access(&iss->access_cfg, &mu, now, NULL, jti, access);
    if (rc == M8_MINT_EPRIVILEGE) {
        char extra[128];
        snprintf(extra, sizeof extra, "\"event\":\"token.sign.blocked\",\"user_id\":\"%s\"", u->id);
        m8_log_fields(M8_LOG_ERROR,
                      "issuer: a user row pairs role and is_superuser "
                      "inconsistently; no token signed",
                      extra);
    } else if (rc != 0) {
        m8_log(M8_LOG_ERROR, "issuer: the access token could not be minted (%d)", rc);
    }
    if (rc == 0) {
        rc = m8_mint_refresh(iss->refresh_key, iss->refresh_minutes, u->id, jti, now, refresh);
        if (rc != 0)
            m8_log(M8_LOG_ERROR, "issuer: the refresh token could not be minted (%d)", rc);
    }
    if (rc == 0)
        return 0;
    m8_res_error(req, 500, M8_MINT_DETAIL_FAILED);
    return 1;
}

static void wipe_buf(m8_buf *b)
{
    if (b->data)
        sodium_memzero(b->data, b->len);
    m8_buf_free(b);
}

/* One hit on a rate window; *over = the limit is passed.  0, or the answer
 * already given (1): 503 when the store is down and RATE_LIMIT_FAILURE_MODE
 * is fail_closed (fail_open: not counted), or a database error. */
static int rate_hit(m8_request *req, const m8_issuer *iss, const char *key, long long window_min,
                    long long limit, long long now, bool *over)
{
    m8_db *db = m8_req_db(req);
    int64_t count = 0;
    int rc =
        m8_issuer_rate_hit(db, iss->prefix, key, strlen(key), window_min * 60, now, &count, NULL);
    if (rc == M8_EAGAIN) {
        m8_issuer_db_down_log(req, "rate limit");
        m8_im_inc3(M8_IM_DEGRADED, M8_IM_CTL_RATE_LIMIT, iss->s->rate_limit_failure_mode,
                   M8_IM_REASON_REDIS_UNAVAILABLE);
        if (iss->s->rate_limit_failure_mode == M8_FAIL_OPEN) {
            m8_log_limited("issuer.rate.skipped", M8_LOG_WARNING,
                           "issuer: rate limit skipped, the database is unavailable (fail_open)");
            return 0;
        }
        m8_res_error(req, 503, M8_ISSUER_DETAIL_RATE_DOWN);
        return 1;
    }
    if (rc != 0) {
        m8_issuer_db_fail(req, rc, "rate limit");
        return 1;
    }
    if (count > limit)
        *over = true;
    return 0;
}

/* ------------------------------------------------------------ login */

/* A window key within the store's bound (M8_ISSUER_RATE_KEY_MAX bytes), cut
 * at a character boundary: a username of long multi-byte characters would
 * pass it (its first 255 characters are kept, up to 1020 bytes); such
 * usernames then share a window, which only makes it stricter. */
static void key_fit(char *key)
{
    size_t n = strlen(key);
    if (n <= M8_ISSUER_RATE_KEY_MAX)
        return;
    n = M8_ISSUER_RATE_KEY_MAX;
    while (n > 0 && ((unsigned char)key[n] & 0xc0) == 0x80)
        n--;
    key[n] = '\0';
}

/* A password that matched a hash in an old format (bcrypt, weaker argon2)
 * is stored again as argon2id; a failure leaves the old hash in place. */
static void rehash(m8_request *req, const m8_issuer *iss, const m8_issuer_user *u,
                   const m8_login_form *f)
{
    if (!m8_pw_needs_rehash(iss->pw, u->hashed_password))
        return;
    char h[M8_PW_HASH_MAX];
    int rc = m8_pw_hash(iss->pw, f->password, f->password_len, h);
    if (rc == 0)
        rc = m8_issuer_user_set_hash(m8_req_db(req), iss->prefix, u->id, h);
    sodium_memzero(h, sizeof h);
    if (rc != 0)
        m8_log(M8_LOG_WARNING, "issuer: the password hash of a user was not upgraded (%d)", rc);
}

/* The session row and the allowlist entry of a new login, in one
 * transaction under the user's row lock. */
static int login_session(m8_request *req, const m8_issuer *iss, const m8_issuer_user *u,
                         const char *jti, const m8_buf *refresh, long long now)
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
        s.auth_generation = locked.auth_generation; /* the stamp of now, under the lock */
        rc = m8_issuer_session_upsert(db, iss->prefix, &s);
    }
    if (rc == 0)
        rc = m8_issuer_allow_put(db, iss->prefix, jti, u->id, s.refresh_expires_at);
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0 && m8_db_in_transaction(db))
        m8_db_rollback(db);
    return rc;
}

static int login(m8_request *req, const m8_issuer *iss, m8_login_form *f, m8_buf *err)
{
    m8_db *db = m8_req_db(req);
    long long now = now_s();

    /* Both windows are counted on every attempt, before the password. */
    char *norm = m8_req_alloc(req, f->username_len + 1);
    if (!norm)
        return m8_req_fail(req, "issuer: out of memory");
    m8_login_username_norm(f->username, f->username_len, norm);
    char ekey[sizeof "login:attempts:" + M8_LOGIN_EMAIL_KEY_BUF];
    char ikey[sizeof "login:ip:" + M8_LOGIN_IP_KEY_BUF];
    char ip[M8_ISSUER_CLIENT_IP_MAX];
    size_t iplen = m8_issuer_client_ip(req, iss->s, ip);
    memcpy(ekey, "login:attempts:", sizeof "login:attempts:");
    m8_login_email_key(f->username, f->username_len, ekey + sizeof "login:attempts:" - 1);
    memcpy(ikey, "login:ip:", sizeof "login:ip:");
    m8_login_ip_key(ip, iplen, ikey + sizeof "login:ip:" - 1);
    key_fit(ekey);
    bool over = false;
    long long window = iss->s->login_rate_limit_window_minutes;
    if (rate_hit(req, iss, ekey, window, iss->s->login_rate_limit_requests, now, &over) ||
        rate_hit(req, iss, ikey, window, iss->s->login_ip_rate_limit_requests, now, &over))
        return 0;
    if (over) {
        m8_im_inc(M8_IM_LOGIN, M8_IM_LOGIN_RATE_LIMITED);
        return m8_res_error(req, 429, D_LOGIN_RATE);
    }
    if (f->bad_chars)
        return m8_res_body(req, 422, "application/json", err->data, err->len);

    m8_issuer_user u;
    int rc = m8_issuer_user_by_email(db, iss->prefix, &req->arena, norm, &u);
    if (rc != 0 && rc != M8_ENOTFOUND)
        return m8_issuer_db_fail(req, rc, "login: user lookup");
    bool found = rc == 0;
    /* a hash: m8_pw_verify lets the other threads take what came with it */
    m8_pw_result pr =
        m8_pw_verify(iss->pw, found ? u.hashed_password : NULL, f->password, f->password_len);
    if (pr == M8_PW_BUSY)
        return m8_res_error(req, 503, M8_ISSUER_DETAIL_AUTH_DOWN);
    if (pr == M8_PW_ERROR)
        return m8_req_fail(req, "issuer: the password check failed");
    if (pr != M8_PW_MATCH || !found || !u.is_active) {
        m8_im_inc(M8_IM_LOGIN, pr == M8_PW_MATCH && found ? M8_IM_LOGIN_INACTIVE_USER
                                                          : M8_IM_LOGIN_WRONG_CREDENTIALS);
        return m8_res_error(req, 400, D_INVALID_CREDENTIALS);
    }
    /* A service account never logs in by password, even one given a
     * password and another email by /users/update
     * (doc/issuer.md#service-accounts-and-client-credentials). */
    bool is_sa = false;
    rc = m8_issuer_sa_exists(db, iss->prefix, u.id, &is_sa);
    if (rc != 0)
        return m8_issuer_db_fail(req, rc, "login: service-account check");
    if (is_sa) {
        m8_im_inc(M8_IM_LOGIN, M8_IM_LOGIN_WRONG_CREDENTIALS);
        return m8_res_error(req, 400, D_INVALID_CREDENTIALS);
    }

    rc = m8_issuer_rate_clear(db, iss->prefix, ekey, strlen(ekey));
    if (rc != 0)
        m8_log(M8_LOG_WARNING, "issuer: the per-email login counter was not cleared (%d)", rc);
    rehash(req, iss, &u, f);

    char jti[M8_UUID_STR_LEN + 1];
    m8_buf access, refresh;
    m8_buf_init(&access, M8_MINT_MAX_TOKEN + 1);
    m8_buf_init(&refresh, M8_MINT_MAX_TOKEN + 1);
    int out = 0;
    if (mint_pair(req, iss, &u, now, jti, &access, &refresh) == 0) {
        rc = iss->stateless ? 0 : login_session(req, iss, &u, jti, &refresh, now);
        out = rc ? m8_issuer_db_fail(req, rc, "login: session write")
                 : answer_tokens(req, iss, &access, &refresh, jti);
        if (rc == 0 && out == 0)
            m8_im_inc(M8_IM_LOGIN, M8_IM_LOGIN_SUCCESS);
    }
    wipe_buf(&access);
    wipe_buf(&refresh);
    return out;
}

int m8_issuer_h_login(m8_request *req, void *data)
{
    const m8_issuer *iss = data;
    { /* the client-credentials grant, or another OAuth grant (form_cc.h) */
        size_t cl = 0;
        const char *cb = m8_req_body(req, &cl);
        m8_grant_kind gk =
            m8_cc_grant_kind(&req->arena, m8_req_header(req, "Content-Type"), cb ? cb : "",
                             cb ? cl : 0, 0, m8_req_header(req, "Authorization"));
        if (gk != M8_GRANT_PASSWORD)
            return m8_issuer_grant_client_credentials(req, iss, (int)gk);
    }
    if (!iss->s->password_login_enabled)
        return m8_res_error(req, 404, "feature_unavailable");
    if (m8_issuer_browser_wanted(req) < 0)
        return 0;
    size_t len = 0;
    const char *body = m8_req_body(req, &len);
    m8_login_form f;
    memset(&f, 0, sizeof f);
    m8_buf err;
    m8_buf_init(&err, 65536);
    int st = m8_login_form_parse(&req->arena, m8_req_header(req, "Content-Type"), body ? body : "",
                                 body ? len : 0, 0, &f, &err);
    int out;
    if (st < 0)
        out = m8_req_fail(req, "issuer: the login form could not be read (%d)", st);
    else if (st > 0 && !f.bad_chars)
        out = m8_res_body(req, st, "application/json", err.data, err.len);
    else
        out = login(req, iss, &f, &err);
    if (st == 0 || f.bad_chars)
        m8_login_form_wipe(&f);
    m8_buf_free(&err);
    return out;
}

/* ------------------------------------------------------------ refresh */

/* The refresh cookie: 1 with (tok, len), 0 when absent or empty, M8_EPARSE
 * when it is sent twice with different values. */
static int refresh_cookie(const m8_request *req, const char **tok, size_t *len)
{
    int rc = m8_cookie_get(req, M8_ISSUER_REFRESH_COOKIE, tok, len);
    return rc == 1 && *len == 0 ? 0 : rc;
}

/* Steps 1-3: the cookie's token checked; 0 with c filled, or the 401
 * answered (1). */
static int refresh_decode(m8_request *req, const m8_issuer *iss, long long now,
                          m8_refresh_claims *c)
{
    const char *tok = NULL;
    size_t len = 0;
    int rc = refresh_cookie(req, &tok, &len);
    if (rc == 0) {
        m8_res_error(req, 401, D_REFRESH_MISSING);
        return 1;
    }
    m8_refresh_verdict v =
        rc == 1 ? m8_refresh_verify(tok, len, iss->refresh_key, iss->refresh_key_old, now, c)
                : M8_REFRESH_INVALID;
    if (v != M8_REFRESH_OK) {
        m8_im_inc(M8_IM_REFRESH, M8_IM_REFRESH_INVALID);
        m8_res_error(req, 401, m8_refresh_detail(v));
        return 1;
    }
    if (c->old_key)
        m8_log_limited("issuer.refresh.old_key", M8_LOG_WARNING,
                       "issuer: a refresh token signed with REFRESH_SECRET_KEY_OLD was accepted");
    return 0;
}

/* Step 9's failure: a concurrent refresh won, or the token was reused
 * between steps 5 and 9. */
static int refresh_reused(m8_request *req, const m8_issuer *iss, const char *user_id, long long now)
{
    char extra[128];
    snprintf(extra, sizeof extra, "\"event\":\"token.refresh.reuse\",\"user_id\":\"%s\"", user_id);
    m8_log_fields(M8_LOG_CRITICAL,
                  "issuer: refresh token reuse detected; revoking every session of the user",
                  extra);
    m8_im_inc(M8_IM_INTEGRITY, M8_IM_TRIGGER_REUSE_DETECTED);
    m8_im_inc(M8_IM_REFRESH, M8_IM_REFRESH_REVOKED);
    int rc = m8_issuer_sessions_revoke_user(m8_req_db(req), iss->prefix, user_id, now, NULL);
    if (rc != 0)
        m8_log(M8_LOG_ERROR, "issuer: the sessions of a user were not all revoked (%d)", rc);
    return answer_detail(req, 401, D_REUSE, true);
}

int m8_issuer_h_refresh(m8_request *req, void *data)
{
    const m8_issuer *iss = data;
    const m8_settings *s = iss->s;
    m8_db *db = m8_req_db(req);
    long long now = now_s();
    m8_refresh_claims c;
    if (m8_issuer_browser_wanted(req) < 0)
        return 0;
    if (refresh_decode(req, iss, now, &c))
        return 0;

    char key[sizeof "refresh:attempts:" + M8_UUID_STR_LEN];
    snprintf(key, sizeof key, "refresh:attempts:%s", c.sub);
    bool over = false;
    if (rate_hit(req, iss, key, s->refresh_rate_limit_window_minutes,
                 s->refresh_rate_limit_requests, now, &over))
        return 0;
    if (over) {
        m8_im_inc(M8_IM_REFRESH, M8_IM_REFRESH_RATE_LIMITED);
        return m8_res_error(req, 429, D_REFRESH_RATE);
    }

    bool stateful_store = !iss->stateless;
    if (stateful_store) {
        bool present = false;
        int rc = m8_issuer_allow_has(db, iss->prefix, c.jti, now, &present);
        if (rc == M8_EAGAIN)
            m8_im_inc3(M8_IM_DEGRADED, M8_IM_CTL_REFRESH_VALIDATION,
                       s->refresh_validation_failure_mode, M8_IM_REASON_REDIS_UNAVAILABLE);
        if (rc == M8_EAGAIN && s->refresh_validation_failure_mode == M8_FAIL_OPEN) {
            m8_log_limited("issuer.refresh.allow_skipped", M8_LOG_WARNING,
                           "issuer: refresh allowlist not checked, the database is unavailable "
                           "(fail_open)");
            present = true;
        } else if (rc == M8_EAGAIN) {
            return m8_res_error(req, 503, M8_ISSUER_DETAIL_AUTH_DOWN);
        } else if (rc != 0) {
            return m8_issuer_db_fail(req, rc, "refresh: allowlist");
        }
        if (!present) {
            m8_im_inc(M8_IM_REFRESH, M8_IM_REFRESH_REVOKED);
            return answer_detail(req, 401, D_REVOKED_OR_REUSED, true);
        }
    }

    /* Steps 6-10 in one transaction: the user's row lock orders concurrent
     * refreshes of one user. */
    int rc = stateful_store ? m8_db_begin(db) : 0;
    m8_issuer_user u;
    if (rc == 0)
        rc = m8_issuer_user_by_id(db, iss->prefix, &req->arena, c.sub, stateful_store, &u);
    bool bad_user = rc == M8_ENOTFOUND || (rc == 0 && !u.is_active), current = true;
    if (rc == 0 && !bad_user && stateful_store)
        rc = m8_issuer_session_current(db, iss->prefix, u.id, c.jti, u.auth_generation, &current);
    if (rc != 0 || bad_user || !current) {
        if (m8_db_in_transaction(db))
            m8_db_rollback(db);
        if (bad_user) {
            m8_im_inc(M8_IM_REFRESH, M8_IM_REFRESH_INVALID);
            return answer_detail(req, 401, D_INVALID_USER, false);
        }
        if (rc != 0)
            return m8_issuer_db_fail(req, rc, "refresh: user and session");
        m8_im_inc(M8_IM_REFRESH, M8_IM_REFRESH_REVOKED);
        return answer_detail(req, 401, D_SUPERSEDED, true);
    }

    char jti[M8_UUID_STR_LEN + 1];
    m8_buf access, refresh;
    m8_buf_init(&access, M8_MINT_MAX_TOKEN + 1);
    m8_buf_init(&refresh, M8_MINT_MAX_TOKEN + 1);
    int out = 0;
    if (mint_pair(req, iss, &u, now, jti, &access, &refresh) != 0)
        goto done;
    if (stateful_store) {
        int64_t rexp = now + iss->refresh_minutes * 60;
        rc = m8_issuer_allow_rotate(db, iss->prefix, c.jti, jti, u.id, rexp, now);
        if (rc == M8_ENOTFOUND) {
            m8_db_rollback(db);
            out = refresh_reused(req, iss, u.id, now);
            goto done;
        }
        m8_issuer_session sess = {u.id,        u.provider,
                                  jti,         refresh.data,
                                  refresh.len, now + iss->access_cfg.expire_minutes * 60,
                                  rexp,        u.auth_generation};
        if (rc == 0)
            rc = m8_issuer_session_upsert(db, iss->prefix, &sess);
        if (rc == 0)
            rc = m8_db_commit(db);
        if (rc != 0) {
            out = m8_issuer_db_fail(req, rc, "refresh: rotation");
            goto done;
        }
    }
    out = answer_tokens(req, iss, &access, &refresh, jti);
    if (out == 0)
        m8_im_inc(M8_IM_REFRESH, M8_IM_REFRESH_SUCCESS);
done:
    if (m8_db_in_transaction(db))
        m8_db_rollback(db);
    wipe_buf(&access);
    wipe_buf(&refresh);
    return out;
}

/* ------------------------------------------------------------ logout */

/* Step 1 (stateful): the access token verified by the app's verifier, its
 * session row deleted, then its jti blacklisted until exp and the v1
 * event appended (both best-effort).  *jti receives the token's jti.
 * false when the step failed. */
static bool logout_access(m8_request *req, const m8_issuer *iss, const char *tok, size_t len,
                          char *jti, size_t jtimax)
{
    m8_app *app = m8_req_app(req);
    m8_principal p;
    memset(&p, 0, sizeof p);
    long long now = now_s();
    int v = app && app->auth ? m8_auth_verify(app->auth, tok, len, m8_now_wall(), &p, NULL) : -1;
    if (v != M8_JWT_OK || !p.jti || !p.id || strlen(p.jti) >= jtimax) {
        m8_principal_clear(&p);
        return false;
    }
    snprintf(jti, jtimax, "%s", p.jti);
    long long exp = p.exp ? p.exp : now + iss->access_cfg.expire_minutes * 60;
    m8_db *db = m8_req_db(req);
    int rc = m8_issuer_session_delete_jti(db, iss->prefix, p.jti, NULL);
    if (rc == 0 && exp > now) {
        int b = m8_issuer_blacklist_put(db, iss->prefix, p.jti, exp);
        if (b != 0) {
            m8_im_inc(M8_IM_REVOCATION_FAILURE, M8_IM_OP_ACCESS_BLACKLIST);
            m8_log(M8_LOG_WARNING, "issuer: logout: the access jti was not blacklisted (%d)", b);
        }
    }
    if (rc == 0) {
        int e = m8_issuer_session_event_v1(db, iss->prefix, p.id, p.jti, m8_db_now());
        if (e != 0)
            m8_log(M8_LOG_WARNING, "issuer: logout: the session-revoked event was lost (%d)", e);
    }
    m8_principal_clear(&p);
    return rc == 0;
}

int m8_issuer_h_logout(m8_request *req, void *data)
{
    const m8_issuer *iss = data;
    const char *tok = NULL, *rtok = NULL;
    size_t len = 0, rlen = 0;
    if (!m8_auth_bearer(req, &tok, &len)) {
        /* a browser session: the access cookie, with its CSRF token */
        int b = m8_issuer_browser_logout_token(req, &tok, &len);
        if (b < 0)
            return 0;
        if (b == 0) {
            m8_res_header(req, "WWW-Authenticate", "Bearer");
            return m8_res_error(req, 401, D_NOT_AUTHENTICATED);
        }
    }
    int crc = refresh_cookie(req, &rtok, &rlen);
    if (crc == 0)
        return m8_res_error(req, 401, D_REFRESH_MISSING);
    if (iss->stateless)
        goto ok;

    bool failed = false;
    char jti[M8_REFRESH_MAX_JTI + 1] = "";
    m8_db *db = m8_req_db(req);
    long long now = now_s();
    if (!iss->hybrid && !logout_access(req, iss, tok, len, jti, sizeof jti)) {
        failed = true;
        m8_im_inc(M8_IM_REVOCATION_FAILURE, M8_IM_OP_ACCESS_BLACKLIST);
    }

    /* Step 2: the refresh token's allowlist entry. */
    m8_refresh_claims c;
    m8_refresh_verdict v =
        crc == 1 ? m8_refresh_verify(rtok, rlen, iss->refresh_key, iss->refresh_key_old, now, &c)
                 : M8_REFRESH_INVALID;
    if (v != M8_REFRESH_OK) {
        failed = true;
        m8_im_inc(M8_IM_REVOCATION_FAILURE, M8_IM_OP_REFRESH_ALLOWLIST);
    } else {
        int rc = m8_issuer_allow_remove(db, iss->prefix, c.jti, NULL);
        if (rc == M8_EAGAIN)
            m8_im_inc3(M8_IM_DEGRADED, M8_IM_CTL_SESSION_WRITE, iss->s->session_write_failure_mode,
                       M8_IM_REASON_REDIS_UNAVAILABLE);
        if (rc == M8_EAGAIN && iss->s->session_write_failure_mode == M8_FAIL_OPEN) {
            m8_log(M8_LOG_WARNING, "issuer: logout: refresh allowlist entry kept, the database "
                                   "is unavailable (fail_open)");
        } else if (rc != 0) {
            failed = true;
            m8_im_inc(M8_IM_REVOCATION_FAILURE, M8_IM_OP_REFRESH_ALLOWLIST);
        }
        if (!jti[0])
            snprintf(jti, sizeof jti, "%s", c.jti);
    }

    /* Step 3: the session row of the jti found (no event here). */
    if (jti[0] && m8_issuer_session_delete_jti(db, iss->prefix, jti, NULL) != 0) {
        failed = true;
        m8_im_inc(M8_IM_REVOCATION_FAILURE, M8_IM_OP_DB_SESSION);
    }
    if (failed && iss->s->session_write_failure_mode == M8_FAIL_CLOSED) {
        m8_im_inc3(M8_IM_DEGRADED, M8_IM_CTL_SESSION_WRITE, M8_FAIL_CLOSED,
                   M8_IM_REASON_REVOCATION_FAILED);
        return m8_res_error(req, 503, D_LOGOUT_FAILED);
    }
ok:
    m8_im_inc(M8_IM_LOGOUT, 0);
    delete_refresh_cookie(req);
    m8_issuer_browser_clear(req);
    json_object *o = json_object_new_object();
    if (!o)
        return m8_req_fail(req, "issuer: out of memory");
    json_object_object_add(o, "success", json_object_new_boolean(1));
    json_object_object_add(o, "msg", json_object_new_string("Logged out successfully"));
    return m8_res_json(req, 200, o);
}
