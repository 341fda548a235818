/* issuer_call.c - the in-process request of the issuer's unit tests and the
 * reads of its answer (issuer_call.h). */
#include "issuer_call.h"

#include <json-c/json.h>
#include <stdlib.h>

void icall_send(m8_app *app, const icall *c, iresp *out)
{
    /* the URI and the Authorization value at their full length: a test of
     * a long query or token must send it whole, not a silent prefix */
    m8_buf uri, auth;
    m8_buf_init(&uri, 1 << 20); /* past any request the app takes (M8_MAX_PARAMS_BYTES) */
    m8_buf_init(&auth, 1 << 20);
    char clen[32];
    memset(out, 0, sizeof *out);
    if (m8_buf_printf(&uri, "%s%s", c->base ? c->base : "", c->path ? c->path : "/") != 0 ||
        (c->bearer && m8_buf_printf(&auth, "Bearer %s", c->bearer) != 0)) {
        diag("icall: the request of %.64s does not fit 1 MiB", c->path ? c->path : "/");
        out->status = -1;
        m8_buf_free(&uri);
        m8_buf_free(&auth);
        return;
    }
    const char *q = strchr(uri.data, '?');
    size_t blen = c->body ? (c->body_len ? c->body_len : strlen(c->body)) : 0;
    snprintf(clen, sizeof clen, "%zu", blen);
    m8_pair p[16];
    size_t n = 0;
    p[n++] = (m8_pair){"REQUEST_METHOD", c->method ? c->method : "GET"};
    p[n++] = (m8_pair){"REQUEST_URI", uri.data};
    p[n++] = (m8_pair){"QUERY_STRING", q ? q + 1 : ""};
    p[n++] = (m8_pair){"HTTP_HOST", "localhost"};
    if (c->peer)
        p[n++] = (m8_pair){"REMOTE_ADDR", c->peer};
    if (c->ctype)
        p[n++] = (m8_pair){"CONTENT_TYPE", c->ctype};
    if (c->body || c->length_always)
        p[n++] = (m8_pair){"CONTENT_LENGTH", clen};
    if (c->bearer) {
        p[n++] = (m8_pair){"HTTP_AUTHORIZATION", auth.data};
    } else if (c->authz) {
        p[n++] = (m8_pair){"HTTP_AUTHORIZATION", c->authz};
    }
    if (c->api_key)
        p[n++] = (m8_pair){"HTTP_X_API_KEY", c->api_key};
    if (c->client)
        p[n++] = (m8_pair){"HTTP_X_INTERNAL_CLIENT", c->client};
    if (c->secret)
        p[n++] = (m8_pair){"HTTP_X_INTERNAL_TOKEN", c->secret};
    if (c->cookie)
        p[n++] = (m8_pair){"HTTP_COOKIE", c->cookie};
    if (c->xff)
        p[n++] = (m8_pair){"HTTP_X_FORWARDED_FOR", c->xff};

    m8_buf o;
    m8_buf_init(&o, 1 << 22);
    /* the app reads a body that ends with a NUL at its length (app.h,
     * m8_app_respond): body_len bytes of a longer text go as a copy */
    char *copy = c->body && c->body_len ? malloc(blen + 1) : NULL;
    if (copy) {
        memcpy(copy, c->body, blen);
        copy[blen] = '\0';
    }
    m8_app_handle_params(app, p, n, copy ? copy : c->body ? c->body : "", blen, &o);
    free(copy);
    m8_buf_free(&uri);
    m8_buf_free(&auth);
    const char *text = o.data ? o.data : "";
    if (strncmp(text, "Status: ", 8) == 0)
        out->status = (int)strtol(text + 8, NULL, 10);
    const char *sep = strstr(text, "\r\n\r\n");
    if (sep) {
        size_t hl = (size_t)(sep - text), bl = o.len - hl - 4;
        snprintf(out->head, sizeof out->head, "%.*s", (int)hl, text);
        snprintf(out->body, sizeof out->body, "%s", sep + 4);
        /* a check that something is absent from a cut body could pass
         * without looking at all of it */
        out->cut = hl >= sizeof out->head || bl >= sizeof out->body || strlen(sep + 4) != bl;
        if (out->cut)
            diag("icall: %.64s answered a head of %zu bytes and a body of %zu bytes (NULs "
                 "included): cut to fit iresp",
                 c->path ? c->path : "/", hl, bl);
    }
    m8_buf_free(&o);
}

