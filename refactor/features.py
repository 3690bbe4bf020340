"""Vocabularies and node features: expansion examples -> torch-geometric graphs.

A node carries its step label, its expression as ordered Metamath symbols and
its position among its parent's arguments. Ids index one vocabulary built
over every split so that ids are stable; which ids the *training* split saw
is kept beside it, and the model maps the others to an unknown token, so
nothing about valid/test leaks into learned embeddings. (Character bags of
the same strings, REFACTOR's features, are a fixed function of the string
and need no such care.)

Graph layout (``torch_geometric.data.Data``):
  ``label`` [N] long, ``tok`` [T] long (all nodes' symbols, concatenated in
  node order), ``tok_len`` [N] long, ``arg_pos`` [N] long, ``syntax`` [N]
  bool, ``edge_index`` [2, N-1] parent -> child, ``y`` [N] float;
  nodes in pre-order, root first.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch_geometric.data import Data

from .expansion import Example

PAD, UNK = 0, 1


@dataclass
class Vocab:
    """Symbols and labels with ids (0 pad, 1 unknown) and the train-seen masks."""

    symbols: list[str]
    labels: list[str]
    train_symbols: list[bool]
    train_labels: list[bool]

    @classmethod
    def build(cls, splits: dict[str, list[Example]]) -> "Vocab":
        syms: dict[str, int] = {}
        labs: dict[str, int] = {}
        seen_s: set[str] = set()
        seen_l: set[str] = set()
        for name in ("train", "valid", "test"):
            for ex in splits.get(name, []):
                for l, e in zip(ex.labels, ex.exprs):
                    labs.setdefault(l, len(labs))
                    for s in e:
                        syms.setdefault(s, len(syms))
                    if name == "train":
                        seen_l.add(l)
                        seen_s.update(e)
        symbols = ["<pad>", "<unk>"] + sorted(syms)
        labels = ["<pad>", "<unk>"] + sorted(labs)
        return cls(symbols, labels, [i < 2 or s in seen_s for i, s in enumerate(symbols)],
                   [i < 2 or l in seen_l for i, l in enumerate(labels)])

    def as_dict(self) -> dict:
        return {"symbols": self.symbols, "labels": self.labels,
                "train_symbols": self.train_symbols, "train_labels": self.train_labels}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        return cls(d["symbols"], d["labels"], d["train_symbols"], d["train_labels"])

    def index(self) -> tuple[dict[str, int], dict[str, int]]:
        return ({s: i for i, s in enumerate(self.symbols)}, {l: i for i, l in enumerate(self.labels)})


def to_graph(ex: Example, sym_ids: dict[str, int], lab_ids: dict[str, int], max_tokens: int = 128) -> Data:
    """One example as a graph (see the module docstring for the layout)."""
    toks: list[int] = []
    lens: list[int] = []
    for e in ex.exprs:
        ids = [sym_ids.get(s, UNK) for s in e[:max_tokens]]
        toks.extend(ids)
        lens.append(len(ids))
    n = ex.num_nodes
    src = [p for p in ex.parent[1:]]
    dst = list(range(1, n))
    return Data(
        label=torch.tensor([lab_ids.get(l, UNK) for l in ex.labels], dtype=torch.long),
        tok=torch.tensor(toks, dtype=torch.long),
        tok_len=torch.tensor(lens, dtype=torch.long),
        arg_pos=torch.tensor(ex.arg_pos, dtype=torch.long),
        syntax=torch.tensor(ex.syntax, dtype=torch.bool),
        edge_index=torch.tensor([src, dst], dtype=torch.long).reshape(2, n - 1),
        y=torch.tensor(ex.y, dtype=torch.float),
        num_nodes=n,
        theorem=ex.theorem,
        inlined=ex.inlined,
    )
