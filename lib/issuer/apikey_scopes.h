/* apikey_scopes.h - the scopes of an issuer API key and the key format
 * setting (doc/issuer.md#api-key-scopes-and-format): the optional "scopes"
 * member of a creation body, the <prefix>_api_key_scopes rows, and the
 * API-key metric counters of this process. */
#ifndef M8_ISSUER_APIKEY_SCOPES_H
#define M8_ISSUER_APIKEY_SCOPES_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include <json-c/json.h>

#include "auth/apikey_format.h"
#include "db/db.h"
#include "issuer/users_body.h"

/* The "scopes" member of a creation body: NULL when absent or null (no
 * scopes), else the list (borrowed from the body).  A value that is not a
 * list of at most M8_APIKEY_MAX_SCOPES valid scopes adds its 422 errors to
 * b (list_type, too_long, string_type, string_pattern_mismatch). */
M8_INTERNAL json_object *m8_apikey_scopes_field(m8_ub *b);

/* Inserts the scopes of key idp (its database encoding), each once. */
M8_INTERNAL int m8_apikey_scopes_insert(m8_db *db, const char *prefix, const char *idp,
                                        json_object *scopes, int64_t now_us);

/* The scopes of key idp, sorted, into *out (an array, maybe empty; the
 * caller puts it). */
M8_INTERNAL int m8_apikey_scopes_read(m8_db *db, const char *prefix, const char *idp,
                                      json_object **out);

/* The issuer's API-key metric families (doc/issuer.md#api-key-scopes-and-format):
 * validations {success, invalid, revoked, expired}, quota checks {checked,
 * allowed, blocked}, windows exceeded per period, lifecycle {created,
 * revoked}. */
typedef enum m8_ak_metric {
    M8_AKM_VALID_SUCCESS = 0,
    M8_AKM_VALID_INVALID,
    M8_AKM_VALID_REVOKED,
    M8_AKM_VALID_EXPIRED,
    M8_AKM_RATE_CHECKED,
    M8_AKM_RATE_ALLOWED,
    M8_AKM_RATE_BLOCKED,
    M8_AKM_HIT_MINUTE,
    M8_AKM_HIT_HOUR,
    M8_AKM_HIT_DAY,
    M8_AKM_HIT_MONTH,
    M8_AKM_CREATED,
    M8_AKM_REVOKED,
    M8_AKM__COUNT
} m8_ak_metric;

/* Counts one event: in the shared segment's families (m8_im_inc, all
 * workers) and in this process (for tests). */
M8_INTERNAL void m8_apikey_metric(m8_ak_metric m);
/* The count of m so far in this process. */
M8_INTERNAL uint64_t m8_apikey_metric_get(m8_ak_metric m);

#endif
