"""Extraction: proof fragments -> verified, deduplicated, ranked new theorems (T.json).

Why: REFACTOR's classifier marks, in each proof, the nodes that look like
one inlined theorem. Those marks only matter once they are a theorem that
checks. Every method is an *extractor* (:data:`EXTRACTORS`: the GNN,
frequent subtrees, Stitch) that proposes shapes, with the fragments they
were cut from (:class:`Proposals`); one path, :func:`extract`, turns them
into theorems and keeps the ones worth adding:

1. **Fragments** (:func:`fragments_from_positive`): the positive essential
   nodes of a proof form components (connected in the tree); in each, a
   node whose essential children are all positive is a step, one whose
   children are all outside is a cut point (a hole, later an ``$e``), and a
   node with some children in and some out is trimmed to a cut point, its
   positive children starting components of their own. Syntax nodes only
   decide whether a leaf step (an assertion without ``$e``) is a step (some
   syntax child positive) or a cut point; ``strict=True`` also demands that
   a step's syntax children be all positive (REFACTOR's literal rule). The GNN
   extractor proposes, by default, the *parts* of its fragments
   (:func:`by_sub_shape`: every top part of 2 to 6 steps, depth at most 3,
   of every step), most often cut first; ``fragments="components"`` proposes
   the fragments themselves. A model trained on essential-step trees
   classifies each proof's essential view; its positive steps bring their
   syntax children along.
2. **Theorems** (:mod:`refactor.generalize`): the most general theorem of
   each distinct shape by unification, the concrete instance when there is
   none; ``$d`` pairs and a normal proof from the theorem's own steps.
3. **Verification** (:func:`refactor.theorems.verify_theorems`): every theorem is
   inserted as a ``${ $e.. $d.. $p $}`` block at the end of a copy of the database
   text, which our verifier then parses and checks.
4. **Dedupe** (:func:`refactor.generalize.canonical`): up to variable
   renaming and hypothesis order, against each other and against every
   ``|-`` assertion of the database (an equal one is a *rediscovery*);
   trivial ones (one step, or a conclusion equal to a hypothesis) go too.
5. **Rank** (:class:`Library`, :func:`select_top`): uses = non-overlapping
   occurrences of the theorem's shape in the essential DAGs of every proof
   (a shared subproof counts once, as in a compressed proof; a simple
   matcher of our own, labels and arities equal, holes match anything;
   every such occurrence is an instance of a most general theorem); nodes
   saved (``nodes_saved``, the default ranking ``proof-nodes``) = over the
   occurrences, the expanded proof-tree nodes one application saves there
   (:func:`occurrence_gains`: the absorbed steps with their syntax
   subproofs, minus the application and its substitutions' syntax), minus
   the theorem's own normal proof: the measure ``mmrefactor rewrite``
   reports. ``essential_nodes_saved`` (ranking ``essential``) = uses x
   (steps - 1) - own proof size, all in essential nodes (the own proof
   counts its steps and hypothesis leaves).
   The best ``top`` are picked greedily by marginal saving: occurrences
   whose steps a better-ranked theorem already covers no longer count
   (``uses_marginal``; ``uses`` is the theorem's count on its own).
   Ranking ``confidence`` (GNN only) weighs the marginal proof nodes saved
   by the classifier's mean probability over the steps of the fragments
   the theorem was cut from (``confidence`` in T.json).

The result is a theorems file, T.json (:mod:`refactor.theorems`, :func:`extract`).
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Iterable

from metamath.database import Database
from metamath.errors import MMError, ProofError
from metamath.grammar import Grammar
from metamath.parallel import map_theorems
from metamath.proof import Proof, ProofTree, TreeNode, TreeTooLarge, node_kind
from metamath.unify import match, terms
from metamath.verify import check

from .config import RANKINGS
from .decode import decode_inlined
from .expansion import Example, proof_tree
from .generalize import (GeneralizeError, Shape, Theorem, canonical, concrete, generalize, shape_holes,
                         shape_steps, shape_str)
from .theorems import hypothesis_labels, verify_theorems

class ExtractError(Exception):
    """An extraction that cannot run (a missing checkpoint, a baseline not installed)."""


# ------------------------------------------------------------------ fragments
@dataclass
class Fragment:
    """A shape cut from a proof: ``root`` is its node in ``tree`` (a full proof tree)."""

    shape: Shape
    theorem: str
    root: int
    tree: ProofTree | None = None
    #: the classifier's probability of each node of ``tree`` (None: a node it did not see), for the GNN
    probs: list | None = None


def fragments_from_positive(db: Database, tree: ProofTree, positive, theorem: str = "",
                            strict: bool = False, keep_tree: bool = True) -> list[Fragment]:
    """The fragments (shapes with at least one step) that positive nodes of a full
    proof tree make, REFACTOR's way (see the module docstring).

    ``positive``: the indices of the positive nodes.
    """
    nodes = tree.nodes
    n = len(nodes)
    pos = [False] * n
    for i in positive:
        pos[i] = True
    stmts = db.statements
    ess = [not nd.syntax for nd in nodes]
    roots = [i for i in range(n) if pos[i] and ess[i] and not (nodes[i].parent >= 0 and pos[nodes[i].parent])]
    out: list[Fragment] = []
    todo = list(roots)
    while todo:
        r = todo.pop(0)

        def build(v: int):
            kids = nodes[v].children
            ek = [c for c in kids if ess[c]]
            sk = [c for c in kids if not ess[c]]
            st = stmts[nodes[v].label]
            if st.kind in "ef":
                return None
            if not ek:
                if sk and not any(pos[c] for c in sk):
                    return None  # a cut point: its (syntax) children are all outside
                if strict and sk and not all(pos[c] for c in sk):
                    return None
                return (nodes[v].label, ())
            inside = [pos[c] for c in ek]
            if not any(inside):
                return None
            if not all(inside) or (strict and sk and not all(pos[c] for c in sk)):
                todo.extend(c for c in ek if pos[c])  # trimmed: inside children start anew
                return None
            return (nodes[v].label, tuple(build(c) for c in ek))

        shape = build(r)
        if shape is not None:
            out.append(Fragment(shape, theorem or tree.theorem, r, tree if keep_tree else None))
    return out


# ------------------------------------------------------------------ the library's essential DAGs
def _library_entry(max_nodes: int | None, db: Database, label: str) -> tuple[Proof, list[int], list[int]] | None:
    """The essential DAG of one proof (:meth:`metamath.proof.Proof.essential` of its
    canonical DAG), its nodes' ids in the canonical DAG and their syntax weights
    (see :class:`Library`); None when it is over ``max_nodes``, not a ``|-``
    proof, or not verified."""
    try:
        proof = check(db, label, record=True).dag()
    except (ProofError, MMError):
        return None
    syn = db.syntax_typecodes
    if proof.nodes[proof.root].expr[0] in syn:
        return None
    ess, sources = proof.essential(syn)
    if max_nodes is not None and len(ess) > max_nodes:
        return None
    size, nodes = proof.sizes(), proof.nodes
    weight = [1 + sum(size[c] for c in nodes[s].children if nodes[c].expr[0] in syn) for s in sources]
    return ess, sources, weight


@dataclass
class Library:
    """Every proof's essential steps as a DAG, indexed by label for shape matching.

    ``dags[k]``: proof ``k``'s essential DAG: one node per distinct essential
    subproof, children before parents, a step's children its essential
    hypotheses' proofs in order; a subproof used twice is one node, as in a
    compressed proof, so counts over it are not inflated by expansion.
    ``sources[k]``: its nodes' ids in the proof's canonical DAG.
    ``weights[k]``: for each of its nodes, the expanded proof-tree nodes the
    step itself stands for: 1 plus its syntax subproofs (what a rewrite
    removes when the step is absorbed into a new theorem's application).
    ``by_label``: label -> (proof, node), each proof's nodes parents first.
    """

    proofs: list[str]
    dags: list[Proof]
    sources: list[list[int]] = field(default_factory=list)
    weights: list[list[int]] = field(default_factory=list)
    by_label: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    skipped: int = 0  # proofs over the size cap (or failing) left out
    _occurrences: dict = field(default_factory=dict, repr=False, compare=False)  # shape -> occurrences
    _by_children: dict = field(default_factory=dict, repr=False, compare=False)  # label -> children's labels -> nodes

    @classmethod
    def build(cls, db: Database, max_nodes: int | None = 100_000, jobs: int | None = None,
              labels: list[str] | None = None, ray: str | None = None) -> "Library":
        """Essential DAGs of every ``$p`` (those over ``max_nodes`` nodes are left out), one job per
        proof over local processes, or on the Ray cluster ``ray`` (the database goes into its object
        store once; each actor keeps it)."""
        labels = db.theorems() if labels is None else labels
        res = map_theorems(db, partial(_library_entry, max_nodes), labels, jobs=jobs, ray=ray)
        lib = cls([], [])
        for l in labels:
            if res[l] is None:
                lib.skipped += 1
                continue
            dag, sources, weight = res[l]
            k = len(lib.proofs)
            lib.proofs.append(l)
            lib.dags.append(dag)
            lib.sources.append(sources)
            lib.weights.append(weight)
            for i in range(len(dag) - 1, -1, -1):
                lib.by_label.setdefault(dag.nodes[i].label, []).append((k, i))
        return lib

    def full_tree(self, db: Database, k: int, max_nodes: int | None = 10 ** 6) -> tuple[ProofTree, list[int]]:
        """Proof ``k``'s full tree (expanded from its canonical DAG) and, for each
        node of its essential DAG, the index of its first occurrence in that tree.
        Raises :class:`metamath.proof.TreeTooLarge` over ``max_nodes``."""
        tree = check(db, self.proofs[k], record=True).dag().tree(db, max_nodes)
        first: dict[int, int] = {}
        for i, n in enumerate(tree.nodes):
            first.setdefault(n.source, i)
        return tree, [first[d] for d in self.sources[k]]

    def nodes(self) -> int:
        return sum(len(d) for d in self.dags)

    def matches_at(self, k: int, v: int, shape: Shape) -> list[int] | None:
        """The step nodes of ``shape`` matched at node ``v`` of proof ``k``, or None."""
        nodes = self.dags[k].nodes
        steps: list[int] = []
        todo = [(v, shape)]
        while todo:
            i, s = todo.pop()
            if s is None:
                continue
            kids = nodes[i].children
            if nodes[i].label != s[0] or len(kids) != len(s[1]):
                return None
            steps.append(i)
            todo.extend(zip(kids, s[1]))
        return steps

    def rooted_like(self, shape: Shape) -> list[tuple[int, int]]:
        """The nodes (proof, node) whose label and whose children's labels fit the
        root of ``shape`` (a hole fits any child): the only places it can match.

        Why: on set.mm a label such as ``syl`` heads about 10^5 nodes; indexing
        them by their children's labels (built once per label) leaves a
        shape's few candidates instead of matching at every one.
        """
        label, kids = shape[0], shape[1]
        sigs = self._by_children.get(label)
        if sigs is None:
            sigs = self._by_children[label] = defaultdict(list)
            for k, v in self.by_label.get(label, ()):
                nodes = self.dags[k].nodes
                sigs[tuple(nodes[c].label for c in nodes[v].children)].append((k, v))
        want = tuple(None if c is None else c[0] for c in kids)
        if None not in want:
            return sigs.get(want, [])
        out: list[tuple[int, int]] = []
        for sig, at in sigs.items():
            if len(sig) == len(want) and all(w is None or w == x for w, x in zip(want, sig)):
                out.extend(at)
        return out

    def occurrences(self, shape: Shape) -> list[tuple[int, int]]:
        """Non-overlapping occurrences (proof index, root node) of ``shape``: in each
        proof's essential DAG, greedily parents first; an occurrence's holes may
        hold others. Sorted by proof, then parents first. Remembered per shape:
        a candidate asks for them twice (its placement, its uses), and on set.mm a
        shape rooted at a common label is matched at tens of thousands of nodes."""
        known = self._occurrences.get(shape)
        if known is not None:
            return list(known)
        by_proof: dict[int, list[int]] = defaultdict(list)
        for k, v in self.rooted_like(shape):
            by_proof[k].append(v)
        out = []
        for k, vs in by_proof.items():
            used: set[int] = set()
            for v in sorted(vs, reverse=True):
                if v in used:
                    continue
                steps = self.matches_at(k, v, shape)
                if steps is None or used.intersection(steps):
                    continue
                used.update(steps)
                out.append((k, v))
        out.sort(key=lambda o: (o[0], -o[1]))
        self._occurrences[shape] = tuple(out)
        return out


# ------------------------------------------------------------------ labels of new theorems
def _safe_prefix(db: Database, base: str = "mmr") -> str:
    taken = set(db.statements) | db.constants | db.variables
    k = 0
    while True:
        p = base if k == 0 else f"{base}{k}"
        if not any(l.startswith(p + "-") for l in taken):
            return p
        k += 1


# ------------------------------------------------------------------ what extractors propose
@dataclass
class Proposals:
    """What an extractor proposes: shapes in the order to try them, each with
    the fragments it was cut from (none for the symbolic baselines), and how
    :func:`extract` is to go through them."""

    method: str
    shapes: list[tuple[Shape, list[Fragment]]]
    info: dict = field(default_factory=dict)
    stop_after_new: int | None = None  # keep the first this many new theorems found
    batch: int = 256                    # theorems verified together (one copy of the database)


def by_shape(fragments: Iterable[Fragment]) -> list[tuple[Shape, list[Fragment]]]:
    """Fragments grouped by shape, shapes in order of first appearance."""
    groups: dict[Shape, list[Fragment]] = {}
    for f in fragments:
        groups.setdefault(f.shape, []).append(f)
    return list(groups.items())


def top_parts(shape: Shape, max_steps: int, max_depth: int) -> list[tuple[Shape, int]]:
    """Every (top part of ``shape`` at its root, its steps) with at most
    ``max_steps`` steps and ``max_depth`` steps on a root-to-leaf path: each
    step below the root is kept or cut to a hole."""
    if shape is None or max_steps <= 0 or max_depth <= 0:
        return []
    partial: list[tuple[tuple, int]] = [((), 1)]
    for c in shape[1]:
        opts = [(None, 0)] + top_parts(c, max_steps - 1, max_depth - 1)
        partial = [(p + (x,), n + k) for p, n in partial for x, k in opts if n + k <= max_steps]
    return [((shape[0], kids), n) for kids, n in partial]


def by_sub_shape(fragments: Iterable[Fragment], max_steps: int = 6,
                 max_depth: int = 3) -> list[tuple[Shape, list[Fragment]]]:
    """The sub-shapes (of 2 or more steps, within the limits of the frequent
    baseline) of the fragments: every top part of every step of each
    fragment, most often cut first (ties: more steps first, then by text).

    Why: a predicted fragment rarely has exactly the extent of a theorem worth
    adding (the classifier marks a whole inlined proof, or too much, or too
    little), while its parts recur across the library; the ranking then
    picks, among the parts of what the classifier marked, those that save
    most. Each part comes with a fragment of its own (same proof, rooted at
    the part's root) when the fragment carries its tree.
    """
    from collections import Counter

    count: Counter = Counter()
    cut: dict[Shape, list[Fragment]] = defaultdict(list)
    for f in fragments:
        seen = set()
        todo = [(f.shape, f.root)]
        while todo:
            u, i = todo.pop()
            if u is None:
                continue
            for x, n in top_parts(u, max_steps, max_depth):
                if n >= 2 and x not in seen:
                    seen.add(x)
                    count[x] += 1
                    if f.tree is not None or x == f.shape:
                        cut[x].append(f if x == f.shape else Fragment(x, f.theorem, i, f.tree, f.probs))
            if f.tree is None:
                todo.extend((c, -1) for c in u[1])
            else:
                nodes = f.tree.nodes
                todo.extend(zip(u[1], [c for c in nodes[i].children if not nodes[c].syntax]))
    order = sorted(count.items(), key=lambda sc: (-sc[1], -shape_steps(sc[0]), shape_str(sc[0])))
    return [(x, cut.get(x, [])) for x, _ in order]


# ------------------------------------------------------------------ candidates -> T.json
@dataclass
class Candidate:
    """One distinct shape on its way to a theorem."""

    shape: Shape
    fragments: list[Fragment]
    theorem: Theorem | None = None
    error: str | None = None
    key: tuple | None = None
    uses: int = 0
    occurrences: list = field(default_factory=list)
    gains: list | None = None  # proof-tree nodes saved at each occurrence (occurrence_gains)
    found: int = 0  # order in which the new theorem was found


def _existing_keys(db: Database) -> dict[tuple, str]:
    keys = db.__dict__.get("_mmr_existing_keys")
    if keys is None:
        keys = {}
        stmts = db.statements
        syn = db.syntax_typecodes
        for st in stmts.values():
            if st.kind not in "ap" or st.expr[0] in syn:
                continue
            hyps = [stmts[h].expr for h in st.frame.hyps if stmts[h].kind == "e"]
            keys.setdefault(canonical(db, st.expr, hyps), st.label)
        db.__dict__["_mmr_existing_keys"] = keys
    return keys


def _first_use(db: Database, cand: Candidate, library: Library) -> int:
    """Index of the earliest proof the shape was cut from or occurs in."""
    stmts = db.statements
    idx = [stmts[f.theorem].index for f in cand.fragments if f.theorem in stmts]
    occ = library.occurrences(cand.shape)
    if occ:
        idx.append(min(stmts[library.proofs[k]].index for k, _ in occ))
    return min(idx) if idx else len(stmts)


def _theorem_for(db: Database, cand: Candidate, grammar: Grammar, library: Library) -> None:
    try:
        # variables declared before the first proof that uses it, so it can be placed there
        cand.theorem = generalize(db, cand.shape, grammar, before=_first_use(db, cand, library))
        return
    except GeneralizeError as exc:
        why = str(exc)
    # the concrete instance, from the first fragment with a tree (or the first occurrence in the library)
    for f in cand.fragments:
        tree = f.tree or proof_tree(db, f.theorem, 10 ** 9)
        if tree is None:
            continue
        try:
            cand.theorem = concrete(db, tree, f.root, cand.shape)
            cand.theorem.notes.append(f"concrete instance: {why}")
            return
        except GeneralizeError as exc:
            why += f"; concrete: {exc}"
    if library is not None:
        for k, v in library.occurrences(cand.shape)[:1]:
            try:
                tree, full = library.full_tree(db, k)
                cand.theorem = concrete(db, tree, full[v], cand.shape)
                cand.theorem.notes.append(f"concrete instance: {why}")
                return
            except (GeneralizeError, TreeTooLarge) as exc:
                why += f"; concrete: {exc}"
    cand.error = why


def _holes_at(nodes, v: int, shape: Shape) -> list[int]:
    """The nodes of an essential DAG at the holes of ``shape`` matched at ``v``, in the
    shape's pre-order (the order of the theorem's hypotheses)."""
    holes: list[int] = []
    todo = [(v, shape)]
    while todo:
        i, s = todo.pop()
        if s is None:
            holes.append(i)
        else:
            todo.extend(reversed(list(zip(nodes[i].children, s[1]))))
    return holes


def _concrete_uses(db: Database, th: Theorem, library: Library, occ: list[tuple[int, int]]) -> list:
    """The occurrences of a concrete theorem's shape that are instances of it
    (its statement and hypotheses match the occurrence's expressions under one
    well-typed substitution)."""
    t = terms(db)
    types = {v: db.var_typecodes[v] for v in th.variables}
    accept = lambda v, s: t.is_term(types[v], s)  # noqa: E731
    hole_pats = [th.hypotheses[p] for p in th.proof if p.__class__ is int]  # holes in proof (pre-)order
    out = []
    trees: dict[int, tuple[ProofTree, list[int]] | None] = {}
    for k, v in occ:
        if k not in trees:
            try:
                trees[k] = library.full_tree(db, k)
            except TreeTooLarge:
                trees[k] = None
        if trees[k] is None:
            continue
        (tree, full), et = trees[k], library.dags[k].nodes
        holes = _holes_at(et, v, th.shape)
        if len(hole_pats) != len(holes):
            continue
        subst: dict | None = {}
        for pat, node in [(th.statement, v)] + list(zip(hole_pats, holes)):
            subst = next(match(pat, tree.nodes[full[node]].expr, set(th.variables), accept, subst), None)
            if subst is None:
                break
        if subst is not None:
            out.append((k, v))
    return out


def _score(steps: int, holes: int, uses: int) -> int:
    """Essential nodes saved: each use replaces its steps by one, minus the own proof (steps + holes)."""
    return uses * (steps - 1) - (steps + holes)


def occurrence_gains(db: Database, grammar: Grammar, th: Theorem, library: Library,
                     occ: list[tuple[int, int]], sizes: dict | None = None) -> list[int]:
    """Expanded proof-tree nodes (syntax steps included, the measure of
    ``mmrefactor rewrite``) that one application of ``th`` saves at each
    occurrence: the steps it absorbs (their :attr:`Library.weights`) minus
    the application itself (1) and the syntax proofs of its variables'
    substitutions (their syntax trees' sizes). An occurrence whose
    expressions the theorem does not match gains 0.

    Why: on a minimised library most of what a new theorem saves is syntax
    (the intermediate expressions it no longer builds); counting essential
    steps alone ranks theorems by a different measure than the one they are
    judged by. ``sizes``: a cache of syntax-tree sizes by expression.
    """
    from metamath.grammar import ExprParseError

    sizes = {} if sizes is None else sizes
    t = terms(db)
    types = {v: db.var_typecodes[v] for v in th.variables}
    accept = lambda v, s: t.is_term(types[v], s)  # noqa: E731
    hole_pats = [th.hypotheses[p] for p in th.proof if p.__class__ is int]  # holes in proof (pre-)order

    def syntax_size(expr: tuple) -> int:
        n = sizes.get(expr)
        if n is None:
            try:
                n = grammar.parse(expr).size()
            except ExprParseError:
                n = len(expr) - 1  # about one syntax step per symbol
            sizes[expr] = n
        return n

    out = []
    for k, v in occ:
        nodes, weight = library.dags[k].nodes, library.weights[k]
        steps = library.matches_at(k, v, th.shape) or []
        holes = _holes_at(nodes, v, th.shape)
        subst: dict | None = {}
        if len(holes) == len(hole_pats):
            for pat, node in [(th.statement, v)] + list(zip(hole_pats, holes)):
                subst = next(match(pat, nodes[node].expr, set(th.variables), accept, subst), None)
                if subst is None:
                    break
        else:
            subst = None
        if subst is None or any(x not in subst for x in th.variables):
            out.append(0)
            continue
        cost = 1 + sum(syntax_size((types[x],) + tuple(subst[x])) for x in th.variables)
        out.append(sum(weight[i] for i in steps) - cost)
    return out


def fragment_confidence(f: Fragment) -> float | None:
    """The classifier's mean probability over the steps the fragment's shape covers at its root
    (None when the fragment carries no probabilities: not from the GNN)."""
    if f.probs is None or f.tree is None:
        return None
    nodes, vals = f.tree.nodes, []
    todo = [(f.shape, f.root)]
    while todo:
        u, i = todo.pop()
        if u is None:
            continue
        if f.probs[i] is not None:
            vals.append(f.probs[i])
        todo.extend(zip(u[1], [c for c in nodes[i].children if not nodes[c].syntax]))
    return sum(vals) / len(vals) if vals else None


def candidate_confidence(c: "Candidate") -> float:
    """Mean of :func:`fragment_confidence` over the candidate's fragments (0 when none has one)."""
    vals = [x for x in map(fragment_confidence, c.fragments) if x is not None]
    return sum(vals) / len(vals) if vals else 0.0


def select_top(library: Library, pool: list[Candidate], top: int,
               rank: str = "proof-nodes") -> list[tuple[Candidate, list]]:
    """The best ``top`` candidates, greedily by marginal nodes saved: each pick
    counts only its occurrences whose steps no better-ranked theorem already
    took (a node replaced once cannot be replaced again). Returns (candidate,
    its occurrences left to it) in rank order.

    ``rank="proof-nodes"``: expanded proof-tree nodes saved (the gains of
    :func:`occurrence_gains` over the occurrences that gain, minus the
    theorem's own normal proof), the measure the rewritten library is
    judged by; ``"essential"``: essential nodes saved (:func:`_score`);
    ``"confidence"``: the proof nodes saved times :func:`candidate_confidence`
    (the classifier's belief; for a GNN's candidates).
    """
    if rank not in RANKINGS:
        raise ExtractError(f"unknown ranking {rank!r} (choose from {', '.join(RANKINGS)})")
    steps_of = {}
    for c in pool:
        gains = c.gains if c.gains is not None else [1] * len(c.occurrences)
        steps_of[id(c)] = [(o, [(o[0], i) for i in library.matches_at(o[0], o[1], c.shape) or ()], g)
                           for o, g in zip(c.occurrences, gains) if rank == "essential" or g > 0]
    conf = {id(c): candidate_confidence(c) for c in pool} if rank == "confidence" else {}
    taken: set[tuple[int, int]] = set()
    left = sorted(pool, key=lambda c: " ".join(c.theorem.statement))  # ties: the first statement
    out: list[tuple[Candidate, list]] = []
    while left and len(out) < top:
        best = None
        for c in left:
            free = [(o, st, g) for o, st, g in steps_of[id(c)] if not taken.intersection(st)]
            if rank == "essential":
                score = _score(c.theorem.steps, shape_holes(c.shape), len(free))
            else:
                score = sum(g for _, _, g in free) - len(c.theorem.proof)
                if rank == "confidence" and score > 0:  # a loss is not made smaller by doubt
                    score *= conf[id(c)]
            key = (score, c.uses)
            if best is None or key > best[0]:
                best = (key, c, free)
        _, c, free = best
        for _, st, _ in free:
            taken.update(st)
        out.append((c, [(o, g) for o, _, g in free]))
        left.remove(c)
    return out


@dataclass
class ExtractResult:
    """What :func:`extract` found; ``as_json()`` is the T.json document."""

    database: str
    method: str
    seed: int
    candidates: int = 0
    valid: int = 0
    rediscoveries: int = 0
    new: int = 0
    fragments: int = 0
    trivial: int = 0
    single_step: int = 0
    general: int = 0
    concrete: int = 0
    failed: int = 0
    rediscovered: list[dict] = field(default_factory=list)
    theorems: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> dict:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "failures": self.failures[:20],
                "seconds": round(self.seconds, 2)}


def extract(db: Database, proposals: Proposals, top: int = 20, library: Library | None = None, seed: int = 0,
            max_sources: int = 20, prefix: str | None = None, ranking: str = "proof-nodes") -> ExtractResult:
    """An extractor's proposals -> the T.json result (see the module docstring).

    Shapes are tried in the order given; theorems are verified
    ``proposals.batch`` at a time (one copy of the database each). With
    ``proposals.stop_after_new``, shapes stop being tried (checked every
    batch) once that many new theorems are found, and the first that many
    found are kept (the frequent baseline: the most frequent shapes first).
    ``ranking``: how the best ``top`` are picked (:func:`select_top`).
    """
    t0 = time.perf_counter()
    res = ExtractResult(db.files[0].path, proposals.method, seed)
    grammar = Grammar.from_database(db)
    library = library or Library.build(db)
    stop_after_new, batch = proposals.stop_after_new, proposals.batch
    groups: dict = {}
    order: list = []
    for shape, fs in proposals.shapes:
        res.fragments += max(1, len(fs))
        if shape not in groups:
            groups[shape] = []
            order.append(shape)
        groups[shape].extend(fs)
    existing = _existing_keys(db)
    prefix = prefix or _safe_prefix(db)
    by_key: dict[tuple, Candidate] = {}
    redis: dict[tuple, str] = {}
    n_new = 0
    pending: list[Candidate] = []
    syntax_sizes: dict = {}

    def flush() -> None:
        nonlocal n_new
        items = [(f"{prefix}-c{id(c)}", c.theorem) for c in pending]
        verdict = verify_theorems(db, items)
        for (l, _), c in zip(items, pending):
            err = verdict.get(l)
            if err is not None:
                c.error = f"does not verify: {err}"
                res.failed += 1
                res.failures.append({"shape": shape_str(c.shape), "reason": c.error})
                continue
            res.valid += 1
            th = c.theorem
            if th.general:
                res.general += 1
            else:
                res.concrete += 1
            if th.is_trivial():
                res.trivial += 1
                continue
            c.key = canonical(db, th.statement, th.hypotheses)
            if c.key in existing:
                redis.setdefault(c.key, existing[c.key])
                continue
            occ = library.occurrences(c.shape)
            if not th.general:
                occ = _concrete_uses(db, th, library, occ)
            c.occurrences, c.uses = occ, len(occ)
            c.gains = occurrence_gains(db, grammar, th, library, occ, syntax_sizes)
            old = by_key.get(c.key)
            if old is None:
                c.found = n_new
                by_key[c.key] = c
                n_new += 1
            else:
                keep, drop = (c, old) if c.uses > old.uses else (old, c)
                keep.fragments = keep.fragments + drop.fragments
                keep.found = old.found
                by_key[c.key] = keep
        pending.clear()

    for shape in order:
        if stop_after_new is not None and n_new >= stop_after_new:
            break
        res.candidates += 1
        c = Candidate(shape, groups[shape])
        if shape_steps(shape) <= 1:
            res.trivial += 1
            res.single_step += 1
            continue
        _theorem_for(db, c, grammar, library)
        if c.theorem is None:
            res.failed += 1
            res.failures.append({"shape": shape_str(shape), "reason": c.error})
            continue
        pending.append(c)
        if len(pending) >= batch:
            flush()
    flush()
    res.rediscoveries = len(redis)
    stmts = db.statements
    res.rediscovered = [{"label_existing": l, "statement": " ".join(stmts[l].expr)}
                        for l in sorted(set(redis.values()), key=lambda l: stmts[l].index)]
    res.new = len(by_key)
    pool = sorted(by_key.values(), key=lambda c: c.found)
    if stop_after_new is not None:
        pool = pool[:stop_after_new]  # the first ones found, in the order the shapes were given
    for rank, (c, marginal) in enumerate(select_top(library, pool, top, ranking), 1):
        th = c.theorem
        label = f"{prefix}-{rank}"
        hl = hypothesis_labels(label, len(th.hypotheses))
        sources: list[str] = []
        for f in c.fragments:
            if f.theorem and f.theorem not in sources:
                sources.append(f.theorem)
        occ_proofs = []
        for k, _ in c.occurrences:
            p = library.proofs[k]
            if not occ_proofs or occ_proofs[-1] != p:
                occ_proofs.append(p)
        if not sources:
            sources = occ_proofs
        res.theorems.append({
            "label": label,
            "statement": " ".join(th.statement),
            "hypotheses": [{"label": h, "statement": " ".join(e)} for h, e in zip(hl, th.hypotheses)],
            "variables": th.variables,
            "dummies": th.dummies,
            "dv": [list(p) for p in th.dv],
            "proof": th.rpn(hl),
            "uses": c.uses,
            "uses_marginal": len(marginal),
            "nodes_saved": sum(g for _, g in marginal if g > 0) - len(th.proof),
            "essential_nodes_saved": _score(th.steps, shape_holes(c.shape), len(marginal)),
            "source_proofs": sources[:max_sources],
            "source_count": len(sources),
            "proofs_touched": len(set(occ_proofs)),
            "confidence": round(candidate_confidence(c), 4) if c.fragments and c.fragments[0].probs is not None
            else None,
            "shape": shape_str(c.shape),
            "steps": th.steps,
            "general": th.general,
        })
    res.seconds = time.perf_counter() - t0
    return res


# ------------------------------------------------------------------ the options
@dataclass(frozen=True)
class ExtractOptions:
    """Everything ``mmrefactor extract`` can be told (see :func:`run_extract`)."""

    method: str = "gnn"
    checkpoint: str | None = None      # gnn: the trained model
    top: int = 20                      # theorems to keep
    on: str = "proofs"                 # gnn: run on real proofs or on the expansion examples
    max_nodes: int = 1000              # gnn: largest proof tree given to the model
    strict: bool = False               # gnn: REFACTOR's literal fragment rule
    device: str | None = None          # gnn: cpu or cuda
    seed: int = 0
    stitch_iterations: int | None = None  # stitch: abstractions to learn (default max(2 top, 20))
    stitch_arity: int = 4
    limit: int | None = None           # gnn/stitch: only the first N proofs (or examples)
    threshold: float = 0.5             # gnn: a node is positive when the model's probability exceeds this
    fragments: str = "subshapes"       # gnn: propose the fragments (components) or their parts (subshapes)
    ranking: str = "proof-nodes"       # how the best `top` are picked (select_top)
    held_out: bool = False             # a prover split hides proofs: read only the library's proofs
    sample: int | None = None          # stitch: a random N of the proofs (seeded by `seed`), not the first N
    decode: bool = False               # gnn: one region a proof, the decoder's (refactor.decode), not the threshold's


# ------------------------------------------------------------------ the GNN path
def _tree_of_graph(db: Database, g, vocab) -> ProofTree:
    """A full tree back from a dataset graph (expressions from its tokens)."""
    labels = [vocab.labels[i] for i in g.label.tolist()]
    lens = g.tok_len.tolist()
    toks = g.tok.tolist()
    syn = db.syntax_typecodes
    nodes: list[TreeNode] = []
    k = 0
    for label, n in zip(labels, lens):
        expr = tuple(vocab.symbols[t] for t in toks[k:k + n])
        nodes.append(TreeNode(label, node_kind(db, label), expr, [], -1, 0, 0, -1, expr[0] in syn))
        k += n
    src, dst = g.edge_index.tolist() if g.edge_index.numel() else ([], [])
    for p, c in sorted(zip(src, dst), key=lambda e: e[1]):  # pre-order: a parent before its children
        nodes[c].parent, nodes[c].arg_pos, nodes[c].depth = p, len(nodes[p].children), nodes[p].depth + 1
        nodes[p].children.append(c)
    return ProofTree(g.theorem, nodes)


def gnn_fragments(db: Database, opts: ExtractOptions, batch_size: int = 64,
                  labels: list[str] | None = None) -> tuple[list[Fragment], dict]:
    """Run the node classifier (``opts.checkpoint``) over every real proof
    (``opts.on == "proofs"``; ``labels``: only these) or over the expansion
    dataset's examples (``"expansion"``) and cut fragments from its positive
    nodes; ``opts.limit``: only the first N proofs (or examples). Returns
    (fragments, info)."""
    import torch
    from torch_geometric.loader import DataLoader

    from .dataset import DatasetError, load_dataset
    from .features import to_graph
    from .train import CheckpointError, load_checkpoint, model_from_checkpoint, pick_device

    try:
        dev = pick_device(opts.device)
        ck = load_checkpoint(opts.checkpoint, dev)
        meta, vocab, splits = load_dataset(ck["dataset"])
    except (CheckpointError, DatasetError) as exc:
        raise ExtractError(str(exc)) from None
    if ck["config"]["train"].get("loss") == "structured" and not opts.decode:
        raise ExtractError(f"{opts.checkpoint}: trained with --loss structured, whose prediction is the decoded "
                           f"set; add --decode")
    torch.set_flush_denormal(True)  # subnormal floats slow CPU inference as they slow training
    model = model_from_checkpoint(ck, vocab, dev)
    model.eval()
    max_tokens = meta.get("key", {}).get("max_tokens", 128)
    sym_ids, lab_ids = vocab.index()
    on, limit = opts.on, opts.limit
    essential = bool(meta.get("key", {}).get("options", {}).get("essential_only"))
    if essential and on != "proofs":
        raise ExtractError("--on expansion needs a checkpoint trained on full trees (this one is essential-only)")
    info = {"checkpoint": os.path.abspath(opts.checkpoint), "on": on, "max_nodes": opts.max_nodes,
            "dataset": ck["dataset"], "epoch": ck.get("epoch", 0) + 1, "essential_only": essential,
            "threshold": None if opts.decode else opts.threshold, "decode": opts.decode,
            "dataset_matches_database": meta.get("key", {}).get("database_sha256") == db.sha256()}
    # (label, full tree, the full tree's index of each node the model sees)
    items: list[tuple[str, ProofTree, list[int] | None]] = []
    graphs = []
    parents: list[list[int]] = []  # of the nodes the model sees, for --decode
    skipped = 0
    t0 = time.perf_counter()
    if on == "proofs":
        for l in (db.theorems() if labels is None else labels)[:limit]:
            tree = proof_tree(db, l, opts.max_nodes)
            if tree is None or tree.nodes[0].syntax:
                skipped += 1
                continue
            seen, old = tree.essential_view() if essential else (tree, None)
            items.append((l, tree, old))
            parents.append([n.parent for n in seen.nodes])
            graphs.append(to_graph(Example(seen, "", [0] * len(seen)), sym_ids, lab_ids, max_tokens))
    elif on == "expansion":
        for s in ("train", "valid", "test"):
            for g in splits[s]:
                if limit is not None and len(items) >= limit:
                    break
                items.append((g.theorem, _tree_of_graph(db, g, vocab), None))
                parents.append([n.parent for n in items[-1][1].nodes])
                graphs.append(g)
    else:
        raise ExtractError(f"--on must be proofs or expansion, not {on!r}")
    info.update(trees=len(items), skipped_over_max_nodes=skipped)
    probs: list[list[float]] = []
    logits: list[list[float]] = []  # --decode sums these
    with torch.no_grad():
        for b in DataLoader(graphs, batch_size=batch_size):
            b = b.to(dev)
            out = model(b).cpu()
            pr, lg = torch.sigmoid(out).tolist(), out.tolist()
            ptr = b.ptr.tolist()
            for j in range(len(ptr) - 1):
                probs.append(pr[ptr[j]:ptr[j + 1]])
                logits.append(lg[ptr[j]:ptr[j + 1]])
    frags: list[Fragment] = []
    positive_nodes = 0
    for (label, tree, old), par, pr, lg in zip(items, parents, probs, logits):
        if opts.decode:
            p = decode_inlined(par, lg)
        else:
            p = [x > opts.threshold for x in pr]
        positive_nodes += sum(p)
        pos = [i if old is None else old[i] for i, x in enumerate(p) if x]
        if old is not None:  # the model saw no syntax: a positive step's syntax children are its own
            nodes = tree.nodes
            pos += [c for i in pos for c in nodes[i].children if nodes[c].syntax]
            full: list = [None] * len(nodes)
            for i, x in enumerate(pr):
                full[old[i]] = x
            pr = full
        for f in fragments_from_positive(db, tree, pos, label, opts.strict):
            f.probs = pr
            frags.append(f)
    secs = time.perf_counter() - t0
    info.update(positive_nodes=positive_nodes, nodes=sum(len(g.label) for g in graphs),
                inference_seconds=round(secs, 2), proofs_per_second=round(len(items) / secs, 1) if secs else None)
    return frags, info


# ------------------------------------------------------------------ the extractors
def _gnn(db: Database, library: Library, opts: ExtractOptions) -> Proposals:
    frags, info = gnn_fragments(db, opts, labels=library.proofs if opts.held_out else None)
    if opts.fragments == "components":
        shapes = by_shape(frags)
    elif opts.fragments == "subshapes":
        shapes = by_sub_shape(frags)
    else:
        raise ExtractError(f"--fragments must be components or subshapes, not {opts.fragments!r}")
    info.update(fragments_mode=opts.fragments, shapes_proposed=len(shapes))
    return Proposals("gnn", shapes, info)


def _frequent(db: Database, library: Library, opts: ExtractOptions) -> Proposals:
    from .baselines.frequent import frequent_shapes

    shapes, info = frequent_shapes(db, library)
    return Proposals("frequent", shapes, info, stop_after_new=opts.top, batch=max(8, opts.top))


def _stitch(db: Database, library: Library, opts: ExtractOptions) -> Proposals:
    from .baselines.stitch import stitch_shapes

    shapes, info = stitch_shapes(db, library, iterations=opts.stitch_iterations or max(2 * opts.top, 20),
                                 max_arity=opts.stitch_arity, limit_proofs=opts.limit,
                                 sample_proofs=opts.sample, seed=opts.seed)
    return Proposals("stitch", shapes, info)


# method -> extractor: what it proposes for a database, given its library
EXTRACTORS: dict[str, Callable[[Database, Library, ExtractOptions], Proposals]] = {
    "gnn": _gnn, "frequent": _frequent, "stitch": _stitch}
METHODS = tuple(EXTRACTORS)


# ------------------------------------------------------------------ the command
def check_gnn_held_out(checkpoint: str, held: set[str]) -> None:
    """Refuse a GNN checkpoint whose dataset may have shown a held-out proof: its
    expansion dataset must have been built with (at least) these held-out theorems."""
    import torch

    from .expansion import held_out_key

    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    try:
        with open(os.path.join(ck["dataset"], "meta.json")) as fh:
            key = json.load(fh)["key"]
    except (OSError, KeyError, ValueError):
        raise ExtractError(f"{checkpoint}: cannot read the dataset it was trained on ({ck.get('dataset')})") from None
    if key["options"].get("held_out") != held_out_key(held):
        raise ExtractError(f"{checkpoint}: this GNN was trained on a dataset that did not hold out this split's "
                           "valid/test proofs; train it with `mmrefactor train DB --split SPLIT.json ...`")


def run_extract(db_path: str, out: str, method: str = "gnn", checkpoint: str | None = None, top: int = 20,
                on: str = "proofs", max_nodes: int = 1000, strict: bool = False, device: str | None = None,
                seed: int = 0, stitch_iterations: int | None = None, stitch_arity: int = 4,
                limit: int | None = None, split: str | None = None, threshold: float = 0.5,
                fragments: str = "subshapes", ranking: str = "proof-nodes", ray: str | None = None,
                sample: int | None = None, decode: bool = False) -> dict:
    """``mmrefactor extract``: read the database, run the chosen extractor
    (options: :class:`ExtractOptions`), rank and verify, write T.json atomically.

    ``ray``: build the library of the proofs' essential DAGs (one job per proof) on that Ray
    cluster (``auto`` or an address) instead of local processes; the result is the same.

    ``split``: a prover split file; the extractor then sees only the proofs
    of its training theorems (new theorems are still deduplicated against
    every statement of the database, held-out ones included).
    """
    from metamath.write import check_output_path, write_atomic

    opts = ExtractOptions(method, checkpoint, top, on, max_nodes, strict, device, seed, stitch_iterations,
                          stitch_arity, limit, threshold, fragments, ranking, sample=sample, decode=decode)

    check_output_path(out, [db_path])  # fail before the work, not after it
    if opts.method not in EXTRACTORS:
        raise ExtractError(f"unknown method {opts.method!r} (choose from {', '.join(METHODS)})")
    if opts.top < 1:
        raise ExtractError("--top must be at least 1")
    if opts.ranking not in RANKINGS:
        raise ExtractError(f"unknown ranking {opts.ranking!r} (choose from {', '.join(RANKINGS)})")
    if opts.sample is not None and (opts.method != "stitch" or opts.limit is not None or opts.sample < 1):
        raise ExtractError("--sample N (N >= 1) is stitch's, and excludes --limit")
    if opts.ranking == "confidence" and method != "gnn":
        raise ExtractError(f"--ranking confidence needs the gnn extractor's probabilities; {method} has none")
    if not 0.0 <= opts.threshold < 1.0:
        raise ExtractError("--threshold must be in [0, 1)")
    if opts.decode and (method != "gnn" or opts.threshold != 0.5):
        raise ExtractError("--decode is the gnn extractor's, and replaces --threshold")
    if opts.method == "gnn":
        if not opts.checkpoint:
            raise ExtractError("--method gnn needs --checkpoint (a checkpoint.pt from `mmrefactor train`)")
        if not os.path.exists(opts.checkpoint):
            raise ExtractError(f"{opts.checkpoint}: no such checkpoint")
    t0 = time.perf_counter()
    db = Database.from_file(db_path)
    only = None
    if split is not None:
        from provers.split import load_split

        s = load_split(split, db)
        held = set(s.valid) | set(s.test)
        if opts.method == "gnn":
            check_gnn_held_out(opts.checkpoint, held)
        only = [l for l in db.theorems() if l not in held]
        opts = replace(opts, held_out=True)
    library = Library.build(db, labels=only, ray=ray)
    info: dict = {"library_proofs": len(library.proofs), "library_essential_dag_nodes": library.nodes(),
                  "library_skipped": library.skipped}
    proposals = EXTRACTORS[opts.method](db, library, opts)
    info.update(proposals.info)
    res = extract(db, proposals, top=opts.top, library=library, seed=opts.seed, ranking=opts.ranking)
    res.info.update(info, ranking=opts.ranking)
    res.seconds = time.perf_counter() - t0
    data = res.as_json()
    write_atomic(out, json.dumps(data, indent=1) + "\n", [f.path for f in db.files])
    return data
