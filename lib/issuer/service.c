/* service.c - fcgim8-issuer on m8_app (doc/issuer.md#the-service): the keys
 * and the JWKS body loaded at boot (a bad key stops the boot with 78), the
 * schema and the first superuser at start, the revocation check of the
 * issuer's own routes, the JWKS route and the route table. */
#include "issuer/service.h"

#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app.h"
#include "auth/jwk_export.h"
#include "builtin/issuer_metrics.h"
#include "core/log.h"
#include "core/thread.h"
#include "issuer/browser.h"
#include "issuer/form.h"
#include "issuer/oidc.h"
#include "issuer/openapi_doc.h"
#include "issuer/outbox.h"
#include "issuer/private.h"
#include "issuer/store.h"

#define KEY_FILE_MAX (64u << 10)

static m8_issuer g_iss;

void m8_issuer_db_down_log(m8_request *req, const char *what)
{
    const m8_db_error *e = m8_db_last_error(m8_req_db(req));
    m8_log_limited("issuer.db.down", M8_LOG_WARNING, "issuer: %s: the database is unavailable: %s",
                   what, e && e->message[0] ? e->message : "no connection");
}

int m8_issuer_db_fail(m8_request *req, int rc, const char *what)
{
    if (rc == M8_EAGAIN) {
        m8_issuer_db_down_log(req, what);
        return m8_res_error(req, 503, M8_ISSUER_DETAIL_DB_DOWN);
    }
    m8_req_fail(req, "issuer: %s: database error %d", what, rc);
    return m8_res_error(req, 500, "Internal Server Error");
}

/* ------------------------------------------------------------ boot: keys */

static bool nonempty(const char *s)
{
    return s && *s;
}

/* Builds the signing keys, the JWKS body and the password hasher from the
 * settings; a startup validator, so a bad key stops the boot (78). */
