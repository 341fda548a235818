/* json.c - reading whole JSON documents (json.h). */
#include "core/json.h"

#include <json-c/json.h>
#include <limits.h>
#include <locale.h>
#include <stdatomic.h>

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

/* The C locale object, made once and kept for the process (NULL when
 * newlocale(3) fails).  json-c's tokener switches the thread to a copy of
 * its locale with LC_NUMERIC "C" on every call: duplocale(3), newlocale(3)
 * and freelocale(3), each taking the C library's locale lock.  When the
 * thread already runs in the C locale object these are cheap (glibc hands
 * the object back without copying), so the parse runs with the thread
 * switched to it by uselocale(3); numbers are read in the C locale
 * either way. */
static locale_t c_locale(void)
{
    static _Atomic(locale_t) cached;
    locale_t l = atomic_load_explicit(&cached, memory_order_acquire);
    if (l)
        return l;
    locale_t made = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!made)
        return (locale_t)0;
    locale_t none = (locale_t)0;
    if (atomic_compare_exchange_strong_explicit(&cached, &none, made, memory_order_acq_rel,
                                                memory_order_acquire))
        return made;
    freelocale(made); /* another thread made it first */
    return none;
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
        locale_t c = c_locale();
        locale_t old = c ? uselocale(c) : (locale_t)0; /* 0: parse in the thread's locale */
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
        if (old)
            uselocale(old);
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
