/* test_issuer_users_admin.c - the canonical superuser's /users/ routes
 * (lib/issuer/users.c): list, create, read, update with the revocation and
 * the last-superuser rule, delete (part of test_issuer_users). */
#include "test_issuer_users.h"

#include <pthread.h>

static const char *id_of(const iresp *r, char out[37])
{
    return imember(r->body, "id", out, 37);
}

static void test_create(tctx *t)
{
    const char *n = t->name;
    char buf[256], path[128];
    iresp *r = t_req(t, "POST", "/users/new_user/",
                     "{\"email\":\" New@Example.com\",\"password\":\"Passw0rd-123\",\"role\":"
                     "\"writer\",\"full_name\":\"N\"}",
                     t->su_tok);
    ok(r->status == 200 && strstr(r->body, "\"email\":\"new@example.com\"") &&
           strstr(r->body, "\"role\":\"writer\"") && strstr(r->body, "\"is_superuser\":false") &&
           !strstr(r->body, "hashed_password"),
       "%s: new_user answers 200 UserPublic, email normalised, no hash", n);
    char nid[37];
    id_of(r, nid);
    is_int(iint(t->db,
                "SELECT COUNT(*) FROM auth_privileged_action_audit WHERE row_pk = ? AND "
                "action = 'add'",
                nid),
           1, "%s: new_user writes an add audit row", n);
    r = t_req(t, "POST", "/users/new_user/",
              "{\"email\":\"new@example.com\",\"password\":\"Passw0rd-123\"}", t->su_tok);
    idetail(r, 400, "The user with this email already exists in the system.",
            "new_user: a taken email is 400 (with the final period)");
    r = t_req(t, "POST", "/users/signup/",
              "{\"email\":\"NEW@example.com\",\"password\":\"Passw0rd-123\"}", t->su_tok);
    idetail(r, 400, "The user with this email already exists in the system",
            "signup: a taken email is 400 (without the final period)");
    r = t_req(t, "POST", "/users/signup/",
              "{\"email\":\"s@example.com\",\"password\":\"Passw0rd-123\",\"is_superuser\":false}",
              t->su_tok);
    is_str(i422(r, buf, sizeof buf), "extra_forbidden body.is_superuser",
           "signup: an is_superuser key is 422");
    r = t_req(t, "POST", "/users/new_user/",
              "{\"email\":\"s@example.com\",\"password\":\"Passw0rd-123\",\"role\":\"superadmin\","
              "\"is_superuser\":true}",
              t->su_tok);
    is_str(i422(r, buf, sizeof buf), "extra_forbidden body.is_superuser",
           "new_user: an is_superuser key is 422");
    r = t_req(t, "POST", "/users/signup/", "{\"password\":\"Passw0rd-123\"}", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "missing body.email", "signup: a missing email is 422");
    r = t_req(t, "POST", "/users/signup/", "{\"email\":\"nobody\",\"password\":\"Passw0rd-123\"}",
              t->su_tok);
    is_str(i422(r, buf, sizeof buf), "value_error body.email",
           "signup: an address without @ is 422 value_error");
    r = t_req(t, "POST", "/users/new_user/",
              "{\"email\":\"r@example.com\",\"password\":\"Passw0rd-123\",\"role\":\"root\"}",
              t->su_tok);
    is_str(i422(r, buf, sizeof buf), "enum body.role", "new_user: an unknown role is 422 enum");
    like(r->body, "Input should be 'superadmin', 'admin', 'writer', 'reader' or 'user'",
         "new_user: the enum message lists the five roles");
    r = t_req(t, "POST", "/users/new_user/", "{\"email\":\"p@example.com\"}", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "value_error body",
           "new_user: a password account without a password is 422");
    r = t_req(t, "POST", "/users/new_user/",
              "{\"email\":\"g9@example.com\",\"provider\":\"google\",\"oauth_user_id\":"
              "\"google-sub-1\"}",
              t->su_tok);
    ok(r->status == 400 &&
           strncmp(r->body,
                   "{\"success\":false,\"msg\":\"Integrity error.\",\"from_error\":"
                   "\"IntegrityError\",\"errors\":[{",
                   83) == 0 &&
           strstr(r->body, "\"status_code\":400}"),
       "%s: new_user: a taken oauth_user_id is the SDK envelope sent with its status 400", n);
    if (r->status != 400)
        diag("%d %s", r->status, r->body);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_user WHERE email = 'g9@example.com'", NULL), 0,
           "%s: new_user: the refused creation is rolled back", n);
    r = t_req(t, "POST", "/users/new_user/",
              "{\"email\":\"g8@example.com\",\"provider\":\"google\",\"oauth_user_id\":"
              "\"google-sub-8\"}",
              t->su_tok);
    ok(r->status == 200 && strstr(r->body, "\"provider\":\"google\""),
       "%s: new_user creates a Google account with its oauth_user_id", n);
    r = t_req(t, "POST", "/users/signup/",
              "{\"email\":\"sig@example.com\",\"password\":\"Passw0rd-123\"}", t->su_tok);
    ok(r->status == 200 && strstr(r->body, "\"role\":\"user\"") &&
           strstr(r->body, "\"provider\":\"password\""),
       "%s: signup answers 200 UserPublic (role user)", n);
    snprintf(path, sizeof path, "/users/get/%s/", nid);
    r = t_req(t, "GET", path, NULL, t->su_tok);
    ok(r->status == 200 && strstr(r->body, "\"email\":\"new@example.com\""),
       "%s: users/get answers the row", n);
    r = t_req(t, "GET", "/users/get/9d2b1f6e-0c4a-4e8b-a1d3-5f6e7a8b9c0d/", NULL, t->su_tok);
    idetail(r, 404, "User not found", "users/get: an unknown id is 404 User not found");
    r = t_req(t, "GET", "/users/get/not-a-uuid/", NULL, t->su_tok);
    is_str(i422(r, buf, sizeof buf), "uuid_parsing path.user_id",
           "users/get: a non-UUID id is 422 uuid_parsing");
}

