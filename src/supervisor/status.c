/* status.c - fcgim8d's status endpoint (see status.h). */
#define _GNU_SOURCE
#include "status.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/server.h"
#include "builtin/metrics.h"
#include "core/log.h"
#include "core/thread.h"

#define STATUS_REQ_MAX 8192u       /* a request head */
#define STATUS_BODY_MAX (8u << 20) /* a rendered answer */
/* Clients are served side by side by one poll loop: a slow client never
 * holds up another.  Each has a total deadline for its request head and
 * one for its answer, and past STATUS_MAX_CLIENTS the oldest is dropped. */
#define STATUS_MAX_CLIENTS 32u
#define STATUS_HEAD_DEADLINE_MS 3000u  /* the whole request head, from accept */
#define STATUS_SEND_DEADLINE_MS 10000u /* the whole answer */

typedef struct status_client {
    int fd; /* -1: unused */
    uint64_t since_ns, deadline_ns;
    size_t len; /* bytes of head */
    char head[STATUS_REQ_MAX + 1];
    m8_buf out; /* the answer, while sending */
    size_t sent;
    bool sending;
} status_client;

struct m8_status_server {
    int fd;
    int stop_pipe[2];
    char *unix_path;
    bool public_addr; /* a TCP address other than loopback */
    m8_shm *shm;
    const m8_settings *settings;
    pthread_mutex_t lock; /* guards settings */
    pthread_t thread;
    status_client clients[STATUS_MAX_CLIENTS];
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
    uint32_t nslots = m8_shm_nslots(shm); /* process-local: the segment's own can lie */
    for (uint32_t i = 0; i < nslots; i++) {
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
        m8_buf_printf(&w,
                      "%s{\"pid\":%ld,\"slot\":%u,\"generation\":%u,\"state\":\"%s\","
                      "\"requests\":%llu,\"age_seconds\":%.3f,\"busy\":[",
                      first ? "" : ",", (long)pid, i, atomic_load(&s->generation), state_name(st),
                      (unsigned long long)req,
                      started && now > started ? (double)(now - started) / 1e9 : 0.0);
        first = false;
        size_t nb = 0;
        uint32_t nt = atomic_load(&s->nthreads);
        for (uint32_t t = 0; t < nt && t < M8_SHM_THREADS; t++) {
            uint64_t since =
                atomic_load_explicit(&s->threads[t].busy_since_ns, memory_order_acquire);
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
    m8_buf_printf(out,
                  "{\"pool\":{\"supervisor_pid\":%ld,\"ready\":%s,\"generation\":%u,"
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
    m8_buf_printf(out,
                  "},\"slow_requests\":%llu,\"reloads\":{\"ok\":%llu,\"failed\":%llu}},"
                  "\"workers\":[",
                  (unsigned long long)atomic_load(&shm->counters[M8_CTR_SLOW_REQUESTS]),
                  (unsigned long long)atomic_load(&shm->counters[M8_CTR_RELOADS_OK]),
                  (unsigned long long)atomic_load(&shm->counters[M8_CTR_RELOADS_FAILED]));
    if (w.data)
        m8_buf_append(out, w.data, w.len);
    m8_buf_free(&w);
    return m8_buf_puts(out, "]}\n");
}

/* An answer into c->out (the head, then the body unless head_only). */
static void answer(status_client *c, int code, const char *reason, const char *ctype,
                   const char *extra, const char *body, size_t len, bool head_only)
{
    m8_buf_reset(&c->out);
    m8_buf_printf(&c->out,
                  "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                  code, reason, ctype, len, extra ? extra : "");
    if (!head_only && len)
        m8_buf_append(&c->out, body, len);
}

static void answer_json(status_client *c, int code, const char *reason, const char *extra,
                        bool head_only)
{
    char body[128];
    int n = snprintf(body, sizeof body, "{\"detail\":\"%s\"}\n", reason);
    answer(c, code, reason, "application/json", extra, body, (size_t)n, head_only);
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

static bool has_credential(const m8_settings *s)
{
    return s && s->metrics_scrape_credential && s->metrics_scrape_credential[0];
}

/* Builds the answer to the request head of c into c->out. */
static void handle(m8_status_server *st, status_client *c)
{
    char *head = c->head;
    char method[8] = "", target[1024] = "";
    if (sscanf(head, "%7s %1023s", method, target) != 2) {
        answer_json(c, 400, "Bad Request", NULL, false);
        return;
    }
    bool is_head = strcmp(method, "HEAD") == 0;
    if (strcmp(method, "GET") != 0 && !is_head) {
        answer_json(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n", false);
        return;
    }
    char *q = strchr(target, '?');
    if (q)
        *q = '\0';
    m8_buf body;
    m8_buf_init(&body, STATUS_BODY_MAX);
    char auth[1024];
    const char *a = header(head, "Authorization", auth, sizeof auth);
    pthread_mutex_lock(&st->lock);
    const m8_settings *s = st->settings;
    char metrics_path[512];
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics", s->api_prefix);
    bool is_status = strcmp(target, "/status") == 0;
    bool is_metrics = strcmp(target, "/metrics") == 0 || strcmp(target, metrics_path) == 0;
    if (!is_status && !is_metrics) {
        pthread_mutex_unlock(&st->lock);
        answer_json(c, 404, "Not Found", NULL, is_head);
    } else if (st->public_addr && !has_credential(s)) {
        /* fcgim8d refuses to boot so; a reload that dropped the credential
         * closes the endpoint instead of opening it to the network. */
        pthread_mutex_unlock(&st->lock);
        answer_json(c, 403, "Forbidden", NULL, is_head);
    } else if (m8_metrics_check_scrape(s, a) != 0) {
        /* /status shows the same pool as /metrics: the same credential */
        pthread_mutex_unlock(&st->lock);
        answer_json(c, 401, "Unauthorized", "WWW-Authenticate: Bearer\r\n", is_head);
    } else if (is_status) {
        pthread_mutex_unlock(&st->lock);
        m8_status_render(st->shm, &body);
        answer(c, 200, "OK", "application/json", NULL, body.data ? body.data : "", body.len,
               is_head);
    } else if (!s->metrics_enabled) {
        pthread_mutex_unlock(&st->lock);
        answer_json(c, 404, "Not Found", NULL, is_head);
    } else {
        int rc = m8_metrics_render(st->shm, s, &body);
        pthread_mutex_unlock(&st->lock);
        if (rc == 0)
            answer(c, 200, "OK", M8_METRICS_CONTENT_TYPE, NULL, body.data ? body.data : "",
                   body.len, is_head);
        else
            answer_json(c, 500, "Internal Server Error", NULL, is_head);
    }
    sodium_memzero(auth, sizeof auth);
    m8_buf_free(&body);
}

static void client_close(status_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    sodium_memzero(c->head, c->len); /* it may hold the scrape credential */
    c->len = 0;
    c->sent = 0;
    c->sending = false;
    m8_buf_free(&c->out);
}

static void client_open(m8_status_server *st, int fd, uint64_t now)
{
    status_client *slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < STATUS_MAX_CLIENTS; i++) {
        status_client *c = &st->clients[i];
        if (c->fd < 0) {
            slot = c;
            break;
        }
        if (!oldest || c->since_ns < oldest->since_ns)
            oldest = c;
    }
    if (!slot) {
        client_close(oldest); /* full: the longest-connected client goes */
        slot = oldest;
    }
    slot->fd = fd;
    slot->since_ns = now;
    slot->deadline_ns = now + (uint64_t)STATUS_HEAD_DEADLINE_MS * 1000000u;
    slot->len = 0;
    slot->sent = 0;
    slot->sending = false;
    m8_buf_init(&slot->out, STATUS_BODY_MAX + 1024);
}

/* Sends what the socket takes; closes the client when all is sent. */
static void client_send(status_client *c)
{
    while (c->sent < c->out.len) {
        size_t left = c->out.len - c->sent;
        ssize_t w = send(c->fd, c->out.data + c->sent, left, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0)
            break;
        c->sent += (size_t)w;
    }
    client_close(c);
}

static void client_read(m8_status_server *st, status_client *c, uint64_t now)
{
    for (;;) {
        if (c->len >= STATUS_REQ_MAX) {
            answer_json(c, 431, "Request Header Fields Too Large", NULL, false);
            break;
        }
        ssize_t n = recv(c->fd, c->head + c->len, STATUS_REQ_MAX - c->len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            client_close(c);
            return;
        }
        c->len += (size_t)n;
        c->head[c->len] = '\0';
        if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n")) {
            handle(st, c);
            break;
        }
    }
    shutdown(c->fd, SHUT_RD);
    c->sending = true;
    c->deadline_ns = now + (uint64_t)STATUS_SEND_DEADLINE_MS * 1000000u;
    client_send(c);
}

static void *status_main(void *arg)
{
    m8_status_server *st = arg;
    struct pollfd pf[2 + STATUS_MAX_CLIENTS];
    status_client *who[2 + STATUS_MAX_CLIENTS];
    for (;;) {
        uint64_t now = m8_mono_ns();
        int timeout = -1;
        nfds_t n = 0;
        pf[n++] = (struct pollfd){.fd = st->fd, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = st->stop_pipe[0], .events = POLLIN};
        for (size_t i = 0; i < STATUS_MAX_CLIENTS; i++) {
            status_client *c = &st->clients[i];
            if (c->fd < 0)
                continue;
            if (now >= c->deadline_ns) {
                client_close(c); /* too slow: a dribbling client is cut here */
                continue;
            }
            uint64_t left_ms = (c->deadline_ns - now) / 1000000u + 1;
            if (timeout < 0 || left_ms < (uint64_t)timeout)
                timeout = (int)left_ms;
            who[n] = c;
            pf[n++] = (struct pollfd){.fd = c->fd, .events = c->sending ? POLLOUT : POLLIN};
        }
        int r = poll(pf, n, timeout);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || pf[1].revents)
            break;
        now = m8_mono_ns();
        for (nfds_t i = 2; i < n; i++) {
            if (!pf[i].revents || who[i]->fd != pf[i].fd)
                continue;
            if (who[i]->sending)
                client_send(who[i]);
            else
                client_read(st, who[i], now);
        }
        if (pf[0].revents) {
            /* a few per round, so a flood of connections cannot starve the others */
            for (int k = 0; k < 8; k++) {
                int c = accept4(st->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (c < 0) {
                    if (errno == EMFILE || errno == ENFILE)
                        poll(NULL, 0, 10); /* no descriptor: let the backlog wait */
                    break;
                }
                client_open(st, c, now);
            }
        }
    }
    for (size_t i = 0; i < STATUS_MAX_CLIENTS; i++)
        client_close(&st->clients[i]);
    return NULL;
}

static bool sockaddr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_UNIX)
        return true;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

int m8_status_check_listen(const char *addr, const m8_settings *s, char *err, size_t errlen)
{
    if (!addr || strncmp(addr, "unix:", 5) == 0 || has_credential(s))
        return 0;
    char host[256];
    const char *port;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof host)
            return 0; /* m8_listen says what is wrong with it */
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon || (size_t)(colon - addr) >= sizeof host)
            return 0;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = colon + 1;
    }
    long long pnum;
    if (m8_parse_ll(port, 1, 65535, &pnum) != 0)
        return 0;
    bool local = host[0] != '\0'; /* "" binds every address */
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (local && getaddrinfo(host, port, &hints, &res) == 0) {
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
            local &= sockaddr_is_loopback(ai->ai_addr);
        freeaddrinfo(res);
    }
    if (local)
        return 0;
    snprintf(err, errlen,
             "%s is not a loopback address and METRICS_SCRAPE_CREDENTIAL is not set: refused "
             "(anyone who reaches it would read the pool's status and metrics); listen on "
             "127.0.0.1, [::1] or a unix socket, or set the credential",
             addr);
    return M8_ECONFIG;
}

m8_status_server *m8_status_start(const char *addr, m8_shm *shm, const m8_settings *s, char *err,
                                  size_t errlen)
{
    m8_status_server *st = calloc(1, sizeof *st);
    if (!st) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < STATUS_MAX_CLIENTS; i++)
        st->clients[i].fd = -1;
    st->fd = m8_listen(addr, 64, 0660, err, errlen);
    if (st->fd < 0) {
        free(st);
        return NULL;
    }
    fcntl(st->fd, F_SETFD, FD_CLOEXEC);
    fcntl(st->fd, F_SETFL, O_NONBLOCK);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (getsockname(st->fd, (struct sockaddr *)&ss, &sl) != 0 ||
        !sockaddr_is_loopback((const struct sockaddr *)&ss))
        st->public_addr = true; /* what was bound, whatever the name resolved to */
    if (st->public_addr && !has_credential(s)) {
        snprintf(err, errlen,
                 "%s is not a loopback address and METRICS_SCRAPE_CREDENTIAL is not set: refused",
                 addr);
        close(st->fd);
        free(st);
        return NULL;
    }
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
    int rc = m8_thread_start(&st->thread, NULL, status_main, st);
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
