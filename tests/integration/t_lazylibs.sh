#!/bin/bash
# t_lazylibs.sh - libcurl, libmariadb and libpq are loaded on first use, not
# linked (doc/design.md#libraries-loaded-on-first-use): the example service
# under fcgim8d without JWKS_URI or a database maps none of them, in the
# daemon or a worker; with JWKS_URI only the daemon (its sidecar fetches the
# key set) maps libcurl, and a token signed by a served key is accepted.
# Requests go straight to the pool's unix socket with cgi-fcgi.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

EX=$(m8_svc_bin example)
D=$top_builddir/src/fcgim8d
TOK=$top_builddir/src/fcgim8-token
PY=/usr/bin/python3
[ -n "$M8_CGI_FCGI" ] || t_skip_all "cgi-fcgi is not installed (libfcgi-bin)"
command -v openssl >/dev/null || t_skip_all "openssl is not installed"
m8_init t_lazylibs
[ -x "$EX" ] && [ -x "$D" ] && [ -x "$TOK" ] || t_bail "programs not built ($EX, $D, $TOK)"

LIBS_RE='/lib(curl|mariadb|pq)\.so'

# The program behind the libtool wrapper, if any: what ldd must read.
real=$EX
d=$(dirname "$EX")
[ -x "$d/.libs/$(basename "$EX")" ] && real=$d/.libs/$(basename "$EX")
out=$(LD_LIBRARY_PATH=$top_builddir/lib/.libs ldd "$real" 2>&1)
t_ok $? "ldd reads the example service" "$out"
t_is "$(grep -E 'lib(curl|mariadb|pq)\.so' <<<"$out")" "" \
    "ldd: the example service needs none of libcurl, libmariadb, libpq"
t_is "$(ldd "$D" 2>&1 | grep -E 'lib(curl|mariadb|pq)\.so')" "" "ldd: nor does fcgim8d"

children() { # PID: its child processes, one a line
    local f
    for f in /proc/[0-9]*/stat; do
        awk -v p="$1" '{ sub(/^.*\) /, ""); if ($2 == p) { split(FILENAME, a, "/"); print a[3] } }' \
            "$f" 2>/dev/null
    done
}
maps_of() { # PID: the client libraries it maps, one a line (sorted)
    grep -oE "$LIBS_RE" "/proc/$1/maps" 2>/dev/null | sed 's|^/||' | sort -u | tr '\n' ' '
}

# pool NAME ENVFILE: fcgim8d (2 workers) serving the example on $T_DIR/NAME.sock.
declare -A DPID=()
pool() {
    (cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$T_DIR/$1.sock" --env-file "$2" \
        --workers 2 --threads 1 -- "$EX") </dev/null >"$T_DIR/$1.out" 2>"$T_DIR/$1.log" &
    DPID[$1]=$!
    M8_PIDS+=("$!")
    m8_wait_sock "$T_DIR/$1.sock" 15 || {
        t_diag "$(tail -n 20 "$T_DIR/$1.log")"
        t_bail "fcgim8d $1 does not listen"
    }
}
req() { # NAME URI [VAR=VALUE...]: a request to the pool NAME -> C_STATUS, C_BODY
    local n=$1 u=$2
    shift 2
    m8_fcgi_req "$T_DIR/$n.sock" GET "$u" "$@"
}
two_workers() { [ "$(children "${DPID[$1]}" | wc -l)" -ge 2 ]; }

# ---------------------------------------------------------------- no JWKS_URI, no database
m8_write_env "$T_DIR/A.env"
pool A "$T_DIR/A.env"
m8_wait_for 15 two_workers A || t_bail "the workers of A do not start"
for i in 1 2 3 4; do req A /api/health/; done
t_is "$C_STATUS" 200 "A (HS256, no database): the service answers through fcgim8d"
t_is "$(maps_of "${DPID[A]}")" "" "A: fcgim8d maps none of libcurl, libmariadb, libpq"
w=0
for p in $(children "${DPID[A]}"); do
    t_is "$(maps_of "$p")" "" "A: worker $((++w)) maps none of libcurl, libmariadb, libpq"
done
m8_kill_wait "${DPID[A]}" 10

# ---------------------------------------------------------------- JWKS_URI: the sidecar fetches
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null &&
    openssl pkey -in "$T_DIR/rsa.pem" -pubout -out "$T_DIR/rsa.pub" 2>/dev/null ||
    t_bail "openssl: cannot make a key"
JD=$T_DIR/jwks
mkdir -p "$JD"
"$TOK" jwks --kid k1 "$T_DIR/rsa.pub" >"$JD/jwks.json" || t_bail "fcgim8-token jwks failed"
"$PY" "$top_srcdir/tests/tools/jwks_server.py" serve "$JD" --port 0 </dev/null >"$T_DIR/jwks.out" 2>&1 &
M8_PIDS+=("$!")
m8_wait_for 15 test -s "$JD/port" || t_bail "the JWKS server did not start"
m8_write_env "$T_DIR/J.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    JWKS_URI="http://127.0.0.1:$(cat "$JD/port")/jwks.json"
pool J "$T_DIR/J.env"
m8_wait_for 15 two_workers J || t_bail "the workers of J do not start"
m8_wait_for 15 test -s "$JD/hits" || t_bail "the sidecar never fetched the JWKS"
T1=$("$TOK" mint --alg RS256 --key "$T_DIR/rsa.pem" --kid k1 --exp 600) || t_bail "mint failed"
req J /api/items/ HTTP_AUTHORIZATION="Bearer $T1"
t_is "$C_STATUS" 200 "J (RS256 from JWKS_URI): a token signed by a served key is accepted"
t_is "$(maps_of "${DPID[J]}")" "libcurl.so " "J: fcgim8d (its sidecar fetches the JWKS) maps libcurl"
w=0
for p in $(children "${DPID[J]}"); do
    t_is "$(maps_of "$p")" "" "J: worker $((++w)) (keys from the sidecar) maps none of them"
done
m8_kill_wait "${DPID[J]}" 10

t_done
