/* fuzz_pipeline.c - libFuzzer target for the whole request pipeline.
 *
 * Each input is turned into FastCGI records and sent over a unix socket to
 * the library's own epoll server (m8_server_start, lib/app/engine_epoll.c), which
 * decodes the records (lib/fcgi_proto.c) and runs the request exactly as a
 * deployed service does (m8_app_respond: trusted host, CORS, request id,
 * router with path params, 404/405/307, body limit, JSON body, token
 * checks, built-in routes, security headers).  The answer is read back and
 * checked: the record framing, then the CGI header block, where any CR, LF
 * or NUL in a header name or value, a malformed line, a missing or
 * duplicate Status, a bad Content-Length, a header name the pipeline never
 * sets or one sent twice (how a smuggled CRLF would show), a bad
 * X-Request-ID, or a library 307 whose Location leaves the service's
 * trusted hosts aborts.  Handlers of protected routes abort if they ever
 * run for a caller the route does not admit.  Everything else is left to
 * ASan/UBSan.
 *
 * Three services are booted once (no network: fixed keys, stateless mode):
 *   app 0  local, HS256, trusted hosts (with a www redirect), CORS, metrics
 *   app 1  production, RS256 (a key made at start, its public half given
 *          as ACCESS_PUBLIC_KEY_FILE), strict claims, 403 for bad tokens,
 *          scrape and health credentials, HSTS and CSP, API_PREFIX=/v1
 *   app 2  staging, HS256, never started (service routes answer 503)
 *
 * Input format (text; see tests/fuzz/corpus/pipeline/ for examples):
 *   lines up to the first empty line, then the request body (raw bytes);
 *   NAME=VALUE   one FastCGI param; in names and values \r \n \t \0 \\ and
 *                \xHH stand for those bytes
 *   @app N       which service (0, 1, 2; default 0)
 *   @hs256 JSON  adds HTTP_AUTHORIZATION "<scheme> <token>", the token an
 *                HS256 JWS over the JSON payload, signed with app 0/2's key
 *   @rs256 JSON  the same, RS256 with app 1's key
 *   @jose JSON   the JOSE header of the next token (default {"alg":..,"typ":"JWT"})
 *   @scheme W    the word before the token (default Bearer)
 *   @tamper N    flips bit N of the next token's signature
 *   @keep        FCGI_KEEP_CONN, and the request is sent twice on the connection
 *   @split N     record content size for PARAMS and STDIN (1-65535, default 65535)
 *   @abort       an ABORT_REQUEST record after the params
 * CONTENT_LENGTH is set to the body length unless a line gives it.
 * An input whose first byte is 1 (the FastCGI version) is sent as is: a raw
 * record stream for app 0.  FUZZ_PIPELINE_SHOW=1 in the environment prints
 * each answer's records to stderr (to see what a seed does).  The sockets
 * live in a directory under $TMPDIR, removed at exit. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "app/app.h"
#include "app/server.h"
#include "auth/jwt.h"
#include "core/log.h"
#include "http/fcgi_proto.h"
#include "http/http.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define N_APPS 3
#define MAX_PARAMS 600      /* a little over M8_MAX_PARAMS: the limit is exercised */
#define MAX_BODY 4096       /* m8_app_set_max_body of every app */
#define IO_TIMEOUT_MS 10000 /* a stuck exchange is a hang: abort */

static const char hs_secret[] = "Fuzz-Pipeline-Access-Secret-0123456789abcdef!";

typedef struct svc {
    m8_app *app;
    m8_server *srv;
    char sock[108];
} svc;

static svc svcs[N_APPS];
static char tmpdir[64];
static EVP_PKEY *rsa_key;

/* ------------------------------------------------------------ routes */

/* The caller a protected handler sees must be one the route admits: the
 * pipeline let the request through, so anything else is an auth bypass. */
static void bypass(const m8_request *req, const char *why)
{
    fprintf(stderr, "fuzz_pipeline: %s %s reached its handler: %s\n", m8_req_method(req),
            m8_req_path(req), why);
    abort();
}

static const m8_user *must_user(m8_request *req, const char *min_role)
{
    const m8_user *u = m8_req_user(req);
    if (!u || !u->id || !u->role || !u->is_active)
        bypass(req, "no active user");
    if (min_role && !m8_role_at_least(u->role, min_role))
        bypass(req, "a role below the route's");
    return u;
}

static int h_item(m8_request *req, void *data)
{
    (void)data;
    const char *id = m8_req_path_param(req, "item_id");
    if (!id)
        abort();
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(id));
    const char *q = m8_req_query(req, "q");
    if (q)
        json_object_object_add(o, "q", json_object_new_string(q));
    m8_res_header(req, "X-Item", id); /* refused when id has a control byte */
    return m8_res_json(req, 200, o);
}

