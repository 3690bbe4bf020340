"""Rewrite a whole library with new theorems (``mmrefactor rewrite``).

Input: a database and a theorems file (T.json, written by ``mmrefactor
extract``): each new theorem's statement, ``$e`` hypotheses, ``$d`` pairs and
normal (RPN) proof. Output: a complete database in which

* each new theorem sits, as ``${ $e... $d... $( comment $) $p $}`` with a
  compressed proof, at the outermost scope just before the top-level item
  (statement or outermost ``${ $}`` block) holding its first use, and after
  every statement its own proof needs (never inside another block: that
  would make the block's ``$e`` mandatory); its label and hypothesis labels
  collide with no label and no math symbol;
* every occurrence of a new theorem's proof pattern in every proof is one
  application of it, the rewritten proofs replacing the old ones
  (recompressed); untouched proofs stay byte-identical. The new theorems'
  own proofs are rewritten too, with the new theorems that have smaller
  proofs (which are then inserted before them).

Why a pattern and not a statement match: REFACTOR rewrites proofs by
matching the new theorem's *proof tree* (labels and arities equal) with its
hypotheses as wildcards: its ``$e`` leaves and its variables' ``$f`` leaves
bind, consistently, to whole subproofs. The application's children are then
those subproofs, one per mandatory hypothesis. A variable the pattern never
builds (it only occurs in an unused hypothesis) is bound by unifying the
theorem's hypotheses with the proof's own steps (:mod:`metamath.unify`),
and its syntax proof is taken from an identical step of the same proof or
built from the grammar (:mod:`metamath.grammar`). Dummy variables of the
pattern match any variable of their type (renaming). An occurrence is used
only when it saves expanded-tree nodes, its ``$d`` conditions hold in the
proof, and the proof comes after the theorem's own dependencies.

Proofs are compared as hash-consed DAGs, so "the same subtree" is one node
id, and a shared step is rewritten once for all its uses. Overlapping
occurrences are taken outermost-first per tree path; nested occurrences
inside the bound subproofs are rewritten too.

Order: every new theorem is inserted, so its own proof is a fixed cost and
the library's size is a sum of independent proof sizes; the order in which
theorems are applied is therefore chosen per proof, to make that proof
smallest (every order when at most :data:`EXHAUSTIVE` theorems apply to it,
else greedy on the saving in that proof, recounting after each). A
theorem's ``nodes_saved`` is what it saved where it was applied (other new
theorems' proofs included) minus its own proof as given, so they add up to
``proof_nodes_before - proof_nodes_after``. Sizes are expanded proof-tree
nodes (syntax steps included); ``compressed_bytes`` counts the characters of
the proofs as written other than white space (line layout aside).

Text edits: rewritten proofs are laid out like the proofs they replace
(:func:`metamath.write.proof_indent`); the new theorems are placed by this
module's own rule (the start of a top-level item) rather than by
:class:`metamath.write.Edits`, whose anchors may stay inside a block that
declares variables, where that block's ``$d`` would become mandatory.
Databases with ``$[ $]`` includes are refused (flatten them first).

The output is verified by our verifier and by ``metamath "verify proof *"``
before it is moved into place (temporary file + ``os.replace``); if either
rejects it nothing is written and :class:`RewriteError` names the failing
proof. The input is never overwritten.

Proof work runs on all cores through :func:`metamath.parallel.map_theorems`
in one pass (each worker verifies, matches, rewrites and recompresses its
proofs; only the new proof texts come back), then a second pass verifies and
measures the output. On set.mm that is about 6 minutes on 2 cores.
"""
from __future__ import annotations

import bisect
import json
import os
import tempfile
import time
from dataclasses import dataclass, field

from metamath.compressed import compress_proof, format_proof_body
from metamath.database import LABEL_OK, Database
from metamath.errors import MMError, ProofError
from metamath.judge import JudgeUnavailable, metamath_verdict
from metamath.parallel import map_theorems
from metamath.proof import Proof, ProofNode
from metamath.reader import scan
from metamath.verify import check, dv_violations
from metamath.write import WIDTH, proof_indent

from .theorems import (TheoremsFileError, block, hypothesis_labels, insert_theorems, load_theorems,
                       normal_proof_text, outer_floats)

__all__ = ["RewriteError", "NewTheorem", "Pattern", "Dag", "RewriteResult",
           "rewrite_database", "rewrite_file", "match_at", "apply_matches",
           "find_matches", "best_rewrite", "EXHAUSTIVE"]

class RewriteError(Exception):
    """Rewriting failed (a bad theorems file, a theorem or rewritten proof
    that does not verify); nothing was written. ``failed``: the labels of
    the proofs that failed, when known."""

    def __init__(self, message: str, failed: list[str] | None = None):
        super().__init__(message)
        self.failed = failed or []


