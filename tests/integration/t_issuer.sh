#!/bin/bash
# t_issuer.sh - self-test of tests/tools/issuer.py, the test issuer
# (doc/wire.md), with curl and an independent python3 check:
#   startup (port 0, urls.json, --help, the canonical JSON vectors), JWKS and
#   minted tokens checked by PyJWT, jti-status v2 in the three auth modes,
#   the service-token exchange, the event stream (headers,
#   heartbeats, signed events verified here over json.dumps(sort_keys) of the
#   parsed payload and over the literal vector D with floats, Last-Event-ID
#   replay, gaps for an old id, a bad id and a new epoch), API-key introspection
#   (doc/wire.md#interpretation-order), every fault, stats, restart with the
#   same DIR, SIGTERM and parent death.  Loopback only, port 0.  Skips without curl or
#   /usr/bin/python3 with jwt + cryptography.
# shellcheck disable=SC2317  # the predicates run through m8_wait_for
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import jwt, cryptography' 2>/dev/null || t_skip_all "python3-jwt / python3-cryptography not installed"
export PYTHONDONTWRITEBYTECODE=1
m8_init test_issuer

ISSUER=$top_srcdir/tests/tools/issuer.py
ID=$T_DIR/iss
CS='Svc-Bootstrap-Secret-0123456789!'          # consumer "svc": every scope
CS2='Svc2-Bootstrap-Secret-0123456789!'        # consumer "svc2": introspection only
PRIV='Test-Private-Api-Secret-0123456789abcdef!'
EKEY='Test-Event-Signing-Key-0123456789abcdef!'
VKEY='Example-Event-Signing-Key_2026!xyz'        # the key of the worked examples of doc/wire.md#canonical-json
mkdir -p "$ID"
printf '%s\n' "$EKEY" >"$T_DIR/ekey"

# ---------------------------------------------------------------- helpers
# check.py: an SSE parser (doc/wire.md#sse-framing) and the signature check
# (doc/wire.md#signed-envelope),
# written here without issuer.py.  "check.py FILE EXPR" evaluates EXPR with
# E = the dispatched events [{id, event, data}], P = the comment lines,
# verify(data[, key]) -> ok | bad | unsigned | malformed.
cat >"$T_DIR/check.py" <<'PYEOF'
import hashlib, hmac, json, os, sys

def parse(path):
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    events, pings = [], 0
    cur = {"id": None, "event": None, "data": []}
    for line in text.split("\n")[:-1]:        # the last piece is partial
        line = line.rstrip("\r")
        if line.startswith(":"):
            pings += 1
        elif line == "":
            if cur["data"]:
                events.append({"id": cur["id"], "event": cur["event"] or "message",
                               "data": "\n".join(cur["data"])})
            cur = {"id": None, "event": None, "data": []}
        elif line.startswith("id:"):
            cur["id"] = line[3:].strip()
        elif line.startswith("event:"):
            cur["event"] = line[6:].strip()
        elif line.startswith("data:"):
            cur["data"].append(line[5:].strip())
    return events, pings

def verify(data, key=None):
    key = key if key is not None else os.environ["EKEY"]
    try:
        v = json.loads(data)
    except ValueError:
        return "malformed"
    if not (isinstance(v, dict) and "sig" in v and "payload" in v):
        return "unsigned"
    ref = json.dumps(v["payload"], sort_keys=True, separators=(",", ":"))
    want = hmac.new(key.encode(), ref.encode(), hashlib.sha256).hexdigest()
    return "ok" if hmac.compare_digest(want, str(v["sig"])) else "bad"

def payload(data):
    return json.loads(data)["payload"]

E, P = parse(sys.argv[1]) if os.path.exists(sys.argv[1]) else ([], 0)
r = eval(sys.argv[2])
print(r if isinstance(r, str) else json.dumps(r))
PYEOF
export EKEY

js() { # EXPR: evaluated over d = json.loads(H_BODY); strings bare, the rest as JSON
    "$PY" -c 'import json, sys; d = json.loads(sys.argv[1]); r = eval(sys.argv[2]); print(r if isinstance(r, str) else json.dumps(r))' "$H_BODY" "$1" 2>/dev/null
}
ev() { "$PY" "$T_DIR/check.py" "$T_DIR/$1.out" "$2" 2>/dev/null; }

I_PID=
start_issuer() { # DIR [ARGS]: sets I_PID, BASE
    local d=$1
    shift
    rm -f "$d/port"
    "$PY" "$ISSUER" serve "$d" "$@" </dev/null >>"$T_DIR/issuer.log" 2>&1 &
    I_PID=$!
    M8_PIDS+=("$I_PID")
    m8_wait_for 15 test -s "$d/port" || t_bail "issuer.py did not start: $(tail -n 5 "$T_DIR/issuer.log")"
    BASE=http://127.0.0.1:$(cat "$d/port")
}
api() { local m=$1 p=$2; shift 2; m8_http "$m" "$BASE$p" "$@"; }
ctl() { # NAME [JSON]
    m8_http POST "$BASE/_test/$1" -H 'Content-Type: application/json' --data-binary "${2:-{\}}"
}
fault() { ctl fault "$1"; [ "$H_STATUS" = 200 ] || t_diag "fault $1 -> $H_STATUS $H_BODY"; }

LEGACY=(-H "X-Internal-Token: $PRIV")
BOOT=(-H "X-Internal-Client: svc" -H "X-Internal-Token: $CS")
BOOT2=(-H "X-Internal-Client: svc2" -H "X-Internal-Token: $CS2")
P=/private/v1
jti_body() { printf '{"jti":"%s","expected_user_id":"%s","schema_version":"%s"}' "$1" "$2" "${3:-2}"; }
jti_status() { # BODY AUTH-HEADERS...
    local b=$1
    shift
    api POST $P/jti-status -H 'Content-Type: application/json' --data-binary "$b" "$@"
}
mint() { # [JSON]: sets TOK JTI SUB
    ctl mint "${1:-{\}}"
    TOK=$(js 'd["token"]')
    JTI=$(js 'd["jti"]')
    SUB=$(js 'd["sub"]')
}
INACTIVE='{"active":false,"schema_version":"2"}'
ms_since() { echo $(($(m8_now_ms) - $1)); }

declare -A S_PID=()
stream_start() { # NAME [CURL ARGS]: a background event-stream reader into T_DIR/NAME.out
    local n=$1
    shift
    : >"$T_DIR/$n.out"
    : >"$T_DIR/$n.hdr"
    "$CURL" -sS -N --max-time 120 -D "$T_DIR/$n.hdr" -o "$T_DIR/$n.out" "$@" \
        "$BASE$P/events/stream" 2>"$T_DIR/$n.err" &
    S_PID[$n]=$!
    M8_PIDS+=("$!")
}
stream_stop() { m8_kill_wait "${S_PID[$1]}" 2; }
stream_rc() { # NAME SECONDS: waits for the reader to end; sets S_RC
    S_RC=timeout
    m8_wait_exit "${S_PID[$1]}" "$2" && S_RC=$M8_RC
}
has_hdr() { grep -qi "^HTTP/1.1 200" "$T_DIR/$1.hdr"; }
n_events_ge() { [ "$(ev "$1" 'len(E)')" -ge "$2" ]; }
n_pings_ge() { [ "$(ev "$1" 'P')" -ge "$2" ]; }
streams_open() { api GET /_test/stats; js 'd["streams_open"]'; }
streams_is() { [ "$(streams_open)" = "$1" ]; }

# ---------------------------------------------------------------- startup
start_issuer "$ID" --port 0 --client "svc=$CS" --client "svc2=$CS2" --client-scopes svc2=introspection \
    --event-signing-key-file "$T_DIR/ekey" --heartbeat 0.5 --buffer-size 4 --service-token-ttl 60
