#!/usr/bin/env bash
# Benchmark of the waiting-room core: one command, everything on loopback.
#
#   loadtest/bench-queue.sh            # 10 s per HTTP workload, 1,000,000 users for memory
#   loadtest/bench-queue.sh --quick    # 5 s per workload, 100,000 users for memory
#
# What it does:
#   1. cargo build --release -p gateway -p loadtest
#   2. starts its own redis-server (--save "" --appendonly no, temp dir) and a release gateway on
#      free loopback ports (RUST_LOG=warn), creates event "bench" with admit_per_second 0 and
#      max_active 1 (nobody is admitted, so every join stays WAITING)
#   3. with wrk --latency, each for DURATION seconds after a short join warm-up:
#        a. GET /healthz                 (HTTP baseline, no Redis)
#        b. POST /api/v1/queue/join      (a new session_id on every request: loadtest/wrk/join.lua)
#        c. GET /api/v1/queue/status     (cycling through STATUS_TOKENS waiting tokens: status.lua)
#      and the CPU time that gateway, redis-server and wrk each used during the run; it waits for
#      other processes to quieten before each run and repeats a run they disturbed (see below)
#   4. stops the gateway, starts a fresh redis-server and runs `fill` (loadtest/src/bin/fill.rs):
#      USERS unique joins straight through queue::store::RedisStore, used_memory delta / USERS
#   5. prints a Markdown fragment to stdout and writes it to loadtest/out/queue-<timestamp>.md
#      (progress goes to stderr). Exits 1 if a check failed (non-2xx or socket errors, lost joins).
#
# Environment (all optional):
#   DURATION=10          seconds per wrk run (--quick: 5)
#   USERS=1000000        users for the memory fill (--quick: 100000)
#   WRK_THREADS=1        wrk threads (wrk, gateway and redis-server share the machine's cores)
#   WRK_CONNECTIONS=64   wrk connections
#   WARMUP=2             seconds of untimed joins before the measured runs
#   STATUS_TOKENS=1000   waiting tokens created for the status run
#   QUIET_WAIT=120       before each measured run, wait up to this many seconds (0: don't wait)
#   QUIET_BUSY=20        until other processes use at most this % of one core
#   NOISE_LIMIT=25       a run during which other processes used more than this % of one core
#   NOISE_RETRIES=2      is repeated, at most this many times (the report flags a noisy last try)
#   REDIS_POOL_SIZE=4    the gateway's --redis-pool-size
#   GATEWAY_ARGS=""      extra gateway flags, e.g. "--sweep-interval-ms 60000"
#   SKIP_BUILD=1         use the existing target/release binaries
#   OUT_DIR=loadtest/out where the Markdown report goes
#
# Needs: cargo, redis-server, redis-cli, wrk, curl, awk. Linux (/proc is read for CPU times).
set -euo pipefail

QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "unknown argument: $a (try --help)" >&2
      exit 2
      ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ $QUICK == 1 ]]; then
  DURATION="${DURATION:-5}"
  USERS="${USERS:-100000}"
else
  DURATION="${DURATION:-10}"
  USERS="${USERS:-1000000}"
fi
WRK_THREADS="${WRK_THREADS:-1}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-64}"
WARMUP="${WARMUP:-2}"
STATUS_TOKENS="${STATUS_TOKENS:-1000}"
QUIET_WAIT="${QUIET_WAIT:-120}"
QUIET_BUSY="${QUIET_BUSY:-20}"
NOISE_LIMIT="${NOISE_LIMIT:-25}"
NOISE_RETRIES="${NOISE_RETRIES:-2}"
REDIS_POOL_SIZE="${REDIS_POOL_SIZE:-4}"
GATEWAY_ARGS="${GATEWAY_ARGS:-}"
OUT_DIR="${OUT_DIR:-$ROOT/loadtest/out}"
ADMIN_TOKEN="bench-admin-token"
TOKEN_SECRET="bench-token-secret-0123456789abcdef"
EVENT="bench"

BENCH_TAG=bench-queue
# shellcheck source=loadtest/lib.sh
. "$ROOT/loadtest/lib.sh"

