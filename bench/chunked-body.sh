#!/usr/bin/env bash
# A chunked POST /echo of MIB MiB (request and response body at once: ds-server's /echo sends the
# chunks back as they come) direct to ds-server and through ds-lb builds, in interleaved rounds;
# prints the median MiB/s of each and its ratio to direct (measured in the same rounds).
# Two clients: curl (-H 'Transfer-Encoding: chunked' -H 'Expect:' --data-binary @file; curl 7.88 sends
# 65,524-byte chunks) and a Python client sending CHUNK_MIB MiB chunks.
#
# Usage: bench/chunked-body.sh NAME=BIN_DIR[:THRESHOLD] ...
#   e.g. bench/chunked-body.sh before=/tmp/base after=.build-dp-rel/release after16k=.build-dp-rel/release:16K
# Env: ROUNDS (5), MIB (256), CHUNK_MIB (8), SERVER_BIN (ds-server of the first BIN_DIR).
# Not a test: figures depend on the machine and its load; see bench/RESULTS.md.
set -euo pipefail
ROUNDS=${ROUNDS:-5}
MIB=${MIB:-256}
CHUNK_MIB=${CHUNK_MIB:-8}
[ $# -ge 1 ] || { echo "usage: $0 NAME=BIN_DIR[:THRESHOLD] ..." >&2; exit 2; }
WORK=$(mktemp -d /tmp/ds-chunked-bench-XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do curl --noproxy '*' -s -o /dev/null -m 1 "http://127.0.0.1:$1/home?id=1" && return 0; sleep 0.1; done; echo "port $1 did not answer" >&2; exit 1; }

head -c $((MIB << 20)) /dev/urandom >"$WORK/body.bin"
first=${1#*=}; first=${first%%:*}
SERVER_BIN=${SERVER_BIN:-$first/ds-server}
BACKEND=$(free_port)
"$SERVER_BIN" --id 1 --host 127.0.0.1 --port "$BACKEND" 2>"$WORK/ds-server.stderr" & PIDS+=($!)
wait_port "$BACKEND"

declare -A PORT
NAMES=(direct)
PORT[direct]=$BACKEND
for spec in "$@"; do
  name=${spec%%=*}; rest=${spec#*=}; dir=${rest%%:*}; threshold=64K
  [[ $rest == *:* ]] && threshold=${rest#*:}
  port=$(free_port)
  "$dir/ds-lb" --listen "127.0.0.1:$port" --driver static --backend "server-1=127.0.0.1:$BACKEND" \
    --splice-threshold "$threshold" 2>"$WORK/$name.stderr" & PIDS+=($!)
  wait_port "$port"
  PORT[$name]=$port
  NAMES+=("$name")
done

curl_once() {
  # -H 'Expect:': ds-server does not answer 100-continue, and curl would wait 1 s for it
  # (ds-lb answers it itself, which would flatter the proxies).
  curl --noproxy '*' -s -o /dev/null -m 300 -w '%{time_total}\n' -H 'Transfer-Encoding: chunked' -H 'Expect:' \
    --data-binary @"$WORK/body.bin" "http://127.0.0.1:$1/echo?id=1"
}
big_once() {
  python3 - "$1" "$WORK/body.bin" "$CHUNK_MIB" <<'EOF'
import socket, sys, threading, time
port, path, chunk = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]) << 20
data = memoryview(open(path, 'rb').read())
framed = 0
s = socket.create_connection(('127.0.0.1', port))
def send():
    global framed
    s.sendall(b'POST /echo?id=1 HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n')
    for i in range(0, len(data), chunk):
        piece = data[i:i + chunk]
        s.sendall(b'%x\r\n' % len(piece)); s.sendall(piece); s.sendall(b'\r\n')
    s.sendall(b'0\r\n\r\n')
start = time.monotonic()
t = threading.Thread(target=send); t.start()
n = len(data); pieces = (n + chunk - 1) // chunk
expected = sum(len(b'%x\r\n' % min(chunk, n - i)) + min(chunk, n - i) + 2 for i in range(0, n, chunk)) + 5
buf = bytearray(1 << 20); got = b''
while b'\r\n\r\n' not in got:
    k = s.recv_into(buf); got += bytes(buf[:k])
body = len(got) - got.index(b'\r\n\r\n') - 4
while body < expected:
    k = s.recv_into(buf)
    if k == 0: sys.exit('closed early')
    body += k
print('%.4f' % (time.monotonic() - start)); t.join()
EOF
}

for r in $(seq "$ROUNDS"); do
  # Rotate the order each round so no target always runs first.
  for ((k = 0; k < ${#NAMES[@]}; k++)); do
    name=${NAMES[$(( (k + r) % ${#NAMES[@]} ))]}
    echo "curl $name $(curl_once "${PORT[$name]}")" >>"$WORK/times"
    echo "big $name $(big_once "${PORT[$name]}")" >>"$WORK/times"
  done
done

python3 - "$WORK/times" "$MIB" "${NAMES[@]}" <<'EOF'
import statistics, sys
path, mib, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
runs = {}
for line in open(path):
    client, name, seconds = line.split()
    runs.setdefault((client, name), []).append(float(seconds))
for client, label in (('curl', 'curl, 65,524-byte chunks'), ('big', 'large chunks')):
    direct = statistics.median(runs[(client, 'direct')])
    print(f'{label}: median MiB/s over {len(runs[(client, "direct")])} rounds (ratio to direct)')
    for name in names:
        t = runs[(client, name)]
        m = statistics.median(t)
        print(f'  {name:10} {mib / m:8.0f}  ({direct / m:.2f}x)   runs: ' + ' '.join(f'{mib / x:.0f}' for x in t))
EOF
