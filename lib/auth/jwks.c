/* jwks.c - the JWKS resolver (jwks.h; doc/wire.md#kid, doc/wire.md#jwks and
 * doc/wire.md#key-filtering).
 *
 * Two deliberate narrowings of the Python resolver: one unusable JWK is
 * skipped and logged instead of aborting the whole refresh (doc/wire.md#key-filtering skips weak
 * keys, and one odd key should not freeze a rotation), and the throttle's
 * "last attempt" starts at "never" rather than at monotonic time 0. */
#include "auth/jwks.h"

#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwt.h"
#include "core/json.h"
#include "core/log.h"
#include "net/httpc.h"
#include "shm/shm.h"

/* ------------------------------------------------------------ parsing */

void m8_keyset_clear(m8_keyset *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->n; i++)
        m8_key_unref(ks->keys[i]);
    free(ks->keys);
    ks->keys = NULL;
    ks->n = 0;
}

static void skip(m8_jwks_skip_fn on_skip, void *data, size_t *skipped, size_t index,
                 const char *kid, const char *reason)
{
    (*skipped)++;
    if (on_skip)
        on_skip(data, index, kid, reason);
}

int m8_jwks_parse_ex(const char *json, size_t len, m8_alg alg, m8_keyset *out, size_t *skipped,
                     m8_jwks_skip_fn on_skip, void *data)
{
    size_t nskip = 0;
    if (skipped)
        *skipped = 0;
    if (!out || (!json && len))
        return M8_EINVAL;
    out->keys = NULL;
    out->n = 0;
    if (alg != M8_ALG_RS256 && alg != M8_ALG_ES256)
        return M8_EINVAL;
    if (len > M8_MAX_JWKS_BYTES)
        return M8_ETOOBIG;
    json_object *doc = m8_json_parse(json, len, M8_MAX_JSON_DEPTH, NULL, NULL);
    if (!doc || !json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        return M8_EPARSE;
    }
    json_object *arr = NULL;
    if (!json_object_object_get_ex(doc, "keys", &arr)) {
        json_object_put(doc); /* no "keys": an empty set, not an error */
        return 0;
    }
    if (!json_object_is_type(arr, json_type_array)) {
        json_object_put(doc);
        return M8_EPARSE;
    }
    size_t count = json_object_array_length(arr);
    m8_key **keys = calloc(M8_MAX_JWKS_KEYS, sizeof *keys);
    if (!keys) {
        json_object_put(doc);
        return M8_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (n == M8_MAX_JWKS_KEYS) {
            char why[96];
            snprintf(why, sizeof why, "more than %u keys in the set; the rest is ignored",
                     M8_MAX_JWKS_KEYS);
            for (size_t j = i; j < count; j++)
                skip(on_skip, data, &nskip, j, NULL, why);
            break;
        }
        json_object *jwk = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(jwk, json_type_object)) {
            skip(on_skip, data, &nskip, i, NULL, "not a JSON object");
            continue;
        }
        json_object *kidv = NULL;
        const char *kid = NULL;
        if (json_object_object_get_ex(jwk, "kid", &kidv)) {
            if (!json_object_is_type(kidv, json_type_string)) {
                skip(on_skip, data, &nskip, i, NULL, "kid is not a string");
                continue;
            }
            size_t klen = (size_t)json_object_get_string_len(kidv);
            kid = json_object_get_string(kidv);
            if (klen > M8_MAX_KID_BYTES) {
                char why[64];
                snprintf(why, sizeof why, "kid longer than %u bytes", M8_MAX_KID_BYTES);
                skip(on_skip, data, &nskip, i, NULL, why);
                continue;
            }
            if (strlen(kid) != klen) {
                skip(on_skip, data, &nskip, i, NULL, "kid contains a NUL character");
                continue;
            }
        }
        char err[256];
        err[0] = '\0';
        m8_key *k = m8_key_from_jwk(jwk, alg, err, sizeof err);
        if (!k) {
            skip(on_skip, data, &nskip, i, kid, err[0] ? err : "unusable key");
            continue;
        }
        size_t at = n;
        if (k->kid) {
            for (size_t j = 0; j < n; j++) {
                if (keys[j]->kid && strcmp(keys[j]->kid, k->kid) == 0) {
                    at = j; /* a duplicate kid: the last one wins */
                    break;
                }
            }
        }
        if (at < n)
            m8_key_unref(keys[at]);
        else
            n++;
        keys[at] = k;
    }
    json_object_put(doc);
    if (n == 0) {
        free(keys);
        keys = NULL;
    }
    out->keys = keys;
    out->n = n;
    if (skipped)
        *skipped = nskip;
    return 0;
}

