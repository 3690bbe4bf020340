"""Per-layer curvature in an eigenbasis: the damped empirical Fisher of each ``nn.Linear``.

Per layer, the per-example weight gradients ``G`` (``[out, in + bias]``,
:func:`.methods.layer_grads`) give the empirical Fisher block
``F = E[vec G vec G^T]``. SOURCE needs functions of it (``exp(-eta K F)``,
``(I - exp(-eta K F)) F^-1``), which are elementwise in an eigenbasis.
Two bases:

* ``"kron"`` (EK-FAC style, George et al. 2018): ``Q_out``, the eigenvectors
  of ``E[G G^T]``, and ``Q_in``, those of ``E[G^T G]``; the eigenvalues are
  corrected to ``E[(Q_out^T G Q_in)^2]``, the exact diagonal of ``F`` in that
  basis. Unlike K-FAC the two factors are second moments of the per-example
  gradients, not of each token's input and output gradient: these gradients
  are what the other methods already compute, they need no hooks, and with
  the corrected eigenvalues any Kronecker basis gives the best diagonal
  approximation of ``F`` in it;
* ``"full"``: the eigenvectors of ``F`` itself (exact; small layers only,
  the oracle of the tests).

Damping: ``delta = DAMPING x mean eigenvalue`` per layer (the trace of ``F``,
the same in either basis), as :func:`.methods.damped_inverse_apply`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from .methods import DAMPING

BASES = ("kron", "full")


@dataclass
class LayerEigen:
    """One layer's damped Fisher ``Q diag(lam + delta) Q^T``; ``lam`` is ``[out, in]`` (kron) or ``[out x in]``
    (full)."""

    shape: tuple[int, int]
    lam: torch.Tensor
    delta: float
    q_out: torch.Tensor | None = None
    q_in: torch.Tensor | None = None
    q: torch.Tensor | None = None

    def rotate(self, W: torch.Tensor) -> torch.Tensor:
        """``[n, out, in]`` -> coordinates in the eigenbasis (``[n, out, in]`` or ``[n, out x in]``)."""
        if self.q is not None:
            return W.reshape(W.shape[0], -1) @ self.q
        return self.q_out.T @ W @ self.q_in

    def unrotate(self, X: torch.Tensor) -> torch.Tensor:
        if self.q is not None:
            return (X @ self.q.T).reshape(X.shape[0], *self.shape)
        return self.q_out @ X @ self.q_in.T

    def apply(self, W: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``fn(F + delta I) W`` for each of ``W``'s ``n`` matrices (``fn`` on the damped eigenvalues)."""
        return self.unrotate(fn(self.lam + self.delta) * self.rotate(W))


def fit_layers(rows: Callable[[], Iterable[list[torch.Tensor]]], basis: str = "kron",
               damping: float = DAMPING) -> list[LayerEigen]:
    """Per layer the eigendecomposed damped empirical Fisher of the per-example gradients ``rows()``
    yields (``rows`` is called once for ``full``, twice for ``kron``: factors, then eigenvalues)."""
    if basis not in BASES:
        raise ValueError(f"unknown basis {basis!r}")
    acc: list[list[torch.Tensor]] | None = None
    shapes: list[tuple[int, int]] = []
    n = 0
    for row in rows():
        n += 1
        gs = [g.double() for g in row]
        if acc is None:
            shapes = [tuple(g.shape) for g in gs]
            acc = [[torch.zeros(g.numel(), g.numel(), dtype=torch.float64)] if basis == "full" else
                   [torch.zeros(g.shape[0], g.shape[0], dtype=torch.float64),
                    torch.zeros(g.shape[1], g.shape[1], dtype=torch.float64)] for g in gs]
        for a, g in zip(acc, gs):
            if basis == "full":
                v = g.reshape(-1)
                a[0] += torch.outer(v, v)
            else:
                a[0] += g @ g.T
                a[1] += g.T @ g
    if acc is None:
        return []
    if basis == "full":
        out = []
        for s, (F,) in zip(shapes, acc):
            lam, q = torch.linalg.eigh(F / n)
            out.append(_damped(LayerEigen(s, lam.clamp(min=0.0), 0.0, q=q), damping))
        return out
    eig = [(torch.linalg.eigh(a_out / n)[1], torch.linalg.eigh(a_in / n)[1]) for a_out, a_in in acc]
    lam = [torch.zeros(qo.shape[0], qi.shape[0], dtype=torch.float64) for qo, qi in eig]
    for row in rows():
        for l, (qo, qi), g in zip(lam, eig, row):
            l += (qo.T @ g.double() @ qi) ** 2
    return [_damped(LayerEigen((qo.shape[0], qi.shape[0]), l / n, 0.0, q_out=qo, q_in=qi), damping)
            for l, (qo, qi) in zip(lam, eig)]


def _damped(c: LayerEigen, damping: float) -> LayerEigen:
    c.delta = damping * float(c.lam.mean())
    return c
