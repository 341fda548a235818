/* test_server - listening sockets (server.h): address forms, unix socket
 * modes, stale and live sockets. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server.h"
#include "tap.h"

int main(void)
{
    char dir[] = "/tmp/m8-test-server-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[256], spec[400], err[512];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(spec, sizeof spec, "unix:%s", path);

    int fd = m8_listen(spec, 16, 0660, err, sizeof err);
    ok(fd >= 0, "unix:PATH listens");
    ok(m8_is_listen_socket(fd), "the listening socket is recognised as one");
    struct stat st;
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0660, "the socket file gets the requested mode");
    ok(m8_listen(spec, 16, 0660, err, sizeof err) < 0 && strstr(err, "in use") != NULL,
       "a live socket of another process is refused, not stolen");
    close(fd);
    fd = m8_listen(spec, 16, 0600, err, sizeof err);
    ok(fd >= 0, "a stale socket file (nobody listening) is replaced");
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600 applied");
    close(fd);
    unlink(path);

    char file[320];
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    if (f)
        fclose(f);
    snprintf(spec, sizeof spec, "unix:%s", file);
    ok(m8_listen(spec, 16, 0660, err, sizeof err) < 0 && strstr(err, "not a socket") != NULL,
       "a regular file at the socket path is never removed");
    unlink(file);

    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    snprintf(spec, sizeof spec, "unix:/%s", longp);
    ok(m8_listen(spec, 16, 0660, err, sizeof err) < 0, "a unix path longer than sun_path is refused");

    fd = m8_listen("127.0.0.1:0", 16, 0, err, sizeof err);
    ok(fd < 0, "port 0 is refused (a service needs a known port)");
    fd = m8_listen("127.0.0.1:18979", 16, 0, err, sizeof err);
    ok(fd >= 0 && m8_is_listen_socket(fd), "host:port listens on TCP");
    if (fd >= 0)
        close(fd);
    fd = m8_listen("[::1]:18979", 16, 0, err, sizeof err);
    ok(fd >= 0 || strstr(err, "cannot") != NULL, "[v6]:port is understood");
    if (fd >= 0)
        close(fd);
    ok(m8_listen("127.0.0.1", 16, 0, err, sizeof err) < 0, "an address without a port is refused");
    ok(m8_listen("127.0.0.1:65536", 16, 0, err, sizeof err) < 0, "port 65536 is refused");
    ok(m8_listen("[::1:80", 16, 0, err, sizeof err) < 0, "an unclosed [ is refused");
    ok(!m8_is_listen_socket(1) || isatty(1) == 0, "stdout is not taken for a listening socket");
    int sv[2];
    ok(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && !m8_is_listen_socket(sv[0]),
       "a connected socket is not a listening socket (CGI under a socket-based server)");
    close(sv[0]);
    close(sv[1]);
    rmdir(dir);
    return done_testing();
}
