#!/bin/bash
# t_stateful.sh - TOKEN_MODE=stateful through a real nginx and fcgim8d (4
# workers) against the test issuer (tests/tools/issuer.py): revocations
# arrive through the signed event stream held once by the supervisor and
# are refused by every worker; forged, unsigned and malformed events are
# dropped and counted; a gap and a resume with Last-Event-ID; the stream
# down (introspection after the cache TTL); the issuer down (fail_closed
# 503, fail_open), a 4xx from it (503 in both modes,
# doc/wire.md#jti-status-outcomes); a stateless
# service never calls the issuer.  Ports 19200-19299.
# t_stateful_cissuer.sh runs the same script against fcgim8-issuer (CISSUER
# set, doc/issuer.md#operations): the checks that need issuer.py's fault
# injection, counters or API keys are skipped there, with the reason.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import jwt, cryptography' 2>/dev/null || t_skip_all "python3-jwt / python3-cryptography not installed"
m8_init "${M8_STATEFUL_NAME:-t_stateful}"
[ -x "$top_builddir/src/fcgim8d" ] || t_bail "fcgim8d not built"

# ------------------------------------------------------------- the issuer
# With CISSUER the wrapper's cissuer_setup starts fcgim8-issuer and defines
# mint, ctl, stat_count and new_user_id on it.
CISSUER=${CISSUER:-}
NOFAULT="needs tests/tools/issuer.py's fault injection"
STATEFUL_EXTRA=()
if [ -n "$CISSUER" ]; then
    cissuer_setup
else
    ID=$T_DIR/issuer
    mkdir -p "$ID"
    "$PY" "$top_srcdir/tests/tools/issuer.py" serve "$ID" --port 0 --heartbeat 1 \
        --client 'consumer-1=Test-Private-Api-Secret-0123456789abcdef!' </dev/null \
        >"$T_DIR/issuer.out" 2>&1 &
    M8_PIDS+=("$!")
    m8_wait_for 20 test -s "$ID/port" || t_bail "the test issuer did not start: $(tail -3 "$T_DIR/issuer.out")"
    url() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$ID/urls.json" "$1"; }
    CTL=$(url control)
    INTRO=$(url introspection)
    ctl() { # PATH JSON: POST to the issuer's control API
        "$CURL" -s -m 10 -X POST -H 'Content-Type: application/json' -d "$2" "$CTL$1"
    }
    mint() { ctl "/mint?raw=1" "${1:-{\}}"; }
    stat_count() { "$CURL" -s -m 5 "$CTL/stats/$1"; }
    new_user_id() { "$PY" -c 'import uuid; print(uuid.uuid4())'; }
fi
jget() { "$PY" -c "import json,sys; j=json.loads(sys.argv[1]); print($1)" "$2" "${3:-0}"; } # EXPR JSON [ARG]

