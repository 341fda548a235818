# tests/integration/lib.sh - shared helpers for the integration tests (bash).
# shellcheck shell=bash disable=SC2034  # globals are read by the sourcing scripts
#
# Sourced by tests/integration/t_*.sh, bench/e2e.sh and scripts/demo.sh.
# Sourcing does nothing but define functions and locate the tree; call
# m8_init NAME to get a temporary directory and the cleanup trap.
#
#   TAP      t_ok t_is t_like t_unlike t_cmd t_skip t_diag t_skip_all t_done
#   temp     m8_init NAME   (T_DIR, removed on exit unless M8_KEEP_TMP=1)
#   waiting  m8_wait_for SECONDS CMD..., m8_wait_sock, m8_wait_port, m8_wait_exit
#   ports    m8_pick_port LO HI -> M8_PORT (a free loopback TCP port from a fixed range)
#   env      m8_write_env FILE [KEY=VALUE | -KEY]...   (the valid base env + overrides)
#   services m8_svc_listen / m8_svc_spawn / m8_svc_stop, m8_svc_bin
#   HTTP     m8_http METHOD URL [curl args]  -> H_STATUS H_BODY; m8_hdr NAME; m8_hdr_count NAME
#   CGI      m8_cgi_parse FILE                -> C_STATUS C_BODY; m8_chdr NAME
#   nginx    m8_nginx_prepare DIR, m8_nginx_site DIR NAME TEMPLATE KEY=VALUE...,
#            m8_nginx_start DIR, m8_nginx_stop DIR
#
# Servers listen on 127.0.0.1 or unix sockets inside T_DIR only, and every
# process started here is stopped by its own PID in the EXIT trap.

# ------------------------------------------------------------------ locations
if [ -z "${top_srcdir:-}" ]; then
    top_srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fi
if [ -z "${top_builddir:-}" ]; then
    # Run by hand from a build directory, or from an in-tree build.
    if [ -f "$PWD/Makefile" ] && [ -f "$PWD/config.h" ]; then
        top_builddir=$PWD
    else
        top_builddir=$top_srcdir
    fi
fi
export top_srcdir top_builddir
# Serving threads hold access lines up to M8_LOG_FLUSH_MS (default 100 ms):
# the tests read logs right after a request, so their services write each
# line at once unless a test says otherwise (t_logbatch.sh does).
export M8_LOG_FLUSH_MS=${M8_LOG_FLUSH_MS:-0}

m8_find_prog() { # NAME [VAR-VALUE]: the configured path, else PATH, else /usr/sbin
    if [ -n "${2:-}" ] && [ -x "$2" ]; then printf '%s\n' "$2"; return 0; fi
    command -v "$1" 2>/dev/null && return 0
    for d in /usr/sbin /sbin /usr/bin; do
        [ -x "$d/$1" ] && { printf '%s\n' "$d/$1"; return 0; }
    done
    return 1
}
NGINX=$(m8_find_prog nginx "${NGINX_BIN:-${NGINX:-}}") || NGINX=
# nginx reads an environment variable NGINX as a list of inherited listening
# sockets (its binary-upgrade protocol) and refuses to start on a path; the
# Makefile exports NGINX=/usr/sbin/nginx.  Keep it out of every child's
# environment.
export -n NGINX
SPAWN_FCGI=$(m8_find_prog spawn-fcgi "${SPAWN_FCGI:-}") || SPAWN_FCGI=
CURL=$(m8_find_prog curl "${CURL:-}") || CURL=

M8_CONTRIB_NGINX=$top_srcdir/contrib/nginx

# ------------------------------------------------------------------ TAP
T_N=0
T_FAILED=0

t_diag() { # MESSAGE...: TAP diagnostic lines (each line prefixed "# ")
    local line
    printf '%s\n' "$*" | while IFS= read -r line; do printf '# %s\n' "$line"; done
}

t_report() { # 0|1 NAME
    T_N=$((T_N + 1))
    if [ "$1" = 0 ]; then
        printf 'ok %d - %s\n' "$T_N" "$2"
    else
        T_FAILED=$((T_FAILED + 1))
        printf 'not ok %d - %s\n' "$T_N" "$2"
    fi
}

t_ok() { # COND-STATUS NAME [DIAG]: passes when COND-STATUS is 0 (e.g. t_ok $? "...")
    t_report "$([ "$1" = 0 ] && echo 0 || echo 1)" "$2"
    [ "$1" = 0 ] || { [ -n "${3:-}" ] && t_diag "$3"; }
    return "$([ "$1" = 0 ] && echo 0 || echo 1)"
}

t_is() { # GOT WANT NAME
    if [ "$1" == "$2" ]; then
        t_report 0 "$3"
    else
        t_report 1 "$3"
        t_diag "     got: '$(m8_clip "$1")'" "expected: '$(m8_clip "$2")'"
        return 1
    fi
}

t_like() { # GOT ERE NAME
    if [[ $1 =~ $2 ]]; then
        t_report 0 "$3"
    else
        t_report 1 "$3"
        t_diag "     got: '$(m8_clip "$1")'" "expected to match: $2"
        return 1
    fi
}

t_unlike() { # GOT ERE NAME
    if [[ $1 =~ $2 ]]; then
        t_report 1 "$3"
        t_diag "     got: '$(m8_clip "$1")'" "expected not to match: $2"
        return 1
    else
        t_report 0 "$3"
    fi
}

