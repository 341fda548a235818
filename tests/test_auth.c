/* test_auth - bearer extraction and the fail-closed access decisions (auth.h). */
#include "config.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "jwt.h"
#include "tap.h"
#include "testenv.h"

#define SECRET "Test-Access-Secret-Key-0123456789abcdef!"

/* An HS256 token signed here with libsodium's HMAC (independent of jwt.c). */
static char *hs_token(const char *role, bool superuser, long long exp_in)
{
    static char out[2048];
    char payload[512];
    long long now = (long long)time(NULL);
    snprintf(payload, sizeof payload,
             "{\"sub\":\"0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d\",\"type\":\"access\","
             "\"email\":\"u@example.com\",\"role\":\"%s\",\"is_superuser\":%s,"
             "\"is_active\":true,\"exp\":%lld,\"iat\":%lld,\"nbf\":%lld,"
             "\"jti\":\"8e1c6a0b-3f2d-4e5a-9b7c-1d2e3f4a5b6c\"}",
             role, superuser ? "true" : "false", now + exp_in, now, now);
    m8_buf b;
    m8_buf_init(&b, sizeof out);
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    m8_b64url_encode(&b, (const unsigned char *)hdr, strlen(hdr));
    m8_buf_putc(&b, '.');
    m8_b64url_encode(&b, (const unsigned char *)payload, strlen(payload));
    unsigned char mac[32];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)b.data, b.len);
    crypto_auth_hmacsha256_final(&st, mac);
    m8_buf_putc(&b, '.');
    m8_b64url_encode(&b, mac, sizeof mac);
    snprintf(out, sizeof out, "%s", b.data);
    m8_buf_free(&b);
    return out;
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

int main(void)
{
    m8_request req;
    m8_req_init(&req, NULL);
    char buf[256];
    is_str(bearer(&req, "Bearer abc.def.ghi", NULL, buf), "abc.def.ghi", "Bearer TOKEN");
    is_str(bearer(&req, "bearer   abc  ", NULL, buf), "abc", "scheme case-insensitive, token trimmed");
    is_str(bearer(&req, "Bearer ", NULL, buf), "", "Bearer with an empty token is still a bearer credential");
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
        is_int(m8_auth_verifications(au), 1, "the second use is served by the cache (no verification)");
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
        ok(m8_auth_check(au, &req, M8_USER), "a token past exp but within the leeway is still accepted");
        is_int(m8_auth_verifications(au), v + 1, "but never from the cache past its exp: verified again");
        m8_auth_free(au);
    }
    m8_settings_free(s);
    m8_req_free(&req);
    return done_testing();
}
