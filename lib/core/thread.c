/* thread.c - m8_thread_start: one place that starts a thread with signals
 * blocked; and the thread's "about to block" hook (see thread.h). */
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

static _Thread_local void (*block_fn)(void *);
static _Thread_local void *block_data;

void m8_thread_set_block_hook(void (*fn)(void *data), void *data)
{
    block_fn = fn;
    block_data = data;
}

void m8_thread_will_block(void)
{
    if (block_fn)
        block_fn(block_data);
}
