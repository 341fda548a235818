/* jwks.h - the JWKS resolver (doc/wire.md#jwks, doc/wire.md#key-filtering, issue 3): the set
 * fetched from JWKS_URI with libcurl (httpc.h), cached for
 * JWKS_CACHE_TTL_SECONDS, refetched once on an unknown kid with a cooldown
 * (M8_JWKS_COOLDOWN_S, default 10 s) that counts failed fetches too, the
 * last good set kept when a fetch fails, keys filtered by use/kty/crv and
 * strength.  Thread-safe: one fetcher at a time, others use the cache. */
#ifndef M8_JWKS_H
#define M8_JWKS_H

#include "auth/keys.h"

#define M8_JWKS_COOLDOWN_S 10.0
#define M8_JWKS_TIMEOUT_S 5.0
/* JWKS_MAX_STALE_SECONDS' default: how long the last good set is used
 * while the issuer cannot be reached (a day). */
#define M8_JWKS_MAX_STALE_S 86400.0

/* A parsed key set (immutable, reference-counted keys). */
typedef struct m8_keyset {
    m8_key **keys;
    size_t n;
} m8_keyset;

/* Parses a JWKS document for alg (pure; fuzzed).  A missing "keys" member
 * is an empty set; unusable JWKs are skipped and counted in *skipped (each
 * reason logged by the caller via the err callback); more than
 * M8_MAX_JWKS_KEYS usable keys keeps the first ones.  M8_EPARSE when the
 * document is not a JSON object or "keys" is not an array. */
M8_INTERNAL int m8_jwks_parse(const char *json, size_t len, m8_alg alg, m8_keyset *out,
                              size_t *skipped);
M8_INTERNAL void m8_keyset_clear(m8_keyset *ks);

/* Called once per JWK that m8_jwks_parse_ex skips: index in "keys", its kid
 * (NULL when absent or unusable) and the reason (never key material). */
typedef void (*m8_jwks_skip_fn)(void *data, size_t index, const char *kid, const char *reason);
/* m8_jwks_parse with a callback for each skipped JWK (on_skip may be NULL).
 * Rules: a "kid" that is not a string, holds a NUL, or is longer than
 * M8_MAX_KID_BYTES skips its JWK; a duplicate kid replaces the earlier key
 * (last wins); JWKs without a kid are never merged.  Once M8_MAX_JWKS_KEYS
 * keys are kept, the rest of the array is skipped unread.  The document is
 * at most M8_MAX_JWKS_BYTES (else M8_ETOOBIG); alg is RS256 or ES256. */
M8_INTERNAL int m8_jwks_parse_ex(const char *json, size_t len, m8_alg alg, m8_keyset *out,
                                 size_t *skipped, m8_jwks_skip_fn on_skip, void *data);

typedef struct m8_jwks m8_jwks;

typedef enum m8_jwks_result {
    M8_JWKS_FOUND = 0,
    M8_JWKS_NOT_FOUND,   /* no key for this kid (token invalid) */
    M8_JWKS_AMBIGUOUS,   /* no kid in the token and more than one key: refused */
    M8_JWKS_UNAVAILABLE, /* nothing cached and the fetch failed (503) */
} m8_jwks_result;

/* A resolver for uri (http or https; NULL otherwise, or for alg HS256, or
 * ttl_s/cooldown_s negative).  Nothing is fetched until the first resolve. */
M8_INTERNAL m8_jwks *m8_jwks_new(const char *uri, m8_alg alg, double ttl_s, double cooldown_s);
/* Frees r; no resolve may be running. */
M8_INTERNAL void m8_jwks_free(m8_jwks *r);
/* Test hook: the fetch timeout (default M8_JWKS_TIMEOUT_S) and body cap
 * (default and at most M8_MAX_JWKS_BYTES).  Call before the first resolve. */
M8_INTERNAL void m8_jwks_set_fetch_limits(m8_jwks *r, double timeout_s, size_t max_bytes);

/* Finds the key for kid (NULL = the token has none) at monotonic time now,
 * fetching when the cache expired or the kid is unknown (throttled).  On
 * M8_JWKS_FOUND *key holds a reference (m8_key_unref when done).
 * A kid matches the JWK with that kid; no kid matches only a set of exactly
 * one key (several keys: M8_JWKS_AMBIGUOUS, never "the first one").  At most
 * one fetch attempt per cooldown_s, failed or not; while one thread fetches,
 * callers whose key is cached use it and the others wait for that fetch.
 * A failed fetch keeps the previous keys (logged) without extending their
 * expiry; M8_JWKS_UNAVAILABLE when no fetch has ever succeeded. */
