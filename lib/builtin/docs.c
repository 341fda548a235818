/* docs.c - the OpenAPI 3.1 document built from the route table, and the
 * Swagger UI / ReDoc pages (doc/responses.md#docs), all rendered once at
 * boot.  The pages are FastAPI's get_swagger_ui_html / get_redoc_html: CDN
 * assets pointing at {API_PREFIX}/openapi.json. */
#include "builtin/docs.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FastAPI's validation-error schemas, referenced by every 422 response. */
static const char validation_schemas[] =
    "{\"HTTPValidationError\":{\"properties\":{\"detail\":{\"items\":{\"$ref\":"
    "\"#/components/schemas/ValidationError\"},\"type\":\"array\",\"title\":\"Detail\"}},"
    "\"type\":\"object\",\"title\":\"HTTPValidationError\"},"
    "\"ValidationError\":{\"properties\":{\"loc\":{\"items\":{\"anyOf\":[{\"type\":\"string\"},"
    "{\"type\":\"integer\"}]},\"type\":\"array\",\"title\":\"Location\"},\"msg\":{\"type\":"
    "\"string\",\"title\":\"Message\"},\"type\":{\"type\":\"string\",\"title\":\"Error Type\"}},"
    "\"type\":\"object\",\"required\":[\"loc\",\"msg\",\"type\"],\"title\":\"ValidationError\"}}";

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* Adds key -> val to obj; val is consumed either way.  Returns false on
 * allocation failure. */
static bool add(json_object *obj, const char *key, json_object *val)
{
    if (!val)
        return false;
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return false;
    }
    return true;
}

static bool push(json_object *arr, json_object *val)
{
    if (!val)
        return false;
    if (json_object_array_add(arr, val) != 0) {
        json_object_put(val);
        return false;
    }
    return true;
}

/* "<tag or default>-<method lower>_<template, non-alnum as _>", made unique
 * against used (a set of the ids so far) with a "_2", "_3"... suffix. */
static int operation_id(const m8_route_entry *e, json_object *used, m8_buf *out)
{
    m8_buf_reset(out);
    int rc = m8_buf_printf(out, "%s-", nonempty(e->tag) ? e->tag : "default");
    for (const char *p = e->method; !rc && *p; p++)
        rc = m8_buf_putc(out, (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p);
    if (!rc)
        rc = m8_buf_putc(out, '_');
    for (const char *p = e->template; !rc && *p; p++) {
        char c = *p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        rc = m8_buf_putc(out, alnum ? c : '_');
    }
    if (rc)
        return rc;
    size_t base = out->len;
    for (unsigned k = 2; json_object_object_get_ex(used, out->data, NULL); k++) {
        out->len = base;
        if ((rc = m8_buf_printf(out, "_%u", k)) != 0)
            return rc;
    }
    return add(used, out->data, json_object_new_boolean(1)) ? 0 : M8_ENOMEM;
}

/* {"name":name,"in":"path","required":true,"schema":{"type":"string"}} */
static json_object *path_param(const char *name, size_t n)
{
    json_object *prm = json_object_new_object();
    json_object *schema = json_object_new_object();
    if (!prm || !schema || !add(schema, "type", json_object_new_string("string")) ||
        !add(prm, "name", json_object_new_string_len(name, (int)n)) ||
        !add(prm, "in", json_object_new_string("path")) ||
        !add(prm, "required", json_object_new_boolean(1))) {
        json_object_put(schema);
        json_object_put(prm);
        return NULL;
    }
    if (!add(prm, "schema", schema)) {
        json_object_put(prm);
        return NULL;
    }
    return prm;
}

/* The {name} captures of a template as OpenAPI path parameters. */
static json_object *path_parameters(const char *tpl)
{
    json_object *params = json_object_new_array();
    if (!params)
        return NULL;
    const char *p = tpl;
    while (*p) {
        while (*p == '/')
            p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n >= 2 && p[0] == '{' && p[n - 1] == '}' && !push(params, path_param(p + 1, n - 2))) {
            json_object_put(params);
            return NULL;
        }
        p += n;
    }
    return params;
}

