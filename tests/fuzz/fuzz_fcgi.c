/* fuzz_fcgi - libFuzzer target for the FastCGI record parser and the
 * name-value decoders (fcgi_proto.c), the in-place one checked against the
 * copying one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/fcgi_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    m8_fcgi f;
    m8_fcgi_init(&f, 4096);
    const char *p = (const char *)data;
    size_t pos = 0;
    while (pos < size) {
        size_t used = 0;
        m8_fcgi_event ev = m8_fcgi_feed(&f, p + pos, size - pos, &used);
        pos += used;
        m8_buf_reset(&f.reply);
        if (ev == M8_FCGI_REQUEST) {
            m8_arena a;
            m8_arena_init(&a, 1 << 20);
            m8_pair *pairs, *in_place;
            size_t n, n2;
            int rc = m8_fcgi_decode_params(&a, f.params.data, f.params.len, &pairs, &n);
            /* The in-place decoder must read the stream exactly as the copying one. */
            int rc2 = m8_fcgi_params_in_place(&a, f.params.data, f.params.len, &in_place, &n2);
            if (rc != rc2 || (rc == 0 && n != n2))
                abort();
            for (size_t i = 0; rc == 0 && i < n; i++) {
                if (strcmp(pairs[i].name, in_place[i].name) != 0 ||
                    strcmp(pairs[i].value, in_place[i].value) != 0)
                    abort();
            }
            m8_arena_free(&a);
            m8_fcgi_next(&f);
        } else if (ev == M8_FCGI_PROTO_ERROR || used == 0) {
            break;
        }
    }
    m8_fcgi_free(&f);
    return 0;
}
