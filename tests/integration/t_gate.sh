#!/bin/bash
# t_gate.sh - fcgim8-gate in front of backends that know nothing of tokens:
#   N  nginx with contrib/nginx/gate-site.conf: auth_request to the gate for a
#      static directory and a PHP-FPM application (Debian php-fpm, a private
#      pool in T_DIR); the identity reaches PHP through auth_request_set
#   A  Apache with contrib/apache/gate-fcgid.conf: mod_fcgid runs the gate in
#      the FastCGI AUTHORIZER role (FcgidAccessChecker) in front of a CGI
#      script; the identity reaches the script's environment
#   F  the gate over FastCGI without a web server (cgi-fcgi): 503 when the
#      key source is down, the cookie credential with signed CSRF tokens and
#      origin checks, metrics per rule, one log line per decision, boot refusals
#   C  the same site in front of a cookie-mode gate: the CSRF token from
#      /_fcgim8/csrf, unsafe requests with and without it
# Client-sent X-Auth-* headers must never reach PHP or the CGI scripts.
# Tokens come from PyJWT (RS256, strict iss/aud), keys from openssl.
# Ports from 18900-18999.  Skips when nginx, curl, python3-jwt or openssl is
# missing; the PHP part skips without php-fpm, the Apache part without
# apache2 and mod_fcgid.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import jwt, cryptography' 2>/dev/null || t_skip_all "python3-jwt / python3-cryptography not installed"
command -v openssl >/dev/null || t_skip_all "openssl is not installed"
[ -n "$M8_CGI_FCGI" ] || t_skip_all "cgi-fcgi (libfcgi-bin) is not installed"
m8_init t_gate

GATE=$top_builddir/src/fcgim8-gate
[ -x "$GATE" ] || t_bail "fcgim8-gate is not built ($GATE)"
PHPFPM=
for p in php-fpm /usr/sbin/php-fpm*; do
    PHPFPM=$(m8_find_prog "$p" "$p") && break
done
ISS=https://auth.example.com
AUD=item-service

# ------------------------------------------------------------- keys, tokens, settings, policy
KD=$T_DIR/keys
mkdir -p "$KD" && chmod 755 "$KD"
for k in rsa other; do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$KD/$k.pem" 2>/dev/null &&
        openssl pkey -in "$KD/$k.pem" -pubout -out "$KD/$k.pub" 2>/dev/null ||
        t_bail "openssl cannot make an RSA key"
done
chmod 644 "$KD/rsa.pub"
# The CSRF key of the cookie-mode gate (a secret file: mode 600).
( umask 077 && openssl rand -hex 32 >"$KD/csrf.key" ) || t_bail "openssl cannot make a CSRF key"
CK=__Host-m8_at # the access-token cookie

# NAME<TAB>SUB<TAB>TOKEN lines from PyJWT (claims shaped like the issuer's,
# doc/wire.md#token-claims).
"$PY" - "$KD" "$ISS" "$AUD" >"$T_DIR/tokens.tsv" <<'PYEOF' || t_bail "PyJWT could not mint the tokens"
import sys, time, uuid, jwt
kd, iss, aud = sys.argv[1:4]
now = int(time.time())
rsa = open(kd + "/rsa.pem", "rb").read()
other = open(kd + "/other.pem", "rb").read()
def tok(name, key=rsa, **over):
    c = {"sub": str(uuid.uuid4()), "type": "access", "email": name + "@example.com",
         "full_name": None, "avatar": None, "is_active": True, "email_verified": True,
         "is_superuser": False, "role": "user", "tenant_id": None, "exp": now + 600,
         "iat": now, "nbf": now, "jti": str(uuid.uuid4()), "iss": iss, "aud": aud}
    c.update(over)
    print("\t".join((name, c["sub"], jwt.encode(c, key, algorithm="RS256",
                                                 headers={"kid": "k1"}))))
tok("user")
tok("reader", role="reader")
tok("writer", role="writer", tenant_id="5d3c2b1a-0f9e-4d8c-b7a6-958473625140")
tok("admin", role="admin")
tok("super", role="superadmin", is_superuser=True)
tok("inactive", role="reader", is_active=False)
tok("expired", role="reader", exp=now - 3600)
tok("badsig", key=other, role="reader")
tok("refresh", role="reader", type="refresh")
PYEOF
declare -A TOK=() SUB=()
while IFS=$'\t' read -r name sub tok; do
    TOK[$name]=$tok SUB[$name]=$sub
done <"$T_DIR/tokens.tsv"
[ -n "${TOK[super]:-}" ] || t_bail "no tokens minted"

ENVF=$T_DIR/gate.env
m8_write_env "$ENVF" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    ACCESS_PUBLIC_KEY_FILE="$KD/rsa.pub" TOKEN_STRICT_VALIDATION=true TOKEN_ISSUER=$ISS \
    TOKEN_AUDIENCE=$AUD METRICS_ENABLED=true
