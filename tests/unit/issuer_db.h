/* issuer_db.h - what the issuer's unit tests (tests/unit/test_issuer_*.c)
 * share: a real MariaDB and a real PostgreSQL on loopback, the builders of
 * the in-process issuer app they drive (its requests: issuer_call.h), and
 * the fixtures they seed and read (users, their tokens, outbox events).
 *
 *   static const idb_servers srv = {"test_issuer_x", 19420, 19459, "iss_x", "iss_x", PW};
 *   idb_start(&srv);
 *   const char *why = idb_unusable(kind);
 *   if (why) ok(1, "... # SKIP %s", why);
 *   m8_db *db = idb_open(kind, idb_port(kind), "auth", 5, 30);
 *   ...
 *   idb_stop();
 *
 * The servers are started by the helpers of tests/integration/lib.sh in a
 * bash child (its temporary directory m8-NAME.XXXXXX holds their data, their
 * sockets and their own tmpdir); that child stops them and removes the
 * directory when this program closes its stdin (idb_stop), also when the
 * program crashes.  A server that is not installed or did not start is
 * skipped with the reason, and the output of the failed start goes to
 * stderr, that is, to the test's log. */
#ifndef M8_TESTS_ISSUER_DB_H
#define M8_TESTS_ISSUER_DB_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include <stdbool.h>

#include "app/app.h"
#include "db/db.h"
#include "issuer/service.h"

/* ------------------------------------------------------------ the servers */

/* One test program's servers: each test file has its own port range, so
 * that parallel `make check -j` runs do not collide, and its own database,
 * user and password, created on both servers. */
typedef struct idb_servers {
    const char *name;          /* the program's name (its temporary directory's) */
    unsigned port_lo, port_hi; /* the ports it may take, both ends included */
    const char *database, *user, *password;
    bool closed_port; /* also reserve a port of the range nothing listens on */
} idb_servers;

/* Starts MariaDB and PostgreSQL (those whose client backend is built) and
 * waits until both are up or skipped.  Once per program; cfg's strings must
 * outlive idb_stop(). */
void idb_start(const idb_servers *cfg);
/* Stops the servers and removes their directory. */
void idb_stop(void);
/* The port of kind's server, 0 when it is not up. */
unsigned idb_port(m8_db_kind kind);
/* Why kind's server is not up (for a TAP "# SKIP" line), NULL when it is. */
const char *idb_skip(m8_db_kind kind);
/* Why kind cannot be tested in this run: "backend not built" (configured
 * without its client library), or idb_skip's reason; NULL when it can. */
const char *idb_unusable(m8_db_kind kind);
/* The reserved port nothing listens on (closed_port), 0 when none. */
unsigned idb_closed_port(void);

/* A new handle (close with m8_db_close) on the test database of kind's
 * server at port, as the test user; prefix the handle's tables prefix (NULL:
 * the default).  NULL (with a diagnostic line) when it cannot be opened. */
m8_db *idb_open(m8_db_kind kind, unsigned port, const char *prefix, double connect_s, double io_s);

/* ------------------------------------------------------------ the issuer app */

/* base (NULL-terminated) followed by SELECTED_DB, DB_HOST, DB_PORT (port),
 * DB_DATABASE, DB_USER and DB_PASSWORD of the test database: a
 * NULL-terminated environment, valid until the next call. */
char **idb_env(m8_db_kind kind, unsigned port, const char *const *base);

/* What idb_app_boot builds. */
typedef struct idb_app {
    const char *name, *version; /* the service's (m8_app_new) */
    m8_route *routes;           /* the table; each route's data set to iss when iss */
    size_t nroutes;
    m8_issuer *iss;
    m8_issuer_revoked_fn revoked; /* m8_app_set_issuer(revoked, revoked_data) when set */
    void *revoked_data;
    double connect_s, io_s;     /* M8_DB_REQUIRED with these timeouts; 0: no database */
    const char *validator_name; /* an m8_app_add_validator when validator is set */
    m8_validator_fn validator;
    char **env; /* the environment it boots from (.env file: /dev/null) */
} idb_app;

/* The first entries of every issuer test app's environment (the site, its
 * /api prefix, HS256), project its PROJECT_NAME; then the app's own. */
#define IDB_ENV_SITE(project)                                                                      \
    "DOMAIN=localhost", "ENVIRONMENT=local", "PROJECT_NAME=" project, "STACK_NAME=local",          \
        "API_PREFIX=/api", "BACKEND_HOST=http://localhost:8000",                                   \
        "FRONTEND_HOST=http://localhost:3000", "BACKEND_CORS_ORIGINS=http://localhost:3000",       \
        "ACCESS_TOKEN_ALGORITHM=HS256"
/* The issuer's signing and encryption secrets of those environments. */
#define IDB_ENV_ISSUER_SECRETS                                                                     \
    "EVENT_SIGNING_KEY=Test-Event-Signing-Key-0123456789abcdef!",                                  \
        "SESSION_SECRET=Test-Session-Secret-Key-0123456789abcdef!",                                \
        "TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!",                          \
        "PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!"

/* Boots and starts the app: it, or NULL (freed, with a diagnostic line). */
m8_app *idb_app_boot(const idb_app *a);

/* The own-route revocation check of fcgim8-issuer (data: the m8_issuer):
 * the access blacklist. */
int idb_revoked(m8_request *r, const char *jti, void *data);

/* The issuer's members every test sets: the tables prefix "auth", the
 * access key from access_secret (30-minute tokens); with refresh_secret the
 * refresh key (120-minute tokens, cookie Max-Age 3600); with pw the password
 * hasher at its defaults.  0, or -1 with err. */
int idb_issuer_keys(m8_issuer *iss, const char *access_secret, const char *refresh_secret, bool pw,
                    char *err, size_t errlen);
/* Frees what idb_issuer_keys (and a key rotation) set. */
void idb_issuer_free(m8_issuer *iss);
/* Inserts into db's "auth" tables an active password user u (cleared
 * first) with email (copied into arena) and role, is_superuser when
 * superuser; a diagnostic line when the insert fails. */
void idb_user_add(m8_db *db, m8_arena *arena, m8_issuer_user *u, const char *email,
                  const char *role, bool superuser);
/* An access token of u minted now with iss's access key (jti NULL: a fresh
 * one) into tok ("" when minting fails). */
void idb_mint(const m8_issuer *iss, const m8_issuer_user *u, const char *jti, char tok[2048]);

/* The largest id of the event outbox of tables prefix "auth" (0: none). */
int64_t idb_last_event(m8_db *db);
/* The k-th (0-based) event after `after`: its type into type, its payload
 * into out and returned ("" both when there is none). */
const char *idb_event(m8_db *db, int64_t after, size_t k, char *type, size_t tlen, char *out,
                      size_t outlen);

#endif
