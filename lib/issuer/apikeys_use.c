/* apikeys_use.c - using an API key (apikeys.h, doc/issuer.md#api-keys):
 * GET /profile/api-keys/verify with X-API-Key, POST
 * /private/v1/api-keys/introspect for consumers, and the quotas of a key in
 * four fixed UTC windows counted with m8_issuer_rate_hit. */
#include "issuer/apikeys.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "http/http.h"
#include "issuer/apikey_scopes.h"
#include "issuer/private.h"
#include "issuer/revoke.h"
#include "issuer/store.h"
#include "issuer/users_body.h"

#define ARENA_MAX (1u << 20)
/* The longest api_key the introspection body takes (a longer one is no
 * key this issuer made: inactive, after the anti-abuse count). */
#define INTROSPECT_KEY_MAX 4096u
#define SCHEMA_VERSION_MAX 64u

#define D_INTROSPECT_RATE "Introspection rate limit exceeded"

/* ------------------------------------------------------------ quotas */

typedef struct period {
    const char *name; /* wire and rate-key form */
    const char *db;   /* <prefix>_rate_limit.period */
    int digits;       /* of %Y%m%d%H%M the bucket keeps */
} period;

static const period PERIODS[4] = {
    {"minute", "MINUTE", 12}, {"hour", "HOUR", 10}, {"day", "DAY", 8}, {"month", "MONTH", 6}};

/* The Unix second at which the bucket of period k holding now ends. */
static int64_t bucket_end(size_t k, int64_t now, const struct tm *tm)
{
    if (k == 0)
        return now - now % 60 + 60;
    if (k == 1)
        return now - now % 3600 + 3600;
    if (k == 2)
        return now - now % 86400 + 86400;
    struct tm m;
    memset(&m, 0, sizeof m);
    m.tm_year = tm->tm_year + (tm->tm_mon == 11);
    m.tm_mon = (tm->tm_mon + 1) % 12;
    m.tm_mday = 1;
    return (int64_t)timegm(&m);
}

/* The limits of key kid (owner uid), both in the database's encoding:
 * per-key rows override per-user rows, which override the
 * API_KEY_DEFAULT_LIMIT_* settings; 0 = that period is off. */
static int limits(m8_db *db, const m8_issuer *iss, const char *kid, const char *uid, int64_t out[4])
{
    const m8_settings *s = iss->s;
    out[0] = s ? s->api_key_default_limit_minute : 60;
    out[1] = s ? s->api_key_default_limit_hour : 1000;
    out[2] = s ? s->api_key_default_limit_day : 10000;
    out[3] = s ? s->api_key_default_limit_month : 200000;
    m8_db_param p[] = {M8_DB_TEXT(kid), M8_DB_TEXT(uid)};
    m8_db_result *r = NULL;
    /* columns id, api_key_id, user_id, period, limit ("limit" is quoted
     * differently by the two engines, so SELECT *) */
    int rc = m8_issuer_exec(db, iss->prefix,
                            "SELECT * FROM {p}_rate_limit WHERE api_key_id = ? OR user_id = ?", p,
                            2, &r);
    if (rc != 0)
        return rc;
    for (int pass = 0; pass < 2; pass++) { /* user rows first, key rows win */
        for (size_t i = 0; i < m8_db_nrows(r); i++) {
            bool key_row = !m8_db_is_null(r, i, 1);
            if (key_row != (pass == 1))
                continue;
            size_t n = 0;
            const char *per = m8_db_get_text(r, i, 3, &n);
            int64_t lim = 0;
            if (!per || m8_db_get_int(r, i, 4, &lim) != 0 || lim <= 0)
                continue;
            for (size_t k = 0; k < 4; k++)
                if (strlen(PERIODS[k].db) == n && strncmp(per, PERIODS[k].db, n) == 0)
                    out[k] = lim;
        }
    }
    m8_db_result_free(r);
    return 0;
}

/* Counts one use of key key_id (8-4-4-4-12) in every enabled window,
 * finest first, stopping at the first exceeded one.  0 with the
 * X-RateLimit-* headers of the finest window set (none when every period
 * is off, or when the store is down and the posture lets the use through);
 * 1 after the 429 or the 503. */
