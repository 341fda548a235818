/* apikey.c - the API-key principal through the issuer's introspection
 * (apikey.h): names, capabilities, parsing the answer and the order of the
 * checks; the object, breaker, slots and the call are in apikey_client.c. */
#include "auth/apikey_int.h"

#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/apikey_format.h"
#include "auth/privauth.h"
#include "core/isotime.h"
#include "core/json.h"
#include "core/log.h"
#include "net/httpc.h"

#define DETAIL_401 "Invalid or expired API key"
#define DETAIL_403 "The user doesn't have enough privileges"
#define DETAIL_429 "API key rate limit exceeded"
#define DETAIL_503 "API key verification unavailable."

/* ------------------------------------------------------------ names */

const char *m8_apikey_reason_name(m8_apikey_reason r)
{
    switch (r) {
    case M8_AK_OK: return "ok";
    case M8_AK_MISSING: return "missing";
    case M8_AK_TOO_LONG: return "key_too_long";
    case M8_AK_INACTIVE: return "inactive";
    case M8_AK_QUOTA_EXCEEDED: return "quota_exceeded";
    case M8_AK_CIRCUIT_OPEN: return "circuit_open";
    case M8_AK_LOAD_SHED: return "load_shed";
    case M8_AK_TRANSPORT: return "transport";
    case M8_AK_RESPONSE_TOO_LARGE: return "response_too_large";
    case M8_AK_CONSUMER_UNAUTHORIZED: return "consumer_unauthorized";
    case M8_AK_ISSUER_UNAVAILABLE: return "issuer_unavailable";
    case M8_AK_UNEXPECTED_STATUS: return "unexpected_status";
    case M8_AK_MALFORMED_RESPONSE: return "malformed_response";
    case M8_AK_AUDIENCE_MISMATCH: return "audience_mismatch";
    case M8_AK_INTERNAL: return "internal";
    case M8_AK_INSUFFICIENT_CAPABILITY: return "insufficient_capability";
    case M8_AK_MALFORMED_KEY: return "malformed_key";
    case M8_AK_MISSING_SCOPE: return "missing_scope";
    }
    return "unknown";
}

const char *m8_apikey_need_role(m8_apikey_need need)
{
    switch (need) {
    case M8_APIKEY_READER: return "reader";
    case M8_APIKEY_WRITER: return "writer";
    case M8_APIKEY_PRINCIPAL: break;
    }
    return NULL;
}

/* ------------------------------------------------------------ capability */

/* Position in the hierarchy of doc/wire.md#roles (0 = highest), -1 when unknown. */
static int role_rank(const char *r)
{
    static const char *const roles[] = {"superadmin", "admin", "writer", "reader", "user"};
    for (int i = 0; r && i < (int)M8_ARRAY_LEN(roles); i++) {
        if (strcmp(r, roles[i]) == 0)
            return i;
    }
    return -1;
}

#define RANK_WRITER 2

/* The role/superuser truth table of doc/wire.md#claims-model. */
static bool role_consistent(int rank, bool is_superuser)
{
    return rank >= 0 && (rank == 0) == is_superuser;
}

int m8_apikey_has_capability(const char *role, bool is_superuser, const char *access_mode,
                             const char *required_role)
{
    int need = role_rank(required_role);
    if (need < RANK_WRITER) /* above writer, or unknown */
        return M8_EINVAL;
    int have = role_rank(role);
    if (!role_consistent(have, is_superuser))
        return 0;
    if (have > need)
        return 0;
    if (need == RANK_WRITER)
        return access_mode && strcmp(access_mode, "read_write") == 0;
    return 1;
}

