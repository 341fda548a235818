/* test_form.c - the login form (lib/issuer/form.c) and the rate-limit keys
 * (lib/issuer/form_keys.c) against doc/issuer.md#login-form: urlencoded and
 * multipart bodies read as Starlette and python-multipart read them, FastAPI's
 * 422 list byte for byte, the NUL refusal, the limits exactly at and one past
 * each bound, and the key normalisers. */
#include "core/json.h"
#include "issuer/form.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

#define UE "application/x-www-form-urlencoded"
#define MP "multipart/form-data; boundary=XyZ"
#define MISSING_BOTH                                                                               \
    "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\",\"username\"],\"msg\":\"Field "          \
    "required\",\"input\":null},{\"type\":\"missing\",\"loc\":[\"body\",\"password\"],\"msg\":"    \
    "\"Field required\",\"input\":null}]}"
#define MISSING_PASS                                                                               \
    "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\",\"password\"],\"msg\":\"Field "          \
    "required\",\"input\":null}]}"
#define PARSE_ERR "{\"detail\":\"There was an error parsing the body\"}"

static m8_arena arena;
static m8_buf err;
static m8_login_form form;

/* Parses body[0..n) with content type ct; the answer body is in err.data. */
static int parse_n(const char *ct, const char *body, size_t n, size_t max_body)
{
    m8_login_form_wipe(&form);
    m8_arena_free(&arena);
    m8_arena_init(&arena, 0);
    m8_buf_reset(&err);
    int rc = m8_login_form_parse(&arena, ct, body, n, max_body, &form, &err);
    if (rc > 0) {
        size_t at = 0;
        const char *why = NULL;
        json_object *j = m8_json_parse(err.data, err.len, 16, &at, &why);
        if (!j)
            printf("# not JSON: %s\n", err.data ? err.data : "(none)");
        json_object_put(j);
    }
    return rc;
}

static int parse(const char *ct, const char *body)
{
    return parse_n(ct, body, strlen(body), 0);
}

static const char *answer(void)
{
    return err.data ? err.data : "";
}

static bool val_is(const char *v, size_t n, const char *want, size_t wn)
{
    return v && n == wn && memcmp(v, want, wn) == 0 && v[n] == '\0';
}
#define VAL(field, want) val_is(form.field, form.field##_len, want, sizeof(want) - 1)

/* A multipart body with the boundary XyZ: each part is "name\0value". */
static char *mp_body(size_t *n, const char *const *parts, size_t nparts, const char *tail)
{
    m8_buf b;
    m8_buf_init(&b, 1u << 22);
    for (size_t i = 0; i < nparts; i++) {
        m8_buf_printf(&b, "--XyZ\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n", parts[i]);
        m8_buf_puts(&b, parts[i] + strlen(parts[i]) + 1);
        m8_buf_puts(&b, "\r\n");
    }
    m8_buf_puts(&b, tail);
    *n = b.len;
    return m8_buf_steal(&b);
}

