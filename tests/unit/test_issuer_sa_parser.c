/* test_issuer_sa_parser.c - the client-credentials request's parser
 * (lib/issuer/form_cc.c; doc/issuer.md#service-accounts-and-client-credentials)
 * without a database, part of test_issuer_service_accounts: HTTP Basic
 * client authentication (RFC 6749 section 2.3.1, RFC 7617), the refusal of
 * two methods at once, the scope syntax (RFC 6749 section 3.3) and which
 * grant a token-endpoint form is. */
#include "config.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "issuer/form_cc.h"
#define M8T_SHARED
#include "tap.h"

#define FORM "application/x-www-form-urlencoded"

void test_sa_parser(void);

/* "Basic " and the base64 of raw. */
static const char *basic_of(const char *raw, char *out, size_t outlen)
{
    out[0] = '\0';
    if (outlen < 7 ||
        sodium_base64_ENCODED_LEN(strlen(raw), sodium_base64_VARIANT_ORIGINAL) > outlen - 6)
        return out;
    memcpy(out, "Basic ", 6);
    sodium_bin2base64(out + 6, outlen - 6, (const unsigned char *)raw, strlen(raw),
                      sodium_base64_VARIANT_ORIGINAL);
    return out;
}

static int basic(m8_arena *a, const char *h, char *id, char *secret)
{
    char *i = NULL, *s = NULL;
    size_t in = 0, sn = 0;
    int rc = m8_cc_basic(a, h, &i, &in, &s, &sn);
    snprintf(id, 128, "%s", i ? i : "");
    snprintf(secret, 300, "%s", s ? s : "");
    return rc;
}

/* HTTP Basic client authentication (RFC 6749 section 2.3.1, RFC 7617) and
 * the choice between the two methods, without a database. */
