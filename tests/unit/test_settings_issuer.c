/* test_settings_issuer - the fcgim8-issuer settings (doc/issuer.md#settings):
 * unknown in a consumer, the whole catalogue with its defaults in the
 * issuer, the required ones, the ranges, the secret rules, the key rules
 * and the login methods; never a secret in an error line. */
#include "config.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/confighealth.h"
#include "tap.h"
#include "testenv.h"

#define SESSION "Test-Session-Secret-Key-0123456789abcdef!"
#define TOKENS "Test-Tokens-Encryption-Key-0123456789ab!"
#define PRIVATE "Test-Private-Api-Secret-0123456789abcdef!"
#define SUPERPW "Adm1n-Passw0rd!"

/* The base environment made an issuer one: the required issuer secrets set,
 * AUTH_SERVICE_ROLE left to its issuer default. */
#define ISS_ENV(...)                                                                               \
    m8t_env("-AUTH_SERVICE_ROLE", "FIRST_SUPERUSER=admin@example.com",                             \
            "FIRST_SUPERUSER_PASSWORD=" SUPERPW, "SESSION_SECRET=" SESSION,                        \
            "TOKENS_ENCRYPTION_KEY=" TOKENS, "PRIVATE_API_SECRET=" PRIVATE, __VA_ARGS__, NULL)

static m8_settings *S;
static m8_errlist E;
static char dir[64];

static m8_settings *load_from(char **env, const char *env_file, bool issuer)
{
    m8_settings_free(S);
    m8_errlist_free(&E);
    m8_settings_source src = {.env = env, .env_file = env_file, .cwd = "/", .issuer = issuer};
    S = m8_settings_load(&src, &E);
    return S;
}

static m8_settings *iss(char **env)
{
    return load_from(env, "/dev/null", true);
}

static const char *errs(void)
{
    static char buf[8192];
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < E.n && used + 2 < sizeof buf; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s\n", E.lines[i]);
    return buf;
}

static const char *put_file(const char *name, const char *text)
{
    static char path[8][256];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 256, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return p;
}

static char *ov(const char *name, const char *value)
{
    static char pool[64][512];
    static int k;
    char *s = pool[k++ % 64];
    snprintf(s, 512, "%s=%s", name, value);
    return s;
}

static void test_consumer_refuses(void)
{
    const char *envf = put_file("consumer.env", "FIRST_SUPERUSER=admin@example.com\n");
    ok(load_from(m8t_env0(), envf, false) == NULL,
       "consumer: FIRST_SUPERUSER in the .env file is refused");
    like(errs(), "unknown setting 'FIRST_SUPERUSER' (an fcgim8-issuer setting)",
         "consumer: the error names it as an fcgim8-issuer setting");
    envf = put_file("consumer2.env", "TRUSTED_PROXY_COUNT=2\nSESSION_SECRET=" SESSION "\n");
    ok(load_from(m8t_env0(), envf, false) == NULL, "consumer: issuer names in .env refused");
    ok(!strstr(errs(), SESSION), "consumer: the refused secret's value is not in the errors");
    envf = put_file("consumer3.env", "TRUSTED_PROXY_COUNTT=2\n");
    ok(load_from(m8t_env0(), envf, false) == NULL && !strstr(errs(), "TRUSTED_PROXY_COUNT'"),
       "consumer: a typo is never pointed at an issuer-only name");

    ok(load_from(m8t_env("FIRST_SUPERUSER=admin@example.com", "TRUSTED_PROXY_COUNT=x",
                         "SESSION_SECRET_FILE=/nonexistent/secret", NULL),
                 "/dev/null", false) != NULL,
       "consumer: issuer names in the environment are ignored (NAME_FILE too)");
    if (S) {
        ok(!S->issuer && S->first_superuser == NULL && S->trusted_proxy_count == 0,
           "consumer: the issuer fields stay unset");
        ok(m8_settings_get(S, "FIRST_SUPERUSER") == NULL &&
               m8_settings_get(S, "PASSWORD_LOGIN_ENABLED") == NULL,
           "consumer: m8_setting() knows no issuer name");
        is_str(S->tables_prefix, "app", "consumer: TABLES_PREFIX still defaults to app");
        ok(S->refresh_secret_key != NULL && S->private_api_secret == NULL,
           "consumer: PRIVATE_API_SECRET stays optional");
    }
    ok(!m8_settings_known("FIRST_SUPERUSER") && m8_settings_known("TABLES_PREFIX"),
       "m8_settings_known: the consumer's names only");
    ok(load_from(m8t_env("-REFRESH_SECRET_KEY", NULL), "/dev/null", false) != NULL,
       "consumer: REFRESH_SECRET_KEY stays optional");
}

