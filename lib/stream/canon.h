/* canon.h - the canonical JSON of doc/wire.md#canonical-json: the bytes the
 * issuer HMACs, i.e. Python's json.dumps(value, sort_keys=True,
 * separators=(",", ":")) with ensure_ascii and allow_nan.  The one
 * hand-written JSON serializer of the project (json-c's own output escapes
 * '/', writes raw UTF-8, keeps insertion order and formats doubles its own
 * way).  Pure: no I/O.
 *
 * Numbers.  A json-c int is written in plain decimal (int64 or uint64).  A
 * json-c double is written as Python's repr of its value (shortest digits
 * that round-trip; fixed notation for decimal exponents -4..15, otherwise
 * d.ddde+XX; NaN, Infinity, -Infinity), unless it carries the text of an
 * integer token (json_object_new_double_s with "-?[0-9]+"): then it is that
 * integer, written exactly.  m8_canon_parse uses this to keep integers that
 * json-c cannot hold (beyond int64/uint64), so 10**20 stays
 * 100000000000000000000 as in Python. */
#ifndef M8_CANON_H
#define M8_CANON_H

#include "core/common.h"

struct json_object;

/* Longest text m8_canon_double writes, with its NUL. */
#define M8_CANON_DOUBLE_MAX 32u

/* Appends the canonical JSON of v (NULL is JSON null) to out.  Returns 0,
 * M8_EINVAL for a string or key that is not valid UTF-8 (Python strings
 * always are), M8_EDEPTH past M8_MAX_JSON_DEPTH levels, M8_ETOOBIG when
 * out's maximum is reached, M8_ENOMEM.  On error out holds a partial text. */
M8_INTERNAL int m8_canon_write(m8_buf *out, struct json_object *v);

/* Python's repr(float(x)) into dst (at least M8_CANON_DOUBLE_MAX bytes);
 * returns the length. */
M8_INTERNAL size_t m8_canon_double(char *dst, double x);

/* Parses s[0..len) the way the stream reads event data (json-c strict,
 * UTF-8 validated, depth M8_MAX_JSON_DEPTH, one value then only
 * whitespace), with Python's number model: NaN, Infinity and -Infinity
 * accepted, integers of any size kept exactly (see above).  0 and *out
 * (caller puts; NULL for the JSON text null), or M8_EPARSE with *why (a
 * static description) when given, or M8_ENOMEM.
 * Known differences from Python's json.loads, none of them reachable by
 * what the issuer sends: a lone surrogate escape (\ud800) becomes U+FFFD;
 * a member name is cut at an escaped NUL (\u0000); an out-of-range integer
 * in a document that also repeats a member name is refused. */
M8_INTERNAL int m8_canon_parse(const char *s, size_t len, struct json_object **out,
                               const char **why);

#endif
