/* test_db.c - the database layer (db.h, fcgim8.h "database").
 *
 * Without a server: settings checks, backend availability, password
 * scrubbing, bounded failures against a closed port and a server that never
 * answers, the pre-start wait's log lines, and the pure parts (placeholders,
 * timestamps, MariaDB error classification, the response mapping).
 *
 * Against real servers: a MariaDB and a PostgreSQL started on loopback by the
 * helpers of tests/integration/lib.sh (a bash child that stops them when this
 * program closes its stdin, also when it crashes), ports 19080-19099: typed
 * parameters and results, SQL-shaped text stored verbatim, transactions,
 * integrity errors with the field named, reconnect after the server ended the
 * session, the result ceiling.  A backend whose server is not installed is
 * skipped.  tests/integration/t_prestart.sh and t_items.sh run the programs.
 *
 * This file holds main(), the servers and the shared helpers; the tests
 * are in test_db_offline.c, test_db_values.c and test_db_app.c (test_db.h). */

#define M8T_MAIN 1 /* this file holds main() (tap.h) */
#include "test_db.h"

m8_settings *db_settings(m8_db_kind kind, unsigned port)
{
    m8_settings *s = calloc(1, sizeof *s);
    s->selected_db = kind;
    s->selected_db_set = true;
    s->db_host = "127.0.0.1";
    s->db_port = port;
    s->db_database = "app";
    s->db_user = "app_user";
    s->db_password = PASSWORD;
    return s;
}

/* m8_db_respond on a request without an app. */
void respond_is(m8_db *db, int rc, int want_status, const char *want_body, const char *what)
{
    m8_request req;
    m8_req_init(&req, NULL);
    int r = m8_db_respond(&req, db, rc);
    if (want_status == 500) {
        is_int(r, -1, "respond: %s: the handler fails (500)", what);
        ok(req.fail_reason != NULL, "respond: %s: the cause is logged", what);
    } else {
        is_int(req.status, want_status, "respond: %s: %d", what, want_status);
        is_str(req.body_out.data ? req.body_out.data : "", want_body, "respond: %s: body", what);
    }
    m8_req_free(&req);
}

/* ------------------------------------------------------------ real servers */

static void signal_ignore_pipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static pid_t g_helper = -1;
static int g_helper_in = -1;
unsigned g_port[2];
static char g_skip[2][300];

static const char *srcdir(void)
{
    static char dir[4096];
    const char *t = getenv("top_srcdir");
    if (t && *t)
        return t;
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = '\0'; /* .../tests */
        slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(dir, sizeof dir, "..");
    } else {
        snprintf(dir, sizeof dir, "..");
    }
    return dir;
}

static const char helper_script[] =
    ". \"$1/tests/integration/lib.sh\" || exit 1\n"
    "m8_init test_db\n"
    "exec 3>&1 1>&2\n"
    "for kind in $3; do\n"
    "  if [ $kind = Mysql ]; then have=m8_have_mariadb start=m8_mariadb_start;\n"
    "  else have=m8_have_pg start=m8_pg_start; fi\n"
    "  if ! $have; then echo \"skip $kind the server is not installed\" >&3; continue; fi\n"
    "  m8_pick_port 19080 19099 || { echo \"skip $kind no free port\" >&3; continue; }\n"
    "  d=$T_DIR/$kind\n"
    "  if $start \"$d\" $M8_PORT && m8_db_create $kind \"$d\" $M8_PORT " APP_DB " " APP_USER
    " \"$2\"; then\n"
    "    echo \"up $kind $M8_PORT\" >&3\n"
    "  else echo \"skip $kind the server did not start\" >&3; fi\n"
    "done\n"
    "echo ready >&3\n"
    "exec 3>&-\n"
    "cat >/dev/null\n";

