"""New theorems between extraction and rewriting: the theorems file (T.json),
its schema check, the ``${ $e $d $p $}`` block of a theorem, and verification
by inserting blocks into a copy of the database.

Why one module: ``mmrefactor extract`` writes T.json and checks each theorem
by insertion; ``mmrefactor rewrite`` reads T.json, checks it again the same
way and writes the same blocks into the output. Both must agree on the
format, the text and the verifier's view of it.

T.json: an object whose ``theorems`` list holds one object per theorem:
``label``, ``statement`` (symbols separated by spaces, typecode first),
``hypotheses`` (``[{"label", "statement"}]``, labels ``label.1``,
``label.2``...), ``dv`` (pairs of variables), ``proof`` (a normal proof:
labels in reverse Polish order), and extraction's figures (``uses``,
``source_proofs``...). :func:`load_theorems` checks the parts rewriting needs.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Iterable

from metamath.database import Database
from metamath.errors import MMError, ProofError
from metamath.verify import check

if TYPE_CHECKING:
    from .generalize import Theorem

__all__ = ["TheoremsFileError", "load_theorems", "outer_floats", "hypothesis_labels", "block",
           "wrap_comment", "normal_proof_text", "theorem_block", "entry_block", "appended_text", "insert_theorems",
           "verify_blocks", "verify_theorems", "verify_entries"]


class TheoremsFileError(ValueError):
    """A theorems file that cannot be used; the message names the file."""


def load_theorems(path: str) -> dict:
    """Read T.json; raise :class:`TheoremsFileError` naming the file on a format problem."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise TheoremsFileError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TheoremsFileError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise TheoremsFileError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("theorems"), list):
        raise TheoremsFileError(f"{path}: expected an object with a 'theorems' list")
    for k, t in enumerate(data["theorems"]):
        where = f"{path}: theorems[{k}]"
        if not isinstance(t, dict):
            raise TheoremsFileError(f"{where}: expected an object")
        for key, typ in (("label", str), ("statement", str), ("proof", list)):
            if not isinstance(t.get(key), typ):
                raise TheoremsFileError(f"{where}: missing or invalid {key!r}")
        for key in ("hypotheses", "dv", "dummies", "variables", "source_proofs"):
            if key in t and not isinstance(t[key], list):
                raise TheoremsFileError(f"{where}: {key!r} must be a list")
        for h in t.get("hypotheses", []):
            if not isinstance(h, dict) or not isinstance(h.get("label"), str) \
                    or not isinstance(h.get("statement"), str):
                raise TheoremsFileError(f"{where}: each hypothesis needs 'label' and 'statement'")
        for p in t.get("dv", []):
            if not (isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)):
                raise TheoremsFileError(f"{where}: each 'dv' entry must be a pair of variables")
    return data


def outer_floats(db: Database) -> list[tuple[str, str, str, int]]:
    """(typecode, variable, ``$f`` label, statement index) of every variable's
    outermost-scope ``$f``, in file order: the variables a new theorem placed
    at the outermost scope may use (cached on the database)."""
    pool = db.__dict__.get("_mmr_outer_floats")
    if pool is None:
        pool = []
        seen: set[str] = set()
        for st in db.statements.values():
            if st.kind == "f" and st.depth == 0 and st.expr[1] not in seen:
                seen.add(st.expr[1])
                pool.append((st.expr[0], st.expr[1], st.label, st.index))
        db.__dict__["_mmr_outer_floats"] = pool
    return pool


def hypothesis_labels(label: str, n: int) -> list[str]:
    """The ``$e`` labels of a theorem named ``label`` with ``n`` hypotheses: ``label.1``, ``label.2``..."""
    return [f"{label}.{i + 1}" for i in range(n)]


def block(label: str, statement, hypotheses: Iterable, dv: Iterable = (), proof_text: str = "",
          comment: str | None = None, indent: str = "") -> str:
    """A ``${ $e.. $d.. $( comment $) $p $}`` block (no final newline).

    ``hypotheses``: (label, expression) pairs; expressions are tuples or
    space-separated strings; ``proof_text`` is what follows ``$=``, through
    ``$.`` (see :func:`normal_proof_text`); lines start with ``indent``.
    """
    text = lambda e: e if isinstance(e, str) else " ".join(e)  # noqa: E731
    i2 = indent + "  "
    lines = [indent + "${"]
    for h, e in hypotheses:
        lines.append(f"{i2}{h} $e {text(e)} $.")
    for a, b in dv:
        lines.append(f"{i2}$d {a} {b} $.")
    if comment is not None:
        lines.append(wrap_comment(comment, i2))
    lines.append(f"{i2}{label} $p {text(statement)} $={proof_text}")
    lines.append(indent + "$}")
    return "\n".join(lines)


