/* bench/verify - token verifications per second, one thread (per core):
 *   full:   m8_auth_verify (parse, key, signature, payload, claims)
 *   cached: m8_auth_check on a repeated token (the verified-token cache)
 * for the settings in ENV_FILE and the token in TOKEN_FILE.  Run by
 * bench/verify.sh, which prints these next to `openssl speed`.
 *
 *   bench/verify ENV_FILE TOKEN_FILE SECONDS */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "jwt.h"
#include "log.h"
#include "settings.h"

extern char **environ;

static double rate(double n, double t0)
{
    return n / (m8_now_mono() - t0);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s ENV_FILE TOKEN_FILE SECONDS\n", argv[0]);
        return 2;
    }
    m8_log_set_level(M8_LOG_CRITICAL);
    double secs = strtod(argv[3], NULL);
    char *tok;
    size_t len;
    if (m8_read_file(argv[2], M8_MAX_TOKEN_BYTES + 2, true, &tok, &len) != 0)
        return 2;
    while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r'))
        tok[--len] = '\0';
    m8_errlist errs = {0};
    m8_settings_source src = {.env = environ, .env_file = argv[1]};
    m8_settings *s = m8_settings_load(&src, &errs);
    char err[256] = "";
    m8_auth *a = s ? m8_auth_new(s, err, sizeof err) : NULL;
    if (!a) {
        fprintf(stderr, "bench/verify: cannot build a verifier: %s\n",
                errs.n ? errs.lines[0] : err);
        return 2;
    }
    /* full verification */
    double n = 0, t0 = m8_now_mono();
    while (m8_now_mono() - t0 < secs) {
        for (int i = 0; i < 100; i++) {
            m8_principal p = {0};
            if (m8_auth_verify(a, tok, len, m8_now_wall(), &p, NULL) != 0) {
                fprintf(stderr, "bench/verify: the token does not verify\n");
                return 1;
            }
            m8_principal_clear(&p);
        }
        n += 100;
    }
    double full = rate(n, t0);

    /* the verified-token cache, through the route check a request makes */
    char hdr[M8_MAX_TOKEN_BYTES + 16];
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    m8_pair params[] = {{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/api/items/"},
                        {"HTTP_AUTHORIZATION", hdr}};
    m8_request req;
    m8_req_init(&req, NULL);
    n = 0;
    t0 = m8_now_mono();
    while (m8_now_mono() - t0 < secs) {
        for (int i = 0; i < 1000; i++) {
            m8_req_reset(&req);
            m8_req_from_params(&req, params, 3, NULL, 0);
            if (!m8_auth_check(a, &req, M8_USER)) {
                fprintf(stderr, "bench/verify: the cached check failed\n");
                return 1;
            }
        }
        n += 1000;
    }
    double cached = rate(n, t0);
    printf("%.0f %.0f\n", full, cached);
    m8_req_free(&req);
    m8_auth_free(a);
    m8_settings_free(s);
    free(tok);
    return 0;
}
