"""The expansion dataset on disk: built once per (database, options), then loaded.

``DIR/meta.json`` holds the cache key (hash of every database file, the
expansion options, the feature version), the summary and the shard list;
``DIR/vocab.json`` the vocabularies; ``DIR/{split}-{k}.pt`` torch-geometric
``InMemoryDataset`` shards of at most ``shard_size`` examples. Examples are
inlined and featurised in worker processes and streamed to shards, so memory
stays bounded on full set.mm. A directory whose key differs from the request
is rebuilt; every file is written atomically (temp + rename), meta.json
last.
"""
from __future__ import annotations

import bisect
import itertools
import json
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from torch_geometric.data import InMemoryDataset

from metamath.database import Database
from metamath.verify import failure_text, verify_all
from metamath.write import atomic_path, write_json

from metamath.parallel import imap_theorems

from .expansion import ExpansionOptions, Plan, examples_for, plan_expansion
from .features import Vocab, encode, graph

FEATURE_VERSION = 2
SPLITS = ("train", "valid", "test")


class SplitDataset(InMemoryDataset):
    """One shard of a split, loaded from its ``.pt`` file."""

    def __init__(self, path: str):
        super().__init__(None)
        self.load(path)


class Split(torch.utils.data.Dataset):
    """A split: its shards, indexed as one sequence of graphs."""

    def __init__(self, shards: list[SplitDataset]):
        self.shards = shards
        self.offsets = list(itertools.accumulate(len(s) for s in shards))

    def __len__(self) -> int:
        return self.offsets[-1] if self.offsets else 0

    def __getitem__(self, i: int):
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = bisect.bisect_right(self.offsets, i)
        return self.shards[k][i - (self.offsets[k - 1] if k else 0)]

    def __iter__(self):
        for sh in self.shards:
            yield from sh


def cache_key(db: Database, opts: ExpansionOptions, max_tokens: int) -> dict:
    key = {"database_sha256": db.sha256(), "options": opts.key(), "max_tokens": max_tokens,
           "feature_version": FEATURE_VERSION}
    return json.loads(json.dumps(key))  # the form it takes in meta.json (tuples become lists)


class DatasetError(Exception):
    """The dataset cannot be built (e.g. the database does not verify)."""


@dataclass(frozen=True)
class _Featurise:
    """The work on one outer proof: its examples, encoded as arrays (None = skipped).

    Called as ``fn(db, label)`` by :func:`metamath.parallel.imap_theorems`;
    the forked workers inherit this object with everything it needs, so no
    module global carries it. ``trees``: inlined proofs' trees, filled as
    they are needed (each worker fills its own copy).
    """

    opts: ExpansionOptions
    plan: Plan
    sym_ids: dict[str, int]
    lab_ids: dict[str, int]
    max_tokens: int
    trees: dict = field(default_factory=dict)

    def __call__(self, db: Database, label: str) -> list:
        exs = examples_for(db, label, self.plan.chosen.get(label, []), self.opts, self.trees)
        return [None if ex is None else encode(ex, self.sym_ids, self.lab_ids, self.max_tokens) for ex in exs]


