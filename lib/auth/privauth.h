/* privauth.h - credentials for the consumer's private calls to the issuer
 * (doc/wire.md#private-api-auth, doc/wire.md#modes): jti-status, the event stream, API-key
 * introspection.
 *
 * Mode (doc/wire.md#modes): legacy (X-Internal-Token only; the settings refuse it in
 * production), bootstrap (X-Internal-Client + X-Internal-Token) or
 * service_token (Authorization: Bearer <token> from the exchange of
 * doc/wire.md#service-token-exchange). Each client (revocation, event stream, API keys) owns its
 * provider, as in the reference.  A provider is shared by the threads of one process: the service
 * token is cached under a mutex and minted by one thread at a time (the others wait and reuse it);
 * it is reused while now < fetched + max(0, expires_in - SERVICE_TOKEN_REFRESH_LEEWAY_SECONDS).
 *
 * Secrets (PRIVATE_API_SECRET, the service token) are held in memory wiped
 * with sodium_memzero when dropped, and never appear in a log or an error
 * text. */
#ifndef M8_PRIVAUTH_H
#define M8_PRIVAUTH_H

#include "config/settings.h"
#include "core/common.h"

#define M8_PRIVAUTH_EXCHANGE_MAX_BYTES 16384u /* a service-token exchange answer */

typedef enum m8_privauth_mode {
    M8_PRIVAUTH_LEGACY = 0,
    M8_PRIVAUTH_BOOTSTRAP,
    M8_PRIVAUTH_SERVICE_TOKEN,
} m8_privauth_mode;

typedef struct m8_privauth m8_privauth;

/* The header lines for one private call ("Name: value"; at most two). */
typedef struct m8_privauth_hdrs {
    char *line[2]; /* owned; wiped by m8_privauth_hdrs_clear */
    size_t n;
    uint64_t generation; /* service token generation, for m8_privauth_invalidate */
} m8_privauth_hdrs;

/* Why headers could not be made (a failed service-token exchange). */
typedef struct m8_privauth_error {
    /* M8_EIO: transport (cannot connect, timeout, 5xx) - a fail_open mode
     * may let the request through; M8_ECONFIG: the issuer refused the
     * exchange (any other non-2xx: 401 bad bootstrap pair, 403 scopes, 404
     * exchange not enabled) - always 503 (doc/wire.md#jti-status-outcomes); M8_EPARSE: a 2xx answer
     * without a usable access_token / expires_in; M8_ENOMEM. */
    int kind;
    long status;   /* HTTP status of the exchange, 0 without one */
    char msg[256]; /* for logs; never a secret */
} m8_privauth_error;

/* Builds a provider from the settings (INTROSPECTION_URL, PRIVATE_API_SECRET,
 * INTERNAL_CLIENT_ID, SERVICE_TOKEN_EXCHANGE_ENABLED, SERVICE_TOKEN_SCOPES,
 * SERVICE_TOKEN_REFRESH_LEEWAY_SECONDS).  scope names the calls it serves
 * ("introspection", "event-stream", "api-key-introspection"): in
 * service-token mode a warning is logged when SERVICE_TOKEN_SCOPES lacks it
 * (the issuer will answer 403).  NULL with err filled (no secret in it) when
 * the settings cannot make a working provider: no PRIVATE_API_SECRET,
 * exchange without INTERNAL_CLIENT_ID or INTROSPECTION_URL, a control
 * character in the id or the secret. */
M8_INTERNAL m8_privauth *m8_privauth_new(const m8_settings *s, const char *scope, char *err,
                                         size_t errlen);
M8_INTERNAL void m8_privauth_free(m8_privauth *p);

M8_INTERNAL m8_privauth_mode m8_privauth_mode_of(const m8_privauth *p);
/* "legacy", "bootstrap", "service_token". */
M8_INTERNAL const char *m8_privauth_mode_name(m8_privauth_mode m);

/* Fills h with the headers of the mode; in service-token mode exchanges
 * first when no token is cached or it is within the leeway of its expiry.
 * now is monotonic seconds (m8_now_mono()).  0, or the error kind with e
 * filled (h is then empty). */
M8_INTERNAL int m8_privauth_headers(m8_privauth *p, double now, m8_privauth_hdrs *h,
                                    m8_privauth_error *e);
M8_INTERNAL void m8_privauth_hdrs_clear(m8_privauth_hdrs *h);

/* After a 401 from a private call made with h->generation: drops the cached
 * service token (unless another thread already replaced it).  Returns true
 * when a retry with fresh headers may help (service-token mode only; static
 * modes do not retry, doc/wire.md#jti-status-outcomes). */
M8_INTERNAL bool m8_privauth_invalidate(m8_privauth *p, uint64_t generation);

/* Derives a private URL from INTROSPECTION_URL (doc/wire.md#private-urls and
 * doc/wire.md#service-token-exchange): strip trailing
 * '/', then a trailing "/jti-status", then trailing '/' again, and append
 * suffix ("/service-token", "/events/stream").  *out is malloc'd. */
M8_INTERNAL int m8_privauth_derive_url(const char *introspection_url, const char *suffix,
                                       char **out);

/* Exchange timeouts (default connect 2.0 s, total 5.0 s: the connect 2.0 +
 * read 3.0 of doc/wire.md#service-token-exchange). */
M8_INTERNAL void m8_privauth_set_timeouts(m8_privauth *p, double connect_s, double total_s);
/* Exchanges attempted so far (tests, metrics). */
M8_INTERNAL unsigned long m8_privauth_exchanges(const m8_privauth *p);

#endif
