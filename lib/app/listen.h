/* listen.h - listening sockets: unix (with the socket directory rule) and
 * TCP, and recognising an inherited one (fd 0 from spawn-fcgi, fcgim8d,
 * systemd). */
#ifndef M8_LISTEN_H
#define M8_LISTEN_H

#include "core/common.h"

#include <sys/types.h>

/* Opens a listening socket: "unix:/path" (stale socket file removed, a live
 * one refused; mode applied) or "host:port" / "[v6]:port".  Returns the fd
 * or -1 with err filled. */
M8_INTERNAL int m8_listen(const char *spec, int backlog, unsigned mode, char *err, size_t errlen);

/* The "unix:" case of m8_listen, with the socket's owner and group (-1:
 * unchanged).  The directory must be owned by root or owner (the effective
 * uid when -1) and writable by no one else; the mode is set at bind time
 * (umask) and the owner with fchownat(AT_SYMLINK_NOFOLLOW), never by a call
 * on the path that could follow a symlink planted after bind. */
M8_INTERNAL int m8_listen_unix(const char *path, int backlog, unsigned mode, uid_t owner,
                               gid_t group, char *err, size_t errlen);

/* True if fd is a listening stream socket (spawn-fcgi, systemd, fcgim8d). */
M8_INTERNAL bool m8_is_listen_socket(int fd);

#endif
