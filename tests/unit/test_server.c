/* test_server - listening sockets (server.h): address forms, unix socket
 * modes, stale and live sockets; the epoll engine's connection deadlines
 * (idle, half-sent request), retiring (stop accepting, keep serving kept
 * connections) and descriptor exhaustion (no spinning on EMFILE). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "app/server.h"
#include "http/fcgi_proto.h"
#include "tap.h"
#include "testenv.h"

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int connect_unix(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Sends FCGI_GET_VALUES (answered by the engine itself, no application
 * needed) and waits up to 10 s for the GET_VALUES_RESULT record. */
static bool get_values(int fd)
{
    m8_buf q, rec;
    m8_buf_init(&q, 4096);
    m8_buf_init(&rec, 4096);
    bool sent = m8_fcgi_encode_pair(&q, "FCGI_MPXS_CONNS", 15, "", 0) == 0 &&
                m8_fcgi_record(&rec, M8_FCGI_GET_VALUES, 0, q.data, q.len) == 0 &&
                send(fd, rec.data, rec.len, MSG_NOSIGNAL) == (ssize_t)rec.len;
    m8_buf_free(&q);
    m8_buf_free(&rec);
    if (!sent)
        return false;
    unsigned char h[8];
    size_t got = 0;
    double until = mono() + 10;
    while (got < sizeof h && mono() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t n = recv(fd, h + got, sizeof h - got, 0);
        if (n <= 0)
            return false;
        got += (size_t)n;
    }
    if (got < sizeof h || h[1] != M8_FCGI_GET_VALUES_RESULT)
        return false;
    size_t rest = (((size_t)h[4] << 8) | h[5]) + h[6];
    char sink[512];
    while (rest) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return false;
        ssize_t n = recv(fd, sink, rest < sizeof sink ? rest : sizeof sink, 0);
        if (n <= 0)
            return false;
        rest -= (size_t)n;
    }
    return true;
}

/* Waits up to `seconds` for the server to close fd: true on EOF or reset.
 * Bytes the server sends are read and dropped; with `trickle` one byte of
 * an endless record header goes out every 100 ms meanwhile. */
static bool closed_within(int fd, double seconds, bool trickle)
{
    double until = mono() + seconds;
    while (mono() < until) {
        if (trickle && send(fd, "\x01", 1, MSG_NOSIGNAL) < 0)
            return errno == EPIPE || errno == ECONNRESET;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        char b[256];
        ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
    }
    return false;
}

/* The epoll engine alone (no application: management records only). */
static m8_server *start_bare(int lfd, const m8_conn_limits *lim, char *err, size_t errlen)
{
    m8_engine_opts o = {.threads = 2, .max_body = 4096};
    if (lim)
        o.limits = *lim;
    return m8_server_start(&o, lfd, err, errlen);
}

static bool conns_drop_to(m8_server *srv, int want, double seconds)
{
    double until = mono() + seconds;
    while (m8_server_conns(srv) != want && mono() < until)
        nap_ms(20);
    return m8_server_conns(srv) == want;
}

/* utime + stime of a process, in clock ticks (/proc/PID/stat fields 14, 15). */
static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    long long ut = -1, st = -1;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt,
     * then utime and stime */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut, &st) != 2)
        return -1;
    return ut + st;
}

static int count_in_file(const char *path, const char *needle)
{
    char buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    int k = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        k++;
    return k;
}

/* Deadlines: an idle connection, a half-sent record, a request begun but
 * never finished, and a peer trickling bytes all lose their descriptor. */
