#!/usr/bin/env bash
# ds-bench load vs wrk: does our load generator keep up (it should reach ≥ 0.8× wrk's req/s)?
# Same target, same connections: wrk -t1 -c64 and ds-bench load -t1 -c64 --ids fixed (the URL as
# wrk sends it), against ds-server directly and through ds-lb (static driver, --workers 1),
# interleaved (the order alternates per round), medians over the rounds. ds-bench with random ids
# is measured too, for information. Everything started here is stopped by PID.
# Usage: bench/loadgen.sh [BIN_DIR (default .build-bench-rel/release)] [ROUNDS (5)] [SECONDS (5)]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build-bench-rel/release}
rounds=${2:-5}
secs=${3:-5}
for b in ds-lb ds-server ds-bench; do [ -x "$bin/$b" ] || { echo "loadgen: $bin/$b missing (swift build -c release)" >&2; exit 1; }; done
command -v wrk >/dev/null || { echo "loadgen: wrk missing (scripts/install-deps.sh bench)" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
backend=$(free_port)
"$bin/ds-server" --id 1 --host 127.0.0.1 --port "$backend" 2>"$tmp/server.log" & pids+=($!)
lbport=$(free_port)
"$bin/ds-lb" --listen "127.0.0.1:$lbport" --driver static --backend "server-1=127.0.0.1:$backend" --workers 1 \
  --state-dir "$tmp/state" 2>"$tmp/lb.log" & pids+=($!)
for _ in $(seq 100); do grep -q 'ds-lb Listening' "$tmp/lb.log" && break; sleep 0.1; done

wrk_rps() { wrk -t1 -c64 -d"${secs}s" "$1" | awk '/^Requests\/sec/ {print $2}'; }
bench_rps() { "$bin/ds-bench" load --url "$1" -t 1 -c 64 -d "${secs}s" --ids "$2" --json --quiet |
  python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f %d" % (d["throughput_rps"], d["failed"]))'; }

declare -A results
for round in $(seq "$rounds"); do
  for target in direct lb; do
    port=$([ $target = direct ] && echo "$backend" || echo "$lbport")
    url="http://127.0.0.1:$port/home?id=12345"
    order=(wrk fixed random6); [ $((round % 2)) = 0 ] && order=(random6 fixed wrk)
    for tool in "${order[@]}"; do
      if [ "$tool" = wrk ]; then v=$(wrk_rps "$url"); f=0; else read -r v f < <(bench_rps "$url" "$tool"); fi
      echo "round $round $target $tool: $v req/s (failed $f)" >&2
      results[$target.$tool]+="$v "
    done
  done
done
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds of ${secs}s; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "| target | wrk -t1 -c64 req/s | ds-bench -t1 -c64 --ids fixed | ratio | ds-bench --ids random6 | ratio |"
echo "|---|---:|---:|---:|---:|---:|"
for target in direct lb; do
  python3 - "$target" "${results[$target.wrk]}" "${results[$target.fixed]}" "${results[$target.random6]}" <<'EOF'
import statistics, sys
name = {"direct": "ds-server directly", "lb": "through ds-lb (--workers 1)"}[sys.argv[1]]
w, f, r = (statistics.median(float(x) for x in a.split()) for a in sys.argv[2:5])
span = lambda a: "%s–%s" % (f"{min(float(x) for x in a.split()):,.0f}", f"{max(float(x) for x in a.split()):,.0f}")
print(f"| {name} | {w:,.0f} ({span(sys.argv[2])}) | {f:,.0f} ({span(sys.argv[3])}) | {f / w:.2f}× | {r:,.0f} ({span(sys.argv[4])}) | {r / w:.2f}× |")
EOF
done
