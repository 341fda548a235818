/* fuzz_policy.c - libFuzzer target for the fcgim8-gate policy (lib/auth/policy.c):
 * the input as a policy file (parsed, then asked about a few requests), and
 * the input as a request target (checked and decoded, checked for the
 * invariants of an accepted path, then matched against a policy with globs,
 * as decoded and as sent). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fixed = "assets GET /static/ public\n"
                                 "php GET,POST /**/*.php writer\n"
                                 "deep * /a/**/b/*/c?d/** reader\n"
                                 "exact DELETE =/x/y superuser\n"
                                 "default deny\n";

static void check_match(const m8_policy *p, const char *method, const char *path, size_t n)
{
    const m8_policy_rule *r = m8_policy_match(p, method, path, n);
    if (!r || r < p->rules || r >= p->rules + p->n)
        abort(); /* the default rule always answers */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static m8_policy fixed_pol;
    static int ready;
    char err[160];
    unsigned line;
    if (!ready) {
        if (m8_policy_parse(fixed, strlen(fixed), &fixed_pol, err, sizeof err, &line) != 0)
            abort();
        ready = 1;
    }

    m8_policy p;
    if (m8_policy_parse((const char *)data, size, &p, err, sizeof err, &line) == 0) {
        static const char *const paths[] = {"/", "/a", "/a/b/c.php", "/static/x.css", "/x/y"};
        static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE"};
        if (p.n == 0 || p.rules[p.n - 1].kind != M8_POLICY_ANY)
            abort(); /* a parsed policy ends with its default */
        for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
            for (size_t j = 0; j < sizeof methods / sizeof *methods; j++)
                check_match(&p, methods[j], paths[i], strlen(paths[i]));
        m8_policy_free(&p);
    } else if (p.n != 0 || p.rules != NULL || !err[0]) {
        abort(); /* a refused policy keeps nothing and says why */
    }

    char *out = malloc(size + 1);
    size_t n = 0;
    const char *why = NULL;
    int rc = out ? m8_policy_normalize((const char *)data, size, out, size + 1, &n, &why) : -1;
    if (out && rc != 0 && (!why || !*why))
        abort(); /* every refusal says why */
    if (out && rc == 0) {
        if (n == 0 || out[0] != '/' || n > size || out[n] != '\0' || memchr(out, 0, n))
            abort();
        for (size_t i = 0; i + 1 < n; i++) {
            if (out[i] == '/' && out[i + 1] == '/')
                abort(); /* no empty segment */
        }
        if (strstr(out, "/./") || strstr(out, "/../") ||
            (n >= 2 && memcmp(out + n - 2, "/.", 2) == 0) ||
            (n >= 3 && memcmp(out + n - 3, "/..", 3) == 0))
            abort(); /* no dot segment */
        if (memchr(out, '%', n) || memchr(out, '?', n) || memchr(out, '#', n) ||
            memchr(out, ';', n) || memchr(out, '\\', n))
            abort(); /* nothing a second decoding or another reading could change */
        /* so normalizing again changes nothing */
        char *again = malloc(n + 1);
        size_t n2 = 0;
        if (again && (m8_policy_normalize(out, n, again, n + 1, &n2, NULL) != 0 || n2 != n ||
                      memcmp(again, out, n) != 0))
            abort();
        free(again);
        check_match(&fixed_pol, "GET", out, n);
        check_match(&fixed_pol, "DELETE", out, n);
        const m8_policy_rule *r = NULL;
        size_t n3 = 0;
        if (m8_policy_decide(&fixed_pol, "GET", (const char *)data, size, out, size + 1, &n3, &r,
                             &why) == 0 &&
            (!r || n3 != n))
            abort();
    }
    free(out);
    return 0;
}
