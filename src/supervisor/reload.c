/* reload.c - settings and the service's `--check` (at boot and on SIGHUP),
 * and reload generations: a new generation starts, and the old one is
 * retired only once the new one is ready (fcgim8d(8)). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/confighealth.h"
#include "fcgim8d.h"

/* Whether the service is fcgim8-issuer, whose settings include its own
 * (doc/issuer.md#settings): a consumer's loader refuses them. */
static bool service_is_issuer(const daemon_state *d)
{
    const char *prog = d->o.service_argv ? d->o.service_argv[0] : NULL;
    if (!prog)
        return false;
    const char *base = strrchr(prog, '/');
    base = base ? base + 1 : prog;
    if (strncmp(base, "lt-", 3) == 0) /* a libtool wrapper's program */
        base += 3;
    return strcmp(base, "fcgim8-issuer") == 0;
}

int load_settings(daemon_state *d, m8_settings **out)
{
    m8_settings_source src = {
        .env = environ, .env_file = d->o.env_file, .issuer = service_is_issuer(d)};
    return m8_settings_load_checked(&src, out);
}

/* Runs `service --check` (the startup validators); returns its status. */
int run_check(daemon_state *d)
{
    char tb[32], sb[32];
    snprintf(tb, sizeof tb, "%lld", d->o.threads);
    snprintf(sb, sizeof sb, "%lld", d->o.shutdown_timeout);
    char **av = service_args(&d->o, true, tb, sb);
    if (!av)
        return M8_EX_SOFTWARE;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        free(av);
        return M8_EX_SOFTWARE;
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
        return M8_EX_SOFTWARE;
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
    return M8_EX_SOFTWARE;
}

void start_reload(daemon_state *d)
{
    if (d->reloading) {
        m8_log(M8_LOG_WARNING, "SIGHUP: a reload is already in progress; ignored");
        return;
    }
    m8_log(M8_LOG_INFO, "SIGHUP: reloading (env file %s)",
           d->o.env_file ? d->o.env_file : "(none)");
    m8_settings *ns = NULL;
    if (load_settings(d, &ns) != 0) {
        m8_log(M8_LOG_ERROR, "reload refused: the new settings are invalid (see above); the "
                             "running workers keep serving");
        atomic_fetch_add(&d->shm->counters[M8_CTR_RELOADS_FAILED], 1);
        return;
    }
    int rc = run_check(d);
    if (rc != 0) {
        m8_log(M8_LOG_ERROR,
               "reload refused: `%s --check` exited with %d; the running "
               "workers keep serving",
               d->o.service_argv[0], rc);
        m8_settings_free(ns);
        atomic_fetch_add(&d->shm->counters[M8_CTR_RELOADS_FAILED], 1);
        return;
    }
    m8_status_set_settings(d->status, ns); /* before the old ones are freed */
    m8_sidecar_stop(d->sidecar);           /* JWKS_URI may have changed */
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

void progress_reload(daemon_state *d, double now)
{
    if (!d->reloading)
        return;
    size_t want = d->o.dynamic ? (size_t)(d->o.min_spare > 0 ? d->o.min_spare : 1) : target_size(d);
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
        m8_log(M8_LOG_ERROR,
               "reload failed: generation %u not ready within %.0f s; keeping "
               "generation %u",
               d->generation, READY_TIMEOUT_S, d->generation - 1);
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
