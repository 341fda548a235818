/* canon.c - canonical JSON (canon.h, doc/wire.md#canonical-json). */
#include "stream/canon.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

/* ---------------------------------------------------------------- doubles */

/* Reads "%.*e" output: the mantissa digits (the radix character, whatever
 * the locale makes it, is skipped) and the decimal exponent. */
static int split_e(const char *s, char *digits, int *exp10)
{
    int n = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s >= '0' && *s <= '9')
            digits[n++] = *s;
    }
    *exp10 = *s == 'e' ? (int)strtol(s + 1, NULL, 10) : 0;
    return n;
}

/* The value of the decimal digits[0..n) * 10^(exp10 - n + 1), written
 * without a radix character so the locale cannot matter. */
static double value_of(const char *digits, int n, int exp10)
{
    char buf[48];
    snprintf(buf, sizeof buf, "%.*se%d", n, digits, exp10 - n + 1);
    return strtod(buf, NULL);
}

/* The next p-digit decimal above (up) or below the one in digits. */
static void step(char *digits, int n, int *exp10, bool up)
{
    int i = n - 1;
    if (up) {
        while (i >= 0 && digits[i] == '9')
            digits[i--] = '0';
        if (i >= 0) {
            digits[i]++;
        } else {
            digits[0] = '1'; /* 99..9 -> 100..0, one decade up */
            (*exp10)++;
        }
    } else {
        while (i >= 0 && digits[i] == '0')
            digits[i--] = '9';
        digits[i]--; /* the leading digit is never 0 */
        if (digits[0] == '0') {
            memset(digits, '9', (size_t)n); /* 100..0 -> 99..9, one decade down */
            (*exp10)--;
        }
    }
}

/* Shortest digits that read back as a (> 0, finite), and among those the
 * closest to a: Python's repr (David Gay's mode 0).  For each length p the
 * correctly rounded p-digit decimal is the nearest one; if it does not
 * round-trip, the only other candidate is its neighbour on the other side
 * of a (the rounding interval of a power of two is lopsided). */
static int shortest(double a, char *digits, int *exp10)
{
    char buf[48], cand[24];
    int n = 0;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, a);
        n = split_e(buf, digits, exp10);
        double v = value_of(digits, n, *exp10);
        if (v == a)
            break;
        int ce = *exp10;
        memcpy(cand, digits, (size_t)n);
        step(cand, n, &ce, v < a);
        if (value_of(cand, n, ce) == a) {
            memcpy(digits, cand, (size_t)n);
            *exp10 = ce;
            break;
        }
    }
    while (n > 1 && digits[n - 1] == '0')
        n--;
    return n;
}

size_t m8_canon_double(char *dst, double x)
{
    const char *lit = NULL;
    if (isnan(x))
        lit = "NaN";
    else if (isinf(x))
        lit = x > 0 ? "Infinity" : "-Infinity";
    else if (x == 0)
        lit = signbit(x) ? "-0.0" : "0.0";
    if (lit) {
        size_t n = strlen(lit);
        memcpy(dst, lit, n + 1);
        return n;
    }
    char d[24];
    int e;
    int n = shortest(fabs(x), d, &e);
    size_t o = 0;
    if (x < 0)
        dst[o++] = '-';
    if (e >= -4 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                dst[o++] = i < n ? d[i] : '0';
            dst[o++] = '.';
            if (n > e + 1) {
                for (int i = e + 1; i < n; i++)
                    dst[o++] = d[i];
            } else {
                dst[o++] = '0';
            }
        } else {
            dst[o++] = '0';
            dst[o++] = '.';
            for (int i = 0; i < -e - 1; i++)
                dst[o++] = '0';
            for (int i = 0; i < n; i++)
                dst[o++] = d[i];
        }
        dst[o] = '\0';
        return o;
    }
    dst[o++] = d[0];
    if (n > 1) {
        dst[o++] = '.';
        for (int i = 1; i < n; i++)
            dst[o++] = d[i];
    }
    int w = snprintf(dst + o, M8_CANON_DOUBLE_MAX - o, "e%c%02d", e < 0 ? '-' : '+', abs(e));
    return o + (size_t)w;
}

/* ---------------------------------------------------------------- writer */