# ================================================================== proofs as hash-consed DAGs
class Dag:
    """A proof as a hash-consed DAG: one node per distinct subproof.

    ``labels[i]``, ``kids[i]`` (node ids, all smaller than ``i``) and
    ``exprs[i]`` describe node ``i``; ``root`` is the conclusion. Two nodes
    with the same label and children are the same node.
    """

    __slots__ = ("labels", "kids", "exprs", "root", "_index", "_sizes", "_by_label")

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.kids: list[tuple[int, ...]] = []
        self.exprs: list[tuple[str, ...]] = []
        self.root = -1
        self._index: dict[tuple, int] = {}
        self._sizes: list[int] = []
        self._by_label: dict[str, list[int]] | None = None

    @classmethod
    def from_proof(cls, proof: Proof) -> "Dag":
        d = cls()
        nodes = proof.nodes
        new: dict[int, int] = {}
        stack = [(proof.root, False)]
        while stack:  # post-order from the root: unreachable steps are dropped
            i, done = stack.pop()
            if i in new:
                continue
            n = nodes[i]
            if not done and n.children:
                stack.append((i, True))
                stack.extend((c, False) for c in reversed(n.children) if c not in new)
                continue
            new[i] = d.add(n.label, tuple(new[c] for c in n.children), n.expr)
        d.root = new[proof.root]
        return d

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, label: str, kids: tuple[int, ...], expr: tuple[str, ...]) -> int:
        key = (label, kids)
        i = self._index.get(key)
        if i is None:
            i = self._index[key] = len(self.labels)
            self.labels.append(label)
            self.kids.append(kids)
            self.exprs.append(expr)
            self._sizes.append(1 + sum(self._sizes[c] for c in kids))
            self._by_label = None
        return i

    def nodes_with(self, label: str) -> list[int]:
        """The nodes applying ``label`` (an index built on first use)."""
        if self._by_label is None:
            idx: dict[str, list[int]] = {}
            for i, l in enumerate(self.labels):
                idx.setdefault(l, []).append(i)
            self._by_label = idx
        return self._by_label.get(label, [])

    def size(self, i: int) -> int:
        """Nodes of the expanded tree under node ``i``."""
        return self._sizes[i]

    def tree_size(self) -> int:
        return self._sizes[self.root]

    def essential_size(self, syntax_typecodes) -> int:
        ess = [0] * len(self.labels)
        for i, k in enumerate(self.kids):
            ess[i] = (self.exprs[i][0] not in syntax_typecodes) + sum(ess[c] for c in k)
        return ess[self.root]

    def reachable(self) -> list[int]:
        seen = [False] * len(self.labels)
        seen[self.root] = True
        for i in range(self.root, -1, -1):
            if seen[i]:
                for c in self.kids[i]:
                    seen[c] = True
        return [i for i, s in enumerate(seen) if s]

    def to_proof(self, theorem: str) -> Proof:
        return Proof(theorem, [ProofNode(l, e, k) for l, e, k in zip(self.labels, self.exprs, self.kids)],
                     self.root)


# ================================================================== patterns
@dataclass
class Pattern:
    """A new theorem's proof tree in pre-order (node 0 the root).

    ``wild[i]`` is None for a node that must be matched literally (same
    label, same number of children), else a wildcard key: ``('e', label)``
    for a ``$e`` hypothesis leaf, ``('v', var)`` for the ``$f`` leaf of a
    variable of the statement or hypotheses, ``('d', var)`` for the ``$f``
    leaf of a dummy variable (binds a variable leaf of ``typecode[i]``).
    """

    labels: list[str]
    kids: list[tuple[int, ...]]
    wild: list[tuple | None]
    typecode: list[str]
    literals: frozenset = frozenset()  # the labels a proof must apply to hold the pattern

    @property
    def trivial(self) -> bool:
        return self.wild[0] is not None


@dataclass
class NewTheorem:
    """A theorem of T.json, checked and ready to apply."""

    index: int
    label: str                                  # final, collision-free
    proposed: str                               # the label T.json proposed
    statement: tuple[str, ...]
    hyps: list[tuple[str, tuple[str, ...]]]     # ($e label, expression), final labels
    dv: list[tuple[str, str]]
    proof: list[str]                            # normal proof, final hypothesis labels
    source_proofs: list[str] = field(default_factory=list)
    method: str = ""
    frame_hyps: tuple[str, ...] = ()            # mandatory hypotheses in order
    frame_dvs: tuple = ()                       # mandatory $d pairs
    hyp_kind: dict = field(default_factory=dict)  # frame hyp -> ('e', label) | ('v', var)
    pattern: Pattern | None = None
    own_nodes: int = 0                          # its own proof's expanded tree
    own_proof: Proof | None = None
    dep_item: int = -1                          # top-level item of its last dependency


# ================================================================== layout of the file
@dataclass
class _Layout:
    """Top-level items of a one-file database: each depth-0 statement and each
    outermost ``${ $}`` block, by start offset; where new text may go."""

    starts: list[int]
    insert_at: list[int]   # per item: where to insert before it (before its description comment)
    indent: list[str]

    def item_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) - 1


def _layout(db: Database) -> _Layout:
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
    return _Layout(starts, insert, indent)


