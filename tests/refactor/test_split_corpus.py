"""Refactored corpora for the prover experiment leak nothing of the held-out theorems.

`extract --split` learns only from training proofs and never hands over a
held-out statement as a new theorem; `rewrite --split` rewrites training
proofs only, so held-out proofs stay byte-identical.
"""
from __future__ import annotations

import json
import os

import pytest

from metamath import Database
from provers.split import load_split, make_split, save_split
from refactor.cli import main
from refactor.expansion import ExpansionOptions, plan_expansion

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SET_PROP = os.path.join(ROOT, "data", "set-prop.mm")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("split")
    path = str(d / "split.json")
    save_split(make_split(Database.from_file(SET_PROP), 0), path)
    return d, path


def test_extract_sees_training_proofs_only(work, capsys):
    d, split = work
    sp = load_split(split)
    held = set(sp.valid) | set(sp.test)
    out = str(d / "stitch.json")
    assert main(["extract", SET_PROP, "--method", "stitch", "--top", "10", "--split", split,
                 "--out", out, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["info"]["library_proofs"] == len(Database.from_file(SET_PROP).theorems()) - len(held)
    for th in data["theorems"]:
        assert not held.intersection(th["source_proofs"]), th["label"]


def test_a_held_out_statement_is_never_handed_over_as_new(work, capsys):
    """Add the frequent extractor's best theorem to the database as a held-out theorem:
    extracting again from the same training proofs must call it a rediscovery."""
    d, split = work
    first = str(d / "frequent.json")
    assert main(["extract", SET_PROP, "--method", "frequent", "--top", "3", "--split", split,
                 "--out", first, "--json"]) == 0
    top = json.loads(capsys.readouterr().out)["theorems"][0]
    hyps = "".join(f"    heldout.{i} $e {h['statement']} $.\n" for i, h in enumerate(top["hypotheses"]))
    rename = {h["label"]: f"heldout.{i}" for i, h in enumerate(top["hypotheses"])}
    proof = " ".join(rename.get(l, l) for l in top["proof"])
    text = open(SET_PROP).read() + f"\n  ${{\n{hyps}    heldout $p {top['statement']} $=\n      {proof} $.\n  $}}\n"
    db_path = str(d / "with-heldout.mm")
    with open(db_path, "w") as fh:
        fh.write(text)
    s = json.load(open(split))
    s["test"].append("heldout")
    split2 = str(d / "split2.json")
    json.dump(s, open(split2, "w"))
    assert main(["verify", db_path]) == 0
    capsys.readouterr()
    again = str(d / "again.json")
    assert main(["extract", db_path, "--method", "frequent", "--top", "3", "--split", split2,
                 "--out", again, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "heldout" in [r["label_existing"] for r in data["rediscovered"]]
    assert all(th["statement"] != top["statement"] or len(th["hypotheses"]) != len(top["hypotheses"])
               for th in data["theorems"])


def test_rewrite_leaves_held_out_proofs_byte_identical(work, capsys):
    d, split = work
    theorems = str(d / "frequent.json")
    assert main(["extract", SET_PROP, "--method", "frequent", "--top", "10", "--split", split,
                 "--out", theorems]) == 0
    out = str(d / "frequent.mm")
    assert main(["rewrite", SET_PROP, "--theorems", theorems, "--split", split, "-o", out, "--json"]) == 0
    capsys.readouterr()
    a, b = Database.from_file(SET_PROP), Database.from_file(out)
    sp = load_split(split, a)
    for l in (*sp.valid, *sp.test):
        assert a.text_of(a.statements[l]) == b.text_of(b.statements[l]), l
    changed = [l for l in sp.train if a.text_of(a.statements[l]) != b.text_of(b.statements[l])]
    assert changed  # the refactoring did rewrite training proofs
    # without the split the same theorems would also rewrite held-out proofs: the option is what keeps them
    out2 = str(d / "all.mm")
    assert main(["rewrite", SET_PROP, "--theorems", theorems, "-o", out2, "--json"]) == 0
    c = Database.from_file(out2)
    assert any(a.text_of(a.statements[l]) != c.text_of(c.statements[l]) for l in (*sp.valid, *sp.test))


def test_gnn_learns_from_training_proofs_only(tmp_path, capsys):
    small = str(tmp_path / "small.mm")
    assert main(["slice", SET_PROP, "--until", "mpbir", "-o", small]) == 0
    db = Database.from_file(small)
    split = str(tmp_path / "split.json")
    save_split(make_split(db, 0), split)
    sp = load_split(split)
    held = set(sp.valid) | set(sp.test)
    plan = plan_expansion(db, ExpansionOptions(held_out=tuple(sorted(held))))
    assert plan.chosen and not held & set(plan.chosen) and not held & set(plan.groups)
    # every held-out theorem would otherwise appear, as an outer proof or inlined
    full = plan_expansion(db, ExpansionOptions())
    assert held & (set(full.chosen) | set(full.groups))

    def train(out, *extra):
        assert main(["train", small, "--out", str(tmp_path / out), "--preset", "tiny", "--epochs", "1",
                     "--json", *extra]) == 0
        capsys.readouterr()
        return str(tmp_path / out / "checkpoint.pt")

    leaky, clean = train("leaky"), train("clean", "--split", split)
    theorems = str(tmp_path / "T.json")
    base = ["extract", small, "--method", "gnn", "--top", "5", "--split", split, "--out", theorems]
    assert main(base + ["--checkpoint", leaky]) == 2
    assert "did not hold out" in capsys.readouterr().err
    assert main(base + ["--checkpoint", clean, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["info"]["library_proofs"] == len(db.theorems()) - len(held)
    assert data["info"]["trees"] <= len(db.theorems()) - len(held)
    for th in data["theorems"]:
        assert not held.intersection(th["source_proofs"]), th["label"]
