/* pg.c - the PostgreSQL backend of db.h over libpq.  The only file that
 * includes libpq-fe.h.
 *
 * The parts go to libpq as keyword/value arrays (no conninfo string to quote,
 * no URL holding the password).  Connecting and querying use libpq's
 * non-blocking calls with poll(2), so both are bounded by the timeouts to the
 * millisecond (libpq's own connect_timeout is whole seconds, at least 2, and
 * it has no query timeout); connect_timeout is passed too, as a backstop.
 * The session's TimeZone is UTC.
 *
 * Statements go out with PQsendQueryParams: the '?' placeholders become
 * $1..$n and the values travel apart from the SQL (extended protocol, one
 * round trip).  Rows are read one at a time (single-row mode), so a result
 * over M8_DB_MAX_RESULT_BYTES is refused without being held in memory. */
#include "db/db.h"

#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dynlib.h"

/* libpq is loaded when a database is opened, not linked
 * (doc/design.md#libraries-loaded-on-first-use): every function this file
 * calls, as a pointer typed after libpq-fe.h's declaration. */
#define PG_FUNCS(X)                                                                                \
    X(PQclear)                                                                                     \
    X(PQcmdStatus)                                                                                 \
    X(PQcmdTuples)                                                                                 \
    X(PQconnectPoll)                                                                               \
    X(PQconnectStartParams)                                                                        \
    X(PQconsumeInput)                                                                              \
    X(PQerrorMessage)                                                                              \
    X(PQfinish)                                                                                    \
    X(PQflush)                                                                                     \
    X(PQfname)                                                                                     \
    X(PQgetResult)                                                                                 \
    X(PQgetisnull)                                                                                 \
    X(PQgetlength)                                                                                 \
    X(PQgetvalue)                                                                                  \
    X(PQisBusy)                                                                                    \
    X(PQnfields)                                                                                   \
    X(PQntuples)                                                                                   \
    X(PQresStatus)                                                                                 \
    X(PQresultErrorField)                                                                          \
    X(PQresultErrorMessage)                                                                        \
    X(PQresultStatus)                                                                              \
    X(PQsendQueryParams)                                                                           \
    X(PQsetNoticeProcessor)                                                                        \
    X(PQsetSingleRowMode)                                                                          \
    X(PQsetnonblocking)                                                                            \
    X(PQsocket)                                                                                    \
    X(PQstatus)
#define PG_FIELD(f) __typeof__(&f) f;
#define PG_SYM(f) {#f, offsetof(pq_api, f)},
typedef struct pq_api {
    PG_FUNCS(PG_FIELD)
} pq_api;
static pq_api pq_fn;
static const m8_dynlib_sym pq_syms[] = {PG_FUNCS(PG_SYM)};
static m8_dynlib pq_lib =
    M8_DYNLIB_INIT("libpq", M8_LIBPQ_SONAME, "M8_TEST_LIBPQ_SONAME", pq_syms, &pq_fn);
#define PQclear (pq_fn.PQclear)
#define PQcmdStatus (pq_fn.PQcmdStatus)
#define PQcmdTuples (pq_fn.PQcmdTuples)
#define PQconnectPoll (pq_fn.PQconnectPoll)
#define PQconnectStartParams (pq_fn.PQconnectStartParams)
#define PQconsumeInput (pq_fn.PQconsumeInput)
#define PQerrorMessage (pq_fn.PQerrorMessage)
#define PQfinish (pq_fn.PQfinish)
#define PQflush (pq_fn.PQflush)
#define PQfname (pq_fn.PQfname)
#define PQgetResult (pq_fn.PQgetResult)
#define PQgetisnull (pq_fn.PQgetisnull)
#define PQgetlength (pq_fn.PQgetlength)
#define PQgetvalue (pq_fn.PQgetvalue)
#define PQisBusy (pq_fn.PQisBusy)
#define PQnfields (pq_fn.PQnfields)
#define PQntuples (pq_fn.PQntuples)
#define PQresStatus (pq_fn.PQresStatus)
#define PQresultErrorField (pq_fn.PQresultErrorField)
#define PQresultErrorMessage (pq_fn.PQresultErrorMessage)
#define PQresultStatus (pq_fn.PQresultStatus)
#define PQsendQueryParams (pq_fn.PQsendQueryParams)
#define PQsetNoticeProcessor (pq_fn.PQsetNoticeProcessor)
#define PQsetSingleRowMode (pq_fn.PQsetSingleRowMode)
#define PQsetnonblocking (pq_fn.PQsetnonblocking)
#define PQsocket (pq_fn.PQsocket)
#define PQstatus (pq_fn.PQstatus)

