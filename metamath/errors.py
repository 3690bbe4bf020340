"""One error type for everything a user can get wrong in a database.

Every message a user sees has the shape ``file:line:col: what is wrong`` so that
editors can jump to it; the command line turns an :class:`MMError` into that
line and exit code 2, never a traceback.
"""
from __future__ import annotations


class MMError(Exception):
    """A problem in a Metamath database, located at ``path:line:col``."""

    def __init__(self, message: str, path: str = "<input>", line: int = 0, col: int = 0):
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}: {self.message}"
        return f"{self.path}: {self.message}"


class ProofFormatError(MMError):
    """A proof that cannot be run at all, located in its text: a malformed
    compressed proof, an unknown label, a hypothesis that is not active, a
    later statement.

    It is an :class:`MMError` (``file:line:col: label: what``), but only that
    one proof is bad: :func:`metamath.verify.verify_all` lists it among the
    failed proofs and checks every other one, as ``metamath "verify proof *"``
    does. ``label``: the theorem; ``reason``: what is wrong, without the label.
    """

    def __init__(self, label: str, reason: str, path: str, line: int, col: int):
        self.label = label
        self.reason = reason
        super().__init__(f"{label}: {reason}", path, line, col)

    @property
    def where(self) -> str:
        """``path:line:col`` of the fault."""
        return f"{self.path}:{self.line}:{self.col}"

    def as_dict(self) -> dict:
        return {"label": self.label, "step": None, "reason": self.reason, "where": self.where}


class ProofError(Exception):
    """A proof that does not check: the theorem, the 1-based step, and why."""

    def __init__(self, label: str, step: int, reason: str):
        self.label = label
        self.step = step
        self.reason = reason
        super().__init__(f"{label}: step {step}: {reason}")

    def as_dict(self) -> dict:
        return {"label": self.label, "step": self.step, "reason": self.reason}