/* Next code point of strict UTF-8 at s[*i..n); -1 if invalid. */
static long utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned c = s[*i];
    size_t len;
    unsigned long cp, min;
    if (c < 0x80) {
        (*i)++;
        return c;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return -1;
    }
    if (n - *i < len)
        return -1;
    for (size_t k = 1; k < len; k++) {
        unsigned cc = s[*i + k];
        if ((cc & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *i += len;
    return (long)cp;
}

static int put_u(m8_buf *out, unsigned long u)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', 'u'};
    for (int i = 0; i < 4; i++)
        e[2 + i] = hex[(u >> (12 - 4 * i)) & 15];
    return m8_buf_append(out, e, sizeof e);
}

/* A JSON string with Python's ensure_ascii escaping. */
static int put_str(m8_buf *out, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    int rc = m8_buf_putc(out, '"');
    size_t i = 0;
    while (rc == 0 && i < n) {
        size_t run = i;
        while (run < n && s[run] >= 0x20 && s[run] <= 0x7E && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            rc = m8_buf_append(out, s + i, run - i);
            i = run;
            continue;
        }
        long cp = utf8_next(s, n, &i);
        const char *esc = NULL;
        switch (cp) {
        case -1: return M8_EINVAL;
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc) {
            rc = m8_buf_append(out, esc, 2);
        } else if (cp > 0xFFFF) {
            unsigned long v = (unsigned long)cp - 0x10000;
            rc = put_u(out, 0xD800 + (v >> 10));
            if (rc == 0)
                rc = put_u(out, 0xDC00 + (v & 0x3FF));
        } else {
            rc = put_u(out, (unsigned long)cp);
        }
    }
    return rc ? rc : m8_buf_putc(out, '"');
}

/* "-?[0-9]+": the text of an integer token. */
static bool int_token(const char *t)
{
    if (*t == '-')
        t++;
    if (!*t)
        return false;
    for (; *t; t++) {
        if (*t < '0' || *t > '9')
            return false;
    }
    return true;
}

static int put_int_text(m8_buf *out, const char *t)
{
    bool neg = *t == '-';
    if (neg)
        t++;
    while (t[0] == '0' && t[1])
        t++;
    int rc = neg && strcmp(t, "0") != 0 ? m8_buf_putc(out, '-') : 0; /* -0 is 0 */
    return rc ? rc : m8_buf_puts(out, t);
}

typedef struct member {
    const char *key;
    json_object *val;
} member;

static int member_cmp(const void *a, const void *b)
{
    return strcmp(((const member *)a)->key, ((const member *)b)->key);
}

static int put_value(m8_buf *out, json_object *v, int depth);

static int put_object(m8_buf *out, json_object *v, int depth)
{
    size_t n = (size_t)json_object_object_length(v);
    if (n == 0)
        return m8_buf_puts(out, "{}");
    member *m = malloc(n * sizeof *m);
    if (!m)
        return M8_ENOMEM;
    size_t k = 0;
    json_object_object_foreach(v, key, val)
    {
        if (k < n)
            m[k++] = (member){key, val};
    }
    qsort(m, k, sizeof *m, member_cmp);
    int rc = m8_buf_putc(out, '{');
    for (size_t i = 0; rc == 0 && i < k; i++) {
        if (i)
            rc = m8_buf_putc(out, ',');
        if (rc == 0)
            rc = put_str(out, m[i].key, strlen(m[i].key));
        if (rc == 0)
            rc = m8_buf_putc(out, ':');
        if (rc == 0)
            rc = put_value(out, m[i].val, depth + 1);
    }
    free(m);
    return rc ? rc : m8_buf_putc(out, '}');
}

static int put_value(m8_buf *out, json_object *v, int depth)
{
    char num[M8_CANON_DOUBLE_MAX];
    switch (json_object_get_type(v)) {
    case json_type_null: return m8_buf_puts(out, "null");
    case json_type_boolean: return m8_buf_puts(out, json_object_get_boolean(v) ? "true" : "false");
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        if (i == INT64_MAX) /* may be a uint64 above INT64_MAX */
            return m8_buf_printf(out, "%llu", (unsigned long long)json_object_get_uint64(v));
        return m8_buf_printf(out, "%lld", (long long)i);
    }
    case json_type_double: {
        const char *text = json_object_get_userdata(v);
        if (text && int_token(text))
            return put_int_text(out, text);
        size_t n = m8_canon_double(num, json_object_get_double(v));
        return m8_buf_append(out, num, n);
    }
    case json_type_string:
        return put_str(out, json_object_get_string(v), (size_t)json_object_get_string_len(v));
    case json_type_array: {
        if (depth >= M8_MAX_JSON_DEPTH)
            return M8_EDEPTH;
        size_t n = json_object_array_length(v);
        int rc = m8_buf_putc(out, '[');
        for (size_t i = 0; rc == 0 && i < n; i++) {
            if (i)
                rc = m8_buf_putc(out, ',');
            if (rc == 0)
                rc = put_value(out, json_object_array_get_idx(v, i), depth + 1);
        }
        return rc ? rc : m8_buf_putc(out, ']');
    }
    case json_type_object:
        if (depth >= M8_MAX_JSON_DEPTH)
            return M8_EDEPTH;
        return put_object(out, v, depth);
    }
    return M8_EINVAL;
}

