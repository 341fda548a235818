#!/bin/bash
# t_deploy.sh - fcgim8d deployed the ways fcgim8d(8) describes, each behind a
# real nginx (contrib/nginx site files) serving tests/unit/svc_fixture:
#   S  systemd socket activation: contrib/systemd units rendered, their
#      ExecStart run under systemd-socket-activate (LISTEN_FDS), ExecReload
#   P  spawn-fcgi passing the socket on fd 0
#   T  nginx over TCP with keepalive; the listen queue gauges
#   W  as root: --socket-owner/--socket-group for an nginx running as
#      www-data, the socket-permissions warning (doc/design.md#socket-permissions),
#      --user/--group dropping privileges
#   L  --daemon, --pid-file, --log-file, SIGUSR1 log reopening
#   X  a socket directory others may write is refused; the pid file never
#      follows a planted symlink; inherited descriptors are closed
#   Y  --pm dynamic growing under load and shrinking after it
#   Z  refusals: usage errors, a bad --socket-owner, a socket or port in use
#      by a live fcgim8d; a stale socket file is removed
# (t_fcgim8d.sh covers boot order, reload under load, kills, recycling,
# timeouts and the crash-loop breaker.)  Ports come from 18800-18899.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
m8_init t_deploy

FIX=$(m8_svc_bin fixture)
D=$top_builddir/src/fcgim8d
[ -x "$FIX" ] && [ -x "$D" ] || t_bail "programs not built ($FIX, $D)"
SSA=$(m8_find_prog systemd-socket-activate "${SYSTEMD_SOCKET_ACTIVATE:-}") || SSA=
SYSTEMD_ANALYZE=$(m8_find_prog systemd-analyze "") || SYSTEMD_ANALYZE=
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || t_bail "python3 is needed to read /status"
PLO=18800 PHI=18899
NG=$T_DIR/ngx
SYSD=$top_srcdir/contrib/systemd

# dstart NAME [VAR=VALUE...] -- CMD...: CMD in the background in T_DIR with a
# clean environment; stdout to NAME.out, stderr to NAME.log.
declare -A DPID=()
dstart() {
    local name=$1
    shift
    (cd "$T_DIR" && m8_clean_exec "$@") </dev/null >"$T_DIR/$name.out" 2>"$T_DIR/$name.log" &
    DPID[$name]=$!
    M8_PIDS+=("$!")
}
log_has() { grep -q -- "$2" "$1"; }
wait_log() { m8_wait_for "${3:-15}" log_has "$T_DIR/$1.log" "$2"; }
diag_log() { t_diag "--- $1 log (last 20 lines)" "$(tail -n 20 "$T_DIR/$1.log" 2>/dev/null)"; }
status_get() { S_BODY=$("$CURL" -s -m 5 "http://127.0.0.1:$1/status"); }
status_field() { # PYTHON-EXPRESSION on j (the /status document of the last status_get)
    "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$S_BODY" 2>/dev/null
}
st_total() { # PORT: workers of the pool but the retiring ones (fast, no python): a retiring
    # worker drains its kept connections until nginx closes them (fcgim8d(8))
    local b t r
    b=$("$CURL" -s -m 2 "http://127.0.0.1:$1/status") || return 0
    t=$(sed -n 's/.*"workers":{"total":\([0-9]*\).*/\1/p' <<<"$b")
    r=$(sed -n 's/.*"workers":{[^}]*"retiring":\([0-9]*\).*/\1/p' <<<"$b")
    [ -z "$t" ] || echo $(( t - ${r:-0} ))
}
st_total_le() { local n; n=$(st_total "$1"); [ -n "$n" ] && [ "$n" -le "$2" ]; }
worker_pids() { # PORT: pids of the ready workers
    status_get "$1"
    status_field "' '.join(str(w['pid']) for w in j['workers'] if w['state']=='ready')"
}
proc_ids() { # PID Uid|Gid: the real, effective, saved and fs ids
    awk -v k="$2:" '$1 == k { print $2, $3, $4, $5 }' "/proc/$1/status" 2>/dev/null
}
unit_val() { sed -n "s/^$2=//p" "$1" | head -n 1; } # FILE KEY
gen_serving_gone() { # PORT GEN: no worker of generation GEN serves (retiring ones drain)
    status_get "$1"
    [ "$(status_field "sum(1 for w in j['workers'] if w['generation'] == $2 and w['state'] != 'retiring')")" = 0 ]
}
gen_gone() { # PORT GEN: no worker of generation GEN is left, none retiring
    local b
    b=$("$CURL" -s -m 2 "http://127.0.0.1:$1/status") || return 1
    [[ $b == *'"retiring":0'* ]] && [[ $b != *"\"generation\":$2,"* ]]
}
NOBODY4="65534 65534 65534 65534" # real, effective, saved, fs ids of nobody:nogroup
stop_wait() { # NAME: SIGTERM, wait (our child) -> M8_RC
    kill -TERM "${DPID[$1]}" 2>/dev/null
    m8_wait_exit "${DPID[$1]}" 15 || { kill -KILL "${DPID[$1]}"; M8_RC=timeout; }
}
port() { m8_pick_port "$@" || t_bail "no free port in $*"; }

