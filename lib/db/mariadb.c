/* mariadb.c - the MariaDB/MySQL backend of db.h over libmariadb
 * (MariaDB Connector/C).  The only file that includes mysql.h.
 *
 * Like PyMySQL (the reference's driver) it always speaks TCP, also for
 * "localhost" (libmariadb would pick its default unix socket there), in
 * utf8mb4, reads no option files, and never reconnects by itself: db.c
 * decides when to reconnect.  The session's time zone is UTC, so
 * CURRENT_TIMESTAMP and TIMESTAMP columns read as UTC.
 *
 * Statements are server-side prepared statements (parameters travel apart
 * from the SQL, in the binary protocol); each connection keeps the last
 * M8_DB_STMT_CACHE of them by SQL text, so a repeated statement costs one
 * round trip. */
#include "db/db.h"

#include <math.h>
#include <mysql.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dynlib.h"

/* libmariadb is loaded when a database is opened, not linked
 * (doc/design.md#libraries-loaded-on-first-use): every function this file
 * calls, as a pointer typed after mysql.h's declaration (mysql_library_init
 * is mysql.h's name for mysql_server_init). */
#define MY_FUNCS(X)                                                                                \
    X(mysql_close)                                                                                 \
    X(mysql_errno)                                                                                 \
    X(mysql_error)                                                                                 \
    X(mysql_fetch_fields)                                                                          \
    X(mysql_fetch_row)                                                                             \
    X(mysql_free_result)                                                                           \
    X(mysql_get_socket)                                                                            \
    X(mysql_init)                                                                                  \
    X(mysql_num_fields)                                                                            \
    X(mysql_optionsv)                                                                              \
    X(mysql_real_connect)                                                                          \
    X(mysql_real_query)                                                                            \
    X(mysql_server_init)                                                                           \
    X(mysql_sqlstate)                                                                              \
    X(mysql_stmt_affected_rows)                                                                    \
    X(mysql_stmt_bind_param)                                                                       \
    X(mysql_stmt_bind_result)                                                                      \
    X(mysql_stmt_close)                                                                            \
    X(mysql_stmt_errno)                                                                            \
    X(mysql_stmt_error)                                                                            \
    X(mysql_stmt_execute)                                                                          \
    X(mysql_stmt_fetch)                                                                            \
    X(mysql_stmt_fetch_column)                                                                     \
    X(mysql_stmt_field_count)                                                                      \
    X(mysql_stmt_free_result)                                                                      \
    X(mysql_stmt_init)                                                                             \
    X(mysql_stmt_insert_id)                                                                        \
    X(mysql_stmt_param_count)                                                                      \
    X(mysql_stmt_prepare)                                                                          \
    X(mysql_stmt_result_metadata)                                                                  \
    X(mysql_stmt_sqlstate)                                                                         \
    X(mysql_store_result)
#define MY_FIELD(f) __typeof__(&f) f;
#define MY_SYM(f) {#f, offsetof(my_api, f)},
typedef struct my_api {
    MY_FUNCS(MY_FIELD)
} my_api;
static my_api my_fn;
static const m8_dynlib_sym my_syms[] = {MY_FUNCS(MY_SYM)};
static m8_dynlib my_lib = M8_DYNLIB_INIT("libmariadb", M8_LIBMARIADB_SONAME,
                                         "M8_TEST_LIBMARIADB_SONAME", my_syms, &my_fn);