int m8_canon_write(m8_buf *out, json_object *v)
{
    return put_value(out, v, 0);
}

/* ---------------------------------------------------------------- parser */

/* An integer token json-c cannot hold: the value index (pre-order) and its
 * text. */
typedef struct bigint {
    size_t index;
    const char *text;
    size_t len;
} bigint;

static bool out_of_range(const char *t, size_t n)
{
    static const char min64[] = "9223372036854775808", maxu64[] = "18446744073709551615";
    const char *lim = maxu64;
    if (t[0] == '-') {
        t++, n--;
        lim = min64;
    }
    size_t ln = strlen(lim);
    for (size_t i = 0; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return false; /* a float or a literal */
    }
    return n > ln || (n == ln && memcmp(t, lim, n) > 0);
}

static bool ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Counts the values of a document json-c has accepted, in pre-order, and
 * collects the out-of-range integers (at most cap; *nbig counts them all). */
static size_t scan(const char *s, size_t len, bigint *big, size_t cap, size_t *nbig)
{
    size_t count = 0;
    *nbig = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] == '\\')
                    i++;
            }
            size_t j = i + 1;
            while (j < len && ws(s[j]))
                j++;
            if (j >= len || s[j] != ':')
                count++; /* a value, not a member name */
        } else if (c == '{' || c == '[') {
            count++;
        } else if (c == '}' || c == ']' || c == ',' || c == ':' || ws(c)) {
            continue;
        } else {
            size_t start = i;
            while (i + 1 < len && !ws(s[i + 1]) && s[i + 1] != ',' && s[i + 1] != ']' &&
                   s[i + 1] != '}')
                i++;
            if (out_of_range(s + start, i + 1 - start)) {
                if (*nbig < cap)
                    big[*nbig] = (bigint){count, s + start, i + 1 - start};
                (*nbig)++;
            }
            count++;
        }
    }
    return count;
}

typedef struct fixer {
    const bigint *big;
    size_t n, next, index;
    int err;
} fixer;

/* Returns a replacement for node (a double carrying the integer's text),
 * or NULL to keep it; replaces in place below it. */
static json_object *fix(fixer *f, json_object *node)
{
    size_t index = f->index++;
    if (f->next < f->n && f->big[f->next].index == index) {
        const bigint *b = &f->big[f->next++];
        char *text = strndup(b->text, b->len);
        json_object *d = NULL;
        if (!text || json_object_get_type(node) != json_type_int)
            f->err = text ? M8_EPARSE : M8_ENOMEM;
        else if (!(d = json_object_new_double_s(strtod(text, NULL), text)))
            f->err = M8_ENOMEM;
        free(text);
        return d;
    }
    if (json_object_is_type(node, json_type_array)) {
        size_t n = json_object_array_length(node);
        for (size_t i = 0; i < n && !f->err; i++) {
            json_object *r = fix(f, json_object_array_get_idx(node, i));
            if (r)
                json_object_array_put_idx(node, i, r);
        }
    } else if (json_object_is_type(node, json_type_object)) {
        json_object_object_foreach(node, key, val)
        {
            if (f->err)
                break;
            json_object *r = fix(f, val);
            if (r)
                json_object_object_add(node, key, r); /* replaces the value in place */
        }
    }
    return NULL;
}

