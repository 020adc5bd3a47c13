#!/bin/bash
# User-space instructions (callgrind) and syscalls (strace -c) a proxy spends per keep-alive
# request over TLS: the TLS counterpart of bench/callgrind-request.sh. One worker/thread, one
# ds-server replica, one TLS 1.3 connection (TLS_AES_128_GCM_SHA256, ECDSA P-256 certificate,
# as bench/compare --tls) carrying N sequential GET /home?id=12345; the handshake and WARM
# requests on the same connection come before the counters are zeroed, so only the N
# keep-alive requests are counted. A fixed request count over one connection makes both counts
# independent of the machine's load. PROXY=ds-lb (default) or haproxy (the
# bench/compare.d/haproxy*.cfg.in configs with nbthread 1).
# Prints Ir per request for each callgrind round, then syscalls per request from one strace
# run (no valgrind); TOP=n adds the n costliest functions (self cost) of the last round.
# Usage: BIN=.build-rel/release [PROXY=ds-lb|haproxy] [ROUNDS=3] [N=2000] [TOP=0] bench/callgrind-tls-request.sh
set -u
BIN=${BIN:-.build/release}
PROXY=${PROXY:-ds-lb}
ROUNDS=${ROUNDS:-3}
N=${N:-2000}
WARM=${WARM:-200}
TOP=${TOP:-0}
PORT=${PORT:-18591}
SPORT=$((PORT - 10))
TPORT=$((PORT + 1))
SUITE=TLS_AES_128_GCM_SHA256
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/callgrind-summary.sh"
WORK=$(mktemp -d)
LB=; SRV=
trap 'kill $LB $SRV 2>/dev/null; rm -rf "$WORK"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/haproxy.pem"
objcopy --strip-debug "$BIN/ds-lb" "$WORK/ds-lb"
sed -e "s/@THREADS@/1/" -e "s/@PORT@/$PORT/" -e "s/@BACKEND_PORT@/$SPORT/" "$HERE/compare.d/haproxy.cfg.in" >"$WORK/haproxy.cfg"
sed -e "s/@TLS_PORT@/$TPORT/g" -e "s|@TLS_DIR@|$WORK|g" -e "s/@SUITE@/$SUITE/g" "$HERE/compare.d/haproxy-tls.cfg.in" >>"$WORK/haproxy.cfg"
nice -n 19 "$BIN/ds-server" --id 1 --host 127.0.0.1 --port "$SPORT" >/dev/null 2>&1 &
SRV=$!

# The client: one connection, WARM requests, then `$1 zero` runs, N requests, `$1 done` runs.
cat >"$WORK/client.py" <<'PY'
import http.client, ssl, subprocess, sys
port, warm, n, before, after = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx)
def get():
    c.request("GET", "/home?id=12345"); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
for _ in range(warm): get()
assert c.sock.cipher()[0] == "TLS_AES_128_GCM_SHA256", c.sock.cipher()
subprocess.run(before, shell=True, check=True)
for _ in range(n): get()
subprocess.run(after, shell=True, check=True)
c.close()
PY

start_proxy() { # $@: wrapper (valgrind ..., or nothing)
  if [ "$PROXY" = haproxy ]; then
    nice -n 19 "$@" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/lb.log" 2>&1 &
  else
    nice -n 19 "$@" "$WORK/ds-lb" serve --listen "127.0.0.1:$PORT" --tls-listen "127.0.0.1:$TPORT" \
      --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" --tls-ciphersuites "$SUITE" \
      --driver static --backend "server-1=127.0.0.1:$SPORT" --workers 1 --state-dir "$WORK/state" >"$WORK/lb.log" 2>&1 &
  fi
  LB=$!
  for _ in $(seq 600); do curl --noproxy '*' -sk -o /dev/null "https://127.0.0.1:$TPORT/home?id=12345" && return; sleep 0.5; done
  echo "proxy did not answer"; cat "$WORK/lb.log"; exit 1
}

for round in $(seq "$ROUNDS"); do
  start_proxy valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out"
  nice -n 19 python3 "$WORK/client.py" "$TPORT" "$WARM" "$N" \
    "callgrind_control -z $LB >/dev/null" "callgrind_control -d $LB >/dev/null"
  kill "$LB"; wait "$LB" 2>/dev/null; LB=
  dump=$(ls "$WORK"/cg.out.* | head -1)
  callgrind_summary "$dump" "$N" "$round" "$ROUNDS" "$TOP"
  rm -f "$WORK"/cg.out*
done

# Syscalls: strace attaches to every thread between the warm-up and the end of the N requests.
start_proxy
nice -n 19 python3 "$WORK/client.py" "$TPORT" "$WARM" "$N" \
  "strace -c -f -p $LB -o $WORK/strace.txt & echo \$! >$WORK/strace.pid; sleep 1" \
  "kill -INT \$(cat $WORK/strace.pid); sleep 1"
kill "$LB"; wait "$LB" 2>/dev/null; LB=
echo "syscalls per request (strace -c over $N requests):"
awk -v n="$N" '/^ *[0-9]/ { printf "  %-14s %.2f\n", $NF, $4 / n }' "$WORK/strace.txt"