#define mysql_close (my_fn.mysql_close)
#define mysql_errno (my_fn.mysql_errno)
#define mysql_error (my_fn.mysql_error)
#define mysql_fetch_fields (my_fn.mysql_fetch_fields)
#define mysql_fetch_row (my_fn.mysql_fetch_row)
#define mysql_free_result (my_fn.mysql_free_result)
#define mysql_get_socket (my_fn.mysql_get_socket)
#define mysql_init (my_fn.mysql_init)
#define mysql_num_fields (my_fn.mysql_num_fields)
#define mysql_optionsv (my_fn.mysql_optionsv)
#define mysql_real_connect (my_fn.mysql_real_connect)
#define mysql_real_query (my_fn.mysql_real_query)
#define mysql_server_init (my_fn.mysql_server_init)
#define mysql_sqlstate (my_fn.mysql_sqlstate)
#define mysql_stmt_affected_rows (my_fn.mysql_stmt_affected_rows)
#define mysql_stmt_bind_param (my_fn.mysql_stmt_bind_param)
#define mysql_stmt_bind_result (my_fn.mysql_stmt_bind_result)
#define mysql_stmt_close (my_fn.mysql_stmt_close)
#define mysql_stmt_errno (my_fn.mysql_stmt_errno)
#define mysql_stmt_error (my_fn.mysql_stmt_error)
#define mysql_stmt_execute (my_fn.mysql_stmt_execute)
#define mysql_stmt_fetch (my_fn.mysql_stmt_fetch)
#define mysql_stmt_fetch_column (my_fn.mysql_stmt_fetch_column)
#define mysql_stmt_field_count (my_fn.mysql_stmt_field_count)
#define mysql_stmt_free_result (my_fn.mysql_stmt_free_result)
#define mysql_stmt_init (my_fn.mysql_stmt_init)
#define mysql_stmt_insert_id (my_fn.mysql_stmt_insert_id)
#define mysql_stmt_param_count (my_fn.mysql_stmt_param_count)
#define mysql_stmt_prepare (my_fn.mysql_stmt_prepare)
#define mysql_stmt_result_metadata (my_fn.mysql_stmt_result_metadata)
#define mysql_stmt_sqlstate (my_fn.mysql_stmt_sqlstate)
#define mysql_store_result (my_fn.mysql_store_result)

/* Loads libmariadb (once); 0 or M8_ENOTFOUND with the reason in err. */
static int my_load(char *err, size_t errlen)
{
    if (m8_dynlib_load(&my_lib) == 0)
        return 0;
    snprintf(err, errlen, "%s", my_lib.error);
    return M8_ENOTFOUND;
}

typedef struct cached_stmt {
    char *sql;
    MYSQL_STMT *st;
    uint64_t used; /* the connection's use counter at the last use (LRU) */
} cached_stmt;

