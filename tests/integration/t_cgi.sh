#!/bin/bash
# t_cgi.sh - a service run as a CGI program (RFC 3875): the request comes from
# the environment (GATEWAY_INTERFACE, REQUEST_METHOD, SCRIPT_NAME, PATH_INFO,
# REQUEST_URI, QUERY_STRING, CONTENT_LENGTH, HTTP_*) and stdin; the response
# (Status line, headers, blank line, body) goes to stdout, logs to stderr.
# The program is mounted at /cgi-bin/svc, so PATH_INFO is the route.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
m8_init t_cgi

FIX=$(m8_svc_bin fixture)
EX=$(m8_svc_bin example)
[ -x "$FIX" ] && [ -x "$EX" ] || t_bail "service programs not built ($FIX, $EX)"

m8_write_env "$T_DIR/valid.env" HEALTH_DETAIL_CREDENTIAL=Health-Detail-Credential-42
CHECK=$T_DIR/check           # the fixture's "dep" health check reads this file
CGI_ARGS=(--env-file "$T_DIR/valid.env")
CGI_BODY=/dev/null
CGI_CWD=$T_DIR

urldecode() { local s=${1//+/ }; printf '%b' "${s//%/\\x}"; }

# cgi fixture|example METHOD URI [VAR=VALUE...] -> CGI_RC, C_STATUS, C_BODY, m8_chdr
cgi() {
    local bin path qs=
    bin=$(m8_svc_bin "$1")
    path=${3%%\?*}
    [ "$path" != "$3" ] && qs=${3#*\?}
    local m=$2 uri=$3
    shift 3
    (cd "$CGI_CWD" && m8_clean_exec GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1 \
        SERVER_SOFTWARE=Apache/2.4.62 SERVER_NAME=localhost SERVER_PORT=80 SERVER_ADDR=127.0.0.1 \
        REMOTE_ADDR=127.0.0.1 REMOTE_PORT=40000 HTTP_HOST=localhost \
        REQUEST_METHOD="$m" SCRIPT_NAME=/cgi-bin/svc PATH_INFO="$(urldecode "$path")" \
        REQUEST_URI="/cgi-bin/svc$uri" QUERY_STRING="$qs" M8T_CHECK_FILE="$CHECK" "$@" \
        -- timeout 20 "$bin" "${CGI_ARGS[@]}") <"$CGI_BODY" >"$T_DIR/c.out" 2>"$T_DIR/c.err"
    CGI_RC=$?
    m8_cgi_parse "$T_DIR/c.out"
}

post() { # KIND URI BODY [VAR=VALUE...]: a POST with a JSON body on stdin
    local kind=$1 uri=$2
    printf '%s' "$3" >"$T_DIR/c.body"
    local n
    n=$(wc -c <"$T_DIR/c.body")
    shift 3
    CGI_BODY=$T_DIR/c.body
    cgi "$kind" POST "$uri" CONTENT_TYPE=application/json CONTENT_LENGTH="$n" "$@"
    CGI_BODY=/dev/null
}

json_of_size() { # N: a JSON object of exactly N bytes: {"a":"xxx..."}
    local pad
    pad=$(head -c $(( $1 - 8 )) /dev/zero | tr '\0' x)
    printf '{"a":"%s"}' "$pad"
}

diag_out() { t_diag "exit $CGI_RC; stdout:" "$(head -c 1500 "$T_DIR/c.out")" "stderr:" "$(tail -n 5 "$T_DIR/c.err")"; }

# ------------------------------------------------------------- ping, meta
cgi fixture GET /api/ping
t_is "$CGI_RC" 0 "GET /api/ping: the CGI program exits 0" || diag_out
t_is "$C_STATUS" 200 "GET /api/ping: Status 200" || diag_out
t_is "$C_BODY" '{"status":"ok"}' 'GET /api/ping: body {"status":"ok"}'
t_like "$(m8_chdr Content-Type)" '^application/json' "GET /api/ping: Content-Type application/json"
t_like "$(head -n 1 "$T_DIR/c.out")" '^[A-Za-z][A-Za-z0-9-]*: ' "stdout starts with a CGI header (no log line on stdout)"
t_like "$(head -n 1 "$T_DIR/c.err")" '^\{.*\}$' "the log goes to stderr as JSON lines"
t_like "$(cat "$T_DIR/c.err")" '"status": ?200' "the access log line has the status"
for k in method route status duration_ms request_id; do
    t_like "$(grep '"status"' "$T_DIR/c.err" | head -n 1)" "\"$k\"" "the access log line has $k"
done
t_is "$(m8_chdr X-Content-Type-Options)" nosniff "tier 1: X-Content-Type-Options: nosniff"
t_is "$(m8_chdr X-Frame-Options)" DENY "tier 1: X-Frame-Options: DENY"
t_is "$(m8_chdr Referrer-Policy)" "" "local: no tier 2 header (Referrer-Policy)"

cgi fixture GET /ping
t_is "$C_STATUS:$C_BODY" '200:{"status":"ok"}' "GET /ping (outside API_PREFIX): 200 {\"status\":\"ok\"}"

cgi example GET '/api/meta?x=1'
t_is "$C_STATUS" 200 "example GET /api/meta: 200" || diag_out
t_is "$C_BODY" '{"service":"item-service","version":"1.0.0","api_version":"v1","contract":{"name":"item-service","version":"1.0","range":">=1.0.0 <2.0.0"}}' \
    "example GET /api/meta: the ServiceMeta body from the settings"
t_is "$(m8_chdr Cache-Control)" "public, max-age=300" "GET /api/meta: Cache-Control: public, max-age=300"

# ------------------------------------------------------------- health
cgi fixture GET /api/health/
t_is "$C_STATUS:$C_BODY" '200:{"status":"ok"}' "GET /api/health/: 200 {\"status\":\"ok\"} (no check file = ok)"
echo fail >"$CHECK"
cgi fixture GET /api/health/
t_is "$C_STATUS:$C_BODY" '503:{"status":"fail"}' "GET /api/health/ with a failing check: 503 {\"status\":\"fail\"} (doc/responses.md#health)"
cgi fixture GET /api/health/ HTTP_X_INTERNAL_TOKEN=Health-Detail-Credential-42
t_is "$C_STATUS" 503 "health detail with the credential and a failing check: 503"
t_like "$C_BODY" '^\{"status":"fail","checks":\[\{"name":"dep","status":"fail",' "health detail: status, then the dep check"
t_unlike "$C_BODY" 'Health-Detail-Credential-42' "health detail does not echo the credential"
t_like "$C_BODY" '"error":"cannot reach postgres://\*\*\*:\*\*\*@db:5432/app"' "health detail: the error is scrubbed of URL credentials"
t_like "$C_BODY" '"service":"fixture","version":"0\.0\.1"' "health detail: service and version as given to m8_app_new"
echo degraded >"$CHECK"
cgi fixture GET /api/health/
t_is "$C_STATUS:$C_BODY" '200:{"status":"degraded"}' "GET /api/health/ with a degraded check: 200 {\"status\":\"degraded\"}"
rm -f "$CHECK"

# ------------------------------------------------------------- routing, params, errors
cgi fixture GET '/api/hello/w%20x?name=ignored'
t_is "$C_STATUS:$C_BODY" '200:{"hello":"w x"}' "GET /api/hello/w%20x: the path parameter, decoded"
cgi fixture GET /api/nope
t_is "$C_STATUS:$C_BODY" '404:{"detail":"Not Found"}' "unknown path: 404 {\"detail\":\"Not Found\"}"
t_is "$(m8_chdr X-Frame-Options)" DENY "the 404 carries the security headers"
cgi fixture DELETE /api/ping
t_is "$C_STATUS:$C_BODY" '405:{"detail":"Method Not Allowed"}' "DELETE /api/ping: 405 {\"detail\":\"Method Not Allowed\"}"
t_is "$(m8_chdr Allow)" GET "the 405 has Allow: GET"
cgi fixture GET /api/fail
t_is "$C_STATUS:$C_BODY" '500:{"detail":"Internal Server Error"}' "a failing handler: 500 {\"detail\":\"Internal Server Error\"}, no reason sent"
t_like "$(cat "$T_DIR/c.err")" '"status": ?500' "the 500 is logged"
t_like "$(cat "$T_DIR/c.err")" 'secret-detail-never-sent' "the reason of the 500 is logged (and only logged)"

post fixture /api/echo '{"a":[1,2,3],"b":"c"}'
t_is "$C_STATUS" 200 "POST /api/echo with a JSON body from stdin: 200" || diag_out
t_like "$C_BODY" '"b": ?"c"' "POST /api/echo: the body came through"
post fixture /api/echo '{"a":'
t_is "$C_STATUS" 422 "POST /api/echo with invalid JSON: 422"
t_like "$C_BODY" '^\{"detail":\[' "the 422 body is {\"detail\":[...]}"
post fixture /api/echo "$(json_of_size 4096)"
t_is "$C_STATUS" 200 "a body of exactly the limit (4096 bytes): 200" || diag_out
post fixture /api/echo "$(json_of_size 4097)"
t_is "$C_STATUS" 413 "a body one byte over the limit (4097 bytes): 413"
printf '{}' >"$T_DIR/c.body"
CGI_BODY=$T_DIR/c.body
cgi fixture POST /api/echo CONTENT_TYPE=application/json CONTENT_LENGTH=1000000000
CGI_BODY=/dev/null
t_is "$C_STATUS" 413 "CONTENT_LENGTH far over the limit with a short body: 413 at once (never trusted for allocation)"

# ------------------------------------------------------------- CORS, trusted host
cgi fixture GET /api/ping HTTP_ORIGIN=http://localhost:3000
t_is "$(m8_chdr Access-Control-Allow-Origin)" http://localhost:3000 "simple request from an allowed origin: Access-Control-Allow-Origin"
t_is "$(m8_chdr Access-Control-Allow-Credentials)" true "... and Access-Control-Allow-Credentials: true"
cgi fixture GET /api/ping HTTP_ORIGIN=http://evil.example
t_is "$(m8_chdr Access-Control-Allow-Origin)" "" "simple request from another origin: no Access-Control-Allow-Origin"
cgi fixture OPTIONS /api/ping HTTP_ORIGIN=http://localhost:3000 HTTP_ACCESS_CONTROL_REQUEST_METHOD=POST
t_is "$C_STATUS:$C_BODY" "200:OK" "CORS preflight from an allowed origin: 200 OK"
t_is "$(m8_chdr Access-Control-Allow-Methods)" "GET, POST, PUT, PATCH, DELETE, OPTIONS" "preflight: Access-Control-Allow-Methods"

m8_write_env "$T_DIR/hosts.env" ALLOWED_HOSTS=localhost,api.example.com
CGI_ARGS=(--env-file "$T_DIR/hosts.env")
cgi fixture GET /api/ping HTTP_HOST=evil.example
t_is "$C_STATUS:$C_BODY" "400:Invalid host header" "ALLOWED_HOSTS: another Host gets 400 Invalid host header"
cgi fixture GET /api/ping HTTP_HOST=api.example.com:8443
t_is "$C_STATUS" 200 "ALLOWED_HOSTS: an allowed Host with a port: 200"
CGI_ARGS=(--env-file "$T_DIR/valid.env")

# ------------------------------------------------------------- Authorization reaches the program
cgi example GET /api/openapi.json
t_is "$C_STATUS" 200 "example GET /api/openapi.json (local): 200"
t_like "$C_BODY" '"openapi": ?"3\.1' "the example's document is OpenAPI 3.1"
cgi fixture GET /api/openapi.json
protected=
if [ -x /usr/bin/python3 ]; then
    protected=$(printf '%s' "$C_BODY" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
top = d.get("security")
for p, ops in d.get("paths", {}).items():
    op = ops.get("get") if isinstance(ops, dict) else None
    if op is None:
        continue
    sec = op.get("security", top)
    if sec:
        import re
        print(re.sub(r"\{[^}]*\}", "00000000-0000-4000-8000-000000000001", p))
        break
' 2>/dev/null)
fi
if [ -n "$protected" ]; then
    cgi fixture GET "$protected"
    t_is "$C_STATUS:$C_BODY" '401:{"detail":"Not authenticated"}' "GET $protected without credentials: 401 Not authenticated"
    t_is "$(m8_chdr WWW-Authenticate)" Bearer "... with WWW-Authenticate: Bearer"
    cgi fixture GET "$protected" HTTP_AUTHORIZATION='Bearer not.a.token'
    t_is "$C_STATUS:$C_BODY" '401:{"detail":"Could not validate credentials."}' "HTTP_AUTHORIZATION reaches the program: a bad token is 401 Could not validate credentials."
    t_is "$(m8_chdr WWW-Authenticate)" 'Bearer error="invalid_token"' '... with WWW-Authenticate: Bearer error="invalid_token"'
    cgi fixture GET "$protected" REDIRECT_HTTP_AUTHORIZATION='Bearer not.a.token'
    t_is "$C_STATUS:$C_BODY" '401:{"detail":"Could not validate credentials."}' "REDIRECT_HTTP_AUTHORIZATION is the fallback (Apache rewrites; doc/design.md#authorization-header)"
else
    for i in 1 2 3 4 5; do t_skip "Authorization reaches the program ($i)" "no protected GET route in the fixture's OpenAPI document (or no /usr/bin/python3)"; done
fi

# ------------------------------------------------------------- where the settings come from
CGI_ARGS=()
cgi example GET /api/meta M8_ENV_FILE="$T_DIR/valid.env"
t_is "$C_STATUS" 200 "no --env-file: the settings come from M8_ENV_FILE (doc/settings.md#where-values-come-from)" || diag_out

mkdir -p "$T_DIR/site/cgi-bin"
cp "$T_DIR/valid.env" "$T_DIR/site/.env"
CGI_CWD=$T_DIR/site/cgi-bin
cgi example GET /api/meta
t_is "$C_STATUS" 200 "no --env-file nor M8_ENV_FILE: the first .env walking up from the working directory (doc/settings.md#where-values-come-from)" || diag_out
CGI_CWD=$T_DIR

mapfile -t base < <(printf '%s\n' "${M8_BASE_ENV[@]}")
cgi example GET /api/meta "${base[@]}"
t_is "$C_STATUS" 200 "settings from the process environment alone (no .env file)" || diag_out

CGI_ARGS=(--env-file "$T_DIR/valid.env")
cgi example GET /api/meta PROJECT_NAME=from-environment
t_like "$C_BODY" '"service":"from-environment"' "the process environment beats the .env file (doc/settings.md#where-values-come-from)"

# RFC 3875 4.4: a query without '=' reaches the program as command-line
# words; they are request input, never options (php-cgi CVE-2012-1823).
CGI_ARGS=(--env-file "$T_DIR/valid.env" --listen 127.0.0.1:1)
cgi example GET '/api/meta?--listen+127.0.0.1:1'
t_is "$C_STATUS" 200 "search words of a query without '=' are not taken as options (--listen ignored)" || diag_out
CGI_ARGS=(--env-file "$T_DIR/valid.env" --env-file /etc/passwd)
cgi example GET '/api/meta?--env-file+%2Fetc%2Fpasswd'
t_is "$C_STATUS" 200 "percent-encoded search words are recognised too (--env-file ignored)" || diag_out
CGI_ARGS=(--env-file "$T_DIR/valid.env" --version)
cgi example GET '/api/meta?x=--version'
t_unlike "$(cat "$T_DIR/c.out")" '^Status: 200' "an option not from the query string still counts (a query with '=' passes no words)"
# The words as Apache's mod_cgi/mod_cgid pass them: decoded, then shell
# characters escaped with a backslash ('*' -> '\*'), and bytes such as %ff
# passed as they decode.  Whatever the spelling, the last words (as many as
# the query has) are never read as options.
CGI_ARGS=(--env-file "$T_DIR/valid.env" --listen '127.0.0.1:1\*')
cgi example GET '/api/meta?--listen+127.0.0.1:1*'
t_is "$C_STATUS" 200 "query words escaped by Apache ('*' -> '\\*') are not taken as options (--listen ignored)" || diag_out
CGI_ARGS=(--env-file "$T_DIR/valid.env" --env-file $'/etc/passwd\xff')
cgi example GET '/api/meta?--env-file+/etc/passwd%ff'
t_is "$C_STATUS" 200 "query words with an invalid UTF-8 byte (%ff) are not taken as options (--env-file ignored)" || diag_out
CGI_ARGS=(--version)
cgi example GET '/api/meta?x+--version' "${base[@]}"
t_is "$C_STATUS" 200 "fewer arguments than query words (a server that cuts them short): none is an option" || diag_out
CGI_ARGS=(--env-file "$T_DIR/valid.env")

m8_write_env "$T_DIR/bad.env" ENVIRONMENT=nowhere
CGI_ARGS=(--env-file "$T_DIR/bad.env")
cgi example GET /api/ping
t_ok "$([ "$CGI_RC" != 0 ] && [ "$CGI_RC" != 124 ] && echo 0 || echo 1)" \
    "an invalid configuration in CGI mode fails at once (exit $CGI_RC), without hanging"
t_unlike "$(cat "$T_DIR/c.out" "$T_DIR/c.err")" 'Test-Access-Secret' "... and prints no secret"

t_done
