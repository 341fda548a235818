/* health.c - {API_PREFIX}/health/ (doc/responses.md#health,
 * doc/responses.md#health-detail).
 *
 * Each run starts one detached thread per check and waits up to the timeout
 * on a CLOCK_MONOTONIC condition variable.  The run state is heap-allocated
 * and reference-counted: a check that outlives its timeout finishes later
 * into memory that is still its own, and the last one out frees it.  A check
 * still running past its timeout is marked in-flight on the m8_health and is
 * not started again until it returns, so a hung dependency costs one thread,
 * not one per request. */
#include "builtin/health.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/thread.h"

struct m8_health_report {
    char *error;
    json_object *meta;
};

/* Shared by a check's thread and, once it timed out, by the m8_health_check
 * that must not start it again before it returns.  The thread never touches
 * the m8_health itself, which may be gone by the time it finishes. */
typedef struct m8_health_inflight {
    atomic_int refs;
    atomic_bool done;
} m8_health_inflight;

typedef enum { SLOT_SKIPPED, SLOT_NOSTART, SLOT_RUNNING } slot_state;

typedef struct health_run health_run;

typedef struct health_slot {
    health_run *run;
    m8_health_fn fn;
    void *data;
    m8_health_inflight *inflight; /* set before the thread starts, then read-only */
    slot_state state;
    /* written by the thread, read by the caller only once done (under mu) */
    m8_health_report report;
    m8_health_status status;
    double latency_ms;
    bool done;
} health_slot;

struct health_run {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;       /* caller + running threads; guarded by mu */
    size_t pending; /* threads not finished; guarded by mu */
    size_t n;
    health_slot slots[];
};

/* ------------------------------------------------------------ report API */

void m8_health_set_error(m8_health_report *report, const char *fmt, ...)
{
    if (!report || !fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    m8_buf b;
    m8_buf_init(&b, M8_MAX_RESPONSE_BYTES);
    int rc = m8_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc) {
        m8_buf_free(&b);
        return;
    }
    free(report->error);
    report->error = m8_buf_steal(&b);
}

void m8_health_set_meta(m8_health_report *report, struct json_object *meta)
{
    if (!report) {
        json_object_put(meta);
        return;
    }
    json_object_put(report->meta);
    report->meta = NULL;
    if (meta && json_object_is_type(meta, json_type_object))
        report->meta = meta;
    else
        json_object_put(meta); /* meta is an object or null */
}

static void report_clear(m8_health_report *r)
{
    free(r->error);
    r->error = NULL;
    json_object_put(r->meta);
    r->meta = NULL;
}

/* ------------------------------------------------------------ pure parts */

const char *m8_health_status_name(m8_health_status st)
{
    switch (st) {
    case M8_HEALTH_OK: return "ok";
    case M8_HEALTH_DEGRADED: return "degraded";
    case M8_HEALTH_FAIL: return "fail";
    case M8_HEALTH_UNKNOWN: return "unknown";
    }
    return "fail";
}

m8_health_status m8_health_aggregate(const m8_health_status *st, size_t n, m8_health_policy policy)
{
    bool any_unknown = false, any_degraded = false;
    for (size_t i = 0; i < n; i++) {
        switch (st[i]) {
        case M8_HEALTH_OK: break;
        case M8_HEALTH_DEGRADED: any_degraded = true; break;
        case M8_HEALTH_UNKNOWN: any_unknown = true; break;
        case M8_HEALTH_FAIL:
        default: return M8_HEALTH_FAIL;
        }
    }
    if (any_unknown)
        return policy == M8_HEALTH_STRICT ? M8_HEALTH_FAIL : M8_HEALTH_UNKNOWN;
    return any_degraded ? M8_HEALTH_DEGRADED : M8_HEALTH_OK;
}

/* Whether a Python str.isspace() character (what re's \s matches) starts at
 * p: the ASCII ones, 0x1c-0x1f, and the Unicode spaces in UTF-8. */
static bool is_py_space(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    if (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f))
        return true;
    if (c == 0xC2)
        return p[1] == 0x85 || p[1] == 0xA0;
    if (c == 0xE1)
        return p[1] == 0x9A && p[2] == 0x80; /* U+1680 */
    if (c == 0xE2 && p[1] == 0x80)           /* U+2000-200A, U+2028, U+2029, U+202F */
        return p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF;
    if (c == 0xE2 && p[1] == 0x81)
        return p[2] == 0x9F; /* U+205F */
    if (c == 0xE3)
        return p[1] == 0x80 && p[2] == 0x80; /* U+3000 */
    return false;
}

