/* mint.h - the issuer's tokens (doc/issuer.md#tokens-and-jwks): access
 * tokens (RS256, ES256 or HS256) and refresh tokens (HS256) byte for byte as
 * PyJWT writes them for fa-auth-m8, the refresh-token check of the refresh
 * route, and JSON strings escaped as Python's json.dumps escapes them.
 * Signing goes through auth/jws_sign.h.  No I/O, no clock: the caller
 * passes now. */
#ifndef M8_ISSUER_MINT_H
#define M8_ISSUER_MINT_H

#include "auth/jws_sign.h"

/* The longest token minted: what consumers accept (M8_MAX_TOKEN_BYTES),
 * with a decoded payload of at most M8_MAX_JWT_PART_BYTES. */
#define M8_MINT_MAX_TOKEN M8_MAX_TOKEN_BYTES
/* The longest lifetime accepted, in minutes (ten years). */
#define M8_MINT_MAX_MINUTES 5256000LL
/* The longest jti a refresh token may carry (ours are M8_UUID_STR_LEN). */
#define M8_REFRESH_MAX_JTI 128

/* The error of a refused mint whose user row pairs role and is_superuser
 * inconsistently (superadmin if and only if is_superuser).  The route answers
 * 500 {"detail":"Could not issue token."} to it, as to every mint failure. */
#define M8_MINT_EPRIVILEGE M8_ESTATE
#define M8_MINT_DETAIL_FAILED "Could not issue token."

/* The user row the claims come from.  Strings are borrowed for the call and
 * must be valid UTF-8 (M8_EINVAL otherwise). */
typedef struct m8_mint_user {
    const char *id;        /* sub: a UUID (8-4-4-4-12, any case; written lower-case) */
    const char *email;     /* non-empty, written as given */
    const char *full_name; /* NULL = null */
    const char *avatar;    /* NULL = null */
    bool is_active;
    bool email_verified;
    bool is_superuser;     /* true if and only if role is "superadmin" */
    const char *role;      /* superadmin, admin, writer, reader or user */
    const char *tenant_id; /* NULL = null, else a UUID like id */
} m8_mint_user;

/* The access-token settings (borrowed). */
typedef struct m8_mint_access_cfg {
    const m8_sign_key *key;   /* ACCESS_TOKEN_ALGORITHM is key->alg */
    const char *kid;          /* RS256/ES256: NULL = m8_jwk_kid of key (costs
                               * an SPKI encoding a call); ignored for HS256 */
    long long expire_minutes; /* ACCESS_TOKEN_EXPIRE_MINUTES, 0..M8_MINT_MAX_MINUTES */
    const char *issuer;       /* TOKEN_ISSUER: iss when not NULL and not "" */
    const char *audience;     /* TOKEN_AUDIENCE: aud when not NULL and not "" */
} m8_mint_access_cfg;

/* Appends the access token of u to out: header {"alg","kid","typ":"JWT"}
 * (keys sorted; no kid for HS256), claims email, full_name, avatar,
 * is_active, email_verified, is_superuser, role, tenant_id, sub,
 * type:"access", exp (now + expire_minutes * 60), iat, nbf (now), jti, then
 * iss and aud when set; compact JSON, non-ASCII escaped as \uXXXX.  jti is
 * a UUID (written lower-case) or NULL for a fresh m8_jti_new; jti_out (may
 * be NULL) receives the jti written.  now is whole seconds since the epoch.
 * 0; M8_MINT_EPRIVILEGE (inconsistent role/is_superuser); M8_EINVAL (a
 * missing or malformed field or setting); M8_ETOOBIG (the token would pass
 * M8_MINT_MAX_TOKEN or its payload M8_MAX_JWT_PART_BYTES); M8_ENOMEM.  out
 * is left as it was on failure. */
M8_INTERNAL int m8_mint_access(const m8_mint_access_cfg *cfg, const m8_mint_user *u, long long now,
                               const char *jti, char jti_out[M8_UUID_STR_LEN + 1], m8_buf *out);

/* One extra string claim of an access token (a service account's marks,
 * doc/issuer.md#service-accounts-and-client-credentials). */
