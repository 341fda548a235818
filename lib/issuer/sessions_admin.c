/* sessions_admin.c - the issuer's /sessions/ routes and the superuser probe
 * (sessions_admin.h, doc/issuer.md#sessions-and-security-routes). */
#include "issuer/sessions_admin.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/isotime.h"
#include "core/log.h"
#include "issuer/audit.h"
#include "issuer/clientip.h"
#include "issuer/oidc.h"
#include "issuer/oidc_store.h"
#include "issuer/revoke.h"
#include "issuer/service.h"
#include "issuer/sessions.h"
#include "issuer/store.h"
#include "issuer/users_body.h"

#define D_SESSION_NOT_FOUND "Session not found"
#define D_NO_CURRENT "The user session unavelable" /* sic: fa-auth-m8's text */
#define D_PROBE_RATE "Too many requests. Try again later."
#define D_NOT_GOOGLE "Only a Google session holds Google tokens"

/* The columns of ClientSessionPublic, in its member order (row_json). */
#define COLS                                                                                       \
    "created_at, updated_at, id, provider, jwt_jti, jwt_expires_at, refresh_expires_at, "          \
    "revoked, external_token_expires_at"

/* The id as m8_issuer_id_text writes it; a value that is no UUID as stored. */
static json_object *id_json(const m8_db_result *r, size_t row, size_t col)
{
    size_t n = 0;
    const char *v = m8_db_get_text(r, row, col, &n);
    char out[M8_UUID_STR_LEN + 1];
    if (!v)
        return NULL;
    if (m8_issuer_id_text(r, row, col, out))
        return json_object_new_string(out);
    return json_object_new_string_len(v, (int)n);
}

/* ClientSessionPublic of row i of a SELECT COLS (doc/issuer.md#sessions-and-security-routes):
 * never the refresh hash nor the Google tokens. */
static json_object *row_json(const m8_db_result *r, size_t i)
{
    json_object *o = json_object_new_object();
    size_t n = 0;
    const char *prov = m8_db_get_text(r, i, 3, &n);
    char wire[16] = "";
    for (size_t k = 0; prov && k < n && k + 1 < sizeof wire; k++)
        wire[k] = (char)(prov[k] >= 'A' && prov[k] <= 'Z' ? prov[k] + 32 : prov[k]);
    const char *jti = m8_db_get_text(r, i, 4, &n);
    int revoked = 0;
    m8_db_get_bool(r, i, 7, &revoked);
    json_object_object_add(o, "created_at", m8_issuer_time_json(r, i, 0));
    json_object_object_add(o, "updated_at", m8_issuer_time_json(r, i, 1));
    json_object_object_add(o, "id", id_json(r, i, 2));
    json_object_object_add(o, "provider", json_object_new_string(wire));
    json_object_object_add(o, "jwt_jti", jti ? json_object_new_string_len(jti, (int)n) : NULL);
    json_object_object_add(o, "jwt_expires_at", m8_issuer_time_json(r, i, 5));
    json_object_object_add(o, "refresh_expires_at", m8_issuer_time_json(r, i, 6));
    json_object_object_add(o, "revoked", json_object_new_boolean(revoked != 0));
    json_object_object_add(o, "external_token_expires_at", m8_issuer_time_json(r, i, 8));
    return o;
}

static int message(m8_request *req, const char *text)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "message", json_object_new_string(text));
    return m8_res_json(req, 200, o);
}

/* Answers the first row of a SELECT COLS ... with one parameter, or
 * not_found_status with detail when there is none. */
static int answer_one(m8_request *req, m8_issuer *iss, const char *tmpl, const char *param,
                      int not_found_status, const char *detail)
{
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_db_param p = M8_DB_TEXT(param);
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, iss->prefix, tmpl, &p, 1, &r);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "reading a session");
    if (m8_db_nrows(r) == 0) {
        m8_db_result_free(r);
        return m8_res_error(req, not_found_status, detail);
    }
    json_object *o = row_json(r, 0);
    m8_db_result_free(r);
    return m8_res_json(req, 200, o);
}

/* ------------------------------------------------------------ reads */