static void test_issuer_defaults(void)
{
    ok(iss(ISS_ENV("-M8T_NOTHING")) != NULL, "issuer: the base issuer environment loads");
    if (!S) {
        diag("%s", errs());
        return;
    }
    ok(S->issuer, "issuer: the settings say so");
    is_str(S->tables_prefix, "auth", "issuer: TABLES_PREFIX defaults to auth");
    is_int(S->auth_service_role, M8_ROLE_ISSUER, "issuer: AUTH_SERVICE_ROLE defaults to issuer");
    is_str(S->contract_name, "fa-auth-m8", "issuer: CONTRACT_NAME defaults to fa-auth-m8");
    is_int(S->trusted_proxy_count, 1, "TRUSTED_PROXY_COUNT defaults to 1");
    is_str(S->first_superuser, "admin@example.com", "FIRST_SUPERUSER read");
    is_str(S->session_secret, SESSION, "SESSION_SECRET read");
    ok(S->tokens_encryption_key_old == NULL, "TOKENS_ENCRYPTION_KEY_OLD unset");
    ok(!S->access_key_id_allow_unbound, "ACCESS_KEY_ID_ALLOW_UNBOUND defaults to false");
    is_int(S->login_ip_rate_limit_requests, 50, "LOGIN_IP_RATE_LIMIT_REQUESTS defaults to 50");
    is_str(S->private_api_consumers, "{}", "PRIVATE_API_CONSUMERS defaults to {}");
    is_int(S->service_token_ttl_seconds, 300, "SERVICE_TOKEN_TTL_SECONDS defaults to 300");
    ok(S->event_stream_enabled, "EVENT_STREAM_ENABLED defaults to true");
    is_int(S->event_stream_buffer_size, 256, "EVENT_STREAM_BUFFER_SIZE defaults to 256");
    ok(S->event_stream_heartbeat_seconds == 15.0, "EVENT_STREAM_HEARTBEAT_SECONDS 15.0");
    is_int(S->event_stream_max_queue, 64, "EVENT_STREAM_MAX_QUEUE defaults to 64");
    ok(S->outbox_worker_enabled && S->outbox_drain_interval_seconds == 1.0 &&
           S->outbox_batch_size == 50 && S->outbox_lease_seconds == 30 &&
           S->outbox_max_attempts == 5 && S->outbox_backoff_base_seconds == 2.0 &&
           S->outbox_backoff_cap_seconds == 300.0 && S->outbox_completed_retention_seconds == 3600,
       "OUTBOX_* defaults");
    is_int(S->tombstone_consumer_horizon_seconds, 3600, "TOMBSTONE_CONSUMER_HORIZON 3600");
    ok(S->audit_purge_min_retention_seconds == 7776000 && S->audit_purge_batch_size == 500,
       "AUDIT_PURGE_* defaults");
    ok(!S->api_key_strict_rate_limit && S->api_key_default_limit_minute == 60 &&
           S->api_key_default_limit_hour == 1000 && S->api_key_default_limit_day == 10000 &&
           S->api_key_default_limit_month == 200000 && S->api_key_max_per_user == 10 &&
           S->api_key_max_audiences == 3 && S->api_key_purge_min_retention_seconds == 7776000 &&
           S->api_key_purge_batch_size == 500 &&
           S->api_key_introspection_antiabuse_per_minute == 600,
       "API_KEY_* defaults");
    ok(!S->google_client_id && !S->google_client_secret && !S->google_oauth_enabled,
       "Google login off without credentials");
    ok(S->password_login_enabled && !S->public_signup_enabled && !S->mail_enabled &&
           !S->password_reset_enabled,
       "login flags: password on, signup/mail/reset off");
    is_int(S->public_signup_allowed_email_domains.n, 0, "PUBLIC_SIGNUP_ALLOWED_EMAIL_DOMAINS []");
    is_str(S->email_verification_mode, "off", "EMAIL_VERIFICATION_MODE defaults to off");
    is_str(S->public_ui_url, "", "PUBLIC_UI_URL defaults to empty");
    is_str(S->smtp_tls_mode, "starttls", "SMTP_TLS_MODE defaults to starttls");
    ok(S->smtp_timeout_seconds == 10 && S->email_verification_ttl_minutes == 1440 &&
           S->password_reset_ttl_minutes == 30 && S->email_change_ttl_minutes == 60 &&
           S->unverified_signup_expiry_days == 7 && S->mail_recipient_cooldown_seconds == 60 &&
           S->mail_recipient_daily_cap == 10 && S->account_action_rate_limit_window_minutes == 15 &&
           S->account_action_ip_rate_limit_requests == 20 &&
           S->account_action_email_rate_limit_requests == 5,
       "mail and account-action defaults");
    is_str(m8_settings_get(S, "TRUSTED_PROXY_COUNT"), "1", "m8_setting() knows issuer names");
    is_str(m8_settings_get(S, "GOOGLE_OAUTH_ENABLED"), "false", "m8_setting(): effective flag");

    m8_config_report rep;
    iss(ISS_ENV("TOKEN_MODE=stateful"));
    ok(S && m8_config_health(S, &rep) == 0, "stateful issuer: config health wants no Redis");
    if (S)
        m8_config_report_free(&rep);
}