# ================================================================== preparing the new theorems
def _outer_floats(db: Database) -> dict[str, str]:
    """variable -> label of its outermost-scope ``$f``."""
    return {v: f for _, v, f, _ in outer_floats(db)}


def _plan(db: Database, data: dict, tpath: str) -> list[NewTheorem]:
    """Validate T.json against the database; pick collision-free labels."""
    taken = set(db.statements) | db.constants | db.variables
    floats = _outer_floats(db)
    symbols = db.constants | db.variables
    out: list[NewTheorem] = []
    for k, t in enumerate(data["theorems"]):
        proposed = t["label"]
        where = f"{tpath}: theorem {proposed!r}"
        if not LABEL_OK.match(proposed):
            raise RewriteError(f"{where}: invalid label (letters, digits, '.', '-', '_' only)")
        hyps_in = t.get("hypotheses", [])
        # the theorem and its hypotheses (label.1, label.2, ...) must all be free
        base = proposed
        n = 1
        while True:
            label = base if n == 1 else f"{base}-{n}"
            names = hypothesis_labels(label, len(hyps_in))
            if label not in taken and not any(h in taken for h in names):
                break
            n += 1
        rename = {h["label"]: names[i] for i, h in enumerate(hyps_in)}
        stmt = tuple(t["statement"].split())
        hyps = [(names[i], tuple(h["statement"].split())) for i, h in enumerate(hyps_in)]
        for what, expr in [("statement", stmt)] + [(f"hypothesis {h['label']!r}", e)
                                                    for h, (_, e) in zip(hyps_in, hyps)]:
            if not expr or expr[0] not in db.constants:
                raise RewriteError(f"{where}: {what} must start with a typecode constant")
            for s in expr:
                if s not in symbols:
                    raise RewriteError(f"{where}: {what}: {s!r} is not a math symbol of the database")
                if s in db.variables and s not in floats:
                    raise RewriteError(f"{where}: variable {s!r} has no outermost-scope $f")
        for v in list(t.get("dummies", [])) + [x for p in t.get("dv", []) for x in p]:
            if v not in floats:
                raise RewriteError(f"{where}: {v!r} is not a variable with an outermost-scope $f")
        dv = []
        for a, b in t.get("dv", []):
            if a == b:
                raise RewriteError(f"{where}: $d pair of {a!r} with itself")
            dv.append((a, b))
        proof = []
        for l in t["proof"]:
            if l in rename:
                proof.append(rename[l])
            elif l == "?":
                raise RewriteError(f"{where}: the proof is incomplete ('?')")
            elif l not in db.statements:
                raise RewriteError(f"{where}: the proof uses {l!r}, which the database does not have")
            else:
                st = db.statements[l]
                if st.kind == "e" or (st.kind == "f" and st.depth > 0):
                    raise RewriteError(f"{where}: the proof uses {l!r}, a hypothesis of another scope")
                proof.append(l)
        taken.add(label)
        taken.update(names)
        out.append(NewTheorem(k, label, proposed, stmt, hyps, dv, proof,
                              [str(s) for s in t.get("source_proofs", [])], str(data.get("method", ""))))
    return out


def _comment(th: NewTheorem, uses: int, proofs: int) -> str:
    src = th.source_proofs
    shown = " ".join(f"~ {s}" for s in src[:12]) + (f" and {len(src) - 12} more" if len(src) > 12 else "")
    how = f" ({th.method} method)" if th.method else ""
    where = f" from the proofs of {shown}" if src else ""
    renamed = f" It was proposed as {th.proposed}." if th.proposed != th.label else ""
    return (f"Extracted by mmrefactor{how}{where}.{renamed} After refactoring it is applied "
            f"{uses} times in {proofs} proofs.")


