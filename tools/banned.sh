#!/bin/sh
# tools/banned.sh [ROOT] - lists calls of banned C functions (STYLE.md rule 6).
#
# Scans ROOT/lib, ROOT/src, ROOT/examples (every .c and .h, recursively),
# ROOT/tests/unit/*.c and ROOT/tests/fuzz/*.c (ROOT defaults to the source tree).
# Banned: strcpy strcat sprintf vsprintf strtok atoi atol atoll gets signal
# (use snprintf/vsnprintf, m8_buf, strtok_r or a hand-written scanner,
# m8_parse_ll/strtol with range checks, fgets, sigaction).
# Comments, string and character literals are ignored, so a comment that
# mentions signal() is fine.  Prints FILE:LINE: NAME( for each call and exits
# 1 when there is any, 0 when there is none, 2 on a usage error.
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
[ -d "$root" ] || { echo "banned.sh: no such directory: $root" >&2; exit 2; }

files=$(
    for d in lib src examples; do
        [ -d "$root/$d" ] && find "$root/$d" -type f \( -name '*.c' -o -name '*.h' \)
    done
    for f in "$root"/tests/*.c "$root"/tests/unit/*.c "$root"/tests/fuzz/*.c; do
        [ -f "$f" ] && printf '%s\n' "$f"
    done
)
[ -n "$files" ] || exit 0

# Blanks out comments and literals (keeping every newline, so line numbers
# stay right), then reports NAME( where NAME is a whole word.
found=$(printf '%s\n' "$files" | sort | while IFS= read -r f; do
    awk -v file="${f#"$root"/}" '
    BEGIN { st = 0 }   # 0 code, 1 block comment, 2 string, 3 char literal
    {
        line = $0; out = ""; n = length(line); i = 1
        while (i <= n) {
            c = substr(line, i, 1); d = substr(line, i, 2)
            if (st == 0) {
                if (d == "/*") { st = 1; out = out "  "; i += 2; continue }
                if (d == "//") break
                if (c == "\"") { st = 2; out = out " "; i++; continue }
                if (c == "\047") { st = 3; out = out " "; i++; continue }
                out = out c; i++
            } else if (st == 1) {
                if (d == "*/") { st = 0; out = out "  "; i += 2; continue }
                out = out " "; i++
            } else {
                if (c == "\\") { out = out "  "; i += 2; continue }
                if ((st == 2 && c == "\"") || (st == 3 && c == "\047")) st = 0
                out = out " "; i++
            }
        }
        if (st >= 2) st = 0   # an unterminated literal ends at the line end
        s = out
        while (match(s, /(^|[^A-Za-z0-9_])(strcpy|strcat|sprintf|vsprintf|strtok|atoi|atol|atoll|gets|signal)[ \t]*\(/)) {
            m = substr(s, RSTART, RLENGTH)
            sub(/^[^A-Za-z]/, "", m); sub(/[ \t]*\($/, "", m)
            printf "%s:%d: %s(\n", file, FNR, m
            s = substr(s, RSTART + RLENGTH)
        }
    }' "$f"
done)

if [ -n "$found" ]; then
    printf '%s\n' "$found"
    exit 1
fi
exit 0
