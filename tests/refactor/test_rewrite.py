"""``mmrefactor rewrite``: new theorems inserted, every proof rewritten, verified twice.

Hand-made databases under tests/data/ (rewrite-prop.mm, rewrite-dv.mm) and a
few written here; each output is checked by our verifier and by
metamath.exe (``metamath "verify proof *"``).
"""
from __future__ import annotations

import hashlib
import json
import os

import pytest
from conftest import ROOT, metamath_exe, metamath_verdict

from metamath.database import Database
from metamath.verify import check, verify_all
from refactor.cli import main
from metamath.proof import Proof
from refactor.match import Binder, best_rewrite
from refactor.rewrite import RewriteError, rewrite_file
from refactor.theorems import TheoremsFileError, load_theorems

DATA = os.path.join(ROOT, "tests", "data")
PROP = os.path.join(DATA, "rewrite-prop.mm")
DV = os.path.join(DATA, "rewrite-dv.mm")

# a1i as a pattern: from |- ph infer |- ( ps -> ph ), via ax-1 and modus ponens
A1I = {"label": "mmr-1", "statement": "|- ( ps -> ph )",
       "hypotheses": [{"label": "mmr-1.1", "statement": "|- ph"}],
       "variables": ["ph", "ps"], "dummies": [], "dv": [],
       "proof": ["wph", "wps", "wph", "wi", "mmr-1.1", "wph", "wps", "ax-1", "ax-mp"],
       "uses": 3, "nodes_saved": 14, "source_proofs": ["th1", "th2"]}

# from |- ph infer |- A. x ph through ax-17: needs $d x ph
GEN = {"label": "th1", "statement": "|- A. x ph",  # collides with th1 of the database on purpose
       "hypotheses": [{"label": "th1.1", "statement": "|- ph"}],
       "variables": ["ph", "x"], "dummies": [], "dv": [["x", "ph"]],
       "proof": ["wph", "wph", "vx", "wal", "th1.1", "wph", "vx", "ax-17", "ax-mp"],
       "source_proofs": ["th1", "th2"]}


def _tjson(tmp_path, *theorems, method="frequent") -> str:
    path = tmp_path / "T.json"
    path.write_text(json.dumps({"database": "", "method": method, "seed": 0, "candidates": len(theorems),
                                "valid": len(theorems), "rediscoveries": 0, "new": len(theorems),
                                "rediscovered": [], "theorems": list(theorems)}))
    return str(path)


def _sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _metamath_accepts(path) -> bool:
    return metamath_verdict(path).accepted


