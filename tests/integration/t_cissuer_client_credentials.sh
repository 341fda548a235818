#!/bin/bash
# t_cissuer_client_credentials.sh - service accounts and the OAuth2
# client-credentials grant of fcgim8-issuer
# (doc/issuer.md#service-accounts-and-client-credentials) as a machine uses
# them: the issuer under fcgim8d behind a real nginx, on a real PostgreSQL and
# a real MariaDB started here on loopback, and the example item-service as a
# consumer taking its keys from the issuer's JWKS_URI.  On each database: the
# superuser creates a service account (the client secret shown once); the
# account gets a token with curl, by the form and by HTTP Basic (no refresh
# token); PyJWT verifies it against the served JWKS (sub, role,
# principal_type); item-service accepts it on /api/profile and applies its
# role (a reader is refused POST /api/items/); a wrong secret, both methods at
# once and a password login as the account are refused; after deactivation
# the grant answers invalid_grant; OpenAPI lists the routes, the token
# endpoint's form fields and the listings' query parameters.  Ports from 21540-21599.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import jwt, cryptography' 2>/dev/null || t_skip_all "python3-jwt is not installed"
m8_init t_cissuer_client_credentials

ISSUER=$top_builddir/src/fcgim8-issuer
EX=$(m8_svc_bin example)
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$EX" ] && [ -x "$D" ] || t_bail "programs not built ($ISSUER, $EX, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PLO=21540 PHI=21599
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'

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

declare -A DBPORT=() ISS=() CONS=()
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    m8_pick_port $PLO $((PLO + 19)) || t_bail "no free port"
    DBPORT[$kind]=$M8_PORT
    m8_pick_port $((PLO + 20)) $((PLO + 39)) || t_bail "no free port"
    ISS[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "iss_$lk" fcgi-m8-unix.conf NAME="iss_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/iss_$lk.sock" || t_bail "cannot render the site"
    m8_pick_port $((PLO + 40)) $PHI || t_bail "no free port"
    CONS[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "cons_$lk" fcgi-m8-unix.conf NAME="cons_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/cons_$lk.sock" || t_bail "cannot render the site"
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

run_kind() {
    local kind=$1 lk=${1,,} d=$T_DIR/db-${1,,}
    local I=${ISS[$kind]} C=${CONS[$kind]}
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

    m8_http POST "$I/user/login/access-token" --data-urlencode "username=$SU" \
        --data-urlencode "password=$SU_PW"
    local su_tok
    su_tok=$(jf "j['access_token']")
    m8_http POST "$I/user/service-accounts/" -H "Authorization: Bearer $su_tok" \
        -H 'Content-Type: application/json' \
        --data-binary '{"name":"data-pipeline","description":"nightly ETL job","role":"reader"}'
    local id secret
    id=$(jf "j['client_id']")
    secret=$(jf "j['client_secret']")
    t_is "$H_STATUS:$(jf "j['role'], j['is_active']")" "201:reader True" \
        "$lk: the superuser creates a reader service account (201)"
    t_like "$secret" '^m8sa_[A-Za-z0-9_-]{43}$' "$lk: the client secret is shown once (m8sa_ and 43 base64url)"
    m8_http POST "$I/user/users/new_user/" -H "Authorization: Bearer $su_tok" \
        -H 'Content-Type: application/json' --data-binary \
        '{"email":"data-pipeline@Service-Account.internal","password":"Some-Pass-1234!","full_name":"x"}'
    t_is "$H_STATUS:$(jf "j['detail'][0]['type'], j['detail'][0]['loc']")" "422:value_error ['body', 'email']" \
        "$lk: no user account may take an address of the service accounts' domain (422)"
    m8_http GET "$I/user/service-accounts/$id/" -H "Authorization: Bearer $su_tok"
    t_is "$H_STATUS:$(jf "'client_secret' in j")" "200:False" "$lk: reading it again never shows the secret"
    m8_http GET "$I/user/openapi.json"
    t_is "$(jf "all(p in j['paths'] for p in ('/user/service-accounts/', '/user/service-accounts/{user_id}/deactivate/'))")" \
        True "$lk: OpenAPI lists the service-account routes"
    # the token endpoint's form and the listings' query parameters (m8_app_describe_route)
    t_is "$(jf "(lambda s: (sorted(s['properties']), s['required'], s['properties']['password'].get('format')))(j['paths']['/user/login/access-token']['post']['requestBody']['content']['application/x-www-form-urlencoded']['schema'])")" \
        "(['client_id', 'client_secret', 'grant_type', 'password', 'scope', 'username'], ['username', 'password'], 'password')" \
        "$lk: OpenAPI gives the token endpoint's form fields (username and password required, the password masked)"
    t_is "$(jf "[(p['name'], p['in'], p['schema']['type'], p['schema'].get('default')) for p in j['paths']['/user/users/']['get']['parameters']]")" \
        "[('skip', 'query', 'integer', 0), ('limit', 'query', 'integer', 100)]" \
        "$lk: OpenAPI gives GET /users/ its skip and limit query parameters"
    t_is "$(jf "[(p['name'], p['required']) for p in j['paths']['/user/google-api/login-url/']['get']['parameters']]")" \
        "[('redirect_target', True), ('code_challenge', True)]" \
        "$lk: OpenAPI gives the SSO login URL its required query parameters"

    # -------------------------------------------------------------- the grant
    m8_http POST "$I/user/login/access-token" --data-urlencode grant_type=client_credentials \
        --data-urlencode "client_id=$id" --data-urlencode "client_secret=$secret"
    local tok
    tok=$(jf "j['access_token']")
    t_is "$H_STATUS:$(jf "j['token_type'], j['expires_in'], 'refresh_token' in j")" \
        "200:bearer 1800 False" "$lk: client credentials in the form: a bearer token, expires_in, no refresh token"
    t_is "$(grep -ci '^set-cookie:' "$T_DIR/h.hdrs"):$(m8_hdr Cache-Control)" "0:no-store" \
        "$lk: ... no cookie, Cache-Control no-store"
    m8_http POST "$I/user/login/access-token" -u "$id:$secret" --data-urlencode grant_type=client_credentials
    local tok_b
    tok_b=$(jf "j['access_token']")
    t_is "$H_STATUS:$(jf "j['token_type']")" "200:bearer" "$lk: client credentials by HTTP Basic (curl -u): 200"
    m8_http GET "$I/user/.well-known/jwks.json"
    printf '%s' "$H_BODY" >"$T_DIR/jwks_$lk.json"
    t_is "$("$PY" - "$T_DIR/jwks_$lk.json" "$tok" "$tok_b" <<'PYEOF'
import json, sys, jwt
jwks = json.load(open(sys.argv[1]))
key = jwt.PyJWK(jwks["keys"][0])
out = []
for t in sys.argv[2:]:
    c = jwt.decode(t, key.key, algorithms=["RS256"])
    out.append("%s %s %s %s %s" % (c["sub"] == c["client_id"], c["type"], c["role"],
                                   c["principal_type"], c["email"]))
print(" | ".join(out))
PYEOF
)" "True access reader service_account data-pipeline@service-account.internal | True access reader service_account data-pipeline@service-account.internal" \
        "$lk: PyJWT verifies both tokens with the served JWKS (sub = client_id, role, principal_type)"

    m8_write_env "$T_DIR/cons_$lk.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
        "JWKS_URI=$I/user/.well-known/jwks.json" TOKEN_MODE=stateless
    m8_svc_listen "cons_$lk" example "unix:$T_DIR/cons_$lk.sock" "$T_DIR/cons_$lk.env" -- --threads 2
    m8_wait_sock "$T_DIR/cons_$lk.sock" 15 || m8_svc_diag "cons_$lk"
    m8_http GET "$C/api/profile" -H "Authorization: Bearer $tok_b"
    t_is "$H_STATUS:$(jf "j['email'], j['role']")" "200:data-pipeline@service-account.internal reader" \
        "$lk: item-service (keys from the issuer's JWKS_URI) accepts the service account's token"
    m8_http POST "$C/api/items/" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
        --data-binary '{"name":"x"}'
    t_is "$H_STATUS" 403 "$lk: ... and applies its role (a reader may not POST /api/items/)"

    # -------------------------------------------------------------- refusals
    m8_http POST "$I/user/login/access-token" -u "$id:m8sa_wrong" --data-urlencode grant_type=client_credentials
    t_is "$H_STATUS:$(jf "j['error']"):$(m8_hdr WWW-Authenticate)" \
        '401:invalid_client:Basic realm="fcgim8-issuer"' "$lk: a wrong secret: 401 invalid_client with WWW-Authenticate"
    m8_http POST "$I/user/login/access-token" -u "$id:$secret" --data-urlencode grant_type=client_credentials \
        --data-urlencode "client_id=$id" --data-urlencode "client_secret=$secret"
    t_is "$H_STATUS:$(jf "j['error']")" "400:invalid_request" "$lk: Basic and form credentials at once: 400 invalid_request"
    m8_http POST "$I/user/login/access-token" --data-urlencode "username=data-pipeline@service-account.internal" \
        --data-urlencode "password=$secret"
    t_is "$H_STATUS:$H_BODY" '400:{"detail":"Invalid credentials or inactive user"}' \
        "$lk: a password login as the account: the generic credential error"

    # its own account is the superuser's to manage (doc/issuer.md#service-accounts-and-client-credentials)
    m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$(jf "j['email']")" "200:data-pipeline@service-account.internal" \
        "$lk: the account's token reads /profile/get/me/"
    local sa_d='{"detail":"A service account is managed by the superuser under /service-accounts/"}'
    m8_http PATCH "$I/user/profile/update/me/" -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/json' --data-binary '{"full_name":"renamed"}'
    t_is "$H_STATUS:$H_BODY" "403:$sa_d" "$lk: ... but may not update itself (403)"
    m8_http POST "$I/user/profile/api-keys/" -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/json' --data-binary '{"name":"own-key"}'
    t_is "$H_STATUS:$H_BODY" "403:$sa_d" "$lk: ... nor create itself an API key (403)"
    m8_http DELETE "$I/user/profile/delete/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$H_BODY" "403:$sa_d" "$lk: ... nor delete itself (403)"

    m8_http POST "$I/user/service-accounts/$id/deactivate/" -H "Authorization: Bearer $su_tok"
    t_is "$H_STATUS:$(jf "j['is_active']")" "200:False" "$lk: the superuser deactivates the account"
    m8_http POST "$I/user/login/access-token" -u "$id:$secret" --data-urlencode grant_type=client_credentials
    t_is "$H_STATUS:$(jf "j['error']")" "400:invalid_grant" "$lk: a deactivated account: 400 invalid_grant"
}

for kind in "${KINDS[@]}"; do
    run_kind "$kind"
done
t_done
