"""An example-major forward pass of the prover's loss, for per-example gradients.

:func:`provers.train.batch_loss` encodes the trees of a whole batch in one
``[trees, nodes, dim]`` tensor, so dim 0 of a layer's input mixes examples.
Per-example gradient tools (kronfluence's hooks, LoGra-style projections)
need dim 0 of every ``nn.Linear`` input to be the example. Here one
*example* is a list of steps (one training step, or every step of a found
proof) and all its trees are flattened into one row ``[E, nodes, dim]``;
message passing gathers parents and scatter-adds children along the row,
so each Linear of :class:`~provers.model.ProverNet` is called exactly once
per forward, on inputs shaped ``[E, ..., d_in]``. Padding is zeroed before
each layer and :meth:`ExampleNet.masks` names the real rows per layer
(kronfluence's ``get_attention_mask``).

The per-example loss is the one ``batch_loss`` sums (relevance cross
entropy of the applied assertion among the matching ones, capped at
``max_applicable`` with a choice seeded by the step itself, so that a
step's loss never depends on its batch; term cross entropy per free slot
whose pool holds the human term; value binary cross entropy), checked
against ``batch_loss`` in the tests.
"""
from __future__ import annotations

import random

import torch
from torch import nn

from ..actions import problem
from ..data import Step
from ..model import MAX_ARG, ProverNet, tree_batch
from ..train import Encoder

NEG = -1e9


def capped_candidates(step: Step, cap: int | None) -> list[str]:
    """The step's matching assertions, at most ``cap`` with the applied one always in
    (a choice seeded by the step's theorem and goal, not by its batch)."""
    cands = list(step.applicable)
    if cap is not None and len(cands) > cap:
        others = [c for c in cands if c != step.assertion]
        rng = random.Random(f"{step.theorem}|{step.goal}|{step.assertion}")
        cands = [step.assertion] + rng.sample(others, cap - 1)
    return cands


def _pad(rows, fill, dtype=torch.long, depth: int = 1) -> torch.Tensor:
    """One nested list per example, ``depth`` ragged levels inside each -> a padded tensor."""
    def shape(x, d):
        if d == 0:
            return []
        sub = [shape(y, d - 1) for y in x]
        inner = [max(s[i] for s in sub) if sub else 0 for i in range(d - 1)] if d > 1 else []
        return [len(x)] + inner

    depth += 1  # the example level
    dims = [len(rows)] + [max(1, x) for x in shape(rows, depth)[1:]]
    out = torch.full(dims, fill, dtype=dtype)

    def put(x, idx, d):
        if d == 1:
            if x:
                out[tuple(idx)][: len(x)] = torch.tensor(x, dtype=dtype)
            return
        for i, y in enumerate(x):
            put(y, idx + [i], d - 1)

    put(rows, [], depth)
    return out


