/* settings_values.c - the value grammar of doc/settings.md#value-grammar (bool, int,
 * float, HttpUrl, lists) and the ASCII pattern matchers that stand in for the
 * reference regexes (HOST, HTTP_HOST, URL_PATH_STR, KEY, SLUG, PASSWORD,
 * SECRET_KEY), plus PROJECT_NAME (doc/settings.md#core-and-routing) and e-mail syntax.
 * Pure functions. */
#include "config/settings.h"

#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/json.h"

/* ------------------------------------------------------------ matchers */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool all_in(const char *s, size_t n, const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(s[i]) && (s[i] == '\0' || !strchr(extra, s[i])))
            return false;
    }
    return n > 0;
}

/* \d{1,3}(\.\d{1,3}){3} */
static bool match_ipv4(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t d = i;
        while (i < n && is_digit(s[i]) && i - d < 4)
            i++;
        if (i == d || i - d > 3)
            return false;
        if (part < 3) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == n;
}

/* :\d{1,5} at s[0..n) */
static bool match_port(const char *s, size_t n)
{
    if (n < 2 || n > 6 || s[0] != ':')
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_digit(s[i]))
            return false;
    }
    return true;
}

static bool match_host_n(const char *s, size_t n)
{
    if (n == 9 && memcmp(s, "localhost", 9) == 0)
        return true;
    const char *colon = memchr(s, ':', n);
    size_t hl = colon ? (size_t)(colon - s) : n;
    if (match_ipv4(s, hl) && (!colon || match_port(colon, n - hl)))
        return true;
    if (all_in(s, n, "_-"))
        return true;
    size_t i = 0;
    while (i < n && (is_alnum(s[i]) || s[i] == '-'))
        i++;
    return i > 0 && i + 1 < n && s[i] == '.' && all_in(s + i + 1, n - i - 1, "-.");
}

bool m8_match_host(const char *s)
{
    return match_host_n(s, strlen(s));
}

/* ([A-Za-z0-9-]+\.)+[A-Za-z]{2,} */
static bool match_dotted_tld(const char *s, size_t n)
{
    const char *dot = NULL;
    for (size_t i = n; i-- > 0;) {
        if (s[i] == '.') {
            dot = s + i;
            break;
        }
    }
    if (!dot)
        return false;
    size_t tl = n - (size_t)(dot - s) - 1;
    if (tl < 2)
        return false;
    for (size_t i = 0; i < tl; i++) {
        char c = dot[1 + i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return false;
    }
    size_t start = 0;
    for (size_t i = 0; i <= (size_t)(dot - s); i++) {
        if (i == (size_t)(dot - s) || s[i] == '.') {
            if (i == start || !all_in(s + start, i - start, "-"))
                return false;
            start = i + 1;
        }
    }
    return true;
}

bool m8_match_http_host(const char *s)
{
    size_t n = strlen(s), i;
    if (strncmp(s, "http://", 7) == 0)
        i = 7;
    else if (strncmp(s, "https://", 8) == 0)
        i = 8;
    else
        return false;
    const char *h = s + i;
    const char *colon = strchr(h, ':');
    size_t hl = colon ? (size_t)(colon - h) : n - i;
    if (!((hl == 9 && memcmp(h, "localhost", 9) == 0) || match_ipv4(h, hl) ||
          match_dotted_tld(h, hl)))
        return false;
    return !colon || match_port(colon, strlen(colon));
}

bool m8_match_key(const char *s)
{
    return all_in(s, strlen(s), "_-");
}

bool m8_match_slug(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || is_digit(*p) || *p == '-'))
            return false;
    }
    return *s != '\0';
}

bool m8_match_url_path(const char *s)
{
    size_t n = strlen(s);
    return n == 0 || all_in(s, n, "-._~/");
}

/* Lower, upper, digit, special (non-ASCII counts as special), no ASCII
 * whitespace, and at least min characters (UTF-8 code points). */
