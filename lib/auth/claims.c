/* claims.c - the access-token claims (jwt.h): the claim profile, time,
 * issuer and audience checks, the claims model and the role hierarchy.
 * Reads a payload that jwt.c parsed; no I/O, no clock. */
#include "auth/jwt.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#include "core/json.h"

/* The claims this module reads, found in one pass over the payload's
 * members instead of a hash lookup per check (a third of the claims time). */
/* clang-format off */
enum {
    C_EXP, C_SUB, C_JTI, C_TYPE, C_IAT, C_NBF, /* the required claims, in profile order */
    C_ISS, C_AUD, C_EMAIL, C_FULL_NAME, C_AVATAR, C_IS_ACTIVE, C_EMAIL_VERIFIED, C_IS_SUPERUSER,
    C_ROLE, C_TENANT_ID, C_COUNT
};

static const char *const claim_names[C_COUNT] = {
    "exp",  "sub",       "jti",    "type",      "iat",            "nbf",
    "iss",  "aud",       "email",  "full_name", "avatar",         "is_active",
    "email_verified", "is_superuser", "role", "tenant_id",
};
/* clang-format on */

typedef struct claim_ix {
    bool has[C_COUNT];
    struct json_object *v[C_COUNT]; /* NULL for JSON null */
} claim_ix;

/* The claims whose names start with c; C_COUNT ends each list.  A key is
 * compared with one to four names instead of all.  A name added to
 * claim_names goes into its letter's list here too. */
static const unsigned char *claims_starting(char c)
{
    static const unsigned char none[] = {C_COUNT}, a[] = {C_AUD, C_AVATAR, C_COUNT},
                               e[] = {C_EXP, C_EMAIL, C_EMAIL_VERIFIED, C_COUNT},
                               f[] = {C_FULL_NAME, C_COUNT}, j[] = {C_JTI, C_COUNT},
                               i[] = {C_IAT, C_ISS, C_IS_ACTIVE, C_IS_SUPERUSER, C_COUNT},
                               n[] = {C_NBF, C_COUNT}, r[] = {C_ROLE, C_COUNT},
                               s[] = {C_SUB, C_COUNT}, t[] = {C_TYPE, C_TENANT_ID, C_COUNT};
    switch (c) {
    case 'a': return a;
    case 'e': return e;
    case 'f': return f;
    case 'i': return i;
    case 'j': return j;
    case 'n': return n;
    case 'r': return r;
    case 's': return s;
    case 't': return t;
    default: return none;
    }
}

/* strcmp(a, b) == 0 for the short names here, without a call per key. */
static bool same_name(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static void claims_index(struct json_object *pl, claim_ix *ix)
{
    memset(ix, 0, sizeof *ix);
    json_object_object_foreach(pl, k, v)
    {
        for (const unsigned char *c = claims_starting(k[0]); *c != C_COUNT; c++) {
            /* k[0] matches; every name has three bytes or more, so k[1]
             * is not NUL when it matches too */
            const char *name = claim_names[*c];
            if (k[1] == name[1] && same_name(k + 2, name + 2)) {
                ix->has[*c] = true; /* names are unique: duplicates were refused */
                ix->v[*c] = v;
                break;
            }
        }
    }
}

/* A time claim: 1 with the value truncated toward zero (Python int()), 0
 * when absent, -1 when it is not a JSON number (null included) [C]. */
static int time_claim(const claim_ix *ix, int c, long long *out, bool *fraction)
{
    struct json_object *v = ix->v[c];
    if (!ix->has[c])
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v); /* a uint64 past INT64_MAX saturates */
        if (fraction)
            *fraction = false;
        return 1;
    }
    if (json_object_is_type(v, json_type_double)) {
        double d = json_object_get_double(v);
        if (!isfinite(d))
            return -1;
        double t = trunc(d);
        if (fraction)
            *fraction = t != d;
        if (t >= 9.2e18)
            *out = INT64_MAX;
        else if (t <= -9.2e18)
            *out = INT64_MIN;
        else
            *out = (long long)t;
        return 1;
    }
    return -1;
}

/* A string claim without NUL bytes and at most max bytes: 1 (in *out, and
 * its length in *len when given), 0 absent, -1 otherwise. */
