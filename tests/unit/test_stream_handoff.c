/* test_stream_handoff - a stream body keeps its serving thread for as long
 * as the client stays (doc/design.md#streaming-responses); the events that
 * thread took from epoll in the same epoll_wait as the stream request must
 * not wait for the stream's end.  Through a real m8_server with 2 threads
 * on a unix socket, set up so that one epoll_wait returns, in this order,
 * a stream request, a plain request on another kept connection, and the
 * listening socket (a connection waiting to be accepted): the plain
 * request is answered and the new connection is accepted and served by
 * the other thread while the stream runs.  Before the fix both waited for
 * the stream to end (nginx: a 504 after fastcgi_read_timeout, then
 * nothing accepted at all by that worker process). */
#include "config.h"

#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "app/engine_epoll.h"
#include "app/listen.h"
#include "app/stream.h"
#include "fcgim8.h"
#include "http/fcgi_proto.h"
#include "tap.h"

static atomic_int g_in_slow, g_release[3], g_bodies, g_in_yield;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static bool wait_for(atomic_int *v, int want, double seconds)
{
    double until = m8_now_mono() + seconds;
    while (atomic_load(v) != want && m8_now_mono() < until)
        sleep_ms(5);
    return atomic_load(v) == want;
}

static void body(m8_stream *st, void *data)
{
    (void)data;
    atomic_fetch_add(&g_bodies, 1);
    while (m8_stream_send(st, "data: {}\n\n", 10) == 0 && m8_stream_wait(st, 20) == 0) {
    }
    atomic_fetch_sub(&g_bodies, 1);
}

/* /slow0 and /slow1 hold their thread until the test releases them (10 s
 * at most); /s is a stream; anything else a plain 200. */
