/* fcgim8d - the fcgi-m8 supervisor: runs a pool of FastCGI workers of one
 * service the way php-fpm does (DESIGN "The supervisor", fcgim8d(8)).
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
 * loop does everything else. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/confighealth.h"
#include "core/log.h"
#include "app/server.h"
#include "config/settings.h"
#include "shm/shm.h"
#include "sidecar.h"
#include "status.h"

#include "db/db.h"

#define EX_USAGE_ 64
#define EX_SOFTWARE_ 70
#define EX_CONFIG_ 78
#define MAX_WORKERS 128          /* --workers / --max-workers ceiling */
#define LOG_LINE_MAX 16384u      /* a worker's log line; longer ones are split */
#define TICK_MS 100              /* supervision period */
#define CRASH_LIMIT 5            /* abnormal exits ... */
#define CRASH_WINDOW_S 10.0      /* ... within this many seconds = a crash loop */
#define BACKOFF_MAX_S 5.0        /* longest pause between respawns */
#define READY_TIMEOUT_S 60.0     /* a new worker must be ready within this */
#define DRAIN_SLOTS 64           /* extra slots for workers draining kept connections */

extern char **environ;

/* ------------------------------------------------------------ options */

typedef struct options {
    const char *listen, *socket_owner, *socket_group, *env_file, *user, *group;
    const char *pid_file, *log_file, *status_listen;
    long long socket_mode, backlog, workers, threads, max_requests, shutdown_timeout;
    long long min_spare, max_spare, max_workers, db_wait_tries;
    double request_timeout, slow_log, db_wait_interval;
    double drain_timeout; /* --drain-timeout (the workers' default unless given) */
    const char *idle_arg, *deadline_arg, *drain_arg; /* passed to the workers as given */
    bool dynamic, daemonize, threads_set;
    char **service_argv; /* service [args] */
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fcgim8d [options] -- /path/to/service [service args]\n"
            "\n"
            "Runs a pool of FastCGI workers of a fcgi-m8 service (see fcgim8d(8)).\n"
            "\n"
            "  --listen unix:/path|host:port  listen socket (else LISTEN_FDS from systemd or\n"
            "                                 a listening socket on fd 0 from spawn-fcgi)\n"
            "  --socket-owner USER --socket-group GROUP --socket-mode MODE (default 0660)\n"
            "  --backlog N                    listen backlog (default 1024)\n"
            "  --workers N                    static pool size (default 4); with dynamic: start\n"
            "  --pm static|dynamic            pool mode (default static)\n"
            "  --min-spare N --max-spare N --max-workers N   dynamic pool (defaults 1, 3, 8)\n"
            "  --threads N                    threads per worker (passed to the service)\n"
            "  --max-requests N               recycle a worker after N requests (0 = never)\n"
            "  --request-timeout S            replace a worker stuck on one request longer\n"
            "  --slow-log S                   log requests running longer than S seconds\n"
            "  --shutdown-timeout S           on stop, how long requests in progress may\n"
            "                                 take to finish (default 30)\n"
            "  --drain-timeout S              a retiring worker (reload, --max-requests,\n"
            "                                 dynamic shrink) serves its kept connections\n"
            "                                 until the web server closes them, at most this\n"
            "                                 long (default 135; see fcgim8d(8))\n"
            "  --idle-timeout S --request-deadline S   passed to the workers (defaults 75, 30)\n"
            "  --env-file PATH                settings file (re-read on SIGHUP)\n"
            "  --user USER --group GROUP      drop privileges after binding\n"
            "  --pid-file PATH  --log-file PATH (SIGUSR1 reopens it)\n"
            "  --foreground (default) | --daemon\n"
            "  --status-listen ADDR           plain HTTP status and metrics (GET /status,\n"
            "                                 GET /metrics); loopback or a unix socket\n"
            "  --db-wait-tries N --db-wait-interval S   pre-start database wait (300, 5)\n"
            "  --version --help\n"
            "\n"
            "Signals: SIGHUP reload, SIGTERM/SIGINT drain and stop, SIGUSR1 reopen the log.\n");
}

