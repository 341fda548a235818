/* sse.c - incremental Server-Sent Events parser (sse.h). */
#include "stream/sse.h"

#include <string.h>

#define BOM_SETTLED 3u

void m8_sse_init(m8_sse *p)
{
    memset(p, 0, sizeof *p);
    m8_buf_init(&p->line, M8_MAX_SSE_LINE_BYTES);
    m8_buf_init(&p->data, M8_MAX_SSE_EVENT_BYTES + 1); /* + the LF after the last line */
    m8_buf_init(&p->event, M8_MAX_SSE_LINE_BYTES);
    m8_buf_init(&p->id, M8_MAX_SSE_LINE_BYTES);
    m8_buf_init(&p->last_id, M8_MAX_SSE_LINE_BYTES);
    p->retry_ms = -1;
}

void m8_sse_free(m8_sse *p)
{
    m8_buf_free(&p->line);
    m8_buf_free(&p->data);
    m8_buf_free(&p->event);
    m8_buf_free(&p->id);
    m8_buf_free(&p->last_id);
}

static void clear_event(m8_sse *p)
{
    m8_buf_reset(&p->data);
    m8_buf_reset(&p->event);
    m8_buf_reset(&p->id);
    p->has_data = p->has_id = p->too_big = false;
}

void m8_sse_reset(m8_sse *p)
{
    clear_event(p);
    m8_buf_reset(&p->line);
    p->line_long = p->after_cr = false;
    p->bom = 0;
}

const char *m8_sse_last_id(const m8_sse *p, size_t *len)
{
    if (len)
        *len = p->has_last_id ? p->last_id.len : 0;
    if (!p->has_last_id)
        return NULL;
    return p->last_id.data ? p->last_id.data : "";
}

static const char *str0(const m8_buf *b)
{
    return b->data ? b->data : "";
}

static int set(m8_buf *b, const char *v, size_t n)
{
    m8_buf_reset(b);
    return m8_buf_append(b, v, n);
}

static int dispatch(m8_sse *p, m8_sse_fn fn, void *ctx)
{
    int rc = 0;
    if (p->has_data) {
        m8_sse_event ev = {.kind = M8_SSE_EVENT, .too_big = p->too_big, .retry_ms = p->retry_ms};
        ev.event = p->event.len ? p->event.data : "message";
        ev.event_len = p->event.len ? p->event.len : strlen("message");
        if (!p->too_big && p->data.len) {
            p->data.data[--p->data.len] = '\0'; /* the LF after the last line */
            ev.data = p->data.data;
            ev.data_len = p->data.len;
        } else {
            ev.data = "";
        }
        if (p->has_id) {
            ev.id = str0(&p->id);
            ev.id_len = p->id.len;
        }
        rc = fn(&ev, ctx);
    }
    clear_event(p);
    return rc;
}

static bool is(const char *name, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(name, want, n) == 0;
}

/* One field line; cut when the line passed the limit. */
static int field(m8_sse *p, const char *l, size_t n, bool cut)
{
    const char *colon = memchr(l, ':', n);
    if (!colon && cut)
        return 0; /* a name longer than the limit is no field we know */
    size_t nlen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = colon ? n - nlen - 1 : 0;
    if (vlen && *v == ' ')
        v++, vlen--;
    if (is(l, nlen, "data")) {
        p->has_data = true;
        if (cut || p->too_big || p->data.len + vlen > M8_MAX_SSE_EVENT_BYTES) {
            p->too_big = true;
            m8_buf_reset(&p->data);
            return 0;
        }
        int rc = m8_buf_append(&p->data, v, vlen);
        return rc ? rc : m8_buf_putc(&p->data, '\n');
    }
    if (is(l, nlen, "event")) {
        if (cut) {
            p->too_big = true;
            return 0;
        }
        return set(&p->event, v, vlen);
    }
    if (is(l, nlen, "id")) {
        if (cut) {
            p->too_big = true;
            return 0;
        }
        if (memchr(v, '\0', vlen))
            return 0;
        p->has_id = p->has_last_id = true;
        int rc = set(&p->id, v, vlen);
        return rc ? rc : set(&p->last_id, v, vlen);
    }
    if (is(l, nlen, "retry") && !cut && vlen > 0 && vlen <= 18) {
        long long ms = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9')
                return 0;
            ms = ms * 10 + (v[i] - '0');
        }
        p->retry_ms = ms;
    }
    return 0;
}

/* The line in p->line is complete. */
static int end_line(m8_sse *p, m8_sse_fn fn, void *ctx)
{
    const char *l = str0(&p->line);
    size_t n = p->line.len;
    bool cut = p->line_long;
    int rc = 0;
    if (n == 0 && !cut) {
        rc = dispatch(p, fn, ctx);
    } else if (l[0] == ':') {
        m8_sse_event ev = {.kind = M8_SSE_COMMENT, .too_big = cut, .retry_ms = p->retry_ms};
        ev.event = "";
        ev.data = l + 1;
        ev.data_len = n - 1;
        if (ev.data_len && *ev.data == ' ')
            ev.data++, ev.data_len--;
        rc = fn(&ev, ctx);
    } else {
        rc = field(p, l, n, cut);
    }
    m8_buf_reset(&p->line);
    p->line_long = false;
    return rc;
}

static int feed(m8_sse *p, const char *buf, size_t n, m8_sse_fn fn, void *ctx)
{
    size_t i = 0;
    while (i < n) {
        if (p->after_cr) {
            p->after_cr = false;
            if (buf[i] == '\n') {
                i++; /* CRLF */
                continue;
            }
        }
        size_t j = i;
        while (j < n && buf[j] != '\r' && buf[j] != '\n')
            j++;
        if (!p->line_long && j > i) {
            size_t room = p->line.max - p->line.len;
            size_t take = j - i < room ? j - i : room;
            int rc = m8_buf_append(&p->line, buf + i, take);
            if (rc)
                return rc;
            p->line_long = take < j - i;
        }
        if (j == n)
            break;
        p->after_cr = buf[j] == '\r';
        i = j + 1;
        int rc = end_line(p, fn, ctx);
        if (rc)
            return rc;
    }
    return 0;
}

int m8_sse_push(m8_sse *p, const char *buf, size_t n, m8_sse_fn fn, void *ctx)
{
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    size_t i = 0;
    while (p->bom < BOM_SETTLED && i < n) {
        if ((unsigned char)buf[i] == bom[p->bom]) {
            p->bom++; /* three matched: dropped, and settled */
            i++;
        } else {
            /* not a BOM after all: the bytes matched so far are text */
            unsigned k = p->bom;
            p->bom = BOM_SETTLED;
            int rc = feed(p, (const char *)bom, k, fn, ctx);
            if (rc)
                return rc;
        }
    }
    return feed(p, buf + i, n - i, fn, ctx);
}
