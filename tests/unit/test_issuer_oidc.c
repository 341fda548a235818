/* test_issuer_oidc.c - the pure checks of SSO (lib/issuer/oidc_parse.c,
 * doc/issuer.md#sso-oidc-and-google): the callback's query, the
 * redirect_target rules of the login URL, PKCE (RFC 7636's vector),
 * quote_plus as Python writes it, the discovery document, and the ID
 * token's claims (iss, aud and azp, exp with the skew, iat, nonce, sub,
 * email, email_verified); the SSO settings' start-up checks. */
#include "config.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "issuer/oidc.h"
#include "tap.h"
#include "testenv.h"

static int cb(const char *qs, m8_oidc_callback *out)
{
    return m8_oidc_callback_parse(qs, strlen(qs), out);
}

static void test_callback(void)
{
    static m8_oidc_callback c;
    is_int(cb("code=4%2F0Ab+x&state=s1&scope=openid+email&authuser=0", &c), 0,
           "callback: code, state and Google's extra names parse");
    is_str(c.code, "4/0Ab x", "  code percent- and plus-decoded");
    is_str(c.state, "s1", "  state");
    ok(c.has_code && c.has_state && !c.has_error, "  presence flags");
    is_int(cb("state=a&state=b", &c), M8_EPARSE, "callback: state twice is refused");
    is_int(cb("code=a%0Ab&state=s", &c), M8_EPARSE, "callback: a decoded control byte is refused");
    is_int(cb("code=%zz&state=s", &c), M8_EPARSE, "callback: a bad escape is refused");
    is_int(cb("code=%4&state=s", &c), M8_EPARSE, "callback: a cut escape is refused");
    char big[M8_OIDC_STATE_MAX + 16];
    memset(big, 'a', sizeof big);
    memcpy(big, "state=", 6);
    big[6 + M8_OIDC_STATE_MAX] = '\0';
    is_int(cb(big, &c), 0, "callback: a state of exactly %u bytes is kept", M8_OIDC_STATE_MAX);
    big[6 + M8_OIDC_STATE_MAX] = 'a';
    big[7 + M8_OIDC_STATE_MAX] = '\0';
    is_int(cb(big, &c), M8_EPARSE, "callback: one byte more is refused");
    is_int(cb("error=access_denied&state=x", &c), 0, "callback: the provider's error parses");
    ok(c.has_error && !c.has_code && strcmp(c.error, "access_denied") == 0, "  error kept");
    is_int(cb("&&=&code&state=", &c), 0, "callback: empty pairs are harmless");
    ok(c.has_code && c.code[0] == '\0' && c.has_state, "  empty values present and empty");
}

static const char *target(const m8_settings *s, const char *t)
{
    return m8_oidc_target_check(s, t, t ? strlen(t) : 0);
}