need cargo redis-server redis-cli wrk curl awk
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 && $DURATION -le 600 ]] || die "DURATION must be 1..600"
[[ $USERS =~ ^[0-9]+$ && $USERS -ge 1 && $USERS -le 50000000 ]] || die "USERS must be 1..50000000"
for v in QUIET_WAIT QUIET_BUSY NOISE_LIMIT NOISE_RETRIES; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
[[ $STATUS_TOKENS =~ ^[0-9]+$ && $STATUS_TOKENS -ge 1 && $STATUS_TOKENS -le 100000 ]] ||
  die "STATUS_TOKENS must be 1..100000"

# ---------------------------------------------------------------------------------------------
# processes and cleanup (lib.sh: everything started is killed on exit)

bench_init bench-queue
WORK="$BENCH_WORK"

# CPU seconds used so far by this shell's finished children (wrk runs in the foreground). `times`
# must run in this shell, not in a $(...) subshell, so it writes to a file.
children_cpu() {
  times >"$WORK/times"
  awk 'NR == 2 {
    s = 0
    for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); s += p[1] * 60 + p[2] }
    printf "%.3f", s
  }' "$WORK/times"
}

# ---------------------------------------------------------------------------------------------
# build and start

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building (cargo build --release -p gateway -p loadtest)"
  cargo build --release -p gateway -p loadtest >&2
fi
GATEWAY_BIN="$BIN/gateway"
FILL_BIN="$BIN/fill"
[[ -x $GATEWAY_BIN && -x $FILL_BIN ]] || die "release binaries missing in $BIN"

start_redis redis
BENCH_REDIS_PORT="$REDIS_PORT"
BENCH_REDIS_PID="$REDIS_PID"
log "redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//') on 127.0.0.1:$BENCH_REDIS_PORT"

# shellcheck disable=SC2086 # GATEWAY_ARGS is a list of flags
start_gateway gateway --redis-url "redis://127.0.0.1:$BENCH_REDIS_PORT" \
  --admin-token "$ADMIN_TOKEN" --token-secret "$TOKEN_SECRET" \
  --redis-pool-size "$REDIS_POOL_SIZE" $GATEWAY_ARGS
log "gateway on $GW (pid $GW_PID, --redis-pool-size $REDIS_POOL_SIZE${GATEWAY_ARGS:+ $GATEWAY_ARGS})"

admin() {
  curl -s -H "authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' "$@"
}
code="$(admin -o "$WORK/put.json" -w '%{http_code}' -X PUT "$GW/admin/v1/events/$EVENT" \
  -d '{"admit_per_second":0,"max_active":1}')"
[[ $code == 201 || $code == 200 ]] || die "PUT event: HTTP $code $(cat "$WORK/put.json")"
joined_total() {
  admin "$GW/admin/v1/events/$EVENT" | sed -n 's/.*"joined_total":\([0-9]*\).*/\1/p'
}

# ---------------------------------------------------------------------------------------------
# wrk runs

WRK_ARGS=(-t "$WRK_THREADS" -c "$WRK_CONNECTIONS" --timeout 10s --latency)
RUN_ID="$(date +%s)-$RANDOM$RANDOM"

