/* test_httpc.c - the outgoing-HTTP helper's typed errors (net/httpc.h):
 * each way a request can fail is reported as its own m8_httpc_err, with
 * not_sent true only when nothing of the request left, against small
 * scripted servers on loopback (a raw TCP server in a thread of this test,
 * and tests/tools/jwks_server.py for TLS). */
#include "net/httpc.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyserver.h"
#include "tap.h"

/* ------------------------------------------------------------ raw server */

enum { AFTER_KEEP, AFTER_CLOSE, AFTER_HOLD };

typedef struct action {
    const char *reply; /* bytes sent; NULL: none */
    size_t reply_len;  /* 0: strlen(reply) */
    int after;         /* keep the connection for the next request, close, or hold it open */
    bool on_any_bytes; /* reply as soon as anything arrives (not an HTTP request: TLS) */
} action;

#define MAX_ACTIONS 8

static struct {
    int fd, port;
    pthread_t th;
    bool running;
    action acts[MAX_ACTIONS]; /* request n gets acts[n], the last one repeating */
    size_t nacts;
    atomic_int stop;
    atomic_int requests; /* requests (or first bytes) seen */
    atomic_int conns;
} srv = {.fd = -1};

static action act_for(int n)
{
    size_t i = (size_t)n < srv.nacts ? (size_t)n : srv.nacts - 1;
    return srv.acts[i];
}

/* Reads one request (headers, then a Content-Length body) or, for
 * on_any_bytes, whatever arrives first; false when the peer went away. */
static bool read_request(int c, bool any)
{
    char buf[65536];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (atomic_load(&srv.stop))
            return false;
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(c, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            return false;
        len += (size_t)n;
        buf[len] = '\0';
        if (any)
            return true;
        char *end = strstr(buf, "\r\n\r\n");
        if (!end) {
            if (len >= sizeof buf - 1)
                return false;
            continue;
        }
        size_t have = len - (size_t)(end + 4 - buf);
        long want = 0;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < end)
            want = strtol(cl + 17, NULL, 10);
        while ((long)have < want) {
            n = recv(c, buf, sizeof buf, 0);
            if (n <= 0)
                return false;
            have += (size_t)n;
        }
        return true;
    }
}

static void send_all(int c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *srv_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&srv.stop)) {
        struct pollfd p = {.fd = srv.fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(srv.fd, NULL, NULL);
        if (c < 0)
            continue;
        atomic_fetch_add(&srv.conns, 1);
        for (;;) {
            action a = act_for(atomic_load(&srv.requests));
            if (!read_request(c, a.on_any_bytes))
                break;
            atomic_fetch_add(&srv.requests, 1);
            if (a.reply)
                send_all(c, a.reply, a.reply_len ? a.reply_len : strlen(a.reply));
            if (a.after == AFTER_CLOSE)
                break;
            if (a.after == AFTER_HOLD) {
                char sink[4096];
                while (!atomic_load(&srv.stop)) {
                    struct pollfd q = {.fd = c, .events = POLLIN};
                    if (poll(&q, 1, 100) > 0 && recv(c, sink, sizeof sink, 0) <= 0)
                        break;
                }
                break;
            }
        }
        close(c);
    }
    return NULL;
}

static void srv_stop(void)
{
    if (srv.running) {
        atomic_store(&srv.stop, 1);
        pthread_join(srv.th, NULL);
        srv.running = false;
    }
    if (srv.fd >= 0)
        close(srv.fd);
    srv.fd = -1;
}

