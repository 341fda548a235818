#!/bin/bash
# scripts/demo.sh - builds fcgi-m8 and runs, behind a real nginx with the
# contrib/nginx files, until Ctrl-C:
#
#   http://127.0.0.1:8080 (M8_DEMO_PORT):   nginx -> fcgim8d -> 2 x item-service
#   http://127.0.0.1:8082 (M8_DEMO_ISSUER_PORT):
#                          nginx -> fcgim8d -> 2 x fcgim8-issuer -> PostgreSQL
#
# The issuer logs users in and signs their tokens (RS256); the example
# service takes its keys from the issuer's JWKS.  A private PostgreSQL
# cluster is started in the temporary directory for the issuer.
#
# Installs the Debian packages first when run as root.
#
#   sudo scripts/demo.sh
#
# The build goes to _build/demo (M8_DEMO_BUILD); everything the run writes
# (.env, socket, logs, nginx files) lives in a temporary directory that is
# removed on exit.  The pool listens on a unix socket; fcgim8d's status page
# is on http://127.0.0.1:8081/status (M8_DEMO_STATUS_PORT), loopback only.
set -u
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
build=${M8_DEMO_BUILD:-$top_srcdir/_build/demo}
port=${M8_DEMO_PORT:-8080}
sport=${M8_DEMO_STATUS_PORT:-$((port + 1))}
iport=${M8_DEMO_ISSUER_PORT:-$((port + 2))}
die() { echo "demo.sh: $*" >&2; exit 1; }

# ------------------------------------------------------------------ dependencies
if [ "$(id -u)" = 0 ]; then
    bash "$top_srcdir/scripts/install-deps.sh" || die "installing the dependencies failed"
else
    for c in autoreconf make cc pkg-config curl; do
        command -v "$c" >/dev/null 2>&1 || die "$c is missing: run  sudo scripts/install-deps.sh  first"
    done
    { command -v nginx || [ -x /usr/sbin/nginx ]; } >/dev/null 2>&1 ||
        die "nginx is missing: run  sudo scripts/install-deps.sh  first"
fi

# ------------------------------------------------------------------ build
echo "demo.sh: building in $build"
if [ ! -x "$top_srcdir/configure" ]; then
    (cd "$top_srcdir" && autoreconf -fi) >/dev/null || die "autoreconf failed"
fi
mkdir -p "$build" || die "cannot create $build"
if [ ! -f "$build/Makefile" ]; then
    (cd "$build" && "$top_srcdir/configure") >"$build/configure.out" 2>&1 ||
        { tail -n 20 "$build/configure.out"; die "configure failed (log: $build/configure.out)"; }
fi
(cd "$build" && make -j2) >"$build/make.out" 2>&1 ||
    { tail -n 30 "$build/make.out"; die "make failed (log: $build/make.out)"; }

top_builddir=$build
export top_srcdir top_builddir
. "$top_srcdir/tests/integration/lib.sh"
[ -n "$NGINX" ] || die "nginx is not installed"
[ -n "$CURL" ] || die "curl is not installed"
m8_port_open "$port" && die "127.0.0.1:$port is in use (set M8_DEMO_PORT)"
m8_port_open "$sport" && die "127.0.0.1:$sport is in use (set M8_DEMO_STATUS_PORT)"
m8_port_open "$iport" && die "127.0.0.1:$iport is in use (set M8_DEMO_ISSUER_PORT)"
m8_have_pg || die "PostgreSQL is not installed: run  sudo scripts/install-deps.sh  first"

# ------------------------------------------------------------------ run
m8_init demo
cred=demo-health-credential
# The issuer: its signing key (RS256, made here), a private PostgreSQL
# cluster and database, its settings, 2 workers under fcgim8d.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/issuer-signing.pem" 2>/dev/null ||
    die "openssl cannot make the issuer's key"