static void test_list(tctx *t)
{
    const char *n = t->name;
    char buf[256];
    iresp *r = t_req(t, "GET", "/users/?skip=0&limit=100", NULL, t->su_tok);
    json_object *o = json_tokener_parse(r->body), *d, *c;
    int64_t rows = iint(t->db, "SELECT COUNT(*) FROM auth_user", NULL);
    ok(r->status == 200 && json_object_object_get_ex(o, "data", &d) &&
           json_object_object_get_ex(o, "count", &c) && json_object_get_int64(c) == rows &&
           (int64_t)json_object_array_length(d) == rows,
       "%s: GET /users/ answers UsersPublic with every row and the count", n);
    json_object_put(o);
    r = t_req(t, "GET", "/users/?skip=1&limit=1", NULL, t->su_tok);
    o = json_tokener_parse(r->body);
    ok(json_object_object_get_ex(o, "data", &d) && json_object_array_length(d) == 1 &&
           json_object_object_get_ex(o, "count", &c) && json_object_get_int64(c) == rows,
       "%s: skip and limit page the data, count stays the total", n);
    json_object_put(o);
    r = t_req(t, "GET", "/users/?limit=abc", NULL, t->su_tok);
    is_str(i422(r, buf, sizeof buf), "int_parsing query.limit",
           "users: a non-integer limit is 422");
    r = t_req(t, "GET", "/users/?skip=-1", NULL, t->su_tok);
    is_str(i422(r, buf, sizeof buf), "greater_than_equal query.skip",
           "users: a negative skip is 422");
}

