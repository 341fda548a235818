/* test_settings_model.c - checks across settings, and no secret in any
 * error. */

#include "config.h"

#include "test_settings.h"

static const char *const SECRET = "Leak-Me-S3cret-Value-XYZ-0123456789!";

static bool leaks(const char *secret)
{
    for (size_t i = 0; i < E.n; i++) {
        if (strstr(E.lines[i], secret))
            return true;
    }
    return false;
}

void test_model_checks(void)
{
    /* 1 */
    expect_bad("REFRESH_TOKEN_ALGORITHM", "RS256", "REFRESH_TOKEN_ALGORITHM must be HS256");
    ok(LOAD("REFRESH_TOKEN_ALGORITHM=hs256", "TOKEN_STRICT_VALIDATION=true") == NULL && E.n == 1 &&
           strstr(E.lines[0], "REFRESH_TOKEN_ALGORITHM"),
       "the first failing model check aborts (1 before 5)");
    /* 2 */
    ok(LOAD("ACCESS_PUBLIC_KEY_FILE=/nonexistent/pub.pem") == NULL, "missing public key file");
    like(errs(), "ACCESS_PUBLIC_KEY_FILE not found: /nonexistent/pub.pem", "  message and path");
    ok(LOAD("ACCESS_PRIVATE_KEY_FILE=/nonexistent/key.pem") == NULL, "missing private key file");
    like(errs(), "ACCESS_PRIVATE_KEY_FILE not found: /nonexistent/key.pem", "  message and path");
    /* 3 */
    const char *ca = put_file("ca.pem", "ca");
    expect_bad("REDIS_SSL", "true", "REDIS_SSL=true requires REDIS_SSL_CA");
    ok(LOAD("REDIS_SSL=true", ov("REDIS_SSL_CA", ca)) != NULL, "REDIS_SSL with a CA file loads");
    ok(LOAD(ov("REDIS_SSL_CERT", ca)) == NULL, "REDIS_SSL_CERT without REDIS_SSL_KEY");
    like(errs(), "REDIS_SSL_CERT and REDIS_SSL_KEY must be set together", "  pair message");
    ok(LOAD(ov("REDIS_SSL_CERT", ca), ov("REDIS_SSL_KEY", ca)) != NULL, "CERT and KEY together");
    expect_bad("REDIS_SSL_CA", "/nonexistent/ca.pem",
               "REDIS_SSL_CA not found: /nonexistent/ca.pem");
    /* 5 */
    ok(LOAD("TOKEN_STRICT_VALIDATION=true") == NULL, "strict binding without issuer/audience");
    like(errs(), "TOKEN_STRICT_VALIDATION=true requires TOKEN_ISSUER and TOKEN_AUDIENCE",
         "  message names both fields");
    ok(LOAD("TOKEN_STRICT_VALIDATION=true", "TOKEN_ISSUER=https://auth.example.com") == NULL,
       "issuer alone is not enough");
    ok(LOAD("TOKEN_STRICT_VALIDATION=true", "TOKEN_ISSUER=x", "TOKEN_AUDIENCE=  ") == NULL,
       "a blank audience is not enough");
    ok(LOAD("TOKEN_STRICT_VALIDATION=true", "TOKEN_ISSUER=x", "TOKEN_AUDIENCE=y") != NULL,
       "both set: loads");
    /* 6 */
    ok(LOAD("-EVENT_SIGNING_KEY") == NULL, "event signing enabled without a key");
    like(errs(), "EVENT_SIGNING_ENABLED=true requires EVENT_SIGNING_KEY", "  message");
    expect_bad("EVENT_SIGNING_KEY", "   ", "requires EVENT_SIGNING_KEY");
    expect_bad("EVENT_SIGNING_KEY", "short-key", "EVENT_SIGNING_KEY must be a valid secret key.");
    ok(LOAD("-EVENT_SIGNING_KEY", "EVENT_SIGNING_ENABLED=false") != NULL,
       "no key needed when signing is disabled");
    ok(LOAD("EVENT_SIGNING_KEY=weak", "EVENT_SIGNING_ENABLED=false") != NULL,
       "a weak key is not checked when signing is disabled");
    /* 7 */
    ok(LOAD("-ACCESS_SECRET_KEY") == NULL, "HS256 without ACCESS_SECRET_KEY");
    like(errs(), "ACCESS_TOKEN_ALGORITHM=HS256 requires ACCESS_SECRET_KEY", "  message");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256") == NULL, "RS256 without a key source");
    like(errs(), "ACCESS_TOKEN_ALGORITHM=RS256 requires a public key source", "  message");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=ES256", "JWKS_URI=  ") == NULL, "a blank JWKS_URI is unset");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://auth.example.com/jwks") != NULL,
       "RS256 with JWKS_URI loads");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://a.example.com/jwks",
            "-ACCESS_SECRET_KEY") != NULL,
       "ACCESS_SECRET_KEY is optional for RS256");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", "JWKS_URI=https://a.example.com/jwks",
            "ACCESS_SECRET_KEY=weak") == NULL,
       "ACCESS_SECRET_KEY is checked under any algorithm when set");
    /* 8 */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "(cd %s && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out r2048.pem"
             " && openssl pkey -in r2048.pem -pubout -out r2048.pub"
             " && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out r1024.pem"
             " && openssl pkey -in r1024.pem -pubout -out r1024.pub"
             " && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem"
             " && openssl pkey -in p384.pem -pubout -out p384.pub) >/dev/null 2>&1",
             dir);
    ok(sh(cmd) == 0, "openssl made test keys");
    char p2048[128], p1024[128], k1024[128], p384[128], k2048[128];
    snprintf(p2048, sizeof p2048, "ACCESS_PUBLIC_KEY_FILE=%s/r2048.pub", dir);
    snprintf(k2048, sizeof k2048, "ACCESS_PRIVATE_KEY_FILE=%s/r2048.pem", dir);
    snprintf(p1024, sizeof p1024, "ACCESS_PUBLIC_KEY_FILE=%s/r1024.pub", dir);
    snprintf(k1024, sizeof k1024, "ACCESS_PRIVATE_KEY_FILE=%s/r1024.pem", dir);
    snprintf(p384, sizeof p384, "ACCESS_PUBLIC_KEY_FILE=%s/p384.pub", dir);
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", p2048) != NULL, "RS256 with a 2048-bit public key");
    if (S)
        like(S->access_public_key, "-----BEGIN PUBLIC KEY-----", "ACCESS_PUBLIC_KEY holds the PEM");
    if (S)
        ok(S->access_public_key[strlen(S->access_public_key) - 1] == '-', "  trimmed");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", p1024) == NULL, "RS256 with a 1024-bit public key");
    like(errs(),
         "ACCESS_PUBLIC_KEY_FILE: RS256 requires a minimum 2048-bit RSA key; loaded key is "
         "1024 bits",
         "  message");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", p2048, k1024) == NULL,
       "the private key is checked when loaded");
    like(errs(), "ACCESS_PRIVATE_KEY_FILE: RS256 requires a minimum 2048-bit", "  names the file");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=RS256", p1024, k2048) != NULL,
       "only the private key is checked when both are loaded");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=ES256", p384) == NULL, "ES256 with a P-384 key");
    like(errs(), "ES256 requires a P-256 (secp256r1) EC curve; got secp384r1", "  message");
    ok(LOAD("ACCESS_TOKEN_ALGORITHM=HS256", p1024) != NULL, "HS256 skips key strength");
    /* 9 */
    expect_bad("ACCESS_SECRET_KEY", "too-short-Key-1",
               "ACCESS_SECRET_KEY must be a valid secret key.");
    expect_bad("REFRESH_SECRET_KEY", "no-upper-case-0123456789abcdefghijkl",
               "REFRESH_SECRET_KEY must be a valid secret key.");
    expect_ok("ACCESS_SECRET_KEY", "  Test-Access-Secret-Key-0123456789abcdef!  ");
    if (S)
        is_str(S->access_secret_key, "  Test-Access-Secret-Key-0123456789abcdef!  ",
               "ACCESS_SECRET_KEY is kept raw (untrimmed)");
    expect_bad("REDIS_PASSWORD", "redispass", "REDIS_PASSWORD must be a strong password");
    expect_ok("REDIS_PASSWORD", "Redis-Passw0rd");
    /* 10 */
    expect_bad("ACCESS_SECRET_KEY", "changethis", "ACCESS_SECRET_KEY must be a valid secret key.");
    /* 11 */
    const char *dev1 = "ACCESS_SECRET_KEY=Abcdef-1234_XYZ-abcdef-ghijkl-mnopqr-stuvwx";
    const char *dev2 = "REFRESH_SECRET_KEY= Zyxwvu-9876_ABC-zyxwvu-tsrqpo-nmlkji-hgfedc ";
    const char *dev3 = "EVENT_SIGNING_KEY=Abcdef-1234_XYZ-abcdef-ghijkl-mnopqr-stuvwx";
    ok(LOAD(dev1) != NULL, "a dev key is fine outside production");
    ok(LOAD(dev1, "ENVIRONMENT=production") == NULL, "ACCESS_SECRET_KEY dev key in production");
    like(errs(), "ACCESS_SECRET_KEY contains a well-known development key", "  message");
    ok(LOAD(dev2, "STRICT_PRODUCTION_MODE=true") == NULL, "REFRESH_SECRET_KEY dev key, strict");
    like(errs(), "REFRESH_SECRET_KEY contains a well-known development key", "  trimmed match");
    ok(LOAD(dev3, "ENVIRONMENT=production") == NULL, "EVENT_SIGNING_KEY dev key in production");
    like(errs(), "EVENT_SIGNING_KEY contains a well-known development key", "  message");
    ok(LOAD("EVENT_SIGNING_KEY=DEV-ONLY-do-not-use-event-signing-key-Aa1!",
            "ENVIRONMENT=production") != NULL,
       "the .env.example event key is not on the list");
    /* 12 */
    ok(LOAD("TOKEN_MODE=stateful") == NULL, "stateful consumer without introspection");
    like(errs(),
         "Stateful consumer requires INTROSPECTION_URL and PRIVATE_API_SECRET (missing: "
         "INTROSPECTION_URL, PRIVATE_API_SECRET)",
         "  lists both");
    ok(LOAD("TOKEN_MODE=stateful", "PRIVATE_API_SECRET=x") == NULL, "only the URL missing");
    like(errs(), "(missing: INTROSPECTION_URL)", "  lists the URL");
    ok(LOAD("TOKEN_MODE=stateful", "INTROSPECTION_URL=https://a.example.com/jti-status") == NULL,
       "only the secret missing");
    like(errs(), "(missing: PRIVATE_API_SECRET)", "  lists the secret");
    ok(LOAD("TOKEN_MODE=stateful", "INTROSPECTION_URL=https://a.example.com/jti-status",
            "PRIVATE_API_SECRET=") != NULL,
       "an empty PRIVATE_API_SECRET passes the presence check");
    ok(LOAD("TOKEN_MODE=hybrid") != NULL, "hybrid needs no introspection");
    /* 13 */
    ok(LOAD("API_KEY_INTROSPECTION_ENABLED=true") == NULL, "API-key introspection without URL");
    like(errs(),
         "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires API_KEY_INTROSPECTION_URL or "
         "INTROSPECTION_URL",
         "  message");
    ok(LOAD("API_KEY_INTROSPECTION_ENABLED=true", "INTROSPECTION_URL=https://a.example.com/x") ==
           NULL,
       "without INTERNAL_CLIENT_ID");
    like(errs(), "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires INTERNAL_CLIENT_ID", "  msg");
    ok(LOAD("API_KEY_INTROSPECTION_ENABLED=true",
            "API_KEY_INTROSPECTION_URL=https://a.example.com/k", "INTERNAL_CLIENT_ID=svc") == NULL,
       "without PRIVATE_API_SECRET");
    like(errs(), "CONFIG: API_KEY_INTROSPECTION_ENABLED=true requires PRIVATE_API_SECRET", "  msg");
    ok(LOAD("API_KEY_INTROSPECTION_ENABLED=true",
            "API_KEY_INTROSPECTION_URL=https://a.example.com/k", "INTERNAL_CLIENT_ID=svc",
            "PRIVATE_API_SECRET=s", "API_KEY_INTROSPECTION_SCHEMA_VERSION=2") == NULL,
       "an unsupported schema version");
    like(errs(), "CONFIG: API_KEY_INTROSPECTION_SCHEMA_VERSION", "  msg");
    ok(LOAD("API_KEY_INTROSPECTION_ENABLED=true",
            "API_KEY_INTROSPECTION_URL=https://a.example.com/k", "INTERNAL_CLIENT_ID=svc",
            "PRIVATE_API_SECRET=s") != NULL,
       "a complete API-key introspection group loads");
    /* 14 */
    ok(LOAD("SERVICE_TOKEN_EXCHANGE_ENABLED=true") == NULL, "service tokens need a client id");
    like(errs(), "CONFIG: SERVICE_TOKEN_EXCHANGE_ENABLED=true requires INTERNAL_CLIENT_ID",
         "  msg");
    ok(LOAD("INTERNAL_CLIENT_ID=svc") == NULL, "a client id needs PRIVATE_API_SECRET");
    like(errs(), "CONFIG: INTERNAL_CLIENT_ID requires PRIVATE_API_SECRET", "  msg");
    ok(LOAD("ENVIRONMENT=production", "INTROSPECTION_URL=https://a.example.com/jti-status") == NULL,
       "legacy mode in production");
    like(errs(), "CONFIG: INTROSPECTION_URL without INTERNAL_CLIENT_ID", "  msg");
    ok(LOAD("ENVIRONMENT=local", "STRICT_PRODUCTION_MODE=true",
            "INTROSPECTION_URL=https://a.example.com/jti-status") == NULL,
       "legacy mode under STRICT_PRODUCTION_MODE");
    ok(LOAD("INTROSPECTION_URL=https://a.example.com/jti-status") != NULL,
       "legacy mode allowed outside production");
    ok(LOAD("ENVIRONMENT=production", "INTROSPECTION_URL=https://a.example.com/jti-status",
            "INTERNAL_CLIENT_ID=svc", "PRIVATE_API_SECRET=s") != NULL,
       "bootstrap mode in production loads");
}