def _rewrite_cli(capsys, db, tpath, out) -> dict:
    code = main(["rewrite", db, "--theorems", tpath, "-o", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _proof_labels(db: Database, label: str) -> list[str]:
    return [n.label for n in check(db, label, record=True).nodes]


def test_two_proofs_sharing_a_pattern_are_rewritten(tmp_path, capsys):
    metamath_exe()
    before = _sha(PROP)
    out = tmp_path / "out.mm"
    d = _rewrite_cli(capsys, PROP, _tjson(tmp_path, A1I), out)
    assert _sha(PROP) == before  # the input is untouched
    assert d["verified_by"] == ["mmrefactor", "metamath"]
    assert d["new_theorems"] == 1
    # th1 holds the pattern twice (nested), th2 once
    assert d["total_usage"] == 3 and d["average_usage"] == 3.0
    assert d["proofs_rewritten"] == 2
    # th1 23 -> 9 nodes, th2 15 -> 6, id 40 unchanged, plus the new theorem's own 9
    assert d["proof_nodes_before"] == 23 + 15 + 40
    assert d["proof_nodes_after"] == 9 + 6 + 40 + 9
    (t,) = d["per_theorem"]
    assert (t["label"], t["uses"], t["proofs"]) == ("mmr-1", 3, 2)
    assert t["nodes_saved"] == 14 == d["proof_nodes_before"] - d["proof_nodes_after"]
    assert t["inserted_before"] == "th1"
    assert d["compressed_bytes_after"] < d["compressed_bytes_before"]
    assert d["file_bytes_before"] == os.path.getsize(PROP)
    assert d["file_bytes_after"] == os.path.getsize(out)
    # our verifier and metamath.exe, asked again on the written file
    assert _metamath_accepts(out)
    odb = Database.from_file(str(out))
    assert not verify_all(odb).failed
    text = out.read_text()
    for l in ("th1", "th2", "id", "mmr-1"):  # each proof once: replaced, not appended
        assert text.count(f" {l} $p ") == 1
    # rewritten proofs apply the new theorem and no longer hold the pattern
    assert _proof_labels(odb, "th1").count("mmr-1") == 2 and "ax-1" not in _proof_labels(odb, "th1")
    assert _proof_labels(odb, "th2").count("mmr-1") == 1
    # an untouched proof stays byte-identical
    src = open(PROP).read()
    idb = Database.from_file(PROP)
    assert odb.text_of(odb["id"]) == idb.text_of(idb["id"])
    # inserted at the outermost scope, after the axioms it uses, before th1 and its description
    new = odb["mmr-1"]
    assert new.depth == 1 and odb["mmr-1.1"].depth == 1  # inside its own ${ $} only
    assert odb["ax-mp"].index < odb["id"].index < new.index < odb["th1"].index
    assert text.index("mmr-1 $p") < text.index("$( Two nested occurrences") < text.index("th1 $p")
    comment = odb.comment_of("mmr-1")
    assert "from the proofs of ~ th1 ~ th2" in " ".join(comment.split()) and "~\n" not in comment
    assert odb.proof_tokens("mmr-1")[0] == "("  # compressed
    assert len(src) < len(text)


def test_theorem_needing_dv_carries_it(tmp_path, capsys):
    metamath_exe()
    out = tmp_path / "out.mm"
    d = _rewrite_cli(capsys, DV, _tjson(tmp_path, GEN, method="gnn"), out)
    assert d["verified_by"] == ["mmrefactor", "metamath"]
    (t,) = d["per_theorem"]
    # th1 and th1.1 are taken: the new theorem gets a fresh label
    assert t["label"] == "th1-2" and t["proposed_label"] == "th1"
    assert t["uses"] == 2 and t["proofs"] == 2
    assert t["nodes_saved"] == (15 + 12) - (6 + 5) - 9 == d["proof_nodes_before"] - d["proof_nodes_after"]
    odb = Database.from_file(str(out))
    assert odb["th1-2"].frame.dvs == {("ph", "x")}
    assert "th1-2.1" in odb["th1-2"].frame.hyps
    # th2 uses it with y for x (the variable is a pattern wildcard)
    assert "th1-2" in _proof_labels(odb, "th1") and "th1-2" in _proof_labels(odb, "th2")
    assert "ax-17" not in _proof_labels(odb, "th2")
    assert _metamath_accepts(out)


def test_refuses_to_write_when_a_theorem_does_not_verify(tmp_path, capsys):
    bad = dict(GEN, dv=[])  # without $d x ph, ax-17 cannot be applied
    tpath = _tjson(tmp_path, bad)
    before = _sha(DV)
    out = tmp_path / "out.mm"
    code = main(["rewrite", DV, "--theorems", tpath, "-o", str(out), "--json"])
    err = capsys.readouterr().err
    assert code != 0
    assert "'th1'" in err and "does not verify" in err and "$d" in err
    assert not out.exists() and os.listdir(tmp_path) == ["T.json"]  # no temporary left behind
    assert _sha(DV) == before
    with pytest.raises(RewriteError) as exc:
        rewrite_file(DV, tpath, str(out))
    assert exc.value.failed == ["th1-2"]


def test_refuses_to_overwrite_the_input(tmp_path, capsys):
    db = tmp_path / "db.mm"
    db.write_text(open(PROP).read())
    before = _sha(db)
    code = main(["rewrite", str(db), "--theorems", _tjson(tmp_path, A1I), "-o", str(db)])
    assert code != 0 and "overwrite" in capsys.readouterr().err
    assert _sha(db) == before


def test_bad_theorems_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "T.json"
    bad.write_text("{ not json")
    code = main(["rewrite", PROP, "--theorems", str(bad), "-o", str(tmp_path / "o.mm")])
    err = capsys.readouterr().err
    assert code != 0 and "T.json:1:3" in err and "Traceback" not in err
    t = dict(A1I, proof=["wph", "wps", "nosuch", "ax-mp"])
    code = main(["rewrite", PROP, "--theorems", _tjson(tmp_path, t), "-o", str(tmp_path / "o.mm")])
    err = capsys.readouterr().err
    assert code != 0 and "'nosuch'" in err and not (tmp_path / "o.mm").exists()


def test_top_inserts_the_first_k_theorems_only(tmp_path, capsys):
    metamath_exe()
    # the second theorem names a label the database lacks: inserting it would fail
    tpath = _tjson(tmp_path, A1I, dict(A1I, label="mmr-9", proof=["wph", "nosuch", "ax-mp"]))
    out = tmp_path / "out.mm"
    code = main(["rewrite", PROP, "--theorems", tpath, "-o", str(out), "--top", "1", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    d = json.loads(captured.out)
    assert d["new_theorems"] == 1 and [t["label"] for t in d["per_theorem"]] == ["mmr-1"]
    assert d["verified_by"] == ["mmrefactor", "metamath"]
    assert main(["rewrite", PROP, "--theorems", tpath, "-o", str(out), "--top", "2"]) != 0
    assert "'nosuch'" in capsys.readouterr().err
    assert main(["rewrite", PROP, "--theorems", tpath, "-o", str(tmp_path / "o.mm"), "--top", "0"]) == 2
    err = capsys.readouterr().err
    assert "--top must be at least 1" in err and "Traceback" not in err


# a1i twice: from |- ph infer |- ( ps -> ( ch -> ph ) ), th1's whole proof
A1I2 = {"label": "mmr-2", "statement": "|- ( ps -> ( ch -> ph ) )",
        "hypotheses": [{"label": "mmr-2.1", "statement": "|- ph"}], "variables": ["ph", "ps", "ch"],
        "dummies": [], "dv": [],
        "proof": "wch wph wi wps wch wph wi wi wph wch wph wi mmr-2.1 wph wch ax-1 ax-mp "
                 "wch wph wi wps ax-1 ax-mp".split(), "source_proofs": ["th1"]}


def test_order_is_chosen_per_proof_and_new_theorems_use_each_other(tmp_path, capsys):
    # In th1 the big pattern saves 18 nodes, the small one (applied twice) 14:
    # th1 takes the big one, th2 (only the small pattern) the small one.
    # Applying the small one first everywhere would leave the big one unused.
    # The big theorem's own proof (th1's) then uses the small one twice.
    metamath_exe()
    out = tmp_path / "out.mm"
    d = _rewrite_cli(capsys, PROP, _tjson(tmp_path, A1I2, A1I), out)
    assert d["verified_by"] == ["mmrefactor", "metamath"]
    per = {t["label"]: t for t in d["per_theorem"]}
    assert per["mmr-2"]["uses"] == 1 and per["mmr-2"]["nodes_saved_gross"] == 23 - 5
    assert per["mmr-2"]["uses_new_theorems"] == ["mmr-1"] and per["mmr-2"]["own_proof_nodes"] == 9
    # mmr-1: th2 15 -> 6, and mmr-2's own proof 23 -> 9
    assert per["mmr-1"]["uses"] == 1 + 2 and per["mmr-1"]["proofs"] == 2
    assert per["mmr-1"]["nodes_saved_gross"] == (15 - 6) + (23 - 9)
    assert d["proof_nodes_after"] == 40 + 5 + 6 + 9 + 9
    assert sum(t["nodes_saved"] for t in per.values()) == d["proof_nodes_before"] - d["proof_nodes_after"]
    odb = Database.from_file(str(out))
    assert odb["mmr-1"].index < odb["mmr-2"].index < odb["th1"].index < odb["th2"].index
    assert "mmr-1" in _proof_labels(odb, "mmr-2") and "ax-1" not in _proof_labels(odb, "mmr-2")


# eligibility: a theorem built on a lemma cannot be used inside the lemma's own top-level block
LEMMA_DB = open(PROP).read() + """
  ${
    lem.1 $e |- ph $.
    lem $p |- ( ps -> ph ) $=
      wph wps wph wi lem.1 wph wps ax-1 ax-mp $.
    $( Uses the lem-then-a1i pattern inside lem's own block. $)
    inblock $p |- ( ch -> ( ps -> ph ) ) $=
      wps wph wi wch wps wph wi wi wph wps lem.1 lem wps wph wi wch ax-1 ax-mp $.
  $}

  ${
    after.1 $e |- ph $.
    $( Uses the same pattern after the block. $)
    after $p |- ( ch -> ( ps -> ph ) ) $=
      wps wph wi wch wps wph wi wi wph wps after.1 lem wps wph wi wch ax-1 ax-mp $.
  $}
"""

LEM_A1I = {"label": "mmr-3", "statement": "|- ( ch -> ( ps -> ph ) )",
           "hypotheses": [{"label": "mmr-3.1", "statement": "|- ph"}], "variables": ["ph", "ps", "ch"],
           "dummies": [], "dv": [],
           "proof": "wps wph wi wch wps wph wi wi wph wps mmr-3.1 lem wps wph wi wch ax-1 ax-mp".split()}


def test_occurrences_before_the_insertion_point_are_left_alone(tmp_path, capsys):
    metamath_exe()
    db = tmp_path / "lem.mm"
    db.write_text(LEMMA_DB)
    out = tmp_path / "out.mm"
    d = _rewrite_cli(capsys, str(db), _tjson(tmp_path, LEM_A1I), out)
    assert d["verified_by"] == ["mmrefactor", "metamath"]
    assert d["per_theorem"][0]["uses"] == 1
    odb = Database.from_file(str(out))
    assert "mmr-3" not in _proof_labels(odb, "inblock") and "mmr-3" in _proof_labels(odb, "after")
    assert odb["inblock"].index < odb["mmr-3"].index < odb["after"].index
    assert odb["mmr-3"].depth == 1


# a hypothesis the pattern never uses: its instance and its variable come from unification
UNIFY_DB = open(PROP).read() + """
  ${
    p.1 $e |- th $.
    p.2 $e |- ( th -> ch ) $.
    $( Modus ponens, then the a1i pattern. $)
    p $p |- ( ps -> ch ) $=
      wch wps wch wi wth wch p.1 p.2 ax-mp wch wps ax-1 ax-mp $.
  $}
"""

# a1i with an extra hypothesis |- ( th -> ph ): th occurs nowhere in the pattern
A1I_EXTRA = {"label": "mmr-4", "statement": "|- ( ps -> ph )",
             "hypotheses": [{"label": "mmr-4.1", "statement": "|- ph"},
                            {"label": "mmr-4.2", "statement": "|- ( th -> ph )"}],
             "variables": ["ph", "ps", "th"], "dummies": [], "dv": [],
             "proof": ["wph", "wps", "wph", "wi", "mmr-4.1", "wph", "wps", "ax-1", "ax-mp"]}


def test_unbound_hypothesis_and_variable_come_from_unification(tmp_path, capsys):
    metamath_exe()
    db = tmp_path / "u.mm"
    db.write_text(UNIFY_DB)
    out = tmp_path / "out.mm"
    d = _rewrite_cli(capsys, str(db), _tjson(tmp_path, A1I_EXTRA), out)
    assert d["verified_by"] == ["mmrefactor", "metamath"]
    odb = Database.from_file(str(out))
    proof = check(odb, "p", record=True)
    app = proof.nodes[proof.root]
    assert app.label == "mmr-4"
    # children: ph := ch, ps := ps, th := th (from p.2 by unification), then the two hypotheses
    assert [proof.nodes[c].label for c in app.children] == ["wch", "wps", "wth", "ax-mp", "p.2"]


def test_syntax_proof_from_the_grammar():
    db = Database.from_file(PROP)
    dag = check(db, "th2", record=True).dag()
    n = len(dag)
    b = Binder(db, "th2", dag)
    assert b.syntax_proof(("wff", "ph")) < n  # one of the proof's own steps
    i = b.syntax_proof(("wff", "-.", "(", "th", "->", "-.", "ph", ")"))
    assert i >= n  # built from the grammar
    assert dag.nodes[i].expr == ("wff", "-.", "(", "th", "->", "-.", "ph", ")")
    assert Proof("th2", dag.nodes, i).rpn() == ["wth", "wph", "wn", "wi", "wn"]


def test_best_rewrite_tries_orders():
    from refactor.layout import layout
    from refactor.rewrite import _plan, _probe

    db = Database.from_file(PROP)
    data = {"theorems": [A1I, A1I2]}  # indices 0 and 1
    plans = _plan(db, data, "T.json")
    _probe(db, plans, "T.json", layout(db))
    dag = check(db, "th1", record=True).dag()
    new, steps = best_rewrite(db, "th1", dag, plans)
    assert [s[0] for s in steps] == [1] and new.tree_size() == 5
    # limited to greedy, the first step is still the bigger saving here
    new, steps = best_rewrite(db, "th1", dag, plans, exhaustive=0)
    assert new.tree_size() == 5


def test_load_theorems_errors(tmp_path):
    p = tmp_path / "T.json"
    p.write_text(json.dumps({"theorems": [{"label": "x"}]}))
    with pytest.raises(TheoremsFileError, match="statement"):
        load_theorems(str(p))
    with pytest.raises(TheoremsFileError, match="not found"):
        load_theorems(str(tmp_path / "missing.json"))


def test_the_judge_names_the_failing_proof(tmp_path):
    bad = tmp_path / "bad.mm"
    wrong = open(PROP).read().replace("th2.1 wph wps wi wch ax-1", "th2.1 wph wps wi wps ax-1")
    bad.write_text(wrong)
    verdict = metamath_verdict(str(bad))
    assert not verdict.accepted and verdict.failing() == ["th2"]
    assert metamath_verdict(PROP).accepted


def test_without_metamath_only_our_verifier_is_listed(tmp_path):
    res = rewrite_file(PROP, _tjson(tmp_path, A1I), str(tmp_path / "o.mm"), use_metamath=False)
    assert res.verified_by == ["mmrefactor"] and res.total_usage == 3


# imp41 after imp, 15 times in set-prop (a frequent pattern, generalised by hand)
IMP51 = {"label": "imp51", "statement": "|- ( ( ( ( ( ph /\\ ps ) /\\ ch ) /\\ th ) /\\ ta ) -> et )",
         "hypotheses": [{"label": "imp51.1",
                         "statement": "|- ( ph -> ( ps -> ( ch -> ( th -> ( ta -> et ) ) ) ) )"}],
         "variables": ["ph", "ps", "ch", "th", "ta", "et"], "dummies": [], "dv": [],
         "proof": "wph wps wa wch wth wta wet wph wps wch wth wta wet wi wi wi imp51.1 imp imp41".split()}


def test_set_prop_with_a_frequent_pattern(tmp_path, capsys):
    metamath_exe()
    db = os.path.join(ROOT, "data", "set-prop.mm")
    out = tmp_path / "out.mm"
    d = _rewrite_cli(capsys, db, _tjson(tmp_path, IMP51), out)
    assert d["verified_by"] == ["mmrefactor", "metamath"]
    (t,) = d["per_theorem"]
    assert t["uses"] == 15 and t["proofs"] == 15
    assert t["nodes_saved"] == d["proof_nodes_before"] - d["proof_nodes_after"] > 0
    assert d["essential_nodes_after"] < d["essential_nodes_before"]
    assert d["compressed_bytes_after"] < d["compressed_bytes_before"]
    odb = Database.from_file(str(out))
    assert odb["imp41"].index < odb["imp51"].index and odb["imp51"].depth == 1
