"""Train the prover's networks on a corpus's training proofs; checkpoints and resume.

One loss per batch of human steps: cross-entropy of the human assertion
among the assertions matching the goal (at most ``max_applicable``, the
human one always in), cross-entropy of the human term among each free
slot's pool (when the pool holds it), and binary cross-entropy of the value
(human goals and subgoals provable, subgoals of wrong matching assertions
not). ``DIR/checkpoint.pt`` keeps the best epoch on the validation loss,
``DIR/last.pt`` the latest (``--resume`` continues from it), and
``DIR/metrics.json`` the history. Every checkpoint names the corpus (hash)
and split it was trained on, and holds its training segments (weights,
learning rate and step count at the end of each of 3 equal spans of the
optimizer steps, :mod:`provers.segments`) for SOURCE attribution.

Under ``torchrun`` (several processes) the loop is data-parallel
(:mod:`metamath.ddp`): every rank draws the same permutation and the same
capped candidates, takes its share of each global batch of
``batch_size`` steps, and DDP averages the gradients, so the run equals
the single-process one with the same seed up to float summation order;
validation is shared out the same way and its counts summed; rank 0 writes
the files. Without ``torchrun`` the loop is the single-process one.
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from metamath import Database, MMError, verify_all
from metamath.ddp import Ranks, session
from metamath.write import atomic_path, write_json

from .data import Step, build_steps, pool_coverage, training_theorems
from .library import Library
from .model import Namer, ProverNet, Vocab, encode_trees
from .segments import SEGMENTS, for_checkpoint, resumed, segment_bounds, snapshot
from .split import Split, load_split

FORMAT = "mmrefactor-prover-1"


@dataclass
class TrainConfig:
    seed: int = 0
    epochs: int = 12
    dim: int = 64
    rounds: int = 3
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 32
    max_applicable: int = 64
    device: str = "cpu"
    #: CPU threads; one is fastest for these small ops on a shared 2-core machine (12x over two under load)
    threads: int = 1


class Encoder:
    """Turns a batch's goals, hypotheses, assertions and terms into vectors with one encoder call."""

    def __init__(self, lib: Library, net: ProverNet, vocab: Vocab, device):
        self.lib, self.net, self.device = lib, net, device
        self.index = vocab.index()
        self.var_typecode = {f: lib.db.statements[f].expr[0] for f in lib.floats}
        self._namers: dict[str, Namer] = {}
        self._assertion_namers: dict[str, Namer] = {}

    def theorem_namer(self, label: str) -> Namer:
        n = self._namers.get(label)
        if n is None:
            from .actions import problem

            p = problem(self.lib, label)
            n = self._namers[label] = Namer(self.var_typecode).see(*p.context)
        return n

    def assertion_trees(self, label: str) -> list:
        a = self.lib.assertions[label]
        n = self._assertion_namers.get(label)
        if n is None:
            n = self._assertion_namers[label] = Namer(self.var_typecode).see(a.conclusion, *a.hyps)
        return [(a.conclusion, n)] + [(h, n) for h in a.hyps]

    def encode(self, trees: list) -> torch.Tensor:
        return encode_trees(self.net, trees, self.index, self.device)

    def assertion_vecs(self, labels: list[str]) -> torch.Tensor:
        """``[len(labels), dim]``: ``A(a)`` for each assertion."""
        trees, spans = [], []
        for l in labels:
            t = self.assertion_trees(l)
            spans.append((len(trees), len(t)))
            trees += t
        v = self.encode(trees)
        zero = torch.zeros(self.net.dim, device=self.device)
        concl = torch.stack([v[i] for i, _ in spans])
        hyps = torch.stack([v[i + 1 : i + n].mean(0) if n > 1 else zero for i, n in spans])
        return self.net.assertion_vec(concl, hyps)


def capped(st: Step, rng: random.Random, max_applicable: int) -> list[str]:
    """The assertions a step's relevance loss ranks: the matching ones, or, over ``max_applicable``,
    the human one and a sample of the others drawn from ``rng``."""
    cands = list(st.applicable)
    if len(cands) > max_applicable:
        others = [c for c in cands if c != st.assertion]
        cands = [st.assertion] + rng.sample(others, max_applicable - 1)
    return cands