static int h_create(m8_request *req, void *data)
{
    (void)data;
    json_object *body = m8_req_json(req);
    json_object *name = NULL;
    if (json_object_object_get_ex(body, "name", &name) &&
        json_object_is_type(name, json_type_string)) {
        char loc[512];
        snprintf(loc, sizeof loc, "/api/items/%s", json_object_get_string(name));
        m8_res_header(req, "Location", loc);
    }
    return m8_res_json(req, 201, json_object_get(body));
}

static int h_me(m8_request *req, void *data)
{
    (void)data;
    const m8_user *u = must_user(req, NULL);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(u->id));
    json_object_object_add(o, "role", json_object_new_string(u->role));
    if (u->email) {
        json_object_object_add(o, "email", json_object_new_string(u->email));
        m8_res_header(req, "X-User-Email", u->email);
    }
    if (u->full_name)
        m8_res_header(req, "X-User-Name", u->full_name);
    if (u->tenant_id)
        m8_res_header(req, "X-Tenant", u->tenant_id);
    return m8_res_json(req, 200, o);
}

static int h_read(m8_request *req, void *data)
{
    must_user(req, data);
    return m8_res_json(req, 200, json_object_new_string("read"));
}

static int h_write(m8_request *req, void *data)
{
    must_user(req, "writer");
    size_t len = 0;
    m8_req_body(req, &len);
    if (len == 0) /* an empty body is a 422 on an M8_ROUTE_JSON_BODY route (JSON null is NULL) */
        bypass(req, "no JSON body on an M8_ROUTE_JSON_BODY route");
    (void)data;
    return m8_res_json(req, 200, json_object_get(m8_req_json(req)));
}

static int h_super(m8_request *req, void *data)
{
    (void)data;
    const m8_user *u = must_user(req, "superadmin");
    if (!u->is_superuser || strcmp(u->role, "superadmin") != 0)
        bypass(req, "not a superuser");
    return m8_res_json(req, 200, json_object_new_string("super"));
}

/* A service that reflects a client header and a query value into its
 * answer: the library must refuse what cannot be a header value. */
static int h_reflect(m8_request *req, void *data)
{
    (void)data;
    const char *v = m8_req_header(req, "X-Echo");
    if (v) {
        m8_res_header(req, "X-Echo", v);
        if (!m8_res_get_header(req, v))
            m8_res_header(req, v, "name-from-client"); /* a client-chosen header name */
    }
    const char *to = m8_req_query(req, "to");
    int rc = m8_res_body(req, to ? 302 : 200, "text/plain; charset=utf-8", "ok", 2);
    if (to)
        m8_res_header(req, "Location", to);
    const char *ct = m8_req_query(req, "ct");
    if (ct)
        m8_res_header(req, "Content-Type", ct);
    return rc;
}

static int h_fail(m8_request *req, void *data)
{
    (void)data;
    return m8_req_fail(req, "fuzz failure with \r\n in the reason");
}

static int h_empty(m8_request *req, void *data)
{
    (void)data;
    return m8_res_body(req, 204, NULL, NULL, 0);
}

static const m8_route routes[] = {
    {"GET", "/items/{item_id}", M8_PUBLIC, h_item, NULL, "Read an item", "items", 0},
    {"POST", "/items", M8_PUBLIC, h_create, NULL, "Create an item", "items", M8_ROUTE_JSON_BODY},
    {"PUT", "/items/{item_id}", M8_WRITER, h_write, NULL, "Replace", "items", M8_ROUTE_JSON_BODY},
    {"DELETE", "/items/{item_id}", M8_ADMIN, h_read, (void *)"admin", "Delete", "items", 0},
    {"GET", "/me", M8_USER, h_me, NULL, "Who am I", "users", 0},
    {"GET", "/reports/{year}/{month}", M8_READER, h_read, (void *)"reader", NULL, NULL, 0},
    {"GET", "/super", M8_SUPERUSER, h_super, NULL, NULL, NULL, M8_ROUTE_HIDDEN},
    {"GET", "/reflect", M8_PUBLIC, h_reflect, NULL, NULL, NULL, 0},
    {"POST", "/reflect", M8_PUBLIC, h_reflect, NULL, NULL, NULL, 0},
    {"GET", "/fail", M8_PUBLIC, h_fail, NULL, NULL, NULL, 0},
    {"DELETE", "/sessions/current", M8_USER, h_empty, NULL, NULL, NULL, 0},
    {"GET", "/root-ping", M8_PUBLIC, h_empty, NULL, NULL, NULL, M8_ROUTE_ABSOLUTE},
};

