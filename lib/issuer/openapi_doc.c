/* openapi_doc.c - what fcgim8-issuer's routes read from the query string or
 * a form, for its OpenAPI document (openapi_doc.h,
 * doc/issuer.md#openapi-query-parameters-and-forms).  The handlers read
 * and check the values themselves; these tables only say what a client
 * sends, with the bounds the handlers apply. */
#include "issuer/openapi_doc.h"

#define Q M8_PARAM_IN_QUERY
#define F M8_PARAM_IN_FORM
#define STR M8_PARAM_STRING
#define INT M8_PARAM_INTEGER
#define PWD M8_PARAM_PASSWORD

/* POST /login/access-token: the password grant as fa-auth-m8's
 * OAuth2PasswordRequestForm, and the client-credentials grant
 * (doc/issuer.md#login-form,
 * doc/issuer.md#service-accounts-and-client-credentials). */
static const m8_route_param LOGIN_FORM[] = {
    {"grant_type", F, STR, 0,
     "password (the default when absent) or client_credentials (a service account)", NULL},
    {"username", F, STR, 1,
     "The account's email, at most 320 bytes (password grant; not sent with "
     "client_credentials)",
     NULL},
    {"password", F, PWD, 1,
     "The account's password, at most 4096 bytes (password grant; not sent with "
     "client_credentials)",
     NULL},
    {"scope", F, STR, 0,
     "Ignored by the password grant; with client_credentials, the space-separated scopes "
     "asked, a subset of the service account's (none: all of them)",
     ""},
    {"client_id", F, STR, 0,
     "Ignored by the password grant; the service account's client id with client_credentials "
     "(or HTTP Basic)",
     NULL},
    {"client_secret", F, PWD, 0,
     "Ignored by the password grant; the service account's secret with client_credentials "
     "(or HTTP Basic)",
     NULL},
};

/* The listings: FastAPI's skip/limit (422 below the minimum; a limit over
 * 1000 is served as 1000). */
static const m8_route_param LIST_0[] = {
    {"skip", Q, INT, 0, "Rows to skip (at least 0)", "0"},
    {"limit", Q, INT, 0, "Rows to return (at least 0; at most 1000 are returned)", "100"},
};
static const m8_route_param LIST_1[] = {
    {"skip", Q, INT, 0, "Rows to skip (at least 0)", "0"},
    {"limit", Q, INT, 0, "Rows to return (at least 1; at most 1000 are returned)", "100"},
};
/* GET /security/audit-log (hidden from the document, described all the
 * same): 422 outside the bounds (doc/issuer.md#audit-and-security-routes). */
static const m8_route_param AUDIT_LIST[] = {
    {"skip", Q, INT, 0, "Rows to skip (0 to 1000000000)", "0"},
    {"limit", Q, INT, 0, "Rows to return (1 to 1000)", "100"},
};

/* SSO (doc/issuer.md#sso-oidc-and-google): the login URL a client asks
 * for, and the callback the provider sends the browser to. */
static const m8_route_param LOGIN_URL[] = {
    {"redirect_target", Q, STR, 1,
     "Where the browser returns with the exchange code: at most 2048 bytes, a scheme of "
     "OAUTH_ALLOWED_REDIRECT_SCHEMES (http only to a loopback host outside production and "
     "staging), and a match of OAUTH_ALLOWED_REDIRECT_PREFIXES, which http and https targets "
     "always need, other schemes when it is set or in production (else 400)",
     NULL},
    {"code_challenge", Q, STR, 1,
     "The client's PKCE S256 challenge, 43 to 128 characters of A-Z a-z 0-9 - _ (else 400); "
     "the exchange then takes its verifier",
     NULL},
};
static const m8_route_param CALLBACK[] = {
    {"code", Q, STR, 0, "The provider's authorization code (at most 2048 bytes)", NULL},
    {"state", Q, STR, 1, "The state of the login URL, usable once (else 400)", NULL},
    {"error", Q, STR, 0, "The provider's error, when the user or the provider refused", NULL},
};

#define D(m, p, t)                                                                                 \
    {                                                                                              \
        m, p, t, M8_ARRAY_LEN(t)                                                                   \
    }
static const struct {
    const char *method, *path;
    const m8_route_param *params;
    size_t n;
} DESCRIBED[] = {
    D("POST", "/login/access-token", LOGIN_FORM),
    D("GET", "/users/", LIST_0),
    D("GET", "/sessions/", LIST_0),
    D("GET", "/service-accounts/", LIST_1),
    D("GET", "/security/audit-log", AUDIT_LIST),
    D("GET", "/google-api/login-url/", LOGIN_URL),
    D("GET", "/oidc/login-url/", LOGIN_URL),
    D("GET", "/google-auth/oauth-callback/", CALLBACK),
    D("GET", "/oidc/callback/", CALLBACK),
};
#undef D

int m8_issuer_describe_routes(m8_app *app)
{
    for (size_t i = 0; i < M8_ARRAY_LEN(DESCRIBED); i++) {
        int rc = m8_app_describe_route(app, DESCRIBED[i].method, DESCRIBED[i].path,
                                       DESCRIBED[i].params, DESCRIBED[i].n);
        if (rc != 0)
            return rc;
    }
    return 0;
}
