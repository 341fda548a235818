/* test_issuer_private.h - what the files of the tests/unit/test_issuer_private
 * program share: the issuer under test, its in-process requests and the
 * registry the tests load. */
#ifndef M8_TESTS_TEST_ISSUER_PRIVATE_H
#define M8_TESTS_TEST_ISSUER_PRIVATE_H

#define M8T_SHARED 1 /* one TAP stream over the program's files (tap.h) */

#include "core/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "issuer/private.h"
#include "issuer/service.h"
#include "issuer/store.h"
#include "tap.h"

#include "issuer_call.h" /* after tap.h: its checks count in this program's stream */

#define ACCESS_SECRET "Test-Access-Secret-Key-0123456789abcdef!"
#define REFRESH_SECRET "Test-Refresh-Secret-Key-0123456789abcdef!"
#define SERVICE_SECRET "Test-Private-Api-Secret-0123456789abcdef!"
#define USER_PW "Private-Pass-123!"
#define ITEM "item-service"
#define ITEM_SECRET "item-secret-0123456789"
#define UNAUTH "{\"detail\":\"Unauthorized\"}"
#define FORBID "{\"detail\":\"Forbidden\"}"
#define JTI "/api/private/v1/jti-status"

/* The issuer: its app (routes under /api/...), the m8_issuer the handlers
 * get, a settings copy the tests change, the tests' own handle. */
typedef struct tp {
    m8_app *app;
    m8_issuer iss;
    m8_settings s;
    m8_db *admin;
    bool pg;
} tp;

typedef struct resp {
    int status;
    char body[8192];
    char cookie[4096]; /* "refresh_token=..." of a Set-Cookie */
} resp;

/* test_issuer_private.c */
/* POSTs r (issuer_call.h; peer 127.0.0.1, ctype NULL: JSON, always a
 * CONTENT_LENGTH) into out. */
void send_req(tp *t, const icall *r, resp *out);
/* POSTs body with the bootstrap pair (client, token; NULL: not sent). */
void post(tp *t, const char *path, const char *body, const char *client, const char *token,
          resp *out);
/* A service token of ITEM for body (NULL: no body) into tok. */
bool exchange(tp *t, const char *body, char *tok, size_t toklen);

/* test_issuer_private_db.c */
void test_db(tp *t, const char *name);

#endif
