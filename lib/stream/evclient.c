/* evclient.c - the auth event stream client (evclient.h). */
#include "stream/evclient.h"

#include <json-c/json.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/privauth.h"
#include "auth/revtable.h"
#include "core/log.h"
#include "net/httpc.h"
#include "shm/shm.h"
#include "stream/events.h"
#include "stream/sse.h"

/* The shared segment counts events by type and result (events.h). */
_Static_assert(M8_EVT__COUNT <= M8_SHM_EVENT_TYPES, "event types fit the shm counters");
_Static_assert(M8_EVR__COUNT == M8_SHM_EVENT_RESULTS, "event results match the shm counters");

struct m8_evclient {
    const m8_settings *settings; /* borrowed: the owner keeps them alive */
    m8_shm *shm;
    m8_privauth *auth;
    char *url;
    char url_log[512];
    m8_sse sse;
    char last_id[M8_MAX_SSE_LINE_BYTES + 1]; /* Last-Event-ID to resume from */
    bool have_last_id;
    /* per connection */
    long status;
    bool opened;
    const atomic_int *stop;
};

bool m8_evclient_wanted(const m8_settings *s)
{
    return s->token_mode == M8_MODE_STATEFUL && s->auth_service_role == M8_ROLE_CONSUMER &&
           s->introspection_url && *s->introspection_url;
}

m8_evclient *m8_evclient_new(const m8_settings *s, m8_shm *shm, char *err, size_t errlen)
{
    if (!m8_evclient_wanted(s)) {
        snprintf(err, errlen,
                 "the event stream needs TOKEN_MODE=stateful, "
                 "AUTH_SERVICE_ROLE=consumer and INTROSPECTION_URL");
        return NULL;
    }
    m8_evclient *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->settings = s;
    c->shm = shm;
    if (m8_privauth_derive_url(s->introspection_url, "/events/stream", &c->url) != 0) {
        snprintf(err, errlen, "INTROSPECTION_URL: cannot derive the event stream URL");
        free(c);
        return NULL;
    }
    m8_http_display_url(c->url, c->url_log, sizeof c->url_log);
    c->auth = m8_privauth_new(s, "event-stream", err, errlen);
    if (!c->auth) {
        free(c->url);
        free(c);
        return NULL;
    }
    m8_sse_init(&c->sse);
    m8_revtable_init(shm);
    return c;
}

void m8_evclient_free(m8_evclient *c)
{
    if (!c)
        return;
    m8_privauth_free(c->auth);
    m8_sse_free(&c->sse);
    free(c->url);
    free(c);
}

/* ------------------------------------------------------------ events */

static void apply(m8_evclient *c, const m8_event *ev, double now)
{
    m8_shm *shm = c->shm;
    switch (ev->type) {
    case M8_EVT_GAP:
        /* Unresumable: forget where we were, flush every cached answer. */
        c->have_last_id = false;
        m8_revtable_flush(shm);
        atomic_fetch_add(&shm->cache_epoch, 1);
        atomic_fetch_add(&shm->counters[M8_CTR_EVSTREAM_GAPS], 1);
        m8_log(M8_LOG_WARNING, "event stream: gap; every cached revocation answer flushed");
        break;
    case M8_EVT_SESSION_REVOKED:
        if (ev->invalid) {
            m8_revtable_flush(shm); /* doc/wire.md#revocation-table: flush rather than guess */
            m8_log_limited("evstream.unusable", M8_LOG_WARNING,
                           "event stream: session.revoked with an unusable payload (%s); "
                           "caches flushed",
                           ev->why ? ev->why : "invalid");
            break;
        } else {
            m8_revt_event rv = {
                .user_id = ev->user_id,
                .jti = ev->jti,
                .generation = ev->auth_generation > 0 ? (uint64_t)ev->auth_generation : 0,
                .event_id = ev->event_id,
                .since = ev->jti ? 0 : (long long)now - M8_REVTABLE_SINCE_MARGIN_S,
                .jti_until = 0,
            };
            int rc = m8_revtable_session_revoked(shm, &rv, now);
            m8_log(M8_LOG_INFO, "event stream: session.revoked v%d (%s) %s", ev->version,
                   ev->jti ? "one session" : "every session of the user",
                   rc == 1 ? "applied" : "already applied or stale");
        }
        break;
    case M8_EVT_USER_DELETED:
        if (ev->user_id) {
            m8_revtable_revoke_user(shm, ev->user_id, LLONG_MAX, now);
            m8_log(M8_LOG_INFO, "event stream: user.deleted applied");
        }
        break;
    default: break;
    }
}

