#!/bin/bash
# t_fcgim8d.sh - the supervisor behind a real nginx (contrib/nginx site with
# upstream keepalive): boot order and readiness, failing validators, reload
# (good and bad env file), worker kills under load, max-requests recycling,
# request timeouts, drain on SIGTERM, the crash-loop breaker, the status
# endpoint while every worker is busy, and metrics summed over the workers;
# 20 reloads, --max-requests recycling and the dynamic pool's shrink under
# GET and POST load with no failed request (retiring workers drain their
# kept connections), and the connection deadlines passed to the workers.
# Ports come from 18400-18499.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
m8_init t_fcgim8d

FIX=$(m8_svc_bin fixture)
D=$top_builddir/src/fcgim8d
[ -x "$FIX" ] && [ -x "$D" ] || t_bail "programs not built ($FIX, $D)"
WRK=$(command -v wrk || true)
PLO=18400 PHI=18499
NG=$T_DIR/ngx

# m8d_start NAME ENVFILE [VAR=VALUE...] -- [fcgim8d options]: fcgim8d running
# the fixture on unix:$T_DIR/NAME.sock; its log is $T_DIR/NAME.log.
declare -A DPID=()
m8d_start() {
    local name=$1 envf=$2
    shift 2
    local -a vars=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    (cd "$T_DIR" && m8_clean_exec "${vars[@]}" -- "$D" --listen "unix:$T_DIR/$name.sock" \
        --env-file "$envf" "$@" -- "${M8D_SVC:-$FIX}") </dev/null >"$T_DIR/$name.out" 2>"$T_DIR/$name.log" &
    DPID[$name]=$!
    M8_PIDS+=("$!")
}
m8d_log_has() { grep -q -- "$2" "$T_DIR/$1.log"; }
m8d_wait_log() { m8_wait_for "${3:-15}" m8d_log_has "$1" "$2"; }
m8d_diag() { t_diag "--- $1 log (last 20 lines)" "$(tail -n 20 "$T_DIR/$1.log")"; }
status_get() { # PORT: GET /status from the supervisor -> S_BODY
    S_BODY=$("$CURL" -s -m 5 "http://127.0.0.1:$1/status")
}
status_field() { # JSON-PATH (python expression on j)
    /usr/bin/python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$S_BODY"
}
worker_pids() { # PORT: sorted pids of live worker slots
    status_get "$1"
    status_field "' '.join(str(p) for p in sorted(w['pid'] for w in j['workers'] if w['state']=='ready'))"
}

m8_write_env "$T_DIR/app.env" METRICS_ENABLED=true
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
declare -A URL=()
for s in A B C E F G K J R M Y; do
    m8_pick_port $PLO $((PLO + 49)) || t_bail "no free port"
    URL[$s]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "$s" fcgi-m8-unix.conf NAME="d_$s" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/$s.sock" || t_bail "cannot render the site"
done
m8_nginx_start "$NG" || t_bail "nginx does not start"

# ------------------------------------------------------------- A: boot, readiness, metrics
m8_pick_port $((PLO + 50)) $PHI || t_bail "no free port"
SA=$M8_PORT
t0=$(m8_now_ms)
m8d_start A "$T_DIR/app.env" M8T_READY_FILE="$T_DIR/A.ready" -- --workers 3 --threads 2 \
    --status-listen "127.0.0.1:$SA"
m8_wait_sock "$T_DIR/A.sock" 10 || { m8d_diag A; t_bail "fcgim8d A does not listen"; }
m8_wait_port "$SA" 10 || t_bail "status port of A does not answer"
m8_wait_for 10 sh -c "\"$CURL\" -s http://127.0.0.1:$SA/status | grep -q '\"starting\":3'"
status_get "$SA"
t_is "$(status_field "j['pool']['ready']")" False "A: the pool is not ready while its workers' startup runs"
t_is "$(status_field "j['pool']['workers']['starting']")" 3 "A: three workers are starting"
m8_http GET "${URL[A]}/api/health/"
t_is "$H_STATUS" 503 "A: health through nginx answers 503 before the pool is ready"
t_like "$H_BODY" '"initializing"' "A: health says initializing before the pool is ready"
m8_http GET "${URL[A]}/ping"
t_is "$H_STATUS" 200 "A: /ping answers while the pool starts"
touch "$T_DIR/A.ready"
m8d_wait_log A '"msg":"ready: 3 workers' 15 || m8d_diag A
t_ok $? "A: the supervisor logs ready once the three workers are"
m8_http GET "${URL[A]}/api/health/"
t_is "$H_STATUS" 200 "A: health through nginx answers 200 once the pool is ready"
status_get "$SA"
t_is "$(status_field "j['pool']['workers']['idle']")" 3 "A: status shows three idle workers"
t_is "$(status_field "j['pool']['ready']")" True "A: status shows the pool ready"
t_like "$(grep -c '"worker_pid"\|"pid":' "$T_DIR/A.log")" '^[1-9]' "A: worker log lines reach the supervisor's log"
w0=$(grep -o '"pid":[0-9]*' "$T_DIR/A.log" | sort -u | wc -l)
t_ok "$([ "$w0" -ge 4 ]; echo $?)" "A: the log holds lines of the supervisor and of each worker (by pid)" "$w0 distinct pids"

