# bench/e2e-more.sh - the optional sections of bench/e2e.sh (sourced by it,
# never run alone): they reuse its nginx, its run() rows and its helpers.
# See bench/README.md.  Each section is skipped, with the reason printed,
# when what it needs is missing:
#   stateful  (issue 5) TOKEN_MODE=stateful RS256 GET /api/items/ through the
#             pool against the test issuer (tests/tools/issuer.py), with the
#             revocation cache on (REVOCATION_CACHE_TTL_SECONDS=300) and off
#             (0: one jti-status call per request); needs /usr/bin/python3
#             with python3-jwt and python3-cryptography
#   db        (issue 6) GET /api/items/{item_id} (RS256 writer token, the
#             owner) through the pool on a real PostgreSQL and MariaDB
#             (tests/integration/lib.sh), next to `pgbench -S -c 8 -j 2` and a
#             mysqlslap point select on the same servers; needs the servers,
#             pgbench / mysqlslap and a build with the backend
#   gate      (issue 7) a static file through nginx without the gate vs with
#             auth_request to fcgim8-gate (contrib/nginx/gate-site.conf, RS256)
# M8_BENCH_MORE: "stateful db gate" (default) or any subset; "" runs none.
# shellcheck shell=bash disable=SC2154,SC2034  # globals of bench/e2e.sh

MORE_SECTIONS=${M8_BENCH_MORE-stateful db gate}
MORE_SKIPS=()     # "section: reason" lines, printed with the report
MORE_LINES=()     # the sections' result lines, printed with the report
MORE_DB_LINES=()
declare -A MORE_STAT_PORT=() # status ports of the extra pools (18350-18399)
MORE_PY=/usr/bin/python3
MORE_PW='Db-Bench-Pass-1234!x'

more_want() { [[ " $MORE_SECTIONS " == *" $1 "* ]]; }
more_skip() { MORE_SKIPS+=("$1: skipped: $2"); echo "bench/e2e-more.sh: $1: skipped: $2" >&2; }
more_unwrap() { # BIN: the program behind a libtool wrapper, else BIN
    local b=$1 d n
    d=$(dirname "$b") n=$(basename "$b")
    if head -c 2 "$b" | grep -q '^#!' && grep -q libtool "$b"; then
        [ -x "$d/.libs/lt-$n" ] && { echo "$d/.libs/lt-$n"; return; }
        echo "$d/.libs/$n"
        return
    fi
    echo "$b"
}
more_pool() { # NAME ENVFILE [VAR=VALUE...]: fcgim8d sized like the main pool on $T_DIR/NAME.sock
    local name=$1 envf=$2
    shift 2
    m8_pick_port 18350 18399 || die "no free port in 18350-18399"
    MORE_STAT_PORT[$name]=$M8_PORT
    (cd "$T_DIR" && m8_clean_exec "${SVC_VARS[@]}" "$@" -- "$D" --listen "unix:$T_DIR/$name.sock" \
        --env-file "$envf" "${POOL_ARGS[@]}" --db-wait-tries 20 \
        --db-wait-interval 0.5 --status-listen "127.0.0.1:$M8_PORT" -- "$SVC") \
        </dev/null >"$T_DIR/$name.out" 2>"$T_DIR/$name.log" &
    M8_PIDS+=("$!")
}
more_ready() { # NAME PORT: the pool answers 200 on /api/health/ through nginx (30 s)
    # The socket first: nginx logs every 502 before it exists.
    m8_wait_sock "$T_DIR/$1.sock" 30 && m8_wait_for 30 health_200 "$2" && return 0
    tail -n 10 "$T_DIR/$1.log" >&2
    return 1
}
more_pids() { # NAME: the daemon and the workers of an extra pool -> MORE_PIDS
    local st
    st=$("$CURL" -s -m 5 "http://127.0.0.1:${MORE_STAT_PORT[$1]}/status") || return 1
    # shellcheck disable=SC2207
    MORE_PIDS=($(printf '%s' "$st" | sed -n 's/.*"supervisor_pid":\([0-9]*\).*/\1/p')
        $(printf '%s' "$st" | grep -o '"pid":[0-9]*' | cut -d: -f2))
}
more_row() { # LABEL RPS NOTE: a row measured by another client (no latency, no CPU columns)
    R_LABEL+=("$1") R_RPS+=("$2") R_P50+=(-) R_P99+=(-) R_CPU+=(-) R_OTHER+=(-) R_NOTE+=("$3")
    R_SC+=(-) R_SCTOP+=("") R_REQS+=(0)
}
more_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
more_verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r != "n/a" && r >= t) ? "met" : "MISSED" }'; }
# Rows whose service leans on another process of this benchmark (the issuer,
# a database server): that process is counted with nginx in run()'s "other"
# accounting (NGINX_PIDS there only means "ours, not other"), so "other"
# still means the rest of the machine.
more_with_helpers() { # PID... -- CMD...: CMD with the PIDs counted as ours
    local -a saved=("${NGINX_PIDS[@]}")
    while [ "$1" != -- ]; do NGINX_PIDS+=("$1"); shift; done
    shift
    "$@"
    NGINX_PIDS=("${saved[@]}")
}

