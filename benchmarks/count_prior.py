"""How the usage-count prior prices the human proofs of held-out theorems, against uniform scores.

    python benchmarks/count_prior.py DB --split SPLIT.json [--sample N] [--evals COUNT_EVAL UNIFORM_EVAL] [--json]

The ``count`` baseline (``provers/baselines.py``) weights each assertion
matching a goal by its uses in the training proofs plus one; ``uniform``
weights them alike. Both run the same best-first search, where an action's
cost is its ``-log p``. For each step of each held-out theorem's human
proof this prints what the human's assertion costs under each prior, and
how many of those assertions no training proof uses: an assertion proved
late in the database is seldom used by the (earlier) training proofs, so
the count prior prices it near ``log`` of the total count, far above the
uniform ``log`` of the number of candidates. A test theorem whose proof
needs such an assertion is out of reach of the count prior at a tight
budget even when its proof is one step.

With ``--evals`` (two ``prover eval`` output folders, count then uniform,
on this database and split) it also prints, for the theorems one baseline
proves and the other does not, the fewest training uses among the
assertions each found proof applies.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from statistics import mean, median

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from provers.data import build_steps, training_theorems  # noqa: E402
from provers.evaluate import EvalConfig, theorems_of, usage_counts  # noqa: E402
from provers.split import load_split  # noqa: E402
from provers.train import load_corpus  # noqa: E402


def corpus_counts(db_path: str, split_path: str) -> tuple:
    """``(library, split, uses of each assertion in the training proofs)``: read and verified once."""
    db, lib = load_corpus(db_path)
    split = load_split(split_path, db)
    return lib, split, usage_counts(lib, training_theorems(lib, split))


def price(db_path: str, split_path: str, sample: int | None, part: str = "test", ctx: tuple | None = None) -> dict:
    """Per-step costs of the human assertion under the count and uniform priors, summarised.
    ``ctx``: :func:`corpus_counts` of the same database and split, when the caller has it."""
    lib, split, counts = ctx or corpus_counts(db_path, split_path)
    labels = theorems_of(split.part(part), EvalConfig(sample=sample))
    steps = build_steps(lib, labels, seed=0)
    rows = []
    for s in steps:
        w = {a: counts.get(a, 0) + 1 for a in s.applicable}
        count_cost = math.log(sum(w.values())) - math.log(w[s.assertion])
        uniform_cost = math.log(len(s.applicable))
        rows.append((s.theorem, counts.get(s.assertion, 0) == 0, count_cost, uniform_cost))
    per_thm: dict[str, list] = {}
    for t, unused, c, u in rows:
        per_thm.setdefault(t, []).append((unused, c, u))
    return {
        "database": db_path, "part": part, "theorems": len(labels), "theorems_with_steps": len(per_thm),
        "steps": len(rows),
        "steps_unused_in_training": sum(r[1] for r in rows),
        "theorems_needing_an_unused_assertion": sum(any(x[0] for x in v) for v in per_thm.values()),
        "mean_count_cost": mean(r[2] for r in rows), "mean_uniform_cost": mean(r[3] for r in rows),
        "median_count_cost": median(r[2] for r in rows), "median_uniform_cost": median(r[3] for r in rows),
        "mean_cost_unused_count": mean([r[2] for r in rows if r[1]] or [0.0]),
        "mean_cost_unused_uniform": mean([r[3] for r in rows if r[1]] or [0.0]),
        "steps_count_dearer": sum(r[2] > r[3] for r in rows),
    }


def exclusive_uses(db_path: str, split_path: str, count_eval: str, uniform_eval: str,
                   ctx: tuple | None = None) -> dict:
    """For theorems only one baseline proves (and those both prove): per found proof, the fewest
    training uses of an assertion it applies, sorted."""
    from provers.compare import load_eval

    _, _, counts = ctx or corpus_counts(db_path, split_path)
    c, u = load_eval(count_eval)[1], load_eval(uniform_eval)[1]

    def fewest(rec: dict) -> int:
        return min([counts.get(x, 0) for x in rec["applied"]] or [0])

    return {
        "uniform_only": sorted(fewest(u[k]) for k in u if u[k]["proved"] and not c.get(k, {}).get("proved")),
        "count_only": sorted(fewest(c[k]) for k in c if c[k]["proved"] and not u.get(k, {}).get("proved")),
        "both": sorted(fewest(u[k]) for k in u if u[k]["proved"] and c.get(k, {}).get("proved")),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db")
    ap.add_argument("--split", required=True)
    ap.add_argument("--sample", type=int, help="a seeded random N of the part, as `prover eval --sample`")
    ap.add_argument("--part", default="test", choices=["train", "valid", "test"])
    ap.add_argument("--evals", nargs=2, metavar=("COUNT_EVAL", "UNIFORM_EVAL"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    ctx = corpus_counts(a.db, a.split)
    r = price(a.db, a.split, a.sample, a.part, ctx)
    if a.evals:
        r["fewest_training_uses"] = exclusive_uses(a.db, a.split, *a.evals, ctx=ctx)
    if a.json:
        print(json.dumps(r, indent=1))
        return 0
    n, k = r["steps"], r["steps_unused_in_training"]
    print(f"{r['database']}: {r['theorems']} {r['part']} theorems, {n} human proof steps")
    print(f"  steps whose assertion no training proof uses: {k} ({k / n:.1%}); "
          f"theorems needing one: {r['theorems_needing_an_unused_assertion']} of {r['theorems_with_steps']}")
    print(f"  cost of the human assertion, nats (mean / median): count {r['mean_count_cost']:.2f} / "
          f"{r['median_count_cost']:.2f}, uniform {r['mean_uniform_cost']:.2f} / {r['median_uniform_cost']:.2f}")
    print(f"  on the unused assertions: count {r['mean_cost_unused_count']:.2f}, "
          f"uniform {r['mean_cost_unused_uniform']:.2f}")
    print(f"  steps the count prior prices dearer than uniform: {r['steps_count_dearer']} "
          f"({r['steps_count_dearer'] / n:.1%})")
    for k, v in r.get("fewest_training_uses", {}).items():
        print(f"  proved by {k.replace('_', ' ')}: {len(v)}; fewest training uses of an applied assertion: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
