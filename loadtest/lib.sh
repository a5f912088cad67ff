# Shell helpers shared by the loadtest/bench*.sh scripts: sourced, never run.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are read by the scripts that source it
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Provides: bench_script (the start of every script), log/die (prefixed with $BENCH_TAG),
# other_arg (--help and unknown arguments),
# free_port, a process list killed on exit (bench_spawn, stop_pid, bench_cleanup), start_redis,
# start_gateway, wait_port, CPU accounting from /proc (cpu_of, machine_jiffies, wait_quiet),
# json_num, summary_get and the machine/commit description every report starts with
# (machine_line, commit_line). Everything listens on 127.0.0.1 only. Needs bash 4, awk, curl and
# redis-cli; Linux (/proc).

BENCH_TAG="${BENCH_TAG:-bench}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release"
# Where each bench script writes its Markdown fragment.
OUT_DIR="${OUT_DIR:-$ROOT/loadtest/out}"
# Every load generator runs on this one host: the gateway's per-address rate limits would cut
# it to 600 joins a minute, so the benchmarks turn them off unless the caller sets them.
export GATEWAY_JOIN_RATE_PER_IP="${GATEWAY_JOIN_RATE_PER_IP:-0}"
export GATEWAY_STATUS_RATE_PER_IP="${GATEWAY_STATUS_RATE_PER_IP:-0}"

log() { echo "[$BENCH_TAG] $*" >&2; }
die() {
  echo "[$BENCH_TAG] error: $*" >&2
  exit 1
}

# other_arg ARG: what a script does with an argument none of its own cases took: -h/--help
# prints the script's header comment (line 2 up to `set -euo`) and exits 0, anything else
# exits 2.
other_arg() {
  case "$1" in
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "unknown argument: $1 (try --help)" >&2
      exit 2
      ;;
  esac
}

# bench_script TAG [ARG...]: how each bench script starts once it has sourced this file: its
# messages tagged TAG, the repository's root as the working directory, and ARG (the arguments of
# a script that takes none of its own) refused unless it is -h/--help or empty.
bench_script() {
  BENCH_TAG="$1"
  cd "$ROOT" || die "cannot enter $ROOT"
  [[ -z ${2:-} ]] || other_arg "$2"
}

# need TOOL...: dies naming the first tool that is not on PATH.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool not found on PATH"
  done
}