iresp *icall_do(m8_app *app, const icall *c)
{
    static iresp r;
    icall_send(app, c, &r);
    return &r;
}

/* The text skip bytes after the head's first pat, up to the first byte of
 * stop, into out ("" when pat is absent). */
static const char *head_find(const iresp *r, const char *pat, const char *stop, size_t skip,
                             char *out, size_t outlen)
{
    const char *h = strstr(r->head, pat);
    out[0] = '\0';
    if (h)
        snprintf(out, outlen, "%.*s", (int)strcspn(h + skip, stop), h + skip);
    return out;
}

const char *iheader(const iresp *r, const char *name, char *out, size_t outlen)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\r\n%s: ", name);
    return head_find(r, pat, "\r\n", strlen(pat), out, outlen);
}

const char *icookie(const iresp *r, const char *name, char *out, size_t outlen)
{
    char pat[96];
    snprintf(pat, sizeof pat, "\r\nSet-Cookie: %s=", name);
    return head_find(r, pat, ";\r\n", strlen("\r\nSet-Cookie: "), out, outlen);
}

const char *imember(const char *body, const char *name, char *out, size_t outlen)
{
    json_object *o = json_tokener_parse(body), *v;
    out[0] = '\0';
    if (o && json_object_object_get_ex(o, name, &v))
        snprintf(out, outlen, "%s",
                 json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                          : json_object_to_json_string(v));
    json_object_put(o);
    return out;
}

const char *imembers(const char *body, char *out, size_t outlen)
{
    json_object *o = json_tokener_parse(body);
    json_object *x = json_object_is_type(o, json_type_array) ? json_object_array_get_idx(o, 0) : o;
    size_t len = 0;
    out[0] = '\0';
    if (json_object_is_type(x, json_type_object)) {
        json_object_object_foreach(x, k, v)
        {
            (void)v;
            if (len >= outlen) /* out is full: out + len would point past it */
                break;
            len += (size_t)snprintf(out + len, outlen - len, "%s%s", len ? "," : "", k);
        }
    }
    json_object_put(o);
    return out;
}

const char *i422(const iresp *r, char *out, size_t outlen)
{
    out[0] = '\0';
    json_object *o = json_tokener_parse(r->body), *d, *e, *v, *loc;
    /* json-c's array reads take an array only: a 422 whose detail is a
     * string ("Invalid characters in credentials") reads as "" */
    if (r->status == 422 && json_object_object_get_ex(o, "detail", &d) &&
        json_object_is_type(d, json_type_array) && (e = json_object_array_get_idx(d, 0)) &&
        json_object_object_get_ex(e, "type", &v) && json_object_object_get_ex(e, "loc", &loc) &&
        json_object_is_type(loc, json_type_array)) {
        size_t len = (size_t)snprintf(out, outlen, "%s ", json_object_get_string(v));
        for (size_t i = 0; i < json_object_array_length(loc) && len < outlen; i++)
            len += (size_t)snprintf(out + len, outlen - len, "%s%s", i ? "." : "",
                                    json_object_get_string(json_object_array_get_idx(loc, i)));
    }
    json_object_put(o);
    return out;
}

int64_t iint(m8_db *db, const char *sql, const char *param)
{
    m8_db_result *r = NULL;
    int64_t v = -1;
    m8_db_param p = M8_DB_TEXT(param);
    if (m8_db_exec(db, sql, param ? &p : NULL, param ? 1 : 0, &r) == 0 && m8_db_nrows(r) == 1)
        m8_db_get_int(r, 0, 0, &v);
    m8_db_result_free(r);
    return v;
}

bool ianswer_is(const iresp *r, int status, const char *body)
{
    return r->status == status && strcmp(r->body, body) == 0;
}

void ianswer_diag(const iresp *r, int status, const char *body)
{
    printf("#   got: %d %s\n#  want: %d %s\n", r->status, r->body, status, body);
}
