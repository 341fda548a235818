#!/bin/bash
# t_cissuer_apikey_scopes.sh - API-key scopes and the m8 key format end to end
# (doc/issuer.md#api-key-scopes-and-format), on PostgreSQL and on MariaDB:
# fcgim8-issuer under fcgim8d behind nginx; a consumer (tests/unit/svc_fixture
# with M8T_API_KEYS=1: GET /api/scoped takes a reader bearer token or an
# X-API-Key holding items:read, m8_app_require_scope) behind nginx; and
# fcgim8-gate behind nginx (contrib/nginx/gate-site.conf, auth_request) with a
# policy whose rules require scope=items:read.  A writer's key with items:read
# passes the consumer route and the gate rule; her unscoped key gets 403 with
# the scope named; her bearer token is not concerned; a key the superuser
# issues for her (POST /api-keys/by-user/{id}/) works for her; then, with the
# issuer's database stopped, a mistyped key is still answered 401 (by the
# issuer's verify, the consumer and the gate: no database was needed) while
# the well-formed key gets 503 (it needs the database).  Ports 19800-19819.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import json' 2>/dev/null || t_skip_all "python3 is not installed"
m8_init t_cissuer_apikey_scopes

ISSUER=$top_builddir/src/fcgim8-issuer
GATE=$top_builddir/src/fcgim8-gate
FX=$(m8_svc_bin fixture)
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$GATE" ] && [ -x "$FX" ] && [ -x "$D" ] ||
    t_bail "programs not built ($ISSUER, $GATE, $FX, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PLO=19800 PHI=19819
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
W_PW='Writer-Pass-1234!'
ITEM_SECRET='item-service-secret-0123456789'
CONSUMERS="{\"item-service\":{\"secret\":\"$ITEM_SECRET\",\"scopes\":[\"api-key-introspection\"]}}"

KINDS=()
for kind in Postgres Mysql; do
    lk=${kind,,}
    if [ $kind = Mysql ]; then
        [[ $VERSION_OUT == *" mysql"* ]] || { t_skip "$lk: scopes" "built --without-mariadb"; continue; }
        m8_have_mariadb || { t_skip "$lk: scopes" "mariadb-server not installed"; continue; }
    else
        [[ $VERSION_OUT == *" postgres"* ]] || { t_skip "$lk: scopes" "built --without-postgresql"; continue; }
        m8_have_pg || { t_skip "$lk: scopes" "postgresql not installed"; continue; }
    fi
    KINDS+=("$kind")
