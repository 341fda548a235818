/* prometheus.c - the Prometheus text exposition of the metrics, summed over
 * every slot (metrics.h; doc/metrics.md): the writer, the request families,
 * the auth and pool groups, and m8_metrics_render. */
#include "builtin/metrics_int.h"

#include "builtin/issuer_metrics.h"

#include "stream/events.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "core/json.h"

static const double flush_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

/* ------------------------------------------------------------ writing */

typedef struct wr {
    m8_buf *b;
    const char *pfx;
    double created; /* of series without their own time */
    int rc;         /* first error */
} wr;

__attribute__((format(printf, 2, 3))) static void wf(wr *w, const char *fmt, ...)
{
    if (w->rc < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int rc = m8_buf_vprintf(w->b, fmt, ap);
    va_end(ap);
    if (rc < 0)
        w->rc = rc;
}

static void wput(wr *w, const char *s, size_t n)
{
    if (w->rc < 0)
        return;
    int rc = m8_buf_append(w->b, s, n);
    if (rc < 0)
        w->rc = rc;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* A label value in the text format: \\, \" and \n escaped; invalid UTF-8
 * bytes (a label cut by the slot's fixed size, a bad method) become U+FFFD. */
static void wlabel(wr *w, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        size_t k = 0;
        while (k < n && p[k] >= 0x20 && p[k] < 0x80 && p[k] != '\\' && p[k] != '"')
            k++;
        wput(w, (const char *)p, k);
        p += k;
        n -= k;
        if (!n)
            break;
        size_t len = utf8_len(p, n);
        if (*p == '\\')
            wput(w, "\\\\", 2);
        else if (*p == '"')
            wput(w, "\\\"", 2);
        else if (*p == '\n')
            wput(w, "\\n", 2);
        else if (len)
            wput(w, (const char *)p, len);
        else
            wput(w, "\xef\xbf\xbd", 3);
        p += len ? len : 1;
        n -= len ? len : 1;
    }
}

/* A sample value as Python's repr writes it (prometheus_client does): the
 * fewest digits that read back as the same double, positional from 1e-4 to
 * 1e16 with at least one decimal ("0.0", "10.0", "19.44"), else "1e+16". */
static void wdouble(wr *w, double d)
{
    char e[40], s[400];
    if (isnan(d)) {
        wf(w, "NaN");
        return;
    }
    if (isinf(d)) {
        wf(w, "%s", d > 0 ? "+Inf" : "-Inf");
        return;
    }
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    snprintf(e, sizeof e, "%.*e", prec - 1, d);
    const char *x = strchr(e, 'e');
    long exp10 = x ? strtol(x + 1, NULL, 10) : 0;
    if (exp10 < -4 || exp10 >= 16) {
        wf(w, "%s", e);
        return;
    }
    int decimals = prec - 1 - (int)exp10;
    snprintf(s, sizeof s, "%.*f", decimals > 0 ? decimals : 0, d);
    wf(w, "%s%s", s, strchr(s, '.') ? "" : ".0");
}

static void wu64(wr *w, uint64_t v)
{
    wf(w, "%" PRIu64 ".0", v);
}

static void whead(wr *w, const char *name, const char *suffix, const char *type, const char *help)
{
    wf(w, "# HELP %s%s%s %s\n# TYPE %s%s%s %s\n", w->pfx, name, suffix, help, w->pfx, name, suffix,
       type);
}

enum { L_MES, L_ME, L_MEC, L_S }; /* label sets of the request families */

static void wlabels(wr *w, const agg *a, int kind, const char *le)
{
    bool first = true;
    wf(w, "{");
    if (kind != L_S) {
        wf(w, "method=\"");
        wlabel(w, a->method);
        wf(w, "\",endpoint=\"");
        wlabel(w, a->endpoint);
        wf(w, "\"");
        first = false;
    }
    if (kind == L_MES || kind == L_S)
        wf(w, "%sstatus_code=\"%u\"", first ? "" : ",", a->status);
    else if (kind == L_MEC)
        wf(w, ",status_class=\"%uxx\"", a->status);
    if (le)
        wf(w, "%sle=\"%s\"", first ? "" : ",", le);
    wf(w, "}");
}

static double created_of(const wr *w, const agg *a)
{
    return a->created > 0 ? a->created : w->created;
}

/* One sample of a request family: <name><suffix>{labels} value. */
static void wsample_u64(wr *w, const char *name, const char *suffix, const agg *a, int kind,
                        const char *le, uint64_t v)
{
    wf(w, "%s%s%s", w->pfx, name, suffix);
    wlabels(w, a, kind, le);
    wf(w, " ");
    wu64(w, v);
    wf(w, "\n");
}

static void wsample_double(wr *w, const char *name, const char *suffix, const agg *a, int kind,
                           double v)
{
    wf(w, "%s%s%s", w->pfx, name, suffix);
    wlabels(w, a, kind, NULL);
    wf(w, " ");
    wdouble(w, v);
    wf(w, "\n");
}

/* X_created of every aggregated series (nothing when there is none). */
static void wcreated_aggs(wr *w, const char *name, const char *help, const aggmap *m, int kind)
{
    if (!m->n)
        return;
    whead(w, name, "_created", "gauge", help);
    for (size_t i = 0; i < m->n; i++)
        wsample_double(w, name, "_created", &m->v[i], kind, created_of(w, &m->v[i]));
}

/* A labelled counter over aggregated series: X_total then X_created. */
static void wcounter_aggs(wr *w, const char *name, const char *help, const aggmap *m, int kind)
{
    whead(w, name, "_total", "counter", help);
    for (size_t i = 0; i < m->n; i++)
        wsample_u64(w, name, "_total", &m->v[i], kind, NULL, m->v[i].count);
    wcreated_aggs(w, name, help, m, kind);
}

static void fmt_le(char *s, size_t n, double bound)
{
    wr tmp = {0};
    m8_buf b;
    m8_buf_init(&b, 64);
    tmp.b = &b;
    tmp.rc = 0;
    wdouble(&tmp, bound);
    snprintf(s, n, "%s", tmp.rc == 0 && b.data ? b.data : "0.0");
    m8_buf_free(&b);
}

static void wlatency(wr *w, const aggmap *m)
{
    static const char name[] = "http_request_duration_seconds";
    static const char help[] = "HTTP request latency in seconds";
    char le[M8_SHM_BUCKETS][32];
    for (size_t b = 0; b < M8_SHM_BUCKETS; b++)
        fmt_le(le[b], sizeof le[b], m8__metrics_latency_bounds[b]);
    whead(w, name, "", "histogram", help);
    for (size_t i = 0; i < m->n; i++) {
        const agg *a = &m->v[i];
        uint64_t acc = 0;
        for (size_t b = 0; b < M8_SHM_BUCKETS; b++) {
            acc += a->buckets[b];
            wsample_u64(w, name, "_bucket", a, L_ME, le[b], acc);
        }
        uint64_t count = a->count > acc ? a->count : acc;
        wsample_u64(w, name, "_bucket", a, L_ME, "+Inf", count);
        wsample_u64(w, name, "_count", a, L_ME, NULL, count);
        wsample_double(w, name, "_sum", a, L_ME, (double)a->dur_ns / 1e9);
    }
    wcreated_aggs(w, name, help, m, L_ME);
}

/* An unlabelled counter at value v. */
static void wcounter1(wr *w, const char *name, const char *help, uint64_t v)
{
    whead(w, name, "_total", "counter", help);
    wf(w, "%s%s_total ", w->pfx, name);
    wu64(w, v);
    wf(w, "\n");
    whead(w, name, "_created", "gauge", help);
    wf(w, "%s%s_created ", w->pfx, name);
    wdouble(w, w->created);
    wf(w, "\n");
}

/* A counter with one label whose values are fixed: every value present. */
static void wcounter_fixed(wr *w, const char *name, const char *help, const char *label,
                           const char *const *values, const uint64_t *v, size_t n, bool skip_zero)
{
    size_t shown = 0;
    whead(w, name, "_total", "counter", help);
    for (size_t i = 0; i < n; i++) {
        if (skip_zero && v[i] == 0)
            continue;
        shown++;
        wf(w, "%s%s_total{%s=\"%s\"} ", w->pfx, name, label, values[i]);
        wu64(w, v[i]);
        wf(w, "\n");
    }
    if (!shown)
        return;
    whead(w, name, "_created", "gauge", help);
    for (size_t i = 0; i < n; i++) {
        if (skip_zero && v[i] == 0)
            continue;
        wf(w, "%s%s_created{%s=\"%s\"} ", w->pfx, name, label, values[i]);
        wdouble(w, w->created);
        wf(w, "\n");
    }
}

static void wgauge1(wr *w, const char *name, const char *help, double v)
{
    whead(w, name, "", "gauge", help);
    wf(w, "%s%s ", w->pfx, name);
    wdouble(w, v);
    wf(w, "\n");
}

/* ------------------------------------------------------------ auth group */

enum { F_COUNTER, F_GAUGE, F_HIST, F_REASONS, F_EVENTS, F_ISSUER };

/* Where an unlabelled series' value comes from (0: nothing feeds it); for
 * F_ISSUER, the family of builtin/issuer_metrics.h (name and help there). */
enum { SRC_NONE = 0, SRC_EVSTREAM_UP, SRC_EVSTREAM_GAPS, SRC_EVSTREAM_RECONNECTS };

static const struct auth_family {
    const char *name; /* counters without _total */
    int type;
    bool labelled;
    const char *help;
    int src;
} auth_families[] = {
    {NULL, F_ISSUER, true, NULL, M8_IM_LOGIN},
    {NULL, F_ISSUER, true, NULL, M8_IM_REFRESH},
    {NULL, F_ISSUER, false, NULL, M8_IM_LOGOUT},
    {"auth_token_validation_failures", F_REASONS, true,
     "Access token validation failures (reason: invalid | expired | wrong_type | "
     "invalid_payload | inconsistent_privilege_claims | revoked | inactive)",
     SRC_NONE},
    {"auth_oauth_attempts", F_COUNTER, true,
     "OAuth callback attempts (provider: google, result: success | failed)", SRC_NONE},
    {"auth_code_exchange", F_COUNTER, true, "Authorization code exchanges (result)", SRC_NONE},
    {NULL, F_ISSUER, true, NULL, M8_IM_REVOCATION_FAILURE},
    {NULL, F_ISSUER, true, NULL, M8_IM_DEGRADED},
    {"auth_redis_circuit_breaker_open", F_GAUGE, false,
     "Redis circuit breaker state: 1 = open, 0 = closed", SRC_NONE},
    {"auth_degradation_mode_active", F_GAUGE, true,
     "Configured degradation mode per security control (value 1 for the active mode)", SRC_NONE},
    {NULL, F_ISSUER, true, NULL, M8_IM_INTEGRITY},
    {NULL, F_ISSUER, true, NULL, M8_IM_APIKEY_VALIDATIONS},
    {NULL, F_ISSUER, true, NULL, M8_IM_APIKEY_RL_CHECKS},
    {NULL, F_ISSUER, true, NULL, M8_IM_APIKEY_RL_HITS},
    {NULL, F_ISSUER, true, NULL, M8_IM_APIKEY_LIFECYCLE},
    {"auth_api_key_flush_duration_seconds", F_HIST, false,
     "Redis-to-DB last_used_at batch flush latency in seconds", SRC_NONE},
    {"auth_event_stream_connected", F_GAUGE, false, "Event stream connected (1) or not (0)",
     SRC_EVSTREAM_UP},
    {"auth_event_stream_events", F_EVENTS, true,
     "Event stream events (event_type, result: delivered | dropped_malformed | "
     "dropped_sig_fail)",
     SRC_NONE},
    {"auth_event_stream_gap", F_COUNTER, false, "Event stream gap events", SRC_EVSTREAM_GAPS},
    {"auth_event_stream_reconnects", F_COUNTER, false, "Event stream reconnects",
     SRC_EVSTREAM_RECONNECTS},
};

static uint64_t auth_source(const m8_shm *shm, int src)
{
    switch (src) {
    case SRC_EVSTREAM_UP:
        return atomic_load_explicit(&shm->evstream_connected, memory_order_relaxed) != 0;
    case SRC_EVSTREAM_GAPS:
        return atomic_load_explicit(&shm->counters[M8_CTR_EVSTREAM_GAPS], memory_order_relaxed);
    case SRC_EVSTREAM_RECONNECTS:
        return atomic_load_explicit(&shm->counters[M8_CTR_EVSTREAM_RECONNECTS],
                                    memory_order_relaxed);
    default: return 0;
    }
}

/* ------------------------------------------------------------ issuer families */

/* The labels of counter k of family d: the first label varies slowest. */
static void wim_labels(wr *w, const m8_im_desc *d, unsigned k)
{
    unsigned idx[3] = {0, 0, 0};
    for (unsigned i = d->nlabels; i-- > 0;) {
        idx[i] = k % d->nvalues[i];
        k /= d->nvalues[i];
    }
    wf(w, "{");
    for (unsigned i = 0; i < d->nlabels; i++)
        wf(w, "%s%s=\"%s\"", i ? "," : "", d->label[i], d->values[i][idx[i]]);
    wf(w, "}");
}

/* A family of builtin/issuer_metrics.c: an unlabelled counter always, a
 * labelled one with the label sets counted at least once (as
 * prometheus_client shows a labelled family). */
static void wim_family(wr *w, const m8_shm *shm, m8_im_family f)
{
    const m8_im_desc *d = m8_im_family_desc(f);
    unsigned base = m8_im_base(f), n = 1;
    for (unsigned i = 0; i < d->nlabels; i++)
        n *= d->nvalues[i];
    if (base + n > M8_SHM_ISSUER_COUNTERS)
        return;
    if (!d->nlabels) {
        wcounter1(w, d->name, d->help,
                  atomic_load_explicit(&shm->issuer[base], memory_order_relaxed));
        return;
    }
    whead(w, d->name, "_total", "counter", d->help);
    bool any = false;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !any)
            break;
        if (pass == 1)
            whead(w, d->name, "_created", "gauge", d->help);
        for (unsigned k = 0; k < n; k++) {
            uint64_t v = atomic_load_explicit(&shm->issuer[base + k], memory_order_relaxed);
            if (!v)
                continue;
            any = true;
            wf(w, "%s%s%s", w->pfx, d->name, pass ? "_created" : "_total");
            wim_labels(w, d, k);
            wf(w, " ");
            if (pass)
                wdouble(w, w->created);
            else
                wu64(w, v);
            wf(w, "\n");
        }
    }
}

