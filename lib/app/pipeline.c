/* pipeline.c - one request through the app: the middleware in the
 * reference order, routing, auth, the handler, the access log line and the
 * worker's accounting; and the callback the engines answer through. */
#include "app/app.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "app/engine.h"
#include "app/signals.h"
#include "app/stream.h"
#include "builtin/metrics.h"
#include "core/log.h"

static void access_log(const m8_request *req)
{
    if (!m8_log_enabled(M8_LOG_INFO))
        return;
    /* A client can ask for error answers as fast as it likes (bad tokens,
     * bad requests, 503 while a key source is down): their lines are
     * rate-limited per status; the metrics still count every request. */
    m8_log_level lvl = req->status >= 500 ? M8_LOG_ERROR : M8_LOG_INFO;
    if (req->status >= 400) {
        char key[32];
        snprintf(key, sizeof key, "request.%d", req->status);
        if (!m8_log_limit_take(key, lvl))
            return;
    }
    m8_buf b;
    m8_buf_init(&b, 16384);
    double us = (m8_now_mono() - req->t_start) * 1e6;
    m8_buf_puts(&b, "\"method\":");
    m8_buf_json_str(&b, req->method ? req->method : "", req->method ? strlen(req->method) : 0);
    m8_buf_puts(&b, ",\"route\":");
    const char *route = req->route_label ? req->route_label : "unmatched";
    m8_buf_json_str(&b, route, strlen(route));
    m8_buf_puts(&b, ",\"status\":");
    m8_buf_put_u64(&b, (uint64_t)(req->status > 0 ? req->status : 0));
    m8_buf_puts(&b, ",\"duration_ms\":");
    m8_buf_put_milli(&b, us > 0 && us < 1e15 ? (uint64_t)(us + 0.5) : 0);
    m8_buf_puts(&b, ",\"request_id\":");
    const char *rid = req->request_id ? req->request_id : "";
    m8_buf_json_str(&b, rid, strlen(rid));
    if (req->fail_reason) {
        m8_buf_puts(&b, ",\"error\":");
        m8_buf_json_str(&b, req->fail_reason, strlen(req->fail_reason));
    }
    m8_log_fields(lvl, "request", b.data);
    m8_buf_free(&b);
}

static void internal_error(m8_request *req)
{
    /* Drop whatever the handler set: only the generic detail is sent. */
    req->n_res_headers = 0;
    m8_res_error(req, 500, "Internal Server Error");
}

/* Routing, auth and the handler: everything inside CORS. */
static void dispatch(m8_app *app, m8_request *req)
{
    m8_buf allow;
    m8_buf_init(&allow, M8_MAX_PATH_BYTES + 256);
    const m8_route_entry *e = NULL;
    m8_match_result m = m8_router_match(&app->router, req, &e, &allow);
    switch (m) {
    case M8_MATCH_NOT_FOUND: m8_res_error(req, 404, "Not Found"); break;
    case M8_MATCH_METHOD:
        m8_res_error(req, 405, "Method Not Allowed");
        m8_res_set_header(req, "Allow", allow.data ? allow.data : "");
        break;
    case M8_MATCH_REDIRECT: {
        /* Path and query quoted as one URL, as Starlette's RedirectResponse
         * does: a query byte that cannot stand in a header (a control
         * byte) is percent-encoded rather than losing the Location. */
        m8_buf loc;
        m8_buf_init(&loc, 3 * (M8_MAX_PATH_BYTES + M8_MAX_PARAMS_BYTES) + 16);
        const char *target = allow.data ? allow.data : "/";
        int rc = m8_redirect_quote(&loc, target, strlen(target));
        if (!rc && req->query_string && *req->query_string) {
            rc = m8_buf_putc(&loc, '?');
            if (!rc)
                rc = m8_redirect_quote(&loc, req->query_string, strlen(req->query_string));
        }
        if (!rc)
            rc = m8_res_body(req, 307, NULL, "", 0);
        if (!rc)
            rc = m8_res_set_header(req, "Location", loc.data ? loc.data : "/");
        if (rc) {
            m8_req_fail(req, "cannot build the Location of a redirect");
            internal_error(req);
        }
        m8_buf_free(&loc);
        break;
    }
    case M8_MATCH_OK:
        req->route = e;
        req->route_label = e->template;
        if (!(e->flags & M8__ROUTE_BUILTIN) && !atomic_load(&app->ready)) {
            m8_res_error(req, 503, "Service Unavailable");
            m8_res_set_header(req, "Retry-After", "1");
            break;
        }
        req->api_key_scope = e->scope;
        if (!m8_auth_resolve(app->auth, req, e->access, e->flags & M8_ROUTE_CRED_MASK, NULL, NULL))
            break;
        if ((e->flags & M8_ROUTE_JSON_BODY) && m8_req_parse_json(req) != 0)
            break;
        int hrc = e->handler(req, e->data);
        m8_db_app_after_handler(app, hrc != 0 || req->status == 0); /* rollback */
        if (hrc != 0 || req->status == 0) {
            if (!req->fail_reason)
                m8_req_fail(req, "handler for %s %s %s", req->method, e->template,
                            req->status == 0 ? "set no response" : "failed");
            internal_error(req);
        }
        break;
    }
    m8_buf_free(&allow);
}

void m8_app_handle(m8_app *app, m8_request *req)
{
    const m8_middleware *mw = &app->mw;
    m8_mw_request_id(req);
    if (m8_mw_trusted_host(mw, req)) {
        if (!m8_mw_cors_preflight(mw, req)) {
            if (!(app->on_request && app->on_request(req, app->on_request_data) != 0))
                dispatch(app, req);
            if (req->status == 0) {
                m8_req_fail(req, "request hook answered nothing");
                internal_error(req);
            }
            m8_mw_cors_response(mw, req);
        }
    }
    if (req->request_id)
        m8_res_set_header(req, "X-Request-ID", req->request_id);
    m8_mw_security_headers(mw, req);
    access_log(req);
}

