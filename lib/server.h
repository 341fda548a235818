/* server.h - serving: FastCGI over an epoll event loop, and CGI.
 *
 * FastCGI: N threads share one epoll set holding the listening socket and
 * every connection (EPOLLONESHOT).  A kept-alive connection that is idle
 * sits in the epoll set and holds no thread; whichever thread sees it
 * readable parses its records (fcgi_proto.c), runs the request and writes
 * the response.  So nginx `fastcgi_keep_conn on` never pins a thread
 * (PITFALLS row 5), and a signal wakes the threads through an eventfd, so
 * SIGTERM is honoured at once even when idle (rows 1-3).
 *
 * libfcgi engine (--engine libfcgi): libfcgi's own accept loop, one
 * request per connection per thread, for mod_fcgid and as a baseline.
 *
 * CGI: one request from the environment and stdin, answer on stdout. */
#ifndef M8_SERVER_H
#define M8_SERVER_H

#include "common.h"

struct m8_app;
typedef struct m8_server m8_server;

/* Opens a listening socket: "unix:/path" (stale socket file removed, a live
 * one refused; mode applied) or "host:port" / "[v6]:port".  Returns the fd
 * or -1 with err filled. */
M8_INTERNAL int m8_listen(const char *spec, int backlog, unsigned mode, char *err, size_t errlen);

/* True if fd is a listening stream socket (spawn-fcgi, systemd, fcgim8d). */
M8_INTERNAL bool m8_is_listen_socket(int fd);

/* Installs the signal handlers (SIGTERM/SIGINT stop, SIGPIPE ignored,
 * SIGHUP/SIGUSR1 ignored) writing to a self-pipe; returns its read end. */
M8_INTERNAL int m8_signals_install(void);
/* Reads one byte from the self-pipe, waiting up to timeout_ms (-1 = no
 * limit): returns the signal number, 0 on timeout. */
M8_INTERNAL int m8_signals_wait(int timeout_ms);
/* Wakes m8_signals_wait() with a pseudo-signal (used by startup). */
M8_INTERNAL void m8_signals_notify(int code);

/* Starts threads serving FastCGI on listen_fd (taken over: closed at stop). */
M8_INTERNAL m8_server *m8_server_start(struct m8_app *app, int listen_fd, int threads,
                                       size_t max_body, char *err, size_t errlen);
/* Stops accepting, lets requests in progress finish (up to timeout_s),
 * joins the threads, closes every connection and frees the server. */
M8_INTERNAL void m8_server_stop(m8_server *srv, double timeout_s);

/* The classic libfcgi engine (--engine libfcgi): threads accepting on
 * listen_fd under a mutex, one request per connection each; serves until
 * SIGTERM/SIGINT.  Signals must be installed (m8_signals_install). */
M8_INTERNAL int m8_libfcgi_serve(struct m8_app *app, int listen_fd, int threads,
                                 size_t max_body);

/* Serves one CGI request from environ and stdin; returns the exit status. */
M8_INTERNAL int m8_cgi_serve(struct m8_app *app, size_t max_body);

#endif
