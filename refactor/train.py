"""Training loop, metrics, checkpoints and resume for the node classifier.

``train(dataset_dir, out_dir, ...)`` writes ``out/checkpoint.pt`` (the best
epoch on valid, ranked by proof accuracy then F1), ``out/last.pt`` (every
epoch: model, optimiser, RNG states; ``resume=True`` continues from it) and
``out/metrics.json`` (config, seed, per-epoch history, best, test metrics,
throughput). Proof accuracy is REFACTOR's headline measure: the share of
examples whose every node is classified right.

Under ``torchrun`` (several processes) training is data-parallel
(:mod:`metamath.ddp`): every rank draws the same epoch permutation, takes
its share of each global batch of ``batch_size`` graphs, and backpropagates
its summed node loss scaled by ``world / nodes in the global batch``, so
DDP's gradient average is the single process's mean node loss; validation
and test are shared out and their counts summed (integers: exact). With
dropout each rank draws its own masks (seeded by seed, epoch and rank), so
only a dropout-free preset equals the single-process run up to float
error. Rank 0 writes the files.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from metamath.ddp import Ranks, session
from metamath.write import atomic_path, write_json

from .dataset import load_dataset
from .decode import decode_batch, structured_loss
from .model import ModelConfig, ProofGNN, TrainConfig, config_dict

CHECKPOINT_FORMAT = "mmrefactor-node-classifier/1"


class CheckpointError(Exception):
    """A checkpoint that cannot be used (corrupt, foreign, or for another dataset)."""


def pick_device(name: str | None = None) -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise CheckpointError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


_FIGURES = ("node_accuracy", "precision", "recall", "f1", "proof_accuracy", "predicted_positive")


def _figures(tp: int, fp: int, fn: int, tn: int, exact: int, examples: int) -> dict:
    nodes = tp + fp + fn + tn
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"node_accuracy": round((tp + tn) / nodes, 4) if nodes else 0.0, "precision": round(prec, 4),
            "recall": round(rec, 4), "f1": round(f1, 4),
            "proof_accuracy": round(exact / examples, 4) if examples else 0.0,
            "predicted_positive": round((tp + fp) / nodes, 4) if nodes else 0.0}


def metrics_from_counts(tp: int, fp: int, fn: int, tn: int, exact: int, examples: int,
                        decoded: tuple[int, int, int, int, int] | None = None) -> dict:
    """Node and proof-level figures from counts. ``decoded``: the same five counts (tp, fp, fn, tn,
    exact) of the predictions after :func:`refactor.decode.decode_inlined`, reported as the same
    figures with a ``_decoded`` suffix (None, as for the all-negative baseline: not decoded)."""
    out = _figures(tp, fp, fn, tn, exact, examples)
    dec = _figures(*decoded, examples) if decoded is not None else {}
    out.update({f"{k}_decoded": dec.get(k) for k in _FIGURES})
    return {**out, "examples": examples, "nodes": tp + fp + fn + tn}


@torch.no_grad()
def evaluate_model(model: ProofGNN | None, dataset, device: torch.device, batch_size: int = 64,
                   ranks: Ranks = Ranks()) -> dict:
    """Node and proof-level metrics; ``model=None`` is the all-negative baseline. Beside the figures of
    the predictions thresholded at logit 0, the same figures (``*_decoded``) of the structured decoder's
    sets (:mod:`refactor.decode`), which are a ``--loss structured`` model's prediction.

    ``ranks`` (under torchrun): each rank counts its share of ``dataset``; the counts are summed."""
    if model is not None:
        model.eval()
    if ranks.distributed:
        dataset = torch.utils.data.Subset(dataset, ranks.share(range(len(dataset))))
    kinds = ("thresholded",) if model is None else ("thresholded", "decoded")
    counts = {k: dict.fromkeys(("tp", "fp", "fn", "tn", "exact"), 0) for k in kinds}
    examples = 0
    for batch in DataLoader(dataset, batch_size=batch_size):
        batch = batch.to(device)
        y = batch.y > 0.5
        if model is None:
            preds = {"thresholded": torch.zeros_like(batch.y, dtype=torch.bool)}
        else:
            logits = model(batch)
            preds = {"thresholded": logits > 0, "decoded": decode_batch(batch, logits)}
        for kind, pred in preds.items():
            c = counts[kind]
            c["tp"] += int((pred & y).sum())
            c["fp"] += int((pred & ~y).sum())
            c["fn"] += int((~pred & y).sum())
            c["tn"] += int((~pred & ~y).sum())
            wrong = torch.zeros(batch.num_graphs, device=device)  # per example of the batch
            wrong.index_add_(0, batch.batch, (pred != y).float())
            c["exact"] += int((wrong == 0).sum())
        examples += batch.num_graphs
    if ranks.distributed:
        flat = ranks.sum({f"{kind} {k}": v for kind, c in counts.items() for k, v in c.items()} | {"n": examples})
        counts = {kind: {k: flat[f"{kind} {k}"] for k in c} for kind, c in counts.items()}
        examples = flat["n"]
    order = ("tp", "fp", "fn", "tn", "exact")
    return metrics_from_counts(*(counts["thresholded"][k] for k in order), examples,
                               tuple(counts["decoded"][k] for k in order) if model is not None else None)


def node_loss(logits: torch.Tensor, y: torch.Tensor, pos_weight: torch.Tensor | None = None,
              gamma: float | None = None, reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy per node, or with ``gamma`` the focal loss (Lin et al. 2017): each node's
    BCE times ``(1 - p_t)^gamma``, so that the many easy negatives of a 14%-positive set weigh less
    than the nodes the model still gets wrong. ``gamma = 0`` is BCE."""
    if gamma is None:
        return F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight, reduction=reduction)
    bce = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * y + (1 - p) * (1 - y)
    fl = bce * (1 - p_t).pow(gamma)
    return fl.sum() if reduction == "sum" else fl.mean()


