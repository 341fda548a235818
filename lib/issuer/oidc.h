/* oidc.h - sign-in through an external OpenID provider
 * (doc/issuer.md#sso-oidc-and-google): Google as fa-auth-m8 does it, and a
 * generic OpenID Connect provider found by discovery, both one relying-party
 * code path.  The pure parsers and checks (oidc_parse.c, fuzzed by
 * tests/fuzz/fuzz_oidc.c), the provider (oidc_provider.c: discovery, the
 * token endpoint through net/httpc, the ID token through auth/jwt and the
 * provider's JWKS), the one-shot state and auth-code rows and the identity
 * binding (oidc_store.c), and the routes (oidc_routes.c). */
#ifndef M8_ISSUER_OIDC_H
#define M8_ISSUER_OIDC_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "config/settings.h"
#include "db/db.h"
#include "fcgim8.h"
#include "issuer/fernet.h"

#include <pthread.h>
#include <stdatomic.h>

struct json_object;

/* ------------------------------------------------------------ limits */

#define M8_OIDC_TARGET_MAX 2048u     /* redirect_target */
#define M8_OIDC_CODE_MAX 2048u       /* the provider's authorization code */
#define M8_OIDC_STATE_MAX 128u       /* our state (22 characters) */
#define M8_OIDC_ERROR_MAX 256u       /* the provider's error / error_description */
#define M8_OIDC_QUERY_MAX 8192u      /* the callback's whole query string */
#define M8_OIDC_SESSION_MAX 8192u    /* a stored login session (JSON) */
#define M8_OIDC_AUTHCODE_MAX 8192u   /* a stored auth-code payload (JSON) */
#define M8_OIDC_DISCOVERY_MAX 65536u /* a discovery document */
#define M8_OIDC_TOKEN_RESP_MAX 65536u
#define M8_OIDC_SUB_MAX 255u
#define M8_OIDC_NAME_MAX 128u /* characters kept of the provider's name */
#define M8_OIDC_AVATAR_MAX 255u
#define M8_OIDC_SKEW_S 10 /* clock skew allowed on exp and iat */
#define M8_OIDC_STATE_TTL_S 600
#define M8_OIDC_CODE_TTL_S 60
#define M8_OIDC_EXCHANGE_LIMIT 10 /* per client address and minute */
/* The longest provider token kept on a session row: the longest whose
 * Fernet form fits the 2048-character external_* columns. */
#define M8_OIDC_EXT_TOKEN_MAX 1471u
#define M8_OIDC_EXT_COLUMN_MAX 2048u
_Static_assert(M8_FERNET_TOKEN_LEN(M8_OIDC_EXT_TOKEN_MAX) <= M8_OIDC_EXT_COLUMN_MAX &&
                   M8_FERNET_TOKEN_LEN(M8_OIDC_EXT_TOKEN_MAX + 1) > M8_OIDC_EXT_COLUMN_MAX,
               "M8_OIDC_EXT_TOKEN_MAX is the longest token that fits the column");
/* The longest lifetime (expires_in, seconds) taken from a token answer. */
#define M8_OIDC_EXT_EXPIRES_MAX (366LL * 86400)

/* ------------------------------------------------------------ pure parts */

/* The callback's query: code, state, error (each percent-decoded, '+' as a
 * space).  A name given twice, a value over its limit, a bad %XX, a NUL
 * or a control character after decoding: M8_EPARSE.  Unknown names are
 * ignored (Google adds scope, authuser, prompt). */
typedef struct m8_oidc_callback {
    char code[M8_OIDC_CODE_MAX + 1];
    char state[M8_OIDC_STATE_MAX + 1];
    char error[M8_OIDC_ERROR_MAX + 1];
    bool has_code, has_state, has_error;
} m8_oidc_callback;
M8_INTERNAL int m8_oidc_callback_parse(const char *qs, size_t len, m8_oidc_callback *out);

/* redirect_target of the login URL (doc/issuer.md#sso-oidc-and-google):
 * NULL when s allows it, else the 400 detail. */
