/* app.c - m8_app: assembly, request pipeline, lifecycle, command line. */
#include "app/app.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/apikey.h"
#include "auth/auth.h"
#include "config/confighealth.h"
#include "db/db.h"
#include "stream/evclient.h"
#include "core/log.h"
#include "builtin/metrics.h"
#include "auth/revocation.h"
#include "app/server.h"

extern char **environ;

#define EX_USAGE_ 64
#define EX_SOFTWARE_ 70
#define EX_CONFIG_ 78
#define M8_STARTUP_DONE 250 /* pseudo-signal: the startup thread finished */

/* ------------------------------------------------------------ building */

m8_app *m8_app_new(const char *service_name, const char *service_version)
{
    m8_app *app = calloc(1, sizeof *app);
    if (!app)
        return NULL;
    app->service_name = m8_strdup0(service_name);
    app->service_version = m8_strdup0(service_version);
    if ((service_name && !app->service_name) || (service_version && !app->service_version)) {
        m8_app_free(app);
        return NULL;
    }
    app->max_body = M8_DEFAULT_MAX_BODY;
    m8_router_init(&app->router);
    m8_health_init(&app->health);
    atomic_init(&app->ready, 0);
    return app;
}

void m8_app_free(m8_app *app)
{
    if (!app)
        return;
    m8_db_app_free(app); /* dispose: every connection closed */
    if (app->booted) {
        m8_docs_free(&app->docs);
        m8_meta_free(&app->meta);
        m8_middleware_free(&app->mw);
    }
    m8_auth_free(app->auth);
    m8_revocation_free(app->rev);
    m8_apikey_free(app->apikey);
    m8_shm_unmap(app->shm);
    m8_router_free(&app->router);
    m8_health_free(&app->health);
    m8_settings_free(app->settings);
    for (size_t i = 0; i < app->n_validators; i++)
        free(app->validators[i].name);
    free(app->validators);
    free(app->startups);
    free(app->shutdowns);
    free(app->tables);
    free(app->table_lens);
    free(app->service_name);
    free(app->service_version);
    free(app);
}

/* Grows an array of n elements of size sz by one; returns the new slot. */
static void *grow(void *arrp, size_t *n, size_t sz)
{
    void **arr = arrp;
    void *p = realloc(*arr, (*n + 1) * sz);
    if (!p)
        return NULL;
    *arr = p;
    return (char *)p + (*n)++ * sz;
}

int m8_app_add_routes(m8_app *app, const m8_route *routes, size_t n)
{
    if (!app || (!routes && n))
        return M8_EINVAL;
    if (app->booted)
        return M8_ESTATE;
    size_t n2 = app->n_tables;
    const m8_route **t = grow(&app->tables, &app->n_tables, sizeof *app->tables);
    if (!t)
        return M8_ENOMEM;
    size_t *l = grow(&app->table_lens, &n2, sizeof *app->table_lens);
    if (!l) {
        app->n_tables--;
        return M8_ENOMEM;
    }
    *t = routes;
    *l = n;
    return 0;
}

int m8_app_set_max_body(m8_app *app, size_t bytes)
{
    if (!app || bytes == 0 || bytes > ((size_t)1 << 30))
        return M8_EINVAL;
    app->max_body = bytes;
    return 0;
}

int m8_app_add_validator(m8_app *app, const char *name, m8_validator_fn fn, void *data)
{
    if (!app || !fn)
        return M8_EINVAL;
    m8_validator *v = grow(&app->validators, &app->n_validators, sizeof *v);
    if (!v)
        return M8_ENOMEM;
    v->name = strdup(name ? name : "validator");
    v->fn = fn;
    v->data = data;
    return v->name ? 0 : M8_ENOMEM;
}

int m8_app_on_startup(m8_app *app, m8_startup_fn fn, void *data)
{
    if (!app || !fn)
        return M8_EINVAL;
    m8_startup_hook *h = grow(&app->startups, &app->n_startups, sizeof *h);
    if (!h)
        return M8_ENOMEM;
    h->fn = fn;
    h->data = data;
    return 0;
}

int m8_app_on_shutdown(m8_app *app, m8_shutdown_fn fn, void *data)
{
    if (!app || !fn)
        return M8_EINVAL;
    m8_shutdown_hook *h = grow(&app->shutdowns, &app->n_shutdowns, sizeof *h);
    if (!h)
        return M8_ENOMEM;
    h->fn = fn;
    h->data = data;
    return 0;
}

int m8_app_auth_hooks(m8_app *app, m8_auth_success_fn on_success, m8_auth_failure_fn on_failure,
                      void *data)
{
    if (!app || app->booted)
        return app ? M8_ESTATE : M8_EINVAL;
    app->auth_hooks.on_success = on_success;
    app->auth_hooks.on_failure = on_failure;
    app->auth_hooks.data = data;
    return 0;
}

int m8_app_on_request(m8_app *app, m8_request_hook fn, void *data)
{
    if (!app)
        return M8_EINVAL;
    app->on_request = fn;
    app->on_request_data = data;
    return 0;
}

const m8_settings *m8_app_settings(const m8_app *app)
{
    return app ? app->settings : NULL;
}

int m8_app_is_ready(const m8_app *app)
{
    return app && atomic_load(&app->ready);
}

