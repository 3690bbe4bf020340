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


def _demo0(tmp_path, old: str, new: str) -> str:
    from conftest import debian

    text = open(debian("demo0.mm")).read()
    assert text.count(old) == 1
    path = tmp_path / "bad.mm"
    path.write_text(text.replace(old, new))
    return str(path)


def test_run_stops_with_exit_1_naming_a_failing_proof(tmp_path, capsys):
    """A proof that does not verify (wrong, or malformed) stops the run at once: exit 1, the
    proof named, no traceback, nothing built."""
    for old, new, why in [("tt tt a1 mp mp", "tt tt a1 mp", "th1 step 33: proof leaves 4 entries"),
                          ("tt tt a1 mp mp", "tt tt a1 foo mp", "th1 at ")]:
        path = _demo0(tmp_path, old, new)
        out = tmp_path / "run"
        code = main(["run", path, "--out", str(out), "--preset", "tiny", "--epochs", "1"])
        captured = capsys.readouterr()
        assert code == 1, captured
        assert "Traceback" not in captured.err and f"error: {path}: 1 of 1 proofs do not verify" in captured.err
        assert why in captured.err
        assert sorted(os.listdir(out)) == ["manifest.json"]  # no dataset, no model


def test_run_on_a_database_too_small_for_a_dataset_is_a_clear_error(tmp_path, capsys):
    from conftest import debian

    path = debian("demo0.mm")
    code = main(["run", path, "--out", str(tmp_path / "run"), "--preset", "tiny", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip() == f"error: {path}: the train split is empty: the database has too few inlinable theorems"
