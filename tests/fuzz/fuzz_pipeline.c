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
 * live in a directory under $TMPDIR, removed at exit.
 *
 * The input parser and encoder are in pipeline_encode.c, the checks of
 * the answer in pipeline_check.c (pipeline.h). */

#include "config.h"

#include "pipeline.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BODY 4096       /* m8_app_set_max_body of every app */
#define IO_TIMEOUT_MS 10000 /* a stuck exchange is a hang: abort */

typedef struct svc {
    m8_app *app;
    m8_server *srv;
    char sock[108];
} svc;

static svc svcs[N_APPS];
static char tmpdir[64];
EVP_PKEY *rsa_key;

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

void die(const char *what)
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