URLS=$(cat "$ID/urls.json")
H_BODY=$URLS
t_is "$(js 'd["base"]')" "$BASE" "start: DIR/port and urls.json agree (port 0 picked a port)"
t_is "$(js 'd["introspection"]')" "$BASE/private/v1/jti-status" "start: urls.json has the jti-status URL"
t_is "$(js 'd["events"] + " " + d["service_token"] + " " + d["apikey"]')" \
    "$BASE$P/events/stream $BASE$P/service-token $BASE$P/api-keys/introspect" \
    "start: the stream, exchange and API-key URLs derive from INTROSPECTION_URL (doc/wire.md#private-urls)"
t_is "$(js 'd["pid"]')" "$I_PID" "start: urls.json names the process"
t_ok "$([ -s "$ID/access_key.pem" ] && [ -s "$ID/access_key.pub" ]; echo $?)" \
    "start: the signing key pair is written to DIR"
HELP=$("$PY" "$ISSUER" --help 2>&1)
miss=
for w in /_test/mint /_test/revoke /_test/delete_user /_test/user /_test/event /_test/epoch \
    /_test/ring /_test/apikey /_test/client /_test/revoke_service_tokens /_test/rotate_key \
    /_test/config /_test/fault /_test/stats /_test/reset_stats jti-status events/stream \
    service-token api-keys/introspect drop_stream forged_event unsigned_event silent \
    malformed big: slow: down status: --heartbeat --buffer-size --client --key-alg; do
    [[ $HELP == *"$w"* ]] || miss="$miss $w"
done
t_is "$miss" "" "--help documents every endpoint, control, fault and main option"
VOUT=$("$PY" "$ISSUER" vectors 2>&1)
t_ok "$?" "issuer.py vectors: the canonical writer passes its own TAP" "$VOUT"
t_like "$VOUT" "1\.\.2[0-9]" "issuer.py vectors ran the canonical JSON table (doc/wire.md#canonical-json) and the float sweep"

# canon over the literal vectors of doc/wire.md#canonical-json (input,
# canonical bytes, sig under VKEY)
canon() { printf '%s' "$1" | "$PY" "$ISSUER" canon "${@:2}"; }
VA='{"event_type": "session.revoked", "version": "v2", "user_id": "550e8400-e29b-41d4-a716-446655440000", "jti": null, "auth_generation": 3, "event_id": "550e8400-e29b-41d4-a716-446655440000:3:publish:user-wide"}'
t_is "$(canon "$VA")" '{"auth_generation":3,"event_id":"550e8400-e29b-41d4-a716-446655440000:3:publish:user-wide","event_type":"session.revoked","jti":null,"user_id":"550e8400-e29b-41d4-a716-446655440000","version":"v2"}' \
    "canon: 1.8 vector A bytes"
t_is "$(canon "$VA" --sign "$VKEY")" 35e54bd7e735594b02d4120a69d66f454a94a1352b4c20e9be5c4460ace9130c "canon: 1.8 vector A sig"
VB='{"event_type":"user.deleted","version":"v1","user_id":"550e8400-e29b-41d4-a716-446655440000"}'
t_is "$(canon "$VB")" '{"event_type":"user.deleted","user_id":"550e8400-e29b-41d4-a716-446655440000","version":"v1"}' "canon: 1.8 vector B bytes"
t_is "$(canon "$VB" --sign "$VKEY")" 50491c60ee726cedbee7eb15ac01df5786588429297f5f9c30ee2ef8034403fb "canon: 1.8 vector B sig"
VC='{"event_type":"session.revoked","version":"v1","user_id":"u-1","jti":"jti-0001","auth_generation":null,"event_id":null}'
t_is "$(canon "$VC")" '{"auth_generation":null,"event_id":null,"event_type":"session.revoked","jti":"jti-0001","user_id":"u-1","version":"v1"}' "canon: 1.8 vector C bytes (nulls kept)"
t_is "$(canon "$VC" --sign "$VKEY")" 0b12bad4936d9af100ea1b3a51e7f5a4ef9efdd81d13a920fb49ca4349684220 "canon: 1.8 vector C sig"
VD='{"b":"\u00e9\u2603\ud83d\ude00\u0001\u007f/\"\\\n\t","a":[1.0,1e-7,0.0001,1e16,123456789012345678.0,2.5,-0.0,true,false,null,100000000000000000000],"B":{"z":1,"y":2},"\u00e9":1,"_":0}'
VD_CANON='{"B":{"y":2,"z":1},"_":0,"a":[1.0,1e-07,0.0001,1e+16,1.2345678901234568e+17,2.5,-0.0,true,false,null,100000000000000000000],"b":"\u00e9\u2603\ud83d\ude00\u0001\u007f/\"\\\n\t","\u00e9":1}'
VD_SIG=c80cdf8a008141320af3bf04250f5b7f6180b80dfc82e85dd81a4469119a834a
t_is "$(canon "$VD")" "$VD_CANON" "canon: 1.8 vector D bytes (escapes, floats, big int, sort order)"
t_is "$(canon "$VD" --sign "$VKEY")" "$VD_SIG" "canon: 1.8 vector D sig"
t_is "$(canon '{}' --sign "$VKEY")" 791cb9f2afd2b29aae435dc0153fff509a380e75d2df603fb3738b6f4a748bc3 "canon: 1.8 vector E (empty object) sig"
VF='{"event_type":"session.revoked","user_id":"u1","jti":"j1"}'
t_is "$(canon "$VF")" '{"event_type":"session.revoked","jti":"j1","user_id":"u1"}' "canon: 1.8 vector F bytes"
t_is "$(canon "$VF" --sign 'Abcdef-1234_XYZ-abcdef-ghijkl-mnopqr-stuvwx')" \
    88d5cc7640c46e2cc13a44c129b9c7f94f466bb11b8d274a187c772d3e957eb4 "canon: 1.8 vector F sig (the SDK test key)"
t_is "$(canon '[1E2,1.10,5e0,"\u00E9",-0,1e400,-1e400,NaN,1e-5,5e-324,1000000000000000.0]')" \
    '[100.0,1.1,5.0,"\u00e9",0,Infinity,-Infinity,NaN,1e-05,5e-324,1000000000000000.0]' \
    "canon: the re-parsing rules of 1.8 (1E2, 1.10, 5e0, \\u00E9, -0, 1e400, NaN, 1e-5)"
t_is "$(canon '{"a":1,"a":2}')" '{"a":2}' "canon: duplicate keys collapse to the last value"
t_is "$(canon '{"a":[2.5e-3,123456789.125,0.1,1e22,-1.5e-300]}')" \
    "$("$PY" -c 'import json; print(json.dumps(json.loads("{\"a\":[2.5e-3,123456789.125,0.1,1e22,-1.5e-300]}"), sort_keys=True, separators=(",", ":")))')" \
    "canon: more floats agree with json.dumps"

# ---------------------------------------------------------------- JWKS and minting
api GET /.well-known/jwks.json
t_is "$H_STATUS" 200 "jwks: 200"
t_is "$(js '[(k["kty"], k["use"], k["alg"], k["kid"]) for k in d["keys"]]')" \
    "[[\"RSA\", \"sig\", \"RS256\", \"$(H_BODY=$URLS js 'd["kid"]')\"]]" \
    "jwks: one RSA key with use sig, alg RS256 and the kid of urls.json"
cp "$T_DIR/h.body" "$T_DIR/jwks.json"
mint '{"role":"writer"}'
t_is "$H_STATUS" 200 "mint: 200"
verify_tok() { # TOKEN KEY-FILE|jwks ALG: the claims as JSON, verified by PyJWT
    "$PY" - "$@" <<'PYEOF'
import json, sys, jwt
tok, src, alg = sys.argv[1:4]
if src.endswith("jwks.json"):
    hdr = jwt.get_unverified_header(tok)
    keys = {k["kid"]: k for k in json.load(open(src))["keys"]}
    key = jwt.PyJWK(keys[hdr["kid"]]).key
else:
    key = open(src, "rb").read()
c = jwt.decode(tok, key, algorithms=[alg], audience="item-service",
               issuer="https://auth.example.com")
print(json.dumps(c))
PYEOF
}
H_BODY=$(verify_tok "$TOK" "$T_DIR/jwks.json" RS256)
t_ok "$?" "mint: the token verifies against the served JWKS (PyJWT)"
t_is "$(js '[d["type"], d["role"], d["is_superuser"], d["iss"], d["aud"], d["exp"] - d["iat"], d["iat"] == d["nbf"]]')" \
    '["access", "writer", false, "https://auth.example.com", "item-service", 1800, true]' \
    "mint: type access, role, is_superuser, iss/aud from the flags, 30 min, nbf = iat (doc/wire.md#token-claims)"
