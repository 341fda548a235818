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
    M8_ENOMEM = -1,    /* out of memory */
    M8_EINVAL = -2,    /* invalid argument */
    M8_ETOOBIG = -3,   /* a bounded buffer or input exceeded its limit */
    M8_EPARSE = -4,    /* malformed input */
    M8_EIO = -5,       /* an I/O error (errno tells more) */
    M8_ECONFIG = -6,   /* invalid configuration */
    M8_ENOTFOUND = -7, /* no such item */
    M8_ESTATE = -8,    /* call not allowed in the current state */
    M8_EAGAIN = -9,    /* try again */
    M8_EDEPTH = -10,   /* JSON nested too deeply */
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
    M8_PUBLIC,    /* no credentials */
    M8_USER,      /* any authenticated, active user */
    M8_READER,    /* role >= reader */
    M8_WRITER,    /* role >= writer */
    M8_ADMIN,     /* role >= admin */
    M8_SUPERUSER, /* role superadmin and is_superuser */
    /* An X-API-Key resolved through the issuer (API_KEY_INTROSPECTION_ENABLED,
     * doc/wire.md#api-key-introspection): the key's owner with the reader /
     * writer capability (a writer key is read_write).  m8_req_user() gives
     * the owner (id, role, is_superuser; no email).  Refused at boot when API
     * keys are off. */
    M8_API_KEY_READER,
    M8_API_KEY_WRITER,
} m8_access;

/* A handler fills the response of req.  Return 0; any other value makes the
 * request a 500 "Internal Server Error" (call m8_req_fail() first to log
 * why; the reason is never sent to the client). */
typedef int (*m8_handler)(m8_request *req, void *data);

/* Route flags. */
enum {
    M8_ROUTE_ABSOLUTE = 1u << 0,  /* path is not under API_PREFIX */
    M8_ROUTE_JSON_BODY = 1u << 1, /* body must be JSON (else 422), see m8_req_json */
    M8_ROUTE_HIDDEN = 1u << 2,    /* not in the OpenAPI document */
    /* Credential kinds a protected route accepts (any combination; none of
     * them = the default of its access: the bearer header for a role, the
     * X-API-Key header for M8_API_KEY_READER / _WRITER, which stay
     * shorthands for "reader / writer by API key").  Whichever kind carries
     * the credential, it resolves to the same m8_user.  Checked at boot:
     * refused on M8_PUBLIC, a bearer or cookie kind on an API-key access, an
     * API key on admin or superuser (a key grants reader or writer only), a
     * cookie without ACCESS_TOKEN_COOKIE_NAME, and a cookie on an unsafe
     * method (the browser sends a cookie whoever made the page; see
     * fcgim8(3), "Credential kinds"). */
    M8_ROUTE_CRED_BEARER = 1u << 3,  /* Authorization: Bearer TOKEN */
    M8_ROUTE_CRED_COOKIE = 1u << 4,  /* the access token in ACCESS_TOKEN_COOKIE_NAME */
    M8_ROUTE_CRED_API_KEY = 1u << 5, /* X-API-Key, resolved through the issuer */
};
#define M8_ROUTE_CRED_MASK (M8_ROUTE_CRED_BEARER | M8_ROUTE_CRED_COOKIE | M8_ROUTE_CRED_API_KEY)

/* One row of a route table.  path is relative to API_PREFIX unless
 * M8_ROUTE_ABSOLUTE; segments "{name}" capture one path segment. */
typedef struct m8_route {
    const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *path;   /* e.g. "/items/{item_id}" */
    m8_access access;   /* required, see m8_access */
    m8_handler handler;
    void *data;          /* passed to handler */
    const char *summary; /* OpenAPI summary (optional) */
    const char *tag;     /* OpenAPI tag (optional) */
    unsigned flags;      /* M8_ROUTE_* */
} m8_route;

/* ------------------------------------------------------------------ app */

/* Creates an app.  service_name / service_version are what the detailed
 * health body reports (NULL reports null, as the reference does). */
M8_EXTERN m8_app *m8_app_new(const char *service_name, const char *service_version);

/* Frees an app that m8_app_main() did not run. */
M8_EXTERN void m8_app_free(m8_app *app);

/* Adds n routes; the table is borrowed and must outlive the app. */
M8_EXTERN int m8_app_add_routes(m8_app *app, const m8_route *routes, size_t n);

