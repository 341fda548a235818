/* apikey.c - the API-key principal through the issuer's introspection
 * (apikey.h; CONTRACT B 4). */
#include "auth/apikey.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/httpc.h"
#include "core/json.h"
#include "core/log.h"
#include "auth/privauth.h"

#define DETAIL_401 "Invalid or expired API key"
#define DETAIL_403 "The user doesn't have enough privileges"
#define DETAIL_429 "API key rate limit exceeded"
#define DETAIL_503 "API key verification unavailable."

struct m8_apikey {
    char *url;
    char *audience; /* INTERNAL_CLIENT_ID */
    m8_privauth *auth;
    double connect_s, total_s, pool_s;
    size_t max_response;
    unsigned threshold;
    double reset_s;

    pthread_mutex_t slot_mu; /* the concurrency limit (B 4.3, 4.5 row 2) */
    pthread_cond_t slot_cv;
    unsigned inflight, max_inflight;

    pthread_mutex_t br_mu; /* the circuit breaker (B 4.5) */
    unsigned failures;
    bool open;
    bool half_open;
    double open_until; /* monotonic seconds */

    atomic_ulong resolutions, requests, refusals, opens;
};

/* ------------------------------------------------------------ names */

const char *m8_apikey_reason_name(m8_apikey_reason r)
{
    switch (r) {
    case M8_AK_OK: return "ok";
    case M8_AK_MISSING: return "missing";
    case M8_AK_TOO_LONG: return "key_too_long";
    case M8_AK_INACTIVE: return "inactive";
    case M8_AK_QUOTA_EXCEEDED: return "quota_exceeded";
    case M8_AK_CIRCUIT_OPEN: return "circuit_open";
    case M8_AK_LOAD_SHED: return "load_shed";
    case M8_AK_TRANSPORT: return "transport";
    case M8_AK_RESPONSE_TOO_LARGE: return "response_too_large";
    case M8_AK_CONSUMER_UNAUTHORIZED: return "consumer_unauthorized";
    case M8_AK_ISSUER_UNAVAILABLE: return "issuer_unavailable";
    case M8_AK_UNEXPECTED_STATUS: return "unexpected_status";
    case M8_AK_MALFORMED_RESPONSE: return "malformed_response";
    case M8_AK_AUDIENCE_MISMATCH: return "audience_mismatch";
    case M8_AK_INTERNAL: return "internal";
    case M8_AK_INSUFFICIENT_CAPABILITY: return "insufficient_capability";
    }
    return "unknown";
}

const char *m8_apikey_need_role(m8_apikey_need need)
{
    switch (need) {
    case M8_APIKEY_READER: return "reader";
    case M8_APIKEY_WRITER: return "writer";
    case M8_APIKEY_PRINCIPAL: break;
    }
    return NULL;
}

/* ------------------------------------------------------------ capability */

/* Position in the hierarchy of B 7.4 (0 = highest), -1 when unknown. */
static int role_rank(const char *r)
{
    static const char *const roles[] = {"superadmin", "admin", "writer", "reader", "user"};
    for (int i = 0; r && i < (int)M8_ARRAY_LEN(roles); i++) {
        if (strcmp(r, roles[i]) == 0)
            return i;
    }
    return -1;
}

#define RANK_WRITER 2

/* The role/superuser truth table of B 7.3. */
static bool role_consistent(int rank, bool is_superuser)
{
    return rank >= 0 && (rank == 0) == is_superuser;
}

int m8_apikey_has_capability(const char *role, bool is_superuser, const char *access_mode,
                             const char *required_role)
{
    int need = role_rank(required_role);
    if (need < RANK_WRITER) /* above writer, or unknown */
        return M8_EINVAL;
    int have = role_rank(role);
    if (!role_consistent(have, is_superuser))
        return 0;
    if (have > need)
        return 0;
    if (need == RANK_WRITER)
        return access_mode && strcmp(access_mode, "read_write") == 0;
    return 1;
}

