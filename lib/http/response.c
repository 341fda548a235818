/* response.c - the response model (http.h): status, headers, body, the
 * JSON and error bodies, the status reasons and the CGI rendering.  Pure:
 * no I/O. */
#include "http/http_int.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "http/router.h"

/* Headers the library itself may add (security tiers, CORS, request id) on
 * top of the M8_MAX_RESPONSE_HEADERS a handler may set. */
#define RES_HEADERS_RESERVE 16u
/* ------------------------------------------------------------ response */

static bool valid_header_value(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7F)
            return false;
    }
    return true;
}

static bool valid_status(int status)
{
    return status >= 100 && status <= 599;
}

static int set_content_type(m8_request *req, const char *ct)
{
    if (!ct) {
        req->content_type = NULL;
        return 0;
    }
    if (!valid_header_value(ct))
        return M8_EINVAL;
    const char *c = m8_arena_strdup(&req->arena, ct);
    if (!c)
        return M8_ENOMEM;
    req->content_type = c;
    return 0;
}

/* Headers the renderer writes itself: a handler cannot set them. */
static bool reserved_header(const char *name)
{
    return m8_strcaseeq(name, "Content-Length") || m8_strcaseeq(name, "Status");
}

static int check_header(const char *name, const char *value)
{
    if (!m8__http_is_token(name) || !value || !valid_header_value(value) || reserved_header(name))
        return M8_EINVAL;
    return 0;
}

/* copy: name and value go into the arena; else they must outlive the request. */
static int append_header(m8_request *req, const char *name, const char *value, size_t limit,
                         bool copy)
{
    if (req->n_res_headers >= limit)
        return M8_ETOOBIG;
    if (!req->res_headers) {
        size_t cap = M8_MAX_RESPONSE_HEADERS + RES_HEADERS_RESERVE;
        req->res_headers = m8_arena_alloc(&req->arena, cap * sizeof *req->res_headers);
        if (!req->res_headers)
            return M8_ENOMEM;
        req->cap_res_headers = cap;
    }
    const char *n = copy ? m8_arena_strdup(&req->arena, name) : name;
    const char *v = copy ? m8_arena_strdup(&req->arena, value) : value;
    if (!n || !v)
        return M8_ENOMEM;
    req->res_headers[req->n_res_headers].name = n;
    req->res_headers[req->n_res_headers].value = v;
    req->n_res_headers++;
    return 0;
}

/* Validates a header for m8_res_header / m8_res_set_header and handles
 * Content-Type (one value, kept apart): negative = error, 1 = done, 0 = go on. */
static int header_prelude(m8_request *req, const char *name, const char *value)
{
    if (!req)
        return M8_EINVAL;
    int rc = check_header(name, value);
    if (rc)
        return rc;
    if (m8_strcaseeq(name, "Content-Type")) {
        rc = set_content_type(req, value);
        return rc ? rc : 1;
    }
    return 0;
}

int m8_res_header(m8_request *req, const char *name, const char *value)
{
    int rc = header_prelude(req, name, value);
    if (rc)
        return rc < 0 ? rc : 0;
    return append_header(req, name, value, M8_MAX_RESPONSE_HEADERS, true);
}

void m8_res_remove_header(m8_request *req, const char *name)
{
    size_t o = 0;
    for (size_t i = 0; i < req->n_res_headers; i++) {
        if (!m8_strcaseeq(req->res_headers[i].name, name))
            req->res_headers[o++] = req->res_headers[i];
    }
    req->n_res_headers = o;
}

/* m8_res_set_header once the header has passed header_prelude. */
static int set_header(m8_request *req, const char *name, const char *value, bool copy)
{
    for (size_t i = 0; i < req->n_res_headers; i++) {
        if (m8_strcaseeq(req->res_headers[i].name, name)) {
            const char *n = copy ? m8_arena_strdup(&req->arena, name) : name;
            const char *v = copy ? m8_arena_strdup(&req->arena, value) : value;
            if (!n || !v)
                return M8_ENOMEM;
            req->res_headers[i].name = n;
            req->res_headers[i].value = v;
            /* drop later duplicates, as Starlette's MutableHeaders does */
            size_t o = i + 1;
            for (size_t j = i + 1; j < req->n_res_headers; j++) {
                if (!m8_strcaseeq(req->res_headers[j].name, name))
                    req->res_headers[o++] = req->res_headers[j];
            }
            req->n_res_headers = o;
            return 0;
        }
    }
    return append_header(req, name, value, M8_MAX_RESPONSE_HEADERS + RES_HEADERS_RESERVE, copy);
}

int m8_res_set_header(m8_request *req, const char *name, const char *value)
{
    int rc = header_prelude(req, name, value);
    if (rc)
        return rc < 0 ? rc : 0;
    return set_header(req, name, value, true);
}