/* Health leaves "initializing" when this worker and its pool are ready
 * (fcgim8d sets the segment's flag once every first worker is). */
static bool pool_ready(const m8_app *app)
{
    return atomic_load(&app->ready) && (!app->shm || atomic_load(&app->shm->ready));
}

int m8_app_add_health_check(m8_app *app, const char *name, m8_health_fn fn, void *data)
{
    if (!app || !name || !*name || !fn)
        return M8_EINVAL;
    return m8_health_add(&app->health, name, fn, data);
}

int m8_app_health_options(m8_app *app, double timeout_s, m8_health_policy policy,
                          double cache_ttl_s, int detail_public)
{
    if (!app || !(timeout_s > 0 && timeout_s <= 60) || !(cache_ttl_s >= 0 && cache_ttl_s <= 3600) ||
        (policy != M8_HEALTH_LENIENT && policy != M8_HEALTH_STRICT))
        return M8_EINVAL;
    app->health.timeout_s = timeout_s;
    app->health.policy = policy;
    app->health.cache_ttl_s = cache_ttl_s;
    app->health.detail_public = detail_public != 0;
    return 0;
}

int m8_app_health_authorizer(m8_app *app, m8_health_authorizer fn, void *data)
{
    if (!app)
        return M8_EINVAL;
    app->health.authorizer = fn;
    app->health.authorizer_data = data;
    return 0;
}

/* ------------------------------------------------------------ built-in routes */

static int h_ping(m8_request *req, void *data)
{
    (void)data;
    return m8_ping_handle(req);
}

static int h_meta(m8_request *req, void *data)
{
    return m8_meta_handle(&((m8_app *)data)->meta, req);
}

static int h_health(m8_request *req, void *data)
{
    m8_app *app = data;
    return m8_health_handle(&app->health, req, pool_ready(app));
}

static int h_openapi(m8_request *req, void *data)
{
    return m8_docs_openapi_handle(&((m8_app *)data)->docs, req);
}

static int h_swagger(m8_request *req, void *data)
{
    return m8_docs_swagger_handle(&((m8_app *)data)->docs, req);
}

static int h_redoc(m8_request *req, void *data)
{
    return m8_docs_redoc_handle(&((m8_app *)data)->docs, req);
}

/* GET {API_PREFIX}/metrics and GET /metrics: the sum over every worker of
 * the pool (CONTRACT D10), gated by METRICS_SCRAPE_CREDENTIAL. */
static int h_metrics(m8_request *req, void *data)
{
    m8_app *app = data;
    if (m8_metrics_check_scrape(app->settings, m8_req_header(req, "Authorization")) != 0) {
        m8_res_error(req, 401, "Unauthorized");
        return m8_res_set_header(req, "WWW-Authenticate", "Bearer");
    }
    m8_buf b;
    m8_buf_init(&b, M8_MAX_RESPONSE_BYTES);
    int rc = m8_metrics_render(app->shm, app->settings, &b);
    if (rc == 0)
        rc = m8_res_body(req, 200, M8_METRICS_CONTENT_TYPE, b.data ? b.data : "", b.len);
    else
        m8_req_fail(req, "metrics: cannot render (%d)", rc);
    m8_buf_free(&b);
    return rc;
}

/* Token validation outcomes: counted in the auth metrics group, then
 * passed to the service's own hooks. */
static void hook_success(const char *jti, const char *sub, const char *type, void *data)
{
    m8_app *app = data;
    if (app->auth_hooks.on_success)
        app->auth_hooks.on_success(jti, sub, type, app->auth_hooks.data);
}

static void hook_failure(const char *reason, const char *type, void *data)
{
    m8_app *app = data;
    if (app->settings->metrics_enabled)
        m8_metrics_auth_failure(app->slot, reason);
    if (app->auth_hooks.on_failure)
        app->auth_hooks.on_failure(reason, type, app->auth_hooks.data);
}

/* Flag on built-in routes that answer before the app is ready. */
#define M8__ROUTE_BUILTIN (1u << 30)