const char *m8_apikey_audit_route(const char *method, const char *path, const char *need_role,
                                  const char *const *exempt, char *buf, size_t buflen)
{
    const char *m = method ? method : "?";
    const char *p = path ? path : "?";
    if (need_role) {
        int r = role_rank(need_role);
        if (r >= 0 && r < RANK_WRITER) {
            snprintf(buf, buflen,
                     "route %s %s requires an API key with role %s: API keys grant at most "
                     "the writer capability (there is no API-key admin or superuser "
                     "requirement, doc/wire.md#capabilities)",
                     m, p, need_role);
            return buf;
        }
        if (r != RANK_WRITER && r != RANK_WRITER + 1) {
            snprintf(buf, buflen,
                     "route %s %s requires an API key with role \"%s\": only reader and "
                     "writer exist for API keys (doc/wire.md#capabilities)",
                     m, p, need_role);
            return buf;
        }
        return NULL;
    }
    for (size_t i = 0; exempt && exempt[i]; i++) {
        if (path && strcmp(exempt[i], path) == 0)
            return NULL;
    }
    snprintf(buf, buflen,
             "route %s %s is wired to the bare API-key principal, which proves only that a key "
             "resolves and grants no capability; require the API-key reader or writer "
             "capability instead, or exempt the path (doc/wire.md#capabilities and "
             "doc/responses.md#api-key-failures)",
             m, p);
    return buf;
}

/* ------------------------------------------------------------ parsing */

/* The text of a string member (*present: the member exists).  NULL when
 * absent, of another type, or holding an embedded NUL. */
