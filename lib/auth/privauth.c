/* privauth.c - credentials for the consumer's private calls (privauth.h). */
#include "auth/privauth.h"

#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "net/httpc.h"

#define EXCHANGE_CONNECT_S 2.0
#define EXCHANGE_TOTAL_S 5.0
#define EXCHANGE_JSON_DEPTH 8
#define MAX_EXPIRES_IN 315360000LL /* ten years: anything longer is nonsense */

struct m8_privauth {
    m8_privauth_mode mode;
    char *secret;    /* PRIVATE_API_SECRET (wiped) */
    char *client_id; /* INTERNAL_CLIENT_ID */
    char *exchange_url;
    char *scopes_json; /* {"scopes":[...]} */
    double leeway;
    double connect_s, total_s;
    pthread_mutex_t mu; /* guards everything below; held during an exchange */
    char *token;        /* service token (wiped) */
    double valid_until; /* monotonic seconds */
    uint64_t generation;
    atomic_ulong exchanges;
};

static void wipe_free(char *s)
{
    if (s) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

/* Header values must not smuggle a line break (or any control byte). */
static bool header_safe(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
    }
    return true;
}

int m8_privauth_derive_url(const char *introspection_url, const char *suffix, char **out)
{
    *out = NULL;
    if (!introspection_url || !suffix)
        return M8_EINVAL;
    size_t n = strlen(introspection_url);
    while (n > 0 && introspection_url[n - 1] == '/')
        n--;
    static const char tail[] = "/jti-status";
    size_t tl = sizeof tail - 1;
    if (n >= tl && memcmp(introspection_url + n - tl, tail, tl) == 0)
        n -= tl;
    while (n > 0 && introspection_url[n - 1] == '/')
        n--;
    size_t sl = strlen(suffix);
    char *u = malloc(n + sl + 1);
    if (!u)
        return M8_ENOMEM;
    memcpy(u, introspection_url, n);
    memcpy(u + n, suffix, sl + 1);
    *out = u;
    return 0;
}

const char *m8_privauth_mode_name(m8_privauth_mode m)
{
    switch (m) {
    case M8_PRIVAUTH_LEGACY: return "legacy";
    case M8_PRIVAUTH_BOOTSTRAP: return "bootstrap";
    case M8_PRIVAUTH_SERVICE_TOKEN: return "service_token";
    }
    return "unknown";
}

m8_privauth_mode m8_privauth_mode_of(const m8_privauth *p)
{
    return p->mode;
}

static char *scopes_body(const m8_strlist *scopes)
{
    m8_buf b;
    m8_buf_init(&b, 65536);
    int rc = m8_buf_puts(&b, "{\"scopes\":[");
    if (scopes->n == 0) {
        rc = rc ? rc : m8_buf_puts(&b, "\"introspection\"");
    }
    for (size_t i = 0; i < scopes->n && rc == 0; i++) {
        if (i)
            rc = m8_buf_putc(&b, ',');
        if (rc == 0)
            rc = m8_buf_json_str(&b, scopes->items[i], strlen(scopes->items[i]));
    }
    if (rc == 0)
        rc = m8_buf_puts(&b, "]}");
    if (rc) {
        m8_buf_free(&b);
        return NULL;
    }
    return m8_buf_steal(&b);
}

static bool has_scope(const m8_strlist *scopes, const char *scope)
{
    if (scopes->n == 0)
        return strcmp(scope, "introspection") == 0;
    for (size_t i = 0; i < scopes->n; i++) {
        if (strcmp(scopes->items[i], scope) == 0)
            return true;
    }
    return false;
}