static int add_builtins(m8_app *app, char *err, size_t errlen)
{
    const m8_settings *s = app->settings;
    const unsigned b = M8__ROUTE_BUILTIN;
    const m8_route docs[] = {
        {"GET", "/openapi.json", M8_PUBLIC, h_openapi, app, NULL, NULL, M8_ROUTE_HIDDEN | b},
        {"GET", "/docs", M8_PUBLIC, h_swagger, app, NULL, NULL, M8_ROUTE_HIDDEN | b},
        {"GET", "/redoc", M8_PUBLIC, h_redoc, app, NULL, NULL, M8_ROUTE_HIDDEN | b},
    };
    const m8_route core[] = {
        {"GET", "/health/", M8_PUBLIC, h_health, app, "Health", "health", M8_ROUTE_HIDDEN | b},
        {"GET", "/meta", M8_PUBLIC, h_meta, app, "Service meta", "meta", b},
        {"GET", "/ping", M8_PUBLIC, h_ping, app, "Ping", "meta", b},
        {"GET", "/ping", M8_PUBLIC, h_ping, app, "Ping", "meta", M8_ROUTE_ABSOLUTE | b},
    };
    /* Precedence as create_app: docs, health, meta, ping, then the service. */
    bool on[3] = {s->docs_openapi, s->docs_openapi && s->docs_docs,
                  s->docs_openapi && s->docs_redoc};
    for (size_t i = 0; i < M8_ARRAY_LEN(docs); i++) {
        if (on[i] && m8_router_add(&app->router, s->api_prefix, &docs[i], err, errlen) != 0)
            return M8_ECONFIG;
    }
    if (s->metrics_enabled) {
        /* D10: {API_PREFIX}/metrics; the reference's root /metrics as well. */
        const m8_route metrics[] = {
            {"GET", "/metrics", M8_PUBLIC, h_metrics, app, NULL, NULL, M8_ROUTE_HIDDEN | b},
            {"GET", "/metrics", M8_PUBLIC, h_metrics, app, NULL, NULL,
             M8_ROUTE_HIDDEN | M8_ROUTE_ABSOLUTE | b},
        };
        size_t n = s->api_prefix[0] && strcmp(s->api_prefix, "/") != 0 ? 2 : 1;
        for (size_t i = 0; i < n; i++) {
            if (m8_router_add(&app->router, s->api_prefix, &metrics[i], err, errlen) != 0)
                return M8_ECONFIG;
        }
    }
    for (size_t i = 0; i < M8_ARRAY_LEN(core); i++) {
        if (m8_router_add(&app->router, s->api_prefix, &core[i], err, errlen) != 0)
            return M8_ECONFIG;
    }
    return 0;
}

/* ------------------------------------------------------------ boot */

/* B 4.1, 4.7 "Route audit": an X-API-Key route needs API keys enabled and
 * a capability the issuer's keys can carry. */
static int audit_api_key_route(const m8_app *app, const m8_route *r, char *err, size_t errlen)
{
    if (r->access != M8_API_KEY_READER && r->access != M8_API_KEY_WRITER)
        return 0;
    if (!app->apikey) {
        snprintf(err, errlen, "route %s %s takes an X-API-Key but "
                 "API_KEY_INTROSPECTION_ENABLED is false", r->method, r->path);
        return M8_ECONFIG;
    }
    const char *why = m8_apikey_audit_route(r->method, r->path,
                                            r->access == M8_API_KEY_WRITER ? "writer" : "reader",
                                            NULL, err, errlen);
    return why ? M8_ECONFIG : 0;
}

int m8_app_boot(m8_app *app, const m8_settings_source *src)
{
    if (app->booted)
        return 0;
    int rc = m8_settings_load_checked(src, &app->settings);
    if (rc != 0)
        return rc;
    const m8_settings *s = app->settings;

    if (!app->shm) {
        app->shm = m8_shm_attach_env(&app->slot);
        long long maxr = 0;
        const char *mr = getenv(M8_ENV_MAX_REQUESTS);
        if (app->shm && app->shm->daemon_pid && mr && m8_parse_ll(mr, 0, INT64_MAX, &maxr) == 0)
            app->max_requests = (uint64_t)maxr;
    }

    char err[512] = "";
    if (m8_meta_init(&app->meta, s, err, sizeof err) != 0) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
        return EX_CONFIG_;
    }
    if (m8_middleware_init(&app->mw, s, err, sizeof err) != 0) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
        m8_meta_free(&app->meta);
        return EX_CONFIG_;
    }
    app->auth = m8_auth_new(s, err, sizeof err);
    if (!app->auth) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: token verification: %s", err);
        m8_middleware_free(&app->mw);
        m8_meta_free(&app->meta);
        return EX_CONFIG_;
    }
    if (app->shm && atomic_load(&app->shm->jwks.served)) {
        m8_auth_use_shared_jwks(app->auth, app->shm);
        m8_log(M8_LOG_DEBUG, "JWKS: using the supervisor's shared key set");
    } else if (app->shm) {
        m8_auth_report_jwks(app->auth, app->shm);
    }
    if (m8_revocation_wanted(s)) {
        app->rev = m8_revocation_new(s, app->shm, err, sizeof err);
        if (!app->rev) {
            m8_log(M8_LOG_CRITICAL, "CONFIG: revocation check: %s", err);
            m8_auth_free(app->auth);
            app->auth = NULL;
            m8_middleware_free(&app->mw);
            m8_meta_free(&app->meta);
            return EX_CONFIG_;
        }
        m8_auth_use_revocation(app->auth, app->rev);
    }
    if (m8_apikey_enabled(s)) {
        app->apikey = m8_apikey_new(s, err, sizeof err);
        if (!app->apikey) {
            m8_log(M8_LOG_CRITICAL, "CONFIG: API keys: %s", err);
            m8_auth_free(app->auth);
            app->auth = NULL;
            m8_middleware_free(&app->mw);
            m8_meta_free(&app->meta);
            return EX_CONFIG_;
        }
        m8_auth_use_apikey(app->auth, app->apikey);
    }
    m8_auth_hooks hooks = {hook_success, hook_failure, app};
    m8_auth_set_hooks(app->auth, &hooks);
    if (s->metrics_enabled) {
        char pfx[M8_METRICS_MAX_PREFIX];
        if (m8_metrics_prefix(s->api_prefix, pfx, sizeof pfx) != 0) {
            m8_log(M8_LOG_CRITICAL, "CONFIG: API_PREFIX %s gives no valid metric name prefix "
                   "while METRICS_ENABLED=true", s->api_prefix);
            m8_auth_free(app->auth);
            app->auth = NULL;
            m8_middleware_free(&app->mw);
            m8_meta_free(&app->meta);
            return EX_CONFIG_;
        }
    }
    app->booted = true; /* from here m8_app_free frees meta, middleware, docs */
    memset(&app->docs, 0, sizeof app->docs);
    if (add_builtins(app, err, sizeof err) != 0) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
        return EX_CONFIG_;
    }
    for (size_t t = 0; t < app->n_tables; t++) {
        for (size_t i = 0; i < app->table_lens[t]; i++) {
            m8_route r = app->tables[t][i];
            r.flags &= ~M8__ROUTE_BUILTIN;
            if (audit_api_key_route(app, &r, err, sizeof err) != 0 ||
                m8_router_add(&app->router, s->api_prefix, &r, err, sizeof err) != 0) {
                m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
                return EX_CONFIG_;
            }
        }
    }
    app->health.service_name = app->service_name;
    app->health.service_version = app->service_version;
    app->health.settings = s;
    if (m8_docs_init(&app->docs, s, &app->router, app->service_name, app->service_version) != 0) {
        m8_log(M8_LOG_CRITICAL, "cannot build the OpenAPI document");
        return EX_SOFTWARE_;
    }
    for (size_t i = 0; i < app->n_validators; i++) {
        m8_validator *v = &app->validators[i];
        err[0] = '\0';
        if (v->fn(s, err, sizeof err, v->data) != 0) {
            m8_log(M8_LOG_CRITICAL, "startup validator %s failed: %s", v->name,
                   err[0] ? err : "(no reason given)");
            return EX_CONFIG_;
        }
    }
    err[0] = '\0';
    if (m8_db_app_boot(app, err, sizeof err) != 0) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
        return EX_CONFIG_;
    }
    m8_log(M8_LOG_INFO, "fcgi-m8 %s svc=%s v=%s", m8_version(), s->project_name,
           s->service_version);
    return 0;
}

