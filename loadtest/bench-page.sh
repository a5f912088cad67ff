#!/usr/bin/env bash
# What serving the waiting page costs: `GET /e/{event_id}` under wrk, for one or more gateway
# builds taken in turn (ROUNDS times each, alternating, so a noisy machine hits each alike).
# Per build and round: page loads a second, the same gateway's `/healthz` requests a second
# just after (the ratio is what to compare across machines), the CPU that the gateway and
# redis-server spent per page load (from /proc and Redis's INFO), and Redis script calls per
# page load.
#
#   loadtest/bench-page.sh                          # target/release/gateway
#   loadtest/bench-page.sh /tmp/before /tmp/after   # folders that each hold a `gateway` binary
#   ROUNDS=3 RUN_SECONDS=8 CONNECTIONS=20 loadtest/bench-page.sh /tmp/before /tmp/after
#
# Needs redis-server, redis-cli, wrk and curl. Each run gets a fresh redis-server and gateway,
# one event (admitting nobody, the default page) and rate limits off.
set -euo pipefail
# shellcheck source=loadtest/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BENCH_TAG=bench-page
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"
RUN_SECONDS="${RUN_SECONDS:-8}"
CONNECTIONS="${CONNECTIONS:-20}"
builds=("$@")
[[ ${#builds[@]} -gt 0 ]] || builds=("$BIN")
for b in "${builds[@]}"; do
  [[ -x $b/gateway ]] || die "no gateway binary in $b (cargo build --release -p gateway)"
done
need redis-server redis-cli wrk curl
bench_init bench-page

redis_cpu() {
  redis-cli -p "$1" INFO cpu | tr -d '\r' |
    awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { print s }'
}
redis_calls() {
  redis-cli -p "$1" INFO commandstats | tr -d '\r' |
    sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' | awk '{ s += $1 } END { print s + 0 }'
}
rps_of() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$1"; }

printf '%-24s %5s %9s %9s %7s %14s %12s %16s\n' build round "pages/s" "healthz/s" ratio \
  "gateway us/pg" "redis us/pg" "script calls/pg"
for round in $(seq "$ROUNDS"); do
  for build in "${builds[@]}"; do
    start_redis "redis-$round"
    BIN="$build" start_gateway "gateway-$round" --redis-url "redis://127.0.0.1:$REDIS_PORT" \
      --admin-token page-bench-admin-token --token-secret page-bench-token-secret-0123456789
    curl -sf -o /dev/null -H 'authorization: Bearer page-bench-admin-token' \
      -H 'content-type: application/json' -X PUT "$GW/admin/v1/events/bench" \
      -d '{"admit_per_second":0,"max_active":1}' || die "PUT of the event failed"
    wrk -t1 -c"$CONNECTIONS" -d2s "$GW/e/bench" >/dev/null 2>&1
    g0=$(cpu_of "$GW_PID")
    r0=$(redis_cpu "$REDIS_PORT")
    c0=$(redis_calls "$REDIS_PORT")
    wrk -t1 -c"$CONNECTIONS" -d"${RUN_SECONDS}s" "$GW/e/bench" >"$BENCH_WORK/page.out" 2>&1
    g1=$(cpu_of "$GW_PID")
    r1=$(redis_cpu "$REDIS_PORT")
    c1=$(redis_calls "$REDIS_PORT")
    if grep -q 'Non-2xx' "$BENCH_WORK/page.out"; then
      cat "$BENCH_WORK/page.out" >&2
      die "some page loads were not 200"
    fi
    reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$BENCH_WORK/page.out")
    wrk -t1 -c"$CONNECTIONS" -d"${RUN_SECONDS}s" "$GW/healthz" >"$BENCH_WORK/healthz.out" 2>&1
    awk -v b="$build" -v r="$round" -v n="$reqs" -v rps="$(rps_of "$BENCH_WORK/page.out")" \
      -v hps="$(rps_of "$BENCH_WORK/healthz.out")" -v g0="$g0" -v g1="$g1" -v r0="$r0" \
      -v r1="$r1" -v c0="$c0" -v c1="$c1" 'BEGIN {
        printf "%-24s %5d %9.0f %9.0f %7.2f %14.1f %12.2f %16.3f\n", b, r, rps, hps, rps / hps,
          (g1 - g0) * 1e6 / n, (r1 - r0) * 1e6 / n, (c1 - c0) / n }'
    stop_pid "$GW_PID"
    stop_pid "$REDIS_PID"
  done
done