static bool strong(const char *s, size_t n, size_t min)
{
    bool lo = false, up = false, dig = false, sp = false;
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_ws((char)c))
            return false;
        if ((c & 0xC0) != 0x80)
            chars++;
        if (c >= 'a' && c <= 'z')
            lo = true;
        else if (c >= 'A' && c <= 'Z')
            up = true;
        else if (is_digit((char)c))
            dig = true;
        else
            sp = true; /* '_', punctuation, and any non-ASCII byte */
    }
    return lo && up && dig && sp && chars >= min;
}

bool m8_match_password(const char *s)
{
    return strong(s, strlen(s), 8);
}

bool m8_match_secret_key(const char *s)
{
    return strong(s, strlen(s), 32);
}

/* doc/settings.md#core-and-routing: printable UTF-8, 1..128 bytes, no C0/C1 controls or DEL. */
bool m8_match_project_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128)
        return false;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t need = c < 0x80             ? 0
                      : (c & 0xE0) == 0xC0 ? 1
                      : (c & 0xF0) == 0xE0 ? 2
                      : (c & 0xF8) == 0xF0 ? 3
                                           : 4;
        if (need == 4 || (need && i + need >= n))
            return false;
        uint32_t cp = need == 0 ? c : c & (0x3Fu >> need);
        for (size_t k = 1; k <= need; k++) {
            if (((unsigned char)s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3Fu);
        }
        static const uint32_t min_cp[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp < 0x20 ||
            (cp >= 0x7F && cp <= 0x9F))
            return false;
        i += need + 1;
    }
    return true;
}

/* A plain e-mail address: local@domain.tld, no blanks. */
bool m8_match_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@'))
        return false;
    for (const char *p = s; p < at; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || strchr("()<>[]\\,;:\"", *p) != NULL)
            return false;
    }
    return match_dotted_tld(at + 1, strlen(at + 1));
}

/* ------------------------------------------------------------ value grammar */

int m8_parse_bool(const char *v, bool *out)
{
    static const char *const t[] = {"1", "true", "t", "yes", "y", "on"};
    static const char *const f[] = {"0", "false", "f", "no", "n", "off"};
    for (size_t i = 0; i < M8_ARRAY_LEN(t); i++) {
        if (m8_strcaseeq(v, t[i])) {
            *out = true;
            return 0;
        }
        if (m8_strcaseeq(v, f[i])) {
            *out = false;
            return 0;
        }
    }
    return M8_EPARSE;
}

/* Digits with single '_' between digits, copied into d without '_'. */
static bool digits(const char **pp, const char *end, char *d, size_t *dn, size_t cap)
{
    const char *p = *pp;
    if (p >= end || !is_digit(*p))
        return false;
    while (p < end &&
           (is_digit(*p) || (*p == '_' && p + 1 < end && is_digit(p[1]) && is_digit(p[-1])))) {
        if (*p != '_') {
            if (*dn + 1 >= cap)
                return false;
            d[(*dn)++] = *p;
        }
        p++;
    }
    *pp = p;
    return true;
}

/* Ints: blanks, a sign, '_' separators, a ".0" tail; no hex, no exponent. */
int m8_parse_int(const char *v, long long *out)
{
    const char *p = v;
    size_t n = m8_trim(&p, strlen(v));
    const char *end = p + n;
    char d[64];
    size_t dn = 0;
    if (p < end && (*p == '+' || *p == '-'))
        d[dn++] = *p++;
    if (!digits(&p, end, d, &dn, sizeof d))
        return M8_EPARSE;
    if (p < end && *p == '.') {
        p++;
        if (p == end)
            return M8_EPARSE;
        while (p < end && *p == '0')
            p++;
    }
    if (p != end)
        return M8_EPARSE;
    d[dn] = '\0';
    return m8_parse_ll(d, LLONG_MIN, LLONG_MAX, out);
}

