/* test_issuer_private_db.c - the database half of
 * tests/unit/test_issuer_private: POST /private/users/ and jti-status v1 and
 * v2 against sessions made by real logins (doc/issuer.md#private-api). */
#include "test_issuer_private.h"

#include <json-c/json.h>
#include <time.h>

/* The jti and sub of an access token (HS256 with ACCESS_SECRET). */
static bool access_claims(const char *tok, char *jti, char *sub)
{
    setenv("M8T_TOK", tok, 1);
    FILE *f = popen("/usr/bin/python3 -c 'import jwt, os; c = jwt.decode(os.environ[\"M8T_TOK\"], "
                    "\"" ACCESS_SECRET "\", algorithms=[\"HS256\"], "
                    "options={\"verify_aud\": False}); print(c[\"jti\"], c[\"sub\"])' 2>/dev/null",
                    "r");
    char line[256] = "";
    bool got = f && fgets(line, sizeof line, f) != NULL;
    if (f)
        pclose(f);
    return got && sscanf(line, "%63s %36s", jti, sub) == 2;
}

typedef struct session {
    char access[4096], cookie[4096], jti[64], sub[40];
} session;

static bool login(tp *t, const char *email, session *s)
{
    char body[512];
    snprintf(body, sizeof body, "username=%s&password=%s", email, USER_PW);
    icall q = {.path = "/api/login/access-token",
               .body = body,
               .ctype = "application/x-www-form-urlencoded"};
    resp r;
    send_req(t, &q, &r);
    memset(s, 0, sizeof *s);
    snprintf(s->cookie, sizeof s->cookie, "%s", r.cookie);
    return r.status == 200 && imember(r.body, "access_token", s->access, sizeof s->access)[0] &&
           access_claims(s->access, s->jti, s->sub);
}

static void status_of(tp *t, const char *jti, const char *sub, resp *r)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"jti\":\"%s\",\"expected_user_id\":\"%s\",\"schema_version\":\"2\"}", jti, sub);
    post(t, JTI, body, ITEM, ITEM_SECRET, r);
}

static void sql(tp *t, const char *q, const char *param)
{
    m8_db_param p = M8_DB_TEXT(param);
    m8_db_result *r = NULL;
    if (m8_db_exec(t->admin, q, param ? &p : NULL, param ? 1 : 0, &r) != 0)
        diag("sql %s: %s", q, m8_db_last_error(t->admin)->message);
    m8_db_result_free(r);
}

