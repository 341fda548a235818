/* fcgim8d.h - what the files of fcgim8d share: the daemon's state (its
 * options, its workers), its limits, and the functions one file calls in
 * another.  Internal to fcgim8d; never installed. */
#ifndef FCGIM8D_H
#define FCGIM8D_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "config/settings.h"
#include "core/exitcodes.h"
#include "core/log.h"
#include "shm/shm.h"
#include "sidecar.h"
#include "status.h"

#define MAX_WORKERS 128      /* --workers / --max-workers ceiling */
#define LOG_LINE_MAX 16384u  /* a worker's log line; longer ones are split */
#define TICK_MS 100          /* supervision period */
#define LOG_GATHER_MS 5      /* steady and busy: log pipes read at most this often */
#define CRASH_LIMIT 5        /* abnormal exits ... */
#define CRASH_WINDOW_S 10.0  /* ... within this many seconds = a crash loop */
#define BACKOFF_MAX_S 5.0    /* longest pause between respawns */
#define READY_TIMEOUT_S 60.0 /* a new worker must be ready within this */
#define DRAIN_SLOTS 64       /* extra slots for workers draining kept connections */

extern char **environ;

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

typedef struct worker {
    pid_t pid;
    int slot;
    uint32_t gen;
    int log_fd;
    size_t log_pipe_size; /* what its log pipe holds (F_GETPIPE_SZ) */
    char *line;
    size_t line_len;
    double started;
    bool ready;
    bool retiring;        /* SIGTERM or SIGQUIT sent by us */
    bool draining;        /* SIGQUIT: serving its kept connections until they close */
    bool drain_cut;       /* told to stop draining for want of a slot */
    int retire_cause;     /* M8_CTR_RESTART_* */
    double retire_at;     /* when SIGTERM was sent */
    bool killed;          /* SIGKILL sent by us (request timeout or drain limit) */
    uint64_t slow_logged; /* busy_since of the last request reported slow */
} worker;

typedef struct daemon_state {
    options o;
    m8_settings *settings;
    m8_shm *shm;
    int shm_fd;
    int listen_fd;
    char *unix_path; /* a socket we created (unlinked at exit) */
    worker workers[MAX_WORKERS * 2];
    size_t n_workers;
    uint32_t generation;
    bool reloading; /* a new generation is starting */
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

/* options.c */
int parse_options(int argc, char **argv, options *o);

/* sockets.c */
extern bool pid_file_written; /* boot_fail removes only our own pid file */
int take_listen_socket(daemon_state *d);
void sample_listen_queue(daemon_state *d);
int drop_privileges(const options *o);
void close_inherited_fds(void);
int write_pid_file(const char *path);

/* logs.c */
bool drain_log(worker *w);
/* The same, leaving the lines to the caller's out_flush() (one write for
 * several workers' lines), and saying in *got how many bytes it read;
 * out_flush writes what is held. */
bool drain_log_held(worker *w, size_t *got);
void out_flush(void);
int open_log(const char *path);

/* pool.c */
char **service_args(const options *o, bool check, char *threads_buf, char *st_buf);
void child_reset_signals(void);
void retire(daemon_state *d, worker *w, int cause);
void reap(daemon_state *d);
size_t count_gen(const daemon_state *d, uint32_t gen, bool ready_only, size_t *idle);
size_t target_size(const daemon_state *d);
void maintain_pool(daemon_state *d, double now);
void check_requests(daemon_state *d, uint64_t now_ns);

/* reload.c */
int load_settings(daemon_state *d, m8_settings **out);
int run_check(daemon_state *d);
void start_reload(daemon_state *d);
void progress_reload(daemon_state *d, double now);

#endif
