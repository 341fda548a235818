/* text.c - the pure parts of the database layer (db.h): results and
 * their typed getters, error classification, '?' placeholders, timestamps.
 * No I/O, no client library: the backends and db.c build on these. */
#include "db/db.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ results */

m8_db_result *m8_db_result_new(void)
{
    m8_db_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    /* Values, their NULs and alignment (up to 16 bytes each), the names. */
    m8_arena_init(&r->arena, M8_DB_MAX_RESULT_BYTES + 16u * M8_DB_MAX_RESULT_CELLS + (1u << 20));
    r->affected = -1;
    return r;
}

void m8_db_result_free(m8_db_result *r)
{
    if (!r)
        return;
    m8_arena_free(&r->arena);
    free(r->cells);
    free(r);
}

int m8_db_result_cols(m8_db_result *r, size_t ncols)
{
    if (r->ncols || r->nrows)
        return M8_EINVAL;
    if (ncols > 4096)
        return M8_ETOOBIG;
    if (ncols == 0)
        return 0;
    r->names = m8_arena_alloc(&r->arena, ncols * sizeof *r->names);
    if (!r->names)
        return M8_ETOOBIG;
    memset(r->names, 0, ncols * sizeof *r->names);
    r->ncols = ncols;
    return 0;
}

int m8_db_result_name(m8_db_result *r, size_t col, const char *name, size_t n)
{
    if (col >= r->ncols)
        return M8_EINVAL;
    if (n > 256)
        n = 256; /* longer than any server allows */
    r->names[col] = m8_arena_strndup(&r->arena, name ? name : "", name ? n : 0);
    return r->names[col] ? 0 : M8_ETOOBIG;
}

int m8_db_result_add_row(m8_db_result *r)
{
    if (r->ncols == 0)
        return M8_EINVAL;
    size_t max_rows = M8_DB_MAX_RESULT_CELLS / r->ncols;
    if (r->nrows >= max_rows)
        return M8_ETOOBIG;
    if (r->nrows == r->cap_rows) {
        size_t cap = r->cap_rows ? r->cap_rows * 2 : 16;
        if (cap > max_rows)
            cap = max_rows;
        m8_db_cell *c = realloc(r->cells, cap * r->ncols * sizeof *r->cells);
        if (!c)
            return M8_ENOMEM;
        r->cells = c;
        r->cap_rows = cap;
    }
    memset(&r->cells[r->nrows * r->ncols], 0, r->ncols * sizeof *r->cells);
    r->nrows++;
    return 0;
}

int m8_db_result_set(m8_db_result *r, size_t col, const char *p, size_t n)
{
    if (col >= r->ncols || r->nrows == 0)
        return M8_EINVAL;
    m8_db_cell *c = &r->cells[(r->nrows - 1) * r->ncols + col];
    if (!p) {
        c->p = NULL;
        c->n = 0;
        return 0;
    }
    if (n > M8_DB_MAX_RESULT_BYTES - r->value_bytes)
        return M8_ETOOBIG;
    char *v = m8_arena_strndup(&r->arena, p, n);
    if (!v)
        return M8_ETOOBIG;
    c->p = v;
    c->n = n;
    r->value_bytes += n;
    return 0;
}

size_t m8_db_nrows(const m8_db_result *r)
{
    return r ? r->nrows : 0;
}

size_t m8_db_ncols(const m8_db_result *r)
{
    return r ? r->ncols : 0;
}

const char *m8_db_colname(const m8_db_result *r, size_t col)
{
    return r && col < r->ncols ? r->names[col] : NULL;
}

int64_t m8_db_affected(const m8_db_result *r)
{
    return r ? r->affected : -1;
}

int64_t m8_db_insert_id(const m8_db_result *r)
{
    return r ? r->insert_id : 0;
}

static const m8_db_cell *cell(const m8_db_result *r, size_t row, size_t col)
{
    if (!r || row >= r->nrows || col >= r->ncols)
        return NULL;
    return &r->cells[row * r->ncols + col];
}

int m8_db_is_null(const m8_db_result *r, size_t row, size_t col)
{
    const m8_db_cell *c = cell(r, row, col);
    return !c || !c->p;
}

const char *m8_db_get_text(const m8_db_result *r, size_t row, size_t col, size_t *len)
{
    const m8_db_cell *c = cell(r, row, col);
    if (len)
        *len = c && c->p ? c->n : 0;
    return c ? c->p : NULL;
}

/* The cell or the getter's error code. */
static int value_of(const m8_db_result *r, size_t row, size_t col, const m8_db_cell **out)
{
    const m8_db_cell *c = cell(r, row, col);
    if (!c)
        return M8_EINVAL;
    if (!c->p)
        return M8_ENOTFOUND;
    *out = c;
    return 0;
}