/* Length of a match of "://[^/\s:@]+:[^/\s@]+@" at s, or 0.  Both classes
 * stop at their first excluded byte, so no backtracking can find another. */
static size_t cred_match(const char *s)
{
    if (strncmp(s, "://", 3) != 0)
        return 0;
    size_t i = 3, start = 3;
    while (s[i] && s[i] != '/' && s[i] != ':' && s[i] != '@' && !is_py_space(s + i))
        i++;
    if (i == start || s[i] != ':')
        return 0;
    start = ++i;
    while (s[i] && s[i] != '/' && s[i] != '@' && !is_py_space(s + i))
        i++;
    if (i == start || s[i] != '@')
        return 0;
    return i + 1;
}

char *m8_health_scrub(const char *s)
{
    if (!s)
        return NULL;
    m8_buf b;
    m8_buf_init(&b, M8_MAX_RESPONSE_BYTES);
    int rc = m8_buf_reserve(&b, strlen(s));
    if (!rc)
        rc = m8_buf_append(&b, "", 0); /* NUL-terminates an empty result */
    size_t i = 0;
    while (!rc && s[i]) {
        size_t m = s[i] == ':' ? cred_match(s + i) : 0;
        if (m) {
            rc = m8_buf_puts(&b, "://***:***@");
            i += m;
        } else {
            rc = m8_buf_putc(&b, s[i]);
            i++;
        }
    }
    if (rc) {
        m8_buf_free(&b);
        return NULL;
    }
    return m8_buf_steal(&b);
}

/* Matches one ASCII letter of a pattern word at k, case-insensitively with
 * the extra equivalences of Python's re.IGNORECASE for these letters (i:
 * U+0130 U+0131, s: U+017F, k: U+212A).  Returns the bytes consumed or 0. */
static size_t letter_match(const unsigned char *k, char w)
{
    unsigned char c = k[0];
    if (c >= 'A' && c <= 'Z')
        c = (unsigned char)(c + 32);
    if (c == (unsigned char)w)
        return 1;
    if (w == 'i' && k[0] == 0xC4 && (k[1] == 0xB0 || k[1] == 0xB1))
        return 2;
    if (w == 's' && k[0] == 0xC5 && k[1] == 0xBF)
        return 2;
    if (w == 'k' && k[0] == 0xE2 && k[1] == 0x84 && k[2] == 0xAA)
        return 3;
    return 0;
}

/* (^|_)(secret|...|dsn)($|_) searched case-insensitively; Python's $ also
 * matches before a final "\n". */
