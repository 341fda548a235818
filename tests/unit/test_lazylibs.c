/* test_lazylibs.c - libcurl, libmariadb and libpq are loaded on first use,
 * not linked (doc/design.md#libraries-loaded-on-first-use): a service with
 * neither a JWKS_URI nor a database never maps them; a database named by
 * the settings loads its client library at boot; a JWKS fetch loads libcurl
 * and works; a library that cannot be loaded is a clear error, never a
 * crash (M8_TEST_LIB*_SONAME name a file that does not exist).
 *
 * What is mapped is read from /proc/self/maps.  The failure cases run in
 * forked children (a process loads each library once, for good) before this
 * process loads anything. */
#include "net/httpc.h" /* first: config.h's feature macros */

#include "app/app.h"
#include "auth/jwks.h"
#include "core/log.h"
#include "db/db.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pyserver.h"
#include "tap.h"
#include "testenv.h"

#define NOLIB "libdoesnotexist.so.9"

/* True when a mapping of this process is a file whose name starts with
 * prefix ("libcurl.so"). */
static bool mapped(const char *prefix)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        const char *slash = strrchr(line, '/');
        found = slash && strncmp(slash + 1, prefix, strlen(prefix)) == 0;
    }
    fclose(f);
    return found;
}

static const char *const client_libs[] = {"libcurl.so", "libmariadb.so", "libpq.so"};

static bool none_mapped(void)
{
    bool any = false;
    for (size_t i = 0; i < M8_ARRAY_LEN(client_libs); i++) {
        if (mapped(client_libs[i])) {
            diag("%s is mapped", client_libs[i]);
            any = true;
        }
    }
    return !any;
}

/* Boots an app (optionally with a database) under env; its exit status. */
static int boot(char **env, bool with_db, m8_app **out)
{
    m8_app *app = m8_app_new("lazy-test", "1.0.0");
    if (with_db)
        m8_app_use_database(app, M8_DB_OPTIONAL, 1, 1);
    m8_settings_source src = {.env = env, .env_file = "/dev/null", .cwd = "/"};
    int rc = m8_app_boot(app, &src);
    if (rc == 0)
        rc = m8_app_start(app);
    if (rc != 0 || !out)
        m8_app_free(app);
    else
        *out = app;
    return rc;
}

static int get_status(m8_app *app, const char *uri)
{
    m8_pair p[] = {{"REQUEST_METHOD", "GET"},
                   {"REQUEST_URI", uri},
                   {"QUERY_STRING", ""},
                   {"HTTP_HOST", "localhost"}};
    m8_buf out;
    m8_buf_init(&out, 1 << 20);
    m8_app_handle_params(app, p, M8_ARRAY_LEN(p), NULL, 0, &out);
    int status = 0;
    if (out.data && strncmp(out.data, "Status: ", 8) == 0)
        status = (int)strtol(out.data + 8, NULL, 10);
    m8_buf_free(&out);
    return status;
}

static char **db_env(const char *kind)
{
    /* Port 9 (discard) on loopback: nothing is connected at boot. */
    char sel[64];
    snprintf(sel, sizeof sel, "SELECTED_DB=%s", kind);
    return m8t_env(sel, "DB_HOST=127.0.0.1", "DB_PORT=9", "DB_DATABASE=app_db", "DB_USER=app",
                   "DB_PASSWORD=Lazy-Db-Pa55word!", NULL);
}

/* Runs fn in a child with var=NOLIB; what it wrote (one line) into out;
 * true when the child exited 0 (no crash). */
static bool in_child(const char *var, void (*fn)(FILE *), char *out, size_t cap)
{
    int pfd[2];
    out[0] = '\0';
    if (pipe(pfd) != 0)
        return false;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        setenv(var, NOLIB, 1);
        FILE *w = fdopen(pfd[1], "w");
        if (!w)
            _exit(3);
        fn(w);
        fclose(w);
        _exit(0);
    }
    close(pfd[1]);
    FILE *r = fdopen(pfd[0], "r");
    if (r) {
        if (!fgets(out, (int)cap, r))
            out[0] = '\0';
        fclose(r);
    } else {
        close(pfd[0]);
    }
    out[strcspn(out, "\n")] = '\0';
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void curl_missing(FILE *w)
{
    m8_http_result res;
    int rc = m8_http_get("http://127.0.0.1:9/", 2, 1024, &res);
    fprintf(w, "%d %s %d %s\n", rc, m8_httpc_err_name(res.err), res.not_sent, res.error);
    m8_buf_free(&res.body);
}

static void db_missing(FILE *w, const char *kind)
{
    m8_errlist errs = {0};
    m8_settings *s = m8t_settings(db_env(kind), &errs);
    char err[512] = "";
    m8_db *db = s ? m8_db_open(s, NULL, err, sizeof err) : NULL;
    int rc = boot(db_env(kind), true, NULL);
    fprintf(w, "%d %d %s\n", db == NULL, rc, err);
    m8_db_close(db);
    m8_settings_free(s);
    m8_errlist_free(&errs);
}

static void mariadb_missing(FILE *w)
{
    db_missing(w, "Mysql");
}

static void pg_missing(FILE *w)
{
    db_missing(w, "Postgres");
}

