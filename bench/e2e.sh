#!/bin/bash
# bench/e2e.sh [BUILD_DIR] - end-to-end throughput, latency, CPU and syscalls
# per request, memory and start time through nginx.  bench/run.sh runs it with
# bench/verify.sh and prints the issue's targets; see bench/README.md.
#
# The build is installed into a temporary prefix (make install prefix=...) and
# the example service (examples/item-service) is compiled against that
# installed library, as a user builds a service: every process measured is an
# installed binary, not a libtool wrapper.  One private nginx
# (contrib/nginx/standalone.conf with worker_processes auto) with the shipped
# unix-socket site (contrib/nginx/fcgi-m8-unix.conf: upstream keepalive 64,
# fastcgi_keep_conn on) per way of running the service, no database:
#   main    fcgim8d with its default-sized pool (the deployment; start to ready
#           is timed here): /ping, RS256 /api/items/ with one token (verified-
#           token cache hits) and with M8_BENCH_TOKENS distinct tokens in turn
#           (cache misses; bench/tokens.lua), at the default log level (info:
#           an access line per request, relayed by fcgim8d)
#   warn    the same pool at M8_LOG_LEVEL=warning (no access line): /ping
#   all     the same pool with M8_POLLERS=all (every serving thread waits on
#           epoll, as before one polling thread per worker): /ping and
#           RS256 /api/items/ with one token, to compare with the main rows
#   mem     fcgim8d 4 workers x 2 threads (M8_BENCH_MEM_POOL), the pool the
#           memory target is stated for: /ping and RS256 /api/items/, then
#           PSS after at least 10 s of load (the main pool when it has that size)
#   single, libfcgi (M8_BENCH_COMPARE=1)  one process, item-service --listen
#           unix: --threads 2; and on libfcgi's accept loop (--engine libfcgi),
#           through a kept-alive upstream and with a new connection per request
# then the optional sections of bench/e2e-more.sh (stateful, db, gate).
# wrk runs against each target one after the other, nginx's own `return 200`
# (location = /nginx-200) first: the ceiling every other row is divided by.
# During each row the backend's syscalls are counted (perf stat on the
# syscalls:sys_enter_* tracepoints, else strace -c -f) and its CPU read from /proc.
#
# BUILD_DIR: a configured and built tree (default: the current directory when
# it holds the example, else the source tree).  Knobs (environment):
#   M8_BENCH_DURATION=5s M8_BENCH_CONNS=64 M8_BENCH_WRK_THREADS=2
#   M8_BENCH_NGINX_WORKERS=auto                  nginx worker_processes
#   M8_BENCH_WORKERS= M8_BENCH_POOL_THREADS=     fcgim8d --workers / --threads of
#                        the main and warn pools and of e2e-more.sh's pools
#                        (empty: not given, fcgim8d's and the service's defaults)
#   M8_BENCH_MEM_POOL=4x2  WORKERSxTHREADS of the pool whose PSS is reported
#   M8_BENCH_TOKENS=20000  distinct tokens of the cache-miss row (0: no such row)
#   M8_BENCH_IDLE=1000     idle FastCGI connections held open on the pool during a second
#                        /ping row (needs python3; 0: no such row)
#   M8_BENCH_SYSCALLS=auto perf | strace | off (auto: perf when it counts, else strace)
#   M8_BENCH_LOG_FLUSH_MS=   the services' M8_LOG_FLUSH_MS (default: theirs, 100 ms)
#   M8_BENCH_INSTALL=1     (0: run the build tree's programs, as before)
#   M8_BENCH_SVC_THREADS=2 --threads of the single process and the gate
#   M8_BENCH_SVC_ENV=    extra VAR=VALUE words for the services' environment
#                        (e.g. MALLOC_ARENA_MAX=1)
#   M8_BENCH_COMPARE=0   (1: also the single-process and libfcgi rows)
#   M8_BENCH_SMAPS=0     (1: also the PSS per mapping group of the daemon and of one worker)
#   M8_BENCH_MORE="stateful db gate"  the optional sections of bench/e2e-more.sh
#                        (issues 5, 6, 7), each skipped with a reason when what it
#                        needs is missing; "" runs none
#   M8_BENCH_FACTS=FILE  also write the figures as "key value" lines (bench/run.sh)
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
# lib.sh makes the tests' services write each log line at once
# (M8_LOG_FLUSH_MS=0); the benchmark runs them as deployed: their default
# (doc/design.md#logging), or M8_BENCH_LOG_FLUSH_MS when given.
bench_flush=${M8_BENCH_LOG_FLUSH_MS:-}
. "$top_srcdir/tests/integration/lib.sh"
unset M8_LOG_FLUSH_MS
[ -n "$bench_flush" ] && export M8_LOG_FLUSH_MS=$bench_flush

dur=${M8_BENCH_DURATION:-5s}
conns=${M8_BENCH_CONNS:-64}
wthreads=${M8_BENCH_WRK_THREADS:-2}
sthreads=${M8_BENCH_SVC_THREADS:-2}
workers=${M8_BENCH_WORKERS:-}
pthreads=${M8_BENCH_POOL_THREADS:-}
ngx_workers=${M8_BENCH_NGINX_WORKERS:-auto}
mem_pool=${M8_BENCH_MEM_POOL:-4x2}
ntokens=${M8_BENCH_TOKENS:-20000}
compare=${M8_BENCH_COMPARE:-0}
sc_mode=${M8_BENCH_SYSCALLS:-auto}
facts=${M8_BENCH_FACTS:-}