static int parse_options(int argc, char **argv, options *o)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"socket-owner", required_argument, NULL, 'O'},
        {"socket-group", required_argument, NULL, 'G'},
        {"socket-mode", required_argument, NULL, 'm'},
        {"backlog", required_argument, NULL, 'b'},
        {"workers", required_argument, NULL, 'w'},
        {"pm", required_argument, NULL, 'P'},
        {"min-spare", required_argument, NULL, '1'},
        {"max-spare", required_argument, NULL, '2'},
        {"max-workers", required_argument, NULL, '3'},
        {"threads", required_argument, NULL, 't'},
        {"max-requests", required_argument, NULL, 'r'},
        {"request-timeout", required_argument, NULL, 'T'},
        {"slow-log", required_argument, NULL, 'S'},
        {"shutdown-timeout", required_argument, NULL, 's'},
        {"drain-timeout", required_argument, NULL, 1001},
        {"idle-timeout", required_argument, NULL, 1002},
        {"request-deadline", required_argument, NULL, 1003},
        {"env-file", required_argument, NULL, 'e'},
        {"user", required_argument, NULL, 'u'},
        {"group", required_argument, NULL, 'g'},
        {"pid-file", required_argument, NULL, 'p'},
        {"log-file", required_argument, NULL, 'L'},
        {"foreground", no_argument, NULL, 'f'},
        {"daemon", no_argument, NULL, 'd'},
        {"status-listen", required_argument, NULL, 'A'},
        {"db-wait-tries", required_argument, NULL, 'W'},
        {"db-wait-interval", required_argument, NULL, 'I'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (options){.socket_mode = 0660, .backlog = 1024, .workers = 4, .threads = 4,
                   .shutdown_timeout = 30, .drain_timeout = M8_DRAIN_TIMEOUT_DEFAULT_S,
                   .min_spare = 1, .max_spare = 3, .max_workers = 8,
                   .db_wait_tries = 300, .db_wait_interval = 5};
    int c, idx = 0;
    opterr = 0;
    /* "+": stop at the first non-option, so the service's own options
     * after "--" (or after its path) are never ours. */
    while ((c = getopt_long(argc, argv, "+:", opts, &idx)) != -1) {
        int bad = 0;
        char *end;
        switch (c) {
        case 'l': o->listen = optarg; break;
        case 'O': o->socket_owner = optarg; break;
        case 'G': o->socket_group = optarg; break;
        case 'e': o->env_file = optarg; break;
        case 'u': o->user = optarg; break;
        case 'g': o->group = optarg; break;
        case 'p': o->pid_file = optarg; break;
        case 'L': o->log_file = optarg; break;
        case 'A': o->status_listen = optarg; break;
        case 'f': o->daemonize = false; break;
        case 'd': o->daemonize = true; break;
        case 'm':
            errno = 0;
            o->socket_mode = strtoll(optarg, &end, 8);
            bad = errno || *end || !*optarg || o->socket_mode < 0 || o->socket_mode > 0777;
            break;
        case 'b': bad = m8_parse_ll(optarg, 1, 65535, &o->backlog); break;
        case 'w': bad = m8_parse_ll(optarg, 1, MAX_WORKERS, &o->workers); break;
        case '1': bad = m8_parse_ll(optarg, 0, MAX_WORKERS, &o->min_spare); break;
        case '2': bad = m8_parse_ll(optarg, 1, MAX_WORKERS, &o->max_spare); break;
        case '3': bad = m8_parse_ll(optarg, 1, MAX_WORKERS, &o->max_workers); break;
        case 't':
            bad = m8_parse_ll(optarg, 1, 256, &o->threads);
            o->threads_set = true;
            break;
        case 'r': bad = m8_parse_ll(optarg, 0, INT64_MAX, &o->max_requests); break;
        case 'T': bad = m8_parse_double(optarg, 0, 86400, &o->request_timeout); break;
        case 'S': bad = m8_parse_double(optarg, 0, 86400, &o->slow_log); break;
        case 's': bad = m8_parse_ll(optarg, 0, 3600, &o->shutdown_timeout); break;
        case 1001:
            bad = m8_parse_double(optarg, 0, 86400, &o->drain_timeout);
            o->drain_arg = optarg;
            break;
        case 1002: {
            double v;
            bad = m8_parse_double(optarg, 0.1, 86400, &v);
            o->idle_arg = optarg;
            break;
        }
        case 1003: {
            double v;
            bad = m8_parse_double(optarg, 0.1, 3600, &v);
            o->deadline_arg = optarg;
            break;
        }
        case 'W': bad = m8_parse_ll(optarg, 1, 1000000, &o->db_wait_tries); break;
        case 'I': bad = m8_parse_double(optarg, 0.01, 3600, &o->db_wait_interval); break;
        case 'P':
            o->dynamic = strcmp(optarg, "dynamic") == 0;
            bad = !o->dynamic && strcmp(optarg, "static") != 0;
            break;
        case 'V':
            printf("fcgim8d (fcgi-m8 %s)\n", m8_version());
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        case ':': /* the ":" of "+:": an option without its value */
            fprintf(stderr, "fcgim8d: %s needs a value (see --help)\n", argv[optind - 1]);
            return EX_USAGE_;
        default:
            fprintf(stderr, "fcgim8d: unknown option %s (see --help)\n", argv[optind - 1]);
            return EX_USAGE_;
        }
        if (bad) {
            fprintf(stderr, "fcgim8d: bad value \"%s\" for --%s (see --help)\n", optarg,
                    opts[idx].name);
            return EX_USAGE_;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "fcgim8d: no service given: fcgim8d [options] -- /path/to/service\n");
        return EX_USAGE_;
    }
    o->service_argv = argv + optind;
    if (o->dynamic) {
        if (o->max_spare < o->min_spare || o->max_workers < o->min_spare ||
            o->workers > o->max_workers) {
            fprintf(stderr, "fcgim8d: dynamic pool needs min-spare <= max-spare, "
                            "min-spare <= max-workers and workers <= max-workers\n");
            return EX_USAGE_;
        }
    }
    return 0;
}

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

