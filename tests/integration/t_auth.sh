#!/bin/bash
# t_auth.sh - tokens and roles through a real nginx (doc/wire.md#access-tokens,
# doc/responses.md#auth-failures):
#   R  example  --listen unix:  RS256, ACCESS_PUBLIC_KEY_FILE, strict iss/aud
#   E  example  --listen unix:  ES256, ACCESS_PUBLIC_KEY_FILE, strict iss/aud
#   H  example  --listen unix:  HS256, permissive, AUTH_INVALID_TOKEN_STATUS=403
# Tokens come from PyJWT (Debian's python3-jwt, an independent
# implementation) and from fcgim8-token; fcgim8-token's tokens are checked
# with PyJWT too.  The keys come from the openssl command.
#   J  example  --listen unix:  RS256 from JWKS_URI (tests/tools/jwks_server.py)
#   K  example  --listen unix:  JWKS_URI where nothing listens
# The adversarial catalogue (tests/tools/mint.py catalogue, one python call)
# goes through nginx (the 401/403 answer: status, body, WWW-Authenticate) and
# through the library (fcgim8-token verify: the reason).
# Ports from 18500-18599.  Skips when nginx or /usr/bin/python3 with jwt is missing.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import jwt, cryptography' 2>/dev/null || t_skip_all "python3-jwt / python3-cryptography not installed"
command -v openssl >/dev/null || t_skip_all "openssl is not installed"
m8_init t_auth

EX=$(m8_svc_bin example)
TOK=$top_builddir/src/fcgim8-token
[ -x "$EX" ] && [ -x "$TOK" ] || t_bail "programs not built ($EX, $TOK)"
ISS=https://auth.example.com
AUD=item-service
HS_SECRET='Test-Access-Secret-Key-0123456789abcdef!'

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa.pem" 2>/dev/null &&
    openssl pkey -in "$T_DIR/rsa.pem" -pubout -out "$T_DIR/rsa.pub" ||
    t_bail "openssl cannot make an RSA key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T_DIR/ec.pem" 2>/dev/null &&
    openssl pkey -in "$T_DIR/ec.pem" -pubout -out "$T_DIR/ec.pub" ||
    t_bail "openssl cannot make an EC key"
printf '%s' "$HS_SECRET" >"$T_DIR/hs.secret"

m8_write_env "$T_DIR/R.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    ACCESS_PUBLIC_KEY_FILE="$T_DIR/rsa.pub" TOKEN_STRICT_VALIDATION=true TOKEN_ISSUER=$ISS \
    TOKEN_AUDIENCE=$AUD
m8_write_env "$T_DIR/E.env" ACCESS_TOKEN_ALGORITHM=ES256 -ACCESS_SECRET_KEY \
    ACCESS_PUBLIC_KEY_FILE="$T_DIR/ec.pub" TOKEN_STRICT_VALIDATION=true TOKEN_ISSUER=$ISS \
    TOKEN_AUDIENCE=$AUD
m8_write_env "$T_DIR/H.env" AUTH_INVALID_TOKEN_STATUS=403
for b in R E H; do
    m8_svc_listen $b example "unix:$T_DIR/$b.sock" "$T_DIR/$b.env" -- --threads 2
done

# J: keys from a JWKS served by tests/tools/jwks_server.py; K: a JWKS_URI
# where nothing listens (an outage with nothing cached).
JD=$T_DIR/jwks
mkdir -p "$JD"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa2.pem" 2>/dev/null &&
    openssl pkey -in "$T_DIR/rsa2.pem" -pubout -out "$T_DIR/rsa2.pub" || t_bail "openssl: second key"
"$TOK" jwks --kid k1 "$T_DIR/rsa.pub" >"$JD/jwks.json" || t_bail "fcgim8-token jwks failed"
"$PY" "$top_srcdir/tests/tools/jwks_server.py" serve "$JD" --port 0 </dev/null >"$T_DIR/jwks.out" 2>&1 &
M8_PIDS+=("$!")
m8_wait_for 10 test -s "$JD/port" || t_bail "the JWKS server did not start"
JPORT=$(cat "$JD/port")
m8_pick_port 18550 18599 || t_bail "no free port in 18550-18599"
DEAD_PORT=$M8_PORT
for b in J K; do
    uri=http://127.0.0.1:$JPORT/jwks.json
    [ $b = K ] && uri=http://127.0.0.1:$DEAD_PORT/jwks.json
    m8_write_env "$T_DIR/$b.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY JWKS_URI="$uri" \
        TOKEN_STRICT_VALIDATION=true TOKEN_ISSUER=$ISS TOKEN_AUDIENCE=$AUD
    m8_svc_listen $b example "unix:$T_DIR/$b.sock" "$T_DIR/$b.env" -- --threads 2
