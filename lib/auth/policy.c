/* policy.c - the access policy of fcgim8-gate (policy.h). */
#include "auth/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/apikey_format.h"

#define MAX_FIELDS 7 /* NAME METHODS PATH apikey writer cred=... scope=...; an 8th is too many */

typedef struct tok {
    const char *p;
    size_t n;
} tok;

typedef struct parser {
    m8_policy *pol;
    size_t cap; /* allocated rules */
    char *err;
    size_t errlen;
    unsigned line;
    unsigned *err_line;
    unsigned default_line;
} parser;

__attribute__((format(printf, 3, 4))) static int fail(parser *ps, int rc, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (ps->errlen) {
        if (ps->line)
            snprintf(ps->err, ps->errlen, "line %u: %s", ps->line, why);
        else
            snprintf(ps->err, ps->errlen, "%s", why);
    }
    if (ps->err_line)
        *ps->err_line = ps->line;
    return rc;
}

static bool tok_is(tok t, const char *s)
{
    size_t n = strlen(s);
    return t.n == n && memcmp(t.p, s, n) == 0;
}

/* ------------------------------------------------------------ fields */

static const struct {
    const char *name;
    m8_policy_access access;
} access_names[] = {
    {"public", M8_POLICY_PUBLIC}, {"user", M8_POLICY_USER},   {"reader", M8_POLICY_READER},
    {"writer", M8_POLICY_WRITER}, {"admin", M8_POLICY_ADMIN}, {"superuser", M8_POLICY_SUPERUSER},
    {"deny", M8_POLICY_DENY},
};

#define ACCESS_WORDS "public, user, reader, writer, admin, superuser, deny or apikey reader|writer"

const char *m8_policy_access_name(m8_policy_access a)
{
    for (size_t i = 0; i < M8_ARRAY_LEN(access_names); i++) {
        if (access_names[i].access == a)
            return access_names[i].name;
    }
    if (a == M8_POLICY_APIKEY_READER)
        return "apikey reader";
    if (a == M8_POLICY_APIKEY_WRITER)
        return "apikey writer";
    return "unknown";
}

/* "cred=KIND[,KIND...]" (bearer, cookie, apikey) into r->creds, checked
 * against the rule's access. */
static int parse_creds(parser *ps, tok t, m8_policy_rule *r)
{
    static const struct {
        const char *name;
        unsigned bit;
    } kinds[] = {{"bearer", M8_ROUTE_CRED_BEARER},
                 {"cookie", M8_ROUTE_CRED_COOKIE},
                 {"apikey", M8_ROUTE_CRED_API_KEY}};
    const char *p = t.p + 5, *end = t.p + t.n;
    unsigned set = 0;
    while (p <= end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        tok k = {p, c ? (size_t)(c - p) : (size_t)(end - p)};
        unsigned bit = 0;
        for (size_t i = 0; i < M8_ARRAY_LEN(kinds) && !bit; i++) {
            if (tok_is(k, kinds[i].name))
                bit = kinds[i].bit;
        }
        if (!bit)
            return fail(ps, M8_EPARSE,
                        "unknown credential kind \"%.*s\" (cred=bearer,cookie,apikey)",
                        (int)(k.n > 64 ? 64 : k.n), k.p);
        if (set & bit)
            return fail(ps, M8_EPARSE, "credential kind \"%.*s\" listed twice", (int)k.n, k.p);
        set |= bit;
        if (!c)
            break;
        p = c + 1;
    }
    m8_policy_access a = r->access;
    if (a == M8_POLICY_PUBLIC || a == M8_POLICY_DENY)
        return fail(ps, M8_EPARSE, "cred= on a %s rule, which takes no credential",
                    m8_policy_access_name(a));
    if ((a == M8_POLICY_APIKEY_READER || a == M8_POLICY_APIKEY_WRITER) &&
        (set & ~M8_ROUTE_CRED_API_KEY))
        return fail(ps, M8_EPARSE,
                    "%s takes an X-API-Key only: write reader or writer with cred= for more kinds",
                    m8_policy_access_name(a));
    if ((set & M8_ROUTE_CRED_API_KEY) && (a == M8_POLICY_ADMIN || a == M8_POLICY_SUPERUSER))
        return fail(ps, M8_EPARSE,
                    "cred=apikey on a %s rule: an API key grants reader or writer only",
                    m8_policy_access_name(a));
    r->creds = set;
    return 0;
}

