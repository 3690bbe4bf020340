"""Proof views: expanded tree, essential tree, canonical DAG, RPN round trip."""
from __future__ import annotations

import pytest

from metamath import Database, check
from metamath.errors import MMError, ProofError
from metamath.proof import KINDS, Kind, Proof, ProofTree, TreeTooLarge, node_kind, postorder, show_lines
from metamath.verify import check_rpn, program, run_program

from conftest import debian


def _proofs(db: Database, step: int = 1):
    for label in db.theorems()[::step]:
        yield check(db, label, record=True)


def _tree_invariants(tree: ProofTree) -> None:
    nodes = tree.nodes
    assert nodes[0].parent == -1 and nodes[0].depth == 0 and nodes[0].arg_pos == 0
    for i, n in enumerate(nodes):
        assert n.children == sorted(n.children)
        for pos, c in enumerate(n.children):
            assert c > i
            k = nodes[c]
            assert k.parent == i and k.arg_pos == pos and k.depth == n.depth + 1
        # pre-order: the subtree at i is the contiguous range i .. subtree_end(i) - 1
        end = tree.subtree_end(i)
        inside = {i}
        for j in range(i + 1, end):
            assert nodes[j].parent in inside
            inside.add(j)
        if end < len(nodes):
            assert nodes[end].parent not in inside


def test_tree_sizes_agree_with_tree_size_on_ql(ql):
    for proof in _proofs(ql, step=2):
        tree = proof.tree(ql)
        assert len(tree) == proof.tree_size()
        ess = proof.essential_tree(ql)
        assert len(ess) == proof.essential_size(ql.syntax_typecodes)
        dag = proof.dag()
        assert dag.tree_size() == proof.tree_size()
        assert len(dag.nodes) <= len(proof.nodes)
        assert dag.nodes[dag.root].expr == ql[proof.theorem].expr
        assert len(proof.rpn()) == proof.tree_size()


def test_tree_structure_and_node_facts(ql):
    for proof in _proofs(ql, step=7):
        tree = proof.tree(ql)
        _tree_invariants(tree)
        for n in tree.nodes:
            dag_node = proof.nodes[n.source]
            assert (n.label, n.expr) == (dag_node.label, dag_node.expr)
            assert len(n.children) == len(dag_node.children)
            assert n.syntax == (n.expr[0] in ql.syntax_typecodes)
            st = ql[n.label]
            if st.kind in "fe":
                assert not n.children and n.kind == (Kind.FLOATING if st.kind == "f" else Kind.ESSENTIAL)
            else:
                assert len(n.children) == len(st.frame.hyps)
                assert n.kind in (Kind.SYNTAX, Kind.AXIOM, Kind.THEOREM)
            # children in the order of the applied assertion's mandatory hypotheses
            if st.kind in "ap":
                for h, c in zip(st.frame.hyps, n.children):
                    assert tree.nodes[c].expr[0] == ql[h].expr[0]


def test_kinds_in_set_mm_prefix():
    db = _set_prefix()
    assert node_kind(db, "wi") is Kind.SYNTAX
    assert node_kind(db, "ax-mp") is Kind.AXIOM
    assert node_kind(db, "ax-5") is Kind.AXIOM
    assert node_kind(db, "a1i") is Kind.THEOREM
    assert node_kind(db, "wph") is Kind.FLOATING
    assert node_kind(db, "a1i.1") is Kind.ESSENTIAL
    assert [str(k) for k in KINDS] == ["$f", "$e", "syntax $a", "$a", "$p"]
    tree = check(db, "a1i", record=True).tree(db)
    kinds = {(n.label, n.kind) for n in tree.nodes}
    assert ("ax-mp", Kind.AXIOM) in kinds and ("wi", Kind.SYNTAX) in kinds and ("a1i.1", Kind.ESSENTIAL) in kinds


def test_essential_view_keeps_hypothesis_order(ql):
    for proof in _proofs(ql, step=5):
        full = proof.tree(ql)
        ess = proof.essential_tree(ql)
        assert ess.essential and all(not n.syntax for n in ess.nodes)
        _tree_invariants(ess)
        # each essential node's children are its $e arguments' nodes, in order
        by_source = {}
        for n in full.nodes:
            by_source.setdefault(n.source, n)
        for n in ess.nodes:
            fn = by_source[n.source]
            want = [full.nodes[c].source for c in fn.children if not full.nodes[c].syntax]
            assert [ess.nodes[c].source for c in n.children] == want
        assert [n.label for n in ess.nodes] == [n.label for n in full.nodes if not n.syntax]


def test_show_lines_lay_out_the_essential_tree(ql):
    """Each line is one essential-tree node in post-order: its number, its
    children's line numbers, its depth, label, kind and expression."""
    kinds = {l: s.kind for l, s in ql.statements.items()}
    for label in ql.theorems()[5::97]:
        proof = check(ql, label, record=True)
        for essential in (True, False):
            tree = proof.essential_tree(ql) if essential else proof.tree(ql)
            order = list(postorder(0, lambda i: tree.nodes[i].children))
            number = {i: k + 1 for k, i in enumerate(order)}
            want = []
            for i in order:
                n = tree.nodes[i]
                hyps = ",".join(str(number[c]) for c in n.children)
                want.append(f"{number[i]:>5} {hyps:>12} {'  ' * n.depth}{n.label:<12} ${kinds[n.label]} "
                            f"{' '.join(n.expr)}")
            assert show_lines(proof, kinds, ql.syntax_typecodes, essential_only=essential) == want


