"""The generated grammar parses every statement into the tree its proofs build.

The reference is each proof's own syntax subproofs (``check(..., record=True)``):
every distinct syntax-typed step must parse to exactly the tree the proof
builds, and every ``|-`` step must parse to the applied statement's tree with
the proof's own argument trees substituted (see
``benchmarks/grammar_agreement.py``, ``compare_with_proof``).
Real databases: data/set-prop.mm (when present), Debian's ql.mm and hol.mm
in full, seeded samples of iset.mm and (slow) set.mm.
"""
from __future__ import annotations

import os
import random
import sys

import pytest

from metamath import Database
from metamath.grammar import ExprParseError, Grammar, SyntaxTree, grammar_typecodes, proof_syntax_tree
from metamath.verify import check

from conftest import DATA, ROOT, debian

# the agreement checks live beside the grammar benchmark, their other user
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from grammar_agreement import Agreement, compare_statement, compare_with_proof  # noqa: E402

SET_PROP = os.path.join(DATA, "set-prop.mm")
# data/set-prop.mm is produced by the project itself: test it whenever it exists.
DATABASES = ["ql.mm", "hol.mm"] + (["set-prop.mm"] if os.path.exists(SET_PROP) else [])


def _path(name: str) -> str:
    return SET_PROP if name == "set-prop.mm" else debian(name)


@pytest.fixture(scope="module")
def grammars():
    cache: dict[str, Grammar] = {}

    def get(name: str) -> Grammar:
        if name not in cache:
            cache[name] = Grammar.from_database(Database.from_file(_path(name)), cache_dir=False)
        return cache[name]

    return get


@pytest.mark.parametrize("name", DATABASES)
def test_every_statement_parses_and_round_trips(grammars, name):
    g = grammars(name)
    db = g.db
    assert g.lalr_error is None and not g.skipped
    n = 0
    for label, st in db.statements.items():
        if st.kind not in "eap":
            continue
        tree = g.parse_statement(label)
        assert g.expr_of(tree)[1:] == st.expr[1:], label
        if st.expr[0] in g.typecodes:
            assert g.typecode_of(tree) == st.expr[0]
        n += 1
    assert n > 400
    assert g.stats["earley"] == 0  # these grammars are LALR: no fallback needed


@pytest.mark.parametrize("name", DATABASES)
def test_parse_equals_proof_syntax_trees(grammars, name):
    g = grammars(name)
    total = Agreement()
    for label in g.db.theorems():
        total.add(compare_with_proof(g, label))
    assert total.mismatches == []
    assert total.syntax > 1500 and total.statements > 4000


def test_children_follow_hypothesis_order_not_text_order(grammars):
    # hol.mm: kl $a term \ x : al . T $.  with $f order hal (al), vx (x), tt (T)
    g = grammars("hol.mm")
    tree = g.parse(("term", "\\", "x", ":", "al", ".", "T"))
    assert tree == SyntaxTree("kl", (SyntaxTree("hal"), SyntaxTree("vx"), SyntaxTree("tt")))
    assert g.db["kl"].frame.hyps == ("hal", "vx", "tt")
    assert g.expr_of(tree) == ("term", "\\", "x", ":", "al", ".", "T")


def test_provable_statements_parse_as_their_body_typecode(grammars):
    # ql.mm has no wff variables: '|- a = b' is a wff through 'wb $a wff a = b $.'
    g = grammars("ql.mm")
    assert grammar_typecodes(g.db) == ["term", "wff"]
    tree = g.parse(("|-", "a", "=", "b"))
    assert tree.label == "wb" and g.typecode_of(tree) == "wff"


def test_grammar_is_built_once_per_database(grammars):
    g = grammars("hol.mm")
    assert Grammar.from_database(g.db) is g


# ----- a small database that exercises the fallback and syntax theorems ------
TOY = """
$c ( ) -> e. |-> wff class setvar |- $.
$v ph ps x A B $.
wph $f wff ph $.
wps $f wff ps $.
vx $f setvar x $.
cA $f class A $.
cB $f class B $.
cv $a class x $.
wi $a wff ( ph -> ps ) $.
wcel $a wff A e. B $.
cmpt $a class ( x e. A |-> B ) $.
ax-1 $a |- ( ph -> ( ps -> ph ) ) $.
wii $p wff ( ph -> ( ph -> ps ) ) $= wph wph wps wi wi $.
th1 $p |- ( ps -> ( ( ph -> ( ph -> ps ) ) -> ps ) ) $= wps wph wps wii ax-1 $.
th2 $p |- ( ( x e. A -> ph ) -> ( ps -> ( x e. A -> ph ) ) ) $=
  vx cv cA wcel wph wi wps ax-1 $.
${
  bad.1 $e |- ( ph -> -> ps ) $.
$}
"""


