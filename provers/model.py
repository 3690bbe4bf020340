"""The prover's networks: one tree encoder, three small heads.

Terms are encoded by message passing over their syntax trees, written with
``torch.nn.Linear`` on padded ``[batch, nodes, dim]`` tensors and a node
mask (the layers influence tooling such as kronfluence can see; the
encoder is called once per forward pass on every tree involved). Node
input: the one-hot label (a syntax axiom, or a variable renamed
canonically per typecode: ``wff#0``, ``wff#1`` ... in order of first
appearance in the theorem, so names carry no meaning), the one-hot argument
position and the depth. Each round adds self, child-sum and parent
messages; the readout is ``[root; masked mean]``.

Heads, on the state ``s = MLP[goal; context]`` (context: mean of the
theorem's encoded hypotheses, or a learned vector when it has none):

* relevance: ``s . A(a)``, ``A(a)`` encoding the assertion's conclusion and
  hypotheses (cached: it depends on the statement only, so inserted
  theorems need no parameters of their own);
* term: ``Q[s; A(a)] . K(term)`` over a free slot's pool;
* value: ``sigmoid(MLP[goal; context])``, the chance the goal is provable.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .terms import Term

MAX_ARG = 12
MAX_VARS = 24  # canonical variables per typecode; later ones share the last token


@dataclass(frozen=True)
class Vocab:
    labels: tuple[str, ...]  # syntax axioms, then variable tokens, then "<unk>"

    @classmethod
    def of(cls, syntax_labels, typecodes) -> "Vocab":
        toks = sorted(syntax_labels) + [f"{tc}#{k}" for tc in sorted(typecodes) for k in range(MAX_VARS)]
        return cls(tuple(toks) + ("<unk>",))

    def index(self) -> dict[str, int]:
        return {l: i for i, l in enumerate(self.labels)}


class Namer:
    """Canonical variable tokens for one theorem (or one assertion): the k-th
    distinct variable of a typecode met is ``tc#k``."""

    def __init__(self, var_typecode: dict[str, str]):
        self.var_typecode = var_typecode
        self.names: dict[str, str] = {}
        self.count: dict[str, int] = {}

    def name(self, flabel: str) -> str:
        n = self.names.get(flabel)
        if n is None:
            tc = self.var_typecode[flabel]
            k = self.count.get(tc, 0)
            self.count[tc] = k + 1
            n = self.names[flabel] = f"{tc}#{min(k, MAX_VARS - 1)}"
        return n

    def see(self, *terms: Term) -> "Namer":
        for t in terms:
            todo = [t]
            while todo:
                x = todo.pop()
                if len(x) == 1 and x[0] in self.var_typecode:
                    self.name(x[0])
                todo.extend(reversed(x[1:]))
        return self


@dataclass
class TreeBatch:
    ids: torch.Tensor      # [B, N] token ids
    argpos: torch.Tensor   # [B, N]
    depth: torch.Tensor    # [B, N] float
    adj: torch.Tensor      # [B, N, N] adj[b, i, j] = 1 when j is a child of i
    mask: torch.Tensor     # [B, N] float

    def to(self, device) -> "TreeBatch":
        return TreeBatch(*(getattr(self, f).to(device) for f in ("ids", "argpos", "depth", "adj", "mask")))


def _flatten(term: Term, namer: Namer, index: dict[str, int], unk: int) -> list[tuple[int, int, int, int]]:
    """One tree's nodes as (token id, argument position, depth, parent); node 0 is the root."""
    nodes: list[tuple[int, int, int, int]] = []
    todo = [(term, 0, 0, -1)]
    while todo:
        x, pos, d, par = todo.pop()
        me = len(nodes)
        lab = x[0]
        if len(x) == 1 and lab in namer.var_typecode:
            lab = namer.name(lab)
        nodes.append((index.get(lab, unk), min(pos, MAX_ARG), d, par))
        for k in range(len(x) - 1, 0, -1):
            todo.append((x[k], k, d + 1, me))
    return nodes


def _pad(flat: list[list[tuple[int, int, int, int]]], unk: int) -> TreeBatch:
    B, N = len(flat), max(len(n) for n in flat)
    ids = torch.full((B, N), unk, dtype=torch.long)
    argpos = torch.zeros((B, N), dtype=torch.long)
    depth = torch.zeros((B, N))
    adj = torch.zeros((B, N, N))
    mask = torch.zeros((B, N))
    for b, nodes in enumerate(flat):
        n = len(nodes)
        ids[b, :n] = torch.tensor([x[0] for x in nodes])
        argpos[b, :n] = torch.tensor([x[1] for x in nodes])
        depth[b, :n] = torch.tensor([x[2] for x in nodes], dtype=torch.float)
        mask[b, :n] = 1
        par = [(x[3], i) for i, x in enumerate(nodes) if x[3] >= 0]
        if par:
            p = torch.tensor(par)
            adj[b, p[:, 0], p[:, 1]] = 1
    return TreeBatch(ids, argpos, depth, adj, mask)


def tree_batch(trees: list[tuple[Term, Namer]], index: dict[str, int]) -> TreeBatch:
    """Pad ``trees`` (each a term with the namer of its variables) into tensors; node 0 is the root."""
    unk = index["<unk>"]
    return _pad([_flatten(t, n, index, unk) for t, n in trees], unk)


