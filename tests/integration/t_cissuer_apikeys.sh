#!/bin/bash
# t_cissuer_apikeys.sh - API keys of fcgim8-issuer (doc/issuer.md#api-keys) as
# a consumer uses them: the issuer under fcgim8d behind a real nginx on a real
# PostgreSQL started here on loopback, with a consumer registry entry
# item-service holding api-key-introspection, and the test service of the
# consumer library (tests/unit/svc_fixture with M8T_API_KEYS=1: GET
# /api/keyed needs a reader key, POST /api/keyed a writer key; the example
# item-service has no X-API-Key route) configured for API-key introspection
# against the issuer (API_KEY_INTROSPECTION_ENABLED, API_KEY_INTROSPECTION_URL,
# INTERNAL_CLIENT_ID + PRIVATE_API_SECRET).  A writer creates keys bound to
# item-service through /profile/api-keys/ (the ak_ plaintext shown once); a
# read_write key reads and writes on the consumer, a read_only key reads and
# is refused on the writer route (403); after its owner revokes it the key is
# refused (401); a key without the consumer as audience is refused (401);
# verify on the issuer carries X-RateLimit-*.  Ports from 19460-19499.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import json' 2>/dev/null || t_skip_all "python3 is not installed"
m8_init t_cissuer_apikeys

ISSUER=$top_builddir/src/fcgim8-issuer
FX=$(m8_svc_bin fixture)
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$FX" ] && [ -x "$D" ] || t_bail "programs not built ($ISSUER, $FX, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
[[ $VERSION_OUT == *" postgres"* ]] || t_skip_all "built --without-postgresql"
m8_have_pg || t_skip_all "postgresql not installed"
PLO=19460 PHI=19499
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
W_PW='Writer-Pass-1234!'
ITEM_SECRET='item-service-secret-0123456789'
CONSUMERS="{\"item-service\":{\"secret\":\"$ITEM_SECRET\",\"scopes\":[\"api-key-introspection\"]},\"other\":{\"secret\":\"other-secret-0123456789\",\"scopes\":[\"api-key-introspection\"]}}"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
chmod 600 "$T_DIR/rsa.pem"

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }

m8_pick_port $PLO $((PLO + 9)) || t_bail "no free port"
DBPORT=$M8_PORT
m8_pick_port $((PLO + 10)) $((PLO + 24)) || t_bail "no free port"
I=http://127.0.0.1:$M8_PORT
m8_pick_port $((PLO + 25)) $PHI || t_bail "no free port"
C=http://127.0.0.1:$M8_PORT
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
m8_nginx_site "$NG" iss fcgi-m8-unix.conf NAME=iss LISTEN="${I#http://}" SERVER_NAME=localhost \
    SOCKET="$T_DIR/iss.sock" || t_bail "cannot render the site"
m8_nginx_site "$NG" cons fcgi-m8-unix.conf NAME=cons LISTEN="${C#http://}" SERVER_NAME=localhost \
    SOCKET="$T_DIR/cons.sock" || t_bail "cannot render the site"
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

m8_pg_start "$T_DIR/db" "$DBPORT" || t_bail "the PostgreSQL server does not start"
m8_db_create Postgres "$T_DIR/db" "$DBPORT" $DBNAME $DBUSER "$PW" || t_bail "the issuer's database"

m8_write_env "$T_DIR/iss.env" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
    ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY ACCESS_PRIVATE_KEY_FILE="$T_DIR/rsa.pem" \
    TOKEN_MODE=stateful TOKEN_STRICT_VALIDATION=false API_KEY_FORMAT=legacy \
    SELECTED_DB=Postgres DB_HOST=127.0.0.1 "DB_PORT=$DBPORT" DB_DATABASE=$DBNAME \
    DB_USER=$DBUSER "DB_PASSWORD=$PW" TABLES_PREFIX=auth \
    FIRST_SUPERUSER=$SU "FIRST_SUPERUSER_PASSWORD=$SU_PW" \
    'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
    'TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!' \
    'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!'