static void test_target(void)
{
    char *schemes[] = {"chrome-extension://", "https://", "http://"};
    char *prefixes[] = {"https://app.example.com/cb", "http://127.0.0.1:8080/"};
    char *ext_only[] = {"chrome-extension://"};
    m8_settings s;
    memset(&s, 0, sizeof s);
    s.environment = M8_ENV_LOCAL;
    s.oauth_allowed_redirect_schemes.items = ext_only;
    s.oauth_allowed_redirect_schemes.n = 1;
    const char *ext = "chrome-extension://abcdefghijklmnopabcdefghijklmnop/cb.html";
    is_str(target(&s, NULL), "redirect_target is required.", "target: missing");
    is_str(target(&s, ext), NULL, "target: a chrome-extension target with the default schemes");
    is_str(target(&s, "chrome-extension:///x"), "redirect_target must include a host.",
           "target: no host");
    is_str(target(&s, "https://app.example.com/cb"), "redirect_target scheme not allowed.",
           "target: https not in OAUTH_ALLOWED_REDIRECT_SCHEMES");
    is_str(target(&s, "chrome-extension://abc/x#frag"), "redirect_target must include a host.",
           "target: a fragment is refused (the issuer appends one)");
    is_str(target(&s, "chrome-extension://abc/x\r\nSet-Cookie: a=b"),
           "redirect_target must include a host.", "target: CR LF is refused");
    char longer[M8_OIDC_TARGET_MAX + 2];
    memset(longer, 'a', sizeof longer);
    memcpy(longer, "chrome-extension://h/", 21);
    longer[M8_OIDC_TARGET_MAX] = '\0';
    is_str(target(&s, longer), NULL, "target: exactly %u characters", M8_OIDC_TARGET_MAX);
    longer[M8_OIDC_TARGET_MAX] = 'a';
    longer[M8_OIDC_TARGET_MAX + 1] = '\0';
    is_str(target(&s, longer), "redirect_target too long.", "target: one more is too long");
    s.environment = M8_ENV_PRODUCTION;
    is_str(target(&s, ext), "redirect_target not in allowed prefixes.",
           "target: an unpinned chrome-extension target in production");
    s.environment = M8_ENV_LOCAL;
    s.oauth_allowed_redirect_schemes.items = schemes;
    s.oauth_allowed_redirect_schemes.n = 3;
    is_str(target(&s, "https://app.example.com/cb/x"), "redirect_target not in allowed prefixes.",
           "target: https without OAUTH_ALLOWED_REDIRECT_PREFIXES");
    s.oauth_allowed_redirect_prefixes.items = prefixes;
    s.oauth_allowed_redirect_prefixes.n = 2;
    is_str(target(&s, "https://app.example.com/cb/x"), NULL, "target: https under a prefix");
    is_str(target(&s, "https://app.example.com.evil.com/cb"),
           "redirect_target not in allowed prefixes.", "target: the netloc must match exactly");
    is_str(target(&s, "https://app.example.com/other"), "redirect_target not in allowed prefixes.",
           "target: the path must start with the prefix's");
    is_str(target(&s, "https://user@app.example.com/cb"), "redirect_target must include a host.",
           "target: userinfo is refused");
    is_str(target(&s, "http://127.0.0.1:8080/x"), NULL, "target: http to loopback when local");
    is_str(target(&s, "http://example.com:8080/x"), "redirect_target scheme not allowed.",
           "target: http to another host");
    s.environment = M8_ENV_STAGING;
    is_str(target(&s, "http://127.0.0.1:8080/x"), "redirect_target scheme not allowed.",
           "target: http never in staging");
}

