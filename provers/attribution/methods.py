"""Attribution scores of training steps for queries, and their group sums.

Every method returns a ``[queries, training steps]`` matrix with one sign
convention: **positive = the training step helped the query**, i.e. it
raised the log-probability of the found proof. Writing ``m(q)`` for the
query's negative log-probability (a loss) and ``L(z)`` for a training step's
loss, a score is ``grad m(q)^T H^-1 grad L(z)``: training on ``z`` (a
gradient step on ``L(z)``) lowers ``m(q)`` by about that much, and removing
``z`` raises it (the influence-function approximation). ``H`` is:

* ``grad-dot``: the identity (TracIn at one checkpoint);
* ``grad-proj``: LoGra-style: per ``nn.Linear`` layer the per-example
  weight gradient ``G`` (bias as an extra input column) is projected to
  ``P_out G P_in^T`` with seeded Gaussian ``P`` of ``k`` rows per side, and
  ``H`` is the damped projected empirical Fisher, one block per layer
  (``blocks="full"``: one block for everything; ``k=None``: no projection);
* ``ekfac``: kronfluence's EK-FAC (true Fisher, see :mod:`.kron`);
* ``source``: not one ``H`` but the training unrolled over the checkpoint's
  segments (SOURCE, :mod:`.source`);
* ``random``: seeded Gaussian scores, the floor.

``dtda`` (:mod:`.distributional`) runs one of ``DTDA_BASES`` on several
seeds' checkpoints and scores a group by the shift of the measurement's
distribution over seeds.

Damping is the kronfluence paper's heuristic: 0.1 x the mean eigenvalue of
the (block of the) curvature matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data import Step
from .batch import ExampleNet, Featurizer, example_logprob, example_loss

METHODS = ("grad-dot", "grad-proj", "ekfac", "source", "dtda", "random")
DTDA_BASES = ("grad-dot", "grad-proj", "ekfac", "source")
DAMPING = 0.1


def linear_layers(net: nn.Module) -> list[tuple[str, nn.Linear]]:
    return [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]


def _batches(fz: Featurizer, examples: list[list[Step]], size: int):
    for i in range(0, len(examples), size):
        yield fz(examples[i : i + size])


def featurized(fz: Featurizer, examples: list[list[Step]], batch_size: int = 32) -> list[dict]:
    """``examples`` as the batches :func:`layer_grads` takes: featurize once, differentiate at several weights."""
    return list(_batches(fz, examples, batch_size))


def layer_grads(en: ExampleNet, fz: Featurizer, examples: list[list[Step]], kind: str, batch_size: int = 32,
                batches: list[dict] | None = None):
    """Per example: ``[G per Linear layer]`` with ``G = [out, in + bias]``, the gradient of the
    example's training loss (``kind="loss"``) or of its negative log-probability (``"nll"``);
    ``batches`` (from :func:`featurized`) stand for ``fz`` and ``examples`` when given.

    One forward and backward per batch: every ``nn.Linear`` of :class:`ExampleNet` is called once
    with the example in dim 0 and examples do not mix, so the gradient of the batch's summed loss at
    a layer's output rows of example ``e`` is that of ``e``'s own loss, and ``e``'s weight gradient
    is the sum over its rows of (output gradient) x (input)^T (the bias: of the output gradient)."""
    layers = linear_layers(en)
    params = [p for _, m in layers for p in m.parameters()]
    inputs: dict[str, torch.Tensor] = {}
    outgrads: dict[str, torch.Tensor] = {}

    def hook(name):
        def fwd(mod, args, out):
            inputs[name] = args[0].detach()
            if out.requires_grad:
                out.register_hook(lambda g: outgrads.__setitem__(name, g.detach()))
        return fwd

    handles = [m.register_forward_hook(hook(n)) for n, m in layers]
    try:
        for b in _batches(fz, examples, batch_size) if batches is None else batches:
            inputs.clear()
            outgrads.clear()
            out = en(b)
            f = example_loss(out, b) if kind == "loss" else -example_logprob(out, b)
            E = f.shape[0]
            torch.autograd.grad(f.sum(), params, allow_unused=True)
            per_layer = []
            for n, m in layers:
                dout, din = m.weight.shape
                if n in outgrads:
                    a = inputs[n].reshape(E, -1, din)
                    d = outgrads[n].reshape(E, -1, dout)
                    G = torch.einsum("eto,eti->eoi", d, a)
                    if m.bias is not None:
                        G = torch.cat([G, d.sum(1).unsqueeze(2)], dim=2)
                else:  # the layer is not on the path to this loss
                    G = torch.zeros(E, dout, din + (m.bias is not None))
                per_layer.append(G)
            for e in range(E):
                yield [G[e] for G in per_layer]
    finally:
        for h in handles:
            h.remove()


@dataclass
class Projection:
    """Per layer ``(P_out, P_in)``; ``None`` entries mean no projection on that side."""

    mats: list[tuple[torch.Tensor | None, torch.Tensor | None]]

    @classmethod
    def make(cls, en: ExampleNet, k: int | None, seed: int = 0) -> "Projection":
        g = torch.Generator().manual_seed(seed)
        mats = []
        for _, m in linear_layers(en):
            dout, din = m.weight.shape[0], m.weight.shape[1] + (m.bias is not None)
            if k is None:
                mats.append((None, None))
                continue
            po = torch.randn(k, dout, generator=g) / k ** 0.5 if k < dout else None
            pi = torch.randn(k, din, generator=g) / k ** 0.5 if k < din else None
            mats.append((po, pi))
        return cls(mats)

    def __call__(self, row: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for G, (po, pi) in zip(row, self.mats):
            if po is not None:
                G = po @ G
            if pi is not None:
                G = G @ pi.T
            out.append(G.reshape(-1))
        return out


def _stack(rows, proj: Projection | None) -> list[torch.Tensor]:
    """Per layer ``[N, dim]`` from per-example rows."""
    cols = None
    for row in rows:
        flat = proj(row) if proj is not None else [G.reshape(-1) for G in row]
        if cols is None:
            cols = [[] for _ in flat]
        for c, x in zip(cols, flat):
            c.append(x)
    return [torch.stack(c) for c in cols]


def damped_inverse_apply(F: torch.Tensor, Q: torch.Tensor, damping: float = DAMPING) -> torch.Tensor:
    """``Q (F + lambda I)^-1`` with ``lambda = damping x mean eigenvalue of F`` (F symmetric PSD)."""
    lam = damping * float(torch.trace(F)) / F.shape[0]
    lam = max(lam, 1e-12)
    A = F + lam * torch.eye(F.shape[0], dtype=F.dtype)
    return torch.linalg.solve(A, Q.T).T


def grad_dot(en, fz_train, fz_query, train: list[list[Step]], queries: list[list[Step]]) -> torch.Tensor:
    q = [torch.cat([g.reshape(-1) for g in row]) for row in layer_grads(en, fz_query, queries, "nll")]
    Q = torch.stack(q).double()
    out = []
    for row in layer_grads(en, fz_train, train, "loss"):
        out.append(Q @ torch.cat([g.reshape(-1) for g in row]).double())
    return torch.stack(out, dim=1)


def grad_proj(en, fz_train, fz_query, train: list[list[Step]], queries: list[list[Step]], k: int | None = 32,
              seed: int = 0, blocks: str = "layer", damping: float = DAMPING) -> torch.Tensor:
    proj = Projection.make(en, k, seed)
    G = [x.double() for x in _stack(layer_grads(en, fz_train, train, "loss"), proj)]
    Q = [x.double() for x in _stack(layer_grads(en, fz_query, queries, "nll"), proj)]
    if blocks == "full":
        G, Q = [torch.cat(G, dim=1)], [torch.cat(Q, dim=1)]
    N = G[0].shape[0]
    scores = torch.zeros(Q[0].shape[0], N, dtype=torch.float64)
    for g, q in zip(G, Q):
        F = g.T @ g / N
        if float(torch.trace(F)) == 0.0:
            continue  # a layer no training step reaches
        scores += damped_inverse_apply(F, q, damping) @ g.T
    return scores


def random_scores(n_queries: int, n_train: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_queries, n_train, generator=g, dtype=torch.float64)


def group_scores(scores: torch.Tensor, groups: dict[str, list[int]]) -> dict[str, list[float]]:
    """Theorem -> per query the sum of its members' scores."""
    return {t: scores[:, idx].sum(1).tolist() if idx else [0.0] * scores.shape[0] for t, idx in groups.items()}