/* auth_degradation_mode_active: 1 for the mode in force of each control
 * (the settings, as /health/ reports them: doc/issuer.md#health). */
static void wdegradation_modes(wr *w, const char *name, const char *help, const m8_settings *s)
{
    whead(w, name, "", "gauge", help);
    if (!s || !s->issuer)
        return;
    const struct {
        const char *control;
        m8_failure_mode mode;
    } m[] = {
        {"rate_limit", s->rate_limit_failure_mode},
        {"refresh_validation", s->refresh_validation_failure_mode},
        {"session_write", s->session_write_failure_mode},
        {"access_revocation",
         s->auth_strict_mode ? M8_FAIL_CLOSED : s->access_revocation_failure_mode},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(m); i++)
        wf(w, "%s%s{control=\"%s\",mode=\"%s\"} 1.0\n", w->pfx, name, m[i].control,
           m[i].mode == M8_FAIL_OPEN ? "fail_open" : "fail_closed");
}

/* revocation_outbox_propagation_seconds{effect_type}: the effect types
 * observed at least once. */
static void wpropagation(wr *w, const m8_shm *shm)
{
    static const char name[] = "revocation_outbox_propagation_seconds";
    static const char help[] = "Seconds from an outbox row's commit to its delivered effect";
    static const char *const effects[M8_IH__COUNT] = {"blacklist", "publish"};
    char le[M8_IM_OUTBOX_BUCKETS][32];
    for (size_t b = 0; b < M8_IM_OUTBOX_BUCKETS; b++)
        fmt_le(le[b], sizeof le[b], m8_im_outbox_bounds[b]);
    whead(w, name, "", "histogram", help);
    bool any = false;
    for (unsigned h = 0; h < M8_IH__COUNT; h++) {
        const m8_shm_hist *x = &shm->issuer_hists[h];
        uint64_t count = atomic_load_explicit(&x->count, memory_order_acquire);
        if (!count)
            continue;
        any = true;
        uint64_t acc = 0;
        for (size_t b = 0; b <= M8_IM_OUTBOX_BUCKETS; b++) {
            acc += atomic_load_explicit(&x->buckets[b], memory_order_acquire);
            if (b == M8_IM_OUTBOX_BUCKETS)
                break;
            wf(w, "%s%s_bucket{effect_type=\"%s\",le=\"%s\"} ", w->pfx, name, effects[h], le[b]);
            wu64(w, acc);
            wf(w, "\n");
        }
        if (count < acc)
            count = acc;
        wf(w, "%s%s_bucket{effect_type=\"%s\",le=\"+Inf\"} ", w->pfx, name, effects[h]);
        wu64(w, count);
        wf(w, "\n%s%s_count{effect_type=\"%s\"} ", w->pfx, name, effects[h]);
        wu64(w, count);
        wf(w, "\n%s%s_sum{effect_type=\"%s\"} ", w->pfx, name, effects[h]);
        wdouble(w, (double)atomic_load_explicit(&x->sum_ns, memory_order_relaxed) / 1e9);
        wf(w, "\n");
    }
    if (!any)
        return;
    whead(w, name, "_created", "gauge", help);
    for (unsigned h = 0; h < M8_IH__COUNT; h++) {
        if (!atomic_load_explicit(&shm->issuer_hists[h].count, memory_order_relaxed))
            continue;
        wf(w, "%s%s_created{effect_type=\"%s\"} ", w->pfx, name, effects[h]);
        wdouble(w, w->created);
        wf(w, "\n");
    }
}

