#!/bin/bash
# t_cissuer_ready.sh - fcgim8-issuer's /health/ says "ready" only when its
# whole pool is (doc/issuer.md#health).  One issuer under fcgim8d (2
# workers) behind nginx on PostgreSQL, started a second time on its
# database: as soon as the workers exist both are stopped (SIGSTOP), then
# one is let go.  While it is ready and its sibling is still starting, every
# request reaches the ready one, and its health must answer fa-auth-m8's
# 503 "initializing", not its constant 200: the sibling would answer 503 to
# the issuer's routes, so a 200 then told a probe or a deploy script too
# early that the pool serves.  Once the sibling runs on, health answers 200.
# When a worker was ready before it could be stopped, or the stopped one
# held a lock the other needs, the check is skipped (said so).
# Ports from 20500-20529.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
m8_init t_cissuer_ready

ISSUER=$top_builddir/src/fcgim8-issuer
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$D" ] || t_bail "programs not built ($ISSUER, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
[[ $VERSION_OUT == *" postgres"* ]] || t_skip_all "built --without-postgresql"
m8_have_pg || t_skip_all "postgresql not installed"
PW='Db-Test-Pass-1234!x'

m8_pick_port 20500 20509 || t_bail "no free port"
DBPORT=$M8_PORT
m8_pick_port 20510 20519 || t_bail "no free port"
PORT=$M8_PORT
m8_pick_port 20520 20529 || t_bail "no free port"
SPORT=$M8_PORT
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
m8_nginx_site "$NG" iss fcgi-m8-unix.conf NAME=iss LISTEN="127.0.0.1:$PORT" SERVER_NAME=localhost \
    SOCKET="$T_DIR/iss.sock" || t_bail "cannot render the site"
m8_nginx_start "$NG" || t_bail "nginx did not start"
m8_pg_start "$T_DIR/pg" "$DBPORT" || t_bail "PostgreSQL did not start"
m8_db_create Postgres "$T_DIR/pg" "$DBPORT" issuer_db issuer_user "$PW" || t_bail "no database"
m8_write_env "$T_DIR/iss.env" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
    ACCESS_TOKEN_ALGORITHM=HS256 'ACCESS_SECRET_KEY=Test-Access-Secret-Key-0123456789abcdef!' \
    'REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!' TOKEN_MODE=stateful \
    SELECTED_DB=Postgres DB_HOST=127.0.0.1 "DB_PORT=$DBPORT" DB_DATABASE=issuer_db \
    DB_USER=issuer_user "DB_PASSWORD=$PW" TABLES_PREFIX=auth FIRST_SUPERUSER=admin@example.com \
    'FIRST_SUPERUSER_PASSWORD=Superuser-Pass-1234!' \
    'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
    'TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!' \
    'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!' \
    -SERVICE_VERSION -CONTRACT_NAME -CONTRACT_VERSION -CONTRACT_RANGE -API_VERSION

pool() { # start fcgim8d; its pid in DPID
    (cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$T_DIR/iss.sock" --env-file "$T_DIR/iss.env" \
        --workers 2 --threads 2 --status-listen "127.0.0.1:$SPORT" -- "$ISSUER") </dev/null \
        >>"$T_DIR/iss.out" 2>>"$T_DIR/iss.log" &
    DPID=$!
    M8_PIDS+=("$DPID")
}
health() { m8_http GET "http://127.0.0.1:$PORT/user/health/"; }
state_of() { # PID: the worker's state in fcgim8d's status ("starting", "ready", ...)
    "$CURL" -s --max-time 5 "http://127.0.0.1:$SPORT/status" |
        /usr/bin/python3 -c "import json,sys
for w in json.load(sys.stdin).get('workers', []):
    if w.get('pid') == $1: print(w.get('state'))" 2>/dev/null
}

# The first start makes the tables and the first superuser.
pool
m8_wait_for 30 eval 'health; [ "$H_STATUS" = 200 ]' || t_bail "the issuer did not start: $(tail -n 5 "$T_DIR/iss.log")"
kill -TERM "$DPID"
wait "$DPID"
t_is "$?" 0 "the first start (tables, first superuser) ends cleanly"

# The second start: both workers are stopped as soon as they exist.
pool
kids=()
for ((i = 0; i < 400 && ${#kids[@]} < 2; i++)); do
    mapfile -t kids < <(pgrep -P "$DPID")
    [ ${#kids[@]} -ge 2 ] || sleep 0.005
done
[ ${#kids[@]} -ge 2 ] || t_bail "fcgim8d did not start 2 workers: $(tail -n 5 "$T_DIR/iss.log")"
kill -STOP "${kids[0]}" "${kids[1]}"
m8_wait_for 10 eval '[ -n "$(state_of "${kids[0]}")" ] && [ -n "$(state_of "${kids[1]}")" ]' ||
    t_bail "fcgim8d's status does not list its workers"
a=${kids[0]} b=${kids[1]}
[ "$(state_of "$a")" = ready ] || { a=${kids[1]} b=${kids[0]}; }
if [ "$(state_of "$b")" = ready ]; then
    t_skip "health while one worker is ready and its sibling starts" "both were ready before they could be stopped"
    kill -CONT "$a" "$b"
else
    kill -CONT "$a"
    if m8_wait_for 10 eval '[ "$(state_of "$a")" = ready ]'; then
        health
        t_is "$H_STATUS $H_BODY" '503 {"status":"initializing","ready":false}' \
            "one worker ready, its sibling still starting: health answers 503 initializing, not 200"
        m8_http GET "http://127.0.0.1:$PORT/user/ping"
        t_is "$H_STATUS" 200 "meanwhile the ready worker serves /ping"
    else
        t_skip "health while one worker is ready and its sibling starts" \
            "the stopped worker held a lock the other needs"
    fi
    kill -CONT "$b"
fi
m8_wait_for 30 eval 'health; [ "$H_STATUS" = 200 ]'
t_is "$H_STATUS $H_BODY" '200 {"status":"ok"}' "once both workers are ready: health answers 200 {\"status\":\"ok\"}"
kill -TERM "$DPID"
wait "$DPID"
t_is "$?" 0 "the pool stops cleanly"
m8_pg_stop "$T_DIR/pg"
t_done
