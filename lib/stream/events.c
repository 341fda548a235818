/* events.c - signed auth events and the reconnect backoff (events.h). */
#include "stream/events.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "stream/canon.h"

static const char *const type_names[M8_EVT__COUNT] = {
    [M8_EVT_SESSION_REVOKED] = "session-revoked",
    [M8_EVT_USER_DELETED] = "user-deleted",
    [M8_EVT_GAP] = "gap",
    [M8_EVT_HEARTBEAT] = "heartbeat",
    [M8_EVT_OTHER] = "other",
};

static const char *const result_names[M8_EVR__COUNT] = {
    [M8_EVR_DELIVERED] = "delivered",
    [M8_EVR_DROPPED_MALFORMED] = "dropped_malformed",
    [M8_EVR_DROPPED_SIG_FAIL] = "dropped_sig_fail",
};

const char *m8_event_type_name(unsigned i)
{
    return i < M8_EVT__COUNT ? type_names[i] : NULL;
}

const char *m8_event_result_name(unsigned i)
{
    return i < M8_EVR__COUNT ? result_names[i] : NULL;
}

void m8_event_clear(m8_event *ev)
{
    free(ev->user_id);
    free(ev->jti);
    free(ev->event_id);
    free(ev->sse_id);
    json_object_put(ev->payload);
    memset(ev, 0, sizeof *ev);
}

/* ---------------------------------------------------------------- verify */

static m8_event_result drop(json_object *v, m8_event_result r, const char **why, const char *reason)
{
    json_object_put(v);
    if (why)
        *why = reason;
    return r;
}

/* 64 lowercase hex of HMAC-SHA256(key, canonical(payload)) equal to sig. */
static m8_event_result check_sig(const char *key, size_t key_len, json_object *payload,
                                 const char *sig, size_t sig_len, const char **why)
{
    for (size_t i = 0; i < sig_len; i++) {
        if ((unsigned char)sig[i] >= 0x80) {
            *why = "signature is not ASCII";
            return M8_EVR_DROPPED_MALFORMED;
        }
    }
    m8_buf canon;
    m8_buf_init(&canon, M8_MAX_EVENT_CANON_BYTES);
    int rc = m8_canon_write(&canon, payload);
    if (rc) {
        m8_buf_free(&canon);
        *why = rc == M8_ENOMEM ? "out of memory" : "payload has no canonical form";
        return M8_EVR_DROPPED_MALFORMED;
    }
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char hex[2 * crypto_auth_hmacsha256_BYTES + 1];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, key_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)canon.data, canon.len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    bool ok = sig_len == sizeof hex - 1 && sodium_memcmp(hex, sig, sizeof hex - 1) == 0;
    sodium_memzero(&st, sizeof st);
    sodium_memzero(mac, sizeof mac);
    sodium_memzero(hex, sizeof hex);
    m8_buf_free(&canon);
    if (!ok) {
        *why = "signature mismatch";
        return M8_EVR_DROPPED_SIG_FAIL;
    }
    return M8_EVR_DELIVERED;
}

m8_event_result m8_event_verify(const char *key, size_t key_len, bool accept_unsigned,
                                const char *data, size_t len, json_object **payload,
                                const char **why)
{
    const char *reason = NULL;
    json_object *v = NULL;
    *payload = NULL;
    if (why)
        *why = NULL;
    int rc = m8_canon_parse(data, len, &v, &reason);
    if (rc)
        return drop(NULL, M8_EVR_DROPPED_MALFORMED, why,
                    rc == M8_ENOMEM ? "out of memory" : "data is not JSON");
    if (!key || key_len == 0) {
        *payload = v; /* no key: the value as it is, an envelope included */
        return M8_EVR_DELIVERED;
    }
    json_object *sig, *inner;
    if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, "sig", &sig) &&
        json_object_object_get_ex(v, "payload", &inner)) {
        if (!json_object_is_type(sig, json_type_string))
            return drop(v, M8_EVR_DROPPED_SIG_FAIL, why, "signature is not a string");
        m8_event_result r = check_sig(key, key_len, inner, json_object_get_string(sig),
                                      (size_t)json_object_get_string_len(sig), &reason);
        if (r != M8_EVR_DELIVERED)
            return drop(v, r, why, reason);
        *payload = json_object_get(inner);
        json_object_put(v);
        return M8_EVR_DELIVERED;
    }
    if (!accept_unsigned)
        return drop(v, M8_EVR_DROPPED_SIG_FAIL, why, "unsigned event refused");
    *payload = v; /* the rollout flag accepts a bare payload */
    if (why)
        *why = "unsigned event accepted (EVENT_SIGNING_ACCEPT_UNSIGNED)";
    return M8_EVR_DELIVERED;
}

/* ---------------------------------------------------------------- decode */

/* The SSE name, trimmed, with '-' read as '.' (doc/wire.md#applying-events). */
static m8_event_type classify(const char *name, size_t n)
{
    n = m8_trim(&name, n);
    if (n == 3 && memcmp(name, "gap", 3) == 0)
        return M8_EVT_GAP;
    static const struct {
        const char *dotted;
        m8_event_type type;
    } known[] = {{"session.revoked", M8_EVT_SESSION_REVOKED},
                 {"user.deleted", M8_EVT_USER_DELETED}};
    for (size_t k = 0; k < M8_ARRAY_LEN(known); k++) {
        const char *d = known[k].dotted;
        if (strlen(d) != n)
            continue;
        size_t i = 0;
        while (i < n && (name[i] == '-' ? '.' : name[i]) == d[i])
            i++;
        if (i == n)
            return known[k].type;
    }
    return M8_EVT_OTHER;
}

