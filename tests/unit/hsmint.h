/* hsmint.h - HS256 access tokens for the unit tests, signed with
 * libsodium's HMAC-SHA-256, independently of lib/auth/jwt.c:
 *   char payload[512], tok[1024];
 *   m8t_hs256_sign(tok, sizeof tok, SECRET,
 *                  m8t_access_payload(payload, sizeof payload, "writer", false, 600));
 */
#ifndef M8_HSMINT_H
#define M8_HSMINT_H

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/b64url.h"
#include "core/common.h"

/* The payload of a valid access token for role (is_superuser as given),
 * issued now and expiring exp_in seconds from now, into out; returns out. */
static __attribute__((unused)) const char *
m8t_access_payload(char *out, size_t cap, const char *role, bool superuser, long long exp_in)
{
    long long now = (long long)time(NULL);
    snprintf(out, cap,
             "{\"sub\":\"0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d\",\"type\":\"access\","
             "\"email\":\"u@example.com\",\"role\":\"%s\",\"is_superuser\":%s,"
             "\"is_active\":true,\"exp\":%lld,\"iat\":%lld,\"nbf\":%lld,"
             "\"jti\":\"8e1c6a0b-3f2d-4e5a-9b7c-1d2e3f4a5b6c\"}",
             role, superuser ? "true" : "false", now + exp_in, now, now);
    return out;
}

/* The compact HS256 JWS ({"alg":"HS256","typ":"JWT"}) of payload signed
 * with secret, into out (cut to cap - 1 bytes); returns out. */
static __attribute__((unused)) char *m8t_hs256_sign(char *out, size_t cap, const char *secret,
                                                    const char *payload)
{
    m8_buf b;
    m8_buf_init(&b, cap);
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    m8_b64url_encode(&b, (const unsigned char *)hdr, strlen(hdr));
    m8_buf_putc(&b, '.');
    m8_b64url_encode(&b, (const unsigned char *)payload, strlen(payload));
    unsigned char mac[32];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)b.data, b.len);
    crypto_auth_hmacsha256_final(&st, mac);
    m8_buf_putc(&b, '.');
    m8_b64url_encode(&b, mac, sizeof mac);
    snprintf(out, cap, "%s", b.data);
    m8_buf_free(&b);
    return out;
}

#endif
