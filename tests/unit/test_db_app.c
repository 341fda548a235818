/* test_db_app.c - the application's database hook: an app without a
 * database, and one with a database and its sessions. */

#include "test_db.h"

/* ------------------------------------------------------------ in an app */

static int h_insert(m8_request *req, void *data)
{
    const char *mode = data;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_db_respond(req, NULL, 0);
    bool tx = strcmp(mode, "auto") != 0;
    int rc = tx ? m8_db_begin(db) : 0;
    m8_db_param p = M8_DB_TEXT(m8_req_path_param(req, "v"));
    if (rc == 0)
        rc = m8_db_exec(db, "INSERT INTO t_app (v) VALUES (?)", &p, 1, NULL);
    if (rc != 0)
        return m8_db_respond(req, db, rc);
    if (strcmp(mode, "fail") == 0)
        return m8_req_fail(req, "failing after the insert");
    return m8_res_json(req, 200, json_object_new_object());
}

static const m8_route app_routes[] = {
    {"POST", "/auto/{v}", M8_PUBLIC, h_insert, "auto", NULL, NULL, 0},
    {"POST", "/fail/{v}", M8_PUBLIC, h_insert, "fail", NULL, NULL, 0},
    {"POST", "/open/{v}", M8_PUBLIC, h_insert, "open", NULL, NULL, 0},
};

static int g_on_db_runs;
static int on_db(m8_app *app, void *data)
{
    (void)data;
    g_on_db_runs++;
    m8_db *db = m8_app_db(app);
    return db ? m8_db_exec(db, "CREATE TABLE IF NOT EXISTS t_app (v VARCHAR(40))", NULL, 0, NULL)
              : -1;
}

/* An app with the database routes, booted from env (NULL on failure, the
 * exit status in *rc). */
static m8_app *db_app(char **env, m8_db_use use, int *rc)
{
    m8_app *app = m8_app_new("db-test", "1.0.0");
    m8_app_add_routes(app, app_routes, M8_ARRAY_LEN(app_routes));
    m8_app_use_database(app, use, 3, 5);
    m8_app_on_database(app, on_db, NULL);
    m8_app_health_options(app, 5, M8_HEALTH_LENIENT, 0, 1);
    m8_settings_source src = {
        .env = env, .env_file = "/dev/null", .cwd = "/", .uses_database = m8_db_app_required(app)};
    *rc = m8_app_boot(app, &src);
    if (*rc == 0)
        *rc = m8_app_start(app);
    if (*rc) {
        m8_app_free(app);
        return NULL;
    }
    return app;
}

static int app_req(m8_app *app, const char *method, const char *uri, char *body, size_t blen)
{
    m8_pair p[] = {{"REQUEST_METHOD", method},
                   {"REQUEST_URI", uri},
                   {"QUERY_STRING", ""},
                   {"HTTP_HOST", "localhost"}};
    m8_buf out;
    m8_buf_init(&out, 1 << 20);
    m8_app_handle_params(app, p, M8_ARRAY_LEN(p), NULL, 0, &out);
    int status = 0;
    if (out.data && strncmp(out.data, "Status: ", 8) == 0)
        status = (int)strtol(out.data + 8, NULL, 10);
    const char *sep = out.data ? strstr(out.data, "\r\n\r\n") : NULL;
    if (body)
        snprintf(body, blen, "%s", sep ? sep + 4 : "");
    m8_buf_free(&out);
    return status;
}

void test_app_without(void)
{
    int rc;
    m8_app *app = db_app(m8t_env0(), M8_DB_OPTIONAL, &rc);
    ok(app != NULL, "app: M8_DB_OPTIONAL without DB_* boots");
    g_on_db_runs = 0;
    ok(app && m8_app_db(app) == NULL, "app: ... with no database handle");
    is_int(g_on_db_runs, 0, "app: ... and the m8_app_on_database hook does not run");
    char body[512];
    is_int(app_req(app, "POST", "/api/auto/x", body, sizeof body), 503,
           "app: a handler without a database answers 503");
    is_str(body, "{\"detail\":\"Database not configured.\"}", "app: ... Database not configured.");
    app_req(app, "GET", "/api/health/", body, sizeof body);
    ok(strstr(body, "database") == NULL, "app: ... and no database health check");
    m8_app_free(app);

    app = db_app(m8t_env0(), M8_DB_REQUIRED, &rc);
    ok(app == NULL && rc != 0, "app: M8_DB_REQUIRED without DB_* does not boot (%d)", rc);
    app = db_app(m8t_env("SELECTED_DB=Postgres", "DB_HOST=127.0.0.1", "DB_PORT=5432",
                         "DB_DATABASE=" APP_DB, "DB_USER=" APP_USER, "DB_PASSWORD=" PASSWORD,
                         "TABLES_PREFIX=no-good", NULL),
                 M8_DB_OPTIONAL, &rc);
    ok(app == NULL && rc == 78, "app: a TABLES_PREFIX that is no identifier is a config error");
    is_int(m8_app_use_database(NULL, M8_DB_OPTIONAL, 0, 0), M8_EINVAL, "app: NULL app refused");
    m8_app *a2 = m8_app_new("x", "1");
    is_int(m8_app_use_database(a2, (m8_db_use)7, 0, 0), M8_EINVAL, "app: an unknown use refused");
    is_int(m8_app_use_database(a2, M8_DB_OPTIONAL, -1, 0), M8_EINVAL,
           "app: a negative timeout refused");
    is_int(m8_app_on_database(a2, on_db, NULL), M8_ESTATE,
           "app: m8_app_on_database before m8_app_use_database is M8_ESTATE");
    m8_app_free(a2);
}

