"""Write a database back: byte-identical, recompressed, or edited.

``write_database(db, out)`` with no changes writes the top-level file exactly
as it was read (its ``$[ $]`` includes stay includes). Changes are span
replacements on the source text, applied in one pass:

* ``recompress=True`` re-encodes every proof with our compressor
  (:func:`metamath.compressed.compress_proof`), normal proofs included, laid
  out as metamath lays out set.mm (:func:`metamath.compressed.format_proof_body`);
* :class:`Edits` replaces proofs (a :class:`metamath.proof.Proof` DAG, written
  compressed, or a list of labels in reverse Polish order, written as a
  normal proof) and inserts statements before existing ones.

Edits may touch included files: when a database with includes is written
with changes, the includes are *flattened* into one output file, each
included file's text between ``$( Begin $[ name $] $)`` and
``$( End $[ name $] $)`` markers (metamath's own convention for a flattened
database; a repeated include becomes ``$( Skip $[ name $] $)``), so the
result is a single self-contained file.

Every write is atomic (a temporary file in the target directory, then
``os.replace``) and refuses to overwrite any file of the database it came
from. The same helpers serve every other file the project writes (JSON
results, reports, checkpoints, caches): :func:`write_atomic` for text or
bytes, :func:`write_json`, and :func:`atomic_path` for writers that need a
file name.
"""
from __future__ import annotations

import bisect
import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence, Union

from .compressed import compress_proof, format_proof_body
from .database import Database, Statement
from .errors import MMError, ProofError
from .parallel import map_theorems
from .proof import Proof
from .reader import scan
from .sections import header_title

WIDTH = 79


@dataclass
class Edits:
    """Changes to apply while writing.

    ``proofs``: ``$p`` label -> its new proof, a :class:`Proof` DAG (or a
    ``ProofTree``; written compressed) or a list of labels in reverse Polish
    order (written as a normal proof; ``?`` allowed). New proofs are not
    verified here (they may use inserted statements): verify the written
    database. ``insert_before``: label of an existing
    ``$a``/``$p`` -> texts (statements, e.g. a ``${ ... $}`` block with
    ``$e`` hypotheses and a ``$p``, written as if at column 1; each is
    indented like the insertion point and followed by a blank line).

    The insertion point is the start of the statement's description comment
    or, when the statement sits inside ``${ ... $}`` blocks holding ``$e`` or
    ``$d`` statements, the outermost such block (with the comment before it,
    unless that is a section header), so none of them applies to the
    inserted statements. Blocks that declare variables (``$v``/``$f``) are
    not left, since the inserted text may use their variables: a ``$d`` of
    such a block stays in force, and an ``$e`` there is an error
    (:class:`MMError`), as is an ``$e`` block that begins in another file.
    Texts for the same point are written in the order of their labels in the
    database, then list order.
    """

    proofs: dict[str, Union[Proof, list[str]]] = field(default_factory=dict)
    insert_before: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.proofs or self.insert_before)


# ------------------------------------------------------------------ atomic output
def check_output_path(out_path: str, inputs: Sequence[str]) -> str:
    """Refuse an output that is one of ``inputs`` or cannot be written; return its absolute path."""
    out = os.path.abspath(out_path)
    if os.path.isdir(out):
        raise MMError("is a directory; give a file name to write", out_path)
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        raise MMError(f"directory {parent} does not exist", out_path)
    real = os.path.realpath(out)
    for p in inputs:
        if not p or p.startswith("<"):
            continue
        same = os.path.realpath(p) == real
        if not same and os.path.exists(out) and os.path.exists(p):
            same = os.path.samefile(p, out)
        if same:
            raise MMError(f"refusing to overwrite the input file {p} (write to another path)", out_path)
    return out


