#!/bin/bash
# t_apache.sh - the example service behind a real Apache 2.4, configured with
# the contrib/apache files as shipped (standalone.conf + one site per mode):
#   U  mod_proxy_fcgi -> example --listen unix:PATH      fcgi-m8-proxy-unix.conf
#   T  mod_proxy_fcgi -> example --listen 127.0.0.1:PORT fcgi-m8-proxy-tcp.conf
#   F  mod_fcgid runs the example itself (socket on fd 0) fcgi-m8-fcgid.conf
#   C  mod_cgid runs the example as a CGI program         fcgi-m8-cgi.conf
# For each: an authenticated request with an RS256 token signed by the
# openssl command (an independent implementation), the 401/403 answers
# (doc/responses.md#auth-failures) without
# and with a bad token, the role check, /ping, and bodies at, just over and
# far over the service's 1 MiB limit.  As root, Apache's children run as
# www-data from a copy of the program in the temporary directory.
# Ports from 18600-18649.  Skips only when apache2 is not installed.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$APACHE2" ] || t_skip_all "apache2 is not installed"
[ -n "$CURL" ] || t_bail "curl is not installed"
command -v openssl >/dev/null || t_bail "openssl is not installed"
MODS=$(m8_apache_modules) || t_bail "apache2 is installed but its modules are not found"
for m in mod_proxy_fcgi mod_cgid mod_fcgid; do
    [ -f "$MODS/$m.so" ] ||
        t_bail "$MODS/$m.so is missing (apt-get install apache2 libapache2-mod-fcgid)"
done
m8_init t_apache

EX=$(m8_svc_bin example)
[ -x "$EX" ] || t_bail "the example is not built ($EX)"
ISS=https://auth.example.com
AUD=item-service
LIMIT=$((1 << 20)) # the example's body limit (M8_DEFAULT_MAX_BODY)
AP=$T_DIR/apache
MODES=(U T F C)
declare -A URL=()
declare -A WHAT=([U]="mod_proxy_fcgi unix" [T]="mod_proxy_fcgi tcp" [F]=mod_fcgid [C]=CGI)

# ------------------------------------------------------------- Apache's directory, keys, settings
m8_apache_prepare "$AP" ||
    t_bail "cannot prepare the Apache directory from contrib/apache/standalone.conf"
m8_apache_program "$AP" example || t_bail "cannot copy the example for Apache's user"
PROG=$M8_APACHE_BIN
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null &&
    openssl pkey -in "$T_DIR/rsa.pem" -pubout -out "$AP/etc/rsa.pub" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
ENVF=$AP/etc/item-service.env
m8_write_env "$ENVF" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    ACCESS_PUBLIC_KEY_FILE="$AP/etc/rsa.pub" TOKEN_STRICT_VALIDATION=true TOKEN_ISSUER=$ISS \
    TOKEN_AUDIENCE=$AUD
# Apache's user reads these (mod_fcgid and CGI); the private key stays in T_DIR.
chmod 644 "$ENVF" "$AP/etc/rsa.pub"

# ------------------------------------------------------------- the services behind mod_proxy_fcgi
m8_pick_port 18600 18649 || t_bail "no free port in 18600-18649"
BACKEND=127.0.0.1:$M8_PORT
SOCK=$AP/run/item-service.sock
chmod 755 "$AP/run"
m8_svc_listen U example "unix:$SOCK" "$ENVF" -- --threads 2
m8_svc_listen T example "$BACKEND" "$ENVF" -- --threads 2
m8_wait_sock "$SOCK" 15 || { m8_svc_diag U; t_bail "the unix-socket service did not start"; }
# The socket is 0660 root:root; Apache's user connects through its group
# (fcgim8d --socket-group www-data does the same).
[ "$(id -u)" = 0 ] && chgrp "$M8_APACHE_GROUP" "$SOCK"

# ------------------------------------------------------------- Apache with the contrib sites
for b in "${MODES[@]}"; do
    m8_pick_port 18600 18649 || t_bail "no free port in 18600-18649"
    URL[$b]=http://127.0.0.1:$M8_PORT
    case $b in
        U) m8_apache_site "$AP" "$b" fcgi-m8-proxy-unix.conf LISTEN="127.0.0.1:$M8_PORT" \
               SERVER_NAME=localhost NAME=item-service SOCKET="$SOCK" ;;
        T) m8_apache_site "$AP" "$b" fcgi-m8-proxy-tcp.conf LISTEN="127.0.0.1:$M8_PORT" \
               SERVER_NAME=localhost BACKEND="$BACKEND" ;;
        F) m8_apache_site "$AP" "$b" fcgi-m8-fcgid.conf LISTEN="127.0.0.1:$M8_PORT" \
               SERVER_NAME=localhost SERVICE="$PROG" ENV_FILE="$ENVF" ;;
        C) m8_apache_site "$AP" "$b" fcgi-m8-cgi.conf LISTEN="127.0.0.1:$M8_PORT" \
               SERVER_NAME=localhost SERVICE="$PROG" ENV_FILE="$ENVF" ;;
    esac || t_bail "cannot render the Apache site for ${WHAT[$b]}"