/* Every issuer-only name of doc/issuer.md#settings in one .env file, as an
 * fa-auth-m8 deployment writes it. */
static const char full_env[] =
    "TABLES_PREFIX=auth\nTRUSTED_PROXY_COUNT=2\nFIRST_SUPERUSER=root@example.com\n"
    "FIRST_SUPERUSER_PASSWORD=" SUPERPW "\nSESSION_SECRET=" SESSION "\n"
    "TOKENS_ENCRYPTION_KEY=" TOKENS
    "\nTOKENS_ENCRYPTION_KEY_OLD=Old-Tokens-Encryption-Key-0123456789ab!\n"
    "ACCESS_KEY_ID_ALLOW_UNBOUND=true\nACCESS_KEY_ID_OLD=0123456789abcdef\n"
    "LOGIN_IP_RATE_LIMIT_REQUESTS=40\nLOGIN_RATE_LIMIT_REQUESTS=5\n"
    "LOGIN_RATE_LIMIT_WINDOW_MINUTES=15\nREFRESH_RATE_LIMIT_REQUESTS=10\n"
    "REFRESH_RATE_LIMIT_WINDOW_MINUTES=5\nAUTH_STRICT_MODE=false\n"
    "REFRESH_VALIDATION_FAILURE_MODE=fail_closed\nSESSION_WRITE_FAILURE_MODE=fail_closed\n"
    "RATE_LIMIT_FAILURE_MODE=fail_open\nACCESS_REVOCATION_FAILURE_MODE=fail_closed\n"
    "PRIVATE_API_SECRET=" PRIVATE "\nPRIVATE_API_CONSUMERS={\"svc\":{\"secret_hash\":\"x\"}}\n"
    "SERVICE_TOKEN_TTL_SECONDS=600\nEVENT_STREAM_ENABLED=false\nEVENT_STREAM_BUFFER_SIZE=512\n"
    "EVENT_STREAM_HEARTBEAT_SECONDS=2.5\nEVENT_STREAM_MAX_QUEUE=32\nEVENT_SIGNING_ENABLED=true\n"
    "OUTBOX_WORKER_ENABLED=true\nOUTBOX_DRAIN_INTERVAL_SECONDS=0.5\nOUTBOX_BATCH_SIZE=20\n"
    "OUTBOX_LEASE_SECONDS=60\nOUTBOX_MAX_ATTEMPTS=7\nOUTBOX_BACKOFF_BASE_SECONDS=1.5\n"
    "OUTBOX_BACKOFF_CAP_SECONDS=120\nOUTBOX_COMPLETED_RETENTION_SECONDS=0\n"
    "TOMBSTONE_CONSUMER_HORIZON_SECONDS=2592000\nAUDIT_PURGE_MIN_RETENTION_SECONDS=100\n"
    "AUDIT_PURGE_BATCH_SIZE=100\nAPI_KEY_STRICT_RATE_LIMIT=true\n"
    "API_KEY_DEFAULT_LIMIT_MINUTE=1\nAPI_KEY_DEFAULT_LIMIT_HOUR=2\nAPI_KEY_DEFAULT_LIMIT_DAY=3\n"
    "API_KEY_DEFAULT_LIMIT_MONTH=4\nAPI_KEY_MAX_PER_USER=5\nAPI_KEY_MAX_AUDIENCES=50\n"
    "API_KEY_PURGE_MIN_RETENTION_SECONDS=6\nAPI_KEY_PURGE_BATCH_SIZE=7\n"
    "API_KEY_INTROSPECTION_ANTIABUSE_PER_MINUTE=8\nMETRICS_ENABLED=false\nMETRICS_GROUPS=all\n"
    "GOOGLE_CLIENT_ID=cid.apps.googleusercontent.com\nGOOGLE_CLIENT_SECRET=g-secret-value\n"
    "GOOGLE_OAUTH_REDIRECT_URI=https://auth.example.com/api/google-auth/oauth-callback/\n"
    "GOOGLE_OAUTH_ENABLED=true\nOAUTH_ALLOWED_REDIRECT_SCHEMES=[\"chrome-extension://\"]\n"
    "OAUTH_ALLOWED_REDIRECT_PREFIXES=[]\nCORS_ALLOWED_ORIGIN_SCHEMES=[]\n"
    "PASSWORD_LOGIN_ENABLED=false\nPUBLIC_SIGNUP_ENABLED=false\n"
    "PUBLIC_SIGNUP_ALLOWED_EMAIL_DOMAINS=[\"example.com\"]\nMAIL_ENABLED=false\n"
    "EMAIL_VERIFICATION_MODE=optional\nPASSWORD_RESET_ENABLED=false\n"
    "PUBLIC_UI_URL=https://ui.example.com\nSMTP_USER=mailer\nSMTP_PASSWORD=mail-secret-value\n"
    "SMTP_TLS_MODE=starttls\nSMTP_TIMEOUT_SECONDS=20\nEMAIL_VERIFICATION_TTL_MINUTES=15\n"
    "PASSWORD_RESET_TTL_MINUTES=5\nEMAIL_CHANGE_TTL_MINUTES=10\nUNVERIFIED_SIGNUP_EXPIRY_DAYS=3\n"
    "MAIL_RECIPIENT_COOLDOWN_SECONDS=0\nMAIL_RECIPIENT_DAILY_CAP=4\n"
    "ACCOUNT_ACTION_RATE_LIMIT_WINDOW_MINUTES=30\nACCOUNT_ACTION_IP_RATE_LIMIT_REQUESTS=9\n"
    "ACCOUNT_ACTION_EMAIL_RATE_LIMIT_REQUESTS=2\n";