static int load_keys(const m8_settings *s, char *err, size_t errlen, void *data)
{
    m8_issuer *iss = data;
    iss->s = s;
    const char *prefix = nonempty(s->tables_prefix) ? s->tables_prefix : M8_ISSUER_PREFIX_DEFAULT;
    if (!m8_issuer_prefix_valid(prefix)) {
        snprintf(err, errlen, "TABLES_PREFIX must be 1-%d letters, digits or '_'",
                 M8_ISSUER_PREFIX_MAX);
        return 1;
    }
    snprintf(iss->prefix, sizeof iss->prefix, "%s", prefix);
    m8_alg alg = s->access_token_algorithm;
    EVP_PKEY *pub = NULL;
    const EVP_PKEY *old = NULL;
    const char *old_kid = NULL;
    if (alg == M8_ALG_HS256) {
        if (!nonempty(s->access_secret_key)) {
            snprintf(err, errlen, "ACCESS_SECRET_KEY is required for HS256");
            return 1;
        }
        iss->access_key = m8_sign_key_from_secret(s->access_secret_key,
                                                  strlen(s->access_secret_key), err, errlen);
        if (!iss->access_key)
            return 1;
    } else {
        if (!nonempty(s->access_private_key_file)) {
            snprintf(err, errlen, "ACCESS_PRIVATE_KEY_FILE is required for %s",
                     alg == M8_ALG_ES256 ? "ES256" : "RS256");
            return 1;
        }
        char *pem = NULL;
        size_t len = 0;
        if (m8_read_file(s->access_private_key_file, KEY_FILE_MAX, true, &pem, &len) != 0) {
            snprintf(err, errlen, "ACCESS_PRIVATE_KEY_FILE: cannot read %s",
                     s->access_private_key_file);
            return 1;
        }
        iss->access_key = m8_sign_key_from_pem(pem, len, alg, err, errlen);
        sodium_memzero(pem, len);
        free(pem);
        if (!iss->access_key)
            return 1;
        pub = iss->access_key->pkey;
        char kid[M8_JWK_KID_LEN + 1];
        if (m8_jwk_kid(pub, kid) != 0) {
            snprintf(err, errlen, "ACCESS_PRIVATE_KEY_FILE: cannot derive the key id");
            return 1;
        }
        if (nonempty(s->access_key_id) && strcmp(s->access_key_id, kid) != 0) {
            snprintf(err, errlen,
                     "ACCESS_KEY_ID '%s' is not the id of ACCESS_PRIVATE_KEY_FILE's key ('%s')",
                     s->access_key_id, kid);
            return 1;
        }
        snprintf(iss->kid, sizeof iss->kid, "%s", kid);
        /* parsed once, by the verifier of the issuer's own routes */
        old = m8_auth_old_key(iss->app ? iss->app->auth : NULL, &old_kid);
        if (nonempty(s->access_public_key_old_file) && !old) {
            snprintf(err, errlen, "ACCESS_PUBLIC_KEY_OLD_FILE: not loaded");
            return 1;
        }
    }
    iss->access_cfg.key = iss->access_key;
    iss->access_cfg.kid = iss->kid[0] ? iss->kid : NULL;
    iss->access_cfg.expire_minutes = s->access_token_expire_minutes;
    iss->access_cfg.issuer = s->token_issuer;
    iss->access_cfg.audience = s->token_audience;
    if (!nonempty(s->refresh_secret_key)) {
        snprintf(err, errlen, "REFRESH_SECRET_KEY is required");
        return 1;
    }
    iss->refresh_key =
        m8_sign_key_from_secret(s->refresh_secret_key, strlen(s->refresh_secret_key), err, errlen);
    if (iss->refresh_key && nonempty(s->refresh_secret_key_old))
        iss->refresh_key_old = m8_sign_key_from_secret(
            s->refresh_secret_key_old, strlen(s->refresh_secret_key_old), err, errlen);
    if (!iss->refresh_key || (nonempty(s->refresh_secret_key_old) && !iss->refresh_key_old)) {
        return 1;
    }
    iss->refresh_minutes = s->refresh_token_expire_minutes;
    iss->cookie_max_age = s->refresh_token_cookie_expire_seconds;
    iss->cookie_secure = s->environment != M8_ENV_LOCAL;
    iss->stateless = s->token_mode == M8_MODE_STATELESS;
    iss->hybrid = s->token_mode == M8_MODE_HYBRID;
    int rc = m8_jwks_doc_build(alg, pub, iss->kid, old, old_kid, &iss->jwks, err, errlen);
    if (rc != 0)
        return 1;
    if (m8_jwks_cache_control(s->jwks_cache_ttl_seconds, iss->jwks_cache_control,
                              sizeof iss->jwks_cache_control) != 0)
        return 1;
    m8_pw_params pp;
    m8_pw_params_default(&pp);
    iss->pw = m8_pw_new(&pp, err, errlen);
    return iss->pw ? 0 : 1;
}

/* ------------------------------------------------ start: schema, superuser */

/* The first superuser (FIRST_SUPERUSER, FIRST_SUPERUSER_PASSWORD) when no
 * account has that email yet; never updated afterwards
 * (doc/issuer.md#the-first-superuser). */
static int seed_superuser(m8_issuer *iss, m8_db *db)
{
    const char *email = m8_settings_get(iss->s, "FIRST_SUPERUSER");
    const char *pwd = m8_settings_get(iss->s, "FIRST_SUPERUSER_PASSWORD");
    if (!nonempty(email) || !nonempty(pwd)) {
        m8_log(M8_LOG_WARNING, "issuer: FIRST_SUPERUSER or FIRST_SUPERUSER_PASSWORD unset: "
                               "no first superuser is created");
        return 0;
    }
    char norm[M8_ISSUER_EMAIL_MAX * 4 + 1];
    size_t n = strlen(email);
    if (n > M8_ISSUER_EMAIL_MAX) {
        m8_log(M8_LOG_ERROR, "issuer: FIRST_SUPERUSER is longer than %u bytes",
               M8_ISSUER_EMAIL_MAX);
        return 1;
    }
    m8_login_username_norm(email, n, norm);
    m8_arena a;
    m8_arena_init(&a, 0);
    m8_issuer_user u;
    int rc = m8_issuer_user_by_email(db, iss->prefix, &a, norm, &u);
    if (rc == 0 || rc != M8_ENOTFOUND) {
        m8_arena_free(&a);
        if (rc != 0)
            m8_log(M8_LOG_ERROR, "issuer: cannot look up the first superuser (error %d)", rc);
        return rc == 0 ? 0 : 1;
    }
    char hash[M8_PW_HASH_MAX];
    if (m8_pw_hash(iss->pw, pwd, strlen(pwd), hash) != 0) {
        m8_arena_free(&a);
        m8_log(M8_LOG_ERROR, "issuer: cannot hash the first superuser's password");
        return 1;
    }
    memset(&u, 0, sizeof u);
    u.email = norm;
    u.hashed_password = hash;
    memcpy(u.provider, "password", 9);
    memcpy(u.role, "superadmin", 11);
    u.is_active = true;
    rc = m8_issuer_user_insert(db, iss->prefix, &u);
    sodium_memzero(hash, sizeof hash);
    m8_arena_free(&a);
    if (rc != 0 && m8_db_last_error(db)->kind == M8_DB_ERR_UNIQUE)
        return 0; /* another worker created it first */
    if (rc != 0) {
        m8_log(M8_LOG_ERROR, "issuer: cannot create the first superuser (error %d)", rc);
        return 1;
    }
    m8_log(M8_LOG_INFO, "issuer: created the first superuser %s", norm);
    return 0;
}

