"""Bad input gives ``file:line:col: what is wrong`` and exit code 2, never a traceback.

Each case damages a copy of a Debian database in one place, runs
``mmrefactor verify`` on it in-process and checks the exact location in the
message against the position of the damage, computed here from the text.
A malformed *proof* (an unknown label, a bad compressed-proof letter, a
later statement) is not bad input but a failed proof, as for
``metamath "verify proof *"``: it is listed among the failed proofs with the
same exact location, every other proof is still checked, and the exit code
is 1. The second half pins down the ``--json`` contract of ``verify`` and
``stats`` (``proof_nodes``/``essential_nodes`` against a count taken from
metamath.exe's own fully expanded proofs).
"""
from __future__ import annotations

import json
import re

import pytest
from conftest import debian, metamath_verdict, run_metamath

from refactor.cli import main


def _read(name: str) -> str:
    with open(debian(name)) as fh:
        return fh.read()


def _at(text: str, needle: str, nth: int = 0, delta: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the ``nth`` occurrence of ``needle`` (plus ``delta`` characters)."""
    i = -1
    for _ in range(nth + 1):
        i = text.index(needle, i + 1)
    i += delta
    return text.count("\n", 0, i) + 1, i - text.rfind("\n", 0, i)


def _verify_error(tmp_path, capsys, text: str | bytes, name: str = "bad.mm") -> tuple[str, str]:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    code = main(["verify", str(path)])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    return str(path), err


def _verify_failed(tmp_path, capsys, text: str, name: str = "bad.mm") -> tuple[str, dict, str]:
    """(path, the one failed-proof entry, the text output) of ``verify`` on a database whose
    only fault is one malformed proof: exit 1, every other proof verified, no traceback."""
    path = tmp_path / name
    path.write_text(text)
    code = main(["verify", str(path), "--json"])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    data = json.loads(out)
    assert len(data["failed"]) == 1 and data["verified"] == data["theorems"] - 1, data
    code = main(["verify", str(path)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err + out, (out, err)
    return str(path), data["failed"][0], out


def _expect_failed(f: dict, out: str, path: str, line: int, col: int, label: str, what: str) -> None:
    """The failed-proof entry names the theorem, the exact place and what is wrong (JSON and text)."""
    assert f == {"label": label, "step": None, "reason": what, "where": f"{path}:{line}:{col}"}
    assert f"FAILED {label} at {path}:{line}:{col}: {what}" in out.splitlines(), out


def _demo0_with(old: str, new: str) -> str:
    text = _read("demo0.mm")
    assert text.count(old) == 1
    return text.replace(old, new)


def _expect(err: str, path: str, line: int, col: int, what: str) -> None:
    assert err.strip().splitlines()[-1] == f"error: {path}:{line}:{col}: {what}", err


def test_unknown_label_in_proof(tmp_path, capsys):
    text = _demo0_with("tt tt a1 mp mp", "tt tt a1 foo mp")
    path, f, out = _verify_failed(tmp_path, capsys, text)
    _expect_failed(f, out, path, *_at(text, "foo"), "th1", "unknown label 'foo' in proof")


def test_unknown_label_in_compressed_label_list(tmp_path, capsys):
    text = _read("hol.mm")
    old = "( ht kl kc wl wc ke kbr ax-cb1 distrl a1i leq eqtri )"
    assert text.count(old) == 1
    text = text.replace(old, old.replace("distrl", "nosuch"))
    path, f, out = _verify_failed(tmp_path, capsys, text)
    _expect_failed(f, out, path, *_at(text, "nosuch"), "hbl", "unknown label 'nosuch' in proof")


def test_undeclared_symbol(tmp_path, capsys):
    text = _demo0_with("th1 $p |- t = t", "th1 $p |- t = q")
    path, err = _verify_error(tmp_path, capsys, text)
    _expect(err, path, *_at(text, "= q", delta=2), "th1: 'q' is an undeclared math symbol")


def test_unterminated_comment(tmp_path, capsys):
    text = _read("demo0.mm") + "\n$( this comment never ends\n"
    path, err = _verify_error(tmp_path, capsys, text)
    _expect(err, path, *_at(text, "$( this comment"), "unterminated comment: '$(' has no matching '$)'")


def test_unterminated_scope(tmp_path, capsys):
    text = _demo0_with("$( Prove a theorem $)", "${\n$( Prove a theorem $)")
    path, err = _verify_error(tmp_path, capsys, text)
    _expect(err, path, *_at(text, "${\n$( Prove"), "unterminated scope: '${' has no matching '$}'")


def test_duplicate_label(tmp_path, capsys):
    text = _demo0_with("tze $a term 0 $.", "tze $a term 0 $.\n tze $a term 0 $.")
    path, err = _verify_error(tmp_path, capsys, text)
    _expect(err, path, *_at(text, "tze $a", nth=1), "duplicate label 'tze'")


@pytest.mark.parametrize("letters, bad_at, what", [
    ("BCL!ADBEF", 3, "invalid character '!' in compressed proof"),
    ("BCLZZADBEF", 4, "'Z' must follow a completed step"),
])
def test_malformed_compressed_proof(tmp_path, capsys, letters, bad_at, what):
    text = _read("hol.mm")
    old = ") BCLZADBEFMZMZGNZBEA"
    assert text.count(old) == 1
    text = text.replace(old, old.replace("BCLZADBEF", letters))
    path, f, out = _verify_failed(tmp_path, capsys, text)
    # the location is the offending letter itself, not the statement
    _expect_failed(f, out, path, *_at(text, letters, delta=bad_at), "hbl", f"malformed compressed proof: {what}")


def test_compressed_proof_without_closing_paren(tmp_path, capsys):
    text = _read("hol.mm")
    old = "( ht kl kc wl wc ke kbr ax-cb1 distrl a1i leq eqtri ) BCLZ"
    assert text.count(old) == 1
    text = text.replace(old, old.replace(" ) ", " "))
    path, f, out = _verify_failed(tmp_path, capsys, text)
    assert f["label"] == "hbl" and f["step"] is None and f["where"].startswith(f"{path}:")
    assert f["reason"].startswith("malformed compressed proof") and "')'" in f["reason"]


# one hol.mm with four broken proofs: three malformed (a later statement, a bad letter, an
# unknown label) and one well formed but wrong
_MULTI = [("idi $p |- R |= A $=\n      (  ) C $.", "idi $p |- R |= A $=\n      ( syl ) C $."),
          ("( ax-syl ) ABCDEF", "( ax-syl ) ABC!EF"),
          ("( ax-jca ) ABCDEF", "( ax-jca ) ABCDFE"),
          ("( kct jca syl )", "( kct jca nosuch )")]


def _hol_multi() -> str:
    text = _read("hol.mm")
    for old, new in _MULTI:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def test_malformed_proofs_are_listed_and_every_other_proof_is_checked(tmp_path, capsys):
    text = _hol_multi()
    path = tmp_path / "multi.mm"
    path.write_text(text)
    code, data, err = _json(capsys, ["verify", str(path), "--json"])
    assert code == 1 and "Traceback" not in err
    where = lambda needle, delta=0: "%s:%d:%d" % ((path,) + _at(text, needle, delta=delta))
    assert data["failed"] == [
        {"label": "idi", "step": None, "reason": "proof uses 'syl', a later statement",
         "where": where("( syl ) C", 2)},
        {"label": "syl", "step": None, "reason": "malformed compressed proof: invalid character '!' in "
                                                 "compressed proof", "where": where("ABC!EF", 3)},
        {"label": "jca", "step": 5, "reason": "ax-jca needs 5 hypotheses, stack has 4"},
        {"label": "syl2anc", "step": None, "reason": "unknown label 'nosuch' in proof", "where": where("nosuch")},
    ]
    assert data["verified"] == data["theorems"] - 4 == 134
    # metamath.exe reports the same four theorems, at the same places, and goes on too
    from conftest import metamath_verdict

    v = metamath_verdict(str(path))
    assert not v.accepted and set(v.failing()) == {"idi", "syl", "jca", "syl2anc"}, v.output[-3000:]
    mm_line = {e.label: e.line for e in v.errors}
    for f in data["failed"]:
        if "where" in f:
            assert int(f["where"].split(":")[-2]) == mm_line[f["label"]], (f, mm_line)
    assert v.first_step("jca") == 5


def test_malformed_proof_is_a_failed_proof_for_stats_and_show(tmp_path, capsys):
    """``stats`` counts it as unverified; ``show`` reports it located and exits 1, like a wrong proof."""
    text = _demo0_with("tt tt a1 mp mp", "tt tt a1 foo mp")
    path = tmp_path / "bad.mm"
    path.write_text(text)
    code, data, err = _json(capsys, ["stats", str(path), "--json"])
    assert code == 0 and data["unverified_proofs"] == 1 and "Traceback" not in err
    assert main(["show", str(path), "th1"]) == 1
    err = capsys.readouterr().err
    line, col = _at(text, "foo")
    assert err.strip() == f"{path}:{line}:{col}: th1: unknown label 'foo' in proof"


def test_every_malformed_proof_is_also_rejected_by_metamath(tmp_path):
    """The malformed proofs above are rejected by metamath.exe too, for the same theorem."""
    from conftest import metamath_verdict

    hol = _read("hol.mm")
    old = ") BCLZADBEFMZMZGNZBEA"
    labels = "( ht kl kc wl wc ke kbr ax-cb1 distrl a1i leq eqtri )"
    cases = {
        "unknown": ("th1", _demo0_with("tt tt a1 mp mp", "tt tt a1 foo mp")),
        "unknown-compressed": ("hbl", hol.replace(labels, labels.replace("distrl", "nosuch"))),
        "letter": ("hbl", hol.replace(old, old.replace("BCLZADBEF", "BCL!ADBEF"))),
        "later": ("idi", _read("hol.mm").replace(*_MULTI[0])),
    }
    for name, (label, text) in cases.items():
        p = tmp_path / f"{name}.mm"
        p.write_text(text)
        v = metamath_verdict(str(p))
        assert not v.accepted and set(v.failing()) == {label}, (name, v.output[-2000:])


def test_missing_include_file(tmp_path, capsys):
    text = _demo0_with("$( Prove a theorem $)", "$[ nothere.mm $]\n$( Prove a theorem $)")
    path, err = _verify_error(tmp_path, capsys, text)
    _expect(err, path, *_at(text, "nothere.mm"), "cannot include 'nothere.mm': file not found")


def test_binary_file(tmp_path, capsys):
    data = b"$c wff |- $.\n\x00\x01\x02\xff junk"
    path, err = _verify_error(tmp_path, capsys, data)
    _expect(err, path, 2, 1, "binary file (NUL byte): not a Metamath database")


def test_non_ascii_file(tmp_path, capsys):
    text = _demo0_with("$( Prove a theorem $)", "$( Prove a theor\u00e9m $)")
    path, err = _verify_error(tmp_path, capsys, text.encode("utf-8"))
    line, col = _at(text, "\u00e9")
    _expect(err, path, line, col, "illegal character b'\\xc3' (Metamath files are printable ASCII)")


def test_close_scope_without_open(tmp_path, capsys):
    text = _read("demo0.mm") + "\n$}\n"
    path, err = _verify_error(tmp_path, capsys, text)
    _expect(err, path, *_at(text, "$}", nth=text.count("$}") - 1), "'$}' without a matching '${'")


@pytest.mark.parametrize("shape", ["wff Q Q", "wff", "wff ("])
def test_floating_hypothesis_with_bad_shape(tmp_path, capsys, shape):
    text = _demo0_with("wq $f wff Q $.", f"wq $f {shape} $.")
    path, err = _verify_error(tmp_path, capsys, text)
    _expect(err, path, *_at(text, "wq $f"), "wq: '$f' must be a typecode and one active variable")


def test_disjoint_variable_statement_with_one_variable(tmp_path, capsys):
    """The spec's grammar asks for two or more variables (metamath.exe refuses `$d y $.` too)."""
    text = _read("hol.mm")
    old = "    $d x y $.  $d y B $.\n    ax-distrl.1"
    assert text.count(old) == 1
    text = text.replace(old, "    $d x y $.  $d y $.\n    ax-distrl.1")
    path, err = _verify_error(tmp_path, capsys, text)
    _expect(err, path, *_at(text, "$d y $."), "'$d' needs at least two variables")


def test_hypothesis_uses_a_variable_before_its_floating_hypothesis(tmp_path, capsys):
    """metamath.exe refuses an `$e` whose variable gets its `$f` only after it (once an assertion
    makes the `$e` mandatory); so do we, at the variable in the `$e`."""
    text = _demo0_with("$( Prove a theorem $)", "${\n $v zz $.\n h1 $e |- zz = zz $.\n fz $f term zz $.\n"
                                                " thx $a |- zz = zz $.\n$}\n$( Prove a theorem $)")
    path, err = _verify_error(tmp_path, capsys, text)
    _expect(err, path, *_at(text, "|- zz = zz", delta=3), "h1: variable 'zz' is used before its '$f' (fz)")


def test_nonexistent_file(tmp_path, capsys):
    path = str(tmp_path / "nothere.mm")
    assert main(["verify", path]) == 2
    out, err = capsys.readouterr()
    assert err.strip() == f"error: {path}: file not found" and "Traceback" not in err


def test_directory_instead_of_file(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path}:") and "Traceback" not in err


def test_every_bad_input_is_also_rejected_by_metamath(tmp_path):
    """The damage above is real: metamath.exe refuses each file too (exit code aside, its output)."""
    cases = {
        "unknown": _demo0_with("tt tt a1 mp mp", "tt tt a1 foo mp"),
        "undeclared": _demo0_with("th1 $p |- t = t", "th1 $p |- t = q"),
        "comment": _read("demo0.mm") + "\n$( never ends\n",
        "scope": _demo0_with("$( Prove a theorem $)", "${\n$( Prove a theorem $)"),
        "duplicate": _demo0_with("tze $a term 0 $.", "tze $a term 0 $.\n tze $a term 0 $."),
        "close": _read("demo0.mm") + "\n$}\n",
        "float": _demo0_with("wq $f wff Q $.", "wq $f wff Q Q $."),
        "include": _demo0_with("$( Prove a theorem $)", "$[ nothere.mm $]\n$( Prove a theorem $)"),
        "one-var-dv": _demo0_with("$( Prove a theorem $)", "$d t $.\n$( Prove a theorem $)"),
        "late-f": _demo0_with("$( Prove a theorem $)", "${ $v zz $. h1 $e |- zz = zz $. fz $f term zz $. "
                                                       "thx $a |- zz = zz $. $}\n$( Prove a theorem $)"),
    }
    for name, text in cases.items():
        p = tmp_path / f"{name}.mm"
        p.write_text(text)
        v = metamath_verdict(p)
        assert not v.accepted, name


# ---------------------------------------------------------------- the --json contract
VERIFY_KEYS = {"statements", "axioms", "theorems", "verified", "failed", "seconds"}


def _json(capsys, argv) -> tuple[int, dict | None, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_verify_json_all_good(capsys):
    code, data, _ = _json(capsys, ["verify", debian("demo0.mm"), "--json"])
    assert code == 0
    assert set(data) == VERIFY_KEYS
    assert (data["statements"], data["axioms"], data["theorems"], data["verified"]) == (15, 7, 1, 1)
    assert data["failed"] == [] and isinstance(data["seconds"], (int, float)) and data["seconds"] >= 0


def test_verify_json_failed_proof(tmp_path, capsys):
    p = tmp_path / "bad.mm"
    p.write_text(_demo0_with("tt tt a1 mp mp", "tt tt a1 mp"))
    code, data, _ = _json(capsys, ["verify", str(p), "--json"])
    assert code == 1
    assert set(data) == VERIFY_KEYS and data["verified"] == 0
    assert data["failed"] == [{"label": "th1", "step": 33,
                               "reason": "proof leaves 4 entries on the stack, expected 1"}]


def test_verify_json_unreadable_input(tmp_path, capsys):
    p = tmp_path / "bad.mm"
    p.write_text(_demo0_with("th1 $p |- t = t", "th1 $p |- t = q"))
    code, data, err = _json(capsys, ["verify", str(p), "--json"])
    assert code == 2
    assert data is None or "error" in data  # nothing half-written on stdout; the error is on stderr
    assert f"{p}:45:19:" in err and "Traceback" not in err


def test_verify_json_only_some_labels(capsys):
    code, data, _ = _json(capsys, ["verify", debian("ql.mm"), "id", "--json"])
    assert code == 0 and data["verified"] == 1 and data["failed"] == []
    code, data, err = _json(capsys, ["verify", debian("ql.mm"), "no-such-theorem", "--json"])
    assert code == 2 and "no-such-theorem" in err and "Traceback" not in err


def _expanded_counts(normal_mm: str) -> tuple[int, int]:
    """(all nodes, essential nodes) of every proof in a database whose proofs are fully expanded
    normal proofs: each proof token is one tree node; a node is essential when its statement's
    typecode is not the typecode of any `$f`."""
    text = re.sub(r"\$\(.*?\$\)", " ", normal_mm, flags=re.S)
    typecode = {m.group(1): m.group(3) for m in re.finditer(r"(\S+)\s+\$([feap])\s+(\S+)", text)}
    syntax = {m.group(2) for m in re.finditer(r"(\S+)\s+\$f\s+(\S+)", text)}
    nodes = essential = 0
    for m in re.finditer(r"\$=(.*?)\$\.", text, flags=re.S):
        toks = m.group(1).split()
        assert "(" not in toks and "?" not in toks
        nodes += len(toks)
        essential += sum(typecode[t] not in syntax for t in toks)
    return nodes, essential


@pytest.mark.parametrize("name", ["hol.mm", "miu.mm", "big-unifier.mm"])
def test_stats_json_counts_nodes_like_metamath_expands_them(tmp_path, capsys, name):
    src = tmp_path / name
    src.write_text(_read(name))
    normal = tmp_path / ("normal-" + name)
    out = run_metamath(str(src), "save proof * /normal", f'write source "{normal}"')
    assert normal.exists(), out[-2000:]
    want = _expanded_counts(normal.read_text())
    code, data, _ = _json(capsys, ["stats", str(src), "--json"])
    assert code == 0
    assert (data["proof_nodes"], data["essential_nodes"]) == want
    assert data["unverified_proofs"] == 0 and want[0] > want[1] > 0
