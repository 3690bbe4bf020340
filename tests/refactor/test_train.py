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
    # decoding is reported beside the thresholded figure, not for the all-negative baseline
    assert 0.0 <= res["test"]["proof_accuracy_decoded"] <= 1.0 and base["proof_accuracy_decoded"] is None
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
    # benchmarks/proof_accuracy_by_size.py: its buckets partition the test split, and together they
    # give the trainer's own figures
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    from proof_accuracy_by_size import by_size

    rows = by_size(os.path.join(out, "checkpoint.pt"), device="cpu")
    assert rows[-1]["nodes"] == "all" and sum(r["examples"] for r in rows[:-1]) == rows[-1]["examples"]
    assert rows[-1]["examples"] == ev["test"]["examples"]
    assert rows[-1]["proof_accuracy"] == ev["test"]["proof_accuracy"]
    assert rows[-1]["proof_accuracy_decoded"] == ev["test"]["proof_accuracy_decoded"]
    assert rows[-1]["node_accuracy"] == ev["test"]["node_accuracy"]
    assert rows[-1]["node_accuracy_all_negative"] == ev["baseline_all_negative"]["test"]["node_accuracy"]


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


def test_focal_loss_is_bce_at_gamma_zero_and_spares_easy_nodes():
    from refactor.train import node_loss

    logits = torch.tensor([4.0, -4.0, 0.1, -0.2])
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    assert torch.allclose(node_loss(logits, y, gamma=0.0, reduction="sum"), bce.sum())
    focal = [float(node_loss(logits[i:i + 1], y[i:i + 1], gamma=2.0)) for i in range(4)]
    # the two confident right nodes lose almost all their weight, the two near the boundary keep a quarter or more
    assert focal[0] < 1e-3 * bce[0] and focal[1] < 1e-3 * bce[1]
    assert focal[2] > 0.2 * bce[2] and focal[3] > 0.2 * bce[3]


def test_balanced_sampling_draws_each_inlined_theorem_alike():
    from refactor.train import balanced_weights, epoch_batches

    inlined = ["a"] * 90 + ["b"] * 10
    g = torch.Generator().manual_seed(0)
    drawn = [i for _ in range(50) for b in epoch_batches(100, 32, g, balanced_weights(inlined)) for i in b]
    share_b = sum(inlined[i] == "b" for i in drawn) / len(drawn)
    assert 0.45 < share_b < 0.55  # uniform sampling would give 0.10
    again = epoch_batches(100, 32, torch.Generator().manual_seed(0), balanced_weights(inlined))
    assert again == epoch_batches(100, 32, torch.Generator().manual_seed(0), balanced_weights(inlined))


def test_collapse_to_all_negative_is_caught_and_levers_train(data_dir, tmp_path):
    torch.set_num_threads(2)
    # a negligible weight on positive nodes makes all-negative the optimum: caught after one epoch
    m, t = resolve("tiny", epochs=3, seed=3, pos_weight=1e-4, collapse_patience=1)
    logs: list[str] = []
    res = train(data_dir, str(tmp_path / "collapse"), m, t, device="cpu", log=logs.append)
    assert res["history"][0]["valid"]["predicted_positive"] == 0.0
    assert len(res["history"]) == 1 and res["stopped_early"].startswith("collapsed to all-negative")
    assert any("collapsed to all-negative" in line for line in logs)
    # focal loss with balanced sampling learns: it beats all-negative on unseen inlined theorems
    m, t = resolve("tiny", epochs=1, seed=3, loss="focal", sampling="balanced")
    res = train(data_dir, str(tmp_path / "focal"), m, t, device="cpu", log=lambda *a: None)
    assert res["stopped_early"] is None and res["config"]["train"]["loss"] == "focal"
    assert res["test"]["f1"] > 0.2 and res["test"]["predicted_positive"] > 0
    with pytest.raises(KeyError, match="unknown loss"):
        resolve("tiny", loss="hinge")


def test_structured_loss_starts_from_a_checkpoint_and_picks_epochs_by_decoding(data_dir, tmp_path):
    torch.set_num_threads(2)
    m, t = resolve("tiny", epochs=1, seed=3)
    first = str(tmp_path / "bce")
    train(data_dir, first, m, t, device="cpu", log=lambda *a: None)
    start = load_checkpoint(os.path.join(first, "checkpoint.pt"))["model"]
    logs = []
    ms, ts = resolve("tiny", epochs=2, seed=3, loss="structured", init=os.path.join(first, "checkpoint.pt"))
    res = train(data_dir, str(tmp_path / "crf"), ms, ts, device="cpu", log=logs.append)
    assert logs[0].startswith("starting from the weights of")
    hist = res["history"]
    assert hist[res["best_epoch"] - 1]["valid"]["proof_accuracy_decoded"] == max(
        h["valid"]["proof_accuracy_decoded"] for h in hist)
    assert all(h["loss"] > 0 for h in hist)  # a negative log-likelihood of sets that have the shape
    moved = load_checkpoint(str(tmp_path / "crf" / "last.pt"))["model"]
    assert any(not torch.equal(start[k], moved[k]) for k in start)
    # another model, or --pos-weight beside the structured loss, is refused
    wide, tw = resolve("tiny", epochs=1, hidden=48, init=os.path.join(first, "checkpoint.pt"))
    with pytest.raises(CheckpointError, match="its model"):
        train(data_dir, str(tmp_path / "wide"), wide, tw, device="cpu", log=lambda *a: None)
    with pytest.raises(KeyError, match="structured loss"):
        resolve("tiny", loss="structured", pos_weight=3.0)
    # a run resumed from epochs recorded before the decoded node figures existed still ranks them
    from refactor.train import _rank

    old = {"proof_accuracy": 0.1, "f1": 0.5, "node_accuracy": 0.8, "proof_accuracy_decoded": 0.3}
    assert _rank(old, structured=True) == (0.3, 0.5, 0.8)
