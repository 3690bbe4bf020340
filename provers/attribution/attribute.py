"""Which extracted theorems helped the prover prove what it proved.

:func:`load_context` reads a checkpoint with its corpus and split and builds
the training steps exactly as training did; :func:`load_queries` replays an
evaluation's found proofs (the evaluation must come from the same
checkpoint: corpus, split and file are checked); :func:`step_scores` runs
one method; :func:`attribute` makes the report: per extracted theorem its
direct uses in found proofs and its influence per method (the sum over
queries of the group score), and per query its log-probability and the top
theorems per method.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch

from metamath import MMError

from ..data import Step, build_steps, training_theorems
from ..model import ProverNet, Vocab
from ..split import load_split
from ..train import Encoder, check_checkpoint, load_checkpoint, load_corpus
from .batch import ExampleNet, Featurizer, example_logprob
from .groups import direct_uses, extracted_theorems, query_steps, read_queries, theorem_groups
from .methods import METHODS, grad_dot, grad_proj, group_scores, random_scores


@dataclass
class Context:
    checkpoint: str
    ck: dict
    db: object
    lib: object
    split: object
    vocab: Vocab
    net: ProverNet
    enc: Encoder
    steps: list[Step]
    theorems: list[str]          # extracted theorems, database order
    groups: dict[str, list[int]]

    def featurizers(self) -> tuple[Featurizer, Featurizer]:
        """(training steps: capped candidates and values, as trained; queries: all candidates, no values)."""
        cap = self.ck["config"].get("max_applicable", 64)
        return Featurizer(self.enc, cap, values=True), Featurizer(self.enc, None, values=False)


def network(ck: dict) -> tuple[Vocab, ProverNet]:
    vocab = Vocab(tuple(ck["vocab"]))
    net = ProverNet(len(vocab.labels), ck["config"]["dim"], ck["config"]["rounds"])
    net.load_state_dict(ck["model"])
    return vocab, net.eval()


def load_context(checkpoint: str) -> Context:
    torch.set_num_threads(1)
    ck = load_checkpoint(checkpoint)
    db, lib = load_corpus(ck["corpus"])
    split = load_split(ck["split"], db)
    check_checkpoint(ck, db, split, checkpoint)
    vocab, net = network(ck)
    enc = Encoder(lib, net, vocab, torch.device("cpu"))
    steps = build_steps(lib, training_theorems(lib, split), ck["config"]["seed"])
    theorems = extracted_theorems(lib, split)
    return Context(os.path.abspath(checkpoint), ck, db, lib, split, vocab, net, enc, steps, theorems,
                   theorem_groups(steps, theorems))


def load_queries(ctx: Context, eval_dir: str) -> list[tuple[dict, list[Step]]]:
    """The evaluation's proved theorems with their replayed steps; MMError when the evaluation was
    made with another checkpoint, corpus or split."""
    cfg_path = os.path.join(eval_dir, "config.json")
    try:
        with open(cfg_path) as fh:
            run = json.load(fh)
    except (OSError, json.JSONDecodeError):
        raise MMError("not a prover evaluation directory (no readable config.json)", eval_dir) from None
    if run.get("corpus_sha256") != ctx.ck["corpus_sha256"]:
        raise MMError(f"evaluation was made on another corpus than the checkpoint's ({ctx.ck['corpus']})", eval_dir)
    if run.get("split_key") != ctx.ck["split_key"]:
        raise MMError(f"evaluation was made with another split than the checkpoint's ({ctx.ck['split']})", eval_dir)
    if os.path.realpath(run.get("checkpoint", "")) != os.path.realpath(ctx.checkpoint):
        raise MMError(f"evaluation was made with another checkpoint ({run.get('checkpoint')})", eval_dir)
    if run.get("config", {}).get("baseline") is not None:
        raise MMError("evaluation of a baseline policy: its proofs are not the prover's", eval_dir)
    return [(rec, query_steps(ctx.lib, rec["label"], rec["proof"])) for rec in read_queries(eval_dir)]


def query_logprobs(ctx: Context, queries: list[list[Step]], net: ProverNet | None = None) -> list[float]:
    """The measurement per query: log-probability of its found proof's steps under ``net``."""
    enc = ctx.enc if net is None else Encoder(ctx.lib, net, ctx.vocab, torch.device("cpu"))
    fz = Featurizer(enc, None, values=False)
    en = ExampleNet(enc.net)
    out = []
    with torch.no_grad():
        for q in queries:
            b = fz([q])
            out.append(float(example_logprob(en(b), b)[0]))
    return out


def step_scores(ctx: Context, method: str, queries: list[list[Step]], train_idx: list[int] | None = None,
                seed: int = 0, k: int | None = 32) -> torch.Tensor:
    """``[queries, training steps]`` scores of ``method`` (positive = helped; :mod:`.methods`);
    only steps ``train_idx`` when given (columns in that order)."""
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
    if method == "random":
        return random_scores(len(queries), len(idx), seed)
    raise MMError(f"unknown attribution method {method!r} ({', '.join(METHODS)})", "<options>")


def theorem_scores(ctx: Context, method: str, queries: list[list[Step]], seed: int = 0,
                   k: int | None = 32) -> dict[str, list[float]]:
    """Theorem -> per query its group score. Only the steps of some group are scored."""
    members = sorted({i for idx in ctx.groups.values() for i in idx})
    col = {i: c for c, i in enumerate(members)}
    s = step_scores(ctx, method, queries, members, seed, k)
    return group_scores(s, {t: [col[i] for i in idx] for t, idx in ctx.groups.items()})


def attribute(checkpoint: str, eval_dir: str, methods: list[str], seed: int = 0, top: int = 5,
              k: int | None = 32) -> dict:
    for m in methods:
        if m not in METHODS:
            raise MMError(f"unknown attribution method {m!r} ({', '.join(METHODS)})", "<options>")
    ctx = load_context(checkpoint)
    qs = load_queries(ctx, eval_dir)
    if not ctx.theorems:
        raise MMError("the checkpoint's corpus has no extracted theorems (every $p is named by the split)",
                      ctx.ck["corpus"])
    labels = [r["label"] for r, _ in qs]
    steps = [s for _, s in qs]
    scores = {m: theorem_scores(ctx, m, steps, seed, k) for m in methods}
    uses = direct_uses([r for r, _ in qs], ctx.theorems)
    logp = query_logprobs(ctx, steps)
    rows = []
    for t in ctx.theorems:
        rows.append({"theorem": t, "members": len(ctx.groups[t]),
                     "applied_in_training": sum(1 for i in ctx.groups[t] if ctx.steps[i].assertion == t),
                     "direct_uses": uses[t],
                     "influence": {m: float(sum(scores[m][t])) for m in methods}})
    per_query = []
    for qi, (lab, st) in enumerate(zip(labels, steps)):
        tops = {}
        for m in methods:
            ranked = sorted(ctx.theorems, key=lambda t: -scores[m][t][qi])[:top]
            tops[m] = [[t, scores[m][t][qi]] for t in ranked]
        per_query.append({"label": lab, "steps": len(st), "log_prob": logp[qi],
                          "applies": sorted({s.assertion for s in st} & set(ctx.theorems)), "top": tops})
    return {"checkpoint": ctx.checkpoint, "eval": os.path.abspath(eval_dir), "corpus": ctx.ck["corpus"],
            "methods": list(methods), "seed": seed, "projection": k, "training_steps": len(ctx.steps),
            "queries": labels, "theorems": rows, "per_query": per_query,
            "scores": {m: scores[m] for m in methods},
            "sign": "positive = the theorem's training steps raised the log-probability of the found proof"}
