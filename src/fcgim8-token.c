/* fcgim8-token - mint, inspect and verify access tokens; JWKS from PEM keys.
 *
 *   fcgim8-token verify [--env-file F] TOKEN|-
 *   fcgim8-token mint --alg HS256|RS256|ES256 --key FILE [options]
 *   fcgim8-token jwks [--alg RS256|ES256] [--kid KID] PEM [[--kid KID] PEM...]
 *   fcgim8-token inspect TOKEN|-
 *   fcgim8-token kid PEM...
 *
 * verify validates exactly as a service with those settings would (the
 * library's own verifier); mint is for development, the demo and tests.
 * Signing, JWK export and jti values are the library's internal
 * auth/jws_sign.h and auth/jwk_export.h (never exported by libfcgim8:
 * services only validate); this file is the command line over them.  See
 * fcgim8-token(1). */
#include "config.h"

#include <getopt.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/alg.h"
#include "auth/auth.h"
#include "auth/jwk_export.h"
#include "auth/jws_sign.h"
#include "auth/jwt.h"
#include "auth/keys.h"
#include "config/settings.h"
#include "core/log.h"

extern char **environ;

#define EXIT_INVALID 1
#define EXIT_USAGE 2
#define MINT_MAX_COUNT 1000000 /* mint --count: enough for any benchmark */

static void usage(FILE *f)
{
    fprintf(f, "Usage:\n"
               "  fcgim8-token verify [--env-file F] TOKEN|-\n"
               "      validate as a service with these settings would; print the claims\n"
               "      (exit 0), or \"invalid: <reason>\" (exit 1); 2 on usage/config errors\n"
               "  fcgim8-token mint --alg HS256|RS256|ES256 --key FILE [--kid KID]\n"
               "      [--sub UUID] [--email E] [--name N] [--role R] [--superuser] [--inactive]\n"
               "      [--iss ISS] [--aud AUD] [--exp SECONDS] [--type T] [--claims JSON]\n"
               "      [--count N]\n"
               "      mint a token shaped like the issuer's (development and tests only);\n"
               "      --key is the HMAC secret file (HS256) or a private key PEM;\n"
               "      --count prints N tokens, one a line, each with its own jti\n"
               "  fcgim8-token jwks [--alg RS256|ES256] [--kid KID] PEM [[--kid KID] PEM...]\n"
               "      print a JWKS for public (or private) key PEM files\n"
               "  fcgim8-token kid PEM...\n"
               "      print the kid fcgim8-issuer derives for each key, one a line\n"
               "  fcgim8-token inspect TOKEN|-\n"
               "      decode header and claims WITHOUT verifying the signature\n");
}