static int string_claim(const claim_ix *ix, int c, size_t max, const char **out, size_t *len)
{
    struct json_object *v = ix->v[c];
    if (!ix->has[c])
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return -1;
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n > max || memchr(s, '\0', n))
        return -1;
    *out = s;
    if (len)
        *len = n;
    return 1;
}

static bool set(const char *s)
{
    return s && *s;
}

static bool json_str_eq(struct json_object *v, const char *s)
{
    size_t n = strlen(s);
    return json_object_is_type(v, json_type_string) && (size_t)json_object_get_string_len(v) == n &&
           memcmp(json_object_get_string(v), s, n) == 0;
}

/* A 36-character 8-4-4-4-12 hexadecimal UUID (the issuer's str(uuid)). */
static bool is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
                     (s[i] >= 'A' && s[i] <= 'F'))) {
            return false;
        }
    }
    return true;
}

static bool atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
        return true;
    return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

/* E-mail syntax after the rules of python email-validator (no quoted local
 * parts, no domain literals, no deliverability check): a dot-atom local
 * part of at most 64 bytes, a domain of at least two labels (letters,
 * digits, hyphens, or UTF-8 for IDNs), an ASCII top-level label ending in a
 * letter, not a special-use domain; at most 254 bytes in all. */
static bool is_email(const char *s, size_t n)
{
    const char *at = n ? memchr(s, '@', n) : NULL;
    if (!at || n > 254)
        return false;
    size_t local = (size_t)(at - s), dlen = n - local - 1;
    if (local == 0 || local > 64 || dlen == 0 || dlen > 253)
        return false;
    for (size_t i = 0; i < local; i++) {
        if (s[i] == '.') {
            if (i == 0 || i == local - 1 || s[i - 1] == '.')
                return false;
        } else if (!atext((unsigned char)s[i])) {
            return false;
        }
    }
    const char *d = at + 1;
    size_t labels = 0, start = 0;
    for (size_t i = 0; i <= dlen; i++) {
        if (i == dlen || d[i] == '.') {
            size_t ll = i - start;
            if (ll == 0 || ll > 63 || d[start] == '-' || d[i - 1] == '-')
                return false;
            labels++;
            start = i + 1;
            continue;
        }
        unsigned char c = (unsigned char)d[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c >= 0x80))
            return false;
    }
    static const char *const special[] = {"arpa", "invalid", "local", "localhost", "onion", "test"};
    const char *tld = d + dlen;
    while (tld > d && tld[-1] != '.')
        tld--;
    size_t tlen = (size_t)(d + dlen - tld);
    bool ascii = true;
    for (size_t i = 0; i < tlen; i++)
        ascii = ascii && (unsigned char)tld[i] < 0x80;
    /* An ASCII top-level domain ends in a letter (so never all digits). */
    char last = d[dlen - 1];
    if (labels < 2 || (ascii && !((last >= 'a' && last <= 'z') || (last >= 'A' && last <= 'Z'))))
        return false;
    for (size_t i = 0; i < M8_ARRAY_LEN(special); i++) {
        if (m8_memcaseeq(tld, tlen, special[i]))
            return false;
    }
    return true;
}

static const char *const roles[] = {"superadmin", "admin", "writer", "reader", "user"};

int m8_role_rank(const char *role)
{
    if (!role)
        return -1;
    for (size_t i = 0; i < M8_ARRAY_LEN(roles); i++) {
        if (strcmp(role, roles[i]) == 0)
            return (int)i;
    }
    return -1;
}

bool m8_role_at_least(const char *current, const char *required)
{
    int c = m8_role_rank(current), r = m8_role_rank(required);
    return c >= 0 && r >= 0 && c <= r;
}

void m8_principal_clear(m8_principal *p)
{
    if (!p)
        return;
    free(p->mem);
    memset(p, 0, sizeof *p);
}

/* A bool claim: JSON true/false only [C narrowing of pydantic's lax bool]. */
static bool bool_claim(const claim_ix *ix, int c, bool dflt, bool *out)
{
    *out = dflt;
    if (!ix->has[c])
        return true;
    if (!json_object_is_type(ix->v[c], json_type_boolean))
        return false;
    *out = json_object_get_boolean(ix->v[c]);
    return true;
}

typedef struct span {
    const char *p;
    size_t n;
} span;

/* A "string or null" claim: its bytes in *out (NULL for null/absent);
 * false when it is another type or holds a NUL. */
