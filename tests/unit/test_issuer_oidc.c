/* test_issuer_oidc.c - the pure checks of SSO (lib/issuer/oidc_parse.c,
 * doc/issuer.md#sso-oidc-and-google): the callback's query, the
 * redirect_target rules of the login URL, PKCE (RFC 7636's vector),
 * quote_plus as Python writes it, the discovery document, and the ID
 * token's claims (iss, aud and azp, exp with the skew, iat, nonce, sub,
 * email, email_verified); the SSO settings' start-up checks.  Then, in
 * process against a real PostgreSQL and a real MariaDB started on loopback
 * by the helpers of tests/integration/lib.sh (ports 22200-22239; a server
 * that is not installed is skipped with the reason): an auth code answers
 * only at the exchange of the provider that minted it, and POST
 * /sessions/refresh-google-tokens/ (doc/issuer.md#stored-google-tokens). */
#include "config.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/json.h"
#include "issuer/oidc.h"
#include "issuer/oidc_store.h"
#include "issuer_call.h"
#include "issuer_db.h"
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
            "FIRST_SUPERUSER_PASSWORD=Adm1n-Passw0rd!", IDB_ENV_ISSUER_SECRETS, __VA_ARGS__, NULL)
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

/* ------------------------------------------------------------ in process, on both databases */

#define DB_PASSWORD "Iss-Oidc-Db-Pa55!"
#define ACCESS_SECRET "Test-Access-Secret-Key-0123456789abcdef!"
#define TOK_OLD "Old-Tokens-Encryption-Key-0123456789ab!"
#define D_CODE "Invalid or expired auth code."
#define VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
#define SID_G "99999999-0000-4000-8000-000000000001"
#define SID_P "99999999-0000-4000-8000-000000000002"
#define JTI_G "88888888-aaaa-4aaa-8aaa-000000000001"
#define JTI_P "88888888-aaaa-4aaa-8aaa-000000000002"
#define JTI_NONE "88888888-aaaa-4aaa-8aaa-000000000003"

static const idb_servers g_srv = {"test_issuer_oidc", 22200,       22239, "iss_oidc",
                                  "iss_oidc",         DB_PASSWORD, false};

typedef struct tctx {
    const char *name;
    m8_app *app;
    m8_db *db;
    m8_issuer iss;
    m8_issuer_user su, gu, pu;
    char su_tok[2048], g_tok[2048], p_tok[2048], none_tok[2048];
} tctx;

/* A request from 127.0.0.1 with a JSON body and a bearer token (NULL: not
 * sent). */
static iresp *call(tctx *t, const char *method, const char *path, const char *tok, const char *body)
{
    icall c = {.method = method,
               .base = "/api",
               .path = path,
               .peer = "127.0.0.1",
               .ctype = body ? "application/json" : NULL,
               .body = body,
               .bearer = tok};
    return icall_do(t->app, &c);
}

#define RT(m, p, acc, h, fl)                                                                       \
    {                                                                                              \
        m, p, acc, h, NULL, NULL, NULL, fl                                                         \
    }
static m8_route g_table[] = {
    RT("POST", "/google-api/exchange/", M8_PUBLIC, m8_issuer_h_google_exchange, M8_ROUTE_JSON_BODY),
    RT("POST", "/oidc/exchange/", M8_PUBLIC, m8_issuer_h_oidc_exchange, M8_ROUTE_JSON_BODY),
    RT("POST", "/sessions/refresh-google-tokens/", M8_USER, m8_issuer_h_refresh_google_tokens,
       M8_ROUTE_JSON_BODY),
    RT("GET", "/sessions/get/{session_id}/", M8_SUPERUSER, m8_issuer_h_sessions_get, 0),
};
#undef RT

static char **db_env(m8_db_kind kind)
{
    static const char *base[] = {IDB_ENV_SITE("iss-oidc"),
                                 "ACCESS_SECRET_KEY=" ACCESS_SECRET,
                                 "REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!",
                                 "TOKEN_MODE=stateful",
                                 "TOKEN_STRICT_VALIDATION=false",
                                 IDB_ENV_ISSUER_SECRETS,
                                 "TOKENS_ENCRYPTION_KEY_OLD=" TOK_OLD,
                                 "FIRST_SUPERUSER=admin@example.com",
                                 "FIRST_SUPERUSER_PASSWORD=Adm1n-Passw0rd!",
                                 GOOGLE,
                                 "GOOGLE_OIDC_ISSUER=http://127.0.0.1:9",
                                 "OIDC_ISSUER_URL=http://127.0.0.1:9",
                                 "OIDC_CLIENT_ID=cid",
                                 "OIDC_CLIENT_SECRET=Oidc-Secret-Value-42",
                                 "OIDC_REDIRECT_URI=http://127.0.0.1:8080/api/oidc/callback/",
                                 NULL};
    return idb_env(kind, idb_port(kind), base);
}