const char *m8_apikey_audit_route(const char *method, const char *path, const char *need_role,
                                  const char *const *exempt, char *buf, size_t buflen)
{
    const char *m = method ? method : "?";
    const char *p = path ? path : "?";
    if (need_role) {
        int r = role_rank(need_role);
        if (r >= 0 && r < RANK_WRITER) {
            snprintf(buf, buflen,
                     "route %s %s requires an API key with role %s: API keys grant at most "
                     "the writer capability (there is no API-key admin or superuser "
                     "requirement, CONTRACT B 4.6)",
                     m, p, need_role);
            return buf;
        }
        if (r != RANK_WRITER && r != RANK_WRITER + 1) {
            snprintf(buf, buflen,
                     "route %s %s requires an API key with role \"%s\": only reader and "
                     "writer exist for API keys (CONTRACT B 4.6)",
                     m, p, need_role);
            return buf;
        }
        return NULL;
    }
    for (size_t i = 0; exempt && exempt[i]; i++) {
        if (path && strcmp(exempt[i], path) == 0)
            return NULL;
    }
    snprintf(buf, buflen,
             "route %s %s is wired to the bare API-key principal, which proves only that a key "
             "resolves and grants no capability; require the API-key reader or writer "
             "capability instead, or exempt the path (CONTRACT B 4.6, 4.7)",
             m, p);
    return buf;
}

/* ------------------------------------------------------------ parsing */

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* An ISO-8601 date-time as the issuer writes it (pydantic's datetime):
 * YYYY-MM-DD[T ]HH:MM[:SS[.frac]][Z | +HH:MM | +HHMM | +HH]; no zone is
 * taken as UTC.  Seconds since the epoch in *out. */
static bool parse_iso(const char *s, size_t n, double *out)
{
    int y, mo, d, h, mi, sec = 0;
    if (n < 16 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi))
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59)
        return false;
    size_t i = 16;
    double frac = 0;
    if (i < n && s[i] == ':') {
        if (i + 3 > n || !digits(s + i + 1, 2, &sec) || sec > 59)
            return false;
        i += 3;
        if (i < n && (s[i] == '.' || s[i] == ',')) {
            size_t k = 0;
            double scale = 0.1;
            for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++) {
                frac += (s[i] - '0') * scale;
                scale /= 10;
            }
            if (k == 0 || k > 9)
                return false;
        }
    }
    int off = 0;
    if (i < n) {
        if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n) {
            i++;
        } else if (s[i] == '+' || s[i] == '-') {
            int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
            size_t rest = n - i - 1;
            const char *z = s + i + 1;
            bool zone_ok = (rest == 2 && digits(z, 2, &oh)) ||
                           (rest == 4 && digits(z, 2, &oh) && digits(z + 2, 2, &om)) ||
                           (rest == 5 && digits(z, 2, &oh) && z[2] == ':' && digits(z + 3, 2, &om));
            if (!zone_ok)
                return false;
            if (oh > 23 || om > 59)
                return false;
            off = sign * (oh * 3600 + om * 60);
            i = n;
        } else {
            return false;
        }
    }
    if (i != n)
        return false;
    *out =
        (double)(days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec - off) + frac;
    return true;
}

/* The text of a string member (*present: the member exists).  NULL when
 * absent, of another type, or holding an embedded NUL. */
