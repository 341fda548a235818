#!/bin/bash
# t_stateful_cissuer.sh - t_stateful.sh against fcgim8-issuer instead of
# tests/tools/issuer.py (doc/issuer.md#operations): fcgim8-issuer under
# fcgim8d behind its own nginx on PostgreSQL (else MariaDB); the consumer
# pools are t_stateful.sh's, with INTERNAL_CLIENT_ID=consumer-1 (the issuer
# refuses legacy token-only private callers, doc/issuer.md#private-api).
# Tokens are real logins ("mint"), a revocation by jti is the logout of that
# session, a user-wide one the superuser's DELETE
# /sessions/delete-by-user/{id}/.  The checks that need issuer.py's fault
# injection, call counters or API key store are skipped with that reason.
# Ports 19570-19599.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
CISSUER=1
M8_STATEFUL_NAME=t_stateful_cissuer
PORTS_STATUS="19570 19574"
PORTS_SITES="19575 19589"
C_DBNAME=issuer_db
C_DBUSER=issuer_user
C_DBPW='Db-Test-Pass-1234!x'
C_SU=admin@example.com
C_SU_PW='Superuser-Pass-1234!'
C_U_PW='Reader-Pass-1234!'
C_SECRET='Test-Private-Api-Secret-0123456789abcdef!' # consumer-1's, as t_stateful.sh's pools send it

# c_login EMAIL PASSWORD: the login's body on stdout, its headers in $T_DIR/c_login.hdrs
c_login() {
    "$CURL" -s -m 15 -D "$T_DIR/c_login.hdrs" --data-urlencode "username=$1" \
        --data-urlencode "password=$2" "$IURL/user/login/access-token"
}
c_json() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" 2>/dev/null; }
c_jti() {
    "$PY" -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["jti"])' "$1"
}

cissuer_setup() {
    local kind version d port tok
    version=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
    if [[ $version == *" postgres"* ]] && m8_have_pg; then
        kind=Postgres
    elif [[ $version == *" mysql"* ]] && m8_have_mariadb; then
        kind=Mysql
    else
        t_skip_all "neither PostgreSQL nor MariaDB is usable (server or client support)"
    fi
    [ -x "$top_builddir/src/fcgim8-issuer" ] || t_bail "fcgim8-issuer not built"
    ID=$T_DIR/issuer
    mkdir -p "$ID" "$T_DIR/minted" "$T_DIR/cusers"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$ID/rsa.pem" 2>/dev/null &&
        openssl pkey -in "$ID/rsa.pem" -pubout -out "$ID/access_key.pub" 2>/dev/null ||
        t_bail "openssl cannot make an RSA key"
    chmod 600 "$ID/rsa.pem"
    d=$T_DIR/db
    m8_pick_port 19590 19594 || t_bail "no free port"
    port=$M8_PORT
    if [ $kind = Mysql ]; then m8_mariadb_start "$d" "$port"; else m8_pg_start "$d" "$port"; fi ||
        t_bail "the $kind server did not start"
    m8_db_create $kind "$d" "$port" $C_DBNAME $C_DBUSER "$C_DBPW" || t_bail "cannot create the issuer's database"
    m8_write_env "$ID/issuer.env" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
        ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY ACCESS_PRIVATE_KEY_FILE="$ID/rsa.pem" \
        TOKEN_MODE=stateful TOKEN_STRICT_VALIDATION=false TOKEN_ISSUER=https://auth.example.com \
        TOKEN_AUDIENCE=item-service SELECTED_DB=$kind DB_HOST=127.0.0.1 "DB_PORT=$port" \
        DB_DATABASE=$C_DBNAME DB_USER=$C_DBUSER "DB_PASSWORD=$C_DBPW" TABLES_PREFIX=auth \
        FIRST_SUPERUSER=$C_SU "FIRST_SUPERUSER_PASSWORD=$C_SU_PW" \
        'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
        'TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!' \
        'PRIVATE_API_SECRET=Issuer-Own-Private-Api-Secret-0123456789!' \
        "PRIVATE_API_CONSUMERS={\"consumer-1\":{\"secret\":\"$C_SECRET\",\"scopes\":[\"introspection\",\"event-stream\"]}}" \
        EVENT_SIGNING_ENABLED=true EVENT_STREAM_HEARTBEAT_SECONDS=1 LOGIN_IP_RATE_LIMIT_REQUESTS=100000
    # Five stateful pools and a lone service hold a stream each, all
    # connecting at once: 2 x (8 - 1) places (doc/fcgim8-issuer.8).
    m8_fcgim8d_start iss "$top_builddir/src/fcgim8-issuer" "$ID/issuer.env" -- --workers 2 \
        --threads 8 --db-wait-tries 20 --db-wait-interval 0.5
    local ng=$T_DIR/ngx_iss
    m8_nginx_prepare "$ng" || t_bail "cannot render contrib/nginx/standalone.conf"
    m8_pick_port 19595 19599 || t_bail "no free port"
    IURL=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$ng" iss fcgi-m8-unix.conf NAME=cissuer LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/iss.sock" || t_bail "cannot render the site"
    m8_nginx_start "$ng" || t_bail "nginx (issuer) does not start"
    c_ready() { [ "$("$CURL" -s -o /dev/null -w '%{http_code}' -m 5 "$IURL/user/health/")" = 200 ]; }
    m8_wait_for 30 c_ready || { t_diag "$(tail -n 20 "$T_DIR/iss.log")"; t_bail "fcgim8-issuer is not ready"; }
    INTRO=$IURL/user/private/v1/jti-status
    STATEFUL_EXTRA=(INTERNAL_CLIENT_ID=consumer-1)
    tok=$(c_login "$C_SU" "$C_SU_PW" | c_json "j['access_token']")
    [ -n "$tok" ] || t_bail "the superuser cannot log in"
    printf '%s\n' "$tok" >"$T_DIR/su.tok"
    C_DEFAULT_ID=$(new_user_id) && [ -n "$C_DEFAULT_ID" ] || t_bail "cannot create the default user"
    t_diag "fcgim8-issuer on $kind at $IURL"
}

