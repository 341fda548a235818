/* outbox.c - the `publish` rows of the revocation outbox delivered once
 * (outbox.h, doc/issuer.md#the-revocation-outbox). */
#include "issuer/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin/issuer_metrics.h"
#include "core/log.h"
#include "issuer/mint.h"
#include "issuer/schema.h"
#include "issuer/store.h"

/* The canonical 8-4-4-4-12 form of a user id as the database returns it
 * (PostgreSQL's uuid text, or MariaDB's 32 hex digits). */
static bool canon_id(const char *s, size_t n, char out[M8_UUID_STR_LEN + 1])
{
    if (s && n == 32) {
        char t[M8_UUID_STR_LEN + 1];
        snprintf(t, sizeof t, "%.8s-%.4s-%.4s-%.4s-%.12s", s, s + 8, s + 12, s + 16, s + 20);
        return m8_uuid_canon(t, M8_UUID_STR_LEN, out);
    }
    return m8_uuid_canon(s, n, out);
}

int m8_issuer_event_v2(char *out, size_t outlen, const char *user_id, int64_t generation)
{
    int n = snprintf(out, outlen,
                     "{\"event_type\":\"session.revoked\",\"version\":\"v2\",\"user_id\":\"%s\","
                     "\"jti\":null,\"auth_generation\":%lld,\"event_id\":\"%s:%lld:publish:"
                     "user-wide\"}",
                     user_id, (long long)generation, user_id, (long long)generation);
    return n < 0 || (size_t)n >= outlen ? M8_ETOOBIG : 0;
}

/* The database's encoding of a canonical user id (users_db.c writes them
 * so): as is on PostgreSQL, 32 hex digits on MariaDB. */
static void uuid_param(const m8_db *db, const char *canon, char out[M8_UUID_STR_LEN + 1])
{
    size_t k = 0;
    bool pg = m8_db_get_dialect(db) == M8_DB_DIALECT_POSTGRES;
    for (size_t i = 0; canon[i] && k < M8_UUID_STR_LEN; i++)
        if (pg || canon[i] != '-')
            out[k++] = canon[i];
    out[k] = '\0';
}

/* Counted once the transaction that appended the events committed. */
static void count_delivered(int64_t created_us, int64_t completed_us, bool user_deleted)
{
    m8_im_inc(M8_IM_OUTBOX_COMPLETED, M8_IM_EFFECT_PUBLISH);
    m8_im_inc(M8_IM_EVENTS_PUBLISHED, M8_IM_EV_SESSION_REVOKED);
    if (user_deleted)
        m8_im_inc(M8_IM_EVENTS_PUBLISHED, M8_IM_EV_USER_DELETED);
    if (created_us > 0 && completed_us >= created_us)
        m8_im_observe(M8_IH_OUTBOX_PUBLISH, (double)(completed_us - created_us) / 1e6);
}

/* Inside the caller's transaction, on the locked row id: the row's events
 * appended and the row marked completed. */
static int deliver(m8_db *db, const char *prefix, const char *row_id, const char *payload,
                   size_t payload_len, const char *user_id, bool user_deleted, int64_t now_us)
{
    int rc =
        m8_issuer_event_append(db, prefix, "session-revoked", payload, payload_len, now_us, NULL);
    if (rc == 0 && user_deleted) {
        char ev[160];
        int n = snprintf(ev, sizeof ev,
                         "{\"event_type\":\"user.deleted\",\"version\":\"v1\",\"user_id\":\"%s\"}",
                         user_id);
        rc = n > 0 && (size_t)n < sizeof ev
                 ? m8_issuer_event_append(db, prefix, "user-deleted", ev, (size_t)n, now_us, NULL)
                 : M8_ETOOBIG;
    }
    if (rc == 0) {
        m8_db_param p[] = {M8_DB_TIME(now_us), M8_DB_TIME(now_us), M8_DB_TEXT(row_id)};
        rc = m8_issuer_exec(db, prefix,
                            "UPDATE {p}_revocation_outbox SET status = 'completed', "
                            "completed_at = ?, updated_at = ?, lease_until = NULL WHERE id = ?",
                            p, M8_ARRAY_LEN(p), NULL);
    }
    return rc;
}