static void test_update(tctx *t)
{
    const char *n = t->name;
    char path[128], uid[37], tok[2048], buf[256];
    m8_issuer_user w;
    t_user(t, &w, "walt@example.com", "writer", "password", "Walt-Passw0rd", tok);
    t_uid(t, w.id, uid);
    snprintf(path, sizeof path, "/users/update/%s/", w.id);
    iresp *r = t_req(t, "PATCH", path, "{\"full_name\":\"Walt W\"}", t->su_tok);
    ok(r->status == 200 && strstr(r->body, "\"auth_generation\":1,\"revocation_enqueued\":false"),
       "%s: a pure profile edit answers revocation_enqueued false", n);
    t_session(t, w.id, "55555555-5555-4555-8555-555555555555", 600);
    char kid[37], kp[37], khash[80];
    m8_jti_new(kid);
    snprintf(khash, sizeof khash, "%s%s", kid, "0000");
    m8_db_param kpar[] = {M8_DB_TEXT(t_uid(t, kid, kp)), M8_DB_TEXT(khash), M8_DB_TEXT(uid)};
    m8_db_exec(t->db,
               "INSERT INTO auth_api_key (id, name, revoked, key_hash, user_id) VALUES (?, 'k1', "
               "FALSE, ?, ?)",
               kpar, 3, NULL);
    r = t_req(t, "PATCH", path, "{\"role\":\"admin\"}", t->su_tok);
    ok(r->status == 200 && strstr(r->body, "\"role\":\"admin\"") &&
           strstr(r->body, "\"auth_generation\":2,\"revocation_enqueued\":true"),
       "%s: a role change answers the bumped generation and revocation_enqueued true", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_client_session WHERE user_id = ?", uid), 0,
           "%s: a role change deletes the sessions", n);
    is_int(
        iint(t->db, "SELECT COUNT(*) FROM auth_api_key WHERE user_id = ? AND revoked = TRUE", uid),
        0, "%s: a role change leaves the API keys alone", n);
    r = t_req(t, "PATCH", path, "{\"is_active\":false}", t->su_tok);
    ok(r->status == 200 && strstr(r->body, "\"is_active\":false"), "%s: deactivation answers 200",
       n);
    is_int(
        iint(t->db, "SELECT COUNT(*) FROM auth_api_key WHERE user_id = ? AND revoked = TRUE", uid),
        1, "%s: deactivation revokes the user's API keys", n);
    r = t_req(t, "GET", "/profile/get/me/", NULL, tok);
    idetail(r, 403, "Inactive user", "get/me: a caller deactivated since its token is 403");
    r = t_req(t, "PATCH", path, "{\"email\":\"ROOT@example.com\"}", t->su_tok);
    idetail(r, 409, "User with this email already exists", "users/update: a taken email is 409");
    r = t_req(t, "PATCH", path, "{\"is_superuser\":true}", t->su_tok);
    is_str(i422(r, buf, sizeof buf), "extra_forbidden body.is_superuser",
           "users/update: an is_superuser key is 422");
    r = t_req(t, "PATCH", "/users/update/9d2b1f6e-0c4a-4e8b-a1d3-5f6e7a8b9c0d/",
              "{\"full_name\":\"x\"}", t->su_tok);
    idetail(r, 404, "The user with this id does not exist in the system",
            "users/update: an unknown id is 404");
    snprintf(path, sizeof path, "/users/update/%s/", t->google.id);
    r = t_req(t, "PATCH", path, "{\"password\":\"Some-Passw0rd\"}", t->su_tok);
    idetail(r, 403, "Password operations are not available for this account",
            "users/update: a password on a Google account is 403");
    snprintf(path, sizeof path, "/users/update/%s/", t->su.id);
    r = t_req(t, "PATCH", path, "{\"role\":\"admin\"}", t->su_tok);
    idetail(r, 409, "last_superuser_required",
            "users/update: demoting the only active superuser is 409");
    r = t_req(t, "PATCH", path, "{\"is_active\":false}", t->su_tok);
    idetail(r, 409, "last_superuser_required",
            "users/update: deactivating the only active superuser is 409");
    snprintf(path, sizeof path, "/users/update/%s/", w.id);
    m8_db_param g = M8_DB_TEXT(uid);
    m8_db_exec(t->db, "UPDATE auth_user SET auth_generation = 9223372036854775807 WHERE id = ?", &g,
               1, NULL);
    r = t_req(t, "PATCH", path, "{\"role\":\"reader\"}", t->su_tok);
    static const char env_head[] =
        "{\"success\":false,\"msg\":\"An unexpected error occurred.\",\"from_error\":"
        "\"Exception\",\"errors\":[{\"table\":null,\"field_name\":null,\"error\":"
        "\"An internal error occurred. Reference: ";
    ok(r->status == 500 && strncmp(r->body, env_head, sizeof env_head - 1) == 0 &&
           strlen(r->body) == sizeof env_head - 1 + 12 + 23 &&
           strstr(r->body, ".\"}],\"status_code\":500}"),
       "%s: a generation at its maximum fails the change with the SDK envelope (500)", n);
    ok(iint(t->db, "SELECT COUNT(*) FROM auth_user WHERE id = ? AND role = 'ADMIN'", uid) == 1,
       "%s: the failed change is rolled back (role unchanged, no wrap)", n);
    is_int(iint(t->db,
                "SELECT COUNT(*) FROM auth_user WHERE role = 'SUPERADMIN' AND is_active = TRUE",
                NULL),
           1, "%s: the refused demotion changed nothing", n);
}