m8_write_env "$T_DIR/app.env" METRICS_ENABLED=true
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
declare -A URL=()
for s in S P Y L Z; do
    port $PLO $((PLO + 29))
    URL[$s]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "$s" fcgi-m8-unix.conf NAME="dep_$s" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/$s.sock" || t_bail "cannot render the unix site"
done
port $((PLO + 30)) $PHI
TP=$M8_PORT # fcgim8d's TCP listen port
port $PLO $((PLO + 29))
URL[T]=http://127.0.0.1:$M8_PORT
m8_nginx_site "$NG" T fcgi-m8-tcp.conf NAME=dep_T LISTEN="127.0.0.1:$M8_PORT" \
    SERVER_NAME=localhost BACKEND="127.0.0.1:$TP" || t_bail "cannot render the TCP site"
m8_nginx_start "$NG" || t_bail "nginx does not start"

# ------------------------------------------------------------- S: systemd socket activation
port $((PLO + 30)) $PHI
SS=$M8_PORT
m8_render "$SYSD/fcgim8d.socket" "$T_DIR/dep.socket" NAME=dep USER="$(id -un)" \
    SOCKET_GROUP="$(id -gn)"
t_ok $? "S: contrib/systemd/fcgim8d.socket renders (no placeholder left)"
m8_render "$SYSD/fcgim8d.service" "$T_DIR/dep.service" NAME=dep USER="$(id -un)" \
    GROUP="$(id -gn)" FCGIM8D="$D" SERVICE="$FIX" ENV_FILE="$T_DIR/app.env" WORKERS=2 THREADS=2 \
    STATUS_LISTEN="127.0.0.1:$SS"
t_ok $? "S: contrib/systemd/fcgim8d.service renders (no placeholder left)"
t_is "$(unit_val "$T_DIR/dep.socket" ListenStream)" /run/fcgim8/dep.sock \
    "S: the socket unit listens on /run/fcgim8/NAME.sock"
t_is "$(unit_val "$T_DIR/dep.socket" SocketMode)" 0660 "S: the socket unit sets mode 0660"
t_is "$(unit_val "$T_DIR/dep.service" KillMode)" mixed \
    "S: the service unit lets fcgim8d drain its workers (KillMode=mixed)"
t_is "$(unit_val "$T_DIR/dep.service" Restart)" on-failure "S: the service unit restarts on failure"
if [ -n "$SYSTEMD_ANALYZE" ]; then
    (cd "$T_DIR" && "$SYSTEMD_ANALYZE" verify --man=no ./dep.socket ./dep.service) \
        >"$T_DIR/verify.out" 2>&1
    t_ok $? "S: systemd-analyze verify accepts both units" "$(cat "$T_DIR/verify.out")"
else
    t_skip "S: systemd-analyze verify accepts both units" "systemd-analyze is not installed"
fi
if [ -n "$SSA" ]; then
    read -r -a cmd <<<"$(unit_val "$T_DIR/dep.service" ExecStart)"
    # /run/fcgim8/dep.sock stands at $T_DIR/S.sock: no systemd in here.
    dstart S -- "$SSA" -l "$T_DIR/S.sock" -- "${cmd[@]}"
    m8_wait_sock "$T_DIR/S.sock" 10 || { diag_log S; t_bail "systemd-socket-activate does not listen"; }
    t_ok "$(! log_has "$T_DIR/S.log" 'fcgim8d .* starting'; echo $?)" \
        "S: fcgim8d is not started before the first connection"
    # /ping: a built-in route, answered while the workers' startup hooks run
    # (the service's own routes answer 503 + Retry-After until then).
    m8_http GET "${URL[S]}/ping"
    t_is "$H_STATUS" 200 "S: the first request through nginx starts fcgim8d and gets its answer"
    wait_log S '"msg":"ready: 2 workers' 10 || diag_log S
    t_ok $? "S: the pool gets ready"
    m8_http GET "${URL[S]}/api/hello/activated"
    t_is "$H_STATUS" 200 "S: the service's routes answer once it is ready"
    t_ok "$(log_has "$T_DIR/S.log" 'listening on the socket passed by systemd (fd 3)'; echo $?)" \
        "S: fcgim8d logs that it serves the socket from LISTEN_FDS"
    status_get "$SS"
    t_is "$(status_field "j['pool']['supervisor_pid']")" "${DPID[S]}" \
        "S: the supervisor is the process systemd started (LISTEN_PID matched)"
    gen1=$(worker_pids "$SS")
    reload=$(unit_val "$T_DIR/dep.service" ExecReload)
    read -r -a rcmd <<<"${reload//\$MAINPID/${DPID[S]}}"
    "${rcmd[@]}"
    t_ok $? "S: ExecReload runs: ${reload}"
    wait_log S 'reload: generation 2 ready' 15 || diag_log S
    t_ok $? "S: SIGHUP reloads on the socket systemd passed"
    m8_wait_for 10 gen_serving_gone "$SS" 1
    status_get "$SS"
    t_is "$(status_field "sorted(set(w['generation'] for w in j['workers'] if w['state'] != 'retiring'))")" "[2]" \
        "S: generation 2 replaced the workers"
    gen2=$(worker_pids "$SS")
    both=$(comm -12 <(tr ' ' '\n' <<<"$gen1" | sort) <(tr ' ' '\n' <<<"$gen2" | sort))
    t_ok "$([ -n "$gen1" ] && [ -z "$both" ]; echo $?)" \
        "S: none of the first workers serves after the reload"
    m8_http GET "${URL[S]}/api/hello/reloaded"
    t_is "$H_STATUS" 200 "S: nginx is served after the reload"
    stop_wait S
    t_is "$M8_RC" 0 "S: SIGTERM (KillMode=mixed: to fcgim8d alone) stops it with 0"
    t_ok "$([ -S "$T_DIR/S.sock" ]; echo $?)" "S: the socket systemd owns is left in place"
