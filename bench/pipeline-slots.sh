#!/bin/bash
# What --pipeline-slots costs a pipelining client: ds-lb's syscalls and CPU time per request
# (perf stat on the ds-lb process; counts, not req/s, so a busy machine skews it little) while
# wrk -t1 -c64 sends 16-deep pipelined GET /home, for each SLOTS value, ROUNDS interleaved rounds.
# Usage: BIN=.build-rel/release bench/pipeline-slots.sh   (needs wrk, perf, bc; run as root or
# with perf_event_paranoid <= 1 for the raw_syscalls tracepoint)
set -u
BIN=${BIN:-.build/release}
SLOTS=${SLOTS:-"0 2 8"}
ROUNDS=${ROUNDS:-2}
LB=; SRV=
WORK=$(mktemp -d)
trap 'kill $LB $SRV 2>/dev/null; rm -rf "$WORK"' EXIT
cat > "$WORK/pipe.lua" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format("GET", "/home?id=" .. i) end
  req = table.concat(r)
end
request = function() return req end
LUA
nice -n 19 "$BIN/ds-server" --id 1 --port 18431 --host 127.0.0.1 >/dev/null 2>&1 &
SRV=$!
sleep 0.5
for round in $(seq "$ROUNDS"); do
  for slots in $SLOTS; do
    nice -n 19 "$BIN/ds-lb" serve --listen 127.0.0.1:18430 --driver static --backend s=127.0.0.1:18431 \
      --workers 2 --pipeline-slots "$slots" --state-dir "$WORK/state" >"$WORK/lb.log" 2>&1 &
    LB=$!
    for _ in $(seq 50); do grep -q "Listening on" "$WORK/lb.log" && break; sleep 0.1; done
    perf stat -x, -e raw_syscalls:sys_enter,task-clock -p "$LB" -o "$WORK/perf.txt" -- sleep 5.5 &
    PERF=$!
    out=$(nice -n 19 wrk -t1 -c64 -d5s -s "$WORK/pipe.lua" http://127.0.0.1:18430/ 2>&1)
    wait $PERF
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    sys=$(grep raw_syscalls "$WORK/perf.txt" | cut -d, -f1)
    ms=$(grep task-clock "$WORK/perf.txt" | cut -d, -f1)
    echo "round $round --pipeline-slots $slots: $reqs requests, syscalls/request $(echo "scale=3; $sys / $reqs" | bc)," \
         "CPU µs/request $(echo "scale=2; $ms * 1000 / $reqs" | bc)"
    kill $LB; wait $LB 2>/dev/null; LB=
  done
done