/* Reads TOKEN or stdin for "-" into buf; returns NULL on error. */
static char *read_token(const char *arg, char *buf, size_t cap)
{
    if (strcmp(arg, "-") != 0)
        return (char *)arg;
    size_t n = fread(buf, 1, cap - 1, stdin);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

/* ------------------------------------------------------------ verify */

static int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {{"env-file", required_argument, NULL, 'e'},
                                         {NULL, 0, NULL, 0}};
    const char *env_file = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'e') {
            usage(stderr);
            return EXIT_USAGE;
        }
        env_file = optarg;
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    static char buf[M8_MAX_TOKEN_BYTES * 2];
    const char *tok = read_token(argv[optind], buf, sizeof buf);
    m8_errlist errs = {0};
    m8_settings_source src = {.env = environ, .env_file = env_file};
    m8_settings *s = m8_settings_load(&src, &errs);
    if (!s) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "fcgim8-token: %s\n", errs.lines[i]);
        m8_errlist_free(&errs);
        return EXIT_USAGE;
    }
    char err[256] = "";
    m8_auth *a = m8_auth_new(s, err, sizeof err);
    if (!a) {
        fprintf(stderr, "fcgim8-token: %s\n", err);
        m8_settings_free(s);
        return EXIT_USAGE;
    }
    m8_principal p = {0};
    json_object *claims = NULL;
    int r = m8_auth_verify(a, tok, strlen(tok), m8_now_wall(), &p, &claims);
    int rc = 0;
    if (r < 0) {
        fprintf(stderr, "fcgim8-token: the key source is unavailable (JWKS_URI)\n");
        rc = EXIT_USAGE;
    } else if (r != M8_JWT_OK) {
        fprintf(stderr, "invalid: %s\n", m8_jwt_reason_name((m8_jwt_reason)r));
        rc = EXIT_INVALID;
    } else {
        printf("%s\n", json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PRETTY |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    json_object_put(claims);
    m8_principal_clear(&p);
    m8_auth_free(a);
    m8_settings_free(s);
    return rc;
}

/* ------------------------------------------------------------ inspect */

static json_object *decode_part(const char *p, size_t n)
{
    unsigned char out[M8_MAX_JWT_PART_BYTES + 1];
    long len = m8_b64url_decode(p, n, out, sizeof out - 1);
    if (len < 0)
        return NULL;
    out[len] = '\0';
    return json_tokener_parse((const char *)out);
}

static int cmd_inspect(int argc, char **argv)
{
    if (argc != 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    static char buf[M8_MAX_TOKEN_BYTES * 2];
    const char *tok = read_token(argv[1], buf, sizeof buf);
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d1 || !d2 || strchr(d2 + 1, '.')) {
        fprintf(stderr, "fcgim8-token: not a compact JWS (want three dot-separated parts)\n");
        return EXIT_INVALID;
    }
    json_object *h = decode_part(tok, (size_t)(d1 - tok));
    json_object *p = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!h || !p) {
        fprintf(stderr, "fcgim8-token: header or payload is not base64url JSON\n");
        json_object_put(h);
        json_object_put(p);
        return EXIT_INVALID;
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "header", h);
    json_object_object_add(o, "payload", p);
    json_object_object_add(o, "signature_verified", json_object_new_boolean(0));
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    fprintf(stderr, "fcgim8-token: NOT verified: this only decodes the token\n");
    json_object_put(o);
    return 0;
}

/* ------------------------------------------------------------ mint */

static int parse_alg(const char *s, m8_alg *alg)
{
    return m8_alg_parse(s, alg);
}