done
[ ${#KINDS[@]} -gt 0 ] || t_done

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
chmod 600 "$T_DIR/rsa.pem"
# the gate's document root: what nginx serves once the gate said yes
WWW=$T_DIR/www
mkdir -p "$WWW/items" "$WWW/mixed" && echo item-a >"$WWW/items/a.txt" && echo mixed-b >"$WWW/mixed/b.txt" ||
    t_bail "cannot write the document root"
chmod -R a+rX "$WWW" && chmod o+x "$T_DIR"
cat >"$T_DIR/gate.policy" <<'EOF'
# keys only, and only with items:read
items   GET  /items  apikey reader scope=items:read
# a bearer token as usual, or a key with items:read
mixed   GET  /mixed  reader cred=bearer,apikey scope=items:read
default deny
EOF

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }

declare -A DBPORT=() ISS=() CONS=() GW=()
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    m8_pick_port $PLO $((PLO + 3)) || t_bail "no free port"
    DBPORT[$kind]=$M8_PORT
    m8_pick_port $((PLO + 4)) $((PLO + 8)) || t_bail "no free port"
    ISS[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "iss_$lk" fcgi-m8-unix.conf NAME="iss_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/iss_$lk.sock" || t_bail "cannot render the site"
    m8_pick_port $((PLO + 9)) $((PLO + 13)) || t_bail "no free port"
    CONS[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "cons_$lk" fcgi-m8-unix.conf NAME="cons_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/cons_$lk.sock" || t_bail "cannot render the site"
    m8_pick_port $((PLO + 14)) $PHI || t_bail "no free port"
    GW[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "gate_$lk" gate-site.conf NAME="gate_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost ROOT="$WWW" GATE_SOCKET="$T_DIR/gate_$lk.sock" \
        PHP_SOCKET="$T_DIR/nophp.sock" || t_bail "cannot render the gate site"
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

login() { # BASE EMAIL PASSWORD: sets TOK
    m8_http POST "$1/user/login/access-token" --data-urlencode "username=$2" \
        --data-urlencode "password=$3"
    TOK=$(jf "j['access_token']")
}
jpost() { # URL TOKEN JSON
    m8_http POST "$1" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
        --data-binary "$3"
}
# typo KEY: the key with one digit of its random part changed
typo() { local k=$1 c=${1:12:1}; [ "$c" = 0 ] && c=1 || c=0; printf '%s' "${k:0:12}$c${k:13}"; }

run_kind() {
    local kind=$1 lk=${1,,} d=$T_DIR/db-${1,,}
    local I=${ISS[$kind]} C=${CONS[$kind]} G=${GW[$kind]}
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
    printf "PRIVATE_API_CONSUMERS='%s'\n" "$CONSUMERS" >>"$T_DIR/iss_$lk.env"
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

    # the consumer and the gate: introspection against this issuer as item-service
    m8_write_env "$T_DIR/cons_$lk.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
        "JWKS_URI=$I/user/.well-known/jwks.json" API_KEY_INTROSPECTION_ENABLED=true \
        "API_KEY_INTROSPECTION_URL=$I/user/private/v1/api-keys/introspect" \
        INTERNAL_CLIENT_ID=item-service "PRIVATE_API_SECRET=$ITEM_SECRET"
    m8_svc_listen "cons_$lk" fixture "unix:$T_DIR/cons_$lk.sock" "$T_DIR/cons_$lk.env" M8T_API_KEYS=1 \
        -- --threads 2
    m8_svc_listen "gate_$lk" "$GATE" "unix:$T_DIR/gate_$lk.sock" "$T_DIR/cons_$lk.env" \
        -- --policy "$T_DIR/gate.policy" --threads 2
    m8_wait_sock "$T_DIR/cons_$lk.sock" 15 || { m8_svc_diag "cons_$lk"; t_report 1 "$lk: the consumer starts"; return; }
    m8_wait_sock "$T_DIR/gate_$lk.sock" 15 || { m8_svc_diag "gate_$lk"; t_report 1 "$lk: the gate starts"; return; }
    chmod 666 "$T_DIR/gate_$lk.sock" "$T_DIR/cons_$lk.sock" "$T_DIR/iss_$lk.sock" 2>/dev/null

    login "$I" $SU "$SU_PW"
    local SU_TOK=$TOK
    jpost "$I/user/users/new_user/" "$SU_TOK" \
        "{\"email\":\"writer@example.com\",\"password\":\"$W_PW\",\"role\":\"writer\",\"full_name\":\"W\"}"
    local WID
    WID=$(jf "j['id']")
    t_is "$H_STATUS:$(jf "j['role']")" "200:writer" "$lk: the superuser creates a writer"
    login "$I" writer@example.com "$W_PW"
    local W_TOK=$TOK

    # ------------------------------------------------------------ keys
    jpost "$I/user/profile/api-keys/" "$W_TOK" \
        '{"name":"reader-key","audiences":["item-service"],"scopes":["items:read"]}'
    local RK RK_ID
    RK=$(jf "j['plaintext']")
    RK_ID=$(jf "j['id']")
    t_is "$H_STATUS:$(jf "j['scopes']")" "201:['items:read']" "$lk: the writer creates a key with scope items:read"
    t_like "$RK" '^m8ak_[0-9a-f]{40}$' "$lk: the plaintext is m8ak_ + 40 hex digits (the last 8 a checksum)"
    jpost "$I/user/profile/api-keys/" "$W_TOK" '{"name":"plain-key","audiences":["item-service"]}'
    local NK
    NK=$(jf "j['plaintext']")
    t_is "$H_STATUS:$(jf "'scopes' in j")" "201:False" "$lk: a key without scopes (no scopes member)"
    jpost "$I/user/api-keys/by-user/$WID/" "$SU_TOK" \
        '{"name":"issued-by-admin","audiences":["item-service"],"scopes":["items:read"]}'
    local AK
    AK=$(jf "j['plaintext']")
    t_is "$H_STATUS:$(jf "j['name'], j['scopes']")" "201:issued-by-admin ['items:read']" \
        "$lk: the superuser issues a key for the writer (POST /api-keys/by-user/{id}/)"
    jpost "$I/user/api-keys/by-user/$WID/" "$W_TOK" '{}'
    t_is "$H_STATUS" 403 "$lk: ... which a non-superuser may not"
    m8_http GET "$I/user/profile/api-keys/" -H "Authorization: Bearer $W_TOK"
    t_is "$(jf "sorted(k['name'] for k in j)")" "['issued-by-admin', 'plain-key', 'reader-key']" \
        "$lk: the writer's list holds the key the superuser issued"

    # ------------------------------------------------------------ the consumer route
    m8_http GET "$C/api/scoped" -H "X-API-Key: $RK"
    t_is "$H_STATUS:$(jf "j['owner']")" "200:$WID" "$lk: consumer: the key with items:read passes GET /api/scoped"
    m8_http GET "$C/api/scoped" -H "X-API-Key: $NK"
    t_is "$H_STATUS:$H_BODY" '403:{"detail":"The API key lacks the required scope: items:read"}' \
        "$lk: consumer: the key without it gets 403 naming the scope"
    m8_http GET "$C/api/scoped" -H "Authorization: Bearer $W_TOK"
    t_is "$H_STATUS:$(jf "j['owner']")" "200:$WID" "$lk: consumer: a bearer token is not concerned by the scope"
    m8_http GET "$C/api/scoped" -H "X-API-Key: $AK"
    t_is "$H_STATUS:$(jf "j['owner']")" "200:$WID" \
        "$lk: consumer: the superuser-issued key works for its owner"
    m8_http GET "$C/api/keyed" -H "X-API-Key: $NK"
    t_is "$H_STATUS" 200 "$lk: consumer: the unscoped key still passes a route that requires no scope"

    # ------------------------------------------------------------ the gate rule
    m8_http GET "$G/items/a.txt" -H "X-API-Key: $RK"
    t_is "$H_STATUS:$H_BODY" "200:item-a" "$lk: gate: the key with items:read passes the scope=items:read rule"
    m8_http GET "$G/items/a.txt" -H "X-API-Key: $NK"
    t_is "$H_STATUS:$H_BODY" '403:{"detail":"The API key lacks the required scope: items:read"}' \
        "$lk: gate: the key without it gets 403 naming the scope"
    m8_http GET "$G/mixed/b.txt" -H "Authorization: Bearer $W_TOK"
    t_is "$H_STATUS:$H_BODY" "200:mixed-b" "$lk: gate: a bearer token on the mixed rule is not concerned"
    m8_http GET "$G/mixed/b.txt" -H "X-API-Key: $AK"
    t_is "$H_STATUS:$H_BODY" "200:mixed-b" "$lk: gate: the superuser-issued key passes for its owner"

    # ------------------------------------------------------------ a typo, no database
    local TY
    TY=$(typo "$RK")
    m8_http GET "$I/user/profile/api-keys/verify" -H "X-API-Key: $TY"
    t_is "$H_STATUS" 401 "$lk: issuer: verify with a mistyped key: 401"
    if [ $kind = Mysql ]; then m8_mariadb_stop "$d"; else m8_pg_stop "$d"; fi
    m8_http GET "$I/user/profile/api-keys/verify" -H "X-API-Key: $RK"
    local good=$H_STATUS
    m8_http GET "$I/user/profile/api-keys/verify" -H "X-API-Key: $TY"
    t_is "$good:$H_STATUS:$H_BODY" '503:401:{"detail":"Invalid or expired API key"}' \
        "$lk: database stopped: the good key 503 (it needs the database), the mistyped one still 401 (it did not)"
    m8_http GET "$I/user/profile/api-keys/verify" -H "X-API-Key: ${RK:0:44}"
    t_is "$H_STATUS" 401 "$lk: database stopped: the key with its last digit cut: 401"
    t_like "$(grep -c 'event=api_key.malformed' "$T_DIR/iss_$lk.log")" '^[1-9]' \
        "$lk: the issuer logged event=api_key.malformed (no lookup)"
    m8_http GET "$C/api/scoped" -H "X-API-Key: $RK"
    good=$H_STATUS
    m8_http GET "$C/api/scoped" -H "X-API-Key: $TY"
    t_is "$good:$H_STATUS:$H_BODY" '503:401:{"detail":"Invalid or expired API key"}' \
        "$lk: consumer with the issuer's database down: the good key 503, the mistyped one 401"
    t_like "$(cat "${M8_SVC_LOG[cons_$lk]}")" '"reason":"malformed_key"' \
        "$lk: consumer: the mistyped key was refused as malformed_key (no introspection call)"
    m8_http GET "$G/items/a.txt" -H "X-API-Key: $TY"
    t_is "$H_STATUS" 401 "$lk: gate with the issuer's database down: the mistyped key 401"
}

for kind in "${KINDS[@]}"; do
    run_kind "$kind"
done
t_done
