"""Where new theorems go in a database's text: its top-level items.

Why: a new theorem must sit at the outermost scope (inside another block
that block's ``$e`` would become mandatory, its ``$d`` would apply), so
rewriting places each one at the start of a *top-level item*: a depth-0
statement or an outermost ``${ $}`` block, before the item's description
comment, indented like the item. :class:`metamath.write.Edits` anchors at
statements and may stay inside a block that declares variables, hence this
rule of its own.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from metamath.database import Database
from metamath.reader import scan

__all__ = ["Layout", "layout"]


@dataclass
class Layout:
    """Top-level items of a one-file database: each depth-0 statement and each
    outermost ``${ $}`` block, by start offset; where new text may go."""

    starts: list[int]
    insert_at: list[int]   # per item: where to insert before it (before its description comment)
    indent: list[str]

    def item_of(self, offset: int) -> int:
        """The item holding the text at ``offset``."""
        return bisect.bisect_right(self.starts, offset) - 1

    def label_in(self, db: Database, it: int) -> str | None:
        """A ``$a``/``$p`` label inside item ``it`` (None: past the last item, the end of the file)."""
        if it >= len(self.starts):
            return None
        lo = self.starts[it]
        hi = self.starts[it + 1] if it + 1 < len(self.starts) else float("inf")
        return next((l for l, st in db.statements.items() if lo <= st.start < hi and st.kind in "ap"), None)

    def insertion(self, text: str, it: int, blocks: list[str]) -> tuple[int, str]:
        """(offset, text) that puts ``blocks`` (written with this item's indent)
        before item ``it``, or at the end of ``text`` past the last item, a
        blank line between blocks."""
        if it >= len(self.starts):
            return len(text), ("\n" if not text.endswith("\n") else "") + "\n" + "\n\n".join(blocks) + "\n"
        return self.insert_at[it], "\n\n".join(blocks).lstrip(" ") + "\n\n" + self.indent[it]


def layout(db: Database) -> Layout:
    """The top-level items of the database's (only) file."""
    src = db.files[0]
    text = src.text
    depth = 0
    insert: list[int] = []
    stmt_starts = sorted(st.start for st in db.statements.values() if st.depth == 0 and st.file == 0)
    events = scan(src)
    # depth-0 `${` openings
    opens: list[int] = []
    comments: list[tuple[int, int]] = []
    for kind, off, pay in events:
        if kind == "comment":
            comments.append((off, pay))
        elif kind == "kw":
            if pay == "{":
                if depth == 0:
                    opens.append(off)
                depth += 1
            elif pay == "}":
                depth -= 1
    starts = sorted(opens + stmt_starts)
    cends = [c[1] for c in comments]  # sorted
    indent: list[str] = []
    for s in starts:
        at = s
        k = bisect.bisect_right(cends, s) - 1
        if k >= 0 and not text[comments[k][1] : s].strip():
            at = comments[k][0]  # keep the item's description comment with it
        line_start = text.rfind("\n", 0, at) + 1
        ind = text[line_start:at]
        if ind.strip():  # something else on that line: insert after a newline of our own
            ind = ""
        insert.append(at)
        indent.append(ind)
    return Layout(starts, insert, indent)
