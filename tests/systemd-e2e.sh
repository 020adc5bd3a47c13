#!/usr/bin/env bash
# End-to-end test of ds-lb under a real systemd: a Debian 12 root with systemd, booted
# with systemd-nspawn on the host network, ds-lb installed into it with `make install`.
#
#   tests/systemd-e2e.sh            (root; run by `make test`)
#
# The debootstrapped root is cached in $DS_LB_E2E_CACHE (default /var/cache/ds-lb-e2e) and copied
# for each run, so a run starts from a clean root. Everything started here is stopped by PID on
# exit, on failure too. Under CI=true a missing prerequisite is a failure, not a skip.
# Several runs may share a machine (and the container shares the host network): the traffic,
# admin and FD-store ports are picked free at run time and written into the installed units.
# No pipefail: `cmd | grep -q` checks would fail on the SIGPIPE grep -q causes by exiting early.
set -eu

cd "$(dirname "$0")/.."
REPO=$PWD
CACHE=${DS_LB_E2E_CACHE:-/var/cache/ds-lb-e2e}
INCLUDE=systemd,dbus,libstdc++6,procps
STARTED=$(date +%s)

say() { printf '[e2e %3ss] %s\n' "$(( $(date +%s) - STARTED ))" "$*"; }
fail() { say "FAIL: $*"; exit 1; }
skip() {
  if [ "${CI:-}" = true ]; then fail "cannot run under CI=true: $*"; fi
  say "SKIP: $*"; exit 0
}

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, systemd-nspawn, nsenter)"
[ "$(uname -s)" = Linux ] || skip "needs Linux"

# --- prerequisites ------------------------------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v curl >/dev/null || need+=(curl)
command -v nsenter >/dev/null || need+=(util-linux)
command -v flock >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
  say "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || skip "cannot install ${need[*]}"
fi

