/* app.c - m8_app: assembly (the setters a service calls), the built-in
 * routes, boot (settings, config health, credentials, router, middleware,
 * docs, validators), and the startup and shutdown hooks. */
#include "app/app.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/apikey.h"
#include "auth/auth.h"
#include "auth/credential.h"
#include "auth/revocation.h"
#include "builtin/metrics.h"
#include "config/confighealth.h"
#include "core/exitcodes.h"
#include "core/log.h"

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
    m8_strv_free(app->cors_kept, app->n_cors_kept);
    m8_shm_unmap(app->shm);
    m8_router_free(&app->router);
    m8_health_free(&app->health);
    m8_settings_free(app->settings);
    for (size_t i = 0; i < app->n_validators; i++)
        free(app->validators[i].name);
    free(app->validators);
    free(app->startups);
    free(app->shutdowns);
    m8__app_route_scopes_free(app);
    m8__app_route_docs_free(app);
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
bool m8__app_pool_ready(const m8_app *app)
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
    return m8_health_handle(&app->health, req, m8__app_pool_ready(app));
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
 * the pool (doc/metrics.md#endpoint), gated by METRICS_SCRAPE_CREDENTIAL. */
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
        /* doc/metrics.md#endpoint: {API_PREFIX}/metrics; the reference's root /metrics as well. */
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
        /* fa-auth-m8 2.x mounts /ping under API_PREFIX only (doc/issuer.md#the-service) */
        if (app->issuer && (core[i].flags & M8_ROUTE_ABSOLUTE))
            continue;
        if (m8_router_add(&app->router, s->api_prefix, &core[i], err, errlen) != 0)
            return M8_ECONFIG;
    }
    return 0;
}

/* ------------------------------------------------------------ boot */

/* The credential kinds of a route (M8_ROUTE_CRED_*) fit its access and the
 * settings (fcgim8(3), "Credential kinds"). */
static int audit_cred_kinds(const m8_app *app, const m8_route *r, char *err, size_t errlen)
{
    unsigned k = r->flags & M8_ROUTE_CRED_MASK;
    const char *m = r->method ? r->method : "?", *p = r->path ? r->path : "?";
    bool by_key = r->access == M8_API_KEY_READER || r->access == M8_API_KEY_WRITER;
    const char *why = NULL;
    if (!k)
        return 0;
    if (r->access == M8_PUBLIC)
        why = "is M8_PUBLIC but states credential kinds (M8_ROUTE_CRED_*): a public route "
              "takes no credential";
    else if (by_key && (k & ~M8_ROUTE_CRED_API_KEY))
        why = "is M8_API_KEY_READER/WRITER (an X-API-Key) but also states a bearer or cookie "
              "kind: use M8_READER/M8_WRITER with the kinds it accepts";
    else if ((k & M8_ROUTE_CRED_API_KEY) && (r->access == M8_ADMIN || r->access == M8_SUPERUSER))
        why = "accepts an X-API-Key on an admin or superuser route: an API key grants reader "
              "or writer only";
    else if ((k & M8_ROUTE_CRED_COOKIE) && !m8_auth_cookie_name(app->auth))
        why = "accepts the cookie kind (M8_ROUTE_CRED_COOKIE) but ACCESS_TOKEN_COOKIE_NAME is "
              "not set";
    else if ((k & M8_ROUTE_CRED_COOKIE) && !m8_http_method_safe(r->method))
        why = "accepts the cookie kind on an unsafe method: a browser sends the cookie whoever "
              "made the page (cross-site request forgery); take a bearer token there";
    if (!why)
        return 0;
    snprintf(err, errlen, "route %s %s %s", m, p, why);
    return M8_ECONFIG;
}

/* doc/wire.md#enabling-api-keys and doc/responses.md#api-key-failures: an X-API-Key route needs API
 * keys enabled and a capability the issuer's keys can carry. */