struct m8_db_conn {
    MYSQL *my;
    cached_stmt cache[M8_DB_STMT_CACHE];
    uint64_t uses;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_init_rc = -1;

/* mysql_library_init is not thread-safe; mysql_init calls it lazily, so
 * call it once before any thread can race there. */
static void library_init(void)
{
    g_init_rc = mysql_library_init(0, NULL, NULL);
}

/* libmariadb takes whole seconds: round up, at least 1. */
static unsigned int whole_seconds(double s)
{
    double c = ceil(s);
    return c < 1 ? 1u : c > 86400 ? 86400u : (unsigned int)c;
}

static m8_db_conn *my_connect(const m8_db_params *p, char *err, size_t errlen)
{
    if (my_load(err, errlen) != 0)
        return NULL;
    pthread_once(&g_once, library_init);
    if (g_init_rc != 0) {
        snprintf(err, errlen, "connect: the MariaDB client library failed to initialise");
        return NULL;
    }
    m8_db_conn *c = calloc(1, sizeof *c);
    MYSQL *my = c ? mysql_init(NULL) : NULL;
    if (!my) {
        free(c);
        snprintf(err, errlen, "connect: out of memory");
        return NULL;
    }
    unsigned int ct = whole_seconds(p->connect_s), io = whole_seconds(p->io_s);
    unsigned int proto = MYSQL_PROTOCOL_TCP;
    my_bool no = 0;
    if (mysql_optionsv(my, MYSQL_OPT_CONNECT_TIMEOUT, &ct) ||
        mysql_optionsv(my, MYSQL_OPT_READ_TIMEOUT, &io) ||
        mysql_optionsv(my, MYSQL_OPT_WRITE_TIMEOUT, &io) ||
        mysql_optionsv(my, MYSQL_OPT_PROTOCOL, &proto) ||
        mysql_optionsv(my, MYSQL_OPT_RECONNECT, &no) ||
        mysql_optionsv(my, MYSQL_SET_CHARSET_NAME, "utf8mb4") ||
        mysql_optionsv(my, MYSQL_INIT_COMMAND, "SET time_zone = '+00:00'")) {
        snprintf(err, errlen, "connect: %s", mysql_error(my));
        mysql_close(my);
        free(c);
        return NULL;
    }
    if (!mysql_real_connect(my, p->host, p->user, p->password, p->database, p->port, NULL, 0)) {
        snprintf(err, errlen, "connect: %s (%u)", mysql_error(my), mysql_errno(my));
        mysql_close(my);
        free(c);
        return NULL;
    }
    c->my = my;
    return c;
}

static int my_ping(m8_db_conn *c, const m8_db_params *p, char *err, size_t errlen)
{
    (void)p; /* MYSQL_OPT_READ/WRITE_TIMEOUT bound the query */
    static const char q[] = "SELECT 1";
    if (mysql_real_query(c->my, q, sizeof q - 1) != 0) {
        snprintf(err, errlen, "SELECT 1: %s (%u)", mysql_error(c->my), mysql_errno(c->my));
        return M8_EIO;
    }
    MYSQL_RES *res = mysql_store_result(c->my);
    if (!res) {
        snprintf(err, errlen, "SELECT 1: %s (%u)", mysql_error(c->my), mysql_errno(c->my));
        return M8_EIO;
    }
    MYSQL_ROW row = mysql_fetch_row(res);
    int ok = row && row[0] && strcmp(row[0], "1") == 0;
    mysql_free_result(res);
    if (!ok) {
        snprintf(err, errlen, "SELECT 1: unexpected answer");
        return M8_EIO;
    }
    return 0;
}

static void drop_stmt(cached_stmt *cs)
{
    if (cs->st)
        mysql_stmt_close(cs->st);
    free(cs->sql);
    memset(cs, 0, sizeof *cs);
}

static void my_disconnect(m8_db_conn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < M8_DB_STMT_CACHE; i++)
        drop_stmt(&c->cache[i]);
    mysql_close(c->my);
    free(c);
}

static bool my_alive(m8_db_conn *c)
{
    struct pollfd pfd = {.fd = (int)mysql_get_socket(c->my), .events = POLLIN};
    if (pfd.fd < 0)
        return false;
    /* Idle, nothing may be readable: readable means EOF (the server closed
     * the connection, e.g. it restarted) or a stray packet. */
    return poll(&pfd, 1, 0) == 0;
}

/* Classifies the error of st (or of the connection when st is NULL). */
static int fail(m8_db_conn *c, MYSQL_STMT *st, m8_db_error *e)
{
    unsigned num = st ? mysql_stmt_errno(st) : mysql_errno(c->my);
    const char *state = st ? mysql_stmt_sqlstate(st) : mysql_sqlstate(c->my);
    const char *msg = st ? mysql_stmt_error(st) : mysql_error(c->my);
    if (num == 0) { /* the statement failed without the server saying why */
        num = mysql_errno(c->my);
        state = mysql_sqlstate(c->my);
        msg = mysql_error(c->my);
    }
    m8_db_classify_mysql(e, num, state, num ? msg : "unknown error");
    return e->kind == M8_DB_ERR_UNAVAILABLE ? M8_EAGAIN : M8_EIO;
}

/* The prepared statement of sql: from the cache, or prepared now (sent is
 * left false: preparing runs nothing). */