def _probe(db: Database, plans: list[NewTheorem], tpath: str, layout: _Layout) -> Database:
    """Append every new theorem (normal proof) to the database text, parse and
    verify them: this gives their frames (from the one place that computes
    them) and their proof trees, the patterns."""
    blocks = [block(th.label, th.statement, th.hyps, th.dv, normal_proof_text(th.proof)) for th in plans]
    try:
        pdb = Database.from_string(insert_theorems(db, blocks), tpath)
    except MMError as exc:
        raise RewriteError(f"{tpath}: the new theorems do not fit the database: {exc.message}") from None
    floats = _outer_floats(db)
    for th in plans:
        st = pdb.statements[th.label]
        try:
            proof = check(pdb, th.label, record=True)
        except ProofError as exc:
            as_ = f" (labeled {th.label})" if th.label != th.proposed else ""
            raise RewriteError(f"{tpath}: theorem {th.proposed!r}{as_} does not verify: step {exc.step}: "
                               f"{exc.reason}", [th.label]) from None
        except MMError as exc:
            raise RewriteError(f"{tpath}: theorem {th.proposed!r}: {exc.message}", [th.label]) from None
        th.frame_hyps = st.frame.hyps
        th.frame_dvs = tuple(sorted(st.frame.dvs))
        own = {h for h, _ in th.hyps}
        for h in th.frame_hyps:
            hs = pdb.statements[h]
            th.hyp_kind[h] = ("e", h) if hs.kind == "e" else ("v", hs.expr[1])
        mvars = {k[1] for k in th.hyp_kind.values() if k[0] == "v"}
        tree = proof.tree(pdb)
        labels, kids, wild, tcs = [], [], [], []
        for n in tree.nodes:
            labels.append(n.label)
            kids.append(tuple(n.children))
            tcs.append(n.expr[0])
            ls = pdb.statements[n.label]
            if n.label in own:
                wild.append(("e", n.label))
            elif ls.kind == "f":
                wild.append(("v" if ls.expr[1] in mvars else "d", ls.expr[1]))
            else:
                wild.append(None)
        th.pattern = Pattern(labels, kids, wild, tcs,
                             frozenset(l for l, w in zip(labels, wild) if w is None))
        th.own_proof = proof
        th.own_nodes = proof.tree_size()
        # the top-level item of its last dependency: used statements and its variables' $f
        deps = [l for l in th.proof if l not in own]
        deps += [floats[v] for v in _vars_of(db, th)]
        th.dep_item = max((layout.item_of(db.statements[l].start) for l in deps), default=-1)
    return pdb


def _vars_of(db: Database, th: NewTheorem) -> set[str]:
    out = set(s for s in th.statement if s in db.variables)
    for _, e in th.hyps:
        out.update(s for s in e if s in db.variables)
    for a, b in th.dv:
        out.update((a, b))
    for l in th.proof:
        st = db.statements.get(l)
        if st is not None and st.kind == "f":
            out.add(st.expr[1])
    return out


# ================================================================== matching
def match_at(pat: Pattern, dag: Dag, node: int, is_float) -> dict | None:
    """Match ``pat`` at ``node``: the wildcard bindings (key -> node id), or None.

    Literal pattern nodes must have the same label and arity; a wildcard
    binds a whole subproof, the same one at each of its leaves. ``is_float``
    tells whether a label is a ``$f`` (what a dummy may bind).
    """
    bind: dict = {}
    stack = [(0, node)]
    plabels, pkids, pwild = pat.labels, pat.kids, pat.wild
    dlabels, dkids = dag.labels, dag.kids
    while stack:
        p, d = stack.pop()
        w = pwild[p]
        if w is not None:
            if w[0] == "d" and (dkids[d] or not is_float(dlabels[d]) or dag.exprs[d][0] != pat.typecode[p]):
                return None
            prev = bind.get(w)
            if prev is None:
                bind[w] = d
            elif prev != d:
                return None
            continue
        if dlabels[d] != plabels[p]:
            return None
        pk, dk = pkids[p], dkids[d]
        if len(pk) != len(dk):
            return None
        stack.extend(zip(pk, dk))
    return bind


@dataclass
class _Ctx:
    """What the proof passes need (handed to workers by fork)."""

    theorems: list[NewTheorem]
    item_of: dict[str, int]


_CTX: _Ctx | None = None


