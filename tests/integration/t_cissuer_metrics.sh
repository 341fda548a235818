#!/bin/bash
# t_cissuer_metrics.sh - fcgim8-issuer's own Prometheus series add up across
# the workers of fcgim8d (doc/issuer.md#metrics).  One issuer under fcgim8d
# (2 workers x 2 threads) behind nginx, on PostgreSQL then on MariaDB:
# logins, good and bad, are sent in parallel bursts so that both workers
# serve them; then every scrape of /user/metrics, whichever worker answers
# it, shows the exact totals (login successes, wrong credentials, a logout,
# its event, a refused token).  Ports from 19570-19599.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import json' 2>/dev/null || t_skip_all "python3 is not installed"
m8_init t_cissuer_metrics

ISSUER=$top_builddir/src/fcgim8-issuer
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$D" ] || t_bail "programs not built ($ISSUER, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PLO=19570 PHI=19599
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
GOOD=8 # successful logins, in two parallel bursts of GOOD/2
BAD=6  # wrong passwords, in one parallel burst

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }
cookie_of() { sed -n 's/^[Ss]et-[Cc]ookie: refresh_token=\([^;]*\);.*/\1/p' "$1" | tr -d '\r' | tail -n 1; }

KINDS=()
for kind in Postgres Mysql; do
    lk=${kind,,}
    if [ $kind = Mysql ]; then
        [[ $VERSION_OUT == *" mysql"* ]] || { t_skip "$lk: the metrics" "built --without-mariadb"; continue; }
        m8_have_mariadb || { t_skip "$lk: the metrics" "mariadb-server not installed"; continue; }
    else
        [[ $VERSION_OUT == *" postgres"* ]] || { t_skip "$lk: the metrics" "built --without-postgresql"; continue; }
        m8_have_pg || { t_skip "$lk: the metrics" "postgresql not installed"; continue; }
    fi
    KINDS+=("$kind")
