/* shm.h - the shared segment: one memfd created by fcgim8d and mapped by
 * every worker (doc/design.md#shared-segment).  It stores bytes, counters
 * and flags that other modules give meaning to; it knows nothing of HTTP.
 *
 * Without a supervisor (spawn-fcgi, mod_fcgid, CGI, --listen) the same
 * layout lives in private memory with one slot, so a worker works alone.
 *
 * Concurrency: there are no cross-process locks on any hot path.
 *   - A worker slot is written by the one process that owns it (its threads
 *     use atomic adds); everyone may read it.
 *   - The JWKS document is written by one writer (the daemon's sidecar)
 *     under a sequence counter; readers retry on a torn read.
 *   - m8_shm_lock() is a robust process-shared mutex for tables several
 *     processes write (the revocation table): a holder that dies is
 *     detected and the lock recovered, so it never wedges the others.
 *
 * Layout versioning: a worker refuses (and falls back to private memory)
 * a segment whose magic, version or size does not match its own build.
 *
 * Trust: every worker can write the whole segment, so no process takes a
 * count or index from it on faith.  The slot count and mapping size live in
 * process-local memory (m8_shm_nslots); every other count (nseries,
 * nthreads, the JWKS length, the revocation table's) is read once and
 * bounded by its array before it indexes anything, and strings are read
 * within their fields. */
#ifndef M8_SHM_H
#define M8_SHM_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "core/common.h"

#define M8_SHM_MAGIC 0x384d3846u /* "F8M8" */
#define M8_SHM_VERSION 3u
#define M8_SHM_MAX_SLOTS 256u              /* worker slots (2 x max workers + 2 is used) */
#define M8_SHM_THREADS 64u                 /* threads per worker whose state is reported */
#define M8_SHM_SERIES 128u                 /* request metric series per slot */
#define M8_SHM_LABEL_BYTES 96u             /* endpoint label (route template), NUL included */
#define M8_SHM_METHOD_BYTES 12u            /* method label, NUL included */
#define M8_SHM_WHAT_BYTES 104u             /* "METHOD /route" of a busy thread, NUL included */
#define M8_SHM_BUCKETS 11u                 /* latency histogram buckets before +Inf */
#define M8_SHM_AUTH_REASONS 16u            /* token validation failure reasons counted */
#define M8_SHM_COUNTERS 32u                /* named event counters (m8_shm_counter) */
#define M8_SHM_REVOCATION_BYTES (1u << 20) /* the revocation table's area (revtable.c) */
#define M8_SHM_EVENT_TYPES 8u              /* event-stream event types counted (events.c) */
#define M8_SHM_EVENT_RESULTS 3u            /* delivered, dropped_malformed, dropped_sig_fail */
#define M8_SHM_ISSUER_COUNTERS 256u /* fcgim8-issuer's labelled counters (issuer_metrics.h) */
#define M8_SHM_ISSUER_HISTS 8u      /* fcgim8-issuer's histograms */
#define M8_SHM_HIST_BUCKETS 16u     /* buckets of one of them before +Inf */

/* Environment of a worker started by fcgim8d. */
#define M8_ENV_SHM_FD "FCGIM8_SHM_FD"
#define M8_ENV_SHM_SLOT "FCGIM8_SHM_SLOT"
#define M8_ENV_MAX_REQUESTS "FCGIM8_MAX_REQUESTS"

/* Slot states. */
enum {
    M8_SLOT_FREE = 0,
    M8_SLOT_STARTING = 1, /* process forked, not ready yet */
    M8_SLOT_READY = 2,    /* serving */
    M8_SLOT_RETIRING = 3, /* draining (max-requests, reload, scale down, stop) */
};

/* Series states. */
enum { M8_SERIES_FREE = 0, M8_SERIES_CLAIMED = 1, M8_SERIES_READY = 2, M8_SERIES_DEAD = 3 };

