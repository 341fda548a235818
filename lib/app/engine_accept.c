/* engine_accept.c - the epoll engine's accepting of connections (one per
 * wake-up under fcgim8d, a pause after EMFILE-like errors) and the sweep of
 * the connections past their deadline (engine_epoll_int.h).
 * doc/design.md#serving-loop */
#include "app/engine_epoll_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shm/shm.h"

/* accept() failed with something other than "nothing to accept" (EMFILE,
 * ENFILE, ENOBUFS, ...): the listening socket stays readable, so re-arming
 * it would spin.  Leave it out of epoll for M8_ACCEPT_PAUSE_MS instead (the
 * sweep puts it back; waiting peers stay in the backlog, where a sibling
 * worker process may take them) and say so at most once per
 * M8_ACCEPT_LOG_MS.  Called with accept_lock held. */
static void accept_pause(m8_server *s, int err)
{
    int64_t now = now_ms();
    s->accept_paused = true;
    s->accept_resume_ms = now + M8_ACCEPT_PAUSE_MS;
    if (s->accept_logged_ms && now - s->accept_logged_ms < M8_ACCEPT_LOG_MS) {
        s->accept_unlogged++;
        return;
    }
    m8_log(M8_LOG_WARNING,
           "accept: %s (%d connections open): not accepting for %d ms at a time; %u more "
           "failures since the last line",
           strerror(err), atomic_load(&s->n_conns), M8_ACCEPT_PAUSE_MS, s->accept_unlogged);
    s->accept_logged_ms = now;
    s->accept_unlogged = 0;
}

/* A slot for a new connection on fd, PARKED with its idle deadline; NULL
 * when the table is full or memory is short. */
static conn *conn_new(m8_server *s, int fd)
{
    conn *c = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->n_free) {
        c = atomic_load(&s->slots[s->free_idx[--s->n_free]]);
    } else {
        uint32_t n = atomic_load(&s->n_slots);
        if (n < M8_MAX_CONNS && (c = calloc(1, sizeof *c)) != NULL) {
            c->idx = n;
            atomic_init(&c->st, (uint64_t)C_FREE);
            atomic_store(&s->slots[n], c);
            atomic_store(&s->n_slots, n + 1);
        }
    }
    if (c) {
        c->fd = fd;
        c->counted = false;
        c->req_started = 0;
        atomic_store(&c->expires_ms, now_ms() + s->idle_ms);
        atomic_store(&c->arriving, false);
        atomic_store(&c->expired, false);
        m8_fcgi_init(&c->fcgi, s->max_body);
        c->fcgi.authorizer_ok = s->opts.authorizer;
        m8_buf_init(&c->in, 2 * M8_FCGI_MAX_RECORD + M8_READ_CHUNK);
        uint64_t gen = atomic_load(&c->st) >> 2;
        atomic_store(&c->st, gen << 2 | C_PARKED);
    }
    pthread_mutex_unlock(&s->lock);
    return c;
}

void m8__accept_conns(m8_server *s)
{
    /* Several worker processes share the socket under fcgim8d: take one
     * connection per wake-up so a process does not hoard connections its
     * busy threads cannot serve while another process idles. */
    m8_shm *shm = s->opts.shm;
    int batch = shm && atomic_load(&shm->daemon_pid) ? 1 : 64;
    pthread_mutex_lock(&s->accept_lock);
    if (s->listen_fd < 0) { /* retired or stopped meanwhile */
        pthread_mutex_unlock(&s->accept_lock);
        return;
    }
    for (int i = 0; i < batch; i++) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
                accept_pause(s, errno);
            break;
        }
        if (atomic_load(&s->n_conns) >= M8_MAX_CONNS) {
            m8_log_limited("fastcgi.max_conns", M8_LOG_WARNING,
                           "connection refused: %d connections open", M8_MAX_CONNS);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails on unix: fine */
        conn *c = conn_new(s, fd);
        if (!c) {
            close(fd);
            continue;
        }
        atomic_fetch_add(&s->n_conns, 1);
        struct epoll_event ev = {.events = CONN_EVENTS,
                                 .data.u64 = ev_tag((uint32_t)(atomic_load(&c->st) >> 2), c->idx)};
        /* Registered PARKED: the first event may reach any thread at once. */
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            uint64_t cur = atomic_load(&c->st);
            atomic_store(&c->st, (cur & ~(uint64_t)3) | C_OWNED);
            m8__conn_close(s, c);
        }
    }
    if (!s->accept_paused && !atomic_load(&s->stopping)) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = TAG_LISTEN};
        epoll_ctl(s->ep, EPOLL_CTL_MOD, s->listen_fd, &ev);
    }
    pthread_mutex_unlock(&s->accept_lock);
}

/* Every M8_SWEEP_MS, in whichever thread comes first: ends an accept pause
 * that is over, and shuts down the connections past their deadline. */
void m8__sweep(m8_server *s)
{
    int64_t now = now_ms();
    int64_t due = atomic_load(&s->next_sweep_ms);
    if (now < due || !atomic_compare_exchange_strong(&s->next_sweep_ms, &due, now + M8_SWEEP_MS))
        return;
    pthread_mutex_lock(&s->accept_lock);
    if (s->accept_paused && now >= s->accept_resume_ms) {
        s->accept_paused = false;
        if (s->listen_fd >= 0 && !atomic_load(&s->stopping)) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = TAG_LISTEN};
            epoll_ctl(s->ep, EPOLL_CTL_MOD, s->listen_fd, &ev);
        }
    }
    pthread_mutex_unlock(&s->accept_lock);
    unsigned idle = 0, late = 0;
    pthread_mutex_lock(&s->lock);
    uint32_t n_slots = atomic_load(&s->n_slots);
    for (uint32_t i = 0; i < n_slots; i++) {
        conn *c = atomic_load(&s->slots[i]);
        if ((atomic_load(&c->st) & 3) != C_PARKED)
            continue;
        int64_t exp = atomic_load(&c->expires_ms);
        if (!exp || now < exp || atomic_load(&c->expired))
            continue;
        atomic_store(&c->expired, true);
        shutdown(c->fd, SHUT_RDWR); /* its owner, or the next thread, sees EOF and closes */
        if (atomic_load(&c->arriving))
            late++;
        else
            idle++;
    }
    pthread_mutex_unlock(&s->lock);
    if (late)
        m8_log_limited("fastcgi.request_deadline", M8_LOG_WARNING,
                       "closed %u FastCGI connection(s) whose request did not arrive in full "
                       "within %.3g s (--request-deadline)",
                       late, (double)s->deadline_ms / 1000);
    if (idle)
        m8_log_limited("fastcgi.idle_timeout", M8_LOG_INFO,
                       "closed %u FastCGI connection(s) idle for %.3g s (--idle-timeout)", idle,
                       (double)s->idle_ms / 1000);
}
