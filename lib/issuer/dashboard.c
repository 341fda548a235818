/* dashboard.c - the monthly activity counts of /dashboard/users/activity/
 * (dashboard.h, doc/issuer.md#dashboard). */
#include "issuer/dashboard.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/isotime.h"
#include "issuer/service.h"

/* The year and month (1..12) of a day count. */
static void civil_from_days(int64_t z, int64_t *y, int *m)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

void m8_issuer_month_start(int64_t now_s, int back, int64_t *start_s, char ym[8])
{
    int64_t days = now_s >= 0 ? now_s / 86400 : (now_s - 86399) / 86400, y;
    int m;
    civil_from_days(days, &y, &m);
    int64_t idx = y * 12 + (m - 1) - back;
    y = idx >= 0 ? idx / 12 : (idx - 11) / 12;
    m = (int)(idx - y * 12) + 1;
    *start_s = m8_days_from_civil(y, m, 1) * 86400;
    char t[32];
    snprintf(t, sizeof t, "%04d-%02d", (int)(y % 10000), m);
    memcpy(ym, t, 7);
    ym[7] = '\0';
}

/* One count per month: COUNT(DISTINCT key) of the rows of table whose col
 * falls in [bounds[i], bounds[i + 1]), for n months, restricted to the rows
 * whose owner column equals owner when owner is not NULL. */
static int counts(m8_db *db, const char *prefix, const char *table, const char *col,
                  const char *key, const char *owner_col, const char *owner, const int64_t *bounds,
                  int n, int64_t *out)
{
    char sql[3072];
    m8_db_param p[2 * M8_ISSUER_DASHBOARD_MONTHS + 3];
    size_t len = 0, np = 0;
    len += (size_t)snprintf(sql + len, sizeof sql - len, "SELECT ");
    for (int i = 0; i < n && len < sizeof sql; i++) {
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                "%sCOUNT(DISTINCT CASE WHEN %s >= ? AND %s < ? THEN %s END)",
                                i ? ", " : "", col, col, key);
        p[np++] = M8_DB_TIME(bounds[i] * 1000000);
        p[np++] = M8_DB_TIME(bounds[i + 1] * 1000000);
    }
    if (len < sizeof sql)
        len += (size_t)snprintf(sql + len, sizeof sql - len,
                                " FROM {p}_%s WHERE %s >= ? AND %s < ?%s%s%s", table, col, col,
                                owner ? " AND " : "", owner ? owner_col : "", owner ? " = ?" : "");
    if (len >= sizeof sql)
        return M8_ETOOBIG;
    p[np++] = M8_DB_TIME(bounds[0] * 1000000);
    p[np++] = M8_DB_TIME(bounds[n] * 1000000);
    if (owner)
        p[np++] = M8_DB_TEXT(owner);
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, prefix, sql, p, np, &r);
    for (int i = 0; rc == 0 && i < n; i++) {
        if (m8_db_nrows(r) != 1 || m8_db_get_int(r, 0, (size_t)i, &out[i]) != 0)
            rc = M8_EIO;
    }
    m8_db_result_free(r);
    return rc;
}

static int activity(m8_request *req, m8_issuer *iss, int months)
{
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_db_fail(req, M8_EAGAIN, "no database");
    const m8_user *c = m8_req_user(req);
    bool all = c && c->is_superuser && c->role && strcmp(c->role, "superadmin") == 0;
    char me[M8_UUID_STR_LEN + 1] = "";
    if (!all) {
        m8_issuer_uuid_param(db, c && c->id ? c->id : "", me);
        if (!me[0])
            return m8_res_error(req, 403, "Could not validate credentials.");
    }
    int64_t now = (int64_t)time(NULL), bounds[M8_ISSUER_DASHBOARD_MONTHS + 1];
    char ym[M8_ISSUER_DASHBOARD_MONTHS][8], next[8];
    for (int i = 0; i < months; i++)
        m8_issuer_month_start(now, months - 1 - i, &bounds[i], ym[i]);
    m8_issuer_month_start(now, -1, &bounds[months], next);
    int64_t fresh[M8_ISSUER_DASHBOARD_MONTHS], active[M8_ISSUER_DASHBOARD_MONTHS];
    int rc = counts(db, iss->prefix, "user", "created_at", "id", "id", all ? NULL : me, bounds,
                    months, fresh);
    if (rc == 0)
        rc = counts(db, iss->prefix, "client_session", "updated_at", "user_id", "user_id",
                    all ? NULL : me, bounds, months, active);
    if (rc != 0)
        return m8_issuer_db_fail(req, rc, "dashboard counts");
    json_object *list = json_object_new_array();
    for (int i = 0; i < months; i++) {
        json_object *m = json_object_new_object();
        json_object_object_add(m, "month", json_object_new_string(ym[i]));
        json_object_object_add(m, "new_users", json_object_new_int64(fresh[i]));
        json_object_object_add(m, "active_users", json_object_new_int64(active[i]));
        json_object_array_add(list, m);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "range", json_object_new_string("month"));
    json_object_object_add(o, "scope", json_object_new_string(all ? "all" : "self"));
    json_object_object_add(o, "data", list);
    json_object_object_add(o, "count", json_object_new_int(months));
    return m8_res_json(req, 200, o);
}

int m8_issuer_h_dashboard_activity(m8_request *req, void *data)
{
    return activity(req, data, M8_ISSUER_DASHBOARD_MONTHS);
}

int m8_issuer_h_dashboard_current(m8_request *req, void *data)
{
    return activity(req, data, 1);
}
