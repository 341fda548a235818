/* audit.c - the privileged-action audit rows and the /security/ audit-log
 * and purge routes (audit.h, doc/issuer.md#audit-and-security-routes). */
#include "issuer/audit.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "issuer/clientip.h"
#include "issuer/service.h"
#include "issuer/store.h"
#include "issuer/users_body.h"

#define D_RATE "Too many requests. Try again later."
#define AUDIT_COLS                                                                                 \
    "id, created_at, actor_user_id, actor_role, action, table_name, row_pk, target_owner_id"

/* ------------------------------------------------------------ rows */

void m8_issuer_uuid7(char out[M8_UUID_STR_LEN + 1])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    unsigned sub = (unsigned)((ts.tv_nsec / 1000) % 1000); /* 10 bits of microseconds */
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    /* version 7, then 12 bits: the microseconds within the millisecond, so
     * that ids of one process sort in time order at that resolution */
    b[6] = (unsigned char)(0x70 | ((sub >> 6) & 0x0f));
    b[7] = (unsigned char)(((sub & 0x3f) << 2) | (b[7] & 0x03));
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* the RFC 9562 variant */
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[k++] = '-';
        out[k++] = hex[b[i] >> 4];
        out[k++] = hex[b[i] & 15];
    }
    out[k] = '\0';
}

int m8_issuer_audit_row(m8_db *db, const char *prefix, const m8_issuer_audit_entry *e,
                        char id_out[M8_UUID_STR_LEN + 1])
{
    char id[M8_UUID_STR_LEN + 1], idp[M8_UUID_STR_LEN + 1], actor[M8_UUID_STR_LEN + 1];
    char table[M8_ISSUER_TABLE_MAX + 64];
    if (id_out)
        id_out[0] = '\0';
    if (!db || !e || !e->action || !e->table || !e->row_pk)
        return M8_EINVAL;
    if (strcmp(e->action, "add") != 0 && strcmp(e->action, "edit") != 0 &&
        strcmp(e->action, "delete") != 0)
        return M8_EINVAL;
    if (!prefix)
        prefix = M8_ISSUER_PREFIX_DEFAULT;
    int n = snprintf(table, sizeof table, "%s_%s", prefix, e->table);
    if (n <= 0 || n > 128 || strlen(e->row_pk) > 128 || (e->owner && strlen(e->owner) > 128))
        return M8_EINVAL;
    m8_issuer_uuid_param(db, e->actor_id, actor);
    if (!actor[0])
        return M8_EINVAL;
    m8_issuer_uuid7(id);
    m8_issuer_uuid_param(db, id, idp);
    const char *role = e->actor_role ? e->actor_role : "user";
    m8_db_param p[] = {M8_DB_TEXT(idp),       M8_DB_TIME(m8_db_now()),
                       M8_DB_TEXT(actor),     M8_DB_TEXT(role),
                       M8_DB_TEXT(e->action), M8_DB_TEXT(table),
                       M8_DB_TEXT(e->row_pk), e->owner ? M8_DB_TEXT(e->owner) : M8_DB_NULL};
    int rc = m8_issuer_exec(db, prefix,
                            "INSERT INTO {p}_privileged_action_audit (" AUDIT_COLS
                            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            p, M8_ARRAY_LEN(p), NULL);
    if (rc != 0)
        return rc;
    /* "from where": the address is not a column of the table; this line,
     * written inside the transaction, names the row's id (a line whose row
     * is absent belongs to a change that was rolled back) */
    m8_log(M8_LOG_INFO,
           "event=audit audit_id=%s action=%s table=%s row_pk=%s target_owner_id=%s "
           "actor_user_id=%s actor_role=%s client=%s",
           id, e->action, table, e->row_pk, e->owner ? e->owner : "-", e->actor_id, role,
           e->client && *e->client ? e->client : "-");
    if (id_out)
        memcpy(id_out, id, sizeof id);
    return 0;
}