bool m8_health_key_is_secret(const char *key)
{
    static const char *const words[] = {
        "secret",     "password",    "passwd",     "token", "api_key",
        "access_key", "private_key", "credential", "dsn",
    };
    if (!key)
        return false;
    const unsigned char *k = (const unsigned char *)key;
    for (size_t p = 0; k[p]; p++) {
        if (p > 0 && k[p - 1] != '_')
            continue;
        for (size_t w = 0; w < M8_ARRAY_LEN(words); w++) {
            size_t q = p;
            const char *wp = words[w];
            for (; *wp; wp++) {
                size_t m = letter_match(k + q, *wp);
                if (!m)
                    break;
                q += m;
            }
            if (*wp)
                continue;
            if (k[q] == '\0' || k[q] == '_' || (k[q] == '\n' && k[q + 1] == '\0'))
                return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ setup */

void m8_health_init(m8_health *h)
{
    memset(h, 0, sizeof *h);
    h->timeout_s = 0.5;
    h->policy = M8_HEALTH_LENIENT;
    h->cache_ttl_s = 2.0;
    pthread_mutex_init(&h->lock, NULL);
}

static void inflight_unref(m8_health_inflight *f)
{
    if (f && atomic_fetch_sub(&f->refs, 1) == 1)
        free(f);
}

void m8_health_free(m8_health *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->checks[i].name);
        inflight_unref(h->checks[i].inflight);
    }
    free(h->checks);
    h->checks = NULL;
    h->n = 0;
    free(h->cache_checks_json);
    h->cache_checks_json = NULL;
    h->cache_valid = false;
    pthread_mutex_destroy(&h->lock);
}

int m8_health_add(m8_health *h, const char *name, m8_health_fn fn, void *data)
{
    if (!h || !name || !*name || !fn)
        return M8_EINVAL;
    m8_health_check *c = realloc(h->checks, (h->n + 1) * sizeof *c);
    if (!c)
        return M8_ENOMEM;
    h->checks = c;
    char *nm = strdup(name);
    if (!nm)
        return M8_ENOMEM;
    c[h->n] = (m8_health_check){.name = nm, .fn = fn, .data = data, .inflight = NULL};
    h->n++;
    return 0;
}

/* ------------------------------------------------------------ running */

static void run_release_locked_and_unlock(health_run *run)
{
    bool last = --run->refs == 0;
    pthread_mutex_unlock(&run->mu);
    if (!last)
        return;
    for (size_t i = 0; i < run->n; i++)
        report_clear(&run->slots[i].report);
    pthread_cond_destroy(&run->cv);
    pthread_mutex_destroy(&run->mu);
    free(run);
}

static void *check_thread(void *arg)
{
    health_slot *sl = arg;
    health_run *run = sl->run;
    double t0 = m8_now_mono();
    m8_health_status st = sl->fn(&sl->report, sl->data);
    double ms = (m8_now_mono() - t0) * 1000.0;
    if (st != M8_HEALTH_OK && st != M8_HEALTH_DEGRADED && st != M8_HEALTH_FAIL &&
        st != M8_HEALTH_UNKNOWN)
        st = M8_HEALTH_FAIL;
    m8_health_inflight *f = sl->inflight; /* our own reference */
    pthread_mutex_lock(&run->mu);
    sl->status = st;
    sl->latency_ms = ms;
    sl->done = true;
    run->pending--;
    pthread_cond_broadcast(&run->cv);
    atomic_store(&f->done, true);
    run_release_locked_and_unlock(run);
    inflight_unref(f);
    return NULL;
}

static health_run *run_new(size_t n)
{
    health_run *run = calloc(1, sizeof *run + n * sizeof(health_slot));
    if (!run)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&run->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc) {
        free(run);
        return NULL;
    }
    pthread_mutex_init(&run->mu, NULL);
    run->refs = 1;
    run->n = n;
    return run;
}

/* Starts one slot's thread with every signal blocked, so signals keep going
 * to the serving threads.  Returns false when no thread could be made. */
static bool slot_start(health_run *run, health_slot *sl)
{
    m8_health_inflight *f = malloc(sizeof *f);
    if (!f)
        return false;
    atomic_init(&f->refs, 2); /* the thread's and the caller's */
    atomic_init(&f->done, false);
    sl->inflight = f;
    pthread_mutex_lock(&run->mu);
    run->refs++;
    run->pending++;
    pthread_mutex_unlock(&run->mu);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t tid;
    int rc = m8_thread_start(&tid, &attr, check_thread, sl);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        return true;

    pthread_mutex_lock(&run->mu);
    run->refs--;
    run->pending--;
    pthread_mutex_unlock(&run->mu);
    free(f);
    sl->inflight = NULL;
    return false;
}

/* Shortest text that reads back as v (Python's repr for finite floats). */
static void fmt_double(char *out, size_t cap, double v)
{
    if (!isfinite(v)) {
        snprintf(out, cap, "null");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            break;
    }
    if (!strpbrk(out, ".e")) {
        size_t l = strlen(out);
        if (l + 2 < cap)
            memcpy(out + l, ".0", 3);
    }
}

static int render_string_or_null(m8_buf *b, const char *s)
{
    if (!s)
        return m8_buf_puts(b, "null");
    char *clean = m8_health_scrub(s);
    if (!clean)
        return M8_ENOMEM;
    int rc = m8_buf_json_str(b, clean, strlen(clean));
    free(clean);
    return rc;
}

