/* test_log - JSON log lines (log.h): one object per line, levels, escaping;
 * rate-limited lines per reason, with the refused-token spray through
 * m8_auth_check keeping the metrics exact. */
#include "config.h"

#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "builtin/metrics.h"
#include "core/log.h"
#include "shm/shm.h"
#include "tap.h"
#include "testenv.h"

static char captured[65536];

/* Runs fn with the log sent to a pipe; returns what was written. */
static const char *capture(void (*fn)(void))
{
    int p[2];
    if (pipe(p) != 0)
        return "";
    m8_log_set_fd(p[1]);
    fn();
    m8_log_set_fd(-1);
    close(p[1]);
    ssize_t n = read(p[0], captured, sizeof captured - 1);
    close(p[0]);
    captured[n > 0 ? n : 0] = '\0';
    return captured;
}

static void info_line(void)
{
    m8_log(M8_LOG_INFO, "hello \"quoted\" %d\n", 42);
}

static void debug_line(void)
{
    m8_log(M8_LOG_DEBUG, "hidden");
}

static void fields_line(void)
{
    m8_log_fields(M8_LOG_WARNING, "request", "\"status\":503,\"route\":\"/api/x\"");
}

/* ------------------------------------------------------------ rate limit */

static double fake_now;
static double fake_clock(void)
{
    return fake_now;
}

