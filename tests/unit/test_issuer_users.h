/* test_issuer_users.h - shared helpers of test_issuer_users (the harness,
 * the servers, the seeded users) and the admin half in
 * test_issuer_users_admin.c. */
#ifndef M8_TEST_ISSUER_USERS_H
#define M8_TEST_ISSUER_USERS_H

#define M8T_SHARED 1
#include "config.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "db/db.h"
#include "issuer/revoke.h"
#include "issuer/service.h"
#include "issuer/store.h"
#include "issuer_call.h"
#include "issuer_db.h"
#include "tap.h"

/* The state of one database run. */
typedef struct tctx {
    m8_db_kind kind;
    const char *name; /* "MariaDB" / "PostgreSQL" for test names */
    m8_app *app;
    m8_db *db; /* a direct connection for the checks */
    m8_issuer iss;
    m8_issuer_user su, user, google;
    char su_tok[2048], user_tok[2048], google_tok[2048];
} tctx;

#define U_PASSWORD "Old-Passw0rd!"
#define SU_PASSWORD "Root-Passw0rd!"

/* One request through the app (issuer_call.h): method, path under /api,
 * JSON body (or NULL), bearer token (or NULL). */
iresp *t_req(tctx *t, const char *method, const char *path, const char *body, const char *tok);
/* The database form of a user id. */
const char *t_uid(tctx *t, const char *id, char out[37]);
/* Inserts a user row (role, provider, password or NULL) and mints a token
 * for it into tok (cap 2048). */
void t_user(tctx *t, m8_issuer_user *u, const char *email, const char *role, const char *provider,
            const char *password, char *tok);
/* Inserts a session row of user id with jti, expiring in exp_in seconds. */
void t_session(tctx *t, const char *id, const char *jti, long long exp_in);

void test_admin(tctx *t);

#endif