static m8_arena g_arena;

static void add_session(tctx *t, const char *sid, const m8_issuer_user *u, const char *jti,
                        const char *provider)
{
    char uid[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(t->db, u->id, uid);
    int64_t now = m8_db_now();
    m8_db_param p[] = {M8_DB_TEXT(sid),       M8_DB_TIME(now),         M8_DB_TIME(now),
                       M8_DB_TEXT(uid),       M8_DB_TEXT(provider),    M8_DB_TEXT(jti),
                       M8_DB_TIME(now + 6e8), M8_DB_TIME(now + 864e8), M8_DB_TEXT("1//before")};
    if (m8_db_exec(t->db,
                   "INSERT INTO auth_client_session (id, created_at, updated_at, user_id, "
                   "provider, jwt_jti, refresh_token_hash, jwt_expires_at, refresh_expires_at, "
                   "revoked, auth_generation, external_refresh_token) VALUES (?, ?, ?, ?, ?, ?, "
                   "'0000000000000000000000000000000000000000000000000000000000000000', ?, ?, "
                   "FALSE, 1, ?)",
                   p, M8_ARRAY_LEN(p), NULL) != 0)
        diag("session insert: %s", m8_db_last_error(t->db)->message);
}

/* Column col of the session sid decrypted with the issuer's keys into out:
 * "NULL" for a NULL cell, "?" when it does not decrypt. */
static const char *stored(tctx *t, const char *sid, const char *col, char *out, size_t cap)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT %s FROM auth_client_session WHERE id = ?", col);
    m8_db_param p = M8_DB_TEXT(sid);
    m8_db_result *r = NULL;
    snprintf(out, cap, "?");
    if (m8_db_exec(t->db, sql, &p, 1, &r) == 0 && m8_db_nrows(r) == 1) {
        size_t n = 0, nk = 0;
        const char *v = m8_db_get_text(r, 0, 0, &n);
        const m8_fernet_key *keys = m8_oidc_token_keys(&nk);
        m8_buf b;
        m8_buf_init(&b, cap - 1);
        if (m8_db_is_null(r, 0, 0))
            snprintf(out, cap, "NULL");
        else if (v && m8_fernet_decrypt(keys, 1, v, n, 0, 0, &b, NULL) == 0)
            snprintf(out, cap, "%s", b.data);
        m8_buf_free(&b);
    }
    m8_db_result_free(r);
    return out;
}

static int db_setup(tctx *t, m8_db_kind kind)
{
    memset(t, 0, sizeof *t);
    t->name = kind == M8_DB_POSTGRES ? "PostgreSQL" : "MariaDB";
    t->db = idb_open(kind, idb_port(kind), NULL, 5, 30);
    char err[256] = "";
    if (!t->db || m8_issuer_schema_apply(t->db, "auth", NULL, err, sizeof err) != 0 ||
        idb_issuer_keys(&t->iss, ACCESS_SECRET, NULL, false, err, sizeof err) != 0) {
        diag("setup: %s", err);
        return -1;
    }
    idb_app a = {.name = "fa-auth-m8",
                 .version = "2.2.3",
                 .routes = g_table,
                 .nroutes = M8_ARRAY_LEN(g_table),
                 .iss = &t->iss,
                 .revoked = idb_revoked,
                 .revoked_data = &t->iss,
                 .connect_s = 5,
                 .io_s = 30,
                 .validator_name = "issuer sso",
                 .validator = m8_oidc_load,
                 .env = db_env(kind)};
    if (!(t->app = idb_app_boot(&a)))
        return -1;
    t->iss.app = t->app;
    t->iss.s = m8_app_settings(t->app);
    idb_user_add(t->db, &g_arena, &t->su, "root@example.com", "superadmin", true);
    idb_user_add(t->db, &g_arena, &t->gu, "g.user@example.com", "user", false);
    idb_user_add(t->db, &g_arena, &t->pu, "p.user@example.com", "user", false);
    /* g.user signs in with Google, as the holder of a Google session does */
    m8_db_param email = M8_DB_TEXT(t->gu.email);
    if (m8_db_exec(t->db, "UPDATE auth_user SET provider = 'GOOGLE' WHERE email = ?", &email, 1,
                   NULL) != 0)
        diag("provider: %s", m8_db_last_error(t->db)->message);
    snprintf(t->gu.provider, sizeof t->gu.provider, "google");
    idb_mint(&t->iss, &t->su, NULL, t->su_tok);
    idb_mint(&t->iss, &t->gu, JTI_G, t->g_tok);
    idb_mint(&t->iss, &t->pu, JTI_P, t->p_tok);
    idb_mint(&t->iss, &t->gu, JTI_NONE, t->none_tok);
    add_session(t, SID_G, &t->gu, JTI_G, "GOOGLE");
    add_session(t, SID_P, &t->pu, JTI_P, "PASSWORD");
    return 0;
}

