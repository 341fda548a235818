/* pool.c - the handle pool an app owns (db.h): one handle per request
 * thread (a thread-specific key; the connection opens at the first
 * statement), a rollback of whatever transaction a handler leaves open, the
 * "database" health check on a handle of its own, dispose at shutdown; and
 * the error-to-response mapping.  The app (lib/app/database.c) holds the
 * pool and gives it to these functions; nothing here knows the app. */
#include "db/db.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

typedef struct m8_db_pool db_pool;

/* One request thread's handle, listed in its pool. */
typedef struct db_slot {
    db_pool *pool;
    m8_db *db;
    struct db_slot *prev, *next;
} db_slot;

struct m8_db_pool {
    m8_db_use use;
    m8_db_timeouts t;
    const m8_settings *s; /* the app's, valid while the app lives */
    bool open;            /* booted with a database */
    pthread_key_t key;
    pthread_mutex_t mu; /* slots, refs */
    db_slot *slots;
    int refs; /* the app's, plus one per health check running */
    pthread_mutex_t health_mu;
    m8_db *health_db;
};

static void pool_unref(db_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int left = --p->refs;
    pthread_mutex_unlock(&p->mu);
    if (left > 0)
        return;
    m8_db_close(p->health_db);
    pthread_mutex_destroy(&p->health_mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

bool m8_db_use_valid(m8_db_use use, double connect_timeout_s, double io_timeout_s)
{
    return !((use != M8_DB_OPTIONAL && use != M8_DB_REQUIRED) || !(connect_timeout_s >= 0) ||
             !(io_timeout_s >= 0) || connect_timeout_s > M8_DB_TIMEOUT_MAX ||
             io_timeout_s > M8_DB_TIMEOUT_MAX);
}

m8_db_pool *m8_db_pool_new(void)
{
    db_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->health_mu, NULL);
    p->refs = 1;
    return p;
}

void m8_db_pool_set(m8_db_pool *p, m8_db_use use, double connect_timeout_s, double io_timeout_s)
{
    p->use = use;
    p->t.connect_s = connect_timeout_s;
    p->t.io_s = io_timeout_s;
}

bool m8_db_pool_required(const m8_db_pool *p)
{
    return p && p->use == M8_DB_REQUIRED;
}

/* A thread ends: its handle closes with it. */
static void slot_end(void *arg)
{
    db_slot *sl = arg;
    db_pool *p = sl->pool;
    pthread_mutex_lock(&p->mu);
    if (sl->prev)
        sl->prev->next = sl->next;
    else
        p->slots = sl->next;
    if (sl->next)
        sl->next->prev = sl->prev;
    pthread_mutex_unlock(&p->mu);
    m8_db_close(sl->db);
    free(sl);
}

static m8_health_status health_check(m8_health_report *report, void *data)
{
    db_pool *p = data;
    pthread_mutex_lock(&p->mu);
    p->refs++;
    pthread_mutex_unlock(&p->mu);
    m8_health_status st;
    if (pthread_mutex_trylock(&p->health_mu) != 0) {
        m8_health_set_error(report, "the previous check is still waiting for the database");
        st = M8_HEALTH_FAIL;
    } else {
        char err[512] = "";
        int rc = m8_db_ping(p->health_db, err, sizeof err);
        json_object *meta = json_object_new_object();
        json_object_object_add(
            meta, "backend",
            json_object_new_string(
                m8_db_get_dialect(p->health_db) == M8_DB_DIALECT_POSTGRES ? "postgres" : "mysql"));
        m8_health_set_meta(report, meta);
        pthread_mutex_unlock(&p->health_mu);
        if (rc == 0) {
            st = M8_HEALTH_OK;
        } else {
            m8_health_set_error(report, "%s", err);
            st = M8_HEALTH_FAIL;
        }
    }
    pool_unref(p);
    return st;
}

/* A plain identifier, as m8_db_table wants TABLES_PREFIX. */
static bool identifier(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9') || strlen(s) > 48)
        return false;
    for (; *s; s++) {
        if (!(*s == '_' || (*s >= '0' && *s <= '9') || ((*s | 32) >= 'a' && (*s | 32) <= 'z')))
            return false;
    }
    return true;
}

int m8_db_pool_boot(m8_db_pool *p, const m8_settings *s, m8_db_pool_attach_fn attach, void *ctx,
                    char *err, size_t errlen)
{
    if (!p || p->open)
        return 0;
    if (!m8_db_configured(s)) {
        m8_log(M8_LOG_INFO, "database: none configured (SELECTED_DB and DB_HOST unset)");
        return 0;
    }
    if (!identifier(s->tables_prefix)) {
        snprintf(err, errlen,
                 "TABLES_PREFIX must be a plain SQL identifier (letters, digits, '_', not "
                 "starting with a digit, at most 48 bytes) to name the service's tables");
        return M8_ECONFIG;
    }
    p->health_db = m8_db_open(s, &p->t, err, errlen);
    if (!p->health_db)
        return M8_ECONFIG;
    if (pthread_key_create(&p->key, slot_end) != 0) {
        snprintf(err, errlen, "database: no thread-specific key left");
        m8_db_close(p->health_db);
        p->health_db = NULL;
        return M8_ENOMEM;
    }
    int rc = attach(ctx, health_check, p);
    if (rc != 0) {
        pthread_key_delete(p->key);
        m8_db_close(p->health_db);
        p->health_db = NULL;
        snprintf(err, errlen, "database: cannot add the health check");
        return rc;
    }
    p->s = s;
    p->open = true;
    m8_log(M8_LOG_INFO,
           "database: %s at %s:%lld/%s as %s (a connection per thread, opened on "
           "first use)",
           m8_db_kind_name(s->selected_db), s->db_host, s->db_port, s->db_database, s->db_user);
    return 0;
}

m8_db *m8_db_pool_handle(m8_db_pool *p)
{
    if (!p || !p->open)
        return NULL;
    db_slot *sl = pthread_getspecific(p->key);
    if (sl)
        return sl->db;
    char err[512] = "";
    sl = calloc(1, sizeof *sl);
    m8_db *db = sl ? m8_db_open(p->s, &p->t, err, sizeof err) : NULL;
    if (!db) {
        free(sl);
        m8_log(M8_LOG_ERROR, "database: cannot make a handle: %s", err[0] ? err : "out of memory");
        return NULL;
    }
    sl->pool = p;
    sl->db = db;
    pthread_mutex_lock(&p->mu);
    sl->next = p->slots;
    if (p->slots)
        p->slots->prev = sl;
    p->slots = sl;
    pthread_mutex_unlock(&p->mu);
    if (pthread_setspecific(p->key, sl) != 0) {
        slot_end(sl);
        return NULL;
    }
    return db;
}

void m8_db_pool_after_handler(m8_db_pool *p, bool failed)
{
    if (!p || !p->open)
        return;
    db_slot *sl = pthread_getspecific(p->key);
    if (!sl || !m8_db_in_transaction(sl->db))
        return;
    if (!failed)
        m8_log(M8_LOG_WARNING, "database: a handler left a transaction open: rolled back");
    if (m8_db_rollback(sl->db) != 0)
        m8_log(M8_LOG_WARNING, "database: rollback failed: %s", m8_db_last_error(sl->db)->message);
}

void m8_db_pool_free(m8_db_pool *p)
{
    if (!p)
        return;
    if (p->open) {
        /* Every request thread has ended: close what is left (this
         * thread's handle, those of threads whose destructor did not run). */
        pthread_key_delete(p->key);
        pthread_mutex_lock(&p->mu);
        db_slot *sl = p->slots;
        p->slots = NULL;
        pthread_mutex_unlock(&p->mu);
        while (sl) {
            db_slot *next = sl->next;
            m8_db_close(sl->db);
            free(sl);
            sl = next;
        }
        m8_log(M8_LOG_DEBUG, "database: disposed");
    }
    pool_unref(p); /* a health check still running keeps the rest */
}

/* ------------------------------------------------------------ responses */

int m8_db_respond(m8_request *req, m8_db *db, int rc)
{
    if (!req)
        return -1;
    if (!db) {
        m8_res_error(req, 503, "Database not configured.");
        return 0;
    }
    const m8_db_error *e = m8_db_last_error(db);
    if (rc == M8_EAGAIN || e->kind == M8_DB_ERR_UNAVAILABLE) {
        m8_req_fail(req, "database unavailable: %s", e->message);
        m8_res_error(req, 503, "Database unavailable.");
        m8_res_header(req, "Retry-After", "1");
        return 0;
    }
    if (rc == M8_EIO && (e->kind == M8_DB_ERR_UNIQUE || e->kind == M8_DB_ERR_FOREIGN_KEY)) {
        /* The reference's ResponseError items (auth-sdk-m8
         * parse_integrity_error): table, field_name, error. */
        char msg[256];
        if (e->kind == M8_DB_ERR_UNIQUE)
            snprintf(msg, sizeof msg, "Duplicate entry already exists.");
        else
            snprintf(msg, sizeof msg, "Invalid foreign key reference in '%s'.", e->field);
        json_object *item = json_object_new_object();
        json_object_object_add(item, "table",
                               e->kind == M8_DB_ERR_FOREIGN_KEY && e->table[0]
                                   ? json_object_new_string(e->table)
                                   : NULL);
        json_object_object_add(item, "field_name",
                               e->field[0] ? json_object_new_string(e->field) : NULL);
        json_object_object_add(item, "error", json_object_new_string(msg));
        json_object *list = json_object_new_array();
        json_object_array_add(list, item);
        json_object *body = json_object_new_object();
        json_object_object_add(body, "detail", list);
        m8_req_fail(req, "database: %s [%s]", e->message, e->code);
        return m8_res_json(req, 409, body) == 0 ? 0 : -1;
    }
    return m8_req_fail(req, "database: %s%s%s%s", e->message[0] ? e->message : m8_strerror(rc),
                       e->code[0] ? " [" : "", e->code, e->code[0] ? "]" : "");
}
