#!/bin/bash
# t_cissuer_stream.sh - the issuer's signed event stream
# (doc/issuer.md#event-stream) as users run it: fcgim8-issuer under fcgim8d
# behind a real nginx, on a real PostgreSQL and a real MariaDB started here,
# with the example service as a STATEFUL consumer under fcgim8d whose
# sidecar follows the issuer's stream.  On each database: the consumer check
# (401 without a credential, 403 without the event-stream scope); 200
# text/event-stream through nginx's default buffering (X-Accel-Buffering),
# heartbeats; login, the consumer accepts the token; logout at the issuer,
# then every worker of the consumer refuses the token (the time from the
# logout's answer to the first refusal is reported, not asserted); the
# logout's event replayed after a Last-Event-ID with a signature that
# Python's json/hmac verify; a gap for an id that is not the outbox's; a
# second fcgim8-issuer process on the same database serving the same event
# ids; a client that goes away frees its stream.
# Ports 19300-19339 (databases) and 19980-19999 (nginx).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import json, hmac' 2>/dev/null || t_skip_all "python3 is not installed"
m8_init t_cissuer_stream

ISSUER=$top_builddir/src/fcgim8-issuer
D=$top_builddir/src/fcgim8d
[ -x "$ISSUER" ] && [ -x "$D" ] && [ -x "$(m8_svc_bin example)" ] || t_bail "programs not built"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PW='Db-Test-Pass-1234!x'
SU=admin@example.com
SU_PW='Superuser-Pass-1234!'
U_PW='Reader-Pass-1234!'
SIGN_KEY='Stream-Signing-Key_0123456789-abcdef!'
C1_SECRET='Consumer-One-Secret-0123456789abcdef!'
C2_SECRET='Consumer-Two-Secret-0123456789abcdef!'

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null ||
    t_bail "openssl cannot make an RSA key"
chmod 600 "$T_DIR/rsa.pem"

KINDS=()
for kind in Postgres Mysql; do
    lk=${kind,,}
    if [ $kind = Mysql ]; then
        [[ $VERSION_OUT == *" mysql"* ]] || { t_skip "$lk: the stream" "built --without-mariadb"; continue; }
        m8_have_mariadb || { t_skip "$lk: the stream" "mariadb-server not installed"; continue; }
    else
        [[ $VERSION_OUT == *" postgres"* ]] || { t_skip "$lk: the stream" "built --without-postgresql"; continue; }
        m8_have_pg || { t_skip "$lk: the stream" "postgresql not installed"; continue; }
    fi
    KINDS+=("$kind")
