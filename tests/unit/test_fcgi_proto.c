/* test_fcgi_proto - the FastCGI record state machine (fcgi_proto.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "http/fcgi_proto.h"
#include "tap.h"

static void begin(m8_buf *s, uint16_t id, int role, int keep)
{
    unsigned char b[8] = {0, (unsigned char)role, (unsigned char)(keep ? 1 : 0)};
    m8_fcgi_record(s, M8_FCGI_BEGIN_REQUEST, id, b, 8);
}

static void params(m8_buf *s, uint16_t id, const char *const *kv)
{
    m8_buf p;
    m8_buf_init(&p, 1 << 20);
    for (; kv && kv[0]; kv += 2)
        m8_fcgi_encode_pair(&p, kv[0], strlen(kv[0]), kv[1], strlen(kv[1]));
    for (size_t off = 0; off < p.len; off += 65535) {
        size_t n = p.len - off < 65535 ? p.len - off : 65535;
        m8_fcgi_record(s, M8_FCGI_PARAMS, id, p.data + off, n);
    }
    m8_fcgi_record(s, M8_FCGI_PARAMS, id, NULL, 0);
    m8_buf_free(&p);
}

static void stdin_(m8_buf *s, uint16_t id, const char *body, size_t n)
{
    for (size_t off = 0; off < n; off += 65535) {
        size_t k = n - off < 65535 ? n - off : 65535;
        m8_fcgi_record(s, M8_FCGI_STDIN, id, body + off, k);
    }
    m8_fcgi_record(s, M8_FCGI_STDIN, id, NULL, 0);
}

/* Feeds the whole stream, optionally one byte at a time. */
static m8_fcgi_event feed_all(m8_fcgi *f, const m8_buf *s, size_t step, size_t *used_total)
{
    size_t avail = 0, pos = 0;
    m8_fcgi_event ev = M8_FCGI_NEED_MORE;
    while (pos < s->len) {
        avail = avail + step > s->len ? s->len : avail + step;
        size_t used;
        ev = m8_fcgi_feed(f, s->data + pos, avail - pos, &used);
        pos += used;
        if (ev != M8_FCGI_NEED_MORE)
            break;
        if (avail == s->len && used == 0)
            break;
    }
    *used_total = pos;
    return ev;
}

static void test_request(void)
{
    static const char *const kv[] = {"REQUEST_METHOD", "POST", "REQUEST_URI", "/api/echo", NULL};
    for (size_t step = 1; step <= 4096; step *= 64) {
        m8_buf s;
        m8_buf_init(&s, 1 << 20);
        begin(&s, 7, M8_FCGI_RESPONDER, 1);
        params(&s, 7, kv);
        stdin_(&s, 7, "{\"a\":1}", 7);
        m8_fcgi f;
        m8_fcgi_init(&f, 100);
        size_t used;
        m8_fcgi_event ev = feed_all(&f, &s, step, &used);
        is_int(ev, M8_FCGI_REQUEST, "a whole request is reported (fed %zu bytes at a time)", step);
        ok(used == s.len && f.req_id == 7 && f.keep_conn, "request id and FCGI_KEEP_CONN kept");
        ok(f.body.len == 7 && memcmp(f.body.data, "{\"a\":1}", 7) == 0, "body collected");
        m8_arena a;
        m8_arena_init(&a, 0);
        m8_pair *p;
        size_t n;
        ok(m8_fcgi_decode_params(&a, f.params.data, f.params.len, &p, &n) == 0 && n == 2 &&
               strcmp(p[1].value, "/api/echo") == 0,
           "params decoded");
        m8_arena_free(&a);
        m8_fcgi_free(&f);
        m8_buf_free(&s);
    }
}

static void test_body_limit(void)
{
    char body[101];
    memset(body, 'x', sizeof body);
    for (size_t n = 100; n <= 101; n++) {
        m8_buf s;
        m8_buf_init(&s, 1 << 20);
        begin(&s, 1, M8_FCGI_RESPONDER, 0);
        params(&s, 1, NULL);
        stdin_(&s, 1, body, n);
        m8_fcgi f;
        m8_fcgi_init(&f, 100);
        size_t used;
        is_int(feed_all(&f, &s, s.len, &used), M8_FCGI_REQUEST,
               "body of %zu bytes: request completes", n);
        is_int(f.body_too_big, n > 100, "body of %zu bytes with limit 100: too big = %d", n,
               n > 100);
        m8_fcgi_free(&f);
        m8_buf_free(&s);
    }
}

