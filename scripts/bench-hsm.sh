#!/usr/bin/env bash
# Keys on SoftHSM2 vs software keys (docs/BENCHMARKS.md, "Keys on SoftHSM2 vs software keys"),
# end to end on a throwaway token in a temp SOFTHSM2_CONF directory:
#   1. `smdpp bench hsm`: ECDSA sign and ECDH per operation, HsmKey vs software key, on 1,
#      cores and 4 x cores threads, P-256 and brainpoolP256r1;
#   2. whole downloads: `smdpp serve` (release) with software keys vs the same with DPauth,
#      DPpb and DPtls on the token, each driven by
#      `smdpp bench --devices 50 --downloads 600 --keep-alive`, RUNS runs each, alternating
#      software / token so that drift on a shared machine hits both; medians and the ratio.
# Environment: RUNS (3), DEVICES (50), DOWNLOADS (600), ITERATIONS (2000, part 1),
# SMDPP (target/release/smdpp, built when missing), SQLITE_SYNC (normal).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DEVICES=${DEVICES:-50}
DOWNLOADS=${DOWNLOADS:-600}
ITERATIONS=${ITERATIONS:-2000}
SQLITE_SYNC=${SQLITE_SYNC:-normal}
SMDPP=${SMDPP:-target/release/smdpp}
MODULE=/usr/lib/softhsm/libsofthsm2.so

command -v softhsm2-util >/dev/null && [ -e "$MODULE" ] || {
  echo "SoftHSM2 is missing: apt-get install -y softhsm2" >&2
  exit 1
}
[ -x "$SMDPP" ] || cargo build --release -p smdpp

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The throwaway token (never the machine's own token directory).
mkdir -p "$work/tokens"
export SOFTHSM2_CONF="$work/softhsm2.conf"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  "$work/tokens" >"$SOFTHSM2_CONF"
pin="bench-$RANDOM$RANDOM"
softhsm2-util --init-token --free --label smdpp-bench --pin "$pin" --so-pin "so-$RANDOM" >/dev/null
printf '%s\n' "$pin" >"$work/pin"
export SMDPP_PKCS11_MODULE="$MODULE" SMDPP_PKCS11_TOKEN=smdpp-bench SMDPP_PKCS11_PIN_FILE="$work/pin"
unset SMDPP_PKCS11_PIN

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $("$SMDPP" --version 2>/dev/null || echo smdpp)"
echo "== 1. smdpp bench hsm --iterations $ITERATIONS"
"$SMDPP" bench hsm --iterations "$ITERATIONS"

echo "== 2. whole downloads: $RUNS x (software keys, keys on SoftHSM2), $DEVICES devices, $DOWNLOADS downloads, --keep-alive, sqlite synchronous=$SQLITE_SYNC"
"$SMDPP" pki init --out "$work/pki" --curve nist --smdp-address 127.0.0.1 >/dev/null
for k in dpauth dppb dptls; do
  "$SMDPP" keys hsm import --label "$k" --key "$work/pki/$k.key" >/dev/null
done
"$SMDPP" keys hsm list

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_one() { # $1 = software|hsm, $2 = run number
  local kind=$1 n=$2 port data out
  port=$(free_port)
  data="$work/data-$kind-$n"
  out="$work/serve-$kind-$n.out"
  local keys=()
  if [ "$kind" = hsm ]; then
    keys=(--dpauth-key pkcs11:object=dpauth --dppb-key pkcs11:object=dppb --dptls-key pkcs11:object=dptls)
  fi
  "$SMDPP" serve --listen "127.0.0.1:$port" --admin-listen off --data-dir "$data" --pki "$work/pki" \
    --limit-initiate-per-minute 0 --sqlite-synchronous "$SQLITE_SYNC" "${keys[@]}" >"$out" 2>"$out.err" &
  server_pid=$!
  for _ in $(seq 1 600); do
    grep -q 'run a virtual device against it' "$out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$out.err" >&2; exit 1; }
    sleep 0.1
  done
  "$SMDPP" bench --url "https://127.0.0.1:$port" --devices "$DEVICES" --downloads "$DOWNLOADS" \
    --keep-alive --data-dir "$data" --pki "$work/pki" --server-pid "$server_pid" --json \
    >"$work/bench-$kind-$n.json"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  server_pid=
  python3 - "$work/bench-$kind-$n.json" "$kind" "$n" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
cpu = (r.get("server_cpu") or {}).get("per_download_ms")
print(f"  {sys.argv[2]:<8} run {sys.argv[3]}: {r['completed']}/{r['downloads']} completed, "
      f"{r['downloads_per_s']:.1f} downloads/s, server CPU "
      f"{'n/a' if cpu is None else f'{cpu:.3f} ms'}/download, errors {r.get('failed', 0)}")
EOF
}

for n in $(seq 1 "$RUNS"); do
  run_one software "$n"
  run_one hsm "$n"
done

python3 - "$work" "$RUNS" <<'EOF'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
def med(kind, f):
    return statistics.median(f(json.load(open(f"{work}/bench-{kind}-{n}.json"))) for n in range(1, runs + 1))
dps = lambda r: r["downloads_per_s"]
cpu = lambda r: r["server_cpu"]["per_download_ms"]
s_d, h_d = med("software", dps), med("hsm", dps)
s_c, h_c = med("software", cpu), med("hsm", cpu)
print(f"== medians of {runs} runs      downloads/s   server CPU ms/download")
print(f"  software keys            {s_d:11.1f}   {s_c:10.3f}")
print(f"  DPauth/DPpb/DPtls on SoftHSM2 {h_d:6.1f}   {h_c:10.3f}")
print(f"  ratio HSM / software     {h_d / s_d:11.2f}   {h_c / s_c:10.2f}")
EOF