long long m8_issuer_purge_window_seconds(const char *window)
{
    static const struct {
        const char *name;
        long long days;
    } w[] = {{"1w", 7}, {"1m", 30}, {"3m", 90}, {"6m", 180}, {"1y", 365}};
    for (size_t i = 0; window && i < M8_ARRAY_LEN(w); i++) {
        if (strcmp(window, w[i].name) == 0)
            return w[i].days * 86400;
    }
    return -1;
}

/* ------------------------------------------------------------ helpers */

static bool canonical_su(const m8_user *c)
{
    return c && c->is_superuser && c->role && strcmp(c->role, "superadmin") == 0;
}

/* Counts one hit of the caller on the limiter name: 0 to go on, 1 after
 * the answer (429, or 503 when the store is down and the failure mode is
 * closed), as the superuser probe's limiter. */
static int rate(m8_request *req, m8_issuer *iss, const char *name)
{
    const m8_user *c = m8_req_user(req);
    char key[M8_ISSUER_RATE_KEY_MAX + 1];
    int n = snprintf(key, sizeof key, "security:%s:%s", name, c && c->id ? c->id : "");
    m8_db *db = m8_req_db(req);
    int64_t count = 0;
    int rc = n > 0 && (size_t)n < sizeof key ? M8_EAGAIN : M8_EINVAL;
    if (db && rc == M8_EAGAIN)
        rc = m8_issuer_rate_hit(db, iss->prefix, key, (size_t)n, M8_ISSUER_AUDIT_RATE_WINDOW_S,
                                (int64_t)time(NULL), &count, NULL);
    if (rc == M8_EAGAIN) {
        bool open =
            iss->s && iss->s->rate_limit_failure_mode == M8_FAIL_OPEN && !iss->s->auth_strict_mode;
        if (!open) {
            m8_res_error(req, 503, M8_ISSUER_DETAIL_RATE_DOWN);
            return 1;
        }
        m8_log_limited("issuer.rate.skipped", M8_LOG_WARNING,
                       "issuer: rate limit skipped, the database is unavailable (fail_open)");
        return 0;
    }
    if (rc != 0) {
        m8_issuer_db_fail(req, rc, "security rate limit");
        return 1;
    }
    if (count > M8_ISSUER_AUDIT_RATE_LIMIT) {
        m8_log_limited("issuer.security.rate", M8_LOG_WARNING,
                       "event=security.%s.rate_limited user_id=%s", name, c->id);
        m8_res_error(req, 429, D_RATE);
        return 1;
    }
    return 0;
}

/* A stored id (either database encoding) as 8-4-4-4-12; other text as it is. */
static json_object *id_json(const m8_db_result *r, size_t row, size_t col)
{
    size_t n = 0;
    const char *v = m8_db_get_text(r, row, col, &n);
    char h[M8_UUID_STR_LEN + 1], out[M8_UUID_STR_LEN + 1];
    if (!v)
        return NULL;
    if (n == 32) {
        snprintf(h, sizeof h, "%.8s-%.4s-%.4s-%.4s-%.12s", v, v + 8, v + 12, v + 16, v + 20);
        if (m8_uuid_canon(h, M8_UUID_STR_LEN, out))
            return json_object_new_string(out);
    } else if (m8_uuid_canon(v, n, out)) {
        return json_object_new_string(out);
    }
    return json_object_new_string_len(v, (int)n);
}

static json_object *text_json(const m8_db_result *r, size_t row, size_t col)
{
    size_t n = 0;
    const char *v = m8_db_get_text(r, row, col, &n);
    return v ? json_object_new_string_len(v, (int)n) : NULL;
}

