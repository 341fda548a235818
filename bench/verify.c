/* bench/verify - token verifications per CPU second, one thread, for the
 * settings in ENV_FILE and the token in TOKEN_FILE:
 *   full:   m8_auth_verify (parse, key, signature, payload, claims)
 *   cached: a request built from FastCGI params as the serving loops do
 *           (m8_req_adopt_params) and m8_auth_check on a repeated token
 *           (the verified-token cache)
 *   hit:    the m8_auth_check part of cached alone (cached minus the
 *           request building, timed on its own)
 *   sig:    m8_jws_verify alone (alg check and signature, parsed once)
 *   json:   json-c parsing and freeing the token's decoded payload alone,
 *           through m8_json_parse_with (core/json.c) with a reused strict
 *           tokener as jwt.c uses it, UTF-8 left to jwt.c's own text scan:
 *           what m8_jws_parse_payload costs at least
 *   hmac:   HS256 only (0 otherwise): libsodium's HMAC-SHA256 over the same
 *           signing input with the same key, keyed per call as a plain
 *           caller does (crypto_auth_hmacsha256_init/update/final: the
 *           one-shot crypto_auth_hmacsha256 takes 32-byte keys only, and is
 *           these three calls)
 * sig and json bound full from above: full can at best reach
 * 1 / (1/sig + 1/json).  Rates are per second of this thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID), as `openssl speed` divides by user CPU time:
 * on a shared machine, wall-clock rates mostly measure the neighbours.
 * Each figure runs for SECONDS of CPU time (at most 10x that of wall
 * time).  Run by bench/verify.sh, which prints these next to
 * `openssl speed`.
 *
 *   bench/verify ENV_FILE TOKEN_FILE SECONDS [full|cached|sig|json|hmac]
 *
 * The optional last argument runs one phase only (for perf); its figure is
 * printed alone. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include <json-c/json.h>
#include <sodium.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "config/settings.h"
#include "core/json.h"
#include "core/log.h"

extern char **environ;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs fn(arg) in batches of batch until secs of this thread's CPU time
 * have passed (or 10 x secs of wall time): calls per CPU second. */
static double rate(bool (*fn)(void *), void *arg, int batch, double secs)
{
    double n = 0, c0 = cpu_now(), w0 = m8_now_mono();
    while (cpu_now() - c0 < secs && m8_now_mono() - w0 < 10 * secs) {
        for (int i = 0; i < batch; i++) {
            if (!fn(arg))
                return -1;
        }
        n += batch;
    }
    return n / (cpu_now() - c0);
}

typedef struct bench {
    m8_auth *a;
    m8_key *key;
    m8_alg alg;
    const char *tok;
    size_t len;
    m8_request req;
    m8_pair params[3];
    m8_jws jws;
    json_tokener *jt;
    unsigned char payload[M8_MAX_JWT_PART_BYTES];
    size_t payload_len;
    const unsigned char *secret; /* HS256 */
    size_t secret_len;
} bench;

static bool full(void *arg)
{
    bench *b = arg;
    m8_principal p = {0};
    int r = m8_auth_verify(b->a, b->tok, b->len, m8_now_wall(), &p, NULL);
    m8_principal_clear(&p);
    return r == 0;
}

static bool request_only(void *arg)
{
    bench *b = arg;
    m8_req_reset(&b->req);
    return m8_req_adopt_params(&b->req, b->params, 3, NULL, 0) == 0;
}

static bool cached(void *arg)
{
    bench *b = arg;
    return request_only(b) && m8_auth_check(b->a, &b->req, M8_USER);
}

static bool sig(void *arg)
{
    bench *b = arg;
    return m8_jws_verify(&b->jws, b->alg, b->key) == M8_JWT_OK;
}

static bool json(void *arg)
{
    bench *b = arg;
    json_object *o =
        m8_json_parse_with(b->jt, (const char *)b->payload, b->payload_len, NULL, NULL);
    json_object_put(o);
    return o != NULL;
}

static bool hmac(void *arg)
{
    bench *b = arg;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, b->secret, b->secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)b->jws.signing_input,
                                  b->jws.signing_input_len);
    crypto_auth_hmacsha256_final(&st, mac);
    return b->jws.sig_len == sizeof mac && sodium_memcmp(mac, b->jws.sig, sizeof mac) == 0;
}