m8_privauth *m8_privauth_new(const m8_settings *s, const char *scope, char *err, size_t errlen)
{
    if (!s) {
        snprintf(err, errlen, "private-API auth: no settings");
        return NULL;
    }
    bool has_id = s->internal_client_id && *s->internal_client_id;
    if (s->service_token_exchange_enabled && !has_id) {
        snprintf(err, errlen, "CONFIG: SERVICE_TOKEN_EXCHANGE_ENABLED requires INTERNAL_CLIENT_ID");
        return NULL;
    }
    if (!s->private_api_secret || !*s->private_api_secret) {
        snprintf(err, errlen, "CONFIG: private-API calls to the issuer require PRIVATE_API_SECRET");
        return NULL;
    }
    if (!header_safe(s->private_api_secret)) {
        snprintf(err, errlen, "CONFIG: PRIVATE_API_SECRET contains a control character");
        return NULL;
    }
    if (has_id && !header_safe(s->internal_client_id)) {
        snprintf(err, errlen, "CONFIG: INTERNAL_CLIENT_ID contains a control character");
        return NULL;
    }
    if (s->service_token_exchange_enabled && (!s->introspection_url || !*s->introspection_url)) {
        snprintf(err, errlen, "CONFIG: the service-token exchange requires INTROSPECTION_URL");
        return NULL;
    }
    m8_privauth *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "private-API auth: out of memory");
        return NULL;
    }
    p->mode = !has_id                             ? M8_PRIVAUTH_LEGACY
              : s->service_token_exchange_enabled ? M8_PRIVAUTH_SERVICE_TOKEN
                                                  : M8_PRIVAUTH_BOOTSTRAP;
    p->leeway = s->service_token_refresh_leeway_seconds > 0
                    ? (double)s->service_token_refresh_leeway_seconds
                    : 0.0;
    p->connect_s = EXCHANGE_CONNECT_S;
    p->total_s = EXCHANGE_TOTAL_S;
    p->secret = strdup(s->private_api_secret);
    bool okay = p->secret && pthread_mutex_init(&p->mu, NULL) == 0;
    if (okay && has_id)
        okay = (p->client_id = strdup(s->internal_client_id)) != NULL;
    if (okay && p->mode == M8_PRIVAUTH_SERVICE_TOKEN) {
        okay =
            m8_privauth_derive_url(s->introspection_url, "/service-token", &p->exchange_url) == 0 &&
            (p->scopes_json = scopes_body(&s->service_token_scopes)) != NULL;
    }
    if (!okay) {
        snprintf(err, errlen, "private-API auth: out of memory");
        wipe_free(p->secret);
        free(p->client_id);
        free(p->exchange_url);
        free(p->scopes_json);
        free(p);
        return NULL;
    }
    if (p->mode == M8_PRIVAUTH_SERVICE_TOKEN && scope &&
        !has_scope(&s->service_token_scopes, scope))
        m8_log(M8_LOG_WARNING,
               "private-API auth: SERVICE_TOKEN_SCOPES does not list \"%s\"; "
               "the issuer will refuse these calls with 403",
               scope);
    return p;
}

void m8_privauth_free(m8_privauth *p)
{
    if (!p)
        return;
    wipe_free(p->secret);
    wipe_free(p->token);
    free(p->client_id);
    free(p->exchange_url);
    free(p->scopes_json);
    pthread_mutex_destroy(&p->mu);
    sodium_memzero(p, sizeof *p);
    free(p);
}

void m8_privauth_set_timeouts(m8_privauth *p, double connect_s, double total_s)
{
    p->connect_s = connect_s;
    p->total_s = total_s;
}

unsigned long m8_privauth_exchanges(const m8_privauth *p)
{
    return atomic_load(&((m8_privauth *)p)->exchanges);
}

void m8_privauth_hdrs_clear(m8_privauth_hdrs *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < M8_ARRAY_LEN(h->line); i++) {
        wipe_free(h->line[i]);
        h->line[i] = NULL;
    }
    h->n = 0;
}

/* "Name: value" in a fresh allocation. */
static int add_line(m8_privauth_hdrs *h, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    char *l = malloc(nl + 2 + vl + 1);
    if (!l)
        return M8_ENOMEM;
    memcpy(l, name, nl);
    memcpy(l + nl, ": ", 2);
    memcpy(l + nl + 2, value, vl + 1);
    h->line[h->n++] = l;
    return 0;
}

