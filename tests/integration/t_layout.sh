#!/bin/bash
# t_layout.sh - the layout rules of doc/design.md hold on the source tree
# (tools/layout.sh: include cycles, upward includes, client libraries in their
# module, pure parsers, file sizes, clang-format, citations of documents
# outside the repository), and the checker finds each
# violation it must on a planted tree.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
m8_init t_layout

checker=$top_srcdir/tools/layout.sh

# --- the checker on a planted tree
fake=$T_DIR/tree
mkdir -p "$fake/lib/a" "$fake/lib/b" "$fake/lib/c" "$fake/lib/net" "$fake/lib/app" \
    "$fake/lib/config" "$fake/lib/core" "$fake/src" "$fake/tests/unit" "$fake/examples"
# a/x -> b/y -> c/z -> a/x, through a .c and two headers; a/w_int.h is
# module a/w's own internal header, so a/w <-> a/w_int is no cycle.
printf '#include "b/y.h"\n' >"$fake/lib/a/x.c"
printf '#include "c/z.h"\n' >"$fake/lib/b/y.h"
printf '#include "a/x.h"\n' >"$fake/lib/c/z.h"
printf '/* x */\n' >"$fake/lib/a/x.h"
printf '#include "a/w_int.h"\n' >"$fake/lib/a/w.c"
printf '#include "a/w.h"\n' >"$fake/lib/a/w_int.h"
printf '/* w */\n' >"$fake/lib/a/w.h"
# upward includes
printf '#include "../../src/tool.h"\n#include "testenv.h"\n#include "tests/unit/tap.h"\n' >"$fake/lib/b/up.c"
printf '/* tool */\n' >"$fake/src/tool.h"
printf '/* env */\n' >"$fake/tests/unit/testenv.h"
# client libraries outside their module
printf '#include <curl/curl.h>\n' >"$fake/lib/net/httpc.c"
printf '#include <curl/curl.h>\n#include <fcgiapp.h>\n#include <dlfcn.h>\n' >"$fake/src/gate.c"
printf '#include <dlfcn.h>\n' >"$fake/lib/core/dynlib.c"
printf '#include <fcgiapp.h>\n' >"$fake/lib/app/engine.c"
printf '#include <libpq-fe.h>\n#include <mysql.h>\n' >"$fake/examples/svc.c"
# a pure parser: one direct banned header, one through a lib header
printf '#include <pthread.h>\n#include "core/thread.h"\n' >"$fake/lib/config/dotenv.c"
printf '#include <sys/socket.h>\n' >"$fake/lib/core/thread.h"

out=$("$checker" cycles "$fake")
rc=$?
t_is "$rc:$out" "1:cycle: a/x -> b/y -> c/z -> a/x (lib/a/x.c:1 lib/b/y.h:1 lib/c/z.h:1)" \
    "layout.sh cycles reports an include cycle among lib modules as its path, and no false cycle through NAME_int.h"
rm "$fake/lib/c/z.h"
out=$("$checker" cycles "$fake")
t_is "$?:$out" "0:" "layout.sh cycles passes once the cycle is broken"

out=$("$checker" upward "$fake")
rc=$?
want='lib/b/up.c:1: includes "../../src/tool.h" (outside lib/)
lib/b/up.c:2: includes "testenv.h", found only in src/, tests/ or examples/
lib/b/up.c:3: includes "tests/unit/tap.h"'
t_is "$rc:$out" "1:$want" "layout.sh upward reports lib files that include src/, tests/ or examples/"

out=$("$checker" deps "$fake")
rc=$?
want='examples/svc.c:1: includes <libpq-fe.h> (libpq belongs to lib/db/pg.c only)
examples/svc.c:2: includes <mysql.h> (the MariaDB client belongs to lib/db/mariadb.c only)
src/gate.c:1: includes <curl/curl.h> (libcurl belongs to lib/net/ only)
src/gate.c:2: includes <fcgiapp.h> (libfcgi belongs to lib/app/ only)
src/gate.c:3: includes <dlfcn.h> (dlopen belongs to lib/core/dynlib.c only)'
t_is "$rc:$out" "1:$want" "layout.sh deps reports client-library headers (and dlopen's) outside their module"

out=$("$checker" pure "$fake")
rc=$?
want='lib/config/dotenv.c: includes <pthread.h> (line 1)
lib/config/dotenv.c: includes <sys/socket.h> through lib/core/thread.h (lib/core/thread.h:1)'
t_is "$rc:$(printf '%s\n' "$out" | grep '^lib/config/dotenv.c:')" "1:$want" \
    "layout.sh pure reports banned headers in a pure parser, directly and through a lib header"
t_like "$out" 'lib/http/router.c: listed as a pure parser but missing' \
    "layout.sh pure reports a listed pure parser that is missing"

