/* common.h - internal basics shared by every module: error codes, limits,
 * growable bounded buffers (buf.c), request arenas (arena.c), small string
 * helpers (util.c).  Never installed. */
#ifndef M8_COMMON_H
#define M8_COMMON_H

#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fcgim8.h"

#define M8_INTERNAL __attribute__((visibility("hidden")))
#define M8_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- limits: every ceiling of the library is named here (doc/design.md#limits) ---- */
#define M8_MAX_ENV_FILE_BYTES (1u << 20)     /* a .env file */
#define M8_MAX_ENV_LINE_BYTES 65536u         /* one .env line / value */
#define M8_MAX_SECRET_FILE_BYTES 65536u      /* a NAME_FILE secret file */
#define M8_MAX_PEM_BYTES 65536u              /* a PEM key file */
#define M8_MAX_PARAMS_BYTES 65536u           /* all FastCGI params of a request */
#define M8_MAX_PARAMS 512u                   /* FastCGI param count */
#define M8_MAX_PATH_BYTES 8192u              /* request path */
#define M8_MAX_QUERY_PARAMS 256u             /* query parameters */
#define M8_MAX_PATH_PARAMS 16u               /* {name} captures of a route */
#define M8_DEFAULT_MAX_BODY (1u << 20)       /* request body, m8_app_set_max_body */
#define M8_MAX_JSON_DEPTH 64                 /* JSON nesting of a request body */
#define M8_MAX_RESPONSE_BYTES (64u << 20)    /* one response body */
#define M8_MAX_RESPONSE_HEADERS 64u          /* response headers */
#define M8_MAX_REQUEST_ID 64u                /* accepted X-Request-ID length */
#define M8_MAX_TOKEN_BYTES 8192u             /* a compact JWS access token */
#define M8_MAX_JWT_PART_BYTES 4096u          /* decoded JWS header or payload */
#define M8_MAX_JWT_DEPTH 8                   /* JSON nesting of a JWS header/payload */
#define M8_MAX_JWKS_BYTES (1u << 20)         /* a JWKS document (doc/wire.md#jwks) */
#define M8_MAX_JWKS_KEYS 64u                 /* keys kept from one JWKS */
#define M8_MAX_KID_BYTES 256u                /* a kid */
#define M8_MAX_CGI_DRAIN_BYTES (64ull << 20) /* CGI body read and dropped before a 413 */

/* ---- buf.c: growable byte buffer with a hard maximum ---- */
typedef struct m8_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max; /* appends past max fail with M8_ETOOBIG */
} m8_buf;

M8_INTERNAL void m8_buf_init(m8_buf *b, size_t max);
M8_INTERNAL void m8_buf_free(m8_buf *b);
M8_INTERNAL void m8_buf_reset(m8_buf *b);
M8_INTERNAL int m8_buf_reserve(m8_buf *b, size_t extra);
M8_INTERNAL int m8_buf_append(m8_buf *b, const void *p, size_t n);
M8_INTERNAL int m8_buf_puts(m8_buf *b, const char *s);
M8_INTERNAL int m8_buf_putc(m8_buf *b, char c);
M8_INTERNAL int m8_buf_printf(m8_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
M8_INTERNAL int m8_buf_vprintf(m8_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Appends s[0..n) as a JSON string literal with quotes (escapes per RFC 8259;
 * invalid UTF-8 bytes become U+FFFD). */
M8_INTERNAL int m8_buf_json_str(m8_buf *b, const char *s, size_t n);
/* Appends v in decimal; appends x / 1000 with three decimals ("12.345",
 * x >= 0); appends s[0..n) (no printf on the request path). */
M8_INTERNAL int m8_buf_put_u64(m8_buf *b, uint64_t v);
M8_INTERNAL int m8_buf_put_milli(m8_buf *b, uint64_t x);
M8_INTERNAL int m8_buf_putn(m8_buf *b, const char *s, size_t n);
/* Takes the data out of b (caller frees) and resets b. */
M8_INTERNAL char *m8_buf_steal(m8_buf *b);

/* ---- arena.c: bump allocator freed in one place ---- */
typedef struct m8_arena_chunk m8_arena_chunk;
typedef struct m8_arena {
    m8_arena_chunk *head;
    size_t used_total;
    size_t max; /* 0 = unbounded */
} m8_arena;

M8_INTERNAL void m8_arena_init(m8_arena *a, size_t max);
M8_INTERNAL void *m8_arena_alloc(m8_arena *a, size_t n); /* 16-byte aligned, NULL on limit */
M8_INTERNAL char *m8_arena_strndup(m8_arena *a, const char *s, size_t n);
M8_INTERNAL char *m8_arena_strdup(m8_arena *a, const char *s);
/* Frees all but the first chunk, keeping it for reuse. */
M8_INTERNAL void m8_arena_reset(m8_arena *a);
M8_INTERNAL void m8_arena_free(m8_arena *a);

/* ---- util.c ---- */
/* ASCII case-insensitive compare of two NUL strings / of (p,n) with s. */
M8_INTERNAL int m8_strcaseeq(const char *a, const char *b);
M8_INTERNAL int m8_memcaseeq(const char *p, size_t n, const char *s);
/* Trims ASCII whitespace; returns the new length and moves *p. */
M8_INTERNAL size_t m8_trim(const char **p, size_t n);
/* Equality of two secrets that leaks neither their contents nor their
 * lengths (both hashed, then compared in constant time); NULL or empty
 * never matches.  _n: a is la bytes, not NUL-terminated. */
M8_INTERNAL bool m8_secret_eq(const char *a, const char *b);
M8_INTERNAL bool m8_secret_eq_n(const char *a, size_t la, const char *b);
/* Monotonic and wall clocks in seconds. */
M8_INTERNAL double m8_now_mono(void);
M8_INTERNAL double m8_now_wall(void);
/* Frees n strings of v, then v (NULL is fine). */
M8_INTERNAL void m8_strv_free(char **v, size_t n);
/* strdup that returns NULL for NULL. */
M8_INTERNAL char *m8_strdup0(const char *s);
/* Parses a whole decimal long long in [min,max]; 0 or M8_EPARSE. */
M8_INTERNAL int m8_parse_ll(const char *s, long long min, long long max, long long *out);
/* Parses a whole decimal number (fractions allowed) in [min,max]; 0 or
 * M8_EPARSE (NaN never passes). */
M8_INTERNAL int m8_parse_double(const char *s, double min, double max, double *out);
/* Reads a whole file of at most max bytes (NUL-terminated, caller frees;
 * the read buffers are wiped, as the file may hold a secret).  regular_only
 * refuses devices such as /dev/null; a directory is always refused.
 * M8_ENOTFOUND if missing or of the wrong kind, M8_ETOOBIG past max,
 * M8_EIO otherwise. */
M8_INTERNAL int m8_read_file(const char *path, size_t max, bool regular_only, char **out,
                             size_t *len);

#endif
