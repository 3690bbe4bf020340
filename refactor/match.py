"""Matching new theorems' proof patterns in proofs, and applying them.

Why a pattern and not a statement match: REFACTOR rewrites proofs by
matching the new theorem's *proof tree* (labels and arities equal) with its
hypotheses as wildcards: its ``$e`` leaves and its variables' ``$f`` leaves
bind, consistently, to whole subproofs. The application's children are then
those subproofs, one per mandatory hypothesis. A variable the pattern never
builds (it only occurs in an unused hypothesis) is bound by unifying the
theorem's hypotheses with the proof's own steps (:mod:`metamath.unify`),
and its syntax proof is taken from an identical step of the same proof or
built from the grammar (:mod:`metamath.grammar`). Dummy variables of the
pattern match any variable of their type (renaming). An occurrence is used
only when it saves expanded-tree nodes and its ``$d`` conditions hold in
the proof.

Proofs are canonical hash-consed DAGs (:meth:`metamath.proof.Proof.dag`),
so "the same subtree" is one node id, and a shared step is rewritten once
for all its uses. Overlapping occurrences are taken outermost-first per
tree path; nested occurrences inside the bound subproofs are rewritten too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from metamath.database import Database
from metamath.proof import Proof, ProofTree, postorder
from metamath.verify import dv_violations

__all__ = ["Pattern", "NewTheorem", "Binder", "match_at", "find_matches", "apply_matches", "best_rewrite",
           "EXHAUSTIVE"]


@dataclass
class Pattern:
    """A new theorem's proof tree (pre-order, node 0 the root) as a pattern.

    ``wild[i]`` is None for a node that must be matched literally (same
    label, same number of children), else a wildcard key: ``('e', label)``
    for a ``$e`` hypothesis leaf, ``('v', var)`` for the ``$f`` leaf of a
    variable of the statement or hypotheses, ``('d', var)`` for the ``$f``
    leaf of a dummy variable (binds a variable leaf of node ``i``'s typecode).
    """

    tree: ProofTree
    wild: list[tuple | None]
    literals: frozenset = frozenset()  # the labels a proof must apply to hold the pattern

    @classmethod
    def of(cls, tree: ProofTree, db: Database, own: set[str], variables: set[str]) -> "Pattern":
        """The pattern of a theorem's proof tree: ``own`` are its ``$e`` labels,
        ``variables`` those of its statement and hypotheses (the others are dummies)."""
        stmts = db.statements
        wild: list[tuple | None] = []
        for n in tree.nodes:
            st = stmts[n.label]
            if n.label in own:
                wild.append(("e", n.label))
            elif st.kind == "f":
                wild.append(("v" if st.expr[1] in variables else "d", st.expr[1]))
            else:
                wild.append(None)
        return cls(tree, wild, frozenset(n.label for n, w in zip(tree.nodes, wild) if w is None))

    @property
    def trivial(self) -> bool:
        return self.wild[0] is not None


@dataclass
class NewTheorem:
    """A theorem of T.json, checked and ready to apply."""

    index: int
    label: str                                  # final, collision-free
    proposed: str                               # the label T.json proposed
    statement: tuple[str, ...]
    hyps: list[tuple[str, tuple[str, ...]]]     # ($e label, expression), final labels
    dv: list[tuple[str, str]]
    proof: list[str]                            # normal proof, final hypothesis labels
    source_proofs: list[str] = field(default_factory=list)
    method: str = ""
    frame_hyps: tuple[str, ...] = ()            # mandatory hypotheses in order
    frame_dvs: tuple = ()                       # mandatory $d pairs
    hyp_kind: dict = field(default_factory=dict)  # frame hyp -> ('e', label) | ('v', var)
    pattern: Pattern | None = None
    own_proof: Proof | None = None              # its own proof (own_proof.tree_size(): its size)
    dep_item: int = -1                          # top-level item of its last dependency



def match_at(pat: Pattern, dag: Proof, node: int, is_float) -> dict | None:
    """Match ``pat`` at ``node``: the wildcard bindings (key -> node id), or None.

    Literal pattern nodes must have the same label and arity; a wildcard
    binds a whole subproof, the same one at each of its leaves. ``is_float``
    tells whether a label is a ``$f`` (what a dummy may bind).
    """
    bind: dict = {}
    stack = [(0, node)]
    pnodes, pwild = pat.tree.nodes, pat.wild
    dnodes = dag.nodes
    while stack:
        p, d = stack.pop()
        w = pwild[p]
        dn = dnodes[d]
        if w is not None:
            if w[0] == "d" and (dn.children or not is_float(dn.label) or dn.expr[0] != pnodes[p].expr[0]):
                return None
            prev = bind.get(w)
            if prev is None:
                bind[w] = d
            elif prev != d:
                return None
            continue
        pn = pnodes[p]
        if dn.label != pn.label:
            return None
        pk, dk = pn.children, dn.children
        if len(pk) != len(dk):
            return None
        stack.extend(zip(pk, dk))
    return bind


class Binder:
    """Completes a match into application children (unification and syntax
    proofs for what the pattern does not bind) and judges it."""

    def __init__(self, db: Database, label: str, dag: Proof):
        self.db = db
        self.label = label
        self.dag = dag
        self._by_expr: dict | None = None
        self.allowed = db.statements[label].frame.all_dvs

    def node_with_expr(self, expr: tuple[str, ...]) -> int | None:
        if self._by_expr is None:
            self._by_expr = {}
            nodes = self.dag.nodes
            for i in self.dag.reachable():
                self._by_expr.setdefault(nodes[i].expr, i)
        return self._by_expr.get(expr)

    def syntax_proof(self, expr: tuple[str, ...]) -> int | None:
        """A node proving the syntax expression ``expr``: one of the proof's
        own steps, or one built from the grammar."""
        i = self.node_with_expr(expr)
        if i is not None:
            return i
        from metamath.grammar import ExprParseError, Grammar

        g = Grammar.from_database(self.db)
        try:
            tree = g.parse(expr, at=self.db.statements[self.label])
        except ExprParseError:
            return None
        out: dict = {}
        for t in postorder(tree, lambda t: t.children):  # a shared subtree is added once (hash-consing)
            out[id(t)] = self.dag.add(t.label, tuple(out[id(c)] for c in t.children), g.expr_of(t))
        return out[id(tree)]

    def children(self, th: NewTheorem, node: int, bind: dict) -> list[int] | None:
        """The application's children (one per mandatory hypothesis), or None
        when the occurrence cannot be used."""
        dag = self.dag
        kinds = [th.hyp_kind[h] for h in th.frame_hyps]
        if any(k not in bind for k in kinds):
            if not self._complete(th, node, bind):
                return None
        kids = [bind[k] for k in kinds]
        if th.frame_dvs:
            subst = {k[1]: dag.nodes[bind[k]].expr[1:] for k in kinds if k[0] == "v"}
            if dv_violations(th.frame_dvs, subst, self.allowed, self.db.variables):
                return None
        return kids

    def _complete(self, th: NewTheorem, node: int, bind: dict) -> bool:
        """Bind what the pattern left unbound, by unification (metamath.unify)."""
        from metamath.unify import match, terms

        db, dag = self.db, self.dag
        accept = terms(db).accepts
        variables = db.variables
        nodes = dag.nodes
        subst = {k[1]: nodes[b].expr[1:] for k, b in bind.items() if k[0] == "v"}
        hyp_expr = dict(th.hyps)
        pairs = [(th.statement, nodes[node].expr)]
        pairs += [(hyp_expr[k[1]], nodes[b].expr) for k, b in bind.items() if k[0] == "e"]
        for pattern, target in pairs:
            s = next(match(pattern, target, variables, accept, subst), None)
            if s is None:
                return False
            subst = s
        for h in th.frame_hyps:  # unused $e hypotheses: a step of this proof that proves an instance
            k = th.hyp_kind[h]
            if k[0] != "e" or k in bind:
                continue
            found = None
            for i in dag.reachable():
                if i >= node:  # ids are topological: no step at or above the occurrence (no cycle)
                    break
                e = nodes[i].expr
                if e[0] != hyp_expr[h][0]:
                    continue
                s = next(match(hyp_expr[h], e, variables, accept, subst), None)
                if s is not None:
                    found, subst = i, s
                    break
            if found is None:
                return False
            bind[k] = found
        for h in th.frame_hyps:
            k = th.hyp_kind[h]
            if k[0] != "v" or k in bind:
                continue
            if k[1] not in subst:
                return False  # a variable nothing determines
            tc = db.statements[h].expr[0]
            i = self.syntax_proof((tc,) + tuple(subst[k[1]]))
            if i is None:
                return False
            bind[k] = i
        return True


def find_matches(db: Database, label: str, dag: Proof, th: NewTheorem) -> dict[int, tuple[str, list[int]]]:
    """``{node: (new label, application children)}`` for every node of the
    proof of ``label`` where ``th`` can be applied with a saving."""
    pat = th.pattern
    if pat is None or pat.trivial:
        return {}
    stmts = db.statements

    def is_float(l: str) -> bool:
        s = stmts.get(l)
        return s is not None and s.kind == "f"

    roots = list(dag.nodes_with(pat.tree.nodes[0].label))
    if not roots:
        return {}
    binder = Binder(db, label, dag)
    out: dict[int, tuple[str, list[int]]] = {}
    for i in roots:
        bind = match_at(pat, dag, i, is_float)
        if bind is None:
            continue
        kids = binder.children(th, i, bind)
        if kids is None:
            continue
        size = dag.sizes()  # after the binder's additions
        if 1 + sum(size[c] for c in kids) >= size[i]:
            continue  # no saving here
        out[i] = (th.label, kids)
    return out


def apply_matches(dag: Proof, matches: dict[int, tuple[str, list[int]]]) -> Proof:
    """The DAG with each matched node replaced by its application, outermost
    first along every path; bound subproofs are rewritten too."""
    new = Proof(dag.theorem, [], -1)
    nodes = dag.nodes
    memo: dict[int, int] = {}
    stack = [(dag.root, False)]
    while stack:
        n, done = stack.pop()
        if n in memo:
            continue
        m = matches.get(n)
        kids = m[1] if m else nodes[n].children
        if not done and kids:
            stack.append((n, True))
            stack.extend((c, False) for c in reversed(kids) if c not in memo)
            continue
        memo[n] = new.add(m[0] if m else nodes[n].label, tuple(memo[c] for c in kids), nodes[n].expr)
    new.root = memo[dag.root]
    return new


def _apply(db: Database, label: str, dag: Proof, th: NewTheorem) -> Proof | None:
    m = find_matches(db, label, dag, th)
    return apply_matches(dag, m) if m else None



EXHAUSTIVE = 4  # a proof where at most this many theorems apply tries every order of them

def best_rewrite(db: Database, label: str, dag: Proof, theorems: list[NewTheorem],
                 exhaustive: int = EXHAUSTIVE) -> tuple[Proof, list[tuple[int, int]]]:
    """The smallest rewriting of one proof: (DAG, [(theorem index, nodes it saved)] in order).

    Every theorem is inserted whatever happens, so its own proof is a fixed
    cost and the library's size is the sum of independent proof sizes: the
    order in which theorems are applied is chosen per proof. With at most
    ``exhaustive`` applicable theorems every order is tried; with more, the
    one saving most in this proof goes first, the others are recounted, and
    so on. Ties keep the theorems file's order.
    """
    present = {n.label for n in dag.nodes}
    theorems = [th for th in theorems if th.pattern is not None and th.pattern.literals <= present]
    once = {th.index: _apply(db, label, dag, th) for th in theorems}
    ths = [th for th in theorems if once[th.index] is not None]
    if not ths:
        return dag, []
    best: list = [dag.tree_size(), dag, []]
    if len(ths) <= exhaustive:
        def dfs(d: Proof, rest: list[NewTheorem], steps: list[tuple[int, int]]) -> None:
            for th in rest:
                new = once[th.index] if not steps else _apply(db, label, d, th)
                if new is None:
                    continue
                s = steps + [(th.index, d.tree_size() - new.tree_size())]
                if new.tree_size() < best[0]:
                    best[:] = [new.tree_size(), new, s]
                dfs(new, [t for t in rest if t is not th], s)

        dfs(dag, ths, [])
        return best[1], best[2]
    d, steps, rest = dag, [], list(ths)
    while rest:
        options = [(th, once[th.index] if not steps else _apply(db, label, d, th)) for th in rest]
        options = [(th, new) for th, new in options if new is not None]
        if not options:
            break
        th, new = min(options, key=lambda o: o[1].tree_size())
        steps.append((th.index, d.tree_size() - new.tree_size()))
        d = new
        rest = [t for t, _ in options if t is not th]
    return d, steps
