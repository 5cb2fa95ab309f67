#!/usr/bin/env bash
# The fuzz campaign behind docs/FUZZING.md: every target in turn, one libFuzzer process
# at a time, until it has run FUZZ_RUNS inputs (default 10 million) or FUZZ_MAX_SECONDS
# (default 600) have passed. Run from anywhere after `cargo fuzz build` (see FUZZING.md).
#
#   fuzz/campaign.sh [target ...]        (default: every target in fuzz/targets.txt)
#
# Corpora grow in fuzz/corpus/<target>/ (git-ignored; seeded by seedgen from the test
# suite's messages and ../shared), crash inputs land in fuzz/artifacts/<target>/, logs in
# fuzz/target/campaign/<target>.log, and one summary line per target is appended to
# fuzz/target/campaign/summary.tsv: target, executions, seconds, cov, ft, crashes.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/target/x86_64-unknown-linux-gnu/release"
shared="${SMDPP_SHARED:-$here/../../shared}"
runs="${FUZZ_RUNS:-10000000}"
max_seconds="${FUZZ_MAX_SECONDS:-600}"
logs="$here/target/campaign"
mkdir -p "$logs"
if [ $# -eq 0 ]; then
    mapfile -t targets < "$here/targets.txt"
else
    targets=("$@")
fi
if [ -d "$shared" ]; then
    "$bin/seedgen" "$here/corpus" --shared "$shared"
else
    "$bin/seedgen" "$here/corpus"
fi
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$here/corpus/$t" "$here/artifacts/$t"
    start=$(date +%s)
    "$bin/$t" -runs="$runs" -max_total_time="$max_seconds" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$here/artifacts/$t/" \
        "$here/corpus/$t" "$here/seeds/$t" > "$logs/$t.log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$logs/$t.log" | grep -oE '[0-9]+$' | tail -1)
    last=$(grep -E '(DONE|pulse|NEW|REDUCE|INITED) +cov:' "$logs/$t.log" | tail -1)
    cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
    ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+')
    crashes=$(find "$here/artifacts/$t" -type f | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\trc=%s\n' "$t" "${execs:-?}" "$secs" "${cov:-?}" "${ft:-?}" "$crashes" "$rc" \
        | tee -a "$logs/summary.tsv"
    [ "$rc" -ne 0 ] && failed=1
done
exit $failed
