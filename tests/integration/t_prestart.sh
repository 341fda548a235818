#!/bin/bash
# t_prestart.sh - fcgim8-prestart (doc/settings.md#database-wait) against a real
# MariaDB and a real PostgreSQL started here on loopback: it succeeds at once
# when the server is up, waits while the server starts later, fails after the
# last try with exit 1 when nothing listens, fails on a wrong password without
# ever logging a password; the command line (exit 64), settings errors
# (exit 78) and "no database configured" (exit 0).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
m8_init t_prestart

BIN=$top_builddir/src/fcgim8-prestart
[ -x "$BIN" ] || t_bail "fcgim8-prestart not built ($BIN)"
PORT_LO=18700 PORT_HI=18749

PW='Db-Test-Pass-1234!x'
BAD_PW='Wrong-Pass-5678!yZ'
DBNAME=app_db
DBUSER=app_user

run() { # ARGS...: runs fcgim8-prestart with a clean environment -> RC, OUT (stdout+stderr), MS
    local t0
    t0=$(m8_now_ms)
    OUT=$(cd "$T_DIR" && m8_clean_env -- "$BIN" "$@" </dev/null 2>&1)
    RC=$?
    MS=$(( $(m8_now_ms) - t0 ))
}

n_lines() { printf '%s\n' "$OUT" | grep -c -- "$1"; }

no_password() { # LABEL: no output line carries either password
    t_unlike "$OUT" "$PW" "$1: no log line contains the password"
    t_unlike "$OUT" "$BAD_PW" "$1: no log line contains the wrong password either"
}

# ------------------------------------------------------------- command line
run --help
t_is "$RC" 0 "--help exits 0"
for o in --env-file --tries --interval --timeout --version --help; do
    t_like "$OUT" "$o" "--help documents $o"
done
t_like "$OUT" "78" "--help documents the exit statuses"
run --version
t_is "$RC" 0 "--version exits 0"
libver=$(sed -n 's/^#define M8_VERSION_STRING "\(.*\)"/\1/p' "$top_srcdir/lib/fcgim8.h")
t_like "$OUT" "fcgi-m8 ${libver//./\\.}" "--version prints the library version"
VERSION_OUT=$OUT

for bad in "--bogus" "--tries 0" "--tries 1000001" "--tries x" "--interval -1" "--interval 3601" \
    "--interval abc" "--timeout 0" "unexpected"; do
    # shellcheck disable=SC2086  # split the option from its value
    run $bad
    t_is "$RC" 64 "usage error exits 64: $bad"
done

# ------------------------------------------------------------- settings
m8_write_env "$T_DIR/nodb.env"
run --env-file "$T_DIR/nodb.env" --tries 1
t_is "$RC" 0 "no SELECTED_DB and no DB_HOST: nothing to wait for, exit 0"
t_like "$OUT" "skipping" "... and it says it skips the wait"

run --env-file "$T_DIR/missing.env"
t_is "$RC" 78 "a missing --env-file exits 78"

m8_write_env "$T_DIR/incomplete.env" SELECTED_DB=Postgres DB_HOST=127.0.0.1 DB_DATABASE=$DBNAME \
    DB_USER=$DBUSER "DB_PASSWORD=$PW"
run --env-file "$T_DIR/incomplete.env" --tries 1
t_is "$RC" 78 "SELECTED_DB set but DB_PORT missing exits 78"
t_like "$OUT" "DB_PORT" "... naming DB_PORT"
no_password "incomplete settings"

m8_write_env "$T_DIR/hostonly.env" DB_HOST=127.0.0.1
run --env-file "$T_DIR/hostonly.env" --tries 1
t_is "$RC" 78 "DB_HOST alone (SELECTED_DB defaults to Mysql) needs the other DB_* (78)"
for k in DB_PORT DB_DATABASE DB_USER DB_PASSWORD; do
    t_is "$(n_lines "$k")" 1 "... one line names $k"
done

m8_write_env "$T_DIR/weak.env" SELECTED_DB=Mysql DB_HOST=127.0.0.1 DB_PORT=3306 \
    DB_DATABASE=$DBNAME DB_USER=$DBUSER DB_PASSWORD=weakpass
run --env-file "$T_DIR/weak.env" --tries 1
t_is "$RC" 78 "a weak DB_PASSWORD exits 78"
t_like "$OUT" "DB_PASSWORD" "... naming DB_PASSWORD"
t_unlike "$OUT" "weakpass" "... without printing it"

