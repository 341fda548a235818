/* auth.h - per-route access decisions (doc/design.md#auth): the token checks
 * of doc/wire.md#access-tokens and the answers of
 * doc/responses.md#auth-failures.
 *
 * Built once at boot from the settings: the one configured algorithm and
 * its key source (ACCESS_SECRET_KEY, the PEM of ACCESS_PUBLIC_KEY_FILE
 * parsed once, or the JWKS resolver when JWKS_URI is set: JWKS wins).
 * For each protected route: Bearer credential -> verified-token cache ->
 * JWS parse -> key -> signature -> claims -> principal -> is_active -> role
 * guard.  The cache is per thread, indexed by a keyed hash (SipHash) of the
 * token's last 32 bytes (signature bytes) and hit only on the exact bytes of
 * the whole token, bounded (1024 x 2 entries), never used past the token's
 * exp, and dropped when the key set changes; it skips only the signature
 * and claim checks.  In JWKS mode a bad signature re-resolves the token's
 * kid once (m8_jwks_verify, doc/wire.md#jwks). */
#ifndef M8_AUTH_H
#define M8_AUTH_H

#include "config/settings.h"
#include "http/http.h"

typedef struct m8_auth m8_auth;

/* Validation hooks (doc/wire.md#failure-reasons; never given the token). */
typedef struct m8_auth_hooks {
    void (*on_success)(const char *jti, const char *sub, const char *token_type, void *data);
    void (*on_failure)(const char *reason, const char *token_type, void *data);
    void *data;
} m8_auth_hooks;

/* NULL with err filled when the key material cannot be used. */
M8_INTERNAL m8_auth *m8_auth_new(const m8_settings *s, char *err, size_t errlen);
M8_INTERNAL void m8_auth_free(m8_auth *a);
/* Under fcgim8d with a JWKS sidecar: key sets come from the shared segment
 * (m8_jwks_use_shared); no effect without JWKS_URI. */
struct m8_shm;
M8_INTERNAL void m8_auth_use_shared_jwks(m8_auth *a, struct m8_shm *shm);
/* Without the sidecar: this worker's own fetches report their time in shm
 * (the key set age gauge, m8_jwks_report_to). */
M8_INTERNAL void m8_auth_report_jwks(m8_auth *a, struct m8_shm *shm);
/* Stateful mode: every verified token (cached or not) is checked against
 * revocation (revocation.h) before the user and role checks. */
struct m8_revocation;
M8_INTERNAL void m8_auth_use_revocation(m8_auth *a, struct m8_revocation *rev);
/* X-API-Key routes (M8_API_KEY_READER / _WRITER) resolve keys with k. */
struct m8_apikey;
M8_INTERNAL void m8_auth_use_apikey(m8_auth *a, struct m8_apikey *k);
M8_INTERNAL void m8_auth_set_hooks(m8_auth *a, const m8_auth_hooks *hooks);

/* fcgim8-issuer's own routes (doc/issuer.md#own-routes): a token that fails
 * any check is 403 "Could not validate credentials." without
 * WWW-Authenticate (a missing or non-Bearer credential stays 401 "Not
 * authenticated"); with revoked (stateful mode; NULL: no check) each valid
 * token's jti is asked after the signature and claims and before the user
 * and role checks: 1 is 401 "Session revoked", 0 passes, anything else
 * (M8_EAGAIN: the store is down) passes when fail_open, else 503
 * "Authentication service temporarily unavailable".  Call before serving. */
typedef int (*m8_auth_revoked_fn)(m8_request *req, const char *jti, void *data);
M8_INTERNAL void m8_auth_use_issuer(m8_auth *a, m8_auth_revoked_fn revoked, void *data,
                                    bool fail_open);

/* fcgim8-issuer during a key rotation: the old published key parsed once
 * from ACCESS_PUBLIC_KEY_OLD_FILE by m8_auth_new (NULL when none), and its
 * kid (ACCESS_KEY_ID_OLD, else derived) into *kid; the JWKS document takes
 * both from here (doc/issuer.md#key-rotation). */
struct evp_pkey_st;
M8_INTERNAL const struct evp_pkey_st *m8_auth_old_key(const m8_auth *a, const char **kid);

struct json_object;
struct m8_principal;

/* Verifies one token fully (no cache): parse, key, signature, claims.
 * Returns M8_JWT_OK (p filled; *claims, when claims is not NULL, holds a
 * reference to the payload), an m8_jwt_reason, or -1 when the key source is
 * unavailable (answered 503). */
M8_INTERNAL int m8_auth_verify(m8_auth *a, const char *tok, size_t len, double now,
                               struct m8_principal *p, struct json_object **claims);

/* Returns true when the request may reach its handler (req->user set for a
 * protected route); otherwise sets the 401/403 answer on req
 * (doc/responses.md#auth-failures). */
M8_INTERNAL bool m8_auth_check(m8_auth *a, m8_request *req, m8_access access);

/* The same with the credential already taken out of the request by one of
 * the kinds of credential.h (bearer, cookie, API key): a bearer or cookie
 * credential is an access token, checked the same way whichever kind
 * carried it; an API-key access takes an M8_CRED_API_KEY credential; any
 * other kind is a 401 "Not authenticated" (M8_CRED_AMBIGUOUS: 401 "Could
 * not validate credentials."). */
struct m8_credential;
M8_INTERNAL bool m8_auth_check_credential(m8_auth *a, m8_request *req, m8_access access,
                                          const struct m8_credential *cred);

/* The one entry of every access decision (the route pipeline and
 * fcgim8-gate): takes the request's credential among kinds (M8_ROUTE_CRED_*
 * bits; 0 = the default of access, m8_credential_default_kinds) with
 * m8_credential_take, the cookie kind reading cookie (NULL: the
 * ACCESS_TOKEN_COOKIE_NAME of the settings), and resolves it to req->user
 * as m8_auth_check_credential does; an API key is resolved at the reader
 * level for M8_USER / M8_READER / M8_API_KEY_READER and the writer level
 * for M8_WRITER / M8_API_KEY_WRITER.  *used (when not NULL) is the
 * credential taken, e.g. for a CSRF check of a cookie.  M8_PUBLIC: true. */
M8_INTERNAL bool m8_auth_resolve(m8_auth *a, m8_request *req, m8_access access, unsigned kinds,
                                 const char *cookie, struct m8_credential *used);

/* ACCESS_TOKEN_COOKIE_NAME, or NULL when unset. */
M8_INTERNAL const char *m8_auth_cookie_name(const m8_auth *a);

/* Extracts a Bearer token (HTTP_AUTHORIZATION, then REDIRECT_HTTP_AUTHORIZATION;
 * an empty header counts as absent): returns false when absent or another
 * scheme; the token (tok, len) points into req. */
M8_INTERNAL bool m8_auth_bearer(const m8_request *req, const char **tok, size_t *len);

/* Counters for tests: signature verifications done, cache hits. */
M8_INTERNAL unsigned long m8_auth_verifications(const m8_auth *a);
M8_INTERNAL unsigned long m8_auth_cache_hits(const m8_auth *a);

#endif
