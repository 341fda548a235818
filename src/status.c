/* status.c - fcgim8d's status endpoint (see status.h). */
#define _GNU_SOURCE
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "server.h"

#define STATUS_REQ_MAX 8192u       /* a request head */
#define STATUS_IO_TIMEOUT_MS 2000  /* per client */
#define STATUS_BODY_MAX (8u << 20) /* a rendered answer */

struct m8_status_server {
    int fd;
    int stop_pipe[2];
    char *unix_path;
    m8_shm *shm;
    const m8_settings *settings;
    pthread_mutex_t lock; /* guards settings */
    pthread_t thread;
};

static const char *state_name(uint32_t st)
{
    switch (st) {
    case M8_SLOT_STARTING: return "starting";
    case M8_SLOT_READY: return "ready";
    case M8_SLOT_RETIRING: return "retiring";
    default: return "free";
    }
}

int m8_status_render(const m8_shm *shm, m8_buf *out)
{
    static const char *causes[] = {"crash", "max_requests", "request_timeout", "reload",
                                   "scale_down"};
    uint64_t now = m8_mono_ns();
    size_t total = 0, busy = 0, idle = 0, starting = 0, retiring = 0, threads_busy = 0;
    uint64_t requests = 0;
    m8_buf w;
    m8_buf_init(&w, STATUS_BODY_MAX);
    bool first = true;
    for (uint32_t i = 0; i < shm->nslots; i++) {
        const m8_shm_slot *s = &shm->slots[i];
        int32_t pid = atomic_load(&s->pid);
        uint32_t st = atomic_load(&s->state);
        if (!pid || st == M8_SLOT_FREE)
            continue;
        total++;
        starting += st == M8_SLOT_STARTING;
        retiring += st == M8_SLOT_RETIRING;
        uint64_t started = atomic_load(&s->started_ns);
        uint64_t req = atomic_load(&s->requests);
        requests += req;
        m8_buf_printf(&w, "%s{\"pid\":%ld,\"slot\":%u,\"generation\":%u,\"state\":\"%s\","
                      "\"requests\":%llu,\"age_seconds\":%.3f,\"busy\":[",
                      first ? "" : ",", (long)pid, i, atomic_load(&s->generation),
                      state_name(st), (unsigned long long)req,
                      started && now > started ? (double)(now - started) / 1e9 : 0.0);
        first = false;
        size_t nb = 0;
        uint32_t nt = atomic_load(&s->nthreads);
        for (uint32_t t = 0; t < nt && t < M8_SHM_THREADS; t++) {
            uint64_t since = atomic_load_explicit(&s->threads[t].busy_since_ns,
                                                  memory_order_acquire);
            if (!since)
                continue;
            char what[M8_SHM_WHAT_BYTES];
            memcpy(what, s->threads[t].what, sizeof what);
            what[sizeof what - 1] = '\0';
            m8_buf_puts(&w, nb ? ",{\"request\":" : "{\"request\":");
            m8_buf_json_str(&w, what, strlen(what));
            m8_buf_printf(&w, ",\"seconds\":%.3f}",
                          now > since ? (double)(now - since) / 1e9 : 0.0);
            nb++;
        }
        m8_buf_puts(&w, "]}");
        threads_busy += nb;
        if (st == M8_SLOT_READY && nb)
            busy++;
        else if (st == M8_SLOT_READY)
            idle++;
    }
    m8_buf_printf(out, "{\"pool\":{\"supervisor_pid\":%ld,\"ready\":%s,\"generation\":%u,"
                  "\"workers_target\":%u,\"workers\":{\"total\":%zu,\"busy\":%zu,\"idle\":%zu,"
                  "\"starting\":%zu,\"retiring\":%zu},\"threads_busy\":%zu,"
                  "\"requests\":%llu,\"listen_queue\":%u,\"listen_queue_max\":%u,"
                  "\"restarts\":{",
                  (long)atomic_load(&shm->daemon_pid), atomic_load(&shm->ready) ? "true" : "false",
                  atomic_load(&shm->generation), atomic_load(&shm->workers_target), total, busy,
                  idle, starting, retiring, threads_busy, (unsigned long long)requests,
                  atomic_load(&shm->listen_queue), atomic_load(&shm->listen_queue_max));
    for (size_t i = 0; i < M8_ARRAY_LEN(causes); i++)
        m8_buf_printf(out, "%s\"%s\":%llu", i ? "," : "", causes[i],
                      (unsigned long long)atomic_load(&shm->counters[i]));
    m8_buf_printf(out, "},\"slow_requests\":%llu,\"reloads\":{\"ok\":%llu,\"failed\":%llu}},"
                  "\"workers\":[",
                  (unsigned long long)atomic_load(&shm->counters[M8_CTR_SLOW_REQUESTS]),
                  (unsigned long long)atomic_load(&shm->counters[M8_CTR_RELOADS_OK]),
                  (unsigned long long)atomic_load(&shm->counters[M8_CTR_RELOADS_FAILED]));
    if (w.data)
        m8_buf_append(out, w.data, w.len);
    m8_buf_free(&w);
    return m8_buf_puts(out, "]}\n");
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, STATUS_IO_TIMEOUT_MS) <= 0)
            return;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void answer(int fd, int code, const char *reason, const char *ctype, const char *extra,
                   const char *body, size_t len, bool head)
{
    char h[512];
    int n = snprintf(h, sizeof h,
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                     code, reason, ctype, len, extra ? extra : "");
    send_all(fd, h, (size_t)n);
    if (!head)
        send_all(fd, body, len);
}