static bool opt_string(const claim_ix *ix, int c, span *out)
{
    out->p = NULL;
    out->n = 0;
    if (!ix->has[c] || !ix->v[c])
        return true;
    return string_claim(ix, c, M8_MAX_JWT_PART_BYTES, &out->p, &out->n) == 1;
}

/* The principal's strings, in the order of m8_principal. */
enum { P_ID, P_EMAIL, P_FULL_NAME, P_AVATAR, P_ROLE, P_TENANT_ID, P_JTI, P_COUNT };

/* Copies the strings into one block owned by p->mem (one allocation per
 * principal instead of seven); lowered[i] lower-cases ASCII letters. */
static bool principal_strings(m8_principal *p, const span *v, const bool *lowered)
{
    size_t total = 0;
    for (size_t i = 0; i < P_COUNT; i++)
        total += v[i].p ? v[i].n + 1 : 0;
    char *mem = malloc(total ? total : 1), *at = mem;
    if (!mem)
        return false;
    char **field[P_COUNT] = {&p->id,   &p->email,     &p->full_name, &p->avatar,
                             &p->role, &p->tenant_id, &p->jti};
    for (size_t i = 0; i < P_COUNT; i++) {
        *field[i] = NULL;
        if (!v[i].p)
            continue;
        *field[i] = at;
        if (lowered[i]) {
            for (size_t k = 0; k < v[i].n; k++) {
                unsigned char ch = (unsigned char)v[i].p[k];
                at[k] = (char)((unsigned)(ch - 'A') < 26u ? ch + 32 : ch);
            }
        } else {
            memcpy(at, v[i].p, v[i].n);
        }
        at[v[i].n] = '\0';
        at += v[i].n + 1;
    }
    p->mem = mem;
    return true;
}

/* Step 13: the claims model (doc/wire.md#claims-model) and the privilege invariant. */
static m8_jwt_reason claims_model(const claim_ix *ix, m8_principal *p)
{
    static const bool lowered[P_COUNT] = {[P_ID] = true, [P_EMAIL] = true, [P_TENANT_ID] = true};
    span v[P_COUNT] = {{0}};

    /* sub and jti are strings (step 11); sub must be a UUID. */
    if (string_claim(ix, C_SUB, 36, &v[P_ID].p, &v[P_ID].n) != 1 || !is_uuid(v[P_ID].p, v[P_ID].n))
        return M8_JWT_INVALID_PAYLOAD;
    if (string_claim(ix, C_JTI, M8_MAX_JWT_PART_BYTES, &v[P_JTI].p, &v[P_JTI].n) != 1)
        return M8_JWT_INVALID_PAYLOAD;

    const char *s = NULL;
    size_t n = 0;
    if (string_claim(ix, C_EMAIL, M8_MAX_JWT_PART_BYTES, &s, &n) != 1)
        return M8_JWT_INVALID_PAYLOAD;
    n = m8_trim(&s, n);
    if (!is_email(s, n))
        return M8_JWT_INVALID_PAYLOAD;
    v[P_EMAIL].p = s;
    v[P_EMAIL].n = n;

    if (!opt_string(ix, C_FULL_NAME, &v[P_FULL_NAME]) || !opt_string(ix, C_AVATAR, &v[P_AVATAR]))
        return M8_JWT_INVALID_PAYLOAD;
    if (!bool_claim(ix, C_IS_ACTIVE, true, &p->is_active) ||
        !bool_claim(ix, C_EMAIL_VERIFIED, false, &p->email_verified) ||
        !bool_claim(ix, C_IS_SUPERUSER, false, &p->is_superuser))
        return M8_JWT_INVALID_PAYLOAD;

    v[P_ROLE].p = "user";
    v[P_ROLE].n = 4;
    if (ix->has[C_ROLE] && (string_claim(ix, C_ROLE, 16, &v[P_ROLE].p, &v[P_ROLE].n) != 1 ||
                            m8_role_rank(v[P_ROLE].p) < 0))
        return M8_JWT_INVALID_PAYLOAD;

    if (ix->has[C_TENANT_ID] && ix->v[C_TENANT_ID]) {
        span *t = &v[P_TENANT_ID];
        if (string_claim(ix, C_TENANT_ID, 36, &t->p, &t->n) != 1 || !is_uuid(t->p, t->n))
            return M8_JWT_INVALID_PAYLOAD;
    }

    /* exp: integer or null in the model; a fractional float is refused. */
    bool fraction = false;
    if (ix->has[C_EXP] && ix->v[C_EXP] &&
        (time_claim(ix, C_EXP, &p->exp, &fraction) != 1 || fraction))
        return M8_JWT_INVALID_PAYLOAD;

    /* The privilege invariant: superadmin iff is_superuser. */
    if ((strcmp(v[P_ROLE].p, "superadmin") == 0) != p->is_superuser)
        return M8_JWT_INCONSISTENT_PRIVILEGE;
    return principal_strings(p, v, lowered) ? M8_JWT_OK : M8_JWT_INVALID_PAYLOAD;
}

