/* test_sse.c - the incremental SSE parser (lib/stream/sse.c): the issuer's
 * frames (doc/wire.md#sse-framing), every WHATWG field rule it implements, line
 * terminators, BOM, comments, the limits at and one past, and the same
 * events whatever the split of the bytes. */
#include "stream/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

/* ---------------------------------------------------------------- transcript */

typedef struct rec {
    m8_buf log;
    int events, comments, stop_after; /* stop_after: return 7 after that many events */
    size_t first_len;                 /* data length of the first event */
} rec;

static void put_escaped(m8_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            m8_buf_puts(b, "\\n");
        else if (c < 0x20 || c >= 0x7F || c == '\\')
            m8_buf_printf(b, "\\x%02x", c);
        else
            m8_buf_putc(b, (char)c);
    }
}

static int on_event(const m8_sse_event *ev, void *ctx)
{
    rec *r = ctx;
    if (ev->kind == M8_SSE_COMMENT) {
        r->comments++;
        m8_buf_puts(&r->log, "C{");
        put_escaped(&r->log, ev->data, ev->data_len);
        m8_buf_puts(&r->log, ev->too_big ? "}!BIG\n" : "}\n");
        return 0;
    }
    if (r->events++ == 0)
        r->first_len = ev->data_len;
    if (strlen(ev->event) != ev->event_len || ev->data[ev->data_len] != '\0')
        m8_buf_puts(&r->log, "BADLEN");
    m8_buf_puts(&r->log, "E[");
    put_escaped(&r->log, ev->event, ev->event_len);
    m8_buf_puts(&r->log, "]{");
    put_escaped(&r->log, ev->data, ev->data_len);
    m8_buf_puts(&r->log, "}");
    if (ev->id) {
        m8_buf_puts(&r->log, "id=");
        put_escaped(&r->log, ev->id, ev->id_len);
    } else {
        m8_buf_puts(&r->log, "-");
    }
    if (ev->retry_ms >= 0)
        m8_buf_printf(&r->log, " retry=%lld", ev->retry_ms);
    m8_buf_puts(&r->log, ev->too_big ? " !BIG\n" : "\n");
    return r->stop_after && r->events >= r->stop_after ? 7 : 0;
}

/* Feeds s in chunks of `chunk` bytes (0: at once) and returns the
 * transcript (caller frees). */
static char *run_chunks(const char *s, size_t n, size_t chunk)
{
    m8_sse p;
    rec r = {0};
    m8_buf_init(&r.log, 1u << 24);
    m8_buf_puts(&r.log, "");
    m8_sse_init(&p);
    if (chunk == 0)
        chunk = n ? n : 1;
    for (size_t i = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        if (m8_sse_push(&p, s + i, k, on_event, &r) != 0)
            m8_buf_puts(&r.log, "PUSHERR\n");
    }
    m8_sse_free(&p);
    return m8_buf_steal(&r.log);
}

static char *run(const char *s)
{
    return run_chunks(s, strlen(s), 0);
}

static void check(const char *stream, const char *want, const char *what)
{
    char *got = run(stream);
    is_str(got, want, "%s", what);
    free(got);
}

/* ---------------------------------------------------------------- rules */

static void test_issuer_frames(void)
{
    check(
        "id: 1751000000123456789-7\nevent: session-revoked\ndata: {\"payload\": {\"a\": 1}, "
        "\"sig\": \"00\"}\n\n",
        "E[session-revoked]{{\"payload\": {\"a\": 1}, \"sig\": \"00\"}}id=1751000000123456789-7\n",
        "SSE event frame: id, event name and data");
    check(": ping\n\n", "C{ping}\n", "SSE heartbeat: a comment, nothing dispatched");
    check("event: gap\ndata: {}\n\n", "E[gap]{{}}-\n", "SSE gap frame: no id");
    check("event: gap\n\n", "", "a gap without data is not dispatched");
}

