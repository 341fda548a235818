/* form_cc.c - the client-credentials request of the token endpoint
 * (form_cc.h, doc/issuer.md#service-accounts-and-client-credentials): the
 * grant kind of a form, the client's credentials from the form or an HTTP
 * Basic header, and the scope syntax.  Pure: no I/O. */
#include "issuer/form_cc.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

const char *m8_cc_error_name(m8_cc_error e)
{
    switch (e) {
    case M8_CC_INVALID_REQUEST:
    case M8_CC_TOO_LARGE: return "invalid_request";
    case M8_CC_INVALID_CLIENT: return "invalid_client";
    case M8_CC_INVALID_GRANT: return "invalid_grant";
    case M8_CC_UNSUPPORTED_GRANT: return "unsupported_grant_type";
    case M8_CC_INVALID_SCOPE: return "invalid_scope";
    case M8_CC_OK: break;
    }
    return "";
}

static bool is_grant(const m8_form_values *fv, const char *name)
{
    const char *g = fv->v[M8_FORM_GRANT_TYPE];
    size_t n = strlen(name);
    return g && fv->len[M8_FORM_GRANT_TYPE] == n && memcmp(g, name, n) == 0;
}

static void wipe_values(m8_form_values *fv)
{
    for (int f = 0; f < M8_FORM_NFIELDS; f++) {
        if (fv->v[f])
            sodium_memzero(fv->v[f], fv->len[f]);
    }
    memset(fv, 0, sizeof *fv);
}

/* Whether h names the Basic scheme; *rest receives what follows it (the
 * spaces skipped). */
static bool basic_scheme(const char *h, const char **rest)
{
    if (!h || strncasecmp(h, "Basic", 5) != 0 || (h[5] != ' ' && h[5] != '\0'))
        return false;
    h += 5;
    while (*h == ' ')
        h++;
    *rest = h;
    return true;
}

m8_grant_kind m8_cc_grant_kind(m8_arena *a, const char *content_type, const char *body,
                               size_t body_len, size_t max_body, const char *authorization)
{
    m8_form_values fv;
    m8_buf err;
    m8_buf_init(&err, 4096);
    int rc = m8__form_read(a, content_type, body, body_len, max_body, &fv, &err);
    m8_buf_free(&err);
    if (rc != 0)
        return M8_GRANT_PASSWORD;
    const char *rest;
    m8_grant_kind k = M8_GRANT_PASSWORD;
    if (is_grant(&fv, "client_credentials"))
        k = M8_GRANT_CLIENT_CREDENTIALS;
    else if (fv.v[M8_FORM_GRANT_TYPE] && !is_grant(&fv, "password") &&
             (fv.kind[M8_FORM_CLIENT_ID] || basic_scheme(authorization, &rest)))
        k = M8_GRANT_UNSUPPORTED;
    wipe_values(&fv);
    return k;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* application/x-www-form-urlencoded decoding of s[0..n) into the arena,
 * strict: a '%' not followed by two hex digits is M8_EPARSE. */
static int form_decode(m8_arena *a, const char *s, size_t n, char **out, size_t *outn)
{
    char *d = m8_arena_alloc(a, n + 1);
    if (!d)
        return M8_ENOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            d[o++] = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                sodium_memzero(d, n + 1);
                return M8_EPARSE;
            }
            d[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[o++] = (char)c;
        }
    }
    d[o] = '\0';
    *out = d;
    *outn = o;
    return 0;
}

int m8_cc_basic(m8_arena *a, const char *h, char **id, size_t *id_len, char **secret,
                size_t *secret_len)
{
    const char *b64;
    *id = *secret = NULL;
    *id_len = *secret_len = 0;
    if (!basic_scheme(h, &b64))
        return 0;
    size_t n = strnlen(b64, M8_CC_MAX_AUTH_HEADER + 1);
    if (n > M8_CC_MAX_AUTH_HEADER)
        return M8_EPARSE;
    while (n && b64[n - 1] == ' ')
        n--;
    if (n == 0)
        return M8_EPARSE;
    unsigned char raw[M8_CC_MAX_AUTH_HEADER];
    size_t rawn = 0;
    const char *end = NULL;
    int rc = M8_EPARSE;
    if (sodium_base642bin(raw, sizeof raw, b64, n, NULL, &rawn, &end,
                          sodium_base64_VARIANT_ORIGINAL) == 0 &&
        end == b64 + n) {
        const unsigned char *colon = memchr(raw, ':', rawn);
        if (colon) {
            size_t il = (size_t)(colon - raw), sl = rawn - il - 1;
            rc = form_decode(a, (const char *)raw, il, id, id_len);
            if (rc == 0)
                rc = form_decode(a, (const char *)colon + 1, sl, secret, secret_len);
            if (rc == 0 && (*id_len == 0 || *id_len > M8_CC_MAX_CLIENT_ID || *secret_len == 0 ||
                            *secret_len > M8_CC_MAX_SECRET))
                rc = M8_EPARSE;
        }
    }
    sodium_memzero(raw, sizeof raw);
    if (rc != 0) {
        if (*secret)
            sodium_memzero(*secret, *secret_len);
        *id = *secret = NULL;
        *id_len = *secret_len = 0;
        return rc == M8_ENOMEM ? M8_ENOMEM : M8_EPARSE;
    }
    return 1;
}