/* Starts the bash helper; fills g_port / g_skip. */
static void servers_start(void)
{
    /* Only the servers of the backends this build has. */
    char kinds[32];
    snprintf(kinds, sizeof kinds, "%s %s", m8_db_backend_available(M8_DB_MYSQL) ? "Mysql" : "",
             m8_db_backend_available(M8_DB_POSTGRES) ? "Postgres" : "");
    if (!m8_db_backend_available(M8_DB_MYSQL) && !m8_db_backend_available(M8_DB_POSTGRES))
        return;
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) {
        snprintf(g_skip[0], sizeof g_skip[0], "pipe failed");
        snprintf(g_skip[1], sizeof g_skip[1], "pipe failed");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execlp("bash", "bash", "-c", helper_script, "test_db-servers", srcdir(), PASSWORD, kinds,
               (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    g_helper = pid;
    g_helper_in = in[1];
    FILE *f = fdopen(out[0], "r");
    char line[256];
    for (int k = 0; k < 2; k++)
        snprintf(g_skip[k], sizeof g_skip[k], "the server helper failed");
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "ready") == 0)
            break;
        int k = strstr(line, "Postgres") ? 1 : 0;
        unsigned port = 0;
        if (sscanf(line, "up %*s %u", &port) == 1) {
            g_port[k] = port;
            g_skip[k][0] = '\0';
        } else if (strncmp(line, "skip ", 5) == 0) {
            const char *why = strchr(line + 5, ' ');
            snprintf(g_skip[k], sizeof g_skip[k], "%s", why ? why + 1 : line);
        }
    }
    if (f)
        fclose(f);
}

static void servers_stop(void)
{
    if (g_helper < 0)
        return;
    close(g_helper_in); /* the helper's EXIT trap stops the servers */
    int st;
    waitpid(g_helper, &st, 0);
    g_helper = -1;
}

m8_db *connect_to(m8_db_kind kind, unsigned port, const char *prefix)
{
    m8_settings *s = db_settings(kind, port);
    s->db_database = APP_DB;
    s->tables_prefix = (char *)prefix;
    m8_db_timeouts t = {3, 5};
    char err[512] = "";
    m8_db *db = m8_db_open(s, &t, err, sizeof err);
    free(s);
    return db;
}

/* The app tests' log lines go to /dev/null (a TAP stream stays clean). */
static void quiet_log(bool on)
{
    static int fd = -1;
    if (on && fd < 0)
        fd = open("/dev/null", O_WRONLY);
    m8_log_set_fd(on ? fd : -1);
}

static void test_server(m8_db_kind kind)
{
    const char *k = m8_db_kind_name(kind);
    int ki = kind == M8_DB_POSTGRES;
    if (g_skip[ki][0]) {
        ok(1, "%s: a real server # SKIP %s", k, g_skip[ki]);
        return;
    }
    bool pg = kind == M8_DB_POSTGRES;
    m8_db *db = connect_to(kind, g_port[ki], "app");
    m8_db *admin = connect_to(kind, g_port[ki], "app");
    ok(db && admin, "%s: handles for the server on port %u", k, g_port[ki]);
    if (!db || !admin)
        return;
    is_int(m8_db_get_dialect(db), pg ? M8_DB_DIALECT_POSTGRES : M8_DB_DIALECT_MYSQL,
           "%s: the dialect", k);
    test_table(db, k);
    test_types(db, k, pg);
    test_tx(db, k, pg);
    test_errors(db, k, pg);
    test_reconnect(db, admin, k, pg);
    test_ceiling(db, k, pg);
    quiet_log(true);
    test_app_with(kind, admin);
    quiet_log(false);
    m8_db_close(db);
    m8_db_close(admin);
}

int main(void)
{
    signal_ignore_pipe();
    test_scrub();
    test_settings();
    test_availability();
    test_placeholders();
    test_time();
    test_classify();
    test_respond_pure();
    test_result_limits();
    quiet_log(true);
    test_app_without();
    quiet_log(false);
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        if (!m8_db_backend_available(kind)) {
            diag("%s backend not built: skipping its connection tests", m8_db_kind_name(kind));
            continue;
        }
        test_closed_port(kind);
        test_silent_server(kind);
        test_wait(kind);
        test_unavailable(kind);
    }
    servers_start();
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        if (!m8_db_backend_available(kind)) {
            ok(1, "%s: a real server # SKIP backend not built", m8_db_kind_name(kind));
            continue;
        }
        test_server(kind);
    }
    servers_stop();
    return done_testing();
}
