/* db.h - the database layer (doc/design.md#database, doc/settings.md#database,
 * doc/settings.md#database-wait): a handle opened from the DB_* / SELECTED_DB settings, a lazily
 * opened connection that reopens by itself after the server went away, statements with typed '?'
 * parameters (never SQL built from values), typed results, transactions, errors mapped to what a
 * service answers (409 for a unique or foreign-key violation, 503 while the database is
 * unavailable), `SELECT 1` ping, and the pre-start wait shared by fcgim8-prestart and fcgim8d.
 * MariaDB/MySQL (db_mariadb.c, libmariadb) and PostgreSQL (db_pg.c, libpq)
 * are the backends; each can be left out at configure time
 * (--without-mariadb, --without-postgresql), and only those two files
 * include the client libraries.  pool.c is the handle pool an app owns (one
 * handle per request thread, rollback after a failed handler, the
 * "database" health check, dispose at shutdown); lib/app/database.c ties it
 * to the app.
 *
 * An m8_db holds one connection and is not thread-safe: use one handle per
 * thread.  Error messages never contain the password (it is scrubbed from
 * driver messages too), and no connection string or URL is ever built: the
 * decoded parts go to the drivers as separate values (doc/settings.md#database). */
#ifndef M8_DB_H
#define M8_DB_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include <signal.h>

#include "config/settings.h"
#include "fcgim8.h"

/* Ceilings of one result held in memory: the bytes of its values together,
 * and its cells (rows x columns); and the parameters of one statement. */
#define M8_DB_MAX_RESULT_BYTES (16u << 20)
#define M8_DB_MAX_RESULT_CELLS (1u << 20)
#define M8_DB_MAX_PARAMS 1024u
/* A statement's text (placeholders rewritten for PostgreSQL included). */
#define M8_DB_MAX_SQL_BYTES (1u << 20)
/* Prepared statements kept per MariaDB connection (reused by SQL text). */
#define M8_DB_STMT_CACHE 32u

/* Timeouts of one connection, in seconds.  New in the C port (doc/settings.md#database):
 * SQLAlchemy/PyMySQL wait 10 s to connect, psycopg2 forever. libmariadb counts whole seconds
 * (rounded up); PostgreSQL honours fractions. connect covers the TCP connect, the handshake and
 * authentication; io bounds each query (ping) once connected. */
#define M8_DB_CONNECT_TIMEOUT_DEFAULT 5.0
#define M8_DB_IO_TIMEOUT_DEFAULT 10.0
#define M8_DB_TIMEOUT_MAX 3600.0

