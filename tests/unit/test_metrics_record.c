/* test_metrics_record.c - recording into the shared series: exact sums
 * under threads, histogram buckets, labels, the pool gauges, a full slot,
 * invented methods, merged slots. */

#include "test_metrics.h"

/* ------------------------------------------------------------ recording */

#define THREADS 4
#define PER_THREAD 5000

typedef struct rec_arg {
    m8_shm_slot *slot;
    int id;
} rec_arg;

static void *recorder(void *p)
{
    rec_arg *a = p;
    static const char *const eps[] = {"/api/items/{id}", "/api/items/", "unmatched"};
    for (int i = 0; i < PER_THREAD; i++) {
        unsigned status = i % 10 == 0 ? 404 : (i % 25 == 0 ? 503 : 200);
        m8_metrics_record(a->slot, i % 2 ? "POST" : "GET", eps[i % 3], status, 0.001);
        if (i % 100 == 0)
            m8_metrics_auth_failure(a->slot, "expired");
    }
    return NULL;
}

static void record_threads(m8_shm_slot *slot)
{
    pthread_t th[THREADS];
    rec_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (rec_arg){slot, t};
        pthread_create(&th[t], NULL, recorder, &args[t]);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
}

/* Sums the sample values of every line starting with start. */
static double sum_lines(const char *body, const char *start)
{
    double sum = 0;
    size_t k = strlen(start);
    for (const char *p = body; p && *p;) {
        const char *nl = strchr(p, '\n');
        if (strncmp(p, start, k) == 0) {
            const char *sp = nl ? nl : p + strlen(p);
            while (sp > p && sp[-1] != ' ')
                sp--;
            sum += strtod(sp, NULL);
        }
        p = nl ? nl + 1 : NULL;
    }
    return sum;
}

