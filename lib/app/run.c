/* run.c - m8_app_main: boot, pick what to serve (--listen, the socket on
 * fd 0, or one CGI request), run the startup hooks beside or before the
 * engine, wait for signals, drain or stop, and clean up. */
#include "app/app.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

#include "app/cli.h"
#include "app/server.h"
#include "core/exitcodes.h"
#include "core/log.h"
#include "core/thread.h"
#include "stream/evclient.h"
#include "stream/runner.h"

extern char **environ;

#define M8_STARTUP_DONE 250 /* pseudo-signal: the startup thread finished */

typedef struct startup_ctx {
    m8_app *app;
    int rc;
    atomic_int done;
} startup_ctx;

static void *startup_main(void *arg)
{
    startup_ctx *c = arg;
    c->rc = m8_app_start(c->app);
    atomic_store(&c->done, 1);
    m8_signals_notify(M8_STARTUP_DONE);
    return NULL;
}

/* A stateful service running alone (spawn-fcgi, --listen: no fcgim8d
 * sidecar) may hold the event stream itself: FCGIM8_EVENT_STREAM=1 opts in
 * (each process then holds its own stream and table). */
static m8_evrunner *own_stream_start(m8_app *app)
{
    const char *opt = getenv("FCGIM8_EVENT_STREAM");
    if (!opt || strcmp(opt, "1") != 0 || !app->shm || atomic_load(&app->shm->daemon_pid) ||
        !m8_evclient_wanted(app->settings))
        return NULL;
    return m8_evrunner_start(app->settings, app->shm);
}

/* A retiring worker (reload, scale-down, --max-requests) stops accepting
 * at once, and keeps serving the connections it has until the web server
 * closes them: closing a kept connection ourselves races the web server
 * writing its next request on it (nginx: "writev() failed (32: Broken
 * pipe) while sending request to upstream", a 502 for a POST).  The web
 * server's keep-alive limits (nginx keepalive_time, keepalive_timeout)
 * end them; drain_s bounds the wait, SIGTERM cuts it short.  See fcgim8d(8)
 * "Reload without failed requests". */
static void drain(m8_server *srv, double drain_s)
{
    m8_server_retire(srv);
    double until = m8_now_mono() + drain_s;
    int left;
    while ((left = m8_server_conns(srv)) > 0 && m8_now_mono() < until) {
        int sig = m8_signals_wait(250);
        if (sig == SIGTERM || sig == SIGINT) {
            m8_log(M8_LOG_INFO, "signal %d: stopping; closing the %d kept connection(s) left", sig,
                   left);
            return;
        }
    }
    if (left > 0)
        m8_log(M8_LOG_WARNING,
               "--drain-timeout %.0f s passed with %d kept connection(s) still open: closing them",
               drain_s, left);
}