/* Requires the API-key scope (e.g. "items:read": 1 to 3 lower-case names
 * joined by ':', at most 64 bytes) on the route of a table with exactly
 * this method and path (as written there).  An X-API-Key caller whose key
 * lacks the scope gets 403 {"detail":"The API key lacks the required
 * scope: <scope>"}; a token caller (bearer or cookie) of the same route is
 * not concerned.  One scope a route; call before m8_app_main.  Checked at
 * boot: a route that takes no X-API-Key, or no route of that method and
 * path, refuses to start.  M8_EINVAL for a bad scope or a second scope on
 * the route, M8_ESTATE after boot (fcgim8(3), "API key scopes"). */
M8_EXTERN int m8_app_require_scope(m8_app *app, const char *method, const char *path,
                                   const char *scope);

/* Where a described parameter travels (m8_route_param).  The zero value is
 * refused, so every parameter states it. */
typedef enum m8_param_in {
    M8_PARAM_IN_UNSET = 0,
    M8_PARAM_IN_QUERY, /* ?name=value */
    M8_PARAM_IN_FORM,  /* a field of an application/x-www-form-urlencoded body */
} m8_param_in;

/* The type of a described parameter; the zero value is refused. */
typedef enum m8_param_type {
    M8_PARAM_TYPE_UNSET = 0,
    M8_PARAM_STRING,
    M8_PARAM_INTEGER,
    M8_PARAM_BOOLEAN,
    M8_PARAM_PASSWORD, /* a string the docs pages mask (format "password") */
} m8_param_type;

/* One query parameter or form field of a route, for the OpenAPI document
 * only: the handler still reads and checks what arrives. */
typedef struct m8_route_param {
    const char *name; /* 1-64 bytes: a letter or '_', then letters, digits, '_', '-', '.' */
    m8_param_in in;
    m8_param_type type;
    int required;              /* non-zero: the client must send it */
    const char *description;   /* optional, at most 512 bytes of UTF-8, no control character */
    const char *default_value; /* optional: what an absent one means, as text ("100"), at
                                  most 128 bytes that read as the type */
} m8_route_param;

/* Describes the query parameters and form fields of the route of a table
 * with exactly this method and path (as written there) in the OpenAPI
 * document: n (1 to 32) params, copied.  One description a route; call
 * before m8_app_main.  Checked at boot: no route of that method and path,
 * or form fields on an M8_ROUTE_JSON_BODY route, refuses to start.
 * M8_EINVAL for a bad name, place, type, description or default, a name
 * given twice in one place, a default on a required or password
 * parameter, form fields on GET, HEAD or OPTIONS, or a second description
 * of the route; M8_ETOOBIG past 32 params or 1024 described routes;
 * M8_ESTATE after boot (fcgim8(3), "Query parameters and forms"). */
M8_EXTERN int m8_app_describe_route(m8_app *app, const char *method, const char *path,
                                    const m8_route_param *params, size_t n);

/* Limits the request body (default 1 MiB); larger bodies get 413. */
M8_EXTERN int m8_app_set_max_body(m8_app *app, size_t bytes);

/* Startup validator: runs after config health, before the app serves.
 * Return 0 to pass; otherwise write a reason to err and return non-zero:
 * the boot stops with exit status 78. */
typedef int (*m8_validator_fn)(const m8_settings *settings, char *err, size_t errlen, void *data);
M8_EXTERN int m8_app_add_validator(m8_app *app, const char *name, m8_validator_fn fn, void *data);

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

/* Token validation hooks (doc/wire.md#failure-reasons): on_success(jti, sub,
 * "access") after a token verified, on_failure(reason, "access") when one is refused
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

M8_EXTERN int m8_app_add_health_check(m8_app *app, const char *name, m8_health_fn fn, void *data);

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
/* The handler is about to block (a file, a call to another service, a long
 * computation): another serving thread takes the worker's other requests
 * meanwhile.  The library's own long waits (outgoing HTTP, password
 * hashes) say it themselves. */
M8_EXTERN void m8_req_will_block(m8_request *req);

/* The caller of a protected route, from its verified access token
 * (doc/wire.md#claims-model); NULL on public routes.  Borrowed until the
 * request ends.  email is trimmed and lower-cased; full_name, avatar and tenant_id may be
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
M8_EXTERN int m8_res_body(m8_request *req, int status, const char *content_type, const void *data,
                          size_t len);
/* {"detail": "<detail>"} with the given status. */
M8_EXTERN int m8_res_error(m8_request *req, int status, const char *detail);
/* Logs why the request failed (never sent to the client); returns -1 so a
 * handler can `return m8_req_fail(req, "...")`. */