t_cmd() { # NAME CMD...: passes when CMD exits 0
    local name=$1 rc
    shift
    "$@"
    rc=$?
    t_ok "$rc" "$name" "command failed (exit $rc): $*"
}

t_skip() { # NAME REASON
    T_N=$((T_N + 1))
    printf 'ok %d - %s # SKIP %s\n' "$T_N" "$1" "$2"
}

t_skip_all() { # REASON: the whole file is skipped
    printf '1..0 # SKIP %s\n' "$1"
    exit 0
}

t_bail() { # REASON: stop the whole file (counted as an error)
    printf 'Bail out! %s\n' "$1"
    exit 1
}

t_done() { # prints the plan; exits 0 when everything passed
    printf '1..%d\n' "$T_N"
    [ "$T_FAILED" = 0 ] && exit 0
    t_diag "$T_FAILED of $T_N failed"
    exit 1
}

m8_clip() { # TEXT: at most 600 characters, for diagnostics
    local s=$1
    [ ${#s} -gt 600 ] && s="${s:0:600}...(${#1} bytes)"
    printf '%s' "$s"
}

# ------------------------------------------------------------------ temp dir, cleanup
T_DIR=
M8_PIDS=()      # processes to stop on exit (services, wrk, ...)
M8_NGINX_DIRS=() # nginx prefixes to stop on exit

m8_init() { # NAME: temp dir + trap
    T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/m8-$1.XXXXXX") || t_bail "mktemp failed"
    trap m8_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
}

m8_cleanup() {
    local rc=$? d p
    for d in "${M8_NGINX_DIRS[@]}"; do m8_nginx_stop "$d"; done
    for p in "${M8_PIDS[@]}"; do m8_kill_wait "$p" 3; done
    if [ -n "$T_DIR" ] && [ -d "$T_DIR" ]; then
        if [ "${M8_KEEP_TMP:-0}" = 1 ]; then
            echo "# kept $T_DIR" >&2
        else
            rm -rf "$T_DIR"
        fi
    fi
    return $rc
}

m8_alive() { # PID: running (a zombie counts as gone)
    local st
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

m8_kill_wait() { # PID SECONDS: TERM, wait, then KILL; reaps our own children
    local pid=$1 n
    [ -n "$pid" ] || return 0
    if m8_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        n=$(( ${2:-3} * 20 ))
        while [ $n -gt 0 ] && m8_alive "$pid"; do sleep 0.05; n=$((n - 1)); done
        m8_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

m8_now_ms() { date +%s%3N; }

# ------------------------------------------------------------------ waiting
m8_wait_for() { # SECONDS CMD...: polls CMD every 50 ms until it succeeds
    local n=$(( $1 * 20 ))
    shift
    while ! "$@" >/dev/null 2>&1; do
        n=$((n - 1))
        [ $n -le 0 ] && return 1
        sleep 0.05
    done
    return 0
}

m8_is_sock() { [ -S "$1" ]; }
m8_wait_sock() { m8_wait_for "${2:-10}" m8_is_sock "$1"; }

m8_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
m8_wait_port() { m8_wait_for "${2:-10}" m8_port_open "$1"; }

m8_exited() { ! m8_alive "$1"; }

m8_wait_exit() { # PID SECONDS: waits for PID to exit; sets M8_RC to its status (our child)
    M8_RC=
    if ! m8_wait_for "$2" m8_exited "$1"; then
        return 1
    fi
    wait "$1" 2>/dev/null
    M8_RC=$?
    return 0
}

# ------------------------------------------------------------------ ports
M8_USED_PORTS=" "
# m8_pick_port LO HI: sets M8_PORT to a free 127.0.0.1 port from the range
# (fixed per test file), never the same one twice in a run.  Call it directly,
# not in $(...): the memory of ports handed out lives in this shell.
M8_PORT=
m8_pick_port() {
    local p
    for ((p = $1; p <= $2; p++)); do
        case $M8_USED_PORTS in *" $p "*) continue ;; esac
        if command -v ss >/dev/null 2>&1; then
            [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && continue
        fi
        m8_port_open "$p" && continue
        M8_USED_PORTS="$M8_USED_PORTS$p "
        M8_PORT=$p
        return 0
    done
    return 1
}

# ------------------------------------------------------------------ settings (.env)
# The valid minimal environment of the tests (local, HS256: no key files).
M8_BASE_ENV=(
    DOMAIN=localhost
    ENVIRONMENT=local
    PROJECT_NAME=item-service
    STACK_NAME=local
    API_PREFIX=/api
    BACKEND_HOST=http://localhost:8000
    FRONTEND_HOST=http://localhost:3000
    BACKEND_CORS_ORIGINS=http://localhost:3000
    ACCESS_TOKEN_ALGORITHM=HS256
    'ACCESS_SECRET_KEY=Test-Access-Secret-Key-0123456789abcdef!'
    'REFRESH_SECRET_KEY=Test-Refresh-Secret-Key-0123456789abcdef!'
    TOKEN_MODE=stateless
    TOKEN_STRICT_VALIDATION=false
    AUTH_SERVICE_ROLE=consumer
    'EVENT_SIGNING_KEY=Test-Event-Signing-Key-0123456789abcdef!'
    SERVICE_VERSION=1.0.0
    CONTRACT_VERSION=1.0
    'CONTRACT_RANGE=>=1.0.0 <2.0.0'
)
# Overrides for a production environment that boots (warnings only).
# shellcheck disable=SC2054  # ALLOWED_HOSTS takes a comma list
M8_PROD_ENV=(
    ENVIRONMENT=production
    BACKEND_CORS_ORIGINS=https://app.example.com
    FRONTEND_HOST=https://app.example.com
    ALLOWED_HOSTS=127.0.0.1,localhost
)

m8_env_quote() { # VALUE: a .env value, quoted when it needs it
    # Single quotes keep $ as it is (a double-quoted "\$" keeps its
    # backslash, as python-dotenv does; single quotes only decode \\ and
    # \'); used unless the value holds a single quote.
    case $1 in
        *\'*) ;;
        *[\$\\]*) printf "'%s'" "${1//\\/\\\\}"; return ;;
    esac
    case $1 in
        *[[:space:]\#\"\'\\\$]* | "")
            local v=${1//\\/\\\\}
            v=${v//\"/\\\"}
            v=${v//\$/\\\$}
            printf '"%s"' "$v" ;;
        *) printf '%s' "$1" ;;
    esac
}

m8_write_env() { # FILE [KEY=VALUE | -KEY]...: base env, then overrides (later wins, -KEY deletes)
    local file=$1 kv k i
    shift
    local -a keys=() vals=()
    for kv in "${M8_BASE_ENV[@]}" "$@"; do
        if [ "${kv:0:1}" = - ]; then
            k=${kv:1}
            for i in "${!keys[@]}"; do [ "${keys[$i]}" = "$k" ] && unset 'keys[i]' 'vals[i]'; done
            continue
        fi
        k=${kv%%=*}
        for i in "${!keys[@]}"; do [ "${keys[$i]}" = "$k" ] && unset 'keys[i]' 'vals[i]'; done
        keys+=("$k")
        vals+=("${kv#*=}")
    done
    : >"$file" || return 1
    for i in "${!keys[@]}"; do
        printf '%s=%s\n' "${keys[$i]}" "$(m8_env_quote "${vals[$i]}")" >>"$file"
    done
}

# ------------------------------------------------------------------ services
m8_svc_bin() { # fixture|example: path of the built program
    case $1 in
        fixture) printf '%s\n' "$top_builddir/tests/unit/svc_fixture" ;;
        example) printf '%s\n' "$top_builddir/examples/item-service/item-service" ;;
        *) printf '%s\n' "$1" ;;
    esac
}

# Runs CMD with a clean environment (so nothing from the caller's environment
# leaks into the settings) plus the sanitizer options and the given VAR=VALUE.
# m8_clean_exec replaces the calling (sub)shell, so `( m8_clean_exec ... ) &`
# leaves the program's own PID in $!.
M8_ENV_CMD=()
m8_clean_cmd() { # [VAR=VALUE]... -- CMD...: sets M8_ENV_CMD
    M8_ENV_CMD=(env -i PATH="$PATH" HOME="${HOME:-/root}")
    local v
    for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TMPDIR M8_LOG_FLUSH_MS; do
        [ -n "${!v:-}" ] && M8_ENV_CMD+=("$v=${!v}")
    done
    while [ $# -gt 0 ] && [ "$1" != -- ]; do M8_ENV_CMD+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    M8_ENV_CMD+=("$@")
}
m8_clean_env() { m8_clean_cmd "$@"; "${M8_ENV_CMD[@]}"; }
m8_clean_exec() { m8_clean_cmd "$@"; exec "${M8_ENV_CMD[@]}"; }

# Every service has a name; its pid, log and address are kept here.
declare -A M8_SVC_PID=() M8_SVC_LOG=()

# m8_svc_listen NAME KIND ADDR ENVFILE [VAR=VALUE...] [-- ARGS...]
#   KIND fixture|example; ADDR unix:/path or 127.0.0.1:port; serves with --listen.
m8_svc_listen() {
    local name=$1 kind=$2 addr=$3 envf=$4 bin
    shift 4
    local -a vars=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    bin=$(m8_svc_bin "$kind")
    M8_SVC_LOG[$name]=$T_DIR/$name.log
    (cd "$T_DIR" && m8_clean_exec "${vars[@]}" -- "$bin" --listen "$addr" --env-file "$envf" "$@") \
        </dev/null >"$T_DIR/$name.out" 2>"${M8_SVC_LOG[$name]}" &
    M8_SVC_PID[$name]=$!
    M8_PIDS+=("$!")
}

# m8_svc_spawn NAME KIND SOCKET ENVFILE [VAR=VALUE...] [-- ARGS...]
#   Under spawn-fcgi: the listening socket is inherited on fd 0 (spawn-fcgi -n
#   execs the program, so the PID is the service's and stderr is kept).
m8_svc_spawn() {
    local name=$1 kind=$2 sock=$3 envf=$4 bin
    shift 4
    local -a vars=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    bin=$(m8_svc_bin "$kind")
    M8_SVC_LOG[$name]=$T_DIR/$name.log
    (cd "$T_DIR" && m8_clean_exec "${vars[@]}" -- "$SPAWN_FCGI" -n -s "$sock" -M 0660 \
        -- "$bin" --env-file "$envf" "$@") \
        </dev/null >"$T_DIR/$name.out" 2>"${M8_SVC_LOG[$name]}" &
    M8_SVC_PID[$name]=$!
    M8_PIDS+=("$!")
}

m8_svc_alive() { m8_alive "${M8_SVC_PID[$1]}"; }

m8_svc_stop() { # NAME [SECONDS]: SIGTERM; sets M8_RC (exit status) and M8_MS (time to exit)
    local pid=${M8_SVC_PID[$1]} t0
    M8_RC='' M8_MS=''
    t0=$(m8_now_ms)
    kill -TERM "$pid" 2>/dev/null
    if m8_wait_exit "$pid" "${2:-5}"; then
        M8_MS=$(( $(m8_now_ms) - t0 ))
        return 0
    fi
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    M8_MS=$(( $(m8_now_ms) - t0 ))
    return 1
}

m8_svc_diag() { # NAME: last lines of the service's stderr, as TAP diagnostics
    [ -s "${M8_SVC_LOG[$1]}" ] && t_diag "--- $1 stderr (last 15 lines)" "$(tail -n 15 "${M8_SVC_LOG[$1]}")"
}

# ------------------------------------------------------------------ HTTP (curl)
H_STATUS='' H_BODY=''
m8_http() { # METHOD URL [curl args...]: sets H_STATUS, H_BODY; headers via m8_hdr
    local m=$1 u=$2
    shift 2
    local -a x=()
    [ "$m" != GET ] && x=(-X "$m")
    : >"$T_DIR/h.hdrs"
    : >"$T_DIR/h.body"
    H_STATUS=$("$CURL" -sS --max-time 15 -H 'Expect:' "${x[@]}" -o "$T_DIR/h.body" \
        -D "$T_DIR/h.hdrs" -w '%{http_code}' "$@" "$u" 2>"$T_DIR/h.err") || H_STATUS=000
    H_BODY=$(cat "$T_DIR/h.body")
}

m8_hdr_in() { # FILE NAME: first value of header NAME (case-insensitive), CR stripped
    local want=${2,,} line k v
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%$'\r'}
        case $line in *:*) ;; *) continue ;; esac
        k=${line%%:*}
        if [ "${k,,}" = "$want" ]; then
            v=${line#*:}
            v=${v#"${v%%[![:space:]]*}"}
            printf '%s' "$v"
            return 0
        fi
    done <"$1"
    return 1
}

m8_hdr_count_in() { # FILE NAME: how many times the header appears
    local want=${2,,} line n=0
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%$'\r'}
        case $line in *:*) ;; *) continue ;; esac
        [ "$(printf '%s' "${line%%:*}" | tr 'A-Z' 'a-z')" = "$want" ] && n=$((n + 1))
    done <"$1"
    printf '%s' "$n"
}

