#!/bin/bash
# t_fuzz.sh - runs every built libFuzzer target (tests/fuzz/fuzz_*) for a short,
# bounded time over its corpus (tests/fuzz/corpus/<name without fuzz_>/):
# one TAP line per target, "not ok" on a crash, leak, timeout or OOM.
# A dictionary tests/fuzz/dict/<name without fuzz_>.dict is passed when present.
# M8_FUZZ_SECONDS (default 10) sets the time per target.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/integration/lib.sh"
m8_init t_fuzz

secs=${M8_FUZZ_SECONDS:-10}
targets=()
for f in "$top_builddir"/tests/fuzz/fuzz_*; do
    [ -f "$f" ] && [ -x "$f" ] && targets+=("$f")
done
[ ${#targets[@]} -gt 0 ] || t_skip_all "no fuzzers built (configure CC=clang --enable-fuzzers)"

for f in "${targets[@]}"; do
    name=$(basename "$f")
    short=${name#fuzz_}
    seeds=$top_srcdir/tests/fuzz/corpus/$short
    work=$T_DIR/$short
    mkdir -p "$work/corpus" "$work/artifacts"
    # New inputs go to a scratch corpus: the source tree may be read-only
    # (make distcheck).  The checked-in corpus is read as a second directory.
    dirs=("$work/corpus")
    if [ -d "$seeds" ]; then
        dirs+=("$seeds")
        nseeds=$(find "$seeds" -type f | wc -l)
    else
        nseeds=0
    fi
    dict=()
    [ -f "$top_srcdir/tests/fuzz/dict/$short.dict" ] && dict=(-dict="$top_srcdir/tests/fuzz/dict/$short.dict")
    # TMPDIR: a target's own scratch files (fuzz_pipeline's sockets) go to
    # the test's directory, removed even when the target crashed.
    TMPDIR=$work "$f" -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" "${dict[@]}" "${dirs[@]}" \
        >"$work/log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
    if [ "$rc" = 0 ]; then
        t_report 0 "$name: no crash, leak, timeout or OOM in ${secs}s (${runs:-?} runs, $nseeds seeds)"
    else
        t_report 1 "$name: no crash, leak, timeout or OOM in ${secs}s (exit $rc)"
        t_diag "$(grep -m 1 -E '^==[0-9]+== *ERROR' "$work/log")"
        t_diag "$(tail -n 30 "$work/log")"
        for a in "$work"/artifacts/*; do
            [ -f "$a" ] && t_diag "reproducer ($(basename "$a")), base64: $(head -c 2048 "$a" | base64 -w0)"
        done
    fi
done

t_done