else
    t_skip "S: socket activation" "systemd-socket-activate is not installed"
fi

# ------------------------------------------------------------- P: spawn-fcgi
if [ -n "$SPAWN_FCGI" ]; then
    port $((PLO + 30)) $PHI
    SP=$M8_PORT
    dstart P -- "$SPAWN_FCGI" -n -s "$T_DIR/P.sock" -M 0660 -- "$D" --env-file "$T_DIR/app.env" \
        --workers 2 --threads 2 --status-listen "127.0.0.1:$SP" -- "$FIX"
    wait_log P '"msg":"ready: 2 workers' 15 || diag_log P
    t_ok $? "P: fcgim8d under spawn-fcgi gets ready"
    t_ok "$(log_has "$T_DIR/P.log" 'listening on the inherited socket (fd 0)'; echo $?)" \
        "P: fcgim8d logs that it serves the socket spawn-fcgi passed on fd 0"
    m8_http GET "${URL[P]}/api/pid"
    t_is "$H_STATUS" 200 "P: nginx -> spawn-fcgi socket -> fcgim8d worker answers"
    wpid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' <<<"$H_BODY")
    t_like " $(worker_pids "$SP") " " $wpid " "P: the answer came from one of fcgim8d's workers"
    status_get "$SP"
    t_is "$(status_field "j['pool']['supervisor_pid']")" "${DPID[P]}" \
        "P: spawn-fcgi -n execs fcgim8d in place (the supervisor keeps its pid)"
    stop_wait P
    t_is "$M8_RC" 0 "P: SIGTERM stops it with 0"
else
    t_skip "P: spawn-fcgi" "spawn-fcgi is not installed"
fi

# ------------------------------------------------------------- T: TCP with keepalive
port $((PLO + 30)) $PHI
ST=$M8_PORT
dstart T -- "$D" --listen "127.0.0.1:$TP" --env-file "$T_DIR/app.env" --workers 1 --threads 1 \
    --status-listen "127.0.0.1:$ST" -- "$FIX"
wait_log T '"msg":"ready: 1 workers' 15 || diag_log T
t_ok $? "T: fcgim8d on 127.0.0.1:PORT gets ready"
tw_list() { ss -Htn state time-wait "( sport = :$TP or dport = :$TP )" 2>/dev/null | sort; }
tw0=$(tw_list)
fails=0
for i in $(seq 1 12); do
    code=$("$CURL" -s -o /dev/null -w '%{http_code}' "${URL[T]}/api/hello/k$i") || code=000
    [ "$code" = 200 ] || fails=$((fails + 1))
done
t_is "$fails" 0 "T: 12 requests through nginx over TCP answer 200"
if command -v ss >/dev/null 2>&1; then
    est=$(ss -Htn state established "( dport = :$TP )" | wc -l)
    # TIME-WAIT left by an earlier run on the same port does not count
    tw=$(comm -13 <(printf '%s\n' "$tw0") <(tw_list) | grep -c .)
    t_is "$est/$tw" 1/0 \
        "T: nginx keeps one connection alive to fcgim8d for all of them (none closed: no TIME-WAIT)"
else
    t_skip "T: keepalive connection reuse" "ss is not installed"
fi
cpids=()
for i in 1 2 3; do
    "$CURL" -s -o /dev/null -w '%{http_code}\n' -m 15 "${URL[T]}/api/sleep/1500" >>"$T_DIR/T.codes" &
    cpids+=("$!")
