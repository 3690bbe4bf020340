"""The learned policy: a trained :class:`ProverNet` answering the search's questions.

Assertion vectors ``A(a)`` depend on the statement only and are computed
once for the whole corpus; goal and term vectors are cached per theorem
(variable names are canonical per theorem). Every call is one batched
forward pass, under ``torch.no_grad``.
"""
from __future__ import annotations

import torch

from .actions import Problem
from .library import Assertion, Library
from .model import ProverNet, Vocab
from .terms import Term
from .train import Encoder


class LearnedPolicy:
    name = "learned"

    def __init__(self, lib: Library, ck: dict, device: str = "cpu"):
        cfg = ck["config"]
        self.vocab = Vocab(tuple(ck["vocab"]))
        self.net = ProverNet(len(self.vocab.labels), cfg["dim"], cfg["rounds"])
        self.net.load_state_dict(ck["model"])
        self.device = torch.device(device)
        self.net.to(self.device).eval()
        self.enc = Encoder(lib, self.net, self.vocab, self.device)
        self.lib = lib
        labels = list(lib.assertions)
        with torch.no_grad():
            vecs = [self.enc.assertion_vecs(labels[i : i + 256]) for i in range(0, len(labels), 256)]
        self.A = torch.cat(vecs) if vecs else torch.zeros(0, self.net.dim)
        self.row = {l: i for i, l in enumerate(labels)}
        self._prob: Problem | None = None

    def begin(self, prob: Problem) -> None:
        self._prob = prob
        self._vec: dict[Term, torch.Tensor] = {}
        self._state: dict[Term, torch.Tensor] = {}
        self.namer = self.enc.theorem_namer(prob.label)
        with torch.no_grad():
            hyps = list(prob.hyps)
            self.ctx = self.net.context(self._vecs(hyps) if hyps else None, self.device)

    def _vecs(self, terms: list[Term]) -> torch.Tensor:
        todo = [t for t in dict.fromkeys(terms) if t not in self._vec]
        if todo:
            v = self.enc.encode([(t, self.namer) for t in todo])
            for t, x in zip(todo, v):
                self._vec[t] = x
        return torch.stack([self._vec[t] for t in terms])

    def _s(self, goal: Term) -> torch.Tensor:
        s = self._state.get(goal)
        if s is None:
            s = self._state[goal] = self.net.state(self._vecs([goal])[0], self.ctx)
        return s

    @torch.no_grad()
    def relevance(self, prob: Problem, goal: Term, assertions: list[Assertion]) -> list[float]:
        idx = torch.tensor([self.row[a.label] for a in assertions], device=self.device)
        return torch.log_softmax(self.A[idx] @ self._s(goal), 0).tolist()

    @torch.no_grad()
    def terms(self, prob: Problem, goal: Term, slots: list[tuple[Assertion, str, list[Term]]]) -> list[list[float]]:
        # column of each distinct term; the pools of one goal share most term objects, so look a
        # term up by identity first (a term is a deep tuple whose hash is recomputed at every lookup)
        col: dict[Term, int] = {}
        by_id: dict[int, int] = {}
        cols_of: list[list[int]] = []
        for _, _, ts in slots:
            row = []
            for t in ts:
                c = by_id.get(id(t))
                if c is None:
                    c = by_id[id(t)] = col.setdefault(t, len(col))
                row.append(c)
            cols_of.append(row)
        union = list(col)
        s = self._s(goal)
        A = self.A[torch.tensor([self.row[a.label] for a, _, _ in slots], device=self.device)]
        q = self.net.slot(torch.cat([s.expand(len(slots), -1), A], dim=-1))  # [k, dim]
        logits = q @ self.net.term_key(self._vecs(union)).T  # [k, T]
        # one gather and softmax per pool length (the same numbers as slot by slot, far fewer calls)
        by_len: dict[int, list[int]] = {}
        for i, (_, _, ts) in enumerate(slots):
            by_len.setdefault(len(ts), []).append(i)
        out: list[list[float]] = [[] for _ in slots]
        for rows in by_len.values():
            cols = torch.tensor([cols_of[i] for i in rows], device=self.device)
            lp = torch.log_softmax(torch.gather(logits[torch.tensor(rows, device=self.device)], 1, cols), 1)
            for i, r in zip(rows, lp.tolist()):
                out[i] = r
        return out

    @torch.no_grad()
    def values(self, prob: Problem, goals: list[Term]) -> list[float]:
        v = self._vecs(goals)
        logit = self.net.value_logit(v, self.ctx.expand(len(goals), -1))
        return torch.nn.functional.logsigmoid(logit).tolist()
