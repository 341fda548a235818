#!/bin/bash
# bench/e2e.sh [BUILD_DIR] - end-to-end throughput, latency, memory and start
# time through nginx.  See bench/README.md.
#
# One private nginx (contrib/nginx/standalone.conf, 1 worker) with the shipped
# unix-socket site (contrib/nginx/fcgi-m8-unix.conf: upstream keepalive 16,
# fastcgi_keep_conn on) in front of the example service (examples/item-service)
# run three ways, all without a database:
#   pool    fcgim8d --workers 4 --threads 2 (the deployment; the start to ready
#           time and the memory of the daemon and its workers are measured here)
#   single  one process, item-service --listen unix: --threads 2
#   libfcgi the same process on libfcgi's accept loop (--engine libfcgi), once
#           through a kept-alive upstream and once with a new connection per request
# wrk runs against each target one after the other, nginx's own `return 200`
# (location = /nginx-200) first: the ceiling every other row is divided by.
# Authenticated rows carry an RS256 token (fcgim8-token mint), as the issuer
# signs by default.
#
# BUILD_DIR: a configured and built tree (default: the current directory when
# it holds the example, else the source tree).  Knobs (environment):
#   M8_BENCH_DURATION=5s M8_BENCH_CONNS=64 M8_BENCH_WRK_THREADS=2
#   M8_BENCH_WORKERS=4 M8_BENCH_POOL_THREADS=2   fcgim8d --workers / --threads
#   M8_BENCH_SVC_THREADS=2                       --threads of the single process
#   M8_BENCH_SVC_ENV=    extra VAR=VALUE words for the services' environment
#                        (e.g. MALLOC_ARENA_MAX=1)
#   M8_BENCH_COMPARE=1   (0: the pool rows only, no single-process and libfcgi rows)
#   M8_BENCH_SMAPS=0     (1: also print where the pool's PSS goes, per mapping group)
#   M8_BENCH_MORE="stateful db gate"  the optional sections of bench/e2e-more.sh
#                        (issues 5, 6, 7), each skipped with a reason when what it
#                        needs is missing; "" runs none
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
workers=${M8_BENCH_WORKERS:-4}
pthreads=${M8_BENCH_POOL_THREADS:-2}
compare=${M8_BENCH_COMPARE:-1}

die() { echo "bench/e2e.sh: $*" >&2; exit 1; }
WRK=$(m8_find_prog wrk "${WRK:-}") || die "wrk is not installed (apt-get install wrk)"
[ -n "$NGINX" ] || die "nginx is not installed (apt-get install nginx-light)"
[ -n "$CURL" ] || die "curl is not installed"
EX=$(m8_svc_bin example)
D=$top_builddir/src/fcgim8d
[ -x "$EX" ] && [ -x "$D" ] || die "no $EX or $D: build first (./configure && make), or pass the build directory"
# A shared build leaves a libtool wrapper script at $EX: run the program
# behind it directly (as an installed binary runs), with the wrapper's
# library path, so that neither the start time nor the memory counts a bash.
SVC=$EX
SVC_VARS=()
if head -c 2 "$EX" | grep -q '^#!' && grep -q libtool "$EX"; then
    SVC=$(dirname "$EX")/.libs/$(basename "$EX")
    [ -x "$(dirname "$EX")/.libs/lt-$(basename "$EX")" ] && SVC=$(dirname "$EX")/.libs/lt-$(basename "$EX")
    [ -x "$SVC" ] || die "no $SVC behind the libtool wrapper $EX"
    SVC_VARS=(LD_LIBRARY_PATH="$top_builddir/lib/.libs")
fi
# shellcheck disable=SC2206  # word splitting wanted
SVC_VARS+=(${M8_BENCH_SVC_ENV:-})

m8_init bench
# RS256 as the issuer signs by default: a key from openssl, tokens from fcgim8-token.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null &&
    openssl pkey -in "$T_DIR/rsa.pem" -pubout -out "$T_DIR/rsa.pub" || die "openssl cannot make a key"
m8_write_env "$T_DIR/bench.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    ACCESS_PUBLIC_KEY_FILE="$T_DIR/rsa.pub"
TOKEN=$("$top_builddir/src/fcgim8-token" mint --alg RS256 --key "$T_DIR/rsa.pem" --exp 3600) ||
    die "fcgim8-token mint failed"