t_is "$(js 'sorted(d)')" \
    '["aud", "avatar", "email", "email_verified", "exp", "full_name", "iat", "is_active", "is_superuser", "iss", "jti", "nbf", "role", "sub", "tenant_id", "type"]' \
    "mint: every claim of doc/wire.md#token-claims is present"
t_like "$(js 'd["sub"] + " " + d["jti"]')" '^[0-9a-f-]{36} [0-9a-f-]{36}$' "mint: sub and jti are UUIDs"
H_BODY=$(verify_tok "$TOK" "$ID/access_key.pub" RS256)
t_ok "$?" "mint: the token verifies with DIR/access_key.pub too"
t_is "$("$PY" -c 'import jwt,sys; print(jwt.get_unverified_header(sys.argv[1])["kid"])' "$TOK")" \
    "$(H_BODY=$URLS js 'd["kid"]')" "mint: the header carries the kid"
api POST "/_test/mint?raw=1" --data-binary '{"role":"reader"}'
t_like "$H_BODY" '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "mint ?raw=1: the bare token"
ctl mint '{"role":"superadmin"}'
t_is "$(js 'd["claims"]["is_superuser"]')" true "mint: role superadmin alone sets is_superuser"
ctl mint '{"role":"admin","is_superuser":true}'
t_is "$H_STATUS $H_BODY" '500 {"detail":"Could not issue token."}' "mint: an inconsistent role pair is refused as by the issuer"
ctl mint '{"role":"admin","is_superuser":true,"_allow_inconsistent":true,"_drop":["email"],"_ttl":-10}'
t_is "$(js '[d["claims"]["is_superuser"], "email" in d["claims"], d["exp"] < d["claims"]["iat"]]')" \
    '[true, false, true]' "mint: _allow_inconsistent, _drop and a negative _ttl"

# ---------------------------------------------------------------- service-token exchange
api POST $P/service-token "${BOOT[@]}" -H 'Content-Type: application/json' \
    --data-binary '{"scopes":["introspection","event-stream","api-key-introspection"]}'
t_is "$H_STATUS" 200 "exchange: 200 for the bootstrap pair"
t_is "$(js '[d["token_type"], d["expires_in"], d["scope"], sorted(d)]')" \
    '["bearer", 60, "api-key-introspection event-stream introspection", ["access_token", "expires_in", "scope", "token_type"]]' \
    "exchange: token_type, expires_in = the TTL, scope space-separated and sorted"
STOK=$(js 'd["access_token"]')
SVC=(-H "Authorization: Bearer $STOK")
H_BODY=$("$PY" -c 'import jwt,sys,json; print(json.dumps(jwt.decode(sys.argv[1], sys.argv[2], algorithms=["HS256"], audience="fa-auth-m8/internal-service")))' "$STOK" "$PRIV")
t_is "$(js '[d["sub"], d["type"], d["exp"] - d["iat"], d["nbf"] == d["iat"], len(d["jti"])]')" \
    '["svc", "service", 60, true, 36]' "exchange: an HS256 JWT over PRIVATE_API_SECRET with the exchange claims (doc/wire.md#service-token-exchange)"
api POST $P/service-token -H "X-Internal-Client: svc" -H "X-Internal-Token: wrong" --data-binary '{"scopes":["introspection"]}'
t_is "$H_STATUS $H_BODY" '401 {"detail":"Unauthorized"}' "exchange: 401 for a wrong secret"
api POST $P/service-token -H "X-Internal-Client: nobody" -H "X-Internal-Token: $CS" --data-binary '{"scopes":["introspection"]}'
t_is "$H_STATUS $H_BODY" '401 {"detail":"Unauthorized"}' "exchange: 401 for an unknown client"
api POST $P/service-token "${LEGACY[@]}" --data-binary '{"scopes":["introspection"]}'
t_is "$H_STATUS" 401 "exchange: 401 for the legacy header alone"
api POST $P/service-token "${BOOT[@]}" --data-binary '{"scopes":[]}'
t_is "$H_STATUS $H_BODY" '403 {"detail":"Forbidden"}' "exchange: 403 for empty scopes"
api POST $P/service-token "${BOOT2[@]}" --data-binary '{"scopes":["introspection","event-stream"]}'
t_is "$H_STATUS $H_BODY" '403 {"detail":"Forbidden"}' "exchange: 403 for scopes not granted"
api POST $P/service-token "${BOOT2[@]}" --data-binary '{"scopes":["introspection"]}'
STOK2=$(js 'd["access_token"]')
t_is "$H_STATUS" 200 "exchange: 200 for a subset of the granted scopes"
ctl config '{"service_token_exchange":false}'
api POST $P/service-token "${BOOT[@]}" --data-binary '{"scopes":["introspection"]}'
t_is "$H_STATUS $H_BODY" '404 {"detail":"Service-token exchange not enabled"}' "exchange: 404 when disabled"
ctl config '{"service_token_exchange":true}'

# ---------------------------------------------------------------- jti-status v2
mint '{"role":"writer"}'
A_JTI=$JTI A_SUB=$SUB
for mode in LEGACY BOOT SVC; do
    declare -n hdrs=$mode
    jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${hdrs[@]}"
    t_is "$H_STATUS $H_BODY" "200 {\"active\":true,\"user_id\":\"$A_SUB\",\"auth_generation\":1,\"schema_version\":\"2\"}" \
        "jti-status $mode: active, subject, generation, schema 2 in the documented order (doc/wire.md#jti-status-response)"
    jti_status "$(jti_body "$(cat /proc/sys/kernel/random/uuid)" "$A_SUB")" "${hdrs[@]}"
    t_is "$H_STATUS $H_BODY" "200 $INACTIVE" "jti-status $mode: a jti never issued is the generic inactive"
    unset -n hdrs
done
api GET /_test/stats
t_is "$(js '[d["auth"]["legacy"] >= 2, d["auth"]["bootstrap"] >= 2, d["auth"]["service_token"] >= 2]')" \
    '[true, true, true]' "jti-status: stats saw the three auth modes"
mint
B_JTI=$JTI B_SUB=$SUB
ctl revoke "{\"jti\":\"$B_JTI\"}"
for mode in LEGACY BOOT SVC; do
    declare -n hdrs=$mode
    jti_status "$(jti_body "$B_JTI" "$B_SUB")" "${hdrs[@]}"
    t_is "$H_STATUS $H_BODY" "200 $INACTIVE" "jti-status $mode: a revoked jti is inactive"
    unset -n hdrs