static void test_params_limit(void)
{
    for (size_t total = M8_MAX_PARAMS_BYTES; total <= M8_MAX_PARAMS_BYTES + 1; total++) {
        /* one pair whose encoding is exactly `total` bytes: 1 + 4 + 1 + value */
        size_t vl = total - 6;
        char *v = malloc(vl);
        memset(v, 'v', vl);
        m8_buf enc;
        m8_buf_init(&enc, 1 << 20);
        m8_fcgi_encode_pair(&enc, "N", 1, v, vl);
        m8_buf s;
        m8_buf_init(&s, 1 << 20);
        begin(&s, 1, M8_FCGI_RESPONDER, 0);
        for (size_t off = 0; off < enc.len; off += 65535) {
            size_t k = enc.len - off < 65535 ? enc.len - off : 65535;
            m8_fcgi_record(&s, M8_FCGI_PARAMS, 1, enc.data + off, k);
        }
        m8_fcgi_record(&s, M8_FCGI_PARAMS, 1, NULL, 0);
        stdin_(&s, 1, NULL, 0);
        m8_fcgi f;
        m8_fcgi_init(&f, 100);
        size_t used;
        m8_fcgi_event ev = feed_all(&f, &s, s.len, &used);
        if (total == M8_MAX_PARAMS_BYTES)
            is_int(ev, M8_FCGI_REQUEST, "params of exactly M8_MAX_PARAMS_BYTES are accepted");
        else
            is_int(ev, M8_FCGI_PROTO_ERROR,
                   "params one byte past M8_MAX_PARAMS_BYTES close the connection");
        m8_fcgi_free(&f);
        m8_buf_free(&s);
        m8_buf_free(&enc);
        free(v);
    }
}

static void test_refusals(void)
{
    m8_buf s;
    m8_buf_init(&s, 1 << 20);
    begin(&s, 1, M8_FCGI_RESPONDER, 1);
    begin(&s, 2, M8_FCGI_RESPONDER, 1);
    m8_fcgi f;
    m8_fcgi_init(&f, 100);
    size_t used;
    feed_all(&f, &s, s.len, &used);
    const unsigned char *r = (const unsigned char *)f.reply.data;
    ok(f.reply.len == 16 && r[1] == M8_FCGI_END_REQUEST && r[3] == 2 &&
           r[8 + 4] == M8_FCGI_CANT_MPX_CONN,
       "a second request on a busy connection gets FCGI_CANT_MPX_CONN");
    ok(f.req_id == 1, "the first request stays active");
    m8_fcgi_free(&f);

    m8_buf_reset(&s);
    begin(&s, 3, M8_FCGI_AUTHORIZER, 0);
    m8_fcgi_init(&f, 100);
    feed_all(&f, &s, s.len, &used);
    r = (const unsigned char *)f.reply.data;
    ok(f.reply.len == 16 && r[8 + 4] == M8_FCGI_UNKNOWN_ROLE && f.req_id == 0,
       "a role other than RESPONDER gets FCGI_UNKNOWN_ROLE");
    m8_fcgi_free(&f);

    /* With the AUTHORIZER role accepted (fcgim8-gate): FILTER is still
     * refused; an authorizer request is complete after its empty PARAMS
     * record, without stdin; a stray STDIN afterwards belongs to no request. */
    m8_buf_reset(&s);
    begin(&s, 3, M8_FCGI_FILTER, 0);
    m8_fcgi_init(&f, 100);
    f.authorizer_ok = true;
    feed_all(&f, &s, s.len, &used);
    r = (const unsigned char *)f.reply.data;
    ok(f.reply.len == 16 && r[8 + 4] == M8_FCGI_UNKNOWN_ROLE && f.req_id == 0,
       "with authorizers accepted, FILTER still gets FCGI_UNKNOWN_ROLE");
    m8_fcgi_free(&f);
    static const char *const auth_kv[] = {"REQUEST_METHOD", "GET", "REQUEST_URI", "/x", NULL};
    for (size_t step = 1; step <= 4096; step *= 4096) {
        m8_buf_reset(&s);
        begin(&s, 4, M8_FCGI_AUTHORIZER, 1);
        params(&s, 4, auth_kv);
        size_t whole = s.len;
        stdin_(&s, 4, NULL, 0);
        m8_fcgi_init(&f, 100);
        f.authorizer_ok = true;
        size_t at = 0;
        m8_fcgi_event ev = feed_all(&f, &s, step, &at);
        ok(ev == M8_FCGI_REQUEST && at == whole && f.req_id == 4 && f.role == M8_FCGI_AUTHORIZER &&
               f.body.len == 0 && f.keep_conn,
           "an AUTHORIZER request is complete after its params, without stdin (%s)",
           step == 1 ? "byte by byte" : "at once");
        m8_fcgi_next(&f);
        ok(f.role == 0, "the role is cleared for the next request");
        size_t u = 0;
        ev = m8_fcgi_feed(&f, s.data + at, s.len - at, &u);
        ok(ev == M8_FCGI_NEED_MORE && u == s.len - at && f.req_id == 0 && f.reply.len == 0,
           "a stray STDIN after an authorizer's answer is dropped silently");
        m8_fcgi_free(&f);
    }

    m8_buf_reset(&s);
    m8_fcgi_record(&s, 99, 1, NULL, 0);
    m8_fcgi_init(&f, 100);
    feed_all(&f, &s, s.len, &used);
    r = (const unsigned char *)f.reply.data;
    ok(f.reply.len == 16 && r[1] == M8_FCGI_UNKNOWN_TYPE && r[8] == 99,
       "an unknown record type gets FCGI_UNKNOWN_TYPE naming it");
    m8_fcgi_free(&f);

    m8_buf_reset(&s);
    m8_buf q;
    m8_buf_init(&q, 1024);
    m8_fcgi_encode_pair(&q, "FCGI_MPXS_CONNS", 15, "", 0);
    m8_fcgi_encode_pair(&q, "FCGI_MAX_REQS", 13, "", 0);
    m8_fcgi_record(&s, M8_FCGI_GET_VALUES, 0, q.data, q.len);
    m8_fcgi_init(&f, 100);
    feed_all(&f, &s, s.len, &used);
    ok(f.reply.len > 8 && f.reply.data[1] == M8_FCGI_GET_VALUES_RESULT &&
           memmem(f.reply.data, f.reply.len, "FCGI_MPXS_CONNS0", 16) != NULL,
       "FCGI_GET_VALUES answers FCGI_MPXS_CONNS=0");
    m8_fcgi_free(&f);
    m8_buf_free(&q);

    m8_buf_reset(&s);
    begin(&s, 5, M8_FCGI_RESPONDER, 1);
    m8_fcgi_record(&s, M8_FCGI_ABORT_REQUEST, 5, NULL, 0);
    m8_fcgi_init(&f, 100);
    is_int(feed_all(&f, &s, s.len, &used), M8_FCGI_ABORTED, "ABORT_REQUEST of the active request");
    r = (const unsigned char *)f.reply.data;
    ok(f.reply.len == 16 && r[1] == M8_FCGI_END_REQUEST && f.req_id == 0,
       "an aborted request is confirmed with END_REQUEST and dropped");
    m8_fcgi_free(&f);

    m8_buf_reset(&s);
    m8_buf_append(&s, "\x02\x01\x00\x01\x00\x00\x00\x00", 8);
    m8_fcgi_init(&f, 100);
    is_int(feed_all(&f, &s, s.len, &used), M8_FCGI_PROTO_ERROR,
           "a record of version 2 is a protocol error");
    m8_fcgi_free(&f);
    m8_buf_free(&s);
}

