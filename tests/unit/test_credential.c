/* test_credential - credential kinds (credential.h) and their resolution to
 * the same user by m8_auth_check_credential (auth.h). */
#include "config.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/credential.h"
#include "auth/jwt.h"
#include "hsmint.h"
#include "reqbuild.h"
#include "tap.h"
#include "testenv.h"

#define SECRET "Test-Access-Secret-Key-0123456789abcdef!"

/* Builds req from up to 8 NAME=VALUE params (NULL-terminated). */
static void setup(m8_request *req, const char *const *kv)
{
    static const char *const base[] = {"REQUEST_METHOD=GET", "REQUEST_URI=/x", NULL};
    m8_req_reset(req);
    if (m8t_req_kv(req, base, kv, NULL, 0) != 0)
        printf("# setup: the request does not parse\n");
}

static m8_credential cred_of(m8_request *req, const char *cookie, const char *const *kv)
{
    setup(req, kv);
    m8_cred_config cfg = {cookie};
    m8_credential c;
    m8_credential_token(req, &cfg, &c);
    return c;
}

static bool is_cred(m8_credential c, m8_cred_kind kind, const char *value)
{
    if (c.kind != kind)
        printf("#   kind: %s, want %s\n", m8_credential_kind_name(c.kind),
               m8_credential_kind_name(kind));
    if (c.kind != kind)
        return false;
    if (!value)
        return true;
    bool same = c.value && c.len == strlen(value) && memcmp(c.value, value, c.len) == 0;
    if (!same)
        printf("#   value: %.*s, want %s\n", (int)c.len, c.value ? c.value : "", value);
    return same;
}

#define KV(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_kinds(m8_request *req)
{
    is_int(cred_of(req, "__Host-at", KV("HTTP_AUTHORIZATION=Bearer abc")).kind, M8_CRED_BEARER,
           "kinds: a Bearer header is a bearer credential");
    ok(is_cred(cred_of(req, "__Host-at",
                       KV("HTTP_AUTHORIZATION=Bearer abc", "HTTP_COOKIE=__Host-at=cookie-token")),
               M8_CRED_BEARER, "abc"),
       "kinds: a Bearer header wins over the cookie");
    ok(is_cred(cred_of(req, "__Host-at", KV("HTTP_COOKIE=theme=dark; __Host-at=cookie-token")),
               M8_CRED_COOKIE, "cookie-token"),
       "kinds: without Authorization the cookie carries the token");
    ok(is_cred(cred_of(req, "__Host-at",
                       KV("HTTP_AUTHORIZATION=", "HTTP_COOKIE=__Host-at=cookie-token")),
               M8_CRED_COOKIE, "cookie-token"),
       "kinds: an empty Authorization header counts as absent: the cookie is used");
    ok(is_cred(cred_of(req, "__Host-at",
                       KV("HTTP_AUTHORIZATION= \t ", "HTTP_COOKIE=__Host-at=cookie-token")),
               M8_CRED_COOKIE, "cookie-token"),
       "kinds: a blank Authorization header counts as absent too");
    ok(is_cred(cred_of(req, "__Host-at",
                       KV("HTTP_AUTHORIZATION=Basic dXNlcjpwdw==",
                          "HTTP_COOKIE=__Host-at=cookie-token")),
               M8_CRED_OTHER, NULL),
       "kinds: another scheme is no token and never falls back to the cookie");
    ok(is_cred(cred_of(req, "__Host-at", KV("HTTP_AUTHORIZATION=Bearer ")), M8_CRED_BEARER, ""),
       "kinds: Bearer with an empty token is still a bearer credential");
    ok(is_cred(cred_of(req, "__Host-at", KV("HTTP_COOKIE=other=1")), M8_CRED_NONE, NULL),
       "kinds: no Authorization and no token cookie: none");
    ok(is_cred(cred_of(req, "__Host-at", KV("HTTP_COOKIE=__Host-at=; a=b")), M8_CRED_NONE, NULL),
       "kinds: an empty token cookie: none");
    ok(is_cred(cred_of(req, NULL, KV("HTTP_COOKIE=__Host-at=cookie-token")), M8_CRED_NONE, NULL),
       "kinds: the cookie kind is off without a cookie name");
    ok(is_cred(cred_of(req, "at", KV("HTTP_COOKIE=xat=1; at_=2; at =\"quoted\" ")), M8_CRED_COOKIE,
               "quoted"),
       "kinds: only the exact cookie name; whitespace and one pair of quotes removed");
    ok(is_cred(cred_of(req, "at", KV("HTTP_COOKIE=at=real; x=1; at=planted")), M8_CRED_AMBIGUOUS,
               NULL),
       "kinds: the token cookie twice with different values is ambiguous (neither is used)");
    ok(is_cred(cred_of(req, "at", KV("HTTP_COOKIE=at=same; at=same")), M8_CRED_COOKIE, "same"),
       "kinds: the token cookie twice with the same value is that value");
    ok(is_cred(cred_of(req, "at",
                       KV("REDIRECT_HTTP_AUTHORIZATION=Bearer via-apache",
                          "HTTP_COOKIE=at=cookie-token")),
               M8_CRED_BEARER, "via-apache"),
       "kinds: Apache's REDIRECT_HTTP_AUTHORIZATION is the bearer header");
    ok(is_cred(cred_of(req, "at",
                       KV("HTTP_AUTHORIZATION=", "REDIRECT_HTTP_AUTHORIZATION=Bearer via-apache")),
               M8_CRED_BEARER, "via-apache"),
       "kinds: an empty Authorization header does not hide Apache's copy");

    const char *t;
    size_t len;
    setup(req, KV("HTTP_AUTHORIZATION="));
    ok(!m8_auth_bearer(req, &t, &len), "m8_auth_bearer: an empty Authorization is no bearer");

    m8_credential c;
    setup(req, KV("HTTP_X_API_KEY=k-123", "HTTP_AUTHORIZATION=Bearer abc"));
    m8_credential_api_key(req, &c);
    ok(is_cred(c, M8_CRED_API_KEY, "k-123"), "kinds: X-API-Key is the API-key credential");
    setup(req, KV("HTTP_AUTHORIZATION=Bearer abc"));
    m8_credential_api_key(req, &c);
    ok(is_cred(c, M8_CRED_NONE, NULL), "kinds: no X-API-Key: none");

    const char *v;
    setup(req, KV("HTTP_COOKIE=a=1;b=2;;  c = 3 ;d"));
    ok(m8_cookie_get(req, "c", &v, &len) == 1 && len == 1 && *v == '3',
       "cookie: a pair with spaces around '=' and ';'");
    ok(m8_cookie_get(req, "d", &v, &len) == 0, "cookie: a name without '=' is no cookie");
    ok(m8_cookie_get(req, "", &v, &len) == 0, "cookie: the empty name is never found");
}

