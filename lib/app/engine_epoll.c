/* engine_epoll.c - the epoll FastCGI engine (engine_epoll.h): connections,
 * their deadlines and the serving threads (accepting and the sweep are in
 * engine_accept.c). */
#include "app/engine_epoll_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/thread.h"

/* Called by the connection's owner: the slot goes back to the table with
 * the next generation, so that events still queued for it are dropped. */
void m8__conn_close(m8_server *s, conn *c)
{
    if (c->counted) {
        c->counted = false;
        atomic_fetch_sub(&s->busy, 1);
    }
    epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
    m8_fcgi_free(&c->fcgi);
    m8_buf_free(&c->in);
    /* The slot is free before the descriptor is released: the sweep shuts
     * sockets down under the lock, and must never reach a number the
     * kernel may already have handed to a new connection. */
    pthread_mutex_lock(&s->lock);
    uint64_t gen = atomic_load(&c->st) >> 2;
    atomic_store(&c->st, (gen + 1) << 2 | C_FREE);
    int fd = c->fd;
    c->fd = -1;
    s->free_idx[s->n_free++] = c->idx;
    pthread_mutex_unlock(&s->lock);
    close(fd);
    atomic_fetch_sub(&s->n_conns, 1);
}

/* The connection an event is for, now owned by the caller; NULL when it
 * is gone (a stale event) or another thread owns it (which then looks
 * again before parking it). */
static conn *conn_acquire(m8_server *s, uint64_t tag)
{
    uint32_t idx = (uint32_t)tag, gen = (uint32_t)(tag >> 32);
    if (idx >= atomic_load(&s->n_slots))
        return NULL;
    conn *c = atomic_load(&s->slots[idx]);
    uint64_t cur = atomic_load(&c->st);
    for (;;) {
        unsigned state = (unsigned)(cur & 3);
        if ((uint32_t)(cur >> 2) != gen || state == C_FREE || state == C_AGAIN)
            return NULL;
        uint64_t next = (cur & ~(uint64_t)3) | (state == C_PARKED ? C_OWNED : C_AGAIN);
        if (atomic_compare_exchange_weak(&c->st, &cur, next))
            return state == C_PARKED ? c : NULL;
    }
}

/* The owner lets c go back to epoll: true when it is parked, false when
 * events came while it was in hand (the owner keeps it and reads again). */
static bool conn_release(conn *c)
{
    uint64_t cur = atomic_load(&c->st);
    if ((cur & 3) == C_OWNED &&
        atomic_compare_exchange_strong(&c->st, &cur, (cur & ~(uint64_t)3) | C_PARKED))
        return true;
    atomic_store(&c->st, (cur & ~(uint64_t)3) | C_OWNED);
    return false;
}

typedef struct worker_ctx {
    m8_request req;
    m8_buf out;             /* the CGI-form response */
    m8_buf wire;            /* FastCGI records */
    m8_stream st;           /* a streaming response's state (app/stream.h) */
    char rb[M8_READ_CHUNK]; /* what a recv brings */
    /* the last epoll_wait's events; [ev_next, ev_n) not handled yet */
    struct epoll_event evs[16];
    int ev_next, ev_n;
    m8_server *srv;
    m8_lead_seat seat; /* whether it polls (app/engine_lead.h) */
} worker_ctx;

/* Gives the events this thread took but has not handled yet back to
 * epoll, for the other threads: before a stream body and when a handler is
 * about to block (m8_req_will_block, m8_thread_will_block).  Else the events behind such a request
 * waited for its end: a request got no answer, and the one-shot listening
 * socket, never re-armed, accepted nothing.  Re-arming a ready descriptor
 * queues it again (epoll_ctl(2)); a connection closed meanwhile is skipped,
 * one another thread owns at most gets an empty event.
 * doc/design.md#streaming-responses */
