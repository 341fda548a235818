/* app.h - m8_app: assembly and boot (app.c), the request pipeline in the
 * reference middleware order (pipeline.c), its database (database.c), the
 * standard command line (cli.c) and serving (run.c, over the engines of
 * engine.h).  The in-process harness (tests/unit/test_app.c) boots an app
 * from an env array and drives requests through m8_app_handle() without
 * sockets. */
#ifndef M8_APP_H
#define M8_APP_H

#include <pthread.h>
#include <stdatomic.h>

#include "auth/auth.h"
#include "builtin/docs.h"
#include "builtin/health.h"
#include "builtin/meta.h"
#include "config/settings.h"
#include "http/middleware.h"
#include "http/router.h"
#include "shm/shm.h"

struct m8_db_pool;
struct m8_engine_opts;

typedef struct m8_validator {
    char *name;
    m8_validator_fn fn;
    void *data;
} m8_validator;
typedef struct m8_startup_hook {
    m8_startup_fn fn;
    void *data;
} m8_startup_hook;
typedef struct m8_shutdown_hook {
    m8_shutdown_fn fn;
    void *data;
} m8_shutdown_hook;

/* The issuer's revocation check of an access token on its own routes
 * (doc/issuer.md#own-routes): 0 when jti is not revoked, 1 when it is,
 * M8_EAGAIN when its store is unavailable (then ACCESS_REVOCATION_FAILURE_MODE
 * decides).  Runs on request threads. */
typedef int (*m8_issuer_revoked_fn)(m8_request *req, const char *jti, void *data);

struct m8_app {
    char *service_name, *service_version;
    const m8_route **tables;
    size_t *table_lens;
    size_t n_tables;
    size_t max_body;
    m8_validator *validators;
    size_t n_validators;
    m8_startup_hook *startups;
    size_t n_startups;
    m8_shutdown_hook *shutdowns;
    size_t n_shutdowns;
    m8_request_hook on_request;
    void *on_request_data;
    m8_auth_hooks auth_hooks;
    struct m8_db_pool *db; /* m8_app_use_database, or NULL */
    m8_startup_fn db_on_open;
    void *db_on_open_data; /* m8_app_on_database */

    /* built at boot */
    m8_settings *settings;
    m8_router router; /* built-in routes first, then the service's */
    m8_middleware mw;
    m8_auth *auth;             /* token verification (keys parsed once) */
    struct m8_revocation *rev; /* stateful mode: the revocation check, or NULL */
    struct m8_apikey *apikey;  /* API keys (doc/wire.md#api-key-introspection) or NULL */
    m8_health health;
    m8_meta meta;
    m8_docs docs;
    bool booted;
    atomic_int ready;
    /* the shared segment (fcgim8d's, or a private one) and our slot in it */
    m8_shm *shm;
    m8_shm_slot *slot;
    uint64_t max_requests; /* FCGIM8_MAX_REQUESTS from fcgim8d; 0 = none */
    bool authorizer;       /* m8_app_set_authorizer: serve the FastCGI AUTHORIZER role */
    bool cors_off;         /* m8_app_set_cors(app, false) */
    char **cors_kept;      /* with cors_off: ALLOWED_ORIGINS, taken from the middleware */
    size_t n_cors_kept;
    atomic_int recycling; /* max_requests reached: draining */
    /* m8_app_set_issuer: the app is fcgim8-issuer (doc/issuer.md#own-routes) */
    bool issuer;
    m8_issuer_revoked_fn issuer_revoked;
    void *issuer_revoked_data;
    /* m8_app_require_scope: the API-key scopes routes require (route_scope.c) */
    struct m8_route_scope *scopes;
    size_t n_scopes;
    /* m8_app_describe_route: query and form params for OpenAPI (route_doc.c) */
    struct m8_route_doc *route_docs;
    size_t n_route_docs;
};

/* The most m8_app_require_scope declarations of one app. */
#define M8_APP_MAX_ROUTE_SCOPES 1024u

/* At boot, for route r of a table: *scope = the scope declared for its
 * method and path (NULL: none); M8_ECONFIG (err) when one is declared for
 * a route that takes no X-API-Key. */
M8_INTERNAL int m8__app_route_scope(m8_app *app, const m8_route *r, const char **scope, char *err,
                                    size_t errlen);
/* At boot, after every table: M8_ECONFIG (err) for a declaration that
 * matched no route. */
M8_INTERNAL int m8__app_route_scopes_unused(const m8_app *app, char *err, size_t errlen);
/* This worker is ready, and so is its pool under fcgim8d (every first
 * worker): what ends health's "initializing" (doc/responses.md#health). */
M8_INTERNAL bool m8__app_pool_ready(const m8_app *app);
M8_INTERNAL void m8__app_route_scopes_free(m8_app *app);

/* The most m8_app_describe_route declarations of one app, and params of one. */
#define M8_APP_MAX_ROUTE_DOCS 1024u
#define M8_APP_MAX_ROUTE_PARAMS 32u

/* At boot, for route r of a table: *doc = the description declared for its
 * method and path (NULL: none); M8_ECONFIG (err) for form fields on a
 * JSON-body route. */
M8_INTERNAL int m8__app_route_doc(m8_app *app, const m8_route *r, const struct m8_route_doc **doc,
                                  char *err, size_t errlen);
/* At boot, after every table: M8_ECONFIG (err) for a description that
 * matched no route. */
M8_INTERNAL int m8__app_route_docs_unused(const m8_app *app, char *err, size_t errlen);
M8_INTERNAL void m8__app_route_docs_free(m8_app *app);

