/* events_stream.c - the issuer's signed event stream
 * (doc/issuer.md#event-stream): the consumer check, where a stream starts
 * for a Last-Event-ID, the frame of an outbox row (Python's json.dumps form
 * on the wire, HMAC-SHA256 over the canonical JSON of lib/stream/canon.c),
 * and the body that tails the outbox on the serving thread
 * (app/stream.h). */
#include "issuer/events_stream.h"

#include <json-c/json.h>
#include <sodium.h>
#include <string.h>

#include "app/stream.h"
#include "builtin/issuer_metrics.h"
#include "core/log.h"
#include "issuer/private.h"
#include "issuer/service.h"
#include "stream/canon.h"

/* ------------------------------------------------------------ frames */

/* v as Python's json.dumps(v) writes it by default: ", " and ": ", the
 * members in their order, scalars exactly as the canonical form has them
 * (ASCII only, Python's number forms). */
static int dumps(m8_buf *out, struct json_object *v, int depth)
{
    if (depth > M8_MAX_JSON_DEPTH)
        return M8_EDEPTH;
    int rc = 0;
    if (v && json_object_is_type(v, json_type_object)) {
        bool first = true;
        rc = m8_buf_putc(out, '{');
        json_object_object_foreach(v, k, val)
        {
            if (rc)
                break;
            if (!first)
                rc = m8_buf_putn(out, ", ", 2);
            first = false;
            struct json_object *ks = json_object_new_string(k);
            if (!rc)
                rc = ks ? m8_canon_write(out, ks) : M8_ENOMEM;
            json_object_put(ks);
            if (!rc)
                rc = m8_buf_putn(out, ": ", 2);
            if (!rc)
                rc = dumps(out, val, depth + 1);
        }
        return rc ? rc : m8_buf_putc(out, '}');
    }
    if (v && json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        rc = m8_buf_putc(out, '[');
        for (size_t i = 0; i < n && !rc; i++) {
            if (i)
                rc = m8_buf_putn(out, ", ", 2);
            if (!rc)
                rc = dumps(out, json_object_array_get_idx(v, i), depth + 1);
        }
        return rc ? rc : m8_buf_putc(out, ']');
    }
    return m8_canon_write(out, v);
}

static bool token_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > M8_ISSUER_EVENT_TYPE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    return true;
}

int m8_issuer_event_frame(const m8_issuer_event *ev, const char *key, m8_buf *out)
{
    if (!ev->type || !token_ok(ev->type) || !ev->payload)
        return M8_EPARSE;
    struct json_object *p = NULL;
    const char *why = NULL;
    int rc = m8_canon_parse(ev->payload, ev->payload_len, &p, &why);
    if (rc != 0)
        return rc;
    rc = m8_buf_puts(out, "id: ");
    if (!rc)
        rc = m8_buf_put_u64(out, (uint64_t)ev->id);
    if (!rc)
        rc = m8_buf_puts(out, "\nevent: ");
    if (!rc)
        rc = m8_buf_puts(out, ev->type);
    if (!rc)
        rc = m8_buf_puts(out, "\ndata: ");
    if (!rc && key && *key) {
        m8_buf canon;
        m8_buf_init(&canon, M8_ISSUER_EVENT_MAX * 8u);
        rc = m8_canon_write(&canon, p);
        unsigned char mac[crypto_auth_hmacsha256_BYTES];
        char hex[2 * crypto_auth_hmacsha256_BYTES + 1];
        if (!rc) {
            crypto_auth_hmacsha256_state h;
            crypto_auth_hmacsha256_init(&h, (const unsigned char *)key, strlen(key));
            crypto_auth_hmacsha256_update(&h, (const unsigned char *)canon.data, canon.len);
            crypto_auth_hmacsha256_final(&h, mac);
            sodium_memzero(&h, sizeof h);
            sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
            rc = m8_buf_puts(out, "{\"payload\": ");
        }
        if (!rc)
            rc = dumps(out, p, 1);
        if (!rc)
            rc = m8_buf_puts(out, ", \"sig\": \"");
        if (!rc)
            rc = m8_buf_puts(out, hex);
        if (!rc)
            rc = m8_buf_puts(out, "\"}");
        m8_buf_free(&canon);
    } else if (!rc) {
        rc = dumps(out, p, 0);
    }
    if (!rc)
        rc = m8_buf_puts(out, "\n\n");
    json_object_put(p);
    return rc;
}

