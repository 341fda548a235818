/* db_pg.c - the PostgreSQL backend of db.h over libpq.  The only file that
 * includes libpq-fe.h.
 *
 * The parts go to libpq as keyword/value arrays (no conninfo string to quote,
 * no URL holding the password).  Connecting and querying use libpq's
 * non-blocking calls with poll(2), so both are bounded by the timeouts to the
 * millisecond (libpq's own connect_timeout is whole seconds, at least 2, and
 * it has no query timeout); connect_timeout is passed too, as a backstop. */
#include "db.h"

#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static m8_db_conn *pg_connect(const m8_db_params *p, char *err, size_t errlen)
{
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
                              "fallback_application_name",
                              NULL};
    const char *const val[] = {p->host, port,   p->database, p->user, p->password,
                               ct,      "UTF8", "fcgi-m8",   NULL};
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

static int pg_ping(m8_db_conn *c, const m8_db_params *p, char *err, size_t errlen)
{
    PGconn *pg = c->pg;
    double deadline = m8_now_mono() + p->io_s;
    int ok = 0;
    if (!PQsendQueryParams(pg, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0)) {
        pq_err(err, errlen, "SELECT 1", pg);
        return M8_EIO;
    }
    /* Send everything, then read until the whole answer is in. */
    int f;
    while ((f = PQflush(pg)) == 1) {
        if (wait_fd(PQsocket(pg), true, deadline) <= 0)
            goto timeout;
    }
    if (f < 0) {
        pq_err(err, errlen, "SELECT 1", pg);
        return M8_EIO;
    }
    /* Read results until libpq says the query is done (NULL), consuming
     * input only when it would otherwise block. */
    err[0] = '\0';
    for (;;) {
        while (PQisBusy(pg)) {
            int w = wait_fd(PQsocket(pg), false, deadline);
            if (w == 0)
                goto timeout;
            if (w < 0 || !PQconsumeInput(pg)) {
                pq_err(err, errlen, "SELECT 1", pg);
                return M8_EIO;
            }
        }
        PGresult *r = PQgetResult(pg);
        if (!r)
            break;
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == 1 &&
            strcmp(PQgetvalue(r, 0, 0), "1") == 0)
            ok = 1;
        else if (!err[0])
            snprintf(err, errlen, "SELECT 1: %s", PQresultErrorMessage(r));
        PQclear(r);
    }
    if (!ok && !err[0])
        snprintf(err, errlen, "SELECT 1: unexpected answer");
    return ok ? 0 : M8_EIO;
timeout:
    snprintf(err, errlen, "SELECT 1: no answer within %g s", p->io_s);
    return M8_EIO;
}

static void pg_disconnect(m8_db_conn *c)
{
    if (!c)
        return;
    PQfinish(c->pg);
    free(c);
}

const m8_db_backend m8_db_backend_pg = {
    .name = "PostgreSQL",
    .connect = pg_connect,
    .ping = pg_ping,
    .disconnect = pg_disconnect,
};