/* The families only fcgim8-issuer has: its events, its event streams and
 * its revocation outbox (doc/issuer.md#metrics). */
static void wissuer(wr *w, const m8_shm *shm, uint32_t nslots)
{
    wim_family(w, shm, M8_IM_EVENTS_PUBLISHED);
    int64_t streams = 0;
    for (uint32_t k = 0; k < nslots; k++)
        streams += atomic_load_explicit(&shm->slots[k].issuer_streams, memory_order_relaxed);
    wgauge1(w, "auth_event_stream_connections", "Event streams the issuer serves now",
            streams > 0 ? (double)streams : 0.0);
    wim_family(w, shm, M8_IM_STREAM_DISCONNECTS);
    for (int f = M8_IM_OUTBOX_ENQUEUED; f <= M8_IM_OUTBOX_DEAD; f++)
        wim_family(w, shm, (m8_im_family)f);
    wpropagation(w, shm);
}

/* fcgim8-issuer counts every refused token of its own routes as fa-auth-m8
 * does: invalid (any validation failure), revoked, inactive. */
static void wissuer_reasons(wr *w, const char *name, const char *help, const uint64_t *reasons)
{
    static const char *const values[] = {"invalid", "revoked", "inactive"};
    uint64_t v[3] = {0, reasons[5], reasons[6]};
    for (size_t i = 0; i < 5; i++)
        v[0] += reasons[i];
    wcounter_fixed(w, name, help, "reason", values, v, 3, true);
}

