#!/bin/bash
# scripts/test-all.sh - every check, as CI runs it (.ci/run), on Debian 12:
#   1. dependencies (scripts/install-deps.sh, when run as root)
#   2. autoreconf -fi
#   3. build "default":   ../configure --enable-werror;               make -j2 check
#   4. build "sanitize":  ../configure --enable-werror --enable-sanitizers (ASan+UBSan); make -j2 check
#   5. build "fuzz":      CC=clang ../configure --enable-fuzzers;     make check TESTS=tests/integration/t_fuzz.sh
#   6. make distcheck from the default build (counted as one check)
# Builds go to $M8_TEST_DIR (default _build/test-all in the source tree).
# The last line printed is "N passed, N failed": TAP results summed over every
# run's test-suite.log (a build step that fails counts as one failure).
# Exits non-zero when anything failed.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
work=${M8_TEST_DIR:-$top/_build/test-all}
jobs=${M8_JOBS:-2}
cd "$top" || exit 1

passed=0
failed=0
summary=()
t_start=$(date +%s)

say() { printf '\n=== %s (%ss)\n' "$*" "$(( $(date +%s) - t_start ))"; }

# counts FILE LABEL: adds the "# PASS/FAIL/ERROR/XPASS" totals of an automake
# test-suite.log (or of console output carrying the same summary block).
counts() {
    local f=$1 label=$2 p fl e xp
    p=$(sed -n 's/^# PASS: *\([0-9]*\).*/\1/p' "$f" | tail -n 1)
    fl=$(sed -n 's/^# FAIL: *\([0-9]*\).*/\1/p' "$f" | tail -n 1)
    e=$(sed -n 's/^# ERROR: *\([0-9]*\).*/\1/p' "$f" | tail -n 1)
    xp=$(sed -n 's/^# XPASS: *\([0-9]*\).*/\1/p' "$f" | tail -n 1)
    if [ -z "$p" ]; then
        summary+=("$label: no test summary found in $f")
        failed=$((failed + 1))
        return
    fi
    local bad=$(( ${fl:-0} + ${e:-0} + ${xp:-0} ))
    passed=$((passed + p))
    failed=$((failed + bad))
    summary+=("$label: $p passed, $bad failed (FAIL ${fl:-0}, ERROR ${e:-0}, XPASS ${xp:-0})")
}

step_failed() { # LABEL LOG: a build step failed; show its tail, count one failure
    summary+=("$1: FAILED (see $2)")
    failed=$((failed + 1))
    echo "--- $1 failed; last lines of $2:"
    tail -n 40 "$2"
}

show_failures() { # BUILD-DIR: the logs of failed tests
    local d=$1 f
    grep -l -E '^(FAIL|ERROR|XPASS):' "$d"/tests/unit/*.log "$d"/tests/integration/*.log 2>/dev/null |
        grep -v test-suite.log | while read -r f; do
            echo "--- $f"
            grep -E '^(not ok|Bail out!|#)' "$f" | head -n 60
        done
}

# build NAME CONFIGURE-ARGS... -- MAKE-CHECK-ARGS...
build() {
    local name=$1 d=$work/$1
    shift
    local -a cargs=() margs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do cargs+=("$1"); shift; done
    [ "${1:-}" = -- ] && shift
    margs=("$@")
    say "build $name: configure ${cargs[*]}"
    rm -rf "$d"
    mkdir -p "$d"
    if ! (cd "$d" && "$top/configure" "${cargs[@]}") >"$d/configure.out" 2>&1; then
        step_failed "$name configure" "$d/configure.out"
        return 1
    fi
    say "build $name: make -j$jobs"
    if ! (cd "$d" && make -j"$jobs") >"$d/make.out" 2>&1; then
        step_failed "$name make" "$d/make.out"
        return 1
    fi
    say "build $name: make -j$jobs check ${margs[*]}"
    (cd "$d" && make -j"$jobs" check "${margs[@]}") >"$d/check.out" 2>&1
    local rc=$?
    grep -a -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR):' "$d/check.out" | grep -v '^PASS:' | head -n 80
    if [ -f "$d/test-suite.log" ]; then
        counts "$d/test-suite.log" "$name"
    else
        step_failed "$name make check (no test-suite.log)" "$d/check.out"
    fi
    [ $rc = 0 ] || show_failures "$d"
    return $rc
}

# ------------------------------------------------------------------ 1. dependencies
say "dependencies"
if [ "$(id -u)" = 0 ]; then
    if ! bash "$top/scripts/install-deps.sh"; then
        summary+=("install-deps: FAILED")
        failed=$((failed + 1))
    fi
else
    echo "not root: skipping scripts/install-deps.sh (run it with sudo if something is missing)"
fi

# ------------------------------------------------------------------ 2. autotools
say "autoreconf -fi"
mkdir -p "$work"
if ! autoreconf -fi >"$work/autoreconf.out" 2>&1; then
    step_failed autoreconf "$work/autoreconf.out"
    echo
    printf '%s\n' "${summary[@]}"
    echo "$passed passed, $failed failed"
    exit 1
fi

# ------------------------------------------------------------------ 3-5. builds
build default --enable-werror
build sanitize --enable-werror --enable-sanitizers
if command -v clang >/dev/null 2>&1; then
    build fuzz CC=clang --enable-fuzzers -- TESTS=tests/integration/t_fuzz.sh
else
    summary+=("fuzz: FAILED (clang is not installed)")
    failed=$((failed + 1))
fi

# ------------------------------------------------------------------ 6. distcheck
if [ -f "$work/default/Makefile" ]; then
    say "make distcheck (from the default build)"
    d=$work/default
    (cd "$d" && make -j"$jobs" distcheck) >"$d/distcheck.out" 2>&1
    rc=$?
    # distcheck reruns the suite of the default build from the tarball: it
    # counts as one check here (the tests were counted above).
    if [ $rc = 0 ]; then
        passed=$((passed + 1))
        summary+=("distcheck: passed ($(sed -n 's/^# PASS: *\([0-9]*\).*/\1/p' "$d/distcheck.out" | tail -n 1) tests from the tarball)")
    fi
    if [ $rc != 0 ]; then
        step_failed "distcheck" "$d/distcheck.out"
        sub=$(find "$d" -path '*/_build/sub/test-suite.log' 2>/dev/null | head -n 1)
        [ -n "$sub" ] && show_failures "$(dirname "$sub")"
        # leave the tree writable so the next run can remove it
        find "$d" -maxdepth 1 -type d -name 'fcgi-m8-*' -exec chmod -R u+w {} + 2>/dev/null
    else
        grep -E 'archives ready for distribution' -A 2 "$d/distcheck.out" | head -n 3
    fi
else
    summary+=("distcheck: not run (the default build was not configured)")
    failed=$((failed + 1))
fi

# ------------------------------------------------------------------ summary
say "summary"
printf '%s\n' "${summary[@]}"
echo "total time: $(( $(date +%s) - t_start ))s; builds and logs in $work"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