done
m8_wait_for 4 sh -c "\"$CURL\" -s http://127.0.0.1:$ST/status | grep -q '\"listen_queue\":[1-9]'"
t_ok $? "T: /status shows connections waiting in the listen queue while the only thread is busy"
wait "${cpids[@]}"
t_is "$(sort -u "$T_DIR/T.codes" | tr '\n' ' ')" "200 " "T: the queued requests are served in turn (200)"
status_get "$ST"
t_like "$(status_field "j['pool']['listen_queue_max']")" '^[2-9]$' \
    "T: /status keeps the longest listen queue seen (listen_queue_max >= 2)"
m8_http GET "http://127.0.0.1:$ST/metrics"
t_like "$H_BODY" $'\napi_fcgim8_listen_queue_max [2-9]' "T: /metrics carries the listen queue gauge"
stop_wait T
t_is "$M8_RC" 0 "T: SIGTERM stops it with 0"

# ------------------------------------------------------------- W: root: socket ownership, privileges
if [ "$(id -u)" = 0 ] && id -u www-data >/dev/null 2>&1 && id -u nobody >/dev/null 2>&1 &&
    getent group nogroup >/dev/null; then
    chmod 711 "$T_DIR" # nginx's www-data workers must reach the sockets
    NGW=$T_DIR/ngw
    mkdir -p "$NGW/sites" "$NGW/snippets" "$NGW/tmp" "$T_DIR/pub"
    cp "$NG/fastcgi_params" "$NGW/" && cp "$NG/snippets/fcgi-m8-fastcgi.conf" "$NGW/snippets/"
    m8_render "$M8_CONTRIB_NGINX/standalone.conf" "$NGW/nginx.conf" PREFIX="$NGW" USER=www-data ||
        t_bail "cannot render the www-data nginx"
    for s in W1 W2; do
        port $PLO $((PLO + 29))
        URL[$s]=http://127.0.0.1:$M8_PORT
        m8_nginx_site "$NGW" "$s" fcgi-m8-unix.conf NAME="dep_$s" LISTEN="127.0.0.1:$M8_PORT" \
            SERVER_NAME=localhost SOCKET="$T_DIR/$s.sock" || t_bail "cannot render the site"
    done
    m8_nginx_start "$NGW" || t_bail "nginx (www-data) does not start"
    # the unprivileged workers read the settings themselves
    chmod 755 "$T_DIR/pub" && cp "$T_DIR/app.env" "$T_DIR/pub/app.env" && chmod 644 "$T_DIR/pub/app.env"
    port $((PLO + 30)) $PHI
    SW=$M8_PORT
    dstart W1 -- "$D" --listen "unix:$T_DIR/W1.sock" --socket-owner nobody --socket-group www-data \
        --user nobody --group nogroup --env-file "$T_DIR/pub/app.env" --workers 2 --threads 1 \
        --status-listen "127.0.0.1:$SW" -- "$FIX"
    dstart W2 -- "$D" --listen "unix:$T_DIR/W2.sock" --env-file "$T_DIR/pub/app.env" --workers 1 \
        --threads 1 -- "$FIX"
    wait_log W1 '"msg":"ready: 2 workers' 15 || diag_log W1
    t_ok $? "W: fcgim8d --user nobody --group nogroup gets ready"
    wait_log W2 '"msg":"ready: 1 workers' 15 || diag_log W2
    t_is "$(stat -c '%U:%G %a' "$T_DIR/W1.sock")" "nobody:www-data 660" \
        "W: --socket-owner nobody --socket-group www-data: the socket is nobody:www-data 0660"
    m8_http GET "${URL[W1]}/api/hello/www-data"
    t_is "$H_STATUS" 200 "W: nginx running as www-data connects through the socket group"
    t_ok "$(! log_has "$T_DIR/W1.log" 'owned by root:root'; echo $?)" \
        "W: no ownership warning when --socket-group is given"
    t_is "$(stat -c '%U:%G %a' "$T_DIR/W2.sock")" "root:root 660" \
        "W: without --socket-owner/--socket-group a root fcgim8d's socket is root:root 0660"
    t_ok "$(grep 'owned by root:root' "$T_DIR/W2.log" | grep -q 'add --socket-group www-data'; echo $?)" \
        "W: ... and fcgim8d warns with the fix (doc/design.md#socket-permissions)"
    m8_http GET "${URL[W2]}/api/hello/denied"
    t_is "$H_STATUS" 502 "W: ... which is right: nginx as www-data cannot connect (502)"
    t_ok "$(grep -q 'W2.sock failed (13: Permission denied)' "$NGW/error.log"; echo $?)" \
        "W: ... nginx logs connect() Permission denied"
    dpid=${DPID[W1]}
    t_is "$(proc_ids "$dpid" Uid)/$(proc_ids "$dpid" Gid)" "$NOBODY4/$NOBODY4" \
        "W: the supervisor runs as nobody:nogroup after binding (real, effective, saved)"
    t_is "$(awk '$1 == "CapEff:" { print $2 }' "/proc/$dpid/status")" 0000000000000000 \
        "W: the supervisor keeps no capability"
    wp=$(worker_pids "$SW")
    ids=
    for p in $wp; do ids="$ids$(proc_ids "$p" Uid)/$(proc_ids "$p" Gid);"; done
    t_is "$ids" "$NOBODY4/$NOBODY4;$NOBODY4/$NOBODY4;" \
        "W: both workers run as nobody:nogroup"
    stop_wait W1
    t_is "$M8_RC" 0 "W: the unprivileged supervisor stops with 0"
    if [ -S "$T_DIR/W1.sock" ]; then
        # nobody may not remove a socket in a root directory: the next start must.
        dstart W1b -- "$D" --listen "unix:$T_DIR/W1.sock" --socket-group www-data --user nobody \
            --group nogroup --env-file "$T_DIR/pub/app.env" --workers 1 --threads 1 -- "$FIX"
        wait_log W1b '"msg":"ready: 1 workers' 15 || diag_log W1b
        t_ok $? "W: the next start removes the socket its unprivileged predecessor could not"
        stop_wait W1b
    else
        t_ok 0 "W: the unprivileged supervisor removed its socket"
    fi
    stop_wait W2
    m8_nginx_stop "$NGW"