static void hand_back_events(m8_server *s, worker_ctx *w)
{
    for (; w->ev_next < w->ev_n; w->ev_next++) {
        uint64_t tag = w->evs[w->ev_next].data.u64;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = tag};
        if (tag == TAG_LISTEN) {
            pthread_mutex_lock(&s->accept_lock);
            if (s->listen_fd >= 0 && !s->accept_paused && !atomic_load(&s->stopping))
                epoll_ctl(s->ep, EPOLL_CTL_MOD, s->listen_fd, &ev);
            pthread_mutex_unlock(&s->accept_lock);
            continue;
        }
        if (tag == TAG_WAKE) {
            epoll_ctl(s->ep, EPOLL_CTL_MOD, s->wake_fd, &ev);
            continue;
        }
        uint32_t idx = (uint32_t)tag, gen = (uint32_t)(tag >> 32);
        ev.events = CONN_EVENTS;
        /* under the lock: the slot's descriptor cannot be closed meanwhile */
        pthread_mutex_lock(&s->lock);
        conn *c = idx < atomic_load(&s->n_slots) ? atomic_load(&s->slots[idx]) : NULL;
        uint64_t st = c ? atomic_load(&c->st) : 0;
        if (c && (uint32_t)(st >> 2) == gen && (st & 3) != C_FREE && c->fd >= 0)
            epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
        pthread_mutex_unlock(&s->lock);
    }
}

/* Before this thread blocks: the poller role to a follower, with the
 * events this thread took and has not handled (any it cannot leave, back
 * to epoll); when every thread polls, those events back to epoll.
 * app/engine_lead.h, doc/design.md#serving-loop */
static void step_aside(m8_server *s, worker_ctx *w)
{
    w->ev_next += m8_lead_step_aside(&s->lead, &w->seat, w->evs + w->ev_next, w->ev_n - w->ev_next);
    hand_back_events(s, w);
}

static void yield_events(void *data)
{
    worker_ctx *w = data;
    step_aside(w->srv, w);
}

/* Runs the complete request held by c; returns false if c must close. */
static bool serve_request(m8_server *s, worker_ctx *w, conn *c)
{
    m8_req_reset(&w->req);
    m8_buf_reset(&w->out);
    m8_buf_reset(&w->wire);
    m8_pair *params = NULL;
    size_t n = 0;
    int status = 0;
    if (m8_fcgi_params_in_place(&w->req.arena, c->fcgi.params.data, c->fcgi.params.len, &params,
                                &n) != 0)
        status = 400;
    else if (c->fcgi.body_too_big)
        status = 413;
    w->req.authorizer = c->fcgi.role == M8_FCGI_AUTHORIZER;
    /* A handler may make its answer a stream (app/stream.h): its body then
     * runs here, on this thread, with c in hand (owned: events that come
     * meanwhile make it AGAIN, and the caller reads again before parking
     * it); doc/design.md#streaming-responses. */
    m8_stream_prepare(&w->st, c->fd, c->fcgi.req_id, &s->stopping, &s->retiring, &s->streams);
    w->req.stream = &w->st;
    if (s->opts.respond)
        s->opts.respond(s->opts.data, &w->req, params, n, c->fcgi.body.data, c->fcgi.body.len,
                        status, &w->out);
    bool keep = c->fcgi.keep_conn && !atomic_load(&s->stopping);
    const char *res = w->out.data;
    size_t res_len = w->out.len;
    int rc = 0;
    if (w->st.fn) {
        step_aside(s, w);
        rc = m8_stream_run(&w->st, res, res_len); /* headers, then the body */
        res = NULL;
        res_len = 0;
        keep = keep && !atomic_load(&s->stopping);
    }
    m8_stream_release(&w->st);
    w->req.stream = NULL;
    if (rc == 0)
        rc = m8_fcgi_response(&w->wire, c->fcgi.req_id, res, res_len, 0);
    if (rc == 0 && keep && atomic_load(&s->retiring)) {
        /* A retiring server asks the web server to give this connection
         * up, without closing it itself (which would race the web server
         * sending its next request on it): an empty FCGI_STDERR of the same
         * request right behind END_REQUEST, in the same write.  nginx keeps
         * a connection only when END_REQUEST ends what it read, so it
         * closes this one after the response; a client that reads the
         * record as the start of its next response finds an empty stream,
         * which means nothing.  The connection stays open here until the
         * peer closes it (fcgim8d(8), "Reload without failed requests"). */
        rc = m8_fcgi_record(&w->wire, M8_FCGI_STDERR, c->fcgi.req_id, NULL, 0);
    }
    if (rc == 0)
        rc = m8_write_all(c->fd, w->wire.data, w->wire.len);
    m8_fcgi_next(&c->fcgi);
    if (c->counted) {
        c->counted = false;
        atomic_fetch_sub(&s->busy, 1);
    }
    /* Keep the worker's buffers from holding a huge response forever. */
    if (w->out.cap > (1u << 20)) {
        m8_buf_free(&w->out);
        m8_buf_free(&w->wire);
    }
    return rc == 0 && keep;
}

