/* fuzz_json_body.c - libFuzzer target for the JSON request body
 * (lib/http/request.c m8_req_parse_json): any bytes either parse to a value or give
 * the FastAPI-shaped 422, never anything else. */
#include "http/http.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    m8_request req;
    m8_req_init(&req, NULL);
    m8_pair params[] = {{"REQUEST_METHOD", "POST"},
                        {"REQUEST_URI", "/api/items"},
                        {"CONTENT_TYPE", "application/json"}};
    if (m8_req_from_params(&req, params, 3, (const char *)data, size) != 0)
        abort();
    int rc = m8_req_parse_json(&req);
    if (rc == 0) {
        if (!m8_req_json(&req) && size == 0)
            abort();
        if (req.status != 0)
            abort();
    } else if (rc != M8_EPARSE || req.status != 422 || req.body_out.len == 0) {
        abort();
    }
    m8_buf out;
    m8_buf_init(&out, M8_MAX_RESPONSE_BYTES + 4096);
    m8_res_render(&req, false, &out);
    m8_buf_free(&out);
    m8_req_free(&req);
    return 0;
}
