"""`mmrefactor run` end to end at test scale: every stage, both verifiers, the
report, and a rerun that reuses the finished stages."""
import json
import os

from refactor.cli import main

SET_PROP = os.path.join(os.path.dirname(__file__), "..", "..", "data", "set-prop.mm")


def test_run_end_to_end_and_resume(tmp_path, capsys):
    out = str(tmp_path / "run")
    argv = ["run", SET_PROP, "--out", out, "--preset", "tiny", "--epochs", "1", "--top", "3",
            "--methods", "gnn", "frequent"]
    code = main(argv)
    text = capsys.readouterr().out
    assert code == 0, text
    res = json.load(open(os.path.join(out, "result.json")))
    assert [r["method"] for r in res["methods"]] == ["gnn", "frequent"]
    freq = res["methods"][1]["rewrite"]
    assert freq["verified_by"] == ["mmrefactor", "metamath"]
    assert freq["proof_nodes_after"] < freq["proof_nodes_before"]
    assert os.path.exists(os.path.join(out, "refactored-frequent.mm"))
    report = open(os.path.join(out, "report.md")).read()
    assert "| frequent |" in report and "proof accuracy" in report
    # a rerun reuses every finished stage: no training epoch is run again
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert "epoch" not in again and "train: test node acc" in again
