/* settings.c - loading the consumer settings (settings.h; doc/settings.md):
 * the error lists, the sources and the load order.
 *
 * Order of work: find and parse the .env file; gather one raw text per field
 * from NAME_FILE > process environment > .env; parse every field (the table
 * and the parsing are in settings_fields.c) and report every field-level
 * error together; then run the model checks in order, stopping at the first
 * failure; then the computed values (both in settings_model.c).  No error
 * line ever contains a value: only names and file paths.  The value grammar
 * and the pattern matchers live in settings_values.c. */
#include "config/settings_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/dotenv.h"

/* ------------------------------------------------------------ error lists */

void m8_errlist_add(m8_errlist *e, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **nl = realloc(e->lines, (e->n + 1) * sizeof *nl);
    if (!nl)
        return;
    e->lines = nl;
    if ((e->lines[e->n] = strdup(line)) != NULL)
        e->n++;
}

void m8_errlist_free(m8_errlist *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->lines[i]);
    free(e->lines);
    e->lines = NULL;
    e->n = 0;
}

/* Names that are computed, never set (an error in .env, ignored in env). */
static const char *const computed_names[] = {"ALLOWED_ORIGINS", "SQLALCHEMY_DATABASE_URI",
                                             "ACCESS_PUBLIC_KEY"};

/* ------------------------------------------------------------ sources */

/* The value of an exact "NAME=" entry of env, or NULL. */
static const char *env_exact(char *const *env, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; env && env[i]; i++) {
        if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=')
            return env[i] + nl + 1;
    }
    return NULL;
}

static const char *dotenv_lookup(const char *name, void *data)
{
    return env_exact(data, name);
}

/* doc/settings.md#where-values-come-from: --env-file, else M8_ENV_FILE, else the first .env walking
 * up from cwd. Returns 0 with *path NULL when no file applies; <0 after an error line. */
static int find_env_file(const m8_settings_source *src, char **path)
{
    *path = NULL;
    if (src->env_file) {
        if (!(*path = strdup(src->env_file)))
            return M8_ENOMEM;
        return 0;
    }
    const char *named = env_exact(src->env, "M8_ENV_FILE");
    if (named && *named) {
        if (!(*path = strdup(named)))
            return M8_ENOMEM;
        return 0;
    }
    char dir[PATH_MAX];
    char *real = realpath(src->cwd ? src->cwd : ".", NULL);
    if (!real) {
        return 0; /* an unreadable cwd has no .env to find */
    }
    snprintf(dir, sizeof dir, "%s", real);
    free(real);

    for (;;) {
        char cand[PATH_MAX + 8];
        snprintf(cand, sizeof cand, "%s/.env", strcmp(dir, "/") == 0 ? "" : dir);
        struct stat st;
        if (stat(cand, &st) == 0 && !S_ISDIR(st.st_mode))
            return (*path = strdup(cand)) ? 0 : M8_ENOMEM;
        char *slash = strrchr(dir, '/');
        if (!slash || strcmp(dir, "/") == 0)
            return 0;
        if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
    }
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64)
        la = 64;
    if (lb > 64)
        lb = 64;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            char ca = a[i - 1], cb = b[j - 1];
            if (ca >= 'a' && ca <= 'z')
                ca = (char)(ca - 32);
            size_t sub = prev[j - 1] + (ca != cb);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof prev);
    }
    return prev[lb];
}

/* A field the app knows: the fcgim8-issuer ones only in the issuer
 * (doc/issuer.md#settings). */
static bool field_on(size_t i, bool issuer)
{
    return issuer || !(m8__settings_fields[i].flags & ISS);
}

static const char *nearest_name(const char *key, bool issuer)
{
    size_t best = SIZE_MAX;
    const char *name = m8__settings_fields[0].name;
    for (size_t i = 0; i < NFIELDS; i++) {
        if (!field_on(i, issuer))
            continue;
        size_t d = edit_distance(key, m8__settings_fields[i].name);
        if (d < best) {
            best = d;
            name = m8__settings_fields[i].name;
        }
    }
    return name;
}

/* A key as it may appear in a message: printable ASCII, at most 64 bytes. */
static void show_key(const char *key, char *buf, size_t len)
{
    size_t i = 0;
    for (; key[i] && i < 64 && i + 4 < len; i++)
        buf[i] = (key[i] > 0x20 && key[i] < 0x7f) ? key[i] : '?';
    buf[i] = '\0';
    if (key[i] && i + 4 < len)
        memcpy(buf + i, "...", 4);
}

