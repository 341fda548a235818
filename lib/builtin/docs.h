/* docs.h - OpenAPI 3.1 document from the route table, Swagger UI and ReDoc
 * pages (doc/responses.md#docs), gated by the effective docs flags
 * (doc/settings.md#computed-values). */
#ifndef M8_DOCS_H
#define M8_DOCS_H

#include "config/settings.h"
#include "http/router.h"

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
