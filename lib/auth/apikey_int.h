/* apikey_int.h - internals shared by apikey.c (the check and the reading
 * of the issuer's answer) and apikey_client.c (the object, the circuit
 * breaker, the concurrency slots and the introspection call). */
#ifndef M8_APIKEY_INT_H
#define M8_APIKEY_INT_H

#include "auth/apikey.h" /* first: it brings config.h before any system header */

#include <pthread.h>
#include <stdatomic.h>

#include "auth/privauth.h"
#include "net/httpc.h"

struct m8_apikey {
    char *url;
    char *audience; /* INTERNAL_CLIENT_ID */
    m8_privauth *auth;
    double connect_s, total_s, pool_s;
    size_t max_response;
    unsigned threshold;
    double reset_s;

    pthread_mutex_t slot_mu; /* the concurrency limit (doc/wire.md#interpretation-order) */
    pthread_cond_t slot_cv;
    unsigned inflight, max_inflight;

    pthread_mutex_t br_mu; /* the circuit breaker (doc/wire.md#interpretation-order) */
    unsigned failures;
    bool open;
    bool half_open;
    double open_until; /* monotonic seconds */

    atomic_ulong resolutions, requests, refusals, opens;
};

/* The circuit breaker: admit (false while open), count a failure, reset. */
M8_INTERNAL bool m8__apikey_breaker_admit(m8_apikey *k, double now);
M8_INTERNAL void m8__apikey_breaker_failure(m8_apikey *k, double now);
M8_INTERNAL void m8__apikey_breaker_success(m8_apikey *k);

/* Takes one of the concurrency slots, waiting up to the pool timeout;
 * false when none came free (load shed).  m8__apikey_slot_give returns it. */
M8_INTERNAL bool m8__apikey_slot_take(m8_apikey *k);
M8_INTERNAL void m8__apikey_slot_give(m8_apikey *k);

/* POSTs the introspection request for key with the credential lines of h,
 * once more when the first attempt never left (res->not_sent).  Returns
 * m8_http_do's code with res filled (the caller frees res->body), or
 * M8_ENOMEM before any call.  The request body is wiped and freed. */
M8_INTERNAL int m8__apikey_call(m8_apikey *k, const m8_privauth_hdrs *h, const char *key,
                                size_t len, m8_http_result *res);

#endif
