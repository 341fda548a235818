/* jwt.c - JWS compact tokens (jwt.h): parsing the compact form and its JSON
 * parts, the per-thread parsing state and signature verification.  The
 * claims checks are in claims.c, base64url in core/b64url.c.  No I/O, no
 * clock: the caller passes now. */
#include "auth/jwt.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "auth/alg.h"
#include "core/json.h"

static const char *const reason_names[] = {
    "ok", "invalid", "expired", "wrong_type", "invalid_payload", "inconsistent_privilege_claims",
};

const char *m8_jwt_reason_name(m8_jwt_reason r)
{
    if ((unsigned)r < M8_ARRAY_LEN(reason_names))
        return reason_names[r];
    return "invalid";
}

/* ---- JSON parts ---- */

/* Members of every object in the tree. */
static size_t tree_members(struct json_object *o)
{
    size_t n = 0;
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v)
        {
            (void)k;
            n += 1 + tree_members(v);
        }
    } else if (json_object_is_type(o, json_type_array)) {
        size_t len = json_object_array_length(o);
        for (size_t i = 0; i < len; i++)
            n += tree_members(json_object_array_get_idx(o, i));
    }
    return n;
}

/* In JSON a ':' outside strings occurs exactly once per object member, so
 * the text has more colons than the tree has members exactly when json-c
 * folded a duplicate name (it keeps the last one silently).  json-c's
 * strict mode still takes single-quoted strings and raw control characters
 * in strings; both are refused here, which also keeps this scan's idea of
 * where strings are the same as the parser's.  The same pass checks UTF-8
 * (json-c's tokener runs without JSON_TOKENER_VALIDATE_UTF8, which costs a
 * sixth of its parse and is laxer: it takes overlong forms, surrogates and
 * code points past U+10FFFF) and counts the '{' and '[' outside strings: a
 * text with one, the top-level object, has no nested container, and its
 * member count is the object's length. */
enum { J_PLAIN, J_QUOTE, J_BACKSLASH, J_COLON, J_APOS, J_CTL, J_OPEN, J_HIGH };

/* The bytes text_scan looks at; every other byte is J_PLAIN. */
/* clang-format off */
#define J_HIGH16 J_HIGH, J_HIGH, J_HIGH, J_HIGH, J_HIGH, J_HIGH, J_HIGH, J_HIGH, \
                 J_HIGH, J_HIGH, J_HIGH, J_HIGH, J_HIGH, J_HIGH, J_HIGH, J_HIGH
static const unsigned char jclass[256] = {
    [0] = J_CTL, [1] = J_CTL, [2] = J_CTL, [3] = J_CTL, [4] = J_CTL, [5] = J_CTL,
    [6] = J_CTL, [7] = J_CTL, [8] = J_CTL, [9] = J_CTL, [10] = J_CTL, [11] = J_CTL,
    [12] = J_CTL, [13] = J_CTL, [14] = J_CTL, [15] = J_CTL, [16] = J_CTL, [17] = J_CTL,
    [18] = J_CTL, [19] = J_CTL, [20] = J_CTL, [21] = J_CTL, [22] = J_CTL, [23] = J_CTL,
    [24] = J_CTL, [25] = J_CTL, [26] = J_CTL, [27] = J_CTL, [28] = J_CTL, [29] = J_CTL,
    [30] = J_CTL, [31] = J_CTL,
    ['"'] = J_QUOTE, ['\\'] = J_BACKSLASH, [':'] = J_COLON, ['\''] = J_APOS,
    ['{'] = J_OPEN, ['['] = J_OPEN,
    [0x80] = J_HIGH16, J_HIGH16, J_HIGH16, J_HIGH16, J_HIGH16, J_HIGH16, J_HIGH16, J_HIGH16,
};
#undef J_HIGH16
/* clang-format on */

/* The length of the well-formed UTF-8 sequence at p[0..n) (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF); 0 if there is none.
 * p[0] >= 0x80. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    }
    return len;
}

typedef struct text_shape {
    size_t colons; /* ':' outside strings: the members of every object */
    size_t opens;  /* '{' and '[' outside strings: the containers */
} text_shape;

/* false when the text has a single-quoted string, a raw control character
 * in a string, or bytes that are not UTF-8. */
static bool text_scan(const unsigned char *p, size_t n, text_shape *out)
{
    size_t colons = 0, opens = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = jclass[p[i]];
        if (c == J_PLAIN)
            continue;
        if (c == J_HIGH) {
            size_t len = utf8_len(p + i, n - i);
            if (len == 0)
                return false;
            i += len - 1;
        } else if (in_str) {
            if (c == J_CTL)
                return false;
            if (c == J_BACKSLASH)
                i++;
            else if (c == J_QUOTE)
                in_str = false;
        } else if (c == J_QUOTE) {
            in_str = true;
        } else if (c == J_COLON) {
            colons++;
        } else if (c == J_OPEN) {
            opens++;
        } else if (c == J_APOS) {
            return false;
        }
    }
    out->colons = colons;
    out->opens = opens;
    return true;
}

