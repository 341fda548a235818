/* test_shm - the shared segment: layout, slots, series, thread states, the
 * JWKS area and the robust lock, across real processes (fork). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "builtin/metrics.h"
#include "core/log.h"
#include "shm/shm.h"
#include "tap.h"

static void test_create(void)
{
    char err[256] = "";
    int fd = -1;
    ok(m8_shm_create(0, &fd, err, sizeof err) == NULL, "0 slots is refused");
    like(err, "out of range", "... with a reason");
    ok(m8_shm_create(M8_SHM_MAX_SLOTS + 1, &fd, err, sizeof err) == NULL,
       "one slot past M8_SHM_MAX_SLOTS is refused");
    m8_shm *shm = m8_shm_create(M8_SHM_MAX_SLOTS, &fd, err, sizeof err);
    ok(shm != NULL, "exactly M8_SHM_MAX_SLOTS slots is accepted");
    if (shm) {
        is_int(shm->nslots, M8_SHM_MAX_SLOTS, "nslots recorded");
        is_int((long long)shm->size, (long long)m8_shm_size(M8_SHM_MAX_SLOTS), "size recorded");
        is_int(atomic_load(&shm->daemon_pid), getpid(), "the creator is the daemon");
        is_int(atomic_load(&shm->ready), 0, "a new segment is not ready");
        m8_shm_unmap(shm);
        close(fd);
    }
    m8_shm *p = m8_shm_private();
    ok(p != NULL, "a private segment");
    if (p) {
        is_int(p->nslots, 1, "a private segment has one slot");
        is_int(atomic_load(&p->daemon_pid), 0, "... and no daemon");
        is_int(atomic_load(&p->slots[0].pid), getpid(), "... its slot is ours");
        m8_shm_unmap(p);
    }
}

static void test_attach_env(void)
{
    char err[256];
    int fd = -1;
    m8_shm *shm = m8_shm_create(4, &fd, err, sizeof err);
    char buf[32];
    snprintf(buf, sizeof buf, "%d", fd);
    setenv(M8_ENV_SHM_FD, buf, 1);
    setenv(M8_ENV_SHM_SLOT, "2", 1);
    m8_shm_slot *slot = NULL;
    m8_shm *w = m8_shm_attach_env(&slot);
    ok(w && slot == &w->slots[2],
       "a worker maps the segment from FCGIM8_SHM_FD and takes its slot");
    ok(getenv(M8_ENV_SHM_FD) == NULL, "the fd variable is removed after mapping");
    ok(fcntl(fd, F_GETFD) < 0, "the inherited fd is closed after mapping");
    if (w) {
        atomic_store(&w->slots[2].requests, 7);
        is_int((long long)atomic_load(&shm->slots[2].requests), 7,
               "both mappings see the same memory");
        m8_shm_unmap(w);
    }
    m8_shm_unmap(shm);

    /* A slot past nslots, a bad fd, garbage: private memory, never a crash. */
    shm = m8_shm_create(2, &fd, err, sizeof err);
    snprintf(buf, sizeof buf, "%d", fd);
    setenv(M8_ENV_SHM_FD, buf, 1);
    setenv(M8_ENV_SHM_SLOT, "2", 1);
    w = m8_shm_attach_env(&slot);
    ok(w && w->nslots == 1 && atomic_load(&w->daemon_pid) == 0,
       "a slot one past nslots: the worker works alone (private segment)");
    m8_shm_unmap(w);
    m8_shm_unmap(shm);
    setenv(M8_ENV_SHM_FD, "not-a-number", 1);
    setenv(M8_ENV_SHM_SLOT, "0", 1);
    w = m8_shm_attach_env(&slot);
    ok(w && w->nslots == 1, "a non-numeric fd: private segment");
    m8_shm_unmap(w);
    int pfd[2];
    if (pipe(pfd) == 0) {
        snprintf(buf, sizeof buf, "%d", pfd[0]);
        setenv(M8_ENV_SHM_FD, buf, 1);
        w = m8_shm_attach_env(&slot);
        ok(w && w->nslots == 1, "an fd that is not a segment (a pipe): private segment");
        m8_shm_unmap(w);
        close(pfd[1]);
    }
    unsetenv(M8_ENV_SHM_FD);
    unsetenv(M8_ENV_SHM_SLOT);
    w = m8_shm_attach_env(&slot);
    ok(w && w->nslots == 1 && slot == &w->slots[0], "no variables: private segment, slot 0");
    m8_shm_unmap(w);
}

