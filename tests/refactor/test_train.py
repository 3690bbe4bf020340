"""The node classifier on the embedded default: dataset contract, a tiny
training run that beats the all-negative baseline, resume, bad checkpoints."""
import json
import os

import pytest
import torch

from refactor.cli import main
from refactor.dataset import load_dataset
from refactor.model import resolve
from refactor.train import evaluate_checkpoint, load_checkpoint, train, CheckpointError

SET_PROP = os.environ.get("MMR_TEST_SETPROP", os.path.join(os.path.dirname(__file__), "..", "..", "data", "set-prop.mm"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ds"))
    assert main(["dataset", SET_PROP, "--out", out, "--json"]) == 0
    return out


def test_dataset_contract_and_cache(data_dir, capsys):
    capsys.readouterr()
    assert main(["dataset", SET_PROP, "--out", data_dir, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for k in ("examples", "inlined_theorems", "nodes", "positive_fraction", "splits"):
        assert k in d
    assert d["cached"] is True
    assert set(d["splits"]) == {"train", "valid", "test"}
    assert sum(d["splits"].values()) == d["examples"] > 3000
    meta, vocab, splits = load_dataset(data_dir)
    train_inl = {g.inlined for g in splits["train"]}
    assert not train_inl & {g.inlined for g in splits["test"]}
    g = splits["train"][0]
    assert g.edge_index.shape[1] == g.num_nodes - 1 and int(g.tok_len.sum()) == g.tok.numel()


def test_tiny_run_beats_all_negative_and_resumes(data_dir, tmp_path):
    torch.set_num_threads(2)
    m, t = resolve("tiny", epochs=2, seed=3)
    out = str(tmp_path / "run")
    res = train(data_dir, out, m, t, device="cpu", log=lambda *a: None)
    base = res["baseline_all_negative"]["test"]
    assert res["test"]["f1"] > 0.2 > base["f1"] == 0.0
    assert res["test"]["proof_accuracy"] >= base["proof_accuracy"]
    assert res["valid"]["node_accuracy"] > res["baseline_all_negative"]["valid"]["node_accuracy"]
    assert os.path.exists(os.path.join(out, "checkpoint.pt")) and os.path.exists(os.path.join(out, "metrics.json"))
    # resume: asking for 3 epochs continues after the 2 finished ones
    logs = []
    m3, t3 = resolve("tiny", epochs=3, seed=3)
    res2 = train(data_dir, out, m3, t3, device="cpu", resume=True, log=logs.append)
    assert logs[0].startswith("resuming after epoch 2")
    assert [h["epoch"] for h in res2["history"]] == [1, 2, 3]
    assert res2["history"][:2] == res["history"]
    # another configuration cannot resume this run
    m4, t4 = resolve("tiny", epochs=3, seed=4)
    with pytest.raises(CheckpointError):
        train(data_dir, out, m4, t4, device="cpu", resume=True, log=lambda *a: None)
    ev = evaluate_checkpoint(os.path.join(out, "checkpoint.pt"), device="cpu")
    assert ev["test"] == res2["test"]


def test_bad_checkpoints_are_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(str(bad))
    assert main(["evaluate", str(bad)]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    torch.save({"hello": 1}, tmp_path / "foreign.pt")
    assert main(["evaluate", str(tmp_path / "foreign.pt")]) == 2
    assert "not an mmrefactor" in capsys.readouterr().err


def test_unverified_database_is_refused(tmp_path, capsys):
    text = open(SET_PROP).read()
    i = text.index("a1i $p")
    j = text.index("$.", i)
    bad = text[:i] + "a1i $p |- ( ps -> ps ) $=" + text[text.index("$=", i) + 2:]
    p = tmp_path / "bad.mm"
    p.write_text(bad)
    assert main(["dataset", str(p), "--out", str(tmp_path / "ds")]) == 2
    assert "a1i" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "ds" / "meta.json")