int m8_issuer_h_sessions_list(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    json_object *errs = json_object_new_array();
    long long skip = 0, limit = 100;
    m8_ub_query_int(req, errs, "skip", 0, 0, &skip);
    m8_ub_query_int(req, errs, "limit", 100, 0, &limit);
    if (json_object_array_length(errs) > 0)
        return m8_ub_unprocessable(req, errs);
    json_object_put(errs);
    if (limit > M8_ISSUER_SESSIONS_LIST_MAX)
        limit = M8_ISSUER_SESSIONS_LIST_MAX;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_db_result *cnt = NULL, *rows = NULL;
    int64_t count = 0;
    int rc =
        m8_issuer_exec(db, iss->prefix, "SELECT COUNT(*) FROM {p}_client_session", NULL, 0, &cnt);
    if (rc == 0 && m8_db_get_int(cnt, 0, 0, &count) != 0)
        rc = M8_EIO;
    m8_db_result_free(cnt);
    m8_db_param p[] = {M8_DB_INT(limit), M8_DB_INT(skip)};
    if (rc == 0)
        rc = m8_issuer_exec(db, iss->prefix,
                            "SELECT " COLS
                            " FROM {p}_client_session ORDER BY created_at, id LIMIT ? OFFSET ?",
                            p, 2, &rows);
    if (rc != 0) {
        m8_db_result_free(rows);
        return m8_issuer_fail(req, db, rc, "listing sessions");
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

int m8_issuer_h_sessions_get(m8_request *req, void *data)
{
    char id[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "session_id", id) != 0)
        return 0;
    /* decision I7: an unknown id is 404, where fa-auth-m8 fails with 500 */
    return answer_one(req, data, "SELECT " COLS " FROM {p}_client_session WHERE id = ?", id, 404,
                      D_SESSION_NOT_FOUND);
}

int m8_issuer_h_sessions_by_user(m8_request *req, void *data)
{
    char id[M8_UUID_STR_LEN + 1], uid[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "user_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    m8_issuer_uuid_param(db, id, uid);
    return answer_one(req, data,
                      "SELECT " COLS " FROM {p}_client_session WHERE user_id = ? ORDER BY "
                      "updated_at DESC, id LIMIT 1",
                      uid, 404, D_SESSION_NOT_FOUND);
}

int m8_issuer_h_sessions_current(m8_request *req, void *data)
{
    const m8_user *c = m8_req_user(req);
    char id[M8_UUID_STR_LEN + 1], uid[M8_UUID_STR_LEN + 1];
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    if (!c || !c->id || !m8_uuid_canon(c->id, strlen(c->id), id))
        return m8_res_error(req, 400, D_NO_CURRENT);
    m8_issuer_uuid_param(db, id, uid);
    return answer_one(req, data,
                      "SELECT " COLS " FROM {p}_client_session WHERE user_id = ? ORDER BY "
                      "updated_at DESC, id LIMIT 1",
                      uid, 400, D_NO_CURRENT);
}

/* ------------------------------------------------------------ deletions */

/* The privileged-action audit row of a session deletion: table
 * <prefix>_client_session, row_pk the session id (or the user id for a
 * deletion of every session of a user), target_owner_id the user. */
static int audit(m8_request *req, m8_issuer *iss, m8_db *db, const char *row_pk, const char *owner)
{
    const m8_user *c = m8_req_user(req);
    char client[M8_ISSUER_CLIENT_IP_MAX];
    m8_issuer_client_ip(req, iss->s, client);
    m8_issuer_audit_entry e = {.actor_id = c ? c->id : NULL,
                               .actor_role = c ? c->role : NULL,
                               .action = "delete",
                               .table = "client_session",
                               .row_pk = row_pk,
                               .owner = owner,
                               .client = client};
    return m8_issuer_audit_row(db, iss->prefix, &e, NULL);
}

/* Inside the caller's transaction: the rows of rows (jwt_jti, jwt_expires_at
 * in columns jcol, jcol + 1) whose access token has not expired go on the
 * blacklist until then, and every one's refresh allowlist entry goes. */
static int blacklist_rows(m8_db *db, const char *prefix, const m8_db_result *rows, size_t jcol,
                          int64_t now)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m8_db_nrows(rows); i++) {
        size_t len = 0;
        const char *jti = m8_db_get_text(rows, i, jcol, &len);
        int64_t exp_us = 0;
        if (!jti || len == 0 || len > M8_ISSUER_ID_MAX) {
            m8_log(M8_LOG_WARNING, "issuer: a session JTI cannot be blacklisted (over %d bytes)",
                   M8_ISSUER_ID_MAX);
            continue;
        }
        if (m8_db_get_time(rows, i, jcol + 1, &exp_us) == 0 && exp_us / 1000000 > now)
            rc = m8_issuer_blacklist_put(db, prefix, jti, exp_us / 1000000);
        if (rc == 0)
            rc = m8_issuer_allow_remove(db, prefix, jti, NULL);
        if (rc == M8_EINVAL) /* not a JTI this issuer minted */
            rc = 0;
    }
    return rc;
}

