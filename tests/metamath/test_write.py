"""Writing databases back: byte-identical round trips, recompression judged
by both verifiers, the edit model, and never overwriting an input."""
from __future__ import annotations

import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metamath import Database, check, verify_all
from metamath.compressed import (ZERO, compress_proof, decode_numbers, encode_number, encode_numbers,
                                 split_compressed)
from metamath.errors import MMError
from metamath.write import Edits, write_database

from conftest import DATA, DEBIAN_DBS, debian, metamath_exe

SET_PROP = os.path.join(DATA, "set-prop.mm")


def set_prop() -> str:
    if not os.path.exists(SET_PROP):
        pytest.skip("data/set-prop.mm not built yet")
    return SET_PROP


def metamath_verifies(path: str) -> None:
    """metamath.exe reads ``path`` without error and verifies every proof."""
    out = subprocess.run([metamath_exe(), f'read "{os.path.abspath(path)}"', "verify proof *", "exit"],
                         capture_output=True, text=True, timeout=300).stdout
    assert "?Error" not in out and "?Warning" not in out, out[-3000:]
    assert "All proofs in the database were verified" in out, out[-3000:]


def ours_verifies(path: str) -> Database:
    db = Database.from_file(path)
    rep = verify_all(db)
    assert rep.failed == [] and rep.verified == rep.theorems
    return db


# ------------------------------------------------------------ round trips
@pytest.mark.parametrize("name", [n for n in DEBIAN_DBS if n != "set.mm"])
def test_round_trip_is_byte_identical(name, tmp_path):
    path = debian(name)
    db = Database.from_file(path)
    out = tmp_path / name
    res = write_database(db, str(out))
    original = open(path, "rb").read()
    assert out.read_bytes() == original
    assert res["bytes"] == len(original) and res["recompressed"] == 0 and not res["flattened"]


def test_round_trip_set_prop(tmp_path):
    db = Database.from_file(set_prop())
    write_database(db, str(tmp_path / "x.mm"))
    assert (tmp_path / "x.mm").read_bytes() == open(SET_PROP, "rb").read()


@pytest.mark.slow
def test_round_trip_set_mm(tmp_path):
    path = debian("set.mm")
    db = Database.from_file(path)
    write_database(db, str(tmp_path / "set.mm"))
    assert (tmp_path / "set.mm").read_bytes() == open(path, "rb").read()


# ------------------------------------------------------------ recompression
def _recompress_and_judge(path: str, tmp_path) -> tuple[Database, Database]:
    src = Database.from_file(path)
    out = tmp_path / ("rc-" + os.path.basename(path))
    res = write_database(src, str(out), recompress=True)
    assert res["kept"] == {} and res["recompressed"] == len(src.theorems())
    new = ours_verifies(str(out))
    metamath_verifies(str(out))
    # same statements in the same order, every proof now compressed, lines <= 79 columns
    assert [(l, s.kind, s.expr) for l, s in new.statements.items()] == \
           [(l, s.kind, s.expr) for l, s in src.statements.items()]
    for l in new.theorems():
        assert new.proof_tokens(l)[0] == "("
        a, b = new[l].proof
        assert all(len(line) <= 79 for line in new.files[0].text[a:b].splitlines())
    return src, new


@pytest.mark.parametrize("name", ["ql.mm", "hol.mm", "demo0.mm", "miu.mm", "big-unifier.mm"])
def test_recompressed_debian_databases_verify(name, tmp_path):
    _recompress_and_judge(debian(name), tmp_path)