def batch_loss(enc: Encoder, steps: list[Step], rng: random.Random | None, max_applicable: int,
               hyps_of, candidates: list[list[str]] | None = None) -> tuple[torch.Tensor, dict]:
    """The summed loss of ``steps`` and counts for accuracy (top-1 relevance, term, value).

    ``candidates``: each step's ranked assertions, drawn beforehand (:func:`capped`); else drawn
    here from ``rng``, step by step."""
    net = enc.net
    trees: list = []

    def add(term, namer) -> int:
        trees.append((term, namer))
        return len(trees) - 1

    rows = []
    for k, st in enumerate(steps):
        nm = enc.theorem_namer(st.theorem)
        g = add(st.goal, nm)
        hs = [add(h, nm) for h in hyps_of(st.theorem)]
        cands = candidates[k] if candidates is not None else capped(st, rng, max_applicable)
        slots = [(sl, [add(t, nm) for t in sl[1]]) for sl in st.slots if sl[2] >= 0]
        vals = [(add(t, nm), 1.0) for t in st.subgoals] + [(add(t, nm), 0.0) for t in st.negatives]
        rows.append((g, hs, cands, slots, vals))
    vec = enc.encode(trees)
    labels = sorted({c for r in rows for c in r[2]})
    where = {l: i for i, l in enumerate(labels)}
    A = enc.assertion_vecs(labels)
    rel_loss = term_loss = val_loss = torch.zeros((), device=vec.device)
    counts = {"steps": 0, "rel_top1": 0, "slots": 0, "term_top1": 0, "values": 0, "value_right": 0}
    for (g, hs, cands, slots, vals), st in zip(rows, steps):
        ctx = net.context(vec[hs] if hs else None)
        s = net.state(vec[g], ctx)
        idx = torch.tensor([where[c] for c in cands], device=vec.device)
        logits = A[idx] @ s
        target = cands.index(st.assertion)
        rel_loss = rel_loss + nn.functional.cross_entropy(logits.unsqueeze(0), torch.tensor([target], device=vec.device))
        counts["steps"] += 1
        counts["rel_top1"] += int(int(logits.argmax()) == target)
        a = A[where[st.assertion]]
        for (var, terms, human), ids in slots:
            tl = net.term_logits(s, a, vec[ids])
            term_loss = term_loss + nn.functional.cross_entropy(tl.unsqueeze(0), torch.tensor([human], device=vec.device))
            counts["slots"] += 1
            counts["term_top1"] += int(int(tl.argmax()) == human)
        if vals:
            vi = torch.tensor([i for i, _ in vals], device=vec.device)
            y = torch.tensor([y for _, y in vals], device=vec.device)
            vl = net.value_logit(vec[vi], ctx.expand(len(vals), -1))
            val_loss = val_loss + nn.functional.binary_cross_entropy_with_logits(vl, y, reduction="sum")
            counts["values"] += len(vals)
            counts["value_right"] += int(((vl > 0).float() == y).sum())
    loss = rel_loss + term_loss + val_loss
    counts.update(rel_loss=float(rel_loss.detach()), term_loss=float(term_loss.detach()),
                  value_loss=float(val_loss.detach()))
    return loss, counts


def _summary(total: dict) -> dict:
    n = max(total["steps"], 1)
    return {"loss": (total["rel_loss"] + total["term_loss"] + total["value_loss"]) / n,
            "relevance_top1": total["rel_top1"] / n,
            "term_top1": total["term_top1"] / max(total["slots"], 1),
            "value_accuracy": total["value_right"] / max(total["values"], 1)}


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise MMError("--device cuda asked for, but no CUDA device is available", "<options>")
    return torch.device(name)


