/* router.h - route table and matching (doc/design.md#http-and-routing).  Pure. */
#ifndef M8_ROUTER_H
#define M8_ROUTER_H

#include "http/http.h"

typedef struct m8_route_entry {
    char *method;    /* "GET" ... */
    char *template;  /* full path with API_PREFIX applied, e.g. "/api/items/{item_id}" */
    char **segments; /* template split on '/' after the leading one, empty
                      * segments kept ("/" -> [""], "/a/" -> ["a",""]);
                      * "{x}" marks a capture */
    size_t n_segments;
    bool trailing_slash;  /* template ends with '/' */
    char **capture_names; /* "x" of each "{x}", in order */
    size_t n_captures;
    m8_access access;
    m8_handler handler;
    void *data;
    const char *summary;
    const char *tag;
    unsigned flags;    /* M8_ROUTE_* */
    const char *scope; /* the API-key scope it requires (m8_app_require_scope), or NULL */
    const struct m8_route_doc *doc; /* its query and form params (m8_app_describe_route), or NULL */
} m8_route_entry;

typedef struct m8_router {
    m8_route_entry *routes;
    size_t n;
} m8_router;

typedef enum {
    M8_MATCH_OK,
    M8_MATCH_NOT_FOUND,
    M8_MATCH_METHOD,
    M8_MATCH_REDIRECT
} m8_match_result;

M8_INTERNAL void m8_router_init(m8_router *r);
M8_INTERNAL void m8_router_free(m8_router *r);
/* Adds a route: prefix ("" or "/api") applied unless M8_ROUTE_ABSOLUTE.  A
 * route with M8_ACCESS_UNSET, no handler, a method other than GET, POST, PUT,
 * PATCH, DELETE, HEAD, OPTIONS, an empty path or one not starting with '/',
 * a malformed "{...}" segment (only whole-segment "{name}" with name
 * [A-Za-z_][A-Za-z0-9_]*, unique, at most M8_MAX_PATH_PARAMS), or a
 * duplicate (method, template) - templates equal up to capture names count
 * as duplicates, the second could never match - is refused with M8_ECONFIG
 * and a reason in err, e.g. "route GET /x declares no access". */
M8_INTERNAL int m8_router_add(m8_router *r, const char *prefix, const m8_route *route, char *err,
                              size_t errlen);
/* Matches req->method + req->path (decoded); first match in registration
 * order wins; methods match exactly, no implicit HEAD.  On OK sets *entry and
 * fills req->path_params (arena).  On M8_MATCH_METHOD writes the Allow header
 * value to allow: the methods of every route matching the path, in
 * registration order, deduplicated ("GET, POST").  M8_MATCH_REDIRECT
 * (Starlette's redirect_slashes): no route matches the path with any method,
 * the path is not "/", but the path with its trailing '/' added or removed
 * does; allow then holds that (decoded) path - quote it with
 * m8_redirect_quote() for the Location.  allow is reset first. */
M8_INTERNAL m8_match_result m8_router_match(const m8_router *r, m8_request *req,
                                            const m8_route_entry **entry, m8_buf *allow);

#endif