M8_INTERNAL const char *m8_oidc_target_check(const m8_settings *s, const char *t, size_t n);
/* PKCE: a challenge is [A-Za-z0-9-_]{43,128}; a verifier [A-Za-z0-9-._~]{43,128}. */
M8_INTERNAL bool m8_oidc_challenge_ok(const char *s, size_t n);
M8_INTERNAL bool m8_oidc_verifier_ok(const char *s, size_t n);
/* BASE64URL(SHA-256(verifier)) without padding: 43 characters. */
M8_INTERNAL void m8_oidc_s256(const char *verifier, size_t n, char out[44]);
/* Appends s as Python's urllib.parse.quote_plus writes it. */
M8_INTERNAL int m8_oidc_quote_plus(m8_buf *b, const char *s, size_t n);
/* True for http(s)://host... whose host is 127.0.0.1, ::1 or localhost. */
M8_INTERNAL bool m8_oidc_url_loopback(const char *url);
/* True for an https URL, or an http URL to a loopback host. */
M8_INTERNAL bool m8_oidc_url_ok(const char *url);

/* The endpoints a discovery document names. */
typedef struct m8_oidc_endpoints {
    char *issuer, *authorization, *token, *jwks_uri; /* owned (free with ..._clear) */
    m8_alg alg;                                      /* the ID token algorithm pinned */
} m8_oidc_endpoints;
/* Reads a discovery document (at most M8_OIDC_DISCOVERY_MAX): a JSON object
 * whose issuer equals expect_issuer exactly, with the three endpoints as
 * URLs that m8_oidc_url_ok accepts; alg RS256 when the document lists it
 * (or lists nothing), else ES256 when listed, else refused.  0 or
 * M8_EPARSE with the reason in err. */
M8_INTERNAL int m8_oidc_discovery_parse(const char *json, size_t len, const char *expect_issuer,
                                        m8_oidc_endpoints *out, char *err, size_t errlen);
M8_INTERNAL void m8_oidc_endpoints_clear(m8_oidc_endpoints *e);

/* What the ID token must say. */
typedef struct m8_oidc_expect {
    const char *issuer;     /* iss, exactly */
    const char *issuer_alt; /* a second accepted iss (Google: "accounts.google.com"), or NULL */
    const char *client_id;  /* aud (a string, or an array holding it; then azp too) */
    const char *nonce;      /* nonce, exactly */
} m8_oidc_expect;
/* The identity an ID token asserts (strings in the caller's arena). */
typedef struct m8_oidc_identity {
    const char *sub;
    const char *email;   /* NULL when absent; trimmed, lower-cased */
    const char *name;    /* NULL when absent; at most M8_OIDC_NAME_MAX characters */
    const char *picture; /* NULL when absent or longer than M8_OIDC_AVATAR_MAX */
    bool email_verified;
} m8_oidc_identity;
/* Checks the claims of a verified ID token's payload at time now: iss,
 * aud (a string, or an array of strings holding it; azp required with
 * several audiences, and equal to the client id whenever present), exp >
 * now - M8_OIDC_SKEW_S, iat <= now + M8_OIDC_SKEW_S, nbf (when present) <=
 * now + M8_OIDC_SKEW_S, nonce, sub (1..M8_OIDC_SUB_MAX printable ASCII).  NULL
 * with out filled, else a short reason for the log ("iss", "aud",
 * "expired", "nonce", ...). */
M8_INTERNAL const char *m8_oidc_claims_check(struct json_object *payload, const m8_oidc_expect *e,
                                             long long now, m8_arena *a, m8_oidc_identity *out);

/* ------------------------------------------------------------ provider */

/* Which configuration: Google (fa-auth-m8's routes) or the generic one. */
typedef enum { M8_OIDC_GOOGLE = 0, M8_OIDC_GENERIC = 1 } m8_oidc_kind;

struct m8_jwks;

/* One configured provider, built at boot; its endpoints are fixed (Google
 * without GOOGLE_OIDC_ISSUER) or read once from the discovery document on
 * first use, then never change. */
typedef struct m8_oidc_provider {
    m8_oidc_kind kind;
    const char *label;      /* "google" or "oidc": the session's flow, auth_provider */
    const char *user_kind;  /* the user row's provider: "google" or "password" */
    const char *issuer_alt; /* a second accepted iss, or NULL */
    const char *auth_extra; /* appended to the authorization URL, or "" */
    char *issuer;           /* the expected iss */
    char *discovery_url;    /* NULL: fixed endpoints */
    m8_oidc_endpoints ep;   /* valid once ready */
    _Atomic bool ready;
    double next_try;      /* monotonic seconds: the next discovery attempt */
    pthread_mutex_t mu;   /* discovery */
    struct m8_jwks *jwks; /* the provider's keys, once ready */
    char *client_id, *client_secret, *redirect_uri;
    char default_role[16]; /* a JIT user's role */
    bool link_verified;    /* link a verified email to an existing local account */
    bool sync_profile;     /* later logins update full_name and avatar */
    /* fa-auth-m8's detail texts, or the generic ones */
    const char *d_exchange_failed, *d_refused;
} m8_oidc_provider;

