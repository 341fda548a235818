/* test_jwt.c - JWS parsing, signatures, claims and JWK keys (lib/auth/jwt.c,
 * lib/auth/keys.c; doc/wire.md#access-tokens, doc/wire.md#key-filtering).  The tokens and
 * keys are minted independently of our code by tests/tools/mint.py (PyJWT,
 * python3-cryptography, the openssl command) into a temporary directory. */
#include "config.h"

#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "auth/jwt.h"

#define NOW 1800000000.0
#define ISS "https://auth.example.com"
#define AUD "item-service"
#define SUB "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d"
#define TENANT "5d3c2b1a-0f9e-4d8c-b7a6-958473625140"
#define JTI "8e1c6a0b-3f2d-4e5a-9b7c-1d2e3f4a5b6c"

static char dir[64];
static char err[256];

typedef struct named {
    char *name;
    char *text;
} named;
static named tokens[256], jwks[64];
static size_t ntokens, njwks;

static char *slurp(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *out = NULL;
    size_t n = 0;
    if (m8_read_file(path, 4u << 20, true, &out, &n) != 0)
        return NULL;
    if (len)
        *len = n;
    return out;
}

/* NAME<TAB>TEXT lines into list. */
static size_t load_tsv(const char *file, named *list, size_t cap)
{
    char *all = slurp(file, NULL);
    size_t n = 0;
    for (char *line = all; line && *line && n < cap;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *tab = strchr(line, '\t');
        if (tab) {
            *tab = '\0';
            list[n].name = strdup(line);
            list[n].text = strdup(tab + 1);
            n++;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(all);
    return n;
}

static const char *find(const named *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i].name, name) == 0)
            return list[i].text;
    }
    diag("mint.py did not produce %s", name);
    return "";
}

static const char *tok(const char *name)
{
    return find(tokens, ntokens, name);
}

enum { K_HS, K_RS, K_RS_PY, K_RS_4096, K_ES, K_ES_PY, K_COUNT };
static m8_key *keys[K_COUNT];

typedef enum { P_STRICT, P_PERMISSIVE, P_PERMISSIVE_ISS_AUD } policy_id;

/* Where the consumer path stopped. */
typedef enum { S_NONE, S_PARSE, S_VERIFY, S_PAYLOAD, S_CLAIMS } stage_id;
static const char *const stage_names[] = {"none", "parse", "verify", "payload", "claims"};
static stage_id last_stage;

/* The whole consumer path: parse, alg + signature, payload, claims. */
static m8_jwt_reason run_n(const char *t, size_t len, m8_alg pin, const m8_key *key, policy_id pid,
                           double now, m8_principal *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    m8_claims_policy pol = {pid == P_STRICT, NULL, NULL};
    if (pid != P_PERMISSIVE) {
        pol.issuer = ISS;
        pol.audience = AUD;
    }
    m8_jws j;
    last_stage = S_PARSE;
    m8_jwt_reason r = m8_jws_parse(t, len, &j);
    if (r != M8_JWT_OK)
        return r;
    last_stage = S_VERIFY;
    r = m8_jws_verify(&j, pin, key);
    if (r == M8_JWT_OK) {
        last_stage = S_PAYLOAD;
        r = m8_jws_parse_payload(&j);
    }
    if (r == M8_JWT_OK) {
        last_stage = S_CLAIMS;
        r = m8_claims_check(&j, &pol, now, out);
    }
    if (r == M8_JWT_OK)
        last_stage = S_NONE;
    m8_jws_free(&j);
    return r;
}

static m8_jwt_reason run(const char *t, m8_alg pin, int key, policy_id pid)
{
    m8_principal p;
    m8_jwt_reason r = run_n(t, strlen(t), pin, keys[key], pid, NOW, &p);
    m8_principal_clear(&p);
    return r;
}

static const char *R(m8_jwt_reason r)
{
    return m8_jwt_reason_name(r);
}

static const char *A(m8_alg a)
{
    return a == M8_ALG_RS256 ? "RS256" : a == M8_ALG_ES256 ? "ES256" : "HS256";
}

static const int pin_key[] = {[M8_ALG_RS256] = K_RS, [M8_ALG_ES256] = K_ES, [M8_ALG_HS256] = K_HS};

typedef struct tcase {
    const char *name;
    m8_alg pin;
    int key;
    policy_id pol;
    m8_jwt_reason want;
    stage_id stage;
    const char *why;
} tcase;

#define HS M8_ALG_HS256
#define RS M8_ALG_RS256
#define ES M8_ALG_ES256
#define OK_ M8_JWT_OK
#define INV M8_JWT_INVALID
#define EXP M8_JWT_EXPIRED
#define TYPE M8_JWT_WRONG_TYPE
#define PAY M8_JWT_INVALID_PAYLOAD
#define PRIV M8_JWT_INCONSISTENT_PRIVILEGE

