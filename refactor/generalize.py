"""Proof fragments -> the most general theorem they prove, with its ``$d`` and proof.

Why: every extractor (the GNN, frequent subtrees, Stitch) ends with the same
object, a *shape*: a connected top part of an essential proof tree, each
node applying an assertion, its leaves either such steps or *holes* (the
cut points, which become ``$e`` hypotheses). What theorem does a shape
prove? Not the instance it happened to be cut from, but the most general
one: each step applies its assertion with fresh metavariables, each edge of
the shape says "the child's conclusion is the parent's hypothesis", and
first-order unification on syntax trees (:mod:`metamath.grammar`) gives the
most general unifier. Under it the holes' trees are the hypotheses, the
root's tree is the conclusion, and what is left of the metavariables
becomes distinct variables of their types. Every concrete occurrence of the
shape in any proof is then an instance of the theorem.

The ``$d`` pairs the theorem needs are read off its own proof with the
verifier's function (:func:`metamath.verify.dv_violations`, nothing
allowed: every reported pair is a pair the theorem must carry). When no
general theorem exists (a ``$d`` that the unifier's identification of two
terms breaks, no variable left, a statement the grammar cannot parse), the
fragment's own expressions give the concrete instance instead
(:func:`concrete`).

A shape is a nested tuple: ``(label, (child, ...))`` for a step, the
children being the shapes of its ``$e`` hypotheses in order, and ``None``
(:data:`HOLE`) for a hole. :func:`canonical` is the form used to compare
theorems up to variable renaming and hypothesis order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import permutations

from metamath.database import Database
from metamath.grammar import ExprParseError, Grammar, SyntaxTree, instantiate
from metamath.proof import ProofTree, postorder
from metamath.verify import dv_violations

from .theorems import outer_floats

Shape = tuple | None
HOLE: Shape = None

__all__ = ["Shape", "HOLE", "Theorem", "GeneralizeError", "generalize", "concrete", "canonical",
           "shape_steps", "shape_holes", "shape_str"]


class GeneralizeError(ValueError):
    """No most general theorem (or no theorem at all) for a shape."""


# ------------------------------------------------------------------ shapes
def shape_steps(s: Shape) -> int:
    """Number of steps (assertion applications) of a shape."""
    if s is None:
        return 0
    return 1 + sum(shape_steps(c) for c in s[1])


def shape_holes(s: Shape) -> int:
    """Number of holes (hypotheses before merging equal ones) of a shape."""
    if s is None:
        return 1
    return sum(shape_holes(c) for c in s[1])


def shape_str(s: Shape) -> str:
    """``syl(a1i(?), ?)``-style text of a shape (``?`` is a hole)."""
    if s is None:
        return "?"
    if not s[1]:
        return s[0]
    return f"{s[0]}({', '.join(shape_str(c) for c in s[1])})"


# ------------------------------------------------------------------ theorems
@dataclass
class Theorem:
    """A theorem a shape proves.

    ``statement``/``hypotheses``: expressions, typecode first (hypotheses
    distinct, in the order the proof first uses them). ``proof``: a normal
    proof in RPN, database labels and ints (an int ``i`` is hypothesis
    ``i``; :meth:`rpn` names them). ``variables``: those of the statement
    and hypotheses, in order of first occurrence; ``dummies``: the others
    the proof uses. ``dv``: sorted ``$d`` pairs its proof needs.
    ``general``: the most general theorem (False: the concrete instance).
    """

    statement: tuple[str, ...]
    hypotheses: list[tuple[str, ...]]
    proof: list
    variables: list[str]
    dummies: list[str]
    dv: list[tuple[str, str]]
    shape: Shape
    general: bool = True
    steps: int = 0
    notes: list[str] = field(default_factory=list)

    def rpn(self, hyp_labels: list[str]) -> list[str]:
        """The proof with hypothesis ``i`` named ``hyp_labels[i]``."""
        return [hyp_labels[p] if p.__class__ is int else p for p in self.proof]

    def is_trivial(self) -> bool:
        """Its conclusion is one of its hypotheses, or it is one step (an existing assertion)."""
        return self.statement in self.hypotheses or self.steps <= 1


def _variable_pool(db: Database, before: int | None = None) -> dict[str, list[tuple[str, str]]]:
    """typecode -> [(variable, $f label)] of the outermost-scope ``$f`` (those
    declared before statement index ``before`` when given), in file order."""
    pool: dict[str, list[tuple[str, str]]] = {}
    for tc, v, f, i in outer_floats(db):
        pool.setdefault(tc, []).extend([(v, f)] if before is None or i < before else [])
    return pool


def _is_mv(t: SyntaxTree) -> bool:
    return t.label[0] == "?"


class _Unifier:
    """First-order unification of syntax trees; metavariables are leaves labelled ``?n``."""

    def __init__(self, grammar: Grammar):
        self.g = grammar
        self.types: dict[str, str] = {}
        self.s: dict[str, SyntaxTree] = {}

    def fresh(self, typecode: str) -> SyntaxTree:
        name = f"?{len(self.types)}"
        self.types[name] = typecode
        return SyntaxTree(name)

    def typecode(self, t: SyntaxTree) -> str:
        return self.types[t.label] if _is_mv(t) else self.g.typecode_of(t)

    def walk(self, t: SyntaxTree) -> SyntaxTree:
        s = self.s
        while not t.children and t.label in s:
            t = s[t.label]
        return t

    def occurs(self, name: str, t: SyntaxTree) -> bool:
        todo = [t]
        while todo:
            x = self.walk(todo.pop())
            if x.label == name and not x.children:
                return True
            todo.extend(x.children)
        return False

    def unify(self, a: SyntaxTree, b: SyntaxTree) -> bool:
        stack = [(a, b)]
        while stack:
            x, y = stack.pop()
            x, y = self.walk(x), self.walk(y)
            if x is y:
                continue
            if _is_mv(x) or _is_mv(y):
                if not _is_mv(x):
                    x, y = y, x
                if _is_mv(y) and x.label == y.label:
                    continue
                if self.typecode(y) != self.types[x.label] or self.occurs(x.label, y):
                    return False
                self.s[x.label] = y
                continue
            if x.label != y.label or len(x.children) != len(y.children):
                return False
            stack.extend(zip(x.children, y.children))
        return True

    def resolve(self, t: SyntaxTree, memo: dict) -> SyntaxTree:
        r = memo.get(id(t))
        if r is not None:
            return r
        w = self.walk(t)
        if w.children:
            kids = tuple(self.resolve(c, memo) for c in w.children)
            r = w if all(k is c for k, c in zip(kids, w.children)) else SyntaxTree(w.label, kids)
        else:
            r = w
        memo[id(t)] = r
        return r


def _parsed(g: Grammar, label: str) -> SyntaxTree:
    cache = g.__dict__.setdefault("_mmr_parsed", {})
    t = cache.get(label)
    if t is None:
        t = cache[label] = g.parse_statement(label)
    return t


@dataclass
class _Step:
    label: str
    inst: dict            # $f label of the assertion -> tree (metavariables before resolution)
    children: list        # per $e hypothesis: ("hole", k) or ("step", _Step)


def generalize(db: Database, shape: Shape, grammar: Grammar | None = None, before: int | None = None) -> Theorem:
    """The most general theorem proved by ``shape`` (see the module docstring).

    Variables are taken in file order among those with an outermost-scope
    ``$f``; with ``before`` (a statement index, e.g. the first proof that
    could use the theorem) only among those declared before it, so the
    theorem can be placed there.

    Raises :class:`GeneralizeError` when the shape is not a step, does not
    fit its assertions (a child's conclusion can never be the parent's
    hypothesis), the grammar cannot parse a statement, no variable of some
    type is left, or a ``$d`` of a step cannot hold in general.
    """
    if shape is None:
        raise GeneralizeError("a hole is not a theorem")
    g = grammar or Grammar.from_database(db)
    stmts = db.statements
    u = _Unifier(g)
    holes: list[tuple[SyntaxTree, str]] = []  # (tree, logical typecode)
    pairs: list[tuple[SyntaxTree, SyntaxTree]] = []

    def visit(s) -> tuple[SyntaxTree, str, _Step]:
        label, kids = s
        st = stmts.get(label)
        if st is None or not st.is_assertion:
            raise GeneralizeError(f"{label}: not an assertion")
        fl = [h for h in st.frame.hyps if stmts[h].kind == "f"]
        el = [h for h in st.frame.hyps if stmts[h].kind == "e"]
        if len(el) != len(kids):
            raise GeneralizeError(f"{label} has {len(el)} essential hypotheses, the shape gives {len(kids)}")
        inst = {f: u.fresh(stmts[f].expr[0]) for f in fl}
        try:
            concl = instantiate(_parsed(g, label), inst)
            hyp_trees = [instantiate(_parsed(g, h), inst) for h in el]
        except ExprParseError as exc:
            raise GeneralizeError(f"grammar: {exc.message}") from None
        step = _Step(label, inst, [])
        for h, ht, k in zip(el, hyp_trees, kids):
            if k is None:
                step.children.append(("hole", len(holes)))
                holes.append((ht, stmts[h].expr[0]))
            else:
                ct, ctc, child = visit(k)
                if ctc != stmts[h].expr[0]:
                    raise GeneralizeError(f"{k[0]} proves a {ctc} statement, {label} needs {stmts[h].expr[0]}")
                pairs.append((ct, ht))
                step.children.append(("step", child))
        return concl, st.expr[0], step

    concl, concl_tc, root = visit(shape)
    for a, b in pairs:
        if not u.unify(a, b):
            raise GeneralizeError("the steps do not fit together (no unifier)")
    memo: dict = {}
    concl = u.resolve(concl, memo)
    hole_trees = [u.resolve(t, memo) for t, _ in holes]
    steps: list[_Step] = []
    todo = [root]
    while todo:
        st_ = todo.pop()
        steps.append(st_)
        st_.inst = {f: u.resolve(t, memo) for f, t in st_.inst.items()}
        todo.extend(c for kind, c in reversed(st_.children) if kind == "step")
    # name the remaining metavariables: statement, hypotheses, then the proof's own (dummies)
    pool = _variable_pool(db, before)
    taken: dict[str, int] = {}
    naming: dict[str, SyntaxTree] = {}
    order: list[str] = []

    def collect(t: SyntaxTree) -> None:
        todo = [t]
        while todo:
            x = todo.pop()
            if not x.children and _is_mv(x):
                if x.label not in naming:
                    tc = u.types[x.label]
                    k = taken.get(tc, 0)
                    avail = pool.get(tc, [])
                    if k >= len(avail):
                        where = "" if before is None else " early enough"
                        raise GeneralizeError(f"no {tc} variable left ({len(avail)} declared at the outermost "
                                              f"scope{where})")
                    taken[tc] = k + 1
                    naming[x.label] = SyntaxTree(avail[k][1])
                    order.append(avail[k][0])
            else:
                todo.extend(reversed(x.children))

    collect(concl)
    for t in hole_trees:
        collect(t)
    n_stated = len(order)
    for st_ in steps:
        for f in stmts[st_.label].frame.hyps:
            if f in st_.inst:
                collect(st_.inst[f])

    def expr(t: SyntaxTree, tc: str) -> tuple[str, ...]:
        return (tc,) + g.expr_of(instantiate(t, naming))[1:]

    statement = expr(concl, concl_tc)
    hyp_exprs = [expr(t, tc) for t, (_, tc) in zip(hole_trees, holes)]
    distinct: list[tuple[str, ...]] = []
    hole_index: list[int] = []
    for e in hyp_exprs:
        if e not in distinct:
            distinct.append(e)
        hole_index.append(distinct.index(e))
    # $d from the proof, and the proof itself
    variables = db.variables
    dv: set[tuple[str, str]] = set()
    proof: list = []

    def emit(st_: _Step) -> None:
        a = stmts[st_.label]
        named = {f: instantiate(t, naming) for f, t in st_.inst.items()}
        if a.frame.dvs:
            sub = {stmts[f].expr[1]: g.expr_of(t)[1:] for f, t in named.items()}
            for v in dv_violations(a.frame.dvs, sub, frozenset(), variables):
                if v.a == v.b:
                    raise GeneralizeError(f"{st_.label}: $d {v.x} {v.y} cannot hold in general "
                                          f"(both terms contain the same variable)")
                dv.add((v.a, v.b) if v.a < v.b else (v.b, v.a))
        it = iter(st_.children)
        for h in a.frame.hyps:
            if h in named:
                proof.extend(t.label for t in postorder(named[h], lambda t: t.children))
            else:
                kind, c = next(it)
                if kind == "hole":
                    proof.append(hole_index[c])
                else:
                    emit(c)
        proof.append(st_.label)

    emit(root)
    return Theorem(statement, distinct, proof, order[:n_stated], order[n_stated:], sorted(dv), shape,
                   general=True, steps=len(steps))


def concrete(db: Database, tree: ProofTree, root: int, shape: Shape) -> Theorem:
    """The concrete instance of ``shape`` at node ``root`` of a full proof tree.

    ``tree``: a full :class:`metamath.proof.ProofTree` (syntax steps
    included) in which ``shape`` occurs at ``root``.
    Hypotheses are the holes' own expressions, the conclusion the root's,
    syntax subproofs the tree's own; ``$d`` pairs again come from the proof.
    """
    stmts = db.statements
    variables = db.variables
    nodes = tree.nodes
    hyps: list[tuple[str, ...]] = []
    proof: list = []
    dv: set[tuple[str, str]] = set()
    used: list[str] = []
    seen: set[str] = set()
    tree_name = tree.theorem or "the tree"

    def note_vars(e) -> None:
        for s in e[1:]:
            if s in variables and s not in seen:
                seen.add(s)
                used.append(s)

    outer = {v: f for _, v, f, _ in outer_floats(db)}

    def leaf(label: str) -> str:
        st = stmts[label]
        if st.kind != "f" or st.depth == 0:
            return label
        f = outer.get(st.expr[1])  # a $f local to the source proof's block: use the outermost one
        if f is None or stmts[f].expr[0] != st.expr[0]:
            raise GeneralizeError(f"{tree_name}: variable {st.expr[1]} has no outermost-scope $f")
        return f

    def subtree_rpn(i: int) -> None:
        for j in postorder(i, lambda j: nodes[j].children):
            n = nodes[j]
            proof.append(n.label if n.children else leaf(n.label))
            note_vars(n.expr)

    steps = 0

    def emit(i: int, s) -> None:
        nonlocal steps
        label, kids = s
        a = stmts[label]
        n_e = sum(1 for h in a.frame.hyps if stmts[h].kind == "e")
        node = nodes[i]
        if node.label != label or len(node.children) != len(a.frame.hyps) or len(kids) != n_e:
            raise GeneralizeError(f"{tree_name}: node {i} applies {node.label}, the shape says {label}")
        steps += 1
        it = iter(kids)
        sub = {}
        for h, c in zip(a.frame.hyps, node.children):
            if stmts[h].kind == "f":
                sub[stmts[h].expr[1]] = nodes[c].expr[1:]
                subtree_rpn(c)
            else:
                k = next(it)
                if k is None:
                    e = nodes[c].expr
                    if e not in hyps:
                        hyps.append(e)
                        note_vars(e)
                    proof.append(hyps.index(e))
                else:
                    emit(c, k)
        if a.frame.dvs:
            for v in dv_violations(a.frame.dvs, sub, frozenset(), variables):
                if v.a == v.b:
                    raise GeneralizeError(f"{label}: $d {v.x} {v.y} broken in the source proof")
                dv.add((v.a, v.b) if v.a < v.b else (v.b, v.a))
        proof.append(label)

    if shape is None:
        raise GeneralizeError("a hole is not a theorem")
    emit(root, shape)
    stated: list[str] = []
    stated_set: set[str] = set()
    for e in [nodes[root].expr] + hyps:
        for s in e[1:]:
            if s in variables and s not in stated_set:
                stated_set.add(s)
                stated.append(s)
    dummies = [v for v in used if v not in stated_set]
    return Theorem(nodes[root].expr, hyps, proof, stated, dummies, sorted(dv), shape, general=False, steps=steps)


# ------------------------------------------------------------------ canonical form
def _rename(exprs, variables, types) -> tuple:
    names: dict[str, str] = {}
    out = []
    for e in exprs:
        r = []
        for s in e:
            if s in variables:
                n = names.get(s)
                if n is None:
                    n = names[s] = f"${types.get(s, '?')}{len(names)}"
                r.append(n)
            else:
                r.append(s)
        out.append(tuple(r))
    return tuple(out)


def canonical(db: Database, statement: tuple[str, ...], hypotheses) -> tuple:
    """A key equal for two theorems exactly when they are the same up to variable
    renaming and hypothesis order (duplicate hypotheses ignored).

    Variables are renamed in order of first occurrence in the conclusion,
    then the hypotheses; the hypothesis order is the one giving the least
    key (all orders up to 6 distinct hypotheses; beyond, ordered by their
    shape with variables blanked, which is exact unless two such shapes tie).
    """
    variables = db.variables
    types = db.var_typecodes
    hyps = sorted(set(map(tuple, hypotheses)))
    if len(hyps) <= 6:
        best = None
        for perm in permutations(hyps):
            k = _rename([statement, *perm], variables, types)
            if best is None or k < best:
                best = k
        return best
    blank = lambda e: tuple("$" + types.get(s, "?") if s in variables else s for s in e)  # noqa: E731
    hyps.sort(key=blank)
    return _rename([statement, *hyps], variables, types)
