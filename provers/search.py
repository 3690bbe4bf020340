"""Best-first search over the AND-OR tree of goals, with a budget.

Goal (OR) nodes hold a term to prove; action (AND) nodes apply one
assertion and hold its subgoals. Costs are negative log-probabilities:

* an unexpanded goal costs ``-log v(goal)`` (the policy's value);
* an action costs ``-log p(action)``, plus a fixed step cost, plus the
  costs of its subgoals;
* an expanded goal costs the least of its actions; proven goals cost 0,
  dead ones infinity.

Each expansion follows the cheapest action from the root and, inside it,
the costliest unproven subgoal (the weakest link), to an unexpanded goal;
it asks the policy once for all candidate actions of that goal, keeps the
best ``width`` and scores their new subgoals' values in one call. A goal
equal to a hypothesis, or already proven anywhere in this search, is proven
at once; an action that would re-create a goal on its own path is skipped.

The search never looks at its budget while choosing, so a theorem proved
after ``n`` expansions under a budget of 512 is proved after ``n`` under any
budget of at least ``n``: one run gives the whole success-against-budget
curve (``SearchResult.expansions``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol

from .actions import Action, Problem, assignments, complete, connective_terms, retrieved, term_pool
from .library import Assertion, Library
from .terms import Term, postorder

INF = math.inf


class Policy(Protocol):
    """What guides the search: scores for assertions, terms and goals (log-probabilities)."""

    name: str

    def begin(self, prob: Problem) -> None: ...

    def relevance(self, prob: Problem, goal: Term, assertions: list[Assertion]) -> list[float]: ...

    def terms(self, prob: Problem, goal: Term, slots: list[tuple[Assertion, str, list[Term]]]) -> list[list[float]]:
        """For each free slot ``(assertion, variable, pool terms)``: a log-probability per term."""
        ...

    def values(self, prob: Problem, goals: list[Term]) -> list[float]: ...


@dataclass(eq=False)
class _Goal:
    term: Term
    parent: "_Act | None"
    path: frozenset  # goal terms from the root to here
    cost: float = 0.0
    proven: bool = False
    dead: bool = False
    expanded: bool = False
    acts: list = field(default_factory=list)
    pending: list = field(default_factory=list)  # ranked candidate actions not yet taken


@dataclass(eq=False)
class _Act:
    action: Action
    logp: float
    parent: _Goal
    goals: list = field(default_factory=list)
    cost: float = 0.0


@dataclass
class SearchResult:
    """``proof``: the found proof's labels in reverse Polish order (None when
    not proved); ``expansions``: expansions used (when proved, the number at
    which the proof was complete); ``applied``: assertion labels the proof
    uses; ``stopped``: why the search ended (``proved``, ``exhausted``,
    ``expansions``, ``seconds``)."""

    proved: bool
    expansions: int
    seconds: float
    proof: list[str] | None
    applied: list[str]
    stopped: str


@dataclass
class SearchConfig:
    max_expansions: int = 512
    max_seconds: float = 60.0
    width: int = 16  # actions kept per expansion
    terms_per_slot: int = 4
    actions_per_assertion: int = 8
    #: cost of every step on top of its -log p: without it a chain of steps each
    #: leaving one goal costs no more than one step, and the search dives forever
    step_cost: float = 0.5


class Search:
    """One proof search for one problem under one policy."""

    def __init__(self, lib: Library, prob: Problem, policy: Policy, cfg: SearchConfig):
        self.lib, self.prob, self.policy, self.cfg = lib, prob, policy, cfg
        # how each proven term was proven: ("hyp", label) or ("step", Action)
        self.proof_of: dict[Term, tuple] = {t: ("hyp", l) for t, l in prob.hyps.items()}
        self.facts: list[Term] = list(prob.hyps)
        self.value_cache: dict[Term, float] = {}
        self.expansions = 0

    # ----- the loop ------------------------------------------------------
    def run(self) -> SearchResult:
        t0 = time.perf_counter()
        self.policy.begin(self.prob)
        goal = self.prob.goal
        root = _Goal(goal, None, frozenset([goal]))
        stopped = "exhausted"
        if goal in self.proof_of:
            root.proven = True
        else:
            root.cost = -self._values([goal])[0]
        while not root.proven and not root.dead:
            if self.expansions >= self.cfg.max_expansions:
                stopped = "expansions"
                break
            if time.perf_counter() - t0 > self.cfg.max_seconds:
                stopped = "seconds"
                break
            leaf = self._select(root)
            self.expansions += 1
            self._expand(leaf)
            self._backup(leaf)
        seconds = time.perf_counter() - t0
        if root.proven:
            proof = self.rpn(goal)
            applied = sorted({l for l in proof if l in self.lib.assertions})
            return SearchResult(True, self.expansions, seconds, proof, applied, "proved")
        return SearchResult(False, self.expansions, seconds, None, [], stopped)

    def _select(self, g: _Goal) -> _Goal:
        while g.expanded and not (g.pending and all(a.cost == INF for a in g.acts)):
            act = min((a for a in g.acts if a.cost < INF), key=lambda a: a.cost)
            g = max((c for c in act.goals if not c.proven), key=lambda c: c.cost)
        return g

    # ----- expansion -----------------------------------------------------
    def _expand(self, g: _Goal) -> None:
        if g.term in self.proof_of:
            g.proven = g.expanded = True
            return
        if not g.expanded:
            g.expanded = True
            g.pending = self._ranked_actions(g)
        batch = self._take(g, self.cfg.width)
        new_terms: list[Term] = []
        for logp, action in batch:
            if any(s in g.path for s in action.subgoals):
                continue  # would re-create a goal on its own path
            act = _Act(action, logp, g)
            path = g.path | {g.term}
            for s in action.subgoals:
                child = _Goal(s, act, path | {s})
                if s in self.proof_of:
                    child.proven = True
                else:
                    new_terms.append(s)
                act.goals.append(child)
            g.acts.append(act)
            if all(c.proven for c in act.goals):
                self._prove(g.term, action)
                g.proven = True
                break
        if new_terms and not g.proven:
            todo = [t for t in dict.fromkeys(new_terms) if t not in self.value_cache]
            for t, v in zip(todo, self._values(todo) if todo else ()):
                self.value_cache[t] = v
            for act in g.acts:
                for c in act.goals:
                    if not c.proven and not c.expanded:
                        c.cost = -self.value_cache[c.term]

    def _values(self, terms: list[Term]) -> list[float]:
        return self.policy.values(self.prob, terms)

    def _take(self, g: _Goal, n: int) -> list[tuple[float, Action]]:
        """The next ``n`` actions of ``g``'s ranking that ``$d`` allows."""
        out = []
        while g.pending and len(out) < n:
            logp, a, subst, assign = g.pending.pop(0)
            filled = tuple((v, assign[v]) for v in a.free)
            act = complete(self.lib, a, {**subst, **assign}, self.prob.allowed, filled)
            if act is not None:
                out.append((logp, act))
        return out

    def _ranked_actions(self, g: _Goal) -> list[tuple]:
        """Every candidate action of ``g`` as ``(log-probability, assertion,
        conclusion substitution, free-variable assignment)``, best first; they
        become :class:`Action` objects only when taken."""
        lib, prob, cfg = self.lib, self.prob, self.cfg
        matched = lib.matches(g.term, prob.index)
        if not matched:
            return []
        rel = self.policy.relevance(prob, g.term, [a for a, _ in matched])
        out: list[tuple] = []
        sources = combos = None
        pending = []  # (relevance, assertion, substitution, pool) of assertions with free slots
        for (a, subst), r in zip(matched, rel):
            if not a.free:
                out.append((r, a, subst, {}))
                continue
            if sources is None:
                sources = retrieved(lib, (*prob.context, *g.path))
                combos = connective_terms(lib, sources, prob.index)
            pool = term_pool(lib, prob, a, subst, self.facts, sources, combos)
            if all(pool.terms[v] for v in a.free):
                pending.append((r, a, subst, pool))
        slots = [(a, v, pool.terms[v]) for _, a, _, pool in pending for v in a.free]
        scores = iter(self.policy.terms(prob, g.term, slots) if slots else ())
        for r, a, subst, pool in pending:
            choices: dict[str, list[Term]] = {}
            scored: dict[str, tuple[list[Term], list[float]]] = {}
            for v in a.free:
                ts, lp = pool.terms[v], next(scores)
                scored[v] = (ts, lp)
                ranked = sorted(range(len(ts)), key=lambda i: -lp[i])[: cfg.terms_per_slot]
                choices[v] = [ts[i] for i in ranked]
            for assign in assignments(a, pool, choices, cfg.actions_per_assertion):
                # a term's score by its place in the pool (terms are deep tuples: hashing each is dear)
                out.append((r + sum(scored[v][1][scored[v][0].index(t)] for v, t in assign.items()),
                            a, subst, assign))
        out.sort(key=lambda x: -x[0])
        return out

    # ----- backup --------------------------------------------------------
    def _prove(self, term: Term, action: Action) -> None:
        if term not in self.proof_of:
            self.proof_of[term] = ("step", action)
            self.facts.append(term)

    def _backup(self, g: _Goal | None) -> None:
        while g is not None:
            if not g.proven and g.expanded:  # an unexpanded goal keeps its value's cost
                for act in g.acts:
                    if act.cost == INF:
                        continue
                    if all(c.proven for c in act.goals):
                        self._prove(g.term, act.action)
                        g.proven = True
                        break
                    act.cost = self.cfg.step_cost - act.logp + sum(c.cost for c in act.goals)
                if not g.proven:
                    live = [a.cost for a in g.acts if a.cost < INF]
                    if live:
                        g.cost = min(live)
                    elif g.pending:
                        g.cost = 0.0  # its next actions wait: expand it again soon
                    else:
                        g.dead, g.cost = True, INF
            if g.proven:
                g.cost = 0.0
            act = g.parent
            if act is None:
                return
            if g.dead:
                act.cost = INF
            g = act.parent

    # ----- the proof -----------------------------------------------------
    def rpn(self, term: Term) -> list[str]:
        """The normal proof (labels in reverse Polish order) of a proven term."""
        how = self.proof_of[term]
        if how[0] == "hyp":
            return [how[1]]
        action: Action = how[1]
        out: list[str] = []
        for kind, x in action.assertion.order:
            if kind == "f":
                out += postorder(action.subst[x])
            else:
                out += self.rpn(action.subgoals[x])
        out.append(action.assertion.label)
        return out