static int finish(m8_db *db, int rc)
{
    if (rc == 0)
        rc = m8_db_commit(db);
    if (rc != 0 && m8_db_in_transaction(db))
        m8_db_rollback(db);
    return rc;
}

int m8_issuer_outbox_publish_now(m8_db *db, const char *prefix, const char *user_id,
                                 int64_t generation, bool user_deleted)
{
    char uid[M8_UUID_STR_LEN + 1], canon[M8_UUID_STR_LEN + 1];
    if (!db || !user_id || !m8_uuid_canon(user_id, strlen(user_id), canon))
        return M8_EINVAL;
    /* the row's transaction committed before this call */
    m8_im_inc(M8_IM_OUTBOX_ENQUEUED, M8_IM_EFFECT_PUBLISH);
    uuid_param(db, canon, uid);
    char payload[512];
    int rc = m8_issuer_event_v2(payload, sizeof payload, canon, generation);
    if (rc != 0)
        return rc;
    rc = m8_db_begin(db);
    if (rc != 0)
        return rc;
    /* Still pending: no replay has it (a leased or completed row is left alone). */
    m8_db_param k[] = {M8_DB_TEXT(uid), M8_DB_INT(generation)};
    m8_db_result *r = NULL;
    rc = m8_issuer_exec(db, prefix,
                        "SELECT id, created_at FROM {p}_revocation_outbox WHERE user_id = ? AND "
                        "auth_generation = ? AND effect_type = 'publish' AND target_digest = "
                        "'user-wide' AND status = 'pending' FOR UPDATE",
                        k, M8_ARRAY_LEN(k), &r);
    char row_id[M8_UUID_STR_LEN + 1] = "";
    int64_t created_us = 0;
    if (rc == 0 && m8_db_nrows(r) == 1) {
        size_t n = 0;
        const char *id = m8_db_get_text(r, 0, 0, &n);
        if (id && n < sizeof row_id)
            snprintf(row_id, sizeof row_id, "%s", id);
        if (!row_id[0] || m8_db_get_time(r, 0, 1, &created_us) != 0)
            rc = M8_EIO;
    }
    m8_db_result_free(r);
    int64_t now_us = m8_db_now();
    bool delivered = false;
    if (rc == 0 && row_id[0]) {
        rc = deliver(db, prefix, row_id, payload, strlen(payload), canon, user_deleted, now_us);
        delivered = rc == 0;
    }
    rc = finish(db, rc);
    if (rc == 0 && delivered)
        count_delivered(created_us, now_us, user_deleted);
    return rc;
}

/* ------------------------------------------------------------ replay */

typedef struct claimed {
    char id[M8_UUID_STR_LEN + 1];
    int64_t attempts; /* after the claim: the lease's token */
} claimed;

/* Claims the due rows: attempts + 1, status leased until now + lease. */
static int claim(m8_db *db, const char *prefix, const m8_issuer_outbox_cfg *cfg, int64_t now_us,
                 claimed *out, size_t *n)
{
    *n = 0;
    int rc = m8_db_begin(db);
    if (rc != 0)
        return rc;
    m8_db_param p[] = {M8_DB_TIME(now_us - cfg->min_age_s * 1000000), M8_DB_TIME(now_us),
                       M8_DB_TIME(now_us), M8_DB_INT(cfg->batch)};
    m8_db_result *r = NULL;
    rc = m8_issuer_exec(
        db, prefix,
        "SELECT id, attempts FROM {p}_revocation_outbox WHERE effect_type = 'publish' AND "
        "((status = 'pending' AND created_at <= ? AND (next_attempt_at IS NULL OR "
        "next_attempt_at <= ?)) OR (status = 'leased' AND lease_until <= ?)) ORDER BY "
        "created_at LIMIT ? FOR UPDATE SKIP LOCKED",
        p, M8_ARRAY_LEN(p), &r);
    for (size_t i = 0; rc == 0 && i < m8_db_nrows(r) && i < (size_t)cfg->batch; i++) {
        size_t len = 0;
        const char *id = m8_db_get_text(r, i, 0, &len);
        int64_t att = 0;
        if (!id || len >= sizeof out[0].id || m8_db_get_int(r, i, 1, &att) != 0) {
            rc = M8_EIO;
            break;
        }
        claimed *c = &out[*n];
        memcpy(c->id, id, len);
        c->id[len] = '\0';
        c->attempts = att + 1;
        m8_db_param u[] = {M8_DB_INT(c->attempts), M8_DB_TIME(now_us + cfg->lease_s * 1000000),
                           M8_DB_TIME(now_us), M8_DB_TEXT(c->id)};
        rc = m8_issuer_exec(db, prefix,
                            "UPDATE {p}_revocation_outbox SET status = 'leased', attempts = ?, "
                            "lease_until = ?, updated_at = ? WHERE id = ?",
                            u, M8_ARRAY_LEN(u), NULL);
        if (rc == 0)
            (*n)++;
    }
    m8_db_result_free(r);
    rc = finish(db, rc);
    if (rc != 0)
        *n = 0;
    return rc;
}