m8_write_env "$T_DIR/enum.env" SELECTED_DB=postgres DB_HOST=127.0.0.1 DB_PORT=5432 \
    DB_DATABASE=$DBNAME DB_USER=$DBUSER "DB_PASSWORD=$PW"
run --env-file "$T_DIR/enum.env" --tries 1
t_is "$RC" 78 "SELECTED_DB is case-sensitive (postgres is invalid, 78)"

# A backend this build lacks is a configuration error that says so.
for kind in Mysql Postgres; do
    lk=${kind,,}
    if [[ $VERSION_OUT == *" $lk"* ]]; then
        continue
    fi
    m8_write_env "$T_DIR/nobackend.env" SELECTED_DB=$kind DB_HOST=127.0.0.1 DB_PORT=5432 \
        DB_DATABASE=$DBNAME DB_USER=$DBUSER "DB_PASSWORD=$PW"
    run --env-file "$T_DIR/nobackend.env" --tries 1
    t_is "$RC" 78 "$kind: a backend not built in exits 78"
    t_like "$OUT" "--without-" "$kind: ... saying the build lacks it"
done

# ------------------------------------------------------------- each backend
# db_env FILE KIND PORT PASSWORD
db_env() {
    m8_write_env "$1" "SELECTED_DB=$2" DB_HOST=127.0.0.1 "DB_PORT=$3" DB_DATABASE=$DBNAME \
        DB_USER=$DBUSER "DB_PASSWORD=$4"
}

