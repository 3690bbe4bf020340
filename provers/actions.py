"""A theorem to prove and the steps that may be taken towards one of its goals.

A :class:`Problem` is a theorem seen from inside: its goal, its ``$e``
hypotheses (proven from the start), the ``$d`` pairs its proof may rely on,
and the statement index before which every usable assertion lies.

An :class:`Action` applies one assertion to one goal: the matching fixes
the variables of the assertion's conclusion; the others (``ax-mp``'s
antecedent) are filled from a pool of candidate terms (:func:`term_pool`):
bindings that make one of the assertion's hypotheses equal a known fact,
type-correct subterms of the goal, the theorem and the goals above, and one
connective applied to those. Every action is checked against ``$d``.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from metamath.unify import check_dv

from .library import Assertion, Library
from .terms import Term, match, size, subterms, substitute

MAX_CONNECTIVE_TERMS = 64  # terms built by one connective over retrieved subterms, per typecode


@dataclass(frozen=True)
class Problem:
    """A theorem to prove: ``goal``, ``hyps`` (term -> ``$e`` label), the
    statement ``index`` (only assertions before it may be used) and the
    ``$d`` pairs (``allowed``) in force in its scope."""

    label: str
    index: int
    goal: Term
    hyps: dict
    allowed: frozenset
    #: the theorem's statement and hypotheses: where retrieved terms come from
    context: tuple[Term, ...]


def problem(lib: Library, label: str) -> Problem:
    st = lib.db.statements[label]
    stmts = lib.db.statements
    hyps = {lib.term(stmts[h].expr, st): h for h in st.frame.hyps if stmts[h].kind == "e"}
    goal = lib.term(st.expr, st)
    return Problem(label, st.index, goal, hyps, st.frame.all_dvs, (goal, *hyps))


@dataclass(frozen=True, slots=True)
class Action:
    """``assertion`` applied under ``subst`` (every mandatory variable bound),
    leaving ``subgoals`` (its ``$e`` hypotheses, instantiated, in order).
    ``filled``: the free variables and the pool terms chosen for them."""

    assertion: Assertion
    subst: dict
    subgoals: tuple[Term, ...]
    filled: tuple[tuple[str, Term], ...] = ()


def dv_ok(lib: Library, a: Assertion, subst: dict, allowed: frozenset) -> bool:
    """Whether ``subst`` respects ``a``'s ``$d`` pairs given the theorem's ``allowed`` pairs."""
    if not a.dvs:
        return True
    sym = lib.var_symbol
    floats = lib.floats
    by_symbol = {sym[v]: tuple(sym[x[0]] for x in subterms(t) if len(x) == 1 and x[0] in floats)
                 for v, t in subst.items()}
    return not check_dv(lib.db, by_symbol, a.dvs, allowed)


def complete(lib: Library, a: Assertion, subst: dict, allowed: frozenset,
             filled: tuple[tuple[str, Term], ...] = ()) -> Action | None:
    """The action of ``a`` under a full ``subst``, or None when ``$d`` forbids it."""
    if not dv_ok(lib, a, subst, allowed):
        return None
    return Action(a, subst, tuple(substitute(h, subst) for h in a.hyps), filled)


@dataclass
class Pool:
    """Candidate terms for the free variables of one assertion at one goal.

    ``bindings``: joint assignments of free variables that make one of the
    assertion's hypotheses equal a known fact (the strongest source).
    ``terms``: per free variable, candidates in a fixed order (bindings
    first, then retrieved subterms by size, then one-connective terms).
    """

    bindings: list[dict]
    terms: dict[str, list[Term]]


def retrieved(lib: Library, sources) -> dict[str, list[Term]]:
    """Distinct subterms of ``sources`` by typecode, smallest first."""
    seen: dict[Term, None] = {}
    for s in sources:
        for t in subterms(s):
            seen.setdefault(t, None)
    out: dict[str, list[Term]] = {}
    for t in sorted(seen, key=lambda t: (size(t), t)):
        out.setdefault(lib.typecode(t[0]), []).append(t)
    return out


def connective_terms(lib: Library, base: dict[str, list[Term]], before: int,
                     cap: int = MAX_CONNECTIVE_TERMS) -> dict[str, list[Term]]:
    """One syntax connective (defined before ``before``) over the ``base`` terms, at most ``cap`` per typecode."""
    out: dict[str, list[Term]] = {}
    for tc, rules in lib.syntax_constructors.items():
        made: list[Term] = []
        for label, args, index in rules:
            if index >= before:
                continue
            pools = [base.get(a, [])[:12] for a in args]
            for combo in product(*pools):
                made.append((label, *combo))
        made.sort(key=lambda t: (size(t), t))
        if made:
            out[tc] = made[:cap]
    return out


def term_pool(lib: Library, prob: Problem, a: Assertion, subst: dict, facts,
              sources: dict[str, list[Term]], combos: dict[str, list[Term]]) -> Pool:
    """The pool for ``a``'s free variables under the conclusion's ``subst``.

    ``facts``: terms known proven (the theorem's hypotheses, goals proven
    so far); ``sources`` and ``combos``: :func:`retrieved` and
    :func:`connective_terms` of the current context.
    """
    free = a.free
    bindings: list[dict] = []
    for h in a.hyps:
        for f in facts:
            s = match(h, f, a.variables, lib.typecode, subst)
            if s is not None:
                b = {v: s[v] for v in free if v in s}
                if b and b not in bindings:
                    bindings.append(b)
    terms: dict[str, list[Term]] = {}
    for v in free:
        tc = a.variables[v]
        seen: dict[Term, None] = {}
        for b in bindings:
            if v in b:
                seen.setdefault(b[v], None)
        for t in sources.get(tc, ()):
            seen.setdefault(t, None)
        for t in combos.get(tc, ()):
            seen.setdefault(t, None)
        terms[v] = list(seen)
    return Pool(bindings, terms)


def assignments(a: Assertion, pool: Pool, choices: dict[str, list[Term]], limit: int) -> list[dict]:
    """Joint assignments of ``a``'s free variables, at most ``limit``: each of
    ``pool.bindings`` (completed by the best ``choices``), then the product of
    ``choices`` (per free variable, best first)."""
    out: list[dict] = []
    seen: set = set()

    def add(assign: dict) -> bool:
        key = tuple(assign[v] for v in a.free)
        if key not in seen:
            seen.add(key)
            out.append(assign)
        return len(out) >= limit

    for b in pool.bindings:
        rest = [v for v in a.free if v not in b]
        for combo in product(*[choices[v][:2] for v in rest]):
            if add({**b, **dict(zip(rest, combo))}):
                return out
    for combo in product(*[choices[v] for v in a.free]):
        if add(dict(zip(a.free, combo))):
            break
    return out
