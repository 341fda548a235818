#!/bin/sh
# tools/unit.sh TEST SRC... : builds and runs one unit test without the full
# build (so work in progress elsewhere in lib/ cannot break it).
#   tools/unit.sh test_dotenv lib/config/dotenv.c
# Always links lib/core/{buf,arena,util,log}.c.  Needs a
# config.h: uses $M8_BUILD (default /tmp/b) from a configured build dir.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
b=${M8_BUILD:-/tmp/b}
t=$1; shift
out=${TMPDIR:-/tmp}/m8unit-$t-$$
srcs=""
for s in "$@"; do srcs="$srcs $top/$s"; done
cc -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wformat=2 -Wshadow -Werror -fsanitize=address,undefined \
  -I"$top/lib" -I"$b" -I"$top/tests/unit" -pthread \
  "$top/tests/unit/$t.c" $srcs "$top/lib/core/buf.c" "$top/lib/core/arena.c" "$top/lib/core/util.c" "$top/lib/core/log.c" \
  $(pkg-config --cflags --libs libsodium libcrypto json-c libcurl) -lfcgi -o "$out"
"$out"; rc=$?
rm -f "$out"
exit $rc
