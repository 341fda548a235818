/* test_issuer_login.c - the login, refresh and logout routes of
 * fcgim8-issuer (lib/issuer/login.c, sessions.c, clientip.c;
 * doc/issuer.md#login-refresh-and-logout), driven in process through an
 * m8_app against a real PostgreSQL and a real MariaDB started on loopback
 * by issuer_db.c (the helpers of tests/integration/lib.sh in a bash child
 * that stops them when this program closes its stdin), ports 19860-19899.
 * A server that is not installed or did not start is skipped with the
 * reason.
 *
 * The issuer is assembled here (HS256 access key, the routes in a test
 * table), so that the routes are tested on their own.  This file holds
 * main(), the issuer's assembly, the request harness and the client-IP rule; the
 * route tests are in test_issuer_login_flows.c. */

#define M8T_MAIN 1 /* this file holds main() (tap.h) */
#include "test_issuer_login.h"

#include <signal.h>

#include "issuer_db.h"
#include "testenv.h"

#define PASSWORD "Iss-Login-Db-Pa55!"
#define ISS_DB "iss_login"
#define ISS_USER "iss_login_user"

/* closed_port: test_db_down() boots an issuer on a port nothing listens on. */
static const idb_servers g_srv = {
    "test_issuer_login", 19860, 19899, ISS_DB, ISS_USER, PASSWORD, true};

/* ------------------------------------------------------------ the issuer */

static m8_route g_routes[] = {
    {"POST", "/login/access-token", M8_PUBLIC, m8_issuer_h_login, NULL, NULL, NULL, 0},
    {"POST", "/login/refresh-token/", M8_PUBLIC, m8_issuer_h_refresh, NULL, NULL, NULL, 0},
    {"POST", "/login/logout/", M8_PUBLIC, m8_issuer_h_logout, NULL, NULL, NULL, 0},
};

int tl_issuer_init(tl_issuer *t, m8_db_kind kind, unsigned port)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
    char **base = m8t_env("TABLES_PREFIX=auth", NULL);
    idb_app a = {.name = "issuer-login-test",
                 .version = "1.0.0",
                 .routes = g_routes,
                 .nroutes = M8_ARRAY_LEN(g_routes),
                 .iss = &t->iss,
                 .connect_s = 3,
                 .io_s = 5,
                 .env = idb_env(kind, port, (const char *const *)base)};
    if (!(t->app = idb_app_boot(&a)))
        return -1;
    t->s = *m8_app_settings(t->app);
    /* The issuer's own settings, at fa-auth-m8's defaults (the app is
     * booted as a consumer, which leaves them unset). */
    t->s.trusted_proxy_count = 1;
    t->s.login_ip_rate_limit_requests = 50;
    t->s.password_login_enabled = true;
    t->iss.app = t->app;
    t->iss.s = &t->s;
    char err[256] = "";
    if (idb_issuer_keys(&t->iss, ACCESS_SECRET, REFRESH_SECRET, true, err, sizeof err) != 0) {
        diag("issuer keys: %s", err);
        return -1;
    }
    t->admin = idb_open(kind, port, "auth", 3, 10);
    return t->admin ? 0 : -1;
}

void tl_issuer_free(tl_issuer *t)
{
    m8_app_free(t->app);
    idb_issuer_free(&t->iss);
    m8_db_close(t->admin);
}

void tl_send(tl_issuer *t, const icall *r, tl_resp *out)
{
    icall c = *r;
    c.method = r->method ? r->method : "POST";
    c.peer = r->peer ? r->peer : "127.0.0.1";
    c.length_always = true;
    const iresp *a = icall_do(t->app, &c);
    memset(out, 0, sizeof *out);
    out->status = a->status;
    snprintf(out->body, sizeof out->body, "%.*s", (int)sizeof out->body - 1, a->body);
    iheader(a, "Set-Cookie", out->cookie, sizeof out->cookie);
    iheader(a, "WWW-Authenticate", out->www, sizeof out->www);
}

void tl_login(tl_issuer *t, const char *user, const char *pw, const char *ip, tl_resp *out)
{
    char body[1024];
    snprintf(body, sizeof body, "username=%s&password=%s", user, pw);
    icall r = {.path = "/api/login/access-token",
               .ctype = "application/x-www-form-urlencoded",
               .body = body,
               .peer = ip};
    tl_send(t, &r, out);
}

bool tl_cookie_of(const tl_resp *r, char *out, size_t outlen)
{
    out[0] = '\0';
    if (strncmp(r->cookie, "refresh_token=", 14) != 0)
        return false;
    snprintf(out, outlen, "%.*s", (int)strcspn(r->cookie, ";"), r->cookie);
    return strlen(out) > 20;
}

bool tl_access_of(const tl_resp *r, char *out, size_t outlen)
{
    return imember(r->body, "access_token", out, outlen)[0] != '\0';
}

bool tl_user_add(tl_issuer *t, const char *email, const char *hash, bool active,
                 char id[M8_UUID_STR_LEN + 1])
{
    m8_issuer_user u;
    memset(&u, 0, sizeof u);
    u.email = email;
    u.hashed_password = hash;
    snprintf(u.provider, sizeof u.provider, "password");
    snprintf(u.role, sizeof u.role, "user");
    u.is_active = active;
    int rc = m8_issuer_user_insert(t->admin, "auth", &u);
    if (rc != 0)
        diag("user insert %s: %d %s", email, rc, m8_db_last_error(t->admin)->message);
    memcpy(id, u.id, sizeof u.id);
    return rc == 0;
}