else
    t_skip "W: --socket-group, the socket-permissions warning, --user/--group" "needs root, www-data, nobody, nogroup"
fi

# ------------------------------------------------------------- L: --daemon, --pid-file, --log-file
mkdir -p "$T_DIR/L"
(cd "$T_DIR" && m8_clean_exec -- "$D" --daemon --listen "unix:$T_DIR/L.sock" \
    --pid-file "$T_DIR/L/fcgim8d.pid" --log-file "$T_DIR/L/fcgim8d.log" \
    --env-file "$T_DIR/app.env" --workers 2 --threads 1 -- "$FIX") \
    </dev/null >"$T_DIR/L.out" 2>"$T_DIR/L.err"
rc=$?
lpid=$(cat "$T_DIR/L/fcgim8d.pid" 2>/dev/null)
[ -n "$lpid" ] && M8_PIDS+=("$lpid")
t_is "$rc" 0 "L: fcgim8d --daemon returns 0"
t_ok "$(log_has "$T_DIR/L/fcgim8d.log" '"msg":"ready: 2 workers'; echo $?)" \
    "L: ... once the pool is ready (the log says so before the command returns)"
t_ok "$([ -n "$lpid" ] && m8_alive "$lpid" && tr '\0' ' ' <"/proc/$lpid/cmdline" | grep -q -- '--daemon'; echo $?)" \
    "L: the pid file holds the live daemon's pid" "pid file: '$lpid'"
t_is "$(ps -o sid= -p "$lpid" 2>/dev/null | tr -d ' ')" "$lpid" "L: the daemon leads its own session"
t_is "$(cat "$T_DIR/L.err")" "" "L: nothing is written to the terminal (stderr goes to --log-file)"
m8_http GET "${URL[L]}/api/hello/daemon"
t_is "$H_STATUS" 200 "L: the daemon serves nginx at once"
mv "$T_DIR/L/fcgim8d.log" "$T_DIR/L/fcgim8d.log.1"
kill -USR1 "$lpid"
m8_wait_for 5 log_has "$T_DIR/L/fcgim8d.log" 'SIGUSR1: log reopened'
t_ok $? "L: after mv + SIGUSR1 a new log file is opened"
n1=$(wc -l <"$T_DIR/L/fcgim8d.log.1")
kill -HUP "$lpid"
m8_wait_for 15 log_has "$T_DIR/L/fcgim8d.log" 'reload: generation 2 ready'
t_ok $? "L: new supervisor lines go to the new file"
t_like "$(grep -c '"msg":"serving FastCGI' "$T_DIR/L/fcgim8d.log")" '^[2-9]$' \
    "L: the new workers' lines go to the new file too"
t_is "$(wc -l <"$T_DIR/L/fcgim8d.log.1")" "$n1" "L: nothing more is written to the rotated file"
t_is "$(stat -c %a "$T_DIR/L/fcgim8d.log")" 640 "L: the log file is created 0640"
kill -TERM "$lpid"
m8_wait_for 15 m8_exited "$lpid"
t_ok $? "L: SIGTERM stops the daemon"
t_ok "$([ ! -e "$T_DIR/L/fcgim8d.pid" ] && [ ! -e "$T_DIR/L.sock" ]; echo $?)" \
    "L: ... and it removes its pid file and socket"
