/* jwt.c - JWS compact tokens and access-token claims (jwt.h; CONTRACT.md
 * Part A 3.2-3.6, Part B 7).  No I/O, no clock: the caller passes now. */
#include "auth/jwt.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <sodium.h>

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

static const char *alg_name(m8_alg alg)
{
    switch (alg) {
    case M8_ALG_RS256: return "RS256";
    case M8_ALG_ES256: return "ES256";
    case M8_ALG_HS256: return "HS256";
    }
    return NULL;
}

/* ---- base64url (RFC 4648 5, no padding) ---- */

/* Character -> 6-bit value, -1 outside the base64url alphabet. */
/* clang-format off */
static const signed char b64tab[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1, 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};
/* clang-format on */

static int b64v(unsigned char c)
{
    return b64tab[c];
}

/* Also used with out == NULL to validate and size only.  The unused low
 * bits of the last character must be zero (one encoding per byte string). */
long m8_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (!in && n)
        return -1;
    size_t rem = n % 4;
    if (rem == 1)
        return -1;
    size_t outlen = n / 4 * 3 + (rem == 2 ? 1 : rem == 3 ? 2 : 0);
    if (outlen > cap || outlen > LONG_MAX)
        return -1;
    size_t o = 0, i = 0, whole = n / 4 * 4;
    if (!out) { /* validate and size only */
        int acc = 0;
        for (; i < whole; i++)
            acc |= b64tab[(unsigned char)in[i]];
        if (acc < 0)
            return -1;
        o = whole / 4 * 3;
    }
    for (; i < whole; i += 4) {
        int a = b64v((unsigned char)in[i]), b = b64v((unsigned char)in[i + 1]);
        int c = b64v((unsigned char)in[i + 2]), d = b64v((unsigned char)in[i + 3]);
        if ((a | b | c | d) < 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8);
        out[o + 2] = (unsigned char)v;
        o += 3;
    }
    if (rem == 2) {
        int a = b64v((unsigned char)in[i]), b = b64v((unsigned char)in[i + 1]);
        if ((a | b) < 0 || (b & 0x0f) != 0)
            return -1;
        if (out)
            out[o] = (unsigned char)(a << 2 | b >> 4);
        o += 1;
    } else if (rem == 3) {
        int a = b64v((unsigned char)in[i]), b = b64v((unsigned char)in[i + 1]);
        int c = b64v((unsigned char)in[i + 2]);
        if ((a | b | c) < 0 || (c & 0x03) != 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        if (out) {
            out[o] = (unsigned char)(v >> 16);
            out[o + 1] = (unsigned char)(v >> 8);
        }
        o += 2;
    }
    return (long)o;
}