int m8_jwks_parse(const char *json, size_t len, m8_alg alg, m8_keyset *out, size_t *skipped)
{
    return m8_jwks_parse_ex(json, len, alg, out, skipped, NULL, NULL);
}

/* ------------------------------------------------------------ resolver */

struct m8_jwks {
    pthread_mutex_t mu;  /* guards everything below */
    pthread_cond_t done; /* signalled when a fetch ends */
    char *uri;
    char *uri_log; /* uri without userinfo */
    m8_alg alg;
    double ttl_s, cooldown_s, timeout_s;
    size_t max_bytes;
    m8_keyset set;
    bool have;         /* a fetch has succeeded at least once */
    double expires_at; /* monotonic */
    bool attempted;    /* false: "last attempt" is never */
    double last_attempt;
    bool fetching;
    atomic_ulong generation; /* read without the lock (every cached token check) */
    /* m8_jwks_current without the lock: the segment generation of the set
     * in use (shared mode), or when the set's TTL ends (own fetches, in
     * monotonic microseconds) */
    atomic_uint_least64_t shm_gen_seen;
    atomic_llong expires_us;
    unsigned long fetches;
    m8_shm *shm;        /* shared mode: fcgim8d's sidecar fetches, we read the segment */
    uint64_t shm_gen;   /* generation of the segment's document we parsed */
    double max_stale_s; /* a set older than this is not used (503) */
    double fetched_at;  /* monotonic time the set in use was fetched */
    bool stale_logged;  /* "too old" logged once per stale period */
    m8_shm *report;     /* own fetches: their time goes to report->jwks.fetched_ns */
};

m8_jwks *m8_jwks_new(const char *uri, m8_alg alg, double ttl_s, double cooldown_s)
{
    if (!uri || (alg != M8_ALG_RS256 && alg != M8_ALG_ES256) || !(ttl_s >= 0.0) ||
        !(cooldown_s >= 0.0))
        return NULL;
    const char *colon = strchr(uri, ':');
    size_t slen = colon ? (size_t)(colon - uri) : 0;
    bool http =
        (slen == 4 && m8_memcaseeq(uri, 4, "http")) || (slen == 5 && m8_memcaseeq(uri, 5, "https"));
    if (!http || strncmp(colon, "://", 3) != 0 || colon[3] == '\0')
        return NULL;
    m8_jwks *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    size_t loglen = strlen(uri) + 1;
    r->uri = strdup(uri);
    r->uri_log = malloc(loglen);
    if (!r->uri || !r->uri_log || pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r->uri);
        free(r->uri_log);
        free(r);
        return NULL;
    }
    if (pthread_cond_init(&r->done, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        free(r->uri);
        free(r->uri_log);
        free(r);
        return NULL;
    }
    m8_http_display_url(uri, r->uri_log, loglen);
    r->alg = alg;
    r->ttl_s = ttl_s;
    r->cooldown_s = cooldown_s;
    r->timeout_s = M8_JWKS_TIMEOUT_S;
    r->max_bytes = M8_MAX_JWKS_BYTES;
    r->max_stale_s = M8_JWKS_MAX_STALE_S;
    return r;
}