static m8_health_status check_ok(m8_health_report *rep, void *data)
{
    (void)rep;
    (void)data;
    return M8_HEALTH_OK;
}

/* ------------------------------------------------------------ boot */

static void die(const char *what)
{
    fprintf(stderr, "fuzz_pipeline: %s\n", what);
    abort();
}

/* Boots app i from env (NULL-terminated) and serves it on its own unix
 * socket with one thread. */
static void boot(int i, char **env, bool start)
{
    svc *s = &svcs[i];
    s->app = m8_app_new("fuzz-svc", "1.2.3");
    if (!s->app || m8_app_add_routes(s->app, routes, M8_ARRAY_LEN(routes)) ||
        m8_app_set_max_body(s->app, MAX_BODY) ||
        m8_app_add_health_check(s->app, "dep", check_ok, NULL) ||
        m8_app_health_options(s->app, 1.0, M8_HEALTH_LENIENT, 3600.0, 0))
        die("cannot build the app");
    m8_settings_source src = {.env = env, .env_file = "/dev/null", .cwd = "/"};
    if (m8_app_boot(s->app, &src) != 0)
        die("an app does not boot (run with M8_LOG_LEVEL=info to see why)");
    if (start && m8_app_start(s->app) != 0)
        die("startup failed");
    snprintf(s->sock, sizeof s->sock, "%s/app%d.sock", tmpdir, i);
    char spec[128], err[256];
    snprintf(spec, sizeof spec, "unix:%s", s->sock);
    int fd = m8_listen(spec, 64, 0600, err, sizeof err);
    if (fd < 0)
        die(err);
    m8_engine_opts o;
    m8_app_engine_opts(s->app, &o);
    o.max_body = MAX_BODY;
    s->srv = m8_server_start(&o, fd, err, sizeof err);
    if (!s->srv)
        die(err);
}

static void cleanup(void)
{
    for (int i = 0; i < N_APPS; i++) {
        if (svcs[i].sock[0])
            unlink(svcs[i].sock);
    }
    if (tmpdir[0])
        rmdir(tmpdir);
}

static char *write_public_key(void)
{
    static char path[96];
    snprintf(path, sizeof path, "%s/access.pub.pem", tmpdir);
    BIO *bio = BIO_new_file(path, "w");
    if (!bio || !PEM_write_bio_PUBKEY(bio, rsa_key))
        die("cannot write the public key");
    BIO_free(bio);
    return path;
}

static const char *const common_env[] = {
    "DOMAIN=localhost",
    "PROJECT_NAME=fuzz-service",
    "STACK_NAME=fuzz",
    "REFRESH_SECRET_KEY=Fuzz-Pipeline-Refresh-Secret-0123456789abcdef!",
    "TOKEN_MODE=stateless",
    "AUTH_SERVICE_ROLE=consumer",
    "EVENT_SIGNING_KEY=Fuzz-Pipeline-Event-Signing-0123456789abcdef!",
    "SERVICE_VERSION=1.2.3",
    "CONTRACT_VERSION=1.0",
    "CONTRACT_RANGE=>=1.0.0 <2.0.0",
    NULL,
};

/* common_env followed by extra (both NULL-terminated); kept for the life
 * of the process. */