done
[ ${#KINDS[@]} -gt 0 ] || t_done

declare -A DBPORT=() URL=()
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    m8_pick_port $PLO $((PLO + 9)) || t_bail "no free port"
    DBPORT[$kind]=$M8_PORT
    m8_pick_port $((PLO + 10)) $PHI || t_bail "no free port"
    URL[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "iss_$lk" fcgi-m8-unix.conf NAME="iss_$lk" \
        LISTEN="127.0.0.1:$M8_PORT" SERVER_NAME=localhost SOCKET="$T_DIR/iss_$lk.sock" ||
        t_bail "cannot render the site"
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

issuer_env() { # FILE KIND
    m8_write_env "$1" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
        ACCESS_TOKEN_ALGORITHM=HS256 'ACCESS_SECRET_KEY=Test-Access-Secret-Key-0123456789abcdef!' \
        'REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!' \
        TOKEN_MODE=stateful TOKEN_STRICT_VALIDATION=false METRICS_ENABLED=true \
        LOGIN_RATE_LIMIT_REQUESTS=1000 LOGIN_IP_RATE_LIMIT_REQUESTS=1000 \
        SELECTED_DB="$2" DB_HOST=127.0.0.1 "DB_PORT=${DBPORT[$2]}" DB_DATABASE=$DBNAME \
        DB_USER=$DBUSER "DB_PASSWORD=$PW" TABLES_PREFIX=auth \
        FIRST_SUPERUSER=$SU "FIRST_SUPERUSER_PASSWORD=$SU_PW" \
        'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
        'TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!' \
        'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!' \
        -SERVICE_VERSION -CONTRACT_NAME -CONTRACT_VERSION -CONTRACT_RANGE -API_VERSION
}

ready() { m8_http GET "$1/user/health/"; [ "$H_STATUS" = 200 ]; }

# burst BASE N PASSWORD: N logins of the superuser at once; the number
# answered other than WANT in BURST_BAD.
burst() {
    local base=$1 n=$2 pass=$3 want=$4 i
    local -a par=()
    for ((i = 1; i <= n; i++)); do
        "$CURL" -s -o "$T_DIR/burst$i.body" -w '%{http_code}\n' --max-time 30 -X POST \
            --data-urlencode "username=$SU" --data-urlencode "password=$pass" \
            "$base/user/login/access-token" >"$T_DIR/burst$i.txt" &
        par+=("$!")
    done
    wait "${par[@]}"
    BURST_BAD=0 BURST_CODES=
    for ((i = 1; i <= n; i++)); do
        BURST_CODES+=" $(cat "$T_DIR/burst$i.txt")"
        [ "$(cat "$T_DIR/burst$i.txt")" = "$want" ] || BURST_CODES+=" $(head -c 200 "$T_DIR/burst$i.body")"
        [ "$(cat "$T_DIR/burst$i.txt")" = "$want" ] || BURST_BAD=$((BURST_BAD + 1))
    done
}

# sample LINE: the value of the sample LINE (name and labels as written) in
# the last scrape's body, or "absent".
sample() {
    local v
    v=$(grep -F "$1 " "$T_DIR/h.body" | grep -v '^#' | awk -v l="$1" '$1 == l { print $2; exit }')
    echo "${v:-absent}"
}

run_kind() {
    local kind=$1 lk=${1,,} d=$T_DIR/db-${1,,} base=${URL[$1]}
    local start=m8_pg_start stop=m8_pg_stop
    [ "$kind" = Mysql ] && start=m8_mariadb_start stop=m8_mariadb_stop
    $start "$d" "${DBPORT[$kind]}" || { t_report 1 "$lk: the $kind server starts"; return; }
    m8_db_create $kind "$d" "${DBPORT[$kind]}" $DBNAME $DBUSER "$PW" ||
        { t_report 1 "$lk: the issuer's database and user"; return; }
    issuer_env "$T_DIR/iss_$lk.env" $kind
    (cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$T_DIR/iss_$lk.sock" \
        --env-file "$T_DIR/iss_$lk.env" --workers 2 --threads 2 --db-wait-tries 20 \
        --db-wait-interval 0.5 -- "$ISSUER") </dev/null >"$T_DIR/iss_$lk.out" \
        2>"$T_DIR/iss_$lk.log" &
    M8_PIDS+=("$!")
    m8_wait_for 30 ready "$base" || {
        t_report 1 "$lk: the issuer is ready"
        t_diag "$(tail -n 20 "$T_DIR/iss_$lk.log")"
        $stop "$d"
        return
    }
    t_report 0 "$lk: fcgim8-issuer runs under fcgim8d with 2 workers"
    # Health said 200: the whole pool serves (a worker still starting would
    # answer 503 to the issuer's own routes, such as the JWKS).
    local -a jp=()
    for ((i = 1; i <= 8; i++)); do
        "$CURL" -s -o /dev/null -w '%{http_code}\n' --max-time 30 \
            "$base/user/.well-known/jwks.json" >"$T_DIR/jwks$i.txt" &
        jp+=("$!")
    done
    wait "${jp[@]}"
    t_is "$(cat "$T_DIR"/jwks*.txt | sort | uniq -c | awk '{ printf "%s%sx%s", (NR > 1 ? " " : ""), $1, $2 }')" \
        8x200 "$lk: once health answers 200, every worker serves: 8 JWKS requests at once, each 200"

    burst "$base" $((GOOD / 2)) "$SU_PW" 200
    local bad1=$BURST_BAD codes1=$BURST_CODES
    burst "$base" $((GOOD / 2)) "$SU_PW" 200
    t_is "$((bad1 + BURST_BAD))" 0 "$lk: $GOOD logins in two parallel bursts: each 200" ||
        t_diag "$lk: the statuses:$codes1 /$BURST_CODES; the issuer's log: $(grep -E 'Sanitizer|runtime error|SUMMARY|killed by signal|exited with|"level":"(warning|error|critical)"' "$T_DIR/iss_$lk.log" | head -n 12)"
    burst "$base" $BAD "Wrong-Passw0rd-$lk" 400
    t_is "$BURST_BAD" 0 "$lk: $BAD wrong passwords at once: each 400"
    local pids
    pids=$(grep '"route":"/user/login/access-token"' "$T_DIR/iss_$lk.log" |
        sed -n 's/.*"pid":\([0-9]*\).*/\1/p' | sort -u | wc -l)
    t_diag "$lk: the logins were served by $pids worker process(es)"

    m8_http POST "$base/user/login/access-token" --data-urlencode "username=$SU" \
        --data-urlencode "password=$SU_PW"
    local tok cookie
    tok=$(jf "j['access_token']")
    cookie=$(cookie_of "$T_DIR/h.hdrs")
    m8_http POST "$base/user/login/logout/" -H "Authorization: Bearer $tok" \
        -H "Cookie: refresh_token=$cookie"
    t_is "$H_STATUS" 200 "$lk: one more login, then its logout"
    m8_http GET "$base/user/profile/get/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS" 401 "$lk: the logged-out token is refused on an own route"

    # Every scrape, whichever worker serves it, gives the sums of all of them.
    local i n_ok=0 got=""
    for i in 1 2 3 4 5 6; do
        m8_http GET "$base/user/metrics"
        got="$(sample 'user_auth_login_attempts_total{result="success"}')"
        got+=" $(sample 'user_auth_login_attempts_total{result="wrong_credentials"}')"
        got+=" $(sample 'user_auth_logout_total')"
        got+=" $(sample 'user_auth_events_published_total{event_type="session-revoked"}')"
        got+=" $(sample 'user_auth_token_validation_failures_total{reason="revoked"}')"
        [ "$H_STATUS:$got" = "200:$((GOOD + 1)).0 $BAD.0 1.0 1.0 1.0" ] && n_ok=$((n_ok + 1))
    done
    t_is "$n_ok" 6 \
        "$lk: 6 scrapes each show login success $((GOOD + 1)), wrong_credentials $BAD, 1 logout, its event, 1 revoked token"
    [ "$n_ok" = 6 ] || t_diag "$lk: last scrape: $got"
    t_is "$(sample 'user_auth_degradation_mode_active{control="session_write",mode="fail_closed"}')" \
        1.0 "$lk: degradation_mode_active{session_write, fail_closed} is 1"
    t_is "$(sample 'user_auth_redis_circuit_breaker_open')" 0.0 \
        "$lk: auth_redis_circuit_breaker_open is 0"
    $stop "$d"
}

for kind in "${KINDS[@]}"; do
    run_kind "$kind"
done
t_done