void m8_jwks_free(m8_jwks *r)
{
    if (!r)
        return;
    m8_keyset_clear(&r->set);
    pthread_cond_destroy(&r->done);
    pthread_mutex_destroy(&r->mu);
    free(r->uri);
    free(r->uri_log);
    free(r);
}

void m8_jwks_set_fetch_limits(m8_jwks *r, double timeout_s, size_t max_bytes)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    if (timeout_s > 0.0 && isfinite(timeout_s))
        r->timeout_s = timeout_s;
    if (max_bytes > 0 && max_bytes <= M8_MAX_JWKS_BYTES)
        r->max_bytes = max_bytes;
    pthread_mutex_unlock(&r->mu);
}

void m8_jwks_set_max_stale(m8_jwks *r, double max_stale_s)
{
    if (!r || !(max_stale_s > 0.0) || !isfinite(max_stale_s))
        return;
    pthread_mutex_lock(&r->mu);
    r->max_stale_s = max_stale_s;
    pthread_mutex_unlock(&r->mu);
}

void m8_jwks_report_to(m8_jwks *r, m8_shm *shm)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->report = shm;
    pthread_mutex_unlock(&r->mu);
}

double m8_jwks_age(m8_jwks *r, double now)
{
    pthread_mutex_lock(&r->mu);
    double age = r->have ? now - r->fetched_at : -1.0;
    pthread_mutex_unlock(&r->mu);
    return r->have && age < 0.0 ? 0.0 : age;
}

/* True when the set in use is older than max_stale_s (lock held). */
static bool too_old(const m8_jwks *r, double now)
{
    return r->have && now - r->fetched_at > r->max_stale_s;
}

unsigned long m8_jwks_generation(m8_jwks *r)
{
    return atomic_load_explicit(&r->generation, memory_order_acquire);
}

bool m8_jwks_current(m8_jwks *r)
{
    if (r->shm)
        return atomic_load_explicit(&r->shm->jwks.generation, memory_order_acquire) ==
               atomic_load_explicit(&r->shm_gen_seen, memory_order_acquire);
    return m8_now_mono() * 1e6 < (double)atomic_load_explicit(&r->expires_us, memory_order_acquire);
}

unsigned long m8_jwks_fetches(m8_jwks *r)
{
    pthread_mutex_lock(&r->mu);
    unsigned long f = r->fetches;
    pthread_mutex_unlock(&r->mu);
    return f;
}

/* Looks kid up in ks (caller holds the lock); the key is borrowed. */
static m8_jwks_result lookup(const m8_keyset *ks, const char *kid, m8_key **key)
{
    *key = NULL;
    if (!kid) {
        if (ks->n == 1) {
            *key = ks->keys[0];
            return M8_JWKS_FOUND;
        }
        return ks->n == 0 ? M8_JWKS_NOT_FOUND : M8_JWKS_AMBIGUOUS;
    }
    for (size_t i = 0; i < ks->n; i++) {
        if (ks->keys[i]->kid && strcmp(ks->keys[i]->kid, kid) == 0) {
            *key = ks->keys[i];
            return M8_JWKS_FOUND;
        }
    }
    return M8_JWKS_NOT_FOUND;
}

/* Skipped JWKs logged per fetch before the rest is only counted. */
#define JWKS_SKIP_LOG_MAX 8

typedef struct skip_log {
    const char *uri;
    size_t n;
} skip_log;

static void log_skip(void *data, size_t index, const char *kid, const char *reason)
{
    skip_log *sl = data;
    if (sl->n++ >= JWKS_SKIP_LOG_MAX)
        return;
    m8_log(M8_LOG_WARNING, "JWKS key #%zu (kid=%.64s%s) from %s skipped: %s", index,
           kid ? kid : "none", kid && strlen(kid) > 64 ? "..." : "", sl->uri, reason);
}