void tl_text(tl_issuer *t, const char *sql, const char *param, char *out, size_t outlen)
{
    m8_db_param p = M8_DB_TEXT(param);
    m8_db_result *r = NULL;
    out[0] = '\0';
    if (m8_db_exec(t->admin, sql, param ? &p : NULL, param ? 1 : 0, &r) == 0 &&
        m8_db_nrows(r) >= 1) {
        const char *v = m8_db_get_text(r, 0, 0, NULL);
        snprintf(out, outlen, "%s", v ? v : "");
    }
    m8_db_result_free(r);
}

void tl_uid(tl_issuer *t, const char *id, char out[M8_UUID_STR_LEN + 1])
{
    m8_issuer_uuid_param(t->admin, id, out);
}

bool tl_pyjwt(const char *tok, const char *secret, char *out, size_t outlen)
{
    setenv("M8T_TOK", tok, 1);
    setenv("M8T_KEY", secret, 1);
    FILE *f = popen("/usr/bin/python3 -c 'import jwt, os; c = jwt.decode(os.environ[\"M8T_TOK\"], "
                    "os.environ[\"M8T_KEY\"], algorithms=[\"HS256\"], "
                    "options={\"verify_aud\": False}); print(c[\"type\"], c[\"jti\"], c[\"sub\"])' "
                    "2>/dev/null",
                    "r");
    out[0] = '\0';
    bool got = f && fgets(out, (int)outlen, f) != NULL;
    if (f)
        pclose(f);
    out[strcspn(out, "\n")] = '\0';
    return got && out[0];
}

/* ------------------------------------------------------------ client IP */

static void test_client_ip(void)
{
    char ip[M8_ISSUER_CLIENT_IP_MAX];
    m8_issuer_client_ip_of("203.0.113.7", "10.0.0.1", 1, ip);
    is_str(ip, "203.0.113.7", "client ip: one proxy: the rightmost X-Forwarded-For entry");
    m8_issuer_client_ip_of("1.1.1.1, 2.2.2.2 , 3.3.3.3", "10.0.0.1", 1, ip);
    is_str(ip, "3.3.3.3", "client ip: one proxy: entries are trimmed, the last one counts");
    m8_issuer_client_ip_of("1.1.1.1, 2.2.2.2 , 3.3.3.3", "10.0.0.1", 2, ip);
    is_str(ip, "2.2.2.2", "client ip: two proxies: the second from the right");
    m8_issuer_client_ip_of("1.1.1.1,,  ,3.3.3.3,", "10.0.0.1", 2, ip);
    is_str(ip, "1.1.1.1", "client ip: empty entries are dropped before counting");
    m8_issuer_client_ip_of("3.3.3.3", "10.0.0.1", 2, ip);
    is_str(ip, "10.0.0.1", "client ip: fewer entries than proxies: the peer");
    m8_issuer_client_ip_of("3.3.3.3", "10.0.0.1", 0, ip);
    is_str(ip, "10.0.0.1", "client ip: TRUSTED_PROXY_COUNT=0 ignores the header");
    m8_issuer_client_ip_of("198.51.100.4:8443", "10.0.0.1", 1, ip);
    is_str(ip, "198.51.100.4", "client ip: an IPv4 :port suffix is removed");
    m8_issuer_client_ip_of("[2001:DB8::1]:443", "10.0.0.1", 1, ip);
    is_str(ip, "2001:db8::1", "client ip: [v6]:port is unwrapped (canonical text)");
    m8_issuer_client_ip_of("2001:db8:0:0::2", "10.0.0.1", 1, ip);
    is_str(ip, "2001:db8::2", "client ip: a bare IPv6 address keeps its colons");
    m8_issuer_client_ip_of("not-an-ip", "10.0.0.1", 1, ip);
    is_str(ip, "10.0.0.1", "client ip: an entry that is no address: the peer");
    m8_issuer_client_ip_of("999.1.1.1", NULL, 1, ip);
    is_str(ip, "unknown", "client ip: no usable entry and no peer: unknown");
    m8_issuer_client_ip_of(NULL, "", 1, ip);
    is_str(ip, "unknown", "client ip: an empty peer is none");
    is_int(m8_issuer_trusted_proxy_count(NULL), 1, "client ip: no settings: one trusted proxy");
}

static void test_sessions_offline(void)
{
    m8_issuer_session s;
    memset(&s, 0, sizeof s);
    is_int(m8_issuer_session_upsert(NULL, NULL, &s), M8_EINVAL, "sessions: NULL handle refused");
    is_int(m8_issuer_session_event_v1(NULL, NULL, "x", NULL, 0), M8_EINVAL,
           "sessions: an event without a handle refused");
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    test_client_ip();
    test_sessions_offline();
    idb_start(&g_srv);
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        const char *name = m8_db_kind_name(kind);
        const char *why = idb_unusable(kind);
        if (why) {
            ok(1, "%s: a real server # SKIP %s", name, why);
            continue;
        }
        tl_issuer t;
        int rc = tl_issuer_init(&t, kind, idb_port(kind));
        char err[512] = "";
        if (rc == 0)
            rc = m8_issuer_schema_apply(t.admin, "auth", NULL, err, sizeof err);
        ok(rc == 0, "%s: the issuer boots and its schema is applied (%s)", name, err);
        if (rc == 0) {
            test_login(&t);
            test_refresh(&t);
            test_logout(&t);
            test_modes(&t);
        }
        tl_issuer_free(&t);
        if (idb_closed_port())
            test_db_down(kind, idb_closed_port());
    }
    idb_stop();
    return done_testing();
}
