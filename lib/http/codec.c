/* codec.c - the text of URLs and headers (http.h): percent-decoding with
 * UTF-8 repair, query strings and paths, the quoting of redirect targets,
 * and the header token syntax.  Pure: no I/O. */
#include "http/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ decoding */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Bytes to consume at p: a whole valid UTF-8 sequence (*valid = true), or
 * the maximal invalid subpart that Python's "replace" handler turns into one
 * U+FFFD (*valid = false). */
static size_t utf8_step(const unsigned char *p, size_t n, bool *valid)
{
    unsigned char c = p[0];
    *valid = true;
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *valid = false;
        return 1;
    }
    size_t i = 1;
    for (; i < len && i < n; i++) {
        unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (p[i] < lo_i || p[i] > hi_i)
            break;
    }
    if (i < len)
        *valid = false;
    return i;
}

/* Replaces invalid UTF-8 in s[0..n) by U+FFFD, like Python's unquote();
 * returns s itself when it is valid. */
char *m8__http_utf8_fix(m8_arena *a, char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t bad = 0;
    bool valid;
    for (size_t i = 0; i < n;) {
        i += utf8_step(p + i, n - i, &valid);
        if (!valid)
            bad++;
    }
    if (!bad)
        return s;
    char *out = m8_arena_alloc(a, n + 2 * bad + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_step(p + i, n - i, &valid);
        if (valid) {
            memcpy(out + o, s + i, k);
            o += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i += k;
    }
    out[o] = '\0';
    return out;
}

/* Percent-decodes s[0..n) into the arena; %00 and a raw NUL are M8_EPARSE.
 * A query component (query=true) reads '+' as a space and keeps a malformed
 * escape as it is (Starlette); a path refuses a malformed escape.  Invalid
 * UTF-8 becomes U+FFFD. */
static int percent_decode(m8_arena *a, const char *s, size_t n, bool query, char **out)
{
    char *d = m8_arena_alloc(a, n + 1);
    if (!d)
        return M8_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\0')
            return M8_EPARSE;
        int hi = -1, lo = -1;
        if (c == '%' && n - i >= 3) {
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
        }
        if (c == '+' && query) {
            d[o++] = ' ';
        } else if (c == '%' && hi >= 0 && lo >= 0) {
            if (hi == 0 && lo == 0)
                return M8_EPARSE;
            d[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '%' && !query) {
            return M8_EPARSE;
        } else {
            d[o++] = (char)c;
        }
    }
    d[o] = '\0';
    char *fixed = m8__http_utf8_fix(a, d, o);
    if (!fixed)
        return M8_ENOMEM;
    *out = fixed;
    return 0;
}

static int decode_component(m8_arena *a, const char *s, size_t n, const char **out)
{
    char *d;
    int rc = percent_decode(a, s, n, true, &d);
    if (rc == 0)
        *out = d;
    return rc;
}

int m8_parse_query(m8_arena *a, const char *qs, size_t n, m8_pair **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        const char *amp = memchr(qs + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - qs) : n;
        if (end > i)
            count++;
        i = end + 1;
    }
    if (count > M8_MAX_QUERY_PARAMS)
        return M8_ETOOBIG;
    if (!count)
        return 0;
    m8_pair *pairs = m8_arena_alloc(a, count * sizeof *pairs);
    if (!pairs)
        return M8_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        const char *amp = memchr(qs + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - qs) : n;
        if (end > i) {
            const char *seg = qs + i;
            size_t len = end - i;
            const char *eq = memchr(seg, '=', len);
            size_t nlen = eq ? (size_t)(eq - seg) : len;
            int rc = decode_component(a, seg, nlen, &pairs[k].name);
            if (!rc) {
                if (eq)
                    rc = decode_component(a, eq + 1, len - nlen - 1, &pairs[k].value);
                else
                    pairs[k].value = "";
            }
            if (rc)
                return rc;
            k++;
        }
        i = end + 1;
    }
    *out = pairs;
    *nout = k;
    return 0;
}

int m8_decode_path(m8_arena *a, const char *p, size_t n, char **out)
{
    *out = NULL;
    return percent_decode(a, p, n, false, out);
}

/* Appends url[0..n) quoted the way Starlette's RedirectResponse quotes its
 * Location (Python quote() with safe ":/%#?=@[]!$&'()*+,;"). */
int m8_redirect_quote(m8_buf *out, const char *url, size_t n)
{
    static const char safe[] = ":/%#?=@[]!$&'()*+,;_.-~";
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)url[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            (c && strchr(safe, c))) {
            rc = m8_buf_putc(out, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = m8_buf_append(out, esc, 3);
        }
    }
    return rc;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

bool m8__http_is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        if (!is_tchar((unsigned char)*s))
            return false;
    }
    return true;
}

bool m8_http_method_safe(const char *m)
{
    return m && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 ||
                 strcmp(m, "TRACE") == 0);
}
