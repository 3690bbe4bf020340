"""Extraction end to end on real proofs: a fragment cut from two proofs of the
embedded default that share a pattern becomes one theorem that our verifier
and metamath.exe accept; a fragment with syl's shape is a rediscovery of syl;
the generalisation keeps variables apart that the source instance identified;
a `$d` the theorem needs is derived from its proof (and is really needed)."""
import json
import os

import pytest

from metamath import Database
from metamath.unify import match
from metamath.verify import check
from refactor.cli import main
from refactor.expansion import proof_tree
from refactor.extract import (Library, Proposals, by_shape, by_sub_shape, extract, fragments_from_positive,
                              top_parts)
from refactor.rewrite import rewrite_database
from refactor.theorems import entry_block, insert_theorems, theorem_block, verify_entries, verify_theorems
from refactor.generalize import GeneralizeError, canonical, concrete, generalize, shape_str

from conftest import metamath_verdict

SET_PROP = os.environ.get("MMR_TEST_SETPROP",
                          os.path.join(os.path.dirname(__file__), "..", "..", "data", "set-prop.mm"))

IMP41_IMP = ("imp41", (("imp", (None,)),))


@pytest.fixture(scope="module")
def db():
    return Database.from_file(SET_PROP)


@pytest.fixture(scope="module")
def library(db):
    return Library.build(db)


def _metamath_accepts(text: str, tmp_path, name: str = "x.mm") -> tuple[bool, str]:
    path = tmp_path / name
    path.write_text(text)
    verdict = metamath_verdict(path)
    return verdict.accepted, verdict.output


def _positive_nodes(db, tree, root, shape):
    """A hand-made prediction: the shape's nodes at ``root`` (its holes included, as
    REFACTOR labels argument roots), with the steps' syntax children."""
    pos = set()
    todo = [(root, shape)]
    while todo:
        v, s = todo.pop()
        pos.add(v)
        if s is None:
            continue
        ess = [c for c in tree.nodes[v].children if tree.nodes[c].expr[0] not in db.syntax_typecodes]
        pos.update(c for c in tree.nodes[v].children if c not in ess)
        assert tree.nodes[v].label == s[0] and len(ess) == len(s[1])
        todo.extend(zip(ess, s[1]))
    return pos


def _find(tree, db, label, child_label):
    for i, l in enumerate(n.label for n in tree.nodes):
        if l == label:
            ess = [c for c in tree.nodes[i].children if tree.nodes[c].expr[0] not in db.syntax_typecodes]
            if ess and tree.nodes[ess[0]].label == child_label:
                return i
    raise AssertionError(f"{label}({child_label}(..)) not in {tree.theorem}")


def test_fragment_shared_by_two_proofs_is_one_verified_theorem(db, library, tmp_path):
    frags = []
    for host in ("ad5ant13", "ad5ant14"):
        tree = proof_tree(db, host, 1000)
        root = _find(tree, db, "imp41", "imp")
        got = fragments_from_positive(db, tree, _positive_nodes(db, tree, root, IMP41_IMP), host)
        assert [f.shape for f in got] == [IMP41_IMP]
        frags += got
    res = extract(db, Proposals("gnn", by_shape(frags)), top=5, library=library)
    assert (res.fragments, res.candidates, res.valid, res.rediscoveries, res.new) == (2, 1, 1, 0, 1)
    (t,) = res.theorems
    assert t["statement"] == "|- ( ( ( ( ( ph /\\ ps ) /\\ ch ) /\\ th ) /\\ ta ) -> et )"
    assert [h["statement"] for h in t["hypotheses"]] == ["|- ( ph -> ( ps -> ( ch -> ( th -> ( ta -> et ) ) ) ) )"]
    assert t["source_proofs"] == ["ad5ant13", "ad5ant14"]
    assert t["uses"] >= 15 and t["essential_nodes_saved"] == t["uses"] * 1 - 3
    assert t["dv"] == [] and t["dummies"] == []
    # both verifiers accept it inserted into the database
    th = generalize(db, IMP41_IMP)
    text = insert_theorems(db, [theorem_block(t["label"], th)])
    db2 = Database.from_string(text, SET_PROP)
    check(db2, t["label"])
    assert db2[t["label"]].expr == tuple(t["statement"].split())
    ok, out = _metamath_accepts(text, tmp_path)
    assert ok, out[-2000:]