/* 1 for a cred= field, 2 for scope=, else 0. */
static unsigned field_kind(tok t)
{
    if (t.n >= 5 && memcmp(t.p, "cred=", 5) == 0)
        return 1;
    return t.n >= 6 && memcmp(t.p, "scope=", 6) == 0 ? 2 : 0;
}

/* The access of t[0..n); 0 after an error. */
static m8_policy_access parse_access(parser *ps, const tok *t, size_t n)
{
    if (n == 0) {
        fail(ps, M8_EPARSE, "missing the access (" ACCESS_WORDS ")");
        return 0;
    }
    m8_policy_access a = 0;
    size_t used = 1;
    for (size_t i = 0; i < M8_ARRAY_LEN(access_names) && !a; i++) {
        if (tok_is(t[0], access_names[i].name))
            a = access_names[i].access;
    }
    if (!a && tok_is(t[0], "apikey")) {
        if (n < 2 || !(tok_is(t[1], "reader") || tok_is(t[1], "writer"))) {
            fail(ps, M8_EPARSE, "apikey needs a capability: apikey reader or apikey writer");
            return 0;
        }
        a = tok_is(t[1], "reader") ? M8_POLICY_APIKEY_READER : M8_POLICY_APIKEY_WRITER;
        used = 2;
    }
    if (!a) {
        if (tok_is(t[0], "superadmin"))
            fail(ps, M8_EPARSE,
                 "unknown access \"superadmin\": write superuser (role superadmin "
                 "with is_superuser)");
        else
            fail(ps, M8_EPARSE, "unknown access \"%.*s\" (" ACCESS_WORDS ")",
                 (int)(t[0].n > 64 ? 64 : t[0].n), t[0].p);
        return 0;
    }
    unsigned seen = 0; /* then cred= and scope=, each at most once, in either order */
    for (size_t i = used; i < n; seen |= field_kind(t[i]), i++) {
        if (!field_kind(t[i]) || (seen & field_kind(t[i]))) {
            fail(ps, M8_EPARSE, "unexpected \"%.*s\" after the access",
                 (int)(t[i].n > 64 ? 64 : t[i].n), t[i].p);
            return 0;
        }
    }
    return a;
}

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

static int parse_name(parser *ps, tok t, m8_policy_rule *r)
{
    if (t.p[0] == '/')
        return fail(ps, M8_EPARSE, "a rule starts with its name: NAME METHODS PATH ACCESS");
    if (t.n > M8_POLICY_MAX_NAME)
        return fail(ps, M8_EPARSE, "rule name longer than %u bytes", M8_POLICY_MAX_NAME);
    for (size_t i = 0; i < t.n; i++) {
        if (!name_char((unsigned char)t.p[i]))
            return fail(ps, M8_EPARSE, "rule name \"%.*s\": only letters, digits, '_', '.' and '-'",
                        (int)t.n, t.p);
    }
    for (size_t i = 0; i < ps->pol->n; i++) {
        if (tok_is(t, ps->pol->rules[i].name))
            return fail(ps, M8_EPARSE, "rule name \"%.*s\" already used on line %u", (int)t.n, t.p,
                        ps->pol->rules[i].line);
    }
    r->name = m8_arena_strndup(&ps->pol->arena, t.p, t.n);
    return r->name ? 0 : fail(ps, M8_ENOMEM, "out of memory");
}