/* ------------------------------------------------------------ workers */

typedef struct worker {
    pid_t pid;
    int slot;
    uint32_t gen;
    int log_fd;
    char *line;
    size_t line_len;
    double started;
    bool ready;
    bool retiring;       /* SIGTERM or SIGQUIT sent by us */
    bool draining;       /* SIGQUIT: serving its kept connections until they close */
    bool drain_cut;      /* told to stop draining for want of a slot */
    int retire_cause;    /* M8_CTR_RESTART_* */
    double retire_at;    /* when SIGTERM was sent */
    bool killed;         /* SIGKILL sent by us (request timeout or drain limit) */
    uint64_t slow_logged; /* busy_since of the last request reported slow */
} worker;

typedef struct daemon_state {
    options o;
    m8_settings *settings;
    m8_shm *shm;
    int shm_fd;
    int listen_fd;
    char *unix_path;     /* a socket we created (unlinked at exit) */
    worker workers[MAX_WORKERS * 2];
    size_t n_workers;
    uint32_t generation;
    bool reloading;      /* a new generation is starting */
    double reload_started;
    bool stopping;
    double stop_started;
    double t0;
    bool ready_logged;
    /* crash-loop breaker */
    double crash_times[CRASH_LIMIT];
    size_t crash_n;
    double backoff;
    double next_spawn_at;
    double last_scale;
    m8_status_server *status;
    m8_sidecar *sidecar;
} daemon_state;

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
static char **service_args(const options *o, bool check, char *threads_buf, char *st_buf)
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

static void child_reset_signals(void)
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
            _exit(EX_SOFTWARE_);
        if (dup2(pfd[1], 1) < 0 || dup2(pfd[1], 2) < 0)
            _exit(EX_SOFTWARE_);
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
    *w = (worker){.pid = pid, .slot = slot, .gen = gen, .log_fd = pfd[0],
                  .started = m8_now_mono()};
    w->line = malloc(LOG_LINE_MAX + 1);
    return 0;
}

/* Reload and dynamic shrink retire a worker with SIGQUIT: it stops
 * accepting at once and serves the kept connections it has until the web
 * server closes them (--drain-timeout at most), so no request the web
 * server writes on one of them meets a closed socket (fcgim8d(8), "Reload
 * without failed requests").  A stop, or a worker still starting (its
 * handlers may not be installed yet), gets SIGTERM. */
static void retire(daemon_state *d, worker *w, int cause)
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
        bool recycling = !w->retiring &&
                         atomic_load(&d->shm->slots[w->slot].state) == M8_SLOT_RETIRING;
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