def test_syl_shape_is_a_rediscovery_of_syl(db, library):
    tree = proof_tree(db, "syl", 1000)
    ess = {i for i, n in enumerate(tree.nodes) if not n.syntax}
    (frag,) = fragments_from_positive(db, tree, ess, "syl")
    assert frag.shape == ("mpd", (None, ("a1i", (None,))))
    th = generalize(db, frag.shape)
    assert th.statement != db["syl"].expr or th.variables != ["ph", "ch", "ps"]  # renamed, not copied
    st = db["syl"]
    hyps = [db[h].expr for h in st.frame.hyps if db[h].kind == "e"]
    assert canonical(db, th.statement, th.hypotheses) == canonical(db, st.expr, hyps)
    res = extract(db, Proposals("gnn", by_shape([frag])), library=library)
    assert (res.valid, res.rediscoveries, res.new) == (1, 1, 0)
    assert res.rediscovered == [{"label_existing": "syl", "statement": "|- ( ph -> ch )"}]
    # a single step is trivial, never a theorem
    single = fragments_from_positive(db, tree, {0, 4, 5}, "syl")  # mpd and its $e leaves
    res = extract(db, Proposals("gnn", by_shape(single)), library=library)
    assert (res.candidates, res.trivial, res.valid, res.new) == (1, 1, 0, 0)


def test_generalisation_is_most_general(db, library):
    # pm1.2 applies jaoi(?, id) to ph, ph; the theorem of the shape keeps them apart
    shape = ("jaoi", (None, ("id", ())))
    th = generalize(db, shape)
    assert " ".join(th.statement) == "|- ( ( ph \\/ ps ) -> ps )"
    assert [" ".join(h) for h in th.hypotheses] == ["|- ( ph -> ps )"]
    tree = proof_tree(db, "pm1.2", 1000)
    inst = concrete(db, tree, [n.label for n in tree.nodes].index("jaoi"), shape)
    assert " ".join(inst.statement) == "|- ( ( ph \\/ ph ) -> ph )" and inst.variables == ["ph"]
    occ = library.occurrences(shape)
    assert len(occ) >= 2
    # every occurrence in the library is an instance of it (one consistent substitution)
    for k, v in occ:
        t, full = library.full_tree(db, k)
        c = concrete(db, t, full[v], shape)
        s = {}
        for pat, tgt in zip([th.statement] + th.hypotheses, [c.statement] + c.hypotheses):
            s = next(match(pat, tgt, set(th.variables), None, s), None)
            assert s is not None, (library.proofs[k], c.statement)
    # the most general theorem of a 3-step chain has 5 distinct variables, not fewer
    chain = generalize(db, ("syl", (("syl", (None, None)), ("syl", (None, None)))))
    assert len(chain.variables) == 5 and len(chain.hypotheses) == 4
    # variables must be declared before the theorem's first use: with only ph and ps there, none fits
    with pytest.raises(GeneralizeError, match="early enough"):
        generalize(db, ("syl", (("syl", (None, None)), ("syl", (None, None)))), before=db["wps"].index + 1)
    assert " ".join(chain.statement) == "|- ( ph -> ps )"
    assert verify_theorems(db, [("mmr-t1", th), ("mmr-t2", chain)]) == {"mmr-t1": None, "mmr-t2": None}