/* Publishes one claimed row, if the lease is still ours.  0 when delivered
 * (*done true) or taken over by another replayer (*done false). */
static int replay_one(m8_db *db, const char *prefix, const claimed *c, bool *done,
                      int64_t *created_us, bool *user_deleted)
{
    *done = false;
    int rc = m8_db_begin(db);
    if (rc != 0)
        return rc;
    m8_db_param k[] = {M8_DB_TEXT(c->id), M8_DB_INT(c->attempts)};
    m8_db_result *r = NULL;
    rc = m8_issuer_exec(db, prefix,
                        "SELECT user_id, auth_generation, payload, created_at FROM "
                        "{p}_revocation_outbox WHERE id = ? AND status = 'leased' AND attempts = "
                        "? FOR UPDATE",
                        k, M8_ARRAY_LEN(k), &r);
    if (rc != 0 || m8_db_nrows(r) != 1) { /* another replayer took it over */
        m8_db_result_free(r);
        return finish(db, rc);
    }
    size_t ulen = 0, plen = 0;
    const char *uid = m8_db_get_text(r, 0, 0, &ulen);
    const char *payload = m8_db_get_text(r, 0, 2, &plen);
    int64_t gen = 0;
    char canon[M8_UUID_STR_LEN + 1];
    if (!uid || !payload || m8_db_get_int(r, 0, 1, &gen) != 0 ||
        m8_db_get_time(r, 0, 3, created_us) != 0 || !canon_id(uid, ulen, canon))
        rc = M8_EIO;
    /* A deletion left a tombstone at the row's generation. */
    m8_db_result *t = NULL;
    if (rc == 0) {
        m8_db_param q = M8_DB_TEXTN(uid, ulen);
        rc = m8_issuer_exec(db, prefix,
                            "SELECT terminal_generation FROM {p}_tombstone WHERE user_id = ?", &q,
                            1, &t);
    }
    int64_t term = 0;
    *user_deleted =
        rc == 0 && m8_db_nrows(t) == 1 && m8_db_get_int(t, 0, 0, &term) == 0 && term == gen;
    m8_db_result_free(t);
    if (rc == 0)
        rc = deliver(db, prefix, c->id, payload, plen, canon, *user_deleted, m8_db_now());
    m8_db_result_free(r);
    rc = finish(db, rc);
    *done = rc == 0;
    return rc;
}

/* A failed delivery: back to pending after a backoff, or dead at the last
 * attempt; only while the lease is still ours.  True when it went dead. */
