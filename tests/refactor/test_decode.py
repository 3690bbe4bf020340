"""Structured decoding: the best-scoring inlined-theorem-shaped node set, checked
against brute force on random trees and on the labels of real examples
(tests/refactor/test_expansion.py)."""
import itertools
import random

import torch
from torch_geometric.data import Batch, Data

from refactor.decode import decode_batch, decode_inlined


def _shaped(parent: list[int], chosen: list[bool]) -> bool:
    """One connected subtree, each chosen node with all its children chosen or none."""
    n = len(parent)
    children = [[c for c in range(n) if parent[c] == i] for i in range(n)]
    tops = [i for i in range(n) if chosen[i] and (parent[i] < 0 or not chosen[parent[i]])]
    return len(tops) == 1 and all(all(chosen[c] for c in children[i]) or not any(chosen[c] for c in children[i])
                                  for i in range(n) if chosen[i])


def _random_tree(rng: random.Random, n: int) -> list[int]:
    return [-1] + [rng.randrange(i) for i in range(1, n)]  # a parent before its child, as in pre-order


def test_decoding_finds_the_best_shaped_set_on_random_trees():
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 9)
        parent = _random_tree(rng, n)
        logits = [rng.uniform(-3, 3) for _ in range(n)]
        got = decode_inlined(parent, logits)
        assert _shaped(parent, got)
        best = max(sum(l for l, c in zip(logits, s) if c)
                   for s in itertools.product([False, True], repeat=n) if _shaped(parent, list(s)))
        assert abs(sum(l for l, c in zip(logits, got) if c) - best) < 1e-9


def test_decoding_drops_a_stray_positive_and_fills_a_hole():
    #        0
    #      /   \
    #     1     4
    #    / \     \
    #   2   3     5
    parent = [-1, 0, 1, 1, 0, 4]
    # thresholding: {1, 2, 5} (3 missed, 5 a stray); the best shape: 1 with both children
    logits = [-2.0, 3.0, 2.0, -0.5, -3.0, 0.4]
    assert [x > 0 for x in logits] == [False, True, True, False, False, True]
    assert decode_inlined(parent, logits) == [False, True, True, True, False, False]
    # all negative still gives one node: an example always has an inlined theorem
    assert sum(decode_inlined(parent, [-1.0, -5, -5, -5, -0.5, -5])) == 1


def test_decode_batch_decodes_each_graph_on_its_own():
    def g(parent, logits):
        n = len(parent)
        ei = torch.tensor([[p for p in parent[1:]], list(range(1, n))], dtype=torch.long)
        return Data(edge_index=ei, num_nodes=n), logits
    graphs = [g([-1, 0, 1, 1, 0, 4], [-2.0, 3.0, 2.0, -0.5, -3.0, 0.4]), g([-1], [-1.0]), g([-1, 0], [1.0, 1.0])]
    batch = Batch.from_data_list([d for d, _ in graphs])
    out = decode_batch(batch, torch.tensor([x for _, l in graphs for x in l]))
    want = [decode_inlined([-1, 0, 1, 1, 0, 4], graphs[0][1]), [True], [True, True]]
    assert out.tolist() == [x for w in want for x in w]