new_user_id() { # a new reader at the issuer: its id (and its e-mail in $T_DIR/cusers/ID)
    local mail id
    mail=reader.$("$PY" -c 'import uuid; print(uuid.uuid4().hex[:12])')@example.com
    id=$("$CURL" -s -m 15 -H "Authorization: Bearer $(cat "$T_DIR/su.tok")" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"email\":\"$mail\",\"password\":\"$C_U_PW\",\"role\":\"reader\"}" \
        "$IURL/user/users/new_user/" | c_json "j['id']")
    [ -n "$id" ] || return 1
    printf '%s\n' "$mail" >"$T_DIR/cusers/$id"
    printf '%s\n' "$id"
}

mint() { # [{"sub":ID}]: a fresh access token (a login) of the default user or of ID
    local sub tok mail cookie
    sub=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1] or "{}").get("sub") or "")' "${1:-}")
    mail=$(cat "$T_DIR/cusers/${sub:-$C_DEFAULT_ID}") || return 1
    tok=$(c_login "$mail" "$C_U_PW" | c_json "j['access_token']")
    [ -n "$tok" ] || return 1
    cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: refresh_token=\([^;]*\);.*/\1/p' "$T_DIR/c_login.hdrs" | tr -d '\r')
    printf '%s\n%s\n' "$tok" "$cookie" >"$T_DIR/minted/$(c_jti "$tok")"
    printf '%s\n' "$tok"
}

ctl() { # /revoke {"jti"} | {"user_id"}: the logout of that session, or every session of the user deleted
    local jti uid tok cookie
    [ "$1" = /revoke ] || return 1
    jti=$(c_json "j.get('jti') or ''" <<<"$2")
    uid=$(c_json "j.get('user_id') or ''" <<<"$2")
    if [ -n "$jti" ] && [ -f "$T_DIR/minted/$jti" ]; then
        { read -r tok; read -r cookie; } <"$T_DIR/minted/$jti"
        "$CURL" -s -m 15 -o /dev/null -X POST -H "Authorization: Bearer $tok" \
            -H "Cookie: refresh_token=$cookie" "$IURL/user/login/logout/"
    elif [ -n "$uid" ]; then
        "$CURL" -s -m 15 -o /dev/null -X DELETE -H "Authorization: Bearer $(cat "$T_DIR/su.tok")" \
            "$IURL/user/sessions/delete-by-user/$uid/"
    fi
    printf '{}\n'
}

stat_count() { printf 'n/a\n'; } # fcgim8-issuer keeps no per-route call counter for tests

. "$top_srcdir/tests/integration/t_stateful.sh"
