/* oidc_parse.c - the pure parts of SSO (oidc.h,
 * doc/issuer.md#sso-oidc-and-google): the callback's query, the
 * redirect_target rules of the login URL, PKCE, quote_plus, the discovery
 * document and the ID token's claims.  No I/O, no clock: fuzzed by
 * tests/fuzz/fuzz_oidc.c. */
#include "issuer/oidc.h"

#include <json-c/json.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/alg.h"
#include "core/b64url.h"
#include "core/json.h"

/* ------------------------------------------------------------ callback query */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes p[0..n) (form encoding) into out[0..cap]; -1 when it does not
 * fit, holds a bad escape, or decodes to a control character. */
static long form_decode(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(p[i + 1]), l = hexval(p[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (unsigned char)(h * 16 + l);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f || o >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}

int m8_oidc_callback_parse(const char *qs, size_t len, m8_oidc_callback *out)
{
    memset(out, 0, sizeof *out);
    if (!qs || len > M8_OIDC_QUERY_MAX)
        return qs ? M8_EPARSE : 0;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && qs[end] != '&')
            end++;
        const char *pair = qs + i;
        size_t plen = end - i;
        i = end + 1;
        if (plen == 0)
            continue;
        const char *eq = memchr(pair, '=', plen);
        size_t nlen = eq ? (size_t)(eq - pair) : plen;
        const char *v = eq ? eq + 1 : pair + plen;
        size_t vlen = eq ? plen - nlen - 1 : 0;
        char *dst = NULL;
        size_t cap = 0;
        bool *has = NULL;
        if (nlen == 4 && memcmp(pair, "code", 4) == 0) {
            dst = out->code, cap = M8_OIDC_CODE_MAX, has = &out->has_code;
        } else if (nlen == 5 && memcmp(pair, "state", 5) == 0) {
            dst = out->state, cap = M8_OIDC_STATE_MAX, has = &out->has_state;
        } else if (nlen == 5 && memcmp(pair, "error", 5) == 0) {
            dst = out->error, cap = M8_OIDC_ERROR_MAX, has = &out->has_error;
        } else {
            continue;
        }
        if (*has || form_decode(v, vlen, dst, cap) < 0)
            return M8_EPARSE;
        *has = true;
    }
    return 0;
}

/* ------------------------------------------------------------ redirect_target */

#define D_TARGET_REQUIRED "redirect_target is required."
#define D_TARGET_LONG "redirect_target too long."
#define D_TARGET_HOST "redirect_target must include a host."
#define D_TARGET_SCHEME "redirect_target scheme not allowed."
#define D_TARGET_PREFIX "redirect_target not in allowed prefixes."

/* The parts of scheme://netloc/path... (no copy). */
typedef struct url_parts {
    const char *scheme; /* up to and including "://" */
    size_t scheme_len;
    const char *host; /* netloc without userinfo */
    size_t host_len;
    const char *path; /* from the first '/', '?' or '#' after the netloc */
    size_t path_len;
} url_parts;

static bool url_split(const char *t, size_t n, url_parts *u)
{
    memset(u, 0, sizeof *u);
    const char *sep = NULL;
    for (size_t i = 0; i + 2 < n; i++) {
        if (t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/') {
            sep = t + i;
            break;
        }
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
              (i > 0 &&
               ((t[i] >= '0' && t[i] <= '9') || t[i] == '+' || t[i] == '-' || t[i] == '.'))))
            return false;
    }
    if (!sep || sep == t)
        return false;
    u->scheme = t;
    u->scheme_len = (size_t)(sep - t) + 3;
    const char *h = sep + 3, *end = t + n;
    const char *p = h;
    while (p < end && *p != '/' && *p != '?' && *p != '#')
        p++;
    u->host = h;
    u->host_len = (size_t)(p - h);
    u->path = p;
    u->path_len = (size_t)(end - p);
    return u->host_len > 0;
}

static bool host_loopback(const char *h, size_t n)
{
    /* without a port */
    size_t k = n;
    if (n && h[0] == '[') {
        const char *rb = memchr(h, ']', n);
        return rb && (size_t)(rb - h) == 4 && memcmp(h, "[::1]", 5) == 0;
    }
    const char *colon = memchr(h, ':', n);
    if (colon)
        k = (size_t)(colon - h);
    return (k == 9 && m8_memcaseeq(h, 9, "localhost")) ||
           (k == 9 && memcmp(h, "127.0.0.1", 9) == 0);
}

