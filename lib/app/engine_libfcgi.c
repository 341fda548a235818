/* engine_libfcgi.c - the libfcgi engine (engine_libfcgi.h). */
#include "app/engine_libfcgi.h"

#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "app/signals.h"
#include "core/thread.h"
#include "http/fcgi_proto.h"

/* The classic libfcgi accept loop (fcgi2 examples/threaded.c): one request
 * per connection per thread.  Kept for mod_fcgid-style deployments and as
 * the baseline of bench/serving_model.sh; a kept-alive connection pins its
 * thread here, which is why the epoll engine is the default. */

typedef struct lf_ctx {
    m8_engine_opts o;
    int listen_fd;
    size_t max_body;
    pthread_mutex_t accept_lock;
    atomic_bool stopping;
} lf_ctx;

static void lf_serve_one(lf_ctx *x, FCGX_Request *r, m8_request *req, m8_buf *out)
{
    m8_req_reset(req);
    m8_buf_reset(out);
    size_t n = 0;
    for (char **e = r->envp; e && *e; e++)
        n++;
    int status = n > M8_MAX_PARAMS ? 400 : 0;
    m8_pair *params = status ? NULL : m8_arena_alloc(&req->arena, (n ? n : 1) * sizeof *params);
    size_t k = 0;
    for (char **e = r->envp; params && e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        params[k].name = m8_arena_strndup(&req->arena, *e, (size_t)(eq - *e));
        params[k].value = eq + 1; /* r->envp lives until FCGX_Finish_r */
        k++;
    }
    m8_buf body;
    m8_buf_init(&body, x->max_body);
    /* An authorizer request has no stdin (FastCGI 1.0 section 6.3): reading
     * one would wait for records the web server never sends. */
    req->authorizer = r->role == M8_FCGI_AUTHORIZER;
    if (req->authorizer && !x->o.authorizer)
        status = 500; /* libfcgi takes the role: deny, as the epoll engine refuses it */
    if (!status && !req->authorizer) {
        /* Read the body in chunks; past the limit keep draining, answer 413. */
        char tmp[8192];
        int got;
        while ((got = FCGX_GetStr(tmp, (int)sizeof tmp, r->in)) > 0) {
            if (!status && m8_buf_append(&body, tmp, (size_t)got) != 0)
                status = 413;
        }
    }
    if (x->o.respond)
        x->o.respond(x->o.data, req, params, k, body.data, body.len, status, out);
    FCGX_PutStr(out->data, (int)out->len, r->out);
    m8_buf_free(&body);
}

static void *lf_worker(void *arg)
{
    lf_ctx *x = arg;
    FCGX_Request r;
    FCGX_InitRequest(&r, x->listen_fd, 0);
    m8_request req;
    m8_req_init(&req, x->o.owner);
    m8_buf out;
    m8_buf_init(&out, M8_MAX_RESPONSE_BYTES + 65536);
    while (!atomic_load(&x->stopping)) {
        pthread_mutex_lock(&x->accept_lock);
        int rc = atomic_load(&x->stopping) ? -1 : FCGX_Accept_r(&r);
        pthread_mutex_unlock(&x->accept_lock);
        if (rc < 0)
            break;
        lf_serve_one(x, &r, &req, &out);
        FCGX_Finish_r(&r);
    }
    FCGX_Finish_r(&r);
    m8_req_free(&req);
    m8_buf_free(&out);
    return NULL;
}

int m8_libfcgi_serve(const m8_engine_opts *opts, int listen_fd)
{
    int threads = opts->threads;
    if (FCGX_Init() != 0)
        return M8_EIO;
    /* libfcgi installed its own SIGTERM/SIGUSR1/SIGPIPE handling in
     * FCGX_Init (doc/design.md#signals-and-shutdown); ours go on top. */
    m8_signals_install();
    lf_ctx x = {.o = *opts, .listen_fd = listen_fd, .max_body = opts->max_body};
    pthread_mutex_init(&x.accept_lock, NULL);
    atomic_init(&x.stopping, false);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    if (!t)
        return M8_ENOMEM;
    int started = 0;
    while (started < threads && m8_thread_start(&t[started], NULL, lf_worker, &x) == 0)
        started++;
    for (;;) {
        int sig = m8_signals_wait(-1);
        if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT)
            break;
    }
    atomic_store(&x.stopping, true);
    FCGX_ShutdownPending();
    /* Wake the thread blocked in accept(): shutdown() of a listening socket
     * makes accept fail with EINVAL on Linux (the race of doc/design.md#signals-and-shutdown). */
    shutdown(listen_fd, SHUT_RDWR);
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
    pthread_mutex_destroy(&x.accept_lock);
    return 0;
}
