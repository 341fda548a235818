/* test_apikey_scopes.c - API-key scopes and the m8 key format on the consumer
 * side (doc/issuer.md#api-key-scopes-and-format): the key shapes and the
 * checksum (lib/auth/apikey_format.c), principal.scopes in the introspection
 * answer (m8_apikey_parse), a mistyped m8 key refused before any call to the
 * issuer (m8_apikey_resolve), the missing_scope answer
 * (m8_apikey_require_scope), scope= in a gate policy (lib/auth/policy.c),
 * and m8_app_require_scope with its boot checks and its 403 for a key
 * whose scopes do not hold the route's, a token caller not concerned. */
#include "config.h"

#include "tap.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "auth/apikey.h"
#include "auth/apikey_format.h"
#include "auth/policy.h"
#include "core/log.h"
#include "hsmint.h"
#include "testenv.h"

static m8_arena g_arena;

/* ------------------------------------------------------------ format */

static void test_format(void)
{
    char k[M8_APIKEY_M8_LEN + 1];
    bool all = true;
    for (int i = 0; i < 200; i++) {
        m8_apikey_make_m8(k);
        all = all && strlen(k) == 45 && strncmp(k, "m8ak_", 5) == 0 &&
              strspn(k + 5, "0123456789abcdef") == 40 &&
              m8_apikey_shape_of(k, strlen(k)) == M8_AKS_M8;
    }
    ok(all, "format: 200 fresh m8 keys are m8ak_ + 40 lower-case hex digits with a valid checksum");
    char k2[M8_APIKEY_M8_LEN + 1];
    m8_apikey_make_m8(k2);
    ok(strcmp(k, k2) != 0, "format: two fresh keys differ");
    char sum[9];
    m8_apikey_checksum(k, sum);
    ok(memcmp(sum, k + 37, 8) == 0,
       "format: the last 8 digits are the first 4 bytes of SHA-256 of the first 37 bytes");

    /* every substitution of one body or checksum digit is refused */
    size_t caught = 0, tried = 0;
    for (size_t pos = 5; pos < 45; pos++) {
        for (const char *d = "0123456789abcdef"; *d; d++) {
            if (*d == k[pos])
                continue;
            char t[46];
            memcpy(t, k, 46);
            t[pos] = *d;
            tried++;
            caught += m8_apikey_shape_of(t, 45) == M8_AKS_M8_BROKEN;
        }
    }
    is_int((long long)caught, (long long)tried,
           "format: each of the %zu one-digit typos of a key fails its checksum", tried);
    size_t trunc = 0;
    for (size_t n = 5; n < 45; n++)
        trunc += m8_apikey_shape_of(k, n) == M8_AKS_M8_BROKEN;
    is_int((long long)trunc, 40, "format: every truncation (5..44 bytes) is refused");
    char longer[48];
    snprintf(longer, sizeof longer, "%s0", k);
    is_int(m8_apikey_shape_of(longer, 46), M8_AKS_M8_BROKEN, "format: one byte more is refused");
    char upper[46];
    memcpy(upper, k, 46);
    for (size_t i = 5; i < 45; i++)
        if (upper[i] >= 'a' && upper[i] <= 'f')
            upper[i] = (char)(upper[i] - 32);
    ok(strcmp(upper, k) == 0 || m8_apikey_shape_of(upper, 45) == M8_AKS_M8_BROKEN,
       "format: upper-case hex digits are refused (the format is lower-case)");
    /* two adjacent digits swapped */
    size_t swaps = 0, swapped = 0;
    for (size_t pos = 5; pos + 1 < 45; pos++) {
        if (k[pos] == k[pos + 1])
            continue;
        char t[46];
        memcpy(t, k, 46);
        t[pos] = k[pos + 1];
        t[pos + 1] = k[pos];
        swaps++;
        swapped += m8_apikey_shape_of(t, 45) == M8_AKS_M8_BROKEN;
    }
    is_int((long long)swapped, (long long)swaps,
           "format: each transposition of two digits is refused");
    ok(m8_apikey_shape_refused(M8_AKS_M8_BROKEN) && !m8_apikey_shape_refused(M8_AKS_M8) &&
           !m8_apikey_shape_refused(M8_AKS_LEGACY) && !m8_apikey_shape_refused(M8_AKS_LEGACY_BAD) &&
           !m8_apikey_shape_refused(M8_AKS_OTHER),
       "format: only a broken m8 key is refused without a lookup (legacy and other shapes are "
       "looked up)");

    char lk[M8_APIKEY_LEGACY_LEN + 1];
    m8_apikey_make_legacy(lk);
    ok(strlen(lk) == 35 && strncmp(lk, "ak_", 3) == 0 && lk[3 + 12] == '4' &&
           m8_apikey_shape_of(lk, 35) == M8_AKS_LEGACY,
       "format: a legacy key is ak_ + the 32 hex digits of a UUID4 (%s...)", "ak_");
    is_int(m8_apikey_shape_of("ak_0123", 7), M8_AKS_LEGACY_BAD, "format: a short ak_ key");
    is_int(m8_apikey_shape_of("sk_live_x", 9), M8_AKS_OTHER, "format: another prefix");
    is_int(m8_apikey_shape_of(NULL, 0), M8_AKS_OTHER, "format: NULL");
    is_int(m8_apikey_shape_of("m8ak_", 5), M8_AKS_M8_BROKEN, "format: the bare m8ak_ prefix");

    static const char *const good[] = {"items:read",  "a",    "audit:read", "service_accounts:read",
                                       "a.b-c_d:e:f", "x9:y8"};
    static const char *const badv[] = {"",           ":",        "items:",     ":read",
                                       "Items:read", "a:b:c:d",  "1items",     "items read",
                                       "items:*",    "items::r", "items:Read", "it\xc3\xa9ms"};
    bool gv = true, bv = true;
    for (size_t i = 0; i < M8_ARRAY_LEN(good); i++)
        gv = gv && m8_apikey_scope_valid(good[i], strlen(good[i]));
    for (size_t i = 0; i < M8_ARRAY_LEN(badv); i++) {
        if (m8_apikey_scope_valid(badv[i], strlen(badv[i]))) {
            diag("accepted: \"%s\"", badv[i]);
            bv = false;
        }
    }
    ok(gv, "scope: items:read, a, audit:read, service_accounts:read, a.b-c_d:e:f are valid");
    ok(bv, "scope: empty, empty parts, upper case, 4 parts, a leading digit, spaces, '*', "
           "non-ASCII are refused");
    char s64[65], s65[66];
    memset(s64, 'a', 64);
    s64[64] = '\0';
    memset(s65, 'a', 65);
    s65[65] = '\0';
    ok(m8_apikey_scope_valid(s64, 64) && !m8_apikey_scope_valid(s65, 65),
       "scope: 64 bytes are valid, 65 are not");
    ok(!m8_apikey_scope_valid("items\0read", 10), "scope: an embedded NUL is refused");
}

