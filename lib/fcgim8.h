/*
 * fcgim8.h - the public API of libfcgim8.
 *
 * A service builds an m8_app, gives it a route table, health checks,
 * startup validators and lifespan hooks, and hands control to
 * m8_app_main(), which reads the settings, runs config health and serves
 * FastCGI (or CGI) until SIGTERM.  See fcgim8(3).
 *
 * Ownership: strings passed in are copied unless said otherwise; strings
 * returned from an m8_request are borrowed and valid until the request ends.
 */
#ifndef FCGIM8_H
#define FCGIM8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define M8_EXTERN __attribute__((visibility("default")))
#else
#define M8_EXTERN
#endif

#define M8_VERSION_STRING "0.1.0"

struct json_object;

/* ------------------------------------------------------------------ errors */

/* Every fallible call returns 0 or one of these (negative) codes. */
typedef enum m8_err {
    M8_OK = 0,
    M8_ENOMEM = -1,   /* out of memory */
    M8_EINVAL = -2,   /* invalid argument */
    M8_ETOOBIG = -3,  /* a bounded buffer or input exceeded its limit */
    M8_EPARSE = -4,   /* malformed input */
    M8_EIO = -5,      /* an I/O error (errno tells more) */
    M8_ECONFIG = -6,  /* invalid configuration */
    M8_ENOTFOUND = -7, /* no such item */
    M8_ESTATE = -8,   /* call not allowed in the current state */
    M8_EAGAIN = -9,   /* try again */
    M8_EDEPTH = -10,  /* JSON nested too deeply */
} m8_err;

/* A static English description of an m8_err code. */
M8_EXTERN const char *m8_strerror(int err);

/* The library version, e.g. "0.1.0". */
M8_EXTERN const char *m8_version(void);

/* ------------------------------------------------------------------ types */

typedef struct m8_app m8_app;
typedef struct m8_request m8_request;
typedef struct m8_settings m8_settings;
typedef struct m8_health_report m8_health_report;

/* Who may call a route.  M8_ACCESS_UNSET (the zero value) is refused at boot,
 * so every route states its requirement. */
typedef enum m8_access {
    M8_ACCESS_UNSET = 0,
    M8_PUBLIC,      /* no credentials */
    M8_USER,        /* any authenticated, active user */
    M8_READER,      /* role >= reader */
    M8_WRITER,      /* role >= writer */
    M8_ADMIN,       /* role >= admin */
    M8_SUPERUSER,   /* role superadmin and is_superuser */
    /* An X-API-Key resolved through the issuer (API_KEY_INTROSPECTION_ENABLED,
     * CONTRACT B 4): the key's owner with the reader / writer capability
     * (a writer key is read_write).  m8_req_user() gives the owner (id,
     * role, is_superuser; no email).  Refused at boot when API keys are off. */
    M8_API_KEY_READER,
    M8_API_KEY_WRITER,
} m8_access;

/* A handler fills the response of req.  Return 0; any other value makes the
 * request a 500 "Internal Server Error" (call m8_req_fail() first to log
 * why; the reason is never sent to the client). */
typedef int (*m8_handler)(m8_request *req, void *data);

/* Route flags. */
enum {
    M8_ROUTE_ABSOLUTE = 1u << 0, /* path is not under API_PREFIX */
    M8_ROUTE_JSON_BODY = 1u << 1, /* body must be JSON (else 422), see m8_req_json */
    M8_ROUTE_HIDDEN = 1u << 2,    /* not in the OpenAPI document */
};

/* One row of a route table.  path is relative to API_PREFIX unless
 * M8_ROUTE_ABSOLUTE; segments "{name}" capture one path segment. */
typedef struct m8_route {
    const char *method;   /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *path;     /* e.g. "/items/{item_id}" */
    m8_access access;     /* required, see m8_access */
    m8_handler handler;
    void *data;           /* passed to handler */
    const char *summary;  /* OpenAPI summary (optional) */
    const char *tag;      /* OpenAPI tag (optional) */
    unsigned flags;       /* M8_ROUTE_* */
} m8_route;

/* ------------------------------------------------------------------ app */

