/* pipeline_check.c - fuzz_pipeline's checks of every answer: the record
 * framing, then the CGI header block. */

#include "config.h"

#include "pipeline.h"

/* ------------------------------------------------------------ checks */

static void bad(const char *why, const char *p, size_t n)
{
    fprintf(stderr, "fuzz_pipeline: %s\n--- response head ---\n", why);
    fwrite(p, 1, n > 4096 ? 4096 : n, stderr);
    fprintf(stderr, "\n---\n");
    abort();
}

static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Every response header name the pipeline and the routes above set. */
static bool known_name(const char *name, size_t n)
{
    static const char *const names[] = {
        "Status",
        "Content-Type",
        "Content-Length",
        "X-Request-ID",
        "Location",
        "Allow",
        "WWW-Authenticate",
        "Retry-After",
        "Vary",
        "Cache-Control",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Referrer-Policy",
        "Permissions-Policy",
        "Strict-Transport-Security",
        "Content-Security-Policy",
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Headers",
        "Access-Control-Max-Age",
        "X-Item",
        "X-User-Email",
        "X-User-Name",
        "X-Tenant",
        "X-Echo",
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(names); i++) {
        if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0)
            return true;
    }
    return false;
}

/* The library's own redirects (307: the trusted-host www redirect, the
 * router's trailing slash) stay on the service: a path on this host (not
 * "//host", which a browser reads as another host), or an absolute URL whose
 * authority is exactly "host[:port]" with a host the app trusts. */
static bool redirect_ok(int app, const char *v, size_t n)
{
    static const char *const trusted[N_APPS][5] = {
        {"localhost", "api.example.com", "www.example.org", ".svc.example.net", "testserver"},
        {"api.example.com", "www.example.com"},
        {NULL}, /* app 2 trusts any host, and never redirects to one */
    };
    if (n >= 1 && v[0] == '/')
        return n == 1 || (v[1] != '/' && v[1] != '\\');
    size_t skip = n >= 8 && strncmp(v, "https://", 8) == 0  ? 8
                  : n >= 7 && strncmp(v, "http://", 7) == 0 ? 7
                                                            : 0;
    if (!skip)
        return false;
    const char *host = v + skip;
    size_t hl = 0;
    while (skip + hl < n && host[hl] != '/' && host[hl] != ':' && host[hl] != '?' &&
           host[hl] != '#')
        hl++;
    size_t end = skip + hl;
    if (end < n && v[end] == ':') {
        size_t digits = 0;
        while (end + 1 + digits < n && v[end + 1 + digits] >= '0' && v[end + 1 + digits] <= '9')
            digits++;
        if (digits == 0)
            return false;
        end += 1 + digits;
    }
    if (end < n && v[end] != '/')
        return false; /* userinfo, a second authority, a backslash ... */
    for (size_t i = 0; i < hl; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    for (size_t i = 0; i < 5 && trusted[app][i]; i++) {
        const char *t = trusted[app][i];
        size_t tl = strlen(t);
        if (t[0] == '.' ? hl > tl && strncasecmp(host + hl - tl, t, tl) == 0
                        : hl == tl && strncasecmp(host, t, tl) == 0)
            return true;
    }
    return false;
}

/* The CGI response of one request: header lines "Name: value" ending in
 * CRLF, a blank line, the body.  nginx, Apache and libfcgi's clients read
 * this block; a CR or LF inside a line would split a header (response
 * splitting), a NUL would cut it short. */
static void check_response(int app, const char *r, size_t n)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < n; i++) {
        if (memcmp(r + i, "\r\n\r\n", 4) == 0) {
            end = r + i;
            break;
        }
    }
    if (!end)
        bad("no blank line after the headers", r, n);
    size_t head_len = (size_t)(end - r) + 2;
    const char *body = end + 4;
    size_t body_len = n - (size_t)(body - r);
    int n_status = 0, n_cl = 0, n_ct = 0, n_rid = 0, n_lines = 0, status = 0;
    long long cl = -1;
    const char *loc = NULL;
    size_t loc_len = 0;
    for (const char *line = r; line < r + head_len;) {
        const char *eol = NULL;
        for (const char *p = line; p + 1 < r + head_len + 1; p++) {
            if (p[0] == '\r' && p[1] == '\n') {
                eol = p;
                break;
            }
        }
        if (!eol)
            bad("a header line without CRLF", r, head_len);
        size_t ll = (size_t)(eol - line);
        n_lines++;
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line)
            bad("a header line without a name", r, head_len);
        for (const char *p = line; p < colon; p++) {
            if (!tchar((unsigned char)*p))
                bad("a header name with a byte outside the token set", r, head_len);
        }
        if (colon + 1 >= eol || colon[1] != ' ')
            bad("a header without \": \"", r, head_len);
        for (const char *p = colon + 1; p < eol; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '\r' || c == '\n' || c == '\0')
                bad("CR, LF or NUL in a header value", r, head_len);
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                bad("a control byte in a header value", r, head_len);
        }
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 2;
        size_t vl = (size_t)(eol - v);
        /* A CRLF smuggled into a value would show as an extra line: every
         * name is one the pipeline sets, at most once (the reflect route's
         * client-chosen name carries a fixed value). */
        for (const char *q = eol + 2; q < r + head_len;) {
            const char *qe = strstr(q, "\r\n");
            if (!qe)
                break;
            if ((size_t)(qe - q) > nl && q[nl] == ':' && strncasecmp(q, line, nl) == 0)
                bad("a header name twice", r, head_len);
            q = qe + 2;
        }
        if (!known_name(line, nl) && !(vl == 16 && memcmp(v, "name-from-client", 16) == 0))
            bad("a header the pipeline never sets", r, head_len);
        if (nl == 6 && strncasecmp(line, "Status", 6) == 0) {
            n_status++;
            if (line != r)
                bad("Status is not the first line", r, head_len);
            if (vl < 3 || v[0] < '1' || v[0] > '5' || v[1] < '0' || v[1] > '9' || v[2] < '0' ||
                v[2] > '9' || (vl > 3 && v[3] != ' '))
                bad("a malformed Status", r, head_len);
            status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
        } else if (nl == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
            n_cl++;
            char tmp[24];
            if (vl == 0 || vl >= sizeof tmp)
                bad("a malformed Content-Length", r, head_len);
            memcpy(tmp, v, vl);
            tmp[vl] = '\0';
            if (m8_parse_ll(tmp, 0, (long long)M8_MAX_RESPONSE_BYTES, &cl) != 0)
                bad("a malformed Content-Length", r, head_len);
        } else if (nl == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
            n_ct++;
        } else if (nl == 8 && strncasecmp(line, "Location", 8) == 0) {
            loc = v;
            loc_len = vl;
        } else if (nl == 12 && strncasecmp(line, "X-Request-ID", 12) == 0) {
            n_rid++;
            if (vl == 0 || vl > M8_MAX_REQUEST_ID)
                bad("an X-Request-ID of a bad length", r, head_len);
            for (size_t i = 0; i < vl; i++) {
                char c = v[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                    bad("an X-Request-ID outside [A-Za-z0-9._-]", r, head_len);
            }
        }
        line = eol + 2;
    }
    if (n_status != 1)
        bad("not exactly one Status", r, head_len);
    if (n_ct > 1 || n_cl > 1)
        bad("a duplicate Content-Type or Content-Length", r, head_len);
    if (n_rid != 1)
        bad("not exactly one X-Request-ID", r, head_len);
    if (n_lines > (int)M8_MAX_RESPONSE_HEADERS + 32)
        bad("too many header lines", r, head_len);
    if (status == 307 && !loc)
        bad("a 307 without a Location", r, head_len);
    if (status == 307 && !redirect_ok(app, loc, loc_len))
        bad("a 307 whose Location leaves the service's trusted hosts", r, head_len);
    bool bodiless = status < 200 || status == 204 || status == 304;
    if (bodiless ? (n_cl != 0 || body_len != 0) : (n_cl != 1 || (size_t)cl != body_len))
        bad("Content-Length does not match the body", r, head_len);
}

