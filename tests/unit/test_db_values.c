/* test_db_values.c - the database layer against a real server: typed
 * values, SQL-shaped text stored verbatim, transactions, integrity errors,
 * reconnect after the server ended the session, the result ceiling. */

#include "test_db.h"

/* Runs sql without parameters; reports a failure. */
static int run(m8_db *db, const char *sql)
{
    int rc = m8_db_exec(db, sql, NULL, 0, NULL);
    if (rc)
        diag("%s: %d %s", sql, rc, m8_db_last_error(db)->message);
    return rc;
}

static const char *const tricky[] = {
    "'; DROP TABLE t_types; --",
    "Robert'); DELETE FROM t_types WHERE ('1'='1",
    "? $1 :name %s %n \\\\ \\' \\\" `x` \"y\"",
    "/* comment */ -- line\n\t\r",
    "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xae",
    "",
};

void test_types(m8_db *db, const char *k, bool pg)
{
    run(db, "DROP TABLE IF EXISTS t_types");
    ok(run(db, pg ? "CREATE TABLE t_types (id INT PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, "
                    "s VARCHAR(200), b BOOLEAN, ts TIMESTAMP(6), n VARCHAR(10))"
                  : "CREATE TABLE t_types (id INT PRIMARY KEY, i BIGINT, d DOUBLE, s "
                    "VARCHAR(200), b BOOLEAN, ts DATETIME(6), n VARCHAR(10)) CHARACTER SET "
                    "utf8mb4 COLLATE utf8mb4_bin") == 0,
       "%s: CREATE TABLE through m8_db_exec", k);
    const int64_t ints[] = {INT64_MIN, -1, 0, 42, INT64_MAX};
    const double dbls[] = {0.1, -2.5e-300, 1.0 / 3.0, 123456789.125, 0.0};
    const int64_t times[] = {0, 1714566896123456LL, -86400000001LL, 4102444799999999LL,
                             946684800000000LL};
    const char *sql = "INSERT INTO t_types (id, i, d, s, b, ts, n) VALUES (?, ?, ?, ?, ?, ?, ?)";
    int fails = 0;
    for (int r = 0; r < 5; r++) {
        m8_db_param p[7] = {M8_DB_INT(r),
                            M8_DB_INT(ints[r]),
                            M8_DB_DOUBLE(dbls[r]),
                            M8_DB_TEXT(tricky[r]),
                            M8_DB_BOOL(r % 2),
                            M8_DB_TIME(times[r]),
                            M8_DB_NULL};
        m8_db_result *res = NULL;
        if (m8_db_exec(db, sql, p, 7, &res) != 0) {
            diag("insert %d: %s", r, m8_db_last_error(db)->message);
            fails++;
        } else if (m8_db_affected(res) != 1) {
            fails++;
        }
        m8_db_result_free(res);
    }
    is_int(fails, 0, "%s: five rows inserted with typed parameters (affected 1 each)", k);

    m8_db_result *res = NULL;
    int rc = m8_db_exec(db, "SELECT id, i, d, s, b, ts, n FROM t_types ORDER BY id", NULL, 0, &res);
    is_int(rc, 0, "%s: SELECT with no parameter", k);
    is_int(m8_db_nrows(res), 5, "%s: five rows back", k);
    is_int(m8_db_ncols(res), 7, "%s: seven columns", k);
    is_str(m8_db_colname(res, 3), "s", "%s: column names", k);
    is_int(m8_db_affected(res), -1, "%s: a statement with rows has no affected count", k);
    int bad_i = 0, bad_d = 0, bad_s = 0, bad_b = 0, bad_t = 0, bad_n = 0;
    for (size_t r = 0; r < m8_db_nrows(res); r++) {
        int64_t iv = 0, tv = 0;
        double dv = 0;
        int bv = -1;
        size_t len = 0;
        const char *sv = m8_db_get_text(res, r, 3, &len);
        bad_i += m8_db_get_int(res, r, 1, &iv) != 0 || iv != ints[r];
        bad_d += m8_db_get_double(res, r, 2, &dv) != 0 || dv != dbls[r];
        bad_s += !sv || len != strlen(tricky[r]) || memcmp(sv, tricky[r], len) != 0;
        bad_b += m8_db_get_bool(res, r, 4, &bv) != 0 || bv != (int)(r % 2);
        bad_t += m8_db_get_time(res, r, 5, &tv) != 0 || tv != times[r];
        bad_n += !m8_db_is_null(res, r, 6) || m8_db_get_int(res, r, 6, &iv) != M8_ENOTFOUND ||
                 m8_db_get_text(res, r, 6, NULL) != NULL;
        if (bad_d && r == 0)
            diag("%s: double back: %.17g (%s)", k, dv, m8_db_get_text(res, r, 2, NULL));
    }
    is_int(bad_i, 0, "%s: int64 round trip (INT64_MIN..INT64_MAX)", k);
    is_int(bad_d, 0, "%s: double round trip, bit for bit", k);
    is_int(bad_s, 0, "%s: SQL-shaped, quoted, multi-byte and empty text stored verbatim", k);
    is_int(bad_b, 0, "%s: bool round trip", k);
    is_int(bad_t, 0, "%s: timestamps round trip to the microsecond, as UTC (also before 1970)", k);
    is_int(bad_n, 0, "%s: NULL reads as NULL (M8_ENOTFOUND, no text)", k);
    int64_t iv;
    is_int(m8_db_get_int(res, 0, 3, &iv), M8_EPARSE, "%s: text is not an integer (M8_EPARSE)", k);
    is_int(m8_db_get_int(res, 5, 0, &iv), M8_EINVAL, "%s: a row out of range (M8_EINVAL)", k);
    is_int(m8_db_get_int(res, 0, 7, &iv), M8_EINVAL, "%s: a column out of range (M8_EINVAL)", k);
    m8_db_result_free(res);

    /* Parameters in conditions, LIMIT/OFFSET, a '?' inside a literal. */
    m8_db_param w[3] = {M8_DB_TEXT(tricky[0]), M8_DB_INT(1), M8_DB_INT(0)};
    rc = m8_db_exec(db, "SELECT id, '?' AS q FROM t_types WHERE s = ? ORDER BY id LIMIT ? OFFSET ?",
                    w, 3, &res);
    ok(rc == 0 && m8_db_nrows(res) == 1 && strcmp(m8_db_get_text(res, 0, 1, NULL), "?") == 0,
       "%s: a text parameter matches its row; '?' in a literal is not a parameter", k);
    m8_db_result_free(res);
    m8_db_param upd[2] = {M8_DB_TEXTN("abcdef", 3), M8_DB_INT(3)};
    rc = m8_db_exec(db, "UPDATE t_types SET n = ? WHERE id >= ?", upd, 2, &res);
    ok(rc == 0 && m8_db_affected(res) == 2, "%s: UPDATE reports the affected rows (2)", k);
    m8_db_result_free(res);
    rc = m8_db_exec(db, "SELECT n FROM t_types WHERE id = 4", NULL, 0, &res);
    ok(rc == 0 && strcmp(m8_db_get_text(res, 0, 0, NULL), "abc") == 0,
       "%s: a text with an explicit length stores exactly those bytes", k);
    m8_db_result_free(res);

    /* Refused arguments. */
    is_int(m8_db_exec(db, "SELECT ?", NULL, 0, NULL), M8_EINVAL, "%s: too few parameters", k);
    m8_db_param two[2] = {M8_DB_INT(1), M8_DB_INT(2)};
    is_int(m8_db_exec(db, "SELECT ?", two, 2, NULL), M8_EINVAL, "%s: too many parameters", k);
    m8_db_param nul = M8_DB_TEXTN("a\0b", 3);
    is_int(m8_db_exec(db, "SELECT ?", &nul, 1, NULL), M8_EINVAL,
           "%s: a NUL byte inside a text is refused", k);
    m8_db_param tx = M8_DB_TEXT(NULL);
    /* PostgreSQL types a NULL from its context: CAST gives it one. */
    rc = m8_db_exec(db, "SELECT CAST(? AS CHAR(10)) IS NULL", &tx, 1, &res);
    int bv = 0;
    ok(rc == 0 && m8_db_get_bool(res, 0, 0, &bv) == 0 && bv == 1,
       "%s: M8_DB_TEXT(NULL) is SQL NULL", k);
    m8_db_result_free(res);

    /* MariaDB's AUTO_INCREMENT id; PostgreSQL's RETURNING. */
    run(db, "DROP TABLE IF EXISTS t_auto");
    run(db, pg ? "CREATE TABLE t_auto (id BIGSERIAL PRIMARY KEY, v INT)"
               : "CREATE TABLE t_auto (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT)");
    m8_db_param one = M8_DB_INT(7);
    run(db, "INSERT INTO t_auto (v) VALUES (1)");
    rc = m8_db_exec(db,
                    pg ? "INSERT INTO t_auto (v) VALUES (?) RETURNING id"
                       : "INSERT INTO t_auto (v) VALUES (?)",
                    &one, 1, &res);
    int64_t id = 0;
    if (pg)
        m8_db_get_int(res, 0, 0, &id);
    else
        id = m8_db_insert_id(res);
    ok(rc == 0 && id == 2, "%s: the new row's id (%s) is 2", k,
       pg ? "RETURNING" : "m8_db_insert_id");
    m8_db_result_free(res);
}