m8_hdr() { m8_hdr_in "$T_DIR/h.hdrs" "$1"; }
m8_hdr_count() { m8_hdr_count_in "$T_DIR/h.hdrs" "$1"; }

# ------------------------------------------------------------------ CGI responses
C_STATUS='' C_BODY=''
m8_cgi_parse() { # FILE: a CGI response (headers, blank line, body) -> C_STATUS C_BODY, headers in FILE.hdrs
    local f=$1 line inhdr=1
    : >"$f.hdrs"
    : >"$f.body"
    C_STATUS=
    while IFS= read -r line || [ -n "$line" ]; do
        if [ $inhdr = 1 ]; then
            line=${line%$'\r'}
            if [ -z "$line" ]; then inhdr=0; continue; fi
            printf '%s\n' "$line" >>"$f.hdrs"
        else
            printf '%s\n' "$line" >>"$f.body"
        fi
    done <"$f"
    C_STATUS=$(m8_hdr_in "$f.hdrs" Status | cut -d' ' -f1)
    # CGI: no Status header means 200 (RFC 3875 6.3.3)
    [ -z "$C_STATUS" ] && [ -s "$f.hdrs" ] && C_STATUS=200
    C_BODY=$(cat "$f.body")
    M8_CGI_LAST=$f
}
m8_chdr() { m8_hdr_in "$M8_CGI_LAST.hdrs" "$1"; }
m8_chdr_count() { m8_hdr_count_in "$M8_CGI_LAST.hdrs" "$1"; }