/* ------------------------------------------------------------ parse */

#define ACTIVE_HEAD                                                                                \
    "{\"active\":true,\"schema_version\":\"1\",\"audience_id\":\"item-service\",\"principal\":{"   \
    "\"user_id\":\"u1\",\"role\":\"reader\",\"is_superuser\":false,\"access_mode\":"               \
    "\"read_only\",\"authentication_method\":\"api_key\",\"auth_generation\":1"

static int parse(const char *principal_tail, m8_apikey_principal *p, const char **why)
{
    char body[2048];
    bool active = false;
    snprintf(body, sizeof body, "%s%s},\"key_expires_at\":null}", ACTIVE_HEAD, principal_tail);
    m8_arena_reset(&g_arena);
    return m8_apikey_parse(body, strlen(body), &g_arena, &active, p, why);
}

static void test_parse(void)
{
    m8_apikey_principal p;
    const char *why = NULL;
    is_int(parse(",\"scopes\":[\"items:read\",\"audit:read\"]", &p, &why), 0,
           "parse: principal.scopes is read");
    ok(p.n_scopes == 2 && strcmp(p.scopes[0], "items:read") == 0 &&
           strcmp(p.scopes[1], "audit:read") == 0,
       "parse: ... both scopes, in order");
    ok(m8_apikey_has_scope(&p, "audit:read") && !m8_apikey_has_scope(&p, "audit") &&
           !m8_apikey_has_scope(&p, "items:write") && !m8_apikey_has_scope(&p, NULL),
       "parse: has_scope matches exactly");
    is_int(parse("", &p, &why), 0, "parse: no scopes member (fa-auth-m8's answer) is fine");
    ok(p.n_scopes == 0 && !m8_apikey_has_scope(&p, "items:read"),
       "parse: ... and gives an unscoped key");
    is_int(parse(",\"scopes\":null", &p, &why), 0, "parse: scopes null is no scopes");
    is_int(parse(",\"scopes\":[]", &p, &why), 0, "parse: scopes [] is no scopes");
    is_int(parse(",\"scopes\":\"items:read\"", &p, &why), M8_EPARSE,
           "parse: scopes as a string: malformed");
    is_int(parse(",\"scopes\":[\"Items\"]", &p, &why), M8_EPARSE,
           "parse: an invalid scope: malformed");
    is_int(parse(",\"scopes\":[1]", &p, &why), M8_EPARSE, "parse: a number as scope: malformed");
    char many[1024] = ",\"scopes\":[";
    for (int i = 0; i < 17; i++) {
        char one[32];
        snprintf(one, sizeof one, "%s\"s%d\"", i ? "," : "", i);
        strncat(many, one, sizeof many - strlen(many) - 1);
    }
    strncat(many, "]", sizeof many - strlen(many) - 1);
    is_int(parse(many, &p, &why), M8_EPARSE, "parse: 17 scopes (over 16): malformed");
}

