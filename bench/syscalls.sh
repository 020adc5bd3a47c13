#!/usr/bin/env bash
# bench/syscalls.sh — system calls per proxied request: ds-lb, HAProxy and nginx in front of the
# fast backend of `bench/compare --fast-backend` (nginx answering /home with ds-server's JSON).
#
# On this machine most of a proxy's CPU per request is kernel time on loopback, so what a proxy
# asks of the kernel per request is the figure to compare; unlike req/s it does not move with the
# load of the machine (only a little: a slower proxy finds more events per epoll_wait). Per proxy,
# started the way bench/compare starts it: a warm-up, then one wrk run while `perf stat` counts
# the proxy's system calls in the kernel (tracepoints, no per-event copy to user space, so the
# counting barely slows the proxy), divided by the requests wrk completed. Also per request:
# the proxy's context switches and CPU (perf task-clock; user and kernel from /proc), the same for
# the backend and wrk over the run (a proxy that wakes them more often costs them CPU), TCP
# segments machine-wide (4 is the floor: request and response on each leg, ACKs piggybacked),
# wrk's req/s and p50/p99, and how the busiest T threads split the proxy's CPU. Figures other than
# the counts move with the machine's load; the counts barely do.
#
# Usage: bench/syscalls.sh
# Environment (defaults): BIN=.build-rel/release (ds-lb built with
#   `swift build -c release --scratch-path .build-rel`), PROXIES="ds-lb haproxy nginx",
#   THREADS=1 (ds-lb --workers, HAProxy nbthread, nginx worker_processes), CONNS=64,
#   WRK_THREADS=1, DURATION=5s, BACKEND_WORKERS=1, OUT=bench/out/syscalls-<UTC time>
# Needs perf (with the syscalls tracepoints), wrk, haproxy, nginx, curl, python3; root or
# perf_event_paranoid <= 1. Loopback only; everything it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PATH=$PATH:/usr/sbin:/sbin

BIN=${BIN:-.build-rel/release}
PROXIES=${PROXIES:-"ds-lb haproxy nginx"}
THREADS=${THREADS:-1}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-1}
DURATION=${DURATION:-5s}
BACKEND_WORKERS=${BACKEND_WORKERS:-1}
OUT=${OUT:-bench/out/syscalls-$(date -u +%Y%m%dT%H%M%SZ)}
REQ_PATH='/home?id=12345'

die() { echo "syscalls.sh: $*" >&2; exit 1; }
for tool in perf wrk haproxy nginx curl python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
case " $PROXIES " in *" ds-lb "*) [ -x "$BIN/ds-lb" ] || die "no ds-lb in $BIN (BIN=...)" ;; esac

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d /tmp/ds-syscalls.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_ready() {  # wait_ready PID PORT NAME: until GET REQ_PATH answers 200 (10 s)
  local pid=$1 port=$2 name=$3 code=
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || die "$name (PID $pid) exited during start-up; see $OUT"
    code=$(curl --noproxy '*' -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$port$REQ_PATH" || true)
    [ "$code" = 200 ] && return 0
    sleep 0.1
  done
  die "$name did not answer 200 on 127.0.0.1:$port within 10 s (last: $code)"
}

# TCP segments machine-wide (loopback: every segment of the run is sent once and received
# once; other traffic on the machine adds a little): "name value" lines.
tcp_counters() {
  awk '/^(Tcp|TcpExt):/ { if (!($1 in hdr)) { hdr[$1] = 1; for (i = 2; i <= NF; i++) name[$1, i] = $i }
       else for (i = 2; i <= NF; i++) print name[$1, i], $i }' /proc/net/snmp /proc/net/netstat
}

# CPU ticks of every thread of the given processes (comma-separated PIDs): "tid ticks" lines, for
# how evenly the workers share the load.
thread_ticks() {
  local pid task
  for pid in ${1//,/ }; do
    for task in /proc/"$pid"/task/*; do
      awk -v t="${task##*/}" '{ print t, $14 + $15 }' "$task/stat" 2>/dev/null || true
    done
  done
}

