/* router.h - route table and matching (DESIGN "http, router").  Pure. */
#ifndef M8_ROUTER_H
#define M8_ROUTER_H

#include "http.h"

typedef struct m8_route_entry {
    char *method;          /* "GET" ... */
    char *template;        /* full path with API_PREFIX applied, e.g. "/api/items/{item_id}" */
    char **segments;       /* split template; "{x}" marks a capture */
    size_t n_segments;
    bool trailing_slash;
    m8_access access;
    m8_handler handler;
    void *data;
    const char *summary;
    const char *tag;
    unsigned flags;        /* M8_ROUTE_* */
} m8_route_entry;

typedef struct m8_router {
    m8_route_entry *routes;
    size_t n;
} m8_router;

typedef enum { M8_MATCH_OK, M8_MATCH_NOT_FOUND, M8_MATCH_METHOD, M8_MATCH_REDIRECT } m8_match_result;

M8_INTERNAL void m8_router_init(m8_router *r);
M8_INTERNAL void m8_router_free(m8_router *r);
/* Adds a route: prefix ("" or "/api") applied unless M8_ROUTE_ABSOLUTE.  A
 * route with M8_ACCESS_UNSET, a bad method, a malformed template or a
 * duplicate (method, template) is refused with M8_ECONFIG and a reason. */
M8_INTERNAL int m8_router_add(m8_router *r, const char *prefix, const m8_route *route,
                              char *err, size_t errlen);
/* Matches method+path; first match in registration order wins.  On OK sets
 * *entry and fills req->path_params (arena).  On M8_MATCH_METHOD writes the
 * Allow header value ("GET, POST") to allow.  M8_MATCH_REDIRECT (Starlette's
 * redirect_slashes): nothing matched but the path with its trailing '/'
 * added or removed does; allow then holds that path. */
M8_INTERNAL m8_match_result m8_router_match(const m8_router *r, m8_request *req,
                                            const m8_route_entry **entry, m8_buf *allow);

#endif
