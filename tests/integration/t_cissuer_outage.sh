#!/bin/bash
# t_cissuer_outage.sh - fcgim8-issuer while its database server is down, and
# after it is back (doc/issuer.md#operations).  Two issuers under fcgim8d
# behind nginx share one PostgreSQL (then one MariaDB) database: issuer A with
# the default failure modes (RATE_LIMIT_FAILURE_MODE=fail_open,
# ACCESS_REVOCATION_FAILURE_MODE=fail_closed), issuer B with the opposite
# ones.  The server is stopped and started again on the same port and data:
# during the outage login answers fa-auth-m8's 503 texts per mode, the own
# routes of stateful mode answer 503 (A) or go on to the database's 503 (B),
# the JWKS, /ping and anonymous health (fa-auth-m8's constant 200) still
# answer 200, the detailed health says the database and the store are
# unavailable, no request waits past curl's bound; once the server is back
# both issuers serve logins again by themselves (no worker restarts).
# Ports from 19530-19569.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import json' 2>/dev/null || t_skip_all "python3 is not installed"
m8_init t_cissuer_outage

ISSUER=$top_builddir/src/fcgim8-issuer
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$D" ] || t_bail "programs not built ($ISSUER, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PLO=19530 PHI=19569
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
CRED='Health-Detail-Credential-0123456789!'
D_DB='{"detail":"Database temporarily unavailable. Please try again."}'
D_AUTH='{"detail":"Authentication service temporarily unavailable"}'
D_RATE='{"detail":"Rate limiting service temporarily unavailable"}'

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
chmod 600 "$T_DIR/rsa.pem"

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }
cookie_of() { sed -n 's/^[Ss]et-[Cc]ookie: refresh_token=\([^;]*\);.*/\1/p' "$1" | tr -d '\r' | tail -n 1; }

KINDS=()
for kind in Postgres Mysql; do
    lk=${kind,,}
    if [ $kind = Mysql ]; then
        [[ $VERSION_OUT == *" mysql"* ]] || { t_skip "$lk: the outage" "built --without-mariadb"; continue; }
        m8_have_mariadb || { t_skip "$lk: the outage" "mariadb-server not installed"; continue; }
    else
        [[ $VERSION_OUT == *" postgres"* ]] || { t_skip "$lk: the outage" "built --without-postgresql"; continue; }
        m8_have_pg || { t_skip "$lk: the outage" "postgresql not installed"; continue; }
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
    for who in a b; do
        m8_pick_port $((PLO + 10)) $PHI || t_bail "no free port"
        URL[$kind$who]=http://127.0.0.1:$M8_PORT
        m8_nginx_site "$NG" "iss_$lk$who" fcgi-m8-unix.conf NAME="iss_$lk$who" \
            LISTEN="127.0.0.1:$M8_PORT" SERVER_NAME=localhost SOCKET="$T_DIR/iss_$lk$who.sock" ||
            t_bail "cannot render the site"
    done
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

login() { # BASE EMAIL PASSWORD [curl args]
    local base=$1 mail=$2 pass=$3
    shift 3
    m8_http POST "$base/user/login/access-token" --data-urlencode "username=$mail" \
        --data-urlencode "password=$pass" "$@"
}

# timed METHOD URL [curl args]: m8_http (curl's bound: 15 s) and the slowest
# answer so far in SLOW (milliseconds)
SLOW=0
timed() {
    local t0 dt
    t0=$(m8_now_ms)
    m8_http "$@"
    dt=$(($(m8_now_ms) - t0))
    [ "$dt" -gt "$SLOW" ] && SLOW=$dt
    return 0
}

