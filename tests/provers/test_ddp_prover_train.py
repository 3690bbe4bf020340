"""The prover's training under torchrun (2 CPU processes, gloo) equals the single-process run.

With the same seed, both runs draw the same permutation and the same capped
candidates; DDP cuts each global batch of 32 steps across the two ranks
(16 each) and averages their gradients, each rank's loss scaled by
``2 / 32``, which is the single process's mean over the 32. So they differ
only by the order of float summation. Tolerances: losses within 1e-6
relative, top-1 accuracies equal (their counts are integers), parameters
within 1e-5 absolute, except ``term_key.bias``, which shifts every term
logit of a slot alike so that the softmax cannot see it: its gradient is
zero up to rounding, and Adam turns that rounding into steps of about the
learning rate, so it is only held to lr x optimiser steps.
"""
from __future__ import annotations

import json
import math
import os

import pytest
import torch

from conftest import prover_slice, torchrun
from refactor.cli import main

TRAIN = ["--epochs", "2", "--dim", "16", "--rounds", "1", "--seed", "1", "--json"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("ddp-prover")
    db, split = prover_slice(d)
    ref = str(d / "single")
    assert main(["prover", "train", "--corpus", db, "--split", split, "--out", ref, *TRAIN]) == 0
    return {"dir": d, "db": db, "split": split, "ref": ref}


def _load(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_two_processes_train_the_single_process_model(work, capsys):
    capsys.readouterr()
    out = str(work["dir"] / "ddp")
    r = torchrun("prover", "train", "--corpus", work["db"], "--split", work["split"], "--out", out, *TRAIN)
    assert r.returncode == 0, r.stderr[-3000:]
    printed = json.loads(r.stdout)  # one document: rank 1 prints nothing
    assert printed["world_size"] == 2
    ref = json.load(open(os.path.join(work["ref"], "metrics.json")))
    ddp = json.load(open(os.path.join(out, "metrics.json")))
    assert ddp["world_size"] == 2 and ref["world_size"] == 1
    assert ddp["train_steps"] == ref["train_steps"] and len(ddp["history"]) == len(ref["history"]) == 2
    for a, b in zip(ref["history"], ddp["history"]):
        for part in ("train", "valid"):
            assert b[part]["loss"] == pytest.approx(a[part]["loss"], rel=1e-6)
            for k in ("relevance_top1", "term_top1", "value_accuracy"):
                assert b[part][k] == a[part][k], (part, k)
    x, y = _load(os.path.join(work["ref"], "last.pt")), _load(os.path.join(out, "last.pt"))
    steps = 2 * math.ceil(ref["train_steps"] / 32)
    for k, w in x["model"].items():
        diff = float((w - y["model"][k]).abs().max())
        assert diff <= (1e-3 * steps if k == "term_key.bias" else 1e-5), (k, diff)
    assert y["rng"] == x["rng"]  # the same sampling stream: a resume goes on alike


def test_resume_goes_on_with_the_same_shuffling(work):
    """Stopped after one epoch and resumed, the run is the uninterrupted one, bit for bit."""
    out = str(work["dir"] / "resumed")
    base = ["prover", "train", "--corpus", work["db"], "--split", work["split"], "--out", out]
    assert main(base + ["--epochs", "1", "--dim", "16", "--rounds", "1", "--seed", "1", "--json"]) == 0
    assert main(base + TRAIN + ["--resume"]) == 0
    x, y = _load(os.path.join(work["ref"], "last.pt")), _load(os.path.join(out, "last.pt"))
    assert all(torch.equal(w, y["model"][k]) for k, w in x["model"].items())
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(y["history"]) == strip(x["history"])