static void wauth(wr *w, const m8_shm *shm, uint32_t nslots, const m8_settings *s)
{
    bool issuer = s && s->issuer;
    uint64_t reasons[M8_ARRAY_LEN(m8__metrics_auth_reasons)] = {0};
    for (uint32_t k = 0; k < nslots; k++) {
        for (size_t i = 0; i < M8_ARRAY_LEN(m8__metrics_auth_reasons); i++)
            reasons[i] +=
                atomic_load_explicit(&shm->slots[k].auth_failures[i], memory_order_relaxed);
    }
    for (size_t f = 0; f < M8_ARRAY_LEN(auth_families); f++) {
        const struct auth_family *af = &auth_families[f];
        switch (af->type) {
        case F_EVENTS: {
            /* {event_type, result} pairs seen so far (doc/metrics.md#event-stream-metrics) */
            whead(w, af->name, "_total", "counter", af->help);
            bool any = false;
            for (unsigned t = 0; t < M8_EVT__COUNT; t++) {
                for (unsigned r = 0; r < M8_EVR__COUNT; r++) {
                    uint64_t v = atomic_load_explicit(&shm->events[t][r], memory_order_relaxed);
                    if (!v)
                        continue;
                    any = true;
                    wf(w, "%s%s_total{event_type=\"%s\",result=\"%s\"} ", w->pfx, af->name,
                       m8_event_type_name(t), m8_event_result_name(r));
                    wu64(w, v);
                    wf(w, "\n");
                }
            }
            if (any) {
                whead(w, af->name, "_created", "gauge", af->help);
                for (unsigned t = 0; t < M8_EVT__COUNT; t++) {
                    for (unsigned r = 0; r < M8_EVR__COUNT; r++) {
                        if (!atomic_load_explicit(&shm->events[t][r], memory_order_relaxed))
                            continue;
                        wf(w, "%s%s_created{event_type=\"%s\",result=\"%s\"} ", w->pfx, af->name,
                           m8_event_type_name(t), m8_event_result_name(r));
                        wdouble(w, w->created);
                        wf(w, "\n");
                    }
                }
            }
            break;
        }
        case F_ISSUER: wim_family(w, shm, (m8_im_family)af->src); break;
        case F_REASONS:
            if (issuer)
                wissuer_reasons(w, af->name, af->help, reasons);
            else
                wcounter_fixed(w, af->name, af->help, "reason", m8__metrics_auth_reasons, reasons,
                               M8_ARRAY_LEN(m8__metrics_auth_reasons), true);
            break;
        case F_COUNTER:
            if (af->labelled)
                whead(w, af->name, "_total", "counter", af->help);
            else
                wcounter1(w, af->name, af->help, auth_source(shm, af->src));
            break;
        case F_GAUGE:
            if (af->labelled)
                wdegradation_modes(w, af->name, af->help, s);
            else
                wgauge1(w, af->name, af->help, (double)auth_source(shm, af->src));
            break;
        case F_HIST: {
            whead(w, af->name, "", "histogram", af->help);
            char le[32];
            for (size_t b = 0; b < M8_ARRAY_LEN(flush_bounds); b++) {
                fmt_le(le, sizeof le, flush_bounds[b]);
                wf(w, "%s%s_bucket{le=\"%s\"} 0.0\n", w->pfx, af->name, le);
            }
            wf(w, "%s%s_bucket{le=\"+Inf\"} 0.0\n", w->pfx, af->name);
            wf(w, "%s%s_count 0.0\n%s%s_sum 0.0\n", w->pfx, af->name, w->pfx, af->name);
            whead(w, af->name, "_created", "gauge", af->help);
            wf(w, "%s%s_created ", w->pfx, af->name);
            wdouble(w, w->created);
            wf(w, "\n");
            break;
        }
        }
    }
}

