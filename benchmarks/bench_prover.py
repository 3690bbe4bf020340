"""Prover throughput: expansions per second on one core, each policy in the loop.

    python benchmarks/bench_prover.py --checkpoint runs/prover-prop/models/original-s0/checkpoint.pt

Runs the same searches (the first ``--theorems`` test theorems of the
checkpoint's split, ``--budget`` expansions each, one thread) with the
uniform and count baselines and the learned policy, best of ``--repeat``,
and prints expansions/s per policy and the learned/uniform ratio. The
anchor: Holophrasm's 10,000 passes in 5 minutes are ~33 passes/s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from provers.actions import problem  # noqa: E402
from provers.evaluate import EvalConfig, _state  # noqa: E402
from provers.search import Search  # noqa: E402
from provers.train import load_checkpoint  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--theorems", type=int, default=20)
    ap.add_argument("--budget", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ck = load_checkpoint(a.checkpoint)
    rows = {}
    for policy in ("uniform", "count", None):
        cfg = EvalConfig(max_expansions=a.budget, max_seconds=1e9, baseline=policy)
        _, split, state = _state(ck, cfg)
        labels = list(split.test)[: a.theorems]
        best = None
        for _ in range(a.repeat):
            t0, cpu0, exp, proved = time.perf_counter(), time.process_time(), 0, 0
            for l in labels:
                r = Search(state.lib, problem(state.lib, l), state.policy, state.search).run()
                exp += r.expansions
                proved += r.proved
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            if best is None or cpu < best["cpu_s"]:
                best = {"expansions": exp, "proved": proved, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                        "expansions_per_cpu_s": round(exp / cpu, 1)}
        rows[state.policy.name] = best
        print(f"{state.policy.name:8} {best['expansions']:6} expansions  {best['cpu_s']:7.2f} s CPU  "
              f"{best['expansions_per_cpu_s']:7.1f} expansions/s  ({best['proved']}/{len(labels)} proved)", flush=True)
    ratio = rows["learned"]["expansions_per_cpu_s"] / rows["uniform"]["expansions_per_cpu_s"]
    print(f"learned / uniform throughput: {ratio:.2f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"rows": rows, "learned_over_uniform": ratio, "budget": a.budget,
                       "theorems": a.theorems}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
