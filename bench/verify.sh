#!/bin/bash
# bench/verify.sh [BUILD_DIR] - token verifications per CPU second on one
# core, for HS256, RS256 and ES256, with and without the verified-token
# cache, next to `openssl speed` for the same primitives in the same run.
#   full    = m8_auth_verify: parse, key, signature, payload JSON, claims
#   cached  = a request built from params + m8_auth_check on a repeated token
#   hit     = the m8_auth_check share of cached (the request building timed apart)
#   sig     = m8_jws_verify alone;  json = json-c parsing the payload alone
#             (through m8_json_parse_with, with its C-locale switch, as jwt.c)
#   floor   = 1/(1/sig + 1/json): what full could reach if all else were free
#   hmac    = HS256: libsodium's HMAC-SHA256 of the signing input, keyed per call
# Rates are per second of the thread's CPU time, as `openssl speed` divides
# by user CPU time, so neighbours on a shared machine skew them less.
# Summary lines for scripts (the targets are issue 13's):
#   ratio rs256_full_vs_openssl R          full RS256 / openssl speed rsa2048 verify (>= 0.85)
#   ratio hs256_full_vs_libsodium_hmac R   full HS256 / hmac (>= 0.5)
#   ratio es256_full_vs_openssl R          full ES256 / openssl speed ecdsap256 verify
# Tokens and keys come from fcgim8-token and openssl.  Knob: M8_BENCH_SECONDS=3.
set -eu
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
b=$(cd "${1:-.}" && pwd)
secs=${M8_BENCH_SECONDS:-3}
[ -x "$b/src/fcgim8-token" ] || { echo "bench/verify.sh: build first (no $b/src/fcgim8-token)" >&2; exit 2; }
make -C "$b" -s bench/verify >/dev/null
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa.pem" 2>/dev/null
openssl pkey -in "$d/rsa.pem" -pubout -out "$d/rsa.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ec.pem" 2>/dev/null
openssl pkey -in "$d/ec.pem" -pubout -out "$d/ec.pub"
secret='Bench-Access-Secret-Key-0123456789abcdef!'
printf '%s' "$secret" >"$d/hs.secret"
base="DOMAIN=localhost
ENVIRONMENT=local
PROJECT_NAME=bench
STACK_NAME=bench
API_PREFIX=/api
BACKEND_HOST=http://localhost:8000
FRONTEND_HOST=http://localhost:3000
BACKEND_CORS_ORIGINS=http://localhost:3000
AUTH_SERVICE_ROLE=consumer
TOKEN_MODE=stateless
TOKEN_STRICT_VALIDATION=true
TOKEN_ISSUER=https://auth.example.com
TOKEN_AUDIENCE=bench
EVENT_SIGNING_KEY=Bench-Event-Signing-Key-0123456789abcdef!
SERVICE_VERSION=1
CONTRACT_VERSION=1
CONTRACT_RANGE=1"
printf '%s\nACCESS_TOKEN_ALGORITHM=HS256\nACCESS_SECRET_KEY=%s\n' "$base" "$secret" >"$d/HS256.env"
printf '%s\nACCESS_TOKEN_ALGORITHM=RS256\nACCESS_PUBLIC_KEY_FILE=%s\n' "$base" "$d/rsa.pub" >"$d/RS256.env"
printf '%s\nACCESS_TOKEN_ALGORITHM=ES256\nACCESS_PUBLIC_KEY_FILE=%s\n' "$base" "$d/ec.pub" >"$d/ES256.env"
for alg in HS256 RS256 ES256; do
    case $alg in HS256) k=$d/hs.secret ;; RS256) k=$d/rsa.pem ;; ES256) k=$d/ec.pem ;; esac
    "$b/src/fcgim8-token" mint --alg $alg --key "$k" --iss https://auth.example.com --aud bench \
        --exp 3600 >"$d/$alg.tok"
done
ossl=$(openssl speed -seconds "$secs" rsa2048 ecdsap256 2>/dev/null)
rsa_v=$(printf '%s\n' "$ossl" | awk '/^rsa 2048 bits/ { print $NF }')
ec_v=$(printf '%s\n' "$ossl" | awk '/256 bits ecdsa \(nistp256\)/ { print $NF }')
echo "fcgi-m8 verify benchmark: one thread, ${secs}s of CPU per figure, $(nproc) CPUs, $(uname -sr), $(openssl version | cut -d' ' -f1-2)"
printf '%-6s %9s %9s %9s %9s %9s %9s %9s %13s %s\n' alg full/s cached/s hit/s sig/s json/s \
    floor/s hmac/s "openssl ver/s" "full/reference"
summary=
for alg in HS256 RS256 ES256; do
    read -r full cached hit sig json hmac < <(env -i PATH="$PATH" "$b/bench/verify" "$d/$alg.env" "$d/$alg.tok" "$secs")
    floor=$(awk -v s="$sig" -v j="$json" 'BEGIN { printf "%.0f", 1 / (1 / s + 1 / j) }')
    case $alg in
    RS256) o=$rsa_v ref=$rsa_v name=rs256_full_vs_openssl target=0.85 ;;
    ES256) o=$ec_v ref=$ec_v name=es256_full_vs_openssl target= ;;
    *) o= ref=$hmac name=hs256_full_vs_libsodium_hmac target=0.5 ;;
    esac
    r=$(awk -v a="$full" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')
    rf=$(awk -v a="$floor" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')
    [ "$alg" = HS256 ] || hmac=-
    printf '%-6s %9s %9s %9s %9s %9s %9s %9s %13s %s\n' $alg "$full" "$cached" "$hit" "$sig" "$json" \
        "$floor" "$hmac" "${o:--}" "$r (floor $rf)"
    summary="${summary}ratio $name $r${target:+ target $target}
"
done
printf '%s' "$summary"
