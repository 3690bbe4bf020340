"""Statement patterns against concrete expressions: substitutions and ``$d``.

Why: the prover (which assertion applies to this goal, with what
substitution), the extractor and the rewriter all ask the same question:
is this expression an instance of that statement, and under which
substitution of its variables?

Metamath expressions are flat symbol strings, so matching is ambiguous in
general: ``|- ( ph -> ps )`` against ``|- ( ( a -> b ) -> c )`` splits at
either ``->``. Only one split gives well-formed terms, so matching is
*typed*: a variable of type ``wff`` only takes a sequence that is itself a
``wff``. :class:`Terms` decides that by matching the syntax axioms (and
syntax theorems) recursively, memoised per ``(typecode, sequence)``; no
grammar has to be built. :func:`match` is the plain backtracking matcher
(every string-consistent substitution, optionally filtered by a type check);
it is anchored on constants, so the common case (few variables, each
followed by a constant) is a handful of slice comparisons.

When a proof is at hand, no string matching is needed: a step's
substitution is read off its ``$f`` children (:func:`proof_substitution`),
which is how the tests check the matcher, and syntax trees (the syntax
subproofs inside proofs) match node by node (:func:`match_syntax`). ``$d`` conditions are checked by the verifier's
own function (:func:`metamath.verify.dv_violations`) through
:func:`check_dv`.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from itertools import accumulate
from typing import Callable, Container, Iterable, Iterator

from .database import Database
from .proof import Proof
from .verify import DVViolation, dv_violations, template

__all__ = ["match", "first_match", "Terms", "terms", "assertion_matches", "match_assertion",
           "match_syntax", "proof_substitution", "apply", "instantiate", "check_dv", "DVViolation"]

Subst = dict[str, tuple[str, ...]]
_MAX_MEMO = 1_000_000  # memoised term checks kept before the memo is emptied
Accept = Callable[[str, tuple[str, ...]], bool]


# ------------------------------------------------------------------ flat matching
def match(pattern: tuple[str, ...], target: tuple[str, ...], variables, accept: Accept | None = None,
          subst: Subst | None = None, empty: Container[str] = frozenset(),
          level: list[int] | None = None) -> Iterator[Subst]:
    """Every substitution ``s`` (variable -> tuple of symbols) with
    ``s(pattern) == target``, extending ``subst`` (which is not modified).

    ``variables``: the pattern's variable symbols (e.g. ``db.variables``);
    every other pattern symbol must appear literally. A variable takes a
    non-empty sequence unless it is in ``empty``. ``accept(var, seq)``, when
    given, must hold for each new binding (e.g. :meth:`Terms.accepts` for
    well-typed terms). ``level`` (e.g. :meth:`Terms.levels` of ``target``)
    restricts new bindings to bracket-balanced slices: ``target[t:e]`` only
    when ``level[e] == level[t]`` and no ``level`` in between is lower.
    Results come with shorter bindings of the leftmost variables first; each
    is a fresh dict.
    """
    pieces = template(tuple(pattern), variables)
    target = tuple(target)
    base = dict(subst) if subst else {}
    need = _needs(pieces, base, empty)
    n = len(target)
    if need[0] > n:
        return
    if pieces and pieces[-1].__class__ is tuple and target[n - len(pieces[-1]):] != pieces[-1]:
        return
    yield from _walk(pieces, 0, target, 0, base, need, accept, empty, level)


def _needs(pieces: tuple, subst: Subst, empty: Container[str]) -> list[int]:
    """need[k]: the fewest target symbols that pieces[k:] can match."""
    need = [0] * (len(pieces) + 1)
    for k in range(len(pieces) - 1, -1, -1):
        p = pieces[k]
        if p.__class__ is tuple:
            size = len(p)
        else:
            bound = subst.get(p)
            size = len(bound) if bound is not None else 0 if p in empty else 1
        need[k] = need[k + 1] + size
    return need


def _walk(pieces, k, target, t, subst, need, accept, empty, level):
    n = len(target)
    while k < len(pieces):  # constants and bound variables: no choice to make
        p = pieces[k]
        if p.__class__ is not tuple:
            p = subst.get(p)
            if p is None:
                break
        e = t + len(p)
        if target[t:e] != p:
            return
        t = e
        k += 1
    else:
        if t == n:
            yield dict(subst)
        return
    var = pieces[k]
    first = t if var in empty else t + 1  # the shortest value's end
    if k + 1 == len(pieces):
        ends: Iterable[int] = (n,) if n >= first else ()
        if level is not None and ends and (level[n] != level[t] or min(level[t:]) < level[t]):
            return
    else:
        stop = n - need[k + 1]  # the longest value's end
        nxt = pieces[k + 1]
        head = nxt[0] if nxt.__class__ is tuple else None
        if level is None:
            if head is None:
                ends = range(first, stop + 1)
            else:
                ends = [e for e in range(first, stop + 1) if target[e] == head]
        else:
            ends = []
            base = level[t]
            for e in range(t, stop + 1):
                lv = level[e]
                if lv < base:
                    break  # a closing bracket of an enclosing pair: no longer value is balanced
                if lv == base and e >= first and (head is None or target[e] == head):
                    ends.append(e)
    for e in ends:
        seq = target[t:e]
        if accept is not None and not accept(var, seq):
            continue
        subst[var] = seq
        yield from _walk(pieces, k + 1, target, e, subst, need, accept, empty, level)
        del subst[var]


def first_match(pattern: tuple[str, ...], target: tuple[str, ...], variables,
                accept: Accept | None = None, subst: Subst | None = None,
                empty: Container[str] = frozenset()) -> Subst | None:
    """The first result of :func:`match`, or None."""
    return next(match(pattern, target, variables, accept, subst, empty), None)


def apply(expr: tuple[str, ...], subst: Subst, variables) -> tuple[str, ...]:
    """``expr`` with its variables replaced (variables not in ``subst`` stay)."""
    out: list[str] = []
    for s in expr:
        if s in variables and s in subst:
            out.extend(subst[s])
        else:
            out.append(s)
    return tuple(out)


# ------------------------------------------------------------------ well-typed terms
class Terms:
    """Which symbol sequences are terms of a syntax typecode.

    A sequence is a term of typecode ``tc`` when it is a variable whose
    ``$f`` has typecode ``tc``, or an instance of a ``tc`` syntax axiom (or
    syntax theorem) whose variables are bound to terms of their types; a
    rule with an empty body (miu.mm's ``we $a wff $.``) makes the empty
    sequence a term. Answers are memoised; :meth:`clear` empties the memo.
    """

    def __init__(self, db: Database):
        self.variables = db.variables
        self.var_typecodes = db.var_typecodes
        stmts = db.statements
        syntax = [st for st in stmts.values() if st.kind in "ap" and st.expr[0] in db.syntax_typecodes]
        #: typecodes that have the empty sequence as a term
        self.empty_types = frozenset(st.expr[0] for st in syntax if len(st.expr) == 1)
        # per typecode: rules keyed by their first symbol (a constant), and rules starting with a variable
        self._by_first: dict[str, dict[str, list]] = {}
        self._var_first: dict[str, list] = {}
        for st in syntax:
            body = st.expr[1:]
            if not body:
                continue
            types = {stmts[h].expr[1]: stmts[h].expr[0] for h in st.frame.hyps if stmts[h].kind == "f"}
            if len(body) == 1 and types.get(body[0]) == st.expr[0]:
                continue  # `tc x` with x of type tc: the variable case
            empty = frozenset(v for v, tc in types.items() if tc in self.empty_types)
            pieces = template(body, types)
            need = _needs(pieces, {}, empty)
            tail = body[-1] if body[-1] not in types else None
            rule = (pieces, need, self._acceptor(types), empty, tail)
            if body[0] in types:
                self._var_first.setdefault(st.expr[0], []).append(rule)
            else:
                self._by_first.setdefault(st.expr[0], {}).setdefault(body[0], []).append(rule)
        self._pairs = _bracket_pairs([st.expr[1:] for st in syntax], self.variables)
        # +1 / -1 weights of disjoint pairs (most common first): their running sum is a nesting level
        self._weight: dict[str, int] = defaultdict(int)
        for a, b in self._pairs:
            if a not in self._weight and b not in self._weight:
                self._weight[a] = 1
                self._weight[b] = -1
        self._memo: dict[tuple, bool] = {}
        self._active: set[tuple] = set()
        self._cycles = 0

    def clear(self) -> None:
        self._memo.clear()

    def is_term(self, typecode: str, seq: tuple[str, ...]) -> bool:
        """Whether ``seq`` (no typecode) is a term of ``typecode``."""
        n = len(seq)
        if n == 1 and seq[0] in self.variables and self.var_typecodes.get(seq[0]) == typecode:
            return True
        if n == 0:
            return typecode in self.empty_types
        if not self.balanced(seq):
            return False
        key = (typecode, seq)
        r = self._memo.get(key)
        if r is not None:
            return r
        if key in self._active:  # a rule cycle (only with empty terms): no derivation this way
            self._cycles += 1
            return False
        self._active.add(key)
        cycles = self._cycles
        found = False
        level = None
        first = self._by_first.get(typecode)
        rules = first.get(seq[0], []) if first else []
        var_first = self._var_first.get(typecode)
        if var_first:
            rules = rules + var_first
        try:
            for pieces, need, accept, empty, tail in rules:
                if need[0] > n or (tail is not None and seq[-1] != tail):
                    continue
                if level is None:
                    level = self.levels(seq)
                if next(_walk(pieces, 0, seq, 0, {}, need, accept, empty, level), None) is not None:
                    found = True
                    break
        finally:
            self._active.discard(key)
        if found or self._cycles == cycles:  # a False that met a cycle may be wrong later: not kept
            if len(self._memo) >= _MAX_MEMO:
                self._memo.clear()
            self._memo[key] = found
        return found

    def levels(self, seq: tuple[str, ...]) -> list[int]:
        """Running bracket nesting of ``seq`` (``len(seq) + 1`` entries), for
        ``match(..., level=)``: every term is a slice that returns to its
        starting level without going below it."""
        return list(accumulate(map(self._weight.__getitem__, seq), initial=0))

    def balanced(self, seq: tuple[str, ...]) -> bool:
        """Whether ``seq`` nests every bracket pair the syntax rules nest (a
        necessary condition for being a term, checked before parsing)."""
        for a, b in self._pairs:
            na = seq.count(a)
            if na != seq.count(b):
                return False
            if na:
                depth = 0
                for s in seq:
                    if s == a:
                        depth += 1
                    elif s == b:
                        depth -= 1
                        if depth < 0:
                            return False
        return True

    def _acceptor(self, types: dict[str, str]) -> Accept:
        is_term = self.is_term
        return lambda v, s: is_term(types[v], s)

    def accepts(self, var: str, seq: tuple[str, ...]) -> bool:
        """``accept`` for :func:`match`, typing each variable by ``db.var_typecodes``."""
        tc = self.var_typecodes.get(var)
        return tc is not None and self.is_term(tc, seq)


def _bracket_pairs(bodies: list[tuple[str, ...]], variables) -> list[tuple[str, str]]:
    """Constant pairs (open, close) that every syntax rule body nests properly.

    Two constants qualify when they occur equally often in every rule and,
    reading any rule left to right, ``close`` never gets ahead of ``open``.
    By induction over terms, every term then nests them too, so a sequence
    that does not is rejected without parsing.
    """
    occurs: dict[str, list] = defaultdict(list)
    for i, body in enumerate(bodies):
        for sym, k in Counter(x for x in body if x not in variables).items():
            occurs[sym].append((i, k))
    groups: dict[tuple, list[str]] = defaultdict(list)
    for sym, vec in occurs.items():
        groups[tuple(vec)].append(sym)
    pairs = []
    for vec, syms in groups.items():
        for a in syms:
            for b in syms:
                if a == b:
                    continue
                ok = True
                for i, _ in vec:
                    depth = 0
                    for x in bodies[i]:
                        if x == a:
                            depth += 1
                        elif x == b:
                            depth -= 1
                            if depth < 0:
                                ok = False
                                break
                    if not ok:
                        break
                if ok:
                    pairs.append((a, b))
    pairs.sort(key=lambda p: -len(occurs[p[0]]))  # the most common brackets first
    return pairs


def terms(db: Database) -> Terms:
    """The :class:`Terms` of a database, built once and kept on it."""
    t = db.__dict__.get("_terms")
    if t is None:
        t = db.__dict__["_terms"] = Terms(db)
    return t


# ------------------------------------------------------------------ assertions
def assertion_matches(db: Database, label: str, conclusion: tuple[str, ...] | None,
                      hyps: list[tuple[str, ...] | None] | None = None,
                      typed: bool = True) -> Iterator[Subst]:
    """Every substitution that makes assertion ``label`` prove ``conclusion``
    from ``hyps`` (its ``$e`` hypotheses' expressions in order; None for one
    not given).

    The substitution binds every variable that occurs in the conclusion or a
    given hypothesis (all mandatory variables when everything is given).
    ``typed=True`` binds a variable only to a well-formed term of its
    ``$f`` type (empty only where the grammar has an empty term);
    ``typed=False`` is the raw string match with non-empty values.
    """
    st = db.statements[label]
    if not st.is_assertion:
        raise ValueError(f"{label} is a ${st.kind} hypothesis, not an assertion")
    stmts = db.statements
    fhyps = [stmts[h] for h in st.frame.hyps if stmts[h].kind == "f"]
    ehyps = [stmts[h] for h in st.frame.hyps if stmts[h].kind == "e"]
    types = {h.expr[1]: h.expr[0] for h in fhyps}
    pairs: list[tuple[tuple, tuple]] = []
    if conclusion is not None:
        pairs.append((st.expr, tuple(conclusion)))
    if hyps is not None:
        if len(hyps) != len(ehyps):
            raise ValueError(f"{label} has {len(ehyps)} essential hypotheses, {len(hyps)} given")
        pairs += [(h.expr, tuple(e)) for h, e in zip(ehyps, hyps) if e is not None]
    accept = None
    empty: frozenset = frozenset()
    if typed:
        t = terms(db)
        accept = lambda v, s: t.is_term(types[v], s)  # noqa: E731
        empty = frozenset(v for v, tc in types.items() if tc in t.empty_types)
    # most constrained first: fewest distinct variables, then the longest pattern
    pairs.sort(key=lambda pt: (len(set(pt[0]).intersection(types)), -len(pt[0])))
    levels = [t.levels(target) if typed else None for _, target in pairs]
    yield from _chain(pairs, levels, 0, types, accept, empty, {})


def _chain(pairs, levels, i, variables, accept, empty, subst):
    if i == len(pairs):
        yield subst
        return
    pattern, target = pairs[i]
    for s in match(pattern, target, variables, accept, subst, empty, levels[i]):
        yield from _chain(pairs, levels, i + 1, variables, accept, empty, s)


def match_assertion(db: Database, label: str, conclusion: tuple[str, ...] | None,
                    hyps: list[tuple[str, ...] | None] | None = None, typed: bool = True) -> Subst | None:
    """The first substitution of :func:`assertion_matches`, or None."""
    return next(assertion_matches(db, label, conclusion, hyps, typed), None)


def proof_substitution(db: Database, proof: Proof, node: int) -> Subst:
    """The substitution a proof step used, read off its ``$f`` children."""
    n = proof.nodes[node]
    st = db.statements[n.label]
    if not st.is_assertion:
        return {}
    stmts = db.statements
    return {stmts[h].expr[1]: proof.nodes[c].expr[1:]
            for h, c in zip(st.frame.hyps, n.children) if stmts[h].kind == "f"}


def match_syntax(db: Database, pattern: list, p: int, target: list, t: int) -> Subst | None:
    """Match two syntax trees node by node; no parsing, no ambiguity.

    ``pattern``/``target`` are node lists (``Proof.nodes`` or
    ``ProofTree.nodes``: anything with ``label``, ``expr`` and ``children``)
    and ``p``/``t`` the roots. A ``$f`` leaf of the pattern is a variable: it
    matches any target subtree of its typecode, the same one each time it
    occurs. Other nodes must apply the same label. Returns variable ->
    symbols (typecode dropped) or None. Trees are compared as built: a
    syntax theorem (``weq``) does not match the axioms it abbreviates.
    """
    stmts = db.statements
    subst: Subst = {}
    stack = [(p, t)]
    while stack:
        i, j = stack.pop()
        a, b = pattern[i], target[j]
        if not a.children and stmts[a.label].kind == "f":
            if a.expr[0] != b.expr[0]:
                return None
            var, val = a.expr[1], b.expr[1:]
            old = subst.setdefault(var, val)
            if old != val:
                return None
            continue
        if a.label != b.label or len(a.children) != len(b.children):
            return None
        stack.extend(zip(a.children, b.children))
    return subst


def check_dv(db: Database, subst: Subst, dvs: Iterable[tuple[str, str]],
             allowed: Iterable[tuple[str, str]]) -> list[DVViolation]:
    """``$d`` violations of ``subst`` (the verifier's check, shared).

    ``dvs``: the applied assertion's pairs (``db[label].frame.dvs``);
    ``allowed``: the pairs in force where it is applied, e.g. the theorem's
    ``db[thm].frame.all_dvs`` (pairs in either order). Pairs with an unbound
    variable are not checked.
    """
    if not isinstance(allowed, frozenset):
        allowed = frozenset((a, b) if a < b else (b, a) for a, b in allowed)
    return dv_violations(tuple(dvs), subst, allowed, db.variables)


def instantiate(db: Database, label: str, subst: Subst) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """(conclusion, essential hypotheses) of ``label`` under ``subst`` (unbound variables stay)."""
    st = db.statements[label]
    v = db.variables
    ess = [apply(db.statements[h].expr, subst, v) for h in st.frame.hyps if db.statements[h].kind == "e"]
    return apply(st.expr, subst, v), ess
