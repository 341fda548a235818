/* form.c - the login form (form.h): application/x-www-form-urlencoded and
 * multipart/form-data read as Starlette (python-multipart) and FastAPI's
 * OAuth2PasswordRequestForm read them, FastAPI's 422 list, and the
 * rate-limit keys.  Every behaviour is listed in doc/issuer.md#login-form.
 * Pure: no I/O. */
#include "issuer/form.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define STOP 1 /* internal: the body ended early; what was complete counts */

enum { F_GRANT, F_USER, F_PASS, F_SCOPE, F_CID, F_CSECRET, F_COUNT };
_Static_assert((int)F_COUNT == (int)M8_FORM_NFIELDS &&
                   (int)F_CSECRET == (int)M8_FORM_CLIENT_SECRET &&
                   (int)F_GRANT == (int)M8_FORM_GRANT_TYPE && (int)F_CID == (int)M8_FORM_CLIENT_ID,
               "form.h lists the fields in this order");
static const char *const field_names[F_COUNT] = {"grant_type", "username",  "password",
                                                 "scope",      "client_id", "client_secret"};
#define MAX_NAME_RAW 39u /* 3 x strlen("client_secret"): longer raw names cannot match */

typedef enum { SLOT_ABSENT, SLOT_TEXT, SLOT_FILE } slot_kind;

typedef struct fctx {
    m8_arena *a;
    m8_buf *err;
    struct {
        slot_kind kind;
        const char *p; /* raw bytes of the last value sent under this name */
        size_t n;
    } slot[F_COUNT];
    bool multipart, utf8;
    size_t fields, files;
} fctx;

/* ------------------------------------------------------------ errors */

static int detail(m8_buf *err, int status, const char *msg)
{
    int rc = m8_buf_puts(err, "{\"detail\":");
    if (!rc)
        rc = m8_buf_json_str(err, msg, strlen(msg));
    if (!rc)
        rc = m8_buf_putc(err, '}');
    return rc ? rc : status;
}

/* A multipart body python-multipart refuses: FastAPI's answer to any error
 * raised while reading the body. */
static int parse_error(fctx *c)
{
    return detail(c->err, 400, "There was an error parsing the body");
}

static int too_many(fctx *c, const char *what)
{
    char msg[96];
    snprintf(msg, sizeof msg, "Too many %s. Maximum number of %s is %u.", what, what,
             M8_LOGIN_FORM_MAX_FIELDS);
    return detail(c->err, 400, msg);
}

/* ------------------------------------------------------------ text */

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

size_t m8__form_utf8_seq(const unsigned char *p, size_t n, size_t *bad, unsigned *cp)
{
    unsigned char c = p[0];
    *cp = c;
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        *bad = 1;
        return 0;
    }
    *cp = c & (len == 2 ? 0x1Fu : len == 3 ? 0x0Fu : 0x07u);
    size_t i = 1;
    for (; i < len && i < n; i++) {
        if (p[i] < (i == 1 ? lo : 0x80) || p[i] > (i == 1 ? hi : 0xBF))
            break;
        *cp = (*cp << 6) | (p[i] & 0x3Fu);
    }
    if (i < len) {
        *bad = i;
        return 0;
    }
    return len;
}

static bool utf8_valid(const char *s, size_t n)
{
    size_t bad;
    unsigned cp;
    for (size_t i = 0, k; i < n; i += k) {
        k = m8__form_utf8_seq((const unsigned char *)s + i, n - i, &bad, &cp);
        if (!k)
            return false;
    }
    return true;
}

/* Appends s[0..n) to d at *o with invalid UTF-8 replaced by U+FFFD (at most
 * 3n bytes). */
static void put_utf8_fixed(char *d, size_t *o, const char *s, size_t n)
{
    size_t bad;
    unsigned cp;
    for (size_t i = 0; i < n;) {
        size_t k = m8__form_utf8_seq((const unsigned char *)s + i, n - i, &bad, &cp);
        if (k) {
            memcpy(d + *o, s + i, k);
            *o += k;
            i += k;
        } else {
            memcpy(d + *o, "\xEF\xBF\xBD", 3);
            *o += 3;
            i += bad;
        }
    }
}

