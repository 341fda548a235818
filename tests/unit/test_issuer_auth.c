/* test_issuer_auth - fcgim8-issuer's own protected routes answer as
 * fa-auth-m8's do (doc/issuer.md#own-routes): 401 only for a missing or
 * non-Bearer credential and a revoked session, 403 "Could not validate
 * credentials." (no WWW-Authenticate) for every bad token, the revocation
 * store's fail modes, is_active and the role guards; a consumer app keeps
 * its 401.  Booted in process (m8_app_handle_params), no sockets.  First,
 * the request helper every issuer unit test shares (issuer_call.c): what it
 * sends, seen by an echo route, and its answer readers. */
#include "config.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/app.h"
#include "core/b64url.h"
#include "hsmint.h"
#include "issuer_call.h"
#include "issuer_db.h"
#include "tap.h"
#include "testenv.h"

#define SECRET "Test-Access-Secret-Key-0123456789abcdef!"
#define JTI "8e1c6a0b-3f2d-4e5a-9b7c-1d2e3f4a5b6c"

static bool has_header(const iresp *r, const char *name, const char *value)
{
    char want[256];
    size_t wl = (size_t)snprintf(want, sizeof want, "%s: %s", name, value);
    for (const char *p = r->head; *p; p++)
        if (strncasecmp(p, want, wl) == 0 && (p[wl] == '\r' || p[wl] == '\0'))
            return true;
    return false;
}

static bool has_name(const iresp *r, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = r->head; *p; p++)
        if ((p == r->head || p[-1] == '\n') && strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return true;
    return false;
}

/* GET uri with an Authorization header (NULL: none). */
static iresp *get(m8_app *app, const char *uri, const char *authz)
{
    icall c = {.method = "GET", .path = uri, .authz = authz};
    return icall_do(app, &c);
}

/* The handler: the user built from the claims. */
static int h_me(m8_request *req, void *data)
{
    (void)data;
    const m8_user *u = m8_req_user(req);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(u ? u->id : "?"));
    json_object_object_add(o, "role", json_object_new_string(u ? u->role : "?"));
    return m8_res_json(req, 200, o);
}

/* The request as the app saw it, as one line of text: what the harness
 * (issuer_call.c) sent.  "?big" answers a body of 200000 bytes. */
static int h_echo(m8_request *req, void *data)
{
    (void)data;
    static const char *const names[] = {"Content-Type",      "Authorization",    "X-API-Key",
                                        "X-Internal-Client", "X-Internal-Token", "Cookie",
                                        "X-Forwarded-For"};
    const char *qs = m8_req_query_string(req), *uri = m8_req_param(req, "REQUEST_URI");
    const char *cl = m8_req_param(req, "CONTENT_LENGTH");
    if (qs && strcmp(qs, "big") == 0) {
        static char big[200000];
        memset(big, 'x', sizeof big);
        return m8_res_body(req, 200, "text/plain", big, sizeof big);
    }
    size_t blen = 0;
    m8_req_body(req, &blen);
    char line[512];
    int n = snprintf(line, sizeof line,
                     "%s %s q=%zu:%.16s uri=%zu cl=%s body=%zu h=", m8_req_method(req),
                     m8_req_path(req), qs ? strlen(qs) : 0, qs ? qs : "", uri ? strlen(uri) : 0,
                     cl ? cl : "-", blen);
    for (size_t i = 0; i < M8_ARRAY_LEN(names) && n > 0 && (size_t)n < sizeof line; i++) {
        const char *v = m8_req_header(req, names[i]);
        if (v)
            n += snprintf(line + n, sizeof line - (size_t)n, "%s:%zu,", names[i], strlen(v));
    }
    return m8_res_body(req, 200, "text/plain", line, n > 0 ? strlen(line) : 0);
}

static m8_route routes[] = {
    {"GET", "/echo", M8_PUBLIC, h_echo, NULL, "Echo", "t", 0},
    {"POST", "/echo", M8_PUBLIC, h_echo, NULL, "Echo", "t", 0},
    {"GET", "/me", M8_USER, h_me, NULL, "Me", "t", 0},
    {"GET", "/su", M8_SUPERUSER, h_me, NULL, "Superuser", "t", 0},
    {"GET", "/admin", M8_ADMIN, h_me, NULL, "Admin", "t", 0},
};

