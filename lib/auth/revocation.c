/* revocation.c - the revocation check of a stateful consumer (revocation.h). */
#include "auth/revocation.h"

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/privauth.h"
#include "auth/revtable.h"
#include "core/json.h"
#include "core/log.h"
#include "net/httpc.h"
#include "shm/shm.h"

#define CALL_CONNECT_S 2.0
#define CALL_TOTAL_S 5.0
#define MAX_TTL_S (365.0 * 86400.0)
#define MAX_BODY_BYTES 65536u /* the request body: two ids escaped */

struct m8_revocation {
    m8_shm *shm;
    m8_shm *own_shm; /* a private segment made here when none was given */
    m8_privauth *auth;
    char *url;
    double ttl;
    bool fail_open; /* the effective mode (doc/wire.md#jti-status-outcomes) */
    double connect_s, total_s;
    atomic_ulong calls;
    _Atomic long long log_second; /* rate limit of failure logs */
    atomic_ulong log_suppressed;
};

/* What one jti-status exchange said. */
typedef enum {
    OUT_ACTIVE,
    OUT_INACTIVE,
    OUT_DECISION,  /* malformed answer, other schema, subject mismatch: 503 always */
    OUT_CONFIG,    /* 4xx / 3xx / refused exchange / local failure: 503 always
                      (doc/wire.md#jti-status-outcomes) */
    OUT_TRANSPORT, /* connect, timeout, reset, 5xx: fail_open may apply */
} outcome;

bool m8_revocation_wanted(const m8_settings *s)
{
    return s && s->token_mode == M8_MODE_STATEFUL && s->auth_service_role == M8_ROLE_CONSUMER;
}

m8_revocation *m8_revocation_new(const m8_settings *s, m8_shm *shm, char *err, size_t errlen)
{
    if (!m8_revocation_wanted(s)) {
        snprintf(err, errlen, "revocation: only a stateful consumer checks revocation");
        return NULL;
    }
    if (!s->introspection_url || !*s->introspection_url) {
        snprintf(err, errlen, "CONFIG: Stateful consumer requires INTROSPECTION_URL");
        return NULL;
    }
    m8_revocation *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "revocation: out of memory");
        return NULL;
    }
    r->auth = m8_privauth_new(s, "introspection", err, errlen);
    if (!r->auth) {
        free(r);
        return NULL;
    }
    r->url = strdup(s->introspection_url);
    if (!shm)
        shm = r->own_shm = m8_shm_private();
    if (!r->url || !shm) {
        snprintf(err, errlen, "revocation: out of memory");
        m8_revocation_free(r);
        return NULL;
    }
    r->shm = shm;
    m8_revtable_init(shm);
    double ttl = (double)s->revocation_cache_ttl_seconds;
    r->ttl = ttl > 0 ? (ttl > MAX_TTL_S ? MAX_TTL_S : ttl) : 0;
    r->fail_open = !s->auth_strict_mode && s->access_revocation_failure_mode == M8_FAIL_OPEN;
    r->connect_s = CALL_CONNECT_S;
    r->total_s = CALL_TOTAL_S;
    return r;
}

void m8_revocation_free(m8_revocation *r)
{
    if (!r)
        return;
    m8_privauth_free(r->auth);
    free(r->url);
    if (r->own_shm)
        m8_shm_unmap(r->own_shm);
    free(r);
}

void m8_revocation_set_timeouts(m8_revocation *r, double connect_s, double total_s)
{
    r->connect_s = connect_s;
    r->total_s = total_s;
    m8_privauth_set_timeouts(r->auth, connect_s, total_s);
}

unsigned long m8_revocation_calls(const m8_revocation *r)
{
    return atomic_load(&((m8_revocation *)r)->calls);
}

const char *m8_revocation_detail(m8_rev_result res)
{
    switch (res) {
    case M8_REV_REVOKED: return "Token has been revoked.";
    case M8_REV_UNAVAILABLE: return "Token revocation check unavailable.";
    case M8_REV_ALLOW: break;
    }
    return NULL;
}

/* One failure log a second per process; the others are counted and the
 * next line says how many were left out. */