/* The revocation-cache series of doc/metrics.md#revocation-metrics: no name prefix; only for a
 * stateful service (they are registered on first use in the reference). */
static void wrevocation(wr *w, const m8_shm *shm, const m8_settings *s)
{
    const char *pfx = w->pfx;
    w->pfx = "";
    static const char *const lookups[] = {"hit", "miss"};
    uint64_t lv[2] = {
        atomic_load_explicit(&shm->counters[M8_CTR_REVOCATION_HIT], memory_order_relaxed),
        atomic_load_explicit(&shm->counters[M8_CTR_REVOCATION_MISS], memory_order_relaxed)};
    wcounter_fixed(w, "revocation_cache_lookups", "Revocation cache lookups", "result", lookups, lv,
                   2, false);
    wgauge1(w, "revocation_cache_ttl_seconds", "Revocation cache TTL in seconds",
            (double)s->revocation_cache_ttl_seconds);
    static const char *const modes[] = {"fail_open", "fail_closed"};
    uint64_t fv[2] = {
        atomic_load_explicit(&shm->counters[M8_CTR_REVOCATION_FAIL_OPEN], memory_order_relaxed),
        atomic_load_explicit(&shm->counters[M8_CTR_REVOCATION_FAIL_CLOSED], memory_order_relaxed)};
    wcounter_fixed(w, "revocation_check_failures", "Revocation checks that failed, by mode", "mode",
                   modes, fv, 2, true);
    w->pfx = pfx;
}

