/* store.c - the issuer's Redis replacements over m8_db (store.h,
 * doc/issuer.md#storage).  Each operation's SQL for both engines is next to
 * it; table names come from the prefix ("{p}", schema.h). */
#include "issuer/store.h"

#include <stdlib.h>
#include <string.h>

#include "builtin/issuer_metrics.h"

/* ------------------------------------------------------------ helpers */

static bool is_pg(const m8_db *db)
{
    return m8_db_get_dialect(db) == M8_DB_DIALECT_POSTGRES;
}

/* Expands tmpl with prefix (NULL = default) and runs it. */
/* 1..M8_ISSUER_ID_MAX bytes of printable ASCII without space. */
static bool id_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (; s[n]; n++) {
        if (n >= M8_ISSUER_ID_MAX || (unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
            return false;
    }
    return n > 0;
}

/* Well-formed UTF-8 (shortest forms, no surrogates, up to U+10FFFF); with
 * no_ctl, no C0/C1 control characters or DEL either; never a NUL. */
static bool utf8_valid(const char *p, size_t n, bool no_ctl)
{
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c == 0 || (no_ctl && (c < 0x20 || c == 0x7f)))
                return false;
            i++;
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
        if (c < 0xc2 || c > 0xf4 || i + len > n)
            return false;
        unsigned cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (no_ctl && cp < 0xa0))
            return false;
        i += len;
    }
    return true;
}

static bool key_valid(const char *key, size_t n)
{
    return key && n > 0 && n <= M8_ISSUER_RATE_KEY_MAX && utf8_valid(key, n, true);
}

/* Runs body in a transaction: the caller's when one is open, else its own
 * (committed on 0, rolled back otherwise). */
typedef int (*tx_body)(m8_db *db, const char *prefix, void *ctx);

/* Runs of a transaction that failed as a deadlock victim or a serialization
 * failure (SQLSTATE 40001, PostgreSQL's deadlock 40P01). */
#define TX_TRIES 3

static bool victim(const m8_db_error *e)
{
    return e && (strcmp(e->code, "40001") == 0 || strcmp(e->code, "40P01") == 0);
}

static int in_tx(m8_db *db, const char *prefix, tx_body body, void *ctx)
{
    if (m8_db_in_transaction(db))
        return body(db, prefix, ctx);
    int rc = 0;
    /* InnoDB may pick this transaction as a deadlock victim (two upserts of
     * a new key): it was rolled back whole, so it runs again. */
    for (int attempt = 0; attempt < TX_TRIES; attempt++) {
        rc = m8_db_begin(db);
        if (rc != 0)
            return rc;
        rc = body(db, prefix, ctx);
        if (rc == 0)
            rc = m8_db_commit(db);
        bool again = rc == M8_EIO && victim(m8_db_last_error(db));
        if (rc != 0 && m8_db_in_transaction(db))
            m8_db_rollback(db);
        if (!again)
            break;
    }
    return rc;
}

/* ------------------------------------------------------------ rate limits */

typedef struct rate_ctx {
    const char *key;
    size_t keylen;
    int64_t window_s, now, count, end;
} rate_ctx;

/* MariaDB has no RETURNING on an upsert: the count is read back in the
 * same transaction, where the upsert's row lock keeps it ours. */