issuer_env() { # FILE KIND [KEY=VALUE...]
    local f=$1 kind=$2
    shift 2
    m8_write_env "$f" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
        ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY ACCESS_PRIVATE_KEY_FILE="$T_DIR/rsa.pem" \
        TOKEN_MODE=stateful TOKEN_STRICT_VALIDATION=false \
        SELECTED_DB=$kind DB_HOST=127.0.0.1 "DB_PORT=${DBPORT[$kind]}" DB_DATABASE=$DBNAME \
        DB_USER=$DBUSER "DB_PASSWORD=$PW" TABLES_PREFIX=auth \
        FIRST_SUPERUSER=$SU "FIRST_SUPERUSER_PASSWORD=$SU_PW" \
        'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
        'TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!' \
        'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!' \
        "HEALTH_DETAIL_CREDENTIAL=$CRED" -SERVICE_VERSION -CONTRACT_NAME -CONTRACT_VERSION \
        -CONTRACT_RANGE -API_VERSION "$@"
}

start_issuer() { # KIND WHO
    local lk=${1,,} who=$2
    (cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$T_DIR/iss_$lk$who.sock" \
        --env-file "$T_DIR/iss_$lk$who.env" --workers 2 --threads 2 --db-wait-tries 20 \
        --db-wait-interval 0.5 -- "$ISSUER") </dev/null >"$T_DIR/iss_$lk$who.out" \
        2>"$T_DIR/iss_$lk$who.log" &
    M8_PIDS+=("$!")
}

ready() { m8_http GET "$1/user/health/"; [ "$H_STATUS" = 200 ]; }
health_is() { # BASE DB-STATE: timed detailed health; 200 and its "database" member ("ok" or "unavailable")
    timed GET "$1/user/health/" -H "X-Internal-Token: $CRED"
    [ "$H_STATUS" = 200 ] && [ "$(jf "j['database']")" = "$2" ]
}
logs_in() { login "$1" "$SU" "$SU_PW"; [ "$H_STATUS" = 200 ]; }

# meta_checks KIND: /meta with the issuer's defaults (no SERVICE_VERSION or
# CONTRACT_* set), the OpenAPI document and /metrics of the issuer
# (doc/issuer.md#operations); A has METRICS_ENABLED=true, B the default.
meta_checks() {
    local lk=${1,,} A=${URL[${1}a]} B=${URL[${1}b]}
    m8_http GET "$A/user/meta"
    t_is "$H_STATUS:$(jf "(j['service'], j['api_version'], j['contract'])")" \
        "200:('fa-auth-m8', 'v1', {'name': 'fa-auth-m8', 'version': '2.0', 'range': '>=2.0.0 <3.0.0'})" \
        "$lk: /meta names service fa-auth-m8, contract fa-auth-m8 2.0, range >=2.0.0 <3.0.0"
    t_is "$(jf "(lambda v: len(v) == 3 and (2, 0, 0) <= v < (3, 0, 0))(tuple(int(x) for x in j['version'].split('.')))")" \
        True "$lk: /meta version $(jf "j['version']") lies inside >=2.0.0 <3.0.0"
    m8_http GET "$A/user/openapi.json"
    t_is "$H_STATUS:$(jf "j['info']['title']")" "200:fa-auth-m8" "$lk: the OpenAPI document is served"
    t_is "$(jf "sorted(p for p in j['paths'] if '/private' in p or '/security' in p)")" "[]" \
        "$lk: ... without the private and security routes"
    t_is "$(jf "all(p in j['paths'] for p in ('/user/login/access-token', '/user/profile/get/me/', '/user/users/', '/user/.well-known/jwks.json'))")" \
        True "$lk: ... with login, profile, users and the JWKS"
    m8_http GET "$A/user/metrics"
    t_is "$H_STATUS:$(grep -c '^user_auth_login_attempts_total{result="success"} 1.0$\|^# TYPE user_auth_login_attempts_total counter$' "$T_DIR/h.body")" \
        "200:2" "$lk: METRICS_ENABLED=true: /metrics answers Prometheus text with the user_ prefix (the one login counted)"
    t_like "$(grep -c '^user_http_requests_total{' "$T_DIR/h.body")" '^[1-9]' \
        "$lk: ... with the HTTP request counters"
    m8_http GET "$B/user/metrics"
    t_is "$H_STATUS" 404 "$lk: METRICS_ENABLED unset: /metrics is 404"
}

run_kind() {
    local kind=$1 lk=${1,,} d=$T_DIR/db-${1,,}
    local A=${URL[${1}a]} B=${URL[${1}b]}
    local start=m8_pg_start stop=m8_pg_stop
    [ "$kind" = Mysql ] && start=m8_mariadb_start stop=m8_mariadb_stop
    $start "$d" "${DBPORT[$kind]}" || { t_report 1 "$lk: the $kind server starts"; return; }
    m8_db_create $kind "$d" "${DBPORT[$kind]}" $DBNAME $DBUSER "$PW" ||
        { t_report 1 "$lk: the issuer's database and user"; return; }
    issuer_env "$T_DIR/iss_${lk}a.env" $kind METRICS_ENABLED=true
    issuer_env "$T_DIR/iss_${lk}b.env" $kind RATE_LIMIT_FAILURE_MODE=fail_closed \
        ACCESS_REVOCATION_FAILURE_MODE=fail_open
    start_issuer $kind a
    m8_wait_for 30 ready "$A" || {
        t_report 1 "$lk: issuer A is ready"
        t_diag "$(tail -n 20 "$T_DIR/iss_${lk}a.log")"
        return
    }
    start_issuer $kind b
    m8_wait_for 30 ready "$B" || {
        t_report 1 "$lk: issuer B is ready"
        t_diag "$(tail -n 20 "$T_DIR/iss_${lk}b.log")"
        return
    }
    t_report 0 "$lk: two fcgim8-issuers (A: default failure modes, B: the opposite) share the database"

    login "$A" "$SU" "$SU_PW"
    t_is "$H_STATUS" 200 "$lk: A: the superuser logs in before the outage"
    local tok cookie
    tok=$(jf "j['access_token']")
    cookie=$(cookie_of "$T_DIR/h.hdrs")
    m8_http GET "$B/user/profile/get/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS" 200 "$lk: B: /profile/get/me/ answers A's token before the outage"

    meta_checks "$kind"

    # ------------------------------------------------------------ the outage
    $stop "$d"
    t_ok $? "$lk: the database server stops"
    SLOW=0
    timed POST "$A/user/login/access-token" --data-urlencode "username=$SU" \
        --data-urlencode "password=$SU_PW"
    t_is "$H_STATUS:$H_BODY" "503:$D_DB" \
        "$lk: A (RATE_LIMIT_FAILURE_MODE=fail_open): login skips the rate limit, the user lookup fails: 503 database text"
    timed POST "$B/user/login/access-token" --data-urlencode "username=$SU" \
        --data-urlencode "password=$SU_PW"
    t_is "$H_STATUS:$H_BODY" "503:$D_RATE" \
        "$lk: B (RATE_LIMIT_FAILURE_MODE=fail_closed): login: 503 Rate limiting service temporarily unavailable"
    timed GET "$A/user/profile/get/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$H_BODY" "503:$D_AUTH" \
        "$lk: A (ACCESS_REVOCATION_FAILURE_MODE=fail_closed): own route: 503 Authentication service temporarily unavailable"
    timed GET "$A/user/users/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$H_BODY" "503:$D_AUTH" "$lk: A: ... a superuser route too"
    timed GET "$B/user/profile/get/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$H_BODY" "503:$D_DB" \
        "$lk: B (ACCESS_REVOCATION_FAILURE_MODE=fail_open): the token passes, reading the user fails: 503 database text"
    timed POST "$A/user/login/refresh-token/" -H "Cookie: refresh_token=$cookie"
    t_is "$H_STATUS" 503 "$lk: A: refresh during the outage: 503"
    t_unlike "$H_BODY" "$PW" "$lk: ... its body holds no password"
    timed POST "$A/user/login/access-token" --data-urlencode "username=" --data-urlencode "password="
    t_is "$H_STATUS" 422 "$lk: A: a malformed login is still refused with 422 (no database needed)"
    timed GET "$A/user/.well-known/jwks.json"
    t_is "$H_STATUS:$(jf "j['keys'][0]['kty']")" "200:RSA" "$lk: A: the JWKS still answers 200"
    timed GET "$A/user/ping"
    t_is "$H_STATUS" 200 "$lk: A: /ping still answers 200"
    timed GET "$A/user/health/"
    t_is "$H_STATUS:$H_BODY" '200:{"status":"ok"}' \
        "$lk: A: anonymous health: 200 {\"status\":\"ok\"} whatever the database's state (as fa-auth-m8)"
    m8_wait_for 10 health_is "$A" unavailable
    t_is "$H_STATUS:$(jf "' '.join(str(j[k]) for k in ('status','effective_mode','redis','database','revocation_available','rate_limiting_available','circuit_breaker'))")" \
        "200:degraded stateless_degraded unavailable unavailable False False open" \
        "$lk: A: detailed health: degraded, the database (our store) unavailable"
    t_like "$(jf "j['degraded_since']")" '^20[0-9]{2}-' "$lk: A: ... degraded_since is set"
    t_is "$(jf "' '.join(j['degradation_modes'][k] for k in ('rate_limit','refresh_validation','session_write','access_revocation'))")" \
        "fail_open fail_closed fail_closed fail_closed" "$lk: A: ... with the failure modes in force"
    t_unlike "$H_BODY" "$PW" "$lk: ... its body holds no password"
    m8_wait_for 10 health_is "$B" unavailable
    t_is "$H_STATUS:$(jf "j['degradation_modes']['rate_limit']+' '+j['degradation_modes']['access_revocation']")" \
        "200:fail_closed fail_open" "$lk: B: detailed health: B's own failure modes"
    # Several at once on both issuers (4 threads each): none waits past curl's bound.
    local i st n_bad=0
    local -a par=()
    for i in 1 2 3 4 5 6; do
        "$CURL" -s -o /dev/null -w '%{http_code}\n' --max-time 15 -X POST \
            --data-urlencode "username=u$i@example.com" --data-urlencode "password=Pw-$i-xxxxxxxx" \
            "$A/user/login/access-token" >"$T_DIR/par$i.txt" 2>/dev/null &
        par+=("$!")
    done
    wait "${par[@]}"
    for i in 1 2 3 4 5 6; do
        st=$(cat "$T_DIR/par$i.txt")
        [ "$st" = 503 ] || n_bad=$((n_bad + 1))
    done
    t_is "$n_bad" 0 "$lk: A: 6 logins at once during the outage all answer 503"
    t_ok "$([ "$SLOW" -lt 15000 ] && echo 0 || echo 1)" \
        "$lk: no request waited past curl's bound during the outage (slowest ${SLOW} ms)"

    # ------------------------------------------------------------ recovery
    $start "$d" "${DBPORT[$kind]}"
    t_ok $? "$lk: the database server starts again on the same port and data"
    m8_wait_for 20 logs_in "$A"
    t_is "$H_STATUS" 200 "$lk: A: login answers 200 again within seconds, without a restart"
    tok=$(jf "j['access_token']")
    m8_wait_for 20 logs_in "$B"
    t_is "$H_STATUS" 200 "$lk: B: login answers 200 again"
    m8_http GET "$A/user/profile/get/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$(jf "j['email']")" "200:$SU" "$lk: A: /profile/get/me/ answers again"
    m8_http GET "$B/user/users/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS" 200 "$lk: B: a superuser route answers again"
    m8_wait_for 10 health_is "$A" ok
    t_is "$H_STATUS:$(jf "j['status']+' '+j['redis']+' '+str(j['degraded_since'])")" "200:ok ok None" \
        "$lk: A: detailed health is ok again (degraded_since null)"
    t_is "$(cat "$T_DIR/iss_${lk}a.log" "$T_DIR/iss_${lk}b.log" | grep -c 'exited with status')" 0 \
        "$lk: no worker exited over the outage (the same processes recovered)"
    t_unlike "$(cat "$T_DIR/iss_${lk}a.log" "$T_DIR/iss_${lk}b.log")" "$PW" \
        "$lk: no log line holds the database password"
    $stop "$d"
}

for kind in "${KINDS[@]}"; do
    run_kind "$kind"
done
t_done
