/* openapi_doc.h - the query parameters and form fields of fcgim8-issuer's
 * routes in its OpenAPI document (doc/issuer.md#openapi-query-parameters-and-forms). */
#ifndef M8_ISSUER_OPENAPI_DOC_H
#define M8_ISSUER_OPENAPI_DOC_H

#include "core/common.h"

/* Describes every issuer route that takes query parameters or a form
 * (m8_app_describe_route); before m8_app_main.  0 or the first error. */
M8_INTERNAL int m8_issuer_describe_routes(m8_app *app);

#endif