# A loopback port nobody answers on (bounded number of tries; a lost race fails the start,
# which the start_* helpers retry).
free_port() {
  local i p
  for i in $(seq 1 100); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

# ---------------------------------------------------------------------------------------------
# processes: everything started through bench_spawn is killed by bench_cleanup (on EXIT)

PIDS=()
BENCH_WORK="${BENCH_WORK:-}"

# bench_init NAME: makes the temporary directory $BENCH_WORK and installs the exit trap.
bench_init() {
  BENCH_WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
  [[ -n $BENCH_WORK && -d $BENCH_WORK && ${BENCH_KEEP_WORK:-0} != 1 ]] && rm -rf "$BENCH_WORK"
  return 0
}

# Stops one of our processes and forgets it (so cleanup never signals a recycled pid).
stop_pid() {
  local pid keep=()
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for pid in "${PIDS[@]}"; do
    [[ $pid == "$1" ]] || keep+=("$pid")
  done
  PIDS=("${keep[@]}")
}

# wait_port PORT PID [TRIES]: waits until something accepts on 127.0.0.1:PORT (0.1 s per try,
# 100 tries by default); fails if PID exits first or it never does.
wait_port() {
  local port="$1" pid="$2" tries="${3:-100}" i
  for i in $(seq 1 "$tries"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start_redis NAME [REDIS FLAGS...]: starts a redis-server (no RDB, no AOF unless the flags say
# otherwise) in $BENCH_WORK/NAME on a free port; sets REDIS_PORT and REDIS_PID.
start_redis() {
  local name="$1" i
  shift
  mkdir -p "$BENCH_WORK/$name"
  for _ in 1 2 3; do
    REDIS_PORT="$(free_port)"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
      --protected-mode no --daemonize no --dir "$BENCH_WORK/$name" \
      --logfile "$BENCH_WORK/$name/redis.log" "$@" </dev/null >/dev/null 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    for i in $(seq 1 100); do
      if [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; then
        return 0
      fi
      kill -0 "$REDIS_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_pid "$REDIS_PID"
  done
  die "redis-server did not start (see $BENCH_WORK/$name/redis.log)"
}

# start_gateway NAME [GATEWAY FLAGS...]: starts the release gateway (RUST_LOG=warn unless set) on
# a free port with the given flags, its /metrics on another, waits for /healthz; sets GW_PORT,
# GW (base URL), GW_METRICS (the metrics listener's base URL) and GW_PID.
# Its output goes to $BENCH_WORK/NAME.log.
start_gateway() {
  local name="$1" i
  shift
  for _ in 1 2 3; do
    GW_PORT="$(free_port)"
    GW="http://127.0.0.1:$GW_PORT"
    GW_METRICS_PORT="$(free_port)"
    GW_METRICS="http://127.0.0.1:$GW_METRICS_PORT"
    RUST_LOG="${RUST_LOG:-warn}" "$BIN/gateway" --listen "127.0.0.1:$GW_PORT" \
      --metrics-listen "127.0.0.1:$GW_METRICS_PORT" "$@" \
      </dev/null >"$BENCH_WORK/$name.log" 2>&1 &
    GW_PID=$!
    PIDS+=("$GW_PID")
    for _ in $(seq 1 150); do
      curl -sf "$GW/healthz" >/dev/null 2>&1 && return 0
      kill -0 "$GW_PID" 2>/dev/null || break
      sleep 0.1
    done
    echo "gateway $name did not start on port $GW_PORT (tried again on another port up to 3 times):" >&2
    why_log "$BENCH_WORK/$name.log"
    stop_pid "$GW_PID"
  done
  die "gateway did not start (see above)"
}

# why_log FILE: why a server stopped, to stderr: the first lines of its log that name a panic or
# an error (with RUST_BACKTRACE set, the backtrace after them would fill a plain tail), then the
# log's last lines.
why_log() {
  grep -m 3 -E 'panicked|[Ee]rror' "$1" | sed 's/^/  /' >&2 || true
  echo "  its log ends:" >&2
  tail -n 10 "$1" | sed 's/^/  /' >&2
}

# start_backends NAME [BACKENDS FLAGS...]: starts the release `backends` on a free port; sets
# BE_PORT, BE (base URL) and BE_PID. Output in $BENCH_WORK/NAME.log.
start_backends() {
  local name="$1"
  shift
  for _ in 1 2 3; do
    BE_PORT="$(free_port)"
    BE="http://127.0.0.1:$BE_PORT"
    RUST_LOG="${RUST_LOG:-warn}" "$BIN/backends" --listen "127.0.0.1:$BE_PORT" "$@" \
      </dev/null >"$BENCH_WORK/$name.log" 2>&1 &
    BE_PID=$!
    PIDS+=("$BE_PID")
    wait_port "$BE_PORT" "$BE_PID" 150 && return 0
    echo "backends $name did not start on port $BE_PORT (tried again on another port up to 3 times):" >&2
    why_log "$BENCH_WORK/$name.log"
    stop_pid "$BE_PID"
  done
  die "backends did not start (see above)"
}

# ---------------------------------------------------------------------------------------------
# CPU accounting and quiet waiting

# CPU seconds (user + system) a process has used so far, from /proc/PID/stat.
cpu_of() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || {
    echo 0
    return
  }
  stat="${stat##*) }" # fields from 3 on; utime and stime are fields 14 and 15
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($12 + $13) / hz }' <<<"$stat"
}

# Busy and total jiffies of the whole machine so far: prints "busy total" from /proc/stat.
machine_jiffies() {
  awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%d %d", t - $5 - $6, t }' /proc/stat
}

# busy_pct A B: percent of one core the machine was busy between two machine_jiffies readings.
busy_pct() {
  awk -v a="$1" -v b="$2" -v n="$(nproc)" 'BEGIN {
    split(a, A, " "); split(b, B, " ")
    if (B[2] > A[2]) printf "%d", 100 * n * (B[1] - A[1]) / (B[2] - A[2]); else print 0 }'
}

# Waits, at most QUIET_WAIT seconds (default 120), until other processes leave the machine nearly
# idle (at most QUIET_BUSY percent, default 20, of one core busy over one second), so a measured
# run does not start in the middle of someone's compile. Our own servers are idle between runs.
# Sets QUIET_LAST to the last reading.
wait_quiet() {
  local start=$SECONDS a b
  while true; do
    a="$(machine_jiffies)"
    sleep 1
    b="$(machine_jiffies)"
    QUIET_LAST="$(busy_pct "$a" "$b")"
    ((QUIET_LAST <= ${QUIET_BUSY:-20})) && return 0
    if ((SECONDS - start >= ${QUIET_WAIT:-120})); then
      log "machine still busy ($QUIET_LAST% of a core), measuring anyway"
      return 0
    fi
    log "machine busy ($QUIET_LAST% of a core used by other processes), waiting"
    sleep 2
  done
}

# ---------------------------------------------------------------------------------------------
# parsing

# json_num FILE KEY: a number from the one-line JSON object in FILE (first match).
json_num() {
  sed -n "s/.*\"$2\":\(-\{0,1\}[0-9.eE+-]*\).*/\1/p" "$1" | awk 'NR == 1'
}

# summary_get FILE TAG KEY: the value of KEY in the last `<!-- TAG k=v k=v -->` line of FILE
# (empty if none; never fails, so it is safe under `set -e -o pipefail`).
summary_get() {
  [[ -r $1 ]] || return 0
  awk -v tag="<!-- $2 " -v key="$3" '
    index($0, tag) == 1 { line = $0 }
    END {
      n = split(line, w, " ")
      for (i = 1; i <= n; i++) if (index(w[i], key "=") == 1) { print substr(w[i], length(key) + 2); exit }
    }' "$1"
}

# median V...: the middle value (the mean of the two middle ones for an even count) of the
# numeric arguments (an argument may hold several values, one per line); n/a if none.
median() {
  printf '%s\n' "$@" | awk '$1 ~ /^-?[0-9.]+$/ { print $1 }' | sort -g | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "n/a"; exit }
      if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
    }'
}

# ---------------------------------------------------------------------------------------------
# the machine and the commit, for every report

commit_line() {
  local c
  c="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if ! git -C "$ROOT" diff --quiet HEAD -- . ':!loadtest/out' ':!docs/benchmarks.md' ':!docs/bench' 2>/dev/null; then
    c="$c (working tree has uncommitted changes)"
  fi
  echo "$c"
}
cpu_model() { awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo; }
mem_total() { awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo; }
machine_line() {
  echo "$(nproc) cores, $(mem_total), $(cpu_model)"
}
