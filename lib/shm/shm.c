/* shm.c - the shared segment (see shm.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "shm/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

uint64_t m8_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t page_size(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096u;
}

size_t m8_shm_size(uint32_t nslots)
{
    size_t n = sizeof(m8_shm) + (size_t)nslots * sizeof(m8_shm_slot);
    size_t p = page_size();
    return (n + p - 1) / p * p;
}

/* What this process knows of a mapping, in a private page just below it:
 * every process of the pool can write the segment, so its slot count and
 * size are taken from here, never from the segment's header. */
#define LOCAL_MAGIC 0x6c6d386du /* "m8ml" */
typedef struct shm_local {
    uint32_t magic;
    uint32_t nslots;
    size_t size; /* bytes of the segment (the mapping is one page more) */
} shm_local;

static shm_local *local_of(const m8_shm *shm)
{
    return (shm_local *)(void *)((char *)(uintptr_t)shm - page_size());
}

uint32_t m8_shm_nslots(const m8_shm *shm)
{
    if (!shm)
        return 0;
    const shm_local *l = local_of(shm);
    return l->magic == LOCAL_MAGIC ? l->nslots : 0;
}

/* Maps size bytes of fd (MAP_SHARED), or private anonymous memory when fd
 * is -1, one page above a private page that records nslots and size. */
