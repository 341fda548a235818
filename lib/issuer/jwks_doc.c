/* jwks_doc.c - the issuer's JWKS body, ETag, Cache-Control and
 * If-None-Match (jwks_doc.h, doc/issuer.md#tokens-and-jwks).  The body is
 * what Python's json.dumps(sort_keys=True, separators=(",", ":"),
 * ensure_ascii=False) writes for PyJWT's to_jwk plus use, alg and kid. */
#include "issuer/jwks_doc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include <openssl/evp.h>

#include "auth/alg.h"
#include "issuer/mint.h" /* m8_pyjson_str */

/* Members of one object at most (a JWK has seven). */
#define MAX_MEMBERS 32
#define MAX_DEPTH 4

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends v as compact JSON with object members sorted by name (strcmp
 * order is code-point order for UTF-8).  Only what a JWKS holds: objects,
 * arrays, strings, integers, booleans, null. */
static int put_sorted(m8_buf *b, json_object *v, int depth)
{
    if (depth > MAX_DEPTH)
        return M8_EINVAL;
    switch (json_object_get_type(v)) {
    case json_type_null: return m8_buf_puts(b, "null");
    case json_type_boolean: return m8_buf_puts(b, json_object_get_boolean(v) ? "true" : "false");
    case json_type_int: return m8_buf_printf(b, "%lld", (long long)json_object_get_int64(v));
    case json_type_string:
        return m8_pyjson_str(b, json_object_get_string(v), (size_t)json_object_get_string_len(v),
                             false);
    case json_type_array: {
        int rc = m8_buf_putc(b, '[');
        size_t n = json_object_array_length(v);
        for (size_t i = 0; !rc && i < n; i++) {
            if (i)
                rc = m8_buf_putc(b, ',');
            if (!rc)
                rc = put_sorted(b, json_object_array_get_idx(v, i), depth + 1);
        }
        return rc ? rc : m8_buf_putc(b, ']');
    }
    case json_type_object: {
        const char *names[MAX_MEMBERS];
        size_t n = 0;
        json_object_object_foreach(v, name, member)
        {
            (void)member;
            if (n == MAX_MEMBERS)
                return M8_EINVAL;
            names[n++] = name;
        }
        qsort(names, n, sizeof names[0], cmp_names);
        int rc = m8_buf_putc(b, '{');
        for (size_t i = 0; !rc && i < n; i++) {
            if (i)
                rc = m8_buf_putc(b, ',');
            if (!rc)
                rc = m8_pyjson_str(b, names[i], strlen(names[i]), false);
            if (!rc)
                rc = m8_buf_putc(b, ':');
            if (!rc)
                rc = put_sorted(b, json_object_object_get(v, names[i]), depth + 1);
        }
        return rc ? rc : m8_buf_putc(b, '}');
    }
    default: return M8_EINVAL; /* doubles: a JWK has none */
    }
}

/* The JWK of pk for alg with use, alg, kid (and key_ops for RSA, as
 * PyJWT's RSAAlgorithm.to_jwk writes it), or NULL with err. */