int m8_db_get_int(const m8_db_result *r, size_t row, size_t col, int64_t *out)
{
    const m8_db_cell *c;
    int rc = value_of(r, row, col, &c);
    if (rc)
        return rc;
    long long v;
    if (c->n == 0 || c->n > 20 || m8_parse_ll(c->p, INT64_MIN, INT64_MAX, &v) != 0)
        return M8_EPARSE;
    *out = v;
    return 0;
}

int m8_db_get_double(const m8_db_result *r, size_t row, size_t col, double *out)
{
    const m8_db_cell *c;
    int rc = value_of(r, row, col, &c);
    if (rc)
        return rc;
    const char *p = c->p;
    /* PostgreSQL spells the specials out; strtod knows them by these names. */
    if (strcmp(p, "Infinity") == 0 || strcmp(p, "-Infinity") == 0 || strcmp(p, "NaN") == 0) {
        *out = p[0] == 'N' ? NAN : p[0] == '-' ? -INFINITY : INFINITY;
        return 0;
    }
    if (c->n == 0 || !(p[0] == '-' || p[0] == '+' || p[0] == '.' || (p[0] >= '0' && p[0] <= '9')))
        return M8_EPARSE;
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end != p + c->n || (errno == ERANGE && isinf(v)))
        return M8_EPARSE;
    *out = v;
    return 0;
}