static void test_terminators(void)
{
    check("data: a\n\n", "E[message]{a}-\n", "LF ends lines");
    check("data: a\r\r", "E[message]{a}-\n", "CR ends lines");
    check("data: a\r\n\r\n", "E[message]{a}-\n", "CRLF ends lines");
    check("data: a\r\ndata: b\rdata: c\n\r\n", "E[message]{a\\nb\\nc}-\n", "mixed terminators");
    check("data: a\n\r\n\r", "E[message]{a}-\n",
          "LF then CRLF is one blank line; a lone CR an empty line");
    check("data: a\r\r\n", "E[message]{a}-\n", "CR then CRLF: the blank line is the CRLF");
    check("data: a\n\n\n\n", "E[message]{a}-\n", "extra blank lines dispatch nothing");
    check("data: a", "", "a last line without terminator is never dispatched");
    check("data: a\n", "", "an event without its blank line is never dispatched");
}

static void test_fields(void)
{
    check("data:a\n\n", "E[message]{a}-\n", "no space after the colon");
    check("data:  a \n\n", "E[message]{ a }-\n", "only one leading space is removed");
    check("data\n\n", "E[message]{}-\n", "a name without colon is a field with an empty value");
    check("data:\n\n", "E[message]{}-\n", "an empty data line dispatches empty data");
    check("data\ndata\n\n", "E[message]{\\n}-\n", "two empty data lines give one LF");
    check("data: a\ndata: b\n\n", "E[message]{a\\nb}-\n", "data lines joined with LF");
    check("data: a:b: c\n\n", "E[message]{a:b: c}-\n", "the value keeps later colons");
    check("event: x\nevent: y\ndata: 1\n\n", "E[y]{1}-\n", "the last event name wins");
    check("event:\ndata: 1\n\n", "E[message]{1}-\n", "an empty event name is message");
    check("event: x\ndata: 1\n\ndata: 2\n\n", "E[x]{1}-\nE[message]{2}-\n",
          "the event name is reset after dispatch");
    check("event: x\n\ndata: 2\n\n", "E[message]{2}-\n",
          "the event name is reset by a blank line without data");
    check("id: 1\nid: 2\ndata: x\n\n", "E[message]{x}id=2\n", "the last id wins");
    check("id\ndata: x\n\n", "E[message]{x}id=\n", "an empty id is kept as the empty string");
    check("id: 1\ndata: x\n\ndata: y\n\n", "E[message]{x}id=1\nE[message]{y}-\n",
          "the event's id is its own: the next event without id has none");
    check("DATA: x\nData: y\n\n", "", "field names are case-sensitive");
    check(" data: x\n\n", "", "a leading space makes another field name");
    check("foo: bar\ndata: x\nbaz\n\n", "E[message]{x}-\n", "unknown fields are ignored");
    check("event: x\nid: 9\n\n", "", "no data, nothing dispatched");
    check(": c1\n:\n:  two\ndata: x\n: c3\n\n", "C{c1}\nC{}\nC{ two}\nC{c3}\nE[message]{x}-\n",
          "comments anywhere, one leading space removed, the event unaffected");
    check("retry: 1500\ndata: x\n\n", "E[message]{x}- retry=1500\n", "retry sets the time");
    check("retry: 1500\n\ndata: x\n\n", "E[message]{x}- retry=1500\n",
          "retry is kept across events (not per event)");
    check("retry: 15a\ndata: x\n\n", "E[message]{x}-\n", "retry with a non-digit is ignored");
    check("retry:\ndata: x\n\n", "E[message]{x}-\n", "an empty retry is ignored");
    check("retry: -5\ndata: x\n\n", "E[message]{x}-\n", "a negative retry is ignored");
    check("retry: 0\ndata: x\n\n", "E[message]{x}- retry=0\n", "retry 0 is a value");
    check("retry: 1000000000000000000\ndata: x\n\n", "E[message]{x}-\n",
          "a 19-digit retry is ignored (no overflow)");
    check("retry: 999999999999999999\ndata: x\n\n", "E[message]{x}- retry=999999999999999999\n",
          "an 18-digit retry is taken");

    /* the NUL-in-id rule needs lengths */
    const char s[] = "id: a\0b\ndata: x\n\nid: ok\ndata: y\n\n";
    char *got = run_chunks(s, sizeof s - 1, 0);
    is_str(got, "E[message]{x}-\nE[message]{y}id=ok\n", "an id containing NUL is ignored");
    free(got);
    const char d[] = "data: a\0b\n\n";
    got = run_chunks(d, sizeof d - 1, 0);
    is_str(got, "E[message]{a\\x00b}-\n", "NUL bytes in data pass through with the length");
    free(got);
}

