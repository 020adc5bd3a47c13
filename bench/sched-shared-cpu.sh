#!/usr/bin/env bash
# bench/sched-shared-cpu.sh — where a pinned one-worker proxy's CPU time goes when the load
# generator and the replica share the machine with it.
#
# For ds-lb and HAProxy in turn (one worker pinned on the first allowed CPU, the fast nginx
# backend of bench/compare, wrk -t2 -c64 keep-alive), ROUNDS times interleaved: wrk's req/s and
# latency percentiles, the worker's voluntary and involuntary context switches over the run
# (/proc/PID/task/TID/status), and `perf sched record` over SCHED_SECONDS of the run, summed per
# CPU and task (run time, slices) and per waker -> wakee (wake-ups). Then the same with the
# replica and wrk confined to the other CPUs (taskset): the proxy's CPU its own.
#
# Usage: bench/sched-shared-cpu.sh [BINARY_DIR]   (default .build-rel/release; needs ds-lb there)
# Environment: ROUNDS=3 DURATION=5 SCHED_SECONDS=2. Needs perf, wrk, haproxy, nginx, taskset and
# two allowed CPUs or more. Loopback only; everything it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build-rel/release}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
SCHED_SECONDS=${SCHED_SECONDS:-2}
[ -x "$BIN/ds-lb" ] || { echo "sched-shared-cpu: no ds-lb in $BIN" >&2; exit 2; }
for tool in perf wrk haproxy nginx taskset python3; do
  command -v "$tool" >/dev/null || { echo "sched-shared-cpu: $tool not found" >&2; exit 2; }
