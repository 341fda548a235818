/* log.c - JSON lines on stderr, one write(2) per line (log.h). */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = M8_LOG_INFO;
static atomic_int g_fd = 2;
static atomic_int g_env_checked;

static const char *const level_names[] = {"debug", "info", "warning", "error", "critical"};

static void check_env(void)
{
    if (atomic_exchange(&g_env_checked, 1))
        return;
    const char *e = getenv("M8_LOG_LEVEL");
    if (!e)
        return;
    for (int i = 0; i < (int)M8_ARRAY_LEN(level_names); i++) {
        if (m8_strcaseeq(e, level_names[i]))
            atomic_store(&g_level, i);
    }
}

void m8_log_set_level(m8_log_level lvl)
{
    atomic_store(&g_env_checked, 1);
    atomic_store(&g_level, (int)lvl);
}

bool m8_log_enabled(m8_log_level lvl)
{
    check_env();
    return (int)lvl >= atomic_load(&g_level);
}

void m8_log_set_fd(int fd)
{
    atomic_store(&g_fd, fd < 0 ? 2 : fd);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* a log write never takes the service down */
        }
        p += w;
        n -= (size_t)w;
    }
}

void m8_log_fields(m8_log_level lvl, const char *msg, const char *extra_json)
{
    if (!m8_log_enabled(lvl))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* The date part changes once a second: format it once per thread. */
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[64];
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = ts.tv_sec;
    }
    long ms = (long)(ts.tv_nsec / 1000000) % 1000;
    char stamp[40];
    memcpy(stamp, cached, 19);
    stamp[19] = '.';
    stamp[20] = (char)('0' + ms / 100);
    stamp[21] = (char)('0' + ms / 10 % 10);
    stamp[22] = (char)('0' + ms % 10);
    stamp[23] = 'Z';
    stamp[24] = '\0';
    m8_buf b;
    m8_buf_init(&b, 64 * 1024);
    m8_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"pid\":%ld,\"msg\":", stamp,
                  level_names[lvl], (long)getpid());
    m8_buf_json_str(&b, msg, strlen(msg));
    if (extra_json && *extra_json) {
        m8_buf_putc(&b, ',');
        m8_buf_puts(&b, extra_json);
    }
    if (m8_buf_puts(&b, "}\n") == 0)
        write_all(atomic_load(&g_fd), b.data, b.len);
    m8_buf_free(&b);
}

void m8_log(m8_log_level lvl, const char *fmt, ...)
{
    if (!m8_log_enabled(lvl))
        return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    m8_log_fields(lvl, msg, NULL);
}