/* Named counters (pool restarts by cause and event counters). */
enum {
    M8_CTR_RESTART_CRASH = 0, /* a worker died abnormally */
    M8_CTR_RESTART_MAX_REQUESTS,
    M8_CTR_RESTART_TIMEOUT,    /* killed by --request-timeout */
    M8_CTR_RESTART_RELOAD,     /* retired by SIGHUP */
    M8_CTR_RESTART_SCALE_DOWN, /* retired by the dynamic pool */
    M8_CTR_SLOW_REQUESTS,      /* requests past --slow-log */
    M8_CTR_RELOADS_OK,
    M8_CTR_RELOADS_FAILED,
    M8_CTR__END,
    /* not worker restarts: event stream and revocation (doc/metrics.md#auth) */
    M8_CTR_EVSTREAM_RECONNECTS = M8_CTR__END,
    M8_CTR_EVSTREAM_GAPS,
    M8_CTR_REVOCATION_HIT,
    M8_CTR_REVOCATION_MISS,
    M8_CTR_REVOCATION_FAIL_OPEN,
    M8_CTR_REVOCATION_FAIL_CLOSED,
    M8_CTR__ALL
};

_Static_assert(M8_CTR__ALL <= M8_SHM_COUNTERS, "shm counters");

/* One request metric series: (method, endpoint, status) of one slot. */
typedef struct m8_shm_series {
    _Atomic uint32_t state;
    uint32_t status;
    char method[M8_SHM_METHOD_BYTES];
    char endpoint[M8_SHM_LABEL_BYTES];
    double created; /* wall-clock seconds, for the _created series */
    _Atomic uint64_t count;
    _Atomic uint64_t duration_ns;             /* sum */
    _Atomic uint64_t buckets[M8_SHM_BUCKETS]; /* per bucket (not cumulative) */
} m8_shm_series;

typedef struct m8_shm_thread {
    _Atomic uint64_t busy_since_ns; /* CLOCK_MONOTONIC ns; 0 = idle */
    char what[M8_SHM_WHAT_BYTES];   /* written before busy_since (release) */
} m8_shm_thread;

typedef struct m8_shm_slot {
    _Atomic int32_t pid;         /* owner; 0 = none */
    _Atomic uint32_t state;      /* M8_SLOT_* */
    _Atomic uint32_t generation; /* pool generation (SIGHUP reload) */
    _Atomic uint32_t nthreads;   /* threads that registered */
    _Atomic uint64_t requests;   /* served by the current owner */
    _Atomic uint64_t started_ns; /* owner's start (monotonic) */
    _Atomic uint32_t nseries;    /* series[0..nseries) claimed */
    _Atomic uint64_t series_dropped;
    _Atomic uint64_t auth_failures[M8_SHM_AUTH_REASONS]; /* by m8_jwt_reason index */
    _Atomic int64_t issuer_streams; /* gauge: event streams this worker serves (reset on claim) */
    m8_shm_thread threads[M8_SHM_THREADS];
    m8_shm_series series[M8_SHM_SERIES];
} m8_shm_slot;

/* A histogram: observations per bucket (not cumulative; the last one is
 * +Inf), their count and their sum in nanoseconds. */
typedef struct m8_shm_hist {
    _Atomic uint64_t buckets[M8_SHM_HIST_BUCKETS + 1];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
} m8_shm_hist;

typedef struct m8_shm_jwks {
    _Atomic uint32_t served;     /* 1: fcgim8d's sidecar fetches for every worker */
    _Atomic uint64_t requests;   /* bumped by a worker that needs a fresh set */
    _Atomic uint64_t answers;    /* bumped by the sidecar after each request or fetch */
    _Atomic uint64_t seq;        /* odd while being written */
    _Atomic uint64_t generation; /* bumped on every new document */
    _Atomic uint64_t fetched_ns; /* monotonic time the set in use was fetched (0: none) */
    uint32_t len;
    char doc[M8_MAX_JWKS_BYTES];
} m8_shm_jwks;

typedef struct m8_shm {
    uint32_t magic, version;
    uint64_t size; /* bytes of the whole mapping */
    uint32_t nslots;
    _Atomic uint32_t ready;       /* the pool is ready (health leaves initializing) */
    _Atomic int32_t daemon_pid;   /* 0 without a supervisor */
    double created;               /* wall clock at creation */
    _Atomic uint64_t cache_epoch; /* bumped to flush every worker's caches */
    /* pool gauges, written by the daemon */
    _Atomic uint32_t workers_target;
    _Atomic uint32_t generation;
    _Atomic uint32_t listen_queue;
    _Atomic uint32_t listen_queue_max;
    _Atomic uint64_t counters[M8_SHM_COUNTERS];
    _Atomic uint32_t evstream_connected; /* gauge: the event stream is up */
    _Atomic uint64_t events[M8_SHM_EVENT_TYPES][M8_SHM_EVENT_RESULTS]; /* by type, result */
    /* fcgim8-issuer's counters and histograms, by the indexes that
     * builtin/issuer_metrics.h gives them (doc/issuer.md#metrics) */
    _Atomic uint64_t issuer[M8_SHM_ISSUER_COUNTERS];
    m8_shm_hist issuer_hists[M8_SHM_ISSUER_HISTS];
    pthread_mutex_t lock; /* robust, process-shared: m8_shm_lock */
    m8_shm_jwks jwks;
    /* The revocation table: bytes whose layout revtable.c owns (revoked
     * jtis, user-wide revocations with their time, cached introspection
     * answers), written under m8_shm_lock by the sidecar and the workers. */
    _Alignas(64) unsigned char revocation[M8_SHM_REVOCATION_BYTES];
    m8_shm_slot slots[]; /* nslots */
} m8_shm;