static void test_urlencoded(void)
{
    is_int(parse(UE, "username=alice%40example.com&password=secret"), 0, "urlencoded: basic login");
    ok(VAL(username, "alice@example.com") && VAL(password, "secret"), "urlencoded: values decoded");
    ok(form.grant_type == NULL && form.client_id == NULL && form.client_secret == NULL,
       "urlencoded: absent optional fields are NULL");
    ok(VAL(scope, ""), "urlencoded: scope defaults to \"\"");
    is_int(parse(UE,
                 "grant_type=password&username=a&password=b&scope=x+y&client_id=c&client_secret=s"),
           0, "urlencoded: every field of OAuth2PasswordRequestForm");
    ok(VAL(grant_type, "password") && VAL(scope, "x y") && VAL(client_id, "c") &&
           VAL(client_secret, "s"),
       "urlencoded: optional fields kept");
    is_int(parse(" Application/X-WWW-Form-Urlencoded ; charset=UTF-8", "username=a&password=b"), 0,
           "urlencoded: media type case-insensitive, charset parameter ignored");
    is_int(parse(UE, "username=a+b%2Bc&password=%C3%A9"), 0, "urlencoded: plus and escapes");
    ok(VAL(username, "a b+c") && VAL(password, "\xC3\xA9"),
       "urlencoded: '+' is a space, %%2B a plus");
    parse(UE, "username=%zz%4&password=100%");
    ok(VAL(username, "%zz%4") && VAL(password, "100%"),
       "urlencoded: malformed escapes kept as sent");
    parse(UE, "username=%ff%C3&password=x%E2%82");
    ok(VAL(username, "\xEF\xBF\xBD\xEF\xBF\xBD") && VAL(password, "x\xEF\xBF\xBD"),
       "urlencoded: invalid UTF-8 from escapes becomes U+FFFD");
    parse(UE, "username=\xC3\xA9&password=%C3\xA9");
    ok(VAL(username, "\xC3\x83\xC2\xA9") && VAL(password, "\xEF\xBF\xBD\xC2\xA9"),
       "urlencoded: raw bytes >= 0x80 read as latin-1 (Starlette)");
    parse(UE, "user%6Eame=a&pass%77ord=b");
    ok(VAL(username, "a") && VAL(password, "b"), "urlencoded: names are percent-decoded");
    parse(UE, "&&username=a&&password=b&");
    ok(VAL(username, "a") && VAL(password, "b"), "urlencoded: blank pairs skipped");
    parse(UE, "username=first&password=p&username=last");
    ok(VAL(username, "last"), "urlencoded: a repeated field: the last value wins");
    is_int(parse(UE, "username=a&password=p&username="), 422,
           "urlencoded: a repeated field whose last value is empty is missing");
    is_int(parse(UE, "username=a;password=b"), 422, "urlencoded: ';' is not a separator");
    ok(strcmp(answer(), MISSING_PASS) == 0 && VAL(username, "") == false,
       "urlencoded: ';' stays in the value, password missing");
    is_int(parse(UE, "username&password"), 422,
           "urlencoded: a name without '=' has the value \"\"");
    is_int(parse(UE, "username=&password="), 422, "urlencoded: empty values are missing");
    is_str(answer(), MISSING_BOTH, "urlencoded: FastAPI's missing list, byte for byte");
    is_int(parse(UE, ""), 422, "urlencoded: empty body is 422");
    is_str(answer(), MISSING_BOTH, "urlencoded: empty body lists both fields");
}

