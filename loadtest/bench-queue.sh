#!/usr/bin/env bash
# Benchmark of the waiting-room core: one command, everything on loopback.
#
#   loadtest/bench-queue.sh            # REPEAT=3 x 10 s per HTTP workload, 5,000,000 prefilled,
#                                      # memory at 1,000,000 and 10,000,000 users
#   loadtest/bench-queue.sh --quick    # REPEAT=1 x 5 s, no prefill, memory at 100,000 users
#
# What it does:
#   1. cargo build --release -p gateway -p loadtest, and starts `hello` (loadtest/src/bin/hello.rs):
#      a bare hyper 1.x server that answers every request with {"ok":true}, the limit of one HTTP
#      answer on this machine, kept running for the whole script
#   2. REPEAT times (each a "repetition", on a fresh stack): starts its own redis-server
#      (--save "" --appendonly no, temp dir) and a release gateway on free loopback ports
#      (RUST_LOG=warn), creates event "bench" with admit_per_second 0 and max_active 1 (nobody is
#      admitted, so every join stays WAITING), runs WARMUP seconds of joins, then wrk --latency for
#      DURATION seconds each, one right after the other:
#        a. GET /healthz on `hello`         (the bare hyper limit; it answers every path alike)
#        b. GET /healthz                    (the gateway's HTTP baseline, no Redis)
#        c. POST /api/v1/queue/join         (a new session_id on every request: wrk/join.lua)
#        d. GET /api/v1/queue/status        (cycling through STATUS_TOKENS waiting tokens: status.lua)
#        e. GET /api/v1/queue/status?hint=  (the same tokens, each with the poll_hint its join
#                                            answered: the position comes from the departure log
#                                            the gateway follows, no Redis operation per read)
#      recording the CPU time that the server (gateway, or hello for a), redis-server and wrk each
#      used during each run (/proc/PID/stat utime+stime, wrk from this shell's child rusage)
#   3. several gateways in front of one Redis: a fresh redis-server, GATEWAYS gateways on it, event
#      "bench" again, and one wrk process per gateway (same wrk settings), all joining the same event
#      for DURATION seconds at once; joins/s summed over the wrk processes
#   4. if PREFILL > 0: a fresh redis-server and gateway, event "bench", warm-up, a join run on the
#      (nearly) empty queue, then `fill --existing-event` puts PREFILL users in the event's queue
#      straight through queue::store::RedisStore, then the same join run again
#   4b. if LIMITER > 0: the same join run on three fresh stacks: the per-address join limit off,
#      on (at 1e9 a minute, so every join is counted and none refused) and on with the
#      cross-replica sync (--rate-sync-ms 250): what the limit costs per join
#   5. memory: `fill --users USERS` into a fresh redis-server, no gateway (used_memory growth /
#      USERS), and the same at USERS_BIG users if set
#   6. prints a Markdown fragment to stdout and writes it to OUT_DIR/queue-<timestamp>.md
#      (progress goes to stderr). Exits 1 if a check failed (non-2xx or socket errors, lost joins,
#      a fill that did not create every place).
#
# The figures (medians over the REPEAT repetitions where repeated; ratios are taken within each
# repetition, then their median):
#   req/s, p50/p99/max ms      wrk's own; closed loop (WRK_CONNECTIONS connections, each sending
#                              its next request when the last is answered): latencies at saturation
#   × bare hyper               the workload's req/s over `hello`'s req/s in the same repetition:
#                              how close the gateway gets to one bare HTTP answer here
#   × /healthz                 the workload's req/s over the gateway's /healthz req/s, same repetition
#   CPU µs per request         (utime+stime after - before) of the process over the wrk run, divided
#                              by the requests wrk completed in that run: server (gateway or hello),
#                              redis-server, wrk. Redis µs per join / per status read come from here
#   CPU % of one core          the same deltas over the run's wall time; "other" is the rest of the
#                              machine's busy time in /proc/stat (other processes, interrupts)
#   several gateways           joins/s summed over the GATEWAYS wrk processes; Redis µs per join
#                              (Redis CPU delta / all joins of the run) and Redis's % of a core.
#                              The machine has few cores (2 here), so GATEWAYS gateways + wrk
#                              processes saturate the CPU long before Redis: this run measures
#                              **Redis CPU per join** with several clients, not Redis's ceiling.
#                              From it: "joins/s one Redis core takes for one event" =
#                              1e6 / (Redis µs per join), ASSUMING Redis runs on a core of its own,
#                              spends all of it on that event's join script (one event = one hash
#                              slot = one Redis core, no status polls, sweeps or admissions
#                              meanwhile) and that the µs per join stays what it is at this load
#                              (at saturation Redis batches replies, so it tends to be lower)
#   prefilled joins/s          joins/s with PREFILL users already waiting, over joins/s on the
#                              same stack's (nearly) empty queue measured just before the fill
#                              (target: within 10 %, ratio >= 0.90). The gateway's idle sweep
#                              (every 30 s by default, walking the whole queue) is included when
#                              it falls inside the run, as it would in production
#   bytes per waiting user     Redis used_memory growth / users, at USERS and at USERS_BIG
#   All of it comes from one run of this script on one machine whose cores wrk, the servers and
#   Redis share (and other processes may use: see the noise handling below): the ratios are
#   within-run comparisons, not portable constants.
#
# Environment (all optional; "full / --quick" defaults):
#   REPEAT=3 / 1         repetitions of step 2 (medians reported)
#   DURATION=10 / 5      seconds per wrk run
#   USERS=1000000 / 100000   users for the memory fill
#   USERS_BIG=10000000 / unset   a second memory fill at this many users (empty or 0: none)
#   PREFILL=5000000 / 0  users put in the queue before the second join run of step 4 (0: no step 4)
#   GATEWAYS=2           gateways (and wrk processes) in step 3 (0: no step 3)
#   LIMITER=1 / 0        step 4b: what the per-address join limit costs per join (0: no step 4b)
#   WRK_THREADS=1        wrk threads (wrk, gateway and redis-server share the machine's cores)
#   WRK_CONNECTIONS=64   wrk connections (per wrk process)
#   WARMUP=2             seconds of untimed joins before the measured runs of each stack
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
# shellcheck source=loadtest/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_script bench-queue