/* After each request: the worker's slot (metrics, busy state, count), and
 * max-requests recycling between requests (doc/design.md#recycling): the serving loop
 * stops accepting, finishes what it has, and the process exits 0. */
static void account(m8_app *app, const m8_request *req)
{
    m8_shm_slot *slot = app->slot;
    if (!slot)
        return;
    if (app->settings && app->settings->metrics_enabled)
        m8_metrics_record(slot, req->method, req->route_label, (unsigned)req->status,
                          m8_now_mono() - req->t_start);
    m8_shm_idle(slot);
    uint64_t n = atomic_fetch_add(&slot->requests, 1) + 1;
    if (app->max_requests && n == app->max_requests && !atomic_exchange(&app->recycling, 1)) {
        atomic_store(&slot->state, M8_SLOT_RETIRING);
        m8_signals_notify(M8_RECYCLE);
    }
}

void m8_app_respond(m8_app *app, m8_request *req, const m8_pair *params, size_t n, const char *body,
                    size_t body_len, int preset_status, m8_buf *out)
{
    req->app = app;
    req->t_start = m8_now_mono();
    if (preset_status == 0) {
        /* Every caller keeps params and body alive until this returns. */
        int rc = m8_req_adopt_params(req, params, n, body, body_len);
        /* An Authorizer request carries the original request's
         * CONTENT_LENGTH but never its body (FastCGI 6.3). */
        const char *cl = rc == 0 && !req->authorizer ? req->cgi_content_length : NULL;
        long long want = 0;
        if (cl && *cl &&
            (m8_parse_ll(cl, 0, LLONG_MAX, &want) != 0 || (unsigned long long)want != body_len)) {
            /* a front end that forwards a cut body (mod_proxy_fcgi past
             * LimitRequestBody) must not have it served as complete */
            m8_req_fail(req, "CONTENT_LENGTH %.32s but %zu body bytes arrived", cl, body_len);
            rc = M8_EPARSE;
        }
        if (rc == 0) {
            m8_shm_busy(app->slot, req->method, req->path);
            m8_app_handle(app, req);
        } else {
            preset_status = rc == M8_ENOMEM ? 500 : 400;
        }
    }
    if (preset_status) {
        /* A request we could not read: answer through the outer middleware
         * only (no routing, no handler). */
        if (!req->method)
            req->method = "";
        m8_mw_request_id(req);
        const char *detail = preset_status == 413   ? "Request Entity Too Large"
                             : preset_status == 400 ? "Bad Request"
                                                    : "Internal Server Error";
        m8_res_error(req, preset_status, detail);
        if (req->request_id)
            m8_res_set_header(req, "X-Request-ID", req->request_id);
        m8_mw_security_headers(&app->mw, req);
        access_log(req);
    }
    /* A stream (app/stream.h) is answered only if its 2xx with no body is
     * still the answer: a handler that failed after m8_res_stream, or a
     * later stage that replaced the answer, cancels it. */
    m8_stream *st = req->stream;
    bool streaming =
        st && st->fn && req->status >= 200 && req->status < 300 && req->body_out.len == 0;
    if (st && st->fn && !streaming) {
        st->fn = NULL;
        m8_stream_release(st);
    }
    if (m8_res_render(req, false, out) != 0) {
        m8_buf_reset(out);
        m8_buf_puts(out, "Status: 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                         "Content-Length: 34\r\n\r\n{\"detail\":\"Internal Server Error\"}");
        if (streaming) {
            st->fn = NULL;
            m8_stream_release(st);
        }
    } else if (streaming) {
        m8_stream_head_fix(out); /* the body has no length */
    }
    account(app, req);
}

int m8_app_handle_params(m8_app *app, const m8_pair *params, size_t n, const char *body,
                         size_t body_len, m8_buf *out)
{
    m8_request req;
    m8_req_init(&req, app);
    int status = body_len > app->max_body ? 413 : 0;
    m8_app_respond(app, &req, params, n, body, body_len, status, out);
    m8_req_free(&req);
    return 0;
}

static void respond_cb(void *data, m8_request *req, const m8_pair *params, size_t n,
                       const char *body, size_t body_len, int preset_status, m8_buf *out)
{
    m8_app_respond(data, req, params, n, body, body_len, preset_status, out);
}

void m8_app_engine_opts(m8_app *app, m8_engine_opts *o)
{
    memset(o, 0, sizeof *o);
    o->respond = respond_cb;
    o->data = app;
    o->owner = app;
    o->shm = app->shm;
    o->threads = 1;
    o->max_body = app->max_body;
    /* fcgim8-gate says so before m8_app_main (m8_app_set_authorizer) */
    o->authorizer = app->authorizer;
}

bool m8_app_authenticate(m8_request *req, m8_access access, unsigned kinds, const char *cookie,
                         struct m8_credential *used)
{
    m8_auth *a = req->app ? req->app->auth : NULL;
    return m8_auth_resolve(a, req, access, kinds, cookie, used);
}

int m8_req_status(const m8_request *req)
{
    return req->status;
}

bool m8_req_is_authorizer(const m8_request *req)
{
    return req->authorizer;
}

const char *m8_req_fail_reason(const m8_request *req)
{
    return req->fail_reason;
}

void m8_req_set_api_key_scope(m8_request *req, const char *scope)
{
    req->api_key_scope = scope;
}

void m8_req_set_route_label(m8_request *req, const char *label)
{
    req->route_label = label;
}

const char *m8_res_body_text(const m8_request *req)
{
    return req->body_out.data;
}
