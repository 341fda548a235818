/* test_jwks.c - the outgoing HTTP helper (httpc) and the JWKS resolver
 * (doc/wire.md#jwks, doc/wire.md#key-filtering), against
 * tests/tools/jwks_server.py on 127.0.0.1, started and stopped here by its
 * PID. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "core/log.h"
#include "net/httpc.h"
#include "shm/shm.h"
#include "tap.h"

extern char **environ;

static char script[PATH_MAX];
static char keydir[PATH_MAX]; /* generated JWKs */
static char srvdir[PATH_MAX]; /* the server's knobs and served file */
static pid_t server_pid = -1;
static int port;

/* ------------------------------------------------------------ helpers */

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void write_file(const char *dir, const char *name, const char *data, size_t len)
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

static void knob(const char *name, const char *value)
{
    char p[PATH_MAX + 64];
    path_in(p, sizeof p, srvdir, name);
    if (value)
        write_file(srvdir, name, value, strlen(value));
    else
        unlink(p);
}

static char *slurp(const char *dir, const char *name)
{
    char p[PATH_MAX + 64];
    path_in(p, sizeof p, dir, name);
    char *s = NULL;
    size_t len = 0;
    if (m8_read_file(p, 1u << 22, true, &s, &len) != 0)
        return NULL;
    return s;
}

