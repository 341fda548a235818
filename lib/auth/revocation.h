/* revocation.h - the revocation check of a verified access token in a
 * stateful consumer (doc/wire.md#jti-status, doc/wire.md#revocation-table;
 * the refusal bodies of doc/responses.md#auth-failures).
 *
 * Order: the shared table first (revtable.h: a revoked jti or a user-wide
 * revocation refuses at once; an unexpired cached active answer allows,
 * for the plain authenticated-user check only), else one POST of
 * jti-status v2 to INTROSPECTION_URL with the private-API headers
 * (privauth.h) on the worker thread's kept-alive connection, re-sent once
 * with a fresh service token after a 401 in service-token mode.
 *
 * Outcome -> result (doc/wire.md#jti-status-outcomes; effective mode = fail_closed when
 * AUTH_STRICT_MODE, else ACCESS_REVOCATION_FAILURE_MODE):
 *   active, user_id == sub, generation >= the user's watermark -> ALLOW
 *     (cached for REVOCATION_CACHE_TTL_SECONDS when > 0)
 *   inactive, or active below the watermark               -> REVOKED
 *   decision failure (2xx not JSON / not the v2 schema / other user_id)
 *                                                          -> UNAVAILABLE
 *   4xx, 3xx, or an exchange the issuer refused            -> UNAVAILABLE
 *     (error log naming the status, in both modes)
 *   transport failure (connect, timeout, reset, 5xx)       -> UNAVAILABLE,
 *     or ALLOW under fail_open (warning "security.revocation_fail_open")
 * Counters (shm): M8_CTR_REVOCATION_HIT/MISS for cache lookups (only when
 * the cache is on and consulted), M8_CTR_REVOCATION_FAIL_OPEN/FAIL_CLOSED
 * for every failure by what was done.  Logs never carry a jti, a user id,
 * a token or a secret; failure logs are rate-limited to one a second per
 * process (with the number suppressed). */
#ifndef M8_REVOCATION_H
#define M8_REVOCATION_H

#include "config/settings.h"
#include "core/common.h"

struct m8_shm;

#define M8_REVOCATION_MAX_RESPONSE_BYTES 8192u /* a jti-status answer */
#define M8_REVOCATION_JSON_DEPTH 8             /* nesting of a jti-status answer */

typedef enum m8_rev_result {
    M8_REV_ALLOW = 0,   /* not revoked: go on (is_active, role guard) */
    M8_REV_REVOKED,     /* doc/responses.md#auth-failures: 401 "Token has been revoked." +
                         * WWW-Authenticate     Bearer error="invalid_token" (403 under
                         * AUTH_INVALID_TOKEN_STATUS=403) */
    M8_REV_UNAVAILABLE, /* 503 "Token revocation check unavailable." */
} m8_rev_result;

/* The verified token's claims the check needs (borrowed for the call). */
typedef struct m8_rev_token {
    const char *jti;
    const char *sub;
    long long iat; /* 0 when absent */
    long long exp;
} m8_rev_token;

typedef struct m8_revocation m8_revocation;

/* True when the settings make this service check revocation (doc/wire.md#jti-status:
 * TOKEN_MODE=stateful and AUTH_SERVICE_ROLE=consumer). */
M8_INTERNAL bool m8_revocation_wanted(const m8_settings *s);

/* Builds the checker on shm (the pool's segment or m8_shm_private()); the
 * settings are copied.  NULL with err filled when not wanted, or when
 * INTROSPECTION_URL / PRIVATE_API_SECRET cannot make a client. */
M8_INTERNAL m8_revocation *m8_revocation_new(const m8_settings *s, struct m8_shm *shm, char *err,
                                             size_t errlen);
M8_INTERNAL void m8_revocation_free(m8_revocation *r);

/* The check of doc/wire.md#jti-status for a token that passed signature and claims.
 * use_cache: true only for the plain authenticated-user requirement (doc/wire.md#revocation-table:
 * role-sensitive checks skip the cache lookup but still store the answer).
 * now: wall-clock seconds. */
M8_INTERNAL m8_rev_result m8_revocation_check(m8_revocation *r, const m8_rev_token *t,
                                              bool use_cache, double now);

/* The detail string of a refusal: "Token has been revoked." or "Token
 * revocation check unavailable."; NULL for ALLOW. */
M8_INTERNAL const char *m8_revocation_detail(m8_rev_result res);

/* Timeouts of the jti-status call (default connect 2.0 s, total 5.0 s: the
 * connect 2.0 + read 3.0 of doc/wire.md#jti-status-request) and of its
 * service-token exchange. */
M8_INTERNAL void m8_revocation_set_timeouts(m8_revocation *r, double connect_s, double total_s);

/* jti-status requests sent so far (tests). */
M8_INTERNAL unsigned long m8_revocation_calls(const m8_revocation *r);

#endif
