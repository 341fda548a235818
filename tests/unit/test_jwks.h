/* test_jwks.h - what the files of the tests/unit/test_jwks program share:
 * the key server (tests/tools/jwks_server.py) and its knobs, key set
 * documents, the test functions main() runs (test_jwks.c). */
#ifndef M8_TESTS_TEST_JWKS_H
#define M8_TESTS_TEST_JWKS_H

#define M8T_SHARED 1 /* one TAP stream over the program's files (tap.h) */

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
#include "pyserver.h"
#include "shm/shm.h"
#include "tap.h"

/* test_jwks.c */
extern m8t_py jwks_srv;
extern int port;
void path_in(char *out, size_t cap, const char *dir, const char *name);
void write_file(const char *dir, const char *name, const char *data, size_t len);
void knob(const char *name, const char *value);
char *slurp(const char *dir, const char *name);
long hits(void);
void sleep_ms(long ms);
void server_stop(void);
int server_start(int want);
void url(char *out, size_t cap, const char *path);
json_object *jwk(const char *name, const char *kid, const char *use);
char *doc(json_object *k0, ...);
void serve_doc(char *d);
void log_capture(void);
char *log_release(void);
m8_jwks *resolver(double ttl, double cooldown);
m8_jwks_result find(m8_jwks *r, const char *kid, double now);

/* test_jwks_fetch.c */
void test_parse(void);
void test_httpc(void);

/* test_jwks_rotation.c */
void test_new(void);
void test_lazy_rotation(void);
void test_threads(void);
void test_ttl_and_failures(void);
void test_no_kid(void);

/* test_jwks_limits.c */
void test_body_cap(void);
void test_kid_reuse(void);
void test_no_https_downgrade(void);
void test_max_stale(void);

#endif
