#!/usr/bin/env bash
# Instructions the gateway (or the bare hyper server) executes per request, counted by valgrind's
# callgrind over a wrk run: unlike CPU time the count hardly moves from run to run, so a change
# to the request path can be compared on this noisy 2-core VM in one run each. User space only
# (the kernel's socket work is not counted), and valgrind hides SHA-NI, so SHA-256 counts as its
# portable code: compare joins only with joins.
#
#   loadtest/gateway-instructions.sh              # GET /healthz of target/release/gateway
#   MODE=hello loadtest/gateway-instructions.sh   # the bare hyper server (`hello`)
#   MODE=join loadtest/gateway-instructions.sh    # POST /api/v1/queue/join, a new session each
#   MODE=status loadtest/gateway-instructions.sh  # GET /api/v1/queue/status, 200 waiting tokens
#
# The gateway runs against a fresh redis-server with one event, rate limits off. wrk warms it
# for WARMUP seconds (3), then counts for RUN_SECONDS (8; callgrind_control --instr=on/off).
# Prints instructions per request; KEEP=DIR keeps the callgrind file (for callgrind_annotate).
# Needs valgrind, wrk and redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${MODE:-healthz}"
SECONDS_RUN="${RUN_SECONDS:-8}"
WARMUP="${WARMUP:-3}"
BIN="${CARGO_TARGET_DIR:-target}/release"
free() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
if [[ $MODE == hello ]]; then
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.out" \
    "$BIN/hello" 127.0.0.1:0 >"$dir/hello.out" 2>"$dir/valgrind.log" &
  vpid=$!
  pids+=("$vpid")
  for _ in $(seq 200); do grep -q '^HELLO_ADDR ' "$dir/hello.out" && break; sleep 0.2; done
  url="http://$(sed -n 's/^HELLO_ADDR //p' "$dir/hello.out")"
  script=loadtest/wrk/healthz.lua
else
  rport=$(free)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    >"$dir/redis.log" 2>&1 &
  pids+=("$!")
  gport=$(free)
  GATEWAY_JOIN_RATE_PER_IP=0 GATEWAY_STATUS_RATE_PER_IP=0 GATEWAY_METRICS_LISTEN='' RUST_LOG=warn \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.out" \
    "$BIN/gateway" --listen "127.0.0.1:$gport" --redis-url "redis://127.0.0.1:$rport" \
    --admin-token instructions-admin-token --token-secret instructions-token-secret-0123456789 \
    >"$dir/gateway.log" 2>&1 &
  vpid=$!
  pids+=("$vpid")
  url="http://127.0.0.1:$gport"
  for _ in $(seq 300); do curl -sf "$url/healthz" >/dev/null 2>&1 && break; sleep 0.3; done
  curl -sf -o /dev/null -H 'authorization: Bearer instructions-admin-token' \
    -H 'content-type: application/json' -X PUT "$url/admin/v1/events/bench" \
    -d '{"admit_per_second":0,"max_active":1}'
  script="loadtest/wrk/$MODE.lua"
fi
[[ -f $script ]] || { echo "no wrk script $script" >&2; exit 1; }
# wrk's script arguments: join.lua takes a session prefix and the event, status.lua a file of
# waiting tokens (here those of 200 joins).
warm_args=("warm-$RANDOM" bench)
run_args=("run-$RANDOM" bench)
if [[ $MODE == status ]]; then
  for i in $(seq 200); do
    curl -s -X POST "$url/api/v1/queue/join" -H 'content-type: application/json' \
      -d "{\"event_id\":\"bench\",\"session_id\":\"instructions-$i\"}"
    echo
  done | sed -n 's/.*"waiting_token":"\([^"]*\)".*/\1/p' >"$dir/tokens"
  [[ -s $dir/tokens ]] || { echo "no waiting tokens: the joins failed" >&2; exit 1; }
  warm_args=("$dir/tokens")
  run_args=("$dir/tokens")
fi
wrk -t1 -c20 -d"${WARMUP}s" -s "$script" "$url" -- "${warm_args[@]}" >/dev/null 2>&1
callgrind_control --zero "$vpid" >/dev/null 2>&1
callgrind_control --instr=on "$vpid" >/dev/null 2>&1
wrk -t1 -c20 -d"${SECONDS_RUN}s" -s "$script" "$url" -- "${run_args[@]}" >"$dir/wrk.out" 2>&1
callgrind_control --instr=off "$vpid" >/dev/null 2>&1
callgrind_control --dump "$vpid" >/dev/null 2>&1
sleep 1
requests=$(grep -o '[0-9]* requests in' "$dir/wrk.out" | awk '{print $1}')
errors=$(sed -n 's/.*Non-2xx or 3xx responses: //p' "$dir/wrk.out")
file=$(ls -t "$dir"/cg.out* | head -1)
total=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); t = $1} END {print t}')
if [[ -n ${KEEP:-} ]]; then cp "$file" "$KEEP/"; fi
echo "$MODE: $total instructions for $requests requests: $((total / requests)) a request${errors:+ ($errors non-2xx: not a fair count)}"
