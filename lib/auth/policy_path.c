/* policy_path.c - request targets for the fcgim8-gate policy (policy.h):
 * m8_policy_normalize, which refuses a path that backends could read in
 * different ways, and m8_policy_decide, which matches it both decoded and
 * as sent. */
#include "auth/policy.h"

#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------ normalizing */

static int hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The length of the UTF-8 character at s[0..n), or 0 when it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || n < len)
        return 0;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    }
    return len;
}

bool m8__policy_utf8_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char((const unsigned char *)s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* The path part of a target as sent: an absolute-form target (Apache passes
 * one on as REQUEST_URI) is cut to the path after its authority, the query
 * is cut off.  *p is NULL for a target that has an authority but no path
 * (its path is "/"). */
static void target_path(const char *uri, size_t n, const char **p, size_t *len)
{
    size_t skip = n >= 7 && strncasecmp(uri, "http://", 7) == 0    ? 7
                  : n >= 8 && strncasecmp(uri, "https://", 8) == 0 ? 8
                                                                   : 0;
    if (skip) {
        while (skip < n && uri[skip] != '/' && uri[skip] != '?')
            skip++;
        if (skip == n || uri[skip] != '/') {
            *p = NULL;
            *len = 0;
            return;
        }
        uri += skip;
        n -= skip;
    }
    const char *q = memchr(uri, '?', n);
    *p = uri;
    *len = q ? (size_t)(q - uri) : n;
}

#define REFUSE(reason)                                                                             \
    do {                                                                                           \
        if (why)                                                                                   \
            *why = reason;                                                                         \
        return M8_EPARSE;                                                                          \
    } while (0)

int m8_policy_normalize(const char *uri, size_t n, char *out, size_t cap, size_t *outlen,
                        const char **why)
{
    if (why)
        *why = NULL;
    if (n > M8_MAX_PATH_BYTES) {
        if (why)
            *why = "the request target is too long";
        return M8_ETOOBIG;
    }
    /* A raw '#' is never sent by a client (a fragment stays in the
     * browser); a backend may cut the path there. */
    if (memchr(uri, '#', n))
        REFUSE("a '#' in the request target");
    const char *p;
    size_t end;
    target_path(uri, n, &p, &end);
    if (!p) {
        p = "/";
        end = 1;
    }
    if (end == 0 || p[0] != '/')
        REFUSE("the request path does not start with '/'");
    if (cap <= end) {
        if (why)
            *why = "the request target is too long";
        return M8_ETOOBIG;
    }
    /* Segment by segment: every reading a backend may make of the raw path
     * (as sent, decoded once or twice, dot segments resolved, slashes
     * merged, '\' as '/', ";..." cut off) must give the same segments, so
     * whatever could make two readings differ is refused. */
    size_t o = 0, i = 1;
    out[o++] = '/';
    while (i <= end) {
        size_t e = i;
        while (e < end && p[e] != '/')
            e++;
        if (e == i && e < end)
            REFUSE("an empty segment ('//') in the request path");
        size_t seg = o;
        for (size_t k = i; k < e; k++) {
            unsigned char c = (unsigned char)p[k];
            if (c == '%') {
                int h = k + 2 < e ? hex((unsigned char)p[k + 1]) : -1;
                int l = h >= 0 ? hex((unsigned char)p[k + 2]) : -1;
                if (l < 0)
                    REFUSE("a bad %-escape in the request path");
                c = (unsigned char)(h << 4 | l);
                k += 2;
                if (c == '%')
                    REFUSE("an encoded '%' (%25) in the request path");
                if (c == '/' || c == '\\')
                    REFUSE("an encoded '/' or backslash in the request path");
                if (c == '?' || c == '#')
                    REFUSE("an encoded '?' or '#' in the request path");
            } else if (c == '\\') {
                REFUSE("a backslash in the request path");
            }
            if (c == 0)
                REFUSE("a NUL byte in the request path");
            if (c < 0x20 || c == 0x7f)
                REFUSE("a control character in the request path");
            if (c == ';')
                REFUSE("a ';' (path parameter) in the request path");
            out[o++] = (char)c;
        }
        size_t len = o - seg;
        if ((len == 1 && out[seg] == '.') || (len == 2 && out[seg] == '.' && out[seg + 1] == '.'))
            REFUSE("a dot segment ('.' or '..', maybe %-encoded) in the request path");
        if (e == end)
            break;
        out[o++] = '/';
        i = e + 1;
    }
    if (!m8__policy_utf8_ok(out, o))
        REFUSE("the request path is not valid UTF-8");
    out[o] = '\0';
    *outlen = o;
    return 0;
}

int m8_policy_decide(const m8_policy *p, const char *method, const char *uri, size_t n, char *out,
                     size_t cap, size_t *outlen, const m8_policy_rule **rule, const char **why)
{
    *rule = NULL;
    int rc = m8_policy_normalize(uri, n, out, cap, outlen, why);
    if (rc)
        return rc;
    const m8_policy_rule *r = m8_policy_match(p, method, out, *outlen);
    const char *raw;
    size_t rawlen;
    target_path(uri, n, &raw, &rawlen);
    if (raw && (rawlen != *outlen || memcmp(raw, out, rawlen) != 0) &&
        m8_policy_match(p, method, raw, rawlen) != r) {
        /* e.g. "/%61dmin" is "/admin" decoded but not as sent: a backend
         * may route on either. */
        if (why)
            *why = "the request path falls under different rules as sent and decoded";
        return M8_EPARSE;
    }
    *rule = r;
    return 0;
}
