/* router.c - route table and matching (router.h).  Pure. */
#include "http/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_methods[] = {"GET",    "POST", "PUT",    "PATCH",
                                            "DELETE", "HEAD", "OPTIONS"};

void m8_router_init(m8_router *r)
{
    r->routes = NULL;
    r->n = 0;
}

static void entry_free(m8_route_entry *e)
{
    free(e->method);
    free(e->template);
    m8_strv_free(e->segments, e->n_segments);
    m8_strv_free(e->capture_names, e->n_captures);
    memset(e, 0, sizeof *e);
}

void m8_router_free(m8_router *r)
{
    for (size_t i = 0; i < r->n; i++)
        entry_free(&r->routes[i]);
    free(r->routes);
    r->routes = NULL;
    r->n = 0;
}

static bool is_capture(const char *seg)
{
    return seg[0] == '{';
}

static bool name_char(char c, bool first)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

/* A segment is a literal without braces, or exactly "{name}". */
static bool segment_ok(const char *seg, size_t len)
{
    if (!memchr(seg, '{', len) && !memchr(seg, '}', len))
        return true;
    if (len < 3 || seg[0] != '{' || seg[len - 1] != '}')
        return false;
    for (size_t i = 1; i < len - 1; i++) {
        if (!name_char(seg[i], i == 1))
            return false;
    }
    return true;
}

/* Splits template (starting with '/') into e->segments / capture_names. */
static int split_template(m8_route_entry *e, char *err, size_t errlen)
{
    const char *t = e->template + 1;
    size_t n = 1;
    for (const char *p = t; *p; p++)
        n += *p == '/';
    e->segments = calloc(n, sizeof *e->segments);
    e->capture_names = calloc(n, sizeof *e->capture_names);
    if (!e->segments || !e->capture_names)
        return M8_ENOMEM;
    const char *p = t;
    for (size_t i = 0; i < n; i++) {
        size_t len = strcspn(p, "/");
        if (!segment_ok(p, len)) {
            snprintf(err, errlen, "route %s %s: malformed segment \"%.*s\" (use \"{name}\")",
                     e->method, e->template, (int)len, p);
            return M8_ECONFIG;
        }
        if (!(e->segments[i] = strndup(p, len)))
            return M8_ENOMEM;
        e->n_segments = i + 1;
        if (is_capture(e->segments[i])) {
            if (e->n_captures >= M8_MAX_PATH_PARAMS) {
                snprintf(err, errlen, "route %s %s: more than %u path parameters", e->method,
                         e->template, M8_MAX_PATH_PARAMS);
                return M8_ECONFIG;
            }
            for (size_t k = 0; k < e->n_captures; k++) {
                if (strlen(e->capture_names[k]) == len - 2 &&
                    memcmp(e->capture_names[k], p + 1, len - 2) == 0) {
                    snprintf(err, errlen, "route %s %s: duplicate path parameter \"%.*s\"",
                             e->method, e->template, (int)len, p);
                    return M8_ECONFIG;
                }
            }
            if (!(e->capture_names[e->n_captures] = strndup(p + 1, len - 2)))
                return M8_ENOMEM;
            e->n_captures++;
        }
        p += len + (p[len] == '/');
    }
    e->trailing_slash = e->template[strlen(e->template) - 1] == '/';
    return 0;
}

/* Same method and same template up to capture names. */
static bool same_shape(const m8_route_entry *a, const m8_route_entry *b)
{
    if (strcmp(a->method, b->method) != 0 || a->n_segments != b->n_segments)
        return false;
    for (size_t i = 0; i < a->n_segments; i++) {
        bool ca = is_capture(a->segments[i]), cb = is_capture(b->segments[i]);
        if (ca != cb || (!ca && strcmp(a->segments[i], b->segments[i]) != 0))
            return false;
    }
    return true;
}