/* The pre-start wait of the seed (doc/settings.md#database-wait): 300 tries, 5 s apart. */
#define M8_DB_WAIT_TRIES_DEFAULT 300
#define M8_DB_WAIT_INTERVAL_DEFAULT 5.0

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
 * not connect: the first m8_db_ping does; it loads the backend's client
 * library (doc/design.md#libraries-loaded-on-first-use).  t NULL = default
 * timeouts.  NULL on failure with one line in err: a DB_* setting missing,
 * the selected backend not built in (both configuration errors), its client
 * library not loadable, or out of memory. */
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

/* Closes the connection (the next statement reconnects); a transaction in
 * progress is lost. */
M8_INTERNAL void m8_db_disconnect(m8_db *db);

/* ---- the handle pool an app owns (pool.c; lib/app/database.c uses it) ---- */

typedef struct m8_db_pool m8_db_pool;

/* True when use and the timeouts are what m8_app_use_database accepts. */
M8_INTERNAL bool m8_db_use_valid(m8_db_use use, double connect_timeout_s, double io_timeout_s);
/* An empty pool (nothing opened), or NULL without memory. */
M8_INTERNAL m8_db_pool *m8_db_pool_new(void);
M8_INTERNAL void m8_db_pool_set(m8_db_pool *p, m8_db_use use, double connect_timeout_s,
                                double io_timeout_s);
/* True when the service said M8_DB_REQUIRED (DB_* become required,
 * doc/settings.md);
 * false for NULL. */
M8_INTERNAL bool m8_db_pool_required(const m8_db_pool *p);
/* How the pool's owner takes the "database" health check (and adds what
 * else goes with an opened database); 0 or an error. */
typedef int (*m8_db_pool_attach_fn)(void *ctx, m8_health_fn check, void *check_data);
/* At boot, after settings (s must outlive the pool): opens the pool when
 * the settings name a database (checks DB_*, TABLES_PREFIX and the backend;
 * connects nothing) and hands the health check to attach.  0 (also when no
 * database is configured, or p is NULL), or an error with one line in err
 * (a configuration error). */
M8_INTERNAL int m8_db_pool_boot(m8_db_pool *p, const m8_settings *s, m8_db_pool_attach_fn attach,
                                void *ctx, char *err, size_t errlen);
/* This thread's handle (opened on first use), or NULL (no database). */
M8_INTERNAL m8_db *m8_db_pool_handle(m8_db_pool *p);
/* After each handler, on its thread: rolls back a transaction left open. */
M8_INTERNAL void m8_db_pool_after_handler(m8_db_pool *p, bool failed);
/* Closes every connection; a health check still running keeps what it
 * uses until it ends.  NULL is fine. */
M8_INTERNAL void m8_db_pool_free(m8_db_pool *p);

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
    char *password;      /* secret: wiped on close */
    char *tables_prefix; /* TABLES_PREFIX */
    double connect_s;
    double io_s;
} m8_db_params;

typedef struct m8_db_conn m8_db_conn; /* defined by each backend */

/* One value of a result: p NULL is SQL NULL; otherwise n bytes at p, NUL
 * after them, in the text form the server uses (numbers in decimal, booleans
 * "t"/"f" or "1"/"0", timestamps "YYYY-MM-DD HH:MM:SS[.ffffff][+00]"). */
typedef struct m8_db_cell {
    const char *p;
    size_t n;
} m8_db_cell;

struct m8_db_result {
    size_t nrows, ncols, cap_rows;
    char **names;       /* ncols, in the arena */
    m8_db_cell *cells;  /* nrows x ncols, row-major */
    m8_arena arena;     /* names and values */
    size_t value_bytes; /* the values' lengths, summed */
    int64_t affected;   /* rows changed by INSERT/UPDATE/DELETE, else -1 */
    int64_t insert_id;  /* MariaDB: the AUTO_INCREMENT id of an INSERT, else 0 */
};

/* What backends use to fill a result: M8_ETOOBIG past M8_DB_MAX_RESULT_CELLS
 * cells or M8_DB_MAX_RESULT_BYTES bytes of values; at most 4096 columns. */
M8_INTERNAL m8_db_result *m8_db_result_new(void);
M8_INTERNAL int m8_db_result_cols(m8_db_result *r, size_t ncols);
M8_INTERNAL int m8_db_result_name(m8_db_result *r, size_t col, const char *name, size_t n);
M8_INTERNAL int m8_db_result_add_row(m8_db_result *r);
/* Sets a value of the last row (copied); p NULL = SQL NULL. */
M8_INTERNAL int m8_db_result_set(m8_db_result *r, size_t col, const char *p, size_t n);

