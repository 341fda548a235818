/* engine_epoll.h - FastCGI over an epoll event loop (the default engine).
 *
 * N threads share one epoll set holding the listening socket and every
 * connection (edge-triggered, registered once; doc/design.md#serving-loop).  A kept-alive
 * connection that is idle sits in the epoll set and holds no thread; whichever thread sees it
 * readable parses its records (fcgi_proto.c), runs the request and writes the response.  So nginx
 * `fastcgi_keep_conn on` never pins a thread, and a signal wakes the threads through an eventfd, so
 * SIGTERM is honoured at once even when idle. */
#ifndef M8_ENGINE_EPOLL_H
#define M8_ENGINE_EPOLL_H

#include "app/engine.h"

typedef struct m8_server m8_server;

/* Starts opts->threads threads serving FastCGI on listen_fd (taken over:
 * closed at stop or retire).  opts is copied. */
M8_INTERNAL m8_server *m8_server_start(const m8_engine_opts *opts, int listen_fd, char *err,
                                       size_t errlen);
/* Retires the server: stops accepting at once (closes its copy of the
 * listening socket), and goes on serving the connections it has, kept
 * ones included, until their peer closes them (see m8_server_conns). */
M8_INTERNAL void m8_server_retire(m8_server *srv);
/* Connections open now (a retiring server is drained at 0). */
M8_INTERNAL int m8_server_conns(m8_server *srv);
/* Stops accepting, lets requests in progress finish (up to timeout_s),
 * joins the threads, closes every connection and frees the server. */
M8_INTERNAL void m8_server_stop(m8_server *srv, double timeout_s);

#endif