/* Outcome of redeeming an authorization code. */
typedef enum {
    M8_OIDC_OK = 0,
    M8_OIDC_EXCHANGE_FAILED, /* transport failure or a non-200 answer */
    M8_OIDC_NO_ID_TOKEN,     /* a 200 answer without an id_token */
    M8_OIDC_BAD_ID_TOKEN,    /* signature, key or claims refused */
    M8_OIDC_ERROR,           /* anything else (no key set, memory) */
} m8_oidc_outcome;

/* Makes the provider's endpoints known (discovery on first use, retried at
 * most every 10 s after a failure).  0 or M8_EAGAIN. */
M8_INTERNAL int m8_oidc_ready(m8_oidc_provider *p);
/* The authorization URL with our state, PKCE challenge and nonce. */
M8_INTERNAL int m8_oidc_auth_url(m8_oidc_provider *p, const char *state, const char *challenge,
                                 const char *nonce, m8_buf *out);
/* The provider's own tokens from the token endpoint's answer
 * (doc/issuer.md#stored-google-tokens).  Secrets: the caller wipes the
 * struct (sodium_memzero) once done. */
typedef struct m8_oidc_ext_tokens {
    char access[M8_OIDC_EXT_TOKEN_MAX + 1];  /* "" when absent or too long */
    char refresh[M8_OIDC_EXT_TOKEN_MAX + 1]; /* "" when absent or too long */
    long long expires_in;                    /* seconds; 0 when absent or out of range */
    bool too_long;                           /* a token was dropped for its length */
} m8_oidc_ext_tokens;

/* Redeems code at the token endpoint with verifier (PKCE), verifies the
 * ID token (the provider's JWKS, alg pinned, oidc claims with nonce) at
 * time now, and fills id; with ext (may be NULL) also the provider's
 * access and refresh tokens and their lifetime.  *why (may be NULL) gets a
 * reason for the log. */
M8_INTERNAL m8_oidc_outcome m8_oidc_redeem(m8_oidc_provider *p, const char *code,
                                           const char *verifier, const char *nonce, long long now,
                                           m8_arena *a, m8_oidc_identity *id,
                                           m8_oidc_ext_tokens *ext, const char **why);

/* Builds the providers from the settings at boot (a startup validator:
 * nothing is fetched; a provider that is not configured stays off). */
M8_INTERNAL int m8_oidc_load(const m8_settings *s, char *err, size_t errlen, void *data);
M8_INTERNAL void m8_oidc_free(m8_app *app, void *data);
/* The provider of kind, or NULL when it is not enabled. */
M8_INTERNAL m8_oidc_provider *m8_oidc_get(m8_oidc_kind kind);
/* The keys of the stored provider tokens, built by m8_oidc_load from
 * TOKENS_ENCRYPTION_KEY then TOKENS_ENCRYPTION_KEY_OLD: *n of them (0
 * before the load or without the setting). */
M8_INTERNAL const m8_fernet_key *m8_oidc_token_keys(size_t *n);

/* ------------------------------------------------------------ routes */

/* Google (fa-auth-m8): GET /google-api/login-url/, GET
 * /google-auth/oauth-callback/, POST /google-api/exchange/; generic: GET
 * /oidc/login-url/, GET /oidc/callback/, POST /oidc/exchange/.  The data is
 * the m8_issuer. */
M8_INTERNAL int m8_issuer_h_google_login_url(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_google_callback(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_google_exchange(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_oidc_login_url(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_oidc_callback(m8_request *req, void *data);
M8_INTERNAL int m8_issuer_h_oidc_exchange(m8_request *req, void *data);
/* POST /sessions/refresh-google-tokens/ (any valid JWT; the session of the
 * caller's token, a Google session only): replaces the stored Google
 * tokens (sessions_admin.c, which renders the session rows). */
M8_INTERNAL int m8_issuer_h_refresh_google_tokens(m8_request *req, void *data);

#endif
