"""Theorem expansion: REFACTOR's training data.

For every proof P and every application of a proved theorem T inside P's
full proof tree, one example is P with that one application replaced by T's
own proof: T's variables substituted by the application's arguments, T's
dummy variables renamed to variables P does not use, T's hypothesis leaves
replaced by the argument subtrees. A node is labelled 1 when it came from
T's proof, the roots of the argument subtrees included, their insides not.

Examples are :class:`Example` records (a :class:`metamath.proof.ProofTree`,
pre-order, root first, and its node labels); :mod:`refactor.dataset` turns
them into torch-geometric graphs.
Splits are grouped by the inlined theorem, so valid/test examples inline
theorems never seen in training.
"""
from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial

from metamath.database import Database
from metamath.errors import ProofError
from metamath.parallel import imap_theorems, map_theorems
from metamath.proof import ProofTree, TreeNode, TreeTooLarge
from metamath.verify import check, substitute, template

NEVER_INLINE = frozenset({"dummylink", "idi"})


@dataclass(frozen=True)
class ExpansionOptions:
    """Every choice that changes the dataset (part of its cache key)."""

    max_nodes: int = 1000            # cap on nodes per example (and on the outer proof)
    max_inlined_proof: int = 1000    # never inline theorems with larger proof trees
    cap_train: int = 100             # examples per inlined theorem in train
    cap_eval: int = 10               # ... in valid and test
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    essential_only: bool = False     # drop syntax steps (ablation)
    limit_proofs: int | None = None  # only the first N theorems (subsampling for big databases)
    max_examples: int | None = None  # after the caps, a seeded sample of at most N examples in all
    held_out: tuple[str, ...] = ()   # theorems whose proofs are never shown (a prover split's valid/test)

    def key(self) -> dict:
        key = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "held_out"}
        if self.held_out:
            key["held_out"] = held_out_key(self.held_out)
        return key


def held_out_key(labels) -> dict:
    """How a dataset's held-out theorems enter its key: a count and a digest (a set.mm split holds thousands)."""
    return {"theorems": len(set(labels)), "sha256": hashlib.sha256("\n".join(sorted(set(labels))).encode()).hexdigest()[:16]}


@dataclass
class Example:
    """One expansion example: the outer proof P's tree with one application of
    T replaced by T's proof, and the node labels."""

    tree: ProofTree         # theorem: P; source is -1 (no DAG node of P's proof)
    inlined: str            # the theorem T whose proof was inlined
    y: list[int]            # 1 = came from T's proof (argument roots included)

    @property
    def theorem(self) -> str:
        return self.tree.theorem

    @property
    def num_nodes(self) -> int:
        return len(self.tree)

    def essential(self) -> "Example":
        """The example with syntax steps removed: essential nodes keep their essential ancestors."""
        tree, old = self.tree.essential_view()
        return Example(tree, self.inlined, [self.y[i] for i in old])


class NoFreshVariable(ValueError):
    """A dummy variable of the inlined proof has no unused variable to be renamed to at P."""


def proof_tree(db: Database, label: str, max_nodes: int) -> ProofTree | None:
    """The full tree of a verified proof, or None if it fails or exceeds ``max_nodes``."""
    try:
        return check(db, label, record=True).tree(db, max_nodes)
    except (ProofError, TreeTooLarge):
        return None


# ------------------------------------------------------------------ candidates
def _inlinable_info(opts: ExpansionOptions, db: Database, label: str) -> tuple[int, dict[str, int]] | None:
    """(tree size, uses of each mandatory hypothesis as a leaf) for an inlinable proof."""
    tree = proof_tree(db, label, opts.max_inlined_proof)
    if tree is None:
        return None
    hyps = set(db[label].frame.hyps)
    return len(tree), dict(Counter(n.label for n in tree.nodes if not n.children and n.label in hyps))


def _candidates_of(opts: ExpansionOptions, inl: dict[str, tuple[int, dict[str, int]]], db: Database,
                   label: str) -> list[tuple[int, str]]:
    """(node index, inlined theorem) for every application in P worth an example."""
    tree = proof_tree(db, label, opts.max_nodes)
    if tree is None:
        return []
    n = len(tree)
    sub = lambda i: tree.subtree_end(i) - i  # noqa: E731  (pre-order: a subtree is a range)
    out = []
    stmts = db.statements
    for i, node in enumerate(tree.nodes):
        l = node.label
        info = inl.get(l)
        if info is None or stmts[l].index >= stmts[label].index:
            continue
        tsize, occ = info
        hyps = stmts[l].frame.hyps
        new = n - sub(i) + tsize - sum(occ.values())
        for h, c in zip(hyps, node.children):
            new += occ.get(h, 0) * sub(c)
        if new <= opts.max_nodes:
            out.append((i, l))
    return out


