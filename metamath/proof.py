"""Proofs as data: one DAG type, one pre-order tree type, and the walks over them.

The verifier (``check(db, label, record=True)``) produces a :class:`Proof`:
``nodes`` in execution order (children before parents), each with the label
applied, the expression it proves and its children's node ids; steps that a
compressed proof reused are one shared node. Views on it:

* :meth:`Proof.tree` -- the fully expanded proof tree, a :class:`ProofTree`
  (what expansion, features, extraction and the graph views work on);
* :meth:`Proof.essential_tree` / :meth:`ProofTree.essential_view` /
  :meth:`Proof.essential` -- the tree, or the DAG, with syntax steps dropped
  (one rule, :func:`kept_children`);
* :meth:`Proof.dag` -- the canonical hash-consed DAG: identical subproofs are
  one node, even where a normal proof writes them out twice; it grows by
  :meth:`Proof.add` (rewriting builds new proofs this way);
* :meth:`Proof.rpn` / :meth:`ProofTree.rpn` -- a normal proof (reverse Polish
  order, :func:`postorder`), which ``metamath.verify.check_rpn`` re-checks.

A node is *syntax* when its expression's typecode is a variable type
(``wff``, ``class``, ``setvar`` in set.mm) and *essential* otherwise. Each
tree node also has a :class:`Kind`: ``$f``, ``$e``, syntax ``$a``, logical
``$a`` or ``$p``.

Node order of a :class:`ProofTree`: pre-order from the root (node 0), the
children of a node in the order of the applied assertion's mandatory
hypotheses. A subtree is therefore the contiguous range ``i .. i + size - 1``.
Node order of a :class:`Proof`: children before parents; ``dag()`` lists
nodes in the post-order in which a left-to-right walk of the tree first
meets them.

Trees of real proofs can be huge (set.mm's ``footex`` expands to 1.14 M
nodes); every expanding method takes ``max_nodes`` and raises
:class:`TreeTooLarge` before building anything bigger.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter
from typing import TYPE_CHECKING, Iterator

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
        return [nodes[i].label for i in postorder(root, lambda i: nodes[i].children)]

    def essential_view(self) -> tuple["ProofTree", list[int]]:
        """The tree without syntax nodes (see :func:`kept_children`) and, for each
        of its nodes, its index in this tree."""
        nodes = self.nodes
        kids = kept_children(nodes, 0, lambda i: not nodes[i].syntax)
        facts = attrgetter("label", "kind", "expr", "source", "syntax")
        return _build_tree(self.theorem, kids.__getitem__, kids[0] if nodes[0].syntax else [0], True,
                           lambda i: facts(nodes[i]))

    def to_proof(self) -> "Proof":
        """The tree as a :class:`Proof` (canonical hash-consed DAG, see :meth:`Proof.dag`)."""
        if self.essential:
            raise ValueError(f"{self.theorem}: the essential-only view is not a proof (syntax steps dropped)")
        return hash_cons(self.theorem, self.nodes, 0)


@dataclass
class Proof:
    """A proof as a DAG of steps, children before parents (see the module docstring).

    A canonical DAG (:meth:`dag`) grows by :meth:`add`, which hash-conses: a
    step with the same label and children as an existing node is that node.
    ``nodes`` is append-only: the label index and the expanded-tree sizes are
    kept as nodes are added.
    """

    theorem: str
    nodes: list[ProofNode]
    root: int
    _index: dict | None = field(default=None, init=False, repr=False, compare=False)
    _sizes: list[int] = field(default_factory=list, init=False, repr=False, compare=False)
    _by_label: dict | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.nodes)

    def add(self, label: str, children: tuple[int, ...], expr: tuple[str, ...]) -> int:
        """The id of the node applying ``label`` to ``children``, added when new."""
        index = self._index
        if index is None:
            index = self._index = {}
            for i, n in enumerate(self.nodes):
                index.setdefault((n.label, n.children), i)
        key = (label, children)
        i = index.get(key)
        if i is None:
            i = index[key] = len(self.nodes)
            self.nodes.append(ProofNode(label, expr, children))
            self._by_label = None
        return i

    def nodes_with(self, label: str) -> list[int]:
        """The nodes applying ``label`` (an index built on first use)."""
        if self._by_label is None:
            idx: dict[str, list[int]] = {}
            for i, n in enumerate(self.nodes):
                idx.setdefault(n.label, []).append(i)
            self._by_label = idx
        return self._by_label.get(label, [])

    def reachable(self) -> list[int]:
        """The ids of the nodes the root uses, in increasing order."""
        nodes = self.nodes
        seen = [False] * len(nodes)
        seen[self.root] = True
        for i in range(self.root, -1, -1):
            if seen[i]:
                for c in nodes[i].children:
                    seen[c] = True
        return [i for i, s in enumerate(seen) if s]

    def sizes(self) -> list[int]:
        """Expanded-tree size of every node (computed on the DAG, kept as it grows)."""
        size = self._sizes
        nodes = self.nodes
        for i in range(len(size), len(nodes)):
            size.append(1 + sum(size[c] for c in nodes[i].children))
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
        nodes = self.nodes
        return self._expand(db, lambda d: nodes[d].children, False)

    def essential_tree(self, db: "Database", max_nodes: int | None = None) -> ProofTree:
        """The expanded tree without syntax nodes (pre-order, root = 0)."""
        syn = db.syntax_typecodes
        if self.nodes[self.root].expr[0] in syn:
            raise ValueError(f"{self.theorem}: proves a syntax statement; its essential view is empty")
        if max_nodes is not None:
            n = self.essential_size(syn)
            if n > max_nodes:
                raise TreeTooLarge(self.theorem, n, max_nodes, "essential proof tree")
        kids = self._essential_children(syn)
        return self._expand(db, kids.__getitem__, True)

    def _essential_children(self, syntax_typecodes) -> dict[int, list[int]]:
        nodes = self.nodes
        return kept_children(nodes, self.root, lambda d: nodes[d].expr[0] not in syntax_typecodes)

    def _expand(self, db: "Database", children, essential: bool) -> ProofTree:
        dag = self.nodes
        syntax_tc = db.syntax_typecodes
        kinds: dict[str, Kind] = {}

        def facts(d: int) -> tuple:
            n = dag[d]
            k = kinds.get(n.label)
            if k is None:
                k = kinds[n.label] = node_kind(db, n.label)
            return n.label, k, n.expr, d, n.expr[0] in syntax_tc

        return _build_tree(self.theorem, children, [self.root], essential, facts)[0]

    def essential(self, syntax_typecodes) -> tuple["Proof", list[int]]:
        """The DAG without syntax steps: one node per essential node the root
        reaches, its children the nearest essential nodes below it (no
        hash-consing: nodes that differ only in syntax stay apart), and, per
        node, the id of the node of this DAG it comes from."""
        kids = self._essential_children(syntax_typecodes)
        order = list(dag_postorder(self.root, kids.__getitem__))
        new = {d: i for i, d in enumerate(order)}
        nodes = self.nodes
        out = [ProofNode(nodes[d].label, nodes[d].expr, tuple(new[c] for c in kids[d])) for d in order]
        return Proof(self.theorem, out, new[self.root]), order

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
        nodes = self.nodes
        return [nodes[d].label for d in postorder(self.root, lambda d: nodes[d].children)]


# ------------------------------------------------------------------ walks
def postorder(root, children) -> Iterator:
    """Every node of the tree at ``root`` expanded, children before parents
    (reverse Polish order); a node shared in a DAG comes once per use.
    ``children(x)``: the children of ``x`` in order (ids, or nodes)."""
    stack = [(root, False)]
    while stack:
        x, done = stack.pop()
        kids = children(x)
        if done or not kids:
            yield x
            continue
        stack.append((x, True))
        for c in reversed(kids):
            stack.append((c, False))


def dag_postorder(root: int, children) -> Iterator[int]:
    """Every node reachable from ``root`` once, children before parents, in the
    order in which a left-to-right walk of the expanded tree first finishes them."""
    done_ids: set[int] = set()
    stack = [(root, False)]
    while stack:
        d, done = stack.pop()
        if d in done_ids:
            continue
        kids = children(d)
        if not done and kids:
            stack.append((d, True))
            for c in reversed(kids):
                if c not in done_ids:
                    stack.append((c, False))
            continue
        done_ids.add(d)
        yield d


def kept_children(nodes, root: int, keep) -> dict[int, list[int]]:
    """The view of a proof (tree or DAG) without the nodes ``keep`` rejects:
    for each kept node ``root`` reaches, the nearest kept nodes below it, in
    order (a dropped node's children hang from its nearest kept ancestor).
    The root is always listed (its kept descendants when it is dropped)."""
    below: dict[int, tuple[int, ...]] = {}
    out: dict[int, list[int]] = {}
    for i in dag_postorder(root, lambda d: nodes[d].children):
        kids: list[int] = []
        for c in nodes[i].children:
            kids.extend(below[c])
        if keep(i):
            below[i] = (i,)
            out[i] = kids
        else:
            below[i] = tuple(kids)
            if i == root:
                out[i] = kids
    return out


def _build_tree(theorem: str, children, roots: list[int], essential: bool, facts) -> tuple[ProofTree, list[int]]:
    """The tree expanded from ``roots`` by ``children`` in pre-order, node facts
    from ``facts(id) -> (label, kind, expr, source, syntax)``, and each node's id."""
    out: list[TreeNode] = []
    ids: list[int] = []
    stack = [(r, -1, 0, 0) for r in reversed(roots)]
    while stack:
        d, p, pos, depth = stack.pop()
        label, kind, expr, source, syntax = facts(d)
        me = len(out)
        out.append(TreeNode(label, kind, expr, [], p, pos, depth, source, syntax))
        ids.append(d)
        if p >= 0:
            out[p].children.append(me)
        ch = children(d)
        for j in range(len(ch) - 1, -1, -1):
            stack.append((ch[j], me, j, depth + 1))
    return ProofTree(theorem, out, essential), ids


def show_lines(proof: Proof, kinds: dict[str, str], syntax_typecodes, essential_only: bool = True) -> list[str]:
    """The proof as metamath's ``show proof`` lays it out: one numbered line a
    step, hypotheses before the step that uses them, indented by depth.

    ``kinds`` maps a label to its statement kind (``f``/``e``/``a``/``p``).
    """
    nodes = proof.nodes
    roots = [proof.root]
    if essential_only:
        kids = proof._essential_children(syntax_typecodes).__getitem__
        if nodes[proof.root].expr[0] in syntax_typecodes:
            roots = kids(proof.root)
    else:
        kids = lambda d: nodes[d].children  # noqa: E731
    out: list[str] = []
    numbers: list[int] = []  # line numbers of the steps not yet used, as an RPN stack
    for r in roots:
        for d, depth in postorder((r, 0), lambda x: [(c, x[1] + 1) for c in kids(x[0])]):
            k = len(numbers) - len(kids(d))
            hyps = ",".join(map(str, numbers[k:]))
            del numbers[k:]
            node = nodes[d]
            out.append(f"{len(out) + 1:>5} {hyps:>12} {'  ' * depth}{node.label:<12} "
                       f"${kinds.get(node.label, '?')} {' '.join(node.expr)}")
            numbers.append(len(out))
    return out


def hash_cons(theorem: str, nodes, root: int) -> Proof:
    """One node per distinct subproof (same label, same children), listed in the
    post-order in which a left-to-right walk from ``root`` first meets them.

    ``nodes`` may be a tree's or a DAG's: anything with ``label``, ``expr`` and
    ``children`` (indices into ``nodes``).
    """
    out = Proof(theorem, [], -1)
    new: dict[int, int] = {}
    for d in dag_postorder(root, lambda d: nodes[d].children):
        n = nodes[d]
        new[d] = out.add(n.label, tuple(new[c] for c in n.children), n.expr)
    out.root = new[root]
    return out