/* Checks the keys of the .env file and records each field's value. */
static void take_dotenv(const m8_dotenv *d, const char *path, bool issuer, const char **raw,
                        unsigned *rawline, m8_errlist *errs)
{
    for (size_t i = 0; i < d->n; i++) {
        const m8_dotenv_pair *p = &d->pairs[i];
        char shown[72];
        show_key(p->key, shown, sizeof shown);
        int fi = m8__field_index(p->key);
        if (fi >= 0 && !field_on((size_t)fi, issuer)) {
            m8_errlist_add(errs, "%s line %u: unknown setting '%s' (an fcgim8-issuer setting)",
                           path, p->line, shown);
            continue;
        }
        if (fi >= 0) {
            /* Names differing only in case: the later line wins. */
            if (!raw[fi] || p->line >= rawline[fi]) {
                raw[fi] = p->value;
                rawline[fi] = p->line;
            }
            continue;
        }
        bool computed = false;
        for (size_t k = 0; k < M8_ARRAY_LEN(computed_names); k++)
            computed |= m8_strcaseeq(p->key, computed_names[k]) != 0;
        size_t kl = strlen(p->key);
        if (computed) {
            m8_errlist_add(errs, "%s line %u: '%s' is computed and cannot be set", path, p->line,
                           shown);
        } else if (kl > 5 && m8_strcaseeq(p->key + kl - 5, "_FILE")) {
            m8_errlist_add(errs,
                           "%s line %u: unknown setting '%s' (NAME_FILE secret files are read "
                           "only from the process environment); did you mean '%s'?",
                           path, p->line, shown, nearest_name(p->key, issuer));
        } else {
            m8_errlist_add(errs, "%s line %u: unknown setting '%s'; did you mean '%s'?", path,
                           p->line, shown, nearest_name(p->key, issuer));
        }
    }
}

/* Process environment: known names only, any case; an exact match wins. */
static void take_env(char *const *env, bool issuer, const char **raw, m8_errlist *errs)
{
    bool exact[NFIELDS] = {false};
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (!eq || eq == env[i] || (size_t)(eq - env[i]) > 64)
            continue;
        char name[72];
        memcpy(name, env[i], (size_t)(eq - env[i]));
        name[eq - env[i]] = '\0';
        int fi = m8__field_index(name);
        if (fi < 0 || !field_on((size_t)fi, issuer))
            continue;
        bool ex = strcmp(name, m8__settings_fields[fi].name) == 0;
        if (exact[fi] && !ex)
            continue;
        if (strlen(eq + 1) > M8_MAX_ENV_LINE_BYTES) {
            m8_errlist_add(errs, "%s: value exceeds %u bytes", m8__settings_fields[fi].name,
                           (unsigned)M8_MAX_ENV_LINE_BYTES);
            continue;
        }
        raw[fi] = eq + 1;
        exact[fi] = ex;
    }
}

/* NAME_FILE secret files (exact upper-case names, process environment only). */
static void take_files(char *const *env, bool issuer, const char **raw, char **owned, bool *failed,
                       m8_errlist *errs)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        if (!field_on(i, issuer))
            continue;
        char name[80];
        snprintf(name, sizeof name, "%s_FILE", m8__settings_fields[i].name);
        const char *path = env_exact(env, name);
        if (!path || !*path)
            continue;
        char *text = NULL;
        size_t len = 0;
        int rc = m8_read_file(path, M8_MAX_SECRET_FILE_BYTES, true, &text, &len);
        failed[i] = rc != 0;
        if (rc == M8_ENOTFOUND) {
            m8_errlist_add(errs, "%s points to a missing file", name);
        } else if (rc == M8_ETOOBIG) {
            m8_errlist_add(errs, "%s: the file exceeds %u bytes", name,
                           (unsigned)M8_MAX_SECRET_FILE_BYTES);
        } else if (rc) {
            m8_errlist_add(errs, "%s: the file cannot be read", name);
        } else if (memchr(text, '\0', len)) {
            m8_errlist_add(errs, "%s: the file contains a NUL byte", name);
            failed[i] = true;
        } else {
            owned[i] = m8__dup_trimmed(text);
            raw[i] = owned[i];
        }
        if (failed[i])
            raw[i] = NULL; /* reported once, as NAME_FILE */
        if (text) {
            sodium_memzero(text, len);
            free(text);
        }
    }
}

/* ------------------------------------------------------------ load / free */

