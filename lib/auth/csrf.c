/* csrf.c - signed double-submit CSRF tokens and origin checks (csrf.h). */
#include "auth/csrf.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAC_BYTES crypto_auth_hmacsha256_BYTES
#define ID_BYTES 32u
#define RAW_BYTES (M8_CSRF_NONCE_BYTES + MAC_BYTES)
#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* Domain separation: a MAC made here is never one made elsewhere with the
 * same key, and a later format gets another label. */
static const char key_label[] = "fcgim8-csrf-key/1";
static const char mac_label[] = "fcgim8-csrf/1";

struct m8_csrf {
    unsigned char key[crypto_auth_hmacsha256_KEYBYTES];
};

_Static_assert(sodium_base64_ENCODED_LEN(RAW_BYTES, B64) == M8_CSRF_TOKEN_LEN + 1,
               "M8_CSRF_TOKEN_LEN is the encoded length of nonce and MAC");

m8_csrf *m8_csrf_new(const char *secret, size_t len, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "cannot initialise libsodium");
        return NULL;
    }
    const char *s = secret;
    len = s ? m8_trim(&s, len) : 0;
    if (len < M8_CSRF_KEY_MIN) {
        snprintf(err, errlen,
                 "the CSRF key is shorter than %u bytes (make one with: "
                 "openssl rand -hex 32)",
                 M8_CSRF_KEY_MIN);
        return NULL;
    }
    bool seen[256] = {false};
    unsigned distinct = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        if (!seen[b]) {
            seen[b] = true;
            distinct++;
        }
    }
    if (distinct < M8_CSRF_KEY_MIN_DISTINCT) {
        snprintf(err, errlen,
                 "the CSRF key is too regular to be random (fewer than %u "
                 "distinct bytes; make one with: openssl rand -hex 32)",
                 M8_CSRF_KEY_MIN_DISTINCT);
        return NULL;
    }
    m8_csrf *c = sodium_malloc(sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof c->key);
    crypto_generichash_update(&st, (const unsigned char *)key_label, sizeof key_label);
    crypto_generichash_update(&st, (const unsigned char *)s, len);
    crypto_generichash_final(&st, c->key, sizeof c->key);
    sodium_memzero(&st, sizeof st);
    return c;
}

m8_csrf *m8_csrf_load(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, errno == ENOENT ? "no such file" : strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_mode & (S_IROTH | S_IWOTH)) {
        snprintf(err, errlen,
                 "%s: readable or writable by others: a secret file must not be "
                 "(chmod o-rwx)",
                 path);
        close(fd);
        return NULL;
    }
    char buf[M8_CSRF_KEY_FILE_MAX + 1];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: cannot read it: %s", path, strerror(errno));
            close(fd);
            sodium_memzero(buf, sizeof buf);
            return NULL;
        }
        if (r == 0 || (n += (size_t)r) == sizeof buf)
            break;
    }
    close(fd);
    m8_csrf *c = NULL;
    if (n > M8_CSRF_KEY_FILE_MAX) {
        snprintf(err, errlen, "%s: larger than %u bytes", path, M8_CSRF_KEY_FILE_MAX);
    } else {
        char why[256] = "";
        c = m8_csrf_new(buf, n, why, sizeof why);
        if (!c)
            snprintf(err, errlen, "%s: %s", path, why);
    }
    sodium_memzero(buf, sizeof buf);
    return c;
}

void m8_csrf_free(m8_csrf *c)
{
    if (c)
        sodium_free(c); /* wipes */
}

static void mac(const m8_csrf *c, const char *id, size_t idlen,
                const unsigned char nonce[M8_CSRF_NONCE_BYTES], unsigned char out[MAC_BYTES])
{
    unsigned char h[ID_BYTES];
    crypto_generichash(h, sizeof h, (const unsigned char *)id, idlen, NULL, 0);
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, c->key, sizeof c->key);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)mac_label, sizeof mac_label);
    crypto_auth_hmacsha256_update(&st, h, sizeof h);
    crypto_auth_hmacsha256_update(&st, nonce, M8_CSRF_NONCE_BYTES);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

