/* thread.c - m8_thread_start: one place that starts a thread with signals
 * blocked (see thread.h). */
#include "core/thread.h"

#include <signal.h>

int m8_thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits this mask */
    int rc = pthread_create(t, attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : M8_ENOMEM;
}
