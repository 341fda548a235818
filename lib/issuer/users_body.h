/* users_body.h - the JSON bodies and path ids of the user routes checked as
 * FastAPI and pydantic v2 check them, with their 422 lists
 * (doc/issuer.md#users-and-profile):
 *   {"detail":[{"type","loc","msg","input"[,"ctx"]}, ...]}.
 * Every field is checked and every error listed, in the model's field
 * order, before the route answers. */
#ifndef M8_ISSUER_USERS_BODY_H
#define M8_ISSUER_USERS_BODY_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include <json-c/json.h>

#include "fcgim8.h"

/* Passwords: 8..128 characters. */
#define M8_ISSUER_PASSWORD_MIN 8
#define M8_ISSUER_PASSWORD_MAX 128
#define M8_ISSUER_OAUTH_ID_MAX 256

typedef struct m8_ub {
    m8_request *req;
    json_object *body; /* borrowed */
    json_object *errs; /* owned until m8_ub_end */
} m8_ub;

/* Starts the check of the request's JSON body: 0, or -1 after the 422 of a
 * body that is not an object. */
M8_INTERNAL int m8_ub_begin(m8_request *req, m8_ub *b);

/* A string field of min..max characters.  Returns 1 with *out set (NULL
 * for a null of a nullable field), 0 when absent (a "missing" error when
 * required), -1 after an error. */
M8_INTERNAL int m8_ub_str(m8_ub *b, const char *name, size_t min, size_t max, bool nullable,
                          bool required, const char **out);

/* An email (EmailStr, at most 255 characters), trimmed and lower-cased into
 * the request's arena; null allowed when nullable (*out NULL). */
M8_INTERNAL int m8_ub_email(m8_ub *b, const char *name, bool nullable, bool required,
                            const char **out);

/* The avatar: null, or an http:// or https:// URL with a host and no
 * whitespace, at most 255 characters. */
M8_INTERNAL int m8_ub_avatar(m8_ub *b, const char *name, const char **out);

/* A boolean (true/false, 0/1 and pydantic's lax strings); null counts as
 * absent (the models declare bool | None). */
M8_INTERNAL int m8_ub_bool(m8_ub *b, const char *name, bool *out);

/* One of values (nvalues of them); null allowed when nullable. */
M8_INTERNAL int m8_ub_enum(m8_ub *b, const char *name, const char *const *values, size_t nvalues,
                           bool nullable, const char **out);

/* A key the model forbids (is_superuser): an extra_forbidden error when
 * present. */
M8_INTERNAL void m8_ub_forbid(m8_ub *b, const char *name);

/* A model-level error (loc ["body"], type value_error). */
M8_INTERNAL void m8_ub_model_error(m8_ub *b, const char *msg);
/* One 422 item at ["body", field] of type with msg, input (a reference is
 * taken; NULL is null) and ctx (taken over, or NULL). */
M8_INTERNAL void m8_ub_error(m8_ub *b, const char *type, const char *field, const char *msg,
                             json_object *input, json_object *ctx);

/* Ends the check: 0 when no error was found, else -1 after the 422. */
M8_INTERNAL int m8_ub_end(m8_ub *b);

/* The UUID path parameter name (8-4-4-4-12, 32 hex digits, braces or a
 * urn:uuid: prefix, as Python's uuid.UUID reads it) in lower-case
 * 8-4-4-4-12 into out: 0, or -1 after the 422 uuid_parsing. */
M8_INTERNAL int m8_ub_path_uuid(m8_request *req, const char *name, char out[37]);

/* An integer query parameter (default def) at least lo: 0, or -1 with an
 * error added to errs (a JSON array). */
M8_INTERNAL int m8_ub_query_int(m8_request *req, json_object *errs, const char *name, long long def,
                                long long lo, long long *out);

/* Answers 422 with the list errs (takes it). */
M8_INTERNAL int m8_ub_unprocessable(m8_request *req, json_object *errs);

/* The role values, highest first, and the rank of a role (0 = superadmin,
 * 4 = user, -1 unknown). */
M8_INTERNAL extern const char *const m8_issuer_roles[5];
M8_INTERNAL int m8_issuer_role_rank(const char *role);

#endif