/* Bytes of a segment with nslots worker slots. */
M8_INTERNAL size_t m8_shm_size(uint32_t nslots);

/* The slot count of a mapping made by this process (m8_shm_create,
 * m8_shm_private, m8_shm_attach_env), from process-local memory: loops
 * over shm->slots use this, never shm->nslots, which any process of the
 * pool can overwrite.  0 for NULL. */
M8_INTERNAL uint32_t m8_shm_nslots(const m8_shm *shm);

/* Daemon: creates a memfd segment (not close-on-exec: workers inherit it).
 * Returns the mapping and its fd in *fd_out, or NULL with err filled. */
M8_INTERNAL m8_shm *m8_shm_create(uint32_t nslots, int *fd_out, char *err, size_t errlen);
/* Private segment with one slot (no supervisor); slot 0 is owned. */
M8_INTERNAL m8_shm *m8_shm_private(void);
M8_INTERNAL void m8_shm_unmap(m8_shm *shm);

/* Worker: maps the segment named by FCGIM8_SHM_FD / FCGIM8_SHM_SLOT when
 * both are set and valid, else a private one (with a warning when the
 * variables were set but unusable).  *slot_out receives the owned slot.
 * The fd is closed after mapping. */
M8_INTERNAL m8_shm *m8_shm_attach_env(m8_shm_slot **slot_out);

/* Takes over a slot for process pid: marks its half-written series dead,
 * resets requests and thread states; keeps the counters (they are summed
 * and must never go down). */
M8_INTERNAL void m8_shm_slot_claim(m8_shm_slot *slot, pid_t pid, uint32_t generation);
M8_INTERNAL void m8_shm_slot_release(m8_shm_slot *slot);

/* Worker threads.  m8_shm_thread_index() gives the calling thread's index
 * in slot (registered on first use; -1 past M8_SHM_THREADS). */
M8_INTERNAL void m8_shm_busy(m8_shm_slot *slot, const char *method, const char *what);
M8_INTERNAL void m8_shm_idle(m8_shm_slot *slot);

/* Metric series of slot for (method, endpoint, status): found or claimed.
 * NULL when the slot is full (counted in series_dropped).  Lock-free for
 * the owner's threads. */
M8_INTERNAL m8_shm_series *m8_shm_series_get(m8_shm_slot *slot, const char *method,
                                             const char *endpoint, unsigned status);
/* Same, but a new series is claimed only while fewer than limit exist (an
 * existing one is found anywhere), and NULL is not counted: the caller
 * decides (m8_metrics_record keeps the rest for its overflow series). */
M8_INTERNAL m8_shm_series *m8_shm_series_claim(m8_shm_slot *slot, const char *method,
                                               const char *endpoint, unsigned status,
                                               uint32_t limit);

/* JWKS document: one writer; readers copy it out when its generation
 * differs from *have_gen (returns 1 and updates *have_gen), 0 when
 * unchanged, negative on error. */
M8_INTERNAL int m8_shm_jwks_put(m8_shm *shm, const char *doc, size_t len);
M8_INTERNAL int m8_shm_jwks_get(m8_shm *shm, uint64_t *have_gen, m8_buf *out);

/* Robust process-shared lock (EOWNERDEAD recovered). */
M8_INTERNAL void m8_shm_lock(m8_shm *shm);
M8_INTERNAL void m8_shm_unlock(m8_shm *shm);

/* CLOCK_MONOTONIC in nanoseconds. */
M8_INTERNAL uint64_t m8_mono_ns(void);

#endif
