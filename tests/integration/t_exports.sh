#!/bin/bash
# t_exports.sh - libfcgim8.so exports the public API (fcgim8.h, M8_EXTERN) and
# nothing else: every dynamic symbol starts with m8_, none is internal; and
# fcgim8(3) documents every exported function.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
m8_init t_exports

so=$top_builddir/lib/.libs/libfcgim8.so
command -v nm >/dev/null 2>&1 || t_skip_all "nm (binutils) is not installed"
[ -e "$so" ] || t_skip_all "no shared library was built ($so; configured with --disable-shared?)"

# Defined dynamic symbols, minus the ones the linker adds to every library.
nm -D --defined-only "$so" >"$T_DIR/nm" 2>"$T_DIR/nm.err"
t_is "$?" 0 "nm -D --defined-only reads libfcgim8.so"
awk '{ print $NF }' "$T_DIR/nm" | sed 's/@.*//' |
    grep -Ev '^(_init|_fini|_edata|_end|__bss_start|_DYNAMIC|_GLOBAL_OFFSET_TABLE_)$' |
    sort -u >"$T_DIR/exported"

bad=$(grep -v '^m8_' "$T_DIR/exported")
t_is "$bad" "" "every exported symbol starts with m8_"

# The public functions: the name on each M8_EXTERN declaration of fcgim8.h.
# (the name right before the first "(" of each M8_EXTERN line)
grep 'M8_EXTERN' "$top_srcdir/lib/fcgim8.h" | grep -v '#define' |
    sed -n 's/^[^(]*[^A-Za-z0-9_]\(m8_[A-Za-z0-9_]*\)[[:space:]]*(.*/\1/p' | sort -u >"$T_DIR/declared"
t_like "$(wc -l <"$T_DIR/declared")" '^[1-9][0-9]*$' "fcgim8.h declares M8_EXTERN functions"

leaked=$(comm -13 "$T_DIR/declared" "$T_DIR/exported")
t_is "$leaked" "" "no internal m8_ symbol is exported (everything exported is declared M8_EXTERN in fcgim8.h)"

missing=$(comm -23 "$T_DIR/declared" "$T_DIR/exported")
t_is "$missing" "" "every M8_EXTERN function of fcgim8.h is exported"

for s in m8_version m8_strerror m8_app_new m8_app_main m8_app_add_routes m8_res_json; do
    grep -qx "$s" "$T_DIR/exported"
    t_ok $? "exports $s"
done

# fcgim8(3) documents every exported function: each is named there as
# "name(" (a synopsis line or a "name()" reference), and every m8_ function
# the page names is exported (no stale name).
man=$top_srcdir/doc/fcgim8.3
awk '$(NF - 1) ~ /^[TtWi]$/ { print $NF }' "$T_DIR/nm" | sed 's/@.*//' | grep '^m8_' |
    sort -u >"$T_DIR/functions"
sed 's/\\f[BIRP]//g; s/\\f(..//g' "$man" | grep -oE 'm8_[A-Za-z0-9_]+[[:space:]]*\(' |
    sed 's/[[:space:]]*($//' | sort -u >"$T_DIR/documented"
t_like "$(wc -l <"$T_DIR/functions")" '^[1-9][0-9]*$' "nm lists the exported functions"
undocumented=$(comm -23 "$T_DIR/functions" "$T_DIR/documented")
t_is "$undocumented" "" "fcgim8(3) names every exported function (doc/fcgim8.3)"
stale=$(comm -13 "$T_DIR/functions" "$T_DIR/documented")
t_is "$stale" "" "every m8_ function fcgim8(3) names is exported"

soname=$(objdump -p "$so" 2>/dev/null | awk '$1 == "SONAME" { print $2 }')
if command -v objdump >/dev/null 2>&1; then
    t_like "$soname" '^libfcgim8\.so\.[0-9]+$' "SONAME is libfcgim8.so.<current> (libtool -version-info)"
else
    t_skip "SONAME is libfcgim8.so.<current>" "objdump is not installed"
fi

t_done
