/* test_db.c - the database layer (db.h, fcgim8.h "database").
 *
 * Without a server: settings checks, backend availability, password
 * scrubbing, bounded failures against a closed port and a server that never
 * answers, the pre-start wait's log lines, and the pure parts (placeholders,
 * timestamps, MariaDB error classification, the response mapping).
 *
 * Against real servers: a MariaDB and a PostgreSQL started on loopback by the
 * helpers of tests/integration/lib.sh (a bash child that stops them when this
 * program closes its stdin, also when it crashes), ports 19080-19099: typed
 * parameters and results, SQL-shaped text stored verbatim, transactions,
 * integrity errors with the field named, reconnect after the server ended the
 * session, the result ceiling.  A backend whose server is not installed is
 * skipped.  tests/integration/t_prestart.sh and t_items.sh run the programs. */
#include "db/db.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app/app.h"
#include "core/log.h"
#include "http/http.h"
#include "tap.h"
#include "testenv.h"

#define PASSWORD "Sup3r-Secret-Db-Pa55!"

static m8_settings *db_settings(m8_db_kind kind, unsigned port)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->selected_db = kind;
    s->selected_db_set = true;
    s->db_host = "127.0.0.1";
    s->db_port = port;
    s->db_database = "app";
    s->db_user = "app_user";
    s->db_password = PASSWORD;
    return s;
}

/* A loopback TCP socket bound to a free port; listening or not. */
static int loopback_socket(bool do_listen, unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0 || (do_listen && listen(fd, 8) != 0))
        return -1;
    *port = ntohs(a.sin_port);
    return fd;
}

/* A port nobody listens on (bound, then released). */
static unsigned closed_port(void)
{
    unsigned port = 0;
    int fd = loopback_socket(false, &port);
    close(fd);
    return port;
}

static char *slurp_fd(int fd)
{
    static char buf[65536];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void test_scrub(void)
{
    char m1[] = "auth failed for " PASSWORD " and again " PASSWORD ".";
    m8_db_scrub(m1, PASSWORD);
    is_str(m1, "auth failed for *** and again ***.", "scrub replaces every copy of the password");
    char m2[] = "  line one\n\tline two\r\n  ";
    m8_db_scrub(m2, PASSWORD);
    is_str(m2, "line one line two", "scrub folds a multi-line driver message into one line");
    char m3[] = "xabx";
    m8_db_scrub(m3, "ab");
    is_str(m3, "x**x", "scrub masks a secret shorter than the marker byte for byte");
    char m4[] = "nothing secret";
    m8_db_scrub(m4, NULL);
    is_str(m4, "nothing secret", "scrub without a secret only folds");
    char m5[] = "pw=" PASSWORD PASSWORD;
    m8_db_scrub(m5, PASSWORD);
    is_str(m5, "pw=******", "scrub handles adjacent copies");
}

static void test_settings(void)
{
    m8_settings none = {0};
    ok(!m8_db_configured(&none), "no SELECTED_DB and no DB_HOST: no database configured");
    m8_settings host = {.db_host = "db"};
    ok(m8_db_configured(&host), "DB_HOST alone configures a database");
    m8_settings sel = {.selected_db_set = true};
    ok(m8_db_configured(&sel), "SELECTED_DB alone configures a database");
    is_str(m8_db_kind_name(M8_DB_MYSQL), "mysql", "kind name mysql");
    is_str(m8_db_kind_name(M8_DB_POSTGRES), "postgres", "kind name postgres");

    char err[512];
    m8_settings *s = db_settings(M8_DB_POSTGRES, 5432);
    s->db_port = 0;
    ok(m8_db_open(s, NULL, err, sizeof err) == NULL, "open fails without DB_PORT");
    like(err, "DB_PORT", "the error names DB_PORT");
    s->db_port = 5432;
    s->db_user = NULL;
    ok(m8_db_open(s, NULL, err, sizeof err) == NULL, "open fails without DB_USER");
    like(err, "DB_USER", "the error names DB_USER");
    s->db_user = "app_user";
    s->db_password = "";
    ok(m8_db_open(s, NULL, err, sizeof err) == NULL, "open fails with an empty DB_PASSWORD");
    like(err, "DB_PASSWORD", "the error names DB_PASSWORD");
    s->db_password = PASSWORD;
    s->db_host = "10.0.0.1:5432";
    ok(m8_db_open(s, NULL, err, sizeof err) == NULL, "open refuses a DB_HOST carrying a port");
    like(err, "DB_PORT", "the error points to DB_PORT");
    free(s);
}

static void test_availability(void)
{
#ifdef HAVE_MARIADB
    ok(m8_db_backend_available(M8_DB_MYSQL), "this build has the MariaDB backend");
#else
    ok(!m8_db_backend_available(M8_DB_MYSQL), "this build has no MariaDB backend");
#endif
#ifdef HAVE_POSTGRESQL
    ok(m8_db_backend_available(M8_DB_POSTGRES), "this build has the PostgreSQL backend");
#else
    ok(!m8_db_backend_available(M8_DB_POSTGRES), "this build has no PostgreSQL backend");
#endif
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        m8_settings *s = db_settings(kind, 3306);
        char err[512] = "";
        m8_db *db = m8_db_open(s, NULL, err, sizeof err);
        if (m8_db_backend_available(kind)) {
            ok(db != NULL, "%s: open succeeds without touching the network", m8_db_kind_name(kind));
            ok(!m8_db_connected(db), "%s: open does not connect (lazy)", m8_db_kind_name(kind));
        } else {
            ok(db == NULL, "%s: open fails when the backend is not built in",
               m8_db_kind_name(kind));
            like(err, "--without-", "%s: the error says the build lacks the backend",
                 m8_db_kind_name(kind));
            is_int(m8_db_wait(s, 1, 0, NULL, NULL, err, sizeof err), M8_ECONFIG,
                   "%s: wait on a missing backend is a configuration error", m8_db_kind_name(kind));
        }
        m8_db_close(db);
        free(s);
    }
}

static void test_closed_port(m8_db_kind kind)
{
    const char *k = m8_db_kind_name(kind);
    m8_settings *s = db_settings(kind, closed_port());
    m8_db_timeouts t = {2, 2};
    char err[512] = "";
    m8_db *db = m8_db_open(s, &t, err, sizeof err);
    double t0 = m8_now_mono();
    int r = m8_db_ping(db, err, sizeof err);
    double dt = m8_now_mono() - t0;
    is_int(r, M8_EIO, "%s: ping to a closed port fails with M8_EIO", k);
    ok(dt < 1.5, "%s: a refused connection fails at once (%.3f s)", k, dt);
    ok(strlen(err) > 0 && strchr(err, '\n') == NULL, "%s: one-line reason: %s", k, err);
    ok(strstr(err, PASSWORD) == NULL, "%s: the reason does not contain the password", k);
    ok(!m8_db_connected(db), "%s: not connected after a failure", k);
    is_int(m8_db_ping(db, err, sizeof err), M8_EIO, "%s: a second ping tries again and fails", k);
    m8_db_close(db);
    free(s);
}

/* A listening socket that never accepts: the kernel completes the TCP
 * handshake, the server never speaks (MariaDB) or answers (PostgreSQL). */
