/* test_status - fcgim8d's status endpoint (src/status.h): which listen
 * addresses need METRICS_SCRAPE_CREDENTIAL, the credential on /status,
 * clients served side by side while one dribbles its request, and the
 * status document staying inside the segment whatever its header says. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/supervisor/status.h"
#include "core/log.h"
#include "tap.h"

static m8_settings *settings(const char *cred)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->metrics_enabled = true;
    s->api_prefix = strdup("/api");
    s->metrics_scrape_credential = cred ? strdup(cred) : NULL;
    return s;
}

static void settings_free(m8_settings *s)
{
    free(s->api_prefix);
    free(s->metrics_scrape_credential);
    free(s);
}

static void test_check_listen(void)
{
    m8_settings *open = settings(NULL), *empty = settings(""), *cred = settings("sekrit");
    static const struct {
        const char *addr;
        int want_open; /* without a credential */
    } cases[] = {
        {"127.0.0.1:9100", 0},
        {"127.1.2.3:9100", 0},
        {"[::1]:9100", 0},
        {"localhost:9100", 0},
        {"unix:/run/x.sock", 0},
        {"0.0.0.0:9100", M8_ECONFIG},
        {":9100", M8_ECONFIG},
        {"[::]:9100", M8_ECONFIG},
        {"192.0.2.10:9100", M8_ECONFIG},
        {"[::ffff:127.0.0.1]:9100", 0},
        {"[2001:db8::1]:9100", M8_ECONFIG},
        {"127.0.0.1:bad", 0}, /* left to m8_listen, which says what is wrong */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        is_int(m8_status_check_listen(cases[i].addr, open, err, sizeof err), cases[i].want_open,
               "%s without a credential: %s", cases[i].addr,
               cases[i].want_open ? "refused" : "accepted");
        if (cases[i].want_open)
            like(err, "not a loopback address", "... saying why (%s)", cases[i].addr);
        is_int(m8_status_check_listen(cases[i].addr, empty, err, sizeof err), cases[i].want_open,
               "%s with an empty credential: as without", cases[i].addr);
        is_int(m8_status_check_listen(cases[i].addr, cred, err, sizeof err), 0,
               "%s with a credential: accepted", cases[i].addr);
    }
    settings_free(open);
    settings_free(empty);
    settings_free(cred);
}

/* ------------------------------------------------------------ serving */

static int connect_unix(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* Sends req and reads the whole answer (until the server closes) into out. */
static int exchange(const char *path, const char *req, char *out, size_t outlen)
{
    int fd = connect_unix(path);
    if (fd < 0)
        return -1;
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 10000) <= 0)
            break;
        ssize_t n = recv(fd, out + len, outlen - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len >= outlen - 1)
            break;
    }
    out[len] = '\0';
    close(fd);
    return (int)len;
}

