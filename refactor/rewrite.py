"""Rewrite a whole library with new theorems (``mmrefactor rewrite``).

Input: a database and a theorems file (T.json, :mod:`refactor.theorems`).
Output: a complete database in which

* each new theorem sits, as ``${ $e... $d... $( comment $) $p $}`` with a
  compressed proof, at the outermost scope just before the top-level item
  holding its first use (:mod:`refactor.layout`), and after every statement
  its own proof needs; its label and hypothesis labels collide with no
  label and no math symbol;
* every occurrence of a new theorem's proof pattern in every proof
  (:mod:`refactor.match`) is one application of it, if the proof comes
  after the theorem's own dependencies; rewritten proofs are recompressed
  and laid out like the proofs they replace, untouched proofs stay
  byte-identical. The new theorems' own proofs are rewritten too, with the
  new theorems that have smaller proofs (which are then inserted before them).

Every new theorem is inserted, so its own proof is a fixed cost and the
order in which theorems are applied is chosen per proof
(:func:`refactor.match.best_rewrite`). A theorem's ``nodes_saved`` is what
it saved where it was applied (other new theorems' proofs included) minus
its own proof as given, so they add up to ``proof_nodes_before -
proof_nodes_after``. Sizes are expanded proof-tree nodes (syntax steps
included); ``compressed_bytes`` counts the characters of the proofs as
written other than white space.

The output is verified by our verifier and by metamath.exe
(:mod:`metamath.judge`) before it is written (:func:`metamath.write.write_atomic`);
if either rejects it nothing is written and :class:`RewriteError` names the
failing proof. Databases with ``$[ $]`` includes are refused (flatten them
first); the input is never overwritten.

Proof work runs on all cores (:func:`metamath.parallel.map_theorems`, the
theorems reaching the workers with the function) in one pass; a second pass
verifies and measures the output. On set.mm that is about 6 minutes on 2 cores.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from functools import partial

from metamath.compressed import compress_proof, format_proof_body
from metamath.database import LABEL_OK, Database
from metamath.errors import MMError, ProofError
from metamath.judge import JudgeUnavailable, metamath_verdict
from metamath.parallel import map_theorems
from metamath.proof import Proof
from metamath.verify import check
from metamath.write import WIDTH, proof_indent, render, write_atomic

from .layout import Layout, layout
from .match import NewTheorem, Pattern, best_rewrite
from .theorems import (TheoremsFileError, appended_text, block, hypothesis_labels, load_theorems,
                       normal_proof_text, outer_floats)

__all__ = ["RewriteError", "RewriteResult", "rewrite_database", "rewrite_file"]


class RewriteError(Exception):
    """Rewriting failed (a bad theorems file, a theorem or rewritten proof
    that does not verify); nothing was written. ``failed``: the labels of
    the proofs that failed, when known."""

    def __init__(self, message: str, failed: list[str] | None = None):
        super().__init__(message)
        self.failed = failed or []


# ================================================================== preparing the new theorems
def _plan(db: Database, data: dict, tpath: str) -> list[NewTheorem]:
    """Validate T.json against the database; pick collision-free labels."""
    taken = set(db.statements) | db.constants | db.variables
    floats = {v: f for _, v, f, _ in outer_floats(db)}  # variable -> its outermost $f
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


def _probe(db: Database, plans: list[NewTheorem], tpath: str, lay: Layout) -> Database:
    """Append every new theorem (normal proof) to the database (:meth:`Database.extended`:
    the database is not parsed again), parse and verify them: this gives their
    frames (from the one place that computes them) and their proof trees, the patterns."""
    blocks = [block(th.label, th.statement, th.hyps, th.dv, normal_proof_text(th.proof)) for th in plans]
    try:
        pdb = db.extended(appended_text(blocks), tpath)
    except MMError as exc:
        raise RewriteError(f"{tpath}: the new theorems do not fit the database: {exc.message}") from None
    floats = {v: f for _, v, f, _ in outer_floats(db)}  # variable -> its outermost $f
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
        th.pattern = Pattern.of(proof.tree(pdb), pdb, own, mvars)
        th.own_proof = proof
        # the top-level item of its last dependency: used statements and its variables' $f
        deps = [l for l in th.proof if l not in own]
        deps += [floats[v] for v in _vars_of(db, th)]
        th.dep_item = max((lay.item_of(db.statements[l].start) for l in deps), default=-1)
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


# ================================================================== the pass over the proofs
@dataclass(frozen=True)
class _Job:
    """What the proof pass needs; it reaches the workers with the function (fork)."""

    theorems: list[NewTheorem]
    item_of: dict[str, int]

    def eligible(self, label: str) -> list[NewTheorem]:
        """The theorems a proof may use: those whose dependencies all lie in earlier top-level items."""
        item = self.item_of[label]
        return [th for th in self.theorems
                if item > th.dep_item and th.pattern is not None and not th.pattern.trivial]


def _uses(new: Proof, names: dict[str, int]) -> dict[int, int]:
    """theorem index -> its applications in a rewritten proof (``names``: label -> index)."""
    uses: dict[int, int] = {}
    nodes = new.nodes
    for i in new.reachable():
        t = names.get(nodes[i].label)
        if t is not None:
            uses[t] = uses.get(t, 0) + 1
    return uses


def _rewrite_proof(job: _Job, db: Database, label: str):
    """One proof: its size before, and its best rewriting (compressed) if any."""
    try:
        dag = check(db, label, record=True).dag()
    except ProofError as exc:
        return ("error", f"step {exc.step}: {exc.reason}")
    before = dag.tree_size()
    ess = dag.essential_size(db.syntax_typecodes)
    ths = job.eligible(label)
    new, steps = best_rewrite(db, label, dag, ths) if ths else (dag, [])
    if not steps:
        return ("ok", before, ess, None)
    st = db.statements[label]
    labels, letters = compress_proof(new, list(st.frame.hyps))
    uses = _uses(new, {job.theorems[t].label: t for t, _ in steps})
    return ("ok", before, ess, (labels, letters, uses, dict(steps), new.tree_size(),
                                new.essential_size(db.syntax_typecodes)))


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
        items = [(k, getattr(self, k)) for k in self.__dataclass_fields__]
        items.insert(3, ("average_usage", round(self.average_usage, 2)))
        return {**dict(items), "seconds": round(self.seconds, 2)}


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
    return (th.own_proof.tree_size(), th.index)


def _rewrite_new_theorems(pdb: Database, plans: list[NewTheorem]) -> dict[int, tuple[Proof, list, dict]]:
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
        new, steps = best_rewrite(pdb, th.label, th.own_proof.dag(), smaller)
        if steps:
            out[th.index] = (new, steps, _uses(new, {plans[t].label: t for t, _ in steps}))
    return out


@dataclass
class _Tally:
    """Per new theorem: applications, proofs using it, nodes saved where applied,
    and the top-level item it is inserted before."""

    uses: list[int]
    proofs: list[int]
    gained: list[int]
    place: dict[int, int]


def _tally(plans: list[NewTheorem], final: dict, own: dict, item_of: dict[str, int]) -> _Tally:
    """Uses, savings and insertion points: each theorem goes before its first
    use, a bigger new theorem using it included, else after its dependencies."""
    n = len(plans)
    t = _Tally([0] * n, [0] * n, [0] * n, {})
    first_item: list[int | None] = [None] * n
    for l, r in final.items():
        for k, c in r[2].items():
            t.uses[k] += c
            t.proofs[k] += 1
            it = item_of[l]
            if first_item[k] is None or it < first_item[k]:
                first_item[k] = it
        for k, v in r[3].items():
            t.gained[k] += v
    users: dict[int, list[int]] = {}
    for j, (_, steps, used) in own.items():
        for k, c in used.items():
            t.uses[k] += c
            t.proofs[k] += 1
            users.setdefault(k, []).append(j)
        for k, v in steps:
            t.gained[k] += v
    for th in sorted(plans, key=_size_key, reverse=True):
        at = [first_item[th.index]] + [t.place[j] for j in users.get(th.index, [])]
        at = [a for a in at if a is not None]
        t.place[th.index] = min(at) if at else th.dep_item + 1
    return t


def _new_text(db: Database, lay: Layout, plans: list[NewTheorem], final: dict, own: dict, tally: _Tally) -> str:
    """The output text: rewritten proofs laid out like the proofs they replace
    (:func:`metamath.write.proof_indent`), new theorems' blocks before their items."""
    bodies = {l: format_proof_body(r[0], r[1], proof_indent(db, db.statements[l]), WIDTH)
              for l, r in final.items()}
    inserts: dict[int, list[NewTheorem]] = {}
    for th in plans:
        inserts.setdefault(tally.place[th.index], []).append(th)
    text = db.files[0].text
    insert_at: dict[int, str] = {}
    for it, ths in inserts.items():
        ind = lay.indent[it] if it < len(lay.starts) else ""
        blocks = []
        for th in sorted(ths, key=_size_key):  # the ones others use first
            k = th.index
            lab, letters = compress_proof(own[k][0] if k in own else th.own_proof, list(th.frame_hyps))
            body = format_proof_body(lab, letters, indent=len(ind) + 4)
            blocks.append(block(th.label, th.statement, th.hyps, th.dv, body,
                                _comment(th, tally.uses[k], tally.proofs[k]), ind))
        at, piece = lay.insertion(text, it, blocks)
        insert_at[at] = piece
    try:
        return render(db, bodies, insert_at=insert_at)[0]
    except MMError as exc:
        raise RewriteError(f"internal error: {exc}") from None


