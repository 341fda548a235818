/* oidc_store.h - the database side of SSO (doc/issuer.md#sso-oidc-and-google):
 * the login sessions (<prefix>_m8_oauth_state, ten minutes) and auth codes
 * (<prefix>_m8_auth_code, a minute) that replace fa-auth-m8's Redis keys,
 * each taken at most once; and the binding of a provider identity to a
 * user.  Errors as store.h (M8_EAGAIN: the database is unavailable). */
#ifndef M8_ISSUER_OIDC_STORE_H
#define M8_ISSUER_OIDC_STORE_H

#include "issuer/oidc.h"
#include "issuer/service.h"

/* Stores a login session under state until expires_at (expired rows are
 * dropped on the way). */
M8_INTERNAL int m8_oidc_state_put(m8_db *db, const char *prefix, const char *state,
                                  const char *flow, const char *payload, int64_t expires_at,
                                  int64_t now);
/* Takes (reads and deletes) the live session of state: 0 with *flow and
 * *payload in a, M8_ENOTFOUND when absent, expired or taken by another
 * caller first. */
M8_INTERNAL int m8_oidc_state_take(m8_db *db, const char *prefix, const char *state, int64_t now,
                                   m8_arena *a, const char **flow, const char **payload);
/* The same for an auth code (a UUID) and its payload. */
M8_INTERNAL int m8_oidc_code_put(m8_db *db, const char *prefix, const char *code,
                                 const char *payload, int64_t expires_at, int64_t now);
M8_INTERNAL int m8_oidc_code_take(m8_db *db, const char *prefix, const char *code, int64_t now,
                                  m8_arena *a, const char **payload);

/* What m8_oidc_ext_store writes: each set_* member names a column to
 * replace; a NULL token (or expires_us 0) writes NULL there. */
typedef struct m8_oidc_ext_write {
    bool set_access, set_refresh, set_expires;
    const char *access, *refresh; /* plaintext, at most M8_OIDC_EXT_TOKEN_MAX bytes */
    int64_t expires_us;           /* external_token_expires_at, microseconds; 0 = NULL */
} m8_oidc_ext_write;

/* Encrypts the tokens of w with keys[0] (Fernet, m8_oidc_token_keys) and
 * writes the columns w names on the session row of user_id (8-4-4-4-12)
 * whose jwt_jti is jti (doc/issuer.md#stored-google-tokens); *updated (may
 * be NULL) gets the rows changed.  M8_EINVAL for a token over its bound
 * or no key; else as store.h. */
M8_INTERNAL int m8_oidc_ext_store(m8_db *db, const char *prefix, const m8_fernet_key *keys,
                                  size_t nkeys, const char *user_id, const char *jti,
                                  const m8_oidc_ext_write *w, int64_t *updated);

/* The user of identity id at provider p: the account bound to it (Google:
 * oauth_user_id = sub; generic: <prefix>_m8_oidc_identity), else a new
 * account made just in time with p's default role, unless its email
 * belongs to another account: then refused, or linked only when p allows
 * it and the provider asserts the email verified.  0 with *u filled;
 * M8_ESTATE with *refusal set (email_not_verified, identity_blocked,
 * inactive, no_email, email_in_use, subject_mismatch, ...); or a database
 * error. */
M8_INTERNAL int m8_oidc_bind_user(m8_db *db, const char *prefix, const m8_oidc_provider *p,
                                  const m8_oidc_identity *id, m8_arena *a, m8_issuer_user *u,
                                  const char **refusal);

#endif