QUICK=0
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    *) other_arg "$a" ;;
  esac
done

if [[ $QUICK == 1 ]]; then
  REPEAT="${REPEAT:-1}"
  DURATION="${DURATION:-5}"
  USERS="${USERS:-100000}"
  USERS_BIG="${USERS_BIG:-}"
  PREFILL="${PREFILL:-0}"
  LIMITER="${LIMITER:-0}"
else
  REPEAT="${REPEAT:-3}"
  DURATION="${DURATION:-10}"
  USERS="${USERS:-1000000}"
  USERS_BIG="${USERS_BIG-10000000}"
  PREFILL="${PREFILL:-5000000}"
  LIMITER="${LIMITER:-1}"
fi
[[ -z $USERS_BIG ]] && USERS_BIG=0
GATEWAYS="${GATEWAYS:-2}"
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
ADMIN_TOKEN="bench-admin-token"
TOKEN_SECRET="bench-token-secret-0123456789abcdef"
EVENT="bench"

need cargo redis-server redis-cli wrk curl awk
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 && $DURATION -le 600 ]] || die "DURATION must be 1..600"
[[ $REPEAT =~ ^[0-9]+$ && $REPEAT -ge 1 && $REPEAT -le 9 ]] || die "REPEAT must be 1..9"
[[ $USERS =~ ^[0-9]+$ && $USERS -ge 1 && $USERS -le 50000000 ]] || die "USERS must be 1..50000000"
[[ $USERS_BIG =~ ^[0-9]+$ && $USERS_BIG -le 50000000 ]] || die "USERS_BIG must be empty or 0..50000000"
[[ $PREFILL =~ ^[0-9]+$ && $PREFILL -le 50000000 ]] || die "PREFILL must be 0..50000000"
[[ $GATEWAYS =~ ^[0-9]+$ && $GATEWAYS -le 16 ]] || die "GATEWAYS must be 0..16"
for v in QUIET_WAIT QUIET_BUSY NOISE_LIMIT NOISE_RETRIES WARMUP; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number"
done
[[ $STATUS_TOKENS =~ ^[0-9]+$ && $STATUS_TOKENS -ge 1 && $STATUS_TOKENS -le 100000 ]] ||
  die "STATUS_TOKENS must be 1..100000"

