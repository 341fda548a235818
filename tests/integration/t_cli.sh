#!/bin/bash
# t_cli.sh - the standard command line of every service (m8_app_main):
# --version, --help, --check (exit 0 / 78 with one line per finding, never a
# secret), --env-file errors, usage errors (64), and SIGTERM/SIGINT handling
# (exit 0 promptly when idle, and only after finishing an in-flight request).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
m8_init t_cli

FIX=$(m8_svc_bin fixture)
EX=$(m8_svc_bin example)
[ -x "$FIX" ] && [ -x "$EX" ] || t_bail "service programs not built ($FIX, $EX)"
PORT_LO=18000 PORT_HI=18049

run() { # ENVFILE-or-- ARGS...: runs the fixture with a clean environment -> RC, OUT (stdout+stderr)
    local bin=$FIX
    if [ "$1" = --example ]; then bin=$EX; shift; fi
    OUT=$(cd "$T_DIR" && m8_clean_env M8T_CHECK_FILE="$T_DIR/none" -- "$bin" "$@" </dev/null 2>&1)
    RC=$?
}

lines_naming() { printf '%s\n' "$OUT" | grep -c -- "$1"; }

# ------------------------------------------------------------- --version / --help
libver=$(sed -n 's/^#define M8_VERSION_STRING "\(.*\)"/\1/p' "$top_srcdir/lib/fcgim8.h")
run --version
t_is "$RC" 0 "--version exits 0"
t_like "$OUT" "$(printf '%s' "$libver" | sed 's/\./\\./g')" "--version prints the library version ($libver)"
run --example --version
t_is "$RC" 0 "example: --version exits 0"

run --help
t_is "$RC" 0 "--help exits 0"
for o in --listen --env-file --threads --check --version --help; do
    t_like "$OUT" "$o" "--help documents $o"
done

# ------------------------------------------------------------- --check
m8_write_env "$T_DIR/valid.env"
run --env-file "$T_DIR/valid.env" --check
t_is "$RC" 0 "--check exits 0 on a valid environment" || t_diag "$OUT"
for s in Test-Access-Secret-Key Test-Refresh-Secret-Key Test-Event-Signing-Key; do
    t_unlike "$OUT" "$s" "--check output does not contain the value of a secret ($s...)"
done
run --example --env-file "$T_DIR/valid.env" --check
t_is "$RC" 0 "example: --check exits 0 on a valid environment" || t_diag "$OUT"

# Field errors are reported together, one line each, naming the variable.
m8_write_env "$T_DIR/fields.env" ENVIRONMENT=Production STACK_NAME=Bad_Stack
run --env-file "$T_DIR/fields.env" --check
t_is "$RC" 78 "--check exits 78 (EX_CONFIG) on invalid values" || t_diag "$OUT"
t_is "$(lines_naming ENVIRONMENT)" 1 "one line names ENVIRONMENT (enum is case-sensitive)" ||
    t_diag "$OUT"
t_is "$(lines_naming STACK_NAME)" 1 "one line names STACK_NAME (slug pattern)" || t_diag "$OUT"

# A weak secret is named but never printed.
marker='Leak-Marker-weak-SECRET'
m8_write_env "$T_DIR/weak.env" "ACCESS_SECRET_KEY=$marker"
run --env-file "$T_DIR/weak.env" --check
t_is "$RC" 78 "--check exits 78 on a weak ACCESS_SECRET_KEY" || t_diag "$OUT"
t_like "$OUT" ACCESS_SECRET_KEY "the finding names ACCESS_SECRET_KEY"
t_unlike "$OUT" "$marker" "the finding does not print the secret's value"

# Credential reuse is a startup-validator fatal (doc/settings.md#credential-reuse).
reuse='Reused-Credential-0123456789-ABCdef!'
m8_write_env "$T_DIR/reuse.env" "PRIVATE_API_SECRET=$reuse" "HEALTH_DETAIL_CREDENTIAL=$reuse"
run --env-file "$T_DIR/reuse.env" --check
t_is "$RC" 78 "--check exits 78 when HEALTH_DETAIL_CREDENTIAL equals PRIVATE_API_SECRET" ||
    t_diag "$OUT"
t_like "$OUT" HEALTH_DETAIL_CREDENTIAL "the finding names HEALTH_DETAIL_CREDENTIAL"
t_unlike "$OUT" "$reuse" "the finding does not print the credential"

# An unknown key in the .env file is an error naming it, with a suggestion
# (doc/settings.md#names).
m8_write_env "$T_DIR/typo.env" ENVIRONMNET=local
run --env-file "$T_DIR/typo.env" --check
t_is "$RC" 78 "--check exits 78 on an unknown key in the .env file" || t_diag "$OUT"
t_like "$(printf '%s\n' "$OUT" | grep ENVIRONMNET)" "ENVIRONMENT" \
    "the line naming the unknown key ENVIRONMNET suggests ENVIRONMENT"

