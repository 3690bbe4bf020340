"""Split, train, eval and compare end to end on a small slice, through the command line.

The slice is data/set-prop.mm cut after `mpbir` (the first few hundred
theorems), so a tiny model trains in seconds; the checks are the contract:
no held-out proof reaches training, found proofs verify (ours and
metamath.exe), an interrupted evaluation resumes without counting a theorem
twice, and foreign checkpoints or splits are refused with exit 2.
"""
from __future__ import annotations

import json
import os
import pytest

from conftest import metamath_verdict, prover_slice
from metamath import Database
from provers.data import build_steps, training_theorems
from provers.library import Library
from provers.split import load_split, make_split
from refactor.cli import main


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("prover")
    db, split = prover_slice(d)
    out = str(d / "model")
    assert main(["prover", "train", "--corpus", db, "--split", split, "--out", out, "--epochs", "2",
                 "--dim", "16", "--rounds", "1", "--seed", "1"]) == 0
    return {"dir": d, "db": db, "split": split, "ck": os.path.join(out, "checkpoint.pt")}


def test_split_is_seeded_and_holds_out_no_axiom(work):
    db = Database.from_file(work["db"])
    a, b = make_split(db, 3), make_split(db, 3)
    assert a == b and make_split(db, 4).test != a.test
    s = load_split(work["split"], db)
    assert (s.train, s.valid, s.test) == (a.train, a.valid, a.test)
    everything = set(s.train) | set(s.valid) | set(s.test)
    assert len(everything) == len(s.train) + len(s.valid) + len(s.test) == len(db.theorems())
    assert abs(len(s.test) - 0.1 * len(everything)) <= 1
    assert all(db.statements[l].kind == "p" for l in everything)


def test_training_never_reads_held_out_proofs(work):
    db = Database.from_file(work["db"])
    lib = Library(db)
    s = load_split(work["split"], db)
    train = training_theorems(lib, s)
    assert not (set(train) & (set(s.valid) | set(s.test)))
    steps = build_steps(lib, train)
    assert {st.theorem for st in steps} <= set(train)