static void test_pairs(void)
{
    m8_buf b;
    m8_buf_init(&b, 1 << 20);
    char big[300];
    memset(big, 'b', sizeof big);
    m8_fcgi_encode_pair(&b, "SHORT", 5, "v", 1);
    m8_fcgi_encode_pair(&b, "LONG", 4, big, sizeof big);
    ok(b.len == 1 + 1 + 5 + 1 + 1 + 4 + 4 + 300,
       "pair lengths use 1 byte under 128, 4 bytes above");
    m8_arena a;
    m8_arena_init(&a, 0);
    m8_pair *p;
    size_t n;
    ok(m8_fcgi_decode_params(&a, b.data, b.len, &p, &n) == 0 && n == 2 && strlen(p[1].value) == 300,
       "1-byte and 4-byte lengths decode");
    is_int(m8_fcgi_decode_params(&a, b.data, b.len - 1, &p, &n), M8_EPARSE,
           "a truncated pair is refused");
    m8_buf_reset(&b);
    m8_buf_append(&b, "\xff\xff\xff\xff\x01", 5);
    is_int(m8_fcgi_decode_params(&a, b.data, b.len, &p, &n), M8_EPARSE,
           "a name length past the stream is refused");
    m8_buf_reset(&b);
    for (size_t i = 0; i < M8_MAX_PARAMS; i++)
        m8_fcgi_encode_pair(&b, "A", 1, "", 0);
    is_int(m8_fcgi_decode_params(&a, b.data, b.len, &p, &n), 0,
           "exactly M8_MAX_PARAMS params are accepted");
    m8_fcgi_encode_pair(&b, "A", 1, "", 0);
    is_int(m8_fcgi_decode_params(&a, b.data, b.len, &p, &n), M8_ETOOBIG,
           "one param past M8_MAX_PARAMS is refused");
    m8_arena_free(&a);
    m8_buf_free(&b);
}

/* The in-place decoder gives the copying decoder's pairs, from inside the
 * stream it rewrites, and leaves a refused stream as it was. */