POL=$T_DIR/policy
cat >"$POL" <<'EOF'
# the policy of t_gate.sh
public-files   GET                    /public/          public
public-php     GET                    =/who.php         public
closed         *                      /closed/          deny
app-read       GET                    /app/**           reader
app-write      POST,PUT,PATCH,DELETE  /app/**           writer
static         GET                    /static/          user
ops            *                      /ops/             superuser
cgi-public     GET                    =/cgi-bin/pub.cgi public
cgi-who        GET,POST               =/cgi-bin/who.cgi reader
default                                                 deny
EOF

# ------------------------------------------------------------- F: boot refusals
bootcheck() { # EXPECTED-STATUS NAME ARGS...: runs the gate with --check
    local want=$1 name=$2
    shift 2
    m8_clean_env -- "$GATE" --env-file "$ENVF" --check "$@" >"$T_DIR/boot.out" 2>"$T_DIR/boot.err"
    t_is "$?" "$want" "boot: $name: exit $want" || t_diag "$(tail -n 5 "$T_DIR/boot.err")"
}
bootcheck 0 "the test policy checks out" --policy "$POL"
bootcheck 0 "contrib/gate/policy.example checks out" \
    --policy "$top_srcdir/contrib/gate/policy.example"
bootcheck 64 "no --policy"
printf 'a GET / public\nk GET /keys/ apikey reader\ndefault deny\n' >"$T_DIR/apikey.policy"
bootcheck 78 "an apikey rule while API keys are off" --policy "$T_DIR/apikey.policy"
t_like "$(cat "$T_DIR/boot.err")" 'apikey.policy: line 2: rule k takes an X-API-Key.*API_KEY_INTROSPECTION_ENABLED is false' \
    "boot: ... refused with its line and why"
ENVF0=$ENVF
m8_write_env "$T_DIR/keys.env" API_KEY_INTROSPECTION_ENABLED=true INTERNAL_CLIENT_ID=consumer-1 \
    INTROSPECTION_URL=http://127.0.0.1:9/private/v1/jti-status \
    'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!'
ENVF=$T_DIR/keys.env
bootcheck 0 "an apikey rule with API keys on" --policy "$T_DIR/apikey.policy"
ENVF=$ENVF0
printf 'a GET / public\n\nb GET /x wrtier\ndefault deny\n' >"$T_DIR/bad.policy"
bootcheck 78 "a policy with an unknown access" --policy "$T_DIR/bad.policy"
t_like "$(cat "$T_DIR/boot.err")" 'bad.policy: line 3: unknown access "wrtier"' \
    "boot: ... refused with its line number"
printf 'a GET / public\n' >"$T_DIR/nodefault.policy"
bootcheck 78 "a policy without a default rule" --policy "$T_DIR/nodefault.policy"
t_like "$(cat "$T_DIR/boot.err")" 'no default rule' "boot: ... says the default rule is missing"
bootcheck 78 "a policy file that does not exist" --policy "$T_DIR/nonexistent"
bootcheck 64 "--csrf-cookie without --cookie" --policy "$POL" --csrf-cookie c --csrf-header h
bootcheck 64 "--cookie with a bad name" --policy "$POL" --cookie 'a;b'
boot_err() { cat "$T_DIR/boot.err"; }
bootcheck 64 "cookie mode without CSRF checks is refused" --policy "$POL" --cookie $CK
t_like "$(boot_err)" 'needs CSRF checks: --csrf-key-file FILE.*--no-csrf REASON' \
    "boot: ... saying how to turn them on, or how to say why there are none"
bootcheck 64 "the old double submit (--csrf-cookie with --cookie) is refused" --policy "$POL" \
    --cookie $CK --csrf-cookie m8_csrf --csrf-header X-CSRF-Token
t_like "$(boot_err)" '--csrf-cookie is gone.*--csrf-key-file' "boot: ... pointing at the signed tokens"
bootcheck 64 "--no-csrf with a blank reason" --policy "$POL" --cookie $CK --no-csrf ' '
bootcheck 0 "--no-csrf with a reason boots" --policy "$POL" --cookie $CK \
    --no-csrf 'the API takes only JSON with a custom header'
t_like "$(boot_err)" 'WITHOUT CSRF checks \(--no-csrf\): the API takes only JSON' \
    "boot: ... and warns at every boot that CSRF checks are off, and why"
bootcheck 64 "--csrf-key-file without --cookie" --policy "$POL" --csrf-key-file "$KD/csrf.key"
bootcheck 0 "a __Host- cookie with a CSRF key file" --policy "$POL" --cookie $CK \
    --csrf-key-file "$KD/csrf.key"
t_unlike "$(boot_err)" '__Host- prefix' "boot: ... no warning about the cookie's name"
t_unlike "$(boot_err)" "$(cat "$KD/csrf.key")" "boot: ... the key is never logged"
bootcheck 0 "a cookie name without __Host- boots" --policy "$POL" --cookie m8_at \
    --csrf-key-file "$KD/csrf.key"
t_like "$(boot_err)" '--cookie m8_at has no __Host- prefix' "boot: ... with a warning"
( umask 077 && printf '0123456789abcdef0123456789abcde\n' >"$KD/short.key" )
bootcheck 78 "a CSRF key shorter than 32 bytes" --policy "$POL" --cookie $CK \
    --csrf-key-file "$KD/short.key"
t_like "$(boot_err)" 'short.key: the CSRF key is shorter than 32 bytes' "boot: ... naming the file"
cp "$KD/csrf.key" "$KD/open.key" && chmod 644 "$KD/open.key"
bootcheck 78 "a CSRF key file readable by others" --policy "$POL" --cookie $CK \
    --csrf-key-file "$KD/open.key"
t_like "$(boot_err)" 'open.key: readable or writable by others' "boot: ... saying why"

# ------------------------------------------------------------- the gates
m8_svc_listen G "$GATE" "unix:$T_DIR/gate.sock" "$ENVF" -- --policy "$POL" --threads 2
m8_svc_listen C "$GATE" "unix:$T_DIR/cookie.sock" "$ENVF" -- --policy "$POL" --threads 1 \
    --cookie $CK --csrf-key-file "$KD/csrf.key"
m8_pick_port 18990 18999 || t_bail "no free port in 18990-18999"
m8_write_env "$T_DIR/jwks.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    JWKS_URI="http://127.0.0.1:$M8_PORT/jwks.json" TOKEN_STRICT_VALIDATION=true \
    TOKEN_ISSUER=$ISS TOKEN_AUDIENCE=$AUD
m8_svc_listen K "$GATE" "unix:$T_DIR/nokeys.sock" "$T_DIR/jwks.env" -- --policy "$POL" --threads 1
for g in G C K; do
    sock=$T_DIR/gate.sock
    [ $g = C ] && sock=$T_DIR/cookie.sock
    [ $g = K ] && sock=$T_DIR/nokeys.sock
    m8_wait_sock "$sock" 15 || { m8_svc_diag $g; t_bail "gate $g did not start"; }
done

# ------------------------------------------------------------- the document root and PHP-FPM
WWW=$T_DIR/www
mkdir -p "$WWW/public" "$WWW/static" "$WWW/app" "$WWW/ops" "$WWW/closed"
echo hello >"$WWW/public/hello.txt"
echo static >"$WWW/static/a.txt"
echo ops >"$WWW/ops/x.txt"
echo closed >"$WWW/closed/x.txt"
echo other >"$WWW/other.txt"
cat >"$WWW/app/index.php" <<'EOF'
<?php
header('Content-Type: application/json');
$o = ['method' => $_SERVER['REQUEST_METHOD'], 'body' => strlen(file_get_contents('php://input'))];
foreach (['AUTH_USER_ID', 'AUTH_EMAIL', 'AUTH_ROLE', 'AUTH_IS_SUPERUSER', 'AUTH_TENANT_ID',
          'HTTP_AUTHORIZATION', 'HTTP_X_AUTH_USER_ID', 'HTTP_X_AUTH_ROLE'] as $k) {
    $o[$k] = $_SERVER[$k] ?? null;
}
echo json_encode($o);
EOF
cp "$WWW/app/index.php" "$WWW/who.php"
chmod -R a+rX "$WWW"

HAVE_PHP=0
if [ -n "$PHPFPM" ]; then
    PD=$T_DIR/php
    mkdir -p "$PD"
    cat >"$PD/php-fpm.conf" <<EOF
[global]
pid = $PD/php-fpm.pid
error_log = $PD/php-fpm.log
daemonize = no

[www]
user = $(id -un)
group = $(id -gn)
listen = $PD/php.sock
listen.mode = 0660
pm = static
pm.max_children = 2
clear_env = yes
catch_workers_output = yes
EOF
    rootflag=()
    [ "$(id -u)" = 0 ] && rootflag=(-R)
    "$PHPFPM" -n -F -y "$PD/php-fpm.conf" "${rootflag[@]}" </dev/null >"$PD/out" 2>&1 &
    M8_PIDS+=("$!")
    if m8_wait_sock "$PD/php.sock" 15; then
        HAVE_PHP=1
    else
        t_diag "php-fpm did not start: $(tail -n 5 "$PD/out" "$PD/php-fpm.log" 2>/dev/null)"
    fi
fi

# ------------------------------------------------------------- N: nginx
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
m8_pick_port 18900 18949 || t_bail "no free port in 18900-18949"
N=http://127.0.0.1:$M8_PORT
m8_nginx_site "$NG" gate gate-site.conf NAME=t_gate LISTEN="127.0.0.1:$M8_PORT" \
    SERVER_NAME=localhost ROOT="$WWW" GATE_SOCKET="$T_DIR/gate.sock" \
    PHP_SOCKET="$T_DIR/php/php.sock" || t_bail "cannot render contrib/nginx/gate-site.conf"
# The same site in front of the cookie-mode gate.
m8_pick_port 18900 18949 || t_bail "no free port in 18900-18949"
NC=http://127.0.0.1:$M8_PORT
m8_nginx_site "$NG" gatecookie gate-site.conf NAME=t_gatec LISTEN="127.0.0.1:$M8_PORT" \
    SERVER_NAME=localhost ROOT="$WWW" GATE_SOCKET="$T_DIR/cookie.sock" \
    PHP_SOCKET="$T_DIR/php/php.sock" || t_bail "cannot render contrib/nginx/gate-site.conf"
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"
ready() { m8_http GET "$N/public/hello.txt"; [ "$H_STATUS" = 200 ]; }
m8_wait_for 15 ready || { m8_svc_diag G; t_bail "nginx + gate do not answer"; }

ng() { # METHOD PATH TOKEN-NAME|"" [curl args]: a request through nginx
    local m=$1 p=$2 t=$3
    shift 3
    if [ -n "$t" ]; then
        m8_http "$m" "$N$p" -H "Authorization: Bearer ${TOK[$t]}" "$@"
    else
        m8_http "$m" "$N$p" "$@"
    fi
}

ng GET /public/hello.txt ""
t_is "$H_STATUS:$H_BODY" 200:hello "nginx: a public file without a token: 200"
ng HEAD /public/hello.txt "" -I
t_is "$H_STATUS" 200 "nginx: HEAD on a public file (GET covers HEAD): 200"
ng GET /static/a.txt ""
t_is "$H_STATUS:$H_BODY" '401:{"detail":"Not authenticated"}' \
    "nginx: a protected file without a token: 401 Not authenticated (doc/responses.md#auth-failures)"
t_is "$(m8_hdr WWW-Authenticate)" Bearer "nginx: ... with WWW-Authenticate: Bearer"
ng GET /static/a.txt "" -H 'Authorization: Basic dXNlcjpwdw=='
t_is "$H_STATUS:$H_BODY" '401:{"detail":"Not authenticated"}' "nginx: a Basic credential: 401"
ng GET /static/a.txt badsig
t_is "$H_STATUS:$H_BODY" '401:{"detail":"Could not validate credentials."}' \
    "nginx: a token signed by another key: 401 Could not validate credentials."
t_is "$(m8_hdr WWW-Authenticate)" 'Bearer error="invalid_token"' \
    "nginx: ... with WWW-Authenticate: Bearer error=\"invalid_token\""
ng GET /static/a.txt expired
t_is "$H_STATUS" 401 "nginx: an expired token: 401"
ng GET /static/a.txt refresh
t_is "$H_STATUS" 401 "nginx: a refresh token: 401"
ng GET /static/a.txt user
t_is "$H_STATUS:$H_BODY" 200:static "nginx: a protected file with a user token: 200"
ng GET /static/missing.txt user
t_is "$H_STATUS" 404 "nginx: allowed, then nginx's own 404 for a missing file"
ng GET /ops/x.txt admin
t_is "$H_STATUS:$H_BODY" "403:{\"detail\":\"The user doesn't have enough privileges\"}" \
    "nginx: the superuser rule with an admin token: 403 with the superuser detail (doc/responses.md#auth-failures)"
ng GET /ops/x.txt super
t_is "$H_STATUS:$H_BODY" 200:ops "nginx: the superuser rule with the superuser: 200"
ng GET /closed/x.txt super
t_is "$H_STATUS:$H_BODY" '403:{"detail":"Forbidden"}' "nginx: a deny rule refuses even the superuser"
ng GET /other.txt super
t_is "$H_STATUS" 403 "nginx: an unmatched path is denied by the default rule (the file exists)"
ng GET /nowhere super
t_is "$H_STATUS" 403 "nginx: an unmatched missing path: 403 (the policy before any 404)"
ng POST /public/hello.txt ""
t_is "$H_STATUS" 403 "nginx: a method the public rule does not list falls to the default: 403"

# A path that could mean two things to a backend is refused (the gate's
# 400; nginx says 500); the full tables are in t_gate_paths.sh.
ng GET /public/../static/a.txt "" --path-as-is
t_is "$H_STATUS" 500 "nginx: /public/../static/a.txt (a dot segment) is refused"
ng GET /public/%2e%2e/static/a.txt "" --path-as-is
t_is "$H_STATUS" 500 "nginx: /public/%2e%2e/static/a.txt (an encoded dot segment) is refused"
ng GET /public%2f..%2fstatic/a.txt "" --path-as-is
t_is "$H_STATUS" 500 "nginx: /public%2f..%2fstatic/a.txt (encoded slashes) is refused"
ng GET //public///hello.txt "" --path-as-is
t_is "$H_STATUS" 500 "nginx: //public///hello.txt (empty segments) is refused"
ng GET /public/%68ello.txt ""
t_is "$H_STATUS:$H_BODY" 200:hello "nginx: /public/%68ello.txt (an encoded letter, one rule) is public: 200"
ng GET /%70ublic/hello.txt ""
t_is "$H_STATUS" 500 "nginx: /%70ublic/hello.txt (another rule as sent than decoded) is refused"
ng GET '/static/a.txt?/public/' ""
t_is "$H_STATUS" 401 "nginx: a query naming a public path changes nothing: 401"
ng GET /static/a.txt "" -H 'X-Original-URI: /public/hello.txt' -H 'X-Original-Method: GET'
t_is "$H_STATUS" 401 "nginx: a client's own X-Original-URI header never picks the rule: 401"
ng OPTIONS /public/hello.txt "" -H 'Origin: http://localhost:3000' \
    -H 'Access-Control-Request-Method: GET'
t_is "$H_STATUS" 500 \
    "nginx: a CORS preflight is refused (the gate's 400; nginx says 500), never let through"

if [ "$HAVE_PHP" = 1 ]; then
    ng GET /app/index.php user
    t_is "$H_STATUS:$H_BODY" "403:{\"detail\":\"The user doesn't have enough privileges\"}" \
        "nginx+PHP: GET with a user token on a reader rule: 403 with the role detail (doc/responses.md#auth-failures)"
    ng GET /app/index.php reader
    t_is "$H_STATUS" 200 "nginx+PHP: GET with a reader token: 200"
    t_like "$H_BODY" "\"AUTH_USER_ID\":\"${SUB[reader]}\"" \
        "nginx+PHP: ... PHP sees the caller's id in AUTH_USER_ID"
    t_like "$H_BODY" '"AUTH_EMAIL":"reader@example.com","AUTH_ROLE":"reader","AUTH_IS_SUPERUSER":"false"' \
        "nginx+PHP: ... and its email, role and superuser flag"
    t_like "$H_BODY" '"HTTP_AUTHORIZATION":(""|null)' "nginx+PHP: ... but not the token"
    ng POST /app/index.php reader --data-binary 'a=1'
    t_is "$H_STATUS" 403 "nginx+PHP: POST with a reader token on a writer rule: 403"
    ng POST /app/index.php writer --data-binary 'payload=12345'
    t_is "$H_STATUS" 200 "nginx+PHP: POST with a writer token: 200"
    t_like "$H_BODY" '"method":"POST","body":13,' \
        "nginx+PHP: ... the body reaches PHP whole (the gate never reads it)"
    t_like "$H_BODY" '"AUTH_TENANT_ID":"5d3c2b1a-0f9e-4d8c-b7a6-958473625140"' \
        "nginx+PHP: ... with the caller's tenant"
    ng GET /app/index.php inactive
    t_is "$H_STATUS:$H_BODY" '403:{"detail":"Inactive user"}' "nginx+PHP: an inactive user: 403"
    ng GET /app/index.php ""
    t_is "$H_STATUS" 401 "nginx+PHP: no token: 401"
    ng GET /who.php "" -H 'X-Auth-User-Id: 00000000-0000-0000-0000-000000000000' \
        -H 'Auth-User-Id: 00000000-0000-0000-0000-000000000000'
    t_is "$H_STATUS" 200 "nginx+PHP: a public script without a token: 200"
    t_like "$H_BODY" '"AUTH_USER_ID":"","AUTH_EMAIL":""' \
        "nginx+PHP: ... with an empty identity, whatever headers the client sends"
    t_like "$H_BODY" '"HTTP_X_AUTH_USER_ID":(""|null),' \
        "nginx+PHP: ... and the client's own X-Auth-User-Id does not reach PHP"
    ng GET /app/index.php reader -H 'X-Auth-User-Id: 00000000-0000-0000-0000-000000000000' \
        -H 'X-Auth-Role: superadmin'
    t_like "$H_STATUS:$H_BODY" "^200:.*\"AUTH_USER_ID\":\"${SUB[reader]}\"" \
        "nginx+PHP: a reader token and spoofed X-Auth-* headers: AUTH_USER_ID is the gate's"
    t_like "$H_BODY" '"HTTP_X_AUTH_USER_ID":(""|null),"HTTP_X_AUTH_ROLE":(""|null)' \
        "nginx+PHP: ... and PHP never sees the client's X-Auth-User-Id or X-Auth-Role"
else
    t_skip "nginx+PHP: the PHP-FPM matrix" "php-fpm is not installed (apt-get install php-fpm)"
fi

# ------------------------------------------------------------- C: nginx + the cookie-mode gate
nc() { # METHOD PATH COOKIE-TOKEN-NAME|"" [curl args]: a request to the cookie site
    local m=$1 p=$2 t=$3
    shift 3
    if [ -n "$t" ]; then
        m8_http "$m" "$NC$p" -H "Cookie: theme=dark; $CK=${TOK[$t]}" "$@"
    else
        m8_http "$m" "$NC$p" "$@"
    fi
}
nc GET /_fcgim8/csrf super
t_is "$H_STATUS" 200 "nginx+cookie: GET /_fcgim8/csrf with the token cookie: 200"
t_like "$H_BODY" '^\{"csrf_token":"[A-Za-z0-9_-]{64}","header_name":"X-CSRF-Token"\}$' \
    "nginx+cookie: ... the token in JSON"
CSRF_S=$(sed -n 's/^{"csrf_token":"\([A-Za-z0-9_-]*\)".*/\1/p' <<<"$H_BODY")
nc GET /_fcgim8/csrf ""
t_is "$H_STATUS" 401 "nginx+cookie: GET /_fcgim8/csrf without the cookie: 401"
nc GET /_fcgim8/csrf super -H 'Sec-Fetch-Site: cross-site'
t_is "$H_STATUS" 403 "nginx+cookie: GET /_fcgim8/csrf from another site: 403"
nc GET /static/a.txt user
t_is "$H_STATUS:$H_BODY" 200:static "nginx+cookie: a GET with the token cookie: 200"
nc GET /static/a.txt user -H 'Authorization;'
t_is "$H_STATUS:$H_BODY" 200:static \
    "nginx+cookie: an empty Authorization header from the client counts as absent: 200"
