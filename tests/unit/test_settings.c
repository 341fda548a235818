/* test_settings.c - settings loading and validation (doc/settings.md#settings,
 * doc/settings.md#service-meta).  Temporary files live in a mkdtemp dir.
 *
 * This file holds main() and the loader fixture; the tests are in
 * test_settings_fields.c, test_settings_model.c and test_settings_sources.c
 * (test_settings.h). */

#include "config.h"

#define M8T_MAIN 1 /* this file holds main() (tap.h) */
#include "test_settings.h"

m8_settings *S;
m8_errlist E;
char dir[64];

static void reset(void)
{
    m8_settings_free(S);
    S = NULL;
    m8_errlist_free(&E);
}

m8_settings *load_src(const m8_settings_source *src)
{
    reset();
    S = m8_settings_load(src, &E);
    return S;
}

m8_settings *load(char **env)
{
    reset();
    S = m8t_settings(env, &E);
    return S;
}

/* The error lines joined (for like()). */
const char *errs(void)
{
    static char buf[8192];
    buf[0] = '\0';
    for (size_t i = 0; i < E.n; i++) {
        strncat(buf, E.lines[i], sizeof buf - strlen(buf) - 2);
        strncat(buf, "\n", sizeof buf - strlen(buf) - 1);
    }
    return buf;
}

const char *put_file(const char *name, const char *text)
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

/* "NAME=value"; kept in a pool that main() frees at the end. */
static char **pool;
static size_t npool;

char *ov(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s=%s", name, value);
    char **np = realloc(pool, (npool + 1) * sizeof *np);
    if (np) {
        pool = np;
        pool[npool++] = s;
    }
    return s;
}

/* One env-level case: NAME=value loads or fails. */
void expect_ok(const char *name, const char *value)
{
    char *o = ov(name, value);
    ok(LOAD(o) != NULL, "%s=%s is accepted", name, value);
    if (!S)
        diag("%s", errs());
}

void expect_bad(const char *name, const char *value, const char *needle)
{
    char *o = ov(name, value);
    ok(LOAD(o) == NULL, "%s=%s is rejected", name, value);
    like(errs(), needle, "  error names %s", needle);
}

int sh(const char *cmd)
{
    return system(cmd);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/m8setXXXXXX");
    if (!mkdtemp(dir))
        return ok(0, "mkdtemp"), done_testing();
    test_base_and_defaults();
    test_required();
    test_value_grammar();
    test_cors_origins();
    test_bounds();
    test_patterns();
    test_roles_algorithms_db();
    test_model_checks();
    test_no_secret_in_errors();
    test_computed();
    test_sources();
    reset();
    for (size_t i = 0; i < npool; i++)
        free(pool[i]);
    free(pool);
    char c[128];
    snprintf(c, sizeof c, "rm -rf %s", dir);
    sh(c);
    return done_testing();
}