static void test_issuer_catalogue(void)
{
    const char *envf = put_file("issuer.env", full_env);
    char **env = m8t_env("-AUTH_SERVICE_ROLE", NULL);
    ok(load_from(env, envf, true) != NULL, "issuer: a .env with the whole catalogue loads");
    if (!S) {
        diag("%s", errs());
        return;
    }
    ok(S->trusted_proxy_count == 2 && S->login_ip_rate_limit_requests == 40 &&
           S->service_token_ttl_seconds == 600 && !S->event_stream_enabled &&
           S->event_stream_heartbeat_seconds == 2.5 && S->outbox_completed_retention_seconds == 0 &&
           S->tombstone_consumer_horizon_seconds == 2592000 && S->api_key_max_audiences == 50 &&
           S->access_key_id_allow_unbound,
       "issuer: the values are read into typed fields");
    ok(S->google_oauth_enabled && !S->password_login_enabled,
       "issuer: Google login alone is a login method");
    ok(S->public_signup_allowed_email_domains.n == 1 &&
           strcmp(S->public_signup_allowed_email_domains.items[0], "example.com") == 0,
       "issuer: list settings parsed");
    is_str(S->email_verification_mode, "optional", "EMAIL_VERIFICATION_MODE read");
    ok(load_from(env, envf, false) == NULL, "the same .env in a consumer is refused");
    like(errs(), "unknown setting 'SESSION_SECRET' (an fcgim8-issuer setting)",
         "consumer: one line per issuer name");
    ok(!strstr(errs(), SESSION) && !strstr(errs(), "mail-secret-value") &&
           !strstr(errs(), "g-secret-value"),
       "consumer: no value of the refused file in the errors");

    /* NAME_FILE, as for the other secrets */
    const char *sf = put_file("session_secret", "Filed-Session-Secret-Key-0123456789abcd!\n");
    ok(iss(ISS_ENV("-SESSION_SECRET", ov("SESSION_SECRET_FILE", sf))) != NULL &&
           strcmp(S->session_secret, "Filed-Session-Secret-Key-0123456789abcd!") == 0,
       "issuer: SESSION_SECRET_FILE read and trimmed");
    ok(iss(ISS_ENV("FIRST_SUPERUSER_PASSWORD_FILE=/nonexistent/pw")) == NULL,
       "issuer: a missing FIRST_SUPERUSER_PASSWORD_FILE is an error");
    like(errs(), "FIRST_SUPERUSER_PASSWORD_FILE points to a missing file", "named as NAME_FILE");
}