static void respond(void *data, m8_request *req, const m8_pair *params, size_t n, const char *b,
                    size_t blen, int preset, m8_buf *out)
{
    (void)data, (void)b, (void)blen, (void)preset;
    const char *uri = "";
    for (size_t i = 0; i < n; i++)
        if (strcmp(params[i].name, "REQUEST_URI") == 0)
            uri = params[i].value;
    if (strcmp(uri, "/yield") == 0) {
        /* a handler about to block, as a password hash */
        m8_req_will_block(req);
        atomic_store(&g_in_yield, 1);
        wait_for(&g_release[2], 1, 10);
        atomic_store(&g_in_yield, 0);
    } else if (strncmp(uri, "/slow", 5) == 0) {
        atomic_int *rel = &g_release[uri[5] == '1'];
        atomic_fetch_add(&g_in_slow, 1);
        wait_for(rel, 1, 10);
        atomic_fetch_sub(&g_in_slow, 1);
    } else if (strcmp(uri, "/s") == 0 && m8_res_stream(req, body, NULL) == 0) {
        m8_buf_puts(out, "Status: 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
        return;
    }
    m8_buf_puts(out, "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok");
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

/* A FastCGI GET of uri with keep_conn, request id 1, sent on fd. */
static bool send_get(int fd, const char *uri)
{
    m8_buf rec, params;
    m8_buf_init(&rec, 65536);
    m8_buf_init(&params, 65536);
    const unsigned char begin[8] = {0, M8_FCGI_RESPONDER, 1, 0, 0, 0, 0, 0};
    m8_fcgi_encode_pair(&params, "REQUEST_METHOD", 14, "GET", 3);
    m8_fcgi_encode_pair(&params, "REQUEST_URI", 11, uri, strlen(uri));
    m8_fcgi_record(&rec, M8_FCGI_BEGIN_REQUEST, 1, begin, 8);
    m8_fcgi_record(&rec, M8_FCGI_PARAMS, 1, params.data, params.len);
    m8_fcgi_record(&rec, M8_FCGI_PARAMS, 1, NULL, 0);
    m8_fcgi_record(&rec, M8_FCGI_STDIN, 1, NULL, 0);
    bool sent = fd >= 0 && send(fd, rec.data, rec.len, MSG_NOSIGNAL) == (ssize_t)rec.len;
    m8_buf_free(&rec);
    m8_buf_free(&params);
    return sent;
}

/* Reads records for up to `seconds`: true once END_REQUEST came (or, with
 * want, once that many STDOUT bytes came); the STDOUT bytes go to text. */
static bool read_answer(int fd, double seconds, char *text, size_t cap, size_t want)
{
    unsigned char buf[1 << 16];
    size_t have = 0, tlen = 0;
    double until = m8_now_mono() + seconds;
    text[0] = '\0';
    while (fd >= 0 && m8_now_mono() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
        if (r <= 0)
            return false;
        have += (size_t)r;
        size_t off = 0;
        while (have - off >= 8) {
            size_t clen = ((size_t)buf[off + 4] << 8) | buf[off + 5], pad = buf[off + 6];
            if (have - off < 8 + clen + pad)
                break;
            if (buf[off + 1] == M8_FCGI_STDOUT && clen && tlen + clen < cap) {
                memcpy(text + tlen, buf + off + 8, clen);
                tlen += clen;
                text[tlen] = '\0';
            }
            if (buf[off + 1] == M8_FCGI_END_REQUEST)
                return true;
            off += 8 + clen + pad;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (want && tlen >= want)
            return true;
    }
    return false;
}

/* A server on spec with the test's handlers and that many threads; bails
 * out when it does not start. */
static m8_server *start_server(const char *spec, int threads)
{
    char err[256] = "";
    m8_engine_opts o;
    memset(&o, 0, sizeof o);
    o.respond = respond;
    o.threads = threads;
    o.max_body = 4096;
    int lfd = m8_listen(spec, 16, 0600, err, sizeof err);
    m8_server *srv = lfd >= 0 ? m8_server_start(&o, lfd, err, sizeof err) : NULL;
    if (!srv) {
        printf("Bail out! a server with %d threads does not start: %s\n", threads, err);
        exit(1);
    }
    return srv;
}

/* The same batch, with a handler that blocks (m8_req_will_block first)
 * instead of a stream: the request behind it is served by the other
 * thread while it blocks. */
static void test_yield(const char *path, const char *how)
{
    atomic_store(&g_release[0], 0);
    atomic_store(&g_release[1], 0);
    atomic_store(&g_release[2], 0);
    atomic_store(&g_in_slow, 0);
    m8_server *srv = start_server(path, 2);
    const char *sock = path + 5; /* after "unix:" */
    int z0 = connect_unix(sock), z1 = connect_unix(sock), y = connect_unix(sock),
        b = connect_unix(sock);
    double until = m8_now_mono() + 5;
    while (m8_server_conns(srv) < 4 && m8_now_mono() < until)
        sleep_ms(5);
    is_int(m8_server_conns(srv), 4, "%s: yield setup: four connections accepted", how);
    send_get(z0, "/slow0");
    ok(wait_for(&g_in_slow, 1, 5), "%s: yield setup: thread one is busy", how);
    send_get(z1, "/slow1");
    ok(wait_for(&g_in_slow, 2, 5), "%s: yield setup: thread two is busy", how);
    send_get(y, "/yield");
    send_get(b, "/plain");
    atomic_store(&g_release[0], 1); /* thread one takes both in one epoll_wait */
    ok(wait_for(&g_in_yield, 1, 5), "%s: yield setup: the blocking handler runs", how);
    atomic_store(&g_release[1], 1);
    static char text[1 << 16];
    bool answered = read_answer(b, 5, text, sizeof text, 0);
    ok(answered && strstr(text, "ok") != NULL && atomic_load(&g_in_yield) == 1,
       "%s: a request that came in the same epoll_wait as a handler that blocks after "
       "m8_req_will_block is answered by the other thread while that handler blocks",
       how);
    atomic_store(&g_release[2], 1);
    answered = read_answer(y, 5, text, sizeof text, 0);
    ok(answered && strstr(text, "ok") != NULL, "%s: ... and the blocking handler answers after",
       how);
    m8_server_stop(srv, 5);
    close(z0);
    close(z1);
    close(y);
    close(b);
}

/* One thread polls at a time (app/engine_lead.h, forced with M8_POLLERS:
 * by default a process alone on 2 CPUs lets every thread poll): a request
 * that arrives while the poller is held by a handler is served by another
 * thread, whether the handler said it blocks (m8_req_will_block) or not
 * (the watch replaces the poller). */
static void test_poller_blocked(const char *path)
{
    setenv("M8_POLLERS", "one", 1);
    atomic_store(&g_release[0], 0);
    atomic_store(&g_release[2], 0);
    atomic_store(&g_in_slow, 0);
    m8_server *srv = start_server(path, 3);
    const char *sock = path + 5;
    int z = connect_unix(sock), y = connect_unix(sock), b = connect_unix(sock);
    double until = m8_now_mono() + 5;
    while (m8_server_conns(srv) < 3 && m8_now_mono() < until)
        sleep_ms(5);
    is_int(m8_server_conns(srv), 3, "poller setup: three connections accepted");
    static char text[1 << 16];
    send_get(z, "/slow0");
    ok(wait_for(&g_in_slow, 1, 5), "poller setup: a handler blocks without saying so");
    bool answered = send_get(b, "/plain") && read_answer(b, 5, text, sizeof text, 0);
    ok(answered && strstr(text, "ok") != NULL && atomic_load(&g_in_slow) == 1,
       "a request arriving while the polling thread is held by a handler that blocks without "
       "saying so is answered meanwhile (another thread takes the polling over)");
    send_get(y, "/yield");
    ok(wait_for(&g_in_yield, 1, 5), "poller setup: a handler blocks after m8_req_will_block");
    answered = send_get(b, "/plain") && read_answer(b, 5, text, sizeof text, 0);
    ok(answered && strstr(text, "ok") != NULL && atomic_load(&g_in_yield) == 1,
       "a request arriving while a handler blocks after m8_req_will_block is answered meanwhile");
    atomic_store(&g_release[0], 1);
    atomic_store(&g_release[2], 1);
    ok(read_answer(z, 5, text, sizeof text, 0) && strstr(text, "ok") != NULL &&
           read_answer(y, 5, text, sizeof text, 0) && strstr(text, "ok") != NULL,
       "... and both blocking handlers answer after");
    m8_server_stop(srv, 5);
    close(z);
    close(y);
    close(b);
    unsetenv("M8_POLLERS");
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    char dir[] = "/tmp/m8-handoff-XXXXXX", path[128], spec[140];
    if (!mkdtemp(dir)) {
        printf("Bail out! no temporary directory\n");
        return 1;
    }
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(spec, sizeof spec, "unix:%s", path);
    /* the stream cases and the first yield case with every thread polling,
     * whatever the machine (app/engine_lead.h); one poller further down */
    setenv("M8_POLLERS", "all", 1);
    m8_server *srv = start_server(spec, 2); /* one stream at most, one thread for the rest */

    /* four kept connections, accepted and idle */
    int z0 = connect_unix(path), z1 = connect_unix(path), s = connect_unix(path),
        b = connect_unix(path);
    double until = m8_now_mono() + 5;
    while (m8_server_conns(srv) < 4 && m8_now_mono() < until)
        sleep_ms(5);
    is_int(m8_server_conns(srv), 4, "setup: four connections accepted");
    /* both threads held by a slow request each */
    send_get(z0, "/slow0");
    ok(wait_for(&g_in_slow, 1, 5), "setup: thread one is busy");
    send_get(z1, "/slow1");
    ok(wait_for(&g_in_slow, 2, 5), "setup: thread two is busy");
    /* ready meanwhile, in this order: a stream request, a plain request on
     * another kept connection, a new connection to accept */
    send_get(s, "/s");
    send_get(b, "/plain");
    int n = connect_unix(path);
    /* thread one comes back and takes all three in one epoll_wait: it
     * serves the stream first and keeps its thread */
    atomic_store(&g_release[0], 1);
    static char text[1 << 16];
    read_answer(z0, 5, text, sizeof text, 0);
    ok(strstr(text, "ok") != NULL, "setup: the first slow request is answered");
    ok(read_answer(s, 5, text, sizeof text, 60) && strstr(text, "data: {}") != NULL,
       "the stream runs on thread one");
    ok(wait_for(&g_bodies, 1, 5), "... its body is running");
    /* thread two comes back */
    atomic_store(&g_release[1], 1);
    read_answer(z1, 5, text, sizeof text, 0);
    ok(strstr(text, "ok") != NULL, "setup: the second slow request is answered");
    bool answered = read_answer(b, 5, text, sizeof text, 0);
    ok(answered && strstr(text, "ok") != NULL,
       "a request that came in the same epoll_wait as a stream request is answered while the "
       "stream runs (the streaming thread hands its other events back)");
    answered = send_get(n, "/plain") && read_answer(n, 5, text, sizeof text, 0);
    ok(answered && strstr(text, "ok") != NULL,
       "a connection that was waiting to be accepted in that epoll_wait is accepted and served "
       "while the stream runs (the listening socket is re-armed)");
    is_int(atomic_load(&g_bodies), 1, "the stream still runs");

    close(s);
    ok(wait_for(&g_bodies, 0, 5), "the client going away ends the stream");
    atomic_store(&g_release[0], 1);
    m8_server_stop(srv, 5);
    close(z0);
    close(z1);
    close(b);
    if (n >= 0)
        close(n);
    unlink(path);
    test_yield(spec, "every thread polls");
    unlink(path);
    /* the same with one polling thread: the yielding poller leaves the
     * request behind it to the next poller (app/engine_lead.h) */
    setenv("M8_POLLERS", "one", 1);
    test_yield(spec, "one thread polls");
    unsetenv("M8_POLLERS");
    unlink(path);
    test_poller_blocked(spec);
    unlink(path);
    rmdir(dir);
    return done_testing();
}
