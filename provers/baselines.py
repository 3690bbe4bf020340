"""The non-learned policies the learned prover must beat, on the same search.

* ``uniform``: every candidate assertion equally likely, each free slot
  costs 0.5 nats more, pool terms in pool order (joint bindings first, then
  smaller terms), a constant value.
* ``count``: an assertion's probability is its share of uses in the
  training proofs (add-one smoothed); the free-slot cost, terms and value
  as ``uniform``.
"""
from __future__ import annotations

import math
from collections import Counter

from .actions import Problem
from .library import Assertion
from .terms import Term

SLOT_COST = 0.5
TERM_STEP = 0.1  # each later pool term costs this much more


class UniformPolicy:
    name = "uniform"

    def begin(self, prob: Problem) -> None:
        pass

    def relevance(self, prob: Problem, goal: Term, assertions: list[Assertion]) -> list[float]:
        lp = -math.log(len(assertions))
        return [lp - SLOT_COST * len(a.free) for a in assertions]

    def terms(self, prob: Problem, goal: Term, slots: list[tuple[Assertion, str, list[Term]]]) -> list[list[float]]:
        return [[-TERM_STEP * i for i in range(len(terms))] for _, _, terms in slots]

    def values(self, prob: Problem, goals: list[Term]) -> list[float]:
        return [math.log(0.5)] * len(goals)


class CountPolicy(UniformPolicy):
    name = "count"

    def __init__(self, counts: Counter):
        self.counts = counts

    def relevance(self, prob: Problem, goal: Term, assertions: list[Assertion]) -> list[float]:
        w = [self.counts.get(a.label, 0) + 1 for a in assertions]
        z = math.log(sum(w))
        return [math.log(x) - z - SLOT_COST * len(a.free) for x, a in zip(w, assertions)]