nc POST /ops/x.txt super
t_is "$H_STATUS:$H_BODY" '403:{"detail":"CSRF token missing or incorrect."}' \
    "nginx+cookie: a POST without the CSRF token: 403 with the detail"
m8_http POST "$NC/ops/x.txt" -H "Cookie: $CK=${TOK[super]}; m8_csrf=abc" -H 'X-CSRF-Token: abc'
t_is "$H_STATUS" 403 "nginx+cookie: a cookie and header pair the attacker chose: 403"
nc POST /ops/x.txt super -H "X-CSRF-Token: $CSRF_S"
t_is "$H_STATUS" 405 \
    "nginx+cookie: a POST with the token: let through (nginx's own 405 for a static file)"
nc POST /ops/x.txt super -H "X-CSRF-Token: $CSRF_S" -H "Origin: $NC"
t_is "$H_STATUS" 405 "nginx+cookie: ... with the site's own Origin: let through"
nc POST /ops/x.txt super -H "X-CSRF-Token: $CSRF_S" -H 'Origin: https://evil.example'
t_is "$H_STATUS" 403 "nginx+cookie: ... with a foreign Origin: 403"
nc POST /ops/x.txt super -H "X-CSRF-Token: $CSRF_S" -H 'Sec-Fetch-Site: cross-site'
t_is "$H_STATUS" 403 "nginx+cookie: ... with Sec-Fetch-Site: cross-site: 403"
nc POST /ops/x.txt admin -H "X-CSRF-Token: $CSRF_S"
t_is "$H_STATUS" 403 "nginx+cookie: the token with another session's cookie: 403"
if [ "$HAVE_PHP" = 1 ]; then
    nc GET /_fcgim8/csrf writer
    CSRF=$(sed -n 's/^{"csrf_token":"\([A-Za-z0-9_-]*\)".*/\1/p' <<<"$H_BODY")
    nc POST /app/index.php writer -H "X-CSRF-Token: $CSRF" -H 'X-Auth-User-Id: spoofed' \
        --data-binary 'payload=12345'
    t_like "$H_STATUS:$H_BODY" "^200:.*\"AUTH_USER_ID\":\"${SUB[writer]}\"" \
        "nginx+cookie+PHP: a POST with the cookie and its token: 200, the caller in AUTH_USER_ID"
    t_like "$H_BODY" '"HTTP_X_AUTH_USER_ID":(""|null),' \
        "nginx+cookie+PHP: ... and not the client's X-Auth-User-Id"