void test_tx(m8_db *db, const char *k, bool pg)
{
    run(db, "DROP TABLE IF EXISTS t_tx");
    run(db, pg ? "CREATE TABLE t_tx (id INT PRIMARY KEY)"
               : "CREATE TABLE t_tx (id INT PRIMARY KEY) ENGINE=InnoDB");
    m8_db_result *res = NULL;
    is_int(m8_db_begin(db), 0, "%s: BEGIN", k);
    ok(m8_db_in_transaction(db), "%s: in a transaction", k);
    is_int(m8_db_begin(db), M8_ESTATE, "%s: BEGIN inside a transaction is M8_ESTATE", k);
    run(db, "INSERT INTO t_tx VALUES (1)");
    is_int(m8_db_rollback(db), 0, "%s: ROLLBACK", k);
    ok(!m8_db_in_transaction(db), "%s: ... ends the transaction", k);
    m8_db_exec(db, "SELECT COUNT(*) FROM t_tx", NULL, 0, &res);
    int64_t n = -1;
    m8_db_get_int(res, 0, 0, &n);
    is_int(n, 0, "%s: a rolled back insert is gone", k);
    m8_db_result_free(res);
    m8_db_begin(db);
    run(db, "INSERT INTO t_tx VALUES (2)");
    is_int(m8_db_commit(db), 0, "%s: COMMIT", k);
    m8_db_exec(db, "SELECT COUNT(*) FROM t_tx", NULL, 0, &res);
    m8_db_get_int(res, 0, 0, &n);
    is_int(n, 1, "%s: a committed insert stays", k);
    m8_db_result_free(res);
    is_int(m8_db_commit(db), M8_ESTATE, "%s: COMMIT outside a transaction is M8_ESTATE", k);
    is_int(m8_db_rollback(db), M8_ESTATE, "%s: ROLLBACK outside a transaction is M8_ESTATE", k);

    /* A failed statement inside a transaction. */
    m8_db_begin(db);
    run(db, "INSERT INTO t_tx VALUES (3)");
    int rc = m8_db_exec(db, "INSERT INTO t_tx VALUES (2)", NULL, 0, NULL);
    is_int(rc, M8_EIO, "%s: a duplicate inside a transaction fails", k);
    rc = m8_db_commit(db);
    if (pg)
        is_int(rc, M8_EIO, "%s: COMMIT after a failed statement is refused (rolled back)", k);
    else
        is_int(rc, 0, "%s: COMMIT after a failed statement keeps the others (MariaDB)", k);
    ok(!m8_db_in_transaction(db), "%s: ... and the transaction is over", k);
    m8_db_exec(db, "SELECT COUNT(*) FROM t_tx", NULL, 0, &res);
    m8_db_get_int(res, 0, 0, &n);
    is_int(n, pg ? 1 : 2, "%s: rows after it: %d", k, pg ? 1 : 2);
    m8_db_result_free(res);
}