# ---------------------------------------------------------------------------------------------
# processes and cleanup (lib.sh: everything started is killed on exit)

bench_init bench-queue
WORK="$BENCH_WORK"

# CPU seconds used so far by this shell's finished children (wrk runs as a child and is waited
# for). `times` must run in this shell, not in a $(...) subshell, so it writes to a file.
children_cpu() {
  times >"$WORK/times"
  awk 'NR == 2 {
    s = 0
    for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); s += p[1] * 60 + p[2] }
    printf "%.3f", s
  }' "$WORK/times"
}

# ---------------------------------------------------------------------------------------------
# build, and the bare hyper server

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building (cargo build --release -p gateway -p loadtest)"
  cargo build --release -p gateway -p loadtest >&2
fi
GATEWAY_BIN="$BIN/gateway"
FILL_BIN="$BIN/fill"
HELLO_BIN="$BIN/hello"
[[ -x $GATEWAY_BIN && -x $FILL_BIN && -x $HELLO_BIN ]] || die "release binaries missing in $BIN"
REDIS_VERSION="$(redis-server --version | awk '{print $3}' | sed 's/v=//')"

"$HELLO_BIN" 127.0.0.1:0 </dev/null >"$WORK/hello.out" 2>&1 &
HELLO_PID=$!
PIDS+=("$HELLO_PID")
for _ in $(seq 1 100); do
  grep -q '^HELLO_ADDR ' "$WORK/hello.out" && break
  kill -0 "$HELLO_PID" 2>/dev/null || die "hello exited: $(cat "$WORK/hello.out")"
  sleep 0.1
