/* test_issuer_schema.h - what the files of the tests/unit/test_issuer_schema
 * program share: the servers' handles and the test functions main() runs. */
#ifndef M8_TESTS_TEST_ISSUER_SCHEMA_H
#define M8_TESTS_TEST_ISSUER_SCHEMA_H

#define M8T_SHARED 1 /* one TAP stream over the program's files (tap.h) */

#include "issuer/schema.h"
#include "issuer/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

/* test_issuer_schema.c: a new handle on the test database of kind (one per
 * connection; close with m8_db_close), NULL when its server is not up. */
m8_db *iss_connect(m8_db_kind kind);
/* Runs fn(kind, i) in n (at most 16) forked children at once (each opens
 * its own handle; fn's result is the child's exit status); returns how many
 * exited 0, codes (may be NULL) receives each one's status (-1: killed). */
int iss_race(m8_db_kind kind, int n, int (*fn)(m8_db_kind kind, int i), int *codes);
/* The value of a one-cell query, or -1. */
int64_t iss_int(m8_db *db, const char *sql);

/* test_issuer_store.c */
void test_store_offline(void);
void test_store(m8_db_kind kind);

#endif