static const char *get_str(json_object *o, const char *name, bool *present)
{
    json_object *v;
    *present = json_object_object_get_ex(o, name, &v);
    if (!*present || !json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return NULL;
    return s;
}

#define BAD(msg)                                                                                   \
    do {                                                                                           \
        *why = (msg);                                                                              \
        rc = M8_EPARSE;                                                                            \
        goto done;                                                                                 \
    } while (0)

int m8_apikey_parse(const char *body, size_t len, m8_arena *a, bool *active, m8_apikey_principal *p,
                    const char **why)
{
    static const char *none = "";
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = none;
    *active = false;
    memset(p, 0, sizeof *p);
    int rc = 0;
    json_object *o = m8_json_parse(body ? body : "", len, M8_APIKEY_JSON_DEPTH, NULL, NULL);
    json_object *v, *pr;
    bool present;
    if (!o || !json_object_is_type(o, json_type_object))
        BAD("the answer is not a JSON object");
    const char *ver = get_str(o, "schema_version", &present);
    if (present && (!ver || strcmp(ver, "1") != 0))
        BAD("schema_version is not \"1\"");
    if (!json_object_object_get_ex(o, "active", &v) || !json_object_is_type(v, json_type_boolean))
        BAD("active is missing or not a boolean");
    if (!json_object_get_boolean(v))
        goto done; /* inactive: one shape, extra members ignored */

    const char *aud = get_str(o, "audience_id", &present);
    if (!aud || !*aud)
        BAD("audience_id is missing or not a non-empty string");
    if (!json_object_object_get_ex(o, "principal", &pr) ||
        !json_object_is_type(pr, json_type_object))
        BAD("principal is missing or not an object");
    const char *uid = get_str(pr, "user_id", &present);
    if (!uid || !*uid)
        BAD("principal.user_id is missing or not a non-empty string");
    const char *role = get_str(pr, "role", &present);
    int rank = role_rank(role);
    if (rank < 0)
        BAD("principal.role is not one of the five roles");
    bool su = false;
    if (json_object_object_get_ex(pr, "is_superuser", &v)) {
        if (!json_object_is_type(v, json_type_boolean))
            BAD("principal.is_superuser is not a boolean");
        su = json_object_get_boolean(v);
    }
    if (!role_consistent(rank, su))
        BAD("principal role and is_superuser are inconsistent");
    const char *mode = get_str(pr, "access_mode", &present);
    if (!mode || (strcmp(mode, "read_only") != 0 && strcmp(mode, "read_write") != 0))
        BAD("principal.access_mode is not read_only or read_write");
    const char *method = get_str(pr, "authentication_method", &present);
    if (present && (!method || strcmp(method, "api_key") != 0))
        BAD("principal.authentication_method is not api_key");
    if (!json_object_object_get_ex(pr, "auth_generation", &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1)
        BAD("principal.auth_generation is not an integer >= 1");
    long long gen = (long long)json_object_get_int64(v);
    const char *expires = NULL;
    double exp_ts = 0;
    if (json_object_object_get_ex(o, "key_expires_at", &v) && v != NULL) {
        expires = get_str(o, "key_expires_at", &present);
        if (!expires || !parse_iso(expires, strlen(expires), &exp_ts))
            BAD("key_expires_at is not an ISO-8601 date-time or null");
    }
    p->user_id = m8_arena_strdup(a, uid);
    p->role = m8_arena_strdup(a, role);
    p->access_mode = m8_arena_strdup(a, mode);
    p->audience_id = m8_arena_strdup(a, aud);
    p->key_expires_at = expires ? m8_arena_strdup(a, expires) : NULL;
    if (!p->user_id || !p->role || !p->access_mode || !p->audience_id ||
        (expires && !p->key_expires_at)) {
        rc = M8_ENOMEM;
        *why = "out of memory";
        goto done;
    }
    p->is_superuser = su;
    p->auth_generation = gen;
    p->key_expires_ts = exp_ts;
    p->can_read = m8_apikey_has_capability(role, su, mode, "reader") == 1;
    p->can_write = m8_apikey_has_capability(role, su, mode, "writer") == 1;
    *active = true;
done:
    if (rc)
        memset(p, 0, sizeof *p);
    json_object_put(o);
    return rc;
}

#undef BAD

/* ------------------------------------------------------------ lifecycle */

bool m8_apikey_enabled(const m8_settings *s)
{
    return s && s->api_key_introspection_enabled;
}

m8_apikey *m8_apikey_new(const m8_settings *s, char *err, size_t errlen)
{
    if (!m8_apikey_enabled(s)) {
        snprintf(err, errlen, "API keys: API_KEY_INTROSPECTION_ENABLED is false");
        return NULL;
    }
    if (!s->internal_client_id || !*s->internal_client_id) {
        snprintf(err, errlen,
                 "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires "
                 "INTERNAL_CLIENT_ID");
        return NULL;
    }
    if (!s->api_key_introspection_schema_version ||
        strcmp(s->api_key_introspection_schema_version, "1") != 0) {
        snprintf(err, errlen,
                 "CONFIG: API_KEY_INTROSPECTION_SCHEMA_VERSION is not supported; "
                 "supported versions: 1");
        return NULL;
    }
    char *url = NULL;
    const char *eff = s->api_key_introspection_url_effective;
    if (!eff || !*eff)
        eff = s->api_key_introspection_url;
    if (eff && *eff) {
        url = strdup(eff);
    } else if (s->introspection_url && *s->introspection_url) {
        if (m8_privauth_derive_url(s->introspection_url, "/api-keys/introspect", &url) != 0)
            url = NULL;
    } else {
        snprintf(err, errlen,
                 "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires "
                 "API_KEY_INTROSPECTION_URL or INTROSPECTION_URL");
        return NULL;
    }
    double c = s->api_key_introspection_connect_timeout;
    double r = s->api_key_introspection_read_timeout;
    double p = s->api_key_introspection_pool_timeout;
    double reset = s->api_key_introspection_circuit_reset_seconds;
    long long conc = s->api_key_introspection_max_concurrency;
    long long cap = s->api_key_introspection_max_response_bytes;
    long long thr = s->api_key_introspection_circuit_failure_threshold;
    if (!(c > 0 && c <= 30) || !(r > 0 && r <= 30) || !(p > 0 && p <= 30) ||
        !(reset > 0 && reset <= 3600) || conc < 1 || conc > 1000 || cap < 256 || cap > 1048576 ||
        thr < 1 || thr > 1000) {
        free(url);
        snprintf(err, errlen, "CONFIG: an API_KEY_INTROSPECTION_* setting is out of range");
        return NULL;
    }
    m8_apikey *k = calloc(1, sizeof *k);
    if (!k || !url) {
        free(url);
        free(k);
        snprintf(err, errlen, "API keys: out of memory");
        return NULL;
    }
    k->url = url;
    k->connect_s = c;
    k->total_s = c + r;
    k->pool_s = p;
    k->max_response = (size_t)cap;
    k->max_inflight = (unsigned)conc;
    k->threshold = (unsigned)thr;
    k->reset_s = reset;
    k->audience = strdup(s->internal_client_id);
    pthread_condattr_t ca;
    bool cv_ok = pthread_condattr_init(&ca) == 0;
    if (cv_ok) {
        cv_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                pthread_cond_init(&k->slot_cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    bool mu_ok = cv_ok && pthread_mutex_init(&k->slot_mu, NULL) == 0;
    bool br_ok = mu_ok && pthread_mutex_init(&k->br_mu, NULL) == 0;
    if (!k->audience || !br_ok) {
        if (mu_ok)
            pthread_mutex_destroy(&k->slot_mu);
        if (cv_ok)
            pthread_cond_destroy(&k->slot_cv);
        free(k->audience);
        free(k->url);
        free(k);
        snprintf(err, errlen, "API keys: out of memory");
        return NULL;
    }
    k->auth = m8_privauth_new(s, "api-key-introspection", err, errlen);
    if (!k->auth) {
        pthread_mutex_destroy(&k->br_mu);
        pthread_mutex_destroy(&k->slot_mu);
        pthread_cond_destroy(&k->slot_cv);
        free(k->audience);
        free(k->url);
        free(k);
        return NULL;
    }
    return k;
}

void m8_apikey_free(m8_apikey *k)
{
    if (!k)
        return;
    m8_privauth_free(k->auth);
    pthread_mutex_destroy(&k->br_mu);
    pthread_mutex_destroy(&k->slot_mu);
    pthread_cond_destroy(&k->slot_cv);
    free(k->audience);
    free(k->url);
    free(k);
}

void m8_apikey_set_exchange_timeouts(m8_apikey *k, double connect_s, double total_s)
{
    m8_privauth_set_timeouts(k->auth, connect_s, total_s);
}

void m8_apikey_get_stats(m8_apikey *k, m8_apikey_stats *st)
{
    memset(st, 0, sizeof *st);
    st->resolutions = atomic_load(&k->resolutions);
    st->requests = atomic_load(&k->requests);
    st->refusals = atomic_load(&k->refusals);
    st->breaker_opens = atomic_load(&k->opens);
    pthread_mutex_lock(&k->br_mu);
    st->failures = k->failures;
    st->breaker = k->open        ? M8_AK_BREAKER_OPEN
                  : k->half_open ? M8_AK_BREAKER_HALF_OPEN
                                 : M8_AK_BREAKER_CLOSED;
    pthread_mutex_unlock(&k->br_mu);
}

/* ------------------------------------------------------------ breaker, slots */

/* Row 1: false while open; once the reset time has passed, admits the call
 * with the count at threshold - 1 (half-open). */
static bool breaker_admit(m8_apikey *k, double now)
{
    pthread_mutex_lock(&k->br_mu);
    bool ok = true;
    if (k->open) {
        if (now < k->open_until) {
            ok = false;
        } else {
            k->open = false;
            k->half_open = true;
            k->failures = k->threshold - 1;
        }
    }
    pthread_mutex_unlock(&k->br_mu);
    return ok;
}

static void breaker_failure(m8_apikey *k, double now)
{
    pthread_mutex_lock(&k->br_mu);
    if (k->failures < UINT32_MAX)
        k->failures++;
    k->half_open = false;
    if (k->failures >= k->threshold) {
        if (!k->open)
            atomic_fetch_add(&k->opens, 1);
        k->open = true;
        k->open_until = now + k->reset_s;
    }
    pthread_mutex_unlock(&k->br_mu);
}

static void breaker_success(m8_apikey *k)
{
    pthread_mutex_lock(&k->br_mu);
    k->failures = 0;
    k->open = false;
    k->half_open = false;
    pthread_mutex_unlock(&k->br_mu);
}

/* Row 2: a concurrency slot within POOL_TIMEOUT. */
static bool slot_take(m8_apikey *k)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    long long ns = (long long)(k->pool_s * 1e9);
    dl.tv_sec += (time_t)(ns / 1000000000LL);
    dl.tv_nsec += (long)(ns % 1000000000LL);
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&k->slot_mu);
    bool ok = true;
    while (k->inflight >= k->max_inflight) {
        int rc = pthread_cond_timedwait(&k->slot_cv, &k->slot_mu, &dl);
        if (rc == ETIMEDOUT && k->inflight >= k->max_inflight) {
            ok = false;
            break;
        }
    }
    if (ok)
        k->inflight++;
    pthread_mutex_unlock(&k->slot_mu);
    return ok;
}

static void slot_give(m8_apikey *k)
{
    pthread_mutex_lock(&k->slot_mu);
    k->inflight--;
    pthread_cond_signal(&k->slot_cv);
    pthread_mutex_unlock(&k->slot_mu);
}

/* ------------------------------------------------------------ the call */

/* Row 3: a failure before the request could leave (cannot resolve or
 * connect, connect timeout, TLS handshake), which is retried once.
 * httpc.h reports only an error text beginning with curl's text for the
 * code; curl words a timeout while resolving or connecting differently
 * from one while waiting for the answer. */
static bool never_sent(const char *err)
{
    static const CURLcode pre[] = {CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY,
                                   CURLE_COULDNT_CONNECT, CURLE_SSL_CONNECT_ERROR,
                                   CURLE_PEER_FAILED_VERIFICATION};
    for (size_t i = 0; i < M8_ARRAY_LEN(pre); i++) {
        const char *t = curl_easy_strerror(pre[i]);
        if (strncmp(err, t, strlen(t)) == 0)
            return true;
    }
    const char *t = curl_easy_strerror(CURLE_OPERATION_TIMEDOUT);
    return strncmp(err, t, strlen(t)) == 0 &&
           (strstr(err, "Connection timed out after") || strstr(err, "Connection timeout after") ||
            strstr(err, "Resolving timed out after"));
}

/* {"api_key":<key>,"schema_version":"1"} with the key as Python would send
 * it: the header's bytes read as Latin-1 (Starlette) and written as UTF-8
 * JSON (ensure_ascii=False).  Sized exactly once, so no copy of the key is
 * left behind by a reallocation; the caller wipes and frees it. */
static char *request_body(const char *key, size_t len, size_t *out_len)
{
    static const char head[] = "{\"api_key\":\"";
    static const char tail[] = "\",\"schema_version\":\"1\"}";
    size_t cap = sizeof head + sizeof tail + len * 6;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    size_t n = sizeof head - 1;
    memcpy(b, head, n);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default: break;
        }
        if (esc) {
            b[n++] = esc[0];
            b[n++] = esc[1];
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(b + n, "\\u00", 4);
            b[n + 4] = hex[c >> 4];
            b[n + 5] = hex[c & 15];
            n += 6;
        } else if (c >= 0x80) {
            b[n++] = (char)(0xc0 | (c >> 6));
            b[n++] = (char)(0x80 | (c & 0x3f));
        } else {
            b[n++] = (char)c;
        }
    }
    memcpy(b + n, tail, sizeof tail);
    *out_len = n + sizeof tail - 1;
    return b;
}