def test_recompressed_set_prop_verifies_and_is_no_longer(tmp_path):
    src, new = _recompress_and_judge(set_prop(), tmp_path)
    same = 0
    for l in src.theorems():
        old_labels, old_letters = split_compressed(src.proof_tokens(l))
        labels, letters = split_compressed(new.proof_tokens(l))
        assert len(letters) <= len(old_letters), l  # never longer than metamath's own
        same += (old_labels, old_letters) == (labels, letters)
        # the same tree, and no subproof written out twice
        before, after = check(src, l, record=True), check(new, l, record=True)
        assert after.tree_size() == before.tree_size()
        keys = [(n.label, n.children) for n in after.nodes if n.children]
        assert len(keys) == len(set(keys)), l
    assert same > 0  # the same layout and ordering rules as metamath where the choices agree


def test_normal_proofs_get_compressed_and_saved_steps_are_reused(tmp_path):
    # miu.mm's theorem1 is a normal proof repeating subterms; big-unifier's
    # theorem1u is the normal twin of a compressed proof
    src = Database.from_file(debian("big-unifier.mm"))
    assert src.proof_tokens("theorem1u")[0] != "("
    write_database(src, str(tmp_path / "bu.mm"), recompress=True)
    new = Database.from_file(str(tmp_path / "bu.mm"))
    labels, letters = split_compressed(new.proof_tokens("theorem1u"))
    assert "Z" in letters
    assert new.proof_tokens("theorem1u") == new.proof_tokens("theorem1")  # same tree, same encoding
    assert check(new, "theorem1u", record=True).tree_size() == check(src, "theorem1u", record=True).tree_size()


def test_a_proof_that_does_not_verify_is_kept_as_it_was(tmp_path):
    text = open(debian("demo0.mm")).read()
    bad = text.replace("tt tze tpl tt tt a1 mp mp", "tt tze tpl tt tt a1 mp")
    assert bad != text
    src = tmp_path / "bad.mm"
    src.write_text(bad)
    res = write_database(Database.from_file(str(src)), str(tmp_path / "out.mm"), recompress=True)
    assert list(res["kept"]) == ["th1"] and res["recompressed"] == 0
    assert (tmp_path / "out.mm").read_text() == bad


# ------------------------------------------------------------ the number encoding
@given(st.integers(min_value=1, max_value=10**9))
def test_encode_number_round_trips(n):
    letters = encode_number(n)
    assert decode_numbers(letters) == [n]
    assert letters[-1] in "ABCDEFGHIJKLMNOPQRST" and set(letters[:-1]) <= set("UVWXY")


@st.composite
def _programs(draw):
    nums = draw(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=60))
    out = []
    for k in nums:  # a Z may follow any completed step
        out.append(k)
        if draw(st.booleans()):
            out.append(ZERO)
    return out


@settings(max_examples=300)
@given(_programs())
def test_decode_inverts_encode(nums):
    assert decode_numbers(encode_numbers(nums)) == nums


def _bin(n: int) -> int:
    return len(encode_number(n))


def test_compressor_properties_on_set_prop():
    """On every theorem of set-prop: the label list is exactly the non-mandatory
    labels used, more used labels never get longer numbers, and every saved
    step is reused."""
    db = Database.from_file(set_prop())
    for label in db.theorems():
        proof = check(db, label, record=True)
        hyps = db[label].frame.hyps
        labels, letters = compress_proof(proof, hyps)
        assert set(labels) == {n.label for n in proof.nodes} - set(hyps)
        nums = decode_numbers(letters)
        nh, nl = len(hyps), len(labels)
        uses = [nums.count(nh + 1 + i) for i in range(nl)]
        for i in range(nl):
            for j in range(i + 1, nl):
                if _bin(nh + 1 + i) < _bin(nh + 1 + j):
                    assert uses[i] >= uses[j], (label, labels[i], labels[j])
        saved = nums.count(ZERO)
        for k in range(saved):
            assert nh + nl + 1 + k in nums, (label, k)


# ------------------------------------------------------------ the edit model
def _rpn(proof) -> list[str]:
    out: list[str] = []

    def walk(i):
        for c in proof.nodes[i].children:
            walk(c)
        out.append(proof.nodes[i].label)

    walk(proof.root)
    return out