DV_DB = r"""$( A small predicate-calculus-like database with $d, for extraction tests. $)
$c ( ) -> -. wff |- A. setvar $.
$v ph ps ch th x y z $.
wph $f wff ph $.
wps $f wff ps $.
wch $f wff ch $.
wth $f wff th $.
vx $f setvar x $.
vy $f setvar y $.
vz $f setvar z $.
wn $a wff -. ph $.
wi $a wff ( ph -> ps ) $.
wal $a wff A. x ph $.
${
  min $e |- ph $.
  maj $e |- ( ph -> ps ) $.
  ax-mp $a |- ps $.
$}
${
  syl.1 $e |- ( ph -> ps ) $.
  syl.2 $e |- ( ps -> ch ) $.
  syl $a |- ( ph -> ch ) $.
$}
sp $a |- ( A. x ph -> ph ) $.
${
  $d x ph $.
  ax-17 $a |- ( ph -> A. x ph ) $.
$}
${
  $d y ps $.
  t2.1 $e |- ( A. y -. ps -> ch ) $.
  t2 $p |- ( -. ps -> ch ) $= wps wn wps wn vy wal wch wps wn vy ax-17 t2.1 syl $.
$}
${
  $d z ch th $.
  t4.1 $e |- ( A. z ( ch -> th ) -> ph ) $.
  t4 $p |- ( ( ch -> th ) -> ph ) $=
    wch wth wi wch wth wi vz wal wph wch wth wi vz ax-17 t4.1 syl $.
$}
${
  $d x ph $.
  t3 $p |- ( ph -> ph ) $= wph wph vx wal wph wph vx ax-17 wph vx sp syl $.
$}
${
  t5.1 $e |- ( ph -> ps ) $.
  t5.2 $e |- ( ps -> ch ) $.
  t5.3 $e |- ( ch -> th ) $.
  t5.4 $e |- ( th -> ph ) $.
  t5.5 $e |- ( ( ph -> ph ) -> ch ) $.
  t5 $p |- ch $=
    wph wph wi wch
    wph wch wph wph wps wch t5.1 t5.2 syl wch wth wph t5.3 t5.4 syl syl
    t5.5 ax-mp $.
$}
"""


def test_dv_is_derived_from_the_proof_and_needed(tmp_path):
    path = tmp_path / "dv.mm"
    path.write_text(DV_DB)
    db = Database.from_file(str(path))
    frags = []
    for host in ("t2", "t4"):
        tree = proof_tree(db, host, 1000)
        # the whole proof predicted: its $e leaf is the cut point
        frags += fragments_from_positive(db, tree, range(len(tree)), host)
        # ax-17 with its syntax children outside is a cut point itself (REFACTOR's rule)
        ess = [i for i in range(len(tree)) if tree.nodes[i].expr[0] not in db.syntax_typecodes]
        assert [f.shape for f in fragments_from_positive(db, tree, ess, host)] == [("syl", (None, None))]
    assert {f.shape for f in frags} == {("syl", (("ax-17", ()), None))}
    res = extract(db, Proposals("gnn", by_shape(frags)), library=Library.build(db))
    assert (res.candidates, res.valid, res.new) == (1, 1, 1)
    (t,) = res.theorems
    assert t["statement"] == "|- ( ph -> ps )"
    assert [h["statement"] for h in t["hypotheses"]] == ["|- ( A. x ph -> ps )"]
    assert t["dv"] == [["ph", "x"]] and t["source_proofs"] == ["t2", "t4"]
    assert t["uses"] == 3  # t3 has the pattern too, its hole proved by sp
    th = generalize(db, ("syl", (("ax-17", ()), None)))
    good = insert_theorems(db, [theorem_block("mmr-1", th)])
    check(Database.from_string(good, str(path)), "mmr-1")
    ok, out = _metamath_accepts(good, tmp_path, "good.mm")
    assert ok, out[-2000:]
    # without the $d both verifiers reject it
    th.dv = []
    bad = insert_theorems(db, [theorem_block("mmr-1", th)])
    assert verify_theorems(db, [("mmr-1", th)])["mmr-1"] is not None
    ok, out = _metamath_accepts(bad, tmp_path, "bad.mm")
    assert not ok
    # a dummy variable: syl(ax-17, sp) proves ( ph -> ph ) through A. x ph, x only in the proof
    dummy = generalize(db, ("syl", (("ax-17", ()), ("sp", ()))))
    assert dummy.variables == ["ph"] and dummy.dummies == ["x"] and dummy.dv == [("ph", "x")]
    assert verify_theorems(db, [("mmr-2", dummy)]) == {"mmr-2": None}