# ------------------------------------------------------------- the pools
common=(ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY ACCESS_PUBLIC_KEY_FILE="$ID/access_key.pub"
    TOKEN_ISSUER=https://auth.example.com TOKEN_AUDIENCE=item-service METRICS_ENABLED=true)
stateful=(TOKEN_MODE=stateful INTROSPECTION_URL="$INTRO"
    'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!' "${STATEFUL_EXTRA[@]}")
# S: the stream is the only way a cached answer can be withdrawn (TTL 300 s)
m8_write_env "$T_DIR/S.env" "${common[@]}" "${stateful[@]}" REVOCATION_CACHE_TTL_SECONDS=300
# U: the rollout flag (doc/wire.md#signed-envelope): unsigned events accepted,
# forged ones still refused
m8_write_env "$T_DIR/U.env" "${common[@]}" "${stateful[@]}" REVOCATION_CACHE_TTL_SECONDS=300 \
    EVENT_SIGNING_ACCEPT_UNSIGNED=true
# T: a short cache, for "stream down: refused once the TTL passes"
m8_write_env "$T_DIR/T.env" "${common[@]}" "${stateful[@]}" REVOCATION_CACHE_TTL_SECONDS=2
m8_write_env "$T_DIR/F.env" "${common[@]}" "${stateful[@]}" ACCESS_REVOCATION_FAILURE_MODE=fail_closed
m8_write_env "$T_DIR/O.env" "${common[@]}" "${stateful[@]}" ACCESS_REVOCATION_FAILURE_MODE=fail_open
m8_write_env "$T_DIR/L.env" "${common[@]}"
# K: X-API-Key routes (bootstrap private-API auth as consumer-1)
m8_write_env "$T_DIR/K.env" "${common[@]}" API_KEY_INTROSPECTION_ENABLED=true INTERNAL_CLIENT_ID=consumer-1 \
    INTROSPECTION_URL="$INTRO" 'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!'
m8_pick_port ${PORTS_STATUS:-19250 19299} || t_bail "no free port"
SS=$M8_PORT
m8_fcgim8d_start S example "$T_DIR/S.env" -- --workers 4 --threads 2 --status-listen "127.0.0.1:$SS"
for p in T F O L U; do m8_fcgim8d_start $p example "$T_DIR/$p.env" -- --workers 1 --threads 2; done
m8_fcgim8d_start K fixture "$T_DIR/K.env" M8T_API_KEYS=1 -- --workers 2 --threads 2
# A: a stateful service alone (no fcgim8d) holding the stream itself (opt-in)
m8_svc_listen A example "unix:$T_DIR/A.sock" "$T_DIR/S.env" FCGIM8_EVENT_STREAM=1 -- --threads 2

NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
declare -A URL=()
for p in S T F O L K A U; do
    m8_pick_port ${PORTS_SITES:-19200 19249} || t_bail "no free port"
    URL[$p]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "$p" fcgi-m8-unix.conf NAME="st_$p" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/$p.sock" || t_bail "cannot render the site"
done
m8_nginx_start "$NG" || t_bail "nginx does not start"
m8_fcgim8d_wait_ready S 4 || { t_diag "$(tail -20 "$T_DIR/S.log")"; t_bail "pool S not ready"; }
for p in T F O L U; do m8_fcgim8d_wait_ready $p 1 || t_bail "pool $p not ready: $(tail -5 "$T_DIR/$p.log")"; done
m8_fcgim8d_wait_ready K 2 || t_bail "pool K not ready: $(tail -5 "$T_DIR/K.log")"
m8_wait_for 10 m8_fcgim8d_log_has S 'event stream: connected'
t_ok $? "S: the supervisor's sidecar connects to the issuer's event stream"

code() { # POOL TOKEN: status of GET /api/items/
    "$CURL" -s -o "$T_DIR/code.body" -w '%{http_code}' -m 10 -H "Authorization: Bearer $2" "${URL[$1]}/api/items/"
}
codes() { # POOL TOKEN N: N statuses, space separated, sorted unique with counts
    local i out=
    for i in $(seq 1 "$3"); do out+="$(code "$1" "$2") "; done
    printf '%s\n' $out | sort | uniq -c | tr -s ' ' | tr '\n' ','
}
metric() { # NAME-REGEX: value of the first matching line of the supervisor's /metrics
    "$CURL" -s -m 5 "http://127.0.0.1:$SS/metrics" | grep -E "^$1 " | head -1 | awk '{print $2}'
}

# ------------------------------------------------------------- S: revocation through the stream
T1=$(mint)
t_is "$(codes S "$T1" 16)" " 16 200," "S: a fresh token passes the issuer's jti-status in all 4 workers (16 requests)"
calls0=$(stat_count introspection)
t_is "$(codes S "$T1" 16)" " 16 200," "S: ... and again from the shared cache"
if [ -z "$CISSUER" ]; then
    t_is "$(stat_count introspection)" "$calls0" "S: the cached answer is shared by every worker (no new jti-status call)"
else
    t_skip "S: the cached answer is shared by every worker" "needs tests/tools/issuer.py's call counters"
fi

# revoke and measure: from the issuer publishing the event to every worker refusing
lat=()
for trial in 1 2 3 4 5; do
    T=$(mint)
    codes S "$T" 8 >/dev/null
    jti=$(jget "__import__('jwt').decode(j, options={'verify_signature': False})['jti']" "\"$T\"")
    rv=$(ctl /revoke "{\"jti\":\"$jti\"}")
    refused=
    for i in $(seq 1 400); do
        if [ "$(code S "$T")" = 401 ]; then refused=$(date +%s.%N); break; fi
    done
    all=$(codes S "$T" 8)
    # from the issuer publishing the event to a refusal seen by curl
    lat+=("$(jget "round((float(sys.argv[2]) - j['event']['published_at']) * 1000)" "$rv" "$refused" 2>/dev/null \
        || echo "?")")
    [ "$all" = " 8 401," ] || break
done
t_is "$all" " 8 401," "S: after a revocation event every worker refuses the token (8 requests, TTL 300 s cache bypassed)"
t_like "$(cat "$T_DIR/code.body")" '"detail":"Token has been revoked."' "S: ... with the revoked detail (doc/responses.md#auth-failures)"
t_diag "event published -> refused by a worker through nginx (ms, 5 trials): ${lat[*]}"
m8_wait_for 5 grep -q 'session.revoked v1 (one session) applied' "$T_DIR/S.log"
t_ok $? "S: the sidecar logs the applied event"

U=$(new_user_id)
UA=$(mint "{\"sub\":\"$U\"}")
UB=$(mint "{\"sub\":\"$U\"}")
codes S "$UA" 4 >/dev/null
codes S "$UB" 4 >/dev/null
ctl /revoke "{\"user_id\":\"$U\"}" >/dev/null
ua_off() { [ "$(code S "$UA")" = 401 ] && [ "$(code S "$UB")" = 401 ]; }
m8_wait_for 5 ua_off
t_ok $? "S: a user-wide revocation refuses every token of that user"
t_is "$(codes S "$(mint)" 4)" " 4 200," "S: other users are not affected"

# forged, unsigned and malformed events are dropped and counted
if [ -z "$CISSUER" ]; then
    for kind in forged_event unsigned_event malformed; do
        T=$(mint)
        codes S "$T" 4 >/dev/null
        ctl /fault "{\"target\":\"events\",\"mode\":\"$kind\",\"count\":1}" >/dev/null
        jti=$(jget "__import__('jwt').decode(j, options={'verify_signature': False})['jti']" "\"$T\"")
        ctl /revoke "{\"jti\":\"$jti\",\"emit\":true}" >/dev/null
        sleep 0.5
        t_is "$(codes S "$T" 4)" " 4 200," "S: a $kind is not applied (the cached answer stays)"
    done
    m8_wait_for 3 sh -c "\"$CURL\" -s http://127.0.0.1:$SS/metrics | grep -q 'result=\"dropped_sig_fail\"} 2'"
    t_ok $? "S: the forged and the unsigned event are counted as dropped_sig_fail"
    t_like "$(metric 'api_auth_event_stream_events_total\{event_type="[a-z.-]*",result="dropped_malformed"\}')" '^1(\.0)?$' \
        "S: the malformed event is counted as dropped_malformed"
else
    t_skip "S: forged, unsigned and malformed events are dropped and counted" "$NOFAULT"
fi
t_like "$(metric 'api_auth_event_stream_events_total\{event_type="[a-z.-]*session[a-z.-]*",result="delivered"\}')" '^[1-9]' \
    "S: delivered events are counted"
t_like "$(metric api_auth_event_stream_connected)" '^1(\.0)?$' "S: the connected gauge is 1"

# a resume with Last-Event-ID gets an event sent while the stream was down
if [ -z "$CISSUER" ]; then
    T=$(mint)
    codes S "$T" 4 >/dev/null
    ctl /fault '{"target":"events","mode":"drop_stream"}' >/dev/null
    ctl /fault '{"target":"events","mode":"down"}' >/dev/null
    m8_wait_for 5 sh -c "\"$CURL\" -s http://127.0.0.1:$SS/metrics | grep -Eq '^api_auth_event_stream_connected 0(\.0)?$'"
    t_ok $? "S: a cut stream sets the connected gauge to 0"
    jti=$(jget "__import__('jwt').decode(j, options={'verify_signature': False})['jti']" "\"$T\"")
    ctl /revoke "{\"jti\":\"$jti\"}" >/dev/null
    t_is "$(codes S "$T" 4)" " 4 200," "S: while the stream is down a cached answer stays"
    ctl /fault '{"target":"events","mode":"ok"}' >/dev/null
    t_off() { [ "$(code S "$T")" = 401 ]; }
    m8_wait_for 20 t_off
    t_ok $? "S: after the reconnect the missed event is replayed and applied"
    t_like "$("$CURL" -s "$CTL/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["last_event_ids"][-1])')" '^[0-9]+-[0-9]+$' \
        "S: the reconnect carried Last-Event-ID"
    t_like "$(metric api_auth_event_stream_reconnects_total)" '^[1-9]' "S: reconnects are counted"

    # ------------------------------------------------------------- T: stream down, cache TTL, introspection
    ctl /fault '{"target":"events","mode":"drop_stream"}' >/dev/null
    ctl /fault '{"target":"events","mode":"down"}' >/dev/null
    T=$(mint)
    t_is "$(code T "$T")" 200 "T: a token is accepted and cached for 2 s"
    jti=$(jget "__import__('jwt').decode(j, options={'verify_signature': False})['jti']" "\"$T\"")
    ctl /revoke "{\"jti\":\"$jti\",\"emit\":false}" >/dev/null
    tt_off() { [ "$(code T "$T")" = 401 ]; }
    m8_wait_for 10 tt_off
    t_ok $? "T: with no event, the revoked token is refused once the cache TTL passed (through jti-status)"
    ctl /fault '{"target":"events","mode":"ok"}' >/dev/null

    # ------------------------------------------------------------- F/O: the issuer down
    T=$(mint)
    t_is "$(code F "$T")" 200 "F: a valid token passes"
    ctl /fault '{"target":"introspection","mode":"down"}' >/dev/null
    t_is "$(code F "$T")" 503 "F: issuer down, fail_closed: 503"
    t_like "$(cat "$T_DIR/code.body")" 'Token revocation check unavailable' "F: ... with the detail"
    t_is "$(code O "$T")" 200 "O: issuer down, fail_open: the valid token passes"
    # a worker's lines reach the file through fcgim8d's relay: after the answer
    m8_wait_for 5 grep -q 'revocation_fail_open' "$T_DIR/O.log"
    t_ok $? "O: ... and the pass is logged"
    sleep 1.2 # failure logs are rate-limited to one a second
    ctl /fault '{"target":"introspection","mode":"status:403"}' >/dev/null
    t_is "$(code F "$T")" 503 "F: a 4xx from the issuer is 503 in fail_closed (doc/wire.md#jti-status-outcomes)"
    t_is "$(code O "$T")" 503 "O: a 4xx from the issuer is 503 in fail_open too (doc/wire.md#jti-status-outcomes)"
    m8_wait_for 5 grep -q '403' "$T_DIR/O.log"
    t_ok $? "O: the error log names the status"
    ctl /fault '{"target":"introspection","mode":"ok"}' >/dev/null