done
HELLO="http://$(sed -n 's/^HELLO_ADDR //p' "$WORK/hello.out")"
[[ $HELLO != http:// ]] || die "hello printed no address"
log "bare hyper server (hello) on $HELLO (pid $HELLO_PID)"

admin() {
  curl -s -H "authorization: Bearer $ADMIN_TOKEN" -H 'content-type: application/json' "$@"
}
# start_stack NAME: a fresh redis-server (BENCH_REDIS_PORT, BENCH_REDIS_PID) and a gateway on it
# (GW, GW_PID) with event $EVENT (admit_per_second 0, max_active 1).
start_stack() {
  start_redis "$1-redis"
  BENCH_REDIS_PORT="$REDIS_PORT"
  BENCH_REDIS_PID="$REDIS_PID"
  # shellcheck disable=SC2086 # GATEWAY_ARGS is a list of flags
  start_gateway "$1-gateway" --redis-url "redis://127.0.0.1:$BENCH_REDIS_PORT" \
    --admin-token "$ADMIN_TOKEN" --token-secret "$TOKEN_SECRET" \
    --redis-pool-size "$REDIS_POOL_SIZE" $GATEWAY_ARGS
  log "$1: redis-server $REDIS_VERSION on 127.0.0.1:$BENCH_REDIS_PORT, gateway on $GW (pid $GW_PID)"
  put_event
}
put_event() {
  local code
  code="$(admin -o "$WORK/put.json" -w '%{http_code}' -X PUT "$GW/admin/v1/events/$EVENT" \
    -d '{"admit_per_second":0,"max_active":1}')"
  [[ $code == 201 || $code == 200 ]] || die "PUT event: HTTP $code $(cat "$WORK/put.json")"
}
stop_stack() {
  stop_pid "$GW_PID"
  stop_pid "$BENCH_REDIS_PID"
}
joined_total() {
  admin "$GW/admin/v1/events/$EVENT" | sed -n 's/.*"joined_total":\([0-9]*\).*/\1/p'
}
queue_depth() { # (the JSON has no final newline, and neither would sed's output)
  local d
  d="$(admin "$GW/admin/v1/events/$EVENT" | sed -n 's/.*"waiting":\([0-9]*\).*/\1/p')"
  echo "$d"
}

# ---------------------------------------------------------------------------------------------
# wrk runs

WRK_ARGS=(-t "$WRK_THREADS" -c "$WRK_CONNECTIONS" --timeout 10s --latency)
RUN_ID="$(date +%s)-$RANDOM$RANDOM"

# cpu_line G0 G1 R0 R1 W0 W1 M0 M1 SECONDS REQUESTS: "server redis wrk other" CPU use in percent
# of one core over the run ("other" is everything else that kept the machine busy: other
# processes, interrupts, from /proc/stat), then CPU microseconds per request of server, redis, wrk.
cpu_line() {
  awk -v g0="$1" -v g1="$2" -v r0="$3" -v r1="$4" -v w0="$5" -v w1="$6" -v m0="$7" -v m1="$8" \
    -v t="$9" -v q="${10}" -v n="$(nproc)" 'BEGIN {
    split(m0, A, " "); split(m1, B, " ")
    g = 100 * (g1 - g0) / t; r = 100 * (r1 - r0) / t; w = 100 * (w1 - w0) / t
    busy = 100 * n * (B[1] - A[1]) / (B[2] - A[2])
    o = busy - g - r - w
    if (q < 1) q = 1
    printf "%.0f %.0f %.0f %.0f %.1f %.1f %.1f\n", g, r, w, (o > 0 ? o : 0),
      1e6 * (g1 - g0) / q, 1e6 * (r1 - r0) / q, 1e6 * (w1 - w0) / q
  }'
}

# run_wrk_once NAME SECONDS URL SERVER_PID SCRIPT [ARGS...]: the WRK_JSON line goes to
# $WORK/NAME.json, wrk's text to $WORK/NAME.txt, cpu_line (server = SERVER_PID, redis =
# $BENCH_REDIS_PID) to $WORK/NAME.cpu, and for join.lua runs the growth of joined_total to
# $WORK/NAME.joined.
run_wrk_once() {
  local name="$1" secs="$2" url="$3" spid="$4" script="$5"
  shift 5
  [[ $name == warmup* || $QUIET_WAIT == 0 ]] || wait_quiet
  local g0 r0 w0 m0 g1 r1 w1 m1 j0=0 j1=0 joins=0
  [[ $script == *join.lua ]] && joins=1
  [[ $joins == 1 ]] && j0="$(joined_total)"
  g0="$(cpu_of "$spid")"
  r0="$(cpu_of "$BENCH_REDIS_PID")"
  children_cpu >"$WORK/w0"
  m0="$(machine_jiffies)"
  wrk "${WRK_ARGS[@]}" -d "${secs}s" -s "$script" "$url" -- "$@" >"$WORK/$name.txt" 2>&1 ||
    die "wrk $name failed: $(cat "$WORK/$name.txt")"
  g1="$(cpu_of "$spid")"
  r1="$(cpu_of "$BENCH_REDIS_PID")"
  children_cpu >"$WORK/w1"
  m1="$(machine_jiffies)"
  if [[ $joins == 1 ]]; then
    sleep 0.2 # let the requests still in flight when wrk stopped finish
    j1="$(joined_total)"
  fi
  echo $((j1 - j0)) >"$WORK/$name.joined"
  w0="$(cat "$WORK/w0")"
  w1="$(cat "$WORK/w1")"
  grep '^WRK_JSON ' "$WORK/$name.txt" | sed 's/^WRK_JSON //' >"$WORK/$name.json"
  [[ -s "$WORK/$name.json" ]] || die "no WRK_JSON from wrk $name: $(cat "$WORK/$name.txt")"
  cpu_line "$g0" "$g1" "$r0" "$r1" "$w0" "$w1" "$m0" "$m1" \
    "$(json_num "$WORK/$name.json" seconds)" "$(json_num "$WORK/$name.json" requests)" >"$WORK/$name.cpu"
}

# run_wrk NAME SECONDS URL SERVER_PID SCRIPT [ARGS...]: run_wrk_once, repeated (at most
# NOISE_RETRIES more times) while other processes took more than NOISE_LIMIT% of a core during
# the run. An argument "%unique%" becomes a fresh id on every attempt (join session prefixes
# must never repeat).
run_wrk() {
  local name="$1" secs="$2" url="$3" spid="$4" script="$5" attempt a other
  shift 5
  for attempt in $(seq 0 "$NOISE_RETRIES"); do
    local args=()
    for a in "$@"; do
      [[ $a == "%unique%" ]] && a="$RUN_ID-$name-$attempt"
      args+=("$a")
    done
    run_wrk_once "$name" "$secs" "$url" "$spid" "$script" "${args[@]}"
    other="$(awk '{ print $4 }' "$WORK/$name.cpu")"
    [[ $name == warmup* || $other -le $NOISE_LIMIT ]] && break
    [[ $attempt == "$NOISE_RETRIES" ]] || log "$name: other processes took $other% of a core during the run; again"
  done
}

# make_tokens FILE N: N waiting tokens from joins through $GW, one a line.
make_tokens() {
  local i
  {
    for i in $(seq 1 "$2"); do
      [[ $i -gt 1 ]] && echo next
      printf 'url = "%s/api/v1/queue/join"\n' "$GW"
      printf 'header = "content-type: application/json"\n'
      printf 'data = "{\\"event_id\\":\\"%s\\",\\"session_id\\":\\"status-%s-%s-%d\\"}"\n' "$EVENT" "$RUN_ID" "$(basename "$1")" "$i"
      printf 'write-out = "\\n"\nsilent\n'
    done
  } >"$WORK/tokens.curl"
  curl -K "$WORK/tokens.curl" >"$WORK/tokens.replies"
  sed -n 's/.*"waiting_token":"\([^"]*\)".*/\1/p' "$WORK/tokens.replies" >"$1"
  # The same tokens with their joins' poll_hint: "token hint" a line (for step e).
  sed -n 's/.*"poll_hint":"\([^"]*\)".*"waiting_token":"\([^"]*\)".*/\2 \1/p' \
    "$WORK/tokens.replies" >"$1.hinted"
  local made
  made="$(wc -l <"$1" | tr -d ' ')"
  [[ $made == "$2" ]] || die "made $made of $2 waiting tokens"
}

# ---------------------------------------------------------------------------------------------
# 2. the repetitions: hello, healthz, join, status side by side on a fresh stack each

for r in $(seq 1 "$REPEAT"); do
  start_stack "rep$r"
  log "repetition $r of $REPEAT: warm-up, ${WARMUP}s of joins"
  if [[ $WARMUP -gt 0 ]]; then
    run_wrk "warmup.$r" "$WARMUP" "$GW" "$GW_PID" loadtest/wrk/join.lua "%unique%" "$EVENT"
  fi
  log "repetition $r: a. bare hyper (hello) for ${DURATION}s"
  run_wrk "hello.$r" "$DURATION" "$HELLO" "$HELLO_PID" loadtest/wrk/healthz.lua
  log "repetition $r: b. GET /healthz for ${DURATION}s"
  run_wrk "healthz.$r" "$DURATION" "$GW" "$GW_PID" loadtest/wrk/healthz.lua
  log "repetition $r: c. POST /api/v1/queue/join (unique sessions) for ${DURATION}s"
  run_wrk "join.$r" "$DURATION" "$GW" "$GW_PID" loadtest/wrk/join.lua "%unique%" "$EVENT"
  log "repetition $r: d. creating $STATUS_TOKENS waiting tokens, then GET /api/v1/queue/status for ${DURATION}s"
  make_tokens "$WORK/tokens.$r" "$STATUS_TOKENS"
  run_wrk "status.$r" "$DURATION" "$GW" "$GW_PID" loadtest/wrk/status.lua "$WORK/tokens.$r"
  curl -s -H "authorization: Bearer $(head -n 1 "$WORK/tokens.$r")" "$GW/api/v1/queue/status" >"$WORK/sample.$r"
  log "repetition $r: e. GET /api/v1/queue/status?hint= (the same tokens with their poll_hint) for ${DURATION}s"
  run_wrk "hinted.$r" "$DURATION" "$GW" "$GW_PID" loadtest/wrk/status.lua "$WORK/tokens.$r.hinted"
  queue_depth >"$WORK/depth.$r"
  stop_stack
done

# ---------------------------------------------------------------------------------------------
# 3. several gateways in front of one Redis, one wrk process per gateway, all on one event

sum_cpu() {
  local s=0 p
  for p in "$@"; do
    s="$(awk -v a="$s" -v b="$(cpu_of "$p")" 'BEGIN { printf "%.3f", a + b }')"
  done
  echo "$s"
}

# run_multi_once ATTEMPT: the GATEWAYS wrk processes at once; their WRK_JSON lines summed into
# $WORK/multi.json (requests, rps and errors summed; seconds and latencies the largest), cpu_line
# (server = all gateways together) into $WORK/multi.cpu, joined_total's growth into multi.joined.
run_multi_once() {
  local attempt="$1" i pids=() g0 r0 w0 m0 g1 r1 w1 m1 j0 j1
  [[ $QUIET_WAIT == 0 ]] || wait_quiet
  j0="$(joined_total)"
  g0="$(sum_cpu "${MULTI_PIDS[@]}")"
  r0="$(cpu_of "$BENCH_REDIS_PID")"
  children_cpu >"$WORK/w0"
  m0="$(machine_jiffies)"
  for i in "${!MULTI_URLS[@]}"; do
    wrk "${WRK_ARGS[@]}" -d "${DURATION}s" -s loadtest/wrk/join.lua "${MULTI_URLS[$i]}" \
      -- "$RUN_ID-multi-$attempt-$i" "$EVENT" >"$WORK/multi.$i.txt" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || die "wrk multi $i failed: $(cat "$WORK/multi.$i.txt")"
  done
  g1="$(sum_cpu "${MULTI_PIDS[@]}")"
  r1="$(cpu_of "$BENCH_REDIS_PID")"
  children_cpu >"$WORK/w1"
  m1="$(machine_jiffies)"
  sleep 0.2
  j1="$(joined_total)"
  echo $((j1 - j0)) >"$WORK/multi.joined"
  w0="$(cat "$WORK/w0")"
  w1="$(cat "$WORK/w1")"
  for i in "${!pids[@]}"; do
    grep '^WRK_JSON ' "$WORK/multi.$i.txt" | sed 's/^WRK_JSON //' >"$WORK/multi.$i.json"
    [[ -s "$WORK/multi.$i.json" ]] || die "no WRK_JSON from wrk multi $i: $(cat "$WORK/multi.$i.txt")"
    echo "$(json_num "$WORK/multi.$i.json" requests) $(json_num "$WORK/multi.$i.json" rps)" \
      "$(json_num "$WORK/multi.$i.json" seconds) $(json_num "$WORK/multi.$i.json" status_errors)" \
      "$(json_num "$WORK/multi.$i.json" connect_errors) $(json_num "$WORK/multi.$i.json" read_errors)" \
      "$(json_num "$WORK/multi.$i.json" write_errors) $(json_num "$WORK/multi.$i.json" timeouts)" \
      "$(json_num "$WORK/multi.$i.json" lat_p50_ms) $(json_num "$WORK/multi.$i.json" lat_p99_ms)" \
      "$(json_num "$WORK/multi.$i.json" lat_max_ms)"
  done | awk '{
      for (k = 1; k <= 8; k++) if (k != 3) s[k] += $k
      for (k = 9; k <= 11; k++) if ($k > m[k]) m[k] = $k
      if ($3 > m[3]) m[3] = $3
    }
    END {
      printf "{\"processes\":%d,\"requests\":%d,\"rps\":%.1f,\"seconds\":%.3f,\"status_errors\":%d,\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d,\"timeouts\":%d,\"lat_p50_ms\":%.3f,\"lat_p99_ms\":%.3f,\"lat_max_ms\":%.3f}\n",
        NR, s[1], s[2], m[3], s[4], s[5], s[6], s[7], s[8], m[9], m[10], m[11]
    }' >"$WORK/multi.json"
  cpu_line "$g0" "$g1" "$r0" "$r1" "$w0" "$w1" "$m0" "$m1" \
    "$(json_num "$WORK/multi.json" seconds)" "$(json_num "$WORK/multi.json" requests)" >"$WORK/multi.cpu"
}

