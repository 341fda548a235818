/* apikey_scopes.c - the scopes of an issuer API key, the key format
 * setting and the API-key metric counters (apikey_scopes.h,
 * doc/issuer.md#api-key-scopes-and-format). */
#include "issuer/apikey_scopes.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "builtin/issuer_metrics.h"
#include "issuer/schema.h"

#define SCOPE_PATTERN "^[a-z][a-z0-9_.-]*(:[a-z][a-z0-9_.-]*){0,2}$"

static json_object *loc3(const char *field, int idx)
{
    json_object *loc = json_object_new_array();
    json_object_array_add(loc, json_object_new_string("body"));
    json_object_array_add(loc, json_object_new_string(field));
    if (idx >= 0)
        json_object_array_add(loc, json_object_new_int(idx));
    return loc;
}

static void add_error(m8_ub *b, const char *type, json_object *loc, const char *msg,
                      json_object *input, json_object *ctx)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "loc", loc);
    json_object_object_add(e, "msg", json_object_new_string(msg));
    json_object_object_add(e, "input", json_object_get(input));
    if (ctx)
        json_object_object_add(e, "ctx", ctx);
    json_object_array_add(b->errs, e);
}

json_object *m8_apikey_scopes_field(m8_ub *b)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(b->body, "scopes", &v) || json_object_is_type(v, json_type_null))
        return NULL;
    if (!json_object_is_type(v, json_type_array)) {
        add_error(b, "list_type", loc3("scopes", -1), "Input should be a valid list", v, NULL);
        return NULL;
    }
    size_t n = json_object_array_length(v);
    if (n > M8_APIKEY_MAX_SCOPES) {
        char msg[128];
        snprintf(msg, sizeof msg, "List should have at most %u items after validation, not %zu",
                 M8_APIKEY_MAX_SCOPES, n);
        json_object *ctx = json_object_new_object();
        json_object_object_add(ctx, "field_type", json_object_new_string("List"));
        json_object_object_add(ctx, "max_length", json_object_new_int((int)M8_APIKEY_MAX_SCOPES));
        json_object_object_add(ctx, "actual_length", json_object_new_int64((int64_t)n));
        add_error(b, "too_long", loc3("scopes", -1), msg, v, ctx);
        return NULL;
    }
    bool bad = false;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (!json_object_is_type(e, json_type_string)) {
            add_error(b, "string_type", loc3("scopes", (int)i), "Input should be a valid string", e,
                      NULL);
            bad = true;
            continue;
        }
        const char *s = json_object_get_string(e);
        size_t len = (size_t)json_object_get_string_len(e);
        if (strlen(s) != len || !m8_apikey_scope_valid(s, len)) {
            json_object *ctx = json_object_new_object();
            json_object_object_add(ctx, "pattern", json_object_new_string(SCOPE_PATTERN));
            add_error(b, "string_pattern_mismatch", loc3("scopes", (int)i),
                      "String should match pattern '" SCOPE_PATTERN "' (at most 64 characters)", e,
                      ctx);
            bad = true;
        }
    }
    return bad ? NULL : v;
}

int m8_apikey_scopes_insert(m8_db *db, const char *prefix, const char *idp, json_object *scopes,
                            int64_t now_us)
{
    size_t n = scopes ? json_object_array_length(scopes) : 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(scopes, i));
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(s, json_object_get_string(json_object_array_get_idx(scopes, j))) == 0;
        if (dup)
            continue;
        m8_db_param p[] = {M8_DB_TEXT(idp), M8_DB_TEXT(s), M8_DB_TIME(now_us)};
        rc = m8_issuer_exec(db, prefix,
                            "INSERT INTO {p}_api_key_scopes (api_key_id, scope, created_at) "
                            "VALUES (?, ?, ?)",
                            p, 3, NULL);
    }
    return rc;
}

static int scope_cmp(const void *x, const void *y)
{
    return strcmp(json_object_get_string(*(json_object *const *)x),
                  json_object_get_string(*(json_object *const *)y));
}

