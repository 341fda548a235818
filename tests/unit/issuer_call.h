/* issuer_call.h - the in-process request of the issuer's unit tests
 * (tests/unit/test_issuer_*.c) and the small checks of its answer, defined
 * once for all of them.
 *
 *   icall c = {.method = "POST", .base = "/api", .path = "/profile/api-keys/",
 *              .ctype = "application/json", .body = "{}", .bearer = tok};
 *   iresp *r = icall_do(app, &c);
 *   idetail(r, 401, "Unauthorized", "no token: 401");
 *
 * A request sends exactly what its icall names (NULL: not sent), so that a
 * test states which headers reach the app.  The TAP checks (ianswer,
 * idetail) are static: they report through the TAP counters of the file
 * that includes this header (tap.h; a program of several files defines
 * M8T_SHARED first). */
#ifndef M8_TESTS_ISSUER_CALL_H
#define M8_TESTS_ISSUER_CALL_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "app/app.h"
#include "db/db.h"
#include "tap.h"

/* One request's inputs; every NULL member is not sent. */
typedef struct icall {
    const char *method;  /* REQUEST_METHOD (NULL: GET) */
    const char *base;    /* put before path in REQUEST_URI, e.g. "/api" */
    const char *path;    /* what follows '?' is the QUERY_STRING ("" when none) */
    const char *ctype;   /* CONTENT_TYPE */
    const char *body;    /* the body (NULL: none) */
    size_t body_len;     /* 0: strlen(body); else that many bytes (NULs included) */
    bool length_always;  /* CONTENT_LENGTH also without a body ("0") */
    const char *peer;    /* REMOTE_ADDR */
    const char *bearer;  /* Authorization: Bearer <bearer> */
    const char *authz;   /* the whole Authorization value (when no bearer) */
    const char *api_key; /* X-API-Key */
    const char *client;  /* X-Internal-Client, the consumer id */
    const char *secret;  /* X-Internal-Token, the consumer secret */
    const char *cookie;  /* Cookie */
    const char *xff;     /* X-Forwarded-For */
} icall;

/* An answer: the status (-1: the request could not be built), the head
 * (the lines before the blank line, the Status line first) and the body,
 * both cut to their buffers: cut says so (with a diagnostic line). */
typedef struct iresp {
    int status;
    bool cut; /* the head or the body did not fit, or the body holds a NUL */
    char head[8192];
    char body[1 << 17];
} iresp;

/* Sends c to app through m8_app_handle_params into out (thread-safe as far
 * as app is).  The path and the Authorization value go whole, however
 * long (the app refuses what is over its limits). */
void icall_send(m8_app *app, const icall *c, iresp *out);
/* icall_send into one static answer, returned: it holds until the next
 * icall_do (not for threads). */
iresp *icall_do(m8_app *app, const icall *c);

/* The value of the head's first header name (exact case; "" when absent)
 * into out. */
const char *iheader(const iresp *r, const char *name, char *out, size_t outlen);
/* The name=value pair of the first Set-Cookie whose cookie is name (up to
 * its first ';'; "" when none) into out. */
const char *icookie(const iresp *r, const char *name, char *out, size_t outlen);
/* A member of the JSON object body as text: a string's value, any other
 * value's JSON ("" when absent or body is no object) into out. */
const char *imember(const char *body, const char *name, char *out, size_t outlen);
/* The member names of the body's object (or of its first element), joined
 * with ',' into out. */
const char *imembers(const char *body, char *out, size_t outlen);
/* The first 422 item's "type loc.joined" (e.g. "extra_forbidden
 * body.is_superuser"; "" when r is no 422 with items) into out. */
const char *i422(const iresp *r, char *out, size_t outlen);
/* The integer of a one-row query with one text parameter (NULL: none); -1
 * on an error or another row count. */
int64_t iint(m8_db *db, const char *sql, const char *param);
/* Whether r is status with exactly body (ianswer's comparison). */
bool ianswer_is(const iresp *r, int status, const char *body);
/* The got/want diagnostic lines of a failed ianswer. */
void ianswer_diag(const iresp *r, int status, const char *body);

/* Put before every ianswer/idetail test name with ": " when set. */
static const char *ianswer_prefix;

/* One TAP check: r is status with exactly body; the got/want lines when
 * not. */
static __attribute__((unused)) int ianswer(const iresp *r, int status, const char *body,
                                           const char *name)
{
    int good = ianswer_is(r, status, body);
    if (ianswer_prefix)
        ok(good, "%s: %s", ianswer_prefix, name);
    else
        ok(good, "%s", name);
    if (!good)
        ianswer_diag(r, status, body);
    return good;
}

/* One TAP check: r is status with the body {"detail":"<text>"}. */
static __attribute__((unused)) int idetail(const iresp *r, int status, const char *text,
                                           const char *name)
{
    char want[512];
    snprintf(want, sizeof want, "{\"detail\":\"%s\"}", text);
    return ianswer(r, status, want, name);
}

#endif