/* Loads libpq (once); 0 or M8_ENOTFOUND with the reason in err. */
static int pg_load(char *err, size_t errlen)
{
    if (m8_dynlib_load(&pq_lib) == 0)
        return 0;
    snprintf(err, errlen, "%s", pq_lib.error);
    return M8_ENOTFOUND;
}

/* Type OIDs of the parameters (pg_type.h is a server header). */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_FLOAT8 701
#define OID_TIMESTAMP 1114

struct m8_db_conn {
    PGconn *pg;
};

/* Waits until fd is readable (or writable) or the deadline passes:
 * 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, bool for_write, double deadline)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    for (;;) {
        double left = deadline - m8_now_mono();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = fd, .events = for_write ? POLLOUT : POLLIN};
        int ms = (int)ceil(left * 1e3);
        int r = poll(&pfd, 1, ms);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* libpq's messages end with a newline; db.c folds the rest. */
static void pq_err(char *err, size_t errlen, const char *what, PGconn *pg)
{
    const char *m = pg ? PQerrorMessage(pg) : NULL;
    snprintf(err, errlen, "%s: %s", what, m && *m ? m : "out of memory");
}

static void ignore_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static m8_db_conn *pg_connect(const m8_db_params *p, char *err, size_t errlen)
{
    if (pg_load(err, errlen) != 0)
        return NULL;
    char port[16], ct[16];
    snprintf(port, sizeof port, "%u", p->port);
    double cs = ceil(p->connect_s);
    snprintf(ct, sizeof ct, "%d", cs < 2 ? 2 : (int)cs);
    const char *const kw[] = {"host",
                              "port",
                              "dbname",
                              "user",
                              "password",
                              "connect_timeout",
                              "client_encoding",
                              "options",
                              "fallback_application_name",
                              NULL};
    const char *const val[] = {p->host, port,   p->database,       p->user,   p->password,
                               ct,      "UTF8", "-c TimeZone=UTC", "fcgi-m8", NULL};
    double deadline = m8_now_mono() + p->connect_s;
    PGconn *pg = PQconnectStartParams(kw, val, 0);
    if (!pg || PQstatus(pg) == CONNECTION_BAD) {
        pq_err(err, errlen, "connect", pg);
        PQfinish(pg);
        return NULL;
    }
    /* PQconnectStart* behaves as if the last poll had said "writing". */
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            pq_err(err, errlen, "connect", pg);
            PQfinish(pg);
            return NULL;
        }
        /* The socket can change while libpq tries the host's addresses. */
        int w = wait_fd(PQsocket(pg), st == PGRES_POLLING_WRITING, deadline);
        if (w <= 0) {
            if (w == 0)
                snprintf(err, errlen, "connect: timed out after %g s", p->connect_s);
            else
                snprintf(err, errlen, "connect: poll: %s", strerror(errno));
            PQfinish(pg);
            return NULL;
        }
        st = PQconnectPoll(pg);
    }
    PQsetNoticeProcessor(pg, ignore_notice, NULL); /* NOTICEs are not errors; no stderr */
    if (PQsetnonblocking(pg, 1) != 0) {
        pq_err(err, errlen, "connect", pg);
        PQfinish(pg);
        return NULL;
    }
    m8_db_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "connect: out of memory");
        PQfinish(pg);
        return NULL;
    }
    c->pg = pg;
    return c;
}

/* What one statement gave: every row through on_row (single-row mode), the
 * final result kept. */
typedef struct run_ctx {
    m8_db_result *res; /* NULL: rows are only counted (ping) */
    int row_rc;        /* the first error while copying rows */
    long rows;
} run_ctx;

static int copy_row(run_ctx *x, const PGresult *r)
{
    if (!x->res || x->row_rc)
        return 0;
    int nf = PQnfields(r);
    int rc = 0;
    if (x->res->ncols == 0 && nf > 0) {
        rc = m8_db_result_cols(x->res, (size_t)nf);
        for (int i = 0; i < nf && rc == 0; i++) {
            const char *nm = PQfname(r, i);
            rc = m8_db_result_name(x->res, (size_t)i, nm, strlen(nm));
        }
    }
    for (int t = 0; t < PQntuples(r) && rc == 0; t++) {
        rc = m8_db_result_add_row(x->res);
        for (int i = 0; i < nf && rc == 0; i++) {
            if (PQgetisnull(r, t, i))
                rc = m8_db_result_set(x->res, (size_t)i, NULL, 0);
            else
                rc = m8_db_result_set(x->res, (size_t)i, PQgetvalue(r, t, i),
                                      (size_t)PQgetlength(r, t, i));
        }
    }
    return rc;
}