else
    t_skip "S: the resume with Last-Event-ID; T: the stream down; F/O: the issuer down" "$NOFAULT"
fi

# ------------------------------------------------------------- L: stateless never calls the issuer
[ -z "$CISSUER" ] && "$CURL" -s -X POST "$CTL/reset_stats" >/dev/null
T=$(mint)
t_is "$(codes L "$T" 10)" " 10 200," "L: a stateless service accepts the token"
if [ -z "$CISSUER" ]; then
    t_is "$(stat_count introspection)" 0 "L: ... without one jti-status call"
else
    t_skip "L: ... without one jti-status call" "needs tests/tools/issuer.py's call counters"
fi
t_ok "$(grep -q 'event stream' "$T_DIR/L.log"; [ $? != 0 ]; echo $?)" "L: no event stream client in a stateless pool"

# ------------------------------------------------------------- K: X-API-Key routes through nginx
if [ -z "$CISSUER" ]; then
    ctl /apikey '{"key":"k-read","role":"reader","access_mode":"read_only"}' >/dev/null
    ctl /apikey '{"key":"k-write","role":"writer","access_mode":"read_write"}' >/dev/null
    ctl /apikey '{"key":"k-revoked","state":"revoked"}' >/dev/null
    ctl /apikey '{"key":"k-limited","state":"rate_limited","retry_after":"17"}' >/dev/null
    key() { # METHOD KEY: status of /api/keyed with that key ("" = no header)
        local -a h=()
        [ -n "$2" ] && h=(-H "X-API-Key: $2")
        "$CURL" -s -o "$T_DIR/key.body" -D "$T_DIR/key.hdrs" -w '%{http_code}' -m 10 -X "$1" "${h[@]}" "${URL[K]}/api/keyed"
    }
    t_is "$(key GET k-read)" 200 "K: a reader key reads"
    t_like "$(cat "$T_DIR/key.body")" '"role":"reader"' "K: ... and the handler sees the key's owner"
    t_is "$(key POST k-read)" 403 "K: a read-only key cannot write"
    t_is "$(key POST k-write)" 200 "K: a read-write writer key writes"
    t_is "$(key GET "")" 401 "K: no X-API-Key: 401"
    t_unlike "$(cat "$T_DIR/key.hdrs")" '[Ww][Ww][Ww]-[Aa]uthenticate' "K: ... without WWW-Authenticate"
    t_is "$(key GET k-revoked)" 401 "K: a revoked key: 401"
    t_is "$(key GET k-limited)" 429 "K: a rate-limited key: 429"
    t_like "$(tr -d '\r' <"$T_DIR/key.hdrs")" 'Retry-After: 17' "K: ... passing the issuer's Retry-After through"
    ctl /fault '{"target":"apikey","mode":"down"}' >/dev/null
    t_is "$(key GET k-read)" 503 "K: the issuer down: 503 (no fail-open for API keys)"
    ctl /fault '{"target":"apikey","mode":"ok"}' >/dev/null
    t_unlike "$(cat "$T_DIR/K.log")" 'k-read|k-write|k-revoked' "K: keys never reach the log"
    m8_write_env "$T_DIR/K2.env" "${common[@]}"
    (cd "$T_DIR" && m8_clean_env M8T_API_KEYS=1 -- "$(m8_svc_bin fixture)" --check --env-file "$T_DIR/K2.env") \
        >/dev/null 2>"$T_DIR/K2.err"
    t_is "$?" 78 "K: X-API-Key routes with API keys off: the service refuses to boot (78)"
    t_like "$(cat "$T_DIR/K2.err")" 'API_KEY_INTROSPECTION_ENABLED' "K: ... naming the setting"
