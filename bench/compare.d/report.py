#!/usr/bin/env python3
"""Turns the raw output of one bench/compare run into the `## Proxy comparison` Markdown section
(`## Proxy comparison, fast backend` for a run with `--fast-backend`, `..., static backend` for
`--static-backend`; `## Proxy comparison, TLS`
and `## Proxy comparison, TLS, fast backend` for runs with `--tls`; `, pinned` at the end of any
of these for a run with `--pin`, whose workers were pinned to CPUs; `, pinned, isolated` for
`--isolate`, where the replica and the clients ran on the other CPUs).

Usage: report.py OUTDIR [--update RESULTS.md]

OUTDIR holds meta.json (machine, versions, settings, commands), raw/ (one wrk or ab output per
round, target, thread count and test: r<round>_<target>_T<threads>_<test>.txt, T0 = direct),
rss/ (idle_conns.py JSON per target and thread count) and events.log (crashes, restarts). A --tls
run has the same files over https (close = ab's full handshakes, with a .cpu file) plus one
openssl s_client output per visit (r<round>_<target>_T<threads>_suite.txt). A --pin run has
pinning.log: per proxy start, the CPU each worker was allowed (`<logname> <target> T=<T>
<worker>=<cpu> ...`).
Prints the section; with --update also replaces that section of RESULTS.md (or appends it),
leaving every other section untouched. Within the section, a line KEEP_MARKER and everything
after it (hand-written notes on earlier runs) survive the rewrite: they follow the new report.
Standard library only.
"""
import json
import os
import re
import statistics
import sys

SECTION = "## Proxy comparison"
FAST_SECTION = "## Proxy comparison, fast backend"


def section_title(meta):
    return (SECTION + (", TLS" if meta.get("tls") else "") + (", static backend" if static_backend(meta) else ", fast backend" if fast_backend(meta) else "")
            + (", pinned" if pinned(meta) else "") + (", isolated" if isolated(meta) else ""))


def pinned(meta):
    """Whether each proxy's workers were pinned to CPUs (`--pin`)."""
    return meta.get("cpu_affinity", "none") == "auto"


def isolated(meta):
    """Whether the replica and the clients ran on CPUs of their own (`--isolate`)."""
    return bool(meta.get("client_cpus"))


def command_line(meta):
    return "bench/compare" + "".join(flag for flag, on in [
        (" --tls", meta.get("tls")), (" --fast-backend", fast_backend(meta) and not static_backend(meta)),
        (" --static-backend", static_backend(meta)), (" --pin", pinned(meta) and not isolated(meta)),
        (" --isolate", isolated(meta))] if on)


def load_pinning(outdir):
    """(target, threads) -> the sets of CPUs its workers were each allowed, one per start (--pin)."""
    seen = {}
    path = os.path.join(outdir, "pinning.log")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].startswith("T="):
                    cpus = " ".join(sorted((w.split("=", 1)[1] for w in parts[3:]), key=int))
                    seen.setdefault((parts[1], int(parts[2][2:])), set()).add(cpus)
    return seen


def pinning_text(meta, outdir):
    if not pinned(meta):
        return ("- CPU pinning: none (every proxy's workers, wrk and the replica may run on any CPU; "
                "`bench/compare --pin` pins the proxies' workers).")
    seen = load_pinning(outdir)
    checked = "; ".join(f"{NAMES[p]} T={t}: CPU{'s' if t > 1 else ''} {' / '.join(sorted(c.replace(' ', ', ') for c in seen[(p, t)]))}"
                        for t in meta["threads"] for p in PROXIES if (p, t) in seen) or "nothing recorded"
    return (f"- **CPU pinning (`--pin`)**: worker i of every proxy on the i-th CPU the run may use "
            f"({meta.get('allowed_cpus', '?')}): ds-lb `--cpu-affinity auto`, HAProxy `cpu-map auto:1/1-T` with those "
            f"T CPUs (T=1: `cpu-map 1/all`), nginx `worker_cpu_affinity auto` with a mask of them. After every start "
            f"each worker thread (nginx: worker process) was read from `/proc/PID/task/*/status`: one CPU each, all "
            f"different ({checked}). "
            + (f"**Isolated (`--isolate`)**: the replica, wrk, ab, curl, ds-bench and the idle-connection client "
               f"ran on CPU{'s' if ',' in meta['client_cpus'] or '-' in meta['client_cpus'] else ''} "
               f"{meta['client_cpus']} only (taskset; the replica's threads checked in /proc), so each proxy's "
               f"workers had their CPUs to themselves."
               if isolated(meta) else "wrk, ab, curl, ds-bench and the replica are not pinned."))