# User and kernel CPU ticks of the given processes, all threads: "user N" and "system N".
user_system_ticks() {
  local pid u=0 k=0 fields
  for pid in ${1//,/ }; do
    read -r -a fields <"/proc/$pid/stat"
    u=$((u + fields[13])) k=$((k + fields[14]))
  done
  echo "user $u"
  echo "system $k"
}

BACKEND_PORT=$(free_port)
mkdir -p "$TMP/backend"
sed -e "s/@WORKERS@/$BACKEND_WORKERS/g" -e "s/@PORT@/$BACKEND_PORT/g" -e "s|@DIR@|$TMP/backend|g" \
  bench/compare.d/nginx-backend.conf.in >"$TMP/backend/nginx.conf"
nginx -p "$TMP/backend" -c "$TMP/backend/nginx.conf" -e "$TMP/backend/nginx-error.log" \
  >"$OUT/backend.stderr" 2>&1 &
BACKEND_PID=$!
PIDS+=("$BACKEND_PID")
wait_ready "$BACKEND_PID" "$BACKEND_PORT" "nginx (the backend)"
BACKEND_WORKER_PIDS=$(cat /proc/"$BACKEND_PID"/task/*/children | xargs | tr ' ' ',')

# The system calls each proxy makes on the request path (any other one is counted as "other"),
# and the failures that are wasted round trips into the kernel.
CALLS="epoll_wait epoll_pwait epoll_pwait2 epoll_ctl read readv recvfrom recvmsg write writev sendto sendmsg
  splice accept4 connect setsockopt getsockopt close shutdown futex timerfd_settime clock_gettime"
EVENTS=(-e raw_syscalls:sys_enter)
for call in $CALLS; do EVENTS+=(-e "syscalls:sys_enter_$call"); done
for call in read readv recvfrom recvmsg; do EVENTS+=(-e "syscalls:sys_exit_$call" --filter 'ret == -11'); done
for call in write writev sendto sendmsg; do EVENTS+=(-e "syscalls:sys_exit_$call" --filter 'ret == -11'); done
EVENTS+=(-e syscalls:sys_exit_epoll_wait --filter 'ret == 0')
EVENTS+=(-e syscalls:sys_exit_epoll_pwait --filter 'ret == 0')
EVENTS+=(-e syscalls:sys_exit_epoll_pwait2 --filter 'ret == 0')

for proxy in $PROXIES; do
  port=$(free_port)
  case "$proxy" in
    ds-lb)
      "$BIN/ds-lb" --listen "127.0.0.1:$port" --driver static --backend "server-1=127.0.0.1:$BACKEND_PORT" \
        --workers "$THREADS" 2>"$OUT/$proxy.stderr" &
      ;;
    haproxy)
      sed -e "s/@THREADS@/$THREADS/g" -e "s/@PORT@/$port/g" -e "s/@BACKEND_PORT@/$BACKEND_PORT/g" \
        bench/compare.d/haproxy.cfg.in >"$TMP/haproxy.cfg"
      haproxy -db -f "$TMP/haproxy.cfg" >"$OUT/$proxy.stderr" 2>&1 &
      ;;
    nginx)
      rm -rf "$TMP/nginx" && mkdir -p "$TMP/nginx"
      sed -e "s/@THREADS@/$THREADS/g" -e "s/@PORT@/$port/g" -e "s/@BACKEND_PORT@/$BACKEND_PORT/g" \
        -e "s|@DIR@|$TMP/nginx|g" -e '/include .*tls-server/d' bench/compare.d/nginx.conf.in >"$TMP/nginx/nginx.conf"
      nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/nginx-error.log" >"$OUT/$proxy.stderr" 2>&1 &
      ;;
    *) die "unknown proxy $proxy (ds-lb, haproxy, nginx)" ;;
  esac
  pid=$!
  PIDS+=("$pid")
  wait_ready "$pid" "$port" "$proxy"
  url="http://127.0.0.1:$port$REQ_PATH"
  wrk -t"$WRK_THREADS" -c"$CONNS" -d2s "$url" >"$OUT/$proxy.warmup" 2>&1 || true
  # nginx: the workers (the master only waits); ds-lb, HAProxy: every thread of the process.
  targets=$pid
  if [ "$proxy" = nginx ]; then targets=$(cat /proc/"$pid"/task/*/children | xargs | tr ' ' ','); fi
  cut -d' ' -f1 /proc/loadavg >"$OUT/$proxy.loadavg"
  tcp_counters >"$OUT/$proxy.tcp.before"
  thread_ticks "$targets" >"$OUT/$proxy.threads.before"
  user_system_ticks "$targets" >"$OUT/$proxy.times.before"
  # The backend's and wrk's share: a proxy that wakes them more often costs them CPU too.
  perf stat -x, -o "$OUT/$proxy.backend.perf" -e task-clock -e context-switches -e raw_syscalls:sys_enter \
    -p "$BACKEND_WORKER_PIDS" &
  backend_perf=$!
  perf stat -x, -o "$OUT/$proxy.perf" -e task-clock -e context-switches "${EVENTS[@]}" -p "$targets" -- \
    perf stat -x, -o "$OUT/$proxy.wrk.perf" -e task-clock -e context-switches \
    wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "$url" >"$OUT/$proxy.wrk" 2>&1
  kill -INT "$backend_perf"
  wait "$backend_perf" || true
  tcp_counters >"$OUT/$proxy.tcp.after"
  thread_ticks "$targets" >"$OUT/$proxy.threads.after"
  user_system_ticks "$targets" >"$OUT/$proxy.times.after"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done

python3 - "$OUT" "$PROXIES" "$THREADS" "$CONNS" "$WRK_THREADS" "$DURATION" <<'EOF'
import re, sys
out, proxies, threads, conns, wrk_threads, duration = sys.argv[1], sys.argv[2].split(), *sys.argv[3:]
rows, cols = {}, []
def col(name):
    if name not in cols: cols.append(name)
    return name
for p in proxies:
    wrk = open(f"{out}/{p}.wrk").read()
    m = re.search(r"(\d+) requests in", wrk)
    n = int(m.group(1)) if m else 0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
    errs = re.search(r"Socket errors: (.*)", wrk)
    counts = {}
    def extra(path, prefix):
        for line in open(path):
            f = line.strip().split(",")
            if len(f) < 3 or f[0].startswith(("#", "<")) or not f[0].replace(".", "").isdigit(): continue
            v = float(f[0])
            if f[2] == "task-clock": counts[prefix + "CPU µs"] = v * 1000  # msec → µs
            elif f[2] == "context-switches": counts[prefix + "context switches"] = v
            elif f[2] == "raw_syscalls:sys_enter" and prefix: counts[prefix + "system calls"] = v
    extra(f"{out}/{p}.perf", "")
    extra(f"{out}/{p}.backend.perf", "backend: ")
    extra(f"{out}/{p}.wrk.perf", "wrk: ")
    def tcp(path):
        return {l.split()[0]: int(l.split()[1]) for l in open(path) if len(l.split()) == 2}
    before, after = tcp(f"{out}/{p}.tcp.before"), tcp(f"{out}/{p}.tcp.after")
    for name, label in (("OutSegs", "TCP segments (machine)"), ("TCPPureAcks", "pure ACKs received (machine)"),
                        ("DelayedACKs", "delayed ACKs sent (machine)")):
        if name in after: counts[label] = after[name] - before.get(name, 0)
    ub, ua = tcp(f"{out}/{p}.times.before"), tcp(f"{out}/{p}.times.after")
    hz = int(__import__("os").sysconf("SC_CLK_TCK"))
    counts["user CPU µs (/proc)"] = (ua["user"] - ub["user"]) * 1e6 / hz
    counts["kernel CPU µs (/proc)"] = (ua["system"] - ub["system"]) * 1e6 / hz
    tb, ta = tcp(f"{out}/{p}.threads.before"), tcp(f"{out}/{p}.threads.after")
    busy = sorted((ta[t] - tb.get(t, 0) for t in ta), reverse=True)[:int(threads)]
    split = " / ".join(f"{100 * b / sum(busy):.0f} %" for b in busy) if sum(busy) else "—"
    for line in open(f"{out}/{p}.perf"):
        f = line.strip().split(",")
        if len(f) < 3 or not f[2].startswith(("raw_syscalls", "syscalls")): continue
        v = 0 if f[0].startswith("<") else int(f[0])
        ev = f[2]
        if ev == "raw_syscalls:sys_enter": key = "total"
        elif ev.startswith("syscalls:sys_enter_"): key = ev[len("syscalls:sys_enter_"):]
        elif ev.startswith("syscalls:sys_exit_epoll"): key = "epoll_wait → 0 events"
        elif any(ev.endswith(c) for c in ("read", "readv", "recvfrom", "recvmsg")): key = "read → EAGAIN"
        else: key = "write → EAGAIN"
        counts[key] = counts.get(key, 0) + v
    named = sum(v for k, v in counts.items() if k not in ("total", "read → EAGAIN", "write → EAGAIN", "epoll_wait → 0 events")
                and not k.startswith(("backend", "wrk", "CPU", "context", "TCP", "pure", "delayed", "user", "kernel")))
    counts["other"] = counts.get("total", 0) - named
    rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk)
    lat = {q: re.search(rf"^\s+{q}%\s+(\S+)", wrk, re.M) for q in ("50", "99")}
    latency = " / ".join(lat[q].group(1) if lat[q] else "—" for q in ("50", "99"))
    rows[p] = (n, counts, (bad.group(1) if bad else "0"), (errs.group(1) if errs else "none"),
               open(f"{out}/{p}.loadavg").read().strip(), split, rps.group(1) if rps else "—", latency)