/* A string member: 1 set (*out owned), 0 absent or null, -1 anything else
 * (a string with a NUL byte included: it could not be used as a key). */
static int member_str(json_object *o, const char *name, bool allow_empty, char **out)
{
    json_object *m;
    *out = NULL;
    if (!json_object_object_get_ex(o, name, &m) || !m)
        return 0;
    if (!json_object_is_type(m, json_type_string))
        return -1;
    const char *s = json_object_get_string(m);
    size_t n = (size_t)json_object_get_string_len(m);
    if (memchr(s, '\0', n) || (!allow_empty && n == 0))
        return -1;
    *out = strdup(s);
    return *out ? 1 : -2;
}

/* The payload check of doc/wire.md#revocation-table (step 1), narrowed to
 * JSON types (an integer generation, strings). */
static void session_fields(m8_event *ev, json_object *p)
{
    char *ignored = NULL;
    json_object *gen;
    ev->version = 1;
    int ok = json_object_is_type(p, json_type_object);
    if (ok && member_str(p, "user_id", true, &ev->user_id) != 1)
        ok = 0;
    if (ok && member_str(p, "jti", true, &ev->jti) < 0)
        ok = 0;
    if (ok && member_str(p, "event_id", false, &ev->event_id) < 0)
        ok = 0;
    if (ok && member_str(p, "event_type", true, &ignored) < 0)
        ok = 0;
    free(ignored);
    ignored = NULL;
    if (ok) {
        int r = member_str(p, "version", true, &ignored);
        if (r < 0)
            ok = 0;
        else if (r == 1 && strcmp(ignored, "v2") == 0)
            ev->version = 2;
        free(ignored);
    }
    if (ok && json_object_object_get_ex(p, "auth_generation", &gen) && gen) {
        int64_t g = json_object_get_int64(gen);
        if (!json_object_is_type(gen, json_type_int) || g < 1 || g == INT64_MAX)
            ok = 0; /* not an int >= 1 (INT64_MAX: maybe a larger uint64) */
        else
            ev->auth_generation = g;
    }
    if (!ok) {
        free(ev->user_id);
        free(ev->jti);
        free(ev->event_id);
        ev->user_id = ev->jti = ev->event_id = NULL;
        ev->auth_generation = 0;
        ev->invalid = true;
        ev->why = "session-revoked payload fails validation";
    }
}

m8_event_result m8_event_decode(const m8_settings *s, const m8_sse_event *sse, double now,
                                m8_event *out)
{
    memset(out, 0, sizeof *out);
    if (sse->kind == M8_SSE_COMMENT) {
        out->type = M8_EVT_HEARTBEAT;
        return M8_EVR_DELIVERED;
    }
    out->type = classify(sse->event, sse->event_len);
    if (sse->too_big) {
        out->why = "event over the stream limits";
        return M8_EVR_DROPPED_MALFORMED;
    }
    if (out->type == M8_EVT_GAP)
        return M8_EVR_DELIVERED; /* never parsed or verified */
    const char *key = s->event_signing_key;
    json_object *payload = NULL;
    m8_event_result r =
        m8_event_verify(key, key ? strlen(key) : 0, s->event_signing_accept_unsigned, sse->data,
                        sse->data_len, &payload, &out->why);
    if (r != M8_EVR_DELIVERED)
        return r;
    out->payload = payload;
    if (sse->id) {
        out->sse_id = strndup(sse->id, sse->id_len); /* ids hold no NUL (sse.h) */
        if (!out->sse_id) {
            m8_event_type type = out->type;
            m8_event_clear(out);
            out->type = type;
            out->why = "out of memory";
            return M8_EVR_DROPPED_MALFORMED;
        }
        out->sse_id_len = sse->id_len;
    }
    if (out->type == M8_EVT_SESSION_REVOKED) {
        session_fields(out, payload);
        out->revoked_since = now;
    } else if (out->type == M8_EVT_USER_DELETED) {
        /* only a string user_id is acted on; anything else is ignored */
        if (!json_object_is_type(payload, json_type_object) ||
            member_str(payload, "user_id", true, &out->user_id) != 1)
            out->why = "user-deleted payload has no user_id string";
        out->revoked_since = now;
    }
    return M8_EVR_DELIVERED;
}

/* ---------------------------------------------------------------- backoff */

double m8_event_backoff(unsigned n, uint32_t r)
{
    double b = 1.0;
    for (unsigned i = 0; i < n && b < 60.0; i++)
        b = b * 2 > 60.0 ? 60.0 : b * 2;
    if (r >= M8_EVENT_JITTER_STEPS)
        r = M8_EVENT_JITTER_STEPS - 1;
    double d = b + b * 0.25 * ((double)r / 1000.0 - 1.0);
    return d < 0.1 ? 0.1 : d;
}
