/* settings_int.h - private to settings.c, settings_fields.c and
 * settings_model.c: the field table and the helpers they share. */
#ifndef M8_SETTINGS_INT_H
#define M8_SETTINGS_INT_H

#include "config/settings.h"

#include <stdbool.h>
#include <stddef.h>

enum { F_STR, F_SECRET, F_PATH, F_BOOL, F_INT, F_FLOAT, F_ENUM, F_URL, F_LIST };
enum {
    V_NONE,
    V_HOST,
    V_KEY,
    V_SLUG,
    V_API_PREFIX,
    V_PROJECT,
    V_EMAIL,
    V_ORIGINS,
    V_HTTP,
    V_ROLE,
    V_STATUS
};
#define REQ 1u         /* required */
#define REQ_DB 2u      /* required when the service uses a database (doc/settings.md#database) */
#define EMPTY_UNSET 4u /* a list whose empty value means unset */
#define ISS 8u         /* fcgim8-issuer only: unknown in a consumer (doc/issuer.md#settings) */
#define REQ_ISS 16u    /* required when the app is fcgim8-issuer */

typedef struct field {
    const char *name;
    unsigned char type, check, flags;
    size_t off;
    const char *def;          /* default as text, NULL = unset */
    long long lo, hi;         /* int bounds */
    double fmax;              /* float bounds: > 0 and <= fmax */
    const char *const *names; /* enum values; the index is the C value */
} field;

/* The number of entries of m8__settings_fields (checked where it is defined). */
#define NFIELDS 184u
M8_INTERNAL extern const field m8__settings_fields[NFIELDS];

#define AT(s, f, T) ((T *)(void *)((char *)(s) + (f)->off))

/* The index of the field named name (any case), -1 when none is. */
M8_INTERNAL int m8__field_index(const char *name);
/* The default of field f for a consumer (issuer false) or fcgim8-issuer. */
M8_INTERNAL const char *m8__field_default(const field *f, bool issuer);
/* settings_issuer.c: the checks only fcgim8-issuer makes, after the common
 * ones (doc/issuer.md#settings); the first failure adds its line. */
M8_INTERNAL int m8__issuer_checks(m8_settings *s, m8_errlist *errs);
/* The public half of the PEM private key priv for s's algorithm, as the
 * verification key text when ACCESS_PUBLIC_KEY_FILE is unset, or a check
 * that ACCESS_PUBLIC_KEY_FILE is that half.  0 or an error line. */
M8_INTERNAL int m8__issuer_public_key(m8_settings *s, const char *priv, m8_errlist *errs);
/* True for NULL or a text of only whitespace. */
M8_INTERNAL bool m8__blank(const char *s);
/* A trimmed copy of v (caller frees); NULL when out of memory. */
M8_INTERNAL char *m8__dup_trimmed(const char *v);
/* Wipes and frees a NUL-terminated secret; NULL is fine. */
M8_INTERNAL void m8__wipe_free(char *p);
/* Parses v into field f of s.  Returns an error reason or NULL. */
M8_INTERNAL const char *m8__parse_field(m8_settings *s, const field *f, const char *v, char *buf,
                                        size_t blen);
/* The name/value list behind m8_setting(). */
M8_INTERNAL int m8__build_kv(m8_settings *s, const bool *has_value);
/* The model checks in order; the first failure adds its line and stops. */
M8_INTERNAL int m8__model_checks(m8_settings *s, m8_errlist *errs);
/* The computed values. */
M8_INTERNAL int m8__computed(m8_settings *s);

#endif