int m8_app_start(m8_app *app)
{
    for (size_t i = 0; i < app->n_startups; i++) {
        int rc = app->startups[i].fn(app, app->startups[i].data);
        if (rc != 0) {
            m8_log(M8_LOG_CRITICAL, "startup hook %zu failed (%d): the service stops", i, rc);
            return rc;
        }
    }
    atomic_store(&app->ready, 1);
    if (app->slot)
        atomic_store(&app->slot->state, M8_SLOT_READY);
    if (app->shm && !atomic_load(&app->shm->daemon_pid))
        atomic_store(&app->shm->ready, 1); /* alone: our readiness is the pool's */
    m8_log(M8_LOG_INFO, "ready");
    return 0;
}

void m8_app_stop(m8_app *app)
{
    for (size_t i = app->n_shutdowns; i-- > 0;)
        app->shutdowns[i].fn(app, app->shutdowns[i].data);
}

/* ------------------------------------------------------------ requests */

static void access_log(const m8_request *req)
{
    if (!m8_log_enabled(M8_LOG_INFO))
        return;
    /* A client can ask for error answers as fast as it likes (bad tokens,
     * bad requests, 503 while a key source is down): their lines are
     * rate-limited per status; the metrics still count every request. */
    m8_log_level lvl = req->status >= 500 ? M8_LOG_ERROR : M8_LOG_INFO;
    char key[32];
    snprintf(key, sizeof key, "request.%d", req->status);
    if (req->status >= 400 && !m8_log_limit_take(key, lvl))
        return;
    m8_buf b;
    m8_buf_init(&b, 16384);
    double ms = (m8_now_mono() - req->t_start) * 1000.0;
    m8_buf_puts(&b, "\"method\":");
    m8_buf_json_str(&b, req->method ? req->method : "", req->method ? strlen(req->method) : 0);
    m8_buf_puts(&b, ",\"route\":");
    const char *route = req->route_label ? req->route_label : "unmatched";
    m8_buf_json_str(&b, route, strlen(route));
    m8_buf_printf(&b, ",\"status\":%d,\"duration_ms\":%.3f,\"request_id\":", req->status, ms);
    const char *rid = req->request_id ? req->request_id : "";
    m8_buf_json_str(&b, rid, strlen(rid));
    if (req->fail_reason) {
        m8_buf_puts(&b, ",\"error\":");
        m8_buf_json_str(&b, req->fail_reason, strlen(req->fail_reason));
    }
    m8_log_fields(lvl, "request", b.data);
    m8_buf_free(&b);
}

static void internal_error(m8_request *req)
{
    /* Drop whatever the handler set: only the generic detail is sent. */
    req->n_res_headers = 0;
    m8_res_error(req, 500, "Internal Server Error");
}

