/* revtable.c - the revocation table in shm->revocation (revtable.h). */
#include "auth/revtable.h"

#include <limits.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "shm/shm.h"

#define RT_MAGIC 0x54564552u /* "REVT" */
#define RT_VERSION 1u
#define RT_KEY_BYTES 32u

typedef struct rt_digest {
    uint64_t w[2]; /* 16 bytes of keyed BLAKE2b; all zero = empty slot */
} rt_digest;

typedef struct rt_jti {
    rt_digest id;
    double until; /* 0: until evicted */
    uint64_t seq; /* insertion order (eviction victim: the oldest) */
} rt_jti;

typedef struct rt_user {
    rt_digest id;
    long long since;    /* tokens with iat < since are revoked; 0 = none */
    uint64_t watermark; /* highest generation applied; 0 = none */
    uint64_t seq;
    uint64_t applied[M8_REVTABLE_EVENT_IDS]; /* event-id digests at exactly watermark */
    uint32_t napplied, next_applied;
} rt_user;

typedef struct rt_cache {
    rt_digest id;  /* the jti */
    uint64_t user; /* first half of the user's digest */
    uint64_t generation;
    double stored, expires;
} rt_cache;

typedef struct rt_table {
    _Atomic uint32_t magic; /* stored last (release): the key is ready */
    uint32_t version;
    _Atomic int32_t writer; /* pid inside a write; found set by the next holder = died */
    uint32_t pad;
    uint64_t seq;
    uint64_t evictions, recoveries;
    unsigned char key[RT_KEY_BYTES];
    _Alignas(64) rt_jti jtis[M8_REVTABLE_JTIS];
    rt_user users[M8_REVTABLE_USERS];
    rt_cache cache[M8_REVTABLE_CACHE];
} rt_table;

_Static_assert(sizeof(rt_table) <= M8_SHM_REVOCATION_BYTES, "revocation table fits shm");
_Static_assert(offsetof(rt_jti, id) == 0 && offsetof(rt_user, id) == 0 &&
                   offsetof(rt_cache, id) == 0,
               "every entry begins with its digest");

void (*m8_revtable_write_hook)(void);

static rt_table *table_of(m8_shm *shm)
{
    return (rt_table *)(void *)shm->revocation;
}

static void clear_tables(rt_table *t)
{
    memset(t->jtis, 0, sizeof t->jtis);
    memset(t->users, 0, sizeof t->users);
    memset(t->cache, 0, sizeof t->cache);
}

/* Under the lock: lays the table out once; clears it when the previous
 * holder died between write_begin and write_end. */
static void settle(rt_table *t)
{
    if (atomic_load_explicit(&t->magic, memory_order_relaxed) != RT_MAGIC ||
        t->version != RT_VERSION) {
        memset(t, 0, offsetof(rt_table, jtis));
        clear_tables(t);
        randombytes_buf(t->key, sizeof t->key);
        t->version = RT_VERSION;
        atomic_store_explicit(&t->magic, RT_MAGIC, memory_order_release);
        return;
    }
    int32_t w = atomic_load_explicit(&t->writer, memory_order_relaxed);
    if (w != 0) {
        m8_log(M8_LOG_WARNING,
               "revocation table: process %d died while writing it; the table "
               "is cleared (every token is checked with the issuer again)",
               (int)w);
        clear_tables(t);
        t->recoveries++;
        atomic_store_explicit(&t->writer, 0, memory_order_relaxed);
    }
}

static rt_table *lock(m8_shm *shm)
{
    rt_table *t = table_of(shm);
    m8_shm_lock(shm);
    settle(t);
    return t;
}

static void unlock(m8_shm *shm)
{
    m8_shm_unlock(shm);
}

static void write_begin(rt_table *t)
{
    atomic_store_explicit(&t->writer, (int32_t)getpid(), memory_order_relaxed);
    if (m8_revtable_write_hook)
        m8_revtable_write_hook();
}

static void write_end(rt_table *t)
{
    atomic_store_explicit(&t->writer, 0, memory_order_release);
}

void m8_revtable_init(m8_shm *shm)
{
    if (atomic_load_explicit(&table_of(shm)->magic, memory_order_acquire) == RT_MAGIC)
        return;
    lock(shm);
    unlock(shm);
}

/* The keyed digest of an id (the key is fixed once the table exists, so this
 * runs outside the lock).  Never all zero. */
static rt_digest digest(m8_shm *shm, const char *id)
{
    m8_revtable_init(shm);
    rt_table *t = table_of(shm);
    rt_digest d;
    crypto_generichash((unsigned char *)&d, sizeof d, (const unsigned char *)id, strlen(id), t->key,
                       sizeof t->key);
    if (d.w[0] == 0 && d.w[1] == 0)
        d.w[0] = 1;
    return d;
}

