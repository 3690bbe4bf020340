"""Proofs as data: a DAG of steps, its expanded tree, and views on both.

The verifier (``check(db, label, record=True)``) produces a :class:`Proof`:
``nodes`` in execution order (children before parents), each with the label
applied, the expression it proves and its children's node ids. Steps that a
compressed proof saved with ``Z`` and reused are one shared node, so the
object is a DAG. Views on it:

* :meth:`Proof.tree` -- the fully expanded proof tree as a
  :class:`ProofTree` (what expansion, features and matching work on);
* :meth:`Proof.essential_tree` -- the same tree with syntax steps dropped;
* :meth:`Proof.dag` -- the canonical hash-consed DAG: identical subproofs are
  one node, even where a normal (uncompressed) proof writes them out twice;
* :meth:`Proof.rpn` / :meth:`ProofTree.rpn` -- the labels of a normal proof
  (reverse Polish order), which ``metamath.verify.check_rpn`` re-checks.

A node is *syntax* when its expression's typecode is a variable type
(``wff``, ``class``, ``setvar`` in set.mm) and *essential* otherwise. Each
tree node also has a :class:`Kind`: ``$f``, ``$e``, syntax ``$a``, logical
``$a`` or ``$p``.

Node order of a :class:`ProofTree`: pre-order from the root (node 0), the
children of a node in the order of the applied assertion's mandatory
hypotheses (the order a proof pushes them). A subtree is therefore the
contiguous range ``i .. i + size - 1``. Node order of a :class:`Proof` (and of
:meth:`Proof.dag`): children before parents; ``dag()`` lists nodes in the
post-order in which a left-to-right walk of the tree first meets them.

Trees of real proofs can be huge (set.mm's ``footex`` expands to 1.14 M
nodes); every expanding method takes ``max_nodes`` and raises
:class:`TreeTooLarge` before building anything bigger.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .database import Database


@dataclass(slots=True)
class ProofNode:
    label: str
    expr: tuple[str, ...]
    children: tuple[int, ...]


class Kind(StrEnum):
    """What a proof step applies. ``KINDS.index(kind)`` is a stable integer id."""

    FLOATING = "$f"     # a variable-type hypothesis: a leaf of a syntax subtree
    ESSENTIAL = "$e"    # a logical hypothesis of the theorem
    SYNTAX = "syntax $a"  # a syntax axiom: builds a term (wi, wn, cv, ...)
    AXIOM = "$a"        # a logical axiom or definition
    THEOREM = "$p"      # an earlier theorem (syntax theorems such as weq included)


KINDS: tuple[Kind, ...] = tuple(Kind)


def node_kind(db: "Database", label: str) -> Kind:
    """The :class:`Kind` of a step that applies ``label``."""
    st = db.statements[label]
    k = st.kind
    if k == "f":
        return Kind.FLOATING
    if k == "e":
        return Kind.ESSENTIAL
    if k == "p":
        return Kind.THEOREM
    return Kind.SYNTAX if st.expr[0] in db.syntax_typecodes else Kind.AXIOM


class TreeTooLarge(ValueError):
    """An expanded proof tree would exceed the caller's ``max_nodes``."""

    def __init__(self, theorem: str, size: int, max_nodes: int, what: str = "expanded proof tree"):
        self.theorem = theorem
        self.size = size
        self.max_nodes = max_nodes
        super().__init__(f"{theorem}: {what} has {size:,} nodes, more than max_nodes={max_nodes:,}")


@dataclass(slots=True)
class TreeNode:
    """One node of a :class:`ProofTree`.

    ``children``/``parent`` are indices into ``ProofTree.nodes`` (``parent``
    is -1 at the root); ``arg_pos`` is the position among the parent's
    children (0 at the root); ``depth`` is 0 at the root; ``source`` is the id
    of the :class:`Proof` node this node expands; ``syntax`` tells whether
    the typecode is a variable type.
    """

    label: str
    kind: Kind
    expr: tuple[str, ...]
    children: list[int]
    parent: int
    arg_pos: int
    depth: int
    source: int
    syntax: bool