def find_candidates(db: Database, opts: ExpansionOptions, progress: bool = False,
                    jobs: int | None = None) -> dict[str, list[tuple[str, int]]]:
    """Inlined theorem -> [(outer proof, node index)] of every admissible application.

    A held-out theorem (``opts.held_out``) is neither an outer proof nor
    inlined, so no example shows any part of its proof."""
    held = set(opts.held_out)
    theorems = [l for l in db.theorems() if l not in NEVER_INLINE and l not in held]
    infos = map_theorems(db, partial(_inlinable_info, opts), theorems, jobs=jobs,
                         desc="sizing proofs" if progress else None)
    inlinable = {l: v for l, v in infos.items() if v is not None}
    outer = [l for l in db.theorems() if l not in held]
    if opts.limit_proofs is not None:
        outer = outer[: opts.limit_proofs]
    per_proof = map_theorems(db, partial(_candidates_of, opts, inlinable), outer, jobs=jobs,
                             desc="finding applications" if progress else None)
    by_theorem: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for p in outer:
        for i, t in per_proof[p]:
            by_theorem[t].append((p, i))
    return dict(by_theorem)


def grouped_split(groups: list[str], split: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Assign each group (inlined theorem) to train/valid/test by a seeded shuffle."""
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    n = len(order)
    n_train = round(split[0] * n)
    n_valid = round(split[1] * n)
    out = {}
    for k, g in enumerate(order):
        out[g] = "train" if k < n_train else "valid" if k < n_train + n_valid else "test"
    return out


# ------------------------------------------------------------------ inlining
def fresh_variables(db: Database, at: str, typecode: str, avoid: set[str]):
    """Variables of ``typecode`` whose ``$f`` is active at ``at``, not in ``avoid``, in file order."""
    st = db[at]
    fs = db.__dict__.get("_f_labels")
    if fs is None:
        fs = db.__dict__["_f_labels"] = db.labels("f")
    for l in fs:
        f = db[l]
        if f.expr[0] == typecode and f.expr[1] not in avoid and db.in_scope(f, st):
            yield f.expr[1], l


def inline(db: Database, outer: ProofTree, outer_label: str, node: int, inlined: ProofTree,
           inlined_label: str) -> Example:
    """``outer`` with the application at ``node`` replaced by ``inlined``'s proof."""
    tst = db[inlined_label]
    hyps = tst.frame.hyps
    onodes, inodes = outer.nodes, inlined.nodes
    args = onodes[node].children
    if len(args) != len(hyps):
        raise ValueError(f"{outer_label}: node {node} applies {inlined_label} to {len(args)} arguments, "
                         f"it has {len(hyps)} hypotheses")
    stmts = db.statements
    subst: dict[str, tuple[str, ...]] = {}
    hyp_arg: dict[str, int] = {}
    for h, a in zip(hyps, args):
        hyp_arg[h] = a
        if stmts[h].kind == "f":
            subst[stmts[h].expr[1]] = onodes[a].expr[1:]
    # dummy variables of T: rename apart from everything P uses
    variables = db.variables
    used = set()
    for n in onodes:
        used.update(variables.intersection(n.expr))
    fresh_f: dict[str, str] = {}
    for n in inodes:
        l = n.label
        if not n.children and l not in hyp_arg and stmts[l].kind == "f":
            v = stmts[l].expr[1]
            if v in subst:
                continue
            try:
                w, wl = next(fresh_variables(db, outer_label, stmts[l].expr[0], used))
            except StopIteration:
                raise NoFreshVariable(f"no fresh {stmts[l].expr[0]} variable left for dummy {v} "
                                 f"of {inlined_label} inside {outer_label}") from None
            used.add(w)
            subst[v] = (w,)
            fresh_f[l] = wl
    tmpl_cache: dict = {}
    syn = db.syntax_typecodes
    out: list[TreeNode] = []
    y: list[int] = []
    # iterative walk: frames are (which tree, node, parent index, arg position, label of a P node)
    stack = [("P", 0, -1, 0, 0)]
    while stack:
        which, i, parent, pos, label_y = stack.pop()
        if which == "P":
            if i == node:
                stack.append(("T", 0, parent, pos, 1))
                continue
            n = onodes[i]
            label, expr = n.label, n.expr
        else:
            n = inodes[i]
            label = n.label
            if not n.children and label in hyp_arg:
                stack.append(("P", hyp_arg[label], parent, pos, 1))  # an argument root came from T
                continue
            t = tmpl_cache.get(n.expr)
            if t is None:
                t = tmpl_cache[n.expr] = template(n.expr, variables)
            label, expr, label_y = fresh_f.get(label, label), substitute(t, subst), 1
        me = len(out)
        depth = 0
        if parent >= 0:
            up = out[parent]
            up.children.append(me)
            depth = up.depth + 1
        out.append(TreeNode(label, n.kind, expr, [], parent, pos, depth, -1, expr[0] in syn))
        y.append(label_y)
        kids = n.children
        for k in range(len(kids) - 1, -1, -1):
            stack.append((which, kids[k], me, k, 0))
    return Example(ProofTree(outer_label, out), inlined_label, y)


def examples_for(db: Database, label: str, apps: list[tuple[int, str]], opts: ExpansionOptions,
                 trees: dict | None = None) -> list[Example | None]:
    """The examples of one outer proof (None where no fresh variable was left)."""
    if not apps:
        return []
    outer = proof_tree(db, label, opts.max_nodes)
    trees = {} if trees is None else trees
    out: list[Example | None] = []
    for i, t in apps:
        tt = trees.get(t)
        if tt is None:
            tt = trees[t] = proof_tree(db, t, opts.max_inlined_proof)
        try:
            ex = inline(db, outer, label, i, tt, t)
        except NoFreshVariable:
            out.append(None)
            continue
        out.append(ex.essential() if opts.essential_only else ex)
    return out


def _build_for(chosen: dict[str, list[tuple[int, str]]], opts: ExpansionOptions, trees: dict, db: Database,
               label: str) -> list[Example | None]:
    return examples_for(db, label, chosen.get(label, []), opts, trees)


@dataclass
class Plan:
    """Which applications become examples: the split and the caps, decided up front."""

    groups: dict[str, str]                         # inlined theorem -> split
    chosen: dict[str, list[tuple[int, str]]]       # outer proof -> [(node, inlined theorem)]
    applications: int                              # admissible applications before the caps

    def outer_proofs(self, db: Database) -> list[str]:
        return sorted(self.chosen, key=lambda l: db[l].index)


def plan_expansion(db: Database, opts: ExpansionOptions, progress: bool = False,
                   jobs: int | None = None) -> Plan:
    """Find applications, split by inlined theorem, cap per theorem (seeded)."""
    cands = find_candidates(db, opts, progress=progress, jobs=jobs)
    groups = grouped_split(list(cands), opts.split, opts.seed)
    rng = random.Random(opts.seed + 1)
    chosen: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for t in sorted(cands):
        apps = sorted(cands[t])
        cap = opts.cap_train if groups[t] == "train" else opts.cap_eval
        if len(apps) > cap:
            apps = sorted(rng.sample(apps, cap))
        for p, i in apps:
            chosen[p].append((i, t))
    if opts.max_examples is not None:
        flat = sorted((p, i, t) for p, v in chosen.items() for i, t in v)
        if len(flat) > opts.max_examples:
            chosen = defaultdict(list)
            for p, i, t in sorted(rng.sample(flat, opts.max_examples)):
                chosen[p].append((i, t))
    return Plan(groups, dict(chosen), sum(len(v) for v in cands.values()))


@dataclass
class Expansion:
    """The dataset before featurisation: examples per split, and what was skipped."""

    splits: dict[str, list[Example]]
    groups: dict[str, str]                # inlined theorem -> split
    applications: int                     # admissible applications before the caps
    options: ExpansionOptions
    skipped_no_fresh_variable: int = 0    # dummies with no variable in scope to rename to

    def summary(self) -> dict:
        exs = [e for s in self.splits.values() for e in s]
        nodes = sum(e.num_nodes for e in exs)
        pos = sum(sum(e.y) for e in exs)
        return {
            "examples": len(exs),
            "inlined_theorems": len({e.inlined for e in exs}),
            "nodes": nodes,
            "mean_nodes": round(nodes / len(exs), 1) if exs else 0,
            "max_nodes": max((e.num_nodes for e in exs), default=0),
            "positive_fraction": round(pos / nodes, 4) if nodes else 0.0,
            "applications": self.applications,
            "skipped_no_fresh_variable": self.skipped_no_fresh_variable,
            "splits": {k: len(v) for k, v in self.splits.items()},
            "seed": self.options.seed,
        }


def build_expansion(db: Database, opts: ExpansionOptions = ExpansionOptions(), progress: bool = False,
                    jobs: int | None = None) -> Expansion:
    """All examples in memory (small databases; see refactor.dataset for streaming)."""
    plan = plan_expansion(db, opts, progress=progress, jobs=jobs)
    splits: dict[str, list[Example]] = {"train": [], "valid": [], "test": []}
    skipped = 0
    build = partial(_build_for, plan.chosen, opts, {})  # the dict: inlined trees, cached per process
    for _, built in imap_theorems(db, build, plan.outer_proofs(db), jobs=jobs,
                                  desc="inlining" if progress else None):
        for ex in built:
            if ex is None:
                skipped += 1
            else:
                splits[plan.groups[ex.inlined]].append(ex)
    return Expansion(splits, plan.groups, plan.applications, opts, skipped)