/* Routing, auth and the handler: everything inside CORS. */
static void dispatch(m8_app *app, m8_request *req)
{
    m8_buf allow;
    m8_buf_init(&allow, M8_MAX_PATH_BYTES + 256);
    const m8_route_entry *e = NULL;
    m8_match_result m = m8_router_match(&app->router, req, &e, &allow);
    switch (m) {
    case M8_MATCH_NOT_FOUND:
        m8_res_error(req, 404, "Not Found");
        break;
    case M8_MATCH_METHOD:
        m8_res_error(req, 405, "Method Not Allowed");
        m8_res_set_header(req, "Allow", allow.data ? allow.data : "");
        break;
    case M8_MATCH_REDIRECT: {
        /* Path and query quoted as one URL, as Starlette's RedirectResponse
         * does: a query byte that cannot stand in a header (a control
         * byte) is percent-encoded rather than losing the Location. */
        m8_buf loc;
        m8_buf_init(&loc, 3 * (M8_MAX_PATH_BYTES + M8_MAX_PARAMS_BYTES) + 16);
        const char *target = allow.data ? allow.data : "/";
        int rc = m8_redirect_quote(&loc, target, strlen(target));
        if (!rc && req->query_string && *req->query_string) {
            rc = m8_buf_putc(&loc, '?');
            if (!rc)
                rc = m8_redirect_quote(&loc, req->query_string, strlen(req->query_string));
        }
        if (!rc)
            rc = m8_res_body(req, 307, NULL, "", 0);
        if (!rc)
            rc = m8_res_set_header(req, "Location", loc.data ? loc.data : "/");
        if (rc) {
            m8_req_fail(req, "cannot build the Location of a redirect");
            internal_error(req);
        }
        m8_buf_free(&loc);
        break;
    }
    case M8_MATCH_OK:
        req->route = e;
        req->route_label = e->template;
        if (!(e->flags & M8__ROUTE_BUILTIN) && !atomic_load(&app->ready)) {
            m8_res_error(req, 503, "Service Unavailable");
            m8_res_set_header(req, "Retry-After", "1");
            break;
        }
        if (!m8_auth_check(app->auth, req, e->access))
            break;
        if ((e->flags & M8_ROUTE_JSON_BODY) && m8_req_parse_json(req) != 0)
            break;
        int hrc = e->handler(req, e->data);
        m8_db_app_after_handler(app, hrc != 0 || req->status == 0); /* rollback */
        if (hrc != 0 || req->status == 0) {
            if (!req->fail_reason)
                m8_req_fail(req, "handler for %s %s %s", req->method, e->template,
                            req->status == 0 ? "set no response" : "failed");
            internal_error(req);
        }
        break;
    }
    m8_buf_free(&allow);
}

void m8_app_handle(m8_app *app, m8_request *req)
{
    const m8_middleware *mw = &app->mw;
    m8_mw_request_id(req);
    if (m8_mw_trusted_host(mw, req)) {
        if (!m8_mw_cors_preflight(mw, req)) {
            if (!(app->on_request && app->on_request(req, app->on_request_data) != 0))
                dispatch(app, req);
            if (req->status == 0) {
                m8_req_fail(req, "request hook answered nothing");
                internal_error(req);
            }
            m8_mw_cors_response(mw, req);
        }
    }
    if (req->request_id)
        m8_res_set_header(req, "X-Request-ID", req->request_id);
    m8_mw_security_headers(mw, req);
    access_log(req);
}

/* After each request: the worker's slot (metrics, busy state, count), and
 * max-requests recycling between requests (PITFALLS 15): the serving loop
 * stops accepting, finishes what it has, and the process exits 0. */
static void account(m8_app *app, const m8_request *req)
{
    m8_shm_slot *slot = app->slot;
    if (!slot)
        return;
    if (app->settings && app->settings->metrics_enabled)
        m8_metrics_record(slot, req->method, req->route_label, (unsigned)req->status,
                          m8_now_mono() - req->t_start);
    m8_shm_idle(slot);
    uint64_t n = atomic_fetch_add(&slot->requests, 1) + 1;
    if (app->max_requests && n == app->max_requests && !atomic_exchange(&app->recycling, 1)) {
        atomic_store(&slot->state, M8_SLOT_RETIRING);
        m8_signals_notify(M8_RECYCLE);
    }
}

