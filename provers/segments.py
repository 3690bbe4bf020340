"""Training segments: what SOURCE attribution (``attribute --method source``) needs of a training run.

SOURCE (Bae et al. 2024, arXiv 2405.12186) splits training into ``L``
segments and treats each as stationary: one curvature, one gradient per
example, one learning rate ``eta_l`` and step count ``K_l``. Training cuts
its optimizer steps into ``L`` equal spans (:func:`segment_bounds`; by
steps, not epochs, so that two epochs still give three segments) and at the
end of each keeps a snapshot of the weights with ``K_l``, the nominal
learning rate and the effective one (:func:`adam_effective_lr`). A saved
checkpoint holds the segments up to its own step (:func:`for_checkpoint`):
the finished ones, then the span since the last boundary when the checkpoint
falls inside a segment (the best epoch usually does). The last segment
always ends at the checkpoint itself, so its weights are the checkpoint's
and are not stored twice.

SOURCE assumes SGD; the prover trains with AdamW, whose step is
``eta m / (sqrt(v) + eps)`` per parameter. We keep SOURCE's scalar learning
rate and take for it the SGD rate with the same first-order loss decrease
along a gradient whose squared entries are Adam's second moments ``v``:
``eta_eff = eta sum(v / (sqrt(v) + eps)) / sum(v)``. This ignores the
per-parameter shape of Adam's preconditioner (which would not share the
curvature's eigenbasis), momentum (over ``K`` steps it delays, not scales,
the displacement) and AdamW's weight decay (``eta x weight_decay x K``,
about 1e-5 here).
"""
from __future__ import annotations

import copy

import torch

from metamath import MMError

SEGMENTS = 3


def segment_bounds(total_steps: int, segments: int) -> list[int]:
    """The optimizer step (1-based, cumulative) at which each of ``segments`` equal spans ends."""
    if segments < 1 or total_steps < 1:
        return []
    cuts = sorted({max(1, round(l * total_steps / segments)) for l in range(1, segments + 1)})
    return cuts


def adam_effective_lr(opt: torch.optim.Optimizer) -> float:
    """The scalar SGD learning rate standing in for Adam's preconditioned step (module docstring);
    the nominal rate when Adam has no second moments yet."""
    num = den = 0.0
    nominal = float(opt.param_groups[0]["lr"])
    for group in opt.param_groups:
        _, beta2 = group["betas"]
        for p in group["params"]:
            st = opt.state.get(p)
            if not st or "exp_avg_sq" not in st:
                continue
            step = float(st["step"])
            v = st["exp_avg_sq"].double() / (1.0 - beta2 ** step)
            num += float(group["lr"]) * float((v / (v.sqrt() + group["eps"])).sum())
            den += float(v.sum())
    return num / den if den > 0 else nominal


def snapshot(net: torch.nn.Module, opt: torch.optim.Optimizer, start: int, end: int) -> dict:
    """A finished segment: steps ``start+1 .. end``, with the weights at ``end``."""
    return {"end_step": end, "steps": end - start, "lr": float(opt.param_groups[0]["lr"]),
            "effective_lr": adam_effective_lr(opt),
            "model": {k: v.detach().clone() for k, v in net.state_dict().items()}}


def for_checkpoint(done: list[dict], step: int, opt: torch.optim.Optimizer) -> list[dict]:
    """The segments of a checkpoint saved at ``step``: ``done`` (finished, with weights) up to
    ``step``, then the open span when ``step`` is not a boundary; the last one without weights
    (they are the checkpoint's)."""
    segs = [dict(s) for s in done if s["end_step"] <= step]
    start = segs[-1]["end_step"] if segs else 0
    if step > start:
        segs.append({"end_step": step, "steps": step - start, "lr": float(opt.param_groups[0]["lr"]),
                     "effective_lr": adam_effective_lr(opt)})
    if segs:
        segs[-1].pop("model", None)
    return segs


def resumed(ck: dict, bounds: list[int]) -> list[dict]:
    """The finished segments of a checkpoint to continue from (its open span is dropped)."""
    out = []
    for s in ck.get("segments", []):
        if s["end_step"] not in bounds:
            continue
        s = dict(s)
        if "model" not in s:
            s["model"] = copy.deepcopy(ck["model"])
        out.append(s)
    return out


def checkpoint_segments(ck: dict, path: str) -> list[dict]:
    """A checkpoint's segments, each with its weights (``model``); MMError when it has none."""
    segs = ck.get("segments")
    if not segs:
        raise MMError("this checkpoint has no training segments (it was trained before they were saved); "
                      "train it again with `mmrefactor prover train` to use --method source", path)
    out = [dict(s) for s in segs]
    out[-1]["model"] = ck["model"]
    return out
