"""Slicing a database into a valid prefix: the embedded set-prop.mm, cuts
inside scopes and included files, and clear errors."""
from __future__ import annotations

import os

import pytest

from metamath import Database
from metamath.errors import MMError
from metamath.sections import section_headers
from metamath.slice import slice_database

from conftest import DATA, debian
from test_write import metamath_verifies, ours_verifies  # same directory, on sys.path under pytest

SET_PROP = os.path.join(DATA, "set-prop.mm")
SECTION = "Other axiomatizations of classical propositional calculus"


def set_prop() -> str:
    if not os.path.exists(SET_PROP):
        pytest.skip("data/set-prop.mm not built yet")
    return SET_PROP


@pytest.mark.slow
def test_embedded_set_prop_is_a_fresh_slice_of_set_mm(tmp_path):
    out = tmp_path / "set-prop.mm"
    res = slice_database(debian("set.mm"), str(out), before_section=SECTION)
    assert out.read_bytes() == open(set_prop(), "rb").read()
    assert (res["axioms"], res["theorems"], res["last_label"]) == (33, 1486, "cadtru")
    assert res["closed_scopes"] == 0 and res["closed_markers"] == ["set-pred.mm", "set-main.mm"]


def test_embedded_set_prop_verifies_with_both_verifiers():
    db = ours_verifies(set_prop())
    kinds = [s.kind for s in db.statements.values()]
    assert (kinds.count("a"), kinds.count("p")) == (33, 1486)
    text = db.files[0].text
    assert text.endswith("$( End $[ set-pred.mm $] $)\n\n$( End $[ set-main.mm $] $)\n")
    assert not [t for _, t in section_headers(text) if t.startswith(SECTION)]
    assert "CC0\nPublic Domain Dedication" in text  # the licence travels with the slice
    metamath_verifies(set_prop())


def test_slice_before_a_section_closes_file_markers(tmp_path):
    out = tmp_path / "neg.mm"
    res = slice_database(set_prop(), str(out), before_section="Logical negation")
    text = out.read_text()
    src = Database.from_file(set_prop())
    assert list(Database.from_file(str(out)).statements) == list(src.statements)[: src[res["last_label"]].index + 1]
    assert "Logical negation" not in [t for _, t in section_headers(text)]
    assert res["closed_markers"] == ["set-pred.mm", "set-main.mm"]
    assert text.count("$( End $[ set-main.mm $] $)") == 1
    ours_verifies(str(out))
    metamath_verifies(str(out))


@pytest.mark.parametrize("name,label,scopes", [("hol.mm", "idi", 1), ("ql.mm", "gon2n", 2),
                                                ("ql.mm", "gon2n.3", 2)])
def test_slice_inside_scopes_closes_them(name, label, scopes, tmp_path):
    src = Database.from_file(debian(name))
    assert src[label].depth == scopes
    out = tmp_path / "cut.mm"
    res = slice_database(debian(name), str(out), until=label)
    assert res["closed_scopes"] == scopes and res["last_label"] == label
    new = ours_verifies(str(out))
    assert list(new.statements) == list(src.statements)[: src[label].index + 1]
    assert out.read_text().rstrip().endswith("$}")
    metamath_verifies(str(out))


def test_slice_inside_an_included_file(tmp_path):
    from test_write import LOGIC, MAIN

    (tmp_path / "main.mm").write_text(MAIN)
    (tmp_path / "logic.mm").write_text(LOGIC)
    out = tmp_path / "cut.mm"
    res = slice_database(str(tmp_path / "main.mm"), str(out), until="mp")
    assert res["closed_scopes"] == 1 and res["closed_markers"] == ["logic.mm"]
    text = out.read_text()
    assert text.index("$}") < text.index("$( End $[ logic.mm $] $)")  # innermost first
    ours_verifies(str(out))
    metamath_verifies(str(out))


def test_unknown_label_or_section_is_a_clear_error(tmp_path):
    out = tmp_path / "x.mm"
    with pytest.raises(MMError, match=r"no statement labeled 'idii' \(did you mean idi"):
        slice_database(debian("hol.mm"), str(out), until="idii")
    with pytest.raises(MMError, match="no section title starts with 'Logical negations'"):
        slice_database(set_prop(), str(out), before_section="Logical negations")
    with pytest.raises(ValueError, match="exactly one"):
        slice_database(debian("hol.mm"), str(out))
    with pytest.raises(MMError, match="refusing to overwrite"):
        slice_database(set_prop(), set_prop(), until="ax-mp")
    assert not out.exists()


def test_cli_slice(tmp_path, capsys):
    from refactor.cli import main

    assert main(["slice", debian("hol.mm"), "--until", "nope", "-o", str(tmp_path / "x.mm")]) == 2
    assert "no statement labeled 'nope'" in capsys.readouterr().err
    assert main(["slice", debian("hol.mm"), "--until", "idi", "-o", str(tmp_path / "x.mm")]) == 0
    assert "cut after idi, 1 scopes closed" in capsys.readouterr().out
