"""Vocabularies and node features: expansion examples -> torch-geometric graphs.

A node carries its step label, its expression as ordered Metamath symbols and
its position among its parent's arguments. Ids index the database's own
symbols and labels, so they are stable and known before any example is
built; which ids the *training* split saw is kept beside them, and the model
maps the others to an unknown token, so nothing about valid/test leaks into
learned embeddings. (Character bags of
the same strings, REFACTOR's features, are a fixed function of the string
and need no such care.)

Graph layout (``torch_geometric.data.Data``):
  ``label`` [N] long, ``tok`` [T] int32 (all nodes' symbols, concatenated in
  node order), ``tok_len`` [N] long, ``arg_pos`` [N] long, ``syntax`` [N]
  bool, ``edge_index`` [2, N-1] parent -> child, ``y`` [N] float;
  nodes in pre-order, root first.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    def from_database(cls, db) -> "Vocab":
        """Every math symbol and label of the database; nothing marked as seen yet."""
        symbols = ["<pad>", "<unk>"] + sorted(db.constants | db.variables)
        labels = ["<pad>", "<unk>"] + sorted(db.statements)
        return cls(symbols, labels, [i < 2 for i in range(len(symbols))], [i < 2 for i in range(len(labels))])

    def mark_seen(self, symbol_ids, label_ids) -> None:
        """Record ids that occur in the training split."""
        for i in symbol_ids:
            self.train_symbols[i] = True
        for i in label_ids:
            self.train_labels[i] = True

    def as_dict(self) -> dict:
        return {"symbols": self.symbols, "labels": self.labels,
                "train_symbols": self.train_symbols, "train_labels": self.train_labels}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        return cls(d["symbols"], d["labels"], d["train_symbols"], d["train_labels"])

    def index(self) -> tuple[dict[str, int], dict[str, int]]:
        return ({s: i for i, s in enumerate(self.symbols)}, {l: i for i, l in enumerate(self.labels)})


def encode(ex: Example, sym_ids: dict[str, int], lab_ids: dict[str, int], max_tokens: int = 128) -> dict:
    """One example as compact numpy arrays (cheap to send between processes)."""
    toks: list[int] = []
    lens: list[int] = []
    nodes = ex.tree.nodes
    for n in nodes:
        ids = [sym_ids.get(s, UNK) for s in n.expr[:max_tokens]]
        toks.extend(ids)
        lens.append(len(ids))
    return {
        "label": np.array([lab_ids.get(n.label, UNK) for n in nodes], dtype=np.int64),
        "tok": np.array(toks, dtype=np.int32),
        "tok_len": np.array(lens, dtype=np.int64),
        "arg_pos": np.array([n.arg_pos for n in nodes], dtype=np.int64),
        "syntax": np.array([n.syntax for n in nodes], dtype=np.bool_),
        "parent": np.array([n.parent for n in nodes], dtype=np.int64),
        "y": np.array(ex.y, dtype=np.float32),
        "theorem": ex.theorem,
        "inlined": ex.inlined,
    }


def graph(arrays: dict) -> Data:
    """The graph of :func:`encode`'s arrays (layout in the module docstring)."""
    n = len(arrays["label"])
    parent = torch.from_numpy(arrays["parent"])
    edge_index = torch.stack([parent[1:], torch.arange(1, n)]) if n > 1 else torch.zeros(2, 0, dtype=torch.long)
    return Data(
        label=torch.from_numpy(arrays["label"]),
        tok=torch.from_numpy(arrays["tok"]),
        tok_len=torch.from_numpy(arrays["tok_len"]),
        arg_pos=torch.from_numpy(arrays["arg_pos"]),
        syntax=torch.from_numpy(arrays["syntax"]),
        edge_index=edge_index,
        y=torch.from_numpy(arrays["y"]),
        num_nodes=n,
        theorem=arrays["theorem"],
        inlined=arrays["inlined"],
    )


def to_graph(ex: Example, sym_ids: dict[str, int], lab_ids: dict[str, int], max_tokens: int = 128) -> Data:
    """One example as a graph."""
    return graph(encode(ex, sym_ids, lab_ids, max_tokens))
