#!/bin/bash
# t_cissuer_browser.sh - browser sessions of fcgim8-issuer
# (doc/issuer.md#browser-sessions) with fcgim8-gate in cookie mode: the
# issuer under fcgim8d behind a real nginx on a real PostgreSQL and a
# real MariaDB started here on loopback, ACCESS_TOKEN_COOKIE_NAME=__Host-m8_at
# and CSRF_KEY_FILE; a gate (--cookie __Host-m8_at --csrf-key-file, the same
# key file, keys from the issuer's JWKS) asked over FastCGI as nginx's
# auth_request asks it, and behind nginx's contrib/nginx/gate-site.conf in
# front of a static directory (a browser-like client: the cookie, the
# Origin, the CSRF header).
# A login with "X-Auth-Session: cookie" gets the access token as an HttpOnly
# cookie and a CSRF token in the body; the gate takes the cookie on a GET,
# refuses it on a POST without the CSRF token and passes it with the token;
# a refresh renews both (the old CSRF token is worthless with the new
# cookie); a logout by cookie needs the CSRF token and the site's own
# origin, then deletes both cookies and revokes the session.  Ports from
# 19740-19779.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
[ -n "$M8_CGI_FCGI" ] || t_skip_all "cgi-fcgi is not installed"
PY=/usr/bin/python3
"$PY" -c 'import json' 2>/dev/null || t_skip_all "python3 is not installed"
m8_init t_cissuer_browser

ISSUER=$top_builddir/src/fcgim8-issuer
GATE=$top_builddir/src/fcgim8-gate
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$GATE" ] && [ -x "$D" ] || t_bail "programs not built"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
KINDS=()
for kind in Postgres Mysql; do
    lk=${kind,,}
    if [ $kind = Mysql ]; then
        [[ $VERSION_OUT == *" mysql"* ]] || { t_skip "$lk: browser sessions" "built --without-mariadb"; continue; }
        m8_have_mariadb || { t_skip "$lk: browser sessions" "mariadb-server not installed"; continue; }
    else
        [[ $VERSION_OUT == *" postgres"* ]] || { t_skip "$lk: browser sessions" "built --without-postgresql"; continue; }
        m8_have_pg || { t_skip "$lk: browser sessions" "postgresql not installed"; continue; }
    fi
    KINDS+=("$kind")