fi

# ------------------------------------------------------------- F: the gate without a web server
gq() { # SOCKET METHOD URI [VAR=VALUE...]: an auth_request-shaped question over FastCGI
    local s=$1 m=$2 u=$3
    shift 3
    m8_fcgi_req "$s" "$m" "$u" HTTP_X_ORIGINAL_URI="$u" HTTP_X_ORIGINAL_METHOD="$m" "$@"
}
gq "$T_DIR/gate.sock" GET /app/x HTTP_AUTHORIZATION="Bearer ${TOK[super]}"
t_is "$C_STATUS" 200 "gate: a superuser on a reader rule: 200"
t_is "$(m8_chdr X-Auth-User-Id):$(m8_chdr X-Auth-Role):$(m8_chdr X-Auth-Is-Superuser)" \
    "${SUB[super]}:superadmin:true" "gate: ... with X-Auth-User-Id, X-Auth-Role, X-Auth-Is-Superuser"
t_is "$(m8_chdr X-Auth-Email)" super@example.com "gate: ... and X-Auth-Email"
gq "$T_DIR/gate.sock" GET /public/x HTTP_AUTHORIZATION="Bearer ${TOK[super]}"
t_is "$C_STATUS:$(m8_chdr X-Auth-User-Id)" 200: "gate: a public rule: 200 without identity headers"
m8_fcgi_req "$T_DIR/gate.sock" GET /static/a.txt HTTP_X_ORIGINAL_URI=/public/x
t_is "$C_STATUS" 500 "gate: X-Original-URI that differs from REQUEST_URI: 500 (misconfigured)"
m8_fcgi_req "$T_DIR/gate.sock" GET /static/a.txt HTTP_X_ORIGINAL_URI=/static/a.txt \
    HTTP_X_ORIGINAL_METHOD=POST
