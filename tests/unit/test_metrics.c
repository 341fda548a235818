/* test_metrics.c - recording into the shared segment and the Prometheus
 * exposition summed over every slot (lib/metrics.h, CONTRACT D10, A 5.5,
 * A 5.7). */
#include "builtin/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

static m8_settings *settings(const char *prefix, const char *groups, const char *cred)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->metrics_enabled = true;
    s->api_prefix = prefix ? strdup(prefix) : NULL;
    s->metrics_groups = groups ? strdup(groups) : NULL;
    s->metrics_scrape_credential = cred ? strdup(cred) : NULL;
    return s;
}

static void settings_free(m8_settings *s)
{
    free(s->api_prefix);
    free(s->metrics_groups);
    free(s->metrics_scrape_credential);
    free(s);
}

/* Renders into a fresh string (caller frees); *rc gets the result. */
static char *render(const m8_shm *shm, const m8_settings *s, size_t max, int *rc)
{
    m8_buf b;
    m8_buf_init(&b, max);
    int r = m8_metrics_render(shm, s, &b);
    if (rc)
        *rc = r;
    char *out = b.data ? m8_buf_steal(&b) : strdup("");
    m8_buf_free(&b);
    return out;
}

/* The value text of the sample line "key value" in body, or NULL. */
static const char *sample(const char *body, const char *key)
{
    size_t k = strlen(key);
    for (const char *p = body; p && *p;) {
        if (strncmp(p, key, k) == 0 && p[k] == ' ')
            return p + k + 1;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

static double value(const char *body, const char *key)
{
    const char *v = sample(body, key);
    return v ? strtod(v, NULL) : -1;
}

static int count_lines(const char *body, const char *start)
{
    int n = 0;
    size_t k = strlen(start);
    for (const char *p = body; p && *p;) {
        if (strncmp(p, start, k) == 0)
            n++;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return n;
}

/* got begins with want. */
static int starts(const char *got, const char *want, const char *name)
{
    int cond = got && strncmp(got, want, strlen(want)) == 0;
    ok(cond, "%s", name);
    if (!cond)
        printf("#   got: %.*s\n#  want: %s\n", (int)strlen(want), got ? got : "(null)", want);
    return cond;
}

/* ------------------------------------------------------------ text format check */

/* Stdlib-only Prometheus text (0.0.4) checker: every line is a HELP/TYPE
 * comment or `name{labels} value`; one TYPE per family, given before its
 * samples; families contiguous; label values escaped; histogram buckets
 * cumulative, with +Inf equal to _count. */
static const char checker_py[] =
    "import re, sys\n"
    "NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'\n"
    "LV = r'\"(?:[^\"\\\\\\n]|\\\\[\\\\\"n])*\"'\n"
    "LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*=' + LV\n"
    "SAMPLE = re.compile(r'^(' + NAME + r')(\\{(?:' + LABEL + r'(?:,' + LABEL + r')*)?\\})? "
    "(\\S+)$')\n"
    "HELP = re.compile(r'^# HELP (' + NAME + r') (.*)$')\n"
    "TYPE = re.compile(r'^# TYPE (' + NAME + r') (counter|gauge|histogram|summary|untyped)$')\n"
    "data = open(sys.argv[1], 'rb').read().decode('utf-8')\n"
    "if data and not data.endswith('\\n'): sys.exit('no final newline')\n"
    "types, done, cur = {}, set(), None\n"
    "hist = {}\n"
    "for n, line in enumerate(data.splitlines(), 1):\n"
    "    m = HELP.match(line)\n"
    "    if m: continue\n"
    "    m = TYPE.match(line)\n"
    "    if m:\n"
    "        if m.group(1) in types: sys.exit('line %d: second TYPE for %s' % (n, m.group(1)))\n"
    "        if cur: done.add(cur)\n"
    "        types[m.group(1)] = m.group(2); cur = m.group(1); continue\n"
    "    m = SAMPLE.match(line)\n"
    "    if not m: sys.exit('line %d: not a sample: %r' % (n, line))\n"
    "    name, labels, val = m.group(1), m.group(2) or '', m.group(3)\n"
    "    fam = name\n"
    "    if types.get(cur) == 'histogram' and name in (cur + '_bucket', cur + '_count', "
    "cur + '_sum'): fam = cur\n"
    "    if fam != cur: sys.exit('line %d: sample %s outside its family %s' % (n, name, cur))\n"
    "    if fam in done: sys.exit('line %d: family %s not contiguous' % (n, fam))\n"
    "    if val not in ('+Inf', '-Inf', 'NaN'): float(val)\n"
    "    if types[cur] == 'histogram':\n"
    "        key = re.sub(r',?le=\"[^\"]*\"', '', labels).replace('{}', '')\n"
    "        h = hist.setdefault((cur, key), {'last': 0.0})\n"
    "        if name.endswith('_bucket'):\n"
    "            v = float(val)\n"
    "            if v < h['last']: sys.exit('line %d: bucket not cumulative' % n)\n"
    "            h['last'] = v\n"
    "            if 'le=\"+Inf\"' in labels: h['inf'] = v\n"
    "        elif name.endswith('_count'):\n"
    "            if h.get('inf') != float(val): sys.exit('line %d: +Inf != _count' % n)\n"
    "print('ok %d lines' % len(data.splitlines()))\n";

static int check_text(const char *body, const char *what)
{
    char dir[] = "/tmp/m8met-XXXXXX";
    if (!mkdtemp(dir))
        return ok(0, "%s: temp dir", what);
    char py[64], txt[64], cmd[256];
    snprintf(py, sizeof py, "%s/check.py", dir);
    snprintf(txt, sizeof txt, "%s/body.txt", dir);
    FILE *f = fopen(py, "w");
    fputs(checker_py, f);
    fclose(f);
    f = fopen(txt, "w");
    fputs(body, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "python3 %s %s 2>&1", py, txt);
    FILE *p = popen(cmd, "r");
    char line[512] = "";
    if (p) {
        if (!fgets(line, sizeof line, p))
            line[0] = '\0';
        pclose(p);
    }
    line[strcspn(line, "\n")] = '\0';
    unlink(py);
    unlink(txt);
    rmdir(dir);
    if (strstr(line, "No such file") || strstr(line, "not found")) {
        printf("ok %d - %s # SKIP python3 not available\n", ++tap_n, what);
        return 1;
    }
    return ok(strncmp(line, "ok ", 3) == 0, "%s parses as Prometheus text (%s)", what, line);
}

/* ------------------------------------------------------------ prefix, groups */

static void test_prefix(void)
{
    static const struct {
        const char *in, *out;
    } t[] = {
        {"/api", "api_"},
        {"/api/v1", "api_v1_"},
        {"/my-service", "my_service_"},
        {"/", ""},
        {" /api ", "api_"},
        {"//x", "x_"},
        {"/v1", "v1_"},
        {"", ""},
    };
    char out[M8_METRICS_MAX_PREFIX];
    for (size_t i = 0; i < M8_ARRAY_LEN(t); i++) {
        int rc = m8_metrics_prefix(t[i].in, out, sizeof out);
        ok(rc == 0 && strcmp(out, t[i].out) == 0, "prefix of '%s' is '%s' (got %d '%s')", t[i].in,
           t[i].out, rc, out);
    }
    is_int(m8_metrics_prefix(NULL, out, sizeof out), 0, "prefix of NULL is empty");
    is_int(m8_metrics_prefix("/a.b", out, sizeof out), M8_ECONFIG,
           "a '.' in API_PREFIX makes no valid metric name: M8_ECONFIG");
    is_int(m8_metrics_prefix("/a~b", out, sizeof out), M8_ECONFIG, "a '~' too");
    is_int(m8_metrics_prefix("/1api", out, sizeof out), M8_ECONFIG,
           "a leading digit makes no valid metric name");
    char small[6];
    is_int(m8_metrics_prefix("/abcd", small, sizeof small), 0,
           "prefix of exactly outlen bytes with its NUL fits");
    is_str(small, "abcd_", "... and is 'abcd_'");
    is_int(m8_metrics_prefix("/abcde", small, sizeof small), M8_ETOOBIG,
           "one byte more is M8_ETOOBIG");
}

static void test_groups(void)
{
    unsigned http =
        M8_METRICS_TRAFFIC | M8_METRICS_PERFORMANCE | M8_METRICS_RELIABILITY | M8_METRICS_HEALTH;
    is_int(m8_metrics_groups(NULL), M8_METRICS_ALL, "groups NULL = all");
    is_int(m8_metrics_groups("all"), M8_METRICS_ALL, "groups all");
    is_int(m8_metrics_groups(" ALL "), M8_METRICS_ALL, "groups ALL, trimmed, any case");
    is_int(m8_metrics_groups("traffic"), M8_METRICS_TRAFFIC, "groups traffic");
    is_int(m8_metrics_groups(" Traffic , health,bogus"), M8_METRICS_TRAFFIC | M8_METRICS_HEALTH,
           "comma list, trimmed, case-insensitive, unknown names ignored");
    is_int(m8_metrics_groups("traffic,performance,reliability,health"), http,
           "the four HTTP groups");
    is_int(m8_metrics_groups("auth,pool"), M8_METRICS_AUTH | M8_METRICS_POOL, "auth and pool");
    is_int(m8_metrics_groups("traffic,all"), M8_METRICS_ALL, "all anywhere selects every group");
    is_int(m8_metrics_groups("bogus"), 0, "only unknown names: no group");
    is_int(m8_metrics_groups(""), 0, "empty text: no group");
    is_int(m8_metrics_groups(" , ,"), 0, "only separators: no group");
    is_int(m8_metrics_groups("[\"traffic\", \"AUTH\"]"), M8_METRICS_TRAFFIC | M8_METRICS_AUTH,
           "a JSON array (D2)");
    is_int(m8_metrics_groups("[]"), 0, "an empty JSON array: no group");
}

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

static void test_exact_sums(void)
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

static void test_buckets(void)
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

static void test_labels(void)
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

/* ------------------------------------------------------------ groups in render */

static void test_render_groups(void)
{
    m8_shm *shm = m8_shm_private();
    m8_metrics_record(&shm->slots[0], "GET", "/x", 200, 0.1);
    int rc;
    m8_settings *s = settings("/api", "bogus, nothing", NULL);
    char *body = render(shm, s, 1 << 20, &rc);
    ok(rc == 0 && body[0] == '\0', "no valid group: empty body (A 5.7)");
    free(body);
    settings_free(s);

    s = settings("/api", "", NULL);
    body = render(shm, s, 1 << 20, &rc);
    ok(rc == 0 && body[0] == '\0', "empty METRICS_GROUPS: empty body");
    free(body);
    settings_free(s);

    s = settings("/api", "health", NULL);
    body = render(shm, s, 1 << 20, &rc);
    starts(body,
           "# HELP api_http_status_total HTTP responses by exact status code\n"
           "# TYPE api_http_status_total counter\n"
           "api_http_status_total{status_code=\"200\"} 1.0\n"
           "# HELP api_http_status_created HTTP responses by exact status code\n"
           "# TYPE api_http_status_created gauge\n",
           "METRICS_GROUPS=health: the status counter only (prefix of the _created sample)");
    free(body);
    settings_free(s);

    s = settings("/a.b", "all", NULL);
    body = render(shm, s, 1 << 20, &rc);
    is_int(rc, M8_ECONFIG, "render with an API_PREFIX giving invalid names: M8_ECONFIG");
    free(body);
    settings_free(s);

    s = settings("/api", "all", NULL);
    body = render(shm, s, 1 << 20, &rc);
    size_t full = strlen(body);
    free(body);
    body = render(shm, s, full, &rc);
    is_int(rc, 0, "output of exactly out->max bytes fits");
    free(body);
    body = render(shm, s, full - 1, &rc);
    is_int(rc, M8_ETOOBIG, "one byte less: M8_ETOOBIG");
    free(body);
    settings_free(s);
    m8_shm_unmap(shm);
}

/* ------------------------------------------------------------ auth group */

static void test_auth(void)
{
    m8_shm *shm = m8_shm_private();
    m8_shm_slot *sl = &shm->slots[0];
    m8_settings *s = settings("/api/v1", "auth", NULL);
    char *body = render(shm, s, 1 << 20, NULL);
    static const char *const zero[] = {
        "api_v1_auth_logout_total",
        "api_v1_auth_redis_circuit_breaker_open",
        "api_v1_auth_event_stream_connected",
        "api_v1_auth_event_stream_gap_total",
        "api_v1_auth_event_stream_reconnects_total",
        "api_v1_auth_api_key_flush_duration_seconds_count",
        "api_v1_auth_api_key_flush_duration_seconds_sum",
        "api_v1_auth_api_key_flush_duration_seconds_bucket{le=\"0.005\"}",
        "api_v1_auth_api_key_flush_duration_seconds_bucket{le=\"1.0\"}",
        "api_v1_auth_api_key_flush_duration_seconds_bucket{le=\"+Inf\"}",
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(zero); i++) {
        const char *v = sample(body, zero[i]);
        ok(v && strncmp(v, "0.0\n", 4) == 0, "unlabelled auth series %s present at 0", zero[i]);
    }
    static const char *const typed[] = {
        "api_v1_auth_login_attempts_total counter",
        "api_v1_auth_token_refresh_total counter",
        "api_v1_auth_logout_total counter",
        "api_v1_auth_token_validation_failures_total counter",
        "api_v1_auth_oauth_attempts_total counter",
        "api_v1_auth_code_exchange_total counter",
        "api_v1_auth_revocation_failure_total counter",
        "api_v1_auth_degraded_decision_total counter",
        "api_v1_auth_redis_circuit_breaker_open gauge",
        "api_v1_auth_degradation_mode_active gauge",
        "api_v1_auth_session_integrity_denial_total counter",
        "api_v1_auth_api_key_validations_total counter",
        "api_v1_auth_api_key_rate_limit_checks_total counter",
        "api_v1_auth_api_key_rate_limit_hits_total counter",
        "api_v1_auth_api_key_lifecycle_total counter",
        "api_v1_auth_api_key_flush_duration_seconds histogram",
        "api_v1_auth_event_stream_connected gauge",
        "api_v1_auth_event_stream_events_total counter",
        "api_v1_auth_event_stream_gap_total counter",
        "api_v1_auth_event_stream_reconnects_total counter",
    };
    int all = 1;
    for (size_t i = 0; i < M8_ARRAY_LEN(typed); i++) {
        char line[128];
        snprintf(line, sizeof line, "# TYPE %s\n", typed[i]);
        if (!strstr(body, line)) {
            all = 0;
            diag("missing %s", line);
        }
    }
    ok(all, "every auth family of A 5.7 is declared (%zu)", M8_ARRAY_LEN(typed));
    ok(sample(body, "api_v1_auth_logout_created") != NULL,
       "an unlabelled counter has its _created sample");
    is_int(count_lines(body, "api_v1_auth_token_validation_failures_total{"), 0,
           "no reason line before a failure");
    ok(strstr(body, "http_") == NULL, "METRICS_GROUPS=auth renders no request family");
    check_text(body, "the auth group");
    free(body);

    m8_metrics_auth_failure(sl, "expired");
    m8_metrics_auth_failure(sl, "expired");
    m8_metrics_auth_failure(sl, "inconsistent_privilege_claims");
    m8_metrics_auth_failure(sl, "no-such-reason");
    m8_metrics_auth_failure(sl, NULL);
    m8_metrics_auth_failure(NULL, "expired");
    m8_metrics_record(NULL, "GET", "/x", 200, 0.1);
    body = render(shm, s, 1 << 20, NULL);
    is_int((long long)value(body, "api_v1_auth_token_validation_failures_total{reason="
                                  "\"expired\"}"),
           2, "reason expired counted");
    is_int((long long)value(body, "api_v1_auth_token_validation_failures_total{reason="
                                  "\"inconsistent_privilege_claims\"}"),
           1, "reason inconsistent_privilege_claims counted");
    is_int((long long)value(body, "api_v1_auth_token_validation_failures_total{reason="
                                  "\"invalid\"}"),
           2, "an unknown or NULL reason counts as invalid");
    is_int(count_lines(body, "api_v1_auth_token_validation_failures_total{"), 3,
           "only reasons seen are listed");
    is_int(count_lines(body, "api_v1_auth_token_validation_failures_created{"), 3,
           "each with its _created");
    check_text(body, "the auth group with reasons");
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

static void test_pool(void)
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

static void test_full_slot(void)
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
static void test_invented_methods(void)
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

/* ------------------------------------------------------------ scrape credential */

static void test_scrape(void)
{
    m8_settings *open = settings("/api", "all", NULL);
    is_int(m8_metrics_check_scrape(open, NULL), 0,
           "no credential set: a scrape without header is allowed");
    is_int(m8_metrics_check_scrape(open, "Basic x"), 0, "no credential set: any header allowed");
    settings_free(open);
    open = settings("/api", "all", "");
    is_int(m8_metrics_check_scrape(open, NULL), 0, "an empty credential counts as unset");
    settings_free(open);

    m8_settings *s = settings("/api", "all", "Scrape-Cred-123");
    static const struct {
        const char *h;
        int want;
        const char *why;
    } t[] = {
        {NULL, M8_EINVAL, "missing header: refused"},
        {"", M8_EINVAL, "empty header: refused"},
        {"Basic Scrape-Cred-123", M8_EINVAL, "wrong scheme: refused"},
        {"Bearer", M8_EINVAL, "'Bearer' without a space: refused"},
        {"Bearer ", M8_EINVAL, "'Bearer ' exactly 7 characters: refused"},
        {"Bearer  ", M8_EINVAL, "'Bearer ' and only spaces: refused (trimmed rest empty)"},
        {"Bearer wrong", M8_EINVAL, "wrong value: refused"},
        {"Bearer Scrape-Cred-12", M8_EINVAL, "a prefix of the credential: refused"},
        {"Bearer Scrape-Cred-1234", M8_EINVAL, "the credential plus a byte: refused"},
        {"Bearer scrape-cred-123", M8_EINVAL, "the value is case-sensitive"},
        {"BearerScrape-Cred-123", M8_EINVAL, "no space after the scheme: refused"},
        {"Bearer Scrape-Cred-123", 0, "right value: allowed"},
        {"bEARER Scrape-Cred-123", 0, "scheme case-insensitive"},
        {"Bearer   Scrape-Cred-123 \t ", 0, "right value with spaces around: allowed (trimmed)"},
        {"Bearer Scrape Cred-123", M8_EINVAL, "inner space is not trimmed"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(t); i++)
        is_int(m8_metrics_check_scrape(s, t[i].h), t[i].want, "%s", t[i].why);
    settings_free(s);
    is_str(M8_METRICS_CONTENT_TYPE, "text/plain; version=1.0.0; charset=utf-8",
           "content type of A 5.5");
}

/* ------------------------------------------------------------ merge and created */

static void test_merge_created(void)
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

/* ------------------------------------------------------------ JWKS age */

static void test_jwks_age(void)
{
    m8_shm *shm = m8_shm_private();
    m8_settings *s = settings("/api", "auth", NULL);
    char *body = render(shm, s, 1 << 20, NULL);
    ok(strstr(body, "jwks") == NULL, "no JWKS_URI: no JWKS age gauge");
    free(body);
    s->jwks_uri = strdup("https://issuer.example/jwks.json");
    body = render(shm, s, 1 << 20, NULL);
    ok(strstr(body, "# TYPE api_auth_jwks_key_set_age_seconds gauge\n") != NULL,
       "JWKS_URI set: api_auth_jwks_key_set_age_seconds is a gauge");
    is_int((long long)value(body, "api_auth_jwks_key_set_age_seconds"), -1,
           "JWKS age: -1 before any set was fetched");
    free(body);
    atomic_store(&shm->jwks.fetched_ns, m8_mono_ns() - 90ull * 1000000000ull);
    body = render(shm, s, 1 << 20, NULL);
    double age = value(body, "api_auth_jwks_key_set_age_seconds");
    ok(age >= 90.0 && age < 3600.0, "JWKS age: seconds since shm->jwks.fetched_ns (%.3f)", age);
    check_text(body, "the auth group with the JWKS age");
    free(body);
    s->access_token_algorithm = M8_ALG_HS256;
    body = render(shm, s, 1 << 20, NULL);
    ok(strstr(body, "jwks") == NULL, "HS256 (JWKS_URI unused): no JWKS age gauge");
    free(body);
    free(s->jwks_uri);
    s->jwks_uri = NULL;
    settings_free(s);
    m8_shm_unmap(shm);
}

int main(void)
{
    test_prefix();
    test_groups();
    test_scrape();
    test_buckets();
    test_labels();
    test_render_groups();
    test_auth();
    test_pool();
    test_full_slot();
    test_invented_methods();
    test_merge_created();
    test_exact_sums();
    test_jwks_age();
    return done_testing();
}
