/* form.h - the login form of the issuer (doc/issuer.md#login-form): the body
 * of POST {API_PREFIX}/login/access-token read the way FastAPI's
 * OAuth2PasswordRequestForm reads it through Starlette and python-multipart,
 * and the rate-limit keys of a login attempt.  Pure: bytes in, fields or a
 * ready JSON error body out; no I/O. */
#ifndef M8_ISSUER_FORM_H
#define M8_ISSUER_FORM_H

#include "core/common.h"

#define M8_LOGIN_FORM_DEFAULT_MAX_BODY 16384u /* body bytes when max_body is 0 */
#define M8_LOGIN_FORM_MAX_BODY_CAP (1u << 20) /* max_body is clamped to this */
#define M8_LOGIN_FORM_MAX_FIELDS 64u          /* form fields, and file parts, per body */
#define M8_LOGIN_FORM_MAX_PART_HEADERS 8u     /* headers of one multipart part */
#define M8_LOGIN_FORM_MAX_HEADER_BYTES 4224u  /* one multipart part header line */
#define M8_LOGIN_FORM_MAX_BOUNDARY 256u       /* multipart boundary bytes */
#define M8_LOGIN_MAX_USERNAME 320u            /* decoded username bytes */
#define M8_LOGIN_MAX_PASSWORD 4096u           /* decoded password bytes */

#define M8_LOGIN_EMAIL_KEY_CHARS 255u /* characters kept in the per-email key */
#define M8_LOGIN_IP_KEY_CHARS 45u     /* characters kept in the per-IP key */
/* Buffer sizes for the keys: four UTF-8 bytes a character and a NUL. */
#define M8_LOGIN_EMAIL_KEY_BUF (4u * M8_LOGIN_EMAIL_KEY_CHARS + 1u)
#define M8_LOGIN_IP_KEY_BUF (4u * M8_LOGIN_IP_KEY_CHARS + 1u)

/* The fields of a login form.  Every value is valid UTF-8, NUL-terminated at
 * [len] and may hold NUL bytes before it; all live in the arena given to
 * m8_login_form_parse.  grant_type, client_id and client_secret are NULL
 * when absent or empty; scope is "" then. */
typedef struct m8_login_form {
    char *username;
    size_t username_len;
    char *password;
    size_t password_len;
    char *grant_type;
    size_t grant_type_len;
    char *scope;
    size_t scope_len;
    char *client_id;
    size_t client_id_len;
    char *client_secret;
    size_t client_secret_len;
    bool bad_chars; /* username or password holds a NUL byte */
} m8_login_form;

/* Parses a login body.  content_type is the request's Content-Type (NULL when
 * absent); max_body is the body limit (0 = M8_LOGIN_FORM_DEFAULT_MAX_BODY,
 * clamped to M8_LOGIN_FORM_MAX_BODY_CAP).
 * Returns 0 with every field in *out; or an HTTP status with the JSON body
 * of the answer appended to err (which the caller has initialised):
 *   413 {"detail":"Request Entity Too Large"}: body over max_body;
 *   400 {"detail":"..."}: a malformed multipart body, a part without a name,
 *       too many fields or files (Starlette's texts);
 *   422 {"detail":[...]}: FastAPI's list for missing, empty, mistyped or
 *       over-long fields and a grant_type other than "password" (any other
 *       media type, JSON included, reads as an empty form);
 *   422 {"detail":"Invalid characters in credentials"}: username or password
 *       holds a NUL byte; then *out is filled too and out->bad_chars is set,
 *       so the caller may count the attempt first.
 * M8_ENOMEM when the arena or err is exhausted.  No value is ever written to
 * err except grant_type's.  Wipe *out with m8_login_form_wipe. */
M8_INTERNAL int m8_login_form_parse(m8_arena *a, const char *content_type, const char *body,
                                    size_t body_len, size_t max_body, m8_login_form *out,
                                    m8_buf *err);

/* The six fields of the token endpoint's form, decoded but not validated:
 * the first half of m8_login_form_parse, shared with the client-credentials
 * form (form_cc.c).  v[i] is NULL when the field is absent, empty or a file
 * part; kind[i] is 0 (absent), 1 (text) or 2 (file part). */
enum {
    M8_FORM_GRANT_TYPE,
    M8_FORM_USERNAME,
    M8_FORM_PASSWORD,
    M8_FORM_SCOPE,
    M8_FORM_CLIENT_ID,
    M8_FORM_CLIENT_SECRET,
    M8_FORM_NFIELDS
};
typedef struct m8_form_values {
    char *v[M8_FORM_NFIELDS];
    size_t len[M8_FORM_NFIELDS];
    unsigned char kind[M8_FORM_NFIELDS];
} m8_form_values;

/* Reads a body as m8_login_form_parse does (same limits, same 400 and 413
 * answers in err) without the field checks.  0 with *out filled, an HTTP
 * status, or M8_ENOMEM. */
M8_INTERNAL int m8__form_read(m8_arena *a, const char *content_type, const char *body,
                              size_t body_len, size_t max_body, m8_form_values *out, m8_buf *err);

/* Overwrites every value of f with zeros and clears f (NULL is fine). */
M8_INTERNAL void m8_login_form_wipe(m8_login_form *f);

/* The username as looked up: ASCII and Unicode white space trimmed at both
 * ends, ASCII letters lower-cased.  out has room for n + 1 bytes; returns the
 * length written (NUL-terminated). */
M8_INTERNAL size_t m8_login_username_norm(const char *s, size_t n, char *out);

/* The per-email rate-limit key part: the normalised username
 * (m8_login_username_norm) without non-printable characters, cut to its first
 * M8_LOGIN_EMAIL_KEY_CHARS characters.  out has M8_LOGIN_EMAIL_KEY_BUF bytes;
 * returns the length written (NUL-terminated).  Invalid UTF-8 bytes are
 * dropped. */
M8_INTERNAL size_t m8_login_email_key(const char *s, size_t n, char *out);

/* The per-IP rate-limit key part: the client address without non-printable
 * characters, cut to its first M8_LOGIN_IP_KEY_CHARS characters.  out has
 * M8_LOGIN_IP_KEY_BUF bytes; returns the length written (NUL-terminated). */
M8_INTERNAL size_t m8_login_ip_key(const char *s, size_t n, char *out);

/* Length of the valid UTF-8 sequence at p (its code point in *cp), or 0 with
 * *bad = the bytes that Python's "replace" error handler turns into one
 * U+FFFD.  Shared by form.c and form_keys.c. */
M8_INTERNAL size_t m8__form_utf8_seq(const unsigned char *p, size_t n, size_t *bad, unsigned *cp);

#endif