static void test_validation(void)
{
    is_int(parse("application/json", "{\"username\":\"a\",\"password\":\"b\"}"), 422,
           "JSON body on the form route is 422");
    is_str(answer(), MISSING_BOTH, "JSON body: both fields missing (Starlette reads no form)");
    is_int(parse(NULL, "username=a&password=b"), 422, "no Content-Type: 422 missing");
    is_int(parse("text/plain", "username=a&password=b"), 422, "text/plain: 422 (not 415)");
    is_str(answer(), MISSING_BOTH, "unsupported media type: the missing list");

    is_int(parse(UE, "grant_type=password&username=a&password=b"), 0,
           "grant_type=password accepted");
    is_int(parse(UE, "grant_type=&username=a&password=b"), 0, "empty grant_type is absent");
    ok(form.grant_type == NULL, "empty grant_type reads as NULL");
    is_int(parse(UE, "grant_type=Password&username=a&password=b"), 422,
           "grant_type is case-sensitive");
    is_str(answer(),
           "{\"detail\":[{\"type\":\"string_pattern_mismatch\",\"loc\":[\"body\",\"grant_type\"],"
           "\"msg\":\"String should match pattern '^password$'\",\"input\":\"Password\",\"ctx\":{"
           "\"pattern\":\"^password$\"}}]}",
           "grant_type mismatch: pydantic's string_pattern_mismatch, input echoed");
    is_int(parse(UE, "grant_type=password%0A&username=a&password=b"), 422,
           "grant_type with a trailing newline does not match ^password$");
    is_int(parse(UE, "grant_type=x%22%5C%01&password=pw"), 422, "grant_type with quote/control");
    is_str(answer(),
           "{\"detail\":[{\"type\":\"string_pattern_mismatch\",\"loc\":[\"body\",\"grant_type\"],"
           "\"msg\":\"String should match pattern '^password$'\",\"input\":\"x\\\"\\\\\\u0001\","
           "\"ctx\":{\"pattern\":\"^password$\"}},{\"type\":\"missing\",\"loc\":[\"body\","
           "\"username\"],\"msg\":\"Field required\",\"input\":null}]}",
           "errors in parameter order, echoed input escaped, password never echoed");

    is_int(parse(UE, "username=a&password=b%00c"), 422, "NUL in password: 422");
    is_str(answer(), "{\"detail\":\"Invalid characters in credentials\"}",
           "NUL in password: the string detail");
    ok(form.bad_chars && val_is(form.password, form.password_len, "b\0c", 3) && VAL(username, "a"),
       "NUL in password: fields still filled for the caller");
    is_int(parse_n(UE, "username=a\0b&password=c", 23, 0), 422, "raw NUL byte in username: 422");
    is_str(answer(), "{\"detail\":\"Invalid characters in credentials\"}", "raw NUL: same detail");
    is_int(parse(UE, "username=a&password=b&scope=%00&client_id=%00"), 0,
           "NUL in scope or client_id is accepted");
    is_int(parse(UE, "password=%00"), 422, "missing username wins over the NUL check");
    is_str(answer(),
           "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\",\"username\"],\"msg\":\"Field "
           "required\",\"input\":null}]}",
           "form validation runs before the NUL check (FastAPI dependency first)");
}

static void test_limits(void)
{
    char *b = malloc(70000);
    /* body size */
    memset(b, 'x', 16384);
    memcpy(b, "username=a&password=b&scope=", 28);
    is_int(parse_n(UE, b, 16384, 0), 0, "body of exactly 16384 bytes accepted");
    is_int(parse_n(UE, b, 16385, 0), 413, "body of 16385 bytes: 413");
    is_str(answer(), "{\"detail\":\"Request Entity Too Large\"}", "413 detail");
    is_int(parse_n(UE, b, 101, 100), 413, "max_body parameter honoured");
    is_int(parse_n(UE, b, 100, 100), 0, "max_body: at the limit accepted");
    char *big = calloc(1, (1u << 20) + 1);
    is_int(parse_n(UE, big, (1u << 20) + 1, 1u << 30), 413, "max_body clamped to 1 MiB");
    free(big);
    memset(b, 'x', 70000);
    memcpy(b, "username=a&password=", 20);
    is_int(parse_n(UE, b, 70000, 1u << 30), 422,
           "max_body above 16 KiB honoured; long password: 422");

    /* username and password lengths */
    m8_buf q;
    m8_buf_init(&q, 1u << 20);
    m8_buf_puts(&q, "password=p&username=");
    for (int i = 0; i < 320; i++)
        m8_buf_putc(&q, 'u');
    is_int(parse(UE, q.data), 0, "username of 320 bytes accepted");
    m8_buf_putc(&q, 'u');
    is_int(parse(UE, q.data), 422, "username of 321 bytes: 422");
    is_str(answer(),
           "{\"detail\":[{\"type\":\"string_too_long\",\"loc\":[\"body\",\"username\"],\"msg\":"
           "\"String should have at most 320 characters\",\"input\":null,\"ctx\":{\"max_length\":"
           "320}}]}",
           "username too long: string_too_long, value not echoed");
    m8_buf_reset(&q);
    m8_buf_puts(&q, "username=u&password=");
    for (int i = 0; i < 73; i++)
        m8_buf_putc(&q, 'p');
    is_int(parse(UE, q.data), 0, "73-byte password reaches the route (bcrypt's 72-byte rule)");
    for (int i = 73; i < 4096; i++)
        m8_buf_putc(&q, 'p');
    is_int(parse(UE, q.data), 0, "password of 4096 bytes accepted");
    m8_buf_putc(&q, 'p');
    is_int(parse(UE, q.data), 422, "password of 4097 bytes: 422");
    m8_buf_reset(&q);
    m8_buf_puts(&q, "username=u&password=");
    for (int i = 0; i < 10000; i++)
        m8_buf_putc(&q, 'Z');
    is_int(parse(UE, q.data), 422, "10000-byte password: 422");
    ok(strstr(answer(), "ZZZ") == NULL && strstr(answer(), "string_too_long"),
       "10000-byte password: string_too_long without the password");

    /* field count */
    m8_buf_reset(&q);
    m8_buf_puts(&q, "username=a&password=b");
    for (int i = 2; i < 64; i++)
        m8_buf_puts(&q, "&x=1");
    is_int(parse(UE, q.data), 0, "64 fields accepted");
    m8_buf_puts(&q, "&x=1");
    is_int(parse(UE, q.data), 400, "65 fields: 400");
    is_str(answer(), "{\"detail\":\"Too many fields. Maximum number of fields is 64.\"}",
           "too many fields: Starlette's text with our bound");
    m8_buf_free(&q);

    /* memory bounds */
    m8_arena small;
    m8_arena_init(&small, 64);
    m8_login_form f;
    m8_buf_reset(&err);
    int rc = m8_login_form_parse(&small, UE, b, 16000, 0, &f, &err);
    ok(rc < 0, "an exhausted arena is an error, not a crash (%d)", rc);
    m8_arena_free(&small);
    free(b);
}