# metrics: N requests spread over the workers are counted exactly once
N=60
fails=0
for i in $(seq 1 $N); do
    code=$("$CURL" -s -o /dev/null -w '%{http_code}' "${URL[A]}/api/hello/m$i") || code=000
    [ "$code" = 200 ] || fails=$((fails + 1))
done
t_is "$fails" 0 "A: $N requests through nginx all answer 200"
m8_http GET "http://127.0.0.1:$SA/metrics"
t_is "$H_STATUS" 200 "A: the supervisor serves /metrics"
got=$(printf '%s\n' "$H_BODY" | sed -n 's/^api_http_requests_total{method="GET",endpoint="\/api\/hello\/{name}",status_code="200"} \([0-9.e+]*\)$/\1/p')
t_is "${got%.0}" "$N" "A: the supervisor's metrics count exactly $N requests summed over all workers"
m8_http GET "${URL[A]}/api/metrics"
got2=$(printf '%s\n' "$H_BODY" | sed -n 's/^api_http_requests_total{method="GET",endpoint="\/api\/hello\/{name}",status_code="200"} \([0-9.e+]*\)$/\1/p')
t_is "${got2%.0}" "$N" "A: a worker's {API_PREFIX}/metrics reports the same sum over all workers"
t_like "$H_BODY" 'api_fcgim8_workers\{state="idle"\}' "A: metrics carry the pool gauges"
status_get "$SA"
t_is "$(status_field "sum(w['requests'] for w in j['workers'])")" "$(status_field "j['pool']['requests']")" \
    "A: status sums the requests of the workers"


# bad env file on SIGHUP: the old generation keeps serving and the log says why
pids_before=$(worker_pids "$SA")
cp "$T_DIR/app.env" "$T_DIR/app.env.good"
echo "ACCESS_TOKEN_EXPIRE_MINUTES=not-a-number" >>"$T_DIR/app.env"
kill -HUP "${DPID[A]}"
m8d_wait_log A 'reload refused' 10 || m8d_diag A
t_ok $? "A: SIGHUP with a bad env file is refused with a log line"
t_ok "$(grep 'ACCESS_TOKEN_EXPIRE_MINUTES' "$T_DIR/A.log" | grep -qv 'not-a-number'; echo $?)" \
    "A: the refusal names the variable, not the value"
m8_http GET "${URL[A]}/api/hello/after-bad-reload"
t_is "$H_STATUS" 200 "A: requests still succeed after a refused reload"
t_is "$(worker_pids "$SA")" "$pids_before" "A: the same workers keep serving after a refused reload"
cp "$T_DIR/app.env.good" "$T_DIR/app.env"

# good SIGHUP under load: zero failed requests, a new generation
if [ -n "$WRK" ]; then
    "$WRK" -t2 -c8 -d4s "${URL[A]}/api/hello/reload" >"$T_DIR/wrk-hup.txt" 2>&1 &
    wrk_pid=$!
    sleep 1
    pids_before=$(worker_pids "$SA")
    kill -HUP "${DPID[A]}"
    wait "$wrk_pid"
    non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$T_DIR/wrk-hup.txt")
    errs=$(sed -n 's/.*Socket errors: .*/x/p' "$T_DIR/wrk-hup.txt")
    total=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$T_DIR/wrk-hup.txt")
    t_is "${non2xx:-0}${errs}" 0 "A: SIGHUP during load: zero failed requests (of ${total:-?})"
