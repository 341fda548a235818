#!/bin/bash
# t_status.sh - fcgim8d's status endpoint (--status-listen, fcgim8d(8)
# "Status endpoint"): a client that dribbles its request one byte every
# 1.5 s neither holds up another client nor keeps its connection past the
# deadline; a TCP address other than loopback without
# METRICS_SCRAPE_CREDENTIAL stops the boot (78); with the credential set,
# /status needs it as /metrics does.  Ports come from 19500-19529.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$CURL" ] || t_skip_all "curl is not installed"
[ -x /usr/bin/python3 ] || t_skip_all "/usr/bin/python3 is not installed"
m8_init t_status

D=$top_builddir/src/fcgim8d
[ -x "$D" ] && [ -x "$(m8_svc_bin fixture)" ] || t_bail "programs not built"
PLO=19500 PHI=19529
CRED='Scrape-Credential-0123456789'

# dribble PORT OUT: sends "GET /status HTTP/1.0\r\n\r\n" one byte every 1.5 s;
# writes "started" once its first byte is sent, then how it ended, to OUT.
cat >"$T_DIR/dribble.py" <<'EOF'
import socket, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
req = b"GET /status HTTP/1.0\r\n\r\n"
s = socket.create_connection(("127.0.0.1", port), timeout=5)
sent, end = 0, "finished"
for b in req:
    try:
        s.sendall(bytes([b]))
        sent += 1
    except OSError:
        end = "closed"
        break
    if sent == 1:
        with open(out, "w") as f:
            f.write("started\n")
    s.settimeout(1.5)
    try:
        got = s.recv(4096)
        if got == b"" or got.startswith(b"HTTP/1.0 408"):
            end = "closed"
            break
        end = "answered"
        break
    except socket.timeout:
        pass
    except OSError:
        end = "closed"
        break
with open(out, "a") as f:
    f.write("%s after %d bytes\n" % (end, sent))
EOF

m8_write_env "$T_DIR/open.env" METRICS_ENABLED=true
m8_write_env "$T_DIR/cred.env" METRICS_ENABLED=true "METRICS_SCRAPE_CREDENTIAL=$CRED"

# ------------------------------------------------------------- A: a dribbling client
m8_pick_port $PLO $PHI || t_bail "no free port"
SA=$M8_PORT
m8_fcgim8d_start A fixture "$T_DIR/open.env" -- --workers 1 --threads 1 \
    --status-listen "127.0.0.1:$SA"
m8_wait_port "$SA" 15 || { t_diag "$(tail -n 20 "$T_DIR/A.log")"; t_bail "status port of A does not answer"; }

/usr/bin/python3 "$T_DIR/dribble.py" "$SA" "$T_DIR/dribble.out" 2>"$T_DIR/dribble.err" &
DRIB=$!
M8_PIDS+=("$DRIB")
m8_wait_for 5 grep -q started "$T_DIR/dribble.out"
t_ok $? "A: the dribbling client is connected and has sent its first byte"
served=1
for try in 1 2 3; do
    code=$("$CURL" -s -o /dev/null -w '%{http_code}' -m 1 "http://127.0.0.1:$SA/status")
    if [ "$code" = 200 ]; then served=0; break; fi
done
t_ok $served "A: another client gets GET /status within a second while one dribbles (try $try)"
m8_alive "$DRIB"
t_ok $? "A: ... and the dribbling client is still connected then"
m8_wait_for 20 sh -c "grep -q 'after' '$T_DIR/dribble.out'"
t_like "$(cat "$T_DIR/dribble.out")" "closed after [0-9]+ bytes" \
    "A: the dribbling client is cut at the deadline, before its request is complete"
code=$("$CURL" -s -o /dev/null -w '%{http_code}' -m 5 "http://127.0.0.1:$SA/metrics")
t_is "$code" 200 "A: the endpoint serves afterwards"
m8_kill_wait "${M8_FCGIM8D_PID[A]}" 10

# ------------------------------------------------------------- B: not loopback, no credential
m8_pick_port $PLO $PHI || t_bail "no free port"
SB=$M8_PORT
for addr in "0.0.0.0:$SB" ":$SB" "[::]:$SB"; do
    m8_fcgim8d_start B fixture "$T_DIR/open.env" -- --workers 1 --status-listen "$addr"
    m8_wait_exit "${M8_FCGIM8D_PID[B]}" 15
    t_is "$M8_RC" 78 "B: --status-listen $addr without METRICS_SCRAPE_CREDENTIAL stops the boot (78)"
    t_ok "$(grep -q 'not a loopback address and METRICS_SCRAPE_CREDENTIAL is not set' \
        "$T_DIR/B.log"; echo $?)" "B: ... saying why ($addr)"