static char **make_env(const char *const *extra)
{
    static char *envs[N_APPS][64];
    static int next;
    char **env = envs[next++];
    size_t n = 0;
    for (size_t i = 0; common_env[i]; i++)
        env[n++] = (char *)common_env[i];
    for (size_t i = 0; extra[i] && n < 63; i++)
        env[n++] = (char *)extra[i];
    env[n] = NULL;
    return env;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        die("sodium_init");
    /* Log everything (the access log sees fuzzed methods, ids and reasons)
     * but keep the output quiet. */
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    m8_log_set_fd(devnull);
    m8_log_set_level(M8_LOG_DEBUG);
    const char *td = getenv("TMPDIR");
    if (!td || !*td || strlen(td) > 40)
        td = "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/fuzz_pipeline.XXXXXX", td);
    if (!mkdtemp(tmpdir))
        die("mkdtemp");
    atexit(cleanup);
    rsa_key = EVP_RSA_gen(2048);
    if (!rsa_key)
        die("cannot make an RSA key");

    static const char *const app0[] = {
        "ENVIRONMENT=local",
        "API_PREFIX=/api",
        "BACKEND_HOST=http://localhost:8000",
        "FRONTEND_HOST=http://localhost:3000",
        "BACKEND_CORS_ORIGINS=http://localhost:3000,https://app.example.com",
        "ALLOWED_HOSTS=localhost,api.example.com,www.example.org,*.svc.example.net",
        "ACCESS_TOKEN_ALGORITHM=HS256",
        "ACCESS_SECRET_KEY=Fuzz-Pipeline-Access-Secret-0123456789abcdef!",
        "TOKEN_STRICT_VALIDATION=false",
        "METRICS_ENABLED=true",
        NULL,
    };
    boot(0, make_env(app0), true);

    static char pubkey_setting[160];
    snprintf(pubkey_setting, sizeof pubkey_setting, "ACCESS_PUBLIC_KEY_FILE=%s",
             write_public_key());
    static const char *app1[] = {
        "ENVIRONMENT=production",
        "API_PREFIX=/v1",
        "BACKEND_HOST=https://api.example.com",
        "FRONTEND_HOST=https://app.example.com",
        "BACKEND_CORS_ORIGINS=https://app.example.com",
        "ALLOWED_HOSTS=api.example.com,www.example.com",
        "ACCESS_TOKEN_ALGORITHM=RS256",
        NULL, /* the key file */
        "TOKEN_STRICT_VALIDATION=true",
        "TOKEN_ISSUER=https://auth.example.com",
        "TOKEN_AUDIENCE=item-service",
        "AUTH_INVALID_TOKEN_STATUS=403",
        "METRICS_ENABLED=true",
        "METRICS_SCRAPE_CREDENTIAL=Fuzz-Scrape-Credential-0123456789",
        "HEALTH_DETAIL_CREDENTIAL=Fuzz-Health-Credential-0123456789",
        "HSTS_ENABLED=true",
        "CONTENT_SECURITY_POLICY_ENABLED=true",
        NULL,
    };
    app1[7] = pubkey_setting;
    boot(1, make_env(app1), true);
    unlink(pubkey_setting + strlen("ACCESS_PUBLIC_KEY_FILE="));

    static const char *const app2[] = {
        "ENVIRONMENT=staging",
        "API_PREFIX=/api",
        "BACKEND_HOST=https://api.example.com",
        "FRONTEND_HOST=https://app.example.com",
        "BACKEND_CORS_ORIGINS=https://app.example.com",
        "ACCESS_TOKEN_ALGORITHM=HS256",
        "ACCESS_SECRET_KEY=Fuzz-Pipeline-Access-Secret-0123456789abcdef!",
        "TOKEN_STRICT_VALIDATION=false",
        "METRICS_ENABLED=false",
        "SET_OPEN_API=true",
        NULL,
    };
    boot(2, make_env(app2), false);
    return 0;
}

/* ------------------------------------------------------------ input */

typedef struct param {
    char *name, *value;
    size_t nl, vl;
} param;

typedef struct input {
    int app;
    param params[MAX_PARAMS];
    size_t n;
    bool keep, abort_req, have_cl;
    size_t split;
    const char *body;
    size_t body_len;
    /* token synthesis */
    const char *jose;
    size_t jose_len;
    const char *scheme;
    size_t scheme_len;
    long tamper;
} input;

/* Decodes the escapes of s[0..n) into out (which has room for n bytes);
 * returns the decoded length. */
static size_t unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[i + 1];
            int v = -1;
            switch (e) {
            case 'r': v = '\r'; break;
            case 'n': v = '\n'; break;
            case 't': v = '\t'; break;
            case '0': v = 0; break;
            case '\\': v = '\\'; break;
            case 'x':
                if (i + 3 < n) {
                    char hex[3] = {s[i + 2], s[i + 3], 0};
                    char *end;
                    long h = strtol(hex, &end, 16);
                    if (end == hex + 2) {
                        out[o++] = (char)h;
                        i += 3;
                        continue;
                    }
                }
                break;
            default: break;
            }
            if (v >= 0) {
                out[o++] = (char)v;
                i++;
                continue;
            }
        }
        out[o++] = c;
    }
    return o;
}

static bool word_is(const char *line, size_t n, const char *word, const char **arg, size_t *argn)
{
    size_t wl = strlen(word);
    if (n < wl || memcmp(line, word, wl) != 0 || (n > wl && line[wl] != ' '))
        return false;
    *arg = n > wl ? line + wl + 1 : line + n;
    *argn = n > wl ? n - wl - 1 : 0;
    return true;
}

static long num_arg(const char *a, size_t n, long min, long max, long dflt)
{
    char tmp[24];
    if (n == 0 || n >= sizeof tmp)
        return dflt;
    memcpy(tmp, a, n);
    tmp[n] = '\0';
    char *end;
    long v = strtol(tmp, &end, 10);
    return *end || v < min || v > max ? dflt : v;
}

static void add_param(input *in, m8_arena *a, const char *name, size_t nl, const char *value,
                      size_t vl)
{
    if (in->n >= MAX_PARAMS)
        return;
    param *p = &in->params[in->n++];
    p->name = m8_arena_strndup(a, name, nl);
    p->value = m8_arena_strndup(a, value, vl);
    p->nl = nl;
    p->vl = vl;
    if (!p->name || !p->value)
        in->n--;
}