void test_exact_sums(void)
{
    enum { SLOTS = 4 };
    int fd = -1;
    char err[256] = "";
    m8_shm *shm = m8_shm_create(SLOTS, &fd, err, sizeof err);
    if (!ok(shm != NULL, "m8_shm_create(%d) %s", SLOTS, err))
        return;
    close(fd);
    /* Slot 0 is recorded by this process; slots 1..3 by forked workers. */
    m8_shm_slot_claim(&shm->slots[0], getpid(), 0);
    pid_t kids[SLOTS];
    for (int k = 1; k < SLOTS; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            m8_shm_slot_claim(&shm->slots[k], getpid(), 0);
            atomic_store(&shm->slots[k].state, M8_SLOT_READY);
            record_threads(&shm->slots[k]);
            _exit(0);
        }
    }
    record_threads(&shm->slots[0]);
    int all_ok = 1;
    for (int k = 1; k < SLOTS; k++) {
        int st = 0;
        waitpid(kids[k], &st, 0);
        all_ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    ok(all_ok, "%d worker processes recorded with %d threads each", SLOTS - 1, THREADS);

    m8_settings *s = settings("/api", "all", NULL);
    int rc;
    char *body = render(shm, s, M8_MAX_RESPONSE_BYTES, &rc);
    is_int(rc, 0, "render over %d slots", SLOTS);
    const double N = (double)SLOTS * THREADS * PER_THREAD;
    is_int((long long)sum_lines(body, "api_http_requests_total{"), (long long)N,
           "N requests over %d processes x %d threads -> http_requests_total sums to N", SLOTS,
           THREADS);
    /* one line per label set: the slots' equal series are merged */
    is_int(count_lines(body, "api_http_requests_total{"), 12,
           "series of equal labels in several slots are merged (12 label sets)");
    /* per series exactness: GET /api/items/{id} 200: i even, i%3==0, not %10, not %25 */
    long long want = 0;
    for (int i = 0; i < PER_THREAD; i++)
        if (i % 2 == 0 && i % 3 == 0 && i % 10 != 0 && i % 25 != 0)
            want++;
    want *= SLOTS * THREADS;
    is_int((long long)value(body, "api_http_requests_total{method=\"GET\",endpoint=\"/api/items/"
                                  "{id}\",status_code=\"200\"}"),
           want, "one series sums exactly (%lld)", want);
    is_int((long long)sum_lines(body, "api_http_request_duration_seconds_count{"), (long long)N,
           "histogram _count sums to N");
    is_int((long long)sum_lines(body, "api_http_request_duration_seconds_bucket{"
                                      "method=\"GET\",endpoint=\"unmatched\",le=\"0.005\"}"),
           (long long)value(body, "api_http_request_duration_seconds_count{method=\"GET\","
                                  "endpoint=\"unmatched\"}"),
           "1 ms requests all fall in le=0.005");
    double sum = value(body, "api_http_request_duration_seconds_sum{method=\"GET\","
                             "endpoint=\"unmatched\"}");
    double cnt = value(body, "api_http_request_duration_seconds_count{method=\"GET\","
                             "endpoint=\"unmatched\"}");
    ok(sum > cnt * 0.001 - 1e-6 && sum < cnt * 0.001 + 1e-6, "_sum is count x 1 ms (%g)", sum);
    long long e404 = 0, e503 = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        if (i % 10 == 0)
            e404++;
        else if (i % 25 == 0)
            e503++;
    }
    e404 *= SLOTS * THREADS;
    e503 *= SLOTS * THREADS;
    is_int((long long)value(body, "api_http_status_total{status_code=\"404\"}"), e404,
           "http_status_total{404} sums the 404s of every endpoint and method");
    is_int((long long)value(body, "api_http_status_total{status_code=\"200\"}"),
           (long long)N - e404 - e503, "http_status_total{200}");
    is_int((long long)sum_lines(body, "api_http_errors_total{"), e404 + e503,
           "http_errors_total counts status >= 400 only");
    ok(sample(body, "api_http_errors_total{method=\"POST\",endpoint=\"unmatched\","
                    "status_class=\"5xx\"}") != NULL,
       "status_class label is 5xx");
    is_int((long long)value(body, "api_auth_token_validation_failures_total{reason=\"expired\"}"),
           SLOTS * THREADS * (PER_THREAD / 100), "auth failures summed over slots");
    ok(sample(body, "api_http_requests_created{method=\"GET\",endpoint=\"unmatched\","
                    "status_code=\"200\"}") != NULL,
       "each labelled counter has a _created series");
    check_text(body, "the merged output of 4 processes");
    free(body);
    settings_free(s);
    m8_shm_unmap(shm);
}