else
    t_skip "K: X-API-Key routes" "needs tests/tools/issuer.py's API key store"
fi

# ------------------------------------------------------------- U: unsigned events during a rollout
# stream_up LOG: the last state that log reports for its event stream is
# "connected" (T cut every stream and held them off for a while).
stream_up() { grep -E 'event stream: (connected|.*reconnecting)' "$1" | tail -n 1 | grep -q connected; }
if [ -z "$CISSUER" ]; then
    m8_wait_for 30 stream_up "$T_DIR/U.log"
    t_ok $? "U: the stream is up again after T's outage"
    T=$(mint)
    t_is "$(code U "$T")" 200 "U: a token is accepted and cached (TTL 300 s)"
    ctl /fault '{"target":"events","mode":"forged_event","count":1}' >/dev/null
    jti=$(jget "__import__('jwt').decode(j, options={'verify_signature': False})['jti']" "\"$T\"")
    ctl /revoke "{\"jti\":\"$jti\"}" >/dev/null
    sleep 0.5
    t_is "$(code U "$T")" 200 "U: with EVENT_SIGNING_ACCEPT_UNSIGNED=true a forged signature is still refused"
    T=$(mint)
    code U "$T" >/dev/null
    ctl /fault '{"target":"events","mode":"unsigned_event","count":1}' >/dev/null
    jti=$(jget "__import__('jwt').decode(j, options={'verify_signature': False})['jti']" "\"$T\"")
    ctl /revoke "{\"jti\":\"$jti\"}" >/dev/null
    tu_off() { [ "$(code U "$T")" = 401 ]; }
    m8_wait_for 20 tu_off
    t_ok $? "U: ... and an unsigned event is applied (the rollout flag of doc/wire.md#signed-envelope)"
