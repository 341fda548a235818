/* issuerproc.h - starts and stops tests/tools/issuer.py for the unit tests
 * that talk to a real issuer (test_apikey.c, test_revocation.c), through
 * pyserver.h.
 *
 *   if (iss_python_ok() != 0 || iss_start("apikey", extra_args) != 0) skip...
 *   json_object *o = iss_control("/_test/mint", "{}");   // caller puts
 *   long n = iss_count("apikey");                        // requests seen
 *
 * One issuer per test program: it serves on 127.0.0.1 (port 0, read back
 * from DIR/port), its state lives in a mkdtemp directory, and both are
 * removed by iss_stop(), also at exit. */
#ifndef M8_ISSUERPROC_H
#define M8_ISSUERPROC_H

#include <fcntl.h>
#include <json-c/json.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/httpc.h"
#include "pyserver.h"

/* One issuer for the whole program, also when it is built from several
 * files (M8T_SHARED, M8T_MAIN: see tap.h). */
#ifdef M8T_SHARED
extern m8t_py iss_srv;
extern char iss_base[128];
#ifdef M8T_MAIN
m8t_py iss_srv = {.pid = -1};
char iss_base[128]; /* http://127.0.0.1:PORT once iss_start() returned 0 */
#endif
#else
static m8t_py iss_srv = {.pid = -1};
static char iss_base[128]; /* http://127.0.0.1:PORT once iss_start() returned 0 */
#endif

/* Stops the issuer (by its PID) and removes its directory. */
static __attribute__((unused)) void iss_stop(void)
{
    m8t_py_stop(&iss_srv);
}

/* 0 when /usr/bin/python3 has what issuer.py needs (PyJWT, cryptography). */
static __attribute__((unused)) int iss_python_ok(void)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        return -1;
    pid_t pid;
    char *argv[] = {"python3", "-c", "import jwt, cryptography", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(&pid, "/usr/bin/python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Starts `issuer.py serve DIR --port 0 --fresh --no-legacy EXTRA...` (EXTRA:
 * a NULL-terminated list of at most 16 more arguments, e.g. "--client",
 * "name=secret"); TAG names the temporary directory.  0 once it listens
 * (up to 20 s: it generates keys first). */
static __attribute__((unused)) int iss_start(const char *tag, const char *const *extra)
{
    const char *args[24] = {"serve", M8T_PY_DIR, "--port", "0", "--fresh", "--no-legacy"};
    size_t n = 6;
    for (size_t i = 0; extra && extra[i]; i++) {
        if (n + 1 >= sizeof args / sizeof args[0])
            return -1;
        args[n++] = extra[i];
    }
    args[n] = NULL;
    atexit(iss_stop);
    if (m8t_py_start(&iss_srv, "issuer.py", tag, args, 20000) != 0)
        return -1;
    snprintf(iss_base, sizeof iss_base, "http://127.0.0.1:%d", iss_srv.port);
    return 0;
}

/* A control request to the issuer (POST with body, else GET); the parsed
 * JSON answer (caller puts) or NULL. */
static __attribute__((unused)) json_object *iss_control(const char *path, const char *body)
{
    char u[256];
    snprintf(u, sizeof u, "%s%s", iss_base, path);
    const char *h[] = {"Content-Type: application/json", NULL};
    m8_http_request rq = {.method = body ? "POST" : "GET",
                          .url = u,
                          .headers = h,
                          .body = body,
                          .body_len = body ? strlen(body) : 0,
                          .timeout_s = 10,
                          .max = 1 << 20};
    m8_http_result res;
    json_object *o = NULL;
    if (m8_http_do(&rq, &res) == 0 && res.status == 200 && res.body.data)
        o = json_tokener_parse(res.body.data);
    m8_buf_free(&res.body);
    return o;
}

/* Requests the issuer received for target (jwks, token, apikey, ...); -1
 * when it cannot say. */
static __attribute__((unused)) long iss_count(const char *target)
{
    char u[256];
    snprintf(u, sizeof u, "%s/_test/stats/%s", iss_base, target);
    m8_http_result res;
    long n = -1;
    if (m8_http_get(u, 10, 4096, &res) == 0 && res.status == 200 && res.body.data)
        n = strtol(res.body.data, NULL, 10);
    m8_buf_free(&res.body);
    return n;
}

#endif