static int prepare(m8_db_conn *c, const char *sql, MYSQL_STMT **out, m8_db_error *e)
{
    c->uses++;
    cached_stmt *lru = NULL; /* an empty slot, else the least recently used */
    for (size_t i = 0; i < M8_DB_STMT_CACHE; i++) {
        cached_stmt *cs = &c->cache[i];
        if (cs->sql && strcmp(cs->sql, sql) == 0) {
            cs->used = c->uses;
            *out = cs->st;
            return 0;
        }
        if (!lru || (lru->sql && (!cs->sql || cs->used < lru->used)))
            lru = cs;
    }
    MYSQL_STMT *st = mysql_stmt_init(c->my);
    if (!st) {
        m8_db_error_set(e, M8_DB_ERR_OTHER, "", "out of memory");
        return M8_ENOMEM;
    }
    if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
        int rc = fail(c, st, e);
        mysql_stmt_close(st);
        return rc;
    }
    char *copy = strdup(sql);
    if (!copy) {
        mysql_stmt_close(st);
        m8_db_error_set(e, M8_DB_ERR_OTHER, "", "out of memory");
        return M8_ENOMEM;
    }
    drop_stmt(lru);
    lru->sql = copy;
    lru->st = st;
    lru->used = c->uses;
    *out = st;
    return 0;
}

/* Forgets st after an error that may have left it unusable. */
static void forget(m8_db_conn *c, MYSQL_STMT *st)
{
    for (size_t i = 0; i < M8_DB_STMT_CACHE; i++) {
        if (c->cache[i].st == st)
            drop_stmt(&c->cache[i]);
    }
}

typedef struct param_vals {
    MYSQL_TIME t;
    char b;
} param_vals;

static int bind_params(const m8_db_param *params, size_t n, MYSQL_BIND *b, param_vals *v,
                       m8_db_error *e)
{
    for (size_t i = 0; i < n; i++) {
        const m8_db_param *q = &params[i];
        switch (q->type) {
        case M8_DB_T_INT64:
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = (void *)&q->i;
            break;
        case M8_DB_T_DOUBLE:
            b[i].buffer_type = MYSQL_TYPE_DOUBLE;
            b[i].buffer = (void *)&q->d;
            break;
        case M8_DB_T_TEXT:
            if (!q->s) {
                b[i].buffer_type = MYSQL_TYPE_NULL;
                break;
            }
            b[i].buffer_type = MYSQL_TYPE_STRING;
            b[i].buffer = (void *)q->s;
            b[i].buffer_length = q->n == M8_DB_NTS ? strlen(q->s) : q->n;
            break;
        case M8_DB_T_BOOL:
            v[i].b = q->i ? 1 : 0;
            b[i].buffer_type = MYSQL_TYPE_TINY;
            b[i].buffer = &v[i].b;
            break;
        case M8_DB_T_TIME: {
            char txt[40];
            if (m8_db_time_text(q->i, txt, sizeof txt) != 0) {
                m8_db_error_set(e, M8_DB_ERR_OTHER, "", "parameter %zu: time out of range", i + 1);
                return M8_EINVAL;
            }
            /* "YYYY-MM-DD HH:MM:SS.ffffff" */
            MYSQL_TIME *t = &v[i].t;
            memset(t, 0, sizeof *t);
            long long f[7];
            if (sscanf(txt, "%4lld-%2lld-%2lld %2lld:%2lld:%2lld.%6lld", &f[0], &f[1], &f[2], &f[3],
                       &f[4], &f[5], &f[6]) != 7) {
                m8_db_error_set(e, M8_DB_ERR_OTHER, "", "parameter %zu: bad time", i + 1);
                return M8_EINVAL;
            }
            t->year = (unsigned)f[0];
            t->month = (unsigned)f[1];
            t->day = (unsigned)f[2];
            t->hour = (unsigned)f[3];
            t->minute = (unsigned)f[4];
            t->second = (unsigned)f[5];
            t->second_part = (unsigned long)f[6];
            t->time_type = MYSQL_TIMESTAMP_DATETIME;
            b[i].buffer_type = MYSQL_TYPE_DATETIME;
            b[i].buffer = t;
            break;
        }
        case M8_DB_T_NULL:
        default: b[i].buffer_type = MYSQL_TYPE_NULL; break;
        }
    }
    return 0;
}

typedef struct col_buf {
    long long i;
    double d;
    char *s;
    unsigned long cap, len;
    my_bool null, err;
} col_buf;

/* Fetches every row of st into res as text.  Rows are read one at a time
 * from the connection (not stored first), so a result past the ceiling is
 * refused without being held in memory; what is left of it is drained by
 * mysql_stmt_free_result. */