/* The dummy hash of unknown users takes the format most stored hashes have
 * (doc/issuer.md#equal-work-for-unknown-users): bcrypt right after a
 * migration from fa-auth-m8, argon2id on a fresh installation. */
static void choose_dummy(m8_issuer *iss, m8_db *db)
{
    char sql[256];
    m8_db_result *r = NULL;
    int64_t bcrypt = 0, argon = 0;
    if (m8_issuer_sql(
            sql, sizeof sql,
            "SELECT COALESCE(SUM(CASE WHEN hashed_password LIKE '$2%' THEN 1 ELSE 0 END), "
            "0), COALESCE(SUM(CASE WHEN hashed_password LIKE '$argon2%' THEN 1 ELSE 0 "
            "END), 0) FROM {p}_user",
            iss->prefix) != 0 ||
        m8_db_exec(db, sql, NULL, 0, &r) != 0 || m8_db_get_int(r, 0, 0, &bcrypt) != 0 ||
        m8_db_get_int(r, 0, 1, &argon) != 0) {
        m8_log(M8_LOG_WARNING, "issuer: cannot count the stored hash formats: the dummy hash "
                               "stays argon2id");
        m8_db_result_free(r);
        return;
    }
    m8_db_result_free(r);
    m8_pw_kind kind = bcrypt > argon ? M8_PW_KIND_BCRYPT : M8_PW_KIND_ARGON2ID;
    if (m8_pw_set_dummy(iss->pw, kind) != 0)
        m8_log(M8_LOG_WARNING, "issuer: cannot make the %s dummy hash",
               kind == M8_PW_KIND_BCRYPT ? "bcrypt" : "argon2id");
    else if (kind == M8_PW_KIND_BCRYPT)
        m8_log(M8_LOG_INFO,
               "issuer: %lld bcrypt and %lld argon2id hashes stored: unknown users cost a "
               "bcrypt check",
               (long long)bcrypt, (long long)argon);
}

/* ------------------------------------------------------------ housekeeping */

#define REAP_INTERVAL_S 60 /* M8_ISSUER_REAP_SECONDS (1..3600) overrides it */

/* Every REAP_INTERVAL_S the expired allowlist and blacklist entries, ended
 * rate windows and events older than the retention leave the database
 * (doc/issuer.md#housekeeping); each worker runs it, which is harmless:
 * the deletes are idempotent. */