void m8_app_respond(m8_app *app, m8_request *req, const m8_pair *params, size_t n,
                    const char *body, size_t body_len, int preset_status, m8_buf *out)
{
    req->app = app;
    req->t_start = m8_now_mono();
    if (preset_status == 0) {
        /* Every caller keeps params and body alive until this returns. */
        int rc = m8_req_adopt_params(req, params, n, body, body_len);
        /* An Authorizer request carries the original request's
         * CONTENT_LENGTH but never its body (FastCGI 6.3). */
        const char *cl = rc == 0 && !req->authorizer ? m8_req_param(req, "CONTENT_LENGTH") : NULL;
        long long want = 0;
        if (cl && *cl && (m8_parse_ll(cl, 0, LLONG_MAX, &want) != 0 ||
                          (unsigned long long)want != body_len)) {
            /* a front end that forwards a cut body (mod_proxy_fcgi past
             * LimitRequestBody) must not have it served as complete */
            m8_req_fail(req, "CONTENT_LENGTH %.32s but %zu body bytes arrived", cl, body_len);
            rc = M8_EPARSE;
        }
        if (rc == 0) {
            m8_shm_busy(app->slot, req->method, req->path);
            m8_app_handle(app, req);
        } else {
            preset_status = rc == M8_ENOMEM ? 500 : 400;
        }
    }
    if (preset_status) {
        /* A request we could not read: answer through the outer middleware
         * only (no routing, no handler). */
        if (!req->method)
            req->method = "";
        m8_mw_request_id(req);
        const char *detail = preset_status == 413   ? "Request Entity Too Large"
                             : preset_status == 400 ? "Bad Request"
                                                    : "Internal Server Error";
        m8_res_error(req, preset_status, detail);
        if (req->request_id)
            m8_res_set_header(req, "X-Request-ID", req->request_id);
        m8_mw_security_headers(&app->mw, req);
        access_log(req);
    }
    if (m8_res_render(req, false, out) != 0) {
        m8_buf_reset(out);
        m8_buf_puts(out, "Status: 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                         "Content-Length: 34\r\n\r\n{\"detail\":\"Internal Server Error\"}");
    }
    account(app, req);
}

int m8_app_handle_params(m8_app *app, const m8_pair *params, size_t n, const char *body,
                         size_t body_len, m8_buf *out)
{
    m8_request req;
    m8_req_init(&req, app);
    int status = body_len > app->max_body ? 413 : 0;
    m8_app_respond(app, &req, params, n, body, body_len, status, out);
    m8_req_free(&req);
    return 0;
}

/* ------------------------------------------------------------ main */

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "Usage: %s [options]\n"
            "A FastCGI service built on fcgi-m8 %s.\n\n"
            "  --listen ADDR        serve FastCGI on unix:/path or host:port; without it,\n"
            "                       serve the listening socket on fd 0 (spawn-fcgi, fcgim8d,\n"
            "                       systemd) or one CGI request (GATEWAY_INTERFACE set)\n"
            "  --socket-mode MODE   permissions of a unix socket (octal, default 0660)\n"
            "  --backlog N          listen backlog (default 1024)\n"
            "  --env-file PATH      read settings from this .env file (must exist)\n"
            "  --threads N          request threads (default 4, 1-256)\n"
            "  --shutdown-timeout S seconds to finish requests after SIGTERM (default 30)\n"
            "  --idle-timeout S     close a connection idle this long (default 75; keep it\n"
            "                       above the web server's keep-alive timeout)\n"
            "  --request-deadline S close a connection whose request has not arrived in\n"
            "                       full this long after its first byte (default 30)\n"
            "  --drain-timeout S    after SIGQUIT or --max-requests: serve kept connections\n"
            "                       until the web server closes them, at most this long\n"
            "                       (default 135)\n"
            "  --engine NAME        epoll (default: kept-alive connections hold no thread)\n"
            "                       or libfcgi (one request per connection per thread)\n"
            "  --check              load settings, run config health and the startup\n"
            "                       validators, then exit 0 (ok) or 78 (invalid)\n"
            "  --version            print the version and exit\n"
            "  --help               print this help and exit\n\n"
            "Settings come from NAME_FILE files, the environment and the .env file, in that\n"
            "order of precedence.  See fcgim8(3).\n",
            prog, m8_version());
}

typedef struct startup_ctx {
    m8_app *app;
    int rc;
    atomic_int done;
} startup_ctx;

static void *startup_main(void *arg)
{
    startup_ctx *c = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    c->rc = m8_app_start(c->app);
    atomic_store(&c->done, 1);
    m8_signals_notify(M8_STARTUP_DONE);
    return NULL;
}

/* RFC 3875 4.4: a CGI server appends the words of a QUERY_STRING without
 * '=' (split at '+') to the command line.  They are request input, never
 * options (php-cgi's CVE-2012-1823), and servers escape them differently
 * (Apache adds a backslash before shell characters such as '*' and passes bytes
 * such as %ff decoded but unchecked), so comparing words is not enough:
 * when GATEWAY_INTERFACE is set, the last N arguments, N being the number
 * of query words, are dropped unread whatever they hold (all of them when
 * there are fewer arguments than words).  Returns the new argc. */
static int cgi_strip_search_words(int argc)
{
    const char *qs = getenv("QUERY_STRING");
    if (!getenv("GATEWAY_INTERFACE") || !qs || !*qs || strchr(qs, '=') || argc < 2)
        return argc;
    size_t words = 1;
    for (const char *p = qs; *p; p++)
        words += *p == '+';
    if (words > (size_t)(argc - 1))
        return 1;
    return argc - (int)words;
}

/* A stateful service running alone (spawn-fcgi, --listen: no fcgim8d
 * sidecar) may hold the event stream itself: FCGIM8_EVENT_STREAM=1 opts in
 * (each process then holds its own stream and table). */
typedef struct own_stream {
    m8_evclient *ev;
    pthread_t thread;
    atomic_int stop;
} own_stream;

static void *own_stream_main(void *arg)
{
    own_stream *o = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    m8_evclient_run(o->ev, &o->stop);
    return NULL;
}

static void own_stream_start(m8_app *app, own_stream *o)
{
    const char *opt = getenv("FCGIM8_EVENT_STREAM");
    atomic_init(&o->stop, 0);
    o->ev = NULL;
    if (!opt || strcmp(opt, "1") != 0 || !app->shm || atomic_load(&app->shm->daemon_pid) ||
        !m8_evclient_wanted(app->settings))
        return;
    char err[512] = "";
    o->ev = m8_evclient_new(app->settings, app->shm, err, sizeof err);
    if (!o->ev) {
        m8_log(M8_LOG_ERROR, "event stream: %s; revocations arrive through introspection only",
               err);
    } else if (pthread_create(&o->thread, NULL, own_stream_main, o) != 0) {
        m8_log(M8_LOG_ERROR, "event stream: cannot start its thread");
        m8_evclient_free(o->ev);
        o->ev = NULL;
    }
}