static int rate_my(m8_db *db, const char *prefix, void *ctx)
{
    rate_ctx *x = ctx;
    m8_db_param p[4] = {M8_DB_TEXTN(x->key, x->keylen), M8_DB_INT(x->now + x->window_s),
                        M8_DB_INT(x->now), M8_DB_INT(x->now)};
    /* MariaDB assigns left to right: hits is decided on the old window_end. */
    int rc =
        m8_issuer_exec(db, prefix,
                       "INSERT INTO {p}_m8_rate_window (rkey, hits, window_end) VALUES (?, 1, ?) "
                       "ON DUPLICATE KEY UPDATE hits = IF(window_end <= ?, 1, hits + 1), "
                       "window_end = IF(window_end <= ?, VALUES(window_end), window_end)",
                       p, 4, NULL);
    if (rc != 0)
        return rc;
    m8_db_result *r = NULL;
    rc = m8_issuer_exec(db, prefix,
                        "SELECT hits, window_end FROM {p}_m8_rate_window WHERE rkey = ?", p, 1, &r);
    if (rc == 0 && (m8_db_nrows(r) != 1 || m8_db_get_int(r, 0, 0, &x->count) != 0 ||
                    m8_db_get_int(r, 0, 1, &x->end) != 0))
        rc = M8_EIO;
    m8_db_result_free(r);
    return rc;
}

int m8_issuer_rate_hit(m8_db *db, const char *prefix, const char *key, size_t keylen,
                       int64_t window_s, int64_t now, int64_t *count, int64_t *window_end)
{
    if (!db || !count || !key_valid(key, keylen) || window_s < 1 || window_s > 31622400 ||
        now < 0 || now > INT64_MAX / 2)
        return M8_EINVAL;
    rate_ctx x = {key, keylen, window_s, now, 0, 0};
    int rc;
    if (is_pg(db)) {
        m8_db_param p[4] = {M8_DB_TEXTN(key, keylen), M8_DB_INT(now + window_s), M8_DB_INT(now),
                            M8_DB_INT(now)};
        m8_db_result *r = NULL;
        rc = m8_issuer_exec(
            db, prefix,
            "INSERT INTO {p}_m8_rate_window AS w (rkey, hits, window_end) VALUES (?, 1, ?) "
            "ON CONFLICT (rkey) DO UPDATE SET "
            "hits = CASE WHEN w.window_end <= ? THEN 1 ELSE w.hits + 1 END, "
            "window_end = CASE WHEN w.window_end <= ? THEN EXCLUDED.window_end "
            "ELSE w.window_end END RETURNING hits, window_end",
            p, 4, &r);
        if (rc == 0 && (m8_db_nrows(r) != 1 || m8_db_get_int(r, 0, 0, &x.count) != 0 ||
                        m8_db_get_int(r, 0, 1, &x.end) != 0))
            rc = M8_EIO;
        m8_db_result_free(r);
    } else {
        rc = in_tx(db, prefix, rate_my, &x);
    }
    if (rc == 0) {
        *count = x.count;
        if (window_end)
            *window_end = x.end;
    }
    return rc;
}

int m8_issuer_rate_clear(m8_db *db, const char *prefix, const char *key, size_t keylen)
{
    if (!key_valid(key, keylen))
        return M8_EINVAL;
    m8_db_param p = M8_DB_TEXTN(key, keylen);
    return m8_issuer_exec(db, prefix, "DELETE FROM {p}_m8_rate_window WHERE rkey = ?", &p, 1, NULL);
}

/* ------------------------------------------------------------ allowlist */

int m8_issuer_allow_put(m8_db *db, const char *prefix, const char *jti, const char *user_id,
                        int64_t expires_at)
{
    if (!db || !id_valid(jti) || !id_valid(user_id))
        return M8_EINVAL;
    m8_db_param p[3] = {M8_DB_TEXT(jti), M8_DB_TEXT(user_id), M8_DB_INT(expires_at)};
    return m8_issuer_exec(
        db, prefix,
        is_pg(db) ? "INSERT INTO {p}_m8_refresh_allow (jti, user_id, expires_at) VALUES "
                    "(?, ?, ?) ON CONFLICT (jti) DO UPDATE SET user_id = "
                    "EXCLUDED.user_id, expires_at = EXCLUDED.expires_at"
                  : "INSERT INTO {p}_m8_refresh_allow (jti, user_id, expires_at) VALUES "
                    "(?, ?, ?) ON DUPLICATE KEY UPDATE user_id = VALUES(user_id), "
                    "expires_at = VALUES(expires_at)",
        p, 3, NULL);
}