class _Binder:
    """Completes a match into application children (unification and syntax
    proofs for what the pattern does not bind) and judges it."""

    def __init__(self, db: Database, label: str, dag: Dag):
        self.db = db
        self.label = label
        self.dag = dag
        self._by_expr: dict | None = None
        self.allowed = db.statements[label].frame.all_dvs

    def node_with_expr(self, expr: tuple[str, ...]) -> int | None:
        if self._by_expr is None:
            self._by_expr = {}
            for i in self.dag.reachable():
                self._by_expr.setdefault(self.dag.exprs[i], i)
        return self._by_expr.get(expr)

    def syntax_proof(self, expr: tuple[str, ...]) -> int | None:
        """A node proving the syntax expression ``expr``: one of the proof's
        own steps, or one built from the grammar."""
        i = self.node_with_expr(expr)
        if i is not None:
            return i
        from metamath.grammar import ExprParseError, Grammar

        g = Grammar.from_database(self.db)
        try:
            tree = g.parse(expr, at=self.db.statements[self.label])
        except ExprParseError:
            return None
        out: dict = {}
        stack = [(tree, False)]
        while stack:
            t, done = stack.pop()
            if id(t) in out:
                continue
            if not done and t.children:
                stack.append((t, True))
                stack.extend((c, False) for c in reversed(t.children))
                continue
            kids = tuple(out[id(c)] for c in t.children)
            out[id(t)] = self.dag.add(t.label, kids, g.expr_of(t))
        return out[id(tree)]

    def children(self, th: NewTheorem, node: int, bind: dict) -> list[int] | None:
        """The application's children (one per mandatory hypothesis), or None
        when the occurrence cannot be used."""
        dag = self.dag
        kinds = [th.hyp_kind[h] for h in th.frame_hyps]
        if any(k not in bind for k in kinds):
            if not self._complete(th, node, bind):
                return None
        kids = [bind[k] for k in kinds]
        if th.frame_dvs:
            subst = {k[1]: dag.exprs[bind[k]][1:] for k in kinds if k[0] == "v"}
            if dv_violations(th.frame_dvs, subst, self.allowed, self.db.variables):
                return None
        return kids

    def _complete(self, th: NewTheorem, node: int, bind: dict) -> bool:
        """Bind what the pattern left unbound, by unification (metamath.unify)."""
        from metamath.unify import match, terms

        db, dag = self.db, self.dag
        accept = terms(db).accepts
        variables = db.variables
        subst = {k[1]: dag.exprs[b][1:] for k, b in bind.items() if k[0] == "v"}
        hyp_expr = dict(th.hyps)
        pairs = [(th.statement, dag.exprs[node])]
        pairs += [(hyp_expr[k[1]], dag.exprs[b]) for k, b in bind.items() if k[0] == "e"]
        for pattern, target in pairs:
            s = next(match(pattern, target, variables, accept, subst), None)
            if s is None:
                return False
            subst = s
        for h in th.frame_hyps:  # unused $e hypotheses: a step of this proof that proves an instance
            k = th.hyp_kind[h]
            if k[0] != "e" or k in bind:
                continue
            found = None
            for i in dag.reachable():
                if i >= node:  # ids are topological: no step at or above the occurrence (no cycle)
                    break
                e = dag.exprs[i]
                if e[0] != hyp_expr[h][0]:
                    continue
                s = next(match(hyp_expr[h], e, variables, accept, subst), None)
                if s is not None:
                    found, subst = i, s
                    break
            if found is None:
                return False
            bind[k] = found
        for h in th.frame_hyps:
            k = th.hyp_kind[h]
            if k[0] != "v" or k in bind:
                continue
            if k[1] not in subst:
                return False  # a variable nothing determines
            tc = db.statements[h].expr[0]
            i = self.syntax_proof((tc,) + tuple(subst[k[1]]))
            if i is None:
                return False
            bind[k] = i
        return True


def find_matches(db: Database, label: str, dag: Dag, th: NewTheorem) -> dict[int, tuple[str, list[int]]]:
    """``{node: (new label, application children)}`` for every node of the
    proof of ``label`` where ``th`` can be applied with a saving."""
    pat = th.pattern
    if pat is None or pat.trivial:
        return {}
    stmts = db.statements

    def is_float(l: str) -> bool:
        s = stmts.get(l)
        return s is not None and s.kind == "f"

    roots = list(dag.nodes_with(pat.labels[0]))
    if not roots:
        return {}
    binder = _Binder(db, label, dag)
    out: dict[int, tuple[str, list[int]]] = {}
    for i in roots:
        bind = match_at(pat, dag, i, is_float)
        if bind is None:
            continue
        kids = binder.children(th, i, bind)
        if kids is None:
            continue
        if 1 + sum(dag.size(c) for c in kids) >= dag.size(i):
            continue  # no saving here
        out[i] = (th.label, kids)
    return out


def apply_matches(dag: Dag, matches: dict[int, tuple[str, list[int]]]) -> Dag:
    """The DAG with each matched node replaced by its application, outermost
    first along every path; bound subproofs are rewritten too."""
    new = Dag()
    memo: dict[int, int] = {}
    stack = [(dag.root, False)]
    while stack:
        n, done = stack.pop()
        if n in memo:
            continue
        m = matches.get(n)
        kids = m[1] if m else dag.kids[n]
        if not done and kids:
            stack.append((n, True))
            stack.extend((c, False) for c in reversed(kids) if c not in memo)
            continue
        memo[n] = new.add(m[0] if m else dag.labels[n], tuple(memo[c] for c in kids), dag.exprs[n])
    new.root = memo[dag.root]
    return new


def _apply(db: Database, label: str, dag: Dag, th: NewTheorem) -> Dag | None:
    m = find_matches(db, label, dag, th)
    return apply_matches(dag, m) if m else None


# ================================================================== passes over the proofs
EXHAUSTIVE = 4  # a proof where at most this many theorems apply tries every order of them


def _record(db: Database, label: str) -> Dag:
    return Dag.from_proof(check(db, label, record=True))


def _eligible(ctx: _Ctx, label: str) -> list[NewTheorem]:
    """The theorems a proof may use: those whose dependencies all lie in earlier top-level items."""
    item = ctx.item_of[label]
    return [th for th in ctx.theorems
            if item > th.dep_item and th.pattern is not None and not th.pattern.trivial]


