/* service_accounts.h - service accounts (machine principals) of the issuer
 * and the OAuth2 client-credentials grant
 * (doc/issuer.md#service-accounts-and-client-credentials).
 *
 * A service account is a user row (provider "password" with no password,
 * email <name>@M8_SA_EMAIL_DOMAIN, full_name = name) plus one row of
 * <prefix>_service_account keyed by the user id: name, description, the
 * scopes it may be granted, and the SHA-256 of its client secret.  Its id
 * is its client_id.  The superuser routes (service_accounts.c) create,
 * list, read, re-role, deactivate it, rotate its secret and manage its API
 * keys; the grant (service_accounts_grant.c) trades its credentials for a
 * short-lived access token on the token endpoint. */
#ifndef M8_ISSUER_SERVICE_ACCOUNTS_H
#define M8_ISSUER_SERVICE_ACCOUNTS_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "issuer/service.h"

/* The client secret: this prefix and the unpadded base64url of 32 random
 * bytes; stored as its lower-case hex SHA-256. */
#define M8_SA_SECRET_PREFIX "m8sa_"
#define M8_SA_SECRET_LEN (sizeof M8_SA_SECRET_PREFIX - 1 + 43)
#define M8_SA_HASH_LEN 64u
#define M8_SA_NAME_MAX 64u   /* lower-case letters, digits, '-', '_' */
#define M8_SA_DESC_MAX 255u  /* characters */
#define M8_SA_SCOPES_MAX 32u /* scopes an account may hold */
#define M8_SA_SCOPE_MAX 64u  /* bytes of one scope */
/* The domain of a service account's email (a name that python
 * email-validator and lib/auth accept, so its tokens pass the claim checks
 * of every consumer; no mail is ever sent there). */
/* The claims that mark its tokens. */
#define M8_SA_CLAIM_PRINCIPAL "principal_type"
#define M8_SA_PRINCIPAL_VALUE "service_account"

/* The account's part of a service-account row (the rest is its user row). */
typedef struct m8_issuer_sa {
    char id[M8_UUID_STR_LEN + 1];
    char name[M8_SA_NAME_MAX + 1];
    const char *description; /* NULL = null */
    const char *scopes;      /* space-separated, "" = none */
    char secret_hash[M8_SA_HASH_LEN + 1];
    int64_t deactivated_us; /* 0 = never */
} m8_issuer_sa;

/* Reads the service_account row of user id (strings in a).  0,
 * M8_ENOTFOUND, or a database error. */
M8_INTERNAL int m8_issuer_sa_read(m8_db *db, const char *prefix, m8_arena *a, const char *id,
                                  m8_issuer_sa *out);

/* The lower-case hex SHA-256 of a secret. */
M8_INTERNAL void m8_issuer_sa_hash(const char *secret, size_t n, char out[M8_SA_HASH_LEN + 1]);

/* The password login's guard: true in *is when user id is a service
 * account.  0 or a database error. */
/* The self-service routes that change an account (/profile/update/me/,
 * /profile/delete/me/, /profile/api-keys/ creation) refuse a service
 * account's token: its account, role and keys are the superuser's to
 * manage under /service-accounts/.  1 after the answer (403, or a database
 * failure), 0 when the caller is no service account. */
M8_INTERNAL int m8_issuer_sa_refuse_self(m8_request *req, const m8_issuer *iss, m8_db *db);
#define M8_SA_D_SELF "A service account is managed by the superuser under /service-accounts/"

M8_INTERNAL int m8_issuer_sa_exists(m8_db *db, const char *prefix, const char *id, bool *is);

/* The client-credentials grant on the token endpoint (service_accounts_grant.c):
 * answers the request whose m8_cc_grant_kind was not the password grant
 * (kind is an m8_grant_kind).  Returns as a handler. */
M8_INTERNAL int m8_issuer_grant_client_credentials(m8_request *req, const m8_issuer *iss, int kind);

/* The route handlers are declared in service.h with the other route
 * groups, so that service.c need not include this header. */

#endif
