/* sockets.c - fcgim8d's listen socket (--listen, systemd's LISTEN_FDS or
 * spawn-fcgi's fd 0; unix socket owner, group and mode), its accept-queue
 * sample, descriptors inherited at start, the privilege drop and the pid
 * file (fcgim8d(8)). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include "app/server.h"
#include "fcgim8d.h"

int take_listen_socket(daemon_state *d)
{
    const options *o = &d->o;
    char err[512] = "";
    const char *lfds = getenv("LISTEN_FDS"), *lpid = getenv("LISTEN_PID");
    long long nfds = 0, pid = 0;
    if (!o->listen && lfds && lpid && m8_parse_ll(lfds, 1, 64, &nfds) == 0 &&
        m8_parse_ll(lpid, 1, INT32_MAX, &pid) == 0 && pid == getpid()) {
        if (!m8_is_listen_socket(3)) {
            m8_log(M8_LOG_CRITICAL, "LISTEN_FDS is set but fd 3 is not a listening socket");
            return -1;
        }
        if (nfds > 1)
            m8_log(M8_LOG_WARNING, "systemd passed %lld sockets; serving the first (fd 3)", nfds);
        fcntl(3, F_SETFD, FD_CLOEXEC);
        d->listen_fd = 3;
        m8_log(M8_LOG_INFO, "listening on the socket passed by systemd (fd 3)");
        return 0;
    }
    if (!o->listen) {
        if (m8_is_listen_socket(0)) {
            d->listen_fd = 0;
            m8_log(M8_LOG_INFO, "listening on the inherited socket (fd 0)");
            return 0;
        }
        m8_log(M8_LOG_CRITICAL, "nothing to listen on: give --listen unix:/path or host:port, "
                                "or start under systemd socket activation or spawn-fcgi");
        return -1;
    }
    bool is_unix = strncmp(o->listen, "unix:", 5) == 0;
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    if (is_unix && o->socket_owner) {
        struct passwd *pw = getpwnam(o->socket_owner);
        if (!pw) {
            m8_log(M8_LOG_CRITICAL, "--socket-owner: no user \"%s\"", o->socket_owner);
            return -1;
        }
        uid = pw->pw_uid;
    }
    if (is_unix && o->socket_group) {
        struct group *gr = getgrnam(o->socket_group);
        if (!gr) {
            m8_log(M8_LOG_CRITICAL, "--socket-group: no group \"%s\"", o->socket_group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    /* Owner and mode are set without a call on the path after bind, in a
     * directory only root and the owner may write (m8_listen_unix). */
    int fd = is_unix
                 ? m8_listen_unix(o->listen + 5, (int)o->backlog, (unsigned)o->socket_mode, uid,
                                  gid, err, sizeof err)
                 : m8_listen(o->listen, (int)o->backlog, (unsigned)o->socket_mode, err, sizeof err);
    if (fd < 0) {
        m8_log(M8_LOG_CRITICAL, "%s", err);
        return -1;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    d->listen_fd = fd;
    if (is_unix) {
        d->unix_path = strdup(o->listen + 5);
        struct stat st;
        if (d->unix_path && lstat(d->unix_path, &st) == 0 && st.st_uid == 0 && st.st_gid == 0 &&
            !(st.st_mode & S_IWOTH)) {
            /* A web server user cannot connect to root:root 0660
             * (doc/design.md#socket-permissions). */
            m8_log(M8_LOG_WARNING,
                   "the socket %s is owned by root:root (mode %04o): a web server running as "
                   "another user cannot connect; add --socket-group www-data (or chown "
                   "root:www-data %s)",
                   d->unix_path, (unsigned)(st.st_mode & 0777), d->unix_path);
        }
    }
    m8_log(M8_LOG_INFO, "listening on %s", o->listen);
    return 0;
}

/* Accept queue of the listen socket (TCP: TCP_INFO; 0 when unknown). */
/* Accept queue of a unix listening socket: sock_diag's UDIAG_SHOW_RQLEN
 * gives the pending connections (rqueue) of the socket with our inode. */