else
    kill -HUP "${DPID[A]}"
    t_skip "A: SIGHUP during load" "wrk is not installed"
fi
m8d_wait_log A 'reload: generation 2 ready' 15
t_ok $? "A: the reload starts generation 2 and logs it ready"
m8_wait_for 10 sh -c "[ \"\$(\"$CURL\" -s http://127.0.0.1:$SA/status | grep -o '\"generation\":1' | wc -l)\" = 0 ]"
status_get "$SA"
t_is "$(status_field "sorted(set(w['generation'] for w in j['workers']))")" "[2]" "A: only generation 2 serves after the reload"
t_is "$(status_field "j['pool']['reloads']['ok']")" 1 "A: status counts one successful reload"

# SIGTERM drains a request in flight, then the supervisor exits 0
"$CURL" -s -o "$T_DIR/drain.body" -w '%{http_code}' -m 10 "${URL[A]}/api/slow" >"$T_DIR/drain.code" &
cpid=$!
sleep 0.3
kill -TERM "${DPID[A]}"
wait "$cpid"
t_is "$(cat "$T_DIR/drain.code")" 200 "A: SIGTERM lets the request in flight finish (200)"
m8_wait_exit "${DPID[A]}" 10
t_is "$M8_RC" 0 "A: the supervisor exits 0 after draining"
t_ok "$([ ! -e "$T_DIR/A.sock" ]; echo $?)" "A: the unix socket is removed at exit"
t_like "$(pgrep -f -c -- "--env-file $T_DIR/app.env" || true)" '^0$' "A: no worker is left behind"