/* ------------------------------------------------------------ resume */

/* A Last-Event-ID this issuer wrote: an outbox id, 1-19 decimal digits
 * (surrounding whitespace ignored). */
static bool parse_lei(const char *s, int64_t *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || n > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

void m8_issuer_stream_start(const char *lei, int64_t first_id, int64_t last_id, long long buffer,
                            int64_t *after, bool *gap)
{
    int64_t n = 0;
    *after = last_id;
    *gap = false;
    if (!lei)
        return; /* live events only */
    if (!parse_lei(lei, &n) || n > last_id || (buffer > 0 && last_id - n > buffer) ||
        (first_id > 0 && n < first_id - 1)) {
        /* not ours (another outbox, or a fa-auth-m8 "<epoch>-<seq>"), too
         * far behind to replay, or older than what is kept */
        *gap = true;
        return;
    }
    *after = n;
}

/* ------------------------------------------------------------ the route */

typedef struct stream_ctx {
    m8_issuer *iss;
    int64_t after;
    bool gap;
    const char *key; /* NULL: bare payloads */
    double heartbeat_s;
} stream_ctx;

static const char *end_name(m8_stream_end e)
{
    switch (e) {
    case M8_STREAM_END_CLIENT: return "client";
    case M8_STREAM_END_BACKPRESSURE: return "backpressure";
    case M8_STREAM_END_SHUTDOWN: return "shutdown";
    default: return "done";
    }
}

/* Sends the rows after x->after; *sent says whether one went out.  0, or
 * M8_EIO when the stream is over, or a database error (the caller retries
 * later, the stream stays open). */
static int send_batch(m8_stream *st, stream_ctx *x, m8_buf *frame, bool *sent, bool *more)
{
    m8_db *db = m8_app_db(x->iss->app);
    m8_issuer_events evs;
    memset(&evs, 0, sizeof evs);
    int64_t now_us = (int64_t)(m8_now_wall() * 1e6);
    int rc = db ? m8_issuer_event_read(db, x->iss->prefix, x->after, M8_ISSUER_STREAM_BATCH, now_us,
                                       M8_ISSUER_STREAM_GRACE_US, &evs)
                : M8_EAGAIN;
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < evs.n && rc == 0; i++) {
        m8_buf_reset(frame);
        int frc = m8_issuer_event_frame(&evs.ev[i], x->key, frame);
        if (frc != 0) {
            m8_log_limited("issuer.stream.bad_row", M8_LOG_WARNING,
                           "event stream: outbox row %lld skipped (error %d)",
                           (long long)evs.ev[i].id, frc);
            continue;
        }
        rc = m8_stream_send(st, frame->data, frame->len) == 0 ? 0 : M8_EIO;
        *sent = true;
    }
    if (rc == 0)
        x->after = evs.next_after;
    *more = evs.n == M8_ISSUER_STREAM_BATCH;
    m8_issuer_events_free(&evs);
    return rc;
}

