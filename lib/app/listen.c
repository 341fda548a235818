/* listen.c - listening sockets: unix with the socket directory rule, TCP,
 * and the test for an inherited one (listen.h). */
#include "app/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

bool m8_is_listen_socket(int fd)
{
    int v = 0;
    socklen_t len = sizeof v;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v;
}

/* The directory of a socket that root (or anyone) creates must not be
 * writable by anyone but root and the socket's owner: another writer could
 * swap the new socket for a symlink or another file between two calls on
 * its name (fcgim8d(8), "Socket directory"). */
static int check_socket_dir(int dfd, const char *dir, uid_t owner, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(dfd, &st) != 0) {
        snprintf(err, errlen, "socket directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != owner) {
        snprintf(err, errlen,
                 "socket directory %s is owned by uid %lu, neither root nor the socket's owner "
                 "(uid %lu): refused",
                 dir, (unsigned long)st.st_uid, (unsigned long)owner);
        return -1;
    }
    if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) && st.st_gid != 0)) {
        snprintf(err, errlen,
                 "socket directory %s (mode %04o) is writable by other users than root and the "
                 "socket's owner: refused (chmod go-w %s, or use a directory of its own)",
                 dir, (unsigned)(st.st_mode & 07777), dir);
        return -1;
    }
    return 0;
}

int m8_listen_unix(const char *path, int backlog, unsigned mode, uid_t owner, gid_t group,
                   char *err, size_t errlen)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (!*path || strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "unix socket path is empty or longer than %zu bytes",
                 sizeof sa.sun_path - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    char dir[sizeof sa.sun_path];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        snprintf(err, errlen, "unix socket path %s does not name a file", path);
        return -1;
    }
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "socket directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (check_socket_dir(dfd, dir, owner != (uid_t)-1 ? owner : geteuid(), err, errlen) != 0) {
        close(dfd);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        close(dfd);
        return -1;
    }
    struct stat st;
    if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a socket", path);
            close(fd);
            close(dfd);
            return -1;
        }
        /* A live socket belongs to a running process: refuse.  A stale one
         * (connection refused) is removed. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(probe);
            close(fd);
            close(dfd);
            snprintf(err, errlen, "%s is in use by a running process", path);
            return -1;
        }
        if (probe >= 0)
            close(probe);
        unlinkat(dfd, base, 0);
    }
    /* The mode comes from the umask at bind time, and the owner is set on
     * the name without following a symlink: no call after bind can be led
     * to another file by whatever sits at the path by then. */
    mode_t old = umask((mode_t)(~mode & 0777));
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc == 0 && (owner != (uid_t)-1 || group != (gid_t)-1) &&
        fchownat(dfd, base, owner, group, AT_SYMLINK_NOFOLLOW) != 0) {
        snprintf(err, errlen, "chown %s: %s", path, strerror(errno));
        unlinkat(dfd, base, 0);
        close(fd);
        close(dfd);
        return -1;
    }
    if (rc != 0 || listen(fd, backlog) != 0) {
        snprintf(err, errlen, "cannot listen on unix:%s: %s", path, strerror(errno));
        if (rc == 0)
            unlinkat(dfd, base, 0);
        close(fd);
        close(dfd);
        return -1;
    }
    close(dfd);
    return fd;
}

static int listen_tcp(const char *spec, int backlog, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host) {
            snprintf(err, errlen, "bad listen address \"%s\" (want [v6addr]:port)", spec);
            return -1;
        }
        memcpy(host, spec + 1, (size_t)(end - spec - 1));
        host[end - spec - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof host) {
            snprintf(err, errlen, "bad listen address \"%s\" (want unix:/path or host:port)", spec);
            return -1;
        }
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    long long pnum;
    if (m8_parse_ll(port, 1, 65535, &pnum) != 0) {
        snprintf(err, errlen, "bad port in listen address \"%s\"", spec);
        return -1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
            break;
        snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int m8_listen(const char *spec, int backlog, unsigned mode, char *err, size_t errlen)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return m8_listen_unix(spec + 5, backlog, mode, (uid_t)-1, (gid_t)-1, err, errlen);
    return listen_tcp(spec, backlog, err, errlen);
}