void test_errors(m8_db *db, const char *k, bool pg)
{
    run(db, "DROP TABLE IF EXISTS t_child");
    run(db, "DROP TABLE IF EXISTS t_parent");
    run(db, pg ? "CREATE TABLE t_parent (id INT PRIMARY KEY, owner_id INT NOT NULL, name "
                 "VARCHAR(50) NOT NULL, CONSTRAINT t_parent_name UNIQUE (owner_id, name))"
               : "CREATE TABLE t_parent (id INT PRIMARY KEY, owner_id INT NOT NULL, name "
                 "VARCHAR(50) NOT NULL, UNIQUE KEY name (owner_id, name)) ENGINE=InnoDB");
    run(db, "CREATE TABLE t_child (id INT PRIMARY KEY, parent_id INT NOT NULL, FOREIGN KEY "
            "(parent_id) REFERENCES t_parent (id))");
    run(db, "INSERT INTO t_parent VALUES (1, 1, 'a')");
    m8_db_param p[3] = {M8_DB_INT(2), M8_DB_INT(1), M8_DB_TEXT("a")};
    int rc = m8_db_exec(db, "INSERT INTO t_parent VALUES (?, ?, ?)", p, 3, NULL);
    const m8_db_error *e = m8_db_last_error(db);
    is_int(rc, M8_EIO, "%s: unique violation: M8_EIO", k);
    ok(e->kind == M8_DB_ERR_UNIQUE, "%s: ... classified unique", k);
    is_str(e->field, "name", "%s: ... the field is name", k);
    respond_is(db, rc, 409,
               "{\"detail\":[{\"table\":null,\"field_name\":\"name\",\"error\":\"Duplicate entry "
               "already exists.\"}]}",
               pg ? "postgres unique" : "mysql unique");

    rc = m8_db_exec(db, "INSERT INTO t_child VALUES (1, 99)", NULL, 0, NULL);
    is_int(rc, M8_EIO, "%s: foreign key violation: M8_EIO", k);
    ok(e->kind == M8_DB_ERR_FOREIGN_KEY, "%s: ... classified foreign key", k);
    is_str(e->field, "parent_id", "%s: ... the field is parent_id", k);
    is_str(e->table, "t_parent", "%s: ... the referenced table", k);
    respond_is(db, rc, 409,
               "{\"detail\":[{\"table\":\"t_parent\",\"field_name\":\"parent_id\",\"error\":"
               "\"Invalid foreign key reference in 'parent_id'.\"}]}",
               pg ? "postgres foreign key" : "mysql foreign key");
    run(db, "INSERT INTO t_child VALUES (1, 1)");
    rc = m8_db_exec(db, "DELETE FROM t_parent WHERE id = 1", NULL, 0, NULL);
    ok(rc == M8_EIO && e->kind == M8_DB_ERR_FOREIGN_KEY,
       "%s: deleting a referenced row: foreign key", k);

    rc = m8_db_exec(db, "INSERT INTO t_parent (id, owner_id, name) VALUES (3, 1, NULL)", NULL, 0,
                    NULL);
    ok(rc == M8_EIO && e->kind == M8_DB_ERR_NOT_NULL, "%s: NULL into NOT NULL: not null", k);
    is_str(e->field, "name", "%s: ... naming the column", k);
    respond_is(db, rc, 500, NULL, pg ? "postgres not null" : "mysql not null");

    rc = m8_db_exec(db, "SELEKT 1", NULL, 0, NULL);
    ok(rc == M8_EIO && e->kind == M8_DB_ERR_OTHER, "%s: a syntax error: other", k);
    ok(strlen(e->message) > 0 && strchr(e->message, '\n') == NULL, "%s: ... one-line reason: %s", k,
       e->message);
    respond_is(db, rc, 500, NULL, pg ? "postgres syntax error" : "mysql syntax error");
    is_int(m8_db_exec(db, "SELECT 1", NULL, 0, NULL), 0, "%s: the handle works after errors", k);
}

