/* dotenv.h - the .env parser (doc/settings.md#the-env-file-syntax, a
 * python-dotenv subset).
 * Pure: bytes in, pairs out; no I/O.  Fuzzed by tests/fuzz/fuzz_dotenv.c.
 *
 * Grammar: blank lines and lines starting with '#' are skipped; optional
 * "export " prefix; KEY = value with spaces around '=' trimmed; a value may
 * be single-quoted (literal except \\ and \'), double-quoted (escapes \\ \' \"
 * \a \b \f \n \r \t \v; others kept as written), or unquoted (ends at a
 * blank followed by '#', trailing blanks trimmed); ${NAME} and ${NAME:-default}
 * are interpolated in every form from earlier keys of the file, then from
 * lookup() (the default applies only when NAME is absent); a repeated key:
 * the last wins.  A quoted value may span lines.  Where python-dotenv would
 * skip a statement it cannot parse, this parser fails with its line number.
 * The input must be UTF-8 without NUL bytes; a leading BOM is skipped; no
 * line and no value may exceed M8_MAX_ENV_LINE_BYTES, and all values together
 * (after interpolation) not M8_MAX_ENV_FILE_BYTES. */
#ifndef M8_DOTENV_H
#define M8_DOTENV_H

#include "core/common.h"

typedef struct m8_dotenv_pair {
    char *key;
    char *value;
    unsigned line; /* 1-based line where the key was defined */
} m8_dotenv_pair;

typedef struct m8_dotenv {
    m8_dotenv_pair *pairs; /* in file order, duplicates already collapsed (last wins) */
    size_t n;
} m8_dotenv;

/* Resolves ${NAME} not defined earlier in the file (may be NULL). */
typedef const char *(*m8_dotenv_lookup)(const char *name, void *data);

/* Parses len bytes (at most M8_MAX_ENV_FILE_BYTES).  On error returns
 * M8_EPARSE / M8_ETOOBIG and writes "line N: reason" to err. */
M8_INTERNAL int m8_dotenv_parse(const char *text, size_t len, m8_dotenv_lookup lookup,
                                void *lookup_data, m8_dotenv *out, char *err, size_t errlen);
M8_INTERNAL void m8_dotenv_free(m8_dotenv *d);

#endif
