/* httpc.h - the one outgoing-HTTP helper (doc/design.md#dependency-rules):
 * libcurl, TLS verification on, timeouts, a response-size cap, no redirect
 * to another scheme than http/https.  Used by JWKS, revocation, the
 * service-token exchange (privauth), and later the event stream and API keys.
 *
 * Two entry points: m8_http_get (a fresh handle per call, redirects
 * followed: JWKS) and m8_http_do (any request; optionally on the calling
 * thread's reused handle, so the connection to the issuer stays alive
 * between requests of a worker thread).  Header lines given to a call are
 * wiped from libcurl's list after the call, as they may carry secrets. */
#ifndef M8_HTTPC_H
#define M8_HTTPC_H

#include <stdatomic.h>

#include "core/common.h"

#define M8_HTTPC_MAX_HEADERS 16u /* extra request header lines of one call */

/* What became of a request, so that no caller reads libcurl's codes or
 * matches error text: M8_HTTPC_OK when a response arrived (whatever its
 * status: see m8_http_result.status), else the one way it failed. */
typedef enum m8_httpc_err {
    M8_HTTPC_OK = 0,
    M8_HTTPC_EINVAL,    /* bad request parameters or URL: nothing sent */
    M8_HTTPC_ENOMEM,    /* out of memory */
    M8_HTTPC_ERESOLVE,  /* the host name (or proxy) does not resolve */
    M8_HTTPC_ECONNECT,  /* the TCP connection was refused or unreachable */
    M8_HTTPC_ETLS,      /* TLS handshake or peer verification failed */
    M8_HTTPC_ETIMEOUT,  /* a timeout (connect, total or read silence) */
    M8_HTTPC_ESEND,     /* sending failed, or the kept-alive connection died
                         * under a request that must not be re-sent */
    M8_HTTPC_EREAD,     /* the connection failed or closed while receiving
                         * (no answer at all, or a body cut short) */
    M8_HTTPC_ETOOBIG,   /* the response body passed its cap */
    M8_HTTPC_EREDIRECT, /* a redirect refused (scheme, downgrade, too many) */
    M8_HTTPC_EPROTO,    /* the peer's answer is not valid HTTP */
    M8_HTTPC_ECANCEL,   /* stopped through m8_http_request.cancel */
    M8_HTTPC_EABORT,    /* stopped by the receiver (on_data returned false) */
    M8_HTTPC_ENOLIB,    /* libcurl cannot be loaded (error names it and why;
                         * doc/design.md#libraries-loaded-on-first-use) */
    M8_HTTPC_EOTHER,    /* any other libcurl failure */
} m8_httpc_err;

typedef struct m8_http_result {
    long status;      /* HTTP status, 0 on transport failure */
    m8_httpc_err err; /* M8_HTTPC_OK with status, or the failure */
    /* True when the request certainly never left (no connection, TLS not
     * up, or it failed before its first byte was written): retrying it is
     * safe even for a POST that must run at most once. */
    bool not_sent;
    m8_buf body;      /* bounded by the max given to the call */
    char error[256];  /* transport error text (never contains credentials) */
    char header[256]; /* value of m8_http_request.capture_header (trimmed), or "" */
} m8_http_result;

typedef struct m8_http_request {
    const char *method; /* "GET" (NULL means GET) or "POST" */
    const char *url;
    /* Extra "Name: value" lines, NULL-terminated (at most M8_HTTPC_MAX_HEADERS),
     * or NULL.  Copied for the call and wiped afterwards. */
    const char *const *headers;
    const char *body; /* POST body (borrowed for the call), may be NULL */
    size_t body_len;
    double connect_timeout_s;   /* 0: same as timeout_s */
    double timeout_s;           /* whole transfer, (0, 3600] */
    size_t max;                 /* response body cap (more is M8_ETOOBIG) */
    bool follow_redirects;      /* false: a 3xx is handed back as a response */
    bool reuse;                 /* use the calling thread's kept-alive handle */
    bool send_once;             /* POST: never re-sent by libcurl on another
                                 * connection (a call that must not run twice) */
    const char *capture_header; /* response header whose value goes to res->header */
    /* Streaming: when set, body bytes go here instead of res->body (max is
     * then ignored); returning false aborts the transfer (M8_EIO, error
     * "aborted by the receiver"). */
    bool (*on_data)(const char *p, size_t n, void *data);
    void *data;
    /* Max silence between two received bytes, in whole seconds (0: none);
     * past it the transfer fails (M8_EIO). */
    long read_timeout_s;
    /* Called once per final response when its headers are complete, with
     * its status (>= 200), before any of its body reaches on_data; data as
     * above.  Lets a stream know it is open before its first event. */
    void (*on_open)(long status, void *data);
    /* When set, the transfer stops (M8_EIO, "cancelled") soon after *cancel
     * becomes non-zero, also while nothing arrives (checked about once a
     * second by libcurl's progress callback). */
    const atomic_int *cancel;
} m8_http_request;

/* Test hook: verify TLS peers against the CA certificates in path (NULL or
 * "": the system's store again).  Not thread-safe: call before any request. */
M8_INTERNAL void m8_httpc_set_ca_file(const char *path);

/* Loads libcurl and calls curl_global_init, once (thread-safe).  libcurl is
 * not linked: this, or the first request, loads it
 * (doc/design.md#libraries-loaded-on-first-use); when it cannot be loaded,
 * every request fails with M8_HTTPC_ENOLIB. */
M8_INTERNAL void m8_httpc_global_init(void);

/* True once libcurl is loaded in this process (loads nothing). */
M8_INTERNAL bool m8_httpc_loaded(void);

/* GET url with a total timeout (seconds) and a body cap of max bytes (more
 * is M8_ETOOBIG).  Returns 0 when a response arrived (any status), M8_EIO
 * on transport failure (error and err filled), M8_ETOOBIG past max.  The caller
 * frees res->body.  Redirects are followed (at most 3, http/https only;
 * from an https URL, https only: an https to http redirect is M8_EIO). */
M8_INTERNAL int m8_http_get(const char *url, double timeout_s, size_t max, m8_http_result *res);

/* Performs rq.  Same results as m8_http_get, plus M8_EINVAL for a bad
 * request (unknown method, timeouts out of range, too many headers).  With
 * rq->reuse the thread's handle (and its open connections) is kept for the
 * next call; a process that forked never reuses its parent's handle.  The
 * caller frees res->body (also on error: it is then empty). */
M8_INTERNAL int m8_http_do(const m8_http_request *rq, m8_http_result *res);

/* A short stable name for err, for logs and metrics labels ("ok",
 * "resolve", "connect", "tls", "timeout", "send", "read", "too_big",
 * "redirect", "protocol", "cancelled", "aborted", "invalid", "nomem",
 * "no_library", "other"). */
M8_INTERNAL const char *m8_httpc_err_name(m8_httpc_err err);

/* Frees the calling thread's kept-alive handle now (also done when the
 * thread exits). */
M8_INTERNAL void m8_httpc_thread_cleanup(void);

/* Connections opened by m8_http_do on reused handles of this process (for
 * tests: proves keep-alive). */
M8_INTERNAL unsigned long m8_httpc_connects(void);

/* Writes url into out (always NUL-terminated, truncated to outlen) without
 * its userinfo ("https://user:pw@host/x" -> "https://host/x"), for logs. */
M8_INTERNAL void m8_http_display_url(const char *url, char *out, size_t outlen);

#endif