static int quota(m8_request *req, m8_issuer *iss, m8_db *db, const char *key_id, const char *kid,
                 const char *uid)
{
    int64_t lim[4];
    int64_t now = (int64_t)time(NULL);
    int rc = limits(db, iss, kid, uid, lim);
    struct tm tm;
    time_t t = (time_t)now;
    gmtime_r(&t, &tm);
    int64_t first_limit = -1, first_count = 0, first_reset = 0;
    for (size_t k = 0; rc == 0 && k < 4; k++) {
        if (lim[k] <= 0)
            continue;
        char bucket[16], key[M8_ISSUER_RATE_KEY_MAX + 1];
        strftime(bucket, sizeof bucket, "%Y%m%d%H%M", &tm);
        int n = snprintf(key, sizeof key, "rate:api:%s:%s:%.*s", key_id, PERIODS[k].name,
                         PERIODS[k].digits, bucket);
        int64_t end = bucket_end(k, now, &tm), count = 0;
        int64_t window = end - now > 0 ? end - now : 1;
        rc = m8_issuer_rate_hit(db, iss->prefix, key, (size_t)n, window, now, &count, NULL);
        if (rc != 0)
            break;
        if (count > lim[k]) {
            m8_apikey_metric(M8_AKM_RATE_CHECKED);
            m8_apikey_metric(M8_AKM_RATE_BLOCKED);
            m8_apikey_metric((m8_ak_metric)(M8_AKM_HIT_MINUTE + k));
            char text[64], ra[24];
            snprintf(text, sizeof text, "Rate limit exceeded for period: %s", PERIODS[k].name);
            snprintf(ra, sizeof ra, "%lld", (long long)(end - now + 1 > 1 ? end - now + 1 : 1));
            m8_res_header(req, "Retry-After", ra);
            m8_log_limited("issuer.apikey.rate_limited", M8_LOG_INFO,
                           "event=api_key.rate_limited key_id=%s period=%s", key_id,
                           PERIODS[k].name);
            m8_res_error(req, 429, text);
            return 1;
        }
        if (first_limit < 0) {
            first_limit = lim[k];
            first_count = count;
            first_reset = end;
        }
    }
    if (rc != 0) {
        if (iss->s && iss->s->api_key_strict_rate_limit) {
            m8_log_limited("issuer.apikey.rate.down", M8_LOG_WARNING,
                           "issuer: API-key quota store unavailable (error %d): refused", rc);
            m8_res_error(req, 503, M8_APIKEY_D_RATE_DOWN);
            return 1;
        }
        m8_log_limited("issuer.apikey.rate.skipped", M8_LOG_WARNING,
                       "issuer: API-key quota skipped, the store is unavailable (unsafe: "
                       "API_KEY_STRICT_RATE_LIMIT is off)");
        return 0;
    }
    m8_apikey_metric(M8_AKM_RATE_CHECKED);
    m8_apikey_metric(M8_AKM_RATE_ALLOWED);
    if (first_limit >= 0) {
        char v[24];
        snprintf(v, sizeof v, "%lld", (long long)first_limit);
        m8_res_header(req, "X-RateLimit-Limit", v);
        snprintf(v, sizeof v, "%lld",
                 (long long)(first_limit > first_count ? first_limit - first_count : 0));
        m8_res_header(req, "X-RateLimit-Remaining", v);
        snprintf(v, sizeof v, "%lld", (long long)first_reset);
        m8_res_header(req, "X-RateLimit-Reset", v);
    }
    return 0;
}

/* last_used_at, only ever moved forward (a failure is logged: the use is
 * already admitted). */
static void touch(m8_db *db, const m8_issuer *iss, const char *kid)
{
    int64_t now = m8_db_now();
    m8_db_param p[] = {M8_DB_TIME(now), M8_DB_TEXT(kid), M8_DB_TIME(now)};
    int rc = m8_issuer_exec(db, iss->prefix,
                            "UPDATE {p}_api_key SET last_used_at = ? WHERE id = ? AND "
                            "(last_used_at IS NULL OR last_used_at < ?)",
                            p, 3, NULL);
    if (rc != 0)
        m8_log_limited("issuer.apikey.touch", M8_LOG_WARNING,
                       "issuer: API key last_used_at not written (error %d)", rc);
}

/* ------------------------------------------------------------ lookup */

typedef struct found_key {
    m8_db_result *r; /* one row of SELECT M8_APIKEY_COLS */
    char id[M8_UUID_STR_LEN + 1], kid[M8_UUID_STR_LEN + 1];
    char owner[M8_UUID_STR_LEN + 1], uid[M8_UUID_STR_LEN + 1];
    int64_t expires_us; /* 0 = never */
    m8_ak_metric why;   /* an unusable key: invalid, revoked or expired */
} found_key;

