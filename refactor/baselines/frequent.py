"""The frequent-subtree baseline: the most common proof shapes, counted up to
hypothesis substitution.

A shape is a connected top part of an essential proof tree: the assertion
labels of its steps, its leaves left open as holes (whatever proves them).
A shape occurs at a node when the node and the steps below it carry the
shape's labels with the same numbers of essential children; the count of a
shape is the number of nodes of every proof's essential DAG (distinct
subproofs, see :class:`refactor.extract.Library`) it occurs at,
overlapping occurrences included. Shapes have at most ``max_steps``
steps and at most ``max_depth`` steps on a root-to-leaf path; shapes of one
step are existing assertions and are not proposed.

Mining is level-wise (:func:`count_shapes`): a shape of n + 1 steps is a
shape of n steps with one hole filled by the step found there, and only the
holes after the shape's last step in pre-order are filled, so each shape
(and each of its occurrences) is generated exactly once. A shape occurs
wherever a shape with one more step does, so shapes under the threshold are
never extended. With ``pool`` set, the threshold is raised to the count of
the ``pool``-th most frequent two-step shape: every shape at least that
frequent is still found, exactly, and big libraries (set.mm) stay tractable.

The shapes come out most frequent first (ties: more steps first);
:func:`refactor.extract.extract` tries them in that order until it has the
number of new theorems asked for.
"""
from __future__ import annotations

from collections import Counter

from metamath.database import Database
from metamath.proof import ProofNode

from ..generalize import Shape, shape_steps, shape_str

__all__ = ["enumerate_shapes", "count_shapes", "frequent_shapes"]


def enumerate_shapes(nodes: list[ProofNode], v: int, max_depth: int, max_steps: int,
                     hyp_labels) -> list[tuple[Shape, int]]:
    """Every (shape, steps) rooted at node ``v`` of an essential DAG's ``nodes`` within the limits."""
    if max_depth <= 0 or max_steps <= 0 or nodes[v].label in hyp_labels:
        return []
    partial: list[tuple[tuple, int]] = [((), 1)]
    for c in nodes[v].children:
        opts = [(None, 0)] + enumerate_shapes(nodes, c, max_depth - 1, max_steps - 1, hyp_labels)
        partial = [(p + (s,), n + k) for p, n in partial for s, k in opts if n + k <= max_steps]
    return [((nodes[v].label, kids), n) for kids, n in partial]


def _walk(shape: Shape, nodes: list[ProofNode], v: int) -> list[tuple[bool, int, int]]:
    """(is a hole, tree node, depth) of every node of ``shape`` at ``v``, in pre-order."""
    out = []
    stack = [(shape, v, 1)]
    while stack:
        x, node, d = stack.pop()
        out.append((x is None, node, d))
        if x is not None:
            for sub, c in reversed(list(zip(x[1], nodes[node].children))):
                stack.append((sub, c, d + 1))
    return out


def _fill(shape: Shape, j: int, new: Shape) -> Shape:
    """``shape`` with its ``j``-th node in pre-order (a hole) replaced by ``new``."""
    left = [j]

    def rec(x):
        if left[0] == 0:
            left[0] = -1
            return new
        left[0] -= 1
        if x is None:
            return None
        return (x[0], tuple(rec(c) for c in x[1]))

    return rec(shape)


def count_shapes(db: Database, library, max_depth: int = 3, max_steps: int = 6, min_count: int = 2,
                 pool: int | None = None) -> Counter:
    """Counts of every shape of 2 to ``max_steps`` steps seen at least ``min_count``
    times (or at least as often as the ``pool``-th most frequent two-step shape)."""
    stmts = db.statements
    dags = [d.nodes for d in library.dags]
    hyp = {l for l in library.by_label if stmts[l].kind == "e"}
    level: dict = {}
    for lab, occ in library.by_label.items():
        if lab in hyp:
            continue
        by_arity: dict[int, list] = {}
        for k, v in occ:
            by_arity.setdefault(len(dags[k][v].children), []).append((k, v))
        for n, o in by_arity.items():
            if len(o) >= min_count:
                level[(lab, (None,) * n)] = (0, o)
    out: Counter = Counter()
    threshold = min_count

    def extensions(keep=None):
        for s, (last, occ) in level.items():
            for k, v in occ:
                t = dags[k]
                for j, (hole, node, d) in enumerate(_walk(s, t, v)):
                    if not hole or j <= last or d > max_depth or t[node].label in hyp:
                        continue
                    s2 = _fill(s, j, (t[node].label, (None,) * len(t[node].children)))
                    if keep is None or s2 in keep:
                        yield s2, j, (k, v)

    for steps in range(2, max_steps + 1):
        counts = Counter(s2 for s2, _, _ in extensions())
        if steps == 2 and pool and len(counts) > pool:
            threshold = max(min_count, sorted(counts.values(), reverse=True)[pool - 1])
        keep = {s2 for s2, c in counts.items() if c >= threshold}
        out.update({s2: counts[s2] for s2 in keep})
        if not keep or steps == max_steps:
            break
        nxt: dict = {}
        for s2, j, o in extensions(keep):
            nxt.setdefault(s2, (j, []))[1].append(o)
        level = nxt
    return out


def frequent_shapes(db: Database, library, max_depth: int = 3, max_steps: int = 6, min_count: int = 2,
                    pool: int | None = 5000) -> tuple[list[tuple[Shape, list]], dict]:
    """(shape, []) pairs, most frequent first, and a summary for the report."""
    counts = count_shapes(db, library, max_depth, max_steps, min_count, pool)
    items = sorted(counts.items(), key=lambda sc: (-sc[1], -shape_steps(sc[0]), shape_str(sc[0])))
    info = {"frequent_max_depth": max_depth, "frequent_max_steps": max_steps, "frequent_min_count": min_count,
            "frequent_shapes": len(items), "frequent_threshold": min((c for _, c in items), default=None),
            "top_shapes": [{"shape": shape_str(s), "count": c} for s, c in items[:10]]}
    return [(s, []) for s, _ in items], info
