/* docs.h - OpenAPI 3.1 document from the route table, Swagger UI and ReDoc
 * pages (doc/responses.md#docs), gated by the effective docs flags
 * (doc/settings.md#computed-values). */
#ifndef M8_DOCS_H
#define M8_DOCS_H

#include "config/settings.h"
#include "http/router.h"

/* One described query parameter or form field (m8_app_describe_route),
 * owned: the strings are copies. */
typedef struct m8_doc_param {
    char *name;
    char *description;   /* or NULL */
    char *default_value; /* or NULL; valid for type */
    m8_param_in in;
    m8_param_type type;
    bool required;
} m8_doc_param;

/* The description of one route: its method and path as the table writes
 * them, and its params in the declared order. */
typedef struct m8_route_doc {
    char *method, *path;
    m8_doc_param *params;
    size_t n;
    bool used; /* matched a route at boot */
} m8_route_doc;

typedef struct m8_docs {
    char *openapi;
    size_t openapi_len; /* rendered once at boot */
    char *docs_html;
    size_t docs_len;
    char *redoc_html;
    size_t redoc_len;
} m8_docs;

/* Builds the document: title service_name or else PROJECT_NAME, version
 * service_version or else SERVICE_VERSION; one operation per route
 * without M8_ROUTE_HIDDEN, with operationId "<tag or default>-<method>_<path
 * with non-alphanumerics as _>" (made unique with "_2", "_3"...), path
 * parameters, a JSON requestBody and a 422 response for JSON-body routes;
 * a route with a description (entry->doc) also gets its query parameters
 * after the path ones, its form fields as an
 * application/x-www-form-urlencoded requestBody, and the 422 response;
 * protected routes carry the OAuth2 password bearer scheme with tokenUrl
 * "{AUTH_PREFIX}/login/access-token".  The pages point at
 * "{API_PREFIX}/openapi.json".  M8_ECONFIG without a title or version. */
M8_INTERNAL int m8_docs_init(m8_docs *d, const m8_settings *s, const m8_router *r,
                             const char *service_name, const char *service_version);
M8_INTERNAL void m8_docs_free(m8_docs *d);
M8_INTERNAL int m8_docs_openapi_handle(const m8_docs *d, m8_request *req);
M8_INTERNAL int m8_docs_swagger_handle(const m8_docs *d, m8_request *req);
M8_INTERNAL int m8_docs_redoc_handle(const m8_docs *d, m8_request *req);

#endif
