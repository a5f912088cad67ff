# The report of loadtest/bench.sh: sourced by it at the end, never run alone. Reads the parts'
# fragments in $SUITE_DIR (each ends in a `<!-- TAG k=v ... -->` summary line), writes the
# Markdown block into $OUT and exits 1 if anything failed.
# shellcheck shell=bash
# shellcheck disable=SC2153 # RUNS, QUICK, ... are set by bench.sh

# ---------------------------------------------------------------------------------------------
# reading the runs

mapfile -t FAILURES <"$SUITE_DIR/failures"
mapfile -t BUSY_STARTS <"$SUITE_DIR/busy"

# fragment PART RUN: the Markdown fragment a part wrote (its only PART-*.md file).
fragment() {
  local f
  for f in "$SUITE_DIR/$1-$2/$1"-*.md; do
    [[ -f $f ]] && {
      echo "$f"
      return
    }
  done
  echo /dev/null
}

# summary_tag PART: the tag of the summary line that ends the part's fragments.
summary_tag() {
  if [[ $1 == queue ]]; then echo bench-summary; else echo "$1-summary"; fi
}

# vals PART KEY: KEY of the part's summary line, one value per run, "-" where a run left none.
vals() {
  local r v
  for r in $(seq 1 "$RUNS"); do
    v="$(summary_get "$(fragment "$1" "$r")" "$(summary_tag "$1")" "$2")"
    echo "${v:--}"
  done
}

# fmt KIND V: "int" (thousands separators), "ms" (2 decimals), "ms3" (3 decimals), "x" (ratio,
# 2 decimals), "x3" (ratio, 3 decimals), "kib" (2 decimals), "b" (1 decimal); "-" and "n/a" stay as they are.
fmt() {
  [[ $2 == - || $2 == n/a || -z $2 ]] && {
    echo "${2:--}"
    return
  }
  awk -v k="$1" -v v="$2" 'BEGIN {
    if (k == "int") {
      s = sprintf("%.0f", v); neg = (s ~ /^-/); if (neg) s = substr(s, 2)
      out = ""; while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
      printf "%s%s%s", (neg ? "-" : ""), s, out
    } else if (k == "ms") printf "%.2f", v
    else if (k == "ms3") printf "%.3f", v
    else if (k == "x") printf "%.2f", v
    else if (k == "x3") printf "%.3f", v
    else if (k == "kib") printf "%.2f", v
    else printf "%.1f", v
  }'
}

# figure LABEL KIND COMMAND VALUES...: a table row with the median in bold and every run.
figure() {
  local label="$1" kind="$2" cmd="$3" m v runs=()
  shift 3
  m="$(median "$@")"
  for v in "$@"; do runs+=("$(fmt "$kind" "$v")"); done
  local joined
  joined="$(printf '%s · ' "${runs[@]}")"
  echo "| $label | **$(fmt "$kind" "$m")** | ${joined% · } | $cmd |"
}

# fig PART KEY LABEL KIND COMMAND: the figure row of KEY over the part's runs.
fig() {
  local a
  mapfile -t a < <(vals "$1" "$2")
  figure "$3" "$4" "$5" "${a[@]}"
}

# vals_nth PART KEY N: the Nth of the "a/b/c" values of KEY, one per run ("-" where none).
vals_nth() {
  vals "$1" "$2" | awk -F/ -v n="$3" '{ v = $n; print (v ~ /^-?[0-9.]+$/ ? v : "-") }'
}

# fig_nth PART KEY N LABEL KIND COMMAND: fig of the Nth of KEY's "a/b/c" values.
fig_nth() {
  local a
  mapfile -t a < <(vals_nth "$1" "$2" "$3")
  figure "$4" "$5" "$6" "${a[@]}"
}

# measured PART KEY: true if at least one run's summary has a number for KEY.
measured() {
  [[ -n $(vals "$1" "$2" | awk '/^-?[0-9.]+$/') ]]
}

# goose_detail SCENARIO INVARIANT FIELD: a field of an invariant's numbers in the scenario's
# LOADTEST_JSON line (empty without jq or the line).
goose_detail() {
  command -v jq >/dev/null || return 0
  jq -r --arg n "$2" --arg f "$3" '.invariants[]? | select(.name == $n) | .detail[$f] // empty' \
    "$GOOSE_DIR/$1.json" 2>/dev/null || true
}

