#!/bin/bash
# t_cissuer.sh - fcgim8-issuer (issue 14) as users run it: under fcgim8d
# behind a real nginx, on a real PostgreSQL and a real MariaDB started here on
# loopback, with the example service as a consumer that takes its keys from
# the issuer's JWKS_URI.  On each database: the first superuser created at
# start; the JWKS with its ETag and 304; login (form post, the refresh cookie,
# an access token PyJWT verifies against the served JWKS); the issuer's own
# routes (403 "Could not validate credentials." for a bad token, the
# superuser guard); a user created by the superuser logs in and calls the
# consumer; refresh rotation and the replay of a rotated token; logout, after
# which the issuer's own routes refuse the token (401 "Session revoked");
# 6 bad logins -> 429 even with a new X-Forwarded-For each time; a second
# issuer process on the same database sees the same users and sessions.
# Ports from 19600-19699.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import jwt, cryptography' 2>/dev/null || t_skip_all "python3-jwt is not installed"
m8_init t_cissuer

ISSUER=$top_builddir/src/fcgim8-issuer
EX=$(m8_svc_bin example)
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$EX" ] && [ -x "$D" ] || t_bail "programs not built ($ISSUER, $EX, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PLO=19600 PHI=19699
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
U_PW='Reader-Pass-1234!'

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
chmod 600 "$T_DIR/rsa.pem"

# jf EXPR: a python expression on j (the last body, parsed) printed
jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }
# cookie_of FILE: the refresh_token cookie's value in a response's headers
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

