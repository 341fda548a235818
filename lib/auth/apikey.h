/* apikey.h - the API-key principal (doc/wire.md#api-key-introspection): an X-API-Key header
 * resolved by the issuer's introspection, on every request (nothing cached).
 *
 * One m8_apikey per process, shared by its threads.  Each resolution:
 *   header missing / empty / over M8_APIKEY_MAX_KEY_BYTES -> 401, no call;
 *   an "m8ak_" key whose length, digits or checksum are wrong
 *   (auth/apikey_format.h)                           -> 401 malformed_key, no call;
 *   then the interpretation order (doc/wire.md#interpretation-order), first match wins:
 *    1 circuit open                                  -> 503 circuit_open (no call)
 *    2 no concurrency slot within POOL_TIMEOUT       -> 503 load_shed
 *    3 transport failure (a connect error is retried
 *      once at once; nothing else is retried)        -> 503 transport (breaker failure)
 *    4 body over MAX_RESPONSE_BYTES, any status      -> 503 response_too_large
 *    5 429                                           -> 429, Retry-After passed through
 *    6 401 / 403 (service token dropped, no retry)   -> 503 consumer_unauthorized
 *    7 >= 500                                        -> 503 issuer_unavailable (breaker failure)
 *    8 any other non-200 (3xx, 204, 4xx)             -> 503 unexpected_status (breaker failure)
 *    9 the body fails the v1 schema of the answer    -> 503 malformed_response
 *   10 parsed: breaker success (closes it)
 *   11 inactive                                      -> 401 inactive
 *   12 audience_id != INTERNAL_CLIENT_ID             -> 503 audience_mismatch
 *   13 the principal, then the capability needed     -> 403 insufficient_capability
 * and, for a route or gate rule that requires a scope
 * (m8_apikey_require_scope)                          -> 403 missing_scope.
 * A failed service-token exchange (privauth.h) is also a 503: transport
 * (breaker failure) when the issuer could not be reached, consumer_unauthorized
 * when it refused the exchange, malformed_response for an unusable answer.
 *
 * Circuit breaker (doc/wire.md#interpretation-order): THRESHOLD consecutive failures open it for
 * RESET_SECONDS; the next call after that is admitted with the count at
 * THRESHOLD - 1 (one more failure re-opens it, a success closes it);
 * concurrent calls while half-open are not held back.  Per process, under
 * a mutex.
 *
 * Time bounds of one resolution: POOL_TIMEOUT waiting for a slot, then
 * CONNECT_TIMEOUT + READ_TIMEOUT for the whole exchange (the connect part
 * twice at most, after a failed connect), plus the service-token exchange
 * when one is due (privauth).  The write timeout of
 * doc/wire.md#introspection-request (2.0 s) has no separate bound: the
 * request body (at most ~6 KiB) is one send.
 *
 * Logs: one line per refusal, {"msg":"api_key.refused","reason":...,
 * "status":...} (plus the issuer's status or a transport error text when
 * there is one); never the key, a secret, or the issuer's answer. */
#ifndef M8_APIKEY_H
#define M8_APIKEY_H

#include "config/settings.h"
#include "core/common.h"

#define M8_APIKEY_MAX_KEY_BYTES 1024u /* a presented X-API-Key value */
#define M8_APIKEY_JSON_DEPTH 16       /* nesting of an introspection answer */

/* What a route asks of the key (doc/wire.md#capabilities "ready-made dependencies"). */
typedef enum m8_apikey_need {
    M8_APIKEY_PRINCIPAL = 0, /* the bare principal: the key resolves; grants nothing */
    M8_APIKEY_READER,        /* required_role reader */
    M8_APIKEY_WRITER,        /* required_role writer, and access_mode read_write */
} m8_apikey_need;