def _verify_ours(text: str, out: str, jobs: int | None, progress: bool) -> tuple[Database, dict]:
    """The output parsed and every proof measured by our verifier; raises
    :class:`RewriteError` naming the proofs it rejects."""
    try:
        odb = Database.from_string(text, out)
    except MMError as exc:
        raise RewriteError(f"the rewritten database does not parse: {exc}") from None
    measured = map_theorems(odb, _measure_output, odb.theorems(), jobs=jobs,
                            desc="verifying" if progress else None)
    failed = [(l, r[1]) for l, r in measured.items() if r[0] == "error"]
    if failed:
        raise RewriteError(f"our verifier rejects the rewritten database: {failed[0][0]}: {failed[0][1]}"
                           + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""),
                           [l for l, _ in failed])
    return odb, measured


def _verify_metamath(text: str, out: str) -> None:
    """metamath.exe's verdict on the output text (in a temporary file beside
    ``out``); raises :class:`RewriteError` naming the proof it rejects."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(out)),
                               prefix="." + os.path.basename(out) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="ascii", newline="") as fh:
            fh.write(text)
        verdict = metamath_verdict(tmp, timeout=1800)
    except JudgeUnavailable:
        raise RewriteError("metamath (metamath.exe) not found: install Debian's metamath, "
                           "or skip it explicitly (--no-metamath)") from None
    finally:
        os.unlink(tmp)
    if not verdict.accepted:
        failed = verdict.failing()
        lines = [l for l in verdict.output.splitlines() if l.startswith("?")][:3]
        raise RewriteError("metamath rejects the rewritten database"
                           + (f": proof {failed[0]}" if failed else "") + ": " + " | ".join(lines), failed)


def rewrite_database(db: Database, theorems: dict, out: str, tpath: str = "<theorems>",
                     use_metamath: bool = True, jobs: int | None = None, progress: bool = False,
                     log=None, keep: frozenset = frozenset()) -> RewriteResult:
    """Rewrite ``db`` with the theorems of a loaded T.json and write ``out``;
    the proofs of ``keep`` are left as they are.

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
    lay = layout(db)
    plans = _plan(db, theorems, tpath)
    pdb = _probe(db, plans, tpath, lay)
    say(f"{len(plans)} new theorems verified")
    item_of = {l: lay.item_of(st.start) for l, st in db.statements.items() if st.kind == "p"}
    labels = db.theorems()
    first = map_theorems(db, partial(_rewrite_proof, _Job(plans, item_of)), labels, jobs=jobs,
                         desc="rewriting" if progress else None)
    bad = [(l, r[1]) for l, r in first.items() if r[0] == "error"]
    if bad:
        raise RewriteError(f"{src.path}: the input does not verify: {bad[0][0]}: {bad[0][1]}",
                           [l for l, _ in bad])
    final = {l: first[l][3] for l in labels if first[l][3] is not None and l not in keep}
    own = _rewrite_new_theorems(pdb, plans)
    del pdb  # set.mm-sized: free it before the output is parsed
    tally = _tally(plans, final, own, item_of)
    say(f"{len(final)} proofs rewritten" + (f", {len(own)} new theorems' own proofs too" if own else ""))
    text = src.text
    new_text = _new_text(db, lay, plans, final, own, tally)
    say("verifying the output")
    odb, measured = _verify_ours(new_text, out, jobs, progress)
    verified_by = ["mmrefactor"]
    if use_metamath:
        say("verifying with metamath")
        _verify_metamath(new_text, out)
        verified_by.append("metamath")
    write_atomic(out, new_text, [src.path])
    per = []
    for th in plans:
        k = th.index
        per.append({"label": th.label, "proposed_label": th.proposed, "statement": " ".join(th.statement),
                    "hypotheses": [" ".join(e) for _, e in th.hyps], "uses": tally.uses[k],
                    "proofs": tally.proofs[k], "nodes_saved": tally.gained[k] - th.own_proof.tree_size(),
                    "nodes_saved_gross": tally.gained[k],
                    "own_proof_nodes": (own[k][0] if k in own else th.own_proof).tree_size(),
                    "uses_new_theorems": sorted(plans[u].label for u in own[k][2]) if k in own else [],
                    "inserted_before": lay.label_in(db, tally.place[k])})
    ostmts = odb.statements
    return RewriteResult(
        out=out, new_theorems=len(plans), total_usage=sum(tally.uses),
        proof_nodes_before=sum(r[1] for r in first.values()),
        proof_nodes_after=sum(r[1] for r in measured.values()),
        essential_nodes_before=sum(r[2] for r in first.values()),
        essential_nodes_after=sum(r[2] for r in measured.values()),
        compressed_bytes_before=sum(_proof_bytes(text, db.statements[l]) for l in labels),
        compressed_bytes_after=sum(_proof_bytes(new_text, ostmts[l]) for l in odb.theorems()),
        file_bytes_before=len(text.encode()), file_bytes_after=len(new_text.encode()),
        proofs_rewritten=len(final), per_theorem=per, verified_by=verified_by,
        seconds=time.perf_counter() - t0)