bool m8_oidc_url_loopback(const char *url)
{
    url_parts u;
    if (!url || !url_split(url, strlen(url), &u) || memchr(u.host, '@', u.host_len))
        return false;
    return host_loopback(u.host, u.host_len);
}

bool m8_oidc_url_ok(const char *url)
{
    if (!url)
        return false;
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '#')
            return false;
    }
    url_parts u;
    if (!url_split(url, strlen(url), &u) || memchr(u.host, '@', u.host_len))
        return false;
    if (u.scheme_len == 8 && memcmp(u.scheme, "https://", 8) == 0)
        return true;
    return u.scheme_len == 7 && memcmp(u.scheme, "http://", 7) == 0 &&
           host_loopback(u.host, u.host_len);
}

static bool list_has_scheme(const m8_strlist *l, const char *s, size_t n)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strlen(l->items[i]) == n && m8_memcaseeq(s, n, l->items[i]))
            return true;
    }
    return false;
}

/* scheme + exact netloc + path prefix */
static bool prefix_match(const m8_strlist *l, const url_parts *t)
{
    for (size_t i = 0; i < l->n; i++) {
        url_parts p;
        const char *pi = l->items[i];
        if (!url_split(pi, strlen(pi), &p))
            continue;
        if (p.scheme_len != t->scheme_len || strncasecmp(p.scheme, t->scheme, p.scheme_len) != 0)
            continue;
        if (p.host_len != t->host_len || memcmp(p.host, t->host, p.host_len) != 0)
            continue;
        if (p.path_len <= t->path_len && memcmp(p.path, t->path, p.path_len) == 0)
            return true;
    }
    return false;
}

const char *m8_oidc_target_check(const m8_settings *s, const char *t, size_t n)
{
    if (!t || n == 0)
        return D_TARGET_REQUIRED;
    if (n > M8_OIDC_TARGET_MAX)
        return D_TARGET_LONG;
    for (size_t i = 0; i < n; i++) {
        /* the issuer appends #auth_code=...: no fragment, nothing a
         * Location header could not carry */
        unsigned char c = (unsigned char)t[i];
        if (c <= 0x20 || c == 0x7f || c == '#' || c == '\\')
            return D_TARGET_HOST;
    }
    url_parts u;
    if (!url_split(t, n, &u) || memchr(u.host, '@', u.host_len))
        return D_TARGET_HOST;
    if (!list_has_scheme(&s->oauth_allowed_redirect_schemes, u.scheme, u.scheme_len))
        return D_TARGET_SCHEME;
    bool strict = s->environment == M8_ENV_PRODUCTION || s->environment == M8_ENV_STAGING ||
                  s->production_gate;
    bool https = u.scheme_len == 8 && m8_memcaseeq(u.scheme, 8, "https://");
    bool http = u.scheme_len == 7 && m8_memcaseeq(u.scheme, 7, "http://");
    const m8_strlist *pre = &s->oauth_allowed_redirect_prefixes;
    if (http && (strict || !host_loopback(u.host, u.host_len)))
        return D_TARGET_SCHEME;
    if ((http || https) && pre->n == 0)
        return D_TARGET_PREFIX;
    if (!http && !https && pre->n == 0 && s->environment == M8_ENV_PRODUCTION)
        return D_TARGET_PREFIX; /* an unpinned chrome-extension:// */
    if (pre->n && !prefix_match(pre, &u))
        return D_TARGET_PREFIX;
    return NULL;
}

/* ------------------------------------------------------------ PKCE */

static bool pkce_chars(const char *s, size_t n, const char *extra)
{
    if (!s || n < 43 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr(extra, c))))
            return false;
    }
    return true;
}

bool m8_oidc_challenge_ok(const char *s, size_t n)
{
    return pkce_chars(s, n, "-_");
}

bool m8_oidc_verifier_ok(const char *s, size_t n)
{
    return pkce_chars(s, n, "-._~");
}

