/* fcgi_proto.c - FastCGI 1.0 records as a pure state machine (fcgi_proto.h). */
#include "http/fcgi_proto.h"

#include <string.h>

void m8_fcgi_init(m8_fcgi *f, size_t max_body)
{
    memset(f, 0, sizeof *f);
    f->max_body = max_body;
    m8_buf_init(&f->params, M8_MAX_PARAMS_BYTES);
    m8_buf_init(&f->body, max_body);
    m8_buf_init(&f->reply, 64 * 1024);
}

void m8_fcgi_free(m8_fcgi *f)
{
    m8_buf_free(&f->params);
    m8_buf_free(&f->body);
    m8_buf_free(&f->reply);
}

void m8_fcgi_next(m8_fcgi *f)
{
    f->req_id = 0;
    f->role = 0;
    f->keep_conn = false;
    f->params_done = f->stdin_done = false;
    f->body_too_big = false;
    m8_buf_reset(&f->params);
    m8_buf_reset(&f->body);
}

int m8_fcgi_record(m8_buf *out, int type, uint16_t id, const void *content, size_t len)
{
    if (len > 65535)
        return M8_EINVAL;
    size_t pad = (8 - (len & 7)) & 7;
    unsigned char h[8] = {1,
                          (unsigned char)type,
                          (unsigned char)(id >> 8),
                          (unsigned char)id,
                          (unsigned char)(len >> 8),
                          (unsigned char)len,
                          (unsigned char)pad,
                          0};
    static const char zeros[8];
    int rc = m8_buf_reserve(out, sizeof h + len + pad);
    if (rc)
        return rc;
    m8_buf_append(out, h, sizeof h);
    m8_buf_append(out, content, len);
    m8_buf_append(out, zeros, pad);
    return 0;
}

static int end_request(m8_buf *out, uint16_t id, uint32_t app_status, int proto_status)
{
    unsigned char body[8] = {(unsigned char)(app_status >> 24),
                             (unsigned char)(app_status >> 16),
                             (unsigned char)(app_status >> 8),
                             (unsigned char)app_status,
                             (unsigned char)proto_status,
                             0,
                             0,
                             0};
    return m8_fcgi_record(out, M8_FCGI_END_REQUEST, id, body, sizeof body);
}

int m8_fcgi_response(m8_buf *out, uint16_t id, const char *data, size_t len, uint32_t app_status)
{
    /* 65528 = the largest multiple of 8 that fits a record: no padding. */
    const size_t chunk = 65528;
    size_t records = len / chunk + 3;
    int rc = m8_buf_reserve(out, len + records * 16);
    while (!rc && len) {
        size_t n = len < chunk ? len : chunk;
        rc = m8_fcgi_record(out, M8_FCGI_STDOUT, id, data, n);
        data += n;
        len -= n;
    }
    if (!rc)
        rc = m8_fcgi_record(out, M8_FCGI_STDOUT, id, NULL, 0);
    if (!rc)
        rc = end_request(out, id, app_status, M8_FCGI_REQUEST_COMPLETE);
    return rc;
}

int m8_fcgi_encode_pair(m8_buf *out, const char *name, size_t nl, const char *value, size_t vl)
{
    unsigned char len[8];
    size_t k = 0;
    size_t lens[2] = {nl, vl};
    for (int i = 0; i < 2; i++) {
        if (lens[i] > 0x7fffffffu)
            return M8_EINVAL;
        if (lens[i] < 128) {
            len[k++] = (unsigned char)lens[i];
        } else {
            len[k++] = (unsigned char)((lens[i] >> 24) | 0x80);
            len[k++] = (unsigned char)(lens[i] >> 16);
            len[k++] = (unsigned char)(lens[i] >> 8);
            len[k++] = (unsigned char)lens[i];
        }
    }
    int rc = m8_buf_append(out, len, k);
    if (!rc)
        rc = m8_buf_append(out, name, nl);
    if (!rc)
        rc = m8_buf_append(out, value, vl);
    return rc;
}