@pytest.fixture(scope="module")
def toy():
    return Grammar.from_database(Database.from_string(TOY, "toy.mm"), cache_dir=False)


def test_syntax_theorems_expand_to_axioms(toy):
    proof = check(toy.db, "th1", record=True)
    wii_node = next(i for i, n in enumerate(proof.nodes) if n.label == "wii")
    want = SyntaxTree("wi", (SyntaxTree("wph"), SyntaxTree("wi", (SyntaxTree("wph"), SyntaxTree("wps")))))
    assert proof_syntax_tree(toy.db, proof, wii_node) == want
    assert toy.parse(("wff", "(", "ph", "->", "(", "ph", "->", "ps", ")", ")")) == want
    res = compare_with_proof(toy, "th1")
    assert res.mismatches == [] and res.syntax >= 3 and res.statements >= 1


WFF_X_IN_A = ("wff", "(", "x", "e.", "A", "->", "ph", ")")
WANT_X_IN_A = SyntaxTree("wi", (SyntaxTree("wcel", (SyntaxTree("cv", (SyntaxTree("vx"),)), SyntaxTree("cA"))),
                                SyntaxTree("wph")))


def test_lalr_backtracks_over_the_setvar_class_conflict(toy):
    # after '( x' with 'e.' ahead, lark's table shifts towards '( x e. A |-> B )'
    # (a shift/reduce conflict resolved as shift); the driver comes back and
    # reduces x to a class instead.
    before = dict(toy.stats)
    assert toy.parse(WFF_X_IN_A) == WANT_X_IN_A
    assert toy.stats["lalr-backtrack"] == before.get("lalr-backtrack", 0) + 1
    assert toy.stats["earley"] == before.get("earley", 0)
    assert toy.parse(("class", "(", "x", "e.", "A", "|->", "B", ")")).label == "cmpt"
    assert compare_with_proof(toy, "th2").mismatches == []


def test_earley_takes_over_when_lalr_gives_up(monkeypatch):
    import metamath.grammar as gm

    monkeypatch.setattr(gm, "_LALR_STEPS_PER_TOKEN", 0)
    g = Grammar(Database.from_string(TOY, "toy.mm"), cache_dir=False)
    assert g.parse(WFF_X_IN_A) == WANT_X_IN_A
    assert g.stats["earley"] == 1 and g.stats["lalr-budget"] >= 1
    only_earley = Grammar(Database.from_string(TOY, "toy.mm"), cache_dir=False, lalr=False)
    assert only_earley.parse(WFF_X_IN_A) == WANT_X_IN_A
    assert compare_with_proof(only_earley, "th1").mismatches == []


def test_statement_that_does_not_parse_names_statement_and_token(toy):
    with pytest.raises(ExprParseError) as exc:
        toy.parse_statement("bad.1")
    e = exc.value
    assert e.label == "bad.1" and e.token == "->" and e.position == 4
    assert e.path == "toy.mm" and e.line == TOY.count("\n", 0, TOY.index("bad.1")) + 1
    line = TOY.splitlines()[e.line - 1]
    assert line[e.col - 1:].startswith("-> ps )")  # the second '->'
    assert "bad.1" in str(e) and "'->'" in str(e)


def test_unknown_symbol_and_truncated_expression_are_clear_errors(toy):
    with pytest.raises(ExprParseError, match=r"'\|-' is a constant that no syntax axiom uses"):
        toy.parse(("wff", "(", "ph", "|-", "ps", ")"))
    with pytest.raises(ExprParseError, match="unexpected end of expression") as exc:
        toy.parse(("wff", "(", "ph", "->"), label="goal")
    assert exc.value.token is None and exc.value.label == "goal"