def test_dag_shares_repeated_subproofs_of_a_normal_proof(demo0):
    # demo0's th1 is a normal (uncompressed) proof: the verifier's DAG has one node a step
    toks = demo0.proof_tokens("th1")
    assert toks[0] != "("
    proof = check(demo0, "th1", record=True)
    assert len(proof.nodes) == len(toks) == proof.tree_size()
    dag = proof.dag()
    assert len(dag.nodes) < len(proof.nodes)
    keys = [(n.label, n.children) for n in dag.nodes]
    assert len(set(keys)) == len(keys)  # no two nodes for the same subproof
    assert dag.tree_size() == proof.tree_size()
    assert dag.rpn() == proof.rpn() == toks
    assert dag.dag() == dag  # canonical: idempotent


def test_dag_is_canonical_across_proof_encodings(ql):
    # the compressed proof and its normal (RPN) re-encoding give the same canonical DAG
    for proof in _proofs(ql, step=11):
        again = check_rpn(ql, proof.theorem, proof.rpn(), record=True)
        assert again.tree_size() == proof.tree_size()
        assert again.dag() == proof.dag()
        assert proof.tree(ql).to_proof() == proof.dag()


def test_rpn_of_real_proofs_reverifies(ql):
    for label in ql.theorems()[::6]:
        proof = check(ql, label, record=True)
        rpn = proof.rpn()
        assert check_rpn(ql, label, rpn) is None
        tree = proof.tree(ql)
        assert tree.rpn() == rpn
        # a subtree's RPN is a proof of that node's expression (here: re-run it for the theorem)
        root_child = tree.nodes[0].children[-1] if tree.nodes[0].children else 0
        sub = tree.rpn(root_child)
        assert len(sub) == tree.subtree_end(root_child) - root_child


def test_check_rpn_rejects_broken_proofs(ql):
    label = next(l for l in ql.theorems() if check(ql, l, record=True).tree_size() > 20)
    rpn = check(ql, label, record=True).rpn()
    with pytest.raises(ProofError):
        check_rpn(ql, label, rpn[:-1])
    with pytest.raises(ProofError):
        check_rpn(ql, label, rpn[1:])
    with pytest.raises(ProofError) as exc:
        check_rpn(ql, label, ["no-such-label"] + rpn)
    assert exc.value.step == 1 and "no-such-label" in exc.value.reason
    with pytest.raises(ProofError):
        check_rpn(ql, label, rpn[:-1] + ["?"])
    # the right proof for the wrong statement
    other = next(l for l in ql.theorems() if ql[l].expr != ql[label].expr and l != label)
    with pytest.raises((ProofError, MMError)):
        check_rpn(ql, other, rpn)


def test_check_is_program_then_run_program(ql):
    for label in ql.theorems()[::50]:
        refs, codes = program(ql, label)
        assert run_program(ql, label, refs, codes, record=True) == check(ql, label, record=True)


def test_max_nodes_guard(ql):
    proof = max(_proofs(ql, step=10), key=lambda p: p.tree_size())
    n = proof.tree_size()
    assert len(proof.tree(ql, max_nodes=n)) == n
    with pytest.raises(TreeTooLarge) as exc:
        proof.tree(ql, max_nodes=n - 1)
    assert proof.theorem in str(exc.value) and f"{n:,}" in str(exc.value)
    with pytest.raises(TreeTooLarge):
        proof.rpn(max_nodes=n - 1)
    e = proof.essential_size(ql.syntax_typecodes)
    with pytest.raises(TreeTooLarge):
        proof.essential_tree(ql, max_nodes=e - 1)
    assert len(proof.essential_tree(ql, max_nodes=e)) == e


def test_essential_view_is_not_a_proof(ql):
    ess = check(ql, ql.theorems()[0], record=True).essential_tree(ql)
    with pytest.raises(ValueError):
        ess.rpn()
    with pytest.raises(ValueError):
        ess.to_proof()


def test_proof_built_by_hand_round_trips(demo0):
    # a proof written as a tree by a program: RPN -> verifier -> tree -> RPN
    proof = check(demo0, "th1", record=True)
    tree = proof.tree(demo0)
    again = check_rpn(demo0, "th1", tree.rpn(), record=True)
    assert isinstance(again, Proof) and again.tree(demo0).rpn() == tree.rpn()


_PREFIX: list[Database] = []


def _set_prefix() -> Database:
    """set.mm up to ``exbidv``: propositional calculus and the first ``$d`` theorems."""
    if not _PREFIX:
        text = open(debian("set.mm")).read()
        end = text.index("$}", text.index("exbidv $p")) + 2
        _PREFIX.append(Database.from_string(text[:end], "set.mm-prefix"))
    return _PREFIX[0]


def test_check_rpn_reports_scope_problems_as_proof_errors(ql):
    # a hypothesis of another theorem's scope, and a later statement: ProofError with the step
    label = ql.theorems()[10]
    rpn = check(ql, label, record=True).rpn()
    foreign = next(l for l, s in ql.statements.items() if s.kind == "e" and not ql.in_scope(s, ql[label]))
    with pytest.raises(ProofError) as exc:
        check_rpn(ql, label, rpn + [foreign])
    assert exc.value.step == len(rpn) + 1 and "not active" in exc.value.reason
    later = ql.theorems()[-1]
    with pytest.raises(ProofError) as exc:
        check_rpn(ql, label, [later] + rpn)
    assert exc.value.step == 1 and "later statement" in exc.value.reason