static int audit_api_key_route(const m8_app *app, const m8_route *r, char *err, size_t errlen)
{
    bool key_kind = r->access != M8_PUBLIC && (r->flags & M8_ROUTE_CRED_API_KEY);
    if (r->access != M8_API_KEY_READER && r->access != M8_API_KEY_WRITER && !key_kind)
        return 0;
    if (!app->apikey) {
        snprintf(err, errlen,
                 "route %s %s takes an X-API-Key but "
                 "API_KEY_INTROSPECTION_ENABLED is false",
                 r->method, r->path);
        return M8_ECONFIG;
    }
    bool writer = r->access == M8_API_KEY_WRITER || r->access == M8_WRITER;
    const char *why =
        m8_apikey_audit_route(r->method, r->path, writer ? "writer" : "reader", NULL, err, errlen);
    return why ? M8_ECONFIG : 0;
}

int m8_app_boot(m8_app *app, const m8_settings_source *src)
{
    if (app->booted)
        return 0;
    m8_settings_source own;
    if (app->issuer && !src->issuer) { /* the issuer's settings whoever boots it */
        own = *src;
        own.issuer = true;
        src = &own;
    }
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
        return M8_EX_CONFIG;
    }
    if (m8_middleware_init(&app->mw, s, err, sizeof err) != 0) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
        m8_meta_free(&app->meta);
        return M8_EX_CONFIG;
    }
    if (app->cors_off) {
        /* m8_app_set_cors(app, false): no preflight answered, no CORS
         * header; the list stays readable (m8_app_cors_origins). */
        app->cors_kept = app->mw.origins;
        app->n_cors_kept = app->mw.n_origins;
        app->mw.origins = NULL;
        app->mw.n_origins = 0;
    }
    const char *ck = s->access_token_cookie_name;
    if (ck && *ck && !m8_cookie_name_ok(ck)) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: ACCESS_TOKEN_COOKIE_NAME is not a cookie name (a token "
                                "of at most 128 bytes)");
        m8_middleware_free(&app->mw);
        m8_meta_free(&app->meta);
        return M8_EX_CONFIG;
    }
    if (ck && *ck && !m8_cookie_name_host_prefixed(ck))
        m8_log(M8_LOG_WARNING,
               "ACCESS_TOKEN_COOKIE_NAME %s has no __Host- prefix: a sibling subdomain or a "
               "plain-http page can set a cookie of that name for this site",
               ck);
    app->auth = m8_auth_new(s, err, sizeof err);
    if (!app->auth) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: token verification: %s", err);
        m8_middleware_free(&app->mw);
        m8_meta_free(&app->meta);
        return M8_EX_CONFIG;
    }
    if (app->shm && atomic_load(&app->shm->jwks.served)) {
        m8_auth_use_shared_jwks(app->auth, app->shm);
        m8_log(M8_LOG_DEBUG, "JWKS: using the supervisor's shared key set");
    } else if (app->shm) {
        m8_auth_report_jwks(app->auth, app->shm);
    }
    if (app->issuer) /* its own routes answer as doc/issuer.md#own-routes says */
        m8_auth_use_issuer(
            app->auth, s->token_mode == M8_MODE_STATEFUL ? app->issuer_revoked : NULL,
            app->issuer_revoked_data,
            !s->auth_strict_mode && s->access_revocation_failure_mode == M8_FAIL_OPEN);
    if (!app->issuer && m8_revocation_wanted(s)) { /* the issuer never asks itself over HTTP */
        app->rev = m8_revocation_new(s, app->shm, err, sizeof err);
        if (!app->rev) {
            m8_log(M8_LOG_CRITICAL, "CONFIG: revocation check: %s", err);
            m8_auth_free(app->auth);
            app->auth = NULL;
            m8_middleware_free(&app->mw);
            m8_meta_free(&app->meta);
            return M8_EX_CONFIG;
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
            return M8_EX_CONFIG;
        }
        m8_auth_use_apikey(app->auth, app->apikey);
    }
    m8_auth_hooks hooks = {hook_success, hook_failure, app};
    m8_auth_set_hooks(app->auth, &hooks);
    if (s->metrics_enabled) {
        char pfx[M8_METRICS_MAX_PREFIX];
        if (m8_metrics_prefix(s->api_prefix, pfx, sizeof pfx) != 0) {
            m8_log(M8_LOG_CRITICAL,
                   "CONFIG: API_PREFIX %s gives no valid metric name prefix "
                   "while METRICS_ENABLED=true",
                   s->api_prefix);
            m8_auth_free(app->auth);
            app->auth = NULL;
            m8_middleware_free(&app->mw);
            m8_meta_free(&app->meta);
            return M8_EX_CONFIG;
        }
    }
    app->booted = true; /* from here m8_app_free frees meta, middleware, docs */
    memset(&app->docs, 0, sizeof app->docs);
    if (add_builtins(app, err, sizeof err) != 0) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
        return M8_EX_CONFIG;
    }
    for (size_t t = 0; t < app->n_tables; t++) {
        for (size_t i = 0; i < app->table_lens[t]; i++) {
            m8_route r = app->tables[t][i];
            r.flags &= ~M8__ROUTE_BUILTIN;
            const char *scope = NULL;
            const m8_route_doc *doc = NULL;
            if (audit_cred_kinds(app, &r, err, sizeof err) != 0 ||
                audit_api_key_route(app, &r, err, sizeof err) != 0 ||
                m8__app_route_scope(app, &r, &scope, err, sizeof err) != 0 ||
                m8__app_route_doc(app, &r, &doc, err, sizeof err) != 0 ||
                m8_router_add(&app->router, s->api_prefix, &r, err, sizeof err) != 0) {
                m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
                return M8_EX_CONFIG;
            }
            app->router.routes[app->router.n - 1].scope = scope;
            app->router.routes[app->router.n - 1].doc = doc;
        }
    }
    if (m8__app_route_scopes_unused(app, err, sizeof err) != 0 ||
        m8__app_route_docs_unused(app, err, sizeof err) != 0) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
        return M8_EX_CONFIG;
    }
    app->health.service_name = app->service_name;
    app->health.service_version = app->service_version;
    app->health.settings = s;
    if (m8_docs_init(&app->docs, s, &app->router, app->service_name, app->service_version) != 0) {
        m8_log(M8_LOG_CRITICAL, "cannot build the OpenAPI document");
        return M8_EX_SOFTWARE;
    }
    for (size_t i = 0; i < app->n_validators; i++) {
        m8_validator *v = &app->validators[i];
        err[0] = '\0';
        if (v->fn(s, err, sizeof err, v->data) != 0) {
            m8_log(M8_LOG_CRITICAL, "startup validator %s failed: %s", v->name,
                   err[0] ? err : "(no reason given)");
            return M8_EX_CONFIG;
        }
    }
    err[0] = '\0';
    if (m8_db_app_boot(app, err, sizeof err) != 0) {
        m8_log(M8_LOG_CRITICAL, "CONFIG: %s", err);
        return M8_EX_CONFIG;
    }
    m8_log(M8_LOG_INFO, "fcgi-m8 %s svc=%s v=%s", m8_version(), s->project_name,
           s->service_version);
    return 0;
}

void m8_app_set_authorizer(m8_app *app, bool on)
{
    if (app)
        app->authorizer = on;
}

void m8_app_set_issuer(m8_app *app, m8_issuer_revoked_fn revoked, void *data)
{
    if (!app)
        return;
    app->issuer = true;
    app->issuer_revoked = revoked;
    app->issuer_revoked_data = data;
}

void m8_app_set_cors(m8_app *app, bool on)
{
    if (app)
        app->cors_off = !on;
}

char *const *m8_app_cors_origins(const m8_app *app, size_t *n)
{
    *n = app && app->cors_off ? app->n_cors_kept : 0;
    return app && app->cors_off ? app->cors_kept : NULL;
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