int m8_apikey_scopes_read(m8_db *db, const char *prefix, const char *idp, json_object **out)
{
    m8_db_param p = M8_DB_TEXT(idp);
    m8_db_result *r = NULL;
    *out = NULL;
    int rc = m8_issuer_exec(db, prefix,
                            "SELECT scope FROM {p}_api_key_scopes WHERE api_key_id = ? ORDER BY "
                            "scope LIMIT 64",
                            &p, 1, &r);
    if (rc != 0)
        return rc;
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < m8_db_nrows(r) && i < M8_APIKEY_MAX_SCOPES; i++) {
        size_t n = 0;
        const char *v = m8_db_get_text(r, i, 0, &n);
        if (v && m8_apikey_scope_valid(v, n)) /* a row written by hand is left out */
            json_object_array_add(a, json_object_new_string_len(v, (int)n));
    }
    m8_db_result_free(r);
    /* byte order, the same on both engines: the database's ORDER BY follows
     * the column's collation (MariaDB's utf8mb4_general_ci puts "aab"
     * before "a_b", PostgreSQL's C collation after) */
    json_object_array_sort(a, scope_cmp);
    *out = a;
    return 0;
}

static _Atomic uint64_t g_metrics[M8_AKM__COUNT];

/* The shared family and label value of each event (builtin/issuer_metrics.h). */
static const struct {
    m8_im_family family;
    unsigned value;
} g_im[M8_AKM__COUNT] = {
    [M8_AKM_VALID_SUCCESS] = {M8_IM_APIKEY_VALIDATIONS, M8_IM_AKV_SUCCESS},
    [M8_AKM_VALID_INVALID] = {M8_IM_APIKEY_VALIDATIONS, M8_IM_AKV_INVALID},
    [M8_AKM_VALID_REVOKED] = {M8_IM_APIKEY_VALIDATIONS, M8_IM_AKV_REVOKED},
    [M8_AKM_VALID_EXPIRED] = {M8_IM_APIKEY_VALIDATIONS, M8_IM_AKV_EXPIRED},
    [M8_AKM_RATE_CHECKED] = {M8_IM_APIKEY_RL_CHECKS, M8_IM_AKRL_CHECKED},
    [M8_AKM_RATE_ALLOWED] = {M8_IM_APIKEY_RL_CHECKS, M8_IM_AKRL_ALLOWED},
    [M8_AKM_RATE_BLOCKED] = {M8_IM_APIKEY_RL_CHECKS, M8_IM_AKRL_BLOCKED},
    [M8_AKM_HIT_MINUTE] = {M8_IM_APIKEY_RL_HITS, M8_IM_PERIOD_MINUTE},
    [M8_AKM_HIT_HOUR] = {M8_IM_APIKEY_RL_HITS, M8_IM_PERIOD_HOUR},
    [M8_AKM_HIT_DAY] = {M8_IM_APIKEY_RL_HITS, M8_IM_PERIOD_DAY},
    [M8_AKM_HIT_MONTH] = {M8_IM_APIKEY_RL_HITS, M8_IM_PERIOD_MONTH},
    [M8_AKM_CREATED] = {M8_IM_APIKEY_LIFECYCLE, M8_IM_AK_CREATED},
    [M8_AKM_REVOKED] = {M8_IM_APIKEY_LIFECYCLE, M8_IM_AK_REVOKED},
};

void m8_apikey_metric(m8_ak_metric m)
{
    if ((unsigned)m >= M8_AKM__COUNT)
        return;
    atomic_fetch_add_explicit(&g_metrics[m], 1, memory_order_relaxed);
    m8_im_inc(g_im[m].family, g_im[m].value);
}

uint64_t m8_apikey_metric_get(m8_ak_metric m)
{
    return (unsigned)m < M8_AKM__COUNT ? atomic_load_explicit(&g_metrics[m], memory_order_relaxed)
                                       : 0;
}