chmod 600 "$T_DIR/issuer-signing.pem"
m8_pick_port 15432 15499 || die "no free port for PostgreSQL in 15432-15499"
pgport=$M8_PORT
echo "demo.sh: starting PostgreSQL on 127.0.0.1:$pgport (data in $T_DIR/pg)"
m8_pg_start "$T_DIR/pg" "$pgport" || die "PostgreSQL did not start"
dbpw=Demo-Db-Pass-1234
m8_db_create Postgres "$T_DIR/pg" "$pgport" auth_db auth_user "$dbpw" || die "cannot create the issuer's database"
# the example service's credential for the issuer's private API (jti-status
# and the signed event stream: how it learns of a logout)
consumer_secret=Demo-Consumer-Secret-$(openssl rand -hex 16)
su_mail=admin@example.com
su_pw=Demo-Admin-Pass-1234!
m8_write_env "$T_DIR/issuer.env" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
    ALLOWED_HOSTS=localhost,127.0.0.1 ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    ACCESS_PRIVATE_KEY_FILE="$T_DIR/issuer-signing.pem" TOKEN_MODE=stateful \
    TOKEN_STRICT_VALIDATION=true TOKEN_ISSUER=https://auth.example.com TOKEN_AUDIENCE=item-service \
    SELECTED_DB=Postgres DB_HOST=127.0.0.1 DB_PORT=$pgport DB_DATABASE=auth_db DB_USER=auth_user \
    "DB_PASSWORD=$dbpw" FIRST_SUPERUSER=$su_mail "FIRST_SUPERUSER_PASSWORD=$su_pw" \
    "SESSION_SECRET=Demo-Session-Secret-$(openssl rand -hex 16)" \
    "TOKENS_ENCRYPTION_KEY=Demo-Tokens-Key-$(openssl rand -hex 16)" \
    "PRIVATE_API_SECRET=Demo-Private-Api-$(openssl rand -hex 16)" \
    "REFRESH_SECRET_KEY=Demo-Refresh-Secret-$(openssl rand -hex 16)" \
    "PRIVATE_API_CONSUMERS={\"item-service\":{\"secret\":\"$consumer_secret\",\"scopes\":[\"introspection\",\"event-stream\"]}}"
isock=$T_DIR/fcgim8-issuer.sock
M8_SVC_LOG[issuer]=$T_DIR/issuer.log
(cd "$T_DIR" && m8_clean_exec -- "$build/src/fcgim8d" --listen "unix:$isock" \
    --env-file "$T_DIR/issuer.env" --workers 2 --threads 2 -- "$build/src/fcgim8-issuer") \
    </dev/null >"$T_DIR/issuer.out" 2>"${M8_SVC_LOG[issuer]}" &
M8_SVC_PID[issuer]=$!
M8_PIDS+=("$!")
ibase=http://127.0.0.1:$iport
sock=$T_DIR/item-service.sock
m8_nginx_prepare "$T_DIR/nginx" || die "cannot render contrib/nginx/standalone.conf"
m8_nginx_site "$T_DIR/nginx" item-service fcgi-m8-unix.conf NAME=item_service \
    LISTEN="127.0.0.1:$port" SERVER_NAME=localhost SOCKET="$sock" ||
    die "cannot render contrib/nginx/fcgi-m8-unix.conf"
m8_nginx_site "$T_DIR/nginx" fcgim8-issuer fcgi-m8-unix.conf NAME=fcgim8_issuer \
    LISTEN="127.0.0.1:$iport" SERVER_NAME=localhost SOCKET="$isock" ||
    die "cannot render contrib/nginx/fcgi-m8-unix.conf"
m8_nginx_start "$T_DIR/nginx" || die "nginx did not start (see above)"

# The issuer first: the example service's pool fetches the JWKS from it
# through nginx as it starts.
iup() { m8_http GET "$ibase/user/health/"; [ "$H_STATUS" = 200 ]; }
if ! m8_wait_for 30 iup; then
    m8_svc_diag issuer
    die "the issuer did not become ready behind nginx (last status $H_STATUS)"