/* Tokens that verify: interoperability with PyJWT and openssl. */
static const tcase valid[] = {
    {"hs256_pyjwt", HS, K_HS, P_STRICT, OK_, S_NONE, "PyJWT HS256"},
    {"rs256_pyjwt_pykey", RS, K_RS_PY, P_STRICT, OK_, S_NONE,
     "PyJWT RS256, key from python3-cryptography"},
    {"rs256_pyjwt_osslkey", RS, K_RS, P_STRICT, OK_, S_NONE,
     "PyJWT RS256, key from openssl genpkey"},
    {"rs256_pyjwt_4096", RS, K_RS_4096, P_STRICT, OK_, S_NONE, "PyJWT RS256, 4096-bit key"},
    {"es256_pyjwt_pykey", ES, K_ES_PY, P_STRICT, OK_, S_NONE,
     "PyJWT ES256, key from python3-cryptography"},
    {"es256_pyjwt_osslkey", ES, K_ES, P_STRICT, OK_, S_NONE,
     "PyJWT ES256, key from openssl genpkey"},
    {"rs256_openssl_dgst", RS, K_RS, P_STRICT, OK_, S_NONE,
     "RS256 signed by openssl dgst -sha256 -sign"},
    {"es256_openssl_dgst", ES, K_ES, P_STRICT, OK_, S_NONE,
     "ES256 by openssl dgst, DER turned to R||S"},
    {"hs256_permissive", HS, K_HS, P_PERMISSIVE, OK_, S_NONE,
     "no iss/aud/iat/nbf: valid under the permissive profile"},
    {"superadmin_ok", HS, K_HS, P_STRICT, OK_, S_NONE, "superadmin with is_superuser true"},
    {"aud_list_ours", HS, K_HS, P_STRICT, OK_, S_NONE, "aud list that contains ours"},
    {"exp_double_whole", HS, K_HS, P_STRICT, OK_, S_NONE, "exp a whole double (1.8e9)"},
    {"times_double", HS, K_HS, P_STRICT, OK_, S_NONE,
     "fractional iat/nbf within leeway are truncated"},
    {"tenant_null", HS, K_HS, P_STRICT, OK_, S_NONE, "tenant_id and full_name null"},
    {"defaults", HS, K_HS, P_STRICT, OK_, S_NONE, "model defaults for absent optional claims"},
    {"inactive", HS, K_HS, P_STRICT, OK_, S_NONE, "is_active false is valid (403 comes later)"},
    {"exp_in_leeway", HS, K_HS, P_STRICT, OK_, S_NONE, "exp = now - 1 within the 2 s leeway"},
    {"nbf_in_leeway", HS, K_HS, P_STRICT, OK_, S_NONE, "nbf = now + 2 at the 2 s leeway"},
    {"iat_in_leeway", HS, K_HS, P_STRICT, OK_, S_NONE, "iat = now + 2 at the 2 s leeway"},
    {"perm_exp_in_leeway", HS, K_HS, P_PERMISSIVE, OK_, S_NONE,
     "permissive: exp = now - 4 within 5 s"},
    {"perm_nbf_in_leeway", HS, K_HS, P_PERMISSIVE, OK_, S_NONE, "permissive: nbf = now + 5 at 5 s"},
    {"kid_256", HS, K_HS, P_STRICT, OK_, S_NONE, "kid of M8_MAX_KID_BYTES (256) accepted"},
    {"email_local_64", HS, K_HS, P_STRICT, OK_, S_NONE, "email local part of 64 bytes"},
    {"email_plus_tag", HS, K_HS, P_STRICT, OK_, S_NONE, "email with +tag and a 3-label domain"},
    {"email_unicode", HS, K_HS, P_STRICT, OK_, S_NONE, "internationalised email (UTF-8)"},
    {"full_name_apostrophe", HS, K_HS, P_STRICT, OK_, S_NONE, "quotes, colon, braces in a string"},
    {"exp_far_future", HS, K_HS, P_STRICT, OK_, S_NONE, "exp past 2^64 saturates (far future)"},
    {"header_trailing_ws", HS, K_HS, P_STRICT, OK_, S_NONE, "whitespace after the header object"},
    {"header_4096", HS, K_HS, P_STRICT, OK_, S_NONE, "decoded header of M8_MAX_JWT_PART_BYTES"},
    {"payload_4096", HS, K_HS, P_STRICT, OK_, S_NONE, "decoded payload of M8_MAX_JWT_PART_BYTES"},
    {"header_depth_8", HS, K_HS, P_STRICT, OK_, S_NONE, "header nested M8_MAX_JWT_DEPTH (8) deep"},
    {"payload_depth_8", HS, K_HS, P_STRICT, OK_, S_NONE,
     "payload nested M8_MAX_JWT_DEPTH (8) deep"},
    {"token_8192", HS, K_HS, P_STRICT, OK_, S_NONE, "token of exactly M8_MAX_TOKEN_BYTES"},
    {"iat_missing", HS, K_HS, P_PERMISSIVE, OK_, S_NONE, "permissive: iat not required"},
    {"nbf_missing", HS, K_HS, P_PERMISSIVE, OK_, S_NONE, "permissive: nbf not required"},
    {"iss_missing", HS, K_HS, P_PERMISSIVE, OK_, S_NONE,
     "permissive without TOKEN_ISSUER ignores iss"},
    {"iss_mismatch", HS, K_HS, P_PERMISSIVE, OK_, S_NONE,
     "permissive without TOKEN_ISSUER ignores iss"},
    {"aud_missing", HS, K_HS, P_PERMISSIVE, OK_, S_NONE,
     "permissive without TOKEN_AUDIENCE ignores aud"},
    {"aud_list_number", HS, K_HS, P_PERMISSIVE, OK_, S_NONE,
     "permissive without audience ignores aud"},
};