/* Lines of the log file at path holding needle; *text gets the content. */
static size_t count_in(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static char *read_all(int fd)
{
    off_t end = lseek(fd, 0, SEEK_END);
    char *buf = calloc(1, end > 0 ? (size_t)end + 1 : 1);
    if (buf && end > 0 && pread(fd, buf, (size_t)end, 0) != (ssize_t)end)
        buf[0] = '\0';
    return buf;
}

static int temp_log(char *path)
{
    int fd = mkstemp(path);
    unlink(path);
    m8_log_set_fd(fd);
    return fd;
}

static void test_limited(void)
{
    char path[] = "/tmp/m8-log-test-XXXXXX";
    int fd = temp_log(path);
    fake_now = 1000.0;
    m8_log_limit_config(10, 2.0, fake_clock);
    for (int i = 0; i < 100000; i++)
        m8_log_limited("test.flood", M8_LOG_WARNING, "refused %d", i);
    m8_log_limited("test.other", M8_LOG_WARNING, "another reason");
    char *out = read_all(fd);
    is_int(count_in(out, "\"msg\":\"refused "), 10,
           "a flood of 100000 lines of one reason writes the burst (10) and no more");
    is_int(count_in(out, "another reason"), 1, "another reason has its own budget");
    is_int(count_in(out, "suppressed"), 0, "nothing says suppressed before the next line");
    free(out);

    fake_now += 1.0; /* two tokens back */
    m8_log_limited("test.flood", M8_LOG_WARNING, "refused again");
    m8_log_limited("test.flood", M8_LOG_WARNING, "refused again");
    m8_log_limited("test.flood", M8_LOG_WARNING, "refused again");
    out = read_all(fd);
    is_int(count_in(out, "\"msg\":\"test.flood: 99990 more suppressed\""), 1,
           "the next line of the reason is preceded by one \"N more suppressed\" line");
    ok(strstr(out, "\"key\":\"test.flood\",\"suppressed\":99990") != NULL,
       "... with the key and the count as members");
    is_int(count_in(out, "refused again"), 2, "the rate refills the bucket (2 a second)");
    free(out);

    m8_log_set_level(M8_LOG_ERROR);
    fake_now += 100.0;
    m8_log_limited("test.quiet", M8_LOG_WARNING, "below the level");
    m8_log_set_level(M8_LOG_INFO);
    out = read_all(fd);
    ok(!strstr(out, "below the level") && !strstr(out, "test.quiet"),
       "a line below the level is neither written nor counted as suppressed");
    free(out);

    /* more keys than buckets: the extra ones share one, nothing grows */
    for (int k = 0; k < (int)M8_LOG_LIMIT_KEYS + 50; k++) {
        char key[32];
        snprintf(key, sizeof key, "test.k%d", k);
        for (int i = 0; i < 20; i++)
            m8_log_limited(key, M8_LOG_WARNING, "many keys");
    }
    out = read_all(fd);
    ok(count_in(out, "many keys") <= (M8_LOG_LIMIT_KEYS + 1) * 10,
       "past %u keys every other key shares one budget (%zu lines)", M8_LOG_LIMIT_KEYS,
       count_in(out, "many keys"));
    free(out);
    m8_log_set_fd(-1);
    close(fd);
    m8_log_limit_config(M8_LOG_LIMIT_BURST, M8_LOG_LIMIT_PER_S, NULL);
}

static void count_failure(const char *reason, const char *type, void *data)
{
    (void)type;
    m8_metrics_auth_failure(data, reason);
}

/* A spray of refused tokens through the real decision: a bounded number of
 * lines, every refusal counted. */
static void test_spray(void)
{
    m8_errlist errs = {0};
    m8_settings *s = m8t_settings(m8t_env0(), &errs);
    char err[256] = "";
    m8_auth *au = s ? m8_auth_new(s, err, sizeof err) : NULL;
    m8_shm *shm = m8_shm_private();
    if (!ok(au && shm, "a verifier and a segment for the spray %s", err))
        return;
    m8_auth_hooks hooks = {.on_failure = count_failure, .data = &shm->slots[0]};
    m8_auth_set_hooks(au, &hooks);
    char path[] = "/tmp/m8-log-spray-XXXXXX";
    int fd = temp_log(path);
    fake_now = 5000.0;
    m8_log_limit_config(M8_LOG_LIMIT_BURST, M8_LOG_LIMIT_PER_S, fake_clock);
    m8_request req;
    m8_req_init(&req, NULL);
    enum { N = 5000 };
    for (int i = 0; i < N; i++) {
        char hdr[64];
        snprintf(hdr, sizeof hdr, "Bearer spray.%d.x", i);
        m8_pair p[] = {
            {"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/x"}, {"HTTP_AUTHORIZATION", hdr}};
        m8_req_reset(&req);
        m8_req_from_params(&req, p, 3, NULL, 0);
        m8_auth_check(au, &req, M8_USER);
        if (i == N / 2)
            fake_now += 10.0; /* the burst is back halfway */
    }
    char *out = read_all(fd);
    size_t lines = count_in(out, "auth.fail type=access");
    ok(lines >= M8_LOG_LIMIT_BURST && lines <= 2 * M8_LOG_LIMIT_BURST,
       "%d refused tokens write %zu auth.fail lines (two bursts), not one each", N, lines);
    is_int(count_in(out, "more suppressed"), 1, "one line counts the suppressed ones");
    ok(strstr(out, "\"suppressed\":2491") != NULL, "... all %d of them", N / 2 + 1 - 10);
    is_int((long long)atomic_load(&shm->slots[0].auth_failures[0]), N,
           "the failure counter behind the metrics counts every one of the %d", N);
    free(out);
    m8_req_free(&req);
    m8_log_set_fd(-1);
    close(fd);
    m8_log_limit_config(M8_LOG_LIMIT_BURST, M8_LOG_LIMIT_PER_S, NULL);
    m8_auth_free(au);
    m8_shm_unmap(shm);
    m8_settings_free(s);
}

/* ------------------------------------------------------------ batches */

/* Bytes waiting in the pipe now (non-blocking read). */
static size_t pipe_take(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_batches(void)
{
    int p[2];
    if (pipe(p) != 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) {
        ok(0, "pipe");
        return;
    }
    static char got[1 << 20];
    m8_log_set_fd(p[1]);
    m8_log_set_flush_ms(60000);
    m8_log_buffer(true);
    for (int i = 0; i < 3; i++)
        m8_log(M8_LOG_INFO, "held %d", i);
    is_int((long)pipe_take(p[0], got, sizeof got), 0,
           "a buffering thread holds its info lines (nothing written yet)");
    ok(m8_log_flush_due() > m8_now_mono() + 50,
       "... and says when they are due (M8_LOG_FLUSH_MS after the first)");
    m8_log(M8_LOG_WARNING, "a warning");
    pipe_take(p[0], got, sizeof got);
    ok(count_lines(got) == 4 && strstr(got, "held 0") < strstr(got, "held 2") &&
           strstr(got, "held 2") < strstr(got, "a warning"),
       "a warning writes the held lines with it, in order");
    is_int((long)(m8_log_flush_due() == 0), 1, "... and nothing is held after it");

    /* Many lines: every write is whole lines of at most M8_LOG_BATCH_BYTES
     * (a pipe never splits such a write), and none is lost. */
    char word[200];
    memset(word, 'x', sizeof word - 1);
    word[sizeof word - 1] = '\0';
    bool whole = true, small = true;
    size_t lines = 0;
    for (int i = 0; i < 500; i++) {
        m8_log(M8_LOG_INFO, "line %03d %s", i, word);
        size_t n = pipe_take(p[0], got, sizeof got);
        if (n) {
            whole = whole && got[n - 1] == '\n';
            small = small && n <= M8_LOG_BATCH_BYTES;
            lines += count_lines(got);
        }
    }
    ok(lines > 0 && whole && small,
       "full batches are written as whole lines, at most M8_LOG_BATCH_BYTES a write");
    m8_log_flush();
    lines += count_lines((pipe_take(p[0], got, sizeof got), got));
    is_int((long)lines, 500, "m8_log_flush writes the rest: 500 lines, none lost");

    /* A line longer than a batch is written alone, whole. */
    static char big[10000];
    memset(big, 'y', sizeof big - 1);
    memcpy(big, "\"v\":\"", 5);
    big[sizeof big - 2] = '"';
    m8_log(M8_LOG_INFO, "short");
    m8_log_fields(M8_LOG_INFO, "big", big);
    m8_log_flush();
    size_t n = pipe_take(p[0], got, sizeof got);
    ok(count_lines(got) == 2 && n > sizeof big && got[n - 1] == '\n',
       "a line longer than a batch still comes out whole, after the held one");

    m8_log(M8_LOG_INFO, "last");
    m8_log_buffer(false);
    pipe_take(p[0], got, sizeof got);
    ok(strstr(got, "last") != NULL, "leaving buffered mode writes what is held");

    m8_log_set_flush_ms(0);
    m8_log_buffer(true);
    m8_log(M8_LOG_INFO, "at once");
    pipe_take(p[0], got, sizeof got);
    ok(strstr(got, "at once") != NULL, "M8_LOG_FLUSH_MS=0: every line is written at once");
    m8_log_buffer(false);
    m8_log_set_flush_ms(-1);
    m8_log_set_fd(-1);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    m8_log_set_level(M8_LOG_INFO);
    const char *out = capture(info_line);
    size_t len = strlen(out);
    ok(len > 0 && out[len - 1] == '\n' && strchr(out, '\n') == out + len - 1,
       "a log call writes exactly one line");
    json_object *o = json_tokener_parse(out);
    ok(o && json_object_is_type(o, json_type_object), "the line is one JSON object");
    json_object *v;
    is_str(o && json_object_object_get_ex(o, "msg", &v) ? json_object_get_string(v) : NULL,
           "hello \"quoted\" 42\n", "the message survives escaping (quotes, newline)");
    is_str(o && json_object_object_get_ex(o, "level", &v) ? json_object_get_string(v) : NULL,
           "info", "the level is named");
    ok(o && json_object_object_get_ex(o, "ts", &v) && strlen(json_object_get_string(v)) == 24 &&
           json_object_get_string(v)[23] == 'Z',
       "the timestamp is ISO 8601 UTC with milliseconds");
    ok(o && json_object_object_get_ex(o, "pid", &v) && json_object_get_int(v) == (int)getpid(),
       "the line carries the pid");
    json_object_put(o);

    is_str(capture(debug_line), "", "a line below the level is not written");
    ok(!m8_log_enabled(M8_LOG_DEBUG) && m8_log_enabled(M8_LOG_ERROR),
       "m8_log_enabled follows the level");

    o = json_tokener_parse(capture(fields_line));
    ok(o && json_object_object_get_ex(o, "status", &v) && json_object_get_int(v) == 503,
       "extra fields become members of the same object");
    is_str(o && json_object_object_get_ex(o, "level", &v) ? json_object_get_string(v) : NULL,
           "warning", "warning level named");
    json_object_put(o);

    test_limited();
    test_spray();
    test_batches();
    return done_testing();
}