void test_no_secret_in_errors(void)
{
    const char *s = SECRET;
    const char *fields_[] = {"DOMAIN",
                             "SET_DOCS",
                             "DB_PORT",
                             "ENVIRONMENT",
                             "BACKEND_HOST",
                             "ALLOWED_HOSTS",
                             "BACKEND_CORS_ORIGINS",
                             "EVENT_STREAM_READ_TIMEOUT",
                             "AUTH_SERVICE_ROLE",
                             "STACK_NAME",
                             "API_PREFIX",
                             "EMAILS_FROM_EMAIL",
                             "JWKS_URI",
                             "DB_USER"};
    for (size_t i = 0; i < M8_ARRAY_LEN(fields_); i++) {
        char *v = malloc(strlen(s) + 8);
        snprintf(v, strlen(s) + 8, "ftp:%s", s);
        if (!strcmp(fields_[i], "ALLOWED_HOSTS"))
            snprintf(v, strlen(s) + 8, "[\"%s", s);
        ok(LOAD(ov(fields_[i], v)) == NULL && !leaks(s), "a bad %s is not echoed", fields_[i]);
        free(v);
    }
    const char *weak = "leak-me-weak-secret";
    const char *sec_fields[] = {"ACCESS_SECRET_KEY", "REFRESH_SECRET_KEY", "EVENT_SIGNING_KEY",
                                "DB_PASSWORD", "REDIS_PASSWORD"};
    for (size_t i = 0; i < M8_ARRAY_LEN(sec_fields); i++) {
        ok(LOAD(ov(sec_fields[i], weak)) == NULL && E.n > 0 && !leaks(weak),
           "a weak %s is not echoed", sec_fields[i]);
    }
    ok(LOAD("ENVIRONMENT=production",
            "ACCESS_SECRET_KEY=Abcdef-1234_XYZ-abcdef-ghijkl-mnopqr-stuvwx") == NULL &&
           !leaks("Abcdef-1234_XYZ"),
       "the dev-key message does not echo the key");
    ok(LOAD("INTERNAL_CLIENT_ID=svc", "SERVICE_TOKEN_EXCHANGE_ENABLED=true",
            "HEALTH_DETAIL_CREDENTIAL=Leak-Me-S3cret-Value-XYZ-0123456789!") == NULL &&
           !leaks(s),
       "private-auth messages do not echo secrets");
    const char *f =
        put_file("dotenv-leak", "PRIVATE_API_SECRTE=Leak-Me-S3cret-Value-XYZ-0123456789!\n"
                                "S3cretWord\n");
    m8_settings_source src = {.env = m8t_env0(), .env_file = f, .cwd = "/"};
    ok(load_src(&src) == NULL && !leaks(s) && !leaks("S3cretWord"),
       ".env errors do not echo values or stray lines");
    f = put_file("dotenv-leak2", "PRIVATE_API_SECRTE=Leak-Me-S3cret-Value-XYZ-0123456789!\n");
    src.env_file = f;
    ok(load_src(&src) == NULL && !leaks(s), "an unknown .env key's value is not echoed");
    like(errs(), "unknown setting 'PRIVATE_API_SECRTE'; did you mean 'PRIVATE_API_SECRET'?",
         "  but the key is named, with a suggestion");
}