static int unix_queue(int fd, uint32_t *q)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0)
        return -1;
    struct {
        struct nlmsghdr nlh;
        struct unix_diag_req req;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = AF_UNIX;
    msg.req.udiag_states = 1u << 10; /* TCP_LISTEN */
    msg.req.udiag_ino = (uint32_t)st.st_ino;
    msg.req.udiag_show = UDIAG_SHOW_RQLEN;
    msg.req.udiag_cookie[0] = msg.req.udiag_cookie[1] = ~0u; /* INET_DIAG_NOCOOKIE */
    int rc = -1;
    char buf[1024];
    struct timeval tv = {0, 200 * 1000};
    setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (send(nl, &msg, sizeof msg, 0) == (ssize_t)sizeof msg) {
        ssize_t n = recv(nl, buf, sizeof buf, 0);
        struct nlmsghdr *h = (struct nlmsghdr *)buf;
        if (n > 0 && NLMSG_OK(h, (size_t)n) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY) {
            struct unix_diag_msg *m = NLMSG_DATA(h);
            size_t alen = h->nlmsg_len - NLMSG_LENGTH(sizeof *m);
            for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
                 a = RTA_NEXT(a, alen)) {
                if (a->rta_type == UNIX_DIAG_RQLEN &&
                    RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
                    *q = ((struct unix_diag_rqlen *)RTA_DATA(a))->udiag_rqueue;
                    rc = 0;
                }
            }
        }
    }
    close(nl);
    return rc;
}

/* Accept queue of the listen socket (TCP: TCP_INFO; unix: sock_diag). */
void sample_listen_queue(daemon_state *d)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    uint32_t q = 0;
    if (getsockopt(d->listen_fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0)
        q = ti.tcpi_unacked; /* for a listener: the accept queue length */
    else if (unix_queue(d->listen_fd, &q) != 0)
        return;
    atomic_store(&d->shm->listen_queue, q);
    if (q > atomic_load(&d->shm->listen_queue_max))
        atomic_store(&d->shm->listen_queue_max, q);
}

int drop_privileges(const options *o)
{
    if (!o->user && !o->group)
        return 0;
    struct passwd *pw = NULL;
    gid_t gid = getgid();
    if (o->user) {
        pw = getpwnam(o->user);
        if (!pw) {
            m8_log(M8_LOG_CRITICAL, "--user: no user \"%s\"", o->user);
            return -1;
        }
        gid = pw->pw_gid;
    }
    if (o->group) {
        struct group *gr = getgrnam(o->group);
        if (!gr) {
            m8_log(M8_LOG_CRITICAL, "--group: no group \"%s\"", o->group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (setgid(gid) != 0 || (pw ? initgroups(pw->pw_name, gid) : setgroups(0, NULL)) != 0) {
        m8_log(M8_LOG_CRITICAL, "cannot switch to group %ld: %s", (long)gid, strerror(errno));
        return -1;
    }
    if (pw && setuid(pw->pw_uid) != 0) {
        m8_log(M8_LOG_CRITICAL, "cannot switch to user %s: %s", o->user, strerror(errno));
        return -1;
    }
    if (pw && setuid(0) == 0) {
        m8_log(M8_LOG_CRITICAL, "privileges could be regained after dropping them; refusing");
        return -1;
    }
    return 0;
}

/* Closes every descriptor above 2 that fcgim8d inherited (a log file a
 * shell script held open, a caller's socket), except the sockets systemd
 * passes to this process (LISTEN_FDS with our LISTEN_PID), which are kept
 * close-on-exec.  Runs first in main, before fcgim8d opens anything. */
void close_inherited_fds(void)
{
    unsigned keep = 0;
    const char *lfds = getenv("LISTEN_FDS"), *lpid = getenv("LISTEN_PID");
    long long nfds = 0, pid = 0;
    if (lfds && lpid && m8_parse_ll(lfds, 1, 64, &nfds) == 0 &&
        m8_parse_ll(lpid, 1, INT32_MAX, &pid) == 0 && pid == getpid())
        keep = (unsigned)nfds;
    for (unsigned i = 0; i < keep; i++)
        fcntl(3 + (int)i, F_SETFD, FD_CLOEXEC);
    if (close_range(3 + keep, ~0U, 0) != 0) {
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536)
            max = 65536;
        for (long fd = 3 + (long)keep; fd < max; fd++)
            close((int)fd);
    }
}

bool pid_file_written; /* boot_fail removes only our own pid file */

/* Written to a new file of a unique name in the same directory (mkstemp:
 * O_EXCL, so a symlink or file planted under a predictable name is never
 * followed or truncated), then renamed over path (rename replaces a
 * symlink at path itself, never its target). */
int write_pid_file(const char *path)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    bool ok = fchmod(fd, 0644) == 0 && write(fd, buf, (size_t)n) == n;
    int saved = errno;
    ok &= close(fd) == 0;
    if (!ok || rename(tmp, path) != 0) {
        saved = ok ? errno : saved;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    pid_file_written = true;
    return 0;
}