die() { echo "bench/e2e.sh: $*" >&2; exit 1; }
say() { echo "bench/e2e.sh: [${SECONDS}s] $*" >&2; } # progress, on stderr
[[ $mem_pool =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || die "M8_BENCH_MEM_POOL wants WORKERSxTHREADS (e.g. 4x2)"
[[ $ntokens =~ ^[0-9]+$ ]] || die "M8_BENCH_TOKENS wants a number"
# wrk's -d in seconds (5s, 1m, 30): the memory pool's load is made >= 10 s.
dur_s=$(awk -v d="$dur" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; else if (d ~ /h$/) n *= 3600; print int(n) }')
[ "$dur_s" -ge 1 ] || die "M8_BENCH_DURATION wants wrk's -d form, e.g. 5s"
WRK=$(m8_find_prog wrk "${WRK:-}") || die "wrk is not installed (apt-get install wrk)"
[ -n "$NGINX" ] || die "nginx is not installed (apt-get install nginx-light)"
[ -n "$CURL" ] || die "curl is not installed"
EX=$(m8_svc_bin example)
[ -x "$EX" ] && [ -x "$top_builddir/src/fcgim8d" ] ||
    die "no $EX or $top_builddir/src/fcgim8d: build first (./configure && make), or pass the build directory"

m8_init bench
SVC_VARS=()
if [ "${M8_BENCH_INSTALL:-1}" = 1 ]; then
    # Installed as a user installs it, and the example built against the
    # installed library and header (pkg-config fcgim8) with the build's
    # compiler and CFLAGS, an rpath to the prefix's lib.
    INST=$T_DIR/inst
    say "make install prefix=$INST"
    make -C "$top_builddir" -s install prefix="$INST" >"$T_DIR/install.log" 2>&1 ||
        { tail -n 20 "$T_DIR/install.log" >&2; die "make install prefix=$INST failed"; }
    cc=$(sed -n 's/^CC = //p' "$top_builddir/Makefile")
    cflags=$(sed -n 's/^CFLAGS = //p' "$top_builddir/Makefile")
    # shellcheck disable=SC2046,SC2086  # compiler words and flags
    ${cc:-cc} $cflags -o "$INST/bin/item-service" "$top_srcdir/examples/item-service/main.c" \
        $(PKG_CONFIG_PATH="$INST/lib/pkgconfig" pkg-config --define-variable=prefix="$INST" \
            --cflags --libs fcgim8) -Wl,-rpath,"$INST/lib" 2>"$T_DIR/cc.log" ||
        { cat "$T_DIR/cc.log" >&2; die "cannot build the example against the installed library"; }
    D=$INST/bin/fcgim8d SVC=$INST/bin/item-service
    BIN_TOKEN=$INST/bin/fcgim8-token BIN_GATE=$INST/bin/fcgim8-gate BIN_PRESTART=$INST/bin/fcgim8-prestart
    BIN_FROM="installed: make install prefix=TMP; item-service compiled against it (pkg-config fcgim8)"
else
    D=$top_builddir/src/fcgim8d SVC=$EX
    BIN_TOKEN=$top_builddir/src/fcgim8-token BIN_GATE=$top_builddir/src/fcgim8-gate
    BIN_PRESTART=$top_builddir/src/fcgim8-prestart
    # A shared build leaves a libtool wrapper script at $EX: run the program
    # behind it directly, with the wrapper's library path, so that neither
    # the start time nor the memory counts a bash.
    if head -c 2 "$EX" | grep -q '^#!' && grep -q libtool "$EX"; then
        SVC=$(dirname "$EX")/.libs/$(basename "$EX")
        [ -x "$(dirname "$EX")/.libs/lt-$(basename "$EX")" ] && SVC=$(dirname "$EX")/.libs/lt-$(basename "$EX")
        [ -x "$SVC" ] || die "no $SVC behind the libtool wrapper $EX"
        SVC_VARS=(LD_LIBRARY_PATH="$top_builddir/lib/.libs")
    fi
    BIN_FROM="the build tree (M8_BENCH_INSTALL=0)"
fi
[ -x "$D" ] && [ -x "$SVC" ] && [ -x "$BIN_TOKEN" ] || die "no $D, $SVC or $BIN_TOKEN"
# shellcheck disable=SC2206  # word splitting wanted
SVC_VARS+=(${M8_BENCH_SVC_ENV:-})

# The pools' sizes: the knobs, else what fcgim8d and the service default to
# (fcgim8d passes --threads to the service only when given).
POOL_ARGS=()
[ -n "$workers" ] && POOL_ARGS+=(--workers "$workers")
[ -n "$pthreads" ] && POOL_ARGS+=(--threads "$pthreads")
def_w=$("$D" --help 2>&1 | sed -n 's/.*--workers N.*(default \([0-9]*\).*/\1/p' | head -n 1)
def_t=$(m8_clean_env "${SVC_VARS[@]}" -- "$SVC" --help 2>&1 |
    sed -n 's/.*--threads N.*(default \([0-9]*\).*/\1/p' | head -n 1)
pl="fcgim8d ${workers:-${def_w:-?}}x${pthreads:-${def_t:-?}}"
pool_how="$pl = fcgim8d"
[ ${#POOL_ARGS[@]} -gt 0 ] && pool_how+=" ${POOL_ARGS[*]}"
[ -z "$workers" ] && pool_how+=" (--workers not given: default ${def_w:-?})"
[ -z "$pthreads" ] && pool_how+=" (--threads not given: the service's default ${def_t:-?})"
mem_w=${mem_pool%x*} mem_t=${mem_pool#*x}
mem_same=0
[ "${workers:-$def_w}" = "$mem_w" ] && [ "${pthreads:-$def_t}" = "$mem_t" ] && mem_same=1
ml="fcgim8d ${mem_pool}"

# RS256 as the issuer signs by default: a key from openssl, tokens from
# fcgim8-token (the cache-miss row's, one process per CPU).
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null &&
    openssl pkey -in "$T_DIR/rsa.pem" -pubout -out "$T_DIR/rsa.pub" || die "openssl cannot make a key"
m8_write_env "$T_DIR/bench.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    ACCESS_PUBLIC_KEY_FILE="$T_DIR/rsa.pub"
TOKEN=$("$BIN_TOKEN" mint --alg RS256 --key "$T_DIR/rsa.pem" --exp 3600) || die "fcgim8-token mint failed"
ncpu=$(nproc)
if [ "$ntokens" -gt 0 ]; then
    say "minting $ntokens RS256 tokens (fcgim8-token mint --count)"
    mint_pids=()
    for ((k = 0; k < ncpu; k++)); do
        n=$(( ntokens / ncpu + (k < ntokens % ncpu ? 1 : 0) ))
        [ "$n" -gt 0 ] || continue
        "$BIN_TOKEN" mint --alg RS256 --key "$T_DIR/rsa.pem" --exp 3600 --count "$n" \
            >"$T_DIR/tokens.$k" &
        mint_pids+=("$!")
    done
    for p in "${mint_pids[@]}"; do wait "$p" || die "fcgim8-token mint --count failed (does it take --count?)"; done
    cat "$T_DIR"/tokens.* >"$T_DIR/tokens.txt"
    [ "$(sort -u "$T_DIR/tokens.txt" | wc -l)" = "$ntokens" ] || die "fewer than $ntokens distinct tokens"
fi

# ------------------------------------------------------------------ nginx: one site per way of running
m8_nginx_prepare "$T_DIR/ngx" || die "cannot render contrib/nginx/standalone.conf"
sed -i "s/^worker_processes .*/worker_processes $ngx_workers;/" "$T_DIR/ngx/nginx.conf"
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
site warn "$T_DIR/warn.sock"
port_warn=$M8_PORT
m8_pick_port 18300 18349 || die "no free port in 18300-18349"
port_status_warn=$M8_PORT
site all "$T_DIR/all.sock"
port_all=$M8_PORT
m8_pick_port 18300 18349 || die "no free port in 18300-18349"
port_status_all=$M8_PORT
if [ "$mem_same" = 0 ]; then
    site mem "$T_DIR/mem.sock"
    port_mem=$M8_PORT
    m8_pick_port 18300 18349 || die "no free port in 18300-18349"
    port_status_mem=$M8_PORT
fi
# The zero-work FastCGI responder (bench/floor.c), as many processes as the
# pool has workers: the floor under the backend CPU per request.
site floor "$T_DIR/floor.sock"
port_floor=$M8_PORT
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
ngm=$(cat "$T_DIR/ngx/nginx.pid")
# shellcheck disable=SC2207  # pids, one word each
NGINX_PIDS=("$ngm" $(pgrep -P "$ngm"))
ngx_nw=$(( ${#NGINX_PIDS[@]} - 1 ))

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
pool_start() { # NAME STATUS_PORT [VAR=VALUE...] -- [fcgim8d options]: a pool on $T_DIR/NAME.sock
    local name=$1 sport=$2 v=()
    shift 2
    while [ "$1" != -- ]; do v+=("$1"); shift; done
    shift
    (cd "$T_DIR" && m8_clean_exec "${SVC_VARS[@]}" "${v[@]}" -- "$D" --listen "unix:$T_DIR/$name.sock" \
        --env-file "$T_DIR/bench.env" "$@" --status-listen "127.0.0.1:$sport" -- "$SVC") \
        </dev/null >"$T_DIR/$name.out" 2>"$T_DIR/$name.log" &
    M8_PIDS+=("$!")
}
say "starting $pl (timed: launch to the first 200 through nginx)"
t_launch=$(us_now)
pool_start pool "$port_status" -- "${POOL_ARGS[@]}"
DPID=${M8_PIDS[-1]}
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

# The other services start after the pool's start was timed, so nothing
# else competed for the CPUs then.
pool_start warn "$port_status_warn" M8_LOG_LEVEL=warning -- "${POOL_ARGS[@]}"
pool_start all "$port_status_all" M8_POLLERS=all -- "${POOL_ARGS[@]}"
floor_w=${workers:-${def_w:-4}}
make -C "$top_builddir" -s bench/floor >"$T_DIR/floor-make.log" 2>&1 ||
    { cat "$T_DIR/floor-make.log" >&2; die "cannot build bench/floor"; }
"$top_builddir/bench/floor" "$T_DIR/floor.sock" "$floor_w" </dev/null >"$T_DIR/floor.log" 2>&1 &
FLOOR_PID=$!
M8_PIDS+=("$FLOOR_PID")
[ "$mem_same" = 0 ] && pool_start mem "$port_status_mem" -- --workers "$mem_w" --threads "$mem_t"
if [ "$compare" = 1 ]; then
    m8_svc_listen single "$SVC" "unix:$ssock" "$T_DIR/bench.env" "${SVC_VARS[@]}" -- --threads "$sthreads"
    m8_svc_listen lf "$SVC" "unix:$lsock" "$T_DIR/bench.env" "${SVC_VARS[@]}" -- \
        --threads "$sthreads" --engine libfcgi
fi
m8_wait_for 20 health_200 "$port_warn" || { tail -n 10 "$T_DIR/warn.log" >&2; die "the warning-level pool is not ready"; }
m8_wait_for 20 health_200 "$port_all" || { tail -n 10 "$T_DIR/all.log" >&2; die "the M8_POLLERS=all pool is not ready"; }
m8_wait_sock "$T_DIR/floor.sock" 10 || { cat "$T_DIR/floor.log" >&2; die "bench/floor does not listen"; }
if [ "$mem_same" = 0 ]; then
    m8_wait_for 20 health_200 "$port_mem" || { tail -n 10 "$T_DIR/mem.log" >&2; die "the $ml pool is not ready"; }
fi
if [ "$compare" = 1 ]; then
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
ROW_PIDS=()   # the service processes of the rows that follow
ROW_DAEMON='' # of those, fcgim8d itself (its share is noted)
pticks() { # PID...: utime + stime in clock ticks, summed (all threads)
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

# Syscalls of the row's service processes (every thread), counted only while
# wrk runs: perf stat on the syscalls:sys_enter_* tracepoints of every CPU,
# filtered on the threads' ids, started before the row with its counters
# disabled and enabled through its control FIFO only while wrk runs; else
# strace -c -f, which stops every syscall and slows the row down.  A perf
# that ends unregisters each of the ~360 tracepoints (~45 ms apiece here: 16 s
# per row) unless another perf holds it: a keeper perf stat, counting a
# sleeping process (no syscalls: no cost), holds them for the whole run.
# While it does, every syscall on the machine takes the traced entry path, in
# every row alike (nginx return 200's included).
PERF=$(command -v perf || true)
STRACE=$(command -v strace || true)
sc_counts() { # FILE: "count name" lines, largest first
    if [ "$sc_mode" != strace ]; then
        awk -F, '$3 ~ /^syscalls:sys_enter_/ && $1 ~ /^[0-9]+$/ && $1 > 0 {
            n = $3; sub(/^syscalls:sys_enter_/, "", n); print $1, n }' "$1"
    else
        awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { print $4, $NF }' "$1"
    fi | sort -rn
}
sc_probe_perf() { # 0 when perf counts a child's syscalls on this machine
    [ -n "$PERF" ] || return 1
    "$PERF" stat -x, -o "$T_DIR/sc.probe" -e 'syscalls:sys_enter_*' -- cat /dev/null >/dev/null 2>&1 ||
        return 1
    sc_counts "$T_DIR/sc.probe" | awk '$2 == "openat" && $1 > 0 { ok = 1 } END { exit !ok }'
}
if [ -n "$PERF" ] && { [ "$sc_mode" = auto ] || [ "$sc_mode" = perf ]; }; then
    # The keeper first (the probe's perf then ends fast); it ends when its
    # sleeping process is stopped at exit.  Its ack to a command says that
    # every event is open.
    sleep 100000 >/dev/null 2>&1 &
    sc_sleeper=$!
    M8_PIDS+=("$sc_sleeper")
    mkfifo "$T_DIR/keep.ctl" "$T_DIR/keep.ack" || die "cannot make a FIFO in $T_DIR"
    (ulimit -n "$(ulimit -Hn)" 2>/dev/null
        exec "$PERF" stat -x, -o /dev/null -e 'syscalls:sys_enter_*' -D -1 \
            --control "fifo:$T_DIR/keep.ctl,$T_DIR/keep.ack" -p "$sc_sleeper") </dev/null >/dev/null 2>&1 &
    sc_keeper=$!
    exec 5<>"$T_DIR/keep.ctl" 4<>"$T_DIR/keep.ack"
    echo disable >&5
    for ((k = 0; k < 60; k++)); do
        read -r -t 1 _ <&4 && break
        m8_alive "$sc_keeper" || break # perf cannot open the events: the probe says why not
    done
    exec 5>&- 4>&-
fi
case $sc_mode in
    auto) if sc_probe_perf; then sc_mode=perf; elif [ -n "$STRACE" ] && [ "$(id -u)" = 0 ]; then sc_mode=strace; else sc_mode=off; fi ;;
    perf) sc_probe_perf || die "perf cannot count syscalls:sys_enter_* here (M8_BENCH_SYSCALLS=strace or off)" ;;
    strace) [ -n "$STRACE" ] || die "strace is not installed" ;;
    off) ;;
    *) die "M8_BENCH_SYSCALLS wants auto, perf, strace or off" ;;
esac
case $sc_mode in
    perf) sc_how="perf stat -a -e 'syscalls:sys_enter_*' --filter 'common_pid == TID || ...' (every thread of the service processes), enabled only while wrk runs" ;;
    strace) sc_how="strace -c -f -p PIDS (perf cannot count here; strace slows every syscall: the row's req/s and p99 are low)" ;;
    *) sc_how="not counted (M8_BENCH_SYSCALLS=off, or neither perf nor strace can)" ;;