t_ok "$(log_has "$T_DIR/L/fcgim8d.log" '"msg":"stopped"'; echo $?)" "L: ... and logs that it stopped"
m8_write_env "$T_DIR/bad.env" -SERVICE_VERSION
(cd "$T_DIR" && m8_clean_exec -- "$D" --daemon --listen "unix:$T_DIR/L.sock" \
    --pid-file "$T_DIR/L/bad.pid" --log-file "$T_DIR/L/bad.log" --env-file "$T_DIR/bad.env" \
    -- "$FIX") </dev/null >/dev/null 2>&1
t_is "$?" 78 "L: --daemon returns the boot failure's status (78: invalid settings)"
t_ok "$([ ! -e "$T_DIR/L/bad.pid" ] && [ ! -e "$T_DIR/L.sock" ] &&
    log_has "$T_DIR/L/bad.log" SERVICE_VERSION; echo $?)" \
    "L: ... logs why in --log-file and leaves no pid file or socket"

# ------------------------------------------------------------- X: socket directory, pid file, descriptors
mkdir -p "$T_DIR/X/open" "$T_DIR/X/run"
chmod 1777 "$T_DIR/X/open" # like /tmp: anyone may plant a name there
dstart X1 -- "$D" --listen "unix:$T_DIR/X/open/x.sock" --env-file "$T_DIR/app.env" --workers 1 \
    -- "$FIX"
m8_wait_exit "${DPID[X1]}" 15
t_is "$M8_RC" 70 "X: a socket directory writable by other users (1777) is refused with 70"
t_ok "$(log_has "$T_DIR/X1.log" 'X/open (mode 1777) is writable by other users'; echo $?)" \
    "X: ... with a line naming the directory and its mode" "$(tail -n 3 "$T_DIR/X1.log")"
t_ok "$([ ! -e "$T_DIR/X/open/x.sock" ]; echo $?)" "X: ... and no socket is created there"
if [ "$(id -u)" = 0 ] && id -u nobody >/dev/null 2>&1; then
    mkdir -p "$T_DIR/X/nobody" && chown nobody "$T_DIR/X/nobody" && chmod 755 "$T_DIR/X/nobody"
    dstart X2 -- "$D" --listen "unix:$T_DIR/X/nobody/x.sock" --env-file "$T_DIR/app.env" \
        --workers 1 -- "$FIX"
    m8_wait_exit "${DPID[X2]}" 15
    t_is "$M8_RC" 70 "X: root refuses a socket directory owned by another user (nobody)"
    t_ok "$(log_has "$T_DIR/X2.log" 'neither root nor the socket'"'"'s owner'; echo $?)" \
        "X: ... saying whose it is" "$(tail -n 3 "$T_DIR/X2.log")"
else
    t_skip "X: root refuses a socket directory owned by another user" "needs root and nobody"
fi

# A symlink planted under the old temporary name of the pid file, and one
# at the pid file itself: neither target is written, both are replaced or
# left alone (mkstemp + rename).  Descriptor 7, open when fcgim8d starts,
# reaches neither the supervisor's table nor a worker's.
echo precious >"$T_DIR/X/victim1"
echo precious >"$T_DIR/X/victim2"
ln -s "$T_DIR/X/victim1" "$T_DIR/X/run/x.pid.tmp"
ln -s "$T_DIR/X/victim2" "$T_DIR/X/run/x.pid"
: >"$T_DIR/X/inherited"
exec 7>>"$T_DIR/X/inherited"
dstart X3 -- "$D" --listen "unix:$T_DIR/X/run/x.sock" --pid-file "$T_DIR/X/run/x.pid" \
    --env-file "$T_DIR/app.env" --workers 2 --threads 1 --socket-mode 0640 -- "$FIX"
exec 7>&-
wait_log X3 '"msg":"ready: 2 workers' 15 || diag_log X3
t_ok $? "X: fcgim8d starts with symlinks planted for its pid file"
t_is "$(cat "$T_DIR/X/victim1")" precious "X: the symlink at <pidfile>.tmp is not followed"
t_is "$(cat "$T_DIR/X/victim2")" precious "X: the symlink at <pidfile> is not followed"
t_ok "$([ -f "$T_DIR/X/run/x.pid" ] && [ ! -L "$T_DIR/X/run/x.pid" ] &&
    [ "$(cat "$T_DIR/X/run/x.pid")" = "${DPID[X3]}" ]; echo $?)" \
    "X: the pid file is a regular file holding the supervisor's pid" "$(ls -l "$T_DIR/X/run")"
t_is "$(stat -c %a "$T_DIR/X/run/x.pid")" 644 "X: the pid file is 0644"
t_is "$(find "$T_DIR/X/run" -name 'x.pid.?*' ! -name x.pid.tmp | wc -l)" 0 \
    "X: no temporary pid file is left behind"
