"""The verifier: run every proof on a stack and check each step.

A proof is turned into a *program* (``refs``: the labels it may use, and
``codes``: which ref each step applies, ``Z`` saves and saved-step reuses) and
executed on a stack of expressions. Applying an assertion pops one entry per
mandatory hypothesis, reads the substitution off its ``$f`` entries, checks
its ``$e`` entries and ``$d`` pairs, and pushes the substituted conclusion.

Format problems (an unknown label, a label used before it is defined, a
malformed compressed proof) are input errors: :class:`MMError` with a
location. A proof that is well formed but wrong raises :class:`ProofError`
with the theorem, the 1-based step and the reason. ``record=True`` also
returns the proof as a DAG of steps (:class:`metamath.proof.Proof`), which is
how every later stage gets proof trees with each step's expression.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .compressed import UNKNOWN, ZERO, CompressedError, decode_numbers, split_compressed
from .database import Database, Statement
from .errors import MMError, ProofError
from .parallel import map_theorems
from .proof import Proof, ProofNode


def template(expr: tuple[str, ...], variables) -> tuple:
    """An expression as pieces: tuples of constants and variable names (str)."""
    pieces: list = []
    run: list[str] = []
    for s in expr:
        if s in variables:
            if run:
                pieces.append(tuple(run))
                run = []
            pieces.append(s)
        else:
            run.append(s)
    if run:
        pieces.append(tuple(run))
    return tuple(pieces)


def substitute(pieces: tuple, subst: dict) -> tuple[str, ...]:
    """Instantiate a template; ``subst`` maps variable -> tuple of symbols."""
    out: tuple = ()
    for p in pieces:
        out += p if p.__class__ is tuple else subst[p]
    return out


@dataclass(slots=True)
class _Rule:
    """An assertion compiled for fast application."""

    nhyps: int
    hyps: tuple  # per hypothesis: (typecode, var) for $f, (None, template) for $e
    concl: tuple
    dvs: tuple


def _compile(db: Database, st: Statement) -> _Rule:
    stmts = db.statements
    hyps = []
    for h in st.frame.hyps:
        hs = stmts[h]
        if hs.kind == "f":
            hyps.append((hs.expr[0], hs.expr[1]))
        else:
            hyps.append((None, template(hs.expr, db.variables)))
    return _Rule(len(hyps), tuple(hyps), template(st.expr, db.variables), tuple(st.frame.dvs))


def _rules(db: Database) -> dict:
    cache = db.__dict__.get("_rules")
    if cache is None:
        cache = db.__dict__["_rules"] = {}
    return cache


def program(db: Database, label: str) -> tuple[list[str], list[int]]:
    """A proof as (refs, codes).

    code in [0, len(refs)): apply refs[code]; code >= len(refs): reuse saved
    step code - len(refs); -1: save the top (``Z``); -2: unknown step (``?``).
    """
    st = db.statements[label]
    toks = db.proof_tokens(label)
    src = db.files[st.file]
    stmts = db.statements
    if toks[0] == "(":
        try:
            labels, letters = split_compressed(toks)
            nums = decode_numbers(letters)
        except CompressedError as exc:
            raise db.error_at(st, f"{label}: malformed compressed proof: {exc}", ")") from None
        hyps = list(st.frame.hyps)
        hset = set(hyps)
        for l in labels:
            if l not in stmts:
                raise src.error(src.token_offset(st.proof[0], st.proof[1], l),
                                f"{label}: unknown label {l!r} in proof")
            if l in hset:
                raise src.error(src.token_offset(st.proof[0], st.proof[1], l),
                                f"{label}: mandatory hypothesis {l!r} must not be in the compressed label list")
        refs = hyps + labels
        n = len(refs)
        codes = [k - 1 if k > 0 else (-1 if k == ZERO else -2) for k in nums]
        return refs, codes
    index: dict[str, int] = {}
    refs = []
    codes = []
    for t in toks:
        if t == "?":
            codes.append(-2)
            continue
        k = index.get(t)
        if k is None:
            if t not in stmts:
                raise src.error(src.token_offset(st.proof[0], st.proof[1], t),
                                f"{label}: unknown label {t!r} in proof")
            k = index[t] = len(refs)
            refs.append(t)
        codes.append(k)
    return refs, codes


def check(db: Database, label: str, record: bool = False) -> Proof | None:
    """Verify one ``$p``; raise ProofError (or MMError for malformed input)."""
    st = db.statements[label]
    refs, codes = program(db, label)
    stmts = db.statements
    rules = _rules(db)
    nref = len(refs)
    # resolve refs once: hypothesis -> its expression, assertion -> its rule
    kinds: list = []
    for r in refs:
        rs = stmts[r]
        if rs.kind in "fe":
            if not db.in_scope(rs, st):
                raise db.error_at(st, f"{label}: hypothesis {r!r} is not active here", r)
            kinds.append(rs.expr)
        else:
            if rs.index >= st.index:
                what = "the theorem itself" if r == label else "a later statement"
                raise db.error_at(st, f"{label}: proof uses {r!r}, {what}", r)
            rule = rules.get(r)
            if rule is None:
                rule = rules[r] = _compile(db, rs)
            kinds.append(rule)
    variables = db.variables
    stack: list = []
    saved: list = []
    nodes: list[ProofNode] = []
    ids: list[int] = []
    saved_ids: list[int] = []
    dvs_ok = None
    step = 0
    for step, code in enumerate(codes, 1):
        if 0 <= code < nref:
            k = kinds[code]
            if k.__class__ is tuple:
                stack.append(k)
                if record:
                    ids.append(len(nodes))
                    nodes.append(ProofNode(refs[code], k, ()))
                continue
            n = k.nhyps
            if len(stack) < n:
                raise ProofError(label, step, f"{refs[code]} needs {n} hypotheses, stack has {len(stack)}")
            args = stack[len(stack) - n :] if n else []
            subst: dict = {}
            for (tc, v), a in zip(k.hyps, args):
                if tc is not None:
                    if a[0] != tc:
                        raise ProofError(label, step, f"{refs[code]}: hypothesis for {v} has typecode "
                                                      f"{a[0]!r}, expected {tc!r}")
                    subst[v] = a[1:]
            for (tc, tmpl), a in zip(k.hyps, args):
                if tc is None:
                    want = substitute(tmpl, subst)
                    if want != a:
                        raise ProofError(label, step, f"{refs[code]}: essential hypothesis mismatch: "
                                                      f"expected '{' '.join(want)}', stack has '{' '.join(a)}'")
            if k.dvs:
                if dvs_ok is None:
                    dvs_ok = st.frame.all_dvs
                for x, y in k.dvs:
                    vx = variables.intersection(subst[x])
                    vy = variables.intersection(subst[y])
                    for a in vx:
                        for b in vy:
                            if a == b:
                                raise ProofError(label, step, f"{refs[code]}: $d {x} {y} violated: both "
                                                              f"substitutions contain {a}")
                            if ((a, b) if a < b else (b, a)) not in dvs_ok:
                                raise ProofError(label, step, f"{refs[code]}: $d {x} {y} requires $d {a} {b}, "
                                                              f"which {label} does not have")
            if n:
                del stack[len(stack) - n :]
            stack.append(substitute(k.concl, subst))
            if record:
                kids = tuple(ids[len(ids) - n :]) if n else ()
                if n:
                    del ids[len(ids) - n :]
                ids.append(len(nodes))
                nodes.append(ProofNode(refs[code], stack[-1], kids))
        elif code == -1:
            if not stack:
                raise ProofError(label, step, "'Z' with an empty stack")
            saved.append(stack[-1])
            if record:
                saved_ids.append(ids[-1])
        elif code == -2:
            raise ProofError(label, step, "incomplete proof: unknown step '?'")
        else:
            j = code - nref
            if j >= len(saved):
                raise ProofError(label, step, f"reference to saved step {j + 1}, only {len(saved)} saved")
            stack.append(saved[j])
            if record:
                ids.append(saved_ids[j])
    if len(stack) != 1:
        raise ProofError(label, step, f"proof leaves {len(stack)} entries on the stack, expected 1")
    if stack[0] != st.expr:
        raise ProofError(label, step, f"proof proves '{' '.join(stack[0])}', "
                                      f"statement is '{' '.join(st.expr)}'")
    if record:
        return Proof(label, nodes, ids[0])
    return None


@dataclass
class Report:
    """The outcome of verifying a database."""

    statements: int
    axioms: int
    theorems: int
    verified: int
    failed: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"statements": self.statements, "axioms": self.axioms, "theorems": self.theorems,
                "verified": self.verified, "failed": self.failed, "seconds": round(self.seconds, 3)}


def _failure(db: Database, label: str) -> dict | None:
    try:
        check(db, label)
    except ProofError as exc:
        return exc.as_dict()
    return None


def verify_all(db: Database, labels: list[str] | None = None, jobs: int | None = None,
               progress: bool = False) -> Report:
    """Verify every ``$p`` (or the given ones), on all cores when it pays."""
    t0 = time.perf_counter()
    labels = db.theorems() if labels is None else labels
    results = map_theorems(db, _failure, labels, jobs=jobs, desc="verify" if progress else None)
    failed = [results[l] for l in labels if results[l] is not None]
    kinds = [s.kind for s in db.statements.values()]
    return Report(statements=len(kinds), axioms=kinds.count("a"), theorems=kinds.count("p"),
                  verified=len(labels) - len(failed), failed=failed, seconds=time.perf_counter() - t0)
