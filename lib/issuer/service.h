/* service.h - fcgim8-issuer assembled on m8_app (doc/issuer.md#the-service):
 * the state every route handler shares (keys, password hasher, JWKS body,
 * settings in the form the routes use), the user rows of the issuer's
 * tables (users_db.c), and the handlers of each route group.
 *
 * Every handler is an m8_handler whose data is the m8_issuer.  The request's
 * database handle is m8_req_db(req); the table prefix is iss->prefix.
 * Handlers answer database failures with m8_issuer_db_fail(), which gives
 * fa-auth-m8's 503 texts. */
#ifndef M8_ISSUER_SERVICE_H
#define M8_ISSUER_SERVICE_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "config/settings.h"
#include "db/db.h"
#include "fcgim8.h"
#include "issuer/jwks_doc.h"
#include "issuer/mint.h"
#include "issuer/password.h"
#include "issuer/schema.h"

/* fa-auth-m8's answers that several route groups give. */
#define M8_ISSUER_DETAIL_DB_DOWN "Database temporarily unavailable. Please try again."
#define M8_ISSUER_DETAIL_AUTH_DOWN "Authentication service temporarily unavailable"
#define M8_ISSUER_DETAIL_RATE_DOWN "Rate limiting service temporarily unavailable"
#define M8_ISSUER_REFRESH_COOKIE "refresh_token"
/* The email domain of service accounts (<name>@M8_SA_EMAIL_DOMAIN,
 * doc/issuer.md#service-accounts-and-client-credentials): no other account
 * may take an address there (m8_issuer_email_reserved). */
#define M8_SA_EMAIL_DOMAIN "service-account.internal"

/* The state of one issuer process, built at boot and read-only once the
 * app serves (safe to share between serving threads). */
typedef struct m8_issuer {
    m8_app *app;
    const m8_settings *s;                  /* the app's settings, after boot */
    char prefix[M8_ISSUER_PREFIX_MAX + 1]; /* TABLES_PREFIX */
    m8_sign_key *access_key;               /* signs access tokens (ACCESS_TOKEN_ALGORITHM) */
    m8_mint_access_cfg access_cfg;         /* key, kid, expiry, iss, aud */
    char kid[80];                          /* the access key's kid ("" for HS256) */
    m8_sign_key *refresh_key;              /* REFRESH_SECRET_KEY */
    m8_sign_key *refresh_key_old;          /* REFRESH_SECRET_KEY_OLD, or NULL */
    long long refresh_minutes;             /* REFRESH_TOKEN_EXPIRE_MINUTES */
    long long cookie_max_age;              /* REFRESH_TOKEN_COOKIE_EXPIRE_SECONDS */
    bool cookie_secure;                    /* Secure on cookies: ENVIRONMENT != local */
    bool stateless, hybrid;                /* TOKEN_MODE (neither: stateful) */
    m8_pw *pw;                             /* password hashing, bounded */
    m8_jwks_doc jwks;                      /* the JWKS body and its ETag */
    char jwks_cache_control[48];           /* "public, max-age=N" */
} m8_issuer;

/* ---- user rows (users_db.c) ---- */

#define M8_ISSUER_EMAIL_MAX 255u
#define M8_ISSUER_FULL_NAME_MAX 100u /* characters */
#define M8_ISSUER_AVATAR_MAX 255u

/* One row of <prefix>_user, with the wire forms: role and provider are the
 * lower-case values ("superadmin", "password"), ids the lower-case
 * 8-4-4-4-12 form whatever the database stores.  Strings live in the arena
 * given to the read. */
typedef struct m8_issuer_user {
    char id[M8_UUID_STR_LEN + 1];
    const char *email;
    const char *full_name;       /* NULL = null */
    const char *avatar;          /* NULL = null */
    const char *hashed_password; /* NULL = none (e.g. a Google account) */
    char provider[16];           /* "password" or "google" */
    char role[16];               /* superadmin, admin, writer, reader, user */
    bool is_active, email_verified, is_superuser;
    char tenant_id[M8_UUID_STR_LEN + 1]; /* "" = null */
    int64_t auth_generation;
    int64_t created_us, updated_us; /* microseconds since the epoch, UTC */
} m8_issuer_user;

/* A stored id (PostgreSQL's uuid text or MariaDB's 32 hex digits) in the
 * lower-case 8-4-4-4-12 form into out; false when it is no UUID. */
M8_INTERNAL bool m8_issuer_id_text(const m8_db_result *r, size_t row, size_t col,
                                   char out[M8_UUID_STR_LEN + 1]);
/* A stored time as fa-auth-m8's ISO 8601 text, or NULL (JSON null) when
 * the cell is NULL or unreadable. */
M8_INTERNAL struct json_object *m8_issuer_time_json(const m8_db_result *r, size_t row, size_t col);

/* True when email (n bytes, any case) is an address of M8_SA_EMAIL_DOMAIN:
 * user creation, signup, profile and /users/ updates and SSO refuse it. */
M8_INTERNAL bool m8_issuer_email_reserved(const char *email, size_t n);

/* Reads the user whose email is exactly email (the caller normalises it).
 * 0, M8_ENOTFOUND, or a database error (M8_EAGAIN, M8_EIO). */
M8_INTERNAL int m8_issuer_user_by_email(m8_db *db, const char *prefix, m8_arena *a,
                                        const char *email, m8_issuer_user *out);
/* Reads the user by id (any case; 8-4-4-4-12).  for_update locks the row
 * (inside the caller's transaction).  0, M8_ENOTFOUND (also for an id that is
 * not a UUID), or a database error. */
