/* test_metrics_render.c - rendering the Prometheus text: the prefix,
 * metric groups, access to the endpoint, a scrape, the JWKS age. */

#include "test_metrics.h"

/* ------------------------------------------------------------ prefix, groups */

void test_prefix(void)
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

void test_groups(void)
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
           "a JSON array (doc/settings.md#value-grammar)");
    is_int(m8_metrics_groups("[]"), 0, "an empty JSON array: no group");
}

/* ------------------------------------------------------------ groups in render */

void test_render_groups(void)
{
    m8_shm *shm = m8_shm_private();
    m8_metrics_record(&shm->slots[0], "GET", "/x", 200, 0.1);
    int rc;
    m8_settings *s = settings("/api", "bogus, nothing", NULL);
    char *body = render(shm, s, 1 << 20, &rc);
    ok(rc == 0 && body[0] == '\0', "no valid group: empty body (doc/metrics.md#metrics)");
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

void test_auth(void)
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
    ok(all, "every documented auth family is declared (%zu)", M8_ARRAY_LEN(typed));
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

/* ------------------------------------------------------------ scrape credential */

void test_scrape(void)
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
           "the documented content type");
}

/* ------------------------------------------------------------ JWKS age */

void test_jwks_age(void)
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
