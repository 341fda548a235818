/* log.c - JSON lines on stderr, one write(2) per line or per batch of whole
 * lines (log.h). */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
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

/* getpid() is a system call in glibc: the pid is read once per process
 * (again in a child after fork). */
static atomic_long g_pid;
static pthread_once_t g_pid_once = PTHREAD_ONCE_INIT;

static void pid_forget(void)
{
    atomic_store(&g_pid, 0);
}

static void pid_register(void)
{
    pthread_atfork(NULL, NULL, pid_forget);
}

static long log_pid(void)
{
    long pid = atomic_load(&g_pid);
    if (pid)
        return pid;
    pthread_once(&g_pid_once, pid_register);
    pid = (long)getpid();
    atomic_store(&g_pid, pid);
    return pid;
}

/* A buffering thread's lines not written yet (m8_log_buffer). */
static _Thread_local bool tl_buffered;
static _Thread_local m8_buf tl_pend;
static _Thread_local double tl_first; /* m8_now_mono() of its oldest line */
static atomic_int g_flush_ms = -1;    /* -1: not read from M8_LOG_FLUSH_MS yet */

static int flush_ms(void)
{
    int ms = atomic_load(&g_flush_ms);
    if (ms >= 0)
        return ms;
    long long v = M8_LOG_FLUSH_MS_DEFAULT;
    const char *e = getenv("M8_LOG_FLUSH_MS");
    if (e && m8_parse_ll(e, 0, 60000, &v) != 0)
        v = M8_LOG_FLUSH_MS_DEFAULT;
    atomic_store(&g_flush_ms, (int)v);
    return (int)v;
}

void m8_log_set_flush_ms(int ms)
{
    atomic_store(&g_flush_ms, ms < 0 ? -1 : ms);
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
    /* A buffering thread builds the line at the end of what it holds;
     * any other writes it at once. */
    m8_buf own, *b = &own;
    size_t start = 0;
    if (tl_buffered) {
        b = &tl_pend;
        start = b->len;
    } else {
        m8_buf_init(&own, M8_LOG_LINE_MAX);
    }
    static const char *const level_json[] = {
        "\",\"level\":\"debug\",\"pid\":", "\",\"level\":\"info\",\"pid\":",
        "\",\"level\":\"warning\",\"pid\":", "\",\"level\":\"error\",\"pid\":",
        "\",\"level\":\"critical\",\"pid\":"};
    int rc = m8_buf_putn(b, "{\"ts\":\"", 7);
    if (!rc)
        rc = m8_buf_putn(b, stamp, 24);
    if (!rc)
        rc = m8_buf_puts(b, level_json[lvl]);
    if (!rc)
        rc = m8_buf_put_u64(b, (uint64_t)log_pid());
    if (!rc)
        rc = m8_buf_putn(b, ",\"msg\":", 7);
    if (!rc)
        rc = m8_buf_json_str(b, msg, strlen(msg));
    if (!rc && extra_json && *extra_json) {
        rc = m8_buf_putc(b, ',');
        if (!rc)
            rc = m8_buf_puts(b, extra_json);
    }
    if (!rc)
        rc = m8_buf_puts(b, "}\n");
    if (!tl_buffered) {
        if (!rc)
            write_all(atomic_load(&g_fd), b->data, b->len);
        m8_buf_free(&own);
        return;
    }
    if (rc) { /* the line did not fit: drop it, keep the ones before */
        b->len = start;
        return;
    }
    double now = m8_now_mono();
    if (b->len > M8_LOG_BATCH_BYTES && start > 0) {
        /* the held lines go first, in one write of whole lines */
        write_all(atomic_load(&g_fd), b->data, start);
        memmove(b->data, b->data + start, b->len - start);
        b->len -= start;
        b->data[b->len] = '\0';
        start = 0;
    }
    if (start == 0)
        tl_first = now;
    if (lvl >= M8_LOG_WARNING || b->len > M8_LOG_BATCH_BYTES ||
        (now - tl_first) * 1000 >= flush_ms())
        m8_log_flush();
}

void m8_log_buffer(bool on)
{
    if (on == tl_buffered)
        return;
    if (on) {
        m8_buf_init(&tl_pend, M8_LOG_BATCH_BYTES + M8_LOG_LINE_MAX);
    } else {
        m8_log_flush();
        m8_buf_free(&tl_pend);
    }
    tl_buffered = on;
}

double m8_log_flush_due(void)
{
    return tl_pend.len ? tl_first + flush_ms() / 1000.0 : 0;
}