static void test_silent_server(m8_db_kind kind)
{
    const char *k = m8_db_kind_name(kind);
    unsigned port;
    int lfd = loopback_socket(true, &port);
    m8_settings *s = db_settings(kind, port);
    double want = kind == M8_DB_POSTGRES ? 0.3 : 1.0; /* libmariadb: whole seconds */
    m8_db_timeouts t = {want, want};
    char err[512] = "";
    m8_db *db = m8_db_open(s, &t, err, sizeof err);
    double t0 = m8_now_mono();
    int r = m8_db_ping(db, err, sizeof err);
    double dt = m8_now_mono() - t0;
    is_int(r, M8_EIO, "%s: ping to a server that never answers fails", k);
    ok(dt >= want * 0.9 && dt < want + 1.5, "%s: ... after the connect timeout %.1f s (%.3f s)", k,
       want, dt);
    diag("%s: %s", k, err);
    ok(strstr(err, PASSWORD) == NULL, "%s: the reason does not contain the password", k);
    m8_db_close(db);
    free(s);
    close(lfd);
}

static void test_wait(m8_db_kind kind)
{
    const char *k = m8_db_kind_name(kind);
    char path[] = "/tmp/m8-test-db-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    m8_log_set_fd(fd);

    m8_settings *s = db_settings(kind, closed_port());
    m8_db_timeouts t = {1, 1};
    char err[512] = "";
    double t0 = m8_now_mono();
    int r = m8_db_wait(s, 3, 0.1, &t, NULL, err, sizeof err);
    double dt = m8_now_mono() - t0;
    m8_log_set_fd(-1);
    const char *log = slurp_fd(fd);
    is_int(r, M8_EAGAIN, "%s: wait gives M8_EAGAIN when the last try failed", k);
    ok(dt >= 0.2 && dt < 2.0, "%s: ... after sleeping between the tries only (%.3f s)", k, dt);
    ok(strlen(err) > 0, "%s: ... with the last reason", k);
    is_int(count(log, "\"msg\":\"Database not ready.\""), 3, "%s: one log line per failed try", k);
    is_int(count(log, "\n"), 4, "%s: plus one line announcing the wait", k);
    like(log, "\"try\":3,\"tries\":3", "%s: the line says which try of how many", k);
    like(log, "\"level\":\"warning\"", "%s: failed tries log at warning", k);
    like(log, "\"user\":\"app_user\"", "%s: the line names the user", k);
    ok(strstr(log, PASSWORD) == NULL, "%s: no log line contains the password", k);

    /* A raised stop flag ends the wait before the first try. */
    if (ftruncate(fd, 0) != 0)
        diag("ftruncate failed");
    m8_log_set_fd(fd);
    volatile sig_atomic_t stop = 1;
    r = m8_db_wait(s, 5, 10, &t, &stop, err, sizeof err);
    m8_log_set_fd(-1);
    is_int(r, M8_EAGAIN, "%s: a raised stop flag ends the wait", k);
    is_int(count(slurp_fd(fd), "Database not ready."), 0, "%s: ... without a try", k);

    is_int(m8_db_wait(s, 0, 1, &t, NULL, err, sizeof err), M8_EINVAL, "%s: tries 0 refused", k);
    is_int(m8_db_wait(s, 1, -1, &t, NULL, err, sizeof err), M8_EINVAL,
           "%s: negative interval refused", k);
    s->db_database = NULL;
    is_int(m8_db_wait(s, 1, 0, &t, NULL, err, sizeof err), M8_ECONFIG,
           "%s: wait without DB_DATABASE is a configuration error", k);
    like(err, "DB_DATABASE", "%s: ... naming DB_DATABASE", k);
    free(s);
    close(fd);
}

/* ------------------------------------------------------------ pure parts */

static void placeholders_is(const char *sql, const char *want, long want_n, const char *what)
{
    m8_buf b;
    m8_buf_init(&b, 1 << 20);
    long n = m8_db_placeholders(sql, M8_DB_DIALECT_POSTGRES, &b);
    is_int(n, want_n, "placeholders (postgres): %s: %ld found", what, want_n);
    is_str(b.data ? b.data : "", want, "placeholders (postgres): %s: rewritten", what);
    m8_buf_free(&b);
}

static void test_placeholders(void)
{
    placeholders_is("SELECT ?, ?", "SELECT $1, $2", 2, "two");
    placeholders_is("SELECT 'a?b', ?", "SELECT 'a?b', $1", 1, "inside a string");
    placeholders_is("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1", 1, "doubled quote");
    placeholders_is("SELECT 'C:\\', ?", "SELECT 'C:\\', $1", 1,
                    "a backslash is no escape in a standard string");
    placeholders_is("SELECT E'a\\'?', ?", "SELECT E'a\\'?', $1", 1, "backslash escape in E''");
    placeholders_is("SELECT \"c?\" FROM t WHERE x = ?", "SELECT \"c?\" FROM t WHERE x = $1", 1,
                    "quoted identifier");
    placeholders_is("SELECT ? -- what?\n, ?", "SELECT $1 -- what?\n, $2", 2, "line comment");
    placeholders_is("SELECT /* a /* ? */ ? */ ?", "SELECT /* a /* ? */ ? */ $1", 1,
                    "nested block comments");
    placeholders_is("SELECT $$a?$$, $t$?$t$, ?", "SELECT $$a?$$, $t$?$t$, $1", 1, "dollar quoting");
    placeholders_is("SELECT x$1, ?", "SELECT x$1, $1", 1, "a $ inside a name");
    placeholders_is("SELECT 'open ?", "SELECT 'open ?", 0, "an unterminated string");
    placeholders_is("", "", 0, "empty");

    const struct {
        const char *sql;
        long pg, my;
    } both[] = {
        {"SELECT 'a\\'?', ?", 1, 1}, /* MariaDB: \' escapes; PostgreSQL: 'a\' ends, ', ? opens */
        {"SELECT `t?`, ?", 2, 1},    /* backticks quote names in MariaDB only */
        {"SELECT ? # what?\n, ?", 3, 2}, /* '#' starts a comment in MariaDB only */
        {"SELECT ?--?", 1, 2},           /* MariaDB needs a blank after "--" */
        {"SELECT ? -- ?", 1, 1},
        {"SELECT $$?$$, ?", 1, 2},      /* no dollar quoting in MariaDB */
        {"SELECT \"a\\\"?\", ?", 1, 1}, /* MariaDB: a string with backslash escapes */
        {"SELECT /* ? /* */ ?", 0, 1},  /* MariaDB does not nest comments */
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(both); i++) {
        char shown[64]; /* the SQL on one TAP line */
        size_t k = 0;
        for (const char *c = both[i].sql; *c && k + 3 < sizeof shown; c++) {
            if (*c == '\n') {
                shown[k++] = '\\';
                shown[k++] = 'n';
            } else {
                shown[k++] = *c;
            }
        }
        shown[k] = '\0';
        is_int(m8_db_placeholders(both[i].sql, M8_DB_DIALECT_POSTGRES, NULL), both[i].pg,
               "placeholders: postgres reads %ld in: %s", both[i].pg, shown);
        is_int(m8_db_placeholders(both[i].sql, M8_DB_DIALECT_MYSQL, NULL), both[i].my,
               "placeholders: mysql reads %ld in: %s", both[i].my, shown);
    }

    /* M8_DB_MAX_PARAMS exactly, and one more. */
    char *q = malloc(2 * M8_DB_MAX_PARAMS + 8);
    size_t k = 0;
    for (unsigned i = 0; i < M8_DB_MAX_PARAMS + 1; i++) {
        q[k++] = '?';
        q[k++] = ',';
    }
    q[k - 1] = '\0';
    is_int(m8_db_placeholders(q, M8_DB_DIALECT_MYSQL, NULL), M8_ETOOBIG,
           "placeholders: M8_DB_MAX_PARAMS + 1 (%u) is too many", M8_DB_MAX_PARAMS + 1);
    q[k - 3] = '\0';
    is_int(m8_db_placeholders(q, M8_DB_DIALECT_MYSQL, NULL), M8_DB_MAX_PARAMS,
           "placeholders: exactly M8_DB_MAX_PARAMS (%u) is fine", M8_DB_MAX_PARAMS);
    free(q);
    char *big = malloc(M8_DB_MAX_SQL_BYTES + 2);
    memset(big, ' ', M8_DB_MAX_SQL_BYTES + 1);
    big[M8_DB_MAX_SQL_BYTES] = '\0';
    is_int(m8_db_placeholders(big, M8_DB_DIALECT_POSTGRES, NULL), 0,
           "placeholders: SQL of exactly M8_DB_MAX_SQL_BYTES");
    big[M8_DB_MAX_SQL_BYTES] = ' ';
    big[M8_DB_MAX_SQL_BYTES + 1] = '\0';
    is_int(m8_db_placeholders(big, M8_DB_DIALECT_POSTGRES, NULL), M8_ETOOBIG,
           "placeholders: one byte more is too big");
    free(big);
}