def _file_mode(path: str) -> int:
    """The mode of the file being replaced, else 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


@contextmanager
def atomic_path(out_path: str, inputs: Sequence[str] = ()) -> Iterator[str]:
    """A temporary path beside ``out_path`` that becomes ``out_path`` when the block succeeds.

    For writers that want a file name rather than a string (``torch.save``,
    ``pickle.dump``): ``with atomic_path(p) as tmp: torch.save(obj, tmp)``.
    The output is checked first (:func:`check_output_path`: never one of
    ``inputs``, its directory must exist). On success the temporary file
    gets the replaced file's mode (else the usual 0666 less the umask) and
    is renamed onto ``out_path`` in one step, so a reader never sees half a
    file; on any exception it is removed and ``out_path`` is left as it was.
    """
    out = check_output_path(out_path, inputs)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(out), prefix="." + os.path.basename(out) + ".",
                               suffix=".tmp")
    os.close(fd)
    done = False
    try:
        yield tmp
        os.chmod(tmp, _file_mode(out))  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, out)
        done = True
    finally:
        if not done and os.path.exists(tmp):
            os.unlink(tmp)


def write_atomic(out_path: str, text: str | bytes, inputs: Sequence[str] = ()) -> int:
    """Write ``text`` to ``out_path`` atomically (see :func:`atomic_path`); return the byte count.

    A ``str`` must be ASCII (Metamath files are; JSON written with
    ``ensure_ascii`` is too); ``bytes`` are written as they are, for text in
    another encoding.
    """
    data = text.encode("ascii") if isinstance(text, str) else bytes(text)
    with atomic_path(out_path, inputs) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return len(data)


def write_json(out_path: str, obj, *, indent: int | None = 1, inputs: Sequence[str] = ()) -> int:
    """Write ``obj`` as JSON (ASCII, a final newline) to ``out_path`` atomically; return the byte count."""
    return write_atomic(out_path, json.dumps(obj, indent=indent) + "\n", inputs)


# ------------------------------------------------------------------ proof bodies
def proof_indent(db: Database, st: Statement) -> int:
    """Indentation of a proof: the original's when it starts on its own line,
    else the statement's own indentation plus 2 (set.mm's style)."""
    text = db.files[st.file].text
    a, b = st.proof
    body = text[a:b]
    ws = body[: len(body) - len(body.lstrip())]
    if "\n" in ws:
        return len(ws.rsplit("\n", 1)[1].expandtabs())
    line_start = text.rfind("\n", 0, st.start) + 1
    return len(text[line_start : st.start].expandtabs()) + 2


def compressed_body(proof: Proof, hyps: Sequence[str], indent: int) -> str:
    """The text after ``$=`` (through ``$.``) for ``proof`` written compressed."""
    labels, letters = compress_proof(proof, hyps)
    return format_proof_body(labels, letters, indent, WIDTH)


def normal_body(labels: Sequence[str], indent: int) -> str:
    """The text after ``$=`` (through ``$.``) for a normal proof, wrapped at 79 columns."""
    pad = " " * indent
    lines: list[str] = []
    line = pad
    for tok in list(labels) + ["$."]:
        if line.strip() and len(line) + 1 + len(tok) > WIDTH:
            lines.append(line)
            line = pad + tok
        else:
            line += (" " if line.strip() else "") + tok
    lines.append(line)
    return "\n" + "\n".join(lines)


def _recompressed(db: Database, label: str) -> tuple[str, str | None]:
    """(new body, None) or (original body, why it was kept) for one ``$p``."""
    from .verify import check

    st = db.statements[label]
    try:
        proof = check(db, label, record=True)
    except (ProofError, MMError) as exc:
        a, b = st.proof
        return db.files[st.file].text[a : b + 2], str(exc)
    return compressed_body(proof, st.frame.hyps, proof_indent(db, st)), None


# ------------------------------------------------------------------ insertion points
def _anchors(db: Database, fi: int, labels: list[str]) -> dict[str, int]:
    """Insertion offsets in file ``fi`` for statements ``labels`` (see :class:`Edits`)."""
    src = db.files[fi]
    text = src.text
    events = scan(src)
    starts = [e[1] for e in events]
    stmts = db.statements
    out: dict[str, int] = {}
    # walk the events once, keeping the open `${` blocks of this file:
    # [offset, holds $e or $d, declares $v or $f]
    want = sorted(labels, key=lambda l: stmts[l].start)
    blocks: list[list] = []
    k = 0
    for label in want:
        st = stmts[label]
        while k < len(events) and events[k][1] < st.start:
            kind, off, pay = events[k]
            k += 1
            if kind != "kw":
                continue
            if pay == "{":
                blocks.append([off, False, False])
            elif pay == "}":
                blocks.pop()
            elif blocks and pay in "ed":
                blocks[-1][1] = True
            elif blocks and pay in "vf":
                blocks[-1][2] = True
        at = st.start
        base = st.depth - len(blocks)  # blocks[j] is at depth base + j + 1
        leave = len(blocks)
        holds = [j for j, b in enumerate(blocks) if b[1]]
        if holds:
            leave = holds[0]  # leave this block and every block inside it ...
            decl = [j for j in range(leave, len(blocks)) if blocks[j][2]]
            if decl:  # ... but stay inside the blocks that declare variables
                leave = decl[-1] + 1
        kept = [h for h in st.frame.hyps if stmts[h].kind == "e" and 0 < stmts[h].depth <= base + leave]
        if kept:
            why = ("begins in another file" if stmts[kept[0]].depth <= base
                   else "also declares variables")
            raise MMError(f"cannot insert before {label!r}: the ${{ block holding its $e {kept[0]} {why}",
                          src.path)
        if leave < len(blocks):
            at = blocks[leave][0]
        # take the comment just before the anchor along, unless it is a section header;
        # events[i] is the `${` or the text event holding the label, so look one before
        i = bisect.bisect_right(starts, at) - 2
        if (i >= 0 and events[i][0] == "comment" and not text[events[i][2] : at].strip()
                and header_title(text[events[i][1] + 2 : events[i][2] - 2]) is None):
            at = events[i][1]
        out[label] = at
    return out


def _insertion(text: str, at: int, items: list[str]) -> str:
    """The text inserted at ``at``: each item indented like the line it lands
    on (items are written as if at column 1), then a blank line."""
    line_start = text.rfind("\n", 0, at) + 1
    lead = text[line_start:at]
    if lead.strip():
        lead = ""
        head = "\n"
    else:
        head = ""

    def indent(item: str) -> str:
        lines = item.strip("\n").rstrip().split("\n")
        return "\n".join([lines[0]] + [lead + l if l.strip() else "" for l in lines[1:]])

    return head + "".join(indent(item) + "\n\n" + lead for item in items)


# ------------------------------------------------------------------ rendering
def render(db: Database, bodies: dict[str, str] | None = None,
           insert_before: dict[str, list[str]] | None = None, flatten: bool = False,
           insert_at: dict[int, str] | None = None) -> tuple[str, bool]:
    """The database text with proof bodies replaced (label -> text after
    ``$=`` through ``$.``) and statements inserted (``insert_at``: offset in
    the main file -> text put there as it is); flattened into one text when
    the database has includes and anything changes (or ``flatten``).
    Returns (text, flattened).
    """
    bodies = bodies or {}
    insert_before = insert_before or {}
    stmts = db.statements
    if not bodies and not insert_before and not insert_at and not flatten:
        return db.files[0].text, False
    reps: list[list[tuple[int, int, object]]] = [[] for _ in db.files]
    reps[0].extend((at, at, piece) for at, piece in (insert_at or {}).items())
    for label, body in bodies.items():
        st = stmts[label]
        reps[st.file].append((st.proof[0], st.proof[1] + 2, body))
    by_file: dict[int, list[str]] = {}
    for label in insert_before:
        by_file.setdefault(stmts[label].file, []).append(label)
    for fi, labels in by_file.items():
        anchors = _anchors(db, fi, labels)
        grouped: dict[int, list[str]] = {}
        for label in sorted(labels, key=lambda l: stmts[l].index):
            grouped.setdefault(anchors[label], []).extend(insert_before[label])
        for at, items in grouped.items():
            reps[fi].append((at, at, _insertion(db.files[fi].text, at, items)))
    flattened = bool(db.includes)
    for fi, start, end, inc in db.includes:
        reps[fi].append((start, end, inc))

    def build(fi: int) -> str:
        text = db.files[fi].text
        parts: list[str] = []
        pos = 0
        for a, b, piece in sorted(reps[fi], key=lambda r: (r[0], r[1])):
            if a < pos:
                raise MMError("overlapping edits", db.files[fi].path)
            parts.append(text[pos:a])
            if isinstance(piece, int):
                name = text[a + 2 : b - 2].strip()
                if piece < 0:
                    parts.append(f"$( Skip $[ {name} $] $)")
                else:
                    inner = build(piece)
                    sep = "" if inner.endswith("\n") else "\n"
                    parts.append(f"$( Begin $[ {name} $] $)\n{inner}{sep}$( End $[ {name} $] $)")
            else:
                parts.append(piece)
            pos = b
        parts.append(text[pos:])
        return "".join(parts)

    return build(0), flattened


def _edit_bodies(db: Database, edits: Edits) -> dict[str, str]:
    stmts = db.statements
    bodies: dict[str, str] = {}
    for label, proof in edits.proofs.items():
        st = stmts.get(label)
        if st is None or st.kind != "p":
            raise MMError(f"edit names {label!r}, which is not a $p statement", db.files[0].path)
        indent = proof_indent(db, st)
        if isinstance(proof, (list, tuple)):
            if not proof or not all(isinstance(t, str) for t in proof):
                raise MMError(f"the new proof of {label!r} must be a non-empty list of labels",
                              db.files[0].path)
            bodies[label] = normal_body(proof, indent)
        else:
            if hasattr(proof, "to_proof"):  # an expanded ProofTree
                proof = proof.to_proof()
            bodies[label] = compressed_body(proof, st.frame.hyps, indent)
    for label in edits.insert_before:
        st = stmts.get(label)
        if st is None or st.kind not in "ap":
            raise MMError(f"insertion before {label!r}, which is not a $a or $p statement", db.files[0].path)
    return bodies


def write_database(db: Database, out_path: str, recompress: bool = False, edits: Edits | None = None,
                   jobs: int | None = None) -> dict:
    """Write ``db`` to ``out_path``; see the module docstring.

    Returns ``out`` (path written), ``bytes``, ``recompressed`` (proofs
    re-encoded), ``edited`` (proofs replaced), ``inserted`` (texts
    inserted), ``flattened`` (includes inlined), ``kept`` (proofs left as
    they were because they do not verify: ``{label: reason}``) and
    ``seconds``. Edited text is re-read before it is written (an inserted
    statement that does not parse raises :class:`MMError` and nothing is
    written; proofs are not verified). With recompression and edits
    together, the edits are applied first and the edited database is
    recompressed as a whole, so new proofs given as label lists end up
    compressed too.
    """
    t0 = time.perf_counter()
    inputs = [f.path for f in db.files]
    check_output_path(out_path, inputs)
    edits = edits if edits else None
    edited = len(edits.proofs) if edits else 0
    inserted = sum(len(v) for v in edits.insert_before.values()) if edits else 0
    target = db
    flattened = False
    if edits is not None:
        text, flattened = render(db, _edit_bodies(db, edits), edits.insert_before)
        # the edited text must still be a database (declarations, labels, scopes)
        target = Database.from_string(text, os.path.abspath(out_path) + " (edited)")
    kept: dict[str, str] = {}
    recompressed = 0
    if recompress:
        labels = target.theorems()
        results = map_theorems(target, _recompressed, labels, jobs=jobs)
        bodies = {}
        for label in labels:
            body, why = results[label]
            bodies[label] = body
            if why is None:
                recompressed += 1
            else:
                kept[label] = why
        text, flat = render(target, bodies)
        flattened = flattened or flat
    elif edits is None:
        text = db.files[0].text
    size = write_atomic(out_path, text, inputs)
    return {"out": out_path, "bytes": size, "recompressed": recompressed, "edited": edited,
            "inserted": inserted, "flattened": flattened, "kept": kept,
            "seconds": round(time.perf_counter() - t0, 3)}
