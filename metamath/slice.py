"""Cut a database into a valid prefix: after a statement or before a section.

A prefix of a Metamath database is almost a database: every proof in it
uses only earlier statements. Two things still need closing at the cut:
``${`` blocks still open (closed with ``$}``, indented like their ``${``),
and metamath's file markers ``$( Begin $[ name $] $)`` whose
``$( End $[ name $] $)`` lies past the cut (metamath.exe reads these comments
as the boundaries of included files and rejects a file where one is left
open). Markers and blocks are closed innermost first.

Sections are found by their header comments, as set.mm writes them: a
comment whose first line is a decoration (``#*#*...``, ``=-=-...``,
``-.-....``, ``####...``) and whose next line is the title
(:mod:`metamath.sections`). ``before_section`` matches the start of a title
(white space normalised); the first match in file order is used. A database with ``$[ $]`` includes is flattened first
(see :mod:`metamath.write`), so a cut may fall inside an included file.

The slice is re-read before it is written, so what is written parses as a
database; its counts come from that reading.
"""
from __future__ import annotations

import difflib
import re

from .database import Database
from .errors import MMError
from .reader import scan, source_from_text
from .sections import section_headers
from .write import render, write_atomic

_MARKER = re.compile(r"\$\(\s+(Begin|End)\s+\$\[\s+(\S+)\s+\$\]\s+\$\)\Z")


def _closers(text: str, cut: int, path: str) -> tuple[list[str], int, list[str]]:
    """What is open at ``cut``: the closing lines (innermost first), the number
    of scopes and the names of the file markers."""
    open_: list[tuple[str, str]] = []  # ("scope", indentation) or ("marker", name)
    for kind, off, pay in scan(source_from_text(text[:cut], path)):
        if kind == "kw" and pay == "{":
            line_start = text.rfind("\n", 0, off) + 1
            lead = text[line_start:off]
            open_.append(("scope", lead if not lead.strip() else ""))
        elif kind == "kw" and pay == "}":
            for i in range(len(open_) - 1, -1, -1):
                if open_[i][0] == "scope":
                    del open_[i]
                    break
        elif kind == "comment":
            m = _MARKER.match(text, off, pay)
            if m and m.group(1) == "Begin":
                open_.append(("marker", m.group(2)))
            elif m:
                for i in range(len(open_) - 1, -1, -1):
                    if open_[i] == ("marker", m.group(2)):
                        del open_[i]
                        break
    lines: list[str] = []
    for what, x in reversed(open_):
        lines.append(x + "$}" if what == "scope" else f"\n$( End $[ {x} $] $)")
    return lines, sum(1 for w, _ in open_ if w == "scope"), [x for w, x in reversed(open_) if w == "marker"]


def _section_hint(want: str, titles: list[str]) -> str:
    """' (did you mean ...?)' for the titles whose start is closest to ``want``."""
    w = want.lower()
    scored = sorted(((difflib.SequenceMatcher(None, w, t[: len(w)].lower()).ratio(), t) for t in set(titles)),
                    reverse=True)
    close = [t for r, t in scored[:3] if r >= 0.6]
    return f" (did you mean {' / '.join(repr(c) for c in close)}?)" if close else ""


def slice_text(db: Database, until: str | None = None, before_section: str | None = None,
               path: str = "<input>") -> tuple[str, dict]:
    """The slice of ``db`` as text, and what was closed (``closed_scopes``,
    ``closed_markers``); see :func:`slice_database`."""
    if (until is None) == (before_section is None):
        raise ValueError("give exactly one of until= and before_section=")
    text, flattened = render(db, flatten=bool(db.includes))
    if flattened:
        db = Database.from_string(text, path)
    if until is not None:
        st = db.statements.get(until)
        if st is None:
            close = difflib.get_close_matches(until, db.statements.keys(), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise MMError(f"no statement labeled {until!r}{hint}", path)
        cut = st.end
    else:
        want = " ".join(before_section.split())
        headers = section_headers(text, path)
        hits = [off for off, title in headers if title.startswith(want)]
        if not want or not hits:
            hint = _section_hint(want, [t for _, t in headers])
            raise MMError(f"no section title starts with {before_section!r}{hint}", path)
        cut = hits[0]
    closers, scopes, markers = _closers(text, cut, path)
    out = text[:cut].rstrip() + "\n"
    if closers:
        out += "".join(line + "\n" for line in closers)
    return out, {"closed_scopes": scopes, "closed_markers": markers}


def slice_database(db_path: str, out_path: str, until: str | None = None,
                   before_section: str | None = None) -> dict:
    """Write the prefix of the database at ``db_path`` to ``out_path``: up to
    and including statement ``until``, or everything before the section whose
    title starts with ``before_section``; open blocks and file markers closed.

    Returns ``out``, ``bytes``, ``statements`` (labeled statements),
    ``axioms``, ``theorems``, ``last_label``, ``closed_scopes`` and
    ``closed_markers``. Raises :class:`MMError` for an unknown label or
    section and when ``out_path`` is a file of the input database.
    """
    db = Database.from_file(db_path)
    text, info = slice_text(db, until=until, before_section=before_section, path=db_path)
    sliced = Database.from_string(text, out_path)
    kinds = [s.kind for s in sliced.statements.values()]
    size = write_atomic(out_path, text, [f.path for f in db.files])
    return {"out": out_path, "bytes": size, "statements": len(kinds), "axioms": kinds.count("a"),
            "theorems": kinds.count("p"), "last_label": next(reversed(sliced.statements), None), **info}
