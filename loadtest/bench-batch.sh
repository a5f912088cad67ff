#!/usr/bin/env bash
# The group commit measured: the same join wrk run against a fresh redis-server and release
# gateway for each set of gateway flags, printing joins/s, p99 and the CPU that redis-server and
# the gateway spent per join (from /proc/PID/stat). One run each: compare rows, not machines.
#
#   loadtest/bench-batch.sh                        # no batching, the defaults, in-flight 1 and 4
#   DURATION=10 loadtest/bench-batch.sh "--redis-batch-max 64"
#
# Needs target/release/gateway (cargo build --release -p gateway), redis-server, wrk, curl, bc.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-5}"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
if [ $# -eq 0 ]; then
  set -- "--redis-batch-max 1" "" "--redis-batch-in-flight 1" "--redis-batch-in-flight 4"
fi
echo "| gateway flags | joins/s | p99 | Redis µs per join | gateway µs per join |"
echo "|---|---:|---:|---:|---:|"
for flags in "$@"; do
  rp=$(free_port); gp=$(free_port); dir=$(mktemp -d)
  redis-server --port "$rp" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
  rpid=$!
  sleep 0.5
  # shellcheck disable=SC2086
  # The rate limits off: wrk sends every join from one address.
  RUST_LOG=warn GATEWAY_JOIN_RATE_PER_IP=0 GATEWAY_STATUS_RATE_PER_IP=0 GATEWAY_METRICS_LISTEN='' target/release/gateway --listen "127.0.0.1:$gp" --redis-url "redis://127.0.0.1:$rp" \
    --admin-token t --token-secret bench-token-secret-0123456789abcdef $flags >/dev/null 2>&1 &
  gpid=$!
  for _ in $(seq 50); do curl -sf "localhost:$gp/healthz" >/dev/null && break; sleep 0.1; done
  curl -sf -X PUT "localhost:$gp/admin/v1/events/bench" -H "Authorization: Bearer t" \
    -d '{"admit_per_second":0,"max_active":1}' >/dev/null
  wrk -t1 -c64 -d2s -s loadtest/wrk/join.lua "http://127.0.0.1:$gp" >/dev/null
  r0=$(cpu $rpid); g0=$(cpu $gpid)
  out=$(wrk -t1 -c64 -d"${DURATION}s" --latency -s loadtest/wrk/join.lua "http://127.0.0.1:$gp")
  r1=$(cpu $rpid); g1=$(cpu $gpid)
  n=$(echo "$out" | awk '/requests in/{print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  p99=$(echo "$out" | awk '/ 99%/{print $2}')
  # shellcheck disable=SC2016 # the backticks are Markdown
  printf '| `%s` | %s | %s | %.1f | %.1f |\n' "${flags:-defaults}" "$rps" "$p99" \
    "$(echo "($r1-$r0)*1000000/$TICK/$n" | bc -l)" "$(echo "($g1-$g0)*1000000/$TICK/$n" | bc -l)"
  kill $gpid $rpid; wait $gpid $rpid 2>/dev/null || true
  rm -rf "$dir"
done
