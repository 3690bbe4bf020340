"""Our verifier agrees with metamath.exe on every Debian database.

metamath.exe (Debian's ``metamath``) is the independent judge. It prints
"All proofs in the database were verified" even after reporting errors, so
its verdict is read from the whole output: no ``?Error``/``?Sorry``/... line
and the success line present. :func:`metamath_verdict` is also what the
corruption and mutation tests use to ask metamath about a file.

Each database is handed to metamath once; set.mm (~20 s for both verifiers)
is the one ``slow`` case.
"""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field

import pytest
from conftest import DEBIAN_DBS, debian, metamath_exe

from refactor.cli import main

_SUCCESS = "All proofs in the database were verified"
_COUNTS = re.compile(r"The source has (\d+) statements; (\d+) are \$a and (\d+) are \$p\.")
_ERROR_HEAD = re.compile(r'\?Error on line (\d+) of file\s+"([^"]*)"(?:\s+at\s+statement\s+\d+,'
                         r'(?:\s+label\s+"([^"]+)",)?)?')
_STEP = re.compile(r"proof\s+step\s+(\d+)|\(step\s+(\d+)\)")


@dataclass
class MMExeError:
    """One ``?Error`` block of metamath.exe: where, which statement, which proof step."""

    line: int
    label: str | None
    step: int | None
    text: str


@dataclass
class Verdict:
    """What metamath.exe said about a database after ``verify proof *``."""

    accepted: bool
    output: str
    axioms: int | None = None
    theorems: int | None = None
    errors: list[MMExeError] = field(default_factory=list)

    def labels(self) -> set[str]:
        return {e.label for e in self.errors if e.label}

    def first_step(self, label: str) -> int | None:
        return next((e.step for e in self.errors if e.label == label and e.step), None)


def run_metamath(path: str, *commands: str, timeout: float = 600) -> str:
    """metamath.exe's output for ``read path`` then ``commands`` then exit.

    stdin is closed: on some inputs (a NUL byte) metamath stops at an
    interactive bug prompt, and a closed stdin makes it give up at once.
    """
    exe = metamath_exe()
    args = [exe, f'read "{path}"', *commands, "exit"]
    res = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         errors="replace", timeout=timeout)
    return res.stdout + res.stderr


def parse_verdict(out: str) -> Verdict:
    """Read metamath.exe's output of ``read`` + ``verify proof *``."""
    bad = [l for l in out.splitlines() if l.startswith("?") and not l.startswith("?Warning")]
    unproved = "were not proved" in out
    v = Verdict(accepted=_SUCCESS in out and not bad and not unproved, output=out)
    m = _COUNTS.search(out)
    if m:
        v.axioms, v.theorems = int(m.group(2)), int(m.group(3))
    heads = list(_ERROR_HEAD.finditer(out))
    for i, h in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(out)
        block = out[h.end() : end].split("\nMM>")[0]
        s = _STEP.search(block)
        step = int(s.group(1) or s.group(2)) if s else None
        v.errors.append(MMExeError(int(h.group(1)), h.group(3), step, out[h.start() : h.end()] + block))
    return v


def metamath_verdict(path: str) -> Verdict:
    """Run ``metamath 'read "path"' 'verify proof *' exit`` and judge its output."""
    return parse_verdict(run_metamath(str(path), "verify proof *"))


FAST = [n for n in DEBIAN_DBS if n != "set.mm"]


@pytest.mark.parametrize("name", FAST + [pytest.param("set.mm", marks=pytest.mark.slow)])
def test_verify_agrees_with_metamath_exe(name, capsys):
    path = debian(name)
    verdict = metamath_verdict(path)
    assert verdict.accepted, verdict.output[-3000:]
    code = main(["verify", path, "--json"])
    out = capsys.readouterr().out
    data = json.loads(out)
    assert code == 0
    assert data["failed"] == []
    assert data["verified"] == data["theorems"] == verdict.theorems
    assert data["axioms"] == verdict.axioms
    if name == "peano.mm":
        assert data["theorems"] == 0  # axioms only: nothing to prove, nothing failed


def test_miu_needs_empty_substitutions():
    """miu.mm's proof substitutes the empty string for a variable; metamath allows it, so must we."""
    from metamath import Database, check

    db = Database.from_file(debian("miu.mm"))
    proof = check(db, "theorem1", record=True)
    assert any(n.expr == ("wff",) for n in proof.nodes)  # `we $a wff $.`: the empty wff
    assert proof.nodes[proof.root].expr == db["theorem1"].expr


def test_verdict_parser_reads_a_rejection(tmp_path):
    """The judge itself must be able to say no (else every agreement above is vacuous)."""
    text = open(debian("demo0.mm")).read()
    bad = text.replace("tt tt a1 mp mp", "tt tt a1 mp")
    assert bad != text
    p = tmp_path / "demo0-truncated.mm"
    p.write_text(bad)
    v = metamath_verdict(str(p))
    assert not v.accepted and v.labels() == {"th1"} and v.first_step("th1") == 33