done
m8_apache_start "$AP" || t_bail "Apache did not start: $(tail -n 5 "$AP/error.log" 2>/dev/null)"
ap_diag() {
    t_diag "--- Apache error.log (last 15 lines)" "$(tail -n 15 "$AP/error.log" 2>/dev/null)"
}
ready() { m8_http GET "$1/api/health/"; [ "$H_STATUS" = 200 ]; }
for b in "${MODES[@]}"; do
    if ! m8_wait_for 20 ready "${URL[$b]}"; then
        ap_diag
        case $b in U | T) m8_svc_diag "$b" ;; esac
        t_bail "${WHAT[$b]}: the service does not answer through Apache (last status $H_STATUS)"
    fi
done

# ------------------------------------------------------------- tokens (openssl, not fcgi-m8)
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
uuid() { cat /proc/sys/kernel/random/uuid; }
mint() { # ROLE EMAIL: an RS256 access token shaped like the issuer's (doc/wire.md#token-claims)
    local now claims si sig
    now=$(date +%s)
    claims='{"sub":"%s","type":"access","email":"%s","full_name":null,"avatar":null,'
    claims+='"is_active":true,"email_verified":true,"is_superuser":false,"role":"%s",'
    claims+='"tenant_id":null,"exp":%d,"iat":%d,"nbf":%d,"jti":"%s","iss":"%s","aud":"%s"}'
    # shellcheck disable=SC2059  # the format is ours
    si=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url).$(printf "$claims" "$(uuid)" "$2" "$1" \
        $((now + 600)) "$now" "$now" "$(uuid)" "$ISS" "$AUD" | b64url)
    sig=$(printf '%s' "$si" | openssl dgst -sha256 -sign "$T_DIR/rsa.pem" -binary | b64url)
    printf '%s.%s\n' "$si" "$sig"
}
USER_T=$(mint user Alice@Example.COM)
ADMIN_T=$(mint admin Root@Example.COM)
[ -n "$USER_T" ] && [ -n "$ADMIN_T" ] || t_bail "openssl cannot sign a token"

# Bodies: exactly the service's limit, one byte over, and over Apache's 2 MiB.
head -c "$LIMIT" /dev/zero | tr '\0' x >"$T_DIR/at.body"
head -c $((LIMIT + 1)) /dev/zero | tr '\0' x >"$T_DIR/over.body"
head -c $((2 * LIMIT + 1)) /dev/zero | tr '\0' x >"$T_DIR/huge.body"
post() { # BASE PATH FILE
    m8_http POST "$1$2" -H 'Content-Type: application/octet-stream' --data-binary "@$3"
}

# ------------------------------------------------------------- every mode
for b in "${MODES[@]}"; do
    u=${URL[$b]} w=${WHAT[$b]}
    m8_http GET "$u/ping"
    t_is "$H_STATUS" 200 "$w: GET /ping: 200"
    m8_http GET "$u/api/items/" -H "Authorization: Bearer $USER_T"
    t_is "$H_STATUS:$H_BODY" '200:{"owner":"alice@example.com"}' \
        "$w: Authorization arrives: a valid RS256 token gets 200 with the owner's email" ||
        ap_diag
    m8_http GET "$u/api/items/"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Not authenticated"}' \
        "$w: no token: 401 Not authenticated"
    t_is "$(m8_hdr WWW-Authenticate)" Bearer "$w: no token: WWW-Authenticate: Bearer"
    m8_http GET "$u/api/items/" -H "Authorization: Bearer ${USER_T%?}x"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Could not validate credentials."}' \
        "$w: an altered signature: 401 Could not validate credentials."
    t_is "$(m8_hdr WWW-Authenticate)" 'Bearer error="invalid_token"' \
        "$w: an invalid token: WWW-Authenticate: Bearer error=\"invalid_token\""
    m8_http DELETE "$u/api/items/42/admin" -H "Authorization: Bearer $USER_T"
    t_is "$H_STATUS" 403 "$w: the admin route with a user token: 403"
    m8_http DELETE "$u/api/items/42/admin" -H "Authorization: Bearer $ADMIN_T"
    t_is "$H_STATUS:$H_BODY" '200:{"deleted":"42","by":"root@example.com"}' \
        "$w: the admin route with an admin token: 200"
    post "$u" /api/ping "$T_DIR/at.body"
    t_is "$H_STATUS" 405 \
        "$w: a body of exactly the limit ($LIMIT bytes) is read and routed (POST /api/ping: 405)"
    post "$u" /api/ping "$T_DIR/over.body"
    if [ "$b" = C ]; then
        # LimitRequestBody is the service's limit: Apache refuses it itself.
        t_is "$H_STATUS" 413 "$w: a body one byte over the limit: 413"
        t_like "$(m8_hdr Content-Type)" '^text/html' \
            "$w: ... from Apache (LimitRequestBody = the service's limit)"
    else
        t_is "$H_STATUS:$H_BODY" '413:{"detail":"Request Entity Too Large"}' \
            "$w: a body one byte over the limit: the service's JSON 413"
        m8_http POST "$u/api/ping" -H 'Transfer-Encoding: chunked' \
            -H 'Content-Type: application/octet-stream' --data-binary "@$T_DIR/over.body"
        t_is "$H_STATUS:$H_BODY" '413:{"detail":"Request Entity Too Large"}' \
            "$w: a chunked body one byte over the limit: the service's JSON 413"
    fi
    post "$u" /api/ping "$T_DIR/huge.body"
    t_is "$H_STATUS" 413 "$w: a body over Apache's cap (2 MiB): 413"
    t_like "$(m8_hdr Content-Type)" '^text/html' "$w: ... answered by Apache itself (its HTML page)"
    m8_http GET "$u/api/ping?x"
    t_is "$H_STATUS" 200 "$w: GET /api/ping?x (a query without '='): 200"