/* Value of header name in the request head (NUL-terminated), or NULL. */
static const char *header(char *head, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        char *l = line + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            const char *end = strstr(v, "\r\n");
            size_t len = m8_trim(&v, end ? (size_t)(end - v) : strlen(v));
            if (len >= outlen)
                return NULL; /* longer than any credential we accept */
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

static void serve_client(m8_status_server *st, int fd)
{
    char head[STATUS_REQ_MAX + 1];
    size_t len = 0;
    while (len < STATUS_REQ_MAX) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, STATUS_IO_TIMEOUT_MS) <= 0)
            return;
        ssize_t n = recv(fd, head + len, STATUS_REQ_MAX - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        len += (size_t)n;
        head[len] = '\0';
        if (strstr(head, "\r\n\r\n") || strstr(head, "\n\n"))
            break;
    }
    head[len] = '\0';
    const char *json = "application/json";
    char method[8] = "", target[1024] = "";
    if (sscanf(head, "%7s %1023s", method, target) != 2) {
        answer(fd, 400, "Bad Request", json, NULL, "{\"detail\":\"Bad Request\"}\n", 25, false);
        return;
    }
    bool is_head = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !is_head) {
        answer(fd, 405, "Method Not Allowed", json, "Allow: GET, HEAD\r\n",
               "{\"detail\":\"Method Not Allowed\"}\n", 32, false);
        return;
    }
    char *q = strchr(target, '?');
    if (q)
        *q = '\0';
    m8_buf body;
    m8_buf_init(&body, STATUS_BODY_MAX);
    pthread_mutex_lock(&st->lock);
    const m8_settings *s = st->settings;
    char metrics_path[512];
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics", s->api_prefix);
    if (strcmp(target, "/status") == 0) {
        pthread_mutex_unlock(&st->lock);
        m8_status_render(st->shm, &body);
        answer(fd, 200, "OK", json, NULL, body.data ? body.data : "", body.len, is_head);
    } else if (strcmp(target, "/metrics") == 0 || strcmp(target, metrics_path) == 0) {
        char auth[1024];
        const char *a = header(head, "Authorization", auth, sizeof auth);
        if (!s->metrics_enabled) {
            pthread_mutex_unlock(&st->lock);
            answer(fd, 404, "Not Found", json, NULL, "{\"detail\":\"Not Found\"}\n", 23, is_head);
        } else if (m8_metrics_check_scrape(s, a) != 0) {
            pthread_mutex_unlock(&st->lock);
            answer(fd, 401, "Unauthorized", json, "WWW-Authenticate: Bearer\r\n",
                   "{\"detail\":\"Unauthorized\"}\n", 26, is_head);
        } else {
            int rc = m8_metrics_render(st->shm, s, &body);
            pthread_mutex_unlock(&st->lock);
            if (rc == 0)
                answer(fd, 200, "OK", M8_METRICS_CONTENT_TYPE, NULL, body.data ? body.data : "",
                       body.len, is_head);
            else
                answer(fd, 500, "Internal Server Error", json, NULL,
                       "{\"detail\":\"Internal Server Error\"}\n", 34, is_head);
        }
    } else {
        pthread_mutex_unlock(&st->lock);
        answer(fd, 404, "Not Found", json, NULL, "{\"detail\":\"Not Found\"}\n", 23, is_head);
    }
    m8_buf_free(&body);
}

static void *status_main(void *arg)
{
    m8_status_server *st = arg;
    for (;;) {
        struct pollfd pf[2] = {{.fd = st->fd, .events = POLLIN},
                               {.fd = st->stop_pipe[0], .events = POLLIN}};
        int r = poll(pf, 2, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || pf[1].revents)
            break;
        int c = accept4(st->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        serve_client(st, c);
        close(c);
    }
    return NULL;
}

m8_status_server *m8_status_start(const char *addr, m8_shm *shm, const m8_settings *s,
                                  char *err, size_t errlen)
{
    m8_status_server *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    st->fd = m8_listen(addr, 64, 0660, err, errlen);
    if (st->fd < 0) {
        free(st);
        return NULL;
    }
    fcntl(st->fd, F_SETFD, FD_CLOEXEC);
    fcntl(st->fd, F_SETFL, O_NONBLOCK);
    if (strncmp(addr, "unix:", 5) == 0)
        st->unix_path = strdup(addr + 5);
    st->shm = shm;
    st->settings = s;
    pthread_mutex_init(&st->lock, NULL);
    if (pipe2(st->stop_pipe, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        close(st->fd);
        free(st->unix_path);
        free(st);
        return NULL;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* signals go to the main thread */
    int rc = pthread_create(&st->thread, NULL, status_main, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the status thread");
        close(st->fd);
        close(st->stop_pipe[0]);
        close(st->stop_pipe[1]);
        free(st->unix_path);
        free(st);
        return NULL;
    }
    m8_log(M8_LOG_INFO, "status and metrics on %s (GET /status, GET /metrics)", addr);
    return st;
}

void m8_status_set_settings(m8_status_server *st, const m8_settings *s)
{
    if (!st)
        return;
    pthread_mutex_lock(&st->lock);
    st->settings = s;
    pthread_mutex_unlock(&st->lock);
}

void m8_status_stop(m8_status_server *st)
{
    if (!st)
        return;
    ssize_t w = write(st->stop_pipe[1], "x", 1);
    (void)w;
    pthread_join(st->thread, NULL);
    close(st->fd);
    close(st->stop_pipe[0]);
    close(st->stop_pipe[1]);
    if (st->unix_path) {
        unlink(st->unix_path);
        free(st->unix_path);
    }
    pthread_mutex_destroy(&st->lock);
    free(st);
}
