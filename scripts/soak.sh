#!/usr/bin/env bash
# A bounded soak (docs/RELIABILITY.md): KILLS times, start `smdpp serve` (SQLite,
# synchronous=full), run a load (`smdpp bench`) against it, SIGKILL the server at a random
# moment of the run; then restart it once more, let the outbox drain, and check the database
# and what a webhook receiver got:
#   - SQLite's integrity check passes;
#   - no profile was reported installed by two eUICCs, none is bound to an EID other than the
#     card that reported it, every installed profile has an EID;
#   - no order is lost: every profile the load imported is still there, in a state of the
#     lifecycle;
#   - every installed profile's `profile.installed` webhook was delivered (at least once),
#     and none was delivered for a profile that is not installed.
# Usage: scripts/soak.sh [KILLS (default 100)]; SMDPP_BIN selects the binary (default: a
# debug build, built now). Prints a summary; exits non-zero on the first broken invariant.
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS="${1:-100}"
if [ -z "${SMDPP_BIN:-}" ]; then
  cargo build -q -p smdpp
  SMDPP_BIN="$PWD/target/debug/smdpp"
fi
BIN="$SMDPP_BIN"
work="$(mktemp -d /tmp/smdpp-soak.XXXXXX)"
data="$work/data"
server_pid=""
receiver_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
  [ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null || true
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
rport="$(free_port)"

# The webhook receiver: appends each delivery's id, type and ICCID to a file, answers 200.
cat > "$work/receiver.py" <<'EOF'
import http.server, json, sys
log = open(sys.argv[2], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        log.write("%s %s %s\n" % (body.get("id"), body.get("type"), body.get("iccid")))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
python3 "$work/receiver.py" "$rport" "$work/deliveries.txt" &
receiver_pid=$!

start_server() {
  "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$data" --admin-listen off \
    --limit-initiate-per-minute 0 --limit-refusals-per-minute 0 >>"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    if curl -sk -o /dev/null "https://127.0.0.1:$port/healthz"; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { echo "soak: the server exited; see $work/server.log"; exit 1; }
    sleep 0.05
  done
  echo "soak: the server did not come up"; exit 1
}

# First start creates the data directory; then the webhook (profile.installed only).
start_server
"$BIN" webhooks add --data-dir "$data" --url "http://127.0.0.1:$rport/hook" --events installed >/dev/null
imported=1 # the demo profile, then 30 per run that reported
completed=0
for i in $(seq 1 "$KILLS"); do
  [ "$i" -gt 1 ] && start_server
  "$BIN" bench --url "https://127.0.0.1:$port" --data-dir "$data" --devices 4 --downloads 30 \
    --floor-iterations 1 --timeout-secs 5 --json >"$work/bench-$i.json" 2>>"$work/bench.log" &
  bench_pid=$!
  # A random moment of the run: 0.2 to 2.2 s after the load started (import included).
  sleep "$(python3 -c 'import random; print(round(random.uniform(0.2, 2.2), 2))')"
  kill -9 "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  wait "$bench_pid" 2>/dev/null || true
  # A run that printed its report had imported its 30 profiles (a run cut before its first
  # download completed prints none, and its import may or may not have finished).
  if [ -s "$work/bench-$i.json" ]; then
    completed=$((completed + $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["completed"])' "$work/bench-$i.json")))
    imported=$((imported + 30))
  fi
  [ $((i % 10)) -eq 0 ] && echo "soak: $i kills"
done

# The last start: the outbox delivers what is left; wait until every installed profile's
# webhook has arrived (or 60 s).
start_server
db="$data/smdpp.db"
for _ in $(seq 1 600); do
  pending="$(python3 - "$db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
print(c.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0])
EOF
)" || pending=1
  [ "$pending" = 0 ] && break
  sleep 0.1
done
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""

python3 - "$db" "$work/deliveries.txt" "$imported" "$completed" "$KILLS" <<'EOF'
import sqlite3, sys
db, deliveries, imported, completed, kills = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
c = sqlite3.connect(db)
def one(sql): return c.execute(sql).fetchone()[0]
fail = []
if one("PRAGMA integrity_check") != "ok": fail.append("integrity_check failed")
n = one("SELECT COUNT(*) FROM profiles")
if n < imported: fail.append("%d profiles, %d imported: orders lost" % (n, imported))
states = dict(c.execute("SELECT state, COUNT(*) FROM profiles GROUP BY state").fetchall())
twice = one("SELECT COUNT(*) FROM (SELECT iccid FROM notifications GROUP BY iccid HAVING COUNT(DISTINCT eid) > 1)")
if twice: fail.append("%d profiles reported by two eUICCs" % twice)
other = one("SELECT COUNT(*) FROM profiles p JOIN notifications n ON n.iccid = p.iccid WHERE n.eid <> p.eid")
if other: fail.append("%d profiles bound to another EID than their card's" % other)
noeid = one("SELECT COUNT(*) FROM profiles WHERE state = 'installed' AND eid IS NULL")
if noeid: fail.append("%d installed profiles without an EID" % noeid)
installed = {r[0] for r in c.execute("SELECT iccid FROM profiles WHERE state = 'installed'")}
got, ids, lines = set(), set(), 0
for line in open(deliveries):
    i, t, iccid = line.split()
    lines += 1
    if t == "profile.installed":
        got.add(iccid); ids.add(i)
missing = installed - got
extra = got - installed
if missing: fail.append("%d installed profiles without their webhook, e.g. %s" % (len(missing), sorted(missing)[:3]))
if extra: fail.append("%d webhooks for profiles not installed" % len(extra))
if len(installed) < completed: fail.append("%d installed < %d downloads the load completed" % (len(installed), completed))
print("soak: %d kills; %d profiles imported, %d present; states %s" % (kills, imported, n, states))
print("soak: %d downloads completed by the load, %d profiles installed (a PIR committed just before a kill counts as installed but not completed)" % (completed, len(installed)))
print("soak: %d webhook deliveries for %d events (%d repeated: at-least-once)" % (lines, len(ids), lines - len(ids)))
if fail:
    print("soak: FAILED:\n  " + "\n  ".join(fail)); sys.exit(1)
print("soak: every invariant holds")
EOF
