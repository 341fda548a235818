/* metrics_series.c - the snapshot of every slot's request series and their
 * sums per label set, which the Prometheus text is rendered from. */
#include "builtin/metrics_int.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ aggregation */

static int aggmap_init(aggmap *m, size_t cap)
{
    size_t tsz = 16;
    while (tsz < cap * 2)
        tsz <<= 1;
    m->v = calloc(cap ? cap : 1, sizeof *m->v);
    m->tab = calloc(tsz, sizeof *m->tab);
    m->n = 0;
    m->cap = cap;
    m->mask = tsz - 1;
    return m->v && m->tab ? 0 : M8_ENOMEM;
}

static void aggmap_free(aggmap *m)
{
    free(m->v);
    free(m->tab);
    memset(m, 0, sizeof *m);
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* field separator */
}

/* The entry of (method, endpoint, status), created empty; NULL when full
 * (cannot happen: every map is sized for all the series it sums). */
static agg *aggmap_get(aggmap *m, const char *method, const char *endpoint, unsigned status)
{
    uint64_t h = fnv(fnv(0xcbf29ce484222325ull, method), endpoint);
    h = (h ^ status) * 0x100000001b3ull;
    for (size_t i = (size_t)(h ^ (h >> 32)) & m->mask;; i = (i + 1) & m->mask) {
        uint32_t t = m->tab[i];
        if (t == 0) {
            if (m->n == m->cap)
                return NULL;
            agg *a = &m->v[m->n++];
            memset(a, 0, sizeof *a);
            a->method = method;
            a->endpoint = endpoint;
            a->status = status;
            m->tab[i] = (uint32_t)m->n;
            return a;
        }
        agg *a = &m->v[t - 1];
        if (a->status == status && strcmp(a->method, method) == 0 &&
            strcmp(a->endpoint, endpoint) == 0)
            return a;
    }
}

static void agg_add(agg *dst, const agg *src)
{
    dst->count += src->count;
    dst->dur_ns += src->dur_ns;
    for (size_t i = 0; i < M8_SHM_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    if (src->created > 0 && (dst->created <= 0 || src->created < dst->created))
        dst->created = src->created;
}

static int agg_cmp(const void *pa, const void *pb)
{
    const agg *a = pa, *b = pb;
    int c = strcmp(a->endpoint, b->endpoint);
    if (!c)
        c = strcmp(a->method, b->method);
    if (!c)
        c = (a->status > b->status) - (a->status < b->status);
    return c;
}

static void copy_label(char *dst, const char *src, size_t size)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}
void m8__metrics_series_free(series_set *ss)
{
    free(ss->lab);
    aggmap_free(&ss->full);
    aggmap_free(&ss->hist);
    aggmap_free(&ss->errs);
    aggmap_free(&ss->status);
}

int m8__metrics_series_collect(const m8_shm *shm, uint32_t nslots, series_set *ss)
{
    size_t total = 0;
    for (uint32_t k = 0; k < nslots; k++) {
        uint32_t ns = atomic_load_explicit(&shm->slots[k].nseries, memory_order_acquire);
        total += ns < M8_SHM_SERIES ? ns : M8_SHM_SERIES;
    }
    ss->lab = calloc(total ? total : 1, sizeof *ss->lab);
    if (!ss->lab || aggmap_init(&ss->full, total) < 0)
        return M8_ENOMEM;
    size_t used = 0;
    for (uint32_t k = 0; k < nslots && used < total; k++) {
        const m8_shm_slot *sl = &shm->slots[k];
        uint32_t ns = atomic_load_explicit(&sl->nseries, memory_order_acquire);
        if (ns > M8_SHM_SERIES)
            ns = M8_SHM_SERIES;
        for (uint32_t i = 0; i < ns && used < total; i++) {
            const m8_shm_series *se = &sl->series[i];
            if (atomic_load_explicit(&se->state, memory_order_acquire) != M8_SERIES_READY)
                continue;
            agg one = {0};
            /* buckets (acquire) before count: see m8_metrics_record */
            for (size_t b = 0; b < M8_SHM_BUCKETS; b++)
                one.buckets[b] = atomic_load_explicit(&se->buckets[b], memory_order_acquire);
            one.count = atomic_load_explicit(&se->count, memory_order_relaxed);
            one.dur_ns = atomic_load_explicit(&se->duration_ns, memory_order_relaxed);
            one.created = se->created;
            labels *l = &ss->lab[used++];
            copy_label(l->method, se->method, sizeof l->method);
            copy_label(l->endpoint, se->endpoint, sizeof l->endpoint);
            agg *a = aggmap_get(&ss->full, l->method, l->endpoint, se->status);
            if (!a)
                return M8_ENOMEM;
            agg_add(a, &one);
        }
    }
    size_t n = ss->full.n;
    if (aggmap_init(&ss->hist, n) < 0 || aggmap_init(&ss->errs, n) < 0 ||
        aggmap_init(&ss->status, n) < 0)
        return M8_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const agg *f = &ss->full.v[i];
        agg *a = aggmap_get(&ss->hist, f->method, f->endpoint, 0);
        agg *s = aggmap_get(&ss->status, "", "", f->status);
        if (!a || !s)
            return M8_ENOMEM;
        agg_add(a, f);
        agg_add(s, f);
        if (f->status >= 400) {
            agg *e = aggmap_get(&ss->errs, f->method, f->endpoint, f->status / 100);
            if (!e)
                return M8_ENOMEM;
            agg_add(e, f);
        }
    }
    aggmap *maps[] = {&ss->full, &ss->hist, &ss->errs, &ss->status};
    for (size_t i = 0; i < M8_ARRAY_LEN(maps); i++)
        qsort(maps[i]->v, maps[i]->n, sizeof(agg), agg_cmp);
    return 0;
}