static int cmd_mint(int argc, char **argv)
{
    /* one option a line (clang-format would pack them in two columns) */
    /* clang-format off */
    static const struct option opts[] = {
        {"alg", required_argument, NULL, 'a'},
        {"key", required_argument, NULL, 'k'},
        {"kid", required_argument, NULL, 'K'},
        {"sub", required_argument, NULL, 's'},
        {"email", required_argument, NULL, 'e'},
        {"name", required_argument, NULL, 'n'},
        {"role", required_argument, NULL, 'r'},
        {"superuser", no_argument, NULL, 'S'},
        {"inactive", no_argument, NULL, 'I'},
        {"iss", required_argument, NULL, 'i'},
        {"aud", required_argument, NULL, 'u'},
        {"exp", required_argument, NULL, 'x'},
        {"type", required_argument, NULL, 't'},
        {"claims", required_argument, NULL, 'c'},
        {"count", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    /* clang-format on */
    const char *alg_s = NULL, *key_file = NULL, *kid = NULL, *sub = NULL, *email = NULL;
    const char *name = NULL, *role = "user", *iss = NULL, *aud = NULL, *type = "access";
    const char *extra = NULL;
    bool superuser = false, inactive = false;
    long long exp_s = 900, count = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': alg_s = optarg; break;
        case 'k': key_file = optarg; break;
        case 'K': kid = optarg; break;
        case 's': sub = optarg; break;
        case 'e': email = optarg; break;
        case 'n': name = optarg; break;
        case 'r': role = optarg; break;
        case 'S': superuser = true; break;
        case 'I': inactive = true; break;
        case 'i': iss = optarg; break;
        case 'u': aud = optarg; break;
        case 't': type = optarg; break;
        case 'c': extra = optarg; break;
        case 'C':
            if (m8_parse_ll(optarg, 1, MINT_MAX_COUNT, &count) != 0) {
                fprintf(stderr, "fcgim8-token: --count wants 1 to %d\n", MINT_MAX_COUNT);
                return EXIT_USAGE;
            }
            break;
        case 'x':
            if (m8_parse_ll(optarg, -315360000, 315360000, &exp_s) != 0) {
                fprintf(stderr, "fcgim8-token: --exp wants seconds (negative: already expired)\n");
                return EXIT_USAGE;
            }
            break;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    m8_alg alg;
    if (!alg_s || !key_file || parse_alg(alg_s, &alg) != 0 || optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    char *key;
    size_t key_len;
    if (m8_read_file(key_file, M8_MAX_PEM_BYTES, true, &key, &key_len) != 0) {
        fprintf(stderr, "fcgim8-token: cannot read --key %s\n", key_file);
        return EXIT_USAGE;
    }
    if (alg == M8_ALG_HS256) { /* a secret file: drop the trailing newline */
        while (key_len && (key[key_len - 1] == '\n' || key[key_len - 1] == '\r'))
            key[--key_len] = '\0';
    }
    char why[256] = "";
    m8_sign_key *sk = alg == M8_ALG_HS256
                          ? m8_sign_key_from_secret(key, key_len, why, sizeof why)
                          : m8_sign_key_from_pem(key, key_len, alg, why, sizeof why);
    sodium_memzero(key, key_len);
    free(key);
    if (!sk) {
        fprintf(stderr,
                "fcgim8-token: cannot sign with --key %s for %s (a private key PEM of the right "
                "type, or the HMAC secret): %s\n",
                key_file, alg_s, why);
        return EXIT_USAGE;
    }
    char sub_buf[M8_UUID_STR_LEN + 1], jti[M8_UUID_STR_LEN + 1];
    m8_jti_new(jti);
    if (!sub) {
        m8_jti_new(sub_buf);
        sub = sub_buf;
    }
    long long now = (long long)time(NULL);
    json_object *p = json_object_new_object();
    json_object_object_add(p, "sub", json_object_new_string(sub));
    json_object_object_add(p, "type", json_object_new_string(type));
    json_object_object_add(p, "email", json_object_new_string(email ? email : "dev@example.com"));
    json_object_object_add(p, "full_name", name ? json_object_new_string(name) : NULL);
    json_object_object_add(p, "avatar", NULL);
    json_object_object_add(p, "is_active", json_object_new_boolean(!inactive));
    json_object_object_add(p, "email_verified", json_object_new_boolean(1));
    json_object_object_add(p, "is_superuser", json_object_new_boolean(superuser));
    json_object_object_add(p, "role", json_object_new_string(role));
    json_object_object_add(p, "tenant_id", NULL);
    json_object_object_add(p, "exp", json_object_new_int64(now + exp_s));
    json_object_object_add(p, "iat", json_object_new_int64(now));
    json_object_object_add(p, "nbf", json_object_new_int64(now));
    json_object_object_add(p, "jti", json_object_new_string(jti));
    if (iss)
        json_object_object_add(p, "iss", json_object_new_string(iss));
    if (aud)
        json_object_object_add(p, "aud", json_object_new_string(aud));
    int rc = 0;
    if (extra) { /* --claims '{"k": v}' overrides or adds claims; null deletes */
        json_object *x = json_tokener_parse(extra);
        if (!x || !json_object_is_type(x, json_type_object)) {
            fprintf(stderr, "fcgim8-token: --claims wants a JSON object\n");
            rc = EXIT_USAGE;
        } else {
            json_object_object_foreach(x, k, v)
            {
                if (v)
                    json_object_object_add(p, k, json_object_get(v));
                else
                    json_object_object_del(p, k);
            }
        }
        json_object_put(x);
    }
    m8_buf tok;
    m8_buf_init(&tok, 1 << 20);
    /* --count: the same claims under a fresh jti each (a --claims jti too is
     * replaced from the second token on), so every token's bytes differ. */
    for (long long i = 0; rc == 0 && i < count; i++) {
        if (i > 0) {
            m8_jti_new(jti);
            json_object_object_add(p, "jti", json_object_new_string(jti));
        }
        m8_buf_reset(&tok);
        if (m8_jws_sign_json(sk, kid, NULL, p, &tok) != 0) {
            fprintf(stderr, "fcgim8-token: cannot sign with --key %s for %s\n", key_file, alg_s);
            rc = EXIT_USAGE;
        } else if (printf("%s\n", tok.data) < 0) {
            rc = EXIT_USAGE;
        }
    }
    if (rc == 0 && fflush(stdout) != 0) {
        fprintf(stderr, "fcgim8-token: cannot write the tokens\n");
        rc = EXIT_USAGE;
    }
    m8_buf_free(&tok);
    json_object_put(p);
    m8_sign_key_free(sk);
    return rc;
}

/* ------------------------------------------------------------ jwks, kid */

/* An RSA or EC key (public or private PEM) from path; NULL after a message. */
static EVP_PKEY *load_key(const char *path)
{
    char *pem;
    size_t len;
    if (m8_read_file(path, M8_MAX_PEM_BYTES, true, &pem, &len) != 0) {
        fprintf(stderr, "fcgim8-token: cannot read %s\n", path);
        return NULL;
    }
    char why[256];
    EVP_PKEY *pk = m8_pem_load_pkey(pem, len, false, why, sizeof why);
    sodium_memzero(pem, len);
    free(pem);
    if (!pk || !(EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "EC"))) {
        fprintf(stderr, "fcgim8-token: %s is not an RSA or EC key PEM%s%s\n", path, pk ? "" : ": ",
                pk ? "" : why);
        EVP_PKEY_free(pk);
        return NULL;
    }
    return pk;
}

/* kid PEM...: the kid fcgim8-issuer derives for each key (the first 16 hex
 * digits of the SHA-256 of its SubjectPublicKeyInfo), one a line: what a
 * key rotation publishes (doc/issuer.md#key-rotation). */
static int cmd_kid(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        EVP_PKEY *pk = load_key(argv[i]);
        char kid[M8_JWK_KID_LEN + 1];
        int rc = pk ? m8_jwk_kid(pk, kid) : -1;
        EVP_PKEY_free(pk);
        if (rc != 0) {
            if (pk)
                fprintf(stderr, "fcgim8-token: cannot derive the kid of %s\n", argv[i]);
            return EXIT_USAGE;
        }
        printf("%s\n", kid);
    }
    return 0;
}

static int cmd_jwks(int argc, char **argv)
{
    /* at most one key per argument; kids[i] borrowed from argv */
    EVP_PKEY **keys = calloc((size_t)argc, sizeof *keys);
    const char **kids = calloc((size_t)argc, sizeof *kids);
    size_t n = 0;
    const char *kid = NULL;
    int rc = keys && kids ? 0 : EXIT_USAGE;
    for (int i = 1; i < argc && rc == 0; i++) {
        if (strcmp(argv[i], "--kid") == 0 && i + 1 < argc) {
            kid = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--alg") == 0 && i + 1 < argc) {
            i++; /* the key type decides; accepted for symmetry with mint */
            continue;
        }
        EVP_PKEY *pk = load_key(argv[i]);
        if (!pk) {
            rc = EXIT_USAGE;
            break;
        }
        keys[n] = pk;
        kids[n++] = kid;
        kid = NULL;
    }
    if (rc == 0 && n == 0) {
        usage(stderr);
        rc = EXIT_USAGE;
    }
    if (rc == 0) {
        char why[256];
        json_object *doc = m8_jwks_export(keys, kids, n, why, sizeof why);
        if (!doc) {
            fprintf(stderr, "fcgim8-token: %s\n", why);
            rc = EXIT_USAGE;
        } else {
            printf("%s\n", json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
        }
        json_object_put(doc);
    }
    for (size_t i = 0; i < n; i++)
        EVP_PKEY_free(keys[i]);
    free(keys);
    free(kids);
    return rc;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return EXIT_USAGE;
    m8_log_set_level(M8_LOG_ERROR); /* the tool speaks on stdout/stderr itself */
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("fcgim8-token (fcgi-m8 %s)\n", m8_version());
        return 0;
    }
    optind = 1;
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "mint") == 0)
        return cmd_mint(argc - 1, argv + 1);
    if (strcmp(cmd, "jwks") == 0)
        return cmd_jwks(argc - 1, argv + 1);
    if (strcmp(cmd, "inspect") == 0)
        return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "kid") == 0)
        return cmd_kid(argc - 1, argv + 1);
    fprintf(stderr, "fcgim8-token: unknown command \"%s\"\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
