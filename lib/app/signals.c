/* signals.c - signal handlers that only write a byte to a self-pipe, and
 * the wait on it (signals.h). */
#include "app/signals.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* pipe full: a stop is already pending */
    }
    errno = saved;
}

int m8_signals_install(void)
{
    if (sig_pipe[0] < 0 && pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    /* no SA_RESTART: a blocked call returns (doc/design.md#signals-and-shutdown) */
    sa.sa_flags = 0;
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    return sig_pipe[0];
}

int m8_signals_wait(int timeout_ms)
{
    struct pollfd pfd = {.fd = sig_pipe[0], .events = POLLIN};
    for (;;) {
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 0;
        unsigned char b;
        ssize_t n = read(sig_pipe[0], &b, 1);
        if (n == 1)
            return b;
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return 0;
    }
}

void m8_signals_notify(int code)
{
    on_signal(code);
}
