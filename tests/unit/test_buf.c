/* test_buf - bounded buffers, arenas and string helpers (common.h). */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "tap.h"

static void test_buf_limits(void)
{
    m8_buf b;
    m8_buf_init(&b, 8);
    is_int(m8_buf_append(&b, "12345678", 8), 0, "buf: appending exactly max bytes succeeds");
    is_int(m8_buf_append(&b, "9", 1), M8_ETOOBIG, "buf: one byte past max fails with M8_ETOOBIG");
    is_str(b.data, "12345678", "buf: a failed append leaves the content unchanged");
    m8_buf_reset(&b);
    is_int(m8_buf_printf(&b, "%d-%s", 42, "x"), 0, "buf: printf within max");
    is_str(b.data, "42-x", "buf: printf formats");
    is_int(m8_buf_printf(&b, "%s", "abcdef"), M8_ETOOBIG, "buf: printf past max fails");
    m8_buf_free(&b);
}

static void test_json_str(void)
{
    m8_buf b;
    m8_buf_init(&b, 1024);
    m8_buf_json_str(&b, "a\"b\\c\n\x01", 7);
    is_str(b.data, "\"a\\\"b\\\\c\\n\\u0001\"",
           "json_str: escapes quote, backslash, newline, control");
    m8_buf_reset(&b);
    m8_buf_json_str(&b, "caf\xc3\xa9", 5);
    is_str(b.data, "\"caf\xc3\xa9\"", "json_str: valid UTF-8 passes through");
    m8_buf_reset(&b);
    m8_buf_json_str(&b,
                    "a\xff"
                    "b",
                    3);
    is_str(b.data,
           "\"a\xef\xbf\xbd"
           "b\"",
           "json_str: an invalid byte becomes U+FFFD");
    m8_buf_reset(&b);
    m8_buf_json_str(&b, "\xed\xa0\x80", 3);
    is_str(b.data, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
           "json_str: a UTF-16 surrogate is invalid");
    m8_buf_free(&b);
}

static void test_arena(void)
{
    m8_arena a;
    m8_arena_init(&a, 100000);
    char *s = m8_arena_strdup(&a, "hello");
    is_str(s, "hello", "arena: strdup copies");
    ok(((uintptr_t)m8_arena_alloc(&a, 3) & 15) == 0, "arena: allocations are 16-byte aligned");
    void *big = m8_arena_alloc(&a, 50000);
    ok(big != NULL, "arena: a block larger than a chunk is allocated");
    ok(m8_arena_alloc(&a, 60000) == NULL, "arena: allocation past the arena maximum fails");
    m8_arena_reset(&a);
    ok(m8_arena_alloc(&a, 60000) != NULL, "arena: reset gives the budget back");
    m8_arena_free(&a);
}

static void test_util(void)
{
    ok(m8_strcaseeq("Content-Type", "content-type"), "strcaseeq: ASCII case-insensitive");
    ok(!m8_strcaseeq("abc", "abcd"), "strcaseeq: different lengths differ");
    ok(m8_memcaseeq("BeArEr x", 6, "bearer"), "memcaseeq: prefix of given length");
    const char *p = "  x y \t";
    size_t n = m8_trim(&p, strlen(p));
    ok(n == 3 && strncmp(p, "x y", 3) == 0, "trim: both ends");
    ok(m8_secret_eq("s3cret", "s3cret"), "secret_eq: equal secrets match");
    ok(!m8_secret_eq("s3cret", "s3creT"), "secret_eq: different secrets do not match");
    ok(!m8_secret_eq("", ""), "secret_eq: empty never matches");
    ok(!m8_secret_eq(NULL, "x"), "secret_eq: NULL never matches");
    ok(!m8_secret_eq("s3cre", "s3cret"), "secret_eq: a prefix of the secret does not match");
    ok(!m8_secret_eq("s3crets", "s3cret"), "secret_eq: the secret plus a byte does not match");
    ok(m8_secret_eq_n("s3cret-tail", 6, "s3cret"), "secret_eq_n: the first la bytes are compared");
    ok(!m8_secret_eq_n("s3cret", 5, "s3cret"), "secret_eq_n: a shorter span does not match");
    long long v;
    ok(m8_parse_ll("42", 0, 100, &v) == 0 && v == 42, "parse_ll: in range");
    ok(m8_parse_ll("101", 0, 100, &v) != 0, "parse_ll: one past max refused");
    ok(m8_parse_ll("4x", 0, 100, &v) != 0, "parse_ll: trailing garbage refused");
    double d = 0;
    ok(m8_parse_double("0.25", 0, 1, &d) == 0 && d == 0.25, "parse_double: a fraction in range");
    ok(m8_parse_double("1", 0, 1, &d) == 0 && d == 1, "parse_double: exactly max accepted");
    ok(m8_parse_double("1.0001", 0, 1, &d) != 0, "parse_double: just past max refused");
    ok(m8_parse_double("nan", 0, 1, &d) != 0, "parse_double: NaN refused");
    ok(m8_parse_double("", 0, 1, &d) != 0 && m8_parse_double("x", 0, 1, &d) != 0 &&
           m8_parse_double("0.5s", 0, 1, &d) != 0,
       "parse_double: empty, non-numeric and trailing garbage refused");
    ok(m8_parse_ll("", 0, 100, &v) != 0, "parse_ll: empty refused");
    char *data;
    size_t len;
    is_int(m8_read_file("/nonexistent/x", 10, true, &data, &len), M8_ENOTFOUND,
           "read_file: missing file");
    is_int(m8_read_file("/", 10, false, &data, &len), M8_ENOTFOUND,
           "read_file: a directory is not a file");
    is_int(m8_read_file("/dev/null", 10, true, &data, &len), M8_ENOTFOUND,
           "read_file: a device is refused when regular_only");
    ok(m8_read_file("/dev/null", 10, false, &data, &len) == 0 && len == 0 && data[0] == '\0',
       "read_file: /dev/null reads as empty otherwise");
    free(data);
    is_str(m8_strerror(M8_ETOOBIG), "input exceeds its size limit", "strerror: describes codes");
}

int main(void)
{
    test_buf_limits();
    test_json_str();
    test_arena();
    test_util();
    return done_testing();
}
