#!/bin/bash
# t_items.sh - the item service with real storage (issue 6): the example
# under fcgim8d behind a real nginx, on a real MariaDB and a real PostgreSQL
# started here on loopback, with tokens minted by PyJWT.  The same matrix on
# each database: the table created at startup, the "database" health check,
# create / list with limit, offset and total / read / change / delete with
# the ownership and role rules, 422 detail lists naming the field, 409 for a
# duplicate naming the field, SQL-shaped input in every field stored
# verbatim; then the database server restarts under a bounded load: the
# requests of the outage get 503 (none hangs past the timeout), the service
# recovers by itself within 1 s of the server being back, nothing written
# before is lost and nothing is written twice.  Ports from 19000-19079.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"

[ -n "$NGINX" ] || t_skip_all "nginx is not installed"
[ -n "$CURL" ] || t_skip_all "curl is not installed"
PY=/usr/bin/python3
"$PY" -c 'import jwt' 2>/dev/null || t_skip_all "python3-jwt is not installed"
m8_init t_items

EX=$(m8_svc_bin example)
D=$top_builddir/src/fcgim8d
[ -x "$EX" ] && [ -x "$D" ] || t_bail "programs not built ($EX, $D)"
VERSION_OUT=$("$top_builddir/src/fcgim8-prestart" --version 2>&1)
PLO=19000 PHI=19079
PW='Db-Test-Pass-1234!x'
DBNAME=items_db
DBUSER=items_user
PREFIX=shop
CRED='Health-Detail-Credential-0123456789'
HS_SECRET='Test-Access-Secret-Key-0123456789abcdef!'

# ------------------------------------------------------------- tokens (PyJWT, HS256)
# NAME ROLE SUB EMAIL per line; TOKEN[NAME], SUB[NAME], MAIL[NAME].
declare -A TOKEN=() SUB=() MAIL=()
while read -r name tok sub mail; do
    TOKEN[$name]=$tok SUB[$name]=$sub MAIL[$name]=$mail
done < <("$PY" - "$HS_SECRET" <<'PYEOF'
import sys, time, uuid, jwt
secret = sys.argv[1]
now = int(time.time())
for name, role, su in (("A", "writer", False), ("B", "writer", False), ("R", "reader", False),
                       ("U", "user", False), ("ADM", "admin", False)):
    sub = str(uuid.uuid4())
    mail = name.lower() + "@example.com"
    c = {"sub": sub, "type": "access", "email": mail, "full_name": None, "avatar": None,
         "is_active": True, "email_verified": True, "is_superuser": su, "role": role,
         "tenant_id": None, "exp": now + 3600, "iat": now, "nbf": now,
         "jti": str(uuid.uuid4())}
    print(name, jwt.encode(c, secret, algorithm="HS256"), sub, mail)
PYEOF
)
[ -n "${TOKEN[A]:-}" ] || t_bail "PyJWT did not mint the tokens"

