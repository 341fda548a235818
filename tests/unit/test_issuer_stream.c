/* test_issuer_stream - the issuer's event stream (doc/issuer.md#event-stream)
 * and the streaming responses of the epoll engine
 * (doc/design.md#streaming-responses): the frame of an outbox row (wire
 * form, signature checked with lib/stream's verifier and against a known
 * signature of doc/wire.md#canonical-json), where a stream starts for a Last-Event-ID (replay,
 * gap), and, through a real m8_server on a unix socket, a stream body written as STDOUT records as
 * it goes, the per-process bound (503 beyond it), a client that goes away freeing its thread, and a
 * stop ending every stream.  The database-fed body (replay, heartbeat, two instances) runs in
 * tests/integration/t_cissuer_stream.sh. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
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
#include "core/log.h"
#include "http/fcgi_proto.h"
#include "issuer/events_stream.h"
#include "stream/events.h"
#include "stream/sse.h"
#include "tap.h"

#define KEY "Example-Event-Signing-Key_2026!xyz"

/* ------------------------------------------------------------ frames */

typedef struct got {
    int n;
    char event[64], id[32];
    m8_event_result res;
    struct json_object *payload;
} got;

static int on_sse(const m8_sse_event *ev, void *ctx)
{
    got *g = ctx;
    if (ev->kind == M8_SSE_COMMENT)
        return 0;
    g->n++;
    snprintf(g->event, sizeof g->event, "%s", ev->event);
    snprintf(g->id, sizeof g->id, "%s", ev->id ? ev->id : "");
    const char *why = NULL;
    json_object_put(g->payload);
    g->payload = NULL;
    g->res = m8_event_verify(KEY, strlen(KEY), false, ev->data, ev->data_len, &g->payload, &why);
    return 0;
}

static void test_frames(void)
{
    const char *v2 =
        "{\"event_type\":\"session.revoked\",\"version\":\"v2\",\"user_id\":\"550e8400-e29b-41d4-"
        "a716-446655440000\",\"jti\":null,\"auth_generation\":3,\"event_id\":\"550e8400-e29b-41d4-"
        "a716-446655440000:3:publish:user-wide\"}";
    m8_issuer_event ev = {
        .id = 7, .type = "session-revoked", .payload = v2, .payload_len = strlen(v2)};
    m8_buf out;
    m8_buf_init(&out, 1 << 20);
    is_int(m8_issuer_event_frame(&ev, KEY, &out), 0, "frame: a v2 row is framed");
    is_str(
        out.data,
        "id: 7\nevent: session-revoked\ndata: {\"payload\": {\"event_type\": \"session.revoked\", "
        "\"version\": \"v2\", \"user_id\": \"550e8400-e29b-41d4-a716-446655440000\", \"jti\": "
        "null, \"auth_generation\": 3, \"event_id\": \"550e8400-e29b-41d4-a716-446655440000:3:"
        "publish:user-wide\"}, \"sig\": "
        "\"35e54bd7e735594b02d4120a69d66f454a94a1352b4c20e9be5c4460ace9130c\"}\n\n",
        "frame: id, event, json.dumps form in stored order, the worked example's signature");
    m8_sse p;
    m8_sse_init(&p);
    got g;
    memset(&g, 0, sizeof g);
    m8_sse_push(&p, out.data, out.len, on_sse, &g);
    is_int(g.n, 1, "frame: the SSE parser dispatches one event");
    is_str(g.id, "7", "frame: ... with the outbox id as its id");
    is_int(g.res, M8_EVR_DELIVERED, "frame: lib/stream's verifier accepts the signature");
    ok(g.payload && json_object_get_int(json_object_object_get(g.payload, "auth_generation")) == 3,
       "frame: ... and delivers the payload");

    const char *v1 =
        "{\"event_type\":\"session.revoked\",\"version\":\"v1\",\"user_id\":\"u-\\u00e9"
        "\",\"jti\":\"j/1\"}";
    ev = (m8_issuer_event){
        .id = 8, .type = "session-revoked", .payload = v1, .payload_len = strlen(v1)};
    m8_buf_reset(&out);
    is_int(m8_issuer_event_frame(&ev, KEY, &out), 0, "frame: a v1 row is framed");
    ok(strstr(out.data, "\"user_id\": \"u-\\u00e9\", \"jti\": \"j/1\"}") != NULL,
       "frame: non-ASCII escaped as \\u00e9, '/' kept (ASCII-only data line)");
    m8_sse_push(&p, out.data, out.len, on_sse, &g);
    is_int(g.res, M8_EVR_DELIVERED, "frame: its signature verifies too");

    m8_buf_reset(&out);
    is_int(m8_issuer_event_frame(&ev, NULL, &out), 0, "frame: signing off");
    is_str(
        out.data,
        "id: 8\nevent: session-revoked\ndata: {\"event_type\": \"session.revoked\", \"version\": "
        "\"v1\", \"user_id\": \"u-\\u00e9\", \"jti\": \"j/1\"}\n\n",
        "frame: signing off sends the bare payload");
    m8_sse_push(&p, out.data, out.len, on_sse, &g);
    is_int(g.res, M8_EVR_DROPPED_SIG_FAIL, "frame: ... which a consumer holding a key refuses");

    ev.payload = "{not json";
    ev.payload_len = strlen(ev.payload);
    m8_buf_reset(&out);
    is_int(m8_issuer_event_frame(&ev, KEY, &out), M8_EPARSE,
           "frame: a row that is not JSON: EPARSE");
    ev.payload = v1;
    ev.payload_len = strlen(v1);
    ev.type = "bad type";
    is_int(m8_issuer_event_frame(&ev, KEY, &out), M8_EPARSE, "frame: a type with a space: EPARSE");
    json_object_put(g.payload);
    m8_sse_free(&p);
    m8_buf_free(&out);
}