static void rlog(m8_revocation *r, m8_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rlog(m8_revocation *r, m8_log_level lvl, const char *fmt, ...)
{
    long long sec = (long long)m8_now_mono();
    long long last = atomic_load(&r->log_second);
    if (last == sec || !atomic_compare_exchange_strong(&r->log_second, &last, sec)) {
        atomic_fetch_add(&r->log_suppressed, 1);
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    unsigned long n = atomic_exchange(&r->log_suppressed, 0);
    if (n)
        m8_log(lvl, "%s (%lu similar in the last second not logged)", msg, n);
    else
        m8_log(lvl, "%s", msg);
}

static void count(m8_revocation *r, unsigned ctr)
{
    atomic_fetch_add_explicit(&r->shm->counters[ctr], 1, memory_order_relaxed);
}

/* doc/wire.md#jti-status-response, strict JSON types: schema_version absent or "2"; active a
 * boolean (or 0/1); when active, user_id a non-empty string equal to sub and auth_generation an
 * integer >= 1. */
static outcome parse_answer(const char *body, size_t len, const char *sub, uint64_t *gen,
                            const char **why)
{
    json_object *o = m8_json_parse(body ? body : "", len, M8_REVOCATION_JSON_DEPTH, NULL, NULL);
    outcome out = OUT_DECISION;
    json_object *v;
    *why = "the answer is not a JSON object";
    if (!o || !json_object_is_type(o, json_type_object))
        goto done;
    if (json_object_object_get_ex(o, "schema_version", &v) &&
        (!json_object_is_type(v, json_type_string) || strcmp(json_object_get_string(v), "2"))) {
        *why = "unknown schema_version";
        goto done;
    }
    bool active;
    if (!json_object_object_get_ex(o, "active", &v)) {
        *why = "no active member";
        goto done;
    }
    if (json_object_is_type(v, json_type_boolean)) {
        active = json_object_get_boolean(v);
    } else if (json_object_is_type(v, json_type_int) &&
               (json_object_get_int64(v) == 0 || json_object_get_int64(v) == 1)) {
        active = json_object_get_int64(v) == 1;
    } else {
        *why = "active is not a boolean";
        goto done;
    }
    if (!active) {
        out = OUT_INACTIVE;
        goto done;
    }
    if (!json_object_object_get_ex(o, "user_id", &v) || !json_object_is_type(v, json_type_string) ||
        json_object_get_string_len(v) < 1) {
        *why = "an active answer without user_id";
        goto done;
    }
    if (!m8_strcaseeq(json_object_get_string(v), sub)) {
        *why = "subject_mismatch";
        goto done;
    }
    json_object *g;
    if (!json_object_object_get_ex(o, "auth_generation", &g) ||
        !json_object_is_type(g, json_type_int) || json_object_get_int64(g) < 1) {
        *why = "an active answer without a valid auth_generation";
        goto done;
    }
    *gen = (uint64_t)json_object_get_int64(g);
    out = OUT_ACTIVE;
done:
    json_object_put(o);
    return out;
}

static int build_body(m8_buf *b, const m8_rev_token *t)
{
    int rc = m8_buf_puts(b, "{\"jti\":");
    if (rc == 0)
        rc = m8_buf_json_str(b, t->jti, strlen(t->jti));
    if (rc == 0)
        rc = m8_buf_puts(b, ",\"expected_user_id\":");
    if (rc == 0)
        rc = m8_buf_json_str(b, t->sub, strlen(t->sub));
    if (rc == 0)
        rc = m8_buf_puts(b, ",\"schema_version\":\"2\"}");
    return rc;
}

/* The POST of doc/wire.md#jti-status-request (and its one retry after a 401
 * in service-token mode). */
static outcome ask(m8_revocation *r, const m8_rev_token *t, uint64_t *gen, char *why, size_t whylen)
{
    m8_buf body;
    m8_buf_init(&body, MAX_BODY_BYTES);
    if (build_body(&body, t) != 0) {
        m8_buf_free(&body);
        snprintf(why, whylen, "the request body cannot be built");
        return OUT_CONFIG;
    }
    outcome out = OUT_TRANSPORT;
    for (int attempt = 0; attempt < 2; attempt++) {
        m8_privauth_hdrs h;
        m8_privauth_error e;
        int rc = m8_privauth_headers(r->auth, m8_now_mono(), &h, &e);
        if (rc) {
            snprintf(why, whylen, "%s", e.msg);
            out = rc == M8_EIO ? OUT_TRANSPORT : OUT_CONFIG;
            break;
        }
        const char *headers[4] = {0};
        size_t n = 0;
        for (size_t i = 0; i < h.n; i++)
            headers[n++] = h.line[i];
        headers[n] = "Content-Type: application/json";
        m8_http_request rq = {
            .method = "POST",
            .url = r->url,
            .headers = headers,
            .body = body.data,
            .body_len = body.len,
            .connect_timeout_s = r->connect_s,
            .timeout_s = r->total_s,
            .max = M8_REVOCATION_MAX_RESPONSE_BYTES,
            .reuse = true,
        };
        m8_http_result res;
        atomic_fetch_add(&r->calls, 1);
        rc = m8_http_do(&rq, &res);
        uint64_t used = h.generation;
        m8_privauth_hdrs_clear(&h);
        if (rc == M8_EIO) {
            snprintf(why, whylen, "%s: %s", m8_httpc_err_name(res.err), res.error);
            out = OUT_TRANSPORT;
        } else if (rc == M8_ETOOBIG) {
            snprintf(why, whylen, "answer over %u bytes", M8_REVOCATION_MAX_RESPONSE_BYTES);
            out = OUT_DECISION;
        } else if (rc) {
            snprintf(why, whylen, "%s", m8_strerror(rc));
            out = OUT_CONFIG;
        } else if (res.status >= 200 && res.status <= 299) {
            const char *w = "";
            out = parse_answer(res.body.data, res.body.len, t->sub, gen, &w);
            snprintf(why, whylen, "%s", w);
        } else if (res.status == 401 && m8_privauth_invalidate(r->auth, used) && attempt == 0) {
            m8_buf_free(&res.body);
            continue; /* a fresh service token, once (doc/wire.md#jti-status-outcomes) */
        } else if (res.status >= 500) {
            snprintf(why, whylen, "jti-status: the issuer answered %ld", res.status);
            out = OUT_TRANSPORT;
        } else {
            snprintf(why, whylen, "jti-status: the issuer answered %ld", res.status);
            out = OUT_CONFIG;
        }
        m8_buf_free(&res.body);
        break;
    }
    m8_buf_free(&body);
    return out;
}

m8_rev_result m8_revocation_check(m8_revocation *r, const m8_rev_token *t, bool use_cache,
                                  double now)
{
    if (!r || !t || !t->jti || !t->sub)
        return M8_REV_UNAVAILABLE;
    bool cache_on = r->ttl > 0 && use_cache;
    m8_revt_verdict v = m8_revtable_check(r->shm, t->jti, t->sub, t->iat, cache_on, now);
    if (v == M8_REVT_REVOKED)
        return M8_REV_REVOKED;
    if (cache_on)
        count(r, v == M8_REVT_ACTIVE ? M8_CTR_REVOCATION_HIT : M8_CTR_REVOCATION_MISS);
    if (v == M8_REVT_ACTIVE)
        return M8_REV_ALLOW;

    uint64_t gen = 0;
    char why[300] = "";
    outcome out = ask(r, t, &gen, why, sizeof why);
    switch (out) {
    case OUT_ACTIVE:
        /* now may be old after a slow call: the table decides with a fresh one. */
        return m8_revtable_record_active(r->shm, t->jti, t->sub, t->iat, gen, r->ttl,
                                         m8_now_wall()) == M8_REVT_REVOKED
                   ? M8_REV_REVOKED
                   : M8_REV_ALLOW;
    case OUT_INACTIVE: return M8_REV_REVOKED;
    case OUT_DECISION:
        count(r, M8_CTR_REVOCATION_FAIL_CLOSED);
        rlog(r, M8_LOG_ERROR,
             "revocation: the jti-status answer cannot be used (%s); "
             "answering 503",
             why);
        return M8_REV_UNAVAILABLE;
    case OUT_CONFIG:
        count(r, M8_CTR_REVOCATION_FAIL_CLOSED);
        rlog(r, M8_LOG_ERROR,
             "revocation: %s; a configuration error (check INTROSPECTION_URL "
             "and the private-API credentials): answering 503 whatever the failure mode",
             why);
        return M8_REV_UNAVAILABLE;
    case OUT_TRANSPORT: break;
    }
    if (r->fail_open) {
        count(r, M8_CTR_REVOCATION_FAIL_OPEN);
        rlog(r, M8_LOG_WARNING,
             "security.revocation_fail_open reason=\"%s\": the token is "
             "accepted as not revoked",
             why);
        return M8_REV_ALLOW;
    }
    count(r, M8_CTR_REVOCATION_FAIL_CLOSED);
    rlog(r, M8_LOG_WARNING, "revocation: the issuer cannot be reached (%s); answering 503", why);
    return M8_REV_UNAVAILABLE;
}