# ------------------------------------------------------------- helpers
BASE=
# api METHOD PATH WHO [JSON-BODY]: through nginx with WHO's token ("" = none)
api() {
    local -a a=()
    [ -n "$3" ] && a+=(-H "Authorization: Bearer ${TOKEN[$3]}")
    [ $# -ge 4 ] && a+=(-H 'Content-Type: application/json' --data-binary "$4")
    m8_http "$1" "$BASE$2" "${a[@]}"
}
# jf EXPR: a python expression on j (the last body, parsed) printed
jf() { "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$H_BODY" 2>/dev/null; }
# jenc TEXT: TEXT as a JSON string
jenc() { "$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

KINDS=()
for kind in Mysql Postgres; do
    lk=${kind,,}
    if [ $kind = Mysql ]; then
        [[ $VERSION_OUT == *" mysql"* ]] || { t_skip "$lk: the item service" "built --without-mariadb"; continue; }
        m8_have_mariadb || { t_skip "$lk: the item service" "mariadb-server not installed"; continue; }
    else
        [[ $VERSION_OUT == *" postgres"* ]] || { t_skip "$lk: the item service" "built --without-postgresql"; continue; }
        m8_have_pg || { t_skip "$lk: the item service" "postgresql not installed"; continue; }
    fi
    KINDS+=("$kind")
done
[ ${#KINDS[@]} -gt 0 ] || t_done

declare -A DBPORT=() WEB=() DPID=()
NG=$T_DIR/ngx
m8_nginx_prepare "$NG" || t_bail "cannot render contrib/nginx/standalone.conf"
for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    m8_pick_port $PLO $((PLO + 39)) || t_bail "no free port"
    DBPORT[$kind]=$M8_PORT
    m8_pick_port $((PLO + 40)) $PHI || t_bail "no free port"
    WEB[$kind]=http://127.0.0.1:$M8_PORT
    m8_nginx_site "$NG" "$lk" fcgi-m8-unix.conf NAME="items_$lk" LISTEN="127.0.0.1:$M8_PORT" \
        SERVER_NAME=localhost SOCKET="$T_DIR/$lk.sock" || t_bail "cannot render the site"
done
m8_nginx_start "$NG" || t_bail "nginx did not start: $(tail -n 5 "$NG/error.log" 2>/dev/null)"

db_sql() { # KIND SQL: rows from the application's database
    if [ "$1" = Mysql ]; then
        m8_mariadb_sql "$T_DIR/db-mysql" "USE $DBNAME; $2"
    else
        M8_PG_DB=$DBNAME m8_pg_sql "$T_DIR/db-postgres" "${DBPORT[Postgres]}" "$2"
    fi
}

# ------------------------------------------------------------- settings errors
m8_write_env "$T_DIR/badprefix.env" SELECTED_DB=Postgres DB_HOST=127.0.0.1 DB_PORT=5432 \
    DB_DATABASE=$DBNAME DB_USER=$DBUSER "DB_PASSWORD=$PW" TABLES_PREFIX=bad-prefix
out=$(cd "$T_DIR" && m8_clean_env -- "$EX" --check --env-file "$T_DIR/badprefix.env" 2>&1)
t_is "$?" 78 "a TABLES_PREFIX that is no SQL identifier stops the boot (78)"
t_like "$out" "TABLES_PREFIX" "... naming TABLES_PREFIX"
m8_write_env "$T_DIR/noport.env" SELECTED_DB=Postgres DB_HOST=127.0.0.1 DB_DATABASE=$DBNAME \
    DB_USER=$DBUSER "DB_PASSWORD=$PW"
out=$(cd "$T_DIR" && m8_clean_env -- "$EX" --check --env-file "$T_DIR/noport.env" 2>&1)
t_is "$?" 78 "SELECTED_DB without DB_PORT stops the boot (78)"
t_like "$out" "DB_PORT" "... naming DB_PORT"
t_unlike "$out" "$PW" "... without printing the password"

# ------------------------------------------------------------- the matrix
matrix() { # KIND
    local kind=$1 lk=${1,,} id1 id2 idb body n i
    BASE=${WEB[$kind]}

    # Startup: the table exists, health detail shows the database check.
    if [ "$kind" = Mysql ]; then
        n=$(db_sql $kind "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$DBNAME' AND table_name = '${PREFIX}_items'")
    else
        n=$(db_sql $kind "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '${PREFIX}_items'")
    fi
    t_is "$n" 1 "$lk: the table ${PREFIX}_items was created at startup"
    m8_http GET "$BASE/api/health/" -H "X-Internal-Token: $CRED"
    t_is "$H_STATUS" 200 "$lk: health 200"
    t_is "$(jf "[(c['name'], c['status'], type(c['latency_ms']).__name__, c['meta']['backend']) for c in j['checks']]")" \
        "[('database', 'ok', 'float', '$lk')]" "$lk: the health detail has the database check, ok, with its latency"

    # Create: writers only, the caller owns it.
    api POST /api/items/ A '{"name": "first", "description": "the first item"}'
    t_is "$H_STATUS" 201 "$lk: a writer creates an item (201)" || t_diag "$H_BODY"
    id1=$(jf "j['id']")
    t_is "$(jf "(j['name'], j['description'], j['owner_id'])")" "('first', 'the first item', '${SUB[A]}')" \
        "$lk: ... the item carries name, description and the caller as owner"
    t_like "$(jf "j['created_at'] + ' ' + j['updated_at']")" \
        '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z 20' \
        "$lk: ... created_at and updated_at in UTC (ISO 8601, Z)"
    t_ok "$(jf "abs(__import__('datetime').datetime.fromisoformat(j['created_at'][:-1]).replace(tzinfo=__import__('datetime').timezone.utc).timestamp() - __import__('time').time()) < 60" | grep -qx True; echo $?)" \
        "$lk: ... created_at is now"
    api POST /api/items/ A '{"name": "second"}'
    id2=$(jf "j['id']")
    t_is "$H_STATUS:$(jf "j['description']")" "201:None" "$lk: description is optional (null)"
    api POST /api/items/ B '{"name": "first"}'
    idb=$(jf "j['id']")
    t_is "$H_STATUS" 201 "$lk: another owner may use the same name"
    for who in R U; do
        api POST /api/items/ $who '{"name": "nope"}'
        t_is "$H_STATUS" 403 "$lk: role ${who/R/reader}${who/U/}: POST is refused (403)"
    done
    api POST /api/items/ "" '{"name": "nope"}'
    t_is "$H_STATUS" 401 "$lk: no token: 401"

    # 409: a duplicate name of the same owner names the field.
    api POST /api/items/ A '{"name": "first"}'
    t_is "$H_STATUS:$H_BODY" \
        '409:{"detail":[{"table":null,"field_name":"name","error":"Duplicate entry already exists."}]}' \
        "$lk: a duplicate name of the same owner: 409 naming the field"

    # 422: the detail list names the field.
    api POST /api/items/ A '{"description": "x"}'
    t_is "$H_STATUS:$(jf "[(e['type'], e['loc']) for e in j['detail']]")" "422:[('missing', ['body', 'name'])]" \
        "$lk: a missing name: 422 missing body.name"
    api POST /api/items/ A '{"name": 12}'
    t_is "$H_STATUS:$(jf "[(e['type'], e['loc'], e['input']) for e in j['detail']]")" "422:[('string_type', ['body', 'name'], 12)]" \
        "$lk: a number as name: 422 string_type"
    api POST /api/items/ A '{"name": ""}'
    t_is "$H_STATUS:$(jf "[(e['type'], e['loc'], e['ctx']) for e in j['detail']]")" \
        "422:[('string_too_short', ['body', 'name'], {'min_length': 1})]" "$lk: an empty name: 422 string_too_short"
    long=$(printf '%*s' 255 '' | tr ' ' 'n')
    api POST /api/items/ A "{\"name\": \"${long}x\"}"
    t_is "$H_STATUS:$(jf "[(e['type'], e['loc'], e['ctx']) for e in j['detail']]")" \
        "422:[('string_too_long', ['body', 'name'], {'max_length': 255})]" "$lk: a name of 256 characters: 422 string_too_long"
    wide=$(printf '%*s' 255 '' | sed 's/ /é/g')
    api POST /api/items/ A "{\"name\": \"$wide\", \"description\": \"$(printf '%*s' 1000 '' | tr ' ' 'd')\"}"
    t_is "$H_STATUS" 201 "$lk: a name of exactly 255 characters (510 bytes) and a description of 1000: 201"
    t_is "$(jf "(len(j['name']), len(j['description']))")" "(255, 1000)" "$lk: ... stored whole"
    api POST /api/items/ A "{\"name\": \"d\", \"description\": \"$(printf '%*s' 1001 '' | tr ' ' 'd')\"}"
    t_is "$H_STATUS:$(jf "[(e['type'], e['loc']) for e in j['detail']]")" "422:[('string_too_long', ['body', 'description'])]" \
        "$lk: a description of 1001 characters: 422 naming body.description"
    api POST /api/items/ A '{"name": 1, "description": 2}'
    t_is "$(jf "[e['loc'][1] for e in j['detail']]")" "['name', 'description']" "$lk: two bad fields: both listed"
    api POST /api/items/ A '["name"]'
    t_is "$H_STATUS:$(jf "[(e['type'], e['loc']) for e in j['detail']]")" "422:[('model_attributes_type', ['body'])]" \
        "$lk: a body that is no object: 422"
    api POST /api/items/ A '{"name": "a\u0000b"}'
    t_is "$H_STATUS:$(jf "[(e['type'], e['loc']) for e in j['detail']]")" "422:[('value_error', ['body', 'name'])]" \
        "$lk: a NUL character: 422 naming the field"
    api POST /api/items/ A '{"name": '
    t_is "$H_STATUS:$(jf "j['detail'][0]['type']")" "422:json_invalid" "$lk: malformed JSON: 422 json_invalid"

    # SQL-shaped input in every field is stored verbatim.
    local -a evil=("'; DROP TABLE ${PREFIX}_items; --" "x' OR '1'='1" 'Robert"); DELETE FROM t; --'
        '? $1 %s %n :name \ \\ \x27 `b`' "/* c */ -- d" $'tab\there\nnewline' "caf\u00e9 😀 ‮")
    local bad=0 got
    for i in "${!evil[@]}"; do
        body="{\"name\": $(jenc "${evil[$i]}"), \"description\": $(jenc "desc ${evil[$i]}")}"
        api POST /api/items/ A "$body"
        if [ "$H_STATUS" != 201 ]; then bad=$((bad + 1)); t_diag "$H_STATUS $H_BODY"; continue; fi
        api GET "/api/items/$(jf "j['id']")" A
        got=$(jf "j['name'] + '|' + j['description']")
        [ "$got" = "${evil[$i]}|desc ${evil[$i]}" ] || { bad=$((bad + 1)); t_diag "got: $got"; }
    done
    t_is "$bad" 0 "$lk: SQL-shaped, quoted and multi-line text in name and description is stored verbatim (${#evil[@]} items)"
    n=$(db_sql $kind "SELECT COUNT(*) FROM ${PREFIX}_items")
    t_is "$n" "$((4 + ${#evil[@]}))" "$lk: ... and the table holds exactly the items created"
    api GET "/api/items/1%20OR%201=1" A
    t_is "$H_STATUS:$(jf "[(e['type'], e['loc']) for e in j['detail']]")" "422:[('int_parsing', ['path', 'item_id'])]" \
        "$lk: SQL in the item id: 422 int_parsing path.item_id"
    api GET "/api/items/?limit=1%3B%20DROP%20TABLE%20x" A
    t_is "$H_STATUS:$(jf "[(e['type'], e['loc']) for e in j['detail']]")" "422:[('int_parsing', ['query', 'limit'])]" \
        "$lk: SQL in limit: 422 int_parsing query.limit"

    # List: the caller's own, paginated, with the total.
    local total_a=$((3 + ${#evil[@]}))
    api GET /api/items/ A
    t_is "$H_STATUS:$(jf "(j['owner'], j['total'], len(j['items']), j['limit'], j['offset'])")" \
        "200:('a@example.com', $total_a, $total_a, 100, 0)" "$lk: the list holds the caller's $total_a items, the total and the page"
    t_is "$(jf "all(i['owner_id'] == '${SUB[A]}' for i in j['items'])")" True "$lk: ... only the caller's"
    t_is "$(jf "[i['id'] for i in j['items']] == sorted(i['id'] for i in j['items'])")" True "$lk: ... in id order"
    local page
    page=$(jf "([i['id'] for i in j['items']][1:3], j['total'], 2, 1)")
    api GET "/api/items/?limit=2&offset=1" A
    t_is "$(jf "([i['id'] for i in j['items']], j['total'], j['limit'], j['offset'])")" "$page" \
        "$lk: limit=2&offset=1: the second and third items, the total unchanged"
    api GET "/api/items/?offset=1000" A
    t_is "$(jf "(j['items'], j['total'])")" "([], $total_a)" "$lk: an offset past the end: no items, the total"
    api GET /api/items/ B
    t_is "$(jf "([i['id'] for i in j['items']], j['total'])")" "([$idb], 1)" "$lk: B sees only B's item"
    api GET /api/items/ U
    t_is "$H_STATUS:$(jf "(j['items'], j['total'])")" "200:([], 0)" "$lk: a user with no items: an empty list"
    for bad in "limit=0:greater_than_equal" "limit=101:less_than_equal" "limit=x:int_parsing" \
        "offset=-1:greater_than_equal" "limit=99999999999999999999:int_parsing"; do
        api GET "/api/items/?${bad%%:*}" A
        t_is "$H_STATUS:$(jf "[(e['type'], e['loc'][1]) for e in j['detail']]")" \
            "422:[('${bad#*:}', '${bad%%=*}')]" "$lk: ${bad%%:*}: 422 ${bad#*:}"
    done
    api GET "/api/items/?limit=100" A
    t_is "$H_STATUS" 200 "$lk: limit=100 (the maximum) is fine"

    # Read one: the owner or an admin; anyone else sees nothing.
    api GET "/api/items/$id1" A
    t_is "$H_STATUS:$(jf "j['name']")" "200:first" "$lk: the owner reads the item"
    api GET "/api/items/$id1" B
    t_is "$H_STATUS:$H_BODY" '404:{"detail":"Item not found"}' "$lk: another user gets 404"
    api GET "/api/items/$id1" ADM
    t_is "$H_STATUS:$(jf "j['owner_id']")" "200:${SUB[A]}" "$lk: an admin reads anyone's item"
    api GET "/api/items/999999" A
    t_is "$H_STATUS" 404 "$lk: a missing item: 404"

    # Change: the owner (writer); an admin sees but may not change.
    api PATCH "/api/items/$id1" A '{"name": "renamed"}'
    t_is "$H_STATUS:$(jf "(j['name'], j['description'])")" "200:('renamed', 'the first item')" \
        "$lk: the owner renames the item (description kept)" || t_diag "$H_BODY"
    t_is "$(jf "j['updated_at'] > j['created_at']")" True "$lk: ... updated_at moves, created_at stays"
    api PATCH "/api/items/$id1" A '{"description": null}'
    t_is "$H_STATUS:$(jf "(j['name'], j['description'])")" "200:('renamed', None)" "$lk: description set to null"
    api PATCH "/api/items/$id1" A '{}'
    t_is "$H_STATUS:$(jf "j['name']")" "200:renamed" "$lk: an empty change changes nothing"
    api PATCH "/api/items/$id1" A '{"name": "second"}'
    t_is "$H_STATUS:$(jf "j['detail'][0]['field_name']")" "409:name" "$lk: renaming onto a sibling's name: 409 naming the field"
    api GET "/api/items/$id1" A
    t_is "$(jf "j['name']")" renamed "$lk: ... and nothing changed"
    api PATCH "/api/items/$id1" A '{"name": null}'
    t_is "$H_STATUS:$(jf "[(e['type'], e['loc']) for e in j['detail']]")" "422:[('string_type', ['body', 'name'])]" \
        "$lk: a null name: 422"
    api PATCH "/api/items/$id1" B '{"name": "stolen"}'
    t_is "$H_STATUS" 404 "$lk: another writer: 404"
    api PATCH "/api/items/$id1" ADM '{"name": "admin"}'
    t_is "$H_STATUS:$H_BODY" '403:{"detail":"Not enough permissions"}' "$lk: an admin who is not the owner: 403"
    api PATCH "/api/items/$id1" R '{"name": "reader"}'
    t_is "$H_STATUS" 403 "$lk: a reader: 403 (role)"
    api PATCH "/api/items/424242" A '{"name": "ghost"}'
    t_is "$H_STATUS" 404 "$lk: a missing item: 404"

    # Delete: admins only.
    api DELETE "/api/items/$idb/admin" A
    t_is "$H_STATUS" 403 "$lk: a writer may not delete (403)"
    api DELETE "/api/items/$idb/admin" ADM
    t_is "$H_STATUS:$H_BODY" "200:{\"deleted\":$idb,\"by\":\"adm@example.com\"}" "$lk: an admin deletes an item"
    api DELETE "/api/items/$idb/admin" ADM
    t_is "$H_STATUS" 404 "$lk: deleting it again: 404"
    api GET "/api/items/$idb" B
    t_is "$H_STATUS" 404 "$lk: the deleted item is gone"
    api DELETE "/api/items/x/admin" ADM
    t_is "$H_STATUS" 422 "$lk: a non-integer id: 422"

    # The seed's other routes still answer.
    api GET /api/profile A
    t_is "$H_STATUS:$(jf "j['id']")" "200:${SUB[A]}" "$lk: GET /api/profile"
    api GET /api/items/info ""
    t_is "$H_STATUS" 200 "$lk: GET /api/items/info (public)"
}

# ------------------------------------------------------------- restart under load
# load FILE SECONDS: sequential requests (a read of ID_READ, then a create
# named RUN-n), one line each: START_MS END_MS METHOD STATUS NAME
load() {
    local f=$1 until=$(( $(m8_now_ms) + $2 * 1000 )) n=0 t0 st
    : >"$f"
    while [ "$(m8_now_ms)" -lt "$until" ]; do
        n=$((n + 1))
        t0=$(m8_now_ms)
        st=$("$CURL" -s -o /dev/null -w '%{http_code}' --max-time 20 \
            -H "Authorization: Bearer ${TOKEN[A]}" "$BASE/api/items/$ID_READ") || st=000
        printf '%s %s GET %s -\n' "$t0" "$(m8_now_ms)" "$st" >>"$f"
        t0=$(m8_now_ms)
        st=$("$CURL" -s -o /dev/null -w '%{http_code}' --max-time 20 \
            -H "Authorization: Bearer ${TOKEN[A]}" -H 'Content-Type: application/json' \
            --data-binary "{\"name\": \"$RUN-$n\"}" "$BASE/api/items/") || st=000
        printf '%s %s POST %s %s\n' "$t0" "$(m8_now_ms)" "$st" "$RUN-$n" >>"$f"
    done
}

restart() { # KIND
    local kind=$1 lk=${1,,} d=$T_DIR/db-${1,,} f=$T_DIR/load-${1,,}.txt before after t_down t_up
    local start=m8_pg_start stop=m8_pg_stop
    [ "$kind" = Mysql ] && start=m8_mariadb_start stop=m8_mariadb_stop
    BASE=${WEB[$kind]}
    RUN=load-$lk
    api POST /api/items/ A '{"name": "kept"}'
    ID_READ=$(jf "j['id']")
    before=$(db_sql $kind "SELECT id, name FROM ${PREFIX}_items ORDER BY id" | tr '\t' '|')
    load "$f" 9 &
    local lpid=$!
    M8_PIDS+=("$lpid")
    sleep 2
    t_down=$(m8_now_ms)
    $stop "$d"
    t_ok $? "$lk: the server stops (fast shutdown) under load"
    api GET "/api/items/$ID_READ" A
    t_is "$H_STATUS:$H_BODY" '503:{"detail":"Database unavailable."}' "$lk: a request during the outage: 503"
    t_is "$(m8_hdr Retry-After)" 1 "$lk: ... with Retry-After: 1"
    m8_http GET "$BASE/api/health/" -H "X-Internal-Token: $CRED"
    t_is "$H_STATUS:$(jf "(j['checks'][0]['name'], j['checks'][0]['status'])")" "503:('database', 'fail')" \
        "$lk: health during the outage: 503, the database check failed"
    t_unlike "$H_BODY" "$PW" "$lk: ... its error holds no password"
    sleep 2
    $start "$d" "${DBPORT[$kind]}"
    t_ok $? "$lk: the server starts again on the same data"
    t_up=$(m8_now_ms)
    wait "$lpid"
    local total outage hung late lost dup kept slow
    total=$(wc -l <"$f")
    # Requests that started while the server was down (after the stop began).
    outage=$(awk -v a="$t_down" -v b="$t_up" '$1 >= a && $2 <= b' "$f")
    t_ok "$([ -n "$outage" ] && echo 0 || echo 1)" "$lk: requests ran during the outage ($(printf '%s\n' "$outage" | grep -c .) of $total)"
    t_is "$(printf '%s\n' "$outage" | awk '$4 != 503 && $4 != 200 && $4 != 201' | grep -c .)" 0 \
        "$lk: every request during the outage got 503 (or succeeded before the stop took effect)"
    t_ok "$(printf '%s\n' "$outage" | awk '$4 == 503' | grep -q . ; echo $?)" "$lk: ... and requests did get 503"
    slow=$(awk '{d = $2 - $1; if (d > m) m = d} END {print m + 0}' "$f")
    t_ok "$([ "$slow" -lt 11000 ] && echo 0 || echo 1)" "$lk: no request hung past the timeout (slowest ${slow} ms)"
    late=$(awk -v b="$t_up" '$1 >= b + 1000 && $4 != 200 && $4 != 201' "$f")
    t_is "$(printf '%s\n' "$late" | grep -c .)" 0 "$lk: every request from 1 s after the server is back succeeds" ||
        t_diag "$late"
    t_is "$(awk -v b="$t_up" '$1 >= b {print $4; exit}' "$f" | grep -cE '^20[01]$')" 1 \
        "$lk: the first request after the server is back succeeds (no process restart)"
    t_is "$(grep -c ' 409 ' "$f")" 0 "$lk: no create was answered 409 (nothing retried into a duplicate)"
    after=$(db_sql $kind "SELECT id, name FROM ${PREFIX}_items ORDER BY id" | tr '\t' '|')
    lost=$(comm -23 <(printf '%s\n' "$before" | sort) <(printf '%s\n' "$after" | sort))
    t_is "$lost" "" "$lk: nothing written before the outage is lost"
    kept=$(awk '$3 == "POST" && $4 == 201 {print $5}' "$f" | sort)
    t_is "$(comm -23 <(printf '%s\n' "$kept") <(db_sql $kind "SELECT name FROM ${PREFIX}_items WHERE name LIKE '$RUN-%'" | sort) | grep -c .)" 0 \
        "$lk: every create answered 201 during the run is stored ($(printf '%s\n' "$kept" | grep -c .))"
    dup=$(db_sql $kind "SELECT name FROM ${PREFIX}_items GROUP BY owner_id, name HAVING COUNT(*) > 1")
    t_is "$dup" "" "$lk: nothing is written twice"
    m8_http GET "$BASE/api/health/" -H "X-Internal-Token: $CRED"
    t_is "$H_STATUS:$(jf "j['checks'][0]['status']")" "200:ok" "$lk: health is ok again"
}

for kind in "${KINDS[@]}"; do
    lk=${kind,,}
    d=$T_DIR/db-$lk
    if [ $kind = Mysql ]; then m8_mariadb_start "$d" "${DBPORT[$kind]}"; else m8_pg_start "$d" "${DBPORT[$kind]}"; fi ||
        { t_report 1 "$lk: the $kind server starts"; continue; }
    m8_db_create $kind "$d" "${DBPORT[$kind]}" $DBNAME $DBUSER "$PW" ||
        { t_report 1 "$lk: the application's database and user"; continue; }
    m8_write_env "$T_DIR/$lk.env" SELECTED_DB=$kind DB_HOST=127.0.0.1 "DB_PORT=${DBPORT[$kind]}" \
        DB_DATABASE=$DBNAME DB_USER=$DBUSER "DB_PASSWORD=$PW" TABLES_PREFIX=$PREFIX \
        "HEALTH_DETAIL_CREDENTIAL=$CRED"
    (cd "$T_DIR" && m8_clean_exec -- "$D" --listen "unix:$T_DIR/$lk.sock" --env-file "$T_DIR/$lk.env" \
        --workers 2 --threads 2 --db-wait-tries 20 --db-wait-interval 0.5 -- "$EX") \
        </dev/null >"$T_DIR/$lk.out" 2>"$T_DIR/$lk.log" &
    DPID[$kind]=$!
    M8_PIDS+=("$!")
    ready() { m8_http GET "${WEB[$1]}/api/health/"; [ "$H_STATUS" = 200 ]; }
    if ! m8_wait_for 30 ready $kind; then
        t_report 1 "$lk: the item service is ready under fcgim8d"
        t_diag "$(tail -n 20 "$T_DIR/$lk.log")"
        continue
    fi
    t_report 0 "$lk: the item service is ready under fcgim8d (2 workers x 2 threads)"
    matrix $kind
    restart $kind
    kill -TERM "${DPID[$kind]}"
    m8_wait_exit "${DPID[$kind]}" 20
    t_is "$M8_RC" 0 "$lk: fcgim8d drains and stops (0)"
    t_unlike "$(cat "$T_DIR/$lk.log" "$T_DIR/$lk.out")" "$PW" "$lk: no log line contains the database password"
    if [ $kind = Mysql ]; then m8_mariadb_stop "$d"; else m8_pg_stop "$d"; fi
done

t_done