/* Walks the records the service sent: well-formed framing, and each
 * request's STDOUT stream, once its END_REQUEST arrived, checked. */
void check_reply(int app, const m8_buf *reply)
{
    static m8_buf stdout_of[4];
    for (size_t i = 0; i < M8_ARRAY_LEN(stdout_of); i++) {
        if (!stdout_of[i].max)
            m8_buf_init(&stdout_of[i], M8_MAX_RESPONSE_BYTES + 65536);
        m8_buf_reset(&stdout_of[i]);
    }
    const unsigned char *p = (const unsigned char *)reply->data;
    size_t n = reply->len, pos = 0;
    while (pos < n) {
        if (n - pos < 8)
            bad("a truncated record header", reply->data, n);
        const unsigned char *h = p + pos;
        size_t clen = (size_t)h[4] << 8 | h[5], plen = h[6];
        uint16_t id = (uint16_t)(h[2] << 8 | h[3]);
        if (h[0] != 1 || n - pos - 8 < clen + plen)
            bad("a bad or truncated record", reply->data, n);
        const char *content = (const char *)h + 8;
        m8_buf *so = &stdout_of[id % M8_ARRAY_LEN(stdout_of)];
        switch (h[1]) {
        case M8_FCGI_STDOUT:
            if (m8_buf_append(so, content, clen) != 0)
                bad("an answer over the response limit", reply->data, n);
            break;
        case M8_FCGI_END_REQUEST:
            if (clen != 8)
                bad("an END_REQUEST of the wrong size", reply->data, n);
            if (so->len)
                check_response(app, so->data, so->len);
            m8_buf_reset(so);
            break;
        case M8_FCGI_STDERR:
        case M8_FCGI_GET_VALUES_RESULT:
        case M8_FCGI_UNKNOWN_TYPE: break;
        default: bad("a record type a responder never sends", reply->data, n);
        }
        pos += 8 + clen + plen;
    }
    for (size_t i = 0; i < M8_ARRAY_LEN(stdout_of); i++) {
        if (stdout_of[i].len)
            bad("a STDOUT stream without its END_REQUEST", stdout_of[i].data, stdout_of[i].len);
    }
}
