"""A proof tree as a graph: ``networkx.DiGraph`` and ``torch_geometric.data.Data``.

Why: the GNN and any graph analysis want a proof as nodes and edges, with the
raw facts (label, kind, expression) kept next to integer-ready fields that a
feature module maps to vocabulary ids. Both views are built from a
:class:`metamath.proof.ProofTree` (full or essential-only) and agree exactly:

* nodes: the tree's pre-order, root = 0 (a subtree is a contiguous range);
* edges: parent -> child, listed in the order of the child's index (edge
  ``k`` goes into node ``k + 1``); with ``both_directions=True`` the reverse
  child -> parent edges follow, in the same order, so edge ``k + n - 1`` is
  the reverse of edge ``k``;
* per node: ``label``, ``kind`` (a :class:`metamath.proof.Kind` value string)
  and ``kind_id`` (its index in ``KINDS``), ``expr`` (tuple of symbols,
  typecode first), ``arg_pos`` (position among the parent's children, 0 at
  the root), ``depth`` (0 at the root), ``syntax`` (typecode is a variable
  type);
* per edge: ``arg_pos`` of the child end and ``dir`` (0 = parent -> child,
  1 = child -> parent).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .proof import KINDS, Proof, ProofTree

if TYPE_CHECKING:
    import networkx
    import torch_geometric.data

    from .database import Database

__all__ = ["proof_tree", "edges", "to_networkx", "to_pyg"]

_KIND_ID = {k: i for i, k in enumerate(KINDS)}


def proof_tree(db: "Database", proof: "Proof | str", essential: bool = False,
               max_nodes: int | None = None) -> ProofTree:
    """The tree (or essential-only tree) of a :class:`Proof` or of a ``$p`` label
    (verified here); raises ``TreeTooLarge`` past ``max_nodes``."""
    if isinstance(proof, str):
        from .verify import check

        proof = check(db, proof, record=True)
    if essential:
        return proof.essential_tree(db, max_nodes=max_nodes)
    return proof.tree(db, max_nodes=max_nodes)


def edges(tree: ProofTree, both_directions: bool = False) -> tuple[list[int], list[int]]:
    """(sources, targets) in the documented edge order."""
    nodes = tree.nodes
    parents = [nodes[i].parent for i in range(1, len(nodes))]
    kids = list(range(1, len(nodes)))
    if both_directions:
        return parents + kids, kids + parents
    return parents, kids


def to_networkx(tree: ProofTree, both_directions: bool = False) -> "networkx.DiGraph":
    """The tree as a ``networkx.DiGraph`` (node ids = pre-order indices).

    Graph attributes: ``theorem``, ``essential``, ``both_directions``.
    """
    import networkx as nx

    g = nx.DiGraph(theorem=tree.theorem, essential=tree.essential, both_directions=both_directions)
    for i, n in enumerate(tree.nodes):
        g.add_node(i, label=n.label, kind=n.kind.value, kind_id=_KIND_ID[n.kind], expr=n.expr,
                   arg_pos=n.arg_pos, depth=n.depth, syntax=n.syntax)
    nodes = tree.nodes
    for i in range(1, len(nodes)):
        g.add_edge(nodes[i].parent, i, arg_pos=nodes[i].arg_pos, dir=0)
    if both_directions:
        for i in range(1, len(nodes)):
            g.add_edge(i, nodes[i].parent, arg_pos=nodes[i].arg_pos, dir=1)
    return g


def to_pyg(tree: ProofTree, both_directions: bool = False) -> "torch_geometric.data.Data":
    """The tree as a ``torch_geometric.data.Data``.

    Tensors: ``edge_index`` (long, [2, E]), ``edge_dir`` (long, [E]: 0 down,
    1 up), ``arg_pos``, ``depth``, ``kind_id`` (long, [N]), ``is_syntax``
    (bool, [N]); ``num_nodes``. Python attributes: ``label`` (list of str),
    ``expr`` (list of symbol tuples), ``theorem``, ``essential``.
    """
    import torch
    from torch_geometric.data import Data

    nodes = tree.nodes
    src, dst = edges(tree, both_directions)
    n_down = len(nodes) - 1
    edge_index = torch.tensor([src, dst], dtype=torch.long).reshape(2, len(src))
    edge_dir = torch.zeros(len(src), dtype=torch.long)
    edge_dir[n_down:] = 1
    return Data(
        edge_index=edge_index,
        edge_dir=edge_dir,
        num_nodes=len(nodes),
        arg_pos=torch.tensor([n.arg_pos for n in nodes], dtype=torch.long),
        depth=torch.tensor([n.depth for n in nodes], dtype=torch.long),
        kind_id=torch.tensor([_KIND_ID[n.kind] for n in nodes], dtype=torch.long),
        is_syntax=torch.tensor([n.syntax for n in nodes], dtype=torch.bool),
        label=[n.label for n in nodes],
        expr=[n.expr for n in nodes],
        theorem=tree.theorem,
        essential=tree.essential,
    )
