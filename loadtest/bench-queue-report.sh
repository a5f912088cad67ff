# The report of loadtest/bench-queue.sh: sourced by it once every run is done, never run alone.
# Reads the wrk, CPU and fill results in $WORK, runs the checks, prints the Markdown fragment
# (ending in the `<!-- bench-summary k=v ... -->` line that bench-report.sh reads), writes it to
# $OUT_DIR/queue-<time>.md and exits 1 if a check failed.
# shellcheck shell=bash
# shellcheck disable=SC2153,SC2154 # WORK, REPEAT, GATEWAYS, ... are set by bench-queue.sh

j() { json_num "$WORK/$1.json" "$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
num() { awk -v a="$1" 'BEGIN { if (a == "n/a" || a == "") print "n/a"; else printf "%.0f", a }'; }
dec() { awk -v a="$1" -v d="$2" 'BEGIN { if (a == "n/a" || a == "") print "n/a"; else printf "%.*f", d, a }'; }
reps() { seq 1 "$REPEAT"; }
# med_j W KEY: the median over the repetitions of KEY in W.r.json (latencies: 3 decimals).
med_j() {
  local r v=()
  for r in $(reps); do v+=("$(j "$1.$r" "$2")"); done
  case "$2" in
    lat_*) dec "$(median "${v[@]}")" 3 ;;
    *) median "${v[@]}" ;;
  esac
}
# med_cpu W COLUMN: the median over the repetitions of a column of W.r.cpu (cpu_line's order:
# 1-4 % of a core server/redis/wrk/other, 5-7 µs per request server/redis/wrk).
med_cpu() {
  local r v=()
  for r in $(reps); do v+=("$(awk -v c="$2" '{ print $c }' "$WORK/$1.$r.cpu")"); done
  median "${v[@]}"
}
# med_ratio A B: the median over the repetitions of A's req/s over B's, each within one repetition.
med_ratio() {
  local r v=()
  for r in $(reps); do v+=("$(awk -v a="$(j "$1.$r" rps)" -v b="$(j "$2.$r" rps)" 'BEGIN { if (b > 0) printf "%.4f", a / b }')"); done
  median "${v[@]}"
}
each_rps() {
  local r v=()
  for r in $(reps); do v+=("$(num "$(j "$1.$r" rps)")"); done
  local IFS=/
  echo "${v[*]}"
}
errs_of() { echo "$(j "$1" status_errors) $(($(j "$1" connect_errors) + $(j "$1" read_errors) + $(j "$1" write_errors) + $(j "$1" timeouts)))"; }
med_errs() {
  local r s=0 k=0 a b
  for r in $(reps); do
    read -r a b <<<"$(errs_of "$1.$r")"
    s=$((s + a))
    k=$((k + b))
  done
  echo "$s / $k"
}
cpu_cells() { # CPU columns of one .cpu file, or of medians when given W (repeated workload)
  if [[ $# == 1 ]]; then
    echo "$(med_cpu "$1" 1) / $(med_cpu "$1" 2) / $(med_cpu "$1" 3) / $(med_cpu "$1" 4) | $(med_cpu "$1" 5) / $(med_cpu "$1" 6) / $(med_cpu "$1" 7)"
  else
    awk '{ printf "%s / %s / %s / %s | %s / %s / %s", $1, $2, $3, $4, $5, $6, $7 }' "$WORK/$2.cpu"
  fi
}
NOISY=()
note_noise() { # LABEL NAME
  local o
  o="$(awk '{ print $4 }' "$WORK/$2.cpu")"
  if [[ $o -gt $NOISE_LIMIT ]]; then NOISY+=("$1: $o%"); fi
}
# row LABEL W: a repeated workload (medians over the repetitions).
row() {
  local label="$1" w="$2" r
  for r in $(reps); do note_noise "$label (repetition $r)" "$w.$r"; done
  echo "| $label | **$(num "$(med_j "$w" rps)")** | $(each_rps "$w") | $(dec "$(med_ratio "$w" hello)" 2) | $(dec "$(med_ratio "$w" healthz)" 2) | $(med_j "$w" lat_p50_ms) | $(med_j "$w" lat_p99_ms) | $(med_j "$w" lat_max_ms) | $(med_errs "$w") | $(cpu_cells "$w") |"
}
# row1 LABEL NAME: a single run.
row1() {
  local label="$1" n="$2" a b
  note_noise "$label" "$n"
  read -r a b <<<"$(errs_of "$n")"
  echo "| $label | **$(num "$(j "$n" rps)")** | - | $(ratio "$(j "$n" rps)" "$(med_j hello rps)") | $(ratio "$(j "$n" rps)" "$(med_j healthz rps)") | $(j "$n" lat_p50_ms) | $(j "$n" lat_p99_ms) | $(j "$n" lat_max_ms) | $a / $b | $(cpu_cells - "$n") |"
}
# clean NAME: no non-2xx, no socket errors (called by check's eval).
# shellcheck disable=SC2317
clean() {
  [[ $(j "$1" status_errors) == 0 && $(j "$1" connect_errors) == 0 && $(j "$1" read_errors) == 0 &&
    $(j "$1" write_errors) == 0 && $(j "$1" timeouts) == 0 ]]
}

CHECKS=()
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
  for r in $(reps); do
    rp=""
    [[ $REPEAT -gt 1 ]] && rp="repetition $r: "
    JOIN_REQ="$(j "join.$r" requests)"
    JOINED_DELTA="$(cat "$WORK/join.$r.joined")"
    SAMPLE_STATUS="$(cat "$WORK/sample.$r")"
    check "${rp}join run: no non-2xx responses ($(j "join.$r" status_errors)) and no socket errors" 'clean "join.$r"'
    check "${rp}join run: every request took a new place (joined_total +$JOINED_DELTA for $JOIN_REQ completed requests, up to $WRK_CONNECTIONS more in flight at the end)" \
      '[[ $JOINED_DELTA -ge $JOIN_REQ && $JOINED_DELTA -le $((JOIN_REQ + WRK_CONNECTIONS)) ]]'
    check "${rp}status run: no non-2xx responses ($(j "status.$r" status_errors)) and no socket errors" 'clean "status.$r"'
    check "${rp}status after the run still WAITING: \`$(sed 's/"expires_at":"[^"]*",//' <<<"$SAMPLE_STATUS")\`" \
      '[[ $SAMPLE_STATUS == *"\"status\":\"WAITING\""* ]]'
    check "${rp}hinted status run: no non-2xx responses ($(j "hinted.$r" status_errors)) and no socket errors" 'clean "hinted.$r"'
    check "${rp}healthz run: no non-2xx responses or socket errors" 'clean "healthz.$r"'
    check "${rp}bare hyper (hello) run: no non-2xx responses or socket errors" 'clean "hello.$r"'
  done
  if [[ $GATEWAYS -gt 0 ]]; then
    MULTI_REQ="$(j multi requests)"
    MULTI_JOINED="$(cat "$WORK/multi.joined")"
    check "$GATEWAYS gateways: no non-2xx responses ($(j multi status_errors)) and no socket errors in any wrk process" 'clean multi'
    check "$GATEWAYS gateways: every request took a new place (joined_total +$MULTI_JOINED for $MULTI_REQ completed requests, up to $((GATEWAYS * WRK_CONNECTIONS)) more in flight at the end)" \
      '[[ $MULTI_JOINED -ge $MULTI_REQ && $MULTI_JOINED -le $((MULTI_REQ + GATEWAYS * WRK_CONNECTIONS)) ]]'
  fi
  if [[ $PREFILL -gt 0 ]]; then
    check "prefill: fill created all $PREFILL places in event $EVENT ($(j prefill-fill waiting) waiting afterwards)" \
      '[[ $(j prefill-fill created) == "$PREFILL" && $(j prefill-fill waiting) -ge $PREFILL ]]'
    check "prefill: both join runs without non-2xx responses or socket errors" 'clean prefill-empty && clean prefill-full'
  fi
  if [[ $LIMITER -gt 0 ]]; then
    check "limiter: the three join runs without non-2xx responses or socket errors (the limit refused nothing)" \
      'clean limiter-off && clean limiter-on && clean limiter-sync'
  fi
  check "fill: all $USERS joins created a place, $(j fill waiting) waiting" '[[ $(j fill created) == "$USERS" ]]'
  if [[ $USERS_BIG -gt 0 ]]; then
    check "fill: all $USERS_BIG joins created a place, $(j fill-big waiting) waiting" '[[ $(j fill-big created) == "$USERS_BIG" ]]'
  fi
}

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
CPU_MODEL="$(cpu_model)"
MEM_TOTAL="$(mem_total)"
U="$(j fill users)"
per() { awk -v b="$1" -v u="$U" 'BEGIN { printf "%.1f", b / u }'; }
cpu_us() { echo "$(med_cpu "$1" 5)/$(med_cpu "$1" 6)/$(med_cpu "$1" 7)"; }

# The figures of steps 3 and 4 (n/a when the step did not run).
M_RPS=n/a M_P99=n/a M_RUS=n/a M_GUS=n/a M_RPCT=n/a CORE_JPS=n/a
if [[ $GATEWAYS -gt 0 ]]; then
  read -r _ M_RPCT _ _ M_GUS M_RUS _ <"$WORK/multi.cpu"
  M_RPS="$(num "$(j multi rps)")"
  M_P99="$(j multi lat_p99_ms)"
  CORE_JPS="$(awk -v u="$M_RUS" 'BEGIN { if (u > 0) printf "%.0f", 1e6 / u; else print "n/a" }')"
fi
P_EMPTY=n/a P_FULL=n/a P_RATIO=n/a P_WAITING=n/a P_REUS=n/a P_RFUS=n/a
if [[ $PREFILL -gt 0 ]]; then
  P_EMPTY="$(num "$(j prefill-empty rps)")"
  P_FULL="$(num "$(j prefill-full rps)")"
  P_RATIO="$(ratio "$(j prefill-full rps)" "$(j prefill-empty rps)")"
  P_WAITING="$(cat "$WORK/prefill.depth1")"
  P_REUS="$(awk '{ print $6 }' "$WORK/prefill-empty.cpu")"
  P_RFUS="$(awk '{ print $6 }' "$WORK/prefill-full.cpu")"
fi
L_OFF=n/a L_ON=n/a L_SYNC=n/a L_GOFF=n/a L_GON=n/a L_GSYNC=n/a L_ROFF=n/a L_RON=n/a L_RSYNC=n/a
if [[ $LIMITER -gt 0 ]]; then
  L_OFF="$(num "$(j limiter-off rps)")" L_ON="$(num "$(j limiter-on rps)")" L_SYNC="$(num "$(j limiter-sync rps)")"
  read -r _ _ _ _ L_GOFF L_ROFF _ <"$WORK/limiter-off.cpu"
  read -r _ _ _ _ L_GON L_RON _ <"$WORK/limiter-on.cpu"
  read -r _ _ _ _ L_GSYNC L_RSYNC _ <"$WORK/limiter-sync.cpu"
fi
B_BPU=n/a B_JPS=n/a
if [[ $USERS_BIG -gt 0 ]]; then
  B_BPU="$(j fill-big bytes_per_user)"
  B_JPS="$(j fill-big joins_per_s)"
fi

mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/queue-$STAMP.md"
{
  echo "### Waiting-room benchmark, $STAMP"
  echo
  echo "- commit \`$(commit_line)\`; redis-server $REDIS_VERSION; $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}')"
  echo "- machine: $(nproc) cores ($CPU_MODEL), $MEM_TOTAL RAM; wrk, the servers and redis-server on the same machine, loopback. **One run of this script on a shared machine**: ratios compare runs seconds apart, not portable constants"
  echo "- wrk \`-t$WRK_THREADS -c$WRK_CONNECTIONS -d${DURATION}s --latency\` (closed loop: latencies are at saturation); gateway \`--redis-pool-size $REDIS_POOL_SIZE${GATEWAY_ARGS:+ $GATEWAY_ARGS}\`, \`RUST_LOG=warn\`; bare hyper = \`target/release/hello\` (hyper 1.x, \`{\"ok\":true}\`)"
  echo "- $REPEAT repetition(s), each on a fresh redis-server and gateway: bare hyper, \`/healthz\`, join, status side by side; figures are **medians over the repetitions** (every repetition's req/s after them), ratios taken within each repetition, then their median"
  echo "- event \`$EVENT\`: admit_per_second 0, max_active 1 (nobody admitted); ${WARMUP}s of joins as warm-up; queue depth after each repetition: $(for r in $(reps); do cat "$WORK/depth.$r"; done | paste -sd/)"
  echo
  echo "| Workload | req/s | each repetition | × bare hyper | × \`/healthz\` | p50 ms | p99 ms | max ms | non-2xx / socket errors | CPU % of one core: server / redis / wrk / other | CPU µs per request: server / redis / wrk |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|"
  row "bare hyper \`hello\` (the limit of one HTTP answer)" hello
  row "\`GET /healthz\` (gateway baseline)" healthz
  row "\`POST /api/v1/queue/join\`, unique sessions" join
  row "\`GET /api/v1/queue/status\`, $STATUS_TOKENS tokens" status
  row "\`GET /api/v1/queue/status?hint=\`, the same tokens with their \`poll_hint\`" hinted
  if [[ $GATEWAYS -gt 0 ]]; then
    row1 "join through **$GATEWAYS gateways**, one Redis ($GATEWAYS wrk processes, summed; p99 and max: the worst process)" multi
  fi
  if [[ $PREFILL -gt 0 ]]; then
    row1 "join, fresh stack, (nearly) empty queue ($(cat "$WORK/prefill.depth0") waiting before the fill)" prefill-empty
    row1 "join, same stack, **$(printf "%'d" "$P_WAITING" 2>/dev/null || echo "$P_WAITING") already waiting**" prefill-full
  fi
  if [[ $LIMITER -gt 0 ]]; then
    row1 "join, fresh stack, per-address limit **off**" limiter-off
    row1 "join, fresh stack, per-address limit **on** (1e9 a minute: all counted, none refused)" limiter-on
    row1 "join, fresh stack, limit on **and shared across replicas** (\`--rate-sync-ms 250\`)" limiter-sync
  fi
  echo
  echo "Server = the gateway (all $GATEWAYS gateways together in the several-gateways row), or \`hello\` in its row. CPU: server and redis-server from /proc/PID/stat (utime+stime growth over the run), wrk from this shell's child rusage; µs per request = that growth ÷ the requests wrk completed; other = the rest of the machine's busy time in /proc/stat (other processes, interrupts). 100% = one core; the machine has $(nproc). Rows with one run have no per-repetition values; their ratios are to the medians above."
  echo
  echo "- joins / bare hyper = **$(dec "$(med_ratio join hello)" 2)**, status / bare hyper = **$(dec "$(med_ratio status hello)" 2)**, \`/healthz\` / bare hyper = **$(dec "$(med_ratio healthz hello)" 2)**; joins / \`/healthz\` = **$(dec "$(med_ratio join healthz)" 2)**, status / \`/healthz\` = **$(dec "$(med_ratio status healthz)" 2)** (within each repetition, median)"
  echo "- hinted status reads (\`?hint=\`, answered from the departure log the gateway follows) / bare hyper = **$(dec "$(med_ratio hinted hello)" 2)**, / \`/healthz\` = **$(dec "$(med_ratio hinted healthz)" 2)**; Redis CPU **$(med_cpu hinted 6) µs** and gateway CPU $(med_cpu hinted 5) µs per hinted read (medians)"
  echo "- **Redis CPU per request: $(med_cpu join 6) µs per join, $(med_cpu status 6) µs per status read**; gateway CPU per request: $(med_cpu join 5) µs per join, $(med_cpu status 5) µs per status read, $(med_cpu healthz 5) µs per \`/healthz\` (bare hyper: $(med_cpu hello 5) µs) (medians)"
  if [[ $GATEWAYS -gt 0 ]]; then
    echo "- **$GATEWAYS gateways in front of one Redis**: $M_RPS joins/s summed; Redis used $M_RPCT% of a core, **$M_RUS µs of Redis CPU per join** (gateways $M_GUS µs per join together). On this $(nproc)-core machine the gateways and wrk processes take the cores long before Redis runs out, so this measures Redis's cost per join with several clients, not its ceiling. **Joins/s one Redis core takes for one event ≈ 1e6 / $M_RUS = $CORE_JPS**, assuming Redis has a core to itself and spends all of it on that event's join script (one event lives in one hash slot, so on one Redis core) with no status polls, admissions or sweeps meanwhile, and that the cost per join stays what it was at this load"
  fi
  if [[ $PREFILL -gt 0 ]]; then
    echo "- **joins with $(printf "%'d" "$P_WAITING" 2>/dev/null || echo "$P_WAITING") already waiting: $P_FULL joins/s = $P_RATIO × the $P_EMPTY joins/s of the same stack's (nearly) empty queue** measured just before the fill (target: within 10 %, i.e. ≥ 0.90); Redis µs per join $P_REUS → $P_RFUS. Filled by \`fill --existing-event --event $EVENT --users $PREFILL\` (RedisStore, 256 in flight) at $(j prefill-fill joins_per_s) joins/s; the gateway's idle sweep (it walks the whole queue) counts when it falls inside the run"
  fi
  if [[ $LIMITER -gt 0 ]]; then
    echo "- **the per-address join limit**: $L_OFF joins/s off, $L_ON on, $L_SYNC on and shared; gateway CPU per join $L_GOFF → $L_GON → $L_GSYNC µs, Redis $L_ROFF → $L_RON → $L_RSYNC µs (three fresh stacks one after the other, one run each: differences within a few µs are this machine's noise)"
  fi
  echo "- memory (\`fill --users $U\` into a fresh redis-server, no gateway): **$(j fill bytes_per_user) bytes of \`used_memory\` per waiting user** ($(j fill used_before) -> $(j fill used_after) bytes); MEMORY USAGE: queue zset $(per "$(j fill q_bytes)") B, ready/admitted session index $(per "$(j fill s_bytes)") B, heartbeat buckets $(per "$(j fill h_bytes)") B per user"
  if [[ $USERS_BIG -gt 0 ]]; then
    U="$(j fill-big users)"
    echo "- memory at $(printf "%'d" "$U" 2>/dev/null || echo "$U") users (\`fill --users $U\`, fresh redis-server): **$B_BPU bytes of \`used_memory\` per waiting user** ($(j fill-big used_before) -> $(j fill-big used_after) bytes); MEMORY USAGE: queue zset $(per "$(j fill-big q_bytes)") B, ready/admitted session index $(per "$(j fill-big s_bytes)") B, heartbeat buckets $(per "$(j fill-big h_bytes)") B per user"
    U="$(j fill users)"
  fi
  echo "- store-level joins (\`fill\`, RedisStore direct, 256 in flight, pool 4, no HTTP): $(j fill joins_per_s) joins/s"
  echo
  if [[ ${#NOISY[@]} -gt 0 ]]; then
    echo "- **noisy run:** other processes used more than $NOISE_LIMIT% of a core during: $(printf '%s; ' "${NOISY[@]}" | sed 's/; $//')"
  fi
  echo
  printf '%s\n' "${CHECKS[@]}"
  echo
  echo "<!-- bench-summary repeat=$REPEAT hello_rps=$(num "$(med_j hello rps)") hello_p50_ms=$(med_j hello lat_p50_ms) hello_p99_ms=$(med_j hello lat_p99_ms) healthz_rps=$(num "$(med_j healthz rps)") join_rps=$(num "$(med_j join rps)") join_p50_ms=$(med_j join lat_p50_ms) join_p99_ms=$(med_j join lat_p99_ms) status_rps=$(num "$(med_j status rps)") status_p50_ms=$(med_j status lat_p50_ms) status_p99_ms=$(med_j status lat_p99_ms) healthz_p50_ms=$(med_j healthz lat_p50_ms) healthz_p99_ms=$(med_j healthz lat_p99_ms) join_x_hello=$(dec "$(med_ratio join hello)" 4) status_x_hello=$(dec "$(med_ratio status hello)" 4) healthz_x_hello=$(dec "$(med_ratio healthz hello)" 4) join_x_healthz=$(dec "$(med_ratio join healthz)" 4) status_x_healthz=$(dec "$(med_ratio status healthz)" 4) hinted_rps=$(num "$(med_j hinted rps)") hinted_p99_ms=$(med_j hinted lat_p99_ms) hinted_x_hello=$(dec "$(med_ratio hinted hello)" 4) redis_us_hinted=$(med_cpu hinted 6) gw_us_hinted=$(med_cpu hinted 5) redis_us_join=$(med_cpu join 6) redis_us_status=$(med_cpu status 6) gw_us_join=$(med_cpu join 5) gw_us_status=$(med_cpu status 5) bytes_per_user=$(j fill bytes_per_user) fill_joins_per_s=$(j fill joins_per_s) hello_cpu_us=$(cpu_us hello) join_cpu_us=$(cpu_us join) healthz_cpu_us=$(cpu_us healthz) status_cpu_us=$(cpu_us status) multi_gateways=$GATEWAYS multi_join_rps=$M_RPS multi_p99_ms=$M_P99 multi_redis_us=$M_RUS multi_gw_us=$M_GUS multi_redis_pct=$M_RPCT redis_core_joins_per_s=$CORE_JPS prefill_users=$PREFILL prefill_waiting=$P_WAITING prefill_empty_rps=$P_EMPTY prefill_full_rps=$P_FULL prefill_ratio=$P_RATIO prefill_redis_us_empty=$P_REUS prefill_redis_us_full=$P_RFUS limiter_off_rps=$L_OFF limiter_on_rps=$L_ON limiter_sync_rps=$L_SYNC limiter_gw_us=$L_GOFF/$L_GON/$L_GSYNC limiter_redis_us=$L_ROFF/$L_RON/$L_RSYNC big_users=$USERS_BIG big_bytes_per_user=$B_BPU big_fill_joins_per_s=$B_JPS noisy_runs=${#NOISY[@]} failed=$FAILED -->"
} >"$REPORT"
cat "$REPORT"
log "report written to $REPORT"
exit "$FAILED"