/* ---- per-thread state: a JSON tokener and the last headers seen ----
 *
 * Tokens from one issuer share a handful of headers ({"alg":"RS256",
 * "kid":"..."}), so a thread keeps the last HDR_CACHE headers that passed
 * every header check, by their exact base64url bytes, and hands out a
 * reference instead of decoding and parsing them again.  The json-c
 * reference counts are not atomic: an m8_jws is freed by the thread that
 * parsed it (every caller does). */

#define HDR_CACHE 4
#define HDR_CACHE_B64 512 /* longer headers are parsed every time */

typedef struct hdr_entry {
    struct json_object *header; /* a reference; NULL = empty */
    const char *alg, *kid;      /* borrowed from header */
    size_t len;
    char b64[HDR_CACHE_B64];
} hdr_entry;

typedef struct jwt_tls {
    json_tokener *tok;
    hdr_entry hdr[HDR_CACHE];
    unsigned next;
} jwt_tls;

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;
static bool tls_ready;

static void tls_free(void *p)
{
    jwt_tls *t = p;
    if (!t)
        return;
    for (size_t i = 0; i < HDR_CACHE; i++)
        json_object_put(t->hdr[i].header);
    json_tokener_free(t->tok);
    free(t);
}

static void tls_init(void)
{
    tls_ready = pthread_key_create(&tls_key, tls_free) == 0;
}

static jwt_tls *thread_state(void)
{
    pthread_once(&tls_once, tls_init);
    if (!tls_ready)
        return NULL;
    jwt_tls *t = pthread_getspecific(tls_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t)
            return NULL;
        /* Strict, but UTF-8 is checked by text_scan. */
        t->tok = json_tokener_new_ex(M8_MAX_JWT_DEPTH);
        if (t->tok)
            json_tokener_set_flags(t->tok, JSON_TOKENER_STRICT);
        if (!t->tok || pthread_setspecific(tls_key, t) != 0) {
            json_tokener_free(t->tok);
            free(t);
            return NULL;
        }
    }
    return t;
}

void m8_jwt_thread_release(void)
{
    pthread_once(&tls_once, tls_init);
    if (tls_ready) {
        jwt_tls *t = pthread_getspecific(tls_key);
        if (t) {
            pthread_setspecific(tls_key, NULL);
            tls_free(t);
        }
    }
    m8_key_thread_release();
}

/* m8_json_parse (json.c) with the thread's tokener, which saves creating
 * one per part (without thread state, m8_json_parse checks UTF-8 again). */
static struct json_object *json_parse(const unsigned char *p, size_t n)
{
    jwt_tls *t = thread_state();
    if (!t)
        return m8_json_parse((const char *)p, n, M8_MAX_JWT_DEPTH, NULL, NULL);
    return m8_json_parse_with(t->tok, (const char *)p, n, NULL, NULL);
}

/* A decoded header or payload: one strict JSON object within
 * M8_MAX_JWT_DEPTH, valid UTF-8, nothing but whitespace after it, no
 * duplicate member names at any level. */
static struct json_object *parse_object(const unsigned char *p, size_t n)
{
    text_shape shape;
    if (!text_scan(p, n, &shape))
        return NULL;
    struct json_object *o = json_parse(p, n);
    if (!o || !json_object_is_type(o, json_type_object) ||
        shape.colons !=
            (shape.opens == 1 ? (size_t)json_object_object_length(o) : tree_members(o))) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* A string member without NUL bytes and at most max bytes: 1 (in *out),
 * 0 absent, -1 otherwise. */
static int string_member(struct json_object *o, const char *name, size_t max, const char **out)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v))
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    const char *s = json_object_get_string(v);
    size_t len = (size_t)json_object_get_string_len(v);
    if (len > max || strlen(s) != len)
        return -1;
    *out = s;
    return 1;
}

void m8_jws_free(m8_jws *j)
{
    if (!j)
        return;
    json_object_put(j->header);
    json_object_put(j->payload);
    sodium_memzero(j->raw, j->raw_len);
    memset(j, 0, offsetof(m8_jws, sig)); /* the buffers are read only up to their lengths */
}