def build_dataset(db: Database, out: str, opts: ExpansionOptions = ExpansionOptions(), max_tokens: int = 128,
                  progress: bool = False, force: bool = False, jobs: int | None = None,
                  shard_size: int = 5000) -> dict:
    """Build (or reuse) the dataset in ``out``; return its summary (``meta.json``)."""
    key = cache_key(db, opts, max_tokens)
    meta_path = os.path.join(out, "meta.json")
    if not force and os.path.exists(meta_path):
        try:
            with open(meta_path) as fh:
                meta = json.load(fh)
            if meta.get("key") == key and all(os.path.exists(os.path.join(out, f))
                                              for fs in meta["shards"].values() for f in fs):
                meta["cached"] = True
                return meta
        except (OSError, ValueError, KeyError):
            pass
    t0 = time.perf_counter()
    rep = verify_all(db, jobs=jobs, progress=progress)
    if rep.failed:
        f = rep.failed[0]
        raise DatasetError(f"{db.files[0].path}: {len(rep.failed)} proofs do not verify "
                           f"(first: {failure_text(f)}); refusing to build a dataset")
    plan = plan_expansion(db, opts, progress=progress, jobs=jobs)
    vocab = Vocab.from_database(db)
    sym_ids, lab_ids = vocab.index()
    os.makedirs(out, exist_ok=True)
    if os.path.exists(meta_path):
        os.remove(meta_path)  # the old dataset is invalid from here on
    buffers: dict[str, list] = {s: [] for s in SPLITS}
    shards: dict[str, list[str]] = {s: [] for s in SPLITS}
    counts = {s: 0 for s in SPLITS}
    nodes = positives = max_nodes = skipped = 0
    inlined: set[str] = set()

    def flush(split: str) -> None:
        name = f"{split}-{len(shards[split]):05d}.pt"
        with atomic_path(os.path.join(out, name)) as tmp:
            InMemoryDataset.save([graph(a) for a in buffers[split]], tmp)
        shards[split].append(name)
        buffers[split] = []

    work = _Featurise(opts, plan, sym_ids, lab_ids, max_tokens)
    for _, arrays in imap_theorems(db, work, plan.outer_proofs(db), jobs=jobs,
                                   desc="inlining" if progress else None, min_parallel=200):
        for a in arrays:
            if a is None:
                skipped += 1
                continue
            split = plan.groups[a["inlined"]]
            if split == "train":
                vocab.mark_seen(np.unique(a["tok"]), np.unique(a["label"]))
            n = len(a["label"])
            nodes += n
            positives += int(a["y"].sum())
            max_nodes = max(max_nodes, n)
            inlined.add(a["inlined"])
            counts[split] += 1
            buffers[split].append(a)
            if len(buffers[split]) >= shard_size:
                flush(split)
    for s in SPLITS:
        if buffers[s] or not shards[s]:
            if not buffers[s]:
                raise DatasetError(f"{db.files[0].path}: the {s} split is empty: the database has too few "
                                   f"inlinable theorems")
            flush(s)
    write_json(os.path.join(out, "vocab.json"), vocab.as_dict())
    examples = sum(counts.values())
    meta = {
        "examples": examples, "inlined_theorems": len(inlined), "nodes": nodes,
        "mean_nodes": round(nodes / examples, 1) if examples else 0, "max_nodes": max_nodes,
        "positive_fraction": round(positives / nodes, 4) if nodes else 0.0,
        "applications": plan.applications, "skipped_no_fresh_variable": skipped,
        "splits": counts, "seed": opts.seed,
        "split_theorems": {s: sum(1 for g in plan.groups.values() if g == s) for s in SPLITS},
        "vocab": {"symbols": len(vocab.symbols), "labels": len(vocab.labels),
                  "train_symbols": sum(vocab.train_symbols) - 2, "train_labels": sum(vocab.train_labels) - 2},
        "database": db.files[0].path, "seconds": round(time.perf_counter() - t0, 2),
        "shards": shards, "key": key,
    }
    write_json(meta_path, meta)
    meta["cached"] = False
    return meta


def load_dataset(out: str) -> tuple[dict, Vocab, dict[str, SplitDataset]]:
    """(meta, vocab, splits) of a built dataset directory."""
    meta_path = os.path.join(out, "meta.json")
    if not os.path.exists(meta_path):
        raise DatasetError(f"{out}: no dataset here (run `mmrefactor dataset DB --out {out}` first)")
    with open(meta_path) as fh:
        meta = json.load(fh)
    with open(os.path.join(out, "vocab.json")) as fh:
        vocab = Vocab.from_dict(json.load(fh))
    return meta, vocab, {s: Split([SplitDataset(os.path.join(out, f)) for f in meta["shards"][s]])
                         for s in SPLITS}
