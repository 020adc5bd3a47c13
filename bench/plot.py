#!/usr/bin/python3
"""Charts for `ds-bench analysis`. ds-bench writes the CSV, then runs this script with
the interpreter that has matplotlib (Debian's /usr/bin/python3 with python3-matplotlib, installed
by scripts/install-deps.sh). Only the standard library and matplotlib.

  plot.py bars     CSV PNG --title T    CSV: group,replica,requests[,expected]   (A-1, A-2 weighted,
                                       A-4 per function; with `expected`, each bar's target is drawn
                                       instead of the even share)
  plot.py lines    CSV PNG --title T    CSV: group,n,mean,min,max,max_over_avg,stddev_pct  (A-2, A-4)
  plot.py timeline CSV PNG --title T --events EVENTS --victim NAME [--zoom CSV2]
                                       CSV: t_s,ok_rps,error_rps,victim_rps  EVENTS: kind,label,t_s
"""
import argparse
import csv
import sys
import textwrap

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({"font.size": 11, "axes.titlesize": 13, "axes.labelsize": 11, "legend.fontsize": 10,
                     "figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3})


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def natural(name):
    digits = "".join(c for c in name if c.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else -1, name)


def bars(rows, out, title, xlabel):
    groups = list(dict.fromkeys(r["group"] for r in rows))
    replicas = sorted(dict.fromkeys(r["replica"] for r in rows), key=natural)
    counts = {(r["group"], r["replica"]): int(r["requests"]) for r in rows}
    expected = {(r["group"], r["replica"]): float(r["expected"]) for r in rows if r.get("expected")}
    width = 0.8 / max(len(replicas), 1)
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(groups) + 3), 4.8))
    colors = plt.cm.tab10.colors
    for j, rep in enumerate(replicas):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(groups))]
        ys = [counts.get((g, rep), 0) for g in groups]
        b = ax.bar(xs, ys, width * 0.95, label=rep, color=colors[j % len(colors)])
        if len(groups) * len(replicas) <= 24:
            ax.bar_label(b, labels=[str(y) for y in ys], fontsize=8, padding=2)
        for x, g in zip(xs, groups):
            if (g, rep) in expected:
                ax.hlines(expected[(g, rep)], x - width / 2, x + width / 2, colors="black", linestyles="dashed", linewidth=1)
    if expected:
        ax.plot([], [], color="black", linestyle="dashed", linewidth=1, label="weight's share")
    for i, g in enumerate(groups if not expected else []):
        total = sum(counts.get((g, rep), 0) for rep in replicas)
        present = sum(1 for rep in replicas if (g, rep) in counts)
        if present:
            ax.hlines(total / present, i - 0.42, i + 0.42, colors="black", linestyles="dashed", linewidth=1)
    if not expected:
        ax.plot([], [], color="black", linestyle="dashed", linewidth=1, label="even share")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([textwrap.fill(g, 14) for g in groups])
    ax.set_ylabel("requests served")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.margins(y=0.12)
    ax.legend(title="replica", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out)


def lines(rows, out, title):
    groups = list(dict.fromkeys(r["group"] for r in rows))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    markers = "osD^vP*X"
    colors = plt.cm.tab10.colors
    ns_all = sorted({int(r["n"]) for r in rows})
    series = {}
    for k, g in enumerate(groups):
        pts = sorted((int(r["n"]), r) for r in rows if r["group"] == g)
        series[g] = pts
        ns = [n for n, _ in pts]
        mean = [float(r["mean"]) for _, r in pts]
        lo = [float(r["min"]) for _, r in pts]
        hi = [float(r["max"]) for _, r in pts]
        # Each group's min–max bar is shifted a little so that overlapping groups stay visible.
        dx = (k - (len(groups) - 1) / 2) * 0.12
        axes[0].errorbar([n + dx for n in ns], mean, yerr=[[m - l for m, l in zip(mean, lo)], [h - m for m, h in zip(mean, hi)]],
                         fmt=markers[k % len(markers)], color=colors[k % 10], capsize=3, label=g, markersize=5)
    axes[0].set_title("load per replica: mean, bar = min to max")
    axes[0].set_ylabel("requests per replica")
    zoomable(axes[1], groups, series, "max_over_avg", "max / avg (1 = perfectly even)", "max / avg", markers, colors, "{:.2f}")
    axes[1].axhline(1.0, color="black", linewidth=0.8)
    zoomable(axes[2], groups, series, "stddev_pct", "standard deviation of the load", "% of the mean", markers, colors, "{:.0f} %")
    for ax in axes:
        ax.set_xlabel("replicas N")
        ax.set_xticks(ns_all)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(groups), 7), bbox_to_anchor=(0.5, -0.01))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out)