done

# ------------------------------------------------------------- CGI: the query is no command line
m8_pick_port 18600 18649 || t_bail "no free port in 18600-18649"
for q in --version '%2D%2Dversion' "x+--listen+127.0.0.1:$M8_PORT" "--env-file+$ENVF"; do
    m8_http GET "${URL[C]}/api/ping?$q"
    t_is "$H_STATUS" 403 \
        "CGI: GET /api/ping?$q: 403 (options in a query without '=' never reach the command line)"
done
t_ok "$(m8_port_open "$M8_PORT" && echo 1 || echo 0)" \
    "CGI: ... and nothing listens on 127.0.0.1:$M8_PORT"
m8_http GET "${URL[C]}/api/ping?a=-1"
t_is "$H_STATUS" 200 "CGI: a query with '=' and a '-' is served (GET /api/ping?a=-1: 200)"
m8_http POST "${URL[C]}/api/ping" -H 'Transfer-Encoding: chunked' --data-binary x
t_is "$H_STATUS" 411 \
    "CGI: a chunked body: 411 from Apache (a CGI program reads CONTENT_LENGTH bytes)"

# ------------------------------------------------------------- mod_fcgid: process management
prog_pids() { pgrep -f -- "$AP/bin/" | sort | tr '\n' ' '; } # the copy runs under Apache only
no_prog() { [ -z "$(prog_pids)" ]; }
before=$(prog_pids)
t_ok "$([ -n "$before" ] && echo 0 || echo 1)" \
    "mod_fcgid: the service runs as mod_fcgid's process(es): $before"
ok=0
for i in $(seq 1 30); do
    m8_http GET "${URL[F]}/api/items/" -H "Authorization: Bearer $USER_T"
    [ "$H_STATUS" = 200 ] && ok=$((ok + 1))
done
t_is "$ok" 30 "mod_fcgid: 30 authenticated requests in a row: 30 x 200"
t_is "$(prog_pids)" "$before" "mod_fcgid: ... served by the same process(es): no recycling"
par=()
for i in 1 2 3 4; do
    "$CURL" -s -o /dev/null -w '%{http_code}\n' --max-time 20 \
        -H "Authorization: Bearer $USER_T" "${URL[F]}/api/items/" >"$T_DIR/par.$i" &
    par+=("$!")
done
wait "${par[@]}"
got=$(cat "$T_DIR"/par.* | sort | uniq -c | tr -s ' ' | tr '\n' ',')
name="mod_fcgid: 4 concurrent requests: 4 x 200 (mod_fcgid starts more processes)"
t_is "$got" " 4 200," "$name"
first=${before%% *}
grep -q "\"pid\":$first,.*\"status\":200" "$AP/error.log"
t_ok $? "mod_fcgid: the service's JSON log lines (pid $first) reach Apache's ErrorLog"
! grep -q "$USER_T" "$AP/error.log" "$AP/access.log"
t_ok $? "no token reaches Apache's logs"

# ------------------------------------------------------------- stop
m8_apache_stop "$AP"
t_ok $? "Apache stops on SIGTERM"
m8_wait_for 10 no_prog
t_is "$(prog_pids)" "" "no process Apache started from the program is left (mod_fcgid, CGI)"
for b in U T; do
    m8_svc_stop "$b" 10
    t_is "$M8_RC" 0 "${WHAT[$b]}: the service exits 0 on SIGTERM"
done
t_done