esac
[ "$sc_mode" != perf ] && [ -n "${sc_sleeper:-}" ] && kill "$sc_sleeper" 2>/dev/null
SC_PID='' SC_FILE=''
sc_begin() { # PID...: start counting
    SC_PID='' SC_FILE=$T_DIR/sc-${#R_LABEL[@]}.txt
    [ $# -gt 0 ] || return 0
    case $sc_mode in
        perf)
            # Per-CPU events with a filter on the threads' ids: per-thread
            # events (-p) would be switched in and out with ~360 others at
            # every context switch of the service's threads, which made their
            # CPU per request 5-8 times higher here.
            local p t f=
            for p in "$@"; do
                for t in /proc/"$p"/task/*; do f+="${f:+ || }common_pid == ${t##*/}"; done
            done
            rm -f "$T_DIR/sc.ctl" "$T_DIR/sc.ack"
            mkfifo "$T_DIR/sc.ctl" "$T_DIR/sc.ack" || return 0
            (ulimit -n "$(ulimit -Hn)" 2>/dev/null
                exec "$PERF" stat -a -x, -o "$SC_FILE" -e 'syscalls:sys_enter_*' --filter "$f" -D -1 \
                    --control "fifo:$T_DIR/sc.ctl,$T_DIR/sc.ack") \
                </dev/null >/dev/null 2>"$T_DIR/sc.err" &
            SC_PID=$!
            exec 8<>"$T_DIR/sc.ctl" 9<>"$T_DIR/sc.ack"
            echo enable >&8
            local ack=
            read -r -t 20 ack <&9
            [ "$ack" = ack ] || { say "perf stat did not start: $(head -c 300 "$T_DIR/sc.err")"; sc_end; SC_FILE=; }
            ;;
        strace)
            local a=() p
            for p in "$@"; do a+=(-p "$p"); done
            "$STRACE" -c -f -o "$SC_FILE" "${a[@]}" 2>"$T_DIR/sc.err" &
            SC_PID=$!
            sleep 1 # attached to every thread by then
            ;;
    esac
}
sc_end() {
    [ -n "$SC_PID" ] || return 0
    if [ "$sc_mode" = perf ]; then
        local ack=
        echo disable >&8
        read -r -t 10 ack <&9
        exec 8>&- 9>&-
    fi
    kill -INT "$SC_PID" 2>/dev/null
    wait "$SC_PID" 2>/dev/null
    SC_PID=
}