done
m8_fcgim8d_start B fixture "$T_DIR/open.env" -- --workers 1 --status-listen "localhost:$SB"
m8_wait_for 15 m8_fcgim8d_log_has B "status and metrics on localhost:$SB"
t_ok $? "B: a name that resolves to loopback (localhost) is accepted without a credential"
m8_kill_wait "${M8_FCGIM8D_PID[B]}" 10

# ------------------------------------------------------------- C: the credential guards /status
m8_pick_port $PLO $PHI || t_bail "no free port"
SC=$M8_PORT
m8_fcgim8d_start C fixture "$T_DIR/cred.env" -- --workers 1 --status-listen "127.0.0.1:$SC"
m8_wait_port "$SC" 15 || t_bail "status port of C does not answer"
m8_http GET "http://127.0.0.1:$SC/status"
t_is "$H_STATUS" 401 "C: GET /status without the credential: 401"
t_is "$H_BODY" '{"detail":"Unauthorized"}' "C: ... with a JSON detail"
t_is "$(m8_hdr WWW-Authenticate)" Bearer "C: ... and WWW-Authenticate: Bearer"
m8_http GET "http://127.0.0.1:$SC/status" -H "Authorization: Bearer wrong-$CRED"
t_is "$H_STATUS" 401 "C: GET /status with a wrong credential: 401"
m8_http GET "http://127.0.0.1:$SC/status" -H "Authorization: Bearer $CRED"
t_is "$H_STATUS" 200 "C: GET /status with the credential: 200"
t_like "$H_BODY" '"pool":' "C: ... the pool status"
m8_http GET "http://127.0.0.1:$SC/metrics"
t_is "$H_STATUS" 401 "C: GET /metrics without the credential: 401 (as before)"
m8_http GET "http://127.0.0.1:$SC/metrics" -H "Authorization: Bearer $CRED"
t_is "$H_STATUS" 200 "C: GET /metrics with the credential: 200"
m8_kill_wait "${M8_FCGIM8D_PID[C]}" 10

# ------------------------------------------------------------- D: a token spray, logs and metrics
# (fcgim8d(8) LOGGING: lines a client causes per request are rate-limited per
# reason; the metrics count every request)
if [ -n "$M8_CGI_FCGI" ]; then
    m8_pick_port $PLO $PHI || t_bail "no free port"
    SD=$M8_PORT
    m8_fcgim8d_start D fixture "$T_DIR/open.env" -- --workers 1 --threads 1 \
        --status-listen "127.0.0.1:$SD"
    m8_fcgim8d_wait_ready D 1 || t_bail "D is not ready"
    N=200
    for ((i = 0; i < N; i++)); do
        m8_fcgi_req "$T_DIR/D.sock" GET /api/private HTTP_AUTHORIZATION="Bearer spray.$i.x"
        [ "$C_STATUS" = 401 ] || break
    done
    t_is "$i" "$N" "D: $N sprayed tokens are refused (401)"
    m8_http GET "http://127.0.0.1:$SD/metrics"
    got=$(printf '%s\n' "$H_BODY" | sed -n 's/^api_auth_token_validation_failures_total{reason="invalid"} \([0-9.e+]*\)$/\1/p')
    t_is "${got%.0}" "$N" "D: auth_token_validation_failures_total counts every refused token"
    got=$(printf '%s\n' "$H_BODY" | sed -n 's/^api_http_requests_total{method="GET",endpoint="\/api\/private",status_code="401"} \([0-9.e+]*\)$/\1/p')
    t_is "${got%.0}" "$N" "D: http_requests_total counts every 401"
    fails=$(grep -c 'auth.fail type=access reason=invalid' "$T_DIR/D.log")
    t_ok "$([ "$fails" -ge 1 ] && [ "$fails" -le $((N / 4)) ]; echo $?)" \
        "D: the spray writes a few auth.fail lines, not $N ($fails)"
    access=$(grep '"msg":"request"' "$T_DIR/D.log" | grep -c '"status":401')
    t_ok "$([ "$access" -le $((N / 4)) ]; echo $?)" \
        "D: ... and a few access lines of its 401s ($access)"
    m8_kill_wait "${M8_FCGIM8D_PID[D]}" 10
else
    t_skip "D: a token spray" "cgi-fcgi is not installed"
fi

t_done