static void test_time(void)
{
    char buf[64];
    int64_t us = 0;
    is_int(m8_db_format_time(1714566896123456LL, buf, sizeof buf), 0, "format_time succeeds");
    is_str(buf, "2024-05-01T12:34:56.123456Z", "format_time: ISO 8601 UTC with microseconds");
    m8_db_format_time(-1, buf, sizeof buf);
    is_str(buf, "1969-12-31T23:59:59.999999Z", "format_time: before the epoch");
    is_int(m8_db_format_time(0, buf, 27), M8_ETOOBIG, "format_time: a short buffer is refused");
    m8_db_time_text(1714566896000001LL, buf, sizeof buf);
    is_str(buf, "2024-05-01 12:34:56.000001", "time parameter text");

    struct {
        const char *in;
        int64_t want;
    } ok_cases[] = {
        {"2024-05-01 12:34:56.123456", 1714566896123456LL},
        {"2024-05-01 12:34:56", 1714566896000000LL},
        {"2024-05-01 12:34:56.5", 1714566896500000LL},
        {"2024-05-01 12:34:56.123456+00", 1714566896123456LL},
        {"2024-05-01 14:34:56.123456+02", 1714566896123456LL},
        {"2024-05-01 10:04:56-02:30", 1714566896000000LL},
        {"2024-05-01T12:34:56Z", 1714566896000000LL},
        {"2024-05-01", 1714521600000000LL},
        {"2024-05-01 12:34:56.1234567", 1714566896123456LL},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(ok_cases); i++) {
        int rc = m8_db_parse_time(ok_cases[i].in, strlen(ok_cases[i].in), &us);
        ok(rc == 0 && us == ok_cases[i].want, "parse_time \"%s\" = %" PRId64, ok_cases[i].in,
           ok_cases[i].want);
    }
    const char *bad[] = {"",
                         "2024-13-01",
                         "2024-02-30 00:00:00",
                         "2024-05-01 25:00:00",
                         "2024-05-01 12:34",
                         "2024-05-01 12:34:56.",
                         "2024-05-01 12:34:56 x",
                         "infinity",
                         "20240501"};
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++)
        is_int(m8_db_parse_time(bad[i], strlen(bad[i]), &us), M8_EPARSE,
               "parse_time refuses \"%s\"", bad[i]);
    int64_t now = m8_db_now();
    ok(now > 1700000000000000LL && now < 4102444800000000LL, "m8_db_now is microseconds, UTC");
}

static void test_classify(void)
{
    m8_db_error e;
    m8_db_classify_mysql(&e, 1062, "23000", "Duplicate entry 'x' for key 'name'");
    ok(e.kind == M8_DB_ERR_UNIQUE, "mysql 1062: unique");
    is_str(e.field, "name", "mysql 1062: the field is the key's name (MariaDB)");
    is_str(e.code, "23000", "mysql 1062: SQLSTATE kept");
    m8_db_classify_mysql(&e, 1062, "23000", "Duplicate entry 'a' for key 'b' for key 'items.name'");
    is_str(e.field, "name", "mysql 1062: MySQL 8 'table.key', the value holding the pattern");
    is_str(e.table, "items", "mysql 1062: ... the table");
    m8_db_classify_mysql(&e, 1452, "23000",
                         "Cannot add or update a child row: a foreign key constraint fails "
                         "(`db`.`child`, CONSTRAINT `fk_p` FOREIGN KEY (`parent_id`) REFERENCES "
                         "`parent` (`id`))");
    ok(e.kind == M8_DB_ERR_FOREIGN_KEY, "mysql 1452: foreign key");
    is_str(e.field, "parent_id", "mysql 1452: the FOREIGN KEY column");
    is_str(e.table, "parent", "mysql 1452: the REFERENCES table");
    is_str(e.constraint, "fk_p", "mysql 1452: the constraint");
    m8_db_classify_mysql(&e, 1048, "23000", "Column 'name' cannot be null");
    ok(e.kind == M8_DB_ERR_NOT_NULL, "mysql 1048: not null");
    is_str(e.field, "name", "mysql 1048: the column");
    m8_db_classify_mysql(&e, 2013, "HY000", "Lost connection to server during query");
    ok(e.kind == M8_DB_ERR_UNAVAILABLE, "mysql 2013 (client): unavailable");
    m8_db_classify_mysql(&e, 1927, "70100", "Connection was killed");
    ok(e.kind == M8_DB_ERR_UNAVAILABLE, "mysql 1927 (killed): unavailable");
    m8_db_classify_mysql(&e, 1064, "42000", "You have an error in your SQL syntax");
    ok(e.kind == M8_DB_ERR_OTHER, "mysql 1064 (syntax): other");
    like(e.message, "(1064)", "the message carries the error number");
    char col[32];
    m8_db_last_column(col, sizeof col, "owner_id, name", 14);
    is_str(col, "name", "last column of a composite key");
    m8_db_last_column(col, sizeof col, "`a`, `b,c`", 10);
    is_str(col, "b,c", "last column: quoted names keep their commas");
}

static void test_result_limits(void)
{
    m8_db_result *r = m8_db_result_new();
    is_int(m8_db_result_cols(r, 4097), M8_ETOOBIG, "result: 4097 columns are too many");
    is_int(m8_db_result_cols(r, 1), 0, "result: one column");
    char *mib = malloc(1u << 20);
    memset(mib, 'v', 1u << 20);
    int rc = 0;
    for (int i = 0; i < 16 && rc == 0; i++) {
        rc = m8_db_result_add_row(r);
        if (rc == 0)
            rc = m8_db_result_set(r, 0, mib, 1u << 20);
    }
    is_int(rc, 0, "result: values of exactly M8_DB_MAX_RESULT_BYTES (16 MiB) fit");
    is_int(m8_db_result_add_row(r), 0, "result: ... a row more");
    is_int(m8_db_result_set(r, 0, "", 0), 0, "result: ... an empty value adds no byte");
    is_int(m8_db_result_set(r, 0, "x", 1), M8_ETOOBIG, "result: one byte more is too big");
    is_int(m8_db_result_set(r, 0, NULL, 0), 0, "result: NULL costs no byte");
    size_t len = 0;
    ok(m8_db_get_text(r, 15, 0, &len) && len == (1u << 20), "result: the values are whole");
    m8_db_result_free(r);
    free(mib);

    r = m8_db_result_new();
    m8_db_result_cols(r, 2);
    rc = 0;
    size_t rows = 0;
    while (rc == 0 && rows < M8_DB_MAX_RESULT_CELLS / 2) {
        rc = m8_db_result_add_row(r);
        rows += rc == 0;
    }
    ok(rc == 0 && rows == M8_DB_MAX_RESULT_CELLS / 2,
       "result: exactly M8_DB_MAX_RESULT_CELLS cells (2 x %u rows) fit",
       M8_DB_MAX_RESULT_CELLS / 2);
    is_int(m8_db_result_add_row(r), M8_ETOOBIG, "result: one row more is too many cells");
    ok(m8_db_is_null(r, rows - 1, 1), "result: unset cells read as NULL");
    m8_db_result_free(r);
}

