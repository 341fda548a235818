/* fuzz_oidc.c - libFuzzer target for the parsers of SSO (lib/issuer/oidc_parse.c,
 * doc/issuer.md#sso-oidc-and-google).  The first byte picks the parser:
 * the callback's query (m8_oidc_callback_parse), redirect_target against
 * fixed settings (m8_oidc_target_check), the PKCE checks and quote_plus, the
 * discovery document (m8_oidc_discovery_parse), or an ID token payload's
 * claims (m8_oidc_claims_check).  Every answer must stay within its bounds:
 * decoded values NUL-terminated, no control byte, limits kept. */
#include "issuer/oidc.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max)
        abort();
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
    }
}

static void callback(const char *p, size_t n)
{
    static m8_oidc_callback cb;
    if (m8_oidc_callback_parse(p, n, &cb) != 0)
        return;
    check_text(cb.code, M8_OIDC_CODE_MAX);
    check_text(cb.state, M8_OIDC_STATE_MAX);
    check_text(cb.error, M8_OIDC_ERROR_MAX);
    if ((!cb.has_code && cb.code[0]) || (!cb.has_state && cb.state[0]))
        abort();
}

static void target(const char *p, size_t n)
{
    static char *schemes[] = {"chrome-extension://", "https://", "http://"};
    static char *prefixes[] = {"https://app.example.com/cb", "http://127.0.0.1:8080/"};
    m8_settings s;
    memset(&s, 0, sizeof s);
    s.oauth_allowed_redirect_schemes.items = schemes;
    s.oauth_allowed_redirect_schemes.n = 3;
    s.oauth_allowed_redirect_prefixes.items = prefixes;
    s.oauth_allowed_redirect_prefixes.n = n & 1 ? 2 : 0;
    s.environment = (n & 2) ? M8_ENV_PRODUCTION : M8_ENV_LOCAL;
    const char *why = m8_oidc_target_check(&s, p, n);
    if (!why && (n == 0 || n > M8_OIDC_TARGET_MAX || memchr(p, '#', n) || memchr(p, '\n', n)))
        abort(); /* accepted what the Location must never carry */
    char *z = strndup(p, n);
    if (z) {
        (void)m8_oidc_url_ok(z);
        (void)m8_oidc_url_loopback(z);
        free(z);
    }
}

static void pkce(const char *p, size_t n)
{
    bool c = m8_oidc_challenge_ok(p, n), v = m8_oidc_verifier_ok(p, n);
    if (c && !v)
        abort(); /* every challenge character is a verifier character */
    char out[44];
    m8_oidc_s256(p, n, out);
    if (strlen(out) != 43)
        abort();
    m8_buf b;
    m8_buf_init(&b, 3 * n + 1);
    if (m8_oidc_quote_plus(&b, p, n) != 0 || b.len < n)
        abort();
    m8_buf_free(&b);
}

static void discovery(const char *p, size_t n)
{
    m8_oidc_endpoints ep;
    char err[256];
    if (m8_oidc_discovery_parse(p, n, "http://127.0.0.1:1", &ep, err, sizeof err) == 0) {
        if (!m8_oidc_url_ok(ep.authorization) || !m8_oidc_url_ok(ep.token) ||
            !m8_oidc_url_ok(ep.jwks_uri))
            abort();
        m8_oidc_endpoints_clear(&ep);
    }
}

static void claims(const char *p, size_t n)
{
    const char *why = NULL;
    struct json_object *o = m8_json_parse(p, n, 8, NULL, &why);
    if (!o)
        return;
    m8_arena a;
    m8_arena_init(&a, 1u << 20);
    m8_oidc_expect e = {"http://127.0.0.1:1", "accounts.google.com", "cid", "nonce-1"};
    m8_oidc_identity id;
    if (!m8_oidc_claims_check(o, &e, 1700000000, &a, &id)) {
        if (!id.sub || strlen(id.sub) > M8_OIDC_SUB_MAX)
            abort();
        if (id.picture && strlen(id.picture) > M8_OIDC_AVATAR_MAX)
            abort();
    }
    m8_arena_free(&a);
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0: callback(p, n); break;
    case 1: target(p, n); break;
    case 2: pkce(p, n); break;
    case 3: discovery(p, n); break;
    default: claims(p, n); break;
    }
    return 0;
}