static void test_pkce(void)
{
    const char *v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    char out[44];
    m8_oidc_s256(v, strlen(v), out);
    is_str(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256: RFC 7636 appendix B");
    ok(m8_oidc_verifier_ok(v, strlen(v)), "a 43-character verifier");
    ok(!m8_oidc_verifier_ok(v, 42), "42 characters are too few");
    ok(m8_oidc_verifier_ok("a.b~c-d_eaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 45),
       "a verifier may hold . and ~");
    ok(!m8_oidc_challenge_ok("a.b~c-d_eaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 45),
       "a challenge may not");
    char c129[130];
    memset(c129, 'x', 129);
    c129[129] = '\0';
    ok(m8_oidc_challenge_ok(c129, 128), "a challenge of 128 characters");
    ok(!m8_oidc_challenge_ok(c129, 129), "129 are too many");
    m8_buf b;
    m8_buf_init(&b, 256);
    m8_oidc_quote_plus(&b, "http://127.0.0.1:8/a b~_.-+&é",
                       strlen("http://127.0.0.1:8/a b~_.-+&é"));
    is_str(b.data, "http%3A%2F%2F127.0.0.1%3A8%2Fa+b~_.-%2B%26%C3%A9",
           "quote_plus as Python writes it");
    m8_buf_free(&b);
}

static void test_discovery(void)
{
    const char *doc = "{\"issuer\":\"https://op.example.com\",\"authorization_endpoint\":"
                      "\"https://op.example.com/auth\",\"token_endpoint\":\"https://op.example.com/"
                      "token\",\"jwks_uri\":\"https://op.example.com/jwks\","
                      "\"id_token_signing_alg_values_supported\":[\"ES256\",\"RS256\"]}";
    m8_oidc_endpoints ep;
    char err[256];
    is_int(
        m8_oidc_discovery_parse(doc, strlen(doc), "https://op.example.com", &ep, err, sizeof err),
        0, "discovery: a good document");
    ok(ep.alg == M8_ALG_RS256 && strcmp(ep.token, "https://op.example.com/token") == 0,
       "  RS256 pinned, the token endpoint read");
    m8_oidc_endpoints_clear(&ep);
    is_int(m8_oidc_discovery_parse(doc, strlen(doc), "https://other.example.com", &ep, err,
                                   sizeof err),
           M8_EPARSE, "discovery: another issuer is refused");
    const char *plain =
        "{\"issuer\":\"https://op\",\"authorization_endpoint\":\"http://op.example."
        "com/a\",\"token_endpoint\":\"https://op/t\",\"jwks_uri\":\"https://op/j\"}";
    is_int(m8_oidc_discovery_parse(plain, strlen(plain), "https://op", &ep, err, sizeof err),
           M8_EPARSE, "discovery: an http endpoint off loopback is refused");
    const char *hs = "{\"issuer\":\"https://op\",\"authorization_endpoint\":\"https://op/a\","
                     "\"token_endpoint\":\"https://op/t\",\"jwks_uri\":\"https://op/j\","
                     "\"id_token_signing_alg_values_supported\":[\"HS256\",\"none\"]}";
    is_int(m8_oidc_discovery_parse(hs, strlen(hs), "https://op", &ep, err, sizeof err), M8_EPARSE,
           "discovery: a provider offering only HS256/none is refused");
}

/* The claims of a payload built from a JSON text at time now. */
static const char *claims(const char *json, long long now, m8_oidc_identity *id, m8_arena *a)
{
    const char *why = NULL;
    json_object *o = m8_json_parse(json, strlen(json), 8, NULL, &why);
    m8_oidc_expect e = {"https://accounts.google.com", "accounts.google.com", "cid", "n-1"};
    const char *r = m8_oidc_claims_check(o, &e, now, a, id);
    json_object_put(o);
    return r;
}

#define GOOD_TAIL "\"iat\":1000,\"exp\":2000,\"nonce\":\"n-1\",\"sub\":\"123\""

static void test_claims(void)
{
    m8_arena a;
    m8_arena_init(&a, 0);
    m8_oidc_identity id;
    is_str(claims("{\"iss\":\"https://accounts.google.com\",\"aud\":\"cid\"," GOOD_TAIL
                  ",\"email\":\" Some@Example.COM \",\"email_verified\":true,\"name\":\"N\"}",
                  1500, &id, &a),
           NULL, "claims: a good ID token");
    ok(strcmp(id.sub, "123") == 0 && strcmp(id.email, "some@example.com") == 0 &&
           id.email_verified && strcmp(id.name, "N") == 0,
       "  sub, the normalised email, email_verified, name");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\"," GOOD_TAIL "}", 1500, &id, &a),
           NULL, "claims: Google's second issuer form");
    ok(!id.email_verified && !id.email, "  no email: none, not verified");
    is_str(claims("{\"iss\":\"https://evil\",\"aud\":\"cid\"," GOOD_TAIL "}", 1500, &id, &a), "iss",
           "claims: another issuer");
    is_str(
        claims("{\"iss\":\"accounts.google.com\",\"aud\":\"other\"," GOOD_TAIL "}", 1500, &id, &a),
        "aud", "claims: another audience");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":[\"cid\",\"x\"]," GOOD_TAIL "}", 1500,
                  &id, &a),
           "aud", "claims: several audiences without azp");
    is_str(
        claims("{\"iss\":\"accounts.google.com\",\"aud\":[\"cid\",\"x\"],\"azp\":\"cid\"," GOOD_TAIL
               "}",
               1500, &id, &a),
        NULL, "claims: several audiences with azp = client id");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\"," GOOD_TAIL "}", 2009, &id, &a),
           NULL, "claims: exp 9 s ago passes (10 s skew)");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\"," GOOD_TAIL "}", 2010, &id, &a),
           "expired", "claims: exp 10 s ago is expired");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\"," GOOD_TAIL "}", 989, &id, &a),
           "iat", "claims: iat 11 s ahead is refused");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\",\"iat\":1000,\"exp\":2000,"
                  "\"nonce\":\"n-2\",\"sub\":\"1\"}",
                  1500, &id, &a),
           "nonce", "claims: another nonce");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\",\"iat\":1000,\"exp\":2000,"
                  "\"sub\":\"1\"}",
                  1500, &id, &a),
           "nonce", "claims: no nonce");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\",\"iat\":1000,\"exp\":\"2000\","
                  "\"nonce\":\"n-1\",\"sub\":\"1\"}",
                  1500, &id, &a),
           "exp", "claims: exp as a string");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\",\"iat\":1000,\"exp\":2000,"
                  "\"nonce\":\"n-1\",\"sub\":\"a b\"}",
                  1500, &id, &a),
           "sub", "claims: a sub with a space");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\"," GOOD_TAIL
                  ",\"email\":\"x@y\",\"email_verified\":\"true\"}",
                  1500, &id, &a),
           NULL, "claims: email_verified as the string \"true\"");
    ok(id.email_verified, "  counts as verified");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\",\"nbf\":1511," GOOD_TAIL "}",
                  1500, &id, &a),
           "nbf", "claims: nbf 11 s ahead is refused");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\",\"nbf\":1510," GOOD_TAIL "}",
                  1500, &id, &a),
           NULL, "claims: nbf 10 s ahead passes (10 s skew)");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\",\"nbf\":\"1\"," GOOD_TAIL "}",
                  1500, &id, &a),
           "nbf", "claims: nbf as a string is refused");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\",\"azp\":\"other\"," GOOD_TAIL
                  "}",
                  1500, &id, &a),
           "aud", "claims: one audience but azp naming another client is refused");
    is_str(
        claims("{\"iss\":\"accounts.google.com\",\"aud\":[\"cid\",\"x\"],\"azp\":\"x\"," GOOD_TAIL
               "}",
               1500, &id, &a),
        "aud", "claims: several audiences with azp naming another client are refused");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":[7],\"azp\":\"cid\"," GOOD_TAIL "}",
                  1500, &id, &a),
           "aud", "claims: an audience that is not a string is refused");
    is_str(claims("{\"iss\":\"accounts.google.com\",\"aud\":\"cid\",\"iat\":1000,\"exp\":2000,"
                  "\"nonce\":\"n-1\",\"sub\":\"caf\\u00e9\"}",
                  1500, &id, &a),
           "sub", "claims: a sub with a non-ASCII character is refused");
    m8_arena_free(&a);
}