fi
# The example service: tokens from the issuer, keys from its JWKS, stateful:
# fcgim8d's sidecar follows the issuer's signed event stream, so a logout at
# the issuer reaches every worker within milliseconds.
m8_write_env "$T_DIR/.env" HEALTH_DETAIL_CREDENTIAL=$cred ALLOWED_HOSTS=localhost,127.0.0.1 \
    ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY JWKS_URI="$ibase/user/.well-known/jwks.json" \
    TOKEN_STRICT_VALIDATION=true TOKEN_ISSUER=https://auth.example.com TOKEN_AUDIENCE=item-service \
    TOKEN_MODE=stateful INTROSPECTION_URL="$ibase/user/private/v1/jti-status" \
    INTERNAL_CLIENT_ID=item-service "PRIVATE_API_SECRET=$consumer_secret"
# The pool: fcgim8d binds the socket, checks the settings and the service's
# startup validators (`item-service --check`), then starts 2 workers with 2
# threads each; its log (and every worker's, one JSON line each) goes to
# $T_DIR/fcgim8d.log.  As root the socket's group is www-data, as on a server.
svc=$(m8_svc_bin example)
pool=(--listen "unix:$sock" --env-file "$T_DIR/.env" --workers 2 --threads 2
    --status-listen "127.0.0.1:$sport")
[ "$(id -u)" = 0 ] && getent group www-data >/dev/null 2>&1 && pool+=(--socket-group www-data)
M8_SVC_LOG[item]=$T_DIR/fcgim8d.log
(cd "$T_DIR" && m8_clean_exec -- "$build/src/fcgim8d" "${pool[@]}" -- "$svc") \
    </dev/null >"$T_DIR/fcgim8d.out" 2>"${M8_SVC_LOG[item]}" &
M8_SVC_PID[item]=$!
M8_PIDS+=("$!")
base=http://127.0.0.1:$port
up() { m8_http GET "$base/api/health/"; [ "$H_STATUS" = 200 ]; }
if ! m8_wait_for 20 up; then
    m8_svc_diag item
    die "the service did not become ready behind nginx (last status $H_STATUS)"
fi

cat <<TXT

fcgi-m8 demo: item-service under fcgim8d behind nginx on $base
  pool:     $build/src/fcgim8d ${pool[*]} -- $svc
  nginx:    $T_DIR/nginx/nginx.conf (+ sites/item-service.conf from contrib/nginx/fcgi-m8-unix.conf)
  logs:     ${M8_SVC_LOG[item]} (fcgim8d and its workers, JSON lines), $T_DIR/nginx/access.log, $T_DIR/nginx/error.log
  reload:   kill -HUP ${M8_SVC_PID[item]}   (re-reads $T_DIR/.env, replaces the workers without dropping a request)
fcgim8-issuer under fcgim8d behind nginx on $ibase (API_PREFIX /user), PostgreSQL on 127.0.0.1:$pgport
  settings: $T_DIR/issuer.env   log: ${M8_SVC_LOG[issuer]}
  first superuser: $su_mail / $su_pw

Try:
TXT
try() { # DESCRIPTION CURL-ARGS...: runs it once, prints the line and the status it gave
    local desc=$1
    shift
    local st
    st=$("$CURL" -s -o /dev/null -w '%{http_code}' "$@")
    local line="curl -i" a
    for a in "$@"; do
        # a token is shown as the variable printed above it
        [ -n "${USER_TOKEN:-}" ] && a=${a//$USER_TOKEN/\$USER_TOKEN}
        [ -n "${ROOT_TOKEN:-}" ] && a=${a//$ROOT_TOKEN/\$ROOT_TOKEN}
        case $a in
            *\$*) line="$line \"$a\"" ;;
            *[!A-Za-z0-9_./:=-]*) line="$line '$a'" ;;
            *) line="$line $a" ;;
        esac
    done
    printf '  %-72s # %s (now: %s)\n' "$line" "$desc" "$st"
}
try "liveness (root)" "$base/ping"
try "liveness" "$base/api/ping"
try "service meta" "$base/api/meta"
try "health (public)" "$base/api/health/"
try "health detail" -H "X-Internal-Token: $cred" "$base/api/health/"
try "OpenAPI 3.1 document" "$base/api/openapi.json"
try "Swagger UI (open in a browser)" "$base/api/docs"
try "ReDoc (open in a browser)" "$base/api/redoc"
try "public route" "$base/api/items/info"
try "the pool: workers, requests, busy threads" "http://127.0.0.1:$sport/status"
try "the issuer: liveness" "$ibase/user/ping"
try "the issuer: its public keys (JWKS)" "$ibase/user/.well-known/jwks.json"