/* ------------------------------------------------------------ resolve */

static m8_settings *key_settings(void)
{
    static char *scope_items[] = {"api-key-introspection"};
    m8_settings *s = calloc(1, sizeof *s);
    s->api_key_introspection_enabled = true;
    /* nothing listens on port 9: a call fails in transport */
    s->introspection_url = "http://127.0.0.1:9/api/private/v1/jti-status";
    s->private_api_secret = "Item-Service-Bootstrap-Secret-0123456789!";
    s->internal_client_id = "item-service";
    s->api_key_introspection_schema_version = "1";
    s->api_key_introspection_connect_timeout = 0.5;
    s->api_key_introspection_read_timeout = 1.0;
    s->api_key_introspection_pool_timeout = 0.5;
    s->api_key_introspection_max_concurrency = 4;
    s->api_key_introspection_max_response_bytes = 8192;
    s->api_key_introspection_circuit_failure_threshold = 1000;
    s->api_key_introspection_circuit_reset_seconds = 30.0;
    s->service_token_refresh_leeway_seconds = 30;
    s->service_token_scopes.items = scope_items;
    s->service_token_scopes.n = 1;
    return s;
}

static void test_resolve(void)
{
    m8_settings *s = key_settings();
    char err[256];
    m8_apikey *k = m8_apikey_new(s, err, sizeof err);
    if (!k) {
        ok(0, "resolve: a resolver (%s)", err);
        free(s);
        return;
    }
    char key[M8_APIKEY_M8_LEN + 1];
    m8_apikey_make_m8(key);
    key[20] = key[20] == '0' ? '1' : '0';
    m8_apikey_answer ans;
    m8_apikey_stats st;
    m8_arena_reset(&g_arena);
    bool r =
        m8_apikey_resolve(k, key, strlen(key), M8_APIKEY_READER, m8_now_mono(), &g_arena, &ans);
    m8_apikey_get_stats(k, &st);
    ok(!r && ans.status == 401 && ans.reason == M8_AK_MALFORMED_KEY &&
           strcmp(ans.detail, "Invalid or expired API key") == 0,
       "resolve: a mistyped m8 key: 401 Invalid or expired API key, reason malformed_key");
    is_int((long long)st.requests, 0, "resolve: ... without any call to the issuer");
    key[44] = '\0';
    m8_apikey_resolve(k, key, 44, M8_APIKEY_READER, m8_now_mono(), &g_arena, &ans);
    m8_apikey_get_stats(k, &st);
    ok(ans.reason == M8_AK_MALFORMED_KEY && st.requests == 0,
       "resolve: a truncated m8 key: malformed_key, no call");
    m8_apikey_make_m8(key);
    m8_apikey_resolve(k, key, strlen(key), M8_APIKEY_READER, m8_now_mono(), &g_arena, &ans);
    m8_apikey_get_stats(k, &st);
    ok(ans.status == 503 && ans.reason == M8_AK_TRANSPORT && st.requests > 0,
       "resolve: a well-formed m8 key is sent to the issuer (here: none, 503 transport)");
    unsigned long before = st.requests;
    m8_apikey_resolve(k, "ak_00000000000000000000000000000000", 35, M8_APIKEY_READER, m8_now_mono(),
                      &g_arena, &ans);
    m8_apikey_get_stats(k, &st);
    ok(st.requests > before, "resolve: a legacy ak_ key is sent to the issuer as before");
    is_str(m8_apikey_reason_name(M8_AK_MALFORMED_KEY), "malformed_key", "names: malformed_key");
    is_str(m8_apikey_reason_name(M8_AK_MISSING_SCOPE), "missing_scope", "names: missing_scope");

    /* the scope check after a resolution */
    memset(&ans, 0, sizeof ans);
    const char *scopes[] = {"items:read"};
    ans.principal.scopes = scopes;
    ans.principal.n_scopes = 1;
    ans.principal.user_id = "u1";
    ok(m8_apikey_require_scope(k, &ans, "items:read") && ans.status == 0,
       "require_scope: a key holding the scope passes");
    ok(m8_apikey_require_scope(k, &ans, NULL) && ans.status == 0,
       "require_scope: no scope required: passes");
    ok(!m8_apikey_require_scope(k, &ans, "items:write") && ans.status == 403 &&
           ans.reason == M8_AK_MISSING_SCOPE &&
           strcmp(ans.detail, "The API key lacks the required scope: items:write") == 0,
       "require_scope: a key without it: 403 The API key lacks the required scope: items:write");
    memset(&ans, 0, sizeof ans);
    ok(!m8_apikey_require_scope(k, &ans, "items:read") && ans.status == 403,
       "require_scope: an unscoped key is refused a scoped route");
    m8_apikey_free(k);
    free(s);
}