/* *hit = whether a row of tmpl (jti, now) exists. */
static int exists(m8_db *db, const char *prefix, const char *tmpl, const char *jti, int64_t now,
                  bool *hit)
{
    if (!db || !hit || !id_valid(jti))
        return M8_EINVAL;
    *hit = false;
    m8_db_param p[2] = {M8_DB_TEXT(jti), M8_DB_INT(now)};
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, prefix, tmpl, p, 2, &r);
    if (rc == 0)
        *hit = m8_db_nrows(r) > 0;
    m8_db_result_free(r);
    return rc;
}

int m8_issuer_allow_has(m8_db *db, const char *prefix, const char *jti, int64_t now, bool *present)
{
    return exists(db, prefix, "SELECT 1 FROM {p}_m8_refresh_allow WHERE jti = ? AND expires_at > ?",
                  jti, now, present);
}

typedef struct rotate_ctx {
    const char *old_jti, *new_jti, *user_id;
    int64_t expires_at, now;
} rotate_ctx;

static int rotate_body(m8_db *db, const char *prefix, void *ctx)
{
    rotate_ctx *x = ctx;
    /* The DELETE locks the row: of two concurrent rotations, the second
     * waits and then finds nothing to delete. */
    m8_db_param d[2] = {M8_DB_TEXT(x->old_jti), M8_DB_INT(x->now)};
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(
        db, prefix, "DELETE FROM {p}_m8_refresh_allow WHERE jti = ? AND expires_at > ?", d, 2, &r);
    if (rc != 0)
        return rc;
    int64_t gone = m8_db_affected(r);
    m8_db_result_free(r);
    if (gone != 1)
        return M8_ENOTFOUND;
    m8_db_param i[3] = {M8_DB_TEXT(x->new_jti), M8_DB_TEXT(x->user_id), M8_DB_INT(x->expires_at)};
    return m8_issuer_exec(
        db, prefix, "INSERT INTO {p}_m8_refresh_allow (jti, user_id, expires_at) VALUES (?, ?, ?)",
        i, 3, NULL);
}

int m8_issuer_allow_rotate(m8_db *db, const char *prefix, const char *old_jti, const char *new_jti,
                           const char *user_id, int64_t expires_at, int64_t now)
{
    if (!db || !id_valid(old_jti) || !id_valid(new_jti) || !id_valid(user_id) ||
        strcmp(old_jti, new_jti) == 0)
        return M8_EINVAL;
    rotate_ctx x = {old_jti, new_jti, user_id, expires_at, now};
    return in_tx(db, prefix, rotate_body, &x);
}

int m8_issuer_allow_remove(m8_db *db, const char *prefix, const char *jti, bool *removed)
{
    if (removed)
        *removed = false;
    if (!id_valid(jti))
        return M8_EINVAL;
    m8_db_param p = M8_DB_TEXT(jti);
    m8_db_result *r = NULL;
    int rc =
        m8_issuer_exec(db, prefix, "DELETE FROM {p}_m8_refresh_allow WHERE jti = ?", &p, 1, &r);
    if (rc == 0 && removed)
        *removed = m8_db_affected(r) > 0;
    m8_db_result_free(r);
    return rc;
}

int m8_issuer_allow_remove_user(m8_db *db, const char *prefix, const char *user_id)
{
    if (!id_valid(user_id))
        return M8_EINVAL;
    m8_db_param p = M8_DB_TEXT(user_id);
    return m8_issuer_exec(db, prefix, "DELETE FROM {p}_m8_refresh_allow WHERE user_id = ?", &p, 1,
                          NULL);
}

/* ------------------------------------------------------------ blacklist */