static json_object *row_json(const m8_db_result *r, size_t i)
{
    json_object *o = json_object_new_object();
    int64_t us = 0;
    char t[40];
    json_object *created = NULL;
    if (m8_db_get_time(r, i, 1, &us) == 0 && m8_db_format_time(us, t, sizeof t) == 0)
        created = json_object_new_string(t);
    json_object_object_add(o, "id", id_json(r, i, 0));
    json_object_object_add(o, "created_at", created);
    json_object_object_add(o, "actor_user_id", id_json(r, i, 2));
    json_object_object_add(o, "actor_role", text_json(r, i, 3));
    json_object_object_add(o, "action", text_json(r, i, 4));
    json_object_object_add(o, "table_name", text_json(r, i, 5));
    json_object_object_add(o, "row_pk", text_json(r, i, 6));
    json_object_object_add(o, "target_owner_id", text_json(r, i, 7));
    return o;
}

/* An upper bound on an integer query parameter: a FastAPI less_than_equal
 * error added to errs when the value (already parsed into v) is above hi. */
static void query_max(m8_request *req, json_object *errs, const char *name, long long v,
                      long long hi)
{
    const char *raw = m8_req_query(req, name);
    if (!raw || v <= hi)
        return;
    char msg[96];
    snprintf(msg, sizeof msg, "Input should be less than or equal to %lld", hi);
    json_object *e = json_object_new_object(), *loc = json_object_new_array(),
                *ctx = json_object_new_object();
    json_object_array_add(loc, json_object_new_string("query"));
    json_object_array_add(loc, json_object_new_string(name));
    json_object_object_add(ctx, "le", json_object_new_int64(hi));
    json_object_object_add(e, "type", json_object_new_string("less_than_equal"));
    json_object_object_add(e, "loc", loc);
    json_object_object_add(e, "msg", json_object_new_string(msg));
    json_object_object_add(e, "input", json_object_new_string(raw));
    json_object_object_add(e, "ctx", ctx);
    json_object_array_add(errs, e);
}

/* ------------------------------------------------------------ audit-log */

int m8_issuer_h_audit_log(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    json_object *errs = json_object_new_array();
    long long skip = 0, limit = 100;
    if (m8_ub_query_int(req, errs, "skip", 0, 0, &skip) == 0)
        query_max(req, errs, "skip", skip, M8_ISSUER_AUDIT_SKIP_MAX);
    if (m8_ub_query_int(req, errs, "limit", 100, 1, &limit) == 0)
        query_max(req, errs, "limit", limit, M8_ISSUER_AUDIT_LIMIT_MAX);
    if (json_object_array_length(errs) > 0)
        return m8_ub_unprocessable(req, errs);
    json_object_put(errs);
    if (rate(req, iss, "audit_log"))
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_db_fail(req, M8_EAGAIN, "no database");
    const m8_user *c = m8_req_user(req);
    bool all = canonical_su(c);
    char actor[M8_UUID_STR_LEN + 1] = "";
    if (!all) { /* other admins see the rows they authored */
        m8_issuer_uuid_param(db, c && c->id ? c->id : "", actor);
        if (!actor[0])
            return m8_res_error(req, 403, "Could not validate credentials.");
    }
    m8_db_param p[] = {M8_DB_TEXT(actor), M8_DB_INT(limit), M8_DB_INT(skip)};
    const m8_db_param *pp = all ? p + 1 : p;
    m8_db_result *cnt = NULL, *rows = NULL;
    int64_t count = 0;
    int rc = m8_issuer_exec(db, iss->prefix,
                            all ? "SELECT COUNT(*) FROM {p}_privileged_action_audit"
                                : "SELECT COUNT(*) FROM {p}_privileged_action_audit WHERE "
                                  "actor_user_id = ?",
                            p, all ? 0 : 1, &cnt);
    if (rc == 0 && m8_db_get_int(cnt, 0, 0, &count) != 0)
        rc = M8_EIO;
    m8_db_result_free(cnt);
    if (rc == 0) /* newest first; the time-ordered ids break ties of one second */
        rc = m8_issuer_exec(db, iss->prefix,
                            all ? "SELECT " AUDIT_COLS " FROM {p}_privileged_action_audit ORDER BY "
                                  "created_at DESC, id DESC LIMIT ? OFFSET ?"
                                : "SELECT " AUDIT_COLS " FROM {p}_privileged_action_audit WHERE "
                                  "actor_user_id = ? ORDER BY created_at DESC, id DESC LIMIT ? "
                                  "OFFSET ?",
                            pp, all ? 2 : 3, &rows);
    if (rc != 0) {
        m8_db_result_free(rows);
        return m8_issuer_db_fail(req, rc, "reading the audit log");
    }
    json_object *list = json_object_new_array();
    for (size_t i = 0; i < m8_db_nrows(rows); i++)
        json_object_array_add(list, row_json(rows, i));
    m8_db_result_free(rows);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "data", list);
    json_object_object_add(o, "count", json_object_new_int64(count));
    return m8_res_json(req, 200, o);
}