done
[ ${#KINDS[@]} -gt 0 ] || t_done

declare -A DBPORT=() ISS=() ISS2=() CONS=()
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
site() { # NAME -> M8_PORT: an nginx site for unix:$T_DIR/NAME.sock
    m8_pick_port 19980 19999 || t_bail "no free port"
    m8_nginx_site "$NG" "$1" fcgi-m8-unix.conf NAME="$1" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/$1.sock" || t_bail "cannot render the site"
}
for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    m8_pick_port 19300 19339 || t_bail "no free port"
    DBPORT[$kind]=$M8_PORT
    site "iss_$lk" && ISS[$kind]=http://127.0.0.1:$M8_PORT
    site "iss2_$lk" && ISS2[$kind]=http://127.0.0.1:$M8_PORT
    site "cons_$lk" && CONS[$kind]=http://127.0.0.1:$M8_PORT
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }
cookie_of() { sed -n 's/^[Ss]et-[Cc]ookie: refresh_token=\([^;]*\);.*/\1/p' "$1" | tr -d '\r' | tail -n 1; }
login() { # BASE EMAIL PASSWORD
    m8_http POST "$1/user/login/access-token" --data-urlencode "username=$2" --data-urlencode "password=$3"
}
# sse BASE SECONDS OUT [curl args]: reads the stream for SECONDS into OUT
# (headers in OUT.hdrs) as consumer-1; prints curl's status code
sse() {
    local base=$1 secs=$2 out=$3
    shift 3
    "$CURL" -s -N -m "$secs" -D "$out.hdrs" -o "$out" -w '%{http_code}' \
        -H 'X-Internal-Client: consumer-1' -H "X-Internal-Token: $C1_SECRET" "$@" \
        "$base/user/private/v1/events/stream"
}
# events FILE: "id event verified" per event of a captured stream (the
# signature recomputed with Python's json.dumps(sort_keys) and hmac)
events() {
    "$PY" - "$1" "$SIGN_KEY" <<'PYEOF'
import hashlib, hmac, json, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
for block in text.split("\n\n"):
    f = {}
    for line in block.split("\n"):
        if line.startswith(":") or ":" not in line:
            continue
        k, _, v = line.partition(":")
        f[k] = v[1:] if v.startswith(" ") else v
    if "data" not in f:
        continue
    ok = "-"
    if f.get("event") != "gap":
        env = json.loads(f["data"])
        canon = json.dumps(env["payload"], sort_keys=True, separators=(",", ":"))
        mac = hmac.new(sys.argv[2].encode(), canon.encode(), hashlib.sha256).hexdigest()
        ok = "signed" if hmac.compare_digest(mac, env["sig"]) else "BADSIG"
        ok += ":" + env["payload"].get("event_type", "?") + ":" + str(env["payload"].get("jti"))
    print(f.get("id", "-"), f.get("event", "message"), ok)
PYEOF
}

issuer_env() { # FILE KIND
    m8_write_env "$1" PROJECT_NAME=fa-auth-m8 API_PREFIX=/user AUTH_SERVICE_ROLE=issuer \
        ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY ACCESS_PRIVATE_KEY_FILE="$T_DIR/rsa.pem" \
        TOKEN_MODE=stateful TOKEN_STRICT_VALIDATION=false \
        SELECTED_DB="$2" DB_HOST=127.0.0.1 "DB_PORT=${DBPORT[$2]}" DB_DATABASE=issuer_db \
        DB_USER=issuer_user "DB_PASSWORD=$PW" TABLES_PREFIX=auth \
        FIRST_SUPERUSER=$SU "FIRST_SUPERUSER_PASSWORD=$SU_PW" \
        'SESSION_SECRET=Test-Session-Secret-0123456789abcdef!' \
        'TOKENS_ENCRYPTION_KEY=Test-Tokens-Encryption-Key-0123456789ab!' \
        'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!' \
        "PRIVATE_API_CONSUMERS={\"consumer-1\":{\"secret\":\"$C1_SECRET\",\"scopes\":[\"introspection\",\"event-stream\"]},\"consumer-2\":{\"secret\":\"$C2_SECRET\",\"scopes\":[\"introspection\"]}}" \
        EVENT_SIGNING_ENABLED=true "EVENT_SIGNING_KEY=$SIGN_KEY" EVENT_STREAM_HEARTBEAT_SECONDS=1
}

run_kind() {
    local kind=$1 lk=${1,,} d=$T_DIR/db-${1,,}
    local I=${ISS[$kind]} I2=${ISS2[$kind]} C=${CONS[$kind]}
    if [ $kind = Mysql ]; then m8_mariadb_start "$d" "${DBPORT[$kind]}"; else m8_pg_start "$d" "${DBPORT[$kind]}"; fi ||
        { t_report 1 "$lk: the $kind server starts"; return; }
    m8_db_create $kind "$d" "${DBPORT[$kind]}" issuer_db issuer_user "$PW" ||
        { t_report 1 "$lk: the issuer's database and user"; return; }
    issuer_env "$T_DIR/iss_$lk.env" $kind
    m8_fcgim8d_start "iss_$lk" "$ISSUER" "$T_DIR/iss_$lk.env" -- --workers 2 --threads 4 \
        --db-wait-tries 20 --db-wait-interval 0.5
    ready() { m8_http GET "$1/user/health/"; [ "$H_STATUS" = 200 ]; }
    if ! m8_wait_for 30 ready "$I"; then
        t_report 1 "$lk: fcgim8-issuer is ready under fcgim8d"
        t_diag "$(tail -n 20 "$T_DIR/iss_$lk.log")"
        return
    fi
    t_report 0 "$lk: fcgim8-issuer is ready under fcgim8d behind nginx"
    # the second instance on the same database (its own fcgim8d and socket)
    m8_fcgim8d_start "iss2_$lk" "$ISSUER" "$T_DIR/iss_$lk.env" -- --workers 1 --threads 4 \
        --db-wait-tries 20 --db-wait-interval 0.5

    # ---------------------------------------------------------- the consumer check
    m8_http GET "$I/user/private/v1/events/stream"
    t_is "$H_STATUS:$H_BODY" '401:{"detail":"Unauthorized"}' "$lk: the stream without a credential: 401"
    m8_http GET "$I/user/private/v1/events/stream" -H 'X-Internal-Client: consumer-2' \
        -H "X-Internal-Token: $C2_SECRET"
    t_is "$H_STATUS:$H_BODY" '403:{"detail":"Forbidden"}' "$lk: a consumer without the event-stream scope: 403"

    # ---------------------------------------------------------- framing through nginx
    local code
    code=$(sse "$I" 2.5 "$T_DIR/s0_$lk")
    t_is "$code" 200 "$lk: the stream answers 200 to consumer-1"
    t_like "$(m8_hdr_in "$T_DIR/s0_$lk.hdrs" Content-Type):$(m8_hdr_in "$T_DIR/s0_$lk.hdrs" Cache-Control)" \
        '^text/event-stream; charset=utf-8:no-cache$' "$lk: ... text/event-stream; charset=utf-8, Cache-Control no-cache"
    t_is "$(m8_hdr_count_in "$T_DIR/s0_$lk.hdrs" Content-Length)" 0 "$lk: ... no Content-Length (a stream)"
    t_like "$(tr '\n' '|' <"$T_DIR/s0_$lk")" '^: ping\|\|: ping\|\|' \
        "$lk: heartbeats arrive through nginx while the stream is open (EVENT_STREAM_HEARTBEAT_SECONDS=1)"

    # ---------------------------------------------------------- the stateful consumer
    m8_write_env "$T_DIR/cons_$lk.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
        "JWKS_URI=$I/user/.well-known/jwks.json" TOKEN_MODE=stateful \
        "INTROSPECTION_URL=$I/user/private/v1/jti-status" INTERNAL_CLIENT_ID=consumer-1 \
        "PRIVATE_API_SECRET=$C1_SECRET" "EVENT_SIGNING_KEY=$SIGN_KEY" REVOCATION_CACHE_TTL_SECONDS=300
    m8_fcgim8d_start "cons_$lk" example "$T_DIR/cons_$lk.env" -- --workers 4 --threads 2
    m8_fcgim8d_wait_ready "cons_$lk" 4 20 || { t_report 1 "$lk: the consumer pool is ready"; t_diag "$(tail -n 20 "$T_DIR/cons_$lk.log")"; return; }
    m8_wait_for 20 m8_fcgim8d_log_has "cons_$lk" 'event stream: connected'
    t_ok $? "$lk: the consumer's sidecar connects to the issuer's stream"

    login "$I" "$SU" "$SU_PW"
    local su_tok
    su_tok=$(jf "j['access_token']")
    local umail=reader.$lk@example.com
    m8_http POST "$I/user/users/new_user/" -H "Authorization: Bearer $su_tok" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"email\":\"$umail\",\"password\":\"$U_PW\",\"role\":\"reader\"}"
    login "$I" "$umail" "$U_PW"
    t_is "$H_STATUS" 200 "$lk: a user logs in at the issuer"
    local tok cookie jti
    tok=$(jf "j['access_token']")
    cookie=$(cookie_of "$T_DIR/h.hdrs")
    jti=$("$PY" -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["jti"])' "$tok")
    ccode() { "$CURL" -s -o /dev/null -w '%{http_code}' -m 10 -H "Authorization: Bearer $1" "$C/api/profile"; }
    codes() { local i out=; for i in $(seq 1 "$2"); do out+="$(ccode "$1") "; done; printf '%s\n' $out | sort | uniq -c | tr -s ' ' | tr '\n' ','; }
    t_is "$(codes "$tok" 12)" " 12 200," "$lk: the stateful consumer accepts the token in its workers (12 requests)"

    # ---------------------------------------------------------- logout -> refused everywhere
    m8_http POST "$I/user/login/logout/" -H "Authorization: Bearer $tok" -H "Cookie: refresh_token=$cookie"
    local t0 t1=
    t0=$(date +%s%N)
    t_is "$H_STATUS" 200 "$lk: logout at the issuer"
    local i
    for i in $(seq 1 2000); do
        if [ "$(ccode "$tok")" = 401 ]; then t1=$(date +%s%N); break; fi
        [ $(( ($(date +%s%N) - t0) / 1000000 )) -gt 10000 ] && break
    done
    t_ok "$([ -n "$t1" ]; echo $?)" "$lk: after the logout the consumer refuses the token (polled, 10 s at most)"
    [ -n "$t1" ] && t_diag "$lk: logout answered -> first refusal by the consumer: $(( (t1 - t0) / 1000000 )) ms (through nginx, curl per poll)"
    t_is "$(codes "$tok" 12)" " 12 401," "$lk: ... in every worker (12 requests, the 300 s cache notwithstanding)"
    t_ok "$(grep -q 'session.revoked v1 (one session) applied' "$T_DIR/cons_$lk.log"; echo $?)" \
        "$lk: the consumer applied the issuer's event (not the cache TTL)"

    # ---------------------------------------------------------- replay, signature, gap
    local last
    sse "$I" 1.5 "$T_DIR/r1_$lk" -H 'Last-Event-ID: 0' >/dev/null
    events "$T_DIR/r1_$lk" >"$T_DIR/r1_$lk.ev"
    last=$(grep "session.revoked:$jti" "$T_DIR/r1_$lk.ev" | awk '{print $1}' | tail -n 1)
    t_like "$(grep "session.revoked:$jti" "$T_DIR/r1_$lk.ev")" "^[0-9]+ session-revoked signed:session.revoked:$jti\$" \
        "$lk: Last-Event-ID 0 replays the logout's event, signed (Python's hmac over json.dumps(sort_keys) agrees)"
    sse "$I" 1.5 "$T_DIR/r2_$lk" -H "Last-Event-ID: $((last - 1))" >/dev/null
    t_is "$(events "$T_DIR/r2_$lk" | head -n 1 | awk '{print $1}')" "$last" \
        "$lk: Last-Event-ID <id - 1> replays from that event on"
    sse "$I" 1.5 "$T_DIR/r3_$lk" -H "Last-Event-ID: $last" >/dev/null
    t_is "$(events "$T_DIR/r3_$lk" | grep -c "$jti")" 0 "$lk: Last-Event-ID <id> does not replay it again"
    sse "$I" 1.5 "$T_DIR/g_$lk" -H 'Last-Event-ID: 1751000000123456789-7' >/dev/null
    t_like "$(head -c 21 "$T_DIR/g_$lk" | tr '\n' '|')" '^event: gap\|data: \{\}\|\|$' \
        "$lk: a Last-Event-ID that is not the outbox's: the gap frame first"
    t_is "$(events "$T_DIR/g_$lk" | grep -c "$jti")" 0 "$lk: ... and no replay after a gap"

    # ---------------------------------------------------------- the second instance
    if m8_wait_for 30 ready "$I2"; then
        sse "$I2" 1.5 "$T_DIR/b1_$lk" -H 'Last-Event-ID: 0' >/dev/null
        events "$T_DIR/b1_$lk" >"$T_DIR/b1_$lk.ev"
        t_is "$(cat "$T_DIR/b1_$lk.ev")" "$(cat "$T_DIR/r1_$lk.ev")" \
            "$lk: a second fcgim8-issuer process on the same database serves the same events with the same ids"
        # a live event from instance 1 reaches a stream held by instance 2
        sse "$I2" 4 "$T_DIR/b2_$lk" >/dev/null &
        local sp=$!
        sleep 1
        login "$I" "$umail" "$U_PW"
        local tok2 cookie2
        tok2=$(jf "j['access_token']")
        cookie2=$(cookie_of "$T_DIR/h.hdrs")
        m8_http POST "$I/user/login/logout/" -H "Authorization: Bearer $tok2" -H "Cookie: refresh_token=$cookie2"
        wait $sp
        local jti2
        jti2=$("$PY" -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["jti"])' "$tok2")
        t_like "$(events "$T_DIR/b2_$lk")" "^[0-9]+ session-revoked signed:session.revoked:$jti2\$" \
            "$lk: a logout on instance 1 reaches a live stream held by instance 2"
    else
        t_report 1 "$lk: the second issuer instance is ready"
    fi

    # ---------------------------------------------------------- a client that goes away
    sse "$I" 1 "$T_DIR/x_$lk" >/dev/null
    m8_wait_for 5 grep -q 'event stream: ended (client)' "$T_DIR/iss_$lk.log"
    t_ok $? "$lk: a client that goes away ends its stream on the issuer (logged 'client')"
}

for kind in "${KINDS[@]}"; do
    run_kind "$kind"
done
for p in "${!M8_FCGIM8D_PID[@]}"; do kill -TERM "${M8_FCGIM8D_PID[$p]}" 2>/dev/null; done
rcs=
for p in "${!M8_FCGIM8D_PID[@]}"; do m8_wait_exit "${M8_FCGIM8D_PID[$p]}" 20; rcs+="$p=$M8_RC "; done
t_like "$rcs" '^([a-z0-9_]+=0 )+$' "every pool stops cleanly with streams open (the issuers' and the consumers')"
t_done