done
jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${BOOT[@]}"
t_is "$(js 'd["active"]')" true "jti-status: revoking one jti leaves the user's other tokens active"
jti_status "$(jti_body "$A_JTI" "$(cat /proc/sys/kernel/random/uuid)")" "${BOOT[@]}"
t_is "$H_BODY" "$INACTIVE" "jti-status: another subject is inactive"
jti_status "$(jti_body "$A_JTI" "$A_SUB" 1)" "${BOOT[@]}"
t_is "$H_BODY" "$INACTIVE" "jti-status: schema_version other than 2 is inactive"
jti_status "{\"jti\":\"$A_JTI\"}" "${BOOT[@]}"
t_is "$H_STATUS $H_BODY" '200 {"active":true}' "jti-status: no expected_user_id gets the v1 answer"
jti_status "{\"jti\":\"$A_JTI\",\"expected_user_id\":\"user-42\",\"schema_version\":\"2\"}" "${BOOT[@]}"
t_is "$H_STATUS" 422 "jti-status: a non-UUID expected_user_id is 422"
jti_status '{"jti":' "${BOOT[@]}"
t_is "$H_STATUS" 422 "jti-status: a body that is not JSON is 422"
jti_status "$(jti_body "$A_JTI" "$A_SUB")"
t_is "$H_STATUS $H_BODY" '401 {"detail":"Unauthorized"}' "jti-status: no credentials, 401"
jti_status "$(jti_body "$A_JTI" "$A_SUB")" -H "X-Internal-Token: wrong"
t_is "$H_STATUS" 401 "jti-status: a wrong legacy secret, 401"
jti_status "$(jti_body "$A_JTI" "$A_SUB")" -H "X-Internal-Client: svc" -H "X-Internal-Token: $CS2"
t_is "$H_STATUS" 401 "jti-status: another client's secret, 401"
jti_status "$(jti_body "$A_JTI" "$A_SUB")" -H "Authorization: Bearer $STOK.x"
t_is "$H_STATUS" 401 "jti-status: a tampered service token, 401"
ctl client '{"client_id":"svc3","secret":"s3-Secret-0123456789","scopes":["event-stream"]}'
jti_status "$(jti_body "$A_JTI" "$A_SUB")" -H "X-Internal-Client: svc3" -H "X-Internal-Token: s3-Secret-0123456789"
t_is "$H_STATUS $H_BODY" '403 {"detail":"Forbidden"}' "jti-status: a client without scope introspection, 403"
api GET $P/jti-status "${BOOT[@]}"
t_is "$H_STATUS $(m8_hdr Allow)" "405 POST" "jti-status: GET is 405 with Allow"
ctl config '{"legacy":false}'
jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${LEGACY[@]}"
t_is "$H_STATUS" 401 "jti-status: legacy refused when switched off (the current issuer)"
ctl config '{"legacy":true}'
mint '{"_ttl":-1}'
jti_status "$(jti_body "$JTI" "$SUB")" "${BOOT[@]}"
t_is "$H_BODY" "$INACTIVE" "jti-status: an expired session is inactive"
mint '{"_session":false}'
jti_status "$(jti_body "$JTI" "$SUB")" "${BOOT[@]}"
t_is "$H_BODY" "$INACTIVE" "jti-status: _session false mints a jti never issued"
# user-wide revocation: every token of the user issued so far, not the later ones
mint
U_SUB=$SUB U_OLD=$JTI
mint "{\"sub\":\"$U_SUB\"}"
U_OLD2=$JTI
ctl revoke "{\"user_id\":\"$U_SUB\",\"emit\":false}"
t_is "$(js 'd["event"]')" null "revoke user emit false: no event"
jti_status "$(jti_body "$U_OLD" "$U_SUB")" "${BOOT[@]}"
r1=$H_BODY
jti_status "$(jti_body "$U_OLD2" "$U_SUB")" "${BOOT[@]}"
t_is "$r1 $H_BODY" "$INACTIVE $INACTIVE" "jti-status: a user-wide revocation makes both older tokens inactive"
mint "{\"sub\":\"$U_SUB\"}"
jti_status "$(jti_body "$JTI" "$U_SUB")" "${BOOT[@]}"
t_is "$H_BODY" "{\"active\":true,\"user_id\":\"$U_SUB\",\"auth_generation\":2,\"schema_version\":\"2\"}" \
    "jti-status: a token minted after it is active at generation 2"
U_NEW=$JTI
ctl user "{\"user_id\":\"$U_SUB\",\"is_active\":false}"
jti_status "$(jti_body "$U_NEW" "$U_SUB")" "${BOOT[@]}"
t_is "$H_BODY" "$INACTIVE" "jti-status: an inactive user's token is inactive"
ctl user "{\"user_id\":\"$U_SUB\",\"is_active\":true}"
ctl delete_user "{\"user_id\":\"$U_SUB\",\"emit\":false}"
jti_status "$(jti_body "$U_NEW" "$U_SUB")" "${BOOT[@]}"
t_is "$H_BODY" "$INACTIVE" "jti-status: a deleted user's token is inactive"
ctl config '{"mode":"stateless"}'
jti_status "$(jti_body "$(cat /proc/sys/kernel/random/uuid)" "$A_SUB")" "${BOOT[@]}"
t_is "$H_BODY" "{\"active\":true,\"user_id\":\"$A_SUB\",\"auth_generation\":1,\"schema_version\":\"2\"}" \
    "jti-status stateless: active with the user's generation while the user exists"
jti_status "$(jti_body "$U_NEW" "$U_SUB")" "${BOOT[@]}"
t_is "$H_BODY" "$INACTIVE" "jti-status stateless: a deleted user is inactive"
ctl config '{"mode":"stateful"}'

# service-token lifetime, invalidation and the 401 switch
# exp has whole seconds: a 2 s token is fresh for at least one second
ctl config '{"service_token_ttl":2}'
api POST $P/service-token "${BOOT[@]}" --data-binary '{"scopes":["introspection"]}'
t_is "$(js 'd["expires_in"]')" 2 "exchange: the lifetime is settable (2 s)"
SHORT=$(js 'd["access_token"]')
jti_status "$(jti_body "$A_JTI" "$A_SUB")" -H "Authorization: Bearer $SHORT"
t_is "$H_STATUS" 200 "service token: accepted while fresh"
sleep 3.1
jti_status "$(jti_body "$A_JTI" "$A_SUB")" -H "Authorization: Bearer $SHORT"
t_is "$H_STATUS $H_BODY" '401 {"detail":"Unauthorized"}' "service token: 401 once expired"
ctl config '{"service_token_ttl":60}'
ctl revoke_service_tokens
t_like "$(js 'd["invalidated"]')" '^[1-9]' "revoke_service_tokens: counts the tokens issued"
jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${SVC[@]}"
t_is "$H_STATUS" 401 "service token: 401 after the issuer invalidated it"
api POST $P/service-token "${BOOT[@]}" --data-binary '{"scopes":["introspection","event-stream","api-key-introspection"]}'
STOK=$(js 'd["access_token"]')
SVC=(-H "Authorization: Bearer $STOK")
jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${SVC[@]}"
t_is "$H_STATUS" 200 "service token: a re-minted token works"
fault '{"target":"private","mode":"status:401","count":2}'
jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${SVC[@]}"
s1=$H_STATUS
api POST $P/api-keys/introspect "${BOOT[@]}" --data-binary '{"api_key":"x","schema_version":"1"}'
s2=$H_STATUS
jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${SVC[@]}"
t_is "$s1 $s2 $H_STATUS" "401 401 200" "fault private status:401 count 2: the next two private calls answer 401"

# ---------------------------------------------------------------- event stream
stream_start s1 "${BOOT[@]}"
m8_wait_for 10 has_hdr s1
t_is "$(m8_hdr_in "$T_DIR/s1.hdr" Content-Type)" "text/event-stream; charset=utf-8" "stream: 200 text/event-stream; charset=utf-8"
t_is "$(m8_hdr_in "$T_DIR/s1.hdr" Cache-Control) $(m8_hdr_in "$T_DIR/s1.hdr" X-Accel-Buffering) $(m8_hdr_in "$T_DIR/s1.hdr" Connection)" \
    "no-cache no keep-alive" "stream: Cache-Control, X-Accel-Buffering, Connection as the issuer"
t_is "$(m8_hdr_in "$T_DIR/s1.hdr" Transfer-Encoding)" chunked "stream: chunked"
m8_wait_for 5 n_pings_ge s1 2
t_ok "$?" "stream: ': ping' heartbeats at the configured interval (0.5 s)"
t_is "$(ev s1 'len(E)')" 0 "stream: no Last-Event-ID, no replay and no gap"
mint
R_JTI=$JTI R_SUB=$SUB
ctl revoke "{\"jti\":\"$R_JTI\"}"
t_is "$(js 'd["event"]["streams"]')" 1 "revoke jti: the event reached the open stream"
EID1=$(js 'd["event"]["id"]')
m8_wait_for 5 n_events_ge s1 1
t_is "$(ev s1 '[E[0]["id"], E[0]["event"]]')" "[\"$EID1\", \"session-revoked\"]" "stream: id: <epoch>-<seq> and event: session-revoked"
t_like "$EID1" '^[0-9]{19}-[0-9]+$' "stream: the id is <boot time in ns>-<seq>"
t_is "$(ev s1 'verify(E[0]["data"])')" ok "stream: the signature verifies (independent HMAC over json.dumps(sort_keys) of the parsed payload)"
t_is "$(ev s1 'payload(E[0]["data"])')" \
    "{\"event_type\": \"session.revoked\", \"version\": \"v1\", \"user_id\": \"$R_SUB\", \"jti\": \"$R_JTI\", \"auth_generation\": null, \"event_id\": null}" \
    "stream: the v1 single-session payload, members in issuer order (doc/wire.md#event-types)"