static json_object *jwk_for(m8_alg alg, const EVP_PKEY *pk, const char *kid, char *err,
                            size_t errlen)
{
    bool rsa = EVP_PKEY_is_a(pk, "RSA");
    if ((alg == M8_ALG_RS256 && !rsa) || (alg == M8_ALG_ES256 && !EVP_PKEY_is_a(pk, "EC"))) {
        snprintf(err, errlen, "%s needs an %s public key", m8_alg_name(alg),
                 alg == M8_ALG_RS256 ? "RSA" : "EC P-256");
        return NULL;
    }
    char derived[M8_JWK_KID_LEN + 1];
    if (!kid || !kid[0]) {
        if (m8_jwk_kid(pk, derived) != 0) {
            snprintf(err, errlen, "cannot derive the kid of the key");
            return NULL;
        }
        kid = derived;
    }
    json_object *k = m8_jwk_export(pk, kid, err, errlen);
    if (!k)
        return NULL;
    json_object_object_add(k, "alg", json_object_new_string(m8_alg_name(alg)));
    if (rsa) {
        json_object *ops = json_object_new_array();
        if (!ops || json_object_array_add(ops, json_object_new_string("verify")) != 0 ||
            json_object_object_add(k, "key_ops", ops) != 0) {
            json_object_put(ops);
            json_object_put(k);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
    }
    return k;
}

int m8_jwks_doc_build(m8_alg alg, const EVP_PKEY *current, const char *kid, const EVP_PKEY *old,
                      const char *old_kid, m8_jwks_doc *out, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!out)
        return M8_EINVAL;
    memset(out, 0, sizeof *out);
    json_object *keys = json_object_new_array();
    if (!keys) {
        snprintf(err, errlen, "out of memory");
        return M8_ENOMEM;
    }
    int rc = 0;
    if (alg != M8_ALG_HS256 && current) {
        const EVP_PKEY *pks[2] = {current, old};
        const char *kids[2] = {kid, old_kid};
        for (size_t i = 0; !rc && i < 2 && pks[i]; i++) {
            json_object *k = jwk_for(alg, pks[i], kids[i], err, errlen);
            if (!k)
                rc = M8_EINVAL;
            else
                json_object_array_add(keys, k);
        }
    } else if (alg != M8_ALG_HS256 && old) {
        snprintf(err, errlen, "an old key without a current key");
        rc = M8_EINVAL;
    }
    m8_buf b;
    m8_buf_init(&b, M8_MAX_JWKS_BYTES);
    if (!rc)
        rc = m8_buf_puts(&b, "{\"keys\":");
    if (!rc)
        rc = put_sorted(&b, keys, 0);
    if (!rc)
        rc = m8_buf_putc(&b, '}');
    json_object_put(keys);
    if (rc) {
        if (!err[0])
            snprintf(err, errlen, "%s", rc == M8_ENOMEM ? "out of memory" : "cannot serialise");
        m8_buf_free(&b);
        return rc;
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)b.data, b.len);
    out->etag[0] = '"';
    sodium_bin2hex(out->etag + 1, sizeof out->etag - 1, h, sizeof h);
    out->etag[M8_JWKS_ETAG_LEN - 1] = '"';
    out->etag[M8_JWKS_ETAG_LEN] = '\0';
    out->body_len = b.len;
    out->body = m8_buf_steal(&b);
    return 0;
}

void m8_jwks_doc_clear(m8_jwks_doc *d)
{
    if (!d)
        return;
    free(d->body);
    memset(d, 0, sizeof *d);
}

int m8_jwks_cache_control(long long ttl_seconds, char *out, size_t cap)
{
    int n = snprintf(out, cap, "public, max-age=%lld", ttl_seconds > 0 ? ttl_seconds : 0);
    return n < 0 || (size_t)n >= cap ? M8_ETOOBIG : 0;
}

/* Whitespace as Python's str.strip() sees it in a header decoded as
 * Latin-1 (ASCII controls 0x09-0x0d and 0x1c-0x1f, space, NEL, NBSP). */
static bool py_space(unsigned char c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85 ||
           c == 0xa0;
}

static void strip(const char **p, size_t *n)
{
    while (*n && py_space((unsigned char)**p))
        (*p)++, (*n)--;
    while (*n && py_space((unsigned char)(*p)[*n - 1]))
        (*n)--;
}

bool m8_jwks_if_none_match(const char *h, size_t len, const char *etag)
{
    if (!h || !len || !etag)
        return false;
    size_t el = strlen(etag);
    const char *end = h + len;
    for (const char *p = h; p <= end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *c = p;
        size_t n = (size_t)(stop - p);
        strip(&c, &n);
        if (n == 1 && c[0] == '*')
            return true;
        if (n >= 2 && (c[0] == 'W' || c[0] == 'w') && c[1] == '/') {
            c += 2, n -= 2;
            strip(&c, &n);
        }
        if (n == el && memcmp(c, etag, n) == 0)
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}
