#!/bin/bash
# t_cissuer_rotate.sh - access-key rotation with overlap, as
# doc/issuer.md#key-rotation describes it, seen by a consumer that never
# restarts.  fcgim8-issuer runs under fcgim8d behind nginx on a real
# PostgreSQL; examples/item-service runs under its own fcgim8d with JWKS_URI
# at the issuer and a small JWKS_CACHE_TTL_SECONDS, started once.  Key A
# signs; (1) the next key B is published next to A (SIGHUP), tokens are
# still signed with A; after the consumers' cache time (2) B signs and A is
# published as the old key (SIGHUP): a kid-B token works on the consumer at
# its first request and a kid-A token still works; (3) A is retired
# (SIGHUP): once the consumer's cache expires a kid-A token is refused and
# kid-B tokens work.  Ports from 19380-19419.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import json' 2>/dev/null || t_skip_all "python3 is not installed"
m8_init t_cissuer_rotate

ISSUER=$top_builddir/src/fcgim8-issuer
EX=$(m8_svc_bin example)
D=$top_builddir/src/fcgim8d
TOKEN=$top_builddir/src/fcgim8-token
[ -x "$ISSUER" ] && [ -x "$EX" ] && [ -x "$D" ] && [ -x "$TOKEN" ] ||
    t_bail "programs not built ($ISSUER, $EX, $D, $TOKEN)"
[[ $("$top_builddir/src/fcgim8-prestart" --version 2>&1) == *" postgres"* ]] ||
    t_skip_all "built --without-postgresql"
m8_have_pg || t_skip_all "postgresql is not installed"

PLO=19380 PHI=19419
PW='Db-Rotate-Pass-1234!x'
DBNAME=rotate_db
DBUSER=rotate_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
TTL=2 # the consumer's JWKS_CACHE_TTL_SECONDS

for k in A B; do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/$k.pem" 2>/dev/null &&
        openssl pkey -in "$T_DIR/$k.pem" -pubout -out "$T_DIR/$k.pub" 2>/dev/null ||
        t_bail "openssl cannot make an RSA key"
    chmod 600 "$T_DIR/$k.pem"
done
# the kids the issuer will derive (fcgim8-token kid)
KID_A=$("$TOKEN" kid "$T_DIR/A.pub")
KID_B=$("$TOKEN" kid "$T_DIR/B.pem")
[ -n "$KID_A" ] && [ -n "$KID_B" ] && [ "$KID_A" != "$KID_B" ] || t_bail "no kids ($KID_A, $KID_B)"

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }
# kid of a token (its header, not verified)
tkid() { "$PY" -c 'import base64,json,sys; h=sys.argv[1].split(".")[0]; print(json.loads(base64.urlsafe_b64decode(h+"="*(-len(h)%4)))["kid"])' "$1" 2>/dev/null; }

m8_pick_port $PLO $((PLO + 9)) || t_bail "no free port"
DBPORT=$M8_PORT
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
m8_pick_port $((PLO + 10)) $((PLO + 24)) || t_bail "no free port"
I=http://127.0.0.1:$M8_PORT
m8_nginx_site "$NG" iss fcgi-m8-unix.conf NAME=iss LISTEN="127.0.0.1:$M8_PORT" \
    SERVER_NAME=localhost SOCKET="$T_DIR/iss.sock" || t_bail "cannot render the site"
m8_pick_port $((PLO + 25)) $PHI || t_bail "no free port"
C=http://127.0.0.1:$M8_PORT
m8_nginx_site "$NG" cons fcgi-m8-unix.conf NAME=cons LISTEN="127.0.0.1:$M8_PORT" \
    SERVER_NAME=localhost SOCKET="$T_DIR/cons.sock" || t_bail "cannot render the site"
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

m8_pg_start "$T_DIR/db" $DBPORT || t_bail "PostgreSQL did not start"
m8_db_create Postgres "$T_DIR/db" $DBPORT $DBNAME $DBUSER "$PW" || t_bail "cannot create the database"

