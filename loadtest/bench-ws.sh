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
# fragment (ending in a `<!-- ws-summary k=v ... -->` line for scripts) and writes it to
# $OUT_DIR/ws-<timestamp>.md. Exits 1 if an expected update did not arrive.
#
# Environment: CONNECTIONS (100000; --quick: CONNECTIONS_QUICK or 10000), ROUNDS (5; --quick 3),
# PER_ROUND (100), SOURCES (5), SKIP_BUILD=1, OUT_DIR (loadtest/out).
set -euo pipefail
# shellcheck source=loadtest/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_script bench-ws
CONNECTIONS="${CONNECTIONS:-100000}"
ROUNDS="${ROUNDS:-5}"
for a in "$@"; do
  case "$a" in
    --quick)
      CONNECTIONS="${CONNECTIONS_QUICK:-10000}"
      ROUNDS=3
      ;;
    *) other_arg "$a" ;;
  esac
done
PER_ROUND="${PER_ROUND:-100}"
SOURCES="${SOURCES:-5}"
ADMIN_TOKEN="bench-admin-token"
need redis-server redis-cli curl awk

# The gateway and the client process each hold one fd per connection.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [[ "$(ulimit -n)" -lt $((CONNECTIONS + 1000)) ]]; then
  die "fd limit $(ulimit -n) (hard $(ulimit -Hn)) is too low for $CONNECTIONS connections; raise it (as root: ulimit -n) or use CONNECTIONS=$(($(ulimit -n) - 1000))"
fi
[[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build --release -p gateway -p loadtest >&2

bench_init bench-ws
start_redis redis
start_gateway gateway --redis-url "redis://127.0.0.1:$REDIS_PORT" \
  --admin-token "$ADMIN_TOKEN" --token-secret "bench-token-secret-0123456789abcdef" \
  --admission-tick-ms 3600000 --max-connections $((CONNECTIONS + 1000))

mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/ws-$(date -u +%Y%m%dT%H%M%SZ).md"
{
  echo "- commit \`$(commit_line)\`; $(machine_line)"
  echo "- \`loadtest/bench-ws.sh\` with CONNECTIONS=$CONNECTIONS ROUNDS=$ROUNDS PER_ROUND=$PER_ROUND SOURCES=$SOURCES; gateway, redis-server and the client process share the machine"
  echo
  "$BIN/ws_fanout" --gateway "127.0.0.1:$GW_PORT" --redis-url "redis://127.0.0.1:$REDIS_PORT" \
    --admin-token "$ADMIN_TOKEN" --gateway-pid "$GW_PID" --connections "$CONNECTIONS" \
    --rounds "$ROUNDS" --per-round "$PER_ROUND" --sources "$SOURCES"
} | tee "$OUT"
log "wrote $OUT"
received="$(summary_get "$OUT" ws-summary received)"
expected="$(summary_get "$OUT" ws-summary expected)"
[[ -n $received && $received == "$expected" ]] || die "updates received $received, expected $expected"
