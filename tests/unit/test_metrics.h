/* test_metrics.h - what the files of the tests/unit/test_metrics program
 * share: settings, rendering and sample lookups, the text format checker, the
 * test functions main() runs (test_metrics.c). */
#ifndef M8_TESTS_TEST_METRICS_H
#define M8_TESTS_TEST_METRICS_H

#define M8T_SHARED 1 /* one TAP stream over the program's files (tap.h) */

#include "builtin/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

/* test_metrics.c */
m8_settings *settings(const char *prefix, const char *groups, const char *cred);
void settings_free(m8_settings *s);
char *render(const m8_shm *shm, const m8_settings *s, size_t max, int *rc);
const char *sample(const char *body, const char *key);
double value(const char *body, const char *key);
int count_lines(const char *body, const char *start);
int starts(const char *got, const char *want, const char *name);
int check_text(const char *body, const char *what);

/* test_metrics_record.c */
void test_exact_sums(void);
void test_buckets(void);
void test_labels(void);
void test_pool(void);
void test_full_slot(void);
void test_invented_methods(void);
void test_merge_created(void);

/* test_metrics_render.c */
void test_prefix(void);
void test_groups(void);
void test_render_groups(void);
void test_auth(void);
void test_scrape(void);
void test_jwks_age(void);

#endif