issuer_env() { # PRIVATE-PEM [OLD-PUBLIC-PEM]: the issuer's settings file
    local -a old=(-ACCESS_PUBLIC_KEY_OLD_FILE)
    [ -n "${2:-}" ] && old=("ACCESS_PUBLIC_KEY_OLD_FILE=$2")
    m8_write_env "$T_DIR/iss.env.new" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user \
        AUTH_SERVICE_ROLE=issuer ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
        "ACCESS_PRIVATE_KEY_FILE=$1" "${old[@]}" TOKEN_MODE=stateful \
        TOKEN_STRICT_VALIDATION=false SELECTED_DB=Postgres DB_HOST=127.0.0.1 "DB_PORT=$DBPORT" \
        DB_DATABASE=$DBNAME DB_USER=$DBUSER "DB_PASSWORD=$PW" TABLES_PREFIX=auth \
        FIRST_SUPERUSER=$SU "FIRST_SUPERUSER_PASSWORD=$SU_PW" \
        'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
        'TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!' \
        'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!' &&
        mv "$T_DIR/iss.env.new" "$T_DIR/iss.env" # one rename: never half a file
}

issuer_env "$T_DIR/A.pem"
(cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$T_DIR/iss.sock" --env-file "$T_DIR/iss.env" \
    --workers 2 --threads 2 --db-wait-tries 20 --db-wait-interval 0.5 -- "$ISSUER") \
    </dev/null >"$T_DIR/iss.out" 2>"$T_DIR/iss.log" &
ISS_PID=$!
M8_PIDS+=("$ISS_PID")
ready() { m8_http GET "$I/user/health/"; [ "$H_STATUS" = 200 ]; }
m8_wait_for 30 ready || t_bail "fcgim8-issuer is not ready: $(tail -n 20 "$T_DIR/iss.log")"

m8_write_env "$T_DIR/cons.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    "JWKS_URI=$I/user/.well-known/jwks.json" "JWKS_CACHE_TTL_SECONDS=$TTL" TOKEN_MODE=stateless
(cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$T_DIR/cons.sock" --env-file "$T_DIR/cons.env" \
    --workers 2 --threads 2 -- "$EX") </dev/null >"$T_DIR/cons.out" 2>"$T_DIR/cons.log" &
CONS_PID=$!
M8_PIDS+=("$CONS_PID")
m8_wait_sock "$T_DIR/cons.sock" 15 || t_bail "the consumer did not start: $(tail -n 20 "$T_DIR/cons.log")"

# jwks_kids: the kids the issuer serves, in order, space-separated
jwks_kids() { m8_http GET "$I/user/.well-known/jwks.json"; jf "' '.join(k['kid'] for k in j['keys'])"; }
jwks_is() { [ "$(jwks_kids)" = "$1" ]; }
# reload EXPECTED-KIDS: SIGHUP the issuer's fcgim8d, wait for the new generation's JWKS
reload() { kill -HUP "$ISS_PID" && m8_wait_for 60 jwks_is "$1"; }
# a fresh superuser access token (its kid in LAST_KID)
new_token() {
    m8_http POST "$I/user/login/access-token" --data-urlencode "username=$SU" \
        --data-urlencode "password=$SU_PW"
    LAST_TOK=$(jf "j['access_token']")
    LAST_KID=$(tkid "$LAST_TOK")
}
consumer() { m8_http GET "$C/api/profile" -H "Authorization: Bearer $1"; printf '%s' "$H_STATUS"; }

# -------------------------------------------------------------- key A
t_is "$(jwks_kids)" "$KID_A" "the issuer publishes key A only"
new_token
TOK_A=$LAST_TOK
t_is "$LAST_KID" "$KID_A" "a token is signed with key A (kid A)"
t_is "$(consumer "$TOK_A")" 200 "the consumer accepts the kid-A token"

# the session and security routes are in the service's table: the probe and
# get-current answer, the probe is left out of the OpenAPI document
m8_http GET "$I/user/security/superuser-probe" -H "Authorization: Bearer $TOK_A"
t_is "$H_STATUS:$H_BODY" '200:{"authorized":true}' "the superuser probe answers the superuser"
m8_http GET "$I/user/sessions/get-current/" -H "Authorization: Bearer $TOK_A"
t_is "$H_STATUS:$(jf "j['jwt_jti'] != '' and 'refresh_token_hash' not in j")" "200:True" \
    "GET /sessions/get-current/ answers the caller's session row"
m8_http GET "$I/user/openapi.json"
t_is "$H_STATUS:$(jf "'/user/sessions/get-current/' in j['paths'] and not any('/security/' in p for p in j['paths'])")" \
    "200:True" "OpenAPI lists the session routes and leaves the security routes out"

# -------------------------------------------------------------- 1. publish B ahead
issuer_env "$T_DIR/A.pem" "$T_DIR/B.pub"
reload "$KID_A $KID_B"
t_is "$?:$(jwks_kids)" "0:$KID_A $KID_B" "step 1: after SIGHUP the JWKS lists A (current) then B (next)"
new_token
t_is "$LAST_KID" "$KID_A" "step 1: tokens are still signed with A"
t_is "$(consumer "$LAST_TOK")" 200 "step 1: the consumer accepts them"
# a kid-A token the consumer has not seen yet (none of its workers has it in
# its verified-token cache) for step 3
new_token
TOK_A_UNSEEN=$LAST_TOK
# the procedure's wait: every consumer's cache (JWKS_CACHE_TTL_SECONDS) has
# expired since B was published, so every consumer holds B
sleep $((TTL + 2))
t_is "$(consumer "$TOK_A")" 200 "step 1: the first kid-A token still works"

# -------------------------------------------------------------- 2. switch to B
issuer_env "$T_DIR/B.pem" "$T_DIR/A.pub"
reload "$KID_B $KID_A"
t_is "$?:$(jwks_kids)" "0:$KID_B $KID_A" "step 2: after SIGHUP the JWKS lists B (current) then A (old)"
new_token
TOK_B=$LAST_TOK
t_is "$LAST_KID" "$KID_B" "step 2: new tokens are signed with B (kid B)"
t_is "$(consumer "$TOK_B")" 200 "step 2: the consumer accepts a kid-B token at its first request"
t_is "$(consumer "$TOK_A")" 200 "step 2: the consumer still accepts the kid-A token"
# spread TOK_A over the verified-token caches of the consumer's serving threads
for i in $(seq 1 24); do consumer "$TOK_A" >/dev/null; done
m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $TOK_B"
t_is "$H_STATUS" 200 "step 2: the issuer's own routes accept the kid-B token"
m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $TOK_A"
t_is "$H_STATUS" 200 "step 2: ... and still the kid-A token (A is the published old key)"

# -------------------------------------------------------------- 3. retire A
issuer_env "$T_DIR/B.pem"
reload "$KID_B"
t_is "$?:$(jwks_kids)" "0:$KID_B" "step 3: after SIGHUP the JWKS lists B only"
# the procedure's wait again: the consumer's cache expires and its next
# fetch has B only (a request before that would still verify the token)
sleep $((TTL + 3))
# TOK_A was verified many times before: it sits in the verified-token caches
# of the consumer's serving threads, which must not serve it past the JWKS
# change (doc/wire.md#verified-token-cache).  Asked first, before any token
# makes a worker verify in full (and so read the new set).
codes=""
for i in 1 2 3 4 5 6 7 8; do codes+="$(consumer "$TOK_A") "; done
t_is "$codes" "401 401 401 401 401 401 401 401 " \
    "step 3: the kid-A token the consumer had verified (and cached) before is refused too"
m8_http GET "$C/api/profile" -H "Authorization: Bearer $TOK_A_UNSEEN"
t_is "$H_STATUS:$H_BODY" '401:{"detail":"Could not validate credentials."}' \
    "step 3: once the consumer's cache expires a kid-A token is refused as invalid"
t_is "$(consumer "$TOK_B")" 200 "step 3: the kid-B token still works"
m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $TOK_A"
t_is "$H_STATUS:$H_BODY" '403:{"detail":"Could not validate credentials."}' \
    "step 3: the issuer's own routes refuse the kid-A token once A is retired"
new_token
t_is "$LAST_KID:$(consumer "$LAST_TOK")" "$KID_B:200" "step 3: a new kid-B token works"

# -------------------------------------------------------------- the consumer never restarted
kill -0 "$CONS_PID" 2>/dev/null
t_ok $? "the consumer's fcgim8d is still the one started first"
t_is "$(grep -c 'SIGHUP' "$T_DIR/cons.log")" 0 "the consumer was never reloaded"
t_is "$(grep -c 'reload: generation [0-9]* ready' "$T_DIR/iss.log")" 3 \
    "the issuer's fcgim8d started a new generation of workers for each of the 3 steps"
t_done