/* The token for a signed payload: JOSE header, payload, signature. */
static void add_token(input *in, m8_arena *a, bool rs256, const char *payload, size_t pl)
{
    m8_buf tok;
    m8_buf_init(&tok, 4 * M8_MAX_TOKEN_BYTES);
    const char *dflt =
        rs256 ? "{\"alg\":\"RS256\",\"typ\":\"JWT\"}" : "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const char *jose = in->jose ? in->jose : dflt;
    size_t jl = in->jose ? in->jose_len : strlen(dflt);
    m8_b64url_encode(&tok, (const unsigned char *)jose, jl);
    m8_buf_putc(&tok, '.');
    m8_b64url_encode(&tok, (const unsigned char *)payload, pl);
    unsigned char sig[512];
    size_t sl = 0;
    if (rs256) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        sl = sizeof sig;
        if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, rsa_key) != 1 ||
            EVP_DigestSign(md, sig, &sl, (const unsigned char *)tok.data, tok.len) != 1)
            die("RS256 signing failed");
        EVP_MD_CTX_free(md);
    } else {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)hs_secret, sizeof hs_secret - 1);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok.data, tok.len);
        crypto_auth_hmacsha256_final(&st, sig);
        sl = crypto_auth_hmacsha256_BYTES;
    }
    if (in->tamper >= 0)
        sig[(size_t)in->tamper / 8 % sl] ^= (unsigned char)(1u << (in->tamper % 8));
    m8_buf_putc(&tok, '.');
    m8_b64url_encode(&tok, sig, sl);
    m8_buf hv;
    m8_buf_init(&hv, 8 * M8_MAX_TOKEN_BYTES);
    if (in->scheme)
        m8_buf_append(&hv, in->scheme, in->scheme_len);
    else
        m8_buf_puts(&hv, "Bearer");
    m8_buf_putc(&hv, ' ');
    if (tok.data)
        m8_buf_append(&hv, tok.data, tok.len);
    if (hv.data)
        add_param(in, a, "HTTP_AUTHORIZATION", 18, hv.data, hv.len);
    m8_buf_free(&hv);
    m8_buf_free(&tok);
    in->jose = NULL;
    in->tamper = -1;
}

static void parse_input(input *in, m8_arena *a, const char *d, size_t size)
{
    memset(in, 0, sizeof *in);
    in->split = 65535;
    in->tamper = -1;
    size_t pos = 0;
    char *scratch = m8_arena_alloc(a, size + 1);
    char *scratch2 = m8_arena_alloc(a, size + 1);
    if (!scratch || !scratch2)
        return;
    while (pos < size) {
        const char *nl = memchr(d + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (d + pos)) : size - pos;
        const char *line = d + pos;
        pos += len + (nl ? 1 : 0);
        if (len == 0) {
            in->body = d + pos;
            in->body_len = size - pos;
            break;
        }
        const char *arg;
        size_t an;
        if (line[0] == '@') {
            if (word_is(line, len, "@app", &arg, &an)) {
                in->app = (int)num_arg(arg, an, 0, N_APPS - 1, 0);
            } else if (word_is(line, len, "@keep", &arg, &an)) {
                in->keep = true;
            } else if (word_is(line, len, "@abort", &arg, &an)) {
                in->abort_req = true;
            } else if (word_is(line, len, "@split", &arg, &an)) {
                in->split = (size_t)num_arg(arg, an, 1, 65535, 65535);
            } else if (word_is(line, len, "@tamper", &arg, &an)) {
                in->tamper = num_arg(arg, an, 0, 4095, -1);
            } else if (word_is(line, len, "@jose", &arg, &an)) {
                in->jose_len = unescape(arg, an, scratch);
                in->jose = m8_arena_strndup(a, scratch, in->jose_len);
            } else if (word_is(line, len, "@scheme", &arg, &an)) {
                in->scheme_len = unescape(arg, an, scratch);
                in->scheme = m8_arena_strndup(a, scratch, in->scheme_len);
            } else if (word_is(line, len, "@hs256", &arg, &an) ||
                       word_is(line, len, "@rs256", &arg, &an)) {
                size_t pl = unescape(arg, an, scratch);
                add_token(in, a, line[1] == 'r', scratch, pl);
            }
            continue;
        }
        const char *eq = memchr(line, '=', len);
        size_t rawn = eq ? (size_t)(eq - line) : len;
        size_t nlen = unescape(line, rawn, scratch);
        size_t vlen = eq ? unescape(eq + 1, len - rawn - 1, scratch2) : 0;
        if (nlen == 14 && memcmp(scratch, "CONTENT_LENGTH", 14) == 0)
            in->have_cl = true;
        add_param(in, a, scratch, nlen, scratch2, vlen);
    }
    if (!in->have_cl && in->body_len) {
        char cl[24];
        int n = snprintf(cl, sizeof cl, "%zu", in->body_len);
        add_param(in, a, "CONTENT_LENGTH", 14, cl, (size_t)n);
    }
}