/* Starts the raw server with the actions given (a fresh one each time). */
static int srv_start(const action *acts, size_t n)
{
    srv_stop();
    memcpy(srv.acts, acts, n * sizeof *acts);
    srv.nacts = n;
    atomic_store(&srv.stop, 0);
    atomic_store(&srv.requests, 0);
    atomic_store(&srv.conns, 0);
    srv.fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (srv.fd < 0 || bind(srv.fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(srv.fd, (struct sockaddr *)&a, &al) != 0 || listen(srv.fd, 16) != 0)
        return -1;
    srv.port = ntohs(a.sin_port);
    if (pthread_create(&srv.th, NULL, srv_main, NULL) != 0)
        return -1;
    srv.running = true;
    return 0;
}

static void srv_url(char *out, size_t cap, const char *scheme, const char *path)
{
    snprintf(out, cap, "%s://127.0.0.1:%d%s", scheme, srv.port, path);
}

/* A loopback port with nothing listening (bound, then closed). */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int port = 9;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static const char OK_5[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

/* One request; returns m8_http_do's code, res filled (body freed by caller). */
static int get(const char *url, double timeout_s, size_t max, bool follow, m8_http_result *res)
{
    m8_http_request rq = {
        .method = "GET",
        .url = url,
        .timeout_s = timeout_s,
        .max = max,
        .follow_redirects = follow,
    };
    return m8_http_do(&rq, res);
}

static void check(int rc, const m8_http_result *res, int want_rc, m8_httpc_err want,
                  bool want_not_sent, const char *what)
{
    ok(rc == want_rc && res->err == want && res->not_sent == want_not_sent && res->status == 0,
       "%s -> %s (rc %d, not_sent %s)", what, m8_httpc_err_name(want), want_rc,
       want_not_sent ? "true" : "false");
    if (rc != want_rc || res->err != want || res->not_sent != want_not_sent)
        diag("got rc %d err %s not_sent %d status %ld: %s", rc, m8_httpc_err_name(res->err),
             res->not_sent, res->status, res->error);
}

/* ------------------------------------------------------------ tests */

static void test_names(void)
{
    const char *seen[M8_HTTPC_EOTHER + 1];
    bool distinct = true;
    for (int e = M8_HTTPC_OK; e <= M8_HTTPC_EOTHER; e++) {
        seen[e] = m8_httpc_err_name((m8_httpc_err)e);
        for (int f = 0; f < e; f++)
            distinct = distinct && strcmp(seen[e], seen[f]) != 0;
    }
    ok(distinct, "names: every kind has its own name");
    is_str(m8_httpc_err_name(M8_HTTPC_ECONNECT), "connect", "names: ECONNECT is \"connect\"");
    is_str(m8_httpc_err_name((m8_httpc_err)999), "other", "names: an unknown value is \"other\"");
}

static void test_connect_refused(void)
{
    char u[128];
    snprintf(u, sizeof u, "http://127.0.0.1:%d/x", dead_port());
    m8_http_result res;
    int rc = get(u, 5, 1024, false, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_ECONNECT, true, "connection refused");
    m8_buf_free(&res.body);
}

static void test_resolve(void)
{
    m8_http_result res;
    int rc = get("http://nonexistent.invalid/x", 5, 1024, false, &res);
    if (res.err == M8_HTTPC_ETIMEOUT) {
        printf("ok %d - # SKIP the resolver does not answer here\n", ++tap_n);
    } else {
        check(rc, &res, M8_EIO, M8_HTTPC_ERESOLVE, true, "an unresolvable host (.invalid)");
    }
    m8_buf_free(&res.body);
}

static void test_timeout(void)
{
    action a[] = {{.reply = NULL, .after = AFTER_HOLD}};
    if (!ok(srv_start(a, 1) == 0, "timeout: raw server starts"))
        return;
    char u[128];
    srv_url(u, sizeof u, "http", "/silent");
    m8_http_result res;
    int rc = get(u, 1, 1024, false, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_ETIMEOUT, false, "a server that never answers");
    is_int(atomic_load(&srv.requests), 1, "timeout: ... after the request reached it");
    m8_buf_free(&res.body);

    /* The same silence during the TLS handshake: nothing of the request left. */
    srv_start((action[]){{.reply = NULL, .after = AFTER_HOLD, .on_any_bytes = true}}, 1);
    srv_url(u, sizeof u, "https", "/silent");
    rc = get(u, 1, 1024, false, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_ETIMEOUT, true, "a TLS handshake never answered");
    m8_buf_free(&res.body);
    srv_stop();
}

static void test_read(void)
{
    action cut[] = {
        {.reply = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc", .after = AFTER_CLOSE}};
    if (!ok(srv_start(cut, 1) == 0, "read: raw server starts"))
        return;
    char u[128];
    srv_url(u, sizeof u, "http", "/cut");
    m8_http_result res;
    int rc = get(u, 5, 1024, false, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_EREAD, false, "a body cut short (close mid-body)");
    ok(res.body.len == 0, "read: no partial body is handed back");
    m8_buf_free(&res.body);

    srv_start((action[]){{.reply = NULL, .after = AFTER_CLOSE}}, 1);
    srv_url(u, sizeof u, "http", "/nothing");
    rc = get(u, 5, 1024, false, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_EREAD, false, "a close with no answer at all");
    m8_buf_free(&res.body);

    srv_start((action[]){{.reply = "this is not HTTP\r\n\r\n", .after = AFTER_CLOSE}}, 1);
    srv_url(u, sizeof u, "http", "/garbage");
    rc = get(u, 5, 1024, false, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_EPROTO, false, "an answer that is not HTTP");
    m8_buf_free(&res.body);
    srv_stop();
}

static void test_too_big(void)
{
    static char at[2048], over[2048], close_over[2048];
    char body[1100];
    memset(body, 'x', sizeof body);
    snprintf(at, sizeof at, "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n%.1024s", body);
    snprintf(over, sizeof over, "HTTP/1.1 200 OK\r\nContent-Length: 1025\r\n\r\n%.1025s", body);
    snprintf(close_over, sizeof close_over, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n%.1025s",
             body);
    action a[] = {{.reply = at, .after = AFTER_CLOSE},
                  {.reply = over, .after = AFTER_CLOSE},
                  {.reply = close_over, .after = AFTER_CLOSE}};
    if (!ok(srv_start(a, 3) == 0, "too big: raw server starts"))
        return;
    char u[128];
    srv_url(u, sizeof u, "http", "/big");
    m8_http_result res;
    int rc = get(u, 5, 1024, false, &res);
    ok(rc == 0 && res.err == M8_HTTPC_OK && res.body.len == 1024,
       "too big: exactly the cap (1024 bytes) is read");
    m8_buf_free(&res.body);
    rc = get(u, 5, 1024, false, &res);
    check(rc, &res, M8_ETOOBIG, M8_HTTPC_ETOOBIG, false,
          "a body one past the cap (Content-Length)");
    m8_buf_free(&res.body);
    rc = get(u, 5, 1024, false, &res);
    check(rc, &res, M8_ETOOBIG, M8_HTTPC_ETOOBIG, false, "a body one past the cap (no length)");
    m8_buf_free(&res.body);
    srv_stop();
}

static void test_tls_to_plain(void)
{
    action a[] = {{.reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
                   .after = AFTER_CLOSE,
                   .on_any_bytes = true}};
    if (!ok(srv_start(a, 1) == 0, "tls: raw server starts"))
        return;
    char u[128];
    srv_url(u, sizeof u, "https", "/x");
    m8_http_result res;
    int rc = get(u, 5, 1024, false, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_ETLS, true, "https to a plain HTTP server");
    m8_buf_free(&res.body);
    srv_stop();
}

static void test_status_and_redirects(void)
{
    action a[] = {{.reply = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
                   .after = AFTER_CLOSE},
                  {.reply = "HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\n"
                            "Content-Length: 0\r\n\r\n",
                   .after = AFTER_CLOSE}};
    if (!ok(srv_start(a, 2) == 0, "status: raw server starts"))
        return;
    char u[128];
    srv_url(u, sizeof u, "http", "/x");
    m8_http_result res;
    int rc = get(u, 5, 1024, false, &res);
    ok(rc == 0 && res.err == M8_HTTPC_OK && res.status == 500 && !res.not_sent && res.body.len == 4,
       "a 500 is a response: OK with status 500 and its body");
    m8_buf_free(&res.body);
    rc = get(u, 5, 1024, true, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_EREDIRECT, false, "a redirect to ftp://");
    m8_buf_free(&res.body);
    rc = get(u, 5, 1024, false, &res);
    ok(rc == 0 && res.err == M8_HTTPC_OK && res.status == 302,
       "without follow_redirects a 302 is handed back as a response");
    m8_buf_free(&res.body);

    char loop[256];
    snprintf(loop, sizeof loop,
             "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/again\r\n"
             "Content-Length: 0\r\n\r\n",
             srv.port);
    srv.acts[0].reply = loop;
    srv.nacts = 1;
    atomic_store(&srv.requests, 0);
    rc = get(u, 5, 1024, true, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_EREDIRECT, false, "a redirect loop (too many redirects)");
    is_int(atomic_load(&srv.requests), 4, "redirect loop: the first request and 3 hops, no more");
    m8_buf_free(&res.body);
    srv_stop();
}

static void test_bad_request(void)
{
    m8_http_result res;
    int rc = get("ftp://127.0.0.1/x", 5, 1024, false, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_EINVAL, true, "an ftp:// URL");
    m8_buf_free(&res.body);
    rc = get("http://127.0.0.1/x", 0, 1024, false, &res);
    check(rc, &res, M8_EINVAL, M8_HTTPC_EINVAL, true, "a zero timeout");
    m8_buf_free(&res.body);
}

/* A POST that must run at most once: after the kept-alive connection dies
 * under it, it is not sent again on a new one (a GET is). */
static void test_post_not_resent(void)
{
    action a[] = {{.reply = OK_5, .after = AFTER_KEEP},
                  {.reply = NULL, .after = AFTER_CLOSE},
                  {.reply = OK_5, .after = AFTER_CLOSE}};
    if (!ok(srv_start(a, 3) == 0, "post: raw server starts"))
        return;
    char u[128];
    srv_url(u, sizeof u, "http", "/post");
    m8_http_request rq = {
        .method = "POST",
        .url = u,
        .body = "{}",
        .body_len = 2,
        .timeout_s = 5,
        .max = 1024,
        .reuse = true,
        .send_once = true,
    };
    m8_httpc_thread_cleanup();
    m8_http_result res;
    int rc = m8_http_do(&rq, &res);
    ok(rc == 0 && res.status == 200, "post: the first POST is answered on a kept-alive connection");
    m8_buf_free(&res.body);
    rc = m8_http_do(&rq, &res);
    ok(rc == M8_EIO && !res.not_sent && (res.err == M8_HTTPC_ESEND || res.err == M8_HTTPC_EREAD),
       "post: the kept-alive connection dies under the second POST -> send/read, not_sent false "
       "(%s)",
       m8_httpc_err_name(res.err));
    is_int(atomic_load(&srv.requests), 2,
           "post: ... and it is never sent again on a new connection");
    m8_buf_free(&res.body);

    /* The same with a GET: libcurl may send it again, and that is fine. */
    srv_start(a, 3);
    srv_url(u, sizeof u, "http", "/get");
    m8_httpc_thread_cleanup();
    m8_http_request g = {.url = u, .timeout_s = 5, .max = 1024, .reuse = true};
    rc = m8_http_do(&g, &res);
    m8_buf_free(&res.body);
    rc = m8_http_do(&g, &res);
    ok(rc == 0 && res.status == 200 && atomic_load(&srv.requests) == 3,
       "get: the same dead connection -> sent again on a new one and answered");
    m8_buf_free(&res.body);
    m8_httpc_thread_cleanup();
    srv_stop();
}

static void test_cancelled(void)
{
    action a[] = {{.reply = OK_5, .after = AFTER_CLOSE}};
    if (!ok(srv_start(a, 1) == 0, "cancel: raw server starts"))
        return;
    char u[128];
    srv_url(u, sizeof u, "http", "/x");
    m8_http_result res;
    atomic_int cancel = 1;
    m8_http_request rq = {.url = u, .timeout_s = 5, .max = 1024, .cancel = &cancel};
    int rc = m8_http_do(&rq, &res);
    ok(rc == M8_EIO && res.err == M8_HTTPC_ECANCEL, "a cancelled transfer -> cancelled (%s)",
       m8_httpc_err_name(res.err));
    m8_buf_free(&res.body);
    srv_stop();
}

static bool say_no(const char *p, size_t n, void *data)
{
    (void)p;
    (void)n;
    (void)data;
    return false;
}

static void test_receiver_aborts(void)
{
    action a[] = {{.reply = OK_5, .after = AFTER_CLOSE}};
    if (!ok(srv_start(a, 1) == 0, "abort: raw server starts"))
        return;
    char u[128];
    srv_url(u, sizeof u, "http", "/x");
    m8_http_result res;
    m8_http_request rq = {.url = u, .timeout_s = 5, .max = 1024, .on_data = say_no};
    int rc = m8_http_do(&rq, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_EABORT, false, "a receiver that refuses the body");
    m8_buf_free(&res.body);
    srv_stop();
}

/* Header limits: M8_HTTPC_MAX_HEADERS extra lines go out, one more is
 * refused before anything is sent; a captured value is cut to its buffer;
 * a response header past libcurl's limit is a failure, not a crash. */
static void test_headers(void)
{
    static char long_hdr[1024], huge[300000];
    char v[600];
    memset(v, 'v', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    snprintf(long_hdr, sizeof long_hdr,
             "HTTP/1.1 200 OK\r\nX-Long: %s\r\nContent-Length: 0\r\n\r\n", v);
    int n = snprintf(huge, sizeof huge, "HTTP/1.1 200 OK\r\nX-Huge: ");
    memset(huge + n, 'h', 200000);
    snprintf(huge + n + 200000, sizeof huge - (size_t)n - 200000, "\r\nContent-Length: 0\r\n\r\n");
    action a[] = {{.reply = OK_5, .after = AFTER_CLOSE},
                  {.reply = long_hdr, .after = AFTER_CLOSE},
                  {.reply = huge, .after = AFTER_CLOSE}};
    if (!ok(srv_start(a, 3) == 0, "headers: raw server starts"))
        return;
    char u[128];
    srv_url(u, sizeof u, "http", "/h");
    char lines[M8_HTTPC_MAX_HEADERS + 1][32];
    const char *hl[M8_HTTPC_MAX_HEADERS + 2];
    for (unsigned i = 0; i <= M8_HTTPC_MAX_HEADERS; i++) {
        snprintf(lines[i], sizeof lines[i], "X-N%u: %u", i, i);
        hl[i] = lines[i];
    }
    hl[M8_HTTPC_MAX_HEADERS + 1] = NULL;
    m8_http_request rq = {.url = u, .timeout_s = 5, .max = 1024, .headers = hl};
    m8_http_result res;
    int rc = m8_http_do(&rq, &res);
    check(rc, &res, M8_EINVAL, M8_HTTPC_EINVAL, true, "headers: one line past the limit");
    is_int(atomic_load(&srv.conns), 0, "headers: ... and no connection is made");
    m8_buf_free(&res.body);
    hl[M8_HTTPC_MAX_HEADERS] = NULL;
    rc = m8_http_do(&rq, &res);
    ok(rc == 0 && res.status == 200, "headers: exactly %u extra lines are sent",
       M8_HTTPC_MAX_HEADERS);
    m8_buf_free(&res.body);

    m8_http_request cap = {.url = u, .timeout_s = 5, .max = 1024, .capture_header = "X-Long"};
    rc = m8_http_do(&cap, &res);
    ok(rc == 0 && strlen(res.header) == sizeof res.header - 1 && res.header[0] == 'v',
       "headers: a captured value longer than its buffer is cut (%zu bytes)", strlen(res.header));
    m8_buf_free(&res.body);

    rc = get(u, 5, 1024, false, &res);
    /* libcurl before 8.6 reports its header limit as out of memory. */
    ok(rc == M8_EIO && (res.err == M8_HTTPC_EPROTO || res.err == M8_HTTPC_ENOMEM) && !res.not_sent,
       "headers: a 200 KB response header is a transport failure (%s)", m8_httpc_err_name(res.err));
    m8_buf_free(&res.body);
    srv_stop();
}

/* ------------------------------------------------------------ https -> http */

static m8t_py tls = {.pid = -1}; /* its directory: the certificate and served file */

static void tls_stop(void)
{
    m8t_py_stop(&tls);
    m8_httpc_set_ca_file(NULL);
}

/* jwks_server.py over TLS with a self-signed certificate for 127.0.0.1
 * (trusted through m8_httpc_set_ca_file); its port, or -1. */
static int tls_start(void)
{
    const char *gen[] = {"gencert", M8T_PY_DIR, NULL};
    if (m8t_py_mkdir(&tls, "httpc-tls") != 0 || m8t_py_run(&tls, "jwks_server.py", gen) != 0)
        return -1;
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/cert.pem", tls.dir);
    snprintf(key, sizeof key, "%s/certkey.pem", tls.dir);
    m8_httpc_set_ca_file(cert);
    const char *args[] = {"serve", M8T_PY_DIR, "--tls", cert, key, NULL};
    if (m8t_py_spawn(&tls, "jwks_server.py", args, 15000) != 0) /* up to 15 s */
        return -1;
    return tls.port;
}

static void test_https_downgrade(void)
{
    action a[] = {{.reply = OK_5, .after = AFTER_CLOSE}};
    if (srv_start(a, 1) != 0) {
        ok(0, "downgrade: raw server starts");
        return;
    }
    int tp = tls_start();
    if (tp < 0) {
        printf("ok %d - # SKIP no python3/cryptography for a TLS server\n", ++tap_n);
        tls_stop();
        srv_stop();
        return;
    }
    char plain[128], u[256];
    srv_url(plain, sizeof plain, "http", "/x");
    snprintf(u, sizeof u, "https://127.0.0.1:%d/to?%s", tp, plain);
    m8_http_result res;
    int rc = get(u, 5, 1024, true, &res);
    check(rc, &res, M8_EIO, M8_HTTPC_EREDIRECT, false, "a redirect from https to http");
    is_int(atomic_load(&srv.requests), 0, "downgrade: ... the http server never sees the request");
    m8_buf_free(&res.body);
    tls_stop();
    srv_stop();
}

int main(void)
{
    m8_httpc_global_init();
    test_names();
    test_bad_request();
    test_connect_refused();
    test_resolve();
    test_timeout();
    test_read();
    test_too_big();
    test_tls_to_plain();
    test_status_and_redirects();
    test_post_not_resent();
    test_cancelled();
    test_receiver_aborts();
    test_headers();
    test_https_downgrade();
    srv_stop();
    return done_testing();
}