# run_wrk NAME SECONDS SCRIPT [ARGS...]: the WRK_JSON line goes to $WORK/NAME.json, wrk's text
# to $WORK/NAME.txt, and "gateway redis wrk other" CPU use to $WORK/NAME.cpu, each in percent of
# one core over the run ("other" is everything else that kept the machine busy: other processes,
# interrupts, from /proc/stat), then CPU microseconds per request of gateway, redis and wrk.
run_wrk_once() {
  local name="$1" secs="$2" script="$3"
  shift 3
  [[ $name == warmup || $QUIET_WAIT == 0 ]] || wait_quiet
  local g0 r0 w0 m0 g1 r1 w1 m1 j0 j1
  j0="$(joined_total)"
  g0="$(cpu_of "$GW_PID")"
  r0="$(cpu_of "$BENCH_REDIS_PID")"
  children_cpu >"$WORK/w0"
  m0="$(machine_jiffies)"
  wrk "${WRK_ARGS[@]}" -d "${secs}s" -s "$script" "$GW" -- "$@" >"$WORK/$name.txt" 2>&1 ||
    die "wrk $name failed: $(cat "$WORK/$name.txt")"
  g1="$(cpu_of "$GW_PID")"
  r1="$(cpu_of "$BENCH_REDIS_PID")"
  children_cpu >"$WORK/w1"
  m1="$(machine_jiffies)"
  sleep 0.2 # let the requests still in flight when wrk stopped finish
  j1="$(joined_total)"
  echo $((j1 - j0)) >"$WORK/$name.joined"
  w0="$(cat "$WORK/w0")"
  w1="$(cat "$WORK/w1")"
  grep '^WRK_JSON ' "$WORK/$name.txt" | sed 's/^WRK_JSON //' >"$WORK/$name.json"
  [[ -s "$WORK/$name.json" ]] || die "no WRK_JSON from wrk $name: $(cat "$WORK/$name.txt")"
  awk -v g0="$g0" -v g1="$g1" -v r0="$r0" -v r1="$r1" -v w0="$w0" -v w1="$w1" \
    -v m0="$m0" -v m1="$m1" -v n="$(nproc)" -v t="$(json_num "$WORK/$name.json" seconds)" \
    -v q="$(json_num "$WORK/$name.json" requests)" 'BEGIN {
    split(m0, A, " "); split(m1, B, " ")
    g = 100 * (g1 - g0) / t; r = 100 * (r1 - r0) / t; w = 100 * (w1 - w0) / t
    busy = 100 * n * (B[1] - A[1]) / (B[2] - A[2])
    o = busy - g - r - w
    # and the CPU microseconds each of gateway, redis and wrk spent per completed request
    printf "%.0f %.0f %.0f %.0f %.1f %.1f %.1f\n", g, r, w, (o > 0 ? o : 0),
      1e6 * (g1 - g0) / q, 1e6 * (r1 - r0) / q, 1e6 * (w1 - w0) / q
  }' >"$WORK/$name.cpu"
}

# run_wrk NAME SECONDS SCRIPT [ARGS...]: run_wrk_once, repeated (at most NOISE_RETRIES more times)
# while other processes took more than NOISE_LIMIT% of a core during the run. An argument
# "%unique%" becomes a fresh id on every attempt (join session prefixes must never repeat).
run_wrk() {
  local name="$1" secs="$2" script="$3" attempt a other
  shift 3
  for attempt in $(seq 0 "$NOISE_RETRIES"); do
    local args=()
    for a in "$@"; do
      [[ $a == "%unique%" ]] && a="$RUN_ID-$name-$attempt"
      args+=("$a")
    done
    run_wrk_once "$name" "$secs" "$script" "${args[@]}"
    other="$(awk '{ print $4 }' "$WORK/$name.cpu")"
    [[ $name == warmup || $other -le $NOISE_LIMIT ]] && break
    [[ $attempt == "$NOISE_RETRIES" ]] || log "$name: other processes took $other% of a core during the run; again"
  done
}

log "warm-up: ${WARMUP}s of joins"
run_wrk warmup "$WARMUP" loadtest/wrk/join.lua "%unique%" "$EVENT"

log "a. GET /healthz for ${DURATION}s"
run_wrk healthz "$DURATION" loadtest/wrk/healthz.lua

log "b. POST /api/v1/queue/join (unique sessions) for ${DURATION}s"
run_wrk join "$DURATION" loadtest/wrk/join.lua "%unique%" "$EVENT"
JOINED_DELTA="$(cat "$WORK/join.joined")"

log "c. creating $STATUS_TOKENS waiting tokens"
{
  for i in $(seq 1 "$STATUS_TOKENS"); do
    [[ $i -gt 1 ]] && echo next
    printf 'url = "%s/api/v1/queue/join"\n' "$GW"
    printf 'header = "content-type: application/json"\n'
    printf 'data = "{\\"event_id\\":\\"%s\\",\\"session_id\\":\\"status-%s-%d\\"}"\n' "$EVENT" "$RUN_ID" "$i"
    printf 'write-out = "\\n"\nsilent\n'
  done
} >"$WORK/tokens.curl"
curl -K "$WORK/tokens.curl" | sed -n 's/.*"waiting_token":"\([^"]*\)".*/\1/p' >"$WORK/tokens.txt"
TOKENS_MADE="$(wc -l <"$WORK/tokens.txt" | tr -d ' ')"
[[ $TOKENS_MADE == "$STATUS_TOKENS" ]] || die "made $TOKENS_MADE of $STATUS_TOKENS waiting tokens"
log "c. GET /api/v1/queue/status ($STATUS_TOKENS tokens) for ${DURATION}s"
run_wrk status "$DURATION" loadtest/wrk/status.lua "$WORK/tokens.txt"
SAMPLE_STATUS="$(curl -s -H "authorization: Bearer $(head -n 1 "$WORK/tokens.txt")" "$GW/api/v1/queue/status")"
QUEUE_DEPTH="$(admin "$GW/admin/v1/events/$EVENT" | sed -n 's/.*"waiting":\([0-9]*\).*/\1/p')"