typedef struct {
    m8_shm_slot *slot;
    int n;
} series_arg;

static void *series_thread(void *p)
{
    series_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        char ep[32];
        snprintf(ep, sizeof ep, "/api/r%d", i % 10);
        m8_shm_series *s = m8_shm_series_get(a->slot, "GET", ep, 200);
        if (s)
            atomic_fetch_add(&s->count, 1);
    }
    return NULL;
}

static void test_series(void)
{
    m8_shm *shm = m8_shm_private();
    m8_shm_slot *slot = &shm->slots[0];
    m8_shm_series *a = m8_shm_series_get(slot, "GET", "/api/x", 200);
    m8_shm_series *b = m8_shm_series_get(slot, "GET", "/api/x", 200);
    ok(a && a == b, "the same labels give the same series");
    ok(m8_shm_series_get(slot, "GET", "/api/x", 404) != a, "another status is another series");
    char longep[300];
    memset(longep, 'e', sizeof longep - 1);
    longep[sizeof longep - 1] = '\0';
    m8_shm_series *l = m8_shm_series_get(slot, "GET", longep, 200);
    ok(l && strlen(l->endpoint) == M8_SHM_LABEL_BYTES - 1,
       "a long endpoint label is cut to the field");
    ok(m8_shm_series_get(slot, "GET", longep, 200) == l, "... the same way each time");

    /* 8 threads x 1000 lookups over 10 labels: 10 series, exact counts */
    m8_shm *p2 = m8_shm_private();
    pthread_t t[8];
    series_arg arg = {&p2->slots[0], 1000};
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, series_thread, &arg);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    is_int(atomic_load(&p2->slots[0].nseries), 10, "8 racing threads create each series once");
    unsigned long long sum = 0;
    for (uint32_t i = 0; i < atomic_load(&p2->slots[0].nseries); i++)
        sum += atomic_load(&p2->slots[0].series[i].count);
    is_int((long long)sum, 8000, "and every increment is counted");
    m8_shm_unmap(p2);

    /* fill the table: exactly M8_SHM_SERIES fit, the next one is dropped */
    m8_shm *p3 = m8_shm_private();
    int got = 0;
    for (unsigned i = 0; i < M8_SHM_SERIES; i++)
        got += m8_shm_series_get(&p3->slots[0], "GET", "/f", 100 + i) != NULL;
    is_int(got, M8_SHM_SERIES, "M8_SHM_SERIES series fit in a slot");
    ok(m8_shm_series_get(&p3->slots[0], "GET", "/f", 999) == NULL, "one more series is refused");
    is_int((long long)atomic_load(&p3->slots[0].series_dropped), 1, "... and counted as dropped");
    ok(m8_shm_series_get(&p3->slots[0], "GET", "/f", 100) != NULL,
       "existing series still work when the table is full");
    m8_shm_unmap(p3);

    /* a dead owner's half-written series is never read, and a new owner
     * keeps the counters */
    atomic_store(&slot->series[atomic_load(&slot->nseries)].state, M8_SERIES_CLAIMED);
    atomic_fetch_add(&slot->nseries, 1);
    atomic_fetch_add(&a->count, 5);
    m8_shm_slot_claim(slot, 4242, 3);
    is_int(atomic_load(&slot->series[atomic_load(&slot->nseries) - 1].state), M8_SERIES_DEAD,
           "claiming a slot marks the dead owner's half-written series dead");
    is_int((long long)atomic_load(&a->count), 5, "claiming a slot keeps its counters");
    is_int(atomic_load(&slot->pid), 4242, "the slot has its new owner");
    is_int(atomic_load(&slot->generation), 3, "... and generation");
    ok(m8_shm_series_get(slot, "GET", "/api/y", 200) != NULL,
       "a new series after a takeover does not wait on a dead entry");
    m8_shm_unmap(shm);
}

