/* test_issuer_metrics.c - fcgim8-issuer's own Prometheus series
 * (lib/builtin/issuer_metrics.c, prometheus.c; doc/issuer.md#metrics) and
 * the revocation outbox replay (lib/issuer/outbox.c;
 * doc/issuer.md#the-revocation-outbox), driven through the in-process app
 * harness in issuer mode (TOKEN_MODE=stateful, METRICS_ENABLED=true)
 * against a real PostgreSQL and a real MariaDB started on loopback by
 * issuer_db.c (ports 19940-19979; a server that is not installed is
 * skipped with the reason).  Every series is read back from GET
 * /api/metrics and compared with its exact value. */
#include "config.h"

#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "auth/jws_sign.h"
#include "builtin/issuer_metrics.h"
#include "db/db.h"
#include "issuer/outbox.h"
#include "issuer/password.h"
#include "issuer/revoke.h"
#include "issuer/service.h"
#include "issuer/store.h"
#include "issuer_call.h"
#include "issuer_db.h"
#include "shm/shm.h"
#include "tap.h"

#define PASSWORD "Iss-Metrics-Db-Pa55!"
#define ISS_DB "iss_metrics"
#define ISS_USER "iss_metrics"
#define ACCESS_SECRET "Test-Access-Secret-Key-0123456789abcdef!"
#define REFRESH_SECRET "Test-Refresh-Secret-Key-0123456789abcdef!"
#define USER_PW "Metr1cs-User-Passw0rd!"

static const idb_servers g_srv = {
    "test_issuer_metrics", 19940, 19979, ISS_DB, ISS_USER, PASSWORD, true};

/* ------------------------------------------------------------ harness */

typedef struct tctx {
    const char *name;
    m8_db_kind kind;
    m8_app *app;
    m8_db *db;
    m8_issuer iss;
} tctx;

static m8_route g_table[] = {
    {"POST", "/login/access-token", M8_PUBLIC, m8_issuer_h_login, NULL, NULL, NULL, 0},
    {"POST", "/login/refresh-token/", M8_PUBLIC, m8_issuer_h_refresh, NULL, NULL, NULL, 0},
    {"POST", "/login/logout/", M8_PUBLIC, m8_issuer_h_logout, NULL, NULL, NULL, 0},
    {"GET", "/profile/get/me/", M8_USER, m8_issuer_h_me, NULL, NULL, NULL, 0},
};

static iresp *req(tctx *t, const char *method, const char *path, const char *tok,
                  const char *cookie, const char *form)
{
    icall c = {.method = method,
               .base = "/api",
               .path = path,
               .peer = "127.0.0.1",
               .length_always = true,
               .body = form,
               .ctype = form ? "application/x-www-form-urlencoded" : NULL,
               .bearer = tok,
               .cookie = cookie};
    return icall_do(t->app, &c);
}

/* POST /login/access-token; *tok receives the access token when 200. */
static iresp *login(tctx *t, const char *email, const char *pw, char *tok, char *cookie)
{
    char form[256];
    snprintf(form, sizeof form, "username=%s&password=%s", email, pw);
    iresp *r = req(t, "POST", "/login/access-token", NULL, NULL, form);
    json_object *o = json_tokener_parse(r->body), *v;
    if (tok && r->status == 200 && json_object_object_get_ex(o, "access_token", &v))
        snprintf(tok, 2048, "%s", json_object_get_string(v));
    if (cookie)
        icookie(r, "refresh_token", cookie, 4096);
    json_object_put(o);
    return r;
}

/* The value of one sample of GET /api/metrics: `line` is the sample's name
 * and labels exactly as written; -1 when it is absent. */