done

# The adversarial catalogue: BACKEND<TAB>NAME<TAB>REASON<TAB>TOKEN lines.
"$PY" "$top_srcdir/tests/tools/mint.py" catalogue "$T_DIR" $ISS $AUD >"$T_DIR/catalogue.tsv" ||
    t_bail "mint.py catalogue failed"

NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
declare -A URL=()
for b in R E H J K; do
    m8_pick_port 18500 18549 || t_bail "no free port in 18500-18549"
    URL[$b]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "$b" fcgi-m8-unix.conf NAME="svc_$b" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/$b.sock" || t_bail "cannot render the site for $b"
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"
ready() { m8_http GET "$1/api/health/"; [ "$H_STATUS" = 200 ]; }
for b in R E H J K; do
    m8_wait_for 15 ready "${URL[$b]}" || { m8_svc_diag "$b"; t_bail "backend $b is not ready"; }
done

# pyjwt NAME ALG KEYFILE CLAIMS-JSON [HEADERS-JSON]: a token minted by PyJWT.
# CLAIMS-JSON is merged over an issuer-shaped default (doc/wire.md#token-claims).
pyjwt() {
    "$PY" - "$@" <<'PYEOF'
import json, sys, time, uuid, jwt
_, alg, keyfile, claims, *rest = sys.argv
now = int(time.time())
c = {"sub": str(uuid.uuid4()), "type": "access", "email": "someone@example.com",
     "full_name": None, "avatar": None, "is_active": True, "email_verified": True,
     "is_superuser": False, "role": "user", "tenant_id": None, "exp": now + 600,
     "iat": now, "nbf": now, "jti": str(uuid.uuid4()),
     "iss": "https://auth.example.com", "aud": "item-service"}
for k, v in json.loads(claims).items():
    if v == "__drop__":
        c.pop(k, None)
    else:
        c[k] = v
key = open(keyfile, "rb").read()
headers = json.loads(rest[0]) if rest else None
print(jwt.encode(c, key, algorithm=alg, headers=headers))
PYEOF
}
rs() { pyjwt RS256 "$T_DIR/rsa.pem" "${1:-{\}}" "${@:2}"; }

# call BACKEND METHOD PATH TOKEN: sets H_STATUS, H_BODY (TOKEN "" = no header)
call() {
    if [ -n "$4" ]; then
        m8_http "$2" "${URL[$1]}$3" -H "Authorization: Bearer $4"
    else
        m8_http "$2" "${URL[$1]}$3"
    fi
}

# ---------------------------------------- 401/403 answers (doc/responses.md#auth-failures)
call R GET /api/items/ ""
t_is "$H_STATUS:$H_BODY" '401:{"detail":"Not authenticated"}' "no Authorization: 401 Not authenticated"
t_is "$(m8_hdr WWW-Authenticate)" "Bearer" "no Authorization: WWW-Authenticate: Bearer"
m8_http GET "${URL[R]}/api/items/" -H "Authorization: Basic dXNlcjpwYXNz"
t_is "$H_STATUS" 401 "a Basic credential is no bearer: 401"
T=$(rs '{"email": "Alice@Example.COM"}')
call R GET /api/items/ "$T"
t_is "$H_STATUS:$H_BODY" '200:{"owner":"alice@example.com"}' \
    "PyJWT RS256 token: 200, the owner is the trimmed lower-cased email"
m8_http GET "${URL[R]}/api/items/" -H "authorization: bEaReR   $T  "
t_is "$H_STATUS" 200 "scheme case-insensitive and token trimmed"
call R GET /api/items/ "${T%?}x"
t_is "$H_STATUS:$H_BODY" '401:{"detail":"Could not validate credentials."}' \
    "an altered signature: 401 Could not validate credentials."
t_is "$(m8_hdr WWW-Authenticate)" 'Bearer error="invalid_token"' \
    "an invalid token: WWW-Authenticate: Bearer error=\"invalid_token\""
call R GET /api/items/ "$(rs '{"is_active": false}')"
t_is "$H_STATUS:$H_BODY" '403:{"detail":"Inactive user"}' "an inactive user: 403 Inactive user"
call H GET /api/items/ "not.a.token"
t_is "$H_STATUS:$H_BODY" '403:{"detail":"Could not validate credentials."}' \
    "AUTH_INVALID_TOKEN_STATUS=403: an invalid token gets 403 (reference 4.x)"
call H GET /api/items/ ""
t_is "$H_STATUS" 401 "AUTH_INVALID_TOKEN_STATUS=403: no credentials stay 401"