void m8_oidc_s256(const char *verifier, size_t n, char out[44])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)verifier, n, d);
    m8_buf b;
    m8_buf_init(&b, 64);
    out[0] = '\0';
    if (m8_b64url_encode(&b, d, sizeof d) == 0 && b.len == 43)
        memcpy(out, b.data, 44);
    m8_buf_free(&b);
}

int m8_oidc_quote_plus(m8_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '.' || c == '-' || c == '~') {
            rc = m8_buf_putc(b, (char)c);
        } else if (c == ' ') {
            rc = m8_buf_putc(b, '+');
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = m8_buf_append(b, e, 3);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------ discovery */

static const char *jstr(json_object *o, const char *name)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

void m8_oidc_endpoints_clear(m8_oidc_endpoints *e)
{
    free(e->issuer);
    free(e->authorization);
    free(e->token);
    free(e->jwks_uri);
    memset(e, 0, sizeof *e);
}

int m8_oidc_discovery_parse(const char *json, size_t len, const char *expect_issuer,
                            m8_oidc_endpoints *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > M8_OIDC_DISCOVERY_MAX) {
        snprintf(err, errlen, "the discovery document is over %u bytes", M8_OIDC_DISCOVERY_MAX);
        return M8_EPARSE;
    }
    const char *why = NULL;
    json_object *o = m8_json_parse(json, len, 8, NULL, &why);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        snprintf(err, errlen, "the discovery document is not a JSON object");
        return M8_EPARSE;
    }
    const char *iss = jstr(o, "issuer"), *az = jstr(o, "authorization_endpoint"),
               *tk = jstr(o, "token_endpoint"), *jw = jstr(o, "jwks_uri");
    int rc = M8_EPARSE;
    if (!iss || !expect_issuer || strcmp(iss, expect_issuer) != 0) {
        snprintf(err, errlen, "the discovery document's issuer is not the configured issuer");
    } else if (!m8_oidc_url_ok(az) || !m8_oidc_url_ok(tk) || !m8_oidc_url_ok(jw)) {
        snprintf(err, errlen,
                 "the discovery document lacks an authorization, token or jwks_uri URL "
                 "(https, or http to a loopback host)");
    } else {
        json_object *algs = NULL;
        bool listed = json_object_object_get_ex(o, "id_token_signing_alg_values_supported", &algs);
        bool rs = !listed, es = false;
        if (listed && json_object_is_type(algs, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(algs); i++) {
                const char *a = json_object_get_string(json_object_array_get_idx(algs, i));
                rs = rs || (a && strcmp(a, "RS256") == 0);
                es = es || (a && strcmp(a, "ES256") == 0);
            }
        }
        if (!rs && !es) {
            snprintf(err, errlen, "the provider signs ID tokens with neither RS256 nor ES256");
        } else {
            out->alg = rs ? M8_ALG_RS256 : M8_ALG_ES256;
            out->issuer = strdup(iss);
            out->authorization = strdup(az);
            out->token = strdup(tk);
            out->jwks_uri = strdup(jw);
            rc = out->issuer && out->authorization && out->token && out->jwks_uri ? 0 : M8_ENOMEM;
            if (rc != 0)
                m8_oidc_endpoints_clear(out);
        }
    }
    json_object_put(o);
    return rc;
}

/* ------------------------------------------------------------ ID token claims */

static bool jnum(json_object *o, const char *name, long long *v)
{
    json_object *x = NULL;
    if (!json_object_object_get_ex(o, name, &x))
        return false;
    if (json_object_is_type(x, json_type_int)) {
        *v = (long long)json_object_get_int64(x);
        return true;
    }
    if (json_object_is_type(x, json_type_double)) {
        double d = json_object_get_double(x);
        if (!(d > -9e15 && d < 9e15))
            return false;
        *v = (long long)d;
        return true;
    }
    return false;
}

static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || s[i] == 0x7f)
            return false;
    }
    return true;
}

/* sub is at most 255 ASCII characters (OpenID Connect Core 2); bytes
 * over 0x7e would also be refused by MariaDB's ascii identity columns
 * while PostgreSQL stores them. */
static bool printable_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    }
    return true;
}