class Featurizer:
    """Steps -> the padded example-major tensors of :class:`ExampleNet`."""

    def __init__(self, enc: Encoder, max_applicable: int | None = 64, values: bool = True):
        self.enc = enc
        self.lib = enc.lib
        self.max_applicable = max_applicable
        self.values = values
        self._hyps: dict[str, list] = {}

    def hyps_of(self, label: str) -> list:
        h = self._hyps.get(label)
        if h is None:
            h = self._hyps[label] = list(problem(self.lib, label).hyps)
        return h

    def _example(self, steps: list[Step]) -> dict:
        trees: list = []
        where: dict = {}

        def add(key, term, namer) -> int:
            i = where.get(key)
            if i is None:
                i = where[key] = len(trees)
                trees.append((term, namer))
            return i

        units: dict[str, int] = {}
        u_concl: list[int] = []
        u_hyps: list[list[int]] = []

        def unit(label: str) -> int:
            u = units.get(label)
            if u is None:
                u = units[label] = len(u_concl)
                ts = self.enc.assertion_trees(label)
                idx = [add(("a", label, k), t, n) for k, (t, n) in enumerate(ts)]
                u_concl.append(idx[0])
                u_hyps.append(idx[1:])
            return u

        ex = {k: [] for k in ("goal", "hyp", "cand", "target", "human", "slot_terms", "slot_target",
                              "val", "val_y")}
        for st in steps:
            nm = self.enc.theorem_namer(st.theorem)
            ex["goal"].append(add(("t", st.theorem, st.goal), st.goal, nm))
            ex["hyp"].append([add(("t", st.theorem, h), h, nm) for h in self.hyps_of(st.theorem)])
            cands = capped_candidates(st, self.max_applicable)
            ex["cand"].append([unit(c) for c in cands])
            ex["target"].append(cands.index(st.assertion))
            ex["human"].append(unit(st.assertion))
            sl = [s for s in st.slots if s[2] >= 0]
            ex["slot_terms"].append([[add(("t", st.theorem, t), t, nm) for t in s[1]] for s in sl])
            ex["slot_target"].append([s[2] for s in sl])
            vals = [(t, 1.0) for t in st.subgoals] + [(t, 0.0) for t in st.negatives] if self.values else []
            ex["val"].append([add(("t", st.theorem, t), t, nm) for t, _ in vals])
            ex["val_y"].append([y for _, y in vals])
        tb = tree_batch(trees, self.enc.index)
        # flatten the padded trees into one row of nodes
        pos = torch.full(tb.mask.shape, -1, dtype=torch.long)
        real = tb.mask.bool()
        pos[real] = torch.arange(int(real.sum()))
        ids, argpos, depth = tb.ids[real], tb.argpos[real], tb.depth[real]
        tree_of = real.nonzero()[:, 0]
        parent = torch.full((len(ids),), -1, dtype=torch.long)
        t, i, j = tb.adj.nonzero(as_tuple=True)
        parent[pos[t, j]] = pos[t, i]
        ex.update(ids=ids.tolist(), argpos=argpos.tolist(), depth=depth.tolist(), tree_of=tree_of.tolist(),
                  parent=parent.tolist(), root=pos[:, 0].tolist(), tree_size=tb.mask.sum(1).tolist(),
                  u_concl=u_concl, u_hyps=u_hyps)
        return ex

    def __call__(self, examples: list[list[Step]]) -> dict[str, torch.Tensor]:
        """``examples``: one list of steps per example (a training step is ``[step]``)."""
        exs = [self._example(list(e)) for e in examples]
        M = max(len(e["ids"]) for e in exs)
        T = max(len(e["root"]) for e in exs)
        b = {}
        b["ids"] = _pad([e["ids"] for e in exs], self.enc.index["<unk>"])
        b["argpos"] = _pad([e["argpos"] for e in exs], 0)
        b["depth"] = _pad([e["depth"] for e in exs], 0.0, torch.float)
        b["node_mask"] = _pad([[1.0] * len(e["ids"]) for e in exs], 0.0, torch.float)
        b["parent"] = _pad([[p if p >= 0 else M for p in e["parent"]] for e in exs], M)
        b["tree_of"] = _pad([e["tree_of"] for e in exs], T)
        b["root"] = _pad([e["root"] for e in exs], 0)
        b["tree_size"] = _pad([e["tree_size"] for e in exs], 0.0, torch.float)
        b["tree_mask"] = _pad([[1.0] * len(e["root"]) for e in exs], 0.0, torch.float)
        b["step_mask"] = _pad([[1.0] * len(e["goal"]) for e in exs], 0.0, torch.float)
        b["goal"] = _pad([e["goal"] for e in exs], T)
        b["hyp"] = _pad([e["hyp"] for e in exs], T, depth=2)
        b["hyp_mask"] = _pad([[[1.0] * len(h) for h in e["hyp"]] for e in exs], 0.0, torch.float, depth=2)
        b["u_concl"] = _pad([e["u_concl"] for e in exs], T)
        b["u_mask"] = _pad([[1.0] * len(e["u_concl"]) for e in exs], 0.0, torch.float)
        b["u_hyps"] = _pad([e["u_hyps"] for e in exs], T, depth=2)
        b["u_hyp_mask"] = _pad([[[1.0] * len(h) for h in e["u_hyps"]] for e in exs], 0.0, torch.float, depth=2)
        b["cand"] = _pad([e["cand"] for e in exs], 0, depth=2)
        b["cand_mask"] = _pad([[[1.0] * len(c) for c in e["cand"]] for e in exs], 0.0, torch.float, depth=2)
        b["target"] = _pad([e["target"] for e in exs], 0)
        b["human"] = _pad([e["human"] for e in exs], 0)
        b["slot_terms"] = _pad([e["slot_terms"] for e in exs], T, depth=3)
        b["term_mask"] = _pad([[[[1.0] * len(p) for p in s] for s in e["slot_terms"]] for e in exs], 0.0,
                              torch.float, depth=3)
        b["slot_target"] = _pad([e["slot_target"] for e in exs], 0, depth=2)
        b["slot_mask"] = _pad([[[1.0] * len(s) for s in e["slot_target"]] for e in exs], 0.0, torch.float, depth=2)
        b["val"] = _pad([e["val"] for e in exs], T, depth=2)
        b["val_y"] = _pad([e["val_y"] for e in exs], 0.0, torch.float, depth=2)
        b["val_mask"] = _pad([[[1.0] * len(v) for v in e["val"]] for e in exs], 0.0, torch.float, depth=2)
        # equal shapes of the ragged-at-the-same-level tensors
        K = b["step_mask"].shape[1]
        for k in ("goal", "target", "human"):
            assert b[k].shape == (len(exs), K)
        return b