static long hits(void)
{
    char *s = slurp(srvdir, "hits");
    long long v = 0;
    if (s)
        m8_parse_ll(s, 0, LONG_MAX, &v);
    free(s);
    return (long)v;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void server_stop(void)
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

static void rm_tree(const char *dir)
{
    if (!dir[0])
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void cleanup(void)
{
    server_stop();
    rm_tree(srvdir);
    rm_tree(keydir);
}

static int run_python(char *const argv[])
{
    pid_t pid;
    if (posix_spawn(&pid, "/usr/bin/python3", NULL, NULL, argv, environ) != 0)
        return -1;
    int st = 0;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Starts the server on want (0: any port) and waits until it answers. */
static int server_start(int want)
{
    char portarg[16];
    snprintf(portarg, sizeof portarg, "%d", want);
    knob("port", NULL);
    knob("hits", NULL);
    char *argv[] = {"python3", script, "serve", srvdir, "--port", portarg, NULL};
    if (posix_spawn(&server_pid, "/usr/bin/python3", NULL, NULL, argv, environ) != 0) {
        server_pid = -1;
        return -1;
    }
    for (int i = 0; i < 300; i++) { /* up to 15 s */
        char *s = slurp(srvdir, "port");
        if (s) {
            long long v = 0;
            int rc = m8_parse_ll(s, 1, 65535, &v);
            free(s);
            if (rc == 0) {
                port = (int)v;
                return 0;
            }
        }
        if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
            server_pid = -1;
            return -1;
        }
        sleep_ms(50);
    }
    server_stop();
    return -1;
}

static void url(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", port, path);
}

/* A generated JWK (keydir/name.json) with kid and use set (NULL: absent). */
static json_object *jwk(const char *name, const char *kid, const char *use)
{
    char file[64];
    snprintf(file, sizeof file, "%s.json", name);
    char *s = slurp(keydir, file);
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
static char *doc(json_object *k0, ...)
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

static void serve_doc(char *d)
{
    write_file(srvdir, "jwks.json", d, strlen(d));
    free(d);
}

typedef struct skips {
    size_t n;
    char reasons[1024];
} skips;

static void on_skip(void *data, size_t index, const char *kid, const char *reason)
{
    (void)index;
    (void)kid;
    skips *s = data;
    s->n++;
    size_t used = strlen(s->reasons);
    snprintf(s->reasons + used, sizeof s->reasons - used, "%s|", reason);
}

static int parse(const char *d, m8_alg alg, m8_keyset *ks, size_t *skipped, skips *sk)
{
    if (sk)
        memset(sk, 0, sizeof *sk);
    return m8_jwks_parse_ex(d, strlen(d), alg, ks, skipped, sk ? on_skip : NULL, sk);
}

static bool has_kid(const m8_keyset *ks, const char *kid)
{
    for (size_t i = 0; i < ks->n; i++) {
        if (ks->keys[i]->kid && strcmp(ks->keys[i]->kid, kid) == 0)
            return true;
    }
    return false;
}

/* Log capture: m8_log lines go to a file while capturing. */
static char logpath[PATH_MAX + 64];
static int logfd = -1;

static void log_capture(void)
{
    path_in(logpath, sizeof logpath, srvdir, "log");
    logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    m8_log_set_fd(logfd);
}

static char *log_release(void)
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

/* ------------------------------------------------------------ parsing */

static void test_parse(void)
{
    m8_keyset ks;
    size_t skipped = 99;
    skips sk;
    char *d;

    d = doc(jwk("rsa2048", "a", NULL), NULL);
    is_int(parse(d, M8_ALG_RS256, &ks, &skipped, NULL), 0, "parse: RSA 2048 JWK accepted (RS256)");
    ok(ks.n == 1 && skipped == 0 && ks.keys[0]->kid && strcmp(ks.keys[0]->kid, "a") == 0 &&
           ks.keys[0]->pkey && ks.keys[0]->alg == M8_ALG_RS256,
       "parse: the key keeps its kid and is labelled RS256");
    m8_keyset_clear(&ks);
    free(d);

    d = doc(jwk("rsa1024", "weak", NULL), jwk("rsa2048", "good", NULL), NULL);
    is_int(parse(d, M8_ALG_RS256, &ks, &skipped, &sk), 0, "parse: set with an RSA 1024 key");
    ok(ks.n == 1 && skipped == 1 && has_kid(&ks, "good") && !has_kid(&ks, "weak"),
       "parse: RSA 1024 skipped (D11), the 2048 key in the same set kept");
    like(sk.reasons, "2048", "parse: the skip reason names the 2048-bit minimum");
    m8_keyset_clear(&ks);
    free(d);

    d = doc(jwk("ec256", "e1", NULL), NULL);
    is_int(parse(d, M8_ALG_ES256, &ks, &skipped, NULL), 0, "parse: EC P-256 JWK (ES256)");
    ok(ks.n == 1 && skipped == 0 && has_kid(&ks, "e1"), "parse: EC P-256 kept");
    m8_keyset_clear(&ks);
    free(d);

    d = doc(jwk("ec384", "e384", NULL), jwk("ec256", "e256", NULL), NULL);
    parse(d, M8_ALG_ES256, &ks, &skipped, &sk);
    ok(ks.n == 1 && skipped == 1 && has_kid(&ks, "e256"), "parse: EC P-384 skipped under ES256");
    like(sk.reasons, "P-256", "parse: the P-384 skip reason names P-256");
    m8_keyset_clear(&ks);
    free(d);

    d = doc(jwk("rsa2048", "enc", "enc"), jwk("rsa2048b", "sig", "sig"), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 1 && skipped == 1 && has_kid(&ks, "sig") && !has_kid(&ks, "enc"),
       "parse: use=enc skipped, use=sig kept");
    m8_keyset_clear(&ks);
    free(d);

    json_object *priv = jwk("rsa2048_priv", "p", NULL);
    char dval[64];
    snprintf(dval, sizeof dval, "%.40s", json_object_get_string(json_object_object_get(priv, "d")));
    d = doc(priv, jwk("ec256_priv", "pe", NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, &sk);
    ok(ks.n == 0 && skipped == 2, "parse: JWKs with private members are skipped");
    ok(strstr(sk.reasons, dval) == NULL && strstr(sk.reasons, "private"),
       "parse: the skip reason says private and never carries the key material");
    m8_keyset_clear(&ks);
    free(d);

    d = doc(jwk("ec256", "wrongkty", NULL), jwk("rsa2048", "r", NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 1 && skipped == 1 && has_kid(&ks, "r"),
       "parse: an EC JWK under RS256 is skipped, one bad JWK does not abort the set");
    m8_keyset_clear(&ks);
    free(d);
    d = doc(jwk("rsa2048", "r", NULL), NULL);
    parse(d, M8_ALG_ES256, &ks, &skipped, NULL);
    ok(ks.n == 0 && skipped == 1, "parse: an RSA JWK under ES256 is skipped");
    m8_keyset_clear(&ks);
    free(d);

    is_int(parse("{\"other\":1}", M8_ALG_RS256, &ks, &skipped, NULL), 0,
           "parse: a document without \"keys\" succeeds");
    ok(ks.n == 0 && ks.keys == NULL && skipped == 0, "parse: ... as an empty set");
    is_int(parse("{\"keys\":[]}", M8_ALG_RS256, &ks, &skipped, NULL), 0, "parse: keys [] is empty");
    is_int(parse("[]", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE, "parse: an array is not a JWKS");
    is_int(parse("\"keys\"", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE,
           "parse: a string is not a JWKS");
    is_int(parse("not json", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE, "parse: non-JSON fails");
    is_int(parse("", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE, "parse: empty body fails");
    is_int(parse("{\"keys\":[]} x", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE,
           "parse: trailing garbage fails");
    is_int(parse("{\"keys\":[]} \n", M8_ALG_RS256, &ks, NULL, NULL), 0,
           "parse: trailing whitespace is fine");
    is_int(m8_jwks_parse("{\"keys\":[]}\0", 12, M8_ALG_RS256, &ks, NULL), M8_EPARSE,
           "parse: a NUL byte in the document fails");
    is_int(parse("{\"keys\":{}}", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE,
           "parse: keys as an object fails");
    is_int(parse("{\"keys\":null}", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE,
           "parse: keys null fails");
    is_int(parse("{\"keys\":\"x\"}", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE,
           "parse: keys as a string fails");
    is_int(parse("{\"keys\":[]}", M8_ALG_HS256, &ks, NULL, NULL), M8_EINVAL,
           "parse: HS256 has no JWKS");
    is_int(parse("{\"keys\":[1,\"x\",null,[]]}", M8_ALG_RS256, &ks, &skipped, NULL), 0,
           "parse: entries that are not objects ...");
    ok(ks.n == 0 && skipped == 4, "parse: ... are skipped one by one");

    /* Duplicate kid: the last one wins. */
    d = doc(jwk("rsa2048", "dup", NULL), jwk("rsa2048b", "dup", NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    m8_keyset only_b;
    char *db = doc(jwk("rsa2048b", "dup", NULL), NULL);
    parse(db, M8_ALG_RS256, &only_b, NULL, NULL);
    ok(ks.n == 1 && skipped == 0 && only_b.n == 1 &&
           EVP_PKEY_eq(ks.keys[0]->pkey, only_b.keys[0]->pkey) == 1,
       "parse: duplicate kid, the last JWK wins");
    m8_keyset_clear(&ks);
    m8_keyset_clear(&only_b);
    free(d);
    free(db);

    d = doc(jwk("rsa2048", NULL, NULL), jwk("rsa2048b", NULL, NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 2 && ks.keys[0]->kid == NULL && ks.keys[1]->kid == NULL,
       "parse: JWKs without kid are kept apart (never merged)");
    m8_keyset_clear(&ks);
    free(d);

    /* kid length: M8_MAX_KID_BYTES accepted, one more skipped. */
    char kid[M8_MAX_KID_BYTES + 2];
    memset(kid, 'k', sizeof kid - 1);
    kid[M8_MAX_KID_BYTES] = '\0';
    d = doc(jwk("rsa2048", kid, NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 1 && skipped == 0 && strlen(ks.keys[0]->kid) == M8_MAX_KID_BYTES,
       "parse: a kid of exactly %u bytes is kept", M8_MAX_KID_BYTES);
    m8_keyset_clear(&ks);
    free(d);
    kid[M8_MAX_KID_BYTES] = 'k';
    kid[M8_MAX_KID_BYTES + 1] = '\0';
    d = doc(jwk("rsa2048", kid, NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 0 && skipped == 1, "parse: a kid of %u bytes is skipped", M8_MAX_KID_BYTES + 1);
    m8_keyset_clear(&ks);
    free(d);
    json_object *numkid = jwk("rsa2048", NULL, NULL);
    json_object_object_add(numkid, "kid", json_object_new_int(7));
    d = doc(numkid, NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 0 && skipped == 1, "parse: a kid that is not a string is skipped");
    m8_keyset_clear(&ks);
    free(d);

    /* M8_MAX_JWKS_KEYS kept, the next one skipped. */
    for (unsigned total = M8_MAX_JWKS_KEYS; total <= M8_MAX_JWKS_KEYS + 1; total++) {
        json_object *arr = json_object_new_array();
        for (unsigned i = 0; i < total; i++) {
            char k[16];
            snprintf(k, sizeof k, "k%u", i);
            json_object_array_add(arr, jwk("rsa2048", k, NULL));
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "keys", arr);
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        parse(s, M8_ALG_RS256, &ks, &skipped, NULL);
        char last[16];
        snprintf(last, sizeof last, "k%u", total - 1);
        if (total == M8_MAX_JWKS_KEYS)
            ok(ks.n == M8_MAX_JWKS_KEYS && skipped == 0 && has_kid(&ks, last),
               "parse: exactly %u keys are all kept", M8_MAX_JWKS_KEYS);
        else
            ok(ks.n == M8_MAX_JWKS_KEYS && skipped == 1 && has_kid(&ks, "k0") &&
                   !has_kid(&ks, last),
               "parse: %u keys keep the first %u, the last is skipped", total, M8_MAX_JWKS_KEYS);
        m8_keyset_clear(&ks);
        json_object_put(o);
    }

    /* Document size: M8_MAX_JWKS_BYTES accepted, one more refused. */
    char *big = malloc(M8_MAX_JWKS_BYTES + 2);
    memset(big, ' ', M8_MAX_JWKS_BYTES + 1);
    memcpy(big, "{\"keys\":[]}", 11);
    is_int(m8_jwks_parse(big, M8_MAX_JWKS_BYTES, M8_ALG_RS256, &ks, NULL), 0,
           "parse: a document of exactly %u bytes is parsed", M8_MAX_JWKS_BYTES);
    is_int(m8_jwks_parse(big, M8_MAX_JWKS_BYTES + 1, M8_ALG_RS256, &ks, NULL), M8_ETOOBIG,
           "parse: a document of %u bytes is refused", M8_MAX_JWKS_BYTES + 1);
    free(big);
}

/* ------------------------------------------------------------ httpc */

static void test_httpc(void)
{
    char u[256];
    m8_http_result res;
    const char *body = "{\"keys\":[]}";
    write_file(srvdir, "jwks.json", body, strlen(body));

    url(u, sizeof u, "/jwks.json");
    is_int(m8_http_get(u, 5, 1024, &res), 0, "httpc: GET answers");
    ok(res.status == 200 && res.body.len == strlen(body) && strcmp(res.body.data, body) == 0,
       "httpc: status 200 and the body");
    m8_buf_free(&res.body);

    knob("status", "404");
    is_int(m8_http_get(u, 5, 1024, &res), 0, "httpc: a 404 is a response, not a transport error");
    is_int(res.status, 404, "httpc: the status is reported");
    m8_buf_free(&res.body);
    knob("status", NULL);

    size_t len = strlen(body);
    is_int(m8_http_get(u, 5, len, &res), 0, "httpc: a body of exactly max bytes is accepted");
    is_int(res.body.len, len, "httpc: ... whole");
    m8_buf_free(&res.body);
    is_int(m8_http_get(u, 5, len - 1, &res), M8_ETOOBIG, "httpc: max+1 bytes is M8_ETOOBIG");
    ok(res.body.data == NULL && res.status == 0, "httpc: ... and nothing is handed back");
    m8_buf_free(&res.body);
    /* Without Content-Length the cap is enforced while reading. */
    knob("nolength", "1");
    is_int(m8_http_get(u, 5, len, &res), 0, "httpc: streamed body of exactly max bytes accepted");
    is_int(res.body.len, len, "httpc: ... whole");
    m8_buf_free(&res.body);
    is_int(m8_http_get(u, 5, len - 1, &res), M8_ETOOBIG,
           "httpc: streamed body of max+1 bytes is M8_ETOOBIG");
    like(res.error, "byte cap", "httpc: ... with a cap error text");
    m8_buf_free(&res.body);
    knob("nolength", NULL);

    url(u, sizeof u, "/hop/3");
    is_int(m8_http_get(u, 5, 1024, &res), 0, "httpc: 3 redirects are followed");
    ok(res.status == 200 && res.body.len == len, "httpc: ... to the final answer");
    m8_buf_free(&res.body);
    url(u, sizeof u, "/hop/4");
    is_int(m8_http_get(u, 5, 1024, &res), M8_EIO, "httpc: a 4th redirect is refused");
    m8_buf_free(&res.body);

    url(u, sizeof u, "/to?file:///etc/passwd");
    is_int(m8_http_get(u, 5, 1 << 16, &res), M8_EIO, "httpc: a redirect to file:// is refused");
    ok(res.body.data == NULL || strstr(res.body.data, "root:") == NULL,
       "httpc: ... and no local file is read");
    m8_buf_free(&res.body);
    is_int(m8_http_get("file:///etc/passwd", 5, 1 << 16, &res), M8_EIO,
           "httpc: a file:// URL is refused");
    m8_buf_free(&res.body);
    is_int(m8_http_get("ftp://127.0.0.1:1/x", 5, 1 << 16, &res), M8_EIO,
           "httpc: an ftp:// URL is refused");
    m8_buf_free(&res.body);

    knob("delay", "2");
    url(u, sizeof u, "/jwks.json");
    double t0 = m8_now_mono();
    is_int(m8_http_get(u, 0.3, 1024, &res), M8_EIO, "httpc: a slow server times out");
    double took = m8_now_mono() - t0;
    ok(took < 1.5, "httpc: ... after about the timeout (%.2f s)", took);
    ok(res.error[0] != '\0', "httpc: ... with an error text (%s)", res.error);
    m8_buf_free(&res.body);
    knob("delay", NULL);

    knob("down", "1");
    is_int(m8_http_get(u, 5, 1024, &res), M8_EIO, "httpc: a connection closed unanswered fails");
    m8_buf_free(&res.body);
    knob("down", NULL);

    /* A port nobody listens on, with credentials in the URL. */
    is_int(m8_http_get("http://alice:s3cret-pw@127.0.0.1:1/x", 2, 1024, &res), M8_EIO,
           "httpc: connection refused is a transport error");
    ok(strstr(res.error, "s3cret") == NULL && strstr(res.error, "alice") == NULL,
       "httpc: the error text has no userinfo (%s)", res.error);
    m8_buf_free(&res.body);

    is_int(m8_http_get(u, 0, 1024, &res), M8_EINVAL, "httpc: timeout 0 is invalid");
    is_int(m8_http_get(NULL, 1, 1024, &res), M8_EINVAL, "httpc: no URL is invalid");

    char out[128];
    m8_http_display_url("https://u:p@host:1/a@b?c@d", out, sizeof out);
    is_str(out, "https://host:1/a@b?c@d", "display URL: userinfo removed, path kept");
    m8_http_display_url("https://a:b@c@host/x", out, sizeof out);
    is_str(out, "https://host/x", "display URL: up to the last @ of the authority");
    m8_http_display_url("http://host/x", out, sizeof out);
    is_str(out, "http://host/x", "display URL: no userinfo, unchanged");
}

/* ------------------------------------------------------------ resolver */

static m8_jwks *resolver(double ttl, double cooldown)
{
    char u[128];
    url(u, sizeof u, "/jwks.json");
    return m8_jwks_new(u, M8_ALG_RS256, ttl, cooldown);
}

static m8_jwks_result find(m8_jwks *r, const char *kid, double now)
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

static void test_new(void)
{
    ok(m8_jwks_new("ftp://h/x", M8_ALG_RS256, 300, 10) == NULL, "new: ftp:// refused");
    ok(m8_jwks_new("file:///x", M8_ALG_RS256, 300, 10) == NULL, "new: file:// refused");
    ok(m8_jwks_new("host/x", M8_ALG_RS256, 300, 10) == NULL, "new: no scheme refused");
    ok(m8_jwks_new("https://h/x", M8_ALG_HS256, 300, 10) == NULL, "new: HS256 refused");
    m8_jwks *r = m8_jwks_new("HTTPS://h/x", M8_ALG_ES256, 300, 10);
    ok(r != NULL, "new: https (any case) accepted");
    m8_jwks_free(r);
}

static void test_lazy_rotation(void)
{
    serve_doc(doc(jwk("rsa2048", "a", NULL), NULL));
    long h0 = hits();
    m8_jwks *r = resolver(300, 0.5);
    ok(r != NULL, "resolver: built");
    ok(m8_jwks_fetches(r) == 0 && hits() == h0, "resolver: nothing fetched at construction");
    is_int(find(r, "a", 1000), M8_JWKS_FOUND, "resolver: first resolve fetches and finds kid a");
    ok(m8_jwks_fetches(r) == 1 && hits() == h0 + 1 && m8_jwks_generation(r) == 1,
       "resolver: one fetch, generation 1");
    is_int(find(r, "a", 1100), M8_JWKS_FOUND, "resolver: cached kid found again");
    ok(m8_jwks_fetches(r) == 1 && hits() == h0 + 1, "resolver: ... without a fetch");

    /* Hold a key across the rotation: it must stay valid. */
    m8_key *held = NULL;
    m8_jwks_resolve(r, "a", 1100, &held);

    serve_doc(doc(jwk("rsa2048b", "b", NULL), NULL));
    is_int(find(r, "b", 1101), M8_JWKS_FOUND, "rotation: a new kid is found without restart");
    ok(m8_jwks_fetches(r) == 2 && hits() == h0 + 2 && m8_jwks_generation(r) == 2,
       "rotation: ... after exactly one refetch (generation 2)");
    is_int(find(r, "a", 1101.1), M8_JWKS_NOT_FOUND, "rotation: the retired kid is gone");
    ok(m8_jwks_fetches(r) == 2,
       "rotation: ... and asking again within the cooldown fetches nothing");
    ok(held && held->kid && strcmp(held->kid, "a") == 0 && held->pkey,
       "rotation: a key held by a caller outlives the set it came from");
    m8_key_unref(held);

    /* Flood of unknown kids on a simulated clock: 1000 kids over 1 s. */
    unsigned long f0 = m8_jwks_fetches(r);
    long hf = hits();
    int found = 0;
    for (int i = 0; i < 1000; i++) {
        unsigned char rnd[8];
        char kid[17];
        randombytes_buf(rnd, sizeof rnd);
        for (int j = 0; j < 8; j++)
            snprintf(kid + 2 * j, 3, "%02x", rnd[j]);
        found += find(r, kid, 1102 + i * 0.001) == M8_JWKS_FOUND;
    }
    unsigned long nf = m8_jwks_fetches(r) - f0;
    ok(found == 0, "flood: no random kid is found");
    ok(nf >= 1 && nf <= 2 && hits() - hf == (long)nf,
       "flood: 1000 random kids over 1 s cost %lu fetches (cooldown 0.5 s)", nf);
    is_int(find(r, "b", 1103), M8_JWKS_FOUND, "flood: the real key still resolves");
    m8_jwks_free(r);
}

typedef struct flood_arg {
    m8_jwks *r;
    int found;
    int n;
} flood_arg;

static void *flood_thread(void *p)
{
    flood_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        char kid[32];
        snprintf(kid, sizeof kid, "bogus-%u", randombytes_random());
        a->found += find(a->r, kid, m8_now_mono()) == M8_JWKS_FOUND;
        sleep_ms(8); /* 125 kids per thread over about 1 s */
    }
    return NULL;
}

static void *same_kid_thread(void *p)
{
    flood_arg *a = p;
    a->found = find(a->r, "b", m8_now_mono()) == M8_JWKS_FOUND;
    return NULL;
}

static void test_threads(void)
{
    /* 8 threads, 1000 bogus kids in all, on the real clock. */
    m8_jwks *r = resolver(300, 0.5);
    long h0 = hits();
    double t0 = m8_now_mono();
    pthread_t th[8];
    flood_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (flood_arg){.r = r, .n = 125};
        pthread_create(&th[i], NULL, flood_thread, &args[i]);
    }
    int found = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        found += args[i].found;
    }
    double took = m8_now_mono() - t0;
    long n = hits() - h0;
    long allowed = (long)(took / 0.5) + 1;
    ok(found == 0 && n >= 1 && n <= allowed,
       "threads: 1000 bogus kids from 8 threads in %.2f s: %ld fetches (at most %ld)", took, n,
       allowed);
    ok((unsigned long)n == m8_jwks_fetches(r), "threads: fetch counter matches server hits");
    m8_jwks_free(r);

    /* A slow first fetch: concurrent callers wait for it, one fetch in all. */
    knob("delay", "0.3");
    r = resolver(300, 10);
    h0 = hits();
    for (int i = 0; i < 8; i++) {
        args[i] = (flood_arg){.r = r};
        pthread_create(&th[i], NULL, same_kid_thread, &args[i]);
    }
    found = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        found += args[i].found;
    }
    knob("delay", NULL);
    ok(found == 8 && hits() - h0 == 1 && m8_jwks_fetches(r) == 1,
       "threads: 8 first callers at once, one fetch, all find the key (found %d, hits %ld)", found,
       hits() - h0);
    m8_jwks_free(r);
}

static void test_ttl_and_failures(void)
{
    serve_doc(doc(jwk("rsa2048", "a", NULL), NULL));
    m8_jwks *r = resolver(60, 10);
    is_int(find(r, "a", 100), M8_JWKS_FOUND, "ttl: first fetch");
    is_int(find(r, "a", 159), M8_JWKS_FOUND, "ttl: still cached before expiry");
    ok(m8_jwks_fetches(r) == 1, "ttl: ... no refetch within the TTL");
    is_int(find(r, "a", 160), M8_JWKS_FOUND, "ttl: at expiry ...");
    ok(m8_jwks_fetches(r) == 2 && m8_jwks_generation(r) == 2, "ttl: ... the set is refetched");

    /* Issuer down (connection closed): stale keys kept. */
    knob("down", "1");
    log_capture();
    long h0 = hits();
    is_int(find(r, "a", 221), M8_JWKS_FOUND, "down: after expiry the last good key still answers");
    char *log = log_release();
    ok(m8_jwks_fetches(r) == 3 && hits() == h0 + 1 && m8_jwks_generation(r) == 2,
       "down: one attempt, generation unchanged");
    like(log, "keeping 1 previous keys", "down: the failed fetch is logged as a warning");
    like(log, "\"warning\"", "down: ... at level warning");
    free(log);
    is_int(find(r, "a", 225), M8_JWKS_FOUND, "down: within the cooldown, the cache answers");
    ok(m8_jwks_fetches(r) == 3, "down: ... without a fetch");
    is_int(find(r, "a", 231), M8_JWKS_FOUND, "down: the expiry was not extended ...");
    ok(m8_jwks_fetches(r) == 4, "down: ... so the next cooldown retries");
    knob("down", NULL);

    knob("status", "500");
    is_int(find(r, "a", 241), M8_JWKS_FOUND, "500: stale key kept");
    ok(m8_jwks_fetches(r) == 5 && m8_jwks_generation(r) == 2, "500: a failed fetch");
    knob("status", "404");
    is_int(find(r, "a", 251), M8_JWKS_FOUND, "404: stale key kept (non-2xx is a failure)");
    knob("status", NULL);
    write_file(srvdir, "jwks.json", "<html>oops</html>", 17);
    is_int(find(r, "a", 261), M8_JWKS_FOUND, "non-JSON: stale key kept");
    ok(m8_jwks_fetches(r) == 7 && m8_jwks_generation(r) == 2, "non-JSON: a failed fetch");
    write_file(srvdir, "jwks.json", "{\"keys\":{}}", 11);
    is_int(find(r, "a", 271), M8_JWKS_FOUND, "keys not an array: stale key kept");
    ok(m8_jwks_generation(r) == 2, "keys not an array: a failed fetch");

    /* The server process stopped altogether. */
    serve_doc(doc(jwk("rsa2048", "a", NULL), NULL));
    int old_port = port;
    server_stop();
    is_int(find(r, "a", 281), M8_JWKS_FOUND, "stopped: stale key kept with the server gone");
    ok(m8_jwks_fetches(r) == 9, "stopped: the attempt counted");
    m8_jwks *fresh = resolver(60, 10);
    is_int(find(fresh, "a", 10), M8_JWKS_UNAVAILABLE,
           "stopped: nothing cached and the fetch fails -> UNAVAILABLE");
    is_int(find(fresh, NULL, 11), M8_JWKS_UNAVAILABLE,
           "stopped: ... also when throttled, and for a token without kid");
    ok(m8_jwks_fetches(fresh) == 1, "stopped: ... with a single attempt in the cooldown");
    if (server_start(old_port) != 0) {
        diag("cannot restart the server on port %d", old_port);
        exit(1);
    }
    is_int(find(fresh, "a", 21), M8_JWKS_FOUND,
           "back: after the cooldown the issuer answers again");
    is_int(find(r, "a", 291), M8_JWKS_FOUND, "back: the old resolver refreshes too");
    ok(m8_jwks_generation(r) == 3, "back: ... with a new generation");
    m8_jwks_free(fresh);
    m8_jwks_free(r);

    /* A successful empty set is not "unavailable". */
    write_file(srvdir, "jwks.json", "{}", 2);
    r = resolver(60, 10);
    is_int(find(r, "a", 1), M8_JWKS_NOT_FOUND,
           "empty: missing keys is an empty set, kid not found");
    is_int(m8_jwks_generation(r), 1, "empty: ... after a successful fetch");
    is_int(find(r, NULL, 2), M8_JWKS_NOT_FOUND, "empty: a token without kid finds nothing");
    m8_jwks_free(r);

    /* Weak keys are logged when skipped, without their material. */
    json_object *weak = jwk("rsa1024", "weak", NULL);
    char nval[48];
    snprintf(nval, sizeof nval, "%.40s", json_object_get_string(json_object_object_get(weak, "n")));
    serve_doc(doc(weak, jwk("rsa2048", "a", NULL), NULL));
    r = resolver(60, 10);
    log_capture();
    is_int(find(r, "a", 1), M8_JWKS_FOUND, "skip log: the good key resolves");
    is_int(find(r, "weak", 20), M8_JWKS_NOT_FOUND, "skip log: the weak key does not");
    log = log_release();
    like(log, "skipped", "skip log: the skipped weak key is logged");
    like(log, "weak", "skip log: ... with its kid");
    ok(strstr(log, nval) == NULL, "skip log: ... never with its key material");
    free(log);
    m8_jwks_free(r);

    /* Credentials in JWKS_URI never reach the log. */
    char u[160];
    snprintf(u, sizeof u, "http://alice:s3cret-pw@127.0.0.1:%d/jwks.json", port);
    r = m8_jwks_new(u, M8_ALG_RS256, 60, 10);
    knob("status", "503");
    log_capture();
    is_int(find(r, "a", 1), M8_JWKS_UNAVAILABLE, "userinfo: a 503 with nothing cached");
    log = log_release();
    ok(strstr(log, "s3cret") == NULL && strstr(log, "alice") == NULL && strstr(log, "503"),
       "userinfo: the failure log names the status, not the credentials");
    free(log);
    knob("status", NULL);
    m8_jwks_free(r);
}

static void test_no_kid(void)
{
    serve_doc(doc(jwk("rsa2048", "only", NULL), NULL));
    m8_jwks *r = resolver(60, 10);
    is_int(find(r, NULL, 1), M8_JWKS_FOUND, "no kid: a set of one key matches");
    m8_jwks_free(r);

    serve_doc(doc(jwk("rsa2048", NULL, NULL), NULL));
    r = resolver(60, 10);
    is_int(find(r, NULL, 1), M8_JWKS_FOUND, "no kid: a set of one kid-less key matches");
    is_int(find(r, "x", 2), M8_JWKS_NOT_FOUND, "no kid: a token kid never matches a kid-less JWK");
    m8_jwks_free(r);

    serve_doc(doc(jwk("rsa2048", "a", NULL), jwk("rsa2048b", "b", NULL), NULL));
    r = resolver(60, 10);
    is_int(find(r, NULL, 1), M8_JWKS_AMBIGUOUS, "no kid: two keys -> AMBIGUOUS, never the first");
    is_int(find(r, "a", 2), M8_JWKS_FOUND, "no kid: ... while kid a resolves");
    is_int(find(r, NULL, 20), M8_JWKS_AMBIGUOUS, "no kid: ... still ambiguous after a refresh");
    ok(m8_jwks_fetches(r) == 2, "no kid: the ambiguous lookup tried one throttled refresh");
    m8_jwks_free(r);

    serve_doc(doc(jwk("rsa2048", NULL, NULL), jwk("rsa2048b", NULL, NULL), NULL));
    r = resolver(60, 10);
    is_int(find(r, NULL, 1), M8_JWKS_AMBIGUOUS, "no kid: two kid-less keys -> AMBIGUOUS");
    m8_jwks_free(r);
}

static void test_body_cap(void)
{
    /* A real document of exactly M8_MAX_JWKS_BYTES, then one byte more. */
    char *d = doc(jwk("rsa2048", "a", NULL), NULL);
    size_t dl = strlen(d);
    char *big = malloc(M8_MAX_JWKS_BYTES + 1);
    memcpy(big, d, dl);
    memset(big + dl, ' ', M8_MAX_JWKS_BYTES + 1 - dl);
    free(d);
    write_file(srvdir, "jwks.json", big, M8_MAX_JWKS_BYTES);
    m8_jwks *r = resolver(60, 10);
    is_int(find(r, "a", 1), M8_JWKS_FOUND, "cap: a JWKS of exactly %u bytes is accepted",
           M8_MAX_JWKS_BYTES);
    m8_jwks_free(r);
    write_file(srvdir, "jwks.json", big, M8_MAX_JWKS_BYTES + 1);
    r = resolver(60, 10);
    log_capture();
    is_int(find(r, "a", 1), M8_JWKS_UNAVAILABLE, "cap: %u bytes is a failed fetch",
           M8_MAX_JWKS_BYTES + 1);
    char *log = log_release();
    like(log, "byte cap", "cap: ... logged as over the byte cap");
    free(log);
    m8_jwks_free(r);
    free(big);

    /* The test hook: a smaller cap, at and one past. */
    d = doc(jwk("ec256", "e", NULL), NULL);
    dl = strlen(d);
    serve_doc(d);
    char u[128];
    url(u, sizeof u, "/jwks.json");
    r = m8_jwks_new(u, M8_ALG_ES256, 60, 10);
    m8_jwks_set_fetch_limits(r, 5, dl);
    is_int(find(r, "e", 1), M8_JWKS_FOUND, "cap hook: a body of exactly the cap is accepted");
    m8_jwks_free(r);
    r = m8_jwks_new(u, M8_ALG_ES256, 60, 10);
    m8_jwks_set_fetch_limits(r, 5, dl - 1);
    is_int(find(r, "e", 1), M8_JWKS_UNAVAILABLE, "cap hook: one byte over the cap fails");
    m8_jwks_free(r);

    /* A slow issuer times out as a failed fetch. */
    knob("delay", "2");
    r = m8_jwks_new(u, M8_ALG_ES256, 60, 10);
    m8_jwks_set_fetch_limits(r, 0.3, 0);
    double t0 = m8_now_mono();
    is_int(find(r, "e", 1), M8_JWKS_UNAVAILABLE, "timeout: a slow issuer is a failed fetch");
    ok(m8_now_mono() - t0 < 1.5, "timeout: ... bounded by the fetch timeout");
    knob("delay", NULL);
    m8_jwks_free(r);
}

/* ------------------------------------------------------------ kid re-use */

/* A public RSA JWK for a key made here with OpenSSL. */
static json_object *rsa_jwk_of(EVP_PKEY *k, const char *kid)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "kty", json_object_new_string("RSA"));
    json_object_object_add(o, "kid", json_object_new_string(kid));
    const char *names[] = {OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E};
    const char *members[] = {"n", "e"};
    for (int i = 0; i < 2; i++) {
        BIGNUM *bn = NULL;
        unsigned char bin[512];
        m8_buf b;
        m8_buf_init(&b, 1024);
        if (!EVP_PKEY_get_bn_param(k, names[i], &bn) || BN_num_bytes(bn) > (int)sizeof bin) {
            diag("cannot read the RSA key");
            exit(1);
        }
        int n = BN_bn2bin(bn, bin);
        m8_b64url_encode(&b, bin, (size_t)n);
        json_object_object_add(o, members[i], json_object_new_string(b.data));
        m8_buf_free(&b);
        BN_free(bn);
    }
    return o;
}

/* An RS256 JWS under kid signed by k with OpenSSL (not through lib/). */
static char *rs256_signed(EVP_PKEY *k, const char *alg, const char *kid)
{
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid);
    const char *payload = "{\"sub\":\"0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d\"}";
    m8_buf b;
    m8_buf_init(&b, 4096);
    m8_b64url_encode(&b, (const unsigned char *)hdr, strlen(hdr));
    m8_buf_putc(&b, '.');
    m8_b64url_encode(&b, (const unsigned char *)payload, strlen(payload));
    unsigned char sig[512];
    size_t sl = sizeof sig;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k) != 1 ||
        EVP_DigestSign(c, sig, &sl, (const unsigned char *)b.data, b.len) != 1) {
        diag("cannot sign");
        exit(1);
    }
    EVP_MD_CTX_free(c);
    m8_buf_putc(&b, '.');
    m8_b64url_encode(&b, sig, sl);
    char *t = strdup(b.data);
    m8_buf_free(&b);
    return t;
}

/* m8_jwks_verify on a token at now: its result, the signature checks in *checks. */
static int jverify(m8_jwks *r, const char *tok, double now, unsigned *checks)
{
    m8_jws j;
    *checks = 0;
    if (m8_jws_parse(tok, strlen(tok), &j) != M8_JWT_OK) {
        diag("the test token does not parse");
        return -2;
    }
    int rc = m8_jwks_verify(r, &j, M8_ALG_RS256, now, checks);
    m8_jws_free(&j);
    return rc;
}

/* The issuer replaces the key under an unchanged kid (doc/wire.md#jwks); after a
 * bad signature the kid is re-resolved once (same cooldown) and the
 * signature checked again only when the key material changed. */
static void test_kid_reuse(void)
{
    EVP_PKEY *k1 = EVP_RSA_gen(2048), *k2 = EVP_RSA_gen(2048);
    if (!k1 || !k2) {
        diag("cannot generate RSA keys");
        exit(1);
    }
    char *t1 = rs256_signed(k1, "RS256", "k"), *t2 = rs256_signed(k2, "RS256", "k");
    unsigned checks = 0;
    serve_doc(doc(rsa_jwk_of(k1, "k"), NULL));
    m8_jwks *r = resolver(300, 10);
    long h0 = hits();

    is_int(jverify(r, t1, 1000, &checks), M8_JWT_OK,
           "kid re-use: a token under k (key 1) verifies");
    ok(checks == 1 && m8_jwks_fetches(r) == 1, "kid re-use: ... with one check and one fetch");

    /* The issuer now signs with key 2 under the same kid k. */
    serve_doc(doc(rsa_jwk_of(k2, "k"), NULL));
    is_int(jverify(r, t2, 1005, &checks), M8_JWT_INVALID,
           "kid re-use: within the cooldown a token of key 2 is refused (cached key 1) ...");
    ok(checks == 1 && m8_jwks_fetches(r) == 1 && hits() == h0 + 1,
       "kid re-use: ... the throttled re-resolve fetches nothing and checks nothing more");
    is_int(jverify(r, t2, 1011, &checks), M8_JWT_OK,
           "kid re-use: after the cooldown the bad signature re-resolves k and the token verifies");
    ok(checks == 2 && m8_jwks_fetches(r) == 2 && hits() == h0 + 2 && m8_jwks_generation(r) == 2,
       "kid re-use: ... one refetch, a second check with the new key (checks %u)", checks);
    is_int(jverify(r, t2, 1012, &checks), M8_JWT_OK, "kid re-use: key 2 is now the cached key");
    ok(checks == 1 && m8_jwks_fetches(r) == 2, "kid re-use: ... one check, no fetch");
    is_int(jverify(r, t1, 1013, &checks), M8_JWT_INVALID,
           "kid re-use: a token of the replaced key 1 is refused");
    ok(checks == 1 && m8_jwks_fetches(r) == 2, "kid re-use: ... its re-resolve is throttled");

    /* Forged signatures under a good kid: one fetch per cooldown at most, and
     * unchanged material is never checked twice. */
    char *forged = strdup(t2);
    size_t fl = strlen(forged);
    forged[fl - 2] = forged[fl - 2] == 'A' ? 'B' : 'A';
    unsigned max_checks = 0;
    int refused = 0;
    for (int i = 0; i < 200; i++) {
        refused += jverify(r, forged, 1030 + i * 0.01, &checks) == M8_JWT_INVALID;
        max_checks = checks > max_checks ? checks : max_checks;
    }
    ok(refused == 200 && max_checks == 1 && m8_jwks_fetches(r) == 3,
       "forged: 200 bad signatures under kid k over 2 s: all refused, 1 check each, 1 fetch");
    is_int(jverify(r, t2, 1032, &checks), M8_JWT_OK, "forged: the real key still verifies");

    /* A failed refetch keeps the key: the same material, no second check. */
    knob("down", "1");
    is_int(jverify(r, forged, 1050, &checks), M8_JWT_INVALID, "down: a forged token is refused");
    ok(checks == 1 && m8_jwks_fetches(r) == 4 && m8_jwks_generation(r) == 3,
       "down: ... the re-resolve tried one fetch, which failed, and checked nothing more");
    is_int(jverify(r, t2, 1051, &checks), M8_JWT_OK, "down: the cached key 2 still verifies");
    knob("down", NULL);

    /* The kid disappears from the set: the re-resolve finds nothing. */
    serve_doc(doc(rsa_jwk_of(k1, "other"), NULL));
    is_int(jverify(r, t1, 1070, &checks), M8_JWT_INVALID,
           "gone: a token of key 1 under k after k left the set is refused");
    ok(checks == 1 && m8_jwks_fetches(r) == 5, "gone: ... one refetch, no second check");
    is_int(jverify(r, t2, 1071, &checks), M8_JWT_INVALID, "gone: k no longer resolves at all");

    /* m8_jwks_refresh itself. */
    serve_doc(doc(rsa_jwk_of(k2, "k"), NULL));
    is_int(jverify(r, t2, 1090, &checks), M8_JWT_OK, "refresh: k is back (unknown kid refetched)");
    unsigned long f = m8_jwks_fetches(r);
    m8_key *key = NULL;
    is_int(m8_jwks_refresh(r, "k", 1095, &key), M8_JWKS_NOT_FOUND,
           "refresh: within the cooldown -> NULL (throttled)");
    ok(key == NULL && m8_jwks_fetches(r) == f, "refresh: ... no key, no fetch");
    is_int(m8_jwks_refresh(r, "k", 1100, &key), M8_JWKS_FOUND, "refresh: after the cooldown");
    ok(key && key->kid && strcmp(key->kid, "k") == 0 && m8_jwks_fetches(r) == f + 1,
       "refresh: ... one fetch, the key of kid k");
    m8_key_unref(key);
    key = NULL;
    is_int(m8_jwks_refresh(r, "zz", 1200, &key), M8_JWKS_NOT_FOUND,
           "refresh: a kid not in the set -> NULL");
    m8_key_unref(key);

    /* A wrong alg is no bad signature: no re-resolve. */
    f = m8_jwks_fetches(r);
    char *wrong = rs256_signed(k1, "RS512", "k");
    is_int(jverify(r, wrong, 1300, &checks), M8_JWT_INVALID, "alg: RS512 under kid k is refused");
    ok(m8_jwks_fetches(r) == f, "alg: ... without a re-resolve (no fetch)");
    free(wrong);

    m8_jwks_free(r);
    free(forged);
    free(t1);
    free(t2);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* ------------------------------------------------------------ https -> http */

static char tlsdir[PATH_MAX]; /* the TLS server's knobs, certificate and served file */
static pid_t tls_pid = -1;

static void tls_stop(void)
{
    if (tls_pid > 0) {
        kill(tls_pid, SIGTERM);
        waitpid(tls_pid, NULL, 0);
        tls_pid = -1;
    }
    rm_tree(tlsdir);
    tlsdir[0] = '\0';
}

/* A second jwks_server.py over TLS with a self-signed certificate for
 * 127.0.0.1 (trusted through m8_httpc_set_ca_file); its port, or -1. */
static int tls_start(void)
{
    snprintf(tlsdir, sizeof tlsdir, "/tmp/m8-jwks-tls-XXXXXX");
    if (!mkdtemp(tlsdir)) {
        tlsdir[0] = '\0';
        return -1;
    }
    char *gen[] = {"python3", script, "gencert", tlsdir, NULL};
    if (run_python(gen) != 0)
        return -1;
    char cert[PATH_MAX + 16], key[PATH_MAX + 16];
    path_in(cert, sizeof cert, tlsdir, "cert.pem");
    path_in(key, sizeof key, tlsdir, "certkey.pem");
    char *argv[] = {"python3", script, "serve", tlsdir, "--tls", cert, key, NULL};
    if (posix_spawn(&tls_pid, "/usr/bin/python3", NULL, NULL, argv, environ) != 0) {
        tls_pid = -1;
        return -1;
    }
    m8_httpc_set_ca_file(cert);
    for (int i = 0; i < 300; i++) { /* up to 15 s */
        char *s = slurp(tlsdir, "port");
        long long v = 0;
        int rc = s ? m8_parse_ll(s, 1, 65535, &v) : -1;
        free(s);
        if (rc == 0)
            return (int)v;
        sleep_ms(50);
    }
    return -1;
}

static void test_no_https_downgrade(void)
{
    int tp = tls_start();
    if (!ok(tp >= 0, "https: a TLS jwks_server.py starts")) {
        tls_stop();
        m8_httpc_set_ca_file(NULL);
        return;
    }
    const char *body = "{\"keys\":[]}";
    write_file(tlsdir, "jwks.json", body, strlen(body));
    write_file(srvdir, "jwks.json", body, strlen(body));
    char u[512], plain[256];
    m8_http_result res;
    snprintf(u, sizeof u, "https://127.0.0.1:%d/jwks.json", tp);
    is_int(m8_http_get(u, 5, 1024, &res), 0, "https: a GET over TLS answers (the test CA works)");
    is_int(res.status, 200, "https: ... 200");
    m8_buf_free(&res.body);
    snprintf(u, sizeof u, "https://127.0.0.1:%d/to?https://127.0.0.1:%d/jwks.json", tp, tp);
    is_int(m8_http_get(u, 5, 1024, &res) == 0 ? (int)res.status : -1, 200,
           "https: a redirect to another https URL is followed");
    m8_buf_free(&res.body);

    url(plain, sizeof plain, "/jwks.json");
    snprintf(u, sizeof u, "https://127.0.0.1:%d/to?%s", tp, plain);
    long h0 = hits();
    is_int(m8_http_get(u, 5, 1024, &res), M8_EIO, "https: a redirect to http:// is not followed");
    is_int(hits(), h0, "https: ... the http server never sees the request");
    m8_buf_free(&res.body);

    serve_doc(doc(jwk("rsa2048", "a", NULL), NULL));
    m8_jwks *r = m8_jwks_new(u, M8_ALG_RS256, 60, 10);
    log_capture();
    is_int(find(r, "a", 100), M8_JWKS_UNAVAILABLE,
           "https: a JWKS_URI whose https answer redirects to http gives no keys (503)");
    free(log_release());
    is_int(hits(), h0, "https: ... and no request goes out over plain http");
    m8_jwks_free(r);
    tls_stop();
    m8_httpc_set_ca_file(NULL);
}

/* ------------------------------------------------------------ JWKS_MAX_STALE_SECONDS */

static void test_max_stale(void)
{
    serve_doc(doc(jwk("rsa2048", "a", NULL), NULL));
    m8_jwks *r = resolver(60, 10);
    m8_jwks_set_max_stale(r, 100);
    ok(m8_jwks_age(r, 50) < 0, "stale: the age is -1 before the first fetch");
    is_int(find(r, "a", 1000), M8_JWKS_FOUND, "stale: first fetch at t=1000");
    knob("down", "1");
    is_int(find(r, "a", 1070), M8_JWKS_FOUND,
           "stale: issuer down, set 70 s old (max 100): the last good key answers");
    is_int(find(r, "a", 1100), M8_JWKS_FOUND, "stale: ... at exactly the limit too");
    ok(m8_jwks_age(r, 1100) == 100.0, "stale: m8_jwks_age says 100 s");
    log_capture();
    is_int(find(r, "a", 1101), M8_JWKS_UNAVAILABLE,
           "stale: one second past JWKS_MAX_STALE_SECONDS and the fetch fails: UNAVAILABLE (503)");
    char *log = log_release();
    like(log, "JWKS_MAX_STALE_SECONDS", "stale: ... logged, naming the setting");
    free(log);
    is_int(find(r, "a", 1105), M8_JWKS_UNAVAILABLE,
           "stale: ... also while throttled (no fetch, the set is not used)");
    m8_key *k = NULL;
    is_int(m8_jwks_refresh(r, "a", 1200, &k), M8_JWKS_UNAVAILABLE,
           "stale: the re-resolve after a bad signature does not use it either");
    m8_key_unref(k);
    knob("down", NULL);
    is_int(find(r, "a", 1215), M8_JWKS_FOUND, "stale: the issuer back: a new set answers");
    ok(m8_jwks_age(r, 1215) == 0.0, "stale: ... and its age starts again at 0");
    m8_jwks_free(r);

    /* The default: a day. */
    r = resolver(60, 10);
    m8_shm *shm = m8_shm_private();
    m8_jwks_report_to(r, shm);
    is_int(find(r, "a", 1000), M8_JWKS_FOUND, "stale default: first fetch");
    ok(shm && atomic_load(&shm->jwks.fetched_ns) != 0,
       "stale default: a resolver fetching alone reports its fetch time for the age gauge");
    knob("down", "1");
    is_int(find(r, "a", 1000 + M8_JWKS_MAX_STALE_S), M8_JWKS_FOUND,
           "stale default: a day old, the set still answers");
    is_int(find(r, "a", 1000 + M8_JWKS_MAX_STALE_S + 1), M8_JWKS_UNAVAILABLE,
           "stale default: a day and a second: UNAVAILABLE");
    knob("down", NULL);
    m8_jwks_free(r);
    m8_shm_unmap(shm);
}

static int setup(void)
{
    const char *top = getenv("top_srcdir");
    if (top && *top) {
        snprintf(script, sizeof script, "%s/tests/tools/jwks_server.py", top);
    } else {
        const char *f = __FILE__;
        const char *slash = strrchr(f, '/');
        snprintf(script, sizeof script, "%.*s/tools/jwks_server.py", slash ? (int)(slash - f) : 1,
                 slash ? f : ".");
    }
    if (access(script, R_OK) != 0 || access("/usr/bin/python3", X_OK) != 0)
        return -1;
    snprintf(keydir, sizeof keydir, "/tmp/m8-jwks-keys-XXXXXX");
    snprintf(srvdir, sizeof srvdir, "/tmp/m8-jwks-srv-XXXXXX");
    if (!mkdtemp(keydir) || !mkdtemp(srvdir))
        return -1;
    atexit(cleanup);
    char *argv[] = {"python3", script, "genkeys", keydir, NULL};
    if (run_python(argv) != 0)
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
