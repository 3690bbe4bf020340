"""The attributed model and its data: a checkpoint with its corpus, split, training steps and groups.

:func:`load_context` reads a checkpoint with its corpus and split and builds
the training steps exactly as training did; :func:`load_seed_context` does
the same for another seed of the same training (d-TDA's samples), sharing
the corpus; :func:`load_queries` replays an evaluation's found proofs (the
evaluation must come from the same checkpoint: corpus, split and file are
checked); :func:`query_logprobs` is the measurement.
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
from .groups import extracted_theorems, query_steps, read_queries, theorem_groups


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


def network(ck: dict, state: dict | None = None) -> tuple[Vocab, ProverNet]:
    """The checkpoint's vocabulary and network, with its weights or ``state`` (e.g. a training segment's)."""
    vocab = Vocab(tuple(ck["vocab"]))
    net = ProverNet(len(vocab.labels), ck["config"]["dim"], ck["config"]["rounds"])
    net.load_state_dict(ck["model"] if state is None else state)
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


#: config fields that may differ between seeds of one training (d-TDA's samples)
SEED_FREE = ("seed", "device", "threads")


def load_seed_context(ctx: Context, checkpoint: str) -> Context:
    """Another seed of ``ctx``'s training: the same corpus, split and settings but the seed (MMError
    otherwise); its own network and training steps (value negatives are seeded), ``ctx``'s corpus."""
    ck = load_checkpoint(checkpoint)
    check_checkpoint(ck, ctx.db, ctx.split, checkpoint)
    mine = {k: v for k, v in ctx.ck["config"].items() if k not in SEED_FREE}
    theirs = {k: v for k, v in ck["config"].items() if k not in SEED_FREE}
    if mine != theirs:
        diff = ", ".join(f"{k} {theirs.get(k)} vs {mine.get(k)}" for k in sorted(set(mine) | set(theirs))
                         if mine.get(k) != theirs.get(k))
        raise MMError(f"seed checkpoint was trained with other settings than the attributed one ({diff})",
                      checkpoint)
    vocab, net = network(ck)
    if vocab != ctx.vocab:
        raise MMError("seed checkpoint has another vocabulary than the attributed one", checkpoint)
    enc = Encoder(ctx.lib, net, vocab, torch.device("cpu"))
    steps = build_steps(ctx.lib, training_theorems(ctx.lib, ctx.split), ck["config"]["seed"])
    return Context(os.path.abspath(checkpoint), ck, ctx.db, ctx.lib, ctx.split, vocab, net, enc, steps,
                   ctx.theorems, theorem_groups(steps, ctx.theorems))