static void test_multipart_basic(void)
{
    const char *parts[] = {"username\0alice", "password\0p\r\nw --XyZ", "scope\0a b"};
    size_t n;
    char *b = mp_body(&n, parts, 3, "--XyZ--\r\n");
    is_int(parse_n(MP, b, n, 0), 0, "multipart: basic login");
    ok(VAL(username, "alice") && VAL(password, "p\r\nw --XyZ") && VAL(scope, "a b"),
       "multipart: CRLF and a boundary without its CRLF stay in the value");
    is_int(parse_n("multipart/form-data; boundary=\"XyZ\"", b, n, 0), 0,
           "multipart: quoted boundary");
    is_int(parse_n("Multipart/Form-Data; charset=utf-8; BOUNDARY=XyZ", b, n, 0), 0,
           "multipart: case-insensitive type and parameter names");
    is_int(parse_n("multipart/form-data", b, n, 0), 400, "multipart without boundary: 400");
    is_str(answer(), "{\"detail\":\"Missing boundary in multipart.\"}", "missing boundary detail");
    free(b);

    is_int(parse(MP, ""), 422, "multipart: empty body reads as an empty form");
    is_int(parse(MP, "--XyZ--"), 422, "multipart: only the final boundary: empty form");
    is_int(parse(MP, "--XyZ\n"), 400, "multipart: LF-only line ends are refused");
    is_str(answer(), PARSE_ERR, "multipart parse error: FastAPI's 400 text");
    is_int(parse(MP, "preamble\r\n--XyZ--"), 400,
           "multipart: a preamble without leading CRLF: 400");
    is_int(parse(MP,
                 "\r\npreamble\r\n--XyZ\r\nContent-Disposition: form-data; name=username\r\n\r\n"
                 "a\r\n--XyZ\r\nContent-Disposition: form-data; name=password\r\n\r\nb\r\n--XyZ--"),
           0, "multipart: leading CRLF then a preamble is skipped");
    is_int(parse(MP, "\r\npre-amble\r\n--XyZ--"), 400,
           "multipart: a '-' in such a preamble is taken for the boundary (python-multipart)");
    is_int(parse(MP,
                 "--XyZ\r\nContent-Disposition: form-data; name=username\r\n\r\na\r\n--XyZ\r\n"
                 "Content-Disposition: form-data; name=password\r\n\r\nb\r\n--XyZ--\r\n"
                 "--XyZ\r\nContent-Disposition: form-data; name=password\r\n\r\nlate\r\n--XyZ--"),
           0, "multipart: epilogue ignored");
    ok(VAL(password, "b"), "multipart: a part in the epilogue does not count");
    is_int(parse(MP, "--XyZ\r\nContent-Disposition: form-data; name=username\r\n\r\na\r\n--XyZ\r\n"
                     "Content-Disposition: form-data; name=password\r\n\r\nb"),
           422, "multipart: missing final boundary drops the unterminated part");
    is_str(answer(), MISSING_PASS, "multipart: completed parts before it still count");
    is_int(parse(MP, "--XyZ\r\nContent-Disposition: form-data; name=username\r\n\r\na\r\n--XyZ\r\n"
                     "Content-Disposition: form-data; name=password\r\n\r\nb\r\n--XyZ"),
           422, "multipart: a last delimiter without -- or CRLF does not end the part");
    is_int(parse(MP, "--XyZ\r\nContent-Disposition: form-data; name=username\r\n\r\na\r\n--XyZx\r\n"
                     "--XyZ\r\nContent-Disposition: form-data; name=password\r\n\r\nb\r\n--XyZ--"),
           0, "multipart: '\\r\\n--XyZx' inside a value is data");
    ok(VAL(username, "a\r\n--XyZx"), "multipart: the near-boundary is kept in the value");
}

