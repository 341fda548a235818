/* thread.h - starting a helper thread with every signal blocked, so that
 * signals reach only the thread that waits for them (the main loop or its
 * self-pipe); and the hook a serving thread runs before it blocks.  Never
 * installed. */
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

/* The calling thread is about to block for long or for an unbounded time
 * (a password hash, an HTTP call to another service, a handler's own
 * blocking work): runs the hook its serving loop set, which lets another
 * thread take the requests that arrive meanwhile and those this one took
 * but has not handled (doc/design.md#serving-loop).  Nothing on a thread
 * without a hook. */
M8_INTERNAL void m8_thread_will_block(void);

/* Sets (fn non-NULL) or clears the calling thread's hook. */
M8_INTERNAL void m8_thread_set_block_hook(void (*fn)(void *data), void *data);

#endif
