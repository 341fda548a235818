/* users_body.c - pydantic-style checks of the user routes' bodies and path
 * ids, and their 422 lists (doc/issuer.md#users-and-profile). */
#include "issuer/users_body.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "issuer/service.h"

const char *const m8_issuer_roles[5] = {"superadmin", "admin", "writer", "reader", "user"};

int m8_issuer_role_rank(const char *role)
{
    for (int i = 0; role && i < 5; i++) {
        if (strcmp(role, m8_issuer_roles[i]) == 0)
            return i;
    }
    return -1;
}

static void add_error(json_object *list, const char *type, const char *where, const char *field,
                      const char *msg, json_object *input, json_object *ctx)
{
    json_object *e = json_object_new_object();
    json_object *loc = json_object_new_array();
    json_object_array_add(loc, json_object_new_string(where));
    if (field)
        json_object_array_add(loc, json_object_new_string(field));
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "loc", loc);
    json_object_object_add(e, "msg", json_object_new_string(msg));
    json_object_object_add(e, "input", input ? json_object_get(input) : NULL);
    if (ctx)
        json_object_object_add(e, "ctx", ctx);
    json_object_array_add(list, e);
}

void m8_ub_error(m8_ub *b, const char *type, const char *field, const char *msg, json_object *input,
                 json_object *ctx)
{
    add_error(b->errs, type, "body", field, msg, input, ctx);
}

static json_object *ctx_one(const char *key, json_object *v)
{
    json_object *c = json_object_new_object();
    json_object_object_add(c, key, v);
    return c;
}

int m8_ub_unprocessable(m8_request *req, json_object *errs)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "detail", errs);
    return m8_res_json(req, 422, o);
}

int m8_ub_begin(m8_request *req, m8_ub *b)
{
    b->req = req;
    b->body = m8_req_json(req);
    b->errs = json_object_new_array();
    if (json_object_is_type(b->body, json_type_object))
        return 0;
    add_error(b->errs, "model_attributes_type", "body", NULL,
              "Input should be a valid dictionary or object to extract fields from", b->body, NULL);
    m8_ub_unprocessable(req, b->errs);
    b->errs = NULL;
    return -1;
}

int m8_ub_end(m8_ub *b)
{
    if (json_object_array_length(b->errs) == 0) {
        json_object_put(b->errs);
        b->errs = NULL;
        return 0;
    }
    m8_ub_unprocessable(b->req, b->errs);
    b->errs = NULL;
    return -1;
}

void m8_ub_model_error(m8_ub *b, const char *msg)
{
    char m[256];
    snprintf(m, sizeof m, "Value error, %s", msg);
    add_error(b->errs, "value_error", "body", NULL, m, b->body,
              ctx_one("error", json_object_new_string(msg)));
}

void m8_ub_forbid(m8_ub *b, const char *name)
{
    json_object *v;
    if (json_object_object_get_ex(b->body, name, &v))
        add_error(b->errs, "extra_forbidden", "body", name, "Extra inputs are not permitted", v,
                  NULL);
}

