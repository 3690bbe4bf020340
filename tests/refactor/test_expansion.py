"""Theorem expansion on the embedded default: inlined proofs still verify,
labels are exactly the inlined nodes, and the split is grouped."""
import os

import pytest

from metamath import Database
from metamath.verify import check_rpn
from refactor.expansion import ExpansionOptions, build_expansion, inline, proof_tree

SET_PROP = os.environ.get("MMR_TEST_SETPROP", os.path.join(os.path.dirname(__file__), "..", "..", "data", "set-prop.mm"))


@pytest.fixture(scope="module")
def db():
    return Database.from_file(SET_PROP)


@pytest.fixture(scope="module")
def expansion(db):
    return build_expansion(db, ExpansionOptions(seed=0), jobs=1)


def test_a1i_inside_mp1i_labels_exactly_the_inlined_nodes(db):
    outer = proof_tree(db, "mp1i", 1000)
    assert [n.label for n in outer.nodes] == ["a1i", "wps", "wch", "ax-mp", "wph", "wps", "mp1i.1", "mp1i.2"]
    ex = inline(db, outer, "mp1i", 0, proof_tree(db, "a1i", 1000), "a1i")
    assert [n.label for n in ex.tree.nodes] == ["ax-mp", "wps", "wi", "wch", "wps", "ax-mp", "wph", "wps",
                                                "mp1i.1", "mp1i.2", "ax-1", "wps", "wch"]
    # a1i's own 9 steps are 1 (its hypothesis leaves became the argument roots); the argument
    # subproof of a1i.1 (ax-mp ... mp1i.2) keeps 0 inside
    assert ex.y == [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1]
    assert ex.tree.nodes[0].expr == tuple("|- ( ch -> ps )".split())
    assert ex.tree.nodes[2].expr == tuple("wff ( ch -> ps )".split())
    assert ex.tree.nodes[10].expr == tuple("|- ( ps -> ( ch -> ps ) )".split())
    assert [n.parent for n in ex.tree.nodes] == [-1, 0, 0, 2, 2, 0, 5, 5, 5, 5, 0, 10, 10]
    assert [n.arg_pos for n in ex.tree.nodes] == [0, 0, 1, 0, 1, 2, 0, 1, 2, 3, 3, 0, 1]
    check_rpn(db, "mp1i", ex.tree.rpn())


def test_every_inlined_proof_verifies(db, expansion):
    n = 0
    for split in expansion.splits.values():
        for ex in split:
            proof = check_rpn(db, ex.theorem, ex.tree.rpn(), record=True)
            assert proof.nodes[proof.root].expr == ex.tree.nodes[0].expr
            n += 1
    assert n == expansion.summary()["examples"] > 3000


def test_split_is_grouped_and_capped(expansion):
    seen = {}
    for name, split in expansion.splits.items():
        per = {}
        for ex in split:
            assert seen.setdefault(ex.inlined, name) == name, f"{ex.inlined} crosses splits"
            per[ex.inlined] = per.get(ex.inlined, 0) + 1
        cap = 100 if name == "train" else 10
        assert max(per.values()) <= cap
    s = expansion.summary()
    assert 0.2 < s["positive_fraction"] < 0.5
    assert s["max_nodes"] <= 1000
    assert s["splits"]["train"] > s["splits"]["valid"] > 0 and s["splits"]["test"] > 0


def test_same_seed_same_dataset_other_seed_other_split(db, expansion):
    again = build_expansion(db, ExpansionOptions(seed=0), jobs=1)
    assert again.summary() == expansion.summary()
    other = build_expansion(db, ExpansionOptions(seed=1), jobs=1)
    assert other.groups != expansion.groups


def test_essential_view_drops_syntax_only(expansion):
    """The essential example keeps exactly the full example's essential nodes, in
    pre-order with their labels, each hung from its nearest essential ancestor."""
    for ex in expansion.splits["train"][:50]:
        ess = ex.essential()
        full = ex.tree.nodes
        kept = [i for i, n in enumerate(full) if not n.syntax]
        assert [(n.label, n.expr) for n in ess.tree.nodes] == [(full[i].label, full[i].expr) for i in kept]
        assert ess.y == [ex.y[i] for i in kept] and all(n.expr[0] == "|-" for n in ess.tree.nodes)
        for k, n in enumerate(ess.tree.nodes):
            up = full[kept[k]].parent
            while up >= 0 and full[up].syntax:
                up = full[up].parent
            assert n.parent == (kept.index(up) if up >= 0 else -1)
            if n.parent >= 0:
                assert ess.tree.nodes[n.parent].children[n.arg_pos] == k


def test_every_example_has_the_shape_decoding_assumes(expansion):
    """refactor.decode searches one connected subtree whose positive nodes take all their children
    or none; the labels of every example (full tree and essential view) must have that shape, and
    decoding confident logits of the labels gives the labels back."""
    from refactor.decode import decode_inlined

    n = 0
    for split in expansion.splits.values():
        for full in split:
            for ex in (full, full.essential()):
                parent = [node.parent for node in ex.tree.nodes]
                assert decode_inlined(parent, [4.0 if v else -4.0 for v in ex.y]) == [bool(v) for v in ex.y]
                n += 1
    assert n > 6000
