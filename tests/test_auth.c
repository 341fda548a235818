/* test_auth - bearer extraction and the fail-closed access decisions (auth.h). */
#include "config.h"

#include <string.h>

#include "auth.h"
#include "tap.h"

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
           "access %d with a token that cannot be verified yet: 401 invalid_token (fails closed)", (int)a);
    }
    m8_req_free(&req);
    return done_testing();
}