t_is "$C_STATUS" 500 "gate: X-Original-Method that differs from REQUEST_METHOD: 500"
gq "$T_DIR/gate.sock" GET /../x
t_is "$C_STATUS" 400 "gate: a path above the root: 400"
m8_fcgi_req "$T_DIR/gate.sock" GET /ping
t_is "$C_STATUS:$C_BODY" '200:{"status":"ok"}' "gate: without X-Original-URI: the gate's own /ping"
gq "$T_DIR/nokeys.sock" GET /app/x HTTP_AUTHORIZATION="Bearer ${TOK[reader]}"
t_is "$C_STATUS" 503 "gate: the JWKS is unreachable and nothing is cached: 503"
gq "$T_DIR/nokeys.sock" GET /public/x
t_is "$C_STATUS" 200 "gate: ... while public rules still answer 200"

# the cookie credential, signed CSRF tokens and the origin checks
cq() { gq "$T_DIR/cookie.sock" "$@"; } # METHOD URI [VAR=VALUE...]: to the cookie-mode gate
cq GET /static/a HTTP_COOKIE="theme=dark; $CK=${TOK[user]}"
t_is "$C_STATUS:$(m8_chdr X-Auth-User-Id)" "200:${SUB[user]}" "cookie: a GET with the token cookie: 200"
cq GET /static/a HTTP_AUTHORIZATION= HTTP_COOKIE="$CK=${TOK[user]}"
t_is "$C_STATUS:$(m8_chdr X-Auth-User-Id)" "200:${SUB[user]}" \
    "cookie: an empty Authorization (a site passing \$http_authorization) counts as absent: 200"