# ---------------------------------------------------------------------------------------------
# memory: fill a fresh redis-server through the store, no gateway attached

log "d. memory: $USERS joins through RedisStore into a fresh redis-server"
stop_pid "$GW_PID"
stop_pid "$BENCH_REDIS_PID"
start_redis memory
"$FILL_BIN" --redis-url "redis://127.0.0.1:$REDIS_PORT" --users "$USERS" >"$WORK/fill.txt" 2>"$WORK/fill.err" ||
  die "fill failed: $(cat "$WORK/fill.txt" "$WORK/fill.err")"
grep '^FILL_JSON ' "$WORK/fill.txt" | sed 's/^FILL_JSON //' >"$WORK/fill.json"
stop_pid "$REDIS_PID"

# ---------------------------------------------------------------------------------------------
# report

j() { json_num "$WORK/$1.json" "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
num() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }
errs() {
  local n="$1"
  echo "$(j "$n" status_errors) / $(($(j "$n" connect_errors) + $(j "$n" read_errors) + $(j "$n" write_errors) + $(j "$n" timeouts)))"
}
row() {
  local label="$1" n="$2" cpu
  local g r w o gu ru wu
  read -r g r w o gu ru wu <"$WORK/$n.cpu"
  cpu="$g / $r / $w / $o | $gu / $ru / $wu"
  if [[ $o -gt $NOISE_LIMIT ]]; then NOISY+=("$label: $o%"); fi
  echo "| $label | $(num "$(j "$n" rps)") | $(j "$n" lat_p50_ms) | $(j "$n" lat_p99_ms) | $(j "$n" lat_max_ms) | $(errs "$n") | $cpu |"
}