static void test_resume(void)
{
    int64_t after = -1;
    bool gap = true;
    m8_issuer_stream_start(NULL, 3, 40, 256, &after, &gap);
    ok(after == 40 && !gap, "resume: no Last-Event-ID: live events after the last id, no gap");
    m8_issuer_stream_start("35", 3, 40, 256, &after, &gap);
    ok(after == 35 && !gap, "resume: Last-Event-ID 35 replays from 36, no gap");
    m8_issuer_stream_start(" 40 ", 3, 40, 256, &after, &gap);
    ok(after == 40 && !gap, "resume: the last id itself: nothing to replay, no gap");
    m8_issuer_stream_start("2", 3, 40, 256, &after, &gap);
    ok(after == 2 && !gap, "resume: right before the oldest kept row: replay, no gap");
    m8_issuer_stream_start("1", 3, 40, 256, &after, &gap);
    ok(after == 40 && gap, "resume: older than what is kept: gap, then live");
    m8_issuer_stream_start("41", 3, 40, 256, &after, &gap);
    ok(after == 40 && gap, "resume: beyond the last id (another outbox): gap");
    m8_issuer_stream_start("1751000000123456789-7", 3, 40, 256, &after, &gap);
    ok(gap, "resume: a fa-auth-m8 <epoch>-<seq> id: gap");
    m8_issuer_stream_start("", 3, 40, 256, &after, &gap);
    ok(gap, "resume: an empty Last-Event-ID: gap");
    m8_issuer_stream_start("99999999999999999999", 3, 40, 256, &after, &gap);
    ok(gap, "resume: 20 digits: gap");
    m8_issuer_stream_start("10", 3, 40, 20, &after, &gap);
    ok(after == 40 && gap, "resume: more than EVENT_STREAM_BUFFER_SIZE behind: gap");
    m8_issuer_stream_start("0", 0, 0, 256, &after, &gap);
    ok(after == 0 && !gap, "resume: an empty outbox and Last-Event-ID 0: no gap");
}

/* ------------------------------------------------------------ the engine */

static atomic_int g_bodies, g_ends[8];

