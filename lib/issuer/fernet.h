/* fernet.h - Fernet tokens (the format of Python's cryptography.fernet) for
 * the provider tokens the issuer keeps on a Google session row
 * (doc/issuer.md#stored-google-tokens): version 0x80, a 64-bit big-endian
 * timestamp, a 16-byte random IV, AES-128-CBC with PKCS7 padding, and an
 * HMAC-SHA256 over all of that, the whole in urlsafe base64 with padding.
 * A key is 32 bytes: the HMAC key, then the AES key.  The issuer's keys come
 * from TOKENS_ENCRYPTION_KEY and TOKENS_ENCRYPTION_KEY_OLD as fa-auth-m8
 * makes them: the SHA-256 of the setting's string (a MultiFernet: encrypt
 * with the first, decrypt with any). */
#ifndef M8_ISSUER_FERNET_H
#define M8_ISSUER_FERNET_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include <stdint.h>

#define M8_FERNET_KEY_BYTES 32
/* The longest token text decrypt reads, and so the longest plaintext
 * (about three quarters of it) that can come back. */
#define M8_FERNET_TOKEN_MAX 8192u
/* The length of the token text of a plaintext of n bytes. */
#define M8_FERNET_TOKEN_LEN(n) (4u * ((57u + ((n) / 16u + 1u) * 16u + 2u) / 3u))

typedef struct m8_fernet_key {
    unsigned char sign[16]; /* HMAC-SHA256 key */
    unsigned char enc[16];  /* AES-128 key */
} m8_fernet_key;

/* The key fa-auth-m8 derives from a setting's string: SHA-256 of its bytes
 * (Fernet(urlsafe_b64encode(sha256(s)))). */
M8_INTERNAL void m8_fernet_key_derive(const char *secret, size_t n, m8_fernet_key *k);
/* A key as Fernet.generate_key() writes it (urlsafe base64 of 32 bytes,
 * padded): 0 or M8_EPARSE. */
M8_INTERNAL int m8_fernet_key_parse(const char *b64, size_t n, m8_fernet_key *k);
/* Wipes a key. */
M8_INTERNAL void m8_fernet_key_wipe(m8_fernet_key *k);

/* Appends the token of plain (n bytes) made at time now (Unix seconds)
 * with a random IV to out.  0, M8_ETOOBIG (a token over
 * M8_FERNET_TOKEN_MAX, or out's own limit), M8_ENOMEM or M8_EIO. */
M8_INTERNAL int m8_fernet_encrypt(const m8_fernet_key *k, const void *plain, size_t n, int64_t now,
                                  m8_buf *out);
/* The same with the IV given (the format's published test vectors). */
M8_INTERNAL int m8_fernet_encrypt_iv(const m8_fernet_key *k, const void *plain, size_t n,
                                     int64_t now, const unsigned char iv[16], m8_buf *out);

/* Decrypts token (n bytes of text) with keys[0], then keys[1]... (the
 * first key whose HMAC matches, compared in constant time before anything
 * is decrypted) and appends the plaintext to out.  ttl > 0 also refuses a
 * token older than ttl seconds or made more than 60 s after now, as
 * Fernet.decrypt(token, ttl) does; ttl 0 checks no time.  *which (may be
 * NULL) gets the index of the key that matched.  0; M8_ETOOBIG over
 * M8_FERNET_TOKEN_MAX; M8_EPARSE for anything else that is not a valid
 * token under these keys (its text, version, length, HMAC, padding or
 * time); M8_ENOMEM; M8_EIO. */
M8_INTERNAL int m8_fernet_decrypt(const m8_fernet_key *keys, size_t nkeys, const char *token,
                                  size_t n, int64_t ttl, int64_t now, m8_buf *out, size_t *which);

#endif
