/* http_int.h - private to request.c, codec.c and response.c: the text
 * helpers they share. */
#ifndef M8_HTTP_INT_H
#define M8_HTTP_INT_H

#include "http/http.h"

/* Replaces invalid UTF-8 in s[0..n) by U+FFFD, like Python's unquote();
 * returns s itself when it is valid, else a copy in the arena (NULL when
 * out of memory). */
M8_INTERNAL char *m8__http_utf8_fix(m8_arena *a, char *s, size_t n);
/* True for a non-empty RFC 9110 token (a header name). */
M8_INTERNAL bool m8__http_is_token(const char *s);

#endif
