"""Matching statements against expressions: substitutions, typing, ``$d``."""
from __future__ import annotations

import time

import pytest

from metamath import Database, check
from metamath.errors import ProofError
from metamath.unify import (apply, assertion_matches, check_dv, first_match, instantiate, match,
                            match_assertion, match_syntax, proof_substitution, terms)
from metamath.verify import check_rpn

from conftest import debian

_CACHE: dict[str, Database] = {}


def _set_prefix() -> Database:
    """set.mm up to ``exbidv``: propositional calculus and the first ``$d`` theorems."""
    if "set" not in _CACHE:
        text = open(debian("set.mm")).read()
        end = text.index("$}", text.index("exbidv $p")) + 2
        _CACHE["set"] = Database.from_string(text[:end], "set.mm-prefix")
    return _CACHE["set"]


@pytest.fixture(scope="module")
def sp():
    return _set_prefix()


def _e(s: str) -> tuple[str, ...]:
    return tuple(s.split())


def _steps(db: Database, labels):
    """(proof, node id, assertion label, conclusion, $e argument expressions) of every assertion step."""
    for label in labels:
        proof = check(db, label, record=True)
        for i, n in enumerate(proof.nodes):
            st = db[n.label]
            if st.kind in "ap":
                hyps = [proof.nodes[c].expr for h, c in zip(st.frame.hyps, n.children) if db[h].kind == "e"]
                yield proof, i, n.label, n.expr, hyps


def _check_all_steps(db: Database, labels) -> int:
    count = 0
    for proof, i, label, concl, hyps in _steps(db, labels):
        found = list(assertion_matches(db, label, concl, hyps))
        assert found == [proof_substitution(db, proof, i)], (proof.theorem, i, label)
        count += 1
    return count


def test_ax_mp_step_gives_the_substitution_the_proof_used(sp):
    proof = check(sp, "a1i", record=True)
    i = next(i for i, n in enumerate(proof.nodes) if n.label == "ax-mp")
    n = proof.nodes[i]
    minor, major = (proof.nodes[c].expr for c in n.children[2:])
    s = match_assertion(sp, "ax-mp", n.expr, [minor, major])
    # the $f children of the step hold exactly these expressions
    assert s == {"ph": proof.nodes[n.children[0]].expr[1:], "ps": proof.nodes[n.children[1]].expr[1:]}
    assert s == proof_substitution(sp, proof, i)
    assert instantiate(sp, "ax-mp", s) == (n.expr, [minor, major])
    # conclusion alone: only ps is determined
    assert match_assertion(sp, "ax-mp", n.expr) == {"ps": n.expr[1:]}
    # hypotheses alone, the major premise fixes both
    assert match_assertion(sp, "ax-mp", None, [None, major]) == s


def test_every_step_of_real_proofs_matches_exactly_once(sp, ql):
    # typed matching finds one substitution per step, and it is the proof's own
    assert _check_all_steps(sp, sp.theorems()[::12]) > 500
    assert _check_all_steps(ql, ql.theorems()[::25]) > 1000


