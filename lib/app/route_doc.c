/* route_doc.c - the query parameters and form fields routes declare for the
 * OpenAPI document (fcgim8(3), m8_app_describe_route; doc/responses.md#docs):
 * validated and copied when declared, attached to the routes at boot. */
#include "app/app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_BYTES 64u
#define DESCRIPTION_MAX_BYTES 512u
#define DEFAULT_MAX_BYTES 128u

/* strlen that stops counting past max: a huge string costs at most
 * max + 1 reads before it is refused. */
static size_t len_upto(const char *s, size_t max)
{
    size_t n = 0;
    while (n <= max && s[n])
        n++;
    return n;
}

static bool name_valid(const char *s)
{
    size_t n = len_upto(s, NAME_MAX_BYTES);
    if (n == 0 || n > NAME_MAX_BYTES)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool other = (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!alpha && (i == 0 || !other))
            return false;
    }
    return true;
}

/* Text for the document: valid UTF-8 (shortest forms, no surrogates), no
 * control character (C0, DEL or C1), at most max bytes. */
static bool text_valid(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = len_upto(s, max);
    if (n > max)
        return false;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                     : c >= 0xe0 && c <= 0xef ? 3
                     : c >= 0xf0 && c <= 0xf4 ? 4
                                              : 0;
        if (len == 0 || i + len > n)
            return false;
        unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
        else if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return false;
        if (c == 0xc2 && p[i + 1] < 0xa0)
            return false; /* U+0080-U+009F, the C1 control characters */
        for (size_t k = 2; k < len; k++) {
            if (p[i + k] < 0x80 || p[i + k] > 0xbf)
                return false;
        }
        i += len;
    }
    return true;
}

/* A default must read as its type: a decimal int64, true or false, or text. */
static bool default_valid(const char *v, m8_param_type type)
{
    if (!text_valid(v, DEFAULT_MAX_BYTES))
        return false;
    if (type == M8_PARAM_BOOLEAN)
        return strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
    if (type == M8_PARAM_INTEGER) {
        char *end;
        errno = 0;
        (void)strtoll(v, &end, 10);
        return *v && *end == '\0' && errno == 0 && *v != ' ' && *v != '+';
    }
    return type == M8_PARAM_STRING;
}

static bool param_valid(const m8_route_param *p, const char *method)
{
    if (!p->name || !name_valid(p->name))
        return false;
    if (p->in != M8_PARAM_IN_QUERY && p->in != M8_PARAM_IN_FORM)
        return false;
    if (p->type < M8_PARAM_STRING || p->type > M8_PARAM_PASSWORD)
        return false;
    if (p->description && !text_valid(p->description, DESCRIPTION_MAX_BYTES))
        return false;
    if (p->default_value &&
        (p->required || p->type == M8_PARAM_PASSWORD || !default_valid(p->default_value, p->type)))
        return false;
    /* a form is a request body: not on the methods that carry none */
    if (p->in == M8_PARAM_IN_FORM && (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0 ||
                                      strcmp(method, "OPTIONS") == 0))
        return false;
    return true;
}

static void doc_clear(m8_route_doc *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->params[i].name);
        free(d->params[i].description);
        free(d->params[i].default_value);
    }
    free(d->params);
    free(d->method);
    free(d->path);
    memset(d, 0, sizeof *d);
}

static char *dup_opt(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

int m8_app_describe_route(m8_app *app, const char *method, const char *path,
                          const m8_route_param *params, size_t n)
{
    if (!app || !method || !path || !params || n == 0)
        return M8_EINVAL;
    if (app->booted)
        return M8_ESTATE;
    if (n > M8_APP_MAX_ROUTE_PARAMS)
        return M8_ETOOBIG;
    for (size_t i = 0; i < n; i++) {
        if (!param_valid(&params[i], method))
            return M8_EINVAL;
        for (size_t k = 0; k < i; k++) { /* one name a place */
            if (params[k].in == params[i].in && strcmp(params[k].name, params[i].name) == 0)
                return M8_EINVAL;
        }
    }
    for (size_t i = 0; i < app->n_route_docs; i++) {
        if (strcmp(app->route_docs[i].method, method) == 0 &&
            strcmp(app->route_docs[i].path, path) == 0)
            return M8_EINVAL; /* one description a route */
    }
    if (app->n_route_docs >= M8_APP_MAX_ROUTE_DOCS)
        return M8_ETOOBIG;
    m8_route_doc *g = realloc(app->route_docs, (app->n_route_docs + 1) * sizeof *g);
    if (!g)
        return M8_ENOMEM;
    app->route_docs = g;
    m8_route_doc *d = &g[app->n_route_docs];
    memset(d, 0, sizeof *d);
    bool failed = false;
    d->method = dup_opt(method, &failed);
    d->path = dup_opt(path, &failed);
    d->params = calloc(n, sizeof *d->params);
    if (d->params)
        d->n = n; /* zeroed: doc_clear frees what was copied so far */
    failed |= d->params == NULL;
    for (size_t i = 0; !failed && i < n; i++) {
        m8_doc_param *q = &d->params[i];
        q->name = dup_opt(params[i].name, &failed);
        q->description = dup_opt(params[i].description, &failed);
        q->default_value = dup_opt(params[i].default_value, &failed);
        q->in = params[i].in;
        q->type = params[i].type;
        q->required = params[i].required != 0;
    }
    if (failed) {
        doc_clear(d);
        return M8_ENOMEM;
    }
    app->n_route_docs++;
    return 0;
}

int m8__app_route_doc(m8_app *app, const m8_route *r, const m8_route_doc **doc, char *err,
                      size_t errlen)
{
    *doc = NULL;
    for (size_t i = 0; i < app->n_route_docs; i++) {
        m8_route_doc *d = &app->route_docs[i];
        if (!r->method || !r->path || strcmp(d->method, r->method) != 0 ||
            strcmp(d->path, r->path) != 0)
            continue;
        for (size_t k = 0; (r->flags & M8_ROUTE_JSON_BODY) && k < d->n; k++) {
            if (d->params[k].in == M8_PARAM_IN_FORM) {
                snprintf(err, errlen,
                         "route %s %s takes a JSON body (M8_ROUTE_JSON_BODY) but "
                         "m8_app_describe_route gives it the form field %s",
                         r->method, r->path, d->params[k].name);
                return M8_ECONFIG;
            }
        }
        d->used = true;
        *doc = d;
    }
    return 0;
}

int m8__app_route_docs_unused(const m8_app *app, char *err, size_t errlen)
{
    for (size_t i = 0; i < app->n_route_docs; i++) {
        if (!app->route_docs[i].used) {
            snprintf(err, errlen,
                     "m8_app_describe_route(%s, %s): no route of the tables has this method "
                     "and path",
                     app->route_docs[i].method, app->route_docs[i].path);
            return M8_ECONFIG;
        }
    }
    return 0;
}

void m8__app_route_docs_free(m8_app *app)
{
    for (size_t i = 0; i < app->n_route_docs; i++)
        doc_clear(&app->route_docs[i]);
    free(app->route_docs);
    app->route_docs = NULL;
    app->n_route_docs = 0;
}
