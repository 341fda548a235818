#!/bin/bash
# t_cissuer_oidc.sh - SSO of fcgim8-issuer (doc/issuer.md#sso-oidc-and-google)
# against the test OpenID provider tests/tools/oidc_provider.py, under fcgim8d
# behind a real nginx, on a real PostgreSQL and a real MariaDB started here on
# loopback.  On each database, issuer 1 has Google configured with
# GOOGLE_OIDC_ISSUER pointing at the test provider: login-url (its checks),
# authorize, the callback's 307 with the fragment and the cookies, the
# exchange with PKCE, the access token on /profile/get/me/ and at a consumer
# (the example service, keys from the issuer's JWKS); the user made just in
# time once and found again on the second login; replays of the state and of
# the auth code, a wrong PKCE verifier; each provider fault refused with
# fa-auth-m8's status and text (wrong nonce, wrong audience, expired, unknown
# kid, wrong issuer, HS256 under the client secret, unverified email, token endpoint 500, redirect mismatch,
# no id_token); an email held by a local password account refused and not
# linked; the per-address exchange limit (429).  Issuer 2 on the same
# database has Google off (404 feature_unavailable) and the generic provider
# on: a JIT user with OIDC_DEFAULT_ROLE, found again, its profile synced;
# with OIDC_LINK_VERIFIED_EMAIL=true the local account's email is linked
# only when the provider asserts it verified.  Google's own tokens are kept
# Fernet-encrypted on the session row (Python's cryptography reads them with
# TOKENS_ENCRYPTION_KEY) and replaced through POST
# /sessions/refresh-google-tokens/; the generic provider keeps none; an
# auth code answers only at the exchange of the provider that minted it.
# Ports from 22100-22199.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import jwt, cryptography' 2>/dev/null || t_skip_all "python3-jwt is not installed"
m8_init t_cissuer_oidc

ISSUER=$top_builddir/src/fcgim8-issuer
EX=$(m8_svc_bin example)
D=$top_builddir/src/fcgim8d
OP_PY=$top_srcdir/tests/tools/oidc_provider.py
[ -x "$ISSUER" ] && [ -x "$EX" ] && [ -x "$D" ] || t_bail "programs not built ($ISSUER, $EX, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PLO=22100 PHI=22199
PW='Db-Test-Pass-1234!x'
DBNAME=issuer_db
DBUSER=issuer_user
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
L_PW='Local-Pass-1234!'
CID=test-client.apps.example.com
CSECRET=test-client-secret-0123456789
TARGET=chrome-extension://abcdefghijklmnopabcdefghijklmnop/cb.html
D_STATE='{"detail":"Invalid or expired state parameter"}'
D_BAD='{"detail":"Invalid id_token"}'
D_EXCH='{"detail":"Token exchange with Google failed."}'
D_REFUSED='{"detail":"Google sign-in could not be completed for this account."}'
D_CODE='{"detail":"Invalid or expired auth code."}'
D_OFF='{"detail":"feature_unavailable"}'

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
chmod 600 "$T_DIR/rsa.pem"

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }
# cookie NAME: the value of cookie NAME set by the last response
cookie() { sed -n "s/^[Ss]et-[Cc]ookie: $1=\\([^;]*\\);.*/\\1/p" "$T_DIR/h.hdrs" | tr -d '\r' | tail -n 1; }
cookie_attrs() { sed -n "s/^[Ss]et-[Cc]ookie: $1=[^;]*; \\(.*\\)/\\1/p" "$T_DIR/h.hdrs" | tr -d '\r' | tail -n 1; }
urlenc() { "$PY" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
TARGET_Q=$(urlenc "$TARGET")

KINDS=()
for kind in Postgres Mysql; do
    lk=${kind,,}
    if [ $kind = Mysql ]; then
        [[ $VERSION_OUT == *" mysql"* ]] || { t_skip "$lk: SSO" "built --without-mariadb"; continue; }
        m8_have_mariadb || { t_skip "$lk: SSO" "mariadb-server not installed"; continue; }
    else
        [[ $VERSION_OUT == *" postgres"* ]] || { t_skip "$lk: SSO" "built --without-postgresql"; continue; }
        m8_have_pg || { t_skip "$lk: SSO" "postgresql not installed"; continue; }
    fi
    KINDS+=("$kind")
done
[ ${#KINDS[@]} -gt 0 ] || t_done

declare -A DBPORT=() ISS=() ISS2=() CONS=()
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    m8_pick_port $PLO $((PLO + 19)) || t_bail "no free port"
    DBPORT[$kind]=$M8_PORT
    for role in iss iss2 cons; do
        m8_pick_port $((PLO + 20)) $PHI || t_bail "no free port"
        case $role in
            iss) ISS[$kind]=http://127.0.0.1:$M8_PORT ;;
            iss2) ISS2[$kind]=http://127.0.0.1:$M8_PORT ;;
            cons) CONS[$kind]=http://127.0.0.1:$M8_PORT ;;
        esac
        m8_nginx_site "$NG" "${role}_$lk" fcgi-m8-unix.conf NAME="${role}_$lk" \
            LISTEN="127.0.0.1:$M8_PORT" SERVER_NAME=localhost SOCKET="$T_DIR/${role}_$lk.sock" ||
            t_bail "cannot render the site"
    done
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

