/* dotenv.c - the .env parser (dotenv.h).  Follows python-dotenv 1.2.2 where
 * it parses a statement; where python-dotenv would warn and skip a statement
 * it cannot parse, this parser fails with the line number instead, so a
 * broken .env never boots half-read.  Error texts never quote file content:
 * a stray line may be a secret. */
#include "config/dotenv.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const char *s;
    size_t n;
    size_t i;
    unsigned line;
} reader;

typedef struct parser {
    reader r;
    m8_dotenv_lookup lookup;
    void *lookup_data;
    m8_dotenv *out;
    size_t cap;
    size_t total; /* bytes of all values produced, bounded by M8_MAX_ENV_FILE_BYTES */
    char *raw;    /* scratch: the decoded value */
    char *val;    /* scratch: the interpolated value */
    char *err;
    size_t errlen;
    int rc;
} parser;

static int fail(parser *p, int rc, unsigned line, const char *why)
{
    if (p->errlen)
        snprintf(p->err, p->errlen, "line %u: %s", line, why);
    p->rc = rc;
    return rc;
}

static bool is_hspace(char c)
{
    return c == ' ' || c == '\t' || c == '\f' || c == '\v';
}

static bool is_space(char c)
{
    return is_hspace(c) || c == '\r' || c == '\n';
}

static bool at_eol(const reader *r)
{
    return r->i >= r->n || r->s[r->i] == '\n' || r->s[r->i] == '\r';
}

/* Consumes one line end (\n, \r\n or \r) if present. */
static void eat_eol(reader *r)
{
    if (r->i < r->n && r->s[r->i] == '\r') {
        r->i++;
        if (r->i < r->n && r->s[r->i] == '\n')
            r->i++;
        r->line++;
    } else if (r->i < r->n && r->s[r->i] == '\n') {
        r->i++;
        r->line++;
    }
}

static void skip_hspace(reader *r)
{
    while (r->i < r->n && is_hspace(r->s[r->i]))
        r->i++;
}

static void skip_to_eol(reader *r)
{
    while (!at_eol(r))
        r->i++;
}

/* Checks the whole text once: no NUL, valid UTF-8, no line over the limit. */
static int precheck(parser *p, const char *s, size_t n)
{
    unsigned line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n' || c == '\r') {
            if (i - line_start > M8_MAX_ENV_LINE_BYTES)
                return fail(p, M8_ETOOBIG, line, "line exceeds the line size limit");
            if (c == '\r' && i + 1 < n && s[i + 1] == '\n')
                i++;
            i++;
            line++;
            line_start = i;
            continue;
        }
        if (c == 0)
            return fail(p, M8_EPARSE, line, "NUL byte");
        size_t need;
        if (c < 0x80)
            need = 0;
        else if ((c & 0xE0) == 0xC0)
            need = 1;
        else if ((c & 0xF0) == 0xE0)
            need = 2;
        else if ((c & 0xF8) == 0xF0)
            need = 3;
        else
            return fail(p, M8_EPARSE, line, "invalid UTF-8");
        if (need && i + need >= n)
            return fail(p, M8_EPARSE, line, "invalid UTF-8");
        uint32_t cp = need == 0   ? c
                      : need == 1 ? (c & 0x1Fu)
                      : need == 2 ? (c & 0x0Fu)
                                  : (c & 0x07u);
        for (size_t k = 1; k <= need; k++) {
            unsigned char cc = (unsigned char)s[i + k];
            if ((cc & 0xC0) != 0x80)
                return fail(p, M8_EPARSE, line, "invalid UTF-8");
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return fail(p, M8_EPARSE, line, "invalid UTF-8");
        i += need + 1;
    }
    if (n - line_start > M8_MAX_ENV_LINE_BYTES)
        return fail(p, M8_ETOOBIG, line, "line exceeds the line size limit");
    return 0;
}

/* The latest value of key defined earlier in the file, or NULL. */
static const char *earlier(const parser *p, const char *key, size_t klen)
{
    for (size_t i = p->out->n; i-- > 0;) {
        const char *k = p->out->pairs[i].key;
        if (strlen(k) == klen && memcmp(k, key, klen) == 0)
            return p->out->pairs[i].value;
    }
    return NULL;
}

static int put(parser *p, size_t *len, const char *s, size_t n, unsigned line)
{
    if (n > M8_MAX_ENV_LINE_BYTES - *len)
        return fail(p, M8_ETOOBIG, line, "value exceeds the value size limit");
    memcpy(p->val + *len, s, n);
    *len += n;
    return 0;
}