/* Route flag of the built-in routes (app.c): served before the app is ready. */
#define M8__ROUTE_BUILTIN (1u << 30)

/* Pseudo-signal (m8_signals_notify): max-requests reached, drain and exit 0. */
#define M8_RECYCLE 251

/* Boots without serving: settings from src, config health (fatal => 78),
 * meta, credential reuse, router, middleware, docs, validators.  Returns 0,
 * or the exit status (78) after logging one line per finding. */
M8_INTERNAL int m8_app_boot(m8_app *app, const m8_settings_source *src);

/* Runs the startup hooks and marks the app ready; non-zero from a hook is
 * returned (the service then stops). */
M8_INTERNAL int m8_app_start(m8_app *app);
M8_INTERNAL void m8_app_stop(m8_app *app);

/* Serves one request: req must already hold its input (m8_req_from_params).
 * Runs the whole pipeline and leaves the response in req; logs the access
 * line.  Never fails: errors become responses. */
M8_INTERNAL void m8_app_handle(m8_app *app, m8_request *req);

/* Builds req from raw params and body (not copied: the caller keeps them,
 * and the body NUL-terminated, alive until this returns), handles it, and
 * renders the CGI response into out.  preset_status (400 malformed params, 413 body too
 * large) skips routing and answers that status through the middleware. */
M8_INTERNAL void m8_app_respond(m8_app *app, m8_request *req, const m8_pair *params, size_t n,
                                const char *body, size_t body_len, int preset_status, m8_buf *out);

/* Convenience for the harness: builds a request from params + body, handles
 * it and renders the CGI response text into out. */
M8_INTERNAL int m8_app_handle_params(m8_app *app, const m8_pair *params, size_t n, const char *body,
                                     size_t body_len, m8_buf *out);

/* The serving options for an engine that answers through this app
 * (m8_app_respond as the callback, the app's max_body and shared segment,
 * and whether the AUTHORIZER role is served); threads 1, default limits. */
M8_INTERNAL void m8_app_engine_opts(m8_app *app, struct m8_engine_opts *o);

/* ---- options and request accessors for programs built on the app
 * (fcgim8-gate): they never reach into the structs ---- */

/* Serve the FastCGI AUTHORIZER role too (before m8_app_main; given to the
 * engines through m8_app_engine_opts).  Off by default: a service refuses
 * such requests. */
M8_INTERNAL void m8_app_set_authorizer(m8_app *app, bool on);
/* Marks the app as fcgim8-issuer (before m8_app_main): the issuer's own
 * settings are read and checked (doc/issuer.md#settings), and its protected
 * routes answer as fa-auth-m8's do, with revoked (may be NULL) as the
 * revocation check in stateful mode (doc/issuer.md#own-routes). */
M8_INTERNAL void m8_app_set_issuer(m8_app *app, m8_issuer_revoked_fn revoked, void *data);
/* CORS off (before boot): no preflight is answered (every one is 400) and
 * no response gets CORS headers; the configured origins stay readable. */
M8_INTERNAL void m8_app_set_cors(m8_app *app, bool on);
/* With CORS off, after boot: the ALLOWED_ORIGINS list (borrowed, valid
 * until the app is freed); else NULL with *n 0. */
M8_INTERNAL char *const *m8_app_cors_origins(const m8_app *app, size_t *n);

/* Resolves the request's credential among kinds (M8_ROUTE_CRED_*; 0 = the
 * default of access) with the app's verifier (m8_auth_resolve; cookie NULL
 * = ACCESS_TOKEN_COOKIE_NAME).  True when m8_req_user(req) is the caller;
 * otherwise the refusal is set on req.  *used: the credential taken. */
struct m8_credential;
M8_INTERNAL bool m8_app_authenticate(m8_request *req, m8_access access, unsigned kinds,
                                     const char *cookie, struct m8_credential *used);

/* The status set so far (0 = none yet). */
M8_INTERNAL int m8_req_status(const m8_request *req);
/* The request came in the FastCGI AUTHORIZER role. */
M8_INTERNAL bool m8_req_is_authorizer(const m8_request *req);
/* The reason given to m8_req_fail, or NULL (never sent to the client). */
M8_INTERNAL const char *m8_req_fail_reason(const m8_request *req);
/* The route label of the access log and metrics (borrowed: a static
 * string or one that outlives the request). */
M8_INTERNAL void m8_req_set_route_label(m8_request *req, const char *label);
/* The API-key scope the next m8_app_authenticate requires of an X-API-Key
 * (a gate rule's scope=), or NULL (doc/issuer.md#api-key-scopes-and-format). */
M8_INTERNAL void m8_req_set_api_key_scope(m8_request *req, const char *scope);
/* The response body set so far (NUL-terminated, borrowed), or NULL. */
M8_INTERNAL const char *m8_res_body_text(const m8_request *req);

/* ---- the app's database (database.c) ---- */

/* True when the service said M8_DB_REQUIRED (DB_* become required,
 * doc/settings.md). */
M8_INTERNAL bool m8_db_app_required(const m8_app *app);
/* At boot, after settings: opens the handle pool when the service asked
 * for a database and the settings name one, and adds the "database"
 * health check and the m8_app_on_database hook.  0, or an error with one
 * line in err (a configuration error). */
M8_INTERNAL int m8_db_app_boot(m8_app *app, char *err, size_t errlen);
/* After each handler, on its thread: rolls back a transaction left open. */
M8_INTERNAL void m8_db_app_after_handler(m8_app *app, bool failed);
/* Closes every connection (m8_app_free). */
M8_INTERNAL void m8_db_app_free(m8_app *app);

#endif