t_is "$(ev s1 'E[0]["data"] == json.dumps(json.loads(E[0]["data"])) and list(json.loads(E[0]["data"])) == ["payload", "sig"]')" \
    true "stream: data is json.dumps default form, payload then sig (doc/wire.md#sse-framing)"
t_like "$(ev s1 'json.loads(E[0]["data"])["sig"]')" '^[0-9a-f]{64}$' "stream: sig is 64 lowercase hex"
t_is "$(ev s1 'verify(E[0]["data"], "another-key")')" bad "stream: the check refuses another key (the test is not vacuous)"
mint
ctl revoke "{\"user_id\":\"$SUB\"}"
m8_wait_for 5 n_events_ge s1 2
t_is "$(ev s1 'payload(E[1]["data"])')" \
    "{\"event_type\": \"session.revoked\", \"version\": \"v2\", \"user_id\": \"$SUB\", \"jti\": null, \"auth_generation\": 2, \"event_id\": \"$SUB:2:publish:user-wide\"}" \
    "stream: the v2 user-wide payload with the durable event_id"
t_is "$(ev s1 'verify(E[1]["data"])')" ok "stream: v2 event signed"
ctl revoke "{\"jti\":\"$A_JTI\",\"version\":\"v2\"}"
m8_wait_for 5 n_events_ge s1 3
t_is "$(ev s1 'payload(E[2]["data"])["auth_generation"], payload(E[2]["data"])["version"]')" '[1, "v2"]' \
    "stream: a v2 single-session revocation carries the generation"
ctl delete_user "{\"user_id\":\"$R_SUB\"}"
m8_wait_for 5 n_events_ge s1 4
t_is "$(ev s1 '[E[3]["event"], payload(E[3]["data"]), verify(E[3]["data"])]')" \
    "[\"user-deleted\", {\"event_type\": \"user.deleted\", \"version\": \"v1\", \"user_id\": \"$R_SUB\"}, \"ok\"]" \
    "stream: user-deleted with the v1 payload, signed"
ctl revoke "{\"user_id\":\"$R_SUB\",\"version\":\"v1\",\"omit_nulls\":true}"
m8_wait_for 5 n_events_ge s1 5
t_is "$(ev s1 '[payload(E[4]["data"]), verify(E[4]["data"])]')" \
    "[{\"event_type\": \"session.revoked\", \"version\": \"v1\", \"user_id\": \"$R_SUB\"}, \"ok\"]" \
    "stream: the 2.x-SDK shape without null members, signed"
t_is "$(ev s1 '[int(e["id"].rsplit("-", 1)[1]) - int(E[0]["id"].rsplit("-", 1)[1]) for e in E] + [len({e["id"].rsplit("-", 1)[0] for e in E})]')" \
    '[0, 1, 2, 3, 4, 1]' "stream: one epoch, seq counts up by one per event"