declare -A DBPORT=() ISS=() CONS=()
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    m8_pick_port $PLO $((PLO + 29)) || t_bail "no free port"
    DBPORT[$kind]=$M8_PORT
    m8_pick_port $((PLO + 30)) $((PLO + 59)) || t_bail "no free port"
    ISS[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "iss_$lk" fcgi-m8-unix.conf NAME="iss_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/iss_$lk.sock" || t_bail "cannot render the site"
    m8_pick_port $((PLO + 60)) $PHI || t_bail "no free port"
    CONS[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "cons_$lk" fcgi-m8-unix.conf NAME="cons_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/cons_$lk.sock" || t_bail "cannot render the site"
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

# login BASE EMAIL PASSWORD [curl args]: the form post; H_STATUS, H_BODY,
# the headers in $T_DIR/h.hdrs
login() {
    local base=$1 user=$2 pass=$3
    shift 3
    m8_http POST "$base/user/login/access-token" --data-urlencode "username=$user" \
        --data-urlencode "password=$pass" "$@"
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
        'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!'
}

run_kind() {
    local kind=$1 lk=${1,,} d=$T_DIR/db-${1,,}
    local I=${ISS[$kind]} C=${CONS[$kind]}
    if [ $kind = Mysql ]; then m8_mariadb_start "$d" "${DBPORT[$kind]}"; else m8_pg_start "$d" "${DBPORT[$kind]}"; fi ||
        { t_report 1 "$lk: the $kind server starts"; return; }
    m8_db_create $kind "$d" "${DBPORT[$kind]}" $DBNAME $DBUSER "$PW" ||
        { t_report 1 "$lk: the issuer's database and user"; return; }
    issuer_env "$T_DIR/iss_$lk.env" $kind
    # events kept 0 s, housekeeping every second (doc/issuer.md#housekeeping)
    printf 'OUTBOX_COMPLETED_RETENTION_SECONDS=0\nTOMBSTONE_CONSUMER_HORIZON_SECONDS=0\n' \
        >>"$T_DIR/iss_$lk.env"
    (cd "$T_DIR" && m8_clean_exec M8_ISSUER_REAP_SECONDS=1 -- "$D" --listen "unix:$T_DIR/iss_$lk.sock" \
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
    t_like "$(grep -c 'created the first superuser' "$T_DIR/iss_$lk.log")" '^1$' \
        "$lk: the first superuser is created once, by one of the two workers"

    m8_http GET "$I/user/ping"
    local p1=$H_STATUS
    m8_http GET "$I/ping"
    t_is "$p1:$H_STATUS" "200:404" "$lk: /ping under API_PREFIX only, as fa-auth-m8 2.x (no root /ping)"

    # -------------------------------------------------------------- JWKS
    m8_http GET "$I/user/.well-known/jwks.json"
    local etag
    etag=$(m8_hdr ETag)
    t_is "$H_STATUS:$(jf "j['keys'][0]['kty']+' '+j['keys'][0]['alg']+' '+j['keys'][0]['use']")" \
        "200:RSA RS256 sig" "$lk: the JWKS serves the RSA key (RS256, sig)"
    t_like "$etag:$(m8_hdr Cache-Control)" '^"[0-9a-f]{64}":public, max-age=[0-9]+$' \
        "$lk: the JWKS has a quoted SHA-256 ETag and Cache-Control public"
    cp "$T_DIR/h.body" "$T_DIR/jwks_$lk.json" 2>/dev/null || printf '%s' "$H_BODY" >"$T_DIR/jwks_$lk.json"
    m8_http GET "$I/user/.well-known/jwks.json" -H "If-None-Match: W/$etag"
    t_is "$H_STATUS:${#H_BODY}:$(m8_hdr ETag)" "304:0:$etag" "$lk: If-None-Match with the ETag: 304, no body"

    # -------------------------------------------------------------- login
    login "$I" "$SU" "$SU_PW"
    t_is "$H_STATUS:$(jf "j['token_type']")" "200:bearer" "$lk: the superuser logs in (200, bearer)"
    local su_tok su_cookie
    su_tok=$(jf "j['access_token']")
    su_cookie=$(cookie_of "$T_DIR/h.hdrs")
    t_like "$(grep -i '^set-cookie: refresh_token=' "$T_DIR/h.hdrs" | tr -d '\r')" \
        '; HttpOnly; Max-Age=3600; Path=/; SameSite=strict$' \
        "$lk: the refresh cookie is HttpOnly, Max-Age 3600, Path /, SameSite strict (no Secure in local)"
    t_is "$("$PY" - "$T_DIR/jwks_$lk.json" "$su_tok" <<'PYEOF'
import json, sys, jwt
jwks = json.load(open(sys.argv[1]))
key = jwt.PyJWK(jwks["keys"][0])
hdr = jwt.get_unverified_header(sys.argv[2])
c = jwt.decode(sys.argv[2], key.key, algorithms=["RS256"])
print(hdr["kid"] == jwks["keys"][0]["kid"], c["type"], c["role"], c["is_superuser"], list(c)[:3])
PYEOF
)" "True access superadmin True ['email', 'full_name', 'avatar']" \
        "$lk: PyJWT verifies the access token with the served JWKS (kid, claims in order)"

    m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $su_tok"
    t_is "$H_STATUS:$(jf "j['email']+' '+j['role']")" "200:$SU superadmin" "$lk: /profile/get/me/ answers the caller"
    m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer x.y.z"
    t_is "$H_STATUS:$H_BODY" '403:{"detail":"Could not validate credentials."}' \
        "$lk: a garbage token on the issuer's own route: 403 Could not validate credentials."
    m8_http GET "$I/user/profile/get/me/"
    t_is "$H_STATUS:$H_BODY:$(m8_hdr WWW-Authenticate)" '401:{"detail":"Not authenticated"}:Bearer' \
        "$lk: no token: 401 Not authenticated with WWW-Authenticate: Bearer"

    # -------------------------------------------------------------- a user, the consumer
    local umail=reader.$lk@example.com
    m8_http POST "$I/user/users/new_user/" -H "Authorization: Bearer $su_tok" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"email\":\"$umail\",\"password\":\"$U_PW\",\"role\":\"reader\"}"
    t_is "$H_STATUS:$(jf "j['email']+' '+j['role']+' '+str('hashed_password' in j)")" \
        "200:$umail reader False" "$lk: the superuser creates a reader (200, no hashed_password)"
    login "$I" "$umail" "$U_PW"
    t_is "$H_STATUS" 200 "$lk: the new user logs in"
    local tok cookie
    tok=$(jf "j['access_token']")
    cookie=$(cookie_of "$T_DIR/h.hdrs")
    m8_http GET "$I/user/users/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$H_BODY" "403:{\"detail\":\"The user doesn't have enough privileges\"}" \
        "$lk: a reader on a superuser route: 403"

    m8_write_env "$T_DIR/cons_$lk.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
        "JWKS_URI=$I/user/.well-known/jwks.json" TOKEN_MODE=stateless
    m8_svc_listen "cons_$lk" example "unix:$T_DIR/cons_$lk.sock" "$T_DIR/cons_$lk.env" -- --threads 2
    m8_wait_sock "$T_DIR/cons_$lk.sock" 15 || m8_svc_diag "cons_$lk"
    m8_http GET "$C/api/profile" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$(jf "j['email']")" "200:$umail" \
        "$lk: the consumer (keys from the issuer's JWKS_URI) accepts the issuer's token"

    # -------------------------------------------------------------- refresh
    m8_http POST "$I/user/login/refresh-token/" -H "Cookie: refresh_token=$cookie"
    local tok2 cookie2
    tok2=$(jf "j['access_token']")
    cookie2=$(cookie_of "$T_DIR/h.hdrs")
    t_is "$H_STATUS:$([ -n "$cookie2" ] && [ "$cookie2" != "$cookie" ] && echo rotated)" "200:rotated" \
        "$lk: refresh answers a new access token and a new refresh cookie"
    m8_http POST "$I/user/login/refresh-token/" -H "Cookie: refresh_token=$cookie"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Token revoked or reused"}' \
        "$lk: the rotated refresh token again: 401 Token revoked or reused"
    m8_http POST "$I/user/login/refresh-token/"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Refresh token missing"}' "$lk: refresh without the cookie: 401"

    # -------------------------------------------------------------- logout
    m8_http POST "$I/user/login/logout/" -H "Authorization: Bearer $tok2" -H "Cookie: refresh_token=$cookie2"
    t_is "$H_STATUS:$H_BODY" '200:{"success":true,"msg":"Logged out successfully"}' "$lk: logout"
    m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $tok2"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Session revoked"}' \
        "$lk: after logout the issuer's own routes refuse the token (401 Session revoked)"
    m8_http POST "$I/user/login/refresh-token/" -H "Cookie: refresh_token=$cookie2"
    t_is "$H_STATUS" 401 "$lk: after logout the refresh token is refused"

    # -------------------------------------------------------------- housekeeping
    # the logout appended an event; with no retention the reaper, every
    # second, deletes every event but the newest (MariaDB's AUTO_INCREMENT)
    ev_rows() {
        if [ "$kind" = Mysql ]; then
            m8_mariadb_sql "$d" "SELECT COUNT(*) FROM $DBNAME.auth_m8_event_outbox"
        else
            M8_PG_DB=$DBNAME m8_pg_sql "$d" "${DBPORT[$kind]}" "SELECT COUNT(*) FROM auth_m8_event_outbox"
        fi
    }
    m8_http POST "$I/user/login/logout/" -H "Authorization: Bearer $su_tok" -H "Cookie: refresh_token=$su_cookie"
    local n0
    n0=$(ev_rows)
    one_left() { [ "$(ev_rows)" = 1 ]; }
    m8_wait_for 10 one_left
    t_is "$n0:$(ev_rows)" "$n0:1" \
        "$lk: housekeeping deletes events past their retention, keeping the newest (before: $n0)"

    # -------------------------------------------------------------- rate limits
    local i codes=""
    for i in 1 2 3 4 5 6; do
        login "$I" "$umail" "wrong-password-$i" -H "X-Forwarded-For: 10.9.$i.$i"
        codes+=$H_STATUS
    done
    t_is "$codes" 400400400400400429 \
        "$lk: 5 bad passwords answer 400, the 6th 429 although X-Forwarded-For changes each time"
    t_is "$H_BODY" '{"detail":"Too many login attempts. Try again in 15 minutes."}' "$lk: ... with the 429 text"
    login "$I" "$umail" "$U_PW"
    t_is "$H_STATUS" 429 "$lk: ... and the right password is refused too inside the window"
}

for kind in "${KINDS[@]}"; do
    run_kind "$kind"
done
t_done