/* Reads a 1- or 4-byte length; 0 on success. */
static inline int read_len(const unsigned char *p, size_t n, size_t *pos, size_t *out)
{
    if (*pos >= n)
        return M8_EPARSE;
    if (p[*pos] < 128) {
        *out = p[(*pos)++];
        return 0;
    }
    if (n - *pos < 4)
        return M8_EPARSE;
    *out = ((size_t)(p[*pos] & 0x7f) << 24) | ((size_t)p[*pos + 1] << 16) |
           ((size_t)p[*pos + 2] << 8) | p[*pos + 3];
    *pos += 4;
    return 0;
}

int m8_fcgi_params_in_place(m8_arena *a, char *data, size_t n, m8_pair **out, size_t *nout)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t pos = 0, count = 0;
    /* First pass: validate and count, so the array is allocated once. */
    while (pos < n) {
        size_t nl, vl;
        if (read_len(p, n, &pos, &nl) || read_len(p, n, &pos, &vl))
            return M8_EPARSE;
        if (nl > n - pos || vl > n - pos - nl)
            return M8_EPARSE;
        /* A NUL byte: the name or value would end there for every C reader
         * but not for the sender, so it is refused rather than cut. */
        if (nl + vl && memchr(p + pos, 0, nl + vl))
            return M8_EPARSE;
        pos += nl + vl;
        if (++count > M8_MAX_PARAMS)
            return M8_ETOOBIG;
    }
    m8_pair *pairs = m8_arena_alloc(a, (count ? count : 1) * sizeof *pairs);
    if (!pairs)
        return M8_ENOMEM;
    /* Second pass: each name moves down one byte, over its pair's length
     * bytes (two at least), which leaves room for its NUL; a value stays
     * where it is and ends on the NUL written over the first length byte of
     * the next pair once that pair's lengths are read (the last one on
     * data[n]). */
    pos = 0;
    for (size_t i = 0; i < count; i++) {
        size_t start = pos, nl = 0, vl = 0; /* read_len cannot fail here: checked above */
        read_len(p, n, &pos, &nl);
        read_len(p, n, &pos, &vl);
        if (i > 0)
            data[start] = '\0';
        char *name = data + pos - 1;
        memmove(name, data + pos, nl);
        name[nl] = '\0';
        pairs[i].name = name;
        pairs[i].value = data + pos + nl;
        pos += nl + vl;
    }
    if (count)
        data[n] = '\0';
    *out = pairs;
    *nout = count;
    return 0;
}

int m8_fcgi_decode_params(m8_arena *a, const char *data, size_t n, m8_pair **out, size_t *nout)
{
    char *copy = m8_arena_alloc(a, n + 1);
    if (!copy)
        return M8_ENOMEM;
    if (n)
        memcpy(copy, data, n);
    return m8_fcgi_params_in_place(a, copy, n, out, nout);
}

static int get_values_result(m8_fcgi *f, const char *content, size_t len)
{
    m8_arena a;
    m8_arena_init(&a, M8_MAX_PARAMS_BYTES * 2);
    m8_pair *q;
    size_t n;
    m8_buf ans;
    m8_buf_init(&ans, 65535);
    int rc = m8_fcgi_decode_params(&a, content, len, &q, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        const char *v = NULL;
        if (strcmp(q[i].name, "FCGI_MAX_CONNS") == 0)
            v = "1024";
        else if (strcmp(q[i].name, "FCGI_MAX_REQS") == 0)
            v = "1024";
        else if (strcmp(q[i].name, "FCGI_MPXS_CONNS") == 0)
            v = "0";
        if (v)
            rc = m8_fcgi_encode_pair(&ans, q[i].name, strlen(q[i].name), v, strlen(v));
    }
    if (!rc)
        rc = m8_fcgi_record(&f->reply, M8_FCGI_GET_VALUES_RESULT, 0, ans.data, ans.len);
    m8_buf_free(&ans);
    m8_arena_free(&a);
    return rc;
}

