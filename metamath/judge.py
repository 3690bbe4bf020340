"""The external judge: Debian's ``metamath`` (metamath.exe) on a file, and its verdict.

Why: every database this project writes is also checked by an independent
verifier. metamath.exe prints "All proofs in the database were verified"
even after reporting errors, so the verdict is read from the whole output:
accepted means the success line is there, no ``?`` line other than a
``?Warning`` appears, and no proof is left unproved. The rewrite command and
the agreement, corruption and mutation tests all ask it through here.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field

__all__ = ["JudgeUnavailable", "MMExeError", "Verdict", "run_metamath", "parse_verdict",
           "metamath_verdict"]

_SUCCESS = "All proofs in the database were verified"
_COUNTS = re.compile(r"The source has (\d+) statements; (\d+) are \$a and (\d+) are \$p\.")
_ERROR_HEAD = re.compile(r'\?Error on line (\d+) of file\s+"([^"]*)"(?:\s+at\s+statement\s+\d+,'
                         r'(?:\s+label\s+"([^"]+)",)?)?')
_STEP = re.compile(r"proof\s+step\s+(\d+)|\(step\s+(\d+)\)")


class JudgeUnavailable(RuntimeError):
    """metamath.exe is not installed."""


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

    def failing(self) -> list[str]:
        """The labels of the statements the error blocks name, in output order, once each."""
        return list(dict.fromkeys(e.label for e in self.errors if e.label))

    def first_step(self, label: str) -> int | None:
        return next((e.step for e in self.errors if e.label == label and e.step), None)


def run_metamath(path: str, *commands: str, timeout: float = 600) -> str:
    """metamath.exe's output for ``read path`` then ``commands`` then exit.

    stdin is closed: on some inputs (a NUL byte) metamath stops at an
    interactive bug prompt, and a closed stdin makes it give up at once.
    Raises :class:`JudgeUnavailable` when metamath is not installed.
    """
    exe = shutil.which("metamath")
    if exe is None:
        raise JudgeUnavailable("metamath (metamath.exe) not found: install Debian's metamath")
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


def metamath_verdict(path: str, timeout: float = 600) -> Verdict:
    """Run ``metamath 'read "path"' 'set scroll continuous' 'verify proof *' exit`` and judge it."""
    return parse_verdict(run_metamath(str(path), "set scroll continuous", "verify proof *", timeout=timeout))