static void test_threads(void)
{
    m8_shm *shm = m8_shm_private();
    m8_shm_slot *slot = &shm->slots[0];
    m8_shm_busy(slot, "GET", "/api/slow");
    ok(atomic_load(&slot->threads[0].busy_since_ns) != 0, "busy marks the thread with a time");
    is_str(slot->threads[0].what, "GET /api/slow", "busy records what the thread runs");
    m8_shm_idle(slot);
    is_int((long long)atomic_load(&slot->threads[0].busy_since_ns), 0, "idle clears it");
    m8_shm_busy(NULL, "GET", "/x");
    m8_shm_idle(NULL);
    ok(atomic_load(&slot->threads[0].busy_since_ns) == 0 &&
           !strcmp(slot->threads[0].what, "GET /api/slow"),
       "a NULL slot is a no-op (the real slot is left as it was)");
    m8_shm_unmap(shm);
}

static void test_jwks(void)
{
    m8_shm *shm = m8_shm_private();
    m8_buf out;
    m8_buf_init(&out, M8_MAX_JWKS_BYTES);
    uint64_t gen = 0;
    is_int(m8_shm_jwks_get(shm, &gen, &out), 0, "no document yet: nothing new");
    is_int(m8_shm_jwks_put(shm, "{\"keys\":[]}", 11), 0, "put a document");
    is_int(m8_shm_jwks_get(shm, &gen, &out), 1, "a new generation is reported");
    is_str(out.data, "{\"keys\":[]}", "... with the document");
    is_int(m8_shm_jwks_get(shm, &gen, &out), 0, "the same generation again: nothing new");
    char *big = malloc(M8_MAX_JWKS_BYTES + 1);
    memset(big, ' ', M8_MAX_JWKS_BYTES + 1);
    is_int(m8_shm_jwks_put(shm, big, M8_MAX_JWKS_BYTES), 0, "a document of exactly the cap fits");
    is_int(m8_shm_jwks_put(shm, big, M8_MAX_JWKS_BYTES + 1), M8_ETOOBIG,
           "one byte more is refused");
    free(big);
    m8_buf_free(&out);
    m8_shm_unmap(shm);
}

static void test_robust_lock(void)
{
    char err[256];
    int fd = -1;
    m8_shm *shm = m8_shm_create(2, &fd, err, sizeof err);
    pid_t pid = fork();
    if (pid == 0) {
        m8_shm_lock(shm);
        _exit(0); /* dies holding the lock */
    }
    int st;
    waitpid(pid, &st, 0);
    alarm(10); /* a wedged lock fails the test instead of hanging it */
    m8_shm_lock(shm);
    ok(1, "a process that died holding the lock does not wedge the next one");
    m8_shm_unlock(shm);
    m8_shm_lock(shm);
    ok(1, "the recovered lock works again");
    m8_shm_unlock(shm);
    alarm(0);

    /* cross-process visibility of counters */
    pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 1000; i++)
            atomic_fetch_add(&shm->slots[1].requests, 1);
        _exit(0);
    }
    for (int i = 0; i < 1000; i++)
        atomic_fetch_add(&shm->slots[1].requests, 1);
    waitpid(pid, &st, 0);
    is_int((long long)atomic_load(&shm->slots[1].requests), 2000,
           "two processes adding to one slot: every add counted");
    m8_shm_unmap(shm);
    close(fd);
}

/* ------------------------------------------------------------ garbage */

/* A worker (a forked child here) writes garbage over every count and index
 * of the segment; the daemon's readers (metrics, status loops, series,
 * JWKS, unmap) stay inside the mapping.  Run under ASan too. */