static int on_sse(const m8_sse_event *se, void *ctx)
{
    m8_evclient *c = ctx;
    double now = m8_now_wall();
    m8_event ev;
    memset(&ev, 0, sizeof ev);
    m8_event_result r = m8_event_decode(c->settings, se, now, &ev);
    if ((unsigned)ev.type < M8_SHM_EVENT_TYPES && (unsigned)r < M8_SHM_EVENT_RESULTS)
        atomic_fetch_add(&c->shm->events[ev.type][r], 1);
    if (r != M8_EVR_DELIVERED) {
        char key[64]; /* a flood of bad events writes a few lines; the counters count all */
        snprintf(key, sizeof key, "evstream.dropped.%s", m8_event_result_name(r));
        m8_log_limited(key, M8_LOG_WARNING, "event stream: %s event dropped (%s): %s",
                       m8_event_type_name(ev.type), m8_event_result_name(r), ev.why ? ev.why : "-");
    } else {
        if (ev.sse_id && ev.sse_id_len < sizeof c->last_id) {
            memcpy(c->last_id, ev.sse_id, ev.sse_id_len);
            c->last_id[ev.sse_id_len] = '\0';
            c->have_last_id = true;
        }
        apply(c, &ev, now);
    }
    m8_event_clear(&ev);
    return 0;
}

static void on_open(long status, void *data)
{
    m8_evclient *c = data;
    c->status = status;
    if (status >= 200 && status <= 299 && !c->opened) {
        c->opened = true;
        atomic_store(&c->shm->evstream_connected, 1);
        m8_log(M8_LOG_INFO, "event stream: connected to %s%s", c->url_log,
               c->have_last_id ? " (resuming)" : "");
    }
}

static bool on_data(const char *p, size_t n, void *data)
{
    m8_evclient *c = data;
    if (atomic_load(c->stop))
        return false;
    if (c->status < 200 || c->status > 299)
        return true; /* an error body: not a stream */
    if (m8_sse_push(&c->sse, p, n, on_sse, c) == M8_ENOMEM)
        return false;
    return true;
}

/* ------------------------------------------------------------ connection */

/* One connection attempt: 1 when the stream ended cleanly (the issuer
 * closed it), 0 otherwise. */
static int connect_once(m8_evclient *c)
{
    m8_privauth_hdrs ah;
    m8_privauth_error pe;
    memset(&ah, 0, sizeof ah);
    memset(&pe, 0, sizeof pe);
    if (m8_privauth_headers(c->auth, m8_now_mono(), &ah, &pe) != 0) {
        m8_log(M8_LOG_WARNING, "event stream: no credentials for %s (%s)", c->url_log, pe.msg);
        return 0;
    }
    char lei[sizeof c->last_id + 32];
    const char *hdr[8];
    size_t k = 0;
    for (size_t i = 0; i < ah.n && k < 4; i++)
        hdr[k++] = ah.line[i];
    hdr[k++] = "Accept: text/event-stream";
    if (c->have_last_id) {
        snprintf(lei, sizeof lei, "Last-Event-ID: %s", c->last_id);
        hdr[k++] = lei;
    }
    hdr[k] = NULL;
    const m8_settings *s = c->settings;
    double rt = s->event_stream_read_timeout > 0 ? s->event_stream_read_timeout : 60.0;
    m8_http_request rq = {
        .method = "GET",
        .url = c->url,
        .headers = hdr,
        .connect_timeout_s =
            s->event_stream_connect_timeout > 0 ? s->event_stream_connect_timeout : 5.0,
        .timeout_s = 3600.0, /* a clean reconnect at least once an hour */
        .max = 65536,        /* an error body */
        .follow_redirects = false,
        .on_data = on_data,
        .on_open = on_open,
        .data = c,
        .read_timeout_s = (long)rt + (rt > (double)(long)rt), /* whole seconds, up */
        .cancel = c->stop,
    };
    c->status = 0;
    c->opened = false;
    m8_sse_reset(&c->sse);
    m8_http_result res;
    int rc = m8_http_do(&rq, &res);
    atomic_store(&c->shm->evstream_connected, 0);
    int clean = 0;
    if (atomic_load(c->stop)) {
        /* stopping: nothing to report */
    } else if (rc == 0 && res.status >= 200 && res.status <= 299) {
        m8_log(M8_LOG_INFO, "event stream: the issuer closed the stream; reconnecting");
        clean = 1;
    } else if (rc == 0) {
        if (res.status == 401)
            m8_privauth_invalidate(c->auth, ah.generation);
        m8_log(M8_LOG_WARNING, "event stream: %s answered HTTP %ld; reconnecting", c->url_log,
               res.status);
    } else {
        m8_log(M8_LOG_WARNING, "event stream: %s: %s: %s; reconnecting", c->url_log,
               m8_httpc_err_name(res.err), res.error[0] ? res.error : m8_strerror(rc));
    }
    m8_buf_free(&res.body);
    m8_privauth_hdrs_clear(&ah);
    return clean;
}

static void sleep_until_stop(const atomic_int *stop, double seconds)
{
    double until = m8_now_mono() + seconds;
    while (!atomic_load(stop) && m8_now_mono() < until) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void m8_evclient_run(m8_evclient *c, atomic_int *stop)
{
    c->stop = stop;
    unsigned attempt = 0;
    bool first = true;
    while (!atomic_load(stop)) {
        if (!first)
            atomic_fetch_add(&c->shm->counters[M8_CTR_EVSTREAM_RECONNECTS], 1);
        first = false;
        int clean = connect_once(c);
        if (atomic_load(stop))
            break;
        attempt = clean ? 0 : attempt + 1;
        double d =
            m8_event_backoff(clean ? 0 : attempt, randombytes_uniform(M8_EVENT_JITTER_STEPS));
        sleep_until_stop(stop, d);
    }
}