cq GET /static/a HTTP_AUTHORIZATION='Basic dXNlcjpwdw==' HTTP_COOKIE="$CK=${TOK[user]}"
t_is "$C_STATUS" 401 "cookie: a Basic credential is not replaced by the cookie: 401"
cq GET /static/a HTTP_COOKIE="$CK=${TOK[user]}; $CK=${TOK[admin]}"
t_is "$C_STATUS" 401 "cookie: the token cookie twice with different values (one planted): 401"
cq GET /static/a HTTP_COOKIE="$CK=${TOK[badsig]}"
t_is "$C_STATUS" 401 "cookie: a bad token in the cookie: 401"
gq "$T_DIR/gate.sock" GET /static/a HTTP_COOKIE="$CK=${TOK[user]}"
t_is "$C_STATUS" 401 "cookie: off by default (the same cookie to a gate without --cookie): 401"

csrf_of() { # SOCKET TOKEN-NAME [VAR=VALUE...]: GET /api/csrf; sets CSRF to the token
    local s=$1 t=$2
    shift 2
    m8_fcgi_req "$s" GET /api/csrf HTTP_COOKIE="$CK=${TOK[$t]}" "$@"
    CSRF=$(sed -n 's/^{"csrf_token":"\([A-Za-z0-9_-]*\)".*/\1/p' <<<"$C_BODY")
}
csrf_of "$T_DIR/cookie.sock" writer
t_is "$C_STATUS" 200 "csrf: GET /api/csrf with the token cookie: 200"
t_like "$C_BODY" '^\{"csrf_token":"[A-Za-z0-9_-]{64}","header_name":"X-CSRF-Token"\}$' \
    "csrf: ... a 64-character token and the header to send it in"
t_is "$(m8_chdr Cache-Control)" no-store "csrf: ... never cached"
CSRF_W=$CSRF
csrf_of "$T_DIR/cookie.sock" writer
t_ok "$([ -n "$CSRF" ] && [ "$CSRF" != "$CSRF_W" ] && echo 0 || echo 1)" \
    "csrf: each GET gives a fresh token (a new nonce)"
csrf_of "$T_DIR/cookie.sock" admin
CSRF_A=$CSRF
m8_fcgi_req "$T_DIR/cookie.sock" GET /api/csrf
t_is "$C_STATUS" 401 "csrf: GET /api/csrf without a credential: 401"
csrf_of "$T_DIR/cookie.sock" badsig
t_is "$C_STATUS" 401 "csrf: GET /api/csrf with a bad token: 401"
csrf_of "$T_DIR/cookie.sock" writer HTTP_SEC_FETCH_SITE=cross-site
t_is "$C_STATUS" 403 "csrf: GET /api/csrf from another site (Sec-Fetch-Site): 403"
csrf_of "$T_DIR/cookie.sock" writer HTTP_ORIGIN=https://evil.example
t_is "$C_STATUS" 403 "csrf: GET /api/csrf with a foreign Origin: 403"
csrf_of "$T_DIR/gate.sock" writer
t_is "$C_STATUS" 404 "csrf: no /api/csrf on a gate without --csrf-key-file"

W="$CK=${TOK[writer]}"
cq POST /app/x HTTP_COOKIE="$W"
t_is "$C_STATUS:$C_BODY" '403:{"detail":"CSRF token missing or incorrect."}' \
    "csrf: a POST with the cookie and no CSRF token: 403"
t_is "$(m8_chdr X-Auth-Detail)" "CSRF token missing or incorrect." "csrf: ... the detail in X-Auth-Detail"
cq POST /app/x HTTP_COOKIE="$W; m8_csrf=Zm9vYmFy0123" HTTP_X_CSRF_TOKEN=Zm9vYmFy0123
t_is "$C_STATUS" 403 \
    "csrf: a cookie and a header both of the attacker's choosing (the old double submit): 403"