static void stream_body(m8_stream *st, void *data)
{
    stream_ctx *x = data;
    m8_buf frame;
    m8_buf_init(&frame, M8_ISSUER_EVENT_MAX * 8u + 4096u);
    double idle_since = m8_now_mono(), retry_at = 0;
    m8_im_streams(1); /* auth_event_stream_connections (doc/issuer.md#metrics) */
    bool ok = !x->gap || m8_stream_send(st, M8_ISSUER_GAP_FRAME, strlen(M8_ISSUER_GAP_FRAME)) == 0;
    while (ok) {
        bool sent = false, more = false;
        double now = m8_now_mono();
        if (now >= retry_at) {
            int rc = send_batch(st, x, &frame, &sent, &more);
            if (rc == M8_EIO)
                break;
            if (rc != 0) {
                /* the database is away: heartbeats go on, rows come later */
                m8_log_limited("issuer.stream.db", M8_LOG_WARNING,
                               "event stream: cannot read the outbox (error %d): retrying", rc);
                retry_at = now + 1.0;
            }
        }
        now = m8_now_mono();
        if (sent) {
            idle_since = now;
        } else if (now - idle_since >= x->heartbeat_s) {
            if (m8_stream_send(st, M8_ISSUER_PING_FRAME, strlen(M8_ISSUER_PING_FRAME)) != 0)
                break;
            idle_since = now;
        }
        ok = m8_stream_wait(st, more ? 0 : M8_ISSUER_STREAM_POLL_MS) == 0;
    }
    m8_log(M8_LOG_INFO, "event stream: ended (%s) after %llu bytes, at outbox id %lld",
           end_name(st->end), (unsigned long long)st->sent, (long long)x->after);
    m8_im_streams(-1);
    if (st->end == M8_STREAM_END_CLIENT)
        m8_im_inc(M8_IM_STREAM_DISCONNECTS, M8_IM_DISC_CLIENT);
    else if (st->end == M8_STREAM_END_BACKPRESSURE)
        m8_im_inc(M8_IM_STREAM_DISCONNECTS, M8_IM_DISC_BACKPRESSURE);
    else if (st->end == M8_STREAM_END_SHUTDOWN)
        m8_im_inc(M8_IM_STREAM_DISCONNECTS, M8_IM_DISC_SHUTDOWN);
    m8_buf_free(&frame);
}

int m8_issuer_h_events_stream(m8_request *req, void *data)
{
    m8_issuer *iss = data;
    const m8_settings *s = iss->s;
    /* the consumer and its scope first: 401 / 403 before anything else */
    m8_private_caller who;
    if (m8_issuer_private_auth(req, M8_SCOPE_EVENT_STREAM, &who) != 0)
        return 0;
    if (!s->event_stream_enabled)
        return m8_res_error(req, 404, "Event stream disabled");
    m8_db *db = m8_req_db(req);
    int64_t first = 0, last = 0;
    int rc = db ? m8_issuer_event_last_id(db, iss->prefix, &last) : M8_EAGAIN;
    if (rc == 0)
        rc = m8_issuer_event_first_id(db, iss->prefix, &first);
    if (rc != 0)
        return m8_issuer_db_fail(req, rc, "event stream: outbox bounds");
    stream_ctx *x = m8_arena_alloc(&req->arena, sizeof *x);
    if (!x)
        return M8_ENOMEM;
    memset(x, 0, sizeof *x);
    x->iss = iss;
    x->key = s->event_signing_enabled && s->event_signing_key && *s->event_signing_key
                 ? s->event_signing_key
                 : NULL;
    x->heartbeat_s =
        s->event_stream_heartbeat_seconds > 0 ? s->event_stream_heartbeat_seconds : 15.0;
    m8_issuer_stream_start(m8_req_header(req, "Last-Event-ID"), first, last,
                           s->event_stream_buffer_size, &x->after, &x->gap);
    rc = m8_res_stream(req, stream_body, x);
    if (rc == M8_EAGAIN) {
        m8_log_limited("issuer.stream.full", M8_LOG_WARNING,
                       "event stream refused: this process serves its most streams");
        m8_res_error(req, 503, "Too many event streams");
        return m8_res_header(req, "Retry-After", "5");
    }
    if (rc != 0) /* the libfcgi engine, CGI */
        return m8_res_error(req, 501, "Event stream needs the epoll engine");
    rc = m8_res_body(req, 200, "text/event-stream; charset=utf-8", NULL, 0);
    if (!rc)
        rc = m8_res_header(req, "Cache-Control", "no-cache");
    if (!rc)
        rc = m8_res_header(req, "Connection", "keep-alive");
    if (!rc)
        rc = m8_res_header(req, "X-Accel-Buffering", "no");
    return rc;
}
