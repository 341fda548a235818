#!/bin/bash
# t_api.sh - the public API stays source compatible: every declaration and
# name of fcgim8.h 0.1 (tests/integration/api/) is still there, and services
# written against it build with the public header alone (nothing else of lib/
# reachable) and run: the README's 30-line example and examples/item-service.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
m8_init t_api

hdr=$top_srcdir/lib/fcgim8.h
so=$top_builddir/lib/.libs/libfcgim8.so
[ -e "$so" ] || t_skip_all "no shared library was built ($so; configured with --disable-shared?)"
command -v pkg-config >/dev/null 2>&1 || t_skip_all "pkg-config is not installed"

# One declaration a line, whitespace collapsed, comments dropped (the same
# normalisation the golden file was written with).
decls() {
    sed 's#/\*.*\*/##g' "$1" | awk '/M8_EXTERN/ && !/#define/ { buf = ""; f = 1 }
        f { buf = buf " " $0 }
        f && /;/ { gsub(/[ \t]+/, " ", buf); sub(/^ /, "", buf); print buf; f = 0 }'
}
decls "$hdr" | sort -u >"$T_DIR/now.decl"
grep -v '^#' "$top_srcdir/tests/integration/api/fcgim8-0.1.decl" | sort -u >"$T_DIR/old.decl"
t_like "$(wc -l <"$T_DIR/old.decl")" '^[1-9][0-9]*$' "the 0.1 API list has declarations"
gone=$(comm -23 "$T_DIR/old.decl" "$T_DIR/now.decl")
t_is "$gone" "" "every function declaration of fcgim8.h 0.1 is still declared, unchanged"

sed 's#/\*.*\*/##g' "$hdr" | grep -oE '\b(M8_[A-Z0-9_]+|m8_[a-z0-9_]+)\b' | sort -u >"$T_DIR/now.names"
grep -v '^#' "$top_srcdir/tests/integration/api/fcgim8-0.1.names" | sort -u >"$T_DIR/old.names"
gone=$(comm -23 "$T_DIR/old.names" "$T_DIR/now.names")
t_is "$gone" "" "every constant, type and macro name of fcgim8.h 0.1 still exists"

# Only the public header is reachable: a copy in a directory of its own.
mkdir -p "$T_DIR/include"
cp "$hdr" "$T_DIR/include/fcgim8.h"
# The build's compiler and link flags (the sanitizers' runtime, when the
# library was built with them); plain cc otherwise.
CC=${M8_TEST_CC:-cc}
# shellcheck disable=SC2046
build() { # OUT SRC: compiles SRC as the README says (cc, public header, libfcgim8.so)
    "$CC" -Wall -Werror -I"$T_DIR/include" \
        $(pkg-config --cflags json-c) -o "$1" "$2" \
        ${M8_TEST_LDFLAGS:-} -L"$top_builddir/lib/.libs" -Wl,-rpath,"$top_builddir/lib/.libs" -lfcgim8 \
        $(pkg-config --libs json-c) >"$1.err" 2>&1
}

# The README's example: the C block under "A service in 30 lines".
awk '/^## A service in 30 lines/ { s = 1 } s && /^```c$/ { c = 1; next } c && /^```$/ { exit }
     c { print }' "$top_srcdir/README.md" >"$T_DIR/hello.c"
t_like "$(wc -l <"$T_DIR/hello.c")" '^[1-9][0-9]*$' "README: the 30-line example is found"
build "$T_DIR/hello" "$T_DIR/hello.c"
t_is "$?" 0 "README: the 30-line example builds against the public header alone"
[ -s "$T_DIR/hello.err" ] && sed 's/^/# /' "$T_DIR/hello.err"
out=$("$T_DIR/hello" --version 2>&1)
t_like "$out" 'Hello Service' "README: the example runs (--version names the service)"

# examples/item-service: built with the public header only.
build "$T_DIR/items" "$top_srcdir/examples/item-service/main.c"
t_is "$?" 0 "examples/item-service builds against the public header alone"
[ -s "$T_DIR/items.err" ] && sed 's/^/# /' "$T_DIR/items.err"

t_done
