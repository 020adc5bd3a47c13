#!/bin/bash
# User-space instructions ds-lb spends per proxied request, counted by callgrind: this VM has no
# PMU (`perf stat -e instructions` says <not supported>), and a count does not move with the
# machine's load the way CPU time does. One worker, `wrk -t2 -c64` keep-alive GET /home?id=12345
# against one ds-server; the counters are zeroed after a warm-up and dumped after the measured
# run, so start-up is not counted. valgrind 3.19 cannot read Swift 6's DWARF 5, so the binary is
# run from a copy without debug info (the symbol table stays: functions keep their names).
# ds-lb starts slowly under valgrind on a loaded machine: it gets up to 5 minutes to answer.
# Prints Ir per request for each round; TOP=n adds the n costliest functions (self cost) per
# request of the last round.
# HASH picks `--hash` (default: ds-lb's own default).
# Usage: BIN=.build-rel/release [ROUNDS=3] [TOP=30] [PORT=18491] [HASH=ring] bench/callgrind-request.sh
set -u
. "$(dirname "$0")/callgrind-summary.sh"
BIN=${BIN:-.build/release}
ROUNDS=${ROUNDS:-3}
TOP=${TOP:-0}
PORT=${PORT:-18491}
HASH_FLAG=(); [ -n "${HASH:-}" ] && HASH_FLAG=(--hash "$HASH")
SPORT=$((PORT - 10))
WORK=$(mktemp -d)
LB=; SRV=
trap 'kill $LB $SRV 2>/dev/null; rm -rf "$WORK"' EXIT
objcopy --strip-debug "$BIN/ds-lb" "$WORK/ds-lb"
nice -n 19 "$BIN/ds-server" --id 1 --host 127.0.0.1 --port "$SPORT" >/dev/null 2>&1 &
SRV=$!
URL="http://127.0.0.1:$PORT/home?id=12345"
for round in $(seq "$ROUNDS"); do
  nice -n 19 valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$WORK/ds-lb" serve \
    --listen "127.0.0.1:$PORT" --driver static --backend "server-1=127.0.0.1:$SPORT" --workers 1 "${HASH_FLAG[@]}" \
    --state-dir "$WORK/state" >"$WORK/lb.log" 2>&1 &
  LB=$!
  for _ in $(seq 600); do curl --noproxy '*' -s -o /dev/null "$URL" && break; sleep 0.5; done
  nice -n 19 wrk -t2 -c64 -d3 "$URL" >/dev/null 2>&1
  callgrind_control -z "$LB" >/dev/null 2>&1
  nice -n 19 wrk -t2 -c64 -d5 "$URL" >"$WORK/wrk.txt" 2>&1
  callgrind_control -d "$LB" >/dev/null 2>&1
  kill "$LB"; wait "$LB" 2>/dev/null; LB=
  requests=$(grep -oE '^ *[0-9]+ requests in' "$WORK/wrk.txt" | grep -oE '[0-9]+')
  dump=$(ls "$WORK"/cg.out.* | head -1)
  callgrind_summary "$dump" "$requests" "$round" "$ROUNDS" "$TOP"
  rm -f "$WORK"/cg.out*
done