int m8_router_add(m8_router *r, const char *prefix, const m8_route *route, char *err, size_t errlen)
{
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!route) {
        snprintf(err, errlen, "route table entry is NULL");
        return M8_ECONFIG;
    }
    const char *method = route->method ? route->method : "";
    const char *path = route->path ? route->path : "";
    bool method_ok = false;
    for (size_t i = 0; i < M8_ARRAY_LEN(known_methods); i++)
        method_ok |= strcmp(method, known_methods[i]) == 0;
    if (!method_ok) {
        snprintf(err, errlen,
                 "route %s %s: unknown method \"%s\" (GET, POST, PUT, PATCH, "
                 "DELETE, HEAD, OPTIONS)",
                 *method ? method : "(none)", path, method);
        return M8_ECONFIG;
    }
    if (!*path) {
        snprintf(err, errlen, "route %s: empty path", method);
        return M8_ECONFIG;
    }
    if (path[0] != '/') {
        snprintf(err, errlen, "route %s %s: path must start with '/'", method, path);
        return M8_ECONFIG;
    }
    const char *pfx = (route->flags & M8_ROUTE_ABSOLUTE) || !prefix ? "" : prefix;
    if (*pfx && (pfx[0] != '/' || pfx[strlen(pfx) - 1] == '/')) {
        snprintf(err, errlen,
                 "route %s %s: prefix \"%s\" must start with '/' and not end "
                 "with '/'",
                 method, path, pfx);
        return M8_ECONFIG;
    }
    size_t tlen = strlen(pfx) + strlen(path);
    char *tmpl = malloc(tlen + 1);
    if (!tmpl)
        return M8_ENOMEM;
    snprintf(tmpl, tlen + 1, "%s%s", pfx, path);
    if (route->access == M8_ACCESS_UNSET) {
        snprintf(err, errlen, "route %s %s declares no access", method, tmpl);
        free(tmpl);
        return M8_ECONFIG;
    }
    if (route->access < M8_PUBLIC || route->access > M8_API_KEY_WRITER) {
        snprintf(err, errlen, "route %s %s: invalid access value %d", method, tmpl,
                 (int)route->access);
        free(tmpl);
        return M8_ECONFIG;
    }
    if (!route->handler) {
        snprintf(err, errlen, "route %s %s has no handler", method, tmpl);
        free(tmpl);
        return M8_ECONFIG;
    }

    m8_route_entry e;
    memset(&e, 0, sizeof e);
    e.template = tmpl;
    e.method = strdup(method);
    if (!e.method) {
        entry_free(&e);
        return M8_ENOMEM;
    }
    int rc = split_template(&e, err, errlen);
    if (rc) {
        entry_free(&e);
        return rc;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (same_shape(&r->routes[i], &e)) {
            if (strcmp(r->routes[i].template, e.template) == 0)
                snprintf(err, errlen, "duplicate route %s %s", method, e.template);
            else
                snprintf(err, errlen, "duplicate route %s %s (same as %s)", method, e.template,
                         r->routes[i].template);
            entry_free(&e);
            return M8_ECONFIG;
        }
    }
    e.access = route->access;
    e.handler = route->handler;
    e.data = route->data;
    e.summary = route->summary;
    e.tag = route->tag;
    e.flags = route->flags;
    m8_route_entry *grown = realloc(r->routes, (r->n + 1) * sizeof *grown);
    if (!grown) {
        entry_free(&e);
        return M8_ENOMEM;
    }
    r->routes = grown;
    r->routes[r->n++] = e;
    return 0;
}

/* Matches path (starting with '/') against e; fills caps when given. */
static bool path_matches(const m8_route_entry *e, const char *path, m8_str *caps)
{
    const char *p = path + 1;
    size_t k = 0;
    for (size_t i = 0; i < e->n_segments; i++) {
        size_t len = strcspn(p, "/");
        const char *seg = e->segments[i];
        if (is_capture(seg)) {
            if (len == 0)
                return false;
            if (caps) {
                caps[k].p = p;
                caps[k].n = len;
            }
            k++;
        } else if (strncmp(seg, p, len) != 0 || seg[len] != '\0') {
            return false;
        }
        if (i + 1 < e->n_segments) {
            if (p[len] != '/')
                return false;
            p += len + 1;
        } else if (p[len] != '\0') {
            return false;
        }
    }
    return true;
}

static bool any_route_matches(const m8_router *r, const char *path)
{
    for (size_t i = 0; i < r->n; i++) {
        if (path_matches(&r->routes[i], path, NULL))
            return true;
    }
    return false;
}

m8_match_result m8_router_match(const m8_router *r, m8_request *req, const m8_route_entry **entry,
                                m8_buf *allow)
{
    *entry = NULL;
    if (allow)
        m8_buf_reset(allow);
    const char *path = req->path, *method = req->method ? req->method : "";
    if (!path || path[0] != '/')
        return M8_MATCH_NOT_FOUND;

    const char *seen[M8_ARRAY_LEN(known_methods)];
    size_t n_seen = 0;
    for (size_t i = 0; i < r->n; i++) {
        const m8_route_entry *e = &r->routes[i];
        m8_str caps[M8_MAX_PATH_PARAMS];
        if (!path_matches(e, path, caps))
            continue;
        if (strcmp(e->method, method) == 0) {
            m8_pair *pp = NULL;
            if (e->n_captures) {
                pp = m8_arena_alloc(&req->arena, e->n_captures * sizeof *pp);
                if (!pp)
                    return M8_MATCH_NOT_FOUND;
                for (size_t k = 0; k < e->n_captures; k++) {
                    pp[k].name = e->capture_names[k];
                    pp[k].value = m8_arena_strndup(&req->arena, caps[k].p, caps[k].n);
                    if (!pp[k].value)
                        return M8_MATCH_NOT_FOUND;
                }
            }
            req->path_params = pp;
            req->n_path_params = e->n_captures;
            *entry = e;
            return M8_MATCH_OK;
        }
        bool dup = false;
        for (size_t k = 0; k < n_seen; k++)
            dup |= strcmp(seen[k], e->method) == 0;
        if (!dup && n_seen < M8_ARRAY_LEN(seen))
            seen[n_seen++] = e->method;
    }
    if (n_seen) {
        for (size_t k = 0; allow && k < n_seen; k++) {
            if (k)
                m8_buf_puts(allow, ", ");
            m8_buf_puts(allow, seen[k]);
        }
        return M8_MATCH_METHOD;
    }

    /* redirect_slashes: toggle the trailing '/' of anything but "/" */
    size_t len = strlen(path);
    if (len <= 1 || !allow)
        return M8_MATCH_NOT_FOUND;
    bool has_slash = path[len - 1] == '/';
    if (m8_buf_append(allow, path, has_slash ? len - 1 : len) != 0 ||
        (!has_slash && m8_buf_putc(allow, '/') != 0)) {
        m8_buf_reset(allow);
        return M8_MATCH_NOT_FOUND;
    }
    if (any_route_matches(r, allow->data))
        return M8_MATCH_REDIRECT;
    m8_buf_reset(allow);
    return M8_MATCH_NOT_FOUND;
}