# ------------------------------------------------------------------ nginx
m8_render() { # SRC DST KEY=VALUE...: replaces @KEY@ by VALUE; fails on a placeholder left over
    local src=$1 dst=$2 kv k v
    shift 2
    local -a sedargs=()
    for kv in "$@"; do
        k=${kv%%=*}
        v=${kv#*=}
        v=${v//\\/\\\\}
        v=${v//|/\\|}
        v=${v//&/\\&}
        sedargs+=(-e "s|@${k}@|${v}|g")
    done
    sed "${sedargs[@]}" "$src" >"$dst" || return 1
    if grep -n '@[A-Z_][A-Z_]*@' "$dst" | grep -v '^[0-9]*:[[:space:]]*#' >&2; then
        echo "m8_render: placeholder left in $dst" >&2
        return 1
    fi
}

# m8_nginx_prepare DIR: a private nginx prefix from contrib/nginx/standalone.conf
# (pid, logs, temp paths in DIR; sites from DIR/sites/*.conf).
m8_nginx_prepare() {
    local d=$1
    mkdir -p "$d/sites" "$d/snippets" "$d/tmp" || return 1
    cp "$(m8_nginx_confdir)/fastcgi_params" "$d/fastcgi_params" || return 1
    cp "$M8_CONTRIB_NGINX/fcgi-m8-fastcgi.conf" "$d/snippets/fcgi-m8-fastcgi.conf" || return 1
    m8_render "$M8_CONTRIB_NGINX/standalone.conf" "$d/nginx.conf" \
        PREFIX="$d" USER="$(id -un)"
}

m8_nginx_confdir() { # where the installed nginx keeps fastcgi_params
    local c
    [ -f /etc/nginx/fastcgi_params ] && { echo /etc/nginx; return; }
    c=$("$NGINX" -V 2>&1 | sed -n 's/.*--conf-path=\([^ ]*\).*/\1/p')
    dirname "${c:-/etc/nginx/nginx.conf}"
}

m8_nginx_site() { # DIR NAME TEMPLATE KEY=VALUE...: renders contrib/nginx/TEMPLATE to DIR/sites/NAME.conf
    local d=$1 name=$2 tpl=$3
    shift 3
    m8_render "$M8_CONTRIB_NGINX/$tpl" "$d/sites/$name.conf" "$@"
}

m8_nginx_start() { # DIR: tests the config, starts nginx (daemon), waits for its pid file
    local d=$1
    if ! env -u NGINX "$NGINX" -t -q -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" 2>"$d/nginx-t.err"; then
        cat "$d/nginx-t.err" >&2
        return 1
    fi
    env -u NGINX "$NGINX" -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" 2>>"$d/error.log" || return 1
    M8_NGINX_DIRS+=("$d")
    m8_wait_for 10 test -s "$d/nginx.pid"
}

m8_nginx_stop() { # DIR: stops the nginx started in DIR (by its PID)
    local d=$1 pid
    [ -s "$d/nginx.pid" ] || return 0
    pid=$(cat "$d/nginx.pid")
    kill -TERM "$pid" 2>/dev/null
    m8_wait_for 5 m8_exited "$pid" || kill -KILL "$pid" 2>/dev/null
    rm -f "$d/nginx.pid"
}

# ------------------------------------------------------------------ FastCGI without a web server
# m8_fcgi_req ADDR METHOD URI [VAR=VALUE...]: one request with cgi-fcgi
# (libfcgi-bin) to ADDR (a socket path or host:port); the body, if any, comes
# from stdin (set CONTENT_LENGTH).  Writes the response to $T_DIR/f.resp and
# parses it (C_STATUS, C_BODY, m8_chdr).
M8_CGI_FCGI=$(m8_find_prog cgi-fcgi "${CGI_FCGI:-}") || M8_CGI_FCGI=
m8_fcgi_req() {
    local addr=$1 m=$2 uri=$3 path qs=
    shift 3
    path=${uri%%\?*}
    [ "$path" != "$uri" ] && qs=${uri#*\?}
    env -i GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 SERVER_SOFTWARE=m8-tests \
        SERVER_NAME=localhost SERVER_PORT=80 REMOTE_ADDR=127.0.0.1 REMOTE_PORT=40000 \
        HTTP_HOST=localhost REQUEST_METHOD="$m" REQUEST_URI="$uri" SCRIPT_NAME="$path" \
        DOCUMENT_URI="$path" QUERY_STRING="$qs" "$@" \
        "$M8_CGI_FCGI" -bind -connect "$addr" >"$T_DIR/f.resp" 2>"$T_DIR/f.err"
    local rc=$?
    m8_cgi_parse "$T_DIR/f.resp"
    return $rc
}

# ------------------------------------------------------------------ Apache 2.4
# m8_apache_prepare DIR, m8_apache_program DIR KIND, m8_apache_site DIR NAME
# TEMPLATE KEY=VALUE..., m8_apache_start DIR, m8_apache_stop DIR: a private
# Apache from contrib/apache/standalone.conf (ServerRoot, pid, logs, sockets
# in DIR; sites from DIR/sites/*.conf, their Listen lines in DIR/ports.conf).
# As root the children run as M8_APACHE_USER (www-data): DIR is made
# world-traversable and checked to be reachable by that user.
APACHE2=$(m8_find_prog apache2 "${APACHE2:-}") || APACHE2=
M8_CONTRIB_APACHE=$top_srcdir/contrib/apache
M8_APACHE_USER='' M8_APACHE_GROUP=''
M8_APACHE_BIN=''
declare -A M8_APACHE_PID=()

m8_apache_modules() { # the directory holding mod_proxy_fcgi.so
    local d
    for d in "${APACHE_MODULES:-}" /usr/lib/apache2/modules /usr/lib64/httpd/modules \
        /usr/lib/httpd/modules /usr/libexec/apache2; do
        [ -n "$d" ] && [ -f "$d/mod_proxy_fcgi.so" ] && { printf '%s\n' "$d"; return 0; }
    done
    return 1
}

m8_apache_prepare() { # DIR
    local d=$1 u g mods
    mods=$(m8_apache_modules) ||
        { echo "m8_apache_prepare: no Apache module directory" >&2; return 1; }
    if [ "$(id -u)" = 0 ]; then
        u=www-data
        id -u "$u" >/dev/null 2>&1 || u=nobody
        g=$(id -gn "$u") || return 1
        # Apache's children must reach DIR (T_DIR is mktemp's 0700).
        [ -n "$T_DIR" ] && chmod o+x "$T_DIR"
    else
        u=$(id -un)
        g=$(id -gn)
    fi
    M8_APACHE_USER=$u M8_APACHE_GROUP=$g
    # No DIR/fcgid: mod_fcgid creates it for its user only when it is missing.
    mkdir -p "$d/sites" "$d/run" "$d/htdocs" "$d/bin" "$d/etc" || return 1
    chmod 755 "$d" "$d/sites" "$d/htdocs" "$d/bin" "$d/etc" || return 1
    : >"$d/ports.conf" || return 1
    m8_render "$M8_CONTRIB_APACHE/standalone.conf" "$d/httpd.conf" \
        PREFIX="$d" MODULES="$mods" USER="$u" GROUP="$g" || return 1
    if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null &&
        ! runuser -u "$u" -- test -x "$d/bin"; then
        echo "m8_apache_prepare: $u cannot reach $d (a parent directory is not traversable)" >&2
        return 1
    fi
}

# m8_apache_program DIR KIND: copies the program (m8_svc_bin KIND) into
# DIR/bin, where Apache's user may run it; sets M8_APACHE_BIN.  A libtool
# wrapper script (shared build) is replaced by the real binary next to a copy
# of the uninstalled libraries and a two-line script that points the loader
# at them (an installed program needs neither).
m8_apache_program() {
    local d=$1 src name real
    src=$(m8_svc_bin "$2")
    name=$(basename "$src")
    if head -c 2 "$src" | grep -q '^#!' && grep -q 'libtool' "$src"; then
        real=$(dirname "$src")/.libs/$name
        [ -x "$real" ] ||
            { echo "m8_apache_program: no $real behind the libtool wrapper" >&2; return 1; }
        mkdir -p "$d/bin/lib" || return 1
        cp "$real" "$d/bin/$name.bin" || return 1
        cp -P "$top_builddir"/lib/.libs/*.so* "$d/bin/lib/" || return 1
        printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/bin/lib exec %s/bin/%s.bin "$@"\n' "$d" "$d" "$name" \
            >"$d/bin/$name" || return 1
        chmod -R a+rX "$d/bin" && chmod 755 "$d/bin/$name" "$d/bin/$name.bin" || return 1
    else
        cp "$src" "$d/bin/$name" && chmod 755 "$d/bin/$name" || return 1
    fi
    M8_APACHE_BIN=$d/bin/$name
}

m8_apache_site() { # DIR NAME TEMPLATE KEY=VALUE...: contrib/apache/TEMPLATE -> DIR/sites/NAME.conf
    local d=$1 name=$2 tpl=$3 kv
    shift 3
    m8_render "$M8_CONTRIB_APACHE/$tpl" "$d/sites/$name.conf" "$@" || return 1
    for kv in "$@"; do
        case $kv in
            LISTEN=*) grep -qxF "Listen ${kv#LISTEN=}" "$d/ports.conf" ||
                printf 'Listen %s\n' "${kv#LISTEN=}" >>"$d/ports.conf" ;;
        esac
    done
}

m8_apache_start() { # DIR: tests the config, starts Apache, waits for its pid file
    local d=$1 pid
    if ! env -i PATH="$PATH" "$APACHE2" -t -d "$d" -f "$d/httpd.conf" >"$d/apache-t.err" 2>&1; then
        cat "$d/apache-t.err" >&2
        return 1
    fi
    # In the foreground, as this shell's child: its PID is the master's, and
    # the shell reaps it.  If the test ends early, m8_cleanup stops the guard
    # started next to it (SIGTERM, KILL after 3 s), and the guard stops
    # Apache's whole process tree within 2 s: a master killed alone would
    # leave its children (and mod_fcgid's programs) behind.
    env -i PATH="$PATH" "$APACHE2" -d "$d" -f "$d/httpd.conf" -D FOREGROUND \
        </dev/null >>"$d/apache-start.err" 2>&1 &
    pid=$!
    (
        trap 'm8_apache_kill_tree "$d" "$pid" 2; exit 0' TERM
        while :; do sleep 1 & wait $!; done
    ) </dev/null >/dev/null 2>&1 &
    M8_PIDS+=("$!" "$pid") # the guard first; then the master is only reaped
    M8_APACHE_PID[$d]=$pid
    if ! m8_wait_for 10 test -s "$d/run/httpd.pid" || ! m8_alive "$pid"; then
        cat "$d/apache-start.err" >&2
        m8_apache_stop "$d"
        return 1
    fi
}

m8_apache_tree() { # PID: PID and its descendants, one per line
    local c
    printf '%s\n' "$1"
    for c in $(pgrep -P "$1" 2>/dev/null); do m8_apache_tree "$c"; done
}

# m8_apache_kill_tree DIR PID SECONDS: SIGTERM to the master (Apache's
# graceful stop: children, mod_cgid's daemon, mod_fcgid's programs), then
# SIGKILL to whatever of the tree is left after SECONDS.  Acts only when PID
# is still the Apache of DIR.
m8_apache_kill_tree() {
    local d=$1 pid=$2 p rc=0
    local -a tree=() left=()
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$d/httpd.conf" || return 0
    mapfile -t tree < <(m8_apache_tree "$pid")
    kill -TERM "$pid" 2>/dev/null
    m8_wait_for "$3" m8_exited "$pid" || rc=1
    for p in "${tree[@]}"; do
        m8_alive "$p" && mapfile -t -O "${#left[@]}" left < <(m8_apache_tree "$p")
    done
    for p in "${left[@]}"; do
        kill -KILL "$p" 2>/dev/null && rc=1
    done
    return $rc
}

# m8_apache_stop DIR: stops the Apache started in DIR; 15 s to stop by itself,
# then SIGKILL to what is left of its tree (and a return of 1).
m8_apache_stop() {
    local d=$1 pid=${M8_APACHE_PID[$1]:-}
    [ -n "$pid" ] || return 0
    unset 'M8_APACHE_PID[$d]'
    m8_apache_kill_tree "$d" "$pid" 15
    local rc=$?
    wait "$pid" 2>/dev/null
    return $rc
}

# ------------------------------------------------------------------ MariaDB and PostgreSQL
# Real servers for the database tests (doc/design.md#testing), each in its own DIR:
#   m8_have_mariadb, m8_have_pg            the server programs are installed
#   m8_mariadb_start DIR PORT, m8_mariadb_stop DIR, m8_mariadb_sql DIR SQL
#   m8_pg_start DIR PORT, m8_pg_stop DIR, m8_pg_sql DIR PORT SQL
#   m8_db_create KIND DIR PORT DB USER PASSWORD   (KIND Mysql|Postgres)
# The data stays in DIR/data across a stop and a start (initialised by the
# first start), the server listens on 127.0.0.1:PORT and on a unix socket in
# DIR, and runs as this shell's child.  A guard process started next to it
# stops it in the EXIT trap (MariaDB: SIGTERM; PostgreSQL: SIGINT, its fast
# shutdown, which ends open sessions), then SIGKILLs what is left.
declare -A M8_DB_PID=() M8_DB_GUARD=()

m8_pg_bindir() { # the newest /usr/lib/postgresql/N/bin holding postgres, or pg_config's
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] && [ -x "$d/postgres" ] && { printf '%s\n' "$d"; return 0; }
    d=$(pg_config --bindir 2>/dev/null) && [ -x "$d/postgres" ] && { printf '%s\n' "$d"; return 0; }
    return 1
}
m8_have_mariadb() {
    m8_find_prog mariadbd >/dev/null && m8_find_prog mariadb-install-db >/dev/null &&
        m8_find_prog mariadb >/dev/null
}
m8_have_pg() {
    local b
    b=$(m8_pg_bindir) && [ -x "$b/initdb" ] && m8_find_prog psql >/dev/null || return 1
    # PostgreSQL refuses to run as root: it runs as the postgres user then.
    [ "$(id -u)" != 0 ] || { id -u postgres >/dev/null 2>&1 && m8_find_prog setpriv >/dev/null; }
}

# m8_db_guard DIR PID SIGNAL: the guard that stops PID in the EXIT trap.
m8_db_guard() {
    local d=$1 pid=$2 sig=$3
    (
        trap 'm8_db_kill "$pid" "$sig" 10; exit 0' TERM
        while :; do sleep 1 & wait $!; done
    ) </dev/null >/dev/null 2>&1 &
    M8_DB_GUARD[$d]=$!
    M8_DB_PID[$d]=$pid
    M8_PIDS+=("$!" "$pid") # the guard first; then the server is only reaped
}

m8_db_kill() { # PID SIGNAL SECONDS: SIGNAL, then SIGKILL to PID and its children after SECONDS
    local pid=$1 p
    m8_alive "$pid" || return 0
    local -a kids=()
    mapfile -t kids < <(pgrep -P "$pid" 2>/dev/null)
    kill -"$2" "$pid" 2>/dev/null
    m8_wait_for "$3" m8_exited "$pid" && return 0
    for p in "$pid" "${kids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    return 1
}

m8_db_stop() { # DIR SIGNAL: stops the server of DIR and its guard
    local d=$1 pid=${M8_DB_PID[$1]:-} g=${M8_DB_GUARD[$1]:-} rc=0
    [ -n "$pid" ] || return 0
    unset 'M8_DB_PID[$d]' 'M8_DB_GUARD[$d]'
    m8_db_kill "$pid" "$2" 30 || rc=1
    wait "$pid" 2>/dev/null
    [ -n "$g" ] && m8_kill_wait "$g" 3
    return $rc
}

m8_mariadb_start() { # DIR PORT
    local d=$1 port=$2 bin pid n
    local -a user=()
    bin=$(m8_find_prog mariadbd) || return 1
    [ "$(id -u)" = 0 ] && user=(--user=root)
    # Its own tmpdir: bootstraps running at once in a shared /tmp can collide
    # on their temporary tables ("Could not remove temporary table").
    mkdir -p "$d/tmp" || return 1
    if [ ! -d "$d/data/mysql" ]; then
        mariadb-install-db --no-defaults "${user[@]}" --datadir="$d/data" --tmpdir="$d/tmp" \
            --skip-test-db --auth-root-authentication-method=normal >"$d/install.log" 2>&1 ||
            { echo "# m8_mariadb_start: mariadb-install-db failed, $d/install.log:" >&2
              cat "$d/install.log" >&2; return 1; }
    fi
    rm -f "$d/sock" "$d/pid"
    # A test server needs no durability (PostgreSQL's below runs with
    # fsync=off): commits do not wait for the disk, which a busy CI machine
    # can hold for seconds.
    "$bin" --no-defaults "${user[@]}" --datadir="$d/data" --tmpdir="$d/tmp" --socket="$d/sock" \
        --port="$port" --bind-address=127.0.0.1 --pid-file="$d/pid" --log-error="$d/mariadb.err" \
        --skip-name-resolve --max-connections=500 --innodb-buffer-pool-size=64M \
        --innodb-doublewrite=0 --innodb-flush-log-at-trx-commit=0 \
        </dev/null >>"$d/mariadb.out" 2>&1 &
    pid=$!
    m8_db_guard "$d" "$pid" TERM
    n=600
    while ! m8_mariadb_sql "$d" "SELECT 1" >/dev/null 2>&1; do
        n=$((n - 1))
        if [ $n -le 0 ] || ! m8_alive "$pid"; then
            echo "# m8_mariadb_start: mariadbd did not answer on $d/sock, $d/mariadb.err:" >&2
            tail -n 20 "$d/mariadb.err" >&2
            m8_mariadb_stop "$d"
            return 1
        fi
        sleep 0.05
    done
}
m8_mariadb_stop() { m8_db_stop "$1" TERM; }
m8_mariadb_sql() { # DIR SQL: runs SQL as root over the unix socket (tab-separated rows, no header)
    mariadb --no-defaults -S "$1/sock" -u root -N -B -e "$2"
}

m8_pg_start() { # DIR PORT
    local d=$1 port=$2 b pid n
    local -a as=()
    b=$(m8_pg_bindir) || return 1
    mkdir -p "$d" || return 1
    if [ "$(id -u)" = 0 ]; then
        as=(setpriv --reuid=postgres --regid=postgres --clear-groups --)
        chown postgres: "$d" || return 1
        # postgres must reach DIR (T_DIR is mktemp's 0700).
        [ -n "$T_DIR" ] && chmod o+x "$T_DIR"
    fi
    if [ ! -f "$d/data/PG_VERSION" ]; then
        "${as[@]}" "$b/initdb" -D "$d/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -N \
            -E UTF8 --locale=C \
            >"$d/initdb.log" 2>&1 || { cat "$d/initdb.log" >&2; return 1; }
    fi
    "${as[@]}" "$b/postgres" -D "$d/data" -p "$port" -k "$d" -c listen_addresses=127.0.0.1 \
        -c fsync=off -c full_page_writes=off -c max_connections=300 \
        </dev/null >>"$d/postgres.log" 2>&1 &
    pid=$!
    m8_db_guard "$d" "$pid" INT
    n=600
    while ! m8_pg_sql "$d" "$port" "SELECT 1" >/dev/null 2>&1; do
        n=$((n - 1))
        if [ $n -le 0 ] || ! m8_alive "$pid"; then
            tail -n 20 "$d/postgres.log" >&2
            m8_pg_stop "$d"
            return 1
        fi
        sleep 0.05
    done
}
m8_pg_stop() { m8_db_stop "$1" INT; }
m8_pg_sql() { # DIR PORT SQL: runs SQL as postgres over the unix socket (unaligned rows, no header)
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$1" -p "$2" -U postgres -d "${M8_PG_DB:-postgres}" -c "$3"
}

# m8_db_create KIND DIR PORT DB USER PASSWORD: the application's database and
# its user (all privileges on it), on a server started above.
m8_db_create() {
    local kind=$1 d=$2 port=$3 db=$4 user=$5 pw=$6
    if [ "$kind" = Mysql ]; then
        m8_mariadb_sql "$d" "CREATE DATABASE $db; CREATE USER '$user'@'%' IDENTIFIED BY '$pw';
            GRANT ALL PRIVILEGES ON $db.* TO '$user'@'%';"
    else
        m8_pg_sql "$d" "$port" "CREATE ROLE $user LOGIN PASSWORD '$pw'" &&
            m8_pg_sql "$d" "$port" "CREATE DATABASE $db OWNER $user"
    fi
}

# ------------------------------------------------------------------ fcgim8d
# m8_fcgim8d_start NAME SERVICE ENVFILE [VAR=VALUE...] -- [fcgim8d options]:
# fcgim8d running SERVICE (fixture|example|a path) on unix:$T_DIR/NAME.sock
# with a clean environment; its log is $T_DIR/NAME.log, its pid
# M8_FCGIM8D_PID[NAME].  m8_fcgim8d_wait_ready NAME N [SECONDS]: waits for
# its "ready: N workers" line.
declare -A M8_FCGIM8D_PID=()
m8_fcgim8d_start() {
    local name=$1 svc=$2 envf=$3
    shift 3
    local -a vars=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    (cd "$T_DIR" && m8_clean_exec "${vars[@]}" -- "$top_builddir/src/fcgim8d" \
        --listen "unix:$T_DIR/$name.sock" --env-file "$envf" "$@" -- "$(m8_svc_bin "$svc")") \
        </dev/null >"$T_DIR/$name.out" 2>"$T_DIR/$name.log" &
    M8_FCGIM8D_PID[$name]=$!
    M8_PIDS+=("$!")
}
m8_fcgim8d_log_has() { grep -q -- "$2" "$T_DIR/$1.log"; }
m8_fcgim8d_wait_ready() { m8_wait_for "${3:-15}" m8_fcgim8d_log_has "$1" "\"msg\":\"ready: $2 workers"; }