int m8_csrf_mint(const m8_csrf *c, const char *id, size_t idlen, char out[M8_CSRF_TOKEN_LEN + 1])
{
    if (!c || !id || !idlen)
        return M8_EINVAL;
    unsigned char raw[RAW_BYTES];
    randombytes_buf(raw, M8_CSRF_NONCE_BYTES);
    mac(c, id, idlen, raw, raw + M8_CSRF_NONCE_BYTES);
    sodium_bin2base64(out, M8_CSRF_TOKEN_LEN + 1, raw, sizeof raw, B64);
    return 0;
}

bool m8_csrf_verify(const m8_csrf *c, const char *id, size_t idlen, const char *tok, size_t tlen)
{
    if (!c || !id || !idlen || !tok || tlen != M8_CSRF_TOKEN_LEN)
        return false;
    unsigned char raw[RAW_BYTES], want[MAC_BYTES];
    size_t got = 0;
    const char *end = NULL;
    if (sodium_base642bin(raw, sizeof raw, tok, tlen, NULL, &got, &end, B64) != 0 ||
        got != sizeof raw || end != tok + tlen)
        return false;
    mac(c, id, idlen, raw, want);
    bool ok = crypto_verify_32(want, raw + M8_CSRF_NONCE_BYTES) == 0;
    sodium_memzero(want, sizeof want);
    return ok;
}

/* ------------------------------------------------------------ origins */

typedef struct origin {
    char scheme[6];                    /* "http" or "https" */
    char host[M8_CSRF_MAX_ORIGIN + 1]; /* host[:port], lower case, without the default port */
} origin;

/* An authority (host, [v6], optional :port) into o->host for o->scheme. */
static bool parse_authority(const char *s, size_t n, origin *o)
{
    if (n == 0 || n > M8_CSRF_MAX_ORIGIN)
        return false;
    size_t colon = n; /* where the port starts, if any */
    bool v6 = s[0] == '[';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
                  (v6 && (ch == ':' || ch == ']' || (ch == '[' && i == 0)));
        if (ch == ':' && (!v6 || (i > 0 && s[i - 1] == ']'))) {
            if (colon != n)
                return false; /* one port at most */
            colon = i;
            ok = true;
        }
        if (!ok)
            return false;
        o->host[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    o->host[n] = '\0';
    if (v6 && (colon == n ? s[n - 1] != ']' : s[colon - 1] != ']'))
        return false;
    if (colon == 0)
        return false;
    if (colon < n) {
        size_t pl = n - colon - 1;
        if (pl == 0 || pl > 5)
            return false;
        for (size_t i = colon + 1; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
        }
        const char *def = strcmp(o->scheme, "https") == 0 ? "443" : "80";
        if (pl == strlen(def) && memcmp(s + colon + 1, def, pl) == 0)
            o->host[colon] = '\0';
    }
    return true;
}

/* scheme "://" authority; with tail, a path, query or fragment may follow
 * (a Referer), else nothing may (an Origin). */
static bool parse_origin(const char *s, size_t n, bool tail, origin *o)
{
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < n && i < 8 && !sep; i++) {
        if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/')
            sep = s + i;
    }
    if (!sep)
        return false;
    size_t sl = (size_t)(sep - s);
    if (m8_memcaseeq(s, sl, "https"))
        memcpy(o->scheme, "https", 6);
    else if (m8_memcaseeq(s, sl, "http"))
        memcpy(o->scheme, "http", 5);
    else
        return false;
    const char *a = sep + 3;
    size_t al = n - (size_t)(a - s);
    if (tail) {
        for (size_t i = 0; i < al; i++) {
            if (a[i] == '/' || a[i] == '?' || a[i] == '#') {
                al = i;
                break;
            }
        }
    }
    return parse_authority(a, al, o);
}

static bool origin_eq(const origin *x, const origin *y)
{
    return strcmp(x->scheme, y->scheme) == 0 && strcmp(x->host, y->host) == 0;
}