else
    t_skip "U: unsigned events during a rollout" "$NOFAULT"
fi

# ------------------------------------------------------------- A: alone, the stream opted in
m8_wait_for 30 stream_up "${M8_SVC_LOG[A]}"
t_ok $? "A: a service alone with FCGIM8_EVENT_STREAM=1 holds the event stream itself"
T=$(mint)
t_is "$(code A "$T")" 200 "A: a token is accepted and cached (TTL 300 s)"
jti=$(jget "__import__('jwt').decode(j, options={'verify_signature': False})['jti']" "\"$T\"")
ctl /revoke "{\"jti\":\"$jti\"}" >/dev/null
ta_off() { [ "$(code A "$T")" = 401 ]; }
m8_wait_for 20 ta_off
t_ok $? "A: its own stream applies the revocation"

# ------------------------------------------------------------- last: an issuer restart
# (new epoch; every pool's stream gets a gap and flushes its cache, so it
# runs after the tests that rely on cached answers): the resume is a gap, and the stream still works
if [ -z "$CISSUER" ]; then
    ctl /epoch '{}' >/dev/null
    m8_wait_for 15 sh -c "\"$CURL\" -s http://127.0.0.1:$SS/metrics | grep -q '^api_auth_event_stream_gap_total [1-9]'"
    t_ok $? "S: a resume across an issuer restart is a gap, counted"
    m8_wait_for 5 grep -q 'event stream: gap' "$T_DIR/S.log"
    t_ok $? "S: the gap is logged (caches flushed)"
    T=$(mint)
    codes S "$T" 4 >/dev/null
    jti=$(jget "__import__('jwt').decode(j, options={'verify_signature': False})['jti']" "\"$T\"")
    m8_wait_for 10 m8_fcgim8d_log_has S 'event stream: connected'
    ctl /revoke "{\"jti\":\"$jti\"}" >/dev/null
    m8_wait_for 10 t_off
    t_ok $? "S: after the gap new revocations are applied again"
else
    t_skip "S: a resume across an issuer restart is a gap" "$NOFAULT"
fi

for p in S T F O L K U; do kill -TERM "${M8_FCGIM8D_PID[$p]}" 2>/dev/null; done
for p in S T F O L K U; do m8_wait_exit "${M8_FCGIM8D_PID[$p]}" 15; done
t_is "$M8_RC" 0 "the pools stop cleanly (event stream threads included)"
t_done
