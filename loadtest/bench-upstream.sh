#!/usr/bin/env bash
# The gateway's added latency on the forwarded path: one command, everything on loopback.
#
#   loadtest/bench-upstream.sh                 # 20,000 sequential pairs
#   REQUESTS=5000 CONCURRENCY=8 loadtest/bench-upstream.sh
#
# Starts a release `backends` (in memory, event `demo` with 1,000 seats) and a release gateway
# (embedded store with its `demo` event, --inventory-url pointing at the backends), then runs
# `upstream_latency` (loadtest/src/bin/upstream_latency.rs): it gets a real admission token
# from the gateway, then alternates a direct gRPC Inventory.CheckAvailability to the backends
# and `GET /api/v1/events/demo/availability` through the gateway, and reports p50/p90/p99/p99.9
# of both and of the difference. Prints a Markdown fragment and writes it to
# loadtest/out/upstream-<timestamp>.md.
#
# Environment: REQUESTS (20000 per task), WARMUP (2000 per task), CONCURRENCY (1), SKIP_BUILD=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REQUESTS="${REQUESTS:-20000}"
WARMUP="${WARMUP:-2000}"
CONCURRENCY="${CONCURRENCY:-1}"
[[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build --release -p gateway -p services -p loadtest >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

BPORT="$(free_port)"
RUST_LOG=warn target/release/backends --listen "127.0.0.1:$BPORT" --event demo:1000 &
PIDS+=($!)
GPORT="$(free_port)"
# The demo event admits 2 per second: the benchmark's one user is admitted within a second.
RUST_LOG=warn target/release/gateway --listen "127.0.0.1:$GPORT" \
  --inventory-url "http://127.0.0.1:$BPORT" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GPORT/healthz" >/dev/null && break; sleep 0.1; done
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$BPORT") 2>/dev/null && break; sleep 0.1; done

mkdir -p loadtest/out
OUT="loadtest/out/upstream-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "- commit \`$(git rev-parse --short HEAD)\`$(git diff --quiet HEAD -- . ':!loadtest/out' || echo ' (uncommitted changes)'); $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "- \`loadtest/bench-upstream.sh\` with REQUESTS=$REQUESTS WARMUP=$WARMUP CONCURRENCY=$CONCURRENCY; gateway (in-memory queue store), backends (in memory) and the client share the machine"
  echo
  target/release/upstream_latency --gateway "127.0.0.1:$GPORT" --backends "http://127.0.0.1:$BPORT" \
    --event demo --requests "$REQUESTS" --warmup "$WARMUP" --concurrency "$CONCURRENCY"
} | tee "$OUT"
echo "[bench-upstream] wrote $OUT" >&2
