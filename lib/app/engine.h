/* engine.h - what every serving engine (epoll, libfcgi, CGI) is given: the
 * application's entry point as a callback plus the serving options.  An
 * engine never includes app.h nor calls up into the app: it decodes a
 * request, hands the params and body to respond(), and writes back what
 * respond() rendered. */
#ifndef M8_ENGINE_H
#define M8_ENGINE_H

#include "core/common.h"
#include "http/http.h"

struct m8_app;
struct m8_shm;

/* Answers one request: builds req from params and body (not copied: the
 * engine keeps them, the body NUL-terminated, alive until this returns),
 * runs it, and renders the CGI-form response into out.  preset_status
 * (400 malformed params, 413 body too large) skips routing. */
typedef void (*m8_respond_fn)(void *data, m8_request *req, const m8_pair *params, size_t n,
                              const char *body, size_t body_len, int preset_status, m8_buf *out);

/* Connection deadlines of the epoll engine (fcgim8(3) "Serving options").
 * The idle timeout must exceed the web server's own keep-alive timeout
 * (nginx upstream keepalive_timeout, 60 s by default), so that the web
 * server, never the service, closes an idle kept connection: a service
 * that closes one races the web server reusing it.  The drain timeout is
 * how long a retiring worker keeps serving its kept connections, waiting
 * for the web server to close them (nginx keepalive_time +
 * keepalive_timeout + a margin). */
#define M8_IDLE_TIMEOUT_DEFAULT_S 75.0
#define M8_REQUEST_DEADLINE_DEFAULT_S 30.0
#define M8_DRAIN_TIMEOUT_DEFAULT_S 135.0

typedef struct m8_conn_limits {
    double idle_timeout_s;     /* a connection with no request under way; 0 = default */
    double request_deadline_s; /* a request's first byte to its last; 0 = default */
} m8_conn_limits;

typedef struct m8_engine_opts {
    m8_respond_fn respond; /* NULL: requests get no answer (engine tests) */
    void *data;            /* respond's first argument */
    struct m8_app *owner;  /* given to m8_req_init for each worker's request; opaque here */
    struct m8_shm *shm;    /* the pool's shared segment, or NULL: under fcgim8d (its
                            * daemon_pid set) a wake-up accepts one connection */
    int threads;
    size_t max_body;
    m8_conn_limits limits; /* 0 fields: the defaults */
    bool authorizer;       /* serve the FastCGI AUTHORIZER role (fcgim8-gate) */
} m8_engine_opts;

/* Writes everything, waiting for POLLOUT when the socket is full (a pipe
 * for CGI stdout); 0 or M8_EIO. */
M8_INTERNAL int m8_write_all(int fd, const char *p, size_t n);

#endif