cq POST /app/x HTTP_COOKIE="$W; m8_csrf=$CSRF_A" HTTP_X_CSRF_TOKEN="$CSRF_A"
t_is "$C_STATUS" 403 "csrf: a genuine token of another session (the attacker's own): 403"
last=${CSRF_W: -1}
[ "$last" = A ] && last=B || last=A
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="${CSRF_W%?}$last"
t_is "$C_STATUS" 403 "csrf: the token with its last character changed: 403"
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W"
t_is "$C_STATUS:$(m8_chdr X-Auth-Role)" 200:writer "csrf: a POST with the token of its session: 200"
cq DELETE /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W"
t_is "$C_STATUS" 200 "csrf: ... and a DELETE: 200"
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W" REQUEST_SCHEME=http \
    HTTP_ORIGIN=http://localhost
t_is "$C_STATUS" 200 "csrf: with the site's own Origin: 200"
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W" HTTP_ORIGIN=http://localhost:3000
t_is "$C_STATUS" 200 "csrf: with an Origin of BACKEND_CORS_ORIGINS: 200"
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W" HTTP_ORIGIN=https://evil.example
t_is "$C_STATUS" 403 "csrf: a foreign Origin, even with the right token: 403"
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W" REQUEST_SCHEME=https \
    HTTP_ORIGIN=http://localhost
t_is "$C_STATUS" 403 "csrf: the own host under another scheme: 403"
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W" HTTP_ORIGIN=null
t_is "$C_STATUS" 403 "csrf: Origin: null: 403"
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W" \
    HTTP_REFERER=https://evil.example/page.html
t_is "$C_STATUS" 403 "csrf: no Origin and a foreign Referer: 403"
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W" HTTP_REFERER=http://localhost/app/
t_is "$C_STATUS" 200 "csrf: no Origin and a Referer of the site: 200"
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W" HTTP_SEC_FETCH_SITE=cross-site
t_is "$C_STATUS" 403 "csrf: Sec-Fetch-Site: cross-site: 403"
cq POST /app/x HTTP_COOKIE="$W" HTTP_X_CSRF_TOKEN="$CSRF_W" HTTP_SEC_FETCH_SITE=same-origin
t_is "$C_STATUS" 200 "csrf: Sec-Fetch-Site: same-origin: 200"
cq POST /app/x HTTP_AUTHORIZATION="Bearer ${TOK[writer]}" HTTP_ORIGIN=https://evil.example
t_is "$C_STATUS" 200 "csrf: an Authorization header (no ambient credential) needs no CSRF check: 200"
CLOG=${M8_SVC_LOG[C]}
t_like "$(grep '"gate.decision"' "$CLOG" | grep '"status":403' | grep -c 'csrf: the token is not valid for this session')" \
    '^[1-9]' "log: a refused CSRF token is logged with its reason"
t_like "$(grep '"gate.decision"' "$CLOG" | grep -c 'csrf: the Origin is not allowed')" '^[1-9]' \
    "log: ... and a refused Origin"
t_unlike "$(cat "$CLOG")" "$(cat "$KD/csrf.key")" "log: the CSRF key never appears in the gate's log"

# metrics per rule, one log line per decision, never the token
m8_fcgi_req "$T_DIR/gate.sock" GET /api/metrics
t_like "$C_BODY" 'http_requests_total\{method="GET",endpoint="static",status_code="401"\}' \
    "metrics: requests counted per rule and status (endpoint = the rule name)"
t_like "$C_BODY" 'endpoint="closed",status_code="403"' "metrics: ... the deny rule too"
LOG=${M8_SVC_LOG[G]}
t_like "$(grep '"gate.decision"' "$LOG" | grep '"rule":"ops"' | grep '"decision":"allow"')" \
    "\"mode\":\"auth_request\",\"rule\":\"ops\",\"access\":\"superuser\",\"decision\":\"allow\",\"status\":200,\"method\":\"GET\",\"path\":\"/ops/x.txt\",\"user\":\"${SUB[super]}\"" \
    "log: a decision line names the rule, the decision, the path and the user"