WRK_AFTER=() # wrk arguments after the URL (-- SCRIPT_ARGS)
R_LABEL=() R_RPS=() R_P50=() R_P99=() R_NOTE=() R_CPU=() R_OTHER=() R_SC=() R_SCTOP=() R_REQS=()
run() { # LABEL URL [wrk args...]
    local out rps p50 p99 non2xx sockerr reqs
    local s0 n0 c0 b0 t0 s1 n1 c1 b1 t1 d0 d1 dnote=
    say "row: $1"
    sc_begin "${ROW_PIDS[@]}"
    s0=$(pticks "${ROW_PIDS[@]}") n0=$(pticks "${NGINX_PIDS[@]}") d0=$(pticks $ROW_DAEMON)
    child_ticks c0
    b0=$(busy_ticks) t0=$(us_now)
    out=$("$WRK" -t"$wthreads" -c"$conns" -d"$dur" --latency "${@:3}" "$2" "${WRK_AFTER[@]}" 2>&1)
    b1=$(busy_ticks) t1=$(us_now)
    s1=$(pticks "${ROW_PIDS[@]}") n1=$(pticks "${NGINX_PIDS[@]}") d1=$(pticks $ROW_DAEMON)
    child_ticks c1
    sc_end
    printf '%s\n' "$out" >"$T_DIR/wrk-$(echo "$1" | tr -c 'A-Za-z0-9' _).txt"
    rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { print $2 }')
    reqs=$(printf '%s\n' "$out" | awk '/ requests in / { print $1 }')
    p50=$(printf '%s\n' "$out" | awk '$1 == "50%" { print $2 }')
    p99=$(printf '%s\n' "$out" | awk '$1 == "99%" { print $2 }')
    non2xx=$(printf '%s\n' "$out" | awk -F': *' '/Non-2xx or 3xx responses/ { print $2 }')
    sockerr=$(printf '%s\n' "$out" | sed -n 's/^ *Socket errors: *//p')
    [ -n "$rps" ] || say "wrk gave no result for $1: $(printf '%s' "$out" | head -c 300)"
    R_LABEL+=("$1") R_RPS+=("${rps:-0}") R_P50+=("$(to_ms "${p50:-0}")") R_P99+=("$(to_ms "${p99:-0}")")
    R_REQS+=("${reqs:-0}")
    [ -n "$ROW_DAEMON" ] && [ "${reqs:-0}" -gt 0 ] &&
        dnote="fcgim8d $(awk -v d=$((d1 - d0)) -v r="$reqs" 'BEGIN { printf "%.1f", d * 10000 / r }') us "
    R_NOTE+=("$dnote${non2xx:+non-2xx: $non2xx }${sockerr:+socket errors: $sockerr}")
    # ticks are 1/100 s (USER_HZ): 10000 us each
    R_CPU+=("$(awk -v d=$((s1 - s0)) -v r="${reqs:-0}" -v n=${#ROW_PIDS[@]} \
        'BEGIN { if (n == 0 || r == 0) print "-"; else printf "%.1f", d * 10000 / r }')")
    R_OTHER+=("$(awk -v b=$((b1 - b0)) -v m=$(( (s1 - s0) + (n1 - n0) + (c1 - c0) )) \
        -v e=$(( (t1 - t0) / 10000 )) -v c="$ncpu" \
        'BEGIN { o = (b - m) / (e * c) * 100; if (o < 0) o = 0; printf "%.0f%%", o }')")
    if [ -n "$SC_FILE" ] && [ -s "$SC_FILE" ] && [ "${reqs:-0}" -gt 0 ]; then
        R_SC+=("$(sc_counts "$SC_FILE" | awk -v r="$reqs" '{ t += $1 } END { printf "%.2f", t / r }')")
        R_SCTOP+=("$(sc_counts "$SC_FILE" | awk -v r="$reqs" 'NR <= 7 && $1 / r >= 0.005 {
            printf "%s%s %.2f", (NR > 1 ? "  " : ""), $2, $1 / r }')")
    else
        R_SC+=(-) R_SCTOP+=("")
    fi
}
row_index() { # LABEL: its index in R_*, or nothing
    local i
    for i in "${!R_LABEL[@]}"; do [ "${R_LABEL[$i]}" = "$1" ] && { echo "$i"; return; }; done
}

