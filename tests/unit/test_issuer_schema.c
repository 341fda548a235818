/* test_issuer_schema.c - the issuer's tables and its Redis replacements
 * (lib/issuer/schema.h, store.h; doc/issuer.md#storage) against a real
 * PostgreSQL and a real MariaDB, started on loopback by issuer_db.c (the
 * helpers of tests/integration/lib.sh in a bash child that stops them when
 * this program closes its stdin, also when it crashes), ports 19700-19739.
 * A server that is not installed or did not start is skipped with the
 * reason.
 *
 * Schema: apply on an empty database creates every table (seen through
 * information_schema), with the encodings of a fa-auth-m8 database and the
 * superuser/role CHECK; a second apply is a no-op; a newer recorded version
 * is refused and left alone; two processes applying at once on a fresh
 * database both succeed; a database holding some fa-auth-m8 tables keeps
 * them as they are and gets the rest, unless one lacks a column the issuer
 * uses (refused, nothing created).  The store tests are in
 * test_issuer_store.c. */

#define M8T_MAIN 1 /* this file holds main() (tap.h) */
#include "test_issuer_schema.h"

#include <signal.h>

#include "issuer_db.h"

#define PASSWORD "Iss-Schema-Db-Pa55!"
#define ISS_DB "iss_db"
#define ISS_USER "iss_user"

static const idb_servers g_srv = {
    "test_issuer_schema", 19700, 19739, ISS_DB, ISS_USER, PASSWORD, false};

m8_db *iss_connect(m8_db_kind kind)
{
    return idb_port(kind) ? idb_open(kind, idb_port(kind), "auth", 5, 30) : NULL;
}

int iss_race(m8_db_kind kind, int n, int (*fn)(m8_db_kind kind, int i), int *codes)
{
    int go[2];
    if (n > 16 || pipe(go) != 0)
        return -1;
    fflush(stdout);
    pid_t kids[16];
    int started = 0;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(go[1]);
            char c;
            if (read(go[0], &c, 1) != 0) /* EOF: every child is there */
                _exit(3);
            _exit(fn(kind, i) & 0xff);
        }
        if (pid > 0)
            kids[started++] = pid;
    }
    close(go[0]);
    close(go[1]); /* go */
    int fine = 0;
    for (int i = 0; i < started; i++) {
        int st, code = -1;
        if (waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st))
            code = WEXITSTATUS(st);
        fine += code == 0;
        if (codes)
            codes[i] = code;
    }
    return fine;
}

int64_t iss_int(m8_db *db, const char *sql)
{
    m8_db_result *r = NULL;
    int64_t v = -1;
    if (m8_db_exec(db, sql, NULL, 0, &r) == 0 && m8_db_nrows(r) == 1)
        m8_db_get_int(r, 0, 0, &v);
    m8_db_result_free(r);
    return v;
}

/* ------------------------------------------------------------ offline */

static void test_offline(void)
{
    ok(m8_issuer_prefix_valid("auth"), "prefix: auth is valid");
    ok(m8_issuer_prefix_valid("A_b9"), "prefix: letters, digits and _");
    ok(!m8_issuer_prefix_valid(""), "prefix: empty refused");
    ok(!m8_issuer_prefix_valid("9a"), "prefix: a leading digit refused");
    ok(!m8_issuer_prefix_valid("a-b"), "prefix: '-' refused");
    ok(!m8_issuer_prefix_valid("x;drop"), "prefix: ';' refused");
    ok(m8_issuer_prefix_valid("abcdefghijklmnopqrstuvwx"), "prefix: 24 bytes accepted");
    ok(!m8_issuer_prefix_valid("abcdefghijklmnopqrstuvwxy"), "prefix: 25 bytes refused");
    char out[32];
    is_int(m8_issuer_sql(out, sizeof out, "T {p}_a, {p}_b {", "ab"), 0, "sql: expands");
    is_str(out, "T ab_a, ab_b {", "sql: every {p} replaced, a lone { kept");
    is_int(m8_issuer_sql(out, 8, "{p}_1234", "ab"), 0, "sql: exactly fits (7 bytes + NUL)");
    is_int(m8_issuer_sql(out, 8, "{p}_12345", "ab"), M8_ETOOBIG, "sql: one byte over is ETOOBIG");
    is_int(m8_issuer_sql(out, sizeof out, "{p}", "a b"), M8_EINVAL, "sql: a bad prefix is EINVAL");
    char err[256];
    is_int(m8_issuer_schema_apply(NULL, NULL, NULL, err, sizeof err), M8_EINVAL,
           "apply: no handle is EINVAL");
    size_t n = 0;
    while (m8_issuer_schema_table(n))
        n++;
    is_int(n, 20, "the schema has 20 tables");
}

