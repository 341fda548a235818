/* httpc.c - the one outgoing-HTTP helper (httpc.h): a libcurl easy handle per
 * call or one kept per thread (keep-alive), TLS verified, bounded in time and
 * bytes, http/https only, even across redirects. */
#include "net/httpc.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <unistd.h>

#include "core/dynlib.h"
#include "core/thread.h"

#define HTTPC_MAX_REDIRS 3L
#define HTTPC_MAX_TIMEOUT_S 3600.0

/* libcurl is loaded on first use, not linked
 * (doc/design.md#libraries-loaded-on-first-use): every libcurl function this
 * file calls, as a pointer typed after curl.h's declaration.  curl.h's
 * type-checking wrappers of curl_easy_setopt/getinfo are macros; they go, so
 * that the names below map to the table. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define CURL_FUNCS(X)                                                                              \
    X(curl_easy_cleanup)                                                                           \
    X(curl_easy_getinfo)                                                                           \
    X(curl_easy_init)                                                                              \
    X(curl_easy_perform)                                                                           \
    X(curl_easy_reset)                                                                             \
    X(curl_easy_setopt)                                                                            \
    X(curl_easy_strerror)                                                                          \
    X(curl_free)                                                                                   \
    X(curl_global_init)                                                                            \
    X(curl_slist_append)                                                                           \
    X(curl_slist_free_all)                                                                         \
    X(curl_url)                                                                                    \
    X(curl_url_cleanup)                                                                            \
    X(curl_url_get)                                                                                \
    X(curl_url_set)
#define CURL_FIELD(f) __typeof__(&f) f;
#define CURL_SYM(f) {#f, offsetof(curl_api, f)},
typedef struct curl_api {
    CURL_FUNCS(CURL_FIELD)
} curl_api;
static curl_api curl_fn;
static const m8_dynlib_sym curl_syms[] = {CURL_FUNCS(CURL_SYM)};
static m8_dynlib curl_lib =
    M8_DYNLIB_INIT("libcurl", M8_LIBCURL_SONAME, "M8_TEST_LIBCURL_SONAME", curl_syms, &curl_fn);
#define curl_easy_cleanup (curl_fn.curl_easy_cleanup)
#define curl_easy_getinfo (curl_fn.curl_easy_getinfo)
#define curl_easy_init (curl_fn.curl_easy_init)
#define curl_easy_perform (curl_fn.curl_easy_perform)
#define curl_easy_reset (curl_fn.curl_easy_reset)
#define curl_easy_setopt (curl_fn.curl_easy_setopt)
#define curl_easy_strerror (curl_fn.curl_easy_strerror)
#define curl_free (curl_fn.curl_free)
#define curl_global_init (curl_fn.curl_global_init)
#define curl_slist_append (curl_fn.curl_slist_append)
#define curl_slist_free_all (curl_fn.curl_slist_free_all)
#define curl_url (curl_fn.curl_url)
#define curl_url_cleanup (curl_fn.curl_url_cleanup)
#define curl_url_get (curl_fn.curl_url_get)
#define curl_url_set (curl_fn.curl_url_set)

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool global_loaded; /* libcurl loaded: else curl_lib.error says why */
static CURLcode global_rc = CURLE_OK;