int m8_issuer_blacklist_put(m8_db *db, const char *prefix, const char *jti, int64_t expires_at)
{
    if (!db || !id_valid(jti))
        return M8_EINVAL;
    m8_db_param p[2] = {M8_DB_TEXT(jti), M8_DB_INT(expires_at)};
    return m8_issuer_exec(
        db, prefix,
        is_pg(db) ? "INSERT INTO {p}_m8_access_blacklist AS b (jti, expires_at) VALUES "
                    "(?, ?) ON CONFLICT (jti) DO UPDATE SET expires_at = "
                    "GREATEST(b.expires_at, EXCLUDED.expires_at)"
                  : "INSERT INTO {p}_m8_access_blacklist (jti, expires_at) VALUES (?, ?) "
                    "ON DUPLICATE KEY UPDATE expires_at = GREATEST(expires_at, "
                    "VALUES(expires_at))",
        p, 2, NULL);
}

int m8_issuer_blacklist_has(m8_db *db, const char *prefix, const char *jti, int64_t now,
                            bool *listed)
{
    return exists(db, prefix,
                  "SELECT 1 FROM {p}_m8_access_blacklist WHERE jti = ? AND expires_at > ?", jti,
                  now, listed);
}

/* ------------------------------------------------------------ events */

int m8_issuer_event_append(m8_db *db, const char *prefix, const char *type, const char *payload,
                           size_t payload_len, int64_t now_us, int64_t *id)
{
    if (id)
        *id = 0;
    if (!db || !id_valid(type) || !payload || payload_len > M8_ISSUER_EVENT_MAX ||
        !utf8_valid(payload, payload_len, false))
        return M8_EINVAL;
    bool pg = is_pg(db);
    m8_db_param p[3] = {M8_DB_INT(now_us), M8_DB_TEXT(type), M8_DB_TEXTN(payload, payload_len)};
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(
        db, prefix,
        pg ? "INSERT INTO {p}_m8_event_outbox (created_us, event_type, payload) VALUES "
             "(?, ?, ?) RETURNING id"
           : "INSERT INTO {p}_m8_event_outbox (created_us, event_type, payload) VALUES "
             "(?, ?, ?)",
        p, 3, &r);
    if (rc == 0) {
        int64_t v = 0;
        if (pg) {
            if (m8_db_nrows(r) != 1 || m8_db_get_int(r, 0, 0, &v) != 0)
                rc = M8_EIO;
        } else {
            v = m8_db_insert_id(r);
        }
        if (rc == 0 && v <= 0)
            rc = M8_EIO;
        if (rc == 0 && id)
            *id = v;
    }
    m8_db_result_free(r);
    /* counted here when it is final; inside a transaction its owner
     * counts after the commit (issuer/outbox.c) */
    if (rc == 0 && !m8_db_in_transaction(db)) {
        if (strcmp(type, "session-revoked") == 0)
            m8_im_inc(M8_IM_EVENTS_PUBLISHED, M8_IM_EV_SESSION_REVOKED);
        else if (strcmp(type, "user-deleted") == 0)
            m8_im_inc(M8_IM_EVENTS_PUBLISHED, M8_IM_EV_USER_DELETED);
    }
    return rc;
}

void m8_issuer_events_free(m8_issuer_events *out)
{
    if (!out)
        return;
    free(out->ev);
    m8_db_result_free(out->res_);
    memset(out, 0, sizeof *out);
}

