#!/usr/bin/env bash
# The Docker driver end to end against a real Docker engine:
#   make images; ds-lb --driver docker; /add ×3 → server-1…3 run; /home answers;
#   docker stop / kill / rm -f server-2 → "[!] Server 2 failed heartbeat. Restarting..." then
#   "[+] Server 2 restarted", server-2 runs again and serves; /rm removes its container; /add with
#   hostnames names the containers; a foreign server-9 is left alone and /add of it is refused;
#   a restarted ds-lb adopts the running containers (none created, none removed); the same from
#   ds-lb's own image with the Docker socket mounted; with --on-failure replace --max-restarts 0,
#   docker kill server-2 → server-4 takes its place in /rep, server-2 is gone, N unchanged;
#   cluster mode on one engine: one etcd member, nodes n1 and n2 (--driver docker --etcd), the
#   replicas spread over both, each container named and labelled with the node that runs it and
#   listening on its address; kill -9 of n1's ds-lb → n2 runs every replica under the same names.
# Installs docker.io when missing and runs a private dockerd (vfs, its own socket and roots, no
# bridge) so it collides with no other engine or concurrent run, and stops it by
# PID at the end. Every container uses host networking and 127.0.0.1. Under CI=true a skip fails.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "docker-e2e: $*"; }
fail() { echo "docker-e2e: FAIL: $*" >&2; exit 1; }
skip() {
  echo "docker-e2e: SKIP: $*"
  if [ "${CI:-}" = true ]; then echo "docker-e2e: under CI=true a skip is a failure" >&2; exit 1; fi
  exit 0
}

work=$(mktemp -d /tmp/ds-lb-docker-e2e.XXXXXX)
pool="e2e-$$"
dockerd_pid=""
lb_pid=""
foreign_id=""
lb_container=""
etcd_pid=""
n1_pid=""
n2_pid=""