int m8_b64url_encode(m8_buf *out, const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int rc = m8_buf_reserve(out, (n + 2) / 3 * 4 + 1);
    if (rc)
        return rc;
    char *p = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
        *p++ = abc[(v >> 6) & 63];
        *p++ = abc[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
        *p++ = abc[(v >> 6) & 63];
    }
    out->len = (size_t)(p - out->data);
    out->data[out->len] = '\0';
    return 0;
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
 * in strings; both are refused here (SIZE_MAX), which also keeps this scan's
 * idea of where strings are the same as the parser's. */
enum { J_PLAIN, J_QUOTE, J_BACKSLASH, J_COLON, J_APOS, J_CTL };

/* The bytes text_members looks at; every other byte is J_PLAIN. */
/* clang-format off */
static const unsigned char jclass[256] = {
    [0] = J_CTL, [1] = J_CTL, [2] = J_CTL, [3] = J_CTL, [4] = J_CTL, [5] = J_CTL,
    [6] = J_CTL, [7] = J_CTL, [8] = J_CTL, [9] = J_CTL, [10] = J_CTL, [11] = J_CTL,
    [12] = J_CTL, [13] = J_CTL, [14] = J_CTL, [15] = J_CTL, [16] = J_CTL, [17] = J_CTL,
    [18] = J_CTL, [19] = J_CTL, [20] = J_CTL, [21] = J_CTL, [22] = J_CTL, [23] = J_CTL,
    [24] = J_CTL, [25] = J_CTL, [26] = J_CTL, [27] = J_CTL, [28] = J_CTL, [29] = J_CTL,
    [30] = J_CTL, [31] = J_CTL,
    ['"'] = J_QUOTE, ['\\'] = J_BACKSLASH, [':'] = J_COLON, ['\''] = J_APOS,
};
/* clang-format on */

static size_t text_members(const unsigned char *p, size_t n)
{
    size_t colons = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = jclass[p[i]];
        if (c == J_PLAIN)
            continue;
        if (in_str) {
            if (c == J_CTL)
                return SIZE_MAX;
            if (c == J_BACKSLASH)
                i++;
            else if (c == J_QUOTE)
                in_str = false;
        } else if (c == J_QUOTE) {
            in_str = true;
        } else if (c == J_COLON) {
            colons++;
        } else if (c == J_APOS) {
            return SIZE_MAX;
        }
    }
    return colons;
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
        t->tok = m8_json_tokener_new(M8_MAX_JWT_DEPTH);
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
 * one per part. */
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
    struct json_object *o = json_parse(p, n);
    if (!o || !json_object_is_type(o, json_type_object) || text_members(p, n) != tree_members(o)) {
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
    memset(j, 0, sizeof *j);
}

m8_jwt_reason m8_jws_parse(const char *tok, size_t len, m8_jws *j)
{
    memset(j, 0, sizeof *j);
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
    if (m8_b64url_decode(j->payload_b64, j->payload_b64_len, NULL, M8_MAX_JWT_PART_BYTES) <= 0)
        goto invalid;
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
    unsigned char part[M8_MAX_JWT_PART_BYTES];
    long n = m8_b64url_decode(j->payload_b64, j->payload_b64_len, part, sizeof part);
    if (n <= 0)
        return M8_JWT_INVALID;
    j->payload = parse_object(part, (size_t)n);
    sodium_memzero(part, (size_t)n);
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
    const char *want = alg_name(expected);
    return j && j->alg && want && strcmp(j->alg, want) == 0;
}

m8_jwt_reason m8_jws_verify(const m8_jws *j, m8_alg expected, const m8_key *key)
{
    const char *want = alg_name(expected);
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

/* ---- claims ---- */

/* The claims this module reads, found in one pass over the payload's
 * members instead of a hash lookup per check (a third of the claims time). */
/* clang-format off */
enum {
    C_EXP, C_SUB, C_JTI, C_TYPE, C_IAT, C_NBF, /* the required claims, in profile order */
    C_ISS, C_AUD, C_EMAIL, C_FULL_NAME, C_AVATAR, C_IS_ACTIVE, C_EMAIL_VERIFIED, C_IS_SUPERUSER,
    C_ROLE, C_TENANT_ID, C_COUNT
};

static const char *const claim_names[C_COUNT] = {
    "exp",  "sub",       "jti",    "type",      "iat",            "nbf",
    "iss",  "aud",       "email",  "full_name", "avatar",         "is_active",
    "email_verified", "is_superuser", "role", "tenant_id",
};
/* clang-format on */

typedef struct claim_ix {
    bool has[C_COUNT];
    struct json_object *v[C_COUNT]; /* NULL for JSON null */
} claim_ix;

static void claims_index(struct json_object *pl, claim_ix *ix)
{
    memset(ix, 0, sizeof *ix);
    json_object_object_foreach(pl, k, v)
    {
        for (size_t i = 0; i < C_COUNT; i++) {
            const char *name = claim_names[i];
            if (k[0] == name[0] && k[1] == name[1] && strcmp(k, name) == 0) {
                ix->has[i] = true; /* names are unique: duplicates were refused */
                ix->v[i] = v;
                break;
            }
        }
    }
}

/* A time claim: 1 with the value truncated toward zero (Python int()), 0
 * when absent, -1 when it is not a JSON number (null included) [C]. */
static int time_claim(const claim_ix *ix, int c, long long *out, bool *fraction)
{
    struct json_object *v = ix->v[c];
    if (!ix->has[c])
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v); /* a uint64 past INT64_MAX saturates */
        if (fraction)
            *fraction = false;
        return 1;
    }
    if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        if (!isfinite(d))
            return -1;
        double t = trunc(d);
        if (fraction)
            *fraction = t != d;
        if (t >= 9.2e18)
            *out = INT64_MAX;
        else if (t <= -9.2e18)
            *out = INT64_MIN;
        else
            *out = (long long)t;
        return 1;
    }
    return -1;
}

/* A string claim without NUL bytes and at most max bytes: 1 (in *out, and
 * its length in *len when given), 0 absent, -1 otherwise. */
