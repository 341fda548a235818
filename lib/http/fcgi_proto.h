/* fcgi_proto.h - the FastCGI 1.0 wire protocol, as a pure state machine
 * over bytes (no I/O), so that it can be fuzzed (tests/fuzz/fuzz_fcgi.c)
 * and driven by the epoll engine (app/engine_epoll.c).
 *
 * One request at a time per connection (FCGI_MPXS_CONNS=0, as libfcgi);
 * a second BEGIN_REQUEST while one is active gets FCGI_CANT_MPX_CONN.
 * RESPONDER requests are served, and AUTHORIZER requests too where the
 * connection's owner says so (authorizer_ok, from the engine options:
 * fcgim8-gate's m8_app_set_authorizer); an
 * AUTHORIZER request has no stdin: it is complete after its empty PARAMS
 * record (f->role says which).  Other roles get FCGI_UNKNOWN_ROLE.  Every
 * buffer is
 * bounded: params by M8_MAX_PARAMS_BYTES, the body by the app's limit
 * (past it the rest of the body is read and dropped, and the request is
 * flagged too big so the app answers 413). */
#ifndef M8_FCGI_PROTO_H
#define M8_FCGI_PROTO_H

#include "http/http.h"

enum {
    M8_FCGI_BEGIN_REQUEST = 1,
    M8_FCGI_ABORT_REQUEST = 2,
    M8_FCGI_END_REQUEST = 3,
    M8_FCGI_PARAMS = 4,
    M8_FCGI_STDIN = 5,
    M8_FCGI_STDOUT = 6,
    M8_FCGI_STDERR = 7,
    M8_FCGI_DATA = 8,
    M8_FCGI_GET_VALUES = 9,
    M8_FCGI_GET_VALUES_RESULT = 10,
    M8_FCGI_UNKNOWN_TYPE = 11,
};
enum { M8_FCGI_RESPONDER = 1, M8_FCGI_AUTHORIZER = 2, M8_FCGI_FILTER = 3 };
enum {
    M8_FCGI_REQUEST_COMPLETE = 0,
    M8_FCGI_CANT_MPX_CONN = 1,
    M8_FCGI_OVERLOADED = 2,
    M8_FCGI_UNKNOWN_ROLE = 3,
};

#define M8_FCGI_HEADER_LEN 8u
#define M8_FCGI_MAX_RECORD (8u + 65535u + 255u)

/* What m8_fcgi_feed() found. */
typedef enum m8_fcgi_event {
    M8_FCGI_NEED_MORE = 0, /* consumed what it could; read more */
    M8_FCGI_REQUEST,       /* a whole request (params + stdin, or an authorizer's
                              params) is ready */
    M8_FCGI_ABORTED,       /* the active request was aborted (END_REQUEST queued in reply);
                              close unless keep_conn */
    M8_FCGI_PROTO_ERROR,   /* malformed stream: close the connection */
} m8_fcgi_event;

typedef struct m8_fcgi {
    size_t max_body;
    uint16_t req_id; /* active request, 0 = none */
    int role;        /* its role: M8_FCGI_RESPONDER or M8_FCGI_AUTHORIZER */
    bool keep_conn;
    bool authorizer_ok; /* serve the AUTHORIZER role (set by the engine; init: false) */
    bool params_done, stdin_done;
    bool body_too_big;
    m8_buf params; /* raw name-value stream */
    m8_buf body;
    m8_buf reply; /* records to send now (management answers, refusals) */
} m8_fcgi;

M8_INTERNAL void m8_fcgi_init(m8_fcgi *f, size_t max_body);
M8_INTERNAL void m8_fcgi_free(m8_fcgi *f);
/* Clears the request state after a response (keeps buffers' memory). */
M8_INTERNAL void m8_fcgi_next(m8_fcgi *f);

/* Consumes whole records from data[0..len); *consumed says how many bytes.
 * Stops right after a record that completes a request (M8_FCGI_REQUEST).
 * Answers to management records are appended to f->reply. */
M8_INTERNAL m8_fcgi_event m8_fcgi_feed(m8_fcgi *f, const char *data, size_t len, size_t *consumed);

/* Decodes a FastCGI name-value stream into arena pairs (bounded by
 * M8_MAX_PARAMS).  M8_EPARSE on a truncated or overlong pair, or one
 * whose name or value holds a NUL byte.  The pairs' strings are copied into
 * the arena. */
M8_INTERNAL int m8_fcgi_decode_params(m8_arena *a, const char *p, size_t n, m8_pair **out,
                                      size_t *nout);
/* The same, without the copy: the stream p[0..n) is rewritten in place into
 * the NUL-terminated names and values the pairs point to (only the array
 * comes from the arena), so p must outlive them and is no longer a
 * name-value stream afterwards.  The last value's NUL goes to p[n], which
 * must be writable (an m8_buf has room for it).  On an error p is left as
 * it was. */
M8_INTERNAL int m8_fcgi_params_in_place(m8_arena *a, char *p, size_t n, m8_pair **out,
                                        size_t *nout);

/* Encodes a name-value pair (for tests and GET_VALUES_RESULT). */
M8_INTERNAL int m8_fcgi_encode_pair(m8_buf *out, const char *name, size_t nl, const char *value,
                                    size_t vl);

/* Appends one record (header, content, padding to a multiple of 8). */
M8_INTERNAL int m8_fcgi_record(m8_buf *out, int type, uint16_t id, const void *content, size_t len);

/* Appends a full response: data as FCGI_STDOUT records, the empty
 * STDOUT, and END_REQUEST(app_status, REQUEST_COMPLETE). */
M8_INTERNAL int m8_fcgi_response(m8_buf *out, uint16_t id, const char *data, size_t len,
                                 uint32_t app_status);

#endif
