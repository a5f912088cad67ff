#!/usr/bin/env bash
# The benchmark suite in one command: everything on 127.0.0.1, every figure from this run.
#
#   loadtest/bench.sh              # full suite (~25 min after the build; an estimate), writes docs/benchmarks.md
#   loadtest/bench.sh --quick      # under 2 min after the build, writes loadtest/out/benchmarks-quick.md
#   loadtest/bench.sh --only queue,goose --out /tmp/b.md
#
# Parts, in this order (each starts its own redis-server / backends / gateway on free loopback
# ports and stops them when done):
#   queue     loadtest/bench-queue.sh (REPEAT=1 per run): wrk on a bare hyper server (`hello`, the
#             limit of one HTTP answer), GET /healthz, POST /api/v1/queue/join and GET
#             /api/v1/queue/status, CPU per request (Redis µs per join), joins through
#             QUEUE_GATEWAYS gateways on one Redis, Redis memory per waiting user (fill); run 1
#             also joins with QUEUE_PREFILL users waiting and fills memory at QUEUE_USERS_BIG
#   upstream  loadtest/bench-upstream.sh: the gateway's added latency over a direct gRPC call
#   webhooks  loadtest/bench-webhooks.sh: signed webhooks verified and stored per second
#   ws        loadtest/bench-ws.sh: WebSocket fan-out (RSS per connection, admission -> client)
#   goose     redis-server + backends + gateway started here, then the goose scenarios of the
#             `loadtest` binary (join_storm, waiting_room, purchase_journey, webhook_flood), each
#             with its invariants (LOADTEST_JSON); the join storm's request log becomes the plot
#             (loadtest/src/bin/plot/, an SVG next to the report: <report dir>/bench/)
# queue, upstream, webhooks and ws are repeated RUNS times and reported as medians (with every
# run's value); the ratios (joins/s / healthz/s, status/s / healthz/s, gateway / direct gRPC)
# are computed within each run, then their median is taken.
#
# The report (Markdown): machine (nproc, CPU model, memory, kernel, versions), commit and dirty
# flag, every figure with the command that produced it, the ratios, the goose figures and
# invariant verdicts, the checks, and a link to the plot. If the output file already exists and
# holds the markers <!-- bench:begin --> and <!-- bench:end -->, only the text between them is
# replaced (docs/benchmarks.md keeps its hand-written sections); otherwise the file is written
# whole. The raw fragments of every part are kept in loadtest/out/suite-<time>/.
#
# Options:
#   --quick          short runs, fewer users and connections, RUNS=1; default --out
#                    loadtest/out/benchmarks-quick.md (development runs never rewrite the docs)
#   --out FILE       where the report goes (default docs/benchmarks.md; --quick: see above)
#   --only LIST      comma-separated parts to run (queue,upstream,webhooks,ws,goose)
#   --skip-build     do not run cargo (same as SKIP_BUILD=1)
#   --lint           only check the harness's shell: bash -n on loadtest/*.sh, and shellcheck
#                    if installed; runs nothing else
#   --report-from D  run nothing: write the report again from the suite directory D of an earlier
#                    run (loadtest/out/suite-<time>), with that run's settings (and --out)
#   -h, --help       this text
#
# Environment (all optional; "full / quick" defaults):
#   RUNS=3 / 1                 repetitions of queue, upstream, webhooks and ws
#   QUEUE_DURATION=10 / 3      seconds per wrk run        QUEUE_USERS=1000000 / 20000  (fill)
#   QUEUE_GATEWAYS=2 / 2       gateways on one Redis      QUEUE_PREFILL=5000000 / 0 (run 1 only)
#   QUEUE_USERS_BIG=10000000 / ""  second memory fill, run 1 only ("" or 0: none)
#   UPSTREAM_REQUESTS=20000 / 2000 pairs                  WEBHOOK_REQUESTS=100000 / 10000
#   WS_CONNECTIONS=100000 / 1000 (capped by the fd limit) WS_ROUNDS=5 / 2
#   GOOSE_USERS=200 / 40       users per goose scenario   GOOSE_HATCH_RATE=50 / 40 started per s
#                              (waiting_room needs more users than its 100 admissions/s can
#                              serve at once, or there is no queue to measure the rate on)
#                              (goose 0.19 calls --hatch-rate --increase-rate)
#   GOOSE_RUN_TIME=30 / 6      seconds per scenario       JOIN_STORM_RUN_TIME=60 / 10
#   GOOSE_SETTLE_TIMEOUT=300 / 60  longest wait after a scenario for payments to settle and the
#                              webhook consumer to drain (LOADTEST_SETTLE_TIMEOUT_SECS): a full
#                              webhook_flood leaves a backlog that takes minutes to forward
#   GOOSE_SCENARIOS="join_storm waiting_room purchase_journey webhook_flood"
#   QUIET_WAIT=60 / 0          before each part, wait up to this many seconds for other processes
#   QUIET_BUSY=20              to use at most this % of one core (the report flags busy starts;
#                              with QUIET_WAIT=0 it only takes a half-second reading)
#   BENCH_KEEP_LOGS=1          keep the goose request logs (CSV) in loadtest/out/suite-<time>/goose
#
# Exit status: 0 if every part ran and every check and invariant held; 1 otherwise (the report
# and the last lines on stderr say which); 2 for bad arguments.
#
# Needs: cargo, redis-server, redis-cli, wrk, curl, awk, git. Linux.
set -euo pipefail
# shellcheck source=loadtest/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_script bench

