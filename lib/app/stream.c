/* stream.c - streaming responses (stream.h, doc/design.md#streaming-responses):
 * the body function runs on the serving thread that owns the connection;
 * writes go straight to the socket as FastCGI STDOUT records; waits poll
 * the socket (an end of file, a reset or any bytes from the web server end
 * the stream) and the server's stop and retire flags. */
#include "app/stream.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/thread.h"
#include "http/fcgi_proto.h"

/* fcgim8.h; runs the serving loop's hook (app/engine_epoll.c) */
void m8_req_will_block(m8_request *req)
{
    (void)req;
    m8_thread_will_block();
}

void m8_stream_prepare(m8_stream *st, int fd, uint16_t req_id, const atomic_bool *stopping,
                       const atomic_bool *retiring, m8_stream_limit *limit)
{
    st->fd = fd;
    st->req_id = req_id;
    st->stopping = stopping;
    st->retiring = retiring;
    st->limit = limit;
    st->fn = NULL;
    st->data = NULL;
    st->held = false;
    st->end = M8_STREAM_OPEN;
    st->sent = 0;
    if (!st->rec.max)
        m8_buf_init(&st->rec, M8_FCGI_MAX_RECORD * 17u);
    m8_buf_reset(&st->rec);
}

void m8_stream_release(m8_stream *st)
{
    if (st->held) {
        st->held = false;
        atomic_fetch_sub(&st->limit->active, 1);
    }
}

void m8_stream_free(m8_stream *st)
{
    m8_buf_free(&st->rec);
}

int m8_res_stream(m8_request *req, m8_stream_fn fn, void *data)
{
    m8_stream *st = req->stream;
    if (!st || !st->limit || !fn)
        return M8_ESTATE;
    if (!st->held) {
        int n = atomic_fetch_add(&st->limit->active, 1);
        if (n >= st->limit->max) {
            atomic_fetch_sub(&st->limit->active, 1);
            return M8_EAGAIN;
        }
        st->held = true;
    }
    st->fn = fn;
    st->data = data;
    return 0;
}

static bool server_leaving(const m8_stream *st)
{
    return (st->stopping && atomic_load(st->stopping)) ||
           (st->retiring && atomic_load(st->retiring));
}

/* One look at the socket, waiting up to ms: true when the stream must end
 * because of the peer (an end of file, a reset, or bytes: the web server
 * sends nothing while it waits for a response, except to abort it). */
static bool peer_ended(m8_stream *st, int ms)
{
    struct pollfd pfd = {.fd = st->fd, .events = POLLIN | POLLRDHUP};
    int r = poll(&pfd, 1, ms);
    if (r < 0)
        return errno != EINTR;
    return r > 0 && (pfd.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

int m8_stream_wait(m8_stream *st, int ms)
{
    if (st->end != M8_STREAM_OPEN)
        return M8_EIO;
    int64_t left = ms > 0 ? ms : 0;
    double until = m8_now_mono() + (double)left / 1000.0;
    for (;;) {
        if (server_leaving(st)) {
            st->end = M8_STREAM_END_SHUTDOWN;
            return M8_EIO;
        }
        /* the serving loop is not looking after this thread's batched log
         * lines while it streams: write them when they are due */
        double due = m8_log_flush_due();
        if (due > 0 && m8_now_mono() >= due)
            m8_log_flush();
        int slice = left < M8_STREAM_SLICE_MS ? (int)left : M8_STREAM_SLICE_MS;
        if (peer_ended(st, slice)) {
            st->end = M8_STREAM_END_CLIENT;
            return M8_EIO;
        }
        left = (int64_t)((until - m8_now_mono()) * 1000.0);
        if (left <= 0)
            return 0;
    }
}

/* Writes everything in st->rec, waiting in slices for room; a stall of
 * M8_STREAM_WRITE_STALL_MS, a gone peer or a stopping server ends it. */
static int write_rec(m8_stream *st)
{
    const char *p = st->rec.data;
    size_t n = st->rec.len;
    double stall_since = m8_now_mono();
    while (n) {
        ssize_t w = send(st->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            stall_since = m8_now_mono();
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (server_leaving(st)) {
                st->end = M8_STREAM_END_SHUTDOWN;
                return M8_EIO;
            }
            if ((m8_now_mono() - stall_since) * 1000.0 >= M8_STREAM_WRITE_STALL_MS) {
                st->end = M8_STREAM_END_BACKPRESSURE;
                return M8_EIO;
            }
            struct pollfd pfd = {.fd = st->fd, .events = POLLOUT};
            if (poll(&pfd, 1, M8_STREAM_SLICE_MS) < 0 && errno != EINTR) {
                st->end = M8_STREAM_END_CLIENT;
                return M8_EIO;
            }
            if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) {
                st->end = M8_STREAM_END_CLIENT;
                return M8_EIO;
            }
            continue;
        }
        st->end = M8_STREAM_END_CLIENT; /* EPIPE, ECONNRESET */
        return M8_EIO;
    }
    m8_buf_reset(&st->rec);
    return 0;
}

/* p[0..n) as STDOUT records (none for n == 0: an empty STDOUT would end
 * the stream). */
static int send_stdout(m8_stream *st, const char *p, size_t n)
{
    const size_t chunk = 65528; /* the largest multiple of 8 a record holds */
    while (n) {
        m8_buf_reset(&st->rec);
        int rc = 0;
        /* up to 16 records per write */
        for (int i = 0; i < 16 && n && rc == 0; i++) {
            size_t k = n < chunk ? n : chunk;
            rc = m8_fcgi_record(&st->rec, M8_FCGI_STDOUT, st->req_id, p, k);
            p += k;
            n -= k;
        }
        if (rc != 0) {
            st->end = M8_STREAM_END_CLIENT;
            return M8_EIO;
        }
        if (write_rec(st) != 0)
            return M8_EIO;
    }
    return 0;
}

int m8_stream_send(m8_stream *st, const char *p, size_t n)
{
    if (st->end != M8_STREAM_OPEN)
        return M8_EIO;
    if (server_leaving(st)) {
        st->end = M8_STREAM_END_SHUTDOWN;
        return M8_EIO;
    }
    int rc = send_stdout(st, p, n);
    if (rc == 0)
        st->sent += n;
    return rc;
}

int m8_stream_run(m8_stream *st, const char *head, size_t head_len)
{
    int rc = send_stdout(st, head, head_len);
    if (rc == 0 && st->fn)
        st->fn(st, st->data);
    m8_stream_release(st);
    if (st->end == M8_STREAM_OPEN)
        st->end = M8_STREAM_END_DONE;
    /* the client's end, or bytes from the web server we did not read: the
     * connection cannot carry another request */
    return rc == 0 && (st->end == M8_STREAM_END_DONE || st->end == M8_STREAM_END_SHUTDOWN) ? 0
                                                                                           : M8_EIO;
}

void m8_stream_head_fix(m8_buf *head)
{
    if (!head->data)
        return;
    char *end = strstr(head->data, "\r\n\r\n");
    char *cl = strstr(head->data, "\r\nContent-Length: ");
    if (!end || !cl || cl >= end)
        return;
    char *eol = strstr(cl + 2, "\r\n"); /* the line's end: the next CRLF */
    size_t cut = (size_t)(eol - cl);
    memmove(cl, eol, head->len - (size_t)(eol - head->data) + 1);
    head->len -= cut;
}
