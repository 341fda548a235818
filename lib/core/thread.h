/* thread.h - starting a helper thread with every signal blocked, so that
 * signals reach only the thread that waits for them (the main loop or its
 * self-pipe).  Never installed. */
#ifndef M8_THREAD_H
#define M8_THREAD_H

#include <pthread.h>

#include "core/common.h"

/* pthread_create(t, attr, fn, arg) with all signals blocked in the new
 * thread from its first instruction (the caller's mask is restored before
 * returning).  attr may be NULL.  Returns 0, or M8_ENOMEM when the thread
 * could not be started. */
M8_INTERNAL int m8_thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
                                void *arg);

#endif
