/* test_jwks.c - the outgoing HTTP helper (httpc) and the JWKS resolver
 * (doc/wire.md#jwks, doc/wire.md#key-filtering), against
 * tests/tools/jwks_server.py on 127.0.0.1, started and stopped here by its
 * PID.
 *
 * This file holds main(), the key server and the shared helpers; the tests
 * are in test_jwks_fetch.c, test_jwks_rotation.c and test_jwks_limits.c
 * (test_jwks.h). */

#include "config.h"

#define M8T_MAIN 1 /* this file holds main() (tap.h) */
#include "test_jwks.h"

m8t_py jwks_srv = {.pid = -1};         /* its directory: the knobs and served file */
static m8t_py jwks_keys = {.pid = -1}; /* its directory: generated JWKs */
int port;

/* ------------------------------------------------------------ helpers */

void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

void write_file(const char *dir, const char *name, const char *data, size_t len)
{
    char p[PATH_MAX + 64], tmp[PATH_MAX + 80];
    path_in(p, sizeof p, dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0 || rename(tmp, p) != 0) {
        diag("cannot write %s", p);
        exit(1);
    }
}

void knob(const char *name, const char *value)
{
    char p[PATH_MAX + 64];
    path_in(p, sizeof p, jwks_srv.dir, name);
    if (value)
        write_file(jwks_srv.dir, name, value, strlen(value));
    else
        unlink(p);
}

char *slurp(const char *dir, const char *name)
{
    char p[PATH_MAX + 64];
    path_in(p, sizeof p, dir, name);
    char *s = NULL;
    size_t len = 0;
    if (m8_read_file(p, 1u << 22, true, &s, &len) != 0)
        return NULL;
    return s;
}

long hits(void)
{
    char *s = slurp(jwks_srv.dir, "hits");
    long long v = 0;
    if (s)
        m8_parse_ll(s, 0, LONG_MAX, &v);
    free(s);
    return (long)v;
}

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void server_stop(void)
{
    m8t_py_kill(&jwks_srv);
}

static void cleanup(void)
{
    m8t_py_stop(&jwks_srv);
    m8t_py_stop(&jwks_keys);
}

/* Starts the server on want (0: any port) and waits until it answers. */
int server_start(int want)
{
    char portarg[16];
    snprintf(portarg, sizeof portarg, "%d", want);
    knob("port", NULL);
    knob("hits", NULL);
    const char *args[] = {"serve", M8T_PY_DIR, "--port", portarg, NULL};
    if (m8t_py_spawn(&jwks_srv, "jwks_server.py", args, 15000) != 0) { /* up to 15 s */
        server_stop();
        return -1;
    }
    port = jwks_srv.port;
    return 0;
}

void url(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", port, path);
}

/* A generated JWK (the keys directory/name.json) with kid and use set (NULL: absent). */
json_object *jwk(const char *name, const char *kid, const char *use)
{
    char file[64];
    snprintf(file, sizeof file, "%s.json", name);
    char *s = slurp(jwks_keys.dir, file);
    json_object *o = s ? json_tokener_parse(s) : NULL;
    free(s);
    if (!o) {
        diag("missing key %s", name);
        exit(1);
    }
    if (kid)
        json_object_object_add(o, "kid", json_object_new_string(kid));
    if (use)
        json_object_object_add(o, "use", json_object_new_string(use));
    return o;
}

/* {"keys":[...]} from up to 8 JWKs (taken), NULL-terminated; caller frees. */
char *doc(json_object *k0, ...)
{
    json_object *arr = json_object_new_array();
    va_list ap;
    va_start(ap, k0);
    for (json_object *k = k0; k; k = va_arg(ap, json_object *))
        json_object_array_add(arr, k);
    va_end(ap);
    json_object *d = json_object_new_object();
    json_object_object_add(d, "keys", arr);
    char *s = strdup(json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN));
    json_object_put(d);
    return s;
}

void serve_doc(char *d)
{
    write_file(jwks_srv.dir, "jwks.json", d, strlen(d));
    free(d);
}

/* Log capture: m8_log lines go to a file while capturing. */
static char logpath[PATH_MAX + 64];
static int logfd = -1;

void log_capture(void)
{
    path_in(logpath, sizeof logpath, jwks_srv.dir, "log");
    logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    m8_log_set_fd(logfd);
}

char *log_release(void)
{
    m8_log_set_fd(-1);
    close(logfd);
    logfd = -1;
    char *s = NULL;
    size_t len = 0;
    if (m8_read_file(logpath, 1u << 22, true, &s, &len) != 0)
        return strdup("");
    unlink(logpath);
    return s;
}

/* ------------------------------------------------------------ resolver */

m8_jwks *resolver(double ttl, double cooldown)
{
    char u[128];
    url(u, sizeof u, "/jwks.json");
    return m8_jwks_new(u, M8_ALG_RS256, ttl, cooldown);
}

m8_jwks_result find(m8_jwks *r, const char *kid, double now)
{
    m8_key *k = NULL;
    m8_jwks_result res = m8_jwks_resolve(r, kid, now, &k);
    if ((res == M8_JWKS_FOUND) != (k != NULL))
        diag("resolve returned %d with key %p", (int)res, (void *)k);
    if (k && kid && (!k->kid || strcmp(k->kid, kid) != 0))
        diag("resolve(%s) returned the key of kid %s", kid, k->kid ? k->kid : "(none)");
    m8_key_unref(k);
    return res;
}

static int setup(void)
{
    atexit(cleanup);
    if (m8t_py_mkdir(&jwks_keys, "jwks-keys") != 0 || m8t_py_mkdir(&jwks_srv, "jwks-srv") != 0)
        return -1;
    const char *genkeys[] = {"genkeys", M8T_PY_DIR, NULL};
    if (m8t_py_run(&jwks_keys, "jwks_server.py", genkeys) != 0)
        return -1;
    return server_start(0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    m8_httpc_global_init();
    m8_log_set_level(M8_LOG_WARNING);
    if (setup() != 0) {
        printf("1..0 # SKIP no /usr/bin/python3 with cryptography, or the server did not start\n");
        return 0;
    }
    test_parse();
    test_httpc();
    test_new();
    test_lazy_rotation();
    test_threads();
    test_ttl_and_failures();
    test_no_kid();
    test_body_cap();
    test_kid_reuse();
    test_max_stale();
    test_no_https_downgrade();
    cleanup();
    return done_testing();
}
