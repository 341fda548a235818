/* b64url.h - base64url without padding (RFC 7515 section 2), shared by the
 * token parser, the JWKS and key readers and the signers.  Pure functions. */
#ifndef M8_B64URL_H
#define M8_B64URL_H

#include "core/common.h"

/* base64url without padding (RFC 7515 2): decode into out (cap bytes);
 * returns the length or -1 on a bad character, padding, or overflow. */
M8_INTERNAL long m8_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap);
M8_INTERNAL int m8_b64url_encode(m8_buf *out, const unsigned char *in, size_t n);

#endif