/* m8_db_respond on a request without an app. */
static void respond_is(m8_db *db, int rc, int want_status, const char *want_body, const char *what)
{
    m8_request req;
    m8_req_init(&req, NULL);
    int r = m8_db_respond(&req, db, rc);
    if (want_status == 500) {
        is_int(r, -1, "respond: %s: the handler fails (500)", what);
        ok(req.fail_reason != NULL, "respond: %s: the cause is logged", what);
    } else {
        is_int(req.status, want_status, "respond: %s: %d", what, want_status);
        is_str(req.body_out.data ? req.body_out.data : "", want_body, "respond: %s: body", what);
    }
    m8_req_free(&req);
}

static void test_respond_pure(void)
{
    respond_is(NULL, M8_EAGAIN, 503, "{\"detail\":\"Database not configured.\"}", "no database");
}

/* ------------------------------------------------------------ real servers */

static void signal_ignore_pipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

#define APP_DB "app_db"
#define APP_USER "app_user"

static pid_t g_helper = -1;
static int g_helper_in = -1;
static unsigned g_port[2];
static char g_skip[2][300];

static const char *srcdir(void)
{
    static char dir[4096];
    const char *t = getenv("top_srcdir");
    if (t && *t)
        return t;
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0'; /* .../tests */
        slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, "..");
    } else {
        snprintf(dir, sizeof dir, "..");
    }
    return dir;
}

static const char helper_script[] =
    ". \"$1/tests/integration/lib.sh\" || exit 1\n"
    "m8_init test_db\n"
    "exec 3>&1 1>&2\n"
    "for kind in $3; do\n"
    "  if [ $kind = Mysql ]; then have=m8_have_mariadb start=m8_mariadb_start;\n"
    "  else have=m8_have_pg start=m8_pg_start; fi\n"
    "  if ! $have; then echo \"skip $kind the server is not installed\" >&3; continue; fi\n"
    "  m8_pick_port 19080 19099 || { echo \"skip $kind no free port\" >&3; continue; }\n"
    "  d=$T_DIR/$kind\n"
    "  if $start \"$d\" $M8_PORT && m8_db_create $kind \"$d\" $M8_PORT " APP_DB " " APP_USER
    " \"$2\"; then\n"
    "    echo \"up $kind $M8_PORT\" >&3\n"
    "  else echo \"skip $kind the server did not start\" >&3; fi\n"
    "done\n"
    "echo ready >&3\n"
    "exec 3>&-\n"
    "cat >/dev/null\n";

/* Starts the bash helper; fills g_port / g_skip. */
static void servers_start(void)
{
    /* Only the servers of the backends this build has. */
    char kinds[32];
    snprintf(kinds, sizeof kinds, "%s %s", m8_db_backend_available(M8_DB_MYSQL) ? "Mysql" : "",
             m8_db_backend_available(M8_DB_POSTGRES) ? "Postgres" : "");
    if (!m8_db_backend_available(M8_DB_MYSQL) && !m8_db_backend_available(M8_DB_POSTGRES))
        return;
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) {
        snprintf(g_skip[0], sizeof g_skip[0], "pipe failed");
        snprintf(g_skip[1], sizeof g_skip[1], "pipe failed");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execlp("bash", "bash", "-c", helper_script, "test_db-servers", srcdir(), PASSWORD, kinds,
               (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    g_helper = pid;
    g_helper_in = in[1];
    FILE *f = fdopen(out[0], "r");
    char line[256];
    for (int k = 0; k < 2; k++)
        snprintf(g_skip[k], sizeof g_skip[k], "the server helper failed");
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "ready") == 0)
            break;
        int k = strstr(line, "Postgres") ? 1 : 0;
        unsigned port = 0;
        if (sscanf(line, "up %*s %u", &port) == 1) {
            g_port[k] = port;
            g_skip[k][0] = '\0';
        } else if (strncmp(line, "skip ", 5) == 0) {
            const char *why = strchr(line + 5, ' ');
            snprintf(g_skip[k], sizeof g_skip[k], "%s", why ? why + 1 : line);
        }
    }
    if (f)
        fclose(f);
}

static void servers_stop(void)
{
    if (g_helper < 0)
        return;
    close(g_helper_in); /* the helper's EXIT trap stops the servers */
    int st;
    waitpid(g_helper, &st, 0);
    g_helper = -1;
}

static m8_db *connect_to(m8_db_kind kind, unsigned port, const char *prefix)
{
    m8_settings *s = db_settings(kind, port);
    s->db_database = APP_DB;
    s->tables_prefix = (char *)prefix;
    m8_db_timeouts t = {3, 5};
    char err[512] = "";
    m8_db *db = m8_db_open(s, &t, err, sizeof err);
    free(s);
    return db;
}

/* Runs sql without parameters; reports a failure. */
static int run(m8_db *db, const char *sql)
{
    int rc = m8_db_exec(db, sql, NULL, 0, NULL);
    if (rc)
        diag("%s: %d %s", sql, rc, m8_db_last_error(db)->message);
    return rc;
}

static const char *const tricky[] = {
    "'; DROP TABLE t_types; --",
    "Robert'); DELETE FROM t_types WHERE ('1'='1",
    "? $1 :name %s %n \\\\ \\' \\\" `x` \"y\"",
    "/* comment */ -- line\n\t\r",
    "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xae",
    "",
};