static struct {
    pthread_t thread;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
} g_reaper = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* The outbox rows an account-wide change left pending, published
 * (doc/issuer.md#the-revocation-outbox). */
static void outbox_replay(const m8_issuer *iss, long long every)
{
    const m8_settings *s = iss->s;
    if (!s->outbox_worker_enabled)
        return;
    m8_issuer_outbox_cfg cfg = {M8_ISSUER_OUTBOX_MIN_AGE_S,    s->outbox_lease_seconds,
                                s->outbox_max_attempts,        s->outbox_backoff_base_seconds,
                                s->outbox_backoff_cap_seconds, s->outbox_batch_size};
    int rc = m8_issuer_outbox_replay(m8_app_db(iss->app), iss->prefix, &cfg, m8_db_now(), NULL);
    /* completed rows leave after OUTBOX_COMPLETED_RETENTION_SECONDS */
    if (rc == 0)
        rc = m8_issuer_outbox_reap(m8_app_db(iss->app), iss->prefix,
                                   m8_db_now() - s->outbox_completed_retention_seconds * 1000000,
                                   s->outbox_batch_size, NULL);
    if (rc != 0)
        m8_log_limited("issuer.outbox", M8_LOG_WARNING,
                       "issuer: the revocation outbox replay failed (error %d); next try in %lld s",
                       rc, every);
}

static void *reaper_main(void *arg)
{
    m8_issuer *iss = arg;
    long long keep_s = iss->s->outbox_completed_retention_seconds;
    if (iss->s->tombstone_consumer_horizon_seconds > keep_s)
        keep_s = iss->s->tombstone_consumer_horizon_seconds;
    long long every = REAP_INTERVAL_S;
    const char *e = getenv("M8_ISSUER_REAP_SECONDS");
    if (e && m8_parse_ll(e, 1, 3600, &every) != 0)
        every = REAP_INTERVAL_S;
    pthread_mutex_lock(&g_reaper.mu);
    while (!g_reaper.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)every;
        while (!g_reaper.stop &&
               pthread_cond_timedwait(&g_reaper.cv, &g_reaper.mu, &until) != ETIMEDOUT) {
        }
        if (g_reaper.stop)
            break;
        pthread_mutex_unlock(&g_reaper.mu);
        int64_t now = (int64_t)time(NULL);
        int rc =
            m8_issuer_store_reap(m8_app_db(iss->app), iss->prefix, now, (now - keep_s) * 1000000);
        if (rc != 0)
            m8_log_limited("issuer.reap", M8_LOG_WARNING,
                           "issuer: housekeeping failed (error %d); next try in %lld s", rc, every);
        outbox_replay(iss, every);
        pthread_mutex_lock(&g_reaper.mu);
    }
    pthread_mutex_unlock(&g_reaper.mu);
    return NULL;
}

static void reaper_stop(void)
{
    if (!g_reaper.running)
        return;
    pthread_mutex_lock(&g_reaper.mu);
    g_reaper.stop = true;
    pthread_cond_broadcast(&g_reaper.cv);
    pthread_mutex_unlock(&g_reaper.mu);
    pthread_join(g_reaper.thread, NULL);
    g_reaper.running = false;
}

static int on_database(m8_app *app, void *data)
{
    m8_issuer *iss = data;
    m8_db *db = m8_app_db(app);
    char err[512];
    int found = 0;
    int rc = m8_issuer_schema_apply(db, iss->prefix, &found, err, sizeof err);
    if (rc != 0) {
        m8_log(M8_LOG_ERROR, "issuer: schema: %s", err);
        return 1;
    }
    if (found != M8_ISSUER_SCHEMA_VERSION)
        m8_log(M8_LOG_INFO, "issuer: schema at version %d (was %d)", M8_ISSUER_SCHEMA_VERSION,
               found);
    if (seed_superuser(iss, db) != 0)
        return 1;
    choose_dummy(iss, db);
    m8_im_bind(app->shm, app->slot); /* the issuer's own series (doc/issuer.md#metrics) */
    g_reaper.running = m8_thread_start(&g_reaper.thread, NULL, reaper_main, iss) == 0;
    if (!g_reaper.running)
        m8_log(M8_LOG_WARNING, "issuer: cannot start the housekeeping thread");
    return 0;
}

static void on_shutdown(m8_app *app, void *data)
{
    (void)app;
    m8_issuer *iss = data;
    reaper_stop();
    m8_im_unbind(iss->app ? iss->app->shm : NULL);
    m8_sign_key_free(iss->access_key);
    m8_sign_key_free(iss->refresh_key);
    m8_sign_key_free(iss->refresh_key_old);
    m8_jwks_doc_clear(&iss->jwks);
    m8_pw_free(iss->pw);
    iss->access_key = iss->refresh_key = iss->refresh_key_old = NULL;
    iss->pw = NULL;
}

