"""``Database.extended``: appending text to a parsed database without parsing it
again gives what parsing the whole appended text gives, and leaves the original alone."""
from __future__ import annotations

import os

import pytest
from conftest import DATA

from metamath.database import Database
from metamath.errors import MMError, ProofError
from metamath.verify import check

PROP = os.path.join(DATA, "set-prop.mm")

# a1i again, under a new label, then a theorem with its own scope, variable and $d
EXTRA = """
${
  mmx.1 $e |- ph $.
  mmx $p |- ( ps -> ph ) $= wph wps wph wi mmx.1 wph wps ax-1 ax-mp $.
$}
${
  $v q $.
  wq $f wff q $.
  $d q ph $.
  mmy $p |- ( q -> ( ph -> q ) ) $= wq wph ax-1 $.
$}
"""


@pytest.fixture(scope="module")
def prop() -> Database:
    return Database.from_file(PROP)


def _view(db: Database, label: str):
    st = db[label]
    return st.kind, st.expr, st.index, st.depth, st.frame


def test_extension_equals_a_reparse_and_leaves_the_original_alone(prop):
    n, labels = len(prop), set(prop.statements)
    ext = prop.extended(EXTRA, "extra.mm")
    whole = Database.from_string(open(PROP).read() + EXTRA, PROP)
    for l in ("mmx.1", "mmx", "wq", "mmy", "a1i", "ax-mp"):
        assert _view(ext, l) == _view(whole, l)
    assert ext["mmy"].frame.dvs == frozenset({("ph", "q")})
    check(ext, "mmx")
    check(ext, "mmy")
    assert len(ext) == len(whole) == n + 4
    assert len(prop) == n and set(prop.statements) == labels and "q" not in prop.variables
    # the extension's own scope ended: its variable is not active in a further extension
    with pytest.raises(MMError, match="'q' is an undeclared math symbol|'q' is an inactive variable"):
        ext.extended("bad $p |- ( q -> q ) $= wq wq ax-1 $.\n")


def test_errors_name_the_extension_and_its_lines(prop):
    with pytest.raises(MMError) as exc:
        prop.extended("\n\nax-mp $a |- ph $.\n", "extra.mm")
    assert exc.value.path == "extra.mm" and exc.value.line == 3 and "duplicate label 'ax-mp'" in str(exc.value)
    with pytest.raises(MMError, match="'\\$}' without a matching"):
        prop.extended("$}\n")
    bad = prop.extended("mmz $p |- ( ps -> ph ) $= wph wps ax-1 $.\n")
    with pytest.raises(ProofError):
        check(bad, "mmz")


def test_outermost_hypotheses_and_dv_carry_over():
    db = Database.from_string("$c |- wff ( ) -> $. $v p q $. wp $f wff p $. wq $f wff q $. $d p q $.\n"
                              "h $e |- p $.\n")
    ext = db.extended("t $a |- q $.\n")
    assert ext["t"].frame.hyps == ("wp", "wq", "h") and ext["t"].frame.dvs == frozenset({("p", "q")})
    with pytest.raises(ValueError, match="not parsed to its end"):
        Database().extended("t $a |- q $.\n")