static int64_t count_rows(m8_db *db, const char *v)
{
    m8_db_param p = M8_DB_TEXT(v);
    m8_db_result *res = NULL;
    int64_t n = -1;
    if (m8_db_exec(db, "SELECT COUNT(*) FROM t_app WHERE v = ?", &p, 1, &res) == 0)
        m8_db_get_int(res, 0, 0, &n);
    m8_db_result_free(res);
    return n;
}

static int64_t sessions(m8_db *admin, bool pg)
{
    m8_db_result *res = NULL;
    int64_t n = -1;
    m8_db_param u = M8_DB_TEXT(APP_USER);
    if (m8_db_exec(admin,
                   pg ? "SELECT COUNT(*) FROM pg_stat_activity WHERE usename = ?"
                      : "SELECT COUNT(*) FROM information_schema.processlist WHERE user = ?",
                   &u, 1, &res) == 0)
        m8_db_get_int(res, 0, 0, &n);
    m8_db_result_free(res);
    return n;
}

void test_app_with(m8_db_kind kind, m8_db *admin)
{
    const char *k = m8_db_kind_name(kind);
    bool pg = kind == M8_DB_POSTGRES;
    char port[32];
    snprintf(port, sizeof port, "DB_PORT=%u", g_port[pg]);
    int rc;
    g_on_db_runs = 0;
    usleep(200000); /* sessions closed by earlier tests are gone */
    int64_t base = sessions(admin, pg);
    m8_app *app =
        db_app(m8t_env(pg ? "SELECTED_DB=Postgres" : "SELECTED_DB=Mysql", "DB_HOST=127.0.0.1", port,
                       "DB_DATABASE=" APP_DB, "DB_USER=" APP_USER, "DB_PASSWORD=" PASSWORD, NULL),
               M8_DB_REQUIRED, &rc);
    ok(app != NULL, "%s app: boots with the database (%d)", k, rc);
    if (!app)
        return;
    is_int(g_on_db_runs, 1, "%s app: the m8_app_on_database hook ran at startup", k);
    char body[1024];
    is_int(app_req(app, "POST", "/api/auto/a1", body, sizeof body), 200, "%s app: autocommit", k);
    is_int(count_rows(admin, "a1"), 1, "%s app: ... the row is there", k);
    is_int(app_req(app, "POST", "/api/fail/f1", body, sizeof body), 500,
           "%s app: a handler that fails inside a transaction: 500", k);
    is_int(count_rows(admin, "f1"), 0, "%s app: ... its insert was rolled back", k);
    is_int(app_req(app, "POST", "/api/open/o1", body, sizeof body), 200,
           "%s app: a handler that leaves its transaction open: 200", k);
    is_int(count_rows(admin, "o1"), 0, "%s app: ... its insert was rolled back too", k);
    ok(!m8_db_in_transaction(m8_app_db(app)), "%s app: ... and the thread's handle is idle", k);
    is_int(app_req(app, "POST", "/api/auto/a2", body, sizeof body), 200,
           "%s app: the same connection serves the next request", k);
    app_req(app, "GET", "/api/health/", body, sizeof body);
    like(body, "{\"name\":\"database\",\"status\":\"ok\",\"latency_ms\":",
         "%s app: the database health check is ok, with its latency", k);
    like(body, pg ? "\"backend\":\"postgres\"" : "\"backend\":\"mysql\"", "%s app: ... and backend",
         k);
    is_int(sessions(admin, pg), base + 2,
           "%s app: two sessions: the thread's (startup and requests) and the check's", k);
    m8_app_free(app);
    usleep(200000);
    is_int(sessions(admin, pg), base, "%s app: m8_app_free closes both (dispose)", k);
}