# ------------------------------------------------------------- role matrix
# route requirement per path; expected status per role (user reader writer admin superadmin+flag)
declare -A REQ=([GET /api/items/info]=public [GET /api/items/]=user [GET /api/profile]=user
    [DELETE /api/items/42/admin]=admin [POST /api/admin/bootstrap]=superuser)
rank() { case $1 in superadmin) echo 0 ;; admin) echo 1 ;; writer) echo 2 ;; reader) echo 3 ;; user) echo 4 ;; esac; }
want() { # ROLE SUPERUSER REQ -> status
    case $3 in
        public | user) echo 200 ;;
        admin) [ "$(rank "$1")" -le 1 ] && echo 200 || echo 403 ;;
        superuser) [ "$1" = superadmin ] && [ "$2" = true ] && echo 200 || echo 403 ;;
    esac
}
for role in user reader writer admin superadmin; do
    su=false
    [ $role = superadmin ] && su=true
    T=$(rs "{\"role\": \"$role\", \"is_superuser\": $su}")
    for r in "${!REQ[@]}"; do
        call R "${r%% *}" "${r#* }" "$T"
        t_is "$H_STATUS" "$(want $role $su "${REQ[$r]}")" "role $role on $r (${REQ[$r]})"
    done
done
T=$(rs '{"role": "admin", "is_superuser": true}')
call R GET /api/items/ "$T"
t_is "$H_STATUS" 401 "admin with is_superuser=true violates the privilege invariant: refused"

# ------------------------------------------------------------- adversarial catalogue
# catalogue BACKEND...: every catalogue token of those backends, through
# nginx (the answer for an invalid token: 401, the body and
# WWW-Authenticate: Bearer error="invalid_token"; on H, whose
# AUTH_INVALID_TOKEN_STATUS is 403: 403, the body, no WWW-Authenticate) and
# through the library (fcgim8-token verify with the backend's settings:
# exit 1 and the reason).
D6_INVALID='{"detail":"Could not validate credentials."}'
catalogue() {
    local b name reason tok want what out rc
    while IFS=$'\t' read -r -u 3 b name reason tok; do
        case " $* " in *" $b "*) ;; *) continue ;; esac
        want="401|$D6_INVALID|Bearer error=\"invalid_token\""
        what='401 "Could not validate credentials.", WWW-Authenticate: Bearer error="invalid_token"'
        if [ "$b" = H ]; then
            want="403|$D6_INVALID|"
            what='403 "Could not validate credentials.", no WWW-Authenticate'
        fi
        call "$b" GET /api/items/ "$tok"
        t_is "$H_STATUS|$H_BODY|$(m8_hdr WWW-Authenticate)" "$want" \
            "catalogue through nginx ($b): $name -> $what"
        out=$(printf '%s\n' "$tok" | m8_clean_env -- "$TOK" verify --env-file "$T_DIR/$b.env" - 2>&1)
        rc=$?
        t_is "$rc:$out" "1:invalid: $reason" "catalogue through the library ($b): $name -> $reason"
    done 3<"$T_DIR/catalogue.tsv"
}
n_cat=$(wc -l <"$T_DIR/catalogue.tsv")
t_ok $([ "$n_cat" -ge 60 ] && echo 0 || echo 1) "mint.py minted the catalogue ($n_cat tokens)"
GOOD=$(rs '{}')
call R GET /api/items/ "$GOOD"
t_is "$H_STATUS" 200 "catalogue control: the untouched R token is accepted"
call E GET /api/items/ "$(pyjwt ES256 "$T_DIR/ec.pem" '{}')"
t_is "$H_STATUS" 200 "catalogue control: a PyJWT ES256 token is accepted by E"
catalogue R E H

