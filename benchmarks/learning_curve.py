"""Learning curve of the GNN node classifier: validation proof accuracy
against training examples seen, over one or more `mmrefactor train` runs.

    python benchmarks/learning_curve.py RUN_DIR... [--target 0.196] [--plot curve.png] [--json]

Each run contributes one point per finished epoch (``metrics.json`` when the
run has ended, else the history inside ``last.pt``, so a run still training
or resumed for more epochs can be read): examples seen = the run's training examples x epochs. A line
is fitted to proof accuracy against log10(examples seen) over all points,
and the examples (and hours, at the runs' measured examples per second)
the line would need to reach ``--target`` (REFACTOR's 19.6% by default)
are printed beside it. That is an extrapolation, stated as one: it says
how far the measured trend is from the target, not that the target would
be reached.

Why: issue 9 asks, where the target is missed, for the experiment that
shows why. The runs should share a dataset's validation split; the script
prints each run's dataset so a reader can check.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run_points(run_dir: str) -> dict:
    """One run's curve: its dataset, training examples, and per-epoch validation figures."""
    metrics, last = os.path.join(run_dir, "metrics.json"), os.path.join(run_dir, "last.pt")
    if os.path.exists(metrics) and not (os.path.exists(last) and os.path.getmtime(last) > os.path.getmtime(metrics)):
        with open(metrics, encoding="utf-8") as fh:
            m = json.load(fh)
        history, n_train, dataset = m["history"], m["train_examples"], m["dataset"]
    else:
        import torch

        if not os.path.exists(last):
            raise SystemExit(f"error: {run_dir}: neither metrics.json nor last.pt (not a `mmrefactor train` run)")
        ck = torch.load(last, map_location="cpu", weights_only=False)
        history, dataset = ck["history"], ck["dataset"]
        with open(os.path.join(dataset, "meta.json"), encoding="utf-8") as fh:
            n_train = json.load(fh)["splits"]["train"]
        cap = ck["config"]["train"].get("max_train_examples")
        n_train = min(n_train, cap) if cap else n_train
    points = [{"epoch": h["epoch"], "examples_seen": n_train * h["epoch"], "seconds": h["seconds"],
               **{k: h["valid"][k] for k in ("proof_accuracy", "f1", "node_accuracy")}} for h in history]
    return {"run": run_dir, "dataset": dataset, "train_examples": n_train, "points": points}


def fit_log_linear(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares ``y = a + b log10(x)``; returns (a, b)."""
    lx = [math.log10(x) for x in xs]
    mx, my = sum(lx) / len(lx), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in lx)
    b = sum((x - mx) * (y - my) for x, y in zip(lx, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="`mmrefactor train` run directories")
    ap.add_argument("--target", type=float, default=0.196, help="proof accuracy to extrapolate to (REFACTOR: 0.196)")
    ap.add_argument("--plot", help="write the curve as a PNG")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    runs = [run_points(r) for r in a.runs]
    pts = [p for r in runs for p in r["points"]]
    if not pts:
        raise SystemExit("error: no finished epoch in these runs yet")
    a0, b = fit_log_linear([p["examples_seen"] for p in pts], [p["proof_accuracy"] for p in pts])
    secs = sum(p["seconds"] for p in pts)
    rate = sum(r["train_examples"] for r in runs for _ in r["points"]) / secs if secs else float("nan")
    need = 10 ** ((a.target - a0) / b) if b > 0 else math.inf
    out = {"runs": runs, "fit": {"intercept": a0, "slope_per_decade": b}, "target": a.target,
           "examples_to_target": need, "examples_per_second": rate,
           "hours_to_target": need / rate / 3600 if rate and math.isfinite(need) else math.inf}
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for r in runs:
            ax.plot([p["examples_seen"] for p in r["points"]], [p["proof_accuracy"] for p in r["points"]], "o-",
                    label=f"{os.path.basename(r['run'].rstrip('/'))} ({r['train_examples']:,} examples)")
        lo, hi = min(p["examples_seen"] for p in pts), max(p["examples_seen"] for p in pts)
        xs = [lo * (hi / lo) ** (i / 20) for i in range(21)]
        ax.plot(xs, [a0 + b * math.log10(x) for x in xs], "k--", label=f"fit: {b:.3f} per decade")
        ax.set_xscale("log")
        ax.set_xlabel("training examples seen")
        ax.set_ylabel("validation proof accuracy")
        ax.legend(fontsize=7)
        fig.tight_layout()
        tmp = a.plot + ".tmp.png"
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, a.plot)
    if a.json:
        print(json.dumps(out, indent=1))
        return
    print("| run | epoch | examples seen | valid proof acc | F1 | node acc |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in runs:
        for p in r["points"]:
            print(f"| {os.path.basename(r['run'].rstrip('/'))} | {p['epoch']} | {p['examples_seen']:,} | "
                  f"{p['proof_accuracy']:.3f} | {p['f1']:.3f} | {p['node_accuracy']:.3f} |")
    print(f"\nfit: proof accuracy = {a0:.3f} + {b:.3f} log10(examples seen); datasets: "
          + ", ".join(sorted({r['dataset'] for r in runs})))
    print(f"to reach {a.target:.3f}: {need:,.0f} examples seen" + (
        f", {out['hours_to_target']:,.1f} h at {rate:.0f} examples/s (extrapolated)" if math.isfinite(need) else
        " (the fit does not rise)"))


if __name__ == "__main__":
    main()
