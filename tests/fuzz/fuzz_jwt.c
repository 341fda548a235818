/* fuzz_jwt.c - libFuzzer target for the JWS/claims path (lib/auth/jwt.c): any
 * bytes are parsed, verified with a fixed HS256 key, and (signature or not)
 * their payload is checked under the strict and the permissive profile.
 * Invariants: a parsed token has a header object; an accepted principal
 * has its required fields, a known role and a consistent superuser flag;
 * base64url decoding is canonical (decode then encode gives the input).
 * An input that starts with '{' is also taken as a payload: it is wrapped
 * in a token signed with the key, so the claims checks see it verified. */
#include "auth/jwt.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "AuthSdkM8-Fixture_TrustedTestKey-2026-DoNotUseInProd!";

static void check_principal(const m8_principal *p)
{
    if (!p->id || strlen(p->id) != 36 || !p->email || !p->role || !p->jti)
        abort();
    if (m8_role_rank(p->role) < 0)
        abort();
    if ((strcmp(p->role, "superadmin") == 0) != p->is_superuser)
        abort();
}

static void b64_roundtrip(const uint8_t *data, size_t size)
{
    unsigned char out[M8_MAX_TOKEN_BYTES];
    long n = m8_b64url_decode((const char *)data, size, out, sizeof out);
    if (n < 0)
        return;
    m8_buf b;
    m8_buf_init(&b, 2 * M8_MAX_TOKEN_BYTES);
    if (m8_b64url_encode(&b, out, (size_t)n) != 0 || b.len != size ||
        (size && memcmp(b.data, data, size) != 0))
        abort();
    m8_buf_free(&b);
}

static void run(const char *tok, size_t size, const m8_key *key);

/* {"alg":"HS256"} . base64url(payload) . HMAC */
static void signed_payload(const uint8_t *data, size_t size, const m8_key *key)
{
    if (size > M8_MAX_JWT_PART_BYTES + 16)
        return;
    m8_buf b;
    m8_buf_init(&b, 4 * M8_MAX_TOKEN_BYTES);
    m8_buf_puts(&b, "eyJhbGciOiJIUzI1NiJ9.");
    m8_b64url_encode(&b, data, size);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, sizeof secret - 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)b.data, b.len);
    crypto_auth_hmacsha256_final(&st, mac);
    m8_buf_putc(&b, '.');
    m8_b64url_encode(&b, mac, sizeof mac);
    run(b.data, b.len, key);
    m8_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static m8_key *key;
    if (!key) {
        char err[256];
        key = m8_key_from_secret(secret, sizeof secret - 1, err, sizeof err);
        if (!key)
            abort();
    }
    b64_roundtrip(data, size);
    if (size && data[0] == '{')
        signed_payload(data, size, key);
    run((const char *)data, size, key);
    return 0;
}

static void run(const char *tok, size_t size, const m8_key *key)
{
    m8_jws j;
    if (m8_jws_parse(tok, size, &j) != M8_JWT_OK) {
        if (j.header || j.payload)
            abort(); /* freed on failure */
        return;
    }
    if (!j.header || j.sig_len > sizeof j.sig || j.signing_input_len >= size)
        abort();
    m8_jwt_reason v = m8_jws_verify(&j, M8_ALG_HS256, key);
    if (v != M8_JWT_OK && v != M8_JWT_INVALID)
        abort();
    if (m8_jws_verify(&j, M8_ALG_RS256, key) != M8_JWT_INVALID)
        abort(); /* the key is HS256: any other pin is refused */
    if (m8_jws_parse_payload(&j) == M8_JWT_OK) {
        static const m8_claims_policy policies[] = {
            {true, "https://auth.example.com", "item-service"},
            {false, NULL, NULL},
        };
        for (size_t i = 0; i < M8_ARRAY_LEN(policies); i++) {
            m8_principal p;
            m8_jwt_reason r = m8_claims_check(&j, &policies[i], 1800000000.0, &p);
            if (r == M8_JWT_OK)
                check_principal(&p);
            else if (p.id || p.email || p.role)
                abort();
            m8_principal_clear(&p);
        }
    }
    m8_jws_free(&j);
}