int m8_issuer_h_sessions_delete(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    char id[M8_UUID_STR_LEN + 1], owner[M8_UUID_STR_LEN + 1] = "", jti[M8_ISSUER_ID_MAX + 1] = "";
    if (m8_ub_path_uuid(req, "session_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    const m8_user *c = m8_req_user(req);
    m8_db_param p = M8_DB_TEXT(id);
    m8_db_result *r = NULL;
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = m8_issuer_exec(
            db, iss->prefix,
            "SELECT user_id, jwt_jti, jwt_expires_at FROM {p}_client_session WHERE id = ? "
            "FOR UPDATE",
            &p, 1, &r);
    if (rc == 0 && m8_db_nrows(r) == 0) {
        m8_db_result_free(r);
        m8_db_rollback(db);
        return m8_res_error(req, 404, D_SESSION_NOT_FOUND);
    }
    if (rc == 0) {
        size_t n = 0;
        const char *j = m8_db_get_text(r, 0, 1, &n);
        if (j && n <= M8_ISSUER_ID_MAX)
            snprintf(jti, sizeof jti, "%.*s", (int)n, j);
        if (!m8_issuer_id_text(r, 0, 0, owner))
            rc = M8_EIO;
    }
    if (rc == 0)
        rc = audit(req, iss, db, id, owner);
    if (rc == 0)
        rc = m8_issuer_exec(db, iss->prefix, "DELETE FROM {p}_client_session WHERE id = ?", &p, 1,
                            NULL);
    if (rc == 0)
        rc = blacklist_rows(db, iss->prefix, r, 1, (int64_t)time(NULL));
    m8_db_result_free(r);
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "deleting a session");
    /* the event only hastens what the deleted row already decided */
    if (jti[0]) {
        int erc = m8_issuer_session_event_v1(db, iss->prefix, owner, jti, m8_db_now());
        if (erc != 0)
            m8_log(M8_LOG_WARNING, "issuer: the session-revoked event of %s was not appended (%d)",
                   owner, erc);
    }
    m8_log(M8_LOG_INFO, "event=session.deleted session_id=%s user_id=%s by=%s", id, owner, c->id);
    return message(req, "Session deleted successfully");
}

int m8_issuer_h_sessions_delete_user(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    char id[M8_UUID_STR_LEN + 1], uid[M8_UUID_STR_LEN + 1];
    if (m8_ub_path_uuid(req, "user_id", id) != 0)
        return 0;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    const m8_user *c = m8_req_user(req);
    m8_issuer_uuid_param(db, id, uid);
    m8_db_param p = M8_DB_TEXT(uid);
    m8_db_result *r = NULL, *d = NULL;
    int64_t deleted = 0;
    /* fa-auth-m8 has no 404 here: a user without sessions (or unknown) is
     * still answered 200, audited and announced. */
    int rc = m8_db_begin(db);
    if (rc == 0)
        rc = audit(req, iss, db, id, id);
    if (rc == 0)
        rc = m8_issuer_exec(
            db, iss->prefix,
            "SELECT jwt_jti, jwt_expires_at FROM {p}_client_session WHERE user_id = ? FOR "
            "UPDATE",
            &p, 1, &r);
    if (rc == 0)
        rc = m8_issuer_exec(db, iss->prefix, "DELETE FROM {p}_client_session WHERE user_id = ?", &p,
                            1, &d);
    if (rc == 0)
        deleted = m8_db_affected(d);
    m8_db_result_free(d);
    if (rc == 0)
        rc = blacklist_rows(db, iss->prefix, r, 0, (int64_t)time(NULL));
    m8_db_result_free(r);
    if (rc == 0) /* a refresh entry without a row (a superseded one) goes too */
        rc = m8_issuer_allow_remove_user(db, iss->prefix, id);
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "deleting the sessions of a user");
    int erc = m8_issuer_session_event_v1(db, iss->prefix, id, NULL, m8_db_now());
    if (erc != 0)
        m8_log(M8_LOG_WARNING, "issuer: the session-revoked event of %s was not appended (%d)", id,
               erc);
    m8_log(M8_LOG_INFO, "event=sessions.deleted user_id=%s count=%lld by=%s", id,
           (long long)deleted, c->id);
    /* sic: fa-auth-m8's text for this route (decision I10: copy) */
    return message(req, "User deleted successfully");
}