static const char *get_str(json_object *o, const char *name, bool *present)
{
    json_object *v;
    *present = json_object_object_get_ex(o, name, &v);
    if (!*present || !json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return NULL;
    return s;
}

#define BAD(msg)                                                                                   \
    do {                                                                                           \
        *why = (msg);                                                                              \
        rc = M8_EPARSE;                                                                            \
        goto done;                                                                                 \
    } while (0)

int m8_apikey_parse(const char *body, size_t len, m8_arena *a, bool *active, m8_apikey_principal *p,
                    const char **why)
{
    static const char *none = "";
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = none;
    *active = false;
    memset(p, 0, sizeof *p);
    int rc = 0;
    json_object *o = m8_json_parse(body ? body : "", len, M8_APIKEY_JSON_DEPTH, NULL, NULL);
    json_object *v, *pr;
    bool present;
    if (!o || !json_object_is_type(o, json_type_object))
        BAD("the answer is not a JSON object");
    const char *ver = get_str(o, "schema_version", &present);
    if (present && (!ver || strcmp(ver, "1") != 0))
        BAD("schema_version is not \"1\"");
    if (!json_object_object_get_ex(o, "active", &v) || !json_object_is_type(v, json_type_boolean))
        BAD("active is missing or not a boolean");
    if (!json_object_get_boolean(v))
        goto done; /* inactive: one shape, extra members ignored */

    const char *aud = get_str(o, "audience_id", &present);
    if (!aud || !*aud)
        BAD("audience_id is missing or not a non-empty string");
    if (!json_object_object_get_ex(o, "principal", &pr) ||
        !json_object_is_type(pr, json_type_object))
        BAD("principal is missing or not an object");
    const char *uid = get_str(pr, "user_id", &present);
    if (!uid || !*uid)
        BAD("principal.user_id is missing or not a non-empty string");
    const char *role = get_str(pr, "role", &present);
    int rank = role_rank(role);
    if (rank < 0)
        BAD("principal.role is not one of the five roles");
    bool su = false;
    if (json_object_object_get_ex(pr, "is_superuser", &v)) {
        if (!json_object_is_type(v, json_type_boolean))
            BAD("principal.is_superuser is not a boolean");
        su = json_object_get_boolean(v);
    }
    if (!role_consistent(rank, su))
        BAD("principal role and is_superuser are inconsistent");
    const char *mode = get_str(pr, "access_mode", &present);
    if (!mode || (strcmp(mode, "read_only") != 0 && strcmp(mode, "read_write") != 0))
        BAD("principal.access_mode is not read_only or read_write");
    const char *method = get_str(pr, "authentication_method", &present);
    if (present && (!method || strcmp(method, "api_key") != 0))
        BAD("principal.authentication_method is not api_key");
    if (!json_object_object_get_ex(pr, "auth_generation", &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1)
        BAD("principal.auth_generation is not an integer >= 1");
    long long gen = (long long)json_object_get_int64(v);
    /* principal.scopes: optional, a list of valid scopes (an issuer that
     * sends none, as fa-auth-m8, gives an unscoped key) */
    const char *scopes[M8_APIKEY_MAX_SCOPES];
    size_t nsc = 0;
    if (json_object_object_get_ex(pr, "scopes", &v) && v != NULL) {
        if (!json_object_is_type(v, json_type_array) ||
            json_object_array_length(v) > M8_APIKEY_MAX_SCOPES)
            BAD("principal.scopes is not a list of at most 16 scopes");
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *e = json_object_array_get_idx(v, i);
            if (!json_object_is_type(e, json_type_string) ||
                !m8_apikey_scope_valid(json_object_get_string(e),
                                       (size_t)json_object_get_string_len(e)))
                BAD("principal.scopes holds a value that is not a valid scope");
            scopes[nsc++] = json_object_get_string(e);
        }
    }
    const char *expires = NULL;
    int64_t exp_us = 0;
    if (json_object_object_get_ex(o, "key_expires_at", &v) && v != NULL) {
        expires = get_str(o, "key_expires_at", &present);
        if (!expires || m8_iso_time_parse(expires, strlen(expires), false, &exp_us) != 0)
            BAD("key_expires_at is not an ISO-8601 date-time or null");
    }
    p->user_id = m8_arena_strdup(a, uid);
    p->role = m8_arena_strdup(a, role);
    p->access_mode = m8_arena_strdup(a, mode);
    p->audience_id = m8_arena_strdup(a, aud);
    p->key_expires_at = expires ? m8_arena_strdup(a, expires) : NULL;
    if (!p->user_id || !p->role || !p->access_mode || !p->audience_id ||
        (expires && !p->key_expires_at)) {
        rc = M8_ENOMEM;
        *why = "out of memory";
        goto done;
    }
    if (nsc) {
        p->scopes = m8_arena_alloc(a, nsc * sizeof *p->scopes);
        for (size_t i = 0; p->scopes && i < nsc; i++) {
            p->scopes[i] = m8_arena_strdup(a, scopes[i]);
            if (!p->scopes[i])
                p->scopes = NULL;
        }
        if (!p->scopes) {
            rc = M8_ENOMEM;
            *why = "out of memory";
            goto done;
        }
        p->n_scopes = nsc;
    }
    p->is_superuser = su;
    p->auth_generation = gen;
    p->key_expires_ts = (double)exp_us / 1e6;
    p->can_read = m8_apikey_has_capability(role, su, mode, "reader") == 1;
    p->can_write = m8_apikey_has_capability(role, su, mode, "writer") == 1;
    *active = true;
done:
    if (rc)
        memset(p, 0, sizeof *p);
    json_object_put(o);
    return rc;
}

#undef BAD

static const char *detail_for(int status)
{
    switch (status) {
    case 401: return DETAIL_401;
    case 403: return DETAIL_403;
    case 429: return DETAIL_429;
    default: return DETAIL_503;
    }
}

static int status_for(m8_apikey_reason r)
{
    switch (r) {
    case M8_AK_OK: return 0;
    case M8_AK_MISSING:
    case M8_AK_TOO_LONG:
    case M8_AK_MALFORMED_KEY:
    case M8_AK_INACTIVE: return 401;
    case M8_AK_QUOTA_EXCEEDED: return 429;
    case M8_AK_MISSING_SCOPE:
    case M8_AK_INSUFFICIENT_CAPABILITY: return 403;
    default: return 503;
    }
}

/* Sets the answer for r and writes its one log line (text: an error text
 * for the log, never a secret; may be NULL). */
static bool refuse(m8_apikey *k, m8_apikey_answer *ans, m8_apikey_reason r, const char *text)
{
    atomic_fetch_add(&k->refusals, 1);
    ans->reason = r;
    ans->status = status_for(r);
    ans->detail = detail_for(ans->status);
    memset(&ans->principal, 0, sizeof ans->principal);
    if (ans->status != 429)
        ans->retry_after[0] = '\0';
    m8_log_level lvl = M8_LOG_WARNING;
    if (ans->status == 401 || ans->status == 403 || ans->status == 429)
        lvl = M8_LOG_INFO;
    else if (r == M8_AK_CONSUMER_UNAUTHORIZED || r == M8_AK_AUDIENCE_MISMATCH ||
             r == M8_AK_INTERNAL)
        lvl = M8_LOG_ERROR;
    char key[64]; /* lines are rate-limited per reason; k->refusals counts every one */
    snprintf(key, sizeof key, "api_key.refused.%s", m8_apikey_reason_name(r));
    if (!m8_log_limit_take(key, lvl))
        return false;
    m8_buf f;
    m8_buf_init(&f, 2048);
    m8_buf_printf(&f, "\"reason\":\"%s\",\"status\":%d", m8_apikey_reason_name(r), ans->status);
    if (ans->issuer_status)
        m8_buf_printf(&f, ",\"issuer_status\":%ld", ans->issuer_status);
    if (r == M8_AK_AUDIENCE_MISMATCH) {
        m8_buf_puts(&f, ",\"expected_audience\":");
        m8_buf_json_str(&f, k->audience, strlen(k->audience));
    }
    if (text && *text) {
        m8_buf_puts(&f, ",\"error\":");
        m8_buf_json_str(&f, text, strlen(text));
    }
    m8_log_fields(lvl, "api_key.refused", f.data);
    m8_buf_free(&f);
    return false;
}

/* A Retry-After value worth passing on: non-empty, printable ASCII. */
static void keep_retry_after(m8_apikey_answer *ans, const char *v)
{
    ans->retry_after[0] = '\0';
    size_t n = strlen(v);
    if (n == 0 || n >= sizeof ans->retry_after)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c >= 0x7f)
            return;
    }
    memcpy(ans->retry_after, v, n + 1);
}