M8_EXTERN int m8_req_fail(m8_request *req, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ database
 *
 * MariaDB/MySQL and PostgreSQL behind one small API (the seed's
 * create_db_engine / session_dep; fcgim8(3), DATABASE).  A service that calls
 * m8_app_use_database() gets, when SELECTED_DB or DB_HOST names a database:
 * the handle opened at boot (no connection yet), one connection per request
 * thread opened at its first statement and reopened by itself after the
 * server restarted or the connection dropped, a rollback of any transaction
 * a handler leaves open (or fails in), the ready health check "database"
 * (SELECT 1, with its latency), and dispose at shutdown.
 *
 * Statements mark parameters with '?' (outside quotes and comments; on
 * PostgreSQL the jsonb operators ?, ?| and ?& are therefore not available,
 * use jsonb_exists() and friends) and take typed values: SQL is never built
 * from values.  Only a table name cannot be a parameter: m8_db_table() builds
 * it from TABLES_PREFIX, checked to be a plain identifier. */

typedef struct m8_db m8_db;
typedef struct m8_db_result m8_db_result;

typedef enum m8_db_use {
    M8_DB_OPTIONAL = 1, /* open the database when SELECTED_DB or DB_HOST is set */
    M8_DB_REQUIRED = 2, /* DB_* are required settings: the boot fails without them */
} m8_db_use;

/* Declares that the service uses the database.  Timeouts in seconds, 0 for
 * the defaults (connect 5 s: connecting and logging in; io 10 s: each
 * statement).  Call before m8_app_main. */
M8_EXTERN int m8_app_use_database(m8_app *app, m8_db_use use, double connect_timeout_s,
                                  double io_timeout_s);

/* A startup hook (m8_app_on_startup) that runs only when the app opened a
 * database, e.g. to create its tables; a service without one starts as if
 * the hook were not there. */
M8_EXTERN int m8_app_on_database(m8_app *app, m8_startup_fn fn, void *data);

/* The database handle of the calling thread (borrowed; valid until the
 * thread ends or the app is freed), or NULL when the app has no database.
 * Never blocks: the connection opens at the first statement. */
M8_EXTERN m8_db *m8_app_db(m8_app *app);
M8_EXTERN m8_db *m8_req_db(m8_request *req);

typedef enum m8_db_dialect {
    M8_DB_DIALECT_MYSQL = 1, /* MariaDB or MySQL */
    M8_DB_DIALECT_POSTGRES = 2,
} m8_db_dialect;
M8_EXTERN m8_db_dialect m8_db_get_dialect(const m8_db *db);

/* Writes "<TABLES_PREFIX>_<name>" into out.  M8_EINVAL unless both are
 * plain identifiers (letters, digits, '_', not starting with a digit) of at
 * most 63 bytes together; M8_ETOOBIG when out is too small. */
M8_EXTERN int m8_db_table(const m8_db *db, const char *name, char *out, size_t outlen);

/* A typed parameter.  Build them with the M8_DB_* macros below. */
typedef enum m8_db_type {
    M8_DB_T_NULL = 0,
    M8_DB_T_INT64,
    M8_DB_T_DOUBLE,
    M8_DB_T_TEXT,
    M8_DB_T_BOOL,
    M8_DB_T_TIME, /* a timestamp in UTC */
} m8_db_type;

typedef struct m8_db_param {
    m8_db_type type;
    int64_t i;     /* INT64; BOOL (0 or 1); TIME: microseconds since the epoch, UTC */
    double d;      /* DOUBLE */
    const char *s; /* TEXT, borrowed for the call (NULL = SQL NULL); no NUL byte inside */
    size_t n;      /* TEXT length in bytes, or M8_DB_NTS */
} m8_db_param;

#define M8_DB_NTS ((size_t)-1)
#define M8_DB_NULL ((m8_db_param){.type = M8_DB_T_NULL})
#define M8_DB_INT(v) ((m8_db_param){.type = M8_DB_T_INT64, .i = (int64_t)(v)})
#define M8_DB_DOUBLE(v) ((m8_db_param){.type = M8_DB_T_DOUBLE, .d = (double)(v)})
#define M8_DB_TEXT(str) ((m8_db_param){.type = M8_DB_T_TEXT, .s = (str), .n = M8_DB_NTS})
#define M8_DB_TEXTN(str, len) ((m8_db_param){.type = M8_DB_T_TEXT, .s = (str), .n = (len)})
#define M8_DB_BOOL(v) ((m8_db_param){.type = M8_DB_T_BOOL, .i = (v) ? 1 : 0})
#define M8_DB_TIME(us) ((m8_db_param){.type = M8_DB_T_TIME, .i = (int64_t)(us)})

/* Runs one statement with n parameters (n must match the '?' count).  res
 * (may be NULL) receives the result: rows, or the affected row count and
 * insert id; free it with m8_db_result_free.  Returns 0; M8_EAGAIN when the
 * database is unavailable (cannot connect, connection lost, timed out: the
 * next call reconnects; inside a transaction the transaction is lost);
 * M8_EIO when the database refused the statement (m8_db_last_error says
 * why); M8_EINVAL for a bad argument (count, a NUL byte in a text);
 * M8_ETOOBIG for a result over 16 MiB. */
M8_EXTERN int m8_db_exec(m8_db *db, const char *sql, const m8_db_param *params, size_t n,
                         m8_db_result **res);

/* Transactions: results as m8_db_exec; M8_ESTATE for BEGIN inside one or
 * COMMIT/ROLLBACK outside one.  A COMMIT that the server turned into a
 * rollback (an earlier statement failed) is M8_EIO. */
M8_EXTERN int m8_db_begin(m8_db *db);
M8_EXTERN int m8_db_commit(m8_db *db);
M8_EXTERN int m8_db_rollback(m8_db *db);
M8_EXTERN int m8_db_in_transaction(const m8_db *db);

/* Results.  Getters return 0; M8_ENOTFOUND for SQL NULL; M8_EINVAL for a
 * row or column out of range; M8_EPARSE when the value is not of that type
 * (integers: decimal int64; booleans: t/f, true/false, 1/0; times: a
 * timestamp, read as UTC unless it carries an offset). */
M8_EXTERN size_t m8_db_nrows(const m8_db_result *r);
M8_EXTERN size_t m8_db_ncols(const m8_db_result *r);
M8_EXTERN const char *m8_db_colname(const m8_db_result *r, size_t col);
M8_EXTERN int64_t m8_db_affected(const m8_db_result *r);  /* -1 for a statement with rows */
M8_EXTERN int64_t m8_db_insert_id(const m8_db_result *r); /* MariaDB only; else 0 (use RETURNING) */
M8_EXTERN int m8_db_is_null(const m8_db_result *r, size_t row, size_t col);
/* The value as the server sent it, NUL-terminated (borrowed until the
 * result is freed); NULL for SQL NULL or out of range. */
M8_EXTERN const char *m8_db_get_text(const m8_db_result *r, size_t row, size_t col, size_t *len);
M8_EXTERN int m8_db_get_int(const m8_db_result *r, size_t row, size_t col, int64_t *out);
M8_EXTERN int m8_db_get_double(const m8_db_result *r, size_t row, size_t col, double *out);
M8_EXTERN int m8_db_get_bool(const m8_db_result *r, size_t row, size_t col, int *out);
M8_EXTERN int m8_db_get_time(const m8_db_result *r, size_t row, size_t col, int64_t *us);
M8_EXTERN void m8_db_result_free(m8_db_result *r);

/* Why the last call failed. */
typedef enum m8_db_errkind {
    M8_DB_ERR_NONE = 0,
    M8_DB_ERR_UNAVAILABLE, /* cannot connect, connection lost, timeout, server shutting down */
    M8_DB_ERR_UNIQUE,      /* a unique key violation */
    M8_DB_ERR_FOREIGN_KEY, /* a foreign key violation */
    M8_DB_ERR_NOT_NULL,    /* a NULL into a NOT NULL column */
    M8_DB_ERR_OTHER,       /* anything else the server refused */
} m8_db_errkind;

typedef struct m8_db_error {
    m8_db_errkind kind;
    char code[8];         /* SQLSTATE, e.g. "23505" ("" when none) */
    char table[128];      /* foreign key: the referenced table; else as known, may be "" */
    char field[128];      /* the column the violation is about (see fcgim8(3)) */
    char constraint[128]; /* the constraint or key name, may be "" */
    char message[512];    /* the server's reason, one line, no password: for logs only */
} m8_db_error;
M8_EXTERN const m8_db_error *m8_db_last_error(const m8_db *db);

/* Answers the request after a database call on db returned rc: M8_EAGAIN
 * -> 503 {"detail":"Database unavailable."} with Retry-After: 1; a unique
 * or foreign-key violation -> 409 {"detail":[{"table":..,"field_name":..,
 * "error":..}]} (the reference's parse_integrity_error items); db NULL ->
 * 503 {"detail":"Database not configured."}; anything else -> the cause
 * logged, never sent, and a 500.  Returns what the handler returns:
 *   return m8_db_respond(req, db, rc); */
M8_EXTERN int m8_db_respond(m8_request *req, m8_db *db, int rc);

/* Timestamps for created_at / updated_at columns (the seed's
 * TimestampMixin): now in microseconds since the epoch, UTC; and its ISO
 * 8601 form "2024-05-01T12:34:56.123456Z" (buf of at least 32 bytes). */
M8_EXTERN int64_t m8_db_now(void);
M8_EXTERN int m8_db_format_time(int64_t us, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* FCGIM8_H */