/* Floats: as Python float(): blanks, sign, '_' separators, exponent, inf, nan. */
int m8_parse_float(const char *v, double *out)
{
    const char *p = v;
    size_t n = m8_trim(&p, strlen(v));
    const char *end = p + n;
    char d[128];
    size_t dn = 0;
    if (p < end && (*p == '+' || *p == '-'))
        d[dn++] = *p++;
    static const char *const specials[] = {"inf", "infinity", "nan"};
    for (size_t i = 0; i < M8_ARRAY_LEN(specials); i++) {
        if (m8_memcaseeq(p, (size_t)(end - p), specials[i])) {
            double x = i == 2 ? NAN : INFINITY;
            *out = dn && d[0] == '-' ? -x : x;
            return 0;
        }
    }
    bool any = false;
    if (p < end && is_digit(*p)) {
        if (!digits(&p, end, d, &dn, sizeof d - 8))
            return M8_EPARSE;
        any = true;
    }
    if (p < end && *p == '.') {
        d[dn++] = *p++;
        if (p < end && is_digit(*p)) {
            if (!digits(&p, end, d, &dn, sizeof d - 8))
                return M8_EPARSE;
            any = true;
        }
    }
    if (!any)
        return M8_EPARSE;
    if (p < end && (*p == 'e' || *p == 'E')) {
        d[dn++] = *p++;
        if (p < end && (*p == '+' || *p == '-'))
            d[dn++] = *p++;
        if (!digits(&p, end, d, &dn, sizeof d - 1))
            return M8_EPARSE;
    }
    if (p != end)
        return M8_EPARSE;
    d[dn] = '\0';
    *out = strtod(d, NULL);
    return 0;
}

/* HttpUrl: http(s) only; scheme and host lower-cased; default port dropped;
 * a bare host gets '/'; surrounding blanks trimmed.  Caller frees *out. */
int m8_normalize_url(const char *in, char **out)
{
    const char *s = in;
    size_t n = m8_trim(&s, strlen(in));
    if (n == 0 || n > 2083)
        return M8_EPARSE;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return M8_EPARSE;
    }
    size_t i;
    bool https;
    if (n > 7 && m8_memcaseeq(s, 7, "http://")) {
        i = 7;
        https = false;
    } else if (n > 8 && m8_memcaseeq(s, 8, "https://")) {
        i = 8;
        https = true;
    } else {
        return M8_EPARSE;
    }
    size_t auth = i;
    while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
        i++;
    size_t auth_end = i;
    size_t host = auth;
    for (size_t k = auth; k < auth_end; k++) {
        if (s[k] == '@')
            host = k + 1;
    }
    size_t host_end, port = 0, port_end = 0;
    if (host < auth_end && s[host] == '[') {
        size_t k = host + 1;
        while (k < auth_end && (strchr("0123456789abcdefABCDEF:.", s[k])))
            k++;
        if (k >= auth_end || s[k] != ']' || k == host + 1)
            return M8_EPARSE;
        host_end = k + 1;
    } else {
        host_end = host;
        while (host_end < auth_end && s[host_end] != ':') {
            if (!is_alnum(s[host_end]) && !strchr("-._", s[host_end]))
                return M8_EPARSE;
            host_end++;
        }
        if (host_end == host)
            return M8_EPARSE;
    }
    if (host_end < auth_end) {
        if (s[host_end] != ':')
            return M8_EPARSE;
        port = host_end + 1;
        port_end = auth_end;
        long long pv = 0;
        char pd[8];
        if (port_end == port || port_end - port > 5)
            return M8_EPARSE;
        memcpy(pd, s + port, port_end - port);
        pd[port_end - port] = '\0';
        if (strspn(pd, "0123456789") != port_end - port || m8_parse_ll(pd, 0, 65535, &pv))
            return M8_EPARSE;
        if (pv == (https ? 443 : 80))
            port = port_end = 0;
    }
    m8_buf b;
    m8_buf_init(&b, n + 16);
    int rc = m8_buf_puts(&b, https ? "https://" : "http://");
    rc = rc ? rc : m8_buf_append(&b, s + auth, host - auth);
    for (size_t k = host; !rc && k < host_end; k++) {
        char c = s[k];
        rc = m8_buf_putc(&b, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
    }
    if (!rc && port)
        rc = m8_buf_append(&b, s + host_end, port_end - host_end);
    if (!rc && (auth_end == n || s[auth_end] != '/'))
        rc = m8_buf_putc(&b, '/');
    rc = rc ? rc : m8_buf_append(&b, s + auth_end, n - auth_end);
    if (rc) {
        m8_buf_free(&b);
        return rc;
    }
    *out = m8_buf_steal(&b);
    return 0;
}

