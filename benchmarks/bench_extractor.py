"""Throughput of the GNN extractor: training examples per second and
inference proofs per second (CPU, one torch thread unless told otherwise).

    python benchmarks/bench_extractor.py [DB] [--preset demo] [--epochs 2] [--essential-only]
        [--loss bce|focal|structured] [--max-examples N] [--limit N] [--threads 1] [--out runs/bench-extractor]

Training: ``refactor.train.train`` for a few epochs on the expansion dataset
of DB (built or reused under OUT/dataset*), examples/s over the epochs'
wall time (validation excluded). Inference: ``gnn_fragments`` (tree
building, featurising, the model, fragments) over the first ``--limit``
proofs of DB, proofs/s over its wall time (with ``--loss structured``, decoded:
such a model's prediction). Wall times on a shared machine;
CPU seconds are printed beside them.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", nargs="?", default=os.path.join(ROOT, "data", "set-prop.mm"))
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--essential-only", action="store_true")
    ap.add_argument("--loss", default="bce", help="bce | focal | structured (the tree CRF, decoded at inference)")
    ap.add_argument("--max-examples", type=int, default=None, help="a seeded sample of the dataset (big databases)")
    ap.add_argument("--limit", type=int, default=None, help="inference: only the first N proofs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/bench-extractor")
    a = ap.parse_args()
    import torch

    from metamath import Database
    from refactor.dataset import build_dataset
    from refactor.expansion import ExpansionOptions
    from refactor.extract import ExtractOptions, gnn_fragments
    from refactor.model import resolve
    from refactor.train import train

    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    db = Database.from_file(a.db)
    data_dir = os.path.join(a.out, "dataset-essential" if a.essential_only else "dataset")
    build_dataset(db, data_dir, ExpansionOptions(essential_only=a.essential_only, max_examples=a.max_examples))
    mcfg, tcfg = resolve(a.preset, epochs=a.epochs, loss=a.loss)
    run_dir = os.path.join(a.out, f"{a.preset}{'-essential' if a.essential_only else ''}"
                                  f"{'' if a.loss == 'bce' else '-' + a.loss}")
    c0 = time.process_time()
    res = train(data_dir, run_dir, mcfg, tcfg, device="cpu", log=lambda *x: None)
    train_cpu = time.process_time() - c0
    opts = ExtractOptions(checkpoint=os.path.join(run_dir, "checkpoint.pt"), limit=a.limit, device="cpu",
                          decode=a.loss == "structured")
    t0, c0 = time.perf_counter(), time.process_time()
    frags, info = gnn_fragments(db, opts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {"database": a.db, "preset": a.preset, "essential_only": a.essential_only, "loss": a.loss,
           "threads": a.threads,
           "train": {"examples": res["train_examples"], "epochs": a.epochs, "seconds": res["train_seconds"],
                     "examples_per_second": res["examples_per_second"], "cpu_seconds_incl_validation":
                     round(train_cpu, 1)},
           "inference": {"proofs": info["trees"], "nodes": info["nodes"], "seconds": round(wall, 2),
                         "cpu_seconds": round(cpu, 2), "proofs_per_second": round(info["trees"] / wall, 1),
                         "model_seconds": info["inference_seconds"], "fragments": len(frags)}}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(run_dir, "bench.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    t, i = out["train"], out["inference"]
    print(f"{os.path.basename(a.db)}, preset {a.preset}{', essential-step trees' if a.essential_only else ''}, "
          f"loss {a.loss}, "
          f"{a.threads} thread(s): training {t['examples_per_second']} examples/s ({t['examples']} examples x "
          f"{a.epochs} epochs in {t['seconds']} s); inference {i['proofs_per_second']} proofs/s "
          f"({i['proofs']} proofs, {i['nodes']:,} nodes in {i['seconds']} s wall, {i['cpu_seconds']} s CPU)")


if __name__ == "__main__":
    main()