/* ------------------------------------------------------------ records */

static void records(m8_buf *out, int type, uint16_t id, const char *p, size_t n, size_t split)
{
    while (n) {
        size_t k = n < split ? n : split;
        m8_fcgi_record(out, type, id, p, k);
        p += k;
        n -= k;
    }
    m8_fcgi_record(out, type, id, NULL, 0);
}

static void encode_request(m8_buf *out, const input *in, uint16_t id)
{
    unsigned char begin[8] = {0, M8_FCGI_RESPONDER, (unsigned char)(in->keep ? 1 : 0), 0, 0, 0, 0,
                              0};
    m8_fcgi_record(out, M8_FCGI_BEGIN_REQUEST, id, begin, sizeof begin);
    m8_buf stream;
    m8_buf_init(&stream, 8u << 20);
    for (size_t i = 0; i < in->n; i++)
        m8_fcgi_encode_pair(&stream, in->params[i].name, in->params[i].nl, in->params[i].value,
                            in->params[i].vl);
    records(out, M8_FCGI_PARAMS, id, stream.data, stream.len, in->split);
    m8_buf_free(&stream);
    if (in->abort_req) {
        m8_fcgi_record(out, M8_FCGI_ABORT_REQUEST, id, NULL, 0);
        return;
    }
    records(out, M8_FCGI_STDIN, id, in->body, in->body_len, in->split);
}

/* ------------------------------------------------------------ exchange */

/* Sends wire to the app's socket and reads everything it answers until it
 * closes the connection. */
static void exchange(const svc *s, const char *wire, size_t len, m8_buf *reply)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, s->sock, strlen(s->sock) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("cannot connect to the service");
    size_t sent = 0;
    bool wr_open = true;
    if (len == 0) {
        shutdown(fd, SHUT_WR);
        wr_open = false;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = (short)(POLLIN | (wr_open ? POLLOUT : 0))};
        int r = poll(&pfd, 1, IO_TIMEOUT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            die("the service did not answer within 10 s");
        if (wr_open && (pfd.revents & POLLOUT)) {
            ssize_t w = send(fd, wire + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                sent = len; /* the service closed early (a protocol error): fine */
            if (sent == len) {
                shutdown(fd, SHUT_WR);
                wr_open = false;
            }
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (m8_buf_reserve(reply, 65536) != 0)
                die("answer too large");
            ssize_t n = recv(fd, reply->data + reply->len, reply->cap - reply->len - 1, 0);
            if (n > 0) {
                reply->len += (size_t)n;
                reply->data[reply->len] = '\0';
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                break;
            }
        }
    }
    close(fd);
}

/* ------------------------------------------------------------ checks */

static void bad(const char *why, const char *p, size_t n)
{
    fprintf(stderr, "fuzz_pipeline: %s\n--- response head ---\n", why);
    fwrite(p, 1, n > 4096 ? 4096 : n, stderr);
    fprintf(stderr, "\n---\n");
    abort();
}

static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Every response header name the pipeline and the routes above set. */
static bool known_name(const char *name, size_t n)
{
    static const char *const names[] = {
        "Status",
        "Content-Type",
        "Content-Length",
        "X-Request-ID",
        "Location",
        "Allow",
        "WWW-Authenticate",
        "Retry-After",
        "Vary",
        "Cache-Control",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
        "Permissions-Policy",
        "Strict-Transport-Security",
        "Content-Security-Policy",
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
        "Access-Control-Max-Age",
        "X-Item",
        "X-User-Email",
        "X-User-Name",
        "X-Tenant",
        "X-Echo",
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(names); i++) {
        if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0)
            return true;
    }
    return false;
}

/* The library's own redirects (307: the trusted-host www redirect, the
 * router's trailing slash) stay on the service: a path on this host (not
 * "//host", which a browser reads as another host), or an absolute URL whose
 * authority is exactly "host[:port]" with a host the app trusts. */