/* Age of the JWKS key set in use (fcgi-m8; JWKS_MAX_STALE_SECONDS bounds
 * it): seconds since the sidecar, or a worker fetching alone, last fetched
 * it; -1 before the first fetch. */
static void wjwks_age(wr *w, const m8_shm *shm)
{
    uint64_t at = atomic_load_explicit(&shm->jwks.fetched_ns, memory_order_relaxed);
    uint64_t now = m8_mono_ns();
    double age = at == 0 ? -1.0 : at >= now ? 0.0 : (double)(now - at) / 1e9;
    wgauge1(w, "auth_jwks_key_set_age_seconds",
            "Seconds since the JWKS key set in use was fetched (-1: none yet)", age);
}

/* ------------------------------------------------------------ pool group */

static void wpool(wr *w, const m8_shm *shm, uint32_t nslots)
{
    uint64_t starting = 0, busy = 0, idle = 0, tbusy = 0, tidle = 0, dropped = 0;
    for (uint32_t k = 0; k < nslots; k++) {
        const m8_shm_slot *sl = &shm->slots[k];
        dropped += atomic_load_explicit(&sl->series_dropped, memory_order_relaxed);
        uint32_t st = atomic_load_explicit(&sl->state, memory_order_acquire);
        if (st == M8_SLOT_STARTING) {
            starting++;
            continue;
        }
        if (st != M8_SLOT_READY && st != M8_SLOT_RETIRING)
            continue;
        uint32_t nt = atomic_load_explicit(&sl->nthreads, memory_order_acquire);
        if (nt > M8_SHM_THREADS)
            nt = M8_SHM_THREADS;
        uint64_t b = 0;
        for (uint32_t t = 0; t < nt; t++)
            b += atomic_load_explicit(&sl->threads[t].busy_since_ns, memory_order_relaxed) != 0;
        tbusy += b;
        tidle += nt - b;
        if (b)
            busy++;
        else
            idle++;
    }
    whead(w, "fcgim8_workers", "", "gauge",
          "Worker processes: starting, or serving with at least one busy thread (busy) or none "
          "(idle)");
    wf(w, "%sfcgim8_workers{state=\"starting\"} ", w->pfx);
    wu64(w, starting);
    wf(w, "\n%sfcgim8_workers{state=\"busy\"} ", w->pfx);
    wu64(w, busy);
    wf(w, "\n%sfcgim8_workers{state=\"idle\"} ", w->pfx);
    wu64(w, idle);
    wf(w, "\n");
    whead(w, "fcgim8_threads", "", "gauge", "Request threads of the serving workers");
    wf(w, "%sfcgim8_threads{state=\"busy\"} ", w->pfx);
    wu64(w, tbusy);
    wf(w, "\n%sfcgim8_threads{state=\"idle\"} ", w->pfx);
    wu64(w, tidle);
    wf(w, "\n");
    wgauge1(w, "fcgim8_workers_target", "Worker processes the supervisor aims for",
            atomic_load_explicit(&shm->workers_target, memory_order_relaxed));
    wgauge1(w, "fcgim8_generation", "Pool generation (bumped by each reload)",
            atomic_load_explicit(&shm->generation, memory_order_relaxed));

    static const char *const causes[] = {"crash", "max_requests", "timeout", "reload",
                                         "scale_down"};
    uint64_t restarts[M8_ARRAY_LEN(causes)];
    for (size_t i = 0; i < M8_ARRAY_LEN(causes); i++)
        restarts[i] =
            atomic_load_explicit(&shm->counters[M8_CTR_RESTART_CRASH + i], memory_order_relaxed);
    wcounter_fixed(w, "fcgim8_worker_restarts", "Worker processes replaced, by cause", "cause",
                   causes, restarts, M8_ARRAY_LEN(causes), false);
    wcounter1(w, "fcgim8_slow_requests", "Requests slower than --slow-log",
              atomic_load_explicit(&shm->counters[M8_CTR_SLOW_REQUESTS], memory_order_relaxed));
    static const char *const results[] = {"ok", "failed"};
    uint64_t reloads[2] = {
        atomic_load_explicit(&shm->counters[M8_CTR_RELOADS_OK], memory_order_relaxed),
        atomic_load_explicit(&shm->counters[M8_CTR_RELOADS_FAILED], memory_order_relaxed),
    };
    wcounter_fixed(w, "fcgim8_reloads", "Reloads (SIGHUP), by result", "result", results, reloads,
                   2, false);
    wgauge1(w, "fcgim8_listen_queue", "Connections waiting in the listen queue",
            atomic_load_explicit(&shm->listen_queue, memory_order_relaxed));
    wgauge1(w, "fcgim8_listen_queue_max", "Most connections seen waiting in the listen queue",
            atomic_load_explicit(&shm->listen_queue_max, memory_order_relaxed));
    wgauge1(w, "fcgim8_ready", "1 once the pool is ready to serve",
            atomic_load_explicit(&shm->ready, memory_order_acquire) ? 1 : 0);
    wcounter1(w, "fcgim8_metric_series_dropped",
              "Requests not recorded because a worker's series table was full", dropped);
}