static const char *detail_for(int status)
{
    switch (status) {
    case 401: return DETAIL_401;
    case 403: return DETAIL_403;
    case 429: return DETAIL_429;
    default: return DETAIL_503;
    }
}

static int status_for(m8_apikey_reason r)
{
    switch (r) {
    case M8_AK_OK: return 0;
    case M8_AK_MISSING:
    case M8_AK_TOO_LONG:
    case M8_AK_INACTIVE: return 401;
    case M8_AK_QUOTA_EXCEEDED: return 429;
    case M8_AK_INSUFFICIENT_CAPABILITY: return 403;
    default: return 503;
    }
}

/* Sets the answer for r and writes its one log line (text: an error text
 * for the log, never a secret; may be NULL). */
static bool refuse(m8_apikey *k, m8_apikey_answer *ans, m8_apikey_reason r, const char *text)
{
    atomic_fetch_add(&k->refusals, 1);
    ans->reason = r;
    ans->status = status_for(r);
    ans->detail = detail_for(ans->status);
    memset(&ans->principal, 0, sizeof ans->principal);
    if (ans->status != 429)
        ans->retry_after[0] = '\0';
    m8_log_level lvl = M8_LOG_WARNING;
    if (ans->status == 401 || ans->status == 403 || ans->status == 429)
        lvl = M8_LOG_INFO;
    else if (r == M8_AK_CONSUMER_UNAUTHORIZED || r == M8_AK_AUDIENCE_MISMATCH ||
             r == M8_AK_INTERNAL)
        lvl = M8_LOG_ERROR;
    char key[64]; /* lines are rate-limited per reason; k->refusals counts every one */
    snprintf(key, sizeof key, "api_key.refused.%s", m8_apikey_reason_name(r));
    if (!m8_log_limit_take(key, lvl))
        return false;
    m8_buf f;
    m8_buf_init(&f, 2048);
    m8_buf_printf(&f, "\"reason\":\"%s\",\"status\":%d", m8_apikey_reason_name(r), ans->status);
    if (ans->issuer_status)
        m8_buf_printf(&f, ",\"issuer_status\":%ld", ans->issuer_status);
    if (r == M8_AK_AUDIENCE_MISMATCH) {
        m8_buf_puts(&f, ",\"expected_audience\":");
        m8_buf_json_str(&f, k->audience, strlen(k->audience));
    }
    if (text && *text) {
        m8_buf_puts(&f, ",\"error\":");
        m8_buf_json_str(&f, text, strlen(text));
    }
    m8_log_fields(lvl, "api_key.refused", f.data);
    m8_buf_free(&f);
    return false;
}