def _relabel(proof, old: str, new: str):
    from metamath.proof import Proof, ProofNode

    return Proof(proof.theorem, [ProofNode(new if n.label == old else n.label, n.expr, n.children)
                                 for n in proof.nodes], proof.root)


def test_edits_replace_proofs_and_insert_a_theorem(tmp_path):
    db = Database.from_file(set_prop())
    # com12 sits in a ${ } block with the $e com12.1; pm2.27 has no $e
    assert db["com12"].depth == 1 and "com12.1" in db["com12"].frame.hyps
    assert "id" in db.proof_tokens("com12") and "id" in db.proof_tokens("pm2.27")
    id_rpn = _rpn(check(db, "id", record=True))
    new_thm = ("$( A copy of ~ id inserted by the edit model. $)\n"
               "mmr-id $p |- ( ph -> ph ) $=\n  " + " ".join(id_rpn) + " $.")
    edits = Edits(
        proofs={"com12": _relabel(check(db, "com12", record=True), "id", "mmr-id"),
                "pm2.27": [("mmr-id" if l == "id" else l) for l in _rpn(check(db, "pm2.27", record=True))]},
        insert_before={"com12": [new_thm]},
    )
    out = tmp_path / "edited.mm"
    res = write_database(db, str(out), edits=edits)
    assert res["edited"] == 2 and res["inserted"] == 1 and res["recompressed"] == 0
    new = ours_verifies(str(out))
    metamath_verifies(str(out))
    # the new theorem landed outside com12's block: no $e became mandatory
    assert new["mmr-id"].frame.hyps == ("wph",) and new["mmr-id"].depth == 0
    assert new["mmr-id"].index < new["com12.1"].index
    assert new["com12"].frame.hyps == db["com12"].frame.hyps
    assert "mmr-id" in new.proof_tokens("com12") and new.proof_tokens("com12")[0] == "("
    assert "mmr-id" in new.proof_tokens("pm2.27") and new.proof_tokens("pm2.27")[0] != "("
    # everything else is untouched
    text = out.read_text()
    assert len(new.statements) == len(db.statements) + 1
    assert text.count("\n  ${\n    com12.1 $e") == 1
    assert "\n\n  $( A copy of ~ id inserted by the edit model. $)\n  mmr-id $p |- ( ph -> ph ) $=\n    wph " \
           "wph wph wi" in text  # indented like the statement it precedes
    # edits and recompression together: the normal proof gets compressed too
    out2 = tmp_path / "edited-rc.mm"
    res2 = write_database(db, str(out2), recompress=True, edits=edits)
    assert res2["recompressed"] == len(db.theorems()) + 1 and res2["kept"] == {}
    new2 = ours_verifies(str(out2))
    assert new2.proof_tokens("pm2.27")[0] == "(" and "mmr-id" in new2.proof_tokens("pm2.27")
    metamath_verifies(str(out2))


def test_edit_errors_are_clear(tmp_path):
    db = Database.from_file(debian("demo0.mm"))
    with pytest.raises(MMError, match="not a \\$p statement"):
        write_database(db, str(tmp_path / "x.mm"), edits=Edits(proofs={"nope": ["tt"]}))
    with pytest.raises(MMError, match="not a \\$a or \\$p"):
        write_database(db, str(tmp_path / "x.mm"), edits=Edits(insert_before={"tt": ["x"]}))
    with pytest.raises(MMError, match="duplicate label 'th1'"):
        write_database(db, str(tmp_path / "x.mm"), edits=Edits(insert_before={"th1": ["th1 $a |- t = t $."]}))
    assert not (tmp_path / "x.mm").exists()


