/* floor.c - a FastCGI responder that does no work: the floor under the
 * backend CPU per request that bench/e2e.sh reports (bench/README.md,
 * "The zero-work floor").
 *
 * usage: floor SOCKET WORKERS
 *
 * Listens on the unix socket SOCKET, forks WORKERS processes that share it,
 * each one thread with one epoll set, and answers every request on a kept
 * connection with the bytes fcgi-m8's /ping answers with (a 200 and
 * {"message":"pong"}), in one send.  It reads records until a request's
 * empty FCGI_STDIN and parses nothing else: no params, no routing, no
 * headers, no logging, no metrics.  What a request costs it is what the
 * kernel, the socket and the wake-up of a sleeping thread cost, the part of
 * a backend's cost no FastCGI server can avoid.  A benchmark tool only:
 * input is trusted to be nginx's. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXCONN 1024
#define BUFSZ 65536

typedef struct conn {
    int fd;
    size_t len;
    unsigned char buf[BUFSZ];
} conn;

static const char BODY[] = "Status: 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: 18\r\n\r\n{\"message\":\"pong\"}";

/* The answer to request id: STDOUT, an empty STDOUT, END_REQUEST. */
static size_t answer(unsigned char *out, unsigned id)
{
    size_t n = sizeof BODY - 1, pad = (8 - n % 8) % 8, o = 0;
    unsigned char h[8] = {1,
                          6,
                          (unsigned char)(id >> 8),
                          (unsigned char)id,
                          (unsigned char)(n >> 8),
                          (unsigned char)n,
                          (unsigned char)pad,
                          0};
    memcpy(out + o, h, 8);
    o += 8;
    memcpy(out + o, BODY, n);
    o += n;
    memset(out + o, 0, pad);
    o += pad;
    unsigned char e[8] = {1, 6, (unsigned char)(id >> 8), (unsigned char)id, 0, 0, 0, 0};
    memcpy(out + o, e, 8);
    o += 8;
    unsigned char end[16] = {1, 3, (unsigned char)(id >> 8), (unsigned char)id, 0, 8, 0, 0, 0};
    memcpy(out + o, end, 16);
    return o + 16;
}

/* Consumes the complete records in c; answers each request whose empty
 * STDIN arrived.  0, or -1 when the connection must close. */
static int serve(conn *c)
{
    size_t off = 0;
    unsigned char out[4096];
    size_t olen = 0;
    while (c->len - off >= 8) {
        unsigned char *h = c->buf + off;
        size_t clen = (size_t)h[4] << 8 | h[5], rec = 8 + clen + h[6];
        if (h[0] != 1)
            return -1;
        if (c->len - off < rec)
            break;
        if (h[1] == 5 && clen == 0) { /* the end of a request's body */
            if (olen + 256 > sizeof out)
                return -1;
            olen += answer(out + olen, (unsigned)h[2] << 8 | h[3]);
        }
        off += rec;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    if (c->len == sizeof c->buf)
        return -1;
    for (size_t sent = 0; sent < olen;) {
        ssize_t w = send(c->fd, out + sent, olen - sent, MSG_NOSIGNAL);
        if (w <= 0)
            return -1; /* a full socket buffer never happens with nginx reading */
        sent += (size_t)w;
    }
    return 0;
}

static void worker(int lfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    static conn *conns[MAXCONN];
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0)
        _exit(1);
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);
        if (n < 0 && errno != EINTR)
            _exit(1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u32 == UINT32_MAX) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                if (fd >= MAXCONN || (!conns[fd] && !(conns[fd] = malloc(sizeof(conn))))) {
                    close(fd);
                    continue;
                }
                conns[fd]->fd = fd;
                conns[fd]->len = 0;
                struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = (uint32_t)fd};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce) != 0)
                    close(fd);
                continue;
            }
            conn *c = conns[evs[i].data.u32];
            ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0 || (c->len += (size_t)r, serve(c) != 0))
                close(c->fd); /* closing drops it from the epoll set */
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SOCKET WORKERS\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    long nw = strtol(argv[2], &end, 10);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!end || *end || nw < 1 || nw > 64 || strlen(argv[1]) >= sizeof sa.sun_path) {
        fprintf(stderr, "%s: a socket path and 1..64 workers\n", argv[0]);
        return 2;
    }
    memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
    unlink(argv[1]);
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 1024) != 0) {
        perror("floor: listen");
        return 1;
    }
    /* TERM or INT to the parent ends the workers and removes the socket. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pid_t kids[64];
    long nk = 0;
    for (; nk < nw; nk++) {
        pid_t p = fork();
        if (p == 0) {
            sigprocmask(SIG_UNBLOCK, &set, NULL);
            worker(lfd);
        }
        if (p < 0) {
            perror("floor: fork");
            break;
        }
        kids[nk] = p;
    }
    int sig = 0;
    if (nk == nw)
        sigwait(&set, &sig);
    for (long i = 0; i < nk; i++)
        kill(kids[i], SIGTERM);
    while (wait(NULL) > 0) {
    }
    unlink(argv[1]);
    return nk == nw ? 0 : 1;
}
