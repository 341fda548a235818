/* test_settings_sources.c - where settings come from (environment,
 * .env file, *_FILE secrets) and the computed values. */

#include "config.h"

#include "test_settings.h"

void test_sources(void)
{
    m8_settings_source src = {.env = NULL, .env_file = NULL, .cwd = "/"};
    /* .env < environment (doc/settings.md#where-values-come-from) */
    const char *f =
        put_file("a.env", "PROJECT_NAME=from-dotenv\nexport STACK_NAME='dotenv-stack'\n");
    src.env = m8t_env("PROJECT_NAME=from-env", "-STACK_NAME", NULL);
    src.env_file = f;
    ok(load_src(&src) != NULL, "load with a .env file");
    if (S) {
        is_str(S->project_name, "from-env",
               "process environment beats .env (doc/settings.md#where-values-come-from)");
        is_str(S->stack_name, "dotenv-stack", ".env supplies what the environment lacks");
        is_str(S->env_file_used, f, "env_file_used is the file read");
    }
    f = put_file("b.env", "PROJECT_NAME=\nSTACK_NAME=b\n");
    src.env_file = f;
    ok(load_src(&src) && !strcmp(S->project_name, "from-env"),
       "an empty .env value does not beat the environment "
       "(doc/settings.md#where-values-come-from)");
    /* NAME_FILE > environment */
    const char *sf = put_file("pn.txt", "  from-file \n");
    char fo[300];
    snprintf(fo, sizeof fo, "PROJECT_NAME_FILE=%s", sf);
    src.env = m8t_env("PROJECT_NAME=from-env", fo, NULL);
    src.env_file = "/dev/null";
    ok(load_src(&src) && !strcmp(S->project_name, "from-file"),
       "PROJECT_NAME_FILE beats the environment, contents trimmed");
    src.env = m8t_env("PROJECT_NAME_FILE=/nonexistent/secret", NULL);
    ok(load_src(&src) == NULL, "a NAME_FILE pointing nowhere fails");
    like(errs(), "PROJECT_NAME_FILE points to a missing file", "  pinned message");
    is_int(E.n, 1, "  reported once (no 'field required' for PROJECT_NAME)");
    src.env = m8t_env("PROJECT_NAME_FILE=/nonexistent/secret", "SET_DOCS=maybe", NULL);
    ok(load_src(&src) == NULL && E.n == 2, "source errors and field errors are reported together");
    snprintf(fo, sizeof fo, "PROJECT_NAME_FILE=%s", dir);
    src.env = m8t_env(fo, NULL);
    ok(load_src(&src) == NULL, "a NAME_FILE pointing at a directory fails");
    like(errs(), "PROJECT_NAME_FILE points to a missing file", "  as missing");
    src.env = m8t_env("PROJECT_NAME_FILE=", NULL);
    ok(load_src(&src) != NULL, "an empty NAME_FILE is ignored");
    const char *ak = put_file("ak.txt", "Test-Access-Secret-Key-FROM-FILE-0123456789!\n");
    snprintf(fo, sizeof fo, "ACCESS_SECRET_KEY_FILE=%s", ak);
    src.env = m8t_env(fo, NULL);
    ok(load_src(&src) &&
           !strcmp(S->access_secret_key, "Test-Access-Secret-Key-FROM-FILE-0123456789!"),
       "secret from ACCESS_SECRET_KEY_FILE");
    snprintf(fo, sizeof fo, "access_secret_key_file=%s", ak);
    src.env = m8t_env(fo, NULL);
    ok(load_src(&src) &&
           strcmp(S->access_secret_key, "Test-Access-Secret-Key-FROM-FILE-0123456789!"),
       "NAME_FILE is looked up in exact upper case only");
    /* NAME_FILE size limit */
    char *big = malloc(M8_MAX_SECRET_FILE_BYTES + 2);
    memset(big, 'c', M8_MAX_SECRET_FILE_BYTES + 1);
    big[M8_MAX_SECRET_FILE_BYTES] = '\0';
    sf = put_file("csp-at", big);
    snprintf(fo, sizeof fo, "CONTENT_SECURITY_POLICY_FILE=%s", sf);
    src.env = m8t_env(fo, NULL);
    ok(load_src(&src) && strlen(S->content_security_policy) == M8_MAX_SECRET_FILE_BYTES,
       "a NAME_FILE of exactly M8_MAX_SECRET_FILE_BYTES is read");
    big[M8_MAX_SECRET_FILE_BYTES] = 'c';
    big[M8_MAX_SECRET_FILE_BYTES + 1] = '\0';
    sf = put_file("csp-past", big);
    snprintf(fo, sizeof fo, "CONTENT_SECURITY_POLICY_FILE=%s", sf);
    src.env = m8t_env(fo, NULL);
    ok(load_src(&src) == NULL, "a NAME_FILE of M8_MAX_SECRET_FILE_BYTES + 1 fails");
    like(errs(), "CONTENT_SECURITY_POLICY_FILE: the file exceeds", "  message names the variable");
    /* Environment value limit */
    big[M8_MAX_ENV_LINE_BYTES] = '\0';
    char *ev = ov("CONTENT_SECURITY_POLICY", big);
    ok(LOAD(ev) != NULL, "an environment value of M8_MAX_ENV_LINE_BYTES is accepted");
    big[M8_MAX_ENV_LINE_BYTES] = 'c';
    ev = ov("CONTENT_SECURITY_POLICY", big);
    ok(LOAD(ev) == NULL, "an environment value of M8_MAX_ENV_LINE_BYTES + 1 is refused");
    like(errs(), "CONTENT_SECURITY_POLICY: value exceeds", "  message");
    free(big);
    /* Names are case-insensitive (doc/settings.md#names) */
    ok(LOAD("-PROJECT_NAME", "project_name=lower-case") && !strcmp(S->project_name, "lower-case"),
       "a lower-case name in the environment sets the field");
    ok(LOAD("Project_Name=mixed") && !strcmp(S->project_name, "test-service"),
       "the exact upper-case name wins over another spelling");
    ok(LOAD("FOO_BAR_UNKNOWN=1", "ALLOWED_ORIGINS=x", "SQLALCHEMY_DATABASE_URI=x") != NULL,
       "unknown and computed names in the environment are ignored");
    f = put_file("c.env", "environment=development\nSet_Docs=off\n");
    src.env = m8t_env("-ENVIRONMENT", NULL);
    src.env_file = f;
    ok(load_src(&src) && S->environment == M8_ENV_DEVELOPMENT && !S->set_docs,
       "names in .env are case-insensitive");
    f = put_file("c2.env", "SET_DOCS=off\nset_docs=on\n");
    src.env = m8t_env0();
    src.env_file = f;
    ok(load_src(&src) && S->set_docs, "in .env the later of two spellings wins");
    /* Unknown and forbidden keys in .env */
    f = put_file("d.env", "PROJET_NAME=x\nDB_PASSWORD_FILE=/run/secrets/db\nALLOWED_ORIGINS=x\n"
                          "SQLALCHEMY_DATABASE_URI=mysql://x\n");
    src.env_file = f;
    ok(load_src(&src) == NULL, "unknown keys in .env fail");
    like(errs(), "line 1: unknown setting 'PROJET_NAME'; did you mean 'PROJECT_NAME'?",
         "  unknown key named with the nearest known name");
    like(errs(), "line 2: unknown setting 'DB_PASSWORD_FILE'",
         "  NAME_FILE inside .env is unknown");
    like(errs(), "did you mean 'DB_PASSWORD'?", "  and suggests the field");
    like(errs(), "line 3: 'ALLOWED_ORIGINS' is computed and cannot be set", "  computed name");
    like(errs(), "line 4: 'SQLALCHEMY_DATABASE_URI' is computed", "  computed name");
    is_int(E.n, 4, "  each bad key has its own line");
    f = put_file("e.env", "REDIS_HOST=redis\nSMTP_HOST=smtp.example.com\nOAUTH_ALLOWED_REDIRECT_"
                          "SCHEMES=[\"x://\"]\nACCESS_KEY_ID=k1\nREFRESH_SECRET_KEY_OLD=old\n");
    src.env_file = f;
    ok(load_src(&src) != NULL,
       "issuer-only settings in .env are known names (doc/settings.md#names)");
    /* .env syntax through the loader */
    f = put_file("f.env", "# comment\n\nexport PROJECT_NAME=\"${SVC}-svc\" # trailing\n"
                          "STACK_NAME=my-stack # comment\nCONTRACT_RANGE='>=1.0.0 <2.0.0'\n"
                          "CONTENT_SECURITY_POLICY=\"default-src 'self';\nimg-src *\"\n"
                          "STACK_NAME=second\n");
    src.env = m8t_env("-PROJECT_NAME", "-STACK_NAME", "-CONTRACT_RANGE", "SVC=items", NULL);
    src.env_file = f;
    ok(load_src(&src) != NULL, "a .env with comments, quotes, export and interpolation loads");
    if (S) {
        is_str(S->project_name, "items-svc", "${SVC} interpolated from the process environment");
        is_str(S->stack_name, "second", "repeated key: the last wins");
        is_str(S->contract_range, ">=1.0.0 <2.0.0", "single-quoted value");
        is_str(S->content_security_policy, "default-src 'self';\nimg-src *", "multi-line value");
    }
    f = put_file("g.env", "PROJECT_NAME=\"unterminated\n");
    src.env_file = f;
    ok(load_src(&src) == NULL, "a .env syntax error fails");
    like(errs(), "g.env: line 1: unterminated quoted value", "  with the file and line");
    /* .env size limits */
    char *text = malloc(M8_MAX_ENV_FILE_BYTES + 2);
    memset(text, '#', M8_MAX_ENV_FILE_BYTES + 1);
    for (size_t i = 1000; i < M8_MAX_ENV_FILE_BYTES; i += 1000)
        text[i] = '\n';
    text[M8_MAX_ENV_FILE_BYTES] = '\0';
    f = put_file("big.env", text);
    src.env_file = f;
    src.env = m8t_env0();
    ok(load_src(&src) != NULL, "a .env of exactly M8_MAX_ENV_FILE_BYTES loads");
    text[M8_MAX_ENV_FILE_BYTES] = '#';
    text[M8_MAX_ENV_FILE_BYTES + 1] = '\0';
    f = put_file("big2.env", text);
    src.env_file = f;
    ok(load_src(&src) == NULL, "a .env of M8_MAX_ENV_FILE_BYTES + 1 fails");
    like(errs(), "exceeds the size limit", "  size message");
    memset(text, 'x', M8_MAX_ENV_LINE_BYTES + 2);
    memcpy(text, "CONTENT_SECURITY_POLICY=", 24);
    text[M8_MAX_ENV_LINE_BYTES] = '\n';
    text[M8_MAX_ENV_LINE_BYTES + 1] = '\0';
    src.env_file = put_file("line.env", text);
    ok(load_src(&src) && strlen(S->content_security_policy) == M8_MAX_ENV_LINE_BYTES - 24,
       "a .env line of exactly M8_MAX_ENV_LINE_BYTES loads");
    text[M8_MAX_ENV_LINE_BYTES] = 'x';
    text[M8_MAX_ENV_LINE_BYTES + 1] = '\n';
    text[M8_MAX_ENV_LINE_BYTES + 2] = '\0';
    src.env_file = put_file("line2.env", text);
    ok(load_src(&src) == NULL, "a .env line of M8_MAX_ENV_LINE_BYTES + 1 fails");
    like(errs(), "line 1: line exceeds", "  line size message");
    free(text);
    /* Which file (doc/settings.md#where-values-come-from) */
    src.env_file = "/nonexistent/.env";
    ok(load_src(&src) == NULL, "an explicit env file that is missing fails");
    like(errs(), "--env-file points to a missing file: /nonexistent/.env", "  message");
    src.env_file = NULL;
    char me[300];
    snprintf(me, sizeof me, "M8_ENV_FILE=%s", put_file("m.env", "PROJECT_NAME=via-m8-env-file\n"));
    src.env = m8t_env("-PROJECT_NAME", me, NULL);
    ok(load_src(&src) && !strcmp(S->project_name, "via-m8-env-file"), "M8_ENV_FILE names the file");
    src.env = m8t_env("M8_ENV_FILE=/nonexistent/m.env", NULL);
    ok(load_src(&src) == NULL, "a missing M8_ENV_FILE fails");
    like(errs(), "M8_ENV_FILE points to a missing file", "  message");
    char sub[256], top[256];
    snprintf(top, sizeof top, "%s/walk", dir);
    snprintf(sub, sizeof sub, "%s/walk/a/b", dir);
    char c2[600];
    snprintf(c2, sizeof c2, "mkdir -p %s && printf 'PROJECT_NAME=walked\\n' > %s/.env", sub, top);
    ok(sh(c2) == 0, "made a directory tree with a .env at the top");
    src.env = m8t_env("-PROJECT_NAME", NULL);
    src.cwd = sub;
    ok(load_src(&src) && !strcmp(S->project_name, "walked"),
       "the .env is found walking up from cwd");
    char want[300];
    snprintf(want, sizeof want, "%s/.env", top);
    char *rw = realpath(top, NULL);
    if (rw) {
        snprintf(want, sizeof want, "%s/.env", rw);
        free(rw);
    }
    if (S)
        is_str(S->env_file_used, want, "env_file_used is the found file");
    snprintf(c2, sizeof c2, "mkdir -p %s/e1/e2 && mkdir -p %s/e1/.env", dir, dir);
    sh(c2);
    snprintf(sub, sizeof sub, "%s/e1/e2", dir);
    struct stat st;
    if (stat("/.env", &st) != 0 && stat("/tmp/.env", &st) != 0) {
        src.env = m8t_env0();
        src.cwd = sub;
        ok(load_src(&src) && S->env_file_used == NULL,
           "no .env anywhere up the tree is fine (a directory named .env is skipped)");
    }
}

