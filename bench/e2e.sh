#!/bin/bash
# bench/e2e.sh [BUILD_DIR] - end-to-end throughput and latency through nginx.
#
# Starts a private nginx with the contrib/nginx files (unix-socket site,
# upstream keepalive 16, fastcgi_keep_conn on) in front of the example
# service (examples/item-service) on `--listen unix:` with `--threads 2`, then
# runs wrk against three targets in the same nginx, one after the other:
#   nginx return 200   (location = /nginx-200: nginx alone, the ceiling)
#   /ping              (the service's cheapest route: routing, middleware, log)
#   /api/health/       (the public health answer: checks through the 2 s cache)
#   /api/items/        (authenticated: an RS256 token, served by the verified-token cache)
# and prints req/s, p50, p99 and each target's req/s as a ratio of nginx's
# own `return 200`.  See bench/README.md.
#
# BUILD_DIR: a configured and built tree (default: the current directory when
# it holds the example, else the source tree).  Knobs (environment):
#   M8_BENCH_DURATION=5s M8_BENCH_CONNS=64 M8_BENCH_WRK_THREADS=2 M8_BENCH_SVC_THREADS=2
#   M8_BENCH_COMPARE=1 (0 skips the libfcgi-engine rows of the serving-model comparison)
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$here/.." && pwd)
if [ $# -ge 1 ]; then
    top_builddir=$(cd "$1" && pwd) || exit 2
elif [ -x "$PWD/examples/item-service/item-service" ]; then
    top_builddir=$PWD
else
    top_builddir=$top_srcdir
fi
export top_srcdir top_builddir
. "$top_srcdir/tests/integration/lib.sh"

dur=${M8_BENCH_DURATION:-5s}
conns=${M8_BENCH_CONNS:-64}
wthreads=${M8_BENCH_WRK_THREADS:-2}
sthreads=${M8_BENCH_SVC_THREADS:-2}

die() { echo "bench/e2e.sh: $*" >&2; exit 1; }
WRK=$(m8_find_prog wrk "${WRK:-}") || die "wrk is not installed (apt-get install wrk)"
[ -n "$NGINX" ] || die "nginx is not installed (apt-get install nginx-light)"
[ -n "$CURL" ] || die "curl is not installed"
EX=$(m8_svc_bin example)
[ -x "$EX" ] || die "no $EX: build first (./configure && make), or pass the build directory"

m8_init bench
# RS256 as the issuer signs by default: a key from openssl, tokens from fcgim8-token.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null &&
    openssl pkey -in "$T_DIR/rsa.pem" -pubout -out "$T_DIR/rsa.pub" || die "openssl cannot make a key"
m8_write_env "$T_DIR/bench.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    ACCESS_PUBLIC_KEY_FILE="$T_DIR/rsa.pub"
TOKEN=$("$top_builddir/src/fcgim8-token" mint --alg RS256 --key "$T_DIR/rsa.pem" --exp 3600) ||
    die "fcgim8-token mint failed"
sock=$T_DIR/svc.sock
m8_svc_listen svc example "unix:$sock" "$T_DIR/bench.env" -- --threads "$sthreads"
m8_nginx_prepare "$T_DIR/ngx" || die "cannot render contrib/nginx/standalone.conf"
m8_pick_port 18300 18349 || die "no free port in 18300-18349"
port=$M8_PORT
m8_nginx_site "$T_DIR/ngx" bench fcgi-m8-unix.conf NAME=bench LISTEN="127.0.0.1:$port" \
    SERVER_NAME=localhost SOCKET="$sock" || die "cannot render contrib/nginx/fcgi-m8-unix.conf"
# The serving-model comparison (README "Serving model"): the same example on
# libfcgi's classic accept loop (--engine libfcgi), once through a kept-alive
# upstream and once with a new connection per request.
compare=${M8_BENCH_COMPARE:-1}
if [ "$compare" = 1 ]; then
    lsock=$T_DIR/libfcgi.sock
    m8_svc_listen lf example "unix:$lsock" "$T_DIR/bench.env" -- --threads "$sthreads" --engine libfcgi
    m8_pick_port 18350 18399 || die "no free port in 18350-18399"
    port_ka=$M8_PORT
    m8_pick_port 18350 18399 || die "no free port in 18350-18399"
    port_nk=$M8_PORT
    cat >"$T_DIR/ngx/sites/compare.conf" <<CONF
upstream libfcgi_ka { server unix:$lsock; keepalive 16; }
server {
    listen 127.0.0.1:$port_ka;
    location / { include fastcgi_params; fastcgi_keep_conn on; fastcgi_pass libfcgi_ka; }
}
server {
    listen 127.0.0.1:$port_nk;
    location / { include fastcgi_params; fastcgi_pass unix:$lsock; }
}
CONF
fi
m8_nginx_start "$T_DIR/ngx" || die "nginx did not start"
base=http://127.0.0.1:$port
ready() { m8_http GET "$base/api/health/"; [ "$H_STATUS" = 200 ]; }
m8_wait_for 15 ready || { m8_svc_diag svc; die "the service is not ready behind nginx (health $H_STATUS)"; }

to_ms() { # wrk latency (e.g. 512.00us 1.23ms 2.01s) -> milliseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}

run() { # LABEL PATH [wrk args...]
    local out rps p50 p99 non2xx sockerr
    out=$("$WRK" -t"$wthreads" -c"$conns" -d"$dur" --latency "${@:3}" "$base$2" 2>&1)
    printf '%s\n' "$out" >"$T_DIR/wrk-$(echo "$1" | tr -c 'A-Za-z0-9' _).txt"
    rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { print $2 }')
    p50=$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')
    p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')
    non2xx=$(printf '%s\n' "$out" | awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }')
    sockerr=$(printf '%s\n' "$out" | sed -n 's/^ *Socket errors: *//p')
    R_LABEL+=("$1") R_RPS+=("${rps:-0}") R_P50+=("$(to_ms "${p50:-0}")") R_P99+=("$(to_ms "${p99:-0}")")
    R_NOTE+=("${non2xx:+non-2xx: $non2xx }${sockerr:+socket errors: $sockerr}")
}

R_LABEL=() R_RPS=() R_P50=() R_P99=() R_NOTE=()
"$WRK" -t1 -c4 -d1s "$base/ping" >/dev/null 2>&1    # warm-up: connections, caches
run "nginx return 200" /nginx-200
run "/ping" /ping
run "/api/health/" /api/health/
run "/api/items/ RS256 token" /api/items/ -H "Authorization: Bearer $TOKEN"
if [ "$compare" = 1 ]; then
    base_main=$base
    base=http://127.0.0.1:$port_nk
    run "/ping libfcgi new-conn" /ping
    base=http://127.0.0.1:$port_ka
    run "/ping libfcgi keepalive" /ping
    base=$base_main
fi

echo "fcgi-m8 end-to-end benchmark: wrk -t$wthreads -c$conns -d$dur --latency"
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') (1 worker, keepalive 16, fastcgi_keep_conn on) -> item-service --listen unix: --threads $sthreads"
echo "$(nproc) CPUs, $(uname -sr)"
printf '%-26s %12s %10s %10s %14s  %s\n' target req/s p50_ms p99_ms "vs return 200" notes
for i in "${!R_LABEL[@]}"; do
    ratio=$(awk -v a="${R_RPS[$i]}" -v b="${R_RPS[0]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    printf '%-26s %12s %10s %10s %14s  %s\n' "${R_LABEL[$i]}" "${R_RPS[$i]}" "${R_P50[$i]}" \
        "${R_P99[$i]}" "$ratio" "${R_NOTE[$i]}"
done
if grep -q . <(printf '%s' "${R_NOTE[*]}" | tr -d ' '); then
    echo "warning: errors or non-2xx answers above; see the nginx error log:" >&2
    tail -n 5 "$T_DIR/ngx/error.log" >&2
fi