printf "PRIVATE_API_CONSUMERS='%s'\n" "$CONSUMERS" >>"$T_DIR/iss.env"
(cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$T_DIR/iss.sock" --env-file "$T_DIR/iss.env" \
    --workers 2 --threads 2 --db-wait-tries 20 --db-wait-interval 0.5 -- "$ISSUER") \
    </dev/null >"$T_DIR/iss.out" 2>"$T_DIR/iss.log" &
M8_PIDS+=("$!")
ready() { m8_http GET "$I/user/health/"; [ "$H_STATUS" = 200 ]; }
m8_wait_for 30 ready || { t_diag "$(tail -n 20 "$T_DIR/iss.log")"; t_bail "fcgim8-issuer is not ready"; }
t_report 0 "fcgim8-issuer with a consumer registry is ready under fcgim8d behind nginx"

# the consumer: API-key introspection against the issuer as item-service
m8_write_env "$T_DIR/cons.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    "JWKS_URI=$I/user/.well-known/jwks.json" API_KEY_INTROSPECTION_ENABLED=true \
    "API_KEY_INTROSPECTION_URL=$I/user/private/v1/api-keys/introspect" \
    INTERNAL_CLIENT_ID=item-service "PRIVATE_API_SECRET=$ITEM_SECRET"
m8_svc_listen cons fixture "unix:$T_DIR/cons.sock" "$T_DIR/cons.env" M8T_API_KEYS=1 -- --threads 2
m8_wait_sock "$T_DIR/cons.sock" 15 || { m8_svc_diag cons; t_bail "the consumer did not start"; }

login() { # EMAIL PASSWORD: sets TOK
    m8_http POST "$I/user/login/access-token" --data-urlencode "username=$1" \
        --data-urlencode "password=$2"
    TOK=$(jf "j['access_token']")
}
jpost() { # URL TOKEN JSON
    m8_http POST "$1" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
        --data-binary "$3"
}
keyed() { m8_http "$1" "$C/api/keyed" -H "X-API-Key: $2"; } # METHOD KEY: H_STATUS, H_BODY

login $SU "$SU_PW"
SU_TOK=$TOK
jpost "$I/user/users/new_user/" "$SU_TOK" \
    "{\"email\":\"writer@example.com\",\"password\":\"$W_PW\",\"role\":\"writer\",\"full_name\":\"W\"}"
t_is "$H_STATUS:$(jf "j['role']")" "200:writer" "the superuser creates a writer"
WID=$(jf "j['id']")
login writer@example.com "$W_PW"
W_TOK=$TOK

# ------------------------------------------------------------------ creation
jpost "$I/user/profile/api-keys/" "$W_TOK" \
    '{"name":"rw-key","access_mode":"read_write","audiences":["item-service"]}'
RW=$(jf "j['plaintext']")
RW_ID=$(jf "j['id']")
t_is "$H_STATUS:$(jf "j['access_mode'], j['audiences'], j['revoked']")" \
    "201:read_write ['item-service'] False" "the owner creates a read_write key bound to item-service: 201"
t_like "$RW" '^ak_[0-9a-f]{32}$' "the plaintext is ak_ and 32 hex digits"
jpost "$I/user/profile/api-keys/" "$W_TOK" '{"name":"ro-key","audiences":["item-service"]}'
RO=$(jf "j['plaintext']")
t_is "$H_STATUS:$(jf "j['access_mode']")" "201:read_only" "a key without access_mode is read_only"
jpost "$I/user/profile/api-keys/" "$W_TOK" '{"name":"local-key"}'
LOCAL=$(jf "j['plaintext']")
t_is "$H_STATUS" 201 "a key without audiences (issuer-local only)"
m8_http GET "$I/user/profile/api-keys/" -H "Authorization: Bearer $W_TOK"
t_is "$H_STATUS:$(jf "len(j), 'plaintext' in j[0], 'key_hash' in j[0]")" "200:3 False False" \
    "the owner's list: 3 keys, never the plaintext or the hash again"
HASHED=$(cd "$T_DIR" && PGPASSWORD=$PW psql -h 127.0.0.1 -p "$DBPORT" -U $DBUSER -d $DBNAME -Atc \
    "SELECT count(*) FROM auth_api_key WHERE key_hash = encode(sha256('$RW'::bytea), 'hex')" 2>/dev/null)
if [ -n "$HASHED" ]; then
    t_is "$HASHED" 1 "PostgreSQL holds the SHA-256 hex of the plaintext"
else
    t_skip "PostgreSQL holds the SHA-256 hex of the plaintext" "psql is not available"
fi

# ------------------------------------------------------------------ on the consumer
keyed GET "$RW"
t_is "$H_STATUS" 200 "the consumer: the read_write key reads (GET /api/keyed)"
t_is "$(jf "j['owner'], j['role']")" "$WID writer" "... as its owner, at the owner's role"
keyed POST "$RW"
t_is "$H_STATUS" 200 "the consumer: the read_write key of a writer writes (POST /api/keyed)"
keyed GET "$RO"
t_is "$H_STATUS" 200 "the consumer: the read_only key reads"
keyed POST "$RO"
t_is "$H_STATUS:$H_BODY" '403:{"detail":"The user doesn'"'"'t have enough privileges"}' \
    "the consumer: the read_only key is refused on the writer route (403)"
keyed GET "$LOCAL"
t_is "$H_STATUS" 401 "the consumer: a key not bound to item-service is refused (401)"
keyed GET "ak_00000000000000000000000000000000"
t_is "$H_STATUS" 401 "the consumer: an unknown key is refused (401)"

# ------------------------------------------------------------------ on the issuer
m8_http GET "$I/user/profile/api-keys/verify" -H "X-API-Key: $RW"
t_is "$H_STATUS:$(jf "j['id'], j['name']"):$(m8_hdr X-RateLimit-Limit)" "200:$RW_ID rw-key:60" \
    "verify on the issuer: 200, the key's id and name, X-RateLimit-Limit 60"
m8_http GET "$I/user/profile/api-keys/verify"
t_is "$H_STATUS:$(jf "j['detail'][0]['loc']")" "422:['header', 'x-api-key']" "verify without X-API-Key: 422"

# ------------------------------------------------------------------ revocation
m8_http DELETE "$I/user/profile/api-keys/$RW_ID" -H "Authorization: Bearer $W_TOK"
t_is "$H_STATUS:$H_BODY" '200:{"message":"API key revoked successfully"}' "the owner revokes the key"
keyed GET "$RW"
t_is "$H_STATUS:$H_BODY" '401:{"detail":"Invalid or expired API key"}' \
    "the consumer: the revoked key is refused (401)"
m8_http DELETE "$I/user/profile/api-keys/$RW_ID" -H "Authorization: Bearer $W_TOK"
t_is "$H_STATUS:$H_BODY" '409:{"detail":"API key is already revoked"}' "revoking it again: 409"
m8_http GET "$I/user/api-keys/by-user/$WID/" -H "Authorization: Bearer $SU_TOK"
t_is "$H_STATUS:$(jf "j['count'], sorted(d['status'] for d in j['data'])")" \
    "200:3 ['active', 'active', 'revoked']" "the superuser lists the writer's keys with their status"
t_done