# ------------------------------------------------------------- R, M, Y: retiring under load
# wrk_failed FILE: failed requests of a wrk run (non-2xx/3xx answers plus
# socket errors of every kind); wrk_total FILE: requests made.
wrk_failed() {
    local non2xx errs
    non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$1")
    errs=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1+\2+\3+\4/p' "$1")
    echo $(( ${non2xx:-0} + ${errs:-0} ))
}
wrk_total() { sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$1"; }
# load_start SITE TAG: GET and POST load through nginx (wrk, 6 connections
# each, until load_stop); load_stop TAG: stops it (wrk reports on SIGINT)
# and sets L_FAILED, L_TOTAL and L_UPSTREAM (nginx error-log lines about
# the upstream written meanwhile).
cat >"$T_DIR/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"under":"load"}'
wrk.headers["Content-Type"] = "application/json"
EOF
declare -A LPIDS=() LERR0=()
load_start() {
    LERR0[$2]=$(wc -c <"$NG/error.log")
    "$WRK" -t1 -c6 -d300s "${URL[$1]}/api/hello/load" >"$T_DIR/wrk-$2-get.txt" 2>&1 &
    LPIDS[$2]="$!"
    "$WRK" -t1 -c6 -d300s -s "$T_DIR/post.lua" "${URL[$1]}/api/echo" >"$T_DIR/wrk-$2-post.txt" 2>&1 &
    LPIDS[$2]+=" $!"
    # shellcheck disable=SC2206
    M8_PIDS+=(${LPIDS[$2]})
}
load_stop() {
    # shellcheck disable=SC2086
    kill -INT ${LPIDS[$1]} 2>/dev/null
    # shellcheck disable=SC2086
    wait ${LPIDS[$1]} 2>/dev/null
    L_FAILED=$(( $(wrk_failed "$T_DIR/wrk-$1-get.txt") + $(wrk_failed "$T_DIR/wrk-$1-post.txt") ))
    L_TOTAL="$(wrk_total "$T_DIR/wrk-$1-get.txt") GET, $(wrk_total "$T_DIR/wrk-$1-post.txt") POST"
    L_UPSTREAM=$(tail -c +$(( ${LERR0[$1]} + 1 )) "$NG/error.log" | grep -c 'upstream' || true)
    [ "$L_UPSTREAM" = 0 ] || t_diag "nginx error log" \
        "$(tail -c +$(( ${LERR0[$1]} + 1 )) "$NG/error.log" | grep 'upstream' | head -n 5)"
}
posts_ok() { # SITE: the POST of the load answers 2xx
    m8_http POST "${URL[$1]}/api/echo" -H 'Content-Type: application/json' -d '{"under":"load"}'
    [ "${H_STATUS:0:1}" = 2 ]
}

if [ -n "$WRK" ]; then
    # R: 20 consecutive reloads, each started once the previous one is done
    m8_pick_port $((PLO + 50)) $PHI || t_bail "no free port"
    SR=$M8_PORT
    m8d_start R "$T_DIR/app.env" -- --workers 2 --threads 2 --status-listen "127.0.0.1:$SR"
    m8d_wait_log R '"msg":"ready: 2 workers' 15 || m8d_diag R
    posts_ok R
    t_ok $? "R: the POST used as load answers 2xx" "$H_STATUS $H_BODY"
    load_start R r
    sleep 1
    reloads=0
    for g in $(seq 2 21); do
        kill -HUP "${DPID[R]}"
        m8d_wait_log R "reload: generation $g ready" 20 || { m8d_diag R; break; }
        reloads=$((reloads + 1))
        sleep 0.2
    done
    sleep 0.5
    load_stop r
    t_is "$reloads" 20 "R: 20 consecutive SIGHUPs under load each start a new generation"
    t_is "$L_FAILED" 0 "R: 20 reloads under GET and POST load through nginx: no failed request ($L_TOTAL)"
    t_is "$L_UPSTREAM" 0 "R: ... and no upstream error in nginx's error log"
    t_ok "$(grep -q '"msg":"signal 3: retiring"' "$T_DIR/R.log"; echo $?)" \
        "R: old workers are retired with SIGQUIT (they drain), not stopped"
    status_get "$SR"
    t_is "$(status_field "j['pool']['reloads']['ok']")" 20 "R: status counts 20 successful reloads"
    kill -TERM "${DPID[R]}"
    m8_wait_exit "${DPID[R]}" 15
    t_is "$M8_RC" 0 "R: SIGTERM ends the drains and stops fcgim8d with 0"

    # M: --max-requests recycling under load
    m8_pick_port $((PLO + 50)) $PHI || t_bail "no free port"
    SM=$M8_PORT
    m8d_start M "$T_DIR/app.env" -- --workers 2 --threads 2 --max-requests 200 \
        --status-listen "127.0.0.1:$SM"
    m8d_wait_log M '"msg":"ready: 2 workers' 15 || m8d_diag M
    load_start M m
    m8_wait_for 20 sh -c "[ \"\$(grep -c 'recycling' '$T_DIR/M.log')\" -ge 6 ]"
    load_stop m
    recycled=$(grep -c '(--max-requests): recycling' "$T_DIR/M.log")
    t_ok "$([ "$recycled" -ge 6 ]; echo $?)" "M: workers recycle under load (--max-requests 200)" "$recycled recycled"
    t_is "$L_FAILED" 0 "M: recycling under GET and POST load through nginx: no failed request ($L_TOTAL)"
    t_is "$L_UPSTREAM" 0 "M: ... and no upstream error in nginx's error log"
    kill -TERM "${DPID[M]}"
    m8_wait_exit "${DPID[M]}" 15

    # Y: the dynamic pool shrinks while under load
    m8_pick_port $((PLO + 50)) $PHI || t_bail "no free port"
    SY=$M8_PORT
    m8d_start Y "$T_DIR/app.env" -- --pm dynamic --workers 6 --min-spare 1 --max-spare 1 \
        --max-workers 6 --threads 1 --status-listen "127.0.0.1:$SY"
    m8d_wait_log Y '"msg":"ready: 6 workers' 15 || m8d_diag Y
    load_start Y y
    m8_wait_for 20 sh -c "[ \"\$(grep -c 'dynamic pool: .* retiring' '$T_DIR/Y.log')\" -ge 4 ]"
    load_stop y
    shrunk=$(grep -c 'dynamic pool: .* retiring' "$T_DIR/Y.log")
    t_ok "$([ "$shrunk" -ge 4 ]; echo $?)" "Y: the dynamic pool retires idle workers while under load" "$shrunk retired"
    t_is "$L_FAILED" 0 "Y: shrinking under GET and POST load through nginx: no failed request ($L_TOTAL)"
    t_is "$L_UPSTREAM" 0 "Y: ... and no upstream error in nginx's error log"
    kill -TERM "${DPID[Y]}"
    m8_wait_exit "${DPID[Y]}" 15
else
    for i in $(seq 1 13); do t_skip "R/M/Y: retiring under load" "wrk is not installed"; done
fi

# ------------------------------------------------------------- D: connection deadlines through fcgim8d
# held_until_closed SOCKET BYTES: connects, sends BYTES (a Python bytes
# literal), and prints "closed" when the worker closes the connection within
# 10 s, "open" otherwise.
held_until_closed() {
    /usr/bin/python3 - "$1" "$2" <<'PYEOF'
import ast, select, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(ast.literal_eval(sys.argv[2]))
end = time.time() + 10
while time.time() < end:
    if select.select([s], [], [], 0.2)[0]:
        try:
            if not s.recv(4096):
                print("closed"); sys.exit(0)
        except ConnectionResetError:
            print("closed"); sys.exit(0)
print("open")
PYEOF
}
m8d_start D "$T_DIR/app.env" -- --workers 1 --threads 1 --idle-timeout 1 --request-deadline 0.5
m8d_wait_log D '"msg":"ready: 1 workers' 15 || m8d_diag D
t_is "$(held_until_closed "$T_DIR/D.sock" "b'\x01\x01\x00\x01'")" closed \
    "D: fcgim8d passes --request-deadline: a peer that sends half a record header loses its descriptor"
t_is "$(held_until_closed "$T_DIR/D.sock" "b''")" closed \
    "D: fcgim8d passes --idle-timeout: a connection that sends nothing is closed"
t_ok "$(grep -q 'within 0.5 s (--request-deadline)' "$T_DIR/D.log"; echo $?)" \
    "D: the worker logs the connection it closed at the request deadline"
kill -TERM "${DPID[D]}"
m8_wait_exit "${DPID[D]}" 10

# ------------------------------------------------------------- G: status while every worker is busy
m8_pick_port $((PLO + 50)) $PHI || t_bail "no free port"
SG=$M8_PORT
m8d_start G "$T_DIR/app.env" -- --workers 1 --threads 1 --status-listen "127.0.0.1:$SG"
m8d_wait_log G '"msg":"ready: 1 workers' 15 || m8d_diag G
cpids=()
for i in 1 2; do
    "$CURL" -s -o /dev/null -m 15 "${URL[G]}/api/sleep/3000" &
    cpids+=("$!")
done
m8_wait_for 3 sh -c "\"$CURL\" -s http://127.0.0.1:$SG/status | grep -q '\"threads_busy\":1'"
t1=$(m8_now_ms)
status_get "$SG"
t2=$(m8_now_ms)
t_is "$(status_field "(j['pool']['workers']['busy'], j['pool']['workers']['idle'])")" "(1, 0)" \
    "G: status answers while the only worker is busy"
t_ok "$([ $((t2 - t1)) -lt 1000 ]; echo $?)" "G: ... without waiting for the worker" "$((t2 - t1)) ms"
t_is "$(status_field "j['workers'][0]['busy'][0]['request']")" "GET /api/sleep/3000" \
    "G: status names the request the busy worker runs"
m8_http GET "http://127.0.0.1:$SG/metrics"
t_is "$H_STATUS" 200 "G: metrics answer from the supervisor while the worker is busy"
m8_wait_for 3 sh -c "\"$CURL\" -s http://127.0.0.1:$SG/status | grep -q '\"listen_queue\":1,'"
t_ok $? "G: the second request waits in the unix socket's accept queue, and status shows it"
wait "${cpids[@]}"
kill -TERM "${DPID[G]}"
m8_wait_exit "${DPID[G]}" 10

# ------------------------------------------------------------- K: worker kills under load
m8_pick_port $((PLO + 50)) $PHI || t_bail "no free port"
SK=$M8_PORT
m8d_start K "$T_DIR/app.env" -- --workers 3 --threads 1 --status-listen "127.0.0.1:$SK"
m8d_wait_log K '"msg":"ready: 3 workers' 15 || m8d_diag K

# SIGKILL of a worker every 200 ms under load: at most one failed request per kill
if [ -n "$WRK" ]; then
    "$WRK" -t2 -c8 -d4s "${URL[K]}/api/hello/load" >"$T_DIR/wrk-kill.txt" 2>&1 &
    wrk_pid=$!
    sleep 0.5
    kills=0
    for i in $(seq 1 10); do
        victim=$(worker_pids "$SK" | tr ' ' '\n' | shuf -n 1)
        [ -n "$victim" ] && kill -KILL "$victim" 2>/dev/null && kills=$((kills + 1))
        sleep 0.2
    done
    wait "$wrk_pid"
    non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$T_DIR/wrk-kill.txt")
    errs=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1+\2+\3+\4/p' "$T_DIR/wrk-kill.txt")
    failed=$(( ${non2xx:-0} + ${errs:-0} ))
    total=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$T_DIR/wrk-kill.txt")
    t_ok "$([ "$failed" -le "$kills" ]; echo $?)" "K: $kills worker SIGKILLs under load fail at most one request each" \
        "failed=$failed of ${total:-?} requests, kills=$kills"
    m8_wait_for 10 sh -c "\"$CURL\" -s http://127.0.0.1:$SK/status | grep -q '\"idle\":3'"
    t_ok $? "K: the pool returns to three ready workers after the kills"
    status_get "$SK"
    t_ok "$([ "$(status_field "j['pool']['restarts']['crash']")" -ge "$kills" ]; echo $?)" \
        "K: status counts the killed workers as crash restarts"
else
    t_skip "K: worker kills under load" "wrk is not installed"
    t_skip "K: the pool returns to size" "wrk is not installed"
    t_skip "K: crash restarts counted" "wrk is not installed"
fi
kill -TERM "${DPID[K]}"
m8_wait_exit "${DPID[K]}" 10

# ------------------------------------------------------------- B: a failing validator stops the boot
touch "$T_DIR/B.fail"
m8d_start B "$T_DIR/app.env" M8T_VALIDATOR_FAIL_FILE="$T_DIR/B.fail" -- --workers 2
m8_wait_exit "${DPID[B]}" 15
t_is "$M8_RC" 78 "B: a failing startup validator stops fcgim8d with exit 78"
t_ok "$(grep -q 'startup validator fixture failed' "$T_DIR/B.log"; echo $?)" "B: the validator's reason is logged"
t_ok "$(grep -q -- '--check.*exited with 78' "$T_DIR/B.log"; echo $?)" "B: the supervisor says the check failed"
t_ok "$([ ! -e "$T_DIR/B.sock" ]; echo $?)" "B: no socket is left after a refused boot"

m8_write_env "$T_DIR/bad.env" -SERVICE_VERSION
m8d_start B2 "$T_DIR/bad.env" -- --workers 2
m8_wait_exit "${DPID[B2]}" 15
t_is "$M8_RC" 78 "B: invalid settings stop fcgim8d with exit 78 before any worker starts"
t_ok "$(grep -q 'SERVICE_VERSION' "$T_DIR/B2.log"; echo $?)" "B: the log names the missing variable"

# ------------------------------------------------------------- C: max-requests recycling
m8_pick_port $((PLO + 50)) $PHI || t_bail "no free port"
SC=$M8_PORT
m8d_start C "$T_DIR/app.env" -- --workers 2 --threads 2 --max-requests 25 --status-listen "127.0.0.1:$SC"
m8d_wait_log C '"msg":"ready: 2 workers' 15 || m8d_diag C
fails=0
for i in $(seq 1 150); do
    code=$("$CURL" -s -o /dev/null -w '%{http_code}' "${URL[C]}/api/hello/r$i") || code=000
    [ "$code" = 200 ] || fails=$((fails + 1))
done
t_is "$fails" 0 "C: 150 requests with --max-requests 25: none fails"
# Each worker took 25 of the 150 requests, so at least 4 were recycled; a
# restart is counted once the old worker has drained and been reaped.
recycled4() {
    status_get "$SC"
    rec=$(status_field "j['pool']['restarts']['max_requests']")
    [ "${rec:-0}" -ge 4 ] 2>/dev/null
}
m8_wait_for 10 recycled4
t_ok "$([ "${rec:-0}" -ge 4 ]; echo $?)" "C: workers were recycled after 25 requests" "max_requests restarts=$rec"
t_is "$(status_field "j['pool']['restarts']['crash']")" 0 "C: recycling is not counted as a crash"
t_ok "$(grep -q 'served 25 requests (--max-requests): recycling' "$T_DIR/C.log"; echo $?)" "C: a worker logs why it leaves"
m8_http GET "http://127.0.0.1:$SC/metrics"
got=$(printf '%s\n' "$H_BODY" | sed -n 's/^api_http_requests_total{method="GET",endpoint="\/api\/hello\/{name}",status_code="200"} \([0-9.e+]*\)$/\1/p')
t_is "${got%.0}" 150 "C: counters survive recycled workers (150 counted)"

# ------------------------------------------------------------- E: request timeout
m8d_start E "$T_DIR/app.env" -- --workers 2 --threads 1 --request-timeout 1 --slow-log 0.5 \
    --status-listen "127.0.0.1:$SC.bad" 2>/dev/null
m8_wait_exit "${DPID[E]}" 10
t_is "$M8_RC" 70 "E: a bad --status-listen address stops the boot (70)"
m8_pick_port $((PLO + 50)) $PHI || t_bail "no free port"
SE=$M8_PORT
m8d_start E "$T_DIR/app.env" -- --workers 2 --threads 1 --request-timeout 1 --slow-log 0.5 \
    --status-listen "127.0.0.1:$SE"
m8d_wait_log E '"msg":"ready: 2 workers' 15 || m8d_diag E
m8_http GET "${URL[E]}/api/sleep/4000"
t_like "$H_STATUS" '^50[24]$' "E: a request stuck past --request-timeout gets a 502 from nginx (worker replaced)"
t_ok "$(grep -q 'request-timeout' "$T_DIR/E.log"; echo $?)" "E: the kill is logged with the request"
t_ok "$(grep -q 'slow request' "$T_DIR/E.log"; echo $?)" "E: --slow-log reports the request first"
m8_wait_for 10 sh -c "\"$CURL\" -s http://127.0.0.1:$SE/status | grep -q '\"idle\":2'"
t_ok $? "E: the pool is back to two ready workers"
status_get "$SE"
t_is "$(status_field "j['pool']['restarts']['request_timeout']")" 1 "E: status counts one request-timeout restart"
m8_http GET "${URL[E]}/api/hello/after"
t_is "$H_STATUS" 200 "E: the next request succeeds"
kill -TERM "${DPID[E]}"
m8_wait_exit "${DPID[E]}" 10

# ------------------------------------------------------------- F: crash loop breaker
touch "$T_DIR/F.crash"
m8d_start F "$T_DIR/app.env" M8T_CRASH_FILE="$T_DIR/F.crash" -- --workers 2
m8d_wait_log F 'crash loop' 20
t_ok $? "F: workers that die at once trigger the crash-loop message"
sleep 2
n1=$(grep -c 'exited with status 3' "$T_DIR/F.log")
sleep 2
n2=$(grep -c 'exited with status 3' "$T_DIR/F.log")
t_ok "$([ $((n2 - n1)) -le 3 ]; echo $?)" "F: in a crash loop respawns slow down (no spinning)" "$((n2 - n1)) exits in 2 s"
rm -f "$T_DIR/F.crash"
m8d_wait_log F '"msg":"ready: 2 workers' 40
t_ok $? "F: once the cause is gone the pool becomes ready"
m8_http GET "${URL[F]}/api/hello/recovered"
t_is "$H_STATUS" 200 "F: and serves"
kill -TERM "${DPID[F]}"
m8_wait_exit "${DPID[F]}" 10
t_is "$M8_RC" 0 "F: SIGTERM stops it with 0"

# ------------------------------------------------------------- J: one JWKS fetch for all workers
PY=/usr/bin/python3
TOK=$top_builddir/src/fcgim8-token
EX=$(m8_svc_bin example)
if "$PY" -c 'import jwt, cryptography' 2>/dev/null && command -v openssl >/dev/null; then
    JD=$T_DIR/jwks
    mkdir -p "$JD"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/k1.pem" 2>/dev/null
    openssl pkey -in "$T_DIR/k1.pem" -pubout -out "$T_DIR/k1.pub"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/k2.pem" 2>/dev/null
    openssl pkey -in "$T_DIR/k2.pem" -pubout -out "$T_DIR/k2.pub"
    "$TOK" jwks --kid k1 "$T_DIR/k1.pub" >"$JD/jwks.json" || t_bail "fcgim8-token jwks failed"
    "$PY" "$top_srcdir/tests/tools/jwks_server.py" serve "$JD" --port 0 </dev/null >"$T_DIR/jwks.out" 2>&1 &
    M8_PIDS+=("$!")
    m8_wait_for 10 test -s "$JD/port" || t_bail "the JWKS server did not start"
    m8_write_env "$T_DIR/J.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
        JWKS_URI="http://127.0.0.1:$(cat "$JD/port")/jwks.json" TOKEN_ISSUER=https://auth.example.com \
        TOKEN_AUDIENCE=item-service
    # pyjwt KEYFILE KID: an access token minted by PyJWT
    pyjwt() {
        "$PY" - "$@" <<'PYEOF'
import sys, time, uuid, jwt
keyfile, kid = sys.argv[1:]
now = int(time.time())
c = {"sub": str(uuid.uuid4()), "type": "access", "email": "pool@example.com", "is_active": True,
     "email_verified": True, "is_superuser": False, "role": "user", "exp": now + 600,
     "iat": now, "nbf": now, "jti": str(uuid.uuid4()), "iss": "https://auth.example.com",
     "aud": "item-service"}
print(jwt.encode(c, open(keyfile, "rb").read(), algorithm="RS256", headers={"kid": kid}))
PYEOF
    }
    M8D_SVC=$EX m8d_start J "$T_DIR/J.env" -- --workers 3 --threads 1
    m8d_wait_log J '"msg":"ready: 3 workers' 15 || m8d_diag J
    T1=$(pyjwt "$T_DIR/k1.pem" k1)
    fails=0
    for i in $(seq 1 30); do
        code=$("$CURL" -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T1" "${URL[J]}/api/items/") || code=000
        [ "$code" = 200 ] || fails=$((fails + 1))
    done
    t_is "$fails" 0 "J: 30 requests with a JWKS-verified token over 3 workers all answer 200"
    t_is "$(cat "$JD/hits")" 1 "J: the supervisor fetched the JWKS once for all three workers"
    t_ok "$(grep -q 'JWKS fetched from .* for all workers: 1 keys' "$T_DIR/J.log"; echo $?)" "J: the sidecar logs its fetch"
    hits0=$(cat "$JD/hits")
    "$TOK" jwks --kid k1 "$T_DIR/k1.pub" --kid k2 "$T_DIR/k2.pub" >"$JD/jwks.new" && mv "$JD/jwks.new" "$JD/jwks.json"
    T2=$(pyjwt "$T_DIR/k2.pem" k2)
    k2_ok() { [ "$("$CURL" -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T2" "${URL[J]}/api/items/")" = 200 ]; }
    m8_wait_for 15 k2_ok
    t_ok $? "J: rotation: a token under a new kid is accepted by the pool without a restart"
    t_ok "$([ $(( $(cat "$JD/hits") - hits0 )) -le 2 ]; echo $?)" "J: rotation cost at most two fetches for the whole pool" \
        "$(( $(cat "$JD/hits") - hits0 )) fetches"
    fails=0
    for i in $(seq 1 9); do
        code=$("$CURL" -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T2" "${URL[J]}/api/items/") || code=000
        [ "$code" = 200 ] || fails=$((fails + 1))
    done
    t_is "$fails" 0 "J: every worker then accepts the new kid"
    hits1=$(cat "$JD/hits")
    for i in $(seq 1 20); do
        "$CURL" -s -o /dev/null -H "Authorization: Bearer $(pyjwt "$T_DIR/k2.pem" "bogus-$i")" "${URL[J]}/api/items/"
    done
    t_ok "$([ $(( $(cat "$JD/hits") - hits1 )) -le 1 ]; echo $?)" "J: 20 bogus kids over 3 workers cause at most one fetch" \
        "$(( $(cat "$JD/hits") - hits1 )) fetches"
    touch "$JD/down"
    m8_http GET "${URL[J]}/api/items/" -H "Authorization: Bearer $T1"
    t_is "$H_STATUS" 200 "J: with the issuer down the pool keeps the last good keys"
    kill -TERM "${DPID[J]}"
    m8_wait_exit "${DPID[J]}" 10
    t_is "$M8_RC" 0 "J: stops with 0"
else
    for i in 1 2 3 4 5 6 7 8 9; do t_skip "J: JWKS through the pool" "python3-jwt or openssl missing"; done
fi

# ------------------------------------------------------------- usage
"$D" --workers 0 -- "$FIX" >/dev/null 2>"$T_DIR/u.err"
t_is "$?" 64 "usage: --workers 0 is refused with 64"
"$D" --workers 2 >/dev/null 2>"$T_DIR/u.err"
t_is "$?" 64 "usage: no service is refused with 64"
t_like "$(cat "$T_DIR/u.err")" 'no service given' "usage: the error says what is missing"
t_like "$("$D" --version)" '^fcgim8d \(fcgi-m8 ' "usage: --version"

t_done