/* GET uri: 0 with the body in *body (caller frees), or an error with why. */
static int fetch_body(const char *uri, double timeout_s, size_t max_bytes, m8_buf *body, char *why,
                      size_t whylen)
{
    m8_http_result res;
    int rc = m8_http_get(uri, timeout_s, max_bytes, &res);
    if (rc == M8_ETOOBIG) {
        snprintf(why, whylen, "response exceeds the %zu byte cap", max_bytes);
    } else if (rc) {
        snprintf(why, whylen, "%s: %s", m8_httpc_err_name(res.err),
                 res.error[0] ? res.error : m8_strerror(rc));
    } else if (res.status < 200 || res.status > 299) {
        snprintf(why, whylen, "HTTP status %ld", res.status);
        rc = M8_EIO;
    }
    if (rc) {
        m8_buf_free(&res.body);
        return rc;
    }
    *body = res.body;
    return 0;
}

/* Parses a fetched document into out, logging skipped keys. */
static int parse_body(const m8_buf *body, const char *uri_log, m8_alg alg, m8_keyset *out,
                      char *why, size_t whylen)
{
    size_t skipped = 0;
    skip_log sl = {.uri = uri_log};
    int rc = m8_jwks_parse_ex(body->data ? body->data : "", body->len, alg, out, &skipped, log_skip,
                              &sl);
    if (sl.n > JWKS_SKIP_LOG_MAX)
        m8_log(M8_LOG_WARNING, "JWKS from %s: %zu more keys skipped", uri_log,
               sl.n - JWKS_SKIP_LOG_MAX);
    if (rc)
        snprintf(why, whylen, "%s",
                 rc == M8_ENOMEM ? "out of memory" : "the body is not a JWKS JSON object");
    return rc;
}

/* One fetch, without the lock.  0 and a new set, or an error (logged). */
static int fetch(const char *uri, const char *uri_log, m8_alg alg, double timeout_s,
                 size_t max_bytes, m8_keyset *out, char *why, size_t whylen)
{
    m8_buf body;
    int rc = fetch_body(uri, timeout_s, max_bytes, &body, why, whylen);
    if (rc == 0) {
        rc = parse_body(&body, uri_log, alg, out, why, whylen);
        m8_buf_free(&body);
    }
    return rc;
}

int m8_jwks_fetch_document(const char *uri, m8_alg alg, double timeout_s, m8_buf *doc,
                           size_t *nkeys, char *why, size_t whylen)
{
    char log_uri[512];
    m8_http_display_url(uri, log_uri, sizeof log_uri);
    int rc = fetch_body(uri, timeout_s, M8_MAX_JWKS_BYTES, doc, why, whylen);
    if (rc)
        return rc;
    m8_keyset ks = {0};
    rc = parse_body(doc, log_uri, alg, &ks, why, whylen);
    if (nkeys)
        *nkeys = ks.n;
    m8_keyset_clear(&ks);
    if (rc)
        m8_buf_free(doc);
    return rc;
}

/* Shared mode: the segment's document, after asking the sidecar for a
 * fresh one unless the segment already holds one we have not parsed.
 * Waits for the sidecar's answer up to the fetch timeout. */
static int fetch_shared(m8_shm *shm, uint64_t have_gen, const char *uri_log, m8_alg alg,
                        double timeout_s, m8_keyset *out, uint64_t *gen_out, uint64_t *fetched_ns,
                        char *why, size_t whylen)
{
    m8_shm_jwks *j = &shm->jwks;
    if (atomic_load(&j->generation) == have_gen) {
        uint64_t answered = atomic_load(&j->answers);
        atomic_fetch_add(&j->requests, 1);
        double until = m8_now_mono() + timeout_s + 1.0;
        while (atomic_load(&j->answers) == answered && m8_now_mono() < until) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    uint64_t gen = have_gen;
    /* Read before the document: a newer document read with an older time
     * only looks older than it is. */
    *fetched_ns = atomic_load(&j->fetched_ns);
    m8_buf doc;
    m8_buf_init(&doc, M8_MAX_JWKS_BYTES);
    int rc = m8_shm_jwks_get(shm, &gen, &doc);
    if (rc == 0) {
        snprintf(why, whylen, "the supervisor has no newer key set");
        rc = M8_EAGAIN;
    } else if (rc == 1) {
        rc = parse_body(&doc, uri_log, alg, out, why, whylen);
        if (rc == 0)
            *gen_out = gen;
    } else {
        snprintf(why, whylen, "cannot read the shared key set");
    }
    m8_buf_free(&doc);
    return rc;
}

void m8_jwks_use_shared(m8_jwks *r, m8_shm *shm)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->shm = shm;
    r->shm_gen = 0;
    pthread_mutex_unlock(&r->mu);
}