void test_computed(void)
{
    ok(LOAD("-NOTHING") && S->allowed_origins.n == 1 &&
           !strcmp(S->allowed_origins.items[0], "http://localhost:3000"),
       "ALLOWED_ORIGINS: FRONTEND_HOST already present is not repeated");
    ok(LOAD("FRONTEND_HOST=HTTPS://App.Example.com/ui/") && S->allowed_origins.n == 2 &&
           !strcmp(S->allowed_origins.items[0], "http://localhost:3000") &&
           !strcmp(S->allowed_origins.items[1], "https://app.example.com/ui"),
       "ALLOWED_ORIGINS: FRONTEND_HOST normalised, final '/' removed, path kept, appended");
    if (S)
        is_str(m8_setting(S, "allowed_origins"), "http://localhost:3000,https://app.example.com/ui",
               "m8_setting(ALLOWED_ORIGINS) joins the list");
    ok(LOAD("FRONTEND_HOST=https://app.example.com", "BACKEND_CORS_ORIGINS=https://app.example.com,"
                                                     "http://localhost:3000") &&
           S->allowed_origins.n == 2 &&
           !strcmp(S->allowed_origins.items[0], "https://app.example.com"),
       "ALLOWED_ORIGINS keeps the BACKEND_CORS_ORIGINS order");
    struct {
        const char *env, *strict, *serve, *docs;
        bool gate, eff;
    } g[] = {
        {"local", "false", "false", "true", false, true},
        {"production", "false", "false", "true", true, false},
        {"production", "false", "true", "true", true, true},
        {"staging", "true", "false", "true", true, false},
        {"local", "true", "true", "true", true, true},
        {"local", "false", "false", "false", false, false},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(g); i++) {
        LOAD(ov("ENVIRONMENT", g[i].env), ov("STRICT_PRODUCTION_MODE", g[i].strict),
             ov("SERVE_DOCS_IN_PRODUCTION", g[i].serve), ov("SET_DOCS", g[i].docs),
             ov("SET_OPEN_API", g[i].docs), ov("SET_REDOC", g[i].docs));
        ok(S && S->production_gate == g[i].gate && S->docs_docs == g[i].eff &&
               S->docs_openapi == g[i].eff && S->docs_redoc == g[i].eff,
           "ENVIRONMENT=%s strict=%s serve=%s SET_*=%s: gate %d, effective docs %d", g[i].env,
           g[i].strict, g[i].serve, g[i].docs, g[i].gate, g[i].eff);
        if (!S)
            diag("%s", errs());
    }
    ok(LOAD("SET_REDOC=false") && S->docs_docs && S->docs_openapi && !S->docs_redoc,
       "each docs flag is computed on its own");
    struct {
        const char *in, *want;
    } u[] = {
        {"https://auth.example.com/api/v1/internal/jti-status",
         "https://auth.example.com/api/v1/internal/api-keys/introspect"},
        {"https://auth.example.com/api/v1/internal/jti-status/",
         "https://auth.example.com/api/v1/internal/api-keys/introspect"},
        {"https://auth.example.com/internal/",
         "https://auth.example.com/internal/api-keys/introspect"},
        {"https://auth.example.com", "https://auth.example.com/api-keys/introspect"},
        {"https://auth.example.com/internal//jti-status",
         "https://auth.example.com/internal/api-keys/introspect"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(u); i++) {
        ok(LOAD(ov("INTROSPECTION_URL", u[i].in)) &&
               !strcmp(S->api_key_introspection_url_effective, u[i].want),
           "API-key URL derived from %s", u[i].in);
    }
    ok(LOAD("INTROSPECTION_URL=https://a.example.com/jti-status",
            "API_KEY_INTROSPECTION_URL=https://keys.example.com/check") &&
           !strcmp(S->api_key_introspection_url_effective, "https://keys.example.com/check"),
       "an explicit API_KEY_INTROSPECTION_URL wins");
    ok(LOAD("-NOTHING") && S->api_key_introspection_url_effective == NULL,
       "no introspection URL: nothing derived");

    /* m8_setting() */
    ok(LOAD("-NOTHING") != NULL, "loaded for m8_setting");
    if (!S)
        return;
    is_str(m8_setting(S, "project_name"), "test-service", "m8_setting is case-insensitive");
    is_str(m8_setting(S, "SET_DOCS"), "true", "bool as text");
    is_str(m8_setting(S, "JWKS_CACHE_TTL_SECONDS"), "300", "int as text");
    is_str(m8_setting(S, "EVENT_STREAM_READ_TIMEOUT"), "60.0", "float as text (Python repr)");
    is_str(m8_setting(S, "ACCESS_TOKEN_ALGORITHM"), "HS256", "enum as text");
    is_str(m8_setting(S, "FRONTEND_HOST"), "http://localhost:3000/", "URL in normalised form");
    is_str(m8_setting(S, "OAUTH_ALLOWED_REDIRECT_SCHEMES"), "chrome-extension://", "list default");
    is_str(m8_setting(S, "CONTRACT_RANGE"), ">=1.0.0 <2.0.0", "free text");
    is_str(m8_setting(S, "REFERRER_POLICY"), "strict-origin-when-cross-origin", "default text");
    is_str(m8_setting(S, "ACCESS_SECRET_KEY"), "Test-Access-Secret-Key-0123456789abcdef!",
           "secrets are returned too");
    ok(m8_setting(S, "DB_PORT") == NULL, "an unset int is NULL");
    ok(m8_setting(S, "TOKEN_ISSUER") == NULL, "an unset string is NULL");
    ok(m8_setting(S, "NO_SUCH_SETTING") == NULL, "an unknown name is NULL");
    ok(m8_setting(NULL, "DOMAIN") == NULL, "NULL settings give NULL");
    ok(m8_settings_known("domain") && !m8_settings_known("ALLOWED_ORIGINS"),
       "m8_settings_known: fields yes, computed no");
    ok(LOAD("EVENT_STREAM_CONNECT_TIMEOUT=0.0001", "DB_PORT=3306") != NULL, "reload");
    if (S) {
        is_str(m8_setting(S, "EVENT_STREAM_CONNECT_TIMEOUT"), "0.0001", "small float text");
        is_str(m8_setting(S, "DB_PORT"), "3306", "a set int is text");
    }
}