def load_corpus(path: str) -> tuple[Database, Library]:
    """Read and verify a corpus; one that fails verification is refused."""
    db = Database.from_file(path)
    rep = verify_all(db)
    if rep.failed:
        f = rep.failed[0]
        raise MMError(f"the corpus does not verify ({len(rep.failed)} failed proofs, first "
                      f"{f['label']}: {f.get('reason', '')}); refusing to train on it", path)
    return db, Library(db)


class StepLoss(nn.Module):
    """:func:`batch_loss` as a module's forward: what DDP wraps, so that it sees the forward whose
    backward it synchronises (the networks are its ``net``)."""

    def __init__(self, enc: Encoder, hyps_of, max_applicable: int):
        super().__init__()
        self.net = enc.net
        self._enc, self._hyps_of, self._max_applicable = enc, hyps_of, max_applicable

    def forward(self, steps: list[Step], candidates: list[list[str]]) -> tuple[torch.Tensor, dict]:
        if not steps:  # a rank without a share of a short last batch: zero, but on every parameter
            zero = sum(p.sum() for p in self.net.parameters()) * 0.0
            return zero, {}
        return batch_loss(self._enc, steps, None, self._max_applicable, self._hyps_of, candidates)


_COUNTS = ("steps", "rel_top1", "slots", "term_top1", "values", "value_right")
_LOSSES = ("rel_loss", "term_loss", "value_loss")


def _totals() -> dict:
    return {**dict.fromkeys(_COUNTS, 0), **dict.fromkeys(_LOSSES, 0.0)}


def train_prover(corpus: str, split_path: str, out: str, cfg: TrainConfig, resume: bool = False,
                 progress: bool = True, segments: int = SEGMENTS) -> dict:
    """Train on ``corpus``'s training proofs; see the module docstring. Returns the metrics.
    ``segments``: how many training segments checkpoints keep (not in ``cfg``: it changes no weight).

    Under ``torchrun`` every process calls this; they train one model together (DDP) and rank 0
    writes ``out``."""
    with session(cfg.device) as ranks:
        return _train(corpus, split_path, out, cfg, resume, progress and ranks.main, ranks, segments)