/* ------------------------------------------------------------ settings */

#define ISS_ENV(...)                                                                               \
    m8t_env("-AUTH_SERVICE_ROLE", "FIRST_SUPERUSER=admin@example.com",                             \
            "FIRST_SUPERUSER_PASSWORD=Adm1n-Passw0rd!",                                            \
            "SESSION_SECRET=Test-Session-Secret-Key-0123456789abcdef!",                            \
            "TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!",                      \
            "PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!", __VA_ARGS__, NULL)
#define GOOGLE                                                                                     \
    "GOOGLE_CLIENT_ID=cid", "GOOGLE_CLIENT_SECRET=Google-Secret-Value-42",                         \
        "GOOGLE_OAUTH_REDIRECT_URI=http://127.0.0.1:8080/user/google-auth/oauth-callback/"
#define OIDC                                                                                       \
    "OIDC_ISSUER_URL=https://op.example.com", "OIDC_CLIENT_ID=cid",                                \
        "OIDC_CLIENT_SECRET=Oidc-Secret-Value-42", "OIDC_REDIRECT_URI=https://a.example/cb/"

static m8_settings *g_s;
static m8_errlist g_e;
static char g_errs[4096];

static m8_settings *load(char **env)
{
    m8_settings_free(g_s);
    m8_errlist_free(&g_e);
    m8_settings_source src = {.env = env, .env_file = "/dev/null", .cwd = "/", .issuer = true};
    g_s = m8_settings_load(&src, &g_e);
    g_errs[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < g_e.n && used + 2 < sizeof g_errs; i++)
        used += (size_t)snprintf(g_errs + used, sizeof g_errs - used, "%s\n", g_e.lines[i]);
    return g_s;
}