#: padded nodes (trees x largest tree) per encoder call on a CPU: a batch's trees run from one node to
#: a hundred, and one padded batch costs ``B x N^2`` in the adjacency products; groups of similar
#: size cost about half as much on set-fol's training batches. On a GPU one call is cheaper.
CPU_PAD_BUDGET = 1024


def encode_trees(net: "ProverNet", trees: list[tuple[Term, Namer]], index: dict[str, int], device,
                 pad_budget: int | None = None) -> torch.Tensor:
    """``[len(trees), dim]``: ``net.encode`` of each tree, the same vectors as one padded batch.

    The trees are encoded in groups of similar size, each group padded to its own largest tree and
    holding at most ``pad_budget`` padded nodes (default: :data:`CPU_PAD_BUDGET` on a CPU, one
    group on other devices); padding is masked out, so the grouping changes no vector."""
    unk = index["<unk>"]
    flat = [_flatten(t, n, index, unk) for t, n in trees]
    if pad_budget is None:
        pad_budget = CPU_PAD_BUDGET if torch.device(device).type == "cpu" else 0
    if pad_budget <= 0 or len(flat) < 2:
        return net.encode(_pad(flat, unk).to(device))
    order = sorted(range(len(flat)), key=lambda i: len(flat[i]))
    groups: list[list[int]] = [[]]
    for i in order:
        g = groups[-1]
        if g and (len(g) + 1) * len(flat[i]) > pad_budget:
            groups.append(g := [])
        g.append(i)
    if len(groups) == 1:
        return net.encode(_pad(flat, unk).to(device))
    vecs = torch.cat([net.encode(_pad([flat[i] for i in g], unk).to(device)) for g in groups])
    where = torch.empty(len(flat), dtype=torch.long)
    where[torch.tensor([i for g in groups for i in g])] = torch.arange(len(flat))
    return vecs[where.to(vecs.device)]


class ProverNet(nn.Module):
    def __init__(self, vocab_size: int, dim: int = 64, rounds: int = 3):
        super().__init__()
        self.vocab_size, self.dim, self.rounds = vocab_size, dim, rounds
        self.inp = nn.Linear(vocab_size + MAX_ARG + 2, dim)
        self.self_msg = nn.ModuleList(nn.Linear(dim, dim) for _ in range(rounds))
        self.child_msg = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(rounds))
        self.parent_msg = nn.ModuleList(nn.Linear(dim, dim, bias=False) for _ in range(rounds))
        self.readout = nn.Linear(2 * dim, dim)
        self.no_context = nn.Linear(1, dim, bias=False)
        self.state1 = nn.Linear(2 * dim, dim)
        self.state2 = nn.Linear(dim, dim)
        self.assertion = nn.Linear(2 * dim, dim)
        self.slot = nn.Linear(2 * dim, dim)
        self.term_key = nn.Linear(dim, dim)
        self.value1 = nn.Linear(2 * dim, dim)
        self.value2 = nn.Linear(dim, 1)

    def encode(self, tb: TreeBatch) -> torch.Tensor:
        """``[B, dim]``: one vector per tree."""
        x = torch.cat([nn.functional.one_hot(tb.ids, self.vocab_size).float(),
                       nn.functional.one_hot(tb.argpos, MAX_ARG + 1).float(),
                       (tb.depth / 8.0).unsqueeze(-1)], dim=-1)
        m = tb.mask.unsqueeze(-1)
        h = torch.relu(self.inp(x)) * m
        up = tb.adj.transpose(1, 2)
        for r in range(self.rounds):
            msg = self.self_msg[r](h) + self.child_msg[r](torch.bmm(tb.adj, h)) + self.parent_msg[r](torch.bmm(up, h))
            h = (h + torch.relu(msg)) * m
        mean = h.sum(1) / m.sum(1).clamp(min=1)
        return torch.relu(self.readout(torch.cat([h[:, 0], mean], dim=-1)))

    def context(self, hyp_vecs: torch.Tensor | None, device=None) -> torch.Tensor:
        """``[dim]``: the mean of a theorem's hypothesis vectors, or the learned empty context."""
        if hyp_vecs is None or len(hyp_vecs) == 0:
            return self.no_context(torch.ones(1, device=device or self.inp.weight.device))
        return hyp_vecs.mean(0)

    def state(self, goal: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        return self.state2(torch.relu(self.state1(torch.cat([goal, ctx], dim=-1))))

    def assertion_vec(self, concl: torch.Tensor, hyps_mean: torch.Tensor) -> torch.Tensor:
        return self.assertion(torch.cat([concl, hyps_mean], dim=-1))

    def term_logits(self, s: torch.Tensor, a: torch.Tensor, terms: torch.Tensor) -> torch.Tensor:
        """``s``, ``a``: ``[dim]``; ``terms``: ``[T, dim]`` -> ``[T]``."""
        q = self.slot(torch.cat([s, a], dim=-1))
        return self.term_key(terms) @ q

    def value_logit(self, goal: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        return self.value2(torch.relu(self.value1(torch.cat([goal, ctx], dim=-1)))).squeeze(-1)