static void test_types(m8_db *db, const char *k, bool pg)
{
    run(db, "DROP TABLE IF EXISTS t_types");
    ok(run(db, pg ? "CREATE TABLE t_types (id INT PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, "
                    "s VARCHAR(200), b BOOLEAN, ts TIMESTAMP(6), n VARCHAR(10))"
                  : "CREATE TABLE t_types (id INT PRIMARY KEY, i BIGINT, d DOUBLE, s "
                    "VARCHAR(200), b BOOLEAN, ts DATETIME(6), n VARCHAR(10)) CHARACTER SET "
                    "utf8mb4 COLLATE utf8mb4_bin") == 0,
       "%s: CREATE TABLE through m8_db_exec", k);
    const int64_t ints[] = {INT64_MIN, -1, 0, 42, INT64_MAX};
    const double dbls[] = {0.1, -2.5e-300, 1.0 / 3.0, 123456789.125, 0.0};
    const int64_t times[] = {0, 1714566896123456LL, -86400000001LL, 4102444799999999LL,
                             946684800000000LL};
    const char *sql = "INSERT INTO t_types (id, i, d, s, b, ts, n) VALUES (?, ?, ?, ?, ?, ?, ?)";
    int fails = 0;
    for (int r = 0; r < 5; r++) {
        m8_db_param p[7] = {M8_DB_INT(r),
                            M8_DB_INT(ints[r]),
                            M8_DB_DOUBLE(dbls[r]),
                            M8_DB_TEXT(tricky[r]),
                            M8_DB_BOOL(r % 2),
                            M8_DB_TIME(times[r]),
                            M8_DB_NULL};
        m8_db_result *res = NULL;
        if (m8_db_exec(db, sql, p, 7, &res) != 0) {
            diag("insert %d: %s", r, m8_db_last_error(db)->message);
            fails++;
        } else if (m8_db_affected(res) != 1) {
            fails++;
        }
        m8_db_result_free(res);
    }
    is_int(fails, 0, "%s: five rows inserted with typed parameters (affected 1 each)", k);

    m8_db_result *res = NULL;
    int rc = m8_db_exec(db, "SELECT id, i, d, s, b, ts, n FROM t_types ORDER BY id", NULL, 0, &res);
    is_int(rc, 0, "%s: SELECT with no parameter", k);
    is_int(m8_db_nrows(res), 5, "%s: five rows back", k);
    is_int(m8_db_ncols(res), 7, "%s: seven columns", k);
    is_str(m8_db_colname(res, 3), "s", "%s: column names", k);
    is_int(m8_db_affected(res), -1, "%s: a statement with rows has no affected count", k);
    int bad_i = 0, bad_d = 0, bad_s = 0, bad_b = 0, bad_t = 0, bad_n = 0;
    for (size_t r = 0; r < m8_db_nrows(res); r++) {
        int64_t iv = 0, tv = 0;
        double dv = 0;
        int bv = -1;
        size_t len = 0;
        const char *sv = m8_db_get_text(res, r, 3, &len);
        bad_i += m8_db_get_int(res, r, 1, &iv) != 0 || iv != ints[r];
        bad_d += m8_db_get_double(res, r, 2, &dv) != 0 || dv != dbls[r];
        bad_s += !sv || len != strlen(tricky[r]) || memcmp(sv, tricky[r], len) != 0;
        bad_b += m8_db_get_bool(res, r, 4, &bv) != 0 || bv != (int)(r % 2);
        bad_t += m8_db_get_time(res, r, 5, &tv) != 0 || tv != times[r];
        bad_n += !m8_db_is_null(res, r, 6) || m8_db_get_int(res, r, 6, &iv) != M8_ENOTFOUND ||
                 m8_db_get_text(res, r, 6, NULL) != NULL;
        if (bad_d && r == 0)
            diag("%s: double back: %.17g (%s)", k, dv, m8_db_get_text(res, r, 2, NULL));
    }
    is_int(bad_i, 0, "%s: int64 round trip (INT64_MIN..INT64_MAX)", k);
    is_int(bad_d, 0, "%s: double round trip, bit for bit", k);
    is_int(bad_s, 0, "%s: SQL-shaped, quoted, multi-byte and empty text stored verbatim", k);
    is_int(bad_b, 0, "%s: bool round trip", k);
    is_int(bad_t, 0, "%s: timestamps round trip to the microsecond, as UTC (also before 1970)", k);
    is_int(bad_n, 0, "%s: NULL reads as NULL (M8_ENOTFOUND, no text)", k);
    int64_t iv;
    is_int(m8_db_get_int(res, 0, 3, &iv), M8_EPARSE, "%s: text is not an integer (M8_EPARSE)", k);
    is_int(m8_db_get_int(res, 5, 0, &iv), M8_EINVAL, "%s: a row out of range (M8_EINVAL)", k);
    is_int(m8_db_get_int(res, 0, 7, &iv), M8_EINVAL, "%s: a column out of range (M8_EINVAL)", k);
    m8_db_result_free(res);

    /* Parameters in conditions, LIMIT/OFFSET, a '?' inside a literal. */
    m8_db_param w[3] = {M8_DB_TEXT(tricky[0]), M8_DB_INT(1), M8_DB_INT(0)};
    rc = m8_db_exec(db, "SELECT id, '?' AS q FROM t_types WHERE s = ? ORDER BY id LIMIT ? OFFSET ?",
                    w, 3, &res);
    ok(rc == 0 && m8_db_nrows(res) == 1 && strcmp(m8_db_get_text(res, 0, 1, NULL), "?") == 0,
       "%s: a text parameter matches its row; '?' in a literal is not a parameter", k);
    m8_db_result_free(res);
    m8_db_param upd[2] = {M8_DB_TEXTN("abcdef", 3), M8_DB_INT(3)};
    rc = m8_db_exec(db, "UPDATE t_types SET n = ? WHERE id >= ?", upd, 2, &res);
    ok(rc == 0 && m8_db_affected(res) == 2, "%s: UPDATE reports the affected rows (2)", k);
    m8_db_result_free(res);
    rc = m8_db_exec(db, "SELECT n FROM t_types WHERE id = 4", NULL, 0, &res);
    ok(rc == 0 && strcmp(m8_db_get_text(res, 0, 0, NULL), "abc") == 0,
       "%s: a text with an explicit length stores exactly those bytes", k);
    m8_db_result_free(res);

    /* Refused arguments. */
    is_int(m8_db_exec(db, "SELECT ?", NULL, 0, NULL), M8_EINVAL, "%s: too few parameters", k);
    m8_db_param two[2] = {M8_DB_INT(1), M8_DB_INT(2)};
    is_int(m8_db_exec(db, "SELECT ?", two, 2, NULL), M8_EINVAL, "%s: too many parameters", k);
    m8_db_param nul = M8_DB_TEXTN("a\0b", 3);
    is_int(m8_db_exec(db, "SELECT ?", &nul, 1, NULL), M8_EINVAL,
           "%s: a NUL byte inside a text is refused", k);
    m8_db_param tx = M8_DB_TEXT(NULL);
    /* PostgreSQL types a NULL from its context: CAST gives it one. */
    rc = m8_db_exec(db, "SELECT CAST(? AS CHAR(10)) IS NULL", &tx, 1, &res);
    int bv = 0;
    ok(rc == 0 && m8_db_get_bool(res, 0, 0, &bv) == 0 && bv == 1,
       "%s: M8_DB_TEXT(NULL) is SQL NULL", k);
    m8_db_result_free(res);

    /* MariaDB's AUTO_INCREMENT id; PostgreSQL's RETURNING. */
    run(db, "DROP TABLE IF EXISTS t_auto");
    run(db, pg ? "CREATE TABLE t_auto (id BIGSERIAL PRIMARY KEY, v INT)"
               : "CREATE TABLE t_auto (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)");
    m8_db_param one = M8_DB_INT(7);
    run(db, "INSERT INTO t_auto (v) VALUES (1)");
    rc = m8_db_exec(db,
                    pg ? "INSERT INTO t_auto (v) VALUES (?) RETURNING id"
                       : "INSERT INTO t_auto (v) VALUES (?)",
                    &one, 1, &res);
    int64_t id = 0;
    if (pg)
        m8_db_get_int(res, 0, 0, &id);
    else
        id = m8_db_insert_id(res);
    ok(rc == 0 && id == 2, "%s: the new row's id (%s) is 2", k,
       pg ? "RETURNING" : "m8_db_insert_id");
    m8_db_result_free(res);
}

