/* buf.c - growable byte buffers with a hard maximum (common.h). */
#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void m8_buf_init(m8_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void m8_buf_free(m8_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void m8_buf_reset(m8_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int m8_buf_reserve(m8_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return M8_ETOOBIG;
    size_t need = b->len + extra + 1; /* room for the NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return M8_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int m8_buf_append(m8_buf *b, const void *p, size_t n)
{
    int rc = m8_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int m8_buf_putn(m8_buf *b, const char *s, size_t n)
{
    return m8_buf_append(b, s, n);
}

int m8_buf_put_u64(m8_buf *b, uint64_t v)
{
    char d[20];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return m8_buf_append(b, d + i, sizeof d - i);
}

int m8_buf_put_milli(m8_buf *b, uint64_t x)
{
    char frac[4] = {'.', (char)('0' + x / 100 % 10), (char)('0' + x / 10 % 10),
                    (char)('0' + x % 10)};
    int rc = m8_buf_put_u64(b, x / 1000);
    return rc ? rc : m8_buf_append(b, frac, sizeof frac);
}

int m8_buf_puts(m8_buf *b, const char *s)
{
    return m8_buf_append(b, s, strlen(s));
}

int m8_buf_putc(m8_buf *b, char c)
{
    return m8_buf_append(b, &c, 1);
}

int m8_buf_vprintf(m8_buf *b, const char *fmt, va_list ap)
{
    /* One pass when the text fits the spare room (the common case). */
    if (m8_buf_reserve(b, b->max - b->len < 256 ? b->max - b->len : 256) != 0)
        return M8_ETOOBIG;
    size_t room = b->cap - b->len;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(b->data + b->len, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        b->data[b->len] = '\0';
        return M8_EINVAL;
    }
    if ((size_t)n < room && (size_t)n <= b->max - b->len) {
        b->len += (size_t)n;
        return 0;
    }
    b->data[b->len] = '\0';
    int rc = m8_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int m8_buf_printf(m8_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = m8_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Length of a valid UTF-8 sequence at p (1-4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

int m8_buf_json_str(m8_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = m8_buf_putc(b, '"');
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (!rc && i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            rc = m8_buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = m8_buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            const char *shortform = c == '\n'   ? "\\n"
                                    : c == '\r' ? "\\r"
                                    : c == '\t' ? "\\t"
                                                : NULL;
            rc = shortform ? m8_buf_puts(b, shortform) : m8_buf_append(b, esc, 6);
            i++;
        } else {
            size_t l = utf8_seq(p + i, n - i);
            if (l) {
                rc = m8_buf_append(b, s + i, l);
                i += l;
            } else {
                rc = m8_buf_puts(b, "\xEF\xBF\xBD");
                i++;
            }
        }
    }
    if (!rc)
        rc = m8_buf_putc(b, '"');
    return rc;
}

char *m8_buf_steal(m8_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