/* The access blacklist, for the issuer's own routes in stateful mode. */
static int revoked(m8_request *req, const char *jti, void *data)
{
    m8_issuer *iss = data;
    bool listed = false;
    int rc =
        m8_issuer_blacklist_has(m8_req_db(req), iss->prefix, jti, (int64_t)time(NULL), &listed);
    if (rc != 0)
        return M8_EAGAIN;
    return listed ? 1 : 0;
}

/* ------------------------------------------------------------ health */

/* Since when the store (the database) has been seen unavailable, in Unix
 * microseconds; 0 while it answers.  Per process. */
static _Atomic int64_t g_degraded_since;

static const char *mode_name(m8_failure_mode m)
{
    return m == M8_FAIL_OPEN ? "fail_open" : "fail_closed";
}

static const char *token_mode_name(const m8_settings *s)
{
    return s->token_mode == M8_MODE_STATELESS ? "stateless"
           : s->token_mode == M8_MODE_HYBRID  ? "hybrid"
                                              : "stateful";
}

/* fa-auth-m8's detailed health body (doc/issuer.md#health). */
static json_object *health_detail(m8_issuer *iss, m8_request *req)
{
    const m8_settings *s = iss->s;
    m8_db_result *r = NULL;
    bool db_ok = m8_db_exec(m8_req_db(req), "SELECT 1", NULL, 0, &r) == 0;
    m8_db_result_free(r);
    int64_t since = 0;
    if (db_ok) {
        atomic_store(&g_degraded_since, 0);
    } else {
        int64_t none = 0, now = m8_db_now();
        atomic_compare_exchange_strong(&g_degraded_since, &none, now);
        since = atomic_load(&g_degraded_since);
    }
    bool stateful = s->token_mode != M8_MODE_STATELESS;
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string(db_ok ? "ok" : "degraded"));
    json_object_object_add(o, "token_mode", json_object_new_string(token_mode_name(s)));
    json_object_object_add(
        o, "effective_mode",
        json_object_new_string(db_ok || !stateful ? token_mode_name(s) : "stateless_degraded"));
    /* the database holds what Redis holds for fa-auth-m8 */
    json_object_object_add(o, "redis", json_object_new_string(db_ok ? "ok" : "unavailable"));
    json_object_object_add(o, "circuit_breaker", json_object_new_string(db_ok ? "closed" : "open"));
    json_object_object_add(o, "database", json_object_new_string(db_ok ? "ok" : "unavailable"));
    json_object_object_add(o, "revocation_available", json_object_new_boolean(db_ok && stateful));
    json_object_object_add(o, "rate_limiting_available", json_object_new_boolean(db_ok));
    char t[40];
    json_object_object_add(
        o, "degraded_since",
        since && m8_db_format_time(since, t, sizeof t) == 0 ? json_object_new_string(t) : NULL);
    json_object *m = json_object_new_object();
    json_object_object_add(m, "rate_limit",
                           json_object_new_string(mode_name(s->rate_limit_failure_mode)));
    json_object_object_add(m, "refresh_validation",
                           json_object_new_string(mode_name(s->refresh_validation_failure_mode)));
    json_object_object_add(m, "session_write",
                           json_object_new_string(mode_name(s->session_write_failure_mode)));
    json_object_object_add(
        m, "access_revocation",
        json_object_new_string(
            mode_name(s->auth_strict_mode ? M8_FAIL_CLOSED : s->access_revocation_failure_mode)));
    json_object_object_add(o, "degradation_modes", m);
    return o;
}

/* GET {API_PREFIX}/health/ as fa-auth-m8 answers it, once this worker and
 * its pool are ready: 200 {"status":"ok"} to anyone, whatever the
 * database's state; the detail only with X-Internal-Token equal to
 * HEALTH_DETAIL_CREDENTIAL.  Before that the library's health answers (503
 * "initializing"), as for every service: a 200 from the first ready worker
 * while another still starts (and answers 503 to the other routes) would
 * tell nginx, a load balancer or a deploy script that the pool serves. */
static int on_request(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    const char *path = m8_req_path(req), *pre = iss->s ? iss->s->api_prefix : NULL;
    size_t pl = pre ? strlen(pre) : 0;
    if (!path || !pre || strncmp(path, pre, pl) != 0 || strcmp(path + pl, "/health/") != 0 ||
        strcmp(m8_req_method(req), "GET") != 0 || !m8__app_pool_ready(iss->app))
        return 0;
    const char *cred = iss->s->health_detail_credential,
               *tok = m8_req_header(req, "X-Internal-Token");
    if (m8_secret_eq(tok, cred)) {
        m8_res_header(req, "Cache-Control", "no-store");
        m8_res_json(req, 200, health_detail(iss, req));
        return 1;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "status", json_object_new_string("ok"));
    m8_res_json(req, 200, o);
    return 1;
}