static m8_shm *map_segment(int fd, size_t size, uint32_t nslots)
{
    size_t page = page_size();
    void *base =
        mmap(NULL, page + size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    void *seg = (char *)base + page;
    if (fd >= 0 &&
        mmap(seg, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
        munmap(base, page + size);
        return NULL;
    }
    shm_local *l = base;
    l->magic = LOCAL_MAGIC;
    l->nslots = nslots;
    l->size = size;
    return seg;
}

static int init_lock(pthread_mutex_t *m, bool shared)
{
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0)
        return -1;
    int rc = 0;
    if (shared) {
        rc |= pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        rc |= pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    }
    rc |= pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return rc ? -1 : 0;
}

static void init_header(m8_shm *shm, uint32_t nslots, size_t size)
{
    shm->magic = M8_SHM_MAGIC;
    shm->version = M8_SHM_VERSION;
    shm->size = size;
    shm->nslots = nslots;
    shm->created = m8_now_wall();
    atomic_store(&shm->ready, 0);
}

m8_shm *m8_shm_create(uint32_t nslots, int *fd_out, char *err, size_t errlen)
{
    if (nslots == 0 || nslots > M8_SHM_MAX_SLOTS) {
        snprintf(err, errlen, "shared segment: %u slots is out of range 1..%u", nslots,
                 M8_SHM_MAX_SLOTS);
        return NULL;
    }
    size_t size = m8_shm_size(nslots);
    int fd = memfd_create("fcgim8-shm", 0); /* inherited by the workers on purpose */
    if (fd < 0) {
        snprintf(err, errlen, "shared segment: memfd_create: %s", strerror(errno));
        return NULL;
    }
    if (ftruncate(fd, (off_t)size) != 0) {
        snprintf(err, errlen, "shared segment: ftruncate %zu bytes: %s", size, strerror(errno));
        close(fd);
        return NULL;
    }
    m8_shm *shm = map_segment(fd, size, nslots);
    if (!shm) {
        snprintf(err, errlen, "shared segment: mmap %zu bytes: %s", size, strerror(errno));
        close(fd);
        return NULL;
    }
    init_header(shm, nslots, size);
    if (init_lock(&shm->lock, true) != 0) {
        snprintf(err, errlen, "shared segment: cannot create a robust process-shared mutex");
        m8_shm_unmap(shm);
        close(fd);
        return NULL;
    }
    atomic_store(&shm->daemon_pid, (int32_t)getpid());
    *fd_out = fd;
    return shm;
}

m8_shm *m8_shm_private(void)
{
    size_t size = m8_shm_size(1);
    m8_shm *shm = map_segment(-1, size, 1);
    if (!shm)
        return NULL;
    init_header(shm, 1, size);
    init_lock(&shm->lock, false);
    m8_shm_slot_claim(&shm->slots[0], getpid(), 0);
    return shm;
}

void m8_shm_unmap(m8_shm *shm)
{
    if (!shm)
        return;
    shm_local *l = local_of(shm);
    if (l->magic == LOCAL_MAGIC)
        munmap(l, page_size() + l->size);
}

m8_shm *m8_shm_attach_env(m8_shm_slot **slot_out)
{
    const char *fds = getenv(M8_ENV_SHM_FD), *slots = getenv(M8_ENV_SHM_SLOT);
    long long fd = -1, slot = -1;
    if (fds && slots) {
        if (m8_parse_ll(fds, 0, 1 << 20, &fd) != 0 ||
            m8_parse_ll(slots, 0, M8_SHM_MAX_SLOTS - 1, &slot) != 0) {
            m8_log(M8_LOG_WARNING, "%s/%s are not numbers: working alone", M8_ENV_SHM_FD,
                   M8_ENV_SHM_SLOT);
            fd = -1;
        }
    }
    if (fd >= 0) {
        /* Only the leading fields: the whole header holds megabytes (the
         * JWKS and revocation areas) and must never land on a stack. */
        unsigned char lead[offsetof(m8_shm, nslots) + sizeof(uint32_t)];
        uint32_t magic = 0, version = 0, nslots = 0;
        uint64_t size = 0;
        ssize_t n = pread((int)fd, lead, sizeof lead, 0);
        struct stat fst;
        if (fstat((int)fd, &fst) != 0)
            n = -1;
        if (n == (ssize_t)sizeof lead) {
            memcpy(&magic, lead + offsetof(m8_shm, magic), sizeof magic);
            memcpy(&version, lead + offsetof(m8_shm, version), sizeof version);
            memcpy(&size, lead + offsetof(m8_shm, size), sizeof size);
            memcpy(&nslots, lead + offsetof(m8_shm, nslots), sizeof nslots);
        }
        m8_shm *shm = NULL;
        if (magic == M8_SHM_MAGIC && version == M8_SHM_VERSION && nslots <= M8_SHM_MAX_SLOTS &&
            size == m8_shm_size(nslots) && (uint64_t)slot < nslots && fst.st_size >= 0 &&
            (uint64_t)fst.st_size >= size) /* no SIGBUS past its end */
            shm = map_segment((int)fd, (size_t)size, nslots);
        close((int)fd);
        unsetenv(M8_ENV_SHM_FD);
        if (shm) {
            *slot_out = &shm->slots[slot];
            m8_shm_slot_claim(*slot_out, getpid(), atomic_load(&shm->generation));
            return shm;
        }
        m8_log(M8_LOG_WARNING,
               "the supervisor's shared segment (fd %lld, slot %lld) is not "
               "usable by this build (layout %u): working alone",
               fd, slot, M8_SHM_VERSION);
    }
    m8_shm *shm = m8_shm_private();
    *slot_out = shm ? &shm->slots[0] : NULL;
    return shm;
}

void m8_shm_slot_claim(m8_shm_slot *slot, pid_t pid, uint32_t generation)
{
    uint32_t n = atomic_load(&slot->nseries);
    if (n > M8_SHM_SERIES)
        n = M8_SHM_SERIES;
    for (uint32_t i = 0; i < n; i++) {
        /* Entries counted but never finished by a dead owner. */
        uint32_t st = atomic_load(&slot->series[i].state);
        if (st == M8_SERIES_FREE || st == M8_SERIES_CLAIMED)
            atomic_store(&slot->series[i].state, M8_SERIES_DEAD);
    }
    for (uint32_t i = 0; i < M8_SHM_THREADS; i++)
        atomic_store(&slot->threads[i].busy_since_ns, 0);
    atomic_store(&slot->nthreads, 0);
    atomic_store(&slot->requests, 0);
    atomic_store(&slot->issuer_streams, 0); /* a gauge: the dead owner's streams are gone */
    atomic_store(&slot->started_ns, m8_mono_ns());
    atomic_store(&slot->generation, generation);
    atomic_store(&slot->state, M8_SLOT_STARTING);
    atomic_store(&slot->pid, (int32_t)pid);
}

void m8_shm_slot_release(m8_shm_slot *slot)
{
    for (uint32_t i = 0; i < M8_SHM_THREADS; i++)
        atomic_store(&slot->threads[i].busy_since_ns, 0);
    atomic_store(&slot->issuer_streams, 0);
    atomic_store(&slot->pid, 0);
    atomic_store(&slot->state, M8_SLOT_FREE);
}

/* ------------------------------------------------------------ threads */

static _Thread_local m8_shm_slot *tl_slot;
static _Thread_local int tl_index = -1;

static int thread_index(m8_shm_slot *slot)
{
    if (tl_slot != slot) {
        tl_slot = slot;
        uint32_t i = atomic_fetch_add(&slot->nthreads, 1);
        tl_index = i < M8_SHM_THREADS ? (int)i : -1;
    }
    return tl_index;
}

void m8_shm_busy(m8_shm_slot *slot, const char *method, const char *what)
{
    if (!slot)
        return;
    int i = thread_index(slot);
    if (i < 0)
        return;
    m8_shm_thread *t = &slot->threads[i];
    /* "METHOD PATH", cut to the field (no printf: once per request) */
    const char *parts[2] = {method ? method : "-", what ? what : "-"};
    size_t o = 0;
    for (int k = 0; k < 2; k++) {
        if (k && o < sizeof t->what - 1)
            t->what[o++] = ' ';
        size_t n = strnlen(parts[k], sizeof t->what - 1 - o);
        memcpy(t->what + o, parts[k], n);
        o += n;
    }
    t->what[o] = '\0';
    uint64_t now = m8_mono_ns();
    atomic_store_explicit(&t->busy_since_ns, now ? now : 1, memory_order_release);
}

void m8_shm_idle(m8_shm_slot *slot)
{
    if (!slot)
        return;
    int i = thread_index(slot);
    if (i >= 0)
        atomic_store_explicit(&slot->threads[i].busy_since_ns, 0, memory_order_release);
}

/* ------------------------------------------------------------ series */

/* Bounded by the fields: another process may have left them unterminated. */
static bool series_is(const m8_shm_series *s, const char *method, const char *endpoint,
                      unsigned status)
{
    return s->status == status && strncmp(s->method, method, sizeof s->method) == 0 &&
           strncmp(s->endpoint, endpoint, sizeof s->endpoint) == 0;
}

/* Yields while a series is being filled by another thread of the owner: a
 * few microseconds; an entry left half-written (by garbage in the segment)
 * is skipped after this many. */
#define SERIES_WAIT_YIELDS 10000

m8_shm_series *m8_shm_series_get(m8_shm_slot *slot, const char *method, const char *endpoint,
                                 unsigned status)
{
    m8_shm_series *s = m8_shm_series_claim(slot, method, endpoint, status, M8_SHM_SERIES);
    if (!s && slot)
        atomic_fetch_add(&slot->series_dropped, 1);
    return s;
}

m8_shm_series *m8_shm_series_claim(m8_shm_slot *slot, const char *method, const char *endpoint,
                                   unsigned status, uint32_t limit)
{
    if (!slot)
        return NULL;
    if (limit > M8_SHM_SERIES)
        limit = M8_SHM_SERIES;
    /* Labels longer than a field are cut, the same way by every writer. */
    char m[M8_SHM_METHOD_BYTES], e[M8_SHM_LABEL_BYTES];
    snprintf(m, sizeof m, "%s", method ? method : "");
    snprintf(e, sizeof e, "%s", endpoint ? endpoint : "");
    for (;;) {
        uint32_t n = atomic_load_explicit(&slot->nseries, memory_order_acquire);
        if (n > M8_SHM_SERIES)
            n = M8_SHM_SERIES;
        for (uint32_t i = 0; i < n; i++) {
            m8_shm_series *s = &slot->series[i];
            uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
            for (int y = 0;
                 (st == M8_SERIES_FREE || st == M8_SERIES_CLAIMED) && y < SERIES_WAIT_YIELDS; y++) {
                /* counted by another thread of ours that is still filling it */
                sched_yield();
                st = atomic_load_explicit(&s->state, memory_order_acquire);
            }
            if (st == M8_SERIES_READY && series_is(s, m, e, status))
                return s;
        }
        if (n >= limit)
            return NULL;
        /* Claim entry n; if another thread took it first, look again. */
        uint32_t expect = n;
        if (!atomic_compare_exchange_strong(&slot->nseries, &expect, n + 1))
            continue;
        m8_shm_series *s = &slot->series[n];
        atomic_store(&s->state, M8_SERIES_CLAIMED);
        memcpy(s->method, m, sizeof m);
        memcpy(s->endpoint, e, sizeof e);
        s->status = status;
        s->created = m8_now_wall();
        atomic_store_explicit(&s->state, M8_SERIES_READY, memory_order_release);
        return s;
    }
}

/* ------------------------------------------------------------ JWKS */

int m8_shm_jwks_put(m8_shm *shm, const char *doc, size_t len)
{
    if (len > M8_MAX_JWKS_BYTES)
        return M8_ETOOBIG;
    m8_shm_jwks *j = &shm->jwks;
    atomic_fetch_add_explicit(&j->seq, 1, memory_order_acq_rel); /* odd: writing */
    atomic_thread_fence(memory_order_release);
    memcpy(j->doc, doc, len);
    j->len = (uint32_t)len;
    atomic_fetch_add_explicit(&j->generation, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&j->seq, 1, memory_order_release); /* even: done */
    return 0;
}

int m8_shm_jwks_get(m8_shm *shm, uint64_t *have_gen, m8_buf *out)
{
    m8_shm_jwks *j = &shm->jwks;
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t s1 = atomic_load_explicit(&j->seq, memory_order_acquire);
        if (s1 & 1) {
            sched_yield();
            continue;
        }
        uint64_t gen = atomic_load_explicit(&j->generation, memory_order_relaxed);
        if (gen == *have_gen)
            return 0;
        uint32_t len = *(volatile uint32_t *)&j->len; /* read once, then bounded */
        if (len > M8_MAX_JWKS_BYTES)
            continue;
        m8_buf_reset(out);
        if (m8_buf_append(out, j->doc, len) != 0)
            return M8_ENOMEM;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&j->seq, memory_order_relaxed) != s1)
            continue;
        *have_gen = gen;
        return 1;
    }
    return M8_EAGAIN;
}

/* ------------------------------------------------------------ lock */

void m8_shm_lock(m8_shm *shm)
{
    int rc = pthread_mutex_lock(&shm->lock);
    if (rc == EOWNERDEAD) {
        /* The holder died inside its critical section; the protected data
         * is kept consistent by its writers (each update is one step). */
        m8_log(M8_LOG_WARNING, "shared segment: a process died holding the lock; recovered");
        pthread_mutex_consistent(&shm->lock);
    }
}

void m8_shm_unlock(m8_shm *shm)
{
    pthread_mutex_unlock(&shm->lock);
}
