/* fuzz_fcgi - libFuzzer target for the FastCGI record parser and the
 * name-value decoder (fcgi_proto.c). */
#include <stdint.h>

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
            m8_pair *pairs;
            size_t n;
            m8_fcgi_decode_params(&a, f.params.data, f.params.len, &pairs, &n);
            m8_arena_free(&a);
            m8_fcgi_next(&f);
        } else if (ev == M8_FCGI_PROTO_ERROR || used == 0) {
            break;
        }
    }
    m8_fcgi_free(&f);
    return 0;
}
