from metamath import Database, verify_all, check
from metamath.errors import ProofError
import pytest


def test_demo0_verifies(demo0):
    rep = verify_all(demo0)
    assert rep.theorems == 1 and rep.verified == 1 and rep.failed == []


def test_ql_verifies_and_records_trees(ql):
    rep = verify_all(ql)
    assert rep.failed == [] and rep.verified == 1138
    proof = check(ql, ql.theorems()[0], record=True)
    assert proof.nodes[proof.root].expr == ql[ql.theorems()[0]].expr
    assert proof.tree_size() >= len(proof.nodes) >= 1


def test_wrong_statement_is_rejected():
    text = open("/usr/share/metamath/databases/demo0.mm").read()
    bad = text.replace("th1 $p |- t = t", "th1 $p |- t = ( t + 0 )")
    if bad == text:
        pytest.skip("demo0.mm changed")
    db = Database.from_string(bad, "demo0-bad.mm")
    with pytest.raises(ProofError) as exc:
        check(db, "th1")
    assert exc.value.label == "th1" and exc.value.step >= 1