/* Classification of an error, filled by the backends. */
M8_INTERNAL void m8_db_error_clear(m8_db_error *e);
M8_INTERNAL void m8_db_error_set(m8_db_error *e, m8_db_errkind kind, const char *code,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Copies src (n bytes, or up to a NUL) into a fixed field, cut to fit. */
M8_INTERNAL void m8_db_copy_field(char *dst, size_t cap, const char *src, size_t n);
/* The column of "a, b" or "`a`, `b`": the last one, unquoted, into dst. */
M8_INTERNAL void m8_db_last_column(char *dst, size_t cap, const char *cols, size_t n);

/* MariaDB's classification of an error number and message (pure; exposed
 * for tests): unique (1062, 1586: field = the key's name, the part after
 * "table." when MySQL 8 prefixes it), foreign key (1451, 1452, 1216, 1217:
 * field = the FOREIGN KEY column, table = the REFERENCES table), not null
 * (1048, 1364), unavailable (client errors 2000-2999, 1053 shutdown, 1927
 * killed, 1040 too many connections, 4031 idle timeout), else other. */
M8_INTERNAL void m8_db_classify_mysql(m8_db_error *e, unsigned errnum, const char *sqlstate,
                                      const char *msg);

/* Counts the '?' placeholders of sql as the dialect reads it, and with out
 * rewrites them into "$1", "$2"... (for PostgreSQL).  What is quoted or a
 * comment is copied as it is: '..' and ".." with doubled quotes; MariaDB:
 * backslash escapes in both, `..` names, "-- " and '#' line comments;
 * PostgreSQL: backslash escapes in E'..' only, $tag$..$tag$ strings, "--"
 * line comments, nested block comments.  Returns the count, or M8_ETOOBIG
 * (over M8_DB_MAX_SQL_BYTES or M8_DB_MAX_PARAMS). */
M8_INTERNAL long m8_db_placeholders(const char *sql, m8_db_dialect dialect, m8_buf *out);

/* Text form of a TIME parameter: "YYYY-MM-DD HH:MM:SS.ffffff" (UTC). */
M8_INTERNAL int m8_db_time_text(int64_t us, char *buf, size_t len);
/* Parses a timestamp as the servers print it (see m8_db_cell) to
 * microseconds since the epoch; an offset (+HH, +HH:MM, -HH...) is applied,
 * none means UTC.  0 or M8_EPARSE. */
M8_INTERNAL int m8_db_parse_time(const char *s, size_t n, int64_t *us);

enum { M8_DB_BEGIN, M8_DB_COMMIT, M8_DB_ROLLBACK };

typedef struct m8_db_backend {
    const char *name; /* for messages: "MariaDB/MySQL", "PostgreSQL" */
    m8_db_dialect dialect;
    /* Loads the client library (once; m8_db_open calls it, so that a
     * missing library is a boot failure): 0, or M8_ENOTFOUND with the
     * reason in err (doc/design.md#libraries-loaded-on-first-use). */
    int (*load)(char *err, size_t errlen);
    /* Connects within p->connect_s; NULL with the reason in err. */
    m8_db_conn *(*connect)(const m8_db_params *p, char *err, size_t errlen);
    /* SELECT 1 within p->io_s; 0 or M8_EIO with the reason in err. */
    int (*ping)(m8_db_conn *c, const m8_db_params *p, char *err, size_t errlen);
    void (*disconnect)(m8_db_conn *c);
    /* False when an idle connection has been closed by the server (or has
     * anything to read, which an idle connection never has). */
    bool (*alive)(m8_db_conn *c);
    /* Runs sql (placeholders '?') with params into res within p->io_s.
     * 0; M8_EAGAIN when the connection is unusable (e->kind UNAVAILABLE;
     * *sent false when the statement cannot have run); M8_EIO when the
     * server refused it (e classified); M8_EINVAL, M8_ETOOBIG. */
    int (*exec)(m8_db_conn *c, const m8_db_params *p, const char *sql, const m8_db_param *params,
                size_t n, m8_db_result *res, m8_db_error *e, bool *sent);
    /* BEGIN, COMMIT or ROLLBACK; results as exec. */
    int (*tx)(m8_db_conn *c, const m8_db_params *p, int op, m8_db_error *e, bool *sent);
} m8_db_backend;

#ifdef HAVE_MARIADB
M8_INTERNAL extern const m8_db_backend m8_db_backend_mariadb;
#endif
#ifdef HAVE_POSTGRESQL
M8_INTERNAL extern const m8_db_backend m8_db_backend_pg;
#endif

#endif
