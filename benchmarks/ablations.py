"""Train the node classifier under each ablation (or each loss/sampling lever) on one database and
print a markdown table of test metrics beside the all-negative baseline.

    python benchmarks/ablations.py data/set-prop.mm --preset cpu --out runs/ablations
    python benchmarks/ablations.py set.mm --rows levers --preset demo --out runs/levers \\
        --train-args="--essential-only --max-train-examples 8000 --epochs 3"

Every run is an ordinary `mmrefactor train` (same dataset, same seeds, the
``--train-args`` on every row), so a row can be reproduced alone; finished
runs are reused (their metrics.json).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from refactor.cli import main as cli  # noqa: E402

ROWS = {
    "ablations": [("full model", "none", ["--ablation", "none"]),
                  ("no edges", "no-edges", ["--ablation", "no-edges"]),
                  ("expression only", "expr-only", ["--ablation", "expr-only"]),
                  ("label only", "label-only", ["--ablation", "label-only"]),
                  ("label only, no edges", "label-only-no-edges", ["--ablation", "label-only-no-edges"]),
                  ("essential steps only", "none-essential", ["--essential-only"])],
    # issue 9's lever (b): the loss and the sampling for a minority of positive nodes
    "levers": [("BCE", "bce", []),
               ("BCE, positive weight 3", "pos3", ["--pos-weight", "3"]),
               ("focal (gamma 2)", "focal", ["--loss", "focal"]),
               ("balanced sampling of inlined theorems", "balanced", ["--sampling", "balanced"]),
               ("focal + balanced", "focal-balanced", ["--loss", "focal", "--sampling", "balanced"])],
}


def run(db: str, preset: str, out: str, rows: str, train_args: list[str], only: list[str] | None) -> list[dict]:
    result = []
    for name, tag, extra in ROWS[rows]:
        if only and name not in only and tag not in only:
            continue
        argv_rest = train_args + extra
        run_dir = os.path.join(out, f"{preset}-{tag}")
        data_dir = os.path.join(out, "dataset-essential" if "--essential-only" in argv_rest else "dataset")
        metrics = os.path.join(run_dir, "metrics.json")
        if not os.path.exists(metrics):
            argv = ["train", db, "--out", run_dir, "--data", data_dir, "--preset", preset, "--json", "--resume",
                    *argv_rest]
            print(f"$ mmrefactor {' '.join(argv)}", file=sys.stderr, flush=True)
            with contextlib.redirect_stdout(io.StringIO()):
                if cli(argv) != 0:
                    raise SystemExit(f"training {name} failed")
        with open(metrics) as fh:
            m = json.load(fh)
        result.append({"name": name, **m})
    return result


def table(rows: list[dict]) -> str:
    out = ["| model | test node acc (all-negative) | precision | recall | F1 | proof acc (all-negative) "
           "| predicted positive (true) | best epoch | train s | examples/s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        t, b = r["test"], r["baseline_all_negative"]["test"]
        pred = f"{t['predicted_positive']:.3f}" if "predicted_positive" in t else "-"
        true = 1 - b["node_accuracy"]
        stop = " (stopped: collapsed)" if r.get("stopped_early") else ""
        out.append(f"| {r['name']} | {t['node_accuracy']:.3f} ({b['node_accuracy']:.3f}) | {t['precision']:.3f} | "
                   f"{t['recall']:.3f} | {t['f1']:.3f} | {t['proof_accuracy']:.3f} ({b['proof_accuracy']:.3f}) | "
                   f"{pred} ({true:.3f}) | {r['best_epoch']}{stop} | {r['train_seconds']} | "
                   f"{r['examples_per_second']} |")
    return "\n".join(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--rows", choices=sorted(ROWS), default="ablations")
    ap.add_argument("--train-args", default="", help="more `mmrefactor train` arguments for every row")
    ap.add_argument("--epochs", type=int, help="shorthand for --train-args=--epochs N")
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "ablations"))
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    extra = shlex.split(a.train_args) + (["--epochs", str(a.epochs)] if a.epochs else [])
    print(table(run(a.db, a.preset, a.out, a.rows, extra, a.only)))