def _take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x``: ``[E, R, d]``; ``idx``: ``[E, ...]`` row numbers -> ``[E, ..., d]``."""
    E = x.shape[0]
    ar = torch.arange(E, device=x.device).view(E, *([1] * (idx.dim() - 1)))
    return x[ar, idx]


def _with_zero_row(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, x.new_zeros(x.shape[0], 1, x.shape[2])], dim=1)


class ExampleNet(nn.Module):
    """:class:`ProverNet`'s computation, one row per example (see the module docstring)."""

    def __init__(self, net: ProverNet):
        super().__init__()
        self.net = net

    def forward(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        net = self.net
        d = net.dim
        ids = b["ids"]
        E, M = ids.shape
        m = b["node_mask"].unsqueeze(-1)
        x = torch.cat([nn.functional.one_hot(ids, net.vocab_size).float(),
                       nn.functional.one_hot(b["argpos"], MAX_ARG + 1).float(),
                       (b["depth"] / 8.0).unsqueeze(-1)], dim=-1) * m
        h = torch.relu(net.inp(x)) * m
        par = b["parent"].unsqueeze(-1).expand(-1, -1, d)
        for r in range(net.rounds):
            parent_h = torch.gather(_with_zero_row(h), 1, par)
            child_sum = h.new_zeros(E, M + 1, d).scatter_add(1, par, h)[:, :M]
            msg = net.self_msg[r](h) + net.child_msg[r](child_sum) + net.parent_msg[r](parent_h)
            h = (h + torch.relu(msg)) * m
        T = b["tree_mask"].shape[1]
        tm = b["tree_mask"].unsqueeze(-1)
        sums = h.new_zeros(E, T + 1, d).scatter_add(1, b["tree_of"].unsqueeze(-1).expand(-1, -1, d), h)[:, :T]
        mean = sums / b["tree_size"].clamp(min=1).unsqueeze(-1)
        root = _take(h, b["root"])
        v = torch.relu(net.readout(torch.cat([root, mean], dim=-1) * tm)) * tm
        vp = _with_zero_row(v)  # index T: the zero vector of a padded tree
        sm = b["step_mask"].unsqueeze(-1)
        # context per step: mean of the theorem's hypotheses, or the learned empty context
        nh = b["hyp_mask"].sum(-1, keepdim=True)
        hmean = _take(vp, b["hyp"]).sum(2) / nh.clamp(min=1)
        noc = net.no_context(b["step_mask"].unsqueeze(-1))
        ctx = torch.where(nh > 0, hmean, noc)
        goal = _take(vp, b["goal"])
        s = net.state(goal * sm, ctx * sm)  # [E, K, d]
        # assertion vectors, once per distinct assertion of the example
        nuh = b["u_hyp_mask"].sum(-1, keepdim=True)
        uh = _take(vp, b["u_hyps"]).sum(2) / nuh.clamp(min=1)
        A = net.assertion_vec(_take(vp, b["u_concl"]), uh) * b["u_mask"].unsqueeze(-1)  # [E, U, d]
        Ac = _take(A, b["cand"])  # [E, K, C, d]
        rel = (Ac * s.unsqueeze(2)).sum(-1).masked_fill(b["cand_mask"] == 0, NEG)
        a = _take(A, b["human"])  # [E, K, d]
        has_slots = (b["slot_mask"].sum(-1, keepdim=True) > 0).float()
        q = net.slot(torch.cat([s, a], dim=-1) * has_slots)  # [E, K, d]
        keys = net.term_key(_take(vp, b["slot_terms"]) * b["term_mask"].unsqueeze(-1))  # [E, K, S, P, d]
        term = torch.einsum("ekspd,ekd->eksp", keys, q).masked_fill(b["term_mask"] == 0, NEG)
        vm = b["val_mask"].unsqueeze(-1)
        V = b["val"].shape[2]
        vl = net.value_logit(_take(vp, b["val"]) * vm, ctx.unsqueeze(2).expand(-1, -1, V, -1) * vm)
        return {"relevance": rel, "term": term, "value": vl}

    def masks(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Module name (relative to this wrapper) -> the mask of its real input rows."""
        node, tree, step = b["node_mask"], b["tree_mask"], b["step_mask"]
        out = {"net.inp": node, "net.readout": tree, "net.state1": step, "net.state2": step,
               "net.no_context": step * (b["hyp_mask"].sum(-1) == 0).float(), "net.assertion": b["u_mask"],
               "net.slot": step * (b["slot_mask"].sum(-1) > 0).float(), "net.term_key": b["term_mask"],
               "net.value1": b["val_mask"], "net.value2": b["val_mask"]}
        for r in range(self.net.rounds):
            for k in ("self_msg", "child_msg", "parent_msg"):
                out[f"net.{k}.{r}"] = node
        return out


def step_logprobs(out: dict, b: dict, targets: dict | None = None) -> dict[str, torch.Tensor]:
    """Per example ``[E]``: summed relevance and term log-probabilities of the targets
    (the batch's, or ``targets``) and the summed value binary cross entropy."""
    t = targets or {}
    rel = torch.log_softmax(out["relevance"], -1)
    rel = rel.gather(-1, t.get("target", b["target"]).unsqueeze(-1)).squeeze(-1) * b["step_mask"]
    term = torch.log_softmax(out["term"], -1)
    term = term.gather(-1, t.get("slot_target", b["slot_target"]).unsqueeze(-1)).squeeze(-1) * b["slot_mask"]
    y = t.get("val_y", b["val_y"])
    bce = nn.functional.binary_cross_entropy_with_logits(out["value"], y, reduction="none") * b["val_mask"]
    return {"relevance": rel.sum(-1), "term": term.sum((-1, -2)), "value_bce": bce.sum((-1, -2))}


def sample_targets(out: dict, b: dict, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Targets drawn from the model's own distributions (for the true Fisher)."""
    with torch.no_grad():
        def cat(logits):
            p = torch.softmax(logits, -1)
            flat = p.reshape(-1, p.shape[-1])
            return torch.multinomial(flat, 1, generator=generator).view(p.shape[:-1])

        y = torch.bernoulli(torch.sigmoid(out["value"]), generator=generator)
        return {"target": cat(out["relevance"]), "slot_target": cat(out["term"]), "val_y": y}


def example_loss(out: dict, b: dict, sample: bool = False, generator=None) -> torch.Tensor:
    """``[E]``: each example's training loss (``batch_loss``'s summand)."""
    lp = step_logprobs(out, b, sample_targets(out, b, generator) if sample else None)
    return -lp["relevance"] - lp["term"] + lp["value_bce"]


def example_logprob(out: dict, b: dict) -> torch.Tensor:
    """``[E]``: log-probability of each example's applied assertions and human terms (no value term)."""
    lp = step_logprobs(out, b)
    return lp["relevance"] + lp["term"]
