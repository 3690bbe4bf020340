"""The GNN node classifier: which proof nodes form the inlined theorem.

Node encoder -> message passing over the proof tree -> MLP head -> one logit
per node. The encoder sums (a) the step label's embedding, (b) the
expression: each symbol's embedding plus its position's embedding, averaged
over the expression (``features="tokens"``), or REFACTOR's bag of characters
of "expression <SEP> label" (``features="chars"``), and (c) the argument
position. Ids the training split never saw are mapped to the unknown token.

Presets are named configurations; ``refactor`` is REFACTOR's (10 GraphSAGE
layers, hidden 256, no residuals, character features, Adam 1e-3, weight
decay 1e-3, 4 graphs a batch, 500 epochs, seed 47) so the comparison is
exact; the others are sized for this CPU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch_geometric.nn import GATConv, GCNConv, SAGEConv

from .features import UNK, Vocab


@dataclass(frozen=True)
class ModelConfig:
    features: str = "tokens"     # tokens | chars
    use_expr: bool = True        # ablation: label-only when False
    use_label: bool = True       # ablation: expression-only when False
    edges: str = "both"          # both | down | up | none (ablation)
    conv: str = "sage"           # sage | gcn | gat
    hidden: int = 128
    layers: int = 4
    residual: bool = True
    norm: bool = True
    dropout: float = 0.1
    max_positions: int = 128
    max_arity: int = 16


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    pos_weight: float | None = None   # BCE positive weight; None = 1
    loss: str = "bce"                 # bce | focal: BCE times (1 - p_t)^focal_gamma, easy nodes count less |
                                      # structured: the true set's likelihood among inlined-shaped sets (tree CRF)
    focal_gamma: float = 2.0
    sampling: str = "uniform"         # uniform | balanced: every inlined theorem drawn equally often
    collapse_patience: int = 5        # stop after this many epochs with no positive node on valid (0: never)
    seed: int = 0
    max_train_examples: int | None = None  # subsample train (CPU-sized runs on big databases)
    init: str | None = None           # start from this checkpoint's weights (same model and dataset), new optimiser


@dataclass(frozen=True)
class Preset:
    model: ModelConfig
    train: TrainConfig
    description: str


PRESETS: dict[str, Preset] = {
    "refactor": Preset(
        ModelConfig(features="chars", hidden=256, layers=10, residual=False, norm=False, dropout=0.0),
        TrainConfig(epochs=500, batch_size=4, lr=1e-3, weight_decay=1e-3, seed=47),
        "REFACTOR's own: 10 SAGE layers, hidden 256, char bags, Adam 1e-3, wd 1e-3, 500 epochs, 4 graphs/batch",
    ),
    "cpu": Preset(
        ModelConfig(hidden=128, layers=6),
        TrainConfig(epochs=40, batch_size=32),
        "CPU-sized: 6 residual SAGE layers, hidden 128, symbol tokens with positions, 40 epochs",
    ),
    "demo": Preset(
        ModelConfig(hidden=64, layers=4),
        TrainConfig(epochs=12, batch_size=32),
        "demo: 4 residual SAGE layers, hidden 64, 12 epochs (a few minutes on 2 cores)",
    ),
    "tiny": Preset(
        ModelConfig(hidden=32, layers=2, dropout=0.0),
        TrainConfig(epochs=3, batch_size=16, lr=3e-3),
        "tests: 2 layers, hidden 32, 3 epochs",
    ),
}

LOSSES = ("bce", "focal", "structured")
SAMPLINGS = ("uniform", "balanced")

ABLATIONS = {
    "none": {},
    "no-edges": {"edges": "none"},
    "expr-only": {"use_label": False},
    "label-only": {"use_expr": False},
    "label-only-no-edges": {"use_expr": False, "edges": "none"},
}


def char_table(strings: list[str], chars: dict[str, int]) -> torch.Tensor:
    """[len(strings), len(chars)] character counts (rows 0/1 = pad/unk stay zero)."""
    t = torch.zeros(len(strings), len(chars))
    for i, s in enumerate(strings):
        if i < 2:
            continue
        for ch in s:
            t[i, chars[ch]] += 1
    return t


class ProofGNN(nn.Module):
    """Node classifier over proof trees (see the module docstring)."""

    def __init__(self, cfg: ModelConfig, vocab: Vocab):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.register_buffer("sym_known", torch.tensor(vocab.train_symbols, dtype=torch.bool))
        self.register_buffer("lab_known", torch.tensor(vocab.train_labels, dtype=torch.bool))
        if cfg.features == "chars":
            alphabet = sorted({ch for s in vocab.symbols[2:] + vocab.labels[2:] for ch in s} | {" "})
            chars = {c: i for i, c in enumerate(alphabet)}
            self.register_buffer("sym_chars", char_table(vocab.symbols, chars))
            self.register_buffer("lab_chars", char_table(vocab.labels, chars))
            self.char_emb = nn.Linear(len(chars), h, bias=False)
            self.sep = nn.Parameter(torch.zeros(h))
            self.space = chars[" "]
        else:
            self.sym_emb = nn.Embedding(len(vocab.symbols), h, padding_idx=0)
            self.pos_emb = nn.Embedding(cfg.max_positions, h)
            self.lab_emb = nn.Embedding(len(vocab.labels), h, padding_idx=0)
        self.arg_emb = nn.Embedding(cfg.max_arity, h)
        conv = {"sage": lambda: SAGEConv(h, h), "gcn": lambda: GCNConv(h, h),
                "gat": lambda: GATConv(h, h, heads=1)}[cfg.conv]
        self.convs = nn.ModuleList(conv() for _ in range(cfg.layers))
        self.norms = nn.ModuleList((nn.LayerNorm(h) if cfg.norm else nn.Identity()) for _ in range(cfg.layers))
        self.head = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 1))

    def _expr(self, tok: torch.Tensor, tok_len: torch.Tensor) -> torch.Tensor:
        tok = tok.long()
        n = tok_len.numel()
        node = torch.repeat_interleave(torch.arange(n, device=tok.device), tok_len)
        starts = torch.cumsum(tok_len, 0) - tok_len
        pos = torch.arange(tok.numel(), device=tok.device) - starts[node]
        if self.cfg.features == "chars":
            bag = torch.zeros(n, self.sym_chars.size(1), device=tok.device)
            bag.index_add_(0, node, self.sym_chars[tok])
            bag[:, self.space] += tok_len.clamp(min=1).float() - 1
            return bag
        ids = torch.where(self.sym_known[tok], tok, torch.full_like(tok, UNK))
        vec = self.sym_emb(ids) + self.pos_emb(pos.clamp(max=self.cfg.max_positions - 1))
        out = torch.zeros(n, vec.size(1), device=tok.device, dtype=vec.dtype)
        out.index_add_(0, node, vec)
        return out / tok_len.clamp(min=1).unsqueeze(1).to(vec.dtype)

    def encode(self, data) -> torch.Tensor:
        cfg = self.cfg
        n = data.label.numel()
        x = self.arg_emb(data.arg_pos.clamp(max=cfg.max_arity - 1))
        if cfg.features == "chars":
            bag = torch.zeros(n, self.sym_chars.size(1), device=x.device)
            if cfg.use_expr:
                bag = bag + self._expr(data.tok, data.tok_len)
            if cfg.use_label:
                bag = bag + self.lab_chars[data.label]
            x = x + self.char_emb(bag) + self.sep
        else:
            if cfg.use_expr:
                x = x + self._expr(data.tok, data.tok_len)
            if cfg.use_label:
                lab = torch.where(self.lab_known[data.label], data.label, torch.full_like(data.label, UNK))
                x = x + self.lab_emb(lab)
        return x

    def edges(self, edge_index: torch.Tensor) -> torch.Tensor:
        mode = self.cfg.edges
        if mode == "both":
            return torch.cat([edge_index, edge_index.flip(0)], dim=1)
        if mode == "down":
            return edge_index
        if mode == "up":
            return edge_index.flip(0)
        return edge_index[:, :0]

    def forward(self, data) -> torch.Tensor:
        x = self.encode(data)
        ei = self.edges(data.edge_index)
        for conv, norm in zip(self.convs, self.norms):
            h = conv(x, ei)
            h = F.dropout(F.relu(norm(h)), p=self.cfg.dropout, training=self.training)
            x = x + h if self.cfg.residual else h
        return self.head(x).squeeze(-1)


def resolve(preset: str, ablation: str = "none", **overrides) -> tuple[ModelConfig, TrainConfig]:
    """A preset's configs with an ablation and explicit overrides (None = keep)."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    if ablation not in ABLATIONS:
        raise KeyError(f"unknown ablation {ablation!r} (choose from {', '.join(ABLATIONS)})")
    p = PRESETS[preset]
    m = replace(p.model, **ABLATIONS[ablation])
    t_over = {k: v for k, v in overrides.items() if v is not None and k in TrainConfig.__dataclass_fields__}
    m_over = {k: v for k, v in overrides.items() if v is not None and k in ModelConfig.__dataclass_fields__}
    t = replace(p.train, **t_over)
    if t.loss not in LOSSES:
        raise KeyError(f"unknown loss {t.loss!r} (choose from {', '.join(LOSSES)})")
    if t.loss == "structured" and t.pos_weight:
        raise KeyError("--pos-weight weighs the node losses' positive nodes; the structured loss has none")
    if t.sampling not in SAMPLINGS:
        raise KeyError(f"unknown sampling {t.sampling!r} (choose from {', '.join(SAMPLINGS)})")
    return replace(m, **m_over), t


def config_dict(m: ModelConfig, t: TrainConfig) -> dict:
    return {"model": asdict(m), "train": asdict(t)}
