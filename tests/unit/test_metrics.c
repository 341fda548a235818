/* test_metrics.c - recording into the shared segment and the Prometheus
 * exposition summed over every slot (lib/builtin/metrics.h; doc/metrics.md#endpoint,
 * doc/metrics.md#metrics, doc/responses.md#built-in-routes).
 *
 * This file holds main() and the shared helpers; the tests are in
 * test_metrics_record.c and test_metrics_render.c (test_metrics.h). */

#define M8T_MAIN 1 /* this file holds main() (tap.h) */
#include "test_metrics.h"

m8_settings *settings(const char *prefix, const char *groups, const char *cred)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->metrics_enabled = true;
    s->api_prefix = prefix ? strdup(prefix) : NULL;
    s->metrics_groups = groups ? strdup(groups) : NULL;
    s->metrics_scrape_credential = cred ? strdup(cred) : NULL;
    return s;
}

void settings_free(m8_settings *s)
{
    free(s->api_prefix);
    free(s->metrics_groups);
    free(s->metrics_scrape_credential);
    free(s);
}

/* Renders into a fresh string (caller frees); *rc gets the result. */
char *render(const m8_shm *shm, const m8_settings *s, size_t max, int *rc)
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
const char *sample(const char *body, const char *key)
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

double value(const char *body, const char *key)
{
    const char *v = sample(body, key);
    return v ? strtod(v, NULL) : -1;
}

int count_lines(const char *body, const char *start)
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
int starts(const char *got, const char *want, const char *name)
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

int check_text(const char *body, const char *what)
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
