/* service_accounts_grant.c - the OAuth2 client-credentials grant on
 * POST {API_PREFIX}/login/access-token (service_accounts.h, RFC 6749 section
 * 4.4; doc/issuer.md#service-accounts-and-client-credentials): the client
 * authenticated by the form or by HTTP Basic, failures counted per client
 * id and per address in the login's windows, and a short-lived access
 * token marked as a service account's; no refresh token.  Errors are the
 * JSON of RFC 6749 section 5.2. */
#include "issuer/service_accounts.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "app/app.h"
#include "core/log.h"
#include "issuer/clientip.h"
#include "issuer/form_cc.h"
#include "issuer/store.h"

#define REALM "Basic realm=\"fcgim8-issuer\""
#define D_BAD_CLIENT "Client authentication failed"
#define D_TWO_METHODS "The client authenticated with more than one method"
#define D_BAD_REQUEST "The request is malformed"
#define D_DEACTIVATED "The service account is deactivated"
#define D_ROLE "The service account's role cannot be granted to a client"
#define D_GRANT "Only the password and client_credentials grants are served here"
#define D_SCOPE "The scope is malformed or not granted to this client"
#define D_RATE "Too many failed client authentications. Try again later."

/* {"error","error_description"} with status; WWW-Authenticate when given. */
static int oauth_error(m8_request *req, int status, const char *code, const char *text,
                       const char *www)
{
    json_object *o = json_object_new_object();
    if (!o)
        return m8_req_fail(req, "issuer: out of memory");
    json_object_object_add(o, "error", json_object_new_string(code));
    json_object_object_add(o, "error_description", json_object_new_string(text));
    if (www)
        m8_res_header(req, "WWW-Authenticate", www);
    m8_res_header(req, "Cache-Control", "no-store");
    m8_res_header(req, "Pragma", "no-cache");
    return m8_res_json(req, status, o);
}

/* ------------------------------------------------------------ rate windows */

/* The client's window is keyed by the client id and the address together:
 * client ids are not secret (every token carries one), so a window of the
 * id alone would let anyone lock a machine out from anywhere with a few
 * wrong secrets.  Guessing a 256-bit secret needs no per-id throttle
 * across addresses (doc/issuer.md#service-accounts-and-client-credentials). */
typedef struct windows {
    char client[sizeof "cc:client:" + M8_UUID_STR_LEN + 1 +
                M8_LOGIN_IP_KEY_BUF]; /* "" when the id is no UUID */
    char ip[sizeof "cc:ip:" + M8_LOGIN_IP_KEY_BUF];
} windows;

/* Whether key's window is full (hits >= limit and not ended); *end its end. */
static int window_full(m8_db *db, const char *prefix, const char *key, long long limit, int64_t now,
                       bool *full, int64_t *end)
{
    m8_db_param p = M8_DB_TEXT(key);
    m8_db_result *r = NULL;
    /* read only: a hit is counted for a failure alone (store.c owns the table) */
    int rc = m8_issuer_exec(
        db, prefix, "SELECT hits, window_end FROM {p}_m8_rate_window WHERE rkey = ?", &p, 1, &r);
    int64_t hits = 0, e = 0;
    if (rc == 0 && m8_db_nrows(r) == 1 && m8_db_get_int(r, 0, 0, &hits) == 0 &&
        m8_db_get_int(r, 0, 1, &e) == 0 && e > now && hits >= limit) {
        *full = true;
        if (e > *end)
            *end = e;
    }
    m8_db_result_free(r);
    return rc;
}

/* Before the check: 0 to go on, or the answer given (1): 429 when a window
 * is full, 503 when the store is down and RATE_LIMIT_FAILURE_MODE is
 * fail_closed. */
static int windows_check(m8_request *req, const m8_issuer *iss, const windows *w, int64_t now)
{
    const m8_settings *s = iss->s;
    bool full = false;
    int64_t end = 0;
    m8_db *db = m8_req_db(req);
    int rc = w->client[0] ? window_full(db, iss->prefix, w->client, s->login_rate_limit_requests,
                                        now, &full, &end)
                          : 0;
    if (rc == 0)
        rc = window_full(db, iss->prefix, w->ip, s->login_ip_rate_limit_requests, now, &full, &end);
    if (rc != 0) {
        if (rc == M8_EAGAIN && s->rate_limit_failure_mode == M8_FAIL_OPEN)
            return 0;
        oauth_error(req, 503, "temporarily_unavailable", M8_ISSUER_DETAIL_RATE_DOWN, NULL);
        return 1;
    }
    if (!full)
        return 0;
    char ra[24];
    snprintf(ra, sizeof ra, "%lld", (long long)(end > now ? end - now : 1));
    m8_res_header(req, "Retry-After", ra);
    oauth_error(req, 429, "slow_down", D_RATE, NULL);
    return 1;
}

