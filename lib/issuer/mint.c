/* mint.c - access and refresh tokens as fa-auth-m8 mints them, and the
 * refresh-token check (mint.h, doc/issuer.md#tokens-and-jwks).  The JSON is
 * written here rather than by json-c so that member order and escaping
 * match PyJWT's json.dumps byte for byte. */
#include "issuer/mint.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "auth/alg.h"
#include "auth/jwk_export.h"
#include "auth/jwt.h"

/* ---- JSON strings as json.dumps writes them ---- */

/* The code point of the UTF-8 sequence at p (n bytes available) and its
 * length, or 0 for an invalid sequence (as Python's strict decoder: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned c = p[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

static int put_u16(m8_buf *b, uint32_t u)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', 'u', hex[u >> 12 & 15], hex[u >> 8 & 15], hex[u >> 4 & 15], hex[u & 15]};
    return m8_buf_append(b, e, sizeof e);
}

int m8_pyjson_str(m8_buf *b, const char *s, size_t n, bool ascii)
{
    if (!b || (!s && n))
        return M8_EINVAL;
    size_t start = b->len;
    const unsigned char *p = (const unsigned char *)s;
    int rc = m8_buf_putc(b, '"');
    size_t i = 0;
    while (!rc && i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            rc = m8_buf_append(b, s + i, run - i);
            i = run;
            continue;
        }
        unsigned c = p[i];
        if (c == 0x7f && !ascii) {
            rc = m8_buf_putc(b, (char)c);
            i++;
        } else if (c < 0x80) {
            const char *e = c == '"'    ? "\\\""
                            : c == '\\' ? "\\\\"
                            : c == '\b' ? "\\b"
                            : c == '\f' ? "\\f"
                            : c == '\n' ? "\\n"
                            : c == '\r' ? "\\r"
                            : c == '\t' ? "\\t"
                                        : NULL;
            rc = e ? m8_buf_puts(b, e) : put_u16(b, c);
            i++;
        } else {
            uint32_t cp = 0;
            size_t len = utf8_decode(p + i, n - i, &cp);
            if (!len)
                rc = M8_EINVAL;
            else if (!ascii)
                rc = m8_buf_append(b, s + i, len);
            else if (cp < 0x10000)
                rc = put_u16(b, cp);
            else if (!(rc = put_u16(b, 0xd800 | ((cp - 0x10000) >> 10))))
                rc = put_u16(b, 0xdc00 | ((cp - 0x10000) & 0x3ff));
            i += len;
        }
    }
    if (!rc)
        rc = m8_buf_putc(b, '"');
    if (rc) {
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
    }
    return rc;
}

bool m8_uuid_canon(const char *s, size_t n, char out[M8_UUID_STR_LEN + 1])
{
    if (!s || n != M8_UUID_STR_LEN)
        return false;
    char tmp[M8_UUID_STR_LEN + 1];
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (c >= 'A' && c <= 'F') {
            c = (char)(c - 'A' + 'a');
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
        tmp[i] = c;
    }
    tmp[n] = '\0';
    if (out)
        memcpy(out, tmp, sizeof tmp);
    return true;
}

/* ---- minting ---- */

/* now and a lifetime in minutes give a valid exp. */
static bool times_ok(long long now, long long minutes)
{
    return now >= 0 && now <= LLONG_MAX / 2 && minutes >= 0 && minutes <= M8_MINT_MAX_MINUTES;
}

/* Appends ,"name": then s as an ASCII-escaped JSON string, or null for NULL. */
static int put_member(m8_buf *b, const char *name, const char *s)
{
    int rc = m8_buf_printf(b, ",\"%s\":", name);
    if (!rc)
        rc = s ? m8_pyjson_str(b, s, strlen(s), true) : m8_buf_puts(b, "null");
    return rc;
}

static int put_bool(m8_buf *b, const char *name, bool v)
{
    return m8_buf_printf(b, ",\"%s\":%s", name, v ? "true" : "false");
}

/* Signs header and payload and appends the compact token to out, or leaves
 * out as it was. */