/* One fetch attempt, counted against the cooldown.  Called and returns
 * with r->mu held; released while fetching.  A failed fetch keeps the set. */
static void refetch_ex(m8_jwks *r, double now, bool counts)
{
    r->fetching = true;
    if (counts) {
        r->attempted = true;
        r->last_attempt = now;
        r->fetches++;
    }
    char *uri = r->uri, *uri_log = r->uri_log;
    m8_alg alg = r->alg;
    double timeout_s = r->timeout_s;
    size_t max_bytes = r->max_bytes;
    pthread_mutex_unlock(&r->mu);

    m8_shm *shm = r->shm;
    uint64_t shm_gen = r->shm_gen, fetched_ns = 0;
    m8_keyset fresh_set = {0};
    char why[320];
    why[0] = '\0';
    int rc = shm ? fetch_shared(shm, shm_gen, uri_log, alg, timeout_s, &fresh_set, &shm_gen,
                                &fetched_ns, why, sizeof why)
                 : fetch(uri, uri_log, alg, timeout_s, max_bytes, &fresh_set, why, sizeof why);
    m8_keyset old = {0};

    pthread_mutex_lock(&r->mu);
    if (rc == 0) {
        old = r->set;
        r->set = fresh_set;
        r->have = true;
        r->stale_logged = false;
        if (shm) {
            /* The sidecar's fetch time (not when this worker first read
             * the set), at most now. */
            double at = (double)fetched_ns / 1e9;
            r->fetched_at = fetched_ns && at < now ? at : now;
        } else {
            r->fetched_at = now;
            if (r->report)
                atomic_store(&r->report->jwks.fetched_ns, m8_mono_ns());
        }
        /* shared: the sidecar keeps the TTL; a new document is seen below */
        r->expires_at = shm ? INFINITY : now + r->ttl_s;
        r->shm_gen = shm_gen;
        atomic_store_explicit(&r->shm_gen_seen, shm_gen, memory_order_release);
        atomic_store_explicit(&r->expires_us, shm ? LLONG_MAX : (long long)(r->expires_at * 1e6),
                              memory_order_release);
        atomic_fetch_add_explicit(&r->generation, 1, memory_order_release);
        m8_log(M8_LOG_INFO, "JWKS refreshed from %s: %zu keys", uri_log, r->set.n);
    } else if (r->have) {
        m8_log(M8_LOG_WARNING, "JWKS fetch from %s failed (%s); keeping %zu previous keys", uri_log,
               why, r->set.n);
    } else {
        m8_log(M8_LOG_WARNING, "JWKS fetch from %s failed (%s); no keys available", uri_log, why);
    }
    r->fetching = false;
    pthread_cond_broadcast(&r->done);
    m8_keyset_clear(&old); /* a reader holding one of these keys keeps its reference */
}

static void refetch(m8_jwks *r, double now)
{
    refetch_ex(r, now, true);
}

static bool throttled(const m8_jwks *r, double now)
{
    return r->attempted && now - r->last_attempt < r->cooldown_s;
}

/* The result for kid from the current set (lock held); a set older than
 * max_stale_s answers M8_JWKS_UNAVAILABLE. */
