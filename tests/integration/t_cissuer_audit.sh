#!/bin/bash
# t_cissuer_audit.sh - the privileged-action audit log, the /security/
# audit-log and purge routes and the dashboard of fcgim8-issuer
# (doc/issuer.md#audit-and-security-routes, doc/issuer.md#dashboard) as an
# operator uses them: the issuer under fcgim8d behind a real nginx, on a real
# PostgreSQL and a real MariaDB started here on loopback.  On each database:
# the superuser's user creation, edit and deletion each write one audit row
# (newest first on GET /security/audit-log, with the actor and the target),
# the log line of each row names the client address from X-Forwarded-For;
# an admin sees only the rows they authored, a plain user is refused (403),
# the 31st read in a minute is 429; purges refuse a window under the
# retention (400), check their body (422) and answer {"window","removed"};
# the dashboard answers twelve months, scope all for the superuser and self
# for anyone else; OpenAPI lists the dashboard and leaves /security/* out.
# Ports from 21380-21419.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import json' 2>/dev/null || t_skip_all "python3 is not installed"
m8_init t_cissuer_audit

ISSUER=$top_builddir/src/fcgim8-issuer
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$D" ] || t_bail "programs not built ($ISSUER, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PLO=21380 PHI=21419
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
A_PW='Admin-Pass-1234!'
U_PW='Plain-User-Pass-1234!'
XFF=198.51.100.9

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
chmod 600 "$T_DIR/rsa.pem"

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }

KINDS=()
for kind in Postgres Mysql; do
    lk=${kind,,}
    if [ $kind = Mysql ]; then
        [[ $VERSION_OUT == *" mysql"* ]] || { t_skip "$lk: the issuer" "built --without-mariadb"; continue; }
        m8_have_mariadb || { t_skip "$lk: the issuer" "mariadb-server not installed"; continue; }
    else
        [[ $VERSION_OUT == *" postgres"* ]] || { t_skip "$lk: the issuer" "built --without-postgresql"; continue; }
        m8_have_pg || { t_skip "$lk: the issuer" "postgresql not installed"; continue; }
    fi
    KINDS+=("$kind")