void test_sa_parser(void)
{
    m8_arena a;
    m8_arena_init(&a, 0);
    char h[2200], id[128], sec[300], big[1200];
    is_int(basic(&a, basic_of("id%3Ax:se%2Bc:ret+x", h, sizeof h), id, sec), 1,
           "Basic: a well-formed header is client authentication");
    ok(strcmp(id, "id:x") == 0 && strcmp(sec, "se+c:ret x") == 0,
       "Basic: split at the first ':', then each part form-urlencoding-decoded (%s / %s)", id, sec);
    snprintf(h, sizeof h, "basic   %s", basic_of("a:b", big, sizeof big) + 6);
    is_int(basic(&a, h, id, sec), 1, "Basic: the scheme in any case, several spaces");
    is_int(basic(&a, "Basic YWI6Yw", id, sec), M8_EPARSE, "Basic: base64 without its padding");
    is_int(basic(&a, "Basic YWI6Yw==x", id, sec), M8_EPARSE, "Basic: bytes after the base64");
    is_int(basic(&a, basic_of("nocolon", h, sizeof h), id, sec), M8_EPARSE, "Basic: no ':'");
    is_int(basic(&a, basic_of(":secret", h, sizeof h), id, sec), M8_EPARSE, "Basic: an empty id");
    is_int(basic(&a, basic_of("id:", h, sizeof h), id, sec), M8_EPARSE, "Basic: an empty secret");
    is_int(basic(&a, basic_of("i%zz:secret", h, sizeof h), id, sec), M8_EPARSE,
           "Basic: a malformed %% escape");
    is_int(basic(&a, basic_of("id:secret%4", h, sizeof h), id, sec), M8_EPARSE,
           "Basic: a truncated %% escape");
    memset(big, 'a', 64);
    snprintf(big + 64, sizeof big - 64, ":s");
    is_int(basic(&a, basic_of(big, h, sizeof h), id, sec), 1, "Basic: an id of 64 bytes");
    memset(big, 'a', 65);
    snprintf(big + 65, sizeof big - 65, ":s");
    is_int(basic(&a, basic_of(big, h, sizeof h), id, sec), M8_EPARSE, "Basic: an id over 64 bytes");
    memset(big, 'a', 800);
    big[0] = 'i', big[1] = ':';
    big[800] = '\0';
    is_int(basic(&a, basic_of(big, h, sizeof h), id, sec), M8_EPARSE,
           "Basic: a header over 1024 bytes");
    is_int(basic(&a, "Bearer abc", id, sec), 0, "Basic: another scheme is not Basic");
    is_int(basic(&a, "BasicYWI6Yw==", id, sec), 0, "Basic: a longer scheme name is not Basic");

    m8_cc_request r;
    const char *cc = "grant_type=client_credentials";
    basic_of("the-id:the-secret", h, sizeof h);
    is_int(m8_cc_parse(&a, FORM, "grant_type=client_credentials&client_id=x&client_secret=y", 57, 0,
                       h, &r),
           M8_CC_INVALID_REQUEST, "parse: Basic and form credentials: invalid_request");
    is_int(m8_cc_parse(&a, FORM, "grant_type=client_credentials&client_secret=y", 45, 0, h, &r),
           M8_CC_INVALID_REQUEST, "parse: Basic and a form secret alone: invalid_request");
    is_int(
        m8_cc_parse(&a, FORM, "grant_type=client_credentials&client_id=x", 41, 0, "Basic !!", &r),
        M8_CC_INVALID_REQUEST, "parse: a malformed Basic header and a form id: invalid_request");
    is_int(m8_cc_parse(&a, FORM, cc, strlen(cc), 0, "Basic !!", &r), M8_CC_INVALID_CLIENT,
           "parse: a malformed Basic header alone: invalid_client");
    is_int(m8_cc_parse(&a, FORM, cc, strlen(cc), 0, h, &r), M8_CC_OK, "parse: Basic alone: OK");
    ok(r.basic && strcmp(r.client_id, "the-id") == 0 && strcmp(r.client_secret, "the-secret") == 0,
       "parse: ... the credentials are the header's");
    m8_cc_wipe(&r);
    const char *f2 = "grant_type=client_credentials&client_id=a&client_id=b&client_secret=s";
    is_int(m8_cc_parse(&a, FORM, f2, strlen(f2), 0, "Bearer x", &r), M8_CC_OK,
           "parse: form credentials with a Bearer header: OK (not client authentication)");
    ok(!r.basic && strcmp(r.client_id, "b") == 0, "parse: ... a repeated field: the last counts");
    m8_cc_wipe(&r);
    is_int(m8_cc_parse(&a, FORM, "grant_type=client_credentials&client_secret=s", 45, 0, NULL, &r),
           M8_CC_INVALID_CLIENT, "parse: a form without client_id: invalid_client");
    is_int(m8_cc_parse(&a, FORM, "grant_type=client_credentials&scope=a%20%20b", 44, 0, h, &r),
           M8_CC_INVALID_SCOPE, "parse: a double space in the scope: invalid_scope");
    is_int(m8_cc_parse(&a, FORM, "grant_type=client_credentials&scope=a%22b", 41, 0, h, &r),
           M8_CC_INVALID_SCOPE, "parse: a '\"' in the scope: invalid_scope");

    is_int(m8_cc_grant_kind(&a, FORM, cc, strlen(cc), 0, NULL), M8_GRANT_CLIENT_CREDENTIALS,
           "kind: grant_type=client_credentials");
    is_int(m8_cc_grant_kind(&a, FORM, "grant_type=password&username=u", 30, 0, h),
           M8_GRANT_PASSWORD, "kind: grant_type=password, even with Basic: the password grant");
    is_int(m8_cc_grant_kind(&a, FORM, "grant_type=refresh_token", 24, 0, h), M8_GRANT_UNSUPPORTED,
           "kind: another grant with Basic: unsupported");
    is_int(m8_cc_grant_kind(&a, FORM, "grant_type=refresh_token", 24, 0, NULL), M8_GRANT_PASSWORD,
           "kind: another grant without client authentication: the password grant");
    is_int(m8_cc_grant_kind(&a, FORM, "username=u&password=p", 21, 0, h), M8_GRANT_PASSWORD,
           "kind: no grant_type: the password grant");
    m8_arena_free(&a);
}