issuer_env() { # FILE KIND [KEY=VALUE...]
    local file=$1 kind=$2
    shift 2
    m8_write_env "$file" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
        ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY ACCESS_PRIVATE_KEY_FILE="$T_DIR/rsa.pem" \
        TOKEN_MODE=stateful TOKEN_STRICT_VALIDATION=false \
        SELECTED_DB=$kind DB_HOST=127.0.0.1 "DB_PORT=${DBPORT[$kind]}" DB_DATABASE=$DBNAME \
        DB_USER=$DBUSER "DB_PASSWORD=$PW" TABLES_PREFIX=auth \
        FIRST_SUPERUSER=$SU "FIRST_SUPERUSER_PASSWORD=$SU_PW" \
        'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
        "TOKENS_ENCRYPTION_KEY=$TOKKEY" 'TOKENS_ENCRYPTION_KEY_OLD=Old-Tokens-Key-0123456789abcdef!' \
        'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!' "$@"
}

start_issuer() { # NAME ENVFILE BASEURL [VAR=VALUE...]: VARs in the process environment
    local name=$1 envf=$2 base=$3
    shift 3
    (cd "$T_DIR" && m8_clean_exec "$@" -- "$D" --listen "unix:$T_DIR/$name.sock" --env-file "$envf" \
        --workers 2 --threads 2 --db-wait-tries 20 --db-wait-interval 0.5 -- "$ISSUER") \
        </dev/null >"$T_DIR/$name.out" 2>"$T_DIR/$name.log" &
    M8_PIDS+=("$!")
    ready() { m8_http GET "$1/user/health/"; [ "$H_STATUS" = 200 ]; }
    m8_wait_for 30 ready "$base"
}

control() { # OPBASE JSON
    "$CURL" -sS --max-time 10 -H 'Content-Type: application/json' --data-binary "$2" "$1/control" \
        >/dev/null
}

