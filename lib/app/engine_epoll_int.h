/* engine_epoll_int.h - the epoll engine's connection table and server
 * state, shared by engine_epoll.c (the serving threads) and
 * engine_accept.c (accepting and the deadline sweep). */
#ifndef M8_ENGINE_EPOLL_INT_H
#define M8_ENGINE_EPOLL_INT_H

#include "app/engine_epoll.h" /* first: config.h before any system header */

#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>

#include "app/engine_lead.h"
#include "app/stream.h"
#include "core/log.h"
#include "http/fcgi_proto.h"

#define M8_MAX_CONNS 4096
#define M8_READ_CHUNK 16384u
#define M8_SWEEP_MS 250        /* deadline checks and the accept pause, this often */
#define M8_ACCEPT_PAUSE_MS 250 /* no accept() for this long after EMFILE & co */
#define M8_ACCEPT_LOG_MS 10000 /* at most one line per this long about it */

/* Connections live in slots that are never freed while the server runs,
 * registered edge-triggered (EPOLLET) once for their whole life: a request
 * costs no epoll_ctl.  Each epoll event carries the slot's index and the
 * generation of the connection it was registered for, so an event that
 * arrives after its connection closed (and its slot went to a new one) is
 * recognised and dropped.  A connection belongs to one thread at a time:
 * its state word says PARKED (in epoll only), OWNED (a thread has it), or
 * AGAIN (a thread has it and more events came meanwhile: the owner looks
 * again before parking it).  Its deadline (idle, or a request still
 * arriving) is published in expires_ms whenever it is parked; a sweep that
 * any thread runs every M8_SWEEP_MS shuts the socket of an overdue one down
 * (never closes it: a thread may be about to handle it), so whichever
 * thread owns it next sees EOF and closes it.  doc/design.md#serving-loop */
enum { C_FREE = 0, C_PARKED = 1, C_OWNED = 2, C_AGAIN = 3 };
#define TAG_LISTEN UINT32_MAX
#define TAG_WAKE (UINT32_MAX - 1)
#define CONN_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

typedef struct conn {
    int fd;                     /* -1 while the slot is free (changed under srv->lock) */
    uint32_t idx;               /* its slot */
    _Atomic uint64_t st;        /* generation << 2 | C_* */
    bool counted;               /* holds a request in progress (srv->busy) */
    int64_t req_started;        /* ms: the first byte of the request now arriving; 0 = none */
    _Atomic int64_t expires_ms; /* ms: its deadline while parked; 0 = in hand */
    atomic_bool arriving;       /* that deadline is a request's, not an idle one */
    atomic_bool expired;        /* shut down by the sweep */
    m8_fcgi fcgi;
    m8_buf in;
} conn;

struct m8_server {
    m8_engine_opts opts;
    int listen_fd; /* -1 once retired or stopped (guarded by accept_lock) */
    int ep;
    int wake_fd;
    size_t max_body;
    int64_t idle_ms, deadline_ms;
    pthread_t *threads;
    int n_threads;
    atomic_bool stopping;
    atomic_bool retiring; /* not accepting; kept connections still served */
    atomic_int busy;
    m8_stream_limit streams;     /* streaming responses running (app/stream.h) */
    m8_lead lead;                /* which thread polls (app/engine_lead.h) */
    pthread_mutex_t accept_lock; /* listen_fd and the accept pause below */
    bool accept_paused;
    int64_t accept_resume_ms, accept_logged_ms;
    unsigned accept_unlogged;
    _Atomic int64_t next_sweep_ms;
    atomic_int n_conns;
    pthread_mutex_t lock;   /* guards the slot table and every conn's fd */
    _Atomic(conn *) *slots; /* M8_MAX_CONNS entries; [0, n_slots) allocated */
    _Atomic uint32_t n_slots;
    uint32_t *free_idx; /* free slots, a stack */
    uint32_t n_free;
};

static inline uint64_t ev_tag(uint32_t gen, uint32_t idx)
{
    return (uint64_t)gen << 32 | idx;
}

static inline int64_t now_ms(void)
{
    return (int64_t)(m8_now_mono() * 1000.0);
}

/* Called by the connection's owner (or for a connection not registered
 * yet): closes it, its slot back to the table with the next generation. */
M8_INTERNAL void m8__conn_close(m8_server *s, conn *c);

/* The listening socket is readable: accepts (one connection under fcgim8d,
 * else up to 64), registers them PARKED, re-arms the socket. */
M8_INTERNAL void m8__accept_conns(m8_server *s);

/* Every M8_SWEEP_MS, in whichever thread comes first: ends an accept pause
 * that is over, and shuts down the connections past their deadline. */
M8_INTERNAL void m8__sweep(m8_server *s);

#endif