# ------------------------------------------------------------------ nginx: one site per way of running
m8_nginx_prepare "$T_DIR/ngx" || die "cannot render contrib/nginx/standalone.conf"
site() { # NAME SOCKET -> M8_PORT
    m8_pick_port 18300 18349 || die "no free port in 18300-18349"
    m8_nginx_site "$T_DIR/ngx" "$1" fcgi-m8-unix.conf NAME="$1" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$2" || die "cannot render contrib/nginx/fcgi-m8-unix.conf"
}
psock=$T_DIR/pool.sock
site pool "$psock"
port_pool=$M8_PORT
m8_pick_port 18300 18349 || die "no free port in 18300-18349"
port_status=$M8_PORT
if [ "$compare" = 1 ]; then
    ssock=$T_DIR/single.sock
    site single "$ssock"
    port_single=$M8_PORT
    # libfcgi's classic accept loop, through a kept-alive upstream and with a
    # new connection per request (the README "Serving model" comparison).
    lsock=$T_DIR/libfcgi.sock
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
# The optional sections (bench/e2e-more.sh: issues 5, 6 and 7) add their sites now.
. "$here/e2e-more.sh"
more_sites
m8_nginx_start "$T_DIR/ngx" || die "nginx did not start"

# ------------------------------------------------------------------ the pool: start to ready
# Wall time from launching fcgim8d to the first 200 of /api/health/ through
# nginx (health answers 503 "initializing" until the whole pool is ready, and
# nginx 502 until the socket exists).  Polled every ~2 ms with bash's own
# /dev/tcp and `read -t` on a private FIFO: no process is started per poll.
mkfifo "$T_DIR/tick" && exec 7<>"$T_DIR/tick" || die "cannot make a FIFO in $T_DIR"
health_200() { # PORT: one GET /api/health/ through nginx; 0 when it answers 200
    local line=
    { exec 6<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'GET /api/health/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&6
    IFS= read -r -t 2 line <&6
    exec 6<&-
    [[ $line == "HTTP/1."[01]" 200"* ]]
}
us_now() { local t=$EPOCHREALTIME; printf '%s' "${t/[.,]/}"; }
t_launch=$(us_now)
(cd "$T_DIR" && m8_clean_exec "${SVC_VARS[@]}" -- "$D" --listen "unix:$psock" \
    --env-file "$T_DIR/bench.env" --workers "$workers" --threads "$pthreads" \
    --status-listen "127.0.0.1:$port_status" -- "$SVC") </dev/null >"$T_DIR/pool.out" 2>"$T_DIR/pool.log" &
DPID=$!
M8_PIDS+=("$DPID")
while ! health_200 "$port_pool"; do
    if ! m8_alive "$DPID" || [ $(( $(us_now) - t_launch )) -gt 20000000 ]; then
        tail -n 20 "$T_DIR/pool.log" >&2
        die "fcgim8d did not become ready behind nginx within 20 s"
    fi
    read -r -t 0.002 -u 7
done
t_first200=$(( ($(us_now) - t_launch + 500) / 1000 ))
m8_wait_for 5 grep -q '"msg":"ready: ' "$T_DIR/pool.log"
t_ready=$(sed -n 's/.*"msg":"ready: [0-9]* workers in \([0-9.]*\) ms".*/\1/p' "$T_DIR/pool.log" | head -n 1)

# The single-process and libfcgi services start after the pool's start was
# timed, so nothing else competed for the CPUs then.
if [ "$compare" = 1 ]; then
    m8_svc_listen single "$SVC" "unix:$ssock" "$T_DIR/bench.env" "${SVC_VARS[@]}" -- --threads "$sthreads"
    m8_svc_listen lf "$SVC" "unix:$lsock" "$T_DIR/bench.env" "${SVC_VARS[@]}" -- \
        --threads "$sthreads" --engine libfcgi
    m8_wait_for 15 health_200 "$port_single" ||
        { m8_svc_diag single; die "the single process is not ready behind nginx"; }
    m8_wait_sock "$lsock" 15 || { m8_svc_diag lf; die "the libfcgi-engine process does not listen"; }
fi

# ------------------------------------------------------------------ wrk
to_ms() { # wrk latency (e.g. 512.00us 1.23ms 2.01s) -> milliseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}

# CPU accounting of each row, from /proc (read with builtins: no process is
# started between the samples): the service processes' CPU per request, and
# the share of the machine that processes outside this benchmark (not nginx,
# not the services, not wrk) used during the row -- the runs share the CPUs
# with whatever else the machine does, and that column says how much.
ncpu=$(nproc)
ROW_PIDS=()   # the service processes of the rows that follow
ROW_DAEMON='' # of those, fcgim8d itself (its share is noted)
pticks() { # PID...: utime + stime in clock ticks, summed
    local p line rest t=0
    for p in "$@"; do
        { IFS= read -r line <"/proc/$p/stat"; } 2>/dev/null || continue
        rest=${line##*) }
        # shellcheck disable=SC2086  # split the fields
        set -- $rest
        t=$((t + ${12} + ${13}))
    done
    printf '%s' "$t"
}
busy_ticks() { # all CPUs' busy time since boot, in clock ticks
    local _c u n s irq sirq steal
    read -r _c u n s _ _ irq sirq steal _ </proc/stat
    printf '%s' "$((u + n + s + irq + sirq + steal))"
}
child_ticks() { # VAR: CPU of this shell's reaped children (wrk) in 1/100 s, into VAR
    # `times` must run in this shell, not in a $(...) subshell.
    times >"$T_DIR/times"
    printf -v "$1" '%s' "$(sed -n 2p "$T_DIR/times" |
        awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } printf "%d", t * 100 }')"
}

R_LABEL=() R_RPS=() R_P50=() R_P99=() R_NOTE=() R_CPU=() R_OTHER=()
run() { # LABEL URL [wrk args...]
    local out rps p50 p99 non2xx sockerr reqs
    local s0 n0 c0 b0 t0 s1 n1 c1 b1 t1 d0 d1 dnote=
    s0=$(pticks "${ROW_PIDS[@]}") n0=$(pticks "${NGINX_PIDS[@]}") d0=$(pticks $ROW_DAEMON)
    child_ticks c0
    b0=$(busy_ticks) t0=$(us_now)
    out=$("$WRK" -t"$wthreads" -c"$conns" -d"$dur" --latency "${@:3}" "$2" 2>&1)
    b1=$(busy_ticks) t1=$(us_now)
    s1=$(pticks "${ROW_PIDS[@]}") n1=$(pticks "${NGINX_PIDS[@]}") d1=$(pticks $ROW_DAEMON)
    child_ticks c1
    printf '%s\n' "$out" >"$T_DIR/wrk-$(echo "$1" | tr -c 'A-Za-z0-9' _).txt"
    rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { print $2 }')
    reqs=$(printf '%s\n' "$out" | awk '/ requests in / { print $1 }')
    p50=$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')
    p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')
    non2xx=$(printf '%s\n' "$out" | awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }')
    sockerr=$(printf '%s\n' "$out" | sed -n 's/^ *Socket errors: *//p')
    R_LABEL+=("$1") R_RPS+=("${rps:-0}") R_P50+=("$(to_ms "${p50:-0}")") R_P99+=("$(to_ms "${p99:-0}")")
    [ -n "$ROW_DAEMON" ] && [ "${reqs:-0}" -gt 0 ] &&
        dnote="fcgim8d $(awk -v d=$((d1 - d0)) -v r="$reqs" 'BEGIN { printf "%.1f", d * 10000 / r }') us "
    R_NOTE+=("$dnote${non2xx:+non-2xx: $non2xx }${sockerr:+socket errors: $sockerr}")
    # ticks are 1/100 s (USER_HZ): 10000 us each
    R_CPU+=("$(awk -v d=$((s1 - s0)) -v r="${reqs:-0}" -v n=${#ROW_PIDS[@]} \
        'BEGIN { if (n == 0 || r == 0) print "-"; else printf "%.1f", d * 10000 / r }')")
    R_OTHER+=("$(awk -v b=$((b1 - b0)) -v m=$(( (s1 - s0) + (n1 - n0) + (c1 - c0) )) \
        -v e=$(( (t1 - t0) / 10000 )) -v c="$ncpu" \
        'BEGIN { o = (b - m) / (e * c) * 100; if (o < 0) o = 0; printf "%.0f%%", o }')")
}

mem() { # PID...: "RSS PSS" in kB, summed from /proc/PID/smaps_rollup
    local p
    for p in "$@"; do cat "/proc/$p/smaps_rollup"; done |
        awk '$1 == "Rss:" { r += $2 } $1 == "Pss:" { s += $2 } END { printf "%d %d\n", r, s }'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# nginx logged a 502 per poll before the pool's socket existed: the warning
# at the end shows only what the wrk runs added.
errlog_lines=$(wc -l <"$T_DIR/ngx/error.log")
AUTH=(-H "Authorization: Bearer $TOKEN")
pool=http://127.0.0.1:$port_pool
pl="fcgim8d ${workers}x$pthreads"
ngm=$(cat "$T_DIR/ngx/nginx.pid")
# shellcheck disable=SC2207  # pids, one word each
NGINX_PIDS=("$ngm" $(pgrep -P "$ngm"))
pool_pids() { # the daemon and its workers, from fcgim8d's own status endpoint
    status=$("$CURL" -s -m 5 "http://127.0.0.1:$port_status/status") ||
        die "no answer from fcgim8d --status-listen"
    sup=$(printf '%s' "$status" | sed -n 's/.*"supervisor_pid":\([0-9]*\).*/\1/p')
    wpids=$(printf '%s' "$status" | grep -o '"pid":[0-9]*' | cut -d: -f2 | tr '\n' ' ')
    wreqs=$(printf '%s' "$status" | grep -o '"requests":[0-9]*' | sed 1d | cut -d: -f2 | paste -sd/)
}
"$WRK" -t1 -c4 -d1s "$pool/ping" >/dev/null 2>&1 # warm-up: connections, caches
"$WRK" -t1 -c4 -d1s "${AUTH[@]}" "$pool/api/items/" >/dev/null 2>&1
run "nginx return 200" "$pool/nginx-200"
pool_pids
# shellcheck disable=SC2206  # pids, one word each
ROW_PIDS=("$sup" $wpids) ROW_DAEMON=$sup
run "/ping, $pl" "$pool/ping"
i_pool_items=${#R_LABEL[@]}
run "/api/items/ RS256, $pl" "$pool/api/items/" "${AUTH[@]}"

# Memory of the pool after its load: the daemon and its workers.
pool_pids
# shellcheck disable=SC2086
read -r pool_rss pool_pss < <(mem "$sup" $wpids)
read -r _ sup_pss < <(mem "$sup")
nw=$(wc -w <<<"$wpids")
if [ "${M8_BENCH_SMAPS:-0}" = 1 ]; then
    # Where the PSS goes: per mapping group, the daemon and one worker.
    groups() {
        awk '/^[0-9a-f]+-[0-9a-f]+ / { n = ($6 == "" ? "[anon]" : $6); sub(".*/", "", n)
                if (n ~ /^\[/ || n ~ /memfd/) g = n
                else if (n ~ /^(libc\.so|ld-linux|libcrypto|libsodium|libjson-c|libfcgim8|libfcgi\.so|fcgim8d|item-service|lt-item-service)/) g = n
                else g = "(libcurl, libmariadb, libpq and their dependencies)"
                next }
             $1 == "Pss:" { pss[g] += $2 } $1 == "Private_Dirty:" { pd[g] += $2 }
             END { for (g in pss) if (pss[g] >= 8) printf "    %6d %6d  %s\n", pss[g], pd[g], g }' "$1" | sort -rn
    }
    echo "PSS by mapping (kB; PSS, private dirty), fcgim8d $sup:"
    groups "/proc/$sup/smaps"
    w1=${wpids%% *}
    echo "a worker, $w1:"
    groups "/proc/$w1/smaps"
fi

if [ "$compare" = 1 ]; then
    single=http://127.0.0.1:$port_single
    "$WRK" -t1 -c4 -d1s "${AUTH[@]}" "$single/api/items/" >/dev/null 2>&1
    ROW_PIDS=("${M8_SVC_PID[single]}") ROW_DAEMON=
    run "/ping, single x$sthreads" "$single/ping"
    run "/api/health/, single x$sthreads" "$single/api/health/"
    run "/api/items/ RS256, single x$sthreads" "$single/api/items/" "${AUTH[@]}"
    read -r single_rss single_pss < <(mem "${M8_SVC_PID[single]}")
    ROW_PIDS=("${M8_SVC_PID[lf]}")
    run "/ping, libfcgi new-conn" "http://127.0.0.1:$port_nk/ping"
    run "/ping, libfcgi keepalive" "http://127.0.0.1:$port_ka/ping"
fi

# The optional sections' rows (bench/e2e-more.sh), after every main row.
more_run

# ------------------------------------------------------------------ report
echo "fcgi-m8 end-to-end benchmark: wrk -t$wthreads -c$conns -d$dur --latency"
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') (1 worker, keepalive 16, fastcgi_keep_conn on); $(nproc) CPUs, $(uname -sr)"
echo "$pl = fcgim8d --workers $workers --threads $pthreads; single x$sthreads = item-service --listen unix: --threads $sthreads"
printf '%-34s %11s %8s %8s %8s %8s %6s  %s\n' target req/s p50_ms p99_ms "vs 200" \
    svc_us other notes
for i in "${!R_LABEL[@]}"; do
    ratio=$(awk -v a="${R_RPS[$i]}" -v b="${R_RPS[0]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    printf '%-34s %11s %8s %8s %8s %8s %6s  %s\n' "${R_LABEL[$i]}" "${R_RPS[$i]}" "${R_P50[$i]}" \
        "${R_P99[$i]}" "$ratio" "${R_CPU[$i]}" "${R_OTHER[$i]}" "${R_NOTE[$i]}"
done
echo "(vs 200: req/s / nginx return 200's; svc_us: CPU microseconds of the service processes" \
    "per request; other: share of the $ncpu CPUs used by processes outside this benchmark during the row)"
echo
echo "start to ready ($pl, no database): fcgim8d logs ready in ${t_ready:-?} ms;" \
    "launch to the first 200 of /api/health/ through nginx: $t_first200 ms"
echo "memory after the load ($pl): daemon + $nw workers RSS $(mib "$pool_rss") MiB," \
    "PSS $(mib "$pool_pss") MiB (daemon PSS $(mib "$sup_pss") MiB; requests per worker $wreqs)"
[ "$compare" = 1 ] &&
    echo "memory after the load (single x$sthreads): RSS $(mib "$single_rss") MiB, PSS $(mib "$single_pss") MiB"

# The targets (issue 4), reported and never asserted.
ir=$(awk -v a="${R_RPS[$i_pool_items]}" -v b="${R_RPS[0]}" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
ip=${R_P99[$i_pool_items]}
verdict() { [ "$1" = 1 ] && echo met || echo MISSED; }
echo "targets: /api/items/ >= 0.30 x return 200 with p99 < 5 ms:" \
    "$(verdict "$(awk -v r="$ir" -v p="$ip" 'BEGIN { print (r >= 0.30 && p < 5) ? 1 : 0 }')") ($ir, p99 $ip ms);" \
    "daemon + workers PSS < 8 MiB: $(verdict "$(awk -v k="$pool_pss" 'BEGIN { print (k < 8192) ? 1 : 0 }')") ($(mib "$pool_pss") MiB);" \
    "start to ready < 100 ms: $(verdict "$(awk -v a="${t_ready:-999999}" -v b="$t_first200" 'BEGIN { print (a < 100 && b < 100) ? 1 : 0 }')") (${t_ready:-?} / $t_first200 ms)"
more_report
if printf '%s\n' "${R_NOTE[@]}" | grep -qE 'non-2xx|socket errors'; then
    echo "warning: errors or non-2xx answers above (expected only on the libfcgi keepalive" \
        "row: pinned threads); the last lines nginx logged during the runs:" >&2
    tail -n +"$((errlog_lines + 1))" "$T_DIR/ngx/error.log" | tail -n 5 | grep . >&2 || echo "(none)" >&2
fi