void test_buckets(void)
{
    m8_shm *shm = m8_shm_private();
    m8_shm_slot *sl = &shm->slots[0];
    /* exactly on each bound -> that bound's bucket (le = less or equal) */
    static const double at[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0};
    for (size_t i = 0; i < M8_ARRAY_LEN(at); i++)
        m8_metrics_record(sl, "GET", "/edge", 200, at[i]);
    m8_metrics_record(sl, "GET", "/above", 200, 0.0050001);
    m8_metrics_record(sl, "GET", "/above", 200, 10.000001);
    m8_metrics_record(sl, "GET", "/zero", 200, 0);
    m8_metrics_record(sl, "GET", "/zero", 200, -1);
    m8_settings *s = settings("/api", "performance", NULL);
    char *body = render(shm, s, 1 << 20, NULL);
    static const char *const le[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                     "0.5",   "1.0",  "2.5",   "5.0",  "10.0"};
    int good = 1;
    for (size_t i = 0; i < M8_ARRAY_LEN(le); i++) {
        char key[160];
        snprintf(key, sizeof key,
                 "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/edge\","
                 "le=\"%s\"}",
                 le[i]);
        const char *v = sample(body, key);
        char want[16];
        snprintf(want, sizeof want, "%zu.0\n", i + 1);
        if (!v || strncmp(v, want, strlen(want)) != 0) {
            good = 0;
            diag("%s -> %.10s, want %s", key, v ? v : "(none)", want);
        }
    }
    ok(good, "a duration exactly on a bound counts in that bound (cumulative 1..11, le text as "
             "prometheus_client writes it)");
    starts(sample(body, "api_http_request_duration_seconds_bucket{method=\"GET\","
                        "endpoint=\"/edge\",le=\"+Inf\"}"),
           "11.0\napi_http_request_duration_seconds_count{method=\"GET\",endpoint=\"/edge\"} "
           "11.0\napi_http_request_duration_seconds_sum{method=\"GET\",endpoint=\"/edge\"} 19.44"
           "\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"0."
           "005\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"0."
           "01\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"0."
           "025\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"0."
           "05\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"0."
           "1\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"0."
           "25\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"0."
           "5\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"1."
           "0\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"2."
           "5\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"5."
           "0\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"10."
           "0\"} 2.0\n"
           "api_http_request_duration_seconds_bucket{method=\"GET\",endpoint=\"/zero\",le=\"+"
           "Inf\"} 2.0\n"
           "api_http_request_duration_seconds_count{method=\"GET\",endpoint=\"/zero\"} 2.0\n"
           "api_http_request_duration_seconds_sum{method=\"GET\",endpoint=\"/zero\"} 0.0\n"
           "# HELP api_http_request_duration_seconds_created HTTP request latency in seconds\n"
           "# TYPE api_http_request_duration_seconds_created gauge\n",
           "the exact +Inf, _count, _sum lines; 0 and negative durations in the first bucket, "
           "_sum 0.0; series sorted by endpoint");
    is_int((long long)value(body, "api_http_request_duration_seconds_bucket{method=\"GET\","
                                  "endpoint=\"/above\",le=\"0.005\"}"),
           0, "just above 0.005 is not in le=0.005");
    is_int((long long)value(body, "api_http_request_duration_seconds_bucket{method=\"GET\","
                                  "endpoint=\"/above\",le=\"0.01\"}"),
           1, "... but in le=0.01");
    is_int((long long)value(body, "api_http_request_duration_seconds_bucket{method=\"GET\","
                                  "endpoint=\"/above\",le=\"10.0\"}"),
           1, "just above 10.0 is not in le=10.0");
    is_int((long long)value(body, "api_http_request_duration_seconds_bucket{method=\"GET\","
                                  "endpoint=\"/above\",le=\"+Inf\"}"),
           2, "... only in +Inf");
    ok(strstr(body, "http_requests_total") == NULL && strstr(body, "auth_") == NULL &&
           strstr(body, "fcgim8_") == NULL,
       "METRICS_GROUPS=performance renders the histogram only");
    check_text(body, "the bucket edges output");
    free(body);
    settings_free(s);
    m8_shm_unmap(shm);
}

void test_labels(void)
{
    m8_shm *shm = m8_shm_private();
    m8_shm_slot *sl = &shm->slots[0];
    m8_metrics_record(sl, "GET", "/a\"b\\c\nd", 200, 0.1);
    m8_metrics_record(sl, "GET", "/caf\xc3\xa9/\xff", 200, 0.1);
    m8_metrics_record(sl, NULL, NULL, 404, 0.1);
    /* a label cut inside a UTF-8 character by the slot's field size */
    char longep[M8_SHM_LABEL_BYTES + 8];
    memset(longep, 'x', sizeof longep);
    longep[0] = '/';
    memcpy(longep + M8_SHM_LABEL_BYTES - 2, "\xc3\xa9\xc3\xa9", 4);
    longep[sizeof longep - 1] = '\0';
    m8_metrics_record(sl, "GET", longep, 200, 0.1);
    m8_settings *s = settings("/", "traffic", NULL);
    char *body = render(shm, s, 1 << 20, NULL);
    ok(sample(body, "http_requests_total{method=\"GET\",endpoint=\"/a\\\"b\\\\c\\nd\","
                    "status_code=\"200\"}") != NULL,
       "quote, backslash and newline in an endpoint are escaped; API_PREFIX / gives no prefix");
    ok(sample(body, "http_requests_total{method=\"GET\",endpoint=\"/caf\xc3\xa9/\xef\xbf\xbd\","
                    "status_code=\"200\"}") != NULL,
       "valid UTF-8 kept, an invalid byte becomes U+FFFD");
    ok(sample(body, "http_requests_total{method=\"\",endpoint=\"unmatched\","
                    "status_code=\"404\"}") != NULL,
       "NULL endpoint records as unmatched");
    is_int(count_lines(body, "http_requests_total{method=\"GET\",endpoint=\"/xxx"), 1,
           "a label cut by the slot's field size is rendered (valid UTF-8: see the parse check)");
    check_text(body, "escaped labels");
    free(body);
    settings_free(s);
    m8_shm_unmap(shm);
}