@dataclass
class ProofTree:
    """An expanded proof tree, nodes in pre-order (root = node 0).

    ``essential=True`` marks the essential-only view: syntax nodes dropped,
    each node's children being the nearest essential nodes below it (for an
    assertion: its ``$e`` hypotheses' proofs, in order).
    """

    theorem: str
    nodes: list[TreeNode]
    essential: bool = False

    def __len__(self) -> int:
        return len(self.nodes)

    def subtree_end(self, i: int) -> int:
        """One past the last node of the subtree at ``i`` (pre-order is contiguous)."""
        nodes = self.nodes
        while nodes[i].children:
            i = nodes[i].children[-1]
        return i + 1

    def rpn(self, root: int = 0) -> list[str]:
        """The labels of the subtree at ``root`` in reverse Polish order: a normal proof."""
        if self.essential:
            raise ValueError(f"{self.theorem}: the essential-only view is not a proof (syntax steps dropped)")
        nodes = self.nodes
        out: list[str] = []
        stack: list[tuple[int, bool]] = [(root, False)]
        while stack:
            i, done = stack.pop()
            if done or not nodes[i].children:
                out.append(nodes[i].label)
                continue
            stack.append((i, True))
            for c in reversed(nodes[i].children):
                stack.append((c, False))
        return out

    def to_proof(self) -> "Proof":
        """The tree as a :class:`Proof` (canonical hash-consed DAG, see :meth:`Proof.dag`)."""
        if self.essential:
            raise ValueError(f"{self.theorem}: the essential-only view is not a proof (syntax steps dropped)")
        return hash_cons(self.theorem, self.nodes, 0)


@dataclass
class Proof:
    theorem: str
    nodes: list[ProofNode]
    root: int

    def sizes(self) -> list[int]:
        """Expanded-tree size of every node (computed on the DAG)."""
        size = [0] * len(self.nodes)
        for i, n in enumerate(self.nodes):
            size[i] = 1 + sum(size[c] for c in n.children)
        return size

    def tree_size(self) -> int:
        """Number of nodes of the fully expanded tree (computed on the DAG)."""
        return self.sizes()[self.root]

    def essential_size(self, syntax_typecodes) -> int:
        """Nodes of the expanded tree whose typecode is not a variable type."""
        size = [0] * len(self.nodes)
        for i, n in enumerate(self.nodes):
            own = 0 if n.expr[0] in syntax_typecodes else 1
            size[i] = own + sum(size[c] for c in n.children)
        return size[self.root]

    def tree(self, db: "Database", max_nodes: int | None = None) -> ProofTree:
        """The fully expanded proof tree (pre-order, root = 0)."""
        if max_nodes is not None:
            n = self.tree_size()
            if n > max_nodes:
                raise TreeTooLarge(self.theorem, n, max_nodes)
        return self._expand(db, essential=False)

    def essential_tree(self, db: "Database", max_nodes: int | None = None) -> ProofTree:
        """The expanded tree without syntax nodes (pre-order, root = 0)."""
        if self.nodes[self.root].expr[0] in db.syntax_typecodes:
            raise ValueError(f"{self.theorem}: proves a syntax statement; its essential view is empty")
        if max_nodes is not None:
            n = self.essential_size(db.syntax_typecodes)
            if n > max_nodes:
                raise TreeTooLarge(self.theorem, n, max_nodes, "essential proof tree")
        return self._expand(db, essential=True)

    def _expand(self, db: "Database", essential: bool) -> ProofTree:
        dag = self.nodes
        syntax_tc = db.syntax_typecodes
        kinds: dict[str, Kind] = {}
        out: list[TreeNode] = []
        # (DAG id, parent tree index, depth); children pushed in reverse so they pop in order
        stack: list[tuple[int, int, int]] = [(self.root, -1, 0)]
        while stack:
            d, p, depth = stack.pop()
            n = dag[d]
            syn = n.expr[0] in syntax_tc
            if essential and syn:
                me, below = p, depth  # dropped: its children hang from the nearest kept ancestor
            else:
                k = kinds.get(n.label)
                if k is None:
                    k = kinds[n.label] = node_kind(db, n.label)
                me = len(out)
                if p >= 0:
                    siblings = out[p].children
                    out.append(TreeNode(n.label, k, n.expr, [], p, len(siblings), depth, d, syn))
                    siblings.append(me)
                else:
                    out.append(TreeNode(n.label, k, n.expr, [], -1, 0, depth, d, syn))
                below = depth + 1
            ch = n.children
            for j in range(len(ch) - 1, -1, -1):
                stack.append((ch[j], me, below))
        return ProofTree(self.theorem, out, essential)

    def dag(self) -> "Proof":
        """The canonical hash-consed DAG: one node per distinct subproof.

        Two nodes are the same when they apply the same label to the same
        children; nodes are listed in the post-order in which a left-to-right
        walk of the expanded tree first meets them, so two proofs with the
        same tree give equal DAGs.
        """
        return hash_cons(self.theorem, self.nodes, self.root)

    def rpn(self, max_nodes: int | None = None) -> list[str]:
        """The labels of the expanded tree in reverse Polish order: a normal proof
        (``metamath.verify.check_rpn`` checks it)."""
        if max_nodes is not None:
            n = self.tree_size()
            if n > max_nodes:
                raise TreeTooLarge(self.theorem, n, max_nodes, "normal proof")
        dag = self.nodes
        out: list[str] = []
        stack: list[tuple[int, bool]] = [(self.root, False)]
        while stack:
            d, done = stack.pop()
            n = dag[d]
            if done or not n.children:
                out.append(n.label)
                continue
            stack.append((d, True))
            for c in reversed(n.children):
                stack.append((c, False))
        return out