def wrap_comment(text: str, indent: str, width: int = 79) -> str:
    """``$( text $)`` wrapped at ``width``; ``~ label`` (a set.mm link) stays on one line."""
    words: list[str] = []
    for w in text.replace("$", "").split():
        if words and words[-1] == "~":
            words[-1] += " " + w
        else:
            words.append(w)
    lines: list[str] = []
    line = indent + "$("
    for w in words + ["$)"]:
        if len(line) + 1 + len(w) > width and line.strip() != "$(":
            lines.append(line)
            line = indent + "  " + w
        else:
            line += " " + w
    lines.append(line)
    return "\n".join(lines)


def normal_proof_text(proof: Iterable[str]) -> str:
    """A normal proof as the text after ``$=``: labels wrapped at 79 columns, then ``$.``."""
    lines: list[str] = []
    line = "   "
    for tok in list(proof) + ["$."]:
        if len(line) + 1 + len(tok) > 79:
            lines.append(line)
            line = "   "
        line += " " + tok
    lines.append(line)
    return "\n" + "\n".join(lines)


def theorem_block(label: str, th: "Theorem") -> str:
    """A :class:`refactor.generalize.Theorem` named ``label`` as a block with its normal proof."""
    hl = hypothesis_labels(label, len(th.hypotheses))
    return block(label, th.statement, zip(hl, th.hypotheses), th.dv, normal_proof_text(th.rpn(hl)))


def entry_block(entry: dict) -> str:
    """A theorem of T.json (one entry of ``theorems``) as a block with its normal proof."""
    return block(entry["label"], entry["statement"], [(h["label"], h["statement"]) for h in entry["hypotheses"]],
                 [tuple(p) for p in entry.get("dv", [])], normal_proof_text(entry["proof"]))


def appended_text(blocks: list[str]) -> str:
    """``blocks`` as the text that follows a database: a blank line before each."""
    return "\n" + "\n".join(b + "\n" for b in blocks)


def insert_theorems(db: Database, blocks: list[str]) -> str:
    """A copy of the database's main file text with ``blocks`` appended (a blank line before each)."""
    text = db.files[0].text
    if not text.endswith("\n"):
        text += "\n"
    return text + appended_text(blocks)


def verify_blocks(db: Database, items: list[tuple[str, str]]) -> dict[str, str | None]:
    """label -> None (verified) or the reason, for each ``(label, block text)``
    appended to the database (:meth:`Database.extended`: the database is not
    parsed again) and checked by our verifier (all in one extension; split in
    halves, down to single blocks, while an extension does not parse)."""
    if not items:
        return {}
    path = db.files[0].path + " (+ new theorems)"

    def run(batch) -> dict[str, str | None]:
        db2 = db.extended(appended_text([b for _, b in batch]), path)
        out = {}
        for l, _ in batch:
            try:
                if l not in db2.statements or db2[l].kind != "p":
                    raise MMError(f"{l}: no $p statement in the inserted text", path)
                check(db2, l)
                out[l] = None
            except (ProofError, MMError) as exc:
                out[l] = str(exc)
        return out

    def halves(batch) -> dict[str, str | None]:
        try:
            return run(batch)
        except MMError as exc:
            if len(batch) == 1:
                return {batch[0][0]: str(exc)}
            mid = len(batch) // 2
            return {**halves(batch[:mid]), **halves(batch[mid:])}

    return halves(list(items))


def verify_theorems(db: Database, items: list[tuple[str, "Theorem"]]) -> dict[str, str | None]:
    """:func:`verify_blocks` for :class:`refactor.generalize.Theorem` objects named by their labels."""
    return verify_blocks(db, [(l, theorem_block(l, th)) for l, th in items])


def verify_entries(db: Database, theorems: list[dict]) -> dict[str, str | None]:
    """:func:`verify_blocks` for the ``theorems`` of a T.json."""
    return verify_blocks(db, [(t["label"], entry_block(t)) for t in theorems])