static bool dig_eq(const rt_digest *a, const rt_digest *b)
{
    return a->w[0] == b->w[0] && a->w[1] == b->w[1];
}

static bool dig_empty(const rt_digest *a)
{
    return a->w[0] == 0 && a->w[1] == 0;
}

static size_t slot_of(const rt_digest *d, size_t cap, size_t i)
{
    return (size_t)((d->w[1] + i) % cap);
}

size_t m8_revtable_home(m8_shm *shm, const char *id, size_t cap)
{
    rt_digest d = digest(shm, id);
    return slot_of(&d, cap, 0);
}

/* ------------------------------------------------------------ windows */

/* Each of the three tables is an array of entries that begin with their
 * digest; an id lives in the M8_REVTABLE_WINDOW slots from its home. */
typedef struct rt_kind {
    size_t offset; /* of the array in rt_table */
    size_t size, cap;
    /* Whether an entry may be taken for a new id. */
    bool (*is_free)(const void *e, double now);
    /* Whether a goes before b when a full window must give one up. */
    bool (*goes_first)(const void *a, const void *b);
} rt_kind;

static rt_digest *window_at(rt_table *t, const rt_kind *k, const rt_digest *d, size_t i)
{
    unsigned char *base = (unsigned char *)t + k->offset;
    return (rt_digest *)(void *)(base + slot_of(d, k->cap, i) * k->size);
}

/* The entry holding d in its window, or NULL. */
static void *window_find(rt_table *t, const rt_kind *k, const rt_digest *d)
{
    for (size_t i = 0; i < M8_REVTABLE_WINDOW; i++) {
        rt_digest *e = window_at(t, k, d, i);
        if (dig_eq(e, d))
            return e;
    }
    return NULL;
}

/* The entry holding d (*found set), else the first free entry of the
 * window, else the one that goes first (counted as an eviction). */
static void *window_claim(rt_table *t, const rt_kind *k, const rt_digest *d, double now,
                          bool *found)
{
    rt_digest *free_slot = NULL, *victim = NULL;
    *found = false;
    for (size_t i = 0; i < M8_REVTABLE_WINDOW; i++) {
        rt_digest *e = window_at(t, k, d, i);
        if (dig_eq(e, d)) {
            *found = true;
            return e;
        }
        if (!free_slot && k->is_free(e, now))
            free_slot = e;
        if (!victim || k->goes_first(e, victim))
            victim = e;
    }
    if (!free_slot) {
        free_slot = victim;
        t->evictions++;
    }
    return free_slot;
}

/* ------------------------------------------------------------ jtis */

static bool jti_live(const rt_jti *e, double now)
{
    return !dig_empty(&e->id) && (e->until == 0 || e->until > now);
}

static bool jti_free(const void *e, double now)
{
    return !jti_live(e, now);
}

static bool jti_goes_first(const void *a, const void *b)
{
    return ((const rt_jti *)a)->seq < ((const rt_jti *)b)->seq;
}

static const rt_kind jtis = {offsetof(rt_table, jtis), sizeof(rt_jti), M8_REVTABLE_JTIS, jti_free,
                             jti_goes_first};

static rt_jti *jti_find(rt_table *t, const rt_digest *d, double now)
{
    rt_jti *e = window_find(t, &jtis, d);
    return e && jti_live(e, now) ? e : NULL;
}

static void jti_put(rt_table *t, const rt_digest *d, double until, double now)
{
    bool found;
    rt_jti *e = window_claim(t, &jtis, d, now, &found);
    if (found) {
        /* A live revocation only lengthens (0 is forever). */
        if (!jti_live(e, now) || until == 0 || (e->until != 0 && until > e->until))
            e->until = until;
        return;
    }
    e->id = *d;
    e->until = until;
    e->seq = ++t->seq;
}

/* ------------------------------------------------------------ users */

static bool user_free(const void *e, double now)
{
    (void)now;
    return dig_empty(&((const rt_user *)e)->id);
}

static bool user_goes_first(const void *a, const void *b)
{
    return ((const rt_user *)a)->seq < ((const rt_user *)b)->seq;
}

static const rt_kind users = {offsetof(rt_table, users), sizeof(rt_user), M8_REVTABLE_USERS,
                              user_free, user_goes_first};

static rt_user *user_find(rt_table *t, const rt_digest *d)
{
    return window_find(t, &users, d);
}

/* Found or made (the oldest record of a full window goes: insertion order,
 * as doc/wire.md#revocation-table bounds the watermarks). */
static rt_user *user_get(rt_table *t, const rt_digest *d)
{
    bool found;
    rt_user *e = window_claim(t, &users, d, 0, &found);
    if (found)
        return e;
    memset(e, 0, sizeof *e);
    e->id = *d;
    e->seq = ++t->seq;
    return e;
}

/* ------------------------------------------------------------ cache */