/* Creates an app.  service_name / service_version are what the detailed
 * health body reports (NULL reports null, as the reference does). */
M8_EXTERN m8_app *m8_app_new(const char *service_name, const char *service_version);

/* Frees an app that m8_app_main() did not run. */
M8_EXTERN void m8_app_free(m8_app *app);

/* Adds n routes; the table is borrowed and must outlive the app. */
M8_EXTERN int m8_app_add_routes(m8_app *app, const m8_route *routes, size_t n);

/* Limits the request body (default 1 MiB); larger bodies get 413. */
M8_EXTERN int m8_app_set_max_body(m8_app *app, size_t bytes);

/* Startup validator: runs after config health, before the app serves.
 * Return 0 to pass; otherwise write a reason to err and return non-zero:
 * the boot stops with exit status 78. */
typedef int (*m8_validator_fn)(const m8_settings *settings, char *err, size_t errlen,
                               void *data);
M8_EXTERN int m8_app_add_validator(m8_app *app, const char *name, m8_validator_fn fn,
                                   void *data);

/* Lifespan hooks.  on_startup runs once the app serves, before it is marked
 * ready (health answers "initializing" meanwhile); non-zero stops the
 * service.  on_shutdown runs after the last request has drained. */
typedef int (*m8_startup_fn)(m8_app *app, void *data);
typedef void (*m8_shutdown_fn)(m8_app *app, void *data);
M8_EXTERN int m8_app_on_startup(m8_app *app, m8_startup_fn fn, void *data);
M8_EXTERN int m8_app_on_shutdown(m8_app *app, m8_shutdown_fn fn, void *data);

/* Raw request hook: runs for every request after trusted-host and CORS,
 * before routing.  Return 0 to continue, 1 when it answered the request
 * itself (the response set on req is sent). */
typedef int (*m8_request_hook)(m8_request *req, void *data);
M8_EXTERN int m8_app_on_request(m8_app *app, m8_request_hook fn, void *data);

/* Token validation hooks (CONTRACT A 3.8): on_success(jti, sub, "access")
 * after a token verified, on_failure(reason, "access") when one is refused
 * (reason: expired, invalid, wrong_type, invalid_payload,
 * inconsistent_privilege_claims).  They never see the token.  Either may be
 * NULL.  They run on request threads: keep them short and thread-safe. */
typedef void (*m8_auth_success_fn)(const char *jti, const char *sub, const char *token_type,
                                   void *data);
typedef void (*m8_auth_failure_fn)(const char *reason, const char *token_type, void *data);
M8_EXTERN int m8_app_auth_hooks(m8_app *app, m8_auth_success_fn on_success,
                                m8_auth_failure_fn on_failure, void *data);

/* The settings once loaded (NULL before m8_app_main loads them). */
M8_EXTERN const m8_settings *m8_app_settings(const m8_app *app);

/* The value of a setting by its name (case-insensitive), as text; NULL when
 * unset.  Secrets are returned too: never log them. Borrowed. */
M8_EXTERN const char *m8_setting(const m8_settings *settings, const char *name);

/* True once startup has finished and the app is ready. */
M8_EXTERN int m8_app_is_ready(const m8_app *app);

/* The standard command line and lifecycle of every service:
 *   --listen unix:/path|host:port, --env-file PATH, --threads N, --check,
 *   --version, --help.
 * Returns the process exit status (0, 64 usage, 70 software, 78 config). */
M8_EXTERN int m8_app_main(m8_app *app, int argc, char **argv);

/* ------------------------------------------------------------------ health */

typedef enum m8_health_status {
    M8_HEALTH_OK = 0,
    M8_HEALTH_DEGRADED,
    M8_HEALTH_FAIL,
    M8_HEALTH_UNKNOWN,
} m8_health_status;

typedef enum m8_health_policy {
    M8_HEALTH_LENIENT = 0, /* 503 only when a check fails */
    M8_HEALTH_STRICT,      /* unknown counts as fail */
} m8_health_policy;

/* A health check.  It may run on its own thread, concurrently with other
 * checks, and is abandoned (reported "timeout <ms>ms") past the timeout. */
