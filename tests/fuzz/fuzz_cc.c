/* fuzz_cc.c - libFuzzer target for the client-credentials request
 * (lib/issuer/form_cc.c: m8_cc_grant_kind, m8_cc_parse, m8_cc_basic,
 * m8_cc_scope_valid).  The input is an Authorization header up to its first
 * '\n', then the body; the first byte picks the body's content type
 * (urlencoded, multipart with the boundary XyZ, JSON) and whether the header
 * is sent at all.  Every answer must be an OAuth error code or OK with
 * bounded, NUL-terminated fields; Basic parts within their limits; a scope
 * that the syntax check accepts. */
#include "issuer/form_cc.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=XyZ",
        "application/json",
    };
    if (size == 0)
        return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    const char *nl = memchr(in, '\n', n);
    size_t hn = nl ? (size_t)(nl - in) : 0;
    char hdr[2048];
    if (hn >= sizeof hdr)
        hn = sizeof hdr - 1;
    memcpy(hdr, in, hn);
    hdr[hn] = '\0';
    const char *body = nl ? nl + 1 : in;
    size_t blen = nl ? n - (size_t)(nl - in) - 1 : n;
    const char *authz = (data[0] & 4) ? hdr : NULL;
    const char *type = types[(data[0] & 3) % M8_ARRAY_LEN(types)];

    m8_arena a;
    m8_arena_init(&a, 0);
    m8_grant_kind k = m8_cc_grant_kind(&a, type, body, blen, 0, authz);
    if (k != M8_GRANT_PASSWORD && k != M8_GRANT_CLIENT_CREDENTIALS && k != M8_GRANT_UNSUPPORTED)
        abort();

    char *id, *secret;
    size_t idn, sn;
    int b = m8_cc_basic(&a, hdr, &id, &idn, &secret, &sn);
    if (b == 1) {
        if (!id || !secret || idn == 0 || idn > M8_CC_MAX_CLIENT_ID || sn == 0 ||
            sn > M8_CC_MAX_SECRET || id[idn] != '\0' || secret[sn] != '\0')
            abort();
    } else if (b != 0 && b != M8_EPARSE) {
        abort(); /* the arena is unbounded */
    } else if (id || secret) {
        abort(); /* a refusal leaves nothing behind */
    }

    m8_cc_request r;
    int rc = m8_cc_parse(&a, type, body, blen, data[0] & 0x80 ? 64 : 0, authz, &r);
    if (rc == M8_CC_OK) {
        if (k != M8_GRANT_CLIENT_CREDENTIALS)
            abort(); /* parsed as client credentials only when it is one */
        if (!r.client_id || !r.client_secret || !r.scope || r.client_id_len == 0 ||
            r.client_id_len > M8_CC_MAX_CLIENT_ID || r.client_secret_len == 0 ||
            r.client_secret_len > M8_CC_MAX_SECRET || r.client_id[r.client_id_len] != '\0' ||
            r.client_secret[r.client_secret_len] != '\0' || r.scope[r.scope_len] != '\0')
            abort();
        if (r.scope_len && !m8_cc_scope_valid(r.scope, r.scope_len))
            abort();
        if (r.basic != (authz && b != 0))
            abort();
    } else if (rc < M8_CC_INVALID_REQUEST || rc > M8_CC_TOO_LARGE) {
        abort();
    } else if (r.client_id || r.client_secret) {
        abort(); /* a refused request leaves nothing behind */
    } else if (!m8_cc_error_name((m8_cc_error)rc)[0]) {
        abort();
    }
    m8_cc_wipe(&r);
    /* the scope check on raw bytes must agree with its own definition */
    bool v = m8_cc_scope_valid(body, blen);
    if (v && (blen == 0 || blen > M8_CC_MAX_SCOPE || body[0] == ' ' || body[blen - 1] == ' '))
        abort();
    m8_arena_free(&a);
    return 0;
}
