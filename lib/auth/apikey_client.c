/* apikey_client.c - the API-key verifier object, its circuit breaker and
 * concurrency slots, and the introspection call itself (apikey.h); what the
 * answer means is read in apikey.c. */
#include "auth/apikey_int.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

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
        m8_apikey_free(k); /* everything but auth is set up */
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
bool m8__apikey_breaker_admit(m8_apikey *k, double now)
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

void m8__apikey_breaker_failure(m8_apikey *k, double now)
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

void m8__apikey_breaker_success(m8_apikey *k)
{
    pthread_mutex_lock(&k->br_mu);
    k->failures = 0;
    k->open = false;
    k->half_open = false;
    pthread_mutex_unlock(&k->br_mu);
}

/* Row 2: a concurrency slot within POOL_TIMEOUT. */
bool m8__apikey_slot_take(m8_apikey *k)
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

void m8__apikey_slot_give(m8_apikey *k)
{
    pthread_mutex_lock(&k->slot_mu);
    k->inflight--;
    pthread_cond_signal(&k->slot_cv);
    pthread_mutex_unlock(&k->slot_mu);
}

/* ------------------------------------------------------------ the call */

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

int m8__apikey_call(m8_apikey *k, const m8_privauth_hdrs *h, const char *key, size_t len,
                    m8_http_result *res)
{
    size_t blen = 0;
    char *body = request_body(key, len, &blen);
    if (!body) {
        memset(res, 0, sizeof *res);
        res->err = M8_HTTPC_ENOMEM;
        res->not_sent = true;
        snprintf(res->error, sizeof res->error, "out of memory");
        return M8_ENOMEM;
    }
    const char *headers[M8_ARRAY_LEN(h->line) + 2];
    size_t nh = 0;
    for (size_t i = 0; i < h->n; i++)
        headers[nh++] = h->line[i];
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
        .send_once = true, /* each call uses quota: never re-sent */
        .capture_header = "Retry-After",
    };
    int rc;
    for (int attempt = 0;; attempt++) {
        atomic_fetch_add(&k->requests, 1);
        rc = m8_http_do(&rq, res);
        /* Row 3: a failure before the request could leave (cannot resolve
         * or connect, connect timeout, TLS handshake) is retried once. */
        if (rc == M8_EIO && attempt == 0 && res->not_sent) {
            m8_buf_free(&res->body);
            continue;
        }
        break;
    }
    sodium_memzero(body, blen);
    free(body);
    return rc;
}