t_is "$(stat -c %a "$T_DIR/X/run/x.sock")" 640 "X: --socket-mode 0640 gives a 0640 socket (set at bind)"
holds_inherited() { # PID: one of its descriptors is the file opened as fd 7
    local f
    for f in /proc/"$1"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "$T_DIR/X/inherited" ] && return 0
    done
    return 1
}
xw=$(pgrep -P "${DPID[X3]}" | tr '\n' ' ')
t_ok "$([ -n "$xw" ]; echo $?)" "X: the workers are found (children of the supervisor)"
t_ok "$(! holds_inherited "${DPID[X3]}"; echo $?)" \
    "X: a descriptor inherited by fcgim8d (exec 7>file) is closed at its start" \
    "$(ls -l /proc/"${DPID[X3]}"/fd 2>&1)"
bad=
for p in $xw; do holds_inherited "$p" && bad="$bad $p"; done
t_is "$bad" "" "X: ... and no worker holds it"
stop_wait X3
t_is "$M8_RC" 0 "X: SIGTERM stops it with 0"
t_ok "$([ ! -e "$T_DIR/X/run/x.pid" ] && [ -L "$T_DIR/X/run/x.pid.tmp" ] &&
    [ "$(cat "$T_DIR/X/victim1" "$T_DIR/X/victim2" | tr '\n' ' ')" = "precious precious " ]; echo $?)" \
    "X: ... removes its own pid file, and leaves the planted symlink and both targets alone"

# ------------------------------------------------------------- Y: dynamic pool
port $((PLO + 30)) $PHI
SY=$M8_PORT
dstart Y -- "$D" --listen "unix:$T_DIR/Y.sock" --env-file "$T_DIR/app.env" --pm dynamic --workers 1 \
    --min-spare 1 --max-spare 2 --max-workers 4 --threads 1 --status-listen "127.0.0.1:$SY" -- "$FIX"
wait_log Y '"msg":"ready: 1 workers' 15 || diag_log Y
t_ok $? "Y: a dynamic pool starts with --workers 1"
: >"$T_DIR/Y.codes"
cpids=()
for i in 1 2 3 4 5 6; do
    "$CURL" -s -o /dev/null -w '%{http_code}\n' -m 20 "${URL[Y]}/api/sleep/1500" >>"$T_DIR/Y.codes" &
    cpids+=("$!")
done
maxt=0
while :; do
    n=$(st_total "$SY")
    [ -n "$n" ] && [ "$n" -gt "$maxt" ] && maxt=$n
    running=0
    for p in "${cpids[@]}"; do m8_alive "$p" && running=1; done
    [ $running = 0 ] && break
    sleep 0.2