static void test_bom(void)
{
    check("\xEF\xBB\xBF"
          "data: x\n\n",
          "E[message]{x}-\n", "a BOM at the stream start is dropped");
    check("\xEF\xBB\xBF\xEF\xBB\xBF"
          "data: x\n\ndata: y\n\n",
          "E[message]{y}-\n", "only one BOM: a second one is part of the first field name");
    check("data: x\n\n\xEF\xBB\xBF"
          "data: y\n\n",
          "E[message]{x}-\n", "a BOM later in the stream is text");
    check("\xEF\xBB"
          "data: x\n\ndata: y\n\n",
          "E[message]{y}-\n", "half a BOM is text (its bytes start the first line)");
    check("\xEF"
          "\n"
          "data: y\n\n",
          "E[message]{y}-\n", "one BOM byte then LF: a line of its own");
    check(":\xEF\xBB\xBF\n\n", "C{\\xef\\xbb\\xbf}\n", "BOM bytes inside a comment are text");

    /* a BOM split over pushes, and again after a reset */
    m8_sse p;
    rec r = {0};
    m8_buf_init(&r.log, 4096);
    m8_sse_init(&p);
    m8_sse_push(&p, "\xEF", 1, on_event, &r);
    m8_sse_push(&p, "\xBB", 1, on_event, &r);
    m8_sse_push(&p,
                "\xBF"
                "data: a\n\n",
                10, on_event, &r);
    m8_sse_reset(&p);
    m8_sse_push(&p,
                "\xEF\xBB\xBF"
                "data: b\n\n",
                12, on_event, &r);
    is_str(r.log.data, "E[message]{a}-\nE[message]{b}-\n",
           "a BOM split over three pushes is dropped; after a reset one is dropped again");
    m8_buf_free(&r.log);
    m8_sse_free(&p);
}

static void test_reset_and_stop(void)
{
    m8_sse p;
    rec r = {0};
    m8_buf_init(&r.log, 4096);
    m8_sse_init(&p);
    is_str(m8_sse_last_id(&p, NULL), NULL, "no last id before any id field");
    const char *a = "id: 41\ndata: a\n\nid: 42\nevent: x\ndata: partial";
    m8_sse_push(&p, a, strlen(a), on_event, &r);
    size_t n;
    is_str(m8_sse_last_id(&p, &n), "42",
           "the WHATWG last id is sticky, even from an unfinished event");
    is_int(n, 2, "... with its length");
    m8_sse_reset(&p);
    const char *b = "\ndata: b\n\n";
    m8_sse_push(&p, b, strlen(b), on_event, &r);
    is_str(r.log.data, "E[message]{a}id=41\nE[message]{b}-\n",
           "reset drops the partial line and event (name, id)");
    is_str(m8_sse_last_id(&p, NULL), "42", "reset keeps the sticky last id");
    const char *c = "id\ndata: c\n\n";
    m8_sse_push(&p, c, strlen(c), on_event, &r);
    is_str(m8_sse_last_id(&p, &n), "", "an empty id field sets the last id to the empty string");
    m8_sse_free(&p);
    m8_buf_free(&r.log);

    m8_sse_init(&p);
    rec s = {.stop_after = 1};
    m8_buf_init(&s.log, 4096);
    const char *d = "data: 1\n\ndata: 2\n\n";
    is_int(m8_sse_push(&p, d, strlen(d), on_event, &s), 7,
           "a nonzero callback return stops the push");
    is_int(s.events, 1, "... and no later event is delivered");
    m8_buf_free(&s.log);
    m8_sse_free(&p);
}

/* ---------------------------------------------------------------- limits */

static char *repeat(const char *head, char c, size_t n, const char *tail)
{
    size_t h = strlen(head), t = strlen(tail);
    char *s = malloc(h + n + t + 1);
    memcpy(s, head, h);
    memset(s + h, c, n);
    memcpy(s + h + n, tail, t + 1);
    return s;
}