/* The revocation store: answers rev_answer, counts calls, keeps the jti. */
static int rev_answer, rev_calls;
static char rev_jti[64];

static int revoked(m8_request *req, const char *jti, void *data)
{
    (void)req;
    rev_calls++;
    snprintf(rev_jti, sizeof rev_jti, "%s", jti ? jti : "(null)");
    return data == (void *)&rev_answer ? rev_answer : -100;
}

#define ISS_ENV(...)                                                                               \
    m8t_env("-AUTH_SERVICE_ROLE", "FIRST_SUPERUSER=admin@example.com",                             \
            "FIRST_SUPERUSER_PASSWORD=Adm1n-Passw0rd!",                                            \
            "SESSION_SECRET=Test-Session-Secret-Key-0123456789abcdef!",                            \
            "TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!",                      \
            "PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!", __VA_ARGS__, NULL)

static m8_app *boot(char **env, bool issuer)
{
    idb_app a = {.name = "fa-auth-m8",
                 .version = "2.0.0",
                 .routes = routes,
                 .nroutes = M8_ARRAY_LEN(routes),
                 .revoked = issuer ? revoked : NULL,
                 .revoked_data = &rev_answer,
                 .env = env};
    return idb_app_boot(&a);
}

static char *bearer(char *out, size_t cap, const char *role, bool su, long long exp_in)
{
    char payload[512], tok[1024];
    m8t_hs256_sign(tok, sizeof tok, SECRET,
                   m8t_access_payload(payload, sizeof payload, role, su, exp_in));
    snprintf(out, cap, "Bearer %s", tok);
    return out;
}

static bool is_403_invalid(const iresp *r)
{
    return r->status == 403 &&
           strcmp(r->body, "{\"detail\":\"Could not validate credentials.\"}") == 0 &&
           !has_name(r, "WWW-Authenticate");
}

static void test_bad_tokens(m8_app *app)
{
    char ok_h[1200], h[1400];
    bearer(ok_h, sizeof ok_h, "user", false, 600);

    iresp *r = get(app, "/api/me", NULL);
    ok(r->status == 401 && strcmp(r->body, "{\"detail\":\"Not authenticated\"}") == 0 &&
           has_header(r, "WWW-Authenticate", "Bearer"),
       "issuer: no Authorization: 401 Not authenticated + WWW-Authenticate: Bearer");
    r = get(app, "/api/me", "Basic dTpw");
    ok(r->status == 401 && strcmp(r->body, "{\"detail\":\"Not authenticated\"}") == 0 &&
           has_header(r, "WWW-Authenticate", "Bearer"),
       "issuer: a non-Bearer scheme: 401 Not authenticated + WWW-Authenticate: Bearer");

    ok(is_403_invalid(get(app, "/api/me", "Bearer garbage")), "issuer: garbage token: 403");
    ok(is_403_invalid(get(app, "/api/me", "Bearer abc.def")), "issuer: two-part token: 403");

    /* alg=none: the payload of a valid token, an unsigned header */
    const char *tok = ok_h + 7;
    const char *dot = strchr(tok, '.');
    m8_buf b;
    m8_buf_init(&b, 4096);
    const char *none = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    m8_buf_puts(&b, "Bearer ");
    m8_b64url_encode(&b, (const unsigned char *)none, strlen(none));
    const char *dot2 = strchr(dot + 1, '.');
    m8_buf_append(&b, dot, (size_t)(dot2 - dot) + 1);
    ok(is_403_invalid(get(app, "/api/me", b.data)), "issuer: alg=none token: 403");
    m8_buf_free(&b);

    /* tampered: one signature character changed */
    snprintf(h, sizeof h, "%s", ok_h);
    size_t last = strlen(h) - 2;
    h[last] = h[last] == 'A' ? 'B' : 'A';
    ok(is_403_invalid(get(app, "/api/me", h)), "issuer: tampered signature: 403");
    /* tampered payload: another role under the original signature */
    char other[1200];
    bearer(other, sizeof other, "admin", false, 600);
    const char *osig = strrchr(other, '.');
    const char *sig = strrchr(ok_h, '.');
    snprintf(h, sizeof h, "%.*s%s", (int)(osig - other), other, sig);
    ok(is_403_invalid(get(app, "/api/me", h)), "issuer: tampered payload: 403");

    bearer(h, sizeof h, "user", false, -120);
    ok(is_403_invalid(get(app, "/api/me", h)), "issuer: expired token: 403");
    ok(is_403_invalid(get(app, "/api/me", "Bearer ")), "issuer: empty Bearer token: 403");

    rev_answer = 0;
    r = get(app, "/api/me", ok_h);
    ok(r->status == 200 && strstr(r->body, "\"id\":\"0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d\""),
       "issuer: a valid token: 200, the user built from the claims");
    snprintf(h, sizeof h, "bearer %s", ok_h + 7);
    is_int(get(app, "/api/me", h)->status, 200, "issuer: the scheme is case-insensitive");
}