int m8_app_main(m8_app *app, int argc, char **argv)
{
    m8_cli cli;
    int prc = m8_cli_parse(&cli, app, argc, argv);
    if (prc >= 0) {
        m8_app_free(app);
        return prc;
    }
    const char *prog = cli.prog, *listen_spec = cli.listen_spec, *env_file = cli.env_file;
    long long threads = cli.threads, mode = cli.mode, backlog = cli.backlog,
              shutdown_s = cli.shutdown_s;
    m8_conn_limits limits = cli.limits;
    double drain_s = cli.drain_s;
    bool check = cli.check, libfcgi = cli.libfcgi;

    m8_settings_source src = {.env = environ,
                              .env_file = env_file,
                              .uses_database = m8_db_app_required(app),
                              .issuer = app->issuer};
    int rc = m8_app_boot(app, &src);
    if (rc != 0 || check) {
        if (rc == 0)
            m8_log(M8_LOG_INFO, "configuration OK");
        m8_app_free(app);
        return rc;
    }

    int listen_fd = -1;
    char err[512] = "";
    if (listen_spec) {
        listen_fd = m8_listen(listen_spec, (int)backlog, (unsigned)mode, err, sizeof err);
        if (listen_fd < 0) {
            m8_log(M8_LOG_CRITICAL, "%s", err);
            m8_app_free(app);
            return M8_EX_SOFTWARE;
        }
    } else if (m8_is_listen_socket(0)) {
        listen_fd = 0;
    } else if (getenv("GATEWAY_INTERFACE")) {
        m8_signals_install(); /* SIGPIPE ignored: a gone client is a write error */
        rc = m8_app_start(app);
        m8_engine_opts eo;
        m8_app_engine_opts(app, &eo);
        if (rc == 0)
            rc = m8_cgi_serve(&eo);
        else
            rc = M8_EX_SOFTWARE;
        m8_app_stop(app);
        m8_app_free(app);
        return rc;
    } else {
        fprintf(stderr,
                "%s: nothing to serve: give --listen, start under spawn-fcgi/fcgim8d (a "
                "listening socket on fd 0), or run as CGI (see --help)\n",
                prog);
        m8_app_free(app);
        return M8_EX_USAGE;
    }

    if (m8_signals_install() < 0) {
        m8_log(M8_LOG_CRITICAL, "cannot install signal handlers: %s", strerror(errno));
        m8_app_free(app);
        return M8_EX_SOFTWARE;
    }
    if (libfcgi) {
        /* Classic engine: startup runs first, then libfcgi's accept loop. */
        rc = m8_app_start(app);
        if (rc == 0) {
            m8_log(M8_LOG_INFO, "serving FastCGI (libfcgi engine) with %lld threads", threads);
            m8_engine_opts eo;
            m8_app_engine_opts(app, &eo);
            eo.threads = (int)threads;
            rc = m8_libfcgi_serve(&eo, listen_fd) == 0 ? 0 : M8_EX_SOFTWARE;
        } else {
            rc = M8_EX_SOFTWARE;
        }
        m8_app_stop(app);
        if (listen_spec && strncmp(listen_spec, "unix:", 5) == 0)
            unlink(listen_spec + 5);
        m8_app_free(app);
        return rc;
    }
    /* Startup runs before serving when there is nothing to wait for, and
     * when this worker joins a pool that already serves (a respawn, reload
     * or scale-up under fcgim8d): its siblings answer meanwhile, so it
     * takes no request it would have to refuse with 503.  Otherwise it
     * serves at once and health says "initializing" until ready. */
    bool start_first = app->n_startups == 0 || (app->shm && atomic_load(&app->shm->daemon_pid) &&
                                                atomic_load(&app->shm->ready));
    startup_ctx sc = {.app = app};
    atomic_init(&sc.done, 0);
    if (start_first) {
        sc.rc = m8_app_start(app);
        atomic_store(&sc.done, 1);
        if (sc.rc != 0) {
            m8_app_free(app);
            return M8_EX_SOFTWARE;
        }
    }
    m8_engine_opts eo;
    m8_app_engine_opts(app, &eo);
    eo.threads = (int)threads;
    eo.limits = limits;
#ifdef __GLIBC__
    /* Booting (settings, keys, OpenSSL's first fetches, the docs) frees
     * more than it keeps: give those pages back before serving, so that
     * each worker of a pool does not keep them (doc/design.md#memory). */
    malloc_trim(0);
#endif
    m8_server *srv = m8_server_start(&eo, listen_fd, err, sizeof err);
    if (!srv) {
        m8_log(M8_LOG_CRITICAL, "%s", err);
        if (start_first)
            m8_app_stop(app);
        m8_app_free(app);
        return M8_EX_SOFTWARE;
    }
    m8_log(M8_LOG_INFO, "serving FastCGI on %s with %lld threads",
           listen_spec ? listen_spec : "the inherited socket (fd 0)", threads);
    m8_evrunner *stream = own_stream_start(app);

    pthread_t st;
    bool st_running = false;
    if (!start_first) {
        st_running = m8_thread_start(&st, NULL, startup_main, &sc) == 0;
        if (!st_running) {
            sc.rc = M8_EX_SOFTWARE;
            atomic_store(&sc.done, 1);
        }
    }
    int exit_code = 0;
    bool retire = false;
    for (;;) {
        int sig = m8_signals_wait(-1);
        if (sig == SIGTERM || sig == SIGINT) {
            m8_log(M8_LOG_INFO, "signal %d: draining", sig);
            break;
        }
        if (sig == SIGQUIT) {
            m8_log(M8_LOG_INFO, "signal %d: retiring", sig);
            retire = true;
            break;
        }
        if (sig == M8_RECYCLE) {
            m8_log(M8_LOG_INFO, "served %llu requests (--max-requests): recycling",
                   (unsigned long long)app->max_requests);
            retire = true;
            break;
        }
        if (sig == M8_STARTUP_DONE && sc.rc != 0) {
            exit_code = M8_EX_SOFTWARE;
            break;
        }
    }
    if (app->slot)
        atomic_store(&app->slot->state, M8_SLOT_RETIRING);
    if (retire)
        drain(srv, drain_s);
    m8_server_stop(srv, (double)shutdown_s);
    m8_evrunner_stop(stream);
    bool started = atomic_load(&sc.done) && sc.rc == 0;
    if (st_running && atomic_load(&sc.done))
        pthread_join(st, NULL);
    if (started)
        m8_app_stop(app);
    if (listen_spec && strncmp(listen_spec, "unix:", 5) == 0)
        unlink(listen_spec + 5);
    m8_log(M8_LOG_INFO, "stopped");
    if (st_running && !atomic_load(&sc.done)) {
        /* A startup hook is still running: it cannot be cancelled safely,
         * so leave without freeing what it may still use. */
        return exit_code;
    }
    m8_app_free(app);
    return exit_code;
}
