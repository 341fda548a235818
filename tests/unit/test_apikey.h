/* test_apikey.h - what the files of the tests/unit/test_apikey program
 * share: the consumer settings, one resolution, the issuer controls, the test
 * functions main() runs (test_apikey.c). */
#ifndef M8_TESTS_TEST_APIKEY_H
#define M8_TESTS_TEST_APIKEY_H

#define M8T_SHARED 1 /* one TAP stream over the program's files (tap.h) */

#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/apikey.h"
#include "core/log.h"
#include "issuerproc.h"
#include "net/httpc.h"
#include "tap.h"

#define SECRET "Item-Service-Bootstrap-Secret-0123456789!"

#define CLIENT "item-service"

/* test_apikey.c */
extern char intro_url[256];
extern m8_arena arena;
m8_settings *settings(const char *introspection_url);
m8_apikey *make(const m8_settings *s);
void drop(m8_apikey *k, m8_settings *s);
m8_apikey_stats stats(m8_apikey *k);
extern m8_apikey_answer ans;
bool resolve(m8_apikey *k, const char *key, m8_apikey_need need);
const char *outcome(void);
void ctl(const char *path, const char *body);
void fault(const char *json);
void add_key(const char *json);

/* test_apikey_local.c */
void test_names(void);
void test_capability(void);
void test_audit(void);
void test_parse(void);
void test_new(void);
void test_local(void);

/* test_apikey_order.c */
void test_rows(void);

/* test_apikey_client.c */
void test_too_large(void);
void test_slow(void);
void test_load_shed(void);
void test_breaker(void);
void test_service_token(void);
void test_keys(void);
void test_threads(void);

#endif