/* Parks c until its next bytes, with its deadline: the idle timeout when
 * no request is under way, else the request deadline counted from the
 * request's first byte.  Closes c instead when it is overdue.  Returns
 * false when c is still the caller's (events came meanwhile: read again). */
static bool park(m8_server *s, conn *c)
{
    int64_t now = now_ms(), exp;
    bool arriving = c->in.len > 0 || c->fcgi.req_id != 0;
    if (arriving) {
        if (!c->req_started)
            c->req_started = now;
        exp = c->req_started + s->deadline_ms;
    } else {
        c->req_started = 0;
        exp = now + s->idle_ms;
    }
    if (atomic_load(&c->expired) || now >= exp) {
        m8__conn_close(s, c);
        return true;
    }
    atomic_store(&c->arriving, arriving);
    atomic_store(&c->expires_ms, exp);
    if (conn_release(c))
        return true;
    atomic_store(&c->expires_ms, 0);
    return false;
}

/* Parses p[0..n) as c's record stream, answering each complete request;
 * *used gets the bytes consumed (the rest is an incomplete record).
 * Returns false when c was closed. */
static bool feed(m8_server *s, worker_ctx *w, conn *c, const char *p, size_t n, size_t *used_out,
                 bool *served)
{
    size_t off = 0;
    while (off < n) {
        size_t used = 0;
        m8_fcgi_event ev = m8_fcgi_feed(&c->fcgi, p + off, n - off, &used);
        off += used;
        if (c->fcgi.req_id && !c->counted) {
            c->counted = true;
            atomic_fetch_add(&s->busy, 1);
        }
        if (c->fcgi.reply.len) {
            int rc = m8_write_all(c->fd, c->fcgi.reply.data, c->fcgi.reply.len);
            m8_buf_reset(&c->fcgi.reply);
            if (rc) {
                m8__conn_close(s, c);
                return false;
            }
        }
        if (ev == M8_FCGI_REQUEST) {
            if (!serve_request(s, w, c)) {
                m8__conn_close(s, c);
                return false;
            }
            *served = true;
            continue;
        }
        if (ev == M8_FCGI_ABORTED) {
            if (c->counted) {
                c->counted = false;
                atomic_fetch_sub(&s->busy, 1);
            }
            if (!c->fcgi.keep_conn) {
                m8__conn_close(s, c);
                return false;
            }
            continue;
        }
        if (ev == M8_FCGI_PROTO_ERROR) {
            m8_log_limited("fastcgi.malformed", M8_LOG_WARNING,
                           "closing a FastCGI connection: malformed record stream");
            m8__conn_close(s, c);
            return false;
        }
        break; /* need more bytes */
    }
    *used_out = off;
    return true;
}

/* Drives a readable connection.  Returns with c parked or closed.  Bytes
 * are read into the thread's buffer and parsed there; only an incomplete
 * record is kept with the connection (c->in), so an idle connection holds
 * no read buffer. */
static void handle_conn(m8_server *s, worker_ctx *w, conn *c, uint32_t events)
{
    atomic_store(&c->expires_ms, 0); /* in hand: the sweep leaves it alone */
    bool served = false;             /* a request was answered since the last read */
    /* Whether the socket may hold more than the last read took: the event
     * said the peer shut down (that edge is spent: its end of file must be
     * read now), or the read filled the buffer. */
    bool hup = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0, full = false;
    for (;;) {
        if (served && c->in.len == 0 && !hup && !full) {
            /* The web server sends the next request only after reading this
             * answer: a read now would just say EAGAIN.  Park the connection
             * (bytes or an end of file arriving from now on raise a new
             * edge, seen by conn_release if it comes before the park). */
            served = false;
            if (park(s, c))
                return;
            continue;
        }
        bool direct = c->in.len == 0;
        char *dst = w->rb;
        size_t room = sizeof w->rb;
        if (!direct) {
            if (m8_buf_reserve(&c->in, M8_READ_CHUNK) != 0) {
                m8__conn_close(s, c);
                return;
            }
            dst = c->in.data + c->in.len;
            room = c->in.cap - c->in.len - 1;
        }
        ssize_t r = recv(c->fd, dst, room, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (park(s, c))
                return;
            continue;
        }
        if (r <= 0) {
            m8__conn_close(s, c); /* EOF or error */
            return;
        }
        full = (size_t)r == room;
        const char *p = dst;
        size_t n = (size_t)r, used = 0;
        if (!direct) {
            c->in.len += n;
            p = c->in.data;
            n = c->in.len;
        }
        if (!feed(s, w, c, p, n, &used, &served))
            return;
        if (direct) {
            if (used < n && m8_buf_append(&c->in, p + used, n - used) != 0) {
                m8__conn_close(s, c);
                return;
            }
        } else if (used == n) {
            m8_buf_free(&c->in); /* back to the thread's buffer */
        } else if (used) {
            memmove(c->in.data, c->in.data + used, n - used);
            c->in.len = n - used;
        }
    }
}