/* Rows 3-13 for a call that holds a slot. */
static bool introspect(m8_apikey *k, const char *key, size_t len, m8_apikey_need need, double now,
                       m8_arena *a, m8_apikey_answer *ans)
{
    double t0 = m8_now_mono();
    m8_privauth_hdrs h;
    m8_privauth_error pe;
    int rc = m8_privauth_headers(k->auth, t0, &h, &pe);
    if (rc) {
        ans->issuer_status = pe.status;
        switch (pe.kind) {
        case M8_EIO:
            m8__apikey_breaker_failure(k, now + (m8_now_mono() - t0));
            return refuse(k, ans, M8_AK_TRANSPORT, pe.msg);
        case M8_ECONFIG: return refuse(k, ans, M8_AK_CONSUMER_UNAUTHORIZED, pe.msg);
        case M8_EPARSE: return refuse(k, ans, M8_AK_MALFORMED_RESPONSE, pe.msg);
        default: return refuse(k, ans, M8_AK_INTERNAL, pe.msg);
        }
    }
    uint64_t gen = h.generation;
    m8_http_result res;
    rc = m8__apikey_call(k, &h, key, len, &res);
    m8_privauth_hdrs_clear(&h);
    double later = now + (m8_now_mono() - t0);

    if (rc == M8_ETOOBIG) { /* row 4 */
        m8_buf_free(&res.body);
        return refuse(k, ans, M8_AK_RESPONSE_TOO_LARGE, res.error);
    }
    if (rc == M8_EIO) { /* row 3 */
        m8_buf_free(&res.body);
        m8__apikey_breaker_failure(k, later);
        return refuse(k, ans, M8_AK_TRANSPORT, res.error);
    }
    if (rc) {
        m8_buf_free(&res.body);
        return refuse(k, ans, M8_AK_INTERNAL, res.error);
    }
    long st = res.status;
    ans->issuer_status = st;
    if (st == 429) { /* row 5 */
        m8_buf_free(&res.body);
        keep_retry_after(ans, res.header);
        return refuse(k, ans, M8_AK_QUOTA_EXCEEDED, NULL);
    }
    if (st == 401 || st == 403) { /* row 6 */
        m8_buf_free(&res.body);
        m8_privauth_invalidate(k->auth, gen);
        return refuse(k, ans, M8_AK_CONSUMER_UNAUTHORIZED,
                      st == 401 ? "the issuer refused our private-API credential"
                                : "the credential lacks the api-key-introspection scope");
    }
    if (st >= 500) { /* row 7 */
        m8_buf_free(&res.body);
        m8__apikey_breaker_failure(k, later);
        return refuse(k, ans, M8_AK_ISSUER_UNAVAILABLE, NULL);
    }
    if (st != 200) { /* row 8 */
        m8_buf_free(&res.body);
        m8__apikey_breaker_failure(k, later);
        return refuse(k, ans, M8_AK_UNEXPECTED_STATUS, NULL);
    }
    bool active = false;
    const char *why = NULL;
    rc = m8_apikey_parse(res.body.data, res.body.len, a, &active, &ans->principal, &why);
    m8_buf_free(&res.body);
    if (rc == M8_ENOMEM)
        return refuse(k, ans, M8_AK_INTERNAL, why);
    if (rc) /* row 9 */
        return refuse(k, ans, M8_AK_MALFORMED_RESPONSE, why);
    m8__apikey_breaker_success(k); /* row 10 */
    if (!active)                   /* row 11 */
        return refuse(k, ans, M8_AK_INACTIVE, NULL);
    if (strcmp(ans->principal.audience_id, k->audience) != 0) /* row 12 */
        return refuse(k, ans, M8_AK_AUDIENCE_MISMATCH, NULL);
    /* row 13, then doc/wire.md#capabilities */
    const m8_apikey_principal *p = &ans->principal;
    if ((need == M8_APIKEY_READER && !p->can_read) || (need == M8_APIKEY_WRITER && !p->can_write))
        return refuse(k, ans, M8_AK_INSUFFICIENT_CAPABILITY, NULL);
    unsigned char fp[crypto_generichash_BYTES];
    crypto_generichash(fp, sizeof fp, (const unsigned char *)key, len, NULL, 0);
    memcpy(ans->principal.key_id, "ak_", 3);
    sodium_bin2hex(ans->principal.key_id + 3, sizeof ans->principal.key_id - 3, fp, 8);
    ans->status = 0;
    ans->reason = M8_AK_OK;
    ans->detail = NULL;
    return true;
}

