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

#include "core/common.h"

#include <sys/types.h>

struct m8_app;
typedef struct m8_server m8_server;

/* Opens a listening socket: "unix:/path" (stale socket file removed, a live
 * one refused; mode applied) or "host:port" / "[v6]:port".  Returns the fd
 * or -1 with err filled. */
M8_INTERNAL int m8_listen(const char *spec, int backlog, unsigned mode, char *err, size_t errlen);

/* The "unix:" case of m8_listen, with the socket's owner and group (-1:
 * unchanged).  The directory must be owned by root or owner (the effective
 * uid when -1) and writable by no one else; the mode is set at bind time
 * (umask) and the owner with fchownat(AT_SYMLINK_NOFOLLOW), never by a call
 * on the path that could follow a symlink planted after bind. */
M8_INTERNAL int m8_listen_unix(const char *path, int backlog, unsigned mode, uid_t owner,
                               gid_t group, char *err, size_t errlen);

/* True if fd is a listening stream socket (spawn-fcgi, systemd, fcgim8d). */
M8_INTERNAL bool m8_is_listen_socket(int fd);

/* Installs the signal handlers (SIGTERM/SIGINT stop, SIGQUIT retire,
 * SIGPIPE ignored, SIGHUP/SIGUSR1 ignored) writing to a self-pipe; returns
 * its read end. */
M8_INTERNAL int m8_signals_install(void);
/* Reads one byte from the self-pipe, waiting up to timeout_ms (-1 = no
 * limit): returns the signal number, 0 on timeout. */
M8_INTERNAL int m8_signals_wait(int timeout_ms);
/* Wakes m8_signals_wait() with a pseudo-signal (used by startup). */
M8_INTERNAL void m8_signals_notify(int code);

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

/* Starts threads serving FastCGI on listen_fd (taken over: closed at stop
 * or retire).  limits NULL: the defaults. */
M8_INTERNAL m8_server *m8_server_start(struct m8_app *app, int listen_fd, int threads,
                                       size_t max_body, const m8_conn_limits *limits, char *err,
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

/* The classic libfcgi engine (--engine libfcgi): threads accepting on
 * listen_fd under a mutex, one request per connection each; serves until
 * SIGTERM/SIGINT.  Signals must be installed (m8_signals_install). */
M8_INTERNAL int m8_libfcgi_serve(struct m8_app *app, int listen_fd, int threads,
                                 size_t max_body);

/* Serves one CGI request from environ and stdin; returns the exit status. */
M8_INTERNAL int m8_cgi_serve(struct m8_app *app, size_t max_body);

#endif
