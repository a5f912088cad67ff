#!/usr/bin/env bash
# WebSocket fan-out benchmark: one command, everything on loopback.
#
#   loadtest/bench-ws.sh                  # 100,000 connections
#   CONNECTIONS=10000 loadtest/bench-ws.sh
#   loadtest/bench-ws.sh --quick          # 10,000 connections, 3 rounds
#
# Starts its own redis-server and a release gateway (its own admission loop idle, so every
# admission comes from the benchmark process through Redis, as from another replica), raises the
# fd limit, then runs `ws_fanout` (loadtest/src/bin/ws_fanout.rs): N users join, N WebSockets
# open from 127.0.0.1..127.0.0.N source addresses, the gateway's RSS is read before and after,
# and ROUNDS admissions of PER_ROUND users are made two seconds apart; every client records the
# delay from the admission to the frame that tells it its new position. Prints a Markdown
# fragment and writes it to loadtest/out/ws-<timestamp>.md.
#
# Environment: CONNECTIONS (100000), ROUNDS (5), PER_ROUND (100), SOURCES (5), SKIP_BUILD=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONNECTIONS="${CONNECTIONS:-100000}"
ROUNDS="${ROUNDS:-5}"
for a in "$@"; do
  case "$a" in
    --quick) CONNECTIONS="${CONNECTIONS_QUICK:-10000}"; ROUNDS=3 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done
PER_ROUND="${PER_ROUND:-100}"
SOURCES="${SOURCES:-5}"
ADMIN_TOKEN="bench-admin-token"

# The gateway and the client process each hold one fd per connection.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [[ "$(ulimit -n)" -lt $((CONNECTIONS + 1000)) ]]; then
  echo "[bench-ws] fd limit $(ulimit -n) (hard $(ulimit -Hn)) is too low for $CONNECTIONS connections;" \
    "raise it (as root: ulimit -n) or use CONNECTIONS=$(( $(ulimit -n) - 1000 ))" >&2
  exit 1
fi
[[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build --release -p gateway -p loadtest >&2

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

RPORT="$(free_port)"
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP" --daemonize no --logfile "$TMP/redis.log" &
PIDS+=($!)
GPORT="$(free_port)"
RUST_LOG=warn target/release/gateway --listen "127.0.0.1:$GPORT" --redis-url "redis://127.0.0.1:$RPORT" \
  --admin-token "$ADMIN_TOKEN" --token-secret "bench-token-secret-0123456789abcdef" \
  --admission-tick-ms 3600000 --max-connections $((CONNECTIONS + 1000)) &
GPID=$!
PIDS+=("$GPID")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$GPORT/healthz" >/dev/null && break; sleep 0.1; done

mkdir -p loadtest/out
OUT="loadtest/out/ws-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "- commit \`$(git rev-parse --short HEAD)\`$(git diff --quiet HEAD -- . ':!loadtest/out' || echo ' (uncommitted changes)'); $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "- \`loadtest/bench-ws.sh\` with CONNECTIONS=$CONNECTIONS ROUNDS=$ROUNDS PER_ROUND=$PER_ROUND SOURCES=$SOURCES; gateway, redis-server and the client process share the machine"
  echo
  target/release/ws_fanout --gateway "127.0.0.1:$GPORT" --redis-url "redis://127.0.0.1:$RPORT" \
    --admin-token "$ADMIN_TOKEN" --gateway-pid "$GPID" --connections "$CONNECTIONS" \
    --rounds "$ROUNDS" --per-round "$PER_ROUND" --sources "$SOURCES"
} | tee "$OUT"
echo "[bench-ws] wrote $OUT" >&2
