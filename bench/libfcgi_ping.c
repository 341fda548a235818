/* libfcgi_ping - the baseline of the serving-model choice (README "Serving
 * model"): a trivial libfcgi responder with N threads accepting on fd 0
 * under a mutex (fcgi2 examples/threaded.c), answering {"status":"ok"}.
 * Built and run only by bench/serving_model.sh. */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t accept_lock = PTHREAD_MUTEX_INITIALIZER;

static void *serve(void *arg)
{
    (void)arg;
    FCGX_Request r;
    FCGX_InitRequest(&r, 0, 0);
    for (;;) {
        pthread_mutex_lock(&accept_lock);
        int rc = FCGX_Accept_r(&r);
        pthread_mutex_unlock(&accept_lock);
        if (rc < 0)
            break;
        FCGX_PutS("Status: 200 OK\r\nContent-Type: application/json\r\n"
                  "Content-Length: 15\r\n\r\n{\"status\":\"ok\"}",
                  r.out);
        FCGX_Finish_r(&r);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 4;
    if (n < 1 || n > 256)
        n = 4;
    FCGX_Init();
    pthread_t t[256];
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, serve, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    return 0;
}