if [[ $GATEWAYS -gt 0 ]]; then
  start_redis multi-redis
  BENCH_REDIS_PORT="$REDIS_PORT"
  BENCH_REDIS_PID="$REDIS_PID"
  MULTI_URLS=()
  MULTI_PIDS=()
  for i in $(seq 1 "$GATEWAYS"); do
    # shellcheck disable=SC2086 # GATEWAY_ARGS is a list of flags
    start_gateway "multi-gateway-$i" --redis-url "redis://127.0.0.1:$BENCH_REDIS_PORT" \
      --admin-token "$ADMIN_TOKEN" --token-secret "$TOKEN_SECRET" \
      --redis-pool-size "$REDIS_POOL_SIZE" $GATEWAY_ARGS
    MULTI_URLS+=("$GW")
    MULTI_PIDS+=("$GW_PID")
  done
  log "$GATEWAYS gateways (${MULTI_URLS[*]}) in front of one redis-server on 127.0.0.1:$BENCH_REDIS_PORT"
  GW="${MULTI_URLS[0]}"
  put_event
  for i in "${!MULTI_URLS[@]}"; do
    if [[ $WARMUP -gt 0 ]]; then
      run_wrk "warmup.multi.$i" "$WARMUP" "${MULTI_URLS[$i]}" "${MULTI_PIDS[$i]}" loadtest/wrk/join.lua "%unique%" "$EVENT"
    fi
  done
  log "e. $GATEWAYS wrk processes joining through $GATEWAYS gateways at once for ${DURATION}s"
  for attempt in $(seq 0 "$NOISE_RETRIES"); do
    run_multi_once "$attempt"
    other="$(awk '{ print $4 }' "$WORK/multi.cpu")"
    [[ $other -le $NOISE_LIMIT ]] && break
    [[ $attempt == "$NOISE_RETRIES" ]] || log "multi: other processes took $other% of a core during the run; again"
  done
  for p in "${MULTI_PIDS[@]}"; do stop_pid "$p"; done
  stop_pid "$BENCH_REDIS_PID"