static int fetch_rows(m8_db_conn *c, MYSQL_STMT *st, MYSQL_RES *meta, m8_db_result *res,
                      m8_db_error *e)
{
    unsigned nf = mysql_num_fields(meta);
    MYSQL_FIELD *f = mysql_fetch_fields(meta);
    int rc = m8_db_result_cols(res, nf);
    if (rc) {
        m8_db_error_set(e, M8_DB_ERR_OTHER, "", "result too large");
        return rc;
    }
    MYSQL_BIND *b = calloc(nf ? nf : 1, sizeof *b);
    col_buf *v = calloc(nf ? nf : 1, sizeof *v);
    if (!b || !v) {
        free(b);
        free(v);
        m8_db_error_set(e, M8_DB_ERR_OTHER, "", "out of memory");
        return M8_ENOMEM;
    }
    for (unsigned i = 0; i < nf && rc == 0; i++) {
        rc = m8_db_result_name(res, i, f[i].name, f[i].name_length);
        b[i].is_null = &v[i].null;
        b[i].error = &v[i].err;
        b[i].length = &v[i].len;
        switch (f[i].type) {
        case MYSQL_TYPE_TINY:
        case MYSQL_TYPE_SHORT:
        case MYSQL_TYPE_INT24:
        case MYSQL_TYPE_LONG:
        case MYSQL_TYPE_LONGLONG:
        case MYSQL_TYPE_YEAR:
            b[i].buffer_type = MYSQL_TYPE_LONGLONG;
            b[i].buffer = &v[i].i;
            b[i].is_unsigned = (f[i].flags & UNSIGNED_FLAG) != 0;
            break;
        case MYSQL_TYPE_FLOAT:
        case MYSQL_TYPE_DOUBLE:
            b[i].buffer_type = MYSQL_TYPE_DOUBLE;
            b[i].buffer = &v[i].d;
            break;
        default:
            /* Longer values are fetched whole, one by one (below). */
            v[i].cap = (f[i].length < 64 ? 64 : f[i].length > 4096 ? 4096 : f[i].length) + 1;
            v[i].s = malloc(v[i].cap);
            if (!v[i].s)
                rc = M8_ENOMEM;
            b[i].buffer_type = MYSQL_TYPE_STRING;
            b[i].buffer = v[i].s;
            b[i].buffer_length = v[i].cap;
            break;
        }
    }
    if (rc == 0 && mysql_stmt_bind_result(st, b) != 0)
        rc = fail(c, st, e);
    while (rc == 0) {
        int fr = mysql_stmt_fetch(st);
        if (fr == MYSQL_NO_DATA)
            break;
        if (fr != 0 && fr != MYSQL_DATA_TRUNCATED) {
            rc = fail(c, st, e);
            break;
        }
        rc = m8_db_result_add_row(res);
        for (unsigned i = 0; i < nf && rc == 0; i++) {
            char num[40];
            if (v[i].null) {
                rc = m8_db_result_set(res, i, NULL, 0);
            } else if (b[i].buffer_type == MYSQL_TYPE_LONGLONG) {
                int k = b[i].is_unsigned
                            ? snprintf(num, sizeof num, "%llu", (unsigned long long)v[i].i)
                            : snprintf(num, sizeof num, "%lld", v[i].i);
                rc = m8_db_result_set(res, i, num, (size_t)k);
            } else if (b[i].buffer_type == MYSQL_TYPE_DOUBLE) {
                int k = snprintf(num, sizeof num, "%.17g", v[i].d);
                rc = m8_db_result_set(res, i, num, (size_t)k);
            } else if (v[i].len < v[i].cap) {
                rc = m8_db_result_set(res, i, v[i].s, v[i].len);
            } else if (v[i].len > M8_DB_MAX_RESULT_BYTES) {
                rc = M8_ETOOBIG;
            } else {
                /* Longer than the buffer: fetch this value whole. */
                char *big = malloc(v[i].len + 1);
                MYSQL_BIND one = b[i];
                unsigned long got = 0;
                one.buffer = big;
                one.buffer_length = v[i].len + 1;
                one.length = &got;
                if (!big)
                    rc = M8_ENOMEM;
                else if (mysql_stmt_fetch_column(st, &one, i, 0) != 0)
                    rc = fail(c, st, e);
                else
                    rc = m8_db_result_set(res, i, big, got < v[i].len ? got : v[i].len);
                free(big);
            }
        }
        if (rc == M8_ETOOBIG)
            m8_db_error_set(e, M8_DB_ERR_OTHER, "", "result over %u bytes or %u cells",
                            (unsigned)M8_DB_MAX_RESULT_BYTES, (unsigned)M8_DB_MAX_RESULT_CELLS);
    }
    for (unsigned i = 0; i < nf; i++)
        free(v[i].s);
    free(v);
    free(b);
    return rc;
}