/* The column and table of an integrity violation, from the DETAIL line
 * "Key (a, b)=(..) already exists." / "... is not present in table "t"." /
 * "... is still referenced from table "t"." */
static void classify(m8_db_error *e, const PGresult *r)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    const char *table = PQresultErrorField(r, PG_DIAG_TABLE_NAME);
    const char *column = PQresultErrorField(r, PG_DIAG_COLUMN_NAME);
    const char *constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
    if (!state)
        state = "";
    m8_db_errkind kind = M8_DB_ERR_OTHER;
    if (strcmp(state, "23505") == 0)
        kind = M8_DB_ERR_UNIQUE;
    else if (strcmp(state, "23503") == 0)
        kind = M8_DB_ERR_FOREIGN_KEY;
    else if (strcmp(state, "23502") == 0)
        kind = M8_DB_ERR_NOT_NULL;
    else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0 ||
             strcmp(state, "53300") == 0)
        kind = M8_DB_ERR_UNAVAILABLE; /* connection, shutdown, too many connections */
    m8_db_error_set(e, kind, state, "%s", PQresultErrorMessage(r));
    m8_db_copy_field(e->table, sizeof e->table, table, M8_DB_NTS);
    m8_db_copy_field(e->constraint, sizeof e->constraint, constraint, M8_DB_NTS);
    m8_db_copy_field(e->field, sizeof e->field, column, M8_DB_NTS);
    const char *k = detail ? strstr(detail, "Key (") : NULL;
    const char *end = k ? strstr(k, ")=(") : NULL;
    if (end && (kind == M8_DB_ERR_UNIQUE || kind == M8_DB_ERR_FOREIGN_KEY))
        m8_db_last_column(e->field, sizeof e->field, k + 5, (size_t)(end - k - 5));
    const char *t = detail ? strstr(detail, "table \"") : NULL;
    if (kind == M8_DB_ERR_FOREIGN_KEY && t) {
        t += 7;
        const char *q = strchr(t, '"');
        m8_db_copy_field(e->table, sizeof e->table, t, q ? (size_t)(q - t) : strlen(t));
    }
}

static int unavailable(m8_db_error *e, const char *what, PGconn *pg)
{
    char msg[sizeof e->message];
    pq_err(msg, sizeof msg, what, pg);
    m8_db_error_set(e, M8_DB_ERR_UNAVAILABLE, "", "%s", msg);
    return M8_EAGAIN;
}

/* Sends sql with n text values and reads every result within p->io_s.
 * The last result's status is checked: 0 / M8_EIO (e classified) /
 * M8_EAGAIN.  *last receives the final result when wanted. */