fi

# ---------------------------------------------------------------------------------------------
# 4. joins with PREFILL users already waiting, against the same stack's empty queue

if [[ $PREFILL -gt 0 ]]; then
  start_stack prefill
  if [[ $WARMUP -gt 0 ]]; then
    run_wrk warmup.prefill "$WARMUP" "$GW" "$GW_PID" loadtest/wrk/join.lua "%unique%" "$EVENT"
  fi
  log "f. joins on the (nearly) empty queue for ${DURATION}s"
  run_wrk prefill-empty "$DURATION" "$GW" "$GW_PID" loadtest/wrk/join.lua "%unique%" "$EVENT"
  queue_depth >"$WORK/prefill.depth0"
  log "f. fill: $PREFILL more users into event $EVENT through RedisStore (this takes a while)"
  PREFILL_T0=$SECONDS
  "$FILL_BIN" --redis-url "redis://127.0.0.1:$BENCH_REDIS_PORT" --event "$EVENT" --existing-event \
    --users "$PREFILL" --no-breakdown --max-seconds 3600 >"$WORK/prefill-fill.txt" 2>"$WORK/prefill-fill.err" ||
    die "fill (prefill) failed: $(cat "$WORK/prefill-fill.txt" "$WORK/prefill-fill.err")"
  grep '^FILL_JSON ' "$WORK/prefill-fill.txt" | sed 's/^FILL_JSON //' >"$WORK/prefill-fill.json"
  log "f. filled in $((SECONDS - PREFILL_T0)) s; $(queue_depth) waiting; joins again for ${DURATION}s"
  queue_depth >"$WORK/prefill.depth1"
  run_wrk prefill-full "$DURATION" "$GW" "$GW_PID" loadtest/wrk/join.lua "%unique%" "$EVENT"
  stop_stack
