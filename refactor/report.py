"""The report a person reads: ``OUT/report.md`` from a pipeline result."""
from __future__ import annotations

import os

from metamath.write import write_atomic


def comparison_table(methods: list[dict]) -> str:
    """One row per extraction method: the figures the issue asks to compare."""
    head = ("| method | new theorems | uses | uses/theorem | proofs touched | proof nodes saved | "
            "essential nodes saved | compressed bytes saved | verified by |")
    lines = [head, "| --- " * 9 + "|"]
    for r in methods:
        rw = r.get("rewrite") or {}
        if "error" in r or "error" in rw:
            lines.append(f"| {r['method']} | failed: {r.get('error') or rw.get('error')} |" + " |" * 7)
            continue
        n = rw["new_theorems"]
        lines.append(
            f"| {r['method']} | {n} | {rw['total_usage']} | {rw['average_usage']} | {rw['proofs_rewritten']} | "
            f"{rw['proof_nodes_before'] - rw['proof_nodes_after']:,} | "
            f"{rw['essential_nodes_before'] - rw['essential_nodes_after']:,} | "
            f"{rw['compressed_bytes_before'] - rw['compressed_bytes_after']:,} | {', '.join(rw['verified_by'])} |")
    return "\n".join(lines)


def render(result: dict) -> str:
    d, t = result["dataset"], result["train"]
    te, base = t["test"], t["baseline_all_negative"]["test"]
    ext_rows = ["| method | candidates | valid | rediscoveries | new |", "| --- | --- | --- | --- | --- |"]
    for r in result["methods"]:
        e = r.get("extract")
        if e:
            ext_rows.append(f"| {r['method']} | {e['candidates']} | {e['valid']} | {e['rediscoveries']} | {e['new']} |")
    return "\n".join([
        f"# mmrefactor run on `{result['database']}`",
        "",
        f"seed {result['seed']}, preset `{result['preset']}`, K = {result['top']} theorems per method, "
        f"{result['seconds']} s in all.",
        "",
        "## Data and model",
        f"- {result['verify']['verified']} of {result['verify']['theorems']} proofs verified.",
        f"- Expansion dataset: {d['examples']:,} examples from {d['inlined_theorems']:,} inlined theorems, "
        f"{d['nodes']:,} nodes, {100 * d['positive_fraction']:.1f}% positive; split by inlined theorem "
        f"{d['splits']['train']}/{d['splits']['valid']}/{d['splits']['test']}.",
        f"- Test (inlined theorems never seen in training): node accuracy {te['node_accuracy']:.3f} "
        f"(all-negative {base['node_accuracy']:.3f}), precision {te['precision']:.3f}, recall {te['recall']:.3f}, "
        f"F1 {te['f1']:.3f}, proof accuracy {te['proof_accuracy']:.3f} (all-negative {base['proof_accuracy']:.3f}).",
        "",
        "## Extraction",
        *ext_rows,
        "",
        "## Refactoring the library (same K for every method)",
        comparison_table(result["methods"]),
        "",
    ])


def write_report(result: dict, out: str) -> str:
    path = os.path.join(out, "report.md")
    write_atomic(path, render(result).encode("utf-8"))
    return path