mem() { # PID...: "RSS PSS" in kB, summed from /proc/PID/smaps_rollup
    local p
    for p in "$@"; do cat "/proc/$p/smaps_rollup"; done |
        awk '$1 == "Rss:" { r += $2 } $1 == "Pss:" { s += $2 } END { printf "%d %d\n", r, s }'
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# Where the PSS goes: mapping groups of PID... ("PSS private_dirty group"
# lines, kB, largest first): the heap, thread stacks and other anonymous
# memory, the shared segment, each library the processes load, the binary.
groups() {
    local p
    for p in "$@"; do cat "/proc/$p/smaps"; done |
        awk '/^[0-9a-f]+-[0-9a-f]+ / { n = ($6 == "" ? "[anon]" : $6); sub(".*/", "", n)
                if (n ~ /^\[stack/) g = "[stack]"
                else if (n ~ /^\[/) g = n
                else if (n ~ /memfd|^SYSV|shm/) g = "shared-segment"
                else if (n ~ /\.so/) { sub(/\.so.*/, "", n); g = n }
                else g = n
                next }
             $1 == "Pss:" { pss[g] += $2 } $1 == "Private_Dirty:" { pd[g] += $2 }
             END { for (g in pss) printf "%d %d %s\n", pss[g], pd[g], g }' | sort -rn
}
groups_line() { # PID...: the groups of at least 32 kB of PSS, on one line
    groups "$@" | awk '$1 >= 32 { printf "%s%s %d", (n++ ? ", " : ""), $3, $1 }
        $1 < 32 { rest += $1 } END { if (rest) printf ", the rest %d", rest; print "" }'
}

# nginx logged a 502 per poll before the pool's socket existed: the warning
# at the end shows only what the wrk runs added.
errlog_lines=$(wc -l <"$T_DIR/ngx/error.log")
AUTH=(-H "Authorization: Bearer $TOKEN")
pool_pids() { # STATUS_PORT: the daemon and its workers, from fcgim8d's own status endpoint
    status=$("$CURL" -s -m 5 "http://127.0.0.1:$1/status") ||
        die "no answer from fcgim8d --status-listen 127.0.0.1:$1"
    sup=$(printf '%s' "$status" | sed -n 's/.*"supervisor_pid":\([0-9]*\).*/\1/p')
    wpids=$(printf '%s' "$status" | grep -o '"pid":[0-9]*' | cut -d: -f2 | tr '\n' ' ')
    wreqs=$(printf '%s' "$status" | grep -o '"requests":[0-9]*' | sed 1d | cut -d: -f2 | paste -sd/)
}
set_rows_pool() { # STATUS_PORT: the rows that follow measure this pool
    pool_pids "$1"
    # shellcheck disable=SC2206  # pids, one word each
    ROW_PIDS=("$sup" $wpids) ROW_DAEMON=$sup
}
memory_of() { # STATUS_PORT PREFIX: PREFIX_rss, _pss, _sup_pss, _nw, _wreqs, _groups, _sup_groups, _w_groups
    pool_pids "$1"
    local r s
    # shellcheck disable=SC2086
    read -r r s < <(mem "$sup" $wpids)
    printf -v "${2}_rss" '%s' "$r"
    printf -v "${2}_pss" '%s' "$s"
    read -r _ s < <(mem "$sup")
    printf -v "${2}_sup_pss" '%s' "$s"
    printf -v "${2}_nw" '%s' "$(wc -w <<<"$wpids")"
    printf -v "${2}_wreqs" '%s' "$wreqs"
    # shellcheck disable=SC2086
    printf -v "${2}_groups" '%s' "$(groups_line "$sup" $wpids)"
    printf -v "${2}_sup" '%s' "$sup"
    printf -v "${2}_w1" '%s' "${wpids%% *}"
}
pool=http://127.0.0.1:$port_pool
"$WRK" -t1 -c4 -d1s "$pool/ping" >/dev/null 2>&1 # warm-up: connections, caches
"$WRK" -t1 -c4 -d1s "${AUTH[@]}" "$pool/api/items/" >/dev/null 2>&1
ROW_PIDS=() ROW_DAEMON=
run "nginx return 200" "$pool/nginx-200"
# shellcheck disable=SC2207  # pids, one word each
ROW_PIDS=("$FLOOR_PID" $(pgrep -P "$FLOOR_PID")) ROW_DAEMON=
"$WRK" -t1 -c4 -d1s "http://127.0.0.1:$port_floor/ping" >/dev/null 2>&1
run "/ping, zero-work responder x$floor_w" "http://127.0.0.1:$port_floor/ping"
set_rows_pool "$port_status"
run "/ping, $pl" "$pool/ping"
# The same with M8_BENCH_IDLE (1000) more FastCGI connections open and idle
# on the pool's socket (held by a python3 process; without python3 no row):
# a request's syscalls must not grow with them.
nidle=${M8_BENCH_IDLE:-1000}
if [ "$nidle" -gt 0 ] && command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket, sys, time
conns = []
for _ in range(int(sys.argv[2])):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(sys.argv[1])
    conns.append(c)
print("open", flush=True)
time.sleep(600)' "$psock" "$nidle" >"$T_DIR/idle.out" 2>&1 &
    IDLE_PID=$!
    M8_PIDS+=("$IDLE_PID")
    m8_wait_for 20 grep -q open "$T_DIR/idle.out" || say "the idle connections did not open"
    pool_fds() { # descriptors open in the pool's workers
        local n=0 p
        for p in $(curl -s "http://127.0.0.1:$port_status/status" | grep -o '"pid":[0-9]*' | cut -d: -f2); do
            n=$((n + $(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)))
        done
        echo "$n"
    }
    # accepted (in the workers' epoll sets), not just queued on the socket
    m8_wait_for 20 test "$(pool_fds)" -ge "$nidle" || say "the workers did not accept the idle connections"
    run "/ping, $pl, $nidle idle connections open" "$pool/ping"
    kill "$IDLE_PID" 2>/dev/null
    wait "$IDLE_PID" 2>/dev/null
fi
i_pool_items=${#R_LABEL[@]}
run "/api/items/ RS256, $pl" "$pool/api/items/" "${AUTH[@]}"
if [ "$ntokens" -gt 0 ]; then
    WRK_AFTER=(-- "$T_DIR/tokens.txt")
    run "/api/items/ RS256 ${ntokens} tokens, $pl" "$pool/api/items/" -s "$here/tokens.lua"
    WRK_AFTER=()
fi
topup() { # URL: more load on the memory target's pool until mem_load reaches 10 s
    if [ "$mem_load" -lt 10 ]; then
        "$WRK" -t"$wthreads" -c"$conns" -d"$((10 - mem_load))s" "${AUTH[@]}" "$1" >/dev/null 2>&1
        mem_load=10
    fi
}
if [ "$mem_same" = 1 ]; then
    mem_load=$(( (ntokens > 0 ? 3 : 2) * dur_s ))
    topup "$pool/api/items/"
    mem_rows="the $pl rows above, ${mem_load} s"
fi
memory_of "$port_status" main
"$WRK" -t1 -c4 -d1s "http://127.0.0.1:$port_warn/ping" >/dev/null 2>&1
set_rows_pool "$port_status_warn"
run "/ping, $pl, warning" "http://127.0.0.1:$port_warn/ping"
"$WRK" -t1 -c4 -d1s "${AUTH[@]}" "http://127.0.0.1:$port_all/api/items/" >/dev/null 2>&1
set_rows_pool "$port_status_all"
run "/ping, $pl, every thread polls" "http://127.0.0.1:$port_all/ping"
run "/api/items/ RS256, $pl, every thread polls" "http://127.0.0.1:$port_all/api/items/" "${AUTH[@]}"

# The memory target's pool: PSS after at least 10 s of load.
if [ "$mem_same" = 0 ]; then
    mp=http://127.0.0.1:$port_mem
    "$WRK" -t1 -c4 -d1s "${AUTH[@]}" "$mp/api/items/" >/dev/null 2>&1
    set_rows_pool "$port_status_mem"
    run "/ping, $ml" "$mp/ping"
    run "/api/items/ RS256, $ml" "$mp/api/items/" "${AUTH[@]}"
    mem_load=$(( 2 * dur_s ))
    topup "$mp/api/items/"
    memory_of "$port_status_mem" mp
    mem_rows="/ping and /api/items/ RS256 rows, ${mem_load} s"
else
    mp_rss=$main_rss mp_pss=$main_pss mp_sup_pss=$main_sup_pss mp_nw=$main_nw mp_wreqs=$main_wreqs
    mp_groups=$main_groups mp_sup=$main_sup mp_w1=$main_w1
fi
if [ "${M8_BENCH_SMAPS:-0}" = 1 ]; then
    smaps_detail=$(echo "PSS by mapping group (kB; PSS, private dirty), $ml's fcgim8d $mp_sup:"
        groups "$mp_sup" | awk '$1 >= 8 { printf "    %6d %6d  %s\n", $1, $2, $3 }'
        echo "a worker, $mp_w1:"
        groups "$mp_w1" | awk '$1 >= 8 { printf "    %6d %6d  %s\n", $1, $2, $3 }')
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

# One RS256 verification on this machine (the cache-miss row pays one per
# request): openssl's own figure, in the same run.
rsa_verify_us=$(openssl speed -seconds 1 rsa2048 2>/dev/null |
    awk '/^rsa 2048 bits/ { v = $NF; if (v > 0) printf "%.1f", 1e6 / v }')

# ------------------------------------------------------------------ report
echo "fcgi-m8 end-to-end benchmark: wrk -t$wthreads -c$conns -d$dur --latency"
echo "nginx $("$NGINX" -v 2>&1 | sed 's/.*nginx\///') (worker_processes $ngx_workers: $ngx_nw workers; upstream keepalive 64, fastcgi_keep_conn on); $ncpu CPUs, $(uname -sr)"
echo "programs: $BIN_FROM"
echo "pools: $pool_how; log level info (the default: an access line per request) unless the row says warning;"
echo "       $ml = fcgim8d --workers $mem_w --threads $mem_t (the memory target's pool)"
[ "$compare" = 1 ] && echo "single x$sthreads = item-service --listen unix: --threads $sthreads"
printf '%-44s %10s %7s %7s %6s %6s %6s %7s %5s  %s\n' target req/s p50_ms p99_ms "x 200" "p99 x" \
    cpu_us sc/req other notes
for i in "${!R_LABEL[@]}"; do
    ratio=$(awk -v a="${R_RPS[$i]}" -v b="${R_RPS[0]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    pr=$(awk -v a="${R_P99[$i]}" -v b="${R_P99[0]}" 'BEGIN { if (a == "-") print "-"; else if (b > 0) printf "%.1f", a / b; else print "n/a" }')
    printf '%-44s %10s %7s %7s %6s %6s %6s %7s %5s  %s\n' "${R_LABEL[$i]}" "${R_RPS[$i]}" "${R_P50[$i]}" \
        "${R_P99[$i]}" "$ratio" "$pr" "${R_CPU[$i]}" "${R_SC[$i]}" "${R_OTHER[$i]}" "${R_NOTE[$i]}"
done
echo "(x 200: req/s / nginx return 200's; p99 x: p99 / return 200's p99; cpu_us: CPU microseconds"
echo " (utime+stime, /proc) of the service processes per request, fcgim8d and its workers for a pool;"
echo " sc/req: their syscalls per request; other: share of the $ncpu CPUs used by processes outside"
echo " this benchmark during the row -- above a few percent the row ran on a busy machine)"
echo
echo "syscalls per request of the service processes: $sc_how"
for i in "${!R_LABEL[@]}"; do
    [ -n "${R_SCTOP[$i]}" ] && printf '  %-44s %5s  %s\n' "${R_LABEL[$i]}" "${R_SC[$i]}" "${R_SCTOP[$i]}"
done
echo
echo "start to ready ($pl, no database): fcgim8d logs ready in ${t_ready:-?} ms;" \
    "launch to the first 200 of /api/health/ through nginx: $t_first200 ms"
echo "memory, $ml after $mem_rows: daemon + $mp_nw workers PSS $(mib "$mp_pss") MiB," \
    "RSS $(mib "$mp_rss") MiB (daemon PSS $(mib "$mp_sup_pss") MiB; requests per worker $mp_wreqs)"
echo "  PSS by mapping group, kB, daemon + workers: $mp_groups"
if [ "$mem_same" = 0 ]; then
    echo "memory, $pl after its rows (cache misses included): daemon + $main_nw workers PSS $(mib "$main_pss") MiB," \
        "RSS $(mib "$main_rss") MiB (daemon PSS $(mib "$main_sup_pss") MiB)"
    echo "  PSS by mapping group, kB, daemon + workers: $main_groups"
fi
[ "$compare" = 1 ] &&
    echo "memory after the load (single x$sthreads): RSS $(mib "$single_rss") MiB, PSS $(mib "$single_pss") MiB"
[ -n "${smaps_detail:-}" ] && printf '%s\n' "$smaps_detail"
echo "one RS256 verification (openssl speed rsa2048, 1 s): ${rsa_verify_us:-?} us"
more_report
if printf '%s\n' "${R_NOTE[@]}" | grep -qE 'non-2xx|socket errors'; then
    echo "warning: errors or non-2xx answers above (expected only on the libfcgi keepalive" \
        "row: pinned threads); the last lines nginx logged during the runs:" >&2
    tail -n +"$((errlog_lines + 1))" "$T_DIR/ngx/error.log" | tail -n 5 | grep . >&2 || echo "(none)" >&2
fi

# ------------------------------------------------------------------ facts for bench/run.sh
if [ -n "$facts" ]; then
    {
        fact_row() { # KEY LABEL
            local i
            i=$(row_index "$2")
            [ -n "$i" ] || return 0
            echo "$1.label ${R_LABEL[$i]}"
            echo "$1.rps ${R_RPS[$i]}"
            echo "$1.p99 ${R_P99[$i]}"
            echo "$1.cpu ${R_CPU[$i]}"
            echo "$1.sc ${R_SC[$i]}"
            echo "$1.sctop ${R_SCTOP[$i]}"
            echo "$1.other ${R_OTHER[$i]}"
            echo "$1.note ${R_NOTE[$i]}"
        }
        fact_row ret200 "nginx return 200"
        fact_row floor "/ping, zero-work responder x$floor_w"
        fact_row ping "/ping, $pl"
        fact_row ping_idle "/ping, $pl, ${nidle} idle connections open"
        fact_row items "/api/items/ RS256, $pl"
        fact_row items_miss "/api/items/ RS256 ${ntokens} tokens, $pl"
        fact_row ping_warn "/ping, $pl, warning"
        fact_row ping_all "/ping, $pl, every thread polls"
        fact_row items_all "/api/items/ RS256, $pl, every thread polls"
        fact_row ping_mem "/ping, $ml"
        fact_row items_mem "/api/items/ RS256, $ml"
        echo "pool $pl"
        echo "mem_pool $ml"
        echo "ntokens $ntokens"
        echo "nidle $nidle"
        echo "nginx_workers $ngx_nw"
        echo "sc_mode $sc_mode"
        echo "start_first200_ms $t_first200"
        echo "start_ready_ms ${t_ready:-}"
        echo "programs $BIN_FROM"
        echo "mem_pss_kib $mp_pss"
        echo "mem_load_s $mem_load"
        echo "rsa_verify_us ${rsa_verify_us:-}"
        more_facts
    } >"$facts"
fi
exit 0
