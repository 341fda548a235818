/* middleware.h - trusted host (doc/responses.md#trusted-host), CORS
 * (doc/responses.md#cors), security headers
 * (doc/responses.md#security-headers) and the request id, applied by the app
 * in the reference order (doc/design.md#request-flow): security headers wrap
 * trusted host, which wraps CORS, which wraps the router.  Everything here
 * is computed once from settings at boot. */
#ifndef M8_MIDDLEWARE_H
#define M8_MIDDLEWARE_H

#include "config/settings.h"
#include "http/http.h"

typedef struct m8_middleware {
    /* trusted host */
    bool th_enabled; /* ALLOWED_HOSTS non-empty and not "*" */
    char **th_patterns;
    size_t th_n; /* incl. "testserver" outside production */
    /* CORS */
    char **origins;
    size_t n_origins; /* ALLOWED_ORIGINS, exact match */
    /* security headers, in emission order (tier 1, tier 2, HSTS, CSP) */
    m8_hdr sec[6];
    size_t n_sec;
    char *hsts_value;    /* the HSTS value (points into sec_values), or NULL */
    char *sec_values[6]; /* owned copies of the values in sec */
} m8_middleware;

/* Builds from settings; an invalid host pattern is M8_ECONFIG with err. */
M8_INTERNAL int m8_middleware_init(m8_middleware *m, const m8_settings *s, char *err,
                                   size_t errlen);
M8_INTERNAL void m8_middleware_free(m8_middleware *m);

/* Trusted host: returns true when the request may go on; otherwise sets the
 * 400 "Invalid host header" (text/plain; charset=utf-8) or the 307
 * www-redirect on req.  The redirect keeps scheme (REQUEST_SCHEME or HTTPS
 * param, default http), the Host header's port and the raw REQUEST_URI. */
M8_INTERNAL bool m8_mw_trusted_host(const m8_middleware *m, m8_request *req);

/* CORS before routing: returns true when it answered (a preflight, 200 "OK"
 * or 400 "Disallowed CORS ..."); false lets the request go on. */
M8_INTERNAL bool m8_mw_cors_preflight(const m8_middleware *m, m8_request *req);
/* CORS after the handler, on simple/actual requests with an Origin:
 * Access-Control-Allow-Credentials: true always; Access-Control-Allow-Origin
 * and Vary: Origin (appended) when the origin is allowed.  Does nothing for a
 * request without Origin or for a preflight. */
M8_INTERNAL void m8_mw_cors_response(const m8_middleware *m, m8_request *req);

/* Sets the security headers on the response, replacing handler values. */
M8_INTERNAL void m8_mw_security_headers(const m8_middleware *m, m8_request *req);

/* Request id: X-Request-ID from the client when it is 1..M8_MAX_REQUEST_ID
 * chars of [A-Za-z0-9._-], else a fresh unique id (32 lower-case hex: a
 * random per-thread prefix, re-drawn after fork, plus a counter; no syscall
 * per request); stored in req->request_id and set as X-Request-ID. */
M8_INTERNAL void m8_mw_request_id(m8_request *req);

#endif