def rewrite_file(db_path: str, theorems_path: str, out: str, use_metamath: bool = True,
                 jobs: int | None = None, progress: bool = False, log=None,
                 split: str | None = None, top: int | None = None) -> RewriteResult:
    """``mmrefactor rewrite``: read the database and T.json, rewrite, verify, write ``out``.

    ``top``: insert only the file's first ``top`` theorems. T.json lists
    them in rank order (greedy, by marginal saving), so its first K are
    the extractor's top K; this compares K = 16 and K = 20 from one
    extraction.

    ``split``: a prover split file; only the proofs of its training
    theorems are rewritten, held-out proofs stay byte-identical. A theorems
    file that cannot be read or has the wrong shape raises
    :class:`TheoremsFileError` (bad input), everything later :class:`RewriteError`.
    """
    data = load_theorems(theorems_path)
    if top is not None:
        if top < 1:
            raise TheoremsFileError(f"--top must be at least 1, not {top}")
        data = {**data, "theorems": data["theorems"][:top]}
    if os.path.exists(out) and os.path.realpath(out) == os.path.realpath(db_path):
        raise RewriteError(f"{out}: refusing to overwrite the input database")
    db = Database.from_file(db_path)
    keep = frozenset()
    if split is not None:
        from provers.split import load_split

        sp = load_split(split, db)
        keep = frozenset(sp.valid) | frozenset(sp.test)
    return rewrite_database(db, data, out, tpath=theorems_path, use_metamath=use_metamath, jobs=jobs,
                            progress=progress, log=log, keep=keep)