static int parse_methods(parser *ps, tok t, m8_policy_rule *r)
{
    if (tok_is(t, "*"))
        return 0; /* every method */
    const char *list[M8_POLICY_MAX_METHODS];
    size_t lens[M8_POLICY_MAX_METHODS], n = 0;
    const char *p = t.p, *end = t.p + t.n;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        size_t len = (size_t)(e - p);
        if (len == 0)
            return fail(ps, M8_EPARSE, "empty method in \"%.*s\" (GET,POST or *)",
                        (int)(t.n > 64 ? 64 : t.n), t.p);
        if (len == 1 && *p == '*')
            return fail(ps, M8_EPARSE, "'*' stands alone: every method");
        if (len > M8_POLICY_MAX_METHOD)
            return fail(ps, M8_EPARSE, "method longer than %u bytes", M8_POLICY_MAX_METHOD);
        bool lower = false;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)p[i];
            lower |= c >= 'a' && c <= 'z';
            bool okc = (c >= 'A' && c <= 'Z') ||
                       (i > 0 && ((c >= '0' && c <= '9') || c == '-' || c == '_'));
            if (!okc) {
                if (lower)
                    return fail(ps, M8_EPARSE, "method \"%.*s\" must be upper-case", (int)len, p);
                return fail(ps, M8_EPARSE,
                            "bad method \"%.*s\" (an upper-case name such as GET, or *)", (int)len,
                            p);
            }
        }
        if (n == M8_POLICY_MAX_METHODS)
            return fail(ps, M8_EPARSE, "more than %u methods", M8_POLICY_MAX_METHODS);
        list[n] = p;
        lens[n++] = len;
        p = e + 1;
    }
    r->methods = m8_arena_alloc(&ps->pol->arena, n * sizeof *r->methods);
    if (!r->methods)
        return fail(ps, M8_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        r->methods[i] = m8_arena_strndup(&ps->pol->arena, list[i], lens[i]);
        if (!r->methods[i])
            return fail(ps, M8_ENOMEM, "out of memory");
    }
    r->n_methods = n;
    return 0;
}

static int parse_path(parser *ps, tok t, m8_policy_rule *r)
{
    const char *p = t.p;
    size_t n = t.n;
    bool exact = p[0] == '=';
    if (t.n > M8_POLICY_MAX_PATTERN)
        return fail(ps, M8_EPARSE, "path longer than %u bytes", M8_POLICY_MAX_PATTERN);
    if (exact) {
        p++;
        n--;
    }
    if (n == 0 || p[0] != '/')
        return fail(ps, M8_EPARSE, "path \"%.*s\" must start with '/'", (int)(t.n > 64 ? 64 : t.n),
                    t.p);
    unsigned wild = 0;
    for (size_t i = 1; i <= n; i++) {
        /* one segment: p[i .. e) */
        size_t e = i;
        while (e < n && p[e] != '/')
            e++;
        size_t len = e - i;
        const char *s = p + i;
        bool last = e == n;
        if (len == 0 && !last)
            return fail(ps, M8_EPARSE,
                        "empty segment (\"//\") in the path: paths are matched "
                        "after \"//\" is merged");
        if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return fail(ps, M8_EPARSE,
                        "\".\" or \"..\" segment in the path: paths are matched "
                        "after those are resolved");
        for (size_t k = 0; k < len; k++) {
            if (s[k] == '%')
                return fail(ps, M8_EPARSE,
                            "'%%' in the path: write it decoded (paths are "
                            "matched after %%-decoding)");
            if (s[k] == '\\' || s[k] == ';' || s[k] == '#')
                return fail(ps, M8_EPARSE,
                            "'%c' in the path: request paths holding one are refused "
                            "(fcgim8-gate(8))",
                            s[k]);
            if (s[k] == '*' || s[k] == '?') {
                if (exact)
                    return fail(ps, M8_EPARSE, "'*' or '?' in an exact (=) path");
                wild++;
                if (s[k] == '*' && k + 1 < len && s[k + 1] == '*') {
                    if (len != 2)
                        return fail(ps, M8_EPARSE, "\"**\" must be a whole path segment");
                    k++;
                }
            }
        }
        i = e;
    }
    if (!m8__policy_utf8_ok(p, n))
        return fail(ps, M8_EPARSE, "the path is not valid UTF-8");
    if (wild > M8_POLICY_MAX_WILDCARDS)
        return fail(ps, M8_EPARSE, "more than %u wildcards in the path", M8_POLICY_MAX_WILDCARDS);
    r->kind = exact ? M8_POLICY_EXACT : wild ? M8_POLICY_GLOB : M8_POLICY_PREFIX;
    if (r->kind == M8_POLICY_PREFIX) {
        while (n > 0 && p[n - 1] == '/')
            n--; /* "/admin/" is "/admin", "/" is "" */
    }
    r->pattern = m8_arena_strndup(&ps->pol->arena, p, n);
    r->pattern_len = n;
    return r->pattern ? 0 : fail(ps, M8_ENOMEM, "out of memory");
}

