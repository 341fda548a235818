/* test_csrf - signed double-submit CSRF tokens and the origin checks (csrf.h). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/csrf.h"
#include "reqbuild.h"
#include "tap.h"

#define KEY "3f9a1c7e5b2d8f40a6c1e9b7d3f5a2c8" /* 32 bytes, 14 distinct */
#define JTI "8e1c6a0b-3f2d-4e5a-9b7c-1d2e3f4a5b6c"

static void test_keys(void)
{
    char err[256];
    m8_csrf *c = m8_csrf_new(KEY, 31, err, sizeof err);
    ok(c == NULL && strstr(err, "shorter than 32 bytes"), "key: 31 bytes are refused");
    c = m8_csrf_new(KEY, 32, err, sizeof err);
    ok(c != NULL, "key: 32 bytes of random hex are enough");
    m8_csrf_free(c);
    c = m8_csrf_new("  " KEY "\n", strlen(KEY) + 3, err, sizeof err);
    ok(c != NULL, "key: whitespace at either end is ignored");
    m8_csrf_free(c);
    const char *short_padded = " 3f9a1c7e5b2d8f40a6c1e9b7d3f5a2c\n";
    c = m8_csrf_new(short_padded, strlen(short_padded), err, sizeof err);
    ok(c == NULL, "key: ... and does not count toward the 32 bytes");
    const char *weak = "abcdabcdabcdabcdabcdabcdabcdabcdabcdabcd";
    c = m8_csrf_new(weak, strlen(weak), err, sizeof err);
    ok(c == NULL && strstr(err, "too regular"), "key: a repeated pattern is refused as weak");
    ok(strstr(err, "abcd") == NULL, "key: the refusal never quotes the key");
    c = m8_csrf_new(NULL, 0, err, sizeof err);
    ok(c == NULL, "key: no key is refused");
}

static void write_file(const char *path, const char *text, size_t n, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n)
        printf("# cannot write %s\n", path);
    if (fd >= 0)
        close(fd);
    chmod(path, mode);
}

static void test_key_files(void)
{
    char dir[] = "/tmp/test_csrf.XXXXXX";
    if (!mkdtemp(dir)) {
        ok(0, "key file: a temporary directory");
        return;
    }
    char path[128], err[512];
    snprintf(path, sizeof path, "%s/key", dir);
    m8_csrf *c = m8_csrf_load(path, err, sizeof err);
    ok(c == NULL && strstr(err, "no such file"), "key file: a missing file is refused");
    write_file(path, KEY "\n", strlen(KEY) + 1, 0600);
    c = m8_csrf_load(path, err, sizeof err);
    ok(c != NULL, "key file: mode 0600 with 32 bytes and a newline loads");
    m8_csrf *c2 = m8_csrf_new(KEY, strlen(KEY), err, sizeof err);
    char tok[M8_CSRF_TOKEN_LEN + 1];
    ok(c && c2 && m8_csrf_mint(c, JTI, strlen(JTI), tok) == 0 &&
           m8_csrf_verify(c2, JTI, strlen(JTI), tok, strlen(tok)),
       "key file: the file's key is the same key as its text (two processes agree)");
    m8_csrf_free(c);
    m8_csrf_free(c2);
    write_file(path, KEY, strlen(KEY), 0640);
    c = m8_csrf_load(path, err, sizeof err);
    ok(c != NULL, "key file: mode 0640 (group readable, for a web server's group) loads");
    m8_csrf_free(c);
    write_file(path, KEY, strlen(KEY), 0644);
    c = m8_csrf_load(path, err, sizeof err);
    ok(c == NULL && strstr(err, "readable or writable by others"),
       "key file: a world-readable file is refused");
    ok(strstr(err, KEY) == NULL, "key file: the refusal never quotes the key");
    write_file(path, KEY, 31, 0600);
    c = m8_csrf_load(path, err, sizeof err);
    ok(c == NULL && strstr(err, path) && strstr(err, "shorter"),
       "key file: a short key is refused, naming the file");
    static char big[M8_CSRF_KEY_FILE_MAX + 1];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = "0123456789abcdef"[(i * 7 + i / 16) % 16];
    write_file(path, big, M8_CSRF_KEY_FILE_MAX, 0600);
    c = m8_csrf_load(path, err, sizeof err);
    ok(c != NULL, "key file: %u bytes is the limit", M8_CSRF_KEY_FILE_MAX);
    m8_csrf_free(c);
    write_file(path, big, M8_CSRF_KEY_FILE_MAX + 1, 0600);
    c = m8_csrf_load(path, err, sizeof err);
    ok(c == NULL && strstr(err, "larger than"), "key file: one byte more is refused");
    c = m8_csrf_load(dir, err, sizeof err);
    ok(c == NULL && strstr(err, "not a regular file"), "key file: a directory is refused");
    unlink(path);
    rmdir(dir);
}

