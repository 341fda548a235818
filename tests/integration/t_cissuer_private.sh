#!/bin/bash
# t_cissuer_private.sh - the private API of fcgim8-issuer (doc/issuer.md#private-api)
# as consumers use it: the issuer under fcgim8d behind a real nginx on a real
# PostgreSQL and a real MariaDB started here on loopback, and the example
# service as a STATEFUL consumer pointed at it (INTROSPECTION_URL, no event
# stream, no revocation cache), once with the bootstrap pair
# (INTERNAL_CLIENT_ID + PRIVATE_API_SECRET) and once with service tokens
# (SERVICE_TOKEN_EXCHANGE_ENABLED).  On each database: consumer
# authentication failures answer the exact texts (unknown consumer, wrong
# secret, legacy token-only: 401 Unauthorized; missing scope: 403
# Forbidden); the service-token exchange; a user created through
# /private/users/; a token works on both consumers; after logout at the
# issuer both refuse it (401 Token has been revoked.,
# doc/responses.md#auth-failures); a password change
# revokes the next token too (v2: the generation moved on); a consumer with
# a wrong secret fails closed (503); the private routes are not in OpenAPI.
# Ports from 19940-19979.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import json' 2>/dev/null || t_skip_all "python3 is not installed"
m8_init t_cissuer_private

ISSUER=$top_builddir/src/fcgim8-issuer
EX=$(m8_svc_bin example)
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$EX" ] && [ -x "$D" ] || t_bail "programs not built ($ISSUER, $EX, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PLO=19940 PHI=19979
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
U_PW='Private-User-Pass-1234!'
U_PW2='Private-User-Pass-5678!'
ITEM_SECRET='item-service-secret-0123456789'
TOKSVC_SECRET='token-service-secret-0123456789'
NOSCOPE_SECRET='no-scope-secret-0123456789'
# the token service's secret in the registry's hashed form
TOKSVC_HASH=$("$PY" -c 'import hashlib,os,sys; s=os.urandom(16); print("sha256$%s$%s" % (s.hex(), hashlib.sha256(s+sys.argv[1].encode()).hexdigest()))' "$TOKSVC_SECRET")
CONSUMERS="{\"item-service\":{\"secret\":\"$ITEM_SECRET\",\"scopes\":[\"introspection\",\"user-create\"]},\"token-service\":{\"secret\":\"$TOKSVC_HASH\",\"scopes\":[\"introspection\"]},\"no-scope\":{\"secret\":\"$NOSCOPE_SECRET\",\"scopes\":[\"event-stream\"]}}"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
chmod 600 "$T_DIR/rsa.pem"

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }
cookie_of() { sed -n 's/^[Ss]et-[Cc]ookie: refresh_token=\([^;]*\);.*/\1/p' "$1" | tr -d '\r' | tail -n 1; }

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

