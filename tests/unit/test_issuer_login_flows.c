/* test_issuer_login_flows.c - the login, refresh and logout routes against
 * one database (test_issuer_login.h): form errors, the one credential
 * answer, both rate windows, the tokens and their cookie, the bcrypt
 * rehash, each refresh answer, logout per TOKEN_MODE, and the 503 answers
 * of each failure mode while the database is unavailable. */

#include "test_issuer_login.h"

#include <json-c/json.h>
#include <time.h>

#define LOGIN "/api/login/access-token"
#define REFRESH "/api/login/refresh-token/"
#define LOGOUT "/api/login/logout/"
#define D_CRED "{\"detail\":\"Invalid credentials or inactive user\"}"
#define D_429 "{\"detail\":\"Too many login attempts. Try again in 15 minutes.\"}"
#define COOKIE_TAIL "; HttpOnly; Max-Age=3600; Path=/; SameSite=strict"
#define Q_ALLOW "SELECT COUNT(*) FROM auth_m8_refresh_allow WHERE jti = ?"
#define Q_BLACK "SELECT COUNT(*) FROM auth_m8_access_blacklist WHERE jti = ?"
#define Q_SESS "SELECT COUNT(*) FROM auth_client_session WHERE jwt_jti = ?"
#define Q_USESS "SELECT COUNT(*) FROM auth_client_session WHERE user_id = ?"
#define Q_EVENTS "SELECT COUNT(*) FROM auth_m8_event_outbox"
#define Q_LAST_EVENT "SELECT payload FROM auth_m8_event_outbox ORDER BY id DESC"

static char g_argon[M8_PW_HASH_MAX];
static const char bcrypt_hash[] = "$2b$12$unQu98iQqaCe7b07ZI1UWueOGyJhquT.f0Y6190.Kv0lPLDDgFgR2";