static int sign_into(const m8_sign_key *k, const m8_buf *h, const m8_buf *p, m8_buf *out)
{
    if (p->len > M8_MAX_JWT_PART_BYTES || h->len > M8_MAX_JWT_PART_BYTES)
        return M8_ETOOBIG;
    m8_buf tok;
    m8_buf_init(&tok, M8_MINT_MAX_TOKEN);
    int rc = m8_jws_sign(k, h->data, h->len, p->data, p->len, &tok);
    if (!rc)
        rc = m8_buf_append(out, tok.data, tok.len);
    m8_buf_free(&tok);
    return rc;
}

/* The payload claims of u into p (the caller has checked u). */
static int access_payload(m8_buf *p, const m8_mint_access_cfg *cfg, const m8_mint_user *u,
                          const char *sub, const char *tenant, long long now, const char *jti,
                          const m8_mint_claim *extra, size_t nextra)
{
    int rc = m8_buf_puts(p, "{\"email\":");
    if (!rc)
        rc = m8_pyjson_str(p, u->email, strlen(u->email), true);
    if (!rc)
        rc = put_member(p, "full_name", u->full_name);
    if (!rc)
        rc = put_member(p, "avatar", u->avatar);
    if (!rc)
        rc = put_bool(p, "is_active", u->is_active);
    if (!rc)
        rc = put_bool(p, "email_verified", u->email_verified);
    if (!rc)
        rc = put_bool(p, "is_superuser", u->is_superuser);
    if (!rc)
        rc = put_member(p, "role", u->role);
    if (!rc)
        rc = put_member(p, "tenant_id", tenant);
    if (!rc)
        rc = m8_buf_printf(p,
                           ",\"sub\":\"%s\",\"type\":\"access\",\"exp\":%lld,\"iat\":%lld,"
                           "\"nbf\":%lld,\"jti\":\"%s\"",
                           sub, now + cfg->expire_minutes * 60, now, now, jti);
    if (!rc && cfg->issuer && cfg->issuer[0])
        rc = put_member(p, "iss", cfg->issuer);
    if (!rc && cfg->audience && cfg->audience[0])
        rc = put_member(p, "aud", cfg->audience);
    for (size_t i = 0; !rc && i < nextra; i++)
        rc = put_member(p, extra[i].name, extra[i].value);
    if (!rc)
        rc = m8_buf_putc(p, '}');
    return rc;
}

/* An extra claim's name: a lower-case identifier that no standard claim
 * of the access token uses. */
static bool extra_name_ok(const char *n)
{
    static const char *const taken[] = {
        "email",        "full_name", "avatar",    "is_active", "email_verified",
        "is_superuser", "role",      "tenant_id", "sub",       "type",
        "exp",          "iat",       "nbf",       "jti",       "iss",
        "aud"};
    size_t len = n ? strlen(n) : 0;
    if (len == 0 || len > 32 || strspn(n, "abcdefghijklmnopqrstuvwxyz_") != len)
        return false;
    for (size_t i = 0; i < M8_ARRAY_LEN(taken); i++) {
        if (strcmp(n, taken[i]) == 0)
            return false;
    }
    return true;
}

int m8_mint_access(const m8_mint_access_cfg *cfg, const m8_mint_user *u, long long now,
                   const char *jti, char jti_out[M8_UUID_STR_LEN + 1], m8_buf *out)
{
    return m8_mint_access_extra(cfg, u, NULL, 0, now, jti, jti_out, out);
}

