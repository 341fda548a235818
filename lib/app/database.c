/* database.c - the app's side of its database (fcgim8.h "database"): the
 * app owns an m8_db_pool (db.h) and hands it to the pool's functions; the
 * pool knows nothing of the app. */
#include "app/app.h"

#include "db/db.h"

int m8_app_use_database(m8_app *app, m8_db_use use, double connect_timeout_s, double io_timeout_s)
{
    if (!app || !m8_db_use_valid(use, connect_timeout_s, io_timeout_s))
        return M8_EINVAL;
    if (app->booted)
        return M8_ESTATE;
    if (!app->db && !(app->db = m8_db_pool_new()))
        return M8_ENOMEM;
    m8_db_pool_set(app->db, use, connect_timeout_s, io_timeout_s);
    return 0;
}

int m8_app_on_database(m8_app *app, m8_startup_fn fn, void *data)
{
    if (!app || !fn)
        return M8_EINVAL;
    if (!app->db)
        return M8_ESTATE; /* m8_app_use_database first */
    if (app->booted)
        return M8_ESTATE;
    app->db_on_open = fn;
    app->db_on_open_data = data;
    return 0;
}

bool m8_db_app_required(const m8_app *app)
{
    return app && m8_db_pool_required(app->db);
}

/* The pool opened: its health check, and the service's on-open hook as a
 * startup hook. */
static int attach(void *ctx, m8_health_fn check, void *check_data)
{
    m8_app *app = ctx;
    int rc = m8_health_add(&app->health, "database", check, check_data);
    if (rc == 0 && app->db_on_open)
        rc = m8_app_on_startup(app, app->db_on_open, app->db_on_open_data);
    return rc;
}

int m8_db_app_boot(m8_app *app, char *err, size_t errlen)
{
    return m8_db_pool_boot(app->db, app->settings, attach, app, err, errlen);
}

m8_db *m8_app_db(m8_app *app)
{
    return app ? m8_db_pool_handle(app->db) : NULL;
}

m8_db *m8_req_db(m8_request *req)
{
    return m8_app_db(m8_req_app(req));
}

void m8_db_app_after_handler(m8_app *app, bool failed)
{
    m8_db_pool_after_handler(app->db, failed);
}

void m8_db_app_free(m8_app *app)
{
    m8_db_pool_free(app->db);
    app->db = NULL;
}