M8_INTERNAL m8_jwks_result m8_jwks_resolve(m8_jwks *r, const char *kid, double now, m8_key **key);

/* Re-resolves kid after a bad signature (doc/wire.md#jwks): one fetch under the
 * same cooldown as m8_jwks_resolve (a fetch already under way counts as
 * it), then the key for kid, as in m8_jwks_resolve.  M8_JWKS_NOT_FOUND
 * when throttled or when kid has gone from the set; after a failed fetch,
 * the cached key again (the caller sees the same material). */
M8_INTERNAL m8_jwks_result m8_jwks_refresh(m8_jwks *r, const char *kid, double now, m8_key **key);

struct m8_jws;
/* Steps 0b-3 of doc/wire.md#token-checks in JWKS mode at monotonic time now: the key for the
 * token's kid, the alg check and the signature (m8_jws_verify).  After a bad
 * signature with the right alg, the same kid is re-resolved once
 * (m8_jwks_refresh) and, only when its key material changed, the signature
 * is checked once more: at most one extra check per token and one extra
 * fetch per cooldown, however many forged tokens arrive.  Returns
 * M8_JWT_OK, M8_JWT_INVALID, or -1 when no key set is available (503);
 * *checks (optional) gets the number of signature checks done (0-2). */
M8_INTERNAL int m8_jwks_verify(m8_jwks *r, const struct m8_jws *j, m8_alg alg, double now,
                               unsigned *checks);

/* Shared mode (a worker under fcgim8d): the supervisor's sidecar fetches
 * JWKS_URI once for all workers and publishes the document in the shared
 * segment; this resolver parses it when its generation changes, and where
 * it would fetch (unknown kid, the re-resolve of doc/wire.md#jwks) it asks the sidecar and
 * waits for its answer instead.  Cooldowns apply on both sides. */
struct m8_shm;
M8_INTERNAL void m8_jwks_use_shared(m8_jwks *r, struct m8_shm *shm);

/* The sidecar's fetch: GET uri (timeout, M8_MAX_JWKS_BYTES cap, TLS on) and
 * check that the body is a JWKS for alg; 0 with the raw document in *doc
 * (caller frees) and the usable key count, or an error with why. */
M8_INTERNAL int m8_jwks_fetch_document(const char *uri, m8_alg alg, double timeout_s, m8_buf *doc,
                                       size_t *nkeys, char *why, size_t whylen);

/* The longest time a key set is used after it was fetched
 * (JWKS_MAX_STALE_SECONDS; default M8_JWKS_MAX_STALE_S): past it, while no
 * new set can be fetched, resolves return M8_JWKS_UNAVAILABLE (503) rather
 * than trust keys the issuer may have revoked since.  Ignored unless > 0. */
M8_INTERNAL void m8_jwks_set_max_stale(m8_jwks *r, double max_stale_s);
/* Resolvers that fetch themselves (no fcgim8d sidecar) publish the fetch
 * time of their set in shm->jwks.fetched_ns for the age gauge of
 * m8_metrics_render; shared resolvers read the sidecar's instead. */
M8_INTERNAL void m8_jwks_report_to(m8_jwks *r, struct m8_shm *shm);
/* Age in seconds, at monotonic time now, of the set in use; -1 when no
 * set was ever fetched. */
M8_INTERNAL double m8_jwks_age(m8_jwks *r, double now);

/* A number that changes whenever the cached set is replaced (token caches
 * key on it). */
M8_INTERNAL unsigned long m8_jwks_generation(m8_jwks *r);
/* False once the set in use may be outdated: the sidecar published a newer
 * one (shared mode), or its JWKS_CACHE_TTL_SECONDS ran out.  Lock-free, for
 * every cached token check: a verified token is served from the cache only
 * while its keys are current (doc/wire.md#verified-token-cache). */
M8_INTERNAL bool m8_jwks_current(m8_jwks *r);
/* Counters for tests and metrics. */
M8_INTERNAL unsigned long m8_jwks_fetches(m8_jwks *r);

#endif
