#!/usr/bin/env bash
# Join-to-READY latency with capacity free (issue 15): with a free slot and a token in the
# bucket a join answers READY in its own reply, so join-to-READY is one join's latency. One
# client on one keep-alive connection sends N sequential joins of fresh sessions to a release
# gateway over a real redis-server; /healthz is timed the same way in the same run, as the
# floor of one HTTP answer on this machine. Prints p50 and p99 in milliseconds.
#   SKIP_BUILD=1 N=2000 loadtest/bench-ready.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
TARGET=${CARGO_TARGET_DIR:-target}
PROFILE=${PROFILE:-release}
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --locked -p gateway --bin gateway
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RP=$(free_port)
GP=$(free_port)
tmp=$(mktemp -d)
redis-server --port "$RP" --save "" --appendonly no --dir "$tmp" --daemonize no \
  >"$tmp/redis.log" 2>&1 </dev/null &
rpid=$!
cleanup() { kill "${gpid:-}" "$rpid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$TARGET/$PROFILE/gateway" --listen "127.0.0.1:$GP" --redis-url "redis://127.0.0.1:$RP" \
  --admin-token bench-admin --join-rate-per-ip 0 --status-rate-per-ip 0 \
  >"$tmp/gw.log" 2>&1 </dev/null &
gpid=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$GP/healthz" >/dev/null && break; sleep 0.1; done
curl -sf -X PUT "127.0.0.1:$GP/admin/v1/events/instant" -H 'authorization: Bearer bench-admin' \
  -H 'content-type: application/json' \
  -d '{"admit_per_second":100000,"max_active":1000000}' >/dev/null
sleep 1.1 # the bucket fills: one second of admissions
python3 - "$GP" "$N" <<'PY'
import http.client, json, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
def timed(method, path, body=None):
    t = time.perf_counter()
    c.request(method, path, body=body, headers={"content-type": "application/json"})
    r = c.getresponse()
    data = r.read()
    return (time.perf_counter() - t) * 1000, r.status, data
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]
health = [timed("GET", "/healthz")[0] for _ in range(n)]
joins, answers = [], {}
for i in range(n):
    ms, code, data = timed("POST", "/api/v1/queue/join",
                           json.dumps({"event_id": "instant", "session_id": f"s{i}"}))
    s = json.loads(data).get("status") if code in (200, 201) else f"HTTP {code}"
    answers[s] = answers.get(s, 0) + 1
    joins.append(ms)
print(f"joins: {n}, answers: {answers}")
print(f"join to READY  p50 {pct(joins, .5):.3f} ms  p99 {pct(joins, .99):.3f} ms")
print(f"/healthz       p50 {pct(health, .5):.3f} ms  p99 {pct(health, .99):.3f} ms")
print(f"ratio of medians (join / healthz) {pct(joins, .5) / pct(health, .5):.2f}")
PY
