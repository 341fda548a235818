/* issuer_call.c - the in-process request of the issuer's unit tests and the
 * reads of its answer (issuer_call.h). */
#include "issuer_call.h"

#include <json-c/json.h>
#include <stdlib.h>

void icall_send(m8_app *app, const icall *c, iresp *out)
{
    char uri[1024], auth[4200], clen[32];
    snprintf(uri, sizeof uri, "%s%s", c->base ? c->base : "", c->path ? c->path : "/");
    const char *q = strchr(uri, '?');
    size_t blen = c->body ? (c->body_len ? c->body_len : strlen(c->body)) : 0;
    snprintf(clen, sizeof clen, "%zu", blen);
    m8_pair p[16];
    size_t n = 0;
    p[n++] = (m8_pair){"REQUEST_METHOD", c->method ? c->method : "GET"};
    p[n++] = (m8_pair){"REQUEST_URI", uri};
    p[n++] = (m8_pair){"QUERY_STRING", q ? q + 1 : ""};
    p[n++] = (m8_pair){"HTTP_HOST", "localhost"};
    if (c->peer)
        p[n++] = (m8_pair){"REMOTE_ADDR", c->peer};
    if (c->ctype)
        p[n++] = (m8_pair){"CONTENT_TYPE", c->ctype};
    if (c->body || c->length_always)
        p[n++] = (m8_pair){"CONTENT_LENGTH", clen};
    if (c->bearer) {
        snprintf(auth, sizeof auth, "Bearer %s", c->bearer);
        p[n++] = (m8_pair){"HTTP_AUTHORIZATION", auth};
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
    m8_app_handle_params(app, p, n, c->body ? c->body : "", blen, &o);
    memset(out, 0, sizeof *out);
    const char *text = o.data ? o.data : "";
    if (strncmp(text, "Status: ", 8) == 0)
        out->status = (int)strtol(text + 8, NULL, 10);
    const char *sep = strstr(text, "\r\n\r\n");
    if (sep) {
        snprintf(out->head, sizeof out->head, "%.*s", (int)(sep - text), text);
        snprintf(out->body, sizeof out->body, "%s", sep + 4);
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
            len += (size_t)snprintf(out + len, outlen > len ? outlen - len : 0, "%s%s",
                                    len ? "," : "", k);
        }
    }
    json_object_put(o);
    return out;
}

const char *i422(const iresp *r, char *out, size_t outlen)
{
    out[0] = '\0';
    json_object *o = json_tokener_parse(r->body), *d, *e, *v, *loc;
    if (r->status == 422 && json_object_object_get_ex(o, "detail", &d) &&
        (e = json_object_array_get_idx(d, 0)) && json_object_object_get_ex(e, "type", &v) &&
        json_object_object_get_ex(e, "loc", &loc)) {
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
