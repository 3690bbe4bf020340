"""Does the grammar agree with the proofs? Checks for tests and benchmarks.

A database's proofs build every syntax tree they need themselves (syntax
subproofs); :mod:`metamath.grammar` parses the same expressions from a
grammar made of the syntax axioms. These checks compare the two, step by
step (:func:`compare_with_proof`) or statement by statement
(:func:`compare_statement`), and count the agreements (:class:`Agreement`).

They judge the library rather than serve it, so they live beside their
users: ``benchmarks/bench_grammar.py`` (same directory) and
``tests/metamath/test_grammar.py`` (which puts this directory on
``sys.path``).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run from anywhere: the repository's packages first
    sys.path.insert(0, ROOT)

from metamath.grammar import (ExprParseError, Grammar, SyntaxTree, instantiate,  # noqa: E402
                              proof_syntax_trees)
from metamath.proof import Proof  # noqa: E402
from metamath.verify import check  # noqa: E402

__all__ = ["Agreement", "compare_with_proof", "compare_statement"]


@dataclass
class Agreement:
    """How a proof's own syntax trees compare with the grammar's parses.

    ``syntax``: distinct syntax-typed step expressions compared with the
    tree the proof builds for them. ``statements``: distinct ``$e``/``$a``/
    ``$p`` applications and hypotheses compared (the parse of the step's
    expression against the applied statement's parse with the proof's own
    argument trees substituted). ``mismatches``: one line per disagreement
    or parse failure.
    """

    syntax: int = 0
    statements: int = 0
    mismatches: list[str] = field(default_factory=list)

    def add(self, other: "Agreement") -> None:
        self.syntax += other.syntax
        self.statements += other.statements
        self.mismatches.extend(other.mismatches)


def compare_with_proof(grammar: Grammar, label: str) -> Agreement:
    """Check the grammar against every step of the proof of ``label``.

    Syntax steps: ``parse(expr)`` must equal the tree the proof's syntax
    subproof builds. Logical steps (``|-``) applying an assertion A with
    argument trees σ (the proof's own syntax subtrees for A's ``$f``
    hypotheses): ``parse(expr)`` must equal ``parse(A)`` with σ substituted,
    and each ``$e`` argument's parse must equal A's ``$e`` parsed and
    substituted. The theorem's own statement is the root step, so it is
    checked too.
    """
    db = grammar.db
    stmts = db.statements
    st = stmts[label]
    proof = check(db, label, record=True)
    trees = proof_syntax_trees(db, proof)
    res = Agreement()
    seen: set = set()

    def compare(expr, want: SyntaxTree, what: str) -> None:
        try:
            got = grammar.parse(expr, at=st)
        except ExprParseError as exc:
            res.mismatches.append(f"{label}: {what}: {exc.message}")
            return
        if got != want:
            res.mismatches.append(f"{label}: {what}: '{' '.join(expr)}' parses as {got}, proof builds {want}")

    for i, n in enumerate(proof.nodes):
        if i in trees:
            if n.expr not in seen:
                seen.add(n.expr)
                res.syntax += 1
                compare(n.expr, trees[i], f"syntax step {n.label}")
            continue
        a = stmts[n.label]
        if a.kind not in "ap":
            continue
        subst = {h: trees[c] for h, c in zip(a.frame.hyps, n.children) if c in trees}
        pairs = [(n.expr, n.label)] + [(proof.nodes[c].expr, h) for h, c in zip(a.frame.hyps, n.children)
                                       if c not in trees]
        for expr, ref in pairs:
            key = (expr, ref)
            if key in seen:
                continue
            seen.add(key)
            res.statements += 1
            try:
                want = instantiate(grammar.parse_statement(ref), subst)
            except ExprParseError as exc:
                res.mismatches.append(f"{label}: statement {ref}: {exc.message}")
                continue
            compare(expr, want, f"step {n.label} ({ref})")
    return res


def compare_statement(grammar: Grammar, label: str) -> Agreement:
    """Check one statement's parse against a tree built from proofs.

    * syntax ``$a``: the tree must be the axiom applied to its ``$f`` leaves;
    * ``$p``: its proof's last step applies some A to argument trees σ (the
      proof's own syntax subproofs); the parse must equal A's parse with σ
      substituted (for a syntax ``$p``, the proof's own tree);
    * ``$e``: the first proof in its scope that hands it to an assertion A
      as A's hypothesis h gives h's parse with that step's σ substituted.

    A logical ``$a`` (or an ``$e`` no proof uses) has no proof-built tree:
    nothing is compared (``statements`` stays 0) but it must still parse.
    """
    db = grammar.db
    stmts = db.statements
    st = stmts[label]
    res = Agreement()
    try:
        got = grammar.parse_statement(label)
    except ExprParseError as exc:
        res.mismatches.append(f"{label}: {exc.message}")
        return res
    want = None
    syntax = st.expr[0] in grammar.typecodes
    if st.kind == "a" and syntax:
        want = SyntaxTree(label, tuple(SyntaxTree(h) for h in st.frame.hyps))
    elif st.kind == "p":
        proof = check(db, label, record=True)
        want = _step_tree(grammar, proof, proof.root, None)
    elif st.kind == "e":
        order = db.__dict__.get("_statement_list")
        if order is None or len(order) != len(stmts):
            order = db.__dict__["_statement_list"] = list(stmts.values())
        for other in order[st.index + 1:st.index + 2001]:
            if other.depth < st.depth:
                break  # the hypothesis' scope is closed
            if other.kind != "p" or label not in other.frame.hyps:
                continue
            proof = check(db, other.label, record=True)
            for i, n in enumerate(proof.nodes):
                a = stmts[n.label]
                if a.kind not in "ap":
                    continue
                h = next((h for h, c in zip(a.frame.hyps, n.children) if proof.nodes[c].label == label), None)
                if h is not None:
                    want = _step_tree(grammar, proof, i, h)
                    break
            if want is not None:
                break
    if want is not None:
        res.syntax += syntax
        res.statements += not syntax
        if got != want:
            res.mismatches.append(f"{label}: parses as {got}, proofs build {want}")
    return res


def _step_tree(grammar: Grammar, proof: Proof, i: int, hyp: str | None) -> SyntaxTree | None:
    """The tree of step ``i`` (or of its argument for hypothesis ``hyp``) from the proof's own syntax trees.

    None when step ``i`` is a hypothesis (a proof that only restates its ``$e``).
    """
    trees = proof_syntax_trees(grammar.db, proof)
    if hyp is None and i in trees:
        return trees[i]
    n = proof.nodes[i]
    a = grammar.db.statements[n.label]
    if a.kind not in "ap":
        return None
    subst = {h: trees[c] for h, c in zip(a.frame.hyps, n.children) if c in trees}
    return instantiate(grammar.parse_statement(hyp or n.label), subst)