static void test_required(void)
{
    static const char *const names[] = {"FIRST_SUPERUSER",    "FIRST_SUPERUSER_PASSWORD",
                                        "SESSION_SECRET",     "TOKENS_ENCRYPTION_KEY",
                                        "PRIVATE_API_SECRET", "REFRESH_SECRET_KEY"};
    for (size_t i = 0; i < M8_ARRAY_LEN(names); i++) {
        char rm[64], want[96];
        snprintf(rm, sizeof rm, "-%s", names[i]);
        snprintf(want, sizeof want, "%s: field required", names[i]);
        ok(iss(ISS_ENV(rm)) == NULL, "issuer: %s missing is an error", names[i]);
        like(errs(), want, "issuer: the error names %s", names[i]);
    }
    ok(iss(ISS_ENV("AUTH_SERVICE_ROLE=consumer")) == NULL, "issuer: AUTH_SERVICE_ROLE=consumer");
    like(errs(), "AUTH_SERVICE_ROLE: fcgim8-issuer issues tokens", "refused with a reason");
    ok(iss(ISS_ENV("AUTH_SERVICE_ROLE=issuer")) != NULL, "issuer: AUTH_SERVICE_ROLE=issuer ok");
    ok(iss(ISS_ENV("FIRST_SUPERUSER=not-an-email")) == NULL, "FIRST_SUPERUSER must be an e-mail");
    like(errs(), "FIRST_SUPERUSER: must be an e-mail address", "named");
}

