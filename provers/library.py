"""A corpus as the prover sees it: assertions as term patterns, indexed for goals.

Every logical assertion (``$a``/``$p`` whose typecode is not a syntax
typecode, ``|-`` in set.mm) becomes an :class:`Assertion`: its conclusion
and ``$e`` hypotheses as terms, its mandatory variables, which of them the
conclusion leaves free, and its ``$d`` pairs. Assertions are indexed by the
head label of their conclusion, so a goal only meets plausible candidates;
the database order is kept, because a theorem may only use what comes
before it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from metamath import Database
from metamath.grammar import Grammar

from .terms import Term, from_tree, leaves, match

DISCOURAGED_MARK = "(New usage is discouraged.)"
ALWAYS_BANNED = frozenset({"idi", "dummylink"})


@dataclass(frozen=True, slots=True)
class Assertion:
    """One logical assertion of the corpus.

    ``order``: the mandatory hypotheses in frame order, ``("f", $f label)``
    or ``("e", index into hyps)``: the order a proof pushes them.
    ``variables``: mandatory ``$f`` label -> typecode. ``free``: the
    mandatory variables the conclusion does not fix (frame order); a use of
    the assertion must find terms for them. ``dvs``: ``$d`` pairs of
    variable symbols.
    """

    label: str
    index: int
    conclusion: Term
    hyps: tuple[Term, ...]
    order: tuple[tuple[str, object], ...]
    variables: dict[str, str]
    free: tuple[str, ...]
    dvs: frozenset
    discouraged: bool


class Library:
    """The assertions of ``db`` with what matching and proof building need."""

    def __init__(self, db: Database, grammar: Grammar | None = None):
        self.db = db
        self.grammar = grammar or Grammar.from_database(db)
        stmts = db.statements
        self.floats = frozenset(l for l, st in stmts.items() if st.kind == "f")
        #: $f label -> the variable symbol it types
        self.var_symbol = {l: stmts[l].expr[1] for l in self.floats}
        syntax = set(db.syntax_typecodes)
        self._typecode = {l: st.expr[0] for l, st in stmts.items()
                          if st.kind == "f" or (st.kind in "ap" and st.expr[0] in syntax)}
        self._parsed: dict[tuple, Term] = {}
        self.assertions: dict[str, Assertion] = {}
        self.by_head: dict[str, list[Assertion]] = {}
        self.wild: list[Assertion] = []  # conclusion is a bare variable (ax-mp's `|- ps`)
        for label, st in stmts.items():
            if st.kind not in "ap" or st.expr[0] in syntax:
                continue
            a = self._assertion(st)
            self.assertions[label] = a
            if len(a.conclusion) == 1 and a.conclusion[0] in a.variables:
                self.wild.append(a)
            else:
                self.by_head.setdefault(a.conclusion[0], []).append(a)

    def typecode(self, label: str) -> str:
        """The typecode of a term whose root applies ``label`` (a syntax axiom or ``$f``)."""
        return self._typecode[label]

    def term(self, expr: tuple[str, ...], at=None) -> Term:
        """The term of an expression (typecode first; ``|-`` parses as its body)."""
        key = (expr, None if at is None else at.label)
        t = self._parsed.get(key)
        if t is None:
            t = self._parsed[key] = from_tree(self.grammar.parse(expr, at=at))
        return t

    def statement_term(self, label: str) -> Term:
        st = self.db.statements[label]
        return self.term(st.expr, st)

    def _assertion(self, st) -> Assertion:
        stmts = self.db.statements
        concl = self.statement_term(st.label)
        order: list[tuple[str, object]] = []
        hyps: list[Term] = []
        variables: dict[str, str] = {}
        for h in st.frame.hyps:
            hs = stmts[h]
            if hs.kind == "f":
                order.append(("f", h))
                variables[h] = hs.expr[0]
            else:
                order.append(("e", len(hyps)))
                hyps.append(self.term(hs.expr, st))
        fixed = leaves(concl, self.floats)
        free = tuple(v for v in variables if v not in fixed)
        comment = self.db.comment_of(st.label)
        discouraged = st.label in ALWAYS_BANNED or DISCOURAGED_MARK in " ".join(comment.split())
        return Assertion(st.label, st.index, concl, tuple(hyps), tuple(order), variables, free,
                         frozenset(st.frame.dvs), discouraged)

    def candidates(self, goal: Term, before: int) -> list[Assertion]:
        """Assertions that may apply to ``goal`` and come before statement index ``before``,
        discouraged ones left out (a coarse filter: :meth:`matches` decides)."""
        out = [a for a in self.by_head.get(goal[0], ()) if a.index < before and not a.discouraged]
        out += [a for a in self.wild if a.index < before and not a.discouraged]
        return out

    def matches(self, goal: Term, before: int) -> list[tuple[Assertion, dict[str, Term]]]:
        """``(assertion, substitution of the conclusion's variables)`` for every
        assertion before ``before`` whose conclusion is an instance of ``goal``'s pattern."""
        out = []
        for a in self.candidates(goal, before):
            s = match(a.conclusion, goal, a.variables, self.typecode)
            if s is not None:
                out.append((a, s))
        return out

    @cached_property
    def syntax_constructors(self) -> dict[str, list[tuple[str, tuple[str, ...], int]]]:
        """Typecode -> ``(syntax axiom label, argument typecodes, statement index)``
        for every syntax axiom with one or two arguments (the connectives
        the term pool combines subterms with)."""
        stmts = self.db.statements
        out: dict[str, list] = {}
        for r in self.grammar.rules:
            st = stmts[r.label]
            args = tuple(stmts[h].expr[0] for h in st.frame.hyps)
            if 1 <= len(args) <= 2:
                out.setdefault(r.typecode, []).append((r.label, args, st.index))
        return out