/* A failed authentication counts in both windows (best effort). */
static void windows_fail(m8_request *req, const m8_issuer *iss, const windows *w, int64_t now)
{
    int64_t count = 0, win = iss->s->login_rate_limit_window_minutes * 60;
    m8_db *db = m8_req_db(req);
    int rc = w->client[0] ? m8_issuer_rate_hit(db, iss->prefix, w->client, strlen(w->client), win,
                                               now, &count, NULL)
                          : 0;
    if (rc == 0)
        rc = m8_issuer_rate_hit(db, iss->prefix, w->ip, strlen(w->ip), win, now, &count, NULL);
    if (rc != 0)
        m8_log_limited("issuer.cc.rate", M8_LOG_WARNING,
                       "issuer: a failed client authentication was not counted (%d)", rc);
}

/* ------------------------------------------------------------ scopes */

/* Whether token t[0..n) is one of the space-separated list. */
static bool scope_in(const char *list, const char *t, size_t n)
{
    for (const char *p = list; *p;) {
        size_t k = strcspn(p, " ");
        if (k == n && memcmp(p, t, n) == 0)
            return true;
        p += k;
        p += *p == ' ';
    }
    return false;
}

/* The scope granted: the requested one when every token of it is the
 * account's, else NULL; the account's whole list when none is requested
 * (RFC 6749 section 3.3). */
static const char *scope_grant(const char *requested, size_t n, const char *allowed)
{
    if (n == 0)
        return allowed;
    for (size_t i = 0; i < n;) {
        size_t k = i;
        while (k < n && requested[k] != ' ')
            k++;
        if (!scope_in(allowed, requested + i, k - i))
            return NULL;
        i = k + 1;
    }
    return requested;
}

/* ------------------------------------------------------------ grant */

static int answer_token(m8_request *req, const m8_issuer *iss, const m8_issuer_user *u,
                        const char *scope)
{
    m8_mint_user mu;
    m8_issuer_user_mint(u, &mu);
    m8_mint_claim extra[3] = {
        {M8_SA_CLAIM_PRINCIPAL, M8_SA_PRINCIPAL_VALUE}, {"client_id", u->id}, {"scope", scope}};
    size_t nextra = scope && *scope ? 3 : 2;
    m8_buf tok;
    m8_buf_init(&tok, M8_MINT_MAX_TOKEN + 1);
    char jti[M8_UUID_STR_LEN + 1];
    int rc = m8_mint_access_extra(&iss->access_cfg, &mu, extra, nextra, (long long)time(NULL), NULL,
                                  jti, &tok);
    if (rc != 0) {
        m8_log(M8_LOG_ERROR, "issuer: a service account's token could not be minted (%d)", rc);
        m8_buf_free(&tok);
        return m8_res_error(req, 500, M8_MINT_DETAIL_FAILED);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "access_token", json_object_new_string_len(tok.data, (int)tok.len));
    json_object_object_add(o, "token_type", json_object_new_string("bearer"));
    json_object_object_add(o, "expires_in",
                           json_object_new_int64(iss->access_cfg.expire_minutes * 60));
    if (scope && *scope)
        json_object_object_add(o, "scope", json_object_new_string(scope));
    sodium_memzero(tok.data, tok.len);
    m8_buf_free(&tok);
    m8_res_header(req, "Cache-Control", "no-store");
    m8_res_header(req, "Pragma", "no-cache");
    m8_log(M8_LOG_INFO, "event=service_account.token id=%s jti=%s", u->id, jti);
    return m8_res_json(req, 200, o);
}