typedef m8_health_status (*m8_health_fn)(m8_health_report *report, void *data);

/* Sets the error text of a check (scrubbed of URL credentials on output). */
M8_EXTERN void m8_health_set_error(m8_health_report *report, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sets the meta object of a check (takes ownership; secret-looking keys are
 * redacted on output). */
M8_EXTERN void m8_health_set_meta(m8_health_report *report, struct json_object *meta);

M8_EXTERN int m8_app_add_health_check(m8_app *app, const char *name, m8_health_fn fn,
                                      void *data);

/* Health options: per-check timeout in seconds (default 0.5), policy
 * (default lenient), result cache TTL in seconds (default 2.0, 0 = off),
 * and whether detail is public (default no). */
M8_EXTERN int m8_app_health_options(m8_app *app, double timeout_s, m8_health_policy policy,
                                    double cache_ttl_s, int detail_public);

/* A custom detail authorizer: return non-zero to show detail. */
typedef int (*m8_health_authorizer)(const m8_request *req, void *data);
M8_EXTERN int m8_app_health_authorizer(m8_app *app, m8_health_authorizer fn, void *data);

/* ------------------------------------------------------------------ request */

/* Request accessors; every returned string is borrowed until the request
 * ends.  Header names are case-insensitive ("Content-Type"). */
M8_EXTERN const char *m8_req_method(const m8_request *req);
M8_EXTERN const char *m8_req_path(const m8_request *req);
M8_EXTERN const char *m8_req_query_string(const m8_request *req);
M8_EXTERN const char *m8_req_header(const m8_request *req, const char *name);
M8_EXTERN const char *m8_req_query(const m8_request *req, const char *name);
M8_EXTERN const char *m8_req_path_param(const m8_request *req, const char *name);
/* A raw FastCGI/CGI parameter, e.g. "REMOTE_ADDR". */
M8_EXTERN const char *m8_req_param(const m8_request *req, const char *name);
/* The body bytes (not NUL-terminated). */
M8_EXTERN const void *m8_req_body(const m8_request *req, size_t *len);
/* The parsed JSON body of an M8_ROUTE_JSON_BODY route (borrowed), else NULL. */
M8_EXTERN struct json_object *m8_req_json(const m8_request *req);
/* The route template that matched, e.g. "/api/items/{item_id}". */
M8_EXTERN const char *m8_req_route(const m8_request *req);
M8_EXTERN const char *m8_req_id(const m8_request *req);
M8_EXTERN m8_app *m8_req_app(const m8_request *req);
/* Allocates from the request's arena (freed when the request ends). */
M8_EXTERN void *m8_req_alloc(m8_request *req, size_t n);

/* The caller of a protected route, from its verified access token
 * (CONTRACT B 7.3); NULL on public routes.  Borrowed until the request ends.
 * email is trimmed and lower-cased; full_name, avatar and tenant_id may be
 * NULL; role is one of superadmin, admin, writer, reader, user. */
typedef struct m8_user {
    const char *id; /* the sub claim, a UUID */
    const char *email;
    const char *full_name;
    const char *avatar;
    const char *role;
    const char *tenant_id;
    const char *jti;
    int is_active;
    int is_superuser;
    int email_verified;
    long long exp; /* seconds since the epoch */
} m8_user;
M8_EXTERN const m8_user *m8_req_user(const m8_request *req);

/* Responses.  The last call wins for status and body; headers accumulate. */
M8_EXTERN int m8_res_header(m8_request *req, const char *name, const char *value);
/* Sends obj as JSON (takes ownership of obj). */
M8_EXTERN int m8_res_json(m8_request *req, int status, struct json_object *obj);
M8_EXTERN int m8_res_body(m8_request *req, int status, const char *content_type,
                          const void *data, size_t len);
/* {"detail": "<detail>"} with the given status. */
M8_EXTERN int m8_res_error(m8_request *req, int status, const char *detail);
/* Logs why the request failed (never sent to the client); returns -1 so a
 * handler can `return m8_req_fail(req, "...")`. */
M8_EXTERN int m8_req_fail(m8_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif /* FCGIM8_H */