big=$(head -c 2600 /dev/zero | tr '\0' 'a')
call R GET /api/items/ "$big.$big.$big"
t_is "$H_STATUS|$H_BODY" "401|$D6_INVALID" "a 7.8 KB junk token reaches the service: 401, no crash"
# A 1 MB token (10^6 bytes, three parts): the Authorization line exceeds
# nginx's large_client_header_buffers (4 x 8k by default), so nginx answers
# 400 "Request Header Or Cookie Too Large" itself and the service never sees
# it.  (curl reads a header from a file up to 1 MiB; 10^6 bytes fit.)
{
    printf 'Authorization: Bearer '
    head -c 333333 /dev/zero | tr '\0' 'e'
    printf '.'
    head -c 333333 /dev/zero | tr '\0' 'e'
    printf '.'
    head -c 333332 /dev/zero | tr '\0' 's'
    printf '\r\n'
} >"$T_DIR/big.hdr"
lines0=$(wc -l <"$T_DIR/R.log")
m8_http GET "${URL[R]}/api/items/" -H @"$T_DIR/big.hdr"
t_is "$H_STATUS" 400 "catalogue through nginx (R): a 1 MB token -> 400 from nginx (large_client_header_buffers)"
t_like "$H_BODY" "Request Header Or Cookie Too Large" "a 1 MB token: nginx's own 400 page"
t_is "$(m8_hdr WWW-Authenticate)" "" "a 1 MB token: no WWW-Authenticate (the service never saw it)"
t_is "$(wc -l <"$T_DIR/R.log")" "$lines0" "a 1 MB token: nothing reached the service"
out=$(head -c 1048576 /dev/zero | tr '\0' 'a' | m8_clean_env -- "$TOK" verify --env-file "$T_DIR/R.env" - 2>&1)
t_is "$?:$out" "1:invalid: invalid" "catalogue through the library (R): a 1 MB token -> invalid"
grep -q "$GOOD" "$T_DIR/R.log"
t_ok $([ $? != 0 ] && echo 0 || echo 1) "no token ever reaches the service log"

# ------------------------------------------------------------- JWKS through the service
K1=$(pyjwt RS256 "$T_DIR/rsa.pem" '{}' '{"kid": "k1"}')
call J GET /api/items/ "$K1"
t_is "$H_STATUS" 200 "JWKS_URI: a token whose kid is in the served set: 200"
hits0=$(cat "$JD/hits")
call J GET /api/items/ "$K1"
t_is "$(cat "$JD/hits")" "$hits0" "JWKS_URI: the set is cached (no fetch for the next request)"
"$TOK" jwks --kid k1 "$T_DIR/rsa.pub" --kid k2 "$T_DIR/rsa2.pub" >"$JD/jwks.new" &&
    mv "$JD/jwks.new" "$JD/jwks.json"
K2=$(pyjwt RS256 "$T_DIR/rsa2.pem" '{}' '{"kid": "k2"}')
k2_ok() { call J GET /api/items/ "$K2"; [ "$H_STATUS" = 200 ]; }
m8_wait_for 15 k2_ok
t_is "$H_STATUS" 200 "JWKS rotation: a token under a new kid is accepted without a restart (within the 10 s cooldown)"
t_ok $([ $(( $(cat "$JD/hits") - hits0 )) -le 2 ] && echo 0 || echo 1) \
    "JWKS rotation: polling with an unknown kid fetched the set at most twice ($(( $(cat "$JD/hits") - hits0 )))"
for i in $(seq 1 30); do
    call J GET /api/items/ "$(pyjwt RS256 "$T_DIR/rsa2.pem" '{}' "{\"kid\": \"bogus-$i\"}")"
done
t_is "$H_STATUS" 401 "a token under an unknown kid: 401"
t_ok $([ $(( $(cat "$JD/hits") - hits0 )) -le 3 ] && echo 0 || echo 1) \
    "30 bogus kids in a row cause at most one more fetch (cooldown)"
call J GET /api/items/ "$(pyjwt RS256 "$T_DIR/rsa.pem" '{}' '{"kid": "k1"}')"
t_is "$H_STATUS" 200 "catalogue control: a k1 token is accepted by J (the set holds k1 and k2)"
catalogue J
touch "$JD/down"
call J GET /api/items/ "$K1"
t_is "$H_STATUS" 200 "JWKS server down: the cached keys still verify"
call K GET /api/items/ "$K1"
t_is "$H_STATUS:$H_BODY" '503:{"detail":"Token validation unavailable."}' \
    "JWKS unreachable with nothing cached: 503, not 500"

# The issuer replaces the key under an unchanged kid (doc/wire.md#jwks): after a
# bad signature the service re-resolves k1 (one fetch per 10 s cooldown)
# and accepts the new key within one cooldown, not one TTL.
rm -f "$JD/down"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_DIR/rsa3.pem" 2>/dev/null &&
    openssl pkey -in "$T_DIR/rsa3.pem" -pubout -out "$T_DIR/rsa3.pub" || t_bail "openssl: third key"
"$TOK" jwks --kid k1 "$T_DIR/rsa3.pub" --kid k2 "$T_DIR/rsa2.pub" >"$JD/jwks.new" &&
    mv "$JD/jwks.new" "$JD/jwks.json"
