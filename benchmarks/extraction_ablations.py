"""Extract K theorems with each method and each variant of the GNN path,
rewrite the library with each set (both verifiers), and print a markdown
table of what the rewritten library gains.

    python benchmarks/extraction_ablations.py data/set-prop.mm \
        --checkpoint runs/demo/model/checkpoint.pt \
        [--essential-checkpoint runs/ess/checkpoint.pt] --out runs/extraction-ablations

Why: the extractor is judged by what the rewritten library gains, not by
node accuracy; each row is one ordinary ``mmrefactor extract`` followed by
``mmrefactor rewrite`` (the table prints both commands' options), so a row
can be reproduced alone. Finished rows are reused (their two JSON files).
The ``threshold 0`` row is the control without a model: every node is
positive, so the GNN path proposes every part of every proof.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from refactor.extract import run_extract  # noqa: E402
from refactor.rewrite import rewrite_file  # noqa: E402

# (row name, extract options); "ck": which checkpoint ("full" or "essential")
ROWS = [
    ("frequent", {"method": "frequent"}),
    ("frequent, essential-node ranking", {"method": "frequent", "ranking": "essential"}),
    ("stitch", {"method": "stitch"}),
    ("stitch, essential-node ranking", {"method": "stitch", "ranking": "essential"}),
    ("gnn: fragments, essential-node ranking (before)",
     {"method": "gnn", "fragments": "components", "ranking": "essential"}),
    ("gnn: fragments, proof-node ranking", {"method": "gnn", "fragments": "components"}),
    ("gnn: sub-shapes, essential-node ranking", {"method": "gnn", "ranking": "essential"}),
    ("gnn: sub-shapes, proof-node ranking (default)", {"method": "gnn"}),
    ("gnn: sub-shapes, confidence ranking", {"method": "gnn", "ranking": "confidence"}),
    ("gnn: fragments, confidence ranking", {"method": "gnn", "fragments": "components", "ranking": "confidence"}),
    ("gnn: sub-shapes, decoded regions", {"method": "gnn", "decode": True}),
    ("gnn: fragments, decoded regions", {"method": "gnn", "fragments": "components", "decode": True}),
    ("gnn: sub-shapes, threshold 0.3", {"method": "gnn", "threshold": 0.3}),
    ("gnn: sub-shapes, threshold 0.1", {"method": "gnn", "threshold": 0.1}),
    ("gnn essential trees: fragments, proof-node ranking",
     {"method": "gnn", "fragments": "components", "ck": "essential"}),
    ("gnn essential trees: sub-shapes, proof-node ranking", {"method": "gnn", "ck": "essential"}),
    ("control, no model (threshold 0: every node positive)", {"method": "gnn", "threshold": 0.0}),
]


def _tag(opts: dict) -> str:
    return "-".join(f"{k}{v}" for k, v in sorted(opts.items())).replace(" ", "")


def _options_text(opts: dict, ck: str | None) -> str:
    out = [f"--method {opts['method']}"]
    if ck:
        out.append(f"--checkpoint {ck}")
    out += [f"--{k}" if v is True else f"--{k} {v}" for k, v in opts.items() if k not in ("method", "ck")]
    return " ".join(out)


def run(db: str, out: str, top: int, checkpoints: dict[str, str | None], only: list[str] | None) -> list[dict]:
    os.makedirs(out, exist_ok=True)
    rows = []
    for name, opts in ROWS:
        if only and name not in only:
            continue
        opts = dict(opts)
        ck = checkpoints.get(opts.pop("ck", "full")) if opts["method"] == "gnn" else None
        if opts["method"] == "gnn" and not ck:
            continue
        tag = _tag({**opts, "ck": os.path.basename(os.path.dirname(ck)) if ck else ""})
        tj, mm, rj = (os.path.join(out, f"{tag}.{ext}") for ext in ("json", "mm", "rewrite.json"))
        if not os.path.exists(rj):
            print(f"$ mmrefactor extract {db} {_options_text(opts, ck)} --top {top} --out {tj}", file=sys.stderr)
            t0 = time.perf_counter()
            ex = run_extract(db, tj, checkpoint=ck, top=top, **opts)
            secs = time.perf_counter() - t0
            print(f"$ mmrefactor rewrite {db} --theorems {tj} -o {mm}", file=sys.stderr, flush=True)
            rw = rewrite_file(db, tj, mm).as_dict()
            rw["extract_wall_seconds"] = round(secs, 1)
            with open(rj, "w") as fh:
                json.dump(rw, fh)
        with open(tj) as fh:
            ex = json.load(fh)
        with open(rj) as fh:
            rw = json.load(fh)
        rows.append({"name": name, "options": _options_text(opts, ck), "extract": ex, "rewrite": rw})
    return rows


def table(rows: list[dict]) -> str:
    out = ["| extractor (K = 10) | candidates | new | uses | proofs touched | proof nodes saved "
           "| essential nodes saved | verified by | extract s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        e, w = r["extract"], r["rewrite"]
        out.append(f"| {r['name']} | {e['candidates']} | {e['new']} | {w['total_usage']} | {w['proofs_rewritten']} | "
                   f"{w['proof_nodes_before'] - w['proof_nodes_after']} | "
                   f"{w['essential_nodes_before'] - w['essential_nodes_after']} | {' + '.join(w['verified_by'])} | "
                   f"{w.get('extract_wall_seconds', e['seconds'])} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db")
    ap.add_argument("--checkpoint", help="the GNN trained on full trees (e.g. runs/demo/model/checkpoint.pt)")
    ap.add_argument("--essential-checkpoint", help="the GNN trained on essential-step trees (--essential-only)")
    ap.add_argument("--out", default="runs/extraction-ablations")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--only", nargs="*", help="row names to run")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)  # one thread is fastest for these small graphs on a shared machine
    rows = run(a.db, a.out, a.top, {"full": a.checkpoint, "essential": a.essential_checkpoint}, a.only)
    print(table(rows))
    for r in rows:
        print(f"- {r['name']}: `{r['options']}`")


if __name__ == "__main__":
    main()