static int render_meta(m8_buf *b, json_object *meta)
{
    if (!meta)
        return m8_buf_puts(b, "null");
    int rc = m8_buf_putc(b, '{');
    bool first = true;
    json_object_object_foreach(meta, key, val)
    {
        if (rc)
            break;
        if (!first)
            rc = m8_buf_putc(b, ',');
        first = false;
        if (!rc)
            rc = m8_buf_json_str(b, key, strlen(key));
        if (!rc)
            rc = m8_buf_putc(b, ':');
        if (rc)
            break;
        if (m8_health_key_is_secret(key)) {
            rc = m8_buf_puts(b, "\"REDACTED\"");
        } else if (json_object_is_type(val, json_type_string)) {
            rc = render_string_or_null(b, json_object_get_string(val));
        } else {
            const char *txt = json_object_to_json_string_ext(
                val, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
            rc = m8_buf_puts(b, txt ? txt : "null");
        }
    }
    if (!rc)
        rc = m8_buf_putc(b, '}');
    return rc;
}

static int render_check(m8_buf *b, const char *name, m8_health_status st, const double *latency,
                        const char *error, json_object *meta)
{
    char lat[40] = "null";
    if (latency)
        fmt_double(lat, sizeof lat, *latency);
    int rc = m8_buf_puts(b, "{\"name\":");
    if (!rc)
        rc = m8_buf_json_str(b, name, strlen(name));
    if (!rc)
        rc = m8_buf_printf(
            b, ",\"status\":\"%s\",\"latency_ms\":%s,\"error\":", m8_health_status_name(st), lat);
    if (!rc)
        rc = render_string_or_null(b, error);
    if (!rc)
        rc = m8_buf_puts(b, ",\"meta\":");
    if (!rc)
        rc = render_meta(b, meta);
    if (!rc)
        rc = m8_buf_printf(b, ",\"ok\":%s}", st == M8_HEALTH_OK ? "true" : "false");
    return rc;
}

/* Runs every check once; returns the aggregate and the rendered "checks"
 * array in *checks_json (caller frees). */
static int run_checks(m8_health *h, m8_health_status *agg, char **checks_json)
{
    size_t n = h->n;
    health_run *run = run_new(n);
    m8_health_status *st = calloc(n ? n : 1, sizeof *st);
    bool *done = calloc(n ? n : 1, sizeof *done);
    if (!run || !st || !done) {
        if (run) {
            pthread_mutex_lock(&run->mu);
            run_release_locked_and_unlock(run);
        }
        free(st);
        free(done);
        return M8_ENOMEM;
    }

    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < n; i++) {
        health_slot *sl = &run->slots[i];
        sl->run = run;
        sl->fn = h->checks[i].fn;
        sl->data = h->checks[i].data;
        m8_health_inflight *f = h->checks[i].inflight;
        if (f && atomic_load(&f->done)) {
            inflight_unref(f);
            h->checks[i].inflight = f = NULL;
        }
        sl->state = f ? SLOT_SKIPPED : SLOT_RUNNING;
    }
    pthread_mutex_unlock(&h->lock);

    double timeout = h->timeout_s > 0 ? h->timeout_s : 0;
    double deadline = m8_now_mono() + timeout;
    for (size_t i = 0; i < n; i++) {
        health_slot *sl = &run->slots[i];
        if (sl->state == SLOT_RUNNING && !slot_start(run, sl))
            sl->state = SLOT_NOSTART;
    }

    struct timespec ts;
    ts.tv_sec = (time_t)deadline; /* positive: truncation is floor */
    ts.tv_nsec = (long)((deadline - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    pthread_mutex_lock(&run->mu);
    while (run->pending > 0) {
        int rc = pthread_cond_timedwait(&run->cv, &run->mu, &ts);
        if (rc == ETIMEDOUT)
            break;
    }
    for (size_t i = 0; i < n; i++)
        done[i] = run->slots[i].done;
    pthread_mutex_unlock(&run->mu);

    /* Hand the references of timed-out checks to the m8_health. */
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < n; i++) {
        health_slot *sl = &run->slots[i];
        if (sl->state != SLOT_RUNNING)
            continue;
        if (done[i]) {
            inflight_unref(sl->inflight);
        } else {
            inflight_unref(h->checks[i].inflight);
            h->checks[i].inflight = sl->inflight;
        }
        /* sl->inflight stays as is: the thread reads it too. */
    }
    pthread_mutex_unlock(&h->lock);

    char timeout_text[64];
    snprintf(timeout_text, sizeof timeout_text, "timeout %.0fms", timeout * 1000.0);
    m8_buf b;
    m8_buf_init(&b, M8_MAX_RESPONSE_BYTES);
    int rc = m8_buf_putc(&b, '[');
    for (size_t i = 0; !rc && i < n; i++) {
        health_slot *sl = &run->slots[i];
        if (i)
            rc = m8_buf_putc(&b, ',');
        if (rc)
            break;
        const char *name = h->checks[i].name;
        if (sl->state == SLOT_RUNNING && done[i]) {
            st[i] = sl->status;
            rc = render_check(&b, name, sl->status, &sl->latency_ms, sl->report.error,
                              sl->report.meta);
        } else {
            st[i] = M8_HEALTH_FAIL;
            const char *err =
                sl->state == SLOT_NOSTART ? "check could not be started" : timeout_text;
            if (sl->state == SLOT_NOSTART)
                m8_log(M8_LOG_ERROR, "health check %s: no thread could be started", name);
            rc = render_check(&b, name, M8_HEALTH_FAIL, NULL, err, NULL);
        }
    }
    if (!rc)
        rc = m8_buf_putc(&b, ']');
    free(done);

    pthread_mutex_lock(&run->mu);
    run_release_locked_and_unlock(run);

    if (rc) {
        m8_buf_free(&b);
        free(st);
        return rc;
    }
    *agg = m8_health_aggregate(st, n, h->policy);
    free(st);
    *checks_json = m8_buf_steal(&b);
    return 0;
}

/* The checks through the result cache (shared by both answers). */
static int get_results(m8_health *h, m8_health_status *agg, char **checks_json)
{
    double ttl = h->cache_ttl_s;
    pthread_mutex_lock(&h->lock);
    if (ttl > 0 && h->cache_valid && m8_now_mono() - h->cache_time < ttl) {
        *agg = h->cache_status;
        *checks_json = strdup(h->cache_checks_json);
        pthread_mutex_unlock(&h->lock);
        return *checks_json ? 0 : M8_ENOMEM;
    }
    pthread_mutex_unlock(&h->lock);

    int rc = run_checks(h, agg, checks_json);
    if (rc || !(ttl > 0))
        return rc;
    char *copy = strdup(*checks_json);
    if (!copy)
        return 0; /* the answer is fine, only the cache is not updated */
    pthread_mutex_lock(&h->lock);
    free(h->cache_checks_json);
    h->cache_checks_json = copy;
    h->cache_status = *agg;
    h->cache_time = m8_now_mono();
    h->cache_valid = true;
    pthread_mutex_unlock(&h->lock);
    return 0;
}

/* Who sees the detailed body (doc/responses.md#health-detail). */
static bool detail_allowed(const m8_health *h, const m8_request *req)
{
    if (h->detail_public)
        return true;
    if (h->authorizer && h->authorizer(req, h->authorizer_data))
        return true;
    const m8_settings *s = h->settings;
    if (!s)
        return false;
    const char *token = m8_req_header(req, "X-Internal-Token");
    if (!token || !*token)
        return false;
    if (s->health_detail_credential && *s->health_detail_credential)
        return m8_secret_eq(token, s->health_detail_credential);
    if (!s->production_gate)
        return m8_secret_eq(token, s->private_api_secret);
    return false;
}

static int send_json(m8_request *req, int status, const m8_buf *b)
{
    return m8_res_body(req, status, "application/json", b->data, b->len);
}

int m8_health_handle(m8_health *h, m8_request *req, bool ready)
{
    m8_buf b;
    m8_buf_init(&b, M8_MAX_RESPONSE_BYTES);
    int rc;
    if (!ready) {
        rc = m8_buf_puts(&b, "{\"status\":\"initializing\",\"ready\":false}");
        if (!rc)
            rc = send_json(req, 503, &b);
        m8_buf_free(&b);
        return rc;
    }

    bool detail = detail_allowed(h, req);
    m8_health_status agg = M8_HEALTH_OK;
    char *checks = NULL;
    rc = get_results(h, &agg, &checks);
    if (rc) {
        m8_buf_free(&b);
        return m8_req_fail(req, "health: running the checks failed: %s", m8_strerror(rc));
    }
    int status = agg == M8_HEALTH_FAIL ? 503 : 200;
    rc = m8_buf_printf(&b, "{\"status\":\"%s\"", m8_health_status_name(agg));
    if (detail) {
        if (!rc)
            rc = m8_buf_printf(&b, ",\"checks\":%s,\"service\":", checks);
        if (!rc)
            rc = h->service_name ? m8_buf_json_str(&b, h->service_name, strlen(h->service_name))
                                 : m8_buf_puts(&b, "null");
        if (!rc)
            rc = m8_buf_puts(&b, ",\"version\":");
        if (!rc)
            rc = h->service_version
                     ? m8_buf_json_str(&b, h->service_version, strlen(h->service_version))
                     : m8_buf_puts(&b, "null");
        if (!rc)
            rc = m8_buf_puts(&b, ",\"fcgi_m8\":");
        if (!rc)
            rc = m8_buf_json_str(&b, m8_version(), strlen(m8_version()));
    }
    if (!rc)
        rc = m8_buf_putc(&b, '}');
    free(checks);
    if (!rc)
        rc = send_json(req, status, &b);
    m8_buf_free(&b);
    if (rc)
        return m8_req_fail(req, "health: rendering the body failed: %s", m8_strerror(rc));
    return 0;
}
