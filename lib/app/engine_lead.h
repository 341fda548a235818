/* engine_lead.h - which of a worker's serving threads waits on the epoll
 * set: one at a time (the poller), the others asleep, so that requests
 * arriving while the poller serves one wait for it in the kernel's ready
 * list and are taken in one epoll_wait, instead of each waking a thread of
 * its own.  The poller steps aside before it blocks (a database statement,
 * an outgoing HTTP call, a password hash, a streamed body: m8_lead_release),
 * and a watching thread takes the role over from a poller that has been
 * serving for longer than M8_LEAD_STUCK_MS without stepping aside.
 * doc/design.md#serving-loop */
#ifndef M8_ENGINE_LEAD_H
#define M8_ENGINE_LEAD_H

#include "core/common.h" /* first: config.h before any system header */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#define M8_LEAD_STUCK_MS 4 /* a poller serving this long without stepping aside is replaced */
#define M8_LEAD_HANDED 64  /* events a poller stepping aside can leave to the next one */

typedef struct m8_lead {
    pthread_mutex_t mu;
    pthread_cond_t follow;  /* followers wait here */
    pthread_cond_t watch;   /* the watching follower waits here */
    bool held;              /* a thread has the poller role */
    bool watched;           /* a follower is the watch */
    int followers;          /* waiting on follow */
    uint64_t seen_batches;  /* the watch's last look */
    atomic_bool off;        /* every thread polls (one thread, or stopping) */
    atomic_bool deep;       /* the watch sleeps until woken: the poller was idle */
    _Atomic uint64_t epoch; /* changes whenever the role changes hands */
    /* the poller's epoch (low 24 bits) << 40 | the ms its current event
     * began (0: waiting); a replaced poller's late writes fail on the tag */
    _Atomic uint64_t busy;
    _Atomic uint64_t batches;    /* events the poller started (activity, for the watch) */
    _Atomic uint64_t superseded; /* pollers the watch replaced */
    _Atomic uint64_t looks;      /* the watch's wake-ups */
    /* events a poller took but left, for the next poller (under mu) */
    struct epoll_event handed[M8_LEAD_HANDED];
    int n_handed;
    atomic_int has_handed; /* n_handed, read without mu */
} m8_lead;

/* A serving thread's hold on the role. */
typedef struct m8_lead_seat {
    uint64_t epoch; /* of the role, while poller */
    bool poller;
} m8_lead_seat;

struct m8_shm;

/* Whether a worker's threads should take turns polling: M8_POLLERS "one"
 * or "all" (doc/settings.md), else when the pool (shm, under fcgim8d; else
 * this process alone) has at least as many workers as there are CPUs this
 * process may run on: the workers then keep every CPU busy by themselves,
 * and a second polling thread in a worker would only add wake-ups.  Never
 * with one thread. */
M8_INTERNAL bool m8_lead_wanted(int threads, const struct m8_shm *shm);

/* off: every thread polls, as with one thread per worker. */
M8_INTERNAL void m8_lead_init(m8_lead *l, bool off);
M8_INTERNAL void m8_lead_destroy(m8_lead *l);

/* Makes the caller the poller, waiting as a follower (or the watch) while
 * another thread is; *epoch gets the role's epoch. */
M8_INTERNAL void m8_lead_acquire(m8_lead *l, uint64_t *epoch);

/* The poller steps aside (it is about to block): the events it took and
 * has not handled, ev[0..n), go to the next poller, and a follower takes
 * the role.  Returns how many of them it took over (the caller gives the
 * others back to epoll): 0 when the caller is no longer the poller, or when
 * every thread polls. */
M8_INTERNAL int m8_lead_release(m8_lead *l, uint64_t epoch, const struct epoll_event *ev, int n);

/* The poller, before it waits: events a previous poller left, into
 * out[0..max); how many. */
M8_INTERNAL int m8_lead_take(m8_lead *l, struct epoll_event *out, int max);

/* Whether the caller still has the role it got with epoch. */
static inline bool m8_lead_mine(m8_lead *l, uint64_t epoch)
{
    return atomic_load(&l->off) || atomic_load_explicit(&l->epoch, memory_order_acquire) == epoch;
}

/* Whether the threads take turns (not every one polling). */
static inline bool m8_lead_on(m8_lead *l)
{
    return !atomic_load(&l->off);
}

/* At the top of a serving thread's loop: returns with the caller the poller,
 * after waiting as a follower if it was not (a follower writes its held log
 * lines when they are due, as a poller does). */
M8_INTERNAL void m8_lead_hold(m8_lead *l, m8_lead_seat *seat);

/* m8_lead_release for a seat that may hold the role. */
M8_INTERNAL int m8_lead_step_aside(m8_lead *l, m8_lead_seat *seat, const struct epoll_event *ev,
                                   int n);

/* The poller (the role's epoch) is about to wait (starting false), or
 * starts an event now (true: the time is read only while threads take
 * turns).  False when the caller is no longer the poller (then it recorded
 * nothing). */
M8_INTERNAL bool m8_lead_busy(m8_lead *l, uint64_t epoch, bool starting);

#define M8_LEAD_MS_MASK ((UINT64_C(1) << 40) - 1)

/* When the poller's current event began (ms), 0 while it waits. */
static inline int64_t m8_lead_busy_since(m8_lead *l)
{
    return (int64_t)(atomic_load(&l->busy) & M8_LEAD_MS_MASK);
}

/* Stopping: every thread is woken and polls from now on. */
M8_INTERNAL void m8_lead_stop(m8_lead *l);

#endif