static int string_claim(const claim_ix *ix, int c, size_t max, const char **out, size_t *len)
{
    struct json_object *v = ix->v[c];
    if (!ix->has[c])
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n > max || memchr(s, '\0', n))
        return -1;
    *out = s;
    if (len)
        *len = n;
    return 1;
}

static bool set(const char *s)
{
    return s && *s;
}

static bool json_str_eq(struct json_object *v, const char *s)
{
    size_t n = strlen(s);
    return json_object_is_type(v, json_type_string) && (size_t)json_object_get_string_len(v) == n &&
           memcmp(json_object_get_string(v), s, n) == 0;
}

/* A 36-character 8-4-4-4-12 hexadecimal UUID (the issuer's str(uuid)). */
static bool is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                     (s[i] >= 'A' && s[i] <= 'F'))) {
            return false;
        }
    }
    return true;
}

static bool atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
        return true;
    return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

/* E-mail syntax after the rules of python email-validator (no quoted local
 * parts, no domain literals, no deliverability check): a dot-atom local
 * part of at most 64 bytes, a domain of at least two labels (letters,
 * digits, hyphens, or UTF-8 for IDNs), an ASCII top-level label ending in a
 * letter, not a special-use domain; at most 254 bytes in all. */
static bool is_email(const char *s, size_t n)
{
    const char *at = n ? memchr(s, '@', n) : NULL;
    if (!at || n > 254)
        return false;
    size_t local = (size_t)(at - s), dlen = n - local - 1;
    if (local == 0 || local > 64 || dlen == 0 || dlen > 253)
        return false;
    for (size_t i = 0; i < local; i++) {
        if (s[i] == '.') {
            if (i == 0 || i == local - 1 || s[i - 1] == '.')
                return false;
        } else if (!atext((unsigned char)s[i])) {
            return false;
        }
    }
    const char *d = at + 1;
    size_t labels = 0, start = 0;
    for (size_t i = 0; i <= dlen; i++) {
        if (i == dlen || d[i] == '.') {
            size_t ll = i - start;
            if (ll == 0 || ll > 63 || d[start] == '-' || d[i - 1] == '-')
                return false;
            labels++;
            start = i + 1;
            continue;
        }
        unsigned char c = (unsigned char)d[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c >= 0x80))
            return false;
    }
    static const char *const special[] = {"arpa", "invalid", "local", "localhost", "onion", "test"};
    const char *tld = d + dlen;
    while (tld > d && tld[-1] != '.')
        tld--;
    size_t tlen = (size_t)(d + dlen - tld);
    bool ascii = true;
    for (size_t i = 0; i < tlen; i++)
        ascii = ascii && (unsigned char)tld[i] < 0x80;
    /* An ASCII top-level domain ends in a letter (so never all digits). */
    char last = d[dlen - 1];
    if (labels < 2 || (ascii && !((last >= 'a' && last <= 'z') || (last >= 'A' && last <= 'Z'))))
        return false;
    for (size_t i = 0; i < M8_ARRAY_LEN(special); i++) {
        if (m8_memcaseeq(tld, tlen, special[i]))
            return false;
    }
    return true;
}

static const char *const roles[] = {"superadmin", "admin", "writer", "reader", "user"};

int m8_role_rank(const char *role)
{
    if (!role)
        return -1;
    for (size_t i = 0; i < M8_ARRAY_LEN(roles); i++) {
        if (strcmp(role, roles[i]) == 0)
            return (int)i;
    }
    return -1;
}

bool m8_role_at_least(const char *current, const char *required)
{
    int c = m8_role_rank(current), r = m8_role_rank(required);
    return c >= 0 && r >= 0 && c <= r;
}

void m8_principal_clear(m8_principal *p)
{
    if (!p)
        return;
    free(p->mem);
    memset(p, 0, sizeof *p);
}

/* A bool claim: JSON true/false only [C narrowing of pydantic's lax bool]. */
static bool bool_claim(const claim_ix *ix, int c, bool dflt, bool *out)
{
    *out = dflt;
    if (!ix->has[c])
        return true;
    if (!json_object_is_type(ix->v[c], json_type_boolean))
        return false;
    *out = json_object_get_boolean(ix->v[c]);
    return true;
}

typedef struct span {
    const char *p;
    size_t n;
} span;