def show_lines(proof: Proof, kinds: dict[str, str], syntax_typecodes, essential_only: bool = True) -> list[str]:
    """The proof as metamath's ``show proof`` lays it out: one numbered line a
    step, hypotheses before the step that uses them, indented by depth.

    ``kinds`` maps a label to its statement kind (``f``/``e``/``a``/``p``).
    """
    lines: list[tuple[int, int, str, str, str, list[int]]] = []
    nodes = proof.nodes
    # iterative post-order walk of the expanded tree
    stack: list[tuple[int, int, bool]] = [(proof.root, 0, False)]
    numbers: list[int] = []
    out: list[str] = []
    counter = 0
    pending: list[list[int]] = [[]]
    while stack:
        nid, depth, done = stack.pop()
        node = nodes[nid]
        shown = not (essential_only and node.expr[0] in syntax_typecodes)
        if not done:
            stack.append((nid, depth, True))
            pending.append([])
            for c in reversed(node.children):
                stack.append((c, depth + 1 if shown else depth, False))
            continue
        kids = pending.pop()
        if not shown:
            pending[-1].extend(kids)
            continue
        counter += 1
        hyps = ",".join(str(k) for k in kids)
        out.append(f"{counter:>5} {hyps:>12} {'  ' * depth}{node.label:<12} ${kinds.get(node.label, '?')} "
                   f"{' '.join(node.expr)}")
        pending[-1].append(counter)
    return out


def hash_cons(theorem: str, nodes, root: int) -> Proof:
    """One node per distinct subproof (same label, same children), listed in the
    post-order in which a left-to-right walk from ``root`` first meets them.

    ``nodes`` may be a tree's or a DAG's: anything with ``label``, ``expr`` and
    ``children`` (indices into ``nodes``).
    """
    new: dict[int, int] = {}
    index: dict[tuple, int] = {}
    out: list[ProofNode] = []
    stack: list[tuple[int, bool]] = [(root, False)]
    while stack:
        d, done = stack.pop()
        if d in new:
            continue
        n = nodes[d]
        if not done and n.children:
            stack.append((d, True))
            for c in reversed(n.children):
                if c not in new:
                    stack.append((c, False))
            continue
        kids = tuple(new[c] for c in n.children)
        key = (n.label, kids)
        j = index.get(key)
        if j is None:
            j = index[key] = len(out)
            out.append(ProofNode(n.label, n.expr, kids))
        new[d] = j
    return Proof(theorem, out, new[root])
