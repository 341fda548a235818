/* httpc.c - the one outgoing-HTTP helper (httpc.h): a libcurl easy handle per
 * call, TLS verified, bounded in time and bytes, http/https only, even across
 * redirects. */
#include "httpc.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#define HTTPC_MAX_REDIRS 3L
#define HTTPC_MAX_TIMEOUT_S 3600.0

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void m8_httpc_global_init(void)
{
    pthread_once(&global_once, global_init_once);
}

typedef struct sink {
    m8_buf *body;
    bool too_big;
    bool nomem;
} sink;

/* Stops the transfer (by taking fewer bytes than offered) as soon as the
 * body would pass its cap: exactly max bytes are accepted, one more is not. */
static size_t on_write(char *p, size_t size, size_t nmemb, void *data)
{
    sink *s = data;
    size_t n = size * nmemb;
    int rc = m8_buf_append(s->body, p, n);
    if (rc == M8_ETOOBIG)
        s->too_big = true;
    else if (rc)
        s->nomem = true;
    return rc ? 0 : n;
}

/* Replaces every occurrence of needle in s (NUL string) by "***". */
static void redact(char *s, size_t cap, const char *needle)
{
    size_t nl = needle ? strlen(needle) : 0;
    if (nl == 0)
        return;
    char *hit;
    char *from = s;
    while ((hit = strstr(from, needle)) != NULL) {
        char tail[256];
        snprintf(tail, sizeof tail, "%s", hit + nl);
        size_t off = (size_t)(hit - s);
        snprintf(hit, cap - off, "***%s", tail);
        sodium_memzero(tail, sizeof tail);
        from = hit + 3;
        if ((size_t)(from - s) >= cap - 1)
            break;
    }
}

/* Error text from curl's code and its detail buffer, with the URL's user
 * name and password (if any) blanked out: curl's messages name hosts and
 * ports, but the text must never carry credentials whatever curl says. */
static void set_error(m8_http_result *res, const char *url, CURLcode code, const char *detail)
{
    if (detail && *detail) {
        size_t dl = strlen(detail);
        while (dl > 0 && (detail[dl - 1] == '\n' || detail[dl - 1] == '\r'))
            dl--;
        snprintf(res->error, sizeof res->error, "%s: %.*s", curl_easy_strerror(code), (int)dl,
                 detail);
    } else {
        snprintf(res->error, sizeof res->error, "%s", curl_easy_strerror(code));
    }
    CURLU *u = curl_url();
    if (!u)
        return;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
        static const CURLUPart parts[] = {CURLUPART_PASSWORD, CURLUPART_USER, CURLUPART_OPTIONS};
        for (size_t i = 0; i < M8_ARRAY_LEN(parts); i++) {
            char *v = NULL;
            if (curl_url_get(u, parts[i], &v, 0) == CURLUE_OK && v) {
                redact(res->error, sizeof res->error, v);
                sodium_memzero(v, strlen(v));
                curl_free(v);
            }
            /* The decoded form too, in case curl quotes it decoded. */
            v = NULL;
            if (curl_url_get(u, parts[i], &v, CURLU_URLDECODE) == CURLUE_OK && v) {
                redact(res->error, sizeof res->error, v);
                sodium_memzero(v, strlen(v));
                curl_free(v);
            }
        }
    }
    curl_url_cleanup(u);
}

int m8_http_get(const char *url, double timeout_s, size_t max, m8_http_result *res)
{
    if (!res)
        return M8_EINVAL;
    res->status = 0;
    res->error[0] = '\0';
    m8_buf_init(&res->body, max);
    if (!url || !*url || !(timeout_s > 0.0) || timeout_s > HTTPC_MAX_TIMEOUT_S ||
        !isfinite(timeout_s)) {
        snprintf(res->error, sizeof res->error, "invalid request parameters");
        return M8_EINVAL;
    }
    m8_httpc_global_init();
    if (global_rc != CURLE_OK) {
        set_error(res, url, global_rc, "curl_global_init failed");
        return M8_EIO;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(res->error, sizeof res->error, "cannot create a curl handle");
        return M8_ENOMEM;
    }
    char detail[CURL_ERROR_SIZE];
    detail[0] = '\0';
    sink s = {.body = &res->body};
    long ms = (long)(timeout_s * 1000.0 + 0.999); /* rounded up, without libm */
    if (ms < 1)
        ms = 1;

    CURLcode rc = CURLE_OK;
#define SETOPT(opt, val)                                                                       \
    do {                                                                                       \
        if (rc == CURLE_OK)                                                                    \
            rc = curl_easy_setopt(h, opt, val);                                                \
    } while (0)
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_HTTPGET, 1L);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, ms);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SETOPT(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
    SETOPT(CURLOPT_MAXREDIRS, HTTPC_MAX_REDIRS);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    SETOPT(CURLOPT_USERAGENT, "fcgi-m8/" PACKAGE_VERSION);
    SETOPT(CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(CURLOPT_WRITEDATA, &s);
    SETOPT(CURLOPT_ERRORBUFFER, detail);
#undef SETOPT
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h);

    int ret = 0;
    if (s.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(res->error, sizeof res->error, "response body exceeds the %zu byte cap", max);
        ret = M8_ETOOBIG;
    } else if (s.nomem) {
        snprintf(res->error, sizeof res->error, "out of memory reading the response");
        ret = M8_ENOMEM;
    } else if (rc != CURLE_OK) {
        set_error(res, url, rc, detail);
        ret = M8_EIO;
    } else {
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        res->status = status;
    }
    if (ret) {
        res->status = 0;
        m8_buf_free(&res->body);
    }
    curl_easy_cleanup(h);
    return ret;
}

void m8_http_display_url(const char *url, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return;
    if (!url) {
        out[0] = '\0';
        return;
    }
    const char *auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++) {
        if (auth[i] == '@')
            at = auth + i; /* the last '@' ends the userinfo */
    }
    if (!at) {
        snprintf(out, outlen, "%s", url);
        return;
    }
    snprintf(out, outlen, "%.*s%s", (int)(auth - url), url, at + 1);
}