/* Appends one latin-1 byte as UTF-8. */
static void put_latin1(char *d, size_t *o, unsigned char b)
{
    if (b < 0x80) {
        d[(*o)++] = (char)b;
    } else {
        d[(*o)++] = (char)(0xC0 | (b >> 6));
        d[(*o)++] = (char)(0x80 | (b & 0x3F));
    }
}

/* Python's unquote_plus(raw.decode("latin-1")): '+' is a space; each run of
 * ASCII bytes is percent-decoded (a malformed escape stays as it is, %00 is
 * a NUL) and read as UTF-8 with U+FFFD for invalid sequences; a raw byte
 * >= 0x80 is a latin-1 character.  d has room for 3n + 1 bytes, tmp for n;
 * returns the length (d is NUL-terminated there). */
static size_t url_decode(char *d, char *tmp, const char *raw, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)raw[i];
        if (c >= 0x80) {
            put_latin1(d, &o, c);
            i++;
            continue;
        }
        size_t j = i, t = 0;
        while (j < n && (unsigned char)raw[j] < 0x80)
            j++;
        for (size_t k = i; k < j; k++) {
            c = (unsigned char)raw[k];
            int hi = -1, lo = -1;
            if (c == '%' && j - k >= 3) {
                hi = hexval((unsigned char)raw[k + 1]);
                lo = hexval((unsigned char)raw[k + 2]);
            }
            if (c == '+') {
                tmp[t++] = ' ';
            } else if (hi >= 0 && lo >= 0) {
                tmp[t++] = (char)(hi * 16 + lo);
                k += 2;
            } else {
                tmp[t++] = (char)c;
            }
        }
        put_utf8_fixed(d, &o, tmp, t);
        i = j;
    }
    d[o] = '\0';
    return o;
}

static int field_index(const char *p, size_t n)
{
    for (int f = 0; f < F_COUNT; f++) {
        if (strlen(field_names[f]) == n && memcmp(field_names[f], p, n) == 0)
            return f;
    }
    return -1;
}

/* ------------------------------------------------------------ urlencoded */

/* Fields are '&'-separated (';' is not a separator), blank ones skipped; a
 * field without '=' has the value "".  Only the last value of each known
 * name is kept (Starlette's FormData.get). */
static int parse_urlencoded(fctx *c, const char *b, size_t n)
{
    for (size_t i = 0; i < n;) {
        const char *amp = memchr(b + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - b) : n;
        if (end > i) {
            if (++c->fields > M8_LOGIN_FORM_MAX_FIELDS)
                return too_many(c, "fields");
            const char *seg = b + i;
            size_t len = end - i;
            const char *eq = memchr(seg, '=', len);
            size_t nlen = eq ? (size_t)(eq - seg) : len;
            if (nlen <= MAX_NAME_RAW) {
                char name[3 * MAX_NAME_RAW + 1], tmp[MAX_NAME_RAW];
                int f = field_index(name, url_decode(name, tmp, seg, nlen));
                if (f >= 0) {
                    c->slot[f].kind = SLOT_TEXT;
                    c->slot[f].p = eq ? eq + 1 : seg + len;
                    c->slot[f].n = eq ? len - nlen - 1 : 0;
                }
            }
        }
        i = end + 1;
    }
    return 0;
}

/* ------------------------------------------------------------ header values */

/* White space as Python's str.strip() sees a latin-1 string. */
static bool py_space(unsigned char c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0;
}

