/* fuzz_clientip.c - libFuzzer target for the issuer's client address
 * (lib/issuer/clientip.c m8_issuer_client_ip_of): an X-Forwarded-For value
 * and a peer address from the input (split at its first NUL byte), the
 * trusted proxy count from the first byte.  The answer must be
 * NUL-terminated within its buffer, be "unknown", the peer as given (cut to
 * the buffer), or an address that inet_pton reads back (IPv4 or IPv6). */
#include "issuer/clientip.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 8192)
        return 0;
    long long n = data[0] % 5; /* 0..4 trusted proxies */
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    const char *xff = buf;
    size_t xl = strlen(buf);
    const char *peer = xl + 1 < size - 1 ? buf + xl + 1 : NULL;
    char out[M8_ISSUER_CLIENT_IP_MAX];
    memset(out, 'x', sizeof out);
    size_t len = m8_issuer_client_ip_of(data[0] & 0x80 ? NULL : xff, peer, n, out);
    if (len >= sizeof out || out[len] != '\0' || strlen(out) != len)
        abort();
    unsigned char a[16];
    /* the peer (REMOTE_ADDR, from the web server) as given, cut to the buffer */
    bool as_peer = peer && strncmp(out, peer, len) == 0 &&
                   (peer[len] == '\0' || len == M8_ISSUER_CLIENT_IP_MAX - 1);
    bool ok = strcmp(out, "unknown") == 0 || as_peer || inet_pton(AF_INET, out, a) == 1 ||
              inet_pton(AF_INET6, out, a) == 1;
    if (!ok)
        abort();
    free(buf);
    return 0;
}