static void test_revocation(m8_app *app)
{
    char h[1200];
    bearer(h, sizeof h, "user", false, 600);
    rev_answer = 0;
    rev_calls = 0;
    is_int(get(app, "/api/me", h)->status, 200, "stateful: not revoked: 200");
    ok(rev_calls == 1 && strcmp(rev_jti, JTI) == 0, "stateful: the store is asked with the jti");
    rev_answer = 1;
    iresp *r = get(app, "/api/me", h);
    ok(r->status == 401 && strcmp(r->body, "{\"detail\":\"Session revoked\"}") == 0,
       "stateful: revoked (the token cached as valid before): 401 Session revoked");
    rev_answer = M8_EAGAIN;
    r = get(app, "/api/me", h);
    ok(r->status == 503 &&
           strcmp(r->body, "{\"detail\":\"Authentication service temporarily unavailable\"}") == 0,
       "stateful, store down, fail_closed (default): 503");
    rev_calls = 0;
    rev_answer = 1;
    ok(is_403_invalid(get(app, "/api/me", "Bearer garbage")) && rev_calls == 0,
       "an invalid token never reaches the store");
    rev_answer = 0;
}

static void test_user_and_roles(m8_app *app)
{
    char h[1200], payload[600], tok[1024];
    long long now = (long long)time(NULL);
    snprintf(payload, sizeof payload,
             "{\"sub\":\"0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d\",\"type\":\"access\","
             "\"email\":\"u@example.com\",\"role\":\"user\",\"is_superuser\":false,"
             "\"is_active\":false,\"exp\":%lld,\"iat\":%lld,\"nbf\":%lld,\"jti\":\"" JTI "\"}",
             now + 600, now, now);
    m8t_hs256_sign(tok, sizeof tok, SECRET, payload);
    snprintf(h, sizeof h, "Bearer %s", tok);
    iresp *r = get(app, "/api/me", h);
    ok(r->status == 403 && strcmp(r->body, "{\"detail\":\"Inactive user\"}") == 0,
       "is_active false: 403 Inactive user");

    const char *denied = "{\"detail\":\"The user doesn't have enough privileges\"}";
    r = get(app, "/api/su", bearer(h, sizeof h, "superadmin", true, 600));
    is_int(r->status, 200, "superuser route: superadmin with is_superuser: 200");
    r = get(app, "/api/su", bearer(h, sizeof h, "admin", false, 600));
    ok(r->status == 403 && strcmp(r->body, denied) == 0, "superuser route: admin: 403");
    r = get(app, "/api/su", bearer(h, sizeof h, "user", false, 600));
    ok(r->status == 403 && strcmp(r->body, denied) == 0, "superuser route: user: 403");
    /* superadmin iff is_superuser is a claim rule: a token breaking it is invalid */
    ok(is_403_invalid(get(app, "/api/su", bearer(h, sizeof h, "superadmin", false, 600))),
       "superuser route: superadmin without is_superuser: 403 invalid token");
    ok(is_403_invalid(get(app, "/api/su", bearer(h, sizeof h, "admin", true, 600))),
       "superuser route: admin with is_superuser: 403 invalid token");
    is_int(get(app, "/api/admin", bearer(h, sizeof h, "admin", false, 600))->status, 200,
           "admin+ route: admin: 200");
    is_int(get(app, "/api/admin", bearer(h, sizeof h, "superadmin", true, 600))->status, 200,
           "admin+ route: superadmin: 200");
    r = get(app, "/api/admin", bearer(h, sizeof h, "writer", false, 600));
    ok(r->status == 403 && strcmp(r->body, denied) == 0, "admin+ route: writer: 403");
    r = get(app, "/api/admin", bearer(h, sizeof h, "user", false, 600));
    ok(r->status == 403 && strcmp(r->body, denied) == 0 && !has_name(r, "WWW-Authenticate"),
       "admin+ route: user: 403, no WWW-Authenticate");
}