# has_value OPTION WHAT ARGC: exits 2 ("OPTION needs WHAT") unless ARGC, the count of arguments
# from OPTION on, leaves a value after it.
has_value() {
  [[ $3 -ge 2 ]] || {
    echo "$1 needs $2" >&2
    exit 2
  }
}

QUICK=0
OUT=""
ONLY="queue,upstream,webhooks,ws,goose"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out)
      has_value "$1" "a file" $#
      OUT="$2"
      shift
      ;;
    --out=*) OUT="${1#--out=}" ;;
    --only)
      has_value "$1" "a list" $#
      ONLY="$2"
      shift
      ;;
    --only=*) ONLY="${1#--only=}" ;;
    --skip-build) SKIP_BUILD=1 ;;
    --lint)
      # The harness's shell, checked without running it: bash -n, and shellcheck when installed
      # (Debian: apt-get install shellcheck).
      rc=0
      for f in "$ROOT"/loadtest/*.sh; do
        bash -n "$f" || rc=1
      done
      if command -v shellcheck >/dev/null; then
        shellcheck -x -P SCRIPTDIR/.. "$ROOT"/loadtest/*.sh || rc=1
      else
        log "shellcheck not installed: bash -n only"
      fi
      [[ $rc == 0 ]] && log "shell OK: $(cd "$ROOT" && echo loadtest/*.sh)"
      exit "$rc"
      ;;
    --report-from)
      has_value "$1" "a suite directory" $#
      REPORT_FROM="$2"
      shift
      ;;
    *) other_arg "$1" ;;
  esac
  shift
done
for p in ${ONLY//,/ }; do
  case "$p" in
    queue | upstream | webhooks | ws | goose) ;;
    *)
      echo "unknown part in --only: $p (queue, upstream, webhooks, ws, goose)" >&2
      exit 2
      ;;
  esac
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }

if [[ -n ${REPORT_FROM:-} ]]; then
  [[ -f $REPORT_FROM/settings.sh ]] || die "$REPORT_FROM/settings.sh not found (not a suite directory?)"
  OUT_ASKED="$OUT"
  # shellcheck source=/dev/null
  . "$REPORT_FROM/settings.sh"
  SUITE_DIR="$(cd "$REPORT_FROM" && pwd)"
  GOOSE_DIR="$SUITE_DIR/goose"
  [[ -n $OUT_ASKED ]] && OUT="$OUT_ASKED"
  case "$OUT" in /*) ;; *) OUT="$ROOT/$OUT" ;; esac
  OUT_REL="${OUT#"$ROOT"/}"
  # shellcheck source=loadtest/bench-report.sh
  . "$ROOT/loadtest/bench-report.sh"
fi

if [[ $QUICK == 1 ]]; then
  MODE=quick
  : "${OUT:=loadtest/out/benchmarks-quick.md}"
  RUNS="${RUNS:-1}"
  QUEUE_DURATION="${QUEUE_DURATION:-3}"
  QUEUE_USERS="${QUEUE_USERS:-20000}"
  QUEUE_PREFILL="${QUEUE_PREFILL:-0}"
  QUEUE_USERS_BIG="${QUEUE_USERS_BIG:-}"
  UPSTREAM_REQUESTS="${UPSTREAM_REQUESTS:-2000}"
  WEBHOOK_REQUESTS="${WEBHOOK_REQUESTS:-10000}"
  WS_CONNECTIONS="${WS_CONNECTIONS:-1000}"
  WS_ROUNDS="${WS_ROUNDS:-2}"
  GOOSE_USERS="${GOOSE_USERS:-40}"
  GOOSE_HATCH_RATE="${GOOSE_HATCH_RATE:-40}"
  GOOSE_RUN_TIME="${GOOSE_RUN_TIME:-6}"
  GOOSE_SETTLE_TIMEOUT="${GOOSE_SETTLE_TIMEOUT:-60}"
  JOIN_STORM_RUN_TIME="${JOIN_STORM_RUN_TIME:-10}"
  QUIET_WAIT="${QUIET_WAIT:-0}"
else
  MODE=full
  : "${OUT:=docs/benchmarks.md}"
  RUNS="${RUNS:-3}"
  QUEUE_DURATION="${QUEUE_DURATION:-10}"
  QUEUE_USERS="${QUEUE_USERS:-1000000}"
  QUEUE_PREFILL="${QUEUE_PREFILL:-5000000}"
  QUEUE_USERS_BIG="${QUEUE_USERS_BIG-10000000}"
  UPSTREAM_REQUESTS="${UPSTREAM_REQUESTS:-20000}"
  WEBHOOK_REQUESTS="${WEBHOOK_REQUESTS:-100000}"
  WS_CONNECTIONS="${WS_CONNECTIONS:-100000}"
  WS_ROUNDS="${WS_ROUNDS:-5}"
  GOOSE_USERS="${GOOSE_USERS:-200}"
  GOOSE_HATCH_RATE="${GOOSE_HATCH_RATE:-50}"
  GOOSE_RUN_TIME="${GOOSE_RUN_TIME:-30}"
  GOOSE_SETTLE_TIMEOUT="${GOOSE_SETTLE_TIMEOUT:-300}"
  JOIN_STORM_RUN_TIME="${JOIN_STORM_RUN_TIME:-60}"
  QUIET_WAIT="${QUIET_WAIT:-60}"
fi
QUIET_BUSY="${QUIET_BUSY:-20}"
QUEUE_GATEWAYS="${QUEUE_GATEWAYS:-2}"
[[ $QUEUE_USERS_BIG == 0 ]] && QUEUE_USERS_BIG=""
GOOSE_SCENARIOS="${GOOSE_SCENARIOS:-join_storm waiting_room purchase_journey webhook_flood}"
for v in GOOSE_SETTLE_TIMEOUT RUNS QUEUE_DURATION QUEUE_USERS QUEUE_GATEWAYS QUEUE_PREFILL UPSTREAM_REQUESTS WEBHOOK_REQUESTS WS_CONNECTIONS \
  WS_ROUNDS GOOSE_USERS GOOSE_HATCH_RATE GOOSE_RUN_TIME JOIN_STORM_RUN_TIME QUIET_WAIT QUIET_BUSY; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -ge 0 ]] || die "$v must be a whole number"
done
((RUNS >= 1 && RUNS <= 9)) || die "RUNS must be 1..9"
need redis-server redis-cli wrk curl awk git
[[ ${SKIP_BUILD:-0} == 1 ]] || need cargo

case "$OUT" in /*) ;; *) OUT="$ROOT/$OUT" ;; esac
OUT_REL="${OUT#"$ROOT"/}"
SVG_DIR="$(dirname "$OUT")/bench"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
COMMIT_LINE="$(commit_line)"
SUITE_DIR="$ROOT/loadtest/out/suite-$STAMP"
mkdir -p "$SUITE_DIR" "$(dirname "$OUT")"
bench_init bench-suite

# ---------------------------------------------------------------------------------------------
# build

BUILD_CMD="cargo build --release -p gateway -p services -p loadtest"
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building ($BUILD_CMD)"
  $BUILD_CMD >&2 || die "build failed"
fi
for b in gateway backends fill hello ws_fanout upstream_latency webhook_bench plot; do
  [[ -x $BIN/$b ]] || die "$BIN/$b missing (run without --skip-build)"
done
SUITE_T0=$SECONDS

# ---------------------------------------------------------------------------------------------
# bookkeeping: failures, busy starts, the figures each part leaves in $SUITE_DIR

# Both lists also go to files in $SUITE_DIR, so --report-from can write the report again.
FAILURES=()
BUSY_STARTS=()
: >"$SUITE_DIR/failures"
: >"$SUITE_DIR/busy"
fail() {
  FAILURES+=("$1")
  echo "$1" >>"$SUITE_DIR/failures"
  log "FAILED: $1"
}

# before_part NAME: waits for a quiet machine and notes a start on a busy one.
before_part() {
  QUIET_LAST=0
  if [[ $QUIET_WAIT == 0 ]]; then
    local a
    a="$(machine_jiffies)"
    sleep 0.5
    QUIET_LAST="$(busy_pct "$a" "$(machine_jiffies)")"
  else
    wait_quiet
  fi
  if ((QUIET_LAST > QUIET_BUSY)); then
    BUSY_STARTS+=("$1 ($QUIET_LAST% of a core busy with other work)")
    echo "${BUSY_STARTS[-1]}" >>"$SUITE_DIR/busy"
  fi
}

# run_part NAME RUN WHY with VAR=value pairs in PART_ENV: runs loadtest/bench-NAME.sh with
# OUT_DIR=$SUITE_DIR/NAME-RUN, its stdout/stderr to .../log; a non-zero exit is a failure of the
# suite, WHY (appended to the failure's line) says what it means.
run_part() {
  local name="$1" run="$2" script="loadtest/bench-$1.sh"
  local dir="$SUITE_DIR/$name-$run"
  mkdir -p "$dir"
  before_part "$name run $run"
  log "$name, run $run of $RUNS: ${PART_ENV[*]} $script"
  local t0=$SECONDS rc=0
  env SKIP_BUILD=1 OUT_DIR="$dir" "${PART_ENV[@]}" "$script" >"$dir/log" 2>&1 || rc=$?
  echo "$((SECONDS - t0))" >"$dir/seconds"
  if [[ $rc != 0 ]]; then
    tail -n 5 "$dir/log" | sed 's/^/    /' >&2
    fail "$name run $run: $script exited non-zero$3"
  fi
}

# run_parts NAME WHY VAR=value...: the RUNS runs of run_part NAME, each with that environment.
run_parts() {
  local name="$1" why="$2" r
  shift 2
  for r in $(seq 1 "$RUNS"); do
    PART_ENV=("$@")
    run_part "$name" "$r" "$why"
  done
}

# ---------------------------------------------------------------------------------------------
# the parts

# REPEAT=1: the suite's RUNS are the repetitions. The prefilled join run and the big memory fill
# take minutes each, so only run 1 does them.
QUEUE_ENV=(REPEAT=1 DURATION="$QUEUE_DURATION" USERS="$QUEUE_USERS" GATEWAYS="$QUEUE_GATEWAYS"
  QUIET_WAIT="$QUIET_WAIT" QUIET_BUSY="$QUIET_BUSY")
[[ $QUICK == 1 ]] && QUEUE_ENV+=(WARMUP=1 NOISE_RETRIES=0 STATUS_TOKENS=500)
if want queue; then
  for r in $(seq 1 "$RUNS"); do
    PART_ENV=("${QUEUE_ENV[@]}")
    if [[ $r == 1 ]]; then
      PART_ENV+=(PREFILL="$QUEUE_PREFILL" USERS_BIG="$QUEUE_USERS_BIG")
    else
      PART_ENV+=(PREFILL=0 USERS_BIG=)
    fi
    run_part queue "$r" " (a check failed; see its report)"
  done
fi

UPSTREAM_ENV=(REQUESTS="$UPSTREAM_REQUESTS" WARMUP="$((UPSTREAM_REQUESTS / 10))" CONCURRENCY=1)
if want upstream; then
  run_parts upstream "" "${UPSTREAM_ENV[@]}"
fi

WEBHOOK_ENV=(REQUESTS="$WEBHOOK_REQUESTS" WARMUP="$((WEBHOOK_REQUESTS / 20))" CONCURRENCY=64 APPENDFSYNC=everysec)
if want webhooks; then
  run_parts webhooks " (lost webhooks or a client error)" "${WEBHOOK_ENV[@]}"
fi

# The gateway and the client each hold one descriptor per WebSocket: cap the connections at what
# this shell's hard limit allows (the report says so when it does).
WS_ASKED="$WS_CONNECTIONS"
WS_FD_HARD="$(ulimit -Hn)"
if [[ $WS_FD_HARD != unlimited ]] && ((WS_CONNECTIONS > WS_FD_HARD - 2000)); then
  WS_CONNECTIONS=$((WS_FD_HARD - 2000))
  log "ws: the fd limit is $WS_FD_HARD: $WS_CONNECTIONS connections instead of $WS_ASKED"
fi
WS_ENV=(CONNECTIONS="$WS_CONNECTIONS" ROUNDS="$WS_ROUNDS" PER_ROUND=100 SOURCES=5)
if want ws; then
  run_parts ws " (updates missing or a client error)" "${WS_ENV[@]}"
fi

# --------------------------------------------------------------------------------------------
# goose scenarios (the `loadtest` binary)

GOOSE_DIR="$SUITE_DIR/goose"
GOOSE_STATE=skipped
GOOSE_WHY=""
GOOSE_ADMIN_TOKEN="bench-admin-token"
GOOSE_TOKEN_SECRET="bench-token-secret-0123456789abcdef"
GOOSE_WEBHOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GOOSE_SEATS="${GOOSE_SEATS:-100000}"
PLOT_SVG=""
PLOT_JSON=""

# goose_args SCENARIO USERS RATE SECONDS: the arguments of one scenario's run, in GOOSE_ARGS
# (every scenario logs its requests: the report's figures come from these logs, plot --by-name;
# --no-telnet: goose's telnet controller would otherwise listen on the fixed port 5116; -q keeps
# --co-mitigation's per-request notes off the console).
goose_args() {
  GOOSE_ARGS=(--host "$GW" --scenarios "$1" --users "$2" --increase-rate "$3" --run-time "${4}s"
    --co-mitigation average --report-file "$1.html" --request-log "$1.csv" --request-format csv
    --no-print-metrics --no-telnet -q)
}

run_goose() {
  mkdir -p "$GOOSE_DIR"
  if [[ ! -x $BIN/loadtest ]]; then
    GOOSE_WHY="target/release/loadtest does not exist"
    return 0
  fi
  if ! "$BIN/loadtest" --list >"$GOOSE_DIR/list.txt" 2>&1; then
    GOOSE_WHY="target/release/loadtest --list failed (the goose scenarios are not built in yet)"
    return 0
  fi
  GOOSE_STATE=ran
  # One stack for all scenarios: Redis with the AOF on (webhooks are acknowledged after an
  # fsync-every-second write, as in production), the backends (reservation, inventory, payment
  # simulator sending signed webhooks back to the gateway) and one gateway.
  start_redis goose-redis --appendonly yes --appendfsync everysec
  local rport="$REDIS_PORT"
  # The gateway's port is needed by the backends (webhook URL) before it starts.
  local gport
  gport="$(free_port)"
  # --hold-seconds 900: webhook_flood reports on held reservations, and a full flood's backlog
  # takes minutes to forward; the default 60 s hold would expire first.
  start_backends goose-backends --redis-url "redis://127.0.0.1:$rport" --event "loadtest:$GOOSE_SEATS" \
    --webhook-url "http://127.0.0.1:$gport/webhooks/payments" --webhook-secret "$GOOSE_WEBHOOK_SECRET" \
    --sim-time-scale 0.01 --hold-seconds 900
  GW_PORT="$gport"
  GW="http://127.0.0.1:$GW_PORT"
  GW_METRICS_PORT="$(free_port)"
  GW_METRICS="http://127.0.0.1:$GW_METRICS_PORT"
  RUST_LOG="${RUST_LOG:-warn}" "$BIN/gateway" --listen "127.0.0.1:$GW_PORT" \
    --metrics-listen "127.0.0.1:$GW_METRICS_PORT" \
    --redis-url "redis://127.0.0.1:$rport" --admin-token "$GOOSE_ADMIN_TOKEN" \
    --token-secret "$GOOSE_TOKEN_SECRET" --webhook-secret "$GOOSE_WEBHOOK_SECRET" \
    --reservation-url "$BE" --inventory-url "$BE" --payment-url "$BE" \
    </dev/null >"$BENCH_WORK/goose-gateway.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  for _ in $(seq 1 150); do
    curl -sf "$GW/healthz" >/dev/null 2>&1 && break
    kill -0 "$GW_PID" 2>/dev/null || die "goose gateway exited: $(tail -n 5 "$BENCH_WORK/goose-gateway.log")"
    sleep 0.1
  done

  # >>> GOOSE SETTINGS: the `loadtest` binary reads LOADTEST_* (loadtest/README.md). The event is
  # left to it: join_storm and waiting_room make a fresh one, purchase_journey and webhook_flood
  # use `loadtest`, seeded in the backends above.
  export LOADTEST_ADMIN_TOKEN="$GOOSE_ADMIN_TOKEN" LOADTEST_WEBHOOK_SECRET="$GOOSE_WEBHOOK_SECRET" \
    LOADTEST_METRICS_URL="$GW_METRICS" \
    LOADTEST_BACKENDS_URL="$BE" LOADTEST_SETTLE_TIMEOUT_SECS="$GOOSE_SETTLE_TIMEOUT"
  # <<< GOOSE SETTINGS

  local s users hatch secs rc
  for s in $GOOSE_SCENARIOS; do
    users="$GOOSE_USERS"
    hatch="$GOOSE_HATCH_RATE"
    secs="$GOOSE_RUN_TIME"
    [[ $s == join_storm ]] && secs="$JOIN_STORM_RUN_TIME"
    goose_args "$s" "$users" "$hatch" "$secs"
    echo "target/release/loadtest ${GOOSE_ARGS[*]}" >"$GOOSE_DIR/$s.cmd"
    before_part "goose $s"
    log "goose: $s ($users users, $hatch/s, ${secs}s)"
    rc=0
    local t0=$SECONDS
    (cd "$GOOSE_DIR" && "$BIN/loadtest" "${GOOSE_ARGS[@]}") >"$GOOSE_DIR/$s.out" 2>"$GOOSE_DIR/$s.err" || rc=$?
    echo "$rc" >"$GOOSE_DIR/$s.rc"
    echo "$((SECONDS - t0))" >"$GOOSE_DIR/$s.seconds"
    grep -h '^LOADTEST_JSON ' "$GOOSE_DIR/$s.out" "$GOOSE_DIR/$s.err" | tail -n 1 | sed 's/^LOADTEST_JSON //' >"$GOOSE_DIR/$s.json" || true
    # The figures per request name, from the request log (kept after the log is deleted).
    if [[ -s $GOOSE_DIR/$s.csv ]]; then
      "$BIN/plot" --input "$GOOSE_DIR/$s.csv" --by-name >"$GOOSE_DIR/$s.table" 2>"$GOOSE_DIR/$s.table.err" ||
        fail "plot --by-name could not read the $s request log: $(tail -n 1 "$GOOSE_DIR/$s.table.err")"
    fi
    if [[ $rc != 0 ]]; then
      tail -n 5 "$GOOSE_DIR/$s.err" | sed 's/^/    /' >&2
      fail "goose $s exited $rc (an invariant failed or the run broke; see the report)"
    elif [[ ! -s $GOOSE_DIR/$s.json ]]; then
      fail "goose $s printed no LOADTEST_JSON line"
    fi
  done

  if [[ -s $GOOSE_DIR/join_storm.csv ]]; then
    PLOT_SVG="$SVG_DIR/join_storm.svg"
    if "$BIN/plot" --input "$GOOSE_DIR/join_storm.csv" --output "$PLOT_SVG" \
      --title "Join storm: throughput and latency per second" \
      --subtitle "loadtest --scenarios join_storm --users $GOOSE_USERS --increase-rate $GOOSE_HATCH_RATE --run-time ${JOIN_STORM_RUN_TIME}s ($MODE run) | commit $COMMIT_LINE | $(nproc) cores" \
      >"$GOOSE_DIR/plot.out" 2>"$GOOSE_DIR/plot.err"; then
      PLOT_JSON="$(sed -n 's/^PLOT_JSON //p' "$GOOSE_DIR/plot.out")"
    else
      fail "plot of the join storm failed: $(tail -n 2 "$GOOSE_DIR/plot.err")"
      PLOT_SVG=""
    fi
  elif [[ " $GOOSE_SCENARIOS " == *" join_storm "* ]]; then
    fail "the join storm wrote no request log: no plot"
  fi
  stop_pid "$GW_PID"
  stop_pid "$BE_PID"
  stop_pid "$REDIS_PID"
  # The request logs run to hundreds of MB in a full run: gone unless asked for.
  [[ ${BENCH_KEEP_LOGS:-0} == 1 ]] || rm -f "$GOOSE_DIR"/*.csv
}
if want goose; then
  run_goose
  [[ $GOOSE_STATE == ran ]] || log "goose: skipped: $GOOSE_WHY"
fi
SUITE_SECONDS=$((SECONDS - SUITE_T0))

# ---------------------------------------------------------------------------------------------
# the report (its inputs saved first, for --report-from)

declare -p MODE QUICK ONLY OUT RUNS QUEUE_DURATION QUEUE_USERS QUEUE_GATEWAYS QUEUE_PREFILL QUEUE_USERS_BIG UPSTREAM_REQUESTS WEBHOOK_REQUESTS \
  WS_CONNECTIONS WS_ASKED WS_FD_HARD WS_ROUNDS GOOSE_USERS GOOSE_HATCH_RATE GOOSE_RUN_TIME \
  JOIN_STORM_RUN_TIME GOOSE_SETTLE_TIMEOUT GOOSE_SCENARIOS GOOSE_SEATS GOOSE_STATE GOOSE_WHY PLOT_SVG PLOT_JSON QUIET_WAIT \
  QUIET_BUSY SUITE_SECONDS STAMP BUILD_CMD COMMIT_LINE | sed 's/^declare -[a-z-]* //' >"$SUITE_DIR/settings.sh"
# shellcheck source=loadtest/bench-report.sh
. "$ROOT/loadtest/bench-report.sh"
