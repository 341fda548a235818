/* tap.h - a minimal TAP producer for the unit tests (automake tap-driver).
 * Usage: plan_lazy(); ok(cond, "name %d", x); is_int(a, b, "name");
 * is_str(a, b, "name"); return done_testing(); */
#ifndef M8_TAP_H
#define M8_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A test program built from several files defines M8T_SHARED before
 * including this header in each of them, and M8T_MAIN in the one that holds
 * main(), so that all of them number one TAP stream. */
#ifdef M8T_SHARED
extern int tap_n, tap_failed;
#ifdef M8T_MAIN
int tap_n, tap_failed;
#endif
#else
static int tap_n, tap_failed;
#endif

static void tap_vreport(int cond, const char *fmt, va_list ap)
{
    tap_n++;
    if (!cond)
        tap_failed++;
    printf("%s %d - ", cond ? "ok" : "not ok", tap_n);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
}

__attribute__((format(printf, 2, 3), unused)) static int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_vreport(cond, fmt, ap);
    va_end(ap);
    return cond;
}

__attribute__((format(printf, 3, 4), unused)) static int is_int_(long long got, long long want,
                                                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_vreport(got == want, fmt, ap);
    va_end(ap);
    if (got != want)
        printf("#   got: %lld\n#  want: %lld\n", got, want);
    return got == want;
}
#define is_int(got, want, ...) is_int_((long long)(got), (long long)(want), __VA_ARGS__)

__attribute__((format(printf, 3, 4), unused)) static int is_str(const char *got, const char *want,
                                                                const char *fmt, ...)
{
    int cond = (got == NULL && want == NULL) || (got && want && strcmp(got, want) == 0);
    va_list ap;
    va_start(ap, fmt);
    tap_vreport(cond, fmt, ap);
    va_end(ap);
    if (!cond)
        printf("#   got: %s\n#  want: %s\n", got ? got : "(null)", want ? want : "(null)");
    return cond;
}

/* Substring check. */
__attribute__((format(printf, 3, 4), unused)) static int like(const char *got, const char *needle,
                                                              const char *fmt, ...)
{
    int cond = got && needle && strstr(got, needle) != NULL;
    va_list ap;
    va_start(ap, fmt);
    tap_vreport(cond, fmt, ap);
    va_end(ap);
    if (!cond)
        printf("#   got: %s\n#  want substring: %s\n", got ? got : "(null)", needle);
    return cond;
}

__attribute__((unused)) static void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

__attribute__((unused)) static int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