# sso BASE API CALLBACK_PATH [FAULT]: login-url -> authorize -> callback.
# Leaves the callback's answer in H_*; sets VERIFIER, CB_URL, AUTH_CODE.
sso() {
    local base=$1 api=$2 fault=${4:-}
    VERIFIER=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')
    local ch
    ch=$("$PY" -c 'import sys,hashlib,base64; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' "$VERIFIER")
    m8_http GET "$base/user/$api/login-url/?redirect_target=$TARGET_Q&code_challenge=$ch"
    LOGIN_URL=$(jf "j['url']")
    [ -n "$LOGIN_URL" ] || return 1
    m8_http GET "$LOGIN_URL${fault:+&m8_fault=$fault}"
    CB_URL=$(m8_hdr Location)
    [ -n "$CB_URL" ] || return 1
    m8_http GET "$CB_URL"
    local loc
    loc=$(m8_hdr Location)
    AUTH_CODE=${loc#*#auth_code=}
}

# sso_cb_url BASE API: login-url -> authorize only; sets VERIFIER and CB_URL
# (the callback is left to the caller).
sso_cb_url() {
    VERIFIER=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')
    local ch
    ch=$("$PY" -c 'import sys,hashlib,base64; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).rstrip(b"=").decode())' "$VERIFIER")
    m8_http GET "$1/user/$2/login-url/?redirect_target=$TARGET_Q&code_challenge=$ch"
    local u
    u=$(jf "j['url']")
    [ -n "$u" ] || return 1
    m8_http GET "$u"
    CB_URL=$(m8_hdr Location)
    [ -n "$CB_URL" ]
}

exchange() { # BASE API CODE VERIFIER [curl args...]
    local base=$1 api=$2 code=$3 v=$4
    shift 4
    m8_http POST "$base/user/$api/exchange/" -H 'Content-Type: application/json' \
        --data-binary "{\"code\":\"$code\",\"code_verifier\":\"$v\"}" "$@"
}

TOKKEY='Test-Tokens-Encryption-Key-0123456789ab!'
# fernet_dec CIPHERTEXT: the plaintext, as fa-auth-m8 reads a stored token
fernet_dec() {
    "$PY" -c 'import base64, hashlib, sys
from cryptography.fernet import Fernet
f = Fernet(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()))
print(f.decrypt(sys.argv[2].encode()).decode())' "$TOKKEY" "$1" 2>/dev/null || echo "(no token)"
}
jti_of() { "$PY" -c 'import jwt, sys; print(jwt.decode(sys.argv[1], options={"verify_signature": False})["jti"])' "$1"; }

