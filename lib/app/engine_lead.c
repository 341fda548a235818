/* engine_lead.c - one polling thread per worker (engine_lead.h).
 *
 * The threads of a worker share one epoll set.  When they all wait on it,
 * every request that arrives while one thread is serving wakes another
 * (a context switch, a cold cache), where a single thread would find it
 * ready when it comes back.  Here one thread (the poller) waits on the set and
 * serves what it gets; the others sleep on a condition variable and are
 * only needed when the poller is about to block.  The role changes hands:
 *   - m8_lead_release: the poller steps aside before blocking, leaving the
 *     events it took and has not handled to the next poller; a follower
 *     wakes, takes them and polls;
 *   - the watch: one follower wakes about every M8_LEAD_STUCK_MS while the
 *     poller is serving, and replaces a poller that has spent
 *     M8_LEAD_STUCK_MS on one event without stepping aside (a handler that blocks
 *     without saying so).  The replaced thread finds out at its next event
 *     (m8_lead_mine), gives its untaken events back and follows.  While the
 *     poller is idle the watch sleeps until the poller's next event wakes
 *     it, so an idle worker does not tick.
 * doc/design.md#serving-loop */
#include "app/engine_lead.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "shm/shm.h"

#define DEEP_MS 1000 /* the idle watch's wait, should a wake-up be missed */

bool m8_lead_wanted(int threads, const m8_shm *shm)
{
    if (threads < 2)
        return false;
    const char *e = getenv("M8_POLLERS");
    if (e && strcmp(e, "one") == 0)
        return true;
    if (e && strcmp(e, "all") == 0)
        return false;
    long cpus = -1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        cpus = CPU_COUNT(&set);
    if (cpus < 1)
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long workers = 1;
    if (shm && atomic_load(&shm->daemon_pid))
        workers = (long)atomic_load(&shm->workers_target);
    return cpus >= 1 && workers >= cpus;
}

static uint64_t busy_word(uint64_t epoch, int64_t ms)
{
    return (epoch & 0xffffff) << 40 | ((uint64_t)ms & M8_LEAD_MS_MASK);
}

void m8_lead_init(m8_lead *l, bool off)
{
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->follow, &ca);
    pthread_cond_init(&l->watch, &ca);
    pthread_condattr_destroy(&ca);
    l->held = false;
    l->watched = false;
    l->followers = 0;
    l->seen_batches = 0;
    atomic_init(&l->off, off);
    atomic_init(&l->deep, false);
    atomic_init(&l->epoch, 1);
    atomic_init(&l->busy, busy_word(1, 0));
    atomic_init(&l->batches, 0);
    atomic_init(&l->superseded, 0);
    atomic_init(&l->looks, 0);
    l->n_handed = 0;
    atomic_init(&l->has_handed, 0);
}

void m8_lead_destroy(m8_lead *l)
{
    pthread_cond_destroy(&l->follow);
    pthread_cond_destroy(&l->watch);
    pthread_mutex_destroy(&l->mu);
}

static int64_t mono_ms(void)
{
    return (int64_t)(m8_now_mono() * 1000.0);
}

/* Called with mu held: the caller has the role from now on. */
static void take(m8_lead *l, uint64_t *epoch)
{
    l->held = true;
    *epoch = atomic_fetch_add(&l->epoch, 1) + 1;
    atomic_store(&l->busy, busy_word(*epoch, 0));
}

static void wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

/* A sleeping thread's access lines are written when due, as the poller's
 * are (log.h); called with mu held, released around the write. */
static void flush_due(m8_lead *l)
{
    double due = m8_log_flush_due();
    if (due > 0 && m8_now_mono() >= due) {
        pthread_mutex_unlock(&l->mu);
        m8_log_flush();
        pthread_mutex_lock(&l->mu);
    }
}

/* How long a sleeping thread may wait before its held lines are due (ms,
 * at least 1), or -1 when it holds none. */
static int due_ms(void)
{
    double due = m8_log_flush_due();
    if (due <= 0)
        return -1;
    double ms = (due - m8_now_mono()) * 1000.0;
    return ms < 1 ? 1 : ms > 60000 ? 60000 : (int)ms + 1;
}

/* The watch's look at the poller, with mu held after its wait: true when
 * it replaced the poller (and has the role). */
static bool watch_look(m8_lead *l, uint64_t *epoch)
{
    int64_t since = m8_lead_busy_since(l);
    if (since && mono_ms() - since >= M8_LEAD_STUCK_MS) {
        atomic_fetch_add(&l->superseded, 1);
        take(l, epoch);
        return true;
    }
    uint64_t b = atomic_load(&l->batches);
    if (!since && b == l->seen_batches) {
        /* Idle since the last look: sleep until the poller's next event.
         * The poller raises batches before it reads deep (m8_lead_busy), so
         * either it sees deep and wakes the watch, or the watch sees the
         * event here and stays awake. */
        atomic_store(&l->deep, true);
        if (m8_lead_busy_since(l) || atomic_load(&l->batches) != b)
            atomic_store(&l->deep, false);
    } else {
        atomic_store(&l->deep, false);
    }
    l->seen_batches = b;
    return false;
}