done
wait "${cpids[@]}"
t_is "$(sort -u "$T_DIR/Y.codes" | tr '\n' ' ')" "200 " "Y: six slow requests in parallel all answer 200"
t_ok "$([ "$maxt" -gt 1 ]; echo $?)" "Y: under load the pool grows past --workers (to $maxt)"
t_ok "$([ "$maxt" -le 4 ]; echo $?)" "Y: ... and never past --max-workers 4" "max total $maxt"
m8_wait_for 8 st_total_le "$SY" 2
t_ok $? "Y: after the load the pool shrinks back to --max-spare 2 idle workers" "total $(st_total "$SY")"
t_like "$(grep -o '"msg":"dynamic pool[^"]*' "$T_DIR/Y.log" | head -n 1)" 'idle > max-spare 2' \
    "Y: the supervisor logs why it retires a worker"
sleep 1.5
status_get "$SY"
t_is "$(status_field "(j['pool']['workers']['total'] - j['pool']['workers']['retiring'], j['pool']['workers']['idle'])")" "(2, 2)" \
    "Y: ... and stays there (2 idle: between --min-spare 1 and --max-spare 2)"
t_like "$(status_field "j['pool']['restarts']['scale_down']")" '^[1-9]' "Y: status counts scale_down retirements"
t_is "$(status_field "j['pool']['restarts']['crash']")" 0 "Y: no worker crashed"
m8_http GET "${URL[Y]}/api/hello/after-load"
t_is "$H_STATUS" 200 "Y: the shrunk pool serves"
stop_wait Y
# php-fpm's pm.start_servers: --workers above --min-spare is the starting size.
port $((PLO + 30)) $PHI
SY2=$M8_PORT
dstart Y2 -- "$D" --listen "unix:$T_DIR/Y2.sock" --env-file "$T_DIR/app.env" --pm dynamic \
    --workers 3 --min-spare 1 --max-spare 3 --max-workers 5 --threads 1 \
    --status-listen "127.0.0.1:$SY2" -- "$FIX"
wait_log Y2 '"msg":"ready: 3 workers' 15 || diag_log Y2
t_ok $? "Y: a dynamic pool with --workers 3 --min-spare 1 starts 3 workers and gets ready"
sleep 1.2
status_get "$SY2"
t_is "$(status_field "j['pool']['workers']['total']")" 3 "Y: ... and keeps 3 idle ones (<= --max-spare 3)"
kill -HUP "${DPID[Y2]}"
wait_log Y2 'reload: generation 2 ready' 15 || diag_log Y2
t_ok $? "Y: SIGHUP reloads a dynamic pool"
m8_wait_for 5 gen_gone "$SY2" 1
status_get "$SY2"
t_is "$(status_field "(sorted(set(w['generation'] for w in j['workers'])), j['pool']['workers']['total'])")" \
    "([2], 3)" "Y: ... into a new generation of --workers 3"
stop_wait Y2

# ------------------------------------------------------------- Z: refusals, stale socket
"$D" --bogus -- "$FIX" >/dev/null 2>"$T_DIR/z.err"
t_is "$?" 64 "Z: an unknown option exits 64"
t_like "$(cat "$T_DIR/z.err")" 'unknown option --bogus' "Z: ... naming the option"
"$D" --env-file >/dev/null 2>"$T_DIR/z.err"
t_is "$?" 64 "Z: an option without its value exits 64"
t_like "$(cat "$T_DIR/z.err")" '--env-file needs a value' "Z: ... saying the value is missing"
"$D" --socket-mode 0800 -- "$FIX" >/dev/null 2>"$T_DIR/z.err"
t_is "$?" 64 "Z: a bad --socket-mode exits 64"
dstart Zo -- "$D" --listen "unix:$T_DIR/Z.sock" --socket-owner no-such-user-m8 \
    --env-file "$T_DIR/app.env" --workers 1 -- "$FIX"
m8_wait_exit "${DPID[Zo]}" 15
t_is "$M8_RC" 70 "Z: an unknown --socket-owner stops the boot with 70"
t_ok "$(log_has "$T_DIR/Zo.log" '--socket-owner: no user \\"no-such-user-m8\\"'; echo $?)" \
    "Z: ... with a line naming the user"
t_ok "$([ ! -e "$T_DIR/Z.sock" ]; echo $?)" "Z: ... and removes the socket it had bound"

port $((PLO + 30)) $PHI
SZ=$M8_PORT
dstart Z1 -- "$D" --listen "unix:$T_DIR/Z.sock" --pid-file "$T_DIR/Z.pid" \
    --env-file "$T_DIR/app.env" --workers 1 --status-listen "127.0.0.1:$SZ" -- "$FIX"
wait_log Z1 '"msg":"ready: 1 workers' 15 || diag_log Z1
dstart Z2 -- "$D" --listen "unix:$T_DIR/Z.sock" --pid-file "$T_DIR/Z.pid" \
    --env-file "$T_DIR/app.env" --workers 1 -- "$FIX"
m8_wait_exit "${DPID[Z2]}" 15
t_is "$M8_RC" 70 "Z: a second fcgim8d on the socket of a live one is refused with 70"
t_ok "$(log_has "$T_DIR/Z2.log" "Z.sock is in use by a running process"; echo $?)" \
    "Z: ... with a clear line" "$(tail -n 3 "$T_DIR/Z2.log")"
t_is "$(cat "$T_DIR/Z.pid" 2>/dev/null)" "${DPID[Z1]}" \
    "Z: ... which leaves the live one's pid file alone"
m8_http GET "${URL[Z]}/api/hello/still-there"
t_is "$H_STATUS" 200 "Z: ... and the live one keeps its socket and serves"
dstart Z3 -- "$D" --listen "127.0.0.1:$SZ" --env-file "$T_DIR/app.env" --workers 1 -- "$FIX"
m8_wait_exit "${DPID[Z3]}" 15
t_is "$M8_RC" 70 "Z: --listen on a TCP port a live fcgim8d holds is refused with 70"
t_ok "$(log_has "$T_DIR/Z3.log" "cannot listen on 127.0.0.1:$SZ: Address already in use"; echo $?)" \
    "Z: ... saying the address is in use" "$(tail -n 3 "$T_DIR/Z3.log")"
stop_wait Z1
t_is "$M8_RC" 0 "Z: the live one stops with 0"

# a socket file nobody listens on (a killed process's)
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T_DIR/Z.sock"
unix_connects() { "$PY" -c 'import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$1"; }
t_ok "$([ -S "$T_DIR/Z.sock" ] && ! unix_connects "$T_DIR/Z.sock" 2>/dev/null; echo $?)" \
    "Z: a stale socket file is in place (connection refused)"
dstart Z4 -- "$D" --listen "unix:$T_DIR/Z.sock" --env-file "$T_DIR/app.env" --workers 1 -- "$FIX"
wait_log Z4 '"msg":"ready: 1 workers' 15 || diag_log Z4
t_ok $? "Z: fcgim8d replaces a stale socket file and starts"
m8_http GET "${URL[Z]}/api/hello/stale"
t_is "$H_STATUS" 200 "Z: ... and serves on it"
stop_wait Z4
t_is "$M8_RC" 0 "Z: SIGTERM stops it with 0"

t_done
