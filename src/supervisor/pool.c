/* pool.c - fcgim8d's worker pool: spawning a worker (its environment and
 * arguments), retiring and draining one, reaping, the respawn backoff and
 * crash-loop breaker, the static and dynamic pool sizes, and the
 * --request-timeout / --slow-log watch (fcgim8d(8)). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fcgim8d.h"

static const char *cause_name(int cause)
{
    switch (cause) {
    case M8_CTR_RESTART_CRASH: return "crash";
    case M8_CTR_RESTART_MAX_REQUESTS: return "max_requests";
    case M8_CTR_RESTART_TIMEOUT: return "request_timeout";
    case M8_CTR_RESTART_RELOAD: return "reload";
    case M8_CTR_RESTART_SCALE_DOWN: return "scale_down";
    default: return "stop";
    }
}

static int free_slot(daemon_state *d)
{
    for (uint32_t i = 0; i < m8_shm_nslots(d->shm); i++) { /* not the segment's own copy */
        if (atomic_load(&d->shm->slots[i].state) != M8_SLOT_FREE)
            continue;
        bool used = false;
        for (size_t w = 0; w < d->n_workers; w++)
            used |= d->workers[w].slot == (int)i;
        if (!used)
            return (int)i;
    }
    return -1;
}

/* Builds "NAME=value" in a static-lifetime environment for execve: built in
 * the parent, since the child of a threaded process may only call
 * async-signal-safe functions before exec. */
static char **worker_env(const daemon_state *d, int slot)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 5, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i];
        if (strncmp(e, M8_ENV_SHM_FD "=", sizeof M8_ENV_SHM_FD) == 0 ||
            strncmp(e, M8_ENV_SHM_SLOT "=", sizeof M8_ENV_SHM_SLOT) == 0 ||
            strncmp(e, M8_ENV_MAX_REQUESTS "=", sizeof M8_ENV_MAX_REQUESTS) == 0 ||
            strncmp(e, "LISTEN_FDS=", 11) == 0 || strncmp(e, "LISTEN_PID=", 11) == 0 ||
            strncmp(e, "LISTEN_FDNAMES=", 15) == 0)
            continue;
        env[k++] = (char *)e;
    }
    char buf[64];
    snprintf(buf, sizeof buf, "%s=%d", M8_ENV_SHM_FD, d->shm_fd);
    env[k++] = strdup(buf);
    snprintf(buf, sizeof buf, "%s=%d", M8_ENV_SHM_SLOT, slot);
    env[k++] = strdup(buf);
    snprintf(buf, sizeof buf, "%s=%lld", M8_ENV_MAX_REQUESTS, d->o.max_requests);
    env[k++] = strdup(buf);
    env[k] = NULL;
    for (size_t i = k - 3; i < k; i++) {
        if (!env[i]) {
            for (size_t j = k - 3; j < k; j++)
                free(env[j]);
            free(env);
            return NULL;
        }
    }
    return env;
}

static void free_env(char **env)
{
    if (!env)
        return;
    size_t k = 0;
    while (env[k])
        k++;
    for (size_t i = k >= 3 ? k - 3 : 0; i < k; i++)
        free(env[i]);
    free(env);
}

/* The service's argv plus the options fcgim8d passes down. */
char **service_args(const options *o, bool check, char *threads_buf, char *st_buf)
{
    size_t n = 0;
    while (o->service_argv[n])
        n++;
    char **av = calloc(n + 14, sizeof *av);
    if (!av)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        av[k++] = o->service_argv[i];
    if (o->env_file) {
        av[k++] = "--env-file";
        av[k++] = (char *)o->env_file;
    }
    if (check) {
        av[k++] = "--check";
    } else {
        if (o->threads_set) {
            av[k++] = "--threads";
            av[k++] = threads_buf;
        }
        av[k++] = "--shutdown-timeout";
        av[k++] = st_buf;
        const char *pass[][2] = {{"--drain-timeout", o->drain_arg},
                                 {"--idle-timeout", o->idle_arg},
                                 {"--request-deadline", o->deadline_arg}};
        for (size_t i = 0; i < M8_ARRAY_LEN(pass); i++) {
            if (pass[i][1]) {
                av[k++] = (char *)pass[i][0];
                av[k++] = (char *)pass[i][1];
            }
        }
    }
    av[k] = NULL;
    return av;
}

