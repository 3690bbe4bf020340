"""Which extracted theorems helped the prover prove what it proved.

:func:`step_scores` runs one single-checkpoint method on training steps;
:func:`theorem_scores` sums it per theorem group; :func:`method_scores` runs
the methods asked for, ``dtda`` over several seeds' checkpoints included
(:mod:`.distributional`); :func:`attribute` makes the report: per extracted
theorem its direct uses in found proofs and its influence per method (the
sum over queries of the group score; for ``dtda`` also the variance and
Wasserstein shifts), and per query its log-probability and the top theorems
per method. Loading the checkpoint and the queries: :mod:`.context`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from metamath import MMError

from ..data import Step
from ..segments import checkpoint_segments
from .batch import ExampleNet
from .context import Context, load_context, load_queries, load_seed_context, network, query_logprobs
from .distributional import STATS, SeedSamples, check_seeds, seed_samples
from .groups import direct_uses
from .methods import DTDA_BASES, METHODS, grad_dot, grad_proj, group_scores, random_scores

__all__ = ["Context", "Options", "attribute", "load_context", "load_queries", "method_scores", "nats_per_score",
           "query_logprobs", "step_scores", "theorem_scores"]


@dataclass
class Options:
    """The methods' settings: seeds of projections and sampling, grad-proj's rows per side (``None``: no
    projection), SOURCE's eigenbasis, d-TDA's other seeds' checkpoints and base method."""

    seed: int = 0
    k: int | None = 32
    basis: str = "kron"
    seed_checkpoints: list[str] = field(default_factory=list)
    dtda_base: str = "grad-proj"


def check_methods(ctx: Context, methods: list[str], opts: Options) -> None:
    """MMError before any work when a method cannot run on ``ctx`` with ``opts``."""
    for m in methods:
        if m not in METHODS:
            raise MMError(f"unknown attribution method {m!r} ({', '.join(METHODS)})", "<options>")
    if opts.dtda_base not in DTDA_BASES:
        raise MMError(f"dtda's base must be one of {', '.join(DTDA_BASES)}, not {opts.dtda_base!r}", "<options>")
    if "source" in methods or ("dtda" in methods and opts.dtda_base == "source"):
        checkpoint_segments(ctx.ck, ctx.checkpoint)
    if "dtda" in methods and not opts.seed_checkpoints:
        raise MMError("dtda needs --seed-checkpoints: the same training run with other --seed", "<options>")
    if opts.seed_checkpoints and "dtda" not in methods:
        raise MMError("--seed-checkpoints is for --method dtda", "<options>")


def step_scores(ctx: Context, method: str, queries: list[list[Step]], train_idx: list[int] | None = None,
                seed: int = 0, k: int | None = 32, basis: str = "kron") -> torch.Tensor:
    """``[queries, training steps]`` scores of a single-checkpoint ``method`` (positive = helped;
    :mod:`.methods`); only steps ``train_idx`` when given (columns in that order)."""
    idx = list(range(len(ctx.steps))) if train_idx is None else list(train_idx)
    train = [[ctx.steps[i]] for i in idx]
    ft, fq = ctx.featurizers()
    en = ExampleNet(ctx.net)
    if method == "grad-dot":
        return grad_dot(en, ft, fq, train, queries)
    everything = [[s] for s in ctx.steps]  # the curvature is fitted on all training steps
    if method == "grad-proj":
        return grad_proj(en, ft, fq, everything, queries, k=k, seed=seed)[:, idx]
    if method == "ekfac":
        from .kron import kronfluence_scores

        return kronfluence_scores(en, ft, fq, train, queries, "ekfac", seed=seed, fit=everything)
    if method == "source":
        from .source import source_scores

        segs = [(ExampleNet(network(ctx.ck, s["model"])[1]), s["effective_lr"] * s["steps"])
                for s in checkpoint_segments(ctx.ck, ctx.checkpoint)]
        return source_scores(segs, ft, fq, everything, idx, queries, basis=basis)
    if method == "random":
        return random_scores(len(queries), len(idx), seed)
    raise MMError(f"not a single-checkpoint attribution method: {method!r}", "<options>")


def theorem_scores(ctx: Context, method: str, queries: list[list[Step]], seed: int = 0,
                   k: int | None = 32, basis: str = "kron") -> dict[str, list[float]]:
    """Theorem -> per query its group score. Only the steps of some group are scored."""
    members = sorted({i for idx in ctx.groups.values() for i in idx})
    col = {i: c for c, i in enumerate(members)}
    s = step_scores(ctx, method, queries, members, seed, k, basis)
    return group_scores(s, {t: [col[i] for i in idx] for t, idx in ctx.groups.items()})