/* The server ends the session (a restart does the same): the next
 * statement outside a transaction reconnects; inside one it fails. */
void test_reconnect(m8_db *db, m8_db *admin, const char *k, bool pg)
{
    m8_db_result *res = NULL;
    int64_t id = 0;
    m8_db_exec(db, pg ? "SELECT pg_backend_pid()" : "SELECT CONNECTION_ID()", NULL, 0, &res);
    m8_db_get_int(res, 0, 0, &id);
    m8_db_result_free(res);
    m8_db_param p = M8_DB_INT(id);
    int rc =
        m8_db_exec(admin, pg ? "SELECT pg_terminate_backend(?)" : "KILL CONNECTION ?", &p, 1, NULL);
    is_int(rc, 0, "%s: the session of the handle is killed from another one", k);
    usleep(100000);
    int64_t id2 = 0;
    rc = m8_db_exec(db, pg ? "SELECT pg_backend_pid()" : "SELECT CONNECTION_ID()", NULL, 0, &res);
    m8_db_get_int(res, 0, 0, &id2);
    m8_db_result_free(res);
    is_int(rc, 0, "%s: the next statement works: it reconnected by itself", k);
    ok(id2 != 0 && id2 != id, "%s: ... on a new session", k);

    m8_db_begin(db);
    p = M8_DB_INT(id2);
    m8_db_exec(admin, pg ? "SELECT pg_terminate_backend(?)" : "KILL CONNECTION ?", &p, 1, NULL);
    usleep(100000);
    rc = m8_db_exec(db, "SELECT 1", NULL, 0, NULL);
    is_int(rc, M8_EAGAIN, "%s: inside a transaction the lost session is M8_EAGAIN", k);
    ok(m8_db_last_error(db)->kind == M8_DB_ERR_UNAVAILABLE, "%s: ... classified unavailable", k);
    ok(!m8_db_in_transaction(db), "%s: ... and the transaction is gone", k);
    respond_is(db, rc, 503, "{\"detail\":\"Database unavailable.\"}",
               pg ? "postgres lost session" : "mysql lost session");
    is_int(m8_db_exec(db, "SELECT 1", NULL, 0, NULL), 0, "%s: the statement after it works", k);
}