static bool redirect_ok(int app, const char *v, size_t n)
{
    static const char *const trusted[N_APPS][5] = {
        {"localhost", "api.example.com", "www.example.org", ".svc.example.net", "testserver"},
        {"api.example.com", "www.example.com"},
        {NULL}, /* app 2 trusts any host, and never redirects to one */
    };
    if (n >= 1 && v[0] == '/')
        return n == 1 || (v[1] != '/' && v[1] != '\\');
    size_t skip = n >= 8 && strncmp(v, "https://", 8) == 0  ? 8
                  : n >= 7 && strncmp(v, "http://", 7) == 0 ? 7
                                                            : 0;
    if (!skip)
        return false;
    const char *host = v + skip;
    size_t hl = 0;
    while (skip + hl < n && host[hl] != '/' && host[hl] != ':' && host[hl] != '?' &&
           host[hl] != '#')
        hl++;
    size_t end = skip + hl;
    if (end < n && v[end] == ':') {
        size_t digits = 0;
        while (end + 1 + digits < n && v[end + 1 + digits] >= '0' && v[end + 1 + digits] <= '9')
            digits++;
        if (digits == 0)
            return false;
        end += 1 + digits;
    }
    if (end < n && v[end] != '/')
        return false; /* userinfo, a second authority, a backslash ... */
    for (size_t i = 0; i < hl; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    for (size_t i = 0; i < 5 && trusted[app][i]; i++) {
        const char *t = trusted[app][i];
        size_t tl = strlen(t);
        if (t[0] == '.' ? hl > tl && strncasecmp(host + hl - tl, t, tl) == 0
                        : hl == tl && strncasecmp(host, t, tl) == 0)
            return true;
    }
    return false;
}

/* The CGI response of one request: header lines "Name: value" ending in
 * CRLF, a blank line, the body.  nginx, Apache and libfcgi's clients read
 * this block; a CR or LF inside a line would split a header (response
 * splitting), a NUL would cut it short. */
static void check_response(int app, const char *r, size_t n)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < n; i++) {
        if (memcmp(r + i, "\r\n\r\n", 4) == 0) {
            end = r + i;
            break;
        }
    }
    if (!end)
        bad("no blank line after the headers", r, n);
    size_t head_len = (size_t)(end - r) + 2;
    const char *body = end + 4;
    size_t body_len = n - (size_t)(body - r);
    int n_status = 0, n_cl = 0, n_ct = 0, n_rid = 0, n_lines = 0, status = 0;
    long long cl = -1;
    const char *loc = NULL;
    size_t loc_len = 0;
    for (const char *line = r; line < r + head_len;) {
        const char *eol = NULL;
        for (const char *p = line; p + 1 < r + head_len + 1; p++) {
            if (p[0] == '\r' && p[1] == '\n') {
                eol = p;
                break;
            }
        }
        if (!eol)
            bad("a header line without CRLF", r, head_len);
        size_t ll = (size_t)(eol - line);
        n_lines++;
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line)
            bad("a header line without a name", r, head_len);
        for (const char *p = line; p < colon; p++) {
            if (!tchar((unsigned char)*p))
                bad("a header name with a byte outside the token set", r, head_len);
        }
        if (colon + 1 >= eol || colon[1] != ' ')
            bad("a header without \": \"", r, head_len);
        for (const char *p = colon + 1; p < eol; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '\r' || c == '\n' || c == '\0')
                bad("CR, LF or NUL in a header value", r, head_len);
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                bad("a control byte in a header value", r, head_len);
        }
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 2;
        size_t vl = (size_t)(eol - v);
        /* A CRLF smuggled into a value would show as an extra line: every
         * name is one the pipeline sets, at most once (the reflect route's
         * client-chosen name carries a fixed value). */
        for (const char *q = eol + 2; q < r + head_len;) {
            const char *qe = strstr(q, "\r\n");
            if (!qe)
                break;
            if ((size_t)(qe - q) > nl && q[nl] == ':' && strncasecmp(q, line, nl) == 0)
                bad("a header name twice", r, head_len);
            q = qe + 2;
        }
        if (!known_name(line, nl) && !(vl == 16 && memcmp(v, "name-from-client", 16) == 0))
            bad("a header the pipeline never sets", r, head_len);
        if (nl == 6 && strncasecmp(line, "Status", 6) == 0) {
            n_status++;
            if (line != r)
                bad("Status is not the first line", r, head_len);
            if (vl < 3 || v[0] < '1' || v[0] > '5' || v[1] < '0' || v[1] > '9' || v[2] < '0' ||
                v[2] > '9' || (vl > 3 && v[3] != ' '))
                bad("a malformed Status", r, head_len);
            status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
        } else if (nl == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
            n_cl++;
            char tmp[24];
            if (vl == 0 || vl >= sizeof tmp)
                bad("a malformed Content-Length", r, head_len);
            memcpy(tmp, v, vl);
            tmp[vl] = '\0';
            if (m8_parse_ll(tmp, 0, (long long)M8_MAX_RESPONSE_BYTES, &cl) != 0)
                bad("a malformed Content-Length", r, head_len);
        } else if (nl == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
            n_ct++;
        } else if (nl == 8 && strncasecmp(line, "Location", 8) == 0) {
            loc = v;
            loc_len = vl;
        } else if (nl == 12 && strncasecmp(line, "X-Request-ID", 12) == 0) {
            n_rid++;
            if (vl == 0 || vl > M8_MAX_REQUEST_ID)
                bad("an X-Request-ID of a bad length", r, head_len);
            for (size_t i = 0; i < vl; i++) {
                char c = v[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                    bad("an X-Request-ID outside [A-Za-z0-9._-]", r, head_len);
            }
        }
        line = eol + 2;
    }
    if (n_status != 1)
        bad("not exactly one Status", r, head_len);
    if (n_ct > 1 || n_cl > 1)
        bad("a duplicate Content-Type or Content-Length", r, head_len);
    if (n_rid != 1)
        bad("not exactly one X-Request-ID", r, head_len);
    if (n_lines > (int)M8_MAX_RESPONSE_HEADERS + 32)
        bad("too many header lines", r, head_len);
    if (status == 307 && !loc)
        bad("a 307 without a Location", r, head_len);
    if (status == 307 && !redirect_ok(app, loc, loc_len))
        bad("a 307 whose Location leaves the service's trusted hosts", r, head_len);
    bool bodiless = status < 200 || status == 204 || status == 304;
    if (bodiless ? (n_cl != 0 || body_len != 0) : (n_cl != 1 || (size_t)cl != body_len))
        bad("Content-Length does not match the body", r, head_len);
}

