#!/usr/bin/python3
"""Charts for `ds-bench analysis` (issue 8). ds-bench writes the CSV, then runs this script with
the interpreter that has matplotlib (Debian's /usr/bin/python3 with python3-matplotlib, installed
by scripts/install-deps.sh). Only the standard library and matplotlib.

  plot.py bars     CSV PNG --title T    CSV: group,replica,requests   (A-1, A-4 per function)
  plot.py lines    CSV PNG --title T    CSV: group,n,mean,min,max,max_over_avg,stddev_pct  (A-2, A-4)
  plot.py timeline CSV PNG --title T --events EVENTS   CSV: t_s,ok_rps,error_rps  EVENTS: label,t_s
"""
import argparse
import csv
import sys

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


def bars(rows, out, title):
    groups = list(dict.fromkeys(r["group"] for r in rows))
    replicas = sorted(dict.fromkeys(r["replica"] for r in rows), key=natural)
    counts = {(r["group"], r["replica"]): int(r["requests"]) for r in rows}
    width = 0.8 / max(len(replicas), 1)
    fig, ax = plt.subplots(figsize=(max(7, 1.6 * len(groups) + 3), 4.8))
    colors = plt.cm.tab10.colors
    for j, rep in enumerate(replicas):
        xs = [i - 0.4 + width * (j + 0.5) for i in range(len(groups))]
        ys = [counts.get((g, rep), 0) for g in groups]
        b = ax.bar(xs, ys, width * 0.95, label=rep, color=colors[j % len(colors)])
        if len(groups) * len(replicas) <= 24:
            ax.bar_label(b, labels=[str(y) for y in ys], fontsize=8, padding=2)
    for i, g in enumerate(groups):
        total = sum(counts.get((g, rep), 0) for rep in replicas)
        present = sum(1 for rep in replicas if (g, rep) in counts)
        if present:
            ax.hlines(total / present, i - 0.42, i + 0.42, colors="black", linestyles="dashed", linewidth=1)
    ax.plot([], [], color="black", linestyle="dashed", linewidth=1, label="even share")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)
    ax.set_ylabel("requests served")
    ax.set_xlabel("algorithm")
    ax.set_title(title)
    ax.margins(y=0.12)
    ax.legend(title="replica", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out)


def lines(rows, out, title):
    groups = list(dict.fromkeys(r["group"] for r in rows))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    markers = "osD^vP*X"
    for k, g in enumerate(groups):
        pts = sorted((int(r["n"]), r) for r in rows if r["group"] == g)
        ns = [n for n, _ in pts]
        mean = [float(r["mean"]) for _, r in pts]
        lo = [float(r["min"]) for _, r in pts]
        hi = [float(r["max"]) for _, r in pts]
        m = markers[k % len(markers)]
        line, = axes[0].plot(ns, mean, marker=m, label=g)
        axes[0].fill_between(ns, lo, hi, color=line.get_color(), alpha=0.12)
        axes[0].plot(ns, hi, color=line.get_color(), linestyle="dotted", linewidth=1)
        axes[1].plot(ns, [float(r["max_over_avg"]) for _, r in pts], marker=m, label=g)
        axes[2].plot(ns, [float(r["stddev_pct"]) for _, r in pts], marker=m, label=g)
    axes[0].set_title("mean load per replica\n(band and dotted line: min–max)")
    axes[0].set_ylabel("requests per replica")
    axes[1].set_title("max / avg (1 = perfectly even)")
    axes[1].set_ylabel("max / avg")
    axes[1].axhline(1.0, color="black", linewidth=0.8)
    axes[2].set_title("standard deviation of the load")
    axes[2].set_ylabel("% of the mean")
    for ax in axes:
        ax.set_xlabel("replicas N")
        ax.set_xticks(sorted({int(r["n"]) for r in rows}))
    axes[1].set_yscale("log") if max(float(r["max_over_avg"]) for r in rows) > 3 else None
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(groups), 7), bbox_to_anchor=(0.5, -0.01))
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out)


def timeline(rows, out, title, events_path):
    t = [float(r["t_s"]) for r in rows]
    ok = [float(r["ok_rps"]) for r in rows]
    err = [float(r["error_rps"]) for r in rows]
    step = t[1] - t[0] if len(t) > 1 else 0.1
    fig, ax = plt.subplots(figsize=(11, 4.8))
    ax.plot(t, ok, color="tab:blue", label="answered (2xx) req/s")
    ax.bar(t, err, width=step, color="tab:red", alpha=0.8, label="failed req/s", align="edge")
    ax.set_xlabel("time since the load started (s)")
    ax.set_ylabel("requests per second")
    ax.set_title(title)
    top = max(ok + err + [1]) * 1.25
    ax.set_ylim(0, top)
    styles = {"kill": ("black", "solid"), "down": ("tab:red", "dashed"), "restarted": ("tab:orange", "dashdot"),
              "back": ("tab:green", "dotted")}
    if events_path:
        events = read(events_path)
        for i, e in enumerate(events):
            color, style = styles.get(e["kind"], ("gray", "dashed"))
            x = float(e["t_s"])
            ax.axvline(x, color=color, linestyle=style, linewidth=1.6, label=e["label"])
    ax.legend(loc="lower left", fontsize=9, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["bars", "lines", "timeline"])
    p.add_argument("csv")
    p.add_argument("png")
    p.add_argument("--title", default="")
    p.add_argument("--events")
    a = p.parse_args()
    rows = read(a.csv)
    if not rows:
        sys.exit(f"plot.py: {a.csv} has no rows")
    if a.kind == "bars":
        bars(rows, a.png, a.title)
    elif a.kind == "lines":
        lines(rows, a.png, a.title)
    else:
        timeline(rows, a.png, a.title, a.events)


if __name__ == "__main__":
    main()
