/* b64url.c - base64url without padding (RFC 4648 section 5, RFC 7515
 * section 2): the strict decoder that tokens, JWKS and signatures share, and
 * the encoder.  Pure functions. */
#include "core/b64url.h"

#include <limits.h>
#include <stdint.h>

/* Character -> 6-bit value, -1 outside the base64url alphabet; F(c, sh)
 * makes one table entry from it, and B64_256 a table for every byte. */
#define B64_VAL(c)                                                                                 \
    ((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                        \
     : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                                   \
     : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                                   \
     : (c) == '-'               ? 62                                                               \
     : (c) == '_'               ? 63                                                               \
                                : -1)
#define B64_4(F, c, sh) F(c, sh), F((c) + 1, sh), F((c) + 2, sh), F((c) + 3, sh)
#define B64_16(F, c, sh)                                                                           \
    B64_4(F, c, sh), B64_4(F, (c) + 4, sh), B64_4(F, (c) + 8, sh), B64_4(F, (c) + 12, sh)
#define B64_64(F, c, sh)                                                                           \
    B64_16(F, c, sh), B64_16(F, (c) + 16, sh), B64_16(F, (c) + 32, sh), B64_16(F, (c) + 48, sh)
#define B64_256(F, sh) B64_64(F, 0, sh), B64_64(F, 64, sh), B64_64(F, 128, sh), B64_64(F, 192, sh)

#define B64_PLAIN(c, sh) B64_VAL(c)
static const signed char b64tab[256] = {B64_256(B64_PLAIN, 0)};

static int b64v(unsigned char c)
{
    return b64tab[c];
}

/* The same values already shifted to their place in a 4-character group
 * (18, 12, 6, 0 bits), B64_BAD outside the alphabet: a group decodes with
 * four loads and three ORs, and one test of the accumulated bad bit at the
 * end replaces a branch per group. */
#define B64_BAD UINT32_C(0x80000000)
#define B64_AT(c, sh) (B64_VAL(c) < 0 ? B64_BAD : (uint32_t)B64_VAL(c) << (sh))
static const uint32_t at18[256] = {B64_256(B64_AT, 18)}, at12[256] = {B64_256(B64_AT, 12)},
                      at6[256] = {B64_256(B64_AT, 6)}, at0[256] = {B64_256(B64_AT, 0)};

/* Also used with out == NULL to validate and size only.  The unused low
 * bits of the last character must be zero (one encoding per byte string). */
long m8_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (!in && n)
        return -1;
    size_t rem = n % 4;
    if (rem == 1)
        return -1;
    size_t outlen = n / 4 * 3 + (rem == 2 ? 1 : rem == 3 ? 2 : 0);
    if (outlen > cap || outlen > LONG_MAX)
        return -1;
    size_t o = 0, i = 0, whole = n / 4 * 4;
    if (!out) { /* validate and size only */
        int acc = 0;
        for (; i < whole; i++)
            acc |= b64tab[(unsigned char)in[i]];
        if (acc < 0)
            return -1;
        o = whole / 4 * 3;
    }
    uint32_t bad = 0; /* out holds garbage when this ends up set: the caller gets -1 */
    const unsigned char *u = (const unsigned char *)in;
    for (; i < whole; i += 4) {
        uint32_t v = at18[u[i]] | at12[u[i + 1]] | at6[u[i + 2]] | at0[u[i + 3]];
        bad |= v;
        out[o] = (unsigned char)(v >> 16);
        out[o + 1] = (unsigned char)(v >> 8);
        out[o + 2] = (unsigned char)v;
        o += 3;
    }
    if (bad & B64_BAD)
        return -1;
    if (rem == 2) {
        int a = b64v((unsigned char)in[i]), b = b64v((unsigned char)in[i + 1]);
        if ((a | b) < 0 || (b & 0x0f) != 0)
            return -1;
        if (out)
            out[o] = (unsigned char)(a << 2 | b >> 4);
        o += 1;
    } else if (rem == 3) {
        int a = b64v((unsigned char)in[i]), b = b64v((unsigned char)in[i + 1]);
        int c = b64v((unsigned char)in[i + 2]);
        if ((a | b | c) < 0 || (c & 0x03) != 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        if (out) {
            out[o] = (unsigned char)(v >> 16);
            out[o + 1] = (unsigned char)(v >> 8);
        }
        o += 2;
    }
    return (long)o;
}

int m8_b64url_encode(m8_buf *out, const unsigned char *in, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int rc = m8_buf_reserve(out, (n + 2) / 3 * 4 + 1);
    if (rc)
        return rc;
    char *p = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
        *p++ = abc[(v >> 6) & 63];
        *p++ = abc[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
        *p++ = abc[(v >> 6) & 63];
    }
    out->len = (size_t)(p - out->data);
    out->data[out->len] = '\0';
    return 0;
}