void m8_settings_free(m8_settings *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &m8__settings_fields[i];
        if (f->type == F_STR || f->type == F_SECRET || f->type == F_PATH || f->type == F_URL)
            m8__wipe_free(*AT(s, f, char *));
        else if (f->type == F_LIST)
            m8_strlist_free(AT(s, f, m8_strlist));
    }
    m8__wipe_free(s->access_public_key);
    m8_strlist_free(&s->allowed_origins);
    free(s->api_key_introspection_url_effective);
    free(s->env_file_used);
    for (size_t i = 0; i < s->kv_n; i++) {
        free(s->kv_names[i]);
        m8__wipe_free(s->kv_values[i]);
    }
    free(s->kv_names);
    free(s->kv_values);
    sodium_memzero(s, sizeof *s);
    free(s);
}

m8_settings *m8_settings_load(const m8_settings_source *src, m8_errlist *errs)
{
    const char *raw[NFIELDS] = {NULL};
    unsigned rawline[NFIELDS] = {0};
    char *owned[NFIELDS] = {NULL};
    bool has_value[NFIELDS] = {false};
    bool file_failed[NFIELDS] = {false};
    m8_dotenv d = {0};
    char *path = NULL, *text = NULL;
    size_t len = 0, nerr = errs->n;
    m8_settings *s = calloc(1, sizeof *s);
    if (!s) {
        m8_errlist_add(errs, "settings: out of memory");
        return NULL;
    }

    /* The .env file (doc/settings.md#where-values-come-from). */
    if (find_env_file(src, &path)) {
        m8_errlist_add(errs, "settings: out of memory");
        goto fail;
    }
    if (path) {
        int rc = m8_read_file(path, M8_MAX_ENV_FILE_BYTES, false, &text, &len);
        if (rc == M8_ENOTFOUND) {
            m8_errlist_add(errs, "%s points to a missing file: %s",
                           src->env_file ? "--env-file" : "M8_ENV_FILE", path);
            goto fail;
        }
        if (rc) {
            m8_errlist_add(errs, "env file %s: %s", path,
                           rc == M8_ETOOBIG ? "exceeds the size limit (M8_MAX_ENV_FILE_BYTES)"
                                            : "cannot be read");
            goto fail;
        }
        char why[160];
        rc = m8_dotenv_parse(text, len, dotenv_lookup, (void *)src->env, &d, why, sizeof why);
        sodium_memzero(text, len);
        free(text);
        if (rc) {
            m8_errlist_add(errs, "env file %s: %s", path, why);
            goto fail;
        }
        take_dotenv(&d, path, src->issuer, raw, rawline, errs);
    }
    take_env(src->env, src->issuer, raw, errs);
    take_files(src->env, src->issuer, raw, owned, file_failed, errs);
    s->issuer = src->issuer;

    /* Field level: every error is reported, with those of the sources. */
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &m8__settings_fields[i];
        if (file_failed[i] || !field_on(i, src->issuer))
            continue;
        const char *v = raw[i] ? raw[i] : m8__field_default(f, src->issuer);
        has_value[i] = v != NULL;
        if (!v) {
            bool db_used = src->uses_database || raw[m8__field_index("SELECTED_DB")];
            if ((f->flags & REQ) || ((f->flags & REQ_DB) && db_used) ||
                ((f->flags & REQ_ISS) && src->issuer))
                m8_errlist_add(errs, "%s: field required", f->name);
            continue;
        }
        char buf[200];
        const char *why = m8__parse_field(s, f, v, buf, sizeof buf);
        if (why)
            m8_errlist_add(errs, "%s: %s", f->name, why);
    }
    if (errs->n > nerr)
        goto fail;
    s->selected_db_set = raw[m8__field_index("SELECTED_DB")] != NULL;
    s->redis_port_set = raw[m8__field_index("REDIS_PORT")] != NULL;
    s->google_oauth_enabled_set = raw[m8__field_index("GOOGLE_OAUTH_ENABLED")] != NULL;

    if (m8__model_checks(s, errs))
        goto fail;
    if (m8__computed(s) || m8__build_kv(s, has_value)) {
        m8_errlist_add(errs, "settings: out of memory");
        goto fail;
    }
    s->env_file_used = path;
    path = NULL;
    goto done;
fail:
    m8_settings_free(s);
    s = NULL;
done:
    for (size_t i = 0; i < NFIELDS; i++)
        m8__wipe_free(owned[i]);
    m8_dotenv_free(&d);
    free(path);
    return s;
}
