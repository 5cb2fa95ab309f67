#!/usr/bin/env bash
# Fuzz smoke test: builds the cargo-fuzz targets in fuzz/ and runs each one for a short
# time (FUZZ_SMOKE_SECONDS, default 20 s per target), one libFuzzer process at a time.
# Fails (non-zero exit) when the build fails or any target finds a crash, a time-out or
# an out-of-memory input. See docs/FUZZING.md for the full campaign.
#
#   ./scripts/fuzz-smoke.sh               # every target in fuzz/targets.txt
#   ./scripts/fuzz-smoke.sh pem saip_upp  # only these
#
# Needs a Rust toolchain (stable works: RUSTC_BOOTSTRAP=1) and a C++ compiler (libFuzzer);
# installs cargo-fuzz when it is missing. Seeds: fuzz/seeds/ plus, at run time, the test
# suite's sample messages and, when ../shared exists, the TS.48 profiles and SGP.26 certs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
seconds="${FUZZ_SMOKE_SECONDS:-20}"
shared="${SMDPP_SHARED:-$root/../shared}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

echo "fuzz-smoke: building fuzz targets"
build_start=$(date +%s)
(cd "$fuzz" && cargo fuzz build --sanitizer none --debug-assertions)
echo "fuzz-smoke: build took $(( $(date +%s) - build_start )) s"
bin="$fuzz/target/x86_64-unknown-linux-gnu/release"

if [ $# -eq 0 ]; then
    mapfile -t targets < "$fuzz/targets.txt"
else
    targets=("$@")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -d "$shared" ]; then
    "$bin/seedgen" "$work/corpus" --shared "$shared"
else
    "$bin/seedgen" "$work/corpus"
fi

failed=()
for t in "${targets[@]}"; do
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    log="$work/$t.log"
    if "$bin/$t" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
        -artifact_prefix="$work/artifacts/$t/" "$work/corpus/$t" "$fuzz/seeds/$t" \
        >"$log" 2>&1; then
        summary=$(grep -E '^Done [0-9]+ runs' "$log" | tail -1)
        cov=$(grep -E ' cov: ' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')
        echo "fuzz-smoke: $t ok ($summary; $cov)"
    else
        echo "fuzz-smoke: $t FAILED; log follows" >&2
        tail -n 60 "$log" >&2
        for a in "$work/artifacts/$t"/*; do
            [ -f "$a" ] || continue
            mkdir -p "$fuzz/artifacts/$t"
            cp "$a" "$fuzz/artifacts/$t/"
            echo "fuzz-smoke: input kept in fuzz/artifacts/$t/$(basename "$a")" >&2
        done
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz-smoke: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz-smoke: ${#targets[@]} targets, ${seconds} s each, 0 crashes"