awk 'BEGIN { for (i = 0; i < 801; i++) print "/* line */" }' >"$fake/lib/a/big.c"
awk 'BEGIN { for (i = 0; i < 800; i++) print "/* line */" }' >"$fake/tests/unit/fits.c"
awk 'BEGIN { for (i = 0; i < 900; i++) print "/* line */" }' >"$fake/tests/unit/table.c"
awk 'BEGIN { for (i = 0; i < 700; i++) print "/* line */" }' >"$fake/tests/unit/split.c"
out=$(M8_LAYOUT_EXCEPTIONS= M8_LAYOUT_EXTRA_EXCEPTIONS='tests/unit/table.c|a table
tests/unit/split.c|was split
tests/unit/gone.c|was removed' "$checker" size "$fake")
rc=$?
want='lib/a/big.c: 801 lines (more than 800)
tests/unit/gone.c: listed as an exception but missing
tests/unit/split.c: listed as an exception but has 700 lines'
t_is "$rc:$(printf '%s\n' "$out" | LC_ALL=C sort)" "1:$want" \
    "layout.sh size reports a C file over 800 lines (800 is fine, a listed exception is) and stale exceptions"

if command -v clang-format >/dev/null 2>&1; then
    cp "$top_srcdir/.clang-format" "$fake/"
    printf 'int f(void)\n{\n    return 0;\n}\n' >"$fake/src/good.c"
    mkdir -p "$fake/bench"
    printf 'int   g( void ) { return 1 ; }\n' >"$fake/bench/bad.c"
    out=$("$checker" format "$fake")
    rc=$?
    t_like "$rc:$out" '^1:bench/bad.c: differs from clang-format' \
        "layout.sh format reports a file that clang-format would change"
    t_unlike "$out" 'src/good.c' "layout.sh format accepts a formatted file"
else
    t_skip "layout.sh format reports a file that clang-format would change" "clang-format is not installed"
    t_skip "layout.sh format accepts a formatted file" "clang-format is not installed"
fi

# citations: the working notes' names and section forms are built from
# pieces here, so that this file itself cites nothing.
cites=$T_DIR/cites
mkdir -p "$cites/lib/a" "$cites/src" "$cites/tests/unit" "$cites/tests/fuzz/corpus/x" "$cites/doc" \
    "$cites/scripts" "$cites/contrib" "$cites/bench" "$cites/examples"
C=CONTR'ACT' P=PIT'FALLS' I=ISS'UER' DS=DES'IGN' S=STY'LE' T=TEST'ING' D=D L_A=A L_B=B
a54=$(printf '%s %s.%s' "$L_A" 5 4) b18=$(printf '%s %s.%s' "$L_B" 1 8) b4=$(printf '%s %s' "$L_B" 4)
partA=$(printf '%s %s' Part 'A') sec=$(printf '(%s %s.%s)' section 1 4) step=$(printf '%s.%s %s 10' 1 3 step)
printf '/* the answer of %s %s */\nint x; /* CONTRACT_VERSION, TOKEN_ISSUER */\n' "$C" "$b4" >"$cites/lib/a/a.c"
printf '/* CORS (%s) */\n' "$a54" >"$cites/src/b.c"
printf 'ok(1, "403 (%s6)");\nok(1, "0x%s1 and %s600 are no decisions");\n' "$D" "$D" "$D" >"$cites/tests/unit/t.c"
printf '%s.md\n' "$C" >"$cites/tests/fuzz/corpus/x/seed"
printf '.B 0\n.%s %s.%s\na \\fB 1.0\\fR run\nsee %s row 5\n' "$L_B" 1 5 "$P" >"$cites/doc/x.8"
printf 'see %s.md and %s 4\n%s.md, %s.md\n' "$DS" "$S" "$T" "$I" >"$cites/README.md"
printf '%s=x\necho "$%s" "${%s}" TOKEN_%s\nA 1 MB\n' "$I" "$I" "$I" "$I" >"$cites/scripts/s.sh"
printf '# Decisions %s1-%s5\n' "$D" "$D" >"$cites/Makefile.am"
printf 'dnl %s\n' "$sec" >"$cites/configure.ac"
printf '# the check of %s\n' "$step" >"$cites/contrib/c.conf"
printf '/* %s */\n' "$partA" >"$cites/bench/b.c"
printf '/* (%s, 1.9) */\n' "$b18" >"$cites/examples/e.c"
out=$("$checker" citations "$cites")
rc=$?
want="Makefile.am:1:# Decisions ${D}1-${D}5
README.md:1:see $DS.md and $S 4
README.md:2:$T.md, $I.md
bench/b.c:1:/* $partA */
configure.ac:1:dnl $sec
contrib/c.conf:1:# the check of $step
doc/x.8:4:see $P row 5
examples/e.c:1:/* ($b18, 1.9) */
lib/a/a.c:1:/* the answer of $C $b4 */
src/b.c:1:/* CORS ($a54) */
tests/unit/t.c:1:ok(1, \"403 (${D}6)\");"
t_is "$rc:$out" "1:$want" \
    "layout.sh citations reports citations of the working notes and their section forms, not setting names, shell variables, roff, sizes or corpus files"
rm -rf "$cites"
mkdir -p "$cites/lib" && printf '/* see doc/wire.md#jwks */\n' >"$cites/lib/ok.c"
out=$("$checker" citations "$cites")
t_is "$?:$out" "0:" "layout.sh citations passes a tree that cites doc/ pages"

# --- the real tree, one line a rule
rule() { # RULE NAME
    out=$("$checker" "$1" "$top_srcdir" 2>&1)
    rc=$?
    if [ "$rc" = 3 ]; then
        t_skip "$2" "$out"
        return
    fi
    t_ok "$rc" "$2" "$out"
}
rule cycles "no include cycle among lib/ modules"
rule upward "lib/ never includes src/, tests/ or examples/"
rule deps "libcurl only in lib/net/, the MariaDB client only in lib/db/mariadb.c, libpq only in lib/db/pg.c, libfcgi only in lib/app/, dlopen only in lib/core/dynlib.c"
rule pure "the pure parsers include no client library, <sys/socket.h> or <pthread.h>"
rule size "no C file under lib src tests examples bench has more than 800 lines (exceptions listed in tools/layout.sh)"
rule format "every C file under lib src tests examples bench is clang-formatted (.clang-format)"
rule citations "no file cites a document outside the repository (the working notes or their section forms); the code cites doc/ and the man pages"

t_done