/* Walks the records the service sent: well-formed framing, and each
 * request's STDOUT stream, once its END_REQUEST arrived, checked. */
static void check_reply(int app, const m8_buf *reply)
{
    static m8_buf stdout_of[4];
    for (size_t i = 0; i < M8_ARRAY_LEN(stdout_of); i++) {
        if (!stdout_of[i].max)
            m8_buf_init(&stdout_of[i], M8_MAX_RESPONSE_BYTES + 65536);
        m8_buf_reset(&stdout_of[i]);
    }
    const unsigned char *p = (const unsigned char *)reply->data;
    size_t n = reply->len, pos = 0;
    while (pos < n) {
        if (n - pos < 8)
            bad("a truncated record header", reply->data, n);
        const unsigned char *h = p + pos;
        size_t clen = (size_t)h[4] << 8 | h[5], plen = h[6];
        uint16_t id = (uint16_t)(h[2] << 8 | h[3]);
        if (h[0] != 1 || n - pos - 8 < clen + plen)
            bad("a bad or truncated record", reply->data, n);
        const char *content = (const char *)h + 8;
        m8_buf *so = &stdout_of[id % M8_ARRAY_LEN(stdout_of)];
        switch (h[1]) {
        case M8_FCGI_STDOUT:
            if (m8_buf_append(so, content, clen) != 0)
                bad("an answer over the response limit", reply->data, n);
            break;
        case M8_FCGI_END_REQUEST:
            if (clen != 8)
                bad("an END_REQUEST of the wrong size", reply->data, n);
            if (so->len)
                check_response(app, so->data, so->len);
            m8_buf_reset(so);
            break;
        case M8_FCGI_STDERR:
        case M8_FCGI_GET_VALUES_RESULT:
        case M8_FCGI_UNKNOWN_TYPE: break;
        default: bad("a record type a responder never sends", reply->data, n);
        }
        pos += 8 + clen + plen;
    }
    for (size_t i = 0; i < M8_ARRAY_LEN(stdout_of); i++) {
        if (stdout_of[i].len)
            bad("a STDOUT stream without its END_REQUEST", stdout_of[i].data, stdout_of[i].len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    m8_buf wire, reply;
    m8_buf_init(&wire, 16u << 20);
    m8_buf_init(&reply, 2 * (M8_MAX_RESPONSE_BYTES + 65536));
    int app = 0;
    if (size && data[0] == 1) {
        m8_buf_append(&wire, data, size);
    } else {
        m8_arena a;
        m8_arena_init(&a, 0);
        static input in;
        parse_input(&in, &a, (const char *)data, size);
        app = in.app;
        encode_request(&wire, &in, 1);
        if (in.keep)
            encode_request(&wire, &in, 2);
        m8_arena_free(&a);
    }
    exchange(&svcs[app], wire.data ? wire.data : "", wire.len, &reply);
    if (getenv("FUZZ_PIPELINE_SHOW")) /* to see what a seed does */
        fwrite(reply.data ? reply.data : "", 1, reply.len, stderr);
    check_reply(app, &reply);
    m8_buf_free(&wire);
    m8_buf_free(&reply);
    return 0;
}