/* The usable key whose plaintext is key: 0 (fk->r owned by the caller),
 * M8_ENOTFOUND for an unknown, revoked or expired key, or a database
 * error. */
static int lookup(m8_db *db, const m8_issuer *iss, const char *key, size_t len, found_key *fk)
{
    memset(fk, 0, sizeof *fk);
    char hash[M8_APIKEY_HASH_LEN + 1];
    m8_apikey_hash(key, len, hash);
    m8_db_param p = M8_DB_TEXT(hash);
    int rc = m8_issuer_exec(db, iss->prefix,
                            "SELECT " M8_APIKEY_COLS " FROM {p}_api_key WHERE key_hash = ?", &p, 1,
                            &fk->r);
    if (rc != 0)
        return rc;
    int revoked = 1;
    int64_t exp = 0;
    fk->why = M8_AKM_VALID_INVALID;
    bool usable = m8_db_nrows(fk->r) == 1 &&
                  m8_db_get_bool(fk->r, 0, M8_AK_REVOKED, &revoked) == 0 && !revoked &&
                  m8_issuer_id_text(fk->r, 0, M8_AK_ID, fk->id) &&
                  m8_issuer_id_text(fk->r, 0, M8_AK_USER, fk->owner);
    if (m8_db_nrows(fk->r) == 1 && revoked)
        fk->why = M8_AKM_VALID_REVOKED;
    if (usable && m8_db_get_time(fk->r, 0, M8_AK_EXPIRES, &exp) == 0) {
        usable = exp > m8_db_now();
        fk->expires_us = exp;
        fk->why = usable ? fk->why : M8_AKM_VALID_EXPIRED;
    }
    if (!usable) {
        m8_db_result_free(fk->r);
        fk->r = NULL;
        return M8_ENOTFOUND;
    }
    m8_issuer_uuid_param(db, fk->id, fk->kid);
    m8_issuer_uuid_param(db, fk->owner, fk->uid);
    return 0;
}

/* The key's owner, live: 0 with *u filled (strings in a), M8_ENOTFOUND for
 * an owner missing, inactive or with an inconsistent role/superuser pair. */
static int owner_live(m8_db *db, const m8_issuer *iss, m8_arena *a, const found_key *fk,
                      m8_issuer_user *u)
{
    int rc = m8_issuer_user_by_id(db, iss->prefix, a, fk->owner, false, u);
    if (rc != 0)
        return rc;
    bool su_role = strcmp(u->role, "superadmin") == 0;
    return u->is_active && u->is_superuser == su_role ? 0 : M8_ENOTFOUND;
}

/* ------------------------------------------------------------ verify */

int m8_issuer_h_apikeys_verify(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    const char *key = m8_req_header(req, "X-API-Key");
    if (!key) {
        json_object *errs = json_object_new_array(), *e = json_object_new_object();
        json_object *loc = json_object_new_array();
        json_object_array_add(loc, json_object_new_string("header"));
        json_object_array_add(loc, json_object_new_string("x-api-key"));
        json_object_object_add(e, "type", json_object_new_string("missing"));
        json_object_object_add(e, "loc", loc);
        json_object_object_add(e, "msg", json_object_new_string("Field required"));
        json_object_object_add(e, "input", NULL);
        json_object_array_add(errs, e);
        return m8_ub_unprocessable(req, errs);
    }
    /* a mistyped or truncated m8 key: refused before any database access
     * (doc/issuer.md#api-key-scopes-and-format) */
    if (m8_apikey_shape_refused(m8_apikey_shape_of(key, strlen(key)))) {
        m8_apikey_metric(M8_AKM_VALID_INVALID);
        m8_log_limited("issuer.apikey.malformed", M8_LOG_INFO,
                       "event=api_key.malformed route=verify (checksum or length, no lookup)");
        return m8_res_error(req, 401, M8_APIKEY_D_INVALID);
    }
    m8_db *db = m8_req_db(req);
    if (!db)
        return m8_issuer_fail(req, NULL, M8_EAGAIN, "no database");
    found_key fk;
    int rc = lookup(db, iss, key, strlen(key), &fk);
    if (rc == M8_ENOTFOUND) {
        m8_apikey_metric(fk.why);
        return m8_res_error(req, 401, M8_APIKEY_D_INVALID);
    }
    if (rc != 0)
        return m8_issuer_fail(req, db, rc, "looking up an API key");
    m8_arena a;
    m8_arena_init(&a, ARENA_MAX);
    m8_issuer_user u;
    rc = owner_live(db, iss, &a, &fk, &u);
    m8_arena_free(&a);
    if (rc != 0) {
        m8_db_result_free(fk.r);
        if (rc == M8_ENOTFOUND)
            m8_apikey_metric(M8_AKM_VALID_INVALID);
        return rc == M8_ENOTFOUND ? m8_res_error(req, 401, M8_APIKEY_D_INVALID)
                                  : m8_issuer_fail(req, db, rc, "reading an API key's owner");
    }
    if (quota(req, iss, db, fk.id, fk.kid, fk.uid) != 0) {
        m8_db_result_free(fk.r);
        return 0;
    }
    m8_apikey_metric(M8_AKM_VALID_SUCCESS);
    touch(db, iss, fk.kid);
    json_object *o = m8_apikey_public(db, iss->prefix, fk.r, 0, &rc);
    m8_db_result_free(fk.r);
    if (!o)
        return m8_issuer_fail(req, db, rc, "reading an API key");
    return m8_res_json(req, 200, o);
}

