/* db.c - the backend-neutral part of the database layer (db.h): the handle,
 * statements and transactions with reconnect, ping, error scrubbing and the
 * pre-start wait. */
#include "db/db.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

struct m8_db {
    const m8_db_backend *be;
    m8_db_params p;
    m8_db_conn *conn;
    bool in_tx;
    m8_db_error err;
};

const char *m8_db_kind_name(m8_db_kind kind)
{
    return kind == M8_DB_POSTGRES ? "postgres" : "mysql";
}

static const m8_db_backend *backend_of(m8_db_kind kind)
{
#ifdef HAVE_MARIADB
    if (kind == M8_DB_MYSQL)
        return &m8_db_backend_mariadb;
#endif
#ifdef HAVE_POSTGRESQL
    if (kind == M8_DB_POSTGRES)
        return &m8_db_backend_pg;
#endif
    (void)kind;
    return NULL;
}

bool m8_db_backend_available(m8_db_kind kind)
{
    return backend_of(kind) != NULL;
}

bool m8_db_configured(const m8_settings *s)
{
    return s->selected_db_set || (s->db_host && *s->db_host);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static double timeout_or(double v, double def)
{
    if (!(v > 0))
        return def;
    return v > M8_DB_TIMEOUT_MAX ? M8_DB_TIMEOUT_MAX : v;
}

static void params_free(m8_db_params *p)
{
    free(p->host);
    free(p->database);
    free(p->user);
    free(p->tables_prefix);
    if (p->password) {
        sodium_memzero(p->password, strlen(p->password));
        free(p->password);
    }
    memset(p, 0, sizeof *p);
}

m8_db *m8_db_open(const m8_settings *s, const m8_db_timeouts *t, char *err, size_t errlen)
{
    const char *missing = !s->db_host || !*s->db_host            ? "DB_HOST"
                          : s->db_port < 1 || s->db_port > 65535 ? "DB_PORT"
                          : !s->db_database || !*s->db_database  ? "DB_DATABASE"
                          : !s->db_user || !*s->db_user          ? "DB_USER"
                          : !s->db_password || !*s->db_password  ? "DB_PASSWORD"
                                                                 : NULL;
    if (missing) {
        set_err(err, errlen, "%s must be set to use the database (SELECTED_DB=%s)", missing,
                s->selected_db == M8_DB_POSTGRES ? "Postgres" : "Mysql");
        return NULL;
    }
    /* The HOST pattern admits "1.2.3.4:5"; a driver would take it as a name. */
    if (strchr(s->db_host, ':')) {
        set_err(err, errlen, "DB_HOST must be a host name or address without a port (use DB_PORT)");
        return NULL;
    }
    const m8_db_backend *be = backend_of(s->selected_db);
    if (!be) {
        set_err(err, errlen,
                "SELECTED_DB=%s, but this build of fcgi-m8 has no %s support (configured "
                "--without-%s); rebuild with it or select another database",
                s->selected_db == M8_DB_POSTGRES ? "Postgres" : "Mysql",
                s->selected_db == M8_DB_POSTGRES ? "PostgreSQL" : "MariaDB/MySQL",
                s->selected_db == M8_DB_POSTGRES ? "postgresql" : "mariadb");
        return NULL;
    }
    char why[256];
    if (be->load(why, sizeof why) != 0) { /* a missing library fails at boot, not per request */
        set_err(err, errlen, "SELECTED_DB=%s: %s",
                s->selected_db == M8_DB_POSTGRES ? "Postgres" : "Mysql", why);
        return NULL;
    }
    m8_db *db = calloc(1, sizeof *db);
    if (!db) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    db->be = be;
    db->p.kind = s->selected_db;
    db->p.port = (unsigned)s->db_port;
    db->p.host = strdup(s->db_host);
    db->p.database = strdup(s->db_database);
    db->p.user = strdup(s->db_user);
    db->p.password = strdup(s->db_password);
    db->p.tables_prefix = strdup(s->tables_prefix ? s->tables_prefix : "app");
    db->p.connect_s = timeout_or(t ? t->connect_s : 0, M8_DB_CONNECT_TIMEOUT_DEFAULT);
    db->p.io_s = timeout_or(t ? t->io_s : 0, M8_DB_IO_TIMEOUT_DEFAULT);
    if (!db->p.host || !db->p.database || !db->p.user || !db->p.password || !db->p.tables_prefix) {
        params_free(&db->p);
        free(db);
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    return db;
}

void m8_db_scrub(char *msg, const char *secret)
{
    if (!msg)
        return;
    size_t sl = secret ? strlen(secret) : 0;
    if (sl) {
        char *hit;
        char *from = msg;
        while ((hit = strstr(from, secret)) != NULL) {
            /* The replacement never grows msg: a secret of 3 bytes or more
             * becomes "***", a shorter one (PASSWORD refuses it anyway) is
             * masked byte for byte. */
            size_t tail = strlen(hit + sl);
            if (sl >= 3) {
                memcpy(hit, "***", 3);
                memmove(hit + 3, hit + sl, tail + 1);
                from = hit + 3;
            } else {
                memset(hit, '*', sl);
                from = hit + sl;
            }
        }
    }
    /* Fold control characters, collapse runs of blanks, trim. */
    char *w = msg;
    bool space = true; /* drops leading blanks */
    for (const char *r = msg; *r; r++) {
        unsigned char c = (unsigned char)*r;
        if (c < 0x20 || c == 0x7f || c == ' ') {
            if (!space)
                *w++ = ' ';
            space = true;
            continue;
        }
        *w++ = (char)c;
        space = false;
    }
    while (w > msg && w[-1] == ' ')
        w--;
    *w = '\0';
}

int m8_db_ping(m8_db *db, char *err, size_t errlen)
{
    char tmp[512];
    if (!err || !errlen) {
        err = tmp;
        errlen = sizeof tmp;
    }
    err[0] = '\0';
    if (db->conn && !db->in_tx && !db->be->alive(db->conn))
        m8_db_disconnect(db); /* closed by the server while idle: reconnect */
    if (!db->conn) {
        db->conn = db->be->connect(&db->p, err, errlen);
        if (!db->conn) {
            m8_db_scrub(err, db->p.password);
            return M8_EIO;
        }
    }
    int r = db->be->ping(db->conn, &db->p, err, errlen);
    if (r != 0) {
        m8_db_disconnect(db);
        m8_db_scrub(err, db->p.password);
        return M8_EIO;
    }
    return 0;
}

void m8_db_disconnect(m8_db *db)
{
    if (db && db->conn) {
        db->be->disconnect(db->conn);
        db->conn = NULL;
    }
    if (db)
        db->in_tx = false;
}

/* ------------------------------------------------------------ statements */

m8_db_dialect m8_db_get_dialect(const m8_db *db)
{
    return db ? db->be->dialect : M8_DB_DIALECT_MYSQL;
}

const m8_db_error *m8_db_last_error(const m8_db *db)
{
    return db ? &db->err : NULL;
}

int m8_db_in_transaction(const m8_db *db)
{
    return db && db->in_tx;
}

static bool identifier(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        if (!(*s == '_' || (*s >= '0' && *s <= '9') || ((*s | 32) >= 'a' && (*s | 32) <= 'z')))
            return false;
    }
    return true;
}

int m8_db_table(const m8_db *db, const char *name, char *out, size_t outlen)
{
    if (!db || !out || !identifier(name) || !identifier(db->p.tables_prefix))
        return M8_EINVAL;
    size_t need = strlen(db->p.tables_prefix) + 1 + strlen(name);
    if (need > 63) /* PostgreSQL's NAMEDATALEN - 1; MariaDB allows 64 */
        return M8_EINVAL;
    if (need + 1 > outlen)
        return M8_ETOOBIG;
    snprintf(out, outlen, "%s_%s", db->p.tables_prefix, name);
    return 0;
}

/* Connects when there is no connection; an idle connection the server has
 * closed (a restart) is replaced first, outside a transaction. */
static int ensure_conn(m8_db *db)
{
    if (db->conn && !db->in_tx && !db->be->alive(db->conn))
        m8_db_disconnect(db);
    if (db->conn)
        return 0;
    char msg[sizeof db->err.message];
    msg[0] = '\0';
    db->conn = db->be->connect(&db->p, msg, sizeof msg);
    if (!db->conn) {
        m8_db_scrub(msg, db->p.password);
        m8_db_error_set(&db->err, M8_DB_ERR_UNAVAILABLE, "", "%s", msg);
        return M8_EAGAIN;
    }
    return 0;
}

/* After a backend call: scrubs the message; a lost connection is dropped
 * (its transaction with it). */
static int settle(m8_db *db, int rc)
{
    if (rc == 0)
        return 0;
    m8_db_scrub(db->err.message, db->p.password);
    if (rc == M8_EAGAIN || db->err.kind == M8_DB_ERR_UNAVAILABLE) {
        m8_db_disconnect(db);
        db->err.kind = M8_DB_ERR_UNAVAILABLE;
        return M8_EAGAIN;
    }
    return rc;
}

static int check_params(m8_db *db, const m8_db_param *params, size_t n)
{
    if (n > M8_DB_MAX_PARAMS || (n && !params)) {
        m8_db_error_set(&db->err, M8_DB_ERR_OTHER, "", "bad parameter list (%zu)", n);
        return M8_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const m8_db_param *q = &params[i];
        if (q->type > M8_DB_T_TIME) {
            m8_db_error_set(&db->err, M8_DB_ERR_OTHER, "", "parameter %zu: unknown type", i + 1);
            return M8_EINVAL;
        }
        if (q->type == M8_DB_T_TEXT && q->s) {
            size_t len = q->n == M8_DB_NTS ? strlen(q->s) : q->n;
            if (memchr(q->s, '\0', len)) {
                m8_db_error_set(&db->err, M8_DB_ERR_OTHER, "",
                                "parameter %zu: a text holds a NUL byte", i + 1);
                return M8_EINVAL;
            }
        }
    }
    return 0;
}

int m8_db_exec(m8_db *db, const char *sql, const m8_db_param *params, size_t n, m8_db_result **res)
{
    if (res)
        *res = NULL;
    if (!db || !sql)
        return M8_EINVAL;
    m8_db_error_clear(&db->err);
    int rc = check_params(db, params, n);
    if (rc)
        return rc;
    long want = m8_db_placeholders(sql, db->be->dialect, NULL);
    if (want < 0 || (size_t)want != n) {
        m8_db_error_set(&db->err, M8_DB_ERR_OTHER, "",
                        "the statement has %ld placeholders, %zu parameters given", want, n);
        return want == M8_ETOOBIG ? M8_ETOOBIG : M8_EINVAL;
    }
    m8_db_result *r = m8_db_result_new();
    if (!r)
        return M8_ENOMEM;
    /* One retry on a fresh connection, only when the statement cannot have
     * run (nothing reached the server), never inside a transaction. */
    for (int attempt = 0;; attempt++) {
        bool was_tx = db->in_tx;
        rc = ensure_conn(db);
        if (rc == 0) {
            bool sent = true;
            rc = db->be->exec(db->conn, &db->p, sql, params, n, r, &db->err, &sent);
            rc = settle(db, rc);
            if (rc == M8_EAGAIN && !sent && !was_tx && attempt == 0) {
                m8_db_result_free(r);
                r = m8_db_result_new();
                if (!r)
                    return M8_ENOMEM;
                m8_db_error_clear(&db->err);
                continue;
            }
        }
        break;
    }
    if (rc == 0 && res)
        *res = r;
    else
        m8_db_result_free(r);
    return rc;
}

static int tx(m8_db *db, int op)
{
    if (!db)
        return M8_EINVAL;
    m8_db_error_clear(&db->err);
    if ((op == M8_DB_BEGIN) == db->in_tx) {
        m8_db_error_set(&db->err, M8_DB_ERR_OTHER, "", "%s",
                        db->in_tx ? "a transaction is already open" : "no transaction is open");
        return M8_ESTATE;
    }
    int rc = 0;
    if (op == M8_DB_BEGIN) {
        rc = ensure_conn(db);
        if (rc == 0) {
            bool sent = true;
            rc = settle(db, db->be->tx(db->conn, &db->p, op, &db->err, &sent));
            if (rc == M8_EAGAIN && !sent) { /* nothing ran: once more on a new connection */
                m8_db_error_clear(&db->err);
                rc = ensure_conn(db);
                if (rc == 0)
                    rc = settle(db, db->be->tx(db->conn, &db->p, op, &db->err, &sent));
            }
        }
        db->in_tx = rc == 0;
        return rc;
    }
    if (!db->conn) { /* the connection was lost with the transaction */
        db->in_tx = false;
        m8_db_error_set(&db->err, M8_DB_ERR_UNAVAILABLE, "", "the connection was lost");
        return op == M8_DB_ROLLBACK ? 0 : M8_EAGAIN;
    }
    bool sent = true;
    rc = settle(db, db->be->tx(db->conn, &db->p, op, &db->err, &sent));
    db->in_tx = false;
    if (rc != 0 && op == M8_DB_ROLLBACK && rc != M8_EAGAIN)
        m8_db_disconnect(db); /* a connection that cannot roll back is not reused */
    return rc;
}

int m8_db_begin(m8_db *db)
{
    return tx(db, M8_DB_BEGIN);
}

int m8_db_commit(m8_db *db)
{
    return tx(db, M8_DB_COMMIT);
}

int m8_db_rollback(m8_db *db)
{
    return tx(db, M8_DB_ROLLBACK);
}

bool m8_db_connected(const m8_db *db)
{
    return db && db->conn;
}

void m8_db_close(m8_db *db)
{
    if (!db)
        return;
    m8_db_disconnect(db);
    params_free(&db->p);
    free(db);
}

/* ------------------------------------------------------------ wait */

/* Sleeps up to s seconds in slices, returning early when *stop is raised. */
static void sleep_checking(double s, const volatile sig_atomic_t *stop)
{
    double end = m8_now_mono() + s;
    for (;;) {
        if (stop && *stop)
            return;
        double left = end - m8_now_mono();
        if (left <= 0)
            return;
        if (left > 0.1)
            left = 0.1;
        struct timespec ts = {(time_t)left, (long)((left - floor(left)) * 1e9)};
        nanosleep(&ts, NULL); /* EINTR: re-check stop */
    }
}

/* The identifying fields of a log line (never the password). */
static void where_fields(m8_buf *b, const m8_db_params *p)
{
    m8_buf_printf(b, "\"db\":\"%s\",\"host\":", m8_db_kind_name(p->kind));
    m8_buf_json_str(b, p->host, strlen(p->host));
    m8_buf_printf(b, ",\"port\":%u,\"database\":", p->port);
    m8_buf_json_str(b, p->database, strlen(p->database));
    m8_buf_puts(b, ",\"user\":");
    m8_buf_json_str(b, p->user, strlen(p->user));
}

int m8_db_wait(const m8_settings *s, long tries, double interval_s, const m8_db_timeouts *t,
               const volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    char tmp[512];
    if (!err || !errlen) {
        err = tmp;
        errlen = sizeof tmp;
    }
    err[0] = '\0';
    if (tries < 1 || !(interval_s >= 0) || interval_s > M8_DB_TIMEOUT_MAX) {
        set_err(err, errlen, "tries must be at least 1 and the interval within 0-%g s",
                M8_DB_TIMEOUT_MAX);
        return M8_EINVAL;
    }
    m8_db *db = m8_db_open(s, t, err, errlen);
    if (!db)
        return M8_ECONFIG;

    m8_buf f;
    m8_buf_init(&f, 8192);
    where_fields(&f, &db->p);
    m8_buf_printf(&f, ",\"tries\":%ld,\"interval_s\":%g,\"connect_timeout_s\":%g", tries,
                  interval_s, db->p.connect_s);
    m8_log_fields(M8_LOG_INFO, "Waiting for the database.", f.data);

    int rc = M8_EAGAIN;
    for (long i = 1; i <= tries; i++) {
        if (stop && *stop)
            break;
        double t0 = m8_now_mono();
        if (m8_db_ping(db, err, errlen) == 0) {
            m8_buf_reset(&f);
            where_fields(&f, &db->p);
            m8_buf_printf(&f, ",\"try\":%ld,\"latency_ms\":%.1f", i, (m8_now_mono() - t0) * 1e3);
            m8_log_fields(M8_LOG_INFO, "Database is ready.", f.data);
            err[0] = '\0';
            rc = 0;
            break;
        }
        m8_buf_reset(&f);
        where_fields(&f, &db->p);
        m8_buf_printf(&f, ",\"try\":%ld,\"tries\":%ld,\"error\":", i, tries);
        m8_buf_json_str(&f, err, strlen(err));
        m8_log_fields(M8_LOG_WARNING, "Database not ready.", f.data);
        if (i < tries)
            sleep_checking(interval_s, stop);
    }
    m8_buf_free(&f);
    m8_db_close(db);
    return rc;
}
