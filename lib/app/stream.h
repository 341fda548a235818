/* stream.h - streaming responses (doc/design.md#streaming-responses): a
 * handler that answers with a long-lived body (the issuer's event stream)
 * instead of one buffer.
 *
 * The handler checks what it must (auth, settings), sets the status and the
 * headers as usual, leaves the body empty and calls m8_res_stream() with a
 * body function.  The pipeline renders the headers without Content-Length;
 * the engine writes them as FastCGI STDOUT, then runs the body function on
 * the same serving thread, with the connection in hand: each
 * m8_stream_send() is written at once as STDOUT records.  When the
 * function returns, the engine ends the request (empty STDOUT,
 * END_REQUEST) and keeps or closes the connection as for any response.
 *
 * Only the epoll engine streams: under the libfcgi engine and CGI,
 * m8_res_stream() says M8_ESTATE.  A process runs at most
 * m8_stream_limit.max bodies at once (M8_EAGAIN beyond), so that streams
 * never hold every serving thread.  A body function must call
 * m8_stream_wait() between sends and return when it says so: when the
 * client went away, the web server sent anything on the connection, the
 * server stops or retires, or a write failed. */
#ifndef M8_STREAM_RESPONSE_H
#define M8_STREAM_RESPONSE_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include <stdatomic.h>

#include "http/http.h"

typedef struct m8_stream m8_stream;

/* The body of a streaming response; returns when the stream ends. */
typedef void (*m8_stream_fn)(m8_stream *st, void *data);

/* Why a stream ended (the body function may log it; counted as
 * fa-auth-m8 counts its disconnects: client, backpressure, shutdown). */
typedef enum m8_stream_end {
    M8_STREAM_OPEN = 0,
    M8_STREAM_END_CLIENT,       /* the peer closed, or sent something */
    M8_STREAM_END_BACKPRESSURE, /* a write made no progress for M8_STREAM_WRITE_STALL_MS */
    M8_STREAM_END_SHUTDOWN,     /* the server stops or retires */
    M8_STREAM_END_DONE,         /* the body function ended it */
} m8_stream_end;

/* A write that makes no progress for this long ends the stream. */
#define M8_STREAM_WRITE_STALL_MS 10000
/* The longest m8_stream_wait sleeps before it looks at the stop flags. */
#define M8_STREAM_SLICE_MS 50

/* The streams of one process: at most max bodies at once. */
typedef struct m8_stream_limit {
    atomic_int active;
    int max;
} m8_stream_limit;

struct m8_stream {
    /* the engine's (m8_stream_prepare) */
    int fd;
    uint16_t req_id;
    const atomic_bool *stopping, *retiring; /* NULL: never */
    m8_stream_limit *limit;
    m8_buf rec; /* FastCGI records being written */
    /* the handler's (m8_res_stream) */
    m8_stream_fn fn;
    void *data;
    bool held;         /* counted in limit->active */
    m8_stream_end end; /* set once the stream is over */
    uint64_t sent;     /* body bytes written */
};

/* A handler about to hold its thread for long calls m8_req_will_block
 * (fcgim8.h): the serving loop's thread hook (core/thread.h) hands the
 * requests and connections the thread took with this one to the other
 * threads instead of leaving them behind it
 * (doc/design.md#streaming-responses). */

/* Engine side.  Readies st for the next request on fd (its buffer kept). */
M8_INTERNAL void m8_stream_prepare(m8_stream *st, int fd, uint16_t req_id,
                                   const atomic_bool *stopping, const atomic_bool *retiring,
                                   m8_stream_limit *limit);
/* Writes head (the rendered headers) as STDOUT and runs the body function.
 * 0 when the response may be ended on a healthy connection; M8_EIO when
 * the connection must be closed (the peer went away or spoke, a write
 * failed or stalled).  Releases st's place in the limit in every case. */
M8_INTERNAL int m8_stream_run(m8_stream *st, const char *head, size_t head_len);
/* Releases st's place in the limit if the handler took one and the body
 * never ran (the pipeline answered something else); harmless otherwise. */
M8_INTERNAL void m8_stream_release(m8_stream *st);
M8_INTERNAL void m8_stream_free(m8_stream *st);

/* Handler side.  Makes req's answer a stream whose body is fn(st, data).
 * 0; M8_ESTATE when the engine cannot stream (libfcgi, CGI, the in-process
 * harness); M8_EAGAIN when the process already runs its most streams (the
 * handler answers 503). */
M8_INTERNAL int m8_res_stream(m8_request *req, m8_stream_fn fn, void *data);

/* Body side.  Writes p[0..n) to the client now.  0, or M8_EIO when the
 * stream is over (st->end says why). */
M8_INTERNAL int m8_stream_send(m8_stream *st, const char *p, size_t n);
/* Sleeps up to ms milliseconds, watching the connection and the server.
 * 0 when the time passed quietly; M8_EIO when the stream must end
 * (st->end says why). */
M8_INTERNAL int m8_stream_wait(m8_stream *st, int ms);

/* Removes the Content-Length header from a rendered CGI head (the body of
 * a stream has no length); the pipeline calls it. */
M8_INTERNAL void m8_stream_head_fix(m8_buf *head);

#endif
