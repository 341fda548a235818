/* fuzz_fernet.c - libFuzzer target for the Fernet decoder
 * (lib/issuer/fernet.c; doc/issuer.md#stored-google-tokens).  The input is
 * decrypted as a token under two fixed keys, with and without a ttl; it is
 * also encrypted (when short enough) and the token must decrypt back to
 * it, and a token that decrypted must hold the format's shape (its length
 * a multiple of 4, at least the length of an empty plaintext's token) and
 * give back at most its length in bytes. */
#include "issuer/fernet.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static m8_fernet_key keys[2];
    static int ready;
    if (!ready) {
        m8_fernet_key_derive("fuzz-new-key", 12, &keys[0]);
        m8_fernet_key_derive("fuzz-old-key", 12, &keys[1]);
        ready = 1;
    }
    if (size > M8_FERNET_TOKEN_MAX + 64)
        return 0;
    const char *s = (const char *)data;
    m8_buf out;
    m8_buf_init(&out, 1 << 20);
    size_t which = 99;
    int rc = m8_fernet_decrypt(keys, 2, s, size, 0, 1700000000, &out, &which);
    if (rc == 0) {
        if (size % 4 != 0 || size < M8_FERNET_TOKEN_LEN(0) || which > 1 || out.len >= size)
            abort();
    } else if (rc != M8_EPARSE && rc != M8_ETOOBIG && rc != M8_ENOMEM) {
        abort();
    }
    if (size > M8_FERNET_TOKEN_MAX && rc != M8_ETOOBIG)
        abort();
    m8_buf_reset(&out);
    int rt = m8_fernet_decrypt(keys, 2, s, size, 60, 1700000000, &out, NULL);
    if (rt == 0 && rc != 0) /* a ttl only refuses more */
        abort();
    m8_buf_free(&out);

    /* the input as a plaintext: encrypt, then decrypt back */
    if (size <= 4096) {
        m8_buf tok, back;
        m8_buf_init(&tok, 1 << 20);
        m8_buf_init(&back, 1 << 20);
        if (m8_fernet_encrypt(&keys[size & 1], data, size, 1700000000, &tok) != 0 ||
            tok.len != M8_FERNET_TOKEN_LEN(size) ||
            m8_fernet_decrypt(keys, 2, tok.data, tok.len, 60, 1700000030, &back, &which) != 0 ||
            which != (size & 1) || back.len != size || (size && memcmp(back.data, data, size) != 0))
            abort();
        m8_buf_free(&tok);
        m8_buf_free(&back);
    }
    return 0;
}