/* ------------------------------------------------------------ policy */

static void test_policy(void)
{
    m8_policy pol;
    char err[512];
    unsigned line = 0;
    const char *t1 = "items GET /items apikey reader scope=items:read\n"
                     "mixed GET /mixed reader cred=bearer,apikey scope=items:read\n"
                     "mixed2 GET /mixed2 reader scope=items:list cred=apikey,bearer\n"
                     "plain GET /plain apikey writer\n"
                     "default deny\n";
    int rc = m8_policy_parse(t1, strlen(t1), &pol, err, sizeof err, &line);
    is_int(rc, 0, "policy: scope= after apikey reader and after cred= (either order) parses (%s)",
           err);
    if (rc == 0) {
        ok(pol.rules[0].scope && strcmp(pol.rules[0].scope, "items:read") == 0 &&
               pol.rules[1].scope && strcmp(pol.rules[1].scope, "items:read") == 0 &&
               pol.rules[2].scope && strcmp(pol.rules[2].scope, "items:list") == 0 &&
               (pol.rules[2].creds & M8_ROUTE_CRED_API_KEY) && !pol.rules[3].scope,
           "policy: each rule holds its scope (or none)");
        m8_policy_free(&pol);
    }
    static const struct {
        const char *text, *what, *name;
    } bad[] = {
        {"r GET /x reader scope=items:read\ndefault deny\n", "takes no X-API-Key",
         "scope= on a reader rule without cred=apikey"},
        {"r GET /x public scope=items:read\ndefault deny\n", "takes no X-API-Key",
         "scope= on a public rule"},
        {"r GET /x admin scope=items:read\ndefault deny\n", "takes no X-API-Key",
         "scope= on an admin rule"},
        {"r GET /x reader cred=bearer scope=items:read\ndefault deny\n", "takes no X-API-Key",
         "scope= with cred=bearer (a token only: the scope could never be checked)"},
        {"r GET /x reader scope=items:read cred=bearer,cookie\ndefault deny\n",
         "takes no X-API-Key", "scope= before cred=bearer,cookie"},
        {"r GET /x apikey reader scope=items:read cred=bearer\ndefault deny\n", "X-API-Key only",
         "scope= on apikey reader narrowed to cred=bearer"},
        {"default reader cred=bearer scope=items:read\n", "takes no X-API-Key",
         "scope= with cred=bearer on the default rule"},
        {"r GET /x apikey reader scope=Items\ndefault deny\n", "scope \"Items\"",
         "an invalid scope"},
        {"r GET /x apikey reader scope=\ndefault deny\n", "scope \"\"", "an empty scope"},
        {"r GET /x apikey reader scope=a scope=b\ndefault deny\n", "unexpected", "scope= twice"},
        {"r GET /x apikey reader scopes=a\ndefault deny\n", "unexpected", "scopes= (a typo)"},
        {"r GET /x apikey reader scope=a cred=apikey extra\ndefault deny\n", "too many fields",
         "a field after cred= and scope="},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        rc = m8_policy_parse(bad[i].text, strlen(bad[i].text), &pol, err, sizeof err, &line);
        ok(rc == M8_EPARSE && line == 1 && strstr(err, bad[i].what),
           "policy: %s is refused on line 1 (%s)", bad[i].name, err);
        if (rc == 0)
            m8_policy_free(&pol);
    }
}