def test_lalr_table_is_reused_from_disk(tmp_path, monkeypatch):
    import metamath.grammar as gm

    monkeypatch.setattr(gm, "_LALR_DISK_MIN_SECONDS", 0.0)  # small grammars build fast: force the write
    text = open(debian("hol.mm")).read()
    first = Grammar(Database.from_string(text, "hol.mm"), cache_dir=str(tmp_path))
    assert not first.lalr_from_disk and len(list(tmp_path.iterdir())) == 1
    second = Grammar(Database.from_string(text, "hol.mm"), cache_dir=str(tmp_path))
    assert second.lalr_from_disk
    db = second.db
    for label in db.labels("eap"):
        assert second.parse_statement(label) == first.parse_statement(label)
    assert second.stats["lalr"] > 0 and second.stats["earley"] == 0


def _canonical(table: dict, starts: dict) -> dict:
    """An LALR table with states renumbered in breadth-first order from the starts."""
    out = {}
    for start, s0 in sorted(starts.items()):
        number = {s0: 0}
        order = [s0]
        for s in order:
            for sym in sorted(table[s]):
                kind, arg = table[s][sym]
                if kind == "shift" and arg not in number:
                    number[arg] = len(number)
                    order.append(arg)
        for s in order:
            out[(start, number[s])] = {sym: (kind, number[arg] if kind == "shift" else arg)
                                       for sym, (kind, arg) in table[s].items()}
    return out


@pytest.mark.parametrize("name", ["hol.mm", "ql.mm"])
def test_fast_lookaheads_give_larks_own_table(grammars, name):
    from lark.common import ParserConf
    from lark.load_grammar import load_grammar
    from lark.parsers.lalr_analysis import LALR_Analyzer, Shift

    import metamath.grammar as gm

    g = grammars(name)
    starts = [g._start[t] for t in g.typecodes]
    tables = []
    for analyzer in (LALR_Analyzer, gm._analyzer_class()):
        rules = load_grammar(g.text, "<test>", [], False)[0].compile(starts, set())[1]
        a = analyzer(ParserConf(rules, {}, starts))
        a.compute_lalr()
        pt = a.parse_table
        table = {s: {sym: ("shift", arg) if act is Shift else ("reduce", str(arg)) for sym, (act, arg) in row.items()}
                 for s, row in pt.states.items()}
        tables.append(_canonical(table, pt.start_states))
    assert tables[0] == tables[1] and len(tables[0]) > 50


def test_isetmm_sample_agrees_with_proofs():
    """iset.mm has set.mm's setvar/class conflict with a table that builds in a second."""
    db = Database.from_file(debian("iset.mm"))
    g = Grammar(db, cache_dir=False)
    rng = random.Random(11)
    total = Agreement()
    for label in rng.sample(db.labels("eap"), 300):
        total.add(compare_statement(g, label))
    for label in rng.sample(db.theorems(), 60):
        total.add(compare_with_proof(g, label))
    assert total.mismatches == []
    assert total.syntax + total.statements > 2000
    assert g.stats["lalr-backtrack"] > 0 and g.stats["earley"] == 0


@pytest.mark.slow
def test_setmm_sample_agrees_with_proofs():
    """A seeded sample of set.mm: statements and whole proofs against the proofs' own trees.

    The LALR table (about 20 s to build) is kept in the default disk cache.
    The 2,000-statement samples are in benchmarks/bench_grammar.py.
    """
    db = Database.from_file(debian("set.mm"))
    g = Grammar.from_database(db)
    rng = random.Random(2024)
    total = Agreement()
    for label in rng.sample(db.labels("eap"), 300):
        total.add(compare_statement(g, label))
    for label in rng.sample(db.theorems(), 40):
        total.add(compare_with_proof(g, label))
    assert total.mismatches == []
    assert total.syntax + total.statements > 2000
    assert g.stats["lalr-backtrack"] > 0 and g.stats["earley"] == 0


def test_ambiguous_grammar_falls_back_to_earley():
    # miu.mm's 'wxy $a wff x y $.' (concatenation) gives LALR reduce/reduce conflicts
    g = Grammar(Database.from_file(debian("miu.mm")), cache_dir=False)
    assert g.lalr_error is not None and "Reduce/Reduce" in g.lalr_error
    tree = g.parse(("|-", "M", "U", "I"))
    assert g.expr_of(tree)[1:] == ("M", "U", "I") and g.stats["earley"] == 1