static int parse_numbers(const char *s, size_t len, json_object **root, const char **why);

static int hex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The code point of an escaped surrogate pair at s[0..12) ("\uD8xx\uDCxx")
 * that json-c 0.16 decodes as U+FFFD: one whose low 16 bits look like a
 * surrogate (U+1D800-U+1DFFF, U+2D800-..., json-c PR #893); else -1. */
static long bad_pair(const char *s, size_t n)
{
    if (n < 12 || s[0] != '\\' || s[1] != 'u' || s[6] != '\\' || s[7] != 'u')
        return -1;
    int hi = hex4(s + 2), lo = hex4(s + 8);
    if (hi < 0xD800 || hi > 0xDBFF || lo < 0xDC00 || lo > 0xDFFF)
        return -1;
    long cp = 0x10000 + ((long)(hi - 0xD800) << 10) + (lo - 0xDC00);
    return (cp & 0xF800) == 0xD800 ? cp : -1;
}

/* Before json-c: refuses what Python's json.loads refuses and json-c's
 * strict mode takes (raw control characters in strings, single-quoted
 * strings); when out is given, copies s there with the pairs of bad_pair
 * written as raw UTF-8 (the same string).  Returns the number of such
 * pairs, or -1 with *why. */
static long prescan(const char *s, size_t len, char *out, size_t *outlen, const char **why)
{
    long pairs = 0;
    size_t o = 0;
    bool in_str = false;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        long cp;
        if (!in_str) {
            if (c == '\'') {
                *why = "single-quoted string";
                return -1;
            }
            in_str = c == '"';
        } else if (c < 0x20) {
            *why = "control character in a string";
            return -1;
        } else if (c == '"') {
            in_str = false;
        } else if (c == '\\' && (cp = bad_pair(s + i, len - i)) >= 0) {
            pairs++;
            if (out) {
                out[o++] = (char)(0xF0 | (cp >> 18));
                out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (char)(0x80 | (cp & 0x3F));
            }
            i += 12;
            continue;
        } else if (c == '\\' && i + 1 < len) {
            if (out)
                out[o++] = s[i];
            i++; /* the escaped character is copied below */
        }
        if (out)
            out[o++] = s[i];
        i++;
    }
    if (outlen)
        *outlen = o;
    return pairs;
}

int m8_canon_parse(const char *s, size_t len, json_object **out, const char **why)
{
    const char *reason = NULL;
    char *copy = NULL;
    *out = NULL;
    long pairs = prescan(s, len, NULL, NULL, &reason);
    if (pairs > 0) {
        if (!(copy = malloc(len)))
            return M8_ENOMEM;
        prescan(s, len, copy, &len, &reason);
        s = copy;
    }
    json_object *v = pairs < 0 ? NULL : m8_json_parse(s, len, M8_MAX_JSON_DEPTH, NULL, &reason);
    int rc = reason ? M8_EPARSE : parse_numbers(s, len, &v, &reason);
    free(copy);
    if (rc) {
        json_object_put(v);
        if (why)
            *why = reason;
        return rc;
    }
    *out = v;
    return 0;
}

/* Puts back the integers json-c could not hold (canon.h). */
static int parse_numbers(const char *s, size_t len, json_object **root, const char **why)
{
    json_object *v = *root;
    size_t nbig;
    size_t count = scan(s, len, NULL, 0, &nbig);
    if (nbig == 0)
        return 0;
    bigint *big = malloc(nbig * sizeof *big);
    if (!big)
        return M8_ENOMEM;
    scan(s, len, big, nbig, &nbig);
    fixer f = {big, nbig, 0, 0, 0};
    json_object *r = fix(&f, v);
    if (r) {
        json_object_put(v);
        *root = r;
    }
    free(big);
    /* A repeated member name drops values, so the pre-order indexes of
     * the text and of the tree no longer line up. */
    if (!f.err && f.index != count)
        f.err = M8_EPARSE;
    if (f.err)
        *why = f.err == M8_ENOMEM ? "out of memory"
                                  : "integer out of range beside a repeated member name";
    return f.err;
}
