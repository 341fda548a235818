/* testenv.h - a valid consumer environment for unit tests, with overrides.
 *   char **env = m8t_env("ENVIRONMENT=production", "ALLOWED_HOSTS=a.example", NULL);
 *   m8_settings *s = m8t_settings(env, &errs);   // env_file "/dev/null"
 * An override "NAME=" sets an empty value; "-NAME" removes NAME.  The base
 * environment alone: m8t_env0() (m8t_env(NULL) trips -Wformat's sentinel). */
#ifndef M8_TESTENV_H
#define M8_TESTENV_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config/settings.h"

static const char *const m8t_base[] = {
    "DOMAIN=localhost",
    "ENVIRONMENT=local",
    "PROJECT_NAME=test-service",
    "STACK_NAME=local",
    "API_PREFIX=/api",
    "BACKEND_HOST=http://localhost:8000",
    "FRONTEND_HOST=http://localhost:3000",
    "BACKEND_CORS_ORIGINS=http://localhost:3000",
    "ACCESS_TOKEN_ALGORITHM=HS256",
    "ACCESS_SECRET_KEY=Test-Access-Secret-Key-0123456789abcdef!",
    "REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!",
    "TOKEN_MODE=stateless",
    "TOKEN_STRICT_VALIDATION=false",
    "AUTH_SERVICE_ROLE=consumer",
    "EVENT_SIGNING_KEY=Test-Event-Signing-Key-0123456789abcdef!",
    "SERVICE_VERSION=1.0.0",
    "CONTRACT_VERSION=1.0",
    "CONTRACT_RANGE=>=1.0.0 <2.0.0",
    NULL,
};

/* strdup is POSIX, hidden under -std=c11 unless config.h came first. */
static __attribute__((unused)) char *m8t_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Every env made stays reachable from here (each array's spare last slot
 * points to the previous one), so LeakSanitizer does not report them. */
static char **m8t_env_chain;

/* Returns a malloc'd NULL-terminated env (never freed; kept reachable). */
static __attribute__((unused, sentinel)) char **m8t_env(const char *first, ...)
{
    size_t cap = 256, n = 0;
    char **env = calloc(cap + 1, sizeof *env);
    env[cap] = (char *)(void *)m8t_env_chain;
    m8t_env_chain = env;
    for (size_t i = 0; m8t_base[i]; i++)
        env[n++] = m8t_strdup(m8t_base[i]);
    va_list ap;
    va_start(ap, first);
    for (const char *o = first; o; o = va_arg(ap, const char *)) {
        int remove = o[0] == '-';
        const char *name = remove ? o + 1 : o;
        size_t nl = remove ? strlen(name) : (size_t)(strchr(o, '=') - o);
        for (size_t i = 0; i < n; i++) {
            if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=') {
                free(env[i]);
                env[i] = env[--n];
                env[n] = NULL;
                break;
            }
        }
        if (!remove && n + 1 < cap)
            env[n++] = m8t_strdup(o);
    }
    va_end(ap);
    env[n] = NULL;
    return env;
}

static __attribute__((unused)) char **m8t_env0(void)
{
    return m8t_env("-M8T_NOTHING", NULL);
}

static __attribute__((unused)) m8_settings *m8t_settings(char **env, m8_errlist *errs)
{
    m8_settings_source src = {
        .env = env, .env_file = "/dev/null", .cwd = "/", .uses_database = false};
    return m8_settings_load(&src, errs);
}

#endif