/* ------------------------------------------------------------ pool group */

static void *busy_thread(void *p)
{
    m8_shm_busy(p, "GET", "/slow");
    return NULL;
}

static void *idle_thread(void *p)
{
    m8_shm_idle(p);
    return NULL;
}

void test_pool(void)
{
    int fd = -1;
    char err[256];
    m8_shm *shm = m8_shm_create(4, &fd, err, sizeof err);
    if (!ok(shm != NULL, "segment for the pool test"))
        return;
    close(fd);
    for (int k = 0; k < 3; k++)
        m8_shm_slot_claim(&shm->slots[k], 1000 + k, 1);
    atomic_store(&shm->slots[0].state, M8_SLOT_READY);
    atomic_store(&shm->slots[1].state, M8_SLOT_RETIRING);
    /* slot 2 stays STARTING, slot 3 FREE */
    pthread_t t;
    pthread_create(&t, NULL, busy_thread, &shm->slots[0]);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, idle_thread, &shm->slots[0]);
    pthread_join(t, NULL);
    pthread_create(&t, NULL, idle_thread, &shm->slots[1]);
    pthread_join(t, NULL);
    atomic_store(&shm->counters[M8_CTR_RESTART_CRASH], 3);
    atomic_store(&shm->counters[M8_CTR_RESTART_SCALE_DOWN], 2);
    atomic_store(&shm->counters[M8_CTR_SLOW_REQUESTS], 7);
    atomic_store(&shm->counters[M8_CTR_RELOADS_FAILED], 1);
    atomic_store(&shm->listen_queue, 5);
    atomic_store(&shm->listen_queue_max, 12);
    atomic_store(&shm->workers_target, 4);
    atomic_store(&shm->generation, 2);
    atomic_store(&shm->ready, 1);
    m8_settings *s = settings("/my-service", "pool", NULL);
    char *body = render(shm, s, 1 << 20, NULL);
    static const struct {
        const char *key;
        double v;
    } t_[] = {
        {"my_service_fcgim8_workers{state=\"starting\"}", 1},
        {"my_service_fcgim8_workers{state=\"busy\"}", 1},
        {"my_service_fcgim8_workers{state=\"idle\"}", 1},
        {"my_service_fcgim8_threads{state=\"busy\"}", 1},
        {"my_service_fcgim8_threads{state=\"idle\"}", 2},
        {"my_service_fcgim8_workers_target", 4},
        {"my_service_fcgim8_generation", 2},
        {"my_service_fcgim8_worker_restarts_total{cause=\"crash\"}", 3},
        {"my_service_fcgim8_worker_restarts_total{cause=\"max_requests\"}", 0},
        {"my_service_fcgim8_worker_restarts_total{cause=\"timeout\"}", 0},
        {"my_service_fcgim8_worker_restarts_total{cause=\"reload\"}", 0},
        {"my_service_fcgim8_worker_restarts_total{cause=\"scale_down\"}", 2},
        {"my_service_fcgim8_slow_requests_total", 7},
        {"my_service_fcgim8_reloads_total{result=\"ok\"}", 0},
        {"my_service_fcgim8_reloads_total{result=\"failed\"}", 1},
        {"my_service_fcgim8_listen_queue", 5},
        {"my_service_fcgim8_listen_queue_max", 12},
        {"my_service_fcgim8_ready", 1},
        {"my_service_fcgim8_metric_series_dropped_total", 0},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(t_); i++)
        ok(value(body, t_[i].key) == t_[i].v, "%s = %g", t_[i].key, t_[i].v);
    check_text(body, "the pool group");
    free(body);
    settings_free(s);
    m8_shm_unmap(shm);
}