/* python-dotenv's ${NAME} / ${NAME:-default}: p->raw[0..rlen) into p->val. */
static int interpolate(parser *p, size_t rlen, size_t *vlen, unsigned line)
{
    const char *s = p->raw;
    size_t len = 0;
    for (size_t i = 0; i < rlen;) {
        if (s[i] == '$' && i + 1 < rlen && s[i + 1] == '{') {
            size_t j = i + 2;
            while (j < rlen && s[j] != '}' && s[j] != ':')
                j++;
            size_t name = i + 2, name_len = j - name;
            size_t def = 0, def_len = 0;
            bool has_def = false, match = false;
            if (j < rlen && s[j] == '}') {
                match = true;
            } else if (j + 1 < rlen && s[j] == ':' && s[j + 1] == '-') {
                size_t k = j + 2;
                while (k < rlen && s[k] != '}')
                    k++;
                if (k < rlen) {
                    match = has_def = true;
                    def = j + 2;
                    def_len = k - def;
                    j = k;
                }
            }
            if (match) {
                char nm[256];
                const char *v = NULL;
                if (name_len < sizeof nm) {
                    v = earlier(p, s + name, name_len);
                    if (!v && p->lookup) {
                        memcpy(nm, s + name, name_len);
                        nm[name_len] = '\0';
                        v = p->lookup(nm, p->lookup_data);
                    }
                }
                /* As python-dotenv: the default applies only to an absent name. */
                int rc = v         ? put(p, &len, v, strlen(v), line)
                         : has_def ? put(p, &len, s + def, def_len, line)
                                   : 0;
                if (rc)
                    return rc;
                i = j + 1;
                continue;
            }
        }
        int rc = put(p, &len, s + i, 1, line);
        if (rc)
            return rc;
        i++;
    }
    *vlen = len;
    return 0;
}

static int add_pair(parser *p, const char *key, size_t klen, size_t vlen, unsigned line)
{
    if (vlen > M8_MAX_ENV_FILE_BYTES - p->total)
        return fail(p, M8_ETOOBIG, line, "interpolated values exceed the file size limit");
    p->total += vlen;
    char *v = malloc(vlen + 1);
    if (!v)
        return fail(p, M8_ENOMEM, line, "out of memory");
    memcpy(v, p->val, vlen);
    v[vlen] = '\0';
    for (size_t i = 0; i < p->out->n; i++) {
        m8_dotenv_pair *q = &p->out->pairs[i];
        if (strlen(q->key) == klen && memcmp(q->key, key, klen) == 0) {
            sodium_memzero(q->value, strlen(q->value));
            free(q->value);
            q->value = v;
            q->line = line;
            return 0;
        }
    }
    if (p->out->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        m8_dotenv_pair *np = realloc(p->out->pairs, cap * sizeof *np);
        if (!np) {
            free(v);
            return fail(p, M8_ENOMEM, line, "out of memory");
        }
        p->out->pairs = np;
        p->cap = cap;
    }
    char *k = malloc(klen + 1);
    if (!k) {
        free(v);
        return fail(p, M8_ENOMEM, line, "out of memory");
    }
    memcpy(k, key, klen);
    k[klen] = '\0';
    p->out->pairs[p->out->n++] = (m8_dotenv_pair){.key = k, .value = v, .line = line};
    return 0;
}

static int raw_put(parser *p, size_t *len, char c, unsigned line)
{
    if (*len >= M8_MAX_ENV_LINE_BYTES)
        return fail(p, M8_ETOOBIG, line, "value exceeds the value size limit");
    p->raw[(*len)++] = c;
    return 0;
}

/* A quoted value starting at the opening quote; decodes escapes into p->raw. */
static int quoted(parser *p, size_t *rlen, unsigned line)
{
    reader *r = &p->r;
    char q = r->s[r->i++];
    size_t len = 0;
    for (;;) {
        if (r->i >= r->n)
            return fail(p, M8_EPARSE, line, "unterminated quoted value");
        char c = r->s[r->i];
        if (c == q) {
            r->i++;
            break;
        }
        if (c == '\\' && r->i + 1 < r->n) {
            char e = r->s[r->i + 1];
            char d = 0;
            if (e == '\\' || e == '\'')
                d = e;
            else if (q == '"') {
                switch (e) {
                case '"': d = '"'; break;
                case 'a': d = '\a'; break;
                case 'b': d = '\b'; break;
                case 'f': d = '\f'; break;
                case 'n': d = '\n'; break;
                case 'r': d = '\r'; break;
                case 't': d = '\t'; break;
                case 'v': d = '\v'; break;
                default: break;
                }
            }
            if (d) {
                if (raw_put(p, &len, d, line))
                    return p->rc;
                r->i += 2;
                continue;
            }
        }
        if (c == '\n' || (c == '\r' && !(r->i + 1 < r->n && r->s[r->i + 1] == '\n')))
            r->line++;
        if (raw_put(p, &len, c, line))
            return p->rc;
        r->i++;
    }
    /* Only blanks, then an optional comment, may follow on the line. */
    skip_hspace(r);
    if (r->i < r->n && r->s[r->i] == '#')
        skip_to_eol(r);
    if (!at_eol(r))
        return fail(p, M8_EPARSE, r->line, "unexpected characters after the closing quote");
    *rlen = len;
    return 0;
}

