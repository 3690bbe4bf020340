"""``imap_theorems`` runs any callable in forked workers: closures, partials, callable objects.

Callers pass their context inside the callable (not through module globals);
the workers inherit it by fork, and results come back in label order.
"""
from __future__ import annotations

import functools
import os

import pytest

from metamath.parallel import imap_theorems, map_theorems


def _size(scale: int, db, label: str) -> int:
    return scale * len(db[label].expr)


class _Counter:
    """A callable object with state; each worker fills its own ``seen``."""

    def __init__(self, offset: int):
        self.offset = offset
        self.seen: list[str] = []

    def __call__(self, db, label: str) -> tuple[int, int]:
        self.seen.append(label)
        return os.getpid(), len(db[label].expr) + self.offset


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_any_callable_reaches_the_workers(ql):
    labels = ql.theorems()[:200]
    want = {l: len(ql[l].expr) for l in labels}
    context = {"scale": 3}
    closure = lambda db, label: context["scale"] * len(db[label].expr)  # noqa: E731
    assert map_theorems(ql, closure, labels, jobs=2) == {l: 3 * n for l, n in want.items()}
    partial = functools.partial(_size, 5)
    assert map_theorems(ql, partial, labels, jobs=2) == {l: 5 * n for l, n in want.items()}
    counter = _Counter(7)
    got = list(imap_theorems(ql, counter, labels, jobs=2))
    assert [l for l, _ in got] == labels  # label order
    assert [v for _, (_, v) in got] == [want[l] + 7 for l in labels]
    assert {pid for _, (pid, _) in got} - {os.getpid()}  # it ran in the workers ...
    assert counter.seen == []  # ... on their own copies
    assert map_theorems(ql, counter, labels[:3], jobs=1) == {l: (os.getpid(), want[l] + 7) for l in labels[:3]}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="workers are forked")
def test_unordered_single_label_tasks_yield_every_result_once(ql):
    labels = ql.theorems()[:60]
    got = list(imap_theorems(ql, lambda db, l: len(db[l].expr), labels, jobs=2, chunk=1, ordered=False))
    assert sorted(l for l, _ in got) == sorted(labels)
    assert all(n == len(ql[l].expr) for l, n in got)