void test_ceiling(m8_db *db, const char *k, bool pg)
{
    /* Rows of 1 MiB: 15 fit in M8_DB_MAX_RESULT_BYTES (16 MiB), 17 do not. */
    const char *sql = pg ? "SELECT repeat('x', 1048576) FROM generate_series(1, ?)"
                         : "SELECT REPEAT('x', 1048576) FROM seq_1_to_100 LIMIT ?";
    m8_db_param n = M8_DB_INT(15);
    m8_db_result *res = NULL;
    int rc = m8_db_exec(db, sql, &n, 1, &res);
    ok(rc == 0 && m8_db_nrows(res) == 15, "%s: a result of 15 MiB is read (%d)", k, rc);
    if (rc)
        diag("%s", m8_db_last_error(db)->message);
    m8_db_result_free(res);
    n = M8_DB_INT(17);
    rc = m8_db_exec(db, sql, &n, 1, &res);
    is_int(rc, M8_ETOOBIG, "%s: a result over 16 MiB is refused", k);
    ok(res == NULL, "%s: ... without a result", k);
    is_int(m8_db_exec(db, "SELECT 1", NULL, 0, NULL), 0, "%s: the handle works after it", k);
}

void test_table(m8_db *db, const char *k)
{
    char buf[64];
    is_int(m8_db_table(db, "items", buf, sizeof buf), 0, "%s: m8_db_table", k);
    is_str(buf, "app_items", "%s: ... TABLES_PREFIX + '_' + name", k);
    is_int(m8_db_table(db, "it ems", buf, sizeof buf), M8_EINVAL, "%s: a name with a blank", k);
    is_int(m8_db_table(db, "1x", buf, sizeof buf), M8_EINVAL, "%s: a name starting with a digit",
           k);
    is_int(m8_db_table(db, "items", buf, 9), M8_ETOOBIG, "%s: a short buffer", k);
    char name[64];
    memset(name, 'n', 59);
    name[59] = '\0'; /* "app_" + 59 = 63 bytes */
    is_int(m8_db_table(db, name, buf, sizeof buf), 0, "%s: a table name of 63 bytes", k);
    name[59] = 'n';
    name[60] = '\0';
    is_int(m8_db_table(db, name, buf, sizeof buf), M8_EINVAL, "%s: 64 bytes is too long", k);
}