static void test_tokens(void)
{
    char err[256];
    m8_csrf *c = m8_csrf_new(KEY, strlen(KEY), err, sizeof err);
    m8_csrf *other = m8_csrf_new("0123456789abcdefghijklmnopqrstuv", 32, err, sizeof err);
    if (!c || !other) {
        ok(0, "tokens: two keys");
        return;
    }
    char t1[M8_CSRF_TOKEN_LEN + 1], t2[M8_CSRF_TOKEN_LEN + 1];
    ok(m8_csrf_mint(c, JTI, strlen(JTI), t1) == 0 && strlen(t1) == M8_CSRF_TOKEN_LEN,
       "token: minted, %u characters", M8_CSRF_TOKEN_LEN);
    ok(strspn(t1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
           M8_CSRF_TOKEN_LEN,
       "token: base64url without padding (header- and cookie-safe)");
    ok(m8_csrf_verify(c, JTI, strlen(JTI), t1, strlen(t1)), "token: verifies for its session");
    m8_csrf_mint(c, JTI, strlen(JTI), t2);
    ok(strcmp(t1, t2) != 0 && m8_csrf_verify(c, JTI, strlen(JTI), t2, strlen(t2)),
       "token: each mint has a fresh nonce; both verify");
    const char *jti2 = "0d6e7f80-1a2b-4c3d-8e9f-a0b1c2d3e4f5";
    ok(!m8_csrf_verify(c, jti2, strlen(jti2), t1, strlen(t1)),
       "token: bound to the session: refused with another session's identity");
    ok(!m8_csrf_verify(other, JTI, strlen(JTI), t1, strlen(t1)),
       "token: refused under another key");
    char forged[M8_CSRF_TOKEN_LEN + 1];
    m8_csrf_mint(other, JTI, strlen(JTI), forged);
    ok(!m8_csrf_verify(c, JTI, strlen(JTI), forged, strlen(forged)),
       "token: minted by someone without the key (the attacker's own key): refused");
    memset(forged, 'A', M8_CSRF_TOKEN_LEN);
    ok(!m8_csrf_verify(c, JTI, strlen(JTI), forged, M8_CSRF_TOKEN_LEN),
       "token: any well-formed value an attacker picks (the old double submit's pair): refused");
    char t[M8_CSRF_TOKEN_LEN + 2];
    int flips_refused = 0;
    for (size_t i = 0; i < M8_CSRF_TOKEN_LEN; i++) {
        memcpy(t, t1, sizeof t1);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        flips_refused += !m8_csrf_verify(c, JTI, strlen(JTI), t, M8_CSRF_TOKEN_LEN);
    }
    is_int(flips_refused, M8_CSRF_TOKEN_LEN, "token: every one-character change is refused");
    ok(!m8_csrf_verify(c, JTI, strlen(JTI), t1, M8_CSRF_TOKEN_LEN - 1),
       "token: one character short is refused");
    memcpy(t, t1, sizeof t1);
    t[M8_CSRF_TOKEN_LEN] = 'A';
    t[M8_CSRF_TOKEN_LEN + 1] = '\0';
    ok(!m8_csrf_verify(c, JTI, strlen(JTI), t, M8_CSRF_TOKEN_LEN + 1),
       "token: one character more is refused");
    memcpy(t, t1, sizeof t1);
    t[10] = '+';
    ok(!m8_csrf_verify(c, JTI, strlen(JTI), t, M8_CSRF_TOKEN_LEN),
       "token: a character outside base64url is refused");
    ok(!m8_csrf_verify(c, JTI, strlen(JTI), "", 0) && !m8_csrf_verify(c, JTI, strlen(JTI), NULL, 0),
       "token: empty or missing is refused");
    ok(!m8_csrf_verify(c, "", 0, t1, strlen(t1)) && m8_csrf_mint(c, "", 0, t2) == M8_EINVAL,
       "token: no session identity: nothing is minted and nothing verifies");
    m8_csrf_free(c);
    m8_csrf_free(other);
}

/* Builds req from NAME=VALUE params (NULL-terminated). */
static void setup(m8_request *req, const char *const *kv)
{
    static const char *const base[] = {"REQUEST_METHOD=POST", "REQUEST_URI=/x", NULL};
    m8_req_reset(req);
    if (m8t_req_kv(req, base, kv, NULL, 0) != 0)
        printf("# setup: the request does not parse\n");
}

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_origins(m8_request *req)
{
    char *allowed[] = {"https://app.example.com", "http://localhost:3000"};
    struct {
        const char *const *kv;
        m8_csrf_origin want;
        const char *name;
    } cases[] = {
        {KV("HTTP_HOST=example.com"), M8_CSRF_ORIGIN_OK, "no Origin, Referer or Sec-Fetch-Site"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https", "HTTP_ORIGIN=https://example.com"),
         M8_CSRF_ORIGIN_OK, "Origin is the request's own origin"},
        {KV("HTTP_HOST=Example.COM", "REQUEST_SCHEME=https", "HTTP_ORIGIN=https://example.com:443"),
         M8_CSRF_ORIGIN_OK, "own origin: host case and the default port do not matter"},
        {KV("HTTP_HOST=example.com:8443", "REQUEST_SCHEME=https",
            "HTTP_ORIGIN=https://example.com:8443"),
         M8_CSRF_ORIGIN_OK, "own origin with a port"},
        {KV("HTTP_HOST=example.com:8443", "REQUEST_SCHEME=https",
            "HTTP_ORIGIN=https://example.com"),
         M8_CSRF_BAD_ORIGIN, "another port is another origin"},
        {KV("HTTP_HOST=example.com", "SERVER_PORT=8443", "REQUEST_SCHEME=https",
            "HTTP_ORIGIN=https://example.com:8443"),
         M8_CSRF_ORIGIN_OK, "a Host without its port (nginx $host): SERVER_PORT is the request's"},
        {KV("HTTP_HOST=example.com", "SERVER_PORT=8443", "REQUEST_SCHEME=https",
            "HTTP_ORIGIN=https://example.com"),
         M8_CSRF_ORIGIN_OK, "... and the scheme's default port still (a proxy mapping 443)"},
        {KV("HTTP_HOST=example.com", "SERVER_PORT=8443", "REQUEST_SCHEME=https",
            "HTTP_ORIGIN=https://example.com:9443"),
         M8_CSRF_BAD_ORIGIN, "... but not any other port"},
        {KV("HTTP_HOST=example.com:8443", "SERVER_PORT=9443", "REQUEST_SCHEME=https",
            "HTTP_ORIGIN=https://example.com:9443"),
         M8_CSRF_BAD_ORIGIN, "a Host with a port: SERVER_PORT is not consulted"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https", "HTTP_ORIGIN=http://example.com"),
         M8_CSRF_BAD_ORIGIN, "another scheme is another origin"},
        {KV("HTTP_HOST=example.com", "HTTPS=on", "HTTP_ORIGIN=https://example.com"),
         M8_CSRF_ORIGIN_OK, "HTTPS=on makes the scheme https"},
        {KV("HTTP_HOST=example.com", "HTTP_ORIGIN=https://example.com"), M8_CSRF_ORIGIN_OK,
         "scheme unknown: the Host under https"},
        {KV("HTTP_HOST=example.com", "HTTP_ORIGIN=http://example.com"), M8_CSRF_ORIGIN_OK,
         "scheme unknown: the Host under http"},
        {KV("HTTP_HOST=[::1]:8080", "REQUEST_SCHEME=http", "HTTP_ORIGIN=http://[::1]:8080"),
         M8_CSRF_ORIGIN_OK, "an IPv6 host"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https", "HTTP_ORIGIN=https://evil.example"),
         M8_CSRF_BAD_ORIGIN, "a foreign Origin is refused"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https", "HTTP_ORIGIN=https://sub.example.com"),
         M8_CSRF_BAD_ORIGIN, "a sibling subdomain is another origin"},
        {KV("HTTP_HOST=example.com", "HTTP_ORIGIN=null"), M8_CSRF_BAD_ORIGIN,
         "Origin: null is refused"},
        {KV("HTTP_HOST=example.com", "HTTP_ORIGIN=https://example.com/path"), M8_CSRF_BAD_ORIGIN,
         "an Origin with a path is no origin"},
        {KV("HTTP_HOST=example.com", "HTTP_ORIGIN=https://example.com@evil.example"),
         M8_CSRF_BAD_ORIGIN, "an Origin with user information is refused"},
        {KV("HTTP_HOST=example.com:@evil.example", "HTTP_ORIGIN=https://evil.example"),
         M8_CSRF_BAD_ORIGIN, "a Host with user information is no origin of the request"},
        {KV("HTTP_HOST=example.com", "HTTP_ORIGIN=javascript://example.com"), M8_CSRF_BAD_ORIGIN,
         "another scheme than http(s) is refused"},
        {KV("HTTP_HOST=api.example.com", "HTTP_ORIGIN=https://APP.example.com"), M8_CSRF_ORIGIN_OK,
         "an allowed origin (ALLOWED_ORIGINS)"},
        {KV("HTTP_ORIGIN=http://localhost:3000"), M8_CSRF_ORIGIN_OK,
         "an allowed origin without a Host header"},
        {KV("HTTP_ORIGIN=http://localhost:3001"), M8_CSRF_BAD_ORIGIN,
         "without a Host header only the allowed origins pass"},
        {KV("HTTP_HOST=example.com", "HTTP_ORIGIN="), M8_CSRF_ORIGIN_OK,
         "an empty Origin counts as absent"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https",
            "HTTP_REFERER=https://example.com/app/page?q=1"),
         M8_CSRF_ORIGIN_OK, "no Origin: a Referer of the own origin passes"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https", "HTTP_REFERER=https://evil.example/x"),
         M8_CSRF_BAD_REFERER, "no Origin: a foreign Referer is refused"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https",
            "HTTP_REFERER=https://example.com.evil.example/"),
         M8_CSRF_BAD_REFERER, "a Referer whose host only starts with the own host is refused"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https",
            "HTTP_REFERER=https://example.com@evil.example/"),
         M8_CSRF_BAD_REFERER, "a Referer with user information is refused"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https", "HTTP_REFERER=/relative"),
         M8_CSRF_BAD_REFERER, "a Referer that is no absolute URL is refused"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https", "HTTP_ORIGIN=https://example.com",
            "HTTP_REFERER=https://evil.example/"),
         M8_CSRF_ORIGIN_OK, "Origin decides when present (the Referer is not read)"},
        {KV("HTTP_HOST=example.com", "REQUEST_SCHEME=https", "HTTP_ORIGIN=https://example.com",
            "HTTP_SEC_FETCH_SITE=cross-site"),
         M8_CSRF_CROSS_SITE, "Sec-Fetch-Site: cross-site is refused whatever the Origin"},
        {KV("HTTP_HOST=example.com", "HTTP_SEC_FETCH_SITE=Cross-Site"), M8_CSRF_CROSS_SITE,
         "... in any case"},
        {KV("HTTP_HOST=example.com", "HTTP_SEC_FETCH_SITE=same-site"), M8_CSRF_ORIGIN_OK,
         "Sec-Fetch-Site: same-site passes these checks (the token still decides)"},
        {KV("HTTP_HOST=example.com", "HTTP_SEC_FETCH_SITE=same-origin"), M8_CSRF_ORIGIN_OK,
         "Sec-Fetch-Site: same-origin passes"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(cases); i++) {
        setup(req, cases[i].kv);
        is_int(m8_csrf_check_origin(req, allowed, M8_ARRAY_LEN(allowed)), cases[i].want,
               "origin: %s", cases[i].name);
    }
    char big[M8_CSRF_MAX_ORIGIN + 8], host[M8_CSRF_MAX_ORIGIN + 32],
        origin[M8_CSRF_MAX_ORIGIN + 32];
    memset(big, 'a', sizeof big);
    big[M8_CSRF_MAX_ORIGIN] = '\0';
    snprintf(host, sizeof host, "HTTP_HOST=%s", big);
    snprintf(origin, sizeof origin, "HTTP_ORIGIN=http://%s", big);
    setup(req, KV(host, origin));
    is_int(m8_csrf_check_origin(req, NULL, 0), M8_CSRF_ORIGIN_OK,
           "origin: a host of %u bytes is the limit", M8_CSRF_MAX_ORIGIN);
    big[M8_CSRF_MAX_ORIGIN] = 'a';
    big[M8_CSRF_MAX_ORIGIN + 1] = '\0';
    snprintf(host, sizeof host, "HTTP_HOST=%s", big);
    snprintf(origin, sizeof origin, "HTTP_ORIGIN=http://%s", big);
    setup(req, KV(host, origin));
    is_int(m8_csrf_check_origin(req, NULL, 0), M8_CSRF_BAD_ORIGIN,
           "origin: one byte more is refused");
}

int main(void)
{
    test_keys();
    test_key_files();
    test_tokens();
    m8_request req;
    m8_req_init(&req, NULL);
    test_origins(&req);
    m8_req_free(&req);
    return done_testing();
}