static void test_missing(void)
{
    char line[600];
    bool clean = in_child("M8_TEST_LIBCURL_SONAME", curl_missing, line, sizeof line);
    ok(clean, "no libcurl: the process does not crash");
    is_str(line,
           "-5 no_library 1 cannot load libcurl (" NOLIB "): " NOLIB
           ": cannot open shared object file: No such file or directory",
           "no libcurl: a request fails with M8_EIO, no_library, not sent, naming the library and "
           "the loader's reason");
    if (m8_db_backend_available(M8_DB_MYSQL)) {
        clean = in_child("M8_TEST_LIBMARIADB_SONAME", mariadb_missing, line, sizeof line);
        ok(clean, "no libmariadb: the process does not crash");
        is_str(line,
               "1 78 SELECTED_DB=Mysql: cannot load libmariadb (" NOLIB "): " NOLIB
               ": cannot open shared object file: No such file or directory",
               "no libmariadb: opening the database fails naming the library, and the boot "
               "stops with 78 (configuration)");
    }
    if (m8_db_backend_available(M8_DB_POSTGRES)) {
        clean = in_child("M8_TEST_LIBPQ_SONAME", pg_missing, line, sizeof line);
        ok(clean, "no libpq: the process does not crash");
        is_str(line,
               "1 78 SELECTED_DB=Postgres: cannot load libpq (" NOLIB "): " NOLIB
               ": cannot open shared object file: No such file or directory",
               "no libpq: opening the database fails naming the library, and the boot stops "
               "with 78 (configuration)");
    }
    ok(none_mapped(), "the children's attempts loaded nothing here");
}

static void test_no_db_no_jwks(void)
{
    ok(none_mapped(), "at start: none of libcurl, libmariadb, libpq is mapped");
    m8_app *app = NULL;
    int rc = boot(m8t_env0(), true, &app);
    is_int(rc, 0, "a service without JWKS_URI or a database boots");
    is_int(app ? get_status(app, "/api/health/") : 0, 200, "... and answers its health check");
    ok(none_mapped(), "... without mapping libcurl, libmariadb or libpq");
    m8_app_free(app);
}

static void test_db_boot(const char *kind, m8_db_kind k, const char *lib, const char *other)
{
    if (!m8_db_backend_available(k)) {
        ok(1, "SELECTED_DB=%s: boot # SKIP backend not built", kind);
        return;
    }
    bool other_before = mapped(other);
    m8_app *app = NULL;
    is_int(boot(db_env(kind), true, &app), 0, "SELECTED_DB=%s: the service boots", kind);
    ok(mapped(lib), "SELECTED_DB=%s: %s is mapped at boot (before any connection)", kind, lib);
    ok(mapped(other) == other_before, "SELECTED_DB=%s: ... and not the other client library", kind);
    ok(!mapped("libcurl.so"), "SELECTED_DB=%s: ... nor libcurl", kind);
    m8_app_free(app);
}

/* The JWKS of one RSA key (kid k1) served by tests/tools/jwks_server.py. */
static void test_jwks_fetch(void)
{
    static m8t_py srv = {.pid = -1};
    ok(!mapped("libcurl.so"), "jwks: libcurl is not mapped before the first fetch");
    const char *gen[] = {"genkeys", M8T_PY_DIR, NULL};
    char path[160];
    json_object *key = NULL;
    if (m8t_py_mkdir(&srv, "lazy-jwks") == 0 && m8t_py_run(&srv, "jwks_server.py", gen) == 0) {
        snprintf(path, sizeof path, "%s/rsa2048.json", srv.dir);
        key = json_object_from_file(path);
    }
    if (!key) {
        ok(1, "jwks: fetch # SKIP no /usr/bin/python3 with cryptography (jwks_server.py)");
        m8t_py_stop(&srv);
        return;
    }
    json_object_object_add(key, "kid", json_object_new_string("k1"));
    json_object *doc = json_object_new_object();
    json_object *keys = json_object_new_array();
    json_object_array_add(keys, key);
    json_object_object_add(doc, "keys", keys);
    snprintf(path, sizeof path, "%s/jwks.json", srv.dir);
    int wr = json_object_to_file(path, doc);
    json_object_put(doc);
    const char *serve[] = {"serve", M8T_PY_DIR, "--port", "0", NULL};
    if (wr != 0 || m8t_py_spawn(&srv, "jwks_server.py", serve, 15000) != 0) {
        ok(1, "jwks: fetch # SKIP the JWKS server did not start");
        m8t_py_stop(&srv);
        return;
    }
    char uri[96];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/jwks.json", srv.port);
    m8_buf body;
    m8_buf_init(&body, M8_MAX_JWKS_BYTES);
    size_t nkeys = 0;
    char why[256] = "";
    int rc = m8_jwks_fetch_document(uri, M8_ALG_RS256, 5, &body, &nkeys, why, sizeof why);
    ok(rc == 0 && nkeys == 1,
       "jwks: the fetch through the loaded libcurl works (rc %d, %zu keys%s%s)", rc, nkeys,
       why[0] ? ": " : "", why);
    ok(mapped("libcurl.so") && m8_httpc_loaded(), "jwks: libcurl is mapped after the fetch");
    m8_buf_free(&body);
    m8t_py_stop(&srv);
}

int main(void)
{
    m8_log_set_level(M8_LOG_CRITICAL);
    test_missing();
    test_no_db_no_jwks();
    test_db_boot("Mysql", M8_DB_MYSQL, "libmariadb.so", "libpq.so");
    test_db_boot("Postgres", M8_DB_POSTGRES, "libpq.so", "libmariadb.so");
    test_jwks_fetch();
    return done_testing();
}