# figures_head: the head of a table of figure rows.
figures_head() {
  echo "| Figure | Median | Runs | Produced by |"
  echo "|---|---:|---|---|"
}

# count_checks PART GOT WANT HELD FAILED: a checkbox per run of the part, ticked with HELD where
# its summary's GOT equals its WANT, else marked failed with FAILED; in both, @GOT@ and @WANT@
# stand for the two values ("?" where one is missing).
count_checks() {
  local r f got want line
  for r in $(seq 1 "$RUNS"); do
    f="$(fragment "$1" "$r")"
    got="$(summary_get "$f" "$(summary_tag "$1")" "$2")"
    want="$(summary_get "$f" "$(summary_tag "$1")" "$3")"
    if [[ -n $got && $got == "$want" ]]; then
      line="- [x] $1 run $r: $4"
    else
      line="- [ ] **FAILED:** $1 run $r: $5"
    fi
    line="${line//@GOT@/${got:-?}}"
    echo "${line//@WANT@/${want:-?}}"
  done
}

# per_run_ratio A_VALUES B_VALUES: A/B for each run (a, b as newline-separated lists).
per_run_ratio() {
  paste -d' ' <(echo "$1") <(echo "$2") | awk '{
    if ($1 ~ /^[0-9.]+$/ && $2 ~ /^[0-9.]+$/ && $2 > 0) printf "%.4f\n", $1 / $2; else print "-" }'
}

# per_run_diff A_VALUES B_VALUES: A-B for each run.
per_run_diff() {
  paste -d' ' <(echo "$1") <(echo "$2") | awk '{
    if ($1 ~ /^-?[0-9.]+$/ && $2 ~ /^-?[0-9.]+$/) printf "%.4f\n", $1 - $2; else print "-" }'
}

# ---------------------------------------------------------------------------------------------
# the block

# (`wrk --version` exits 1: each of these may fail without ending the report.)
RUST_V="$({ rustc --version 2>/dev/null || true; } | awk '{print $2}')"
REDIS_V="$({ redis-server --version || true; } | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
WRK_V="$({ wrk --version 2>&1 || true; } | awk 'NR == 1 {print $2}')"
GOOSE_V="$(awk '/^name = "goose"$/ { getline; gsub(/[^0-9.]/, "", $0); print; exit }' "$ROOT/Cargo.lock" 2>/dev/null)"
KERNEL="$(uname -sr)"
MINUTES="$(awk -v s="$SUITE_SECONDS" 'BEGIN { printf "%.1f", s / 60 }')"
REPORT="$SUITE_DIR/report.md"
PARTS_RUN="${ONLY//,/, }"

Q_CMD="\`env REPEAT=1 DURATION=$QUEUE_DURATION USERS=$QUEUE_USERS GATEWAYS=${QUEUE_GATEWAYS:-2} loadtest/bench-queue.sh\`"
# Run 1 of the queue part also prefills the queue and fills memory at the big size (bench.sh).
Q_PREFILL="${QUEUE_PREFILL:-0}"
Q_BIG="${QUEUE_USERS_BIG:-}"
U_WARM=$((UPSTREAM_REQUESTS / 10))
W_WARM=$((WEBHOOK_REQUESTS / 20))