run_kind() {
    local kind=$1 lk=${1,,} d=$T_DIR/db-${1,,}
    local I=${ISS[$kind]} I2=${ISS2[$kind]} C=${CONS[$kind]}
    if [ $kind = Mysql ]; then m8_mariadb_start "$d" "${DBPORT[$kind]}"; else m8_pg_start "$d" "${DBPORT[$kind]}"; fi ||
        { t_report 1 "$lk: the $kind server starts"; return; }
    m8_db_create $kind "$d" "${DBPORT[$kind]}" $DBNAME $DBUSER "$PW" ||
        { t_report 1 "$lk: the issuer's database and user"; return; }

    # the test provider, knowing both issuers' callbacks
    local opd=$T_DIR/op_$lk
    mkdir -p "$opd"
    "$PY" "$OP_PY" "$opd" --client-id $CID --client-secret $CSECRET \
        --redirect-uri "$I/user/google-auth/oauth-callback/" \
        --redirect-uri "$I2/user/oidc/callback/" 2>"$opd/log" &
    M8_PIDS+=("$!")
    m8_wait_for 30 test -s "$opd/port" || { t_report 1 "$lk: the test provider starts"; return; }
    local OP=http://127.0.0.1:$(cat "$opd/port")

    issuer_env "$T_DIR/iss_$lk.env" $kind GOOGLE_CLIENT_ID=$CID GOOGLE_CLIENT_SECRET=$CSECRET \
        "GOOGLE_OAUTH_REDIRECT_URI=$I/user/google-auth/oauth-callback/" "GOOGLE_OIDC_ISSUER=$OP"
    if ! start_issuer "iss_$lk" "$T_DIR/iss_$lk.env" "$I"; then
        t_report 1 "$lk: fcgim8-issuer with Google login is ready"
        t_diag "$(tail -n 20 "$T_DIR/iss_$lk.log")"
        return
    fi
    t_report 0 "$lk: fcgim8-issuer with Google login (GOOGLE_OIDC_ISSUER = the test provider) is ready"

    # -------------------------------------------------------------- login-url checks
    local ch=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM
    m8_http GET "$I/user/google-api/login-url/?code_challenge=$ch"
    t_is "$H_STATUS:$H_BODY" '400:{"detail":"redirect_target is required."}' \
        "$lk: login-url without redirect_target: 400"
    m8_http GET "$I/user/google-api/login-url/?redirect_target=https%3A%2F%2Fevil.example.com%2F&code_challenge=$ch"
    t_is "$H_STATUS:$H_BODY" '400:{"detail":"redirect_target scheme not allowed."}' \
        "$lk: login-url with an https target not in OAUTH_ALLOWED_REDIRECT_SCHEMES: 400"
    m8_http GET "$I/user/google-api/login-url/?redirect_target=$TARGET_Q&code_challenge=short"
    t_is "$H_STATUS" 400 "$lk: login-url with a malformed code_challenge: 400"
    m8_http GET "$I/user/google-api/login-url/?redirect_target=$TARGET_Q&code_challenge=$ch"
    t_like "$(jf "j['url']")" \
        "^$OP/authorize\\?response_type=code&client_id=test-client.apps.example.com&redirect_uri=http%3A%2F%2F127.0.0.1%3A[0-9]+%2Fuser%2Fgoogle-auth%2Foauth-callback%2F&scope=openid\\+email\\+profile&state=[A-Za-z0-9_-]{22}&access_type=offline&prompt=consent&code_challenge=[A-Za-z0-9_-]{43}&code_challenge_method=S256&nonce=[A-Za-z0-9_-]{22}$" \
        "$lk: login-url: 200 with fa-auth-m8's URL (quote_plus, its order) and a nonce"

    # -------------------------------------------------------------- the full login
    sso "$I" google-api
    t_is "$H_STATUS" 307 "$lk: the callback redirects (307)"
    t_like "$(m8_hdr Location)" "^${TARGET//./\\.}#auth_code=[0-9a-f-]{36}$" \
        "$lk: ... to redirect_target#auth_code=<uuid>"
    t_like "$(cookie_attrs access_token)" '^HttpOnly; Max-Age=1800; Path=/; SameSite=lax$' \
        "$lk: ... with the access_token cookie (HttpOnly, SameSite=lax)"
    t_like "$(cookie_attrs refresh_token)" '^HttpOnly; Max-Age=3600; Path=/; SameSite=lax$' \
        "$lk: ... and the refresh_token cookie"
    local cb1=$CB_URL code1=$AUTH_CODE v1=$VERIFIER
    exchange "$I" google-api "$code1" "$v1"
    t_is "$H_STATUS:$(jf "j['version'], j['auth_provider'], j['user']['email'], j['user']['name'], 'code_challenge' in j")" \
        "200:1 google sso.user@example.com Sso User False" \
        "$lk: the exchange with the PKCE verifier: 200, the payload without code_challenge"
    local tok
    tok=$(jf "j['access_token']")
    m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$(jf "j['email'], j['role']")" "200:sso.user@example.com user" \
        "$lk: the access token works on /profile/get/me/ (role user)"
    local uid1
    uid1=$(jf "j['id']")
    m8_write_env "$T_DIR/cons_$lk.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
        "JWKS_URI=$I/user/.well-known/jwks.json" TOKEN_MODE=stateless
    m8_svc_listen "cons_$lk" example "unix:$T_DIR/cons_$lk.sock" "$T_DIR/cons_$lk.env" -- --threads 2
    m8_wait_sock "$T_DIR/cons_$lk.sock" 15 || m8_svc_diag "cons_$lk"
    m8_http GET "$C/api/profile" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$(jf "j['email']")" "200:sso.user@example.com" \
        "$lk: ... and at a consumer (keys from the issuer's JWKS)"

    # -------------------------------------------------------------- the stored Google tokens
    local issued jti1
    issued=$("$CURL" -sS --max-time 10 "$OP/last-tokens")
    jti1=$(jti_of "$tok")
    col() { # COLUMN: that column of the session row of jti1
        if [ $kind = Mysql ]; then
            m8_mariadb_sql "$d" "SELECT $1 FROM $DBNAME.auth_client_session WHERE jwt_jti = '$jti1'"
        else
            M8_PG_DB=$DBNAME m8_pg_sql "$d" "${DBPORT[$kind]}" \
                "SELECT $1 FROM auth_client_session WHERE jwt_jti = '$jti1'"
        fi
    }
    local want_a want_r
    want_a=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["access_token"])' "$issued")
    want_r=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["refresh_token"])' "$issued")
    t_is "$(fernet_dec "$(col external_access_token)")|$(fernet_dec "$(col external_refresh_token)")" \
        "$want_a|$want_r" \
        "$lk: the session row keeps Google's access and refresh tokens, Fernet under TOKENS_ENCRYPTION_KEY (Python reads them)"
    t_like "$(col external_access_token)" '^gAAAAA[A-Za-z0-9_=-]+$' "$lk: ... the column holds the ciphertext only"
    t_is "$(col "external_token_expires_at IS NOT NULL")" "$([ $kind = Mysql ] && echo 1 || echo t)" \
        "$lk: ... and their expiry (expires_in)"
    t_is "$(grep -c -e "$want_a" -e "$want_r" "$T_DIR/iss_$lk.log" "$T_DIR/iss_$lk.out" | awk -F: '{s+=$NF} END {print s}')" 0 \
        "$lk: ... and neither token is ever logged"
    m8_http POST "$I/user/sessions/refresh-google-tokens/" -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/json' \
        --data-binary '{"external_access_token":"ya29.from-the-client","external_token_expires_at":"2031-05-06T07:08:09Z"}'
    t_is "$H_STATUS:$(jf "j['provider'], j['jwt_jti'], j['external_token_expires_at'][:19], sorted(j)")" \
        "200:google $jti1 2031-05-06T07:08:09 ['created_at', 'external_token_expires_at', 'id', 'jwt_expires_at', 'jwt_jti', 'provider', 'refresh_expires_at', 'revoked', 'updated_at']" \
        "$lk: POST /sessions/refresh-google-tokens/ through nginx: 200 ClientSessionPublic, no token in it"
    t_is "$(fernet_dec "$(col external_access_token)")|$(fernet_dec "$(col external_refresh_token)")" \
        "ya29.from-the-client|$want_r" \
        "$lk: ... the access token replaced (encrypted), the refresh token (not sent) kept"
    m8_http GET "$I/user/openapi.json"
    t_is "$(jf "j['paths']['/user/sessions/refresh-google-tokens/']['post']['summary']")" \
        "Refresh Google Tokens" "$lk: ... and listed in OpenAPI"

    exchange "$I" google-api "$code1" "$v1"
    t_is "$H_STATUS:$H_BODY" "400:$D_CODE" "$lk: the auth code again: 400 (single use)"
    m8_http GET "$cb1"
    t_is "$H_STATUS:$H_BODY" "400:$D_STATE" "$lk: the callback again (state reuse): 400"
    m8_http GET "$I/user/google-auth/oauth-callback/?code=abc&state=nosuchstate0123456789a"
    t_is "$H_STATUS:$H_BODY" "400:$D_STATE" "$lk: a callback with an unknown state: 400"

    sso "$I" google-api
    exchange "$I" google-api "$AUTH_CODE" "$v1"
    t_is "$H_STATUS:$H_BODY" '400:{"detail":"PKCE verification failed."}' \
        "$lk: the exchange with another client's verifier: 400 PKCE verification failed."
    sso "$I" google-api
    exchange "$I" google-api "$AUTH_CODE" "$VERIFIER"
    tok=$(jf "j['access_token']")
    m8_http GET "$I/user/profile/get/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$(jf "j['id']")" "200:$uid1" "$lk: the second login finds the same user"
    t_is "$(cat "$T_DIR/iss_$lk.log" | grep -c 'google user .* created on first sign-in')" 1 \
        "$lk: the user was created just in time once"

    # -------------------------------------------------------------- provider faults
    local f want
    for f in wrong_nonce wrong_aud expired unknown_kid wrong_iss hs256 email_unverified token_500 \
        redirect_mismatch no_id_token; do
        case $f in
            email_unverified) want="400:$D_REFUSED" ;;
            token_500 | redirect_mismatch) want="400:$D_EXCH" ;;
            no_id_token) want='400:{"detail":"Missing id_token in token response."}' ;;
            *) want="400:$D_BAD" ;;
        esac
        sso "$I" google-api "" $f
        t_is "$H_STATUS:$H_BODY" "$want" "$lk: provider fault $f: refused with ${want%%:*}"
    done
    t_is "$(grep -c 'google sign-in refused: expired' "$T_DIR/iss_$lk.log")" 1 \
        "$lk: the log names why the expired ID token was refused"

    # -------------------------------------------------------------- one state, two callbacks at once
    sso_cb_url "$I" google-api || t_report 1 "$lk: a callback URL for the state race"
    "$CURL" -s -o /dev/null --max-time 30 -w '%{http_code}' "$CB_URL" >"$T_DIR/st_a" &
    local psa=$!
    "$CURL" -s -o /dev/null --max-time 30 -w '%{http_code}' "$CB_URL" >"$T_DIR/st_b" &
    local psb=$!
    wait $psa $psb
    t_is "$(printf '%s\n%s\n' "$(cat "$T_DIR/st_a")" "$(cat "$T_DIR/st_b")" | sort | tr '\n' ' ')" \
        "307 400 " "$lk: one state, two callbacks at once: exactly one redirects, the other 400"

    # -------------------------------------------------------------- a sub differing only in case
    # (MariaDB's user table compares oauth_user_id without regard to case)
    control "$OP" "{\"user\":{\"sub\":\"g-Case-$lk\",\"email\":\"case.a.$lk@example.com\",\"email_verified\":true,\"name\":\"Case A\"}}"
    sso "$I" google-api
    exchange "$I" google-api "$AUTH_CODE" "$VERIFIER"
    local uid_case
    uid_case=$(jf "j['user']['email']")
    control "$OP" "{\"user\":{\"sub\":\"g-case-$lk\",\"email\":\"case.b.$lk@example.com\",\"email_verified\":true,\"name\":\"Case B\"}}"
    sso "$I" google-api
    local got_case="refused"
    if [ "$H_STATUS" = 307 ]; then
        exchange "$I" google-api "$AUTH_CODE" "$VERIFIER"
        got_case=$(jf "j['user']['email']")
    fi
    t_is "$uid_case|$([ "$got_case" = "case.a.$lk@example.com" ] && echo same || echo other)" \
        "case.a.$lk@example.com|other" \
        "$lk: a Google sub differing only in case never signs in to the first sub's account"

    # -------------------------------------------------------------- two first logins at once
    # (the loser of the just-in-time insert looks again and finds the winner's account)
    local r cba cbb
    for r in 1 2 3; do
        control "$OP" "{\"user\":{\"sub\":\"g-race-$r-$lk\",\"email\":\"race.$r.$lk@example.com\",\"email_verified\":true,\"name\":\"Race\"}}"
        sso_cb_url "$I" google-api && cba=$CB_URL && sso_cb_url "$I" google-api && cbb=$CB_URL ||
            { t_report 1 "$lk: race $r: two callback URLs"; continue; }
        "$CURL" -s -o /dev/null --max-time 30 -w '%{http_code}' "$cba" >"$T_DIR/race_a" &
        local pa=$!
        "$CURL" -s -o /dev/null --max-time 30 -w '%{http_code}' "$cbb" >"$T_DIR/race_b" &
        local pb=$!
        wait $pa $pb
        t_is "$(cat "$T_DIR/race_a"):$(cat "$T_DIR/race_b")" "307:307" \
            "$lk: two first sign-ins of one identity at once (round $r): both redirect (307)" ||
            t_diag "$(grep -i 'refused\|sso' "$T_DIR/iss_$lk.log" | tail -n 5)"
    done

    # -------------------------------------------------------------- a local account's email
    login_pw() {
        m8_http POST "$I/user/login/access-token" --data-urlencode "username=$1" \
            --data-urlencode "password=$2"
    }
    login_pw $SU "$SU_PW"
    local su_tok
    su_tok=$(jf "j['access_token']")
    m8_http POST "$I/user/users/new_user/" -H "Authorization: Bearer $su_tok" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"email\":\"local.$lk@example.com\",\"password\":\"$L_PW\",\"role\":\"user\"}"
    t_is "$H_STATUS" 200 "$lk: the superuser creates a local password user"
    local lid
    lid=$(jf "j['id']")
    control "$OP" "{\"user\":{\"sub\":\"g-local-$lk\",\"email\":\"local.$lk@example.com\",\"email_verified\":true,\"name\":\"Intruder\"}}"
    sso "$I" google-api
    t_is "$H_STATUS:$H_BODY" "400:$D_REFUSED" \
        "$lk: a Google identity with a local password user's email: refused (never linked)"
    sso "$I" google-api
    t_is "$H_STATUS:$H_BODY" "400:$D_REFUSED" "$lk: ... again: still not linked"
    login_pw "local.$lk@example.com" "$L_PW"
    t_is "$H_STATUS" 200 "$lk: ... and the local user still logs in with the password"
    t_is "$(grep -c 'refused for this account: email_in_use' "$T_DIR/iss_$lk.log")" 2 \
        "$lk: the log says email_in_use"

    # -------------------------------------------------------------- issuer 2: Google off, generic on
    control "$OP" "{\"user\":{\"sub\":\"o-200001\",\"email\":\"oidc.user.$lk@example.com\",\"email_verified\":true,\"name\":\"Oidc One\"}}"
    printf '%s' "$CSECRET" >"$T_DIR/oidc_secret"
    issuer_env "$T_DIR/iss2_$lk.env" $kind "OIDC_ISSUER_URL=$OP" OIDC_CLIENT_ID=$CID \
        "OIDC_REDIRECT_URI=$I2/user/oidc/callback/" OIDC_DEFAULT_ROLE=reader \
        OIDC_LINK_VERIFIED_EMAIL=true
    if ! start_issuer "iss2_$lk" "$T_DIR/iss2_$lk.env" "$I2" "OIDC_CLIENT_SECRET_FILE=$T_DIR/oidc_secret"; then
        t_report 1 "$lk: a second issuer with the generic provider is ready"
        t_diag "$(tail -n 20 "$T_DIR/iss2_$lk.log")"
        return
    fi
    m8_http GET "$I2/user/google-api/login-url/?redirect_target=$TARGET_Q&code_challenge=$ch"
    local a=$H_STATUS:$H_BODY
    m8_http GET "$I2/user/google-auth/oauth-callback/?code=x&state=y"
    local b=$H_STATUS:$H_BODY
    exchange "$I2" google-api 00000000-0000-4000-8000-000000000000 "$v1"
    t_is "$a|$b|$H_STATUS:$H_BODY" "404:$D_OFF|404:$D_OFF|404:$D_OFF" \
        "$lk: Google disabled: its three routes answer 404 feature_unavailable"
    # discovery answered by a redirect (here to a copy of the same document):
    # not followed, the provider stays unavailable until a direct answer
    control "$OP" '{"discovery_redirect":true}'
    m8_http GET "$I2/user/oidc/login-url/?redirect_target=$TARGET_Q&code_challenge=$ch"
    t_is "$H_STATUS:$H_BODY" '503:{"detail":"Identity provider unavailable."}' \
        "$lk: a discovery document behind a redirect is not followed: 503"
    control "$OP" '{"discovery_redirect":false}'
    login_url_ok() {
        m8_http GET "$I2/user/oidc/login-url/?redirect_target=$TARGET_Q&code_challenge=$ch"
        [ "$H_STATUS" = 200 ]
    }
    m8_wait_for 30 login_url_ok
    t_is "$H_STATUS" 200 "$lk: ... the next discovery attempt (at most every 10 s) succeeds"
    sso "$I2" oidc
    t_is "$H_STATUS" 307 "$lk: generic provider (discovery, client secret from a file): the callback redirects"
    exchange "$I2" oidc "$AUTH_CODE" "$VERIFIER"
    tok=$(jf "j['access_token']")
    t_is "$H_STATUS:$(jf "j['auth_provider']")" "200:oidc" "$lk: ... the exchange: 200"
    m8_http GET "$I2/user/profile/get/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$(jf "j['email'], j['role'], j['full_name']")" \
        "200:oidc.user.$lk@example.com reader Oidc One" \
        "$lk: ... a JIT user with OIDC_DEFAULT_ROLE"
    local uid2
    uid2=$(jf "j['id']")
    jti1=$(jti_of "$tok")
    t_is "$(col "COALESCE(external_access_token, 'none')")|$(col "COALESCE(external_refresh_token, 'none')")" \
        "none|none" "$lk: ... the generic provider's tokens are not kept on its session row"
    m8_http POST "$I2/user/sessions/refresh-google-tokens/" -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/json' --data-binary '{"external_access_token":"x"}'
    t_is "$H_STATUS:$H_BODY" '400:{"detail":"Only a Google session holds Google tokens"}' \
        "$lk: ... and refresh-google-tokens refuses that session (400)"
    control "$OP" '{"user":{"name":"Oidc Renamed"}}'
    sso "$I2" oidc
    exchange "$I2" oidc "$AUTH_CODE" "$VERIFIER"
    tok=$(jf "j['access_token']")
    m8_http GET "$I2/user/users/get/$uid2/" -H "Authorization: Bearer $su_tok"
    t_is "$H_STATUS:$(jf "j['id'], j['full_name']")" "200:$uid2 Oidc Renamed" \
        "$lk: ... the second login finds the same user and syncs the profile"

    # with OIDC_LINK_VERIFIED_EMAIL=true: a verified email links, an unverified one does not
    control "$OP" "{\"user\":{\"sub\":\"o-link-$lk\",\"email\":\"local.$lk@example.com\",\"email_verified\":false}}"
    sso "$I2" oidc
    t_is "$H_STATUS:$H_BODY" '400:{"detail":"Sign-in could not be completed for this account."}' \
        "$lk: link allowed, but the provider does not assert the email verified: refused"
    control "$OP" '{"user":{"email_verified":true}}'
    sso "$I2" oidc
    exchange "$I2" oidc "$AUTH_CODE" "$VERIFIER"
    tok=$(jf "j['access_token']")
    m8_http GET "$I2/user/profile/get/me/" -H "Authorization: Bearer $tok"
    t_is "$H_STATUS:$(jf "j['id']")" "200:$lid" \
        "$lk: link allowed and the email verified: the local account is linked (logged)"
    t_is "$(grep -c 'oidc identity linked to the existing account' "$T_DIR/iss2_$lk.log")" 1 \
        "$lk: ... and the link is logged"
    # the email now shows up under another subject of the same provider: the
    # account is already bound to a subject there, so no second link
    control "$OP" "{\"user\":{\"sub\":\"o-link2-$lk\",\"email\":\"local.$lk@example.com\",\"email_verified\":true}}"
    sso "$I2" oidc
    t_is "$H_STATUS:$H_BODY" '400:{"detail":"Sign-in could not be completed for this account."}' \
        "$lk: link allowed, but the account is bound to another subject of the provider: refused"
    t_is "$(grep -c 'refused for this account: subject_mismatch' "$T_DIR/iss2_$lk.log")" 1 \
        "$lk: ... the log says subject_mismatch"

    # -------------------------------------------------------------- codes bound to their provider
    # (both issuers share the database: a code of either is taken at the
    # other's exchange, refused as unknown, and then gone at its own)
    control "$OP" "{\"user\":{\"sub\":\"o-cross-$lk\",\"email\":\"cross.o.$lk@example.com\",\"email_verified\":true}}"
    sso "$I2" oidc
    local oc=$AUTH_CODE ov=$VERIFIER gc gv
    control "$OP" "{\"user\":{\"sub\":\"g-cross-$lk\",\"email\":\"cross.g.$lk@example.com\",\"email_verified\":true}}"
    sso "$I" google-api
    gc=$AUTH_CODE gv=$VERIFIER
    local xff=(-H 'X-Forwarded-For: 10.20.30.40')
    exchange "$I2" oidc "$gc" "$gv" "${xff[@]}"
    t_is "$H_STATUS:$H_BODY" "400:$D_CODE" "$lk: a Google auth code at /oidc/exchange/: 400 as an unknown code"
    exchange "$I" google-api "$gc" "$gv" "${xff[@]}"
    t_is "$H_STATUS:$H_BODY" "400:$D_CODE" "$lk: ... and it was taken: refused at /google-api/exchange/ too"
    exchange "$I" google-api "$oc" "$ov" "${xff[@]}"
    t_is "$H_STATUS:$H_BODY" "400:$D_CODE" "$lk: an OIDC auth code at /google-api/exchange/: 400 as an unknown code"
    exchange "$I2" oidc "$oc" "$ov" "${xff[@]}"
    t_is "$H_STATUS:$H_BODY" "400:$D_CODE" "$lk: ... and it was taken: refused at /oidc/exchange/ too"

    # -------------------------------------------------------------- the exchange limit
    local i st=""
    for i in $(seq 1 12); do
        exchange "$I" google-api 00000000-0000-4000-8000-000000000000 "$v1"
        st=$H_STATUS:$H_BODY
        [ "$H_STATUS" = 429 ] && break
    done
    t_is "$st" '429:{"detail":"Too many requests."}' "$lk: the exchange per address: 429 past 10 a minute"
}

for kind in "${KINDS[@]}"; do
    run_kind "$kind"
done
t_done