/* A fresh rule at the end of the policy (counted once it is complete). */
static int new_rule(parser *ps, m8_policy_rule **out)
{
    m8_policy *pol = ps->pol;
    if (pol->n == M8_POLICY_MAX_RULES)
        return fail(ps, M8_ETOOBIG, "more than %u rules", M8_POLICY_MAX_RULES);
    if (pol->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 16;
        m8_policy_rule *rules = realloc(pol->rules, cap * sizeof *rules);
        if (!rules)
            return fail(ps, M8_ENOMEM, "out of memory");
        pol->rules = rules;
        ps->cap = cap;
    }
    m8_policy_rule *r = &pol->rules[pol->n];
    memset(r, 0, sizeof *r);
    r->line = ps->line;
    *out = r;
    return 0;
}

/* "scope=NAME": the API-key scope the rule requires
 * (doc/issuer.md#api-key-scopes-and-format), only on a rule that takes an
 * X-API-Key. */
static int parse_scope(parser *ps, tok t, m8_policy_rule *r)
{
    const char *v = t.p + 6;
    size_t n = t.n - 6;
    if (!m8_apikey_scope_valid(v, n))
        return fail(ps, M8_EPARSE, "scope \"%.*s\": 1 to 3 lower-case names joined by ':' (%s)",
                    (int)(n > 64 ? 64 : n), v, "a letter, then [a-z0-9_.-]; at most 64 bytes");
    if (r->access != M8_POLICY_APIKEY_READER && r->access != M8_POLICY_APIKEY_WRITER &&
        !(r->creds & M8_ROUTE_CRED_API_KEY))
        return fail(ps, M8_EPARSE, "scope= on a rule (%s) that takes no X-API-Key (%s)",
                    m8_policy_access_name(r->access), "apikey reader|writer, or cred=...,apikey");
    r->scope = m8_arena_strndup(&ps->pol->arena, v, n);
    return r->scope ? 0 : fail(ps, M8_ENOMEM, "out of memory");
}

/* The cred= and scope= fields after the access t[0..n) (parse_access let
 * through at most one of each), cred= first: scope= depends on it. */
static int access_creds(parser *ps, const tok *t, size_t n, m8_policy_rule *r)
{
    int rc = 0;
    for (unsigned k = 1; k <= 2; k++) /* cred= first: scope= depends on it */
        for (size_t i = 1; i < n && rc == 0; i++)
            if (field_kind(t[i]) == k)
                rc = k == 1 ? parse_creds(ps, t[i], r) : parse_scope(ps, t[i], r);
    return rc;
}

