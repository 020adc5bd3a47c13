#!/usr/bin/env bash
# Classic analysis A1: how N=3 replicas share 10,000 requests with random ids.
# Starts a release ds-lb on a free loopback port, sends the requests with curl (keep-alive,
# one process), prints per-server counts, and stops what it started (by PID).
# Usage: bench/distribution.sh [requests] [hash-algorithm]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-10000}
hash=${2:-}
swift build -c release >/dev/null
log=$(mktemp)
.build/release/ds-lb --listen 127.0.0.1:0 --replicas 3 ${hash:+--hash "$hash"} 2>"$log" &
lb=$!
trap 'kill -TERM $lb 2>/dev/null; wait $lb 2>/dev/null; rm -f "$log" "$urls"' EXIT
for _ in $(seq 100); do grep -q 'ds-lb Listening on' "$log" && break; sleep 0.1; done
port=$(grep -o 'ds-lb Listening on 127.0.0.1:[0-9]*' "$log" | grep -o '[0-9]*$')
urls=$(mktemp)
python3 -c "
import random; random.seed(42)
for _ in range($requests): print('url = \"http://127.0.0.1:$port/home?id=%d\"' % random.randint(100000, 999999))
" > "$urls"
echo "requests: $requests, algorithm: ${hash:-default}"
curl --noproxy '*' -s -K "$urls" | grep -o 'Server: [0-9]*' | sort | uniq -c | sort -k3n
