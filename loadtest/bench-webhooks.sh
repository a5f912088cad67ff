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
# Checks that the inbox holds exactly the webhooks sent (exit 1 if not), prints a Markdown
# fragment (ending in a `<!-- webhooks-summary k=v ... -->` line for scripts) and writes it to
# $OUT_DIR/webhooks-<timestamp>.md.
#
# Then, unless FORWARD=0, forwarding into the reference WorkerService (the release `backends`,
# in memory, with INTENTS pending payments that every webhook above reports on, so each is
# applied or answered ALREADY_PROCESSED, never refused):
# - drain: the ingest gateway had no worker, so the inbox holds the REQUESTS + WARMUP webhooks;
#   a second gateway with the worker starts, and `webhook_bench --drain-watch` times the inbox
#   from its first decrease to empty (drained/s);
# - flood: FLOOD_REQUESTS more webhooks sent to that gateway at full speed while it forwards:
#   accepted/s, forwarded/s (first POST to last forward) and the received-to-applied latency
#   p50/p99 (the gateway's webhooks_end_to_end_latency_seconds: from the envelope's received
#   time to the worker's answer, interpolated within the histogram's buckets).
# The forwarding gateway runs with WINDOW (--webhook-forward-window, default: the gateway's)
# and CONSUMERS (--webhook-consumers, default: the gateway's).
#
# Environment: REQUESTS (100000), WARMUP (5000), CONCURRENCY (64), APPENDFSYNC (everysec),
# FORWARD (1), INTENTS (1000), FLOOD_REQUESTS (50000), WINDOW, CONSUMERS, SKIP_BUILD=1,
# OUT_DIR (loadtest/out).
set -euo pipefail
# shellcheck source=loadtest/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_script bench-webhooks "$@"
: "${REQUESTS:=100000}" "${WARMUP:=5000}" "${CONCURRENCY:=64}" "${APPENDFSYNC:=everysec}"
SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
need redis-server redis-cli curl awk
FORWARD="${FORWARD:-1}"
INTENTS="${INTENTS:-1000}"
FLOOD_REQUESTS="${FLOOD_REQUESTS:-50000}"
[[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build --release -p gateway -p loadtest -p services >&2

bench_init bench-webhooks
start_redis redis --appendonly yes --appendfsync "$APPENDFSYNC"
TARGETS=()
if [[ $FORWARD == 1 ]]; then
  start_backends backends --event "bench:$INTENTS" --hold-seconds 86400
  TARGETS=(--backends "$BE" --intents "$INTENTS" --event bench)
fi
start_gateway gateway --redis-url "redis://127.0.0.1:$REDIS_PORT" --webhook-secret "$SECRET"

mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/webhooks-$(date -u +%Y%m%dT%H%M%SZ).md"
"$BIN/webhook_bench" --gateway "127.0.0.1:$GW_PORT" --secret "$SECRET" \
  --requests "$REQUESTS" --warmup "$WARMUP" --concurrency "$CONCURRENCY" "${TARGETS[@]}" \
  >"$BENCH_WORK/table.md" || die "webhook_bench failed"
STORED="$(redis-cli -p "$REDIS_PORT" xlen 'wh:{payments}:inbox')"
SENT=$((REQUESTS + WARMUP))
FWD_FLAGS=()
[[ -n ${WINDOW:-} ]] && FWD_FLAGS+=(--webhook-forward-window "$WINDOW")
[[ -n ${CONSUMERS:-} ]] && FWD_FLAGS+=(--webhook-consumers "$CONSUMERS")
if [[ $FORWARD == 1 && $STORED == "$SENT" ]]; then
  stop_pid "$GW_PID"
  "$BIN/webhook_bench" --secret "$SECRET" --drain-watch "redis://127.0.0.1:$REDIS_PORT" \
    >"$BENCH_WORK/drain.md" &
  WATCH=$!
  sleep 0.5
  start_gateway forwarder --redis-url "redis://127.0.0.1:$REDIS_PORT" --webhook-secret "$SECRET" \
    --payment-result-url "$BE" "${FWD_FLAGS[@]}"
  wait "$WATCH" || die "drain-watch failed"
  "$BIN/webhook_bench" --gateway "127.0.0.1:$GW_PORT" --metrics "127.0.0.1:$GW_METRICS_PORT" \
    --secret "$SECRET" --requests "$FLOOD_REQUESTS" --warmup 0 --concurrency "$CONCURRENCY" "${TARGETS[@]}" \
    --forwarded >"$BENCH_WORK/flood.md" || die "webhook_bench --forwarded failed"
  DEAD="$(redis-cli -p "$REDIS_PORT" xlen 'wh:{payments}:dlq')"
fi
# forward_summary: " k=v ..." of the drain and the flood for the summary line (empty if they did
# not run): drained entries, seconds and drained/s (`--drain-watch`'s row), then accepted/s,
# forwarded/s, their ratio and the received-to-applied p50/p99 (`--forwarded`'s second table),
# the dead letters, and FLOOD_REQUESTS and INTENTS.
forward_summary() {
  [[ -s $BENCH_WORK/drain.md && -s $BENCH_WORK/flood.md ]] || return 0
  awk -F' *[|] *' '$2 ~ /^[0-9]+$/ { printf " drained=%s drain_s=%s drained_per_s=%s", $2, $3, $4 }' "$BENCH_WORK/drain.md"
  awk -F' *[|] *' '/^$/ { second = 1; next }
    second && $2 ~ /^[0-9.]+$/ { printf " fwd_accepted_per_s=%s forwarded_per_s=%s fwd_ratio=%s e2e_p50_ms=%s e2e_p99_ms=%s", $2, $3, $4, $5, $6 }' \
    "$BENCH_WORK/flood.md"
  echo " dead_letters=$DEAD flood_requests=$FLOOD_REQUESTS intents=$INTENTS"
}
{
  echo "- commit \`$(commit_line)\`; $(machine_line)"
  echo "- \`loadtest/bench-webhooks.sh\` with REQUESTS=$REQUESTS WARMUP=$WARMUP CONCURRENCY=$CONCURRENCY; redis-server $(redis-server --version | awk '{print $3}') with appendonly yes, appendfsync $APPENDFSYNC; gateway, Redis and the client share the machine"
  echo
  cat "$BENCH_WORK/table.md"
  echo
  echo "- inbox entries after the run: $STORED (sent: $SENT)"
  echo
  if [[ -s $BENCH_WORK/drain.md ]]; then
    echo "Drain of that backlog into the reference WorkerService (\`backends\`, in memory; $INTENTS pending payments; forwarding flags: ${FWD_FLAGS[*]:-defaults}):"
    echo
    cat "$BENCH_WORK/drain.md"
    echo
    echo "Intake while forwarding ($FLOOD_REQUESTS webhooks, $CONCURRENCY clients; latency at the gateway when the worker answered):"
    echo
    sed -n '/^$/,$p' "$BENCH_WORK/flood.md" | sed '1d'
    echo
    echo "- dead letters: $DEAD"
    echo
  fi
  # The table's one data row: measured | concurrency | accepted/s | p50 | p90 | p99 | p99.9;
  # then the forwarding figures (none when FORWARD=0 or the intake lost webhooks).
  awk -F' *[|] *' -v stored="$STORED" -v sent="$SENT" -v fwd="$(forward_summary)" '
    $2 ~ /^[0-9]+$/ { printf "<!-- webhooks-summary accepted_per_s=%s p50_ms=%s p90_ms=%s p99_ms=%s p999_ms=%s stored=%s sent=%s%s -->\n", $4, $5, $6, $7, $8, stored, sent, fwd }' \
    "$BENCH_WORK/table.md"
} | tee "$OUT"
log "wrote $OUT"
[[ $STORED == "$SENT" ]] || die "the inbox holds $STORED webhooks, $SENT were sent"
