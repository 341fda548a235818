/* apikeys.h - API keys of the issuer (doc/issuer.md#api-keys): the owner
 * routes and the superuser routes (apikeys.c), the use of a key on
 * GET /profile/api-keys/verify and POST /private/v1/api-keys/introspect
 * with the per-key quotas (apikeys_use.c).  The handlers are declared in
 * service.h with the other route groups. */
#ifndef M8_ISSUER_APIKEYS_H
#define M8_ISSUER_APIKEYS_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include <json-c/json.h>

#include "db/db.h"
#include "fcgim8.h"
#include "issuer/service.h"

/* A key (auth/apikey_format.h): "m8ak_" with a checksum, or fa-auth-m8's
 * "ak_" and the 32 hex digits of a UUID4; stored as the lower-case hex
 * SHA-256 of the whole plaintext. */
#define M8_APIKEY_HASH_LEN 64u

#define M8_APIKEY_D_NOT_FOUND "API key not found"
#define M8_APIKEY_D_ALREADY_REVOKED "API key is already revoked"
#define M8_APIKEY_D_REVOKED_OK "API key revoked successfully"
#define M8_APIKEY_D_INVALID "Invalid or expired API key"
#define M8_APIKEY_D_RATE_DOWN "Rate limiting service unavailable"

/* The columns of a key row every read selects, in ApiKeyPublic's member
 * order, then the owner: see m8_apikey_public. */
#define M8_APIKEY_COLS                                                                             \
    "created_at, updated_at, name, expires_at, revoked, id, last_used_at, access_mode, user_id"
enum {
    M8_AK_CREATED,
    M8_AK_UPDATED,
    M8_AK_NAME,
    M8_AK_EXPIRES,
    M8_AK_REVOKED,
    M8_AK_ID,
    M8_AK_LAST,
    M8_AK_MODE,
    M8_AK_USER
};

/* The lower-case hex SHA-256 of key (len bytes) into out. */
M8_INTERNAL void m8_apikey_hash(const char *key, size_t len, char out[M8_APIKEY_HASH_LEN + 1]);

/* The wire form of the stored access mode ("read_only", "read_write"). */
M8_INTERNAL const char *m8_apikey_mode(const m8_db_result *r, size_t row);

/* ApiKeyPublic of row i of a SELECT M8_APIKEY_COLS, with the key's
 * audiences read from the database; NULL after a database error (*rc). */
M8_INTERNAL json_object *m8_apikey_public(m8_db *db, const char *prefix, const m8_db_result *r,
                                          size_t i, int *rc);

#endif