static void test_tx(m8_db *db, const char *k, bool pg)
{
    run(db, "DROP TABLE IF EXISTS t_tx");
    run(db, pg ? "CREATE TABLE t_tx (id INT PRIMARY KEY)"
               : "CREATE TABLE t_tx (id INT PRIMARY KEY) ENGINE=InnoDB");
    m8_db_result *res = NULL;
    is_int(m8_db_begin(db), 0, "%s: BEGIN", k);
    ok(m8_db_in_transaction(db), "%s: in a transaction", k);
    is_int(m8_db_begin(db), M8_ESTATE, "%s: BEGIN inside a transaction is M8_ESTATE", k);
    run(db, "INSERT INTO t_tx VALUES (1)");
    is_int(m8_db_rollback(db), 0, "%s: ROLLBACK", k);
    ok(!m8_db_in_transaction(db), "%s: ... ends the transaction", k);
    m8_db_exec(db, "SELECT COUNT(*) FROM t_tx", NULL, 0, &res);
    int64_t n = -1;
    m8_db_get_int(res, 0, 0, &n);
    is_int(n, 0, "%s: a rolled back insert is gone", k);
    m8_db_result_free(res);
    m8_db_begin(db);
    run(db, "INSERT INTO t_tx VALUES (2)");
    is_int(m8_db_commit(db), 0, "%s: COMMIT", k);
    m8_db_exec(db, "SELECT COUNT(*) FROM t_tx", NULL, 0, &res);
    m8_db_get_int(res, 0, 0, &n);
    is_int(n, 1, "%s: a committed insert stays", k);
    m8_db_result_free(res);
    is_int(m8_db_commit(db), M8_ESTATE, "%s: COMMIT outside a transaction is M8_ESTATE", k);
    is_int(m8_db_rollback(db), M8_ESTATE, "%s: ROLLBACK outside a transaction is M8_ESTATE", k);

    /* A failed statement inside a transaction. */
    m8_db_begin(db);
    run(db, "INSERT INTO t_tx VALUES (3)");
    int rc = m8_db_exec(db, "INSERT INTO t_tx VALUES (2)", NULL, 0, NULL);
    is_int(rc, M8_EIO, "%s: a duplicate inside a transaction fails", k);
    rc = m8_db_commit(db);
    if (pg)
        is_int(rc, M8_EIO, "%s: COMMIT after a failed statement is refused (rolled back)", k);
    else
        is_int(rc, 0, "%s: COMMIT after a failed statement keeps the others (MariaDB)", k);
    ok(!m8_db_in_transaction(db), "%s: ... and the transaction is over", k);
    m8_db_exec(db, "SELECT COUNT(*) FROM t_tx", NULL, 0, &res);
    m8_db_get_int(res, 0, 0, &n);
    is_int(n, pg ? 1 : 2, "%s: rows after it: %d", k, pg ? 1 : 2);
    m8_db_result_free(res);
}

static void test_errors(m8_db *db, const char *k, bool pg)
{
    run(db, "DROP TABLE IF EXISTS t_child");
    run(db, "DROP TABLE IF EXISTS t_parent");
    run(db, pg ? "CREATE TABLE t_parent (id INT PRIMARY KEY, owner_id INT NOT NULL, name "
                 "VARCHAR(50) NOT NULL, CONSTRAINT t_parent_name UNIQUE (owner_id, name))"
               : "CREATE TABLE t_parent (id INT PRIMARY KEY, owner_id INT NOT NULL, name "
                 "VARCHAR(50) NOT NULL, UNIQUE KEY name (owner_id, name)) ENGINE=InnoDB");
    run(db, "CREATE TABLE t_child (id INT PRIMARY KEY, parent_id INT NOT NULL, FOREIGN KEY "
            "(parent_id) REFERENCES t_parent (id))");
    run(db, "INSERT INTO t_parent VALUES (1, 1, 'a')");
    m8_db_param p[3] = {M8_DB_INT(2), M8_DB_INT(1), M8_DB_TEXT("a")};
    int rc = m8_db_exec(db, "INSERT INTO t_parent VALUES (?, ?, ?)", p, 3, NULL);
    const m8_db_error *e = m8_db_last_error(db);
    is_int(rc, M8_EIO, "%s: unique violation: M8_EIO", k);
    ok(e->kind == M8_DB_ERR_UNIQUE, "%s: ... classified unique", k);
    is_str(e->field, "name", "%s: ... the field is name", k);
    respond_is(db, rc, 409,
               "{\"detail\":[{\"table\":null,\"field_name\":\"name\",\"error\":\"Duplicate entry "
               "already exists.\"}]}",
               pg ? "postgres unique" : "mysql unique");

    rc = m8_db_exec(db, "INSERT INTO t_child VALUES (1, 99)", NULL, 0, NULL);
    is_int(rc, M8_EIO, "%s: foreign key violation: M8_EIO", k);
    ok(e->kind == M8_DB_ERR_FOREIGN_KEY, "%s: ... classified foreign key", k);
    is_str(e->field, "parent_id", "%s: ... the field is parent_id", k);
    is_str(e->table, "t_parent", "%s: ... the referenced table", k);
    respond_is(db, rc, 409,
               "{\"detail\":[{\"table\":\"t_parent\",\"field_name\":\"parent_id\",\"error\":"
               "\"Invalid foreign key reference in 'parent_id'.\"}]}",
               pg ? "postgres foreign key" : "mysql foreign key");
    run(db, "INSERT INTO t_child VALUES (1, 1)");
    rc = m8_db_exec(db, "DELETE FROM t_parent WHERE id = 1", NULL, 0, NULL);
    ok(rc == M8_EIO && e->kind == M8_DB_ERR_FOREIGN_KEY,
       "%s: deleting a referenced row: foreign key", k);

    rc = m8_db_exec(db, "INSERT INTO t_parent (id, owner_id, name) VALUES (3, 1, NULL)", NULL, 0,
                    NULL);
    ok(rc == M8_EIO && e->kind == M8_DB_ERR_NOT_NULL, "%s: NULL into NOT NULL: not null", k);
    is_str(e->field, "name", "%s: ... naming the column", k);
    respond_is(db, rc, 500, NULL, pg ? "postgres not null" : "mysql not null");

    rc = m8_db_exec(db, "SELEKT 1", NULL, 0, NULL);
    ok(rc == M8_EIO && e->kind == M8_DB_ERR_OTHER, "%s: a syntax error: other", k);
    ok(strlen(e->message) > 0 && strchr(e->message, '\n') == NULL, "%s: ... one-line reason: %s", k,
       e->message);
    respond_is(db, rc, 500, NULL, pg ? "postgres syntax error" : "mysql syntax error");
    is_int(m8_db_exec(db, "SELECT 1", NULL, 0, NULL), 0, "%s: the handle works after errors", k);
}

/* The server ends the session (a restart does the same): the next
 * statement outside a transaction reconnects; inside one it fails. */
static void test_reconnect(m8_db *db, m8_db *admin, const char *k, bool pg)
{
    m8_db_result *res = NULL;
    int64_t id = 0;
    m8_db_exec(db, pg ? "SELECT pg_backend_pid()" : "SELECT CONNECTION_ID()", NULL, 0, &res);
    m8_db_get_int(res, 0, 0, &id);
    m8_db_result_free(res);
    m8_db_param p = M8_DB_INT(id);
    int rc =
        m8_db_exec(admin, pg ? "SELECT pg_terminate_backend(?)" : "KILL CONNECTION ?", &p, 1, NULL);
    is_int(rc, 0, "%s: the session of the handle is killed from another one", k);
    usleep(100000);
    int64_t id2 = 0;
    rc = m8_db_exec(db, pg ? "SELECT pg_backend_pid()" : "SELECT CONNECTION_ID()", NULL, 0, &res);
    m8_db_get_int(res, 0, 0, &id2);
    m8_db_result_free(res);
    is_int(rc, 0, "%s: the next statement works: it reconnected by itself", k);
    ok(id2 != 0 && id2 != id, "%s: ... on a new session", k);

    m8_db_begin(db);
    p = M8_DB_INT(id2);
    m8_db_exec(admin, pg ? "SELECT pg_terminate_backend(?)" : "KILL CONNECTION ?", &p, 1, NULL);
    usleep(100000);
    rc = m8_db_exec(db, "SELECT 1", NULL, 0, NULL);
    is_int(rc, M8_EAGAIN, "%s: inside a transaction the lost session is M8_EAGAIN", k);
    ok(m8_db_last_error(db)->kind == M8_DB_ERR_UNAVAILABLE, "%s: ... classified unavailable", k);
    ok(!m8_db_in_transaction(db), "%s: ... and the transaction is gone", k);
    respond_is(db, rc, 503, "{\"detail\":\"Database unavailable.\"}",
               pg ? "postgres lost session" : "mysql lost session");
    is_int(m8_db_exec(db, "SELECT 1", NULL, 0, NULL), 0, "%s: the statement after it works", k);
}