# floats through the wire: the 1.8 vector D payload under the 1.8 key
ctl config "{\"signing_key\":\"$VKEY\"}"
ctl event "{\"event\":\"session-revoked\",\"payload\":$VD}"
m8_wait_for 5 n_events_ge s1 6
t_is "$(ev s1 'json.loads(E[5]["data"])["sig"]')" "$VD_SIG" "stream: vector D (floats, escapes) sent live carries the 1.8 signature"
t_is "$(ev s1 "verify(E[5][\"data\"], \"$VKEY\")")" ok "stream: and the independent check agrees"
ctl config "{\"signing_key\":\"$EKEY\"}"
# replay with Last-Event-ID
LAST=$(ev s1 'E[-1]["id"]')
stream_stop s1
m8_wait_for 5 streams_is 0
t_ok "$?" "stream: the issuer notices a reader that went away"
ctl revoke "{\"jti\":\"$A_JTI\"}"
M1=$(js 'd["event"]["id"]')
t_is "$(js 'd["event"]["streams"]')" 0 "replay: an event while nobody listens"
ctl delete_user "{\"user_id\":\"$A_SUB\"}"
M2=$(js 'd["event"]["id"]')
stream_start s2 "${BOOT[@]}" -H "Last-Event-ID: $LAST"
m8_wait_for 5 n_events_ge s2 2
t_is "$(ev s2 '[e["id"] for e in E]')" "[\"$M1\", \"$M2\"]" "replay: Last-Event-ID gets exactly the missed events, in order, no gap"
t_is "$(ev s2 '[verify(e["data"]) for e in E]')" '["ok", "ok"]' "replay: the replayed events verify"
stream_stop s2
api GET /_test/stats
t_is "$(js 'd["last_event_ids"][-1]')" "$LAST" "stats: the Last-Event-ID the stream received"
stream_start s3 "${BOOT[@]}" -H "Last-Event-ID: $M2"
m8_wait_for 5 n_pings_ge s3 1
t_is "$(ev s3 'len(E)')" 0 "replay: Last-Event-ID of the newest event: nothing to replay, no gap"
stream_stop s3
# ring of 4: after 7 events EID1 (seq 1) fell out
stream_start s4 "${BOOT[@]}" -H "Last-Event-ID: $EID1"
m8_wait_for 5 n_events_ge s4 1
m8_wait_for 5 n_pings_ge s4 1
t_is "$(ev s4 '[(e["id"], e["event"], e["data"]) for e in E]')" '[[null, "gap", "{}"]]' \
    "gap: an id older than the ring gets 'event: gap' / 'data: {}', no id, no replay"
t_is "$("$PY" -c 'import sys; print(open(sys.argv[1], "rb").read(21) == b"event: gap\ndata: {}\n\n")' "$T_DIR/s4.out")" \
    True "gap: the exact frame, first"
stream_stop s4
stream_start s5 "${BOOT[@]}" -H "Last-Event-ID: garbage"
m8_wait_for 5 n_events_ge s5 1
t_is "$(ev s5 'E[0]["event"]')" gap "gap: a malformed Last-Event-ID"
stream_stop s5
api GET /_test/ring
t_is "$(js 'len(d)')" 4 "ring: holds --buffer-size events"
# epoch change: the open stream ends cleanly, the old id gets a gap
stream_start s6 "${BOOT[@]}"
m8_wait_for 5 has_hdr s6
api GET /_test/stats
OLD_EPOCH=$(js 'd["epoch"]')
ctl epoch
NEW_EPOCH=$(js 'd["epoch"]')
t_ok "$([ "$NEW_EPOCH" != "$OLD_EPOCH" ]; echo $?)" "epoch: a new epoch"
stream_rc s6 5
t_is "$S_RC" 0 "epoch: the open stream ends cleanly (a restart)"
stream_start s7 "${BOOT[@]}" -H "Last-Event-ID: $M2"
m8_wait_for 5 n_events_ge s7 1
t_is "$(ev s7 'E[0]["event"]')" gap "epoch: the old epoch's id gets a gap"
mint
ctl revoke "{\"jti\":\"$JTI\"}"
t_like "$(js 'd["event"]["id"]')" "^$NEW_EPOCH-1\$" "epoch: seq restarts at 1 in the new epoch"
m8_wait_for 5 n_events_ge s7 2
t_is "$(ev s7 '[E[1]["event"], verify(E[1]["data"])]')" '["session-revoked", "ok"]' "epoch: after the gap, live events"
stream_stop s7
stream_start s8 "${BOOT[@]}" -H "Last-Event-ID: $NEW_EPOCH-5"
m8_wait_for 5 n_pings_ge s8 1
t_is "$(ev s8 'len(E)')" 0 "resume: same epoch, seq at or past the counter, no gap"
stream_stop s8
# stream auth and switches
api GET $P/events/stream
t_is "$H_STATUS $H_BODY" '401 {"detail":"Unauthorized"}' "stream: no credentials, 401"
api GET $P/events/stream "${BOOT2[@]}"
t_is "$H_STATUS $H_BODY" '403 {"detail":"Forbidden"}' "stream: without scope event-stream, 403"
api POST $P/service-token "${BOOT2[@]}" --data-binary '{"scopes":["introspection"]}'
STOK2=$(js 'd["access_token"]')
api GET $P/events/stream -H "Authorization: Bearer $STOK2"
t_is "$H_STATUS" 403 "stream: a service token without event-stream, 403"
stream_start s9 "${SVC[@]}"
m8_wait_for 5 has_hdr s9
t_ok "$?" "stream: a service token with event-stream, 200"
stream_stop s9
stream_start s9l "${LEGACY[@]}"
m8_wait_for 5 has_hdr s9l
t_ok "$?" "stream: the legacy header, 200"
stream_stop s9l
ctl config '{"event_stream":false}'
api GET $P/events/stream "${BOOT[@]}"
t_is "$H_STATUS $H_BODY" '404 {"detail":"Event stream disabled"}' "stream: 404 when disabled"
ctl config '{"event_stream":true}'

# ---------------------------------------------------------------- event faults
stream_start f1 "${BOOT[@]}"
m8_wait_for 5 has_hdr f1
fault '{"target":"events","mode":"forged_event","count":1}'
ctl event '{"payload":{"event_type":"session.revoked","version":"v1","user_id":"u","jti":"j"}}'
ctl event '{"payload":{"event_type":"session.revoked","version":"v1","user_id":"u","jti":"k"}}'
m8_wait_for 5 n_events_ge f1 2
t_is "$(ev f1 '[verify(e["data"]) for e in E]')" '["bad", "ok"]' "fault forged_event count 1: one forged event, then signed again"
fault '{"target":"events","mode":"unsigned_event","count":1}'
ctl event '{"payload":{"event_type":"user.deleted","version":"v1","user_id":"u"}}'
m8_wait_for 5 n_events_ge f1 3
t_is "$(ev f1 '[verify(E[2]["data"]), E[2]["data"]]')" \
    '["unsigned", "{\"event_type\": \"user.deleted\", \"version\": \"v1\", \"user_id\": \"u\"}"]' \
    "fault unsigned_event: the bare payload"
fault '{"target":"events","mode":"malformed","count":1}'
ctl event '{"payload":{"event_type":"user.deleted","version":"v1","user_id":"u"}}'
m8_wait_for 5 n_events_ge f1 4
t_is "$(ev f1 'verify(E[3]["data"])')" malformed "fault malformed: data that is not JSON"
fault '{"target":"events","mode":"big:5000","count":1}'
ctl event '{"payload":{"event_type":"user.deleted","version":"v1","user_id":"u"}}'
m8_wait_for 5 n_events_ge f1 5
t_is "$(ev f1 '[len(E[4]["data"]), verify(E[4]["data"])]')" '[5000, "ok"]' "fault big:5000: a signed event whose data is 5000 bytes"
ctl event '{"event":"gap"}'
m8_wait_for 5 n_events_ge f1 6
t_is "$(ev f1 '[E[5]["event"], E[5]["id"]]')" '["gap", null]' "event control: a live gap frame"
ctl event '{"event":"message","data":"line1\nline2","id":false}'
m8_wait_for 5 n_events_ge f1 7
t_is "$(ev f1 '[E[6]["event"], E[6]["data"], E[6]["id"]]')" '["message", "line1\nline2", null]' \
    "event control: raw data, several data lines, no id"
ctl event '{"frame":": custom comment\n\n"}'
t_is "$(js 'd["streams"]')" 1 "event control: a raw frame reaches the stream"
fault '{"target":"events","mode":"silent"}'
sleep 0.3
n0=$(ev f1 'P')
sleep 1.2
t_is "$(ev f1 'P')" "$n0" "fault silent: no heartbeat while silent"
fault '{"target":"events","mode":"ok"}'
m8_wait_for 5 n_pings_ge f1 $((n0 + 1))
t_ok "$?" "fault ok: heartbeats again"
fault '{"target":"events","mode":"drop_stream"}'
t_is "$(js 'd["streams_cut"]')" 1 "fault drop_stream: the open stream is cut"
stream_rc f1 5
t_ok "$([ "$S_RC" != 0 ] && [ "$S_RC" != timeout ]; echo $?)" "fault drop_stream: the reader sees an error, not a clean end (curl $S_RC)"
fault '{"target":"events","mode":"drop_stream","count":1}'
stream_start f2 "${BOOT[@]}"
stream_rc f2 5
t_is "$(has_hdr f2 && echo 200) $([ "$S_RC" != 0 ] && echo error)" "200 error" "fault drop_stream count 1: the next stream is cut after its headers"
stream_start f3 "${BOOT[@]}"
m8_wait_for 5 n_pings_ge f3 1
t_ok "$?" "fault drop_stream count 1: the one after stays up"
fault '{"target":"events","mode":"end_stream"}'
stream_rc f3 5
t_is "$S_RC" 0 "fault end_stream: the open stream ends cleanly"
fault '{"target":"events","mode":"status:503","count":1}'
api GET $P/events/stream "${BOOT[@]}"
t_is "$H_STATUS" 503 "fault events status:503"
fault '{"target":"events","mode":"down","count":1}'
api GET $P/events/stream "${BOOT[@]}"
t_is "$H_STATUS" 000 "fault events down: the connection closes without an answer"
fault '{"target":"events","mode":"slow:1","count":1}'
t0=$(m8_now_ms)
stream_start f4 "${BOOT[@]}"
m8_wait_for 5 has_hdr f4
t_ok "$([ "$(ms_since "$t0")" -ge 950 ]; echo $?)" "fault events slow:1: the headers come after 1 s"
stream_stop f4

# ---------------------------------------------------------------- API keys
ak() { # KEY [AUTH...]
    local k=$1
    shift
    [ $# -eq 0 ] && set -- "${BOOT[@]}"
    api POST $P/api-keys/introspect -H 'Content-Type: application/json' \
        --data-binary "{\"api_key\":\"$k\",\"schema_version\":\"1\"}" "$@"
}
AINACTIVE='{"active":false,"schema_version":"1"}'
ctl apikey '{"key":"k-reader","role":"reader"}'
OWNER=$(js 'd["user_id"]')
ak k-reader
t_is "$H_STATUS $H_BODY" "200 {\"active\":true,\"schema_version\":\"1\",\"audience_id\":\"svc\",\"principal\":{\"user_id\":\"$OWNER\",\"role\":\"reader\",\"is_superuser\":false,\"access_mode\":\"read_only\",\"authentication_method\":\"api_key\",\"auth_generation\":1},\"key_expires_at\":null}" \
    "apikey: active, audience_id = the caller, the principal of doc/wire.md#introspection-response"
ctl apikey '{"key":"k-writer","role":"writer","capabilities":["read","write"],"expires_in":3600}'
ak k-writer
t_is "$(js '[d["principal"]["access_mode"], d["principal"]["role"]]')" '["read_write", "writer"]' "apikey: capabilities read+write -> read_write"
t_like "$(js 'd["key_expires_at"]')" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "apikey: key_expires_at is ISO-8601"
ak k-unknown
t_is "$H_BODY" "$AINACTIVE" "apikey row 11: an unknown key is inactive"
for st in revoked expired owner_inactive owner_missing; do
    ctl apikey "{\"key\":\"k-$st\",\"state\":\"$st\"}"
    ak "k-$st"
    t_is "$H_STATUS $H_BODY" "200 $AINACTIVE" "apikey row 11: state $st is inactive"
done
ctl apikey '{"key":"k-past","expires_in":-5}'
ak k-past
t_is "$H_BODY" "$AINACTIVE" "apikey: expires_at in the past is inactive"
ctl apikey '{"key":"k-deleted"}'
ctl delete_user "{\"user_id\":\"$(js 'd["user_id"]')\",\"emit\":false}"
ak k-deleted
t_is "$H_BODY" "$AINACTIVE" "apikey: a deleted owner is inactive"
ctl apikey '{"key":"k-aud","audiences":["other"]}'
ak k-aud
t_is "$H_BODY" "$AINACTIVE" "apikey: a key not bound to the caller's audience is inactive"
ctl apikey '{"key":"k-aud2","audiences":["svc"]}'
ak k-aud2
t_is "$(js 'd["active"]')" true "apikey: a key bound to the caller is active"
ctl apikey '{"key":"k-mismatch","audience_id":"someone-else"}'
ak k-mismatch
t_is "$(js '[d["active"], d["audience_id"]]')" '[true, "someone-else"]' "apikey row 12: audience_mismatch (another audience echoed)"
ctl apikey '{"key":"k-429","state":"rate_limited"}'
ak k-429
t_is "$H_STATUS $(m8_hdr Retry-After) $H_BODY" '429 30 {"detail":"Rate limit exceeded for period: minute"}' "apikey row 5: 429 with Retry-After"
ctl apikey '{"key":"k-429b","state":"rate_limited","retry_after":null}'
ak k-429b
t_is "$H_STATUS $(m8_hdr_count_in "$T_DIR/h.hdrs" Retry-After)" "429 0" "apikey row 5: 429 without Retry-After"
ctl apikey '{"key":"k-quota","quota":{"limit":1,"period":"minute"}}'
ak k-quota
s1=$H_STATUS
ak k-quota
t_is "$s1 $H_STATUS $H_BODY" '200 429 {"detail":"Rate limit exceeded for period: minute"}' "apikey: the key's own quota, then 429"
t_like "$(m8_hdr Retry-After)" '^([1-9]|[1-5][0-9]|60)$' "apikey: the quota 429 computes Retry-After"
ctl apikey '{"key":"k-v2","override":{"schema_version":"2"}}'
ak k-v2
t_is "$(js 'd["schema_version"]')" 2 "apikey row 9: a wrong schema_version in the answer"
ctl apikey '{"key":"k-bad-pair","role":"superadmin","is_superuser":false}'
ak k-bad-pair
t_is "$(js '[d["principal"]["role"], d["principal"]["is_superuser"]]')" '["superadmin", false]' "apikey row 9: an inconsistent principal (malformed for the consumer)"
ctl apikey '{"key":"k-noprinc","override":{"principal":null}}'
ak k-noprinc
t_is "$(js 'd["principal"]')" null "apikey row 9: override drops the principal"
ctl apikey '{"key":"k-big","pad":10000}'
ak k-big
t_is "$H_STATUS ${#H_BODY}" "200 10000" "apikey row 4: an answer padded to 10000 bytes"
ctl apikey '{"key":"k-raw","status":418,"body":{"detail":"teapot"}}'
ak k-raw
t_is "$H_STATUS $H_BODY" '418 {"detail":"teapot"}' "apikey row 8: a key answering any status"
api POST $P/api-keys/introspect "${BOOT[@]}" --data-binary '{"api_key":"k-reader","schema_version":"2"}'
t_is "$H_STATUS $H_BODY" '503 {"detail":"Introspection temporarily unavailable"}' "apikey: an unsupported requested version, 503"
ak k-reader -H "X-Internal-Client: svc" -H "X-Internal-Token: nope"
t_is "$H_STATUS $H_BODY" '401 {"detail":"Unauthorized"}' "apikey row 6: bad credentials, 401"
ak k-reader "${BOOT2[@]}"
t_is "$H_STATUS $H_BODY" '403 {"detail":"Forbidden"}' "apikey row 6: no scope api-key-introspection, 403"
ak k-reader "${SVC[@]}"
t_is "$(js '[d["active"], d["audience_id"]]')" '[true, "svc"]' "apikey: a service token's sub is the audience"
ctl config '{"apikey_rate_limit":2}'
ak k-reader; ak k-reader; ak k-reader
t_is "$H_STATUS $(m8_hdr Retry-After) $H_BODY" '429 60 {"detail":"Introspection rate limit exceeded"}' "apikey: the per-consumer limit, 429 with Retry-After: 60"
ctl config '{"apikey_rate_limit":0}'

# ---------------------------------------------------------------- request faults, every target
for tgt in jwks introspection token apikey; do
    case $tgt in
        jwks) call() { api GET /.well-known/jwks.json; } ;;
        introspection) call() { jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${BOOT[@]}"; } ;;
        token) call() { api POST $P/service-token "${BOOT[@]}" --data-binary '{"scopes":["introspection"]}'; } ;;
        apikey) call() { ak k-reader; } ;;
    esac
    fault "{\"target\":\"$tgt\",\"mode\":\"status:500\",\"count\":1}"
    call
    s1=$H_STATUS
    call
    t_is "$s1 $H_STATUS" "500 200" "fault $tgt status:500 count 1: one 500, then normal"
    fault "{\"target\":\"$tgt\",\"mode\":\"down\",\"count\":1}"
    call
    t_is "$H_STATUS" 000 "fault $tgt down: closed without an answer"
    t_like "$(cat "$T_DIR/h.err")" "Empty reply" "fault $tgt down: curl sees an empty reply"
    fault "{\"target\":\"$tgt\",\"mode\":\"slow:0.6\",\"count\":1}"
    t0=$(m8_now_ms)
    call
    t_ok "$([ "$(ms_since "$t0")" -ge 550 ] && [ "$H_STATUS" = 200 ]; echo $?)" "fault $tgt slow:0.6: a normal answer after 0.6 s"
    fault "{\"target\":\"$tgt\",\"mode\":\"malformed\",\"count\":1}"
    call
    "$PY" -c 'import json,sys; json.loads(sys.argv[1])' "$H_BODY" 2>/dev/null
    t_is "$H_STATUS $?" "200 1" "fault $tgt malformed: a 200 that is not JSON"
    fault "{\"target\":\"$tgt\",\"mode\":\"big:3000\",\"count\":1}"
    call
    t_is "$H_STATUS ${#H_BODY}" "200 3000" "fault $tgt big:3000: the answer padded to 3000 bytes"
    fault "{\"target\":\"$tgt\",\"mode\":\"status:302\",\"count\":1}"
    call
    t_like "$H_STATUS $(m8_hdr Location)" "^302 /" "fault $tgt status:302: a redirect with Location"
    fault "{\"target\":\"$tgt\",\"mode\":\"status:204\",\"count\":1}"
    call
    t_is "$H_STATUS ${#H_BODY}" "204 0" "fault $tgt status:204: no body"
