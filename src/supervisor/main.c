/* fcgim8d - the fcgi-m8 supervisor: runs a pool of FastCGI workers of one
 * service the way php-fpm does (doc/design.md#supervisor, fcgim8d(8)).
 *
 *   fcgim8d [options] -- /path/to/service [service args]
 *
 * Boot: settings + config health (78) -> database wait -> shared segment ->
 * listen socket (or the one systemd / spawn-fcgi passed) -> privileges
 * dropped -> `service --check` (fail closed, 78) -> workers -> ready.
 *
 * The listen socket stays open in the supervisor for its whole life, so a
 * reload (SIGHUP) starts the new generation, waits until it is ready, and
 * only then retires the old one: no request sees a closed socket.
 *
 * Signal handlers only write the signal number to a self-pipe; the main
 * loop does everything else.
 *
 * This file holds the boot order, the signals, daemon mode and the main
 * loop; options.c, sockets.c, pool.c, reload.c and logs.c the rest
 * (fcgim8d.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

#include "db/db.h"
#include "fcgim8d.h"

/* ------------------------------------------------------------ signals */

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t g_stop_requested; /* read by the database wait */

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
        g_stop_requested = 1;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(sig_pipe[1], &b, 1);
    (void)w;
    errno = saved;
}

static int install_signals(void)
{
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: poll() returns at once */
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD, SIGQUIT};
    for (size_t i = 0; i < M8_ARRAY_LEN(sigs); i++) {
        if (sigaction(sigs[i], &sa, NULL) != 0)
            return -1;
    }
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

/* ------------------------------------------------------------ daemon mode */

static int daemon_ready_fd = -1;

static void notify_parent(unsigned char code)
{
    if (daemon_ready_fd >= 0) {
        ssize_t w = write(daemon_ready_fd, &code, 1);
        (void)w;
        close(daemon_ready_fd);
        daemon_ready_fd = -1;
    }
}

/* Forks; the parent waits until the child is ready (exit 0) or failed
 * (its exit status), like `php-fpm --daemonize`. */
static void become_daemon(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        perror("fcgim8d: pipe");
        exit(M8_EX_SOFTWARE);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fcgim8d: fork");
        exit(M8_EX_SOFTWARE);
    }
    if (pid > 0) {
        close(p[1]);
        unsigned char code = M8_EX_SOFTWARE;
        ssize_t n;
        while ((n = read(p[0], &code, 1)) < 0 && errno == EINTR) {
        }
        _exit(n == 1 ? code : M8_EX_SOFTWARE);
    }
    close(p[0]);
    daemon_ready_fd = p[1];
    setsid();
    /* The working directory is kept: relative paths on the command line,
     * and the services' .env walk-up (doc/settings.md#where-values-come-from), mean the same as in
     * the foreground. */
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 1);
        if (devnull > 2)
            close(devnull);
    }
}

/* ------------------------------------------------------------ main */

static int boot_fail(daemon_state *d, int code)
{
    notify_parent((unsigned char)code);
    if (d->unix_path)
        unlink(d->unix_path);
    if (d->o.pid_file && pid_file_written)
        unlink(d->o.pid_file);
    return code;
}

/* Waits for a signal or a worker's log bytes (drained here); true when
 * the signal pipe is readable.  gather_ms: when the last wake-up found log
 * bytes, first wait that long for a signal alone, so that under load one
 * wake-up reads what several of a worker's batches put in its pipe (one a
 * thread every 4 KiB of lines) instead of one wake-up each.  Not after a
 * wake-up that found a pipe half full: a worker that logs that fast would
 * soon wait on its pipe, so its lines are read as they come
 * (doc/design.md#logging). */
static bool wait_any(daemon_state *d, int timeout_ms, int gather_ms)
{
    static struct pollfd *p;
    static size_t cap;
    static double last_logs; /* m8_now_mono() of the last wake-up with log bytes, or 0 */
    if (gather_ms > 0 && last_logs > 0) {
        int ms = gather_ms - (int)((m8_now_mono() - last_logs) * 1000.0);
        if (ms > timeout_ms)
            ms = timeout_ms;
        if (ms > 0) {
            struct pollfd s = {.fd = sig_pipe[0], .events = POLLIN};
            if (poll(&s, 1, ms) != 0)
                return true; /* a signal (or EINTR: one is on its way) */
            timeout_ms -= ms;
        }
    }
    size_t n = d->n_workers;
    if (n + 1 > cap) {
        struct pollfd *np = realloc(p, (n + 1) * sizeof *p);
        if (!np) {
            poll(NULL, 0, timeout_ms);
            return true;
        }
        p = np;
        cap = n + 1;
    }
    p[0] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
    for (size_t i = 0; i < n; i++)
        p[i + 1] = (struct pollfd){.fd = d->workers[i].log_fd, .events = POLLIN};
    int r = poll(p, n + 1, timeout_ms);
    last_logs = 0;
    if (r <= 0)
        return r < 0; /* EINTR: a signal */
    bool fast = false;
    for (size_t i = 0; i < n; i++) {
        if (p[i + 1].revents) {
            size_t got;
            drain_log_held(&d->workers[i], &got);
            fast = fast || got >= d->workers[i].log_pipe_size / 2;
            last_logs = m8_now_mono();
        }
    }
    if (fast)
        last_logs = 0;
    out_flush();
    return p[0].revents != 0;
}