typedef struct m8_mint_claim {
    const char *name;  /* lower-case letters and '_', 1-32 bytes, not a standard claim */
    const char *value; /* UTF-8 */
} m8_mint_claim;
#define M8_MINT_MAX_EXTRA 8

/* m8_mint_access with the nextra claims of extra (at most
 * M8_MINT_MAX_EXTRA) appended, in order, after every other claim.  An
 * invalid or standard claim name is M8_EINVAL. */
M8_INTERNAL int m8_mint_access_extra(const m8_mint_access_cfg *cfg, const m8_mint_user *u,
                                     const m8_mint_claim *extra, size_t nextra, long long now,
                                     const char *jti, char jti_out[M8_UUID_STR_LEN + 1],
                                     m8_buf *out);

/* Appends the refresh token {"sub","type":"refresh","exp","jti"} (header
 * {"alg":"HS256","typ":"JWT"}) signed with key (HS256, the
 * REFRESH_SECRET_KEY bytes) to out; exp = now + expire_minutes * 60.  sub
 * and jti are UUIDs (written lower-case); pass the jti of the access token
 * minted with it.  0, M8_EINVAL, M8_ETOOBIG or M8_ENOMEM; out is left as
 * it was on failure. */
M8_INTERNAL int m8_mint_refresh(const m8_sign_key *key, long long expire_minutes, const char *sub,
                                const char *jti, long long now, m8_buf *out);

/* The answer of the refresh-token check (the first three steps of the
 * refresh route, doc/issuer.md#tokens-and-jwks); every failure is a 401. */
typedef enum m8_refresh_verdict {
    M8_REFRESH_OK = 0,
    M8_REFRESH_EXPIRED,     /* "Refresh token expired" */
    M8_REFRESH_INVALID,     /* "Invalid refresh token" */
    M8_REFRESH_NOT_REFRESH, /* "Not a refresh token" */
} m8_refresh_verdict;

/* The detail text of v; NULL for M8_REFRESH_OK or an unknown value. */
M8_INTERNAL const char *m8_refresh_detail(m8_refresh_verdict v);

/* What a good refresh token says. */
typedef struct m8_refresh_claims {
    char sub[M8_UUID_STR_LEN + 1]; /* the user id, lower-case 8-4-4-4-12 */
    char jti[M8_REFRESH_MAX_JTI + 1];
    long long exp;
    bool old_key; /* verified with the old key (the caller logs a warning) */
} m8_refresh_claims;

/* Checks the refresh token tok[0..len) at time now (whole seconds): an
 * HS256 JWS (auth/jwt.h parsing and limits) signed with key, or, when that
 * signature does not match and old_key is not NULL, with old_key; then, as
 * PyJWT decodes it: exp, sub, jti and type present and not null; iat and
 * nbf (when present) JSON numbers not after now; exp a JSON number after
 * now (else EXPIRED); no non-empty aud; then type == "refresh" (else
 * NOT_REFRESH); then sub an 8-4-4-4-12 UUID and jti a non-empty string of
 * at most M8_REFRESH_MAX_JTI bytes.  Every other failure is INVALID.
 * Fills out (zeroed unless OK).  Call it on one thread per token: the
 * parsed header is shared with that thread's cache (auth/jwt.h). */
M8_INTERNAL m8_refresh_verdict m8_refresh_verify(const char *tok, size_t len,
                                                 const m8_sign_key *key, const m8_sign_key *old_key,
                                                 long long now, m8_refresh_claims *out);

/* Appends s[0..n) as a JSON string literal exactly as Python's json.dumps
 * writes it: \" \\ \b \f \n \r \t, other controls as \u00XX; with ascii
 * (ensure_ascii=True) also DEL and every non-ASCII character as \uXXXX
 * (lower-case hex, a surrogate pair above U+FFFF), else UTF-8 as is.
 * 0; M8_EINVAL when s is not valid UTF-8 (overlong forms and surrogates
 * included); M8_ETOOBIG past b's maximum. */
M8_INTERNAL int m8_pyjson_str(m8_buf *b, const char *s, size_t n, bool ascii);

/* True when s is a UUID in the 8-4-4-4-12 hex form (any case); when out is
 * not NULL it receives the lower-case form. */
M8_INTERNAL bool m8_uuid_canon(const char *s, size_t n, char out[M8_UUID_STR_LEN + 1]);

#endif