static void test_params_in_place(void)
{
    char big[300], edge[128];
    memset(big, 'b', sizeof big);
    memset(edge, 'e', sizeof edge);
    m8_buf b;
    m8_buf_init(&b, 1 << 20);
    m8_fcgi_encode_pair(&b, "REQUEST_METHOD", 14, "GET", 3);
    m8_fcgi_encode_pair(&b, "", 0, "", 0);
    m8_fcgi_encode_pair(&b, "EMPTY", 5, "", 0);
    m8_fcgi_encode_pair(&b, "LONG", 4, big, sizeof big);
    m8_fcgi_encode_pair(&b, edge, 127, edge, 128);
    m8_fcgi_encode_pair(&b, big, 200, "v", 1);
    m8_fcgi_encode_pair(&b, "A", 1, "B", 1);
    m8_arena a;
    m8_arena_init(&a, 0);
    m8_pair *want, *got;
    size_t nw = 0, ng = 0;
    char *copy = malloc(b.len + 1); /* the last value's NUL goes to copy[b.len] */
    memcpy(copy, b.data, b.len);
    ok(m8_fcgi_decode_params(&a, b.data, b.len, &want, &nw) == 0 &&
           m8_fcgi_params_in_place(&a, copy, b.len, &got, &ng) == 0 && nw == 7 && ng == 7,
       "both decoders take 1-byte and 4-byte lengths and empty names and values");
    bool same = true, inside = true;
    for (size_t i = 0; i < ng && i < nw; i++) {
        same = same && strcmp(want[i].name, got[i].name) == 0 &&
               strcmp(want[i].value, got[i].value) == 0;
        inside =
            inside && got[i].name >= copy && got[i].value + strlen(got[i].value) <= copy + b.len;
    }
    ok(same, "in place: the same names and values, in order");
    ok(inside,
       "in place: every string lies in the stream, its NUL too (the last on the byte after)");
    ok(strlen(got[3].value) == 300 && strlen(got[4].name) == 127 && strlen(got[4].value) == 128 &&
           strlen(got[5].name) == 200,
       "in place: the lengths around 127/128 hold");

    memcpy(copy, b.data, b.len);
    is_int(m8_fcgi_params_in_place(&a, copy, b.len - 1, &got, &ng), M8_EPARSE,
           "in place: a truncated stream is refused");
    ok(memcmp(copy, b.data, b.len) == 0, "in place: a refused stream is left unchanged");

    /* A NUL inside a name or a value: C strings would end there, the sender's
     * length would not; two readers, two params. */
    m8_buf_reset(&b);
    m8_fcgi_encode_pair(&b, "HTTP_X_A", 8, "one\0two", 7);
    is_int(m8_fcgi_decode_params(&a, b.data, b.len, &got, &ng), M8_EPARSE,
           "a NUL byte inside a value is refused");
    m8_buf_reset(&b);
    m8_fcgi_encode_pair(&b, "HTTP_X\0A", 8, "v", 1);
    is_int(m8_fcgi_decode_params(&a, b.data, b.len, &got, &ng), M8_EPARSE,
           "a NUL byte inside a name is refused");
    free(copy);
    m8_arena_free(&a);
    m8_buf_free(&b);
}

static void test_response(void)
{
    size_t len = 65528 * 2 + 5;
    char *data = malloc(len);
    memset(data, 'r', len);
    m8_buf out;
    m8_buf_init(&out, 1 << 20);
    m8_fcgi_response(&out, 9, data, len, 0);
    const unsigned char *p = (const unsigned char *)out.data;
    size_t pos = 0, stdout_bytes = 0, records = 0;
    bool aligned = true;
    int last_type = 0;
    while (pos + 8 <= out.len) {
        size_t clen = ((size_t)p[pos + 4] << 8) | p[pos + 5];
        if (p[pos + 1] == M8_FCGI_STDOUT)
            stdout_bytes += clen;
        aligned = aligned && ((clen + p[pos + 6]) % 8 == 0) && p[pos + 3] == 9;
        last_type = p[pos + 1];
        pos += 8 + clen + p[pos + 6];
        records++;
    }
    ok(pos == out.len && stdout_bytes == len, "response: all bytes in STDOUT records");
    is_int(records, 5, "response: 3 data records, the empty STDOUT and END_REQUEST");
    ok(aligned, "response: records padded to 8 bytes and carry the request id");
    is_int(last_type, M8_FCGI_END_REQUEST, "response: ends with END_REQUEST");
    m8_buf_free(&out);
    free(data);
}

int main(void)
{
    test_request();
    test_body_limit();
    test_params_in_place();
    test_params_limit();
    test_refusals();
    test_pairs();
    test_response();
    return done_testing();
}
