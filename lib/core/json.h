/* json.h - the one way the library reads a whole JSON document from the
 * network or a setting: json-c in strict mode, UTF-8 validated, bounded
 * depth, one value followed only by whitespace.  Pure. */
#ifndef M8_JSON_H
#define M8_JSON_H

#include "core/common.h"

struct json_object;

/* Parses s[0..len) as exactly one JSON value nested at most depth deep.
 * Returns it (caller puts), or NULL and, when given, *err_at (byte offset)
 * and *why (a static description).  A NUL byte anywhere is refused.  The
 * JSON text "null" gives NULL with *why left untouched. */
M8_INTERNAL struct json_object *m8_json_parse(const char *s, size_t len, int depth, size_t *err_at,
                                              const char **why);

/* The same with a caller-owned tokener made by m8_json_tokener_new (reset
 * here; reusing one saves its allocation on hot paths such as JWS parts). */
struct json_tokener;
M8_INTERNAL struct json_tokener *m8_json_tokener_new(int depth);
M8_INTERNAL struct json_object *m8_json_parse_with(struct json_tokener *tok, const char *s,
                                                   size_t len, size_t *err_at, const char **why);

#endif