m8_write_env "$T_DIR/missing.env" -SERVICE_VERSION
run --env-file "$T_DIR/missing.env" --check
t_is "$RC" 78 "--check exits 78 when a required setting is missing" || t_diag "$OUT"
t_like "$OUT" SERVICE_VERSION "the finding names SERVICE_VERSION"

# Config health fatal: localhost origins in production (doc/settings.md#config-health).
m8_write_env "$T_DIR/prodlocal.env" ENVIRONMENT=production ALLOWED_HOSTS=localhost
run --env-file "$T_DIR/prodlocal.env" --check
t_is "$RC" 78 "--check exits 78 on localhost CORS origins in production" || t_diag "$OUT"
t_like "$OUT" 'localhost' "the finding says the origins contain localhost"

m8_write_env "$T_DIR/issuer.env" AUTH_SERVICE_ROLE=issuer
run --env-file "$T_DIR/issuer.env" --check
t_is "$RC" 78 "--check exits 78 with AUTH_SERVICE_ROLE=issuer (doc/settings.md#service-role)" || t_diag "$OUT"
t_like "$OUT" 'AUTH_SERVICE_ROLE' "the finding names AUTH_SERVICE_ROLE"

# Production with the overrides the tests use elsewhere boots (warnings only).
m8_write_env "$T_DIR/prod.env" "${M8_PROD_ENV[@]}"
run --env-file "$T_DIR/prod.env" --check
t_is "$RC" 0 "--check exits 0 on a production environment with warnings only" || t_diag "$OUT"

# The process environment beats the .env file
# (doc/settings.md#where-values-come-from): a valid value in the
# environment repairs an invalid one in the file.
OUT=$(cd "$T_DIR" && m8_clean_env STACK_NAME=fixed -- "$FIX" --env-file "$T_DIR/fields.env" \
    --check 2>&1 </dev/null)
RC=$?
t_unlike "$OUT" 'STACK_NAME' "a setting from the process environment overrides the .env file (doc/settings.md#where-values-come-from)"

# ------------------------------------------------------------- usage errors
run --env-file "$T_DIR/does-not-exist.env" --check
t_like "$RC" '^(64|78)$' "a missing --env-file is an error (exit 64 or 78, got $RC)" || t_diag "$OUT"
t_like "$OUT" 'does-not-exist\.env' "the error names the missing file"

run --bogus-option
t_is "$RC" 64 "an unknown option exits 64 (EX_USAGE)"
t_like "$OUT" 'bogus-option|[Uu]sage' "the usage error names the option or shows the usage"
run --threads
t_is "$RC" 64 "--threads without a value exits 64"
run --env-file "$T_DIR/valid.env" --threads zero --check
t_is "$RC" 64 "--threads with a non-number exits 64"
run --env-file "$T_DIR/valid.env" --listen
t_is "$RC" 64 "--listen without a value exits 64"
run --env-file "$T_DIR/valid.env" extra-argument
t_is "$RC" 64 "a stray argument exits 64"

