/* cgi.c - CGI mode (cgi.h): one request from the environment and stdin,
 * the answer on stdout, and the query-words rule for the command line. */
#include "app/cgi.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/exitcodes.h"

extern char **environ;

/* One request from the environment and stdin, the answer on stdout (RFC
 * 3875).  Reads exactly CONTENT_LENGTH bytes, never more than the limit. */
int m8_cgi_serve(const m8_engine_opts *opts)
{
    size_t max_body = opts->max_body;
    m8_request req;
    m8_req_init(&req, opts->owner);
    req.cgi = true;
    size_t n = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    m8_pair *params = m8_arena_alloc(&req.arena, (n ? n : 1) * sizeof *params);
    size_t k = 0;
    const char *cl = NULL;
    for (char **e = environ; params && e && *e && k < M8_MAX_PARAMS; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        params[k].name = m8_arena_strndup(&req.arena, *e, (size_t)(eq - *e));
        params[k].value = eq + 1;
        if (params[k].name && strcmp(params[k].name, "CONTENT_LENGTH") == 0)
            cl = eq + 1;
        k++;
    }
    int status = params ? 0 : 500;
    long long want = 0;
    m8_buf body;
    m8_buf_init(&body, max_body);
    if (cl && *cl && m8_parse_ll(cl, 0, LLONG_MAX, &want) != 0) {
        status = 400;
    } else if ((unsigned long long)want > max_body) {
        status = 413;
        /* Read (and drop) what the client sends before answering: a CGI
         * server that finds its program gone with the body unread resets
         * the connection and the 413 is lost (mod_cgid). */
        char sink[16384];
        unsigned long long left = (unsigned long long)want;
        if (left > M8_MAX_CGI_DRAIN_BYTES)
            left = M8_MAX_CGI_DRAIN_BYTES;
        while (left) {
            ssize_t r = read(0, sink, left < sizeof sink ? (size_t)left : sizeof sink);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            left -= (unsigned long long)r;
        }
    } else if (want > 0 && m8_buf_reserve(&body, (size_t)want) == 0) {
        while (body.len < (size_t)want) {
            ssize_t r = read(0, body.data + body.len, (size_t)want - body.len);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            body.len += (size_t)r;
        }
        body.data[body.len] = '\0';
        if (body.len < (size_t)want)
            status = 400; /* the client sent less than it announced */
    }
    m8_buf out;
    m8_buf_init(&out, M8_MAX_RESPONSE_BYTES + 65536);
    if (opts->respond)
        opts->respond(opts->data, &req, params, k, body.data, body.len, status, &out);
    int rc = m8_write_all(1, out.data, out.len) == 0 ? 0 : M8_EX_IOERR;
    m8_buf_free(&out);
    m8_buf_free(&body);
    m8_req_free(&req);
    return rc;
}

/* RFC 3875 4.4: a CGI server appends the words of a QUERY_STRING without
 * '=' (split at '+') to the command line.  They are request input, never
 * options (php-cgi's CVE-2012-1823), and servers escape them differently
 * (Apache adds a backslash before shell characters such as '*' and passes bytes
 * such as %ff decoded but unchecked), so comparing words is not enough:
 * when GATEWAY_INTERFACE is set, the last N arguments, N being the number
 * of query words, are dropped unread whatever they hold (all of them when
 * there are fewer arguments than words).  Returns the new argc. */
int m8_cgi_strip_search_words(int argc)
{
    const char *qs = getenv("QUERY_STRING");
    if (!getenv("GATEWAY_INTERFACE") || !qs || !*qs || strchr(qs, '=') || argc < 2)
        return argc;
    size_t words = 1;
    for (const char *p = qs; *p; p++)
        words += *p == '+';
    if (words > (size_t)(argc - 1))
        return 1;
    return argc - (int)words;
}
