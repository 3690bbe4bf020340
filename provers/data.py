"""Training examples for the prover: the ``|-`` steps of training proofs.

Each :class:`Step` is one human proof step seen as the search would see
it: the goal, the assertion the human applied, the other assertions that
also match the goal (the relevance model's negatives), the pool of terms
offered for each variable the goal leaves free (with the human's term when
the pool holds it), and goals for the value model: the human subgoals are
provable, subgoals of wrong matching assertions mostly are not.

Only proofs of the split's training theorems (and of theorems the split
does not know: those a refactoring inserted) are read; held-out proofs are
never opened.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from metamath import check
from metamath.grammar import proof_syntax_trees

from .actions import connective_terms, problem, retrieved, term_pool
from .library import Library
from .split import Split
from .terms import Term, from_tree, substitute

MAX_POOL = 16  # pool terms per free slot kept for training (the human term always among them)


@dataclass
class Step:
    theorem: str
    goal: Term
    assertion: str
    applicable: list[str]
    #: per free variable: (variable, pool terms, index of the human term or -1)
    slots: list[tuple[str, list[Term], int]]
    subgoals: list[Term]
    negatives: list[Term]


def training_theorems(lib: Library, split: Split) -> list[str]:
    """Theorems whose proofs the prover may learn from: the split's train part
    and every logical ``$p`` the split does not name (inserted by a refactoring)."""
    held = set(split.valid) | set(split.test)
    return [l for l in lib.db.theorems() if l in lib.assertions and l not in held]


def steps_of(lib: Library, label: str, rng: random.Random, negatives: int = 2) -> list[Step]:
    """The training steps of one theorem's proof."""
    return steps_of_proof(lib, label, check(lib.db, label, record=True), rng, negatives)


def steps_of_proof(lib: Library, label: str, proof, rng: random.Random, negatives: int = 2) -> list[Step]:
    """The steps of ``proof`` (a recorded proof DAG of ``label``: ``check(..., record=True)``
    or ``check_rpn(..., record=True)``), as :func:`steps_of` makes them."""
    db = lib.db
    prob = problem(lib, label)
    trees = proof_syntax_trees(db, proof)
    stmts = db.statements
    nodes = proof.nodes
    goal_of: dict[int, Term] = {}
    parent: dict[int, int] = {}
    for i, n in enumerate(nodes):
        if i in trees:
            continue
        for c in n.children:
            parent.setdefault(c, i)
    steps: list[tuple[int, str, dict]] = []
    for i, n in enumerate(nodes):
        if i in trees:
            continue
        st = stmts[n.label]
        if st.kind == "e":
            goal_of[i] = lib.term(st.expr, stmts[label])
            continue
        a = lib.assertions[n.label]
        subst = {h: from_tree(trees[c]) for h, c in zip(st.frame.hyps, n.children) if stmts[h].kind == "f"}
        goal_of[i] = substitute(a.conclusion, subst)
        steps.append((i, n.label, subst))
    known = set(goal_of.values())
    facts = list(prob.hyps)  # what a search knows before it proves anything
    out: list[Step] = []
    for i, alabel, subst in steps:
        a = lib.assertions[alabel]
        goal = goal_of[i]
        if a.discouraged:
            continue
        matched = lib.matches(goal, prob.index)
        path, j = [goal], i
        while j in parent:
            j = parent[j]
            path.append(goal_of[j])
        slots = []
        if a.free:
            sources = retrieved(lib, (*prob.context, *path))
            combos = connective_terms(lib, sources, prob.index)
            fixed = {v: t for v, t in subst.items() if v not in a.free}
            pool = term_pool(lib, prob, a, fixed, facts, sources, combos)
            for v in a.free:
                terms = pool.terms[v]
                human = subst[v]
                idx = terms.index(human) if human in terms else -1
                kept = [t for t in terms[:MAX_POOL] if t != human][: MAX_POOL - 1]
                if idx >= 0:
                    kept.insert(rng.randrange(len(kept) + 1), human)
                    idx = kept.index(human)
                slots.append((v, kept, idx))
        subgoals = [substitute(h, subst) for h in a.hyps]
        wrong = [(b, s) for b, s in matched if b.label != alabel and not b.free and b.hyps]
        rng.shuffle(wrong)
        negs: list[Term] = []
        for b, s in wrong[:negatives]:
            for h in b.hyps:
                t = substitute(h, s)
                if t not in known and t not in prob.hyps:
                    negs.append(t)
                    break
        out.append(Step(label, goal, alabel, [b.label for b, _ in matched], slots, subgoals, negs))
    return out


def build_steps(lib: Library, labels: list[str], seed: int = 0, progress: bool = False) -> list[Step]:
    """The training steps of ``labels``' proofs (seeded choice of value negatives)."""
    rng = random.Random(seed)
    it = labels
    if progress:
        from tqdm import tqdm

        it = tqdm(labels, desc="prover steps", unit="proof", leave=False, mininterval=0.5)
    out: list[Step] = []
    for l in it:
        out += steps_of(lib, l, rng)
    return out


def pool_coverage(steps: list[Step]) -> dict:
    """How many human free-slot terms the term pool offered (the ceiling of term filling)."""
    slots = [s for st in steps for s in st.slots]
    found = sum(1 for s in slots if s[2] >= 0)
    needs = [st for st in steps if st.slots]
    full = sum(1 for st in needs if all(s[2] >= 0 for s in st.slots))
    return {"slots": len(slots), "in_pool": found, "coverage": found / len(slots) if slots else 1.0,
            "steps_with_free_slots": len(needs), "steps_fully_covered": full}