# --- ports: free ones, picked now --------------------------------------------------------------
# Below the kernel's ephemeral range, so no outgoing connection (nor a test on port 0) holds one
# by the time the container binds it; not bound by any socket now; and reserved against other
# runs of this script by a lock file held until this shell exits.
PORT_LOCKS=${TMPDIR:-/tmp}/ds-lb-e2e-ports
mkdir -p "$PORT_LOCKS"
in_use() { awk -v p="$(printf '%04X' "$1")" 'FNR > 1 { split($2, a, ":"); if (a[2] == p) found = 1 } END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null; }
pick_port() {  # pick_port VAR: sets VAR to the port, keeps its lock fd open
  local lo _hi port fd
  read -r lo _hi </proc/sys/net/ipv4/ip_local_port_range
  [ "$lo" -gt 11024 ] || lo=32768
  for _ in $(seq 1 500); do
    port=$(( 10000 + RANDOM % (lo - 10000) ))
    in_use "$port" && continue
    exec {fd}>"$PORT_LOCKS/$port.lock"
    if flock -n "$fd" && ! in_use "$port"; then printf -v "$1" %s "$port"; return 0; fi
    exec {fd}>&-
  done
  fail "no free port for $1 after 500 tries"
}
pick_port PORT
pick_port ADMIN_PORT
pick_port PORT2
URL="http://127.0.0.1:$PORT"
say "ports: traffic $PORT, admin $ADMIN_PORT, FD-store run $PORT2 (127.0.0.1)"

# --- the cached Debian 12 root ------------------------------------------------------------
mirror() {
  # The mirror apt already uses (deb822 sources first, then sources.list), else Debian's CDN.
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
  [ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' | grep -v security | head -1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}
WORK=$(mktemp -d /var/tmp/ds-lb-e2e.XXXXXX)
ROOT=$WORK/root
NSPAWN_PID=
DEBOOTSTRAP_PID=
LOAD_PIDS=()
cleanup() {
  local rc=$?
  set +e
  # debootstrap runs in its own process group (setsid): stop the whole group.
  [ -n "$DEBOOTSTRAP_PID" ] && kill -- "-$DEBOOTSTRAP_PID" 2>/dev/null && wait "$DEBOOTSTRAP_PID" 2>/dev/null
  for pid in "${LOAD_PIDS[@]}"; do pkill -P "$pid" 2>/dev/null; kill "$pid" 2>/dev/null; done
  for pid in "${LOAD_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
    if [ $rc -ne 0 ] && [ -n "${CPID:-}" ]; then
      say "journal of ds-lb (last 60 lines):"
      nsenter -t "$CPID" -a journalctl -u ds-lb -u ds-lb.socket --no-pager -n 60 2>/dev/null
    fi
    # SIGTERM asks systemd-nspawn to power the container off; SIGKILL if that hangs.
    kill -TERM "$NSPAWN_PID"
    for _ in $(seq 1 60); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$NSPAWN_PID" 2>/dev/null && { say "container did not stop in 30 s: SIGKILL"; kill -KILL "$NSPAWN_PID"; }
    wait "$NSPAWN_PID" 2>/dev/null
  fi
  if [ $rc -ne 0 ] && [ -s "$WORK/console.log" ]; then say "container console (last 20 lines):"; tail -20 "$WORK/console.log"; fi
  rm -rf "$WORK"
  say "done (exit $rc)"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The cached root: built once by debootstrap, in the background while `make install` compiles
# (one is network-bound, the other CPU-bound).
BASE=$CACHE/bookworm-$(echo "$INCLUDE" | md5sum | cut -c1-8)
if [ ! -e "$BASE/.complete" ]; then
  MIRROR=$(mirror)
  say "debootstrap Debian 12 into $BASE (once; cached) from $MIRROR, in the background"
  mkdir -p "$CACHE"
  setsid bash -c '
    base=$1 include=$2 mirror=$3 log=$4
    # Another run may be building the same cache: wait for it, then use its root.
    exec 9>"$base.lock"; flock 9
    [ -e "$base/.complete" ] && exit 0
    for attempt in 1 2 3; do
      rm -rf "$base.tmp"
      if debootstrap --variant=minbase --include="$include" bookworm "$base.tmp" "$mirror" >"$log" 2>&1; then
        touch "$base.tmp/.complete"; rm -rf "$base"; mv "$base.tmp" "$base"; exit 0
      fi
      echo "debootstrap attempt $attempt failed" >>"$log.attempts"; tail -5 "$log" >>"$log.attempts"; sleep 5
    done
    exit 1' debootstrap "$BASE" "$INCLUDE" "$MIRROR" "$CACHE/debootstrap.log" </dev/null &
  DEBOOTSTRAP_PID=$!
fi

say "make install DESTDIR=$WORK/stage PREFIX=/usr/local (release, static Swift runtime)"
make -s install DESTDIR="$WORK/stage" PREFIX=/usr/local >"$WORK/install.log" 2>&1 || { tail -30 "$WORK/install.log"; fail "make install"; }
if [ -n "$DEBOOTSTRAP_PID" ]; then
  say "waiting for debootstrap"
  wait "$DEBOOTSTRAP_PID" || { cat "$CACHE/debootstrap.log.attempts" 2>/dev/null; fail "debootstrap failed 3 times"; }
  DEBOOTSTRAP_PID=
  say "debootstrap done"
fi
[ -e "$BASE/.complete" ] || fail "no debootstrapped root at $BASE"
say "copy the root to $ROOT and install into it"
cp -a "$BASE" "$ROOT"
cp -a "$WORK/stage/." "$ROOT/"
[ -x "$ROOT/usr/local/bin/ds-lb" ] && [ -x "$ROOT/usr/local/bin/ds-server" ] || fail "binaries not installed"
[ -f "$ROOT/usr/local/lib/systemd/system/ds-lb.service" ] || fail "units not installed"
UNITS=$ROOT/usr/local/lib/systemd/system
sed -i "s/^ListenStream=5000\$/ListenStream=$PORT/" "$UNITS/ds-lb.socket"
sed -i "s/^ListenStream=127\.0\.0\.1:5001\$/ListenStream=127.0.0.1:$ADMIN_PORT/" "$UNITS/ds-lb-admin.socket"
grep -qx "ListenStream=$PORT" "$UNITS/ds-lb.socket" || fail "ds-lb.socket: no ListenStream=5000 line to move to port $PORT"
grep -qx "ListenStream=127.0.0.1:$ADMIN_PORT" "$UNITS/ds-lb-admin.socket" \
  || fail "ds-lb-admin.socket: no ListenStream=127.0.0.1:5001 line to move to port $ADMIN_PORT"

say "boot the container (systemd-nspawn --boot, host network)"
systemd-nspawn --boot --register=no --keep-unit --console=passive -D "$ROOT" \
  --machine="ds-lb-e2e-$(basename "$WORK" | cut -d. -f2)-$$" >"$WORK/console.log" 2>&1 &
NSPAWN_PID=$!

# The container's PID 1, seen from the host: the descendant of systemd-nspawn named systemd.
CPID=
for _ in $(seq 1 120); do
  kill -0 "$NSPAWN_PID" 2>/dev/null || fail "systemd-nspawn exited"
  for pid in $(pgrep -P "$NSPAWN_PID") $(for c in $(pgrep -P "$NSPAWN_PID"); do pgrep -P "$c"; done); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ] && { CPID=$pid; break; }
  done
  [ -n "$CPID" ] && break
  sleep 0.25
done
[ -n "$CPID" ] || fail "no systemd inside the container after 30 s"
in_ct() { nsenter -t "$CPID" -a "$@"; }
sctl() { in_ct systemctl --no-pager "$@"; }
state=
for _ in $(seq 1 120); do
  state=$(in_ct systemctl is-system-running 2>/dev/null || true)
  case "$state" in running|degraded) break ;; esac
  sleep 0.5
done
case "$state" in running|degraded) ;; *) fail "container did not finish booting (state: '$state')" ;; esac
say "container booted: systemd PID $CPID on the host, state $state"