/* A Retry-After value worth passing on: non-empty, printable ASCII. */
static void keep_retry_after(m8_apikey_answer *ans, const char *v)
{
    ans->retry_after[0] = '\0';
    size_t n = strlen(v);
    if (n == 0 || n >= sizeof ans->retry_after)
        return;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c >= 0x7f)
            return;
    }
    memcpy(ans->retry_after, v, n + 1);
}

/* Rows 3-13 for a call that holds a slot. */
static bool introspect(m8_apikey *k, const char *key, size_t len, m8_apikey_need need, double now,
                       m8_arena *a, m8_apikey_answer *ans)
{
    double t0 = m8_now_mono();
    m8_privauth_hdrs h;
    m8_privauth_error pe;
    int rc = m8_privauth_headers(k->auth, t0, &h, &pe);
    if (rc) {
        ans->issuer_status = pe.status;
        switch (pe.kind) {
        case M8_EIO:
            breaker_failure(k, now + (m8_now_mono() - t0));
            return refuse(k, ans, M8_AK_TRANSPORT, pe.msg);
        case M8_ECONFIG: return refuse(k, ans, M8_AK_CONSUMER_UNAUTHORIZED, pe.msg);
        case M8_EPARSE: return refuse(k, ans, M8_AK_MALFORMED_RESPONSE, pe.msg);
        default: return refuse(k, ans, M8_AK_INTERNAL, pe.msg);
        }
    }
    uint64_t gen = h.generation;
    size_t blen = 0;
    char *body = request_body(key, len, &blen);
    if (!body) {
        m8_privauth_hdrs_clear(&h);
        return refuse(k, ans, M8_AK_INTERNAL, "out of memory");
    }
    const char *headers[M8_ARRAY_LEN(h.line) + 2];
    size_t nh = 0;
    for (size_t i = 0; i < h.n; i++)
        headers[nh++] = h.line[i];
    headers[nh++] = "Content-Type: application/json";
    headers[nh] = NULL;
    m8_http_request rq = {
        .method = "POST",
        .url = k->url,
        .headers = headers,
        .body = body,
        .body_len = blen,
        .connect_timeout_s = k->connect_s,
        .timeout_s = k->total_s,
        .max = k->max_response,
        .follow_redirects = false,
        .reuse = true,
        .send_once = true, /* each call uses quota: never re-sent (B 4.5) */
        .capture_header = "Retry-After",
    };
    m8_http_result res;
    for (int attempt = 0;; attempt++) {
        atomic_fetch_add(&k->requests, 1);
        rc = m8_http_do(&rq, &res);
        if (rc == M8_EIO && attempt == 0 && never_sent(res.error)) {
            m8_buf_free(&res.body);
            continue;
        }
        break;
    }
    sodium_memzero(body, blen);
    free(body);
    m8_privauth_hdrs_clear(&h);
    double later = now + (m8_now_mono() - t0);

    if (rc == M8_ETOOBIG) { /* row 4 */
        m8_buf_free(&res.body);
        return refuse(k, ans, M8_AK_RESPONSE_TOO_LARGE, res.error);
    }
    if (rc == M8_EIO) { /* row 3 */
        m8_buf_free(&res.body);
        breaker_failure(k, later);
        return refuse(k, ans, M8_AK_TRANSPORT, res.error);
    }
    if (rc) {
        m8_buf_free(&res.body);
        return refuse(k, ans, M8_AK_INTERNAL, res.error);
    }
    long st = res.status;
    ans->issuer_status = st;
    if (st == 429) { /* row 5 */
        m8_buf_free(&res.body);
        keep_retry_after(ans, res.header);
        return refuse(k, ans, M8_AK_QUOTA_EXCEEDED, NULL);
    }
    if (st == 401 || st == 403) { /* row 6 */
        m8_buf_free(&res.body);
        m8_privauth_invalidate(k->auth, gen);
        return refuse(k, ans, M8_AK_CONSUMER_UNAUTHORIZED,
                      st == 401 ? "the issuer refused our private-API credential"
                                : "the credential lacks the api-key-introspection scope");
    }
    if (st >= 500) { /* row 7 */
        m8_buf_free(&res.body);
        breaker_failure(k, later);
        return refuse(k, ans, M8_AK_ISSUER_UNAVAILABLE, NULL);
    }
    if (st != 200) { /* row 8 */
        m8_buf_free(&res.body);
        breaker_failure(k, later);
        return refuse(k, ans, M8_AK_UNEXPECTED_STATUS, NULL);
    }
    bool active = false;
    const char *why = NULL;
    rc = m8_apikey_parse(res.body.data, res.body.len, a, &active, &ans->principal, &why);
    m8_buf_free(&res.body);
    if (rc == M8_ENOMEM)
        return refuse(k, ans, M8_AK_INTERNAL, why);
    if (rc) /* row 9 */
        return refuse(k, ans, M8_AK_MALFORMED_RESPONSE, why);
    breaker_success(k); /* row 10 */
    if (!active)        /* row 11 */
        return refuse(k, ans, M8_AK_INACTIVE, NULL);
    if (strcmp(ans->principal.audience_id, k->audience) != 0) /* row 12 */
        return refuse(k, ans, M8_AK_AUDIENCE_MISMATCH, NULL);
    /* row 13, then B 4.6 */
    const m8_apikey_principal *p = &ans->principal;
    if ((need == M8_APIKEY_READER && !p->can_read) || (need == M8_APIKEY_WRITER && !p->can_write))
        return refuse(k, ans, M8_AK_INSUFFICIENT_CAPABILITY, NULL);
    unsigned char fp[crypto_generichash_BYTES];
    crypto_generichash(fp, sizeof fp, (const unsigned char *)key, len, NULL, 0);
    memcpy(ans->principal.key_id, "ak_", 3);
    sodium_bin2hex(ans->principal.key_id + 3, sizeof ans->principal.key_id - 3, fp, 8);
    ans->status = 0;
    ans->reason = M8_AK_OK;
    ans->detail = NULL;
    return true;
}

bool m8_apikey_resolve(m8_apikey *k, const char *key, size_t len, m8_apikey_need need, double now,
                       m8_arena *a, m8_apikey_answer *ans)
{
    memset(ans, 0, sizeof *ans);
    atomic_fetch_add(&k->resolutions, 1);
    if (!key || len == 0)
        return refuse(k, ans, M8_AK_MISSING, NULL);
    if (len > M8_APIKEY_MAX_KEY_BYTES)
        return refuse(k, ans, M8_AK_TOO_LONG, NULL);
    if (!breaker_admit(k, now))
        return refuse(k, ans, M8_AK_CIRCUIT_OPEN, NULL);
    if (!slot_take(k))
        return refuse(k, ans, M8_AK_LOAD_SHED, NULL);
    bool ok = introspect(k, key, len, need, now, a, ans);
    slot_give(k);
    return ok;
}