class NodeLoss(nn.Module):
    """The node classifier's loss (:func:`node_loss`, or with ``structured`` the tree CRF's
    :func:`refactor.decode.structured_loss`) as a module's forward: what DDP wraps, so that it sees the
    forward whose backward it synchronises (the classifier is its ``model``)."""

    def __init__(self, model: ProofGNN, pos_weight: torch.Tensor | None, gamma: float | None = None,
                 structured: bool = False):
        super().__init__()
        self.model = model
        self.pos_weight = pos_weight
        self.gamma = gamma
        self.structured = structured

    def forward(self, batch, reduction: str = "mean") -> torch.Tensor:
        if batch is None:  # a rank without a share of a short last batch: zero, but on every parameter
            return sum(p.sum() for p in self.model.parameters()) * 0.0
        if self.structured:
            return structured_loss(batch, self.model(batch), reduction)
        return node_loss(self.model(batch), batch.y, self.pos_weight, self.gamma, reduction)


def balanced_weights(inlined: list[str]) -> torch.Tensor:
    """Sampling weights that draw every inlined theorem equally often (1 / its examples): the
    expansion dataset holds up to 100 examples of a popular theorem and one of a rare one."""
    counts: dict[str, int] = {}
    for t in inlined:
        counts[t] = counts.get(t, 0) + 1
    return torch.tensor([1.0 / counts[t] for t in inlined], dtype=torch.double)


def epoch_batches(n: int, batch_size: int, gen: torch.Generator,
                  weights: torch.Tensor | None = None) -> list[list[int]]:
    """One epoch's batches of example indices: a seeded permutation, or with ``weights`` ``n`` draws
    with replacement in proportion to them (balanced sampling)."""
    if weights is None:  # a loader over the graphs themselves draws the same permutation
        return list(torch.utils.data.DataLoader(range(n), batch_size=batch_size, shuffle=True, generator=gen,
                                                collate_fn=list))
    order = torch.multinomial(weights, n, replacement=True, generator=gen).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _rank(m: dict, structured: bool = False) -> tuple:
    """The best epoch's order: proof accuracy, F1, node accuracy (a structured model's decoded figures:
    the decoded set is its prediction)."""
    sfx = "_decoded" if structured else ""
    # epochs recorded before the decoded node figures existed have only the decoded proof accuracy
    return tuple(m.get(k + sfx, m[k]) for k in ("proof_accuracy", "f1", "node_accuracy"))


def _atomic_save(obj, path: str) -> None:
    """``torch.save`` to ``path`` atomically: a crash mid-save leaves the previous checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: str, device: torch.device | str = "cpu") -> dict:
    """Read a checkpoint written by :func:`train`, with a clear error when it is not one."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ck = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an mmrefactor node-classifier checkpoint")
    return ck


def model_from_checkpoint(ck: dict, vocab, device) -> ProofGNN:
    model = ProofGNN(ModelConfig(**ck["config"]["model"]), vocab).to(device)
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint does not fit its dataset's vocabulary: {exc}") from None
    return model


_NOT_LEARNING = ("epochs", "collapse_patience")  # what a resumed run may change


def _what_is_learned(cfg: dict) -> dict:
    """A config without what does not change what is learned (epoch count, collapse patience): a run
    may be resumed to train longer. Fields added since a checkpoint was written take their defaults."""
    train = {**asdict(TrainConfig()), **cfg["train"]}
    return {"model": cfg["model"], "train": {k: v for k, v in train.items() if k not in _NOT_LEARNING}}


