"""``source``: SOURCE, attribution by approximate unrolling over training segments.

Influence functions assume training converged; the prover, trained for a few
epochs, has not. SOURCE (Bae et al. 2024, arXiv 2405.12186) unrolls training
instead, cut into ``L`` segments, each taken as stationary: curvature
``G_l``, per-example gradient ``g_l(z)``, learning rate ``eta_l`` and
``K_l`` steps. Removing ``z`` (weight ``1/N``) then moves the final
parameters by ``(1/N) sum_l (S_L ... S_{l+1}) r_l`` with
``S_l = exp(-eta_l K_l G_l)`` (how much of a segment's change later segments
keep) and ``r_l = (I - S_l) G_l^-1 g_l(z)`` (the change made in segment
``l``). A score is ``grad m(q)^T`` of that, ``m(q)`` the query's negative
log-probability at the final weights, so positive means the step helped, as
for every method (:mod:`.methods`; the constant ``1/N`` is dropped as there).

Here: the segments are the checkpoint's (:mod:`provers.segments`): weights at
each segment's end (they stand in for the segment's average, as SOURCE's
stationarity assumption allows), ``K_l`` optimizer steps and Adam's
effective learning rate as ``eta_l``. ``G_l`` is the damped empirical Fisher
of the training steps at those weights, per ``nn.Linear`` layer in an
eigenbasis (:mod:`.curvature`), where ``S`` and ``r`` are elementwise:
``exp(-eta K (lam + delta))`` and ``(1 - exp(-eta K (lam + delta))) / (lam + delta)``.
Limits (tested): one segment trained long (``eta K delta -> inf``) is the
damped influence function; a short one (``eta K -> 0``) is ``eta K`` times
``grad-dot``.
"""
from __future__ import annotations

import torch

from ..data import Step
from .batch import ExampleNet, Featurizer
from .curvature import fit_layers
from .methods import DAMPING, featurized, layer_grads

#: per-example gradients of all training steps are held in memory up to this many numbers (else computed twice)
CACHE_NUMBERS = 1 << 25
#: training steps featurized once for all segments up to this many (about 40 kB each; else once per pass)
CACHE_STEPS = 10_000


def _kept(eta_k: float):
    """``(1 - exp(-eta K x)) / x`` (``eta K`` at ``x = 0``)."""
    def fn(x: torch.Tensor) -> torch.Tensor:
        safe = torch.where(x > 0, x, torch.ones_like(x))
        return torch.where(x > 0, -torch.expm1(-eta_k * safe) / safe, torch.full_like(x, eta_k))

    return fn


def _decay(eta_k: float):
    return lambda x: torch.exp(-eta_k * x)


def _stack(rows: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """Per-example rows -> per layer ``[n, out, in]`` (double)."""
    return [torch.stack(col).double() for col in zip(*rows)]


def source_scores(segments: list[tuple[ExampleNet, float]], fz_train: Featurizer, fz_query: Featurizer,
                  fit: list[list[Step]], idx: list[int], queries: list[list[Step]], basis: str = "kron",
                  damping: float = DAMPING) -> torch.Tensor:
    """``[queries, len(idx)]`` SOURCE scores of the training examples ``fit[i]``, ``i`` in ``idx``.

    ``segments``: per training segment, oldest first, the network at its end and ``eta_l K_l``; the
    last one's network is the model the queries are measured on. The curvature of each segment is
    fitted on all of ``fit`` (every training step)."""
    w = _stack(list(layer_grads(segments[-1][0], fz_query, queries, "nll")))  # grad m(q) per layer
    n_params = sum(x[0].numel() for x in w)
    keep = len(fit) * n_params <= CACHE_NUMBERS
    batches = featurized(fz_train, fit) if len(fit) <= CACHE_STEPS else None  # the same at every segment
    member_batches = None if keep else featurized(fz_train, [fit[i] for i in idx])
    scores = torch.zeros(len(queries), len(idx), dtype=torch.float64)
    for en, eta_k in reversed(segments):
        if keep:
            cached = list(layer_grads(en, fz_train, fit, "loss", batches=batches))
            rows, members = (lambda: cached), _stack([cached[i] for i in idx])
        else:
            rows = lambda en=en: layer_grads(en, fz_train, fit, "loss", batches=batches)  # noqa: E731
            members = _stack(list(layer_grads(en, fz_train, [], "loss", batches=member_batches)))
        layers = fit_layers(rows, basis, damping)
        for c, W, G in zip(layers, w, members):
            u = c.apply(W, _kept(eta_k))  # (I - S_l) G_l^-1 applied to S_{l+1} ... S_L grad m(q)
            scores += u.reshape(len(queries), -1) @ G.reshape(len(idx), -1).T
        w = [c.apply(W, _decay(eta_k)) for c, W in zip(layers, w)]
    return scores