CHECKS=()
NOISY=()
FAILED=0
check() {
  if eval "$2"; then
    CHECKS+=("- [x] $1")
  else
    CHECKS+=("- [ ] **FAILED:** $1")
    FAILED=1
  fi
}
# The conditions are single-quoted on purpose: check() evaluates them.
# shellcheck disable=SC2016,SC2001
{
JOIN_REQ="$(j join requests)"
check "join run: no non-2xx responses ($(j join status_errors)) and no socket errors" \
  '[[ $(j join status_errors) == 0 && $(j join connect_errors) == 0 && $(j join read_errors) == 0 && $(j join timeouts) == 0 ]]'
check "join run: every request took a new place (joined_total +$JOINED_DELTA for $JOIN_REQ completed requests, up to $WRK_CONNECTIONS more in flight at the end)" \
  '[[ $JOINED_DELTA -ge $JOIN_REQ && $JOINED_DELTA -le $((JOIN_REQ + WRK_CONNECTIONS)) ]]'
check "status run: no non-2xx responses ($(j status status_errors)) and no socket errors" \
  '[[ $(j status status_errors) == 0 && $(j status connect_errors) == 0 && $(j status read_errors) == 0 && $(j status timeouts) == 0 ]]'
check "status after the run still WAITING: \`$(sed 's/"expires_at":"[^"]*",//' <<<"$SAMPLE_STATUS")\`" \
  '[[ $SAMPLE_STATUS == *"\"status\":\"WAITING\""* ]]'
check "healthz run: no non-2xx responses or socket errors" \
  '[[ $(j healthz status_errors) == 0 && $(j healthz connect_errors) == 0 && $(j healthz read_errors) == 0 ]]'
check "fill: all $USERS joins created a place, $(j fill waiting) waiting" '[[ $(j fill created) == "$USERS" ]]'
}

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
CPU_MODEL="$(cpu_model)"
MEM_TOTAL="$(mem_total)"
U="$(j fill users)"
per() { awk -v b="$1" -v u="$U" 'BEGIN { printf "%.1f", b / u }'; }

mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/queue-$STAMP.md"
{
  echo "### Waiting-room benchmark, $STAMP"
  echo
  echo "- commit \`$(commit_line)\`; redis-server $(redis-server --version | awk '{print $3}' | sed 's/v=//'); $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}')"
  echo "- machine: $(nproc) cores ($CPU_MODEL), $MEM_TOTAL RAM; wrk, gateway and redis-server on the same machine, loopback"
  echo "- wrk \`-t$WRK_THREADS -c$WRK_CONNECTIONS -d${DURATION}s --latency\` (closed loop: latencies are at saturation); gateway \`--redis-pool-size $REDIS_POOL_SIZE${GATEWAY_ARGS:+ $GATEWAY_ARGS}\`, \`RUST_LOG=warn\`"
  echo "- event \`$EVENT\`: admit_per_second 0, max_active 1 (nobody admitted); ${WARMUP}s of joins as warm-up; queue depth after the runs: $QUEUE_DEPTH"
  echo
  echo "| Workload | req/s | p50 ms | p99 ms | max ms | non-2xx / socket errors | CPU % of one core: gateway / redis / wrk / other | CPU µs per request: gateway / redis / wrk |"
  echo "|---|---:|---:|---:|---:|---:|---|---|"
  row "\`GET /healthz\` (baseline)" healthz
  row "\`POST /api/v1/queue/join\`, unique sessions" join
  row "\`GET /api/v1/queue/status\`, $STATUS_TOKENS tokens" status
  echo
  echo "CPU: gateway and redis-server from /proc/PID/stat, wrk from this shell's child rusage; other = the rest of the machine's busy time in /proc/stat (other processes, interrupts). 100% = one core; the machine has $(nproc)."
  echo
  echo "- joins / healthz = **$(ratio "$(j join rps)" "$(j healthz rps)")**, status / healthz = **$(ratio "$(j status rps)" "$(j healthz rps)")** (same run)"
  echo "- memory (\`fill --users $U\` into a fresh redis-server, no gateway): **$(j fill bytes_per_user) bytes of \`used_memory\` per waiting user** ($(j fill used_before) -> $(j fill used_after) bytes); MEMORY USAGE: queue zset $(per "$(j fill q_bytes)") B, session buckets $(per "$(j fill s_bytes)") B, heartbeat buckets $(per "$(j fill h_bytes)") B per user"
  echo "- store-level joins (\`fill\`, RedisStore direct, 256 in flight, pool 4, no HTTP): $(j fill joins_per_s) joins/s"
  echo
  if [[ ${#NOISY[@]} -gt 0 ]]; then
    echo "- **noisy run:** other processes used more than $NOISE_LIMIT% of a core during: $(
      IFS=';'
      echo "${NOISY[*]}"
    )"
  fi
  echo
  printf '%s\n' "${CHECKS[@]}"
  echo
  echo "<!-- bench-summary healthz_rps=$(num "$(j healthz rps)") join_rps=$(num "$(j join rps)") join_p50_ms=$(j join lat_p50_ms) join_p99_ms=$(j join lat_p99_ms) status_rps=$(num "$(j status rps)") status_p50_ms=$(j status lat_p50_ms) status_p99_ms=$(j status lat_p99_ms) healthz_p50_ms=$(j healthz lat_p50_ms) healthz_p99_ms=$(j healthz lat_p99_ms) bytes_per_user=$(j fill bytes_per_user) fill_joins_per_s=$(j fill joins_per_s) join_cpu_us=$(awk '{ printf "%s/%s/%s", $5, $6, $7 }' "$WORK/join.cpu") healthz_cpu_us=$(awk '{ printf "%s/%s/%s", $5, $6, $7 }' "$WORK/healthz.cpu") status_cpu_us=$(awk '{ printf "%s/%s/%s", $5, $6, $7 }' "$WORK/status.cpu") noisy_runs=${#NOISY[@]} failed=$FAILED -->"
} >"$REPORT"
cat "$REPORT"
log "report written to $REPORT"
exit "$FAILED"