/* Why a resolution ended; m8_apikey_reason_name gives the log code. */
typedef enum m8_apikey_reason {
    M8_AK_OK = 0,
    M8_AK_MISSING,                 /* 401 "missing": no or empty X-API-Key */
    M8_AK_TOO_LONG,                /* 401 "key_too_long": over M8_APIKEY_MAX_KEY_BYTES */
    M8_AK_INACTIVE,                /* 401 "inactive" */
    M8_AK_QUOTA_EXCEEDED,          /* 429 "quota_exceeded" */
    M8_AK_CIRCUIT_OPEN,            /* 503 "circuit_open" */
    M8_AK_LOAD_SHED,               /* 503 "load_shed" */
    M8_AK_TRANSPORT,               /* 503 "transport" */
    M8_AK_RESPONSE_TOO_LARGE,      /* 503 "response_too_large" */
    M8_AK_CONSUMER_UNAUTHORIZED,   /* 503 "consumer_unauthorized" */
    M8_AK_ISSUER_UNAVAILABLE,      /* 503 "issuer_unavailable" */
    M8_AK_UNEXPECTED_STATUS,       /* 503 "unexpected_status" */
    M8_AK_MALFORMED_RESPONSE,      /* 503 "malformed_response" */
    M8_AK_AUDIENCE_MISMATCH,       /* 503 "audience_mismatch" */
    M8_AK_INTERNAL,                /* 503 "internal": out of memory here */
    M8_AK_INSUFFICIENT_CAPABILITY, /* 403 "insufficient_capability" */
    M8_AK_MALFORMED_KEY,           /* 401 "malformed_key": an m8ak_ key failing its checksum */
    M8_AK_MISSING_SCOPE,           /* 403 "missing_scope": the key lacks the route's scope */
} m8_apikey_reason;

/* The key's owner as the issuer describes it (doc/wire.md#introspection-response).  Strings live in
 * the arena given to the call (borrowed, valid until the request ends). */
typedef struct m8_apikey_principal {
    const char *user_id; /* the owner */
    const char *role;    /* superadmin, admin, writer, reader or user */
    bool is_superuser;
    const char *access_mode; /* "read_only" or "read_write" */
    long long auth_generation;
    const char *audience_id;    /* == INTERNAL_CLIENT_ID */
    const char *key_expires_at; /* the issuer's text, or NULL for null / absent */
    double key_expires_ts;      /* the same in seconds since the epoch (0 when NULL) */
    bool can_read;              /* the reader capability (doc/wire.md#capabilities) */
    bool can_write;             /* the writer capability */
    /* The key's scopes (principal.scopes, doc/issuer.md#api-key-scopes-and-format):
     * n_scopes valid scope strings; none for an unscoped key or an issuer
     * that sends none (fa-auth-m8). */
    const char **scopes;
    size_t n_scopes;
    /* "ak_" + 16 hex digits of BLAKE2b(key): a fingerprint to tell keys
     * apart in an application's audit records; not the key, not reversible. */
    char key_id[24];
} m8_apikey_principal;

/* The answer to give (doc/responses.md#api-key-failures). */
typedef struct m8_apikey_answer {
    int status; /* 0 when the route may run; else 401, 403, 429 or 503 */
    m8_apikey_reason reason;
    const char *detail;            /* static text of the {"detail": ...} body; NULL on success */
    char retry_after[256];         /* 429: the issuer's Retry-After; "" = send none */
    char scope_detail[128];        /* the detail of missing_scope (names the scope) */
    long issuer_status;            /* the issuer's HTTP status when there was one, else 0 */
    m8_apikey_principal principal; /* filled when status == 0 */
} m8_apikey_answer;

typedef struct m8_apikey m8_apikey;

typedef enum m8_apikey_breaker {
    M8_AK_BREAKER_CLOSED = 0,
    M8_AK_BREAKER_OPEN,
    M8_AK_BREAKER_HALF_OPEN, /* reset time passed; the next call is admitted */
} m8_apikey_breaker;

/* Counters for tests and metrics. */
typedef struct m8_apikey_stats {
    unsigned long resolutions; /* m8_apikey_resolve calls */
    unsigned long requests;    /* introspection requests attempted (retries included) */
    unsigned long refusals;    /* resolutions that did not give a principal */
    unsigned long breaker_opens;
    unsigned failures; /* the breaker's consecutive failure count */
    m8_apikey_breaker breaker;
} m8_apikey_stats;

