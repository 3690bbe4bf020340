"""Proofs as data: a DAG of steps, its expanded tree, and views on both.

The verifier (``check(db, label, record=True)``) produces a :class:`Proof`:
``nodes`` in execution order (children before parents), each with the label
applied, the expression it proves and its children's node ids. Steps that a
compressed proof saved with ``Z`` and reused are one shared node, so the
object is a DAG; :meth:`Proof.tree` expands it into the full proof tree that
later stages (expansion, features, matching) work on.

A node is *syntax* when its expression's typecode is a variable type
(``wff``, ``class``, ``setvar`` in set.mm) and *essential* otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ProofNode:
    label: str
    expr: tuple[str, ...]
    children: tuple[int, ...]


@dataclass
class Proof:
    theorem: str
    nodes: list[ProofNode]
    root: int

    def tree_size(self) -> int:
        """Number of nodes of the fully expanded tree (computed on the DAG)."""
        size = [0] * len(self.nodes)
        for i, n in enumerate(self.nodes):
            size[i] = 1 + sum(size[c] for c in n.children)
        return size[self.root]

    def essential_size(self, syntax_typecodes) -> int:
        """Nodes of the expanded tree whose typecode is not a variable type."""
        size = [0] * len(self.nodes)
        for i, n in enumerate(self.nodes):
            own = 0 if n.expr[0] in syntax_typecodes else 1
            size[i] = own + sum(size[c] for c in n.children)
        return size[self.root]


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
