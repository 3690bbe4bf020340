"""The verifier: run every proof on a stack and check each step.

A proof is turned into a *program* (``refs``: the labels it may use, and
``codes``: which ref each step applies, ``Z`` saves and saved-step reuses) and
executed on a stack of expressions. Applying an assertion pops one entry per
mandatory hypothesis, reads the substitution off its ``$f`` entries, checks
its ``$e`` entries and ``$d`` pairs, and pushes the substituted conclusion.

Format problems of a proof (an unknown label, a label used before it is
defined, a malformed compressed proof) raise :class:`ProofFormatError`, an
:class:`MMError` located in the proof's text; a proof that is well formed
but wrong raises :class:`ProofError` with the theorem, the 1-based step and
the reason. :func:`verify_all` lists both kinds among the failed proofs and
goes on with the others, like ``metamath "verify proof *"``. ``record=True``
also returns the proof as a DAG of steps (:class:`metamath.proof.Proof`),
which is how every later stage gets proof trees with each step's expression.

``check`` is ``program`` (the proof text -> program) then ``run_program``
(the program -> checked steps); ``check_rpn`` runs a proof built in memory
(labels in reverse Polish order) through the same ``run_program``. ``$d``
conditions are checked in one function, :func:`dv_violations`, which the
unifier and later stages share.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import NamedTuple

from .compressed import ZERO, CompressedError, decode_numbers, split_compressed
from .database import Database, Statement
from .errors import ProofError, ProofFormatError
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
            raise _malformed(db, st, _letter_offset(src.text, st.proof, exc.index),
                             f"malformed compressed proof: {exc}") from None
        hyps = list(st.frame.hyps)
        hset = set(hyps)
        for l in labels:
            if l not in stmts:
                raise _malformed(db, st, src.token_offset(st.proof[0], st.proof[1], l),
                                 f"unknown label {l!r} in proof")
            if l in hset:
                raise _malformed(db, st, src.token_offset(st.proof[0], st.proof[1], l),
                                 f"mandatory hypothesis {l!r} must not be in the compressed label list")
        refs = hyps + labels
        n = len(refs)
        codes = [k - 1 if k > 0 else (-1 if k == ZERO else -2) for k in nums]
        return refs, codes
    refs, codes, bad = _normal_program(stmts, toks)
    if bad is not None:
        t = toks[bad]
        raise _malformed(db, st, src.token_offset(st.proof[0], st.proof[1], t), f"unknown label {t!r} in proof")
    return refs, codes


def _malformed(db: Database, st: Statement, offset: int, reason: str) -> ProofFormatError:
    """The error for a fault at ``offset`` in the text of ``st``'s proof."""
    src = db.files[st.file]
    line, col = src.position(offset)
    return ProofFormatError(st.label, reason, src.path, line, col)


def _letter_offset(text: str, span: tuple[int, int], index: int) -> int:
    """Source offset of letter ``index`` of a compressed proof (letters after ``)`` joined,
    comments skipped): where a malformed-proof error points. No ``)``: the proof's start."""
    first = last = None
    after = in_comment = False
    for m in re.finditer(r"\S+", text[span[0] : span[1]]):
        t, at = m.group(), span[0] + m.start()
        first = at if first is None else first
        if in_comment or t == "$(":
            in_comment = t != "$)"
        elif not after:
            after = t == ")"
        elif index < len(t):
            return at + index
        else:
            index -= len(t)
            last = at + len(t) - 1
    return last if last is not None else (first if first is not None else span[0])


def _normal_program(stmts: dict, toks: list[str]) -> tuple[list[str], list[int], int | None]:
    """A normal (uncompressed) proof as (refs, codes, index of the first unknown label or None)."""
    index: dict[str, int] = {}
    refs: list[str] = []
    codes: list[int] = []
    for i, t in enumerate(toks):
        if t == "?":
            codes.append(-2)
            continue
        k = index.get(t)
        if k is None:
            if t not in stmts:
                return refs, codes, i
            k = index[t] = len(refs)
            refs.append(t)
        codes.append(k)
    return refs, codes, None


class DVViolation(NamedTuple):
    """A broken ``$d x y`` of an applied assertion.

    ``a`` and ``b`` are variables of the expressions substituted for ``x``
    and ``y``: ``a == b`` means both substitutions contain it; otherwise the
    pair ``a b`` is not among the allowed ``$d`` pairs.
    """

    x: str
    y: str
    a: str
    b: str

    def reason(self, applied: str, theorem: str) -> str:
        if self.a == self.b:
            return f"{applied}: $d {self.x} {self.y} violated: both substitutions contain {self.a}"
        return f"{applied}: $d {self.x} {self.y} requires $d {self.a} {self.b}, which {theorem} does not have"