def _initial_weights(path: str, cfg: dict, meta: dict, dev: torch.device) -> dict:
    """The model weights of checkpoint ``path`` for a run that starts from them (``TrainConfig.init``):
    same model configuration, same dataset."""
    ck = load_checkpoint(path, dev)
    if ck["config"]["model"] != cfg["model"]:
        raise CheckpointError(f"{path}: its model ({ck['config']['model']}) is not this run's ({cfg['model']})")
    if ck["dataset_key"] != meta["key"]:
        raise CheckpointError(f"{path}: trained on another dataset than this run's")
    return ck["model"]


def train(dataset_dir: str, out: str, model_cfg: ModelConfig, train_cfg: TrainConfig,
          device: str | None = None, resume: bool = False, progress: bool = False,
          log=print) -> dict:
    """Train, keep the best checkpoint on valid, evaluate it on test; return metrics.

    Under ``torchrun`` every process calls this; they train one model together (DDP, see the module
    docstring) and rank 0 writes ``out`` and logs."""
    dev = pick_device(device)
    with session(dev.type) as ranks:
        return _train(dataset_dir, out, model_cfg, train_cfg, ranks.device(dev.type), resume,
                      progress and ranks.main, log if ranks.main else (lambda *a: None), ranks)


def _train(dataset_dir: str, out: str, model_cfg: ModelConfig, train_cfg: TrainConfig, dev: torch.device,
           resume: bool, progress: bool, log, ranks: Ranks) -> dict:
    meta, vocab, splits = load_dataset(dataset_dir)
    os.makedirs(out, exist_ok=True)
    last_path = os.path.join(out, "last.pt")
    best_path = os.path.join(out, "checkpoint.pt")
    seed_everything(train_cfg.seed)
    train_set = splits["train"]
    if train_cfg.max_train_examples and len(train_set) > train_cfg.max_train_examples:
        g = torch.Generator().manual_seed(train_cfg.seed)
        idx = torch.randperm(len(train_set), generator=g)[: train_cfg.max_train_examples]
        train_set = torch.utils.data.Subset(train_set, idx.sort().values.tolist())
    model = ProofGNN(model_cfg, vocab).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    cfg = config_dict(model_cfg, train_cfg)
    history: list[dict] = []
    best = None
    start_epoch = 0
    if resume and os.path.exists(last_path):
        ck = load_checkpoint(last_path, dev)
        if _what_is_learned(ck["config"]) != _what_is_learned(cfg) or ck["dataset_key"] != meta["key"]:
            raise CheckpointError(f"{last_path}: written for another configuration or dataset; "
                                  f"use a new --out or drop --resume")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        history, best, start_epoch = ck["history"], ck["best"], ck["epoch"] + 1
        torch.set_rng_state(ck["rng"]["torch"])
        random.setstate(ck["rng"]["python"])
        np.random.set_state(ck["rng"]["numpy"])
        log(f"resuming after epoch {ck['epoch'] + 1} of {train_cfg.epochs}")
    elif train_cfg.init:
        model.load_state_dict(_initial_weights(train_cfg.init, cfg, meta, dev))
        log(f"starting from the weights of {train_cfg.init}")
    pos_weight = torch.tensor(train_cfg.pos_weight, device=dev) if train_cfg.pos_weight else None
    structured = train_cfg.loss == "structured"
    loss_of = ranks.wrap(NodeLoss(model, pos_weight, train_cfg.focal_gamma if train_cfg.loss == "focal" else None,
                                  structured))
    weights = balanced_weights([g.inlined for g in train_set]) if train_cfg.sampling == "balanced" else None
    collapsed = 0  # consecutive epochs predicting no positive node on valid (a resumed run counts on)
    for rec in reversed(history):
        if rec["valid"].get("predicted_positive", 1) != 0:
            break
        collapsed += 1
    stopped = None
    # under DDP a rank scales its loss by the nodes of the whole global batch: every graph's size, once
    sizes = [g.num_nodes for g in train_set] if ranks.distributed else None
    loader_gen = torch.Generator().manual_seed(train_cfg.seed)
    t_train = 0.0
    seen = 0
    for epoch in range(start_epoch, train_cfg.epochs):
        loader_gen.manual_seed(train_cfg.seed * 1000 + epoch)
        batches = epoch_batches(len(train_set), train_cfg.batch_size, loader_gen, weights)
        if ranks.distributed:  # each rank its own dropout masks, reproducible on resume
            torch.manual_seed((train_cfg.seed * 1000 + epoch) * ranks.world + ranks.rank)
        model.train()
        t0 = time.perf_counter()
        total = 0.0
        it = batches
        if progress:
            from tqdm import tqdm

            it = tqdm(batches, desc=f"epoch {epoch + 1}/{train_cfg.epochs}", unit="batch", leave=False)
        for idx in it:
            mine = ranks.share(idx)
            batch = Batch.from_data_list([train_set[i] for i in mine]).to(dev) if mine else None
            opt.zero_grad()
            if ranks.distributed:  # DDP averages over ranks: together, the mean over the global batch's nodes
                nodes = sum(sizes[i] for i in idx)
                loss = loss_of(batch, reduction="sum")
                (loss * (ranks.world / nodes)).backward()
                total += float(loss.detach()) / nodes * len(idx)
            else:
                loss = loss_of(batch)
                loss.backward()
                total += float(loss.detach()) * batch.num_graphs
            opt.step()
        total = ranks.sum({"loss": total})["loss"]
        dt = time.perf_counter() - t0
        t_train += dt
        seen += len(train_set)
        val = evaluate_model(model, splits["valid"], dev, ranks=ranks)
        rec = {"epoch": epoch + 1, "loss": round(total / len(train_set), 5), "seconds": round(dt, 2),
               "valid": val}
        history.append(rec)
        improved = best is None or _rank(val, structured) > _rank(best["valid"], structured)
        if improved:
            best = rec
        state = {"format": CHECKPOINT_FORMAT, "config": cfg, "dataset": os.path.abspath(dataset_dir),
                 "dataset_key": meta["key"], "model": model.state_dict(), "epoch": epoch,
                 "history": history, "best": best}
        if improved and ranks.main:
            _atomic_save(state, best_path)
        state.update(optimizer=opt.state_dict(), rng={"torch": torch.get_rng_state(),
                                                      "python": random.getstate(),
                                                      "numpy": np.random.get_state()})
        if ranks.main:
            _atomic_save(state, last_path)
        log(f"epoch {epoch + 1:>3}  loss {rec['loss']:.4f}  valid node acc {val['node_accuracy']:.3f}  "
            f"F1 {val['f1']:.3f}  proof acc {val['proof_accuracy']:.3f} (decoded {val['proof_accuracy_decoded']:.3f})  "
            f"({dt:.1f} s)"
            + ("  *" if improved else ""))
        collapsed = collapsed + 1 if val["predicted_positive"] == 0 else 0
        if collapsed:
            log(f"warning: no node predicted positive on valid ({collapsed} epoch(s) in a row): the model has "
                f"collapsed to all-negative; try --pos-weight, --loss focal or --sampling balanced")
        if train_cfg.collapse_patience and collapsed >= train_cfg.collapse_patience and epoch + 1 < train_cfg.epochs:
            stopped = f"collapsed to all-negative on valid for {collapsed} epochs; stopped after epoch {epoch + 1}"
            log(f"stopping: {stopped}")
            break
    ranks.barrier()  # rank 0 has written the best checkpoint
    ck = load_checkpoint(best_path, dev)
    model.load_state_dict(ck["model"])
    result = {
        "config": cfg, "seed": train_cfg.seed, "device": str(dev), "world_size": ranks.world,
        "dataset": os.path.abspath(dataset_dir),
        "train_examples": len(train_set), "best_epoch": ck["epoch"] + 1, "history": history,
        "stopped_early": stopped,
        "valid": evaluate_model(model, splits["valid"], dev, ranks=ranks),
        "test": evaluate_model(model, splits["test"], dev, ranks=ranks),
        "baseline_all_negative": {"valid": evaluate_model(None, splits["valid"], dev, ranks=ranks),
                                  "test": evaluate_model(None, splits["test"], dev, ranks=ranks)},
        "train_seconds": round(t_train, 1),
        "examples_per_second": round(seen / t_train, 1) if t_train else None,
        "threads": torch.get_num_threads(),
    }
    if ranks.main:
        write_json(os.path.join(out, "metrics.json"), result)
    ranks.barrier()
    return result


def evaluate_checkpoint(path: str, device: str | None = None) -> dict:
    """Valid and test metrics of a saved checkpoint, on the dataset it was trained on."""
    dev = pick_device(device)
    ck = load_checkpoint(path, dev)
    meta, vocab, splits = load_dataset(ck["dataset"])
    if meta["key"] != ck["dataset_key"]:
        raise CheckpointError(f"{path}: its dataset {ck['dataset']} was rebuilt with other options since")
    model = model_from_checkpoint(ck, vocab, dev)
    return {"checkpoint": path, "epoch": ck["epoch"] + 1, "config": ck["config"],
            "valid": evaluate_model(model, splits["valid"], dev),
            "test": evaluate_model(model, splits["test"], dev),
            "baseline_all_negative": {"valid": evaluate_model(None, splits["valid"], dev),
                                      "test": evaluate_model(None, splits["test"], dev)}}
