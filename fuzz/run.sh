#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) in parallel, each on its own corpus under
# $FUZZ_DIR/corpus seeded from $FUZZ_DIR/seeds, and prints execs and coverage per target.
# Exit status 1 when any target found a crash, a leak or a timeout (the input is kept in
# $FUZZ_DIR/artifacts/<target>/ and the log in $FUZZ_DIR/logs/).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${FUZZ_DIR:-.build-fuzz}
SECONDS_EACH=${1:-600}
TARGETS=(request-head response-head chunked admin-json)
# Swift's backtracer would hold the process after a crash; libFuzzer's own report is enough.
export SWIFT_BACKTRACE=enable=no
mkdir -p "$OUT/logs"
pids=()
for t in "${TARGETS[@]}"; do
    mkdir -p "$OUT/corpus/$t" "$OUT/artifacts/$t" "$OUT/seeds/$t"
    dict=()
    [[ $t != admin-json ]] && dict=(-dict=fuzz/http.dict)
    "$OUT/fuzz-$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${dict[@]}" -artifact_prefix="$OUT/artifacts/$t/" "$OUT/corpus/$t" "$OUT/seeds/$t" \
        >"$OUT/logs/$t.log" 2>&1 &
    pids+=($!)
done
status=0
for i in "${!TARGETS[@]}"; do
    t=${TARGETS[$i]}
    if wait "${pids[$i]}"; then result=ok; else result=FAILED; status=1; fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$OUT/logs/$t.log" | grep -o '[0-9]*$')
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$OUT/logs/$t.log" | tail -1)
    corpus=$(ls "$OUT/corpus/$t" | wc -l)
    printf '%-14s %-6s %ss  execs=%s  %s  corpus=%s\n' "$t" "$result" "$SECONDS_EACH" "${execs:-?}" "${cov:-?}" "$corpus"
    if [[ $result == FAILED ]]; then
        grep -m5 -E 'fuzz property violated|ERROR: AddressSanitizer|ERROR: libFuzzer|Fatal error|Test unit written' "$OUT/logs/$t.log" | sed 's/^/    /'
    fi
done
exit $status