# Log in as the first superuser (FIRST_SUPERUSER), make a user, log in as it.
jget() { /usr/bin/python3 -c "import json,sys; print(json.loads(sys.stdin.read())$1)" 2>/dev/null; }
ROOT_TOKEN=$("$CURL" -s -X POST --data-urlencode "username=$su_mail" --data-urlencode "password=$su_pw" \
    "$ibase/user/login/access-token" | jget "['access_token']")
u_mail=reader@example.com
u_pw=Demo-Reader-Pass-1234!
"$CURL" -s -o /dev/null -X POST -H "Authorization: Bearer $ROOT_TOKEN" -H 'Content-Type: application/json' \
    --data-binary "{\"email\":\"$u_mail\",\"password\":\"$u_pw\",\"role\":\"reader\"}" \
    "$ibase/user/users/new_user/"
echo
echo "Log in (the refresh token comes back as a cookie, kept in $T_DIR/cookies):"
try "log in as $u_mail" -c "$T_DIR/cookies" -X POST --data-urlencode "username=$u_mail" \
    --data-urlencode "password=$u_pw" "$ibase/user/login/access-token"
USER_TOKEN=$("$CURL" -s -c "$T_DIR/cookies" -X POST --data-urlencode "username=$u_mail" \
    --data-urlencode "password=$u_pw" "$ibase/user/login/access-token" | jget "['access_token']")
echo "  export USER_TOKEN=$USER_TOKEN"
echo "  export ROOT_TOKEN=$ROOT_TOKEN   # the first superuser's"
echo
echo "Call the example service with the issuer's token:"
try "no token: 401" "$base/api/items/"
try "the caller's profile" -H "Authorization: Bearer $USER_TOKEN" "$base/api/profile"
try "admin only: 403 for a reader" -X DELETE -H "Authorization: Bearer $USER_TOKEN" "$base/api/items/42/admin"
try "superuser only" -X POST -H "Authorization: Bearer $ROOT_TOKEN" "$base/api/admin/bootstrap"
try "the issuer: who am I" -H "Authorization: Bearer $USER_TOKEN" "$ibase/user/profile/get/me/"
try "the issuer: users (superuser)" -H "Authorization: Bearer $ROOT_TOKEN" "$ibase/user/users/"
echo
echo "Log out, then the service and the issuer refuse the token:"
try "log out" -b "$T_DIR/cookies" -X POST -H "Authorization: Bearer $USER_TOKEN" "$ibase/user/login/logout/"
sleep 0.2 # the revocation travels issuer -> event stream -> fcgim8d -> every worker
try "the service: the logged-out token (401)" -H "Authorization: Bearer $USER_TOKEN" "$base/api/profile"
try "the issuer: the logged-out token (401 Session revoked)" -H "Authorization: Bearer $USER_TOKEN" "$ibase/user/profile/get/me/"
echo
echo "Press Ctrl-C to stop."
stop() { # Ctrl-C (the whole process group gets SIGINT) or a TERM to this script
    trap - INT TERM
    echo
    echo "demo.sh: stopping"
    # fcgim8d drains its workers (they are idle: at once) and exits 0; then
    # the EXIT trap stops nginx and removes the temporary directory.
    kill -TERM "${M8_SVC_PID[issuer]}" "${M8_SVC_PID[item]}" 2>/dev/null
    if m8_wait_exit "${M8_SVC_PID[item]}" 35; then
        echo "demo.sh: fcgim8d stopped (exit status $M8_RC)"
    else
        echo "demo.sh: fcgim8d is still draining after 35 s; stopping it" >&2
    fi
    exit 0
}
trap stop INT TERM
while m8_svc_alive item; do sleep 1; done
# fcgim8d got the signal too (same process group) and stopped its workers, or
# it stopped on its own.
wait "${M8_SVC_PID[item]}"
rc=$?
[ "$rc" = 0 ] && { echo "demo.sh: fcgim8d stopped"; exit 0; }
m8_svc_diag item
die "fcgim8d exited with status $rc (log above)"