def nats_per_score(ctx: Context, method: str) -> float:
    """The change of a query's log-probability that one unit of ``method``'s score predicts when the
    step is removed. The training loss is the mean over the ``N`` training steps, so for the influence
    functions (``grad-proj``, ``ekfac``: the damped Fisher of the mean loss) and for ``source`` it is
    ``1/N``; ``grad-dot`` is TracIn over the whole run, ``eta K / N`` with ``eta K`` summed over the
    checkpoint's segments (Adam's effective rate; without segments the nominal rate times the steps,
    which under Adam is far too small). Used by ``dtda`` to put its predictions on the samples' scale."""
    n = len(ctx.steps)
    if method != "grad-dot":
        return 1.0 / n
    if ctx.ck.get("segments"):
        return sum(s["effective_lr"] * s["steps"] for s in ctx.ck["segments"]) / n
    cfg = ctx.ck["config"]
    return cfg["lr"] * ctx.ck["epoch"] * -(-n // cfg["batch_size"]) / n


def method_scores(ctx: Context, methods: list[str], queries: list[list[Step]], opts: Options
                  ) -> tuple[dict[str, dict[str, list[float]]], SeedSamples | None]:
    """Method -> theorem -> per query its score (``dtda``: the mean shift over seeds), and d-TDA's
    samples when ``dtda`` is asked for."""
    check_methods(ctx, methods, opts)

    def single(c: Context, m: str) -> dict[str, list[float]]:
        return theorem_scores(c, m, queries, opts.seed, opts.k, opts.basis)

    ctxs = []
    if "dtda" in methods:  # every seed's checkpoint is read and checked before any scoring
        ctxs = [ctx] + [load_seed_context(ctx, p) for p in opts.seed_checkpoints]
        check_seeds(ctxs)
        if opts.dtda_base == "source":
            for c in ctxs[1:]:
                checkpoint_segments(c.ck, c.checkpoint)
    out, samples = {}, None
    for m in sorted(methods, key=lambda m: m == "dtda"):  # dtda last: it reuses its base's scores
        if m == "dtda":
            base = out.get(opts.dtda_base)
            samples = seed_samples(ctxs, queries, lambda c: base if c is ctx and base is not None
                                   else single(c, opts.dtda_base), lambda c: nats_per_score(c, opts.dtda_base))
            out[m] = samples.per_theorem()["mean"]
        else:
            out[m] = single(ctx, m)
    return {m: out[m] for m in methods}, samples


def attribute(checkpoint: str, eval_dir: str, methods: list[str], seed: int = 0, top: int = 5,
              k: int | None = 32, opts: Options | None = None) -> dict:
    """The report of ``mmrefactor attribute`` (module docstring); ``opts`` overrides ``seed`` and ``k``."""
    opts = opts or Options(seed=seed, k=k)
    ctx = load_context(checkpoint)
    check_methods(ctx, methods, opts)
    qs = load_queries(ctx, eval_dir)
    if not ctx.theorems:
        raise MMError("the checkpoint's corpus has no extracted theorems (every $p is named by the split)",
                      ctx.ck["corpus"])
    labels = [r["label"] for r, _ in qs]
    steps = [s for _, s in qs]
    scores, samples = method_scores(ctx, methods, steps, opts)
    shifts = samples.per_theorem() if samples is not None else None
    uses = direct_uses([r for r, _ in qs], ctx.theorems)
    logp = query_logprobs(ctx, steps)
    rows = []
    for t in ctx.theorems:
        row = {"theorem": t, "members": len(ctx.groups[t]),
               "applied_in_training": sum(1 for i in ctx.groups[t] if ctx.steps[i].assertion == t),
               "direct_uses": uses[t],
               "influence": {m: float(sum(scores[m][t])) for m in methods}}
        if shifts is not None:
            row["dtda"] = {k: float(sum(shifts[k][t])) for k in STATS}
        rows.append(row)
    per_query = []
    for qi, (lab, st) in enumerate(zip(labels, steps)):
        tops = {}
        for m in methods:
            ranked = sorted(ctx.theorems, key=lambda t: -scores[m][t][qi])[:top]
            tops[m] = [[t, scores[m][t][qi]] for t in ranked]
        per_query.append({"label": lab, "steps": len(st), "log_prob": logp[qi],
                          "applies": sorted({s.assertion for s in st} & set(ctx.theorems)), "top": tops})
    report = {"checkpoint": ctx.checkpoint, "eval": os.path.abspath(eval_dir), "corpus": ctx.ck["corpus"],
              "methods": list(methods), "seed": opts.seed, "projection": opts.k, "training_steps": len(ctx.steps),
              "queries": labels, "theorems": rows, "per_query": per_query,
              "scores": {m: scores[m] for m in methods},
              "sign": "positive = the theorem's training steps raised the log-probability of the found proof"}
    if "source" in methods:
        report["source"] = {"basis": opts.basis, "segments": [
            {k: s[k] for k in ("end_step", "steps", "lr", "effective_lr")}
            for s in checkpoint_segments(ctx.ck, ctx.checkpoint)]}
    if samples is not None:
        report["dtda"] = {"base": opts.dtda_base, "checkpoints": samples.checkpoints, "seeds": samples.seeds,
                          "log_probs": samples.log_probs.tolist(), "nats_per_score": samples.nats,
                          "variance": shifts["variance"], "wasserstein": shifts["wasserstein"]}
    return report
