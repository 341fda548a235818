/* jwt.c - JWS compact tokens and access-token claims (jwt.h; CONTRACT.md
 * Part A 3.2-3.6, Part B 7).  No I/O, no clock: the caller passes now. */
#include "jwt.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "json.h"

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

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
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
    size_t o = 0, i = 0;
    for (; i + 4 <= n; i += 4) {
        int a = b64v((unsigned char)in[i]), b = b64v((unsigned char)in[i + 1]);
        int c = b64v((unsigned char)in[i + 2]), d = b64v((unsigned char)in[i + 3]);
        if ((a | b | c | d) < 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        if (out) {
            out[o] = (unsigned char)(v >> 16);
            out[o + 1] = (unsigned char)(v >> 8);
            out[o + 2] = (unsigned char)v;
        }
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
static size_t text_members(const unsigned char *p, size_t n)
{
    size_t colons = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        if (in_str) {
            if (p[i] < 0x20)
                return SIZE_MAX;
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                in_str = false;
        } else if (p[i] == '"') {
            in_str = true;
        } else if (p[i] == ':') {
            colons++;
        } else if (p[i] == '\'') {
            return SIZE_MAX;
        }
    }
    return colons;
}

/* A decoded header or payload: one strict JSON object within
 * M8_MAX_JWT_DEPTH, valid UTF-8, nothing but whitespace after it, no
 * duplicate member names at any level. */
static struct json_object *parse_object(const unsigned char *p, size_t n)
{
    struct json_object *o = m8_json_parse((const char *)p, n, M8_MAX_JWT_DEPTH, NULL, NULL);
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
    const char *end = tok + len;
    if (memchr(d2 + 1, '.', (size_t)(end - d2 - 1)))
        return M8_JWT_INVALID; /* exactly three parts */

    unsigned char part[M8_MAX_JWT_PART_BYTES];
    long hlen = m8_b64url_decode(tok, (size_t)(d1 - tok), part, sizeof part);
    if (hlen <= 0)
        return M8_JWT_INVALID;
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

/* A fresh EVP_MD_CTX per call: reusing one per thread measured no faster
 * (the cost is in EVP_DigestVerifyInit and the public-key operation). */
static bool verify_evp(const m8_jws *j, EVP_PKEY *pkey, const unsigned char *sig, size_t sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return false;
    bool good = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
                EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)j->signing_input,
                                 j->signing_input_len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return good;
}

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
static bool verify_es256(const m8_jws *j, EVP_PKEY *pkey)
{
    unsigned char der[2 + 2 * 35];
    size_t r = der_int(der + 2, j->sig);
    size_t s = der_int(der + 2 + r, j->sig + 32);
    der[0] = 0x30;
    der[1] = (unsigned char)(r + s);
    return verify_evp(j, pkey, der, 2 + r + s);
}

static bool verify_hs256(const m8_jws *j, const m8_key *key)
{
    if (j->sig_len != crypto_auth_hmacsha256_BYTES || !key->secret)
        return false;
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, key->secret, key->secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)j->signing_input,
                                  j->signing_input_len);
    crypto_auth_hmacsha256_final(&st, mac);
    bool good = sodium_memcmp(mac, j->sig, sizeof mac) == 0;
    sodium_memzero(&st, sizeof st);
    sodium_memzero(mac, sizeof mac);
    return good;
}

m8_jwt_reason m8_jws_verify(const m8_jws *j, m8_alg expected, const m8_key *key)
{
    const char *want = alg_name(expected);
    if (!j || !j->header || !key || !want || !j->alg || strcmp(j->alg, want) != 0 ||
        key->alg != expected)
        return M8_JWT_INVALID;
    bool good = false;
    switch (expected) {
    case M8_ALG_HS256: good = verify_hs256(j, key); break;
    case M8_ALG_RS256:
        good = key->pkey && EVP_PKEY_is_a(key->pkey, "RSA") &&
               j->sig_len == (size_t)EVP_PKEY_get_size(key->pkey) &&
               verify_evp(j, key->pkey, j->sig, j->sig_len);
        break;
    case M8_ALG_ES256:
        good = key->pkey && EVP_PKEY_is_a(key->pkey, "EC") && j->sig_len == 64 &&
               verify_es256(j, key->pkey);
        break;
    }
    return good ? M8_JWT_OK : M8_JWT_INVALID;
}

/* ---- claims ---- */

/* A time claim: 1 with the value truncated toward zero (Python int()), 0
 * when absent, -1 when it is not a JSON number (null included) [C]. */
static int time_claim(struct json_object *o, const char *name, long long *out, bool *fraction)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, name, &v))
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

static char *lower_dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++)
        d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    d[n] = '\0';
    return d;
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
    free(p->id);
    free(p->email);
    free(p->full_name);
    free(p->avatar);
    free(p->role);
    free(p->tenant_id);
    free(p->jti);
    memset(p, 0, sizeof *p);
}

/* A bool claim: JSON true/false only [C narrowing of pydantic's lax bool]. */
static bool bool_claim(struct json_object *o, const char *name, bool dflt, bool *out)
{
    struct json_object *v = NULL;
    *out = dflt;
    if (!json_object_object_get_ex(o, name, &v))
        return true;
    if (!json_object_is_type(v, json_type_boolean))
        return false;
    *out = json_object_get_boolean(v);
    return true;
}

/* A "string or null" claim: copied (NULL for null/absent); false when it is
 * another type or holds a NUL. */
