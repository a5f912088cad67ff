#!/usr/bin/env bash
# What serving the waiting page costs: `GET /e/{event_id}` under wrk, for one or more gateway
# binaries taken in turn (ROUNDS times each, alternating, so a noisy machine hits each alike).
# Per binary and round: page loads a second, the same gateway's `/healthz` requests a second
# just after (the ratio is what to compare across machines), the CPU that the gateway and
# redis-server spent per page load (from /proc and Redis's INFO), and Redis script calls per
# page load.
#
#   loadtest/bench-page.sh                          # target/release/gateway
#   loadtest/bench-page.sh /tmp/gw-before /tmp/gw-after
#   ROUNDS=3 RUN_SECONDS=8 CONNECTIONS=20 loadtest/bench-page.sh A B
#
# Needs redis-server, wrk and curl. Each run gets a fresh redis-server and gateway, one event
# (admitting nobody, the default page) and rate limits off.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
RUN_SECONDS="${RUN_SECONDS:-8}"
CONNECTIONS="${CONNECTIONS:-20}"
bins=("$@")
[[ ${#bins[@]} -gt 0 ]] || bins=("${CARGO_TARGET_DIR:-target}/release/gateway")
free() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# CPU seconds a process has used (user + system), from /proc.
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
redis_cpu() {
  redis-cli -p "$1" INFO cpu | tr -d '\r' |
    awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {print s}'
}
redis_calls() {
  redis-cli -p "$1" INFO commandstats | tr -d '\r' |
    sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' | awk '{s += $1} END {print s + 0}'
}
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

printf '%-24s %5s %9s %9s %7s %14s %12s %16s\n' binary round "pages/s" "healthz/s" ratio "gateway us/pg" \
  "redis us/pg" "script calls/pg"
for round in $(seq "$ROUNDS"); do
  for bin in "${bins[@]}"; do
    rport=$(free)
    redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
      >"$dir/redis.log" 2>&1 &
    rpid=$!
    pids+=("$rpid")
    gport=$(free)
    GATEWAY_JOIN_RATE_PER_IP=0 GATEWAY_STATUS_RATE_PER_IP=0 GATEWAY_METRICS_LISTEN='' \
      RUST_LOG=warn "$bin" --listen "127.0.0.1:$gport" --redis-url "redis://127.0.0.1:$rport" \
      --admin-token page-bench-admin-token --token-secret page-bench-token-secret-0123456789 \
      >"$dir/gateway.log" 2>&1 &
    gpid=$!
    pids+=("$gpid")
    url="http://127.0.0.1:$gport"
    for _ in $(seq 300); do curl -sf "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    curl -sf -o /dev/null -H 'authorization: Bearer page-bench-admin-token' \
      -H 'content-type: application/json' -X PUT "$url/admin/v1/events/bench" \
      -d '{"admit_per_second":0,"max_active":1}' ||
      { echo "the gateway $bin did not start:" >&2; tail -n 20 "$dir/gateway.log" >&2; exit 1; }
    wrk -t1 -c"$CONNECTIONS" -d2s "$url/e/bench" >/dev/null 2>&1
    g0=$(cpu_of "$gpid")
    r0=$(redis_cpu "$rport")
    c0=$(redis_calls "$rport")
    wrk -t1 -c"$CONNECTIONS" -d"${RUN_SECONDS}s" "$url/e/bench" >"$dir/wrk.out" 2>&1
    g1=$(cpu_of "$gpid")
    r1=$(redis_cpu "$rport")
    c1=$(redis_calls "$rport")
    reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$dir/wrk.out")
    rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$dir/wrk.out")
    non2xx=$(sed -n 's/^ *Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$dir/wrk.out")
    [[ -z $non2xx ]] || { echo "$non2xx page loads were not 200:" >&2; cat "$dir/wrk.out" >&2; exit 1; }
    wrk -t1 -c"$CONNECTIONS" -d"${RUN_SECONDS}s" "$url/healthz" >"$dir/healthz.out" 2>&1
    hps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$dir/healthz.out")
    awk -v b="$(basename "$bin")" -v r="$round" -v n="$reqs" -v rps="$rps" -v hps="$hps" \
      -v g0="$g0" -v g1="$g1" -v r0="$r0" -v r1="$r1" -v c0="$c0" -v c1="$c1" 'BEGIN {
        printf "%-24s %5d %9.0f %9.0f %7.2f %14.1f %12.2f %16.3f\n", b, r, rps, hps, rps / hps,
          (g1 - g0) * 1e6 / n, (r1 - r0) * 1e6 / n, (c1 - c0) / n }'
    kill "$gpid" "$rpid" 2>/dev/null || true
    wait "$gpid" "$rpid" 2>/dev/null || true
  done
done