static const char *kn(const tl_issuer *t)
{
    return m8_db_kind_name(t->kind);
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* The jti and sub of an access token (PyJWT); false when it does not
 * verify. */
static bool access_jti(const tl_resp *r, char *jti, char *sub)
{
    char tok[4096], line[256], type[32];
    if (!tl_access_of(r, tok, sizeof tok) || !tl_pyjwt(tok, ACCESS_SECRET, line, sizeof line))
        return false;
    return sscanf(line, "%31s %63s %63s", type, jti, sub) == 3 && strcmp(type, "access") == 0;
}

/* A user with the argon2id hash of ARGON_PW; logs in and returns the
 * answer. */
static void user_login(tl_issuer *t, const char *email, const char *ip, tl_resp *r,
                       char id[M8_UUID_STR_LEN + 1])
{
    tl_user_add(t, email, g_argon, true, id);
    tl_login(t, email, ARGON_PW, ip, r);
}

static void send_cookie(tl_issuer *t, const char *path, const char *cookie, const char *bearer,
                        tl_resp *r)
{
    icall q = {.path = path, .cookie = cookie, .bearer = bearer, .peer = "192.0.2.50"};
    tl_send(t, &q, r);
}

/* ------------------------------------------------------------ login */

static void login_forms(tl_issuer *t)
{
    const char *k = kn(t);
    tl_resp r;
    icall q = {.path = LOGIN,
               .ctype = "application/json",
               .body = "{\"username\":\"a@b.c\",\"password\":\"x\"}",
               .peer = "192.0.2.1"};
    t->s.password_login_enabled = false;
    tl_send(t, &q, &r);
    is_int(r.status, 404, "%s login: PASSWORD_LOGIN_ENABLED=false: 404 before the form", k);
    is_str(r.body, "{\"detail\":\"feature_unavailable\"}", "%s login: ... feature_unavailable", k);
    t->s.password_login_enabled = true;
    tl_send(t, &q, &r);
    is_int(r.status, 422, "%s login: a JSON body is a 422", k);
    like(r.body, "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\",\"username\"]",
         "%s login: ... with FastAPI's list of missing fields", k);
    q.ctype = "multipart/form-data";
    q.body = "x";
    tl_send(t, &q, &r);
    is_int(r.status, 400, "%s login: multipart without a boundary is a 400", k);
    is_str(r.body, "{\"detail\":\"Missing boundary in multipart.\"}", "%s login: ... its text", k);
    static char big[20000];
    memset(big, 'a', sizeof big - 1);
    memcpy(big, "username=", 9);
    q.ctype = "application/x-www-form-urlencoded";
    q.body = big;
    tl_send(t, &q, &r);
    is_int(r.status, 413, "%s login: a body over 16 KiB is a 413", k);
    is_str(r.body, "{\"detail\":\"Request Entity Too Large\"}", "%s login: ... its text", k);
    q.body = "username=nul%40example.com&password=a%00b";
    tl_send(t, &q, &r);
    is_int(r.status, 422, "%s login: a NUL byte in the password is a 422", k);
    is_str(r.body, "{\"detail\":\"Invalid characters in credentials\"}",
           "%s login: ... with the string detail", k);
}

static void login_credentials(tl_issuer *t)
{
    const char *k = kn(t);
    char id[M8_UUID_STR_LEN + 1], uid[M8_UUID_STR_LEN + 1], jti[64], sub[64];
    tl_user_add(t, "argon@example.com", g_argon, true, id);
    tl_user_add(t, "inactive@example.com", g_argon, false, uid);
    tl_resp r;
    tl_login(t, "nobody@example.com", ARGON_PW, "192.0.2.2", &r);
    is_int(r.status, 400, "%s login: an unknown user is a 400", k);
    is_str(r.body, D_CRED, "%s login: ... Invalid credentials or inactive user", k);
    char longname[1024] = "";
    for (int i = 0; i < 104; i++) /* 312 bytes of U+20AC: the window key passes 320 bytes */
        memcpy(longname + 9 * i, "%E2%82%AC", 10);
    tl_login(t, longname, ARGON_PW, "192.0.2.2", &r);
    is_int(r.status, 400, "%s login: a username of 104 three-byte characters is a plain 400", k);
    tl_login(t, "argon@example.com", "Wrong-Pass-1", "192.0.2.2", &r);
    is_int(r.status, 400, "%s login: a wrong password is a 400", k);
    is_str(r.body, D_CRED, "%s login: ... with the same body", k);
    tl_login(t, "inactive@example.com", ARGON_PW, "192.0.2.2", &r);
    is_int(r.status, 400, "%s login: an inactive user with the right password is a 400", k);
    is_str(r.body, D_CRED, "%s login: ... with the same body", k);

    tl_login(t, "%20Argon@Example.COM", ARGON_PW, "192.0.2.2", &r);
    is_int(r.status, 200, "%s login: the right password logs in (username trimmed, lower-cased)",
           k);
    like(r.body, "{\"access_token\":\"ey", "%s login: ... the body starts with access_token", k);
    ok(ends_with(r.body, "\",\"token_type\":\"bearer\"}"), "%s login: ... and ends with the type",
       k);
    ok(strncmp(r.cookie, "refresh_token=ey", 16) == 0 && ends_with(r.cookie, COOKIE_TAIL),
       "%s login: the refresh cookie: HttpOnly; Max-Age; Path=/; SameSite=strict; no Secure "
       "(%s)",
       k, r.cookie + strcspn(r.cookie, ";"));
    ok(access_jti(&r, jti, sub), "%s login: the access token verifies with PyJWT", k);
    is_str(sub, id, "%s login: ... its sub is the user's id", k);
    char cookie[4096], line[256], want[256];
    tl_cookie_of(&r, cookie, sizeof cookie);
    ok(tl_pyjwt(cookie + 14, REFRESH_SECRET, line, sizeof line),
       "%s login: the refresh token verifies with PyJWT (REFRESH_SECRET_KEY)", k);
    snprintf(want, sizeof want, "refresh %s %s", jti, id);
    is_str(line, want, "%s login: ... type refresh, the SAME jti as the access token", k);
    is_int(iint(t->admin, Q_SESS, jti), 1, "%s login: a session row holds the jti", k);
    is_int(iint(t->admin, Q_ALLOW, jti), 1, "%s login: the refresh allowlist holds the jti", k);
    char hex[65];
    tl_text(t, "SELECT refresh_token_hash FROM auth_client_session WHERE jwt_jti = ?", jti, hex,
            sizeof hex);
    ok(strlen(hex) == 64 && strstr(cookie, hex) == NULL,
       "%s login: the row keeps a SHA-256 hex of the refresh token, not the token", k);
    tl_login(t, "argon@example.com", ARGON_PW, "192.0.2.2", &r);
    tl_uid(t, id, uid);
    is_int(iint(t->admin, Q_USESS, uid), 1, "%s login: a second login keeps one row per user", k);
    char jti2[64];
    access_jti(&r, jti2, sub);
    is_int(iint(t->admin, Q_SESS, jti2), 1, "%s login: ... which now holds the new jti", k);

    tl_user_add(t, "bcrypt@example.com", bcrypt_hash, true, id);
    tl_login(t, "bcrypt@example.com", "correct%20horse%20battery%20staple", "192.0.2.2", &r);
    is_int(r.status, 200, "%s login: a bcrypt $2b$12$ user logs in", k);
    char h[256];
    tl_text(t, "SELECT hashed_password FROM auth_user WHERE email = ?", "bcrypt@example.com", h,
            sizeof h);
    ok(strncmp(h, "$argon2id$", 10) == 0, "%s login: ... and the hash is now argon2id", k);
    tl_login(t, "bcrypt@example.com", "correct%20horse%20battery%20staple", "192.0.2.2", &r);
    is_int(r.status, 200, "%s login: ... which verifies the same password", k);
}

static void login_rate(tl_issuer *t)
{
    const char *k = kn(t);
    char id[M8_UUID_STR_LEN + 1];
    tl_user_add(t, "rate@example.com", g_argon, true, id);
    tl_resp r;
    int fine = 0;
    for (int i = 0; i < 5; i++) {
        tl_login(t, "rate@example.com", "Wrong-Pass-1", "192.0.2.3", &r);
        fine += r.status == 400;
    }
    is_int(fine, 5, "%s rate: five wrong passwords are five 400s", k);
    tl_login(t, "rate@example.com", ARGON_PW, "192.0.2.4", &r);
    is_int(r.status, 429, "%s rate: the 6th attempt is refused even with the right password", k);
    is_str(r.body, D_429, "%s rate: ... with the fixed 429 text", k);
    tl_login(t, "RATE@example.com", ARGON_PW, "192.0.2.4", &r);
    is_int(r.status, 429, "%s rate: the per-email window counts the normalised username", k);

    /* A success clears the per-email window. */
    tl_user_add(t, "clear@example.com", g_argon, true, id);
    for (int i = 0; i < 4; i++)
        tl_login(t, "clear@example.com", "Wrong-Pass-1", "192.0.2.5", &r);
    tl_login(t, "clear@example.com", ARGON_PW, "192.0.2.5", &r);
    is_int(r.status, 200, "%s rate: a 5th attempt with the right password logs in", k);
    fine = 0;
    for (int i = 0; i < 5; i++) {
        tl_login(t, "clear@example.com", "Wrong-Pass-1", "192.0.2.5", &r);
        fine += r.status == 400;
    }
    is_int(fine, 5, "%s rate: ... and cleared the per-email counter (5 more 400s)", k);

    /* Per IP: rotating usernames and a rotating left part of
     * X-Forwarded-For do not help (one trusted proxy). */
    fine = 0;
    for (int i = 0; i < 50; i++) {
        char user[64], xff[64];
        snprintf(user, sizeof user, "ip%d@example.com", i);
        snprintf(xff, sizeof xff, "10.9.%d.1, 198.51.100.77", i);
        char body[256];
        snprintf(body, sizeof body, "username=%s&password=x", user);
        icall q = {.path = LOGIN,
                   .ctype = "application/x-www-form-urlencoded",
                   .body = body,
                   .xff = xff,
                   .peer = "127.0.0.1"};
        tl_send(t, &q, &r);
        fine += r.status == 400;
    }
    is_int(fine, 50, "%s rate: 50 attempts from one client address are answered", k);
    icall q = {.path = LOGIN,
               .ctype = "application/x-www-form-urlencoded",
               .body = "username=argon%40example.com&password=" ARGON_PW,
               .xff = "10.99.99.99, 198.51.100.77",
               .peer = "127.0.0.1"};
    tl_send(t, &q, &r);
    is_int(r.status, 429, "%s rate: the 51st from that address is refused (another username)", k);
    is_str(r.body, D_429, "%s rate: ... with the same text", k);
    q.xff = "198.51.100.78";
    tl_send(t, &q, &r);
    is_int(r.status, 200, "%s rate: another client address still logs in", k);
    t->s.trusted_proxy_count = 0;
    q.xff = "198.51.100.79";
    q.peer = "198.51.100.77";
    tl_send(t, &q, &r);
    is_int(r.status, 429,
           "%s rate: TRUSTED_PROXY_COUNT=0: the header is ignored (the peer's "
           "window)",
           k);
    t->s.trusted_proxy_count = 1;
}

void test_login(tl_issuer *t)
{
    if (!g_argon[0] && m8_pw_hash(t->iss.pw, ARGON_PW, strlen(ARGON_PW), g_argon) != 0)
        diag("argon2id hash failed");
    login_forms(t);
    login_credentials(t);
    login_rate(t);
}

/* ------------------------------------------------------------ refresh */

static void refresh_decode(tl_issuer *t, const char *id)
{
    const char *k = kn(t);
    tl_resp r;
    send_cookie(t, REFRESH, NULL, NULL, &r);
    is_int(r.status, 401, "%s refresh: no cookie is a 401", k);
    is_str(r.body, "{\"detail\":\"Refresh token missing\"}", "%s refresh: ... token missing", k);
    send_cookie(t, REFRESH, "refresh_token=", NULL, &r);
    is_str(r.body, "{\"detail\":\"Refresh token missing\"}", "%s refresh: an empty cookie too", k);
    send_cookie(t, REFRESH, "refresh_token=abc.def.ghi", NULL, &r);
    is_int(r.status, 401, "%s refresh: a garbage token is a 401", k);
    is_str(r.body, "{\"detail\":\"Invalid refresh token\"}", "%s refresh: ... Invalid", k);
    m8_buf b;
    m8_buf_init(&b, 8192);
    m8_buf_puts(&b, "refresh_token=");
    m8_mint_refresh(t->iss.refresh_key, 1, id, "6b1d5ce4-0d7a-4e3c-9d55-0a7c2f0f1a11",
                    (long long)time(NULL) - 7200, &b);
    send_cookie(t, REFRESH, b.data, NULL, &r);
    is_str(r.body, "{\"detail\":\"Refresh token expired\"}", "%s refresh: an expired token", k);
    m8_buf_reset(&b);
    m8_buf_puts(&b, "refresh_token=");
    m8_mint_access_cfg cfg = {t->iss.refresh_key, NULL, 5, NULL, NULL};
    m8_mint_user mu = {id, "x@example.com", NULL, NULL, true, false, false, "user", NULL};
    m8_mint_access(&cfg, &mu, (long long)time(NULL), NULL, NULL, &b);
    send_cookie(t, REFRESH, b.data, NULL, &r);
    is_str(r.body, "{\"detail\":\"Not a refresh token\"}",
           "%s refresh: an access token signed with the refresh key: Not a refresh token", k);
    m8_buf_free(&b);
}

static void refresh_flows(tl_issuer *t)
{
    const char *k = kn(t);
    char id[M8_UUID_STR_LEN + 1], c1[4096], c2[4096], c3[4096], jti1[64], jti2[64], sub[64];
    tl_resp r;
    user_login(t, "refresh@example.com", "192.0.2.10", &r, id);
    refresh_decode(t, id);
    tl_cookie_of(&r, c1, sizeof c1);
    access_jti(&r, jti1, sub);
    send_cookie(t, REFRESH, c1, NULL, &r);
    is_int(r.status, 200, "%s refresh: a good refresh token rotates (200)", k);
    ok(ends_with(r.body, "\",\"token_type\":\"bearer\"}") && ends_with(r.cookie, COOKIE_TAIL),
       "%s refresh: ... a token body and a new refresh cookie", k);
    tl_cookie_of(&r, c2, sizeof c2);
    ok(access_jti(&r, jti2, sub) && strcmp(jti1, jti2) != 0,
       "%s refresh: ... the new access token verifies with a new jti", k);
    is_int(iint(t->admin, Q_ALLOW, jti1), 0, "%s refresh: ... the old jti left the allowlist", k);
    is_int(iint(t->admin, Q_ALLOW, jti2), 1, "%s refresh: ... the new one is in it", k);
    is_int(iint(t->admin, Q_SESS, jti2), 1, "%s refresh: ... and in the session row", k);

    send_cookie(t, REFRESH, c1, NULL, &r);
    is_int(r.status, 401, "%s refresh: replaying the rotated token is a 401", k);
    is_str(r.body, "{\"detail\":\"Token revoked or reused\"}", "%s refresh: ... revoked or reused",
           k);
    ok(strncmp(r.cookie, "refresh_token=\"\"; expires=", 26) == 0 &&
           ends_with(r.cookie, " GMT; Max-Age=0; Path=/; SameSite=lax"),
       "%s refresh: ... and the cookie is deleted (%s)", k, r.cookie);

    /* A second login supersedes the session: c2 is still allowed but its
     * jti has no row any more. */
    tl_login(t, "refresh@example.com", ARGON_PW, "192.0.2.10", &r);
    tl_cookie_of(&r, c3, sizeof c3);
    send_cookie(t, REFRESH, c2, NULL, &r);
    is_int(r.status, 401, "%s refresh: a session superseded by a new login is a 401", k);
    is_str(r.body, "{\"detail\":\"Session revoked or superseded\"}",
           "%s refresh: ... Session revoked or superseded", k);
    ok(strstr(r.cookie, "Max-Age=0") != NULL, "%s refresh: ... and the cookie is deleted", k);

    char uid[M8_UUID_STR_LEN + 1];
    tl_uid(t, id, uid);
    m8_db_param p = M8_DB_TEXT(uid);
    m8_db_exec(t->admin, "UPDATE auth_user SET is_active = FALSE WHERE id = ?", &p, 1, NULL);
    send_cookie(t, REFRESH, c3, NULL, &r);
    is_int(r.status, 401, "%s refresh: an inactive user is a 401", k);
    is_str(r.body, "{\"detail\":\"Invalid user or inactive user\"}",
           "%s refresh: ... Invalid user or inactive user", k);

    /* The per-user window counts successes and failures alike. */
    t->s.refresh_rate_limit_requests = 2;
    user_login(t, "rr@example.com", "192.0.2.11", &r, id);
    tl_cookie_of(&r, c1, sizeof c1);
    send_cookie(t, REFRESH, c1, NULL, &r);
    int first = r.status;
    send_cookie(t, REFRESH, c1, NULL, &r);
    int second = r.status;
    send_cookie(t, REFRESH, c1, NULL, &r);
    ok(first == 200 && second == 401, "%s refresh: a rotation then a replay (%d, %d)", k, first,
       second);
    is_int(r.status, 429, "%s refresh: the 3rd refresh over a limit of 2 is a 429", k);
    is_str(r.body, "{\"detail\":\"Too many refresh attempts. Try again later.\"}",
           "%s refresh: ... its text", k);
    t->s.refresh_rate_limit_requests = 10;
}

static void revoke_user(tl_issuer *t)
{
    const char *k = kn(t);
    char id[M8_UUID_STR_LEN + 1], uid[M8_UUID_STR_LEN + 1], jti[64], sub[64], ev[512], want[512];
    tl_resp r;
    user_login(t, "reuse@example.com", "192.0.2.12", &r, id);
    access_jti(&r, jti, sub);
    int64_t n = -1;
    int rc = m8_issuer_sessions_revoke_user(t->admin, "auth", id, (long long)time(NULL), &n);
    ok(rc == 0 && n == 1, "%s revoke-all: the user's one row is deleted (%d, %lld)", k, rc,
       (long long)n);
    tl_uid(t, id, uid);
    is_int(iint(t->admin, Q_USESS, uid), 0, "%s revoke-all: no row of the user is left", k);
    is_int(iint(t->admin, Q_BLACK, jti), 1, "%s revoke-all: its access jti is blacklisted", k);
    is_int(iint(t->admin, Q_ALLOW, jti), 0, "%s revoke-all: its refresh entry is gone", k);
    tl_text(t, Q_LAST_EVENT, NULL, ev, sizeof ev);
    snprintf(want, sizeof want,
             "{\"event_type\":\"session.revoked\",\"version\":\"v1\",\"user_id\":\"%s\","
             "\"jti\":null}",
             id);
    is_str(ev, want, "%s revoke-all: one v1 user-wide event (jti null) in the outbox", k);
    tl_text(t, "SELECT event_type FROM auth_m8_event_outbox ORDER BY id DESC", NULL, ev, sizeof ev);
    is_str(ev, "session-revoked", "%s revoke-all: ... named session-revoked", k);
}

/* Sessions waiting for a row lock now (the refresh held at step 6). */
static int64_t lock_waiters(tl_issuer *t)
{
    /* PostgreSQL keeps one statistics snapshot per transaction. */
    if (t->kind == M8_DB_POSTGRES)
        iint(t->admin, "SELECT 1 FROM (SELECT pg_stat_clear_snapshot()) AS x", NULL);
    return iint(t->admin,
                t->kind == M8_DB_POSTGRES
                    ? "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    : "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND IN "
                      "('Query', 'Execute') AND INFO LIKE '%FOR UPDATE%' AND ID <> "
                      "CONNECTION_ID()",
                NULL);
}

/* Step 9's branch: the allowlist entry vanishes while a refresh that has
 * passed step 5 waits for the user's row lock (held here); the rotation
 * then fails and every session of the user is revoked. */
static void refresh_race(tl_issuer *t)
{
    const char *k = kn(t);
    char id[M8_UUID_STR_LEN + 1], uid[M8_UUID_STR_LEN + 1], c[4096], jti[64], sub[64], ev[512],
        want[512];
    tl_resp r;
    user_login(t, "race@example.com", "192.0.2.13", &r, id);
    tl_cookie_of(&r, c, sizeof c);
    access_jti(&r, jti, sub);
    tl_uid(t, id, uid);
    m8_db_disconnect(m8_app_db(t->app)); /* the child opens its own connection */
    m8_db_param p = M8_DB_TEXT(uid);
    int rc = m8_db_begin(t->admin);
    if (rc == 0)
        rc = m8_db_exec(t->admin, "SELECT id FROM auth_user WHERE id = ? FOR UPDATE", &p, 1, NULL);
    int fd[2];
    if (rc != 0 || pipe(fd) != 0) {
        ok(0, "%s race: the user's row is locked (%d)", k, rc);
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        send_cookie(t, REFRESH, c, NULL, &r);
        dprintf(fd[1], "%d %s", r.status, r.body);
        _exit(0);
    }
    close(fd[1]);
    int waited = 0;
    while (waited < 1000 && lock_waiters(t) < 1) { /* bounded: 10 s */
        usleep(10000);
        waited++;
    }
    ok(waited < 1000, "%s race: the refresh waits for the user's row lock", k);
    m8_db_param j = M8_DB_TEXT(jti);
    m8_db_exec(t->admin, "DELETE FROM auth_m8_refresh_allow WHERE jti = ?", &j, 1, NULL);
    m8_db_commit(t->admin);
    char out[1024] = "";
    ssize_t n = read(fd[0], out, sizeof out - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    is_str(out,
           "401 {\"detail\":\"Token reuse detected. All sessions revoked. Please log in again.\"}",
           "%s race: the rotation finds the token gone: 401 Token reuse detected", k);
    is_int(iint(t->admin, Q_USESS, uid), 0, "%s race: ... every session row of the user is deleted",
           k);
    is_int(iint(t->admin, Q_BLACK, jti), 1, "%s race: ... the session's access jti is blacklisted",
           k);
    tl_text(t, Q_LAST_EVENT, NULL, ev, sizeof ev);
    snprintf(want, sizeof want,
             "{\"event_type\":\"session.revoked\",\"version\":\"v1\",\"user_id\":\"%s\","
             "\"jti\":null}",
             id);
    is_str(ev, want, "%s race: ... and one v1 user-wide event is in the outbox", k);
}

void test_refresh(tl_issuer *t)
{
    refresh_flows(t);
    revoke_user(t);
    refresh_race(t);
}

/* ------------------------------------------------------------ logout */

void test_logout(tl_issuer *t)
{
    const char *k = kn(t);
    char id[M8_UUID_STR_LEN + 1], cookie[4096], tok[4096], jti[64], sub[64], ev[512], want[512];
    tl_resp r;
    user_login(t, "logout@example.com", "192.0.2.20", &r, id);
    tl_cookie_of(&r, cookie, sizeof cookie);
    tl_access_of(&r, tok, sizeof tok);
    access_jti(&r, jti, sub);
    send_cookie(t, LOGOUT, cookie, NULL, &r);
    is_int(r.status, 401, "%s logout: no bearer is a 401", k);
    is_str(r.body, "{\"detail\":\"Not authenticated\"}", "%s logout: ... Not authenticated", k);
    is_str(r.www, "Bearer", "%s logout: ... with WWW-Authenticate: Bearer", k);
    send_cookie(t, LOGOUT, NULL, tok, &r);
    is_int(r.status, 401, "%s logout: no refresh cookie is a 401", k);
    is_str(r.body, "{\"detail\":\"Refresh token missing\"}", "%s logout: ... token missing", k);

    send_cookie(t, LOGOUT, cookie, tok, &r);
    is_int(r.status, 200, "%s logout: bearer and cookie: 200", k);
    is_str(r.body, "{\"success\":true,\"msg\":\"Logged out successfully\"}",
           "%s logout: ... Logged out successfully", k);
    ok(strstr(r.cookie, "refresh_token=\"\"") && strstr(r.cookie, "Max-Age=0"),
       "%s logout: ... the cookie is deleted", k);
    is_int(iint(t->admin, Q_BLACK, jti), 1, "%s logout: the access jti is blacklisted", k);
    is_int(iint(t->admin, Q_ALLOW, jti), 0, "%s logout: the refresh entry is gone", k);
    is_int(iint(t->admin, Q_SESS, jti), 0, "%s logout: the session row is gone", k);
    tl_text(t, Q_LAST_EVENT, NULL, ev, sizeof ev);
    snprintf(want, sizeof want,
             "{\"event_type\":\"session.revoked\",\"version\":\"v1\",\"user_id\":\"%s\","
             "\"jti\":\"%s\"}",
             id, jti);
    is_str(ev, want, "%s logout: a v1 session-revoked event {user_id, jti} in the outbox", k);

    /* Stateful: a bearer that does not verify fails step 1. */
    tl_login(t, "logout@example.com", ARGON_PW, "192.0.2.20", &r);
    tl_cookie_of(&r, cookie, sizeof cookie);
    send_cookie(t, LOGOUT, cookie, "not.a.token", &r);
    is_int(r.status, 503, "%s logout: a bad bearer fails a step: 503 (fail_closed)", k);
    is_str(r.body,
           "{\"detail\":\"Logout failed: session could not be fully revoked. Please try again.\"}",
           "%s logout: ... Logout failed", k);
    t->s.session_write_failure_mode = M8_FAIL_OPEN;
    send_cookie(t, LOGOUT, cookie, "not.a.token", &r);
    is_int(r.status, 200, "%s logout: ... 200 with SESSION_WRITE_FAILURE_MODE=fail_open", k);
    t->s.session_write_failure_mode = M8_FAIL_CLOSED;
}

/* ------------------------------------------------------------ modes */

void test_modes(tl_issuer *t)
{
    const char *k = kn(t);
    char id[M8_UUID_STR_LEN + 1], uid[M8_UUID_STR_LEN + 1], cookie[4096], c2[4096], tok[4096],
        jti[64], sub[64];
    tl_resp r;
    t->iss.hybrid = true;
    user_login(t, "hybrid@example.com", "192.0.2.30", &r, id);
    tl_cookie_of(&r, cookie, sizeof cookie);
    access_jti(&r, jti, sub);
    is_int(iint(t->admin, Q_ALLOW, jti), 1, "%s hybrid: login registers the refresh token", k);
    send_cookie(t, REFRESH, cookie, NULL, &r);
    is_int(r.status, 200, "%s hybrid: refresh rotates", k);
    tl_cookie_of(&r, cookie, sizeof cookie);
    tl_access_of(&r, tok, sizeof tok);
    access_jti(&r, jti, sub);
    int64_t events = iint(t->admin, Q_EVENTS, NULL);
    send_cookie(t, LOGOUT, cookie, tok, &r);
    is_int(r.status, 200, "%s hybrid: logout 200", k);
    is_int(iint(t->admin, Q_BLACK, jti), 0, "%s hybrid: ... the access jti is NOT blacklisted", k);
    is_int(iint(t->admin, Q_ALLOW, jti), 0, "%s hybrid: ... the refresh entry is gone", k);
    is_int(iint(t->admin, Q_SESS, jti), 0, "%s hybrid: ... the session row is gone", k);
    is_int(iint(t->admin, Q_EVENTS, NULL), events, "%s hybrid: ... and no event", k);
    t->iss.hybrid = false;

    t->iss.stateless = true;
    user_login(t, "stateless@example.com", "192.0.2.31", &r, id);
    is_int(r.status, 200, "%s stateless: login 200", k);
    tl_cookie_of(&r, cookie, sizeof cookie);
    access_jti(&r, jti, sub);
    tl_uid(t, id, uid);
    ok(iint(t->admin, Q_USESS, uid) == 0 && iint(t->admin, Q_ALLOW, jti) == 0,
       "%s stateless: no session row, no allowlist entry", k);
    send_cookie(t, REFRESH, cookie, NULL, &r);
    is_int(r.status, 200, "%s stateless: refresh 200", k);
    tl_cookie_of(&r, c2, sizeof c2);
    tl_access_of(&r, tok, sizeof tok);
    send_cookie(t, REFRESH, cookie, NULL, &r);
    is_int(r.status, 200, "%s stateless: ... the old token refreshes again (no reuse check)", k);
    access_jti(&r, jti, sub);
    events = iint(t->admin, Q_EVENTS, NULL);
    send_cookie(t, LOGOUT, c2, tok, &r);
    is_int(r.status, 200, "%s stateless: logout 200", k);
    ok(strstr(r.cookie, "Max-Age=0") != NULL, "%s stateless: ... the cookie is deleted", k);
    ok(iint(t->admin, Q_EVENTS, NULL) == events && iint(t->admin, Q_BLACK, jti) == 0,
       "%s stateless: ... nothing server-side (no event, no blacklist)", k);
    t->iss.stateless = false;

    /* A row that pairs role and is_superuser inconsistently (possible only
     * without the CHECK, e.g. in a hand-edited database) is never signed. */
    m8_db_exec(t->admin, "ALTER TABLE auth_user DROP CONSTRAINT ck_user_superuser_role_consistency",
               NULL, 0, NULL);
    tl_user_add(t, "odd@example.com", g_argon, true, id);
    tl_uid(t, id, uid);
    m8_db_param op = M8_DB_TEXT(uid);
    m8_db_exec(t->admin, "UPDATE auth_user SET is_superuser = TRUE WHERE id = ?", &op, 1, NULL);
    tl_login(t, "odd@example.com", ARGON_PW, "192.0.2.33", &r);
    is_int(r.status, 500, "%s login: an inconsistent role/is_superuser row: 500", k);
    is_str(r.body, "{\"detail\":\"Could not issue token.\"}",
           "%s login: ... Could not issue token.", k);

    t->iss.cookie_secure = true;
    tl_login(t, "hybrid@example.com", ARGON_PW, "192.0.2.32", &r);
    ok(ends_with(r.cookie, "; SameSite=strict; Secure"),
       "%s cookie: Secure is added when ENVIRONMENT is not local", k);
    t->iss.cookie_secure = false;
}

/* ------------------------------------------------------------ database down */

void test_db_down(m8_db_kind kind, unsigned closed_port)
{
    tl_issuer t;
    const char *k = m8_db_kind_name(kind);
    if (tl_issuer_init(&t, kind, closed_port) != 0) {
        ok(0, "%s down: the issuer boots with an unreachable database", k);
        tl_issuer_free(&t);
        return;
    }
    tl_resp r;
    tl_login(&t, "down@example.com", "Whatever-1", "192.0.2.40", &r);
    is_int(r.status, 503, "%s down: login: 503 (RATE_LIMIT_FAILURE_MODE=fail_open)", k);
    is_str(r.body, "{\"detail\":\"Database temporarily unavailable. Please try again.\"}",
           "%s down: ... Database temporarily unavailable", k);
    t.s.rate_limit_failure_mode = M8_FAIL_CLOSED;
    tl_login(&t, "down@example.com", "Whatever-1", "192.0.2.40", &r);
    is_str(r.body, "{\"detail\":\"Rate limiting service temporarily unavailable\"}",
           "%s down: login with fail_closed: 503 Rate limiting service ...", k);

    const char *id = "0b8a4cde-3f52-4d77-8a1e-5c9d2b7e6f10",
               *jti = "9a3f1e2d-4c5b-4a69-8778-6f5e4d3c2b1a";
    m8_buf c, a;
    m8_buf_init(&c, 8192);
    m8_buf_init(&a, 8192);
    m8_buf_puts(&c, "refresh_token=");
    long long now = (long long)time(NULL);
    m8_mint_refresh(t.iss.refresh_key, 60, id, jti, now, &c);
    m8_mint_user mu = {id, "down@example.com", NULL, NULL, true, false, false, "user", NULL};
    m8_mint_access(&t.iss.access_cfg, &mu, now, jti, NULL, &a);
    send_cookie(&t, REFRESH, c.data, NULL, &r);
    is_str(r.body, "{\"detail\":\"Rate limiting service temporarily unavailable\"}",
           "%s down: refresh with RATE_LIMIT fail_closed: 503 Rate limiting ...", k);
    t.s.rate_limit_failure_mode = M8_FAIL_OPEN;
    send_cookie(&t, REFRESH, c.data, NULL, &r);
    is_int(r.status, 503, "%s down: refresh: 503 (REFRESH_VALIDATION_FAILURE_MODE=fail_closed)", k);
    is_str(r.body, "{\"detail\":\"Authentication service temporarily unavailable\"}",
           "%s down: ... Authentication service temporarily unavailable", k);
    t.s.refresh_validation_failure_mode = M8_FAIL_OPEN;
    send_cookie(&t, REFRESH, c.data, NULL, &r);
    is_str(r.body, "{\"detail\":\"Database temporarily unavailable. Please try again.\"}",
           "%s down: refresh with fail_open: the user reload fails: Database ...", k);

    send_cookie(&t, LOGOUT, c.data, a.data, &r);
    is_int(r.status, 503, "%s down: logout: 503 (SESSION_WRITE_FAILURE_MODE=fail_closed)", k);
    is_str(r.body,
           "{\"detail\":\"Logout failed: session could not be fully revoked. Please try again.\"}",
           "%s down: ... Logout failed", k);
    t.s.session_write_failure_mode = M8_FAIL_OPEN;
    send_cookie(&t, LOGOUT, c.data, a.data, &r);
    is_int(r.status, 200, "%s down: logout with fail_open: 200", k);
    m8_buf_free(&c);
    m8_buf_free(&a);
    tl_issuer_free(&t);
}