void m8_log_flush(void)
{
    if (!tl_pend.len)
        return;
    write_all(atomic_load(&g_fd), tl_pend.data, tl_pend.len);
    m8_buf_reset(&tl_pend);
}

/* The line of a printf-style message (cut at 4 KiB). */
__attribute__((format(printf, 2, 0))) static void log_v(m8_log_level lvl, const char *fmt,
                                                        va_list ap)
{
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    m8_log_fields(lvl, msg, NULL);
}

void m8_log(m8_log_level lvl, const char *fmt, ...)
{
    if (!m8_log_enabled(lvl))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(lvl, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ rate limit */

#define LIMIT_KEY_BYTES 48u

typedef struct limit_bucket {
    char key[LIMIT_KEY_BYTES]; /* "" = unused */
    double tokens, last;       /* last refill (clock seconds) */
    unsigned long long suppressed;
} limit_bucket;

static pthread_mutex_t g_limit_lock = PTHREAD_MUTEX_INITIALIZER;
static limit_bucket g_buckets[M8_LOG_LIMIT_KEYS + 1]; /* the last one: every other key */
static unsigned g_burst = M8_LOG_LIMIT_BURST;
static double g_per_s = M8_LOG_LIMIT_PER_S;
static double (*g_clock)(void) = m8_now_mono;

void m8_log_limit_config(unsigned burst, double per_second, double (*clock)(void))
{
    pthread_mutex_lock(&g_limit_lock);
    g_burst = burst ? burst : 1;
    g_per_s = per_second > 0 ? per_second : M8_LOG_LIMIT_PER_S;
    g_clock = clock ? clock : m8_now_mono;
    memset(g_buckets, 0, sizeof g_buckets);
    pthread_mutex_unlock(&g_limit_lock);
}

/* Under g_limit_lock: the bucket of key (made full on first use). */
static limit_bucket *bucket_of(const char *key, double now)
{
    char k[LIMIT_KEY_BYTES];
    snprintf(k, sizeof k, "%s", key && *key ? key : "-");
    for (size_t i = 0; i < M8_LOG_LIMIT_KEYS; i++) {
        limit_bucket *b = &g_buckets[i];
        if (b->key[0] && strcmp(b->key, k) == 0)
            return b;
        if (!b->key[0]) {
            memcpy(b->key, k, sizeof k);
            b->tokens = g_burst;
            b->last = now;
            return b;
        }
    }
    limit_bucket *b = &g_buckets[M8_LOG_LIMIT_KEYS];
    if (!b->key[0]) {
        snprintf(b->key, sizeof b->key, "other");
        b->tokens = g_burst;
        b->last = now;
    }
    return b;
}

bool m8_log_limit_take(const char *key, m8_log_level lvl)
{
    if (!m8_log_enabled(lvl))
        return false;
    unsigned long long pending = 0;
    bool allowed = false;
    char name[LIMIT_KEY_BYTES];
    pthread_mutex_lock(&g_limit_lock);
    double now = g_clock();
    limit_bucket *b = bucket_of(key, now);
    if (now > b->last) {
        b->tokens += (now - b->last) * g_per_s;
        if (b->tokens > g_burst)
            b->tokens = g_burst;
    }
    b->last = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        allowed = true;
        pending = b->suppressed;
        b->suppressed = 0;
    } else {
        b->suppressed++;
    }
    memcpy(name, b->key, sizeof name);
    pthread_mutex_unlock(&g_limit_lock);
    if (allowed && pending) {
        char msg[LIMIT_KEY_BYTES + 64], extra[LIMIT_KEY_BYTES * 2 + 64];
        snprintf(msg, sizeof msg, "%s: %llu more suppressed", name, pending);
        m8_buf k;
        m8_buf_init(&k, sizeof extra);
        m8_buf_json_str(&k, name, strlen(name));
        snprintf(extra, sizeof extra, "\"key\":%s,\"suppressed\":%llu", k.data ? k.data : "\"\"",
                 pending);
        m8_buf_free(&k);
        m8_log_fields(lvl, msg, extra);
    }
    return allowed;
}

void m8_log_fields_limited(const char *key, m8_log_level lvl, const char *msg,
                           const char *extra_json)
{
    if (m8_log_limit_take(key, lvl))
        m8_log_fields(lvl, msg, extra_json);
}

void m8_log_limited(const char *key, m8_log_level lvl, const char *fmt, ...)
{
    if (!m8_log_limit_take(key, lvl))
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(lvl, fmt, ap);
    va_end(ap);
}