/* The first max characters of s (UTF-8), copied into a. */
static const char *utf8_prefix(m8_arena *a, const char *s, size_t max_chars)
{
    size_t i = 0, chars = 0, n = strlen(s);
    while (i < n && chars < max_chars) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (i + k > n)
            break;
        i += k;
        chars++;
    }
    return m8_arena_strndup(a, s, i);
}

const char *m8_oidc_claims_check(json_object *p, const m8_oidc_expect *e, long long now,
                                 m8_arena *a, m8_oidc_identity *out)
{
    memset(out, 0, sizeof *out);
    if (!p || !json_object_is_type(p, json_type_object))
        return "payload";
    const char *iss = jstr(p, "iss");
    if (!iss || !e->issuer ||
        (strcmp(iss, e->issuer) != 0 && !(e->issuer_alt && strcmp(iss, e->issuer_alt) == 0)))
        return "iss";
    json_object *aud = NULL;
    if (!e->client_id || !json_object_object_get_ex(p, "aud", &aud))
        return "aud";
    if (json_object_is_type(aud, json_type_string)) {
        if (strcmp(json_object_get_string(aud), e->client_id) != 0)
            return "aud";
    } else if (json_object_is_type(aud, json_type_array)) {
        bool found = false;
        size_t na = json_object_array_length(aud);
        for (size_t i = 0; i < na; i++) {
            json_object *x = json_object_array_get_idx(aud, i);
            if (!json_object_is_type(x, json_type_string))
                return "aud";
            found = found || strcmp(json_object_get_string(x), e->client_id) == 0;
        }
        if (!found || (na > 1 && !json_object_object_get_ex(p, "azp", NULL)))
            return "aud";
    } else {
        return "aud";
    }
    /* azp, when present, names the party the token was issued to: ours
     * (OpenID Connect Core 3.1.3.7) */
    json_object *azp = NULL;
    if (json_object_object_get_ex(p, "azp", &azp) &&
        (!json_object_is_type(azp, json_type_string) ||
         strcmp(json_object_get_string(azp), e->client_id) != 0))
        return "aud";
    long long exp = 0, iat = 0, nbf = 0;
    if (!jnum(p, "exp", &exp))
        return "exp";
    if (exp <= now - M8_OIDC_SKEW_S)
        return "expired";
    if (!jnum(p, "iat", &iat) || iat > now + M8_OIDC_SKEW_S)
        return "iat";
    /* nbf is optional; when given it must be a number and passed (same skew) */
    if (json_object_object_get_ex(p, "nbf", NULL) &&
        (!jnum(p, "nbf", &nbf) || nbf > now + M8_OIDC_SKEW_S))
        return "nbf";
    const char *nonce = jstr(p, "nonce");
    if (!e->nonce || !nonce || strlen(nonce) != strlen(e->nonce) || strcmp(nonce, e->nonce) != 0)
        return "nonce";
    const char *sub = jstr(p, "sub");
    size_t sl = sub ? strlen(sub) : 0;
    if (!sub || sl == 0 || sl > M8_OIDC_SUB_MAX || !printable_ascii(sub, sl))
        return "sub";
    out->sub = m8_arena_strdup(a, sub);
    const char *email = jstr(p, "email");
    if (email) {
        const char *q = email;
        size_t n = m8_trim(&q, strlen(email));
        if (n == 0 || n > 254 || !printable(q, n) || !memchr(q, '@', n))
            return "email";
        char *low = m8_arena_strndup(a, q, n);
        if (!low)
            return "memory";
        for (char *c = low; *c; c++) {
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        }
        out->email = low;
    }
    json_object *ev = NULL;
    if (json_object_object_get_ex(p, "email_verified", &ev)) {
        /* a boolean; some providers send the string "true" */
        out->email_verified =
            (json_object_is_type(ev, json_type_boolean) && json_object_get_boolean(ev)) ||
            (json_object_is_type(ev, json_type_string) &&
             strcmp(json_object_get_string(ev), "true") == 0);
    }
    const char *name = jstr(p, "name");
    if (name && *name)
        out->name = utf8_prefix(a, name, M8_OIDC_NAME_MAX);
    const char *pic = jstr(p, "picture");
    if (pic && *pic && strlen(pic) <= M8_OIDC_AVATAR_MAX)
        out->picture = m8_arena_strdup(a, pic);
    if (!out->sub)
        return "memory";
    return NULL;
}