# Polls `$@` until it succeeds, for up to $1 seconds.
wait_for() {
  local limit=$1; shift
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
main_pid() { sctl show -p MainPID --value ds-lb.service; }
journal() { in_ct journalctl -u ds-lb --no-pager -o cat "$@"; }
all_up() { sctl show -p StatusText --value ds-lb.service | grep -q '^3/3 replicas up'; }
active() { [ "$(sctl is-active ds-lb.service)" = active ]; }

# --- 1. socket activation and the first request ----------------------------------------------
sctl daemon-reload
sctl start ds-lb.socket
[ "$(sctl is-active ds-lb.service || true)" = inactive ] || fail "ds-lb.service started before any connection"
first=$(curl -sS --max-time 60 "$URL/home?id=12") || fail "first request through the socket"
echo "$first" | grep -q '"Hello from Server: [0-9]*"' || fail "first answer is not a replica's: $first"
active || fail "ds-lb.service not active after the first request"
say "socket activation: the first request started ds-lb and got: $first"
wait_for 60 all_up || fail "STATUS= never reached 3/3: $(sctl show -p StatusText --value ds-lb.service)"
sctl status ds-lb.service | grep -q 'Status: "3/3 replicas up, ring generation' || fail "systemctl status shows no STATUS line"
say "systemctl status: $(sctl status ds-lb.service | grep 'Status:' | sed 's/^ *//')"
journal | grep -q 'Using the listening socket passed by systemd: http' || fail "ds-lb did not take the socket named http"

# --- 2. a dedicated user, not root ------------------------------------------------------------
MAIN=$(main_pid)
uid=$(in_ct ps -o uid= -p "$MAIN" | tr -d ' ')
user=$(in_ct ps -o user= -p "$MAIN" | tr -d ' ')
[ -n "$uid" ] && [ "$uid" != 0 ] || fail "ds-lb runs as uid '$uid'"
for replica in $(in_ct pgrep -P "$MAIN" -x ds-server); do
  [ "$(in_ct ps -o uid= -p "$replica" | tr -d ' ')" = "$uid" ] || fail "replica $replica does not run as $user"
done
say "ds-lb (PID $MAIN in the container) and its replicas run as $user (uid $uid), not root"
exposure=$(in_ct systemd-analyze security ds-lb.service 2>/dev/null | sed -n 's/.*Overall exposure level for ds-lb.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security gave no exposure level"
awk -v e="$exposure" 'BEGIN { exit !(e <= 3.0) }' || fail "exposure $exposure > 3.0"
say "systemd-analyze security ds-lb.service: exposure $exposure"

# --- 3. a replica killed: journal lines and structured fields ----------------------------------
victim=$(in_ct pgrep -P "$MAIN" -x ds-server | head -1)
[ -n "$victim" ] || fail "no ds-server child of ds-lb"
in_ct kill -KILL "$victim"
wait_for 60 sh -c "nsenter -t $CPID -a journalctl -u ds-lb --no-pager -o cat | grep -q '^\[+\] Server [0-9]* restarted'" \
  || fail "no '[+] Server N restarted' in the journal after SIGKILL of replica $victim"
journal | grep -q '^\[!\] Server [0-9]* failed heartbeat. Restarting...' || fail "no '[!] Server N failed heartbeat. Restarting...'"
line=$(journal | grep '^\[+\] Server [0-9]* restarted' | tail -1)
n=$(echo "$line" | sed 's/^\[+\] Server \([0-9]*\) restarted.*/\1/')
structured=$(in_ct journalctl -u ds-lb EVENT=restarted --no-pager -o verbose)
echo "$structured" | grep -q "MESSAGE=\[+\] Server $n restarted" || fail "journalctl EVENT=restarted does not find the entry"
echo "$structured" | grep -q "BACKEND=server-$n" || fail "the entry has no BACKEND=server-$n"
echo "$structured" | grep -q "SYSLOG_IDENTIFIER=ds-lb" || fail "the entry has no SYSLOG_IDENTIFIER=ds-lb"
in_ct journalctl -u ds-lb EVENT=heartbeat_failed --no-pager -o cat | grep -q "Restarting..." || fail "EVENT=heartbeat_failed finds nothing"
say "SIGKILL of replica PID $victim: journal has '$line', EVENT=restarted BACKEND=server-$n"
wait_for 60 all_up || fail "pool not back to 3/3 after the replica restart"

# --- 3b. systemctl reload: a changed heartbeat interval applies; a broken file changes nothing --
CONF=$ROOT/etc/ds-lb/ds-lb.toml
[ -f "$CONF" ] || fail "make install put no /etc/ds-lb/ds-lb.toml"
grep -q '^# heartbeat-interval = "5s"$' "$CONF" || fail "the installed ds-lb.toml is not the commented default"
cp "$CONF" "$WORK/ds-lb.toml.default"
status_interval() { curl -sS --max-time 5 "$URL/status" | grep -o '"heartbeat_interval": *"[^"]*"' | sed 's/.*: *"\(.*\)"/\1/'; }
interval_is() { [ "$(status_interval)" = "$1" ]; }
MAIN=$(main_pid)
interval_is 5s || fail "heartbeat interval before the reload: '$(status_interval)'"
echo 'heartbeat-interval = "1s"' >>"$CONF"
sctl reload ds-lb.service || fail "systemctl reload ds-lb"
wait_for 20 interval_is 1s || fail "systemctl reload did not apply heartbeat-interval = \"1s\" (/status: '$(status_interval)')"
journal | grep -q '^\[i\] Reloaded /etc/ds-lb/ds-lb.toml: applied heartbeat-interval (default) → "1s"; heartbeat interval 1s' \
  || fail "no '[i] Reloaded ... heartbeat-interval' line in the journal"
[ "$(main_pid)" = "$MAIN" ] && active || fail "the reload restarted ds-lb"
say "systemctl reload with heartbeat-interval = \"1s\": applied (/status heartbeat_interval 1s, same PID $MAIN): $(journal | grep '^\[i\] Reloaded' | tail -1)"
sed -i 's/^heartbeat-interval = "1s"$/heartbeat-interval = "soon"/' "$CONF"
sctl reload ds-lb.service || fail "systemctl reload ds-lb (broken file)"
reload_failed() { journal | grep -q '^\[!\] Reload failed, keeping the running configuration: /etc/ds-lb/ds-lb.toml: heartbeat-interval = "soon": invalid duration'; }
wait_for 20 reload_failed || fail "no '[!] Reload failed ...' line naming the file, key and value in the journal"
status_says() { sctl status --full ds-lb.service | grep -q 'Status: ".*reload failed, running the previous configuration: /etc/ds-lb/ds-lb.toml: heartbeat-interval = '; }
wait_for 10 status_says || fail "systemctl status does not say why the reload failed: $(sctl show -p StatusText --value ds-lb.service)"
[ "$(main_pid)" = "$MAIN" ] && active || fail "a broken file stopped or restarted ds-lb"
interval_is 1s || fail "a broken file changed the heartbeat interval: '$(status_interval)'"
curl -sS --max-time 10 "$URL/home?id=12" | grep -q 'Hello from Server' || fail "no answer after the failed reload"
say "systemctl reload with heartbeat-interval = \"soon\": still active (PID $MAIN), interval 1s, $(sctl show -p StatusText --value ds-lb.service)"
cp "$WORK/ds-lb.toml.default" "$CONF"
sctl reload ds-lb.service
wait_for 20 interval_is 5s || fail "the default file did not bring the 5s interval back"
no_note() { ! sctl show -p StatusText --value ds-lb.service | grep -q 'reload failed'; }
wait_for 10 no_note || fail "STATUS= still says the reload failed after a good one"

# --- 3c. the optional admin socket (ds-lb-admin.socket, FileDescriptorName=admin) ---------------
# systemd refuses to start a socket unit whose service is already running.
sctl stop ds-lb.service
sctl start ds-lb-admin.socket
sctl start ds-lb.service
admin_up() { curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/rep" | grep -q '"replicas"'; }
wait_for 30 admin_up || fail "no /rep on the admin socket 127.0.0.1:$ADMIN_PORT"
journal | grep -q 'Using the admin socket passed by systemd: admin' || fail "ds-lb did not take the socket named admin"
curl -sS --max-time 5 "http://127.0.0.1:$ADMIN_PORT/home?id=1" | grep -q "is not an admin endpoint" || fail "the admin socket routed a request"
curl -sS --max-time 5 "$URL/rep" | grep -q '"replicas"' && fail "the traffic socket still answers /rep with the admin endpoint"
curl -sS --max-time 10 "$URL/home?id=12" | grep -q 'Hello from Server' || fail "no routed answer with the admin socket on"
sctl stop ds-lb.service
sctl stop ds-lb-admin.socket
sctl start ds-lb.service
wait_for 60 all_up || fail "not 3/3 after the restart without the admin socket"
interval_is 5s || fail "/status not back on the traffic socket"
say "ds-lb-admin.socket: admin endpoints on 127.0.0.1:$ADMIN_PORT only (routed paths 404 there, /rep not on :$PORT)"

# --- 4. a request in flight when ds-lb is stopped completes ----------------------------------
slow_out=$WORK/slow.out
curl -sS --max-time 30 -o "$slow_out" -w '%{http_code}' "$URL/slow?ms=2000&id=7" >"$WORK/slow.code" 2>"$WORK/slow.err" &
SLOW_PID=$!
LOAD_PIDS+=("$SLOW_PID")
sleep 0.5
stop_started=$(date +%s%N)
sctl stop ds-lb.service
stop_ms=$(( ($(date +%s%N) - stop_started) / 1000000 ))
wait "$SLOW_PID" || fail "the slow request failed during stop: $(cat "$WORK/slow.err")"
[ "$(cat "$WORK/slow.code")" = 200 ] || fail "slow request during stop: HTTP $(cat "$WORK/slow.code")"
[ -z "$(in_ct pgrep -x ds-server)" ] || fail "replicas outlived ds-lb: $(in_ct pgrep -x ds-server | tr '\n' ' ')"
journal | grep -q 'Received signal 15: stopping' || fail "no stop line in the journal"
say "systemctl stop with a 2 s request in flight: it completed (HTTP 200), stop took $stop_ms ms, no replica left"

# --- 5. the watchdog restarts a stopped (SIGSTOP) ds-lb -----------------------------------------
curl -sS --max-time 60 -o /dev/null "$URL/home?id=1" || fail "socket activation after stop"
wait_for 60 all_up || fail "not 3/3 after re-activation"
MAIN=$(main_pid)
old_replicas=$(in_ct pgrep -P "$MAIN" -x ds-server | tr '\n' ' ')
in_ct kill -STOP "$MAIN"
stopped_at=$(date +%s)
wait_for 90 sh -c "p=\$(nsenter -t $CPID -a systemctl show -p MainPID --value ds-lb.service); [ \"\$p\" != 0 ] && [ \"\$p\" != $MAIN ] && [ \"\$(nsenter -t $CPID -a systemctl is-active ds-lb.service)\" = active ]" \
  || fail "the watchdog did not replace the SIGSTOPped ds-lb (PID $MAIN)"
took=$(( $(date +%s) - stopped_at ))
in_ct journalctl -u ds-lb --no-pager -o cat | grep -qi 'watchdog timeout' || fail "systemd logged no watchdog timeout"
wait_for 60 all_up || fail "not 3/3 after the watchdog restart"
for pid in $old_replicas; do in_ct kill -0 "$pid" 2>/dev/null && fail "replica $pid of the killed ds-lb still runs"; done
curl -sS --max-time 30 "$URL/home?id=12" | grep -q 'Hello from Server' || fail "no answer after the watchdog restart"
say "SIGSTOP of ds-lb: watchdog timeout, new ds-lb PID $(main_pid) active ${took}s later, old replicas gone, pool 3/3"

# --- 6. systemctl restart under continuous load: no failed request ----------------------------
# Each load worker runs curl over batches of 25 URLs, each on a new connection
# (Connection: close), and records HTTP code, curl exit code and total time per request.
STOPFILE=$WORK/stop-load
load_worker() {
  local out=$1 base=$2 i urls
  while [ ! -e "$STOPFILE" ]; do
    urls=()
    for i in $(seq 1 25); do urls+=(-o /dev/null "$base/home?id=$RANDOM"); done
    curl -s -H 'Connection: close' --max-time 30 -w '%{http_code} %{exitcode} %{time_total}\n' "${urls[@]}" >>"$out" 2>/dev/null || true
  done
}
for w in 1 2 3 4; do load_worker "$WORK/load.$w" "$URL" & LOAD_PIDS+=("$!"); done
sleep 3
MAIN=$(main_pid)
restart_started=$(date +%s%N)
sctl restart ds-lb.service
restart_ms=$(( ($(date +%s%N) - restart_started) / 1000000 ))
[ "$(main_pid)" != "$MAIN" ] || fail "systemctl restart did not replace ds-lb"
wait_for 60 all_up || fail "not 3/3 after restart"
sleep 3
touch "$STOPFILE"
for pid in "${LOAD_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
LOAD_PIDS=()
cat "$WORK"/load.* >"$WORK/load.all"
total=$(wc -l <"$WORK/load.all")
failed=$(awk '$1 != 200 || $2 != 0' "$WORK/load.all" | wc -l)
refused=$(awk '$2 == 7' "$WORK/load.all" | wc -l)
reset=$(awk '$2 == 56 || $2 == 52' "$WORK/load.all" | wc -l)
max_ms=$(awk '{ if ($3 > m) m = $3 } END { printf "%d", m * 1000 }' "$WORK/load.all")
[ "$total" -ge 100 ] || fail "the load generator sent only $total requests"
if [ "$failed" -ne 0 ]; then
  awk '$1 != 200 || $2 != 0' "$WORK/load.all" | sort | uniq -c | head
  fail "systemctl restart under load: $failed of $total requests failed ($refused refused, $reset reset/empty)"
fi
say "systemctl restart under load (4 clients, new connection per request): $total requests, 0 failed, 0 refused, 0 reset; restart job took $restart_ms ms, slowest request $max_ms ms"

# --- 7. no socket unit: ds-lb's own socket survives a restart in the FD store -------------------
in_ct systemd-run --quiet --unit=ds-lb-fdstore -p Type=notify -p FileDescriptorStoreMax=1 -p DynamicUser=yes \
  -p StateDirectory=ds-lb-fdstore -p KillMode=mixed -p TimeoutStopSec=20s \
  /usr/local/bin/ds-lb serve --listen "127.0.0.1:$PORT2" --replicas 2 || fail "systemd-run ds-lb-fdstore"
fd_active() { [ "$(sctl is-active ds-lb-fdstore.service)" = active ]; }
wait_for 60 fd_active || fail "ds-lb-fdstore did not become active"
in_ct journalctl -u ds-lb-fdstore --no-pager -o cat | grep -q "handed to systemd's FD store as http" || fail "ds-lb did not store its socket"
rm -f "$STOPFILE" "$WORK"/load.*
for w in 1 2 3 4; do load_worker "$WORK/load.$w" "http://127.0.0.1:$PORT2" & LOAD_PIDS+=("$!"); done
sleep 2
MAIN2=$(sctl show -p MainPID --value ds-lb-fdstore.service)
sctl restart ds-lb-fdstore.service
[ "$(sctl show -p MainPID --value ds-lb-fdstore.service)" != "$MAIN2" ] || fail "restart did not replace ds-lb-fdstore"
sleep 3
touch "$STOPFILE"
for pid in "${LOAD_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
LOAD_PIDS=()
in_ct journalctl -u ds-lb-fdstore --no-pager -o cat | grep -q 'Using the listening socket passed by systemd: http' \
  || fail "the restarted ds-lb did not get its socket back from the FD store"
cat "$WORK"/load.* >"$WORK/load.all"
total2=$(wc -l <"$WORK/load.all")
failed2=$(awk '$1 != 200 || $2 != 0' "$WORK/load.all" | wc -l)
[ "$total2" -ge 100 ] || fail "the load generator sent only $total2 requests"
if [ "$failed2" -ne 0 ]; then
  awk '$1 != 200 || $2 != 0' "$WORK/load.all" | sort | uniq -c | head
  fail "restart with the FD store under load: $failed2 of $total2 requests failed"
fi
sctl stop ds-lb-fdstore.service
say "no socket unit: ds-lb's own socket went to the FD store and back; restart under load: $total2 requests, 0 failed"

# --- 8. ds-lb's replicas die with it ----------------------------------------------------------
MAIN=$(main_pid)
replicas=$(in_ct pgrep -P "$MAIN" -x ds-server | tr '\n' ' ')
in_ct kill -KILL "$MAIN"
wait_for 20 sh -c "! nsenter -t $CPID -a pgrep -x ds-server | grep -qwE '$(echo $replicas | tr ' ' '|')'" \
  || fail "replicas ($replicas) outlived a SIGKILLed ds-lb"
say "SIGKILL of ds-lb: its replicas ($replicas) died with it"

say "PASS: systemd end-to-end in $(( $(date +%s) - STARTED )) s"