/* ------------------------------------------------------------ worker logs */

/* One worker line to our log: our own JSON lines (they carry "pid") pass
 * through; anything else is wrapped as a JSON line tagged with the pid. */
static void emit_line(const worker *w, const char *p, size_t n)
{
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (!n)
        return;
    if (n >= 8 && memcmp(p, "{\"ts\":\"", 7) == 0 && p[n - 1] == '}') {
        char *out = malloc(n + 1);
        if (!out)
            return;
        memcpy(out, p, n);
        out[n] = '\n';
        ssize_t off = 0;
        while ((size_t)off < n + 1) {
            ssize_t k = write(2, out + off, n + 1 - (size_t)off);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            off += k;
        }
        free(out);
        return;
    }
    m8_buf b;
    m8_buf_init(&b, LOG_LINE_MAX * 7 + 64);
    m8_buf_printf(&b, "\"worker_pid\":%ld,\"stream\":\"stderr\",\"line\":", (long)w->pid);
    m8_buf_json_str(&b, p, n);
    m8_log_fields(M8_LOG_WARNING, "worker output", b.data);
    m8_buf_free(&b);
}

/* Reads what a worker wrote; returns false on EOF. */
static bool drain_log(worker *w)
{
    char buf[8192];
    for (;;) {
        ssize_t n = read(w->log_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return true; /* EAGAIN */
        if (n == 0) {
            if (w->line && w->line_len)
                emit_line(w, w->line, w->line_len);
            w->line_len = 0;
            return false;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (!w->line)
                break;
            if (buf[i] == '\n' || w->line_len == LOG_LINE_MAX) {
                emit_line(w, w->line, w->line_len);
                w->line_len = 0;
                if (buf[i] == '\n')
                    continue;
            }
            w->line[w->line_len++] = buf[i];
        }
    }
}

/* ------------------------------------------------------------ reaping */

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

static void reap(daemon_state *d)
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
            int cause = recycled ? M8_CTR_RESTART_MAX_REQUESTS
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

/* ------------------------------------------------------------ settings */

static int load_settings(daemon_state *d, m8_settings **out)
{
    m8_settings_source src = {.env = environ, .env_file = d->o.env_file};
    return m8_settings_load_checked(&src, out);
}

/* Runs `service --check` (the startup validators); returns its status. */
static int run_check(daemon_state *d)
{
    char tb[32], sb[32];
    snprintf(tb, sizeof tb, "%lld", d->o.threads);
    snprintf(sb, sizeof sb, "%lld", d->o.shutdown_timeout);
    char **av = service_args(&d->o, true, tb, sb);
    if (!av)
        return EX_SOFTWARE_;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        free(av);
        return EX_SOFTWARE_;
    }
    pid_t pid = fork();
    if (pid == 0) {
        child_reset_signals();
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close_range(3, ~0U, 0);
        execv(av[0], av);
        static const char msg[] = "fcgim8d: cannot execute the service\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    free(av);
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return EX_SOFTWARE_;
    }
    worker tmp = {.pid = pid, .log_fd = pfd[0], .line = malloc(LOG_LINE_MAX + 1)};
    while (drain_log(&tmp)) {
        struct pollfd p = {.fd = tmp.log_fd, .events = POLLIN};
        poll(&p, 1, 1000);
    }
    free(tmp.line);
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return EX_SOFTWARE_;
}

/* ------------------------------------------------------------ listen socket */

