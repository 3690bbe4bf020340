"""Paired comparison of evaluations on the same held-out theorems.

Rates alone hide which theorems moved: two provers at 60% may prove
different theorems. For each evaluation after the first (the reference),
at each budget: the rate, and the theorems it proves that the reference
does not (newly proved) and the reverse (lost).
"""
from __future__ import annotations

import json
import os

from metamath import MMError

from .evaluate import BUDGETS, read_results


def load_eval(path: str) -> tuple[dict, dict[str, dict]]:
    """``(summary, results by label)`` of an evaluation directory."""
    sp = os.path.join(path, "summary.json")
    if not os.path.exists(sp):
        raise MMError("not a finished evaluation (no summary.json)", path)
    with open(sp) as fh:
        summary = json.load(fh)
    return summary, read_results(os.path.join(path, "results.jsonl"))


def compare(paths: list[str]) -> dict:
    if not paths:
        raise MMError("give at least one evaluation directory", "<options>")
    evals = [(p, *load_eval(p)) for p in paths]
    ref_path, _, ref = evals[0]
    labels = sorted(ref)
    for p, _, res in evals[1:]:
        if sorted(res) != labels:
            raise MMError(f"evaluates other theorems than {ref_path}; only the same split and part pair", p)
    rows = []
    for p, summary, res in evals:
        row = {"eval": p, "policy": summary.get("policy"), "corpus": summary.get("corpus"),
               "seed": summary.get("seed"), "attempted": len(labels), "budgets": {},
               "seconds": round(sum(r["seconds"] for r in res.values()), 2),
               "uses_new_share": summary.get("uses_new_share", 0.0),
               "mean_proof_length": summary.get("mean_proof_length", 0.0),
               "expansions_per_second": summary.get("expansions_per_second", 0.0),
               "forecast": summary.get("forecast")}
        for b in BUDGETS:
            mine = {l for l, r in res.items() if r["proved"] and r["expansions"] <= b}
            theirs = {l for l, r in ref.items() if r["proved"] and r["expansions"] <= b}
            row["budgets"][str(b)] = {"proved": len(mine), "rate": len(mine) / len(labels) if labels else 0.0,
                                      "newly_proved": sorted(mine - theirs), "lost": sorted(theirs - mine)}
        rows.append(row)
    return {"reference": ref_path, "rows": rows}


def format_table(cmp: dict) -> str:
    lines = ["| eval | policy | " + " | ".join(f"@{b} (new/lost)" for b in BUDGETS) + " | seconds |",
             "| --- | --- | " + " | ".join("---" for _ in BUDGETS) + " | --- |"]
    for row in cmp["rows"]:
        cells = []
        for b in BUDGETS:
            c = row["budgets"][str(b)]
            cells.append(f"{c['proved']}/{row['attempted']} ({len(c['newly_proved'])}/{len(c['lost'])})")
        lines.append(f"| {row['eval']} | {row['policy']} | " + " | ".join(cells) + f" | {row['seconds']} |")
    return "\n".join(lines)