static int fail(m8_privauth_error *e, int kind, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(m8_privauth_error *e, int kind, long status, const char *fmt, ...)
{
    if (e) {
        e->kind = kind;
        e->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return kind;
}

/* expires_in as Python's int() would read it from JSON: an integer, a
 * number (truncated) or a decimal string. */
static bool read_expires(json_object *v, long long *out)
{
    if (!v)
        return false;
    switch (json_object_get_type(v)) {
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        if (i > MAX_EXPIRES_IN || i < -MAX_EXPIRES_IN)
            return false;
        *out = (long long)i;
        return true;
    }
    case json_type_double: {
        double d = json_object_get_double(v);
        if (!isfinite(d) || d > (double)MAX_EXPIRES_IN || d < -(double)MAX_EXPIRES_IN)
            return false;
        *out = (long long)d;
        return true;
    }
    case json_type_string: {
        const char *s = json_object_get_string(v);
        size_t n = (size_t)json_object_get_string_len(v);
        n = m8_trim(&s, n);
        char tmp[32];
        if (n == 0 || n >= sizeof tmp)
            return false;
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        return m8_parse_ll(tmp, -MAX_EXPIRES_IN, MAX_EXPIRES_IN, out) == 0;
    }
    default: return false;
    }
}

/* The exchange of doc/wire.md#service-token-exchange, under p->mu. */
static int exchange(m8_privauth *p, double now, m8_privauth_error *e)
{
    atomic_fetch_add(&p->exchanges, 1);
    m8_privauth_hdrs boot = {0};
    if (add_line(&boot, "X-Internal-Client", p->client_id) ||
        add_line(&boot, "X-Internal-Token", p->secret)) {
        m8_privauth_hdrs_clear(&boot);
        return fail(e, M8_ENOMEM, 0, "out of memory");
    }
    const char *headers[] = {boot.line[0], boot.line[1], "Content-Type: application/json", NULL};
    m8_http_request rq = {
        .method = "POST",
        .url = p->exchange_url,
        .headers = headers,
        .body = p->scopes_json,
        .body_len = strlen(p->scopes_json),
        .connect_timeout_s = p->connect_s,
        .timeout_s = p->total_s,
        .max = M8_PRIVAUTH_EXCHANGE_MAX_BYTES,
        .reuse = true,
    };
    m8_http_result res;
    int rc = m8_http_do(&rq, &res);
    m8_privauth_hdrs_clear(&boot);
    if (rc == M8_ETOOBIG) {
        m8_buf_free(&res.body);
        return fail(e, M8_EPARSE, 0, "service-token exchange: answer over %u bytes",
                    M8_PRIVAUTH_EXCHANGE_MAX_BYTES);
    }
    if (rc) {
        m8_buf_free(&res.body);
        return fail(e, rc == M8_ENOMEM ? M8_ENOMEM : M8_EIO, 0, "service-token exchange: %s: %s",
                    m8_httpc_err_name(res.err), res.error);
    }
    long st = res.status;
    if (st < 200 || st > 299) {
        if (res.body.data)
            sodium_memzero(res.body.data, res.body.len);
        m8_buf_free(&res.body);
        if (st >= 500)
            return fail(e, M8_EIO, st, "service-token exchange: the issuer answered %ld", st);
        return fail(e, M8_ECONFIG, st, "service-token exchange: the issuer answered %ld (%s)", st,
                    st == 401   ? "INTERNAL_CLIENT_ID / PRIVATE_API_SECRET refused"
                    : st == 403 ? "SERVICE_TOKEN_SCOPES not granted"
                    : st == 404 ? "exchange not enabled on the issuer"
                                : "unexpected status");
    }
    const char *why = NULL;
    json_object *o = m8_json_parse(res.body.data ? res.body.data : "", res.body.len,
                                   EXCHANGE_JSON_DEPTH, NULL, &why);
    if (res.body.data)
        sodium_memzero(res.body.data, res.body.len);
    m8_buf_free(&res.body);
    json_object *tok = NULL, *exp = NULL;
    long long expires_in = 0;
    int ret = 0;
    if (!o || !json_object_is_type(o, json_type_object)) {
        ret = fail(e, M8_EPARSE, st, "service-token exchange: the answer is not a JSON object");
    } else if (!json_object_object_get_ex(o, "access_token", &tok) ||
               !json_object_is_type(tok, json_type_string) || json_object_get_string_len(tok) < 1 ||
               (size_t)json_object_get_string_len(tok) > M8_MAX_TOKEN_BYTES ||
               !header_safe(json_object_get_string(tok)) ||
               strchr(json_object_get_string(tok), ' ')) {
        ret = fail(e, M8_EPARSE, st, "service-token exchange: no usable access_token");
    } else if (!json_object_object_get_ex(o, "expires_in", &exp) ||
               !read_expires(exp, &expires_in)) {
        ret = fail(e, M8_EPARSE, st, "service-token exchange: no usable expires_in");
    } else {
        char *t = strdup(json_object_get_string(tok));
        if (!t) {
            ret = fail(e, M8_ENOMEM, st, "out of memory");
        } else {
            wipe_free(p->token);
            p->token = t;
            double life = (double)expires_in - p->leeway;
            p->valid_until = now + (life > 0 ? life : 0);
            p->generation++;
        }
    }
    if (tok) /* json-c frees without wiping: wipe the token's copy first */
        sodium_memzero((char *)json_object_get_string(tok),
                       (size_t)json_object_get_string_len(tok));
    json_object_put(o);
    return ret;
}

int m8_privauth_headers(m8_privauth *p, double now, m8_privauth_hdrs *h, m8_privauth_error *e)
{
    memset(h, 0, sizeof *h);
    if (e) {
        e->kind = 0;
        e->status = 0;
        e->msg[0] = '\0';
    }
    int rc = 0;
    switch (p->mode) {
    case M8_PRIVAUTH_LEGACY: rc = add_line(h, "X-Internal-Token", p->secret); break;
    case M8_PRIVAUTH_BOOTSTRAP:
        rc = add_line(h, "X-Internal-Client", p->client_id);
        if (rc == 0)
            rc = add_line(h, "X-Internal-Token", p->secret);
        break;
    case M8_PRIVAUTH_SERVICE_TOKEN:
        pthread_mutex_lock(&p->mu);
        if (!p->token || !(now < p->valid_until))
            rc = exchange(p, now, e);
        if (rc == 0) {
            size_t tl = strlen(p->token);
            char *v = malloc(7 + tl + 1);
            if (!v) {
                rc = M8_ENOMEM;
            } else {
                memcpy(v, "Bearer ", 7);
                memcpy(v + 7, p->token, tl + 1);
                rc = add_line(h, "Authorization", v);
                wipe_free(v);
            }
            h->generation = p->generation;
        }
        pthread_mutex_unlock(&p->mu);
        if (rc)
            m8_privauth_hdrs_clear(h);
        return rc && e && e->kind == 0 ? fail(e, rc, 0, "out of memory") : rc;
    }
    if (rc) {
        m8_privauth_hdrs_clear(h);
        return fail(e, rc, 0, "out of memory");
    }
    return 0;
}

bool m8_privauth_invalidate(m8_privauth *p, uint64_t generation)
{
    if (p->mode != M8_PRIVAUTH_SERVICE_TOKEN)
        return false;
    pthread_mutex_lock(&p->mu);
    if (p->token && p->generation == generation) {
        wipe_free(p->token);
        p->token = NULL;
        p->valid_until = 0;
    }
    pthread_mutex_unlock(&p->mu);
    return true;
}