/* One line's fields (comments dropped); n 0 is a blank line. */
static int parse_line(parser *ps, const tok *t, size_t n)
{
    if (n == 0)
        return 0;
    if (ps->default_line)
        return fail(ps, M8_EPARSE, "rule after the default rule (line %u) can never match",
                    ps->default_line);
    m8_policy_rule *r = NULL;
    int rc = new_rule(ps, &r);
    if (rc)
        return rc;
    if (tok_is(t[0], "default")) {
        r->name = "default";
        r->kind = M8_POLICY_ANY;
        r->pattern = "";
        r->access = parse_access(ps, t + 1, n - 1);
        if (!r->access || (n > 1 && (rc = access_creds(ps, t + 1, n - 1, r))))
            return M8_EPARSE;
        ps->default_line = ps->line;
        ps->pol->n++;
        return 0;
    }
    if (n < 4)
        return fail(ps, M8_EPARSE,
                    "expected NAME METHODS PATH ACCESS (or \"default ACCESS\"), "
                    "got %zu field%s",
                    n, n == 1 ? "" : "s");
    if ((rc = parse_name(ps, t[0], r)) || (rc = parse_methods(ps, t[1], r)) ||
        (rc = parse_path(ps, t[2], r)))
        return rc;
    r->access = parse_access(ps, t + 3, n - 3);
    if (!r->access || (rc = access_creds(ps, t + 3, n - 3, r)))
        return M8_EPARSE;
    ps->pol->n++;
    return 0;
}

int m8_policy_parse(const char *text, size_t len, m8_policy *out, char *err, size_t errlen,
                    unsigned *err_line)
{
    memset(out, 0, sizeof *out);
    m8_arena_init(&out->arena, 2 * M8_POLICY_MAX_BYTES + (1u << 20));
    parser ps = {.pol = out, .err = err, .errlen = errlen, .err_line = err_line};
    if (err_line)
        *err_line = 0;
    if (errlen)
        err[0] = '\0';
    int rc = 0;
    if (len > M8_POLICY_MAX_BYTES)
        rc = fail(&ps, M8_ETOOBIG, "policy larger than %u bytes", M8_POLICY_MAX_BYTES);
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3;
    while (!rc && pos < len) {
        ps.line++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t n = end - pos;
        const char *line = text + pos;
        pos = end + 1;
        if (n && line[n - 1] == '\r')
            n--;
        if (n > M8_POLICY_MAX_LINE) {
            rc = fail(&ps, M8_ETOOBIG, "line longer than %u bytes", M8_POLICY_MAX_LINE);
            break;
        }
        tok t[MAX_FIELDS];
        size_t nt = 0;
        for (size_t i = 0; i < n && !rc;) {
            unsigned char c = (unsigned char)line[i];
            if (c == ' ' || c == '\t') {
                i++;
                continue;
            }
            if (c == '#')
                break; /* a comment to the end of the line */
            size_t s = i;
            while (i < n && line[i] != ' ' && line[i] != '\t') {
                unsigned char d = (unsigned char)line[i];
                if (d == 0) {
                    rc = fail(&ps, M8_EPARSE, "NUL byte");
                    break;
                }
                if (d < 0x20 || d == 0x7f) {
                    rc = fail(&ps, M8_EPARSE, "control character 0x%02x", d);
                    break;
                }
                i++;
            }
            if (rc)
                break;
            if (nt == MAX_FIELDS) {
                rc = fail(&ps, M8_EPARSE, "too many fields (NAME METHODS PATH ACCESS)");
                break;
            }
            t[nt].p = line + s;
            t[nt++].n = i - s;
        }
        if (!rc)
            rc = parse_line(&ps, t, nt);
    }
    if (!rc && !ps.default_line) {
        rc = fail(&ps, M8_EPARSE,
                  "no default rule: end the policy with one, e.g. \"default deny\" (fail closed)");
    }
    if (rc) {
        m8_policy_free(out);
        return rc;
    }
    return 0;
}

void m8_policy_free(m8_policy *p)
{
    if (!p)
        return;
    free(p->rules);
    m8_arena_free(&p->arena);
    memset(p, 0, sizeof *p);
}

const m8_policy_rule *m8_policy_first_apikey(const m8_policy *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (p->rules[i].access == M8_POLICY_APIKEY_READER ||
            p->rules[i].access == M8_POLICY_APIKEY_WRITER ||
            (p->rules[i].creds & M8_ROUTE_CRED_API_KEY))
            return &p->rules[i];
    }
    return NULL;
}