static void test_deadlines(const char *dir)
{
    char path[300], spec[320], err[512];
    snprintf(path, sizeof path, "%s/d.sock", dir);
    snprintf(spec, sizeof spec, "unix:%s", path);
    int lfd = m8_listen(spec, 64, 0600, err, sizeof err);
    m8_conn_limits lim = {.idle_timeout_s = 1.0, .request_deadline_s = 0.5};
    m8_server *srv = lfd >= 0 ? start_bare(lfd, &lim, err, sizeof err) : NULL;
    ok(srv != NULL, "the epoll engine starts with --idle-timeout 1 --request-deadline 0.5");
    if (!srv)
        return;
    int a = connect_unix(path);
    ok(a >= 0 && get_values(a), "a connection is served (FCGI_GET_VALUES answered)");
    ok(closed_within(a, 10, false), "an idle kept connection is closed after --idle-timeout");
    int b = connect_unix(path);
    ok(b >= 0 && send(b, "\x01\x01\x00\x01", 4, MSG_NOSIGNAL) == 4 && closed_within(b, 10, false),
       "a peer that sends half a record header loses its connection after --request-deadline");
    int c = connect_unix(path);
    static const char begin[] = "\x01\x01\x00\x01\x00\x08\x00\x00"
                                "\x00\x01\x01\x00\x00\x00\x00\x00";
    ok(c >= 0 && send(c, begin, 16, MSG_NOSIGNAL) == 16 && closed_within(c, 10, false),
       "a request begun (BEGIN_REQUEST) but never finished is closed after --request-deadline");
    int d = connect_unix(path);
    ok(d >= 0 && closed_within(d, 10, true),
       "a peer trickling one byte every 100 ms is closed at the deadline counted from its "
       "first byte");
    ok(conns_drop_to(srv, 0, 10), "every closed connection is released (0 open)");
    int fds[] = {a, b, c, d};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    m8_server_stop(srv, 1);
    unlink(path);
}

/* Retiring: no new connection is taken, a kept one is still served, and the
 * server is drained once its peer closes it. */
static void test_retire(const char *dir)
{
    char path[300], spec[320], err[512];
    snprintf(path, sizeof path, "%s/r.sock", dir);
    snprintf(spec, sizeof spec, "unix:%s", path);
    int lfd = m8_listen(spec, 64, 0600, err, sizeof err);
    int keep = lfd >= 0 ? fcntl(lfd, F_DUPFD_CLOEXEC, 3) : -1; /* fcgim8d's copy */
    m8_server *srv = keep >= 0 ? start_bare(lfd, NULL, err, sizeof err) : NULL;
    ok(srv != NULL, "a server to retire starts");
    if (!srv)
        return;
    int e = connect_unix(path);
    ok(e >= 0 && get_values(e), "a kept connection is served before retiring");
    m8_server_retire(srv);
    ok(get_values(e), "a retiring server still serves its kept connection (the peer may reuse it)");
    int f = connect_unix(path);
    nap_ms(300);
    int fl = fcntl(keep, F_GETFL);
    fcntl(keep, F_SETFL, fl | O_NONBLOCK);
    int taken = accept4(keep, NULL, NULL, SOCK_CLOEXEC);
    ok(f >= 0 && taken >= 0,
       "a retiring server accepts no new connection: it waits for the socket's other holders");
    ok(m8_server_conns(srv) == 1, "the retiring server still holds its kept connection");
    if (e >= 0)
        close(e);
    ok(conns_drop_to(srv, 0, 10), "the server is drained once the peer closes its connection");
    m8_server_stop(srv, 1);
    if (taken >= 0)
        close(taken);
    if (f >= 0)
        close(f);
    close(keep);
    unlink(path);
}

/* The engine's respond callback in these tests: counts the requests it
 * gets (data) and answers 200 with no body. */
static void stub_respond(void *data, m8_request *req, const m8_pair *params, size_t n,
                         const char *body, size_t body_len, int preset_status, m8_buf *out)
{
    (void)req;
    (void)params;
    (void)n;
    (void)body;
    (void)body_len;
    (void)preset_status;
    (*(int *)data)++;
    m8_buf_puts(out, "Status: 200 OK\r\nContent-Length: 0\r\n\r\n");
}

/* Sends one FastCGI AUTHORIZER request on a new connection to path and
 * returns the protocolStatus of its END_REQUEST (0 complete, 3 unknown
 * role), or -1 when none came. */
