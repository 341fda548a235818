#!/bin/bash
# t_gate_paths.sh - fcgim8-gate judges the path the backend will serve.
# Behind the gate sits a backend that routes on the raw request target
# (tests/tools/rawpath_backend.py: it serves its admin area when ANY reading
# of the raw path - as sent, decoded once or twice, '\' as '/', ";..." cut
# off, "//" merged, dot segments resolved - lands under /admin).  With the
# policy "admin * /admin admin", "public GET /public/ public",
# "default deny", a table of spellings that could be read as /admin must
# never reach the admin area without an admin token:
#   N  nginx auth_request (the gate location of contrib/nginx/gate-site.conf)
#      in front of the backend by proxy_pass without a URI part (the raw
#      target goes through); and a differential test: for every target the
#      gate lets through, the path it judged equals nginx's $uri
#   A  Apache + mod_fcgid (FcgidAccessChecker) in front of the backend run as
#      a CGI front controller (it routes on REQUEST_URI), with
#      AllowEncodedSlashes Off, On and NoDecode
# Ports from 19400-19469.  Skips without nginx or python3-jwt; the Apache
# part skips without apache2 and mod_fcgid.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
PY=/usr/bin/python3
"$PY" -c 'import jwt' 2>/dev/null || t_skip_all "python3-jwt is not installed"
m8_init t_gate_paths

GATE=$top_builddir/src/fcgim8-gate
[ -x "$GATE" ] || t_bail "fcgim8-gate is not built ($GATE)"
TOOL=$top_srcdir/tests/tools/rawpath_backend.py

# ------------------------------------------------------------- settings, tokens, policy
ENVF=$T_DIR/gate.env
m8_write_env "$ENVF"
SECRET='Test-Access-Secret-Key-0123456789abcdef!' # ACCESS_SECRET_KEY of the base env
"$PY" - "$SECRET" >"$T_DIR/tokens.tsv" <<'PYEOF' || t_bail "PyJWT could not mint the tokens"
import sys, time, uuid, jwt
now = int(time.time())
for role in ("user", "admin"):
    c = {"sub": str(uuid.uuid4()), "type": "access", "email": role + "@example.com",
         "full_name": None, "avatar": None, "is_active": True, "email_verified": True,
         "is_superuser": False, "role": role, "tenant_id": None, "exp": now + 600,
         "iat": now, "nbf": now, "jti": str(uuid.uuid4())}
    print(role + "\t" + jwt.encode(c, sys.argv[1], algorithm="HS256"))
PYEOF
declare -A TOK=()
while IFS=$'\t' read -r name tok; do TOK[$name]=$tok; done <"$T_DIR/tokens.tsv"
[ -n "${TOK[admin]:-}" ] || t_bail "no tokens minted"

POL=$T_DIR/policy
printf '%s\n' 'admin   *    /admin     admin' 'public  GET  /public/   public' \
    'default                 deny' >"$POL"

# The spellings: each could be read as a path under /admin by some backend.
# One a line, sent byte for byte (a quoted heredoc keeps the backslashes).
ATTACK=$T_DIR/attack.txt
cat >"$ATTACK" <<'EOF'
/admin/../public/
/admin/%2e%2e/public/
/admin/x/..%2F..%2Fpublic/
/admin/%2E%2E/public/
/admin/.%2e/public/
/admin/%2e./public/
/admin/%2e/../public/
/admin/%252e%252e/public/
/admin/x/..%252F..%252Fpublic/
/admin/x/..%255c..%255cpublic/
/admin\..\public\
/admin/..\public/
/admin%5c..%5cpublic%5c
/admin/..%5cpublic/
/admin/..;/public/
/admin;/../public/
/public/..;/admin/
/public;x/../admin
/admin%3b/../public/
/public/%2e%2e;/admin/
//admin/../public/
/admin//../public/
/admin/./../public/
/public/../admin/
/public/%2e%2e/admin/
/public//../admin/
/%61dmin/../public/
/%61dmin/
/admin/%c0%ae%c0%ae/public/
/admin/%2e%2e%2fpublic/
/admin%2f..%2fpublic/
/admin/x/%2e%2e/%2e%2e/public/
/public%2f..%2fadmin/
/public/%252e%252e/admin/
/admin#/../public/
/admin/%2e%2e/public/?a=b
http://localhost/admin/../public/
EOF
n_attack=$(grep -c . "$ATTACK")
# Targets a browser sends every day: the gate lets them through, judging
# nginx's $uri (the differential test).
GOOD=$T_DIR/good.txt
{
    printf '%s\n' /public/ /public/a.txt /public/a/b/c /public/%68ello /public/a%20b \
        '/public/a+b' '/public/~x' /public/a.b /public/..a /public/a.. /public/.well-known/x \
        '/public/?x=../../admin' '/public/a?q=%2f..%2f' '/public/%41%42/' "/public/a'b(c)*!,=:@&$" \
        /public/caf%C3%A9 /public/%E2%82%AC '/public/x?%25'
    printf '/public/caf\xc3\xa9\n/public/\xf0\x9f\x98\x80\n'
} >"$GOOD"

