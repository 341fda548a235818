/* reqbuild.h - builds a request for the unit tests from "NAME=VALUE"
 * strings, the FastCGI params the web server would send:
 *   m8t_req_kv(req, NULL, (const char *const[]){"REQUEST_METHOD=GET",
 *              "REQUEST_URI=/x", NULL}, NULL, 0);
 * Every string holds an '='; the names are copied (up to 63 bytes), the
 * values are used in place. */
#ifndef M8_REQBUILD_H
#define M8_REQBUILD_H

#include <stdio.h>
#include <string.h>

#include "http/http.h"

#define M8T_REQ_MAX_PARAMS 32

/* Parses the params of base, then those of kv (either NULL-terminated, or
 * NULL for none; at most M8T_REQ_MAX_PARAMS together, more are left out)
 * and the body body[0..blen) into req; returns m8_req_from_params()'s code. */
static __attribute__((unused)) int m8t_req_kv(m8_request *req, const char *const *base,
                                              const char *const *kv, const char *body, size_t blen)
{
    m8_pair ps[M8T_REQ_MAX_PARAMS];
    char names[M8T_REQ_MAX_PARAMS][64];
    size_t n = 0;
    const char *const *lists[2] = {base, kv};
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; lists[l] && lists[l][i] && n < M8T_REQ_MAX_PARAMS; i++) {
            const char *s = lists[l][i];
            const char *eq = strchr(s, '=');
            snprintf(names[n], sizeof names[n], "%.*s", (int)(eq - s), s);
            ps[n] = (m8_pair){names[n], eq + 1};
            n++;
        }
    }
    return m8_req_from_params(req, ps, n, body, blen);
}

#endif