def best_rewrite(db: Database, label: str, dag: Dag, theorems: list[NewTheorem],
                 exhaustive: int = EXHAUSTIVE) -> tuple[Dag, list[tuple[int, int]]]:
    """The smallest rewriting of one proof: (DAG, [(theorem index, nodes it saved)] in order).

    Every theorem is inserted whatever happens, so its own proof is a fixed
    cost and the library's size is the sum of independent proof sizes: the
    order in which theorems are applied is chosen per proof. With at most
    ``exhaustive`` applicable theorems every order is tried; with more, the
    one saving most in this proof goes first, the others are recounted, and
    so on. Ties keep the theorems file's order.
    """
    present = set(dag.labels)
    theorems = [th for th in theorems if th.pattern is not None and th.pattern.literals <= present]
    once = {th.index: _apply(db, label, dag, th) for th in theorems}
    ths = [th for th in theorems if once[th.index] is not None]
    if not ths:
        return dag, []
    best: list = [dag.tree_size(), dag, []]
    if len(ths) <= exhaustive:
        def dfs(d: Dag, rest: list[NewTheorem], steps: list[tuple[int, int]]) -> None:
            for th in rest:
                new = once[th.index] if not steps else _apply(db, label, d, th)
                if new is None:
                    continue
                s = steps + [(th.index, d.tree_size() - new.tree_size())]
                if new.tree_size() < best[0]:
                    best[:] = [new.tree_size(), new, s]
                dfs(new, [t for t in rest if t is not th], s)

        dfs(dag, ths, [])
        return best[1], best[2]
    d, steps, rest = dag, [], list(ths)
    while rest:
        options = [(th, once[th.index] if not steps else _apply(db, label, d, th)) for th in rest]
        options = [(th, new) for th, new in options if new is not None]
        if not options:
            break
        th, new = min(options, key=lambda o: o[1].tree_size())
        steps.append((th.index, d.tree_size() - new.tree_size()))
        d = new
        rest = [t for t, _ in options if t is not th]
    return d, steps


def _rewrite_proof(db: Database, label: str):
    """One proof: its size before, and its best rewriting (compressed) if any."""
    try:
        dag = _record(db, label)
    except ProofError as exc:
        return ("error", f"step {exc.step}: {exc.reason}")
    before = dag.tree_size()
    ess = dag.essential_size(db.syntax_typecodes)
    ths = _eligible(_CTX, label)
    new, steps = best_rewrite(db, label, dag, ths) if ths else (dag, [])
    if not steps:
        return ("ok", before, ess, None)
    st = db.statements[label]
    labels, letters = compress_proof(new.to_proof(label), list(st.frame.hyps))
    names = {_CTX.theorems[t].label: t for t, _ in steps}
    uses: dict[int, int] = {}
    for i in new.reachable():
        t = names.get(new.labels[i])
        if t is not None:
            uses[t] = uses.get(t, 0) + 1
    return ("ok", before, ess, (labels, letters, uses, dict(steps), new.tree_size(),
                                new.essential_size(db.syntax_typecodes)))


def _run(db: Database, ctx: _Ctx, fn, labels: list[str], jobs, desc):
    global _CTX
    _CTX = ctx
    try:
        return map_theorems(db, fn, labels, jobs=jobs, desc=desc)
    finally:
        _CTX = None


# ================================================================== the whole job
@dataclass
class RewriteResult:
    """Figures of a rewrite (see :meth:`as_dict`)."""

    out: str
    new_theorems: int
    total_usage: int
    proof_nodes_before: int
    proof_nodes_after: int
    essential_nodes_before: int
    essential_nodes_after: int
    compressed_bytes_before: int
    compressed_bytes_after: int
    file_bytes_before: int
    file_bytes_after: int
    proofs_rewritten: int
    per_theorem: list[dict]
    verified_by: list[str]
    seconds: float

    @property
    def average_usage(self) -> float:
        return self.total_usage / self.new_theorems if self.new_theorems else 0.0

    def as_dict(self) -> dict:
        return {"out": self.out, "new_theorems": self.new_theorems, "total_usage": self.total_usage,
                "average_usage": round(self.average_usage, 2),
                "proof_nodes_before": self.proof_nodes_before, "proof_nodes_after": self.proof_nodes_after,
                "essential_nodes_before": self.essential_nodes_before,
                "essential_nodes_after": self.essential_nodes_after,
                "compressed_bytes_before": self.compressed_bytes_before,
                "compressed_bytes_after": self.compressed_bytes_after,
                "file_bytes_before": self.file_bytes_before, "file_bytes_after": self.file_bytes_after,
                "proofs_rewritten": self.proofs_rewritten, "per_theorem": self.per_theorem,
                "verified_by": self.verified_by, "seconds": round(self.seconds, 2)}


def _proof_bytes(text: str, st) -> int:
    """Size of a proof as written, layout aside: its characters other than white space."""
    a, b = st.proof
    return len("".join(text[a:b].split()))


def _measure_output(db: Database, label: str):
    try:
        p = check(db, label, record=True)
    except ProofError as exc:
        return ("error", f"step {exc.step}: {exc.reason}")
    return ("ok", p.tree_size(), p.essential_size(db.syntax_typecodes))


def _size_key(th: NewTheorem) -> tuple[int, int]:
    return (th.own_nodes, th.index)