# ------------------------------------------------------------- the gate and the backend
m8_svc_listen G "$GATE" "unix:$T_DIR/gate.sock" "$ENVF" -- --policy "$POL" --threads 2
m8_wait_sock "$T_DIR/gate.sock" 15 || { m8_svc_diag G; t_bail "the gate did not start"; }
"$PY" "$TOOL" serve "$T_DIR/backend.port" </dev/null >"$T_DIR/backend.out" 2>&1 &
M8_PIDS+=("$!")
m8_wait_for 10 test -s "$T_DIR/backend.port" || t_bail "the raw-path backend did not start"
BPORT=$(cat "$T_DIR/backend.port")

# table NAME PORT TARGETS [TOKEN-NAME]: the table through a server -> $T_DIR/NAME.tsv
table() {
    local hdr=()
    [ -n "${4:-}" ] && hdr=("Authorization: Bearer ${TOK[$4]}")
    "$PY" "$TOOL" table 127.0.0.1 "$2" "$3" "$1" "${hdr[@]}" >"$T_DIR/$1.tsv" 2>"$T_DIR/$1.err" ||
        t_bail "$1: the table client failed: $(tail -n 3 "$T_DIR/$1.err")"
    [ "$(grep -c . "$T_DIR/$1.tsv")" = "$(grep -c . "$3")" ] || t_bail "$1: rows missing"
}
# never_admin LABEL TSV: one test per row: the admin area was not served
never_admin() {
    local status area uri rid shown
    while IFS=$'\t' read -r status area uri rid shown; do
        t_ok "$([ "$area" != admin ] && echo 0 || echo 1)" \
            "$1: GET $shown never reaches the admin area" "status $status, area $area"
    done <"$2"
}
row() { # TSV N: "status area" of row N
    sed -n "$2p" "$1" | cut -f1,2 --output-delimiter=' '
}

# ------------------------------------------------------------- N: nginx
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
m8_pick_port 19400 19449 || t_bail "no free port in 19400-19449"
NPORT=$M8_PORT
# The gate location exactly as shipped.
m8_render "$M8_CONTRIB_NGINX/gate-site.conf" "$T_DIR/gate-site.conf" NAME=tp \
    LISTEN="127.0.0.1:$NPORT" SERVER_NAME=localhost ROOT="$T_DIR" \
    GATE_SOCKET="$T_DIR/gate.sock" PHP_SOCKET="$T_DIR/php.sock" ||
    t_bail "cannot render contrib/nginx/gate-site.conf"