# ------------------------------------------------------------------ before nginx starts: sites
more_sites() {
    MORE_ST=0 MORE_PG=0 MORE_MY=0 MORE_GATE=0
    local bk
    if more_want stateful; then
        if ! "$MORE_PY" -c 'import jwt, cryptography' 2>/dev/null; then
            more_skip stateful "$MORE_PY with python3-jwt and python3-cryptography is not installed"
        elif [ ! -f "$top_srcdir/tests/tools/issuer.py" ]; then
            more_skip stateful "no tests/tools/issuer.py"
        else
            MORE_ST=1
            site stc "$T_DIR/stc.sock" && port_stc=$M8_PORT
            site sto "$T_DIR/sto.sock" && port_sto=$M8_PORT
        fi
    fi
    if more_want db; then
        bk=$("$BIN_PRESTART" --version 2>&1)
        if [[ $bk != *" postgres"* ]]; then more_skip "db postgres" "built without PostgreSQL"
        elif ! m8_have_pg; then more_skip "db postgres" "postgresql is not installed"
        elif [ ! -x "$(m8_pg_bindir)/pgbench" ] && ! m8_find_prog pgbench >/dev/null; then
            more_skip "db postgres" "pgbench is not installed"
        else
            MORE_PG=1
            site dbpg "$T_DIR/dbpg.sock" && port_dbpg=$M8_PORT
        fi
        MORE_SLAP=$(m8_find_prog mariadb-slap || m8_find_prog mysqlslap)
        if [[ $bk != *" mysql"* ]]; then more_skip "db mariadb" "built without MariaDB"
        elif ! m8_have_mariadb; then more_skip "db mariadb" "mariadb-server is not installed"
        elif [ -z "$MORE_SLAP" ]; then more_skip "db mariadb" "mysqlslap is not installed"
        else
            MORE_MY=1
            site dbmy "$T_DIR/dbmy.sock" && port_dbmy=$M8_PORT
        fi
    fi
    if more_want gate; then
        if [ ! -x "$BIN_GATE" ]; then
            more_skip gate "fcgim8-gate is not built"
        else
            MORE_GATE=1
            local www=$T_DIR/www
            mkdir -p "$www/static" && head -c 1024 /dev/zero | tr '\0' x >"$www/static/file.txt" &&
                chmod -R a+rX "$www" || die "cannot write $www"
            m8_pick_port 18300 18349 || die "no free port in 18300-18349"
            port_gate=$M8_PORT
            m8_nginx_site "$T_DIR/ngx" gate gate-site.conf NAME=bgate LISTEN="127.0.0.1:$port_gate" \
                SERVER_NAME=localhost ROOT="$www" GATE_SOCKET="$T_DIR/gate.sock" \
                PHP_SOCKET="$T_DIR/no-php.sock" || die "cannot render contrib/nginx/gate-site.conf"
            m8_pick_port 18300 18349 || die "no free port in 18300-18349"
            port_static=$M8_PORT
            cat >"$T_DIR/ngx/sites/static.conf" <<CONF
server {
    listen 127.0.0.1:$port_static;
    server_name localhost;
    root $www;
    location / { try_files \$uri \$uri/ =404; }
}
CONF
        fi
    fi
}

