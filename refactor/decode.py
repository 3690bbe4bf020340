"""Structured decoding of the node classifier: the most probable set of nodes
that has the shape of an inlined theorem.

Every expansion example's positive nodes (:mod:`refactor.expansion`) form one
connected subtree in which each positive node has either all its children
positive (a step of the inlined proof) or none (the root of an argument
subproof, whose insides are negative); this holds on full trees and on
essential-step views alike. Thresholding each node at 0.5 ignores that, and
proof accuracy counts a single stray node as a miss. Among the sets of that
shape, the one with the largest sum of logits is the most probable under the
classifier's independent node probabilities, since
log P(S) = const + sum over v in S of logit(v); a bottom-up pass over the
tree finds it in linear time.

Why: the shape is known before any prediction, so using it is decoding, not
learning; it is reported beside the thresholded figure, never instead of it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def decode_inlined(parent: list[int], logits: list[float]) -> list[bool]:
    """The positive set of largest total logit among one-connected-subtree,
    children-all-or-none sets (never empty). ``parent[i]``: node i's parent,
    -1 for the root; parents come before their children (pre-order)."""
    n = len(logits)
    if n == 0:
        return []
    children: list[list[int]] = [[] for _ in range(n)]
    for i in range(1, n):
        if parent[i] >= 0:
            children[parent[i]].append(i)
    best = [0.0] * n      # best total of a set topped at i
    take = [False] * n    # whether that set goes on into i's children
    for i in range(n - 1, -1, -1):
        below = sum(best[c] for c in children[i])
        take[i] = bool(children[i]) and below > 0
        best[i] = logits[i] + (below if take[i] else 0.0)
    top = max(range(n), key=best.__getitem__)
    out = [False] * n
    stack = [top]
    while stack:
        v = stack.pop()
        out[v] = True
        if take[v]:
            stack.extend(children[v])
    return out


def decode_batch(batch, logits: torch.Tensor) -> torch.Tensor:
    """:func:`decode_inlined` on every graph of a torch-geometric batch of
    expansion graphs (edges parent -> child); a bool tensor like ``logits``."""
    lg = logits.detach().cpu().tolist()
    ptr = batch.ptr.tolist()
    parent = batch_parents(batch).tolist()
    out: list[bool] = []
    for j in range(len(ptr) - 1):
        lo, hi = ptr[j], ptr[j + 1]
        out += decode_inlined([p - lo if p >= 0 else -1 for p in parent[lo:hi]], lg[lo:hi])
    return torch.tensor(out, dtype=torch.bool, device=logits.device)


def batch_parents(batch) -> torch.Tensor:
    """Each node's parent in a batch of expansion graphs (edges parent -> child), -1 at a root."""
    parent = torch.full((batch.num_nodes,), -1, dtype=torch.long, device=batch.edge_index.device)
    if batch.edge_index.numel():
        parent[batch.edge_index[1]] = batch.edge_index[0]
    return parent


def tree_levels(batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Each node's parent (-1 at a root) and the nodes of a batch of expansion graphs by depth, deepest
    last: the order in which the sum over inlined-theorem-shaped sets runs bottom-up."""
    n = batch.num_nodes
    dev = batch.edge_index.device
    parent = batch_parents(batch)
    depth = torch.zeros(n, dtype=torch.long, device=dev)
    has_parent = parent >= 0
    while True:  # one pass per level of the deepest tree
        nxt = torch.where(has_parent, depth[parent.clamp(min=0)] + 1, 0)
        if torch.equal(nxt, depth):
            break
        depth = nxt
    return parent, [(depth == d).nonzero().flatten() for d in range(int(depth.max()) + 1 if n else 0)]


def inlined_log_partition(batch, logits: torch.Tensor) -> torch.Tensor:
    """Per graph, log of the sum over all inlined-theorem-shaped sets S of exp(sum of logits over S):
    the sum-product twin of :func:`decode_inlined`'s max. Differentiable; its gradient with respect to
    a node's logit is the probability that the node lies in the set."""
    parent, levels = tree_levels(batch)
    n = logits.numel()
    has_child = torch.zeros(n, dtype=torch.bool, device=logits.device)
    has_child[parent[parent >= 0]] = True
    below = logits.new_zeros(n)  # per node: sum over its children of their log-sums
    tops, where = [], []
    for idx in reversed(levels):
        a = logits[idx] + torch.where(has_child[idx], F.softplus(below[idx]), 0.0)
        tops.append(a)
        where.append(idx)
        p = parent[idx]
        inner = p >= 0
        below = below.index_add(0, p[inner], a[inner])
    a, idx = torch.cat(tops), torch.cat(where)
    g = batch.batch[idx]
    top = torch.full((batch.num_graphs,), float("-inf"), dtype=logits.dtype, device=logits.device)
    top = top.scatter_reduce(0, g, a.detach(), "amax")
    total = logits.new_zeros(batch.num_graphs).index_add(0, g, torch.exp(a - top[g]))
    return top + torch.log(total)


def structured_loss(batch, logits: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Negative log-likelihood of each example's true positive set among the inlined-theorem-shaped
    sets (a tree CRF whose potentials are the node logits): ``inlined_log_partition - sum of the true
    set's logits``. Summed over graphs; ``mean`` divides by the batch's nodes, as the node losses do,
    so that data-parallel training scales it alike."""
    gold = logits.new_zeros(batch.num_graphs).index_add(0, batch.batch, logits * batch.y)
    nll = (inlined_log_partition(batch, logits) - gold).sum()
    return nll / logits.numel() if reduction == "mean" else nll