order = ["total", "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_wait → 0 events", "epoll_ctl", "read", "readv", "recvfrom",
         "recvmsg", "read → EAGAIN", "write", "writev", "sendto", "sendmsg", "write → EAGAIN", "splice",
         "accept4", "connect", "setsockopt", "getsockopt", "close", "shutdown", "futex", "timerfd_settime", "clock_gettime", "other",
         "context switches", "CPU µs", "user CPU µs (/proc)", "kernel CPU µs (/proc)", "backend: system calls", "backend: context switches", "backend: CPU µs",
         "wrk: context switches", "wrk: CPU µs", "TCP segments (machine)", "pure ACKs received (machine)",
         "delayed ACKs sent (machine)"]
shown = [k for k in order if any(rows[p][1].get(k, 0) for p in proxies) or k == "total"]
print(f"System calls per request: T={threads}, wrk -t{wrk_threads} -c{conns} -d{duration} (perf stat on the proxy; CPU µs is perf's task-clock; the backend and wrk rows: their own counts over the same run)\n")
print("| per request | " + " | ".join(proxies) + " |")
print("|---|" + "---|" * len(proxies))
for k in shown:
    cells = []
    for p in proxies:
        n, c = rows[p][0], rows[p][1]
        v = c.get(k, 0) / n if n else 0.0
        cells.append(f"{v if abs(v) >= 0.0005 else 0.0:.3f}" if n else "—")
    label = f"**{k}**" if k == "total" else k
    print(f"| {label} | " + " | ".join(cells) + " |")
print("| requests (wrk) | " + " | ".join(f"{rows[p][0]:,}" for p in proxies) + " |")
print("| non-2xx / socket errors | " + " | ".join(f"{rows[p][2]} / {rows[p][3]}" for p in proxies) + " |")
print("| req/s (wrk; counting slows every proxy a little) | " + " | ".join(rows[p][6] for p in proxies) + " |")
print("| p50 / p99 (wrk --latency) | " + " | ".join(rows[p][7] for p in proxies) + " |")
print(f"| CPU split over the {threads} busiest threads | " + " | ".join(rows[p][5] for p in proxies) + " |")
print("| 1-min load before | " + " | ".join(rows[p][4] for p in proxies) + " |")
EOF
echo "raw outputs: $OUT"
