/* issuer_db.c - the real servers and the issuer builders of the issuer's
 * unit tests (issuer_db.h). */
#include "issuer_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "issuer/store.h"
#include "tap.h" /* diag() only: the TAP counter stays the test's own */

static const idb_servers *g_cfg;
static pid_t g_helper = -1;
static int g_helper_in = -1;
static unsigned g_port[2], g_closed; /* [0] MariaDB, [1] PostgreSQL */
static char g_skip[2][300];

static int slot(m8_db_kind kind)
{
    return kind == M8_DB_POSTGRES;
}

/* The source tree: $top_srcdir under make check, else from this file's
 * path (.../tests/unit/issuer_db.c -> ...). */
static const char *srcdir(void)
{
    static char dir[4096];
    const char *t = getenv("top_srcdir");
    if (t && *t)
        return t;
    snprintf(dir, sizeof dir, "%s", __FILE__);
    for (int i = 0; i < 3; i++) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            return "..";
        *slash = '\0';
    }
    return dir;
}

/* bash -c SCRIPT NAME SRCDIR KINDS PORT_LO PORT_HI DB USER PASSWORD CLOSED:
 * tells on fd 3 (this program's pipe) "closed x PORT", then per kind
 * "up KIND PORT" or "skip KIND REASON", then "ready"; the servers' own
 * output and a failed start's go to stderr (the test's log).  The start's
 * reason is its first line that says what went wrong (else its last).
 * ($0 is NAME, so $1..$8 follow it.) */
static const char helper_script[] =
    ". \"$1/tests/integration/lib.sh\" || exit 1\n"
    "m8_init \"$0\"\n"
    "exec 3>&1 1>&2\n"
    "[ \"$8\" = 1 ] && m8_pick_port $3 $4 && echo \"closed x $M8_PORT\" >&3\n"
    "for kind in $2; do\n"
    "  if [ $kind = Mysql ]; then have=m8_have_mariadb start=m8_mariadb_start;\n"
    "  else have=m8_have_pg start=m8_pg_start; fi\n"
    "  if ! $have; then echo \"skip $kind the server is not installed\" >&3; continue; fi\n"
    "  m8_pick_port $3 $4 || { echo \"skip $kind no free port\" >&3; continue; }\n"
    "  d=$T_DIR/$kind e=$T_DIR/$kind.start.err\n"
    "  if $start \"$d\" $M8_PORT 2>\"$e\" && m8_db_create $kind \"$d\" $M8_PORT \"$5\" \"$6\" "
    "\"$7\" 2>>\"$e\"; then\n"
    "    echo \"up $kind $M8_PORT\" >&3\n"
    "  else\n"
    "    why=$(grep -v '^#' \"$e\" | grep -m 1 -iE 'error|fail|could not|cannot|denied' ||\n"
    "      grep -v '^[[:space:]#]*$' \"$e\" | tail -n 1)\n"
    "    why=$(printf '%s' \"$why\" | tr -d '\\r#' | tr '\\t' ' ' | cut -c 1-200)\n"
    "    echo \"# $0: the $kind server did not start (port $M8_PORT, $d):\"\n"
    "    sed 's/^/#   /' \"$e\"\n"
    "    echo \"skip $kind the server did not start: ${why:-no reason printed}\" >&3\n"
    "  fi\n"
    "done\n"
    "echo ready >&3\n"
    "exec 3>&-\n"
    "cat >/dev/null\n";