static bool cache_live(const rt_cache *e, double now)
{
    /* A clock set back by more than a second also ends an entry. */
    return !dig_empty(&e->id) && now < e->expires && now >= e->stored - 1.0;
}

static bool cache_free(const void *e, double now)
{
    return !cache_live(e, now);
}

static bool cache_goes_first(const void *a, const void *b)
{
    return ((const rt_cache *)a)->expires < ((const rt_cache *)b)->expires;
}

static const rt_kind cache = {offsetof(rt_table, cache), sizeof(rt_cache), M8_REVTABLE_CACHE,
                              cache_free, cache_goes_first};

static void cache_evict_user(rt_table *t, uint64_t user, uint64_t below_generation)
{
    for (size_t i = 0; i < M8_REVTABLE_CACHE; i++) {
        rt_cache *e = &t->cache[i];
        if (!dig_empty(&e->id) && e->user == user &&
            (below_generation == 0 || e->generation < below_generation))
            memset(e, 0, sizeof *e);
    }
}

/* Every entry of the jti goes (one, unless another process wrote the
 * segment badly); bounded by the window either way. */
static void cache_evict_jti(rt_table *t, const rt_digest *d)
{
    for (size_t i = 0; i < M8_REVTABLE_WINDOW; i++) {
        rt_cache *e = window_find(t, &cache, d);
        if (!e)
            break;
        memset(e, 0, sizeof *e);
    }
}

static void cache_put(rt_table *t, const rt_digest *d, uint64_t user, uint64_t generation,
                      double ttl, double now)
{
    bool found;
    rt_cache *e = window_claim(t, &cache, d, now, &found);
    e->id = *d;
    e->user = user;
    e->generation = generation;
    e->stored = now;
    e->expires = now + ttl;
}

/* ------------------------------------------------------------ API */

/* Revoked by what the table knows (jti, since-time)? */
static bool revoked(rt_table *t, const rt_digest *jd, const rt_user *u, long long iat, double now)
{
    if (jti_find(t, jd, now))
        return true;
    return u && u->since != 0 && iat < u->since;
}

m8_revt_verdict m8_revtable_check(m8_shm *shm, const char *jti, const char *user, long long iat,
                                  bool use_cache, double now)
{
    if (!shm || !jti || !user)
        return M8_REVT_UNKNOWN;
    rt_digest jd = digest(shm, jti), ud = digest(shm, user);
    rt_table *t = lock(shm);
    rt_user *u = user_find(t, &ud);
    m8_revt_verdict v = M8_REVT_UNKNOWN;
    if (revoked(t, &jd, u, iat, now)) {
        v = M8_REVT_REVOKED;
    } else if (use_cache) {
        rt_cache *e = window_find(t, &cache, &jd);
        if (e && !cache_live(e, now)) {
            write_begin(t);
            memset(e, 0, sizeof *e); /* expired entries are deleted on read */
            write_end(t);
        } else if (e && e->user == ud.w[0] && (!u || e->generation >= u->watermark)) {
            v = M8_REVT_ACTIVE;
        }
    }
    unlock(shm);
    return v;
}

m8_revt_verdict m8_revtable_record_active(m8_shm *shm, const char *jti, const char *user,
                                          long long iat, uint64_t generation, double ttl,
                                          double now)
{
    if (!shm || !jti || !user)
        return M8_REVT_UNKNOWN;
    rt_digest jd = digest(shm, jti), ud = digest(shm, user);
    rt_table *t = lock(shm);
    rt_user *u = user_find(t, &ud);
    m8_revt_verdict v = M8_REVT_ACTIVE;
    if (revoked(t, &jd, u, iat, now) || (u && generation < u->watermark)) {
        v = M8_REVT_REVOKED;
    } else if (ttl > 0) {
        write_begin(t);
        cache_put(t, &jd, ud.w[0], generation, ttl, now);
        write_end(t);
    }
    unlock(shm);
    return v;
}

void m8_revtable_revoke_jti(m8_shm *shm, const char *jti, double until, double now)
{
    if (!shm || !jti)
        return;
    rt_digest jd = digest(shm, jti);
    rt_table *t = lock(shm);
    write_begin(t);
    jti_put(t, &jd, until, now);
    cache_evict_jti(t, &jd);
    write_end(t);
    unlock(shm);
}

static void set_since(rt_user *u, long long since)
{
    if (since > u->since)
        u->since = since;
}

void m8_revtable_revoke_user(m8_shm *shm, const char *user, long long since, double now)
{
    (void)now;
    if (!shm || !user)
        return;
    rt_digest ud = digest(shm, user);
    rt_table *t = lock(shm);
    write_begin(t);
    if (since != 0)
        set_since(user_get(t, &ud), since);
    cache_evict_user(t, ud.w[0], 0);
    write_end(t);
    unlock(shm);
}

