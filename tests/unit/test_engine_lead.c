/* test_engine_lead - one polling thread per worker (lib/app/engine_lead.h,
 * doc/design.md#serving-loop): the role passes to a follower when the poller
 * steps aside, the watch replaces a poller that serves for too long without
 * stepping aside but never an idle one, an idle worker's watch sleeps
 * instead of ticking, stopping frees every follower; and when a worker
 * takes turns at all (m8_lead_wanted).  Threads stand in
 * for the engine's serving threads. */
#include "config.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "app/engine_lead.h"
#include "core/log.h"
#include "shm/shm.h"
#include "tap.h"

static m8_lead g_lead;

typedef struct follower {
    pthread_t t;
    uint64_t epoch;
    atomic_int has_role;
} follower;

static void *follow(void *arg)
{
    follower *f = arg;
    m8_lead_acquire(&g_lead, &f->epoch);
    atomic_store(&f->has_role, 1);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static bool wait_role(follower *f, double seconds)
{
    double until = m8_now_mono() + seconds;
    while (!atomic_load(&f->has_role) && m8_now_mono() < until)
        sleep_ms(2);
    return atomic_load(&f->has_role);
}

int main(void)
{
    /* Stepping aside */
    m8_lead_init(&g_lead, false);
    uint64_t mine = 0;
    m8_lead_acquire(&g_lead, &mine);
    ok(m8_lead_mine(&g_lead, mine), "the first thread to ask becomes the poller at once");
    follower a = {0};
    pthread_create(&a.t, NULL, follow, &a);
    m8_lead_busy(&g_lead, mine, false); /* the poller waits on epoll: idle */
    sleep_ms(200);
    ok(!atomic_load(&a.has_role) && m8_lead_mine(&g_lead, mine),
       "a second thread waits while the poller is idle, however long (200 ms, 50 watch periods)");
    uint64_t looks = atomic_load(&g_lead.looks);
    ok(looks <= 3,
       "an idle poller's watch sleeps instead of ticking every %d ms (%llu looks in 200 ms)",
       M8_LEAD_STUCK_MS, (unsigned long long)looks);
    struct epoll_event left[3] = {{.events = EPOLLIN, .data.u64 = 7},
                                  {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = 8},
                                  {.events = EPOLLIN, .data.u64 = 9}};
    is_int(
        m8_lead_release(&g_lead, mine, left + 1, 2), 2,
        "the poller stepping aside leaves the events it took and did not handle to the next one");
    ok(wait_role(&a, 5),
       "the poller stepping aside (about to block) hands the role to the waiting thread");
    ok(!m8_lead_mine(&g_lead, mine),
       "... and the thread that stepped aside knows it is no longer the poller");
    ok(m8_lead_mine(&g_lead, a.epoch), "... the new poller holds the role");
    struct epoll_event got[4];
    int n_got = m8_lead_take(&g_lead, got, 4);
    ok(n_got == 2 && got[0].data.u64 == 8 && got[0].events == (EPOLLIN | EPOLLRDHUP) &&
           got[1].data.u64 == 9,
       "... which takes them, in order, with their event bits");
    is_int(m8_lead_take(&g_lead, got, 4), 0, "... once");
    pthread_join(a.t, NULL);
    is_int(m8_lead_release(&g_lead, mine, left, 1), 0,
           "a thread that is no longer the poller leaves no events (it gives them back to epoll)");
    ok(m8_lead_mine(&g_lead, a.epoch),
       "a stale step-aside does not take the role from the new poller");

    /* The watch */
    follower b = {0};
    pthread_create(&b.t, NULL, follow, &b);
    sleep_ms(50);
    m8_lead_busy(&g_lead, a.epoch, true); /* an event, then nothing: a handler that blocks */
    ok(wait_role(&b, 5),
       "a poller serving one event for over %d ms without stepping aside is replaced",
       M8_LEAD_STUCK_MS);
    ok(!m8_lead_mine(&g_lead, a.epoch) && m8_lead_mine(&g_lead, b.epoch),
       "... the replaced thread finds out at its next event");
    is_int(atomic_load(&g_lead.superseded), 1, "... and it is counted once");
    pthread_join(b.t, NULL);
    ok(!m8_lead_busy(&g_lead, a.epoch, true) && m8_lead_busy_since(&g_lead) == 0,
       "a replaced poller's late event does not make the new, idle poller look busy (and it "
       "learns it was replaced)");
    ok(m8_lead_busy(&g_lead, b.epoch, true) && !m8_lead_busy(&g_lead, a.epoch, false) &&
           m8_lead_busy_since(&g_lead) != 0,
       "a replaced poller about to wait does not hide the new poller's running event from the "
       "watch");
    m8_lead_busy(&g_lead, b.epoch, false);

    /* Stopping */
    follower c = {0};
    pthread_create(&c.t, NULL, follow, &c);
    sleep_ms(20);
    ok(!atomic_load(&c.has_role), "a third thread waits for the role");
    m8_lead_stop(&g_lead);
    ok(wait_role(&c, 5), "stopping frees a waiting thread");
    ok(m8_lead_mine(&g_lead, 0), "... and from then on every thread polls");
    pthread_join(c.t, NULL);
    m8_lead_destroy(&g_lead);

    /* When to take turns */
    cpu_set_t set;
    long cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    unsetenv("M8_POLLERS");
    ok(!m8_lead_wanted(1, NULL), "one serving thread: it polls, nothing to take turns with");
    ok(m8_lead_wanted(4, NULL) == (cpus <= 1),
       "a process alone lets every thread poll unless it has one CPU (%ld here)", cpus);
    m8_shm *shm = calloc(1, sizeof *shm);
    if (!shm) {
        printf("Bail out! out of memory\n");
        return 1;
    }
    atomic_store(&shm->daemon_pid, 1);
    atomic_store(&shm->workers_target, (uint32_t)cpus);
    ok(m8_lead_wanted(4, shm), "a pool with as many workers as CPUs takes turns");
    atomic_store(&shm->workers_target, (uint32_t)(cpus - 1));
    ok(!m8_lead_wanted(4, shm), "a pool with fewer workers than CPUs lets every thread poll");
    setenv("M8_POLLERS", "one", 1);
    ok(m8_lead_wanted(4, shm) && m8_lead_wanted(4, NULL), "M8_POLLERS=one forces taking turns");
    ok(!m8_lead_wanted(1, NULL), "... but not with one thread");
    setenv("M8_POLLERS", "all", 1);
    atomic_store(&shm->workers_target, (uint32_t)cpus);
    ok(!m8_lead_wanted(4, shm), "M8_POLLERS=all lets every thread poll");
    setenv("M8_POLLERS", "One", 1);
    ok(m8_lead_wanted(4, shm), "another M8_POLLERS value means the default");
    unsetenv("M8_POLLERS");
    free(shm);

    /* One thread: nothing to hand over */
    m8_lead_init(&g_lead, true);
    uint64_t e = 0;
    m8_lead_acquire(&g_lead, &e);
    struct epoll_event one = {.events = EPOLLIN, .data.u64 = 1};
    is_int(m8_lead_release(&g_lead, e, &one, 1), 0,
           "with one serving thread nothing is left over (the events go back to epoll)");
    ok(m8_lead_mine(&g_lead, e), "with one serving thread the role is never given up");
    m8_lead_destroy(&g_lead);
    return done_testing();
}