static void test_fail_modes(void)
{
    char h[1200];
    bearer(h, sizeof h, "user", false, 600);
    m8_app *app =
        boot(ISS_ENV("TOKEN_MODE=stateful", "ACCESS_REVOCATION_FAILURE_MODE=fail_open"), true);
    ok(app != NULL, "issuer app with fail_open boots");
    if (app) {
        rev_answer = M8_EAGAIN;
        is_int(get(app, "/api/me", h)->status, 200, "store down, fail_open: 200");
        rev_answer = 1;
        is_int(get(app, "/api/me", h)->status, 401, "fail_open: a revoked token is still 401");
        m8_app_free(app);
    }
    app = boot(ISS_ENV("TOKEN_MODE=stateful", "ACCESS_REVOCATION_FAILURE_MODE=fail_open",
                       "AUTH_STRICT_MODE=true"),
               true);
    if (app) {
        rev_answer = M8_EAGAIN;
        is_int(get(app, "/api/me", h)->status, 503, "AUTH_STRICT_MODE makes fail_open closed");
        m8_app_free(app);
    }
    app = boot(ISS_ENV("TOKEN_MODE=stateless"), true);
    ok(app != NULL, "stateless issuer boots");
    if (app) {
        rev_answer = 1;
        rev_calls = 0;
        ok(get(app, "/api/me", h)->status == 200 && rev_calls == 0,
           "stateless: the revocation store is never asked");
        ok(is_403_invalid(get(app, "/api/me", "Bearer garbage")), "stateless: garbage: 403");
        m8_app_free(app);
    }
    rev_answer = 0;
}

static void test_consumer_unchanged(void)
{
    m8_app *app = boot(m8t_env0(), false);
    ok(app != NULL, "consumer app boots");
    if (!app)
        return;
    iresp *r = get(app, "/api/me", "Bearer garbage");
    ok(r->status == 401 &&
           strcmp(r->body, "{\"detail\":\"Could not validate credentials.\"}") == 0 &&
           has_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\""),
       "consumer: a bad token is still 401 with WWW-Authenticate");
    r = get(app, "/api/me", NULL);
    is_int(r->status, 401, "consumer: no token: 401");
    m8_app_free(app);
}

/* The shared request helper (issuer_call.c) sends what an icall names,
 * whole, and nothing else; its answer readers take any body. */