static void test_garbage(void)
{
    char err[256];
    int fd = -1;
    m8_shm *shm = m8_shm_create(4, &fd, err, sizeof err);
    if (!ok(shm != NULL, "garbage: a segment of 4 slots %s", err))
        return;
    size_t size = m8_shm_size(4);
    m8_shm_series *mine = m8_shm_series_get(&shm->slots[0], "GET", "/mine", 200);
    pid_t pid = fork();
    if (pid == 0) {
        shm->nslots = 0xffffffffu;
        shm->size = 4096; /* unmapping by this would leave the rest mapped */
        atomic_store(&shm->jwks.generation, 99);
        shm->jwks.len = 0xffffffffu;
        for (uint32_t k = 0; k < 4; k++) {
            m8_shm_slot *sl = &shm->slots[k];
            atomic_store(&sl->nthreads, 0xfffffff0u);
            memset(sl->threads[0].what, 'W', sizeof sl->threads[0].what);
            atomic_store(&sl->threads[0].busy_since_ns, 1);
            for (uint32_t i = 1; i < M8_SHM_SERIES; i++) {
                m8_shm_series *se = &sl->series[i];
                memset(se->method, 'M', sizeof se->method); /* no NUL */
                memset(se->endpoint, 'E', sizeof se->endpoint);
                atomic_store(&se->state, i % 7 ? M8_SERIES_READY : M8_SERIES_CLAIMED);
            }
        }
        atomic_store(&shm->slots[0].nseries, 0xffffffffu);
        atomic_store(&shm->slots[1].nseries, M8_SHM_SERIES + 1000);
        atomic_store(&shm->slots[2].series[0].state, M8_SERIES_CLAIMED); /* never finished */
        atomic_store(&shm->slots[2].nseries, 1);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    ok(WIFEXITED(st) && shm->nslots == 0xffffffffu, "garbage: another process wrote garbage");
    is_int(m8_shm_nslots(shm), 4, "garbage: the slot count comes from this process's memory");
    alarm(20);
    m8_settings s = {0};
    s.metrics_enabled = true;
    s.api_prefix = (char *)"/api";
    m8_buf out;
    m8_buf_init(&out, M8_MAX_RESPONSE_BYTES);
    is_int(m8_metrics_render(shm, &s, &out), 0,
           "garbage: metrics render over 4 slots, not 2^32 (no read past the mapping)");
    ok(out.data && strstr(out.data, "endpoint=\"/mine\"") != NULL,
       "garbage: the real series is still rendered");
    ok(out.data && strstr(out.data, "MMMMMMMMMMMM") == NULL,
       "garbage: an unterminated label is cut at its field");
    m8_buf_free(&out);
    ok(m8_shm_series_get(&shm->slots[0], "GET", "/mine", 200) == mine,
       "garbage: a huge nseries is clamped: the existing series is found");
    ok(m8_shm_series_get(&shm->slots[1], "GET", "/other", 200) == NULL,
       "garbage: ... and no series is claimed past the table");
    ok(m8_shm_series_get(&shm->slots[2], "GET", "/stuck", 200) != NULL,
       "garbage: an entry left half-written does not hang the owner");
    uint64_t gen = 0;
    m8_buf j;
    m8_buf_init(&j, M8_MAX_JWKS_BYTES);
    ok(m8_shm_jwks_get(shm, &gen, &j) < 0 && gen == 0,
       "garbage: a JWKS length past the area is refused");
    m8_buf_free(&j);
    m8_shm_slot_claim(&shm->slots[3], getpid(), 1);
    is_int(atomic_load(&shm->slots[3].nthreads), 0, "garbage: claiming a slot resets its counts");
    alarm(0);
    char *last = (char *)shm + size - 1;
    m8_shm_unmap(shm);
    unsigned char vec;
    errno = 0;
    ok(mincore((void *)((uintptr_t)last & ~(uintptr_t)4095), 4096, &vec) != 0 && errno == ENOMEM,
       "garbage: unmapping uses this process's size: nothing of the segment stays mapped");
    close(fd);
}

/* A header that lies about its slot count, with a size to match: a new
 * worker must not map past the end of the memfd. */
static void test_lying_header(void)
{
    char err[256];
    int fd = -1;
    m8_shm *shm = m8_shm_create(2, &fd, err, sizeof err);
    if (!shm)
        return;
    shm->nslots = 200;
    shm->size = m8_shm_size(200);
    char buf[32];
    snprintf(buf, sizeof buf, "%d", fd);
    setenv(M8_ENV_SHM_FD, buf, 1);
    setenv(M8_ENV_SHM_SLOT, "150", 1);
    m8_log_set_level(M8_LOG_CRITICAL);
    m8_shm_slot *slot = NULL;
    m8_shm *w = m8_shm_attach_env(&slot);
    m8_log_set_level(M8_LOG_INFO);
    ok(w && m8_shm_nslots(w) == 1 && slot == &w->slots[0],
       "a header claiming more slots than the memfd holds: the worker works alone");
    m8_shm_unmap(w);
    unsetenv(M8_ENV_SHM_SLOT);
    m8_shm_unmap(shm);
}

int main(void)
{
    test_create();
    test_attach_env();
    test_series();
    test_threads();
    test_jwks();
    test_robust_lock();
    test_garbage();
    test_lying_header();
    return done_testing();
}