/* A "string or null" claim: its bytes in *out (NULL for null/absent);
 * false when it is another type or holds a NUL. */
static bool opt_string(const claim_ix *ix, int c, span *out)
{
    out->p = NULL;
    out->n = 0;
    if (!ix->has[c] || !ix->v[c])
        return true;
    return string_claim(ix, c, M8_MAX_JWT_PART_BYTES, &out->p, &out->n) == 1;
}

/* The principal's strings, in the order of m8_principal. */
enum { P_ID, P_EMAIL, P_FULL_NAME, P_AVATAR, P_ROLE, P_TENANT_ID, P_JTI, P_COUNT };

/* Copies the strings into one block owned by p->mem (one allocation per
 * principal instead of seven); lowered[i] lower-cases ASCII letters. */
static bool principal_strings(m8_principal *p, const span *v, const bool *lowered)
{
    size_t total = 0;
    for (size_t i = 0; i < P_COUNT; i++)
        total += v[i].p ? v[i].n + 1 : 0;
    char *mem = malloc(total ? total : 1), *at = mem;
    if (!mem)
        return false;
    char **field[P_COUNT] = {&p->id,   &p->email,     &p->full_name, &p->avatar,
                             &p->role, &p->tenant_id, &p->jti};
    for (size_t i = 0; i < P_COUNT; i++) {
        *field[i] = NULL;
        if (!v[i].p)
            continue;
        *field[i] = at;
        for (size_t k = 0; k < v[i].n; k++) {
            char ch = v[i].p[k];
            at[k] = lowered[i] && ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
        }
        at[v[i].n] = '\0';
        at += v[i].n + 1;
    }
    p->mem = mem;
    return true;
}

/* Step 13: the claims model (A 3.5, B 7.3) and the privilege invariant. */
static m8_jwt_reason claims_model(const claim_ix *ix, m8_principal *p)
{
    static const bool lowered[P_COUNT] = {[P_ID] = true, [P_EMAIL] = true, [P_TENANT_ID] = true};
    span v[P_COUNT] = {{0}};

    /* sub and jti are strings (step 11); sub must be a UUID. */
    if (string_claim(ix, C_SUB, 36, &v[P_ID].p, &v[P_ID].n) != 1 || !is_uuid(v[P_ID].p, v[P_ID].n))
        return M8_JWT_INVALID_PAYLOAD;
    if (string_claim(ix, C_JTI, M8_MAX_JWT_PART_BYTES, &v[P_JTI].p, &v[P_JTI].n) != 1)
        return M8_JWT_INVALID_PAYLOAD;

    const char *s = NULL;
    size_t n = 0;
    if (string_claim(ix, C_EMAIL, M8_MAX_JWT_PART_BYTES, &s, &n) != 1)
        return M8_JWT_INVALID_PAYLOAD;
    n = m8_trim(&s, n);
    if (!is_email(s, n))
        return M8_JWT_INVALID_PAYLOAD;
    v[P_EMAIL].p = s;
    v[P_EMAIL].n = n;

    if (!opt_string(ix, C_FULL_NAME, &v[P_FULL_NAME]) || !opt_string(ix, C_AVATAR, &v[P_AVATAR]))
        return M8_JWT_INVALID_PAYLOAD;
    if (!bool_claim(ix, C_IS_ACTIVE, true, &p->is_active) ||
        !bool_claim(ix, C_EMAIL_VERIFIED, false, &p->email_verified) ||
        !bool_claim(ix, C_IS_SUPERUSER, false, &p->is_superuser))
        return M8_JWT_INVALID_PAYLOAD;

    v[P_ROLE].p = "user";
    v[P_ROLE].n = 4;
    if (ix->has[C_ROLE] && (string_claim(ix, C_ROLE, 16, &v[P_ROLE].p, &v[P_ROLE].n) != 1 ||
                            m8_role_rank(v[P_ROLE].p) < 0))
        return M8_JWT_INVALID_PAYLOAD;

    if (ix->has[C_TENANT_ID] && ix->v[C_TENANT_ID]) {
        span *t = &v[P_TENANT_ID];
        if (string_claim(ix, C_TENANT_ID, 36, &t->p, &t->n) != 1 || !is_uuid(t->p, t->n))
            return M8_JWT_INVALID_PAYLOAD;
    }

    /* exp: integer or null in the model; a fractional float is refused. */
    bool fraction = false;
    if (ix->has[C_EXP] && ix->v[C_EXP] &&
        (time_claim(ix, C_EXP, &p->exp, &fraction) != 1 || fraction))
        return M8_JWT_INVALID_PAYLOAD;

    /* The privilege invariant: superadmin iff is_superuser. */
    if ((strcmp(v[P_ROLE].p, "superadmin") == 0) != p->is_superuser)
        return M8_JWT_INCONSISTENT_PRIVILEGE;
    return principal_strings(p, v, lowered) ? M8_JWT_OK : M8_JWT_INVALID_PAYLOAD;
}

