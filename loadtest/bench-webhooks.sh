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
# Environment: REQUESTS (100000), WARMUP (5000), CONCURRENCY (64), APPENDFSYNC (everysec),
# SKIP_BUILD=1, OUT_DIR (loadtest/out).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_TAG=bench-webhooks
# shellcheck source=loadtest/lib.sh
. "$ROOT/loadtest/lib.sh"
case "${1:-}" in
  "") ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "unknown argument: $1 (try --help)" >&2
    exit 2
    ;;
esac
REQUESTS="${REQUESTS:-100000}"
WARMUP="${WARMUP:-5000}"
CONCURRENCY="${CONCURRENCY:-64}"
APPENDFSYNC="${APPENDFSYNC:-everysec}"
OUT_DIR="${OUT_DIR:-$ROOT/loadtest/out}"
SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
need redis-server redis-cli curl awk
[[ "${SKIP_BUILD:-0}" == 1 ]] || cargo build --release -p gateway -p loadtest >&2

bench_init bench-webhooks
start_redis redis --appendonly yes --appendfsync "$APPENDFSYNC"
start_gateway gateway --redis-url "redis://127.0.0.1:$REDIS_PORT" --webhook-secret "$SECRET"

mkdir -p "$OUT_DIR"
OUT="$OUT_DIR/webhooks-$(date -u +%Y%m%dT%H%M%SZ).md"
"$BIN/webhook_bench" --gateway "127.0.0.1:$GW_PORT" --secret "$SECRET" \
  --requests "$REQUESTS" --warmup "$WARMUP" --concurrency "$CONCURRENCY" \
  >"$BENCH_WORK/table.md" || die "webhook_bench failed"
STORED="$(redis-cli -p "$REDIS_PORT" xlen 'wh:{payments}:inbox')"
SENT=$((REQUESTS + WARMUP))
{
  echo "- commit \`$(commit_line)\`; $(machine_line)"
  echo "- \`loadtest/bench-webhooks.sh\` with REQUESTS=$REQUESTS WARMUP=$WARMUP CONCURRENCY=$CONCURRENCY; redis-server $(redis-server --version | awk '{print $3}') with appendonly yes, appendfsync $APPENDFSYNC; gateway, Redis and the client share the machine"
  echo
  cat "$BENCH_WORK/table.md"
  echo
  echo "- inbox entries after the run: $STORED (sent: $SENT)"
  echo
  # The table's one data row: measured | concurrency | accepted/s | p50 | p90 | p99 | p99.9.
  awk -F' *[|] *' -v stored="$STORED" -v sent="$SENT" '
    $2 ~ /^[0-9]+$/ { printf "<!-- webhooks-summary accepted_per_s=%s p50_ms=%s p90_ms=%s p99_ms=%s p999_ms=%s stored=%s sent=%s -->\n", $4, $5, $6, $7, $8, stored, sent }' \
    "$BENCH_WORK/table.md"
} | tee "$OUT"
log "wrote $OUT"
[[ $STORED == "$SENT" ]] || die "the inbox holds $STORED webhooks, $SENT were sent"