/* ------------------------------------------------------------ purges */

typedef struct purge_kind {
    const char *limiter; /* rate-limit name */
    const char *table;   /* without the prefix */
    const char *what;    /* for logs */
    int nparams;         /* cutoff parameters before the batch size */
    const char *pg, *my; /* one batch: cutoff parameter(s), then the batch size */
} purge_kind;

static const purge_kind g_audit_purge = {
    "audit_purge",
    "privileged_action_audit",
    "audit rows",
    1,
    "DELETE FROM {p}_privileged_action_audit WHERE id IN (SELECT id FROM "
    "{p}_privileged_action_audit WHERE created_at < ? ORDER BY created_at LIMIT ?)",
    "DELETE FROM {p}_privileged_action_audit WHERE created_at < ? ORDER BY created_at LIMIT ?"};

/* dead keys: revoked (updated_at is the revocation time) or expired before
 * the cutoff; their audiences and rate limits go with them (ON DELETE CASCADE) */
static const purge_kind g_key_purge = {
    "api_key_purge",
    "api_key",
    "API keys",
    2,
    "DELETE FROM {p}_api_key WHERE id IN (SELECT id FROM {p}_api_key WHERE (revoked = TRUE "
    "AND updated_at < ?) OR expires_at < ? LIMIT ?)",
    "DELETE FROM {p}_api_key WHERE (revoked = TRUE AND updated_at < ?) OR expires_at < ? LIMIT ?"};

/* The body {"window": "1w"|"1m"|"3m"|"6m"|"1y"}: the window, or NULL after
 * the 422. */
static const char *purge_body(m8_request *req)
{
    static const char *const windows[] = {"1w", "1m", "3m", "6m", "1y"};
    m8_ub b;
    const char *w = NULL;
    if (m8_ub_begin(req, &b) != 0)
        return NULL;
    json_object *v;
    if (!json_object_object_get_ex(b.body, "window", &v))
        m8_ub_str(&b, "window", 0, 2, false, true, &w); /* the "missing" error */
    else
        m8_ub_enum(&b, "window", windows, M8_ARRAY_LEN(windows), false, &w);
    if (m8_ub_end(&b) != 0)
        return NULL;
    return w;
}

static int delete_batch(m8_db *db, const char *prefix, const purge_kind *k, int64_t cutoff_us,
                        long long batch, int64_t *removed)
{
    m8_db_param p[] = {M8_DB_TIME(cutoff_us), M8_DB_TIME(cutoff_us), M8_DB_INT(batch)};
    p[k->nparams] = M8_DB_INT(batch);
    m8_db_result *r = NULL;
    bool pg = m8_db_get_dialect(db) == M8_DB_DIALECT_POSTGRES;
    int rc = m8_issuer_exec(db, prefix, pg ? k->pg : k->my, p, (size_t)k->nparams + 1, &r);
    *removed = rc == 0 && m8_db_affected(r) > 0 ? m8_db_affected(r) : 0;
    m8_db_result_free(r);
    return rc;
}

