#!/usr/bin/env bash
# ES9+ load runs for docs/BENCHMARKS.md: RUNS times, a fresh `smdpp serve` on a fresh data
# directory, then `smdpp bench` against it; prints each run's figures and their medians.
#
#   scripts/bench-es9.sh [RUNS] [-- extra smdpp bench flags]
#
# Environment:
#   SMDPP_BIN      the binary (default target/release/smdpp)
#   DEVICES        concurrent devices (default 200)
#   DOWNLOADS      downloads per run (default 1500)
#   KEEP_ALIVE=1   re-use connections (default: a TLS connection per call, like lpac)
#   SYNC           sqlite synchronous: full (default) or normal
#   DB_URL         a PostgreSQL URL (default: SQLite in the data directory); each run needs an
#                  empty database: a `%RUN%` in the URL is replaced by the run's number, so
#                  `.../smdpp_bench%RUN%` uses smdpp_bench1, smdpp_bench2, ... (create them first)
#   PG_PID         the postmaster's PID, to count the PostgreSQL backends' CPU
#   CURVE          p256 (default) or brainpool
set -euo pipefail

RUNS=${1:-3}
shift || true
[ "${1:-}" = "--" ] && shift
BIN=${SMDPP_BIN:-target/release/smdpp}
DEVICES=${DEVICES:-200}
DOWNLOADS=${DOWNLOADS:-1500}
SYNC=${SYNC:-full}
CURVE=${CURVE:-p256}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

for run in $(seq 1 "$RUNS"); do
    data="$work/data$run"
    db_url=${DB_URL:-}
    db_url=${db_url//%RUN%/$run}
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    serve=(serve --data-dir "$data" --listen "127.0.0.1:$port" --admin-listen off
        --limit-initiate-per-minute 0 --sqlite-synchronous "$SYNC")
    [ "$CURVE" = brainpool ] && serve+=(--curve brainpool)
    [ -n "$db_url" ] && serve+=(--database-url "$db_url")
    RUST_LOG=warn "$BIN" "${serve[@]}" > "$work/serve$run.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
        grep -q "run a virtual device against it" "$work/serve$run.log" && break
        sleep 0.1
    done
    bench=(bench --url "https://127.0.0.1:$port" --devices "$DEVICES" --downloads "$DOWNLOADS"
        --data-dir "$data" --server-pid "$pid" --json)
    [ -n "${KEEP_ALIVE:-}" ] && bench+=(--keep-alive)
    [ -n "$db_url" ] && bench+=(--database-url "$db_url")
    [ -n "${PG_PID:-}" ] && bench+=(--postgres-pid "$PG_PID")
    RUST_LOG=warn "$BIN" "${bench[@]}" "$@" > "$work/run$run.json"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done

python3 - "$work" "$RUNS" <<'EOF'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, runs + 1):
    r = json.load(open(f"{work}/run{i}.json"))
    cpu = r.get("server_cpu") or {}
    db = r.get("database_cpu") or {}
    client = r.get("client_cpu") or {}
    floor = (r.get("floor") or {}).get("per_download_ms")
    total = r.get("server_and_database_cpu_per_download_ms") or cpu.get("per_download_ms")
    p99 = {l["call"]: l["p99_ms"] for l in r["latency"]} if r["latency"] and "call" in r["latency"][0] else {}
    row = dict(
        per_s=r["downloads_per_s"], completed=r["completed"], failed=r["failed"],
        server_ms=cpu.get("per_download_ms"), server_cores=cpu.get("cores"),
        db_ms=db.get("per_download_ms"), client_ms=client.get("per_download_ms"),
        floor_ms=floor, ratio=(total / floor) if (total and floor) else None,
        p99=p99)
    rows.append(row)
    print(f"run {i}: " + json.dumps(row))
def med(k):
    v = [r[k] for r in rows if r[k] is not None]
    return round(statistics.median(v), 3) if v else None
print("median: " + json.dumps({k: med(k) for k in
      ["per_s", "server_ms", "server_cores", "db_ms", "client_ms", "floor_ms", "ratio"]}))
EOF