static bool nqchar(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x5B) || (c >= 0x5D && c <= 0x7E);
}

bool m8_cc_scope_valid(const char *s, size_t n)
{
    if (!s || n == 0 || n > M8_CC_MAX_SCOPE)
        return false;
    bool in_token = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ') {
            if (!in_token)
                return false; /* leading or double space */
            in_token = false;
        } else if (nqchar(c)) {
            in_token = true;
        } else {
            return false;
        }
    }
    return in_token; /* no trailing space */
}

int m8_cc_parse(m8_arena *a, const char *content_type, const char *body, size_t body_len,
                size_t max_body, const char *authorization, m8_cc_request *out)
{
    memset(out, 0, sizeof *out);
    m8_form_values fv;
    m8_buf err;
    m8_buf_init(&err, 4096);
    int rc = m8__form_read(a, content_type, body, body_len, max_body, &fv, &err);
    m8_buf_free(&err);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return rc == 413 ? M8_CC_TOO_LARGE : M8_CC_INVALID_REQUEST;
    int out_rc = M8_CC_OK;
    if (!is_grant(&fv, "client_credentials")) {
        out_rc = fv.v[M8_FORM_GRANT_TYPE] ? M8_CC_UNSUPPORTED_GRANT : M8_CC_INVALID_REQUEST;
        goto done;
    }
    for (int f = 0; f < M8_FORM_NFIELDS; f++) {
        if (fv.kind[f] == 2) { /* a file part where a text field belongs */
            out_rc = M8_CC_INVALID_REQUEST;
            goto done;
        }
    }
    bool in_form = fv.kind[M8_FORM_CLIENT_ID] || fv.kind[M8_FORM_CLIENT_SECRET];
    char *bid = NULL, *bsecret = NULL;
    size_t bidn = 0, bsn = 0;
    int b = m8_cc_basic(a, authorization, &bid, &bidn, &bsecret, &bsn);
    if (b == M8_ENOMEM) {
        out_rc = M8_ENOMEM;
        goto done;
    }
    bool in_header = b != 0;
    if (in_form && in_header) { /* RFC 6749 2.3: one method per request */
        if (bsecret)
            sodium_memzero(bsecret, bsn);
        out_rc = M8_CC_INVALID_REQUEST;
        goto done;
    }
    out->basic = in_header;
    if (in_header) {
        if (b < 0) {
            out_rc = M8_CC_INVALID_CLIENT;
            goto done;
        }
        out->client_id = bid, out->client_id_len = bidn;
        out->client_secret = bsecret, out->client_secret_len = bsn;
    } else {
        const char *id = fv.v[M8_FORM_CLIENT_ID], *sec = fv.v[M8_FORM_CLIENT_SECRET];
        size_t idn = fv.len[M8_FORM_CLIENT_ID], secn = fv.len[M8_FORM_CLIENT_SECRET];
        if (!id || !sec || idn > M8_CC_MAX_CLIENT_ID || secn > M8_CC_MAX_SECRET) {
            out_rc = M8_CC_INVALID_CLIENT;
            goto done;
        }
        out->client_id = fv.v[M8_FORM_CLIENT_ID], out->client_id_len = idn;
        out->client_secret = fv.v[M8_FORM_CLIENT_SECRET], out->client_secret_len = secn;
        fv.v[M8_FORM_CLIENT_ID] = fv.v[M8_FORM_CLIENT_SECRET] = NULL; /* now out's */
    }
    const char *sc = fv.v[M8_FORM_SCOPE];
    size_t scn = fv.len[M8_FORM_SCOPE];
    if (sc && !m8_cc_scope_valid(sc, scn)) {
        out_rc = M8_CC_INVALID_SCOPE;
        goto done;
    }
    out->scope = sc ? sc : "";
    out->scope_len = sc ? scn : 0;
    fv.v[M8_FORM_SCOPE] = NULL; /* not a secret; kept for out */
done:
    wipe_values(&fv);
    if (out_rc != M8_CC_OK)
        m8_cc_wipe(out);
    return out_rc;
}

void m8_cc_wipe(m8_cc_request *r)
{
    if (!r)
        return;
    if (r->client_secret)
        sodium_memzero(r->client_secret, r->client_secret_len);
    if (r->client_id)
        sodium_memzero(r->client_id, r->client_id_len);
    memset(r, 0, sizeof *r);
}
