/* json.c - reading whole JSON documents (json.h). */
#include "core/json.h"

#include <json-c/json.h>
#include <limits.h>

static bool json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

json_tokener *m8_json_tokener_new(int depth)
{
    json_tokener *tok = json_tokener_new_ex(depth);
    if (tok)
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    return tok;
}

struct json_object *m8_json_parse_with(json_tokener *tok, const char *s, size_t len, size_t *err_at,
                                       const char **why)
{
    size_t at = 0;
    const char *reason = NULL;
    json_object *obj = NULL;
    if (len == 0) {
        reason = "unexpected end of data";
    } else if (len > INT_MAX) {
        reason = "document too large";
    } else if (!tok) {
        reason = "out of memory";
    } else {
        json_tokener_reset(tok);
        obj = json_tokener_parse_ex(tok, s, (int)len);
        enum json_tokener_error err = json_tokener_get_error(tok);
        at = json_tokener_get_parse_end(tok);
        if (err == json_tokener_continue) {
            /* a number or literal at the very end: a NUL finishes it */
            obj = json_tokener_parse_ex(tok, "", 1);
            err = json_tokener_get_error(tok);
            at = len;
            if (err == json_tokener_continue)
                reason = "unexpected end of data";
        }
        if (!reason && err != json_tokener_success)
            reason = json_tokener_error_desc(err);
        /* json-c stops after the value (or at a NUL byte, which is then
         * refused here): only whitespace may follow */
        for (size_t i = at; !reason && i < len; i++) {
            if (!json_ws(s[i])) {
                at = i;
                reason = "Extra data";
            }
        }
    }
    if (reason) {
        json_object_put(obj);
        obj = NULL;
        if (err_at)
            *err_at = at;
        if (why)
            *why = reason;
    }
    return obj;
}

struct json_object *m8_json_parse(const char *s, size_t len, int depth, size_t *err_at,
                                  const char **why)
{
    json_tokener *tok = len && len <= INT_MAX ? m8_json_tokener_new(depth) : NULL;
    json_object *obj = m8_json_parse_with(tok, s, len, err_at, why);
    if (tok)
        json_tokener_free(tok);
    return obj;
}