/* The adversarial catalogue: each refused with its reason. */
static const tcase refused[] = {
    /* algorithm */
    {"alg_none", HS, K_HS, P_STRICT, INV, S_VERIFY, "alg none, empty signature"},
    {"alg_None", HS, K_HS, P_STRICT, INV, S_VERIFY, "alg None"},
    {"alg_NONE", HS, K_HS, P_STRICT, INV, S_VERIFY, "alg NONE"},
    {"alg_empty", HS, K_HS, P_STRICT, INV, S_VERIFY, "alg empty string"},
    {"alg_none", RS, K_RS, P_STRICT, INV, S_VERIFY, "alg none under an RS256 pin"},
    {"alg_none", ES, K_ES, P_STRICT, INV, S_VERIFY, "alg none under an ES256 pin"},
    {"alg_missing", HS, K_HS, P_STRICT, INV, S_VERIFY, "no alg header (valid HMAC)"},
    {"alg_none_hmac", HS, K_HS, P_STRICT, INV, S_VERIFY, "alg none with a valid HMAC"},
    {"alg_lowercase", HS, K_HS, P_STRICT, INV, S_VERIFY, "alg hs256: case-sensitive"},
    {"alg_number", HS, K_HS, P_STRICT, INV, S_PARSE, "alg not a string"},
    {"hs256_rsa_pem_secret", RS, K_RS, P_STRICT, INV, S_VERIFY,
     "HS256 HMAC'd with the RSA public key PEM, under an RS256 pin"},
    {"rs512", RS, K_RS, P_STRICT, INV, S_VERIFY, "RS512 under an RS256 pin (same key)"},
    {"ps256", RS, K_RS, P_STRICT, INV, S_VERIFY, "PS256 under an RS256 pin (same key)"},
    {"hs512", HS, K_HS, P_STRICT, INV, S_VERIFY, "HS512 under an HS256 pin (same secret)"},
    {"es384", ES, K_ES, P_STRICT, INV, S_VERIFY, "ES384 under an ES256 pin"},
    {"rs256_pyjwt_osslkey", ES, K_ES, P_STRICT, INV, S_VERIFY, "RS256 token under an ES256 pin"},
    {"rs256_pyjwt_osslkey", HS, K_HS, P_STRICT, INV, S_VERIFY, "RS256 token under an HS256 pin"},
    {"hs256_pyjwt", RS, K_RS, P_STRICT, INV, S_VERIFY, "HS256 token under an RS256 pin"},
    {"es256_pyjwt_osslkey", RS, K_RS, P_STRICT, INV, S_VERIFY, "ES256 token under an RS256 pin"},
    {"es256_on_p384", ES, K_ES, P_STRICT, INV, S_VERIFY, "ES256 header, signed on P-384"},
    {"es256_on_k256", ES, K_ES, P_STRICT, INV, S_VERIFY, "ES256 header, signed on secp256k1"},
    {"es256_der", ES, K_ES, P_STRICT, INV, S_VERIFY, "ES256 with a DER signature"},
    {"rs256_as_es256", ES, K_ES, P_STRICT, INV, S_VERIFY, "ES256 header, RSA signature"},
    {"rs256_other_key", RS, K_RS, P_STRICT, INV, S_VERIFY, "RS256 signed by another key"},
    {"es256_other_key", ES, K_ES, P_STRICT, INV, S_VERIFY, "ES256 signed by another key"},
    {"hs256_other_secret", HS, K_HS, P_STRICT, INV, S_VERIFY, "HS256 signed with another secret"},
    /* header */
    {"kid_number", HS, K_HS, P_STRICT, INV, S_PARSE, "kid a number"},
    {"kid_null", HS, K_HS, P_STRICT, INV, S_PARSE, "kid null"},
    {"kid_huge", HS, K_HS, P_STRICT, INV, S_PARSE, "kid of 257 bytes"},
    {"crit_exp", HS, K_HS, P_STRICT, INV, S_PARSE, "crit header"},
    {"crit_b64", HS, K_HS, P_STRICT, INV, S_PARSE, "crit [b64] with b64 false"},
    {"crit_empty", HS, K_HS, P_STRICT, INV, S_PARSE, "crit empty list"},
    {"b64_false", HS, K_HS, P_STRICT, INV, S_PARSE, "b64 false header"},
    {"b64_true", HS, K_HS, P_STRICT, INV, S_PARSE, "b64 true header"},
    {"header_not_json", HS, K_HS, P_STRICT, INV, S_PARSE, "header not JSON"},
    {"header_array", HS, K_HS, P_STRICT, INV, S_PARSE, "header a JSON array"},
    {"header_trailing", HS, K_HS, P_STRICT, INV, S_PARSE, "garbage after the header object"},
    {"header_two_objects", HS, K_HS, P_STRICT, INV, S_PARSE, "two objects in the header"},
    {"header_dup_alg", HS, K_HS, P_STRICT, INV, S_PARSE, "duplicate header key alg"},
    {"header_dup_nested", HS, K_HS, P_STRICT, INV, S_PARSE,
     "duplicate key in a nested header object"},
    {"header_4097", HS, K_HS, P_STRICT, INV, S_PARSE,
     "decoded header one past M8_MAX_JWT_PART_BYTES"},
    {"header_depth_9", HS, K_HS, P_STRICT, INV, S_PARSE, "header nested one past M8_MAX_JWT_DEPTH"},
    {"token_8193", HS, K_HS, P_STRICT, INV, S_PARSE, "token one byte over M8_MAX_TOKEN_BYTES"},
    /* payload */
    {"payload_dup_role", HS, K_HS, P_STRICT, INV, S_PAYLOAD,
     "duplicate claim role (user, then superadmin)"},
    {"payload_dup_exp", HS, K_HS, P_STRICT, INV, S_PAYLOAD, "duplicate claim exp"},
    {"payload_dup_escaped", HS, K_HS, P_STRICT, INV, S_PAYLOAD,
     "duplicate claim spelled r\\u006fle"},
    {"payload_array", HS, K_HS, P_STRICT, INV, S_PAYLOAD, "payload a JSON array"},
    {"header_single_quotes", HS, K_HS, P_STRICT, INV, S_PARSE, "header with single quotes"},
    {"payload_single_quotes", HS, K_HS, P_STRICT, INV, S_PAYLOAD, "a single-quoted claim name"},
    {"payload_control_char", HS, K_HS, P_STRICT, INV, S_PAYLOAD, "a raw tab inside a string"},
    {"exp_nan", HS, K_HS, P_STRICT, INV, S_CLAIMS, "exp NaN"},
    {"exp_infinity", HS, K_HS, P_STRICT, INV, S_CLAIMS, "exp 1e400 (infinite)"},
    {"payload_not_json", HS, K_HS, P_STRICT, INV, S_PAYLOAD, "payload not JSON"},
    {"payload_trailing", HS, K_HS, P_STRICT, INV, S_PAYLOAD, "garbage after the payload object"},
    {"payload_4097", HS, K_HS, P_STRICT, INV, S_PARSE,
     "decoded payload one past M8_MAX_JWT_PART_BYTES"},
    {"payload_depth_9", HS, K_HS, P_STRICT, INV, S_PAYLOAD,
     "payload nested one past M8_MAX_JWT_DEPTH"},
    {"depth_bomb", HS, K_HS, P_STRICT, INV, S_PAYLOAD, "payload depth bomb (2000 arrays)"},
    {"header_depth_bomb", HS, K_HS, P_STRICT, INV, S_PARSE, "header depth bomb (600 objects)"},
    /* registered claims, in the order of doc/wire.md#token-checks */
    {"exp_missing", HS, K_HS, P_STRICT, INV, S_CLAIMS, "exp missing"},
    {"exp_missing", HS, K_HS, P_PERMISSIVE, INV, S_CLAIMS, "exp missing (permissive)"},
    {"exp_null", HS, K_HS, P_STRICT, INV, S_CLAIMS, "exp null"},
    {"exp_string", HS, K_HS, P_STRICT, INV, S_CLAIMS, "exp a numeric string [C narrowing]"},
    {"exp_bool", HS, K_HS, P_STRICT, INV, S_CLAIMS, "exp true [C narrowing]"},
    {"iat_missing", HS, K_HS, P_STRICT, INV, S_CLAIMS, "iat missing (strict)"},
    {"nbf_missing", HS, K_HS, P_STRICT, INV, S_CLAIMS, "nbf missing (strict)"},
    {"iat_null", HS, K_HS, P_PERMISSIVE, INV, S_CLAIMS, "iat null (permissive) [C: Python 500]"},
    {"iat_future", HS, K_HS, P_STRICT, INV, S_CLAIMS, "iat = now + 3, past the 2 s leeway"},
    {"nbf_future", HS, K_HS, P_STRICT, INV, S_CLAIMS, "nbf = now + 3, past the 2 s leeway"},
    {"perm_nbf_future", HS, K_HS, P_PERMISSIVE, INV, S_CLAIMS,
     "permissive: nbf = now + 6, past 5 s"},
    {"nbf_string", HS, K_HS, P_STRICT, INV, S_CLAIMS, "nbf a string"},
    {"immature_and_expired", HS, K_HS, P_STRICT, INV, S_CLAIMS,
     "nbf future and exp past: invalid first"},
    {"exp_at_leeway", HS, K_HS, P_STRICT, EXP, S_CLAIMS,
     "exp = now - 2, at the leeway (exp <= now - 2)"},
    {"exp_past", HS, K_HS, P_STRICT, EXP, S_CLAIMS, "exp an hour ago"},
    {"perm_exp_at_leeway", HS, K_HS, P_PERMISSIVE, EXP, S_CLAIMS, "permissive: exp = now - 5"},
    {"iss_mismatch", HS, K_HS, P_STRICT, INV, S_CLAIMS, "iss another issuer"},
    {"iss_slash", HS, K_HS, P_STRICT, INV, S_CLAIMS, "iss with a trailing slash"},
    {"iss_missing", HS, K_HS, P_STRICT, INV, S_CLAIMS, "iss missing (strict)"},
    {"iss_list", HS, K_HS, P_STRICT, INV, S_CLAIMS, "iss a list"},
    {"iss_mismatch", HS, K_HS, P_PERMISSIVE_ISS_AUD, INV, S_CLAIMS,
     "permissive with TOKEN_ISSUER: iss"},
    {"aud_mismatch", HS, K_HS, P_STRICT, INV, S_CLAIMS, "aud another audience"},
    {"aud_list_without", HS, K_HS, P_STRICT, INV, S_CLAIMS, "aud list without ours"},
    {"aud_empty_list", HS, K_HS, P_STRICT, INV, S_CLAIMS, "aud empty list"},
    {"aud_empty_string", HS, K_HS, P_STRICT, INV, S_CLAIMS, "aud empty string"},
    {"aud_list_number", HS, K_HS, P_STRICT, INV, S_CLAIMS, "aud list holding a number"},
    {"aud_missing", HS, K_HS, P_STRICT, INV, S_CLAIMS, "aud missing (strict)"},
    {"aud_missing", HS, K_HS, P_PERMISSIVE_ISS_AUD, INV, S_CLAIMS,
     "permissive with TOKEN_AUDIENCE: aud"},
    {"sub_missing", HS, K_HS, P_STRICT, INV, S_CLAIMS, "sub missing"},
    {"sub_number", HS, K_HS, P_STRICT, INV, S_CLAIMS, "sub a number"},
    {"jti_missing", HS, K_HS, P_STRICT, INV, S_CLAIMS, "jti missing"},
    {"jti_number", HS, K_HS, P_STRICT, INV, S_CLAIMS, "jti a number"},
    {"type_missing", HS, K_HS, P_STRICT, INV, S_CLAIMS, "type missing (required)"},
    {"type_refresh", HS, K_HS, P_STRICT, TYPE, S_CLAIMS, "type refresh"},
    {"type_Access", HS, K_HS, P_STRICT, TYPE, S_CLAIMS, "type Access (exact match)"},
    /* claims model */
    {"sub_not_uuid", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "sub not a UUID"},
    {"sub_uuid_nohyphen", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "sub a UUID without hyphens"},
    {"email_invalid", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email without @"},
    {"email_two_at", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email with two @"},
    {"email_no_tld", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email at localhost"},
    {"email_missing", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email missing"},
    {"email_numeric_tld", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email with a numeric TLD"},
    {"email_test_domain", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email in the special-use .test"},
    {"email_double_dot", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email local part with .."},
    {"email_leading_dot", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email local part starting with ."},
    {"email_hyphen_label", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email domain label starting -"},
    {"email_space", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email with a space inside"},
    {"email_local_65", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email local part of 65 bytes"},
    {"email_null", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "email null"},
    {"role_unknown", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "role root"},
    {"role_upper", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "role Admin (case-sensitive)"},
    {"role_null", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "role null"},
    {"is_active_string", HS, K_HS, P_STRICT, PAY, S_CLAIMS,
     "is_active \"true\" [C: JSON booleans only]"},
    {"is_superuser_int", HS, K_HS, P_STRICT, PAY, S_CLAIMS,
     "is_superuser 1 [C: JSON booleans only]"},
    {"tenant_not_uuid", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "tenant_id not a UUID"},
    {"full_name_number", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "full_name a number"},
    {"avatar_object", HS, K_HS, P_STRICT, PAY, S_CLAIMS, "avatar an object"},
    {"exp_fraction", HS, K_HS, P_STRICT, PAY, S_CLAIMS,
     "exp with a fractional part (model: integer)"},
    {"invalid_email_and_inconsistent", HS, K_HS, P_STRICT, PAY, S_CLAIMS,
     "field errors are reported before the privilege invariant"},
    {"superadmin_no_flag", HS, K_HS, P_STRICT, PRIV, S_CLAIMS,
     "superadmin with is_superuser false"},
    {"admin_superuser", HS, K_HS, P_STRICT, PRIV, S_CLAIMS, "admin with is_superuser true"},
    {"user_superuser", HS, K_HS, P_STRICT, PRIV, S_CLAIMS, "user with is_superuser true"},
};

static void test_catalogue(void)
{
    for (size_t i = 0; i < M8_ARRAY_LEN(valid); i++) {
        const tcase *c = &valid[i];
        is_str(R(run(tok(c->name), c->pin, c->key, c->pol)), "ok", "verifies: %s (%s)", c->why,
               c->name);
    }
    for (size_t i = 0; i < M8_ARRAY_LEN(refused); i++) {
        const tcase *c = &refused[i];
        m8_jwt_reason r = run(tok(c->name), c->pin, c->key, c->pol);
        ok(r == c->want && last_stage == c->stage, "refused %s: %s (%s pin) -> %s at %s", c->name,
           c->why, A(c->pin), R(c->want), stage_names[c->stage]);
        if (r != c->want || last_stage != c->stage)
            diag("got %s at %s", R(r), stage_names[last_stage]);
    }
    /* Foreign algorithms are refused under every pin. */
    static const char *const foreign[] = {"rs512", "ps256", "hs512", "es384"};
    for (size_t i = 0; i < M8_ARRAY_LEN(foreign); i++) {
        for (m8_alg a = M8_ALG_RS256; a <= M8_ALG_HS256; a++)
            is_str(R(run(tok(foreign[i]), a, pin_key[a], P_STRICT)), "invalid",
                   "refused %s under the %s pin -> invalid", foreign[i], A(a));
    }
    /* Under the permissive profile a strict-only failure still fails. */
    is_str(R(run(tok("hs256_permissive"), HS, K_HS, P_STRICT)), "invalid",
           "refused hs256_permissive under the strict profile (no iat/nbf/iss/aud) -> invalid");
}

static void test_principal(void)
{
    m8_principal p;
    m8_jwt_reason r =
        run_n(tok("hs256_pyjwt"), strlen(tok("hs256_pyjwt")), HS, keys[K_HS], P_STRICT, NOW, &p);
    is_str(R(r), "ok", "principal: token verifies");
    is_str(p.id, SUB, "principal: id is sub");
    is_str(p.email, "alice@example.com", "principal: email");
    is_str(p.full_name, "Alice", "principal: full_name");
    ok(p.avatar == NULL, "principal: avatar null");
    is_str(p.role, "writer", "principal: role");
    is_str(p.tenant_id, TENANT, "principal: tenant_id");
    is_str(p.jti, JTI, "principal: jti");
    ok(p.is_active && p.email_verified && !p.is_superuser, "principal: the three booleans");
    is_int(p.exp, (long long)NOW + 1800, "principal: exp");
    is_int(p.iat, (long long)NOW, "principal: iat");
    m8_principal_clear(&p);
    ok(p.id == NULL && p.email == NULL, "m8_principal_clear resets the strings");

    r = run_n(tok("email_trim"), strlen(tok("email_trim")), HS, keys[K_HS], P_STRICT, NOW, &p);
    is_str(p.email, "alice.smith@example.com", "principal: email trimmed and lower-cased");
    m8_principal_clear(&p);
    run_n(tok("uuid_upper"), strlen(tok("uuid_upper")), HS, keys[K_HS], P_STRICT, NOW, &p);
    is_str(p.id, SUB, "principal: an upper-case UUID sub is lower-cased");
    m8_principal_clear(&p);
    run_n(tok("defaults"), strlen(tok("defaults")), HS, keys[K_HS], P_STRICT, NOW, &p);
    ok(p.role && strcmp(p.role, "user") == 0 && p.is_active && !p.email_verified &&
           !p.is_superuser && !p.full_name && !p.avatar && !p.tenant_id,
       "principal: defaults role user, is_active true, email_verified false, nulls");
    m8_principal_clear(&p);
    run_n(tok("hs256_permissive"), strlen(tok("hs256_permissive")), HS, keys[K_HS], P_PERMISSIVE,
          NOW, &p);
    is_int(p.iat, 0, "principal: iat 0 when absent");
    m8_principal_clear(&p);
    r = run_n(tok("type_refresh"), strlen(tok("type_refresh")), HS, keys[K_HS], P_STRICT, NOW, &p);
    ok(r != M8_JWT_OK && p.id == NULL && p.email == NULL, "principal: left empty on a refusal");

    /* Leeway is in seconds of a float now: exp = NOW + 1800 at now just before/at exp + 2. */
    const char *t = tok("hs256_pyjwt");
    is_str(R(run_n(t, strlen(t), HS, keys[K_HS], P_STRICT, NOW + 1801.99, &p)), "ok",
           "exp: now = exp + 1.99 is within the strict leeway");
    m8_principal_clear(&p);
    is_str(R(run_n(t, strlen(t), HS, keys[K_HS], P_STRICT, NOW + 1802, &p)), "expired",
           "exp: now = exp + 2 is expired (exp <= now - leeway)");
    is_str(R(run_n(t, strlen(t), HS, keys[K_HS], P_PERMISSIVE, NOW + 1804.5, &p)), "ok",
           "exp: permissive now = exp + 4.5 is within 5 s");
    m8_principal_clear(&p);
    is_str(R(run_n(t, strlen(t), HS, keys[K_HS], P_PERMISSIVE, NOW + 1805, &p)), "expired",
           "exp: permissive now = exp + 5 is expired");
}

/* Structural damage done to a good token. */
static void test_mutations(void)
{
    const char *good = tok("hs256_pyjwt");
    size_t n = strlen(good);
    char *t = malloc(n + 8);
    const char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
    size_t p1 = (size_t)(d1 - good), p2 = (size_t)(d2 - good);

#define MUT(desc, len_)                                                                            \
    is_str(R(run_n(t, (len_), HS, keys[K_HS], P_STRICT, NOW, NULL)), "invalid",                    \
           "refused %s -> invalid", desc)

    memcpy(t, good, n + 1);
    MUT("truncated signature (4 characters fewer)", n - 4);
    MUT("signature empty", p2 + 1);
    t[p1 + 10] = t[p1 + 10] == 'A' ? 'B' : 'A';
    MUT("altered payload byte", n);
    memcpy(t, good, n + 1);
    t[p2 + 5] = t[p2 + 5] == 'A' ? 'B' : 'A';
    MUT("altered signature byte", n);
    memcpy(t, good, n + 1);
    t[n - 1] = t[n - 1] == 'A' ? 'B' : 'A'; /* the last char carries 2 unused bits */
    MUT("altered last signature character", n);
    memcpy(t, good, n + 1);
    memcpy(t + n, ".x", 3);
    MUT("extra dot and part", n + 2);
    memcpy(t + n, ".", 2);
    MUT("extra trailing dot", n + 1);
    memcpy(t, good, p2);
    memcpy(t + p2, good + p2 + 1, n - p2);
    MUT("missing dot (two parts)", n - 1);
    memcpy(t, good, p1);
    MUT("header only", p1);
    memcpy(t, good, n + 1);
    t[p1 + 3] = '+';
    MUT("bad base64url character '+'", n);
    t[p1 + 3] = '/';
    MUT("bad base64url character '/'", n);
    t[p1 + 3] = ' ';
    MUT("space inside the payload", n);
    t[p1 + 3] = '\0';
    MUT("NUL byte inside the payload", n);
    memcpy(t, good, n + 1);
    memcpy(t + n, "=", 2);
    MUT("'=' padding on the signature", n + 1);
    memcpy(t, good, n + 1);
    t[0] = '=';
    MUT("'=' in the header", n);
    free(t);

    is_str(R(run_n("", 0, HS, keys[K_HS], P_STRICT, NOW, NULL)), "invalid", "refused empty token");
    is_str(R(run_n("..", 2, HS, keys[K_HS], P_STRICT, NOW, NULL)), "invalid",
           "refused '..' -> invalid");
    size_t big = 1u << 20;
    char *mb = malloc(big);
    memset(mb, 'a', big);
    mb[1000] = '.';
    mb[2000] = '.';
    is_str(R(run_n(mb, big, HS, keys[K_HS], P_STRICT, NOW, NULL)), "invalid",
           "refused a 1 MB token -> invalid");
    free(mb);

    /* Parse-level details. */
    m8_jws j;
    is_int(m8_jws_parse(good, n, &j), M8_JWT_OK, "m8_jws_parse: a good token");
    is_str(j.alg, "HS256", "m8_jws_parse: alg borrowed from the header");
    ok(j.kid == NULL, "m8_jws_parse: kid NULL when absent");
    is_int(j.sig_len, 32, "m8_jws_parse: HS256 signature decoded (32 bytes)");
    is_int(j.signing_input_len, p2, "m8_jws_parse: signing input is header.payload");
    ok(j.payload == NULL, "m8_jws_parse: the payload is not parsed yet");
    is_int(m8_jws_parse_payload(&j), M8_JWT_OK, "m8_jws_parse_payload");
    ok(j.payload && json_object_is_type(j.payload, json_type_object), "payload is an object");
    m8_jws_free(&j);
    const char *rt = tok("rs256_pyjwt_pykey");
    is_int(m8_jws_parse(rt, strlen(rt), &j), M8_JWT_OK, "m8_jws_parse: an RS256 token");
    is_str(j.kid, "rsa-py", "m8_jws_parse: kid read");
    is_int(j.sig_len, 256, "m8_jws_parse: RS256 signature of 256 bytes");
    m8_jws_free(&j);
    is_int(m8_jws_parse(tok("kid_huge"), strlen(tok("kid_huge")), &j), M8_JWT_INVALID,
           "m8_jws_parse refuses the 257-byte kid itself");
    ok(j.header == NULL, "m8_jws_parse frees on failure");
    /* The signature cap: 512 bytes decode, 513 do not. */
    m8_buf b;
    m8_buf_init(&b, 4096);
    m8_buf_puts(&b, "eyJhbGciOiJIUzI1NiJ9.e30.");
    unsigned char sig[513];
    memset(sig, 7, sizeof sig);
    m8_b64url_encode(&b, sig, 512);
    is_int(m8_jws_parse(b.data, b.len, &j), M8_JWT_OK, "a 512-byte signature is parsed");
    is_int(j.sig_len, 512, "sig_len 512");
    m8_jws_free(&j);
    m8_buf_reset(&b);
    m8_buf_puts(&b, "eyJhbGciOiJIUzI1NiJ9.e30.");
    m8_b64url_encode(&b, sig, 513);
    is_int(m8_jws_parse(b.data, b.len, &j), M8_JWT_INVALID, "a 513-byte signature is refused");
    m8_buf_free(&b);
}

static void test_b64(void)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    m8_buf b;
    m8_buf_init(&b, 1024);
    for (size_t i = 0; i < M8_ARRAY_LEN(plain); i++) {
        m8_buf_reset(&b);
        m8_b64url_encode(&b, (const unsigned char *)plain[i], strlen(plain[i]));
        is_str(b.data ? b.data : "", enc[i], "b64url encode RFC 4648 vector \"%s\"", plain[i]);
        unsigned char out[16];
        long got = m8_b64url_decode(enc[i], strlen(enc[i]), out, sizeof out);
        ok(got == (long)strlen(plain[i]) && memcmp(out, plain[i], (size_t)got) == 0,
           "b64url decode RFC 4648 vector \"%s\"", enc[i]);
    }
    unsigned char all[256], back[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)(255 - i);
    m8_buf_reset(&b);
    m8_b64url_encode(&b, all, sizeof all);
    ok(strchr(b.data, '+') == NULL && strchr(b.data, '/') == NULL && strchr(b.data, '=') == NULL,
       "b64url encode uses - and _ and no padding");
    ok(m8_b64url_decode(b.data, b.len, back, sizeof back) == 256 && !memcmp(all, back, 256),
       "b64url round trip of every byte value");
    is_int(m8_b64url_decode(b.data, b.len, back, 255), -1, "b64url decode past cap is refused");
    m8_buf_free(&b);
    unsigned char out[8];
    is_int(m8_b64url_decode("Zg==", 4, out, sizeof out), -1, "b64url '=' padding refused");
    is_int(m8_b64url_decode("Zm9+", 4, out, sizeof out), -1, "b64url '+' refused");
    is_int(m8_b64url_decode("Zm9/", 4, out, sizeof out), -1, "b64url '/' refused");
    is_int(m8_b64url_decode("Zm9vY", 5, out, sizeof out), -1, "b64url length 4n+1 refused");
    is_int(m8_b64url_decode("Zh", 2, out, sizeof out), -1,
           "b64url non-zero unused bits refused (one encoding per value)");
    is_int(m8_b64url_decode("Zm8", 3, out, sizeof out), 2, "b64url canonical 3-char tail");
    is_int(m8_b64url_decode("Zm9", 3, out, sizeof out), -1, "b64url 3-char tail, unused bits set");
}

static void test_jwk(void)
{
    json_object *o;
    m8_key *k;
#define JWK(name) (o = json_tokener_parse(find(jwks, njwks, name)))

    k = m8_key_from_jwk(JWK("rsa"), RS, err, sizeof err);
    ok(k != NULL, "JWK RSA (PyJWT to_jwk) loads for RS256: %s", err);
    is_str(k ? k->kid : NULL, "rsa-ossl", "JWK kid kept");
    json_object_put(o);
    if (k) {
        is_str(R(run_n(tok("rs256_pyjwt_osslkey"), strlen(tok("rs256_pyjwt_osslkey")), RS, k,
                       P_STRICT, NOW, NULL)),
               "ok", "a JWK-built RSA key verifies the PyJWT RS256 token");
        is_str(R(run_n(tok("rs256_openssl_dgst"), strlen(tok("rs256_openssl_dgst")), RS, k,
                       P_STRICT, NOW, NULL)),
               "ok", "a JWK-built RSA key verifies the openssl dgst token");
        m8_key_unref(k);
    }
    k = m8_key_from_jwk(JWK("rsa_nokid"), RS, err, sizeof err);
    ok(k && k->kid == NULL, "JWK without kid and use: kid NULL");
    m8_key_unref(k);
    json_object_put(o);
    k = m8_key_from_jwk(JWK("rsa_4096"), RS, err, sizeof err);
    ok(k != NULL, "JWK RSA 4096 loads");
    m8_key_unref(k);
    json_object_put(o);
    k = m8_key_from_jwk(JWK("ec"), ES, err, sizeof err);
    ok(k != NULL, "JWK EC P-256 loads for ES256: %s", err);
    json_object_put(o);
    if (k) {
        is_str(R(run_n(tok("es256_pyjwt_osslkey"), strlen(tok("es256_pyjwt_osslkey")), ES, k,
                       P_STRICT, NOW, NULL)),
               "ok", "a JWK-built EC key verifies the PyJWT ES256 token");
        is_str(R(run_n(tok("es256_openssl_dgst"), strlen(tok("es256_openssl_dgst")), ES, k,
                       P_STRICT, NOW, NULL)),
               "ok", "a JWK-built EC key verifies the openssl dgst ES256 token");
        is_str(R(run_n(tok("es256_pyjwt_pykey"), strlen(tok("es256_pyjwt_pykey")), ES, k, P_STRICT,
                       NOW, NULL)),
               "invalid", "the JWK EC key refuses a token of another EC key");
        m8_key_unref(k);
    }
    k = m8_key_from_jwk(JWK("ec_py"), ES, err, sizeof err);
    ok(k != NULL, "JWK EC from python3-cryptography loads");
    m8_key_unref(k);
    json_object_put(o);

    static const struct {
        const char *name;
        m8_alg alg;
        const char *msg;
        const char *why;
    } bad[] = {
        {"rsa_private", RS, "private", "an RSA JWK with private members (d, p, q...)"},
        {"ec_private", ES, "private", "an EC JWK with d"},
        {"rsa_use_enc", RS, "use", "use enc"},
        {"rsa_1024", RS, "2048", "RSA 1024 (doc/wire.md#key-filtering)"},
        {"ec_p384", ES, "P-256", "EC P-384 (doc/wire.md#key-filtering)"},
        {"ec_k256", ES, "P-256", "EC secp256k1 (doc/wire.md#key-filtering)"},
        {"rsa", ES, "kty EC", "an RSA JWK under ES256"},
        {"ec", RS, "kty RSA", "an EC JWK under RS256"},
        {"rsa", HS, "HS256", "any JWK under HS256"},
        {"oct", HS, "private", "an oct JWK (a secret) under HS256"},
        {"oct", RS, "private", "an oct JWK under RS256"},
        {"rsa_kty_missing", RS, "kty", "no kty"},
        {"rsa_kid_number", RS, "kid", "kid a number"},
        {"rsa_e_even", RS, "exponent", "an even RSA exponent"},
        {"ec_off_curve", ES, "P-256", "an EC point off the curve"},
        {"ec_short_x", ES, "32 bytes", "an EC x of 31 bytes"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        k = m8_key_from_jwk(JWK(bad[i].name), bad[i].alg, err, sizeof err);
        ok(k == NULL, "JWK refused: %s (%s)", bad[i].why, bad[i].name);
        like(err, bad[i].msg, "JWK refusal says why: %s", bad[i].why);
        m8_key_unref(k);
        json_object_put(o);
    }
    ok(m8_key_from_jwk(NULL, RS, err, sizeof err) == NULL, "JWK NULL refused");
    o = json_object_new_array();
    ok(m8_key_from_jwk(o, RS, err, sizeof err) == NULL, "JWK that is not an object refused");
    json_object_put(o);
}

static void test_key_construction(void)
{
    size_t len = 0;
    char *pem = slurp("rsa_ossl.pub", &len);
    m8_key *k = m8_key_from_secret(pem, len, err, sizeof err);
    ok(k == NULL, "HS256 pin with the RSA public key PEM as secret: refused at key construction");
    like(err, "asymmetric", "the refusal names the asymmetric-key confusion");
    ok(strstr(err, "BEGIN") == NULL, "the refusal does not echo the secret");
    free(pem);
    static const char *const pems[] = {"rsa_ossl.pub", "rsa_py.pub", "rsa4096.pub", "ec_ossl.pub",
                                       "ec_py.pub"};
    static const m8_alg algs[] = {RS, RS, RS, ES, ES};
    static const int slot[] = {K_RS, K_RS_PY, K_RS_4096, K_ES, K_ES_PY};
    for (size_t i = 0; i < M8_ARRAY_LEN(pems); i++) {
        pem = slurp(pems[i], &len);
        keys[slot[i]] = pem ? m8_key_from_pem(pem, len, algs[i], err, sizeof err) : NULL;
        ok(keys[slot[i]] != NULL, "m8_key_from_pem %s for %s: %s", pems[i], A(algs[i]), err);
        free(pem);
    }
    char *secret = slurp("hs.secret", &len);
    keys[K_HS] = secret ? m8_key_from_secret(secret, len, err, sizeof err) : NULL;
    ok(keys[K_HS] != NULL, "m8_key_from_secret with the HS256 secret");
    free(secret);

    static const struct {
        const char *file;
        m8_alg alg;
        const char *why;
    } bad[] = {
        {"p384.pub", ES, "ES256 with a P-384 key"},
        {"k256.pub", ES, "ES256 with a secp256k1 key"},
        {"rsa1024.pub", RS, "RS256 with an RSA 1024 key"},
        {"ec_ossl.pub", RS, "RS256 with an EC key"},
        {"rsa_ossl.pub", ES, "ES256 with an RSA key"},
        {"rsa_ossl.pub", HS, "HS256 with a PEM"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        pem = slurp(bad[i].file, &len);
        k = pem ? m8_key_from_pem(pem, len, bad[i].alg, err, sizeof err) : NULL;
        ok(k == NULL && err[0], "m8_key_from_pem refuses %s: %s", bad[i].why, err);
        m8_key_unref(k);
        free(pem);
    }
}

static void test_roles(void)
{
    static const char *const r[] = {"superadmin", "admin", "writer", "reader", "user"};
    for (int i = 0; i < 5; i++)
        is_int(m8_role_rank(r[i]), i, "m8_role_rank(%s) = %d", r[i], i);
    is_int(m8_role_rank("Admin"), -1, "m8_role_rank is case-sensitive");
    is_int(m8_role_rank("root"), -1, "m8_role_rank of an unknown role is -1");
    is_int(m8_role_rank(NULL), -1, "m8_role_rank(NULL) is -1");
    /* doc/wire.md#roles: has_minimum_role(current, required) iff current's
     * position <= required's. */
    for (int c = 0; c < 5; c++) {
        for (int q = 0; q < 5; q++)
            is_int(m8_role_at_least(r[c], r[q]), c <= q, "role %s %s the %s guard", r[c],
                   c <= q ? "passes" : "fails", r[q]);
    }
    ok(!m8_role_at_least("root", "user"), "an unknown current role passes no guard");
    ok(!m8_role_at_least("admin", "root"), "an unknown required role is never met");
    ok(!m8_role_at_least(NULL, "user"), "a NULL role passes no guard");
}

static const char *mint_path(char *buf, size_t cap)
{
    const char *top = getenv("top_srcdir");
    if (top && *top) {
        snprintf(buf, cap, "%s/tests/tools/mint.py", top);
    } else {
        snprintf(buf, cap, "%s", __FILE__);
        char *slash = strrchr(buf, '/');
        if (slash)
            snprintf(slash + 1, cap - (size_t)(slash + 1 - buf), "tools/mint.py");
        else
            snprintf(buf, cap, "tools/mint.py");
    }
    return buf;
}

int main(void)
{
    test_b64();
    test_roles();
    snprintf(dir, sizeof dir, "/tmp/m8jwtXXXXXX");
    if (!mkdtemp(dir)) {
        ok(0, "mkdtemp");
        return done_testing();
    }
    char mint[1024], cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' %.0f", mint_path(mint, sizeof mint), dir,
             NOW);
    int rc = system(cmd);
    if (!ok(rc == 0, "tests/tools/mint.py minted the keys and tokens")) {
        diag("command: %s", cmd);
        return done_testing();
    }
    ntokens = load_tsv("tokens.tsv", tokens, M8_ARRAY_LEN(tokens));
    njwks = load_tsv("jwks.tsv", jwks, M8_ARRAY_LEN(jwks));
    ok(ntokens > 100 && njwks > 10, "read %zu tokens and %zu JWKs", ntokens, njwks);

    test_key_construction();
    test_catalogue();
    test_principal();
    test_mutations();
    test_jwk();

    for (int i = 0; i < K_COUNT; i++)
        m8_key_unref(keys[i]);
    for (size_t i = 0; i < ntokens; i++) {
        free(tokens[i].name);
        free(tokens[i].text);
    }
    for (size_t i = 0; i < njwks; i++) {
        free(jwks[i].name);
        free(jwks[i].text);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    return done_testing();
}