int m8_res_set_checked(m8_request *req, const char *name, const char *value)
{
    return set_header(req, name, value, false);
}

int m8_res_add_vary(m8_request *req, const char *value)
{
    if (!req || !value)
        return M8_EINVAL;
    const char *cur = m8_res_get_header(req, "Vary");
    if (!cur)
        return m8_res_set_header(req, "Vary", value);
    size_t lc = strlen(cur), lv = strlen(value);
    char *joined = m8_arena_alloc(&req->arena, lc + 2 + lv + 1);
    if (!joined)
        return M8_ENOMEM;
    memcpy(joined, cur, lc);
    memcpy(joined + lc, ", ", 2);
    memcpy(joined + lc + 2, value, lv + 1);
    return m8_res_set_header(req, "Vary", joined);
}

const char *m8_res_get_header(const m8_request *req, const char *name)
{
    if (!req || !name)
        return NULL;
    if (m8_strcaseeq(name, "Content-Type"))
        return req->content_type;
    for (size_t i = 0; i < req->n_res_headers; i++) {
        if (m8_strcaseeq(req->res_headers[i].name, name))
            return req->res_headers[i].value;
    }
    return NULL;
}

int m8_res_body(m8_request *req, int status, const char *content_type, const void *data, size_t len)
{
    if (!req || !valid_status(status) || (len && !data))
        return M8_EINVAL;
    if (len > M8_MAX_RESPONSE_BYTES)
        return M8_ETOOBIG;
    if (content_type && !valid_header_value(content_type))
        return M8_EINVAL;
    m8_buf_reset(&req->body_out);
    int rc = m8_buf_append(&req->body_out, data, len);
    if (rc)
        return rc;
    rc = set_content_type(req, content_type);
    if (rc)
        return rc;
    req->status = status;
    return 0;
}

int m8_res_json(m8_request *req, int status, struct json_object *obj)
{
    if (!req || !valid_status(status)) {
        json_object_put(obj);
        return M8_EINVAL;
    }
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    int rc = s ? m8_res_body(req, status, "application/json", s, len) : M8_ENOMEM;
    json_object_put(obj);
    return rc;
}

int m8_res_error(m8_request *req, int status, const char *detail)
{
    if (!req || !valid_status(status))
        return M8_EINVAL;
    m8_buf b;
    m8_buf_init(&b, M8_MAX_RESPONSE_BYTES);
    const char *d = detail ? detail : "";
    int rc = m8_buf_puts(&b, "{\"detail\":");
    if (!rc)
        rc = m8_buf_json_str(&b, d, strlen(d));
    if (!rc)
        rc = m8_buf_putc(&b, '}');
    if (!rc)
        rc = m8_res_body(req, status, "application/json", b.data, b.len);
    m8_buf_free(&b);
    return rc;
}

const char *m8_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 423: return "Locked";
    case 424: return "Failed Dependency";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 508: return "Loop Detected";
    case 511: return "Network Authentication Required";
    default: return "";
    }
}

int m8_res_render(const m8_request *req, bool head_only, m8_buf *out)
{
    int status = req->status ? req->status : 500;
    const char *reason = m8_status_reason(status);
    int rc = m8_buf_puts(out, "Status: ");
    if (!rc)
        rc = m8_buf_put_u64(out, (uint64_t)status);
    if (!rc && *reason) {
        rc = m8_buf_putc(out, ' ');
        if (!rc)
            rc = m8_buf_puts(out, reason);
    }
    if (!rc && req->content_type) {
        rc = m8_buf_puts(out, "\r\nContent-Type: ");
        if (!rc)
            rc = m8_buf_puts(out, req->content_type);
    }
    /* like Starlette: no Content-Length (and no body) on 1xx, 204, 304 */
    bool bodiless = status < 200 || status == 204 || status == 304;
    if (!rc && !bodiless) {
        rc = m8_buf_puts(out, "\r\nContent-Length: ");
        if (!rc)
            rc = m8_buf_put_u64(out, req->body_out.len);
    }
    for (size_t i = 0; !rc && i < req->n_res_headers; i++) {
        rc = m8_buf_puts(out, "\r\n");
        if (!rc)
            rc = m8_buf_puts(out, req->res_headers[i].name);
        if (!rc)
            rc = m8_buf_putn(out, ": ", 2);
        if (!rc)
            rc = m8_buf_puts(out, req->res_headers[i].value);
    }
    if (!rc)
        rc = m8_buf_puts(out, "\r\n");
    if (!rc)
        rc = m8_buf_puts(out, "\r\n");
    if (!rc && !head_only && !bodiless && req->body_out.len)
        rc = m8_buf_append(out, req->body_out.data, req->body_out.len);
    return rc;
}