static void own_stream_stop(own_stream *o)
{
    if (!o->ev)
        return;
    atomic_store(&o->stop, 1);
    pthread_join(o->thread, NULL);
    m8_evclient_free(o->ev);
    o->ev = NULL;
}

/* A retiring worker (reload, scale-down, --max-requests) stops accepting
 * at once, and keeps serving the connections it has until the web server
 * closes them: closing a kept connection ourselves races the web server
 * writing its next request on it (nginx: "writev() failed (32: Broken
 * pipe) while sending request to upstream", a 502 for a POST).  The web
 * server's keep-alive limits (nginx keepalive_time, keepalive_timeout)
 * end them; drain_s bounds the wait, SIGTERM cuts it short.  See fcgim8d(8)
 * "Reload without failed requests". */
static void drain(m8_server *srv, double drain_s)
{
    m8_server_retire(srv);
    double until = m8_now_mono() + drain_s;
    int left;
    while ((left = m8_server_conns(srv)) > 0 && m8_now_mono() < until) {
        int sig = m8_signals_wait(250);
        if (sig == SIGTERM || sig == SIGINT) {
            m8_log(M8_LOG_INFO, "signal %d: stopping; closing the %d kept connection(s) left", sig,
                   left);
            return;
        }
    }
    if (left > 0)
        m8_log(M8_LOG_WARNING,
               "--drain-timeout %.0f s passed with %d kept connection(s) still open: closing them",
               drain_s, left);
}

