/* route_scope.c - the API-key scopes routes require (fcgim8(3),
 * m8_app_require_scope; doc/issuer.md#api-key-scopes-and-format): declared
 * before boot, checked and attached to the routes at boot. */
#include "app/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/apikey_format.h"

/* One declaration. */
struct m8_route_scope {
    char *method, *path, *scope;
    bool used;
};

int m8_app_require_scope(m8_app *app, const char *method, const char *path, const char *scope)
{
    if (!app || !method || !path || !scope)
        return M8_EINVAL;
    if (app->booted)
        return M8_ESTATE;
    if (!m8_apikey_scope_valid(scope, strlen(scope)))
        return M8_EINVAL;
    if (app->n_scopes >= M8_APP_MAX_ROUTE_SCOPES)
        return M8_ETOOBIG;
    for (size_t i = 0; i < app->n_scopes; i++) {
        if (strcmp(app->scopes[i].method, method) == 0 && strcmp(app->scopes[i].path, path) == 0)
            return M8_EINVAL; /* one scope a route */
    }
    struct m8_route_scope *g = realloc(app->scopes, (app->n_scopes + 1) * sizeof *g);
    if (!g)
        return M8_ENOMEM;
    app->scopes = g;
    struct m8_route_scope *d = &g[app->n_scopes];
    d->method = strdup(method);
    d->path = strdup(path);
    d->scope = strdup(scope);
    d->used = false;
    if (!d->method || !d->path || !d->scope) {
        free(d->method);
        free(d->path);
        free(d->scope);
        return M8_ENOMEM;
    }
    app->n_scopes++;
    return 0;
}

int m8__app_route_scope(m8_app *app, const m8_route *r, const char **scope, char *err,
                        size_t errlen)
{
    *scope = NULL;
    for (size_t i = 0; i < app->n_scopes; i++) {
        struct m8_route_scope *d = &app->scopes[i];
        if (!r->method || !r->path || strcmp(d->method, r->method) != 0 ||
            strcmp(d->path, r->path) != 0)
            continue;
        bool by_key = r->access == M8_API_KEY_READER || r->access == M8_API_KEY_WRITER ||
                      (r->access != M8_PUBLIC && (r->flags & M8_ROUTE_CRED_API_KEY));
        if (!by_key) {
            snprintf(err, errlen,
                     "route %s %s requires the API-key scope %s but takes no X-API-Key "
                     "(M8_API_KEY_READER/WRITER or M8_ROUTE_CRED_API_KEY)",
                     r->method, r->path, d->scope);
            return M8_ECONFIG;
        }
        d->used = true;
        *scope = d->scope;
    }
    return 0;
}

int m8__app_route_scopes_unused(const m8_app *app, char *err, size_t errlen)
{
    for (size_t i = 0; i < app->n_scopes; i++) {
        if (!app->scopes[i].used) {
            snprintf(err, errlen,
                     "m8_app_require_scope(%s, %s, %s): no route of the tables has this method "
                     "and path",
                     app->scopes[i].method, app->scopes[i].path, app->scopes[i].scope);
            return M8_ECONFIG;
        }
    }
    return 0;
}

void m8__app_route_scopes_free(m8_app *app)
{
    for (size_t i = 0; i < app->n_scopes; i++) {
        free(app->scopes[i].method);
        free(app->scopes[i].path);
        free(app->scopes[i].scope);
    }
    free(app->scopes);
    app->scopes = NULL;
    app->n_scopes = 0;
}