def test_eval_finds_verified_proofs_and_resumes(work, capsys):
    out = str(work["dir"] / "eval")
    args = ["prover", "eval", "--checkpoint", work["ck"], "--split", work["split"], "--out", out,
            "--budget-expansions", "32", "--jobs", "1", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["attempted"] == len(load_split(work["split"]).test)
    assert first["proved"] > 0 and first["invalid_proofs"] == 0
    assert set(first["by_budget"]) == {"8", "32"}
    lines = open(os.path.join(out, "results.jsonl")).read().splitlines()
    assert len(lines) == first["attempted"]
    # interrupt: drop the last two results (one cut mid-line), rerun: they are redone, none counted twice
    with open(os.path.join(out, "results.jsonl"), "w") as fh:
        fh.write("\n".join(lines[:-2]) + "\n" + lines[-2][: len(lines[-2]) // 2])
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["proved"] == first["proved"] and again["attempted"] == first["attempted"]
    recs = [json.loads(l) for l in open(os.path.join(out, "results.jsonl")) if l.strip().endswith("}")]
    assert len({r["label"] for r in recs}) == first["attempted"]
    # every found proof is in proofs.mm, which metamath.exe accepts
    verdict = metamath_verdict(first["proofs_mm"])
    assert verdict.accepted, verdict.output[-2000:]


def test_wall_clock_cuts_are_retried_until_the_expansion_budget_binds(work, capsys):
    base = ["prover", "eval", "--checkpoint", work["ck"], "--split", work["split"], "--budget-expansions", "32",
            "--jobs", "1", "--json", "--limit", "6"]
    loose = str(work["dir"] / "eval-loose")
    assert main(base + ["--out", loose]) == 0
    want = json.loads(capsys.readouterr().out)
    cut = str(work["dir"] / "eval-cut")
    assert main(base + ["--out", cut, "--budget-seconds", "0.000001"]) == 0
    hurried = json.loads(capsys.readouterr().out)
    recs = [json.loads(l) for l in open(os.path.join(cut, "results.jsonl"))]
    assert any(r["stopped"] == "seconds" for r in recs)
    assert main(base + ["--out", cut, "--budget-seconds", "0.000001", "--retry-timeouts", "60"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["by_budget"] == want["by_budget"] and got["proved"] >= hurried["proved"]
    final: dict = {}
    for line in open(os.path.join(cut, "results.jsonl")):
        r = json.loads(line)
        final[r["label"]] = r
    assert len(final) == 6 and not any(r["stopped"] == "seconds" for r in final.values())
    assert all(r.get("seconds_cap") == 60 for r in final.values() if r["label"] in {x["label"] for x in recs
                                                                                     if x["stopped"] == "seconds"})


def test_sample_spans_the_part_seeded_in_database_order(work, capsys):
    from provers.evaluate import EvalConfig, theorems_of

    part = [f"t{i}" for i in range(100)]
    a = theorems_of(part, EvalConfig(sample=10))
    assert len(a) == 10 and a == sorted(a, key=part.index) and a == theorems_of(part, EvalConfig(sample=10))
    assert a != part[:10] and a != theorems_of(part, EvalConfig(sample=10, sample_seed=1))
    assert max(part.index(l) for l in a) > 50  # not the first stretch, unlike --limit
    assert theorems_of(part, EvalConfig(sample=500)) == part
    out = str(work["dir"] / "eval-sample")
    assert main(["prover", "eval", "--checkpoint", work["ck"], "--out", out, "--baseline", "count",
                 "--budget-expansions", "8", "--jobs", "1", "--sample", "3", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    split = load_split(work["split"])
    assert s["attempted"] == 3 and s["sample"] == 3
    labels = [json.loads(l)["label"] for l in open(os.path.join(out, "results.jsonl"))]
    assert labels == theorems_of(list(split.part("test")), EvalConfig(sample=3))
    # another sample seed is another evaluation: refused in the same directory
    assert main(["prover", "eval", "--checkpoint", work["ck"], "--out", out, "--baseline", "count",
                 "--budget-expansions", "8", "--jobs", "1", "--sample", "3", "--sample-seed", "1"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_baselines_and_compare(work, capsys):
    outs = []
    for base in ("uniform", "count"):
        out = str(work["dir"] / f"eval-{base}")
        assert main(["prover", "eval", "--checkpoint", work["ck"], "--out", out, "--baseline", base,
                     "--budget-expansions", "8", "--jobs", "2", "--json"]) == 0
        outs.append(out)
        assert json.loads(capsys.readouterr().out)["policy"] == base
    assert main(["prover", "compare", *outs, "--json"]) == 0
    cmp = json.loads(capsys.readouterr().out)
    row = cmp["rows"][1]["budgets"]["8"]
    ref = cmp["rows"][0]["budgets"]["8"]
    assert row["proved"] - ref["proved"] == len(row["newly_proved"]) - len(row["lost"])


def test_foreign_checkpoint_and_bad_split_are_refused(work, capsys):
    other = str(work["dir"] / "split4.json")
    assert main(["prover", "split", work["db"], "--seed", "4", "-o", other]) == 0
    code = main(["prover", "eval", "--checkpoint", work["ck"], "--split", other,
                 "--out", str(work["dir"] / "e4")])
    assert code == 2 and "another split" in capsys.readouterr().err
    bad = str(work["dir"] / "bad.json")
    data = json.load(open(work["split"]))
    data["test"].append("no-such-theorem")
    json.dump(data, open(bad, "w"))
    code = main(["prover", "train", "--corpus", work["db"], "--split", bad, "--out", str(work["dir"] / "m2")])
    assert code == 2 and "no-such-theorem" in capsys.readouterr().err
    code = main(["prover", "eval", "--checkpoint", work["split"], "--out", str(work["dir"] / "e5")])
    assert code == 2 and "checkpoint" in capsys.readouterr().err


def test_count_prior_pricing_agrees_with_the_evaluations(work):
    """benchmarks/count_prior.py: the theorems it calls uniform-only / count-only are exactly the
    paired difference of the two evaluations, and its costs are the priors' ``-log p``."""
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    from count_prior import exclusive_uses, price

    evals = [str(work["dir"] / f"eval-{b}") for b in ("count", "uniform")]
    if not all(os.path.exists(os.path.join(e, "summary.json")) for e in evals):
        for b, e in zip(("count", "uniform"), evals):
            assert main(["prover", "eval", "--checkpoint", work["ck"], "--out", e, "--baseline", b,
                         "--budget-expansions", "8", "--jobs", "1"]) == 0
    r = price(work["db"], work["split"], None)
    assert r["steps"] > 0 and 0 <= r["steps_unused_in_training"] <= r["steps"]
    assert r["mean_uniform_cost"] >= 0 and r["mean_count_cost"] >= 0
    ex = exclusive_uses(work["db"], work["split"], *evals)
    res = [{json.loads(l)["label"]: json.loads(l)["proved"] for l in open(os.path.join(e, "results.jsonl"))}
           for e in evals]
    assert len(ex["count_only"]) == sum(p and not res[1][k] for k, p in res[0].items())
    assert len(ex["uniform_only"]) == sum(p and not res[0][k] for k, p in res[1].items())
    assert len(ex["both"]) == sum(p and res[0][k] for k, p in res[1].items())