static m8_jwks_result answer(m8_jwks *r, const char *kid, double now, m8_key **key)
{
    if (too_old(r, now)) {
        if (!r->stale_logged)
            m8_log(M8_LOG_ERROR,
                   "JWKS from %s: the last key set was fetched %.0f s ago, more than "
                   "JWKS_MAX_STALE_SECONDS (%.0f): tokens are refused (503) until a fetch "
                   "succeeds",
                   r->uri_log, now - r->fetched_at, r->max_stale_s);
        r->stale_logged = true;
        return M8_JWKS_UNAVAILABLE;
    }
    m8_key *found = NULL;
    m8_jwks_result res = lookup(&r->set, kid, &found);
    if (res == M8_JWKS_FOUND)
        *key = m8_key_ref(found);
    else if (!r->have)
        res = M8_JWKS_UNAVAILABLE;
    return res;
}

m8_jwks_result m8_jwks_resolve(m8_jwks *r, const char *kid, double now, m8_key **key)
{
    *key = NULL;
    m8_key *found = NULL;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        bool fresh = r->have && now < r->expires_at && !too_old(r, now);
        if (r->shm && atomic_load(&r->shm->jwks.generation) != r->shm_gen)
            fresh = false; /* the sidecar published a newer set */
        m8_jwks_result res = lookup(&r->set, kid, &found);
        if (fresh && res == M8_JWKS_FOUND)
            break;
        if (r->fetching) {
            if (res == M8_JWKS_FOUND)
                break; /* cached, if stale: good enough while someone refreshes */
            pthread_cond_wait(&r->done, &r->mu);
            continue;
        }
        if (r->shm && atomic_load(&r->shm->jwks.generation) != r->shm_gen)
            refetch_ex(r, now, false); /* a newer shared set: reading it is no fetch */
        else if (!throttled(r, now))   /* else answer from the cache as it is */
            refetch(r, now);
        break;
    }
    m8_jwks_result res = answer(r, kid, now, key);
    pthread_mutex_unlock(&r->mu);
    return res;
}

m8_jwks_result m8_jwks_refresh(m8_jwks *r, const char *kid, double now, m8_key **key)
{
    *key = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->fetching) {
        while (r->fetching) /* a fetch under way is this refresh */
            pthread_cond_wait(&r->done, &r->mu);
    } else if (throttled(r, now)) {
        pthread_mutex_unlock(&r->mu);
        return M8_JWKS_NOT_FOUND;
    } else {
        refetch(r, now);
    }
    m8_jwks_result res = answer(r, kid, now, key);
    pthread_mutex_unlock(&r->mu);
    return res;
}

int m8_jwks_verify(m8_jwks *r, const m8_jws *j, m8_alg alg, double now, unsigned *checks)
{
    unsigned n = 0;
    m8_key *key = NULL;
    int rc;
    m8_jwks_result jr = m8_jwks_resolve(r, j->kid, now, &key);
    if (jr == M8_JWKS_UNAVAILABLE) {
        rc = -1;
    } else if (jr != M8_JWKS_FOUND) {
        rc = M8_JWT_INVALID;
    } else {
        n++;
        rc = m8_jws_verify(j, alg, key);
        /* A bad signature (not a wrong alg) under a key from the set: the
         * issuer may have replaced the key under the same kid. */
        if (rc != M8_JWT_OK && m8_jws_alg_is(j, alg)) {
            m8_key *again = NULL;
            if (m8_jwks_refresh(r, j->kid, now, &again) == M8_JWKS_FOUND &&
                !m8_key_equal(again, key)) {
                n++;
                rc = m8_jws_verify(j, alg, again);
                if (rc == M8_JWT_OK)
                    m8_log(M8_LOG_INFO, "JWKS: kid=%.64s has a new key; the token verified with it",
                           j->kid ? j->kid : "none");
            }
            m8_key_unref(again);
        }
    }
    m8_key_unref(key);
    if (checks)
        *checks = n;
    return rc;
}
