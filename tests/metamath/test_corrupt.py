"""Corrupted proofs in copies of real databases: we and metamath.exe both reject them.

Each case breaks one proof of a Debian database in a known way (a swapped
step, a wrong label, a missing ``$d``, a wrong hypothesis, a truncated
compressed proof), writes the copy to a temporary directory and runs both
``mmrefactor verify --json`` and metamath.exe on it. Both must reject the
database, both must name exactly the broken theorem, and where both find the
same fault, at the same proof step (we number steps like metamath.exe: a
``Z`` mark is not a step).
"""
from __future__ import annotations

import json

from conftest import debian
from conftest import metamath_verdict

from metamath import Database
from metamath.compressed import decode_numbers, encode_numbers
from refactor.cli import main


def _read(name: str) -> str:
    with open(debian(name)) as fh:
        return fh.read()


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} is not unique in the database (did it change?)"
    return text.replace(old, new)


def _ours(capsys, tmp_path, text: str):
    """(our exit code, our ``verify --json`` report, metamath.exe's verdict) for a database text."""
    path = tmp_path / "corrupt.mm"
    path.write_text(text)
    code = main(["verify", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out), metamath_verdict(str(path))


def _letters_span(db: Database, label: str) -> tuple[int, int]:
    """Character span of a compressed proof's letters (after ``)``, up to ``$.``)."""
    st = db[label]
    text = db.files[st.file].text
    a, b = st.proof
    close = text.index(" )", a, b) + 2
    assert "$(" not in text[close:b]
    return close, b


def _with_numbers(text: str, label: str, change) -> str:
    """The database text with ``label``'s compressed proof numbers replaced by ``change(numbers)``."""
    db = Database.from_string(text, "orig.mm")
    a, b = _letters_span(db, label)
    nums = decode_numbers("".join(text[a:b].split()))
    new = change(list(nums))
    assert new != nums
    return text[:a] + "\n      " + encode_numbers(new) + " " + text[b:]


def _assert_rejected_once(code, data, verdict, label, same_step=True, also=()):
    """We fail ``label`` (and the theorems ``also``, which use it) and nothing else; so does metamath."""
    assert code == 1
    assert [f["label"] for f in data["failed"]] == [label, *also]
    f = data["failed"][0]
    assert f["step"] >= 1 and f["reason"]
    assert data["verified"] == data["theorems"] - 1 - len(also)
    assert not verdict.accepted
    assert set(verdict.failing()) == {label, *also}, verdict.output[-3000:]
    if same_step:
        for g in data["failed"]:
            assert g["step"] == verdict.first_step(g["label"]), (g, verdict.errors)
    return f


def test_swapped_steps_normal_proof(tmp_path, capsys):
    text = _replace_once(_read("demo0.mm"), "tt tze tpl tt weq tt tt weq tt a2",
                         "tze tt tpl tt weq tt tt weq tt a2")
    code, data, verdict = _ours(capsys, tmp_path, text)
    f = _assert_rejected_once(code, data, verdict, "th1")
    assert f["step"] == 34 and "mp" in f["reason"]


def test_swapped_steps_compressed_proof(tmp_path, capsys):
    def swap(nums):
        # swap the first two adjacent, different, plain steps (not Z)
        for i in range(len(nums) - 1):
            if nums[i] > 0 and nums[i + 1] > 0 and nums[i] != nums[i + 1]:
                nums[i], nums[i + 1] = nums[i + 1], nums[i]
                return nums
        raise AssertionError("nothing to swap")

    text = _with_numbers(_read("hol.mm"), "hbl", swap)
    code, data, verdict = _ours(capsys, tmp_path, text)
    _assert_rejected_once(code, data, verdict, "hbl")


def test_wrong_label_normal_proof(tmp_path, capsys):
    # a1 (three hypotheses) replaced by a2 (one): metamath finds the stack
    # shape wrong at the end, we find the typecode wrong one step earlier
    text = _replace_once(_read("demo0.mm"), "tt tt a1 mp mp", "tt tt a2 mp mp")
    code, data, verdict = _ours(capsys, tmp_path, text)
    f = _assert_rejected_once(code, data, verdict, "th1", same_step=False)
    assert f["step"] in (33, 34)


def test_wrong_label_compressed_proof(tmp_path, capsys):
    # eqtri and a1i both exist in hol.mm; swapping them in hbl's label list breaks it
    text = _read("hol.mm")
    old = "( ht kl kc wl wc ke kbr ax-cb1 distrl a1i leq eqtri )"
    text = _replace_once(text, old, old.replace("leq eqtri", "leq a1i").replace("distrl a1i", "distrl eqtri"))
    code, data, verdict = _ours(capsys, tmp_path, text)
    _assert_rejected_once(code, data, verdict, "hbl", same_step=False)


def test_missing_dv_condition(tmp_path, capsys):
    """insti needs `$d x y R`: without it ax-17 and ax-inst are applied against their `$d`s."""
    text = _replace_once(_read("hol.mm"), "    $d x y R $.  $d y B $.\n    insti.1",
                         "    $d y B $.\n    insti.1")
    code, data, verdict = _ours(capsys, tmp_path, text)
    f = _assert_rejected_once(code, data, verdict, "insti")
    assert "$d" in f["reason"] and "ax-17" in f["reason"]
    assert "disjoint variable ($d) violation" in verdict.errors[0].text


def test_missing_dv_condition_big_database(tmp_path, capsys):
    """The same in nf.mm (6,001 proofs: verified in parallel): a17d without its `$d x ps`."""
    text = _replace_once(_read("nf.mm"), "    $d x ps $.\n    $( ~ ax-17 with antecedent.",
                         "    $( ~ ax-17 with antecedent.")
    code, data, verdict = _ours(capsys, tmp_path, text)
    f = _assert_rejected_once(code, data, verdict, "a17d")
    assert f["reason"] == "ax-17: $d ph x requires $d ps x, which a17d does not have"


def test_wrong_hypothesis(tmp_path, capsys):
    """hbl.2 says `B : be` instead of `B : al`: the step that uses it no longer fits."""
    text = _replace_once(_read("hol.mm"), "hbl.2 $e |- B : al $.", "hbl.2 $e |- B : be $.")
    code, data, verdict = _ours(capsys, tmp_path, text)
    # axrep applies hbl, whose hypothesis no longer matches what axrep supplies
    f = _assert_rejected_once(code, data, verdict, "hbl", also=["axrep"])
    assert "hypothesis" in f["reason"]


def test_wrong_hypothesis_reference(tmp_path, capsys):
    """A compressed proof that cites one `$e` where another is needed."""
    text = _read("hol.mm")
    db = Database.from_string(text, "hol.mm")
    hyps = db["hbl"].frame.hyps
    one, two = hyps.index("hbl.1") + 1, hyps.index("hbl.2") + 1

    def cite_wrong(nums):
        nums[nums.index(two)] = one
        return nums

    code, data, verdict = _ours(capsys, tmp_path, _with_numbers(text, "hbl", cite_wrong))
    _assert_rejected_once(code, data, verdict, "hbl")


def test_truncated_compressed_proof(tmp_path, capsys):
    """The last three steps cut off (at a number boundary): the proof ends with a stack of several entries."""
    code, data, verdict = _ours(capsys, tmp_path, _with_numbers(_read("hol.mm"), "hbl", lambda n: n[:-3]))
    f = _assert_rejected_once(code, data, verdict, "hbl")
    assert "stack" in f["reason"]


def test_truncated_inside_a_number(tmp_path, capsys):
    """Cut after a leading digit (U-Y): a malformed proof, a failed proof located at that letter (every
    other proof still checked); metamath rejects it too."""
    text = _read("hol.mm")
    db = Database.from_string(text, "hol.mm")
    a, b = _letters_span(db, "hbl")
    letters = text[a:b]
    cut = max(i for i, c in enumerate(letters) if c in "UVWXY")
    bad = text[: a + cut + 1] + " " + text[b:]
    path = tmp_path / "cut.mm"
    path.write_text(bad)
    assert main(["verify", str(path), "--json"]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    data = json.loads(out)
    line = bad[: a + cut].count("\n") + 1
    col = a + cut - bad.rfind("\n", 0, a + cut)
    assert [f["label"] for f in data["failed"]] == ["hbl"] and data["verified"] == data["theorems"] - 1
    f = data["failed"][0]
    assert f["where"] == f"{path}:{line}:{col}" and f["reason"].startswith("malformed compressed proof")
    verdict = metamath_verdict(str(path))
    assert not verdict.accepted and "hbl" in verdict.failing()