/* API_KEY_INTROSPECTION_ENABLED: when off no API-key requirement exists
 * (doc/wire.md#enabling-api-keys). */
M8_INTERNAL bool m8_apikey_enabled(const m8_settings *s);

/* Builds the resolver from the settings (doc/wire.md#enabling-api-keys: the URL, explicit or
 * derived from INTROSPECTION_URL; INTERNAL_CLIENT_ID, the expected audience; PRIVATE_API_SECRET;
 * the timeouts, concurrency, response cap, schema version "1" and breaker settings) with its own
 * private-API provider (scope api-key-introspection).  NULL with err filled (never a secret) when
 * disabled or when the settings cannot make a working resolver. */
M8_INTERNAL m8_apikey *m8_apikey_new(const m8_settings *s, char *err, size_t errlen);
M8_INTERNAL void m8_apikey_free(m8_apikey *k);

/* Resolves the X-API-Key value key[0..len) (NULL = header absent; used as
 * is, no trimming) for a route needing need; now is monotonic seconds
 * (m8_now_mono()) for the breaker; principal strings go to a.  Returns true
 * when the route may run (ans->principal filled), else false with ans
 * holding the answer of doc/responses.md#api-key-failures.  Thread-safe. */
M8_INTERNAL bool m8_apikey_resolve(m8_apikey *k, const char *key, size_t len, m8_apikey_need need,
                                   double now, m8_arena *a, m8_apikey_answer *ans);

/* Parses one 200 answer (doc/wire.md#introspection-response, schema version "1", strict JSON
 * types). 0 with *active set (and p filled when active; strings in a), or M8_EPARSE with *why a
 * static reason, or M8_ENOMEM.  Pure (tests, fuzz). */
M8_INTERNAL int m8_apikey_parse(const char *body, size_t len, m8_arena *a, bool *active,
                                m8_apikey_principal *p, const char **why);

/* has_api_key_capability (doc/wire.md#capabilities): 1 allowed, 0 denied, M8_EINVAL when
 * required_role is above writer or unknown (a wiring error, see
 * m8_apikey_audit_route). */
M8_INTERNAL int m8_apikey_has_capability(const char *role, bool is_superuser,
                                         const char *access_mode, const char *required_role);

/* Boot audit of one route (doc/wire.md#capabilities, doc/responses.md#api-key-failures).  need_role
 * is the route's requirement as a role: NULL for the bare principal, else
 * "reader" or "writer".  Returns NULL when the route is acceptable, else a
 * message in buf (the app prints it and refuses to start): the bare
 * principal grants no capability, so a route wired to it directly is
 * refused unless its path is in exempt (a NULL-terminated list of exact
 * paths, or NULL); a role above writer (admin, superadmin) or an unknown
 * one is a wiring error. */
M8_INTERNAL const char *m8_apikey_audit_route(const char *method, const char *path,
                                              const char *need_role, const char *const *exempt,
                                              char *buf, size_t buflen);

/* True when the resolved principal p holds scope (an exact match). */
M8_INTERNAL bool m8_apikey_has_scope(const m8_apikey_principal *p, const char *scope);

/* After a successful m8_apikey_resolve: true when scope is NULL or the
 * key holds it; else false with ans set to the 403 missing_scope answer
 * (its detail names the scope; the refusal is logged and counted). */
M8_INTERNAL bool m8_apikey_require_scope(m8_apikey *k, m8_apikey_answer *ans, const char *scope);

/* "missing", "inactive", "circuit_open", ... ("ok" for M8_AK_OK). */
M8_INTERNAL const char *m8_apikey_reason_name(m8_apikey_reason r);
/* The role a need stands for: NULL, "reader", "writer". */
M8_INTERNAL const char *m8_apikey_need_role(m8_apikey_need need);

M8_INTERNAL void m8_apikey_get_stats(m8_apikey *k, m8_apikey_stats *st);

/* The service-token exchange's timeouts (privauth default: connect 2.0 s,
 * total 5.0 s). */
M8_INTERNAL void m8_apikey_set_exchange_timeouts(m8_apikey *k, double connect_s, double total_s);

#endif