bool m8_apikey_resolve(m8_apikey *k, const char *key, size_t len, m8_apikey_need need, double now,
                       m8_arena *a, m8_apikey_answer *ans)
{
    memset(ans, 0, sizeof *ans);
    atomic_fetch_add(&k->resolutions, 1);
    if (!key || len == 0)
        return refuse(k, ans, M8_AK_MISSING, NULL);
    if (len > M8_APIKEY_MAX_KEY_BYTES)
        return refuse(k, ans, M8_AK_TOO_LONG, NULL);
    /* a mistyped or truncated m8 key never reaches the issuer */
    if (m8_apikey_shape_refused(m8_apikey_shape_of(key, len)))
        return refuse(k, ans, M8_AK_MALFORMED_KEY, NULL);
    if (!m8__apikey_breaker_admit(k, now))
        return refuse(k, ans, M8_AK_CIRCUIT_OPEN, NULL);
    if (!m8__apikey_slot_take(k))
        return refuse(k, ans, M8_AK_LOAD_SHED, NULL);
    bool ok = introspect(k, key, len, need, now, a, ans);
    m8__apikey_slot_give(k);
    return ok;
}
/* ------------------------------------------------------------ scopes */

bool m8_apikey_has_scope(const m8_apikey_principal *p, const char *scope)
{
    for (size_t i = 0; p && scope && i < p->n_scopes; i++) {
        if (strcmp(p->scopes[i], scope) == 0)
            return true;
    }
    return false;
}

bool m8_apikey_require_scope(m8_apikey *k, m8_apikey_answer *ans, const char *scope)
{
    if (!scope || m8_apikey_has_scope(&ans->principal, scope))
        return true;
    refuse(k, ans, M8_AK_MISSING_SCOPE, scope);
    snprintf(ans->scope_detail, sizeof ans->scope_detail,
             "The API key lacks the required scope: %.64s", scope);
    ans->detail = ans->scope_detail;
    return false;
}