static void test_ceiling(m8_db *db, const char *k, bool pg)
{
    /* Rows of 1 MiB: 15 fit in M8_DB_MAX_RESULT_BYTES (16 MiB), 17 do not. */
    const char *sql = pg ? "SELECT repeat('x', 1048576) FROM generate_series(1, ?)"
                         : "SELECT REPEAT('x', 1048576) FROM seq_1_to_100 LIMIT ?";
    m8_db_param n = M8_DB_INT(15);
    m8_db_result *res = NULL;
    int rc = m8_db_exec(db, sql, &n, 1, &res);
    ok(rc == 0 && m8_db_nrows(res) == 15, "%s: a result of 15 MiB is read (%d)", k, rc);
    if (rc)
        diag("%s", m8_db_last_error(db)->message);
    m8_db_result_free(res);
    n = M8_DB_INT(17);
    rc = m8_db_exec(db, sql, &n, 1, &res);
    is_int(rc, M8_ETOOBIG, "%s: a result over 16 MiB is refused", k);
    ok(res == NULL, "%s: ... without a result", k);
    is_int(m8_db_exec(db, "SELECT 1", NULL, 0, NULL), 0, "%s: the handle works after it", k);
}

static void test_table(m8_db *db, const char *k)
{
    char buf[64];
    is_int(m8_db_table(db, "items", buf, sizeof buf), 0, "%s: m8_db_table", k);
    is_str(buf, "app_items", "%s: ... TABLES_PREFIX + '_' + name", k);
    is_int(m8_db_table(db, "it ems", buf, sizeof buf), M8_EINVAL, "%s: a name with a blank", k);
    is_int(m8_db_table(db, "1x", buf, sizeof buf), M8_EINVAL, "%s: a name starting with a digit",
           k);
    is_int(m8_db_table(db, "items", buf, 9), M8_ETOOBIG, "%s: a short buffer", k);
    char name[64];
    memset(name, 'n', 59);
    name[59] = '\0'; /* "app_" + 59 = 63 bytes */
    is_int(m8_db_table(db, name, buf, sizeof buf), 0, "%s: a table name of 63 bytes", k);
    name[59] = 'n';
    name[60] = '\0';
    is_int(m8_db_table(db, name, buf, sizeof buf), M8_EINVAL, "%s: 64 bytes is too long", k);
}

/* ------------------------------------------------------------ in an app */

static int h_insert(m8_request *req, void *data)
{
    const char *mode = data;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_db_respond(req, NULL, 0);
    bool tx = strcmp(mode, "auto") != 0;
    int rc = tx ? m8_db_begin(db) : 0;
    m8_db_param p = M8_DB_TEXT(m8_req_path_param(req, "v"));
    if (rc == 0)
        rc = m8_db_exec(db, "INSERT INTO t_app (v) VALUES (?)", &p, 1, NULL);
    if (rc != 0)
        return m8_db_respond(req, db, rc);
    if (strcmp(mode, "fail") == 0)
        return m8_req_fail(req, "failing after the insert");
    return m8_res_json(req, 200, json_object_new_object());
}

static const m8_route app_routes[] = {
    {"POST", "/auto/{v}", M8_PUBLIC, h_insert, "auto", NULL, NULL, 0},
    {"POST", "/fail/{v}", M8_PUBLIC, h_insert, "fail", NULL, NULL, 0},
    {"POST", "/open/{v}", M8_PUBLIC, h_insert, "open", NULL, NULL, 0},
};

static int g_on_db_runs;
static int on_db(m8_app *app, void *data)
{
    (void)data;
    g_on_db_runs++;
    m8_db *db = m8_app_db(app);
    return db ? m8_db_exec(db, "CREATE TABLE IF NOT EXISTS t_app (v VARCHAR(40))", NULL, 0, NULL)
              : -1;
}

/* An app with the database routes, booted from env (NULL on failure, the
 * exit status in *rc). */
static m8_app *db_app(char **env, m8_db_use use, int *rc)
{
    m8_app *app = m8_app_new("db-test", "1.0.0");
    m8_app_add_routes(app, app_routes, M8_ARRAY_LEN(app_routes));
    m8_app_use_database(app, use, 3, 5);
    m8_app_on_database(app, on_db, NULL);
    m8_app_health_options(app, 5, M8_HEALTH_LENIENT, 0, 1);
    m8_settings_source src = {
        .env = env, .env_file = "/dev/null", .cwd = "/", .uses_database = m8_db_app_required(app)};
    *rc = m8_app_boot(app, &src);
    if (*rc == 0)
        *rc = m8_app_start(app);
    if (*rc) {
        m8_app_free(app);
        return NULL;
    }
    return app;
}

static int app_req(m8_app *app, const char *method, const char *uri, char *body, size_t blen)
{
    m8_pair p[] = {{"REQUEST_METHOD", method},
                   {"REQUEST_URI", uri},
                   {"QUERY_STRING", ""},
                   {"HTTP_HOST", "localhost"}};
    m8_buf out;
    m8_buf_init(&out, 1 << 20);
    m8_app_handle_params(app, p, M8_ARRAY_LEN(p), NULL, 0, &out);
    int status = 0;
    if (out.data && strncmp(out.data, "Status: ", 8) == 0)
        status = (int)strtol(out.data + 8, NULL, 10);
    const char *sep = out.data ? strstr(out.data, "\r\n\r\n") : NULL;
    if (body)
        snprintf(body, blen, "%s", sep ? sep + 4 : "");
    m8_buf_free(&out);
    return status;
}

/* The app tests' log lines go to /dev/null (a TAP stream stays clean). */
static void quiet_log(bool on)
{
    static int fd = -1;
    if (on && fd < 0)
        fd = open("/dev/null", O_WRONLY);
    m8_log_set_fd(on ? fd : -1);
}

static void test_app_without(void)
{
    int rc;
    m8_app *app = db_app(m8t_env0(), M8_DB_OPTIONAL, &rc);
    ok(app != NULL, "app: M8_DB_OPTIONAL without DB_* boots");
    g_on_db_runs = 0;
    ok(app && m8_app_db(app) == NULL, "app: ... with no database handle");
    is_int(g_on_db_runs, 0, "app: ... and the m8_app_on_database hook does not run");
    char body[512];
    is_int(app_req(app, "POST", "/api/auto/x", body, sizeof body), 503,
           "app: a handler without a database answers 503");
    is_str(body, "{\"detail\":\"Database not configured.\"}", "app: ... Database not configured.");
    app_req(app, "GET", "/api/health/", body, sizeof body);
    ok(strstr(body, "database") == NULL, "app: ... and no database health check");
    m8_app_free(app);

    app = db_app(m8t_env0(), M8_DB_REQUIRED, &rc);
    ok(app == NULL && rc != 0, "app: M8_DB_REQUIRED without DB_* does not boot (%d)", rc);
    app = db_app(m8t_env("SELECTED_DB=Postgres", "DB_HOST=127.0.0.1", "DB_PORT=5432",
                         "DB_DATABASE=" APP_DB, "DB_USER=" APP_USER, "DB_PASSWORD=" PASSWORD,
                         "TABLES_PREFIX=no-good", NULL),
                 M8_DB_OPTIONAL, &rc);
    ok(app == NULL && rc == 78, "app: a TABLES_PREFIX that is no identifier is a config error");
    is_int(m8_app_use_database(NULL, M8_DB_OPTIONAL, 0, 0), M8_EINVAL, "app: NULL app refused");
    m8_app *a2 = m8_app_new("x", "1");
    is_int(m8_app_use_database(a2, (m8_db_use)7, 0, 0), M8_EINVAL, "app: an unknown use refused");
    is_int(m8_app_use_database(a2, M8_DB_OPTIONAL, -1, 0), M8_EINVAL,
           "app: a negative timeout refused");
    is_int(m8_app_on_database(a2, on_db, NULL), M8_ESTATE,
           "app: m8_app_on_database before m8_app_use_database is M8_ESTATE");
    m8_app_free(a2);
}