def _rewrite_new_theorems(pdb: Database, plans: list[NewTheorem]) -> dict[int, tuple[Dag, list, dict]]:
    """The new theorems' own proofs rewritten with the smaller new theorems.

    A theorem may use those with a smaller own proof (ties: earlier in the
    theorems file), so no cycle can arise; it is then inserted after them.
    Returns {theorem: (rewritten DAG, [(theorem used, nodes saved)], {theorem: uses})}.
    Matching runs in the probe database, where every new theorem exists.
    """
    out = {}
    for th in plans:
        smaller = [o for o in plans if _size_key(o) < _size_key(th) and o.pattern is not None
                   and not o.pattern.trivial]
        if not smaller:
            continue
        dag = Dag.from_proof(th.own_proof)
        new, steps = best_rewrite(pdb, th.label, dag, smaller)
        if not steps:
            continue
        names = {plans[t].label: t for t, _ in steps}
        used: dict[int, int] = {}
        for i in new.reachable():
            t = names.get(new.labels[i])
            if t is not None:
                used[t] = used.get(t, 0) + 1
        out[th.index] = (new, steps, used)
    return out


def rewrite_database(db: Database, theorems: dict, out: str, tpath: str = "<theorems>",
                     use_metamath: bool = True, jobs: int | None = None, progress: bool = False,
                     log=None) -> RewriteResult:
    """Rewrite ``db`` with the theorems of a loaded T.json and write ``out``.

    Raises :class:`RewriteError` (nothing written) when a theorem or a
    rewritten proof does not verify with our verifier or with metamath.exe.
    """
    t0 = time.perf_counter()
    say = log or (lambda *a: None)
    if len(db.files) != 1:
        raise RewriteError(f"{db.files[0].path}: databases with $[ $] includes are not supported; "
                           f"flatten it first")
    src = db.files[0]
    if os.path.exists(out) and os.path.realpath(out) == os.path.realpath(src.path):
        raise RewriteError(f"{out}: refusing to overwrite the input database")
    outdir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(outdir):
        raise RewriteError(f"{out}: directory {outdir} does not exist")
    layout = _layout(db)
    plans = _plan(db, theorems, tpath)
    pdb = _probe(db, plans, tpath, layout)
    say(f"{len(plans)} new theorems verified")
    item_of = {l: layout.item_of(st.start) for l, st in db.statements.items() if st.kind == "p"}
    ctx = _Ctx(plans, item_of)
    labels = db.theorems()
    first = _run(db, ctx, _rewrite_proof, labels, jobs, "rewriting" if progress else None)
    bad = [(l, r[1]) for l, r in first.items() if r[0] == "error"]
    if bad:
        raise RewriteError(f"{src.path}: the input does not verify: {bad[0][0]}: {bad[0][1]}",
                           [l for l, _ in bad])
    nodes_before = sum(r[1] for r in first.values())
    ess_before = sum(r[2] for r in first.values())
    final = {l: first[l][3] for l in labels if first[l][3] is not None}
    changed = list(final)
    own = _rewrite_new_theorems(pdb, plans)
    del pdb  # set.mm-sized: free it before the output is parsed
    # uses, savings and insertion points
    uses = [0] * len(plans)
    proofs = [0] * len(plans)
    gained = [0] * len(plans)
    first_item: list[int | None] = [None] * len(plans)
    for l in changed:
        for t, k in final[l][2].items():
            uses[t] += k
            proofs[t] += 1
            it = item_of[l]
            if first_item[t] is None or it < first_item[t]:
                first_item[t] = it
        for t, v in final[l][3].items():
            gained[t] += v
    users: dict[int, list[int]] = {}
    for j, (_, steps, used) in own.items():
        for t, k in used.items():
            uses[t] += k
            proofs[t] += 1
            users.setdefault(t, []).append(j)
        for t, v in steps:
            gained[t] += v
    say(f"{len(changed)} proofs rewritten" + (f", {len(own)} new theorems' own proofs too" if own else ""))
    # where each goes: before its first use, a bigger new theorem using it included
    place: dict[int, int] = {}
    for th in sorted(plans, key=_size_key, reverse=True):
        at = [first_item[th.index]] + [place[j] for j in users.get(th.index, [])]
        at = [a for a in at if a is not None]
        place[th.index] = min(at) if at else th.dep_item + 1
    # the edits: rewritten proofs, inserted blocks
    text = src.text
    edits: list[tuple[int, int, str]] = []
    for l in changed:  # laid out like the proof it replaces (metamath.write's rule)
        st = db.statements[l]
        lab, letters = final[l][0], final[l][1]
        body = format_proof_body(lab, letters, proof_indent(db, st), WIDTH)
        edits.append((st.proof[0], st.proof[1] + 2, body))
    inserts: dict[int, list[NewTheorem]] = {}
    for th in plans:
        inserts.setdefault(place[th.index], []).append(th)
    for it, ths in inserts.items():
        pieces = []
        at_end = it >= len(layout.starts)
        ind = "" if at_end else layout.indent[it]
        for th in sorted(ths, key=_size_key):  # the ones others use first
            t = th.index
            proof = own[t][0].to_proof(th.label) if t in own else th.own_proof
            lab, letters = compress_proof(proof, list(th.frame_hyps))
            body = format_proof_body(lab, letters, indent=len(ind) + 4)
            pieces.append(block(th.label, th.statement, th.hyps, th.dv, body, _comment(th, uses[t], proofs[t]),
                                ind))
        if at_end:
            pos = len(text)
            chunk = ("\n" if not text.endswith("\n") else "") + "\n" + "\n\n".join(pieces) + "\n"
        else:
            pos = layout.insert_at[it]
            chunk = "\n\n".join(pieces).lstrip(" ") + "\n\n" + ind
        edits.append((pos, pos, chunk))
    edits.sort(key=lambda e: (e[0], e[1]))
    parts, last = [], 0
    for a, b, s in edits:
        if a < last:
            raise RewriteError(f"internal error: overlapping edits at offset {a}")
        parts.append(text[last:a])
        parts.append(s)
        last = b
    parts.append(text[last:])
    new_text = "".join(parts)
    # verify with our verifier
    say("verifying the output")
    try:
        odb = Database.from_string(new_text, out)
    except MMError as exc:
        raise RewriteError(f"the rewritten database does not parse: {exc}") from None
    measured = map_theorems(odb, _measure_output, odb.theorems(), jobs=jobs,
                            desc="verifying" if progress else None)
    failed = [(l, r[1]) for l, r in measured.items() if r[0] == "error"]
    if failed:
        raise RewriteError(f"our verifier rejects the rewritten database: {failed[0][0]}: {failed[0][1]}"
                           + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""),
                           [l for l, _ in failed])
    verified_by = ["mmrefactor"]
    fd, tmp = tempfile.mkstemp(dir=outdir, prefix="." + os.path.basename(out) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii", newline="") as fh:
            fh.write(new_text)
        if use_metamath:
            say("verifying with metamath")
            try:
                verdict = metamath_verdict(tmp, timeout=1800)
            except JudgeUnavailable:
                raise RewriteError("metamath (metamath.exe) not found: install Debian's metamath, "
                                   "or skip it explicitly (--no-metamath)") from None
            if not verdict.accepted:
                mlabels = verdict.failing()
                lines = [l for l in verdict.output.splitlines() if l.startswith("?")][:3]
                raise RewriteError("metamath rejects the rewritten database"
                                   + (f": proof {mlabels[0]}" if mlabels else "") + ": " + " | ".join(lines),
                                   mlabels)
            verified_by.append("metamath")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    per = []
    for th in plans:
        t = th.index
        per.append({"label": th.label, "proposed_label": th.proposed, "statement": " ".join(th.statement),
                    "hypotheses": [" ".join(e) for _, e in th.hyps], "uses": uses[t], "proofs": proofs[t],
                    "nodes_saved": gained[t] - th.own_nodes, "nodes_saved_gross": gained[t],
                    "own_proof_nodes": own[t][0].tree_size() if t in own else th.own_nodes,
                    "uses_new_theorems": sorted(plans[u].label for u in own[t][2]) if t in own else [],
                    "inserted_before": _item_label(db, layout, place[t])})
    ostmts = odb.statements
    return RewriteResult(
        out=out, new_theorems=len(plans), total_usage=sum(uses),
        proof_nodes_before=nodes_before, proof_nodes_after=sum(r[1] for r in measured.values()),
        essential_nodes_before=ess_before, essential_nodes_after=sum(r[2] for r in measured.values()),
        compressed_bytes_before=sum(_proof_bytes(text, db.statements[l]) for l in labels),
        compressed_bytes_after=sum(_proof_bytes(new_text, ostmts[l]) for l in odb.theorems()),
        file_bytes_before=len(text.encode()), file_bytes_after=len(new_text.encode()),
        proofs_rewritten=len(changed), per_theorem=per, verified_by=verified_by,
        seconds=time.perf_counter() - t0)


def _item_label(db: Database, layout: _Layout, it: int) -> str | None:
    """A label inside the item a theorem was inserted before (None: at the end)."""
    if it >= len(layout.starts):
        return None
    lo = layout.starts[it]
    hi = layout.starts[it + 1] if it + 1 < len(layout.starts) else float("inf")
    for l, st in db.statements.items():
        if lo <= st.start < hi and st.kind in "ap":
            return l
    return None


def rewrite_file(db_path: str, theorems_path: str, out: str, use_metamath: bool = True,
                 jobs: int | None = None, progress: bool = False, log=None) -> RewriteResult:
    """``mmrefactor rewrite``: read the database and T.json, rewrite, verify, write ``out``."""
    try:
        data = load_theorems(theorems_path)
    except TheoremsFileError as exc:
        raise RewriteError(str(exc)) from None
    if os.path.exists(out) and os.path.realpath(out) == os.path.realpath(db_path):
        raise RewriteError(f"{out}: refusing to overwrite the input database")
    db = Database.from_file(db_path)
    return rewrite_database(db, data, out, tpath=theorems_path, use_metamath=use_metamath, jobs=jobs,
                            progress=progress, log=log)