static void test_limits(void)
{
    const size_t L = M8_MAX_SSE_LINE_BYTES, E = M8_MAX_SSE_EVENT_BYTES;
    rec r = {0};
    m8_sse p;

    /* a data line of exactly L bytes ("data: " + L-6), then one more */
    for (size_t extra = 0; extra <= 1; extra++) {
        char *s = repeat("data: ", 'x', L - 6 + extra, "\n\ndata: next\n\n");
        m8_buf_init(&r.log, 1u << 20);
        r.events = 0;
        r.first_len = 0;
        m8_sse_init(&p);
        m8_sse_push(&p, s, strlen(s), on_event, &r);
        if (!extra)
            ok(r.events == 2 && r.first_len == L - 6 &&
                   strstr(r.log.data, "}-\nE[message]{next}-\n"),
               "a data line of exactly %zu bytes is delivered whole", L);
        else
            is_str(r.log.data, "E[message]{}- !BIG\nE[message]{next}-\n",
                   "a data line of %zu bytes: its event is too_big, the stream goes on", L + 1);
        m8_sse_free(&p);
        m8_buf_free(&r.log);
        free(s);
    }
    char *s = repeat(":", 'c', L, "\ndata: x\n\n");
    char *got = run(s);
    ok(strstr(got, "}!BIG\nE[message]{x}-\n") != NULL,
       "a comment one past the line limit is cut and flagged; the event after is fine");
    free(got);
    free(s);
    s = repeat("foo: ", 'c', L, "\ndata: x\n\n");
    check(s, "E[message]{x}-\n", "an unknown field past the limit is ignored");
    free(s);
    s = repeat("retry: ", '1', L, "\ndata: x\n\n");
    check(s, "E[message]{x}-\n", "a retry line past the limit is ignored");
    free(s);
    s = repeat("", 'f', L + 10, ": x\ndata: y\n\n");
    check(s, "E[message]{y}-\n", "a field name longer than the limit is ignored");
    free(s);
    s = repeat("id: ", '7', L - 4 + 1, "\ndata: x\n\ndata: y\n\n");
    check(s, "E[message]{}- !BIG\nE[message]{y}-\n", "an id line one past the limit: too_big");
    free(s);
    s = repeat("id: ", '7', L - 4, "\ndata: x\n\n");
    got = run(s);
    ok(strlen(got) == strlen("E[message]{x}id=\n") + L - 4, "an id line at the limit is kept");
    free(got);
    free(s);
    s = repeat("event: ", 'e', L - 7 + 1, "\ndata: x\n\n");
    check(s, "E[message]{}- !BIG\n", "an event line one past the limit: too_big (type unknown)");
    free(s);

    /* event data: k lines of `line` bytes joined by LF = exactly E, then E+1 */
    const size_t line = 4095; /* 16 lines: 16 * 4095 + 15 LF = 65535 */
    for (size_t extra = 0; extra <= 1; extra++) {
        m8_buf b;
        m8_buf_init(&b, 1u << 20);
        size_t total = 0, k = 0;
        while (total < E) {
            size_t want = E + extra - total - (k ? 1 : 0); /* minus the joining LF */
            size_t this_line = want < line ? want : line;
            m8_buf_puts(&b, "data: ");
            for (size_t i = 0; i < this_line; i++)
                m8_buf_putc(&b, 'd');
            m8_buf_putc(&b, '\n');
            total += this_line + (k ? 1 : 0);
            k++;
        }
        m8_buf_puts(&b, "\ndata: after\n\n");
        m8_buf_init(&r.log, 1u << 22);
        r.events = 0;
        r.first_len = 0;
        m8_sse_init(&p);
        m8_sse_push(&p, b.data, b.len, on_event, &r);
        if (!extra)
            ok(r.events == 2 && r.first_len == E && strstr(r.log.data, "}-\nE[message]{after}-\n"),
               "event data of exactly %zu bytes (%zu lines) is delivered", E, k);
        else
            is_str(r.log.data, "E[message]{}- !BIG\nE[message]{after}-\n",
                   "event data of %zu bytes: too_big, the next event is fine", E + 1);
        m8_sse_free(&p);
        m8_buf_free(&r.log);
        m8_buf_free(&b);
    }
}

/* ---------------------------------------------------------------- splits */