static int my_exec(m8_db_conn *c, const m8_db_params *p, const char *sql, const m8_db_param *params,
                   size_t n, m8_db_result *res, m8_db_error *e, bool *sent)
{
    (void)p;
    *sent = false;
    MYSQL_STMT *st = NULL;
    int rc = prepare(c, sql, &st, e);
    if (rc)
        return rc;
    if (mysql_stmt_param_count(st) != n) {
        m8_db_error_set(e, M8_DB_ERR_OTHER, "", "the server counts %lu parameters, %zu given",
                        mysql_stmt_param_count(st), n);
        return M8_EINVAL;
    }
    MYSQL_BIND sb[16];
    param_vals sv[16];
    MYSQL_BIND *b = n <= 16 ? sb : calloc(n, sizeof *b);
    param_vals *v = n <= 16 ? sv : calloc(n, sizeof *v);
    if (!b || !v) {
        if (b != sb)
            free(b);
        if (v != sv)
            free(v);
        m8_db_error_set(e, M8_DB_ERR_OTHER, "", "out of memory");
        return M8_ENOMEM;
    }
    memset(b, 0, (n ? n : 1) * sizeof *b);
    rc = bind_params(params, n, b, v, e);
    if (rc == 0 && n && mysql_stmt_bind_param(st, b) != 0)
        rc = fail(c, st, e);
    if (rc == 0) {
        *sent = true;
        if (mysql_stmt_execute(st) != 0)
            rc = fail(c, st, e);
    }
    if (b != sb)
        free(b);
    if (v != sv)
        free(v);
    if (rc) {
        if (rc == M8_EAGAIN)
            forget(c, st);
        return rc;
    }
    MYSQL_RES *meta = mysql_stmt_result_metadata(st);
    if (!meta) {
        if (mysql_stmt_field_count(st) != 0)
            return fail(c, st, e);
        res->affected = (int64_t)mysql_stmt_affected_rows(st);
        res->insert_id = (int64_t)mysql_stmt_insert_id(st);
        return 0;
    }
    rc = fetch_rows(c, st, meta, res, e);
    mysql_stmt_free_result(st);
    mysql_free_result(meta);
    if (rc == M8_EAGAIN)
        forget(c, st);
    return rc;
}

static int my_tx(m8_db_conn *c, const m8_db_params *p, int op, m8_db_error *e, bool *sent)
{
    (void)p;
    static const char *const q[] = {"START TRANSACTION", "COMMIT", "ROLLBACK"};
    const char *sql = q[op == M8_DB_COMMIT ? 1 : op == M8_DB_ROLLBACK ? 2 : 0];
    /* Beginning runs nothing that matters when it is lost. */
    *sent = op != M8_DB_BEGIN;
    if (mysql_real_query(c->my, sql, strlen(sql)) != 0)
        return fail(c, NULL, e);
    return 0;
}

const m8_db_backend m8_db_backend_mariadb = {
    .name = "MariaDB/MySQL",
    .dialect = M8_DB_DIALECT_MYSQL,
    .load = my_load,
    .connect = my_connect,
    .ping = my_ping,
    .disconnect = my_disconnect,
    .alive = my_alive,
    .exec = my_exec,
    .tx = my_tx,
};