/* The counts below live in the shared segment, which every process of the
 * pool can write: each is read once into a local and bounded before it
 * indexes anything. */
static uint32_t applied_count(const rt_user *u)
{
    uint32_t n = *(const volatile uint32_t *)&u->napplied;
    return n < M8_REVTABLE_EVENT_IDS ? n : M8_REVTABLE_EVENT_IDS;
}

static bool applied_has(const rt_user *u, uint64_t e)
{
    uint32_t n = applied_count(u);
    for (uint32_t i = 0; i < n; i++) {
        if (u->applied[i] == e)
            return true;
    }
    return false;
}

static void applied_add(rt_user *u, uint64_t e)
{
    uint32_t n = applied_count(u);
    if (n < M8_REVTABLE_EVENT_IDS) {
        u->applied[n] = e;
        u->napplied = n + 1;
        return;
    }
    uint32_t next = *(const volatile uint32_t *)&u->next_applied % M8_REVTABLE_EVENT_IDS;
    u->applied[next] = e; /* the oldest goes */
    u->napplied = M8_REVTABLE_EVENT_IDS;
    u->next_applied = (next + 1) % M8_REVTABLE_EVENT_IDS;
}

int m8_revtable_session_revoked(m8_shm *shm, const m8_revt_event *ev, double now)
{
    if (!shm || !ev || !ev->user_id)
        return M8_EINVAL;
    rt_digest ud = digest(shm, ev->user_id);
    rt_digest jd = {{0, 0}};
    if (ev->jti)
        jd = digest(shm, ev->jti);
    uint64_t eid = 0;
    if (ev->event_id) {
        rt_digest e = digest(shm, ev->event_id);
        eid = e.w[0] ? e.w[0] : 1;
    }
    rt_table *t = lock(shm);
    write_begin(t);
    int applied = 1;
    if (ev->generation == 0) {
        /* v1: every cached answer of the user goes, even for a single jti. */
        cache_evict_user(t, ud.w[0], 0);
    } else {
        rt_user *u = user_get(t, &ud);
        if (u->watermark != 0 && ev->generation < u->watermark) {
            applied = 0;
        } else if (u->watermark != 0 && ev->generation == u->watermark) {
            if (eid && applied_has(u, eid))
                applied = 0;
            else if (eid)
                applied_add(u, eid);
        } else {
            u->watermark = ev->generation;
            u->napplied = u->next_applied = 0;
            if (eid)
                applied_add(u, eid);
        }
        if (applied) {
            if (ev->jti)
                cache_evict_jti(t, &jd);
            else
                cache_evict_user(t, ud.w[0], ev->generation);
        }
    }
    if (applied) {
        if (ev->jti)
            jti_put(t, &jd, ev->jti_until, now);
        else if (ev->since != 0)
            set_since(user_get(t, &ud), ev->since);
    }
    write_end(t);
    unlock(shm);
    return applied;
}

void m8_revtable_evict_user(m8_shm *shm, const char *user)
{
    if (!shm || !user)
        return;
    rt_digest ud = digest(shm, user);
    rt_table *t = lock(shm);
    write_begin(t);
    cache_evict_user(t, ud.w[0], 0);
    write_end(t);
    unlock(shm);
}

void m8_revtable_flush(m8_shm *shm)
{
    if (!shm)
        return;
    rt_table *t = lock(shm);
    write_begin(t);
    memset(t->cache, 0, sizeof t->cache);
    write_end(t);
    unlock(shm);
}

void m8_revtable_clear(m8_shm *shm)
{
    if (!shm)
        return;
    rt_table *t = lock(shm);
    write_begin(t);
    clear_tables(t);
    write_end(t);
    unlock(shm);
}

uint32_t *m8_revtable_user_counts(m8_shm *shm, const char *user)
{
    if (!shm || !user)
        return NULL;
    rt_digest ud = digest(shm, user);
    rt_table *t = lock(shm);
    rt_user *u = user_find(t, &ud);
    unlock(shm);
    _Static_assert(offsetof(rt_user, next_applied) == offsetof(rt_user, napplied) + 4,
                   "the two counts are adjacent");
    return u ? &u->napplied : NULL;
}

void m8_revtable_stats(m8_shm *shm, double now, m8_revt_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!shm)
        return;
    rt_table *t = lock(shm);
    for (size_t i = 0; i < M8_REVTABLE_JTIS; i++)
        out->jtis += jti_live(&t->jtis[i], now);
    for (size_t i = 0; i < M8_REVTABLE_USERS; i++)
        out->users += !dig_empty(&t->users[i].id);
    for (size_t i = 0; i < M8_REVTABLE_CACHE; i++)
        out->cached += cache_live(&t->cache[i], now);
    out->evictions = t->evictions;
    out->recoveries = t->recoveries;
    unlock(shm);
}