static double sample(tctx *t, const char *line)
{
    iresp *r = req(t, "GET", "/metrics", NULL, NULL, NULL);
    size_t n = strlen(line);
    for (const char *p = r->body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, line, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

#define SERIES(t, want, line, ...)                                                                 \
    do {                                                                                           \
        double got_ = sample(t, line);                                                             \
        ok(got_ == (double)(want), __VA_ARGS__);                                                   \
        if (got_ != (double)(want))                                                                \
            printf("#   %s: got %g, want %g\n", line, got_, (double)(want));                       \
    } while (0)

static m8_arena g_arena;

static void add_user(tctx *t, m8_issuer_user *u, const char *email, bool active)
{
    memset(u, 0, sizeof *u);
    u->email = m8_arena_strdup(&g_arena, email);
    snprintf(u->role, sizeof u->role, "user");
    snprintf(u->provider, sizeof u->provider, "password");
    u->is_active = active;
    char h[M8_PW_HASH_MAX] = "";
    if (t->iss.pw && m8_pw_hash(t->iss.pw, USER_PW, strlen(USER_PW), h) == 0)
        u->hashed_password = m8_arena_strdup(&g_arena, h);
    if (m8_issuer_user_insert(t->db, "auth", u) != 0)
        diag("insert %s: %s", email, m8_db_last_error(t->db)->message);
}

static char **app_env(m8_db_kind kind, unsigned port)
{
    static const char *base[] = {IDB_ENV_SITE("iss-metrics"),
                                 "ACCESS_SECRET_KEY=" ACCESS_SECRET,
                                 "REFRESH_SECRET_KEY=" REFRESH_SECRET,
                                 "TOKEN_MODE=stateful",
                                 "TOKEN_STRICT_VALIDATION=false",
                                 "METRICS_ENABLED=true",
                                 "LOGIN_RATE_LIMIT_REQUESTS=3",
                                 IDB_ENV_ISSUER_SECRETS,
                                 "FIRST_SUPERUSER=admin@example.com",
                                 "FIRST_SUPERUSER_PASSWORD=Adm1n-Passw0rd!",
                                 NULL};
    return idb_env(kind, port, base);
}

/* The issuer app on kind's server at port (a closed one: a database
 * outage); its series bound to its segment. */
static int setup(tctx *t, m8_db_kind kind, unsigned port)
{
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->name = kind == M8_DB_POSTGRES ? "PostgreSQL" : "MariaDB";
    char err[256] = "";
    if (port == idb_port(kind)) {
        t->db = idb_open(kind, port, NULL, 5, 30);
        if (!t->db || m8_issuer_schema_apply(t->db, "auth", NULL, err, sizeof err) != 0) {
            diag("schema: %s", err);
            return -1;
        }
    }
    if (idb_issuer_keys(&t->iss, ACCESS_SECRET, REFRESH_SECRET, true, err, sizeof err) != 0) {
        diag("keys: %s", err);
        return -1;
    }
    idb_app a = {.name = "fa-auth-m8",
                 .version = "2.2.3",
                 .routes = g_table,
                 .nroutes = M8_ARRAY_LEN(g_table),
                 .iss = &t->iss,
                 .revoked = idb_revoked,
                 .revoked_data = &t->iss,
                 .connect_s = 3,
                 .io_s = 10,
                 .env = app_env(kind, port)};
    if (!(t->app = idb_app_boot(&a)))
        return -1;
    t->iss.app = t->app;
    t->iss.s = m8_app_settings(t->app);
    m8_im_bind(t->app->shm, t->app->slot);
    return 0;
}

static void teardown(tctx *t)
{
    if (t->app) {
        m8_im_unbind(t->app->shm);
        m8_app_free(t->app);
    }
    idb_issuer_free(&t->iss);
    if (t->db)
        m8_db_close(t->db);
}

/* ------------------------------------------------------------ routes */

#define LOGIN_SERIES "api_auth_login_attempts_total{result=\""
#define REFRESH_SERIES "api_auth_token_refresh_total{result=\""
#define FAIL_SERIES "api_auth_token_validation_failures_total{reason=\""

static void test_routes(tctx *t)
{
    const char *n = t->name;
    m8_issuer_user alice, bob, ina;
    add_user(t, &alice, "alice@example.com", true);
    add_user(t, &bob, "bob@example.com", true);
    add_user(t, &ina, "ina@example.com", false);

    SERIES(t, 0, "api_auth_logout_total", "%s: auth_logout_total is 0 before any logout", n);
    ok(sample(t, LOGIN_SERIES "success\"}") == -1,
       "%s: a labelled family shows no series before it counts", n);

    char tok[2048], cookie[4096], tok2[2048];
    is_int(login(t, "alice%40example.com", USER_PW, tok, cookie)->status, 200, "%s: alice logs in",
           n);
    is_int(login(t, "alice%40example.com", "Wrong-Passw0rd!", NULL, NULL)->status, 400,
           "%s: a wrong password is 400", n);
    is_int(login(t, "ina%40example.com", USER_PW, NULL, NULL)->status, 400,
           "%s: an inactive user is 400", n);
    int last = 0;
    for (int i = 0; i < 4; i++)
        last = login(t, "bob%40example.com", "Wrong-Passw0rd!", NULL, NULL)->status;
    is_int(last, 429, "%s: the 4th bad login of bob is 429 (LOGIN_RATE_LIMIT_REQUESTS=3)", n);
    SERIES(t, 1, LOGIN_SERIES "success\"}", "%s: login_attempts{success} 1", n);
    SERIES(t, 4, LOGIN_SERIES "wrong_credentials\"}", "%s: login_attempts{wrong_credentials} 4", n);
    SERIES(t, 1, LOGIN_SERIES "inactive_user\"}", "%s: login_attempts{inactive_user} 1", n);
    SERIES(t, 1, LOGIN_SERIES "rate_limited\"}", "%s: login_attempts{rate_limited} 1", n);

    /* refresh, then the old cookie again (a reuse stopped at the allowlist) */
    char old[4096];
    snprintf(old, sizeof old, "%s", cookie);
    iresp *r = req(t, "POST", "/login/refresh-token/", NULL, old, NULL);
    is_int(r->status, 200, "%s: the refresh rotates", n);
    icookie(r, "refresh_token", cookie, sizeof cookie);
    json_object *o = json_tokener_parse(r->body), *v;
    tok2[0] = '\0';
    if (json_object_object_get_ex(o, "access_token", &v))
        snprintf(tok2, sizeof tok2, "%s", json_object_get_string(v));
    json_object_put(o);
    is_int(req(t, "POST", "/login/refresh-token/", NULL, old, NULL)->status, 401,
           "%s: the rotated cookie again is 401 (reuse)", n);
    is_int(req(t, "POST", "/login/refresh-token/", NULL, "refresh_token=garbage", NULL)->status,
           401, "%s: a garbage refresh token is 401", n);
    SERIES(t, 1, REFRESH_SERIES "success\"}", "%s: token_refresh{success} 1", n);
    SERIES(t, 1, REFRESH_SERIES "revoked\"}", "%s: token_refresh{revoked} 1 (the reuse)", n);
    SERIES(t, 1, REFRESH_SERIES "invalid\"}", "%s: token_refresh{invalid} 1", n);
    ok(sample(t, "api_auth_session_integrity_denial_total{trigger=\"reuse_detected\"}") == -1,
       "%s: a reuse stopped at the allowlist is no integrity denial", n);

    /* own routes: a valid token, garbage, an inactive user's token */
    is_int(req(t, "GET", "/profile/get/me/", tok2, NULL, NULL)->status, 200,
           "%s: the refreshed token reads /profile/get/me/", n);
    is_int(req(t, "GET", "/profile/get/me/", "not.a.token", NULL, NULL)->status, 403,
           "%s: a garbage token is 403", n);
    m8_mint_user mu;
    m8_issuer_user_mint(&ina, &mu);
    m8_buf b;
    m8_buf_init(&b, 4096);
    m8_mint_access(&t->iss.access_cfg, &mu, (long long)time(NULL), NULL, NULL, &b);
    is_int(req(t, "GET", "/profile/get/me/", b.data, NULL, NULL)->status, 403,
           "%s: an inactive user's token is 403 Inactive user", n);
    m8_buf_free(&b);

    /* logout: the access jti blacklisted, its v1 event appended */
    r = req(t, "POST", "/login/logout/", tok2, cookie, NULL);
    is_int(r->status, 200, "%s: logout is 200", n);
    is_int(req(t, "GET", "/profile/get/me/", tok2, NULL, NULL)->status, 401,
           "%s: the logged-out token is 401 Session revoked", n);
    SERIES(t, 1, "api_auth_logout_total", "%s: auth_logout_total 1", n);
    SERIES(t, 1, "api_auth_events_published_total{event_type=\"session-revoked\"}",
           "%s: events_published{session-revoked} 1 (the logout's v1 event)", n);
    SERIES(t, 1, FAIL_SERIES "invalid\"}", "%s: validation_failures{invalid} 1", n);
    SERIES(t, 1, FAIL_SERIES "revoked\"}", "%s: validation_failures{revoked} 1", n);
    SERIES(t, 1, FAIL_SERIES "inactive\"}", "%s: validation_failures{inactive} 1", n);
    ok(sample(t, FAIL_SERIES "expired\"}") == -1,
       "%s: the issuer shows only invalid, revoked and inactive reasons", n);
    SERIES(t, 0, "api_auth_event_stream_connections", "%s: no event stream is open", n);
    SERIES(t, 0, "api_auth_redis_circuit_breaker_open", "%s: the circuit breaker gauge is 0", n);
    SERIES(t, 1, "api_auth_degradation_mode_active{control=\"rate_limit\",mode=\"fail_open\"}",
           "%s: degradation_mode_active{rate_limit, fail_open} 1 (the default)", n);
    SERIES(t, 1,
           "api_auth_degradation_mode_active{control=\"access_revocation\",mode=\"fail_closed\"}",
           "%s: degradation_mode_active{access_revocation, fail_closed} 1", n);
    ok(sample(t, "api_auth_degradation_mode_active{control=\"rate_limit\",mode=\"fail_closed\"}") ==
           -1,
       "%s: only the mode in force is shown", n);
}

/* The database gone: each control decides per its failure mode, counted. */
static void test_degraded(m8_db_kind kind)
{
    tctx t;
    const char *n = kind == M8_DB_POSTGRES ? "PostgreSQL down" : "MariaDB down";
    if (!idb_closed_port() || setup(&t, kind, idb_closed_port()) != 0) {
        ok(0, "%s: the issuer boots with an unreachable database", n);
        teardown(&t);
        return;
    }
    const char *id = "0b8a4cde-3f52-4d77-8a1e-5c9d2b7e6f10",
               *jti = "9a3f1e2d-4c5b-4a69-8778-6f5e4d3c2b1a";
    long long now = (long long)time(NULL);
    m8_buf c, a;
    m8_buf_init(&c, 8192);
    m8_buf_init(&a, 8192);
    m8_buf_puts(&c, "refresh_token=");
    m8_mint_refresh(t.iss.refresh_key, 60, id, jti, now, &c);
    m8_mint_user mu = {id, "down@example.com", NULL, NULL, true, false, false, "user", NULL};
    m8_mint_access(&t.iss.access_cfg, &mu, now, jti, NULL, &a);
    is_int(login(&t, "down%40example.com", USER_PW, NULL, NULL)->status, 503, "%s: login 503", n);
    is_int(req(&t, "POST", "/login/refresh-token/", NULL, c.data, NULL)->status, 503,
           "%s: refresh 503", n);
    is_int(req(&t, "POST", "/login/logout/", a.data, c.data, NULL)->status, 503, "%s: logout 503",
           n);
    is_int(req(&t, "GET", "/profile/get/me/", a.data, NULL, NULL)->status, 503,
           "%s: an own route 503 (ACCESS_REVOCATION_FAILURE_MODE=fail_closed)", n);
    m8_buf_free(&c);
    m8_buf_free(&a);
#define DEG "api_auth_degraded_decision_total{control=\""
    SERIES(&t, 3, DEG "rate_limit\",mode=\"fail_open\",reason=\"redis_unavailable\"}",
           "%s: degraded{rate_limit, fail_open} 3 (login's two windows, refresh's one)", n);
    SERIES(&t, 1, DEG "refresh_validation\",mode=\"fail_closed\",reason=\"redis_unavailable\"}",
           "%s: degraded{refresh_validation, fail_closed} 1", n);
    SERIES(&t, 1, DEG "session_write\",mode=\"fail_closed\",reason=\"redis_unavailable\"}",
           "%s: degraded{session_write, fail_closed, redis_unavailable} 1", n);
    SERIES(&t, 1, DEG "session_write\",mode=\"fail_closed\",reason=\"revocation_failed\"}",
           "%s: degraded{session_write, fail_closed, revocation_failed} 1 (the 503)", n);
    SERIES(&t, 1, DEG "access_revocation\",mode=\"fail_closed\",reason=\"redis_unavailable\"}",
           "%s: degraded{access_revocation, fail_closed} 1", n);
#undef DEG
#define REV "api_auth_revocation_failure_total{operation=\""
    SERIES(&t, 1, REV "access_blacklist\"}", "%s: revocation_failure{access_blacklist} 1", n);
    SERIES(&t, 1, REV "refresh_allowlist\"}", "%s: revocation_failure{refresh_allowlist} 1", n);
    SERIES(&t, 1, REV "db_session\"}", "%s: revocation_failure{db_session} 1", n);
#undef REV
    teardown(&t);
}

/* ------------------------------------------------------------ outbox */

#define U1 "11111111-0000-4000-8000-000000000001"
#define U2 "11111111-0000-4000-8000-000000000002"
#define U3 "11111111-0000-4000-8000-000000000003"
#define U4 "11111111-0000-4000-8000-000000000004"
#define U5 "11111111-0000-4000-8000-000000000005"
#define U6 "11111111-0000-4000-8000-000000000006"
#define U9 "11111111-0000-4000-8000-000000000009"
#define URACE "22222222-0000-4000-8000-0000000000%02d"
#define NRACE 8

static const m8_issuer_outbox_cfg g_cfg = {M8_ISSUER_OUTBOX_MIN_AGE_S, 30, 3, 1.0, 300.0, 50};

/* A `publish` row as m8_issuer_acct_revoke writes it, created age_s ago;
 * lease_s (not 0) sets lease_until that far from now. */
static void outbox_row(tctx *t, const char *user, int64_t gen, int64_t age_s, const char *status,
                       int64_t attempts, int64_t lease_s, const char *payload)
{
    char id[M8_UUID_STR_LEN + 1], idp[M8_UUID_STR_LEN + 1], up[M8_UUID_STR_LEN + 1], pl[512];
    m8_jti_new(id);
    m8_issuer_uuid_param(t->db, id, idp);
    m8_issuer_uuid_param(t->db, user, up);
    if (!payload) {
        m8_issuer_event_v2(pl, sizeof pl, user, gen);
        payload = pl;
    }
    int64_t now = m8_db_now(), c = now - age_s * 1000000;
    m8_db_param p[] = {M8_DB_TEXT(idp),    M8_DB_TIME(c),       M8_DB_TIME(c),
                       M8_DB_TEXT(up),     M8_DB_INT(gen),      M8_DB_TEXT(payload),
                       M8_DB_TEXT(status), M8_DB_INT(attempts), M8_DB_NULL};
    if (lease_s)
        p[8] = M8_DB_TIME(now + lease_s * 1000000);
    if (m8_db_exec(t->db,
                   "INSERT INTO auth_revocation_outbox (id, created_at, updated_at, user_id, "
                   "auth_generation, effect_type, target_digest, payload, status, attempts, "
                   "lease_until) VALUES (?, ?, ?, ?, ?, 'publish', 'user-wide', ?, ?, ?, ?)",
                   p, M8_ARRAY_LEN(p), NULL) != 0)
        diag("outbox insert: %s", m8_db_last_error(t->db)->message);
}

/* "status/attempts" of user's row at gen. */
static const char *row_state(tctx *t, const char *user, int64_t gen, char *out, size_t outlen)
{
    char up[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(t->db, user, up);
    m8_db_param p[] = {M8_DB_TEXT(up), M8_DB_INT(gen)};
    m8_db_result *r = NULL;
    int64_t att = -1;
    snprintf(out, outlen, "none");
    if (m8_db_exec(t->db,
                   "SELECT status, attempts FROM auth_revocation_outbox WHERE user_id = ? AND "
                   "auth_generation = ?",
                   p, 2, &r) == 0 &&
        m8_db_nrows(r) == 1 && m8_db_get_int(r, 0, 1, &att) == 0)
        snprintf(out, outlen, "%s/%lld", m8_db_get_text(r, 0, 0, NULL), (long long)att);
    m8_db_result_free(r);
    return out;
}

/* Events of type after id `after` whose payload names user. */
static int events_of(tctx *t, int64_t after, const char *type, const char *user)
{
    m8_issuer_events ev;
    int n = 0;
    if (m8_issuer_event_read(t->db, "auth", after, 1000, m8_db_now() + 60000000, 1000000, &ev) != 0)
        return -1;
    for (size_t i = 0; i < ev.n; i++)
        if (strcmp(ev.ev[i].type, type) == 0 && strstr(ev.ev[i].payload, user))
            n++;
    m8_issuer_events_free(&ev);
    return n;
}

static void tombstone(tctx *t, const char *user, int64_t gen)
{
    char up[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(t->db, user, up);
    int64_t now = m8_db_now();
    m8_db_param p[] = {M8_DB_TEXT(up), M8_DB_INT(gen), M8_DB_TIME(now), M8_DB_TIME(now)};
    if (m8_db_exec(t->db,
                   "INSERT INTO auth_tombstone (user_id, terminal_generation, created_at, "
                   "updated_at) VALUES (?, ?, ?, ?)",
                   p, 4, NULL) != 0)
        diag("tombstone: %s", m8_db_last_error(t->db)->message);
}

typedef struct racer {
    tctx *t;
    pthread_barrier_t *go;
    m8_issuer_outbox_stats st;
    int rc;
} racer;

static void *race(void *arg)
{
    racer *x = arg;
    m8_db *db = idb_open(x->t->kind, idb_port(x->t->kind), NULL, 5, 30);
    pthread_barrier_wait(x->go);
    x->rc = db ? m8_issuer_outbox_replay(db, "auth", &g_cfg, m8_db_now(), &x->st) : -1;
    m8_db_close(db);
    return NULL;
}

static void test_outbox(tctx *t)
{
    const char *n = t->name;
    char st[64];
    int64_t first = 0;
    m8_issuer_event_last_id(t->db, "auth", &first);
    double published = sample(t, "api_auth_events_published_total{event_type=\"session-revoked\"}");

    /* rows left pending by a failure after the commit, and the others */
    outbox_row(t, U1, 2, 10, "pending", 0, 0, NULL);
    outbox_row(t, U2, 2, 10, "pending", 0, 0, NULL);
    tombstone(t, U2, 2);                             /* U2's change was a deletion */
    outbox_row(t, U3, 2, 0, "pending", 0, 0, NULL);  /* its request may still publish it */
    outbox_row(t, U4, 2, 60, "leased", 1, -5, NULL); /* its replayer died: lease over */
    outbox_row(t, U5, 2, 60, "leased", 1, 30, NULL); /* being replayed now */
    m8_issuer_outbox_stats s;
    int rc = m8_issuer_outbox_replay(t->db, "auth", &g_cfg, m8_db_now(), &s);
    ok(rc == 0 && s.claimed == 3 && s.completed == 3 && s.retried == 0 && s.dead == 0,
       "%s: the replay publishes the 3 due rows (rc %d, claimed %zu, completed %zu)", n, rc,
       s.claimed, s.completed);
    is_str(row_state(t, U1, 2, st, sizeof st), "completed/1", "%s: a pending row: completed", n);
    is_int(events_of(t, first, "session-revoked", U1), 1, "%s: ... its v2 event appended once", n);
    is_int(events_of(t, first, "session-revoked", U2), 1,
           "%s: a deletion's row: its session-revoked event", n);
    is_int(events_of(t, first, "user-deleted", U2), 1, "%s: ... and its user-deleted event", n);
    is_str(row_state(t, U3, 2, st, sizeof st), "pending/0",
           "%s: a row younger than %d s is left to its request", n, M8_ISSUER_OUTBOX_MIN_AGE_S);
    is_str(row_state(t, U4, 2, st, sizeof st), "completed/2",
           "%s: a leased row whose lease ran out is claimed again and completed", n);
    is_str(row_state(t, U5, 2, st, sizeof st), "leased/1", "%s: a live lease is left alone", n);
    rc = m8_issuer_outbox_replay(t->db, "auth", &g_cfg, m8_db_now(), &s);
    ok(rc == 0 && s.claimed == 0, "%s: a second replay finds nothing to do", n);
    is_int(events_of(t, first, "session-revoked", U1), 1, "%s: ... and publishes nothing again", n);
    SERIES(t, 3, "api_revocation_outbox_completed_total{effect_type=\"publish\"}",
           "%s: revocation_outbox_completed{publish} 3", n);
    SERIES(t, published + 3, "api_auth_events_published_total{event_type=\"session-revoked\"}",
           "%s: events_published{session-revoked} +3", n);
    SERIES(t, 1, "api_auth_events_published_total{event_type=\"user-deleted\"}",
           "%s: events_published{user-deleted} 1", n);
    SERIES(t, 3, "api_revocation_outbox_propagation_seconds_count{effect_type=\"publish\"}",
           "%s: revocation_outbox_propagation_seconds{publish} observed 3 times", n);
    SERIES(t, 0,
           "api_revocation_outbox_propagation_seconds_bucket{effect_type=\"publish\",le=\"5.0\"}",
           "%s: ... each at least 10 s after its commit (none in le=5.0)", n);

    /* the request's own publication, then the replay leaves the row alone */
    outbox_row(t, U6, 3, 0, "pending", 0, 0, NULL);
    rc = m8_issuer_outbox_publish_now(t->db, "auth", U6, 3, false);
    is_str(row_state(t, U6, 3, st, sizeof st), "completed/0",
           "%s: the immediate publication completes the row (rc %d)", n, rc);
    rc = m8_issuer_outbox_replay(t->db, "auth", &g_cfg, m8_db_now() + 3600000000LL, &s);
    ok(rc == 0 && events_of(t, first, "session-revoked", U6) == 1,
       "%s: its event is appended once, the replay does not repeat it", n);
    SERIES(t, 1, "api_revocation_outbox_enqueued_total{effect_type=\"publish\"}",
           "%s: revocation_outbox_enqueued{publish} 1", n);
    m8_db_exec(t->db, "DELETE FROM auth_revocation_outbox WHERE status <> 'completed'", NULL, 0,
               NULL);

    /* two replayers racing on the same rows: each event once */
    char users[NRACE][M8_UUID_STR_LEN + 1];
    for (int i = 0; i < NRACE; i++) {
        snprintf(users[i], sizeof users[i], URACE, i);
        outbox_row(t, users[i], 2, 10, "pending", 0, 0, NULL);
    }
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    racer r[2] = {{t, &go, {0}, 0}, {t, &go, {0}, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, race, &r[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    ok(r[0].rc == 0 && r[1].rc == 0 && r[0].st.completed + r[1].st.completed == NRACE,
       "%s: two concurrent replays complete the %d rows between them (%zu + %zu)", n, NRACE,
       r[0].st.completed, r[1].st.completed);
    int once = 0;
    for (int i = 0; i < NRACE; i++)
        once += events_of(t, first, "session-revoked", users[i]) == 1 &&
                strcmp(row_state(t, users[i], 2, st, sizeof st), "completed/1") == 0;
    is_int(once, NRACE, "%s: each raced row's event is published exactly once", n);

    /* a row whose delivery keeps failing (an event over the outbox's bound) */
    size_t big = M8_ISSUER_EVENT_MAX + 100;
    char *poison = malloc(big + 16);
    snprintf(poison, 16, "{\"x\":\"");
    memset(poison + 6, 'a', big);
    snprintf(poison + 6 + big, 8, "\"}");
    outbox_row(t, U9, 2, 10, "pending", 0, 0, poison);
    free(poison);
    size_t retried = 0, dead = 0;
    for (int round = 0; round < 4; round++) { /* each round past the backoff */
        rc = m8_issuer_outbox_replay(t->db, "auth", &g_cfg,
                                     m8_db_now() + (int64_t)round * 3600000000LL, &s);
        retried += s.retried;
        dead += s.dead;
        if (round == 0)
            is_str(row_state(t, U9, 2, st, sizeof st), "pending/1",
                   "%s: a failed delivery goes back to pending, attempt 1 counted", n);
    }
    ok(rc == 0 && retried == 2 && dead == 1,
       "%s: retried twice, then dead at OUTBOX_MAX_ATTEMPTS=3 (%zu, %zu)", n, retried, dead);
    is_str(row_state(t, U9, 2, st, sizeof st), "dead/3", "%s: the row ends dead after 3 attempts",
           n);
    SERIES(t, 2, "api_revocation_outbox_retried_total{effect_type=\"publish\"}",
           "%s: revocation_outbox_retried{publish} 2", n);
    SERIES(t, 1, "api_revocation_outbox_dead_total{effect_type=\"publish\"}",
           "%s: revocation_outbox_dead{publish} 1", n);

    /* the housekeeping's reap: completed rows older than the retention go */
    int64_t gone = -1;
    outbox_row(t, U1, 3, 7200, "pending", 0, 0, NULL);
    rc = m8_issuer_outbox_reap(t->db, "auth", m8_db_now() - 3600000000LL, 1000, &gone);
    ok(rc == 0 && gone == 0 && strcmp(row_state(t, U1, 2, st, sizeof st), "completed/1") == 0,
       "%s: a row completed within OUTBOX_COMPLETED_RETENTION_SECONDS stays", n);
    rc = m8_issuer_outbox_reap(t->db, "auth", m8_db_now() + 1000000, 1000, &gone);
    ok(rc == 0 && gone >= NRACE + 3, "%s: the reap deletes the completed rows past it (%lld)", n,
       (long long)gone);
    is_str(row_state(t, U1, 2, st, sizeof st), "none", "%s: ... the completed row is gone", n);
    ok(strcmp(row_state(t, U9, 2, st, sizeof st), "dead/3") == 0 &&
           strcmp(row_state(t, U1, 3, st, sizeof st), "pending/0") == 0,
       "%s: ... a dead row and an old pending row stay", n);
}

/* ------------------------------------------------------------ the segment */

#define NBUMP 20000

static void *bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < NBUMP; i++) {
        m8_im_inc(M8_IM_LOGOUT, 0);
        m8_im_inc3(M8_IM_DEGRADED, M8_IM_CTL_SESSION_WRITE, 1, M8_IM_REASON_REVOCATION_FAILED);
        m8_im_observe(M8_IH_OUTBOX_PUBLISH, 0.02);
    }
    return NULL;
}

/* Counting into a private segment: exact under four threads, label values
 * past their list ignored, and the stream gauge of a slot reset when the
 * slot is taken again (a dead worker's streams are gone). */
static void test_segment(void)
{
    m8_shm *shm = m8_shm_private();
    if (!shm) {
        ok(0, "a private segment");
        return;
    }
    m8_shm_slot *slot = &shm->slots[0];
    m8_im_bind(shm, slot);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, bump, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    unsigned deg = m8_im_base(M8_IM_DEGRADED) + (M8_IM_CTL_SESSION_WRITE * 2 + 1) * 2 +
                   M8_IM_REASON_REVOCATION_FAILED;
    ok(atomic_load(&shm->issuer[m8_im_base(M8_IM_LOGOUT)]) == 4 * NBUMP &&
           atomic_load(&shm->issuer[deg]) == 4 * NBUMP,
       "counters are exact under 4 threads counting at once (%d each)", 4 * NBUMP);
    ok(atomic_load(&shm->issuer_hists[M8_IH_OUTBOX_PUBLISH].count) == 4 * NBUMP &&
           atomic_load(&shm->issuer_hists[M8_IH_OUTBOX_PUBLISH].buckets[2]) == 4 * NBUMP,
       "a histogram's count and its bucket (le 0.025) are exact under 4 threads");
    uint64_t before[M8_SHM_ISSUER_COUNTERS];
    for (unsigned i = 0; i < M8_SHM_ISSUER_COUNTERS; i++)
        before[i] = atomic_load(&shm->issuer[i]);
    m8_im_inc(M8_IM_LOGIN, 4);                              /* past the 4 results */
    m8_im_inc3(M8_IM_DEGRADED, M8_IM_CTL_RATE_LIMIT, 2, 0); /* past the 2 modes */
    m8_im_inc((m8_im_family)M8_IM__FAMILIES, 0);            /* no such family */
    bool same = true;
    for (unsigned i = 0; i < M8_SHM_ISSUER_COUNTERS; i++)
        same &= atomic_load(&shm->issuer[i]) == before[i];
    ok(same, "a label value or family past its list counts nothing");
    m8_im_streams(1);
    m8_im_streams(1);
    m8_im_streams(-1);
    ok(atomic_load(&slot->issuer_streams) == 1, "the stream gauge of the slot counts up and down");
    m8_shm_slot_claim(slot, 12345, 1);
    ok(atomic_load(&slot->issuer_streams) == 0,
       "a slot taken again starts its stream gauge at 0 (the last owner's streams are gone)");
    m8_im_streams(1);
    m8_shm_slot_release(slot);
    ok(atomic_load(&slot->issuer_streams) == 0, "a released slot's stream gauge is 0");
    m8_im_unbind(shm);
    m8_im_inc(M8_IM_LOGOUT, 0);
    ok(atomic_load(&shm->issuer[m8_im_base(M8_IM_LOGOUT)]) == 4 * NBUMP,
       "unbound, counting writes nothing");
    m8_shm_unmap(shm);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    if (sodium_init() < 0)
        return 1;
    m8_arena_init(&g_arena, 0);
    ok(m8_im_total() <= M8_SHM_ISSUER_COUNTERS,
       "the issuer families' %u counters fit the segment's %u", m8_im_total(),
       M8_SHM_ISSUER_COUNTERS);
    test_segment();
    idb_start(&g_srv);
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        const char *name = m8_db_kind_name(kind);
        const char *why = idb_unusable(kind);
        if (why) {
            ok(1, "%s: a real server # SKIP %s", name, why);
            continue;
        }
        tctx t;
        if (setup(&t, kind, idb_port(kind)) != 0) {
            ok(0, "%s: the app boots on a fresh schema", name);
            teardown(&t);
            continue;
        }
        test_routes(&t);
        test_outbox(&t);
        teardown(&t);
        test_degraded(kind);
    }
    idb_stop();
    m8_arena_free(&g_arena);
    return done_testing();
}