void m8_lead_acquire(m8_lead *l, uint64_t *epoch)
{
    if (atomic_load(&l->off))
        return;
    pthread_mutex_lock(&l->mu);
    bool watching = false;
    for (;;) {
        if (atomic_load(&l->off))
            break;
        if (!l->held) {
            take(l, epoch);
            break;
        }
        if (!watching && !l->watched) {
            l->watched = true;
            watching = true;
            l->seen_batches = atomic_load(&l->batches);
            atomic_store(&l->deep, false);
        }
        int due = due_ms();
        if (!watching) {
            l->followers++;
            if (due < 0)
                pthread_cond_wait(&l->follow, &l->mu);
            else
                wait_ms(&l->follow, &l->mu, due);
            l->followers--;
            flush_due(l);
            continue;
        }
        /* next look: when the poller's current event would be stuck, or
         * M8_LEAD_STUCK_MS from now if it is idle (an event starting later
         * cannot be stuck before) */
        int ms = DEEP_MS;
        if (!atomic_load(&l->deep)) {
            int64_t since = m8_lead_busy_since(l);
            ms = M8_LEAD_STUCK_MS;
            if (since) {
                int64_t left = since + M8_LEAD_STUCK_MS - mono_ms();
                ms = left < 1 ? 1 : left > M8_LEAD_STUCK_MS ? M8_LEAD_STUCK_MS : (int)left;
            }
        }
        wait_ms(&l->watch, &l->mu, due >= 0 && due < ms ? due : ms);
        atomic_fetch_add(&l->looks, 1);
        flush_due(l);
        if (atomic_load(&l->off) || !l->held)
            continue;
        if (watch_look(l, epoch))
            break;
    }
    if (watching) {
        /* the watch now polls: a follower takes its place */
        l->watched = false;
        atomic_store(&l->deep, false);
        if (l->followers)
            pthread_cond_signal(&l->follow);
    }
    pthread_mutex_unlock(&l->mu);
}

int m8_lead_release(m8_lead *l, uint64_t epoch, const struct epoll_event *ev, int n)
{
    if (atomic_load(&l->off))
        return 0;
    int kept = 0;
    pthread_mutex_lock(&l->mu);
    if (l->held && atomic_load(&l->epoch) == epoch) {
        for (; kept < n && l->n_handed < M8_LEAD_HANDED; kept++)
            l->handed[l->n_handed++] = ev[kept];
        atomic_store(&l->has_handed, l->n_handed);
        l->held = false;
        atomic_store(&l->busy, busy_word(atomic_fetch_add(&l->epoch, 1) + 1, 0));
        if (l->followers)
            pthread_cond_signal(&l->follow);
        else if (l->watched)
            pthread_cond_signal(&l->watch);
    }
    pthread_mutex_unlock(&l->mu);
    return kept;
}

int m8_lead_take(m8_lead *l, struct epoll_event *out, int max)
{
    if (!atomic_load_explicit(&l->has_handed, memory_order_relaxed))
        return 0;
    pthread_mutex_lock(&l->mu);
    int n = l->n_handed < max ? l->n_handed : max;
    for (int i = 0; i < n; i++)
        out[i] = l->handed[i];
    l->n_handed -= n;
    for (int i = 0; i < l->n_handed; i++)
        l->handed[i] = l->handed[n + i];
    atomic_store(&l->has_handed, l->n_handed);
    pthread_mutex_unlock(&l->mu);
    return n;
}

void m8_lead_hold(m8_lead *l, m8_lead_seat *seat)
{
    if (seat->poller && m8_lead_mine(l, seat->epoch))
        return;
    m8_lead_acquire(l, &seat->epoch);
    seat->poller = true;
}

int m8_lead_step_aside(m8_lead *l, m8_lead_seat *seat, const struct epoll_event *ev, int n)
{
    if (!seat->poller || !m8_lead_on(l))
        return 0;
    seat->poller = false;
    return m8_lead_release(l, seat->epoch, ev, n);
}

bool m8_lead_busy(m8_lead *l, uint64_t epoch, bool starting)
{
    if (atomic_load_explicit(&l->off, memory_order_relaxed))
        return true;
    /* one word with the epoch: a replaced poller that has not noticed yet
     * can neither clear the new poller's time nor make it look busy */
    int64_t ms = starting ? (int64_t)((uint64_t)mono_ms() & M8_LEAD_MS_MASK) : 0;
    if (starting && !ms)
        ms = 1; /* 0 means waiting */
    uint64_t want = busy_word(epoch, 0), cur = atomic_load(&l->busy), next = busy_word(epoch, ms);
    do {
        if ((cur & ~M8_LEAD_MS_MASK) != want || !m8_lead_mine(l, epoch))
            return false;
    } while (!atomic_compare_exchange_weak(&l->busy, &cur, next));
    if (!starting)
        return true;
    atomic_fetch_add(&l->batches, 1);
    if (atomic_load(&l->deep)) {
        pthread_mutex_lock(&l->mu);
        atomic_store(&l->deep, false);
        pthread_cond_signal(&l->watch);
        pthread_mutex_unlock(&l->mu);
    }
    return true;
}

void m8_lead_stop(m8_lead *l)
{
    pthread_mutex_lock(&l->mu);
    atomic_store(&l->off, true);
    pthread_cond_broadcast(&l->follow);
    pthread_cond_broadcast(&l->watch);
    pthread_mutex_unlock(&l->mu);
}