int m8_app_main(m8_app *app, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"socket-mode", required_argument, NULL, 'm'},
        {"backlog", required_argument, NULL, 'b'},
        {"env-file", required_argument, NULL, 'e'},
        {"threads", required_argument, NULL, 't'},
        {"shutdown-timeout", required_argument, NULL, 's'},
        {"engine", required_argument, NULL, 'E'},
        {"idle-timeout", required_argument, NULL, 1001},
        {"request-deadline", required_argument, NULL, 1002},
        {"drain-timeout", required_argument, NULL, 1003},
        {"check", no_argument, NULL, 'c'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prog = argc > 0 && argv[0] ? argv[0] : "service";
    const char *listen_spec = NULL, *env_file = NULL;
    long long threads = 4, mode = 0660, backlog = 1024, shutdown_s = 30;
    m8_conn_limits limits = {M8_IDLE_TIMEOUT_DEFAULT_S, M8_REQUEST_DEADLINE_DEFAULT_S};
    double drain_s = M8_DRAIN_TIMEOUT_DEFAULT_S;
    bool check = false, libfcgi = false;
    int c, idx = 0;
    if (!m8_is_listen_socket(0))
        argc = cgi_strip_search_words(argc);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        int bad = 0;
        char *end;
        switch (c) {
        case 'l': listen_spec = optarg; break;
        case 'e': env_file = optarg; break;
        case 'c': check = true; break;
        case 'E':
            libfcgi = strcmp(optarg, "libfcgi") == 0;
            bad = !libfcgi && strcmp(optarg, "epoll") != 0;
            break;
        case 't': bad = m8_parse_ll(optarg, 1, 256, &threads); break;
        case 'b': bad = m8_parse_ll(optarg, 1, 65535, &backlog); break;
        case 's': bad = m8_parse_ll(optarg, 0, 3600, &shutdown_s); break;
        case 1001: bad = m8_parse_double(optarg, 0.1, 86400, &limits.idle_timeout_s); break;
        case 1002: bad = m8_parse_double(optarg, 0.1, 3600, &limits.request_deadline_s); break;
        case 1003: bad = m8_parse_double(optarg, 0, 86400, &drain_s); break;
        case 'm':
            errno = 0;
            mode = strtoll(optarg, &end, 8);
            bad = errno || *end || !*optarg || mode < 0 || mode > 0777;
            break;
        case 'V':
            printf("%s (fcgi-m8 %s)\n", app->service_name ? app->service_name : prog,
                   m8_version());
            m8_app_free(app);
            return 0;
        case 'h':
            usage(stdout, prog);
            m8_app_free(app);
            return 0;
        default:
            fprintf(stderr, "%s: unknown option %s (see --help)\n", prog, argv[optind - 1]);
            m8_app_free(app);
            return EX_USAGE_;
        }
        if (bad) {
            fprintf(stderr, "%s: bad value \"%s\" for --%s (see --help)\n", prog, optarg,
                    opts[idx].name);
            m8_app_free(app);
            return EX_USAGE_;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\" (see --help)\n", prog, argv[optind]);
        m8_app_free(app);
        return EX_USAGE_;
    }

    m8_settings_source src = {.env = environ, .env_file = env_file,
                              .uses_database = m8_db_app_required(app)};
    int rc = m8_app_boot(app, &src);
    if (rc != 0 || check) {
        if (rc == 0)
            m8_log(M8_LOG_INFO, "configuration OK");
        m8_app_free(app);
        return rc;
    }

    int listen_fd = -1;
    char err[512] = "";
    if (listen_spec) {
        listen_fd = m8_listen(listen_spec, (int)backlog, (unsigned)mode, err, sizeof err);
        if (listen_fd < 0) {
            m8_log(M8_LOG_CRITICAL, "%s", err);
            m8_app_free(app);
            return EX_SOFTWARE_;
        }
    } else if (m8_is_listen_socket(0)) {
        listen_fd = 0;
    } else if (getenv("GATEWAY_INTERFACE")) {
        m8_signals_install(); /* SIGPIPE ignored: a gone client is a write error */
        rc = m8_app_start(app);
        if (rc == 0)
            rc = m8_cgi_serve(app, app->max_body);
        else
            rc = EX_SOFTWARE_;
        m8_app_stop(app);
        m8_app_free(app);
        return rc;
    } else {
        fprintf(stderr,
                "%s: nothing to serve: give --listen, start under spawn-fcgi/fcgim8d (a "
                "listening socket on fd 0), or run as CGI (see --help)\n",
                prog);
        m8_app_free(app);
        return EX_USAGE_;
    }

    if (m8_signals_install() < 0) {
        m8_log(M8_LOG_CRITICAL, "cannot install signal handlers: %s", strerror(errno));
        m8_app_free(app);
        return EX_SOFTWARE_;
    }
    if (libfcgi) {
        /* Classic engine: startup runs first, then libfcgi's accept loop. */
        rc = m8_app_start(app);
        if (rc == 0) {
            m8_log(M8_LOG_INFO, "serving FastCGI (libfcgi engine) with %lld threads", threads);
            rc = m8_libfcgi_serve(app, listen_fd, (int)threads, app->max_body) == 0 ? 0
                                                                                  : EX_SOFTWARE_;
        } else {
            rc = EX_SOFTWARE_;
        }
        m8_app_stop(app);
        if (listen_spec && strncmp(listen_spec, "unix:", 5) == 0)
            unlink(listen_spec + 5);
        m8_app_free(app);
        return rc;
    }
    /* Startup runs before serving when there is nothing to wait for, and
     * when this worker joins a pool that already serves (a respawn, reload
     * or scale-up under fcgim8d): its siblings answer meanwhile, so it
     * takes no request it would have to refuse with 503.  Otherwise it
     * serves at once and health says "initializing" until ready. */
    bool start_first = app->n_startups == 0 ||
                       (app->shm && atomic_load(&app->shm->daemon_pid) &&
                        atomic_load(&app->shm->ready));
    startup_ctx sc = {.app = app};
    atomic_init(&sc.done, 0);
    if (start_first) {
        sc.rc = m8_app_start(app);
        atomic_store(&sc.done, 1);
        if (sc.rc != 0) {
            m8_app_free(app);
            return EX_SOFTWARE_;
        }
    }
    m8_server *srv =
        m8_server_start(app, listen_fd, (int)threads, app->max_body, &limits, err, sizeof err);
    if (!srv) {
        m8_log(M8_LOG_CRITICAL, "%s", err);
        if (start_first)
            m8_app_stop(app);
        m8_app_free(app);
        return EX_SOFTWARE_;
    }
    m8_log(M8_LOG_INFO, "serving FastCGI on %s with %lld threads",
           listen_spec ? listen_spec : "the inherited socket (fd 0)", threads);
    own_stream stream;
    own_stream_start(app, &stream);

    pthread_t st;
    bool st_running = false;
    if (!start_first) {
        st_running = pthread_create(&st, NULL, startup_main, &sc) == 0;
        if (!st_running) {
            sc.rc = EX_SOFTWARE_;
            atomic_store(&sc.done, 1);
        }
    }
    int exit_code = 0;
    bool retire = false;
    for (;;) {
        int sig = m8_signals_wait(-1);
        if (sig == SIGTERM || sig == SIGINT) {
            m8_log(M8_LOG_INFO, "signal %d: draining", sig);
            break;
        }
        if (sig == SIGQUIT) {
            m8_log(M8_LOG_INFO, "signal %d: retiring", sig);
            retire = true;
            break;
        }
        if (sig == M8_RECYCLE) {
            m8_log(M8_LOG_INFO, "served %llu requests (--max-requests): recycling",
                   (unsigned long long)app->max_requests);
            retire = true;
            break;
        }
        if (sig == M8_STARTUP_DONE && sc.rc != 0) {
            exit_code = EX_SOFTWARE_;
            break;
        }
    }
    if (app->slot)
        atomic_store(&app->slot->state, M8_SLOT_RETIRING);
    if (retire)
        drain(srv, drain_s);
    m8_server_stop(srv, (double)shutdown_s);
    own_stream_stop(&stream);
    bool started = atomic_load(&sc.done) && sc.rc == 0;
    if (st_running && atomic_load(&sc.done))
        pthread_join(st, NULL);
    if (started)
        m8_app_stop(app);
    if (listen_spec && strncmp(listen_spec, "unix:", 5) == 0)
        unlink(listen_spec + 5);
    m8_log(M8_LOG_INFO, "stopped");
    if (st_running && !atomic_load(&sc.done)) {
        /* A startup hook is still running: it cannot be cancelled safely,
         * so leave without freeing what it may still use. */
        return exit_code;
    }
    m8_app_free(app);
    return exit_code;
}