int main(int argc, char **argv)
{
    static const char *const phases[] = {"full", "cached", "sig", "json", "hmac"};
    int phase = -1; /* all */
    for (size_t i = 0; argc == 5 && i < M8_ARRAY_LEN(phases); i++) {
        if (strcmp(argv[4], phases[i]) == 0)
            phase = (int)i;
    }
    if ((argc != 4 && argc != 5) || (argc == 5 && phase < 0)) {
        fprintf(stderr, "usage: %s ENV_FILE TOKEN_FILE SECONDS [full|cached|sig|json|hmac]\n",
                argv[0]);
        return 2;
    }
    bool do_full = phase < 0 || phase == 0;
    bool do_cached = phase < 0 || phase == 1;
    m8_log_set_level(M8_LOG_CRITICAL);
    double secs = strtod(argv[3], NULL);
    static bench b;
    char *tok;
    if (m8_read_file(argv[2], M8_MAX_TOKEN_BYTES + 2, true, &tok, &b.len) != 0)
        return 2;
    while (b.len && (tok[b.len - 1] == '\n' || tok[b.len - 1] == '\r'))
        tok[--b.len] = '\0';
    b.tok = tok;
    m8_errlist errs = {0};
    m8_settings_source src = {.env = environ, .env_file = argv[1]};
    m8_settings *s = m8_settings_load(&src, &errs);
    char err[256] = "";
    b.a = s ? m8_auth_new(s, err, sizeof err) : NULL;
    if (!b.a) {
        fprintf(stderr, "bench/verify: cannot build a verifier: %s\n",
                errs.n ? errs.lines[0] : err);
        return 2;
    }
    b.alg = s->access_token_algorithm;
    if (b.alg == M8_ALG_HS256) {
        b.secret = (const unsigned char *)s->access_secret_key;
        b.secret_len = strlen(s->access_secret_key);
    }
    b.key = b.alg == M8_ALG_HS256
                ? m8_key_from_secret(s->access_secret_key, strlen(s->access_secret_key), err,
                                     sizeof err)
                : m8_key_from_pem(s->access_public_key, strlen(s->access_public_key), b.alg, err,
                                  sizeof err);
    if (!b.key || m8_jws_parse(b.tok, b.len, &b.jws) != M8_JWT_OK) {
        fprintf(stderr, "bench/verify: cannot load the key or parse the token: %s\n", err);
        return 2;
    }
    long pl =
        m8_b64url_decode(b.jws.payload_b64, b.jws.payload_b64_len, b.payload, sizeof b.payload);
    b.payload_len = pl > 0 ? (size_t)pl : 0;
    b.jt = json_tokener_new_ex(M8_MAX_JWT_DEPTH);
    json_tokener_set_flags(b.jt, JSON_TOKENER_STRICT);

    static char hdr[M8_MAX_TOKEN_BYTES + 16];
    snprintf(hdr, sizeof hdr, "Bearer %s", b.tok);
    b.params[0] = (m8_pair){"REQUEST_METHOD", "GET"};
    b.params[1] = (m8_pair){"REQUEST_URI", "/api/items/"};
    b.params[2] = (m8_pair){"HTTP_AUTHORIZATION", hdr};
    m8_req_init(&b.req, NULL);

    double r_full = 0, r_cached = 0, r_req = 0, r_sig = 0, r_json = 0, r_hmac = 0;
    if (do_full && (r_full = rate(full, &b, 100, secs)) < 0) {
        fprintf(stderr, "bench/verify: the token does not verify\n");
        return 1;
    }
    if (do_cached && (r_cached = rate(cached, &b, 1000, secs)) < 0) {
        fprintf(stderr, "bench/verify: the cached check failed\n");
        return 1;
    }
    if (do_full && do_cached) {
        r_req = rate(request_only, &b, 1000, secs);
        r_sig = rate(sig, &b, 100, secs);
        r_json = rate(json, &b, 100, secs);
        if (b.secret && (r_hmac = rate(hmac, &b, 100, secs)) < 0) {
            fprintf(stderr, "bench/verify: libsodium's HMAC does not match the token\n");
            return 1;
        }
        /* hit: the check's share of a cached request */
        double hit = r_req > r_cached ? 1.0 / (1.0 / r_cached - 1.0 / r_req) : 0;
        printf("%.0f %.0f %.0f %.0f %.0f %.0f\n", r_full, r_cached, hit, r_sig, r_json, r_hmac);
    } else if (phase == 2) {
        printf("%.0f\n", rate(sig, &b, 100, secs));
    } else if (phase == 3) {
        printf("%.0f\n", rate(json, &b, 100, secs));
    } else if (phase == 4) {
        printf("%.0f\n", b.secret ? rate(hmac, &b, 100, secs) : 0);
    } else {
        printf("%.0f\n", do_full ? r_full : r_cached);
    }
    json_tokener_free(b.jt);
    m8_jws_free(&b.jws);
    m8_key_unref(b.key);
    m8_req_free(&b.req);
    m8_auth_free(b.a);
    m8_settings_free(s);
    free(tok);
    return 0;
}
