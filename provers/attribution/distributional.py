"""``dtda``: distributional attribution, how a theorem group moves the spread of outcomes over seeds.

Training is random (the seed draws the initial weights, the batch order and
the value negatives), so a query's measurement is a distribution over
training seeds, and removing a group can move its mean, its spread or both
(d-TDA, Mlodozeniec et al. 2025, arXiv 2506.12965). The cheap estimate:
``R`` checkpoints of the same training with ``R`` seeds are ``R`` samples
``y_r`` of the measurement; on each, an influence method (the *base*: any
single-checkpoint method) predicts the measurement without the group,
``y_r - c_r s_r(group)`` (``s_r``: the base's group score, positive =
helped; ``c_r``: nats of log-probability per unit of score, so that the
prediction and the samples share a scale, see
:func:`provers.attribution.attribute.nats_per_score`). The two sample sets
are compared per query:

* ``mean``: ``mean_r c_r s_r``, the mean shift in nats (what the group adds
  to the expected log-probability; the score ``dtda`` ranks by and the LDS
  uses);
* ``variance``: ``Var(with) - Var(without)`` (sample variances over seeds):
  positive = the group made the outcome spread more across seeds (the
  paper's "variance increase" on removal, with the sign of the other scores);
* ``wasserstein``: the Wasserstein-1 distance between the two sample sets.

With one seed the spread is not defined; at least two checkpoints are needed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from metamath import MMError

from ..data import Step
from .context import Context, query_logprobs

STATS = ("mean", "variance", "wasserstein")


def variance(x: np.ndarray) -> np.ndarray:
    """Sample variance over axis 0 (ddof 1)."""
    return np.var(x, axis=0, ddof=1)


def wasserstein1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per column, W1 between the empirical distributions of ``a``'s and ``b``'s rows (equal counts)."""
    return np.abs(np.sort(a, axis=0) - np.sort(b, axis=0)).mean(axis=0)


@dataclass
class SeedSamples:
    """Per seed ``r`` (the attributed checkpoint first): its checkpoint and training seed, the queries'
    measurements ``log_probs[r]``, the base method's group scores ``scores[r]`` (theorem -> per query)
    and ``nats[r]``, the change of log-probability one unit of those scores predicts."""

    checkpoints: list[str]
    seeds: list[int]
    log_probs: np.ndarray              # [R, Q]
    scores: list[dict[str, list[float]]]
    nats: list[float]

    def without(self, drop: list[str]) -> np.ndarray:
        """``[R, Q]``: each seed's predicted measurement without ``drop``'s groups."""
        y = self.log_probs.copy()
        for r, s in enumerate(self.scores):
            for t in drop:
                y[r] -= self.nats[r] * np.asarray(s[t])
        return y

    def shift(self, drop: list[str]) -> dict[str, np.ndarray]:
        """Per query, what ``drop``'s groups do to the distribution over seeds (``STATS``)."""
        y, y0 = self.log_probs, self.without(drop)
        return {"mean": (y - y0).mean(axis=0), "variance": variance(y) - variance(y0),
                "wasserstein": wasserstein1(y, y0)}

    def per_theorem(self) -> dict[str, dict[str, list[float]]]:
        """Statistic -> theorem -> per query its shift when the theorem's group alone is removed."""
        out: dict[str, dict[str, list[float]]] = {k: {} for k in STATS}
        for t in self.scores[0]:
            sh = self.shift([t])
            for k in STATS:
                out[k][t] = sh[k].tolist()
        return out


def check_seeds(ctxs: list[Context]) -> None:
    """MMError unless there are at least two checkpoints, all of different training seeds."""
    if len(ctxs) < 2:
        raise MMError("dtda needs at least two training seeds: give --seed-checkpoints (the same training "
                      "with other --seed)", "<options>")
    seeds = [c.ck["config"]["seed"] for c in ctxs]
    if len(set(seeds)) < len(seeds):
        raise MMError(f"dtda's checkpoints must have different training seeds (got {seeds})", "<options>")


def seed_samples(ctxs: list[Context], queries: list[list[Step]], score: Callable[[Context], dict[str, list[float]]],
                 nats: Callable[[Context], float]) -> SeedSamples:
    """The samples of d-TDA: ``ctxs`` (checkpoints of one training with different seeds), the queries'
    log-probabilities under each, ``score(ctx)``, the base method's group scores on each, and
    ``nats(ctx)``, their scale in log-probability."""
    check_seeds(ctxs)
    return SeedSamples([c.checkpoint for c in ctxs], [c.ck["config"]["seed"] for c in ctxs],
                       np.array([query_logprobs(c, queries) for c in ctxs], dtype=float),
                       [score(c) for c in ctxs], [nats(c) for c in ctxs])