m8_jwt_reason m8_jws_parse(const char *tok, size_t len, m8_jws *j)
{
    memset(j, 0, offsetof(m8_jws, sig));
    if (!tok || len == 0 || len > M8_MAX_TOKEN_BYTES)
        return M8_JWT_INVALID;
    const char *d1 = memchr(tok, '.', len);
    if (!d1)
        return M8_JWT_INVALID;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (!d2)
        return M8_JWT_INVALID;
    if (memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)))
        return M8_JWT_INVALID; /* exactly three parts */
    const char *end = tok + len;
    j->payload_b64 = d1 + 1;
    j->payload_b64_len = (size_t)(d2 - d1 - 1);
    long plen = m8_b64url_decode(j->payload_b64, j->payload_b64_len, j->raw, sizeof j->raw);
    if (plen <= 0)
        goto invalid;
    j->raw_len = (size_t)plen;
    long slen = m8_b64url_decode(d2 + 1, (size_t)(end - d2 - 1), j->sig, sizeof j->sig);
    if (slen < 0)
        goto invalid;
    j->sig_len = (size_t)slen;
    j->signing_input = tok;
    j->signing_input_len = (size_t)(d2 - tok);

    /* A header this thread has already checked: the same bytes, the same verdict. */
    size_t hb64 = (size_t)(d1 - tok);
    jwt_tls *t = hb64 <= HDR_CACHE_B64 ? thread_state() : NULL;
    for (size_t i = 0; t && i < HDR_CACHE; i++) {
        hdr_entry *e = &t->hdr[i];
        if (e->header && e->len == hb64 && memcmp(e->b64, tok, hb64) == 0) {
            j->header = json_object_get(e->header);
            j->alg = e->alg;
            j->kid = e->kid;
            return M8_JWT_OK;
        }
    }

    unsigned char part[M8_MAX_JWT_PART_BYTES];
    long hlen = m8_b64url_decode(tok, hb64, part, sizeof part);
    if (hlen <= 0)
        goto invalid;
    j->header = parse_object(part, (size_t)hlen);
    if (!j->header)
        goto invalid;
    /* Neither extension is understood: crit in any form, and b64 (RFC 7797). */
    if (json_object_object_get_ex(j->header, "crit", NULL) ||
        json_object_object_get_ex(j->header, "b64", NULL))
        goto invalid;
    if (string_member(j->header, "alg", 64, &j->alg) < 0)
        goto invalid;
    if (string_member(j->header, "kid", M8_MAX_KID_BYTES, &j->kid) < 0)
        goto invalid;
    if (t) {
        hdr_entry *e = &t->hdr[t->next++ % HDR_CACHE];
        json_object_put(e->header);
        e->header = json_object_get(j->header);
        e->alg = j->alg;
        e->kid = j->kid;
        e->len = hb64;
        memcpy(e->b64, tok, hb64);
    }
    return M8_JWT_OK;
invalid:
    m8_jws_free(j);
    return M8_JWT_INVALID;
}

m8_jwt_reason m8_jws_parse_payload(m8_jws *j)
{
    if (!j || !j->header)
        return M8_JWT_INVALID;
    if (j->payload)
        return M8_JWT_OK;
    if (j->raw_len == 0) { /* used by an earlier failed call */
        long n = m8_b64url_decode(j->payload_b64, j->payload_b64_len, j->raw, sizeof j->raw);
        if (n <= 0)
            return M8_JWT_INVALID;
        j->raw_len = (size_t)n;
    }
    j->payload = parse_object(j->raw, j->raw_len);
    sodium_memzero(j->raw, j->raw_len);
    j->raw_len = 0;
    return j->payload ? M8_JWT_OK : M8_JWT_INVALID;
}

/* ---- signatures ---- */

/* A DER INTEGER for a 32-byte unsigned big-endian value. */
static size_t der_int(unsigned char *out, const unsigned char *v)
{
    size_t skip = 0;
    while (skip < 31 && v[skip] == 0)
        skip++;
    size_t n = 32 - skip;
    bool pad = (v[skip] & 0x80) != 0;
    out[0] = 0x02;
    out[1] = (unsigned char)(n + pad);
    out[2] = 0;
    memcpy(out + 2 + pad, v + skip, n);
    return 2 + pad + n;
}

/* JWS ES256 signatures are R || S (RFC 7518 3.4); OpenSSL wants the DER
 * ECDSA-Sig-Value.  Anything but 64 bytes (a DER signature included) is
 * refused before this. */
static bool verify_es256(const m8_jws *j, const m8_key *key)
{
    unsigned char der[2 + 2 * 35];
    size_t r = der_int(der + 2, j->sig);
    size_t s = der_int(der + 2 + r, j->sig + 32);
    der[0] = 0x30;
    der[1] = (unsigned char)(r + s);
    return m8_key_verify(key, (const unsigned char *)j->signing_input, j->signing_input_len, der,
                         2 + r + s);
}

bool m8_jws_alg_is(const m8_jws *j, m8_alg expected)
{
    const char *want = m8_alg_name(expected);
    return j && j->alg && want && strcmp(j->alg, want) == 0;
}

m8_jwt_reason m8_jws_verify(const m8_jws *j, m8_alg expected, const m8_key *key)
{
    const char *want = m8_alg_name(expected);
    if (!j || !j->header || !key || !want || !j->alg || strcmp(j->alg, want) != 0 ||
        key->alg != expected)
        return M8_JWT_INVALID;
    const unsigned char *si = (const unsigned char *)j->signing_input;
    bool good = false;
    switch (expected) {
    case M8_ALG_HS256:
        good = j->sig_len == 32 && key->secret &&
               m8_key_verify(key, si, j->signing_input_len, j->sig, j->sig_len);
        break;
    case M8_ALG_RS256:
        good = key->pkey && j->sig_len == (size_t)EVP_PKEY_get_size(key->pkey) &&
               m8_key_verify(key, si, j->signing_input_len, j->sig, j->sig_len);
        break;
    case M8_ALG_ES256: good = key->pkey && j->sig_len == 64 && verify_es256(j, key); break;
    }
    return good ? M8_JWT_OK : M8_JWT_INVALID;
}