# ------------------------------------------------------------- signals
ping_ok() { # ADDR: the service answers /ping (when cgi-fcgi is there), else the socket exists
    if [ -n "$M8_CGI_FCGI" ]; then
        m8_fcgi_req "$1" GET /ping && [ "$C_STATUS" = 200 ]
    else
        case $1 in /*) [ -S "$1" ] ;; *) m8_port_open "${1##*:}" ;; esac
    fi
}

stop_check() { # NAME SIGNAL LABEL: sends SIGNAL, expects exit 0 in under 2 s
    local pid=${M8_SVC_PID[$1]} t0 ms
    t0=$(m8_now_ms)
    kill -"$2" "$pid"
    if m8_wait_exit "$pid" 5; then
        ms=$(( $(m8_now_ms) - t0 ))
        t_is "$M8_RC" 0 "$3: exit status 0 after SIG$2" || m8_svc_diag "$1"
        t_ok "$([ "$ms" -lt 2000 ] && echo 0 || echo 1)" "$3: exits within 2 s of SIG$2 (${ms} ms)"
    else
        t_report 1 "$3: exit status 0 after SIG$2"
        t_report 1 "$3: exits within 2 s of SIG$2 (still running after 5 s)"
        m8_svc_diag "$1"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
}

idle_case() { # NAME LABEL SIGNAL ADDR-KIND [ARGS...]
    local name=$1 label=$2 sig=$3 kind=$4 addr
    shift 4
    case $kind in
        unix) addr=$T_DIR/$name.sock
              m8_svc_listen "$name" fixture "unix:$addr" "$T_DIR/valid.env" -- "$@" ;;
        tcp)  m8_pick_port $PORT_LO $PORT_HI || { t_report 1 "$label: a free port"; return; }
              addr=127.0.0.1:$M8_PORT
              m8_svc_listen "$name" fixture "$addr" "$T_DIR/valid.env" -- "$@" ;;
        spawn) addr=$T_DIR/$name.sock
              m8_svc_spawn "$name" fixture "$addr" "$T_DIR/valid.env" -- "$@" ;;
    esac
    if ! m8_wait_for 10 ping_ok "$addr"; then
        t_report 1 "$label: serves before the signal"
        m8_svc_diag "$name"
        return
    fi
    stop_check "$name" "$sig" "$label"
}

idle_case idle_term "idle, --listen unix" TERM unix
idle_case idle_int "idle, --listen unix" INT unix
idle_case idle_threads "idle, --listen unix --threads 4" TERM unix --threads 4
idle_case idle_tcp "idle, --listen 127.0.0.1:port" TERM tcp
if [ -n "$SPAWN_FCGI" ]; then
    idle_case idle_spawn "idle, socket inherited on fd 0 (spawn-fcgi)" TERM spawn
    idle_case idle_spawn_thr "idle, socket on fd 0, --threads 3" TERM spawn --threads 3
else
    t_skip "idle under spawn-fcgi: exit 0 within 2 s" "spawn-fcgi is not installed"
fi

# In flight: a request whose body is still arriving when SIGTERM comes must
# be finished (200 with the echo) before the process exits 0.
if [ -n "$M8_CGI_FCGI" ]; then
    sock=$T_DIR/inflight.sock
    m8_svc_listen inflight fixture "unix:$sock" "$T_DIR/valid.env"
    if m8_wait_for 10 ping_ok "$sock"; then
        pid=${M8_SVC_PID[inflight]}
        nfd0=$(ls "/proc/$pid/fd" | wc -l)
        body='{"in":"flight","n":12345}'
        mkfifo "$T_DIR/body.fifo"
        ( m8_fcgi_req "$sock" POST /api/echo CONTENT_TYPE=application/json \
            CONTENT_LENGTH=${#body} <"$T_DIR/body.fifo"; cp "$T_DIR/f.resp" "$T_DIR/inflight.resp" ) &
        client=$!
        exec 7>"$T_DIR/body.fifo"
        printf '%s' "${body:0:10}" >&7
        # accepted: the service holds one more descriptor (the connection)
        more_fds() { [ "$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)" -gt "$nfd0" ]; }
        m8_wait_for 5 more_fds
        t_ok $? "in flight: the service accepted the connection"
        sleep 0.2
        kill -TERM "$pid"
        sleep 0.5
        m8_alive "$pid"
        t_ok $? "in flight: after SIGTERM the service waits for the request in progress"
        printf '%s' "${body:10}" >&7
        exec 7>&-
        wait "$client"
        m8_cgi_parse "$T_DIR/inflight.resp"
        t_is "$C_STATUS" 200 "in flight: the request is answered (200)" || t_diag "$(cat "$T_DIR/inflight.resp")"
        t_like "$C_BODY" '"flight"' "in flight: the answer is the complete echo"
        if m8_wait_exit "$pid" 3; then
            t_is "$M8_RC" 0 "in flight: exit status 0 once the request is done"
        else
            t_report 1 "in flight: exit status 0 once the request is done (still running)"
            m8_svc_diag inflight
        fi
        # Every line on stderr is one JSON object (the access and lifecycle log).
        bad=$(grep -v '^{.*}$' "${M8_SVC_LOG[inflight]}" | head -n 3)
        t_is "$bad" "" "the service logs JSON lines on stderr only"
        t_like "$(grep '/api/echo' "${M8_SVC_LOG[inflight]}")" '"status": ?200' \
            "the access log line of the finished request has status 200"
    else
        t_report 1 "in flight: the service serves"
        m8_svc_diag inflight
    fi
else
    t_skip "in flight: SIGTERM finishes the request first" "cgi-fcgi (libfcgi-bin) is not installed"
fi

# A body shorter than its CONTENT_LENGTH (a front end that cut it, e.g.
# mod_proxy_fcgi past LimitRequestBody) is refused, never served as whole.
if [ -n "$M8_CGI_FCGI" ]; then
    sock=$T_DIR/cl.sock
    m8_svc_listen cl fixture "unix:$sock" "$T_DIR/valid.env"
    if m8_wait_for 10 ping_ok "$sock"; then
        printf '{"a":1}' | m8_fcgi_req "$sock" POST /api/echo CONTENT_TYPE=application/json CONTENT_LENGTH=7
        t_is "$C_STATUS" 200 "CONTENT_LENGTH equal to the body: served"
        printf '{"a":1}' >"$T_DIR/short.body"
        m8_fcgi_req "$sock" POST /api/echo CONTENT_TYPE=application/json CONTENT_LENGTH=20 <"$T_DIR/short.body"
        t_is "$C_STATUS" 400 "a body shorter than CONTENT_LENGTH: 400, not served as complete"
        t_ok "$(grep -q 'CONTENT_LENGTH 20 but 7 body bytes arrived' "${M8_SVC_LOG[cl]}"; echo $?)" \
            "... and the log says why"
    else
        t_report 1 "CONTENT_LENGTH: the service starts"
    fi
    m8_svc_stop cl
else
    t_skip "CONTENT_LENGTH mismatch" "cgi-fcgi is not installed"
fi

t_done
