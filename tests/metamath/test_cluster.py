"""``--ray``: the same job functions on a local Ray instance give the local run's results.

One Ray instance (2 CPUs, no dashboard) serves the module. Everything
local runs first, in this process and without forking (``--jobs 1``), so no
worker is forked from a process that runs Ray. The three users: extraction's
library of essential DAGs (per proof), the prover's evaluation (per
theorem) and attribution's retraining (per subset and seed), on
data/set-prop.mm cut after ``mpbir``. Equal means: the same T.json, the
same ``results.jsonl`` records apart from their wall times (the searches are
deterministic in expansions; the seconds budget is set far above what they
need), the same retraining results.
"""
from __future__ import annotations

import json
import os
import sys

import pytest
import torch

from metamath.parallel import imap_jobs
from conftest import prover_slice
from refactor.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SET_PROP = os.path.join(ROOT, "data", "set-prop.mm")
EVAL = ["--budget-expansions", "32", "--budget-seconds", "600", "--limit", "10", "--json"]
VALIDATE = ["--method", "random", "--subsets", "2", "--seeds", "1", "--epochs", "1", "--no-counterfactual", "--json"]


def _records(eval_dir: str) -> dict[str, dict]:
    out = {}
    for line in open(os.path.join(eval_dir, "results.jsonl")):
        r = json.loads(line)
        r.pop("seconds")
        out[r["label"]] = r
    return out


def _jobs(out: str) -> dict[str, dict]:
    d = os.path.join(out, "jobs")
    return {f: json.load(open(os.path.join(d, f))) for f in sorted(os.listdir(d))}


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    import logging

    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The slice and its split; the rest is built by the first test that needs it."""
    d = tmp_path_factory.mktemp("cluster")
    small, split = prover_slice(d)
    return {"dir": d, "small": small, "split": split}


@pytest.fixture(scope="module")
def prover(work, ray_local):
    """A prover trained on the frequent-refactored slice and its local evaluation (no fork: --jobs 1)."""
    d = work["dir"]
    th, corpus = str(d / "T-prover.json"), str(d / "freq.mm")
    assert main(["extract", work["small"], "--method", "frequent", "--split", work["split"], "--top", "8",
                 "--out", th]) == 0
    assert main(["rewrite", work["small"], "--theorems", th, "--split", work["split"], "-o", corpus,
                 "--jobs", "1", "--no-metamath"]) == 0
    model = str(d / "model")
    assert main(["prover", "train", "--corpus", corpus, "--split", work["split"], "--out", model, "--epochs", "2",
                 "--dim", "16", "--rounds", "1", "--seed", "1", "--json"]) == 0
    ck = os.path.join(model, "checkpoint.pt")
    ev = str(d / "eval")
    assert main(["prover", "eval", "--checkpoint", ck, "--out", ev, "--jobs", "1", *EVAL]) == 0
    return {"ck": ck, "eval": ev}


def test_scheduler_yields_what_the_local_one_does_and_raises_the_jobs_error(ray_local):
    # the job: divmod(shared, item), a function every Ray worker can import (this test module is not)
    items = list(range(1, 24))
    local = list(imap_jobs(divmod, 1000, items, jobs=1))
    assert local[2] == (3, (333, 1))
    assert list(imap_jobs(divmod, 1000, items, ray="auto", chunk=4)) == local
    assert sorted(imap_jobs(divmod, 1000, items, ray="auto", ordered=False)) == local
    assert list(imap_jobs(divmod, 1000, [], ray="auto")) == []
    with pytest.raises(ZeroDivisionError):
        list(imap_jobs(divmod, 1000, [3, 0], ray="auto", chunk=1))


def test_extraction_on_ray_writes_the_same_theorems(work, ray_local):
    local, out = str(work["dir"] / "T-local.json"), str(work["dir"] / "T-ray.json")
    args = ["extract", work["small"], "--method", "frequent", "--split", work["split"], "--top", "8", "--json"]
    assert main(args + ["--out", local]) == 0
    assert main(args + ["--out", out, "--ray", "auto"]) == 0
    a, b = json.load(open(local)), json.load(open(out))
    a.pop("seconds"), b.pop("seconds")
    assert b == a and len(a["theorems"]) > 1


def test_prover_eval_on_ray_gives_the_same_records(work, prover, capsys):
    capsys.readouterr()
    out = str(work["dir"] / "eval-ray")
    assert main(["prover", "eval", "--checkpoint", prover["ck"], "--out", out, "--ray", "auto", *EVAL]) == 0
    summary = json.loads(capsys.readouterr().out)
    local = _records(prover["eval"])
    assert _records(out) == local
    assert summary["proved"] == sum(r["proved"] for r in local.values()) > 0
    assert summary["attempted"] == len(local) and summary["invalid_proofs"] == 0
    assert open(os.path.join(out, "proofs.mm")).read() == open(os.path.join(prover["eval"], "proofs.mm")).read()


def test_attribution_retraining_on_ray_gives_the_same_jobs(work, prover, capsys):
    local, out = str(work["dir"] / "val"), str(work["dir"] / "val-ray")
    args = ["attribute", "validate", "--checkpoint", prover["ck"], "--eval", prover["eval"], *VALIDATE]
    assert main(args + ["--out", local, "--jobs", "1"]) == 0
    capsys.readouterr()
    assert main(args + ["--out", out, "--ray", "auto"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == {m: {k: v for k, v in row.items() if k != "lds_per_query"}
                       for m, row in json.load(open(os.path.join(local, "validation.json")))["methods"].items()}
    assert _jobs(out) == _jobs(local) and len(_jobs(out)) == 2


def test_without_ray_the_flag_names_the_extra(tmp_path, monkeypatch, capsys):
    """Exit 2 before any work, naming the extra, on every command that takes ``--ray``."""
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: `import ray` fails
    nowhere = str(tmp_path / "nowhere")
    for args in (["prover", "eval", "--checkpoint", nowhere, "--out", nowhere],
                 ["extract", SET_PROP, "--method", "frequent", "--out", nowhere + ".json"],
                 ["attribute", "validate", "--checkpoint", nowhere, "--eval", nowhere, "--out", nowhere],
                 ["run", SET_PROP, "--preset", "tiny", "--out", nowhere]):
        capsys.readouterr()
        assert main(args + ["--ray", "auto"]) == 2, args
        err = capsys.readouterr().err
        assert "mmrefactor[ray]" in err and "Traceback" not in err, args
        assert not os.listdir(tmp_path), args