static void test_multipart_parts(void)
{
    is_int(parse(MP, "--XyZ\r\nContent-Type: text/plain\r\n\r\na\r\n--XyZ--"), 400,
           "multipart: a part without Content-Disposition: 400");
    is_str(answer(),
           "{\"detail\":\"The Content-Disposition header field \\\"name\\\" must be provided.\"}",
           "multipart: Starlette's missing-name text");
    is_int(parse(MP, "--XyZ\r\nContent-Disposition: form-data\r\n\r\na\r\n--XyZ--"), 400,
           "multipart: Content-Disposition without name: 400");
    is_int(parse(MP, "--XyZ\r\ncontent-disposition: form-data; NAME = \"user\\\\name\"; "
                     "filename*=utf-8''x\r\n\r\na\r\n--XyZ--"),
           422, "multipart: header and parameter names case-insensitive, filename* ignored");
    is_int(parse(MP,
                 "--XyZ\r\nContent-Disposition: form-data; name=\"user;name\"\r\n\r\na\r\n--XyZ\r\n"
                 "Content-Disposition: form-data; name=\"pass\\\"word\"\r\n\r\nb\r\n--XyZ--"),
           422, "multipart: quoted names keep ';' and unescape \\\"");
    is_int(parse(MP,
                 "--XyZ\r\nContent-Disposition: form-data; name=username; filename=u.txt\r\n\r\n"
                 "a\r\n--XyZ\r\nContent-Disposition: form-data; name=password\r\n\r\nb\r\n--XyZ\r\n"
                 "Content-Disposition: form-data; name=avatar; filename=x\r\n\r\nX\r\n--XyZ--"),
           422, "multipart: a file part for username: 422");
    is_str(answer(),
           "{\"detail\":[{\"type\":\"string_type\",\"loc\":[\"body\",\"username\"],\"msg\":\"Input "
           "should be a valid string\",\"input\":null}]}",
           "multipart: string_type for a file, other file parts ignored");
    is_int(parse(MP,
                 "--XyZ\r\nContent-Disposition: form-data; name=username\r\n\r\nfirst\r\n--XyZ\r\n"
                 "Content-Disposition: form-data; name=password\r\n\r\nb\r\n--XyZ\r\n"
                 "Content-Disposition: form-data; name=username\r\n\r\nlast\r\n--XyZ--"),
           0, "multipart: repeated field");
    ok(VAL(username, "last"), "multipart: the last value wins");
    static const char nul[] =
        "--XyZ\r\nContent-Disposition: form-data; name=username\r\n\r\na\r\n"
        "--XyZ\r\nContent-Disposition: form-data; name=password\r\n\r\nb\0c\r\n"
        "--XyZ--";
    is_int(parse_n(MP, nul, sizeof nul - 1, 0), 422, "multipart: NUL in a value is kept");
    is_str(answer(), "{\"detail\":\"Invalid characters in credentials\"}", "multipart: NUL detail");
    const char *body =
        "--XyZ\r\nContent-Disposition: form-data; name=username\r\n\r\n\xC3\xA9\r\n"
        "--XyZ\r\nContent-Disposition: form-data; name=password\r\n\r\n\xFF\r\n--XyZ--";
    parse(MP, body);
    ok(VAL(username, "\xC3\xA9") && VAL(password, "\xC3\xBF"),
       "multipart: UTF-8 kept, an invalid value read as latin-1");
    parse("multipart/form-data; boundary=XyZ; charset=latin-1", body);
    ok(VAL(username, "\xC3\x83\xC2\xA9"), "multipart: charset=latin-1 decodes as latin-1");
    parse(MP, "--XyZ\r\nContent-Disposition: form-data; name=username\r\n\r\n%41+b\r\n--XyZ\r\n"
              "Content-Disposition: form-data; name=password\r\n\r\nx\r\n--XyZ--");
    ok(VAL(username, "%41+b"), "multipart: no percent-decoding, no '+' rule");
    is_int(parse(MP, "--XyZ\r\nContent-Disposition: form-data; name=username\r\n\r\na\r\n--XyZ\r\n"
                     "Content-Disposition: form-data; name=password\r\n\r\n\r\n--XyZ--"),
           422, "multipart: an empty part is a missing field");
    is_str(answer(), MISSING_PASS, "multipart: empty password listed as missing");

    /* bounds */
    m8_buf q;
    m8_buf_init(&q, 1u << 20);
    m8_buf_puts(&q, "--XyZ\r\n");
    for (int i = 0; i < 8; i++)
        m8_buf_puts(&q, "X-A: b\r\n");
    m8_buf_puts(&q, "\r\nv\r\n--XyZ--");
    is_int(parse(MP, q.data), 400, "multipart: 8 headers without a name: 400 missing name");
    ok(strstr(answer(), "Content-Disposition") != NULL, "multipart: 8 part headers are allowed");
    m8_buf_reset(&q);
    m8_buf_puts(&q, "--XyZ\r\n");
    for (int i = 0; i < 9; i++)
        m8_buf_puts(&q, "X-A: b\r\n");
    m8_buf_puts(&q, "\r\nv\r\n--XyZ--");
    is_int(parse(MP, q.data), 400, "multipart: 9 part headers: 400");
    is_str(answer(), PARSE_ERR, "multipart: too many part headers is a parse error");
    for (int len = 4224; len <= 4225; len++) {
        m8_buf_reset(&q);
        m8_buf_puts(&q, "--XyZ\r\nX-Long:");
        for (int i = 7; i < len; i++)
            m8_buf_putc(&q, 'v');
        m8_buf_puts(&q, "\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--XyZ--");
        is_int(parse(MP, q.data), len == 4224 ? 422 : 400, "multipart: a header line of %d bytes",
               len);
    }
    char bd[300], ct[400];
    for (int len = 256; len <= 257; len++) {
        memset(bd, 'b', (size_t)len);
        bd[len] = '\0';
        snprintf(ct, sizeof ct, "multipart/form-data; boundary=%s", bd);
        m8_buf_reset(&q);
        m8_buf_printf(&q, "--%s--", bd);
        is_int(parse(ct, q.data), len == 256 ? 422 : 400, "multipart: boundary of %d bytes", len);
    }
    for (int kind = 0; kind < 2; kind++) {
        for (int count = 64; count <= 65; count++) {
            m8_buf_reset(&q);
            for (int i = 0; i < count; i++)
                m8_buf_printf(&q, "--XyZ\r\nContent-Disposition: form-data; name=f%s\r\n\r\nv\r\n",
                              kind ? "; filename=a" : "");
            m8_buf_puts(&q, "--XyZ--");
            int rc = parse(MP, q.data);
            is_int(rc, count == 64 ? 422 : 400, "multipart: %d %s", count,
                   kind ? "files" : "fields");
        }
        is_str(answer(),
               kind ? "{\"detail\":\"Too many files. Maximum number of files is 64.\"}"
                    : "{\"detail\":\"Too many fields. Maximum number of fields is 64.\"}",
               "multipart: too many %s text", kind ? "files" : "fields");
    }
    m8_buf_free(&q);
}