static void py_strip(const char **p, size_t *n)
{
    while (*n && py_space((unsigned char)**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && py_space((unsigned char)(*p)[*n - 1]))
        (*n)--;
}

/* The end of the ';'-separated segment of s[0..n) that starts at start: a
 * ';' inside double quotes does not end it (email.message's rule: the count
 * of '"' minus that of '\"' before the ';' is even). */
static size_t seg_end(const char *s, size_t n, size_t start)
{
    for (size_t end = start;; end++) {
        const char *semi = memchr(s + end, ';', n - end);
        if (!semi)
            return n;
        end = (size_t)(semi - s);
        unsigned long q = 0;
        for (size_t k = start; k < end; k++) {
            if (s[k] == '\\' && k + 1 < end && s[k + 1] == '"')
                k++; /* '\"' counts neither way */
            else if (s[k] == '"')
                q++;
        }
        if (q % 2 == 0)
            return end;
    }
}

/* The value of a Content-Type or Content-Disposition header (its part before
 * the first ';', stripped), as python-multipart's parse_options_header. */
static void header_value(const char *s, size_t n, const char **v, size_t *vn)
{
    *v = s;
    *vn = memchr(s, ';', n) ? seg_end(s, n, 0) : n;
    py_strip(v, vn);
}

/* The last parameter named key (lower-case) of a header value: names are
 * compared lower-cased, names holding '*' are skipped, a value in double
 * quotes loses them and has "\\\\" then "\\\"" unescaped.  Returns whether it
 * is present; the value goes to *val (arena) unless val is NULL. */
static int header_param(m8_arena *a, const char *s, size_t n, const char *key, char **val,
                        size_t *vn)
{
    if (!memchr(s, ';', n))
        return 0;
    const char *found = NULL;
    size_t flen = 0;
    for (size_t start = seg_end(s, n, 0) + 1; start <= n;) {
        size_t end = seg_end(s, n, start);
        const char *seg = s + start, *eq = memchr(seg, '=', end - start);
        size_t klen = eq ? (size_t)(eq - seg) : end - start;
        const char *k = seg, *v = eq ? eq + 1 : seg + klen;
        size_t vlen = eq ? end - start - klen - 1 : 0;
        py_strip(&k, &klen);
        py_strip(&v, &vlen);
        if (!memchr(k, '*', klen) && m8_memcaseeq(k, klen, key)) {
            found = v;
            flen = vlen;
        }
        start = end + 1;
    }
    if (!found)
        return 0;
    if (!val)
        return 1;
    if (flen >= 2 && found[0] == '"' && found[flen - 1] == '"') {
        found++;
        flen -= 2;
    }
    char *d = m8_arena_alloc(a, flen + 1);
    if (!d)
        return M8_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < flen; i++) { /* "\\\\" -> "\\" */
        d[o++] = found[i];
        if (found[i] == '\\' && i + 1 < flen && found[i + 1] == '\\')
            i++;
    }
    size_t w = 0;
    for (size_t i = 0; i < o; i++) { /* then "\\\"" -> "\"" */
        if (d[i] == '\\' && i + 1 < o && d[i + 1] == '"')
            i++;
        d[w++] = d[i];
    }
    d[w] = '\0';
    *val = d;
    *vn = w;
    return 1;
}