/* ------------------------------------------------------------ the app */

static int h_who(m8_request *req, void *data)
{
    (void)data;
    const m8_user *u = m8_req_user(req);
    return m8_res_body(req, 200, "text/plain", u ? u->id : "-", strlen(u ? u->id : "-"));
}

#define APIKEY_ENV                                                                                 \
    "API_KEY_INTROSPECTION_ENABLED=true",                                                          \
        "API_KEY_INTROSPECTION_URL=http://127.0.0.1:9/api/private/v1/api-keys/introspect",         \
        "INTERNAL_CLIENT_ID=item-service",                                                         \
        "PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789!"

static const m8_route g_routes[] = {
    {"GET", "/scoped", M8_READER, h_who, NULL, NULL, NULL,
     M8_ROUTE_CRED_BEARER | M8_ROUTE_CRED_API_KEY},
    {"GET", "/keyonly", M8_API_KEY_READER, h_who, NULL, NULL, NULL, 0},
    {"GET", "/token", M8_READER, h_who, NULL, NULL, NULL, 0},
};

static int boot_with(const char *method, const char *path, const char *scope)
{
    m8_app *app = m8_app_new("svc", "9.9.9");
    m8_app_add_routes(app, g_routes, M8_ARRAY_LEN(g_routes));
    int rc = m8_app_require_scope(app, method, path, scope);
    m8_settings_source src = {
        .env = m8t_env(APIKEY_ENV, NULL), .env_file = "/dev/null", .cwd = "/"};
    if (rc == 0)
        rc = m8_app_boot(app, &src);
    m8_app_free(app);
    return rc;
}

