/* write_all.c - m8_write_all (engine.h): the one write loop of the FastCGI
 * engine's answers and of CGI's standard output. */
#include "app/engine.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#define M8_WRITE_TIMEOUT_MS 30000

/* Writes everything, waiting for POLLOUT when the socket is full. */
int m8_write_all(int fd, const char *p, size_t n)
{
    if (!p)
        return n ? M8_EINVAL : 0;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == ENOTSOCK)
            w = write(fd, p, n); /* CGI stdout: a pipe (SIGPIPE is ignored) */
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int r = poll(&pfd, 1, M8_WRITE_TIMEOUT_MS);
            if (r > 0 || (r < 0 && errno == EINTR))
                continue;
        }
        return M8_EIO; /* client gone (EPIPE/ECONNRESET) or stuck */
    }
    return 0;
}