static void test_names(void)
{
    ok(m8_cookie_name_ok("__Host-m8_at"), "name: __Host-m8_at is a cookie name");
    ok(!m8_cookie_name_ok("a;b") && !m8_cookie_name_ok("a b") && !m8_cookie_name_ok("a=b") &&
           !m8_cookie_name_ok("") && !m8_cookie_name_ok(NULL),
       "name: separators, spaces and the empty name are refused");
    char longname[M8_MAX_COOKIE_NAME + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[M8_MAX_COOKIE_NAME] = '\0';
    ok(m8_cookie_name_ok(longname), "name: %u bytes is the limit", M8_MAX_COOKIE_NAME);
    longname[M8_MAX_COOKIE_NAME] = 'a';
    longname[M8_MAX_COOKIE_NAME + 1] = '\0';
    ok(!m8_cookie_name_ok(longname), "name: one byte more is refused");
    ok(m8_cookie_name_host_prefixed("__Host-at"), "name: __Host-at has the __Host- prefix");
    ok(!m8_cookie_name_host_prefixed("__host-at") && !m8_cookie_name_host_prefixed("__Host-") &&
           !m8_cookie_name_host_prefixed("__Secure-at") && !m8_cookie_name_host_prefixed("at"),
       "name: __host- (case), a bare prefix, __Secure- and plain names do not");
}

/* An HS256 token signed here with libsodium's HMAC (independent of jwt.c). */
static const char *hs_token(char *out, size_t outlen, const char *role)
{
    char payload[512];
    return m8t_hs256_sign(out, outlen, SECRET,
                          m8t_access_payload(payload, sizeof payload, role, false, 600));
}

static void test_resolve(m8_request *req)
{
    m8_errlist errs = {0};
    m8_settings *s = m8t_settings(m8t_env0(), &errs);
    char err[256] = "";
    m8_auth *au = s ? m8_auth_new(s, err, sizeof err) : NULL;
    ok(au != NULL, "resolve: a verifier from HS256 settings");
    if (!au) {
        m8_settings_free(s);
        return;
    }
    char tok[1024], hdr[1100], cookie[1100];
    hs_token(tok, sizeof tok, "writer");
    snprintf(hdr, sizeof hdr, "HTTP_AUTHORIZATION=Bearer %s", tok);
    snprintf(cookie, sizeof cookie, "HTTP_COOKIE=__Host-at=%s", tok);
    m8_cred_config cfg = {"__Host-at"};
    m8_credential c;

    setup(req, KV(cookie));
    m8_credential_token(req, &cfg, &c);
    ok(m8_auth_check_credential(au, req, M8_WRITER, &c) && m8_req_user(req) &&
           strcmp(m8_req_user(req)->role, "writer") == 0 &&
           strcmp(m8_req_user(req)->jti, "8e1c6a0b-3f2d-4e5a-9b7c-1d2e3f4a5b6c") == 0,
       "resolve: a cookie credential resolves to the token's user");
    ok(m8_req_header(req, "Authorization") == NULL,
       "resolve: ... without an Authorization header added to the request");

    setup(req, KV("HTTP_AUTHORIZATION=", cookie));
    m8_credential_token(req, &cfg, &c);
    ok(m8_auth_check_credential(au, req, M8_WRITER, &c),
       "resolve: an empty Authorization and the cookie: the cookie's user");

    setup(req, KV(hdr));
    m8_credential_token(req, &cfg, &c);
    ok(m8_auth_check_credential(au, req, M8_WRITER, &c) &&
           strcmp(m8_req_user(req)->id, "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d") == 0,
       "resolve: the same token as a bearer credential: the same user");

    setup(req, KV(cookie));
    m8_credential_token(req, &cfg, &c);
    ok(!m8_auth_check_credential(au, req, M8_ADMIN, &c) && req->status == 403,
       "resolve: the role guard applies to a cookie credential: 403");

    char two[2300];
    snprintf(two, sizeof two, "HTTP_COOKIE=__Host-at=%s; __Host-at=x.y.z", tok);
    setup(req, KV(two));
    m8_credential_token(req, &cfg, &c);
    ok(!m8_auth_check_credential(au, req, M8_USER, &c) && req->status == 401 && !m8_req_user(req) &&
           strstr(m8_res_get_header(req, "WWW-Authenticate"), "invalid_token") != NULL,
       "resolve: an ambiguous cookie: 401 invalid_token, no user");

    setup(req, KV("HTTP_AUTHORIZATION=Basic dXNlcjpwdw==", cookie));
    m8_credential_token(req, &cfg, &c);
    ok(!m8_auth_check_credential(au, req, M8_USER, &c) && req->status == 401 &&
           strcmp(m8_res_get_header(req, "WWW-Authenticate"), "Bearer") == 0,
       "resolve: a Basic credential: 401 Not authenticated (the cookie is not used)");

    setup(req, KV("HTTP_COOKIE=__Host-at=not.a.token"));
    m8_credential_token(req, &cfg, &c);
    ok(!m8_auth_check_credential(au, req, M8_USER, &c) && req->status == 401,
       "resolve: a bad token in the cookie: 401");
    m8_auth_free(au);
    m8_settings_free(s);
}

static m8_credential take(m8_request *req, unsigned kinds, const char *const *kv)
{
    setup(req, kv);
    m8_credential c;
    m8_credential_take(req, kinds, "__Host-at", &c);
    return c;
}

/* m8_credential_take looks only at the kinds it is given. */
static void test_take(m8_request *req)
{
    const unsigned B = M8_ROUTE_CRED_BEARER, C = M8_ROUTE_CRED_COOKIE, K = M8_ROUTE_CRED_API_KEY;
    ok(is_cred(take(req, C, KV("HTTP_AUTHORIZATION=Bearer abc")), M8_CRED_NONE, NULL),
       "take: the cookie kind alone never reads the Authorization header");
    ok(is_cred(take(req, C, KV("HTTP_AUTHORIZATION=Bearer abc", "HTTP_COOKIE=__Host-at=ck")),
               M8_CRED_COOKIE, "ck"),
       "take: the cookie kind alone takes the cookie beside a bearer header");
    ok(is_cred(take(req, B, KV("HTTP_COOKIE=__Host-at=ck")), M8_CRED_NONE, NULL),
       "take: the bearer kind alone never reads the cookie");
    ok(is_cred(take(req, 0, KV("HTTP_COOKIE=__Host-at=ck", "HTTP_X_API_KEY=k1")), M8_CRED_NONE,
               NULL),
       "take: no kinds means bearer only");
    ok(is_cred(take(req, K, KV("HTTP_AUTHORIZATION=Bearer abc")), M8_CRED_NONE, NULL),
       "take: the API-key kind alone never reads the Authorization header");
    ok(is_cred(take(req, B | K, KV("HTTP_X_API_KEY=k1")), M8_CRED_API_KEY, "k1"),
       "take: bearer or API key, no Authorization: the key");
    ok(is_cred(take(req, B | K, KV("HTTP_AUTHORIZATION=Bearer abc", "HTTP_X_API_KEY=k1")),
               M8_CRED_BEARER, "abc"),
       "take: bearer or API key, both sent: the bearer decides");
    ok(is_cred(take(req, C | K, KV("HTTP_COOKIE=__Host-at=a; __Host-at=b", "HTTP_X_API_KEY=k1")),
               M8_CRED_AMBIGUOUS, NULL),
       "take: an ambiguous cookie stops there (no fall back to the key)");
    setup(req, KV("HTTP_COOKIE=__Host-at=ck"));
    m8_credential c;
    m8_credential_take(req, C, NULL, &c);
    ok(is_cred(c, M8_CRED_NONE, NULL), "take: the cookie kind without a cookie name: none");
    is_int((int)m8_credential_default_kinds(M8_API_KEY_WRITER), (int)K,
           "take: the default kind of M8_API_KEY_WRITER is the API key");
    is_int((int)m8_credential_default_kinds(M8_ADMIN), (int)B,
           "take: the default kind of a role is the bearer header");
}

/* m8_auth_resolve: the route's kinds decide which credential counts. */
static void test_resolve_kinds(m8_request *req)
{
    m8_errlist errs = {0};
    m8_settings *s = m8t_settings(m8t_env("ACCESS_TOKEN_COOKIE_NAME=__Host-at", NULL), &errs);
    char err[256] = "";
    m8_auth *au = s ? m8_auth_new(s, err, sizeof err) : NULL;
    ok(au != NULL && strcmp(m8_auth_cookie_name(au), "__Host-at") == 0,
       "resolve kinds: ACCESS_TOKEN_COOKIE_NAME reaches the verifier");
    if (!au) {
        m8_settings_free(s);
        return;
    }
    char tok[1024], hdr[1100], cookie[1100];
    hs_token(tok, sizeof tok, "writer");
    snprintf(hdr, sizeof hdr, "HTTP_AUTHORIZATION=Bearer %s", tok);
    snprintf(cookie, sizeof cookie, "HTTP_COOKIE=__Host-at=%s", tok);
    m8_credential used;

    setup(req, KV(cookie));
    ok(m8_auth_resolve(au, req, M8_WRITER, M8_ROUTE_CRED_COOKIE, NULL, &used) &&
           used.kind == M8_CRED_COOKIE && m8_req_user(req) &&
           strcmp(m8_req_user(req)->id, "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d") == 0,
       "resolve kinds: a cookie route with the settings' cookie name: the token's user");
    setup(req, KV(hdr));
    ok(!m8_auth_resolve(au, req, M8_WRITER, M8_ROUTE_CRED_COOKIE, NULL, &used) &&
           req->status == 401 && !m8_req_user(req) && used.kind == M8_CRED_NONE,
       "resolve kinds: a cookie-only route refuses a valid bearer header (401)");
    setup(req, KV(cookie));
    ok(!m8_auth_resolve(au, req, M8_WRITER, M8_ROUTE_CRED_BEARER, NULL, NULL) &&
           req->status == 401 && !m8_req_user(req),
       "resolve kinds: a bearer-only route refuses a valid token cookie (401)");
    setup(req, KV(cookie));
    ok(!m8_auth_resolve(au, req, M8_WRITER, 0, NULL, NULL) && req->status == 401,
       "resolve kinds: no kinds (a route of today) takes the bearer only");
    setup(req, KV(hdr));
    ok(m8_auth_resolve(au, req, M8_WRITER, 0, NULL, NULL) && m8_req_user(req),
       "resolve kinds: no kinds and a bearer: the user");
    setup(req, KV(hdr));
    ok(!m8_auth_resolve(au, req, M8_API_KEY_READER, 0, NULL, NULL) && req->status >= 400 &&
           !m8_req_user(req),
       "resolve kinds: an API-key route refuses a valid bearer");
    setup(req, KV(hdr));
    ok(!m8_auth_resolve(au, req, M8_READER, M8_ROUTE_CRED_API_KEY, NULL, NULL) &&
           req->status >= 400 && !m8_req_user(req),
       "resolve kinds: a reader route by API key refuses a valid bearer");
    setup(req, KV("HTTP_COOKIE=other=1"));
    ok(!m8_auth_resolve(au, req, M8_USER, M8_ROUTE_CRED_BEARER | M8_ROUTE_CRED_COOKIE, NULL,
                        NULL) &&
           req->status == 401 && strcmp(m8_res_get_header(req, "WWW-Authenticate"), "Bearer") == 0,
       "resolve kinds: no credential of any accepted kind: 401 Not authenticated");
    setup(req, KV("HTTP_COOKIE=gate=x"));
    ok(m8_auth_resolve(au, req, M8_PUBLIC, M8_ROUTE_CRED_COOKIE, "gate", &used) &&
           used.kind == M8_CRED_COOKIE,
       "resolve kinds: an explicit cookie name overrides the settings' one");
    m8_auth_free(au);
    m8_settings_free(s);
}

int main(void)
{
    m8_request req;
    m8_req_init(&req, NULL);
    test_kinds(&req);
    test_names();
    test_resolve(&req);
    test_take(&req);
    test_resolve_kinds(&req);
    m8_req_free(&req);
    return done_testing();
}
