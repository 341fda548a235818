#!/bin/bash
# t_cissuer_apache.sh - fcgim8-issuer under fcgim8d behind a real Apache 2.4
# with mod_proxy_fcgi, configured with the shipped
# contrib/apache/fcgi-m8-proxy-unix.conf (doc/issuer.md#operations), on
# PostgreSQL (else MariaDB): the Authorization header and the refresh cookie
# reach the issuer, the Set-Cookie of login and logout reach the client:
# login -> /profile/get/me/ -> refresh (cookie in, new cookie out) -> logout
# -> the token is refused (401 Session revoked), the refresh cookie too; a
# request without a token gets 401 with WWW-Authenticate: Bearer.
# Ports from 19820-19859.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$APACHE2" ] || t_skip_all "apache2 is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
MODS=$(m8_apache_modules) || t_skip_all "apache2 is installed but its modules are not found"
[ -f "$MODS/mod_proxy_fcgi.so" ] || t_skip_all "mod_proxy_fcgi is missing"
PY=/usr/bin/python3
"$PY" -c 'import json' 2>/dev/null || t_skip_all "python3 is not installed"
m8_init t_cissuer_apache

ISSUER=$top_builddir/src/fcgim8-issuer
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$D" ] || t_bail "programs not built ($ISSUER, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PLO=19820 PHI=19859
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'

KIND=
if [[ $VERSION_OUT == *" postgres"* ]] && m8_have_pg; then
    KIND=Postgres
elif [[ $VERSION_OUT == *" mysql"* ]] && m8_have_mariadb; then
    KIND=Mysql
fi
[ -n "$KIND" ] || t_skip_all "neither PostgreSQL nor MariaDB is usable (server or client support)"
lk=${KIND,,}

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
chmod 600 "$T_DIR/rsa.pem"

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }
cookie_of() { sed -n 's/^[Ss]et-[Cc]ookie: refresh_token=\([^;]*\);.*/\1/p' "$1" | tr -d '\r' | tail -n 1; }

# ------------------------------------------------------------- the database
m8_pick_port $PLO $((PLO + 9)) || t_bail "no free port"
DBPORT=$M8_PORT
DB=$T_DIR/db
if [ $KIND = Mysql ]; then m8_mariadb_start "$DB" "$DBPORT"; else m8_pg_start "$DB" "$DBPORT"; fi ||
    t_bail "the $KIND server did not start"
m8_db_create $KIND "$DB" "$DBPORT" $DBNAME $DBUSER "$PW" || t_bail "cannot create the issuer's database"

# ------------------------------------------------------------- the issuer under fcgim8d
AP=$T_DIR/apache
m8_apache_prepare "$AP" || t_bail "cannot prepare the Apache directory from contrib/apache/standalone.conf"
chmod 755 "$AP/run"
SOCK=$AP/run/issuer.sock
m8_write_env "$T_DIR/issuer.env" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
    ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY ACCESS_PRIVATE_KEY_FILE="$T_DIR/rsa.pem" \
    TOKEN_MODE=stateful TOKEN_STRICT_VALIDATION=false \
    SELECTED_DB=$KIND DB_HOST=127.0.0.1 "DB_PORT=$DBPORT" DB_DATABASE=$DBNAME \
    DB_USER=$DBUSER "DB_PASSWORD=$PW" TABLES_PREFIX=auth \
    FIRST_SUPERUSER=$SU "FIRST_SUPERUSER_PASSWORD=$SU_PW" \
    'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
    'TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!' \
    'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!'
(cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$SOCK" --env-file "$T_DIR/issuer.env" \
    --workers 2 --threads 2 --db-wait-tries 20 --db-wait-interval 0.5 -- "$ISSUER") \
    </dev/null >"$T_DIR/issuer.out" 2>"$T_DIR/issuer.log" &
M8_PIDS+=("$!")
m8_wait_sock "$SOCK" 30 || { t_diag "$(tail -n 20 "$T_DIR/issuer.log")"; t_bail "the issuer did not start"; }
# The socket is 0660; Apache's user connects through its group (as
# fcgim8d --socket-group www-data does).
[ "$(id -u)" = 0 ] && chgrp "$M8_APACHE_GROUP" "$SOCK"

# ------------------------------------------------------------- Apache with the shipped site
m8_pick_port $((PLO + 10)) $PHI || t_bail "no free port"
I=http://127.0.0.1:$M8_PORT
m8_apache_site "$AP" issuer fcgi-m8-proxy-unix.conf LISTEN="127.0.0.1:$M8_PORT" \
    SERVER_NAME=localhost NAME=fcgim8-issuer SOCKET="$SOCK" || t_bail "cannot render the Apache site"
m8_apache_start "$AP" || t_bail "Apache did not start: $(tail -n 5 "$AP/error.log" 2>/dev/null)"
ready() { m8_http GET "$I/user/health/"; [ "$H_STATUS" = 200 ]; }
if ! m8_wait_for 30 ready; then
    t_diag "$(tail -n 15 "$AP/error.log" 2>/dev/null)" "$(tail -n 15 "$T_DIR/issuer.log")"
    t_bail "the issuer does not answer through Apache (last status $H_STATUS)"
fi
t_report 0 "$lk: fcgim8-issuer answers through Apache mod_proxy_fcgi (fcgi-m8-proxy-unix.conf)"

# ------------------------------------------------------------- login -> me -> refresh -> logout
m8_http POST "$I/user/login/access-token" --data-urlencode "username=$SU" --data-urlencode "password=$SU_PW"
t_is "$H_STATUS:$(jf "j['token_type']")" "200:bearer" "$lk: login through Apache: 200 bearer"
TOK=$(jf "j['access_token']")
COOKIE=$(cookie_of "$T_DIR/h.hdrs")
t_like "$(grep -i '^set-cookie: refresh_token=' "$T_DIR/h.hdrs" | tr -d '\r')" \
    '^[Ss]et-[Cc]ookie: refresh_token=[^;]+; HttpOnly; Max-Age=3600; Path=/; SameSite=strict$' \
    "$lk: ... the refresh cookie of login reaches the client unchanged"
t_is "$(m8_hdr_count Set-Cookie)" 1 "$lk: ... exactly one Set-Cookie"

m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $TOK"
t_is "$H_STATUS:$(jf "j['email']")" "200:$SU" "$lk: the Authorization header reaches the issuer: /profile/get/me/ 200"
m8_http GET "$I/user/profile/get/me/"
t_is "$H_STATUS:$H_BODY:$(m8_hdr WWW-Authenticate)" '401:{"detail":"Not authenticated"}:Bearer' \
    "$lk: no token: 401 Not authenticated with WWW-Authenticate: Bearer through Apache"
m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer x.y.z"
t_is "$H_STATUS:$H_BODY" '403:{"detail":"Could not validate credentials."}' \
    "$lk: a garbage token: 403 Could not validate credentials."

m8_http POST "$I/user/login/refresh-token/" -H "Cookie: refresh_token=$COOKIE"
COOKIE2=$(cookie_of "$T_DIR/h.hdrs")
t_is "$H_STATUS:$([ -n "$COOKIE2" ] && [ "$COOKIE2" != "$COOKIE" ] && echo rotated)" "200:rotated" \
    "$lk: the Cookie header reaches the issuer: refresh answers a new token and a new cookie"
m8_http POST "$I/user/login/refresh-token/" -H "Cookie: theme=dark; refresh_token=$COOKIE2; lang=en"
t_is "$H_STATUS:$([ -n "$(cookie_of "$T_DIR/h.hdrs")" ] && echo cookie)" "200:cookie" \
    "$lk: ... the refresh cookie among other cookies is found: 200 and a new cookie"
m8_http POST "$I/user/login/refresh-token/" -H "Cookie: refresh_token=$COOKIE"
t_is "$H_STATUS:$H_BODY" '401:{"detail":"Token revoked or reused"}' \
    "$lk: the first, rotated cookie again: 401 Token revoked or reused"
m8_http POST "$I/user/login/refresh-token/"
t_is "$H_STATUS:$H_BODY" '401:{"detail":"Refresh token missing"}' "$lk: refresh without the cookie: 401"

# The reuse above revoked the chain; log in again for the logout.
m8_http POST "$I/user/login/access-token" --data-urlencode "username=$SU" --data-urlencode "password=$SU_PW"
TOK=$(jf "j['access_token']")
COOKIE=$(cookie_of "$T_DIR/h.hdrs")
t_is "$H_STATUS:$([ -n "$COOKIE" ] && echo cookie)" "200:cookie" "$lk: a second login"
m8_http POST "$I/user/login/logout/" -H "Authorization: Bearer $TOK" -H "Cookie: refresh_token=$COOKIE"
t_is "$H_STATUS:$H_BODY" '200:{"success":true,"msg":"Logged out successfully"}' "$lk: logout through Apache"
t_like "$(grep -i '^set-cookie: refresh_token=' "$T_DIR/h.hdrs" | tr -d '\r')" \
    '^[Ss]et-[Cc]ookie: refresh_token=("")?;.*Max-Age=0' \
    "$lk: ... the cookie deletion reaches the client"
m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $TOK"
t_is "$H_STATUS:$H_BODY" '401:{"detail":"Session revoked"}' \
    "$lk: after logout the token is refused (401 Session revoked)"
m8_http POST "$I/user/login/refresh-token/" -H "Cookie: refresh_token=$COOKIE"
t_is "$H_STATUS" 401 "$lk: after logout the refresh cookie is refused"

m8_http GET "$I/user/.well-known/jwks.json"
t_is "$H_STATUS:$(jf "j['keys'][0]['kty']")" "200:RSA" "$lk: the JWKS through Apache"
m8_http GET "$I/user/ping"
t_is "$H_STATUS" 200 "$lk: /user/ping through Apache"
t_unlike "$(cat "$T_DIR/issuer.log" "$AP/error.log" 2>/dev/null)" "$PW" "$lk: no log line holds the database password"
t_done
