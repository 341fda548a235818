/* private.h - the issuer's private API for consumers
 * (doc/issuer.md#private-api): the consumer registry read at boot from
 * PRIVATE_API_CONSUMERS (salted SHA-256 secrets, scopes), consumer
 * authentication (a bearer service token first, else the X-Internal-Client
 * and X-Internal-Token pair), the service-token exchange, jti-status v1 and
 * v2 (private_jti.c) and POST /private/users/.
 *
 * The registry is process-wide: m8_issuer_private_load builds it at boot
 * (a validator, before the app serves) and it is read-only afterwards, so
 * the serving threads share it without a lock. */
#ifndef M8_ISSUER_PRIVATE_H
#define M8_ISSUER_PRIVATE_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "config/settings.h"
#include "fcgim8.h"

/* The scopes fa-auth-m8 uses (any other string may be granted too). */
#define M8_SCOPE_INTROSPECTION "introspection"
#define M8_SCOPE_EVENT_STREAM "event-stream"
#define M8_SCOPE_USER_CREATE "user-create"
#define M8_SCOPE_API_KEY_INTROSPECTION "api-key-introspection"

/* The audience of a service token. */
#define M8_SERVICE_TOKEN_AUD "fa-auth-m8/internal-service"

/* Registry bounds: consumers, id bytes, secret bytes, scopes per consumer,
 * bytes per scope. */
#define M8_PRIVATE_CONSUMERS_MAX 256u
#define M8_PRIVATE_ID_MAX 128u
#define M8_PRIVATE_SECRET_MAX 1024u
#define M8_PRIVATE_SCOPES_MAX 16u
#define M8_PRIVATE_SCOPE_MAX 64u

/* The answers of doc/issuer.md#private-api. */
#define M8_PRIVATE_DETAIL_UNAUTHORIZED "Unauthorized"
#define M8_PRIVATE_DETAIL_FORBIDDEN "Forbidden"
#define M8_PRIVATE_DETAIL_NO_EXCHANGE "Service-token exchange not enabled"
#define M8_PRIVATE_DETAIL_INTROSPECTION_DOWN "Introspection temporarily unavailable"

/* An authenticated consumer, borrowed from the registry or the request. */
typedef struct m8_private_caller {
    char id[M8_PRIVATE_ID_MAX + 1];
    bool bearer; /* authenticated by a service token */
} m8_private_caller;

/* Builds the registry from s->private_api_consumers and the service-token
 * key from s->private_api_secret (an m8_validator_fn: a malformed registry
 * stops the boot with the reason in err, never a secret).  Replaces a
 * registry loaded before. */
M8_INTERNAL int m8_issuer_private_load(const m8_settings *s, char *err, size_t errlen, void *data);
/* Frees the registry (an m8_shutdown_fn; app and data unused). */
M8_INTERNAL void m8_issuer_private_free(m8_app *app, void *data);
/* How many consumers the registry holds. */
M8_INTERNAL size_t m8_issuer_private_count(void);

/* Authenticates the request's consumer for scope: 0 with *who filled, or 1
 * after the 401/403 answer. */
M8_INTERNAL int m8_issuer_private_auth(m8_request *req, const char *scope, m8_private_caller *who);

/* The secret's stored form sha256$<salt hex>$<SHA-256(salt || secret) hex>
 * with a fresh 16-byte salt, into out (at least 120 bytes): 0 or
 * M8_EINVAL. */
M8_INTERNAL int m8_issuer_private_hash(const char *secret, size_t len, char *out, size_t outlen);

/* POST /private/v1/service-token */
M8_INTERNAL int m8_issuer_h_service_token(m8_request *req, void *data);
/* POST /private/v1/jti-status (private_jti.c) */
M8_INTERNAL int m8_issuer_h_jti_status(m8_request *req, void *data);
/* POST /private/users/ (private_jti.c) */
M8_INTERNAL int m8_issuer_h_private_users(m8_request *req, void *data);

#endif