/* ------------------------------------------------------------ security */

int m8_issuer_h_superuser_probe(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    const m8_user *c = m8_req_user(req);
    char key[M8_ISSUER_RATE_KEY_MAX + 1];
    int n = snprintf(key, sizeof key, "security:superuser_probe:%s", c && c->id ? c->id : "");
    m8_db *db = m8_req_db(req);
    int64_t count = 0;
    int rc = n > 0 && (size_t)n < sizeof key ? M8_EAGAIN : M8_EINVAL;
    if (db && rc == M8_EAGAIN)
        rc = m8_issuer_rate_hit(db, iss->prefix, key, (size_t)n, M8_ISSUER_PROBE_WINDOW_S,
                                (int64_t)time(NULL), &count, NULL);
    if (rc == M8_EAGAIN) {
        bool open =
            iss->s && iss->s->rate_limit_failure_mode == M8_FAIL_OPEN && !iss->s->auth_strict_mode;
        if (!open)
            return m8_res_error(req, 503, M8_ISSUER_DETAIL_RATE_DOWN);
        m8_log_limited("issuer.rate.skipped", M8_LOG_WARNING,
                       "issuer: rate limit skipped, the database is unavailable (fail_open)");
    } else if (rc != 0) {
        return m8_issuer_db_fail(req, rc, "probe rate limit");
    } else if (count > M8_ISSUER_PROBE_LIMIT) {
        m8_log(M8_LOG_WARNING, "event=security.superuser_probe.rate_limited user_id=%s", c->id);
        return m8_res_error(req, 429, D_PROBE_RATE);
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "authorized", json_object_new_boolean(true));
    return m8_res_json(req, 200, o);
}

/* ------------------------------------------------------------ Google tokens */

/* external_token_expires_at: null, an ISO 8601 text, or a Unix time in
 * seconds (milliseconds above 2e10, as pydantic).  1 with *us (0: null),
 * 0 when absent, -1 after an error. */
static int body_when(m8_ub *b, const char *name, int64_t *us)
{
    json_object *v = NULL;
    *us = 0;
    if (!json_object_object_get_ex(b->body, name, &v))
        return 0;
    if (!v)
        return 1;
    if (json_object_is_type(v, json_type_string)) {
        const char *t = json_object_get_string(v);
        /* before year 10000 once the offset is applied, as the numbers
         * below: past it no DATETIME column holds the value */
        if (m8_iso_time_parse(t, (size_t)json_object_get_string_len(v), true, us) == 0 && *us > 0 &&
            *us < 253402300800LL * 1000000)
            return 1;
        *us = 0;
        m8_ub_error(b, "datetime_from_date_parsing", name,
                    "Input should be a valid datetime or date, invalid format", v, NULL);
        return -1;
    }
    if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
        double t = json_object_get_double(v);
        if (fabs(t) > 2e10)
            t /= 1000;
        if (isfinite(t) && t > 0 && t < 253402300800.0) { /* before year 10000 */
            *us = (int64_t)(t * 1e6);
            return 1;
        }
        m8_ub_error(b, "datetime_parsing", name, "Input should be a valid datetime, out of range",
                    v, NULL);
        return -1;
    }
    m8_ub_error(b, "datetime_type", name, "Input should be a valid datetime", v, NULL);
    return -1;
}

/* A token member: 1..M8_OIDC_EXT_TOKEN_MAX bytes (what fits the column once
 * encrypted), or null. */