done
[ ${#KINDS[@]} -gt 0 ] || t_done

declare -A DBPORT=() ISS=()
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    m8_pick_port $PLO $((PLO + 19)) || t_bail "no free port"
    DBPORT[$kind]=$M8_PORT
    m8_pick_port $((PLO + 20)) $PHI || t_bail "no free port"
    ISS[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "iss_$lk" fcgi-m8-unix.conf NAME="iss_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/iss_$lk.sock" || t_bail "cannot render the site"
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

login() { # BASE EMAIL PASSWORD: sets TOK
    m8_http POST "$1/user/login/access-token" --data-urlencode "username=$2" \
        --data-urlencode "password=$3"
    TOK=$(jf "j['access_token']")
}
jsend() { # METHOD URL TOKEN JSON
    m8_http "$1" "$2" -H "Authorization: Bearer $3" -H "X-Forwarded-For: $XFF" \
        -H 'Content-Type: application/json' --data-binary "$4"
}
get() { m8_http GET "$1" -H "Authorization: Bearer $2"; } # URL TOKEN

run_kind() {
    local kind=$1 lk=${1,,} d=$T_DIR/db-${1,,}
    local I=${ISS[$kind]}
    if [ $kind = Mysql ]; then m8_mariadb_start "$d" "${DBPORT[$kind]}"; else m8_pg_start "$d" "${DBPORT[$kind]}"; fi ||
        { t_report 1 "$lk: the $kind server starts"; return; }
    m8_db_create $kind "$d" "${DBPORT[$kind]}" $DBNAME $DBUSER "$PW" ||
        { t_report 1 "$lk: the issuer's database and user"; return; }
    m8_write_env "$T_DIR/iss_$lk.env" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
        ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY ACCESS_PRIVATE_KEY_FILE="$T_DIR/rsa.pem" \
        TOKEN_MODE=stateful TOKEN_STRICT_VALIDATION=false \
        SELECTED_DB=$kind DB_HOST=127.0.0.1 "DB_PORT=${DBPORT[$kind]}" DB_DATABASE=$DBNAME \
        DB_USER=$DBUSER "DB_PASSWORD=$PW" TABLES_PREFIX=auth \
        FIRST_SUPERUSER=$SU "FIRST_SUPERUSER_PASSWORD=$SU_PW" \
        'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
        'TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!' \
        'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!'
    (cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$T_DIR/iss_$lk.sock" \
        --env-file "$T_DIR/iss_$lk.env" --workers 2 --threads 2 --db-wait-tries 20 \
        --db-wait-interval 0.5 -- "$ISSUER") </dev/null >"$T_DIR/iss_$lk.out" 2>"$T_DIR/iss_$lk.log" &
    M8_PIDS+=("$!")
    ready() { m8_http GET "$1/user/health/"; [ "$H_STATUS" = 200 ]; }
    if ! m8_wait_for 30 ready "$I"; then
        t_report 1 "$lk: fcgim8-issuer is ready under fcgim8d"
        t_diag "$(tail -n 20 "$T_DIR/iss_$lk.log")"
        return
    fi
    t_report 0 "$lk: fcgim8-issuer is ready under fcgim8d behind nginx"

    login "$I" $SU "$SU_PW"
    local su_tok=$TOK su_id
    get "$I/user/profile/get/me/" "$su_tok"
    su_id=$(jf "j['id']")
    # ------------------------------------------------------------ rows
    jsend POST "$I/user/users/new_user/" "$su_tok" \
        "{\"email\":\"adm@example.com\",\"password\":\"$A_PW\",\"role\":\"admin\"}"
    local adm_id
    adm_id=$(jf "j['id']")
    t_is "$H_STATUS:$(jf "j['role']")" "200:admin" "$lk: the superuser creates an admin"
    jsend POST "$I/user/users/new_user/" "$su_tok" \
        "{\"email\":\"plain@example.com\",\"password\":\"$U_PW\"}"
    local u_id
    u_id=$(jf "j['id']")
    jsend PATCH "$I/user/users/update/$u_id/" "$su_tok" '{"full_name":"Plain User"}'
    t_is "$H_STATUS" 200 "$lk: ... edits a user"
    get "$I/user/security/audit-log" "$su_tok"
    t_is "$H_STATUS:$(jf "j['count'], [(d['action'], d['row_pk']) for d in j['data']]")" \
        "200:3 [('edit', '$u_id'), ('add', '$u_id'), ('add', '$adm_id')]" \
        "$lk: the superuser reads three rows, newest first"
    t_is "$(jf "j['data'][0]['actor_user_id'], j['data'][0]['actor_role'], j['data'][0]['table_name'], j['data'][0]['target_owner_id']")" \
        "$su_id superadmin auth_user $u_id" "$lk: a row names the actor, its role, the table and the owner"
    t_is "$(jf "list(j['data'][0].keys())")" \
        "['id', 'created_at', 'actor_user_id', 'actor_role', 'action', 'table_name', 'row_pk', 'target_owner_id']" \
        "$lk: the eight members of a row, in order"
    t_is "$(grep -c "event=audit audit_id=.* row_pk=$u_id .*client=$XFF" "$T_DIR/iss_$lk.log")" 2 \
        "$lk: each row's log line names the client address (X-Forwarded-For)"
    ! grep -q -e "$A_PW" -e "$U_PW" "$T_DIR/iss_$lk.log"
    t_report $? "$lk: no password in the issuer's log"

    login "$I" adm@example.com "$A_PW"
    local adm_tok=$TOK
    get "$I/user/security/audit-log?skip=0&limit=10" "$adm_tok"
    t_is "$H_STATUS:$H_BODY" '200:{"data":[],"count":0}' "$lk: an admin sees only the rows they authored (none)"
    get "$I/user/security/audit-log?limit=0" "$adm_tok"
    t_is "$H_STATUS:$(jf "j['detail'][0]['type'], j['detail'][0]['loc']")" \
        "422:greater_than_equal ['query', 'limit']" "$lk: limit=0 is 422"
    login "$I" plain@example.com "$U_PW"
    local u_tok=$TOK
    get "$I/user/security/audit-log" "$u_tok"
    t_is "$H_STATUS:$H_BODY" '403:{"detail":"The user doesn'"'"'t have enough privileges"}' \
        "$lk: a plain user may not read the audit log"
    local i n=0
    for i in $(seq 1 29); do
        get "$I/user/security/audit-log" "$adm_tok"
        [ "$H_STATUS" = 200 ] && n=$((n + 1))
    done
    get "$I/user/security/audit-log" "$adm_tok"
    t_is "$n:$H_STATUS:$H_BODY" '29:429:{"detail":"Too many requests. Try again later."}' \
        "$lk: the 31st read of the audit log in a minute is 429"

    # ------------------------------------------------------------ purges
    jsend POST "$I/user/security/audit-log/purge" "$su_tok" '{"window":"1m"}'
    t_is "$H_STATUS:$H_BODY" \
        '400:{"detail":"The window 1m is shorter than the minimum retention of 7776000 seconds"}' \
        "$lk: an audit purge under the retention is 400"
    jsend POST "$I/user/security/audit-log/purge" "$su_tok" '{"window":"2y"}'
    t_is "$H_STATUS:$(jf "j['detail'][0]['type']")" "422:enum" "$lk: an unknown window is 422"
    jsend POST "$I/user/security/audit-log/purge" "$adm_tok" '{"window":"3m"}'
    t_is "$H_STATUS" 403 "$lk: an admin who is no superuser may not purge"
    jsend POST "$I/user/security/audit-log/purge" "$su_tok" '{"window":"3m"}'
    t_is "$H_STATUS:$H_BODY" '200:{"window":"3m","removed":0}' "$lk: the audit purge of 3m answers"
    jsend POST "$I/user/security/api-keys/purge" "$su_tok" '{"window":"6m"}'
    t_is "$H_STATUS:$H_BODY" '200:{"window":"6m","removed":0}' "$lk: the API-key purge of 6m answers"
    m8_http DELETE "$I/user/users/delete/$u_id/" -H "Authorization: Bearer $su_tok" \
        -H "X-Forwarded-For: $XFF"
    t_is "$H_STATUS" 200 "$lk: the superuser deletes the user"
    get "$I/user/security/audit-log?limit=3" "$su_tok"
    t_is "$(jf "j['count'], [(d['action'], d['table_name']) for d in j['data']]")" \
        "6 [('delete', 'auth_user'), ('delete', 'auth_api_key'), ('delete', 'auth_privileged_action_audit')]" \
        "$lk: the deletion and both purges are audited, newest first"

    # ------------------------------------------------------------ dashboard
    get "$I/user/dashboard/users/activity/" "$su_tok"
    t_is "$H_STATUS:$(jf "j['range'], j['scope'], j['count'], len(j['data']), j['data'][-1]['new_users'], j['data'][-1]['active_users']")" \
        "200:month all 12 12 2 2" "$lk: the superuser's dashboard: twelve months, two accounts new and active this month"
    get "$I/user/dashboard/users/activity/current/" "$adm_tok"
    t_is "$H_STATUS:$(jf "j['scope'], j['count'], j['data'][0]['new_users'], j['data'][0]['active_users']")" \
        "200:self 1 1 1" "$lk: an admin's current month counts only themselves"
    m8_http GET "$I/user/openapi.json"
    t_is "$H_STATUS:$(jf "'/user/dashboard/users/activity/' in j['paths'] and not any('/security/' in p for p in j['paths'])")" \
        "200:True" "$lk: OpenAPI lists the dashboard and leaves /security/* out"
}

for kind in "${KINDS[@]}"; do
    run_kind "$kind"
done
t_done