/* ------------------------------------------------------------ routes */

int m8_issuer_h_jwks(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    const char *inm = m8_req_header(req, "If-None-Match");
    m8_res_header(req, "ETag", iss->jwks.etag);
    m8_res_header(req, "Cache-Control", iss->jwks_cache_control);
    if (inm && m8_jwks_if_none_match(inm, strlen(inm), iss->jwks.etag))
        return m8_res_body(req, 304, NULL, NULL, 0);
    return m8_res_body(req, 200, "application/json", iss->jwks.body, iss->jwks.body_len);
}

#define R(m, p, acc, h, sum, tag, fl)                                                              \
    {                                                                                              \
        m, p, acc, h, &g_iss, sum, tag, fl                                                         \
    }
static const m8_route ROUTES[] = {
    R("GET", "/.well-known/jwks.json", M8_PUBLIC, m8_issuer_h_jwks, "JWKS", "login", 0),
    R("POST", "/login/access-token", M8_PUBLIC, m8_issuer_h_login, "Login Access Token", "login",
      0),
    R("POST", "/login/refresh-token/", M8_PUBLIC, m8_issuer_h_refresh, "Login Refresh Token",
      "login", 0),
    /* the bearer token is checked by the handler itself (doc/issuer.md) */
    R("POST", "/login/logout/", M8_PUBLIC, m8_issuer_h_logout, "Logout", "login", 0),
    R("POST", "/login/test-token/", M8_USER, m8_issuer_h_test_token, "Test Token", "login", 0),
    R("GET", "/profile/get/me/", M8_USER, m8_issuer_h_me, "Read User Me", "profile", 0),
    R("PATCH", "/profile/update/me/", M8_USER, m8_issuer_h_update_me, "Update User Me", "profile",
      M8_ROUTE_JSON_BODY),
    R("PATCH", "/profile/me/password/", M8_USER, m8_issuer_h_password_me, "Update Password Me",
      "profile", M8_ROUTE_JSON_BODY),
    R("DELETE", "/profile/delete/me/", M8_USER, m8_issuer_h_delete_me, "Delete User Me", "profile",
      0),
    /* verify comes before {key_id}: the router takes the first match */
    R("GET", "/profile/api-keys/verify", M8_PUBLIC, m8_issuer_h_apikeys_verify, "Verify Api Key",
      "api-keys", 0),
    R("POST", "/profile/api-keys/", M8_USER, m8_issuer_h_apikeys_create, "Create Api Key",
      "api-keys", M8_ROUTE_JSON_BODY),
    R("GET", "/profile/api-keys/", M8_USER, m8_issuer_h_apikeys_list, "List Api Keys", "api-keys",
      0),
    R("GET", "/profile/api-keys/{key_id}", M8_USER, m8_issuer_h_apikeys_get, "Get Api Key",
      "api-keys", 0),
    R("DELETE", "/profile/api-keys/{key_id}", M8_USER, m8_issuer_h_apikeys_delete, "Revoke Api Key",
      "api-keys", 0),
    R("GET", "/api-keys/by-user/{user_id}/", M8_SUPERUSER, m8_issuer_h_apikeys_by_user,
      "List Api Keys By User", "api-keys", 0),
    R("POST", "/api-keys/revoke/{key_id}/", M8_SUPERUSER, m8_issuer_h_apikeys_su_revoke,
      "Admin Revoke Api Key", "api-keys", 0),
    R("POST", "/api-keys/by-user/{user_id}/", M8_SUPERUSER, m8_issuer_h_apikeys_su_create,
      "Admin Create Api Key", "api-keys", M8_ROUTE_JSON_BODY),
    /* service accounts (doc/issuer.md#service-accounts-and-client-credentials) */
    R("POST", "/service-accounts/", M8_SUPERUSER, m8_issuer_h_sa_create, "Create Service Account",
      "service-accounts", M8_ROUTE_JSON_BODY),
    R("GET", "/service-accounts/", M8_SUPERUSER, m8_issuer_h_sa_list, "List Service Accounts",
      "service-accounts", 0),
    R("GET", "/service-accounts/{user_id}/", M8_SUPERUSER, m8_issuer_h_sa_get,
      "Read Service Account", "service-accounts", 0),
    R("PATCH", "/service-accounts/{user_id}/role/", M8_SUPERUSER, m8_issuer_h_sa_role,
      "Change Service Account Role", "service-accounts", M8_ROUTE_JSON_BODY),
    R("POST", "/service-accounts/{user_id}/deactivate/", M8_SUPERUSER, m8_issuer_h_sa_deactivate,
      "Deactivate Service Account", "service-accounts", 0),
    R("POST", "/service-accounts/{user_id}/secret/", M8_SUPERUSER, m8_issuer_h_sa_secret,
      "Rotate Service Account Secret", "service-accounts", 0),
    R("POST", "/service-accounts/{user_id}/api-keys/", M8_SUPERUSER, m8_issuer_h_sa_keys_create,
      "Create Service Account Api Key", "service-accounts", M8_ROUTE_JSON_BODY),
    R("GET", "/service-accounts/{user_id}/api-keys/", M8_SUPERUSER, m8_issuer_h_sa_keys_list,
      "List Service Account Api Keys", "service-accounts", 0),
    R("GET", "/users/", M8_SUPERUSER, m8_issuer_h_users_list, "Read Users", "users", 0),
    R("POST", "/users/new_user/", M8_SUPERUSER, m8_issuer_h_users_new, "Create User", "users",
      M8_ROUTE_JSON_BODY),
    R("POST", "/users/signup/", M8_SUPERUSER, m8_issuer_h_users_signup, "Register User", "users",
      M8_ROUTE_JSON_BODY),
    R("GET", "/users/get/{user_id}/", M8_SUPERUSER, m8_issuer_h_users_get, "Read User By Id",
      "users", 0),
    R("PATCH", "/users/update/{user_id}/", M8_SUPERUSER, m8_issuer_h_users_update, "Update User",
      "users", M8_ROUTE_JSON_BODY),
    R("DELETE", "/users/delete/{user_id}/", M8_SUPERUSER, m8_issuer_h_users_delete, "Delete User",
      "users", 0),
    R("GET", "/sessions/", M8_SUPERUSER, m8_issuer_h_sessions_list, "Session List", "sessions", 0),
    R("GET", "/sessions/get/{session_id}/", M8_SUPERUSER, m8_issuer_h_sessions_get,
      "Get Session By Id", "sessions", 0),
    R("GET", "/sessions/get-by-user/{user_id}/", M8_SUPERUSER, m8_issuer_h_sessions_by_user,
      "Get Session By User", "sessions", 0),
    R("GET", "/sessions/get-current/", M8_USER, m8_issuer_h_sessions_current, "Get My Session",
      "sessions", 0),
    R("DELETE", "/sessions/delete-by-user/{user_id}/", M8_SUPERUSER,
      m8_issuer_h_sessions_delete_user, "Delete Sessions By User", "sessions", 0),
    R("DELETE", "/sessions/delete/{session_id}/", M8_SUPERUSER, m8_issuer_h_sessions_delete,
      "Delete Session", "sessions", 0),
    R("POST", "/sessions/refresh-google-tokens/", M8_USER, m8_issuer_h_refresh_google_tokens,
      "Refresh Google Tokens", "sessions", M8_ROUTE_JSON_BODY),
    R("GET", "/security/superuser-probe", M8_SUPERUSER, m8_issuer_h_superuser_probe,
      "Superuser Probe", "security", M8_ROUTE_HIDDEN),
    R("GET", "/security/audit-log", M8_ADMIN, m8_issuer_h_audit_log, "Audit Log", "security",
      M8_ROUTE_HIDDEN),
    R("POST", "/security/audit-log/purge", M8_SUPERUSER, m8_issuer_h_audit_purge, "Purge Audit Log",
      "security", M8_ROUTE_HIDDEN | M8_ROUTE_JSON_BODY),
    R("POST", "/security/api-keys/purge", M8_SUPERUSER, m8_issuer_h_apikeys_purge, "Purge Api Keys",
      "security", M8_ROUTE_HIDDEN | M8_ROUTE_JSON_BODY),
    R("GET", "/dashboard/users/activity/", M8_USER, m8_issuer_h_dashboard_activity,
      "Users Activity", "dashboard", 0),
    R("GET", "/dashboard/users/activity/current/", M8_USER, m8_issuer_h_dashboard_current,
      "Current Users Activity", "dashboard", 0),
    /* SSO: 404 feature_unavailable while the provider is off (doc/issuer.md#sso-oidc-and-google) */
    R("GET", "/google-api/login-url/", M8_PUBLIC, m8_issuer_h_google_login_url, "Google Login Url",
      "google", 0),
    R("GET", "/google-auth/oauth-callback/", M8_PUBLIC, m8_issuer_h_google_callback,
      "Google Oauth Callback", "google", 0),
    R("POST", "/google-api/exchange/", M8_PUBLIC, m8_issuer_h_google_exchange, "Google Exchange",
      "google", M8_ROUTE_JSON_BODY),
    R("GET", "/oidc/login-url/", M8_PUBLIC, m8_issuer_h_oidc_login_url, "Oidc Login Url", "oidc",
      0),
    R("GET", "/oidc/callback/", M8_PUBLIC, m8_issuer_h_oidc_callback, "Oidc Callback", "oidc", 0),
    R("POST", "/oidc/exchange/", M8_PUBLIC, m8_issuer_h_oidc_exchange, "Oidc Exchange", "oidc",
      M8_ROUTE_JSON_BODY),
    /* private API: the handlers authenticate the consumer (doc/issuer.md#private-api) */
    R("POST", "/private/v1/service-token", M8_PUBLIC, m8_issuer_h_service_token, NULL, NULL,
      M8_ROUTE_HIDDEN),
    R("POST", "/private/v1/jti-status", M8_PUBLIC, m8_issuer_h_jti_status, NULL, NULL,
      M8_ROUTE_HIDDEN),
    R("POST", "/private/v1/api-keys/introspect", M8_PUBLIC, m8_issuer_h_apikeys_introspect, NULL,
      NULL, M8_ROUTE_HIDDEN),
    R("POST", "/private/users/", M8_PUBLIC, m8_issuer_h_private_users, NULL, NULL, M8_ROUTE_HIDDEN),
    /* a streaming answer (doc/issuer.md#event-stream); it authenticates the consumer */
    R("GET", "/private/v1/events/stream", M8_PUBLIC, m8_issuer_h_events_stream, NULL, NULL,
      M8_ROUTE_HIDDEN),
};
#undef R

