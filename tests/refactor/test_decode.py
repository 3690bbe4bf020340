"""Structured decoding: the best-scoring inlined-theorem-shaped node set, checked
against brute force on random trees and on the labels of real examples
(tests/refactor/test_expansion.py); and its sum-product twin, the tree CRF's
log-partition and loss, against brute-force enumeration."""
import itertools
import math
import random

import torch
from torch_geometric.data import Batch, Data

from refactor.decode import decode_batch, decode_inlined, inlined_log_partition, structured_loss


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


def _graph(parent: list[int]) -> Data:
    n = len(parent)
    ei = torch.tensor([parent[1:], list(range(1, n))], dtype=torch.long) if n > 1 else torch.zeros(2, 0, dtype=torch.long)
    return Data(edge_index=ei, num_nodes=n)


def _shaped_sets(parent: list[int]) -> list[tuple[bool, ...]]:
    return [s for s in itertools.product([False, True], repeat=len(parent)) if _shaped(parent, list(s))]


def test_log_partition_and_its_gradient_match_enumeration_on_random_batches():
    rng = random.Random(1)
    for _ in range(40):
        parents = [_random_tree(rng, rng.randint(1, 8)) for _ in range(rng.randint(1, 4))]
        batch = Batch.from_data_list([_graph(p) for p in parents])
        logits = torch.tensor([rng.uniform(-3, 3) for _ in range(batch.num_nodes)], dtype=torch.double,
                              requires_grad=True)
        got = inlined_log_partition(batch, logits)
        got.sum().backward()
        off = 0
        for j, parent in enumerate(parents):
            lg = logits[off : off + len(parent)].tolist()
            sets = _shaped_sets(parent)
            scores = [sum(l for l, c in zip(lg, s) if c) for s in sets]
            z = math.log(sum(math.exp(x) for x in scores))
            assert abs(float(got[j]) - z) < 1e-9
            for v in range(len(parent)):  # d log Z / d logit = P(v in the set)
                marginal = sum(math.exp(x - z) for x, s in zip(scores, sets) if s[v])
                assert abs(float(logits.grad[off + v]) - marginal) < 1e-9
            off += len(parent)


def test_structured_loss_is_the_true_sets_negative_log_likelihood():
    parent = [-1, 0, 1, 1, 0, 4]
    gold = [False, True, True, True, False, False]
    d = _graph(parent)
    d.y = torch.tensor(gold, dtype=torch.double)
    batch = Batch.from_data_list([d])
    logits = torch.tensor([-2.0, 3.0, 2.0, -0.5, -3.0, 0.4], dtype=torch.double)
    sets = _shaped_sets(parent)
    scores = {s: sum(l for l, c in zip(logits.tolist(), s) if c) for s in sets}
    p_gold = math.exp(scores[tuple(gold)]) / sum(math.exp(x) for x in scores.values())
    assert abs(float(structured_loss(batch, logits, reduction="sum")) + math.log(p_gold)) < 1e-9
    assert abs(float(structured_loss(batch, logits)) * len(parent) + math.log(p_gold)) < 1e-9
    sure = torch.tensor([20.0 if g else -20.0 for g in gold], dtype=torch.double)
    assert 0 <= float(structured_loss(batch, sure, reduction="sum")) < 1e-6