m8_jwt_reason m8_claims_check(const m8_jws *j, const m8_claims_policy *policy, double now,
                              m8_principal *out)
{
    m8_principal p;
    memset(&p, 0, sizeof p);
    if (out)
        memset(out, 0, sizeof *out);
    /* Step 4: the payload is a JSON object (m8_jws_parse_payload). */
    struct json_object *pl = j ? j->payload : NULL;
    if (!pl || !policy || !isfinite(now))
        return M8_JWT_INVALID;
    bool strict = policy->strict;
    double leeway = strict ? 2.0 : 5.0;
    claim_ix ix;
    claims_index(pl, &ix);

    /* Step 5: required claims, present and not null (C_EXP..C_NBF). */
    size_t nreq = strict ? 6 : 4;
    for (size_t i = 0; i < nreq; i++) {
        if (!ix.has[i] || !ix.v[i])
            return M8_JWT_INVALID;
    }

    /* Steps 6-8: iat and nbf (not yet valid) before exp (expired). */
    long long iat = 0, nbf = 0, exp = 0;
    int has_iat = time_claim(&ix, C_IAT, &iat, NULL);
    if (has_iat < 0 || (has_iat && (double)iat > now + leeway))
        return M8_JWT_INVALID;
    int has_nbf = time_claim(&ix, C_NBF, &nbf, NULL);
    if (has_nbf < 0 || (has_nbf && (double)nbf > now + leeway))
        return M8_JWT_INVALID;
    int has_exp = time_claim(&ix, C_EXP, &exp, NULL);
    if (has_exp < 0)
        return M8_JWT_INVALID;
    if (has_exp && (double)exp <= now - leeway)
        return M8_JWT_EXPIRED;

    /* Step 9: iss, exactly. */
    if (strict || set(policy->issuer)) {
        if (!set(policy->issuer) || !ix.has[C_ISS] || !json_str_eq(ix.v[C_ISS], policy->issuer))
            return M8_JWT_INVALID;
    }

    /* Step 10: aud, a non-empty string or a non-empty list of strings that
     * contains ours. */
    if (strict || set(policy->audience)) {
        struct json_object *v = ix.v[C_AUD];
        if (!set(policy->audience) || !v)
            return M8_JWT_INVALID;
        if (json_object_is_type(v, json_type_string)) {
            if (!json_str_eq(v, policy->audience))
                return M8_JWT_INVALID;
        } else if (json_object_is_type(v, json_type_array)) {
            size_t n = json_object_array_length(v);
            bool found = false;
            if (n == 0)
                return M8_JWT_INVALID;
            for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(v, i);
                if (!json_object_is_type(e, json_type_string))
                    return M8_JWT_INVALID;
                found = found || json_str_eq(e, policy->audience);
            }
            if (!found)
                return M8_JWT_INVALID;
        } else {
            return M8_JWT_INVALID;
        }
    }

    /* Step 11: sub and jti are strings. */
    if ((ix.has[C_SUB] && !json_object_is_type(ix.v[C_SUB], json_type_string)) ||
        (ix.has[C_JTI] && !json_object_is_type(ix.v[C_JTI], json_type_string)))
        return M8_JWT_INVALID;

    /* Step 12: an access token. */
    if (!ix.has[C_TYPE] || !json_str_eq(ix.v[C_TYPE], "access"))
        return M8_JWT_WRONG_TYPE;

    /* Step 13: the claims model. */
    m8_jwt_reason r = claims_model(&ix, &p);
    if (r != M8_JWT_OK) {
        m8_principal_clear(&p);
        return r;
    }
    p.iat = has_iat ? iat : 0;
    if (out)
        *out = p;
    else
        m8_principal_clear(&p);
    return M8_JWT_OK;
}