static void test_settings(void)
{
    ok(load(ISS_ENV(GOOGLE)) != NULL, "settings: Google without GOOGLE_OIDC_ISSUER");
    ok(g_s && !g_s->google_oidc_issuer && !g_s->google_link_verified_email && !g_s->oidc_issuer_url,
       "  defaults: Google's own endpoints, no link, no generic provider");
    ok(load(ISS_ENV(GOOGLE, "GOOGLE_OIDC_ISSUER=http://127.0.0.1:9")) != NULL,
       "settings: GOOGLE_OIDC_ISSUER over http to loopback");
    ok(load(ISS_ENV(GOOGLE, "GOOGLE_OIDC_ISSUER=http://op.example.com")) == NULL,
       "settings: GOOGLE_OIDC_ISSUER over http elsewhere is refused");
    like(g_errs, "GOOGLE_OIDC_ISSUER must be an https URL", "  says so");
    ok(load(ISS_ENV(OIDC)) != NULL, "settings: a complete generic provider");
    ok(g_s && strcmp(g_s->oidc_default_role, "user") == 0 && !g_s->oidc_link_verified_email,
       "  OIDC_DEFAULT_ROLE user, OIDC_LINK_VERIFIED_EMAIL false");
    ok(load(ISS_ENV("OIDC_ISSUER_URL=https://op.example.com")) == NULL,
       "settings: OIDC_ISSUER_URL alone is refused");
    like(g_errs, "OIDC_ISSUER_URL requires OIDC_CLIENT_ID", "  names what is missing");
    ok(load(ISS_ENV("OIDC_CLIENT_SECRET=Oidc-Secret-Value-42")) == NULL,
       "settings: a client secret without OIDC_ISSUER_URL is refused");
    ok(!strstr(g_errs, "Oidc-Secret-Value-42"), "  the line never holds the secret");
    ok(load(ISS_ENV(OIDC, "OIDC_DEFAULT_ROLE=superadmin")) == NULL,
       "settings: OIDC_DEFAULT_ROLE superadmin is refused");
    ok(load(ISS_ENV(OIDC, "OIDC_ISSUER_URL=http://op.example.com")) == NULL,
       "settings: OIDC_ISSUER_URL over http off loopback is refused");
    {
        char longiss[300];
        snprintf(longiss, sizeof longiss, "OIDC_ISSUER_URL=https://op.example.com/%0240d", 0);
        ok(load(ISS_ENV(OIDC, longiss)) == NULL,
           "settings: OIDC_ISSUER_URL over 255 characters (the identity table's issuer) refused");
        ok(load(ISS_ENV(OIDC, "OIDC_ISSUER_URL=https://op.example.com/t\xc3\xa9")) == NULL,
           "settings: OIDC_ISSUER_URL with a non-ASCII byte refused");
    }
    ok(load(ISS_ENV(OIDC, "OIDC_REDIRECT_URI=https://a.example/cb#x")) == NULL,
       "settings: OIDC_REDIRECT_URI with a fragment is refused");
    ok(load(ISS_ENV(OIDC, "PASSWORD_LOGIN_ENABLED=false")) != NULL,
       "settings: the generic provider counts as a login method");
    m8_settings_free(g_s);
    m8_errlist_free(&g_e);
    g_s = NULL;
}

int main(void)
{
    test_callback();
    test_target();
    test_pkce();
    test_discovery();
    test_claims();
    test_settings();
    return done_testing();
}