/* ------------------------------------------------------------ a full slot */

void test_full_slot(void)
{
    m8_shm *shm = m8_shm_private();
    m8_shm_slot *sl = &shm->slots[0];
    const unsigned own = M8_SHM_SERIES - M8_METRICS_OVERFLOW_RESERVE;
    char ep[32];
    for (unsigned i = 0; i < M8_SHM_SERIES + 40; i++) {
        snprintf(ep, sizeof ep, "/r%u", i);
        m8_metrics_record(sl, "GET", ep, i % 2 ? 404 : 200, 0.01);
    }
    m8_metrics_record(sl, "GET", "/r0", 200, 0.01);
    is_int(atomic_load(&sl->series_dropped), 0, "%u label sets in one slot: nothing dropped",
           M8_SHM_SERIES + 40);
    m8_settings *s = settings("/api", "all", NULL);
    int rc;
    char *body = render(shm, s, M8_MAX_RESPONSE_BYTES, &rc);
    is_int(rc, 0, "a full slot renders");
    is_int(count_lines(body, "api_http_requests_total{method=\"GET\""), own,
           "the first %u label sets get their own series", own);
    is_int((long long)value(body, "api_http_requests_total{method=\"GET\",endpoint=\"/r0\","
                                  "status_code=\"200\"}"),
           2, "an existing series still counts when the slot is full");
    unsigned rest = M8_SHM_SERIES + 40 - own;
    is_int((long long)value(body, "api_http_requests_total{method=\"other\",endpoint=\"overflow\","
                                  "status_code=\"200\"}"),
           rest / 2, "the rest are counted in the overflow series of their status (200)");
    is_int((long long)value(body, "api_http_requests_total{method=\"other\",endpoint=\"overflow\","
                                  "status_code=\"404\"}"),
           rest - rest / 2, "... and (404)");
    is_int((long long)value(body, "api_http_status_total{status_code=\"404\"}"),
           (M8_SHM_SERIES + 40) / 2, "so the per-status totals stay exact");
    is_int((long long)value(body, "api_fcgim8_metric_series_dropped_total"), 0,
           "fcgim8_metric_series_dropped_total stays 0");
    check_text(body, "a full slot");
    free(body);

    /* the overflow area itself is bounded by statuses, which the service picks */
    unsigned left = M8_SHM_SERIES - atomic_load(&sl->nseries);
    for (unsigned st = 0; st < left + 3; st++)
        m8_metrics_record(sl, "GET", "/new", 500 + st, 0.01);
    is_int(atomic_load(&sl->series_dropped), 3,
           "past %u overflow statuses a request is dropped and counted",
           M8_METRICS_OVERFLOW_RESERVE);
    settings_free(s);
    m8_shm_unmap(shm);
}

/* A client sends requests with made-up methods (M000 ... M129): before, each
 * took a series until the slot was full and real traffic went uncounted. */