/* Characters (code points) of UTF-8 text, as Python counts them. */
static size_t chars_of(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Presence of name: 0 absent (missing error when required), 1 null (when
 * nullable: *out NULL), 2 a value in *v. */
static int presence(m8_ub *b, const char *name, bool nullable, bool required, json_object **v)
{
    if (!json_object_object_get_ex(b->body, name, v)) {
        if (required)
            add_error(b->errs, "missing", "body", name, "Field required", b->body, NULL);
        return 0;
    }
    return !*v && nullable ? 1 : 2;
}

int m8_ub_str(m8_ub *b, const char *name, size_t min, size_t max, bool nullable, bool required,
              const char **out)
{
    json_object *v;
    int p = presence(b, name, nullable, required, &v);
    *out = NULL;
    if (p == 0)
        return required ? -1 : 0;
    if (p == 1)
        return 1;
    if (!json_object_is_type(v, json_type_string)) {
        add_error(b->errs, "string_type", "body", name, "Input should be a valid string", v, NULL);
        return -1;
    }
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v), c = chars_of(s, n);
    char msg[96];
    if (c < min) {
        snprintf(msg, sizeof msg, "String should have at least %zu character%s", min,
                 min == 1 ? "" : "s");
        add_error(b->errs, "string_too_short", "body", name, msg, v,
                  ctx_one("min_length", json_object_new_int64((int64_t)min)));
        return -1;
    }
    if (c > max) {
        snprintf(msg, sizeof msg, "String should have at most %zu character%s", max,
                 max == 1 ? "" : "s");
        add_error(b->errs, "string_too_long", "body", name, msg, v,
                  ctx_one("max_length", json_object_new_int64((int64_t)max)));
        return -1;
    }
    if (memchr(s, '\0', n)) { /* a database text cannot hold one */
        add_error(b->errs, "value_error", "body", name, "Value error, NUL character", v,
                  ctx_one("error", json_object_new_string("NUL character")));
        return -1;
    }
    *out = s;
    return 1;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The reason an address is not one, or NULL. */
static const char *email_reason(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at)
        return "An email address must have an @-sign.";
    if (memchr(at + 1, '@', n - (size_t)(at - s) - 1))
        return "The email address is not valid. It must have exactly one @-sign.";
    size_t local = (size_t)(at - s), dom = n - local - 1;
    if (local == 0)
        return "There must be something before the @-sign.";
    if (dom == 0)
        return "There must be something after the @-sign.";
    if (local > 64)
        return "The email address is too long before the @-sign.";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c == 0x7f || c == '"' || c == '(' || c == ')' || c == ',' || c == ':' ||
            c == ';' || c == '<' || c == '>' || c == '[' || c == '\\' || c == ']')
            return "The email address contains invalid characters.";
    }
    const char *d = at + 1;
    if (!memchr(d, '.', dom))
        return "The part after the @-sign is not valid. It should have a period.";
    if (d[0] == '.' || d[dom - 1] == '.' || d[0] == '-' || d[dom - 1] == '-')
        return "An email address cannot have a period or hyphen at the start or end of the "
               "domain.";
    for (size_t i = 0; i < dom; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.' && i + 1 < dom && d[i + 1] == '.')
            return "An email address cannot have two periods in a row.";
        if (c < 0x80 && !(c == '.' || c == '-' || (c >= '0' && c <= '9') ||
                          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return "The part after the @-sign contains invalid characters.";
    }
    if (s[0] == '.' || s[local - 1] == '.')
        return "An email address cannot start or end with a period.";
    return NULL;
}

int m8_ub_email(m8_ub *b, const char *name, bool nullable, bool required, const char **out)
{
    json_object *v;
    int p = presence(b, name, nullable, required, &v);
    *out = NULL;
    if (p == 0)
        return required ? -1 : 0;
    if (p == 1)
        return 1;
    if (!json_object_is_type(v, json_type_string)) {
        add_error(b->errs, "string_type", "body", name, "Input should be a valid string", v, NULL);
        return -1;
    }
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    while (n && is_space(*s)) {
        s++;
        n--;
    }
    while (n && is_space(s[n - 1]))
        n--;
    if (chars_of(s, n) > 255) {
        add_error(b->errs, "string_too_long", "body", name,
                  "String should have at most 255 characters", v,
                  ctx_one("max_length", json_object_new_int64(255)));
        return -1;
    }
    const char *why =
        memchr(s, '\0', n) ? "The email address contains invalid characters." : email_reason(s, n);
    if (!why && m8_issuer_email_reserved(s, n))
        why = "The domain " M8_SA_EMAIL_DOMAIN " is reserved for service accounts.";
    if (why) {
        char msg[192];
        snprintf(msg, sizeof msg, "value is not a valid email address: %s", why);
        add_error(b->errs, "value_error", "body", name, msg, v,
                  ctx_one("reason", json_object_new_string(why)));
        return -1;
    }
    char *e = m8_req_alloc(b->req, n + 1);
    if (!e)
        return -1;
    for (size_t i = 0; i < n; i++)
        e[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    e[n] = '\0';
    *out = e;
    return 1;
}

int m8_ub_avatar(m8_ub *b, const char *name, const char **out)
{
    int r = m8_ub_str(b, name, 0, 255, true, false, out);
    if (r != 1 || !*out)
        return r;
    const char *s = *out;
    size_t skip = strncmp(s, "http://", 7) == 0 ? 7 : strncmp(s, "https://", 8) == 0 ? 8 : 0;
    bool good = skip && s[skip] && s[skip] != '/' && s[skip] != '?' && s[skip] != '#';
    for (const char *c = s; good && *c; c++)
        good = !is_space(*c) && (unsigned char)*c >= 0x20 && *c != 0x7f;
    if (good)
        return 1;
    json_object *v = NULL;
    json_object_object_get_ex(b->body, name, &v);
    add_error(
        b->errs, "value_error", "body", name,
        "Value error, avatar must be an http:// or https:// URL", v,
        ctx_one("error", json_object_new_string("avatar must be an http:// or https:// URL")));
    *out = NULL;
    return -1;
}

int m8_ub_bool(m8_ub *b, const char *name, bool *out)
{
    json_object *v;
    if (!json_object_object_get_ex(b->body, name, &v) || !v) /* null: not given */
        return 0;
    if (json_object_is_type(v, json_type_boolean)) {
        *out = json_object_get_boolean(v);
        return 1;
    }
    if (json_object_is_type(v, json_type_int)) {
        int64_t i = json_object_get_int64(v);
        if (i == 0 || i == 1) {
            *out = i == 1;
            return 1;
        }
    } else if (json_object_is_type(v, json_type_string)) {
        static const char *const t[] = {"1", "on", "t", "true", "y", "yes"};
        static const char *const f[] = {"0", "off", "f", "false", "n", "no"};
        const char *s = json_object_get_string(v);
        for (size_t i = 0; i < M8_ARRAY_LEN(t); i++) {
            if (m8_strcaseeq(s, t[i]) || m8_strcaseeq(s, f[i])) {
                *out = m8_strcaseeq(s, t[i]);
                return 1;
            }
        }
    } else {
        add_error(b->errs, "bool_type", "body", name, "Input should be a valid boolean", v, NULL);
        return -1;
    }
    add_error(b->errs, "bool_parsing", "body", name,
              "Input should be a valid boolean, unable to interpret input", v, NULL);
    return -1;
}

int m8_ub_enum(m8_ub *b, const char *name, const char *const *values, size_t nvalues, bool nullable,
               const char **out)
{
    json_object *v;
    int p = presence(b, name, nullable, false, &v);
    *out = NULL;
    if (p != 2)
        return p;
    const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
    for (size_t i = 0; s && i < nvalues; i++) {
        if (strcmp(s, values[i]) == 0) {
            *out = values[i];
            return 1;
        }
    }
    char expected[160] = "";
    size_t len = 0;
    for (size_t i = 0; i < nvalues && len < sizeof expected; i++) {
        int w = snprintf(expected + len, sizeof expected - len, "%s'%s'",
                         i == 0             ? ""
                         : i + 1 == nvalues ? " or "
                                            : ", ",
                         values[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    char msg[192];
    snprintf(msg, sizeof msg, "Input should be %s", expected);
    add_error(b->errs, "enum", "body", name, msg, v,
              ctx_one("expected", json_object_new_string(expected)));
    return -1;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

int m8_ub_path_uuid(m8_request *req, const char *name, char out[37])
{
    const char *v = m8_req_path_param(req, name);
    const char *s = v ? v : "";
    size_t n = strlen(s);
    if (n >= 9 && strncasecmp(s, "urn:uuid:", 9) == 0) {
        s += 9;
        n -= 9;
    } else if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
        s++;
        n -= 2;
    }
    char hex[33];
    size_t k = 0;
    bool good = n == 32 || n == 36;
    for (size_t i = 0; good && i < n; i++) {
        if (n == 36 && (i == 8 || i == 13 || i == 18 || i == 23))
            good = s[i] == '-';
        else if ((good = hexval(s[i]) >= 0))
            hex[k++] = (char)(s[i] | 0x20);
    }
    if (good && k == 32) {
        snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
        return 0;
    }
    char why[160];
    size_t bad = 0;
    while (bad < n && (hexval(s[bad]) >= 0 || s[bad] == '-'))
        bad++;
    if (bad < n && (unsigned char)s[bad] >= 0x20 && (unsigned char)s[bad] < 0x7f)
        snprintf(why, sizeof why,
                 "invalid character: expected an optional prefix of `urn:uuid:` followed by "
                 "[0-9a-fA-F-], found `%c` at %zu",
                 s[bad], bad + 1);
    else
        snprintf(why, sizeof why, "invalid length: expected length 32 for simple format, found %zu",
                 n);
    char msg[200];
    snprintf(msg, sizeof msg, "Input should be a valid UUID, %s", why);
    json_object *errs = json_object_new_array();
    json_object *in = json_object_new_string(v ? v : "");
    add_error(errs, "uuid_parsing", "path", name, msg, in,
              ctx_one("error", json_object_new_string(why)));
    json_object_put(in);
    m8_ub_unprocessable(req, errs);
    return -1;
}

int m8_ub_query_int(m8_request *req, json_object *errs, const char *name, long long def,
                    long long lo, long long *out)
{
    const char *v = m8_req_query(req, name);
    *out = def;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    json_object *in = json_object_new_string(v);
    int rc = -1;
    if (!*v || *end || errno == ERANGE) {
        add_error(errs, "int_parsing", "query", name,
                  "Input should be a valid integer, unable to parse string as an integer", in,
                  NULL);
    } else if (x < lo) {
        char msg[96];
        snprintf(msg, sizeof msg, "Input should be greater than or equal to %lld", lo);
        add_error(errs, "greater_than_equal", "query", name, msg, in,
                  ctx_one("ge", json_object_new_int64(lo)));
    } else {
        *out = x;
        rc = 0;
    }
    json_object_put(in);
    return rc;
}
