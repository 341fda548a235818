#!/bin/sh
# shellcheck disable=SC2317  # the rule_* functions are called through run()
# tools/layout.sh RULE [ROOT] - checks the source layout rules of doc/design.md.
#
# ROOT defaults to the source tree.  RULE is one of:
#   cycles   no include cycle among lib/ modules.  A module is a .c/.h pair by
#            basename within its folder (lib/auth/jwt.c + lib/auth/jwt.h is
#            auth/jwt; an internal header NAME_int.h belongs to module NAME
#            when that exists); an edge is an `#include "x/y.h"` line that resolves to
#            a file under lib/ (relative to the including file's folder
#            first, then to lib/).  Prints each cycle as a path of modules,
#            then the include line of each edge.
#   upward   lib/ never includes src/, tests/ or examples/ (a quoted include
#            that leaves lib/ with "../", names one of those folders, or only
#            resolves to a file there).
#   deps     client libraries stay in their module (checked in lib, src,
#            examples): <curl/...> only in lib/net/; <mysql.h>, <mysql/...>,
#            <mariadb/...> only in lib/db/mariadb.c; <libpq-fe.h> only in
#            lib/db/pg.c; <fcgiapp.h>, <fcgi_stdio.h>, <fcgios.h>,
#            <fcgi_config.h> only in lib/app/; <dlfcn.h> (dlopen) only in
#            lib/core/dynlib.c, which loads libcurl and the database client
#            libraries on first use (doc/design.md#libraries-loaded-on-first-use).
#   pure     the pure parsers (PURE below: the files the fuzzers in
#            tests/fuzz/ drive that do no I/O) include none of the headers
#            of "deps", nor <sys/socket.h> or <pthread.h>, also not through
#            a lib/ header they include.
#   size     no C file (.c or .h under lib src tests examples bench) has more
#            than MAX_LINES lines, except those in EXCEPTIONS (each with its
#            reason); an exception that no longer applies is reported too.
#   format   `clang-format --dry-run -Werror` (with ROOT/.clang-format) passes
#            on every C file under lib src tests examples bench.  Prints each
#            file that differs.  Exit 3 when clang-format is not installed.
#   citations  no file under lib src tests examples contrib scripts bench doc,
#            nor Makefile.am, configure.ac or README.md, cites a document
#            that is not in the repository: the working notes CONTRACT,
#            DESIGN, PITFALLS, STYLE, TESTING, ISSUER (with or without .md)
#            or their bare section forms ("A 5.4", "Part B", "(B 4)", "D6",
#            "Decisions D1-D5", "(section 1.4)", "1.3 step 10").  Cite
#            doc/*.md#anchor or a man page instead.  Setting names such as
#            CONTRACT_VERSION or TOKEN_ISSUER, program names (fcgim8-issuer,
#            FCGIM8-ISSUER), shell variables ($ISSUER,
#            ISSUER=), roff requests (.B 0) and sizes ("A 1 MB") are not
#            citations.  Files under a corpus/ folder and binary files are
#            skipped.
#   all      every rule above, each under a "== RULE" line.
# Prints one line a violation; exits 0 when there is none, 1 when there is
# any, 2 on a usage error, 3 when a rule cannot be checked here.
set -u

MAX_LINES=800