static void global_init_once(void)
{
    global_loaded = m8_dynlib_load(&curl_lib) == 0;
    if (global_loaded)
        global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void m8_httpc_global_init(void)
{
    pthread_once(&global_once, global_init_once);
}

bool m8_httpc_loaded(void)
{
    return m8_dynlib_loaded(&curl_lib);
}

typedef struct sink {
    m8_buf *body;
    bool (*on_data)(const char *p, size_t n, void *data);
    void *data;
    bool too_big;
    bool nomem;
    bool aborted;
} sink;

/* Stops the transfer (by taking fewer bytes than offered) as soon as the
 * body would pass its cap: exactly max bytes are accepted, one more is not. */
static size_t on_write(char *p, size_t size, size_t nmemb, void *data)
{
    sink *s = data;
    size_t n = size * nmemb;
    if (s->on_data) {
        if (s->on_data(p, n, s->data))
            return n;
        s->aborted = true;
        return 0;
    }
    int rc = m8_buf_append(s->body, p, n);
    if (rc == M8_ETOOBIG)
        s->too_big = true;
    else if (rc)
        s->nomem = true;
    return rc ? 0 : n;
}

typedef struct header_sink {
    const char *name;
    size_t name_len;
    char *out;
    size_t cap;
    CURL *h;
    void (*on_open)(long status, void *data);
    void *data;
} header_sink;

/* Keeps the value of one named response header; a new status line (after a
 * redirect or a 100 Continue) forgets what an earlier response said. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *data)
{
    header_sink *h = data;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        if (h->out)
            h->out[0] = '\0';
        return n;
    }
    if ((n == 2 && p[0] == '\r' && p[1] == '\n') || (n == 1 && p[0] == '\n')) {
        long status = 0; /* the end of one response's headers */
        if (h->on_open && curl_easy_getinfo(h->h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
            status >= 200)
            h->on_open(status, h->data);
        return n;
    }
    if (h->name_len && n > h->name_len && p[h->name_len] == ':' &&
        m8_memcaseeq(p, h->name_len, h->name)) {
        const char *v = p + h->name_len + 1;
        size_t vl = m8_trim(&v, n - h->name_len - 1);
        if (vl >= h->cap)
            vl = h->cap - 1;
        memcpy(h->out, v, vl);
        h->out[vl] = '\0';
    }
    return n;
}

typedef struct body_src {
    const char *p;
    size_t left;
} body_src;

static size_t on_read(char *buf, size_t size, size_t nitems, void *data)
{
    body_src *b = data;
    size_t n = size * nitems;
    if (n > b->left)
        n = b->left;
    memcpy(buf, b->p, n);
    b->p += n;
    b->left -= n;
    return n;
}

#if LIBCURL_VERSION_NUM >= 0x075000 /* 7.80.0: CURLOPT_PREREQFUNCTION */
/* Called once a connection is up (TLS included), right before the request
 * goes out on it: until then, nothing of the request has left. */
static int on_prereq(void *data, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    *(bool *)data = true;
    return CURL_PREREQFUNC_OK;
}
#endif

static int on_progress(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const atomic_int *cancel = data;
    return atomic_load(cancel) ? 1 : 0;
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

const char *m8_httpc_err_name(m8_httpc_err err)
{
    switch (err) {
    case M8_HTTPC_OK: return "ok";
    case M8_HTTPC_EINVAL: return "invalid";
    case M8_HTTPC_ENOMEM: return "nomem";
    case M8_HTTPC_ERESOLVE: return "resolve";
    case M8_HTTPC_ECONNECT: return "connect";
    case M8_HTTPC_ETLS: return "tls";
    case M8_HTTPC_ETIMEOUT: return "timeout";
    case M8_HTTPC_ESEND: return "send";
    case M8_HTTPC_EREAD: return "read";
    case M8_HTTPC_ETOOBIG: return "too_big";
    case M8_HTTPC_EREDIRECT: return "redirect";
    case M8_HTTPC_EPROTO: return "protocol";
    case M8_HTTPC_ECANCEL: return "cancelled";
    case M8_HTTPC_EABORT: return "aborted";
    case M8_HTTPC_ENOLIB: return "no_library";
    case M8_HTTPC_EOTHER: break;
    }
    return "other";
}

/* The kind of a failed transfer, from libcurl's code: the one place that
 * knows them.  An unsupported scheme is a refused redirect once a redirect
 * was taken, a bad URL when the URL itself is not http(s), and otherwise a
 * reply that is not HTTP (libcurl refuses an HTTP/0.9 answer that way). */
static m8_httpc_err classify(CURLcode rc, CURL *h, const char *url)
{
    switch (rc) {
    case CURLE_OK: return M8_HTTPC_OK;
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_UNKNOWN_OPTION: return M8_HTTPC_EINVAL;
    case CURLE_OUT_OF_MEMORY: return M8_HTTPC_ENOMEM;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return M8_HTTPC_ERESOLVE;
    case CURLE_COULDNT_CONNECT: return M8_HTTPC_ECONNECT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED: return M8_HTTPC_ETLS;
    case CURLE_OPERATION_TIMEDOUT: return M8_HTTPC_ETIMEOUT;
    case CURLE_SEND_ERROR:
    case CURLE_SEND_FAIL_REWIND: return M8_HTTPC_ESEND;
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING: return M8_HTTPC_EREAD;
    case CURLE_FILESIZE_EXCEEDED: return M8_HTTPC_ETOOBIG;
    case CURLE_TOO_MANY_REDIRECTS: return M8_HTTPC_EREDIRECT;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3: return M8_HTTPC_EPROTO;
    case CURLE_ABORTED_BY_CALLBACK: return M8_HTTPC_ECANCEL;
#if LIBCURL_VERSION_NUM >= 0x080600 /* 8.6.0: a response header past libcurl's limit */
    case CURLE_TOO_LARGE: return M8_HTTPC_EPROTO;
#endif
    case CURLE_UNSUPPORTED_PROTOCOL: {
        long redirects = 0;
        if (curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &redirects) == CURLE_OK && redirects > 0)
            return M8_HTTPC_EREDIRECT;
        char *next = NULL; /* a refused hop is not counted: it is still pending */
        if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &next) == CURLE_OK && next)
            return M8_HTTPC_EREDIRECT;
        size_t ul = strlen(url);
        if (!(ul >= 7 && m8_memcaseeq(url, 7, "http://")) &&
            !(ul >= 8 && m8_memcaseeq(url, 8, "https://")))
            return M8_HTTPC_EINVAL;
        return M8_HTTPC_EPROTO;
    }
    default: return M8_HTTPC_EOTHER;
    }
}

