#!/usr/bin/env bash
# Webhook ingestion: verified and durably stored webhooks per second, and time to 2xx.
#
#   loadtest/bench-webhooks.sh                       # 100,000 webhooks, 64 client tasks
#   REQUESTS=50000 CONCURRENCY=32 loadtest/bench-webhooks.sh
#
# Starts a redis-server on a free port with the append-only file on (`appendfsync everysec`:
# an acknowledged webhook survives a crash of the gateway at once, and of Redis or the machine
# but for at most the last second) and a release gateway with --webhook-secret and no worker
# (so only the ingest path is measured: verify the HMAC over the raw body, parse, dedup +
# XADD in one Lua script, answer 200), then runs `webhook_bench`
# (loadtest/src/bin/webhook_bench.rs): every webhook has a fresh id, so every one is stored.
# Checks that the inbox holds exactly the webhooks sent, prints a Markdown fragment and writes
# it to loadtest/out/webhooks-<timestamp>.md.
#
# Environment: REQUESTS (100000), WARMUP (5000), CONCURRENCY (64), APPENDFSYNC (everysec),
# SKIP_BUILD=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REQUESTS="${REQUESTS:-100000}"
WARMUP="${WARMUP:-5000}"
CONCURRENCY="${CONCURRENCY:-64}"
APPENDFSYNC="${APPENDFSYNC:-everysec}"
SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build --release -p gateway -p loadtest >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
DIR="$(mktemp -d)"
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT

RPORT="$(free_port)"
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync "$APPENDFSYNC" \
  --dir "$DIR" --logfile "$DIR/redis.log" --daemonize no &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
GPORT="$(free_port)"
RUST_LOG=warn target/release/gateway --listen "127.0.0.1:$GPORT" --redis-url "redis://127.0.0.1:$RPORT" \
  --webhook-secret "$SECRET" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GPORT/healthz" >/dev/null && break; sleep 0.1; done

mkdir -p loadtest/out
OUT="loadtest/out/webhooks-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "- commit \`$(git rev-parse --short HEAD)\`$(git diff --quiet HEAD -- . ':!loadtest/out' || echo ' (uncommitted changes)'); $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "- \`loadtest/bench-webhooks.sh\` with REQUESTS=$REQUESTS WARMUP=$WARMUP CONCURRENCY=$CONCURRENCY; redis-server $(redis-server --version | awk '{print $3}') with appendonly yes, appendfsync $APPENDFSYNC; gateway, Redis and the client share the machine"
  echo
  target/release/webhook_bench --gateway "127.0.0.1:$GPORT" --secret "$SECRET" \
    --requests "$REQUESTS" --warmup "$WARMUP" --concurrency "$CONCURRENCY"
  STORED="$(redis-cli -p "$RPORT" xlen 'wh:{payments}:inbox')"
  echo
  echo "- inbox entries after the run: $STORED (sent: $((REQUESTS + WARMUP)))"
} | tee "$OUT"
echo "[bench-webhooks] wrote $OUT" >&2