# PATH|REASON, one a line: files allowed over MAX_LINES, each with why it
# cannot be split.  Keep this list short.
# M8_LAYOUT_EXCEPTIONS replaces this list and M8_LAYOUT_EXTRA_EXCEPTIONS adds
# lines of the same form (the checker's own test uses them on a planted tree).
EXCEPTIONS=${M8_LAYOUT_EXCEPTIONS-'
'}
EXCEPTIONS="$EXCEPTIONS
${M8_LAYOUT_EXTRA_EXCEPTIONS:-}"

# The pure parsers: bytes in, structures out, no I/O, no threads.  The
# fuzzers (tests/fuzz/fuzz_*.c) drive each of them (core/json.c through the
# JSON body and JWKS parsers).  lib/auth/jwt.c and
# lib/auth/jwks.c are fuzzed too but are not pure: jwt.c keeps per-thread
# scratch buffers, jwks.c fetches key sets over HTTP.
PURE='
lib/config/dotenv.c
lib/http/fcgi_proto.c
lib/http/router.c
lib/http/codec.c
lib/http/request.c
lib/stream/sse.c
lib/stream/canon.c
lib/stream/events.c
lib/auth/policy.c
lib/core/b64url.c
lib/core/json.c
lib/issuer/form.c
lib/issuer/form_keys.c
'

usage() {
    echo "usage: tools/layout.sh cycles|upward|deps|pure|size|format|citations|all [ROOT]" >&2
    exit 2
}
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
rule=$1
root=${2:-$(cd "$(dirname "$0")/.." && pwd)}
[ -d "$root" ] || { echo "layout.sh: no such directory: $root" >&2; exit 2; }
cd "$root" || exit 2

# C files below the given folders, as paths relative to ROOT, sorted.
c_files() {
    for d in "$@"; do
        [ -d "$d" ] && find "$d" -type f \( -name '*.c' -o -name '*.h' \)
    done | LC_ALL=C sort
}

# Every include line of the lib/ files, one per line:
#   FILE LINE q|s NAME   (q: "NAME", s: <NAME>)
lib_includes() {
    files=$(c_files lib)
    [ -n "$files" ] || return 0
    # shellcheck disable=SC2086  # the paths have no spaces
    awk '
    /^[ \t]*#[ \t]*include[ \t]*"/ {
        s = $0; sub(/^[^"]*"/, "", s); sub(/".*/, "", s)
        print FILENAME, FNR, "q", s; next
    }
    /^[ \t]*#[ \t]*include[ \t]*</ {
        s = $0; sub(/^[^<]*</, "", s); sub(/>.*/, "", s)
        print FILENAME, FNR, "s", s
    }' $files
}

# Resolves a quoted include of a lib/ file to a path under lib/, or prints
# nothing: relative to the including file's folder, then to lib/.
resolve_awk='
function norm(p,   n, i, a, out, k, st) {
    n = split(p, a, "/"); k = 0
    for (i = 1; i <= n; i++) {
        if (a[i] == "" || a[i] == ".") continue
        if (a[i] == "..") { if (k > 0) k--; else return ""; continue }
        st[++k] = a[i]
    }
    out = ""
    for (i = 1; i <= k; i++) out = out (i > 1 ? "/" : "") st[i]
    return out
}
function dir_of(f) { sub(/\/[^\/]*$/, "", f); return f }
function resolve(file, name,   c) {
    c = norm(dir_of(file) "/" name)
    if (c ~ /^lib\// && (c in exists)) return c
    c = norm("lib/" name)
    if (c ~ /^lib\// && (c in exists)) return c
    return ""
}
function module(f,   m) {
    sub(/^lib\//, "", f); sub(/\.[ch]$/, "", f)
    # NAME_int.h is the internal header of module NAME when NAME exists.
    if (f ~ /_int$/) {
        m = substr(f, 1, length(f) - 4)
        if (("lib/" m ".c") in exists || ("lib/" m ".h") in exists) return m
    }
    return f
}
'

rule_cycles() {
    c_files lib >"$tmp/files"
    lib_includes >"$tmp/inc"
    awk "$resolve_awk"'
    FNR == NR { exists[$0] = 1; next }
    $3 == "q" {
        t = resolve($1, $4)
        if (t == "") next
        a = module($1); b = module(t)
        if (a == b) next
        if (!((a, b) in where)) {
            where[a, b] = $1 ":" $2
            adj[a, ++deg[a]] = b
            nodes[a] = 1; nodes[b] = 1
        }
    }
    function dfs(u,   i, v, k, path, lines) {
        color[u] = 1; stack[++sp] = u; pos[u] = sp
        for (i = 1; i <= deg[u]; i++) {
            v = adj[u, i]
            if (color[v] == 1) {
                path = ""; lines = ""
                for (k = pos[v]; k <= sp; k++) {
                    path = path stack[k] " -> "
                    lines = lines " " where[stack[k], (k < sp ? stack[k + 1] : v)]
                }
                print "cycle: " path v " (" substr(lines, 2) ")"
            } else if (color[v] == 0) {
                dfs(v)
            }
        }
        sp--; color[u] = 2
    }
    END {
        n = 0
        for (x in nodes) order[++n] = x
        # insertion sort: a stable, locale-free order for the report
        for (i = 2; i <= n; i++) {
            x = order[i]
            for (j = i - 1; j >= 1 && order[j] > x; j--) order[j + 1] = order[j]
            order[j + 1] = x
        }
        sp = 0
        for (i = 1; i <= n; i++) if (color[order[i]] == 0) dfs(order[i])
    }' "$tmp/files" "$tmp/inc"
}

rule_upward() {
    c_files lib >"$tmp/files"
    c_files src tests examples >"$tmp/outside"
    lib_includes >"$tmp/inc"
    awk "$resolve_awk"'
    FILENAME == ARGV[1] { exists[$0] = 1; next }
    FILENAME == ARGV[2] { b = $0; sub(/.*\//, "", b); outside[b] = 1; next }
    $3 == "q" {
        n = $4
        if (n ~ /(^|\/)\.\.\// && resolve($1, n) == "") {
            print $1 ":" $2 ": includes \"" n "\" (outside lib/)"; next
        }
        if (n ~ /^(\.\.\/)*(src|tests|examples)\//) {
            print $1 ":" $2 ": includes \"" n "\""; next
        }
        if (resolve($1, n) == "") {
            b = n; sub(/.*\//, "", b)
            if (b in outside) print $1 ":" $2 ": includes \"" n "\", found only in src/, tests/ or examples/"
        }
    }' "$tmp/files" "$tmp/outside" "$tmp/inc"
}

# The client-library headers: NAME-PATTERN;ALLOWED-PATH-PATTERN;LIBRARY;WHERE
deps_table='^curl/;^lib/net/;libcurl;lib/net/
^(mysql\.h|mysql/|mariadb/);^lib/db/mariadb\.c$;the MariaDB client;lib/db/mariadb.c
^libpq-fe\.h$;^lib/db/pg\.c$;libpq;lib/db/pg.c
^(fcgiapp|fcgi_stdio|fcgios|fcgi_config)\.h$;^lib/app/;libfcgi;lib/app/
^dlfcn\.h$;^lib/core/dynlib\.c$;dlopen;lib/core/dynlib.c'

rule_deps() {
    files=$(c_files lib src examples)
    [ -n "$files" ] || return 0
    # shellcheck disable=SC2086
    printf '%s\n' "$deps_table" | awk -F';' '
    FILENAME == "-" { pat[++n] = $1; ok[n] = $2; what[n] = $3; home[n] = $4; next }
    /^[ \t]*#[ \t]*include[ \t]*</ {
        s = $0; sub(/^[^<]*</, "", s); sub(/>.*/, "", s)
        for (i = 1; i <= n; i++)
            if (s ~ pat[i] && FILENAME !~ ok[i])
                printf "%s:%d: includes <%s> (%s belongs to %s only)\n", FILENAME, FNR, s, what[i], home[i]
    }' - $files
}

rule_pure() {
    c_files lib >"$tmp/files"
    lib_includes >"$tmp/inc"
    printf '%s\n' "$PURE" | sed '/^$/d' >"$tmp/pure"
    printf '%s\n' "$deps_table" >"$tmp/deps"
    awk -F';' "$resolve_awk"'
    FILENAME == ARGV[1] { exists[$0] = 1; next }
    FILENAME == ARGV[2] { pat[++np] = $1; next }
    FILENAME == ARGV[3] { pure[++nu] = $0; next }
    {
        split($0, f, " ")
        if (f[3] == "q") { t = resolve(f[1], f[4]); if (t != "") q[f[1], ++nq[f[1]]] = t }
        else { s[f[1], ++ns[f[1]]] = f[4]; sl[f[1], ns[f[1]]] = f[2] }
    }
    function banned(h,   i) {
        if (h == "sys/socket.h" || h == "pthread.h") return 1
        for (i = 1; i <= np; i++) if (h ~ pat[i]) return 1
        return 0
    }
    function walk(p, f, via,   i, t) {
        if ((p, f) in seen) return
        seen[p, f] = 1
        for (i = 1; i <= ns[f]; i++)
            if (banned(s[f, i]))
                printf "%s: includes <%s>%s\n", p, s[f, i],
                       (via == "" ? " (line " sl[f, i] ")" : " through " via " (" f ":" sl[f, i] ")")
        for (i = 1; i <= nq[f]; i++) {
            t = q[f, i]
            walk(p, t, via == "" ? t : via)
        }
    }
    END {
        for (k = 1; k <= nu; k++) {
            if (!(pure[k] in exists)) { print pure[k] ": listed as a pure parser but missing"; continue }
            walk(pure[k], pure[k], "")
        }
    }' "$tmp/files" "$tmp/deps" "$tmp/pure" "$tmp/inc"
}

rule_size() {
    printf '%s\n' "$EXCEPTIONS" | sed '/^$/d' >"$tmp/exc"
    c_files lib src tests examples bench >"$tmp/files"
    while IFS= read -r f; do
        printf '%s %s\n' "$(wc -l <"$f" | tr -d ' ')" "$f"
    done <"$tmp/files" >"$tmp/sizes"
    awk -v max="$MAX_LINES" '
    FILENAME == ARGV[1] { split($0, e, "|"); exc[e[1]] = 1; next }
    { size[$2] = $1; if ($1 > max && !($2 in exc)) printf "%s: %d lines (more than %d)\n", $2, $1, max }
    END {
        for (f in exc) {
            if (!(f in size)) print f ": listed as an exception but missing"
            else if (size[f] <= max) printf "%s: listed as an exception but has %d lines\n", f, size[f]
        }
    }' "$tmp/exc" "$tmp/sizes"
}

rule_format() {
    if ! command -v clang-format >/dev/null 2>&1; then
        echo "clang-format is not installed" >&2
        return 3
    fi
    [ -f .clang-format ] || { echo "no .clang-format in $root" >&2; return 3; }
    c_files lib src tests examples bench | while IFS= read -r f; do
        if ! clang-format --dry-run -Werror --style=file "$f" >/dev/null 2>"$tmp/fmt"; then
            n=$(grep -c 'error:' "$tmp/fmt")
            echo "$f: differs from clang-format ($n reported)"
        fi
    done
}

# One ERE a line: the citation forms of rule_citations (see the top).
citation_patterns='(^|[^A-Za-z0-9_${-])(CONTRACT|DESIGN|PITFALLS|STYLE|TESTING|ISSUER)(\.md)?([^A-Za-z0-9_=}]|$)
(^|[^A-Za-z0-9_.-])(Part )?[AB] [0-9]+(\.[0-9]+)+([^0-9A-Za-z]|$)
(^|[^A-Za-z0-9_])Part [AB]([^A-Za-z0-9_]|$)
\([AB] [0-9]+[),]
(^|[^A-Za-z0-9_\\-])(Decisions? )?D[0-9]{1,2}(-D[0-9]{1,2})?([^A-Za-z0-9_]|$)
\(section [0-9]+\.[0-9]+\)
(^|[^0-9.])[1-9]\.[0-9]+ (step|row)s? [0-9]'

rule_citations() {
    printf '%s\n' "$citation_patterns" >"$tmp/cit"
    {
        for d in lib src tests examples contrib scripts bench doc; do
            [ -d "$d" ] && find "$d" -type f ! -path '*/corpus/*'
        done
        for f in Makefile.am configure.ac README.md; do
            [ -f "$f" ] && echo "$f"
        done
    } | LC_ALL=C sort >"$tmp/files"
    [ -s "$tmp/files" ] || return 0
    # -I: binary files are skipped; /dev/null: always more than one file, so
    # each line is FILE:LINE:text.
    tr '\n' '\0' <"$tmp/files" | LC_ALL=C xargs -0 grep -nIE -f "$tmp/cit" /dev/null
    return 0
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/layout.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

run() { # RULE: prints its violations, returns 0, 1 or 3
    "rule_$1" >"$tmp/out"
    rc=$?
    [ "$rc" = 3 ] && return 3
    if [ -s "$tmp/out" ]; then
        cat "$tmp/out"
        return 1
    fi
    return 0
}

case $rule in
cycles | upward | deps | pure | size | format | citations)
    run "$rule"
    exit $?
    ;;
all)
    worst=0
    for r in cycles upward deps pure size format citations; do
        echo "== $r"
        run "$r"
        rc=$?
        # a violation (1) outweighs a rule that could not run (3)
        if [ "$rc" = 1 ] || { [ "$rc" = 3 ] && [ "$worst" = 0 ]; }; then worst=$rc; fi
    done
    exit "$worst"
    ;;
*) usage ;;
esac