backend() { # KIND: the whole sequence against one server
    local kind=$1 lk=${1,,} d=$T_DIR/${1,,} port pid
    local start stop
    if [ "$kind" = Mysql ]; then
        start=m8_mariadb_start stop=m8_mariadb_stop
    else
        start=m8_pg_start stop=m8_pg_stop
    fi
    m8_pick_port $PORT_LO $PORT_HI || t_bail "no free port in $PORT_LO-$PORT_HI"
    port=$M8_PORT
    db_env "$T_DIR/$lk.env" "$kind" "$port" "$PW"
    db_env "$T_DIR/$lk-bad.env" "$kind" "$port" "$BAD_PW"

    # Nothing listens yet: exactly N tries, then exit 1.
    run --env-file "$T_DIR/$lk.env" --tries 3 --interval 0.2 --timeout 2
    t_is "$RC" 1 "$lk: nothing listening: exit 1 after the last try" || t_diag "$OUT"
    t_is "$(n_lines '"msg":"Database not ready."')" 3 "$lk: ... one JSON line per failed try (3)"
    t_like "$OUT" '"try":3,"tries":3' "$lk: ... the last line says try 3 of 3"
    t_ok "$([ "$MS" -ge 400 ] && [ "$MS" -lt 5000 ] && echo 0 || echo 1)" \
        "$lk: ... waiting 0.2 s between tries only (${MS} ms)"
    t_like "$OUT" '"level":"error".*did not answer after 3 tries' "$lk: ... and a final error line"
    no_password "$lk: nothing listening"

    # fcgim8d runs the same wait before it creates anything (doc/design.md#supervisor).
    OUT=$(cd "$T_DIR" && m8_clean_env -- "$top_builddir/src/fcgim8d" --listen "unix:$T_DIR/$lk-d.sock" \
        --env-file "$T_DIR/$lk.env" --db-wait-tries 2 --db-wait-interval 0.2 --workers 1 \
        -- "$(m8_svc_bin fixture)" </dev/null 2>&1)
    RC=$?
    t_is "$RC" 70 "$lk: fcgim8d with the database down: exit 70 after --db-wait-tries" || t_diag "$OUT"
    t_is "$(n_lines '"msg":"Database not ready."')" 2 "$lk: ... after its 2 tries"
    t_like "$OUT" 'the database did not answer: not starting' "$lk: ... saying why"
    t_ok "$([ ! -e "$T_DIR/$lk-d.sock" ]; echo $?)" "$lk: ... before creating its socket"
    no_password "$lk: fcgim8d, nothing listening"

    if ! $start "$d" "$port"; then
        t_report 1 "$lk: the $kind server starts"
        return
    fi
    if [ "$kind" = Mysql ]; then
        m8_mariadb_sql "$d" "CREATE DATABASE $DBNAME; CREATE USER '$DBUSER'@'%' IDENTIFIED BY '$PW';
            GRANT ALL PRIVILEGES ON $DBNAME.* TO '$DBUSER'@'%';"
    else
        m8_pg_sql "$d" "$port" "CREATE ROLE $DBUSER LOGIN PASSWORD '$PW'" &&
            m8_pg_sql "$d" "$port" "CREATE DATABASE $DBNAME OWNER $DBUSER"
    fi
    t_ok $? "$lk: the server runs with the application's user and database"

    # Up: the first try succeeds.
    run --env-file "$T_DIR/$lk.env" --tries 3 --interval 0.2
    t_is "$RC" 0 "$lk: server up: exit 0" || t_diag "$OUT"
    (cd "$T_DIR" && m8_clean_exec -- "$top_builddir/src/fcgim8d" --listen "unix:$T_DIR/$lk-d.sock" \
        --env-file "$T_DIR/$lk.env" --db-wait-tries 3 --db-wait-interval 0.2 --workers 1 \
        -- "$(m8_svc_bin fixture)") </dev/null >/dev/null 2>"$T_DIR/$lk-d.log" &
    dpid=$!
    M8_PIDS+=("$dpid")
    m8_wait_for 15 grep -q '"msg":"ready: 1 workers' "$T_DIR/$lk-d.log"
    t_ok $? "$lk: fcgim8d with the database up: the wait passes and the pool becomes ready" ||
        t_diag "$(tail -n 5 "$T_DIR/$lk-d.log")"
    kill -TERM "$dpid" 2>/dev/null
    m8_wait_exit "$dpid" 10
    t_is "$(n_lines 'Database not ready.')" 0 "$lk: ... at the first try (no failure logged)"
    t_like "$OUT" '"msg":"Database is ready."' "$lk: ... logging \"Database is ready.\""
    t_ok "$([ "$MS" -lt 3000 ] && echo 0 || echo 1)" "$lk: ... at once (${MS} ms)"
    no_password "$lk: server up"

    # Wrong password: refused by the server on every try, never printed.
    run --env-file "$T_DIR/$lk-bad.env" --tries 2 --interval 0.2
    t_is "$RC" 1 "$lk: wrong password: exit 1 after the last try" || t_diag "$OUT"
    t_is "$(n_lines 'Database not ready.')" 2 "$lk: ... one line per refused try (2)"
    t_like "$OUT" "Access denied|password authentication failed" \
        "$lk: ... the reason is the server's refusal"
    no_password "$lk: wrong password"

    # The server comes up while prestart waits: it succeeds then.
    $stop "$d"
    (cd "$T_DIR" && m8_clean_exec -- "$BIN" --env-file "$T_DIR/$lk.env" --tries 150 \
        --interval 0.2 --timeout 2) </dev/null >"$T_DIR/$lk-late.log" 2>&1 &
    pid=$!
    M8_PIDS+=("$pid")
    # Start the server once prestart has failed twice (it is really waiting).
    m8_wait_for 20 grep -q '"try":2,' "$T_DIR/$lk-late.log"
    t_ok $? "$lk: prestart keeps trying while the server is down"
    if $start "$d" "$port"; then
        m8_wait_exit "$pid" 30
        t_is "$M8_RC" 0 "$lk: ... and exits 0 once the server has started" ||
            t_diag "$(tail -n 5 "$T_DIR/$lk-late.log")"
    else
        t_report 1 "$lk: the $kind server restarts"
    fi
    OUT=$(cat "$T_DIR/$lk-late.log")
    t_ok "$([ "$(n_lines 'Database not ready.')" -ge 2 ] && echo 0 || echo 1)" \
        "$lk: ... after logging the failed tries"
    t_like "$(printf '%s\n' "$OUT" | tail -n 1)" '"msg":"Database is ready."' \
        "$lk: ... the last line says the database is ready"
    no_password "$lk: late start"
    $stop "$d"
}

if [[ $VERSION_OUT != *" mysql"* ]]; then
    t_skip "mysql: a real server" "built --without-mariadb"
elif ! m8_have_mariadb; then
    t_skip "mysql: a real server" "mariadb-server not installed (scripts/install-deps.sh)"
else
    backend Mysql
fi
if [[ $VERSION_OUT != *" postgres"* ]]; then
    t_skip "postgres: a real server" "built --without-postgresql"
elif ! m8_have_pg; then
    t_skip "postgres: a real server" "postgresql not installed (scripts/install-deps.sh)"
else
    backend Postgres
fi

t_done