/* An unquoted value: the rest of the line, cut at blank+'#', right-trimmed. */
static int unquoted(parser *p, size_t *rlen)
{
    reader *r = &p->r;
    size_t start = r->i;
    skip_to_eol(r);
    size_t end = r->i;
    for (size_t i = start + 1; i < end; i++) {
        if (r->s[i] == '#' && is_hspace(r->s[i - 1])) {
            end = i;
            break;
        }
    }
    while (end > start && is_space(r->s[end - 1]))
        end--;
    memcpy(p->raw, r->s + start, end - start); /* a line is at most the limit */
    *rlen = end - start;
    return 0;
}

static int statement(parser *p)
{
    reader *r = &p->r;
    while (r->i < r->n && is_space(r->s[r->i])) {
        if (r->s[r->i] == '\n' || r->s[r->i] == '\r')
            eat_eol(r);
        else
            r->i++;
    }
    if (r->i >= r->n)
        return 1;
    unsigned line = r->line;
    if (r->s[r->i] == '#') {
        skip_to_eol(r);
        eat_eol(r);
        return 0;
    }
    if (r->n - r->i > 6 && memcmp(r->s + r->i, "export", 6) == 0 && is_hspace(r->s[r->i + 6])) {
        r->i += 6;
        skip_hspace(r);
    }
    const char *key;
    size_t klen;
    if (r->i < r->n && r->s[r->i] == '\'') {
        size_t j = r->i + 1;
        while (j < r->n && r->s[j] != '\'')
            j++;
        if (j >= r->n || j == r->i + 1)
            return fail(p, M8_EPARSE, line, "malformed quoted name");
        key = r->s + r->i + 1;
        klen = j - r->i - 1;
        r->i = j + 1;
    } else {
        size_t j = r->i;
        while (j < r->n && r->s[j] != '=' && r->s[j] != '#' && !is_space(r->s[j]))
            j++;
        if (j == r->i)
            return fail(p, M8_EPARSE, line, "expected a name before '='");
        key = r->s + r->i;
        klen = j - r->i;
        r->i = j;
    }
    skip_hspace(r);
    if (r->i >= r->n || r->s[r->i] != '=')
        return fail(p, M8_EPARSE, line, "expected NAME=value");
    r->i++;
    skip_hspace(r);
    size_t rlen = 0, vlen = 0;
    int rc;
    if (r->i < r->n && (r->s[r->i] == '\'' || r->s[r->i] == '"'))
        rc = quoted(p, &rlen, line);
    else
        rc = unquoted(p, &rlen);
    if (rc)
        return rc;
    skip_to_eol(r);
    eat_eol(r);
    if ((rc = interpolate(p, rlen, &vlen, line)) != 0)
        return rc;
    return add_pair(p, key, klen, vlen, line);
}

int m8_dotenv_parse(const char *text, size_t len, m8_dotenv_lookup lookup, void *lookup_data,
                    m8_dotenv *out, char *err, size_t errlen)
{
    parser p = {
        .lookup = lookup, .lookup_data = lookup_data, .out = out, .err = err, .errlen = errlen};
    out->pairs = NULL;
    out->n = 0;
    if (errlen)
        err[0] = '\0';
    if (len > M8_MAX_ENV_FILE_BYTES) {
        if (errlen)
            snprintf(err, errlen, "file exceeds %u bytes", (unsigned)M8_MAX_ENV_FILE_BYTES);
        return M8_ETOOBIG;
    }
    if (!text)
        text = "";
    /* A UTF-8 byte-order mark is not part of the first name. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    if (precheck(&p, text, len))
        return p.rc;
    p.r = (reader){.s = text, .n = len, .i = 0, .line = 1};
    p.raw = malloc(M8_MAX_ENV_LINE_BYTES + 1);
    p.val = malloc(M8_MAX_ENV_LINE_BYTES + 1);
    int rc = 0;
    if (!p.raw || !p.val) {
        rc = fail(&p, M8_ENOMEM, 1, "out of memory");
    } else {
        int r;
        while ((r = statement(&p)) == 0)
            ;
        if (r < 0)
            rc = r;
    }
    if (p.raw) {
        sodium_memzero(p.raw, M8_MAX_ENV_LINE_BYTES + 1);
        free(p.raw);
    }
    if (p.val) {
        sodium_memzero(p.val, M8_MAX_ENV_LINE_BYTES + 1);
        free(p.val);
    }
    if (rc)
        m8_dotenv_free(out);
    return rc;
}

void m8_dotenv_free(m8_dotenv *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->pairs[i].key);
        if (d->pairs[i].value) {
            sodium_memzero(d->pairs[i].value, strlen(d->pairs[i].value));
            free(d->pairs[i].value);
        }
    }
    free(d->pairs);
    d->pairs = NULL;
    d->n = 0;
}
