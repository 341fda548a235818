#!/bin/bash
# bench/callgrind.sh [BUILD_DIR] - user-space instructions per request in a
# worker's serving loop, counted by valgrind's callgrind.  The count repeats
# within 0.1 % run after run whatever else the machine does, so a change to
# the request path can be measured on its own, where CPU time per request
# moves more between two runs than the change does
# (bench/README.md#instructions-per-request).  The kernel's side (recv, send,
# epoll_wait, wake-ups) is not counted: bench/e2e.sh measures it.
#
# The example service (examples/item-service, this build's) serves on a unix
# socket with --threads 1 under callgrind, collecting only inside its serving
# loop (the start, the settings and the key loading are left out).  A FastCGI
# client in python3 sends it the parameters nginx's fastcgi_params send for
# the route, on one kept connection: M8_BENCH_CG_FEW (200) requests in one run,
# M8_BENCH_CG_MANY (1200) in another; the difference over the difference in
# requests is what one request costs.  Routes: /ping, and /api/items/ with one
# RS256 token (from fcgim8-token; verified-token cache hits after the first).
# M8_BENCH_CG_TOP=N also prints each route's N costliest functions per request,
# by their own instructions (without those of the functions they call; these
# add up to the total).  Needs valgrind, python3, openssl.
set -eu
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
b=$(cd "${1:-.}" && pwd)
top_builddir=$b
export top_srcdir top_builddir
. "$top_srcdir/tests/integration/lib.sh"
unset M8_LOG_FLUSH_MS # as deployed (lib.sh makes the tests' services write each line at once)
few=${M8_BENCH_CG_FEW:-200}
many=${M8_BENCH_CG_MANY:-1200}
top=${M8_BENCH_CG_TOP:-0}
die() { echo "bench/callgrind.sh: $*" >&2; exit 2; }
for t in valgrind callgrind_annotate python3 openssl; do
    command -v "$t" >/dev/null || die "needs $t"
done
if [ ! -x "$b/src/fcgim8-token" ] || [ ! -e "$b/examples/item-service/item-service" ]; then
    die "build first (no $b/src/fcgim8-token or examples/item-service)"
fi
[ "$many" -gt "$few" ] || die "M8_BENCH_CG_MANY must be above M8_BENCH_CG_FEW"
m8_init callgrind
d=$T_DIR

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa.pem" 2>/dev/null
openssl pkey -in "$d/rsa.pem" -pubout -out "$d/rsa.pub"
token=$("$b/src/fcgim8-token" mint --alg RS256 --key "$d/rsa.pem" --exp 3600)
# The tests' settings (lib.sh), RS256 with the key above, as bench/e2e.sh.
m8_write_env "$d/svc.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    ACCESS_PUBLIC_KEY_FILE="$d/rsa.pub"