sed -n '/^    location = \/_fcgim8_gate {/,/^    }/p' "$T_DIR/gate-site.conf" >"$T_DIR/gate-location"
grep -q 'fastcgi_pass tp_gate;' "$T_DIR/gate-location" ||
    t_bail "no gate location found in contrib/nginx/gate-site.conf"
{
    cat <<EOF
upstream tp_gate {
    server unix:$T_DIR/gate.sock;
    keepalive 8;
}
server {
    listen 127.0.0.1:$NPORT;
    server_name localhost;
    auth_request /_fcgim8_gate;
    auth_request_set \$m8_role \$upstream_http_x_auth_role;
EOF
    cat "$T_DIR/gate-location"
    cat <<EOF
    # The backend gets the target as the client sent it (no URI part), and
    # nginx's \$uri for the differential test.
    location / {
        proxy_pass http://127.0.0.1:$BPORT;
        proxy_set_header X-Nginx-Uri \$uri;
        proxy_set_header X-Auth-Role \$m8_role;
    }
}
EOF
} >"$NG/sites/paths.conf"
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"
printf '/public/\n/admin/x\n' >"$T_DIR/ready.txt"
ready() { "$PY" "$TOOL" table 127.0.0.1 "$NPORT" "$T_DIR/ready.txt" ready 2>/dev/null | grep -q '^200'; }
m8_wait_for 15 ready || { m8_svc_diag G; t_bail "nginx + gate + backend do not answer"; }

# The controls: the backend is reachable, and /admin is protected.
table n-ctl-none "$NPORT" "$T_DIR/ready.txt"
table n-ctl-admin "$NPORT" "$T_DIR/ready.txt" admin
table n-ctl-user "$NPORT" "$T_DIR/ready.txt" user
t_is "$(row "$T_DIR/n-ctl-none.tsv" 1)" "200 public" "nginx: /public/ without a token: the backend's public area"
t_is "$(row "$T_DIR/n-ctl-none.tsv" 2)" "401 -" "nginx: /admin/x without a token: 401"
t_is "$(row "$T_DIR/n-ctl-user.tsv" 2)" "403 -" "nginx: /admin/x with a user token: 403"
t_is "$(row "$T_DIR/n-ctl-admin.tsv" 2)" "200 admin" \
    "nginx: /admin/x with an admin token: the backend's admin area (the table below means something)"

table n-none "$NPORT" "$ATTACK"
never_admin "nginx, no token" "$T_DIR/n-none.tsv"
table n-user "$NPORT" "$ATTACK" user
never_admin "nginx, a user token" "$T_DIR/n-user.tsv"
# The three spellings of the issue are refused by the gate itself (its 400,
# which nginx turns into a 500), with the reason in the decision log.
for i in 1 2 3; do
    t_is "$(row "$T_DIR/n-none.tsv" $i | cut -d' ' -f1)" 500 \
        "nginx: $(sed -n "${i}p" "$ATTACK") is refused by the gate (400; nginx says 500)"
done
t_like "$(grep '"request_id":"n-none-2"' "${M8_SVC_LOG[G]}")" \
    '"rule":"","decision":"deny","status":400,.*"reason":"a dot segment' \
    "nginx: ... the decision log says why (a dot segment)"

# The differential test: for every target the gate let through, the path it
# judged is nginx's \$uri.
table n-good "$NPORT" "$GOOD"
allowed=$(awk -F'\t' '$2 != "-"' "$T_DIR/n-good.tsv" | grep -c .)
t_is "$allowed" "$(grep -c . "$GOOD")" "nginx: every everyday target is let through ($allowed)" ||
    t_diag "$(awk -F'\t' '$2 == "-"' "$T_DIR/n-good.tsv")"
cat "$T_DIR/n-good.tsv" "$T_DIR/n-none.tsv" "$T_DIR/n-user.tsv" "$T_DIR/n-ctl-admin.tsv" \
    >"$T_DIR/n-all.tsv"
"$PY" "$TOOL" differential "$T_DIR/n-all.tsv" "${M8_SVC_LOG[G]}" >"$T_DIR/diff.out" ||
    t_bail "the differential check failed to run"
ndiff=0
while IFS=$'\t' read -r verdict shown gpath upath; do
    ndiff=$((ndiff + 1))
    t_is "$verdict" same "differential: $shown: the gate's path is nginx's \$uri" \
        || t_diag "gate: $gpath" "nginx: $upath"
done <"$T_DIR/diff.out"
t_ok "$([ "$ndiff" -ge "$allowed" ] && echo 0 || echo 1)" \
    "differential: every target let through was compared ($ndiff)"

# ------------------------------------------------------------- A: Apache + mod_fcgid
MODS=$(m8_apache_modules 2>/dev/null)
if [ -z "$APACHE2" ] || [ -z "$MODS" ] || [ ! -f "$MODS/mod_fcgid.so" ]; then
    t_skip "Apache: the AllowEncodedSlashes tables" "apache2 or mod_fcgid is not installed"
    t_done