done
fault '{"target":"introspection","mode":"status:503"}'
jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${BOOT[@]}"
s1="$H_STATUS $H_BODY"
jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${BOOT[@]}"
t_is "$s1 | $H_STATUS" '503 {"detail":"Introspection temporarily unavailable"} | 503' "fault introspection status:503 without count: stays"
fault '{"target":"introspection","mode":"ok"}'
jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${BOOT[@]}"
t_is "$H_STATUS" 200 "fault ok: cleared"
for kind in schema version subject type generation; do
    fault "{\"target\":\"introspection\",\"mode\":\"malformed:$kind\",\"count\":1}"
    jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${BOOT[@]}"
    t_is "$H_STATUS" 200 "fault introspection malformed:$kind answers 200"
    case $kind in
        schema) t_is "$H_BODY" '{"active":true}' "  ... {\"active\":true} alone" ;;
        version) t_is "$(js 'd["schema_version"]')" 3 "  ... schema_version 3" ;;
        subject) t_ok "$([ "$(js 'd["user_id"]')" != "$A_SUB" ]; echo $?)" "  ... another user_id" ;;
        type) t_is "$(js 'd["active"]')" true "  ... active is the string \"true\"" ;;
        generation) t_is "$(js 'd["auth_generation"]')" 0 "  ... auth_generation 0" ;;
    esac