/* ------------------------------------------------------------ introspect */

static int inactive(m8_request *req)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "active", json_object_new_boolean(0));
    json_object_object_add(o, "schema_version", json_object_new_string("1"));
    return m8_res_json(req, 200, o);
}

static int unavailable(m8_request *req, int rc, const char *what)
{
    m8_log_limited("issuer.apikey.introspect", M8_LOG_WARNING,
                   "issuer: api-keys/introspect: %s: error %d", what, rc);
    return m8_res_error(req, 503, M8_PRIVATE_DETAIL_INTROSPECTION_DOWN);
}

/* The consumer's allowance per UTC minute: 0 to go on, 1 after the 429 or
 * the strict 503. */
static int antiabuse(m8_request *req, m8_issuer *iss, m8_db *db, const char *consumer)
{
    int64_t now = (int64_t)time(NULL), count = 0;
    long long lim = iss->s ? iss->s->api_key_introspection_antiabuse_per_minute : 600;
    struct tm tm;
    time_t t = (time_t)now;
    gmtime_r(&t, &tm);
    char bucket[16], key[M8_ISSUER_RATE_KEY_MAX + 1];
    strftime(bucket, sizeof bucket, "%Y%m%d%H%M", &tm);
    int n = snprintf(key, sizeof key, "introspect:antiabuse:%s:%s", consumer, bucket);
    int64_t window = now - now % 60 + 60 - now;
    int rc = n > 0 && (size_t)n < sizeof key
                 ? m8_issuer_rate_hit(db, iss->prefix, key, (size_t)n, window, now, &count, NULL)
                 : M8_EINVAL;
    if (rc != 0) {
        if (iss->s && iss->s->api_key_strict_rate_limit) {
            unavailable(req, rc, "anti-abuse counter");
            return 1;
        }
        m8_log_limited("issuer.apikey.antiabuse.skipped", M8_LOG_WARNING,
                       "issuer: introspection anti-abuse counter skipped (error %d)", rc);
        return 0;
    }
    if (count > lim) {
        m8_res_header(req, "Retry-After", "60");
        m8_res_error(req, 429, D_INTROSPECT_RATE);
        return 1;
    }
    return 0;
}

/* The request model {"api_key": str, "schema_version": str | null}: 0, or
 * -1 after the 422. */
static int read_body(m8_request *req, const char **key, const char **version)
{
    *key = *version = NULL;
    if (m8_req_parse_json(req) != 0)
        return -1;
    m8_ub b;
    if (m8_ub_begin(req, &b) != 0)
        return -1;
    m8_ub_str(&b, "api_key", 0, INTROSPECT_KEY_MAX, false, true, key);
    m8_ub_str(&b, "schema_version", 0, SCHEMA_VERSION_MAX, true, false, version);
    return m8_ub_end(&b);
}

