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
    src, dst = batch.edge_index.cpu().tolist() if batch.edge_index.numel() else ([], [])
    parent = [-1] * len(lg)
    for p, c in zip(src, dst):
        parent[c] = p
    out: list[bool] = []
    for j in range(len(ptr) - 1):
        lo, hi = ptr[j], ptr[j + 1]
        out += decode_inlined([p - lo if p >= 0 else -1 for p in parent[lo:hi]], lg[lo:hi])
    return torch.tensor(out, dtype=torch.bool, device=logits.device)