done
[ ${#KINDS[@]} -gt 0 ] || t_done
PLO=19740 PHI=19779
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
CK=__Host-m8_at

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
chmod 600 "$T_DIR/rsa.pem"
(umask 077 && openssl rand -hex 32 >"$T_DIR/csrf.key") || t_bail "openssl cannot make a CSRF key"

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }
# the value of cookie NAME set by the last answer (empty when none)
setcookie() { sed -n "s/^[Ss]et-[Cc]ookie: $1=\([^;]*\);.*/\1/p" "$T_DIR/h.hdrs" | tr -d '\r' | head -n 1; }
setcookie_line() { grep -i "^set-cookie: $1=" "$T_DIR/h.hdrs" | tr -d '\r' | head -n 1; }

# the gate site's document root: what nginx serves once the gate said yes
WWW=$T_DIR/www
mkdir -p "$WWW/app" && echo app-file >"$WWW/app/x.txt" || t_bail "cannot write the document root"
chmod -R a+rX "$WWW" && chmod o+x "$T_DIR"
declare -A DBPORT=() ISS=() GW=()
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    m8_pick_port $PLO $((PLO + 9)) || t_bail "no free port"
    DBPORT[$kind]=$M8_PORT
    m8_pick_port $((PLO + 10)) $((PLO + 24)) || t_bail "no free port"
    ISS[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "iss_$lk" fcgi-m8-unix.conf NAME="iss_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/iss_$lk.sock" || t_bail "cannot render the site"
    m8_pick_port $((PLO + 25)) $PHI || t_bail "no free port"
    GW[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "gate_$lk" gate-site.conf NAME="gate_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost ROOT="$WWW" GATE_SOCKET="$T_DIR/gate_$lk.sock" \
        PHP_SOCKET="$T_DIR/nophp.sock" || t_bail "cannot render the gate site"
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

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
        'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!' "$@"
}

# ------------------------------------------------------------------ boot checks
issuer_env "$T_DIR/nokey.env" "${KINDS[0]}" ACCESS_TOKEN_COOKIE_NAME=$CK
(cd "$T_DIR" && m8_clean_exec -- "$ISSUER" --check --env-file "$T_DIR/nokey.env") \
    </dev/null >"$T_DIR/check.out" 2>&1
RC=$?
t_is "$RC" 78 "boot: ACCESS_TOKEN_COOKIE_NAME without CSRF_KEY_FILE exits 78"
t_like "$(cat "$T_DIR/check.out")" 'CSRF_KEY_FILE.*required' "boot: ... naming CSRF_KEY_FILE"
cp "$T_DIR/csrf.key" "$T_DIR/open.key" && chmod 644 "$T_DIR/open.key"
issuer_env "$T_DIR/open.env" "${KINDS[0]}" ACCESS_TOKEN_COOKIE_NAME=$CK CSRF_KEY_FILE="$T_DIR/open.key"
(cd "$T_DIR" && m8_clean_exec -- "$ISSUER" --check --env-file "$T_DIR/open.env") \
    </dev/null >"$T_DIR/check.out" 2>&1
t_is "$?" 78 "boot: a CSRF key file readable by others exits 78"
t_unlike "$(cat "$T_DIR/check.out")" "$(cat "$T_DIR/csrf.key")" "boot: ... the key is never logged"

cat >"$T_DIR/policy" <<'EOF'
app-read   GET                    /app/**  user
app-write  POST,PUT,PATCH,DELETE  /app/**  user
default                                    deny
EOF
run_kind() {
    local kind=$1 lk=${1,,} d I G AT RT AT2 RT2 CSRF CSRF2 GCSRF ISS_SUB
    # ------------------------------------------------------------------ the issuer and the gate
    d=$T_DIR/db-$lk I=${ISS[$kind]} G=${GW[$kind]}
    if [ $kind = Mysql ]; then m8_mariadb_start "$d" "${DBPORT[$kind]}"; else m8_pg_start "$d" "${DBPORT[$kind]}"; fi ||
        { t_report 1 "$lk: the $kind server starts"; return; }
    m8_db_create $kind "$d" "${DBPORT[$kind]}" $DBNAME $DBUSER "$PW" ||
        { t_report 1 "$lk: the issuer's database and user"; return; }
    issuer_env "$T_DIR/iss_$lk.env" $kind ACCESS_TOKEN_COOKIE_NAME=$CK CSRF_KEY_FILE="$T_DIR/csrf.key"
    (cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$T_DIR/iss_$lk.sock" --env-file "$T_DIR/iss_$lk.env" \
        --workers 2 --threads 2 --db-wait-tries 20 --db-wait-interval 0.5 -- "$ISSUER") \
        </dev/null >"$T_DIR/iss_$lk.out" 2>"$T_DIR/iss_$lk.log" &
    M8_PIDS+=("$!")
    ready() { m8_http GET "$I/user/health/"; [ "$H_STATUS" = 200 ]; }
    if ! m8_wait_for 30 ready; then
        t_report 1 "$lk: fcgim8-issuer with browser sessions is ready"
        t_diag "$(tail -n 20 "$T_DIR/iss_$lk.log")"
        return
    fi
    t_report 0 "$lk: fcgim8-issuer with browser sessions is ready under fcgim8d behind nginx"

    m8_write_env "$T_DIR/gate_$lk.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
        "JWKS_URI=$I/user/.well-known/jwks.json" TOKEN_STRICT_VALIDATION=false
    m8_svc_listen "gate_$lk" "$GATE" "unix:$T_DIR/gate_$lk.sock" "$T_DIR/gate_$lk.env" -- \
        --policy "$T_DIR/policy" --threads 2 --cookie $CK --csrf-key-file "$T_DIR/csrf.key"
    m8_wait_sock "$T_DIR/gate_$lk.sock" 15 || { m8_svc_diag "gate_$lk"; t_report 1 "$lk: the gate starts"; return; }
    chmod 666 "$T_DIR/gate_$lk.sock" "$T_DIR/iss_$lk.sock" 2>/dev/null
    gq() { # METHOD URI [VAR=VALUE...]: an auth_request-shaped question over FastCGI
        local m=$1 u=$2
        shift 2
        m8_fcgi_req "$T_DIR/gate_$lk.sock" "$m" "$u" HTTP_X_ORIGINAL_URI="$u" HTTP_X_ORIGINAL_METHOD="$m" "$@"
    }

    # ------------------------------------------------------------------ login
    cookie_login() { # [curl args]
        m8_http POST "$I/user/login/access-token" --data-urlencode "username=$SU" \
            --data-urlencode "password=$SU_PW" "$@"
    }
    cookie_login -H 'X-Auth-Session: bearer'
    t_is "$H_STATUS:$H_BODY" '400:{"detail":"X-Auth-Session must be cookie."}' \
        "$lk: login: X-Auth-Session other than cookie is 400"
    t_is "$(setcookie refresh_token)" "" "$lk: login: ... and sets no cookie"
    cookie_login -H 'X-Auth-Session: cookie'
    t_is "$H_STATUS:$(jf "j['token_type'], j['expires_in'], j['csrf_header'], 'access_token' in j")" \
        "200:cookie 1800 X-CSRF-Token False" \
        "$lk: login with X-Auth-Session: cookie: 200 token_type cookie, expires_in, csrf_header, no access_token"
    CSRF=$(jf "j['csrf_token']")
    t_like "$CSRF" '^[A-Za-z0-9_-]{64}$' "$lk: login: ... a 64-character CSRF token"
    t_is "$(m8_hdr Cache-Control)" no-store "$lk: login: ... never cached"
    AT=$(setcookie $CK)
    RT=$(setcookie refresh_token)
    t_like "$(setcookie_line $CK)" "^[Ss]et-[Cc]ookie: $CK=[A-Za-z0-9_.-]+; HttpOnly; Max-Age=1800; Path=/; SameSite=strict; Secure$" \
        "$lk: login: the access cookie is HttpOnly, Max-Age = the token's lifetime, Path=/, SameSite=strict, Secure"
    t_like "$RT" '^ey' "$lk: login: ... and the refresh cookie as for any login"
    ISS_SUB=$(
        "$PY" - "$AT" "$T_DIR/rsa.pem" <<'PYEOF'
import sys, jwt
from cryptography.hazmat.primitives import serialization
key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None).public_key()
c = jwt.decode(sys.argv[1], key, algorithms=["RS256"], options={"verify_aud": False})
print(c["type"], c["email"])
PYEOF
    )
    t_is "$ISS_SUB" "access $SU" "$lk: login: the cookie holds an access token PyJWT verifies"

    # ------------------------------------------------------------------ the gate
    gq GET /app/x HTTP_COOKIE="$CK=$AT"
    t_is "$C_STATUS:$(m8_chdr X-Auth-Role)" 200:superadmin "$lk: gate: a GET with the access cookie: 200"
    gq POST /app/x HTTP_COOKIE="$CK=$AT"
    t_is "$C_STATUS:$(m8_chdr X-Auth-Detail)" "403:CSRF token missing or incorrect." \
        "$lk: gate: a POST with the cookie and no CSRF token: 403"
    gq POST /app/x HTTP_COOKIE="$CK=$AT" HTTP_X_CSRF_TOKEN="$CSRF"
    t_is "$C_STATUS" 200 "$lk: gate: a POST with the CSRF token from the login: 200"
    gq POST /app/x HTTP_COOKIE="$CK=$AT" HTTP_X_CSRF_TOKEN="$CSRF" HTTP_ORIGIN=https://evil.example
    t_is "$C_STATUS" 403 "$lk: gate: ... but not from a foreign Origin (403)"

    # ------------------------------------------------------------------ through nginx (gate-site.conf)
    m8_http GET "$G/app/x.txt" -H "Cookie: theme=dark; $CK=$AT"
    t_is "$H_STATUS:$H_BODY" "200:app-file" "$lk: nginx+gate: a GET with the access cookie: the file"
    m8_http GET "$G/app/x.txt"
    t_is "$H_STATUS" 401 "$lk: nginx+gate: ... without it: 401"
    m8_http POST "$G/app/x.txt" -H "Cookie: $CK=$AT" -H "Origin: $G"
    t_is "$H_STATUS:$H_BODY" '403:{"detail":"CSRF token missing or incorrect."}' \
        "$lk: nginx+gate: a POST with the cookie and no CSRF token: 403 with the gate's detail"
    m8_http POST "$G/app/x.txt" -H "Cookie: $CK=$AT" -H "Origin: $G" -H "X-CSRF-Token: $CSRF"
    t_is "$H_STATUS" 405 "$lk: nginx+gate: with the login's CSRF token the gate lets it through (nginx's static 405)"
    m8_http GET "$G/_fcgim8/csrf" -H "Cookie: $CK=$AT"
    GCSRF=$(jf "j['csrf_token']")
    t_is "$H_STATUS:${#GCSRF}" 200:64 "$lk: nginx+gate: the gate's /_fcgim8/csrf mints another token for the session"
    m8_http POST "$G/app/x.txt" -H "Cookie: $CK=$AT" -H "Origin: $G" -H "X-CSRF-Token: $GCSRF"
    t_is "$H_STATUS" 405 "$lk: nginx+gate: ... which passes as well"

    # ------------------------------------------------------------------ refresh
    m8_http POST "$I/user/login/refresh-token/" -H "Cookie: refresh_token=$RT" -H 'X-Auth-Session: cookie'
    t_is "$H_STATUS:$(jf "j['token_type'], 'access_token' in j")" "200:cookie False" \
        "$lk: refresh with X-Auth-Session: cookie: 200, the token as a cookie"
    CSRF2=$(jf "j['csrf_token']")
    AT2=$(setcookie $CK)
    RT2=$(setcookie refresh_token)
    t_like "$AT2" '^ey' "$lk: refresh: ... a new access cookie"
    [ "$AT2" != "$AT" ]
    t_report $? "$lk: refresh: ... holding a new token"
    gq POST /app/x HTTP_COOKIE="$CK=$AT2" HTTP_X_CSRF_TOKEN="$CSRF"
    t_is "$C_STATUS" 403 "$lk: gate: the old session's CSRF token with the new cookie: 403"
    gq POST /app/x HTTP_COOKIE="$CK=$AT2" HTTP_X_CSRF_TOKEN="$CSRF2"
    t_is "$C_STATUS" 200 "$lk: gate: the refresh's CSRF token with the new cookie: 200"

    # ------------------------------------------------------------------ logout
    logout() { m8_http POST "$I/user/login/logout/" -H "Cookie: refresh_token=$RT2; $CK=$AT2" "$@"; }
    logout
    t_is "$H_STATUS:$H_BODY" '403:{"detail":"CSRF token missing or incorrect."}' \
        "$lk: logout by cookie without the CSRF token: 403"
    logout -H "X-CSRF-Token: $CSRF"
    t_is "$H_STATUS" 403 "$lk: logout by cookie with another session's CSRF token: 403"
    logout -H "X-CSRF-Token: $CSRF2" -H 'Origin: https://evil.example'
    t_is "$H_STATUS" 403 "$lk: logout by cookie from a foreign Origin: 403"
    logout -H "X-CSRF-Token: $CSRF2" -H 'Sec-Fetch-Site: cross-site'
    t_is "$H_STATUS" 403 "$lk: logout by cookie from another site (Sec-Fetch-Site): 403"
    m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $AT2"
    t_is "$H_STATUS" 200 "$lk: the session is still alive after the refused logouts"
    m8_http POST "$I/user/login/logout/" -H "Cookie: refresh_token=$RT2; $CK=$AT2; $CK=$AT" \
        -H "X-CSRF-Token: $CSRF2"
    t_is "$H_STATUS" 403 "$lk: logout with the access cookie twice (different values): 403, neither is taken"
    logout -H "X-CSRF-Token: $CSRF2" -H "Origin: $I"
    t_is "$H_STATUS:$(jf "j['msg']")" "200:Logged out successfully" \
        "$lk: logout by cookie with its CSRF token from the site's own origin: 200"
    t_like "$(setcookie_line $CK)" "^[Ss]et-[Cc]ookie: $CK=\"\"; HttpOnly; Max-Age=0; Path=/; SameSite=strict; Secure$" \
        "$lk: logout: the access cookie is deleted (with the attributes a __Host- cookie needs)"
    t_like "$(setcookie_line refresh_token)" 'Max-Age=0' "$lk: logout: ... and the refresh cookie"
    m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $AT2"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Session revoked"}' \
        "$lk: logout: the cookie's token is revoked on the issuer (401 Session revoked)"
    m8_http POST "$I/user/login/logout/" -H "Cookie: refresh_token=$RT2"
    t_is "$H_STATUS:$(m8_hdr WWW-Authenticate)" "401:Bearer" \
        "$lk: logout with neither a bearer nor the access cookie: 401 as before"
    cookie_login
    t_is "$H_STATUS:$(jf "j['token_type']"):$(setcookie $CK)" "200:bearer:" \
        "$lk: login without X-Auth-Session: the bearer body, no access cookie (unchanged)"
}

for kind in "${KINDS[@]}"; do
    run_kind "$kind"
done
t_done