static const char stream[] = "\xEF\xBB\xBF: hello\r\n"
                             "retry: 3000\r"
                             "id: 1751000000123456789-1\n"
                             "event: session-revoked\n"
                             "data: {\"payload\": {\"user_id\": \"u\"}, \"sig\": \"ab\"}\r\n"
                             "\r\n"
                             ": ping\n\n"
                             "event: gap\r\ndata: {}\r\r"
                             "data\n"
                             "data:two\n"
                             "foo:bar\n"
                             "id\n"
                             "\n"
                             "id: x\0y\n"
                             "data: nul \0 in data\n\n"
                             "event: user-deleted\n"
                             "id: 1751000000123456789-2\n"
                             "data: {}\n"
                             "\r"
                             "event: unfinished\n"
                             "data: never";

static void test_splits(void)
{
    size_t n = sizeof stream - 1;
    char *whole = run_chunks(stream, n, 0);
    is_str(whole,
           "C{hello}\n"
           "E[session-revoked]{{\"payload\": {\"user_id\": \"u\"}, \"sig\": "
           "\"ab\"}}id=1751000000123456789-1 "
           "retry=3000\n"
           "C{ping}\n"
           "E[gap]{{}}- retry=3000\n"
           "E[message]{\\ntwo}id= retry=3000\n"
           "E[message]{nul \\x00 in data}- retry=3000\n"
           "E[user-deleted]{{}}id=1751000000123456789-2 retry=3000\n",
           "a mixed stream read at once");
    int bad = 0;
    for (size_t chunk = 1; chunk <= 7; chunk++) {
        char *got = run_chunks(stream, n, chunk);
        if (strcmp(got, whole) != 0 && bad++ < 3)
            diag("chunks of %zu differ:\n%s", chunk, got);
        free(got);
    }
    is_int(bad, 0, "the same events fed in chunks of 1 to 7 bytes");
    bad = 0;
    for (size_t at = 0; at <= n; at++) {
        m8_sse p;
        rec r = {0};
        m8_buf_init(&r.log, 1u << 20);
        m8_buf_puts(&r.log, "");
        m8_sse_init(&p);
        m8_sse_push(&p, stream, at, on_event, &r);
        m8_sse_push(&p, stream + at, n - at, on_event, &r);
        if (strcmp(r.log.data, whole) != 0 && bad++ < 3)
            diag("split at %zu differs:\n%s", at, r.log.data);
        m8_sse_free(&p);
        m8_buf_free(&r.log);
    }
    is_int(bad, 0, "the same events split in two at every one of the %zu byte positions", n + 1);
    bad = 0;
    for (size_t a = 0; a <= n; a += 3) {
        for (size_t b = a; b <= n; b += 5) {
            m8_sse p;
            rec r = {0};
            m8_buf_init(&r.log, 1u << 20);
            m8_buf_puts(&r.log, "");
            m8_sse_init(&p);
            m8_sse_push(&p, stream, a, on_event, &r);
            m8_sse_push(&p, stream + a, b - a, on_event, &r);
            m8_sse_push(&p, stream + b, n - b, on_event, &r);
            if (strcmp(r.log.data, whole) != 0)
                bad++;
            m8_sse_free(&p);
            m8_buf_free(&r.log);
        }
    }
    is_int(bad, 0, "the same events split in three at many position pairs");
    free(whole);

    /* zero-length pushes change nothing */
    m8_sse p;
    rec r = {0};
    m8_buf_init(&r.log, 1024);
    m8_sse_init(&p);
    m8_sse_push(&p, "data: a\r", 8, on_event, &r);
    m8_sse_push(&p, "", 0, on_event, &r);
    m8_sse_push(&p, "\n", 1, on_event, &r);
    m8_sse_push(&p, "", 0, on_event, &r);
    m8_sse_push(&p, "\n", 1, on_event, &r);
    is_str(r.log.data, "E[message]{a}-\n", "empty pushes between CR and LF are harmless");
    m8_sse_free(&p);
    m8_buf_free(&r.log);
}

int main(void)
{
    test_issuer_frames();
    test_terminators();
    test_fields();
    test_bom();
    test_reset_and_stop();
    test_limits();
    test_splits();
    return done_testing();
}
