"""Statements, scopes, frames, mandatory hypotheses and ``$d``: a parsed database.

``Database.from_file`` reads a whole ``.mm`` database (following ``$[ $]``
includes, each file once) and checks everything the Metamath spec asks of
declarations: symbols declared before use, one active ``$f`` per variable,
balanced scopes, unique labels. Proofs are kept as source spans and decoded
only when a verifier or a proof view asks for them.

Mandatory hypotheses and mandatory ``$d`` pairs are computed in exactly one
place, :func:`_frame`, and every later stage (verifier, unifier, extractor,
prover) reads them from ``Statement.frame``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import MMError
from .reader import SourceFile, include_path, load_source, scan, source_from_text

LABEL_OK = re.compile(r"[A-Za-z0-9._-]+\Z")
_COMMENT = re.compile(r"\$\((?:\s|\Z).*?\s\$\)", re.S)


@dataclass(slots=True)
class Frame:
    """What an assertion needs from its caller.

    ``hyps``: mandatory hypotheses in file order (``$f`` and ``$e`` mixed).
    ``dvs``: mandatory disjoint-variable pairs, each sorted.
    ``dv_groups``: every ``$d`` statement in scope at the assertion, dummy
    variables included; the pairs a proof of this assertion may rely on.
    """

    hyps: tuple[str, ...]
    dvs: frozenset
    dv_groups: tuple[tuple[str, ...], ...]
    _all_dvs: frozenset | None = None

    @property
    def all_dvs(self) -> frozenset:
        """Every ``$d`` pair in scope (sorted pairs), dummies included."""
        if self._all_dvs is None:
            pairs = set()
            for g in self.dv_groups:
                for i, a in enumerate(g):
                    for b in g[i + 1 :]:
                        pairs.add((a, b) if a < b else (b, a))
            self._all_dvs = frozenset(pairs)
        return self._all_dvs


@dataclass(slots=True, eq=False)
class Statement:
    """A labeled statement: ``$f``, ``$e``, ``$a`` or ``$p``.

    ``expr`` holds the math symbols with the typecode first. ``start``/``end``
    span the statement in its file (label to just past ``$.``); ``proof``
    spans the text between ``$=`` and ``$.``; ``comment`` spans the comment
    just before the statement (its description), when there is one.
    """

    label: str
    kind: str
    expr: tuple[str, ...]
    index: int
    file: int
    start: int
    end: int
    depth: int
    scope: int
    frame: Frame | None = None
    proof: tuple[int, int] | None = None
    comment: tuple[int, int] | None = None

    @property
    def typecode(self) -> str:
        return self.expr[0]

    @property
    def is_assertion(self) -> bool:
        return self.kind in "ap"

    @property
    def is_hypothesis(self) -> bool:
        return self.kind in "fe"


@dataclass
class _EndState:
    """The parser's state at the end of a database (the outermost scope), kept so that
    :meth:`Database.extended` can go on parsing without reading the database again."""

    outer: "_Scope"
    active_vars: set
    active_f: dict
    count: int
    late_f: list
    seen_files: set


@dataclass
class _Scope:
    vars: list = field(default_factory=list)
    fvars: list = field(default_factory=list)
    ehyps: list = field(default_factory=list)
    dgroups: list = field(default_factory=list)
    open_at: tuple[int, int] = (0, 0)
    id: int = 0


class Database:
    """A parsed Metamath database: files, statements in order, symbols."""

    def __init__(self) -> None:
        self.files: list[SourceFile] = []
        self.statements: dict[str, Statement] = {}
        self.constants: set[str] = set()
        self.variables: set[str] = set()
        self.var_typecodes: dict[str, str] = {}
        self.syntax_typecodes: set[str] = set()
        self.includes: list[tuple[int, int, int, int]] = []  # (file, start, end, included file)
        self.scope_parent: list[int] = [-1]  # scope id -> enclosing scope id (0 is the outermost)
        self._scope_chains: dict[int, frozenset] = {}

    # ----- construction -------------------------------------------------
    @classmethod
    def from_file(cls, path: str) -> "Database":
        db = cls()
        _Parser(db).run(load_source(str(path)))
        return db

    @classmethod
    def from_string(cls, text: str, path: str = "<string>") -> "Database":
        db = cls()
        _Parser(db).run(source_from_text(text, path))
        return db

    def extended(self, text: str, path: str = "<extension>") -> "Database":
        """A new database: this one followed by ``text`` as one more file at the
        outermost scope, as if appended to the last file, without parsing this
        one again. This one is not changed; the statements they have in common
        are shared, so neither may be edited in place.

        Why: checking a batch of new theorems against set.mm by parsing a copy
        of its 41 MB costs seconds per batch; this costs a copy of the label
        index. Errors in ``text`` name ``path`` and its own line numbers.
        """
        end = self.__dict__.get("_end")
        if end is None:
            # a programming error, not a fault of the database: not an MMError, which callers report as one
            raise ValueError("this database was not parsed to its end by from_file/from_string; it cannot be extended")
        db = Database()
        db.files = list(self.files)
        db.statements = dict(self.statements)
        db.constants, db.variables = set(self.constants), set(self.variables)
        db.var_typecodes, db.syntax_typecodes = dict(self.var_typecodes), set(self.syntax_typecodes)
        db.includes, db.scope_parent = list(self.includes), list(self.scope_parent)
        db._scope_chains = dict(self._scope_chains)
        p = _Parser(db)
        p.resume(end)
        p.run(source_from_text(text, path))
        return db

    # ----- access ---------------------------------------------------------
    def __getitem__(self, label: str) -> Statement:
        return self.statements[label]

    def __contains__(self, label: str) -> bool:
        return label in self.statements

    def __len__(self) -> int:
        return len(self.statements)

    def labels(self, kinds: str = "feap") -> list[str]:
        return [l for l, s in self.statements.items() if s.kind in kinds]

    def theorems(self) -> list[str]:
        return self.labels("p")

    def is_syntax(self, label: str) -> bool:
        """A syntax step builds a term (its typecode is a variable type)."""
        return self.statements[label].expr[0] in self.syntax_typecodes

    def in_scope(self, hyp: Statement, at: Statement) -> bool:
        """Whether hypothesis ``hyp`` is active at statement ``at``."""
        if hyp.index >= at.index:
            return False
        chain = self._scope_chains.get(at.scope)
        if chain is None:
            ids, s = [], at.scope
            while s >= 0:
                ids.append(s)
                s = self.scope_parent[s]
            chain = self._scope_chains[at.scope] = frozenset(ids)
        return hyp.scope in chain

    def text_of(self, st: Statement) -> str:
        return self.files[st.file].text[st.start : st.end]

    def sha256(self) -> str:
        """A hash of the database's text (every file, in read order): what a
        dataset, a model or a split was made from."""
        import hashlib

        h = hashlib.sha256()
        for f in self.files:
            h.update(f.text.encode("ascii", "replace"))
            h.update(b"\0")
        return h.hexdigest()

    def comment_of(self, label: str) -> str:
        st = self.statements[label]
        if st.comment is None:
            return ""
        a, b = st.comment
        return self.files[st.file].text[a + 2 : b - 2].strip()

    def proof_tokens(self, label: str) -> list[str]:
        """The raw proof tokens of a ``$p`` (comments inside the proof removed)."""
        st = self.statements[label]
        if st.proof is None:
            raise KeyError(f"{label} is not a $p statement")
        a, b = st.proof
        body = self.files[st.file].text[a:b]
        if "$(" in body:
            body = _COMMENT.sub(" ", body)
        return body.split()

    def error_at(self, st: Statement, message: str, token: str | None = None) -> MMError:
        src = self.files[st.file]
        off = src.token_offset(st.start, st.end, token) if token else st.start
        return src.error(off, message)


class _Parser:
    """Builds a Database from keyword events; raises MMError on bad input."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.scopes: list[_Scope] = [_Scope()]
        self.active_vars: set[str] = set()
        self.active_f: dict[str, str] = {}
        self.seen_files: set[str] = set()
        self.count = 0
        self._ctx = None  # (active $e labels, active $d groups), rebuilt after a change
        self._late_f: list[tuple[str, str, str]] = []  # ($e, variable, its later $f)

    def run(self, src: SourceFile) -> None:
        import gc

        enabled = gc.isenabled()
        gc.disable()  # hundreds of thousands of small tuples, no cycles: collection only costs time
        try:
            self.parse_file(src)
        finally:
            if enabled:
                gc.enable()
        if len(self.scopes) > 1:
            fi, off = self.scopes[-1].open_at
            raise self.db.files[fi].error(off, "unterminated scope: '${' has no matching '$}'")
        self.db._end = _EndState(self.scopes[0], self.active_vars, self.active_f, self.count, self._late_f,
                                 self.seen_files)

    def resume(self, end: "_EndState") -> None:
        """Start from where a finished parse ended (copies: the finished database is not touched)."""
        sc = end.outer
        self.scopes = [_Scope(list(sc.vars), list(sc.fvars), list(sc.ehyps), list(sc.dgroups), sc.open_at, sc.id)]
        self.active_vars, self.active_f = set(end.active_vars), dict(end.active_f)
        self.count, self._late_f, self.seen_files = end.count, list(end.late_f), set(end.seen_files)

    def parse_file(self, src: SourceFile) -> None:
        import os

        db = self.db
        self.seen_files.add(os.path.realpath(src.path))
        fi = len(db.files)
        db.files.append(src)
        text = src.text
        events = scan(src)
        n = len(events)
        i = 0
        pending: list[str] = []
        pending_at = 0
        comment: tuple[int, int] | None = None
        stmts = db.statements
        while i < n:
            kind, off, pay = events[i]
            i += 1
            if kind == "text":
                chunk = text[off:pay]
                toks = chunk.split()
                if toks:
                    if pending:
                        raise src.error(src.token_offset(off, pay, toks[0]),
                                        f"unexpected token {toks[0]!r} (a label takes one token)")
                    pending = toks
                    pending_at = off + len(chunk) - len(chunk.lstrip())
                    if len(toks) > 1:
                        raise src.error(src.token_offset(off, pay, toks[1]),
                                        f"unexpected token {toks[1]!r} after {toks[0]!r}: expected a keyword")
                continue
            if kind == "comment":
                comment = (off, pay)
                continue
            c = pay
            if c in "feap":
                if not pending:
                    raise src.error(off, f"${c} statement without a label")
                label = pending[0]
                start = pending_at
                pending = []
                if not LABEL_OK.match(label):
                    raise src.error(start, f"invalid label {label!r} (letters, digits, '.', '-', '_' only)")
                if label in stmts:
                    raise src.error(start, f"duplicate label {label!r}")
                if label in db.constants or label in db.variables:
                    raise src.error(start, f"label {label!r} is already a math symbol")
                body, i, end_kw, end_off = self._body(src, events, i, off, "=." if c == "p" else ".")
                proof = None
                if end_kw == "=":
                    pstart = events[i - 1][1] + 2
                    ptoks, i, _, pend = self._body(src, events, i, end_off, ".")
                    if not ptoks:
                        raise src.error(end_off, f"empty proof for {label!r}")
                    proof = (pstart, pend)
                    end_off = pend
                elif c == "p":
                    raise src.error(off, f"$p statement {label!r} has no proof ('$=' missing)")
                st = Statement(label, c, tuple(body), self.count, fi, start, end_off + 2,
                               len(self.scopes) - 1, self.scopes[-1].id, None, proof, comment)
                self.count += 1
                comment = None
                self._check_expr(src, st, off)
                if c == "f":
                    self._add_f(src, st, off)
                elif c == "e":
                    self.scopes[-1].ehyps.append(label)
                    self._ctx = None
                else:
                    st.frame = self._frame(st)
                stmts[label] = st
                continue
            if pending:
                raise src.error(pending_at, f"unexpected token {pending[0]!r} before '${c}'")
            if c == "{":
                sc = _Scope()
                sc.open_at = (fi, off)
                sc.id = len(db.scope_parent)
                db.scope_parent.append(self.scopes[-1].id)
                self.scopes.append(sc)
                self._ctx = None
                comment = None
            elif c == "}":
                if len(self.scopes) == 1:
                    raise src.error(off, "'$}' without a matching '${'")
                sc = self.scopes.pop()
                self._ctx = None
                for v in sc.vars:
                    self.active_vars.discard(v)
                for v in sc.fvars:
                    del self.active_f[v]
                comment = None
            elif c in "cvd":
                body, i, _, end_off = self._body(src, events, i, off, ".")
                self._declare(src, c, body, off, end_off)
                comment = None
            elif c == "[":
                body, i, _, end_off = self._body(src, events, i, off, "]")
                if len(body) != 1:
                    raise src.error(off, "'$[' takes exactly one file name")
                path = include_path(src.path, body[0])
                import os

                if os.path.realpath(path) not in self.seen_files:
                    try:
                        inc = load_source(path)
                    except MMError as exc:
                        raise src.error(src.token_offset(off, end_off, body[0]),
                                        f"cannot include {body[0]!r}: {exc.message}") from None
                    db.includes.append((fi, off, end_off + 2, len(db.files)))
                    self.parse_file(inc)
                else:
                    db.includes.append((fi, off, end_off + 2, -1))
            else:
                raise src.error(off, f"unexpected '${c}'")
        if pending:
            raise src.error(pending_at, f"unexpected token {pending[0]!r} at end of file")

    def _body(self, src, events, i, kw_off, ends):
        """Collect tokens up to one of the keywords in ``ends``.

        Returns (tokens, next event index, the closing keyword, its offset).
        """
        text = src.text
        toks: list[str] = []
        n = len(events)
        while i < n:
            kind, off, pay = events[i]
            i += 1
            if kind == "text":
                toks.extend(text[off:pay].split())
            elif kind == "kw":
                if pay in ends:
                    return toks, i, pay, off
                want = " or ".join("'$" + e + "'" for e in ends)
                raise src.error(off, f"expected {want} before '${pay}'")
        want = " or ".join("'$" + e + "'" for e in ends)
        raise src.error(kw_off, f"statement not terminated: expected {want}")

    def _declare(self, src, c, body, off, end_off):
        db = self.db
        if not body:
            raise src.error(off, f"empty '${c}' statement")
        if c == "c":
            if len(self.scopes) > 1:
                raise src.error(off, "'$c' is only allowed in the outermost scope")
            for s in body:
                if s in db.constants:
                    raise src.error(src.token_offset(off, end_off, s), f"constant {s!r} declared twice")
                if s in db.variables:
                    raise src.error(src.token_offset(off, end_off, s), f"{s!r} is already a variable")
                if s in db.statements:
                    raise src.error(src.token_offset(off, end_off, s), f"math symbol {s!r} is already a label")
                db.constants.add(s)
        elif c == "v":
            for s in body:
                if s in db.constants:
                    raise src.error(src.token_offset(off, end_off, s), f"{s!r} is already a constant")
                if s in self.active_vars:
                    raise src.error(src.token_offset(off, end_off, s), f"variable {s!r} declared twice")
                if s in db.statements:
                    raise src.error(src.token_offset(off, end_off, s), f"math symbol {s!r} is already a label")
                self.active_vars.add(s)
                db.variables.add(s)
                self.scopes[-1].vars.append(s)
        else:
            if len(body) < 2:  # the spec's grammar: '$d' variable variable variable* '$.'
                raise src.error(off, "'$d' needs at least two variables")
            seen = set()
            for s in body:
                if s not in self.active_vars:
                    raise src.error(src.token_offset(off, end_off, s),
                                    f"'$d' on {s!r}, which is not an active variable")
                if s in seen:
                    raise src.error(src.token_offset(off, end_off, s), f"variable {s!r} repeated in '$d'")
                seen.add(s)
            self.scopes[-1].dgroups.append(tuple(body))
            self._ctx = None

    def _check_expr(self, src, st: Statement, off: int) -> None:
        db = self.db
        if not st.expr:
            raise src.error(off, f"{st.label}: empty statement (a typecode is required)")
        if st.expr[0] not in db.constants:
            raise db.error_at(st, f"{st.label}: typecode {st.expr[0]!r} is not a declared constant", st.expr[0])
        av = self.active_vars
        consts = db.constants
        for s in st.expr:
            if s not in consts and s not in av:
                what = "an inactive variable" if s in db.variables else "an undeclared math symbol"
                raise db.error_at(st, f"{st.label}: {s!r} is {what}", s)

    def _add_f(self, src, st: Statement, off: int) -> None:
        if len(st.expr) != 2 or st.expr[1] not in self.active_vars:
            raise self.db.error_at(st, f"{st.label}: '$f' must be a typecode and one active variable")
        v = st.expr[1]
        if v in self.active_f:
            raise self.db.error_at(st, f"{st.label}: variable {v!r} already has an active '$f' "
                                       f"({self.active_f[v]})", v)
        self.active_f[v] = st.label
        stmts = self.db.statements
        late = [e for sc in self.scopes for e in sc.ehyps if v in stmts[e].expr]
        if late:  # an active $e uses v before this $f: an error if an assertion follows (see _frame)
            self._late_f.append((late[0], v, st.label))
        self.scopes[-1].fvars.append(v)
        self.db.var_typecodes[v] = st.expr[0]
        self.db.syntax_typecodes.add(st.expr[0])

    def _check_late_f(self, ess: list[str]) -> None:
        """Like metamath.exe, once an assertion makes an $e mandatory: its variables need their
        $f *before* the $e. Pairs no longer both active can never be again, so they are dropped."""
        for e, v, f in self._late_f:
            if e in ess and self.active_f.get(v) == f:
                raise self.db.error_at(self.db.statements[e], f"{e}: variable {v!r} is used before its "
                                                              f"'$f' ({f})", v)
        self._late_f.clear()

    def _frame(self, st: Statement) -> Frame:
        """Mandatory hypotheses and $d pairs of an assertion (the one place)."""
        stmts = self.db.statements
        av = self.active_vars
        if self._ctx is None:
            self._ctx = ([e for sc in self.scopes for e in sc.ehyps],
                         tuple(g for sc in self.scopes for g in sc.dgroups))
        ess, groups = self._ctx
        if self._late_f:
            self._check_late_f(ess)
        mvars = av.intersection(st.expr)
        for e in ess:
            mvars.update(av.intersection(stmts[e].expr))
        hyps = []
        for v in mvars:
            f = self.active_f.get(v)
            if f is None:
                raise self.db.error_at(st, f"{st.label}: variable {v!r} has no active '$f'", v)
            hyps.append(f)
        if ess:
            hyps.extend(ess)
            hyps.sort(key=lambda l: stmts[l].index)
        elif len(hyps) > 1:
            hyps.sort(key=lambda l: stmts[l].index)
        pairs = set()
        for g in groups:
            m = [v for v in g if v in mvars]
            for a_i, a in enumerate(m):
                for b in m[a_i + 1 :]:
                    pairs.add((a, b) if a < b else (b, a))
        return Frame(tuple(hyps), frozenset(pairs), groups)
