"""`mmrefactor run` end to end at test scale (the `tiny` preset on set-prop.mm cut after `mpbir`):
every stage, both verifiers, the prover study, attribution and its validation, the manifest,
report.md and report.html (opened in headless Chromium), a rerun that reuses the finished stages,
interrupted stages that resume, and failed stages that are named (exit 1) while the finished ones
stay."""
import json
import os
import re
import shutil
import subprocess

import pytest

from metamath import Database
from refactor.cli import main

SET_PROP = os.path.join(os.path.dirname(__file__), "..", "..", "data", "set-prop.mm")


def _toml(path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One `tiny` run, shared: (argv, out directory, stdout of the first run)."""
    import torch

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("tiny")
    cfg = _toml(d / "slice.toml", '[slice]\nuntil = "mpbir"\n')
    out = str(d / "run")
    argv = ["run", SET_PROP, "--preset", "tiny", "--config", cfg, "--out", out]
    code = main(argv)
    return argv, out, code


def _manifest(out: str) -> dict:
    return json.load(open(os.path.join(out, "manifest.json")))


def test_run_end_to_end(tiny, capsys):
    argv, out, code = tiny
    assert code == 0
    res = json.load(open(os.path.join(out, "result.json")))
    assert [r["method"] for r in res["methods"]] == ["gnn", "frequent"]
    freq = res["methods"][1]["rewrite"]
    assert freq["verified_by"] == ["mmrefactor", "metamath"]
    assert freq["proof_nodes_after"] < freq["proof_nodes_before"]
    assert os.path.exists(os.path.join(out, "refactored-frequent.mm"))
    # the prover study: the original corpus, frequent's, and gnn's (its GNN trained on training proofs only)
    pr = res["prover"]
    assert set(pr["corpora"]) == {"original", "gnn", "frequent"} and not pr["skipped"]
    rows = {(r["corpus"], r["policy"]): r for r in pr["rows"]}
    assert set(rows) == {("original", "count"), ("original", "uniform"), ("original", "learned"),
                         ("gnn", "learned"), ("frequent", "learned")}
    assert rows["frequent", "learned"]["seeds"] == [0, 1] and len(rows["frequent", "learned"]["paired"]) == 2
    assert rows["original", "learned"]["paired"] == []  # the reference
    for r in pr["rows"]:
        assert r["attempted"] == 6 and set(r["rate"]) == {"8", "32"} and r["invalid_proofs"] == 0
    # the manifest: configuration, seeds, versions, database hash, timings, device
    man = _manifest(out)
    run = man["run"]
    assert run["config"]["extractor"]["preset"] == "tiny" and run["config"]["slice"]["until"] == "mpbir"
    assert run["seeds"]["prover"] == [0, 1] and run["seeds"]["extractor"] == 0
    assert run["database_sha256"] == Database.from_file(os.path.join(out, "input.mm")).sha256()
    assert run["versions"]["torch"] and run["versions"]["matplotlib"] and run["device"]["used"] == "cpu"
    assert run["status"] == "finished"
    st = man["stages"]
    for name in ("slice", "verify", "dataset", "train", "extract-frequent", "rewrite-frequent", "prover-split",
                 "prover-corpus-frequent", "prover-train-original-s1", "prover-eval-original-count",
                 "prover-eval-frequent-learned-s1", "prover-compare", "attribute", "attribute-validate", "report"):
        assert st[name]["status"] == "done" and st[name]["seconds"] >= 0, name
    assert st["prover-corpus-gnn"]["result"]["theorems"] > 0
    held = set(json.load(open(os.path.join(out, "prover", "split.json")))["test"])
    assert man["stages"]["dataset"]["inputs"]["held_out"]["theorems"] >= len(held) > 0
    assert run["seeds"]["attribution"] == 0 and st["attribute"]["inputs"]["methods"] == ["grad-dot", "random"]
    # attribution: the frequent corpus (attribution.corpus), its seed-0 prover and that prover's evaluation
    at = res["attribution"]
    assert (at["corpus"], at["prover_seed"]) == ("frequent", 0)
    assert at["eval"] == os.path.join(out, "prover", "evals", "frequent-learned-s0")
    att = at["attribute"]
    proved = [json.loads(l)["label"] for l in open(os.path.join(at["eval"], "results.jsonl")) if '"proved": true' in l]
    assert att["queries"] == proved and proved
    assert sorted(r["theorem"] for r in att["theorems"]) == ["mmr-1", "mmr-2", "mmr-3"]
    assert all(set(r["influence"]) == {"grad-dot", "random"} for r in att["theorems"])
    full = json.load(open(os.path.join(out, "attribution", "attribution.json")))
    assert full["theorems"] == att["theorems"] and set(full["scores"]) == {"grad-dot", "random"}
    val = at["validation"]
    assert (val["subsets"], val["seeds"], val["top_k"], val["config"]["epochs"]) == (3, 1, 1, 1)
    for m in ("grad-dot", "random"):
        row = val["methods"][m]
        assert row["lds_mean"] is None or -1 <= row["lds_low"] <= row["lds_mean"] <= row["lds_high"] <= 1
        assert set(row["counterfactual"]) >= {"topk_drop", "random_drop"}
    assert json.load(open(os.path.join(out, "attribution", "validation", "validation.json")))["methods"].keys() == \
        val["methods"].keys()
    amd = open(os.path.join(out, "attribution", "attribution.md")).read()
    assert "| mmr-1 |" in amd and "## Validation" in amd
    # the reports
    md = open(os.path.join(out, "report.md")).read()
    assert "| frequent |" in md and "all-negative" in md and "Prover success" in md
    assert "**Attribution per extracted theorem**" in md and "influence (grad-dot)" in md
    assert "**Top theorems per query**" in md and f"| {proved[0]} |" in md
    assert "**Validation: group LDS and the top-k counterfactual**" in md and "| random |" in md
    for fig in ("training", "usage", "proof_size", "prover", "attribution", "lds"):
        assert f"figures/{fig}.png" in md and os.path.getsize(os.path.join(out, "figures", f"{fig}.png")) > 1000
    page = open(os.path.join(out, "report.html")).read()
    assert page.count("<svg") == 6 and "<script" not in page and "<link" not in page
    assert re.findall(r'(?:src|href)="([^"#][^"]*)"', page) == []  # self-contained: nothing to fetch


def test_rerun_reuses_every_stage_and_an_interrupted_eval_resumes(tiny, capsys):
    argv, out, _ = tiny
    before = _manifest(out)["stages"]
    assert main(argv) == 0
    capsys.readouterr()
    after = _manifest(out)["stages"]
    rerun = [k for k in after if after[k].get("finished") != before[k].get("finished")]
    assert sorted(rerun) == ["prover-compare", "report"]
    # interrupt an evaluation: its stage is left "started", its last result cut mid-line, no summary
    name = "prover-eval-frequent-learned-s1"
    edir = os.path.join(out, "prover", "evals", "frequent-learned-s1")
    lines = open(os.path.join(edir, "results.jsonl")).read().splitlines()
    with open(os.path.join(edir, "results.jsonl"), "w") as fh:
        fh.write("\n".join(lines[:-1]) + "\n" + lines[-1][:10])
    os.unlink(os.path.join(edir, "summary.json"))
    man = _manifest(out)
    man["stages"][name] = {"status": "started", "inputs": man["stages"][name]["inputs"]}
    json.dump(man, open(os.path.join(out, "manifest.json"), "w"))
    assert main(argv) == 0
    capsys.readouterr()
    again = _manifest(out)["stages"]
    assert again[name]["status"] == "done"
    assert again[name]["result"]["attempted"] == 6 == len(open(os.path.join(edir, "results.jsonl")).readlines())
    assert [k for k in again if again[k].get("finished") != after[k].get("finished")] == \
        [name, "prover-compare", "report"]
    # interrupt the validation: a job lost, the stage left "started"; only that job runs again
    jdir = os.path.join(out, "attribution", "validation", "jobs")
    jobs = sorted(os.listdir(jdir))
    lost = jobs[0]
    kept = {j: os.path.getmtime(os.path.join(jdir, j)) for j in jobs[1:]}
    old = json.load(open(os.path.join(jdir, lost)))
    os.unlink(os.path.join(jdir, lost))
    man = _manifest(out)
    man["stages"]["attribute-validate"] = {"status": "started", "inputs": man["stages"]["attribute-validate"]["inputs"]}
    json.dump(man, open(os.path.join(out, "manifest.json"), "w"))
    assert main(argv) == 0
    capsys.readouterr()
    final = _manifest(out)["stages"]
    assert [k for k in final if final[k].get("finished") != again[k].get("finished")] == \
        ["prover-compare", "attribute-validate", "report"]
    assert sorted(os.listdir(jdir)) == jobs and json.load(open(os.path.join(jdir, lost))) == old
    assert all(os.path.getmtime(os.path.join(jdir, j)) == t for j, t in kept.items())
    assert final["attribute-validate"]["result"] == again["attribute-validate"]["result"]  # deterministic by seed


def test_a_failed_stage_is_named_and_finished_stages_stay(tiny, tmp_path, capsys):
    argv, out, _ = tiny
    work = str(tmp_path / "run")
    shutil.copytree(out, work)  # the manifest's file paths still point at `out`, which is kept
    split = os.path.join(work, "prover", "split.json")
    open(split, "w").write("{ not json")
    # new prover settings: the split stage is reused (its record matches), training must read the split
    cfg = _toml(tmp_path / "c.toml", '[slice]\nuntil = "mpbir"\n[prover]\nepochs = 2\nseeds = [0]\n')
    code = main(["run", SET_PROP, "--preset", "tiny", "--config", cfg, "--out", work])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "error: stage prover-train-original-s0 failed: " in err and "not a split file" in err
    st = _manifest(work)["stages"]
    assert st["prover-train-original-s0"]["status"] == "failed"
    assert "not a split file" in st["prover-train-original-s0"]["error"]
    assert all(st[k]["status"] == "done" for k in ("verify", "train", "extract-frequent", "prover-corpus-frequent"))


def test_a_failed_attribution_stage_is_named(tiny, capsys):
    """A found proof that no longer replays (the evaluation's results changed): `attribute` runs again,
    fails, is named (exit 1, no traceback) and recorded; the files are put back afterwards."""
    argv, out, _ = tiny
    results = os.path.join(out, "prover", "evals", "frequent-learned-s0", "results.jsonl")
    saved = {p: open(p).read() for p in (results, os.path.join(out, "manifest.json"))}
    try:
        recs = [json.loads(l) for l in saved[results].splitlines() if l.strip()]
        next(r for r in recs if r["proved"])["proof"] = ["nosuchlabel"]
        open(results, "w").write("".join(json.dumps(r) + "\n" for r in recs))
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "error: stage attribute failed: " in err and "Traceback" not in err
        st = _manifest(out)["stages"]
        assert st["attribute"]["status"] == "failed" and "nosuchlabel" in st["attribute"]["error"]
        assert st["prover-compare"]["status"] == "done" and st["report"]["status"] == "done"
    finally:
        for p, text in saved.items():
            open(p, "w").write(text)


def test_report_renders_in_headless_chromium(tiny, tmp_path):
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if exe is None:
        pytest.skip("chromium missing: install Debian's chromium (make setup does)")
    import numpy as np
    from matplotlib import image

    _, out, _ = tiny
    url = "file://" + os.path.abspath(os.path.join(out, "report.html"))
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
             "--window-size=1200,2000"]
    shot = str(tmp_path / "report.png")
    subprocess.run(flags + [f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    px = image.imread(shot)
    assert px.shape[:2] == (2000, 1200)
    gray = px[..., :3].mean(axis=2)
    assert gray.std() > 0.05  # not a blank page: text, tables and plots
    assert (gray < 0.5).mean() > 0.005  # some dark ink
    dom = subprocess.run(flags + ["--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    assert dom.count("<table") == 10 and dom.count("<svg") == 6
    for caption in ("Extraction metrics beside the all-negative baseline", "New theorems: statements, uses and savings",
                    "Library size before and after", "Prover success per corpus", "Attribution per extracted theorem",
                    "Top theorems per query", "Validation: group LDS and the top-k counterfactual"):
        assert caption in dom
    for fig in ("training", "usage", "proof_size", "prover", "attribution", "lds"):
        assert f'id="fig-{fig}"' in dom
    assert np.isfinite(gray).all()


def test_config_errors_exit_2_naming_file_and_key(tmp_path, capsys):
    bad = _toml(tmp_path / "bad.toml", "[extract]\ntop = 5\nbogus = 1\n")
    assert main(["run", SET_PROP, "--config", bad, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"error: {bad}: unknown key extract.bogus" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "r")
    for text, what in (("[nosuch]\nx = 1\n", "unknown section [nosuch]"),
                       ("[prover]\nseeds = 3\n", "prover.seeds: expected list"),
                       ('[extract]\nmethods = ["magic"]\n', "unknown method 'magic'"),
                       ('[attribution]\nmethods = ["tracin"]\n', "attribution.methods: unknown method 'tracin'"),
                       ('[attribution]\ncorpus = "stitch"\n', "attribution.corpus: 'stitch' is not one of"),
                       ("[attribution]\nsubsets = 1\n", "attribution.subsets: must be at least 2"),
                       ("[run\n", "not valid TOML")):
        path = _toml(tmp_path / "c.toml", text)
        assert main(["config", "show", "--config", path]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: ") and what in err, err


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