void test_db(tp *t, const char *name)
{
    resp r;
    const char *U = "/api/private/users/";
    post(t, U,
         "{\"email\":\" Priv.User@Example.COM \",\"password\":\"" USER_PW "\",\"full_name\":"
         "\"Priv User\",\"is_verified\":true}",
         ITEM, ITEM_SECRET, &r);
    ok(r.status == 200 && strstr(r.body, "\"email\":\"priv.user@example.com\"") &&
           strstr(r.body, "\"role\":\"user\"") && strstr(r.body, "\"email_verified\":true") &&
           strstr(r.body, "\"provider\":\"password\"") && !strstr(r.body, "hashed"),
       "%s: users: created, email normalised, role user, verified (%s)", name, r.body);
    post(t, U,
         "{\"email\":\"priv.user@example.com\",\"password\":\"" USER_PW "\",\"full_name\":\"X\"}",
         ITEM, ITEM_SECRET, &r);
    ok(r.status == 409 &&
           strcmp(r.body, "{\"detail\":\"The user with this email already exists in the "
                          "system.\"}") == 0,
       "%s: users: a taken email: 409 %s", name, r.body);
    post(t, U, "{\"email\":\"other@example.com\",\"password\":\"" USER_PW "\"}", ITEM, ITEM_SECRET,
         &r);
    ok(r.status == 422 && strstr(r.body, "full_name"), "%s: users: full_name is required", name);
    post(t, U, "{\"email\":\"other@example.com\",\"password\":\"short\",\"full_name\":\"x\"}", ITEM,
         ITEM_SECRET, &r);
    ok(r.status == 422 && strstr(r.body, "string_too_short"), "%s: users: password 8-128", name);
    post(t, U, "{\"email\":\"other@example.com\",\"password\":\"" USER_PW "\",\"full_name\":\"x\"}",
         "stream-only", "stream-secret-0123456", &r);
    ok(r.status == 403 && strcmp(r.body, FORBID) == 0, "%s: users: needs scope user-create", name);
    post(t, U, "{}", "who", ITEM_SECRET, &r);
    is_int(r.status, 401, "%s: users: 401 before validation", name);
    char tok[2048];
    exchange(t, "{\"scopes\":[\"user-create\"]}", tok, sizeof tok);
    icall b = {.path = U,
               .bearer = tok,
               .body = "{\"email\":\"other@example.com\",\"password\":\"" USER_PW
                       "\",\"full_name\":\"Other\"}"};
    send_req(t, &b, &r);
    ok(r.status == 200 && strstr(r.body, "\"email_verified\":false"),
       "%s: users: with a service token; is_verified defaults to false", name);

    session s;
    if (!ok(login(t, "priv.user@example.com", &s), "%s: the created user logs in", name))
        return;
    status_of(t, s.jti, s.sub, &r);
    char want[256];
    snprintf(want, sizeof want,
             "{\"active\":true,\"user_id\":\"%s\",\"auth_generation\":1,\"schema_version\":\"2\"}",
             s.sub);
    is_str(r.body, want, "%s: v2: the current session is active with its generation", name);
    char hex[40];
    size_t k = 0;
    for (const char *p = s.sub; *p && k < 32; p++)
        if (*p != '-')
            hex[k++] = (char)(*p >= 'a' ? *p - 32 : *p);
    hex[k] = '\0';
    status_of(t, s.jti, hex, &r);
    is_str(r.body, want, "%s: v2: expected_user_id as 32 upper-case hex digits", name);
    status_of(t, s.jti, "6f1c2a4e-0000-4000-8000-000000000001", &r);
    is_str(r.body, "{\"active\":false,\"schema_version\":\"2\"}",
           "%s: v2: another expected user: inactive", name);
    status_of(t, "not-issued", s.sub, &r);
    ok(strstr(r.body, "\"active\":false") != NULL, "%s: v2: a jti never issued: inactive", name);
    char v1[128];
    snprintf(v1, sizeof v1, "{\"jti\":\"%s\"}", s.jti);
    post(t, JTI, v1, ITEM, ITEM_SECRET, &r);
    is_str(r.body, "{\"active\":true}", "%s: v1: not blacklisted: active", name);

    /* a second login supersedes the first session */
    session s2;
    login(t, "priv.user@example.com", &s2);
    status_of(t, s.jti, s.sub, &r);
    ok(strstr(r.body, "\"active\":false") != NULL, "%s: v2: a superseded session: inactive", name);
    status_of(t, s2.jti, s2.sub, &r);
    ok(strstr(r.body, "\"active\":true") != NULL, "%s: v2: the new session: active", name);

    /* the blacklist is the last revoker */
    m8_issuer_blacklist_put(t->admin, "auth", s2.jti, (int64_t)time(NULL) + 600);
    status_of(t, s2.jti, s2.sub, &r);
    ok(strstr(r.body, "\"active\":false") != NULL, "%s: v2: a blacklisted jti: inactive", name);
    snprintf(v1, sizeof v1, "{\"jti\":\"%s\"}", s2.jti);
    post(t, JTI, v1, ITEM, ITEM_SECRET, &r);
    is_str(r.body, "{\"active\":false}", "%s: v1: a blacklisted jti: inactive", name);

    /* generation, activity, role consistency, tombstone */
    login(t, "priv.user@example.com", &s);
    sql(t, "UPDATE auth_user SET auth_generation = auth_generation + 1 WHERE email = ?",
        "priv.user@example.com");
    status_of(t, s.jti, s.sub, &r);
    ok(strstr(r.body, "\"active\":false") != NULL,
       "%s: v2: the user's generation moved on (password change): inactive", name);
    login(t, "priv.user@example.com", &s);
    status_of(t, s.jti, s.sub, &r);
    ok(strstr(r.body, "\"auth_generation\":2") != NULL,
       "%s: v2: a login after it: active at generation 2", name);
    sql(t, "UPDATE auth_user SET is_active = false WHERE email = ?", "priv.user@example.com");
    status_of(t, s.jti, s.sub, &r);
    ok(strstr(r.body, "\"active\":false") != NULL, "%s: v2: a deactivated owner: inactive", name);
    sql(t, "UPDATE auth_user SET is_active = true WHERE email = ?", "priv.user@example.com");
    char uid[M8_UUID_STR_LEN + 1];
    m8_issuer_uuid_param(t->admin, s.sub, uid);
    sql(t, "INSERT INTO auth_tombstone (user_id, terminal_generation) VALUES (?, 9)", uid);
    status_of(t, s.jti, s.sub, &r);
    ok(strstr(r.body, "\"active\":false") != NULL, "%s: v2: a tombstone: inactive", name);
    sql(t, "DELETE FROM auth_tombstone WHERE user_id = ?", uid);
    status_of(t, s.jti, s.sub, &r);
    ok(strstr(r.body, "\"active\":true") != NULL, "%s: v2: without it: active again", name);
    sql(t, "UPDATE auth_client_session SET auth_generation = NULL WHERE jwt_jti = ?", s.jti);
    status_of(t, s.jti, s.sub, &r);
    ok(strstr(r.body, "\"active\":false") != NULL, "%s: v2: a NULL session stamp: inactive", name);

    /* logout at the issuer */
    login(t, "priv.user@example.com", &s);
    icall lo = {.path = "/api/login/logout/", .bearer = s.access, .cookie = s.cookie};
    send_req(t, &lo, &r);
    is_int(r.status, 200, "%s: logout", name);
    status_of(t, s.jti, s.sub, &r);
    ok(strstr(r.body, "\"active\":false") != NULL, "%s: v2: after logout: inactive", name);

    /* hybrid: the owner's generation whatever the jti */
    t->iss.hybrid = true;
    status_of(t, "whatever", s.sub, &r);
    ok(strstr(r.body, "\"active\":true") && strstr(r.body, s.sub),
       "%s: v2 hybrid: any jti of an existing user: active", name);
    status_of(t, "whatever", "6f1c2a4e-0000-4000-8000-000000000001", &r);
    ok(strstr(r.body, "\"active\":false") != NULL, "%s: v2 hybrid: no such user: inactive", name);
    t->iss.hybrid = false;
}
