"""Expressions as syntax trees: a lark grammar generated from a database's syntax axioms.

Why: later stages (features, unification, extraction, provers) want the
*structure* of a formula, not its symbol string. The database itself says how
formulas are built: every syntax axiom (``wi $a wff ( ph -> ps ) $.``) is a
grammar rule. This module turns those axioms into a lark grammar, one
nonterminal per typecode and one alternative per axiom, and parses any
expression into a :class:`SyntaxTree` whose shape is exactly the syntax
subproof a Metamath proof would use: a node's label is the syntax axiom's label
(or, for a variable, its ``$f`` label) and its children follow the order of
the axiom's mandatory ``$f`` hypotheses, which is the order in which a proof
pushes them.

Parsing strategy:

* Tokens are pre-split Metamath symbols (lark's own lexers mis-split symbols
  like ``GId`` or ``E.``). Each constant gets a safe terminal name derived
  from its bytes (``_C`` + hex; the leading ``_`` keeps constants out of the
  tree); each variable becomes a terminal of its ``$f`` typecode whose value
  is its ``$f`` label, so the tree's leaves are already hypothesis labels.
* LALR first. lark compiles the grammar and computes the LALR(1) table
  (with a faster, equivalent lookahead step: set.mm's 1,286 syntax axioms
  build in about 20 s instead of 70 s); the table is built once per
  :class:`Database` object and kept on disk keyed by a hash of the grammar
  (reloaded in under a second). A small driver of our own runs the table:
  lark resolves set.mm's shift/reduce conflicts on ``class: setvar`` as
  shifts, which would reject about 2% of statements, so the driver
  backtracks to the latest point where that unit reduction was also
  possible (see :class:`_Table`).
* Earley (lark, fed through a custom :class:`lark.lexer.Lexer`) for what the
  LALR driver cannot do: grammars with reduce/reduce conflicts, or a parse
  over its step budget. Built lazily; slow (up to seconds per set.mm
  statement). Results of both are cached per expression.

A statement whose typecode is not a grammar typecode (``|-``) is parsed as
the grammar typecode that accepts its body; each is tried, the ones that
worked before first. Syntax *theorems* (``weq $p wff x = y``) are not rules:
:func:`proof_syntax_tree` expands them into the axioms their proofs use, so
proof trees and parse trees compare equal.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
import time
from collections import Counter
from dataclasses import dataclass

from lark import Lark, Token
from lark.exceptions import LarkError, UnexpectedInput, UnexpectedToken
from lark.lexer import Lexer

from .database import Database, Statement
from .errors import MMError
from .proof import Proof
from .write import atomic_path

__all__ = ["SyntaxTree", "Grammar", "ExprParseError", "grammar_typecodes", "proof_syntax_tree",
           "proof_syntax_trees", "default_cache_dir", "instantiate"]

_LALR_DISK_MIN_SECONDS = 2.0  # cache a built LALR table on disk only when building it was slow
_MAX_CACHED = 500_000  # parse results kept per grammar before the cache is emptied
_LALR_STEPS_PER_TOKEN = 200  # backtracking budget of the LALR driver, then Earley takes over
_TABLE_FORMAT = 1  # bump when _Table changes: old cache files are then ignored


@dataclass(frozen=True, slots=True)
class SyntaxTree:
    """A node of an expression's syntax tree.

    ``label``: the syntax axiom's label, or the variable's ``$f`` label at a
    leaf. ``children``: one per mandatory ``$f`` hypothesis of the axiom, in
    the axiom's hypothesis order (the proof's stack order).
    """

    label: str
    children: tuple["SyntaxTree", ...] = ()

    def size(self) -> int:
        """Number of nodes."""
        n, todo = 0, [self]
        while todo:
            t = todo.pop()
            n += 1
            todo.extend(t.children)
        return n

    def __str__(self) -> str:
        if not self.children:
            return self.label
        return f"{self.label}({', '.join(str(c) for c in self.children)})"


class ExprParseError(MMError):
    """An expression that the grammar does not accept.

    Carries the statement's ``label`` (or None for a free-standing
    expression), the offending ``token`` (None at the end of the expression)
    and its 0-based ``position`` in the expression (the typecode is 0).
    """

    def __init__(self, message: str, path: str, line: int, col: int,
                 label: str | None, token: str | None, position: int):
        super().__init__(message, path, line, col)
        self.label = label
        self.token = token
        self.position = position


class _TokenLexer(Lexer):
    """Hands lark the tokens we already made (a list of ``Token``)."""

    __future_interface__ = 2  # lark calls lex(lexer_state, parser_state) with our list as .text

    def __init__(self, lexer_conf) -> None:  # lark instantiates it with its conf
        pass

    def lex(self, lexer_state, parser_state=None):
        return iter(lexer_state.text)


def _hex(s: str) -> str:
    return s.encode().hex().upper()


def grammar_typecodes(db: Database) -> list[str]:
    """The typecodes the grammar has a nonterminal for, sorted.

    Every ``$f`` typecode (``db.syntax_typecodes``), plus every typecode used
    only by ``$a`` statements: databases made for mmj2 (ql.mm, hol.mm) state
    ``wff`` syntax with ``$a wff ...`` axioms but have no ``wff`` variables,
    and their ``|-`` statements are ``wff``s. A typecode that ``$e`` or
    ``$p`` statements use (``|-``) is a logical one, never a grammar one,
    unless it has variables.
    """
    cached = db.__dict__.get("_grammar_typecodes")
    if cached is not None:
        return list(cached)
    logical = set()
    axiom = set()
    for st in db.statements.values():
        if st.kind in "ep":
            logical.add(st.expr[0])
        elif st.kind == "a":
            axiom.add(st.expr[0])
    out = db.__dict__["_grammar_typecodes"] = sorted(set(db.syntax_typecodes) | (axiom - logical))
    return list(out)


def default_cache_dir() -> str:
    """Where built LALR tables are kept: ``$MMREFACTOR_CACHE`` or ``~/.cache/mmrefactor``."""
    env = os.environ.get("MMREFACTOR_CACHE")
    if env:
        return os.path.join(env, "grammar")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mmrefactor", "grammar")


@dataclass(slots=True)
class _Rule:
    label: str
    typecode: str
    perm: tuple[int, ...]  # child i of the tree = text-order variable perm[i]
    shape: tuple  # the axiom's body: str constants and int child indexes (tree order)


class _Builder:
    """lark callbacks (via ``__default__``) that build SyntaxTree directly."""

    def __init__(self, rules: list[_Rule]):
        self._by_alias = {f"r{i}": r for i, r in enumerate(rules)}

    def __default__(self, data, children, meta):
        if data == "v":
            return SyntaxTree(children[0].value)
        r = self._by_alias[data]
        if not r.perm:
            return SyntaxTree(r.label)
        return SyntaxTree(r.label, tuple([children[j] for j in r.perm]))


class Grammar:
    """A database's syntax as a lark grammar, with LALR and Earley parsers.

    Build with :meth:`from_database` (once per database object). ``text`` is
    the generated lark grammar; ``typecodes`` the grammar typecodes;
    ``rules`` the syntax axioms used, ``skipped`` those left out and why;
    ``lalr_error`` says why no LALR parser exists (None when it does);
    ``build_seconds`` and ``lalr_from_disk`` describe the LALR build;
    ``stats`` counts parses by how they were done (``lalr``,
    ``lalr-backtrack``, ``lalr-budget`` (gave up), ``earley``, ``cached``).
    ``lalr=False`` skips the LALR table (Earley only: no build time, slow
    parses); ``cache_dir`` is as in :meth:`from_database`.
    """

    def __init__(self, db: Database, cache_dir: str | None | bool = None, lalr: bool = True):
        t0 = time.perf_counter()
        self.db = db
        self.typecodes = grammar_typecodes(db)
        tcset = set(self.typecodes)
        stmts = db.statements
        self.rules: list[_Rule] = []
        self.skipped: dict[str, str] = {}
        self._floats: dict[str, list[Statement]] = {}
        for st in stmts.values():
            if st.kind == "f":
                self._floats.setdefault(st.expr[1], []).append(st)
        alts: dict[str, list[str]] = {tc: [] for tc in self.typecodes}
        consts: set[str] = set()
        variables = db.variables
        for st in stmts.values():
            if st.kind != "a" or st.expr[0] not in tcset:
                continue
            body = st.expr[1:]
            vars_in = [s for s in body if s in variables]
            hyps = st.frame.hyps
            if len(set(vars_in)) != len(vars_in):
                self.skipped[st.label] = "a variable occurs twice (not context-free)"
                continue
            if any(stmts[h].kind != "f" for h in hyps):
                self.skipped[st.label] = "has $e hypotheses"
                continue
            hyp_vars = [stmts[h].expr[1] for h in hyps]
            perm = tuple(vars_in.index(v) for v in hyp_vars)
            where = {v: i for i, v in enumerate(hyp_vars)}
            shape = tuple(where[s] if s in variables else s for s in body)
            parts = []
            for s in body:
                if s in variables:
                    parts.append(self._nonterminal(stmts[hyps[where[s]]].expr[0]))
                else:
                    consts.add(s)
                    parts.append("_C" + _hex(s))
            alts[st.expr[0]].append(f"{' '.join(parts)} -> r{len(self.rules)}")
            self.rules.append(_Rule(st.label, st.expr[0], perm, shape))
        for tc in db.syntax_typecodes:
            alts[tc].append(f"V{_hex(tc)} -> v")
        self._const_term = {c: "_C" + _hex(c) for c in consts}
        self._var_term = {tc: "V" + _hex(tc) for tc in db.syntax_typecodes}
        # one shared token per constant and per $f label (labels and symbols never collide)
        self._tokens = {c: Token(t, c) for c, t in self._const_term.items()}
        for fs in self._floats.values():
            for f in fs:
                self._tokens[f.label] = Token(self._var_term[f.expr[0]], f.label)
        self._unique_floats = all(len(fs) == 1 for fs in self._floats.values())
        self._start = {tc: self._nonterminal(tc) for tc in self.typecodes}
        self._shape = {r.label: (r.typecode, r.shape) for r in self.rules}
        lines = ["%declare " + " ".join(sorted(self._const_term.values()) + sorted(self._var_term.values()))]
        for tc in self.typecodes:  # never empty: a $f typecode has its variables, others their $a
            lines.append(f"{self._start[tc]}: " + "\n    | ".join(alts[tc]))
        self.text = "\n".join(lines) + "\n"
        self.key = hashlib.sha256(("lark " + _lark_version() + "\n" + self.text).encode()).hexdigest()
        self._builder = _Builder(self.rules)
        self._earley: Lark | None = None
        self._cache: dict = {}
        self._prefer: dict[str, Counter] = {}
        self.stats = Counter()
        self.lalr_error: str | None = None
        self.lalr_from_disk = False
        self._lalr = None
        if lalr:
            self._lalr = self._build_lalr(default_cache_dir() if cache_dir is None else cache_dir)
        else:
            self.lalr_error = "LALR not requested"
        self.build_seconds = time.perf_counter() - t0

    @staticmethod
    def _nonterminal(tc: str) -> str:
        return "t_" + _hex(tc).lower()

    @classmethod
    def from_database(cls, db: Database, cache_dir: str | None | bool = None) -> "Grammar":
        """The grammar of ``db``, built on first use and kept on the database object.

        ``cache_dir``: where a slow-to-build LALR table is kept between runs
        (None: :func:`default_cache_dir`; False: no disk cache).
        """
        g = db.__dict__.get("_grammar")
        if g is None:
            g = db.__dict__["_grammar"] = cls(db, cache_dir)
        return g

    # ----- building -------------------------------------------------------
    def _lark_options(self, parser: str) -> dict:
        return dict(parser=parser, lexer=_TokenLexer, start=[self._start[t] for t in self.typecodes])

    def _build_lalr(self, cache_dir) -> "_Table | None":
        path = os.path.join(cache_dir, f"lalr{_TABLE_FORMAT}-{self.key[:24]}.pickle") if cache_dir else None
        if path and os.path.exists(path):
            try:
                with open(path, "rb") as fh:
                    table = pickle.load(fh)
                if isinstance(table, _Table) and table.key == self.key:
                    self.lalr_from_disk = True
                    return table
            except Exception:  # a stale or truncated cache file: rebuild it
                pass
        t0 = time.perf_counter()
        try:
            table = _Table.build(self)
        except LarkError as exc:  # reduce/reduce conflicts: no LALR parser, Earley only
            self.lalr_error = str(exc).splitlines()[0]
            return None
        if path and time.perf_counter() - t0 >= _LALR_DISK_MIN_SECONDS:
            try:
                os.makedirs(cache_dir, exist_ok=True)
                with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                    pickle.dump(table, fh, protocol=pickle.HIGHEST_PROTOCOL)
            except (OSError, MMError):
                pass  # a read-only cache is no reason to fail
        return table

    def _earley_parser(self) -> Lark:
        if self._earley is None:
            self._earley = Lark(self.text, ambiguity="resolve", **self._lark_options("earley"))
        return self._earley

    # ----- parsing --------------------------------------------------------
    def float_of(self, var: str, at: Statement | None = None) -> str:
        """The ``$f`` label of variable ``var`` (the one active at ``at`` when several)."""
        fs = self._floats.get(var)
        if not fs:
            raise KeyError(var)
        if len(fs) == 1 or at is None:
            return fs[-1].label
        for f in reversed(fs):
            if f is at or self.db.in_scope(f, at):
                return f.label
        return fs[-1].label

    def parse_statement(self, label: str) -> SyntaxTree:
        """The syntax tree of a database statement (its typecode's tree; ``|-`` as its body's)."""
        st = self.db.statements[label]
        return self.parse(st.expr, label=label, at=st)

    def parse(self, expr, label: str | None = None, at: Statement | None = None,
              floats: dict[str, str] | None = None) -> SyntaxTree:
        """Parse ``expr`` (symbols, typecode first) into its :class:`SyntaxTree`.

        ``label`` names the statement in errors; ``at`` picks the active
        ``$f`` of a variable declared more than once (defaults to the
        database statement ``label``); ``floats`` maps variables to ``$f``
        labels explicitly. Raises :class:`ExprParseError` naming the
        statement and the token when the expression does not parse.
        """
        expr = tuple(expr)
        if floats is None and self._unique_floats:
            hit = self._cache.get(expr)
            if hit is not None:
                self.stats["cached"] += 1
                return hit
        if not expr:
            raise self._error(expr, label, 0, "empty expression (a typecode is required)")
        db = self.db
        if at is None and label is not None:
            at = db.statements.get(label)
        tc = expr[0]
        values = []
        for i, s in enumerate(expr[1:], 1):
            if s in self._const_term:
                values.append(s)
            elif s in self._floats:
                values.append(floats[s] if floats and s in floats else self.float_of(s, at))
            else:
                what = "a variable without '$f'" if s in db.variables else \
                    "a constant that no syntax axiom uses" if s in db.constants else "not a declared math symbol"
                raise self._error(expr, label, i, f"cannot parse: {s!r} is {what}")
        key = expr if self._unique_floats and floats is None else (tc, tuple(values))
        if key is not expr:
            hit = self._cache.get(key)
            if hit is not None:
                self.stats["cached"] += 1
                return hit
        starts = self._candidates(tc)
        if not starts:
            raise self._error(expr, label, 0, f"cannot parse: typecode {tc!r} has no syntax axioms")
        tree = None
        shared = self._tokens
        if self._lalr is not None:
            types = [shared[v].type for v in values]
            for t in starts:
                tree = self._lalr.parse(types, values, self._start[t], self.rules, self.stats)
                if tree is not None:
                    break
        errors: list[tuple[int, str]] = []
        if tree is None:
            # positional tokens, so that a failure can name the symbol
            tokens = [Token(shared[v].type, v, start_pos=i) for i, v in enumerate(values, 1)]
            earley = self._earley_parser()
            for t in starts:
                try:
                    tree = self._convert(earley.parse(tokens, start=self._start[t]))
                    self.stats["earley"] += 1
                    break
                except UnexpectedInput as exc:
                    errors.append((self._where(exc, len(expr)), t))
        if tree is None:
            pos, t = max(errors, key=lambda e: e[0])
            what = f"unexpected {expr[pos]!r}" if pos < len(expr) else "unexpected end of expression"
            as_what = f" as {t}" if t != tc else ""
            raise self._error(expr, label, pos, f"cannot parse{as_what}: {what} (symbol {pos})")
        if tc not in self._start:
            self._prefer.setdefault(tc, Counter())[t] += 1
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()
        self._cache[key] = tree
        return tree

    def _candidates(self, tc: str) -> list[str]:
        if tc in self._start:
            return [tc]
        seen = self._prefer.get(tc)
        if not seen:
            return list(self.typecodes)
        return sorted(self.typecodes, key=lambda t: -seen[t])

    @staticmethod
    def _where(exc: UnexpectedInput, n: int) -> int:
        tok = getattr(exc, "token", None)
        if isinstance(exc, UnexpectedToken) and tok is not None and tok.type != "$END":
            return tok.start_pos
        return n

    def _convert(self, tree) -> SyntaxTree:
        """A lark Tree (Earley's output) -> SyntaxTree, iteratively."""
        build = self._builder.__default__
        out: list = []
        stack = [(tree, False)]
        while stack:
            node, done = stack.pop()
            if isinstance(node, Token):
                out.append(node)
                continue
            if not done:
                stack.append((node, True))
                for c in reversed(node.children):
                    stack.append((c, False))
                continue
            k = len(node.children)
            kids = out[len(out) - k:] if k else []
            if k:
                del out[len(out) - k:]
            out.append(build(node.data, kids, None))
        return out[0]

    def _error(self, expr: tuple, label: str | None, pos: int, message: str) -> ExprParseError:
        shown = " ".join(expr)
        text = f"{label}: {message} in '{shown}'" if label else f"{message} in '{shown}'"
        tok = expr[pos] if pos < len(expr) else None
        st = self.db.statements.get(label) if label else None
        if st is not None and st.expr == expr:
            src = self.db.files[st.file]
            e = src.error(_symbol_offset(src.text, st, pos), text)
            return ExprParseError(text, e.path, e.line, e.col, label, tok, pos)
        return ExprParseError(text, "<expression>", 0, 0, label, tok, pos)

    # ----- trees back to expressions -------------------------------------
    def expr_of(self, tree: SyntaxTree) -> tuple[str, ...]:
        """The expression a tree stands for, typecode first (inverse of parse)."""
        stmts = self.db.statements
        out: list[str] = []
        todo: list = [tree]
        while todo:
            t = todo.pop()
            if t.__class__ is str:
                out.append(t)
                continue
            if not t.children and t.label in stmts and stmts[t.label].kind == "f":
                out.append(stmts[t.label].expr[1])
                continue
            _, shape = self._shape[t.label]
            for p in reversed(shape):
                todo.append(p if p.__class__ is str else t.children[p])
        return (self.typecode_of(tree),) + tuple(out)

    def typecode_of(self, tree: SyntaxTree) -> str:
        st = self.db.statements.get(tree.label)
        if st is not None and st.kind == "f":
            return st.expr[0]
        return self._shape[tree.label][0]


@dataclass
class _Table:
    """A compact LALR(1) table taken from lark, and a driver that can backtrack.

    ``states[s][terminal or nonterminal] = n``: shift/goto to state n when
    n >= 0, reduce by rule ``-1 - n`` otherwise. ``rules[k] = (origin, size,
    keep, alias)``: keep lists the positions of the right-hand side that
    become children (nonterminals and variable tokens). ``units[Y]``: rules
    ``X: Y`` (``cv``: ``class: setvar``) as (X, rule index).

    lark resolves shift/reduce conflicts as shifts, which sends set.mm's
    ``( x e. A -> ph )`` down the ``( x e. A |-> B )`` road. The driver
    therefore remembers, at each shift made with a complete Y on top whose
    unit reduction to X is also a valid move, the state after that
    reduction, and backtracks to the latest such point when the input is
    rejected. Every move it makes is a valid LR(0) move, so any tree it
    returns derives the input. ``budget`` bounds the work per parse (then
    Earley takes over).
    """

    key: str
    states: list
    start_states: dict
    end_states: dict
    rules: list
    units: dict

    @classmethod
    def build(cls, grammar: "Grammar") -> "_Table":
        """Compile the grammar text with lark and run lark's LALR analysis (faster lookaheads)."""
        from lark.common import ParserConf
        from lark.load_grammar import load_grammar

        starts = [grammar._start[t] for t in grammar.typecodes]
        lg, _ = load_grammar(grammar.text, "<metamath grammar>", [], False)
        _, rules, _ = lg.compile(starts, set())
        analyzer = _analyzer_class()(ParserConf(rules, {}, starts))
        analyzer.compute_lalr()
        return cls.from_parse_table(analyzer.parse_table, rules, grammar.key)

    @classmethod
    def from_parse_table(cls, pt, all_rules, key: str) -> "_Table":
        from lark.parsers.lalr_analysis import Shift

        index: dict = {}
        rules: list = []
        units: dict = {}
        states: list = [None] * len(pt.states)

        def add(rule) -> int:
            k = index.get(rule)
            if k is None:
                k = index[rule] = len(rules)
                exp = rule.expansion
                keep = tuple(i for i, x in enumerate(exp) if not (x.is_term and x.name.startswith("_")))
                rules.append((rule.origin.name, len(exp), keep, rule.alias))
                if len(exp) == 1 and not exp[0].is_term:
                    units.setdefault(exp[0].name, []).append((rule.origin.name, k))
            return k

        for st, actions in pt.states.items():
            states[st] = {sym: arg if action is Shift else -1 - add(arg) for sym, (action, arg) in actions.items()}
        # unit rules that no lookahead reduces any more (lark resolved their conflicts as shifts)
        for r in all_rules:
            if len(r.expansion) == 1 and not r.expansion[0].is_term and r.alias:
                add(r)
        return cls(key, states, dict(pt.start_states), dict(pt.end_states), rules, units)

    def parse(self, types: list, values: list, start: str, grammar_rules: list, stats: Counter,
              budget: int | None = None) -> SyntaxTree | None:
        states = self.states
        rules = self.rules
        units = self.units
        end_state = self.end_states[start]
        n = len(types)
        if budget is None:
            budget = _LALR_STEPS_PER_TOKEN * (n + 10)
        state_stack = [self.start_states[start]]
        value_stack: list = []
        sym_stack: list = []  # the symbol each stack entry was reached by
        choices: list = []
        backtracked = False
        i = 0
        while True:
            budget -= 1
            if budget < 0:
                stats["lalr-budget"] += 1
                return None
            t = types[i] if i < n else "$END"
            act = states[state_stack[-1]].get(t)
            if act is None:
                if not choices:
                    return None
                i, state_stack, value_stack, sym_stack = choices.pop()
                backtracked = True
                continue
            if act >= 0:
                if units and sym_stack and sym_stack[-1] in units:
                    below = states[state_stack[-2]]
                    for x, k in units[sym_stack[-1]]:
                        g = below.get(x)
                        if g is not None:
                            choices.append((i, state_stack[:-1] + [g],
                                            value_stack[:-1] + [self._build(k, value_stack[-1:], grammar_rules)],
                                            sym_stack[:-1] + [x]))
                state_stack.append(act)
                value_stack.append(values[i])
                sym_stack.append(t)
                i += 1
                continue
            k = -1 - act
            origin, size, _, _ = rules[k]
            if size:
                kids = value_stack[-size:]
                del state_stack[-size:], value_stack[-size:], sym_stack[-size:]
            else:
                kids = []
            value = self._build(k, kids, grammar_rules)
            state_stack.append(states[state_stack[-1]][origin])
            value_stack.append(value)
            sym_stack.append(origin)
            if i >= n and state_stack[-1] == end_state:
                stats["lalr-backtrack" if backtracked else "lalr"] += 1
                return value

    def _build(self, k: int, kids: list, grammar_rules: list) -> SyntaxTree:
        _, _, keep, alias = self.rules[k]
        if alias == "v":
            return SyntaxTree(kids[keep[0]])
        r = grammar_rules[int(alias[1:])]
        if not r.perm:
            return SyntaxTree(r.label)
        kept = [kids[j] for j in keep]
        return SyntaxTree(r.label, tuple([kept[j] for j in r.perm]))


_ANALYZER = None


def _analyzer_class():
    """lark's LALR analyzer with a faster, equivalent ``compute_lookaheads``.

    lark adds every follow symbol of every lookback (state, rule) pair one at
    a time: about 2 x 10^8 set insertions for set.mm, most of the table's
    build time. Merging the follow sets per pair first (C-level set unions)
    and then inserting each distinct (state, symbol, rule) once gives the
    same lookaheads. Same table as lark (checked by the tests).
    """
    global _ANALYZER
    if _ANALYZER is None:
        from lark.parsers.lalr_analysis import LALR_Analyzer, digraph

        class FastLookaheads(LALR_Analyzer):
            def compute_lookaheads(self):
                read_sets = digraph(self.nonterminal_transitions, self.reads, self.directly_reads)
                follow_sets = digraph(self.nonterminal_transitions, self.includes, read_sets)
                interned: dict = {}  # equal follow sets are merged once
                merged: dict = {}
                for nt, lookbacks in self.lookback.items():
                    follow = frozenset(follow_sets[nt])
                    follow = interned.setdefault(follow, follow)
                    for pair in lookbacks:
                        have = merged.get(pair)
                        if have is None:
                            merged[pair] = {id(follow): follow}
                        else:
                            have[id(follow)] = follow
                for (state, rule), follows in merged.items():
                    la = state.lookaheads
                    for sym in frozenset().union(*follows.values()) if len(follows) > 1 else \
                            next(iter(follows.values())):
                        la[sym].add(rule)

        _ANALYZER = FastLookaheads
    return _ANALYZER


def _lark_version() -> str:
    import lark

    return getattr(lark, "__version__", "?")


_SYMBOL = re.compile(r"\S+")


def _symbol_offset(text: str, st: Statement, pos: int) -> int:
    """Character offset of expression symbol ``pos`` (0 = typecode) of a statement."""
    k = -2  # label, then the keyword, then the expression
    in_comment = False
    for m in _SYMBOL.finditer(text, st.start, st.end):
        w = m.group()
        if in_comment:
            in_comment = w != "$)"
            continue
        if w == "$(":
            in_comment = True
            continue
        if k == pos:
            return m.start()
        k += 1
    return st.start


# ----- proofs' own syntax trees -----------------------------------------------
def proof_syntax_trees(db: Database, proof: Proof) -> dict[int, SyntaxTree]:
    """``{node id: SyntaxTree}`` for every syntax step of a recorded proof.

    ``proof`` comes from ``check(db, label, record=True)``. A syntax step's
    tree is its label with its children's trees (in hypothesis order, the
    stack order). Steps applying a syntax *theorem* (``weq $p wff x = y``)
    are replaced by that theorem's own tree with its variables substituted,
    so the trees use syntax axioms and ``$f`` labels only, like
    :meth:`Grammar.parse`.
    """
    stmts = db.statements
    syntax = set(grammar_typecodes(db))
    out: dict[int, SyntaxTree] = {}
    for i, n in enumerate(proof.nodes):
        if n.expr[0] not in syntax:
            continue
        kids = tuple(out[c] for c in n.children)
        st = stmts[n.label]
        if st.kind == "p":
            out[i] = instantiate(_syntax_theorem_tree(db, n.label), dict(zip(st.frame.hyps, kids)))
        else:
            out[i] = SyntaxTree(n.label, kids)
    return out


def proof_syntax_tree(db: Database, proof: Proof, node: int | None = None) -> SyntaxTree:
    """The syntax subproof rooted at ``proof.nodes[node]`` (default: the root) as a tree.

    See :func:`proof_syntax_trees`; raises ValueError on a non-syntax step.
    """
    i = proof.root if node is None else node
    trees = proof_syntax_trees(db, proof)
    if i not in trees:
        n = proof.nodes[i]
        raise ValueError(f"{proof.theorem}: step {n.label} proves '{' '.join(n.expr)}', "
                         f"not a syntax expression")
    return trees[i]


def _syntax_theorem_tree(db: Database, label: str) -> SyntaxTree:
    cache = db.__dict__.setdefault("_syntax_theorem_trees", {})
    t = cache.get(label)
    if t is None:
        from .verify import check

        t = cache[label] = proof_syntax_tree(db, check(db, label, record=True))
    return t


def instantiate(tree: SyntaxTree, subst: dict[str, SyntaxTree]) -> SyntaxTree:
    """Replace the leaves of ``tree`` named in ``subst`` (``$f`` labels, or
    metavariables) by the trees given there."""
    if not tree.children:
        return subst.get(tree.label, tree)
    return SyntaxTree(tree.label, tuple([instantiate(c, subst) for c in tree.children]))
