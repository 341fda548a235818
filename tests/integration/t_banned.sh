#!/bin/bash
# t_banned.sh - no banned C function is called in lib/, src/, examples/, tests/*.c
# (tools/banned.sh; doc/design.md#coding-rules), and the checker itself finds what it must.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
m8_init t_banned

checker=$top_srcdir/tools/banned.sh

# --- the checker on a planted tree
fake=$T_DIR/tree
mkdir -p "$fake/lib" "$fake/src" "$fake/examples/x" "$fake/tests/fuzz"
cat >"$fake/lib/bad.c" <<'C'
#include <signal.h>
#include <string.h>
void f(char *d, const char *s, int n)
{
    strcpy(d, s);
    strcat (d, s);
    sprintf(d, "%d", n);
    n = atoi(s) + (int)atol(s) + (int)atoll(s);
    (void)strtok(d, ",");
    signal(SIGPIPE, SIG_IGN);
}
C
cat >"$fake/examples/x/bad.h" <<'C'
#define G(b) gets(b)
static inline int v(char *b, const char *f, va_list ap) { return vsprintf(b, f, ap); }
C
cat >"$fake/tests/fuzz/bad.c" <<'C'
int g(void) { return atoi("1"); }
C
cat >"$fake/src/good.c" <<'C'
/* never call strcpy(), sprintf() or signal() here: use sigaction() */
// atoi(x) is banned too
#include <signal.h>
static const char *msg = "do not use strcat(a, b) or gets(b)";
static const char q = '(';
void h(char *d, size_t n, const char *s, FILE *fp)
{
    snprintf(d, n, "%s", s);
    vsnprintf(d, n, "%s", ap);
    (void)strtok_r(d, ",", &save);
    (void)fgets(d, (int)n, fp);
    (void)strtoll(s, NULL, 10);
    m8_signal_init(); my_strcpy(d, s); sigaction(SIGTERM, &sa, NULL);
    asprintf(&p, "x"); /* multi-line comment
       sprintf(d, "x");
    */ (void)msg; (void)q;
}
C
out=$("$checker" "$fake")
rc=$?
t_is "$rc" 1 "banned.sh exits 1 when a banned call is present"
want='examples/x/bad.h:1: gets(
examples/x/bad.h:2: vsprintf(
lib/bad.c:5: strcpy(
lib/bad.c:6: strcat(
lib/bad.c:7: sprintf(
lib/bad.c:8: atoi(
lib/bad.c:8: atol(
lib/bad.c:8: atoll(
lib/bad.c:9: strtok(
lib/bad.c:10: signal(
tests/fuzz/bad.c:1: atoi('
t_is "$out" "$want" "banned.sh lists every banned call as file:line, and nothing in comments, strings or safe look-alikes"

rm -f "$fake/lib/bad.c" "$fake/examples/x/bad.h" "$fake/tests/fuzz/bad.c"
out=$("$checker" "$fake")
rc=$?
t_is "$rc:$out" "0:" "banned.sh exits 0 with no output on a clean tree"

# --- the real tree
out=$("$checker" "$top_srcdir")
rc=$?
t_is "$rc" 0 "no banned function (strcpy strcat sprintf vsprintf strtok atoi atol gets signal) in lib/ src/ examples/ tests/*.c"
[ "$rc" = 0 ] || t_diag "$out"

t_done