def zoomable(ax, groups, series, key, title, ylabel, markers, colors, fmt):
    """Plots one metric per group. Groups far above the others (more than 3x the others' largest
    distance from the ideal) would squash them into a flat line, so the axis is fitted to the
    others and the outliers' values are written as text instead."""
    ideal = 1.0 if key == "max_over_avg" else 0.0
    peak = {g: max(float(r[key]) for _, r in series[g]) - ideal for g in groups}
    ordered = sorted(peak.values())
    cut = None
    if len(ordered) > 1 and ordered[-1] > 3 * max(ordered[0], 1e-9) and ordered[-1] > 0.2 * (1 if ideal else 100):
        normal = [v for v in ordered if v * 3 < ordered[-1]]
        # Head room above the fitted groups for the text box listing the off-scale ones.
        cut = ideal + (max(normal) if normal else ordered[0]) * (1.4 + 0.35 * (len(ordered) - len(normal))) + (0.005 if ideal else 0.5)
    notes = []
    for k, g in enumerate(groups):
        ns = [n for n, _ in series[g]]
        ys = [float(r[key]) for _, r in series[g]]
        if cut is not None and max(ys) > cut:
            notes.append(f"{g} (off scale):\n  " + ", ".join(fmt.format(y) for y in ys))
            continue
        ax.plot(ns, ys, marker=markers[k % len(markers)], color=colors[k % 10], label=g)
    if cut is not None:
        ax.set_ylim(ideal - (cut - ideal) * 0.05, cut)
        ax.text(0.02, 0.97, "\n".join(notes), transform=ax.transAxes, va="top", fontsize=8.5,
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"})
    ax.set_title(title)
    ax.set_ylabel(ylabel)


def timeline(rows, out, title, events_path, victim, zoom_path):
    events = read(events_path) if events_path else []
    if zoom_path:
        fig, (ax, zx) = plt.subplots(1, 2, figsize=(15, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    else:
        fig, ax = plt.subplots(figsize=(12.5, 4.8))
    draw_timeline(ax, rows, victim, events, "100 ms bins")
    ax.set_title(title)
    if zoom_path:
        draw_timeline(zx, read(zoom_path), victim, events, "10 ms bins")
        zx.set_title("around the kill (10 ms bins)")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, bbox_to_anchor=(0.5, -0.01))
    fig.tight_layout(rect=(0, 0.11, 1, 1))
    fig.savefig(out)


def draw_timeline(ax, rows, victim, events, bins):
    t = [float(r["t_s"]) for r in rows]
    ok = [float(r["ok_rps"]) for r in rows]
    err = [float(r["error_rps"]) for r in rows]
    step = t[1] - t[0] if len(t) > 1 else 0.1
    # Steps, not lines: a bin's value holds for the whole bin, so a recovery is not drawn early.
    ax.step(t, ok, where="post", color="tab:blue", label="answered (2xx) req/s, all replicas")
    if victim and "victim_rps" in rows[0]:
        ax.step(t, [float(r["victim_rps"]) for r in rows], where="post", color="tab:purple", linewidth=1.2,
                label=f"answered by {victim} req/s")
    ax.bar(t, err, width=step, color="tab:red", alpha=0.8, label="failed req/s", align="edge")
    ax.set_xlabel("time since the load started (s)")
    ax.set_ylabel(f"requests per second ({bins})")
    ax.set_ylim(0, max(ok + err + [1]) * 1.25)
    ax.set_xlim(t[0], t[-1] + step)
    styles = {"kill": ("black", "solid"), "down": ("tab:red", "dashed"), "restarted": ("tab:orange", "dashdot"),
              "back": ("tab:green", "dotted")}
    for e in events:
        color, style = styles.get(e["kind"], ("gray", "dashed"))
        ax.axvline(float(e["t_s"]), color=color, linestyle=style, linewidth=1.6, label=e["label"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["bars", "lines", "timeline"])
    p.add_argument("csv")
    p.add_argument("png")
    p.add_argument("--title", default="")
    p.add_argument("--events")
    p.add_argument("--xlabel", default="algorithm")
    p.add_argument("--zoom", help="timeline: a second CSV (finer bins) drawn beside the first")
    p.add_argument("--victim", help="timeline: name of the replica in the victim_rps column")
    a = p.parse_args()
    rows = read(a.csv)
    if not rows:
        sys.exit(f"plot.py: {a.csv} has no rows")
    if a.kind == "bars":
        bars(rows, a.png, a.title, a.xlabel)
    elif a.kind == "lines":
        lines(rows, a.png, a.title)
    else:
        timeline(rows, a.png, a.title, a.events, a.victim, a.zoom)


if __name__ == "__main__":
    main()