# consumers: b = bootstrap pair, t = service tokens, w = a wrong secret
declare -A DBPORT=() ISS=() CONS=()
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    m8_pick_port $PLO $((PLO + 9)) || t_bail "no free port"
    DBPORT[$kind]=$M8_PORT
    m8_pick_port $((PLO + 10)) $((PLO + 19)) || t_bail "no free port"
    ISS[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "iss_$lk" fcgi-m8-unix.conf NAME="iss_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/iss_$lk.sock" || t_bail "cannot render the site"
    for c in b t w; do
        m8_pick_port $((PLO + 20)) $PHI || t_bail "no free port"
        CONS[$kind$c]=http://127.0.0.1:$M8_PORT
        m8_nginx_site "$NG" "cons_$lk$c" fcgi-m8-unix.conf NAME="cons_$lk$c" \
            LISTEN="127.0.0.1:$M8_PORT" SERVER_NAME=localhost SOCKET="$T_DIR/cons_$lk$c.sock" ||
            t_bail "cannot render the site"
    done
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

login() { # BASE EMAIL PASSWORD
    m8_http POST "$1/user/login/access-token" --data-urlencode "username=$2" \
        --data-urlencode "password=$3"
}
# priv BASE PATH BODY [curl args]: a private call (JSON body)
priv() {
    local base=$1 path=$2 body=$3
    shift 3
    m8_http POST "$base/user/private$path" -H 'Content-Type: application/json' \
        --data-binary "$body" "$@"
}

issuer_env() { # FILE KIND
    local kind=$2
    m8_write_env "$1" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
        ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY ACCESS_PRIVATE_KEY_FILE="$T_DIR/rsa.pem" \
        TOKEN_MODE=stateful TOKEN_STRICT_VALIDATION=false \
        SELECTED_DB=$kind DB_HOST=127.0.0.1 "DB_PORT=${DBPORT[$kind]}" DB_DATABASE=$DBNAME \
        DB_USER=$DBUSER "DB_PASSWORD=$PW" TABLES_PREFIX=auth \
        FIRST_SUPERUSER=$SU "FIRST_SUPERUSER_PASSWORD=$SU_PW" \
        'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
        'TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!' \
        'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!' \
        SERVICE_TOKEN_TTL_SECONDS=60
    # single quotes: the value is taken as written (the sha256$ form keeps its '$')
    printf "PRIVATE_API_CONSUMERS='%s'\n" "$CONSUMERS" >>"$1"
}

# consumer KIND LETTER [KEY=VALUE...]: the example service, stateful against the issuer
consumer() {
    local kind=$1 c=$2 lk=${1,,}
    shift 2
    local I=${ISS[$kind]}
    m8_write_env "$T_DIR/cons_$lk$c.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
        "JWKS_URI=$I/user/.well-known/jwks.json" TOKEN_MODE=stateful \
        "INTROSPECTION_URL=$I/user/private/v1/jti-status" REVOCATION_CACHE_TTL_SECONDS=0 "$@"
    m8_svc_listen "cons_$lk$c" example "unix:$T_DIR/cons_$lk$c.sock" "$T_DIR/cons_$lk$c.env" -- --threads 2
    m8_wait_sock "$T_DIR/cons_$lk$c.sock" 15 || m8_svc_diag "cons_$lk$c"
}

run_kind() {
    local kind=$1 lk=${1,,} d=$T_DIR/db-${1,,}
    local I=${ISS[$kind]} CB=${CONS[${1}b]} CT=${CONS[${1}t]} CW=${CONS[${1}w]}
    if [ $kind = Mysql ]; then m8_mariadb_start "$d" "${DBPORT[$kind]}"; else m8_pg_start "$d" "${DBPORT[$kind]}"; fi ||
        { t_report 1 "$lk: the $kind server starts"; return; }
    m8_db_create $kind "$d" "${DBPORT[$kind]}" $DBNAME $DBUSER "$PW" ||
        { t_report 1 "$lk: the issuer's database and user"; return; }
    issuer_env "$T_DIR/iss_$lk.env" $kind
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
    t_report 0 "$lk: fcgim8-issuer with a consumer registry is ready under fcgim8d behind nginx"

    # ------------------------------------------------------------ consumer authentication
    local v2='{"jti":"x","expected_user_id":"6f1c2a4e-0000-4000-8000-000000000001","schema_version":"2"}'
    priv "$I" /v1/jti-status "$v2" -H 'X-Internal-Client: nobody' -H "X-Internal-Token: $ITEM_SECRET"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Unauthorized"}' "$lk: unknown consumer: 401 Unauthorized"
    priv "$I" /v1/jti-status "$v2" -H 'X-Internal-Client: item-service' -H 'X-Internal-Token: wrong-secret'
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Unauthorized"}' "$lk: wrong secret: 401 Unauthorized"
    priv "$I" /v1/jti-status "$v2" -H "X-Internal-Token: $ITEM_SECRET"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Unauthorized"}' "$lk: the legacy token-only shape: 401 Unauthorized"
    priv "$I" /v1/jti-status "$v2" -H 'X-Internal-Client: no-scope' -H "X-Internal-Token: $NOSCOPE_SECRET"
    t_is "$H_STATUS:$H_BODY" '403:{"detail":"Forbidden"}' "$lk: missing scope: 403 Forbidden"
    priv "$I" /v1/jti-status "$v2" -H 'X-Internal-Client: item-service' -H "X-Internal-Token: $ITEM_SECRET"
    t_is "$H_STATUS:$H_BODY" '200:{"active":false,"schema_version":"2"}' \
        "$lk: the bootstrap pair: a jti never issued is inactive"
    priv "$I" /v1/service-token '{"scopes":["introspection"]}' -H 'X-Internal-Client: token-service' \
        -H "X-Internal-Token: $TOKSVC_SECRET"
    t_is "$H_STATUS:$(jf "j['token_type'],j['expires_in'],j['scope'],list(j)")" \
        "200:bearer 60 introspection ['access_token', 'token_type', 'expires_in', 'scope']" \
        "$lk: the exchange (a sha256\$ registry secret) answers a 60 s token"
    local st
    st=$(jf "j['access_token']")
    priv "$I" /v1/jti-status "$v2" -H "Authorization: Bearer $st"
    t_is "$H_STATUS" 200 "$lk: the service token authenticates jti-status"
    priv "$I" /v1/jti-status "$v2" -H "Authorization: Bearer ${st}x" -H 'X-Internal-Client: item-service' \
        -H "X-Internal-Token: $ITEM_SECRET"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Unauthorized"}' \
        "$lk: a bad bearer is 401 even next to a valid pair (bearer first)"
    m8_http GET "$I/user/openapi.json"
    t_is "$H_STATUS:$(grep -c '/private/' <<<"$H_BODY")" "200:0" "$lk: the private routes are not in OpenAPI"

    # ------------------------------------------------------------ a user through /private/users/
    local umail=private.$lk@example.com
    priv "$I" /users/ "{\"email\":\"$umail\",\"password\":\"$U_PW\",\"full_name\":\"Private User\",\"is_verified\":true}" \
        -H 'X-Internal-Client: item-service' -H "X-Internal-Token: $ITEM_SECRET"
    t_is "$H_STATUS:$(jf "j['email'],j['role'],j['email_verified']")" "200:$umail user True" \
        "$lk: /private/users/ creates a verified user"
    priv "$I" /users/ "{\"email\":\"$umail\",\"password\":\"$U_PW\",\"full_name\":\"Again\"}" \
        -H 'X-Internal-Client: item-service' -H "X-Internal-Token: $ITEM_SECRET"
    t_is "$H_STATUS:$H_BODY" '409:{"detail":"The user with this email already exists in the system."}' \
        "$lk: /private/users/ with a taken email: 409"

    # ------------------------------------------------------------ stateful consumers
    consumer $kind b INTERNAL_CLIENT_ID=item-service "PRIVATE_API_SECRET=$ITEM_SECRET"
    consumer $kind t INTERNAL_CLIENT_ID=token-service "PRIVATE_API_SECRET=$TOKSVC_SECRET" \
        SERVICE_TOKEN_EXCHANGE_ENABLED=true
    consumer $kind w INTERNAL_CLIENT_ID=item-service 'PRIVATE_API_SECRET=not-the-consumer-secret'
    login "$I" "$umail" "$U_PW"
    t_is "$H_STATUS" 200 "$lk: the user logs in at the issuer"
    local tok cookie
    tok=$(jf "j['access_token']")
    cookie=$(cookie_of "$T_DIR/h.hdrs")
    m8_http GET "$CB/api/profile" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$(jf "j['email']")" "200:$umail" \
        "$lk: the stateful consumer (bootstrap pair) accepts the token after asking jti-status"
    m8_http GET "$CT/api/profile" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$(jf "j['email']")" "200:$umail" \
        "$lk: the stateful consumer (service token) accepts the token"
    m8_http GET "$CW/api/profile" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$H_BODY" '503:{"detail":"Token revocation check unavailable."}' \
        "$lk: a consumer with a wrong secret gets 401 from the issuer and fails closed (503)"

    # ------------------------------------------------------------ logout revokes
    m8_http POST "$I/user/login/logout/" -H "Authorization: Bearer $tok" -H "Cookie: refresh_token=$cookie"
    t_is "$H_STATUS" 200 "$lk: logout at the issuer"
    m8_http GET "$CB/api/profile" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Token has been revoked."}' \
        "$lk: after logout the consumer (bootstrap pair) refuses the token"
    m8_http GET "$CT/api/profile" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Token has been revoked."}' \
        "$lk: after logout the consumer (service token) refuses the token"

    # ------------------------------------------------------------ a password change revokes (v2 generation)
    login "$I" "$umail" "$U_PW"
    local tok2 sub
    tok2=$(jf "j['access_token']")
    sub=$("$PY" -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["sub"])' "$tok2")
    m8_http GET "$CB/api/profile" -H "Authorization: Bearer $tok2"
    t_is "$H_STATUS" 200 "$lk: a new login works on the consumer"
    priv "$I" /v1/jti-status '{"jti":"'"$("$PY" -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["jti"])' "$tok2")"'","expected_user_id":"'"$sub"'","schema_version":"2"}' \
        -H 'X-Internal-Client: item-service' -H "X-Internal-Token: $ITEM_SECRET"
    t_is "$H_STATUS:$(jf "j['active'],j['user_id'],j['auth_generation']")" \
        "200:True $sub 1" "$lk: jti-status v2 answers active with the owner's generation 1"
    m8_http PATCH "$I/user/profile/me/password/" -H "Authorization: Bearer $tok2" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"current_password\":\"$U_PW\",\"new_password\":\"$U_PW2\"}"
    t_is "$H_STATUS" 200 "$lk: the user changes the password"
    m8_http GET "$CB/api/profile" -H "Authorization: Bearer $tok2"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Token has been revoked."}' \
        "$lk: after the password change the consumer refuses the older token"
    m8_http GET "$CT/api/profile" -H "Authorization: Bearer $tok2"
    t_is "$H_STATUS" 401 "$lk: ... on the service-token consumer too"
    login "$I" "$umail" "$U_PW2"
    local tok3
    tok3=$(jf "j['access_token']")
    m8_http GET "$CT/api/profile" -H "Authorization: Bearer $tok3"
    t_is "$H_STATUS" 200 "$lk: a login with the new password works on the consumer (generation 2)"
}

for kind in "${KINDS[@]}"; do
    run_kind "$kind"
done
t_done