def fast_backend(meta):
    """Whether the run had a fast backend instead of ds-server (`--fast-backend`, `--static-backend`)."""
    return meta.get("backend", "ds-server") in ("nginx", "static")


def static_backend(meta):
    """Whether the fast backend was bench/compare.d/static-backend.c (`--static-backend`)."""
    return meta.get("backend") == "static"


def replica_text(meta):
    if static_backend(meta):
        return ("one `bench/compare.d/static-backend.c` answering `/home` with ds-server's JSON (one epoll loop: "
                "the leanest replica, so that the proxy, not the CPU the replica shares with wrk, is the bottleneck)")
    if fast_backend(meta):
        return (f"one nginx answering `/home` with ds-server's JSON ({meta.get('backend_workers', 1)} worker, "
                f"`bench/compare.d/nginx-backend.conf.in`: the fast backend, so the proxy is the bottleneck)")
    return "one ds-server replica"
PROXIES = ["ds-lb", "haproxy", "nginx"]
NAMES = {"ds-lb": "ds-lb", "haproxy": "HAProxy", "nginx": "nginx", "direct": "direct (no proxy)"}
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_wrk(text):
    r = {"rps": None, "p50": None, "p99": None, "requests": 0, "socket_errors": 0, "non2xx": 0,
         "error_detail": ""}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        r["rps"] = float(m.group(1))
    if m := re.search(r"^\s+50%\s+(\S+)", text, re.M):
        r["p50"] = ms(m.group(1))
    if m := re.search(r"^\s+99%\s+(\S+)", text, re.M):
        r["p99"] = ms(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        r["requests"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        r["socket_errors"] = sum(int(x) for x in m.groups())
        r["error_detail"] = m.group(0)
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        r["non2xx"] = int(m.group(1))
    return r


def parse_ab(text):
    r = {"rps": None, "requests": 0, "socket_errors": 0, "non2xx": 0, "error_detail": ""}
    if m := re.search(r"Requests per second:\s+([\d.]+)", text):
        r["rps"] = float(m.group(1))
    if m := re.search(r"Complete requests:\s+(\d+)", text):
        r["requests"] = int(m.group(1))
    if m := re.search(r"Failed requests:\s+(\d+)", text):
        r["socket_errors"] = int(m.group(1))
        if r["socket_errors"]:
            if d := re.search(r"Failed requests:.*\n(\s+\(.*\))", text):
                r["error_detail"] = "Failed requests: %d %s" % (r["socket_errors"], d.group(1).strip())
    if m := re.search(r"Non-2xx responses:\s+(\d+)", text):
        r["non2xx"] = int(m.group(1))
    if m := re.search(r"^\s+99%\s+(\d+)", text, re.M):
        r["p99"] = float(m.group(1))  # ms, whole milliseconds in ab's table
    if m := re.search(r"SSL/TLS Protocol:\s+(\S+)", text):
        r["tls"] = m.group(1)
    # ab counts a connection whose handshake failed as neither complete nor failed; count it here.
    if hs := text.count("SSL handshake failed"):
        r["socket_errors"] += hs
        r["error_detail"] = (r["error_detail"] + "; " if r["error_detail"] else "") + f"{hs} TLS handshakes failed"
    if r["rps"] is None:  # ab gave up (it prints why on stderr, captured in the same file)
        r["error_detail"] = " / ".join(l.strip() for l in text.splitlines() if "apr_" in l or "rror" in l)[:300]
    return r


def parse_ab_runs(text):
    """ab output, or (--tls) the outputs of several ab processes run at once, each after a
    `=== ab K of N ===` line: their requests added up over the longest one's time, errors added
    up, the worst p99."""
    parts = [t for t in re.split(r"^=== ab \d+ of \d+ ===$", text, flags=re.M) if t.strip()]
    if len(parts) < 2:
        return parse_ab(text)
    rs = [parse_ab(t) for t in parts]
    times = [float(m.group(1)) for t in parts if (m := re.search(r"Time taken for tests:\s+([\d.]+)", t))]
    r = {"requests": sum(x["requests"] for x in rs), "socket_errors": sum(x["socket_errors"] for x in rs),
         "non2xx": sum(x["non2xx"] for x in rs),
         "error_detail": "; ".join(f"ab {i + 1}: {x['error_detail']}" for i, x in enumerate(rs) if x["error_detail"])}
    complete = all(x["rps"] is not None for x in rs) and len(times) == len(rs) and max(times) > 0
    r["rps"] = r["requests"] / max(times) if complete else None
    p99 = [x["p99"] for x in rs if x.get("p99") is not None]
    r["p99"] = max(p99) if p99 else None
    tls = [x["tls"] for x in rs if x.get("tls")]
    if tls:
        r["tls"] = tls[0]
    return r


def parse_body(text):
    """curl -w outputs of the POST /echo runs of one visit, separated by `---` lines: the median
    MiB/s of body each way (both directions run at once) over the runs that succeeded; a failed
    run is counted as an error."""
    parts = [parse_one_body(t) for t in re.split(r"^---$", text, flags=re.M) if t.strip()]
    if not parts:
        return parse_one_body(text)
    ok = [p["rps"] for p in parts if p["rps"] is not None]
    r = {"rps": statistics.median(ok) if ok else None, "requests": len(parts),
         "socket_errors": sum(p["socket_errors"] for p in parts), "non2xx": sum(p["non2xx"] for p in parts),
         "error_detail": "; ".join(p["error_detail"] for p in parts if p["error_detail"]), "runs": ok}
    return r


def parse_one_body(text):
    """curl -w output of one POST /echo: MiB/s of body each way (both directions run at once)."""
    v = dict(l.split(None, 1) for l in text.splitlines() if " " in l)
    r = {"rps": None, "requests": 1, "socket_errors": 0, "non2xx": 0, "error_detail": ""}
    try:
        code, up, down, secs = int(v["http_code"]), int(float(v["size_upload"])), int(float(v["size_download"])), float(v["time_total"])
    except (KeyError, ValueError):
        r["socket_errors"] = 1
        r["error_detail"] = "curl: " + " ".join(text.split())[:200]
        return r
    if code != 200:
        r["non2xx"] = 1
        r["error_detail"] = f"HTTP {code}, {up} bytes up, {down} down"
    elif down != up or secs <= 0:
        r["socket_errors"] = 1
        r["error_detail"] = f"sent {up} bytes, got {down} back" + (f" ({v['curl_exit'].strip()})" if "curl_exit" in v else "")
    else:
        r["rps"] = up / 1048576 / secs
    return r


def parse_rate(text):
    """ds-bench load --rate --json: latency from when each request was due, in ms."""
    r = {"rps": None, "requests": 0, "socket_errors": 0, "non2xx": 0, "error_detail": ""}
    try:
        d = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        r["socket_errors"] = 1
        r["error_detail"] = "ds-bench: " + " ".join(text.split())[:200]
        return r
    lat = d.get("latency_ms", {})
    r["requests"] = d.get("requests", 0)
    r["socket_errors"] = d.get("failed", 0)
    r["rps"] = d.get("send_rate_rps")
    for k in ("p50", "p99", "p99_9", "max"):
        r[k] = lat.get(k)  # ms, like parse_wrk
    return r


def parse_suite(text):
    """openssl s_client output: `TLSv1.3 TLS_AES_128_GCM_SHA256, X25519`, or why there is none."""
    m = re.search(r"^New, (\S+), Cipher is (\S+)", text, re.M)
    if not m or m.group(2) == "(NONE)":
        return "no handshake: " + " ".join(text.split())[-120:]
    key = re.search(r"^Server Temp Key: ([^,\n]+)", text, re.M)
    return f"{m.group(1)} {m.group(2)}" + (f", {key.group(1)}" if key else "")


def load_suites(outdir):
    """(target, threads) -> set of what openssl s_client negotiated on each visit (--tls runs)."""
    suites = {}
    raw = os.path.join(outdir, "raw")
    for name in sorted(os.listdir(raw)):
        if m := re.fullmatch(r"r(\d+)_(.+)_T(\d+)_suite\.txt", name):
            with open(os.path.join(raw, name), errors="replace") as f:
                suites.setdefault((m.group(2), int(m.group(3))), set()).add(parse_suite(f.read()))
    return suites


def load(outdir):
    runs = {}  # (target, threads, test) -> [result per round]
    raw = os.path.join(outdir, "raw")
    for name in sorted(os.listdir(raw)):
        m = re.fullmatch(r"r(\d+)_(.+)_T(\d+)_(c\d+|close|body)\.txt", name)
        if not m:
            m = re.fullmatch(r"r(\d+)_(.+)_T(\d+)_rate\.json", name)
            if m:
                with open(os.path.join(raw, name), errors="replace") as f:
                    res = parse_rate(f.read())
                res["round"], res["file"] = int(m.group(1)), name
                runs.setdefault((m.group(2), int(m.group(3)), "rate"), []).append(res)
            continue
        rnd, target, threads, test = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        with open(os.path.join(raw, name), errors="replace") as f:
            text = f.read()
        res = parse_ab_runs(text) if test == "close" else parse_body(text) if test == "body" else parse_wrk(text)
        cpu = os.path.join(raw, name[:-4] + ".cpu")
        if (test.startswith("c") or test == "close") and os.path.exists(cpu) and res["requests"]:
            with open(cpu) as f:
                parts = f.read().split()
            if len(parts) == 2 and int(parts[1]) > 0:
                # clock ticks of the proxy (all its threads and worker processes) over the wrk
                # run (--tls: also over the ab run, per handshake)
                res["cpu_us"] = int(parts[0]) * 1e6 / int(parts[1]) / res["requests"]
        opens = os.path.join(raw, name[:-4] + ".opens")
        if test == "close" and os.path.exists(opens):
            with open(opens) as f:
                # passive opens during the ab run minus ab's own connections = upstream connects
                res["upstream_per_req"] = max(0, int(f.read().strip() or 0) - res["requests"]) / max(1, res["requests"])
        res["round"], res["file"] = rnd, name
        runs.setdefault((target, threads, test), []).append(res)
    return runs


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_rps(v):
    return "—" if v is None else f"{v:,.0f}"


def fmt_ms(v):
    if v is None:
        return "—"
    return f"{v * 1000:.0f} µs" if v < 1 else f"{v:.2f} ms"


def ratio(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}×"


def spread(results):
    vals = [r["rps"] for r in results if r["rps"] is not None]
    if len(vals) < 2:
        return "—"
    return f"{min(vals):,.0f}–{max(vals):,.0f}"


def errors_cell(results):
    sock = sum(r["socket_errors"] for r in results)
    bad = sum(r["non2xx"] for r in results)
    missing = sum(1 for r in results if r["rps"] is None)
    parts = []
    if sock:
        parts.append(f"{sock} socket err")
    if bad:
        parts.append(f"{bad} non-2xx")
    if missing:
        parts.append(f"{missing} run(s) failed")
    return ", ".join(parts) if parts else "0"


def cpu_cell(results):
    v = med(r.get("cpu_us") for r in results)
    return "—" if v is None else f"{v:.1f}"


def upstream_cell(results):
    v = med(r.get("upstream_per_req") for r in results)
    return "—" if v is None else f"{v:.2f}"


def noise(outdir, runs):
    """Largest (max - min) / median of req/s over the rounds, and the 1-min load seen at visit starts."""
    worst = None
    for key, rs in runs.items():
        vals = [r["rps"] for r in rs if r["rps"] is not None]
        if len(vals) >= 2:
            rel = (max(vals) - min(vals)) / statistics.median(vals)
            if worst is None or rel > worst[0]:
                worst = (rel, key)
    loads = []
    raw = os.path.join(outdir, "raw")
    for name in os.listdir(raw):
        if name.endswith(".loadavg"):
            with open(os.path.join(raw, name)) as f:
                try:
                    loads.append(float(f.read().split()[0]))
                except (ValueError, IndexError):
                    pass
    return worst, loads


def build_text(meta):
    source = meta.get('source', 'working tree')
    if source.startswith("binaries in "):
        return f"release {source}"
    return f"{source}, release, `--scratch-path .build-bench`"


def render(outdir):
    with open(os.path.join(outdir, "meta.json")) as f:
        meta = json.load(f)
    runs = load(outdir)
    threads = meta["threads"]
    conns = meta["conns"]
    tls = meta.get("tls", False)
    out = [section_title(meta), ""]
    if meta.get("quick"):
        out.append(f"**Smoke run (`--quick`), not a measurement**: 1 short round on a loaded machine (load average "
                   f"{meta.get('loadavg_end', '?')} at the end of the run); it only shows that every step works.")
        out.append("")
    out.append(f"Measured by `{command_line(meta)}` on {meta['date']}: {replica_text(meta)} behind each proxy in turn, "
               f"{meta['rounds']} interleaved rounds (each round visits every proxy and thread count once, "
               f"the order rotated from round to round), medians over the rounds. Ratios are ratios of medians.")
    out.append("")
    out.append(f"- Machine: {meta['nproc']} CPUs ({meta['cpu']}), {meta['mem']}, kernel {meta['kernel']}; "
               + (f"the proxy's workers on CPUs of their own, the load generator and the replica on CPU"
                  f"{'s' if ',' in meta['client_cpus'] or '-' in meta['client_cpus'] else ''} {meta['client_cpus']}."
                  if isolated(meta) else "load generator, proxy and replica share these CPUs."))
    out.append(f"- Software: ds-lb {meta['commit']} ({build_text(meta)}), {meta['haproxy']}, "
               f"{meta['nginx']}, {meta['wrk']}, {meta['ab']}, Swift {meta['swift']}.")
    out.append(f"- Thread counts T: {', '.join(map(str, threads))} (ds-lb `--workers T`, HAProxy `nbthread T`, "
               f"nginx `worker_processes T`; the replica is "
               f"{'the fast backend' if fast_backend(meta) else 'ds-server, one event loop'}).")
    out.append(pinning_text(meta, outdir))
    suites = load_suites(outdir) if tls else {}
    if tls:
        seen = sorted(set().union(*suites.values())) if suites else ["not checked"]
        out.append(f"- TLS: one ECDSA P-256 certificate (`openssl req`) on all three proxies, TLS 1.3 only, suite "
                   f"`{meta['tls_suite']}` and group X25519 pinned on the proxies and the clients ({meta.get('openssl', 'OpenSSL')}); "
                   f"negotiated (`openssl s_client`, every visit): {'; '.join(seen)}. The replica leg is plain HTTP.")
    out.append("")
    out.append("Commands (ports are free loopback ports picked at run time; configs in `bench/compare.d/`):")
    out.append("")
    out.append("```")
    out.extend(meta["commands"])
    out.append("```")
    out.append("")

    out.append(f"### Keep-alive{' over TLS' if tls else ''}, small response (`GET {meta['path']}`, {meta['duration']} per run)")
    out.append("")
    vs_direct = "" if tls else " vs direct |"
    out.append(f"| Proxy | T | wrk -c | req/s (median) | req/s min–max | p50 | p99 | vs HAProxy |{vs_direct} CPU µs/request | errors (all rounds) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|" + ("" if tls else "---|"))
    for c in conns:
        test = f"c{c}"
        direct = runs.get(("direct", 0, test), [])
        d_rps = med(r["rps"] for r in direct)
        rows = [("direct", 0)] + [(p, t) for t in threads for p in PROXIES]
        for target, t in rows:
            rs = runs.get((target, t, test), [])
            if not rs:
                continue
            rps = med(r["rps"] for r in rs)
            h_rps = med(r["rps"] for r in runs.get(("haproxy", t, test), [])) if t else None
            out.append(f"| {NAMES[target]} | {t or '—'} | {c} | {fmt_rps(rps)} | {spread(rs)} | "
                       f"{fmt_ms(med(r['p50'] for r in rs))} | {fmt_ms(med(r['p99'] for r in rs))} | "
                       f"{ratio(rps, h_rps) if t else '—'} |{'' if tls else ' ' + (ratio(rps, d_rps) if t else '1.00×') + ' |'} "
                       f"{cpu_cell(rs)} | {errors_cell(rs)} |")
    out.append("")
    if tls:
        out.append("No direct row: the replica speaks plain HTTP only (the plain figures are in `## Proxy comparison`, "
                   "another run).")
        out.append("")
    out.append("CPU µs/request: the CPU time of the proxy's process (all threads; nginx: its worker processes) over "
               "the wrk run, from /proc/PID/stat, divided by the requests wrk completed; median over rounds. "
               "For the direct row it is the replica's. Unlike req/s on this 2-core machine, where wrk, the "
               "replica and the proxy share the cores, it does not move with the machine's load.")
    out.append("")

    if any(k[2] == "rate" for k in runs):
        out.append(f"### Fixed rate, below saturation ({meta['open_rate']:,} requests/s over {meta['open_conns']} keep-alive "
                   f"connections for {meta['open_duration']}, `ds-bench load --rate`, random ids)")
        out.append("")
        out.append("Open loop: each request is due at a fixed time and its latency counts from then, so a stall shows in "
                   "the requests due during it (no coordinated omission). \"added\" is the proxy's median minus the "
                   "direct median of the same percentile.")
        out.append("")
        out.append("| Proxy | T | p50 | p99 | p99.9 | max | added p50 | added p99 | failed (all rounds) |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        direct = runs.get(("direct", 0, "rate"), [])
        d50, d99 = med(r.get("p50") for r in direct), med(r.get("p99") for r in direct)
        for target, t in [("direct", 0)] + [(p, t) for t in threads for p in PROXIES]:
            rs = runs.get((target, t, "rate"), [])
            if not rs:
                continue
            p50, p99 = med(r.get("p50") for r in rs), med(r.get("p99") for r in rs)
            add50 = fmt_ms(p50 - d50) if t and p50 is not None and d50 is not None else "—"
            add99 = fmt_ms(p99 - d99) if t and p99 is not None and d99 is not None else "—"
            out.append(f"| {NAMES[target]} | {t or '—'} | {fmt_ms(p50)} | {fmt_ms(p99)} | "
                       f"{fmt_ms(med(r.get('p99_9') for r in rs))} | {fmt_ms(med(r.get('max') for r in rs))} | "
                       f"{add50} | {add99} | {errors_cell(rs)} |")
        out.append("")

    if tls:
        out.extend(handshake_table(meta, runs))
    else:
        out.extend(close_table(meta, runs))

    if any(k[2] == "body" for k in runs):
        out.extend(body_table(meta, runs))
    out.extend(rss_table(meta, outdir, threads))
    out.extend(problems(outdir, runs))
    out.extend(notes(meta, outdir, runs))
    return "\n".join(out)


def table_rows(meta, runs, test):
    """(target, T, results, median, HAProxy's median at that T) for each row of one test's table:
    direct first (when it was measured), then each thread count's proxies."""
    for target, t in [("direct", 0)] + [(p, t) for t in meta["threads"] for p in PROXIES]:
        rs = runs.get((target, t, test), [])
        if rs:
            h_rps = med(r["rps"] for r in runs.get(("haproxy", t, test), [])) if t else None
            yield target, t, rs, med(r["rps"] for r in rs), h_rps


def handshake_table(meta, runs):
    k = meta.get("hs_clients", 1)
    ab = f"`ab -r -s 5 -n {meta['hs_n'] // k} -c {meta['hs_c'] // k}` over https" + (f", {k} at once" if k > 1 else "")
    out = [f"### Full TLS handshakes ({ab}: a new connection, a full TLS 1.3 handshake and one `GET` per request, "
           "never a resumed session)", ""]
    out.append("| Proxy | T | handshakes/s (median) | min–max | p99 | vs HAProxy | CPU µs/handshake | ab's suite | failed (all rounds) |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for target, t, rs, rps, h_rps in table_rows(meta, runs, "close"):
        seen = sorted({" ".join(r["tls"].split(",")[:2]) for r in rs if r.get("tls")})
        out.append(f"| {NAMES[target]} | {t} | {fmt_rps(rps)} | {spread(rs)} | {fmt_ms(med(r.get('p99') for r in rs))} | "
                   f"{ratio(rps, h_rps)} | {cpu_cell(rs)} | {', '.join(seen) or '—'} | {errors_cell(rs)} |")
    out.append("")
    out.append("handshakes/s: the requests of all ab processes over the longest one's time. CPU µs/handshake: the "
               "proxy's CPU time over the ab runs (as for the keep-alive rows) divided by the requests completed, each "
               "one full handshake plus a small proxied request. The client's half of a handshake (X25519 key share, "
               "verifying the ECDSA signature) costs more CPU than the proxy's, and the clients share the CPUs with "
               "the proxy, so handshakes/s moves with the proxy's cost only in part; the CPU per handshake is the "
               "proxy's own figure. p99: the worst of the ab processes' whole-millisecond p99s. ab, not wrk: wrk "
               "reconnects with `SSL_clear`, which keeps the session, so its new connections resume.")
    out.append("")
    return out


def close_table(meta, runs):
    out = []
    out.append(f"### New connection per request (`ab -r -s 5 -n {meta['ab_n']} -c {meta['ab_c']}`, HTTP/1.0, no keep-alive)")
    out.append("")
    out.append("| Proxy | T | connections/s (median) | min–max | vs HAProxy | vs direct | new upstream connections per request | failed (all rounds) |")
    out.append("|---|---|---|---|---|---|---|---|")
    direct = runs.get(("direct", 0, "close"), [])
    d_rps = med(r["rps"] for r in direct)
    for target, t, rs, rps, h_rps in table_rows(meta, runs, "close"):
        out.append(f"| {NAMES[target]} | {t or '—'} | {fmt_rps(rps)} | {spread(rs)} | "
                   f"{ratio(rps, h_rps) if t else '—'} | {ratio(rps, d_rps) if t else '1.00×'} | "
                   f"{upstream_cell(rs) if t else '—'} | {errors_cell(rs)} |")
    out.append("")
    out.append("New upstream connections per request: the machine-wide TCP `PassiveOpens` counter over the ab run, "
               "minus ab's own connections, divided by the requests (median over rounds): 0 means the proxy reused "
               "its keep-alive connections to the replica, 1 means it opened one per request.")
    out.append("")
    return out


def body_table(meta, runs):
    tls = meta.get("tls", False)
    out = []
    out.append(f"### Large body{' over TLS' if tls else ''} ({meta['body_mib']} MiB up and the same {meta['body_mib']} MiB back through `POST /echo`, curl, {meta.get('body_runs', 1)} in a row per visit: the median of each visit, then the median over the rounds; min–max over every transfer)")
    out.append("")
    out.append("| Proxy | T | MiB/s each way (median) | min–max | vs HAProxy |" + ("" if tls else " vs direct |")
               + " failed (all rounds) |")
    out.append("|---|---|---|---|---|---|" + ("" if tls else "---|"))
    direct = runs.get(("direct", 0, "body"), [])
    d_rps = med(r["rps"] for r in direct)
    for target, t, rs, rps, h_rps in table_rows(meta, runs, "body"):
        vals = [v for r in rs for v in r.get("runs", [r["rps"]]) if v is not None]
        rng = f"{min(vals):,.0f}–{max(vals):,.0f}" if len(vals) > 1 else "—"
        out.append(f"| {NAMES[target]} | {t or '—'} | {fmt_rps(rps)} | {rng} | "
                   f"{ratio(rps, h_rps) if t else '—'} |{'' if tls else ' ' + (ratio(rps, d_rps) if t else '1.00×') + ' |'} "
                   f"{errors_cell(rs)} |")
    out.append("")
    return out


def rss_table(meta, outdir, threads):
    out = []
    rss_dir = os.path.join(outdir, "rss")
    rss_rows = []
    if os.path.isdir(rss_dir):
        for t in threads:
            for p in PROXIES:
                path = os.path.join(rss_dir, f"{p}_T{t}.json")
                if os.path.exists(path):
                    with open(path) as f:
                        text = f.read().strip()
                    try:
                        rss_rows.append((p, t, json.loads(text.splitlines()[-1])))
                    except (ValueError, IndexError):
                        rss_rows.append((p, t, {"failed": text[-200:]}))
    if rss_rows:
        out.append(f"### Memory: RSS growth for {meta['rss_conns']:,} idle keep-alive{' TLS' if meta.get('tls') else ''} client connections")
        out.append("")
        out.append("Each connection first completes one `GET` (so it has been through a full request), then sits idle; "
                   "VmRSS of the proxy (nginx: master plus workers) is read after a warm-up and again 2 s after the "
                   "last connection was opened (`bench/compare.d/idle_conns.py`), on a freshly started proxy.")
        out.append("")
        out.append("| Proxy | T | held / still open | RSS before | RSS after | growth per connection |")
        out.append("|---|---|---|---|---|---|")
        for p, t, r in rss_rows:
            if "failed" in r:
                out.append(f"| {NAMES[p]} | {t} | failed: `{r['failed']}` | | | |")
                continue
            per = r["per_conn_bytes"]
            extra = f" ({r['errors']} errors)" if r["errors"] else ""
            out.append(f"| {NAMES[p]} | {t} | {r['connections']:,} / {r['still_open']:,}{extra} | "
                       f"{r['rss_before_kib'] / 1024:.1f} MiB | {r['rss_after_kib'] / 1024:.1f} MiB | "
                       f"{'—' if per is None else f'{per / 1024:.2f} KiB'} |")
        out.append("")
    return out


def problems(outdir, runs):
    out = []
    events = os.path.join(outdir, "events.log")
    if os.path.exists(events) and os.path.getsize(events):
        out.append("### Problems observed during the run")
        out.append("")
        out.append("```")
        with open(events, errors="replace") as f:
            out.extend(l.rstrip("\n") for l in f.readlines()[-40:])
        out.append("```")
        out.append("")
    detail = []
    for (target, t, test), rs in sorted(runs.items()):
        for r in rs:
            if r["socket_errors"] or r["non2xx"] or r["rps"] is None:
                detail.append(f"- round {r['round']}, {NAMES[target]}, T={t or '—'}, {test}: "
                              f"{r['error_detail'] or 'no result'}; non-2xx {r['non2xx']} of {r['requests']}")
    if detail:
        out.append("Runs with errors:")
        out.append("")
        out.extend(detail)
        out.append("")
    return out


def tls_path_lines(outdir):
    """What ds-lb logged once about its TLS data path (kernel TLS or SSL_read/SSL_write)."""
    logs, seen = os.path.join(outdir, "logs"), []
    for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        if "ds-lb" not in name:
            continue
        with open(os.path.join(logs, name), errors="replace") as f:
            for line in f:
                if re.search(r"kernel TLS|kTLS|TCP_ULP", line):
                    text = re.sub(r"^\S+Z\s+", "", line.strip())[:200]
                    if text not in seen:
                        seen.append(text)
    return seen[:2]


def notes(meta, outdir, runs):
    tls = meta.get("tls", False)
    out = []
    out.append("Notes:")
    out.append("")
    worst, loads = noise(outdir, runs)
    spread_text = ""
    if worst:
        (target, t, test) = worst[1]
        spread_text = (f" The round-to-round spread of req/s reaches {worst[0] * 100:.0f} % of the median "
                       f"({NAMES[target]}, T={t or '—'}, {test}), so only differences well beyond the min–max "
                       f"ranges above mean anything.")
    if loads:
        spread_text += (f" The 1-minute load average at the start of each visit was {min(loads):.1f}–{max(loads):.1f} "
                        f"(other work on the machine adds to the noise).")
    out.append((f"- Noise: the proxy's workers had their CPUs to themselves, but wrk/ab and the replica shared "
                f"the rest ({meta['client_cpus']}), so the load generator and the replica compete with each other; "
                "other processes of the machine still run anywhere."
                if isolated(meta) else
                f"- Noise: the machine has {meta['nproc']} shared CPUs and wrk/ab, the proxy and the replica all run on "
                "them, so the load generator competes with the proxy for CPU; with T equal to the CPU count the "
                "proxy's threads are oversubscribed.")
               + " Absolute numbers are far below what these proxies do on dedicated cores."
               + ("" if tls else " The direct baseline is bounded by the "
                  + ("static backend." if static_backend(meta) else "nginx backend." if fast_backend(meta) else "single-threaded ds-server."))
               + spread_text)
    out.append("- All three proxies do the same work per request: parse, pick the replica by hashing `?id=`, add "
               "`X-Forwarded-For`/`X-Forwarded-Proto`, reuse a keep-alive upstream connection; access logs off.")
    if tls:
        out.append(f"- TLS: `{meta['tls_suite']}` is pinned by each proxy's own setting: ds-lb `--tls-ciphersuites` "
                   "(ds-lb runs without the clients' OPENSSL_CONF), HAProxy `ssl-min-ver TLSv1.3 ciphersuites`, nginx "
                   "`ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites`; and on every client (wrk, ab, curl, openssl, "
                   "Python) by an OPENSSL_CONF file (`system_default`: `MinProtocol = TLSv1.3`, `Ciphersuites`, "
                   "`Groups = X25519`). A TLS 1.3 server can only choose a suite the client offers, so the client pin "
                   "alone already makes it the same on all three; the negotiated suite is checked on every visit (above). "
                   "Each proxy keeps its defaults otherwise (session tickets on, ALPN http/1.1).")
        for line in tls_path_lines(outdir):
            out.append(f"- ds-lb's log on its TLS path: `{line}`")
    skipped = os.path.join(outdir, "body-skipped")
    if os.path.exists(skipped) and open(skipped).read().strip() == "no-echo":
        out.append("- Not measured: large-body throughput (issue 3) — the ds-server that was built has no `POST /echo` "
                   "endpoint, so no replica accepts and returns a large body; `bench/compare` runs the test once it has.")
    elif os.path.exists(skipped) and open(skipped).read().strip() == "fast-backend":
        out.append("- Large-body test not run: the fast backend has no `POST /echo`.")
    elif os.path.exists(skipped):
        out.append("- Large-body test not run (`--no-body`).")
    else:
        out.append("- Large body: ds-lb and HAProxy stream the request and the response at the same time. nginx is not "
                   "measured: once it has forwarded the replica's response head it stops sending the request body "
                   "upstream (`ngx_http_upstream_send_request_handler`: `u->header_sent` switches the write handler to "
                   "a dummy), and `/echo` answers while it reads, so a 256 MiB echo through nginx stalled after "
                   "5–110 MB until `proxy_read_timeout` in every try (`proxy_request_buffering` off and on). "
                   f"{meta.get('body_runs', 1)} transfer(s) per visit. With a proxy in the path three processes "
                   "(curl, the proxy, the replica) are busy on the 2 CPUs against two without one, and the replica "
                   "alone swings by 3× and more from one transfer to the next"
                   + (". Over TLS the client leg goes through AES-GCM both ways in curl and in the proxy (ds-lb: "
                      "`SSL_read`/`SSL_write` where the kernel has no kTLS, see its log line above), the replica leg "
                      "stays plain." if tls else ", so the ratio to direct is the noisiest figure here."))
    out.append(f"- Raw wrk/ab outputs and proxy logs of this run: `{meta['outdir_rel']}/` (not committed).")
    out.append("")
    return out


KEEP_MARKER = "<!-- report.py keeps the notes below this line when it rewrites the section -->"


def update(path, section):
    title = section.splitlines()[0]
    text = open(path).read() if os.path.exists(path) else ""
    lines = text.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip() == title), None)
    if start is None:
        if text and not text.endswith("\n"):
            text += "\n"
        new = text + ("\n" if text else "") + section
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        kept = next((i for i in range(start + 1, end) if lines[i].rstrip() == KEEP_MARKER), end)
        kept_notes = "".join(lines[kept:end]).rstrip("\n")
        if kept_notes:
            section = section.rstrip("\n") + "\n\n" + kept_notes + "\n"
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + section + ("\n" + tail if tail else "")
    with open(path, "w") as f:
        f.write(new)


def main():
    outdir = sys.argv[1]
    section = render(outdir)
    print(section)
    if len(sys.argv) > 3 and sys.argv[2] == "--update":
        update(sys.argv[3], section)


if __name__ == "__main__":
    main()