fi
AP=$T_DIR/apache
m8_apache_prepare "$AP" || t_bail "cannot prepare the Apache directory"
m8_apache_program "$AP" "$GATE" || t_bail "cannot copy the gate for Apache's user"
cp "$POL" "$AP/etc/policy" && cp "$ENVF" "$AP/etc/gate.env" || t_bail "cannot copy the policy"
chmod 644 "$AP/etc/policy" "$AP/etc/gate.env"
mkdir -p "$AP/cgi" && chmod 755 "$AP/cgi"
cp "$TOOL" "$AP/cgi/router.cgi" && chmod 755 "$AP/cgi/router.cgi" || t_bail "cannot copy the router"
printf 'LoadModule headers_module "%s/mod_headers.so"\n' "$MODS" >"$AP/sites/00-modules.conf"
declare -A APORT=()
for mode in Off On NoDecode; do
    m8_pick_port 19450 19469 || t_bail "no free port in 19450-19469"
    APORT[$mode]=$M8_PORT
    printf 'Listen 127.0.0.1:%s\n' "$M8_PORT" >>"$AP/ports.conf"
    cat >"$AP/sites/paths-$mode.conf" <<EOF
<VirtualHost 127.0.0.1:$M8_PORT>
    ServerName localhost
    DocumentRoot "$AP/htdocs"
    AllowEncodedSlashes $mode
    # A front controller: every path runs the router, which routes on the
    # raw REQUEST_URI.
    ScriptAliasMatch "^/.*$" "$AP/cgi/router.cgi"
    <Location "/">
        FcgidAccessChecker "$M8_APACHE_BIN --policy $AP/etc/policy --env-file $AP/etc/gate.env --threads 1"
        FcgidAccessCheckerAuthoritative On
        Require all granted
    </Location>
    <Directory "$AP/cgi">
        Options +ExecCGI
        AllowOverride None
        Require all granted
    </Directory>
    FcgidPassHeader Authorization
    Header always unset Variable-AUTH_USER_ID
    Header always unset Variable-AUTH_EMAIL
    Header always unset Variable-AUTH_ROLE
    Header always unset Variable-AUTH_IS_SUPERUSER
    Header always unset Variable-AUTH_TENANT_ID
    FcgidMaxRequestsPerProcess 0
    FcgidIOTimeout 30
</VirtualHost>
EOF
done
m8_apache_start "$AP" || t_bail "Apache did not start: $(tail -n 5 "$AP/error.log" 2>/dev/null)"
for mode in Off On NoDecode; do
    p=${APORT[$mode]}
    aready() { "$PY" "$TOOL" table 127.0.0.1 "$p" "$T_DIR/ready.txt" ready 2>/dev/null | grep -q '^200'; }
    m8_wait_for 15 aready || t_diag "Apache ($mode) does not answer: $(tail -n 5 "$AP/error.log")"
    table "a-$mode-ctl-none" "$p" "$T_DIR/ready.txt"
    table "a-$mode-ctl-admin" "$p" "$T_DIR/ready.txt" admin
    t_is "$(row "$T_DIR/a-$mode-ctl-none.tsv" 1)" "200 public" \
        "Apache ($mode): /public/ without a token: the router's public area"
    t_is "$(row "$T_DIR/a-$mode-ctl-none.tsv" 2 | cut -d' ' -f1)" 401 \
        "Apache ($mode): /admin/x without a token: 401"
    t_is "$(row "$T_DIR/a-$mode-ctl-admin.tsv" 2)" "200 admin" \
        "Apache ($mode): /admin/x with an admin token: the router's admin area"
    table "a-$mode-none" "$p" "$ATTACK"
    never_admin "Apache AllowEncodedSlashes $mode, no token" "$T_DIR/a-$mode-none.tsv"
    table "a-$mode-user" "$p" "$ATTACK" user
    never_admin "Apache AllowEncodedSlashes $mode, a user token" "$T_DIR/a-$mode-user.tsv"
done
t_diag "$n_attack spellings per table"

t_done
