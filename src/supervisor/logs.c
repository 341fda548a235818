/* logs.c - fcgim8d's log: each worker's stdout/stderr read line by line
 * and written to our stderr as JSON lines, and --log-file (re)opened onto
 * stderr (SIGUSR1). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgim8d.h"

/* One worker line to our log: our own JSON lines (they carry "pid") pass
 * through; anything else is wrapped as a JSON line tagged with the pid. */
static void emit_line(const worker *w, const char *p, size_t n)
{
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (!n)
        return;
    if (n >= 8 && memcmp(p, "{\"ts\":\"", 7) == 0 && p[n - 1] == '}') {
        char *out = malloc(n + 1);
        if (!out)
            return;
        memcpy(out, p, n);
        out[n] = '\n';
        ssize_t off = 0;
        while ((size_t)off < n + 1) {
            ssize_t k = write(2, out + off, n + 1 - (size_t)off);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            off += k;
        }
        free(out);
        return;
    }
    m8_buf b;
    m8_buf_init(&b, LOG_LINE_MAX * 7 + 64);
    m8_buf_printf(&b, "\"worker_pid\":%ld,\"stream\":\"stderr\",\"line\":", (long)w->pid);
    m8_buf_json_str(&b, p, n);
    m8_log_fields(M8_LOG_WARNING, "worker output", b.data);
    m8_buf_free(&b);
}

/* Reads what a worker wrote; returns false on EOF. */
bool drain_log(worker *w)
{
    char buf[8192];
    for (;;) {
        ssize_t n = read(w->log_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return true; /* EAGAIN */
        if (n == 0) {
            if (w->line && w->line_len)
                emit_line(w, w->line, w->line_len);
            w->line_len = 0;
            return false;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (!w->line)
                break;
            if (buf[i] == '\n' || w->line_len == LOG_LINE_MAX) {
                emit_line(w, w->line, w->line_len);
                w->line_len = 0;
                if (buf[i] == '\n')
                    continue;
            }
            w->line[w->line_len++] = buf[i];
        }
    }
}

int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    dup2(fd, 2);
    close(fd);
    return 0;
}