@pytest.mark.parametrize("name", ["hol.mm", "miu.mm", "iset.mm"])
def test_other_grammars(name):
    db = Database.from_file(debian(name))
    labels = db.theorems()
    assert _check_all_steps(db, labels[:: max(1, len(labels) // 25)]) > 0


def test_empty_terms_in_miu():
    db = Database.from_file(debian("miu.mm"))
    t = terms(db)
    assert "wff" in t.empty_types and t.is_term("wff", ()) and t.is_term("wff", _e("M U I I"))
    assert not t.is_term("wff", _e("|-"))


def test_flat_match_is_ambiguous_typed_match_is_not(sp):
    pattern = _e("|- ( ph -> ps )")
    target = _e("|- ( ( ph -> ps ) -> ch )")
    raw = list(match(pattern, target, sp.variables))
    assert len(raw) == 2
    assert {"ph": _e("( ph"), "ps": _e("ps ) -> ch")} in raw
    want = {"ph": _e("( ph -> ps )"), "ps": _e("ch")}
    assert want in raw
    t = terms(sp)
    assert list(match(pattern, target, sp.variables, accept=t.accepts)) == [want]
    assert list(assertion_matches(sp, "ax-mp", _e("|- ch"), [_e("|- ( ph -> ps )"), target])) == \
        [{"ph": _e("( ph -> ps )"), "ps": _e("ch")}]
    # the unique string match can be ill-typed: only the typed matcher rejects it
    bad = _e("|- ( ( ph /\\ ps ) -> ch )")
    assert first_match(_e("|- ( ph /\\ ps )"), bad, sp.variables) is not None
    assert first_match(_e("|- ( ph /\\ ps )"), bad, sp.variables, accept=t.accepts) is None
    assert list(assertion_matches(sp, "ax-1", _e("|- ( ph -> ( ps -> ph ) )"), typed=False))
    assert match_assertion(sp, "ax-1", _e("|- ( ph -> ( ps -> ch ) )")) is None  # ph twice, unequal values


def test_match_details(sp):
    v = sp.variables
    assert list(match(_e("|- ph"), _e("|- ( ps -> ch )"), v)) == [{"ph": _e("( ps -> ch )")}]
    assert list(match(_e("|- ph"), _e("|-"), v)) == []  # variables are non-empty by default
    assert list(match(_e("wff ph"), _e("wff"), v, empty={"ph"})) == [{"ph": ()}]
    assert list(match(_e("|- ( ph -> ph )"), _e("|- ( a -> b )"), v)) == []
    # an existing binding is respected and not modified
    given = {"ph": _e("a")}
    assert list(match(_e("|- ( ph -> ps )"), _e("|- ( a -> b -> c )"), v, subst=given)) == \
        [{"ph": _e("a"), "ps": _e("b -> c")}]
    assert given == {"ph": _e("a")}
    assert apply(_e("|- ( ph -> ps )"), {"ph": _e("( a -> b )")}, v) == _e("|- ( ( a -> b ) -> ps )")
    with pytest.raises(ValueError):
        match_assertion(sp, "ax-mp", _e("|- ps"), [_e("|- ph")])
    with pytest.raises(ValueError):
        match_assertion(sp, "wph", _e("wff ph"))


def test_terms_accepts_statements_and_rejects_junk(sp):
    t = terms(sp)
    wffs = [s.expr[1:] for s in sp.statements.values() if s.expr[0] == "|-"]
    assert all(t.is_term("wff", e) for e in wffs)
    for junk in ["( ph ->", "ph -> ps", "( ph -> ps ) )", "( -> ph ps )", "A. ph ph", ") ph ("]:
        assert not t.is_term("wff", _e(junk)), junk
    assert t.is_term("setvar", _e("x")) and not t.is_term("setvar", _e("ph"))
    assert t.is_term("wff", _e("A. x ( ph -> ps )"))


def test_big_unifier_stays_fast():
    # huge terms: typed matching stays well under a second a step
    db = Database.from_file(debian("big-unifier.mm"))
    t0 = time.process_time()
    n = _check_all_steps(db, db.theorems())
    assert n > 100 and time.process_time() - t0 < 20


def test_match_syntax_trees(sp):
    # pattern: a `wi` node over two $f leaves; target: a `wi` node over something bigger
    for label in sp.theorems():
        nodes = check(sp, label, record=True).nodes
        pats = [i for i, n in enumerate(nodes) if n.label == "wi" and all(not nodes[c].children for c in n.children)]
        bigs = [i for i, n in enumerate(nodes) if n.label == "wi" and len(n.expr) > 8]
        if pats and bigs:
            pat, big = pats[0], bigs[-1]
            break
    s = match_syntax(sp, nodes, pat, nodes, big)
    assert s is not None
    assert apply(nodes[pat].expr, s, sp.variables) == nodes[big].expr
    assert s == first_match(nodes[pat].expr, nodes[big].expr, sp.variables, accept=terms(sp).accepts)
    assert match_syntax(sp, nodes, big, nodes, pat) is None


def test_dv_violations_agree_with_the_verifier(sp):
    # ax-5 needs $d x ph; ax5d has $d x ps and proves its step with ph := ps
    proof = check(sp, "ax5d", record=True)
    allowed = sp["ax5d"].frame.all_dvs
    for i, n in enumerate(proof.nodes):
        if n.label == "ax-5":
            s = proof_substitution(sp, proof, i)
            assert s == {"ph": _e("ps"), "x": _e("x")}
            assert check_dv(sp, s, sp["ax-5"].frame.dvs, allowed) == []
    dvs = sp["ax-5"].frame.dvs
    # the bound variable inside the formula: both substitutions contain x
    same = check_dv(sp, {"x": _e("x"), "ph": _e("A. x ps")}, dvs, allowed)
    assert [(v.a, v.b) for v in same] == [("x", "x")]
    assert "both substitutions contain x" in same[0].reason("ax-5", "ax5d")
    # a variable the theorem keeps no $d with
    missing = check_dv(sp, {"x": _e("x"), "ph": _e("( ps -> ph )")}, dvs, [("x", "ps")])
    assert [(v.x, v.y, v.a, v.b) for v in missing] == [("ph", "x", "ph", "x")]
    assert check_dv(sp, {"x": _e("x"), "ph": _e("( ps -> ph )")}, dvs, [("ps", "x"), ("x", "ph")]) == []
    assert check_dv(sp, {"x": _e("x")}, dvs, []) == []  # unbound: not checked


def test_verifier_rejects_a_dv_violation_with_the_same_reason():
    text = open(debian("set.mm")).read()
    end = text.index("$}", text.index("exbidv $p")) + 2
    db = Database.from_string(text[:end] + "\n  bad.dv $p |- ( ph -> A. x ph ) $= wph vx ax-5 $.\n", "bad-dv.mm")
    with pytest.raises(ProofError) as exc:
        check(db, "bad.dv")
    with pytest.raises(ProofError) as exc2:
        check_rpn(db, "bad.dv", ["wph", "vx", "ax-5"])
    assert exc.value.reason == exc2.value.reason == \
        "ax-5: $d ph x requires $d ph x, which bad.dv does not have"
    s = match_assertion(db, "ax-5", db["bad.dv"].expr)
    found = check_dv(db, s, db["ax-5"].frame.dvs, db["bad.dv"].frame.all_dvs)
    assert [v.reason("ax-5", "bad.dv") for v in found] == [exc.value.reason]