K1B=$(pyjwt RS256 "$T_DIR/rsa3.pem" '{}' '{"kid": "k1"}')
hits1=$(cat "$JD/hits")
k1b_ok() { call J GET /api/items/ "$K1B"; [ "$H_STATUS" = 200 ]; }
m8_wait_for 15 k1b_ok
t_is "$H_STATUS" 200 "JWKS kid re-use: a token of the new key under kid k1 is accepted without a restart"
t_ok $([ $(( $(cat "$JD/hits") - hits1 )) -le 2 ] && echo 0 || echo 1) \
    "JWKS kid re-use: polling with bad signatures fetched the set at most twice ($(( $(cat "$JD/hits") - hits1 )))"
call J GET /api/items/ "$K1"
t_is "$H_STATUS|$H_BODY" "401|$D6_INVALID" "JWKS kid re-use: a token of the replaced k1 key is refused"

# ------------------------------------------------------------- fcgim8-token interop
T=$("$TOK" mint --alg RS256 --key "$T_DIR/rsa.pem" --kid k1 --role writer --iss $ISS --aud $AUD)
call R GET /api/profile "$T"
t_like "$H_BODY" '"role":"writer"' "a token minted by fcgim8-token is accepted by the service"
"$PY" -c 'import sys, jwt; c = jwt.decode(sys.argv[1], open(sys.argv[2], "rb").read(), algorithms=["RS256"], audience=sys.argv[3], issuer=sys.argv[4]); assert c["role"] == "writer"' \
    "$T" "$T_DIR/rsa.pub" "$AUD" "$ISS"
t_ok $? "PyJWT verifies a token minted by fcgim8-token"
HT=$("$TOK" mint --alg HS256 --key "$T_DIR/hs.secret" --role reader)
"$PY" -c 'import sys, jwt; jwt.decode(sys.argv[1], sys.argv[2], algorithms=["HS256"])' "$HT" "$HS_SECRET"
t_ok $? "PyJWT verifies an HS256 token minted by fcgim8-token"
call H GET /api/items/ "$HT"
t_is "$H_STATUS" 200 "HS256 backend accepts it"
out=$(m8_clean_env -- "$TOK" verify --env-file "$T_DIR/R.env" "$T" 2>&1)
t_ok $? "fcgim8-token verify: exit 0 for a valid token"
t_like "$out" '"role":"writer"' "fcgim8-token verify prints the claims"
out=$(m8_clean_env -- "$TOK" verify --env-file "$T_DIR/R.env" "$(rs "{\"exp\": $(( $(date +%s) - 60 ))}")" 2>&1)
t_is "$?:$out" "1:invalid: expired" "fcgim8-token verify: exit 1 and the reason for an expired token"
printf '%s\n' "$T" | m8_clean_env -- "$TOK" verify --env-file "$T_DIR/R.env" - >/dev/null 2>&1
t_ok $? "fcgim8-token verify reads - from stdin"
m8_clean_env -- "$TOK" verify --env-file "$T_DIR/nope.env" "$T" >/dev/null 2>&1
t_is "$?" 2 "fcgim8-token verify: exit 2 on a configuration error"
"$TOK" mint --alg RS256 --key "$T_DIR/rsa.pem" --role writer --iss $ISS --aud $AUD --count 3 \
    >"$T_DIR/count.tok"
t_is "$?:$(wc -l <"$T_DIR/count.tok"):$(sort -u "$T_DIR/count.tok" | wc -l)" "0:3:3" \
    "fcgim8-token mint --count 3: three distinct tokens, one a line"
jtis=$(while read -r t; do "$TOK" inspect "$t" 2>/dev/null | grep -o '"jti":"[^"]*"'; done <"$T_DIR/count.tok" |
    sort -u | wc -l)
t_is "$jtis" 3 "fcgim8-token mint --count: each token has its own jti"
ok=0
while read -r t; do
    m8_clean_env -- "$TOK" verify --env-file "$T_DIR/R.env" "$t" >/dev/null 2>&1 && ok=$((ok + 1))
done <"$T_DIR/count.tok"
t_is "$ok" 3 "fcgim8-token mint --count: every token verifies"
out=$("$TOK" mint --alg RS256 --key "$T_DIR/rsa.pem" --count 0 2>&1)
t_is "$?:$out" "2:fcgim8-token: --count wants 1 to 1000000" "fcgim8-token mint --count 0: exit 2 and why"
"$TOK" jwks --kid k1 "$T_DIR/rsa.pub" >"$T_DIR/jwks.json"
"$PY" -c 'import json, sys, jwt; k = json.load(open(sys.argv[1]))["keys"][0]; jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(k)); assert k["kid"] == "k1" and k["use"] == "sig"' "$T_DIR/jwks.json"
t_ok $? "fcgim8-token jwks prints a JWK PyJWT loads"
t_done
