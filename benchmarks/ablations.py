"""Train the node classifier under each ablation on one database and print a
markdown table of test metrics beside the all-negative baseline.

    python benchmarks/ablations.py data/set-prop.mm --preset cpu --out runs/ablations

Every run is an ordinary `mmrefactor train` (same dataset, same seeds), so a
row can be reproduced alone; finished runs are reused (their metrics.json).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from refactor.cli import main as cli  # noqa: E402

ROWS = [("full model", "none", []), ("no edges", "no-edges", []), ("expression only", "expr-only", []),
        ("label only", "label-only", []), ("label only, no edges", "label-only-no-edges", []),
        ("essential steps only", "none", ["--essential-only"])]


def run(db: str, preset: str, out: str, epochs: int | None, only: list[str] | None) -> list[dict]:
    rows = []
    for name, ablation, extra in ROWS:
        if only and name not in only and ablation not in only:
            continue
        tag = ablation + ("-essential" if extra else "")
        run_dir = os.path.join(out, f"{preset}-{tag}")
        data_dir = os.path.join(out, "dataset-essential" if extra else "dataset")
        metrics = os.path.join(run_dir, "metrics.json")
        if not os.path.exists(metrics):
            argv = ["train", db, "--out", run_dir, "--data", data_dir, "--preset", preset,
                    "--ablation", ablation, "--json"] + extra
            if epochs:
                argv += ["--epochs", str(epochs)]
            print(f"$ mmrefactor {' '.join(argv)}", file=sys.stderr, flush=True)
            import contextlib, io

            with contextlib.redirect_stdout(io.StringIO()):
                if cli(argv) != 0:
                    raise SystemExit(f"training {name} failed")
        with open(metrics) as fh:
            m = json.load(fh)
        rows.append({"name": name, **m})
    return rows


def table(rows: list[dict]) -> str:
    out = ["| model | test node acc (all-negative) | precision | recall | F1 | proof acc (all-negative) "
           "| train s | examples/s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        t, b = r["test"], r["baseline_all_negative"]["test"]
        out.append(f"| {r['name']} | {t['node_accuracy']:.3f} ({b['node_accuracy']:.3f}) | {t['precision']:.3f} | "
                   f"{t['recall']:.3f} | {t['f1']:.3f} | {t['proof_accuracy']:.3f} ({b['proof_accuracy']:.3f}) | "
                   f"{r['train_seconds']} | {r['examples_per_second']} |")
    return "\n".join(out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "ablations"))
    ap.add_argument("--only", nargs="*")
    a = ap.parse_args()
    print(table(run(a.db, a.preset, a.out, a.epochs, a.only)))