static void db_teardown(tctx *t)
{
    if (t->app)
        m8_app_free(t->app);
    m8_oidc_free(NULL, NULL);
    idb_issuer_free(&t->iss);
    if (t->db)
        m8_db_close(t->db);
}

/* An auth code of provider label stored as the callback stores one. */
static void put_code(tctx *t, const char *code, const char *label)
{
    char payload[512];
    snprintf(payload, sizeof payload,
             "{\"version\":1,\"auth_provider\":\"%s\",\"access_token\":\"x.y.z\",\"expires_at\":1,"
             "\"user\":{\"name\":null,\"email\":\"a@example.com\",\"avatar\":null},"
             "\"code_challenge\":\"" CHALLENGE "\"}",
             label);
    int64_t now = (int64_t)time(NULL);
    if (m8_oidc_code_put(t->db, "auth", code, payload, now + 60, now) != 0)
        diag("code put: %s", m8_db_last_error(t->db)->message);
}

static iresp *exchange(tctx *t, const char *api, const char *code)
{
    char path[64], body[256];
    snprintf(path, sizeof path, "/%s/exchange/", api);
    snprintf(body, sizeof body, "{\"code\":\"%s\",\"code_verifier\":\"" VERIFIER "\"}", code);
    return call(t, "POST", path, NULL, body);
}

static void test_crossed_codes(tctx *t)
{
    const char *n = t->name;
    put_code(t, "aaaaaaaa-1111-4111-8111-000000000001", "google");
    idetail(exchange(t, "oidc", "aaaaaaaa-1111-4111-8111-000000000001"), 400, D_CODE,
            "a Google auth code at /oidc/exchange/: 400 as an unknown code");
    idetail(exchange(t, "google-api", "aaaaaaaa-1111-4111-8111-000000000001"), 400, D_CODE,
            "... and it was taken: then at /google-api/exchange/ too");
    put_code(t, "aaaaaaaa-1111-4111-8111-000000000002", "oidc");
    idetail(exchange(t, "google-api", "aaaaaaaa-1111-4111-8111-000000000002"), 400, D_CODE,
            "an OIDC auth code at /google-api/exchange/: 400");
    idetail(exchange(t, "oidc", "aaaaaaaa-1111-4111-8111-000000000002"), 400, D_CODE,
            "... and taken: then at /oidc/exchange/ too");
    put_code(t, "aaaaaaaa-1111-4111-8111-000000000003", "google");
    put_code(t, "aaaaaaaa-1111-4111-8111-000000000004", "oidc");
    iresp *r = exchange(t, "google-api", "aaaaaaaa-1111-4111-8111-000000000003");
    ok(r->status == 200 && strstr(r->body, "\"auth_provider\":\"google\"") &&
           !strstr(r->body, "code_challenge"),
       "%s: a Google code at /google-api/exchange/: 200", n);
    r = exchange(t, "oidc", "aaaaaaaa-1111-4111-8111-000000000004");
    ok(r->status == 200 && strstr(r->body, "\"auth_provider\":\"oidc\""),
       "%s: an OIDC code at /oidc/exchange/: 200", n);
}