static bool opt_string(struct json_object *o, const char *name, char **out)
{
    struct json_object *v = NULL;
    *out = NULL;
    if (!json_object_object_get_ex(o, name, &v) || !v)
        return true;
    const char *s = NULL;
    if (string_member(o, name, M8_MAX_JWT_PART_BYTES, &s) != 1)
        return false;
    *out = strdup(s);
    return *out != NULL;
}

/* Step 13: the claims model (A 3.5, B 7.3) and the privilege invariant. */
static m8_jwt_reason claims_model(struct json_object *pl, m8_principal *p)
{
    const char *s = NULL;
    struct json_object *v = NULL;

    /* sub and jti are strings (step 11); sub must be a UUID. */
    if (string_member(pl, "sub", 36, &s) != 1 || !is_uuid(s, strlen(s)))
        return M8_JWT_INVALID_PAYLOAD;
    if (!(p->id = lower_dup(s, 36)))
        return M8_JWT_INVALID_PAYLOAD;
    if (string_member(pl, "jti", M8_MAX_JWT_PART_BYTES, &s) != 1 || !(p->jti = strdup(s)))
        return M8_JWT_INVALID_PAYLOAD;

    if (string_member(pl, "email", M8_MAX_JWT_PART_BYTES, &s) != 1)
        return M8_JWT_INVALID_PAYLOAD;
    size_t elen = m8_trim(&s, strlen(s));
    if (!is_email(s, elen) || !(p->email = lower_dup(s, elen)))
        return M8_JWT_INVALID_PAYLOAD;

    if (!opt_string(pl, "full_name", &p->full_name) || !opt_string(pl, "avatar", &p->avatar))
        return M8_JWT_INVALID_PAYLOAD;
    if (!bool_claim(pl, "is_active", true, &p->is_active) ||
        !bool_claim(pl, "email_verified", false, &p->email_verified) ||
        !bool_claim(pl, "is_superuser", false, &p->is_superuser))
        return M8_JWT_INVALID_PAYLOAD;

    const char *role = "user";
    if (json_object_object_get_ex(pl, "role", NULL) &&
        (string_member(pl, "role", 16, &role) != 1 || m8_role_rank(role) < 0))
        return M8_JWT_INVALID_PAYLOAD;
    if (!(p->role = strdup(role)))
        return M8_JWT_INVALID_PAYLOAD;

    if (json_object_object_get_ex(pl, "tenant_id", &v) && v) {
        if (string_member(pl, "tenant_id", 36, &s) != 1 || !is_uuid(s, strlen(s)) ||
            !(p->tenant_id = lower_dup(s, 36)))
            return M8_JWT_INVALID_PAYLOAD;
    }

    /* exp: integer or null in the model; a fractional float is refused. */
    bool fraction = false;
    if (json_object_object_get_ex(pl, "exp", &v) && v &&
        (time_claim(pl, "exp", &p->exp, &fraction) != 1 || fraction))
        return M8_JWT_INVALID_PAYLOAD;

    /* The privilege invariant: superadmin iff is_superuser. */
    if ((strcmp(p->role, "superadmin") == 0) != p->is_superuser)
        return M8_JWT_INCONSISTENT_PRIVILEGE;
    return M8_JWT_OK;
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

    /* Step 5: required claims, present and not null. */
    static const char *const required[] = {"exp", "sub", "jti", "type", "iat", "nbf"};
    size_t nreq = strict ? 6 : 4;
    for (size_t i = 0; i < nreq; i++) {
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(pl, required[i], &v) || !v)
            return M8_JWT_INVALID;
    }

    /* Steps 6-8: iat and nbf (not yet valid) before exp (expired). */
    long long iat = 0, nbf = 0, exp = 0;
    int has_iat = time_claim(pl, "iat", &iat, NULL);
    if (has_iat < 0 || (has_iat && (double)iat > now + leeway))
        return M8_JWT_INVALID;
    int has_nbf = time_claim(pl, "nbf", &nbf, NULL);
    if (has_nbf < 0 || (has_nbf && (double)nbf > now + leeway))
        return M8_JWT_INVALID;
    int has_exp = time_claim(pl, "exp", &exp, NULL);
    if (has_exp < 0)
        return M8_JWT_INVALID;
    if (has_exp && (double)exp <= now - leeway)
        return M8_JWT_EXPIRED;

    /* Step 9: iss, exactly. */
    if (strict || set(policy->issuer)) {
        struct json_object *v = NULL;
        if (!set(policy->issuer) || !json_object_object_get_ex(pl, "iss", &v) ||
            !json_str_eq(v, policy->issuer))
            return M8_JWT_INVALID;
    }

    /* Step 10: aud, a non-empty string or a non-empty list of strings that
     * contains ours. */
    if (strict || set(policy->audience)) {
        struct json_object *v = NULL;
        if (!set(policy->audience) || !json_object_object_get_ex(pl, "aud", &v) || !v)
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
    static const char *const strings[] = {"sub", "jti"};
    for (size_t i = 0; i < M8_ARRAY_LEN(strings); i++) {
        struct json_object *v = NULL;
        if (json_object_object_get_ex(pl, strings[i], &v) &&
            !json_object_is_type(v, json_type_string))
            return M8_JWT_INVALID;
    }

    /* Step 12: an access token. */
    struct json_object *type = NULL;
    if (!json_object_object_get_ex(pl, "type", &type) || !json_str_eq(type, "access"))
        return M8_JWT_WRONG_TYPE;

    /* Step 13: the claims model. */
    m8_jwt_reason r = claims_model(pl, &p);
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