/* ------------------------------------------------------------ schema */

/* How many of the schema's tables with prefix exist (the missing ones named
 * when expected). */
static int tables_present(m8_db *db, const char *prefix, bool pg, bool expected)
{
    int n = 0;
    for (size_t i = 0; m8_issuer_schema_table(i); i++) {
        char name[80];
        snprintf(name, sizeof name, "%s_%s", prefix, m8_issuer_schema_table(i));
        m8_db_param p = M8_DB_TEXT(name);
        m8_db_result *r = NULL;
        const char *q = pg ? "SELECT 1 FROM information_schema.tables WHERE table_schema = "
                             "current_schema() AND table_name = ?"
                           : "SELECT 1 FROM information_schema.tables WHERE table_schema = "
                             "DATABASE() AND table_name = ?";
        if (m8_db_exec(db, q, &p, 1, &r) == 0 && m8_db_nrows(r) == 1)
            n++;
        else if (expected)
            diag("missing table %s", name);
        m8_db_result_free(r);
    }
    return n;
}

static char *column_type(m8_db *db, bool pg, const char *table, const char *col)
{
    static char out[64];
    m8_db_param p[2] = {M8_DB_TEXT(table), M8_DB_TEXT(col)};
    m8_db_result *r = NULL;
    out[0] = '\0';
    const char *q = pg ? "SELECT data_type FROM information_schema.columns WHERE table_schema = "
                         "current_schema() AND table_name = ? AND column_name = ?"
                       : "SELECT column_type FROM information_schema.columns WHERE table_schema "
                         "= DATABASE() AND table_name = ? AND column_name = ?";
    if (m8_db_exec(db, q, p, 2, &r) == 0 && m8_db_nrows(r) == 1)
        snprintf(out, sizeof out, "%s", m8_db_get_text(r, 0, 0, NULL));
    m8_db_result_free(r);
    return out;
}

static int race_apply(m8_db_kind kind, int i)
{
    (void)i;
    m8_db *db = iss_connect(kind);
    if (!db)
        return 1;
    char err[512];
    int rc = m8_issuer_schema_apply(db, "race", NULL, err, sizeof err);
    if (rc != 0)
        printf("# racer %d: %s\n", i, err);
    fflush(stdout);
    m8_db_close(db);
    return rc == 0 ? 0 : 1;
}