static void test_refresh_google_tokens(tctx *t)
{
    const char *n = t->name;
    const char *path = "/sessions/refresh-google-tokens/";
    char buf[2048];
    static char want[sizeof((iresp *)0)->body];
    idetail(call(t, "POST", path, NULL, "{}"), 401, "Not authenticated",
            "refresh-google-tokens without a token: 401");
    iresp *r = call(t, "POST", path, t->g_tok,
                    "{\"external_access_token\":\"ya29.new-access\",\"external_refresh_token\":"
                    "\"1//new-refresh\",\"external_token_expires_at\":\"2030-01-02T03:04:05Z\"}");
    snprintf(want, sizeof want, "%s", r->body);
    is_int(r->status, 200, "%s: a Google session's tokens replaced: 200", n);
    iresp *g = call(t, "GET", "/sessions/get/" SID_G "/", t->su_tok, NULL);
    is_str(want, g->body, "%s: ... the answer is the session as /sessions/get/ renders it", n);
    ok(strstr(want, "\"external_token_expires_at\":\"2030-01-02T03:04:05") &&
           !strstr(want, "ya29") && !strstr(want, "1\\/\\/") &&
           !strstr(want, "external_access_token"),
       "%s: ... with the new expiry and never a token", n);
    is_str(stored(t, SID_G, "external_access_token", buf, sizeof buf), "ya29.new-access",
           "%s: the stored access token decrypts (Fernet, TOKENS_ENCRYPTION_KEY) to the new one",
           n);
    is_str(stored(t, SID_G, "external_refresh_token", buf, sizeof buf), "1//new-refresh",
           "%s: the stored refresh token too", n);
    {
        m8_db_param p = M8_DB_TEXT(SID_G);
        m8_db_result *q = NULL;
        size_t len = 0;
        const char *v = NULL;
        if (m8_db_exec(t->db, "SELECT external_access_token FROM auth_client_session WHERE id = ?",
                       &p, 1, &q) == 0)
            v = m8_db_get_text(q, 0, 0, &len);
        ok(v && len > 80 && strncmp(v, "gAAAAA", 6) == 0 && !memmem(v, len, "ya29", 4),
           "%s: ... the column holds a Fernet token, not the plaintext", n);
        m8_db_result_free(q);
    }
    r = call(t, "POST", path, t->g_tok, "{\"external_access_token\":null}");
    is_int(r->status, 200, "%s: null clears a token: 200", n);
    ok(strcmp(stored(t, SID_G, "external_access_token", buf, sizeof buf), "NULL") == 0 &&
           strcmp(stored(t, SID_G, "external_refresh_token", buf, sizeof buf), "1//new-refresh") ==
               0,
       "%s: ... the access token is NULL, the refresh token (absent) kept", n);
    r = call(t, "POST", path, t->g_tok, "{}");
    ok(r->status == 200 && strstr(r->body, "\"external_token_expires_at\":\"2030-01-02T03:04:05"),
       "%s: an empty body changes nothing: 200", n);
    char tok1471[1600], body[1700];
    memset(tok1471, 'a', 1471);
    tok1471[1471] = '\0';
    snprintf(body, sizeof body, "{\"external_refresh_token\":\"%s\"}", tok1471);
    r = call(t, "POST", path, t->g_tok, body);
    ok(r->status == 200 &&
           strcmp(stored(t, SID_G, "external_refresh_token", buf, sizeof buf), tok1471) == 0,
       "%s: a token of %u bytes (the most the column holds encrypted) is stored", n,
       M8_OIDC_EXT_TOKEN_MAX);
    snprintf(body, sizeof body, "{\"external_refresh_token\":\"%sa\"}", tok1471);
    r = call(t, "POST", path, t->g_tok, body);
    ok(r->status == 422 && strstr(r->body, "\"type\":\"string_too_long\"") &&
           strstr(r->body, "\"loc\":[\"body\",\"external_refresh_token\"]"),
       "%s: one byte more: 422 string_too_long", n);
    static const struct {
        const char *body, *type, *field;
    } bad[] = {
        {"[]", "model_attributes_type", NULL},
        {"{\"external_access_token\":5}", "string_type", "external_access_token"},
        {"{\"external_refresh_token\":[\"x\"]}", "string_type", "external_refresh_token"},
        {"{\"external_access_token\":\"\"}", "string_too_short", "external_access_token"},
        {"{\"external_token_expires_at\":\"tomorrow\"}", "datetime_from_date_parsing",
         "external_token_expires_at"},
        {"{\"external_token_expires_at\":\"2030-02-30T00:00:00\"}", "datetime_from_date_parsing",
         "external_token_expires_at"},
        {"{\"external_token_expires_at\":true}", "datetime_type", "external_token_expires_at"},
        {"{\"external_token_expires_at\":{}}", "datetime_type", "external_token_expires_at"},
        /* past 9999-12-31 once the offset is applied: no DATETIME holds it */
        {"{\"external_token_expires_at\":\"9999-12-31T23:59:59-23:00\"}",
         "datetime_from_date_parsing", "external_token_expires_at"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        r = call(t, "POST", path, t->g_tok, bad[i].body);
        char type[96], loc[128];
        snprintf(type, sizeof type, "\"type\":\"%s\"", bad[i].type);
        snprintf(loc, sizeof loc, "\"loc\":[\"body\"%s%s%s]", bad[i].field ? ",\"" : "",
                 bad[i].field ? bad[i].field : "", bad[i].field ? "\"" : "");
        ok(r->status == 422 && strstr(r->body, type) && strstr(r->body, loc), "%s: body %s: 422 %s",
           n, bad[i].body, bad[i].type);
    }
    ok(strcmp(stored(t, SID_G, "external_refresh_token", buf, sizeof buf), tok1471) == 0,
       "%s: ... and none of them changed the row", n);
    r = call(t, "POST", path, t->g_tok, "{\"external_token_expires_at\":1893553445}");
    ok(r->status == 200 && strstr(r->body, "\"external_token_expires_at\":\"2030-01-02T03:04:05"),
       "%s: a Unix time (seconds) is taken as the expiry", n);
    r = call(t, "POST", path, t->g_tok,
             "{\"external_token_expires_at\":\"2030-01-02T05:04:05+02:00\"}");
    ok(r->status == 200 && strstr(r->body, "\"external_token_expires_at\":\"2030-01-02T03:04:05"),
       "%s: an offset is applied (stored as UTC)", n);
    r = call(t, "POST", path, t->g_tok, "{\"external_token_expires_at\":null}");
    ok(r->status == 200 && strstr(r->body, "\"external_token_expires_at\":null"),
       "%s: null clears the expiry", n);
    idetail(call(t, "POST", path, t->p_tok, "{\"external_access_token\":\"ya29.x\"}"), 400,
            "Only a Google session holds Google tokens", "a password session: 400");
    is_str(stored(t, SID_P, "external_access_token", buf, sizeof buf), "NULL",
           "%s: ... and its row keeps no token", n);
    idetail(call(t, "POST", path, t->none_tok, "{\"external_access_token\":\"ya29.x\"}"), 404,
            "Session not found", "a token whose session is gone (another jti): 404");
    {
        /* the row is the caller's own: another user's token carrying the
         * Google session's jti does not reach it */
        char other[2048];
        idb_mint(&t->iss, &t->pu, JTI_G, other);
        idetail(call(t, "POST", path, other, "{\"external_access_token\":\"ya29.stolen\"}"), 404,
                "Session not found", "another user's token with the Google session's jti: 404");
        ok(strcmp(stored(t, SID_G, "external_refresh_token", buf, sizeof buf), tok1471) == 0 &&
               strcmp(stored(t, SID_G, "external_access_token", buf, sizeof buf), "NULL") == 0,
           "%s: ... and the Google session's row is untouched", n);
    }
}

static void test_db(void)
{
    if (sodium_init() < 0)
        return;
    m8_arena_init(&g_arena, 0);
    idb_start(&g_srv);
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        const char *name = m8_db_kind_name(kind);
        const char *why = idb_unusable(kind);
        if (why) {
            ok(1, "%s: a real server # SKIP %s", name, why);
            continue;
        }
        tctx t;
        if (db_setup(&t, kind) != 0) {
            ok(0, "%s: the app boots on a fresh schema", name);
            db_teardown(&t);
            continue;
        }
        ianswer_prefix = t.name; /* the database, before the answers' test names */
        test_crossed_codes(&t);
        test_refresh_google_tokens(&t);
        db_teardown(&t);
    }
    idb_stop();
    m8_arena_free(&g_arena);
}

int main(void)
{
    test_callback();
    test_target();
    test_pkce();
    test_discovery();
    test_claims();
    test_settings();
    test_db();
    return done_testing();
}