static void test_ranges(void)
{
    static const struct {
        const char *name, *value, *why;
    } bad[] = {
        {"TRUSTED_PROXY_COUNT", "-1", "must be at least 0"},
        {"SERVICE_TOKEN_TTL_SECONDS", "29", "must be between 30 and 3600"},
        {"SERVICE_TOKEN_TTL_SECONDS", "3601", "must be between 30 and 3600"},
        {"EVENT_STREAM_BUFFER_SIZE", "0", "must be between 1 and 100000"},
        {"EVENT_STREAM_MAX_QUEUE", "100001", "must be between 1 and 100000"},
        {"EVENT_STREAM_HEARTBEAT_SECONDS", "0", "must be greater than 0 and at most 300"},
        {"EVENT_STREAM_HEARTBEAT_SECONDS", "300.5", "must be greater than 0 and at most 300"},
        {"TOMBSTONE_CONSUMER_HORIZON_SECONDS", "2592001", "must be between 0 and 2592000"},
        {"API_KEY_MAX_AUDIENCES", "51", "must be between 1 and 50"},
        {"EMAIL_VERIFICATION_TTL_MINUTES", "14", "must be between 15 and 1440"},
        {"PASSWORD_RESET_TTL_MINUTES", "31", "must be between 5 and 30"},
        {"EMAIL_CHANGE_TTL_MINUTES", "9", "must be between 10 and 60"},
        {"LOGIN_IP_RATE_LIMIT_REQUESTS", "0", "must be at least 1"},
        {"OUTBOX_BATCH_SIZE", "x", "must be an integer"},
        {"PASSWORD_LOGIN_ENABLED", "maybe", "must be a boolean"},
        {"EMAIL_VERIFICATION_MODE", "sometimes", "must be one of: off, optional, required"},
        {"PRIVATE_API_CONSUMERS", "[]", "PRIVATE_API_CONSUMERS must be a JSON object"},
        {"PRIVATE_API_CONSUMERS", "{", "PRIVATE_API_CONSUMERS must be a JSON object"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        ok(iss(ISS_ENV(ov(bad[i].name, bad[i].value))) == NULL, "%s=%s refused", bad[i].name,
           bad[i].value);
        like(errs(), bad[i].name, "  the error names %s", bad[i].name);
        like(errs(), bad[i].why, "  and says why");
    }
    ok(iss(ISS_ENV("SERVICE_TOKEN_TTL_SECONDS=30", "TRUSTED_PROXY_COUNT=0",
                   "EVENT_STREAM_HEARTBEAT_SECONDS=300", "TOMBSTONE_CONSUMER_HORIZON_SECONDS=0")) !=
           NULL,
       "the bounds themselves are accepted");
}

static void test_secret_rules(void)
{
    static const char *const secrets[] = {"SESSION_SECRET", "TOKENS_ENCRYPTION_KEY",
                                          "TOKENS_ENCRYPTION_KEY_OLD", "PRIVATE_API_SECRET"};
    for (size_t i = 0; i < M8_ARRAY_LEN(secrets); i++) {
        ok(iss(ISS_ENV(ov(secrets[i], "changethis"))) == NULL, "%s=changethis refused", secrets[i]);
        char want[96];
        snprintf(want, sizeof want, "Insecure default value for '%s'", secrets[i]);
        like(errs(), want, "  named");
        ok(iss(ISS_ENV(ov(secrets[i], "Short-1a"))) == NULL, "%s must be a secret key", secrets[i]);
        snprintf(want, sizeof want, "%s must be a valid secret key.", secrets[i]);
        like(errs(), want, "  named");
        ok(!strstr(errs(), "Short-1a"), "  the value is not in the error");
    }
    ok(iss(ISS_ENV("FIRST_SUPERUSER_PASSWORD=ChangeThis")) == NULL,
       "FIRST_SUPERUSER_PASSWORD=ChangeThis refused");
    like(errs(), "Insecure default value for 'FIRST_SUPERUSER_PASSWORD'", "  named");
    ok(iss(ISS_ENV("FIRST_SUPERUSER_PASSWORD=weakpassword")) == NULL,
       "FIRST_SUPERUSER_PASSWORD must be a strong password");
    like(errs(), "FIRST_SUPERUSER_PASSWORD must be a strong password", "  named");
    ok(!strstr(errs(), "weakpassword"), "  the value is not in the error");
}

static void test_login_methods(void)
{
    ok(iss(ISS_ENV("PASSWORD_LOGIN_ENABLED=false")) == NULL, "no login method: refused");
    like(errs(), "no login method is enabled", "  says so");
    ok(iss(ISS_ENV("GOOGLE_CLIENT_ID=cid")) == NULL, "GOOGLE_CLIENT_ID alone refused");
    like(errs(), "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together", "  named");
    ok(iss(ISS_ENV("GOOGLE_CLIENT_ID=cid", "GOOGLE_CLIENT_SECRET=gsecret-xyz")) == NULL,
       "Google credentials without a redirect URI refused");
    like(errs(), "GOOGLE_OAUTH_REDIRECT_URI", "  named");
    ok(!strstr(errs(), "gsecret-xyz"), "  the client secret is not in the error");
    ok(iss(ISS_ENV("GOOGLE_CLIENT_ID=cid", "GOOGLE_CLIENT_SECRET=gsecret-xyz",
                   "GOOGLE_OAUTH_REDIRECT_URI=https://a.example/cb#frag")) == NULL,
       "a redirect URI with a fragment refused");
    ok(iss(ISS_ENV("ENVIRONMENT=development", "GOOGLE_CLIENT_ID=cid",
                   "GOOGLE_CLIENT_SECRET=gsecret-xyz",
                   "GOOGLE_OAUTH_REDIRECT_URI=http://a.example/cb")) == NULL,
       "an http redirect URI outside local refused");
    like(errs(), "GOOGLE_OAUTH_REDIRECT_URI must be an https URL", "  named");
    ok(iss(ISS_ENV("GOOGLE_CLIENT_ID=cid", "GOOGLE_CLIENT_SECRET=gsecret-xyz",
                   "GOOGLE_OAUTH_REDIRECT_URI=http://localhost:8000/cb")) != NULL &&
           S->google_oauth_enabled,
       "local: http redirect URI accepted, Google login on when unset");
    ok(iss(ISS_ENV("GOOGLE_CLIENT_ID=cid", "GOOGLE_CLIENT_SECRET=gsecret-xyz",
                   "GOOGLE_OAUTH_REDIRECT_URI=http://localhost:8000/cb",
                   "GOOGLE_OAUTH_ENABLED=false")) != NULL &&
           !S->google_oauth_enabled,
       "GOOGLE_OAUTH_ENABLED=false wins over credentials");
    ok(iss(ISS_ENV("GOOGLE_OAUTH_ENABLED=true")) == NULL,
       "GOOGLE_OAUTH_ENABLED=true without credentials refused");
}

/* A PEM private key file of kind "RSA" or "EC" (P-256). */
static const char *key_file(const char *name, const char *kind, bool public_only)
{
    EVP_PKEY *k = strcmp(kind, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    static char path[4][256];
    static int n;
    char *p = path[n++ % 4];
    snprintf(p, 256, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f && k) {
        if (public_only)
            PEM_write_PUBKEY(f, k);
        else
            PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    }
    if (f)
        fclose(f);
    EVP_PKEY_free(k);
    return p;
}

static void test_keys(void)
{
    ok(iss(ISS_ENV("ACCESS_TOKEN_ALGORITHM=RS256")) == NULL, "issuer RS256 without a key");
    like(errs(), "ACCESS_TOKEN_ALGORITHM=RS256 requires ACCESS_PRIVATE_KEY_FILE", "  named");
    ok(iss(ISS_ENV("ACCESS_TOKEN_ALGORITHM=ES256", "JWKS_URI=https://x.example/jwks.json")) == NULL,
       "issuer ES256: a JWKS_URI is no key source");
    like(errs(), "ACCESS_PRIVATE_KEY_FILE", "  named");
    ok(iss(ISS_ENV("-ACCESS_SECRET_KEY")) == NULL, "issuer HS256 without ACCESS_SECRET_KEY");
    like(errs(), "ACCESS_TOKEN_ALGORITHM=HS256 requires ACCESS_SECRET_KEY", "  named");

    const char *rsa = key_file("rsa.pem", "RSA", false);
    ok(iss(ISS_ENV("ACCESS_TOKEN_ALGORITHM=RS256", ov("ACCESS_PRIVATE_KEY_FILE", rsa))) != NULL,
       "issuer RS256 with only the private key loads (no JWKS_URI, no public key file)");
    ok(S && S->access_public_key &&
           strncmp(S->access_public_key, "-----BEGIN PUBLIC KEY-----", 26) == 0 &&
           !strstr(S->access_public_key, "PRIVATE"),
       "  the verification key is the private key's public half");
    if (!S)
        diag("%s", errs());
    m8_config_report rep;
    ok(S && m8_config_health(S, &rep) == 0, "  config health has no fatal finding");
    if (S)
        m8_config_report_free(&rep);
    const char *ec = key_file("ec.pem", "EC", false);
    ok(iss(ISS_ENV("ACCESS_TOKEN_ALGORITHM=ES256", ov("ACCESS_PRIVATE_KEY_FILE", ec))) != NULL &&
           S->access_public_key,
       "issuer ES256 with only the private key loads");
    const char *other = key_file("other.pub", "RSA", true);
    ok(iss(ISS_ENV("ACCESS_TOKEN_ALGORITHM=RS256", ov("ACCESS_PRIVATE_KEY_FILE", rsa),
                   ov("ACCESS_PUBLIC_KEY_FILE", other))) == NULL,
       "a public key file of another key pair is refused");
    like(errs(), "ACCESS_PUBLIC_KEY_FILE is not the public half of ACCESS_PRIVATE_KEY_FILE",
         "  named");
    ok(iss(ISS_ENV("ACCESS_PUBLIC_KEY_OLD_FILE=/nonexistent/old.pem")) == NULL,
       "a missing ACCESS_PUBLIC_KEY_OLD_FILE is refused");
    like(errs(), "ACCESS_PUBLIC_KEY_OLD_FILE not found", "  named");
    /* a consumer keeps its own rule */
    ok(load_from(m8t_env("ACCESS_TOKEN_ALGORITHM=RS256", NULL), "/dev/null", false) == NULL,
       "consumer RS256 without a public key source is still refused");
    like(errs(), "ACCESS_PUBLIC_KEY_FILE or JWKS_URI", "  with the consumer's message");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/m8-setiss-XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    test_consumer_refuses();
    test_issuer_defaults();
    test_issuer_catalogue();
    test_required();
    test_ranges();
    test_secret_rules();
    test_login_methods();
    test_keys();
    m8_settings_free(S);
    m8_errlist_free(&E);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        diag("could not remove %s", dir);
    return done_testing();
}
