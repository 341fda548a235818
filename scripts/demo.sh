#!/bin/bash
# scripts/demo.sh - builds fcgi-m8 and runs the example service under the
# fcgim8d supervisor (2 workers) behind a real nginx on http://127.0.0.1:8080
# (M8_DEMO_PORT), with the contrib/nginx files, until Ctrl-C:
#
#   nginx -> unix socket -> fcgim8d -> 2 x item-service
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

# ------------------------------------------------------------------ run
m8_init demo
cred=demo-health-credential
# Dev keys: an ES256 pair made here; tokens minted by fcgim8-token with it.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T_DIR/dev-signing.pem" 2>/dev/null &&
    openssl pkey -in "$T_DIR/dev-signing.pem" -pubout -out "$T_DIR/dev-public.pem" ||
    die "openssl cannot make the demo key"
m8_write_env "$T_DIR/.env" HEALTH_DETAIL_CREDENTIAL=$cred ALLOWED_HOSTS=localhost,127.0.0.1 \
    ACCESS_TOKEN_ALGORITHM=ES256 -ACCESS_SECRET_KEY ACCESS_PUBLIC_KEY_FILE="$T_DIR/dev-public.pem" \
    TOKEN_STRICT_VALIDATION=true TOKEN_ISSUER=https://auth.example.com TOKEN_AUDIENCE=item-service
mint() { # ROLE [--superuser]: a dev token from fcgim8-token
    "$build/src/fcgim8-token" mint --alg ES256 --key "$T_DIR/dev-signing.pem" --kid dev \
        --iss https://auth.example.com --aud item-service --exp 3600 \
        --email "$1@example.com" --role "$@"
}
# The pool: fcgim8d binds the socket, checks the settings and the service's
# startup validators (`item-service --check`), then starts 2 workers with 2
# threads each; its log (and every worker's, one JSON line each) goes to
# $T_DIR/fcgim8d.log.  As root the socket's group is www-data, as on a server.
sock=$T_DIR/item-service.sock
svc=$(m8_svc_bin example)
pool=(--listen "unix:$sock" --env-file "$T_DIR/.env" --workers 2 --threads 2
    --status-listen "127.0.0.1:$sport")
[ "$(id -u)" = 0 ] && getent group www-data >/dev/null 2>&1 && pool+=(--socket-group www-data)
M8_SVC_LOG[item]=$T_DIR/fcgim8d.log
(cd "$T_DIR" && m8_clean_exec -- "$build/src/fcgim8d" "${pool[@]}" -- "$svc") \
    </dev/null >"$T_DIR/fcgim8d.out" 2>"${M8_SVC_LOG[item]}" &
M8_SVC_PID[item]=$!
M8_PIDS+=("$!")
m8_nginx_prepare "$T_DIR/nginx" || die "cannot render contrib/nginx/standalone.conf"
m8_nginx_site "$T_DIR/nginx" item-service fcgi-m8-unix.conf NAME=item_service \
    LISTEN="127.0.0.1:$port" SERVER_NAME=localhost SOCKET="$sock" ||
    die "cannot render contrib/nginx/fcgi-m8-unix.conf"
m8_nginx_start "$T_DIR/nginx" || die "nginx did not start (see above)"

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

Try:
TXT
try() { # DESCRIPTION CURL-ARGS...: runs it once, prints the line and the status it gave
    local desc=$1
    shift
    local st
    st=$("$CURL" -s -o /dev/null -w '%{http_code}' "$@")
    local line="curl -i" a
    for a in "$@"; do
        case $a in
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
USER_TOKEN=$(mint user)
ADMIN_TOKEN=$(mint admin)
ROOT_TOKEN=$(mint superadmin --superuser)
echo
echo "Dev tokens (ES256, 1 hour; fcgim8-token mint --help):"
echo "  USER_TOKEN=$USER_TOKEN"
echo "  ADMIN_TOKEN=$ADMIN_TOKEN"
echo "  ROOT_TOKEN=$ROOT_TOKEN"
echo
try "no token: 401" "$base/api/items/"
try "any user" -H "Authorization: Bearer $USER_TOKEN" "$base/api/items/"
try "the caller's profile" -H "Authorization: Bearer $USER_TOKEN" "$base/api/profile"
try "admin only: 403 for a user" -X DELETE -H "Authorization: Bearer $USER_TOKEN" "$base/api/items/42/admin"
try "admin only" -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" "$base/api/items/42/admin"
try "superuser only" -X POST -H "Authorization: Bearer $ROOT_TOKEN" "$base/api/admin/bootstrap"
echo
echo "Press Ctrl-C to stop."
stop() { # Ctrl-C (the whole process group gets SIGINT) or a TERM to this script
    trap - INT TERM
    echo
    echo "demo.sh: stopping"
    # fcgim8d drains its workers (they are idle: at once) and exits 0; then
    # the EXIT trap stops nginx and removes the temporary directory.
    kill -TERM "${M8_SVC_PID[item]}" 2>/dev/null
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