static int run(m8_db_conn *c, const m8_db_params *p, const char *sql, int n,
               const char *const *vals, const Oid *types, run_ctx *x, PGresult **last,
               m8_db_error *e, bool *sent)
{
    PGconn *pg = c->pg;
    double deadline = m8_now_mono() + p->io_s;
    *sent = false;
    if (!PQsendQueryParams(pg, sql, n, types, vals, NULL, NULL, 0))
        return unavailable(e, "send", pg);
    if (x->res)
        PQsetSingleRowMode(pg);
    /* Send everything: until then the server cannot have finished the
     * statement (no Sync), so a failure here ran nothing. */
    int f;
    while ((f = PQflush(pg)) == 1) {
        int w = wait_fd(PQsocket(pg), true, deadline);
        if (w <= 0) {
            m8_db_error_set(e, M8_DB_ERR_UNAVAILABLE, "", "send: no progress within %g s", p->io_s);
            return M8_EAGAIN;
        }
    }
    if (f < 0)
        return unavailable(e, "send", pg);
    *sent = true;
    int rc = 0;
    bool have_error = false;
    PGresult *keep = NULL;
    for (;;) {
        while (PQisBusy(pg)) {
            int w = wait_fd(PQsocket(pg), false, deadline);
            if (w == 0) {
                PQclear(keep);
                m8_db_error_set(e, M8_DB_ERR_UNAVAILABLE, "", "no answer within %g s", p->io_s);
                return M8_EAGAIN;
            }
            if (w < 0 || !PQconsumeInput(pg)) {
                PQclear(keep);
                return unavailable(e, "receive", pg);
            }
        }
        PGresult *r = PQgetResult(pg);
        if (!r)
            break;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            int cr = copy_row(x, r);
            if (cr && !x->row_rc)
                x->row_rc = cr;
            x->rows += PQntuples(r);
        }
        if (st == PGRES_SINGLE_TUPLE) {
            PQclear(r);
            continue;
        }
        if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
            if (!have_error)
                classify(e, r);
            have_error = true;
        } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY &&
                   !have_error) {
            m8_db_error_set(e, M8_DB_ERR_OTHER, "", "unexpected result: %s", PQresStatus(st));
            have_error = true;
        }
        PQclear(keep);
        keep = r;
    }
    if (PQstatus(pg) == CONNECTION_BAD) {
        PQclear(keep);
        if (!have_error || e->kind != M8_DB_ERR_UNAVAILABLE)
            unavailable(e, "connection", pg);
        return M8_EAGAIN;
    }
    if (have_error)
        rc = e->kind == M8_DB_ERR_UNAVAILABLE ? M8_EAGAIN : M8_EIO;
    else if (x->row_rc) {
        rc = x->row_rc;
        m8_db_error_set(e, M8_DB_ERR_OTHER, "", "result over %u bytes or %u cells",
                        (unsigned)M8_DB_MAX_RESULT_BYTES, (unsigned)M8_DB_MAX_RESULT_CELLS);
    }
    if (last && rc == 0)
        *last = keep;
    else
        PQclear(keep);
    return rc;
}

static int pg_ping(m8_db_conn *c, const m8_db_params *p, char *err, size_t errlen)
{
    m8_db_error e;
    m8_db_error_clear(&e);
    m8_db_result *res = m8_db_result_new();
    if (!res) {
        snprintf(err, errlen, "SELECT 1: out of memory");
        return M8_EIO;
    }
    run_ctx x = {.res = res};
    bool sent;
    int rc = run(c, p, "SELECT 1", 0, NULL, NULL, &x, NULL, &e, &sent);
    if (rc == 0 && !(res->nrows == 1 && res->ncols == 1 && res->cells[0].p &&
                     strcmp(res->cells[0].p, "1") == 0)) {
        m8_db_error_set(&e, M8_DB_ERR_OTHER, "", "unexpected answer");
        rc = M8_EIO;
    }
    m8_db_result_free(res);
    if (rc != 0) {
        snprintf(err, errlen, "SELECT 1: %s", e.message);
        return M8_EIO;
    }
    return 0;
}

static void pg_disconnect(m8_db_conn *c)
{
    if (!c)
        return;
    PQfinish(c->pg);
    free(c);
}

static bool pg_alive(m8_db_conn *c)
{
    if (PQstatus(c->pg) != CONNECTION_OK)
        return false;
    struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
    if (pfd.fd < 0)
        return false;
    /* Idle, the server sends nothing we ask for (no LISTEN): readable means
     * it closed the session (a restart: "terminating connection due to
     * administrator command", then EOF). */
    return poll(&pfd, 1, 0) == 0;
}