# ------------------------------------------------------------ includes
MAIN = """$( A database split over files. $)
$[ logic.mm $]
$[ logic.mm $]
${
  th2.1 $e |- ( p -> q ) $.
  th2.2 $e |- p $.
  $( Modus ponens again. $)
  th2 $p |- q $= wp wq th2.2 th2.1 mp $.
$}
"""
LOGIC = """$c ( ) -> wff |- $.
$v p q r $.
wp $f wff p $.
wq $f wff q $.
wr $f wff r $.
wi $a wff ( p -> q ) $.
${
  mp.1 $e |- p $.
  mp.2 $e |- ( p -> q ) $.
  mp $a |- q $.
$}
ax1 $a |- ( p -> ( q -> p ) ) $.
ax2 $a |- ( ( p -> ( q -> r ) ) -> ( ( p -> q ) -> ( p -> r ) ) ) $.
$( The identity: p implies p. $)
id $p |- ( p -> p ) $=
  wp wp wp wi wi wp wp wi wp wp ax1
  wp wp wp wi wp wi wi wp wp wp wi wi wp wp wi wi wp wp wp wi ax1 wp wp wp wi wp ax2 mp
  mp $.
"""


@pytest.fixture
def split_db(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "main.mm").write_text(MAIN)
    (d / "logic.mm").write_text(LOGIC)
    return d


def test_includes_stay_includes_when_nothing_changes(split_db, tmp_path):
    db = Database.from_file(str(split_db / "main.mm"))
    assert len(db.files) == 2
    res = write_database(db, str(split_db / "copy.mm"))
    assert (split_db / "copy.mm").read_text() == MAIN and not res["flattened"]


def test_edits_in_an_included_file_flatten_it(split_db, tmp_path):
    db = Database.from_file(str(split_db / "main.mm"))
    out = tmp_path / "flat.mm"
    res = write_database(db, str(out), recompress=True)
    assert res["flattened"] and res["recompressed"] == 2
    text = out.read_text()
    assert "$( Begin $[ logic.mm $] $)" in text and "$( End $[ logic.mm $] $)" in text
    assert "$( Skip $[ logic.mm $] $)" in text and "$[ logic.mm $]\n" not in text.replace("$( ", "")
    new = ours_verifies(str(out))
    assert len(new.files) == 1 and new.proof_tokens("id")[0] == "("
    metamath_verifies(str(out))


# ------------------------------------------------------------ never overwrite an input
def test_refuses_to_overwrite_an_input(split_db, tmp_path):
    db = Database.from_file(str(split_db / "main.mm"))
    for target in (split_db / "main.mm", split_db / "logic.mm", split_db / "." / "logic.mm"):
        with pytest.raises(MMError, match="refusing to overwrite"):
            write_database(db, str(target), recompress=True)
    os.link(split_db / "logic.mm", tmp_path / "hardlink.mm")
    os.symlink(split_db / "main.mm", tmp_path / "symlink.mm")
    for target in (tmp_path / "hardlink.mm", tmp_path / "symlink.mm"):
        with pytest.raises(MMError, match="refusing to overwrite"):
            write_database(db, str(target))
    assert (split_db / "main.mm").read_text() == MAIN and (split_db / "logic.mm").read_text() == LOGIC
    with pytest.raises(MMError, match="does not exist"):
        write_database(db, str(tmp_path / "no" / "such" / "dir.mm"))
    assert sorted(os.listdir(split_db)) == ["logic.mm", "main.mm"]  # no temp files left behind


def test_cli_write_refuses_and_reports(tmp_path, capsys):
    from refactor.cli import main

    path = debian("demo0.mm")
    assert main(["write", path, "-o", path]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["write", path, "-o", str(tmp_path / "d.mm"), "--recompress"]) == 0
    assert "1 proofs recompressed" in capsys.readouterr().out


BLOCKS = LOGIC + """
${
  $d p q $.
  ${
    t1.1 $e |- p $.
    $( Description of t1. $)
    t1 $p |- ( q -> p ) $= wp wq wp wi t1.1 wp wq ax1 mp $.
  $}
$}
${
  $v s $.
  ws $f wff s $.
  t2.1 $e |- s $.
  t2 $p |- ( q -> s ) $= ws wq ws wi t2.1 ws wq ax1 mp $.
$}
${
  $v t $.
  wt $f wff t $.
  $d p t $.
  $( Description of t3. $)
  t3 $p |- ( p -> ( t -> p ) ) $= wp wt ax1 $.
$}
"""


