#!/usr/bin/env bash
# Optional interop check of `smdpp serve` with the real lpac (https://github.com/estkme-group/lpac)
# driving the virtual eUICC of `smdpp euicc lpac-stdio`. Not part of CI: lpac is not packaged
# and must be built by hand.
#
#   LPAC=/path/to/lpac scripts/lpac-interop.sh [SMDPP_BINARY]
#
# SMDPP_BINARY defaults to target/debug/smdpp (build it first: cargo build -p smdpp).
# PROFILE overrides the UPP to download (default: ../shared/profiles/ts48/
# TS48v4_SAIP2.3_BERTLV.der next to the repository). PROFILE=demo downloads the demo profile
# `serve` seeded instead: generated from the built-in template at download time.
#
# What it does, in a temporary directory that is removed at the end:
#   1. starts `smdpp serve` on a free 127.0.0.1 port with a fresh data directory (SQLite);
#   2. `smdpp euicc init` (a virtual eUICC from the server's generated test PKI);
#   3. `smdpp profiles add` of the TS.48 profile (or, with PROFILE=demo, the demo order);
#   4. runs lpac (LPAC_APDU=stdio LPAC_HTTP=curl), each command bridged to a fresh
#      `smdpp euicc lpac-stdio --state FILE` by a small Python bridge: lpac's stdout lines of
#      type "apdu" go to the virtual eUICC's stdin (one per line) and its one-line reply goes
#      back to lpac's stdin; every other lpac line is a result line:
#        chip info; profile download -s HOST:PORT -m MATCHING_ID; notification process -a -r;
#        profile list; profile enable ICCID; notification process -a -r;
#        profile disable ICCID; notification process -a -r; profile delete ICCID;
#        notification process -a -r
#      and checks that each command's final "lpa" line has "code":0;
#   5. checks that `smdpp profiles list` shows the profile Installed (after the install
#      notification) and that lpac's profile list shows it, and that `smdpp profiles show`
#      says enabled, disabled and unavailable (retired) after each later notification;
#   6. prints a PASS/FAIL summary and exits non-zero on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LPAC=${LPAC:-lpac}
SMDPP=${1:-$ROOT/target/debug/smdpp}
PROFILE=${PROFILE:-$ROOT/../shared/profiles/ts48/TS48v4_SAIP2.3_BERTLV.der}
LPAC_TIMEOUT=${LPAC_TIMEOUT:-120}

die() { echo "lpac-interop: $*" >&2; exit 2; }
command -v python3 >/dev/null || die "python3 is required for the APDU bridge"
[ -x "$SMDPP" ] || die "smdpp binary not found at $SMDPP (cargo build -p smdpp, or pass its path)"
if ! command -v "$LPAC" >/dev/null 2>&1 && [ ! -x "$LPAC" ]; then
    die "lpac not found (set LPAC=/path/to/lpac)"
fi
[ "$PROFILE" = demo ] || [ -r "$PROFILE" ] || die "profile $PROFILE not readable (set PROFILE=...)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/smdpp-lpac.XXXXXX")
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
ADDR="127.0.0.1:$PORT"
DATA="$WORK/data"
STATE="$WORK/euicc.json"

# --------------------------------------------------------------------- server
"$SMDPP" serve --listen "$ADDR" --data-dir "$DATA" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 300); do
    grep -q "run a virtual device" "$WORK/serve.log" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "smdpp serve exited"; }
    sleep 0.2
done
grep -q "run a virtual device" "$WORK/serve.log" || { cat "$WORK/serve.log" >&2; die "smdpp serve did not start"; }
echo "== smdpp serve on https://$ADDR (data $DATA)"

"$SMDPP" euicc init --state "$STATE" --pki "$DATA/pki" >"$WORK/init.log" 2>&1 \
    || { cat "$WORK/init.log" >&2; die "smdpp euicc init failed"; }
if [ "$PROFILE" = demo ]; then
    MATCHING_ID=$(sed -n 's/^demo profile Activation Code: LPA:1\$[^$]*\$\([^$]*\).*/\1/p' "$WORK/serve.log")
    ICCID=$("$SMDPP" profiles list --data-dir "$DATA" | awk -v m="$MATCHING_ID" '$0 ~ "mid="m {print $1}')
    ADD_OUT=$(cat "$WORK/serve.log")
else
    ADD_OUT=$("$SMDPP" profiles add --data-dir "$DATA" --upp "$PROFILE" --smdp-address "$ADDR" 2>&1) \
        || { echo "$ADD_OUT" >&2; die "smdpp profiles add failed"; }
    ICCID=$(echo "$ADD_OUT" | sed -n 's/^added profile \([0-9]*\).*/\1/p')
    MATCHING_ID=$(echo "$ADD_OUT" | sed -n 's/^Activation Code: LPA:1\$[^$]*\$\([^$]*\).*/\1/p')
