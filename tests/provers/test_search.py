"""The prover's search on real small databases: matching, free variables, $d, proofs that verify."""
from __future__ import annotations

import os

import pytest

from metamath import Database
from metamath.verify import check_rpn
from provers.actions import dv_ok, problem
from provers.baselines import UniformPolicy
from provers.library import Library
from provers.search import Search, SearchConfig
from provers.terms import substitute

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SET_PROP = os.path.join(ROOT, "data", "set-prop.mm")
DV_DB = os.path.join(ROOT, "tests", "data", "rewrite-dv.mm")


@pytest.fixture(scope="module")
def prop():
    return Library(Database.from_file(SET_PROP))


def _prove(lib, label, budget=64):
    return Search(lib, problem(lib, label), UniformPolicy(), SearchConfig(max_expansions=budget)).run()


@pytest.mark.parametrize("label", ["a1i", "mp2", "syl", "mpd", "con4d"])
def test_search_finds_a_proof_that_verifies(prop, label):
    r = _prove(prop, label)
    assert r.proved, r.stopped
    assert check_rpn(prop.db, label, r.proof, record=True) is not None
    # only statements before the theorem are used
    idx = prop.db.statements[label].index
    assert all(prop.db.statements[l].index < idx for l in r.proof if prop.db.statements[l].kind in "ap")
    assert r.expansions <= 64


def test_variable_the_goal_does_not_fix_is_filled_from_a_hypothesis(prop):
    """ax-mp's antecedent is free after matching the goal; a1i's hypothesis binds it."""
    p = problem(prop, "a1i")
    goal = p.goal
    matched = dict((a.label, s) for a, s in prop.matches(goal, p.index))
    mp = prop.assertions["ax-mp"]
    assert mp.free == ("wph",)
    assert "ax-mp" in matched and "wph" not in matched["ax-mp"]
    from provers.actions import connective_terms, retrieved, term_pool

    src = retrieved(prop, p.context)
    pool = term_pool(prop, p, mp, matched["ax-mp"], list(p.hyps), src, connective_terms(prop, src, p.index))
    (hyp,) = p.hyps
    assert {"wph": hyp} in pool.bindings
    assert pool.terms["wph"][0] == hyp
    r = _prove(prop, "a1i")
    assert r.proof[-1] == "ax-mp" and "a1i.1" in r.proof


def test_later_statements_and_discouraged_ones_are_never_candidates(prop):
    p = problem(prop, "syl")
    for a, _ in prop.matches(p.goal, p.index):
        assert a.index < p.index and not a.discouraged
    assert prop.assertions["idALT"].discouraged


def test_dv_restricted_step():
    lib = Library(Database.from_file(DV_DB))
    ax17 = lib.assertions["ax-17"]
    db = lib.db
    th1, th2 = problem(lib, "th1"), problem(lib, "th2")
    ph_to_ps = th1.hyps and next(iter(th1.hyps))  # ( ph -> ps )
    ok = {"wph": ph_to_ps, "vx": ("vx",)}
    assert dv_ok(lib, ax17, ok, th1.allowed)  # $d x ph, $d x ps in force
    neg = ("wn", ("wph",))
    assert dv_ok(lib, ax17, {"wph": neg, "vx": ("vy",)}, th2.allowed)  # $d y ph
    assert not dv_ok(lib, ax17, {"wph": neg, "vx": ("vx",)}, th2.allowed)  # no $d x ph there
    assert substitute(ax17.conclusion, ok)[0] == "wi"
    r = _prove(lib, "th1")
    assert r.proved and check_rpn(db, "th1", r.proof) is None


def test_search_respects_missing_dv(tmp_path):
    """Without `$d x ps` the only proof of th1 is illegal: the search must fail, not cheat."""
    text = open(DV_DB).read().replace("    $d x ps $.\n", "", 1)
    path = tmp_path / "no-dv.mm"
    path.write_text(text)
    lib = Library(Database.from_file(str(path)))
    r = _prove(lib, "th1")
    assert not r.proved


def test_grouped_encoding_equals_one_padded_batch(prop):
    """encode_trees groups trees of similar size (less padding on a CPU); padding is masked, so every
    tree's vector equals the one a single padded batch gives, in the input order, gradients too."""
    import torch

    from provers.model import Namer, ProverNet, Vocab, encode_trees, tree_batch

    torch.manual_seed(0)
    db = prop.db
    vocab = Vocab.of({r.label for r in prop.grammar.rules}, db.syntax_typecodes)
    net = ProverNet(len(vocab.labels), 16, 2)
    namer = Namer({f: db.statements[f].expr[0] for f in prop.floats})
    labels = [l for l in db.theorems() if l in prop.assertions][:60]
    trees = [(prop.assertions[l].conclusion, namer) for l in labels]
    trees += [(h, namer) for l in labels for h in prop.assertions[l].hyps]
    index = vocab.index()
    one = net.encode(tree_batch(trees, index))
    grads = []
    for budget in (0, 64, 10 ** 6):
        net.zero_grad()
        v = encode_trees(net, trees, index, "cpu", pad_budget=budget)
        assert torch.allclose(v, one, atol=1e-6)
        (v * torch.arange(len(trees)).unsqueeze(1)).sum().backward()  # order matters to the loss
        grads.append(net.inp.weight.grad.clone())
    assert all(torch.allclose(g, grads[0], atol=1e-4) for g in grads[1:])