/* {"description":d,"content":{"application/json":{"schema":schema}}} */
static json_object *json_response(const char *description, json_object *schema)
{
    json_object *r = json_object_new_object(), *content = json_object_new_object(),
                *media = json_object_new_object();
    if (!r || !content || !media || !schema) {
        json_object_put(r);
        json_object_put(content);
        json_object_put(media);
        json_object_put(schema);
        return NULL;
    }
    if (!add(media, "schema", schema)) {
        json_object_put(media);
        media = NULL;
    }
    if (!media || !add(content, "application/json", media)) {
        json_object_put(content);
        content = NULL;
    }
    if (!content || !add(r, "description", json_object_new_string(description))) {
        json_object_put(content);
        json_object_put(r);
        return NULL;
    }
    if (!add(r, "content", content)) {
        json_object_put(r);
        return NULL;
    }
    return r;
}

static json_object *ref_schema(const char *ref)
{
    json_object *o = json_object_new_object();
    if (o && !add(o, "$ref", json_object_new_string(ref))) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static json_object *request_body(void)
{
    json_object *schema = json_object_new_object();
    if (!schema || !add(schema, "type", json_object_new_string("object")) ||
        !add(schema, "additionalProperties", json_object_new_boolean(1))) {
        json_object_put(schema);
        return NULL;
    }
    json_object *rb = json_response("", schema);
    if (!rb)
        return NULL;
    json_object_object_del(rb, "description");
    if (!add(rb, "required", json_object_new_boolean(1))) {
        json_object_put(rb);
        return NULL;
    }
    return rb;
}

/* ---- described query parameters and form fields (m8_app_describe_route) */

static const char *type_name(m8_param_type t)
{
    return t == M8_PARAM_INTEGER ? "integer" : t == M8_PARAM_BOOLEAN ? "boolean" : "string";
}

/* {"type":t[,"format":"password"][,"default":v][,"description":d]}; the
 * default was checked against the type when it was declared. */
static json_object *param_schema(const m8_doc_param *p, bool with_description)
{
    json_object *s = json_object_new_object();
    bool ok = s && add(s, "type", json_object_new_string(type_name(p->type)));
    if (ok && p->type == M8_PARAM_PASSWORD)
        ok = add(s, "format", json_object_new_string("password"));
    if (ok && p->default_value) {
        json_object *v = p->type == M8_PARAM_INTEGER
                             ? json_object_new_int64(strtoll(p->default_value, NULL, 10))
                         : p->type == M8_PARAM_BOOLEAN
                             ? json_object_new_boolean(strcmp(p->default_value, "true") == 0)
                             : json_object_new_string(p->default_value);
        ok = add(s, "default", v);
    }
    if (ok && with_description && p->description)
        ok = add(s, "description", json_object_new_string(p->description));
    if (!ok) {
        json_object_put(s);
        return NULL;
    }
    return s;
}

/* {"name":n,"in":"query","required":r,"schema":{...}[,"description":d]} */
static json_object *query_param(const m8_doc_param *p)
{
    json_object *prm = json_object_new_object();
    bool ok = prm && add(prm, "name", json_object_new_string(p->name)) &&
              add(prm, "in", json_object_new_string("query")) &&
              add(prm, "required", json_object_new_boolean(p->required)) &&
              add(prm, "schema", param_schema(p, false)) &&
              (!p->description || add(prm, "description", json_object_new_string(p->description)));
    if (!ok) {
        json_object_put(prm);
        return NULL;
    }
    return prm;
}

static bool has_form(const m8_route_doc *doc)
{
    for (size_t k = 0; doc && k < doc->n; k++) {
        if (doc->params[k].in == M8_PARAM_IN_FORM)
            return true;
    }
    return false;
}

/* {"content":{"application/x-www-form-urlencoded":{"schema":{"type":"object",
 * "properties":{...}[,"required":[...]]}}},"required":any field required} */
static json_object *form_body(const m8_route_doc *doc)
{
    json_object *schema = json_object_new_object(), *props = json_object_new_object(),
                *req = json_object_new_array();
    bool ok = schema && props && req && add(schema, "type", json_object_new_string("object"));
    for (size_t k = 0; ok && k < doc->n; k++) {
        const m8_doc_param *p = &doc->params[k];
        if (p->in != M8_PARAM_IN_FORM)
            continue;
        ok = add(props, p->name, param_schema(p, true)) &&
             (!p->required || push(req, json_object_new_string(p->name)));
    }
    bool any_required = ok && json_object_array_length(req) > 0;
    if (ok) {
        ok = add(schema, "properties", props);
        props = NULL;
    }
    if (ok && any_required) {
        ok = add(schema, "required", req);
        req = NULL;
    }
    json_object_put(props);
    json_object_put(req);
    json_object *media = ok ? json_object_new_object() : NULL;
    if (media) {
        bool m = add(media, "schema", schema); /* schema consumed either way */
        schema = NULL;
        if (!m) {
            json_object_put(media);
            media = NULL;
        }
    }
    json_object_put(schema);
    json_object *content = media ? json_object_new_object() : NULL;
    if (content && !add(content, "application/x-www-form-urlencoded", media)) {
        json_object_put(content);
        content = NULL;
    } else if (!content) {
        json_object_put(media);
    }
    json_object *rb = content ? json_object_new_object() : NULL;
    if (!rb || !add(rb, "content", content) ||
        !add(rb, "required", json_object_new_boolean(any_required))) {
        if (!rb)
            json_object_put(content);
        json_object_put(rb);
        return NULL;
    }
    return rb;
}

static json_object *operation(const m8_route_entry *e, json_object *used, m8_buf *id)
{
    json_object *op = json_object_new_object();
    if (!op)
        return NULL;
    bool ok = true;
    if (nonempty(e->tag)) {
        json_object *tags = json_object_new_array();
        if (!tags || !push(tags, json_object_new_string(e->tag))) {
            json_object_put(tags);
            ok = false;
        } else {
            ok = add(op, "tags", tags);
        }
    }
    if (ok && nonempty(e->summary)) {
        ok = add(op, "summary", json_object_new_string(e->summary));
    } else if (ok) {
        m8_buf sb;
        m8_buf_init(&sb, M8_MAX_PATH_BYTES + 16);
        ok = m8_buf_printf(&sb, "%s %s", e->method, e->template) == 0 &&
             add(op, "summary", json_object_new_string(sb.data));
        m8_buf_free(&sb);
    }
    ok = ok && operation_id(e, used, id) == 0 &&
         add(op, "operationId", json_object_new_string(id->data));
    if (ok) {
        json_object *params = path_parameters(e->template);
        for (size_t k = 0; params && e->doc && k < e->doc->n; k++) {
            if (e->doc->params[k].in == M8_PARAM_IN_QUERY &&
                !push(params, query_param(&e->doc->params[k]))) {
                json_object_put(params);
                params = NULL;
            }
        }
        if (!params)
            ok = false;
        else if (json_object_array_length(params) > 0)
            ok = add(op, "parameters", params);
        else
            json_object_put(params);
    }
    bool json_body = (e->flags & M8_ROUTE_JSON_BODY) != 0;
    if (ok && json_body)
        ok = add(op, "requestBody", request_body());
    else if (ok && has_form(e->doc))
        ok = add(op, "requestBody", form_body(e->doc));
    json_object *responses = ok ? json_object_new_object() : NULL;
    if (ok) {
        ok =
            responses &&
            add(responses, "200", json_response("Successful Response", json_object_new_object())) &&
            ((!json_body && !e->doc) ||
             add(responses, "422",
                 json_response("Validation Error",
                               ref_schema("#/components/schemas/HTTPValidationError"))));
        if (ok)
            ok = add(op, "responses", responses);
        else
            json_object_put(responses);
    }
    if (ok && e->access != M8_PUBLIC) {
        json_object *sec = json_object_new_array(), *req = json_object_new_object();
        bool apikey = e->access == M8_API_KEY_READER || e->access == M8_API_KEY_WRITER;
        bool sok =
            sec && req &&
            add(req, apikey ? "APIKeyHeader" : "OAuth2PasswordBearer", json_object_new_array());
        if (sok) {
            sok = push(sec, req);
            req = NULL;
        }
        json_object_put(req);
        if (sok) {
            ok = add(op, "security", sec);
        } else {
            json_object_put(sec);
            ok = false;
        }
    }
    if (!ok) {
        json_object_put(op);
        return NULL;
    }
    return op;
}

static json_object *security_schemes(const char *auth_prefix, bool with_apikey)
{
    m8_buf url;
    m8_buf_init(&url, M8_MAX_PATH_BYTES);
    if (m8_buf_printf(&url, "%s/login/access-token", auth_prefix) != 0) {
        m8_buf_free(&url);
        return NULL;
    }
    json_object *schemes = json_object_new_object(), *bearer = json_object_new_object(),
                *flows = json_object_new_object(), *password = json_object_new_object();
    bool ok = schemes && bearer && flows && password &&
              add(password, "scopes", json_object_new_object()) &&
              add(password, "tokenUrl", json_object_new_string(url.data));
    m8_buf_free(&url);
    if (ok) {
        ok = add(flows, "password", password);
        password = NULL;
    }
    if (ok) {
        ok = add(bearer, "type", json_object_new_string("oauth2")) && add(bearer, "flows", flows);
        flows = NULL;
    }
    if (ok) {
        ok = add(schemes, "OAuth2PasswordBearer", bearer);
        bearer = NULL;
    }
    if (ok && with_apikey) { /* routes that take an X-API-Key */
        json_object *key = json_object_new_object();
        bool kok = key && add(key, "type", json_object_new_string("apiKey")) &&
                   add(key, "in", json_object_new_string("header")) &&
                   add(key, "name", json_object_new_string("X-API-Key"));
        if (!kok)
            json_object_put(key);
        ok = kok && add(schemes, "APIKeyHeader", key);
    }
    json_object_put(password);
    json_object_put(flows);
    json_object_put(bearer);
    if (!ok) {
        json_object_put(schemes);
        return NULL;
    }
    return schemes;
}

static json_object *build_document(const m8_settings *s, const m8_router *r, const char *title,
                                   const char *version)
{
    json_object *doc = json_object_new_object(), *info = json_object_new_object(),
                *paths = json_object_new_object(), *used = json_object_new_object();
    m8_buf id;
    m8_buf_init(&id, M8_MAX_PATH_BYTES * 2 + 256);
    bool ok = doc && info && paths && used &&
              add(doc, "openapi", json_object_new_string("3.1.0")) &&
              add(info, "title", json_object_new_string(title)) &&
              add(info, "version", json_object_new_string(version));
    if (ok) {
        ok = add(doc, "info", info);
        info = NULL;
    }
    bool any_body = false, any_protected = false, any_apikey = false;
    for (size_t i = 0; ok && i < r->n; i++) {
        const m8_route_entry *e = &r->routes[i];
        if (e->flags & M8_ROUTE_HIDDEN)
            continue;
        json_object *item = NULL;
        if (!json_object_object_get_ex(paths, e->template, &item)) {
            item = json_object_new_object();
            if (!add(paths, e->template, item)) {
                ok = false;
                break;
            }
        }
        char method[16];
        size_t ml = strlen(e->method);
        if (ml >= sizeof method) {
            ok = false;
            break;
        }
        for (size_t k = 0; k <= ml; k++) {
            char c = e->method[k];
            method[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        ok = add(item, method, operation(e, used, &id));
        any_body |= (e->flags & M8_ROUTE_JSON_BODY) != 0 || e->doc != NULL; /* 422 */
        any_protected |= e->access != M8_PUBLIC;
        any_apikey |= e->access == M8_API_KEY_READER || e->access == M8_API_KEY_WRITER;
    }
    if (ok) {
        ok = add(doc, "paths", paths);
        paths = NULL;
    }
    if (ok && (any_body || any_protected)) {
        json_object *components = json_object_new_object();
        ok = components != NULL;
        if (ok && any_body)
            ok = add(components, "schemas", json_tokener_parse(validation_schemas));
        if (ok && any_protected) {
            const char *auth = nonempty(s->auth_prefix) ? s->auth_prefix : "/auth";
            ok = add(components, "securitySchemes", security_schemes(auth, any_apikey));
        }
        if (ok)
            ok = add(doc, "components", components);
        else
            json_object_put(components);
    }
    m8_buf_free(&id);
    json_object_put(info);
    json_object_put(paths);
    json_object_put(used);
    if (!ok) {
        json_object_put(doc);
        return NULL;
    }
    return doc;
}

/* Escapes text for an HTML text node or attribute value. */
static int html_escape(m8_buf *b, const char *s)
{
    int rc = 0;
    for (; !rc && *s; s++) {
        switch (*s) {
        case '&': rc = m8_buf_puts(b, "&amp;"); break;
        case '<': rc = m8_buf_puts(b, "&lt;"); break;
        case '>': rc = m8_buf_puts(b, "&gt;"); break;
        case '"': rc = m8_buf_puts(b, "&quot;"); break;
        case '\'': rc = m8_buf_puts(b, "&#x27;"); break;
        default: rc = m8_buf_putc(b, *s); break;
        }
    }
    return rc;
}

/* A JavaScript string literal that is also safe inside <script>. */
static int js_string(m8_buf *b, const char *s)
{
    int rc = m8_buf_putc(b, '\'');
    for (; !rc && *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || strchr("/-_.~:", c) != NULL;
        rc = plain ? m8_buf_putc(b, (char)c) : m8_buf_printf(b, "\\u%04x", c);
    }
    if (!rc)
        rc = m8_buf_putc(b, '\'');
    return rc;
}

static int swagger_html(m8_buf *b, const char *title, const char *openapi_url)
{
    int rc =
        m8_buf_puts(b, "<!DOCTYPE html>\n<html>\n<head>\n"
                       "<link type=\"text/css\" rel=\"stylesheet\" "
                       "href=\"https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css\">\n"
                       "<link rel=\"shortcut icon\" "
                       "href=\"https://fastapi.tiangolo.com/img/favicon.png\">\n<title>");
    if (!rc)
        rc = html_escape(b, title);
    if (!rc)
        rc = m8_buf_puts(b,
                         " - Swagger UI</title>\n</head>\n<body>\n<div id=\"swagger-ui\">\n</div>\n"
                         "<script src=\"https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/"
                         "swagger-ui-bundle.js\"></script>\n"
                         "<!-- `SwaggerUIBundle` is now available on the page -->\n"
                         "<script>\nconst ui = SwaggerUIBundle({\n    url: ");
    if (!rc)
        rc = js_string(b, openapi_url);
    if (!rc)
        rc = m8_buf_puts(b, ",\n\"dom_id\": \"#swagger-ui\",\n\"layout\": \"BaseLayout\",\n"
                            "\"deepLinking\": true,\n\"showExtensions\": true,\n"
                            "\"showCommonExtensions\": true,\n"
                            "    presets: [\n        SwaggerUIBundle.presets.apis,\n"
                            "        SwaggerUIBundle.SwaggerUIStandalonePreset\n        ],\n"
                            "    })\n</script>\n</body>\n</html>\n");
    return rc;
}

static int redoc_html(m8_buf *b, const char *title, const char *openapi_url)
{
    int rc = m8_buf_puts(b, "<!DOCTYPE html>\n<html>\n<head>\n<title>");
    if (!rc)
        rc = html_escape(b, title);
    if (!rc)
        rc = m8_buf_puts(
            b, " - ReDoc</title>\n<!-- needed for adaptive design -->\n"
               "<meta charset=\"utf-8\"/>\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               "<link href=\"https://fonts.googleapis.com/css?family=Montserrat:300,400,700|"
               "Roboto:300,400,700\" rel=\"stylesheet\">\n"
               "<link rel=\"shortcut icon\" "
               "href=\"https://fastapi.tiangolo.com/img/favicon.png\">\n"
               "<!--\nReDoc doesn't change outer page styles\n-->\n"
               "<style>\n  body {\n    margin: 0;\n    padding: 0;\n  }\n</style>\n"
               "</head>\n<body>\n<noscript>\n    ReDoc requires Javascript to function. "
               "Please enable it to browse the documentation.\n</noscript>\n"
               "<redoc spec-url=\"");
    if (!rc)
        rc = html_escape(b, openapi_url);
    if (!rc)
        rc = m8_buf_puts(b, "\"></redoc>\n<script src=\"https://cdn.jsdelivr.net/npm/redoc@2/"
                            "bundles/redoc.standalone.js\"> </script>\n</body>\n</html>\n");
    return rc;
}

int m8_docs_init(m8_docs *d, const m8_settings *s, const m8_router *r, const char *service_name,
                 const char *service_version)
{
    memset(d, 0, sizeof *d);
    if (!s || !r)
        return M8_EINVAL;
    /* title = service_name or PROJECT_NAME, version likewise. */
    const char *title = nonempty(service_name) ? service_name : s->project_name;
    const char *version = nonempty(service_version) ? service_version : s->service_version;
    if (!nonempty(title) || !nonempty(version))
        return M8_ECONFIG;

    json_object *doc = build_document(s, r, title, version);
    if (!doc)
        return M8_ENOMEM;
    size_t len = 0;
    const char *txt = json_object_to_json_string_length(
        doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    d->openapi = txt ? strndup(txt, len) : NULL;
    d->openapi_len = len;
    json_object_put(doc);
    if (!d->openapi)
        return M8_ENOMEM;

    m8_buf url, page;
    m8_buf_init(&url, M8_MAX_PATH_BYTES);
    m8_buf_init(&page, M8_MAX_RESPONSE_BYTES);
    int rc = m8_buf_printf(&url, "%s/openapi.json", s->api_prefix ? s->api_prefix : "");
    if (!rc)
        rc = swagger_html(&page, title, url.data);
    if (!rc) {
        d->docs_len = page.len;
        d->docs_html = m8_buf_steal(&page);
        rc = redoc_html(&page, title, url.data);
    }
    if (!rc) {
        d->redoc_len = page.len;
        d->redoc_html = m8_buf_steal(&page);
    }
    m8_buf_free(&url);
    m8_buf_free(&page);
    if (rc)
        m8_docs_free(d);
    return rc;
}

void m8_docs_free(m8_docs *d)
{
    free(d->openapi);
    free(d->docs_html);
    free(d->redoc_html);
    memset(d, 0, sizeof *d);
}

static int serve(m8_request *req, const char *what, const char *ctype, const char *body, size_t len)
{
    if (!body)
        return m8_req_fail(req, "docs: %s not rendered", what);
    int rc = m8_res_body(req, 200, ctype, body, len);
    return rc ? m8_req_fail(req, "docs: %s: %s", what, m8_strerror(rc)) : 0;
}

int m8_docs_openapi_handle(const m8_docs *d, m8_request *req)
{
    return serve(req, "openapi", "application/json", d->openapi, d->openapi_len);
}

int m8_docs_swagger_handle(const m8_docs *d, m8_request *req)
{
    return serve(req, "docs", "text/html; charset=utf-8", d->docs_html, d->docs_len);
}

int m8_docs_redoc_handle(const m8_docs *d, m8_request *req)
{
    return serve(req, "redoc", "text/html; charset=utf-8", d->redoc_html, d->redoc_len);
}
