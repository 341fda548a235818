/* db.h - the database layer (DESIGN "db"; CONTRACT.md D4, Part A 1.4, 5.8,
 * 5.9): a handle opened from the DB_* / SELECTED_DB settings, a lazily opened
 * connection, `SELECT 1` ping, and the pre-start wait shared by
 * fcgim8-prestart and fcgim8d.  MariaDB/MySQL (db_mariadb.c, libmariadb) and
 * PostgreSQL (db_pg.c, libpq) are the backends; each can be left out at
 * configure time (--without-mariadb, --without-postgresql), and only those two
 * files include the client libraries.
 *
 * An m8_db holds one connection and is not thread-safe: use one handle per
 * thread.  Error messages never contain the password (it is scrubbed from
 * driver messages too), and no connection string or URL is ever built: the
 * decoded parts go to the drivers as separate values (CONTRACT 1.4 [C]). */
#ifndef M8_DB_H
#define M8_DB_H

#include "common.h" /* first: config.h sets the feature macros */

#include <signal.h>

#include "settings.h"

/* Timeouts of one connection, in seconds.  New in the C port (CONTRACT 5.8
 * [C]): SQLAlchemy/PyMySQL wait 10 s to connect, psycopg2 forever.
 * libmariadb counts whole seconds (rounded up); PostgreSQL honours fractions.
 * connect covers the TCP connect, the handshake and authentication; io bounds
 * each query (ping) once connected. */
#define M8_DB_CONNECT_TIMEOUT_DEFAULT 5.0
#define M8_DB_IO_TIMEOUT_DEFAULT 10.0
#define M8_DB_TIMEOUT_MAX 3600.0

/* The pre-start wait of the seed (CONTRACT 5.9): 300 tries, 5 s apart. */
#define M8_DB_WAIT_TRIES_DEFAULT 300
#define M8_DB_WAIT_INTERVAL_DEFAULT 5.0

typedef struct m8_db m8_db;

typedef struct m8_db_timeouts {
    double connect_s; /* 0 = M8_DB_CONNECT_TIMEOUT_DEFAULT */
    double io_s;      /* 0 = M8_DB_IO_TIMEOUT_DEFAULT */
} m8_db_timeouts;

/* "mysql" or "postgres" (log fields, messages). */
M8_INTERNAL const char *m8_db_kind_name(m8_db_kind kind);

/* True when this build has the backend of kind. */
M8_INTERNAL bool m8_db_backend_available(m8_db_kind kind);

/* True when the settings name a database: SELECTED_DB or DB_HOST is set
 * (fcgim8-prestart and fcgim8d skip the wait otherwise, like the seed's
 * script without an engine). */
M8_INTERNAL bool m8_db_configured(const m8_settings *s);

/* A handle for the database of the settings (SELECTED_DB, DB_HOST, DB_PORT,
 * DB_DATABASE, DB_USER, DB_PASSWORD; copied, so s may be freed after).  Does
 * not connect: the first m8_db_ping does.  t NULL = default timeouts.  NULL
 * on failure with one line in err: a DB_* setting missing, or the selected
 * backend not built in (both configuration errors), or out of memory. */
M8_INTERNAL m8_db *m8_db_open(const m8_settings *s, const m8_db_timeouts *t, char *err,
                              size_t errlen);

/* Connects when not connected, then runs `SELECT 1` within the timeouts.
 * 0, or M8_EIO with the driver's reason in err (one line, no password).
 * After a failure the connection is dropped, so the next call reconnects. */
M8_INTERNAL int m8_db_ping(m8_db *db, char *err, size_t errlen);

/* True while a connection is open (after a successful ping). */
M8_INTERNAL bool m8_db_connected(const m8_db *db);

/* Closes the connection, wipes the password copy, frees.  NULL is fine. */
M8_INTERNAL void m8_db_close(m8_db *db);

/* The pre-start wait: pings up to `tries` times, sleeping interval_s after
 * each failure, and logs one JSON line (warning) per failed try naming the
 * backend, host, port, database, user, the try number and the reason, then
 * "Database is ready." (info) on success.  stop (optional, e.g. set by a
 * signal handler) ends the wait early; it is checked between tries and while
 * sleeping.  Returns 0 when the database answered; M8_ECONFIG when the
 * settings cannot name a database (err says why); M8_EAGAIN when the last
 * try failed or stop was raised (err holds the last reason); M8_EINVAL for
 * tries < 1 or a negative interval. */
M8_INTERNAL int m8_db_wait(const m8_settings *s, long tries, double interval_s,
                           const m8_db_timeouts *t, const volatile sig_atomic_t *stop, char *err,
                           size_t errlen);

/* Replaces every occurrence of secret in msg by "***" (in place) and folds
 * control characters (a driver's multi-line message) into single spaces,
 * trimming the ends.  Exposed for tests. */
M8_INTERNAL void m8_db_scrub(char *msg, const char *secret);

/* ---- backends: only db.c calls these ---- */

/* What a backend needs to connect; owned by the m8_db. */
typedef struct m8_db_params {
    m8_db_kind kind;
    char *host;
    unsigned port;
    char *database;
    char *user;
    char *password; /* secret: wiped on close */
    double connect_s;
    double io_s;
} m8_db_params;

typedef struct m8_db_conn m8_db_conn; /* defined by each backend */

typedef struct m8_db_backend {
    const char *name; /* for messages: "MariaDB/MySQL", "PostgreSQL" */
    /* Connects within p->connect_s; NULL with the reason in err. */
    m8_db_conn *(*connect)(const m8_db_params *p, char *err, size_t errlen);
    /* SELECT 1 within p->io_s; 0 or M8_EIO with the reason in err. */
    int (*ping)(m8_db_conn *c, const m8_db_params *p, char *err, size_t errlen);
    void (*disconnect)(m8_db_conn *c);
} m8_db_backend;

#ifdef HAVE_MARIADB
M8_INTERNAL extern const m8_db_backend m8_db_backend_mariadb;
#endif
#ifdef HAVE_POSTGRESQL
M8_INTERNAL extern const m8_db_backend m8_db_backend_pg;
#endif

#endif
