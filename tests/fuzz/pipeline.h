/* pipeline.h - what the files of the tests/fuzz/fuzz_pipeline target
 * share: the parsed input, the signing keys, the encoder and the checker. */
#ifndef M8_TESTS_PIPELINE_H
#define M8_TESTS_PIPELINE_H

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "app/app.h"
#include "app/server.h"
#include "auth/jwt.h"
#include "core/log.h"
#include "http/fcgi_proto.h"
#include "http/http.h"

#define N_APPS 3

#define MAX_PARAMS 600 /* a little over M8_MAX_PARAMS: the limit is exercised */

/* ------------------------------------------------------------ input */

typedef struct param {
    char *name, *value;
    size_t nl, vl;
} param;

typedef struct input {
    int app;
    param params[MAX_PARAMS];
    size_t n;
    bool keep, abort_req, have_cl;
    size_t split;
    const char *body;
    size_t body_len;
    /* token synthesis */
    const char *jose;
    size_t jose_len;
    const char *scheme;
    size_t scheme_len;
    long tamper;
} input;

/* fuzz_pipeline.c */
extern EVP_PKEY *rsa_key;
void die(const char *what);

/* pipeline_encode.c */
void parse_input(input *in, m8_arena *a, const char *d, size_t size);
void encode_request(m8_buf *out, const input *in, uint16_t id);

/* pipeline_check.c */
void check_reply(int app, const m8_buf *reply);

#endif
