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
# of both and of the difference. Prints a Markdown fragment (ending in an
# `<!-- upstream-summary k=v ... -->` line for scripts) and writes it to
# $OUT_DIR/upstream-<timestamp>.md.
#
# Environment: REQUESTS (20000 per task), WARMUP (2000 per task), CONCURRENCY (1), SKIP_BUILD=1,
# OUT_DIR (loadtest/out).
set -euo pipefail
# shellcheck source=loadtest/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_script bench-upstream "$@"
: "${REQUESTS:=20000}" "${WARMUP:=2000}" "${CONCURRENCY:=1}"
need curl awk
[[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build --release -p gateway -p services -p loadtest >&2

bench_init bench-upstream
start_backends backends --event demo:1000
# The demo event admits 2 per second: the benchmark's one user is admitted within a second.
start_gateway gateway --inventory-url "$BE"

mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/upstream-$(date -u +%Y%m%dT%H%M%SZ).md"
"$BIN/upstream_latency" --gateway "127.0.0.1:$GW_PORT" --backends "$BE" \
  --event demo --requests "$REQUESTS" --warmup "$WARMUP" --concurrency "$CONCURRENCY" \
  >"$BENCH_WORK/table.md" || die "upstream_latency failed"
{
  echo "- commit \`$(commit_line)\`; $(machine_line)"
  echo "- \`loadtest/bench-upstream.sh\` with REQUESTS=$REQUESTS WARMUP=$WARMUP CONCURRENCY=$CONCURRENCY; gateway (in-memory queue store), backends (in memory) and the client share the machine"
  echo
  cat "$BENCH_WORK/table.md"
  echo
  # The table's rows, by their first cell, as p50/p90/p99/p99.9 in ms.
  awk -F' *[|] *' '
    function out(k) { printf " %s_p50_ms=%s %s_p90_ms=%s %s_p99_ms=%s %s_p999_ms=%s", k, $3, k, $4, k, $5, k, $6 }
    $2 ~ /^direct gRPC/ { out("direct") }
    $2 ~ /^HTTP through the gateway/ { out("gateway") }
    $2 ~ /per-pair difference/ { out("added_pair") }
    $2 ~ /difference of percentiles/ { out("added") }
    BEGIN { printf "<!-- upstream-summary" }
    END { print " -->" }' "$BENCH_WORK/table.md"
} | tee "$OUT"
log "wrote $OUT"
[[ -n "$(summary_get "$OUT" upstream-summary added_p99_ms)" ]] || die "no figures in the upstream_latency output"