void test_invented_methods(void)
{
    m8_shm *shm = m8_shm_private();
    m8_shm_slot *sl = &shm->slots[0];
    char m[16];
    for (unsigned i = 0; i < 130; i++) {
        snprintf(m, sizeof m, "M%03u", i);
        m8_metrics_record(sl, m, "unmatched", 405, 0.001);
    }
    m8_metrics_record(sl, "get", "unmatched", 405, 0.001);
    m8_metrics_record(sl, "GET", "/api/items", 200, 0.001);
    m8_metrics_record(sl, "PATCH", "/api/items", 200, 0.001);
    is_int(atomic_load(&sl->series_dropped), 0, "invented methods never fill the slot");
    is_int(atomic_load(&sl->nseries), 3, "130 invented methods make one series");
    m8_settings *s = settings("/api", "all", NULL);
    char *body = render(shm, s, M8_MAX_RESPONSE_BYTES, NULL);
    is_int((long long)value(body, "api_http_requests_total{method=\"GET\",endpoint=\"/api/items\","
                                  "status_code=\"200\"}"),
           1, "a real GET after 130 invented methods is counted");
    is_int((long long)value(body,
                            "api_http_requests_total{method=\"PATCH\",endpoint=\"/api/items\","
                            "status_code=\"200\"}"),
           1, "PATCH is a standard method label");
    is_int((long long)value(body, "api_http_requests_total{method=\"other\",endpoint=\"unmatched\","
                                  "status_code=\"405\"}"),
           131, "every method outside the standard set is labelled other (lower-case get too)");
    ok(!strstr(body, "M000") && !strstr(body, "M129"), "no invented method reaches a label");
    check_text(body, "invented methods");
    free(body);
    settings_free(s);
    is_str(m8_metrics_method_label("DELETE"), "DELETE", "DELETE is kept");
    is_str(m8_metrics_method_label("PROPFIND"), "other", "PROPFIND is other");
    is_str(m8_metrics_method_label(""), "", "no method stays empty");
    m8_shm_unmap(shm);
}

/* ------------------------------------------------------------ merge and created */

void test_merge_created(void)
{
    int fd = -1;
    char err[256];
    m8_shm *shm = m8_shm_create(2, &fd, err, sizeof err);
    if (!ok(shm != NULL, "segment for the merge test"))
        return;
    close(fd);
    m8_shm_slot_claim(&shm->slots[0], 10, 0);
    m8_shm_slot_claim(&shm->slots[1], 11, 0);
    m8_metrics_record(&shm->slots[0], "GET", "/m", 500, 0.2);
    m8_metrics_record(&shm->slots[1], "GET", "/m", 500, 3.0);
    m8_metrics_record(&shm->slots[1], "GET", "/m", 502, 0.02);
    shm->slots[0].series[0].created = 1700000000.5;
    shm->slots[1].series[0].created = 1600000000.25;
    /* a released slot keeps its counts: counters never go down */
    m8_shm_slot_release(&shm->slots[1]);
    m8_settings *s = settings("/api", "all", NULL);
    char *body = render(shm, s, 1 << 20, NULL);
    is_int((long long)value(body, "api_http_requests_total{method=\"GET\",endpoint=\"/m\","
                                  "status_code=\"500\"}"),
           2, "equal series of two slots sum (incl. a released slot)");
    starts(sample(body, "api_http_requests_created{method=\"GET\",endpoint=\"/m\","
                        "status_code=\"500\"}"),
           "1600000000.25\napi_http_requests_created{method=\"GET\",endpoint=\"/m\","
           "status_code=\"502\"}",
           "_created is the earliest of the merged series");
    is_int((long long)value(body, "api_http_errors_total{method=\"GET\",endpoint=\"/m\","
                                  "status_class=\"5xx\"}"),
           3, "errors merge 500 and 502 into 5xx");
    is_int((long long)value(body, "api_http_request_duration_seconds_bucket{method=\"GET\","
                                  "endpoint=\"/m\",le=\"0.25\"}"),
           2, "the histogram merges statuses of (method, endpoint)");
    is_int((long long)value(body, "api_http_request_duration_seconds_count{method=\"GET\","
                                  "endpoint=\"/m\"}"),
           3, "histogram _count of (method, endpoint)");
    ok(value(body, "api_http_request_duration_seconds_sum{method=\"GET\",endpoint=\"/m\"}") == 3.22,
       "histogram _sum 3.22");
    free(body);
    settings_free(s);
    m8_shm_unmap(shm);
}