m8_jwt_reason m8_claims_check(const m8_jws *j, const m8_claims_policy *policy, double now,
                              m8_principal *out)
{
    m8_principal p;
    memset(&p, 0, sizeof p);
    if (out)
        memset(out, 0, sizeof *out);
    /* Step 4: the payload is a JSON object (m8_jws_parse_payload). */
    struct json_object *pl = j ? j->payload : NULL;
    if (!pl || !policy || !isfinite(now))
        return M8_JWT_INVALID;
    bool strict = policy->strict;
    double leeway = strict ? 2.0 : 5.0;
    claim_ix ix;
    claims_index(pl, &ix);

    /* Step 5: required claims, present and not null (C_EXP..C_NBF). */
    size_t nreq = strict ? 6 : 4;
    for (size_t i = 0; i < nreq; i++) {
        if (!ix.has[i] || !ix.v[i])
            return M8_JWT_INVALID;
    }

    /* Steps 6-8: iat and nbf (not yet valid) before exp (expired). */
    long long iat = 0, nbf = 0, exp = 0;
    int has_iat = time_claim(&ix, C_IAT, &iat, NULL);
    if (has_iat < 0 || (has_iat && (double)iat > now + leeway))
        return M8_JWT_INVALID;
    int has_nbf = time_claim(&ix, C_NBF, &nbf, NULL);
    if (has_nbf < 0 || (has_nbf && (double)nbf > now + leeway))
        return M8_JWT_INVALID;
    int has_exp = time_claim(&ix, C_EXP, &exp, NULL);
    if (has_exp < 0)
        return M8_JWT_INVALID;
    if (has_exp && (double)exp <= now - leeway)
        return M8_JWT_EXPIRED;

    /* Step 9: iss, exactly. */
    if (strict || set(policy->issuer)) {
        if (!set(policy->issuer) || !ix.has[C_ISS] || !json_str_eq(ix.v[C_ISS], policy->issuer))
            return M8_JWT_INVALID;
    }

    /* Step 10: aud, a non-empty string or a non-empty list of strings that
     * contains ours. */
    if (strict || set(policy->audience)) {
        struct json_object *v = ix.v[C_AUD];
        if (!set(policy->audience) || !v)
            return M8_JWT_INVALID;
        if (json_object_is_type(v, json_type_string)) {
            if (!json_str_eq(v, policy->audience))
                return M8_JWT_INVALID;
        } else if (json_object_is_type(v, json_type_array)) {
            size_t n = json_object_array_length(v);
            bool found = false;
            if (n == 0)
                return M8_JWT_INVALID;
            for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(v, i);
                if (!json_object_is_type(e, json_type_string))
                    return M8_JWT_INVALID;
                found = found || json_str_eq(e, policy->audience);
            }
            if (!found)
                return M8_JWT_INVALID;
        } else {
            return M8_JWT_INVALID;
        }
    }

    /* Step 11: sub and jti are strings. */
    if ((ix.has[C_SUB] && !json_object_is_type(ix.v[C_SUB], json_type_string)) ||
        (ix.has[C_JTI] && !json_object_is_type(ix.v[C_JTI], json_type_string)))
        return M8_JWT_INVALID;

    /* Step 12: an access token. */
    if (!ix.has[C_TYPE] || !json_str_eq(ix.v[C_TYPE], "access"))
        return M8_JWT_WRONG_TYPE;

    /* Step 13: the claims model. */
    m8_jwt_reason r = claims_model(&ix, &p);
    if (r != M8_JWT_OK) {
        m8_principal_clear(&p);
        return r;
    }
    p.iat = has_iat ? iat : 0;
    if (out)
        *out = p;
    else
        m8_principal_clear(&p);
    return M8_JWT_OK;
}