static int64_t count_rows(m8_db *db, const char *v)
{
    m8_db_param p = M8_DB_TEXT(v);
    m8_db_result *res = NULL;
    int64_t n = -1;
    if (m8_db_exec(db, "SELECT COUNT(*) FROM t_app WHERE v = ?", &p, 1, &res) == 0)
        m8_db_get_int(res, 0, 0, &n);
    m8_db_result_free(res);
    return n;
}

static int64_t sessions(m8_db *admin, bool pg)
{
    m8_db_result *res = NULL;
    int64_t n = -1;
    m8_db_param u = M8_DB_TEXT(APP_USER);
    if (m8_db_exec(admin,
                   pg ? "SELECT COUNT(*) FROM pg_stat_activity WHERE usename = ?"
                      : "SELECT COUNT(*) FROM information_schema.processlist WHERE user = ?",
                   &u, 1, &res) == 0)
        m8_db_get_int(res, 0, 0, &n);
    m8_db_result_free(res);
    return n;
}

static void test_app_with(m8_db_kind kind, m8_db *admin)
{
    const char *k = m8_db_kind_name(kind);
    bool pg = kind == M8_DB_POSTGRES;
    char port[32];
    snprintf(port, sizeof port, "DB_PORT=%u", g_port[pg]);
    int rc;
    g_on_db_runs = 0;
    usleep(200000); /* sessions closed by earlier tests are gone */
    int64_t base = sessions(admin, pg);
    m8_app *app =
        db_app(m8t_env(pg ? "SELECTED_DB=Postgres" : "SELECTED_DB=Mysql", "DB_HOST=127.0.0.1", port,
                       "DB_DATABASE=" APP_DB, "DB_USER=" APP_USER, "DB_PASSWORD=" PASSWORD, NULL),
               M8_DB_REQUIRED, &rc);
    ok(app != NULL, "%s app: boots with the database (%d)", k, rc);
    if (!app)
        return;
    is_int(g_on_db_runs, 1, "%s app: the m8_app_on_database hook ran at startup", k);
    char body[1024];
    is_int(app_req(app, "POST", "/api/auto/a1", body, sizeof body), 200, "%s app: autocommit", k);
    is_int(count_rows(admin, "a1"), 1, "%s app: ... the row is there", k);
    is_int(app_req(app, "POST", "/api/fail/f1", body, sizeof body), 500,
           "%s app: a handler that fails inside a transaction: 500", k);
    is_int(count_rows(admin, "f1"), 0, "%s app: ... its insert was rolled back", k);
    is_int(app_req(app, "POST", "/api/open/o1", body, sizeof body), 200,
           "%s app: a handler that leaves its transaction open: 200", k);
    is_int(count_rows(admin, "o1"), 0, "%s app: ... its insert was rolled back too", k);
    ok(!m8_db_in_transaction(m8_app_db(app)), "%s app: ... and the thread's handle is idle", k);
    is_int(app_req(app, "POST", "/api/auto/a2", body, sizeof body), 200,
           "%s app: the same connection serves the next request", k);
    app_req(app, "GET", "/api/health/", body, sizeof body);
    like(body, "{\"name\":\"database\",\"status\":\"ok\",\"latency_ms\":",
         "%s app: the database health check is ok, with its latency", k);
    like(body, pg ? "\"backend\":\"postgres\"" : "\"backend\":\"mysql\"", "%s app: ... and backend",
         k);
    is_int(sessions(admin, pg), base + 2,
           "%s app: two sessions: the thread's (startup and requests) and the check's", k);
    m8_app_free(app);
    usleep(200000);
    is_int(sessions(admin, pg), base, "%s app: m8_app_free closes both (dispose)", k);
}

static void test_server(m8_db_kind kind)
{
    const char *k = m8_db_kind_name(kind);
    int ki = kind == M8_DB_POSTGRES;
    if (g_skip[ki][0]) {
        ok(1, "%s: a real server # SKIP %s", k, g_skip[ki]);
        return;
    }
    bool pg = kind == M8_DB_POSTGRES;
    m8_db *db = connect_to(kind, g_port[ki], "app");
    m8_db *admin = connect_to(kind, g_port[ki], "app");
    ok(db && admin, "%s: handles for the server on port %u", k, g_port[ki]);
    if (!db || !admin)
        return;
    is_int(m8_db_get_dialect(db), pg ? M8_DB_DIALECT_POSTGRES : M8_DB_DIALECT_MYSQL,
           "%s: the dialect", k);
    test_table(db, k);
    test_types(db, k, pg);
    test_tx(db, k, pg);
    test_errors(db, k, pg);
    test_reconnect(db, admin, k, pg);
    test_ceiling(db, k, pg);
    quiet_log(true);
    test_app_with(kind, admin);
    quiet_log(false);
    m8_db_close(db);
    m8_db_close(admin);
}

static void test_unavailable(m8_db_kind kind)
{
    const char *k = m8_db_kind_name(kind);
    m8_db *db = connect_to(kind, closed_port(), "app");
    double t0 = m8_now_mono();
    int rc = m8_db_exec(db, "SELECT 1", NULL, 0, NULL);
    is_int(rc, M8_EAGAIN, "%s: a statement with nothing listening is M8_EAGAIN", k);
    ok(m8_now_mono() - t0 < 1.5, "%s: ... at once", k);
    ok(m8_db_last_error(db)->kind == M8_DB_ERR_UNAVAILABLE, "%s: ... classified unavailable", k);
    ok(strstr(m8_db_last_error(db)->message, PASSWORD) == NULL, "%s: ... no password in it", k);
    respond_is(db, rc, 503, "{\"detail\":\"Database unavailable.\"}",
               kind == M8_DB_POSTGRES ? "postgres unavailable" : "mysql unavailable");
    is_int(m8_db_begin(db), M8_EAGAIN, "%s: BEGIN with nothing listening is M8_EAGAIN", k);
    ok(!m8_db_in_transaction(db), "%s: ... and no transaction is open", k);
    m8_db_close(db);
}

int main(void)
{
    signal_ignore_pipe();
    test_scrub();
    test_settings();
    test_availability();
    test_placeholders();
    test_time();
    test_classify();
    test_respond_pure();
    test_result_limits();
    quiet_log(true);
    test_app_without();
    quiet_log(false);
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        if (!m8_db_backend_available(kind)) {
            diag("%s backend not built: skipping its connection tests", m8_db_kind_name(kind));
            continue;
        }
        test_closed_port(kind);
        test_silent_server(kind);
        test_wait(kind);
        test_unavailable(kind);
    }
    servers_start();
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        if (!m8_db_backend_available(kind)) {
            ok(1, "%s: a real server # SKIP backend not built", m8_db_kind_name(kind));
            continue;
        }
        test_server(kind);
    }
    servers_stop();
    return done_testing();
}