done
CPUS=$(python3 -c 'import os; print(" ".join(map(str, sorted(os.sched_getaffinity(0)))))')
read -r -a CPU <<<"$CPUS"
((${#CPU[@]} >= 2)) || { echo "sched-shared-cpu: needs two allowed CPUs, has ${#CPU[@]}" >&2; exit 2; }
PROXY_CPU=${CPU[0]}
OTHERS=$(IFS=,; echo "${CPU[*]:1}")

TMP=$(mktemp -d /tmp/ds-lb-sched.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_200() {  # wait_200 PID PORT
  local i
  for i in $(seq 100); do
    kill -0 "$1" 2>/dev/null || { echo "sched-shared-cpu: PID $1 exited during start-up" >&2; exit 1; }
    [ "$(curl --noproxy '*' -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$2/home?id=1" || true)" = 200 ] && return 0
    sleep 0.1
  done
  echo "sched-shared-cpu: nothing answered on port $2" >&2; exit 1
}
switches() {  # switches PID NAME-PATTERN: "voluntary involuntary" of the matching threads, summed
  local t v=0 n=0
  for t in /proc/"$1"/task/*; do
    [[ "$(cat "$t/comm")" =~ $2 ]] || continue
    v=$((v + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")))
    n=$((n + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$t/status")))
  done
  echo "$v $n"
}

# One replica for every run, started per placement (shared: any CPU; isolated: the others).
start_backend() {  # start_backend PREFIX...: sets BACKEND_PID, BACKEND_PORT
  BACKEND_PORT=$(free_port)
  mkdir -p "$TMP/backend"
  sed -e "s/@WORKERS@/1/g" -e "s/@PORT@/$BACKEND_PORT/g" -e "s|@DIR@|$TMP/backend|g" \
    bench/compare.d/nginx-backend.conf.in >"$TMP/backend/nginx.conf"
  "$@" nginx -p "$TMP/backend" -c "$TMP/backend/nginx.conf" -e "$TMP/backend/err.log" >/dev/null 2>&1 &
  BACKEND_PID=$!
  PIDS+=("$BACKEND_PID")
  wait_200 "$BACKEND_PID" "$BACKEND_PORT"
}

run() {  # run PLACEMENT PROXY ROUND
  local placement=$1 proxy=$2 round=$3 port pid pattern prefix=()
  [ "$placement" = isolated ] && prefix=(taskset -c "$OTHERS")
  port=$(free_port)
  if [ "$proxy" = ds-lb ]; then
    "$BIN/ds-lb" --listen "127.0.0.1:$port" --driver static --backend "server-1=127.0.0.1:$BACKEND_PORT" \
      --workers 1 --cpu-affinity auto >"$TMP/ds-lb.log" 2>&1 &
    pattern='^ds-lb-w'
  else
    sed -e "s/@THREADS@/1/g" -e "s/@PORT@/$port/g" -e "s/@BACKEND_PORT@/$BACKEND_PORT/g" \
      -e "/^ *nbthread /a\\    cpu-map 1/all $PROXY_CPU" bench/compare.d/haproxy.cfg.in >"$TMP/haproxy.cfg"
    haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
    pattern='^haproxy'
  fi
  pid=$!
  PIDS+=("$pid")
  wait_200 "$pid" "$port"
  "${prefix[@]+"${prefix[@]}"}" wrk -t2 -c64 -d2s "http://127.0.0.1:$port/home?id=12345" >/dev/null 2>&1
  local before after data="$TMP/sched.data"
  before=$(switches "$pid" "$pattern")
  (sleep 1; perf sched record -a -o "$data" -- sleep "$SCHED_SECONDS" >/dev/null 2>&1) &
  local recorder=$!
  "${prefix[@]+"${prefix[@]}"}" wrk -t2 -c64 -d"${DURATION}s" --latency "http://127.0.0.1:$port/home?id=12345" >"$TMP/wrk.txt" 2>&1
  wait "$recorder"
  after=$(switches "$pid" "$pattern")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  read -r v0 n0 <<<"$before"; read -r v1 n1 <<<"$after"
  local rps p50 p99 requests
  rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$TMP/wrk.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$TMP/wrk.txt"); p99=$(awk '$1 == "99%" {print $2}' "$TMP/wrk.txt")
  requests=$(awk '/requests in/ {print $1}' "$TMP/wrk.txt")
  # Per CPU and task: run time and slices; per waker -> wakee: wake-ups (timehist columns: time,
  # [cpu], task, wait time, sch delay, run time; -w adds "awakened: <task>" lines).
  local summary
  summary=$(perf sched timehist -w -i "$data" 2>/dev/null | awk -v proxy_cpu="$PROXY_CPU" -v secs="$SCHED_SECONDS" '
    NR > 3 && $2 ~ /^\[/ {
      cpu = $2; gsub(/[\[\]]/, "", cpu); cpu += 0
      task = $3; sub(/\[.*/, "", task); sub(/-w[0-9]+$/, "", task)
      if ($4 == "awakened:") { wakee = $5; sub(/\[.*/, "", wakee); if (task != wakee) wakes[task "->" wakee]++; next }
      run[cpu " " task] += $NF; slices[cpu " " task]++
    }
    END {
      for (k in run) { split(k, a, " "); if (a[1] == proxy_cpu && run[k] > 5) printf "cpu%s:%s=%.0fms/%d ", a[1], a[2], run[k], slices[k] }
      for (k in wakes) if (k ~ /^(ds-lb|haproxy)->(wrk|nginx)$/) printf "%s=%d ", k, wakes[k]
    }')
  printf '%-8s %-7s r%s  %6s req/s  p50 %-7s p99 %-7s  worker switches over %ss: voluntary %d, involuntary %d (%.2f per request)\n' \
    "$placement" "$proxy" "$round" "$rps" "$p50" "$p99" "$DURATION" $((v1 - v0)) $((n1 - n0)) \
    "$(python3 -c "print($((n1 - n0)) / max(1, $requests))")"
  printf '    perf sched over %ss: on the proxy CPU %s, run time/slices per task (over 5 ms); wake-ups of wrk and nginx by the proxy: %s\n' \
    "$SCHED_SECONDS" "$PROXY_CPU" "$summary"
}

for placement in shared isolated; do
  prefix=()
  [ "$placement" = isolated ] && prefix=(taskset -c "$OTHERS")
  start_backend "${prefix[@]+"${prefix[@]}"}"
  for round in $(seq "$ROUNDS"); do
    for proxy in ds-lb haproxy; do run "$placement" "$proxy" "$round"; done
  done
  kill "$BACKEND_PID"; wait "$BACKEND_PID" 2>/dev/null || true
done
