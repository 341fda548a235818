#!/bin/bash
# t_configure.sh - a missing dependency stops configure with one line naming
# the Debian package to install.  Each dependency is hidden in turn: the
# pkg-config ones by a private PKG_CONFIG_LIBDIR holding every system .pc
# file but that one, libfcgi (found by header and library) through the
# autoconf cache variables of its two checks.
. "$top_srcdir/tests/integration/lib.sh"
m8_init configure

pcdirs=$(pkg-config --variable pc_path pkg-config 2>/dev/null)
[ -n "$pcdirs" ] || t_skip_all "pkg-config cannot tell its search path"
mkdir -p "$T_DIR/pc"

hide() { # MODULE: a pkg-config dir with every .pc except MODULE.pc
    local d=$T_DIR/pc/$1 dir f
    rm -rf "$d"
    mkdir -p "$d"
    IFS=: read -ra dirs <<<"$pcdirs"
    for dir in "${dirs[@]}"; do
        for f in "$dir"/*.pc; do
            [ -e "$f" ] || continue
            [ "$(basename "$f")" = "$1.pc" ] && continue
            [ -e "$d/$(basename "$f")" ] || ln -s "$f" "$d/"
        done
    done
    printf '%s\n' "$d"
}

run_configure() { # ARGS...: runs configure in a fresh dir; sets OUT (stderr) and RC
    local b=$T_DIR/b$RANDOM
    mkdir -p "$b"
    (cd "$b" && "$top_srcdir/configure" -q "$@") >/dev/null 2>"$b/err"
    RC=$?
    OUT=$(grep 'configure: error:' "$b/err")
    rm -rf "$b"
}

for row in "libsodium libsodium-dev" "libcrypto libssl-dev" "json-c libjson-c-dev" \
           "libcurl libcurl4-openssl-dev" "libxcrypt libcrypt-dev" "libmariadb libmariadb-dev" \
           "libpq libpq-dev"; do
    set -- $row
    PKG_CONFIG_LIBDIR=$(hide "$1") run_configure
    t_ok $([ "$RC" != 0 ] && echo 0 || echo 1) "without $1.pc configure fails"
    t_like "$OUT" "^configure: error: $1 .*not found: install the Debian package $2\$" \
        "without $1 the error names the package $2"
    t_is "$(printf '%s\n' "$OUT" | grep -c .)" 1 "without $1: exactly one error line"
done

run_configure ac_cv_header_fcgiapp_h=no
t_like "$OUT" "libfcgi not found \\(fcgiapp.h\\): install the Debian package libfcgi-dev" \
    "without fcgiapp.h the error names libfcgi-dev"
run_configure ac_cv_lib_fcgi_FCGX_Accept_r=no
t_like "$OUT" "libfcgi not found \\(-lfcgi\\): install the Debian package libfcgi-dev" \
    "without -lfcgi the error names libfcgi-dev"

PKG_CONFIG_LIBDIR=$(hide libmariadb) run_configure --without-mariadb
t_is "$RC" 0 "--without-mariadb configures without libmariadb"
PKG_CONFIG_LIBDIR=$(hide libpq) run_configure --without-postgresql
t_is "$RC" 0 "--without-postgresql configures without libpq"
t_done