int m8_db_get_bool(const m8_db_result *r, size_t row, size_t col, int *out)
{
    const m8_db_cell *c;
    int rc = value_of(r, row, col, &c);
    if (rc)
        return rc;
    static const char *const yes[] = {"t", "true", "1"}, *const no[] = {"f", "false", "0"};
    for (size_t i = 0; i < M8_ARRAY_LEN(yes); i++) {
        if (strcmp(c->p, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(c->p, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return M8_EPARSE;
}

int m8_db_get_time(const m8_db_result *r, size_t row, size_t col, int64_t *us)
{
    const m8_db_cell *c;
    int rc = value_of(r, row, col, &c);
    if (rc)
        return rc;
    return m8_db_parse_time(c->p, c->n, us);
}

/* ------------------------------------------------------------ errors */

void m8_db_copy_field(char *dst, size_t cap, const char *src, size_t n)
{
    if (!cap)
        return;
    if (!src)
        src = "";
    if (n == M8_DB_NTS)
        n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void m8_db_error_clear(m8_db_error *e)
{
    memset(e, 0, sizeof *e);
}

void m8_db_error_set(m8_db_error *e, m8_db_errkind kind, const char *code, const char *fmt, ...)
{
    e->kind = kind;
    m8_db_copy_field(e->code, sizeof e->code, code, M8_DB_NTS);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void m8_db_last_column(char *dst, size_t cap, const char *cols, size_t n)
{
    /* The last comma outside quotes starts the last column. */
    size_t start = 0;
    char q = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = cols[i];
        if (q) {
            if (ch == q)
                q = 0;
        } else if (ch == '`' || ch == '"') {
            q = ch;
        } else if (ch == ',') {
            start = i + 1;
        }
    }
    const char *p = cols + start;
    size_t len = n - start;
    while (len && (*p == ' ' || *p == '`' || *p == '"')) {
        p++;
        len--;
    }
    while (len && (p[len - 1] == ' ' || p[len - 1] == '`' || p[len - 1] == '"'))
        len--;
    m8_db_copy_field(dst, cap, p, len);
}

/* The text between the first `open` after from and the next `close`. */
static bool between(const char *s, const char *open, const char *close, const char **p, size_t *n)
{
    const char *a = strstr(s, open);
    if (!a)
        return false;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b)
        return false;
    *p = a;
    *n = (size_t)(b - a);
    return true;
}

void m8_db_classify_mysql(m8_db_error *e, unsigned errnum, const char *sqlstate, const char *msg)
{
    if (!msg)
        msg = "";
    char code[16];
    snprintf(code, sizeof code, "%s", sqlstate && *sqlstate ? sqlstate : "");
    m8_db_errkind kind = M8_DB_ERR_OTHER;
    const char *p;
    size_t n;
    e->table[0] = e->field[0] = e->constraint[0] = '\0';
    switch (errnum) {
    case 1062: /* ER_DUP_ENTRY: Duplicate entry 'v' for key '[table.]key' */
    case 1586: /* ER_DUP_ENTRY_WITH_KEY_NAME */
        kind = M8_DB_ERR_UNIQUE;
        /* The value may hold anything: the key is the last quoted part. */
        p = strstr(msg, "' for key '");
        for (const char *q = p; q; q = strstr(q + 1, "' for key '"))
            p = q;
        if (p) {
            p += strlen("' for key '");
            const char *end = strrchr(p, '\'');
            n = end ? (size_t)(end - p) : strlen(p);
            const char *dot = memchr(p, '.', n);
            if (dot) { /* MySQL 8: 'table.key' */
                m8_db_copy_field(e->table, sizeof e->table, p, (size_t)(dot - p));
                n -= (size_t)(dot + 1 - p);
                p = dot + 1;
            }
            m8_db_copy_field(e->constraint, sizeof e->constraint, p, n);
            m8_db_copy_field(e->field, sizeof e->field, p, n);
        }
        break;
    case 1451: /* ER_ROW_IS_REFERENCED_2 */
    case 1452: /* ER_NO_REFERENCED_ROW_2 */
    case 1216: /* ER_NO_REFERENCED_ROW */
    case 1217: /* ER_ROW_IS_REFERENCED */
        kind = M8_DB_ERR_FOREIGN_KEY;
        if (between(msg, "FOREIGN KEY (", ")", &p, &n))
            m8_db_last_column(e->field, sizeof e->field, p, n);
        if (between(msg, "REFERENCES `", "`", &p, &n))
            m8_db_copy_field(e->table, sizeof e->table, p, n);
        if (between(msg, "CONSTRAINT `", "`", &p, &n))
            m8_db_copy_field(e->constraint, sizeof e->constraint, p, n);
        break;
    case 1048: /* ER_BAD_NULL_ERROR: Column 'c' cannot be null */
        kind = M8_DB_ERR_NOT_NULL;
        if (between(msg, "Column '", "'", &p, &n))
            m8_db_copy_field(e->field, sizeof e->field, p, n);
        break;
    case 1364: /* ER_NO_DEFAULT_FOR_FIELD: Field 'c' doesn't have a default value */
        kind = M8_DB_ERR_NOT_NULL;
        if (between(msg, "Field '", "'", &p, &n))
            m8_db_copy_field(e->field, sizeof e->field, p, n);
        break;
    case 1040: /* ER_CON_COUNT_ERROR: too many connections */
    case 1053: /* ER_SERVER_SHUTDOWN */
    case 1927: /* ER_CONNECTION_KILLED */
    case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT */ kind = M8_DB_ERR_UNAVAILABLE; break;
    default:
        if (errnum >= 2000 && errnum < 3000) /* client side: CR_SERVER_LOST, ... */
            kind = M8_DB_ERR_UNAVAILABLE;
        break;
    }
    m8_db_error_set(e, kind, code, "%s (%u)", msg, errnum);
}

/* ------------------------------------------------------------ placeholders */

static bool ident_char(char c)
{
    return c == '_' || c == '$' || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') ||
           (unsigned char)c >= 0x80;
}

/* The end of the quoted part starting at sql[i] (the quote char q):
 * doubled quotes, and backslash escapes when bs, stay inside. */
static size_t skip_quoted(const char *sql, size_t n, size_t i, char q, bool bs)
{
    for (i++; i < n; i++) {
        if (bs && sql[i] == '\\' && i + 1 < n) {
            i++;
        } else if (sql[i] == q) {
            if (i + 1 < n && sql[i + 1] == q)
                i++;
            else
                return i + 1;
        }
    }
    return n;
}

/* PostgreSQL's $tag$ ... $tag$ at sql[i]: its end, or i + 1 when it is
 * no dollar quote (tag: letters, digits, '_', not starting with a digit). */
static size_t skip_dollar(const char *sql, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && sql[j] != '$' && ident_char(sql[j]) &&
           !(j == i + 1 && sql[j] >= '0' && sql[j] <= '9'))
        j++;
    if (j >= n || sql[j] != '$')
        return i + 1;
    size_t tl = j + 1 - i;
    for (const char *e = sql + j + 1; (e = strchr(e, '$')) != NULL; e++) {
        if (strncmp(e, sql + i, tl) == 0)
            return (size_t)(e - sql) + tl;
    }
    return n;
}

long m8_db_placeholders(const char *sql, m8_db_dialect dialect, m8_buf *out)
{
    bool my = dialect == M8_DB_DIALECT_MYSQL;
    long count = 0;
    size_t n = strlen(sql);
    if (n > M8_DB_MAX_SQL_BYTES)
        return M8_ETOOBIG;
    size_t i = 0, from = 0; /* sql[from..i) is pending copy */
    while (i < n) {
        char c = sql[i];
        if (c == '\'') {
            /* MariaDB: backslash escapes; PostgreSQL: only in E'...' */
            bool e = i > 0 && (sql[i - 1] | 32) == 'e' && (i == 1 || !ident_char(sql[i - 2]));
            i = skip_quoted(sql, n, i, c, my || e);
        } else if (c == '"' || (my && c == '`')) {
            i = skip_quoted(sql, n, i, c, my && c == '"');
        } else if (c == '-' && i + 1 < n && sql[i + 1] == '-' &&
                   (!my || i + 2 >= n || (unsigned char)sql[i + 2] <= ' ')) {
            while (i < n && sql[i] != '\n')
                i++;
        } else if (my && c == '#') {
            while (i < n && sql[i] != '\n')
                i++;
        } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
            /* PostgreSQL nests block comments; MariaDB does not. */
            int depth = 0;
            do {
                if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
                    depth = my ? 0 : depth - 1;
                    i += 2;
                } else {
                    i++;
                }
            } while (i < n && depth > 0);
        } else if (!my && c == '$' && (i == 0 || !ident_char(sql[i - 1]))) {
            i = skip_dollar(sql, n, i);
        } else if (c == '?') {
            if (out && m8_buf_append(out, sql + from, i - from) != 0)
                return M8_ETOOBIG;
            if (++count > (long)M8_DB_MAX_PARAMS)
                return M8_ETOOBIG;
            if (out && m8_buf_printf(out, "$%ld", count) != 0)
                return M8_ETOOBIG;
            from = ++i;
        } else {
            i++;
        }
    }
    if (out && m8_buf_append(out, sql + from, n - from) != 0)
        return M8_ETOOBIG;
    return count;
}

/* ------------------------------------------------------------ time */

int64_t m8_db_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Seconds and microseconds of us, the microseconds always 0-999999. */
static void split_us(int64_t us, time_t *sec, long *frac)
{
    int64_t s = us / 1000000, f = us % 1000000;
    if (f < 0) {
        f += 1000000;
        s--;
    }
    *sec = (time_t)s;
    *frac = (long)f;
}

int m8_db_time_text(int64_t us, char *buf, size_t len)
{
    time_t sec;
    long frac;
    split_us(us, &sec, &frac);
    struct tm tm;
    if (!gmtime_r(&sec, &tm) || tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
        return M8_EINVAL;
    int n = snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%06ld", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return n < 0 || (size_t)n >= len ? M8_ETOOBIG : 0;
}

int m8_db_format_time(int64_t us, char *buf, size_t len)
{
    if (!buf)
        return M8_EINVAL;
    int rc = m8_db_time_text(us, buf, len);
    if (rc)
        return rc;
    if (strlen(buf) + 2 > len)
        return M8_ETOOBIG;
    buf[10] = 'T';
    size_t l = strlen(buf);
    buf[l] = 'Z';
    buf[l + 1] = '\0';
    return 0;
}

/* n decimal digits at *p into *v. */
static bool digits(const char **p, const char *end, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || **p < '0' || **p > '9')
            return false;
        x = x * 10 + (*(*p)++ - '0');
    }
    *v = x;
    return true;
}