# ------------------------------------------------------------------ after the main rows
more_stateful() {
    local id=$T_DIR/issuer ipid intro ctl tok
    say "stateful: the test issuer and two pools"
    mkdir -p "$id"
    "$MORE_PY" "$top_srcdir/tests/tools/issuer.py" serve "$id" --port 0 --heartbeat 1 \
        --client 'consumer-1=Test-Private-Api-Secret-0123456789abcdef!' </dev/null \
        >"$T_DIR/issuer.out" 2>&1 &
    ipid=$!
    M8_PIDS+=("$ipid")
    m8_wait_for 20 test -s "$id/port" ||
        { more_skip stateful "the test issuer did not start: $(tail -n 3 "$T_DIR/issuer.out")"; return; }
    url() { "$MORE_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$id/urls.json" "$1"; }
    intro=$(url introspection) ctl=$(url control)
    local -a st=(ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY ACCESS_PUBLIC_KEY_FILE="$id/access_key.pub"
        TOKEN_ISSUER=https://auth.example.com TOKEN_AUDIENCE=item-service
        TOKEN_MODE=stateful INTROSPECTION_URL="$intro"
        'PRIVATE_API_SECRET=Test-Private-Api-Secret-0123456789abcdef!')
    m8_write_env "$T_DIR/stc.env" "${st[@]}" REVOCATION_CACHE_TTL_SECONDS=300
    m8_write_env "$T_DIR/sto.env" "${st[@]}" REVOCATION_CACHE_TTL_SECONDS=0
    more_pool stc "$T_DIR/stc.env"
    more_pool sto "$T_DIR/sto.env"
    tok=$("$CURL" -s -m 10 -X POST -H 'Content-Type: application/json' -d '{}' \
        "$ctl/mint?raw=1")
    [ -n "$tok" ] || { more_skip stateful "the issuer minted no token"; return; }
    more_ready stc "$port_stc" && more_ready sto "$port_sto" ||
        { more_skip stateful "a stateful pool is not ready"; return; }
    local -a auth=(-H "Authorization: Bearer $tok")
    local c
    c=$("$CURL" -s -o /dev/null -w '%{http_code}' "${auth[@]}" "http://127.0.0.1:$port_stc/api/items/")
    [ "$c" = 200 ] || { more_skip stateful "the stateful pool answers $c to the issuer's token"; return; }
    "$WRK" -t1 -c4 -d1s "${auth[@]}" "http://127.0.0.1:$port_stc/api/items/" >/dev/null 2>&1
    "$WRK" -t1 -c4 -d1s "${auth[@]}" "http://127.0.0.1:$port_sto/api/items/" >/dev/null 2>&1
    more_pids stc && ROW_PIDS=("${MORE_PIDS[@]}") ROW_DAEMON=${MORE_PIDS[0]}
    i_stc=${#R_LABEL[@]}
    more_with_helpers "$ipid" -- run "/api/items/ stateful cache 300s" \
        "http://127.0.0.1:$port_stc/api/items/" "${auth[@]}"
    local n0 n1
    n0=$("$CURL" -s -m 5 "$ctl/stats/introspection" 2>/dev/null)
    more_pids sto && ROW_PIDS=("${MORE_PIDS[@]}") ROW_DAEMON=${MORE_PIDS[0]}
    i_sto=${#R_LABEL[@]}
    # The issuer's CPU goes with the service's here: svc_us is the pool plus the issuer.
    ROW_PIDS+=("$ipid")
    run "/api/items/ stateful cache off" "http://127.0.0.1:$port_sto/api/items/" "${auth[@]}"
    n1=$("$CURL" -s -m 5 "$ctl/stats/introspection" 2>/dev/null)
    MORE_ST_CALLS=$(( ${n1:-0} - ${n0:-0} ))
    MORE_ST_DONE=1
}

more_db_one() { # Mysql|Postgres
    local kind=$1 lk d port web dbport item c
    if [ "$kind" = Postgres ]; then lk=pg port=$port_dbpg; else lk=my port=$port_dbmy; fi
    d=$T_DIR/db-$lk web=http://127.0.0.1:$port
    say "db $lk: starting the $kind server"
    m8_pick_port 18350 18399 || die "no free port in 18350-18399"
    dbport=$M8_PORT
    if [ "$kind" = Postgres ]; then m8_pg_start "$d" "$dbport"; else m8_mariadb_start "$d" "$dbport"; fi ||
        { more_skip "db $lk" "the $kind server does not start"; return; }
    m8_db_create "$kind" "$d" "$dbport" items_db items_user "$MORE_PW" ||
        { more_skip "db $lk" "cannot create the database"; return; }
    m8_write_env "$T_DIR/db$lk.env" ACCESS_TOKEN_ALGORITHM=RS256 -ACCESS_SECRET_KEY \
        ACCESS_PUBLIC_KEY_FILE="$T_DIR/rsa.pub" SELECTED_DB="$kind" DB_HOST=127.0.0.1 \
        "DB_PORT=$dbport" DB_DATABASE=items_db DB_USER=items_user "DB_PASSWORD=$MORE_PW" \
        TABLES_PREFIX=bench
    more_pool "db$lk" "$T_DIR/db$lk.env"
    more_ready "db$lk" "$port" || { more_skip "db $lk" "the item service is not ready"; return; }
    local -a auth=(-H "Authorization: Bearer $WTOKEN")
    item=$("$CURL" -s -m 10 "${auth[@]}" -H 'Content-Type: application/json' \
        --data-binary '{"name": "bench", "description": "the benchmark item"}' "$web/api/items/" |
        sed -n 's/.*"id": *\([0-9][0-9]*\).*/\1/p')
    c=$("$CURL" -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$web/api/items/$item")
    [ -n "$item" ] && [ "$c" = 200 ] || { more_skip "db $lk" "cannot create and read an item ($c)"; return; }
    "$WRK" -t1 -c4 -d1s "${auth[@]}" "$web/api/items/$item" >/dev/null 2>&1
    # The database server (and its backends) count as ours, not as "other".
    local -a dbp=("${M8_DB_PID[$d]}")
    # shellcheck disable=SC2207
    dbp+=($(pgrep -P "${M8_DB_PID[$d]}"))
    more_pids "db$lk" && ROW_PIDS=("${MORE_PIDS[@]}") ROW_DAEMON=${MORE_PIDS[0]}
    local i=${#R_LABEL[@]}
    more_with_helpers "${dbp[@]}" -- run "/api/items/{id} $lk, $pl" "$web/api/items/$item" "${auth[@]}"
    local rate note out
    say "db $lk: the server's own point selects"
    if [ "$kind" = Postgres ]; then
        local pgb
        pgb=$(m8_pg_bindir)/pgbench
        [ -x "$pgb" ] || pgb=$(m8_find_prog pgbench)
        PGPASSWORD=$MORE_PW "$pgb" -h 127.0.0.1 -p "$dbport" -U items_user -i -q items_db \
            >"$T_DIR/pgbench-i.out" 2>&1 || { more_skip "db pg" "pgbench -i failed"; return; }
        out=$(PGPASSWORD=$MORE_PW "$pgb" -h 127.0.0.1 -p "$dbport" -U items_user -S -c 8 -j 2 \
            -T 5 -n items_db 2>&1)
        printf '%s\n' "$out" >"$T_DIR/pgbench.out"
        rate=$(printf '%s\n' "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial.*/\1/p')
        [ -n "$rate" ] || rate=$(printf '%s\n' "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -n 1)
        rate=$(awk -v r="${rate:-0}" 'BEGIN { printf "%.2f", r }')
        note="pgbench -S -c 8 -j 2 -T 5 (TCP, scale 1)"
        more_row "pgbench -S" "${rate:-0}" ""
    else
        # A point select on the item's row, 8 clients over TCP; the count is
        # sized from a short calibration run to last about 5 s.
        local sql="SELECT id, name, description, owner_id, created_at, updated_at FROM bench_items WHERE id = $item"
        slap() { # N: seconds for N queries
            "$MORE_SLAP" --no-defaults -h 127.0.0.1 -P "$dbport" -u items_user "-p$MORE_PW" \
                --create-schema=items_db --no-drop --concurrency=8 --iterations=1 \
                --number-of-queries="$1" --query="$sql" 2>&1 | tee -a "$T_DIR/mysqlslap.out" |
                sed -n 's/.*Average number of seconds to run all queries: *\([0-9.]*\).*/\1/p'
        }
        local t n
        t=$(slap 8000)
        n=$(awk -v t="${t:-0}" 'BEGIN { n = (t > 0) ? int(8000 * 5 / t) : 8000; if (n < 8000) n = 8000; if (n > 2000000) n = 2000000; print n }')
        t=$(slap "$n")
        rate=$(awk -v t="${t:-0}" -v n="$n" 'BEGIN { if (t > 0) printf "%.2f", n / t; else print 0 }')
        note="mysqlslap -c 8, $n point selects in ${t:-?} s (TCP)"
        more_row "mysqlslap point select" "$rate" ""
    fi
    printf -v "MORE_RATIO_$lk" '%s' "$(more_ratio "${R_RPS[$i]}" "$rate")"
    MORE_DB_LINES+=("issue 6 ($kind): /api/items/{item_id} through nginx + $pl / the server's own point select: $(more_ratio "${R_RPS[$i]}" "$rate") (${R_RPS[$i]} / $rate req/s, $note; target >= 0.5: $(more_verdict "$(more_ratio "${R_RPS[$i]}" "$rate")" 0.5))")
}

more_gate() {
    local gbin pol=$T_DIR/gate.policy c
    gbin=$(more_unwrap "$BIN_GATE")
    cat >"$pol" <<'EOF'
static   GET   /static/   user
default                   deny
EOF
    m8_svc_listen gate "$gbin" "unix:$T_DIR/gate.sock" "$T_DIR/bench.env" "${SVC_VARS[@]}" -- \
        --policy "$pol" --threads "$sthreads"
    m8_wait_sock "$T_DIR/gate.sock" 15 || { m8_svc_diag gate; more_skip gate "the gate does not listen"; return; }
    local url=http://127.0.0.1:$port_gate/static/file.txt
    c=$("$CURL" -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$url")
    local c0
    c0=$("$CURL" -s -o /dev/null -w '%{http_code}' "$url")
    [ "$c" = 200 ] && [ "$c0" = 401 ] || { more_skip gate "the gated file answers $c (token) / $c0 (none)"; return; }
    "$WRK" -t1 -c4 -d1s "${AUTH[@]}" "$url" >/dev/null 2>&1
    ROW_PIDS=() ROW_DAEMON=
    i_static=${#R_LABEL[@]}
    run "static 1 KiB, nginx" "http://127.0.0.1:$port_static/static/file.txt" "${AUTH[@]}"
    ROW_PIDS=("${M8_SVC_PID[gate]}")
    i_gated=${#R_LABEL[@]}
    run "static 1 KiB, gate x$sthreads RS256" "$url" "${AUTH[@]}"
    MORE_GATE_DONE=1
}

more_run() {
    WTOKEN=$("$BIN_TOKEN" mint --alg RS256 --key "$T_DIR/rsa.pem" --role writer \
        --exp 3600) || die "fcgim8-token mint failed"
    [ "$MORE_ST" = 1 ] && more_stateful
    [ "$MORE_PG" = 1 ] && more_db_one Postgres
    [ "$MORE_MY" = 1 ] && more_db_one Mysql
    [ "$MORE_GATE" = 1 ] && more_gate
    if [ "${MORE_ST_DONE:-0}" = 1 ]; then
        local r
        r=$(more_ratio "${R_RPS[$i_stc]}" "${R_RPS[$i_pool_items]}")
        MORE_LINES+=("issue 5: stateful (cache 300 s) / stateless /api/items/ RS256, $pl: $r (target >= 0.9: $(more_verdict "$r" 0.9))" \
            "issue 5: cache off (TTL 0): ${R_RPS[$i_sto]} req/s, $(more_ratio "${R_RPS[$i_sto]}" "${R_RPS[$i_pool_items]}") x stateless, p50 ${R_P50[$i_sto]} ms, $MORE_ST_CALLS jti-status calls for $(awk '/ requests in / { print $1 }' "$T_DIR/wrk-$(echo "/api/items/ stateful cache off" | tr -c 'A-Za-z0-9' _).txt") requests (svc_us includes the issuer)")
    fi
    MORE_LINES+=("${MORE_DB_LINES[@]}")
    if [ "${MORE_GATE_DONE:-0}" = 1 ]; then
        local r
        r=$(more_ratio "${R_RPS[$i_gated]}" "${R_RPS[$i_static]}")
        MORE_RATIO_gate=$r
        MORE_LINES+=("issue 7: static file with auth_request to fcgim8-gate / without: $r (target >= 0.4: $(more_verdict "$r" 0.4))")
    fi
}

more_report() {
    local l
    for l in "${MORE_LINES[@]}" "${MORE_SKIPS[@]}"; do echo "$l"; done
}

more_facts() { # "key value" lines for bench/run.sh's targets
    echo "db_pg_ratio ${MORE_RATIO_pg:-}"
    echo "db_my_ratio ${MORE_RATIO_my:-}"
    echo "gate_ratio ${MORE_RATIO_gate:-}"
}