static void test_delete(tctx *t)
{
    const char *n = t->name;
    char path[128], uid[37], tok[2048], buf[256];
    m8_issuer_user s2;
    t_user(t, &s2, "root2@example.com", "superadmin", "password", "Root2-Passw0rd", tok);
    snprintf(path, sizeof path, "/users/delete/%s/", t->su.id);
    int64_t before = iint(t->db, "SELECT revision FROM auth_security_policy", NULL);
    snprintf(path, sizeof path, "/users/delete/%s/", s2.id);
    iresp *r = t_req(t, "DELETE", path, NULL, t->su_tok);
    ok(r->status == 200 && strcmp(r->body, "{\"message\":\"User deleted successfully\"}") == 0,
       "%s: deleting a second superuser answers 200", n);
    ok(iint(t->db, "SELECT revision FROM auth_security_policy", NULL) > before,
       "%s: the superuser_set policy revision is bumped", n);
    snprintf(path, sizeof path, "/users/delete/%s/", t->su.id);
    r = t_req(t, "DELETE", path, NULL, t->su_tok);
    idetail(r, 409, "last_superuser_required",
            "users/delete: deleting the last superuser (oneself) is 409");
    r = t_req(t, "DELETE", "/users/delete/9d2b1f6e-0c4a-4e8b-a1d3-5f6e7a8b9c0d/", NULL, t->su_tok);
    idetail(r, 404, "User not found", "users/delete: an unknown id is 404");
    snprintf(path, sizeof path, "/users/delete/%s/", t->google.id);
    r = t_req(t, "DELETE", path, NULL, t->su_tok);
    is_int(r->status, 200, "%s: deleting another Google account answers 200", n);
    t_uid(t, t->google.id, uid);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_identity_block WHERE user_id = ?", uid), 1,
           "%s: the deleted Google account's identity is blocked", n);
    is_int(iint(t->db, "SELECT COUNT(*) FROM auth_tombstone WHERE user_id = ?", uid), 1,
           "%s: the admin deletion writes a tombstone", n);
    r = t_req(t, "DELETE", "/users/delete/zz/", NULL, t->su_tok);
    is_str(i422(r, buf, sizeof buf), "uuid_parsing path.user_id",
           "users/delete: a non-UUID id is 422");
}

typedef struct racer {
    tctx *t;
    const char *tok;
    char path[128];
    pthread_barrier_t *go;
    int status;
} racer;

static void *race_one(void *arg)
{
    racer *x = arg;
    icall c = {.method = "PATCH",
               .base = "/api",
               .path = x->path,
               .bearer = x->tok,
               .body = "{\"role\":\"admin\"}",
               .ctype = "application/json"};
    iresp *r = malloc(sizeof *r);
    pthread_barrier_wait(x->go);
    if (r)
        icall_send(x->t->app, &c, r);
    x->status = r ? r->status : 0;
    free(r);
    return NULL;
}

/* Two superusers demote each other at once, five rounds: the superuser_set
 * lock lets exactly one through each time. */
static void test_race(tctx *t)
{
    char tok[2048], a[37], b[37];
    m8_issuer_user s3;
    t_user(t, &s3, "root3@example.com", "superadmin", "password", "Root3-Passw0rd", tok);
    t_uid(t, t->su.id, a);
    t_uid(t, s3.id, b);
    int good = 0;
    for (int round = 0; round < 5; round++) {
        m8_db_param p[] = {M8_DB_TEXT(a), M8_DB_TEXT(b)};
        m8_db_exec(t->db,
                   "UPDATE auth_user SET role = 'SUPERADMIN', is_superuser = TRUE WHERE id IN "
                   "(?, ?)",
                   p, 2, NULL);
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        racer x = {.t = t, .tok = t->su_tok, .go = &go}, y = {.t = t, .tok = tok, .go = &go};
        snprintf(x.path, sizeof x.path, "/users/update/%s/", s3.id);
        snprintf(y.path, sizeof y.path, "/users/update/%s/", t->su.id);
        pthread_t tx, ty;
        pthread_create(&tx, NULL, race_one, &x);
        pthread_create(&ty, NULL, race_one, &y);
        pthread_join(tx, NULL);
        pthread_join(ty, NULL);
        pthread_barrier_destroy(&go);
        int64_t left = iint(t->db,
                            "SELECT COUNT(*) FROM auth_user WHERE role = 'SUPERADMIN' AND "
                            "is_superuser = TRUE AND is_active = TRUE",
                            NULL);
        good += left == 1 &&
                ((x.status == 200 && y.status == 409) || (x.status == 409 && y.status == 200));
        if (left != 1)
            diag("round %d: %d and %d, %lld superusers left", round, x.status, y.status,
                 (long long)left);
    }
    is_int(good, 5, "%s: concurrent mutual demotions: one 200, one 409, one superuser left",
           t->name);
    m8_db_param p = M8_DB_TEXT(a);
    m8_db_exec(t->db, "UPDATE auth_user SET role = 'SUPERADMIN', is_superuser = TRUE WHERE id = ?",
               &p, 1, NULL);
}

void test_admin(tctx *t)
{
    test_create(t);
    test_list(t);
    test_update(t);
    test_delete(t);
    test_race(t);
}
