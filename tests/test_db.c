/* test_db.c - the database layer without a database server (db.h): settings
 * checks, backend availability, password scrubbing, bounded failures against
 * a closed port and a server that never answers, and the pre-start wait's
 * log lines.  tests/integration/t_prestart.sh runs against real servers. */
#include "db.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

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

int main(void)
{
    test_scrub();
    test_settings();
    test_availability();
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        if (!m8_db_backend_available(kind)) {
            diag("%s backend not built: skipping its connection tests", m8_db_kind_name(kind));
            continue;
        }
        test_closed_port(kind);
        test_silent_server(kind);
        test_wait(kind);
    }
    return done_testing();
}