leaks=0
for t in "${!TOK[@]}"; do
    sig=${TOK[$t]##*.}
    grep -qF -- "$sig" "$LOG" ${M8_SVC_LOG[C]} ${M8_SVC_LOG[K]} && leaks=$((leaks + 1))
done
t_is "$leaks" 0 "log: no token (signature) appears in any gate log"
n_dec=$(grep -c '"gate.decision"' "$LOG")
t_ok "$([ "$n_dec" -ge 30 ] && echo 0 || echo 1)" "log: one decision line per question ($n_dec)"

# ------------------------------------------------------------- A: Apache + mod_fcgid
MODS=$(m8_apache_modules 2>/dev/null)
if [ -z "$APACHE2" ] || [ -z "$MODS" ] || [ ! -f "$MODS/mod_fcgid.so" ]; then
    t_skip "Apache: the mod_fcgid matrix" "apache2 or mod_fcgid is not installed"
    t_done
fi
AP=$T_DIR/apache
m8_apache_prepare "$AP" || t_bail "cannot prepare the Apache directory"
m8_apache_program "$AP" "$GATE" || t_bail "cannot copy the gate for Apache's user"
cp "$POL" "$AP/etc/policy" && cp "$KD/rsa.pub" "$AP/etc/rsa.pub" || t_bail "cannot copy the policy"
m8_write_env "$AP/etc/gate.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
    ACCESS_PUBLIC_KEY_FILE="$AP/etc/rsa.pub" TOKEN_STRICT_VALIDATION=true TOKEN_ISSUER=$ISS \
    TOKEN_AUDIENCE=$AUD
chmod 644 "$AP/etc/policy" "$AP/etc/rsa.pub" "$AP/etc/gate.env"
mkdir -p "$AP/cgi" && chmod 755 "$AP/cgi"
cat >"$AP/cgi/who.cgi" <<'EOF'
#!/bin/sh
# read the body first: a CGI program that leaves it unread gets its
# connection reset by mod_cgid
[ -n "$CONTENT_LENGTH" ] && head -c "$CONTENT_LENGTH" >/dev/null
printf 'Content-Type: text/plain\r\n\r\n'
printf 'user=%s\nemail=%s\nrole=%s\nsuperuser=%s\nmethod=%s\nauthorization=%s\n' \
    "$AUTH_USER_ID" "$AUTH_EMAIL" "$AUTH_ROLE" "$AUTH_IS_SUPERUSER" "$REQUEST_METHOD" \
    "$HTTP_AUTHORIZATION"
EOF
cp "$AP/cgi/who.cgi" "$AP/cgi/pub.cgi"
printf '%s\n' "printf 'xauth=%s\\nxrole=%s\\n' \"\$HTTP_X_AUTH_USER_ID\" \"\$HTTP_X_AUTH_ROLE\"" \
    >>"$AP/cgi/pub.cgi"
cp "$AP/cgi/who.cgi" "$AP/cgi/other.cgi"
chmod 755 "$AP/cgi/"*.cgi
echo hello >"$AP/htdocs/hello.txt"
chmod 644 "$AP/htdocs/hello.txt"
# The headers module for the site's "Header always unset" lines (Debian:
# a2enmod headers); the test's standalone.conf does not load it.
printf 'LoadModule headers_module "%s/mod_headers.so"\n' "$MODS" >"$AP/sites/00-modules.conf"
m8_pick_port 18950 18989 || t_bail "no free port in 18950-18989"
A=http://127.0.0.1:$M8_PORT
m8_apache_site "$AP" gate gate-fcgid.conf LISTEN="127.0.0.1:$M8_PORT" SERVER_NAME=localhost \
    ROOT="$AP/htdocs" CGI_DIR="$AP/cgi" GATE="$M8_APACHE_BIN" POLICY="$AP/etc/policy" \
    ENV_FILE="$AP/etc/gate.env" || t_bail "cannot render contrib/apache/gate-fcgid.conf"
m8_apache_start "$AP" || t_bail "Apache did not start: $(tail -n 5 "$AP/error.log" 2>/dev/null)"
ap_diag() { t_diag "--- Apache error.log (last 10 lines)" "$(tail -n 10 "$AP/error.log")"; }

ap() { # METHOD PATH TOKEN-NAME|"" [curl args]
    local m=$1 p=$2 t=$3
    shift 3
    if [ -n "$t" ]; then
        m8_http "$m" "$A$p" -H "Authorization: Bearer ${TOK[$t]}" "$@"
    else
        m8_http "$m" "$A$p" "$@"
    fi
}
ap GET /cgi-bin/pub.cgi ""
t_is "$H_STATUS" 200 "Apache: a public CGI script without a token: 200" || ap_diag
t_like "$H_BODY" '^user=
email=' "Apache: ... with no identity in its environment"
ap GET /cgi-bin/pub.cgi "" -H 'X-Auth-User-Id: 00000000-0000-0000-0000-000000000000' \
    -H 'X-Auth-Role: superadmin'
t_is "$H_STATUS:$(grep -E '^x(auth|role)=' <<<"$H_BODY" | tr '\n' ' ')" '200:xauth= xrole= ' \
    "Apache: a client's own X-Auth-User-Id and X-Auth-Role never reach the script"
ap GET /cgi-bin/who.cgi ""
t_is "$H_STATUS:$(m8_hdr WWW-Authenticate)" 401:Bearer \
    "Apache: a protected script without a token: 401 with WWW-Authenticate: Bearer"
ap GET /cgi-bin/who.cgi badsig
t_is "$H_STATUS:$(m8_hdr WWW-Authenticate)" '401:Bearer error="invalid_token"' \
    "Apache: a bad token: 401 with Bearer error=\"invalid_token\""
ap GET /cgi-bin/who.cgi user
t_is "$H_STATUS:$(m8_hdr X-Auth-Detail)" "401:The user doesn't have enough privileges" \
    "Apache: a role too low: refused (mod_fcgid makes every refusal a 401; the detail says why)"
ap GET /cgi-bin/who.cgi reader
t_is "$H_STATUS" 200 "Apache: a reader token: 200" || ap_diag
t_like "$H_BODY" "^user=${SUB[reader]}
email=reader@example.com
role=reader
superuser=false
method=GET
authorization=\$" "Apache: ... the identity is in the script's environment, the token is not"
t_is "$(m8_hdr_count Variable-AUTH_USER_ID)" 0 \
    "Apache: ... and the Variable-* headers do not reach the client"
ap POST /cgi-bin/who.cgi writer --data-binary x=1
t_like "$H_STATUS:$H_BODY" "^200:user=${SUB[writer]}" "Apache: a POST with a writer token: 200"
ap GET /cgi-bin/other.cgi super
t_is "$H_STATUS" 401 "Apache: an unmatched script is denied by the default rule (superuser too)"
ap GET /hello.txt super
t_is "$H_STATUS" 401 "Apache: an unmatched static file is denied by the default rule"
ap GET /cgi-bin/pub.cgi/../who.cgi "" --path-as-is
t_is "$H_STATUS" 401 "Apache: /cgi-bin/pub.cgi/../who.cgi is the protected script: 401"
ap GET /cgi-bin/who.cgi "" -H 'X-Original-URI: /cgi-bin/pub.cgi'
t_is "$H_STATUS" 401 "Apache: X-Original-URI from a client plays no part in the AUTHORIZER role"
# mod_fcgid starts the gate with its own environment (FcgidInitialEnv), so
# the gate holds its lines up to M8_LOG_FLUSH_MS's default (100 ms).
ap_allow_logged() { grep '"gate.decision"' "$AP/error.log" | grep '"decision":"allow"' | grep -q '"rule":"cgi-who"'; }
m8_wait_for 5 ap_allow_logged
t_like "$(grep '"gate.decision"' "$AP/error.log" | grep '"decision":"allow"' | grep '"rule":"cgi-who"' | head -n 1)" \
    '"mode":"authorizer","rule":"cgi-who","access":"reader","decision":"allow"' \
    "Apache: the gate logs its decisions in the AUTHORIZER role (Apache's error log)"

t_done