static void test_schema(m8_db_kind kind)
{
    const char *k = m8_db_kind_name(kind);
    bool pg = kind == M8_DB_POSTGRES;
    m8_db *db = iss_connect(kind);
    ok(db != NULL, "%s: a handle", k);
    if (!db)
        return;
    size_t ntables = 0;
    while (m8_issuer_schema_table(ntables))
        ntables++;
    char err[512] = "";
    int found = -1;

    is_int(tables_present(db, "auth", pg, false), 0, "%s: the database starts empty", k);
    int rc = m8_issuer_schema_apply(db, NULL, &found, err, sizeof err);
    is_int(rc, 0, "%s: apply on an empty database succeeds", k);
    if (rc)
        diag("%s", err);
    is_int(found, 0, "%s: no version was recorded before", k);
    is_int(tables_present(db, "auth", pg, true), ntables, "%s: every table exists afterwards", k);
    int v = -1;
    is_int(m8_issuer_schema_version(db, NULL, &v), 0, "%s: the version reads", k);
    is_int(v, M8_ISSUER_SCHEMA_VERSION, "%s: the version is recorded", k);
    is_int(iss_int(db, "SELECT COUNT(*) FROM auth_security_policy WHERE policy_key = "
                       "'superuser_set' AND revision = 0"),
           1, "%s: the superuser_set policy row is seeded", k);

    /* fa-auth-m8's encodings. */
    is_str(column_type(db, pg, "auth_user", "id"), pg ? "uuid" : "char(32)", "%s: user.id is %s", k,
           pg ? "a native uuid" : "CHAR(32) hex");
    is_str(column_type(db, pg, "auth_client_session", "user_id"), pg ? "uuid" : "char(32)",
           "%s: client_session.user_id has the user id's type", k);
    like(column_type(db, pg, "auth_user", "auth_generation"), "bigint",
         "%s: auth_generation is a BIGINT", k);
    like(column_type(db, pg, "auth_m8_event_outbox", "id"), "bigint", "%s: event ids are BIGINT",
         k);
    const char *u1 =
        pg ? "8b0f1d2e-3c4b-4a59-8e7f-0123456789ab" : "8b0f1d2e3c4b4a598e7f0123456789ab";
    const char *u2 =
        pg ? "9b0f1d2e-3c4b-4a59-8e7f-0123456789ab" : "9b0f1d2e3c4b4a598e7f0123456789ab";
    m8_db_param ins[4] = {M8_DB_TEXT(u1), M8_DB_TEXT("root@example.com"), M8_DB_BOOL(1),
                          M8_DB_TEXT("SUPERADMIN")};
    const char *q = "INSERT INTO auth_user (id, provider, email, is_superuser, role) VALUES (?, "
                    "'PASSWORD', ?, ?, ?)";
    is_int(m8_db_exec(db, q, ins, 4, NULL), 0, "%s: a SUPERADMIN superuser is accepted", k);
    ins[0] = M8_DB_TEXT(u2);
    ins[1] = M8_DB_TEXT("bad@example.com");
    ins[3] = M8_DB_TEXT("ADMIN");
    is_int(m8_db_exec(db, q, ins, 4, NULL), M8_EIO,
           "%s: the superuser/role CHECK refuses a superuser ADMIN", k);
    ins[2] = M8_DB_BOOL(0);
    ins[3] = M8_DB_TEXT("SUPERADMIN");
    is_int(m8_db_exec(db, q, ins, 4, NULL), M8_EIO,
           "%s: ... and a SUPERADMIN that is not a superuser", k);
    ins[3] = M8_DB_TEXT("OWNER");
    is_int(m8_db_exec(db, q, ins, 4, NULL), M8_EIO, "%s: a role outside the enum is refused", k);
    ins[3] = M8_DB_TEXT("WRITER");
    is_int(m8_db_exec(db, q, ins, 4, NULL), 0, "%s: a WRITER that is not a superuser is fine", k);
    m8_db_param del = M8_DB_TEXT(u2);
    is_int(m8_db_exec(db, "DELETE FROM auth_user WHERE id = ?", &del, 1, NULL), 0,
           "%s: the user is deleted again", k);

    /* A second apply changes nothing. */
    int64_t applied = iss_int(db, "SELECT applied_at FROM auth_m8_schema_version");
    is_int(m8_db_exec(db, "UPDATE auth_m8_schema_version SET applied_at = 7", NULL, 0, NULL), 0,
           "%s: mark the version row", k);
    rc = m8_issuer_schema_apply(db, "auth", &found, err, sizeof err);
    is_int(rc, 0, "%s: a second apply succeeds", k);
    is_int(found, M8_ISSUER_SCHEMA_VERSION, "%s: ... finding the current version", k);
    is_int(iss_int(db, "SELECT applied_at FROM auth_m8_schema_version"), 7,
           "%s: ... and is a no-op (the version row is not rewritten)", k);
    ok(applied > 1000000000, "%s: applied_at was a Unix time", k);
    is_int(iss_int(db, "SELECT COUNT(*) FROM auth_user"), 1, "%s: ... rows are kept", k);

    /* A newer version is refused, and left alone. */
    is_int(m8_db_exec(db, "UPDATE auth_m8_schema_version SET version = 99", NULL, 0, NULL), 0,
           "%s: record a newer version", k);
    err[0] = '\0';
    rc = m8_issuer_schema_apply(db, "auth", &found, err, sizeof err);
    is_int(rc, M8_ECONFIG, "%s: apply refuses a newer schema version", k);
    is_int(found, 99, "%s: ... reporting the version found", k);
    like(err, "version 99, newer than version", "%s: ... with a clear error", k);
    is_int(iss_int(db, "SELECT version FROM auth_m8_schema_version"), 99,
           "%s: ... and the version is left as it was", k);
    ok(!m8_db_in_transaction(db), "%s: ... no transaction is left open", k);
    m8_db_exec(db, "UPDATE auth_m8_schema_version SET version = 2", NULL, 0, NULL);

    /* Inside a transaction: refused. */
    m8_db_begin(db);
    is_int(m8_issuer_schema_apply(db, "auth", NULL, err, sizeof err), M8_EINVAL,
           "%s: apply inside a transaction is EINVAL", k);
    m8_db_rollback(db);
    is_int(m8_issuer_schema_apply(db, "a-b", NULL, err, sizeof err), M8_EINVAL,
           "%s: apply with a bad prefix is EINVAL", k);

    /* Two processes at once on fresh tables (prefix race). */
    is_int(iss_race(kind, 2, race_apply, NULL), 2,
           "%s: two concurrent applies on a fresh schema both "
           "succeed",
           k);
    is_int(tables_present(db, "race", pg, true), ntables, "%s: ... and every table exists", k);
    is_int(iss_int(db, "SELECT COUNT(*) FROM race_m8_schema_version"), 1,
           "%s: ... with one version row", k);
    is_int(iss_int(db, "SELECT COUNT(*) FROM race_security_policy"), 1, "%s: ... and one seed row",
           k);

    /* A fa-auth-m8 database: its tables are kept as they are, but must have
     * the columns the issuer uses. */
    const char *fa = pg ? "CREATE TABLE fa_user (id UUID PRIMARY KEY, email VARCHAR(255) NOT NULL, "
                          "legacy_col INTEGER DEFAULT 42)"
                        : "CREATE TABLE fa_user (id CHAR(32) PRIMARY KEY, email VARCHAR(255) NOT "
                          "NULL, legacy_col INT DEFAULT 42) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
    is_int(m8_db_exec(db, fa, NULL, 0, NULL), 0, "%s: a user table lacking columns", k);
    err[0] = '\0';
    rc = m8_issuer_schema_apply(db, "fa", &found, err, sizeof err);
    is_int(rc, M8_ECONFIG, "%s: apply refuses to take over a table lacking a column", k);
    like(err, "fa_user has no column provider", "%s: ... naming the table and the column", k);
    is_int(tables_present(db, "fa", pg, false), 1, "%s: ... and creates nothing", k);
    is_int(m8_db_exec(db,
                      "ALTER TABLE fa_user ADD COLUMN provider VARCHAR(8), ADD COLUMN full_name "
                      "VARCHAR(100), ADD COLUMN avatar VARCHAR(255), ADD COLUMN is_active BOOLEAN, "
                      "ADD COLUMN email_verified BOOLEAN, ADD COLUMN is_superuser BOOLEAN, ADD "
                      "COLUMN role VARCHAR(10), ADD COLUMN hashed_password VARCHAR(60), ADD COLUMN "
                      "tenant_id VARCHAR(36), ADD COLUMN auth_generation BIGINT",
                      NULL, 0, NULL),
           0, "%s: the columns a fa-auth-m8 2.x user table has", k);
    rc = m8_issuer_schema_apply(db, "fa", &found, err, sizeof err);
    is_int(rc, 0, "%s: apply over an existing fa-auth-m8 table succeeds", k);
    if (rc)
        diag("%s", err);
    is_int(tables_present(db, "fa", pg, true), ntables, "%s: ... the missing tables are created",
           k);
    is_str(column_type(db, pg, "fa_user", "legacy_col"), pg ? "integer" : "int(11)",
           "%s: ... and the existing table is not altered", k);
    m8_db_close(db);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    test_offline();
    test_store_offline();
    idb_start(&g_srv);
    for (int k = 0; k < 2; k++) {
        m8_db_kind kind = k ? M8_DB_POSTGRES : M8_DB_MYSQL;
        const char *name = m8_db_kind_name(kind);
        const char *why = idb_unusable(kind);
        if (why) {
            ok(1, "%s: a real server # SKIP %s", name, why);
            continue;
        }
        test_schema(kind);
        test_store(kind);
    }
    idb_stop();
    return done_testing();
}