cleanup() {
  set +e
  [ -n "$lb_pid" ] && kill "$lb_pid" 2>/dev/null && wait "$lb_pid" 2>/dev/null
  for p in "$n1_pid" "$n2_pid" "$etcd_pid"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  if [ -n "$dockerd_pid" ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    [ -n "$lb_container" ] && docker rm -f "$lb_container" >/dev/null 2>&1
    ids=$(for p in "$pool" "$pool-auto" "$pool-replace" "$pool-cluster"; do docker ps -aq --filter "label=ds-lb.pool=$p"; done)
    [ -n "$ids" ] && docker rm -f $ids >/dev/null
    [ -n "$foreign_id" ] && docker rm -f "$foreign_id" >/dev/null 2>&1
  fi
  if [ -n "$dockerd_pid" ]; then
    say "stopping the dockerd we started (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$dockerd_pid" 2>/dev/null
    # dockerd leaves its network namespace bind-mounted under the exec root.
    grep -o " $work/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null; done
  fi
  if [ "${KEEP_LOGS:-}" = 1 ]; then say "logs kept in $work"; else rm -rf "$work" 2>/dev/null || say "could not remove all of $work"; fi
}
trap cleanup EXIT

# --- an engine of our own ----------------------------------------------------------------------
# A private dockerd (own socket, data and exec roots, no bridge: every container here uses host
# networking), so concurrent runs and whatever the host's engine runs cannot collide with the
# container names this test needs; stopped by PID at the end.
if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
  [ "$(id -u)" -eq 0 ] || skip "docker.io is not installed and we are not root to install it"
  say "installing docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || skip "apt-get update failed: no way to install docker.io"
  apt-get install -y -qq docker.io >/dev/null || skip "apt-get install docker.io failed"
fi
[ "$(id -u)" -eq 0 ] || skip "starting a Docker engine needs root"
sock="$work/docker.sock"
engine_answers() { curl -sf --max-time 3 --unix-socket "$sock" http://docker/_ping >/dev/null 2>&1; }
say "starting dockerd --storage-driver=vfs on $sock (log: $work/dockerd.log)"
dockerd --storage-driver=vfs -H "unix://$sock" --data-root "$work/docker-data" --exec-root "$work/docker-exec" \
  --pidfile "$work/dockerd.pid" --bridge=none --iptables=false >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 150); do engine_answers && break; kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
engine_answers || { tail -20 "$work/dockerd.log" >&2; skip "dockerd did not come up (see its log above)"; }
export DOCKER_HOST="unix://$sock"
say "engine: $(curl -s --unix-socket "$sock" http://docker/version | grep -o '"Version":"[^"]*"' | head -1)"
for name in server-1 server-2 server-3 server-4 server-9 alpha beta ds-lb-e2e; do
  if docker inspect "$name" >/dev/null 2>&1; then fail "a container named $name already exists; this test needs the name"; fi
done

# --- images -----------------------------------------------------------------------------------
t0=$(date +%s)
make -s images
say "images built in $(( $(date +%s) - t0 )) s"
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
bin=$("$SWIFT" build -c release --static-swift-stdlib --scratch-path "${SCRATCH:-.build-install}" --show-bin-path)

# --- helpers ----------------------------------------------------------------------------------
log="$work/ds-lb.log"
state="$work/state"
interval=1s
start_lb() {
  : >"$log"
  "$bin/ds-lb" --driver docker --pool "$pool" --replicas 0 --listen "127.0.0.1:${port:-0}" --state-dir "$state" \
    --heartbeat-interval $interval --heartbeat-timeout 1s --drain-timeout 1s >>"$log" 2>&1 &
  lb_pid=$!
  for _ in $(seq 1 100); do grep -q "Listening on" "$log" && break; kill -0 $lb_pid 2>/dev/null || break; sleep 0.1; done
  grep -q "Listening on" "$log" || { cat "$log" >&2; fail "ds-lb did not start"; }
  port=$(grep -o 'Listening on 127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2)
}
stop_lb() {
  kill "$lb_pid"; wait "$lb_pid" || true; lb_pid=""
}
url() { echo "http://127.0.0.1:$port$1"; }
# wait_for TIMEOUT_S COMMAND...: retries the command every 0.1 s.
wait_for() {
  local deadline=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s%N)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
running() { [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
gone() { ! docker inspect "$1" >/dev/null 2>&1; }
count() { grep -cF -- "$1" "${2:-$log}" || true; }
log_has_more() { [ "$(count "$1" "${3:-$log}")" -gt "$2" ]; }
all_keys_served() {
  for id in $(seq 1 40); do
    curl -sf --max-time 2 "$(url "/home?id=$id")" | grep -q "Hello from Server" || return 1
  done
}
pool_ids() { docker ps -aq --no-trunc --filter "label=ds-lb.pool=$pool" | sort; }

# --- scale up -----------------------------------------------------------------------------------
start_lb
say "ds-lb on port $port, pool $pool"
for k in 1 2 3; do
  t=$(date +%s%N)
  body=$(curl -sf -X POST "$(url /add)") || fail "/add $k failed: $body"
  echo "$body" | grep -q "\"server-$k\"" || fail "/add $k answered $body"
  say "/add → server-$k answered in $(( ($(date +%s%N) - t) / 1000000 )) ms (container created, started, first heartbeat passed)"
done
for k in 1 2 3; do
  running "server-$k" || fail "container server-$k is not running"
  labels=$(docker inspect -f '{{index .Config.Labels "ds-lb.managed"}} {{index .Config.Labels "ds-lb.pool"}} {{index .Config.Labels "ds-lb.id"}}' "server-$k")
  [ "$labels" = "true $pool $k" ] || fail "server-$k has labels '$labels'"
  docker inspect -f '{{.HostConfig.NetworkMode}}' "server-$k" | grep -qx host || fail "server-$k is not on host networking"
done
answer=$(curl -sf "$(url '/home?id=12')")
echo "$answer" | grep -qE 'Hello from Server: [123]"' || fail "/home?id=12 answered $answer"
say "ok: /add ×3 → server-1…3 running with labels; /home?id=12 → $answer"

# --- failures are repaired -------------------------------------------------------------------------
for action in stop kill "rm -f"; do
  down_before=$(count "[!] Server 2 failed heartbeat. Restarting...")
  up_before=$(count "[+] Server 2 restarted")
  old_id=$(docker inspect -f '{{.Id}}' server-2)
  t=$(date +%s%N)
  docker $action server-2 >/dev/null
  # interval + timeout + 5 s
  wait_for 7 log_has_more "[!] Server 2 failed heartbeat. Restarting..." "$down_before" || { cat "$log" >&2; fail "docker $action: no failed-heartbeat line"; }
  t_down=$(( ($(date +%s%N) - t) / 1000000 ))
  wait_for 20 log_has_more "[+] Server 2 restarted" "$up_before" || { cat "$log" >&2; fail "docker $action: no restarted line"; }
  t_up=$(( ($(date +%s%N) - t) / 1000000 ))
  # The two lines in order: the last "failed" comes before the last "restarted".
  last_down=$(grep -nF "[!] Server 2 failed heartbeat. Restarting..." "$log" | tail -1 | cut -d: -f1)
  last_up=$(grep -nF "[+] Server 2 restarted" "$log" | tail -1 | cut -d: -f1)
  [ "$last_down" -lt "$last_up" ] || fail "docker $action: lines out of order"
  running server-2 || fail "docker $action: server-2 is not running after the restart"
  [ "$(docker inspect -f '{{.Id}}' server-2)" != "$old_id" ] || fail "docker $action: server-2 is the old container"
  wait_for 5 all_keys_served || fail "docker $action: not every key is served after the restart"
  say "ok: docker $action server-2 → failed-heartbeat line after ${t_down} ms, restarted after ${t_up} ms, all keys served"
done

# --- /rm and /add with hostnames -------------------------------------------------------------------
body=$(curl -sf -X DELETE -d '{"hostnames":["server-3"]}' "$(url /rm)") || fail "/rm failed"
echo "$body" | grep -q '"server-3"' && fail "/rm answered $body"
wait_for 15 gone server-3 || fail "/rm: container server-3 still exists"
no_retired() { [ -z "$(docker ps -aq --filter name=server-3-retired)" ]; }
wait_for 15 no_retired || fail "/rm: the retired container of server-3 still exists"
body=$(curl -sf -X POST -d '{"hostnames":["alpha","beta"]}' "$(url /add)") || fail "/add alpha beta failed"
running alpha && running beta || fail "/add with hostnames: alpha and beta are not running"
say "ok: /rm server-3 removed its container; /add {alpha, beta} → containers alpha, beta"

# --- a foreign container is left alone -------------------------------------------------------------
foreign_id=$(docker run -d --name server-9 --network host --entrypoint /usr/local/bin/ds-server ds-server:latest \
  --id 9 --host 127.0.0.1 --port 0)
sleep 1  # the driver refreshes its view of the engine twice a second
code=$(curl -s -o "$work/foreign.json" -w '%{http_code}' -X POST -d '{"hostnames":["server-9"]}' "$(url /add)")
[ "$code" = 409 ] || fail "/add server-9 over a foreign container: expected 409, got $code"
grep -q "not managed by ds-lb" "$work/foreign.json" || fail "/add server-9: unclear refusal: $(cat "$work/foreign.json")"
[ "$(docker inspect -f '{{.Id}}' server-9)" = "$foreign_id" ] && running server-9 || fail "the foreign server-9 was touched"
say "ok: foreign server-9 left alone; /add refused with $code: $(cat "$work/foreign.json")"

# --- a restarted ds-lb adopts its containers ---------------------------------------------------------
before=$(pool_ids)
stop_lb
[ "$(pool_ids)" = "$before" ] || fail "stopping ds-lb changed the pool's containers"
t=$(date +%s%N)
start_lb
say "ds-lb restarted and listening after $(( ($(date +%s%N) - t) / 1000000 )) ms"
[ "$(pool_ids)" = "$before" ] || fail "restart: containers were created or removed"
[ "$(count "[i] Adopted container")" -eq 4 ] || { cat "$log" >&2; fail "restart: expected 4 adopted containers"; }
curl -sf "$(url /rep)" | grep -q '"N": 4' || fail "restart: /rep is not the 4 replicas"
wait_for 5 all_keys_served || fail "restart: not every key is served"
sleep 2
[ "$(pool_ids)" = "$before" ] || fail "restart: containers changed after start"
say "ok: restarted ds-lb adopted server-1, server-2, alpha, beta — none created, none removed"

# --- ds-lb from its own image ------------------------------------------------------------------------
stop_lb
lb_container=ds-lb-e2e
docker run -d --name $lb_container --network host -v "$sock:/var/run/docker.sock" -v "$state:/var/lib/ds-lb" \
  ds-lb:latest --driver docker --pool "$pool" --replicas 0 --listen "127.0.0.1:$port" \
  --heartbeat-interval $interval --heartbeat-timeout 1s --drain-timeout 1s >/dev/null
clog="$work/ds-lb-container.log"
container_log() { docker logs $lb_container >"$clog" 2>&1; grep -q "$1" "$clog"; }
wait_for 15 container_log "Listening on" || { docker logs $lb_container >&2; fail "ds-lb in its container did not start"; }
[ "$(pool_ids)" = "$before" ] || fail "containerised ds-lb: containers were created or removed"
wait_for 5 all_keys_served || fail "containerised ds-lb: not every key is served"
docker stop server-1 >/dev/null
wait_for 7 container_log "Server 1 failed heartbeat. Restarting..." || { cat "$clog" >&2; fail "containerised ds-lb: no failed-heartbeat line"; }
wait_for 20 container_log "Server 1 restarted" || { cat "$clog" >&2; fail "containerised ds-lb: no restarted line"; }
running server-1 || fail "containerised ds-lb: server-1 not running"
curl -sf -X POST -d '{"hostnames":["server-3"]}' "$(url /add)" >/dev/null || fail "containerised ds-lb: /add failed"
running server-3 || fail "containerised ds-lb: server-3 not running"
wait_for 5 all_keys_served || fail "containerised ds-lb: not every key is served"
say "ok: ds-lb from ds-lb:latest (socket mounted) adopted the pool, repaired docker stop server-1, added server-3"
docker rm -f $lb_container >/dev/null; lb_container=""

# --- --driver auto (the default: no --driver given) ---------------------------------------------------
# (The main pool is gone first: the names server-1… are free again.)
# Docker when the engine answers and has the image; local processes otherwise; the choice is logged.
auto_run() { # $1 = image, $2 = expected line; own pool and state, so the main pool is not touched
  local alog="$work/auto.log" apid
  # Emptied here, not by the background job's redirection, which may run after the wait below
  # has already read the previous run's "Listening on".
  : >"$alog"
  "$bin/ds-lb" --image "$1" --pool "$pool-auto" --replicas 1 --listen 127.0.0.1:0 \
    --state-dir "$work/auto-state-$RANDOM" --heartbeat-interval $interval >>"$alog" 2>&1 &
  apid=$!
  wait_for 15 grep -q "Listening on" "$alog" || { cat "$alog" >&2; kill $apid; fail "--driver auto did not start"; }
  local aport=$(grep -o 'Listening on 127.0.0.1:[0-9]*' "$alog" | head -1 | cut -d: -f2)
  curl -sf "http://127.0.0.1:$aport/home?id=1" | grep -q "Hello from Server: 1" || { kill $apid; fail "--driver auto: /home failed"; }
  grep -qF -- "$2" "$alog" || { cat "$alog" >&2; kill $apid; fail "--driver auto: expected '$2' in the log"; }
  kill $apid; wait $apid || true
  say "ok: --driver auto --image $1 → $(grep -o '\-\-driver auto: using [a-z]*' "$alog")"
}
docker rm -f $(pool_ids) >/dev/null
auto_run ds-server:latest "--driver auto: using docker"
running server-1 || fail "--driver auto (docker): no container server-1"
docker rm -f $(docker ps -aq --filter "label=ds-lb.pool=$pool-auto") >/dev/null
auto_run ds-lb-e2e-no-such-image:latest "--driver auto: using process"
# No engine at all (a socket path nobody listens on): processes, without waiting for a timeout.
DOCKER_HOST="unix://$work/no-engine.sock" auto_run ds-server:latest "--driver auto: using process"

# --- --on-failure replace --max-restarts 0: a killed replica is replaced under a new name ----------
rlog="$work/replace.log"
: >"$rlog"
"$bin/ds-lb" --driver docker --pool "$pool-replace" --replicas 0 --listen 127.0.0.1:0 --state-dir "$work/replace-state" \
  --heartbeat-interval $interval --heartbeat-timeout 1s --drain-timeout 1s --on-failure replace --max-restarts 0 >>"$rlog" 2>&1 &
lb_pid=$!
wait_for 15 grep -q "ds-lb Listening on" "$rlog" || { cat "$rlog" >&2; fail "replace: ds-lb did not start"; }
port=$(grep -o 'ds-lb Listening on 127.0.0.1:[0-9]*' "$rlog" | head -1 | cut -d: -f2)
body=$(curl -sf -X POST -d '{"n": 3}' "$(url /add)") || fail "replace: /add n=3 failed: $body"
echo "$body" | grep -q '"replicas": \["server-1", "server-2", "server-3"\]' || fail "replace: /add answered $body"
wait_for 5 all_keys_served || fail "replace: not every key is served"
rep_is() { curl -sf "$(url /rep)" | grep -qF "$1"; }
t=$(date +%s%N)
docker kill server-2 >/dev/null
# The exit is noticed at once (engine events); the replacement is listed as soon as it is made.
wait_for 10 rep_is '"N": 3, "replicas": ["server-1", "server-4", "server-3"]' \
  || { curl -s "$(url /rep)" >&2; cat "$rlog" >&2; fail "replace: /rep does not list server-4 in place of server-2"; }
t_rep=$(( ($(date +%s%N) - t) / 1000000 ))
wait_for 15 gone server-2 || fail "replace: the killed container server-2 still exists"
wait_for 20 running server-4 || fail "replace: container server-4 is not running"
[ "$(docker inspect -f '{{index .Config.Labels "ds-lb.pool"}}' server-4)" = "$pool-replace" ] || fail "replace: server-4 is not in the pool"
wait_for 20 grep -qF "[+] Server 4 started in place of server-2" "$rlog" || { cat "$rlog" >&2; fail "replace: server-4 did not come up"; }
t_up=$(( ($(date +%s%N) - t) / 1000000 ))
wait_for 5 all_keys_served || fail "replace: not every key is served after the replacement"
grep -qF "[!] Server 2 is replaced by server-4" "$rlog" || fail "replace: no replacement line"
[ "$(count "Restarting" "$rlog")" -eq 0 ] || { cat "$rlog" >&2; fail "replace: something was restarted"; }
say "ok: --on-failure replace --max-restarts 0: docker kill server-2 → /rep [server-1, server-4, server-3] after ${t_rep} ms, server-2 gone, server-4 up after ${t_up} ms"
kill "$lb_pid"; wait "$lb_pid" || true; lb_pid=""
docker rm -f $(docker ps -aq --filter "label=ds-lb.pool=$pool-replace") >/dev/null

# --- cluster mode: two nodes on one engine ----------------------------------------------------------
# One etcd member on free loopback ports; node n1 advertises 127.0.0.1 and n2 127.0.0.2 (their
# --listen hosts), as two hosts would their own addresses: a replica moving between them gets a
# port of its own on the new address, even while the old copy still listens.
cpool="$pool-cluster"
read -r etcd_client etcd_peer < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
/usr/bin/etcd --name e2e --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$etcd_client" \
  --advertise-client-urls "http://127.0.0.1:$etcd_client" --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" --initial-cluster "e2e=http://127.0.0.1:$etcd_peer" \
  >"$work/etcd.log" 2>&1 &
etcd_pid=$!
wait_for 20 curl -sf "http://127.0.0.1:$etcd_client/health" || { tail -20 "$work/etcd.log" >&2; fail "cluster: etcd did not come up"; }
start_node() { # $1 = node name, $2 = its address; sets node_pid and node_port
  local nlog="$work/$1.log"
  "$bin/ds-lb" --driver docker --pool "$cpool" --replicas 4 --listen "$2:0" --etcd "http://127.0.0.1:$etcd_client" \
    --node-name "$1" --node-lease 2s --heartbeat-interval $interval --heartbeat-timeout 1s --drain-timeout 1s >"$nlog" 2>&1 &
  node_pid=$!
  wait_for 20 grep -q "Listening on" "$nlog" || { cat "$nlog" >&2; fail "cluster: node $1 did not start"; }
  node_port=$(grep -o "Listening on $2:[0-9]*" "$nlog" | head -1 | cut -d: -f2)
}
start_node n1 127.0.0.1; n1_pid=$node_pid
start_node n2 127.0.0.2; n2_pid=$node_pid; n2_port=$node_port
url() { echo "http://127.0.0.2:$n2_port$1"; }
# "<replica> <node>" for each running container of the pool (named <replica>.<node>, labelled
# with the node), sorted; a name whose suffix is not its label's node is printed whole.
placed() {
  docker ps --filter "label=ds-lb.pool=$cpool" --format '{{.Names}} {{.Label "ds-lb.node"}}' \
    | awk '{ n = $1; sub("[.]" $2 "$", "", n); print n, $2 }' | sort
}
status_nodes() {
  curl -sf "$(url /status)" | python3 -c 'import json,sys
print("\n".join(sorted(r["name"] + " " + r.get("node", "") for r in json.load(sys.stdin)["message"]["replicas"] if r["state"] == "UP")))'
}
# The pool's 4 replicas up, over both nodes, each container labelled with the node /status names.
spread_matches() {
  local now; now=$(placed)
  [ "$(echo "$now" | wc -l)" -eq 4 ] && echo "$now" | grep -q ' n1$' && echo "$now" | grep -q ' n2$' || return 1
  [ "$(status_nodes)" = "$now" ]
}
wait_for 60 spread_matches || { placed >&2; status_nodes >&2; cat "$work/n1.log" "$work/n2.log" >&2; fail "cluster: the 4 replicas are not up over n1 and n2 as labelled"; }
before=$(placed)
while read -r replica node; do
  addr=127.0.0.1; [ "$node" = n2 ] && addr=127.0.0.2
  docker inspect -f '{{index .Config.Labels "ds-lb.host"}} {{join .Config.Cmd " "}}' "$replica.$node" | grep -q "^$addr .*--host $addr " \
    || fail "cluster: $replica.$node does not listen on $node's advertise address $addr"
done <<<"$before"
wait_for 10 all_keys_served || fail "cluster: not every key is served through n2"
say "ok: cluster on one engine: $(echo "$before" | tr '\n' ',' | sed 's/,$//') (replica node), as /status says, each on its node's address"
t=$(date +%s%N)
kill -9 "$n1_pid"; wait "$n1_pid" 2>/dev/null || true; n1_pid=""
# n1's containers outlive its ds-lb (left to n1's next start); n2 runs every replica itself.
all_on_n2() {
  [ "$(placed | grep ' n2$')" = "$(echo "$before" | cut -d' ' -f1 | sed 's/$/ n2/')" ] || return 1
  [ "$(status_nodes)" = "$(echo "$before" | cut -d' ' -f1 | sed 's/$/ n2/')" ]
}
wait_for 30 all_on_n2 || { placed >&2; status_nodes >&2; cat "$work/n2.log" >&2; fail "cluster: n2 did not take over n1's replicas under the same names"; }
t_over=$(( ($(date +%s%N) - t) / 1000000 ))
wait_for 10 all_keys_served || fail "cluster: not every key is served after the take-over"
say "ok: cluster: kill -9 of n1's ds-lb → n2 runs all 4 under the same names, up after ${t_over} ms (lease 2s)"
kill "$n2_pid"; wait "$n2_pid" || true; n2_pid=""
kill "$etcd_pid"; wait "$etcd_pid" || true; etcd_pid=""
docker rm -f $(docker ps -aq --filter "label=ds-lb.pool=$cpool") >/dev/null

say "PASS"
