/* signals.h - the self-pipe every serving loop waits on. */
#ifndef M8_SIGNALS_H
#define M8_SIGNALS_H

#include "core/common.h"

/* Installs the signal handlers (SIGTERM/SIGINT stop, SIGQUIT retire,
 * SIGPIPE ignored, SIGHUP/SIGUSR1 ignored) writing to a self-pipe; returns
 * its read end. */
M8_INTERNAL int m8_signals_install(void);
/* Reads one byte from the self-pipe, waiting up to timeout_ms (-1 = no
 * limit): returns the signal number, 0 on timeout. */
M8_INTERNAL int m8_signals_wait(int timeout_ms);
/* Wakes m8_signals_wait() with a pseudo-signal (used by startup). */
M8_INTERNAL void m8_signals_notify(int code);

#endif