/* Test hook (m8_httpc_set_ca_file): a CA file instead of the system's. */
static char test_ca_file[4096];

void m8_httpc_set_ca_file(const char *path)
{
    snprintf(test_ca_file, sizeof test_ca_file, "%s", path ? path : "");
}

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static bool tls_ok;
static atomic_ulong connects;

typedef struct kept_handle {
    CURL *h;
    pid_t pid; /* the process that made it: a forked child never touches it */
} kept_handle;

static void kept_destroy(void *p)
{
    kept_handle *k = p;
    if (!k)
        return;
    if (k->h && k->pid == getpid())
        curl_easy_cleanup(k->h);
    free(k);
}

static void tls_init_once(void)
{
    tls_ok = pthread_key_create(&tls_key, kept_destroy) == 0;
}

/* The calling thread's handle, made on first use.  A handle inherited
 * across fork() shares its sockets (and TLS state) with the parent, so it is
 * dropped without a cleanup that could write to them. */
static CURL *kept_get(void)
{
    pthread_once(&tls_once, tls_init_once);
    if (!tls_ok)
        return NULL;
    kept_handle *k = pthread_getspecific(tls_key);
    pid_t me = getpid();
    if (k && k->pid != me) {
        free(k); /* the parent's handle leaks here, once, on purpose */
        k = NULL;
        pthread_setspecific(tls_key, NULL);
    }
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k)
            return NULL;
        k->h = curl_easy_init();
        k->pid = me;
        if (!k->h || pthread_setspecific(tls_key, k) != 0) {
            if (k->h)
                curl_easy_cleanup(k->h);
            free(k);
            return NULL;
        }
    }
    return k->h;
}

void m8_httpc_thread_cleanup(void)
{
    pthread_once(&tls_once, tls_init_once);
    if (!tls_ok)
        return;
    kept_handle *k = pthread_getspecific(tls_key);
    if (k) {
        pthread_setspecific(tls_key, NULL);
        kept_destroy(k);
    }
}

unsigned long m8_httpc_connects(void)
{
    return atomic_load(&connects);
}

/* Wipes every line of a header list (they may hold secrets), then frees it. */
static void headers_free(struct curl_slist *l)
{
    for (struct curl_slist *i = l; i; i = i->next) {
        if (i->data)
            sodium_memzero(i->data, strlen(i->data));
    }
    curl_slist_free_all(l);
}

static bool timeout_ok(double t)
{
    return isfinite(t) && t > 0.0 && t <= HTTPC_MAX_TIMEOUT_S;
}

/* Seconds to milliseconds, rounded up, at least 1. */
static long to_ms(double t)
{
    long ms = (long)(t * 1000.0 + 0.999);
    return ms < 1 ? 1 : ms;
}