def test_cli_frequent_contract(tmp_path, capsys):
    out = tmp_path / "T.json"
    assert main(["extract", SET_PROP, "--method", "frequent", "--top", "5", "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    data = json.loads(out.read_text())
    assert printed == data
    for k in ("database", "method", "seed", "candidates", "valid", "rediscoveries", "new", "rediscovered",
              "theorems"):
        assert k in data
    assert data["method"] == "frequent" and len(data["theorems"]) == 5 <= data["new"]
    db = Database.from_file(SET_PROP)
    keys = set()
    for t in data["theorems"]:
        for k in ("label", "statement", "hypotheses", "variables", "dummies", "dv", "proof", "uses",
                  "nodes_saved", "source_proofs"):
            assert k in t
        assert t["label"] not in db.statements and t["uses"] >= 2
        keys.add(canonical(db, tuple(t["statement"].split()), [tuple(h["statement"].split())
                                                                  for h in t["hypotheses"]]))
    assert len(keys) == 5
    assert verify_entries(db, data["theorems"]) == {t["label"]: None for t in data["theorems"]}
    ok, log = _metamath_accepts(insert_theorems(db, [entry_block(t) for t in data["theorems"]]), tmp_path)
    assert ok, log[-2000:]
    # bad input: a clear message, no traceback, nothing written
    bad = tmp_path / "none.json"
    assert main(["extract", SET_PROP, "--method", "gnn", "--out", str(bad)]) == 2
    assert "--checkpoint" in capsys.readouterr().err and not bad.exists()
    assert main(["extract", SET_PROP, "--checkpoint", str(tmp_path / "missing.pt"), "--out", str(bad)]) == 2
    assert "no such checkpoint" in capsys.readouterr().err and not bad.exists()


def test_gnn_path_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", SET_PROP, "--out", str(run), "--preset", "tiny", "--epochs", "1", "--limit-proofs", "50",
                 "--max-examples", "60", "--json"]) == 0
    capsys.readouterr()
    db = Database.from_file(SET_PROP)
    for on, limit in (("proofs", 120), ("expansion", 40)):
        out = tmp_path / f"T-{on}.json"
        assert main(["extract", SET_PROP, "--checkpoint", str(run / "checkpoint.pt"), "--on", on, "--limit",
                     str(limit), "--top", "6", "--out", str(out), "--json"]) == 0
        data = json.loads(out.read_text())
        assert json.loads(capsys.readouterr().out) == data
        assert data["method"] == "gnn" and data["info"]["trees"] == limit - data["info"]["skipped_over_max_nodes"]
        assert data["candidates"] == data["valid"] + data["failed"] + data["single_step"]
        assert data["valid"] >= data["new"] + data["rediscoveries"] and data["new"] >= len(data["theorems"])
        assert len(data["theorems"]) == min(6, data["new"])
        assert verify_entries(db, data["theorems"]) == {t["label"]: None for t in data["theorems"]}
        saved = [t["nodes_saved"] for t in data["theorems"]]
        assert saved == sorted(saved, reverse=True)
        for t in data["theorems"]:
            assert t["source_proofs"] and all(p in db.statements for p in t["source_proofs"])
            assert 0.0 <= t["confidence"] <= 1.0  # the classifier's mean probability over its fragments