static bool reschedule(m8_db *db, const char *prefix, const m8_issuer_outbox_cfg *cfg,
                       const claimed *c, int64_t now_us, int err)
{
    bool dead = c->attempts >= cfg->max_attempts;
    double delay = cfg->backoff_base_s; /* doubled at each attempt, up to the cap */
    for (int64_t i = 1; i < c->attempts && delay < cfg->backoff_cap_s; i++)
        delay *= 2;
    if (!(delay <= cfg->backoff_cap_s))
        delay = cfg->backoff_cap_s;
    m8_db_param p[] = {M8_DB_TEXT(dead ? "dead" : "pending"),
                       M8_DB_TIME(now_us + (int64_t)(delay * 1e6)), M8_DB_TIME(now_us),
                       M8_DB_TEXT(c->id), M8_DB_INT(c->attempts)};
    int rc = m8_issuer_exec(db, prefix,
                            "UPDATE {p}_revocation_outbox SET status = ?, next_attempt_at = ?, "
                            "lease_until = NULL, updated_at = ? WHERE id = ? AND status = "
                            "'leased' AND attempts = ?",
                            p, M8_ARRAY_LEN(p), NULL);
    if (dead)
        m8_log_limited("issuer.outbox.dead", M8_LOG_ERROR,
                       "issuer: revocation outbox row %s given up after %lld attempts (error "
                       "%d); its event is not published",
                       c->id, (long long)c->attempts, err);
    else
        m8_log_limited("issuer.outbox.retry", M8_LOG_WARNING,
                       "issuer: revocation outbox row %s not delivered (error %d), attempt "
                       "%lld of %lld; next in %.0f s",
                       c->id, err, (long long)c->attempts, (long long)cfg->max_attempts, delay);
    if (rc != 0) /* the lease runs out and the row is claimed again */
        m8_log_limited("issuer.outbox.reschedule", M8_LOG_WARNING,
                       "issuer: revocation outbox row %s could not be rescheduled (error %d)",
                       c->id, rc);
    return dead;
}

#define REPLAY_BATCH_MAX 1000

int m8_issuer_outbox_replay(m8_db *db, const char *prefix, const m8_issuer_outbox_cfg *cfg,
                            int64_t now_us, m8_issuer_outbox_stats *st)
{
    m8_issuer_outbox_stats s = {0};
    if (st)
        *st = s;
    if (!db || !cfg || cfg->batch < 1 || cfg->max_attempts < 1 || cfg->lease_s < 1)
        return M8_EINVAL;
    if (m8_db_in_transaction(db))
        return M8_ESTATE;
    m8_issuer_outbox_cfg c = *cfg;
    if (c.batch > REPLAY_BATCH_MAX)
        c.batch = REPLAY_BATCH_MAX;
    claimed *rows = calloc((size_t)c.batch, sizeof *rows);
    if (!rows)
        return M8_ENOMEM;
    size_t n = 0;
    int rc = claim(db, prefix, &c, now_us, rows, &n);
    s.claimed = n;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool done = false, deleted = false;
        int64_t created_us = 0;
        int e = replay_one(db, prefix, &rows[i], &done, &created_us, &deleted);
        if (e == 0 && done) {
            s.completed++;
            count_delivered(created_us, m8_db_now(), deleted);
        } else if (e != 0) {
            if (reschedule(db, prefix, &c, &rows[i], m8_db_now(), e)) {
                s.dead++;
                m8_im_inc(M8_IM_OUTBOX_DEAD, M8_IM_EFFECT_PUBLISH);
            } else {
                s.retried++;
                m8_im_inc(M8_IM_OUTBOX_RETRIED, M8_IM_EFFECT_PUBLISH);
            }
        }
    }
    free(rows);
    if (st)
        *st = s;
    return rc;
}

int m8_issuer_outbox_reap(m8_db *db, const char *prefix, int64_t before_us, int64_t limit,
                          int64_t *removed)
{
    if (removed)
        *removed = 0;
    if (!db || limit < 1)
        return M8_EINVAL;
    if (limit > REPLAY_BATCH_MAX)
        limit = REPLAY_BATCH_MAX;
    m8_db_param p[] = {M8_DB_TIME(before_us), M8_DB_INT(limit)};
    m8_db_result *r = NULL;
    int rc = m8_issuer_exec(
        db, prefix,
        m8_db_get_dialect(db) == M8_DB_DIALECT_POSTGRES
            ? "DELETE FROM {p}_revocation_outbox WHERE id IN (SELECT id FROM "
              "{p}_revocation_outbox WHERE status = 'completed' AND completed_at < ? LIMIT ?)"
            : "DELETE FROM {p}_revocation_outbox WHERE status = 'completed' AND completed_at < ? "
              "LIMIT ?",
        p, M8_ARRAY_LEN(p), &r);
    if (rc == 0 && removed && m8_db_affected(r) > 0)
        *removed = m8_db_affected(r);
    m8_db_result_free(r);
    return rc;
}
