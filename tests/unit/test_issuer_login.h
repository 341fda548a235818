/* test_issuer_login.h - what the files of the tests/unit/test_issuer_login
 * program share: the issuer under test, its in-process requests, and the
 * database helpers. */
#ifndef M8_TESTS_TEST_ISSUER_LOGIN_H
#define M8_TESTS_TEST_ISSUER_LOGIN_H

#define M8T_SHARED 1 /* one TAP stream over the program's files (tap.h) */

#include "core/common.h"

#include "app/app.h"
#include "issuer/clientip.h"
#include "issuer/form.h"
#include "issuer/service.h"
#include "issuer/sessions.h"
#include "issuer/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

#include "issuer_call.h" /* after tap.h: its checks count in this program's stream */

#define ACCESS_SECRET "Test-Access-Secret-Key-0123456789abcdef!"
#define REFRESH_SECRET "Test-Refresh-Secret-Key-0123456789abcdef!"
#define ARGON_PW "Argon-Pass-123!"
#define BCRYPT_PW "correct horse battery staple"

/* One issuer: its app (routes under /api/login/...), the m8_issuer the
 * handlers get, and a settings copy the tests change (failure modes,
 * limits). */
typedef struct tl_issuer {
    m8_app *app;
    m8_issuer iss;
    m8_settings s; /* shallow copy of the app's settings */
    m8_db_kind kind;
    m8_db *admin; /* the tests' own handle */
} tl_issuer;

/* An answer: status, body, the Set-Cookie and WWW-Authenticate values. */
typedef struct tl_resp {
    int status;
    char body[8192];
    char cookie[4096];
    char www[64];
} tl_resp;

/* test_issuer_login.c */
int tl_issuer_init(tl_issuer *t, m8_db_kind kind, unsigned port);
void tl_issuer_free(tl_issuer *t);
/* Sends r (issuer_call.h; method NULL: POST, peer NULL: 127.0.0.1, always
 * a CONTENT_LENGTH) into out. */
void tl_send(tl_issuer *t, const icall *r, tl_resp *out);
/* POSTs a urlencoded login for (user, pw) from the client address ip. */
void tl_login(tl_issuer *t, const char *user, const char *pw, const char *ip, tl_resp *out);
/* "refresh_token=<value>" of a Set-Cookie line into out (the request's
 * Cookie header); false when there is none. */
bool tl_cookie_of(const tl_resp *r, char *out, size_t outlen);
/* The access_token of a login answer into out. */
bool tl_access_of(const tl_resp *r, char *out, size_t outlen);
/* A user row (hash NULL = none); its id into id. */
bool tl_user_add(tl_issuer *t, const char *email, const char *hash, bool active,
                 char id[M8_UUID_STR_LEN + 1]);
/* The text of a one-cell query into out ("" when none). */
void tl_text(tl_issuer *t, const char *sql, const char *param, char *out, size_t outlen);
/* A user id in the database's encoding. */
void tl_uid(tl_issuer *t, const char *id, char out[M8_UUID_STR_LEN + 1]);
/* Runs python3 with PyJWT on tok (in env M8T_TOK) and the secret: prints
 * "<type> <jti> <sub>" into out; false on a decode failure. */
bool tl_pyjwt(const char *tok, const char *secret, char *out, size_t outlen);

/* test_issuer_login_flows.c */
void test_login(tl_issuer *t);
void test_refresh(tl_issuer *t);
void test_logout(tl_issuer *t);
void test_modes(tl_issuer *t);
void test_db_down(m8_db_kind kind, unsigned closed_port);

#endif