/* ------------------------------------------------------------ matching */

/* The index after the UTF-8 character at s[i]. */
static size_t next_char(const char *s, size_t n, size_t i)
{
    i++;
    while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
        i++;
    return i;
}

/* One segment against a segment pattern with '*' (any run) and '?' (one
 * character): the greedy matcher with one backtrack point, O(pn x sn). */
static bool seg_match(const char *p, size_t pn, const char *s, size_t sn)
{
    size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '*') {
            star_p = pi++;
            star_s = si;
        } else if (pi < pn && p[pi] == '?') {
            pi++;
            si = next_char(s, sn, si);
        } else if (pi < pn && p[pi] == s[si]) {
            pi++;
            si++;
        } else if (star_p != SIZE_MAX) {
            pi = star_p + 1;
            star_s = next_char(s, sn, star_s);
            si = star_s;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

/* The end of the segment that starts at s[i] (the next '/', or n). */
static size_t seg_end(const char *s, size_t n, size_t i)
{
    const char *slash = i < n ? memchr(s + i, '/', n - i) : NULL;
    return slash ? (size_t)(slash - s) : n;
}

static bool is_globstar(const char *p, size_t pn, size_t i)
{
    return seg_end(p, pn, i) - i == 2 && p[i] == '*' && p[i + 1] == '*';
}

/* The same greedy matcher over segments, "**" being the star: segments
 * start after each '/', and a path has a segment while its start <= n. */
static bool glob_match(const char *p, size_t pn, const char *s, size_t sn)
{
    size_t pi = 1, si = 1, star_p = SIZE_MAX, star_s = 0;
    while (si <= sn) {
        size_t se = seg_end(s, sn, si);
        if (pi <= pn && is_globstar(p, pn, pi)) {
            star_p = pi;
            star_s = si;
            pi = seg_end(p, pn, pi) + 1;
            continue;
        }
        if (pi <= pn) {
            size_t pe = seg_end(p, pn, pi);
            if (seg_match(p + pi, pe - pi, s + si, se - si)) {
                pi = pe + 1;
                si = se + 1;
                continue;
            }
        }
        if (star_p == SIZE_MAX)
            return false;
        pi = seg_end(p, pn, star_p) + 1;
        star_s = seg_end(s, sn, star_s) + 1;
        si = star_s;
    }
    while (pi <= pn && is_globstar(p, pn, pi))
        pi = seg_end(p, pn, pi) + 1;
    return pi > pn;
}

static bool method_ok(const m8_policy_rule *r, const char *method)
{
    if (r->n_methods == 0)
        return true;
    bool head = strcmp(method, "HEAD") == 0;
    for (size_t i = 0; i < r->n_methods; i++) {
        if (strcmp(r->methods[i], method) == 0 || (head && strcmp(r->methods[i], "GET") == 0))
            return true;
    }
    return false;
}

static bool path_ok(const m8_policy_rule *r, const char *path, size_t n)
{
    const char *p = r->pattern;
    size_t pn = r->pattern_len;
    switch (r->kind) {
    case M8_POLICY_ANY: return true;
    case M8_POLICY_EXACT: return n == pn && memcmp(path, p, n) == 0;
    case M8_POLICY_PREFIX:
        return pn == 0 || (n >= pn && memcmp(path, p, pn) == 0 && (n == pn || path[pn] == '/'));
    case M8_POLICY_GLOB: return n > 0 && path[0] == '/' && glob_match(p, pn, path, n);
    }
    return false;
}

const m8_policy_rule *m8_policy_match(const m8_policy *p, const char *method, const char *path,
                                      size_t n)
{
    for (size_t i = 0; i < p->n; i++) {
        const m8_policy_rule *r = &p->rules[i];
        if (method_ok(r, method ? method : "") && path_ok(r, path, n))
            return r;
    }
    return p->n ? &p->rules[p->n - 1] : NULL;
}