def dv_violations(dvs, subst: dict, allowed, variables) -> list[DVViolation]:
    """The ``$d`` check (the one place): every way ``subst`` breaks the pairs ``dvs``.

    ``dvs``: the applied assertion's mandatory pairs; ``subst``: variable ->
    tuple of symbols (pairs with an unbound variable are skipped);
    ``allowed``: the sorted ``$d`` pairs in force where it is applied (for a
    proof step, the theorem's ``frame.all_dvs``); ``variables``: the
    database's variables. An empty list means the substitution is fine.
    """
    out: list[DVViolation] = []
    for x, y in dvs:
        sx = subst.get(x)
        sy = subst.get(y)
        if sx is None or sy is None:
            continue
        vx = variables.intersection(sx)
        if not vx:
            continue
        vy = variables.intersection(sy)
        for a in vx:
            for b in vy:
                if a == b or ((a, b) if a < b else (b, a)) not in allowed:
                    out.append(DVViolation(x, y, a, b))
    return out


def check(db: Database, label: str, record: bool = False) -> Proof | None:
    """Verify one ``$p``; raise ProofError, or ProofFormatError for a malformed proof."""
    refs, codes = program(db, label)
    return run_program(db, label, refs, codes, record)


def check_rpn(db: Database, label: str, labels: list[str], record: bool = False) -> Proof | None:
    """Verify a normal proof given as labels in reverse Polish order (e.g.
    :meth:`metamath.proof.Proof.rpn`) as a proof of ``label``'s statement,
    in ``label``'s scope and with its ``$d`` conditions; ``?`` is an unknown
    step. Every problem (an unknown label, a hypothesis not active at
    ``label``, a later statement) is a ProofError with its 1-based step.
    """
    refs, codes, bad = _normal_program(db.statements, list(labels))
    if bad is not None:
        raise ProofError(label, bad + 1, f"unknown label {labels[bad]!r}")
    return run_program(db, label, refs, codes, record, located=False)


def run_program(db: Database, label: str, refs: list[str], codes: list[int],
                record: bool = False, located: bool = True) -> Proof | None:
    """Run a program (see :func:`program`) as a proof of ``label``'s statement.

    Hypotheses must be active at ``label``, assertions must come before it,
    and ``$d`` pairs are judged against ``label``'s ``$d`` statements. A ref
    that breaks the first two rules is a ProofFormatError located in
    ``label``'s text when ``located`` (the proof came from the file), else a
    ProofError (a proof built in memory).
    """
    st = db.statements[label]
    stmts = db.statements
    rules = _rules(db)
    nref = len(refs)
    # resolve refs once: hypothesis -> its expression, assertion -> its rule
    kinds: list = []
    for i, r in enumerate(refs):
        rs = stmts[r]
        if rs.kind in "fe":
            if not db.in_scope(rs, st):
                if not located:
                    raise ProofError(label, codes.index(i) + 1, f"hypothesis {r!r} is not active at {label}")
                raise _malformed(db, st, db.files[st.file].token_offset(st.start, st.end, r),
                                 f"hypothesis {r!r} is not active here")
            kinds.append(rs.expr)
        else:
            if rs.index >= st.index:
                what = "the theorem itself" if r == label else "a later statement"
                if not located:
                    raise ProofError(label, codes.index(i) + 1, f"proof uses {r!r}, {what}")
                raise _malformed(db, st, db.files[st.file].token_offset(st.start, st.end, r),
                                 f"proof uses {r!r}, {what}")
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
    for code in codes:
        step += code != -1  # steps are numbered like metamath.exe's: a 'Z' mark is not a step
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
                bad = dv_violations(k.dvs, subst, dvs_ok, variables)
                if bad:
                    raise ProofError(label, step, bad[0].reason(refs[code], label))
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
    """The outcome of verifying a database.

    ``failed``: one dict per failing proof, in label order: ``label``,
    ``step`` (1-based, numbered like metamath.exe's) and ``reason`` for a
    proof that is wrong (:class:`ProofError`); ``label``, ``step`` None,
    ``reason`` and ``where`` (``file:line:col``) for a proof that cannot be
    run (:class:`ProofFormatError`). :func:`failure_text` writes one as a line.
    """

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
    """None when the proof of ``label`` checks, else its entry in :attr:`Report.failed`."""
    try:
        check(db, label)
    except (ProofError, ProofFormatError) as exc:
        return exc.as_dict()
    return None


def failure_text(f: dict) -> str:
    """One line for an entry of :attr:`Report.failed`: ``label step N: reason``
    for a wrong proof, ``label at file:line:col: reason`` for a malformed one."""
    if f.get("step") is None:
        return f"{f['label']} at {f.get('where', '?')}: {f['reason']}"
    return f"{f['label']} step {f['step']}: {f['reason']}"


def verify_all(db: Database, labels: list[str] | None = None, jobs: int | None = None,
               progress: bool = False) -> Report:
    """Verify every ``$p`` (or the given ones), on all cores when it pays.

    Every proof is checked; the ones that fail are listed in
    :attr:`Report.failed` (see there), malformed ones included.
    """
    t0 = time.perf_counter()
    labels = db.theorems() if labels is None else labels
    results = map_theorems(db, _failure, labels, jobs=jobs, desc="verify" if progress else None)
    failed = [results[l] for l in labels if results[l] is not None]
    kinds = [s.kind for s in db.statements.values()]
    return Report(statements=len(kinds), axioms=kinds.count("a"), theorems=kinds.count("p"),
                  verified=len(labels) - len(failed), failed=failed, seconds=time.perf_counter() - t0)