static int next_signal(void)
{
    unsigned char b;
    ssize_t n = read(sig_pipe[0], &b, 1);
    return n == 1 ? b : 0;
}

int main(int argc, char **argv)
{
    static daemon_state d;
    close_inherited_fds();
    int rc = parse_options(argc, argv, &d.o);
    if (rc != 0)
        return rc;
    d.t0 = m8_now_mono();
    d.listen_fd = -1;
    if (d.o.log_file && open_log(d.o.log_file) != 0) {
        fprintf(stderr, "fcgim8d: cannot open --log-file %s: %s\n", d.o.log_file, strerror(errno));
        return M8_EX_USAGE;
    }
    if (d.o.daemonize)
        become_daemon();
    if (install_signals() != 0) {
        m8_log(M8_LOG_CRITICAL, "cannot install signal handlers: %s", strerror(errno));
        return boot_fail(&d, M8_EX_SOFTWARE);
    }
    m8_log(M8_LOG_INFO, "fcgim8d %s starting: %s", m8_version(), d.o.service_argv[0]);

    /* 1. settings and config health */
    if (load_settings(&d, &d.settings) != 0)
        return boot_fail(&d, M8_EX_CONFIG);
    char serr[512] = "";
    if (d.o.status_listen &&
        m8_status_check_listen(d.o.status_listen, d.settings, serr, sizeof serr) != 0) {
        m8_log(M8_LOG_CRITICAL, "--status-listen: %s", serr);
        return boot_fail(&d, M8_EX_CONFIG);
    }

    /* 2. the pre-start database wait */
    if (m8_db_configured(d.settings)) {
        char dberr[512] = "";
        m8_log(M8_LOG_INFO, "waiting for the database (up to %lld tries, %.1f s apart)",
               d.o.db_wait_tries, d.o.db_wait_interval);
        rc = m8_db_wait(d.settings, (long)d.o.db_wait_tries, d.o.db_wait_interval, NULL,
                        &g_stop_requested, dberr, sizeof dberr);
        if (rc == M8_ECONFIG) {
            m8_log(M8_LOG_CRITICAL, "database settings: %s", dberr);
            return boot_fail(&d, M8_EX_CONFIG);
        }
        if (rc != 0) {
            m8_log(M8_LOG_CRITICAL, "%s: not starting",
                   g_stop_requested ? "stopped while waiting for the database"
                                    : "the database did not answer");
            return boot_fail(&d, g_stop_requested ? 0 : M8_EX_SOFTWARE);
        }
    }

    /* 3. shared segment and listen socket */
    uint32_t max_w = (uint32_t)(d.o.dynamic ? d.o.max_workers : d.o.workers);
    char err[512] = "";
    /* Twice the pool (a reload runs two generations), plus room for workers
     * that drain their kept connections after reloads and recycling. */
    uint32_t nslots = max_w * 2 + 2 + DRAIN_SLOTS;
    if (nslots > M8_SHM_MAX_SLOTS)
        nslots = M8_SHM_MAX_SLOTS;
    d.shm = m8_shm_create(nslots, &d.shm_fd, err, sizeof err);
    if (!d.shm) {
        m8_log(M8_LOG_CRITICAL, "%s", err);
        return boot_fail(&d, M8_EX_SOFTWARE);
    }
    fcntl(d.shm_fd, F_SETFD, FD_CLOEXEC); /* cleared in each worker before exec */
    if (take_listen_socket(&d) != 0)
        return boot_fail(&d, M8_EX_SOFTWARE);
    if (d.o.status_listen) {
        d.status = m8_status_start(d.o.status_listen, d.shm, d.settings, err, sizeof err);
        if (!d.status) {
            m8_log(M8_LOG_CRITICAL, "--status-listen: %s", err);
            return boot_fail(&d, M8_EX_SOFTWARE);
        }
    }
    if (d.o.pid_file && write_pid_file(d.o.pid_file) != 0) {
        m8_log(M8_LOG_CRITICAL, "cannot write --pid-file %s: %s", d.o.pid_file, strerror(errno));
        return boot_fail(&d, M8_EX_SOFTWARE);
    }
    if (drop_privileges(&d.o) != 0)
        return boot_fail(&d, M8_EX_SOFTWARE);
    d.sidecar = m8_sidecar_start(d.shm, d.settings); /* before any worker starts */

    /* 4. startup validators, fail closed */
    rc = run_check(&d);
    if (rc != 0) {
        m8_log(M8_LOG_CRITICAL, "`%s --check` (startup validators) exited with %d: not starting",
               d.o.service_argv[0], rc);
        return boot_fail(&d, M8_EX_CONFIG);
    }

    /* 5. workers, then ready once every first worker is */
    d.generation = 1;
    atomic_store(&d.shm->generation, 1);
    bool ready = false;
    int exit_code = 0;
#ifdef __GLIBC__
    malloc_trim(0); /* what booting freed goes back (doc/design.md#memory) */
#endif
    double last_sample = 0, next_tick = 0;
    bool signalled = true;
    for (;;) {
        double now = m8_now_mono();
        /* Log bytes alone wake us often under load: once the pool is up
         * and steady, the supervision below runs on a signal or once per
         * TICK_MS.  While it starts, reloads or stops, every wake-up (a
         * worker's "ready" line, say) runs it, so readiness is seen at once. */
        if (!signalled && now < next_tick && ready && !d.reloading && !d.stopping) {
            signalled = wait_any(&d, (int)((next_tick - now) * 1000) + 1, LOG_GATHER_MS);
            continue;
        }
        next_tick = now + TICK_MS / 1000.0;
        int sig;
        while ((sig = next_signal()) != 0) {
            if ((sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) && !d.stopping) {
                m8_log(M8_LOG_INFO, "signal %d: stopping; draining workers (up to %lld s)", sig,
                       d.o.shutdown_timeout);
                d.stopping = true;
                d.stop_started = now;
                if (d.unix_path)
                    unlink(d.unix_path); /* new connections go elsewhere at once */
                for (size_t i = 0; i < d.n_workers; i++) {
                    worker *w = &d.workers[i];
                    if (w->draining) { /* a stop ends drains too */
                        w->draining = false;
                        kill(w->pid, SIGTERM);
                    }
                    retire(&d, w, M8_CTR__END);
                }
            } else if (sig == SIGHUP && !d.stopping) {
                if (ready)
                    start_reload(&d);
                else
                    m8_log(M8_LOG_WARNING, "SIGHUP before the pool is ready: ignored");
            } else if (sig == SIGUSR1) {
                if (d.o.log_file && open_log(d.o.log_file) != 0)
                    m8_log(M8_LOG_ERROR, "cannot reopen --log-file: %s", strerror(errno));
                else
                    m8_log(M8_LOG_INFO, "SIGUSR1: log reopened");
            }
        }
        reap(&d);
        if (d.stopping) {
            if (d.n_workers == 0)
                break;
            if (now - d.stop_started > (double)d.o.shutdown_timeout) {
                for (size_t i = 0; i < d.n_workers; i++) {
                    if (!d.workers[i].killed) {
                        m8_log(M8_LOG_WARNING, "worker %ld still draining after %lld s: killed",
                               (long)d.workers[i].pid, d.o.shutdown_timeout);
                        d.workers[i].killed = true;
                        kill(d.workers[i].pid, SIGKILL);
                    }
                }
            }
        } else {
            maintain_pool(&d, now);
            progress_reload(&d, now);
            check_requests(&d, m8_mono_ns());
            for (size_t i = 0; i < d.n_workers; i++) {
                worker *w = &d.workers[i];
                /* a draining worker first waits for its kept connections */
                double limit =
                    (double)d.o.shutdown_timeout + 1 + (w->draining ? d.o.drain_timeout + 4 : 0);
                if (w->retiring && !w->killed && now - w->retire_at > limit) {
                    m8_log(M8_LOG_WARNING, "worker %ld did not drain within %.0f s: killed",
                           (long)w->pid, limit);
                    w->killed = true;
                    kill(w->pid, SIGKILL);
                }
            }
            if (!ready) {
                size_t want = d.o.dynamic ? (size_t)d.o.workers : target_size(&d);
                if (count_gen(&d, d.generation, true, NULL) >= want) {
                    ready = true;
                    atomic_store(&d.shm->ready, 1);
                    m8_log(M8_LOG_INFO, "ready: %zu workers in %.0f ms", want,
                           (m8_now_mono() - d.t0) * 1000);
                    notify_parent(0);
                } else if (now - d.t0 > READY_TIMEOUT_S) {
                    m8_log(M8_LOG_CRITICAL, "the workers did not become ready within %.0f s",
                           READY_TIMEOUT_S);
                    exit_code = M8_EX_SOFTWARE;
                    d.stopping = true;
                    d.stop_started = now;
                    for (size_t i = 0; i < d.n_workers; i++)
                        retire(&d, &d.workers[i], M8_CTR__END);
                }
            }
            if (now - last_sample >= 1.0) {
                last_sample = now;
                sample_listen_queue(&d);
            }
        }
        /* Booting, readiness is looked at every 10 ms: it does not wait for a
         * worker's log line (there is none below info). */
        signalled = wait_any(&d, ready ? TICK_MS : 10, 0);
    }
    m8_status_stop(d.status);
    m8_sidecar_stop(d.sidecar);
    if (d.unix_path) {
        unlink(d.unix_path);
        free(d.unix_path);
    }
    if (d.o.pid_file)
        unlink(d.o.pid_file);
    close(d.listen_fd);
    m8_log(M8_LOG_INFO, "stopped");
    notify_parent((unsigned char)(exit_code ? exit_code : M8_EX_SOFTWARE));
    m8_shm_unmap(d.shm);
    m8_settings_free(d.settings);
    return exit_code;
}