def test_insertion_leaves_blocks_holding_hypotheses_or_dv(tmp_path):
    src = tmp_path / "blocks.mm"
    src.write_text(BLOCKS)
    db = Database.from_file(str(src))
    new_thm = "$( Inserted. $)\nnew1 $p |- ( p -> ( q -> p ) ) $= wp wq ax1 $."
    out = tmp_path / "out.mm"
    write_database(db, str(out), edits=Edits(insert_before={"t1": [new_thm], "t3": [new_thm.replace("new1", "new3")]}))
    text = out.read_text()
    # before the outer block of t1 (it holds $d p q; its inner block holds t1.1) ...
    assert text.index("new1 $p") < text.index("$d p q") < text.index("t1.1 $e")
    # ... but inside t3's block, which declares the variable t (so $d p t stays in force)
    assert text.index("wt $f") < text.index("new3 $p") < text.index("$( Description of t3. $)")
    assert "\n  $( Inserted. $)\n  new3 $p" in text and "\n$( Inserted. $)\nnew1 $p" in text
    new = ours_verifies(str(out))
    assert new["new1"].frame.hyps == ("wp", "wq") and new["new1"].frame.dvs == frozenset()
    assert new["new3"].frame.dvs == frozenset()  # p, q only: $d p t does not touch it
    metamath_verifies(str(out))
    with pytest.raises(MMError, match="t2.1 also declares variables"):
        write_database(db, str(tmp_path / "bad.mm"), edits=Edits(insert_before={"t2": [new_thm]}))


# ---------------------------------------------------------------- the atomic-write helpers
def test_write_atomic_text_bytes_and_json(tmp_path):
    from metamath.write import write_atomic, write_json

    p = tmp_path / "out.txt"
    assert write_atomic(str(p), "abc\n") == 4 and p.read_text() == "abc\n"
    assert write_atomic(str(p), "caf\u00e9".encode("utf-8")) == 5 and p.read_bytes() == b"caf\xc3\xa9"
    with pytest.raises(UnicodeEncodeError):  # a str must be ASCII: Metamath files are
        write_atomic(str(p), "caf\u00e9")
    assert p.read_bytes() == b"caf\xc3\xa9"
    j = tmp_path / "out.json"
    write_json(str(j), {"a": [1, 2], "b": "\u00e9"})
    assert j.read_text() == '{\n "a": [\n  1,\n  2\n ],\n "b": "\\u00e9"\n}\n'
    write_json(str(j), [1], indent=None)
    assert j.read_text() == "[1]\n"
    assert sorted(os.listdir(tmp_path)) == ["out.json", "out.txt"]  # no temporary files left


def test_atomic_path_keeps_the_old_file_on_failure_and_its_mode(tmp_path):
    from metamath.write import atomic_path, write_atomic

    p = tmp_path / "model.bin"
    p.write_bytes(b"old")
    os.chmod(p, 0o640)
    with pytest.raises(RuntimeError):
        with atomic_path(str(p)) as tmp:
            assert os.path.dirname(tmp) == str(tmp_path) and tmp != str(p)
            with open(tmp, "wb") as fh:
                fh.write(b"half")
            raise RuntimeError("the writer failed")
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["model.bin"]
    with atomic_path(str(p)) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"new")
    assert p.read_bytes() == b"new" and os.stat(p).st_mode & 0o777 == 0o640
    with pytest.raises(MMError, match="refusing to overwrite the input"):
        write_atomic(str(p), "x", inputs=[str(p)])
    with pytest.raises(MMError, match="does not exist"):
        write_atomic(str(tmp_path / "no" / "such.txt"), "x")