/* Whether Python's codec lookup maps this charset name to UTF-8. */
static bool charset_is_utf8(const char *s, size_t n)
{
    static const char *const names[] = {"utf_8",     "utf8",      "u8",     "utf",
                                        "utf8_ucs2", "utf8_ucs4", "cp65001"};
    char norm[32];
    size_t o = 0;
    bool punct = false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum =
            (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        if (!alnum && ch != '.') {
            punct = true;
            continue;
        }
        if (o + 2 >= sizeof norm)
            return false;
        if (punct && o)
            norm[o++] = '_';
        norm[o++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        punct = false;
    }
    for (size_t k = 0; k < M8_ARRAY_LEN(names); k++) {
        if (strlen(names[k]) == o && memcmp(names[k], norm, o) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------ multipart */

static bool is_token(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *find(const char *h, size_t hn, const char *nd, size_t nn)
{
    for (size_t i = 0; hn >= nn && i <= hn - nn;) {
        const char *p = memchr(h + i, nd[0], hn - nn + 1 - i);
        if (!p)
            return NULL;
        if (memcmp(p, nd, nn) == 0)
            return p;
        i = (size_t)(p - h) + 1;
    }
    return NULL;
}

/* The header lines of a part starting at *pi, up to and including the empty
 * line; *cd = the last Content-Disposition value (NULL if none). */
static int part_headers(fctx *c, const char *b, size_t n, size_t *pi, const char **cd, size_t *cdn)
{
    size_t i = *pi;
    unsigned count = 0;
    *cd = NULL;
    for (;;) {
        if (i >= n)
            return STOP;
        if (b[i] == '\r') {
            if (++i >= n)
                return STOP;
            if (b[i] != '\n')
                return parse_error(c);
            *pi = i + 1;
            return 0;
        }
        if (++count > M8_LOGIN_FORM_MAX_PART_HEADERS)
            return parse_error(c);
        const char *colon = memchr(b + i, ':', n - i);
        size_t end = colon ? (size_t)(colon - b) : n;
        size_t size = end - i + (colon ? 1 : 0);
        if (size > M8_LOGIN_FORM_MAX_HEADER_BYTES)
            return parse_error(c);
        for (size_t k = i; k < end; k++) {
            if (!is_token((unsigned char)b[k]))
                return parse_error(c);
        }
        if (!colon)
            return STOP;
        if (end == i)
            return parse_error(c);
        const char *name = b + i;
        size_t nlen = end - i;
        for (i = end + 1; i < n && b[i] == ' '; i++) {
            if (++size > M8_LOGIN_FORM_MAX_HEADER_BYTES)
                return parse_error(c);
        }
        if (i >= n)
            return STOP;
        const char *cr = memchr(b + i, '\r', n - i);
        size_t vend = cr ? (size_t)(cr - b) : n;
        if (size + (vend - i) > M8_LOGIN_FORM_MAX_HEADER_BYTES)
            return parse_error(c);
        if (!cr)
            return STOP;
        if (m8_memcaseeq(name, nlen, "content-disposition")) {
            *cd = b + i;
            *cdn = vend - i;
        }
        i = vend + 1;
        if (i >= n)
            return STOP;
        if (b[i] != '\n')
            return parse_error(c);
        i++;
    }
}

/* One part from its headers to its closing delimiter; *pi moves past it.
 * Returns 0 for another part, STOP at the end (final delimiter or a body
 * that ends early: an unterminated part is dropped), or an answer. */
static int part(fctx *c, const char *b, size_t n, size_t *pi, const char *delim, size_t dl)
{
    const char *cd;
    size_t cdn = 0, nmn;
    char *nm;
    int rc = part_headers(c, b, n, pi, &cd, &cdn);
    if (rc)
        return rc;
    rc = cd ? header_param(c->a, cd, cdn, "name", &nm, &nmn) : 0;
    if (rc < 0)
        return rc;
    if (!rc)
        return detail(c->err, 400,
                      "The Content-Disposition header field \"name\" must be provided.");
    bool file = header_param(c->a, cd, cdn, "filename", NULL, NULL) == 1;
    if (file ? ++c->files > M8_LOGIN_FORM_MAX_FIELDS : ++c->fields > M8_LOGIN_FORM_MAX_FIELDS)
        return too_many(c, file ? "files" : "fields");
    size_t ds = *pi;
    for (size_t from = ds;;) {
        const char *f = find(b + from, n - from, delim, dl);
        if (!f)
            return STOP;
        size_t at = (size_t)(f - b), after = at + dl;
        if (after + 1 >= n)
            return STOP;
        bool next = b[after] == '\r' && b[after + 1] == '\n';
        bool last = b[after] == '-' && b[after + 1] == '-';
        if (next || last) {
            int fi = field_index(nm, nmn);
            if (fi >= 0) {
                c->slot[fi].kind = file ? SLOT_FILE : SLOT_TEXT;
                c->slot[fi].p = b + ds;
                c->slot[fi].n = at - ds;
            }
            *pi = after + 2;
            return last ? STOP : 0;
        }
        from = at + 1;
    }
}

/* python-multipart's MultipartParser over a whole body: leading CR/LF skip
 * to the first '-'; then "--boundary" and CRLF (or "--": no parts); the
 * epilogue after the final delimiter is ignored. */
static int parse_multipart(fctx *c, const char *ct, size_t ctn, const char *b, size_t n)
{
    char *bd, *cs;
    size_t bdn, csn;
    int rc = header_param(c->a, ct, ctn, "boundary", &bd, &bdn);
    if (rc <= 0)
        return rc < 0 ? rc : detail(c->err, 400, "Missing boundary in multipart.");
    if (bdn > M8_LOGIN_FORM_MAX_BOUNDARY)
        return parse_error(c);
    rc = header_param(c->a, ct, ctn, "charset", &cs, &csn);
    if (rc < 0)
        return rc;
    c->utf8 = rc ? charset_is_utf8(cs, csn) : true;
    size_t dl = bdn + 4;
    char *delim = m8_arena_alloc(c->a, dl);
    if (!delim)
        return M8_ENOMEM;
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, bd, bdn);

    size_t i = 0;
    if (n && (b[0] == '\r' || b[0] == '\n')) {
        const char *dash = memchr(b, '-', n);
        if (!dash)
            return 0;
        i = (size_t)(dash - b);
    }
    for (size_t k = 2; k < dl; k++, i++) {
        if (i >= n)
            return 0;
        if (b[i] != delim[k])
            return parse_error(c);
    }
    if (i + 1 >= n) {
        if (i < n && b[i] != '-' && b[i] != '\r')
            return parse_error(c);
        return 0;
    }
    if (b[i] == '-')
        return b[i + 1] == '-' ? 0 : parse_error(c);
    if (b[i] != '\r' || b[i + 1] != '\n')
        return parse_error(c);
    i += 2;
    do
        rc = part(c, b, n, &i, delim, dl);
    while (!rc);
    return rc == STOP ? 0 : rc;
}

/* ------------------------------------------------------------ validation */

/* Decodes the value kept for field f into the arena. */
static int decode_slot(fctx *c, int f, char **out, size_t *outn)
{
    const char *p = c->slot[f].p;
    size_t n = c->slot[f].n, o = 0;
    char *d = m8_arena_alloc(c->a, 3 * n + 1);
    if (!d)
        return M8_ENOMEM;
    if (!c->multipart) {
        char *tmp = m8_arena_alloc(c->a, n + 1);
        if (!tmp)
            return M8_ENOMEM;
        o = url_decode(d, tmp, p, n);
        sodium_memzero(tmp, n + 1);
    } else if (c->utf8 && utf8_valid(p, n)) {
        memcpy(d, p, n);
        o = n;
    } else { /* Starlette: a value that is not valid in the charset is latin-1 */
        for (size_t i = 0; i < n; i++)
            put_latin1(d, &o, (unsigned char)p[i]);
    }
    d[o] = '\0';
    *out = d;
    *outn = o;
    return 0;
}

/* One pydantic error of FastAPI's list; input is NULL for null. */
static int put_error(m8_buf *e, bool *first, const char *type, int f, const char *msg,
                     const char *input, size_t input_len, const char *ctx)
{
    int rc = m8_buf_puts(e, *first ? "{\"type\":\"" : ",{\"type\":\"");
    *first = false;
    if (!rc)
        rc = m8_buf_printf(e, "%s\",\"loc\":[\"body\",\"%s\"],\"msg\":", type, field_names[f]);
    if (!rc)
        rc = m8_buf_json_str(e, msg, strlen(msg));
    if (!rc)
        rc = m8_buf_puts(e, ",\"input\":");
    if (!rc)
        rc = input ? m8_buf_json_str(e, input, input_len) : m8_buf_puts(e, "null");
    if (!rc && ctx)
        rc = m8_buf_printf(e, ",\"ctx\":%s", ctx);
    if (!rc)
        rc = m8_buf_putc(e, '}');
    return rc;
}

/* Decodes every value kept into fv (the shared first half of both
 * forms). */
static int decode_all(fctx *c, m8_form_values *fv)
{
    for (int f = 0; f < F_COUNT; f++) {
        fv->kind[f] = (unsigned char)c->slot[f].kind;
        if (c->slot[f].kind == SLOT_TEXT) {
            int rc = decode_slot(c, f, &fv->v[f], &fv->len[f]);
            if (rc) {
                for (int g = 0; g < f; g++) {
                    if (fv->v[g])
                        sodium_memzero(fv->v[g], fv->len[g]);
                }
                memset(fv, 0, sizeof *fv);
                return rc;
            }
            if (!fv->len[f])
                fv->v[f] = NULL; /* FastAPI: an empty form value is a missing one */
        }
    }
    return 0;
}

static int finish(const m8_form_values *fv, m8_arena *a, m8_buf *err, m8_login_form *out)
{
    char *const *v = fv->v;
    const size_t *len = fv->len;
    out->grant_type = v[F_GRANT], out->grant_type_len = len[F_GRANT];
    out->username = v[F_USER], out->username_len = len[F_USER];
    out->password = v[F_PASS], out->password_len = len[F_PASS];
    out->scope = v[F_SCOPE] ? v[F_SCOPE] : m8_arena_strdup(a, ""), out->scope_len = len[F_SCOPE];
    out->client_id = v[F_CID], out->client_id_len = len[F_CID];
    out->client_secret = v[F_CSECRET], out->client_secret_len = len[F_CSECRET];
    if (!out->scope) {
        m8_login_form_wipe(out);
        return M8_ENOMEM;
    }

    /* errors in the order of OAuth2PasswordRequestForm's parameters */
    m8_buf *e = err;
    size_t mark = e->len;
    bool first = true;
    int rc = m8_buf_puts(e, "{\"detail\":[");
    for (int f = 0; f < F_COUNT && !rc; f++) {
        bool required = f == F_USER || f == F_PASS;
        size_t max = f == F_USER ? M8_LOGIN_MAX_USERNAME : M8_LOGIN_MAX_PASSWORD;
        if (fv->kind[f] == SLOT_FILE) {
            rc = put_error(e, &first, "string_type", f, "Input should be a valid string", NULL, 0,
                           NULL);
        } else if (required && !v[f]) {
            rc = put_error(e, &first, "missing", f, "Field required", NULL, 0, NULL);
        } else if (required && len[f] > max) {
            char msg[64], ctx[40];
            snprintf(msg, sizeof msg, "String should have at most %zu characters", max);
            snprintf(ctx, sizeof ctx, "{\"max_length\":%zu}", max);
            rc = put_error(e, &first, "string_too_long", f, msg, NULL, 0, ctx);
        } else if (f == F_GRANT && v[f] && (len[f] != 8 || memcmp(v[f], "password", 8) != 0)) {
            rc = put_error(e, &first, "string_pattern_mismatch", f,
                           "String should match pattern '^password$'", v[f], len[f],
                           "{\"pattern\":\"^password$\"}");
        }
    }
    if (!rc && first)
        e->len = mark; /* no error: drop the opening */
    else if (!rc)
        rc = m8_buf_puts(e, "]}");
    if (rc || !first) {
        m8_login_form_wipe(out);
        return rc ? rc : 422;
    }
    if (e->data)
        e->data[e->len] = '\0';
    if (memchr(out->username, '\0', out->username_len) ||
        memchr(out->password, '\0', out->password_len)) {
        out->bad_chars = true;
        return detail(e, 422, "Invalid characters in credentials");
    }
    return 0;
}

/* ------------------------------------------------------------ entry */

int m8__form_read(m8_arena *a, const char *content_type, const char *body, size_t body_len,
                  size_t max_body, m8_form_values *out, m8_buf *err)
{
    memset(out, 0, sizeof *out);
    if (!max_body)
        max_body = M8_LOGIN_FORM_DEFAULT_MAX_BODY;
    if (max_body > M8_LOGIN_FORM_MAX_BODY_CAP)
        max_body = M8_LOGIN_FORM_MAX_BODY_CAP;
    if (body_len > max_body)
        return detail(err, 413, "Request Entity Too Large");
    if (!body)
        body_len = 0;
    fctx c;
    memset(&c, 0, sizeof c);
    c.a = a;
    c.err = err;
    const char *ct = content_type ? content_type : "", *mt;
    size_t ctn = strlen(ct), mtn;
    header_value(ct, ctn, &mt, &mtn);
    int rc = 0;
    if (m8_memcaseeq(mt, mtn, "application/x-www-form-urlencoded")) {
        rc = parse_urlencoded(&c, body, body_len);
    } else if (m8_memcaseeq(mt, mtn, "multipart/form-data")) {
        c.multipart = true;
        rc = parse_multipart(&c, ct, ctn, body, body_len);
    } /* any other type, JSON included, is an empty form (Starlette) */
    return rc ? rc : decode_all(&c, out);
}

int m8_login_form_parse(m8_arena *a, const char *content_type, const char *body, size_t body_len,
                        size_t max_body, m8_login_form *out, m8_buf *err)
{
    memset(out, 0, sizeof *out);
    m8_form_values fv;
    int rc = m8__form_read(a, content_type, body, body_len, max_body, &fv, err);
    return rc ? rc : finish(&fv, a, err, out);
}

void m8_login_form_wipe(m8_login_form *f)
{
    if (!f)
        return;
    char *v[] = {f->username, f->password, f->grant_type, f->scope, f->client_id, f->client_secret};
    size_t n[] = {f->username_len, f->password_len,  f->grant_type_len,
                  f->scope_len,    f->client_id_len, f->client_secret_len};
    for (size_t i = 0; i < M8_ARRAY_LEN(v); i++) {
        if (v[i])
            sodium_memzero(v[i], n[i]);
    }
    memset(f, 0, sizeof *f);
}
