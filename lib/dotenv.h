/* dotenv.h - the .env parser (CONTRACT.md Part A 1.1, python-dotenv subset).
 * Pure: bytes in, pairs out; no I/O.  Fuzzed by tests/fuzz/fuzz_dotenv.c.
 *
 * Grammar: blank lines and lines starting with '#' are skipped; optional
 * "export " prefix; KEY = value with spaces around '=' trimmed; a value may
 * be single-quoted (literal), double-quoted (escapes \n \t \r \\ \" \'), or
 * unquoted (ends at " #", trailing spaces trimmed); ${NAME} is interpolated
 * in every form from earlier keys of the file, then from lookup(); a repeated
 * key: the last wins.  A quoted value may span lines. */
#ifndef M8_DOTENV_H
#define M8_DOTENV_H

#include "common.h"

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
