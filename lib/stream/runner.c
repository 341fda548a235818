/* runner.c - the event-stream thread (runner.h). */
#include "stream/runner.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/thread.h"
#include "stream/evclient.h"

struct m8_evrunner {
    m8_evclient *ev;
    pthread_t thread;
    atomic_int stop;
};

static void *runner_main(void *arg)
{
    m8_evrunner *r = arg;
    m8_evclient_run(r->ev, &r->stop);
    return NULL;
}

m8_evrunner *m8_evrunner_start(const m8_settings *s, struct m8_shm *shm)
{
    m8_evrunner *r = calloc(1, sizeof *r);
    if (!r) {
        m8_log(M8_LOG_ERROR, "event stream: out of memory; revocations arrive through "
                             "introspection only");
        return NULL;
    }
    atomic_init(&r->stop, 0);
    char err[512] = "";
    r->ev = m8_evclient_new(s, shm, err, sizeof err);
    if (!r->ev) {
        m8_log(M8_LOG_ERROR, "event stream: %s; revocations arrive through introspection only",
               err);
        free(r);
        return NULL;
    }
    if (m8_thread_start(&r->thread, NULL, runner_main, r) != 0) {
        m8_log(M8_LOG_ERROR, "event stream: cannot start its thread");
        m8_evclient_free(r->ev);
        free(r);
        return NULL;
    }
    return r;
}

void m8_evrunner_stop(m8_evrunner *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    m8_evclient_free(r->ev);
    free(r);
}
