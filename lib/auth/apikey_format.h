/* apikey_format.h - the shapes of an API key and of a key scope
 * (doc/issuer.md#api-key-scopes-and-format).  Pure: bytes in, a verdict out;
 * no I/O.  Shared by the issuer (making and checking keys) and the consumer
 * side (refusing a mistyped key before any call).  Fuzzed by
 * tests/fuzz/fuzz_apikey_format.c.
 *
 * Two key formats:
 *   legacy  "ak_" + 32 lower-case hex digits (35 bytes): what fa-auth-m8
 *           makes; no checksum, only the issuer's database can tell a typo.
 *   m8      "m8ak_" + 32 lower-case hex digits of 128 random bits + 8
 *           lower-case hex digits of checksum (45 bytes).  The checksum is
 *           the first 4 bytes of the SHA-256 of the 37 bytes before it, so
 *           anyone (the issuer, a consumer, a secret scanner) can refuse a
 *           mistyped or truncated key without asking the database; the
 *           prefix makes a leaked key easy to find
 *           (regular expression \bm8ak_[0-9a-f]{40}\b).
 *
 * A scope ("items:read") is 1 to M8_APIKEY_SCOPE_MAX bytes: 1 to 3 names
 * joined by ':', each name a lower-case letter followed by lower-case
 * letters, digits, '_', '-' or '.'. */
#ifndef M8_APIKEY_FORMAT_H
#define M8_APIKEY_FORMAT_H

#include "core/common.h"

#define M8_APIKEY_LEGACY_PREFIX "ak_"
#define M8_APIKEY_LEGACY_LEN 35u
#define M8_APIKEY_M8_PREFIX "m8ak_"
#define M8_APIKEY_M8_LEN 45u
#define M8_APIKEY_M8_BODY 32u    /* hex digits of randomness */
#define M8_APIKEY_M8_CHECK 8u    /* hex digits of checksum */
#define M8_APIKEY_SCOPE_MAX 64u  /* bytes of one scope */
#define M8_APIKEY_MAX_SCOPES 16u /* scopes on one key */

typedef enum m8_apikey_shape {
    M8_AKS_OTHER = 0,  /* neither prefix: not a key this issuer family makes */
    M8_AKS_LEGACY,     /* a well-formed legacy key */
    M8_AKS_M8,         /* a well-formed m8 key with a matching checksum */
    M8_AKS_M8_BROKEN,  /* "m8ak_" but the length, a digit or the checksum is wrong */
    M8_AKS_LEGACY_BAD, /* "ak_" but not 32 lower-case hex digits */
} m8_apikey_shape;

/* The shape of key[0..len). */
M8_INTERNAL m8_apikey_shape m8_apikey_shape_of(const char *key, size_t len);

/* True for the shapes no issuer of this family ever made
 * (M8_AKS_M8_BROKEN): such a key is refused without a lookup.  A legacy
 * key or any other text is looked up (a fa-auth-m8 database may hold keys
 * of a shape this build does not know). */
M8_INTERNAL bool m8_apikey_shape_refused(m8_apikey_shape s);

/* A fresh m8 key into out (M8_APIKEY_M8_LEN bytes and a NUL).  The caller
 * wipes it (sodium_memzero) after use. */
M8_INTERNAL void m8_apikey_make_m8(char out[M8_APIKEY_M8_LEN + 1]);

/* A fresh legacy key into out: "ak_" + the hex of a UUID4. */
M8_INTERNAL void m8_apikey_make_legacy(char out[M8_APIKEY_LEGACY_LEN + 1]);

/* The checksum of an m8 key's first 37 bytes into out (8 hex digits). */
M8_INTERNAL void m8_apikey_checksum(const char *head, char out[M8_APIKEY_M8_CHECK + 1]);

/* True when s[0..n) is a valid scope (see above). */
M8_INTERNAL bool m8_apikey_scope_valid(const char *s, size_t n);

#endif