/* ------------------------------------------------------------ render */

int m8_metrics_render(const m8_shm *shm, const m8_settings *s, m8_buf *out)
{
    if (!shm || !out)
        return M8_EINVAL;
    char pfx[M8_METRICS_MAX_PREFIX];
    int rc = m8_metrics_prefix(s ? s->api_prefix : NULL, pfx, sizeof pfx);
    if (rc < 0)
        return rc;
    unsigned groups = m8_metrics_groups(s ? s->metrics_groups : NULL);
    if (!groups)
        return 0;
    uint32_t nslots = m8_shm_nslots(shm); /* process-local: the segment's own can lie */
    wr w = {.b = out, .pfx = pfx, .created = shm->created, .rc = 0};

    if (groups & (M8_METRICS_TRAFFIC | M8_METRICS_PERFORMANCE | M8_METRICS_RELIABILITY |
                  M8_METRICS_HEALTH)) {
        series_set ss = {0};
        rc = m8__metrics_series_collect(shm, nslots, &ss);
        if (rc == 0) {
            if (groups & M8_METRICS_TRAFFIC)
                wcounter_aggs(&w, "http_requests", "Total HTTP requests", &ss.full, L_MES);
            if (groups & M8_METRICS_PERFORMANCE)
                wlatency(&w, &ss.hist);
            if (groups & M8_METRICS_RELIABILITY)
                wcounter_aggs(&w, "http_errors", "Total 4xx and 5xx HTTP responses", &ss.errs,
                              L_MEC);
            if (groups & M8_METRICS_HEALTH)
                wcounter_aggs(&w, "http_status", "HTTP responses by exact status code", &ss.status,
                              L_S);
        }
        m8__metrics_series_free(&ss);
        if (rc < 0)
            return rc;
    }
    if (groups & M8_METRICS_AUTH) {
        wauth(&w, shm, nslots, s);
        if (s && s->issuer)
            wissuer(&w, shm, nslots);
        if (s && s->jwks_uri && *s->jwks_uri && s->access_token_algorithm != M8_ALG_HS256)
            wjwks_age(&w, shm);
        if (s->token_mode == M8_MODE_STATEFUL)
            wrevocation(&w, shm, s);
    }
    if (groups & M8_METRICS_POOL)
        wpool(&w, shm, nslots);
    return w.rc;
}