static void test_serving(void)
{
    char dir[] = "/tmp/m8-status-XXXXXX";
    if (!mkdtemp(dir)) {
        ok(0, "a temp dir");
        return;
    }
    char path[128], addr[140];
    snprintf(path, sizeof path, "%s/status.sock", dir);
    snprintf(addr, sizeof addr, "unix:%s", path);
    m8_shm *shm = m8_shm_private();
    m8_settings *s = settings("Scrape-Cred-1");
    char err[512] = "";
    m8_status_server *st = m8_status_start(addr, shm, s, err, sizeof err);
    if (!ok(st != NULL, "the status server starts on %s %s", addr, err))
        return;
    static char out[1 << 20];
    exchange(path, "GET /status HTTP/1.0\r\n\r\n", out, sizeof out);
    ok(strncmp(out, "HTTP/1.0 401 ", 13) == 0, "GET /status without the credential: 401");
    like(out, "WWW-Authenticate: Bearer", "... with WWW-Authenticate: Bearer");
    like(out, "{\"detail\":\"Unauthorized\"}", "... and a JSON detail");
    exchange(path, "GET /status HTTP/1.0\r\nAuthorization: Bearer nope\r\n\r\n", out, sizeof out);
    ok(strncmp(out, "HTTP/1.0 401 ", 13) == 0, "GET /status with a wrong credential: 401");
    exchange(path, "GET /status HTTP/1.0\r\nAuthorization: Bearer Scrape-Cred-1\r\n\r\n", out,
             sizeof out);
    ok(strncmp(out, "HTTP/1.0 200 ", 13) == 0 && strstr(out, "\"pool\":"),
       "GET /status with the credential: 200 and the pool");
    exchange(path, "GET /metrics HTTP/1.0\r\n\r\n", out, sizeof out);
    ok(strncmp(out, "HTTP/1.0 401 ", 13) == 0, "GET /metrics without the credential: 401");
    exchange(path, "GET /nowhere HTTP/1.0\r\n\r\n", out, sizeof out);
    ok(strncmp(out, "HTTP/1.0 404 ", 13) == 0, "an unknown path: 404");
    exchange(path, "POST /status HTTP/1.0\r\n\r\n", out, sizeof out);
    ok(strncmp(out, "HTTP/1.0 405 ", 13) == 0, "POST: 405");

    /* one client dribbles a byte at a time; another is served meanwhile */
    int slow = connect_unix(path);
    ok(slow >= 0 && send(slow, "G", 1, MSG_NOSIGNAL) == 1, "a client sends its first byte");
    int fast = connect_unix(path);
    const char *req = "GET /status HTTP/1.0\r\nAuthorization: Bearer Scrape-Cred-1\r\n\r\n";
    ok(fast >= 0 && send(fast, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req),
       "a second client sends a whole request");
    const char *more = "ET /status HTTP/1.0\r\n";
    bool served = false;
    size_t dribbled = 0;
    /* Up to 8 rounds of 400 ms: the slow client gets a byte each round. */
    for (int round = 0; round < 8 && !served; round++) {
        struct pollfd pf = {.fd = fast, .events = POLLIN};
        if (poll(&pf, 1, 400) > 0) {
            char b[16] = "";
            served = recv(fast, b, 12, 0) == 12 && strncmp(b, "HTTP/1.0 200", 12) == 0;
            break;
        }
        if (dribbled < strlen(more) && send(slow, more + dribbled, 1, MSG_NOSIGNAL) == 1)
            dribbled++;
    }
    ok(served, "the second client is answered while the first dribbles (%zu bytes dribbled)",
       dribbled);
    close(fast);
    /* the slow one is cut at its deadline: its end is closed, no answer */
    char b[64];
    struct pollfd pf = {.fd = slow, .events = POLLIN};
    ssize_t n = poll(&pf, 1, 15000) > 0 ? recv(slow, b, sizeof b, 0) : 99;
    ok(n <= 0, "the dribbling client is closed at its deadline (recv %zd)", n);
    close(slow);

    /* many idle clients: the endpoint still answers (the oldest is dropped) */
    int idle[40];
    for (int i = 0; i < 40; i++)
        idle[i] = connect_unix(path);
    exchange(path, req, out, sizeof out);
    ok(strncmp(out, "HTTP/1.0 200 ", 13) == 0, "40 idle connections do not lock others out");
    for (int i = 0; i < 40; i++)
        if (idle[i] >= 0)
            close(idle[i]);

    m8_settings *none = settings(NULL);
    m8_status_set_settings(st, none); /* a reload that removes the credential */
    exchange(path, "GET /status HTTP/1.0\r\n\r\n", out, sizeof out);
    ok(strncmp(out, "HTTP/1.0 200 ", 13) == 0,
       "after a reload without a credential, a unix socket serves /status openly");
    m8_status_stop(st);
    settings_free(none);
    settings_free(s);
    m8_shm_unmap(shm);
    rmdir(dir);
}

/* ------------------------------------------------------------ garbage */

static void test_render_garbage(void)
{
    char err[256];
    int fd = -1;
    m8_shm *shm = m8_shm_create(4, &fd, err, sizeof err);
    if (!ok(shm != NULL, "a segment of 4 slots %s", err))
        return;
    atomic_store(&shm->slots[1].pid, 77);
    atomic_store(&shm->slots[1].state, M8_SLOT_READY);
    pid_t pid = fork();
    if (pid == 0) { /* a misbehaving worker */
        shm->nslots = 0xffffffffu;
        for (uint32_t k = 0; k < 4; k++) {
            atomic_store(&shm->slots[k].nthreads, 0xffffffffu);
            memset(shm->slots[k].threads[0].what, 'W', sizeof shm->slots[k].threads[0].what);
            atomic_store(&shm->slots[k].threads[0].busy_since_ns, 1);
        }
        _exit(0);
    }
    int wst;
    waitpid(pid, &wst, 0);
    m8_buf out;
    m8_buf_init(&out, 8u << 20);
    m8_status_render(shm, &out);
    ok(out.data && strstr(out.data, "\"total\":1,") != NULL,
       "status render reads the 4 slots this process mapped, not the 2^32 the header says");
    ok(out.data && !strstr(out.data, "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW"
                                     "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW"),
       "an unterminated request name is cut at its field");
    m8_buf_free(&out);
    m8_shm_unmap(shm);
    close(fd);
}

int main(void)
{
    m8_log_set_level(M8_LOG_CRITICAL);
    test_check_listen();
    test_serving();
    test_render_garbage();
    return done_testing();
}