m8_fcgi_event m8_fcgi_feed(m8_fcgi *f, const char *data, size_t len, size_t *consumed)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t pos = 0;
    m8_fcgi_event ev = M8_FCGI_NEED_MORE;
    while (ev == M8_FCGI_NEED_MORE && len - pos >= M8_FCGI_HEADER_LEN) {
        const unsigned char *h = p + pos;
        size_t clen = ((size_t)h[4] << 8) | h[5];
        size_t total = M8_FCGI_HEADER_LEN + clen + h[6];
        if (h[0] != 1) {
            ev = M8_FCGI_PROTO_ERROR;
            break;
        }
        if (len - pos < total)
            break;
        int type = h[1];
        uint16_t id = (uint16_t)((h[2] << 8) | h[3]);
        const char *content = data + pos + M8_FCGI_HEADER_LEN;
        pos += total;

        if (id == 0) { /* management record */
            if (type == M8_FCGI_GET_VALUES) {
                if (get_values_result(f, content, clen))
                    ev = M8_FCGI_PROTO_ERROR;
            } else {
                unsigned char body[8] = {(unsigned char)type};
                if (m8_fcgi_record(&f->reply, M8_FCGI_UNKNOWN_TYPE, 0, body, 8))
                    ev = M8_FCGI_PROTO_ERROR;
            }
            continue;
        }
        switch (type) {
        case M8_FCGI_BEGIN_REQUEST: {
            if (clen < 8) {
                ev = M8_FCGI_PROTO_ERROR;
                break;
            }
            int role = (content[0] & 0xff) << 8 | (content[1] & 0xff);
            bool keep = (content[2] & 1) != 0;
            if (f->req_id != 0) {
                if (end_request(&f->reply, id, 0, M8_FCGI_CANT_MPX_CONN))
                    ev = M8_FCGI_PROTO_ERROR;
            } else if (role != M8_FCGI_RESPONDER &&
                       !(role == M8_FCGI_AUTHORIZER && f->authorizer_ok)) {
                if (end_request(&f->reply, id, 0, M8_FCGI_UNKNOWN_ROLE))
                    ev = M8_FCGI_PROTO_ERROR;
            } else {
                m8_fcgi_next(f);
                f->req_id = id;
                f->role = role;
                f->keep_conn = keep;
                /* An authorizer gets no stdin (FastCGI 1.0 section 6.3;
                 * mod_fcgid sends none): a stray STDIN record after the
                 * answer belongs to no request and is dropped. */
                f->stdin_done = role == M8_FCGI_AUTHORIZER;
            }
            break;
        }
        case M8_FCGI_ABORT_REQUEST:
            /* Only reachable before the request is complete (we answer at
             * once after that): drop it and confirm. */
            if (id == f->req_id) {
                bool keep = f->keep_conn;
                m8_fcgi_next(f);
                f->keep_conn = keep;
                ev = end_request(&f->reply, id, 0, M8_FCGI_REQUEST_COMPLETE) ? M8_FCGI_PROTO_ERROR
                                                                             : M8_FCGI_ABORTED;
            }
            break;
        case M8_FCGI_PARAMS:
            if (id != f->req_id || f->params_done)
                break; /* stray record of a refused or finished request */
            if (clen == 0)
                f->params_done = true;
            else if (m8_buf_append(&f->params, content, clen))
                ev = M8_FCGI_PROTO_ERROR; /* params past M8_MAX_PARAMS_BYTES */
            break;
        case M8_FCGI_STDIN:
            if (id != f->req_id || f->stdin_done)
                break;
            if (clen == 0) {
                f->stdin_done = true;
            } else if (!f->body_too_big && m8_buf_append(&f->body, content, clen)) {
                /* Past the limit: keep reading, drop the bytes, answer 413. */
                f->body_too_big = true;
                m8_buf_reset(&f->body);
            }
            break;
        case M8_FCGI_DATA: break; /* FILTER role only, which is refused */
        default: {
            unsigned char body[8] = {(unsigned char)type};
            if (m8_fcgi_record(&f->reply, M8_FCGI_UNKNOWN_TYPE, 0, body, 8))
                ev = M8_FCGI_PROTO_ERROR;
            break;
        }
        }
        if (ev == M8_FCGI_NEED_MORE && f->req_id && f->params_done && f->stdin_done)
            ev = M8_FCGI_REQUEST;
    }
    *consumed = pos;
    return ev;
}