void m8_strlist_free(m8_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        sodium_memzero(l->items[i], strlen(l->items[i]));
        free(l->items[i]);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int list_push(m8_strlist *l, const char *s, size_t n)
{
    char **ni = realloc(l->items, (l->n + 1) * sizeof *ni);
    if (!ni)
        return M8_ENOMEM;
    l->items = ni;
    if (!(ni[l->n] = malloc(n + 1)))
        return M8_ENOMEM;
    memcpy(ni[l->n], s, n);
    ni[l->n++][n] = '\0';
    return 0;
}

static int list_push_trimmed(m8_strlist *l, const char *s, size_t n)
{
    n = m8_trim(&s, n);
    return n ? list_push(l, s, n) : 0;
}

/* doc/settings.md#value-grammar: a JSON array of strings, or a comma-separated list; items trimmed,
 * empty items dropped. */
int m8_parse_list(const char *v, m8_strlist *out)
{
    const char *p = v;
    size_t n = m8_trim(&p, strlen(v));
    int rc = 0;
    if (n && p[0] == '[') {
        json_object *arr = m8_json_parse(p, n, 4, NULL, NULL);
        if (!arr || !json_object_is_type(arr, json_type_array))
            rc = M8_EPARSE;
        for (size_t i = 0; !rc && i < json_object_array_length(arr); i++) {
            json_object *it = json_object_array_get_idx(arr, i);
            if (!json_object_is_type(it, json_type_string))
                rc = M8_EPARSE;
            else
                rc = list_push_trimmed(out, json_object_get_string(it),
                                       (size_t)json_object_get_string_len(it));
        }
        json_object_put(arr);
    } else {
        const char *start = p;
        for (size_t i = 0; !rc && i <= n; i++) {
            if (i == n || p[i] == ',') {
                rc = list_push_trimmed(out, start, (size_t)(p + i - start));
                start = p + i + 1;
            }
        }
    }
    if (rc)
        m8_strlist_free(out);
    return rc;
}

/* BACKEND_CORS_ORIGINS: a list whose items lose one trailing '/', must match
 * HTTP_HOST, and must not be empty as a whole. */
int m8_parse_origins(const char *v, m8_strlist *out, const char **why)
{
    m8_strlist raw = {0};
    if (m8_parse_list(v, &raw)) {
        *why = "must be a comma-separated list or a JSON array of origins";
        return M8_EPARSE;
    }
    int rc = 0;
    for (size_t i = 0; !rc && i < raw.n; i++) {
        size_t l = strlen(raw.items[i]);
        if (l && raw.items[i][l - 1] == '/')
            raw.items[i][--l] = '\0';
        if (!l)
            continue;
        if (!m8_match_http_host(raw.items[i])) {
            *why = "Invalid host in BACKEND_CORS_ORIGINS (each origin is http(s)://host[:port], "
                   "no path)";
            rc = M8_EPARSE;
        } else {
            rc = list_push(out, raw.items[i], l);
        }
    }
    m8_strlist_free(&raw);
    if (!rc && out->n == 0) {
        *why = "must contain at least one valid origin";
        rc = M8_EPARSE;
    }
    if (rc)
        m8_strlist_free(out);
    return rc;
}