int m8_mint_access_extra(const m8_mint_access_cfg *cfg, const m8_mint_user *u,
                         const m8_mint_claim *extra, size_t nextra, long long now, const char *jti,
                         char jti_out[M8_UUID_STR_LEN + 1], m8_buf *out)
{
    if (!cfg || !cfg->key || !u || !out || !times_ok(now, cfg->expire_minutes) ||
        (nextra && !extra) || nextra > M8_MINT_MAX_EXTRA)
        return M8_EINVAL;
    for (size_t i = 0; i < nextra; i++) {
        if (!extra_name_ok(extra[i].name) || !extra[i].value)
            return M8_EINVAL;
    }
    const m8_sign_key *k = cfg->key;
    char sub[M8_UUID_STR_LEN + 1], tenant[M8_UUID_STR_LEN + 1], id[M8_UUID_STR_LEN + 1];
    if (!u->id || !m8_uuid_canon(u->id, strlen(u->id), sub) || !u->email || !u->email[0] ||
        !u->role || m8_role_rank(u->role) < 0 ||
        (u->tenant_id && !m8_uuid_canon(u->tenant_id, strlen(u->tenant_id), tenant)))
        return M8_EINVAL;
    /* The privilege invariant the consumers check (doc/wire.md#roles). */
    if ((strcmp(u->role, "superadmin") == 0) != u->is_superuser)
        return M8_MINT_EPRIVILEGE;
    if (jti) {
        if (!m8_uuid_canon(jti, strlen(jti), id))
            return M8_EINVAL;
    } else {
        m8_jti_new(id);
    }
    char kid[M8_JWK_KID_LEN + 1];
    const char *use_kid = NULL;
    if (k->alg == M8_ALG_RS256 || k->alg == M8_ALG_ES256) {
        if (cfg->kid && cfg->kid[0]) {
            if (strlen(cfg->kid) > M8_MAX_KID_BYTES)
                return M8_EINVAL;
            use_kid = cfg->kid;
        } else if (m8_jwk_kid(k->pkey, kid) == 0) {
            use_kid = kid;
        } else {
            return M8_EINVAL;
        }
    } else if (k->alg != M8_ALG_HS256) {
        return M8_EINVAL;
    }

    m8_buf h, p;
    m8_buf_init(&h, M8_MAX_JWT_PART_BYTES);
    m8_buf_init(&p, M8_MAX_JWT_PART_BYTES);
    int rc = m8_buf_printf(&h, "{\"alg\":\"%s\"", m8_alg_name(k->alg));
    if (!rc && use_kid)
        rc = put_member(&h, "kid", use_kid);
    if (!rc)
        rc = m8_buf_puts(&h, ",\"typ\":\"JWT\"}");
    if (!rc)
        rc = access_payload(&p, cfg, u, sub, u->tenant_id ? tenant : NULL, now, id, extra, nextra);
    if (!rc)
        rc = sign_into(k, &h, &p, out);
    m8_buf_free(&h);
    m8_buf_free(&p);
    if (!rc && jti_out)
        memcpy(jti_out, id, sizeof id);
    return rc;
}

int m8_mint_refresh(const m8_sign_key *key, long long expire_minutes, const char *sub,
                    const char *jti, long long now, m8_buf *out)
{
    char s[M8_UUID_STR_LEN + 1], j[M8_UUID_STR_LEN + 1];
    if (!key || key->alg != M8_ALG_HS256 || !out || !times_ok(now, expire_minutes) || !sub ||
        !jti || !m8_uuid_canon(sub, strlen(sub), s) || !m8_uuid_canon(jti, strlen(jti), j))
        return M8_EINVAL;
    static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    m8_buf h, p;
    m8_buf_init(&h, M8_MAX_JWT_PART_BYTES);
    m8_buf_init(&p, M8_MAX_JWT_PART_BYTES);
    int rc = m8_buf_puts(&h, hdr);
    if (!rc)
        rc = m8_buf_printf(&p, "{\"sub\":\"%s\",\"type\":\"refresh\",\"exp\":%lld,\"jti\":\"%s\"}",
                           s, now + expire_minutes * 60, j);
    if (!rc)
        rc = sign_into(key, &h, &p, out);
    m8_buf_free(&h);
    m8_buf_free(&p);
    return rc;
}

/* ---- the refresh-token check ---- */

const char *m8_refresh_detail(m8_refresh_verdict v)
{
    switch (v) {
    case M8_REFRESH_EXPIRED: return "Refresh token expired";
    case M8_REFRESH_INVALID: return "Invalid refresh token";
    case M8_REFRESH_NOT_REFRESH: return "Not a refresh token";
    default: return NULL;
    }
}

/* A time claim as a number (a JSON integer, or a float truncated toward
 * zero as Python's int() does, clamped); false for any other type. */
static bool time_claim(json_object *v, long long *out, double *raw)
{
    if (json_object_is_type(v, json_type_int)) {
        *out = (long long)json_object_get_int64(v);
        *raw = (double)*out;
        return true;
    }
    if (!json_object_is_type(v, json_type_double))
        return false;
    double d = json_object_get_double(v);
    if (isnan(d))
        return false;
    *raw = d;
    *out = d >= 9.2e18 ? LLONG_MAX : d <= -9.2e18 ? LLONG_MIN : (long long)d;
    return true;
}