{
  echo "<!-- bench:begin -->"
  echo "<!-- Written by loadtest/bench.sh; do not edit by hand (rerun it). -->"
  echo
  echo "## Results of the last $MODE run"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| Command | \`loadtest/bench.sh$([[ $QUICK == 1 ]] && echo " --quick")$([[ $ONLY != "queue,upstream,webhooks,ws,goose" ]] && echo " --only $ONLY")\` (parts: $PARTS_RUN; the suite took $MINUTES min after the build) |"
  echo "| Date | $(sed -E 's/^([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2}).*/\1-\2-\3 \4:\5 UTC/' <<<"$STAMP") (start) |"
  echo "| Commit | \`$COMMIT_LINE\` (\`git rev-parse --short HEAD\` when the run started) |"
  echo "| Machine | $(nproc) cores (\`nproc\`), $(cpu_model) (\`/proc/cpuinfo\`), $(mem_total) (\`/proc/meminfo\`), $KERNEL |"
  echo "| Software | rustc $RUST_V, redis-server $REDIS_V, wrk $WRK_V${GOOSE_V:+, goose $GOOSE_V}; release builds (\`$BUILD_CMD\`) |"
  if [[ $QUICK == 1 ]]; then
    echo "| **Quick mode** | short runs and small sizes, to exercise every part during development: the figures are not comparable with a full run's (\`loadtest/bench.sh\`) |"
  fi
  echo "| Sharing | load generators, gateway, Redis and backends run on the same $(nproc) cores, over loopback |"
  echo "| Repetitions | $RUNS run(s) of each of queue, upstream, webhooks, ws: the **median** in bold, then every run; ratios are taken within each run, then their median |"
  if [[ ${#BUSY_STARTS[@]} -gt 0 ]]; then
    echo "| **Noisy machine** | other processes were busy when these started ($([[ $QUIET_WAIT == 0 ]] && echo "no waiting for quiet in this mode" || echo "after up to ${QUIET_WAIT}s of waiting for quiet")): $(printf '%s; ' "${BUSY_STARTS[@]}" | sed 's/; $//'). Their figures are lower and noisier than on a quiet machine |"
  else
    echo "| Noise | every part started on a quiet machine (other processes under $QUIET_BUSY% of a core) |"
  fi
  if want queue; then
    # bench-queue.sh repeats a wrk run that other processes disturbed (up to twice) and flags
    # the ones that stayed disturbed: those runs' lines, as it wrote them.
    for r in $(seq 1 "$RUNS"); do
      nl="$(grep -m 1 '^- \*\*noisy run:\*\*' "$(fragment queue "$r")" 2>/dev/null | sed 's/^- \*\*noisy run:\*\* //' || true)"
      [[ -n $nl ]] && echo "| **Noisy wrk run** | queue run $r: $nl: the figures of a disturbed wrk run are low, and the ratios built on them skewed |"
    done
  fi
  echo

  if want queue; then
    HZ="$(vals queue healthz_rps)"
    JN="$(vals queue join_rps)"
    ST="$(vals queue status_rps)"
  fi
  if want upstream; then
    UD50="$(vals upstream direct_p50_ms)"
    UD99="$(vals upstream direct_p99_ms)"
    UG50="$(vals upstream gateway_p50_ms)"
    UG99="$(vals upstream gateway_p99_ms)"
  fi
  echo "### Ratios, each measured within one run"
  echo
  echo "| Ratio | Median | Runs | From |"
  echo "|---|---:|---|---|"
  if want queue; then
    mapfile -t R1 < <(per_run_ratio "$JN" "$HZ")
    mapfile -t R2 < <(per_run_ratio "$ST" "$HZ")
    figure "joins/s ÷ \`/healthz\` req/s" x "the two wrk runs below, same gateway" "${R1[@]}"
    figure "status reads/s ÷ \`/healthz\` req/s" x "same" "${R2[@]}"
    # × bare hyper: each run's ratio to \`hello\` (a bare hyper server) measured beside the gateway.
    fig queue join_x_hello "joins/s ÷ bare hyper req/s" x "\`hello\` (loadtest/src/bin/hello.rs, \`{\"ok\":true}\`) measured by the same wrk settings just before"
    fig queue status_x_hello "status reads/s ÷ bare hyper req/s" x "same"
    fig queue hinted_x_hello "hinted status reads/s (\`?hint=\`) ÷ bare hyper req/s" x "same"
    fig queue healthz_x_hello "\`/healthz\` req/s ÷ bare hyper req/s" x "same"
    if [[ $Q_PREFILL != 0 ]]; then
      fig queue prefill_ratio "joins/s with $(fmt int "$Q_PREFILL") waiting ÷ joins/s on an empty queue" x "run 1 only: two join runs on one stack, before and after \`fill --existing-event\`"
    fi
  fi
  if want upstream; then
    mapfile -t A50 < <(per_run_diff "$UG50" "$UD50")
    mapfile -t A99 < <(per_run_diff "$UG99" "$UD99")
    mapfile -t X50 < <(per_run_ratio "$UG50" "$UD50")
    mapfile -t X99 < <(per_run_ratio "$UG99" "$UD99")
    figure "gateway added latency over a direct gRPC call, p50 (ms)" ms3 "forwarded-path table below: gateway p50 − direct p50" "${A50[@]}"
    figure "gateway added latency over a direct gRPC call, p99 (ms)" ms3 "gateway p99 − direct p99" "${A99[@]}"
    figure "through the gateway ÷ direct gRPC, p50" x "gateway p50 ÷ direct p50" "${X50[@]}"
    figure "through the gateway ÷ direct gRPC, p99" x "gateway p99 ÷ direct p99" "${X99[@]}"
  fi
  echo

  # The issues' targets against this run's medians.
  # target LABEL MEDIAN OP LIMIT KIND: a row "label | measured | met?" (OP: ge, le, lt).
  target() {
    local met
    if [[ $2 == - || $2 == n/a || -z $2 ]]; then
      met="not measured"
    elif awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { exit !((op == "ge" && v >= l) || (op == "le" && v <= l) || (op == "lt" && v < l)) }'; then
      met="yes"
    else
      met="**no**"
    fi
    echo "| $1 | $(fmt "$5" "$2") | $met |"
  }
  echo "### Against the targets (medians of this run)"
  echo
  echo "| Target | Measured | Met? |"
  echo "|---|---:|---|"
  if want queue; then
    target "≥ 30,000 joins/s on this machine (wrk and Redis on the same box)" "$(median "$JN")" ge 30000 int
    target "… with join p99 < 25 ms (ms)" "$(median "$(vals queue join_p99_ms)")" lt 25 ms
    target "≥ 40,000 status reads/s" "$(median "$ST")" ge 40000 int
    target "joins/s ≥ 0.30 × bare hyper req/s (ratio)" "$(median "$(vals queue join_x_hello)")" ge 0.30 x
    target "status reads/s ≥ 0.40 × bare hyper req/s (ratio)" "$(median "$(vals queue status_x_hello)")" ge 0.40 x
    target "\`/healthz\` req/s ≥ 0.75 × bare hyper req/s (ratio)" "$(median "$(vals queue healthz_x_hello)")" ge 0.75 x
    target "≤ 5 µs of Redis CPU per join (µs)" "$(median "$(vals queue redis_us_join)")" le 5 b
    target "≤ 3 µs of Redis CPU per status read, no poll hint (µs)" "$(median "$(vals queue redis_us_status)")" le 3 b
    target "≤ 3 µs of Redis CPU per status read with the poll hint (µs)" "$(median "$(vals queue redis_us_hinted)")" le 3 b
    target "≤ 200 bytes of Redis memory per waiting user (aim: 128) at $(fmt int "$QUEUE_USERS") users" "$(median "$(vals queue bytes_per_user)")" le 200 b
    if [[ -n $Q_BIG && $Q_BIG != 0 ]]; then
      target "≤ 200 bytes of Redis memory per waiting user at $(fmt int "$Q_BIG") users" "$(median "$(vals queue big_bytes_per_user)")" le 200 b
    fi
    if [[ $Q_PREFILL != 0 ]]; then
      target "joins/s with $(fmt int "$Q_PREFILL") already waiting within 10 % of an empty queue (ratio)" "$(median "$(vals queue prefill_ratio)")" ge 0.9 x
    fi
  fi
  if want ws; then
    target "≤ 16 KiB gateway RSS per WebSocket (at $(fmt int "$WS_CONNECTIONS") connections; the target is at 100,000)" "$(median "$(vals ws rss_per_conn_kib)")" le 16 kib
    target "admission → client p99 < 1 s (ms, at $(fmt int "$WS_CONNECTIONS") connections)" "$(median "$(vals ws p99_ms)")" lt 1000 int
  fi
  if want upstream; then
    target "gateway added latency p99 < 2 ms (ms)" "$(median "${A99[@]}")" lt 2 ms3
  fi
  if want webhooks; then
    target "≥ 10,000 webhooks/s verified and stored" "$(median "$(vals webhooks accepted_per_s)")" ge 10000 int
    if measured webhooks drained_per_s; then
      target "a backlog of $(fmt int "$((WEBHOOK_REQUESTS + W_WARM))") drains at ≥ 5,000/s (webhooks part)" "$(median "$(vals webhooks drained_per_s)")" ge 5000 int
      target "forwarded/s ≥ 0.9 × accepted/s, webhooks part (\`webhook_bench\` as the client)" "$(median "$(vals webhooks fwd_ratio)")" ge 0.9 x
    fi
  fi
  if want goose && [[ $GOOSE_STATE == ran && " $GOOSE_SCENARIOS " == *" webhook_flood "* ]]; then
    target "forwarded/s ≥ 0.9 × accepted/s, goose \`webhook_flood\` (one run)" \
      "$(goose_detail webhook_flood forwarding_keeps_up_with_intake ratio)" ge 0.9 x3
  fi
  echo

  if want queue; then
    echo "### Queue: HTTP throughput (wrk) and Redis memory"
    echo
    echo "Each run: $Q_CMD (wrk \`-t1 -c64 --latency\`, closed loop, so latencies are at saturation; event \`bench\` admits nobody, so every join stays WAITING; gateway \`--redis-pool-size 4\`)."
    echo
    figures_head
    w="wrk -t1 -c64 -d${QUEUE_DURATION}s --latency"
    fig queue hello_rps "bare hyper req/s (\`hello\`: the limit of one HTTP answer here)" int "\`$w -s loadtest/wrk/healthz.lua \$HELLO\` (\`target/release/hello 127.0.0.1:0\`)"
    fig queue healthz_rps "\`GET /healthz\` req/s (baseline, no Redis)" int "\`$w -s loadtest/wrk/healthz.lua \$GW\`"
    fig queue healthz_p99_ms "\`GET /healthz\` p99 ms" ms "same"
    fig queue join_rps "**joins/s** (\`POST /api/v1/queue/join\`, a new session each)" int "\`$w -s loadtest/wrk/join.lua \$GW -- <prefix> bench\`"
    fig queue join_p50_ms "joins p50 ms" ms "same"
    fig queue join_p99_ms "joins p99 ms" ms "same"
    fig queue status_rps "status reads/s (\`GET /api/v1/queue/status\`)" int "\`$w -s loadtest/wrk/status.lua \$GW -- tokens.txt\` (waiting tokens made by joins)"
    fig queue status_p50_ms "status p50 ms" ms "same"
    fig queue status_p99_ms "status p99 ms" ms "same"
    fig queue hinted_rps "hinted status reads/s (\`GET /api/v1/queue/status?hint=\`, each token with its join's \`poll_hint\`)" int "\`$w -s loadtest/wrk/status.lua \$GW -- tokens.txt.hinted\` (lines \"token hint\")"
    fig queue hinted_p99_ms "hinted status p99 ms" ms "same"
    fig queue redis_us_join "**Redis CPU per join**, µs" b "redis-server's utime+stime growth over the join run ÷ its requests"
    fig queue redis_us_status "Redis CPU per status read, µs" b "same, status run"
    fig queue redis_us_hinted "Redis CPU per hinted status read, µs" b "same, hinted status run (the log's own pulse reads and the background loops included)"
    fig queue gw_us_hinted "gateway CPU per hinted status read, µs" b "same, the gateway's"
    fig queue gw_us_join "gateway CPU per join, µs" b "same, the gateway's"
    fig queue gw_us_status "gateway CPU per status read, µs" b "same"
    fig queue multi_join_rps "joins/s through ${QUEUE_GATEWAYS:-2} gateways on one Redis (summed)" int "one wrk (\`$w\`, join.lua) per gateway, all on event \`bench\` at once"
    fig queue multi_redis_us "… Redis CPU per join, µs" b "same run"
    fig queue redis_core_joins_per_s "**joins/s one Redis core takes for one event** (derived)" int "1e6 ÷ the Redis µs per join above: assumes Redis has a core to itself, spends all of it on that event's join script and the cost per join stays as measured (this machine's cores saturate on gateways and wrk first)"
    if [[ $Q_PREFILL != 0 ]]; then
      fig queue prefill_empty_rps "joins/s, fresh stack, (nearly) empty queue" int "run 1: \`$w -s loadtest/wrk/join.lua\`"
      fig queue prefill_full_rps "**joins/s with $(fmt int "$Q_PREFILL") already waiting**" int "same stack after \`fill --existing-event --event bench --users $Q_PREFILL\`"
    fi
    fig queue bytes_per_user "**Redis memory per waiting user**, bytes" b "\`fill --redis-url redis://127.0.0.1:\$PORT --users $QUEUE_USERS\` on a fresh \`redis-server --save \"\" --appendonly no\` (\`used_memory\` growth ÷ users)"
    fig queue fill_joins_per_s "joins/s straight through \`RedisStore\` (no HTTP, 256 in flight)" int "same \`fill\` run"
    if [[ -n $Q_BIG && $Q_BIG != 0 ]]; then
      fig queue big_bytes_per_user "**Redis memory per waiting user at $(fmt int "$Q_BIG") users**, bytes" b "run 1: \`fill --users $Q_BIG\` on a fresh redis-server"
    fi
    echo
    if measured queue limiter_off_rps; then
      echo "The per-address join limit (step 4b of \`bench-queue.sh\`): the same join run (\`$w -s loadtest/wrk/join.lua\`) on three fresh stacks, one after the other: the limit off, on at 1e9 joins a minute (every join counted, none refused: all of wrk's joins come from one address), and on and shared across replicas (\`--rate-sync-ms 250\`). One run each per queue run: differences of a few µs are within this machine's noise."
      echo
      figures_head
      i=1
      for v in "off:**off**" "on:**on**" "sync:**on + sync**"; do
        fig queue "limiter_${v%%:*}_rps" "joins/s, limit ${v#*:}" int "step 4b"
        fig_nth queue limiter_gw_us "$i" "… gateway CPU per join, µs" b "\`/proc/PID/stat\` growth ÷ requests"
        fig_nth queue limiter_redis_us "$i" "… Redis CPU per join, µs" b "same"
        i=$((i + 1))
      done
      echo
    fi
    echo "CPU microseconds per request (gateway / redis-server / wrk), each run, from \`/proc/PID/stat\` and wrk's rusage:"
    echo
    echo "| Workload | $(seq 1 "$RUNS" | sed 's/^/run /' | paste -sd'|' | sed 's/|/ | /g') |"
    echo "|---|$(seq 1 "$RUNS" | sed 's/.*/---/' | paste -sd'|')|"
    for wl in hello healthz join status; do
      echo "| $wl | $(vals queue "${wl}_cpu_us" | sed 's#/# / #g' | paste -sd'|' | sed 's/|/ | /g') |"
    done
    echo
  fi

  if want upstream; then
    echo "### Forwarded path: the gateway's added latency"
    echo
    echo "Each run: \`env REQUESTS=$UPSTREAM_REQUESTS WARMUP=$U_WARM CONCURRENCY=1 loadtest/bench-upstream.sh\`, i.e. \`upstream_latency --gateway \$GW --backends \$BE --event demo --requests $UPSTREAM_REQUESTS --warmup $U_WARM --concurrency 1\`: one client alternates a direct gRPC \`Inventory.CheckAvailability\` and \`GET /api/v1/events/demo/availability\` through the gateway (admission JWT check, HTTP to gRPC)."
    echo
    figures_head
    for k in direct_p50_ms:"direct gRPC, p50 ms" direct_p99_ms:"direct gRPC, p99 ms" gateway_p50_ms:"through the gateway, p50 ms" gateway_p99_ms:"through the gateway, p99 ms" added_pair_p50_ms:"added per pair (difference of each pair), p50 ms" added_pair_p99_ms:"added per pair, p99 ms"; do
      fig upstream "${k%%:*}" "${k#*:}" ms3 "same run"
    done
    echo
  fi

  if want webhooks; then
    echo "### Webhook ingestion"
    echo
    echo "Each run: \`env REQUESTS=$WEBHOOK_REQUESTS WARMUP=$W_WARM CONCURRENCY=64 loadtest/bench-webhooks.sh\`, i.e. \`webhook_bench --gateway \$GW --secret \$SECRET --requests $WEBHOOK_REQUESTS --warmup $W_WARM --concurrency 64\` against a gateway with \`--webhook-secret\` and no worker, Redis with \`appendonly yes\`, \`appendfsync everysec\`; every webhook has a fresh id, so every one is verified and stored."
    echo
    figures_head
    fig webhooks accepted_per_s "**webhooks accepted/s** (verified, stored, 200)" int "same run"
    fig webhooks p50_ms "time to 200, p50 ms" ms "same run"
    fig webhooks p99_ms "time to 200, p99 ms" ms "same run"
    if measured webhooks drained_per_s; then
      flood_n="$(vals webhooks flood_requests | awk 'NR == 1')"
      intents="$(vals webhooks intents | awk 'NR == 1')"
      fig webhooks drained_per_s "**backlog drained/s** into the reference WorkerService" int "the inbox left by the run above ($(fmt int "$((WEBHOOK_REQUESTS + W_WARM))") entries), forwarded by a second gateway with the worker (\`--payment-result-url\` at \`backends\`, in memory, $(fmt int "$intents") pending payments); \`webhook_bench --drain-watch\` times the inbox from its first decrease to empty"
      fig webhooks drain_s "… seconds to drain it" ms "same run"
      fig webhooks fwd_accepted_per_s "webhooks accepted/s **while forwarding**" int "then \`webhook_bench --forwarded --requests $flood_n --concurrency 64\` to that gateway while it forwards: each webhook reports on one of the pending payments"
      fig webhooks forwarded_per_s "**forwarded/s** (first POST to the last forward)" int "same run: the gateway's \`webhooks_forwarded_total\`"
      fig webhooks fwd_ratio "**forwarded/s ÷ accepted/s**" x "same run, within the run"
      fig webhooks e2e_p50_ms "received → applied, p50 ms" b "same run: the gateway's \`webhooks_end_to_end_latency_seconds\` (received time to the worker's answer), interpolated within its buckets"
      fig webhooks e2e_p99_ms "received → applied, p99 ms" b "same"
      fig webhooks dead_letters "dead letters" int "\`XLEN wh:{payments}:dlq\` afterwards"
    fi
    echo
  fi

  if want ws; then
    echo "### WebSocket fan-out"
    echo
    echo "Each run: \`env CONNECTIONS=$WS_CONNECTIONS ROUNDS=$WS_ROUNDS PER_ROUND=100 loadtest/bench-ws.sh\`, i.e. \`ws_fanout --connections $WS_CONNECTIONS --rounds $WS_ROUNDS --per-round 100 --sources 5\`: that many users join and open a position stream; $WS_ROUNDS admissions of 100 users are made through Redis from another process; each client times the admission to the frame that tells it."
    if [[ $WS_CONNECTIONS != "$WS_ASKED" ]]; then
      echo "**$WS_CONNECTIONS connections, not the $WS_ASKED asked for:** this machine's hard limit on open files is $WS_FD_HARD (\`ulimit -Hn\`), and the gateway and the client each hold one descriptor per connection."
    fi
    echo
    figures_head
    fig ws connections "connections open" int "same run"
    fig ws rss_per_conn_kib "**gateway RSS per connection**, KiB" kib "\`VmRSS\` growth ÷ connections"
    fig ws p50_ms "admission → client, p50 ms" int "same run"
    fig ws p99_ms "admission → client, p99 ms" int "same run"
    echo
  fi

  if want goose; then
    echo "### Goose scenarios"
    echo
    if [[ $GOOSE_STATE != ran ]]; then
      echo "**Not run:** $GOOSE_WHY."
    else
      echo "One stack for all scenarios: redis-server (\`appendonly yes\`, \`appendfsync everysec\`), \`backends --event loadtest:$GOOSE_SEATS --sim-time-scale 0.01 --hold-seconds 900\` sending signed payment webhooks to the gateway, and one gateway (\`--reservation-url\`, \`--inventory-url\`, \`--payment-url\` at the backends, \`--webhook-secret\`); \`LOADTEST_SETTLE_TIMEOUT_SECS=${GOOSE_SETTLE_TIMEOUT:-60}\` (how long the checks wait for payments to settle and the webhook consumer to drain). Each scenario runs alone, from \`$(realpath --relative-to="$ROOT" "$GOOSE_DIR" 2>/dev/null || echo "$GOOSE_DIR")\`; figures from its request log (\`--request-log S.csv --request-format csv\`, read by \`plot --by-name\`), rates over the whole run including the ramp-up; \"failed\" is what goose counted as failed (webhook_flood's forged and stale webhooks are meant to be refused with 401); invariants from its \`LOADTEST_JSON\` line and exit status."
      echo
      for s in $GOOSE_SCENARIOS; do
        rc="$(cat "$GOOSE_DIR/$s.rc" 2>/dev/null || echo "?")"
        echo "#### \`$s\`: $([[ $rc == 0 ]] && echo "invariants held" || echo "**FAILED (exit $rc)**") ($(cat "$GOOSE_DIR/$s.seconds" 2>/dev/null || echo "?") s from start to verdict, set-up, ramp-up and settling included)"
        echo
        # shellcheck disable=SC2016 # a literal $GW in place of this run's port
        echo "\`$(sed 's#--host http://127\.0\.0\.1:[0-9]*#--host $GW#' "$GOOSE_DIR/$s.cmd" 2>/dev/null)\`"
        echo
        if [[ -s $GOOSE_DIR/$s.table ]]; then
          grep -v '^PLOT_JSON' "$GOOSE_DIR/$s.table"
          pj="$(sed -n 's/^PLOT_JSON //p' "$GOOSE_DIR/$s.table")"
          echo "| **all** | $(fmt int "$(json_num <(echo "$pj") requests)") | $(json_num <(echo "$pj") failed) | **$(fmt int "$(json_num <(echo "$pj") mean_rps)")** | $(fmt ms "$(json_num <(echo "$pj") p50_ms)") | **$(fmt ms "$(json_num <(echo "$pj") p99_ms)")** |"
          echo
        else
          echo "(no request log)"
          echo
        fi
        # GOOSE INVARIANTS: the LOADTEST_JSON line as the scenario printed it.
        if [[ -s $GOOSE_DIR/$s.json ]] && command -v jq >/dev/null &&
          jq -e '.invariants | type == "array"' "$GOOSE_DIR/$s.json" >/dev/null 2>&1; then
          echo "| Invariant (\`LOADTEST_JSON\`) | Held? | Numbers |"
          echo "|---|---|---|"
          jq -r '.invariants[] | "| `\(.name)` | \(if .pass then "yes" else "**NO**" end) | `\(.detail | tostring | gsub("\\|"; "/"))` |"' "$GOOSE_DIR/$s.json"
        elif [[ -s $GOOSE_DIR/$s.json ]]; then
          echo "Invariants (\`LOADTEST_JSON\`): \`$(cat "$GOOSE_DIR/$s.json")\`"
        else
          echo "No \`LOADTEST_JSON\` line."
        fi
        echo
      done
      if [[ -n $PLOT_SVG ]]; then
        rel="$(realpath --relative-to="$(dirname "$OUT")" "$PLOT_SVG")"
        echo "#### The join storm over time"
        echo
        echo "![Join storm: requests per second and p50/p99 latency per second]($rel)"
        echo
        echo "[\`$rel\`]($rel): requests per second (successful, failed) and the p50/p99 latency of the requests started in each second, drawn by \`target/release/plot --input join_storm.csv --output $rel\` from the join storm's request log. Totals: \`$PLOT_JSON\`."
        echo
      fi
    fi
  fi

  echo "### Checks"
  echo
  if want queue; then
    for r in $(seq 1 "$RUNS"); do
      grep -E '^- \[( |x)\]' "$(fragment queue "$r")" 2>/dev/null | sed "s/^- \[\(.\)\] /- [\1] queue run $r: /"
    done
  fi
  if want webhooks; then
    count_checks webhooks stored sent "the inbox holds exactly the @WANT@ webhooks sent" \
      "the inbox holds @GOT@ of @WANT@ webhooks sent"
  fi
  if want ws; then
    count_checks ws received expected "every client heard of every admission (@GOT@ of @WANT@ updates)" \
      "@GOT@ of @WANT@ updates received"
  fi
  if want goose && [[ $GOOSE_STATE == ran ]]; then
    for s in $GOOSE_SCENARIOS; do
      rc="$(cat "$GOOSE_DIR/$s.rc" 2>/dev/null || echo "?")"
      [[ $rc == 0 ]] && echo "- [x] goose $s: its invariants held (exit 0)" || echo "- [ ] **FAILED:** goose $s exited $rc"
    done
  fi
  if [[ ${#FAILURES[@]} -gt 0 ]]; then
    echo
    echo "**The suite failed:**"
    printf -- '- %s\n' "${FAILURES[@]}"
  fi
  echo
  echo "Each part's own report and log: \`loadtest/out/suite-$STAMP/\` (not committed)."
  echo "<!-- bench:end -->"
} >"$REPORT"

# Into $OUT: between the markers if it has them, else the whole file.
if [[ -f $OUT ]] && grep -q '^<!-- bench:begin -->$' "$OUT" && grep -q '^<!-- bench:end -->$' "$OUT"; then
  awk -v rep="$REPORT" '
    /^<!-- bench:begin -->$/ { while ((getline l < rep) > 0) print l; skip = 1; next }
    /^<!-- bench:end -->$/ { skip = 0; next }
    !skip { print }' "$OUT" >"$OUT.tmp.$$"
  mv "$OUT.tmp.$$" "$OUT"
else
  {
    echo "# Benchmarks ($MODE run of loadtest/bench.sh)"
    echo
    cat "$REPORT"
  } >"$OUT"
fi
log "report written to $OUT_REL (and $REPORT); the suite took $MINUTES min after the build"
if [[ $GOOSE_STATE != ran ]] && want goose; then
  log "note: the goose scenarios did not run: $GOOSE_WHY"
fi
if [[ ${#FAILURES[@]} -gt 0 ]]; then
  log "FAILED:"
  printf '  - %s\n' "${FAILURES[@]}" >&2
  exit 1
fi
exit 0