/* After the parse: the client checked, then the token.  Answers. */
static int grant(m8_request *req, const m8_issuer *iss, const m8_cc_request *cr)
{
    m8_db *db = m8_req_db(req);
    int64_t now = (int64_t)time(NULL);
    windows w;
    char ip[M8_ISSUER_CLIENT_IP_MAX], ipkey[M8_LOGIN_IP_KEY_BUF];
    m8_login_ip_key(ip, m8_issuer_client_ip(req, iss->s, ip), ipkey);
    snprintf(w.ip, sizeof w.ip, "cc:ip:%s", ipkey);
    char id[M8_UUID_STR_LEN + 1];
    bool uuid = m8_uuid_canon(cr->client_id, cr->client_id_len, id);
    w.client[0] = '\0';
    if (uuid)
        snprintf(w.client, sizeof w.client, "cc:client:%s@%s", id, ipkey);
    if (windows_check(req, iss, &w, now))
        return 0;

    m8_issuer_user u;
    m8_issuer_sa sa;
    int rc =
        uuid ? m8_issuer_user_by_id(db, iss->prefix, &req->arena, id, false, &u) : M8_ENOTFOUND;
    if (rc == 0)
        rc = m8_issuer_sa_read(db, iss->prefix, &req->arena, id, &sa);
    if (rc != 0 && rc != M8_ENOTFOUND) {
        if (rc == M8_EAGAIN)
            return oauth_error(req, 503, "temporarily_unavailable", M8_ISSUER_DETAIL_DB_DOWN, NULL);
        m8_req_fail(req, "issuer: client credentials: database error %d", rc);
        return oauth_error(req, 500, "server_error", "Internal Server Error", NULL);
    }
    /* the same work whether the client exists or not */
    char h[M8_SA_HASH_LEN + 1];
    m8_issuer_sa_hash(cr->client_secret, cr->client_secret_len, h);
    bool match = rc == 0 && sodium_memcmp(h, sa.secret_hash, M8_SA_HASH_LEN) == 0;
    sodium_memzero(h, sizeof h);
    if (!match) {
        windows_fail(req, iss, &w, now);
        return oauth_error(req, 401, "invalid_client", D_BAD_CLIENT, REALM);
    }
    if (!u.is_active || sa.deactivated_us)
        return oauth_error(req, 400, "invalid_grant", D_DEACTIVATED, NULL);
    /* never a superuser's token for a machine, even when /users/update gave
     * the row that role */
    if (u.is_superuser || strcmp(u.role, "superadmin") == 0)
        return oauth_error(req, 400, "invalid_grant", D_ROLE, NULL);
    const char *scope = scope_grant(cr->scope, cr->scope_len, sa.scopes);
    if (!scope)
        return oauth_error(req, 400, "invalid_scope", D_SCOPE, NULL);
    if (w.client[0] && m8_issuer_rate_clear(db, iss->prefix, w.client, strlen(w.client)) != 0)
        m8_log(M8_LOG_WARNING, "issuer: the per-client failure counter was not cleared");
    return answer_token(req, iss, &u, scope);
}

int m8_issuer_grant_client_credentials(m8_request *req, const m8_issuer *iss, int kind)
{
    if (kind != M8_GRANT_CLIENT_CREDENTIALS)
        return oauth_error(req, 400, "unsupported_grant_type", D_GRANT, NULL);
    size_t len = 0;
    const char *body = m8_req_body(req, &len);
    const char *authz = m8_req_header(req, "Authorization");
    m8_cc_request cr;
    int rc = m8_cc_parse(&req->arena, m8_req_header(req, "Content-Type"), body ? body : "",
                         body ? len : 0, 0, authz, &cr);
    int out;
    switch (rc) {
    case M8_CC_OK: out = grant(req, iss, &cr); break;
    case M8_CC_INVALID_CLIENT:
        /* a Basic attempt, or none at all: say which scheme to use */
        out = oauth_error(req, 401, "invalid_client", D_BAD_CLIENT, REALM);
        break;
    case M8_CC_TOO_LARGE:
        out = oauth_error(req, 413, "invalid_request", "Request Entity Too Large", NULL);
        break;
    case M8_CC_INVALID_REQUEST: {
        bool two = authz && strncasecmp(authz, "Basic", 5) == 0;
        out = oauth_error(req, 400, "invalid_request", two ? D_TWO_METHODS : D_BAD_REQUEST, NULL);
        break;
    }
    case M8_CC_INVALID_SCOPE: out = oauth_error(req, 400, "invalid_scope", D_SCOPE, NULL); break;
    case M8_CC_UNSUPPORTED_GRANT:
        out = oauth_error(req, 400, "unsupported_grant_type", D_GRANT, NULL);
        break;
    default:
        out = m8_req_fail(req, "issuer: the client-credentials form could not be read (%d)", rc);
        break;
    }
    m8_cc_wipe(&cr);
    return out;
}
