/* test_db.h - what the files of the tests/unit/test_db program share:
 * the settings and connection helpers, the servers' ports, the test
 * functions main() runs (test_db.c). */
#ifndef M8_TESTS_TEST_DB_H
#define M8_TESTS_TEST_DB_H

#define M8T_SHARED 1 /* one TAP stream over the program's files (tap.h) */

#include "db/db.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app/app.h"
#include "core/log.h"
#include "http/http.h"
#include "tap.h"
#include "testenv.h"

#define PASSWORD "Sup3r-Secret-Db-Pa55!"

#define APP_DB "app_db"

#define APP_USER "app_user"

/* test_db.c */
m8_settings *db_settings(m8_db_kind kind, unsigned port);
void respond_is(m8_db *db, int rc, int want_status, const char *want_body, const char *what);
extern unsigned g_port[2];
m8_db *connect_to(m8_db_kind kind, unsigned port, const char *prefix);

/* test_db_offline.c */
void test_scrub(void);
void test_settings(void);
void test_availability(void);
void test_closed_port(m8_db_kind kind);
void test_silent_server(m8_db_kind kind);
void test_wait(m8_db_kind kind);
void test_placeholders(void);
void test_time(void);
void test_classify(void);
void test_result_limits(void);
void test_respond_pure(void);
void test_unavailable(m8_db_kind kind);

/* test_db_values.c */
void test_types(m8_db *db, const char *k, bool pg);
void test_tx(m8_db *db, const char *k, bool pg);
void test_errors(m8_db *db, const char *k, bool pg);
void test_reconnect(m8_db *db, m8_db *admin, const char *k, bool pg);
void test_ceiling(m8_db *db, const char *k, bool pg);
void test_table(m8_db *db, const char *k);

/* test_db_app.c */
void test_app_without(void);
void test_app_with(m8_db_kind kind, m8_db *admin);

#endif