int m8_http_do(const m8_http_request *rq, m8_http_result *res)
{
    if (!res)
        return M8_EINVAL;
    res->status = 0;
    res->err = M8_HTTPC_EINVAL;
    res->not_sent = true;
    res->error[0] = '\0';
    res->header[0] = '\0';
    m8_buf_init(&res->body, rq ? rq->max : 0);
    bool post = rq && rq->method && strcmp(rq->method, "POST") == 0;
    size_t nheaders = 0;
    while (rq && rq->headers && rq->headers[nheaders] && nheaders <= M8_HTTPC_MAX_HEADERS)
        nheaders++;
    if (!rq || !rq->url || !*rq->url || !timeout_ok(rq->timeout_s) ||
        (rq->connect_timeout_s != 0.0 && !timeout_ok(rq->connect_timeout_s)) ||
        (rq->method && !post && strcmp(rq->method, "GET") != 0) ||
        nheaders > M8_HTTPC_MAX_HEADERS || rq->read_timeout_s < 0 ||
        rq->read_timeout_s > (long)HTTPC_MAX_TIMEOUT_S || (rq->body_len && !rq->body)) {
        snprintf(res->error, sizeof res->error, "invalid request parameters");
        return M8_EINVAL;
    }
    m8_httpc_global_init();
    if (!global_loaded) {
        snprintf(res->error, sizeof res->error, "%s", curl_lib.error);
        res->err = M8_HTTPC_ENOLIB;
        return M8_EIO;
    }
    if (global_rc != CURLE_OK) {
        set_error(res, rq->url, global_rc, "curl_global_init failed");
        res->err = M8_HTTPC_EOTHER;
        return M8_EIO;
    }
    CURL *h = rq->reuse ? kept_get() : curl_easy_init();
    if (!h) {
        snprintf(res->error, sizeof res->error, "cannot create a curl handle");
        res->err = M8_HTTPC_ENOMEM;
        return M8_ENOMEM;
    }
    struct curl_slist *hl = NULL;
    int ret = 0;
    for (size_t i = 0; i < nheaders && ret == 0; i++) {
        struct curl_slist *n = curl_slist_append(hl, rq->headers[i]);
        if (!n)
            ret = M8_ENOMEM;
        else
            hl = n;
    }
    if (ret == 0 && post) { /* no "Expect: 100-continue" round trip */
        struct curl_slist *n = curl_slist_append(hl, "Expect:");
        if (!n)
            ret = M8_ENOMEM;
        else
            hl = n;
    }
    if (ret) {
        headers_free(hl);
        if (!rq->reuse)
            curl_easy_cleanup(h);
        snprintf(res->error, sizeof res->error, "out of memory");
        res->err = M8_HTTPC_ENOMEM;
        return ret;
    }

    char detail[CURL_ERROR_SIZE];
    detail[0] = '\0';
    sink s = {.body = &res->body, .on_data = rq->on_data, .data = rq->data};
    body_src src = {.p = rq->body ? rq->body : "", .left = rq->body ? rq->body_len : 0};
    header_sink hs = {.name = rq->capture_header,
                      .name_len = rq->capture_header ? strlen(rq->capture_header) : 0,
                      .out = res->header,
                      .cap = sizeof res->header};
    long total_ms = to_ms(rq->timeout_s);
    long connect_ms = rq->connect_timeout_s != 0.0 ? to_ms(rq->connect_timeout_s) : total_ms;
    bool started = false; /* on_prereq: the request began to go out */

    CURLcode rc = CURLE_OK;
#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(h, opt, val);                                                    \
    } while (0)
    SETOPT(CURLOPT_URL, rq->url);
    if (post) {
        SETOPT(CURLOPT_POST, 1L);
        if (rq->send_once) {
            /* The body through a read callback with no seek callback:
             * libcurl cannot rewind it, so it never re-sends the request on
             * a fresh connection after a kept-alive one died under it. */
            SETOPT(CURLOPT_READFUNCTION, on_read);
            SETOPT(CURLOPT_READDATA, &src);
            SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        } else {
            SETOPT(CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
            SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        }
    } else {
        SETOPT(CURLOPT_HTTPGET, 1L);
    }
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, total_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    if (rq->read_timeout_s > 0) {
        SETOPT(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SETOPT(CURLOPT_LOW_SPEED_TIME, rq->read_timeout_s);
    }
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (test_ca_file[0])
        SETOPT(CURLOPT_CAINFO, test_ca_file);
    /* A redirect never downgrades: from an https URL, only https targets
     * are followed (an http hop would hand the request, and the answer we
     * trust, to anyone on the path). */
    bool tls = strlen(rq->url) >= 6 && m8_memcaseeq(rq->url, 6, "https:");
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, tls ? "https" : "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    SETOPT(CURLOPT_REDIR_PROTOCOLS,
           tls ? (long)CURLPROTO_HTTPS : (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(CURLOPT_FOLLOWLOCATION, rq->follow_redirects ? 1L : 0L);
    SETOPT(CURLOPT_MAXREDIRS, HTTPC_MAX_REDIRS);
    if (!rq->on_data)
        SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)rq->max);
    SETOPT(CURLOPT_USERAGENT, "fcgi-m8/" PACKAGE_VERSION);
    SETOPT(CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(CURLOPT_WRITEDATA, &s);
    SETOPT(CURLOPT_ERRORBUFFER, detail);
    if (hl)
        SETOPT(CURLOPT_HTTPHEADER, hl);
#if LIBCURL_VERSION_NUM >= 0x075000
    SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(CURLOPT_PREREQDATA, &started);
#endif
    if (rq->cancel) {
        SETOPT(CURLOPT_NOPROGRESS, 0L);
        SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
        SETOPT(CURLOPT_XFERINFODATA, (void *)rq->cancel);
    }
    hs.h = h;
    hs.on_open = rq->on_open;
    hs.data = rq->data;
    if (hs.name_len || hs.on_open) {
        SETOPT(CURLOPT_HEADERFUNCTION, on_header);
        SETOPT(CURLOPT_HEADERDATA, &hs);
    }
#undef SETOPT
    if (rc == CURLE_OK) {
        m8_thread_will_block(); /* another service: a serving thread hands its work over */
        rc = curl_easy_perform(h);
    }

    res->err = M8_HTTPC_OK;
    if (s.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(res->error, sizeof res->error, "response body exceeds the %zu byte cap", rq->max);
        res->err = M8_HTTPC_ETOOBIG;
        ret = M8_ETOOBIG;
    } else if (s.nomem) {
        snprintf(res->error, sizeof res->error, "out of memory reading the response");
        res->err = M8_HTTPC_ENOMEM;
        ret = M8_ENOMEM;
    } else if (s.aborted) {
        snprintf(res->error, sizeof res->error, "aborted by the receiver");
        res->err = M8_HTTPC_EABORT;
        ret = M8_EIO;
    } else if (rc == CURLE_ABORTED_BY_CALLBACK) {
        snprintf(res->error, sizeof res->error, "cancelled");
        res->err = M8_HTTPC_ECANCEL;
        ret = M8_EIO;
    } else if (rc != CURLE_OK) {
        set_error(res, rq->url, rc, detail);
        res->err = classify(rc, h, rq->url);
        ret = M8_EIO;
    } else {
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        res->status = status;
    }
    if (rq->reuse) {
        long n = 0;
        if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK && n > 0)
            atomic_fetch_add(&connects, (unsigned long)n);
    }
#if LIBCURL_VERSION_NUM >= 0x075000
    res->not_sent = ret != 0 && !started;
#else
    res->not_sent = ret != 0 && (res->err == M8_HTTPC_ERESOLVE || res->err == M8_HTTPC_ECONNECT ||
                                 res->err == M8_HTTPC_ETLS || res->err == M8_HTTPC_EINVAL);
#endif
    if (ret) {
        res->status = 0;
        m8_buf_free(&res->body);
        res->header[0] = '\0';
    }
    if (rq->reuse)
        curl_easy_reset(h); /* drops every pointer to this call; keeps the connections */
    else
        curl_easy_cleanup(h);
    headers_free(hl);
    return ret;
}

int m8_http_get(const char *url, double timeout_s, size_t max, m8_http_result *res)
{
    m8_http_request rq = {
        .method = "GET",
        .url = url,
        .timeout_s = timeout_s,
        .max = max,
        .follow_redirects = true,
    };
    return m8_http_do(&rq, res);
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
