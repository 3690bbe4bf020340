"""Section header comments, as set.mm writes them.

A section header is a comment whose first line is a decoration
(``#*#*...``, ``=-=-...``, ``-.-....``, ``####...``) and whose next line is
the title. Slicing cuts before a section (:mod:`metamath.slice`), and writing
keeps a header where it is when it inserts statements after it
(:mod:`metamath.write`); both ask this module, which needs neither.
"""
from __future__ import annotations

import re

from .reader import scan, source_from_text

_DECORATION = re.compile(r"[#*=.\-]{4,}\Z")


def header_title(comment: str) -> str | None:
    """The title of a section header comment (its text between ``$(`` and
    ``$)``), white space normalised; None when it is not a header."""
    lines = [l.strip() for l in comment.splitlines() if l.strip()]
    if len(lines) >= 2 and _DECORATION.match(lines[0]) and not _DECORATION.match(lines[1]):
        return " ".join(lines[1].split())
    return None


def section_headers(text: str, path: str = "<input>") -> list[tuple[int, str]]:
    """(offset of the header comment, title) for every section header comment
    outside statements, in file order."""
    out: list[tuple[int, str]] = []
    last_kw = "."
    for kind, off, pay in scan(source_from_text(text, path)):
        if kind == "kw":
            last_kw = pay
            continue
        if kind != "comment" or last_kw not in ".{}]":
            continue
        title = header_title(text[off + 2 : pay - 2])
        if title is not None:
            out.append((off, title))
    return out
