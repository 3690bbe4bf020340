"""Metamath source text -> a stream of keyword events with exact positions.

The reader finds every ``$x`` keyword with ``str.find`` and leaves the math
tokens between keywords as raw text slices, split only when a statement asks
for them. That keeps reading set.mm (41 MB) to a fraction of a second while
every event still knows its file and character offset, from which
``file:line:col`` is computed only when an error needs it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .errors import MMError

KEYWORDS = frozenset("cvfeapd=.{}[]()")
_WS = " \t\n\r\f"
_ALLOWED_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n\r\f"
_BAD_CHAR = re.compile(r"[^\x20-\x7e\t\n\r\f]")


@dataclass
class SourceFile:
    """One file of a database: its path as given and its full text."""

    path: str
    text: str
    _line_starts: list[int] | None = field(default=None, repr=False)

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        if self._line_starts is None:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._line_starts = starts
        import bisect

        line = bisect.bisect_right(self._line_starts, offset)
        return line, offset - self._line_starts[line - 1] + 1

    def error(self, offset: int, message: str) -> MMError:
        line, col = self.position(offset)
        return MMError(message, self.path, line, col)

    def token_offset(self, start: int, end: int, token: str) -> int:
        """Offset of the first whitespace-delimited ``token`` in text[start:end]."""
        m = re.compile(r"(?<!\S)" + re.escape(token) + r"(?!\S)").search(self.text, start, end)
        return m.start() if m else start


def load_source(path: str) -> SourceFile:
    """Read a .mm file, refusing binary or non-ASCII content with a located error."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise MMError("file not found", path) from None
    except IsADirectoryError:
        raise MMError("is a directory, not a .mm file", path) from None
    except OSError as exc:
        raise MMError(f"cannot read: {exc.strerror}", path) from None
    return source_from_bytes(data, path)


def source_from_bytes(data: bytes, path: str = "<input>") -> SourceFile:
    if b"\0" in data:
        off = data.index(b"\0")
        src = SourceFile(path, data[:off].decode("latin-1"))
        raise src.error(off, "binary file (NUL byte): not a Metamath database")
    bad = data.translate(None, _ALLOWED_BYTES)
    if bad:
        off = data.index(bad[:1])
        src = SourceFile(path, data[:off].decode("latin-1"))
        raise src.error(off, f"illegal character {bad[:1]!r} (Metamath files are printable ASCII)")
    return SourceFile(path, data.decode("ascii"))


def source_from_text(text: str, path: str = "<input>") -> SourceFile:
    src = SourceFile(path, text)
    if not text.isascii() or _BAD_CHAR.search(text):
        m = _BAD_CHAR.search(text)
        raise src.error(m.start(), f"illegal character {text[m.start()]!r} (Metamath files are printable ASCII)")
    return src


# Event kinds produced by scan(): (kind, offset, payload)
#   "kw"      offset of '$', payload = keyword char ('c', 'v', '=', '.', ...)
#   "text"    offset of slice start, payload = end offset (math/label tokens)
#   "comment" offset of '$(', payload = end offset (just past '$)')


def scan(src: SourceFile) -> list[tuple[str, int, int | str]]:
    """Split a file into keyword, text and comment events."""
    text = src.text
    n = len(text)
    find = text.find
    events: list[tuple[str, int, int | str]] = []
    append = events.append
    pos = 0
    while True:
        i = find("$", pos)
        if i < 0:
            if text[pos:].strip():
                append(("text", pos, n))
            return events
        if i > pos:
            append(("text", pos, i))
        c = text[i + 1 : i + 2]
        if (i > 0 and text[i - 1] not in _WS) or (i + 2 < n and text[i + 2] not in _WS):
            raise src.error(i, "'$' inside a token (keywords must be separated by white space)")
        if c not in KEYWORDS or c in ")":
            raise src.error(i, f"unknown keyword '${c}'" if c.strip() else "lone '$'")
        if c == "(":
            j = i + 2
            while True:
                j = find("$", j)
                if j < 0:
                    raise src.error(i, "unterminated comment: '$(' has no matching '$)'")
                if text[j - 1] in _WS and (j + 2 >= n or text[j + 2] in _WS):
                    nxt = text[j + 1 : j + 2]
                    if nxt == ")":
                        break
                    if nxt == "(":
                        raise src.error(j, "'$(' inside a comment (comments do not nest)")
                j += 1
            append(("comment", i, j + 2))
            pos = j + 2
        else:
            append(("kw", i, c))
            pos = i + 2


def include_path(including: str, name: str) -> str:
    """Resolve an included file name relative to the including file."""
    if os.path.isabs(name):
        return name
    return os.path.normpath(os.path.join(os.path.dirname(including) or ".", name))