def _train(corpus: str, split_path: str, out: str, cfg: TrainConfig, resume: bool, progress: bool,
           ranks: Ranks, segments: int) -> dict:
    torch.manual_seed(cfg.seed)
    device = ranks.device(_device(cfg.device).type)
    if device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    db, lib = load_corpus(corpus)
    split = load_split(split_path, db)
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    train = build_steps(lib, training_theorems(lib, split), cfg.seed, progress)
    valid = build_steps(lib, list(split.valid), cfg.seed, progress)
    data_seconds = time.perf_counter() - t0
    syntax = {r.label for r in lib.grammar.rules}
    vocab = Vocab.of(syntax, db.syntax_typecodes)
    net = ProverNet(len(vocab.labels), cfg.dim, cfg.rounds).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[dict] = []
    start, best = 0, math.inf
    rng = random.Random(cfg.seed)
    per_epoch = math.ceil(len(train) / cfg.batch_size)
    bounds = segment_bounds(cfg.epochs * per_epoch, segments)
    done: list[dict] = []
    last = os.path.join(out, "last.pt")
    if resume and os.path.exists(last):
        ck = torch.load(last, map_location=device, weights_only=False)
        check_checkpoint(ck, db, split, last)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start, best, history = ck["epoch"], ck["best_valid_loss"], ck["history"]
        if "rng" in ck:  # the shuffling and sampling stream goes on where it stopped
            rng.setstate(ck["rng"])
        done = resumed(ck, bounds)
    step = start * per_epoch
    enc = Encoder(lib, net, vocab, device)
    hyp_cache: dict[str, list] = {}

    def hyps_of(label: str) -> list:
        h = hyp_cache.get(label)
        if h is None:
            from .actions import problem

            h = hyp_cache[label] = list(problem(lib, label).hyps)
        return h

    model = ranks.wrap(StepLoss(enc, hyps_of, cfg.max_applicable))
    meta = {"format": FORMAT, "corpus": os.path.abspath(corpus), "corpus_sha256": db.sha256(),
            "split": os.path.abspath(split_path), "split_key": split.key(), "config": asdict(cfg),
            "vocab": list(vocab.labels)}
    # validation: every rank draws the candidates of all steps alike (as one process would, in
    # order), then scores its share
    vrng = random.Random(0)
    vcands = [capped(st, vrng, cfg.max_applicable) for st in valid]
    vmine = ranks.share(range(len(valid)))
    for epoch in range(start, cfg.epochs):
        e0 = time.perf_counter()
        net.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        total = _totals()
        batches = range(0, len(order), cfg.batch_size)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, desc=f"prover epoch {epoch + 1}/{cfg.epochs}", leave=False, mininterval=0.5)
        for b in batches:
            chunk = [train[i] for i in order[b : b + cfg.batch_size]]
            cands = [capped(st, rng, cfg.max_applicable) for st in chunk]  # every rank: the whole batch's
            mine = ranks.share(range(len(chunk)))
            loss, counts = model([chunk[i] for i in mine], [cands[i] for i in mine])
            opt.zero_grad()
            if ranks.distributed:  # DDP averages over ranks: together, the mean over the global batch
                (loss * (ranks.world / len(chunk))).backward()
            else:
                (loss / len(chunk)).backward()
            opt.step()
            step += 1
            if step in bounds:
                done.append(snapshot(net, opt, done[-1]["end_step"] if done else 0, step))
            for k, v in counts.items():
                total[k] += v
        total = ranks.sum(total)
        net.eval()
        vtotal = _totals()
        with torch.no_grad():
            for b in range(0, len(vmine), 128):
                idx = vmine[b : b + 128]
                _, counts = batch_loss(enc, [valid[i] for i in idx], None, cfg.max_applicable, hyps_of,
                                       [vcands[i] for i in idx])
                for k, v in counts.items():
                    vtotal[k] += v
        vtotal = ranks.sum(vtotal)
        row = {"epoch": epoch + 1, "seconds": time.perf_counter() - e0,
               "train": _summary(total), "valid": _summary(vtotal)}
        history.append(row)
        state = {**meta, "model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                 "history": history, "best_valid_loss": best, "rng": rng.getstate(),
                 "segments": for_checkpoint(done, step, opt)}
        if row["valid"]["loss"] < best:
            best = state["best_valid_loss"] = row["valid"]["loss"]
            if ranks.main:
                _save(state, os.path.join(out, "checkpoint.pt"))
        if ranks.main:
            _save(state, last)
    metrics = {"corpus": os.path.abspath(corpus), "split": os.path.abspath(split_path), "seed": cfg.seed,
               "device": str(device), "world_size": ranks.world,
               "train_theorems": len(training_theorems(lib, split)),
               "train_steps": len(train), "valid_steps": len(valid), "data_seconds": data_seconds,
               "pool_coverage_valid": pool_coverage(valid), "pool_coverage_train": pool_coverage(train),
               "config": asdict(cfg), "history": history,
               "best_valid_loss": best, "checkpoint": os.path.join(out, "checkpoint.pt")}
    if ranks.main:
        write_json(os.path.join(out, "metrics.json"), metrics)
    ranks.barrier()  # every rank returns once the files are there
    return metrics


def _save(state: dict, path: str) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def check_checkpoint(ck: dict, db: Database, split: Split, path: str) -> None:
    """Refuse a checkpoint made on another corpus or split (MMError)."""
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise MMError("not a prover checkpoint", path)
    if ck["corpus_sha256"] != db.sha256():
        raise MMError(f"checkpoint was trained on another database ({ck['corpus']})", path)
    if ck["split_key"] != split.key():
        raise MMError(f"checkpoint was trained on another split ({ck['split']})", path)


def load_checkpoint(path: str, device: str = "cpu") -> dict:
    try:
        ck = torch.load(path, map_location=device, weights_only=False)
    except FileNotFoundError:
        raise MMError("no such checkpoint", path) from None
    except Exception as exc:  # a truncated or foreign file
        raise MMError(f"cannot read checkpoint: {exc}", path) from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise MMError("not a prover checkpoint", path)
    return ck
