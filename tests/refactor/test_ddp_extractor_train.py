"""The GNN extractor's training under torchrun (2 CPU processes, gloo) equals the single-process run.

Preset ``tiny`` (no dropout: with dropout each rank draws its own masks), the
dataset of data/set-prop.mm cut after ``mpbir``. Both runs draw the same
permutation of the training graphs; DDP cuts each global batch of 16 graphs
across the two ranks and each rank scales its summed node loss by
``2 / nodes of the 16 graphs``, so the averaged gradient is the single
process's mean node loss. They differ only by float summation order.
Tolerances: parameters within 1e-5 absolute, the epoch losses (rounded to
5 digits) within 1e-4, and the validation and test metrics, counted over
both ranks' shares and summed, equal.
"""
from __future__ import annotations

import json
import os

import pytest
import torch

from conftest import torchrun
from refactor.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SET_PROP = os.path.join(ROOT, "data", "set-prop.mm")
TRAIN = ["--preset", "tiny", "--epochs", "2", "--train-seed", "3", "--device", "cpu", "--json"]


def test_two_processes_train_the_single_process_extractor(tmp_path, capsys):
    torch.set_num_threads(1)
    db, data = str(tmp_path / "small.mm"), str(tmp_path / "dataset")
    assert main(["slice", SET_PROP, "--until", "mpbir", "-o", db]) == 0
    ref = str(tmp_path / "single")
    assert main(["train", db, "--data", data, "--out", ref, *TRAIN]) == 0
    capsys.readouterr()
    out = str(tmp_path / "ddp")
    r = torchrun("train", db, "--data", data, "--out", out, *TRAIN)
    assert r.returncode == 0, r.stderr[-3000:]
    printed = json.loads(r.stdout)  # one document: rank 1 prints nothing
    assert printed["world_size"] == 2
    a = json.load(open(os.path.join(ref, "metrics.json")))
    b = json.load(open(os.path.join(out, "metrics.json")))
    assert (a["world_size"], b["world_size"]) == (1, 2) and a["train_examples"] == b["train_examples"]
    for x, y in zip(a["history"], b["history"]):
        assert y["loss"] == pytest.approx(x["loss"], abs=1e-4)
        assert y["valid"] == x["valid"]
    assert (b["valid"], b["test"], b["best_epoch"]) == (a["valid"], a["test"], a["best_epoch"])
    assert b["baseline_all_negative"] == a["baseline_all_negative"]
    x = torch.load(os.path.join(ref, "last.pt"), weights_only=False)["model"]
    y = torch.load(os.path.join(out, "last.pt"), weights_only=False)["model"]
    for k, w in x.items():
        if w.is_floating_point():
            assert float((w - y[k]).abs().max()) <= 1e-5, k
        else:  # buffers (vocabulary tables)
            assert torch.equal(w, y[k]), k