/* Python truthiness of a JSON value (null, false, 0, "", [], {} are false). */
static bool truthy(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: return false;
    case json_type_boolean: return json_object_get_boolean(v);
    case json_type_int: return json_object_get_int64(v) != 0;
    case json_type_double: return json_object_get_double(v) != 0.0;
    case json_type_string: return json_object_get_string_len(v) > 0;
    case json_type_array: return json_object_array_length(v) > 0;
    case json_type_object: return json_object_object_length(v) > 0;
    default: return true;
    }
}

/* The claim checks of PyJWT's decode with the required claims, then the
 * type, sub and jti checks of the refresh route. */
static m8_refresh_verdict refresh_claims(json_object *pl, long long now, m8_refresh_claims *out)
{
    static const char *const required[] = {"exp", "sub", "jti", "type"};
    json_object *v = NULL;
    for (size_t i = 0; i < M8_ARRAY_LEN(required); i++)
        if (!json_object_object_get_ex(pl, required[i], &v) || !v)
            return M8_REFRESH_INVALID;
    long long t;
    double raw;
    if (json_object_object_get_ex(pl, "iat", &v) && (!time_claim(v, &t, &raw) || raw > (double)now))
        return M8_REFRESH_INVALID;
    if (json_object_object_get_ex(pl, "nbf", &v) && (!time_claim(v, &t, &raw) || t > now))
        return M8_REFRESH_INVALID;
    json_object_object_get_ex(pl, "exp", &v);
    if (!time_claim(v, &out->exp, &raw))
        return M8_REFRESH_INVALID;
    if (out->exp <= now)
        return M8_REFRESH_EXPIRED;
    if (json_object_object_get_ex(pl, "aud", &v) && truthy(v))
        return M8_REFRESH_INVALID;

    json_object_object_get_ex(pl, "type", &v);
    if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) != 7 ||
        memcmp(json_object_get_string(v), "refresh", 7) != 0)
        return M8_REFRESH_NOT_REFRESH;

    json_object_object_get_ex(pl, "sub", &v);
    if (!json_object_is_type(v, json_type_string) ||
        !m8_uuid_canon(json_object_get_string(v), (size_t)json_object_get_string_len(v), out->sub))
        return M8_REFRESH_INVALID;
    json_object_object_get_ex(pl, "jti", &v);
    size_t jl =
        json_object_is_type(v, json_type_string) ? (size_t)json_object_get_string_len(v) : 0;
    if (jl == 0 || jl > M8_REFRESH_MAX_JTI || memchr(json_object_get_string(v), '\0', jl))
        return M8_REFRESH_INVALID;
    memcpy(out->jti, json_object_get_string(v), jl);
    out->jti[jl] = '\0';
    return M8_REFRESH_OK;
}

static bool hs_key(const m8_sign_key *k)
{
    return k && k->alg == M8_ALG_HS256 && k->hmac;
}

m8_refresh_verdict m8_refresh_verify(const char *tok, size_t len, const m8_sign_key *key,
                                     const m8_sign_key *old_key, long long now,
                                     m8_refresh_claims *out)
{
    if (!out)
        return M8_REFRESH_INVALID;
    memset(out, 0, sizeof *out);
    if (!tok || !hs_key(key) || (old_key && !hs_key(old_key)))
        return M8_REFRESH_INVALID;
    m8_jws j;
    if (m8_jws_parse(tok, len, &j) != M8_JWT_OK)
        return M8_REFRESH_INVALID;
    m8_refresh_verdict v = M8_REFRESH_INVALID;
    bool old = false;
    /* Only a signature that does not match the current key is retried with
     * the old one; an expired token signed with the current key stays
     * expired. */
    if (m8_jws_verify(&j, M8_ALG_HS256, key->hmac) != M8_JWT_OK) {
        if (!old_key || m8_jws_verify(&j, M8_ALG_HS256, old_key->hmac) != M8_JWT_OK)
            goto done;
        old = true;
    }
    if (m8_jws_parse_payload(&j) != M8_JWT_OK)
        goto done;
    v = refresh_claims(j.payload, now, out);
done:
    m8_jws_free(&j);
    if (v != M8_REFRESH_OK)
        memset(out, 0, sizeof *out);
    else
        out->old_key = old;
    return v;
}
