/* util.c - small string, time and file helpers (common.h). */
#include "core/common.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

int m8_strcaseeq(const char *a, const char *b)
{
    while (*a && *b) {
        if (lower(*a++) != lower(*b++))
            return 0;
    }
    return *a == *b;
}

int m8_memcaseeq(const char *p, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (!s[i] || lower(p[i]) != lower(s[i]))
            return 0;
    }
    return s[n] == '\0';
}

static inline bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t m8_trim(const char **p, size_t n)
{
    const char *s = *p;
    while (n && is_space(*s)) {
        s++;
        n--;
    }
    while (n && is_space(s[n - 1]))
        n--;
    *p = s;
    return n;
}

bool m8_secret_eq_n(const char *a, size_t la, const char *b)
{
    if (!a || !b || !la || !*b)
        return false;
    /* both sides hashed first: neither the contents nor the length leak */
    unsigned char ha[crypto_generichash_BYTES], hb[crypto_generichash_BYTES];
    crypto_generichash(ha, sizeof ha, (const unsigned char *)a, la, NULL, 0);
    crypto_generichash(hb, sizeof hb, (const unsigned char *)b, strlen(b), NULL, 0);
    return sodium_memcmp(ha, hb, sizeof ha) == 0;
}

bool m8_secret_eq(const char *a, const char *b)
{
    return a && m8_secret_eq_n(a, strlen(a), b);
}

double m8_now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double m8_now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void m8_strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

char *m8_strdup0(const char *s)
{
    return s ? strdup(s) : NULL;
}

int m8_parse_ll(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return M8_EPARSE;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return M8_EPARSE;
    *out = v;
    return 0;
}

int m8_parse_double(const char *s, double min, double max, double *out)
{
    if (!s || !*s)
        return M8_EPARSE;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= min && v <= max))
        return M8_EPARSE;
    *out = v;
    return 0;
}

int m8_read_file(const char *path, size_t max, bool regular_only, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? M8_ENOTFOUND : M8_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode) || (regular_only && !S_ISREG(st.st_mode))) {
        close(fd);
        return M8_ENOTFOUND;
    }
    m8_buf b;
    m8_buf_init(&b, max);
    char tmp[4096];
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = M8_EIO;
            break;
        }
        if (r == 0)
            break;
        if ((rc = m8_buf_append(&b, tmp, (size_t)r)) != 0)
            break;
    }
    sodium_memzero(tmp, sizeof tmp); /* the file may hold a secret */
    close(fd);
    if (rc) {
        if (b.data)
            sodium_memzero(b.data, b.cap);
        m8_buf_free(&b);
        return rc;
    }
    *len = b.len;
    *out = m8_buf_steal(&b);
    return *out ? 0 : M8_ENOMEM;
}

const char *m8_strerror(int err)
{
    switch (err) {
    case M8_OK: return "success";
    case M8_ENOMEM: return "out of memory";
    case M8_EINVAL: return "invalid argument";
    case M8_ETOOBIG: return "input exceeds its size limit";
    case M8_EPARSE: return "malformed input";
    case M8_EIO: return "input/output error";
    case M8_ECONFIG: return "invalid configuration";
    case M8_ENOTFOUND: return "not found";
    case M8_ESTATE: return "not allowed in the current state";
    case M8_EAGAIN: return "try again";
    case M8_EDEPTH: return "JSON nested too deeply";
    default: return "unknown error";
    }
}

const char *m8_version(void)
{
    return PACKAGE_VERSION;
}