# client SOCKET COUNT PATH [TOKEN]: COUNT requests, each answered (its
# END_REQUEST read) before the next; exits 1 unless every one was a 200.
client() {
    python3 - "$@" <<'EOF'
import socket, struct, sys
path, count, route = sys.argv[1], int(sys.argv[2]), sys.argv[3]
token = sys.argv[4] if len(sys.argv) > 4 else ""

def length(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)

def record(kind, content):
    pad = -len(content) % 8
    return struct.pack(">BBHHBx", 1, kind, 1, len(content), pad) + content + bytes(pad)

params = [("QUERY_STRING", ""), ("REQUEST_METHOD", "GET"), ("CONTENT_TYPE", ""),
          ("CONTENT_LENGTH", ""), ("SCRIPT_NAME", route), ("REQUEST_URI", route),
          ("DOCUMENT_URI", route), ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
          ("SERVER_PROTOCOL", "HTTP/1.1"), ("REQUEST_SCHEME", "http"),
          ("GATEWAY_INTERFACE", "CGI/1.1"), ("SERVER_SOFTWARE", "nginx/1.22.1"),
          ("REMOTE_ADDR", "127.0.0.1"), ("REMOTE_PORT", "40000"), ("REMOTE_USER", ""),
          ("SERVER_ADDR", "127.0.0.1"), ("SERVER_PORT", "8080"), ("SERVER_NAME", "localhost"),
          ("REDIRECT_STATUS", "200"), ("HTTP_PROXY", ""), ("HTTP_HOST", "127.0.0.1:8080")]
if token:
    params.append(("HTTP_AUTHORIZATION", "Bearer " + token))
stream = b"".join(length(len(k)) + length(len(v.encode())) + k.encode() + v.encode()
                  for k, v in params)
request = (record(1, struct.pack(">HB5x", 1, 1)) + record(4, stream) + record(4, b"")
           + record(5, b""))
s = socket.socket(socket.AF_UNIX)
s.connect(path)
pending = b""
for _ in range(count):
    s.sendall(request)
    out, ended = b"", False
    while not ended:
        while len(pending) >= 8:
            _, kind, _, clen, plen = struct.unpack(">BBHHB", pending[:7])
            if len(pending) < 8 + clen + plen:
                break
            if kind == 6:
                out += pending[8:8 + clen]
            pending = pending[8 + clen + plen:]
            if kind == 3:
                ended = True
                break
        if not ended:
            data = s.recv(65536)
            if not data:
                sys.exit("the service closed the connection")
            pending += data
    if not out.startswith(b"Status: 200"):
        sys.exit("not a 200: " + out[:80].decode(errors="replace"))
EOF
}

# measure COUNT PATH [TOKEN]: callgrind's output file for COUNT requests
measure() {
    local n=$1 sock="$d/svc.$1.sock" out="$d/cg.$1"
    rm -f "$sock"
    env -i PATH="$PATH" HOME="$d" M8_LOG_LEVEL=info \
        "$b/libtool" --mode=execute valgrind --tool=callgrind --toggle-collect=worker_main \
        --callgrind-out-file="$out" "$b/examples/item-service/item-service" \
        --listen "unix:$sock" --threads 1 --env-file "$d/svc.env" >"$d/svc.out" 2>"$d/svc.log" &
    local pid=$! i
    for ((i = 0; i < 300; i++)); do
        [ -S "$sock" ] && break
        sleep 0.1
    done
    [ -S "$sock" ] || { tail -5 "$d/svc.log" >&2; die "the service did not start under valgrind"; }
    client "$sock" "$n" "${@:2}" || { kill "$pid"; wait "$pid" 2>/dev/null; die "the client failed"; }
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    [ -s "$out" ] || die "callgrind wrote nothing"
    printf '%s\n' "$out"
}

total() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }
# functions FILE: "Ir<TAB>function" for each function (its own instructions)
functions() {
    callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null |
        awk '/^ *[0-9,]+ +\(/ { v = $1; gsub(",", "", v); $1 = ""; $2 = ""; sub(/^ +/, "")
                               sub(/ \[.*/, ""); n = split($0, a, ":"); print v "\t" a[n] }'
}

echo "fcgi-m8 instructions per request (callgrind, user space, --threads 1, $((many - few)) requests): $(valgrind --version)"
for route in /ping /api/items/; do
    tok=
    [ "$route" = /ping ] || tok=$token
    a=$(measure "$few" "$route" ${tok:+"$tok"})
    z=$(measure "$many" "$route" ${tok:+"$tok"})
    label=$route
    [ -n "$tok" ] && label="$route RS256 (cached)"
    printf '%-28s %8d\n' "$label" $(( ($(total "$z") - $(total "$a")) / (many - few) ))
    if [ "$top" -gt 0 ]; then
        join -t $'\t' -1 2 -2 2 -a 2 -e 0 -o 0,1.1,2.1 \
            <(functions "$a" | sort -t $'\t' -k2,2) <(functions "$z" | sort -t $'\t' -k2,2) |
            awk -F'\t' -v n=$((many - few)) '{ d = ($3 - $2) / n; if (d >= 1) printf "    %8.0f  %s\n", d, $1 }' |
            sort -rn | grep -v 'PROGRAM TOTALS' | head -n "$top"
    fi
done
