#!/usr/bin/env bash
# Instructions redis-server executes per join, counted by valgrind's callgrind: unlike CPU time,
# the count is the same from run to run whatever else the machine is doing, so a change to the
# Lua scripts can be compared on this noisy 2-core VM in one run each. It counts instructions,
# not cache misses (a sorted-set insert into a large queue costs more time than its count says).
#
#   loadtest/redis-instructions.sh                    # 20,000 joins in batches of 20
#   USERS=25600 BATCH=64 loadtest/redis-instructions.sh
#
# Runs `fill` (target/release/fill, or $FILL) against a fresh redis-server ($REDIS_SERVER) under
# callgrind, counting from the fill's first call to its last (not the server's start-up),
# and prints instructions per join. Needs valgrind (callgrind_control) and redis-cli.
set -euo pipefail
cd "$(dirname "$0")/.."
USERS="${USERS:-20000}"
BATCH="${BATCH:-20}"
FILL="${FILL:-${CARGO_TARGET_DIR:-target}/release/fill}"
REDIS_SERVER="${REDIS_SERVER:-redis-server}"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
dir=$(mktemp -d)
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.out" \
  "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  >"$dir/valgrind.log" 2>&1 &
vpid=$!
for _ in $(seq 120); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.5; done
callgrind_control --instr=on "$vpid" >/dev/null 2>&1
"$FILL" --redis-url "redis://127.0.0.1:$port" --users "$USERS" --batch "$BATCH" --concurrency 4 \
  --max-active 1 --no-breakdown >"$dir/fill.out" 2>&1
callgrind_control --instr=off "$vpid" >/dev/null 2>&1
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait "$vpid" || true
total=$(awk '/^totals:/ {print $2; exit}' "$dir/cg.out")
echo "redis-server: $total instructions for $USERS joins in batches of $BATCH: $((total / USERS)) a join"