done
for kind in schema version inconsistent method; do
    fault "{\"target\":\"apikey\",\"mode\":\"malformed:$kind\",\"count\":1}"
    ak k-reader
    case $kind in
        schema) t_is "$(js '"principal" in d')" false "fault apikey malformed:schema: no principal" ;;
        version) t_is "$(js 'd["schema_version"]')" 2 "fault apikey malformed:version" ;;
        inconsistent) t_is "$(js '[d["principal"]["role"], d["principal"]["is_superuser"]]')" '["superadmin", false]' "fault apikey malformed:inconsistent" ;;
        method) t_is "$(js 'd["principal"]["authentication_method"]')" password "fault apikey malformed:method" ;;
    esac
done
fault '{"target":"apikey","mode":"status:429","count":1}'
ak k-reader
t_is "$H_STATUS $(m8_hdr Retry-After)" "429 60" "fault apikey status:429: with Retry-After: 60"
fault '{"target":"token","mode":"malformed:schema","count":1}'
api POST $P/service-token "${BOOT[@]}" --data-binary '{"scopes":["introspection"]}'
t_is "$(js '"access_token" in d')" false "fault token malformed:schema: no access_token"
fault '{"target":"token","mode":"malformed:expires","count":1}'
api POST $P/service-token "${BOOT[@]}" --data-binary '{"scopes":["introspection"]}'
t_is "$(js 'd["expires_in"]')" soon "fault token malformed:expires: expires_in not a number"
fault '{"target":"jwks","mode":"malformed:schema","count":1}'
api GET /.well-known/jwks.json
t_is "$H_BODY" '{"keys":"none"}' "fault jwks malformed:schema"
fault '{"target":"all","mode":"status:503"}'
api GET /_test/fault
t_is "$(js 'd["all"]["mode"]')" status:503 "GET /_test/fault lists the active faults"
api GET /.well-known/jwks.json
t_is "$H_STATUS" 503 "fault all: applies to jwks too"
fault '{"target":"all","mode":"ok"}'
api GET /_test/fault
t_is "$H_BODY" '{}' "fault all ok: clears every target"
ctl fault '{"target":"jwks","mode":"forged_event"}'
t_is "$H_STATUS" 422 "fault: an events-only mode on another target is 422"
ctl fault '{"target":"jwks","mode":"wobbly"}'
t_is "$H_STATUS" 422 "fault: an unknown mode is 422"
ctl fault '{"target":"db","mode":"down"}'
t_is "$H_STATUS" 422 "fault: an unknown target is 422"

# ---------------------------------------------------------------- stats, misc
ctl reset_stats
api GET /.well-known/jwks.json
api GET /.well-known/jwks.json
api GET /_test/stats/jwks
t_is "$H_STATUS $H_BODY" "200 2" "stats: requests per endpoint (text form)"
api GET /_test/stats
t_is "$(js '[d["requests"]["introspection"], d["requests"]["events"], d["requests"]["jwks"], d["responses"]["jwks"]["200"]]')" \
    '[0, 0, 2, 2]' "stats: a reset zeroes the counters; responses by status"
t_is "$(js 'd["last"]["jwks"]["method"] + " " + d["last"]["jwks"]["path"]')" "GET /.well-known/jwks.json" "stats: the last request per endpoint"
jti_status "$(jti_body "$A_JTI" "$A_SUB")" "${BOOT[@]}"
api GET /_test/stats
t_is "$(js 'd["last"]["introspection"]["headers"]["X-Internal-Token"]')" "<redacted ${#CS} bytes>" "stats: secrets are redacted"
t_is "$(js 'json.loads(d["last"]["introspection"]["body"])["schema_version"]')" 2 "stats: the last request body is kept"
api GET /nowhere
t_is "$H_STATUS $H_BODY" '404 {"detail":"Not Found"}' "unknown path: 404 Not Found"
api GET /_test/
t_like "$H_BODY" "POST /_test/fault" "GET /_test/: the documentation"
ctl rotate_key
NEWKID=$(js 'd["kid"]')
t_is "$(js 'len(d["jwks"]["keys"])')" 2 "rotate_key: the new key and the old one in the JWKS"
mint
t_is "$("$PY" -c 'import jwt,sys; print(jwt.get_unverified_header(sys.argv[1])["kid"])' "$TOK")" "$NEWKID" "rotate_key: tokens carry the new kid"
cp /dev/null "$T_DIR/jwks.json"
api GET /.well-known/jwks.json
cp "$T_DIR/h.body" "$T_DIR/jwks.json"
verify_tok "$TOK" "$T_DIR/jwks.json" RS256 >/dev/null
t_ok "$?" "rotate_key: the new token verifies against the JWKS"
ctl rotate_key '{"same_kid":true,"keep_old":false}'
t_is "$(js '[d["kid"], len(d["jwks"]["keys"])]')" "[\"$NEWKID\", 1]" "rotate_key same_kid: a new key under the same kid"

# ---------------------------------------------------------------- restart, SIGTERM, parent death
mint '{"role":"reader"}'
K_JTI=$JTI K_SUB=$SUB
api GET /_test/stats
EP1=$(js 'd["epoch"]')
PORT=$(cat "$ID/port")
stream_start r1 "${BOOT[@]}"
m8_wait_for 5 has_hdr r1
ctl revoke "{\"jti\":\"$A_JTI\"}"
RID=$(js 'd["event"]["id"]')
m8_kill_wait "$I_PID" 5
t_ok "$(m8_exited "$I_PID"; echo $?)" "SIGTERM: the issuer exits"
stream_rc r1 5
t_is "$S_RC" 0 "SIGTERM: open streams are ended cleanly first"
start_issuer "$ID" --port "$PORT" --client "svc=$CS" --event-signing-key-file "$T_DIR/ekey" --heartbeat 0.5
t_is "$(cat "$ID/port")" "$PORT" "restart: the same port"
jti_status "$(jti_body "$K_JTI" "$K_SUB")" "${BOOT[@]}"
t_is "$(js 'd["active"]')" true "restart: DIR/state.json keeps issued tokens active"
H_BODY=$(verify_tok "$TOK" "$ID/access_key.pub" RS256)
t_ok "$?" "restart: the signing key is loaded from DIR, not regenerated"
api GET /_test/stats
t_ok "$([ "$(js 'd["epoch"]')" != "$EP1" ]; echo $?)" "restart: a new epoch"
stream_start r2 "${BOOT[@]}" -H "Last-Event-ID: $RID"
m8_wait_for 5 n_events_ge r2 1
t_is "$(ev r2 'E[0]["event"]')" gap "restart: an id from before the restart gets a gap"
stream_stop r2
OD=$T_DIR/orphan
mkdir -p "$OD"
(
    "$PY" "$ISSUER" serve "$OD" </dev/null >/dev/null 2>&1 &
    echo $! >"$T_DIR/orphan.pid"
    m8_wait_for 15 test -s "$OD/port"
)
OPID=$(cat "$T_DIR/orphan.pid")
m8_wait_for 5 m8_exited "$OPID"
t_ok "$?" "parent death: the issuer exits when its parent goes away"
m8_alive "$OPID" && kill "$OPID" 2>/dev/null
ED=$T_DIR/es
mkdir -p "$ED"
start_issuer "$ED" --key-alg ES256 --heartbeat 0.5
api GET /.well-known/jwks.json
t_is "$(js '[(k["kty"], k["crv"], k["alg"]) for k in d["keys"]]')" '[["EC", "P-256", "ES256"]]' "ES256: a P-256 JWK"
cp "$T_DIR/h.body" "$ED/served.jwks.json"
mint
verify_tok "$TOK" "$ED/served.jwks.json" ES256 >/dev/null 2>"$T_DIR/es.err"
t_ok "$?" "ES256: the minted token verifies against the JWKS" "$(tail -n 3 "$T_DIR/es.err")"

t_done