void idb_start(const idb_servers *cfg)
{
    g_cfg = cfg;
    char kinds[32], lo[16], hi[16];
    snprintf(kinds, sizeof kinds, "%s %s", m8_db_backend_available(M8_DB_MYSQL) ? "Mysql" : "",
             m8_db_backend_available(M8_DB_POSTGRES) ? "Postgres" : "");
    snprintf(lo, sizeof lo, "%u", cfg->port_lo);
    snprintf(hi, sizeof hi, "%u", cfg->port_hi);
    for (int k = 0; k < 2; k++)
        snprintf(g_skip[k], sizeof g_skip[k], "the server helper failed");
    int in[2], out[2];
    if (pipe(in) != 0)
        return;
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execlp("bash", "bash", "-c", helper_script, cfg->name, srcdir(), kinds, lo, hi,
               cfg->database, cfg->user, cfg->password, cfg->closed_port ? "1" : "0", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return;
    }
    g_helper = pid;
    g_helper_in = in[1];
    FILE *f = fdopen(out[0], "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "ready") == 0)
            break;
        if (sscanf(line, "closed x %u", &g_closed) == 1)
            continue;
        const char *kw = strchr(line, ' ');
        int k = kw && strncmp(kw + 1, "Postgres", 8) == 0;
        unsigned port = 0;
        if (sscanf(line, "up %*s %u", &port) == 1) {
            g_port[k] = port;
            g_skip[k][0] = '\0';
        } else if (strncmp(line, "skip ", 5) == 0) {
            const char *why = strchr(line + 5, ' ');
            snprintf(g_skip[k], sizeof g_skip[k], "%.299s", why ? why + 1 : line);
        }
    }
    if (f)
        fclose(f);
    else
        close(out[0]);
}

void idb_stop(void)
{
    if (g_helper < 0)
        return;
    close(g_helper_in); /* the helper's EXIT trap stops the servers */
    int st;
    waitpid(g_helper, &st, 0);
    g_helper = -1;
}

unsigned idb_port(m8_db_kind kind)
{
    return g_port[slot(kind)];
}

const char *idb_skip(m8_db_kind kind)
{
    const char *why = g_skip[slot(kind)];
    return why[0] ? why : NULL;
}

const char *idb_unusable(m8_db_kind kind)
{
    return m8_db_backend_available(kind) ? idb_skip(kind) : "backend not built";
}

unsigned idb_closed_port(void)
{
    return g_closed;
}

m8_db *idb_open(m8_db_kind kind, unsigned port, const char *prefix, double connect_s, double io_s)
{
    m8_settings s;
    memset(&s, 0, sizeof s);
    s.selected_db = kind;
    s.selected_db_set = true;
    s.db_host = "127.0.0.1";
    s.db_port = port;
    s.db_database = (char *)g_cfg->database; /* m8_db_open copies them */
    s.db_user = (char *)g_cfg->user;
    s.db_password = (char *)g_cfg->password;
    s.tables_prefix = (char *)prefix;
    m8_db_timeouts t = {connect_s, io_s};
    char err[512] = "";
    m8_db *db = m8_db_open(&s, &t, err, sizeof err);
    if (!db)
        diag("m8_db_open: %s", err);
    return db;
}

char **idb_env(m8_db_kind kind, unsigned port, const char *const *base)
{
    static char *env[300];
    static char vars[5][160];
    size_t n = 0;
    for (size_t i = 0; base && base[i] && n < M8_ARRAY_LEN(env) - 7; i++)
        env[n++] = (char *)base[i];
    snprintf(vars[0], sizeof vars[0], "DB_PORT=%u", port);
    snprintf(vars[1], sizeof vars[1], "DB_DATABASE=%s", g_cfg->database);
    snprintf(vars[2], sizeof vars[2], "DB_USER=%s", g_cfg->user);
    snprintf(vars[3], sizeof vars[3], "DB_PASSWORD=%s", g_cfg->password);
    env[n++] = kind == M8_DB_POSTGRES ? "SELECTED_DB=Postgres" : "SELECTED_DB=Mysql";
    env[n++] = "DB_HOST=127.0.0.1";
    for (size_t i = 0; i < 4; i++)
        env[n++] = vars[i];
    env[n] = NULL;
    return env;
}

m8_app *idb_app_boot(const idb_app *a)
{
    if (a->iss)
        for (size_t i = 0; i < a->nroutes; i++)
            a->routes[i].data = a->iss;
    m8_app *app = m8_app_new(a->name, a->version);
    m8_app_add_routes(app, a->routes, a->nroutes);
    if (a->revoked)
        m8_app_set_issuer(app, a->revoked, a->revoked_data);
    bool db = a->connect_s > 0;
    if (db)
        m8_app_use_database(app, M8_DB_REQUIRED, a->connect_s, a->io_s);
    if (a->validator)
        m8_app_add_validator(app, a->validator_name, a->validator, NULL);
    m8_settings_source src = {
        .env = a->env, .env_file = "/dev/null", .cwd = "/", .uses_database = db};
    int rc = m8_app_boot(app, &src);
    if (rc == 0)
        rc = m8_app_start(app);
    if (rc != 0) {
        diag("app boot: %d (%s)", rc, m8_strerror(rc));
        m8_app_free(app);
        return NULL;
    }
    return app;
}

