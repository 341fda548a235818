/* test_settings.h - what the files of the tests/unit/test_settings
 * program share: the loader fixture (S, E, load, expect_ok/expect_bad), the
 * temporary directory, the test functions main() runs (test_settings.c). */
#ifndef M8_TESTS_TEST_SETTINGS_H
#define M8_TESTS_TEST_SETTINGS_H

#define M8T_SHARED 1 /* one TAP stream over the program's files (tap.h) */

#include "config.h"

#include "tap.h"
#include "testenv.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOAD(...) load(m8t_env(__VA_ARGS__, NULL))

/* test_settings.c */
extern m8_settings *S;
extern m8_errlist E;
extern char dir[64];
m8_settings *load_src(const m8_settings_source *src);
m8_settings *load(char **env);
const char *errs(void);
const char *put_file(const char *name, const char *text);
char *ov(const char *name, const char *value);
void expect_ok(const char *name, const char *value);
void expect_bad(const char *name, const char *value, const char *needle);
int sh(const char *cmd);

/* test_settings_fields.c */
void test_base_and_defaults(void);
void test_required(void);
void test_value_grammar(void);
void test_cors_origins(void);
void test_bounds(void);
void test_patterns(void);
void test_roles_algorithms_db(void);

/* test_settings_model.c */
void test_model_checks(void);
void test_no_secret_in_errors(void);

/* test_settings_sources.c */
void test_sources(void);
void test_computed(void);

#endif