M8_INTERNAL int m8_issuer_user_by_id(m8_db *db, const char *prefix, m8_arena *a, const char *id,
                                     bool for_update, m8_issuer_user *out);
/* Inserts u (u->id empty: a fresh UUID4 is made and written back; times
 * now).  M8_EIO with a unique violation when the email is taken
 * (m8_db_last_error(db)->kind == M8_DB_ERR_UNIQUE). */
M8_INTERNAL int m8_issuer_user_insert(m8_db *db, const char *prefix, m8_issuer_user *u);
/* Replaces the stored hash of user id (a rehash at login, a password change). */
M8_INTERNAL int m8_issuer_user_set_hash(m8_db *db, const char *prefix, const char *id,
                                        const char *hash);
/* The database's encoding of a user id in SQL parameters: the 8-4-4-4-12
 * form on PostgreSQL, 32 hex digits on MariaDB (doc/issuer.md#tables). */
M8_INTERNAL void m8_issuer_uuid_param(const m8_db *db, const char *id,
                                      char out[M8_UUID_STR_LEN + 1]);
/* The fields a token carries, borrowed from u. */
M8_INTERNAL void m8_issuer_user_mint(const m8_issuer_user *u, m8_mint_user *out);
/* UserPublic (doc/issuer.md#shapes), its members in fa-auth-m8's order. */
M8_INTERNAL struct json_object *m8_issuer_user_public(const m8_issuer_user *u);

/* Answers a database failure rc on a route: M8_EAGAIN -> 503 with
 * M8_ISSUER_DETAIL_DB_DOWN (logged, rate-limited, with the client's
 * reason); anything else logged and 500.  Returns 0. */
M8_INTERNAL int m8_issuer_db_fail(m8_request *req, int rc, const char *what);
/* Logs (rate-limited) that the request's database was unavailable for
 * what, with the client library's reason (never a password). */
M8_INTERNAL void m8_issuer_db_down_log(m8_request *req, const char *what);

/* ---- route groups: every handler takes the m8_issuer as data ---- */

/* login.c: POST /login/access-token, /login/refresh-token/, /login/logout/ */
M8_INTERNAL int m8_issuer_h_login(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_refresh(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_logout(m8_request *req, void *data);

/* profile.c: POST /login/test-token/, GET /profile/get/me/ (token claims),
 * PATCH /profile/update/me/, PATCH /profile/me/password/,
 * DELETE /profile/delete/me/ */
M8_INTERNAL int m8_issuer_h_test_token(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_me(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_update_me(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_password_me(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_delete_me(m8_request *req, void *data);

/* users.c: the superuser's /users/ routes */
M8_INTERNAL int m8_issuer_h_users_list(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_users_new(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_users_signup(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_users_get(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_users_update(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_users_delete(m8_request *req, void *data);

/* sessions_admin.c: the /sessions/ routes (superuser; get-current any JWT)
 * and GET /security/superuser-probe (doc/issuer.md#sessions-and-security-routes) */
M8_INTERNAL int m8_issuer_h_sessions_list(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sessions_get(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sessions_by_user(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sessions_current(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sessions_delete(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sessions_delete_user(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_superuser_probe(m8_request *req, void *data);

/* events_stream.c: GET /private/v1/events/stream, a streaming answer
 * (doc/issuer.md#event-stream); it authenticates the consumer itself */
M8_INTERNAL int m8_issuer_h_events_stream(m8_request *req, void *data);

/* apikeys.c, apikeys_use.c: /profile/api-keys/ (JWT; verify with X-API-Key),
 * the superuser's /api-keys/ and POST /private/v1/api-keys/introspect,
 * which authenticates the consumer itself (doc/issuer.md#api-keys) */
M8_INTERNAL int m8_issuer_h_apikeys_create(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_apikeys_list(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_apikeys_get(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_apikeys_delete(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_apikeys_verify(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_apikeys_by_user(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_apikeys_su_revoke(m8_request *req, void *data);
/* POST /api-keys/by-user/{user_id}/ (superuser): a key for another user
 * (doc/issuer.md#api-key-scopes-and-format) */
M8_INTERNAL int m8_issuer_h_apikeys_su_create(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_apikeys_introspect(m8_request *req, void *data);

/* service_accounts.c: the superuser's /service-accounts/ routes
 * (doc/issuer.md#service-accounts-and-client-credentials; the module's own
 * interface is service_accounts.h) */
M8_INTERNAL int m8_issuer_h_sa_create(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sa_list(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sa_get(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sa_role(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sa_deactivate(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sa_secret(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sa_keys_create(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_sa_keys_list(m8_request *req, void *data);

/* audit.c: GET /security/audit-log (admin+), POST /security/audit-log/purge
 * and POST /security/api-keys/purge (superuser), not in OpenAPI
 * (doc/issuer.md#audit-and-security-routes; the module's own interface is
 * audit.h); dashboard.c: GET /dashboard/users/activity/ and its current/
 * (any JWT, doc/issuer.md#dashboard) */
M8_INTERNAL int m8_issuer_h_audit_log(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_audit_purge(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_apikeys_purge(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_dashboard_activity(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_dashboard_current(m8_request *req, void *data);

/* service.c: GET /.well-known/jwks.json */
M8_INTERNAL int m8_issuer_h_jwks(m8_request *req, void *data);

/* The whole program: builds the app, its routes and hooks, and runs
 * m8_app_main.  Returns the process exit status. */
M8_INTERNAL int m8_issuer_main(int argc, char **argv);

#endif