static void test_wipe(void)
{
    is_int(parse(UE, "username=a&password=hunter2&client_secret=s3"), 0, "wipe: parsed");
    char *p = form.password, *s = form.client_secret;
    m8_login_form_wipe(&form);
    ok(memcmp(p, "\0\0\0\0\0\0\0", 7) == 0 && memcmp(s, "\0\0", 2) == 0,
       "wipe: password and client_secret zeroed in the arena");
    ok(form.password == NULL && form.username == NULL, "wipe: the struct is cleared");
}

static void test_keys(void)
{
    char out[M8_LOGIN_EMAIL_KEY_BUF];
    const char *u = " \t\xC2\xA0"
                    "Alice@Example.COM\xE3\x80\x80 ";
    size_t n = m8_login_username_norm(u, strlen(u), out);
    is_str(out, "alice@example.com", "username: trimmed (Unicode spaces too) and lower-cased");
    is_int(n, 17, "username: length returned");
    m8_login_username_norm("\xC3\x89LODIE@X.FR", 12, out);
    is_str(out, "\xC3\xA9lodie@x.fr", "username: Latin-1 capitals lower-cased");
    m8_login_username_norm("a b", 3, out);
    is_str(out, "a b", "username: inner space kept");

    const char *k = "  Bob\x01\x7F@Ex\xE2\x80\x8B"
                    "ample.com\n";
    m8_login_email_key(k, strlen(k), out);
    is_str(out, "bob@example.com", "email key: normalised, controls and zero-width space removed");
    m8_buf b;
    m8_buf_init(&b, 4096);
    for (int i = 0; i < 300; i++)
        m8_buf_puts(&b, "\xC3\x89");
    n = m8_login_email_key(b.data, b.len, out);
    is_int(n, 510, "email key: first 255 characters (not bytes)");
    ok(memcmp(out, "\xC3\xA9", 2) == 0, "email key: lower-cased before the cut");
    m8_buf_reset(&b);
    for (int i = 0; i < 300; i++)
        m8_buf_puts(&b, i % 2 ? "a" : "\x01");
    n = m8_login_email_key(b.data, b.len, out);
    is_int(n, 150, "email key: non-printables removed before the cut");
    n = m8_login_email_key("a\xFF"
                           "b",
                           3, out);
    is_str(out, "ab", "email key: invalid UTF-8 bytes dropped");
    m8_buf_free(&b);

    char ip[M8_LOGIN_IP_KEY_BUF];
    m8_login_ip_key("203.0.113.7", 11, ip);
    is_str(ip, "203.0.113.7", "ip key: an address unchanged");
    m8_login_ip_key("10.0.0.1\r\n\x00x", 12, ip);
    is_str(ip, "10.0.0.1x", "ip key: non-printables removed");
    const char *v6 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
    is_int(m8_login_ip_key(v6, strlen(v6), ip), 45, "ip key: a 45-character address kept whole");
    is_int(m8_login_ip_key("0123456789012345678901234567890123456789012345678", 49, ip), 45,
           "ip key: cut to 45 characters");
    m8_login_ip_key("Unknown", 7, ip);
    is_str(ip, "Unknown", "ip key: not lower-cased");
}

int main(void)
{
    m8_arena_init(&arena, 0);
    m8_buf_init(&err, 1u << 20);
    test_urlencoded();
    test_validation();
    test_limits();
    test_multipart_basic();
    test_multipart_parts();
    test_wipe();
    test_keys();
    m8_login_form_wipe(&form);
    m8_arena_free(&arena);
    m8_buf_free(&err);
    return done_testing();
}