fi

# ---------------------------------------------------------------------------------------------
# 4b. the per-address join limit's cost: the same join run on three fresh stacks, the limit off,
# on (so high that every join is counted and none refused, all of wrk's joins coming from one
# address), and on with the cross-replica sync (--rate-sync-ms 250)

if [[ $LIMITER -gt 0 ]]; then
  for v in off on sync; do
    case $v in
      off) lim=0 sync=0 ;;
      on) lim=1000000000 sync=0 ;;
      sync) lim=1000000000 sync=250 ;;
    esac
    GATEWAY_JOIN_RATE_PER_IP=$lim GATEWAY_RATE_SYNC_MS=$sync start_stack "limiter-$v"
    if [[ $WARMUP -gt 0 ]]; then
      run_wrk "warmup.limiter-$v" "$WARMUP" "$GW" "$GW_PID" loadtest/wrk/join.lua "%unique%" "$EVENT"
    fi
    log "h. joins with the per-address limit $v for ${DURATION}s"
    run_wrk "limiter-$v" "$DURATION" "$GW" "$GW_PID" loadtest/wrk/join.lua "%unique%" "$EVENT"
    stop_stack
  done
fi

# ---------------------------------------------------------------------------------------------
# 5. memory: fill a fresh redis-server through the store, no gateway attached

# fill_memory NAME N: `fill --users N` into a fresh redis-server; FILL_JSON into $WORK/NAME.json.
fill_memory() {
  log "g. memory: $2 joins through RedisStore into a fresh redis-server"
  start_redis "$1"
  "$FILL_BIN" --redis-url "redis://127.0.0.1:$REDIS_PORT" --users "$2" --max-seconds 3600 \
    >"$WORK/$1.txt" 2>"$WORK/$1.err" || die "fill failed: $(cat "$WORK/$1.txt" "$WORK/$1.err")"
  grep '^FILL_JSON ' "$WORK/$1.txt" | sed 's/^FILL_JSON //' >"$WORK/$1.json"
  stop_pid "$REDIS_PID"
}
fill_memory fill "$USERS"
if [[ $USERS_BIG -gt 0 ]]; then
  fill_memory fill-big "$USERS_BIG"
fi

# ---------------------------------------------------------------------------------------------
# 6. the checks and the report (exits 1 if a check failed)

# shellcheck source=loadtest/bench-queue-report.sh
. "$ROOT/loadtest/bench-queue-report.sh"