static int pg_exec(m8_db_conn *c, const m8_db_params *p, const char *sql, const m8_db_param *params,
                   size_t n, m8_db_result *res, m8_db_error *e, bool *sent)
{
    *sent = false;
    m8_buf q;
    m8_buf_init(&q, M8_DB_MAX_SQL_BYTES + 16 * M8_DB_MAX_PARAMS);
    long count = m8_db_placeholders(sql, M8_DB_DIALECT_POSTGRES, &q);
    if (count < 0 || (size_t)count != n) {
        m8_buf_free(&q);
        m8_db_error_set(e, M8_DB_ERR_OTHER, "", "placeholders do not match the parameters");
        return count < 0 ? M8_ETOOBIG : M8_EINVAL;
    }
    m8_arena a;
    m8_arena_init(&a, 2 * (size_t)M8_DB_MAX_RESULT_BYTES);
    const char **vals = n ? m8_arena_alloc(&a, n * sizeof *vals) : NULL;
    Oid *types = n ? m8_arena_alloc(&a, n * sizeof *types) : NULL;
    int rc = n && (!vals || !types) ? M8_ENOMEM : 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const m8_db_param *v = &params[i];
        char num[48];
        const char *txt = NULL;
        types[i] = 0;
        switch (v->type) {
        case M8_DB_T_INT64:
            snprintf(num, sizeof num, "%lld", (long long)v->i);
            txt = num;
            /* The smallest type that holds the value (as psycopg 3 does):
             * PostgreSQL widens implicitly (int2 -> int4 -> int8), never
             * narrows, so int4 arguments and columns take small values. */
            types[i] = v->i >= INT16_MIN && v->i <= INT16_MAX   ? OID_INT2
                       : v->i >= INT32_MIN && v->i <= INT32_MAX ? OID_INT4
                                                                : OID_INT8;
            break;
        case M8_DB_T_DOUBLE:
            if (isnan(v->d))
                snprintf(num, sizeof num, "NaN");
            else if (isinf(v->d))
                snprintf(num, sizeof num, "%sInfinity", v->d < 0 ? "-" : "");
            else
                snprintf(num, sizeof num, "%.17g", v->d);
            txt = num;
            types[i] = OID_FLOAT8;
            break;
        case M8_DB_T_BOOL:
            txt = v->i ? "true" : "false";
            types[i] = OID_BOOL;
            break;
        case M8_DB_T_TIME:
            if (m8_db_time_text(v->i, num, sizeof num) != 0) {
                m8_db_error_set(e, M8_DB_ERR_OTHER, "", "parameter %zu: time out of range", i + 1);
                rc = M8_EINVAL;
            }
            txt = num;
            types[i] = OID_TIMESTAMP;
            break;
        case M8_DB_T_TEXT:
            if (v->s) {
                /* libpq reads text values up to their NUL: copy when the
                 * length is explicit (db.c refused NUL bytes inside). */
                size_t len = v->n == M8_DB_NTS ? strlen(v->s) : v->n;
                vals[i] = v->n == M8_DB_NTS ? v->s : m8_arena_strndup(&a, v->s, len);
                if (!vals[i])
                    rc = M8_ETOOBIG;
                continue;
            }
            break;
        case M8_DB_T_NULL:
        default: break;
        }
        vals[i] = txt ? m8_arena_strdup(&a, txt) : NULL;
        if (txt && !vals[i])
            rc = M8_ENOMEM;
    }
    if (rc == 0) {
        run_ctx x = {.res = res};
        PGresult *last = NULL;
        rc = run(c, p, q.data ? q.data : "", (int)n, vals, types, &x, &last, e, sent);
        if (rc == 0 && last) {
            ExecStatusType st = PQresultStatus(last);
            const char *ct = PQcmdTuples(last);
            if (st == PGRES_COMMAND_OK && ct && *ct) {
                long long v = 0;
                if (m8_parse_ll(ct, 0, INT64_MAX, &v) == 0)
                    res->affected = v;
            }
            PQclear(last);
        }
    } else if (rc == M8_ENOMEM || rc == M8_ETOOBIG) {
        m8_db_error_set(e, M8_DB_ERR_OTHER, "", "parameters too large");
    }
    m8_arena_free(&a);
    m8_buf_free(&q);
    return rc;
}

static int pg_tx(m8_db_conn *c, const m8_db_params *p, int op, m8_db_error *e, bool *sent)
{
    static const char *const q[] = {"BEGIN", "COMMIT", "ROLLBACK"};
    const char *sql = q[op == M8_DB_COMMIT ? 1 : op == M8_DB_ROLLBACK ? 2 : 0];
    run_ctx x = {0};
    PGresult *last = NULL;
    int rc = run(c, p, sql, 0, NULL, NULL, &x, &last, e, sent);
    if (op == M8_DB_BEGIN)
        *sent = false; /* beginning runs nothing that matters when it is lost */
    if (rc == 0 && op == M8_DB_COMMIT && last && strcmp(PQcmdStatus(last), "ROLLBACK") == 0) {
        /* COMMIT of a transaction an earlier statement aborted. */
        m8_db_error_set(e, M8_DB_ERR_OTHER, "25P02",
                        "COMMIT: the transaction was rolled back (an earlier statement failed)");
        rc = M8_EIO;
    }
    PQclear(last);
    return rc;
}

const m8_db_backend m8_db_backend_pg = {
    .name = "PostgreSQL",
    .dialect = M8_DB_DIALECT_POSTGRES,
    .load = pg_load,
    .connect = pg_connect,
    .ping = pg_ping,
    .disconnect = pg_disconnect,
    .alive = pg_alive,
    .exec = pg_exec,
    .tx = pg_tx,
};