/* One request through the app; the status, the body in body. */
static int send(m8_app *app, const char *path, const char *hname, const char *hval, char *body,
                size_t bodylen)
{
    char uri[256];
    snprintf(uri, sizeof uri, "/api%s", path);
    m8_pair p[8];
    size_t n = 0;
    p[n++] = (m8_pair){"REQUEST_METHOD", "GET"};
    p[n++] = (m8_pair){"REQUEST_URI", uri};
    p[n++] = (m8_pair){"QUERY_STRING", ""};
    p[n++] = (m8_pair){"HTTP_HOST", "localhost"};
    p[n++] = (m8_pair){"REMOTE_ADDR", "127.0.0.1"};
    if (hname)
        p[n++] = (m8_pair){hname, hval};
    m8_buf out;
    m8_buf_init(&out, 1 << 20);
    m8_app_handle_params(app, p, n, "", 0, &out);
    int status =
        out.data && strncmp(out.data, "Status: ", 8) == 0 ? (int)strtol(out.data + 8, NULL, 10) : 0;
    const char *sep = out.data ? strstr(out.data, "\r\n\r\n") : NULL;
    snprintf(body, bodylen, "%s", sep ? sep + 4 : "");
    m8_buf_free(&out);
    return status;
}

static void test_app(void)
{
    m8_app *app = m8_app_new("svc", "9.9.9");
    m8_app_add_routes(app, g_routes, M8_ARRAY_LEN(g_routes));
    is_int(m8_app_require_scope(app, "GET", "/scoped", "Items:Read"), M8_EINVAL,
           "app: an invalid scope is refused (M8_EINVAL)");
    is_int(m8_app_require_scope(app, "GET", "/scoped", "items:read"), 0,
           "app: m8_app_require_scope GET /scoped items:read");
    is_int(m8_app_require_scope(app, "GET", "/scoped", "items:list"), M8_EINVAL,
           "app: a second scope on the same route is refused (one scope a route)");
    is_int(m8_app_require_scope(NULL, "GET", "/scoped", "a"), M8_EINVAL, "app: NULL app");
    m8_settings_source src = {
        .env = m8t_env(APIKEY_ENV, NULL), .env_file = "/dev/null", .cwd = "/"};
    int rc = m8_app_boot(app, &src);
    is_int(rc, 0, "app: an app with a scoped API-key route boots");
    is_int(m8_app_require_scope(app, "GET", "/keyonly", "a"), M8_ESTATE,
           "app: m8_app_require_scope after boot: M8_ESTATE");
    if (rc == 0) {
        m8_app_start(app);
        char body[512], auth[1200], tok[1024], payload[512];
        m8t_hs256_sign(tok, sizeof tok, "Test-Access-Secret-Key-0123456789abcdef!",
                       m8t_access_payload(payload, sizeof payload, "reader", false, 600));
        snprintf(auth, sizeof auth, "Bearer %s", tok);
        int st = send(app, "/scoped", "HTTP_AUTHORIZATION", auth, body, sizeof body);
        is_int(st, 200, "app: a token caller of the scoped route is not concerned by the scope");
        char key[M8_APIKEY_M8_LEN + 1];
        m8_apikey_make_m8(key);
        key[10] = key[10] == 'a' ? 'b' : 'a';
        st = send(app, "/scoped", "HTTP_X_API_KEY", key, body, sizeof body);
        ok(st == 401 && strcmp(body, "{\"detail\":\"Invalid or expired API key\"}") == 0,
           "app: a mistyped m8 key on the scoped route: 401 without asking the issuer");
        m8_apikey_make_m8(key);
        st = send(app, "/scoped", "HTTP_X_API_KEY", key, body, sizeof body);
        is_int(st, 503, "app: a well-formed key is introspected (no issuer here: 503)");
    }
    m8_app_free(app);
    is_int(boot_with("GET", "/token", "items:read"), 78,
           "app boot: a scope on a route that takes no X-API-Key refuses to start");
    is_int(boot_with("GET", "/nowhere", "items:read"), 78,
           "app boot: a scope for a method and path no route has refuses to start");
    is_int(boot_with("POST", "/keyonly", "items:read"), 78,
           "app boot: ... also when only the method differs");
    is_int(boot_with("GET", "/keyonly", "items:read"), 0,
           "app boot: a scope on an M8_API_KEY_READER route boots");
}

int main(void)
{
    m8_arena_init(&g_arena, 1 << 20);
    m8_log_set_level(M8_LOG_CRITICAL);
    test_format();
    test_parse();
    test_resolve();
    test_policy();
    test_app();
    m8_arena_free(&g_arena);
    return done_testing();
}