int m8_issuer_main(int argc, char **argv)
{
    m8_app *app = m8_app_new("fa-auth-m8", PACKAGE_VERSION);
    if (!app)
        return 70;
    g_iss.app = app;
    m8_app_set_issuer(app, revoked, &g_iss);
    if (m8_app_use_database(app, M8_DB_REQUIRED, 0, 0) != 0 ||
        m8_app_add_validator(app, "issuer keys", load_keys, &g_iss) != 0 ||
        m8_app_add_validator(app, "issuer private API", m8_issuer_private_load, &g_iss) != 0 ||
        m8_app_add_validator(app, "issuer browser sessions", m8_issuer_browser_load, NULL) != 0 ||
        m8_app_on_shutdown(app, m8_issuer_browser_free, NULL) != 0 ||
        m8_app_on_shutdown(app, m8_issuer_private_free, NULL) != 0 ||
        m8_app_add_validator(app, "issuer sso", m8_oidc_load, &g_iss) != 0 ||
        m8_app_on_shutdown(app, m8_oidc_free, NULL) != 0 ||
        m8_app_on_database(app, on_database, &g_iss) != 0 ||
        m8_app_on_shutdown(app, on_shutdown, &g_iss) != 0 ||
        m8_app_on_request(app, on_request, &g_iss) != 0 ||
        m8_app_add_routes(app, ROUTES, M8_ARRAY_LEN(ROUTES)) != 0 ||
        m8_issuer_describe_routes(app) != 0) {
        m8_app_free(app);
        return 70;
    }
    return m8_app_main(app, argc, argv);
}
