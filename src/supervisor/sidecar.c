/* sidecar.c - fcgim8d's sidecar thread (see sidecar.h). */
#include "sidecar.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/jwks.h"
#include "core/log.h"
#include "core/thread.h"
#include "net/httpc.h"
#include "stream/evclient.h"
#include "stream/runner.h"

#define SIDECAR_TICK_NS (20 * 1000 * 1000) /* how often worker requests are looked at */
#define SIDECAR_MIN_TTL_S 1.0              /* JWKS_CACHE_TTL_SECONDS=0 still waits this */

struct m8_sidecar {
    m8_shm *shm;
    char *uri; /* JWKS_URI, or NULL: no JWKS thread */
    m8_alg alg;
    double ttl_s;
    atomic_int stop;
    pthread_t thread;
    m8_evrunner *ev; /* the auth event stream (stateful consumer), or NULL */
};

static void *sidecar_main(void *arg)
{
    m8_sidecar *sc = arg;
    m8_shm_jwks *j = &sc->shm->jwks;
    char uri_log[512];
    m8_http_display_url(sc->uri, uri_log, sizeof uri_log);
    double next_fetch = 0, last_attempt = -1e9;
    uint64_t seen = atomic_load(&j->requests);
    while (!atomic_load(&sc->stop)) {
        double now = m8_now_mono();
        uint64_t req = atomic_load(&j->requests);
        bool asked = req != seen;
        seen = req;
        if (now >= next_fetch || (asked && now - last_attempt >= M8_JWKS_COOLDOWN_S)) {
            last_attempt = now;
            m8_buf doc;
            size_t nkeys = 0;
            char why[320] = "";
            int rc = m8_jwks_fetch_document(sc->uri, sc->alg, M8_JWKS_TIMEOUT_S, &doc, &nkeys, why,
                                            sizeof why);
            if (rc == 0) {
                /* before the document: a worker reads the time first */
                atomic_store(&j->fetched_ns, m8_mono_ns());
                rc = m8_shm_jwks_put(sc->shm, doc.data ? doc.data : "", doc.len);
                m8_buf_free(&doc);
            }
            if (rc == 0) {
                m8_log(M8_LOG_INFO, "JWKS fetched from %s for all workers: %zu keys", uri_log,
                       nkeys);
                next_fetch = now + (sc->ttl_s > SIDECAR_MIN_TTL_S ? sc->ttl_s : SIDECAR_MIN_TTL_S);
            } else {
                m8_log(M8_LOG_WARNING,
                       "JWKS fetch from %s failed (%s); the workers keep the "
                       "previous keys",
                       uri_log, why[0] ? why : m8_strerror(rc));
                next_fetch = now + M8_JWKS_COOLDOWN_S;
            }
            atomic_fetch_add(&j->answers, 1);
            continue;
        }
        if (asked) /* throttled: answer at once, the workers use what they have */
            atomic_fetch_add(&j->answers, 1);
        struct timespec ts = {0, SIDECAR_TICK_NS};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

m8_sidecar *m8_sidecar_start(m8_shm *shm, const m8_settings *s)
{
    bool jwks = s->jwks_uri && *s->jwks_uri && s->access_token_algorithm != M8_ALG_HS256;
    bool events = m8_evclient_wanted(s);
    if (!jwks && !events)
        return NULL;
    m8_sidecar *sc = calloc(1, sizeof *sc);
    if (!sc || (jwks && !(sc->uri = strdup(s->jwks_uri)))) {
        free(sc);
        m8_log(M8_LOG_ERROR, "sidecar: out of memory; every worker fetches JWKS itself");
        return NULL;
    }
    sc->shm = shm;
    sc->alg = s->access_token_algorithm;
    sc->ttl_s = (double)s->jwks_cache_ttl_seconds;
    m8_httpc_global_init();
    if (jwks) {
        if (m8_thread_start(&sc->thread, NULL, sidecar_main, sc) != 0) {
            m8_log(M8_LOG_ERROR, "sidecar: cannot start its JWKS thread; every worker fetches "
                                 "JWKS itself");
            free(sc->uri);
            sc->uri = NULL;
        } else {
            atomic_store(&shm->jwks.served, 1);
        }
    }
    if (events)
        sc->ev = m8_evrunner_start(s, shm);
    if (!sc->uri && !sc->ev) {
        free(sc);
        return NULL;
    }
    return sc;
}

void m8_sidecar_stop(m8_sidecar *sc)
{
    if (!sc)
        return;
    atomic_store(&sc->stop, 1);
    m8_evrunner_stop(sc->ev);
    if (sc->uri)
        pthread_join(sc->thread, NULL);
    free(sc->uri);
    free(sc);
}