def test_gnn_on_essential_trees_and_the_fragment_options(tmp_path, capsys):
    """A checkpoint trained on essential-step trees classifies the essential
    view of each proof; its fragments still become verified theorems. The
    threshold decides how many nodes are positive; the fragments themselves
    (components) are fewer candidates than their parts (subshapes)."""
    run = tmp_path / "run"
    assert main(["train", SET_PROP, "--out", str(run), "--preset", "tiny", "--epochs", "1", "--limit-proofs", "80",
                 "--max-examples", "80", "--essential-only", "--json"]) == 0
    capsys.readouterr()
    db = Database.from_file(SET_PROP)
    got = {}
    for frag, thr in (("components", 0.5), ("subshapes", 0.5), ("subshapes", 0.2)):
        out = tmp_path / f"T-{frag}-{thr}.json"
        assert main(["extract", SET_PROP, "--checkpoint", str(run / "checkpoint.pt"), "--limit", "150",
                     "--fragments", frag, "--threshold", str(thr), "--top", "4", "--out", str(out), "--json"]) == 0
        capsys.readouterr()
        data = got[frag, thr] = json.loads(out.read_text())
        assert data["info"]["essential_only"] is True and data["info"]["threshold"] == thr
        assert data["info"]["nodes"] < 150 * 20  # essential views: far fewer nodes than full trees
        assert verify_entries(db, data["theorems"]) == {t["label"]: None for t in data["theorems"]}
        # probabilities of the essential view, mapped back onto the full tree's steps (every step of a
        # component is positive)
        assert all(t["confidence"] is not None and t["confidence"] > thr for t in data["theorems"] if
                   frag == "components" and thr == 0.5)
    assert got["components", 0.5]["info"]["positive_nodes"] == got["subshapes", 0.5]["info"]["positive_nodes"]
    assert got["subshapes", 0.2]["info"]["positive_nodes"] >= got["subshapes", 0.5]["info"]["positive_nodes"]
    assert got["subshapes", 0.5]["candidates"] >= got["components", 0.5]["candidates"]
    assert main(["extract", SET_PROP, "--checkpoint", str(run / "checkpoint.pt"), "--on", "expansion",
                 "--out", str(tmp_path / "x.json")]) == 2
    assert "essential-only" in capsys.readouterr().err
    # --decode: each proof's most probable inlined-theorem-shaped region instead of the threshold's nodes
    out = tmp_path / "T-decode.json"
    assert main(["extract", SET_PROP, "--checkpoint", str(run / "checkpoint.pt"), "--limit", "150",
                 "--fragments", "components", "--decode", "--top", "4", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    data = json.loads(out.read_text())
    assert data["info"]["decode"] is True and data["info"]["threshold"] is None
    assert data["info"]["positive_nodes"] >= data["info"]["trees"]  # never an empty region
    assert data["fragments"] <= data["info"]["trees"]  # one region a proof, one fragment at most
    assert verify_entries(db, data["theorems"]) == {t["label"]: None for t in data["theorems"]}
    for bad in (["--method", "frequent", "--decode"], ["--checkpoint", str(run / "checkpoint.pt"), "--decode",
                                                       "--threshold", "0.3"]):
        assert main(["extract", SET_PROP, *bad, "--out", str(tmp_path / "y.json")]) == 2
        assert "--decode" in capsys.readouterr().err
    # a model trained as a tree CRF (from this one's weights) predicts the decoded set: --decode is required
    crf = tmp_path / "crf"
    assert main(["train", SET_PROP, "--out", str(crf), "--preset", "tiny", "--epochs", "1", "--limit-proofs", "80",
                 "--max-examples", "80", "--essential-only", "--loss", "structured",
                 "--init", str(run / "checkpoint.pt"), "--json"]) == 0
    capsys.readouterr()
    assert main(["extract", SET_PROP, "--checkpoint", str(crf / "checkpoint.pt"), "--limit", "50",
                 "--out", str(tmp_path / "z.json")]) == 2
    assert "add --decode" in capsys.readouterr().err
    assert main(["extract", SET_PROP, "--checkpoint", str(crf / "checkpoint.pt"), "--limit", "50", "--decode",
                 "--top", "2", "--out", str(tmp_path / "z.json"), "--json"]) == 0


def _subtree(tree, i):
    todo = [i]
    while todo:
        j = todo.pop()
        yield j
        todo.extend(tree.nodes[j].children)


def test_concrete_instance_when_no_general_theorem(tmp_path):
    path = tmp_path / "dv.mm"
    path.write_text(DV_DB)
    db = Database.from_file(str(path))
    shape = ("syl", (("syl", (None, None)), ("syl", (None, None))))
    with pytest.raises(GeneralizeError, match="no wff variable left"):
        generalize(db, shape)  # the general chain needs 5 wff variables, the database has 4
    tree = proof_tree(db, "t5", 1000)
    chain = tree.nodes[0].children[2]  # ax-mp's minor premise: the syl chain
    assert tree.nodes[chain].label == "syl"
    inside = range(chain, chain + sum(1 for _ in _subtree(tree, chain)))
    (frag,) = fragments_from_positive(db, tree, inside, "t5")
    assert frag.shape == shape
    res = extract(db, Proposals("gnn", by_shape([frag])), library=Library.build(db))
    assert (res.valid, res.general, res.concrete, res.new) == (1, 0, 1, 1)
    (t,) = res.theorems
    assert t["statement"] == "|- ( ph -> ph )" and not t["general"] and t["uses"] == 1
    assert [h["statement"] for h in t["hypotheses"]] == [
        "|- ( ph -> ps )", "|- ( ps -> ch )", "|- ( ch -> th )", "|- ( th -> ph )"]
    ok, out = _metamath_accepts(insert_theorems(db, [entry_block(t)]), tmp_path, "concrete.mm")
    assert ok, out[-2000:]


def test_estimated_proof_node_saving_is_what_the_rewrite_saves(db, library, tmp_path):
    """The ranking's estimate (steps' syntax weights minus the application and
    its substitutions' syntax, minus the own proof) is the rewrite's measure:
    for imp41(imp(?)), alone, the two agree exactly; the essential-node
    estimate is a different, much smaller number."""
    res = extract(db, Proposals("gnn", [(IMP41_IMP, [])]), top=1, library=library)
    (t,) = res.theorems
    assert t["nodes_saved"] > 5 * t["essential_nodes_saved"] > 0
    rw = rewrite_database(db, res.as_json(), str(tmp_path / "r.mm"), use_metamath=False, jobs=1).as_dict()
    assert rw["total_usage"] == t["uses"]
    assert rw["proof_nodes_before"] - rw["proof_nodes_after"] == t["nodes_saved"]
    # ranked by essential nodes the same theorem keeps the old figure
    old = extract(db, Proposals("gnn", [(IMP41_IMP, [])]), top=1, library=library, ranking="essential")
    assert old.theorems[0]["essential_nodes_saved"] == t["essential_nodes_saved"]


def test_proof_node_ranking_prefers_what_saves_more_syntax(db, library):
    """Two candidates: the ranking by proof-tree nodes and the one by essential
    nodes disagree, and each puts first the one its own measure favours."""
    shapes = [(IMP41_IMP, []), (("a1ddd", (("a1ddd", (("3exp", (None,)),)),)), [])]
    by_nodes = extract(db, Proposals("gnn", shapes), top=2, library=library)
    by_ess = extract(db, Proposals("gnn", shapes), top=2, library=library, ranking="essential")
    first = lambda r, k: r.theorems[0][k]  # noqa: E731
    assert first(by_nodes, "nodes_saved") == max(t["nodes_saved"] for t in by_nodes.theorems)
    assert first(by_ess, "essential_nodes_saved") == max(t["essential_nodes_saved"] for t in by_ess.theorems)
    assert [t["shape"] for t in by_nodes.theorems] != [t["shape"] for t in by_ess.theorems]


def test_sub_shapes_of_fragments():
    """Every top part of every step (2 steps or more, within the limits), most often cut first."""
    s = ("a", (("b", (None, ("c", ()))), None))
    assert sorted(str(x) for x, _ in top_parts(s, 6, 3)) == sorted(str(x) for x in [
        ("a", (None, None)), ("a", (("b", (None, None)), None)), ("a", (("b", (None, ("c", ()))), None))])
    assert [n for _, n in top_parts(s, 2, 3)] == [1, 2]
    from refactor.extract import Fragment

    frags = [Fragment(s, "p1", 0), Fragment(("b", (None, ("c", ()))), "p2", 0)]  # no trees: no roots for parts
    got = by_sub_shape(frags)
    assert got[0] == (("b", (None, ("c", ()))), [frags[1]])  # in both fragments; whole in the second
    assert {x for x, _ in got} == {("b", (None, ("c", ()))), ("a", (("b", (None, None)), None)),
                                   ("a", (("b", (None, ("c", ()))), None))}
    assert all(fs == [] for x, fs in got[1:] if x != s) and dict(got)[s] == [frags[0]]


def test_parts_of_a_real_fragment_keep_their_proof_and_root(db):
    tree = proof_tree(db, "ad5ant13", 1000)
    root = _find(tree, db, "imp41", "imp")
    (frag,) = fragments_from_positive(db, tree, _positive_nodes(db, tree, root, IMP41_IMP), "ad5ant13")
    (shape, (part,)), = by_sub_shape([frag])
    assert shape == IMP41_IMP and part is frag
    deeper = ("imp41", (("imp", (("pm2.43i", (None,)),)),))
    assert deeper not in dict(by_sub_shape([frag]))  # a part never reaches beyond the fragment


def test_occurrences_use_the_children_index_and_match_a_scan(db, library):
    """The children's-labels index only narrows where a shape is matched: the
    occurrences equal those of a scan over every node with the root's label."""
    from collections import defaultdict

    def scanned(shape):
        by_proof = defaultdict(list)
        for k, v in library.by_label.get(shape[0], ()):
            by_proof[k].append(v)
        out = []
        for k, vs in by_proof.items():
            used = set()
            for v in sorted(vs, reverse=True):
                steps = library.matches_at(k, v, shape)
                if v in used or steps is None or used.intersection(steps):
                    continue
                used.update(steps)
                out.append((k, v))
        return sorted(out, key=lambda o: (o[0], -o[1]))

    shapes = [("syl", (None, None)), ("syl", (("syl", (None, None)), None)), ("mpd", (None, ("a1i", (None,)))),
              ("jaoi", (None, ("id", ()))), ("syl", (None, ("ax-1", ()))), ("id", ())]
    for shape in shapes:
        got = library.occurrences(shape)
        assert got == scanned(shape) and library.occurrences(shape) == got, shape
        assert all(library.matches_at(k, v, shape) is not None for k, v in library.rooted_like(shape))
    assert len(library.occurrences(("syl", (None, None)))) > len(library.occurrences(shapes[1])) > 0
    assert library.occurrences(("syl", (None,))) == []  # wrong arity: no candidate node at all


def test_confidence_ranking_weighs_the_saving_by_the_classifier(db, library):
    """A fragment's confidence is the mean probability over the steps its shape covers (holes and
    syntax not counted); ranking ``confidence`` orders by nodes saved times that mean, so a candidate
    the classifier doubts falls behind one that saves less."""
    from refactor.extract import Fragment, fragment_confidence

    tree = proof_tree(db, "ad5ant13", 1000)
    root = _find(tree, db, "imp41", "imp")
    imp = next(c for c in tree.nodes[root].children if tree.nodes[c].label == "imp")
    probs = [0.1] * len(tree.nodes)
    probs[root], probs[imp] = 0.9, 0.5
    f = Fragment(IMP41_IMP, "ad5ant13", root, tree, probs)
    assert fragment_confidence(f) == pytest.approx(0.7)  # the two steps, not the hole below imp
    assert fragment_confidence(Fragment(IMP41_IMP, "ad5ant13", root, tree)) is None
    other = ("a1ddd", (("a1ddd", (("3exp", (None,)),)),))
    plain = extract(db, Proposals("gnn", [(IMP41_IMP, []), (other, [])]), top=2, library=library)
    assert plain.theorems[0]["nodes_saved"] > plain.theorems[1]["nodes_saved"] > 0
    best, next_ = (IMP41_IMP, other) if plain.theorems[0]["shape"] == shape_str(IMP41_IMP) else (other, IMP41_IMP)

    def doubted(s, p):  # a candidate whose fragment has probability p at every node
        return (s, [Fragment(s, "ad5ant13", root, tree, [p] * len(tree.nodes))])

    conf = extract(db, Proposals("gnn", [doubted(best, 0.01), doubted(next_, 0.99)]), top=2, library=library,
                   ranking="confidence")
    assert [t["shape"] for t in conf.theorems] == [shape_str(next_), shape_str(best)]
    assert [t["confidence"] for t in conf.theorems] == [0.99, 0.01]
    assert plain.theorems[0]["confidence"] is None  # no classifier, no confidence


def test_confidence_ranking_needs_the_gnn(tmp_path, capsys):
    assert main(["extract", SET_PROP, "--method", "frequent", "--ranking", "confidence",
                 "--out", str(tmp_path / "T.json")]) == 2
    assert "needs the gnn" in capsys.readouterr().err
    from refactor.pipeline import plain_ranking

    assert [plain_ranking(r) for r in ("confidence", "essential", "proof-nodes")] == \
        ["proof-nodes", "essential", "proof-nodes"]