static void body(m8_stream *st, void *data)
{
    (void)data;
    atomic_fetch_add(&g_bodies, 1);
    char line[64];
    for (int i = 1;; i++) {
        int n = snprintf(line, sizeof line, "id: %d\ndata: {}\n\n", i);
        if (m8_stream_send(st, line, (size_t)n) != 0 || m8_stream_wait(st, 20) != 0)
            break;
    }
    atomic_fetch_add(&g_ends[st->end & 7], 1);
    atomic_fetch_sub(&g_bodies, 1);
}

static void respond(void *data, m8_request *req, const m8_pair *params, size_t n, const char *b,
                    size_t blen, int preset, m8_buf *out)
{
    (void)data, (void)params, (void)n, (void)b, (void)blen, (void)preset;
    /* held in the serving thread's log batch, as an access line is */
    m8_log(M8_LOG_INFO, "stream-test: a stream starts");
    if (m8_res_stream(req, body, NULL) == M8_EAGAIN) {
        m8_buf_puts(out, "Status: 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    m8_buf_puts(out, "Status: 200 OK\r\nContent-Type: text/event-stream\r\n\r\n");
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

/* A FastCGI GET with keep_conn, request id 1. */
static int open_stream(const char *path)
{
    int fd = connect_unix(path);
    if (fd < 0)
        return -1;
    m8_buf rec, params;
    m8_buf_init(&rec, 65536);
    m8_buf_init(&params, 65536);
    const unsigned char begin[8] = {0, M8_FCGI_RESPONDER, 1, 0, 0, 0, 0, 0};
    m8_fcgi_encode_pair(&params, "REQUEST_METHOD", 14, "GET", 3);
    m8_fcgi_encode_pair(&params, "REQUEST_URI", 11, "/s", 2);
    m8_fcgi_record(&rec, M8_FCGI_BEGIN_REQUEST, 1, begin, 8);
    m8_fcgi_record(&rec, M8_FCGI_PARAMS, 1, params.data, params.len);
    m8_fcgi_record(&rec, M8_FCGI_PARAMS, 1, NULL, 0);
    m8_fcgi_record(&rec, M8_FCGI_STDIN, 1, NULL, 0);
    if (send(fd, rec.data, rec.len, MSG_NOSIGNAL) != (ssize_t)rec.len) {
        close(fd);
        fd = -1;
    }
    m8_buf_free(&rec);
    m8_buf_free(&params);
    return fd;
}

/* Reads records for up to `seconds`: the STDOUT bytes go to text (up to
 * its size), *ended says whether END_REQUEST came; stops at want bytes of
 * STDOUT (0: at END_REQUEST or EOF).  Returns false on EOF. */
static bool read_records(int fd, double seconds, char *text, size_t cap, size_t want, bool *ended)
{
    static unsigned char buf[1 << 17];
    size_t have = 0, tlen = strlen(text);
    double until = m8_now_mono() + seconds;
    *ended = false;
    while (m8_now_mono() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
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
                *ended = true;
            off += 8 + clen + pad;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (*ended || (want && tlen >= want))
            return true;
    }
    return true;
}

static bool wait_for(atomic_int *v, int want, double seconds)
{
    double until = m8_now_mono() + seconds;
    while (m8_now_mono() < until) {
        if (atomic_load(v) == want)
            return true;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(v) == want;
}

static void test_engine(void)
{
    char dir[] = "/tmp/m8-stream-XXXXXX", path[128], spec[140], err[256] = "";
    if (!mkdtemp(dir)) {
        ok(0, "engine: a temporary directory");
        return;
    }
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(spec, sizeof spec, "unix:%s", path);
    int lfd = m8_listen(spec, 16, 0600, err, sizeof err);
    /* the log into a file, in batches of at most 50 ms */
    char logpath[160];
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    m8_log_set_fd(logfd);
    m8_log_set_flush_ms(50);
    m8_engine_opts o;
    memset(&o, 0, sizeof o);
    o.respond = respond;
    o.threads = 3; /* two streams at most */
    o.max_body = 4096;
    m8_server *srv = lfd >= 0 ? m8_server_start(&o, lfd, err, sizeof err) : NULL;
    ok(srv != NULL, "engine: a 3-thread server starts (%s)", err);
    if (!srv)
        return;
    static char t1[1 << 16], t2[1 << 16], t3[1 << 16];
    t1[0] = t2[0] = t3[0] = '\0';
    bool ended = false;
    int a = open_stream(path);
    read_records(a, 10, t1, sizeof t1, 120, &ended);
    const char *want1 =
        "Status: 200 OK\r\nContent-Type: text/event-stream\r\n\r\nid: 1\ndata: {}\n\n";
    ok(strncmp(t1, want1, strlen(want1)) == 0 && !ended,
       "engine: the head, then frames as they come, as STDOUT of the open request");
    ok(strstr(t1, "id: 3\n") != NULL, "engine: ... several frames, the request still open");
    bool logged = false;
    for (double until = m8_now_mono() + 3; !logged && m8_now_mono() < until;) {
        char lb[4096] = "";
        int rfd = open(logpath, O_RDONLY | O_CLOEXEC);
        ssize_t r = rfd >= 0 ? read(rfd, lb, sizeof lb - 1) : -1;
        if (rfd >= 0)
            close(rfd);
        logged = r > 0 && strstr(lb, "a stream starts") != NULL;
        if (!logged) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    ok(logged, "engine: a streaming thread's batched log lines are written while it streams");
    int b = open_stream(path);
    read_records(b, 10, t2, sizeof t2, 60, &ended);
    ok(strstr(t2, "id: 1\n") != NULL, "engine: a second stream runs at the same time");
    ok(wait_for(&g_bodies, 2, 5), "engine: two bodies running");
    int c = open_stream(path);
    read_records(c, 10, t3, sizeof t3, 0, &ended);
    ok(strncmp(t3, "Status: 503", 11) == 0 && ended,
       "engine: a third stream on 3 threads gets 503 (one thread stays for requests)");
    close(c);

    double t0 = m8_now_mono();
    close(a);
    ok(wait_for(&g_bodies, 1, 5), "engine: the client going away ends its body");
    diag("body ended %.0f ms after the client closed", (m8_now_mono() - t0) * 1000);
    is_int(atomic_load(&g_ends[M8_STREAM_END_CLIENT]), 1, "engine: ... counted as 'client'");
    t3[0] = '\0';
    c = open_stream(path);
    read_records(c, 10, t3, sizeof t3, 60, &ended);
    ok(strstr(t3, "id: 1\n") != NULL, "engine: its place is free again: a new stream is served");

    t0 = m8_now_mono();
    m8_server_stop(srv, 20);
    double took = m8_now_mono() - t0;
    ok(took < 10, "engine: stop ends the open streams instead of waiting for them");
    diag("stop with 2 streams open took %.0f ms", took * 1000);
    is_int(atomic_load(&g_ends[M8_STREAM_END_SHUTDOWN]), 2,
           "engine: ... both counted as 'shutdown'");
    is_int(atomic_load(&g_bodies), 0, "engine: no body left running");
    t2[0] = '\0';
    read_records(b, 3, t2, sizeof t2, 0, &ended);
    ok(ended, "engine: a stream ended by the server gets its END_REQUEST");
    close(b);
    close(c);
    m8_log_set_fd(STDERR_FILENO);
    m8_log_set_flush_ms(-1);
    if (logfd >= 0)
        close(logfd);
    unlink(logpath);
    unlink(path);
    rmdir(dir);
}

static void test_head_fix(void)
{
    m8_request req;
    m8_req_init(&req, NULL);
    is_int(m8_res_stream(&req, body, NULL), M8_ESTATE,
           "no streaming engine (libfcgi, CGI, the harness): m8_res_stream says ESTATE");
    m8_req_free(&req);

    m8_buf h;
    m8_buf_init(&h, 4096);
    m8_buf_puts(&h, "Status: 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 0\r\n"
                    "Cache-Control: no-cache\r\n\r\n");
    m8_stream_head_fix(&h);
    is_str(h.data,
           "Status: 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n",
           "head: a stream's head loses its Content-Length");
    is_int((int)h.len, (int)strlen(h.data), "head: ... and its length follows");
    m8_buf_free(&h);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    test_frames();
    test_resume();
    test_head_fix();
    test_engine();
    return done_testing();
}
