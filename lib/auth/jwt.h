/* jwt.h - JWS compact tokens and access-token claims (doc/wire.md#access-tokens,
 * doc/responses.md#auth-failures).  Pure: bytes and keys in, a verdict
 * out; no I/O, no clock (the caller passes now).  Fuzzed by tests/fuzz/fuzz_jwt.c.
 *
 * Order of checks (doc/wire.md#token-checks): parse (exactly three parts, base64url without
 * padding, header a JSON object within the limits, kid a string, crit
 * refused, b64 refused) -> alg equals the configured algorithm exactly ->
 * signature -> payload a JSON object -> required claims of the profile ->
 * iat, nbf (leeway) -> exp -> iss -> aud -> sub/jti strings -> type ==
 * "access" -> claims model (email, role, booleans, sub UUID, tenant_id UUID,
 * role/is_superuser invariant). */
#ifndef M8_JWT_H
#define M8_JWT_H

#include "auth/keys.h"
#include "core/b64url.h" /* m8_b64url_*, formerly declared here */

struct json_object;

/* Why a token was refused: the hook/metrics reason names of doc/wire.md#failure-reasons. */
typedef enum m8_jwt_reason {
    M8_JWT_OK = 0,
    M8_JWT_INVALID,                /* "invalid" */
    M8_JWT_EXPIRED,                /* "expired" */
    M8_JWT_WRONG_TYPE,             /* "wrong_type" */
    M8_JWT_INVALID_PAYLOAD,        /* "invalid_payload" */
    M8_JWT_INCONSISTENT_PRIVILEGE, /* "inconsistent_privilege_claims" */
} m8_jwt_reason;

M8_INTERNAL const char *m8_jwt_reason_name(m8_jwt_reason r);

/* A parsed (not yet verified) compact JWS.  Pointers into the token stay
 * valid while the token does. */
typedef struct m8_jws {
    const char *signing_input; /* "header.payload" */
    size_t signing_input_len;
    size_t sig_len;
    struct json_object *header;  /* owned */
    struct json_object *payload; /* owned; NULL until m8_jws_parse_payload */
    const char *alg;             /* borrowed from header; NULL if absent */
    const char *kid;             /* borrowed from header; NULL if absent */
    const char *payload_b64;
    size_t payload_b64_len;
    size_t raw_len; /* bytes in raw; 0 once m8_jws_parse_payload has used them */
    /* The buffers last: m8_jws_parse and m8_jws_free clear the fields above only. */
    unsigned char sig[512];
    /* The payload decoded by m8_jws_parse (which must check its base64url
     * anyway), so m8_jws_parse_payload does not decode it again; wiped
     * once parsed and by m8_jws_free. */
    unsigned char raw[M8_MAX_JWT_PART_BYTES];
} m8_jws;

/* Parses the compact form and the header (the payload is only decoded,
 * into j->raw, not parsed).  Limits:
 * M8_MAX_TOKEN_BYTES, M8_MAX_JWT_PART_BYTES (header and payload decoded),
 * M8_MAX_JWT_DEPTH, M8_MAX_KID_BYTES, 512 signature bytes.  base64url
 * without padding and with zero unused bits; JSON parts strict (no single
 * quotes, no raw control characters in strings, nothing but whitespace
 * after the object) and without duplicate member names at any level.
 * Returns M8_JWT_OK or M8_JWT_INVALID (j is then freed). */
M8_INTERNAL m8_jwt_reason m8_jws_parse(const char *tok, size_t len, m8_jws *j);
/* An m8_jws shares its header with the parsing thread's cache of recent
 * headers (json-c counts references without atomics): free it on the thread
 * that parsed it. */
/* Decodes the payload (a JSON object within the limits). */
M8_INTERNAL m8_jwt_reason m8_jws_parse_payload(m8_jws *j);
M8_INTERNAL void m8_jws_free(m8_jws *j);

/* Checks alg == key->alg == expected and the signature with m8_key_verify:
 * RS256 (RSASSA-PKCS1-v1_5/SHA-256, a signature of the modulus size), ES256
 * (64-byte R||S converted to DER), HS256 (HMAC-SHA256, 32 bytes,
 * constant-time compare). */
M8_INTERNAL m8_jwt_reason m8_jws_verify(const m8_jws *j, m8_alg expected, const m8_key *key);
/* True when the header's alg is exactly expected's name (doc/wire.md#token-checks). */
M8_INTERNAL bool m8_jws_alg_is(const m8_jws *j, m8_alg expected);

/* Frees the calling thread's parsing state (tokener, recent headers) and
 * its verification contexts (m8_key_thread_release) now rather than at
 * thread exit. */
M8_INTERNAL void m8_jwt_thread_release(void);

/* The claim profile (doc/wire.md#claim-profiles). */
typedef struct m8_claims_policy {
    bool strict;          /* TOKEN_STRICT_VALIDATION */
    const char *issuer;   /* NULL/"" = unset */
    const char *audience; /* NULL/"" = unset */
} m8_claims_policy;

/* The principal read from a verified payload.  The strings live in one
 * block owned by mem (freed by m8_principal_clear); email is trimmed and
 * lower-cased, id and tenant_id are lower-cased. */
typedef struct m8_principal {
    char *id; /* sub, a UUID */
    char *email;
    char *full_name; /* NULL = null */
    char *avatar;
    char *role;      /* superadmin|admin|writer|reader|user */
    char *tenant_id; /* NULL = null */
    char *jti;
    bool is_active, is_superuser, email_verified;
    long long exp; /* seconds since the epoch */
    long long iat; /* 0 when absent */
    void *mem;     /* owns every string above */
} m8_principal;

/* Checks the claims of j->payload (m8_jws_parse_payload first) against
 * policy at time now (seconds, a float), doc/wire.md#token-checks.  [C]
 * narrowings: time claims are JSON numbers (truncated; strings, booleans,
 * null refused), booleans are JSON booleans, sub/tenant_id are 8-4-4-4-12
 * UUIDs, a strict profile without issuer/audience refuses every token.
 * Fills out on M8_JWT_OK (caller clears); out is zeroed otherwise. */
M8_INTERNAL m8_jwt_reason m8_claims_check(const m8_jws *j, const m8_claims_policy *policy,
                                          double now, m8_principal *out);
M8_INTERNAL void m8_principal_clear(m8_principal *p);

/* Role hierarchy (doc/wire.md#roles): index in superadmin > admin > writer > reader >
 * user, 0 = superadmin; -1 for an unknown role. */
M8_INTERNAL int m8_role_rank(const char *role);
/* has_minimum_role(current, required). */
M8_INTERNAL bool m8_role_at_least(const char *current, const char *required);

#endif