/* The seconds a purge may spend on its batches (audit.h). */
static long long purge_budget_s(void)
{
    long long b = M8_ISSUER_PURGE_BUDGET_S;
    const char *e = getenv("M8_ISSUER_PURGE_SECONDS");
    if (e && m8_parse_ll(e, 0, 3600, &b) != 0)
        b = M8_ISSUER_PURGE_BUDGET_S;
    return b;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int purge(m8_request *req, m8_issuer *iss, const purge_kind *k, long long min_retention,
                 long long batch)
{
    const char *window = purge_body(req);
    if (!window)
        return 0;
    long long secs = m8_issuer_purge_window_seconds(window);
    if (secs < min_retention) {
        char d[160];
        snprintf(d, sizeof d, "The window %s is shorter than the minimum retention of %lld seconds",
                 window, min_retention);
        return m8_res_error(req, 400, d);
    }
    if (rate(req, iss, k->limiter))
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_db_fail(req, M8_EAGAIN, "no database");
    const m8_user *c = m8_req_user(req);
    char client[M8_ISSUER_CLIENT_IP_MAX], row_pk[64], when[40];
    m8_issuer_client_ip(req, iss->s, client);
    int64_t cutoff = m8_db_now() - (int64_t)secs * 1000000;
    if (m8_db_format_time(cutoff, when, sizeof when) != 0)
        return m8_issuer_db_fail(req, M8_EINVAL, "purge cutoff");
    snprintf(row_pk, sizeof row_pk, "created_at<%s", when);
    if (k == &g_key_purge)
        snprintf(row_pk, sizeof row_pk, "dead<%s", when);
    m8_issuer_audit_entry e = {.actor_id = c ? c->id : NULL,
                               .actor_role = c ? c->role : NULL,
                               .action = "delete",
                               .table = k->table,
                               .row_pk = row_pk,
                               .client = client};
    /* the audit row commits with the first batch; the later batches each
     * commit alone, so that no lock is held over the whole table */
    int64_t removed = 0, n = 0, t0 = mono_ns(), budget_ns = purge_budget_s() * 1000000000;
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = m8_issuer_audit_row(db, iss->prefix, &e, NULL);
    if (rc == 0)
        rc = delete_batch(db, iss->prefix, k, cutoff, batch, &n);
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0) {
        if (m8_db_in_transaction(db))
            m8_db_rollback(db);
        return m8_issuer_db_fail(req, rc, "purging");
    }
    removed = n;
    bool late = false;
    for (long i = 1; rc == 0 && n == batch && i < M8_ISSUER_PURGE_MAX_BATCHES; i++) {
        if ((late = mono_ns() - t0 >= budget_ns))
            break;
        rc = delete_batch(db, iss->prefix, k, cutoff, batch, &n);
        removed += rc == 0 ? n : 0;
    }
    m8_log(M8_LOG_INFO, "event=security.purge what=%s window=%s removed=%lld by=%s%s", k->what,
           window, (long long)removed, c ? c->id : "-",
           rc != 0      ? " (stopped by a database error)"
           : late       ? " (stopped at the time budget; more may remain)"
           : n == batch ? " (more remain)"
                        : "");
    if (rc != 0)
        return m8_issuer_db_fail(req, rc, "purging");
    json_object *o = json_object_new_object();
    json_object_object_add(o, "window", json_object_new_string(window));
    json_object_object_add(o, "removed", json_object_new_int64(removed));
    return m8_res_json(req, 200, o);
}

int m8_issuer_h_audit_purge(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    return purge(req, iss, &g_audit_purge, iss->s ? iss->s->audit_purge_min_retention_seconds : 0,
                 iss->s && iss->s->audit_purge_batch_size > 0 ? iss->s->audit_purge_batch_size
                                                              : 500);
}

int m8_issuer_h_apikeys_purge(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    return purge(req, iss, &g_key_purge, iss->s ? iss->s->api_key_purge_min_retention_seconds : 0,
                 iss->s && iss->s->api_key_purge_batch_size > 0 ? iss->s->api_key_purge_batch_size
                                                                : 500);
}