static void *worker_main(void *arg)
{
    m8_server *s = arg;
    worker_ctx w;
    m8_req_init(&w.req, s->opts.owner);
    m8_buf_init(&w.out, M8_MAX_RESPONSE_BYTES + 65536);
    m8_buf_init(&w.wire, M8_MAX_RESPONSE_BYTES + M8_MAX_RESPONSE_BYTES / 4096 + 65536);
    memset(&w.st, 0, sizeof w.st);
    w.srv = s;
    w.seat = (m8_lead_seat){0};
    m8_thread_set_block_hook(yield_events, &w);
    /* Access lines are written in batches, each at most M8_LOG_FLUSH_MS
     * after it was logged (log.h): the wait below ends by then. */
    m8_log_buffer(true);
    for (;;) {
        bool stopping = atomic_load(&s->stopping);
        if (stopping && atomic_load(&s->busy) <= 0)
            break;
        m8_lead_hold(&s->lead, &w.seat);
        int timeout = stopping ? 50 : M8_SWEEP_MS;
        double due = m8_log_flush_due();
        if (due > 0) {
            double left_ms = (due - m8_now_mono()) * 1000;
            if (left_ms <= 0) {
                m8_log_flush();
            } else if (left_ms < timeout) {
                timeout = (int)left_ms + 1;
            }
        }
        /* what a poller that stepped aside left, else a wait */
        w.ev_n = m8_lead_take(&s->lead, w.evs, (int)(sizeof w.evs / sizeof w.evs[0]));
        if (w.ev_n == 0) {
            if (!m8_lead_busy(&s->lead, w.seat.epoch, false)) {
                w.seat.poller = false; /* replaced by the watch meanwhile */
                continue;
            }
            w.ev_n = epoll_wait(s->ep, w.evs, (int)(sizeof w.evs / sizeof w.evs[0]), timeout);
        }
        for (w.ev_next = 0; w.ev_next < w.ev_n;) {
            /* each event's start, for the watch; false: replaced by it */
            if (!m8_lead_busy(&s->lead, w.seat.epoch, true)) {
                hand_back_events(s, &w);
                w.seat.poller = false;
                break;
            }
            uint32_t events = w.evs[w.ev_next].events;
            uint64_t tag = w.evs[w.ev_next++].data.u64;
            if (tag == TAG_LISTEN) {
                if (!atomic_load(&s->stopping))
                    m8__accept_conns(s);
            } else if (tag == TAG_WAKE) {
                /* pass the wake-up on to the next thread */
                struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = TAG_WAKE};
                epoll_ctl(s->ep, EPOLL_CTL_MOD, s->wake_fd, &ev);
            } else {
                conn *c = conn_acquire(s, tag);
                if (c)
                    handle_conn(s, &w, c, events);
            }
        }
        m8__sweep(s);
    }
    m8_thread_set_block_hook(NULL, NULL);
    m8_log_buffer(false);
    m8_req_free(&w.req);
    m8_buf_free(&w.out);
    m8_buf_free(&w.wire);
    m8_stream_free(&w.st);
    return NULL;
}

static int64_t limit_ms(double seconds, double fallback)
{
    if (!(seconds > 0))
        seconds = fallback;
    if (seconds > 86400.0 * 365)
        seconds = 86400.0 * 365;
    int64_t ms = (int64_t)(seconds * 1000.0 + 0.5);
    return ms > 0 ? ms : 1;
}

