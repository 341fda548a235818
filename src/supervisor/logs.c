/* logs.c - fcgim8d's log: each worker's stdout/stderr read line by line
 * and written to our stderr as JSON lines, and --log-file (re)opened onto
 * stderr (SIGUSR1). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fcgim8d.h"

/* Passed-through lines wait here during one drain_log (or the drains of
 * one wake-up, drain_log_held) and are written together, in whole lines.
 * Onto a pipe or a socket at most PIPE_BUF bytes a write, so that no write
 * is split or mixed with another writer's (the sidecar's, say); onto a
 * regular file, where one write lands whole, up to the whole buffer (under
 * load, one write a wake-up instead of one every 4 KiB). */
static char g_out[65536];
static size_t g_out_len, g_out_max;

static size_t out_max(void)
{
    if (!g_out_max) {
        struct stat st;
        g_out_max = fstat(2, &st) == 0 && S_ISREG(st.st_mode) ? sizeof g_out : PIPE_BUF;
    }
    return g_out_max;
}

static void write_out(const char *p, size_t n)
{
    while (n) {
        ssize_t k = write(2, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

void out_flush(void)
{
    write_out(g_out, g_out_len);
    g_out_len = 0;
}

/* One worker line to our log: our own JSON lines (they carry "pid") pass
 * through; anything else is wrapped as a JSON line tagged with the pid. */
static void emit_line(const worker *w, const char *p, size_t n)
{
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    if (!n)
        return;
    if (n >= 8 && memcmp(p, "{\"ts\":\"", 7) == 0 && p[n - 1] == '}') {
        if (g_out_len + n + 1 > out_max())
            out_flush();
        if (n + 1 > out_max()) {
            /* longer than a batch: alone, in one write */
            char *one = malloc(n + 1);
            if (!one)
                return;
            memcpy(one, p, n);
            one[n] = '\n';
            write_out(one, n + 1);
            free(one);
            return;
        }
        memcpy(g_out + g_out_len, p, n);
        g_out[g_out_len + n] = '\n';
        g_out_len += n + 1;
        return;
    }
    out_flush(); /* keep the order */
    m8_buf b;
    m8_buf_init(&b, LOG_LINE_MAX * 7 + 64);
    m8_buf_printf(&b, "\"worker_pid\":%ld,\"stream\":\"stderr\",\"line\":", (long)w->pid);
    m8_buf_json_str(&b, p, n);
    m8_log_fields(M8_LOG_WARNING, "worker output", b.data);
    m8_buf_free(&b);
}

/* Splits what a worker wrote into lines (a line longer than LOG_LINE_MAX
 * is cut there); a line that arrives whole is passed on without a copy. */
static void take(worker *w, const char *p, size_t n)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        size_t room = LOG_LINE_MAX - w->line_len;
        bool cut = len > room;
        size_t part = cut ? room : len;
        bool ends = nl && !cut;
        if (w->line_len == 0 && (ends || cut)) {
            emit_line(w, p, part);
        } else {
            memcpy(w->line + w->line_len, p, part);
            w->line_len += part;
            if (!ends && !cut)
                return; /* the rest of the line comes later */
            emit_line(w, w->line, w->line_len);
            w->line_len = 0;
        }
        size_t used = part + (ends ? 1 : 0);
        p += used;
        n -= used;
    }
}

/* Reads what a worker wrote; returns false on EOF. */
bool drain_log(worker *w)
{
    size_t got;
    bool open = drain_log_held(w, &got);
    out_flush();
    return open;
}

bool drain_log_held(worker *w, size_t *got)
{
    char buf[16384];
    bool open = true;
    *got = 0;
    for (;;) {
        ssize_t n = read(w->log_fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break; /* EAGAIN */
        if (n == 0) {
            if (w->line && w->line_len)
                emit_line(w, w->line, w->line_len);
            w->line_len = 0;
            open = false;
            break;
        }
        *got += (size_t)n;
        if (w->line)
            take(w, buf, (size_t)n);
        if ((size_t)n < sizeof buf)
            break; /* all there was: the next read would say EAGAIN */
    }
    return open;
}

int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    dup2(fd, 2);
    close(fd);
    g_out_max = 0; /* looked at again */
    return 0;
}
