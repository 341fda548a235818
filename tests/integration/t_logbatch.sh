#!/bin/bash
# t_logbatch.sh - access lines written in batches (M8_LOG_FLUSH_MS,
# doc/design.md#logging): the example under fcgim8d behind nginx, 2 workers
# x 2 threads, 400 requests from 8 parallel clients.  With a long flush delay
# the lines come out only in full batches, and a graceful stop writes every
# held one: no line lost, none torn or mixed with another.  With a short
# delay the lines come out by themselves once the pool is idle, onto a file
# (fcgim8d writes up to 64 KiB at once) as onto a pipe (at most PIPE_BUF).
# Ports come from 18500-18549.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
[ -x /usr/bin/python3 ] || t_skip_all "python3 is not installed"
m8_init t_logbatch
D=$top_builddir/src/fcgim8d
[ -x "$D" ] || t_bail "fcgim8d not built"
NG=$T_DIR/ngx
N=400

m8_write_env "$T_DIR/app.env"
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
declare -A URL=()
for s in L S P; do
    m8_pick_port 18500 18549 || t_bail "no free port"
    URL[$s]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "$s" fcgi-m8-unix.conf NAME="lb_$s" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/$s.sock" || t_bail "cannot render the site"
done
m8_nginx_start "$NG" || t_bail "nginx did not start"

# JSON access lines of a log: "count distinct_ids bad_lines"
access_summary() {
    /usr/bin/python3 - "$1" <<'PY'
import json, sys
ids, bad, n = set(), 0, 0
for raw in open(sys.argv[1], 'rb').read().split(b'\n'):
    if not raw:
        continue
    try:
        o = json.loads(raw)
    except ValueError:
        bad += 1
        continue
    if o.get('msg') == 'request' and o.get('route') == '/ping':
        n += 1
        ids.add(o.get('request_id'))
print(n, len(ids), bad)
PY
}
load() { # URL: N GETs of /ping from 8 parallel connections; prints how many answered 200
    "$CURL" -s -Z --parallel-max 8 -o /dev/null -w '%{http_code}\n' "$1/ping?[1-$N]" | grep -c '^200$'
}

# ------------------------------------------------------------- L: a long delay
m8_fcgim8d_start L example "$T_DIR/app.env" M8_LOG_FLUSH_MS=60000 -- --workers 2 --threads 2
m8_fcgim8d_wait_ready L 2 || { t_diag "$(tail -n 20 "$T_DIR/L.log")"; t_bail "the pool did not start"; }
t_is "$(load "${URL[L]}")" "$N" "L: $N requests answered 200 through nginx"
read -r before _ _ < <(access_summary "$T_DIR/L.log")
t_ok "$([ "$before" -lt "$N" ]; echo $?)" \
    "L: with a 60 s delay, lines are still held after the load ($before of $N written, in full batches)"
m8_kill_wait "${M8_FCGIM8D_PID[L]}" 20
read -r n ids bad < <(access_summary "$T_DIR/L.log")
t_is "$n" "$N" "L: a graceful stop writes every held access line ($n of $N)"
t_is "$ids" "$N" "L: ... each request once (distinct request ids)"
t_is "$bad" 0 "L: ... and every line of the log is whole JSON (no torn or mixed batch)"

# The pool NAME serves N requests; every access line then comes out while
# it stays up, once, whole.  WHAT says where fcgim8d writes them.
lines_come_out() { # NAME WHAT
    local name=$1 what=$2 n ids bad
    m8_fcgim8d_wait_ready "$name" 2 ||
        { t_diag "$(tail -n 20 "$T_DIR/$name.log")"; t_bail "the pool did not start"; }
    t_is "$(load "${URL[$name]}")" "$N" "$name: $N requests answered 200 through nginx"
    all_written() { read -r n _ _ < <(access_summary "$T_DIR/$name.log"); [ "$n" = "$N" ]; }
    m8_wait_for 10 all_written
    read -r n ids bad < <(access_summary "$T_DIR/$name.log")
    t_is "$n" "$N" "$name: with a 200 ms delay and fcgim8d writing onto $what, every line comes out while the pool stays up ($n of $N)"
    t_is "$ids" "$N" "$name: ... each request once"
    t_is "$bad" 0 "$name: ... every line whole JSON"
}

# ------------------------------------------------------------- S: a short delay
m8_fcgim8d_start S example "$T_DIR/app.env" M8_LOG_FLUSH_MS=200 -- --workers 2 --threads 2
lines_come_out S "a file (up to 64 KiB a write)"

# ------------------------------------------------------- P: onto a pipe
(cd "$T_DIR" && m8_clean_exec M8_LOG_FLUSH_MS=200 -- "$D" --listen "unix:$T_DIR/P.sock" \
    --env-file "$T_DIR/app.env" --workers 2 --threads 2 -- "$(m8_svc_bin example)") \
    </dev/null >"$T_DIR/P.out" 2> >(cat >"$T_DIR/P.log") &
M8_FCGIM8D_PID[P]=$!
M8_PIDS+=("$!")
lines_come_out P "a pipe (at most PIPE_BUF a write)"
t_done