/* A header's value, or NULL when absent or blank. */
static const char *header(const m8_request *req, const char *name, size_t *len)
{
    const char *v = m8_req_header(req, name);
    if (!v)
        return NULL;
    *len = m8_trim(&v, strlen(v));
    return *len ? v : NULL;
}

static bool allowed_origin(const m8_request *req, const origin *o, char *const *allowed, size_t n)
{
    /* The request's own origin: its Host under its scheme (both when the
     * scheme is unknown). */
    size_t hl = 0;
    const char *host = header(req, "Host", &hl);
    if (host) {
        const char *rs = m8_req_param(req, "REQUEST_SCHEME");
        const char *https = m8_req_param(req, "HTTPS");
        const char *scheme = NULL;
        if (rs && (m8_strcaseeq(rs, "https") || m8_strcaseeq(rs, "http")))
            scheme = m8_strcaseeq(rs, "https") ? "https" : "http";
        else if (https && (m8_strcaseeq(https, "on") || strcmp(https, "1") == 0))
            scheme = "https";
        /* A Host without a port (Debian's fastcgi_params sends nginx's $host,
         * which drops it): the port the request came in on (SERVER_PORT) is
         * the request's too, besides the scheme's default. */
        char withport[M8_CSRF_MAX_ORIGIN + 8];
        const char *sp = m8_req_param(req, "SERVER_PORT");
        size_t wl = 0;
        bool portless = host[hl - 1] != ']' && !memchr(host, ':', hl);
        if (portless && sp && *sp && strlen(sp) <= 5 && strspn(sp, "0123456789") == strlen(sp) &&
            hl <= M8_CSRF_MAX_ORIGIN) {
            int w = snprintf(withport, sizeof withport, "%.*s:%s", (int)hl, host, sp);
            wl = w > 0 && (size_t)w < sizeof withport ? (size_t)w : 0;
        }
        const char *schemes[2] = {scheme ? scheme : "http", scheme ? NULL : "https"};
        for (size_t i = 0; i < 2 && schemes[i]; i++) {
            origin self;
            snprintf(self.scheme, sizeof self.scheme, "%s", schemes[i]);
            if (parse_authority(host, hl, &self) && origin_eq(o, &self))
                return true;
            if (wl && parse_authority(withport, wl, &self) && origin_eq(o, &self))
                return true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        origin a;
        if (allowed[i] && parse_origin(allowed[i], strlen(allowed[i]), false, &a) &&
            origin_eq(o, &a))
            return true;
    }
    return false;
}

m8_csrf_origin m8_csrf_check_origin(const m8_request *req, char *const *allowed, size_t n)
{
    size_t len = 0;
    const char *sfs = header(req, "Sec-Fetch-Site", &len);
    if (sfs && m8_memcaseeq(sfs, len, "cross-site"))
        return M8_CSRF_CROSS_SITE;
    origin o;
    const char *v = header(req, "Origin", &len);
    if (v)
        return parse_origin(v, len, false, &o) && allowed_origin(req, &o, allowed, n)
                   ? M8_CSRF_ORIGIN_OK
                   : M8_CSRF_BAD_ORIGIN;
    v = header(req, "Referer", &len);
    if (v)
        return parse_origin(v, len, true, &o) && allowed_origin(req, &o, allowed, n)
                   ? M8_CSRF_ORIGIN_OK
                   : M8_CSRF_BAD_REFERER;
    return M8_CSRF_ORIGIN_OK;
}

const char *m8_csrf_origin_reason(m8_csrf_origin r)
{
    switch (r) {
    case M8_CSRF_ORIGIN_OK: return "ok";
    case M8_CSRF_CROSS_SITE: return "csrf: Sec-Fetch-Site is cross-site";
    case M8_CSRF_BAD_ORIGIN: return "csrf: the Origin is not allowed";
    case M8_CSRF_BAD_REFERER: return "csrf: the Referer is not of an allowed origin";
    }
    return "csrf: refused";
}
