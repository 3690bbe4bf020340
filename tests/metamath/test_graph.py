"""Graph views of proof trees: networkx and torch-geometric, same nodes and edges."""
from __future__ import annotations

import networkx as nx
import pytest
import torch
from torch_geometric.data import Batch

from metamath import check
from metamath.graph import edges, proof_tree, to_networkx, to_pyg
from metamath.proof import KINDS, TreeTooLarge


@pytest.fixture(scope="module")
def trees(ql):
    labels = ql.theorems()[::40]
    return [proof_tree(ql, l) for l in labels]


def test_networkx_nodes_edges_and_order(ql, trees):
    for tree in trees:
        n = len(tree)
        g = to_networkx(tree)
        assert g.number_of_nodes() == n and g.number_of_edges() == n - 1
        assert nx.is_arborescence(g)
        assert list(nx.dfs_preorder_nodes(g, 0)) == list(range(n))  # pre-order, root = 0
        assert g.graph["theorem"] == tree.theorem
        for i, node in enumerate(tree.nodes):
            a = g.nodes[i]
            assert (a["label"], a["expr"], a["arg_pos"], a["depth"], a["syntax"]) == \
                   (node.label, node.expr, node.arg_pos, node.depth, node.syntax)
            assert a["kind"] == node.kind.value and KINDS[a["kind_id"]] == node.kind
            # successors in argument order
            assert sorted(g.successors(i), key=lambda c: g.edges[i, c]["arg_pos"]) == node.children
        for u, v, d in g.edges(data=True):
            assert d["dir"] == 0 and tree.nodes[v].parent == u and d["arg_pos"] == tree.nodes[v].arg_pos


def test_networkx_both_directions(trees):
    tree = max(trees, key=len)
    g = to_networkx(tree, both_directions=True)
    assert g.number_of_edges() == 2 * (len(tree) - 1)
    for u, v, d in g.edges(data=True):
        assert g.has_edge(v, u)
        assert d["dir"] == (0 if tree.nodes[v].parent == u else 1)


def test_pyg_matches_tree_and_networkx(ql, trees):
    for tree in trees:
        n = len(tree)
        data = to_pyg(tree)
        assert data.num_nodes == n
        assert data.edge_index.shape == (2, n - 1) and data.edge_index.dtype == torch.long
        # edge k goes into node k + 1, from its parent
        assert data.edge_index[1].tolist() == list(range(1, n))
        assert data.edge_index[0].tolist() == [tree.nodes[i].parent for i in range(1, n)]
        assert data.arg_pos.tolist() == [x.arg_pos for x in tree.nodes]
        assert data.depth.tolist() == [x.depth for x in tree.nodes]
        assert data.is_syntax.dtype == torch.bool
        assert int(data.is_syntax.sum()) == n - sum(1 for x in tree.nodes if not x.syntax)
        assert [KINDS[k] for k in data.kind_id.tolist()] == [x.kind for x in tree.nodes]
        assert data.label == [x.label for x in tree.nodes] and data.expr == [x.expr for x in tree.nodes]
        g = to_networkx(tree)
        assert set(map(tuple, data.edge_index.t().tolist())) == set(g.edges())
        proof = check(ql, tree.theorem, record=True)
        assert data.label[0] == proof.nodes[proof.root].label


def test_pyg_both_directions(trees):
    tree = max(trees, key=len)
    n = len(tree)
    data = to_pyg(tree, both_directions=True)
    assert data.edge_index.shape == (2, 2 * (n - 1))
    down, up = data.edge_index[:, : n - 1], data.edge_index[:, n - 1 :]
    assert torch.equal(up, down.flip(0))  # edge k + n - 1 reverses edge k
    assert data.edge_dir.tolist() == [0] * (n - 1) + [1] * (n - 1)
    src, dst = edges(tree, both_directions=True)
    assert data.edge_index.tolist() == [src, dst]


def test_essential_only_graphs(ql):
    label = max(ql.theorems()[::20], key=lambda l: check(ql, l, record=True).tree_size())
    proof = check(ql, label, record=True)
    tree = proof_tree(ql, proof, essential=True)
    data = to_pyg(tree)
    assert data.num_nodes == proof.essential_size(ql.syntax_typecodes) < proof.tree_size()
    assert not data.is_syntax.any() and data.essential
    g = to_networkx(tree)
    assert nx.is_arborescence(g) and g.graph["essential"]
    assert all(not ql.is_syntax(a["label"]) for _, a in g.nodes(data=True))


def test_batching_keeps_offsets_and_raw_lists(trees):
    a, b = trees[0], trees[1]
    batch = Batch.from_data_list([to_pyg(a), to_pyg(b)])
    assert batch.num_nodes == len(a) + len(b)
    assert batch.edge_index[:, len(a) - 1 :].min() >= len(a)  # second graph's edges shifted
    assert batch.label == [[x.label for x in a.nodes], [x.label for x in b.nodes]]


def test_max_nodes_passes_through(ql):
    label = max(ql.theorems()[::20], key=lambda l: check(ql, l, record=True).tree_size())
    with pytest.raises(TreeTooLarge):
        proof_tree(ql, label, max_nodes=5)