int m8_issuer_event_read(m8_db *db, const char *prefix, int64_t after_id, size_t max,
                         int64_t now_us, int64_t grace_us, m8_issuer_events *out)
{
    if (!out)
        return M8_EINVAL;
    memset(out, 0, sizeof *out);
    out->next_after = after_id;
    if (!db || after_id < 0 || max < 1 || max > M8_ISSUER_EVENT_READ_MAX || grace_us < 0)
        return M8_EINVAL;
    m8_db_param p[2] = {M8_DB_INT(after_id), M8_DB_INT((int64_t)max)};
    int rc = m8_issuer_exec(db, prefix,
                            "SELECT id, created_us, event_type, payload FROM {p}_m8_event_outbox "
                            "WHERE id > ? ORDER BY id LIMIT ?",
                            p, 2, &out->res_);
    if (rc != 0)
        return rc;
    size_t rows = m8_db_nrows(out->res_);
    if (rows == 0)
        return 0;
    out->ev = calloc(rows, sizeof *out->ev);
    if (!out->ev) {
        m8_issuer_events_free(out);
        out->next_after = after_id;
        return M8_ENOMEM;
    }
    int64_t expect = after_id + 1;
    for (size_t i = 0; i < rows; i++) {
        m8_issuer_event *e = &out->ev[out->n];
        if (m8_db_get_int(out->res_, i, 0, &e->id) != 0 ||
            m8_db_get_int(out->res_, i, 1, &e->created_us) != 0) {
            m8_issuer_events_free(out);
            out->next_after = after_id;
            return M8_EIO;
        }
        if (e->id != expect) {
            /* A hole: an append in flight, or one rolled back. */
            if (now_us - e->created_us <= grace_us) {
                out->held = true;
                break;
            }
            out->skipped += (size_t)(e->id - expect);
        }
        e->type = m8_db_get_text(out->res_, i, 2, NULL);
        e->payload = m8_db_get_text(out->res_, i, 3, &e->payload_len);
        if (!e->type || !e->payload) {
            m8_issuer_events_free(out);
            out->next_after = after_id;
            return M8_EIO;
        }
        expect = e->id + 1;
        out->next_after = e->id;
        out->n++;
    }
    return 0;
}

/* The aggregate of tmpl ("SELECT MAX(id) ...") into *id, 0 for none. */
static int event_bound(m8_db *db, const char *prefix, const char *tmpl, int64_t *id)
{
    if (!db || !id)
        return M8_EINVAL;
    *id = 0;
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(db, prefix, tmpl, NULL, 0, &r);
    if (rc == 0 && m8_db_nrows(r) == 1 && !m8_db_is_null(r, 0, 0) &&
        m8_db_get_int(r, 0, 0, id) != 0)
        rc = M8_EIO;
    m8_db_result_free(r);
    return rc;
}

int m8_issuer_event_last_id(m8_db *db, const char *prefix, int64_t *id)
{
    return event_bound(db, prefix, "SELECT MAX(id) FROM {p}_m8_event_outbox", id);
}

int m8_issuer_event_first_id(m8_db *db, const char *prefix, int64_t *id)
{
    return event_bound(db, prefix, "SELECT MIN(id) FROM {p}_m8_event_outbox", id);
}

/* ------------------------------------------------------------ reaping */

int m8_issuer_store_reap(m8_db *db, const char *prefix, int64_t now, int64_t keep_events_before_us)
{
    static const char *const expired[] = {
        "DELETE FROM {p}_m8_refresh_allow WHERE expires_at <= ?",
        "DELETE FROM {p}_m8_access_blacklist WHERE expires_at <= ?",
        "DELETE FROM {p}_m8_rate_window WHERE window_end <= ?",
    };
    if (!db)
        return M8_EINVAL;
    m8_db_param p = M8_DB_INT(now);
    for (size_t i = 0; i < sizeof expired / sizeof expired[0]; i++) {
        int rc = m8_issuer_exec(db, prefix, expired[i], &p, 1, NULL);
        if (rc != 0)
            return rc;
    }
    int64_t last = 0;
    int rc = m8_issuer_event_last_id(db, prefix, &last);
    if (rc != 0 || last == 0)
        return rc;
    m8_db_param e[2] = {M8_DB_INT(keep_events_before_us), M8_DB_INT(last)};
    return m8_issuer_exec(
        db, prefix, "DELETE FROM {p}_m8_event_outbox WHERE created_us < ? AND id < ?", e, 2, NULL);
}