void child_reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGCHLD, SIGQUIT, SIGPIPE};
    for (size_t i = 0; i < M8_ARRAY_LEN(sigs); i++)
        sigaction(sigs[i], &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static bool cut_oldest_drain(daemon_state *d);

static int spawn_worker(daemon_state *d, uint32_t gen)
{
    if (d->n_workers >= M8_ARRAY_LEN(d->workers))
        return -1;
    int slot = free_slot(d);
    if (slot < 0) {
        if (!cut_oldest_drain(d))
            m8_log(M8_LOG_ERROR,
                   "no free worker slot in the shared segment; not starting a worker");
        return -1;
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        m8_log(M8_LOG_ERROR, "pipe: %s", strerror(errno));
        return -1;
    }
    char threads_buf[32], st_buf[32];
    snprintf(threads_buf, sizeof threads_buf, "%lld", d->o.threads);
    snprintf(st_buf, sizeof st_buf, "%lld", d->o.shutdown_timeout);
    char **env = worker_env(d, slot);
    char **av = service_args(&d->o, false, threads_buf, st_buf);
    if (!env || !av) {
        free_env(env);
        free(av);
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    m8_shm_slot *s = &d->shm->slots[slot];
    atomic_store(&s->state, M8_SLOT_STARTING);
    pid_t pid = fork();
    if (pid == 0) {
        child_reset_signals();
        if (d->listen_fd != 0 && dup2(d->listen_fd, 0) < 0)
            _exit(M8_EX_SOFTWARE);
        if (dup2(pfd[1], 1) < 0 || dup2(pfd[1], 2) < 0)
            _exit(M8_EX_SOFTWARE);
        /* Nothing else reaches the worker, close-on-exec or not (a socket
         * a library opened in another thread, say): fd 0-2 and the segment. */
        if (d->shm_fd > 3)
            close_range(3, (unsigned)d->shm_fd - 1, 0);
        close_range((unsigned)d->shm_fd + 1, ~0U, 0);
        int fl = fcntl(d->shm_fd, F_GETFD);
        if (fl >= 0)
            fcntl(d->shm_fd, F_SETFD, fl & ~FD_CLOEXEC);
        execve(av[0], av, env);
        static const char msg[] = "fcgim8d: cannot execute the service\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    free_env(env);
    free(av);
    close(pfd[1]);
    if (pid < 0) {
        atomic_store(&s->state, M8_SLOT_FREE);
        close(pfd[0]);
        m8_log(M8_LOG_ERROR, "fork: %s", strerror(errno));
        return -1;
    }
    m8_shm_slot_claim(s, pid, gen);
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    worker *w = &d->workers[d->n_workers++];
    *w = (worker){.pid = pid, .slot = slot, .gen = gen, .log_fd = pfd[0], .started = m8_now_mono()};
    /* What the pipe holds decides whether wait_any may gather (LOG_GATHER_MS):
     * 64 KiB by default, less once the user has many pipes open; unknown, it
     * never does. */
    int pipe_size = fcntl(pfd[0], F_GETPIPE_SZ);
    w->log_pipe_size = pipe_size > 0 ? (size_t)pipe_size : 0;
    w->line = malloc(LOG_LINE_MAX + 1);
    return 0;
}

/* Reload and dynamic shrink retire a worker with SIGQUIT: it stops
 * accepting at once and serves the kept connections it has until the web
 * server closes them (--drain-timeout at most), so no request the web
 * server writes on one of them meets a closed socket (fcgim8d(8), "Reload
 * without failed requests").  A stop, or a worker still starting (its
 * handlers may not be installed yet), gets SIGTERM. */
void retire(daemon_state *d, worker *w, int cause)
{
    if (w->retiring)
        return;
    m8_shm_slot *s = &d->shm->slots[w->slot];
    uint32_t st = atomic_load(&s->state);
    w->retiring = true;
    w->draining = cause != M8_CTR__END && (st == M8_SLOT_READY || st == M8_SLOT_RETIRING);
    w->retire_cause = cause;
    w->retire_at = m8_now_mono();
    atomic_store(&s->state, M8_SLOT_RETIRING);
    kill(w->pid, w->draining ? SIGQUIT : SIGTERM);
    /* Counted now, not at exit: a draining worker may take nginx's
     * keepalive_timeout to go, and it is no longer part of the pool. */
    if (cause == M8_CTR_RESTART_RELOAD || cause == M8_CTR_RESTART_SCALE_DOWN)
        atomic_fetch_add(&d->shm->counters[cause], 1);
}

/* No slot is free for a new worker because draining ones hold them (many
 * reloads within nginx's keepalive_time): the one draining longest is told
 * to stop now (SIGTERM closes its idle kept connections).  Returns whether
 * one was found. */
static bool cut_oldest_drain(daemon_state *d)
{
    worker *oldest = NULL;
    for (size_t i = 0; i < d->n_workers; i++) {
        if (d->workers[i].drain_cut)
            return true; /* one at a time: its slot frees up once it exits */
    }
    for (size_t i = 0; i < d->n_workers; i++) {
        worker *w = &d->workers[i];
        bool recycling =
            !w->retiring && atomic_load(&d->shm->slots[w->slot].state) == M8_SLOT_RETIRING;
        if (w->killed || !(w->draining || recycling))
            continue;
        if (!oldest || (w->retiring ? w->retire_at : w->started) <
                           (oldest->retiring ? oldest->retire_at : oldest->started))
            oldest = w;
    }
    if (!oldest)
        return false;
    oldest->drain_cut = true;
    m8_log(M8_LOG_WARNING,
           "no free worker slot: worker %ld stops draining early (its idle kept connections "
           "are closed); lower nginx's upstream keepalive_time to drain sooner",
           (long)oldest->pid);
    if (!oldest->retiring) {
        retire(d, oldest, M8_CTR__END);
        oldest->retire_cause = M8_CTR_RESTART_MAX_REQUESTS;
    } else {
        oldest->draining = false;
        oldest->retire_at = m8_now_mono();
        kill(oldest->pid, SIGTERM);
    }
    return true;
}

static void note_crash(daemon_state *d, double now)
{
    if (d->crash_n == CRASH_LIMIT) {
        memmove(d->crash_times, d->crash_times + 1, sizeof(double) * (CRASH_LIMIT - 1));
        d->crash_n--;
    }
    d->crash_times[d->crash_n++] = now;
    if (d->crash_n == CRASH_LIMIT && now - d->crash_times[0] <= CRASH_WINDOW_S) {
        d->backoff = d->backoff < 1.0 ? 1.0 : d->backoff * 2;
        if (d->backoff > BACKOFF_MAX_S)
            d->backoff = BACKOFF_MAX_S;
        m8_log(M8_LOG_CRITICAL,
               "crash loop: %d abnormal worker exits within %.0f s; respawning at most every "
               "%.1f s (fix the service: see the worker lines above)",
               CRASH_LIMIT, CRASH_WINDOW_S, d->backoff);
    } else if (d->backoff < 0.1) {
        d->backoff = 0.1;
    } else if (d->backoff < BACKOFF_MAX_S) {
        d->backoff = d->backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : d->backoff * 2;
    }
    d->next_spawn_at = now + d->backoff;
}

void reap(daemon_state *d)
{
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < d->n_workers; i++) {
            worker *w = &d->workers[i];
            if (w->pid != pid)
                continue;
            while (drain_log(w)) {
                struct pollfd p = {.fd = w->log_fd, .events = POLLIN};
                if (poll(&p, 1, 50) <= 0)
                    break;
            }
            m8_shm_slot *s = &d->shm->slots[w->slot];
            bool recycled = !w->retiring && atomic_load(&s->state) == M8_SLOT_RETIRING &&
                            WIFEXITED(st) && WEXITSTATUS(st) == 0;
            bool clean = (w->retiring || recycled) && !w->killed;
            int cause = recycled      ? M8_CTR_RESTART_MAX_REQUESTS
                        : w->retiring ? w->retire_cause
                                      : (w->killed ? M8_CTR_RESTART_TIMEOUT : M8_CTR_RESTART_CRASH);
            if (w->killed && w->retire_cause == M8_CTR_RESTART_TIMEOUT)
                cause = M8_CTR_RESTART_TIMEOUT;
            double now = m8_now_mono();
            double lived = now - w->started;
            if (WIFSIGNALED(st)) {
                m8_log(clean || w->killed ? M8_LOG_INFO : M8_LOG_ERROR,
                       "worker %ld (slot %d) killed by signal %d after %.1f s (%s)", (long)pid,
                       w->slot, WTERMSIG(st), lived, cause_name(cause));
            } else {
                m8_log(clean ? M8_LOG_INFO : M8_LOG_ERROR,
                       "worker %ld (slot %d) exited with status %d after %.1f s (%s)", (long)pid,
                       w->slot, WEXITSTATUS(st), lived, cause_name(cause));
            }
            if (!clean && cause == M8_CTR_RESTART_CRASH) {
                note_crash(d, now);
            } else if (lived > CRASH_WINDOW_S) {
                d->backoff = 0;
            }
            bool counted = w->retiring && (w->retire_cause == M8_CTR_RESTART_RELOAD ||
                                           w->retire_cause == M8_CTR_RESTART_SCALE_DOWN);
            if (cause <= M8_CTR_RESTART_SCALE_DOWN && !counted) /* not a stop */
                atomic_fetch_add(&d->shm->counters[cause], 1);
            m8_shm_slot_release(s);
            close(w->log_fd);
            free(w->line);
            d->workers[i] = d->workers[--d->n_workers];
            break;
        }
    }
}

size_t count_gen(const daemon_state *d, uint32_t gen, bool ready_only, size_t *idle)
{
    size_t n = 0, id = 0;
    for (size_t i = 0; i < d->n_workers; i++) {
        const worker *w = &d->workers[i];
        if (w->gen != gen || w->retiring)
            continue;
        const m8_shm_slot *s = &d->shm->slots[w->slot];
        uint32_t st = atomic_load(&s->state);
        if (st == M8_SLOT_RETIRING)
            continue; /* recycling itself */
        if (ready_only && st != M8_SLOT_READY)
            continue;
        n++;
        if (st == M8_SLOT_READY) {
            bool busy = false;
            uint32_t nt = atomic_load(&s->nthreads);
            for (uint32_t t = 0; t < nt && t < M8_SHM_THREADS; t++)
                busy |= atomic_load(&s->threads[t].busy_since_ns) != 0;
            id += !busy;
        }
    }
    if (idle)
        *idle = id;
    return n;
}

size_t target_size(const daemon_state *d)
{
    return (size_t)d->o.workers;
}

/* Keeps the current generation at its size (respecting the backoff), and
 * the dynamic pool between its spares. */
void maintain_pool(daemon_state *d, double now)
{
    if (d->stopping)
        return;
    size_t idle = 0;
    size_t live = count_gen(d, d->generation, false, &idle);
    size_t want = target_size(d);
    if (d->o.dynamic) {
        /* A generation starts with --workers (php-fpm's pm.start_servers):
         * boot and reload wait for them; only then do the spares decide. */
        bool settling = !atomic_load(&d->shm->ready) || d->reloading;
        size_t floor = (size_t)d->o.min_spare;
        if (settling && floor < (size_t)d->o.workers)
            floor = (size_t)d->o.workers;
        want = live < floor ? floor : live;
        /* a starting worker is a spare on its way: a slow startup must not
         * grow the pool to --max-workers */
        size_t spare = idle + live - count_gen(d, d->generation, true, NULL);
        if (now - d->last_scale >= 1.0) {
            d->last_scale = now;
            if (spare < (size_t)d->o.min_spare && live < (size_t)d->o.max_workers) {
                size_t add = (size_t)d->o.min_spare - spare;
                if (live + add > want)
                    want = live + add;
            } else if (!settling && idle > (size_t)d->o.max_spare && live > 1) {
                for (size_t i = 0; i < d->n_workers; i++) {
                    worker *w = &d->workers[i];
                    const m8_shm_slot *s = &d->shm->slots[w->slot];
                    if (w->gen != d->generation || w->retiring ||
                        atomic_load(&s->state) != M8_SLOT_READY)
                        continue;
                    bool busy = false;
                    uint32_t nt = atomic_load(&s->nthreads);
                    for (uint32_t t = 0; t < nt && t < M8_SHM_THREADS; t++)
                        busy |= atomic_load(&s->threads[t].busy_since_ns) != 0;
                    if (!busy) {
                        m8_log(M8_LOG_INFO,
                               "dynamic pool: %zu idle > max-spare %lld: retiring "
                               "worker %ld",
                               idle, d->o.max_spare, (long)w->pid);
                        retire(d, w, M8_CTR_RESTART_SCALE_DOWN);
                        break;
                    }
                }
            }
        }
        if (want > (size_t)d->o.max_workers)
            want = (size_t)d->o.max_workers;
    }
    atomic_store(&d->shm->workers_target, (uint32_t)want);
    if (now < d->next_spawn_at)
        return;
    while (live < want) {
        if (spawn_worker(d, d->generation) != 0)
            break;
        live++;
        if (d->backoff > 0) { /* in backoff: one at a time */
            d->next_spawn_at = now + d->backoff;
            break;
        }
    }
}

void check_requests(daemon_state *d, uint64_t now_ns)
{
    for (size_t i = 0; i < d->n_workers; i++) {
        worker *w = &d->workers[i];
        if (w->killed)
            continue;
        m8_shm_slot *s = &d->shm->slots[w->slot];
        uint32_t nt = atomic_load(&s->nthreads);
        for (uint32_t t = 0; t < nt && t < M8_SHM_THREADS; t++) {
            uint64_t since =
                atomic_load_explicit(&s->threads[t].busy_since_ns, memory_order_acquire);
            if (!since || since > now_ns)
                continue;
            double secs = (double)(now_ns - since) / 1e9;
            char what[M8_SHM_WHAT_BYTES];
            memcpy(what, s->threads[t].what, sizeof what);
            what[sizeof what - 1] = '\0';
            if (d->o.request_timeout > 0 && secs > d->o.request_timeout) {
                m8_log(M8_LOG_ERROR,
                       "worker %ld: request \"%s\" running for %.1f s > --request-timeout "
                       "%.1f s: killing the worker",
                       (long)w->pid, what, secs, d->o.request_timeout);
                w->killed = true;
                w->retire_cause = M8_CTR_RESTART_TIMEOUT;
                kill(w->pid, SIGKILL);
                break;
            }
            if (d->o.slow_log > 0 && secs > d->o.slow_log && w->slow_logged != since) {
                w->slow_logged = since;
                atomic_fetch_add(&d->shm->counters[M8_CTR_SLOW_REQUESTS], 1);
                m8_log(M8_LOG_WARNING, "slow request: worker %ld \"%s\" running for %.1f s",
                       (long)w->pid, what, secs);
            }
        }
    }
}