static int body_token(m8_ub *b, const char *name, const char **out)
{
    int rc = m8_ub_str(b, name, 1, M8_OIDC_EXT_TOKEN_MAX, true, false, out);
    json_object *v = NULL;
    if (rc == 1 && *out && strlen(*out) > M8_OIDC_EXT_TOKEN_MAX &&
        json_object_object_get_ex(b->body, name, &v)) {
        char msg[96];
        snprintf(msg, sizeof msg, "String should have at most %u bytes", M8_OIDC_EXT_TOKEN_MAX);
        json_object *ctx = json_object_new_object();
        json_object_object_add(ctx, "max_length",
                               json_object_new_int64((int64_t)M8_OIDC_EXT_TOKEN_MAX));
        m8_ub_error(b, "string_too_long", name, msg, v, ctx);
        return -1;
    }
    return rc;
}

/* POST /sessions/refresh-google-tokens/ (doc/issuer.md#stored-google-tokens). */
int m8_issuer_h_refresh_google_tokens(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    const m8_user *c = m8_req_user(req);
    m8_ub b;
    if (m8_ub_begin(req, &b) != 0)
        return 0;
    m8_oidc_ext_write w;
    memset(&w, 0, sizeof w);
    int ra = body_token(&b, "external_access_token", &w.access);
    int rr = body_token(&b, "external_refresh_token", &w.refresh);
    int re = body_when(&b, "external_token_expires_at", &w.expires_us);
    if (m8_ub_end(&b) != 0)
        return 0;
    w.set_access = ra == 1;
    w.set_refresh = rr == 1;
    w.set_expires = re == 1;
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    size_t nkeys = 0;
    const m8_fernet_key *keys = m8_oidc_token_keys(&nkeys);
    if (nkeys == 0)
        return m8_req_fail(req, "issuer: no TOKENS_ENCRYPTION_KEY loaded");
    char id[M8_UUID_STR_LEN + 1], uid[M8_UUID_STR_LEN + 1];
    if (!c || !c->id || !c->jti || !m8_uuid_canon(c->id, strlen(c->id), id))
        return m8_res_error(req, 404, D_SESSION_NOT_FOUND);
    m8_issuer_uuid_param(db, id, uid);
    m8_db_param p[] = {M8_DB_TEXT(uid), M8_DB_TEXT(c->jti)};
    m8_db_result *r = NULL;
    const char *sel =
        "SELECT " COLS " FROM {p}_client_session WHERE user_id = ? AND jwt_jti = ? ORDER BY id";
    int rc = m8_db_begin(db);
    if (rc == 0) {
        char lock[320];
        snprintf(lock, sizeof lock, "%s FOR UPDATE", sel);
        rc = m8_issuer_exec(db, iss->prefix, lock, p, 2, &r);
    }
    int status = 0;
    if (rc == 0 && m8_db_nrows(r) == 0) {
        status = 404;
    } else if (rc == 0) {
        size_t n = 0;
        const char *prov = m8_db_get_text(r, 0, 3, &n);
        if (!prov || n != 6 || strncasecmp(prov, "google", 6) != 0)
            status = 400;
    }
    m8_db_result_free(r);
    r = NULL;
    if (rc == 0 && status == 0)
        rc = m8_oidc_ext_store(db, iss->prefix, keys, nkeys, id, c->jti, &w, NULL);
    if (rc == 0 && status == 0)
        rc = m8_issuer_exec(db, iss->prefix, sel, p, 2, &r);
    if (rc == 0)
        rc = status ? m8_db_rollback(db) : m8_db_commit(db);
    if (rc != 0) {
        m8_db_result_free(r);
        if (m8_db_in_transaction(db))
            m8_db_rollback(db);
        return m8_issuer_fail(req, db, rc, "storing the Google tokens");
    }
    if (status == 404)
        return m8_res_error(req, 404, D_SESSION_NOT_FOUND);
    if (status == 400)
        return m8_res_error(req, 400, D_NOT_GOOGLE);
    json_object *o = m8_db_nrows(r) > 0 ? row_json(r, 0) : NULL;
    m8_db_result_free(r);
    if (!o)
        return m8_res_error(req, 404, D_SESSION_NOT_FOUND);
    /* never the tokens themselves, in the log or the answer */
    m8_log(M8_LOG_INFO, "event=session.google_tokens.refreshed user_id=%s access=%s refresh=%s", id,
           w.set_access ? (w.access ? "replaced" : "cleared") : "kept",
           w.set_refresh ? (w.refresh ? "replaced" : "cleared") : "kept");
    return m8_res_json(req, 200, o);
}
