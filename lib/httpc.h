/* httpc.h - the one outgoing-HTTP helper (DESIGN "Dependency direction"):
 * libcurl, TLS verification on, timeouts, a response-size cap, no redirect
 * to another scheme than http/https.  Used by JWKS (and later revocation,
 * the event stream, API keys). */
#ifndef M8_HTTPC_H
#define M8_HTTPC_H

#include "common.h"

typedef struct m8_http_result {
    long status;   /* HTTP status, 0 on transport failure */
    m8_buf body;   /* bounded by the max given to the call */
    char error[256]; /* transport error text (never contains credentials) */
} m8_http_result;

/* Calls curl_global_init once (thread-safe). */
M8_INTERNAL void m8_httpc_global_init(void);

/* GET url with a total timeout (seconds) and a body cap of max bytes (more
 * is M8_ETOOBIG).  Returns 0 when a response arrived (any status), M8_EIO
 * on transport failure (error filled), M8_ETOOBIG past max.  The caller
 * frees res->body. */
M8_INTERNAL int m8_http_get(const char *url, double timeout_s, size_t max, m8_http_result *res);

/* Writes url into out (always NUL-terminated, truncated to outlen) without
 * its userinfo ("https://user:pw@host/x" -> "https://host/x"), for logs. */
M8_INTERNAL void m8_http_display_url(const char *url, char *out, size_t outlen);

#endif