int idb_revoked(m8_request *r, const char *jti, void *data)
{
    m8_issuer *iss = data;
    bool listed = false;
    if (m8_issuer_blacklist_has(m8_req_db(r), iss->prefix, jti, (int64_t)time(NULL), &listed) != 0)
        return M8_EAGAIN;
    return listed ? 1 : 0;
}

int idb_issuer_keys(m8_issuer *iss, const char *access_secret, const char *refresh_secret, bool pw,
                    char *err, size_t errlen)
{
    snprintf(iss->prefix, sizeof iss->prefix, "auth");
    iss->access_key = m8_sign_key_from_secret(access_secret, strlen(access_secret), err, errlen);
    iss->access_cfg.key = iss->access_key;
    iss->access_cfg.expire_minutes = 30;
    if (!iss->access_key)
        return -1;
    if (refresh_secret) {
        iss->refresh_key =
            m8_sign_key_from_secret(refresh_secret, strlen(refresh_secret), err, errlen);
        iss->refresh_minutes = 120;
        iss->cookie_max_age = 3600;
        if (!iss->refresh_key)
            return -1;
    }
    if (pw) {
        m8_pw_params pp;
        m8_pw_params_default(&pp);
        iss->pw = m8_pw_new(&pp, err, errlen);
        if (!iss->pw)
            return -1;
    }
    return 0;
}

void idb_issuer_free(m8_issuer *iss)
{
    m8_sign_key_free(iss->access_key);
    m8_sign_key_free(iss->refresh_key);
    m8_sign_key_free(iss->refresh_key_old);
    m8_pw_free(iss->pw);
    iss->access_key = iss->refresh_key = iss->refresh_key_old = NULL;
    iss->pw = NULL;
}

void idb_user_add(m8_db *db, m8_arena *arena, m8_issuer_user *u, const char *email,
                  const char *role, bool superuser)
{
    memset(u, 0, sizeof *u);
    u->email = m8_arena_strdup(arena, email);
    snprintf(u->role, sizeof u->role, "%s", role);
    snprintf(u->provider, sizeof u->provider, "password");
    u->is_active = true;
    u->is_superuser = superuser;
    if (m8_issuer_user_insert(db, "auth", u) != 0)
        diag("insert %s: %s", email, m8_db_last_error(db)->message);
}

void idb_mint(const m8_issuer *iss, const m8_issuer_user *u, const char *jti, char tok[2048])
{
    m8_mint_user mu;
    m8_issuer_user_mint(u, &mu);
    m8_buf b;
    m8_buf_init(&b, 2047);
    tok[0] = '\0';
    if (m8_mint_access(&iss->access_cfg, &mu, (long long)time(NULL), jti, NULL, &b) == 0)
        snprintf(tok, 2048, "%s", b.data);
    m8_buf_free(&b);
}

int64_t idb_last_event(m8_db *db)
{
    int64_t id = 0;
    m8_issuer_event_last_id(db, "auth", &id);
    return id;
}

const char *idb_event(m8_db *db, int64_t after, size_t k, char *type, size_t tlen, char *out,
                      size_t outlen)
{
    m8_issuer_events ev;
    out[0] = type[0] = '\0';
    if (m8_issuer_event_read(db, "auth", after, 100, m8_db_now() + 60000000, 1000000, &ev) == 0) {
        if (k < ev.n) {
            snprintf(out, outlen, "%.*s", (int)ev.ev[k].payload_len, ev.ev[k].payload);
            snprintf(type, tlen, "%s", ev.ev[k].type);
        }
        m8_issuer_events_free(&ev);
    }
    return out;
}
