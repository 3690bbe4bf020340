"""Metamath's compressed proof format, both ways.

A compressed proof is ``( label ... ) LETTERS``. Each number is written as
zero or more base-5 digits ``U``-``Y`` (1-5) followed by one final base-20
digit ``A``-``T`` (1-20). Number k refers, in order, to the k-th mandatory
hypothesis, then to the parenthesised labels, then to steps saved by ``Z``;
``Z`` saves the step just completed and ``?`` is an unknown step.

Here a decoded proof is a list of ints: k >= 1 as above, 0 for ``Z`` and -1
for ``?``.
"""
from __future__ import annotations

ZERO = 0
UNKNOWN = -1

_FINAL = {chr(ord("A") + i): i + 1 for i in range(20)}
_LEAD = {chr(ord("U") + i): i + 1 for i in range(5)}


class CompressedError(ValueError):
    """A malformed compressed proof; ``index`` is the offending letter's position."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


def split_compressed(tokens: list[str]) -> tuple[list[str], str]:
    """``['(', 'a', 'b', ')', 'ABC', 'D']`` -> (['a', 'b'], 'ABCD')."""
    try:
        close = tokens.index(")")
    except ValueError:
        raise CompressedError("compressed proof has no ')' closing its label list", 0) from None
    return tokens[1:close], "".join(tokens[close + 1 :])


def decode_numbers(letters: str) -> list[int]:
    """Letters -> numbers (1-based), 0 for Z, -1 for ?."""
    out: list[int] = []
    append = out.append
    num = 0
    lead = False
    final = _FINAL
    leadd = _LEAD
    for i, ch in enumerate(letters):
        v = final.get(ch)
        if v is not None:
            append(num * 20 + v)
            num = 0
            lead = False
            continue
        v = leadd.get(ch)
        if v is not None:
            num = num * 5 + v
            lead = True
            continue
        if lead:
            raise CompressedError(f"number not finished before {ch!r}", i)
        if ch == "Z":
            if not out or out[-1] == ZERO:
                raise CompressedError("'Z' must follow a completed step", i)
            append(ZERO)
        elif ch == "?":
            append(UNKNOWN)
        else:
            raise CompressedError(f"invalid character {ch!r} in compressed proof", i)
    if lead:
        raise CompressedError("compressed proof ends inside a number", len(letters))
    return out


def encode_number(n: int) -> str:
    """1-based number -> its letters (1 -> 'A', 20 -> 'T', 21 -> 'UA')."""
    if n < 1:
        raise ValueError("compressed proof numbers start at 1")
    n -= 1
    out = [chr(ord("A") + n % 20)]
    n //= 20
    while n:
        n -= 1
        out.append(chr(ord("U") + n % 5))
        n //= 5
    return "".join(reversed(out))


def encode_numbers(nums: list[int]) -> str:
    return "".join("Z" if k == ZERO else "?" if k == UNKNOWN else encode_number(k) for k in nums)


def format_compressed(labels: list[str], letters: str, width: int = 79, indent: int = 6) -> str:
    """Lay out ``( labels ) LETTERS`` in lines of at most ``width`` columns, like metamath."""
    pad = " " * indent
    lines: list[str] = []
    line = pad + "$="
    for tok in ["("] + labels + [")"]:
        if len(line) + 1 + len(tok) > width and line.strip():
            lines.append(line)
            line = pad + tok
        else:
            line += " " + tok
    room = width - len(line) - 1
    pos = 0
    if room > 0 and letters:
        line += " " + letters[:room]
        pos = room
    while pos < len(letters):
        lines.append(line)
        chunk = width - indent
        line = pad + letters[pos : pos + chunk]
        pos += chunk
    if len(line) + 3 > width:
        lines.append(line)
        line = pad + "$."
    else:
        line += " $."
    lines.append(line)
    return "\n".join(lines)