fi
[ -n "$ICCID" ] && [ -n "$MATCHING_ID" ] || { echo "$ADD_OUT" >&2; die "could not read ICCID/MatchingID"; }
echo "== profile $ICCID, MatchingID $MATCHING_ID"

# --------------------------------------------------------------------- bridge
# bridge.py LPAC SMDPP STATE ARGS...: runs one lpac command against a fresh lpac-stdio eUICC;
# prints lpac's non-APDU lines; exits 0 iff lpac exited 0 and its last "lpa" line has code 0.
cat >"$WORK/bridge.py" <<'PY'
import json, os, subprocess, sys

lpac, smdpp, state, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
env = dict(os.environ, LPAC_APDU="stdio", LPAC_HTTP="curl", NO_PROXY="127.0.0.1,localhost",
           no_proxy="127.0.0.1,localhost")
for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    env.pop(k, None)
lp = subprocess.Popen([lpac] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
sim = subprocess.Popen([smdpp, "euicc", "lpac-stdio", "--state", state],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE)
last_lpa = None
try:
    for raw in lp.stdout:
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            print("   (non-JSON) " + line)
            continue
        if msg.get("type") == "apdu":
            sim.stdin.write((line + "\n").encode())
            sim.stdin.flush()
            reply = sim.stdout.readline()
            if not reply:
                print("   virtual eUICC closed its output", file=sys.stderr)
                break
            lp.stdin.write(reply)
            lp.stdin.flush()
        else:
            print("   " + line)
            if msg.get("type") == "lpa":
                last_lpa = msg
finally:
    try:
        lp.stdin.close()
    except OSError:
        pass
    lp.wait()
    sim.stdin.close()
    sim.wait()
code = (last_lpa or {}).get("payload", {}).get("code")
ok = lp.returncode == 0 and code == 0
if not ok:
    print("   lpac exit %s, result code %r" % (lp.returncode, code), file=sys.stderr)
sys.exit(0 if ok else 1)
PY

declare -a SUMMARY=()
FAILED=0
step() {
    local name="$1"; shift
    echo "== lpac $*"
    if timeout "$LPAC_TIMEOUT" python3 "$WORK/bridge.py" "$LPAC" "$SMDPP" "$STATE" "$@" | tee "$WORK/last.out"; then
        if [ "${PIPESTATUS[0]}" = 0 ]; then SUMMARY+=("PASS  $name"); return 0; fi
    fi
    SUMMARY+=("FAIL  $name"); FAILED=1; return 1
}
check() {
    local name="$1"; shift
    if "$@"; then SUMMARY+=("PASS  $name"); else SUMMARY+=("FAIL  $name"); FAILED=1; fi
}

step "chip info" chip info
step "profile download" profile download -s "$ADDR" -m "$MATCHING_ID"
step "notification process (install)" notification process -a -r
check "smdpp profiles list shows $ICCID installed" \
    bash -c "'$SMDPP' profiles list --data-dir '$DATA' | grep -E '^$ICCID +installed ' >/dev/null"
step "profile list" profile list
check "lpac profile list shows $ICCID" grep -q "\"iccid\":\"$ICCID\"" "$WORK/last.out"
state_is() {
    check "smdpp profiles show: $ICCID $1" bash -c "[ \"\$('$SMDPP' profiles show --data-dir '$DATA' '$ICCID' | sed -n 's/^state: *//p')\" = '$1' ]"
}
step "profile enable" profile enable "$ICCID"
step "notification process (enable)" notification process -a -r
state_is enabled
step "profile disable" profile disable "$ICCID"
step "notification process (disable)" notification process -a -r
state_is disabled
step "profile delete" profile delete "$ICCID"
step "notification process (delete)" notification process -a -r
# A profile added with `profiles add` has no type: a delete retires it.
state_is unavailable
echo "== server history of $ICCID"
"$SMDPP" profiles show --data-dir "$DATA" "$ICCID" | sed -n '/^history:/,$p'

# lpac initialises its APDU and HTTP drivers before any command, `version` too: without the
# drivers the bridge uses (the default PC/SC one is usually absent) it prints nothing. stdin
# is closed so that the stdio driver cannot wait for an answer.
LPAC_VERSION=$(LPAC_APDU=stdio LPAC_HTTP=curl timeout 10 "$LPAC" version </dev/null 2>/dev/null |
    head -c 200 | tr -d '\n' || true)
echo
echo "== lpac interop summary (${LPAC_VERSION:-lpac version unknown})"
for s in "${SUMMARY[@]}"; do echo "  $s"; done
if [ "$FAILED" = 0 ]; then
    echo "RESULT: PASS"
    exit 0
fi
echo "RESULT: FAIL (server log follows)"
tail -n 50 "$WORK/serve.log"
exit 1