int m8_db_parse_time(const char *s, size_t n, int64_t *us)
{
    const char *p = s, *end = s + n;
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (!digits(&p, end, 4, &y) || p >= end || *p++ != '-' || !digits(&p, end, 2, &mo) ||
        p >= end || *p++ != '-' || !digits(&p, end, 2, &d))
        return M8_EPARSE;
    long frac = 0;
    if (p < end && (*p == ' ' || *p == 'T')) {
        p++;
        if (!digits(&p, end, 2, &h) || p >= end || *p++ != ':' || !digits(&p, end, 2, &mi) ||
            p >= end || *p++ != ':' || !digits(&p, end, 2, &se))
            return M8_EPARSE;
        if (p < end && *p == '.') {
            p++;
            int nd = 0;
            while (p < end && *p >= '0' && *p <= '9') {
                if (nd < 6) {
                    frac = frac * 10 + (*p - '0');
                    nd++;
                }
                p++;
            }
            if (nd == 0)
                return M8_EPARSE;
            while (nd++ < 6)
                frac *= 10;
        }
    }
    long off = 0;
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (!digits(&p, end, 2, &oh))
            return M8_EPARSE;
        if (p < end && *p == ':')
            p++;
        if (p < end && !digits(&p, end, 2, &om))
            return M8_EPARSE;
        off = sign * (oh * 3600L + om * 60L);
    }
    if (p != end || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return M8_EPARSE;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) /* 31 February and the like normalised away */
        return M8_EPARSE;
    *us = ((int64_t)t - off) * 1000000 + frac;
    return 0;
}
