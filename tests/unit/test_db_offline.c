/* test_db_offline.c - the database layer without a server: settings
 * checks, backend availability, password scrubbing, bounded failures against
 * a closed port and a silent server, the pre-start wait, placeholders,
 * timestamps, error classification, the response mapping. */

#include "test_db.h"

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

void test_scrub(void)
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

void test_settings(void)
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

void test_availability(void)
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

void test_closed_port(m8_db_kind kind)
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
void test_silent_server(m8_db_kind kind)
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

void test_wait(m8_db_kind kind)
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

void test_placeholders(void)
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

void test_time(void)
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

void test_classify(void)
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

void test_result_limits(void)
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

void test_respond_pure(void)
{
    respond_is(NULL, M8_EAGAIN, 503, "{\"detail\":\"Database not configured.\"}", "no database");
}

void test_unavailable(m8_db_kind kind)
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
