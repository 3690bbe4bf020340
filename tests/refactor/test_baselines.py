"""The symbolic baselines on the embedded default: frequent subtrees are counted
right and give verified theorems; Stitch's s-expressions round-trip, nested
abstractions inline into shapes, and a short Stitch run gives verified theorems
(or, without stitch-core, a clear error)."""
import json
import os
from collections import Counter

import pytest

from metamath import Database
from metamath.proof import Proof, ProofNode
from refactor.baselines.frequent import count_shapes, enumerate_shapes, frequent_shapes
from refactor.baselines.stitch import StitchUnavailable, _inline, _to_shape, parse_sexpr, stitch_shapes, to_sexpr
from refactor.cli import main
from refactor.extract import Library, Proposals, extract
from refactor.theorems import verify_entries
from refactor.generalize import shape_steps

SET_PROP = os.environ.get("MMR_TEST_SETPROP",
                          os.path.join(os.path.dirname(__file__), "..", "..", "data", "set-prop.mm"))


@pytest.fixture(scope="module")
def db():
    return Database.from_file(SET_PROP)


@pytest.fixture(scope="module")
def library(db):
    return Library.build(db)


def _nodes(labels: list[str], children: list[list[int]]) -> list[ProofNode]:
    """A small hand-made proof (expressions left empty)."""
    return [ProofNode(l, (), tuple(c)) for l, c in zip(labels, children)]


def test_enumerate_shapes_of_a_small_tree():
    # a(b(H), c) where H is a hypothesis leaf and c a leaf step
    nodes = _nodes(["a", "b", "h.1", "c"], [[1, 3], [2], [], []])
    got = {s for s, _ in enumerate_shapes(nodes, 0, 3, 6, {"h.1"})}
    assert got == {("a", (None, None)), ("a", (("b", (None,)), None)), ("a", (None, ("c", ()))),
                   ("a", (("b", (None,)), ("c", ())))}
    assert {s for s, _ in enumerate_shapes(nodes, 0, 1, 6, {"h.1"})} == {("a", (None, None))}
    assert {n for _, n in enumerate_shapes(nodes, 0, 3, 2, {"h.1"})} == {1, 2}


def test_mined_counts_equal_brute_force_enumeration(db, library):
    hyp = {n.label for d in library.dags for n in d.nodes if db[n.label].kind == "e"}
    brute = Counter()
    for d in library.dags:
        for v in range(len(d)):
            for s, n in enumerate_shapes(d.nodes, v, 3, 6, hyp):
                brute[s] += n >= 2
    brute = {s: n for s, n in brute.items() if n >= 2}
    mined = count_shapes(db, library, max_depth=3, max_steps=6, min_count=2)
    assert dict(mined) == brute and len(brute) > 100
    # with a pool the threshold rises, and every shape at least that frequent is still counted exactly
    top = count_shapes(db, library, max_depth=3, max_steps=6, min_count=2, pool=20)
    low = min(top.values())
    assert low > 2 and dict(top) == {s: n for s, n in brute.items() if n >= low}


def test_frequent_counts_match_the_library_and_theorems_verify(db, library):
    counts = count_shapes(db, library, max_depth=2, max_steps=2)
    shape = ("imp41", (("imp", (None,)),))
    assert counts[shape] == len(library.occurrences(shape)) == 15  # the ad5ant* lemmas
    assert all(shape_steps(s) == 2 for s in counts)
    shapes, info = frequent_shapes(db, library)
    freq = [c for s, _ in shapes for c in [counts.get(s)] if c is not None]
    assert freq == sorted(freq, reverse=True)
    res = extract(db, Proposals("frequent", shapes, stop_after_new=4, batch=8), top=4, library=library)
    assert len(res.theorems) == 4 and res.new >= 4
    assert verify_entries(db, res.theorems) == {t["label"]: None for t in res.theorems}


def test_stitch_sexpr_round_trip_and_inlining():
    nodes = _nodes(["syl", "h.1", "ax-1", "a1i", "h.2"], [[1, 2, 3], [], [], [4], []])
    names = {"syl": "L0", "ax-1": "L1", "a1i": "L2"}
    text = to_sexpr(Proof("t", nodes, 0), names, {"h.1", "h.2"}, "7")
    assert text == "(L0 H7_0 L1 (L2 H7_1))"
    assert parse_sexpr(text) == ["L0", "H7_0", "L1", ["L2", "H7_1"]]
    back = {v: k for k, v in names.items()}
    bodies = {"fn_0": parse_sexpr("(L2 #0)")}
    body = _inline(parse_sexpr("(L0 #1 L1 (fn_0 #0))"), bodies)
    assert body == ["L0", "#1", "L1", ["L2", "#0"]]
    assert _to_shape(body, back) == ("syl", (None, ("ax-1", ()), ("a1i", (None,))))


def test_stitch_gives_verified_theorems_or_a_clear_error(db, library, tmp_path, capsys):
    try:
        import stitch_core  # noqa: F401
    except ImportError:
        with pytest.raises(StitchUnavailable):
            stitch_shapes(db, library)
        assert main(["extract", SET_PROP, "--method", "stitch", "--out", str(tmp_path / "T.json")]) == 2
        assert "stitch-core" in capsys.readouterr().err
        return
    shapes, info = stitch_shapes(db, library, iterations=6, limit_proofs=500)
    assert info["stitch_abstractions"] == len(shapes) > 0 and info["stitch_compression_ratio"] > 1
    assert all(s is not None for s, _ in shapes)
    res = extract(db, Proposals("stitch", shapes), top=6, library=library)
    assert res.candidates == len(set(s for s, _ in shapes))
    assert verify_entries(db, res.theorems) == {t["label"]: None for t in res.theorems}
    for t in res.theorems:
        assert t["uses"] >= 1
    out = tmp_path / "T.json"
    assert main(["extract", SET_PROP, "--method", "stitch", "--stitch-iterations", "3", "--top", "2",
                 "--out", str(out), "--json"]) == 0
    data = json.loads(out.read_text())
    assert data["method"] == "stitch" and data["info"]["stitch_iterations"] == 3


def test_stitch_on_a_seeded_sample_of_the_proofs(db, library, tmp_path, capsys):
    """--sample N gives Stitch a random N proofs (seeded), not the first N; other methods refuse it."""
    import stitch_core  # noqa: F401  (make setup installs it; without it this fails, not skips)
    a, info = stitch_shapes(db, library, iterations=3, sample_proofs=300, seed=1)
    b, _ = stitch_shapes(db, library, iterations=3, sample_proofs=300, seed=1)
    first, _ = stitch_shapes(db, library, iterations=3, limit_proofs=300)
    assert a == b and info["stitch_programs"] + info["stitch_skipped_programs"] == 300
    assert info["stitch_sample"] == 300 and info["stitch_sample_seed"] == 1
    assert a != first  # proofs from across the database teach other abstractions than its first 300
    out = str(tmp_path / "T.json")
    assert main(["extract", SET_PROP, "--method", "frequent", "--sample", "10", "--out", out]) == 2
    assert main(["extract", SET_PROP, "--method", "stitch", "--sample", "10", "--limit", "5", "--out", out]) == 2
    assert "--sample" in capsys.readouterr().err