m8_server *m8_server_start(const m8_engine_opts *opts, int listen_fd, char *err, size_t errlen)
{
    int threads = opts->threads;
    const m8_conn_limits *limits = &opts->limits;
    m8_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->opts = *opts;
    s->listen_fd = listen_fd;
    s->max_body = opts->max_body;
    /* streams never hold every thread: one is always left for requests */
    s->streams.max = threads - 1;
    s->idle_ms = limit_ms(limits ? limits->idle_timeout_s : 0, M8_IDLE_TIMEOUT_DEFAULT_S);
    s->deadline_ms =
        limit_ms(limits ? limits->request_deadline_s : 0, M8_REQUEST_DEADLINE_DEFAULT_S);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->accept_lock, NULL);
    m8_lead_init(&s->lead, !m8_lead_wanted(threads, opts->shm));
    int fl = fcntl(listen_fd, F_GETFL);
    fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event lev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = TAG_LISTEN};
    struct epoll_event wev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = TAG_WAKE};
    s->slots = calloc(M8_MAX_CONNS, sizeof *s->slots);
    s->free_idx = calloc(M8_MAX_CONNS, sizeof *s->free_idx);
    if (!s->slots || !s->free_idx) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (s->ep < 0 || s->wake_fd < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, listen_fd, &lev) != 0 ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, s->wake_fd, &wev) != 0) {
        snprintf(err, errlen, "epoll setup failed: %s", strerror(errno));
        goto fail;
    }
    s->threads = calloc((size_t)threads, sizeof *s->threads);
    if (!s->threads)
        goto fail;
    for (int i = 0; i < threads; i++) {
        int trc = m8_thread_start(&s->threads[i], NULL, worker_main, s);
        if (trc != 0) {
            snprintf(err, errlen, "cannot start thread %d: %s", i, m8_strerror(trc));
            atomic_store(&s->stopping, true);
            m8_lead_stop(&s->lead);
            s->n_threads = i;
            m8_server_stop(s, 0);
            return NULL;
        }
        s->n_threads = i + 1;
    }
    return s;
fail:
    if (s->ep >= 0)
        close(s->ep);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    free(s->threads);
    free(s->slots);
    free(s->free_idx);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->accept_lock);
    m8_lead_destroy(&s->lead);
    free(s);
    return NULL;
}

/* Takes the listening socket out of epoll and closes this process's copy
 * of it: from now on the kernel queues new connections for the other
 * holders of the socket (fcgim8d and the workers of the new generation). */
static void stop_accepting(m8_server *s)
{
    pthread_mutex_lock(&s->accept_lock);
    if (s->listen_fd >= 0) {
        epoll_ctl(s->ep, EPOLL_CTL_DEL, s->listen_fd, NULL);
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    pthread_mutex_unlock(&s->accept_lock);
}

void m8_server_retire(m8_server *s)
{
    atomic_store(&s->retiring, true);
    stop_accepting(s);
}

int m8_server_conns(m8_server *s)
{
    return atomic_load(&s->n_conns);
}

void m8_server_stop(m8_server *s, double timeout_s)
{
    atomic_store(&s->stopping, true);
    m8_lead_stop(&s->lead);
    stop_accepting(s);
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof one) < 0) {
        /* the workers also notice the flag within M8_SWEEP_MS */
    }
    double deadline = m8_now_mono() + timeout_s;
    while (atomic_load(&s->busy) > 0 && m8_now_mono() < deadline) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&s->busy) > 0)
        m8_log(M8_LOG_WARNING, "shutdown timeout: %d request(s) still in progress",
               atomic_load(&s->busy));
    atomic_store(&s->busy, 0); /* lets the workers leave */
    for (int i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    uint32_t n_slots = atomic_load(&s->n_slots);
    for (uint32_t i = 0; i < n_slots; i++) {
        conn *c = atomic_load(&s->slots[i]);
        if ((atomic_load(&c->st) & 3) != C_FREE)
            m8__conn_close(s, c);
        free(c);
    }
    free(s->slots);
    free(s->free_idx);
    close(s->ep);
    close(s->wake_fd);
    free(s->threads);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->accept_lock);
    m8_lead_destroy(&s->lead);
    free(s);
}
