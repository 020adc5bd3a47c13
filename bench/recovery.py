#!/usr/bin/env python3
"""Failure recovery timeline: the supervisor benchmark.

10 times, each with a fresh release ds-lb and 3 local replicas: SIGKILLs replica 2 and measures
  - detect:  SIGKILL -> "[!] Server 2 failed heartbeat. Restarting..." in ds-lb's log
  - restart: SIGKILL -> "[+] Server 2 restarted"
  - serving: SIGKILL -> first 200 from server 2 for one of its ids
while a client keeps requesting that id (so failed requests, if any, are counted too).
Runs with the default settings and with --heartbeat-interval 1s; prints medians and maxima.
Everything it starts is stopped by PID; traffic goes to 127.0.0.1 only.

Usage: bench/recovery.py [--runs 10] [--binary-dir .build/release]
"""
import argparse, http.client, os, re, signal, statistics, subprocess, sys, tempfile, threading, time

def wait_line(lines, pattern, start, timeout):
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i in range(start, len(lines)):
            if rx.search(lines[i][1]):
                return lines[i][0], i
        time.sleep(0.002)
    raise TimeoutError(pattern)

def replica_pid(lb_pid, rid):
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != lb_pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
            if b"--id" in args and args[args.index(b"--id") + 1] == str(rid).encode():
                return int(entry)
        except (OSError, IndexError, ValueError):
            continue
    return None

def run(binary_dir, extra, runs):
    """One fresh ds-lb per run: a second kill within 30 s of a restart counts as flapping and
    waits out the backoff, which is a different measurement (see the flapping test)."""
    results = []
    for _ in range(runs):
        results.append(one_run(binary_dir, extra))
    return results

def one_run(binary_dir, extra):
    state = tempfile.mkdtemp(prefix="dslb-bench-")
    proc = subprocess.Popen([f"{binary_dir}/ds-lb", "--listen", "127.0.0.1:0", "--replicas", "3", "--state-dir", state] + extra,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    def reader():
        for line in proc.stderr:
            lines.append((time.monotonic(), line.rstrip("\n")))
    threading.Thread(target=reader, daemon=True).start()
    try:
        wait_line(lines, r"ds-lb Listening on 127\.0\.0\.1:(\d+)", 0, 30)
        port = int(re.search(r"Listening on 127\.0\.0\.1:(\d+)", [l for _, l in lines if "ds-lb Listening" in l][0]).group(1))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        key = None
        for i in range(1, 10000):
            conn.request("GET", f"/home?id={i}")
            body = conn.getresponse().read().decode()
            if "Server: 2\"" in body:
                key = i
                break
        pid = replica_pid(proc.pid, 2)
        start_index = len(lines)
        failed = []
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        serving = None
        while time.monotonic() - killed < 60:
            try:
                conn.request("GET", f"/home?id={key}")
                response = conn.getresponse()
                body = response.read().decode()
                if response.status != 200:
                    failed.append(f"{response.status} {body}")
                elif "Server: 2\"" in body and replica_pid(proc.pid, 2) not in (None, pid):
                    serving = time.monotonic() - killed
                    break
            except (OSError, http.client.HTTPException) as error:
                failed.append(repr(error))
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            time.sleep(0.002)
        detect, i = wait_line(lines, r"\[!\] Server 2 failed heartbeat\. Restarting", start_index, 30)
        restarted, _ = wait_line(lines, r"\[\+\] Server 2 restarted", i, 60)
        for f in failed:
            print("  failed request:", f, file=sys.stderr)
        return (detect - killed, restarted - killed, serving, len(failed))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

def summary(name, results):
    def fmt(values):
        values = [v for v in values if v is not None]
        return f"{statistics.median(values)*1000:.0f} ms / {max(values)*1000:.0f} ms" if values else "n/a"
    print(f"| {name} | {fmt([r[0] for r in results])} | {fmt([r[1] for r in results])} | {fmt([r[2] for r in results])} | {sum(r[3] for r in results)} |")

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--binary-dir", default=".build/release")
    args = parser.parse_args()
    print(f"runs per setting: {args.runs}; machine: {os.cpu_count()} CPUs; date {time.strftime('%Y-%m-%d')}")
    print("| settings | SIGKILL → DOWN (median / max) | → restarted | → serving its keys again | failed requests |")
    print("|---|---|---|---|---|")
    summary("defaults (interval 5s, timeout 2s, fall 2)", run(args.binary_dir, [], args.runs))
    summary("--heartbeat-interval 1s", run(args.binary_dir, ["--heartbeat-interval", "1s"], args.runs))

if __name__ == "__main__":
    main()