static int active(m8_request *req, const char *consumer, const m8_issuer_user *u, const char *mode,
                  int64_t expires_us, json_object *scopes)
{
    char t[40];
    json_object *o = json_object_new_object(), *p = json_object_new_object();
    json_object_object_add(o, "active", json_object_new_boolean(1));
    json_object_object_add(o, "schema_version", json_object_new_string("1"));
    json_object_object_add(o, "audience_id", json_object_new_string(consumer));
    json_object_object_add(p, "user_id", json_object_new_string(u->id));
    json_object_object_add(p, "role", json_object_new_string(u->role));
    json_object_object_add(p, "is_superuser", json_object_new_boolean(u->is_superuser));
    json_object_object_add(p, "access_mode", json_object_new_string(mode));
    json_object_object_add(p, "authentication_method", json_object_new_string("api_key"));
    json_object_object_add(p, "auth_generation", json_object_new_int64(u->auth_generation));
    /* a scoped key only: consumers read a missing member as no scopes */
    if (scopes && json_object_array_length(scopes) > 0)
        json_object_object_add(p, "scopes", json_object_get(scopes));
    json_object_object_add(o, "principal", p);
    json_object_object_add(o, "key_expires_at",
                           expires_us && m8_db_format_time(expires_us, t, sizeof t) == 0
                               ? json_object_new_string(t)
                               : NULL);
    return m8_res_json(req, 200, o);
}

int m8_issuer_h_apikeys_introspect(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    m8_private_caller who;
    const char *key = NULL, *version = NULL;
    /* decision I6 (doc/issuer.md#api-keys): the consumer first, then the body */
    if (m8_issuer_private_auth(req, M8_SCOPE_API_KEY_INTROSPECTION, &who) != 0 ||
        read_body(req, &key, &version) != 0)
        return 0;
    if (version && strcmp(version, "1") != 0)
        return unavailable(req, 0, "unsupported schema_version");
    /* a mistyped or truncated m8 key: inactive before any database access
     * (doc/issuer.md#api-key-scopes-and-format) */
    if (m8_apikey_shape_refused(m8_apikey_shape_of(key, strlen(key)))) {
        m8_apikey_metric(M8_AKM_VALID_INVALID);
        return inactive(req);
    }
    m8_db *db = m8_req_db(req);
    if (!db)
        return unavailable(req, M8_EAGAIN, "no database");
    if (antiabuse(req, iss, db, who.id) != 0)
        return 0;
    found_key fk;
    int rc = lookup(db, iss, key, strlen(key), &fk);
    if (rc == M8_ENOTFOUND) {
        m8_apikey_metric(fk.why);
        return inactive(req);
    }
    if (rc != 0)
        return unavailable(req, rc, "key lookup");
    m8_arena a;
    m8_arena_init(&a, ARENA_MAX);
    m8_issuer_user u;
    rc = owner_live(db, iss, &a, &fk, &u);
    int out = -1;
    if (rc == M8_ENOTFOUND) {
        m8_apikey_metric(M8_AKM_VALID_INVALID);
        out = inactive(req);
    } else if (rc != 0)
        out = unavailable(req, rc, "owner");
    m8_db_result *ar = NULL;
    m8_db_param ap[] = {M8_DB_TEXT(fk.kid), M8_DB_TEXT(who.id)};
    if (out < 0) {
        rc = m8_issuer_exec(db, iss->prefix,
                            "SELECT audience_id FROM {p}_api_key_audiences WHERE api_key_id = ? "
                            "AND audience_id = ?",
                            ap, 2, &ar);
        /* the ids compared again byte for byte: MariaDB's utf8mb4_general_ci
         * finds "item-service" for a consumer "Item-Service" */
        bool bound = false;
        for (size_t i = 0; rc == 0 && i < m8_db_nrows(ar) && !bound; i++) {
            size_t n = 0;
            const char *v = m8_db_get_text(ar, i, 0, &n);
            bound = v && n == strlen(who.id) && memcmp(v, who.id, n) == 0;
        }
        if (rc != 0)
            out = unavailable(req, rc, "audiences");
        else if (!bound)
            out = inactive(req);
        m8_db_result_free(ar);
    }
    if (out < 0 && quota(req, iss, db, fk.id, fk.kid, fk.uid) != 0)
        out = 0;
    json_object *scopes = NULL;
    if (out < 0 && (rc = m8_apikey_scopes_read(db, iss->prefix, fk.kid, &scopes)) != 0)
        out = unavailable(req, rc, "scopes");
    if (out < 0) {
        m8_apikey_metric(M8_AKM_VALID_SUCCESS);
        touch(db, iss, fk.kid);
        out = active(req, who.id, &u, m8_apikey_mode(fk.r, 0), fk.expires_us, scopes);
    }
    json_object_put(scopes);
    m8_arena_free(&a);
    m8_db_result_free(fk.r);
    return out;
}