static void test_harness(m8_app *app)
{
    icall c = {.path = "/api/echo"};
    is_str(icall_do(app, &c)->body, "GET /api/echo q=0: uri=9 cl=- body=0 h=",
           "icall: a GET without a body sends no CONTENT_LENGTH, CONTENT_TYPE or header it "
           "does not name");
    c.path = "/api/echo?a=1&b=2";
    is_str(icall_do(app, &c)->body, "GET /api/echo q=7:a=1&b=2 uri=17 cl=- body=0 h=",
           "icall: QUERY_STRING is what follows '?' in the path; REQUEST_URI keeps it");
    c = (icall){.method = "POST",
                .base = "/api",
                .path = "/echo",
                .ctype = "application/json",
                .body = "{}"};
    is_str(icall_do(app, &c)->body, "POST /api/echo q=0: uri=9 cl=2 body=2 h=Content-Type:16,",
           "icall: a body sends its CONTENT_LENGTH and the CONTENT_TYPE named");
    c.body = "[1]xyz";
    c.body_len = 3;
    is_str(icall_do(app, &c)->body, "POST /api/echo q=0: uri=9 cl=3 body=3 h=Content-Type:16,",
           "icall: body_len sends that many bytes");
    c = (icall){.method = "POST", .path = "/api/echo", .length_always = true};
    is_str(icall_do(app, &c)->body, "POST /api/echo q=0: uri=9 cl=0 body=0 h=",
           "icall: length_always sends CONTENT_LENGTH 0 without a body");
    c = (icall){.path = "/api/echo",
                .bearer = "tok",
                .authz = "ignored",
                .api_key = "k",
                .client = "cl",
                .secret = "sec",
                .cookie = "a=b",
                .xff = "192.0.2.1"};
    is_str(icall_do(app, &c)->body,
           "GET /api/echo q=0: uri=9 cl=- body=0 h=Authorization:10,X-API-Key:1,"
           "X-Internal-Client:2,X-Internal-Token:3,Cookie:3,X-Forwarded-For:9,",
           "icall: each header named is sent, the bearer as 'Bearer <token>' over authz");
    c = (icall){.path = "/api/echo", .authz = "Basic eDp5"};
    is_str(icall_do(app, &c)->body, "GET /api/echo q=0: uri=9 cl=- body=0 h=Authorization:10,",
           "icall: authz is sent as it is without a bearer");

    static char path[3100], tok[6001], want[128];
    snprintf(path, sizeof path, "/api/echo?q=");
    memset(path + 12, 'a', 2988);
    path[3000] = '\0';
    c = (icall){.path = path};
    iresp *r = icall_do(app, &c);
    snprintf(want, sizeof want, "GET /api/echo q=2990:q=aaaaaaaaaaaaaa uri=3000 cl=- body=0 h=");
    is_str(r->body, want, "icall: a 3000-byte REQUEST_URI reaches the app whole");
    memset(tok, 't', 6000);
    tok[6000] = '\0';
    c = (icall){.path = "/api/echo", .bearer = tok};
    is_str(icall_do(app, &c)->body, "GET /api/echo q=0: uri=9 cl=- body=0 h=Authorization:6007,",
           "icall: a 6000-byte bearer token reaches the app whole");
    ok(!icall_do(app, &c)->cut, "icall: an answer that fits is not marked cut");
    c = (icall){.path = "/api/echo?big"};
    r = icall_do(app, &c);
    ok(r->status == 200 && r->cut && strlen(r->body) == sizeof r->body - 1,
       "icall: a body over iresp's buffer is kept in part and marked cut");

    char buf[64];
    iresp *s = calloc(1, sizeof *s);
    if (s) {
        s->status = 422;
        snprintf(s->body, sizeof s->body, "{\"detail\":\"Invalid characters in credentials\"}");
        is_str(i422(s, buf, sizeof buf), "",
               "icall: i422 of a 422 whose detail is a string is \"\"");
        snprintf(s->body, sizeof s->body, "{\"detail\":[{\"type\":\"missing\",\"loc\":\"body\"}]}");
        is_str(i422(s, buf, sizeof buf), "", "icall: ... and one whose loc is no array");
        snprintf(s->body, sizeof s->body,
                 "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\",\"username\"]}]}");
        is_str(i422(s, buf, sizeof buf), "missing body.username",
               "icall: i422 joins the first item's type and loc");
        free(s);
    }
    is_str(imembers("{\"alpha\":1,\"beta\":2,\"gamma\":3}", buf, 8), "alpha,b",
           "icall: imembers stops at a full buffer");
}

int main(void)
{
    m8_app *app = boot(ISS_ENV("TOKEN_MODE=stateful"), true);
    ok(app != NULL, "issuer app (stateful, HS256) boots");
    if (app) {
        test_harness(app);
        test_bad_tokens(app);
        test_revocation(app);
        test_user_and_roles(app);
        m8_app_free(app);
    }
    test_fail_modes();
    test_consumer_unchanged();
    return done_testing();
}