static int take_listen_socket(daemon_state *d)
{
    const options *o = &d->o;
    char err[512] = "";
    const char *lfds = getenv("LISTEN_FDS"), *lpid = getenv("LISTEN_PID");
    long long nfds = 0, pid = 0;
    if (!o->listen && lfds && lpid && m8_parse_ll(lfds, 1, 64, &nfds) == 0 &&
        m8_parse_ll(lpid, 1, INT32_MAX, &pid) == 0 && pid == getpid()) {
        if (!m8_is_listen_socket(3)) {
            m8_log(M8_LOG_CRITICAL, "LISTEN_FDS is set but fd 3 is not a listening socket");
            return -1;
        }
        if (nfds > 1)
            m8_log(M8_LOG_WARNING, "systemd passed %lld sockets; serving the first (fd 3)", nfds);
        fcntl(3, F_SETFD, FD_CLOEXEC);
        d->listen_fd = 3;
        m8_log(M8_LOG_INFO, "listening on the socket passed by systemd (fd 3)");
        return 0;
    }
    if (!o->listen) {
        if (m8_is_listen_socket(0)) {
            d->listen_fd = 0;
            m8_log(M8_LOG_INFO, "listening on the inherited socket (fd 0)");
            return 0;
        }
        m8_log(M8_LOG_CRITICAL, "nothing to listen on: give --listen unix:/path or host:port, "
               "or start under systemd socket activation or spawn-fcgi");
        return -1;
    }
    bool is_unix = strncmp(o->listen, "unix:", 5) == 0;
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    if (is_unix && o->socket_owner) {
        struct passwd *pw = getpwnam(o->socket_owner);
        if (!pw) {
            m8_log(M8_LOG_CRITICAL, "--socket-owner: no user \"%s\"", o->socket_owner);
            return -1;
        }
        uid = pw->pw_uid;
    }
    if (is_unix && o->socket_group) {
        struct group *gr = getgrnam(o->socket_group);
        if (!gr) {
            m8_log(M8_LOG_CRITICAL, "--socket-group: no group \"%s\"", o->socket_group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    /* Owner and mode are set without a call on the path after bind, in a
     * directory only root and the owner may write (m8_listen_unix). */
    int fd = is_unix ? m8_listen_unix(o->listen + 5, (int)o->backlog, (unsigned)o->socket_mode,
                                      uid, gid, err, sizeof err)
                     : m8_listen(o->listen, (int)o->backlog, (unsigned)o->socket_mode, err,
                                 sizeof err);
    if (fd < 0) {
        m8_log(M8_LOG_CRITICAL, "%s", err);
        return -1;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    d->listen_fd = fd;
    if (is_unix) {
        d->unix_path = strdup(o->listen + 5);
        struct stat st;
        if (d->unix_path && lstat(d->unix_path, &st) == 0 && st.st_uid == 0 && st.st_gid == 0 &&
            !(st.st_mode & S_IWOTH)) {
            /* PITFALLS 7: a web server user cannot connect to root:root 0660. */
            m8_log(M8_LOG_WARNING,
                   "the socket %s is owned by root:root (mode %04o): a web server running as "
                   "another user cannot connect; add --socket-group www-data (or chown "
                   "root:www-data %s)",
                   d->unix_path, (unsigned)(st.st_mode & 0777), d->unix_path);
        }
    }
    m8_log(M8_LOG_INFO, "listening on %s", o->listen);
    return 0;
}

/* Accept queue of the listen socket (TCP: TCP_INFO; 0 when unknown). */
/* Accept queue of a unix listening socket: sock_diag's UDIAG_SHOW_RQLEN
 * gives the pending connections (rqueue) of the socket with our inode. */
static int unix_queue(int fd, uint32_t *q)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -1;
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = 1u << 10; /* TCP_LISTEN */
    msg.req.udiag_ino = (uint32_t)st.st_ino;
    msg.req.udiag_show = UDIAG_SHOW_RQLEN;
    msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0u; /* INET_DIAG_NOCOOKIE */
    int rc = -1;
    char buf[1024];
    struct timeval tv = {0, 200 * 1000};
    setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (send(nl, &msg, sizeof msg, 0) == (ssize_t)sizeof msg) {
        ssize_t n = recv(nl, buf, sizeof buf, 0);
        struct nlmsghdr *h = (struct nlmsghdr *)buf;
        if (n > 0 && NLMSG_OK(h, (size_t)n) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
            struct unix_diag_msg *m = NLMSG_DATA(h);
            size_t alen = h->nlmsg_len - NLMSG_LENGTH(sizeof *m);
            for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
                 a = RTA_NEXT(a, alen)) {
                if (a->rta_type == UNIX_DIAG_RQLEN &&
                    RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
                    *q = ((struct unix_diag_rqlen *)RTA_DATA(a))->udiag_rqueue;
                    rc = 0;
                }
            }
        }
    }
    close(nl);
    return rc;
}

/* Accept queue of the listen socket (TCP: TCP_INFO; unix: sock_diag). */
static void sample_listen_queue(daemon_state *d)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    uint32_t q = 0;
    if (getsockopt(d->listen_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
        q = ti.tcpi_unacked; /* for a listener: the accept queue length */
    else if (unix_queue(d->listen_fd, &q) != 0)
        return;
    atomic_store(&d->shm->listen_queue, q);
    if (q > atomic_load(&d->shm->listen_queue_max))
        atomic_store(&d->shm->listen_queue_max, q);
}

static int drop_privileges(const options *o)
{
    if (!o->user && !o->group)
        return 0;
    struct passwd *pw = NULL;
    gid_t gid = getgid();
    if (o->user) {
        pw = getpwnam(o->user);
        if (!pw) {
            m8_log(M8_LOG_CRITICAL, "--user: no user \"%s\"", o->user);
            return -1;
        }
        gid = pw->pw_gid;
    }
    if (o->group) {
        struct group *gr = getgrnam(o->group);
        if (!gr) {
            m8_log(M8_LOG_CRITICAL, "--group: no group \"%s\"", o->group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (setgid(gid) != 0 || (pw ? initgroups(pw->pw_name, gid) : setgroups(0, NULL)) != 0) {
        m8_log(M8_LOG_CRITICAL, "cannot switch to group %ld: %s", (long)gid, strerror(errno));
        return -1;
    }
    if (pw && setuid(pw->pw_uid) != 0) {
        m8_log(M8_LOG_CRITICAL, "cannot switch to user %s: %s", o->user, strerror(errno));
        return -1;
    }
    if (pw && setuid(0) == 0) {
        m8_log(M8_LOG_CRITICAL, "privileges could be regained after dropping them; refusing");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ pool */

static size_t count_gen(const daemon_state *d, uint32_t gen, bool ready_only, size_t *idle)
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

static size_t target_size(const daemon_state *d)
{
    return (size_t)d->o.workers;
}

/* Keeps the current generation at its size (respecting the backoff), and
 * the dynamic pool between its spares. */
static void maintain_pool(daemon_state *d, double now)
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
                        m8_log(M8_LOG_INFO, "dynamic pool: %zu idle > max-spare %lld: retiring "
                               "worker %ld", idle, d->o.max_spare, (long)w->pid);
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

static void check_requests(daemon_state *d, uint64_t now_ns)
{
    for (size_t i = 0; i < d->n_workers; i++) {
        worker *w = &d->workers[i];
        if (w->killed)
            continue;
        m8_shm_slot *s = &d->shm->slots[w->slot];
        uint32_t nt = atomic_load(&s->nthreads);
        for (uint32_t t = 0; t < nt && t < M8_SHM_THREADS; t++) {
            uint64_t since = atomic_load_explicit(&s->threads[t].busy_since_ns,
                                                  memory_order_acquire);
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

/* ------------------------------------------------------------ reload */

static void start_reload(daemon_state *d)
{
    if (d->reloading) {
        m8_log(M8_LOG_WARNING, "SIGHUP: a reload is already in progress; ignored");
        return;
    }
    m8_log(M8_LOG_INFO, "SIGHUP: reloading (env file %s)", d->o.env_file ? d->o.env_file
                                                                         : "(none)");
    m8_settings *ns = NULL;
    if (load_settings(d, &ns) != 0) {
        m8_log(M8_LOG_ERROR, "reload refused: the new settings are invalid (see above); the "
               "running workers keep serving");
        atomic_fetch_add(&d->shm->counters[M8_CTR_RELOADS_FAILED], 1);
        return;
    }
    int rc = run_check(d);
    if (rc != 0) {
        m8_log(M8_LOG_ERROR, "reload refused: `%s --check` exited with %d; the running "
               "workers keep serving", d->o.service_argv[0], rc);
        m8_settings_free(ns);
        atomic_fetch_add(&d->shm->counters[M8_CTR_RELOADS_FAILED], 1);
        return;
    }
    m8_status_set_settings(d->status, ns); /* before the old ones are freed */
    m8_sidecar_stop(d->sidecar);         /* JWKS_URI may have changed */
    m8_settings_free(d->settings);
    d->settings = ns;
    d->sidecar = m8_sidecar_start(d->shm, ns);
    d->generation++;
    atomic_store(&d->shm->generation, d->generation);
    d->reloading = true;
    d->reload_started = m8_now_mono();
    d->backoff = 0;
    d->next_spawn_at = 0;
    m8_log(M8_LOG_INFO, "reload: starting generation %u", d->generation);
}

static void progress_reload(daemon_state *d, double now)
{
    if (!d->reloading)
        return;
    size_t want = d->o.dynamic ? (size_t)(d->o.min_spare > 0 ? d->o.min_spare : 1)
                               : target_size(d);
    size_t ready = count_gen(d, d->generation, true, NULL);
    if (ready >= want) {
        size_t n = 0;
        for (size_t i = 0; i < d->n_workers; i++) {
            if (d->workers[i].gen != d->generation && !d->workers[i].retiring) {
                retire(d, &d->workers[i], M8_CTR_RESTART_RELOAD);
                n++;
            }
        }
        d->reloading = false;
        atomic_fetch_add(&d->shm->counters[M8_CTR_RELOADS_OK], 1);
        m8_log(M8_LOG_INFO, "reload: generation %u ready in %.0f ms; retiring %zu old workers",
               d->generation, (now - d->reload_started) * 1000, n);
        return;
    }
    if (now - d->reload_started > READY_TIMEOUT_S) {
        m8_log(M8_LOG_ERROR, "reload failed: generation %u not ready within %.0f s; keeping "
               "generation %u", d->generation, READY_TIMEOUT_S, d->generation - 1);
        for (size_t i = 0; i < d->n_workers; i++) {
            if (d->workers[i].gen == d->generation)
                retire(d, &d->workers[i], M8_CTR_RESTART_RELOAD);
        }
        d->generation--;
        atomic_store(&d->shm->generation, d->generation);
        d->reloading = false;
        atomic_fetch_add(&d->shm->counters[M8_CTR_RELOADS_FAILED], 1);
    }
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
        exit(EX_SOFTWARE_);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fcgim8d: fork");
        exit(EX_SOFTWARE_);
    }
    if (pid > 0) {
        close(p[1]);
        unsigned char code = EX_SOFTWARE_;
        ssize_t n;
        while ((n = read(p[0], &code, 1)) < 0 && errno == EINTR) {
        }
        _exit(n == 1 ? code : EX_SOFTWARE_);
    }
    close(p[0]);
    daemon_ready_fd = p[1];
    setsid();
    /* The working directory is kept: relative paths on the command line,
     * and the services' .env walk-up (D1), mean the same as in the
     * foreground. */
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 1);
        if (devnull > 2)
            close(devnull);
    }
}

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    dup2(fd, 2);
    close(fd);
    return 0;
}

/* Closes every descriptor above 2 that fcgim8d inherited (a log file a
 * shell script held open, a caller's socket), except the sockets systemd
 * passes to this process (LISTEN_FDS with our LISTEN_PID), which are kept
 * close-on-exec.  Runs first in main, before fcgim8d opens anything. */
static void close_inherited_fds(void)
{
    unsigned keep = 0;
    const char *lfds = getenv("LISTEN_FDS"), *lpid = getenv("LISTEN_PID");
    long long nfds = 0, pid = 0;
    if (lfds && lpid && m8_parse_ll(lfds, 1, 64, &nfds) == 0 &&
        m8_parse_ll(lpid, 1, INT32_MAX, &pid) == 0 && pid == getpid())
        keep = (unsigned)nfds;
    for (unsigned i = 0; i < keep; i++)
        fcntl(3 + (int)i, F_SETFD, FD_CLOEXEC);
    if (close_range(3 + keep, ~0U, 0) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536)
            max = 65536;
        for (long fd = 3 + (long)keep; fd < max; fd++)
            close((int)fd);
    }
}

static bool pid_file_written; /* boot_fail removes only our own pid file */

/* Written to a new file of a unique name in the same directory (mkstemp:
 * O_EXCL, so a symlink or file planted under a predictable name is never
 * followed or truncated), then renamed over path (rename replaces a
 * symlink at path itself, never its target). */
static int write_pid_file(const char *path)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    bool ok = fchmod(fd, 0644) == 0 && write(fd, buf, (size_t)n) == n;
    int saved = errno;
    ok &= close(fd) == 0;
    if (!ok || rename(tmp, path) != 0) {
        saved = ok ? errno : saved;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    pid_file_written = true;
    return 0;
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

static void wait_any(daemon_state *d, int timeout_ms)
{
    size_t n = d->n_workers;
    struct pollfd *p = calloc(n + 1, sizeof *p);
    if (!p) {
        poll(NULL, 0, timeout_ms);
        return;
    }
    p[0] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
    for (size_t i = 0; i < n; i++)
        p[i + 1] = (struct pollfd){.fd = d->workers[i].log_fd, .events = POLLIN};
    int r = poll(p, n + 1, timeout_ms);
    if (r > 0) {
        for (size_t i = 0; i < n; i++) {
            if (p[i + 1].revents)
                drain_log(&d->workers[i]);
        }
    }
    free(p);
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
        fprintf(stderr, "fcgim8d: cannot open --log-file %s: %s\n", d.o.log_file,
                strerror(errno));
        return EX_USAGE_;
    }
    if (d.o.daemonize)
        become_daemon();
    if (install_signals() != 0) {
        m8_log(M8_LOG_CRITICAL, "cannot install signal handlers: %s", strerror(errno));
        return boot_fail(&d, EX_SOFTWARE_);
    }
    m8_log(M8_LOG_INFO, "fcgim8d %s starting: %s", m8_version(), d.o.service_argv[0]);

    /* 1. settings and config health */
    if (load_settings(&d, &d.settings) != 0)
        return boot_fail(&d, EX_CONFIG_);
    char serr[512] = "";
    if (d.o.status_listen &&
        m8_status_check_listen(d.o.status_listen, d.settings, serr, sizeof serr) != 0) {
        m8_log(M8_LOG_CRITICAL, "--status-listen: %s", serr);
        return boot_fail(&d, EX_CONFIG_);
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
            return boot_fail(&d, EX_CONFIG_);
        }
        if (rc != 0) {
            m8_log(M8_LOG_CRITICAL, "%s: not starting", g_stop_requested
                   ? "stopped while waiting for the database" : "the database did not answer");
            return boot_fail(&d, g_stop_requested ? 0 : EX_SOFTWARE_);
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
        return boot_fail(&d, EX_SOFTWARE_);
    }
    fcntl(d.shm_fd, F_SETFD, FD_CLOEXEC); /* cleared in each worker before exec */
    if (take_listen_socket(&d) != 0)
        return boot_fail(&d, EX_SOFTWARE_);
    if (d.o.status_listen) {
        d.status = m8_status_start(d.o.status_listen, d.shm, d.settings, err, sizeof err);
        if (!d.status) {
            m8_log(M8_LOG_CRITICAL, "--status-listen: %s", err);
            return boot_fail(&d, EX_SOFTWARE_);
        }
    }
    if (d.o.pid_file && write_pid_file(d.o.pid_file) != 0) {
        m8_log(M8_LOG_CRITICAL, "cannot write --pid-file %s: %s", d.o.pid_file, strerror(errno));
        return boot_fail(&d, EX_SOFTWARE_);
    }
    if (drop_privileges(&d.o) != 0)
        return boot_fail(&d, EX_SOFTWARE_);
    d.sidecar = m8_sidecar_start(d.shm, d.settings); /* before any worker starts */

    /* 4. startup validators, fail closed */
    rc = run_check(&d);
    if (rc != 0) {
        m8_log(M8_LOG_CRITICAL, "`%s --check` (startup validators) exited with %d: not starting",
               d.o.service_argv[0], rc);
        return boot_fail(&d, EX_CONFIG_);
    }

    /* 5. workers, then ready once every first worker is */
    d.generation = 1;
    atomic_store(&d.shm->generation, 1);
    bool ready = false;
    int exit_code = 0;
    double last_sample = 0;
    for (;;) {
        double now = m8_now_mono();
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
                double limit = (double)d.o.shutdown_timeout + 1 +
                               (w->draining ? d.o.drain_timeout + 4 : 0);
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
                    exit_code = EX_SOFTWARE_;
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
        wait_any(&d, TICK_MS);
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
    notify_parent((unsigned char)(exit_code ? exit_code : EX_SOFTWARE_));
    m8_shm_unmap(d.shm);
    m8_settings_free(d.settings);
    return exit_code;
}
