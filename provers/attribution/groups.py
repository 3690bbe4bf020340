"""Queries and training groups.

A *query* is a held-out theorem the prover proved in an evaluation
(``EVAL/results.jsonl``): its found proof (RPN labels) is replayed by our
verifier and cut into steps exactly as training proofs are
(:func:`provers.data.steps_of_proof`), without value targets. Its
*measurement* is the log-probability the networks give to that proof: per
step the relevance log-softmax of the applied assertion among all matching
assertions (uncapped, as the search scores them) plus, per free slot whose
pool holds the used term, the term log-softmax over the pool. (The search
built its pools with the facts it had proven so far; the replay uses the
theorem's hypotheses only, as training does, so a few used terms may be
missing from the replayed pool and are then left out.)

A *group* is an extracted theorem: a logical ``$p`` of the corpus the split
does not name (inserted by a refactoring; :func:`extracted_theorems`). Its
members are the training steps that exist because of it: the steps that
apply it and the steps of its own proof (:func:`theorem_groups`).
"""
from __future__ import annotations

import json
import os
import random

from metamath import MMError
from metamath.verify import check_rpn

from ..data import Step, steps_of_proof
from ..library import Library
from ..split import Split


def extracted_theorems(lib: Library, split: Split) -> list[str]:
    """Logical ``$p`` of the corpus not named by the split, in database order (``evaluate``'s ``new``)."""
    named = set(split.train) | set(split.valid) | set(split.test)
    return [l for l in lib.assertions if lib.db.statements[l].kind == "p" and l not in named]


def theorem_groups(steps: list[Step], theorems: list[str]) -> dict[str, list[int]]:
    """Theorem -> indices of ``steps`` that apply it or belong to its proof (each once)."""
    want = set(theorems)
    out: dict[str, list[int]] = {t: [] for t in theorems}
    for i, st in enumerate(steps):
        for t in {st.assertion, st.theorem} & want:
            out[t].append(i)
    return out


def query_steps(lib: Library, label: str, proof: list[str]) -> list[Step]:
    """The steps of a found proof of ``label`` (RPN labels), as training would see them, no value targets."""
    dag = check_rpn(lib.db, label, proof, record=True)
    steps = steps_of_proof(lib, label, dag, random.Random(0), negatives=0)
    return [Step(s.theorem, s.goal, s.assertion, s.applicable, s.slots, [], []) for s in steps]


def read_queries(eval_dir: str) -> list[dict]:
    """The proved records of ``EVAL/results.jsonl`` (MMError when the file is missing)."""
    path = os.path.join(eval_dir, "results.jsonl")
    if not os.path.exists(path):
        raise MMError("no results.jsonl: not a prover evaluation directory", eval_dir)
    out = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec.get("proved") and rec.get("proof"):
                out.append(rec)
    return out


def direct_uses(queries: list[dict], theorems: list[str]) -> dict[str, list[str]]:
    """Theorem -> the queries whose found proof applies it."""
    out: dict[str, list[str]] = {t: [] for t in theorems}
    for q in queries:
        for t in set(q["proof"]) & set(out):
            out[t].append(q["label"])
    return out
