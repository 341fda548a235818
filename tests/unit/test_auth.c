/* test_auth - bearer extraction and the fail-closed access decisions (auth.h). */
#include "config.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "hsmint.h"
#include "tap.h"
#include "testenv.h"

#define SECRET "Test-Access-Secret-Key-0123456789abcdef!"

/* An HS256 token for payload signed here with libsodium's HMAC
 * (independent of jwt.c). */
static char *hs_signed(const char *payload)
{
    static char out[2048];
    return m8t_hs256_sign(out, sizeof out, SECRET, payload);
}

static char *hs_token(const char *role, bool superuser, long long exp_in)
{
    char payload[512];
    return hs_signed(m8t_access_payload(payload, sizeof payload, role, superuser, exp_in));
}

static void setup(m8_request *req, const char *authz, const char *redirect_authz)
{
    m8_pair p[4];
    size_t n = 0;
    p[n++] = (m8_pair){"REQUEST_METHOD", "GET"};
    p[n++] = (m8_pair){"REQUEST_URI", "/x"};
    if (authz)
        p[n++] = (m8_pair){"HTTP_AUTHORIZATION", authz};
    if (redirect_authz)
        p[n++] = (m8_pair){"REDIRECT_HTTP_AUTHORIZATION", redirect_authz};
    m8_req_reset(req);
    m8_req_from_params(req, p, n, NULL, 0);
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The user a cache hit gives equals the one the first, full check gave. */
static void test_cached_user(m8_auth *au, m8_request *req)
{
    char payload[640], hdr[2100];
    long long now = (long long)time(NULL);
    snprintf(payload, sizeof payload,
             "{\"sub\":\"0B6F3C1E-7A52-4C4E-9A71-2F1D4E5B6C7D\",\"type\":\"access\","
             "\"email\":\" Carol@Example.COM \",\"full_name\":\"Carol \\u00c9\",\"avatar\":null,"
             "\"role\":\"superadmin\",\"is_superuser\":true,\"is_active\":true,"
             "\"email_verified\":true,\"tenant_id\":\"5D3C2B1A-0F9E-4D8C-B7A6-958473625140\","
             "\"exp\":%lld,\"iat\":%lld,\"nbf\":%lld,\"jti\":\"jti-carol\"}",
             now + 600, now, now);
    snprintf(hdr, sizeof hdr, "Bearer %s", hs_signed(payload));
    setup(req, hdr, NULL);
    unsigned long hits = m8_auth_cache_hits(au);
    ok(m8_auth_check(au, req, M8_SUPERUSER), "a superadmin token passes the superuser guard");
    if (!m8_req_user(req))
        return;
    m8_user fresh = *m8_req_user(req);
    char keep[7][128];
    const char **f[] = {&fresh.id,   &fresh.email,     &fresh.full_name, &fresh.avatar,
                        &fresh.role, &fresh.tenant_id, &fresh.jti};
    for (int i = 0; i < 7; i++) {
        if (*f[i]) {
            snprintf(keep[i], sizeof keep[i], "%s", *f[i]);
            *f[i] = keep[i];
        }
    }
    setup(req, hdr, NULL);
    ok(m8_auth_check(au, req, M8_SUPERUSER) && m8_auth_cache_hits(au) == hits + 1,
       "the same token again: a cache hit");
    const m8_user *c = m8_req_user(req);
    ok(c && same_str(c->id, fresh.id) && same_str(c->email, fresh.email) &&
           same_str(c->full_name, fresh.full_name) && same_str(c->avatar, fresh.avatar) &&
           same_str(c->role, fresh.role) && same_str(c->tenant_id, fresh.tenant_id) &&
           same_str(c->jti, fresh.jti) && c->is_active == fresh.is_active &&
           c->is_superuser == fresh.is_superuser && c->email_verified == fresh.email_verified &&
           c->exp == fresh.exp,
       "the cached user equals the verified one, field by field");
    is_str(c ? c->id : NULL, "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d", "cached id lower-cased");
    is_str(c ? c->email : NULL, "carol@example.com", "cached email trimmed and lower-cased");
    is_str(c ? c->full_name : NULL, "Carol \xc3\x89", "cached full_name kept as UTF-8");
    ok(c && c->avatar == NULL, "cached avatar null");
    is_str(c ? c->tenant_id : NULL, "5d3c2b1a-0f9e-4d8c-b7a6-958473625140", "cached tenant_id");
    ok(c && (const char *)c->id > (const char *)c && (const char *)c->jti > (const char *)c,
       "the cached user's strings live in the request (after the struct)");
}

static const char *bearer(m8_request *req, const char *authz, const char *redirect, char *buf)
{
    const char *t;
    size_t len;
    setup(req, authz, redirect);
    if (!m8_auth_bearer(req, &t, &len))
        return NULL;
    memcpy(buf, t, len);
    buf[len] = '\0';
    return buf;
}

/* M8_TOKEN_CACHE_ENTRIES bounds each thread's cache: 0 turns it off; 2
 * (one set of two ways) keeps the last two distinct tokens only. */
static void test_cache_size(const m8_settings *s, m8_request *req)
{
    char err[256] = "", hdr[3][2100];
    const char *roles[3] = {"user", "admin", "writer"};
    for (int i = 0; i < 3; i++)
        snprintf(hdr[i], sizeof hdr[i], "Bearer %s", hs_token(roles[i], false, 600));
    setenv("M8_TOKEN_CACHE_ENTRIES", "0", 1);
    m8_auth *au = s ? m8_auth_new(s, err, sizeof err) : NULL;
    for (int k = 0; au && k < 3; k++) {
        setup(req, hdr[0], NULL);
        m8_auth_check(au, req, M8_USER);
    }
    ok(au && m8_auth_verifications(au) == 3 && m8_auth_cache_hits(au) == 0,
       "M8_TOKEN_CACHE_ENTRIES=0: no cache, every use verified");
    m8_auth_free(au);
    setenv("M8_TOKEN_CACHE_ENTRIES", "2", 1);
    au = s ? m8_auth_new(s, err, sizeof err) : NULL;
    for (int i = 0; au && i < 3; i++) {
        setup(req, hdr[i], NULL);
        m8_auth_check(au, req, M8_USER);
    }
    for (int i = 1; au && i < 3; i++) {
        setup(req, hdr[i], NULL);
        m8_auth_check(au, req, M8_USER);
    }
    ok(au && m8_auth_cache_hits(au) == 2, "M8_TOKEN_CACHE_ENTRIES=2: the last two tokens hit");
    setup(req, hdr[0], NULL);
    unsigned long v = au ? m8_auth_verifications(au) : 0;
    ok(au && m8_auth_check(au, req, M8_USER) && m8_auth_verifications(au) == v + 1,
       "... the third one back was evicted: verified again");
    m8_auth_free(au);
    unsetenv("M8_TOKEN_CACHE_ENTRIES");
}

int main(void)
{
    m8_request req;
    m8_req_init(&req, NULL);
    char buf[256];
    is_str(bearer(&req, "Bearer abc.def.ghi", NULL, buf), "abc.def.ghi", "Bearer TOKEN");
    is_str(bearer(&req, "bearer   abc  ", NULL, buf), "abc",
           "scheme case-insensitive, token trimmed");
    is_str(bearer(&req, "Bearer ", NULL, buf), "",
           "Bearer with an empty token is still a bearer credential");
    is_str(bearer(&req, "Basic dXNlcjpwYXNz", NULL, buf), NULL, "another scheme is no bearer");
    is_str(bearer(&req, "Bearer", NULL, buf), NULL, "a bare scheme is no bearer");
    is_str(bearer(&req, NULL, NULL, buf), NULL, "no header, no bearer");
    is_str(bearer(&req, NULL, "Bearer via-apache", buf), "via-apache",
           "REDIRECT_HTTP_AUTHORIZATION is used when Apache rewrote the header away");

    setup(&req, NULL, NULL);
    ok(m8_auth_check(NULL, &req, M8_PUBLIC), "a public route needs nothing");
    for (m8_access a = M8_USER; a <= M8_SUPERUSER; a++) {
        setup(&req, NULL, NULL);
        ok(!m8_auth_check(NULL, &req, a) && req.status == 401 &&
               strcmp(m8_res_get_header(&req, "WWW-Authenticate"), "Bearer") == 0,
           "access %d without credentials: 401 with WWW-Authenticate: Bearer", (int)a);
        setup(&req, "Bearer x.y.z", NULL);
        ok(!m8_auth_check(NULL, &req, a) && req.status == 401 &&
               strstr(m8_res_get_header(&req, "WWW-Authenticate"), "invalid_token") != NULL,
           "access %d with no verifier built: 401 invalid_token (fails closed)", (int)a);
    }

    /* A verifier from settings (HS256) and the verified-token cache. */
    m8_errlist errs = {0};
    m8_settings *s = m8t_settings(m8t_env0(), &errs);
    char err[256] = "";
    m8_auth *au = s ? m8_auth_new(s, err, sizeof err) : NULL;
    ok(au != NULL, "a verifier is built from HS256 settings");
    if (au) {
        char hdr[2100];
        snprintf(hdr, sizeof hdr, "Bearer %s", hs_token("admin", false, 600));
        setup(&req, hdr, NULL);
        ok(m8_auth_check(au, &req, M8_ADMIN) && m8_req_user(&req) &&
               strcmp(m8_req_user(&req)->role, "admin") == 0,
           "a valid admin token passes the admin guard and sets the user");
        is_int(m8_auth_verifications(au), 1, "the first use verifies the signature");
        setup(&req, hdr, NULL);
        ok(m8_auth_check(au, &req, M8_USER), "the same token again passes");
        is_int(m8_auth_verifications(au), 1,
               "the second use is served by the cache (no verification)");
        is_int(m8_auth_cache_hits(au), 1, "one cache hit counted");
        setup(&req, hdr, NULL);
        ok(!m8_auth_check(au, &req, M8_SUPERUSER) && req.status == 403,
           "a cached principal still gets the role guard: admin is refused the superuser guard");
        hdr[strlen(hdr) - 2] = hdr[strlen(hdr) - 2] == 'A' ? 'B' : 'A';
        setup(&req, hdr, NULL);
        ok(!m8_auth_check(au, &req, M8_USER) && req.status == 401,
           "an altered token is not served from the cache of the genuine one");

        snprintf(hdr, sizeof hdr, "Bearer %s", hs_token("user", false, 1));
        setup(&req, hdr, NULL);
        m8_auth_check(au, &req, M8_USER);
        unsigned long v = m8_auth_verifications(au);
        sleep(2); /* past exp, within the 5 s leeway of the permissive profile */
        setup(&req, hdr, NULL);
        ok(m8_auth_check(au, &req, M8_USER),
           "a token past exp but within the leeway is still accepted");
        is_int(m8_auth_verifications(au), v + 1,
               "but never from the cache past its exp: verified again");
        test_cached_user(au, &req);
        m8_auth_free(au);
    }
    test_cache_size(s, &req);
    m8_settings_free(s);
    m8_req_free(&req);
    return done_testing();
}