static int authorizer_status(const char *path)
{
    int fd = connect_unix(path);
    if (fd < 0)
        return -1;
    m8_buf rec;
    m8_buf_init(&rec, 1024);
    static const unsigned char begin[8] = {0, 2, 0, 0, 0, 0, 0, 0}; /* authorizer */
    int rc = m8_fcgi_record(&rec, M8_FCGI_BEGIN_REQUEST, 1, begin, sizeof begin);
    if (!rc)
        rc = m8_fcgi_record(&rec, M8_FCGI_PARAMS, 1, NULL, 0);
    bool sent = !rc && send(fd, rec.data, rec.len, MSG_NOSIGNAL) == (ssize_t)rec.len;
    m8_buf_free(&rec);
    unsigned char buf[4096];
    size_t got = 0, pos = 0;
    int status = -1;
    for (double until = mono() + 10; sent && status < 0 && mono() < until;) {
        while (got - pos >= 8) {
            size_t total = 8 + (((size_t)buf[pos + 4] << 8) | buf[pos + 5]) + buf[pos + 6];
            if (got - pos < total)
                break;
            if (buf[pos + 1] == M8_FCGI_END_REQUEST && total >= 16)
                status = buf[pos + 12];
            pos += total;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (status >= 0 || poll(&pf, 1, 200) <= 0)
            continue;
        ssize_t r = recv(fd, buf + got, sizeof buf - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return status;
}

/* The AUTHORIZER role is served when the engine's options say so, and
 * refused as an unknown role otherwise (no process-wide switch). */
static void test_authorizer_option(const char *dir)
{
    for (int on = 0; on < 2; on++) {
        char path[300], spec[320], err[512];
        snprintf(path, sizeof path, "%s/z%d.sock", dir, on);
        snprintf(spec, sizeof spec, "unix:%s", path);
        int calls = 0;
        m8_engine_opts o = {.respond = stub_respond,
                            .data = &calls,
                            .threads = 1,
                            .max_body = 4096,
                            .authorizer = on != 0};
        int lfd = m8_listen(spec, 16, 0600, err, sizeof err);
        m8_server *srv = lfd >= 0 ? m8_server_start(&o, lfd, err, sizeof err) : NULL;
        int st = srv ? authorizer_status(path) : -1;
        if (srv)
            m8_server_stop(srv, 1);
        if (on)
            ok(st == 0 && calls == 1,
               "with the authorizer option an AUTHORIZER request reaches the respond callback "
               "and completes");
        else
            ok(st == M8_FCGI_UNKNOWN_ROLE && calls == 0,
               "without the authorizer option an AUTHORIZER request is refused as an unknown "
               "role");
        unlink(path);
    }
}

/* One FastCGI request for GET /ping on fd with FCGI_KEEP_CONN; reads the
 * answer up to END_REQUEST and returns whether it came, *extra says whether
 * an empty FCGI_STDERR record followed it in the next 300 ms.  With shut,
 * the request is followed at once by shutdown(SHUT_WR). */
static bool ping_kept_then(int fd, bool *extra, bool shut)
{
    m8_buf p, rec;
    m8_buf_init(&p, 4096);
    m8_buf_init(&rec, 8192);
    static const char *const kv[][2] = {{"REQUEST_METHOD", "GET"},
                                        {"REQUEST_URI", "/ping"},
                                        {"SERVER_NAME", "localhost"},
                                        {"SERVER_PORT", "80"},
                                        {"HTTP_HOST", "localhost"}};
    static const unsigned char begin[8] = {0, 1, 1, 0, 0, 0, 0, 0}; /* responder, keep */
    int rc = m8_fcgi_record(&rec, M8_FCGI_BEGIN_REQUEST, 1, begin, sizeof begin);
    for (size_t i = 0; !rc && i < sizeof kv / sizeof kv[0]; i++)
        rc = m8_fcgi_encode_pair(&p, kv[i][0], strlen(kv[i][0]), kv[i][1], strlen(kv[i][1]));
    if (!rc)
        rc = m8_fcgi_record(&rec, M8_FCGI_PARAMS, 1, p.data, p.len);
    if (!rc)
        rc = m8_fcgi_record(&rec, M8_FCGI_PARAMS, 1, NULL, 0);
    if (!rc)
        rc = m8_fcgi_record(&rec, M8_FCGI_STDIN, 1, NULL, 0);
    bool sent = !rc && send(fd, rec.data, rec.len, MSG_NOSIGNAL) == (ssize_t)rec.len &&
                (!shut || shutdown(fd, SHUT_WR) == 0);
    m8_buf_free(&p);
    m8_buf_free(&rec);
    if (!sent)
        return false;
    unsigned char buf[65536];
    size_t got = 0, pos = 0;
    bool ended = false;
    *extra = false;
    for (double until = mono() + 10; mono() < until;) {
        /* walk whole records */
        while (got - pos >= 8) {
            size_t total = 8 + (((size_t)buf[pos + 4] << 8) | buf[pos + 5]) + buf[pos + 6];
            if (got - pos < total)
                break;
            if (ended)
                *extra = buf[pos + 1] == M8_FCGI_STDERR && total == 8;
            ended |= buf[pos + 1] == M8_FCGI_END_REQUEST;
            pos += total;
        }
        if (ended && (*extra || got != pos))
            return true;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, ended ? 300 : 200) <= 0) {
            if (ended)
                return true;
            continue;
        }
        ssize_t n = recv(fd, buf + got, sizeof buf - got, 0);
        if (n <= 0)
            return ended;
        got += (size_t)n;
    }
    return ended;
}

static bool ping_kept(int fd, bool *extra)
{
    return ping_kept_then(fd, extra, false);
}

/* Retiring with a real application: an answer on a kept connection asks
 * the peer to give the connection up (an empty FCGI_STDERR record behind
 * END_REQUEST, which makes nginx close it), and the server itself never
 * closes it. */
/* A server with a real application on unix:PATH (2 threads); NULL when
 * it did not start (*app is then freed). */
static m8_server *start_app(const char *path, m8_app **app_out)
{
    char spec[320], err[512];
    snprintf(spec, sizeof spec, "unix:%s", path);
    m8_app *app = m8_app_new("svc", "1.0.0");
    m8_settings_source src = {.env = m8t_env0(), .env_file = "/dev/null", .cwd = "/"};
    m8_server *srv = NULL;
    if (app && m8_app_boot(app, &src) == 0 && m8_app_start(app) == 0) {
        int lfd = m8_listen(spec, 16, 0600, err, sizeof err);
        m8_engine_opts o;
        m8_app_engine_opts(app, &o);
        o.threads = 2;
        o.max_body = 4096;
        if (lfd >= 0)
            srv = m8_server_start(&o, lfd, err, sizeof err);
    }
    if (!srv) {
        m8_app_free(app);
        app = NULL;
    }
    *app_out = app;
    return srv;
}

static void stop_app(m8_server *srv, m8_app *app, const char *path)
{
    m8_server_stop(srv, 1);
    m8_app_stop(app);
    m8_app_free(app);
    unlink(path);
}

static void test_retire_answer(const char *dir)
{
    char path[300];
    snprintf(path, sizeof path, "%s/a.sock", dir);
    m8_app *app;
    m8_server *srv = start_app(path, &app);
    ok(srv != NULL, "a server with an application starts");
    if (!srv)
        return;
    int fd = connect_unix(path);
    bool extra = true;
    ok(fd >= 0 && ping_kept(fd, &extra) && !extra,
       "a kept connection's answer ends with END_REQUEST while the server serves");
    m8_server_retire(srv);
    extra = false;
    ok(ping_kept(fd, &extra) && extra,
       "once retiring, an answer on a kept connection carries an empty FCGI_STDERR record "
       "behind END_REQUEST (nginx then closes the connection itself)");
    ok(!closed_within(fd, 1, false) && m8_server_conns(srv) == 1,
       "the retiring server does not close the kept connection itself");
    close(fd);
    ok(conns_drop_to(srv, 0, 10), "the retiring server is drained once the peer closes it");
    stop_app(srv, app, path);
}

/* A peer that sends a kept request and shuts its side down at once: the
 * end of file may come with the request's own edge (edge-triggered epoll
 * raises no second one), so the server must read it after answering and
 * close the connection, not keep it until the idle timeout (300 s). */
static void test_eof_with_request(const char *dir)
{
    char path[300];
    snprintf(path, sizeof path, "%s/e.sock", dir);
    m8_app *app;
    m8_server *srv = start_app(path, &app);
    if (!srv) {
        ok(0, "a server with an application starts");
        return;
    }
    int closed = 0;
    for (int i = 0; i < 20; i++) {
        int fd = connect_unix(path);
        bool extra;
        /* SHUT_WR right behind the request's bytes */
        if (fd >= 0 && ping_kept_then(fd, &extra, true) && closed_within(fd, 5, false))
            closed++;
        if (fd >= 0)
            close(fd);
    }
    ok(closed == 20,
       "a kept request followed at once by the peer's end of file: answered, then the "
       "connection is closed (%d of 20 within 5 s)",
       closed);
    ok(conns_drop_to(srv, 0, 10), "... and released (0 open)");
    stop_app(srv, app, path);
}

/* Descriptor exhaustion: a server process limited to 64 descriptors, with
 * 150 peers connected, must not spin (its CPU time stays near zero), must
 * log the condition once per interval, and must serve again once the
 * peers go. */
static void test_emfile(const char *dir)
{
    char path[300], spec[320], err[512], logp[320];
    snprintf(path, sizeof path, "%s/e.sock", dir);
    snprintf(spec, sizeof spec, "unix:%s", path);
    snprintf(logp, sizeof logp, "%s/e.log", dir);
    int lfd = m8_listen(spec, 512, 0600, err, sizeof err);
    int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ctl[2];
    if (lfd < 0 || logfd < 0 || pipe2(ctl, O_CLOEXEC) != 0) {
        ok(0, "EMFILE test setup: %s", err);
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(ctl[1]);
        dup2(logfd, 2);
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = 64;
        setrlimit(RLIMIT_NOFILE, &rl);
        m8_server *srv = start_bare(lfd, NULL, err, sizeof err);
        if (!srv)
            _exit(2);
        char b;
        while (read(ctl[0], &b, 1) < 0 && errno == EINTR) {
        }
        m8_server_stop(srv, 1);
        _exit(0);
    }
    close(ctl[0]);
    close(lfd);
    close(logfd);
    enum { PEERS = 150 };
    int peers[PEERS];
    int connected = 0;
    for (int i = 0; i < PEERS; i++) {
        peers[i] = connect_unix(path);
        connected += peers[i] >= 0;
    }
    ok(connected == PEERS, "%d peers connect to a server limited to 64 descriptors", connected);
    nap_ms(500); /* it accepts what it can and runs out */
    long long t0 = cpu_ticks(pid);
    nap_ms(2000);
    long long t1 = cpu_ticks(pid);
    long hz = sysconf(_SC_CLK_TCK);
    ok(t0 >= 0 && t1 >= 0 && t1 - t0 <= hz / 5,
       "out of descriptors (EMFILE) the server does not spin: %lld CPU ticks in 2 s (at most %ld)",
       t1 - t0, hz / 5);
    int lines = count_in_file(logp, "Too many open files");
    ok(lines >= 1 && lines <= 2, "EMFILE is logged once per interval, not per attempt (%d lines)",
       lines);
    for (int i = 0; i < PEERS; i++)
        if (peers[i] >= 0)
            close(peers[i]);
    int g = -1;
    bool served = false;
    for (double until = mono() + 10; !served && mono() < until;) {
        g = connect_unix(path);
        served = g >= 0 && get_values(g);
        if (g >= 0)
            close(g);
    }
    ok(served, "once the peers are gone the server accepts and serves again");
    close(ctl[1]);
    int st = 0;
    ok(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
       "the exhausted server stops cleanly");
    unlink(path);
    unlink(logp);
}

/* The local TCP port of socket fd, or -1. */
static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* A TCP port of the loopback address of family af that was free a moment
 * ago: bound with port 0, read back and released.  0 when af is not
 * available. */
static int free_port(int af)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (af == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    int fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int port = 0;
    if (bind(fd, (struct sockaddr *)&ss, len) == 0)
        port = bound_port(fd);
    close(fd);
    return port;
}

int main(void)
{
    char dir[] = "/tmp/m8-test-server-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256], spec[400], err[512];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(spec, sizeof spec, "unix:%s", path);

    int fd = m8_listen(spec, 16, 0660, err, sizeof err);
    ok(fd >= 0, "unix:PATH listens");
    ok(m8_is_listen_socket(fd), "the listening socket is recognised as one");
    struct stat st;
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0660,
       "the socket file gets the requested mode");
    ok(m8_listen(spec, 16, 0660, err, sizeof err) < 0 && strstr(err, "in use") != NULL,
       "a live socket of another process is refused, not stolen");
    close(fd);
    fd = m8_listen(spec, 16, 0600, err, sizeof err);
    ok(fd >= 0, "a stale socket file (nobody listening) is replaced");
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600 applied");
    close(fd);
    unlink(path);

    char file[320];
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    if (f)
        fclose(f);
    snprintf(spec, sizeof spec, "unix:%s", file);
    ok(m8_listen(spec, 16, 0660, err, sizeof err) < 0 && strstr(err, "not a socket") != NULL,
       "a regular file at the socket path is never removed");
    unlink(file);

    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    snprintf(spec, sizeof spec, "unix:/%s", longp);
    ok(m8_listen(spec, 16, 0660, err, sizeof err) < 0,
       "a unix path longer than sun_path is refused");

    fd = m8_listen("127.0.0.1:0", 16, 0, err, sizeof err);
    ok(fd < 0, "port 0 is refused (a service needs a known port)");
    int port = free_port(AF_INET);
    snprintf(spec, sizeof spec, "127.0.0.1:%d", port);
    fd = m8_listen(spec, 16, 0, err, sizeof err);
    ok(port > 0 && fd >= 0 && m8_is_listen_socket(fd) && bound_port(fd) == port,
       "host:port listens on TCP on that port");
    if (fd >= 0)
        close(fd);
    port = free_port(AF_INET6);
    snprintf(spec, sizeof spec, "[::1]:%d", port > 0 ? port : 1);
    fd = m8_listen(spec, 16, 0, err, sizeof err);
    ok(port > 0 ? fd >= 0 && bound_port(fd) == port : fd < 0 && strstr(err, "cannot") != NULL,
       "[v6]:port is understood (refused with a reason where IPv6 is off)");
    if (fd >= 0)
        close(fd);
    ok(m8_listen("127.0.0.1", 16, 0, err, sizeof err) < 0, "an address without a port is refused");
    ok(m8_listen("127.0.0.1:65536", 16, 0, err, sizeof err) < 0, "port 65536 is refused");
    ok(m8_listen("[::1:80", 16, 0, err, sizeof err) < 0, "an unclosed [ is refused");
    int pfd[2];
    ok(pipe(pfd) == 0 && !m8_is_listen_socket(pfd[0]) && !m8_is_listen_socket(pfd[1]),
       "a pipe is not taken for a listening socket (stdin under a pipe)");
    close(pfd[0]);
    close(pfd[1]);
    int nul = open("/dev/null", O_RDONLY);
    ok(nul >= 0 && !m8_is_listen_socket(nul), "/dev/null is not taken for a listening socket");
    if (nul >= 0)
        close(nul);
    int sv[2];
    ok(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && !m8_is_listen_socket(sv[0]),
       "a connected socket is not a listening socket (CGI under a socket-based server)");
    close(sv[0]);
    close(sv[1]);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    test_deadlines(dir);
    test_retire(dir);
    test_retire_answer(dir);
    test_eof_with_request(dir);
    test_authorizer_option(dir);
    test_emfile(dir);
    rmdir(dir);
    return done_testing();
}
